"""The entries of a checkpoint's ``.index``: ``BundleEntryProto`` values, read and validated.

Private helper of :mod:`ckptwidgets.reader`; :mod:`ckptwidgets.sources.bundle._sstable` gives the table's
``(key, value)`` pairs. In TensorFlow's tensor bundle format the first key is empty and
holds a ``BundleHeaderProto`` (shard count, byte order, format version); every other key
is a tensor name holding a ``BundleEntryProto`` (dtype, shape, shard, offset, size,
crc32c). The slices of a partitioned variable are stored under keys starting with a NUL
byte (:mod:`ckptwidgets.sources.bundle._slices`), next to the variable's own entry, which lists
them. The messages come from :mod:`ckptwidgets.sources.bundle._protos` and the dtypes from
:mod:`ckptwidgets.sources._dtypes`: no TensorFlow.

We validate what TensorFlow's C++ reader would abort the whole process on (a dead Jupyter
kernel, not an exception): a negative or overflowing shape, more than 254 dimensions, an
unparseable entry, a reference or invalid dtype, duplicate slices, negative slice extents,
a slice entry whose dtype or shape is not the one its key says (TF copies it into the
full tensor unchecked). Each becomes :class:`~ckptwidgets.sources.bundle._sstable.Damaged` with a
message naming the key. Whether the slices a variable lists tile its shape is checked
when it is read (``sources/bundle.py``), as TF checks it then.

Example
-------
>>> data_ref(b"\\x08\\x01\\x12\\x04\\x12\\x02\\x08\\x03\\x20\\x08\\x28\\x0c")
DataRef(shard_id=0, offset=8, size=12, crc32c=0)
"""
from __future__ import annotations

import re
from typing import NamedTuple

from .._dtypes import dtype_info
from ._slices import bounds, parse_slice_key
from ._protos import BundleEntryProto, BundleHeaderProto, DecodeError
from ._sstable import Damaged, block_items

__all__ = ["Index", "DataRef", "scan", "data_ref", "slice_extents", "show_key"]

_MAX_RANK = 254  # TensorShape::MaxDimensions()
_BUNDLE_VERSION = 1  # kTensorBundleVersion, the format this TensorFlow reads
_BIG_ENDIAN = 1  # BundleHeaderProto.BIG
_INT64_MAX = 2**63 - 1
# Fields after the shape in an entry as TF serialises it: shard_id, offset, size, crc32c.
# An entry whose tail is anything else (slices, unknown fields) takes the full proto parse.
_PLAIN_TAIL = re.compile(
    rb"(?:\x18[\x80-\xff]{0,9}[\x00-\x7f])?(?:\x20[\x80-\xff]{0,9}[\x00-\x7f])?"
    rb"(?:\x28[\x80-\xff]{0,9}[\x00-\x7f])?(?:\x35[\x00-\xff]{4})?"
)


class Index(NamedTuple):
    """What :func:`scan` finds in an index: parallel lists in key order, and the header."""

    keys: list  # str
    infos: list  # (dtype name, shape tuple, nbytes)
    values: list  # the serialized BundleEntryProto, for data_ref
    num_shards: int
    big_endian: bool
    slices: dict  # slice key (bytes) -> its serialized BundleEntryProto, for partitioned reads


class DataRef(NamedTuple):
    """Where a tensor's bytes are: data shard, byte range, masked crc32c as stored."""

    shard_id: int
    offset: int
    size: int
    crc32c: int


def show_key(key) -> str:
    """A key for a message: text, escaped, not too long."""
    if isinstance(key, bytes):
        key = key.decode("utf-8", "backslashreplace")
    return repr(key if len(key) <= 100 else key[:100] + "...")


def _check_shape(dims, key) -> tuple[tuple[int, ...], int]:
    # TensorShape's constructor CHECK-fails (aborts) on each of these.
    if len(dims) > _MAX_RANK:
        raise Damaged(f"has entry {show_key(key)} with {len(dims)} dimensions (TensorFlow allows {_MAX_RANK})")
    count = 1
    for d in dims:
        if d < 0:
            raise Damaged(f"has entry {show_key(key)} with a negative dimension in shape {list(dims)}")
        count *= d
    if count > _INT64_MAX:
        raise Damaged(f"has entry {show_key(key)} with shape {list(dims)}: more elements than int64 counts")
    return tuple(dims), count


def _parse_entry(key, value: bytes):
    """The full (slow) route: a parsed, validated BundleEntryProto."""
    try:
        proto = BundleEntryProto.FromString(value)
    except DecodeError:
        raise Damaged(f"has entry {show_key(key)} that is not a readable BundleEntryProto") from None
    try:
        dtype_info(proto.dtype)  # the real tensor dtypes only: TF aborts on the others
    except ValueError:
        raise Damaged(f"has entry {show_key(key)} with dtype enum {proto.dtype}, not a tensor dtype") from None
    if proto.shape.unknown_rank:
        raise Damaged(f"has entry {show_key(key)} with a shape of unknown rank")
    _check_shape([d.size for d in proto.shape.dim], key)
    return proto


def _info(proto, key) -> tuple[str, tuple[int, ...], int]:
    """``(dtype name, shape, nbytes)`` of a parsed entry."""
    name, itemsize = dtype_info(proto.dtype)
    shape, count = _check_shape([d.size for d in proto.shape.dim], key)
    return name, shape, count * itemsize


