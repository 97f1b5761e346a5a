"""The checks of notebook 09's exercises (ckptwidgets/checks/pytorch.py): right, wrong, missing.

Real objects throughout: a Keras kernel transposed by NumPy; a TF1 Saver checkpoint of BERT's
names exported by ckptwidgets and loaded by transformers' BertModel (tiny config, nothing
downloaded) with torch.load(weights_only=True); a torch module saved with safetensors, a Keras
model, a real VariableMapper and its Restore.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
safetensors_torch = pytest.importorskip("safetensors.torch")

import keras  # noqa: E402

import ckptwidgets  # noqa: E402
from ckptwidgets.checks import TODO  # noqa: E402
from ckptwidgets.checks import pytorch  # noqa: E402
from ckptwidgets.layouts import IDENTITY  # noqa: E402
from ckptwidgets.presets import apply_preset  # noqa: E402

from _bert import CONFIG, bert_values  # noqa: E402
from _checks import hint, ok, result  # noqa: E402
from conftest import save_graph_checkpoint  # noqa: E402

axes_check, bert_check, head_check = pytorch.conv_kernel_axes, pytorch.bert_file_loads, pytorch.new_head_in_the_mapper


# --- exercise 1: the axes of a conv kernel ----------------------------------------------------
@pytest.fixture
def kernel():
    """A Keras Conv2D kernel [height, width, in, out] as notebook 09's, distinct values."""
    return np.random.default_rng(0).normal(size=(3, 3, 1, 4)).astype("float32")


def test_axes_right(kernel):
    res = ok(result(axes_check, (3, 2, 0, 1), kernel))
    assert "HWIO->OIHW" in res.message and "[4, 1, 3, 3]" in res.message
    ok(result(axes_check, [3, 2, -4, -3], kernel))  # a list, and negative axes as np.transpose takes them
    ok(result(axes_check, np.array([3, 2, 0, 1]), kernel))


def test_axes_missing_or_not_axes(kernel):
    hint(result(axes_check, TODO, kernel), "replace TODO", "(0, 1, 2, 3)")
    hint(result(axes_check, "3201", kernel), "tuple of ints", "str")
    hint(result(axes_check, (1, 0), kernel), "4 of them", "names 2")
    hint(result(axes_check, (3, 3, 0, 1), kernel), "each of 0, 1, 2, 3 once")
    hint(result(axes_check, (3, 2, 0, 1.5), kernel), "tuple of ints")


def test_axes_wrong_shape_names_both(kernel):
    res = hint(result(axes_check, (0, 1, 2, 3), kernel), "[height, width, in, out] = [3, 3, 1, 4]",
               "[out, in, height, width] = [4, 1, 3, 3]")
    hint(result(axes_check, (3, 2, 1, 0)[::-1], kernel), "[4, 1, 3, 3]")
    assert "= [3, 3, 1, 4];" in res.message


def test_axes_right_shape_with_height_and_width_swapped(kernel):
    """(3, 2, 1, 0) gives torch's shape too: only the values tell."""
    assert np.transpose(kernel, (3, 2, 1, 0)).shape == (4, 1, 3, 3)
    hint(result(axes_check, (3, 2, 1, 0), kernel), "shape [4, 1, 3, 3] is right", "height and width")


def test_the_check_prints_one_line(kernel, capsys):
    axes_check(TODO, kernel)
    axes_check((3, 2, 0, 1), kernel)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["Not yet", "Correct"], lines


# --- exercise 2: the BERT export as a .pt file ------------------------------------------------
@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    """``(TF1 prefix, the notebook's safetensors export)`` of a tiny BERT checkpoint."""
    folder = tmp_path_factory.mktemp("bert")
    prefix = save_graph_checkpoint(folder / "bert_model.ckpt", bert_values())
    reference = folder / "model.safetensors"
    apply_preset(ckptwidgets.plan_write(prefix), "bert").write(reference, progress=False)
    return prefix, reference


def test_bert_pt_right(bert, tmp_path):
    prefix, reference = bert
    path = apply_preset(ckptwidgets.plan_write(prefix), "bert").write(tmp_path / "model.pt", progress=False).prefix
    res = ok(result(bert_check, path, reference, CONFIG))
    assert "all 39 tensors" in res.message and "strict=True" in res.message
    ok(result(bert_check, tmp_path / "model.pt", str(reference), CONFIG))  # a Path as well as a str


def test_bert_pt_missing_or_not_a_path(bert, tmp_path):
    _prefix, reference = bert
    hint(result(bert_check, TODO, reference, CONFIG), "replace TODO", ".pt")
    hint(result(bert_check, 3, reference, CONFIG), "a path", "int")
    hint(result(bert_check, tmp_path / "nothing.pt", reference, CONFIG), "there is no file", "nothing.pt")


def test_bert_pt_given_the_safetensors_file(bert):
    _prefix, reference = bert
    hint(result(bert_check, reference, reference, CONFIG), "safetensors file", "'.pt'")


def test_bert_pt_that_torch_cannot_read(bert, tmp_path):
    _prefix, reference = bert
    garbage = tmp_path / "model.pt"
    garbage.write_bytes(b"not a torch file")
    hint(result(bert_check, garbage, reference, CONFIG), "torch.load(..., weights_only=True) cannot read 'model.pt'")
    other = tmp_path / "list.pt"
    torch.save([torch.zeros(2)], other)
    hint(result(bert_check, other, reference, CONFIG), "holds a list", "state dict")


