"""A torch.nn.Module as the target of planning and restoring (issue #25 item 3), and layout
transforms in the plan (item 4): real torch, safetensors and Keras; ``load_state_dict`` and the
frameworks' own outputs are the oracles."""
from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

import ckptwidgets  # noqa: E402
from ckptwidgets import PlanError, RestoreError, plan_restore, restore  # noqa: E402
from ckptwidgets.layouts import IDENTITY, Transform, transpose  # noqa: E402
from ckptwidgets.sources.arrays import ArraySource  # noqa: E402
from ckptwidgets.write import from_plan  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def mlp(seed: int, eps: float = 1e-5) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3, eps=eps), torch.nn.ReLU(),
                               torch.nn.Linear(3, 2))


def trained(seed: int = 0) -> torch.nn.Module:
    """An MLP whose BatchNorm statistics and step counter moved (a few training steps)."""
    model = mlp(seed)
    model.train()
    for _ in range(3):
        model(torch.randn(8, 4))
    return model


def save_state(model, path) -> str:
    safetensors_torch.save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(path))
    return str(path)


def snapshot(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_tensors(a: dict, b: dict):
    assert list(a) == list(b)
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        assert torch.equal(a[key], b[key]), key


# --- planning and restoring by name ---------------------------------------------------------


def test_a_state_dict_restores_as_load_state_dict_does(tmp_path):
    source = trained()
    path = save_state(source, tmp_path / "mlp.safetensors")
    oracle = mlp(1)
    oracle.load_state_dict(safetensors_torch.load_file(path), strict=True)

    target = mlp(2)
    plan = plan_restore(path, target)
    assert plan.ok and plan.target == "torch"
    assert plan.mapping == {name: name for name in target.state_dict()}  # identity, buffers included
    assert plan.unmapped == [] and plan.unused == []
    report = restore(plan)
    assert [name for name, _key in report.restored] == list(target.state_dict())
    assert report.values["1.num_batches_tracked"] == 3  # bookkeeping is restored when the file has it
    assert_same_tensors(snapshot(target), snapshot(oracle))


def test_varinfo_says_framework_layer_and_kind(tmp_path):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = torch.nn.Sequential(torch.nn.Linear(4, 4))
            self.attn = torch.nn.MultiheadAttention(4, 2)
            self.scale = torch.nn.Parameter(torch.ones(1))

    net = Net()
    path = save_state(net, tmp_path / "net.safetensors")
    infos = plan_restore(path, net).infos
    assert (infos["encoder.0.weight"].framework, infos["encoder.0.weight"].layer,
            infos["encoder.0.weight"].layer_kind) == ("torch", "encoder.0", "Linear")
    assert (infos["attn.out_proj.weight"].layer, infos["attn.out_proj.weight"].layer_kind) == ("attn",
                                                                                            "MultiheadAttention")
    assert (infos["scale"].layer, infos["scale"].layer_kind) == (None, "Net")
    assert infos["attn.in_proj_weight"].shape == (12, 4) and infos["attn.in_proj_weight"].dtype == "float32"


def test_keras_models_say_their_layers():
    keras = pytest.importorskip("keras")
    inputs = keras.Input((5, 4))
    hidden = keras.layers.Dense(4, name="dense")(inputs)
    outputs = keras.layers.MultiHeadAttention(2, 2, name="mha")(hidden, hidden)
    infos = plan_restore(ArraySource({"x": np.zeros(1, np.float32)}), keras.Model(inputs, outputs)).infos
    assert (infos["dense/kernel"].framework, infos["dense/kernel"].layer, infos["dense/kernel"].layer_kind) == (
        "keras", "dense", "Dense")
    assert (infos["mha/query/kernel"].layer, infos["mha/query/kernel"].layer_kind) == ("mha", "MultiHeadAttention")


def test_a_tf_bundle_restores_into_torch_without_tensorflow(tmp_path):
    source = trained()
    prefix = str(tmp_path / "mlp.ckpt")
    arrays = ArraySource({k: v.detach().numpy() for k, v in source.state_dict().items()})
    ckptwidgets.plan_write(arrays).write(prefix, progress=False)  # a TF tensor bundle, written without TF
    script = textwrap.dedent(f"""
        import sys, torch, ckptwidgets
        torch.manual_seed(5)
        model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.ReLU(),
                                    torch.nn.Linear(3, 2))
        plan = ckptwidgets.plan_restore({prefix!r}, model)
        report = ckptwidgets.restore(plan)
        assert plan.ok and len(report.restored) == 9, plan
        torch.save(model.state_dict(), {str(tmp_path / "out.pt")!r})
        print("tensorflow" in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
    assert_same_tensors(torch.load(tmp_path / "out.pt"), snapshot(source))


def test_num_batches_tracked_is_bookkeeping(tmp_path):
    source = trained()
    state = {k: v.detach().numpy() for k, v in source.state_dict().items() if "num_batches_tracked" not in k}
    target = mlp(3)
    plan = plan_restore(ArraySource(state), target)
    assert plan.ok and plan.unmapped == [] and plan.status("1.num_batches_tracked") == "bookkeeping"
    restore(plan)
    assert target[1].num_batches_tracked.item() == 0  # left as it was
    # A checkpoint's counter no variable takes is no unused weight either.
    into_linear = plan_restore(ArraySource({**state, "1.num_batches_tracked": np.array(7)}), torch.nn.Linear(4, 3))
    assert [e.key for e in into_linear.unused if "num_batches" in e.key] == []


def test_all_or_nothing_on_a_wrong_shape(tmp_path):
    state = {k: v.detach().numpy() for k, v in trained().state_dict().items()}
    state["3.weight"] = np.zeros((2, 5), np.float32)  # one key of another shape
    target = mlp(4)
    before = snapshot(target)
    plan = plan_restore(ArraySource(state), target)
    (problem,) = plan.problems
    assert problem.reason == "shape_mismatch" and "[2, 3]" in problem.message and "[2, 5]" in problem.message
    with pytest.raises(RestoreError, match=r"\[2, 5\]"):
        restore(plan)
    assert_same_tensors(snapshot(target), before)


def test_a_copy_failing_midway_puts_every_tensor_back(tmp_path):
    path = save_state(trained(), tmp_path / "mlp.safetensors")
    target = mlp(4)
    with torch.inference_mode():  # an inference tensor cannot be written in place outside inference mode
        target[3].register_buffer("frozen", torch.zeros(2))
    before = snapshot(target)
    plan = plan_restore(ArraySource({**safetensors_torch.load_file(path), "3.frozen": np.ones(2, np.float32)}),
                        target)
    assert plan.ok and plan.mapping["3.frozen"] == "3.frozen"  # the last tensor: every other copied first
    with pytest.raises(RestoreError, match="3.frozen"):
        restore(plan)
    assert_same_tensors(snapshot(target), before)


def test_dotted_scope_rules_rename_a_module_path(tmp_path):
    class Old(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.old = mlp(6)

    class New(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = mlp(7)

    path = save_state(Old(), tmp_path / "old.safetensors")
    target = New()
    assert plan_restore(path, target).mapping == {}  # no rule: nothing has its name
    plan = plan_restore(path, target, rules={"old.": "encoder."})
    assert plan.ok and plan.unmapped == [] and plan.mapping["encoder.0.weight"] == "old.0.weight"
    restore(plan)
    oracle = New()
    oracle.load_state_dict({k.replace("old.", "encoder.", 1): v for k, v in safetensors_torch.load_file(path).items()})
    assert_same_tensors(snapshot(target), snapshot(oracle))
    with pytest.raises(PlanError, match=r"'/' or '\.'"):
        plan_restore(path, target, rules={"old.": "encoder"})


# --- layout transforms ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keras_mlp(tmp_path_factory):
    """A Keras MLP with BatchNormalization saved as .weights.h5, its torch twin, an input and
    the Keras output (the oracle)."""
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="dense"),
                              keras.layers.BatchNormalization(name="bn"), keras.layers.ReLU(),
                              keras.layers.Dense(2, name="head")])
    bn = model.get_layer("bn")
    rng = np.random.default_rng(0)
    bn.set_weights([w + rng.uniform(0.5, 1.5, w.shape).astype(np.float32) for w in bn.get_weights()])
    path = str(tmp_path_factory.mktemp("keras") / "mlp.weights.h5")
    model.save_weights(path)
    x = rng.normal(size=(5, 4)).astype(np.float32)
    return path, x, np.asarray(model(x, training=False))


KERAS_TO_TORCH = [("0.weight", "layers/dense/vars/0", True), ("0.bias", "layers/dense/vars/1", False),
                  ("1.weight", "layers/batch_normalization/vars/0", False),
                  ("1.bias", "layers/batch_normalization/vars/1", False),
                  ("1.running_mean", "layers/batch_normalization/vars/2", False),
                  ("1.running_var", "layers/batch_normalization/vars/3", False),
                  ("3.weight", "layers/dense_1/vars/0", True), ("3.bias", "layers/dense_1/vars/1", False)]


def keras_plan(path, target):
    """The Keras file planned into the torch twin by hand: the plan API's transforms."""
    plan = plan_restore(path, target)
    ckpt = plan.checkpoint
    for name, key, transposed in KERAS_TO_TORCH:
        key = key if key in ckpt else key.replace("batch_normalization", "bn").replace("dense_1", "head")
        plan.assign(name, key, transform=transpose() if transposed else None)
    return plan


def test_a_transform_assignment_restores_the_transposed_kernel(keras_mlp):
    path, x, expected = keras_mlp
    target = mlp(8, eps=1e-3).eval()  # Keras' BatchNormalization epsilon
    plan = keras_plan(path, target)
    assert plan.ok and plan.unmapped == [] and plan.unused == []
    assert set(plan.transforms) == {"0.weight", "3.weight"} and plan.transforms["0.weight"].name == "transpose"
    assert "transform: '0.weight' <- transpose('layers/dense/vars/0')" in repr(plan)
    assert "\n0.weight        transpose('layers/dense/vars/0')    [3, 4]\n" in str(plan)  # print(plan)
    (first,) = [a for a in plan.assignments if a.name == "0.weight"]
    assert first.transform is plan.transforms["0.weight"] and first.extra_keys == ()
    restore(plan)
    kernel = plan.checkpoint.read(plan.key_of("0.weight"))
    assert np.array_equal(target[0].weight.detach().numpy(), kernel.T)
    with torch.no_grad():
        np.testing.assert_allclose(target(torch.from_numpy(x)).numpy(), expected, rtol=1e-5, atol=1e-6)
    # Read as it is (an explicit "as is": a key alone takes its layer's transform) the shapes differ,
    # and the problem names both.
    plan.assign("0.weight", plan.key_of("0.weight"), transform=IDENTITY)
    (problem,) = plan.problems
    assert problem.reason == "shape_mismatch" and "[3, 4]" in problem.message and "[4, 3]" in problem.message


def test_a_transform_of_several_keys_and_its_shape_check():
    a, b = np.arange(6, dtype=np.float32).reshape(2, 3), np.ones((2, 3), np.float32)
    total = Transform("sum", lambda x, y: x + y, lambda s, t: s, lambda x, y: f"({x} + {y})", arity=2)
    target = torch.nn.Linear(3, 2)
    plan = plan_restore(ArraySource({"a": a, "b": b, "bias": np.zeros(2, np.float32)}), target)
    plan.assign("weight", ("a", "b"), transform=total)
    assert plan.ok and plan.unused == [] and plan.transform_of("weight")[1] == ("a", "b")
    restore(plan)
    assert np.array_equal(target.weight.detach().numpy(), a + b)
    plan.assign("weight", ("a", "b"), transform=Transform("first", lambda x, y: x.T, lambda s, t: s[::-1],
                                                          lambda x, y: x, arity=2))
    (problem,) = plan.problems
    assert "[2, 3]" in problem.message and "[3, 2]" in problem.message
    with pytest.raises(PlanError, match="takes 2 tensor"):
        plan.assign("weight", "a", transform=total)


def test_to_code_runs_and_gives_the_same_tensors(keras_mlp):
    path, _x, _expected = keras_mlp
    restored = mlp(9, eps=1e-3)
    plan = keras_plan(path, restored)
    restore(plan)
    code = plan.to_code()
    assert "np.transpose(checkpoint.read('layers/dense/vars/0'), (1, 0))" in code
    assert "load_state_dict(state, strict=False)" in code and "import tensorflow" not in code
    fresh = mlp(10, eps=1e-3)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(code, {"module": fresh})
    # BatchNorm's own loading keeps its counter when a state dict lacks it: nothing is missing.
    assert printed.getvalue() == "missing keys: []\nunexpected keys: []\n"
    assert_same_tensors(snapshot(fresh), snapshot(restored))


def test_from_plan_writes_safetensors_that_load_strictly(keras_mlp, tmp_path):
    path, x, expected = keras_mlp
    target = mlp(11, eps=1e-3)
    target[1].num_batches_tracked.fill_(4)
    written = from_plan(keras_plan(path, target))
    ops = {item.key: item.op for item in written.items}
    assert ops["0.weight"] == "transform" and ops["1.num_batches_tracked"] == "copy"
    assert "transpose('layers/dense/vars/0')" in str(written)
    out = str(tmp_path / "mlp.safetensors")
    written.write(out, progress=False)
    loaded = mlp(12, eps=1e-3).eval()
    loaded.load_state_dict(safetensors_torch.load_file(out), strict=True)
    assert loaded[1].num_batches_tracked.item() == 4  # the module's current value
    with torch.no_grad():
        np.testing.assert_allclose(loaded(torch.from_numpy(x)).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_torch_weights_into_keras_with_transforms_and_their_code(tmp_path):
    keras = pytest.importorskip("keras")
    source = mlp(13, eps=1e-3).eval()
    path = save_state(source, tmp_path / "mlp.safetensors")

    def keras_twin():
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="dense"),
                                 keras.layers.BatchNormalization(name="bn"), keras.layers.ReLU(),
                                 keras.layers.Dense(2, name="head")])

    pairs = {"dense/kernel": "0.weight", "dense/bias": "0.bias", "bn/gamma": "1.weight", "bn/beta": "1.bias",
             "bn/moving_mean": "1.running_mean", "bn/moving_variance": "1.running_var",
             "head/kernel": "3.weight", "head/bias": "3.bias"}

    def planned(model):
        plan = plan_restore(path, model)
        for name in plan.infos:
            leaf = name.split("/", 1)[1]
            plan.assign(name, pairs[leaf], transform=transpose() if leaf.endswith("kernel") else None)
        return plan

    model = keras_twin()
    plan = planned(model)
    assert plan.ok and plan.target == "tf" and len(plan.transforms) == 2
    restore(plan)
    x = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    with torch.no_grad():
        expected = source(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(np.asarray(model(x, training=False)), expected, rtol=1e-5, atol=1e-6)
    for style in ("checkpoint", "saver"):
        other = keras_twin()
        other_plan = planned(other)
        exec(other_plan.to_code(style), {"variables": other_plan.variables, "sess": None})
        np.testing.assert_allclose(np.asarray(other(x, training=False)), expected, rtol=1e-5, atol=1e-6)


# --- the mapper -------------------------------------------------------------------------------


def test_the_mapper_maps_a_torch_module_and_shows_transforms(keras_mlp, tmp_path):
    from ckptwidgets import VariableMapper

    path, x, expected = keras_mlp
    target = mlp(14, eps=1e-3).eval()
    mapper = VariableMapper(path, target)
    model = mapper.model
    assert model.rows == tuple(target.state_dict())
    headers = [c.header for c in mapper.table.columns]
    assert headers == ["variable", "shape", "checkpoint key", "transform", "status"]
    column = headers.index("transform")

    def cells(name):
        return mapper.table.cells[list(model.rows[mapper.table.page_slice()]).index(name)]

    assert cells("1.num_batches_tracked")[headers.index("status")].value == "· bookkeeping"
    for name, key, transposed in KERAS_TO_TORCH:
        key = key if key in model.checkpoint else key.replace("batch_normalization", "bn").replace("dense_1", "head")
        if transposed:
            mapper.plan.assign(name, key, transform=transpose())
        else:
            cells(name)[headers.index("checkpoint key")].value = key  # the dropdown, as a user picks
    assert cells("0.weight")[column].value == "transpose"
    assert cells("0.weight")[column].tooltip == "0.weight = transpose(layers/dense/vars/0)"
    assert cells("0.bias")[column].value == ""
    cells("0.weight")[headers.index("checkpoint key")].value = "layers/dense/vars/1"  # another key: as it is
    assert cells("0.weight")[column].value == "" and model.counts["problems"] == 1
    mapper.plan.assign("0.weight", "layers/dense/vars/0", transform=transpose())
    assert model.counts == {"variables": 9, "mapped": 8, "unmapped": 0, "problems": 0, "unused": 0}
    assert "transpose" in model.text_summary(rows=3)
    mapper.code_accordion.selected_index = 0
    assert "module.load_state_dict" in model.code
    model.rules_text = "layers. -> encoder."  # a dotted rule parses for a torch module
    assert model.rules_error == ""
    mapper.restore_button.click()
    assert model.message_kind == "info", model.message
    with torch.no_grad():
        np.testing.assert_allclose(target(torch.from_numpy(x)).numpy(), expected, rtol=1e-5, atol=1e-6)


# --- across frameworks without a hand edit (interface 2: _planning/cross.py) ---------------------


def test_a_keras_file_maps_into_torch_by_layer(keras_mlp):
    path, x, expected = keras_mlp
    target = mlp(15, eps=1e-3).eval()
    plan = plan_restore(path, target)
    assert plan.ok and plan.unmapped == [] and plan.unused == [], plan
    assert {name: t.name for name, t in plan.transforms.items()} == {"0.weight": "transpose", "3.weight": "transpose"}
    assert any("'0'" in hint for hint in plan.hints)
    restore(plan)
    with torch.no_grad():
        np.testing.assert_allclose(target(torch.from_numpy(x)).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_an_undecidable_layout_is_a_problem_naming_both_shapes(keras_mlp):
    path, _x, _expected = keras_mlp
    wider = torch.nn.Sequential(torch.nn.Linear(5, 3), torch.nn.BatchNorm1d(3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    plan = plan_restore(path, wider)
    layout = [p for p in plan.problems if p.reason == "layout_mismatch"]
    assert layout and {p.variable for p in layout} == {"0.weight", "0.bias"}
    assert "[3, 5]" in layout[0].message and "[4, 3]" in layout[0].message
    with pytest.raises(RestoreError):
        restore(plan)
