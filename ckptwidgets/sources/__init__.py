"""Checkpoint formats, each one module behind one small protocol: :class:`Source`.

:class:`~ckptwidgets.Checkpoint`, planning, restoring and the widgets see a format only
through this protocol; nothing else in the package knows how a format stores its tensors.

- :mod:`.bundle`: TensorFlow's tensor bundle (``.index`` + ``.data-*`` files), what
  ``tf.train.Checkpoint`` and ``tf.compat.v1.train.Saver`` write; read without TensorFlow.
- :mod:`.safetensors`: safetensors files and sharded indexes, read and written without
  torch, TensorFlow or the ``safetensors`` package.
- :mod:`.torch`: PyTorch state dicts (``.pt``, ``.pth``, a ``.bin`` ``torch.save`` wrote), read
  and written with torch when it is installed (``pip install 'ckptwidgets[torch]'``).
- :mod:`.keras`: Keras weight files (``.weights.h5``, ``.keras`` archives, legacy Keras 2
  ``.h5``), read with h5py, without TensorFlow or Keras.
- :mod:`.arrays`: tensors held in memory (a dict of numpy arrays), for tests, for
  checkpoints built in code, and as the smallest example of a source.

Adding a format is one new module (or package) here with a class implementing
:class:`Source`, a function ``detect(path) -> Source | None`` and, if it writes,
``writes(out, model=None) -> bool`` and ``write(plan, out, **options)``, and its name in
:data:`FORMATS` (``docs/design.md``, "Adding a format (read and write)"). What the rest of
the package needs to know of a format beyond the protocol it asks the source through
optional hooks (:data:`OPTIONAL`), never by its name.

Example
-------
>>> import numpy as np
>>> from ckptwidgets.sources.arrays import ArraySource
>>> source = ArraySource({"v1": np.array([1.0], np.float32)})
>>> [(r.key, r.dtype, r.shape, r.nbytes) for r in source.records()]
[('v1', 'float32', (1,), 4)]
>>> source.read("v1")
array([1.], dtype=float32)
"""
from __future__ import annotations

import os
from importlib import import_module
from typing import Iterable, Iterator, NamedTuple, Protocol, runtime_checkable

__all__ = ["Record", "Source", "OPTIONAL", "FORMATS", "open_source", "is_source", "writer_for"]

#: The formats: modules of this package, tried in order by :func:`open_source` and
#: :func:`writer_for`. Each has ``detect(path) -> Source | None``; the last one (the TF
#: bundle) never returns None: it raises the error that explains what is at the path
#: instead. A format that writes also has ``writes(out, model=None) -> bool`` and
#: ``write(plan, out, **options) -> WriteReport``; the bundle's ``writes`` says yes to
#: every output: it is the default.
FORMATS = ("safetensors", "torch", "keras", "bundle")


class Record(NamedTuple):
    """What a source says about one entry (the index; no tensor data).

    Attributes
    ----------
    key : str
        The key as stored.
    name : str
        The name a variable must carry to match it: the key without what the format
        appends (TF2: ``/.ATTRIBUTES/VARIABLE_VALUE``); equal to ``key`` when nothing is.
    dtype : str
        TensorFlow's dtype name (``"float32"``, ``"string"``...).
    shape : tuple of int
    nbytes : int
        Size of the values (0 for strings, resources and variants: not known from an index).
    kind : str or None
        ``"meta"`` when the format itself knows the entry is bookkeeping (TF2's object
        graph), ``"ema"`` / ``"slot"`` when it knows whose state the entry is (a Keras 3
        optimizer's averages, from the object graph or the file's layout); None leaves the
        decision to the classifier (:mod:`ckptwidgets._planning.kinds`).
    base : str or None
        With ``kind`` ``"ema"`` or ``"slot"``: the *key* of the variable the entry belongs to,
        when the format says it (None: unknown).
    """

    key: str
    name: str
    dtype: str
    shape: tuple
    nbytes: int
    kind: str | None = None
    base: str | None = None


