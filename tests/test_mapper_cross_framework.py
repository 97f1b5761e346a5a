"""The VariableMapper across frameworks, used as a learner does: a Keras file into a torch
module, a torch safetensors file into a Keras model, keys picked in the rows' dropdowns.

Real Keras, torch and safetensors; the frameworks' own tensors are the oracles."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")
safetensors_torch = pytest.importorskip("safetensors.torch")

from ckptwidgets import VariableMapper, plan_restore, restore  # noqa: E402
from ckptwidgets._planning.cross import transform_for_key  # noqa: E402
from ckptwidgets.layouts import IDENTITY  # noqa: E402
from ckptwidgets.widgets._mapper_model import LAYOUT, NONE  # noqa: E402


def dropdown(mapper, name):
    """The key dropdown of the row of ``name`` (on the page shown)."""
    row = list(mapper.model.rows[mapper.table.page_slice()]).index(name)
    return mapper.table.cells[row][[c.header for c in mapper.table.columns].index("checkpoint key")]


def torch_module(**layers) -> torch.nn.Module:
    module = torch.nn.Sequential()
    for name, layer in layers.items():
        module.add_module(name, layer)
    return module


@pytest.fixture
def two_square_layers(tmp_path):
    """A Keras file of two Dense(4) layers 'a' and 'b' (4 -> 4 -> 4), and its weights."""
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, name="a"), keras.layers.Dense(4, name="b")])
    path = str(tmp_path / "square.weights.h5")
    model.save_weights(path)
    return path, {layer.name: [w.numpy() for w in layer.weights] for layer in model.layers}


# --- 1. a key that fits through its transform is no ✗ ----------------------------------------------


def test_a_kernel_that_fits_through_transpose_is_offered_without_a_cross(tmp_path):
    path = str(tmp_path / "r.weights.h5")
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="fc")]).save_weights(path)
    target = torch_module(fc=torch.nn.Linear(4, 3))
    mapper = VariableMapper(path, target)
    model = mapper.model
    assert model.plan.transform_of("fc.weight")[0].name == "transpose"
    assert model.options("fc.weight")[1] == ("layers/dense/vars/0", "layers/dense/vars/0")
    # The bias has the weight's first dimension but no transform makes the weight from it.
    assert model.options("fc.weight")[2] == ("✗ layers/dense/vars/1  [3] float32", "layers/dense/vars/1")
    assert model.options("fc.bias")[1] == ("layers/dense/vars/1", "layers/dense/vars/1")
    assert dropdown(mapper, "fc.weight").value == "layers/dense/vars/0"
    assert not dropdown(mapper, "fc.weight").tooltip.startswith("✗")


# --- 2. a key picked by hand takes the transform its layer's pairing gives -------------------------


def test_a_kernel_picked_for_a_square_weight_is_read_transposed(two_square_layers):
    path, keras_weights = two_square_layers
    target = torch_module(inp=torch.nn.Linear(4, 4), out=torch.nn.Linear(4, 4))
    mapper = VariableMapper(path, target)
    model = mapper.model
    assert model.plan.mapping["out.weight"] == "layers/dense_1/vars/0"
    dropdown(mapper, "out.weight").value = "layers/dense/vars/0"  # layer 'a's kernel, as a learner picks it
    transform, keys = model.plan.transform_of("out.weight")
    assert (transform.name, keys) == ("transpose", ("layers/dense/vars/0",))
    assert model.plan.status("out.weight") == "mapped" and model.counts["problems"] == 0
    assert model.transform_text("out.weight")[0] == "transpose"
    model.restore()
    assert model.message_kind == "info", model.message
    np.testing.assert_array_equal(target.out.weight.detach().numpy(), keras_weights["a"][0].T)
    np.testing.assert_array_equal(target.out.bias.detach().numpy(), keras_weights["b"][1])


def test_a_bias_picked_for_a_weight_is_a_layout_problem_naming_both_shapes(two_square_layers):
    path, _weights = two_square_layers
    target = torch_module(inp=torch.nn.Linear(4, 4), out=torch.nn.Linear(4, 4))
    mapper = VariableMapper(path, target)
    model = mapper.model
    dropdown(mapper, "out.weight").value = "layers/dense/vars/1"
    problems = model.plan.problems
    assert [(p.variable, p.key, p.reason) for p in problems] == [("out.weight", "layers/dense/vars/1", "layout_mismatch")]
    assert "[4, 4]" in problems[0].message and "'layers/dense/vars/1' [4]" in problems[0].message
    assert "pick 'layers/dense/vars/0'" in problems[0].message
    assert model.status_text("out.weight")[0].startswith("✗ layout mismatch")
    assert model.plan.transform_of("out.weight") is None
    labels = {value: label for label, value in model.options("out.weight")}
    assert labels["layers/dense/vars/1"].startswith("✗ ")  # the bias is offered as incompatible
    assert not labels["layers/dense/vars/0"].startswith("✗ ") and not labels["layers/dense_1/vars/0"].startswith("✗ ")
    dropdown(mapper, "out.weight").value = "layers/dense_1/vars/0"  # a key that fits settles it
    assert model.counts["problems"] == 0 and model.plan.transform_of("out.weight")[0].name == "transpose"


def test_assign_derives_the_transform_only_across_frameworks_and_only_without_one(two_square_layers, tmp_path):
    path, _weights = two_square_layers
    target = torch_module(inp=torch.nn.Linear(4, 4), out=torch.nn.Linear(4, 4))
    plan = plan_restore(path, target)
    plan.assign("out.weight", "layers/dense/vars/0", transform=IDENTITY)  # an explicit transform wins
    assert plan.transform_of("out.weight") == (IDENTITY, ("layers/dense/vars/0",)) and plan.ok
    plan.assign("out.weight", "layers/dense/vars/0")
    assert plan.transform_of("out.weight")[0].name == "transpose"
    torch_file = str(tmp_path / "same.safetensors")
    safetensors_torch.save_file(target.state_dict(), torch_file)
    same = plan_restore(torch_file, torch_module(inp=torch.nn.Linear(4, 4), out=torch.nn.Linear(4, 4)))
    same.assign("out.weight", "inp.weight")  # torch into torch: as it is
    assert same.transform_of("out.weight") is None and same.ok


def test_a_recurrent_bias_picked_reads_its_pair(tmp_path):
    torch.manual_seed(0)
    source = torch_module(rnn=torch.nn.LSTM(3, 2, batch_first=True))
    path = str(tmp_path / "lstm.safetensors")
    safetensors_torch.save_file(source.state_dict(), path)
    target = keras.Sequential([keras.Input((5, 3)), keras.layers.LSTM(2, name="rnn")])
    mapper = VariableMapper(path, target)
    model = mapper.model
    bias = next(n for n in model.rows if n.endswith("lstm_cell/bias"))
    dropdown(mapper, bias).value = NONE
    assert model.plan.key_of(bias) is None
    dropdown(mapper, bias).value = "rnn.bias_ih_l0"
    transform, keys = model.plan.transform_of(bias)
    assert keys == ("rnn.bias_ih_l0", "rnn.bias_hh_l0") and model.plan.ok
    assert transform_for_key(model.checkpoint, model.plan.infos, bias, "rnn.bias_hh_l0").endswith(
        "pick 'rnn.bias_ih_l0'")
    model.restore()
    assert model.message_kind == "info", model.message
    expected = (source.rnn.bias_ih_l0 + source.rnn.bias_hh_l0).detach().numpy()
    np.testing.assert_allclose(target.get_layer("rnn").cell.bias.numpy(), expected, rtol=1e-6)


def test_transform_for_key_pairs_the_keys_layer_with_the_variables(two_square_layers):
    path, _weights = two_square_layers
    plan = plan_restore(path, torch_module(inp=torch.nn.Linear(4, 4), out=torch.nn.Linear(4, 4)))
    keys, transform = transform_for_key(plan.checkpoint, plan.infos, "inp.weight", "layers/dense_1/vars/0")
    assert keys == ("layers/dense_1/vars/0",) and transform.name == "transpose"
    keys, transform = transform_for_key(plan.checkpoint, plan.infos, plan.infos["inp.bias"], "layers/dense/vars/1")
    assert keys == ("layers/dense/vars/1",) and transform.is_identity
    message = transform_for_key(plan.checkpoint, plan.infos, "inp.bias", "layers/dense/vars/0")
    assert message.startswith("'inp.bias' [4] cannot read 'layers/dense/vars/0' [4, 4]")


# --- 3. a layout-mismatch row can be cleared from its dropdown ------------------------------------


@pytest.fixture
def wrong_head(tmp_path):
    """A torch body Linear(4, 8) and head Linear(8, 3) saved as safetensors; a Keras model whose
    head is Dense(5): the body pairs, the head's layout cannot be decided."""
    torch.manual_seed(2)
    source = torch_module(body=torch.nn.Linear(4, 8), head=torch.nn.Linear(8, 3))
    path = str(tmp_path / "head.safetensors")
    safetensors_torch.save_file(source.state_dict(), path)
    target = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, name="body"), keras.layers.Dense(5, name="head")])
    return path, source, target


