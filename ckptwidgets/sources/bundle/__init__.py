"""TensorFlow's tensor bundle (``prefix.index`` + ``prefix.data-NNNNN-of-NNNNN``), read without TensorFlow.

What ``tf.train.Checkpoint`` and ``tf.compat.v1.train.Saver`` write. The ``.index`` is a
LevelDB-style table (:mod:`ckptwidgets.sources.bundle._sstable`, crc32c of every block checked) of
``BundleEntryProto`` values (:mod:`ckptwidgets.sources.bundle._index`, validated: TensorFlow's C++ reader
aborts the process on some damaged entries); tensor bytes come from the data shards with
their crc32c checked (:mod:`ckptwidgets.sources.bundle._tensordata`), memory-mapped when large.

A TF2 checkpoint holding a Keras 3 optimizer (``<opt>/_iterations`` beside
``<opt>/_variables/N``) has its object graph read when the records are listed: it says
which ``_variables/N`` are ``use_ema`` averages and slots, and of which variable
(:func:`ckptwidgets.sources.keras.from_object_graph`); the records carry that as ``kind`` and
``base``.

A partitioned variable's tensor (saved as slices of one full key) is assembled from its
slices (:mod:`ckptwidgets.sources.bundle._slices`), each read and checked as any tensor. TensorFlow is
imported only for what it alone can do: ``variant`` tensors are read with its reader, and
remote paths (``gs://``, ``s3://``, ``ram://``...) go through its file systems.

Writing (:func:`write`, through :func:`ckptwidgets.sources.writer_for`): the default output,
a name-based bundle written without TensorFlow (:mod:`ckptwidgets.sources.bundle._write`).

Example
-------
>>> source = detect("my_test_model.ckpt")                      # doctest: +SKIP
>>> [r.key for r in source.records()], source.read("v1")        # doctest: +SKIP
(['v1', 'v2'], array([1.], dtype=float32))
"""
from __future__ import annotations

import bisect
import gc
import os
import struct

from . import _index as _bundle, _slices, _sstable, _tensordata
from ..keras import from_object_graph, suggests_optimizer
from ._object_graph import VALUE_ATTRIBUTE, ObjectGraph, checkpoint_keys
from ._slices import format_box
from ._write import check_output, move_into_place, write
from ..._tf.quiet import import_tensorflow
from ..._text.format import count_of
from ...errors import CorruptCheckpointError
from ._paths import resolve_prefix, steps_beside
from .._tfkeys import OBJECT_GRAPH_KEY, records
from .._validate import first_line, is_remote

__all__ = ["BundleSource", "detect", "writes", "write", "check_output", "move_into_place", "ObjectGraph",
           "VALUE_ATTRIBUTE", "checkpoint_keys", "format_box"]


def detect(path: str) -> BundleSource:
    """The bundle at ``path`` (a prefix, its ``.index`` file, or a folder).

    Never None: this is the last format tried, so it raises the error that says what is
    at ``path`` (:class:`CheckpointNotFoundError`, :class:`CorruptCheckpointError`).
    """
    return BundleSource(resolve_prefix(path))


def writes(out, model=None) -> bool:
    """True: the bundle is the default output, the last of :data:`ckptwidgets.sources.FORMATS`."""
    return True


