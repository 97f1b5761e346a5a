"""Reading checkpoints without TensorFlow: _dtypes, _protos, _sstable, _bundle, _tensordata.

TensorFlow is the oracle: tiny real checkpoints are written into ``tmp_path`` and every
tensor our modules read must equal ``tf.train.load_checkpoint(prefix).get_tensor(key)``
bit for bit (type, dtype, shape and bytes; element by element for strings).
"""
from __future__ import annotations

import os
import pathlib
import pickle
import struct
import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import descriptor_pb2
from tensorflow.core.framework import tensor_shape_pb2, tensor_slice_pb2, types_pb2, versions_pb2
from tensorflow.core.protobuf import tensor_bundle_pb2

from ckptwidgets.sources.bundle import _index as _bundle, _protos, _sstable, _tensordata
from ckptwidgets.sources import _dtypes
from ckptwidgets.sources.bundle._tensordata import DataDamaged, Undecodable, crc32c, mask, read_tensor

from _bundle_bytes import varint, write_table

# --- helpers -----------------------------------------------------------------------------


def shard_path(prefix, shard_id, num_shards) -> str:
    return "%s.data-%05d-of-%05d" % (prefix, shard_id, num_shards)


def scan(prefix) -> _bundle.Index:
    return _bundle.scan(_sstable.data_blocks(pathlib.Path(str(prefix) + ".index").read_bytes()))


def read_all(prefix, **options) -> dict:
    """Every tensor of a checkpoint, read by our modules only (partitioned ones left out)."""
    index = scan(prefix)
    out = {}
    for key, (dtype, shape, _), value in zip(index.keys, index.infos, index.values):
        ref = _bundle.data_ref(value)
        if ref is not None:
            path = shard_path(prefix, ref.shard_id, index.num_shards)
            out[key] = read_tensor(path, ref.offset, ref.size, dtype, shape, ref.crc32c, index.big_endian, **options)
    return out


def assert_same(ours, theirs, key=""):
    """Bit for bit: the same type, dtype, shape and bytes (strings: the same bytes objects)."""
    assert type(ours) is type(theirs), (key, type(ours), type(theirs))
    if isinstance(theirs, bytes):
        assert ours == theirs, key
        return
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, (key, ours.dtype, theirs.dtype, ours.shape)
    if theirs.dtype == object:
        assert [type(x) for x in ours.flat] == [type(x) for x in theirs.flat], key
        assert list(ours.flat) == list(theirs.flat), key
    else:
        assert ours.tobytes() == theirs.tobytes(), key


def assert_reads_as_tensorflow(prefix, **options) -> dict:
    ours = read_all(prefix, **options)
    reader = tf.train.load_checkpoint(str(prefix))
    for key, value in ours.items():
        assert_same(value, reader.get_tensor(key), key)
    return ours


def save(prefix, tensors: dict) -> str:
    """One SaveV2 of ``{key: tensor}``: any dtype TF can save, no variables needed."""
    names = sorted(tensors)
    tf.raw_ops.SaveV2(
        prefix=str(prefix), tensor_names=names, shape_and_slices=[""] * len(names), tensors=[tensors[n] for n in names]
    )
    return str(prefix)


def sample(dtype: tf.DType, shape) -> tf.Tensor:
    """Distinct, valid values of ``dtype`` (every dtype: float8, int2, quantized...)."""
    count = int(np.prod(shape))
    if dtype == tf.string:
        return tf.constant(np.array([b"s%d" % i for i in range(count)], dtype=object).reshape(shape))
    if dtype.is_bool:
        return tf.constant(np.arange(count).reshape(shape) % 3 == 0)
    # -1, 0, 1 (0, 1, 2 unsigned): in range for every integer type down to int2
    values = np.arange(count).reshape(shape) % 3 - (0 if dtype.is_unsigned or dtype in (tf.quint8, tf.quint16) else 1)
    if dtype.is_complex:
        return tf.constant((values + 0.5j * values).astype(dtype.as_numpy_dtype), dtype)
    if dtype.is_quantized:
        return tf.constant(values.astype(np.dtype(dtype.as_numpy_dtype)[0]), dtype)
    if dtype.is_floating:
        values = values + 0.5  # exact in every float type down to float4_e2m1fn
    return tf.constant(values.astype(dtype.as_numpy_dtype), dtype)


