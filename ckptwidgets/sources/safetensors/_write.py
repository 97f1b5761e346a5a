"""Write a :class:`~ckptwidgets.write.WritePlan` as one safetensors file.

Private helper of :mod:`ckptwidgets.sources.safetensors` (its ``write``, behind
``plan.write("out.safetensors")``). The file follows the format's spec: an 8-byte
little-endian header length; the JSON header, padded with spaces to a multiple of 8, with
each tensor's ``data_offsets`` back to back from 0 in the order the data is written (by
item size, largest first, then key, as the reference writer orders them: every tensor
starts on a multiple of its item size); then each tensor's little-endian C-order bytes.
``__metadata__`` says where the tensors came from, in strings as the format requires:
``format`` (``"pt"``, which ``transformers`` asks of a file it loads), ``ckptwidgets.source``
(the checkpoint read; a JSON list when several were averaged) and, when some keys were
renamed, cast or averaged, ``ckptwidgets.from`` (JSON ``{key: "source key"}`` or
``"mean of N x key"`` / ``"cast from <dtype>"``).

Safety is every writer's (:mod:`ckptwidgets.sources._atomic`): everything is checked before
a byte is written (the plan's problems, its own source, dtypes safetensors cannot hold, an
existing output); the file is written to a hidden temporary name in the destination
folder one tensor at a time (a mean in float64 chunks), each tensor's crc32c taken of the
bytes written, a background thread syncing every 64 MB so that the disk writes while the
next tensors are read; it is ``fsync``-ed, read back with our reader (keys, dtypes, shapes,
and the crc32c of every tensor's bytes), and only then moved into place. Any failure removes
the temporary file and raises :class:`~ckptwidgets.errors.WriteError`. A TF2 object graph
(a string tensor of TensorFlow's bookkeeping, which safetensors cannot hold) is left out
and reported in ``dropped``.
"""
from __future__ import annotations

import json
import math
import os
import time

import crc32c as _crc32c
import numpy as np

from .. import _atomic
from .._background_sync import SYNC_EVERY_BYTES, SyncedWrites
from .._dtypes import numpy_type
from ...errors import WriteError
from . import INDEX_SUFFIX, SUFFIX
from ._header import ITEMSIZE, MAX_HEADER_BYTES, SAFETENSORS_DTYPES

__all__ = ["write", "header_bytes"]

#: What ``__metadata__["format"]`` says: ``transformers`` refuses a file without one of its
#: frameworks' names; the tensors are plain little-endian arrays any of them reads.
FORMAT_TAG = "pt"
_ALIGN = 8


def _output(out) -> str:
    path = _atomic.local_output(out)
    if path.lower().endswith(INDEX_SUFFIX):
        raise WriteError(f"Nothing was written to {path!r}: ckptwidgets writes one safetensors file, not shards; "
                         f"name the output '...{SUFFIX}'.")
    if not path.lower().endswith(SUFFIX):
        raise WriteError(f"A safetensors file's name ends with {SUFFIX!r}; got {path!r}.")
    return path


def _items(plan, path: str) -> tuple[list, list]:
    """``(items to write, [(key, why left out)])``, or a WriteError naming what safetensors cannot hold."""
    items, dropped = _atomic.tensor_items(plan, path, SAFETENSORS_DTYPES.__contains__, "safetensors")
    # As the reference writer: largest item size first, so every tensor is aligned to its own.
    items.sort(key=lambda item: (-ITEMSIZE[SAFETENSORS_DTYPES[item.dtype]], item.key))
    return items, dropped


def _provenance(items) -> dict:
    sources, origins = [], {}
    for item in items:
        for ckpt, _key in item.sources:
            if ckpt.prefix not in sources:
                sources.append(ckpt.prefix)
        first = item.sources[0][1]
        if item.op == "mean":
            origins[item.key] = f"mean of {len(item.sources)} x {first}"
        elif item.op == "transform":
            origins[item.key] = f"{item.transform.name} of " + ", ".join(key for _, key in item.sources)
        elif item.op == "cast":
            origins[item.key] = f"cast from {item.sources[0][0][first].dtype}" + (f" of {first}" if first != item.key else "")
        elif first != item.key:
            origins[item.key] = first
    metadata = {"format": FORMAT_TAG}
    if sources:
        metadata["ckptwidgets.source"] = sources[0] if len(sources) == 1 else json.dumps(sources, ensure_ascii=False)
    if origins:
        metadata["ckptwidgets.from"] = json.dumps(origins, ensure_ascii=False)
    return metadata