def _check_slices(proto, key) -> None:
    # TF aborts on a repeated slice (at open) and on a negative extent (at read). A full
    # extent is written without a length, never as -1.
    seen = set()
    for piece in proto.slices:
        extents = tuple((e.start, e.length if e.HasField("length") else None) for e in piece.extent)
        if any(start < 0 or (length is not None and length < 0) for start, length in extents):
            raise Damaged(f"has entry {show_key(key)} with a negative slice extent {extents}")
        if extents in seen:
            raise Damaged(f"has entry {show_key(key)} listing the slice {extents} twice")
        seen.add(extents)


def _check_header(header) -> int:
    # What TF's CheckVersions refuses (an error from TF too, not an abort: a checkpoint we
    # read without TF must be refused alike).
    if header is None:
        raise Damaged("holds no entries, not even the header")
    if header.num_shards < 1:
        raise Damaged(f"claims {header.num_shards} data shards")
    version = header.version
    if version.producer < 0:  # kTensorBundleMinProducer is 0
        raise Damaged(f"claims tensor bundle format {version.producer}, older than any TensorFlow wrote")
    if version.min_consumer > _BUNDLE_VERSION or _BUNDLE_VERSION in version.bad_consumers:
        raise Damaged(
            f"was written in tensor bundle format {version.producer} (needs a reader of version "
            f"{version.min_consumer} or newer); this TensorFlow reads version {_BUNDLE_VERSION}"
        )
    return header.num_shards


def scan(blocks: list[bytes]) -> Index:
    """Every tensor entry of the index, validated, in key order.

    Returns an :class:`Index`: the keys as text, ``(dtype name, shape, nbytes)`` per key
    (nbytes 0 for strings), the serialized ``BundleEntryProto`` per key (for
    :func:`data_ref`), the header's shard count and byte order. Slice keys are checked and
    kept apart (:attr:`Index.slices`): the partitioned variable's own entry stands for them.

    Speed matters (10,000 entries must open about as fast as TensorFlow lists them): most
    entries take a fast road. Their dtype+shape bytes repeat across a model, so those are
    parsed once per distinct value (``cache``), and a regular expression checks that the
    rest of the entry is the plain fields TF writes after them.
    """
    cache: dict[bytes, tuple] = {}
    keys: list = []
    infos: list = []
    values: list = []
    sliced: dict = {}  # key (bytes) of a partitioned variable -> its parsed entry
    orphans: list = []
    header = None
    previous = None
    plain_tail = _PLAIN_TAIL.fullmatch
    for block in blocks:
        for key, value in block_items(block):
            if previous is None:
                if key != b"":
                    raise Damaged("has no header entry (the first key of a checkpoint index is empty)")
                try:
                    header = BundleHeaderProto.FromString(value)
                except DecodeError:
                    raise Damaged("has an unreadable header entry") from None
                previous = key
                continue
            if key <= previous:
                raise Damaged(f"has keys out of order at {show_key(key)}")
            previous = key
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
                    info = cache[head] = _info(_parse_entry(key, head), key)
            else:
                proto = _parse_entry(key, value)
                if key[0] == 0 and not proto.slices:
                    orphans.append((key, value, proto))  # a slice of a partitioned variable, checked below
                    continue
                if proto.slices:
                    _check_slices(proto, key)
                    sliced[key] = proto
                info = _info(proto, key)
            try:
                keys.append(key.decode("utf-8"))
            except UnicodeDecodeError:
                raise Damaged(f"has key {show_key(key)}, which is not UTF-8 text") from None
            infos.append(info)
            values.append(value)
    num_shards = _check_header(header)
    slices = {}
    for key, value, proto in orphans:
        _check_slice_entry(key, proto, sliced)
        slices[key] = value
    return Index(keys, infos, values, num_shards, header.endianness == _BIG_ENDIAN, slices)


def _check_slice_entry(key: bytes, proto, sliced: dict) -> None:
    """A slice key names its variable and extents (OrderedCode); its entry must hold them.

    TF's reader copies a slice into the full tensor by the extents, trusting the slice
    entry's dtype and size: a mismatch there aborts it or reads out of bounds.
    """
    parsed = parse_slice_key(key)
    full = sliced.get(parsed[0]) if parsed is not None else None
    if full is None:
        raise Damaged(f"has key {show_key(key)}, a tensor slice of no partitioned variable")
    name, extents = parsed
    box = bounds(extents, [d.size for d in full.shape.dim])
    if box is None:
        raise Damaged(f"has a slice {extents} of {show_key(name)} that does not fit its shape")
    shape = [d.size for d in proto.shape.dim]
    if proto.dtype != full.dtype or shape != [b - a for a, b in box]:
        raise Damaged(
            f"has a slice {extents} of {show_key(name)} stored with dtype enum {proto.dtype} and shape "
            f"{shape}, not the dtype enum {full.dtype} and shape {[b - a for a, b in box]} its key says"
        )


def slice_extents(value: bytes) -> list[tuple]:
    """The slices a partitioned variable's entry lists: per slice a ``(start, length)`` pair per
    dimension, length None for a full extent (what :func:`ckptwidgets.sources.bundle._slices.slice_key` takes)."""
    proto = BundleEntryProto.FromString(value)
    return [
        tuple((e.start, e.length if e.HasField("length") else None) for e in piece.extent) for piece in proto.slices
    ]


def data_ref(value: bytes) -> DataRef | None:
    """Where the bytes of a serialized entry (one of :attr:`Index.values`) are.

    None for a partitioned variable's own entry: its value is assembled from its slices.
    """
    proto = BundleEntryProto.FromString(value)
    if proto.slices:
        return None
    return DataRef(proto.shard_id, proto.offset, proto.size, proto.crc32c)
