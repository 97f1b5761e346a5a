"""safetensors files (``.safetensors``, and sharded ``model.safetensors.index.json``): read and written.

Parsed here, without the ``safetensors`` package, torch or TensorFlow: an 8-byte header
length, a JSON header (:mod:`ckptwidgets.sources.safetensors._header`, checked against the
file before anything is allocated), then each tensor's little-endian bytes. Keys are the
file's (PyTorch's dotted names: ``encoder.layer.0.attention.self.query.weight``), and a
record's name is its key; dtypes are TensorFlow's names (``BF16`` is ``bfloat16``, ``F8_E4M3``
``float8_e4m3fn``). safetensors keeps no checksums: a flipped bit in the data is not
detected, a damaged header is (:class:`~ckptwidgets.errors.CorruptCheckpointError` naming
the file and the key). Tensors of at least 1 MiB are read-only memory-mapped views
unless ``copy=True``; restoring reads every value through :meth:`SafetensorsSource.read_many`.

A sharded checkpoint is a folder of ``*.safetensors`` shards and the index JSON whose
``weight_map`` says which shard holds each key; the index is the checkpoint's location.
A folder holding ``model.safetensors.index.json`` or ``model.safetensors`` (a Hugging
Face model's folder) opens as that file.

Writing (:func:`write`, chosen by :func:`ckptwidgets.sources.writer_for` for an output
ending in ``.safetensors``): :mod:`ckptwidgets.sources.safetensors._write`.

Example
-------
>>> import os, tempfile, numpy as np
>>> import ckptwidgets
>>> from ckptwidgets.sources.arrays import ArraySource
>>> out = os.path.join(tempfile.mkdtemp(), "net.safetensors")
>>> plan = ckptwidgets.plan_write(ArraySource({"fc.weight": np.ones((2, 3), np.float32)}))
>>> plan.write(out, progress=False).keys
['fc.weight']
>>> ckpt = ckptwidgets.open_checkpoint(out)
>>> [(e.key, e.dtype, e.shape) for e in ckpt], ckpt.source.format
([('fc.weight', 'float32', (2, 3))], 'safetensors')
"""
from __future__ import annotations

import json
import mmap
import os
import stat

import numpy as np

from .. import Record
from .._dtypes import numpy_type
from .._validate import check_special, file_mode, first_line, suggest, suggest_in_folder
from ...errors import CheckpointNotFoundError, CorruptCheckpointError
from ._header import read_header

__all__ = ["SafetensorsSource", "detect", "writes", "write", "SUFFIX", "INDEX_SUFFIX", "MMAP_BYTES"]

#: A safetensors file's suffix (what :func:`writes` answers yes to).
SUFFIX = ".safetensors"
#: A sharded checkpoint's index: ``model.safetensors.index.json``.
INDEX_SUFFIX = ".safetensors.index.json"
#: Tensors of at least this many bytes are memory-mapped instead of read.
MMAP_BYTES = 1 << 20
_FOLDER_NAMES = ("model" + INDEX_SUFFIX, "model" + SUFFIX)  # what a Hugging Face model folder holds


def _is_ours(path: str) -> bool:
    return path.lower().endswith((SUFFIX, INDEX_SUFFIX))


def _looks_like_safetensors(path: str) -> bool:
    """A file of another name whose first bytes are a header length that fits and ``{"``."""
    try:
        with open(path, "rb") as f:
            head, size = f.read(10), os.fstat(f.fileno()).st_size
    except OSError:
        return False
    return len(head) == 10 and int.from_bytes(head[:8], "little") + 8 <= size and head[8:] == b'{"'


