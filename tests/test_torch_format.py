"""PyTorch state dicts as a format (issue #25 item 2): read, listed, diffed, browsed, written.

The oracle is torch itself: files to read are written by ``torch.save(module.state_dict())``,
values are compared with ``tensor.numpy()`` bit for bit (bfloat16 through its int16 bits),
and files we write are loaded by ``torch.load(weights_only=True)`` into a module with
``load_state_dict(strict=True)``. TensorFlow's own reader is the oracle of a TF1 checkpoint
written out as ``.pt``.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file
from torch import nn

import ckptwidgets
from ckptwidgets import (CheckpointError, CheckpointNotFoundError, CheckpointWarning, CorruptCheckpointError, WriteError,
                         open_checkpoint, plan_restore, plan_write, restore)
from ckptwidgets.__main__ import main
from ckptwidgets.codegen import to_code
from ckptwidgets.sources import writer_for
from ckptwidgets.sources.arrays import ArraySource
from ckptwidgets.widgets import BrowserModel

from conftest import save_graph_checkpoint, tf


def make_module(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    module = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Conv2d(2, 3, 3), nn.Embedding(5, 2))
    with torch.no_grad():  # running statistics that are not the defaults
        module[1].running_mean.uniform_()
        module[1].running_var.uniform_(0.5, 2.0)
        module[1].num_batches_tracked.fill_(7)
    return module


def bits(tensor: torch.Tensor) -> bytes:
    """What ``tensor.numpy()`` holds, as bytes (bfloat16, which numpy lacks, through its int16 bits)."""
    tensor = tensor.detach().contiguous()
    return (tensor.view(torch.int16) if tensor.dtype == torch.bfloat16 else tensor).numpy().tobytes()


def saved(path, state: dict, **options) -> str:
    torch.save(state, str(path), **options)
    return str(path)


def sha256(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture
def state():
    """A module's state dict and tensors of the other dtypes a state dict holds."""
    out = make_module().state_dict()
    generator = torch.Generator().manual_seed(1)
    out["extra.half"] = torch.randn(3, 2, generator=generator).half()
    out["extra.bf16"] = torch.randn(4, generator=generator).bfloat16()
    out["extra.ids"] = torch.arange(-3, 3, dtype=torch.int64)
    out["extra.mask"] = torch.tensor([True, False])
    out["extra.big"] = torch.randn(600, 600, generator=generator)  # over a MiB: a mapped view
    out["extra.transposed"] = torch.randn(3, 5, generator=generator).t()  # saved with its strides
    return out


# --- reading -------------------------------------------------------------------------------------


def test_a_state_dict_reads_bit_for_bit_as_torch_holds_it(tmp_path, state):
    for name, options in (("zip.pt", {}), ("legacy.pth", {"_use_new_zipfile_serialization": False})):
        ckpt = open_checkpoint(saved(tmp_path / name, state, **options))
        assert ckpt.source.format == "torch" and ckpt.source.layout == name.split(".")[0]
        assert [(e.key, e.dtype, tuple(e.shape), e.nbytes) for e in ckpt] == sorted(
            (k, str(t.dtype)[len("torch."):], tuple(t.shape), t.numel() * t.element_size()) for k, t in state.items())
        for key, tensor in state.items():
            value = ckpt.read(key)
            assert value.shape == tuple(tensor.shape) and value.tobytes() == bits(tensor), key
            assert not value.flags.writeable and ckpt.read(key, copy=True).flags.writeable
        assert str(ckpt["extra.bf16"].dtype) == "bfloat16" and ckpt.read("extra.bf16").dtype.name == "bfloat16"
        assert dict(ckpt.read_many(["extra.ids", "0.bias"])).keys() == {"extra.ids", "0.bias"}


