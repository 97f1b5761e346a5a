"""Open a checkpoint and describe its entries, reading only the index.

The ``.index`` file of a checkpoint is a LevelDB-style table: key -> ``BundleEntryProto``
(dtype, shape, where the bytes are). We parse it in Python ourselves: TensorFlow's C++
reader aborts the whole process (a dead Jupyter kernel, not an exception) on some damaged
entries: a negative or overflowing shape, more than 254 dimensions, an unparseable entry,
duplicate slices, negative slice extents. Only an index that passed goes to
``tf.train.load_checkpoint``, which checks the crc32c of its blocks (the entries listed
are ours: TF's maps would cost as much again). A read first checks that the entry's bytes
fit in its data file (TF allocates the whole tensor first, whatever its shape).

Example
-------
>>> import ckptwidgets
>>> ckpt = ckptwidgets.open_checkpoint("my_test_model.ckpt")   # doctest: +SKIP
>>> [(e.key, e.shape, e.kind) for e in ckpt.entries]           # doctest: +SKIP
[('v1', (1,), 'variable'), ('v2', (1,), 'variable')]
>>> ckpt.read("v1")                                            # doctest: +SKIP
array([1.], dtype=float32)
"""
from __future__ import annotations

import difflib
import gc
import math
import os
import re
import struct
from dataclasses import dataclass

from . import _validate
from ._quiet import import_tensorflow
from .errors import CheckpointNotFoundError, CorruptCheckpointError

__all__ = ["Entry", "Checkpoint", "open_checkpoint", "classify", "KINDS"]

tf = import_tensorflow()

from tensorflow.core.protobuf import tensor_bundle_pb2 as _bundle_pb2  # noqa: E402

KINDS = ("variable", "ema", "slot", "meta")

#: What TF2 object-based checkpoints append to a variable's object path.
VALUE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
EMA_SEGMENT = "ExponentialMovingAverage"
_SLOT_MARK = "/.OPTIMIZER_SLOT/"
# Last name segments TF1 optimizers give their slots ("w/Adam", "w/Adam_1").
_TF1_SLOT = re.compile(
    r"^(Adam|AdamW|Adamax|Nadam|LazyAdam|Momentum|RMSProp|Adagrad|AdagradDA|"
    r"Adadelta|Ftrl|ProximalAdagrad|LARS|LAMB|Lamb)(_\d+)?$"
)
# Bookkeeping that is not model state: step counters, optimizer scalars.
_META_NAMES = frozenset(
    {
        "global_step",
        "save_counter",
        "beta1_power",
        "beta2_power",
        "iter",
        "iterations",
        "_iterations",
        "learning_rate",
        "_learning_rate",
        "local_step",
        "biased",
    }
)
# Hyperparameters a Keras 2 optimizer tracks next to its `iter` counter.
_KERAS2_HYPER = frozenset({"beta_1", "beta_2", "decay", "epsilon", "rho", "momentum", "initial_accumulator_value"})
# Keras 3 optimizers keep their state in a flat list `<optimizer>/_variables/N` (the model
# weights are `<optimizer>/_trainable_variables/N`); which weight a state belongs to is not
# recorded, so those slots have base None.
_KERAS3_STATE = re.compile(r"^(.*/)?_variables/\d+$")
_META_FILE = re.compile(r"\.meta$")
_DATA_FILE = re.compile(r"\.data-\d{5}-of-\d{5}$")


@dataclass(frozen=True, slots=True)
class Entry:
    """One tensor stored in a checkpoint.

    Attributes
    ----------
    key : str
        The key as stored, e.g. ``"v1"`` or ``"net/l1/kernel/.ATTRIBUTES/VARIABLE_VALUE"``.
    name : str
        The key without the object-based ``/.ATTRIBUTES/VARIABLE_VALUE`` suffix; the name
        a variable must carry to match this entry.
    shape : tuple of int
    dtype : str
        TensorFlow's dtype name (``"float32"``, ``"int64"``, ``"string"``...).
    nbytes : int
        Size of the tensor's values (0 for strings, whose size is not in the index).
    kind : str
        ``"variable"``, ``"ema"`` (a moving-average shadow), ``"slot"`` (optimizer state)
        or ``"meta"`` (object graph, counters and other bookkeeping).
    base : str or None
        For ``"ema"`` and ``"slot"``: the key of the variable the entry belongs to.
    """

    key: str
    name: str
    shape: tuple
    dtype: str
    nbytes: int
    kind: str
    base: str | None

    @property
    def size(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)