class BundleSource:
    """A tensor bundle; the index is parsed and validated when the source is made.

    Parameters
    ----------
    prefix : str
        The checkpoint prefix (``"model.ckpt"``; the files are ``model.ckpt.index`` ...).
    """

    format = "tf-bundle"

    def __init__(self, prefix: str):
        self.location = prefix
        self._remote = is_remote(prefix)
        self._index = _read_index(prefix, self._remote)
        self._by_key = None  # key -> (serialized entry, (dtype, shape, nbytes)), on the first read
        self._tf_reader = None
        # RestoreV2 looks files up as a glob pattern: a prefix with '\' or '[...]' does not
        # match itself, so such a checkpoint is restored through read_many instead.
        self.restore_prefix = None if ("\\" in prefix or "[" in prefix) else prefix

    @property
    def object_based(self) -> bool:
        keys = self._index.keys  # sorted: a binary search, not a scan
        at = bisect.bisect_left(keys, OBJECT_GRAPH_KEY)
        return at < len(keys) and keys[at] == OBJECT_GRAPH_KEY

    def records(self):
        found = records(self._index.keys, self._index.infos)
        # A Keras 3 optimizer's averages and slots are `_variables/N` by position: whose they
        # are is in the object graph, read only when the keys show such an optimizer.
        if self.object_based and suggests_optimizer(self._index.keys):
            graph = self.object_graph()
            known = from_object_graph(graph) if graph is not None else {}
            if known:
                found = [r._replace(kind=known[r.key][0], base=known[r.key][1]) if r.key in known else r for r in found]
        return found

    def files(self) -> list[str]:
        shards = self._index.num_shards
        return [self.location + ".index"] + [self._shard(i) for i in range(shards) if self._exists(self._shard(i))]

    def describe(self, shown: str) -> str:
        """What ``ls`` says of the bundle: ``"name-based, 2 entries, 1 data file"``."""
        shards = len(self.files()) - 1
        style = "object-based" if self.object_based else "name-based"
        return f"{style}, {shown}, {count_of(shards, 'data file')}"

    def steps(self) -> list[tuple[int, str]]:
        """``(step, prefix)`` of the checkpoints of the same run beside this one (``model.ckpt-N``)."""
        return steps_beside(self.location)

    def object_graph(self):
        """The parsed ``_CHECKPOINTABLE_OBJECT_GRAPH`` of a TF2 checkpoint, else None.

        Raises CorruptCheckpointError when the entry is there but is no object graph.
        """
        if not self.object_based:
            return None
        value = self.read(OBJECT_GRAPH_KEY)
        try:
            return ObjectGraph.parse(value.item() if hasattr(value, "item") else value)
        except ValueError as error:
            raise CorruptCheckpointError(
                f"Checkpoint {self.location!r}: its {OBJECT_GRAPH_KEY} entry is damaged ({error})."
            ) from None

    # --- reading ------------------------------------------------------------------
    def _entries(self) -> dict:
        if self._by_key is None:
            index = self._index
            self._by_key = dict(zip(index.keys, zip(index.values, index.infos)))
        return self._by_key

    def _shard(self, shard_id: int) -> str:
        return "%s.data-%05d-of-%05d" % (self.location, shard_id, self._index.num_shards)

    def _exists(self, path: str) -> bool:
        if self._remote:
            return import_tensorflow().io.gfile.exists(path)
        return os.path.exists(path)

    def read(self, key: str, copy: bool = False):
        value, (dtype, shape, _nbytes) = self._entries()[key]  # Checkpoint checked the key
        if self._remote:
            return self._read_with_tensorflow(key)
        ref = _bundle.data_ref(value)
        if ref is None:  # a partitioned variable: its slices
            return self._read_sliced(key, value, dtype, shape)
        try:
            return self._read_ref(key, ref, dtype, shape, copy)
        except _tensordata.Undecodable:
            return self._read_with_tensorflow(key)

    def _read_ref(self, key: str, ref, dtype: str, shape, copy: bool, what: str = ""):
        """The tensor at ``ref``; damage is a CorruptCheckpointError naming ``key`` (and ``what`` part of it)."""
        path = self._shard(ref.shard_id)
        try:
            return _tensordata.read_tensor(
                path, ref.offset, ref.size, dtype, shape, ref.crc32c, big_endian=self._index.big_endian, copy=copy
            )
        except FileNotFoundError:
            raise CorruptCheckpointError(
                f"Cannot read key {key!r}{what} from checkpoint {self.location!r}: its data file {path!r} is missing."
            ) from None
        except (_tensordata.DataDamaged, OSError) as error:
            raise CorruptCheckpointError(
                f"Cannot read key {key!r}{what} from checkpoint {self.location!r} (data file {path!r}): "
                f"{first_line(error)}"
            ) from None

    def _read_sliced(self, key: str, value: bytes, dtype: str, shape):
        """A partitioned variable's tensor, assembled from its slices as TF's BundleReader does.

        The slices listed must tile the shape exactly (checked before any data is read) and
        each must have its entry; every slice is read with its own checks.
        """
        def damaged(why):
            return CorruptCheckpointError(
                f"Cannot read key {key!r} from checkpoint {self.location!r}: it is a partitioned "
                f"variable and {why}; the index is damaged."
            )

        listed = _bundle.slice_extents(value)
        boxes = [_slices.bounds(extents, shape) for extents in listed]
        for extents, box in zip(listed, boxes):
            if box is None:
                raise damaged(f"its slice {extents} does not fit its shape {list(shape)}")
        problem = _slices.check_cover(shape, boxes)
        if problem is not None:
            raise damaged(problem)
        name, stored = key.encode("utf-8"), self._index.slices
        pieces = []
        for extents, box in zip(listed, boxes):
            entry = stored.get(_slices.slice_key(name, extents))
            if entry is None:
                raise damaged(f"its slice {_slices.format_box(box)} has no entry")
            part_shape = tuple(b - a for a, b in box)
            what = f" (slice {_slices.format_box(box)})"
            try:
                piece = self._read_ref(key, _bundle.data_ref(entry), dtype, part_shape, False, what)
            except _tensordata.Undecodable as error:  # variant slices: TF never writes them
                raise CorruptCheckpointError(f"Cannot read key {key!r}{what}: {error}") from None
            pieces.append((box, piece))
        return _slices.assemble(shape, pieces)

    def read_many(self, keys, copy: bool = False):
        entries = self._entries()

        def where(key):
            ref = _bundle.data_ref(entries[key][0])
            return (0, 0) if ref is None else (ref.shard_id, ref.offset)

        # File order: sequential reads (a partitioned variable, read slice by slice, first).
        for key in sorted(keys, key=where):
            yield key, self.read(key, copy)

    def _read_with_tensorflow(self, key: str):
        tf = import_tensorflow()
        try:
            if self._tf_reader is None:
                self._tf_reader = tf.compat.v1.train.NewCheckpointReader(self.location)
            return self._tf_reader.get_tensor(key)
        except Exception as error:  # TF raises several types for damaged files
            raise CorruptCheckpointError(
                f"Cannot read key {key!r} from checkpoint {self.location!r}: {first_line(error)}"
            ) from None


def _read_index(prefix: str, remote: bool):
    index = prefix + ".index"
    try:
        if remote:
            with import_tensorflow().io.gfile.GFile(index, "rb") as f:
                buf = f.read()
        else:
            with open(index, "rb") as f:
                buf = f.read()
    except Exception as error:
        raise CorruptCheckpointError(f"Cannot read index file {index!r}: {first_line(error)}") from None
    # The scan allocates a few objects per entry and frees none: the cyclic garbage
    # collector would walk the growing lists dozens of times for nothing.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _bundle.scan(_sstable.data_blocks(buf))
    except _sstable.Damaged as damage:
        raise CorruptCheckpointError(f"Index file {index!r} {damage}") from None
    except (IndexError, struct.error):
        raise CorruptCheckpointError(
            f"Index file {index!r} is truncated or garbled (a block or entry runs past its end)"
        ) from None
    finally:
        if collecting:
            gc.enable()
