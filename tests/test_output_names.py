"""An output's name is what the user gets: a write refuses a name it would honour only in
name (``model.bin`` as ``model.bin.index``, a folder as ``folder/.index``; for ``convert``,
which writes TF checkpoints only, any other format's name), ``--dry-run`` and
``write(dry_run=True)`` refuse what the write itself would refuse and say what the format
leaves out, writing nothing, and ``average`` with OUT named last says OUT comes first.

The oracle of "nothing written" is the folder's listing before and after; of "the same
refusal", the message of the real write.
"""
from __future__ import annotations

import os

import keras
import numpy as np
import pytest

from ckptwidgets import WriteError, open_checkpoint
from ckptwidgets.__main__ import main
from ckptwidgets.sources.arrays import ArraySource
from ckptwidgets.write import plan_write

TENSORS = {"old/w": np.arange(6, dtype=np.float32).reshape(2, 3), "old/b": np.ones(3, np.float32)}


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "src.safetensors"
    plan_write(ArraySource(TENSORS)).write(path, progress=False)
    return str(path)


def listing(folder) -> list:
    return sorted(os.path.relpath(os.path.join(root, name), folder)
                  for root, dirs, files in os.walk(folder) for name in files + dirs)


@pytest.mark.parametrize("name", ["model.bin", "model.keras", "model.h5", "model.npz", "model.json", "MODEL.BIN"])
def test_a_file_format_not_written_is_refused_by_name(tmp_path, source, name):
    before = listing(tmp_path)
    with pytest.raises(WriteError) as caught:
        plan_write(source).write(tmp_path / name, progress=False)
    message = str(caught.value)
    stem = str(tmp_path / name.split(".")[0])
    assert f"ckptwidgets writes no '{os.path.splitext(name)[1].lower()}' file" in message, message
    assert repr(str(tmp_path / name) + ".index") in message
    for suggestion in (".safetensors", ".pt", ".weights.h5", ".ckpt"):
        assert repr(stem + suggestion) in message, (suggestion, message)
    assert listing(tmp_path) == before
    report = plan_write(source).write(stem + ".ckpt", progress=False)  # the suggestion is writable
    assert sorted(open_checkpoint(report.prefix).keys()) == sorted(TENSORS)


@pytest.mark.parametrize("trailing", ["", "/"])
def test_a_folder_is_refused_with_a_name_in_it(tmp_path, source, trailing):
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(WriteError, match=r"it is a folder; name the checkpoint in it \('.*out/model.ckpt'\)"):
        plan_write(source).write(str(folder) + trailing, progress=False)
    assert os.listdir(folder) == []  # before: '.index' and '.data-...' hidden in it
    if trailing:
        with pytest.raises(WriteError, match="it is a folder"):
            plan_write(source).write(str(tmp_path / "new") + trailing, progress=False)  # not there yet
        assert not (tmp_path / "new").exists()


def test_a_data_file_is_refused_naming_its_prefix(tmp_path, source):
    out = str(tmp_path / "model.ckpt.data-00000-of-00001")
    with pytest.raises(WriteError, match=r"names a TF checkpoint's data file; name the checkpoint by its prefix "
                                         r"\('.*model.ckpt'\)"):
        plan_write(source).write(out, progress=False)
    assert listing(tmp_path) == ["src.safetensors"]


def test_an_index_file_names_its_prefix(tmp_path, source):
    report = plan_write(source).write(tmp_path / "model.ckpt.index", progress=False)
    assert report.prefix == str(tmp_path / "model.ckpt")
    assert listing(tmp_path) == ["model.ckpt.data-00000-of-00001", "model.ckpt.index", "src.safetensors"]


def _model():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, name="dense")], name="net")
    return model


@pytest.mark.parametrize("out, model", [("a.ckpt.index", False), ("a.safetensors", False), ("a.pt", False),
                                        ("a.weights.h5", True)])
