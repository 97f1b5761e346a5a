"""A safetensors file's header: parsed and checked against the file before anything is read.

Private helper of :mod:`ckptwidgets.sources.safetensors`. The layout
(https://github.com/huggingface/safetensors, "Format"): an unsigned 64-bit little-endian
header length ``N``, ``N`` bytes of UTF-8 JSON ``{key: {"dtype", "shape", "data_offsets":
[begin, end]}, "__metadata__": {str: str}}`` (padded with spaces), then the data: each
tensor's little-endian, C-order bytes at ``[begin, end)`` counted from the end of the
header. The checks are the reference reader's (``safetensors/src/tensor.rs``): the header
at most :data:`MAX_HEADER_BYTES`, a JSON object (a key named twice refused), known dtypes, whole non-negative dims,
``end - begin`` the shape's bytes, and the tensors back to back from 0 to the end of the
file (no gap, no overlap, nothing after). Every size is compared with the file's before a
byte is allocated, so a crafted header costs no memory.

Example
-------
>>> import json
>>> body = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
>>> header = parse_header(len(body).to_bytes(8, "little") + body, 8 + len(body) + 8, "w.safetensors")
>>> header.tensors["w"], header.data_start == 8 + len(body)
(Tensor(dtype='float32', shape=(2,), begin=0, end=8), True)
"""
from __future__ import annotations

import json
import math
from typing import NamedTuple

from ...errors import CorruptCheckpointError

__all__ = ["TF_DTYPES", "SAFETENSORS_DTYPES", "ITEMSIZE", "MAX_HEADER_BYTES", "Tensor", "Header", "parse_header",
           "read_header"]

#: safetensors dtype -> TensorFlow's dtype name (what :class:`~ckptwidgets.sources.Record` holds).
#: The safetensors dtypes TensorFlow has no dtype for (``F8_E8M0``, packed ``F4``/``F6``) are
#: refused by name when a file holds them.
TF_DTYPES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
    "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8",
    "U64": "uint64", "U32": "uint32", "U16": "uint16", "U8": "uint8", "BOOL": "bool",
    "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2",
    "F8_E4M3FNUZ": "float8_e4m3fnuz", "F8_E5M2FNUZ": "float8_e5m2fnuz", "C64": "complex64",
}
#: TensorFlow's dtype name -> the safetensors dtype a writer stores it as.
SAFETENSORS_DTYPES = {tf: st for st, tf in TF_DTYPES.items()}
#: Bytes per element of each safetensors dtype.
ITEMSIZE = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
    "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1,
    "F8_E4M3FNUZ": 1, "F8_E5M2FNUZ": 1, "C64": 8,
}
#: The reference reader refuses longer headers (``MAX_HEADER_SIZE``); so do we.
MAX_HEADER_BYTES = 100_000_000
_LENGTH_BYTES = 8
_METADATA = "__metadata__"
_WITHOUT_TF = ("F8_E8M0", "F4", "F6_E2M3", "F6_E3M2")  # safetensors dtypes TensorFlow lacks
_FIELDS = {"dtype", "shape", "data_offsets"}


class Tensor(NamedTuple):
    """One header entry: TensorFlow's dtype name, the shape, and its bytes ``[begin, end)`` of the data."""

    dtype: str
    shape: tuple
    begin: int
    end: int


class Header(NamedTuple):
    """A checked header: ``tensors`` by key, ``metadata`` (str -> str), where the data starts."""

    tensors: dict
    metadata: dict
    data_start: int


class _Duplicate(Exception):
    pass