def detect(path: str) -> SafetensorsSource | None:
    """The safetensors checkpoint at ``path``, or None when it is none (left to the next format).

    A path ending in ``.safetensors`` or ``.safetensors.index.json`` is one: missing, it is
    a :class:`CheckpointNotFoundError`; damaged, a :class:`CorruptCheckpointError`. A
    folder is one when it holds ``model.safetensors.index.json`` or ``model.safetensors``
    and no TF ``checkpoint`` file; another file when its first bytes are a safetensors header.
    """
    ours = _is_ours(path)
    mode = file_mode(path, ours, "safetensors file", _is_ours)
    if mode is None:
        return None
    if stat.S_ISDIR(mode):
        try:
            names = set(os.listdir(path))
        except OSError:  # unreadable: the bundle's checks say why
            return None
        found = next((n for n in _FOLDER_NAMES if n in names), None)
        return SafetensorsSource(os.path.join(path, found)) if found and "checkpoint" not in names else None
    if not stat.S_ISREG(mode):
        if ours:
            check_special(path, "safetensors file")
        return None
    if ours or _looks_like_safetensors(path):
        return SafetensorsSource(path)
    return None



def writes(out, model=None) -> bool:
    """True for an output ending in ``.safetensors`` (or ``.safetensors.index.json``, which
    :func:`write` refuses: it writes one file)."""
    return _is_ours(os.fsdecode(os.fspath(out)))


def write(plan, out, **options):
    """Write ``plan`` as one safetensors file ``out`` (``overwrite=``, ``progress=``):
    :mod:`ckptwidgets.sources.safetensors._write`."""
    from ._write import write as write_file

    return write_file(plan, out, **options)


def _shards(index: str) -> dict:
    """``{key: shard path}`` of a sharded checkpoint's index JSON, checked."""
    try:
        with open(index, "rb") as f:
            body = json.loads(f.read(1 << 26).decode("utf-8"))
    except OSError as error:
        raise CorruptCheckpointError(f"Cannot read the safetensors index {index!r}: {first_line(error)}") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise CorruptCheckpointError(f"The safetensors index {index!r} is not JSON: {str(error)[:120]}.") from None
    weight_map = body.get("weight_map") if isinstance(body, dict) else None
    if not isinstance(weight_map, dict):
        raise CorruptCheckpointError(f"The safetensors index {index!r} has no weight_map object {{key: shard file}}.")
    folder = os.path.dirname(index)
    out = {}
    for key, shard in weight_map.items():
        if not isinstance(shard, str) or os.path.basename(shard) != shard or shard in ("", ".", ".."):
            raise CorruptCheckpointError(
                f"The safetensors index {index!r} maps key {key!r} to {shard!r}, not a file name beside the index."
            )
        out[key] = os.path.join(folder, shard)
    return out