# --- classification ----------------------------------------------------------------------


def classify(key: str, keys) -> tuple[str, str | None]:
    """Return ``(kind, base)`` for ``key``, given all keys of its checkpoint.

    ``keys`` must support fast ``in`` (a set or a dict's keys): the result depends on
    neighbours, e.g. ``w/Adam`` is a slot only if ``w`` is in the checkpoint.

    Examples
    --------
    >>> classify("w/Adam_1", {"w", "w/Adam_1"})
    ('slot', 'w')
    >>> classify("w/ExponentialMovingAverage", {"w"})
    ('ema', 'w')
    >>> classify("net/l1/kernel/.ATTRIBUTES/VARIABLE_VALUE", set())
    ('variable', None)
    """
    if key.endswith(VALUE_SUFFIX):
        suffix = VALUE_SUFFIX
        name = key[: -len(VALUE_SUFFIX)]
    elif key == OBJECT_GRAPH_KEY or "/.ATTRIBUTES/" in key:
        return "meta", None
    else:
        suffix = ""
        name = key
    head, _, last = name.rpartition("/")
    if _SLOT_MARK in name:
        return "slot", name.split(_SLOT_MARK, 1)[0] + suffix
    if last == EMA_SEGMENT and head:
        return "ema", head + suffix
    if last in _META_NAMES:
        return "meta", None
    if head:
        if last.isdigit() and _KERAS3_STATE.match(name):
            owner = name[: -len(last) - len("_variables/")]
            if owner + "_iterations" + suffix in keys or owner + "iterations" + suffix in keys:
                return "slot", None
        elif last in _KERAS2_HYPER and head + "/iter" + suffix in keys:
            return "meta", None
        elif _TF1_SLOT.match(last) and head + suffix in keys:
            return "slot", head + suffix
    return "variable", None


# What the last segment of a name says on its own (a cache per distinct segment):
_PLAIN, _EMA, _META, _TF1, _OTHER = range(5)


def _segment_code(last: str) -> int:
    if last == EMA_SEGMENT:
        return _EMA
    if last in _META_NAMES:
        return _META
    if not last or last in _KERAS2_HYPER or last.isdigit():
        return _OTHER
    if _TF1_SLOT.match(last):
        return _TF1
    return _PLAIN


_segment_codes: dict[str, int] = {}
_ENTRY_SETTERS = tuple(Entry.__dict__[f].__set__ for f in ("key", "name", "shape", "dtype", "nbytes", "kind", "base"))


# --- the index file ----------------------------------------------------------------------

_FOOTER = 48  # two varint block handles padded to 40 bytes, then the 8-byte magic
_MAGIC = 0xDB4775248B80FB57
_TRAILER = 5  # after every block: 1 byte compression type, 4 bytes masked crc32c
_MAX_RANK = 254  # TensorShape::MaxDimensions()
_BUNDLE_VERSION = 1  # kTensorBundleVersion, the format this TensorFlow reads
_INT64_MAX = 2**63 - 1
# Fields after the shape in an entry as TF serialises it: shard_id, offset, size, crc32c.
# An entry whose tail is anything else (slices, unknown fields) takes the full proto parse.
_PLAIN_TAIL = re.compile(
    rb"(?:\x18[\x80-\xff]{0,9}[\x00-\x7f])?(?:\x20[\x80-\xff]{0,9}[\x00-\x7f])?"
    rb"(?:\x28[\x80-\xff]{0,9}[\x00-\x7f])?(?:\x35[\x00-\xff]{4})?"
)


class _Damaged(Exception):
    """Internal: what is wrong with an index; open_checkpoint adds the file name."""


