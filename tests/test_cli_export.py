"""``python -m ckptwidgets export`` (issue #25 item 6): SRC written for another framework by a
preset or a model, OUT's suffix choosing the format.

The oracles: transformers' ``BertModel`` loads the exported file with ``strict=True`` and
holds TensorFlow's values (transposed where ``load_tf_weights_in_bert`` transposed them);
Keras' ``model.load_weights`` loads the ``.weights.h5`` and holds the checkpoint's values.
"""
from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ckptwidgets.__main__ import main
from ckptwidgets.sources import FORMATS

from _bert import CONFIG, bert_values, bert_weights, hf_name, is_kernel
from conftest import save_adam_checkpoint, save_graph_checkpoint, tf

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
safetensors_torch = pytest.importorskip("safetensors.torch")

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}

KERAS_MODELS = '''
import keras


def build():
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(4, activation="relu", name="hidden")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(hidden), name="net")
'''

TORCH_MODELS = '''
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = torch.nn.Linear(3, 4)
        self.head = torch.nn.Linear(4, 2)


def build():
    return Net()
'''


@pytest.fixture(scope="module")
def bert_ckpt(tmp_path_factory):
    """A TF1 BERT checkpoint (tiny config) with Adam slots, global_step and the cls/ heads."""
    return save_graph_checkpoint(tmp_path_factory.mktemp("bert") / "bert_model.ckpt", bert_values())


@pytest.fixture
def dense_ckpt(tmp_path):
    """A TF1 checkpoint of the Keras model's weights under the scope ``old/``."""
    rng = np.random.default_rng(1)
    shapes = {"old/hidden/kernel": (3, 4), "old/hidden/bias": (4,), "old/head/kernel": (4, 2), "old/head/bias": (2,)}
    return save_graph_checkpoint(tmp_path / "old.ckpt", {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()})


def files_in(folder) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def assert_is_bert(state: dict, bert_ckpt):
    """``state`` loads into BertModel with strict=True and holds TF's values, transposed where they should be."""
    model = transformers.BertModel(transformers.BertConfig(**CONFIG))
    model.load_state_dict(state, strict=True)
    reader = tf.train.load_checkpoint(bert_ckpt)
    for tf_name in bert_weights():
        expected = reader.get_tensor(tf_name)
        expected = expected.T if is_kernel(tf_name) else expected
        assert np.array_equal(model.state_dict()[hf_name(tf_name)].numpy(), expected), tf_name


def test_preset_bert_writes_what_BertModel_loads_strictly(bert_ckpt, tmp_path, capsys):
    out = tmp_path / "model.safetensors"
    assert main(["export", bert_ckpt, str(out), "--preset", "bert"]) == 0
    stdout, stderr = capsys.readouterr()
    assert stderr == "" and stdout.startswith(f"Wrote 39 tensors (7.2 KiB) to {str(out)!r}")
    assert_is_bert(safetensors_torch.load_file(str(out)), bert_ckpt)


@pytest.mark.skipif("torch" not in FORMATS, reason="the .pt format (sources/torch/, another helper's) is not registered yet")
def test_preset_bert_to_a_torch_state_dict(bert_ckpt, tmp_path):
    out = tmp_path / "pytorch_model.pt"
    assert main(["export", bert_ckpt, str(out), "--preset", "bert"]) == 0
    assert_is_bert(torch.load(str(out), weights_only=True), bert_ckpt)