def savable_dtypes() -> list[tf.DType]:
    return [tf.as_dtype(e) for e in types_pb2.DataType.values() if 0 < e < 100 and e not in (20, 21)]


STRINGS = {
    "scalar": b"hello",
    "empty-scalar": b"",
    "vector": [b"a", b"", b"\x00nul\x00", b"\xff\xfe not utf-8", "é".encode()],
    "matrix": [[b"x" * 127, b"y" * 128], [b"z" * 16383, b"w" * 16384], [b"v" * 20000, b""]],
    "no-elements": np.zeros([0], dtype=object),
    "no-elements-2d": np.zeros([2, 0], dtype=object),
}


@pytest.fixture
def every_dtype(tmp_path):
    """A checkpoint of every dtype SaveV2 takes, as a matrix, a scalar and an empty tensor, plus strings."""
    tensors = {}
    for dtype in savable_dtypes():
        for name, shape in (("matrix", [3, 5]), ("scalar", []), ("empty", [0, 4])):
            tensors[f"{dtype.name}/{name}"] = sample(dtype, shape)
    for name, value in STRINGS.items():
        tensors[f"strings/{name}"] = tf.constant(value, tf.string)
    tensors["big"] = tf.reshape(tf.range(_tensordata.MMAP_BYTES // 4 + 1000, dtype=tf.float32), [-1, 8])
    return save(tmp_path / "every.ckpt", tensors)


# --- _dtypes -----------------------------------------------------------------------------


def test_dtype_table_is_tensorflows():
    expected = {}
    for enum in types_pb2.DataType.values():
        if 0 < enum < 100:
            dtype = tf.as_dtype(enum)
            try:
                numpy = dtype.as_numpy_dtype
            except KeyError:  # resource, variant
                numpy = None
            expected[enum] = _dtypes.DType(enum, dtype.name, dtype.size, numpy)
    assert _dtypes.BY_ENUM == expected
    assert _dtypes.BY_NAME == {d.name: d for d in expected.values()}
    for enum, d in expected.items():
        assert _dtypes.dtype_info(enum) == (d.name, d.itemsize)
        assert _dtypes.dtype_info(tf.as_dtype(enum)) == (d.name, d.itemsize)  # duck-typed .name
        assert _dtypes.dtype_info(d.name + "_ref") == (d.name, d.itemsize)
        if d.numpy is not None:
            assert _dtypes.dtype_info(np.dtype(d.numpy)) == (d.name, d.itemsize)
            assert tf.as_dtype(np.dtype(d.numpy)).name == d.name


def test_dtype_info_takes_what_tensorflow_takes_and_refuses_the_rest():
    assert _dtypes.dtype_info(tf.float32._as_ref) == ("float32", 4)
    assert _dtypes.dtype_info(np.float16) == _dtypes.dtype_info("half") == ("float16", 2)
    assert _dtypes.dtype_info(np.int64(9)) == ("int64", 8)
    assert _dtypes.dtype_info(np.dtype("S3")) == _dtypes.dtype_info(np.dtype(object)) == ("string", 0)
    for bad in (0, 101, 1000, -1, "floaty", "", np.dtype("V3"), None, True, 1.5):
        with pytest.raises(ValueError) as info:
            _dtypes.dtype_info(bad)
        assert repr(bad) in str(info.value)


# --- _protos -----------------------------------------------------------------------------


def _described(message_class) -> tuple:
    """What defines a message on the wire: its fields, its oneofs, its nested enums."""
    proto = descriptor_pb2.DescriptorProto()
    message_class.DESCRIPTOR.CopyToProto(proto)
    fields = [
        (f.name, f.number, f.label, f.type, f.type_name, f.oneof_index if f.HasField("oneof_index") else None)
        for f in proto.field
    ]
    enums = [(e.name, [(v.name, v.number) for v in e.value]) for e in proto.enum_type]
    return message_class.DESCRIPTOR.full_name, fields, [o.name for o in proto.oneof_decl], enums


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (_protos.BundleHeaderProto, tensor_bundle_pb2.BundleHeaderProto),
        (_protos.BundleEntryProto, tensor_bundle_pb2.BundleEntryProto),
        (_protos.TensorShapeProto, tensor_shape_pb2.TensorShapeProto),
        (_protos.TensorShapeProto.Dim, tensor_shape_pb2.TensorShapeProto.Dim),
        (_protos.TensorSliceProto, tensor_slice_pb2.TensorSliceProto),
        (_protos.TensorSliceProto.Extent, tensor_slice_pb2.TensorSliceProto.Extent),
        (_protos.VersionDef, versions_pb2.VersionDef),
    ],
)
def test_messages_are_described_as_tensorflow_does(ours, theirs):
    assert _described(ours) == _described(theirs)