def mapped_file_of(value: np.ndarray) -> str | None:
    """The file whose memory mapping holds ``value``'s first byte (Linux's /proc/self/maps), or None."""
    address = value.ctypes.data
    for line in open("/proc/self/maps"):
        fields = line.split(maxsplit=5)
        start, end = (int(x, 16) for x in fields[0].split("-"))
        if start <= address < end:
            return fields[5].strip() if len(fields) == 6 else None
    return None


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="reads Linux's memory map")
def test_values_are_read_in_place_from_the_mapped_file(tmp_path, state):
    path = saved(tmp_path / "m.pt", state)
    ckpt = open_checkpoint(path)
    assert mapped_file_of(ckpt.read("extra.big")) == os.path.realpath(path)  # no second copy of the file
    assert mapped_file_of(ckpt.read("extra.big", copy=True)) != os.path.realpath(path)
    torch.save({"other": torch.zeros(3)}, path)  # replaced after it was opened
    with pytest.raises(CorruptCheckpointError, match=r"'.*m\.pt' changed since it was opened \(key 'extra\.big'\)"):
        ckpt.read("extra.big")


def test_values_that_are_not_tensors_are_left_out_and_said(tmp_path):
    path = saved(tmp_path / "mixed.pt", {"w": torch.ones(2), "epoch": 3, "optimizer": {"lr": 0.1}, 0: torch.zeros(1),
                                        "e8": torch.zeros(2, dtype=torch.float8_e8m0fnu), "sparse": torch.eye(2).to_sparse()})
    with pytest.warns(CheckpointWarning, match=r"mixed\.pt.*5 values that are not readable tensors.*'epoch' \(not a tensor: int 3\).*'optimizer'"):
        ckpt = open_checkpoint(path)
    assert ckpt.keys() == ["w"]
    assert dict(ckpt.source.skipped) == {"0": "a key that is not a string (Tensor)", "epoch": "not a tensor: int 3",
                                         "optimizer": "not a tensor: dict of 1",
                                         "e8": "dtype float8_e8m0fnu, which has no TensorFlow dtype",
                                         "sparse": "a sparse_coo tensor (only dense tensors are read)"}
    with pytest.warns(CheckpointWarning), contextlib.redirect_stdout(io.StringIO()) as out:
        assert main(["ls", path]) == 0
    assert out.getvalue().splitlines()[0] == (f"checkpoint {path} (PyTorch state dict, 1 entry, 5 left out "
                                              "(not readable tensors): epoch, optimizer, 0, e8, sparse)")


def test_files_that_are_not_a_state_dict_are_our_error_naming_the_file(tmp_path, state):
    full = saved(tmp_path / "train.pt", {"epoch": 3, "model": state, "optimizer": {"param_groups": [{"lr": 0.1}]}})
    with pytest.raises(CorruptCheckpointError, match=r"'.*train\.pt'.*no tensor at its top level.*'model' holds "
                                                     r"tensors.*\['model'\].*reads a state dict \{name: tensor\}"):
        open_checkpoint(full)
    good = saved(tmp_path / "good.pt", state)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(open(good, "rb").read()[:1000])
    with pytest.raises(CorruptCheckpointError, match=r"'.*truncated\.pt' is damaged.*failed reading zip archive"):
        open_checkpoint(str(truncated))
    legacy = saved(tmp_path / "legacy.pt", state, _use_new_zipfile_serialization=False)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(open(legacy, "rb").read()[:300])
    with pytest.raises(CorruptCheckpointError, match=r"'.*cut\.pt' is damaged.*torch cannot load it"):
        open_checkpoint(str(cut))
    (tmp_path / "text.pt").write_text("not a torch file")
    with pytest.raises(CorruptCheckpointError, match=r"'.*text\.pt'.*neither a zip archive holding data\.pkl"):
        open_checkpoint(str(tmp_path / "text.pt"))
    with pytest.raises(CorruptCheckpointError, match=r"'.*one\.pt'.*a single tensor, not a dict of tensors"):
        open_checkpoint(saved(tmp_path / "one.pt", torch.ones(2)))
    with pytest.raises(CorruptCheckpointError, match=r"'.*module\.pt'.*refuses to run \(Unsupported global.*Linear"):
        open_checkpoint(saved(tmp_path / "module.pt", nn.Linear(2, 2)))
    torch.jit.save(torch.jit.script(nn.Linear(2, 2)), str(tmp_path / "script.pt"))
    with pytest.raises(CorruptCheckpointError, match=r"'.*script\.pt' .*a TorchScript archive"):
        open_checkpoint(str(tmp_path / "script.pt"))
    with pytest.raises(CheckpointNotFoundError, match=r"No PyTorch file at '.*god\.pt'.*Did you mean 'good\.pt'"):
        open_checkpoint(str(tmp_path / "god.pt"))