def test_dry_run_reports_what_it_would_write_and_writes_nothing(tmp_path, source, out, model):
    plan = plan_write(source).rename({"old/w": "net/dense/kernel", "old/b": "net/dense/bias"}) if model else plan_write(source)
    options = {"model": _model()} if model else {}
    dry = plan.write(tmp_path / out, dry_run=True, **options)
    assert dry.dry_run and dry.files == [] and dry.prefix == str(tmp_path / out).removesuffix(".index")
    assert str(dry).startswith(f"Would write 2 tensors (36 B) to {dry.prefix!r}")
    assert listing(tmp_path) == ["src.safetensors"]
    report = plan.write(tmp_path / out, progress=False, **options)  # the real write: the same path, keys, bytes
    assert (report.prefix, report.keys, report.nbytes, report.dropped) == (dry.prefix, dry.keys, dry.nbytes, dry.dropped)
    assert not report.dry_run and report.files
    for overwrite in (False, True):
        call = {"overwrite": overwrite, **options}
        if overwrite:
            assert plan.write(tmp_path / out, dry_run=True, **call).prefix == dry.prefix
            continue
        with pytest.raises(WriteError) as real:
            plan.write(tmp_path / out, progress=False, **call)
        with pytest.raises(WriteError) as refused:
            plan.write(tmp_path / out, dry_run=True, **call)
        assert str(refused.value) == str(real.value) and "already exists" in str(refused.value)


def test_dry_run_refuses_a_keras_file_without_its_unmapped_variables(tmp_path, source):
    plan = plan_write(source).rename({"old/w": "net/dense/kernel"})  # the bias is not mapped
    with pytest.raises(WriteError) as dry:
        plan.write(tmp_path / "a.weights.h5", dry_run=True, model=_model())
    with pytest.raises(WriteError) as real:
        plan.write(tmp_path / "a.weights.h5", progress=False, model=_model())
    assert str(dry.value) == str(real.value) and "'net/dense/bias'" in str(dry.value)
    assert listing(tmp_path) == ["src.safetensors"]


@pytest.mark.parametrize("out, error", [
    ("src.safetensors", "is the input checkpoint itself"),
    ("taken.pt", "A file already exists at 'taken.pt'; pass --overwrite to replace it."),
    ("model.bin", "ckptwidgets writes no '.bin' file"),
    ("out/", "it is a folder"),
    ("new.weights.h5", "needs the model whose layout it takes: 'export SRC OUT --model MODULE:FUNCTION'"),
])
def test_cli_dry_run_refuses_what_the_write_would(tmp_path, source, capsys, monkeypatch, out, error):
    monkeypatch.chdir(tmp_path)
    plan_write(source).write("taken.pt", progress=False)
    before = listing(tmp_path)
    assert main(["rename", "src.safetensors", out, "--rule", "old/=new/", "--dry-run"]) == 2
    captured = capsys.readouterr()
    assert "new/w  old/w  copy" in captured.out and captured.out.endswith("(dry run: nothing written)\n")
    assert captured.err.startswith("error: ") and error in captured.err and captured.err.count("\n") == 1, captured.err
    assert main(["rename", "src.safetensors", out, "--rule", "old/=new/"]) == 2  # the real run: the same line
    assert capsys.readouterr().err == captured.err
    assert listing(tmp_path) == before