def header_bytes(items, metadata: dict) -> bytes:
    """The length and the header, padded with spaces to a multiple of 8, for ``items`` written in order."""
    header, offset = {"__metadata__": metadata}, 0
    for item in items:
        dtype = SAFETENSORS_DTYPES[item.dtype]
        end = offset + ITEMSIZE[dtype] * math.prod(item.shape)
        header[item.key] = {"dtype": dtype, "shape": list(item.shape), "data_offsets": [offset, end]}
        offset = end
    text = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % _ALIGN)
    if len(text) > MAX_HEADER_BYTES:
        raise WriteError(f"The safetensors header would be {len(text)} bytes, over the {MAX_HEADER_BYTES} readers accept.")
    return len(text).to_bytes(8, "little") + text


def _little_endian(item, chunk) -> np.ndarray:
    """``chunk`` of ``item`` as little-endian bytes (a view when it already is)."""
    little = np.dtype(numpy_type(item.dtype)).newbyteorder("<")
    value = np.asarray(chunk)
    if value.dtype.newbyteorder("<") != little:
        raise WriteError(f"Key {item.key!r} was read as {value.dtype}, planned {item.dtype}.")
    if value.dtype != little:  # big-endian values (never on the machines we know)
        value = value.astype(little)
    return np.ascontiguousarray(value).reshape(-1).view(np.uint8)


def _chunks(item):
    if item.op == "mean":
        yield from _atomic.mean_chunks(item)
        return
    value = _atomic.item_value(item)
    if tuple(np.shape(value)) != tuple(item.shape):
        raise WriteError(f"Key {item.key!r} was read with shape {list(np.shape(value))}, planned {list(item.shape)}.")
    yield value


def _write_file(temp: str, items, head: bytes, tick) -> dict:
    crcs, done = {}, 0
    with open(temp, "xb") as f:
        writes = SyncedWrites(f)  # the disk writes while the next tensors are read
        try:
            writes.write(head)
            for item in items:
                crc = 0
                for chunk in _chunks(item):
                    data, piece = _little_endian(item, chunk), None
                    for start in range(0, data.size, SYNC_EVERY_BYTES):  # a big tensor is synced as it goes
                        piece = data[start:start + SYNC_EVERY_BYTES]
                        writes.write(piece)
                        crc = _crc32c.crc32c(piece, crc)
                    done += data.nbytes
                    del data, chunk, piece  # one tensor at a time (a piece is a view of it)
                crcs[item.key] = crc
                tick(done)
            writes.finish()
        finally:
            writes.stop()
    return crcs


def _verify(path: str, temp: str, items, crcs: dict) -> None:
    written = _atomic.read_back(temp, {item.key: (item.dtype, tuple(item.shape)) for item in items})
    for key, value in written.read_many(written.keys()):
        if _crc32c.crc32c(np.ascontiguousarray(value).reshape(-1).view(np.uint8)) != crcs[key]:
            raise WriteError(f"Nothing was written to {path!r}: tensor {key!r} reads back other bytes than were "
                             f"written to the temporary file {temp!r} (now removed). The inputs are unchanged.")
        del value  # unmapped now: the next read must not map a second tensor beside this one


def write(plan, out, overwrite=False, state_file=False, progress=None, model=None, keep_unmapped=False, dry_run=False):
    """Write ``plan`` as the safetensors file ``out``: see the module docstring (``dry_run``: refuse,
    write nothing, report what would be written)."""
    start = time.perf_counter()
    path = _output(out)
    _atomic.refuse_for_one_file(plan, path, "a safetensors file",
                                "Name the model's variables with from_plan(plan_restore(ckpt, model)).",
                                overwrite=overwrite, state_file=state_file, model=model)
    items, dropped = _items(plan, path)
    if dry_run:
        return _atomic.would_write(path, items, list(plan.dropped) + dropped)
    head = header_bytes(items, _provenance(items))
    total = sum(item.nbytes for item in items)
    temp = _atomic.temporary_name(path)
    written = temp + SUFFIX  # ends like the output: our reader knows it by its name
    with _atomic.ticking(total, progress) as tick, _atomic.staged(path, temp):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        crcs = _write_file(written, items, head, tick)
        _verify(path, written, items, crcs)
        _atomic.move_into_place([(written, path)])
    return _atomic.WriteReport(path, [path], sorted(item.key for item in items), total, time.perf_counter() - start,
                               list(plan.dropped) + dropped)