def _tf_messages():
    header = tensor_bundle_pb2.BundleHeaderProto(num_shards=3, endianness=1)
    header.version.producer, header.version.min_consumer = 1, 0
    header.version.bad_consumers.extend([4, 7])
    entry = tensor_bundle_pb2.BundleEntryProto(dtype=14, shard_id=2, offset=2**40, size=12, crc32c=0xFFFFFFFF)
    entry.shape.dim.add(size=3)
    entry.shape.dim.add(size=2**35, name="batch")
    for extents in ([(0, 1), (5, None)], [(1, 0)]):
        piece = entry.slices.add()
        for start, length in extents:
            extent = piece.extent.add(start=start)
            if length is not None:
                extent.length = length
    odd = tensor_bundle_pb2.BundleEntryProto(dtype=101)  # a reference dtype: an unknown enum value
    odd.shape.unknown_rank = True
    return [header, entry, odd, tensor_bundle_pb2.BundleEntryProto()]


def test_messages_parse_alike_both_ways():
    for message in _tf_messages():
        ours_class = getattr(_protos, type(message).__name__)
        wire = message.SerializeToString(deterministic=True)
        ours = ours_class.FromString(wire)
        assert ours.SerializeToString(deterministic=True) == wire
        assert type(message).FromString(ours.SerializeToString()) == message
    entry = _protos.BundleEntryProto.FromString(_tf_messages()[1].SerializeToString())
    assert [[e.HasField("length") for e in s.extent] for s in entry.slices] == [[True, False], [True]]
    assert (entry.dtype, entry.offset, entry.crc32c, entry.shape.dim[1].name) == (14, 2**40, 0xFFFFFFFF, "batch")
    assert _protos.BundleEntryProto.FromString(_tf_messages()[2].SerializeToString()).dtype == 101
    with pytest.raises(_protos.DecodeError):
        _protos.BundleEntryProto.FromString(b"\xff\xfe\x00garbage")


# --- reading tensors ---------------------------------------------------------------------


def test_every_dtype_reads_as_tensorflow_does(every_dtype):
    ours = assert_reads_as_tensorflow(every_dtype)
    assert {key.split("/")[0] for key in ours} == {d.name for d in savable_dtypes()} | {"strings", "big"}
    assert ours["strings/scalar"] == b"hello" and ours["strings/vector"][2] == b"\x00nul\x00"
    assert ours["qint8/matrix"].dtype == np.int8  # as get_tensor gives it, not the structured dtype
    # Small tensors are arrays of their own; big ones a read-only view of the file unless copied.
    assert ours["float32/matrix"].flags.writeable and ours["strings/vector"].flags.writeable
    assert not ours["big"].flags.writeable and ours["big"].nbytes >= _tensordata.MMAP_BYTES
    copied = read_all(every_dtype, copy=True)["big"]
    assert copied.flags.writeable
    assert_same(copied, ours["big"])