def test_a_bin_is_claimed_only_when_torch_wrote_it(tmp_path, state):
    hf = saved(tmp_path / "pytorch_model.bin", state)
    assert open_checkpoint(hf).source.format == "torch"
    legacy = saved(tmp_path / "old.bin", state, _use_new_zipfile_serialization=False)
    assert open_checkpoint(legacy).source.layout == "legacy"
    other = tmp_path / "weights.bin"
    other.write_bytes(np.arange(64, dtype=np.float32).tobytes())
    with pytest.raises(CheckpointError) as error:
        open_checkpoint(str(other))
    assert "PyTorch" not in str(error.value) and not isinstance(error.value, CheckpointWarning)
    from ckptwidgets.sources import torch as torch_format

    assert torch_format.detect(str(other)) is None and torch_format.detect(str(tmp_path / "missing.bin")) is None


def test_ls_diff_and_the_browser_on_a_pt_file(tmp_path, state):
    path = saved(tmp_path / "model.pt", state)
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert main(["ls", path]) == 0
    lines = out.getvalue().splitlines()
    assert lines[0] == f"checkpoint {path} (PyTorch state dict, {len(state)} entries)"
    assert any(line.split() == ["0.weight", "variable", "float32", "[4,", "3]", "48", "B"] for line in lines)
    changed = dict(state, **{"0.bias": state["0.bias"] + 1})
    other = str(tmp_path / "other.safetensors")
    plan_write(saved(tmp_path / "changed.pt", changed)).write(other, progress=False)
    diff = ckptwidgets.diff_checkpoints(path, other)
    assert diff.find("0.bias").status == "changed" and diff.find("0.weight").status == "identical"
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert main(["diff", path, other]) == 0
    assert "1 changed" in out.getvalue()
    model = BrowserModel(path)
    assert model.error == "" and "2.weight" in [e.key for e in model.matches]
    model.selected = "extra.big"
    assert model.stats.mean == pytest.approx(state["extra.big"].double().mean().item()) and len(model.png) > 0


# --- writing -------------------------------------------------------------------------------------


def test_pt_to_safetensors_to_pt_loads_strictly_into_the_module(tmp_path):
    module = make_module(seed=3)
    source = saved(tmp_path / "in.pt", module.state_dict())
    middle, back = str(tmp_path / "mid.safetensors"), str(tmp_path / "back.pt")
    plan_write(source).write(middle, progress=False)
    report = plan_write(middle).write(back, progress=False)
    assert report.files == [back] and sorted(os.listdir(tmp_path)) == ["back.pt", "in.pt", "mid.safetensors"]
    loaded = torch.load(back, weights_only=True)
    assert list(loaded) == sorted(module.state_dict())  # the plan's order
    assert all(t.is_contiguous() and t.device.type == "cpu" for t in loaded.values())
    fresh = make_module(seed=4)
    fresh.load_state_dict(loaded, strict=True)
    for key, tensor in module.state_dict().items():
        assert bits(fresh.state_dict()[key]) == bits(tensor) and fresh.state_dict()[key].dtype == tensor.dtype, key
    module.eval(), fresh.eval()
    x = torch.randn(5, 3)
    assert torch.equal(fresh[1](fresh[0](x)), module[1](module[0](x)))


def test_every_dtype_written_is_what_was_read(tmp_path, state):
    source = saved(tmp_path / "in.pt", state)
    back = str(tmp_path / "out.pt")
    plan_write(plan_write(source).write(str(tmp_path / "via.safetensors"), progress=False).prefix).write(back, progress=False)
    loaded = torch.load(back, weights_only=True)
    assert {k: (t.dtype, bits(t)) for k, t in loaded.items()} == {k: (t.dtype, bits(t)) for k, t in state.items()}


