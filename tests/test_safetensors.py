"""safetensors as a format (issue #25 item 1): read, listed, diffed, browsed, written, restored.

The oracle is the ``safetensors`` package itself (its Rust parser: ``safetensors.deserialize``,
``safetensors.numpy.load_file`` where numpy has the dtype, ``safe_open``); files to read
are written by it (``serialize_file``), files we write are read back by it. TensorFlow's
own reader is the oracle of the TF checkpoints written out as safetensors.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import random
import subprocess
import sys
import textwrap
import tracemalloc

import ml_dtypes
import numpy as np
import pytest
import safetensors
from safetensors import TensorSpec, deserialize, serialize_file
from safetensors.numpy import load_file, save_file

import ckptwidgets
from ckptwidgets import (CorruptCheckpointError, CheckpointNotFoundError, WriteError, from_plan, open_checkpoint,
                         plan_restore, plan_write, restore)
from ckptwidgets.__main__ import main
from ckptwidgets.codegen import to_code
from ckptwidgets.sources.arrays import ArraySource
from ckptwidgets.widgets import BrowserModel

from conftest import save_graph_checkpoint, tf

#: safetensors dtype -> (TensorSpec's name for it, numpy type, TensorFlow's name).
DTYPES = {
    "F64": ("float64", np.float64, "float64"),
    "F32": ("float32", np.float32, "float32"),
    "F16": ("float16", np.float16, "float16"),
    "BF16": ("bfloat16", ml_dtypes.bfloat16, "bfloat16"),
    "I64": ("int64", np.int64, "int64"),
    "I32": ("int32", np.int32, "int32"),
    "I16": ("int16", np.int16, "int16"),
    "I8": ("int8", np.int8, "int8"),
    "U8": ("uint8", np.uint8, "uint8"),
    "U16": ("uint16", np.uint16, "uint16"),
    "U32": ("uint32", np.uint32, "uint32"),
    "U64": ("uint64", np.uint64, "uint64"),
    "BOOL": ("bool", np.bool_, "bool"),
    "F8_E4M3": ("float8_e4m3fn", ml_dtypes.float8_e4m3fn, "float8_e4m3fn"),
    "F8_E5M2": ("float8_e5m2", ml_dtypes.float8_e5m2, "float8_e5m2"),
}
DTYPES_TF = {tf_name for _spec, _numpy, tf_name in DTYPES.values()}
NUMPY_KNOWS = {"F64", "F32", "F16", "I64", "I32", "I16", "I8", "U8", "U16", "U32", "U64", "BOOL"}


def random_values(st_dtype: str, shape, seed: int) -> np.ndarray:
    """Random bit patterns of the dtype (NaN payloads, -0.0, subnormals alike); bools 0/1."""
    numpy = np.dtype(DTYPES[st_dtype][1])
    rng = np.random.default_rng(seed)
    count = math.prod(shape)
    if st_dtype == "BOOL":
        return rng.integers(0, 2, count).astype(bool).reshape(shape)
    return rng.integers(0, 256, count * numpy.itemsize, dtype=np.uint8).view(numpy).reshape(shape)


def save_reference(path, arrays: dict, metadata=None) -> str:
    """``arrays`` written by the safetensors package itself (any dtype of :data:`DTYPES`):
    ``safetensors.numpy.save_file``, or for bfloat16 and float8, which it lacks, ``serialize_file``."""
    arrays = {key: np.require(value, requirements="C") for key, value in arrays.items()}  # alive while it writes
    if all(value.dtype.kind in "biuf" and value.dtype.names is None and value.dtype.type.__module__ == "numpy"
           for value in arrays.values()):
        save_file(arrays, os.fspath(path), metadata=metadata)
        return os.fspath(path)
    st_name = {np.dtype(numpy): name for name, numpy, _tf in DTYPES.values()}
    specs = {
        key: TensorSpec(dtype=st_name[value.dtype], shape=list(value.shape), data_ptr=value.ctypes.data, data_len=value.nbytes)
        for key, value in arrays.items()
    }
    serialize_file(specs, os.fspath(path), metadata=metadata)
    return os.fspath(path)


def reference(path) -> dict:
    """``{key: (dtype, shape, bytes)}`` as the reference parser reads the file."""
    with open(path, "rb") as f:
        return {key: (info["dtype"], tuple(info["shape"]), bytes(info["data"])) for key, info in deserialize(f.read())}


# --- reading --------------------------------------------------------------------------------


@pytest.mark.parametrize("st_dtype", list(DTYPES))
def test_every_dtype_reads_bit_for_bit_as_the_reference_reads_it(tmp_path, st_dtype):
    _spec, numpy, tf_name = DTYPES[st_dtype]
    arrays = {f"layer.{i}.weight": random_values(st_dtype, shape, i) for i, shape in enumerate([(3, 4), (), (0, 5), (7,)])}
    path = save_reference(tmp_path / "m.safetensors", arrays, metadata={"format": "pt"})
    ckpt = open_checkpoint(path)
    expected = reference(path)
    assert ckpt.keys() == sorted(arrays) == sorted(expected)
    for entry in ckpt:
        value = ckpt.read(entry.key)
        assert (entry.name, entry.dtype, entry.shape, entry.nbytes) == (entry.key, tf_name, expected[entry.key][1], value.nbytes)
        assert (expected[entry.key][0], value.dtype, value.shape) == (st_dtype, np.dtype(numpy), expected[entry.key][1])
        assert value.tobytes() == expected[entry.key][2] == arrays[entry.key].tobytes()
    if st_dtype in NUMPY_KNOWS:
        for key, value in load_file(path).items():
            read = ckpt.read(key)
            assert (read.dtype, read.shape, read.tobytes()) == (value.dtype, value.shape, value.tobytes())
    assert ckpt.source.format == "safetensors" and ckpt.source.metadata == {"format": "pt"} and ckpt.files == [path]


def test_large_tensors_are_read_only_mapped_views_unless_copied(tmp_path):
    big = random_values("F32", (700, 400), 1)  # 1.1 MB: memory-mapped
    path = save_reference(tmp_path / "big.safetensors", {"big": big, "small": np.arange(3, dtype=np.int64)})
    ckpt = open_checkpoint(path)
    mapped, copied = ckpt.read("big"), ckpt.read("big", copy=True)
    assert not mapped.flags.writeable and copied.flags.writeable and ckpt.read("small").flags.writeable
    assert mapped.tobytes() == copied.tobytes() == load_file(path)["big"].tobytes()
    assert [key for key, _ in ckpt.read_many(["big", "small"])] == ["small", "big"]  # in file order (int64 first)


def _sharded(folder, name="model.safetensors.index.json"):
    first = {"embeddings.weight": random_values("F32", (5, 3), 1), "encoder.0.weight": random_values("BF16", (3, 3), 2)}
    second = {"encoder.1.weight": random_values("F16", (3, 3), 3), "steps": np.array(7, np.int64)}
    save_reference(folder / "model-00001-of-00002.safetensors", first, {"format": "pt"})
    save_reference(folder / "model-00002-of-00002.safetensors", second, {"format": "pt"})
    weight_map = {**{k: "model-00001-of-00002.safetensors" for k in first}, **{k: "model-00002-of-00002.safetensors" for k in second}}
    index = folder / name
    index.write_text(json.dumps({"metadata": {"total_size": 0}, "weight_map": weight_map}))
    return str(index), {**first, **second}


def test_a_sharded_checkpoint_reads_through_its_index(tmp_path):
    index, arrays = _sharded(tmp_path)
    for path in (index, str(tmp_path)):  # the index, or the Hugging Face folder holding it
        ckpt = open_checkpoint(path)
        assert ckpt.prefix == index and ckpt.keys() == sorted(arrays)
        assert ckpt.files == [index, str(tmp_path / "model-00001-of-00002.safetensors"),
                              str(tmp_path / "model-00002-of-00002.safetensors")]
        for key, value in ckpt.read_many(ckpt.keys()):
            assert (value.dtype, value.shape, value.tobytes()) == (arrays[key].dtype, arrays[key].shape, arrays[key].tobytes())


def test_a_sharded_index_that_does_not_match_its_shards(tmp_path):
    index, _arrays = _sharded(tmp_path)
    body = json.loads(open(index).read())
    body["weight_map"]["steps"] = "model-00001-of-00002.safetensors"
    open(index, "w").write(json.dumps(body))
    with pytest.raises(CorruptCheckpointError, match="lacks key 'steps'.*|holds key 'steps'"):
        open_checkpoint(index)
    body["weight_map"]["steps"] = "../elsewhere.safetensors"
    open(index, "w").write(json.dumps(body))
    with pytest.raises(CorruptCheckpointError, match=r"maps key 'steps' to '\.\./elsewhere\.safetensors'"):
        open_checkpoint(index)
    body["weight_map"]["steps"] = "model-00003-of-00002.safetensors"
    open(index, "w").write(json.dumps(body))
    with pytest.raises(CheckpointNotFoundError, match="model-00003-of-00002.safetensors"):
        open_checkpoint(index)
    open(index, "w").write("{not json")
    with pytest.raises(CorruptCheckpointError, match="not JSON"):
        open_checkpoint(index)


def test_missing_files_and_files_recognised_by_their_bytes(tmp_path):
    save_reference(tmp_path / "model.safetensors", {"w": np.ones(2, np.float32)})
    with pytest.raises(CheckpointNotFoundError, match=r"No safetensors file at .*modle\.safetensors.*Did you mean 'model\.safetensors'"):
        open_checkpoint(str(tmp_path / "modle.safetensors"))
    renamed = tmp_path / "weights.bin"
    os.rename(tmp_path / "model.safetensors", renamed)
    assert open_checkpoint(str(renamed)).source.format == "safetensors"


def test_ls_lists_a_safetensors_file_and_the_shards(tmp_path):
    path = save_reference(tmp_path / "m.safetensors", {"fc.weight": np.ones((2, 3), np.float32), "fc.bias": np.zeros(3, np.float32)})
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert main(["ls", path]) == 0
    text = out.getvalue()
    assert text.splitlines()[0] == f"checkpoint {path} (safetensors, 2 entries)"
    assert "fc.bias" in text and "fc.weight  variable  float32  [2, 3]  24 B" in text
    (tmp_path / "sharded").mkdir()
    index, _ = _sharded(tmp_path / "sharded")
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert main(["ls", index]) == 0
    assert out.getvalue().splitlines()[0] == f"checkpoint {index} (safetensors, 4 entries, 2 shards)"


def test_diff_of_two_safetensors_files(tmp_path):
    a = save_reference(tmp_path / "a.safetensors", {"w": np.ones(4, np.float32), "b": np.zeros(2, np.float32)})
    b = save_reference(tmp_path / "b.safetensors", {"w": np.array([1, 1, 1, 2], np.float32), "bias": np.zeros(2, np.float32)})
    diff = ckptwidgets.diff_checkpoints(a, b)
    assert diff.find("w").status == "changed" and diff.find("b").key_b == "bias"
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert main(["diff", a, b]) == 0
    assert "1 changed" in out.getvalue() and "b -> bias" in out.getvalue()


def test_a_browser_model_on_a_safetensors_file(tmp_path):
    weight = random_values("F32", (4, 5), 3)
    path = save_reference(tmp_path / "m.safetensors", {"fc.weight": weight, "fc.bias": np.arange(5, dtype=np.float32)})
    model = BrowserModel(path)
    assert model.error == "" and [e.key for e in model.matches] == ["fc.bias", "fc.weight"]
    model.filter_text = "weight"
    assert [e.key for e in model.matches] == ["fc.weight"]
    model.selected = "fc.weight"
    finite = weight[np.isfinite(weight)].astype(np.float64)
    assert model.stats.mean == pytest.approx(finite.mean()) and len(model.png) > 0


TF_FREE = textwrap.dedent(
    """
    import contextlib, io, json, os, sys
    import numpy as np
    import ckptwidgets
    from ckptwidgets.__main__ import main
    from ckptwidgets.widgets import BrowserModel

    path, index, out = sys.argv[1:]
    result = {}
    for where in (path, index):
        ckpt = ckptwidgets.open_checkpoint(where)
        result[where] = {e.key: [e.dtype, np.asarray(ckpt.read(e.key)).tobytes().hex()] for e in ckpt}
        with contextlib.redirect_stdout(io.StringIO()) as listing:
            assert main(["ls", where]) == 0
        result[where + " ls"] = listing.getvalue()
        model = BrowserModel(where)
        model.selected = ckpt.keys()[0]
        result[where + " browser"] = [model.error, len(model.png) > 0]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["diff", path, index]) == 0
    ckptwidgets.plan_write(path).write(out, progress=False)
    result["imported"] = sorted({m.split(".")[0] for m in sys.modules} & {"tensorflow", "torch", "keras", "safetensors"})
    print(json.dumps(result))
    """
)


def test_open_list_read_diff_browse_and_write_without_tensorflow_or_torch(tmp_path):
    path = save_reference(tmp_path / "m.safetensors", {"fc.weight": random_values("BF16", (2, 3), 1), "n": np.array(3, np.int32)})
    index, _ = _sharded(tmp_path)
    out = str(tmp_path / "copy.safetensors")
    run = subprocess.run([sys.executable, "-c", TF_FREE, path, index, out], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout)
    assert result["imported"] == []
    for where in (path, index):
        assert result[where] == {key: [dtype, bytes_.hex()] for key, (dtype, bytes_) in _as_tf(reference_many(where)).items()}
        assert result[where + " browser"] == ["", True] and "safetensors" in result[where + " ls"]
    assert reference(out) == reference(path)


def reference_many(where) -> dict:
    if where.endswith(".json"):
        folder = os.path.dirname(where)
        shards = sorted(set(json.load(open(where))["weight_map"].values()))
        return {k: v for shard in shards for k, v in reference(os.path.join(folder, shard)).items()}
    return reference(where)


def _as_tf(entries: dict) -> dict:
    return {key: (DTYPES[dtype][2], data) for key, (dtype, _shape, data) in entries.items()}


# --- writing ----------------------------------------------------------------------------------


@pytest.fixture
def tf1_ckpt(tmp_path):
    values = {"dense/kernel": random_values("F32", (3, 4), 1), "dense/bias": np.arange(4, dtype=np.float64),
              "emb": random_values("F16", (5, 2), 2), "counts": np.arange(6, dtype=np.int32).reshape(2, 3),
              "mask": np.array([True, False, True]), "global_step": np.int64(42)}
    return save_graph_checkpoint(tmp_path / "tf1" / "model.ckpt", values, use_resource=True), values


def test_a_tf_checkpoint_written_as_safetensors_is_what_tensorflow_reads(tf1_ckpt, tmp_path):
    prefix, values = tf1_ckpt
    out = str(tmp_path / "out" / "model.safetensors")
    report = plan_write(prefix).write(out, progress=False)
    assert report.keys == sorted(values) and report.files == [out] and os.listdir(tmp_path / "out") == ["model.safetensors"]
    reader = tf.train.load_checkpoint(prefix)
    loaded = load_file(out)
    assert sorted(loaded) == sorted(values)
    for key, value in loaded.items():
        expected = np.asarray(reader.get_tensor(key))
        assert (value.dtype, value.shape, value.tobytes()) == (expected.dtype, expected.shape, expected.tobytes())
    with safetensors.safe_open(out, "np") as f:
        assert f.metadata() == {"format": "pt", "ckptwidgets.source": prefix}


def test_a_tf2_checkpoint_leaves_its_object_graph_out(tmp_path):
    class Net(tf.Module):
        def __init__(self):
            super().__init__()
            self.kernel = tf.Variable(random_values("F32", (2, 3), 4))

    prefix = tf.train.Checkpoint(net=Net()).write(str(tmp_path / "tf2" / "ckpt-1"))
    out = str(tmp_path / "tf2.safetensors")
    report = plan_write(prefix).write(out, progress=False)
    assert ("_CHECKPOINTABLE_OBJECT_GRAPH", "TensorFlow's object graph (a string): safetensors holds numbers only") in report.dropped
    key = "net/kernel/.ATTRIBUTES/VARIABLE_VALUE"
    assert load_file(out)[key].tobytes() == tf.train.load_checkpoint(prefix).get_tensor(key).tobytes()


def test_from_plan_writes_the_variables_names(tf1_ckpt, tmp_path):
    prefix, values = tf1_ckpt
    variables = {"net/fc.weight": tf.Variable(np.zeros((3, 4), np.float32)), "net/fc.bias": tf.Variable(np.zeros(4))}
    plan = plan_restore(prefix, variables, rules={"dense/kernel": "net/fc.weight", "dense/bias": "net/fc.bias"})
    out = str(tmp_path / "net.safetensors")
    from_plan(plan).write(out, progress=False)
    loaded = load_file(out)
    assert sorted(loaded) == ["net/fc.bias", "net/fc.weight"]
    assert loaded["net/fc.weight"].tobytes() == values["dense/kernel"].tobytes()
    assert json.loads(safetensors.safe_open(out, "np").metadata()["ckptwidgets.from"]) == {
        "net/fc.bias": "dense/bias", "net/fc.weight": "dense/kernel"}


def test_the_written_bytes_follow_the_spec(tmp_path):
    arrays = {"a.u8": np.arange(3, dtype=np.uint8), "b.f64": np.random.default_rng(1).random((2, 2)), "c.bf16": random_values("BF16", (3,), 2),
              "d.i32": np.arange(5, dtype=np.int32), "e.empty": np.zeros((0, 2), np.float32), "f.scalar": np.array(1.5, np.float16)}
    source = ArraySource(arrays)
    out = str(tmp_path / "spec.safetensors")
    plan_write(source).rename(pairs={"d.i32": "renamed.i32"}).cast({"float64": "float32"}).write(out, progress=False)
    data = open(out, "rb").read()
    length = int.from_bytes(data[:8], "little")
    text = data[8:8 + length]
    assert length % 8 == 0 and len(text) == length
    body = text.rstrip(b" ")
    assert len(text) - len(body) < 8 and body.endswith(b"}")
    header = json.loads(body)
    metadata = header.pop("__metadata__")
    assert all(isinstance(v, str) for v in metadata.values())
    assert metadata["format"] == "pt" and metadata["ckptwidgets.source"] == "<arrays>"
    assert json.loads(metadata["ckptwidgets.from"]) == {"b.f64": "cast from float64", "renamed.i32": "d.i32"}
    ordered = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"])
    assert [key for key, _ in ordered] == list(header)  # offsets follow the order written
    end = 0
    for key, info in ordered:
        begin, stop = info["data_offsets"]
        itemsize = {"F32": 4, "I32": 4, "BF16": 2, "F16": 2, "U8": 1}[info["dtype"]]
        assert begin == end and stop - begin == itemsize * math.prod(info["shape"]) and begin % itemsize == 0
        end = stop
    assert 8 + length + end == len(data)
    written = reference(out)
    assert written["renamed.i32"] == ("I32", (5,), arrays["d.i32"].astype("<i4").tobytes())
    assert written["b.f64"] == ("F32", (2, 2), arrays["b.f64"].astype("<f4").tobytes())
    assert written["c.bf16"] == ("BF16", (3,), arrays["c.bf16"].tobytes())
    assert written["f.scalar"] == ("F16", (), arrays["f.scalar"].tobytes())


def test_an_average_is_written_in_float64_and_rounded_once(tmp_path):
    paths = [save_reference(tmp_path / f"{i}.safetensors", {"w": random_values("F32", (50,), 10 + i) / 1e30}) for i in range(3)]
    arrays = [load_file(p)["w"] for p in paths]
    out = str(tmp_path / "mean.safetensors")
    ckptwidgets.average(paths).write(out, progress=False)
    expected = (sum(a.astype(np.float64) for a in arrays) / 3).astype(np.float32)
    assert load_file(out)["w"].tobytes() == expected.tobytes()
    assert json.loads(safetensors.safe_open(out, "np").metadata()["ckptwidgets.source"]) == paths


def test_a_failing_write_leaves_nothing(tmp_path):
    (tmp_path / "in").mkdir()
    source = save_reference(tmp_path / "in" / "m.safetensors", {"a": np.ones(3, np.float32), "b": np.ones(4, np.float32)})
    plan = plan_write(source)
    out = tmp_path / "out"
    out.mkdir()
    (out / "m.safetensors").write_bytes(b"the previous file")
    with open(source, "r+b") as f:  # the input changes after it was planned: its read fails
        f.seek(0, 2)
        f.write(b"appended")
    with pytest.raises(WriteError, match=r"Nothing was written to '.*m\.safetensors'.*changed since it was opened"):
        plan.write(str(out / "m.safetensors"), overwrite=True, progress=False)
    assert os.listdir(out) == ["m.safetensors"] and (out / "m.safetensors").read_bytes() == b"the previous file"


def test_a_tensor_that_reads_back_other_bytes_is_not_moved_into_place(tmp_path, monkeypatch):
    from ckptwidgets.sources.safetensors import _write

    written = _write._write_file

    def write_then_damage(temp, items, head, tick):  # a disk that returns other bytes than it was given
        crcs = written(temp, items, head, tick)
        with open(temp, "r+b") as f:
            f.seek(-1, 2)
            last = f.read(1)[0]
            f.seek(-1, 2)
            f.write(bytes([last ^ 1]))
        return crcs

    monkeypatch.setattr(_write, "_write_file", write_then_damage)
    out = tmp_path / "out.safetensors"
    with pytest.raises(WriteError, match=r"Nothing was written to '.*out\.safetensors'.*reads back other bytes"):
        plan_write(ArraySource({"w": np.arange(4, dtype=np.float32)})).write(str(out), progress=False)
    assert os.listdir(tmp_path) == []


def test_refusals_write_nothing(tf1_ckpt, tmp_path):
    source = save_reference(tmp_path / "m.safetensors", {"a": np.ones(3, np.float32)})
    before = open(source, "rb").read()
    plan = plan_write(source)
    os.symlink(source, tmp_path / "link.safetensors")
    for spelled in (source, os.path.relpath(source), str(tmp_path / "link.safetensors")):
        with pytest.raises(WriteError, match="is the input checkpoint itself"):
            plan.write(spelled, overwrite=True, progress=False)
    assert open(source, "rb").read() == before
    out = tmp_path / "exists.safetensors"
    out.write_bytes(b"x")
    with pytest.raises(WriteError, match="already exists.*overwrite=True"):
        plan.write(str(out), progress=False)
    strings = ArraySource({"w": np.ones(2, np.float32), "vocab": np.array([b"a", b"b"], dtype=object)})
    with pytest.raises(WriteError, match=r"key 'vocab' is string, which safetensors cannot hold"):
        plan_write(strings).write(str(tmp_path / "s.safetensors"), progress=False)
    with pytest.raises(WriteError, match="one safetensors file, not shards"):
        plan.write(str(tmp_path / "x.safetensors.index.json"), progress=False)
    assert sorted(os.listdir(tmp_path)) == ["exists.safetensors", "link.safetensors", "m.safetensors", "tf1"]


def test_writer_for_chooses_safetensors_by_the_suffix():
    from ckptwidgets.sources import writer_for

    assert writer_for("out.safetensors").__name__ == "ckptwidgets.sources.safetensors"
    assert writer_for("out.ckpt").__name__ == "ckptwidgets.sources.bundle"


# --- restoring from safetensors -----------------------------------------------------------------


def test_restore_into_tf_variables_through_read_many(tmp_path):
    arrays = {"fc.weight": random_values("F32", (3, 2), 1), "fc.bias": random_values("BF16", (2,), 2)}
    path = save_reference(tmp_path / "m.safetensors", arrays)
    variables = {"fc.weight": tf.Variable(np.zeros((3, 2), np.float32)), "fc.bias": tf.Variable(np.zeros(2), dtype=tf.bfloat16)}
    plan = plan_restore(path, variables)
    assert plan.ok and plan.checkpoint.source.restore_prefix is None
    restore(plan)
    for key, value in arrays.items():
        assert variables[key].numpy().tobytes() == value.tobytes()
    # The code export reads with safetensors.safe_open (TensorFlow cannot open the file).
    for name in variables:
        variables[name].assign(tf.zeros_like(variables[name]))
    code = to_code(plan, "checkpoint")
    assert "from safetensors import safe_open" in code and "import tensorflow" not in code
    exec(code, {"variables": variables})
    assert all(variables[key].numpy().tobytes() == value.tobytes() for key, value in arrays.items())


def test_the_code_export_of_a_sharded_checkpoint_reads_each_shard(tmp_path):
    index, arrays = _sharded(tmp_path)
    variables = {key: tf.Variable(np.zeros(value.shape, value.dtype)) for key, value in arrays.items()}
    plan = plan_restore(index, variables)
    assert plan.ok and not plan.unmapped
    code = to_code(plan, "saver")
    assert code.count("with safe_open(") == 2
    exec(code, {"variables": variables, "sess": None})
    assert all(variables[key].numpy().tobytes() == value.tobytes() for key, value in arrays.items())


def test_restore_a_keras_model_from_safetensors(tmp_path):
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="hidden"), keras.layers.Dense(2, name="out")],
                             name="net")
    x = np.random.default_rng(0).random((5, 4)).astype(np.float32)
    path = str(tmp_path / "net.safetensors")
    save_file({v.path: np.asarray(v.numpy()) for v in model.weights}, path)
    fresh = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="hidden"), keras.layers.Dense(2, name="out")],
                             name="net")
    plan = plan_restore(path, fresh)
    assert plan.ok and not plan.unmapped, plan
    restore(plan)
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), model.predict(x, verbose=0))


# --- damaged and crafted files (fuzzing, as issue #6 fuzzes the bundle) --------------------------


def _file(header, data: bytes = b"", length=None) -> bytes:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return (len(text) if length is None else length).to_bytes(8, "little") + text + data


def _tensor(dtype="F32", shape=(2,), offsets=(0, 8)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


CRAFTED = {
    "empty file": (b"", None),
    "header length beyond the file": (_file({"w": _tensor()}, bytes(8), length=4096), None),
    "huge header length": (_file({"w": _tensor()}, bytes(8), length=1 << 62), None),
    "header length of 0": (_file(b"", bytes(8)), None),
    "offsets out of range": (_file({"w": _tensor(offsets=(0, 1 << 40), shape=(1 << 38,))}, bytes(8)), "'w'"),
    "overlapping": (_file({"w": _tensor(), "v": _tensor(offsets=(4, 12))}, bytes(12)), "'v'"),
    "a gap": (_file({"w": _tensor(offsets=(8, 16))}, bytes(16)), "'w'"),
    "bytes after the data": (_file({"w": _tensor()}, bytes(12)), None),
    "shape and span disagree": (_file({"w": _tensor(shape=(3,))}, bytes(8)), "'w'"),
    "end before begin": (_file({"w": _tensor(offsets=(8, 0), shape=(0,))}, bytes(8)), "'w'"),
    "unknown dtype": (_file({"w": _tensor(dtype="F128")}, bytes(8)), "'w'"),
    "a dtype TensorFlow lacks": (_file({"w": _tensor(dtype="F8_E8M0", shape=(8,))}, bytes(8)), "'w'"),
    "not UTF-8": (_file(b'{"w\xff": 1}'), None),
    "not JSON": (_file(b'{"w": {"dtype": "F32",'), None),
    "a JSON list": (_file(b"[1, 2]"), None),
    "deeply nested": (_file(b"[" * 100_000 + b"]" * 100_000), None),
    "negative dims": (_file({"w": _tensor(shape=(-2, -1), offsets=(0, 8))}, bytes(8)), "'w'"),
    "float dims": (_file({"w": _tensor(shape=(2.0,))}, bytes(8)), "'w'"),
    "bool offsets": (_file({"w": {"dtype": "U8", "shape": [1], "data_offsets": [False, True]}}, bytes(1)), "'w'"),
    "dims beyond 64 bits": (_file({"w": _tensor(shape=(1 << 70, 0), offsets=(0, 0))}), "'w'"),
    "duplicate keys": (_file(b'{"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, '
                             b'"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}', b"x"), "'w'"),
    "missing fields": (_file({"w": {"dtype": "F32"}}), "'w'"),
    "metadata not strings": (_file({"__metadata__": {"a": 1}}), None),
    "a lone surrogate in a key": (_file(b'{"w\\ud800": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}', b"x"), None),
}


#: What the reference reader accepts and ckptwidgets refuses on purpose: it takes the last of
#: two entries of one key, and reads dtypes TensorFlow has no name for.
STRICTER = ("duplicate keys", "a dtype TensorFlow lacks")


@pytest.mark.parametrize("case", list(CRAFTED))
def test_a_crafted_header_is_a_corrupt_checkpoint_naming_the_file_and_key(tmp_path, case):
    data, key = CRAFTED[case]
    path = tmp_path / "crafted.safetensors"
    path.write_bytes(data)
    tracemalloc.start()
    try:
        with pytest.raises(CorruptCheckpointError) as raised:
            open_checkpoint(str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(path) in str(raised.value) and (key is None or key in str(raised.value)), raised.value
    assert peak < 8 << 20, f"{peak} bytes allocated for {case}"
    try:
        safetensors.deserialize(data)
    except Exception:  # noqa: BLE001 - the reference refuses it too
        return
    assert case in STRICTER, f"the reference reads {case!r}"


def _mutant(rng: random.Random, base: dict, data: bytes) -> tuple[bytes, str]:
    """A structured (header JSON) or byte-level mutation of a valid file."""
    header = json.loads(json.dumps(base))
    keys = [k for k in header if k != "__metadata__"]
    key = rng.choice(keys)
    op = rng.choice(["dtype", "shape", "offsets", "drop", "field", "length", "bytes", "bytes", "truncate", "append"])
    if op == "dtype":
        header[key]["dtype"] = rng.choice(["F32", "F64", "I8", "BOOL", "BF16", "F8_E5M2", "X", "", 3, None, "F8_E8M0"])
    elif op == "shape":
        header[key]["shape"] = rng.choice([[], [0], [-1], [1 << 40, 1 << 40], [2.5], "3", None, [True],
                                           [rng.randrange(-3, 40) for _ in range(rng.randrange(4))]])
    elif op == "offsets":
        begin, end = header[key]["data_offsets"]
        header[key]["data_offsets"] = rng.choice([[begin, end + rng.randrange(-9, 9)], [begin + rng.randrange(-9, 9), end],
                                                  [end, begin], [0, 1 << 63], [-1, end], [begin], "0,8", [begin, None]])
    elif op == "drop":
        del header[key][rng.choice(["dtype", "shape", "data_offsets"])]
    elif op == "field":
        header[key] = rng.choice([None, [], "x", 1, {"dtype": "F32"}])
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    blob = len(text).to_bytes(8, "little") + text + data
    if op == "length":
        blob = max(0, len(text) + rng.choice([-9, -1, 1, 8, 1 << 30, 1 << 63])).to_bytes(8, "little") + blob[8:]
    elif op == "bytes":
        buf = bytearray(blob)
        for _ in range(rng.choice([1, 1, 2, 4])):
            pos = rng.randrange(len(buf) if rng.random() < 0.2 else 8 + len(text))
            buf[pos] = rng.randrange(256) if rng.random() < 0.5 else buf[pos] ^ (1 << rng.randrange(8))
        blob = bytes(buf)
    elif op == "truncate":
        blob = blob[: rng.randrange(len(blob))]
    elif op == "append":
        blob += bytes(rng.randrange(1, 9))
    return blob, op


def test_seeded_mutants_give_our_error_or_the_reference_values(tmp_path):
    arrays = {"fc.weight": random_values("F32", (3, 4), 1), "fc.bias": random_values("BF16", (4,), 2),
              "mask": random_values("BOOL", (5,), 3), "step": np.array(9, np.int64), "e": np.zeros((0, 3), np.float16)}
    good = open(save_reference(tmp_path / "good.safetensors", arrays, {"format": "pt"}), "rb").read()
    length = int.from_bytes(good[:8], "little")
    base, data = json.loads(good[8:8 + length]), good[8 + length:]
    rng = random.Random(25)
    outcomes, foreign, disagreements = {}, [], []
    tracemalloc.start()
    try:
        for i in range(400):
            blob, op = _mutant(rng, base, data)
            path = tmp_path / f"m{i:03d}.safetensors"
            path.write_bytes(blob)
            try:
                ckpt = open_checkpoint(str(path))
                ours = {key: (ckpt[key].dtype, ckpt[key].shape, ckpt.read(key).tobytes()) for key in ckpt.keys()}
            except CorruptCheckpointError as refusal:
                ours, error = None, refusal
                if str(path) not in str(error):
                    foreign.append(f"mutant {i} ({op}): the message names no file: {error}")
            except Exception as error:  # noqa: BLE001 - the finding is its type
                foreign.append(f"mutant {i} ({op}): {type(error).__name__}: {error}")
                continue
            try:
                theirs = {key: (DTYPES[info["dtype"]][2] if info["dtype"] in DTYPES else info["dtype"],
                                tuple(info["shape"]), bytes(info["data"])) for key, info in deserialize(blob)}
            except Exception:  # noqa: BLE001 - the reference refuses it
                theirs = None
            if ours is not None and ours != theirs:
                disagreements.append(f"mutant {i} ({op}): read {sorted(ours)}, the reference {theirs and sorted(theirs)}")
            if ours is None and theirs is not None and not set(info[0] for info in theirs.values()) - set(DTYPES_TF):
                disagreements.append(f"mutant {i} ({op}): refused what the reference reads: {error}")
            outcomes[op, ours is not None] = outcomes.get((op, ours is not None), 0) + 1
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert not foreign, "\n".join(foreign)
    assert not disagreements, "\n".join(disagreements)
    assert peak < 16 << 20, f"{peak} bytes allocated at the peak"
    refused = sum(n for (_op, ok), n in outcomes.items() if not ok)
    assert 100 < refused < 400, outcomes  # most mutants are damage; some (a flipped bit in the data) are not