def test_bert_pt_without_the_preset_keeps_tf_names(bert, tmp_path):
    prefix, reference = bert
    path = ckptwidgets.plan_write(prefix).strip().write(tmp_path / "raw.pt", progress=False).prefix
    hint(result(bert_check, path, reference, CONFIG), "TensorFlow's names", "'bert/", "preset 'bert'")


def test_bert_pt_with_a_tensor_missing_is_refused_by_strict_loading(bert, tmp_path):
    prefix, reference = bert
    state = safetensors_torch.load_file(str(reference))
    del state["pooler.dense.bias"]
    torch.save(state, tmp_path / "partial.pt")
    hint(result(bert_check, tmp_path / "partial.pt", reference, CONFIG), "strict=True", "pooler.dense.bias")


def test_bert_pt_with_other_values(bert, tmp_path):
    prefix, reference = bert
    state = safetensors_torch.load_file(str(reference))
    state["encoder.layer.1.output.dense.weight"] = state["encoder.layer.1.output.dense.weight"] + 1
    torch.save(state, tmp_path / "changed.pt")
    hint(result(bert_check, tmp_path / "changed.pt", reference, CONFIG),
         "'encoder.layer.1.output.dense.weight' differs")


# --- exercise 3: a new head in the mapper -----------------------------------------------------
def build_keras_model():
    return keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
         keras.layers.BatchNormalization(name="norm"), keras.layers.Flatten(name="flatten"),
         keras.layers.Dense(3, name="logits")],
        name="cnn",
    )


class TorchCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, kernel_size=3)
        self.norm = torch.nn.BatchNorm2d(4, eps=1e-3, momentum=0.01)
        self.logits = torch.nn.Linear(6 * 6 * 4, 3)


@pytest.fixture(scope="module")
def torch_file(tmp_path_factory):
    torch.manual_seed(0)
    net = TorchCNN()
    with torch.no_grad():  # BatchNorm statistics that differ from Keras' initial ones
        net.norm.running_mean.uniform_(-1, 1)
        net.norm.running_var.uniform_(0.5, 2)
    path = tmp_path_factory.mktemp("cnn") / "cnn.safetensors"
    safetensors_torch.save_file(net.state_dict(), str(path))
    return path


@pytest.fixture
def student(torch_file):
    model = build_keras_model()
    return model, ckptwidgets.VariableMapper(torch_file, model)


HEAD = ("cnn/logits/kernel", "cnn/logits/bias")


def test_head_right_in_the_widget(student, torch_file):
    model, mapper = student
    head_before = [v.numpy().copy() for v in model.weights if v.path in HEAD]
    for name in HEAD:
        mapper.model.choose(name, None)  # the dropdown's (none)
    mapper.restore()  # the Restore button
    res = ok(result(head_check, mapper, model, torch_file))
    assert "6 backbone tensors" in res.message and "cnn.safetensors" in res.message
    assert all(np.array_equal(v.numpy(), before)
               for v, before in zip([v for v in model.weights if v.path in HEAD], head_before))


def test_head_not_done_yet(student, torch_file):
    model, mapper = student
    hint(result(head_check, mapper, model, torch_file), "'cnn/logits/kernel' still reads 'logits.weight'", "(none)")
    hint(result(head_check, "mapper", model, torch_file), "VariableMapper itself", "str")
    mapper.model.choose("cnn/logits/kernel", None)
    hint(result(head_check, mapper, model, torch_file), "'cnn/logits/bias' still reads")


def test_head_left_out_but_restore_not_clicked(student, torch_file):
    model, mapper = student
    for name in HEAD:
        mapper.model.choose(name, None)
    hint(result(head_check, mapper, model, torch_file), "click Restore")
    hint(result(head_check, mapper, None, torch_file), "pass the Keras model")


def test_head_restored_before_it_was_left_out(student, torch_file):
    model, mapper = student
    mapper.restore()
    for name in HEAD:
        mapper.model.choose(name, None)
    hint(result(head_check, mapper, model, torch_file), "holds the old head's values", "Restore")


def test_backbone_left_out_too(student, torch_file):
    model, mapper = student
    for name in HEAD + ("cnn/norm/gamma",):
        mapper.model.choose(name, None)
    hint(result(head_check, mapper, model, torch_file), "'cnn/norm/gamma' has no key", "Auto-map")


def test_a_key_assigned_without_its_transform(student, torch_file):
    """``plan.assign(name, key, transform=IDENTITY)`` reads the key as it is: the conv kernel then
    reads conv.weight untransposed (a shape problem), and 'Let rules decide' gives the transform back."""
    model, mapper = student
    for name in HEAD:
        mapper.model.choose(name, None)
    mapper.model.choose("cnn/conv/kernel", "conv.weight")  # the key it reads: its transform stays
    assert mapper.plan.transform_of("cnn/conv/kernel")[0].name == "OIHW->HWIO"
    mapper.plan.assign("cnn/conv/kernel", "conv.weight", transform=IDENTITY)
    hint(result(head_check, mapper, model, torch_file), "'cnn/conv/kernel' reads as is('conv.weight')",
         "OIHW->HWIO('conv.weight')", "Let rules decide")
    mapper.model.let_rules_decide(["cnn/conv/kernel"])
    mapper.restore()
    ok(result(head_check, mapper, model, torch_file))