def _dtype_table() -> dict[int, tuple[str, int]]:
    # Enum -> (name, itemsize) for every real tensor dtype. Reference dtypes (>= 100) and
    # DT_INVALID are absent: TF aborts on reading them.
    from tensorflow.core.framework import types_pb2

    table = {}
    for enum in types_pb2.DataType.values():
        if 0 < enum < 100:
            try:
                dtype = tf.as_dtype(enum)
            except Exception:  # a dtype newer than this TensorFlow's Python layer
                continue
            size = 0 if dtype.name in ("string", "resource", "variant") else dtype.size
            table[enum] = (dtype.name, size)
    return table


_DTYPES = _dtype_table()
_DTYPES_BY_NAME = {name: (name, size) for name, size in _DTYPES.values()}


def _varint(buf, pos: int) -> tuple[int, int]:
    result = shift = 0
    for _ in range(10):
        byte = buf[pos]  # IndexError past the end: caught by the caller
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
    raise _Damaged("is garbled (a varint runs over 10 bytes)")


def _snappy_uncompress(data: bytes) -> bytes:
    """Snappy's raw format (TF could write compressed index blocks around version 1.1)."""
    expected, pos = _varint(data, 0)
    out = bytearray()
    while pos < len(data):
        tag = data[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:  # literal
            length = tag >> 2
            if length >= 60:
                extra = length - 59
                length = int.from_bytes(data[pos : pos + extra], "little")
                pos += extra
            length += 1
            if pos + length > len(data):
                raise _Damaged("has a truncated snappy-compressed block")
            out += data[pos : pos + length]
            pos += length
            continue
        if kind == 1:
            length = ((tag >> 2) & 7) + 4
            offset = ((tag >> 5) << 8) | data[pos]
            pos += 1
        else:
            width = 2 if kind == 2 else 4
            length = (tag >> 2) + 1
            offset = int.from_bytes(data[pos : pos + width], "little")
            pos += width
        if not 0 < offset <= len(out):
            raise _Damaged("has a garbled snappy-compressed block")
        for _ in range(length):  # copies may overlap their own output
            out.append(out[-offset])
    if len(out) != expected:
        raise _Damaged("has a snappy-compressed block of the wrong length")
    return bytes(out)


def _block(buf: bytes, handle: bytes, body_end: int, what: str) -> bytes:
    offset, pos = _varint(handle, 0)
    size, _ = _varint(handle, pos)
    if offset + size + _TRAILER > body_end:
        raise _Damaged(f"points to a {what} block at bytes {offset}..{offset + size}, outside the file")
    kind = buf[offset + size]
    contents = buf[offset : offset + size]
    if kind == 1:
        return _snappy_uncompress(contents)
    if kind != 0:
        raise _Damaged(f"has a {what} block with unknown compression type {kind}")
    return contents


def _show(key) -> str:
    """A key for a message: text, escaped, not too long."""
    if isinstance(key, bytes):
        key = key.decode("utf-8", "backslashreplace")
    return repr(key if len(key) <= 100 else key[:100] + "...")


def _check_shape(dims, key) -> tuple[tuple[int, ...], int]:
    # TensorShape's constructor CHECK-fails (aborts) on each of these.
    if len(dims) > _MAX_RANK:
        raise _Damaged(f"has entry {_show(key)} with {len(dims)} dimensions (TensorFlow allows {_MAX_RANK})")
    count = 1
    for d in dims:
        if d < 0:
            raise _Damaged(f"has entry {_show(key)} with a negative dimension in shape {list(dims)}")
        count *= d
    if count > _INT64_MAX:
        raise _Damaged(f"has entry {_show(key)} with shape {list(dims)}: more elements than int64 counts")
    return tuple(dims), count


def _parse_entry(key, value: bytes):
    """The full (slow) route: a parsed, validated BundleEntryProto."""
    from google.protobuf.message import DecodeError

    try:
        proto = _bundle_pb2.BundleEntryProto.FromString(value)
    except DecodeError:
        raise _Damaged(f"has entry {_show(key)} that is not a readable BundleEntryProto") from None
    if proto.dtype not in _DTYPES:
        raise _Damaged(f"has entry {_show(key)} with dtype enum {proto.dtype}, not a tensor dtype")
    if proto.shape.unknown_rank:
        raise _Damaged(f"has entry {_show(key)} with a shape of unknown rank")
    _check_shape([d.size for d in proto.shape.dim], key)
    return proto


def _shape_info(head: bytes, key):
    """(dtype name, shape, nbytes) from the dtype+shape bytes that start an entry."""
    proto = _parse_entry(key, head)
    name, itemsize = _DTYPES[proto.dtype]
    shape, count = _check_shape([d.size for d in proto.shape.dim], key)
    return name, shape, count * itemsize


def _ordered_string(key: bytes, pos: int) -> str | None:
    # OrderedCode::WriteString: 0x00 -> 00 ff, 0xff -> ff 00, ended by 00 01.
    out = bytearray()
    while pos + 1 < len(key):
        byte = key[pos]
        if byte == 0x00:
            nxt = key[pos + 1]
            if nxt == 0x01:
                return out.decode("utf-8", "replace")
            if nxt != 0xFF:
                return None
            out.append(0)
            pos += 2
        elif byte == 0xFF:
            if key[pos + 1] != 0x00:
                return None
            out.append(0xFF)
            pos += 2
        else:
            out.append(byte)
            pos += 1
    return None


def _block_bounds(block: bytes) -> int:
    """Where the entries of a block end (its restart array follows)."""
    if len(block) < 4:
        raise _Damaged("has a block shorter than its restart count")
    (restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    limit = len(block) - 4 - 4 * restarts
    if limit < 0:
        raise _Damaged("has a block whose restart array is longer than the block")
    return limit


def _block_items(block: bytes) -> list[tuple[bytes, bytes]]:
    """The (key, value) pairs of a block (used for the small index block)."""
    limit = _block_bounds(block)
    out = []
    pos = 0
    key = b""
    while pos < limit:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        length, pos = _varint(block, pos)
        end = pos + unshared
        if shared > len(key) or end + length > limit:
            raise _Damaged("has an entry that runs past the end of its block")
        key = key[:shared] + block[pos:end]
        out.append((key, block[end : end + length]))
        pos = end + length
    return out


def _data_blocks(buf: bytes) -> list[bytes]:
    """The data blocks of the SSTable in ``buf``, in key order, after checking the footer."""
    if len(buf) == 0:
        raise _Damaged("is empty (0 bytes)")
    if len(buf) < _FOOTER:
        raise _Damaged(f"is {len(buf)} bytes, too short for a checkpoint index (the table footer alone is 48)")
    (magic,) = struct.unpack_from("<Q", buf, len(buf) - 8)
    if magic != _MAGIC:
        raise _Damaged("is not a checkpoint index: it does not end in the table magic number")
    body_end = len(buf) - _FOOTER
    footer = buf[body_end:]
    _, pos = _varint(footer, 0)
    _, pos = _varint(footer, pos)  # the metaindex handle: nothing in it for us
    start = pos
    _, pos = _varint(footer, pos)
    _, pos = _varint(footer, pos)
    index = _block(buf, footer[start:pos], body_end, "index")
    return [_block(buf, handle, body_end, "data") for _, handle in _block_items(index)]


def _scan(blocks: list[bytes]):
    """Every entry of the index, validated and classified, in one pass.

    Returns ``(entries, by_key, values, num_shards)``: the ``Entry`` list in key order, a
    dict key -> Entry, the serialized ``BundleEntryProto`` of each entry (same order) and
    the header's shard count.

    Speed matters (10,000 entries must open about as fast as TensorFlow lists them), so
    this is one loop doing what would read more clearly as three:

    * entries: most take the fast road. Their dtype+shape bytes repeat across a model, so
      those are parsed once per distinct value (``cache``), and a regular expression
      checks that the rest of the entry is the plain fields TF writes after them.
    * classification: the same decisions as :func:`classify`, in its order, from a
      per-segment cache (``"kernel"`` can only be a variable). A slot's variable sorts
      before it (``w`` < ``w/Adam``), so "is the base present" is asked of the keys seen
      so far; the rare rules with neighbours after the key are left to ``classify`` at
      the end (``deferred``).
    * Entry objects are filled through their slot descriptors, skipping the frozen
      ``__init__``'s ``object.__setattr__`` calls.
    """
    from google.protobuf.message import DecodeError

    cache: dict[bytes, tuple] = {}
    entries: list = []
    values: list = []
    by_key: dict = {}
    sliced: dict = {}
    orphans: list = []
    deferred: list = []
    header = None
    previous = None
    plain_tail = _PLAIN_TAIL.fullmatch
    codes = _segment_codes
    new = object.__new__
    set_key, set_name, set_shape, set_dtype, set_nbytes, set_kind, set_base = _ENTRY_SETTERS
    suffix, cut = VALUE_SUFFIX, -len(VALUE_SUFFIX)
    for block in blocks:
        limit = _block_bounds(block)
        pos = 0
        key = b""
        while pos < limit:
            # Three varints, nearly always one byte each: the fast road when they are.
            shared, unshared, length = block[pos], block[pos + 1], block[pos + 2]
            if shared | unshared | length < 0x80:
                pos += 3
            else:
                shared, pos = _varint(block, pos)
                unshared, pos = _varint(block, pos)
                length, pos = _varint(block, pos)
            end = pos + unshared
            if shared > len(key) or end + length > limit:
                raise _Damaged("has an entry that runs past the end of its block")
            key = key[:shared] + block[pos:end]
            value = block[end : end + length]
            pos = end + length
            if previous is None:
                if key != b"":
                    raise _Damaged("has no header entry (the first key of a checkpoint index is empty)")
                try:
                    header = _bundle_pb2.BundleHeaderProto.FromString(value)
                except DecodeError:
                    raise _Damaged("has an unreadable header entry") from None
                previous = key
                continue
            if key <= previous:
                raise _Damaged(f"has keys out of order at {_show(key)}")
            previous = key
            # --- the entry: dtype, shape, size ---
            if (
                key[0] != 0  # keys of tensor slices start with NUL: the slow road
                and len(value) > 3
                and value[0] == 0x08
                and value[1] < 0x80
                and value[2] == 0x12
                and value[3] < 0x80
                and plain_tail(value, 4 + value[3])
            ):
                head = value[: 4 + value[3]]
                info = cache.get(head)
                if info is None:
                    info = cache[head] = _shape_info(head, key)
                dtype, shape, nbytes = info
            else:
                proto = _parse_entry(key, value)
                if key[0] == 0 and not proto.slices:
                    orphans.append(key)  # a slice of a partitioned variable, checked below
                    continue
                if proto.slices:
                    _check_slices(proto, key)
                    sliced[key.decode("utf-8", "replace")] = proto
                dtype, itemsize = _DTYPES[proto.dtype]
                shape, count = _check_shape([d.size for d in proto.shape.dim], key)
                nbytes = count * itemsize
            try:
                text = key.decode("utf-8")
            except UnicodeDecodeError:
                raise _Damaged(f"has key {_show(key)}, which is not UTF-8 text") from None
            # --- the kind ---
            if text.endswith(suffix):
                name, tail, unusual = text[:cut], suffix, False
            else:
                name, tail = text, ""
                unusual = text == OBJECT_GRAPH_KEY or "/.ATTRIBUTES/" in text
            cut_at = name.rfind("/")
            last = name[cut_at + 1 :]
            code = codes.get(last)
            if code is None:
                code = codes[last] = _segment_code(last)
            base = None
            if unusual or code == _OTHER or _SLOT_MARK in name:
                kind = None
                deferred.append(len(entries))
            elif code == _PLAIN:
                kind = "variable"
            elif code == _META:
                kind = "meta"
            elif cut_at > 0 and (code == _EMA or name[:cut_at] + tail in by_key):
                kind, base = ("ema" if code == _EMA else "slot"), name[:cut_at] + tail
            else:
                kind = "variable"
            entry = new(Entry)
            set_key(entry, text)
            set_name(entry, name)
            set_shape(entry, shape)
            set_dtype(entry, dtype)
            set_nbytes(entry, nbytes)
            set_kind(entry, kind)
            set_base(entry, base)
            entries.append(entry)
            values.append(value)
            by_key[text] = entry
    if header is None:
        raise _Damaged("holds no entries, not even the header")
    if header.num_shards < 1:
        raise _Damaged(f"claims {header.num_shards} data shards")
    version = header.version
    if version.min_consumer > _BUNDLE_VERSION or _BUNDLE_VERSION in version.bad_consumers:
        raise _Damaged(
            f"was written in tensor bundle format {version.producer} (needs a reader of version "
            f"{version.min_consumer} or newer); this TensorFlow reads version {_BUNDLE_VERSION}"
        )
    for key in orphans:
        # A slice key names its variable (OrderedCode); any other such key is damage.
        if _ordered_string(key, 1) not in sliced:
            raise _Damaged(f"has key {_show(key)}, a tensor slice of no partitioned variable")
    for i in deferred:
        kind, base = classify(entries[i].key, by_key)
        set_kind(entries[i], kind)
        set_base(entries[i], base)
    return entries, by_key, values, header.num_shards


def _check_slices(proto, key) -> None:
    # TF aborts on a repeated slice (at open) and on a negative extent (at read). A full
    # extent is written without a length, never as -1.
    seen = set()
    for piece in proto.slices:
        extents = tuple((e.start, e.length if e.HasField("length") else None) for e in piece.extent)
        if any(start < 0 or (length is not None and length < 0) for start, length in extents):
            raise _Damaged(f"has entry {_show(key)} with a negative slice extent {extents}")
        if extents in seen:
            raise _Damaged(f"has entry {_show(key)} listing the slice {extents} twice")
        seen.add(extents)


def _read_index(prefix: str):
    index = prefix + ".index"
    try:
        with tf.io.gfile.GFile(index, "rb") as f:
            buf = f.read()
    except Exception as error:
        raise CorruptCheckpointError(f"Cannot read index file {index!r}: {_first_line(error)}") from None
    # The scan allocates two objects per entry and frees none: the cyclic garbage
    # collector would walk the growing lists dozens of times for nothing.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _scan(_data_blocks(buf))
    except _Damaged as damage:
        raise CorruptCheckpointError(f"Index file {index!r} {damage}") from None
    except (IndexError, struct.error):
        raise CorruptCheckpointError(
            f"Index file {index!r} is truncated or garbled (a block or entry runs past its end)"
        ) from None
    finally:
        if collecting:
            gc.enable()


# --- helpers -----------------------------------------------------------------------------


def _dtype_info(dtype) -> tuple[str, int]:
    if isinstance(dtype, str) and dtype in _DTYPES_BY_NAME:
        return _DTYPES_BY_NAME[dtype]
    found = _DTYPES.get(dtype) if isinstance(dtype, int) else None
    if found is not None:
        return found
    name = tf.as_dtype(dtype).name
    return _DTYPES_BY_NAME.get(name, (name, 0))


def _first_line(error: BaseException) -> str:
    text = getattr(error, "message", None) or str(error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__


def _suggest(name: str, candidates, n: int = 3) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=n, cutoff=0.5)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def _resolve_prefix(path: str) -> str:
    """Turn a prefix, an ``.index`` file or a folder into a checkpoint prefix."""
    gfile = tf.io.gfile
    if gfile.isdir(path):
        # The folder's 'checkpoint' file names the latest prefix. Read it directly:
        # tf.train.latest_checkpoint logs an ERROR line and returns None when the named
        # files are gone, and the message should say which prefix was named.
        state = tf.train.get_checkpoint_state(path)
        if state is not None:
            latest = state.model_checkpoint_path
            if latest and gfile.exists(latest + ".index"):
                return latest
            raise CheckpointNotFoundError(
                f"The 'checkpoint' file in folder {path!r} points to {latest!r}, "
                "which has no .index file: the checkpoint it names was moved or deleted."
            )
        indexes = sorted(gfile.glob(os.path.join(path, "*.index")))
        if len(indexes) == 1:
            return indexes[0][: -len(".index")]
        if indexes:
            raise CheckpointNotFoundError(
                f"Folder {path!r} holds {len(indexes)} checkpoints and no 'checkpoint' file "
                f"saying which is latest; pass one prefix, e.g. {indexes[-1][:-6]!r}."
            )
        raise CheckpointNotFoundError(f"Folder {path!r} contains no checkpoint (no .index file).")
    if path.endswith(".index"):
        path = path[: -len(".index")]
    for pattern, what in ((_META_FILE, "a MetaGraph file"), (_DATA_FILE, "a data shard")):
        found = pattern.search(path)
        if found:
            prefix = path[: found.start()]
            raise CheckpointNotFoundError(
                f"{path!r} is {what}, not a checkpoint prefix; "
                f"pass the prefix {prefix!r} (or its .index file) instead."
            )
    if not gfile.exists(path + ".index"):
        if gfile.exists(path) and not gfile.isdir(path):
            raise CorruptCheckpointError(
                f"{path!r} is a file but not a checkpoint prefix: there is no {path + '.index'!r}."
            )
        folder = os.path.dirname(path) or "."
        hint = ""
        if gfile.isdir(folder):
            prefixes = [f[:-6] for f in gfile.listdir(folder) if f.endswith(".index")]
            hint = _suggest(os.path.basename(path), prefixes)
        raise CheckpointNotFoundError(f"No checkpoint at {path!r} (no file {path + '.index'!r}).{hint}")
    return path


# --- the checkpoint ----------------------------------------------------------------------


class Checkpoint:
    """A checkpoint opened for reading: its entries (from the index) and lazy tensor reads.

    Build one with :func:`open_checkpoint`. The constructor also takes plain maps, as
    ``CheckpointReader`` gives them (``shapes``: key -> list of int, ``dtypes``: key ->
    dtype, enum or name), for tests that need an index without files.
    """

    def __init__(self, prefix: str, reader, shapes: dict, dtypes: dict):
        entries = []
        for key in sorted(shapes):
            dtype, itemsize = _dtype_info(dtypes[key])
            shape = tuple(int(d) for d in shapes[key])
            kind, base = classify(key, shapes)
            name = key[: -len(VALUE_SUFFIX)] if key.endswith(VALUE_SUFFIX) else key
            entries.append(Entry(key, name, shape, dtype, math.prod(shape) * itemsize, kind, base))
        self._setup(prefix, reader, entries, {e.key: e for e in entries}, None, 1)

    @classmethod
    def _from_index(cls, prefix, reader, entries, by_key, values, num_shards) -> Checkpoint:
        self = cls.__new__(cls)
        self._setup(prefix, reader, entries, by_key, values, num_shards)
        return self

    def _setup(self, prefix, reader, entries, by_key, values, num_shards):
        self.prefix = prefix
        self._reader = reader
        self.entries: tuple[Entry, ...] = tuple(entries)
        self._by_key = by_key
        # Object-based entries are also found by their name without the suffix.
        self._by_name = {e.name: e for e in entries if e.name != e.key}
        # The serialized index entries, checked before each read (see _check_readable).
        self._values = values
        self._num_shards = num_shards

    # --- mapping-like access -------------------------------------------------
    def __getitem__(self, key: str) -> Entry:
        try:
            return self._by_key[key]
        except (KeyError, TypeError):
            pass
        found = self._by_name.get(key) if isinstance(key, str) else None
        if found is not None:
            return found
        raise KeyError(f"Key {key!r} not found in checkpoint {self.prefix!r}.{_suggest(str(key), self._by_key)}")

    def __contains__(self, key) -> bool:
        return key in self._by_key

    def __iter__(self):
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def keys(self) -> list[str]:
        return [e.key for e in self.entries]

    def find(self, name: str) -> Entry | None:
        """The entry whose key or name (key without the object-based suffix) is ``name``."""
        return self._by_key.get(name) or self._by_name.get(name)

    @property
    def object_based(self) -> bool:
        """True for TF2 ``tf.train.Checkpoint`` files, False for name-based (``Saver``) ones."""
        return OBJECT_GRAPH_KEY in self._by_key

    @property
    def files(self) -> list[str]:
        """The index and data files of this checkpoint."""
        return [self.prefix + ".index"] + sorted(tf.io.gfile.glob(self.prefix + ".data-*"))

    def totals(self) -> dict[str, tuple[int, int]]:
        """``{kind: (count, nbytes)}`` for every kind present."""
        out: dict[str, list[int]] = {}
        for e in self.entries:
            slot = out.setdefault(e.kind, [0, 0])
            slot[0] += 1
            slot[1] += e.nbytes
        return {k: (c, b) for k, (c, b) in out.items()}

    def _check_readable(self, entry: Entry) -> None:
        # TF allocates the whole tensor before it checks the stored size against the data
        # file; an absurd shape in a damaged index would exhaust memory or abort.
        if self._values is None or entry.nbytes == 0:
            return
        if not isinstance(self._values, dict):  # a list aligned with entries until needed
            self._values = dict(zip((e.key for e in self.entries), self._values))
        proto = _bundle_pb2.BundleEntryProto.FromString(self._values[entry.key])
        if proto.slices:
            return  # assembled from slice entries, each checked by TF against its file
        shard = "%s.data-%05d-of-%05d" % (self.prefix, proto.shard_id, self._num_shards)
        try:
            available = tf.io.gfile.stat(shard).length
        except Exception:
            available = None
        if available is not None and (proto.size != entry.nbytes or proto.offset + proto.size > available):
            raise CorruptCheckpointError(
                f"Cannot read key {entry.key!r} from checkpoint {self.prefix!r}: its index entry "
                f"says {proto.size} bytes at offset {proto.offset} of {shard!r} ({available} bytes), "
                f"but shape {list(entry.shape)} of {entry.dtype} needs {entry.nbytes}."
            )

    def _tf_reader(self):
        # open_checkpoint makes it; a Checkpoint built from maps makes it on the first read.
        if self._reader is None:
            try:
                self._reader = tf.train.load_checkpoint(self.prefix)
            except Exception as error:  # DataLossError, OutOfRangeError, InvalidArgumentError...
                raise CorruptCheckpointError(
                    f"Cannot read checkpoint {self.prefix!r} (index file {self.prefix + '.index'!r}): "
                    f"{_first_line(error)}"
                ) from None
        return self._reader

    def read(self, key: str):
        """Read one tensor as a numpy array.

        Raises
        ------
        KeyError
            ``key`` is not in the checkpoint (the message suggests close keys).
        CorruptCheckpointError
            The data file cannot be read, or the index fails TensorFlow's checksums.
        """
        entry = self[key]
        self._check_readable(entry)
        reader = self._tf_reader()
        try:
            return reader.get_tensor(entry.key)
        except Exception as error:  # TF raises several types for damaged files
            raise CorruptCheckpointError(
                f"Cannot read key {entry.key!r} from checkpoint {self.prefix!r}: {_first_line(error)}"
            ) from None

    def __repr__(self) -> str:
        kinds = ", ".join(f"{c} {k}" for k, (c, _) in sorted(self.totals().items()))
        return f"<Checkpoint {self.prefix!r}: {len(self.entries)} entries ({kinds})>"


def open_checkpoint(path) -> Checkpoint:
    """Open a checkpoint for reading; only its index is read.

    Parameters
    ----------
    path : str or os.PathLike or Checkpoint
        A checkpoint prefix (``"model.ckpt"``), its ``.index`` file, or a folder (its
        latest checkpoint, as ``tf.train.latest_checkpoint`` finds it). Name-based
        (``Saver``) and object-based (``tf.train.Checkpoint``) checkpoints, sharded ones
        included.

    Returns
    -------
    Checkpoint

    Raises
    ------
    CheckpointNotFoundError
        Nothing readable at ``path``.
    CorruptCheckpointError
        The files are there but are not a readable checkpoint; the message names the file.

    Examples
    --------
    >>> ckpt = open_checkpoint("/tmp/model/")                 # doctest: +SKIP
    >>> ckpt["v1"].shape                                      # doctest: +SKIP
    (1,)
    """
    if isinstance(path, Checkpoint):
        return path
    try:
        path = os.fspath(path)
    except TypeError:
        raise CheckpointNotFoundError(
            f"A checkpoint path must be a str or os.PathLike, not {type(path).__name__}: {path!r}"
        ) from None
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    prefix = _validate.resolve_prefix(path, _resolve_prefix)  # FIFOs, devices, a binary 'checkpoint' file
    # Our own parse first: it rejects what would abort TensorFlow's reader. Then TF's
    # reader, for what our parse does not check: the crc32c of every index block (a
    # flipped bit in a key or a shape would otherwise open without a word).
    entries, by_key, values, num_shards = _read_index(prefix)
    ckpt = Checkpoint._from_index(prefix, None, entries, by_key, values, num_shards)
    ckpt._tf_reader()
    return ckpt