def test_dry_run_shows_the_plan_and_writes_nothing(bert_ckpt, tmp_path, capsys):
    before = files_in(tmp_path)
    assert main(["export", bert_ckpt, str(tmp_path / "model.safetensors"), "--preset", "bert", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert files_in(tmp_path) == before
    assert "transpose('bert/encoder/layer_0/attention/self/query/kernel')" in out
    assert "  bert/encoder/layer_0/output/dense/kernel/adam_m: Adam's moment estimate (optimizer state)" in out
    assert "  global_step: the training step counter (BertModel has none)" in out
    assert out.endswith("(dry run: nothing written)\n")


def test_a_rule_renames_the_presets_output(bert_ckpt, tmp_path, capsys):
    out = tmp_path / "model.safetensors"
    assert main(["export", bert_ckpt, str(out), "--preset", "bert", "--rule", "pooler.dense.weight=pool.weight"]) == 0
    state = safetensors_torch.load_file(str(out))
    assert "pool.weight" in state and "pooler.dense.weight" not in state
    assert np.array_equal(state["pool.weight"].numpy(), tf.train.load_checkpoint(bert_ckpt).get_tensor("bert/pooler/dense/kernel").T)


def test_a_mistyped_preset_is_one_error_line_with_the_closest(bert_ckpt, tmp_path, capsys):
    assert main(["export", bert_ckpt, str(tmp_path / "model.safetensors"), "--preset", "bret"]) == 2
    assert capsys.readouterr() == ("", "error: No preset 'bret' (did you mean 'bert'? presets: bert).\n")
    assert files_in(tmp_path) == {}


def test_a_preset_that_maps_nothing_says_why_on_its_one_line(tmp_path, capsys):
    """The error line names the plan's first problem, not only how many there are."""
    torch.save(torch.nn.Linear(4, 2).state_dict(), tmp_path / "net.pt")
    assert main(["export", str(tmp_path / "net.pt"), str(tmp_path / "out.safetensors"), "--preset", "bert"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert "the plan has 1 problem: The bert preset maps none of the plan's 2 keys (e.g. 'bias')" in err, err
    assert sorted(os.listdir(tmp_path)) == ["net.pt"]


def test_out_is_never_the_source(bert_ckpt, capsys):
    folder = Path(bert_ckpt).parent
    before = files_in(folder)
    assert main(["export", bert_ckpt, bert_ckpt, "--preset", "bert", "--overwrite"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith(f"error: The output {bert_ckpt!r} is the input checkpoint itself") and "even with --overwrite" in err
    assert files_in(folder) == before


def test_an_existing_output_needs_overwrite(bert_ckpt, tmp_path, capsys):
    out = tmp_path / "model.safetensors"
    out.write_bytes(b"mine")
    assert main(["export", bert_ckpt, str(out), "--preset", "bert"]) == 2
    assert capsys.readouterr().err == f"error: A file already exists at {str(out)!r}; pass --overwrite to replace it.\n"
    assert out.read_bytes() == b"mine"
    assert main(["export", bert_ckpt, str(out), "--preset", "bert", "--overwrite"]) == 0
    assert_is_bert(safetensors_torch.load_file(str(out)), bert_ckpt)


def test_model_from_a_file_writes_the_keras_weights_file(dense_ckpt, tmp_path, capsys):
    models = tmp_path / "models" / "kmodels.py"
    models.parent.mkdir()
    models.write_text(KERAS_MODELS)
    out = tmp_path / "net.weights.h5"
    assert main(["export", dense_ckpt, str(out), "--model", f"{models}:build", "--rule", "old/=/"]) == 0
    assert capsys.readouterr().out.startswith(f"Wrote 4 tensors (104 B) to {str(out)!r}")
    model = runpy.run_path(str(models))["build"]()  # the same model, built here
    model.load_weights(str(out))
    reader = tf.train.load_checkpoint(dense_ckpt)
    for variable in model.weights:
        assert np.array_equal(np.asarray(variable), reader.get_tensor(f"old/{variable.path}")), variable.path
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    hidden = np.maximum(x @ reader.get_tensor("old/hidden/kernel") + reader.get_tensor("old/hidden/bias"), 0)
    expected = hidden @ reader.get_tensor("old/head/kernel") + reader.get_tensor("old/head/bias")
    np.testing.assert_allclose(np.asarray(model(x)), expected, rtol=1e-6)


def test_a_model_that_does_not_fit_names_the_rule(dense_ckpt, tmp_path, capsys):
    models = tmp_path / "kmodels.py"
    models.write_text(KERAS_MODELS)
    out = tmp_path / "net.weights.h5"
    assert main(["export", dense_ckpt, str(out), "--model", f"{models}:build"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: Nothing was written to {str(out)!r}: the model does not fit")
    assert "Try --rule old/=/ (it maps 4 of the 4 unmapped variables)." in err
    assert not out.exists()
    assert main(["export", dense_ckpt, str(out), "--model", f"{models}:build", "--dry-run"]) == 2
    assert "hint: --rule old/=/ would map 4 of the 4" in capsys.readouterr().out and not out.exists()


@pytest.mark.parametrize("spec, message", [
    ("{models}:nope", "--model '{models}:nope': '{models}' has no function 'nope'."),
    ("{folder}/missing.py:build", "--model '{folder}/missing.py:build': there is no file '{folder}/missing.py'."),
    ("no_such_module_here:build", "--model 'no_such_module_here:build': cannot import 'no_such_module_here': "),
])
def test_a_bad_model_spec_is_one_error_line(dense_ckpt, tmp_path, capsys, spec, message):
    models = tmp_path / "kmodels.py"
    models.write_text(KERAS_MODELS)
    spec, message = (text.format(models=models, folder=tmp_path) for text in (spec, message))
    assert main(["export", dense_ckpt, str(tmp_path / "x.safetensors"), "--model", spec]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1


def test_model_may_be_a_torch_module(tmp_path):
    rng = np.random.default_rng(2)
    shapes = {"hidden/kernel": (3, 4), "hidden/bias": (4,), "head/kernel": (4, 2), "head/bias": (2,)}
    values = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    src = save_graph_checkpoint(tmp_path / "keras_names.ckpt", values)
    models = tmp_path / "tmodels.py"
    models.write_text(TORCH_MODELS)
    out = tmp_path / "net.safetensors"
    assert main(["export", src, str(out), "--model", f"{models}:build"]) == 0
    net = runpy.run_path(str(models))["build"]()  # the same module, built here
    net.load_state_dict(safetensors_torch.load_file(str(out)), strict=True)
    for layer in ("hidden", "head"):
        assert np.array_equal(net.state_dict()[f"{layer}.weight"].numpy(), values[f"{layer}/kernel"].T)
        assert np.array_equal(net.state_dict()[f"{layer}.bias"].numpy(), values[f"{layer}/bias"])


def test_prefer_ema_exports_the_shadows_for_a_model_and_for_a_preset(tmp_path, capsys):
    """An EMA-trained checkpoint leaves TensorFlow with its averaged weights: --prefer-ema takes each
    variable's ExponentialMovingAverage shadow, by the model's plan and by the preset alike."""
    rng = np.random.default_rng(3)
    shapes = {"hidden/kernel": (3, 4), "hidden/bias": (4,), "head/kernel": (4, 2), "head/bias": (2,)}
    raw = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    shadows = {f"{k}/ExponentialMovingAverage": v * 0.5 for k, v in raw.items()}
    src = save_graph_checkpoint(tmp_path / "ema.ckpt", {**raw, **shadows})
    models = tmp_path / "tmodels.py"
    models.write_text(TORCH_MODELS)
    for prefer, expected in ((False, raw), (True, {k: v * 0.5 for k, v in raw.items()})):
        out = tmp_path / f"net-{prefer}.safetensors"
        assert main(["export", src, str(out), "--model", f"{models}:build", *(["--prefer-ema"] * prefer)]) == 0
        state = safetensors_torch.load_file(str(out))
        for layer in ("hidden", "head"):
            assert np.array_equal(state[f"{layer}.weight"].numpy(), expected[f"{layer}/kernel"].T), (prefer, layer)
            assert np.array_equal(state[f"{layer}.bias"].numpy(), expected[f"{layer}/bias"]), (prefer, layer)

    values = bert_values()
    bert = save_graph_checkpoint(tmp_path / "bert_ema.ckpt", {
        **values, **{f"{k}/ExponentialMovingAverage": np.asarray(values[k]) + 1.0 for k in bert_weights()}})
    out = tmp_path / "bert.safetensors"
    assert main(["export", bert, str(out), "--preset", "bert", "--prefer-ema", "--dry-run"]) == 0
    assert "bert/embeddings/word_embeddings/ExponentialMovingAverage" in capsys.readouterr().out
    assert main(["export", bert, str(out), "--preset", "bert", "--prefer-ema"]) == 0
    model = transformers.BertModel(transformers.BertConfig(**CONFIG))
    model.load_state_dict(safetensors_torch.load_file(str(out)), strict=True)
    for tf_name in bert_weights():
        shadow = np.asarray(values[tf_name]) + np.float32(1.0)
        assert np.array_equal(model.state_dict()[hf_name(tf_name)].numpy(), shadow.T if is_kernel(tf_name) else shadow)


def test_without_a_preset_or_a_model_every_tensor_keeps_its_key(dense_ckpt, tmp_path, capsys):
    """``export SRC OUT``: a TF checkpoint's weights out of TensorFlow under their keys, the object graph
    left out and said."""
    reader = tf.train.load_checkpoint(dense_ckpt)
    out = tmp_path / "same.safetensors"
    assert main(["export", dense_ckpt, str(out)]) == 0
    state = safetensors_torch.load_file(str(out))
    assert sorted(state) == sorted(reader.get_variable_to_shape_map())
    for key, tensor in state.items():
        assert np.array_equal(tensor.numpy(), reader.get_tensor(key)), key
    assert main(["export", dense_ckpt, str(tmp_path / "net.pt"), "--rule", "old/=net/"]) == 0
    assert sorted(torch.load(str(tmp_path / "net.pt"), weights_only=True)) == [
        "net/head/bias", "net/head/kernel", "net/hidden/bias", "net/hidden/kernel"]
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="dense")])
    tf2 = tf.train.Checkpoint(model=model).write(str(tmp_path / "tf2" / "ckpt"))
    capsys.readouterr()
    assert main(["export", tf2, str(tmp_path / "tf2.safetensors")]) == 0
    assert capsys.readouterr().out.startswith("Wrote 2 tensors (32 B)")
    assert sorted(safetensors_torch.load_file(str(tmp_path / "tf2.safetensors"))) == sorted(
        k for k in tf.train.load_checkpoint(tf2).get_variable_to_shape_map() if k != "_CHECKPOINTABLE_OBJECT_GRAPH")


@pytest.fixture
def adam_ckpt(tmp_path):
    """A TF1 Saver checkpoint after one Adam step: net/w, its two slots, beta powers, global_step."""
    return save_adam_checkpoint(tmp_path / "adam.ckpt")


def test_without_a_preset_the_optimizer_state_is_left_out_and_said(adam_ckpt, tmp_path, capsys):
    """No other framework's optimizer reads TF's slots: ``export`` leaves them out as ``strip`` does,
    ``--keep-optimizer`` writes them too."""
    reader = tf.train.load_checkpoint(adam_ckpt)
    optimizer = ["beta1_power", "beta2_power", "net/w/Adam", "net/w/Adam_1"]
    assert set(optimizer) < set(reader.get_variable_to_shape_map())
    out = tmp_path / "net.safetensors"
    assert main(["export", adam_ckpt, str(out), "--dry-run"]) == 0
    shown = capsys.readouterr().out
    assert "\nLeft out (4):\n" in shown and shown.endswith("(dry run: nothing written)\n"), shown
    assert "net/w/Adam: optimizer state (slot)" in shown and "beta1_power: optimizer state (meta)" in shown, shown
    assert not out.exists()
    assert main(["export", adam_ckpt, str(out)]) == 0
    state = safetensors_torch.load_file(str(out))
    assert sorted(state) == ["global_step", "net/w"]
    assert np.array_equal(state["net/w"].numpy(), reader.get_tensor("net/w"))
    assert state["global_step"].item() == reader.get_tensor("global_step") == 1
    everything = tmp_path / "all.safetensors"
    assert main(["export", adam_ckpt, str(everything), "--keep-optimizer"]) == 0
    assert sorted(safetensors_torch.load_file(str(everything))) == sorted(["global_step", "net/w"] + optimizer)
    capsys.readouterr()
    assert main(["export", adam_ckpt, str(tmp_path / "b.safetensors"), "--preset", "bert", "--keep-optimizer"]) == 2
    assert "--keep-optimizer" in capsys.readouterr().err


def test_help_has_an_example(capsys):
    with pytest.raises(SystemExit) as info:
        main(["export", "--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0 and out.startswith("usage: ckptwidgets export")
    assert "python -m ckptwidgets export bert_model.ckpt model.safetensors --preset bert" in " ".join(out.split())


def test_python_m_ckptwidgets_export_a_model_module(dense_ckpt, tmp_path):
    """The one run as a user types it: MODULE:FUNCTION from the current folder, TensorFlow quiet."""
    (tmp_path / "kmodels.py").write_text(KERAS_MODELS)
    run = subprocess.run([sys.executable, "-m", "ckptwidgets", "export", dense_ckpt, "net.weights.h5", "--model",
                          "kmodels:build", "--rule", "old/=/"], capture_output=True, text=True, env=ENV, timeout=300,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("Wrote 4 tensors (104 B) to 'net.weights.h5'") and run.stderr == ""
    model = runpy.run_path(str(tmp_path / "kmodels.py"))["build"]()
    model.load_weights(str(tmp_path / "net.weights.h5"))
    kernel = model.get_layer("hidden").kernel
    assert np.array_equal(np.asarray(kernel), tf.train.load_checkpoint(dense_ckpt).get_tensor("old/hidden/kernel"))