def test_a_tf1_checkpoint_renamed_to_a_modules_names_loads_strictly(tmp_path):
    module = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    rng = np.random.default_rng(5)
    values = {"fc/weight": rng.random((4, 3), np.float32), "fc/bias": rng.random(4, np.float32),
              "bn/gamma": rng.random(4, np.float32), "bn/beta": rng.random(4, np.float32),
              "bn/moving_mean": rng.random(4, np.float32), "bn/moving_variance": rng.random(4, np.float32) + 1,
              "global_step": np.int64(9)}
    prefix = save_graph_checkpoint(tmp_path / "tf1" / "model.ckpt", values)
    names = {"fc/weight": "0.weight", "fc/bias": "0.bias", "bn/gamma": "1.weight", "bn/beta": "1.bias",
             "bn/moving_mean": "1.running_mean", "bn/moving_variance": "1.running_var"}
    out = str(tmp_path / "module.pt")
    plan_write(prefix).strip(kinds=("slot", "meta"), keep=()).rename(pairs=names).write(out, progress=False)
    loaded = torch.load(out, weights_only=True)
    module.load_state_dict(loaded, strict=True)  # BatchNorm fills in the num_batches_tracked TF never had
    reader = tf.train.load_checkpoint(prefix)
    for tf_name, torch_name in names.items():
        assert module.state_dict()[torch_name].numpy().tobytes() == reader.get_tensor(tf_name).tobytes(), torch_name


def test_a_keras_weights_file_written_as_pt(tmp_path):
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="hidden")], name="net")
    weights = str(tmp_path / "net.weights.h5")
    model.save_weights(weights)
    out = str(tmp_path / "net.pt")
    report = plan_write(weights).write(out, progress=False)
    loaded = torch.load(out, weights_only=True)
    source = open_checkpoint(weights)
    assert sorted(loaded) == report.keys == source.keys()
    assert all(bits(loaded[key]) == np.asarray(source.read(key)).tobytes() for key in loaded)


def test_refusals_write_nothing(tmp_path, state):
    source = saved(tmp_path / "m.pt", state)
    before = sha256(source)
    plan = plan_write(source)
    os.symlink(source, tmp_path / "link.pt")
    for spelled in (source, os.path.relpath(source), str(tmp_path / "link.pt")):
        with pytest.raises(WriteError, match="is the input checkpoint itself"):
            plan.write(spelled, overwrite=True, progress=False)
    assert sha256(source) == before
    (tmp_path / "exists.pt").write_bytes(b"x")
    with pytest.raises(WriteError, match="already exists.*overwrite=True"):
        plan.write(str(tmp_path / "exists.pt"), progress=False)
    strings = ArraySource({"w": np.ones(2, np.float32), "vocab": np.array([b"a", b"b"], dtype=object)})
    with pytest.raises(WriteError, match=r"key 'vocab' is string, which a torch tensor cannot hold"):
        plan_write(strings).write(str(tmp_path / "s.pt"), progress=False)
    assert sorted(os.listdir(tmp_path)) == ["exists.pt", "link.pt", "m.pt"]
    assert (tmp_path / "exists.pt").read_bytes() == b"x"


def test_a_tensor_that_reads_back_other_bytes_is_not_moved_into_place(tmp_path, monkeypatch):
    from ckptwidgets.sources.torch import _write

    saved_as = _write.to_tensor
    monkeypatch.setattr(_write, "to_tensor", lambda value, name: saved_as(value, name) + 1)  # saves other values
    out = tmp_path / "out.pt"
    with pytest.raises(WriteError, match=r"Nothing was written to '.*out\.pt'.*'w' reads back other bytes"):
        plan_write(ArraySource({"w": np.arange(4, dtype=np.float32)})).write(str(out), progress=False)
    assert os.listdir(tmp_path) == []