def test_cli_dry_run_of_a_writable_output_exits_0(tmp_path, source, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plan_write(source).write("taken.pt", progress=False)
    assert main(["rename", "src.safetensors", "taken.pt", "--rule", "old/=new/", "--dry-run", "--overwrite"]) == 0
    assert main(["strip", "src.safetensors", "copy.ckpt.index", "--dry-run"]) == 0
    assert capsys.readouterr().err == ""
    assert listing(tmp_path) == ["src.safetensors", "taken.pt"]


def test_average_with_out_named_last_says_out_comes_first(tmp_path, source, capsys, monkeypatch):
    """``average a b avg`` (OUT last, as other subcommands take it): no write, and the order said."""
    monkeypatch.chdir(tmp_path)
    plan_write(source).write("b.safetensors", progress=False)
    before = listing(tmp_path)
    assert main(["average", "src.safetensors", "b.safetensors", "avg.safetensors"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: No safetensors file at 'avg.safetensors'.") and err.count("\n") == 1
    assert "If 'avg.safetensors' is the output: average writes its first argument, OUT " \
           "('average avg.safetensors src.safetensors b.safetensors')." in err
    plan_write(source).write("c.safetensors", progress=False)
    before = listing(tmp_path)
    assert main(["average", "src.safetensors", "b.safetensors", "c.safetensors", "--dry-run"]) == 2
    err = capsys.readouterr().err  # every name a checkpoint: OUT, the first, would be replaced
    assert "OUT 'src.safetensors' is a checkpoint already: average writes its first argument" in err
    assert "pass --overwrite to replace it with the mean of b.safetensors c.safetensors." in err
    assert main(["average", "src.safetensors", "b.safetensors", "src.safetensors"]) == 2
    assert "is the input checkpoint itself" in capsys.readouterr().err  # OUT among SRC: never, even with --overwrite
    assert listing(tmp_path) == before
    assert main(["average", "avg.safetensors", "src.safetensors", "b.safetensors"]) == 0  # the order it takes
    assert "avg.safetensors" in listing(tmp_path)


@pytest.mark.parametrize("name, claimed", [("tf2.safetensors", "safetensors"), ("tf2.pt", "torch"),
                                           ("tf2.weights.h5", "keras")])
def test_convert_refuses_a_name_another_format_writes(tmp_path, name, claimed):
    """``convert`` writes a TF checkpoint: an OUT of another format would be ``tf2.pt.index``."""
    from ckptwidgets.convert import convert

    source = tmp_path / "tf1.safetensors"
    plan_write(ArraySource({"net/dense/kernel": np.ones((2, 3), np.float32),
                            "net/dense/bias": np.ones(3, np.float32)})).write(source, progress=False)
    model = _model()
    before = [w.numpy().copy() for w in model.weights]
    with pytest.raises(WriteError, match=rf"it names a {claimed} file, and this writes a TF checkpoint "
                                         rf"\('.*{name}.index' and its data files\); name it '.*tf2.ckpt'"):
        convert(str(source), tmp_path / name, model)
    assert listing(tmp_path) == ["tf1.safetensors"]
    assert all(np.array_equal(w.numpy(), b) for w, b in zip(model.weights, before))
    assert convert(str(source), tmp_path / "tf2.ckpt", model).prefix == str(tmp_path / "tf2.ckpt")


def test_cli_dry_run_names_what_the_format_leaves_out(tmp_path, capsys, monkeypatch):
    """A string is no tensor of safetensors: the dry run says it is left out, as the write does."""
    monkeypatch.chdir(tmp_path)
    plan_write(ArraySource({"w": np.zeros(2, np.float32), "name": np.array(b"run-7", dtype=object)})).write(
        "src.ckpt", progress=False)
    assert main(["strip", "src.ckpt", "out.safetensors", "--kind", "ema", "--dry-run"]) == 2
    captured = capsys.readouterr()  # the write refuses a string that is no object graph: so does the dry run
    assert "key 'name' is string, which safetensors cannot hold" in captured.err
    assert main(["export", "src.ckpt", "out.pt", "--dry-run", "--rule", "name=label"]) == 2
    captured = capsys.readouterr()
    assert captured.err == ("error: Nothing was written to 'out.pt': key 'label' is string, which a torch tensor "
                            "cannot hold (leave them out with 'strip SRC OUT --filter ...', or cast them).\n")
    assert captured.out.endswith("(dry run: nothing written)\n")
    import tensorflow as tf

    tf2 = tf.train.Checkpoint(w=tf.Variable([1.0, 2.0])).write("tf2/ckpt")
    assert main(["export", tf2, "out.safetensors", "--dry-run"]) == 0
    out = capsys.readouterr().out  # TF's object graph is in the plan, and the format leaves it out
    assert out.endswith("Left out by 'out.safetensors' (1):\n  _CHECKPOINTABLE_OBJECT_GRAPH: TensorFlow's object graph "
                        "(a string): safetensors holds numbers only\n(dry run: nothing written)\n"), out
    assert not os.path.exists("out.safetensors") and not os.path.exists("out.pt")
