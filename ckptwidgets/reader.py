"""Open a checkpoint and describe its entries, reading only the index.

The ``.index`` file of a checkpoint is a LevelDB-style table (:mod:`._sstable`): key ->
``BundleEntryProto`` (dtype, shape, where the bytes are; :mod:`._bundle`). We parse and
validate it in Python ourselves: TensorFlow's C++ reader aborts the whole process (a dead
Jupyter kernel, not an exception) on some damaged entries. Only an index that passed goes
to ``tf.train.load_checkpoint``, which checks the crc32c of its blocks (the entries listed
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

from . import _bundle, _validate
from ._quiet import import_tensorflow
from ._sstable import Damaged as _Damaged
from ._sstable import data_blocks as _data_blocks
from ._sstable import snappy_uncompress as _snappy_uncompress  # noqa: F401  (tests/test_reader.py uses it)
from .errors import CheckpointNotFoundError, CorruptCheckpointError

__all__ = ["Entry", "Checkpoint", "open_checkpoint", "classify", "KINDS"]

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


def _entries(keys: list[str], infos: list[tuple]) -> tuple[list[Entry], dict[str, Entry]]:
    """The classified ``Entry`` of each key (in key order) and a dict key -> Entry.

    What :func:`classify` decides for each key, in its order, but fast enough for 10,000
    keys: a per-segment cache (``"kernel"`` can only be a variable) answers most. A slot's
    variable sorts before it (``w`` < ``w/Adam``), so "is the base present" is asked of the
    keys seen so far; the rare rules with neighbours after the key are left to ``classify``
    at the end (``deferred``). Entry objects are filled through their slot descriptors,
    skipping the frozen ``__init__``'s ``object.__setattr__`` calls.
    """
    entries: list = []
    by_key: dict = {}
    deferred: list = []
    codes = _segment_codes
    new = object.__new__
    set_key, set_name, set_shape, set_dtype, set_nbytes, set_kind, set_base = _ENTRY_SETTERS
    suffix, cut = VALUE_SUFFIX, -len(VALUE_SUFFIX)
    for text, (dtype, shape, nbytes) in zip(keys, infos):
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
        by_key[text] = entry
    for i in deferred:
        kind, base = classify(entries[i].key, by_key)
        set_kind(entries[i], kind)
        set_base(entries[i], base)
    return entries, by_key


# --- the index file ----------------------------------------------------------------------


def _scan(blocks: list[bytes]):
    """``(entries, by_key, values, num_shards)`` of an index's data blocks (see :func:`_bundle.scan`)."""
    keys, infos, values, num_shards = _bundle.scan(blocks)
    entries, by_key = _entries(keys, infos)
    return entries, by_key, values, num_shards


def _read_index(prefix: str):
    index = prefix + ".index"
    try:
        with tf.io.gfile.GFile(index, "rb") as f:
            buf = f.read()
    except Exception as error:
        raise CorruptCheckpointError(f"Cannot read index file {index!r}: {_first_line(error)}") from None
    # The scan allocates a few objects per entry and frees none: the cyclic garbage
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
            dtype, itemsize = _bundle.dtype_info(dtypes[key])
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
        where = _bundle.location(self._values[entry.key])
        if where is None:
            return  # assembled from slice entries, each checked by TF against its file
        shard_id, offset, size = where
        shard = "%s.data-%05d-of-%05d" % (self.prefix, shard_id, self._num_shards)
        try:
            available = tf.io.gfile.stat(shard).length
        except Exception:
            available = None
        if available is not None and (size != entry.nbytes or offset + size > available):
            raise CorruptCheckpointError(
                f"Cannot read key {entry.key!r} from checkpoint {self.prefix!r}: its index entry "
                f"says {size} bytes at offset {offset} of {shard!r} ({available} bytes), "
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
