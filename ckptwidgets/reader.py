"""Open a checkpoint and describe its entries, reading only the index.

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
import math
import os
import re
from dataclasses import dataclass

from . import _validate
from ._quiet import import_tensorflow
from .errors import CheckpointNotFoundError, CorruptCheckpointError

__all__ = ["Entry", "Checkpoint", "open_checkpoint", "KINDS"]

tf = import_tensorflow()

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
_KERAS3_OPTIMIZER_STATE = "optimizer/_variables/"
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


def _value_key(name: str, object_based: bool) -> str:
    return name + VALUE_SUFFIX if object_based else name


def classify(key: str, keys) -> tuple[str, str | None]:
    """Return ``(kind, base)`` for ``key``, given the set of all keys of its checkpoint."""
    if key == OBJECT_GRAPH_KEY or "/.ATTRIBUTES/" in key and not key.endswith(VALUE_SUFFIX):
        return "meta", None
    object_based = key.endswith(VALUE_SUFFIX)
    name = key[: -len(VALUE_SUFFIX)] if object_based else key
    if _SLOT_MARK in name:
        return "slot", _value_key(name.split(_SLOT_MARK, 1)[0], object_based)
    head, _, last = name.rpartition("/")
    if last == EMA_SEGMENT and head:
        return "ema", _value_key(head, object_based)
    if last in _META_NAMES:
        return "meta", None
    if name.startswith(_KERAS3_OPTIMIZER_STATE):
        return "slot", None
    if head and _TF1_SLOT.match(last) and _value_key(head, object_based) in keys:
        return "slot", _value_key(head, object_based)
    return "variable", None


def _dtype_name(dtype) -> str:
    return tf.as_dtype(dtype).name


def _nbytes(shape, dtype: str) -> int:
    try:
        itemsize = tf.as_dtype(dtype).size
    except Exception:
        return 0
    if dtype in ("string", "resource", "variant"):
        return 0
    return math.prod(shape) * itemsize


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
        latest = tf.train.latest_checkpoint(path)
        if latest is not None and gfile.exists(latest + ".index"):
            return latest
        state = os.path.join(path, "checkpoint")
        if gfile.exists(state):
            pointed = latest or "(nothing readable)"
            raise CheckpointNotFoundError(
                f"The 'checkpoint' file in folder {path!r} points to {pointed!r}, "
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


class Checkpoint:
    """A checkpoint opened for reading: its entries (from the index) and lazy tensor reads.

    Build one with :func:`open_checkpoint`.
    """

    def __init__(self, prefix: str, reader, shapes: dict, dtypes: dict):
        self.prefix = prefix
        self._reader = reader
        keys = shapes.keys()
        entries = []
        for key in sorted(keys):
            shape = tuple(shapes[key])
            dtype = _dtype_name(dtypes[key])
            kind, base = classify(key, keys)
            name = key[: -len(VALUE_SUFFIX)] if key.endswith(VALUE_SUFFIX) else key
            entries.append(Entry(key, name, shape, dtype, _nbytes(shape, dtype), kind, base))
        self.entries: tuple[Entry, ...] = tuple(entries)
        self._by_key = {e.key: e for e in entries}
        # Object-based entries are also found by their name without the suffix.
        self._by_name = {e.name: e for e in entries}

    # --- mapping-like access -------------------------------------------------
    def __getitem__(self, key: str) -> Entry:
        try:
            return self._by_key[key]
        except KeyError:
            pass
        if key in self._by_name:
            return self._by_name[key]
        raise KeyError(f"Key {key!r} not found in checkpoint {self.prefix!r}.{_suggest(key, self._by_key)}")

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

    def read(self, key: str):
        """Read one tensor as a numpy array.

        Raises
        ------
        KeyError
            ``key`` is not in the checkpoint (the message suggests close keys).
        CorruptCheckpointError
            The data file cannot be read.
        """
        entry = self[key]
        try:
            return self._reader.get_tensor(entry.key)
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
        latest checkpoint, as ``tf.train.latest_checkpoint`` finds it). Any path
        ``tf.io.gfile`` understands. Name-based (``Saver``) and object-based
        (``tf.train.Checkpoint``) checkpoints, sharded ones included.

    Returns
    -------
    Checkpoint

    Raises
    ------
    CheckpointNotFoundError
        Nothing readable at ``path``.
    CorruptCheckpointError
        The files are there but are not a readable checkpoint.

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
    prefix = _validate.resolve_prefix(path, _resolve_prefix)  # FIFOs, devices, a binary 'checkpoint' file
    try:
        reader = tf.train.load_checkpoint(prefix)
        shapes = reader.get_variable_to_shape_map()
        dtypes = reader.get_variable_to_dtype_map()
    except Exception as error:  # DataLossError, OutOfRangeError, InvalidArgumentError...
        raise CorruptCheckpointError(
            f"Cannot read checkpoint {prefix!r} (index file {prefix + '.index'!r}): {_first_line(error)}"
        ) from None
    return Checkpoint(prefix, reader, shapes, dtypes)
