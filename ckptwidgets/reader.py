"""A checkpoint opened for reading: its entries and lazy tensor reads, whatever the format.

:func:`open_checkpoint` finds the format (:mod:`ckptwidgets.sources`), reads the index
only, and classifies every entry (:mod:`ckptwidgets._planning.kinds`). Tensors are read on demand
through the source, with its checksums; TensorFlow is not imported to look inside a TF
checkpoint.

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

import gc
import math
import os
from contextlib import contextmanager
from functools import cached_property
from types import MappingProxyType
from typing import NamedTuple

from ._planning.kinds import EMA_SEGMENT, KINDS, classify_records
from .errors import CheckpointNotFoundError
from .sources import is_source, open_source
from .sources._validate import suggest
from .sources._tfkeys import record

__all__ = ["Entry", "Checkpoint", "open_checkpoint", "classify", "KINDS"]

_EMA_SUFFIX = "/" + EMA_SEGMENT

class Entry(NamedTuple):
    """One tensor stored in a checkpoint (an immutable named tuple).

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


def classify(key: str, keys) -> tuple[str, str | None]:
    """Return ``(kind, base)`` for a TF checkpoint ``key``, given all keys of its checkpoint.

    The decision :func:`open_checkpoint` makes for each entry (one classifier,
    :mod:`ckptwidgets._planning.kinds`): the result depends on neighbours, e.g. ``w/Adam`` is a slot
    only if ``w`` is there, with its shape. ``keys``: every key of the checkpoint, as a
    mapping ``{key: shape}`` (or a collection of keys, when shapes are unknown). From the
    keys alone: whose a Keras 3 optimizer's ``_variables/N`` is, which the checkpoint's
    object graph says, is not seen here (base None).

    Examples
    --------
    >>> classify("w/Adam_1", {"w", "w/Adam_1"})
    ('slot', 'w')
    >>> classify("w/ExponentialMovingAverage", {"w"})
    ('ema', 'w')
    >>> classify("net/l1/kernel/.ATTRIBUTES/VARIABLE_VALUE", set())
    ('variable', None)
    """
    shapes = keys if hasattr(keys, "get") and not isinstance(keys, (set, frozenset)) else dict.fromkeys(keys)
    records = [record(k, "float32", shapes.get(k), 0) for k in sorted(set(shapes) | {key})]
    return dict(zip((r.key for r in records), classify_records(records)))[key]


def _entries(records, kinds) -> list[Entry]:
    """An :class:`Entry` per record; 10,000 of them open with a checkpoint (``tuple.__new__``)."""
    new = tuple.__new__
    return [
        new(Entry, (key, name, shape, dtype, nbytes, kind, base))
        for (key, name, dtype, shape, nbytes, _kind, _base), (kind, base) in zip(records, kinds)
    ]