def test_decode_matches_read_tensor(every_dtype):
    index = scan(every_dtype)
    data = pathlib.Path(shard_path(every_dtype, 0, 1)).read_bytes()
    ours = read_all(every_dtype)
    for key, (dtype, shape, _), value in zip(index.keys, index.infos, index.values):
        ref = _bundle.data_ref(value)
        assert_same(_tensordata.decode(data[ref.offset : ref.offset + ref.size], dtype, shape), ours[key], key)


def _variables() -> tuple[dict, list]:
    made, refused = {}, []
    for dtype in savable_dtypes():
        try:
            made[dtype.name] = tf.Variable(sample(dtype, [2, 3]), name=dtype.name)
        except Exception:  # no AssignVariableOp kernel for this dtype (qint16, float8 *fnuz...)
            refused.append(dtype.name)
    return made, refused


def test_variables_saved_by_checkpoint_and_by_saver(tmp_path):
    variables, refused = _variables()
    wanted = {"bool", "complex64", "complex128", "float16", "bfloat16", "uint8", "uint16", "uint32", "uint64", "int8", "int16"}
    assert wanted <= set(variables), refused
    prefix = tf.train.Checkpoint(**variables).write(str(tmp_path / "obj"))
    ours = assert_reads_as_tensorflow(prefix)
    assert len(ours) == len(variables) + 1  # and the object graph, a string
    saved = tf.compat.v1.train.Saver(var_list=variables).save(None, str(tmp_path / "saver"))
    assert len(assert_reads_as_tensorflow(saved)) == len(variables)


def test_sharded_checkpoint(tmp_path):
    variables = [tf.Variable(tf.fill([100], float(i)), name=f"v{i}") for i in range(3)]
    policy = tf.train.experimental.MaxShardSizePolicy(max_shard_size=400)  # one 400-byte variable a shard
    prefix = tf.train.Checkpoint(vs=variables).write(
        str(tmp_path / "sharded"), options=tf.train.CheckpointOptions(experimental_sharding_callback=policy)
    )
    assert scan(prefix).num_shards == 3 and len(list(tmp_path.glob("sharded.data-*"))) == 3
    assert {_bundle.data_ref(v).shard_id for v in scan(prefix).values} == {0, 1, 2}
    assert len(assert_reads_as_tensorflow(prefix)) == 4


def test_a_partitioned_variable_has_no_data_ref(tmp_path):
    # A small shard size splits variables into slices across shards.
    variables = [tf.Variable(tf.fill([100], float(i))) for i in range(2)]
    policy = tf.train.experimental.MaxShardSizePolicy(max_shard_size=300)
    prefix = tf.train.Checkpoint(vs=variables).write(
        str(tmp_path / "sliced"), options=tf.train.CheckpointOptions(experimental_sharding_callback=policy)
    )
    index = scan(prefix)
    refs = {key: _bundle.data_ref(value) for key, value in zip(index.keys, index.values)}
    assert None in refs.values() and all(not key.startswith("\0") for key in refs)
    assert_reads_as_tensorflow(prefix)  # the others


def test_variant_tensors_are_undecodable(tmp_path):
    iterator = iter(tf.data.Dataset.range(3))
    next(iterator)
    prefix = tf.train.Checkpoint(it=iterator).write(str(tmp_path / "it"))
    with pytest.raises(Undecodable, match="variant"):
        read_all(prefix)
    with pytest.raises(Undecodable, match="resource"):
        _tensordata.decode(b"", "resource", (0,))


# --- big-endian bundles: written here, read by TensorFlow (which swaps) and by us --------


def _big_endian_bytes(data: bytes, dtype: str, count: int) -> bytes:
    """A tensor's bytes as a big-endian machine writes them."""
    if dtype != "string":
        numpy = _tensordata._numpy_dtype(dtype)
        unit = numpy.itemsize // 2 if numpy.kind == "c" else numpy.itemsize
        return data if unit == 1 else np.frombuffer(data, f"<u{unit}").astype(f">u{unit}").tobytes()
    pos, lengths = 0, []
    for _ in range(count):
        length, pos = _sstable.varint(data, pos)
        lengths.append(length)
    checksum = mask(crc32c(b"".join(struct.pack(">I", n) for n in lengths)))
    return data[:pos] + struct.pack(">I", checksum) + data[pos + 4 :]