@runtime_checkable
class Source(Protocol):
    """A checkpoint format: its entries, its tensors, its files.

    Attributes
    ----------
    location : str
        What identifies the checkpoint in messages and to open it again (a TF prefix).
    format : str
        A short name of the format (``"tf-bundle"``).
    object_based : bool
        True when keys are object paths (TF2 ``tf.train.Checkpoint``), False for names.
    restore_prefix : str or None
        A prefix TensorFlow's ``RestoreV2`` op reads directly (the fast restore path), or
        None: then :func:`ckptwidgets.restore` reads every value through :meth:`read_many`.
    """

    location: str
    format: str
    object_based: bool
    restore_prefix: str | None

    def records(self) -> list[Record]:
        """Every entry, sorted by key."""

    def read(self, key: str, copy: bool = False):
        """One tensor as a numpy array (checked against the format's checksums).

        Large tensors may come back as read-only views of a memory-mapped file;
        ``copy=True`` asks for a writable array of one's own.
        """

    def read_many(self, keys: Iterable[str], copy: bool = False) -> Iterator[tuple[str, object]]:
        """``(key, array)`` for each key, one at a time, in the order that reads fastest.

        Memory stays bounded by the largest tensor (plus memory-mapped views the caller
        keeps).
        """

    def files(self) -> list[str]:
        """The files the checkpoint consists of."""


#: Optional members a source may have (the rest of the package asks with ``getattr``, and
#: does without when a source has none):
#:
#: - ``steps() -> [(step, location)]``: the checkpoints of the same training run beside this
#:   one, by step (a TF bundle: ``model.ckpt-0``, ``-999``, ``-1000``).
#: - ``object_graph() -> ObjectGraph | None``: the saved objects and how they reach each
#:   other (:class:`ckptwidgets.sources.bundle.ObjectGraph`; a TF2 bundle's ``_CHECKPOINTABLE_OBJECT_GRAPH``).
#: - ``describe(shown: str) -> str``: what the CLI's ``ls`` header says in parentheses after
#:   the location; ``shown`` is the entry count as the listing words it (``"2 entries"``, or
#:   ``"2 of 5 entries"`` under a filter). Without it: ``f"{source.format}, {shown}"``.
#: - ``restore_code(plan, style) -> list[str] | None``: the lines of Python that restore
#:   ``plan`` (a :class:`~ckptwidgets.RestorePlan` of this source) in ``style``, for a format
#:   TensorFlow's own readers cannot open (:func:`ckptwidgets.codegen.to_code`); None, or
#:   no hook: TensorFlow's ``Saver`` / ``init_from_checkpoint`` / ``load_checkpoint`` code.
OPTIONAL = ("steps", "object_graph", "describe", "restore_code")


def is_source(obj) -> bool:
    """True for an object implementing :class:`Source`."""
    return isinstance(obj, Source) and not isinstance(obj, (str, bytes, os.PathLike))


def open_source(path: str) -> Source:
    """The source of the first format in :data:`FORMATS` that recognises ``path``.

    Raises
    ------
    CheckpointNotFoundError, CorruptCheckpointError
        From the last format (the TF bundle) when no other recognises the path.
    """
    for name in FORMATS:
        source = import_module(f".{name}", __name__).detect(path)
        if source is not None:
            return source
    raise AssertionError(f"the last format, {FORMATS[-1]!r}, explains every path it cannot open")


def writer_for(out, model=None):
    """The module of the first format in :data:`FORMATS` that writes ``out`` (for ``model``,
    when given): its ``write(plan, out, **options)`` writes it.

    >>> writer_for("serving.ckpt").__name__, writer_for("net.weights.h5").__name__
    ('ckptwidgets.sources.bundle', 'ckptwidgets.sources.keras')
    """
    for name in FORMATS:
        module = import_module(f".{name}", __name__)
        if hasattr(module, "writes") and module.writes(out, model):
            return module
    raise AssertionError(f"the last format, {FORMATS[-1]!r}, writes every output")