@contextmanager
def _no_gc():
    """The cyclic garbage collector paused: opening allocates a few tuples per entry and frees
    none, and in a process holding TensorFlow each collection would walk millions of objects."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


class Checkpoint:
    """A checkpoint opened for reading: its entries (from the index) and lazy tensor reads.

    Build one with :func:`open_checkpoint`, or from any :class:`~ckptwidgets.sources.Source`:
    ``Checkpoint(ArraySource({...}))``.

    Attributes
    ----------
    source : Source
        The format behind it; everything this class reads comes through it.
    prefix : str
        The source's location (a TF checkpoint's prefix), as messages name it.
    entries : tuple of Entry
        Sorted by key.
    """

    def __init__(self, source):
        if not is_source(source):
            raise TypeError(f"Checkpoint(source) takes a ckptwidgets Source; got {type(source).__name__}: {source!r}")
        self.source = source
        self.prefix: str = source.location
        with _no_gc():
            records = source.records()
            entries = _entries(records, classify_records(records))
        self.entries: tuple[Entry, ...] = tuple(entries)
        self._by_key = dict(zip([r.key for r in records], entries))
        # Object-based entries are also found by their name without the suffix.
        self._by_name = {e[1]: e for e in entries if e[1] is not e[0] and e[1] != e[0]}  # (name, key)
        # The format's own serialized structure (TF2's object graph and its other attributes:
        # strings the source marks meta): no variable ever takes one, no write drops one.
        self.bookkeeping = frozenset([r[0] for r in records if r[5] == "meta" and r[2] == "string"])  # (key, name, dtype, ..., kind)

    # --- mapping-like access -------------------------------------------------
    def __getitem__(self, key: str) -> Entry:
        try:
            return self._by_key[key]
        except (KeyError, TypeError):
            pass
        found = self._by_name.get(key) if isinstance(key, str) else None
        if found is not None:
            return found
        raise KeyError(f"Key {key!r} not found in checkpoint {self.prefix!r}.{suggest(str(key), self._by_key)}")

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

    @cached_property
    def by_key(self) -> MappingProxyType:
        """``{key: Entry}``, read-only."""
        return MappingProxyType(self._by_key)

    @cached_property
    def by_name(self) -> MappingProxyType:
        """``{name: Entry}`` for entries whose name differs from their key (object-based), read-only."""
        return MappingProxyType(self._by_name)

    @cached_property
    def ema_shadows(self) -> MappingProxyType:
        """``{key or name of a variable: its EMA shadow Entry}``, built once.

        Both the variable's key and its name (without an object-based suffix) lead to the
        ``ema`` entry ``<name>/ExponentialMovingAverage``, also when the variable itself is
        not in the checkpoint. ``prefer_ema`` plans and the browser look up here.
        """
        shadows, cut = {}, len(_EMA_SUFFIX)
        for entry in self.entries:
            if entry.kind != "ema" or entry.base is None:
                continue
            shadows.setdefault(entry.base, entry)
            owner = self._by_key.get(entry.base)
            name = owner.name if owner is not None else entry.name[:-cut] if entry.name.endswith(_EMA_SUFFIX) else None
            if name is not None:
                shadows.setdefault(name, entry)
        return MappingProxyType(shadows)

    @cached_property
    def candidate_index(self):
        """The :class:`~ckptwidgets._planning.candidates.CandidateIndex` of this checkpoint (built on
        first use, shared by every plan over it): which entries a variable could take."""
        from ._planning.candidates import CandidateIndex

        return CandidateIndex(self)

    @cached_property
    def object_graph(self):
        """The saved objects of a TF2 checkpoint and how they reach each other
        (:class:`~ckptwidgets.sources.bundle.ObjectGraph`), read on first use; None for
        name-based checkpoints and formats without one."""
        graph = getattr(self.source, "object_graph", None)
        return graph() if graph is not None else None

    @property
    def steps(self) -> tuple[tuple[int, str], ...]:
        """``(step, prefix)`` of every checkpoint of this training run in its folder, by step.

        ``model.ckpt-0``, ``model.ckpt-999``, ``model.ckpt-1000`` beside each other: open
        another with ``open_checkpoint(prefix)``. Empty when the prefix has no step number
        (or the format has no steps).
        """
        steps = getattr(self.source, "steps", None)
        return tuple(steps()) if steps is not None else ()

    @property
    def step(self) -> int | None:
        """This checkpoint's step, from its prefix (``model.ckpt-1000`` -> 1000), or None."""
        for step, prefix in self.steps:
            if prefix == self.prefix:
                return step
        return None

    @property
    def object_based(self) -> bool:
        """True for TF2 ``tf.train.Checkpoint`` files, False for name-based (``Saver``) ones."""
        return self.source.object_based

    @property
    def files(self) -> list[str]:
        """The files this checkpoint consists of (a TF bundle: the index, then the data files)."""
        return self.source.files()

    def totals(self) -> dict[str, tuple[int, int]]:
        """``{kind: (count, nbytes)}`` for every kind present."""
        out: dict[str, list[int]] = {}
        for e in self.entries:
            slot = out.setdefault(e.kind, [0, 0])
            slot[0] += 1
            slot[1] += e.nbytes
        return {k: (c, b) for k, (c, b) in out.items()}

    # --- tensors -----------------------------------------------------------------
    def read(self, key: str, copy: bool = False):
        """Read one tensor as a numpy array, checked against the format's checksums.

        Parameters
        ----------
        key : str
            A key, or an object-based entry's name.
        copy : bool
            Large tensors of a TF checkpoint come back as read-only views of the
            memory-mapped data file (nothing is copied); ``copy=True`` gives a writable
            array of one's own.

        Raises
        ------
        KeyError
            ``key`` is not in the checkpoint (the message suggests close keys).
        CorruptCheckpointError
            The data cannot be read or fails its checksum.
        """
        return self.source.read(self[key].key, copy)

    def read_many(self, keys, copy: bool = False):
        """``(key, array)`` for each key, one at a time, in the order that reads fastest.

        Memory stays bounded: a tensor is read when the loop asks for it.
        """
        return self.source.read_many([self[k].key for k in keys], copy)

    def __repr__(self) -> str:
        kinds = ", ".join(f"{c} {k}" for k, (c, _) in sorted(self.totals().items()))
        return f"<Checkpoint {self.prefix!r}: {len(self.entries)} entries ({kinds})>"


def open_checkpoint(path) -> Checkpoint:
    """Open a checkpoint for reading; only its index is read.

    Parameters
    ----------
    path : str or os.PathLike or Checkpoint or Source
        A checkpoint prefix (``"model.ckpt"``), its ``.index`` file, or a folder (its
        latest checkpoint, as ``tf.train.latest_checkpoint`` finds it). Name-based
        (``Saver``) and object-based (``tf.train.Checkpoint``) checkpoints, sharded ones
        included. Or a :class:`~ckptwidgets.sources.Source` of any format.

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
    if is_source(path):
        return Checkpoint(path)
    try:
        path = os.fspath(path)
    except TypeError:
        raise CheckpointNotFoundError(
            f"A checkpoint path must be a str or os.PathLike, not {type(path).__name__}: {path!r}"
        ) from None
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    return Checkpoint(open_source(path))