def _entry_crc(data: bytes, dtype: str, count: int) -> int:
    if dtype != "string":
        return mask(crc32c(data))
    pos, lengths = 0, []
    for _ in range(count):
        length, pos = _sstable.varint(data, pos)
        lengths.append(length)
    return mask(crc32c(data[pos:], crc32c(b"".join(struct.pack(">I", n) for n in lengths))))


def test_big_endian_bundle(every_dtype, tmp_path):
    index = scan(every_dtype)
    data = pathlib.Path(shard_path(every_dtype, 0, 1)).read_bytes()
    header = tensor_bundle_pb2.BundleHeaderProto(num_shards=1, endianness=tensor_bundle_pb2.BundleHeaderProto.BIG)
    header.version.producer = 1
    items, swapped = [(b"", header.SerializeToString())], bytearray()
    for key, (dtype, shape, _), value in zip(index.keys, index.infos, index.values):
        if dtype.startswith(("int4", "uint4", "int2", "uint2", "float4", "float8")):
            continue  # TF refuses to "byte-swap" these 1-byte types (we read them: nothing to swap)
        entry = tensor_bundle_pb2.BundleEntryProto.FromString(value)
        count = int(np.prod(shape))
        raw = _big_endian_bytes(data[entry.offset : entry.offset + entry.size], dtype, count)
        entry.offset, entry.crc32c = len(swapped), _entry_crc(raw, dtype, count)
        swapped += raw
        items.append((key.encode(), entry.SerializeToString()))
    prefix = str(tmp_path / "big-endian.ckpt")
    write_table(prefix + ".index", items)
    pathlib.Path(shard_path(prefix, 0, 1)).write_bytes(bytes(swapped))
    assert scan(prefix).big_endian
    ours = assert_reads_as_tensorflow(prefix)
    assert len(ours) > 60
    assert_same(ours["float64/matrix"], read_all(every_dtype)["float64/matrix"])


# --- damage ------------------------------------------------------------------------------


def _flip(path, position):
    data = bytearray(pathlib.Path(path).read_bytes())
    data[position] ^= 0x01
    pathlib.Path(path).write_bytes(bytes(data))


def _ref(prefix, key):
    index = scan(prefix)
    dtype, shape, _ = index.infos[index.keys.index(key)]
    return _bundle.data_ref(index.values[index.keys.index(key)]), dtype, shape


@pytest.mark.parametrize(
    "key, where, fragment",
    [
        ("float32/matrix", 7, "checksum does not match"),
        ("big", 3_000_000, "checksum does not match"),  # memory-mapped
        ("strings/vector", 0, "checksum of its string lengths does not match"),
        ("strings/vector", -1, "checksum does not match"),  # in the last element's bytes
    ],
)
def test_a_flipped_byte_is_damage(every_dtype, key, where, fragment):
    ref, dtype, shape = _ref(every_dtype, key)
    path = shard_path(every_dtype, 0, 1)
    _flip(path, ref.offset + (where % ref.size))
    with pytest.raises(DataDamaged, match=fragment) as info:
        read_tensor(path, ref.offset, ref.size, dtype, shape, ref.crc32c)
    assert "damaged" in str(info.value)
    with pytest.raises(tf.errors.OpError, match="(?i)checksum does not match"):  # TensorFlow agrees
        tf.train.load_checkpoint(every_dtype).get_tensor(key)


def test_truncated_data_file(every_dtype):
    ref, dtype, shape = _ref(every_dtype, "big")
    path = shard_path(every_dtype, 0, 1)
    os.truncate(path, ref.offset + ref.size - 1)
    with pytest.raises(DataDamaged, match="past the end of the data file") as info:
        read_tensor(path, ref.offset, ref.size, dtype, shape, ref.crc32c)
    assert "truncated" in str(info.value)