def _no_duplicates(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise _Duplicate(key)
        out[key] = value
    return out


def _damaged(path: str, why: str) -> CorruptCheckpointError:
    return CorruptCheckpointError(f"The safetensors file {path!r} is damaged or not a safetensors file: {why}.")


def header_length(head: bytes, size: int, path: str) -> int:
    """The header's length from the file's first 8 bytes, checked against the file's ``size``."""
    if size < _LENGTH_BYTES or len(head) < _LENGTH_BYTES:
        raise _damaged(path, f"it is {size} bytes long, shorter than the 8-byte header length")
    length = int.from_bytes(head[:_LENGTH_BYTES], "little")
    if length > MAX_HEADER_BYTES:
        raise _damaged(path, f"its header length says {length} bytes, over the {MAX_HEADER_BYTES} safetensors allows")
    if _LENGTH_BYTES + length > size:
        raise _damaged(path, f"its header length says {length} bytes, but the file ends {size - _LENGTH_BYTES} bytes "
                             "after it (truncated?)")
    return length


def _json(text: bytes, path: str) -> dict:
    try:
        body = json.loads(text.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError as error:
        raise _damaged(path, f"its header is not UTF-8 (byte {error.start})") from None
    except _Duplicate as error:
        raise _damaged(path, f"its header names key {error.args[0]!r} twice") from None
    except (ValueError, RecursionError) as error:
        raise _damaged(path, f"its header is not JSON ({str(error)[:120]})") from None
    if not isinstance(body, dict):
        raise _damaged(path, f"its header is JSON {type(body).__name__}, not an object")
    return body


def _whole(value) -> bool:
    """A JSON number the reference reads as a ``usize``: whole, 0 to 2**64 - 1."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 64


def _tensor(key: str, info, path: str) -> Tensor:
    where = f"key {key!r}"
    if not isinstance(info, dict) or not _FIELDS <= set(info):  # other fields are ignored, as the reference does
        raise _damaged(path, f"{where} is not {{'dtype', 'shape', 'data_offsets'}}: {str(info)[:120]}")
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if dtype not in ITEMSIZE:
        why = "which has no TensorFlow dtype" if dtype in _WITHOUT_TF else "which safetensors does not define"
        raise _damaged(path, f"{where} has dtype {str(dtype)[:40]!r}, {why} (ckptwidgets reads {', '.join(ITEMSIZE)})")
    if not isinstance(shape, list) or not all(_whole(d) for d in shape) or math.prod(shape) >= 1 << 64:
        raise _damaged(path, f"{where} has shape {str(shape)[:80]}, not a list of whole numbers >= 0 (of 64 bits)")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_whole(o) for o in offsets)):
        raise _damaged(path, f"{where} has data_offsets {str(offsets)[:80]}, not [begin, end] of whole numbers")
    begin, end = offsets
    need = math.prod(shape) * ITEMSIZE[dtype]
    if end < begin or end - begin != need:
        raise _damaged(path, f"{where} is {dtype} {shape} ({need} bytes), but its data_offsets [{begin}, {end}] span "
                             f"{end - begin} bytes")
    return Tensor(TF_DTYPES[dtype], tuple(shape), begin, end)


def parse_header(head: bytes, size: int, path: str) -> Header:
    """The checked header of a file of ``size`` bytes that starts with ``head`` (at least
    the length and the header); :class:`CorruptCheckpointError` naming ``path`` (and the key)."""
    length = header_length(head, size, path)
    body = _json(head[_LENGTH_BYTES:_LENGTH_BYTES + length], path)
    metadata = body.pop(_METADATA, None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _damaged(path, "its __metadata__ is not an object of strings")
    for key in body:
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:  # JSON's "\ud800": no text (the reference refuses it too)
            raise _damaged(path, f"its key {key!r} holds a lone surrogate, no Unicode text") from None
    tensors = {key: _tensor(key, info, path) for key, info in body.items()}
    data_start = _LENGTH_BYTES + length
    _check_layout(tensors, size - data_start, path)
    return Header(tensors, metadata, data_start)


def _check_layout(tensors: dict, data_bytes: int, path: str) -> None:
    """The tensors lie back to back from 0 to the end of the data, as the reference requires."""
    done, previous = 0, None
    for key, tensor in sorted(tensors.items(), key=lambda item: (item[1].begin, item[1].end)):
        if tensor.end > data_bytes:
            raise _damaged(path, f"key {key!r} at data_offsets [{tensor.begin}, {tensor.end}] ends past the file's "
                                 f"{data_bytes} bytes of data (truncated?)")
        if tensor.begin != done:
            what = "overlaps" if tensor.begin < done else "leaves a gap after"
            after = f"key {previous!r}" if previous is not None else "the start of the data"
            raise _damaged(path, f"key {key!r} at data_offsets [{tensor.begin}, {tensor.end}] {what} {after} "
                                 f"(ends at {done})")
        done, previous = tensor.end, key
    if done < data_bytes:
        raise _damaged(path, f"its tensors need {done} bytes of data, but the file holds {data_bytes} (appended to?)")


def read_header(file, path: str) -> Header:
    """The header of an open binary ``file`` (see :func:`parse_header`)."""
    size = file.seek(0, 2)
    file.seek(0)
    head = file.read(_LENGTH_BYTES)
    length = header_length(head, size, path)
    return parse_header(head + file.read(length), size, path)