def test_a_layout_mismatch_row_can_be_set_to_none_and_restored(wrong_head):
    path, source, target = wrong_head
    mapper = VariableMapper(path, target)
    model = mapper.model
    kernel, bias = (next(n for n in model.rows if n.endswith(f"head/{w}")) for w in ("kernel", "bias"))
    assert [p.reason for p in model.plan.problems] == ["layout_mismatch", "layout_mismatch"]
    box = dropdown(mapper, kernel)
    assert box.value == LAYOUT and ("(layout mismatch)", LAYOUT) in box.options
    assert "Dense kernel [8, 5] cannot come from Linear weight [3, 8]" in box.tooltip
    box.value = NONE  # the learner leaves the head as it is
    assert model.status_text(kernel)[0].startswith("– unmapped") and model.plan.key_of(kernel) is None
    assert dropdown(mapper, kernel).value == NONE
    assert "(layout mismatch)" not in [label for label, _ in dropdown(mapper, kernel).options]
    assert model.counts["problems"] == 1
    dropdown(mapper, bias).value = NONE
    assert model.counts["problems"] == 0 and model.plan.ok
    before = target.get_layer("head").kernel.numpy().copy()
    model.restore()
    assert model.message_kind == "info", model.message
    np.testing.assert_array_equal(target.get_layer("body").kernel.numpy(), source.body.weight.detach().numpy().T)
    np.testing.assert_array_equal(target.get_layer("head").kernel.numpy(), before)