@pytest.mark.parametrize(
    "offset, size, dtype, shape, fragment",
    [
        (0, 2**42, "float32", (2**40,), "past the end of the data file"),
        (0, 4, "float32", (2**40,), "is 4398046511104 bytes"),
        (2**62, 4, "float32", (1,), "past the end"),
        (-4, 4, "float32", (1,), "offset -4"),
        (0, 4, "string", (2**40,), "too few for 1099511627776 strings"),
        (0, 2**42, "string", (2**40,), "past the end"),
    ],
)
def test_absurd_entries_allocate_nothing(tmp_path, offset, size, dtype, shape, fragment):
    path = tmp_path / "tiny.data-00000-of-00001"
    path.write_bytes(b"\0" * 64)
    tracemalloc.start()
    try:
        with pytest.raises(DataDamaged, match=fragment):
            read_tensor(path, offset, size, dtype, shape, 0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100_000


def test_string_lengths_that_promise_too_much():
    tracemalloc.start()
    try:
        for data, shape in [
            (varint(2**60) + b"\0" * 8, (1,)),  # an element longer than the data
            (b"\x80" * 11, (1,)),  # a varint of 11 bytes
            (b"\x85", (1,)),  # a varint cut short
            (b"", (1,)),
            (b"\0" * 8, (2**40,)),  # more elements than bytes
        ]:
            with pytest.raises(DataDamaged):
                _tensordata.decode(data, "string", shape)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100_000
    with pytest.raises(DataDamaged, match="cannot be shape"):
        _tensordata.decode(b"\0" * 5, "float32", (1,))


def test_index_block_checksums(every_dtype):
    # Good indexes pass (every test above); a flipped bit in a key or in the index block fails.
    index_file = every_dtype + ".index"
    original = pathlib.Path(index_file).read_bytes()
    _flip(index_file, original.index(b"strings/"))
    with pytest.raises(_sstable.Damaged, match=r"has a data block at bytes 0\.\.\d+ whose checksum does not match"):
        _sstable.data_blocks(pathlib.Path(index_file).read_bytes())
    with pytest.raises(tf.errors.OpError, match="block checksum mismatch"):  # TensorFlow agrees
        tf.train.load_checkpoint(every_dtype)
    pathlib.Path(index_file).write_bytes(original)
    footer = original[-48:]
    _, pos = _sstable.varint(footer, 0)
    _, pos = _sstable.varint(footer, pos)
    index_offset, _ = _sstable.varint(footer, pos)
    _flip(index_file, index_offset + 2)
    with pytest.raises(_sstable.Damaged, match="has an index block .* checksum does not match"):
        _sstable.data_blocks(pathlib.Path(index_file).read_bytes())


# --- without TensorFlow ------------------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import pickle, sys
    from ckptwidgets.sources.bundle import _index as _bundle, _sstable, _tensordata

    prefix, out = sys.argv[1], sys.argv[2]
    with open(prefix + ".index", "rb") as f:
        index = _bundle.scan(_sstable.data_blocks(f.read()))
    values = {}
    for key, (dtype, shape, _), value in zip(index.keys, index.infos, index.values):
        ref = _bundle.data_ref(value)
        path = "%s.data-%05d-of-%05d" % (prefix, ref.shard_id, index.num_shards)
        values[key] = _tensordata.read_tensor(path, ref.offset, ref.size, dtype, shape, ref.crc32c, index.big_endian)
    assert "tensorflow" not in sys.modules, sorted(m for m in sys.modules if m.startswith("tensorflow"))[:5]
    with open(out, "wb") as f:
        pickle.dump(values, f)
    """
)


def test_reading_imports_no_tensorflow(every_dtype, tmp_path):
    out = tmp_path / "values.pickle"
    root = str(pathlib.Path(_tensordata.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-c", _CHILD, every_dtype, str(out)], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    values = pickle.loads(out.read_bytes())
    reader = tf.train.load_checkpoint(every_dtype)
    assert len(values) == len(scan(every_dtype).keys)
    for key, value in values.items():
        assert_same(value, reader.get_tensor(key), key)