class SafetensorsSource:
    """A safetensors file, or a sharded checkpoint's index, as a checkpoint source.

    The headers are read and checked when the source is made.

    Parameters
    ----------
    path : str
        A ``.safetensors`` file, or a ``*.safetensors.index.json`` naming the shards.

    Attributes
    ----------
    metadata : dict
        The ``__metadata__`` of the file (of the first shard, for a sharded checkpoint).
    """

    format = "safetensors"
    object_based = False
    restore_prefix = None

    def __init__(self, path: str):
        self.location = path
        self._tensors = {}  # key -> (file, data start, Tensor)
        self._opened = {}  # file -> (size, mtime_ns, inode): a file changed since must be opened again
        self.metadata = None
        if path.lower().endswith(".json"):
            by_shard = {}
            for key, shard in _shards(path).items():
                by_shard.setdefault(shard, set()).add(key)
            self._files = [path]
            for shard in sorted(by_shard):  # every one is there before any is read
                if not os.path.lexists(shard):
                    raise CheckpointNotFoundError(
                        f"The safetensors shard {shard!r} holding key {min(by_shard[shard])!r} is missing (the index "
                        f"{path!r} names it).{suggest_in_folder(shard, _is_ours)}"
                    )
            for shard in sorted(by_shard):
                self._add_file(shard, by_shard[shard], path)
        else:
            self._files = []
            self._add_file(path, None, None)
        if self.metadata is None:  # an index that maps no key
            self.metadata = {}

    def _add_file(self, path: str, keys, index) -> None:
        check_special(path, "safetensors file")
        try:
            with open(path, "rb") as f:
                header = read_header(f, path)
                info = os.fstat(f.fileno())
        except OSError as error:
            raise CorruptCheckpointError(f"Cannot read safetensors file {path!r}: {first_line(error)}") from None
        if keys is not None and set(header.tensors) != keys:
            extra, missing = sorted(set(header.tensors) - keys), sorted(keys - set(header.tensors))
            raise CorruptCheckpointError(
                f"The safetensors index {index!r} and its shard {path!r} disagree: "
                + (f"the shard lacks key {missing[0]!r}, which the index puts there" if missing else
                   f"the shard holds key {extra[0]!r}, which the index does not put there")
                + f" ({len(missing)} missing, {len(extra)} not in the index)."
            )
        if self.metadata is None:
            self.metadata = dict(header.metadata)
        self._files.append(path)
        self._opened[path] = (info.st_size, info.st_mtime_ns, info.st_ino)
        for key, tensor in header.tensors.items():
            self._tensors[key] = (path, header.data_start, tensor)

    def records(self) -> list[Record]:
        out = []
        for key in sorted(self._tensors):
            tensor = self._tensors[key][2]
            out.append(Record(key, key, tensor.dtype, tensor.shape, tensor.end - tensor.begin))
        return out

    def files(self) -> list[str]:
        return list(self._files)

    def describe(self, shown: str) -> str:
        """The ``ls`` header: ``"safetensors, 3 entries"``, with the shards of a sharded one."""
        shards = len(self._files) - 1 if self.location.lower().endswith(".json") else 0
        return f"safetensors, {shown}" + (f", {shards} shard{'s' * (shards != 1)}" if shards else "")

    def restore_code(self, plan, style: str) -> list[str]:
        """Code restoring ``plan`` with ``safetensors.numpy``, which TensorFlow cannot read
        (:func:`ckptwidgets.codegen.to_code` asks; :mod:`ckptwidgets.sources.safetensors._code`)."""
        from ._code import restore_code

        return restore_code(plan, style, {key: self._tensors[key][0] for key in plan.mapping.values()})

    def read(self, key: str, copy: bool = False):
        try:
            path, data_start, tensor = self._tensors[key]
        except KeyError:
            raise KeyError(f"Key {key!r} not found in {self.location!r}.{suggest(key, self._tensors)}") from None
        dtype = np.dtype(numpy_type(tensor.dtype)).newbyteorder("<") if tensor.dtype != "bool" else np.dtype(bool)
        try:
            with open(path, "rb", buffering=0) as f:
                info = os.fstat(f.fileno())
                if (info.st_size, info.st_mtime_ns, info.st_ino) != self._opened[path]:
                    raise CorruptCheckpointError(
                        f"The safetensors file {path!r} changed since it was opened (key {key!r}): open it again."
                    )
                raw = _bytes(f, data_start + tensor.begin, tensor.end - tensor.begin, copy)
        except OSError as error:
            raise CorruptCheckpointError(f"Cannot read key {key!r} from {path!r}: {first_line(error)}") from None
        return raw.view(dtype).reshape(tensor.shape)

    def read_many(self, keys, copy: bool = False):
        order = sorted(keys, key=lambda k: (self._tensors[k][0], self._tensors[k][2].begin) if k in self._tensors else ("", 0))
        for key in order:
            yield key, self.read(key, copy)


def _bytes(file, offset: int, size: int, copy: bool) -> np.ndarray:
    """``size`` bytes at ``offset`` as uint8: a read-only view of the mapped file when large
    (``copy``: a copy of that view, which measured faster than ``readinto`` a new buffer)."""
    if size >= MMAP_BYTES:
        start = offset - offset % mmap.ALLOCATIONGRANULARITY
        mapping = mmap.mmap(file.fileno(), offset + size - start, access=mmap.ACCESS_READ, offset=start)
        view = np.frombuffer(mapping, np.uint8, size, offset - start)
        return view.copy() if copy else view
    buffer = np.empty(size, np.uint8)
    file.seek(offset)
    got = file.readinto(memoryview(buffer)) if size else 0
    while got < size:  # a short read (network file systems)
        more = file.readinto(memoryview(buffer)[got:])
        if not more:
            raise CorruptCheckpointError(f"The safetensors file {file.name!r} ends inside a tensor (at byte {offset + got}).")
        got += more
    return buffer