def test_writer_for_chooses_torch_by_the_suffix():
    assert writer_for("out.pt").__name__ == writer_for("OUT.PTH").__name__ == "ckptwidgets.sources.torch"
    assert writer_for("out.bin").__name__ == "ckptwidgets.sources.bundle"


def test_restore_tf_variables_and_the_code_export(tmp_path, state):
    path = saved(tmp_path / "m.pt", {"fc.weight": state["0.weight"], "fc.bias": state["extra.bf16"]})
    variables = {"fc.weight": tf.Variable(np.zeros((4, 3), np.float32)), "fc.bias": tf.Variable(np.zeros(4), dtype=tf.bfloat16)}
    plan = plan_restore(path, variables)
    assert plan.ok and not plan.unmapped
    restore(plan)
    expected = {"fc.weight": bits(state["0.weight"]), "fc.bias": bits(state["extra.bf16"])}
    assert {k: v.numpy().tobytes() for k, v in variables.items()} == expected
    for variable in variables.values():
        variable.assign(tf.zeros_like(variable))
    code = to_code(plan, "checkpoint")
    assert "torch.load(checkpoint_path, weights_only=True" in code and "import tensorflow" not in code
    exec(code, {"variables": variables})
    assert {k: v.numpy().tobytes() for k, v in variables.items()} == expected


# --- torch imported only for torch files ---------------------------------------------------------

WITHOUT_TORCH = textwrap.dedent(
    """
    import json, sys
    sys.modules["torch"] = None  # torch absent: `import torch` raises ImportError
    import ckptwidgets

    pt, safetensors_file, out = sys.argv[1:]
    result = {"keys": ckptwidgets.open_checkpoint(safetensors_file).keys()}
    for name, run in (("read", lambda: ckptwidgets.open_checkpoint(pt)),
                      ("write", lambda: ckptwidgets.plan_write(safetensors_file).write(out, progress=False))):
        try:
            run()
        except ckptwidgets.CheckpointError as error:
            result[name] = [type(error).__name__, str(error)]
    print(json.dumps(result))
    """
)

TORCH_NOT_IMPORTED = textwrap.dedent(
    """
    import contextlib, io, json, sys
    import ckptwidgets
    from ckptwidgets.__main__ import main

    imported = ["torch" in sys.modules]
    for path in sys.argv[1:]:
        ckpt = ckptwidgets.open_checkpoint(path)
        ckpt.read(ckpt.keys()[0])
        with contextlib.redirect_stdout(io.StringIO()):
            main(["ls", path])
        imported.append("torch" in sys.modules)
    print(json.dumps(imported))
    """
)


def test_without_torch_reading_and_writing_name_the_extra(tmp_path, state):
    pt = saved(tmp_path / "m.pt", state)
    other = plan_write(pt).write(str(tmp_path / "m.safetensors"), progress=False).prefix
    out = str(tmp_path / "out.pt")
    run = subprocess.run([sys.executable, "-c", WITHOUT_TORCH, pt, other, out], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout)
    assert result["keys"] == sorted(state)
    assert result["read"] == ["CheckpointError", f"Reading the PyTorch file {pt!r} needs torch, which is not installed: "
                                                 "pip install 'ckptwidgets[torch]'"]
    assert result["write"][0] == "WriteError" and "pip install 'ckptwidgets[torch]'" in result["write"][1]
    assert not os.path.exists(out) and sorted(os.listdir(tmp_path)) == ["m.pt", "m.safetensors"]


def test_other_formats_never_import_torch(tmp_path, state):
    bundle = save_graph_checkpoint(tmp_path / "tf1" / "model.ckpt", {"v": [1.0]})
    safetensors_file = plan_write(saved(tmp_path / "m.pt", state)).write(str(tmp_path / "m.safetensors"), progress=False).prefix
    run = subprocess.run([sys.executable, "-c", TORCH_NOT_IMPORTED, bundle, safetensors_file], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout) == [False, False, False]
    assert load_file(safetensors_file)["0.weight"].tobytes() == bits(state["0.weight"])