# --- 4. the warning's hints -------------------------------------------------------------------------


def test_the_warning_separates_its_hints(two_square_layers):
    path, _weights = two_square_layers
    target = torch_module(a=torch.nn.Linear(4, 4), b=torch.nn.Linear(4, 4), c=torch.nn.Linear(4, 4))
    model = VariableMapper(path, target).model
    hints = model.plan.hints
    assert hints[:2] == ["Keras layer 'a' -> torch module 'a' (Linear), by name",
                         "Keras layer 'b' -> torch module 'b' (Linear), by name"]
    assert model.warning.endswith(f"Hint: {hints[0]}; {hints[1]}")


# --- EMA shadows across frameworks ----------------------------------------------------------------


@pytest.fixture
def ema_checkpoint(tmp_path):
    """A TF1-named checkpoint of Dense 'fc' (4 -> 3) with its ExponentialMovingAverage shadows."""
    from ckptwidgets.sources.arrays import ArraySource
    from ckptwidgets.write import plan_write

    rng = np.random.default_rng(4)
    raw = {"fc/kernel": rng.standard_normal((4, 3)).astype(np.float32), "fc/bias": rng.standard_normal(3).astype(np.float32)}
    shadows = {f"{k}/ExponentialMovingAverage": v + np.float32(10.0) for k, v in raw.items()}
    path = str(tmp_path / "ema.safetensors")
    plan_write(ArraySource({**raw, **shadows})).write(path, progress=False)
    return path, raw, shadows


def test_prefer_ema_into_a_torch_module_reads_the_shadows_through_the_transform(ema_checkpoint):
    path, raw, shadows = ema_checkpoint
    target = torch_module(fc=torch.nn.Linear(4, 3))
    plan = plan_restore(path, target, prefer_ema=True)
    assert plan.mapping == {"fc.weight": "fc/kernel/ExponentialMovingAverage", "fc.bias": "fc/bias/ExponentialMovingAverage"}
    assert plan.transform_of("fc.weight")[0].name == "transpose" and not plan.problems
    restore(plan)
    np.testing.assert_array_equal(target.fc.weight.detach().numpy(), shadows["fc/kernel/ExponentialMovingAverage"].T)
    np.testing.assert_array_equal(target.fc.bias.detach().numpy(), shadows["fc/bias/ExponentialMovingAverage"])
    assert plan_restore(path, target).mapping == {"fc.weight": "fc/kernel", "fc.bias": "fc/bias"}  # the default


def test_a_shadow_picked_by_hand_takes_its_variables_transform(ema_checkpoint):
    path, raw, shadows = ema_checkpoint
    target = torch_module(fc=torch.nn.Linear(4, 3))
    mapper = VariableMapper(path, target)
    model = mapper.model
    dropdown(mapper, "fc.weight").value = "fc/kernel/ExponentialMovingAverage"
    assert model.counts["problems"] == 0, model.plan.problems
    transform, keys = model.plan.transform_of("fc.weight")
    assert (transform.name, keys) == ("transpose", ("fc/kernel/ExponentialMovingAverage",))
    model.restore()
    assert model.message_kind == "info", model.message
    np.testing.assert_array_equal(target.fc.weight.detach().numpy(), shadows["fc/kernel/ExponentialMovingAverage"].T)
    np.testing.assert_array_equal(target.fc.bias.detach().numpy(), raw["fc/bias"])
