"""Diff two checkpoints: which keys changed, by how much, which were renamed or dropped.

:func:`diff_checkpoints` pairs the entries of two checkpoints by key, reads both values
(through :meth:`Checkpoint.read <ckptwidgets.reader.Checkpoint.read>`: no TensorFlow for a TF
checkpoint) and measures the change; entries left over on one side are searched for likely
renames. The result, a :class:`CheckpointDiff`, has a :class:`DiffRow` per key (or per key
pair), a plain-text table (what the command line prints) and the rows sorted and filtered
for the :class:`~ckptwidgets.widgets.CheckpointDiff` widget.

Example
-------
>>> import numpy as np
>>> from ckptwidgets.sources.arrays import ArraySource
>>> a = ArraySource({"w": np.ones(3, np.float32), "old/b": np.arange(2.0), "lr": np.float32(0.1)})
>>> b = ArraySource({"w": np.array([1, 1, 1.5], np.float32), "new/b": np.arange(2.0),
...                  "lr": np.float32(0.1), "step": np.int64(5)})
>>> d = diff_checkpoints(a, b)
>>> [(row.status, row.key_a, row.key_b) for row in d.rows]
[('only_b', None, 'step'), ('changed', 'w', 'w'), ('renamed', 'old/b', 'new/b'), ('identical', 'lr', 'lr')]
>>> d.find("w").max_abs, round(d.find("w").rel_change, 4)
(0.5, 0.2887)
>>> print(d.text())                                          # doctest: +NORMALIZE_WHITESPACE
a: <arrays> (3 entries)
b: <arrays> (4 entries)
1 changed · 1 renamed · 1 only in b · 1 identical
status     key             shape  dtype    max |a-b|  rel. change
only_b     step            []     int64
changed    w               [3]    float32  0.5        0.289
renamed    old/b -> new/b  [2]    float64  0          0
identical  lr              []     float32  0          0
"""
from __future__ import annotations

import hashlib
import math
from collections import defaultdict, deque
from typing import NamedTuple

import numpy as np

from ._text.format import format_shape, text_table
from .errors import PlanError
from .reader import Checkpoint, Entry, open_checkpoint

__all__ = [
    "diff_checkpoints",
    "CheckpointDiff",
    "DiffRow",
    "STATUSES",
    "STATUS_LABELS",
    "SORTS",
    "RENAME_LIMIT",
    "CLOSE_BUDGET",
    "show_key",
]

#: Every status, in the order of the ``"change"`` sort (and of ``counts``): rows whose values
#: cannot be compared first (a key on one side only, a shape or dtype that changed), then the
#: compared ones by how much they changed, identical ones last.
STATUSES = ("only_a", "only_b", "shape_changed", "dtype_changed", "changed", "renamed", "identical")
#: Words for the statuses in sentences and the widget.
STATUS_LABELS = {status: status.replace("only_", "only in ").replace("_", " ") for status in STATUSES}
#: Orders :meth:`CheckpointDiff.to_rows` knows.
SORTS = ("change", "key", "status")
#: Buckets of leftover entries (one shape and dtype) with more than this many entries on a
#: side look for renames among equal values only (a hash each), not close ones.
RENAME_LIMIT = 32
#: At most this many pairs of values are compared for close renames in one diff; after that,
#: renames are found among equal values only.
CLOSE_BUDGET = 10_000

_NOT_NUMBERS = frozenset({"string", "resource", "variant"})
_CHUNK = 1 << 20  # elements compared at once: memory stays bounded on big tensors
_SAMPLE = 64  # elements compared before a whole tensor, when looking for close renames
_PAIR_SCORES = 4096  # equal-value groups up to this many pairs are paired by name similarity


class DiffRow(NamedTuple):
    """One key (or one renamed pair of keys) of a diff.

    Attributes
    ----------
    key_a, key_b : str or None
        The key in checkpoint a and in b (None on the side that lacks it); two different keys
        for a ``"renamed"`` row.
    status : str
        One of :data:`STATUSES`: ``"only_a"``, ``"only_b"``, ``"shape_changed"``,
        ``"dtype_changed"``, ``"changed"``, ``"renamed"`` (a key only in a and one only in b
        with the same shape and dtype and equal or close values) or ``"identical"`` (the same
        bytes).
    kind : str
        The entry's kind (``variable``, ``ema``, ``slot``, ``meta``), in a if it is there.
    shape_a, shape_b : tuple or None
    dtype_a, dtype_b : str or None
        TensorFlow dtype names.
    max_abs : float or None
        ``max |a - b|`` over the elements (float64; complex: the modulus), 0 for empty
        tensors; NaN where a NaN or infinity is on one side only. None when values were not
        compared as numbers (strings, other shapes or dtypes, one side).
    rel_change : float or None
        ``||a - b|| / ||a||`` (2-norms over all elements); 0 when both are zero, ``inf`` when
        ``a`` is all zeros and ``b`` is not. None as for ``max_abs``.
    identical : bool or None
        The values are the same bytes (strings: the same strings); None for rows without
        two comparable values.
    """

    key_a: str | None
    key_b: str | None
    status: str
    kind: str
    shape_a: tuple | None
    shape_b: tuple | None
    dtype_a: str | None
    dtype_b: str | None
    max_abs: float | None = None
    rel_change: float | None = None
    identical: bool | None = None

    @property
    def key(self) -> str:
        """The row's key: ``key_a``, or ``key_b`` for an ``"only_b"`` row (unique in a diff)."""
        return self.key_a if self.key_a is not None else self.key_b


def show_key(key: str | None) -> str:
    """A key as the text table shows it: as is when printable, else its ``repr``.

    Examples
    --------
    >>> show_key("dense/kernel"), show_key("a\\nb"), show_key(None)
    ('dense/kernel', "'a\\\\nb'", '')
    """
    if key is None:
        return ""
    return key if key.isprintable() else repr(key)


def _number(x: float | None) -> str:
    return "" if x is None else f"{x:.3g}"


def _pair_text(first, second, show=str) -> str:
    return show(first) if first == second or second is None else show(second) if first is None else f"{show(first)} -> {show(second)}"


class CheckpointDiff:
    """What :func:`diff_checkpoints` finds: a :class:`DiffRow` per key or renamed key pair.

    Attributes
    ----------
    a, b : Checkpoint
        The two checkpoints compared.
    rows : tuple of DiffRow
        Sorted by change (``to_rows("change")``): keys only in a, then only in b, shape
        changes, dtype changes (each by key); then changed values, largest relative change
        first (strings and NaN changes, which have no size, first among them), then renames
        the same way; identical rows last, by key.
    counts : dict
        ``{status: number of rows}`` for every status of :data:`STATUSES`, in that order.
    rtol, atol : float
        The tolerances renames were found with.
    """

    def __init__(self, a: Checkpoint, b: Checkpoint, rows, rtol: float, atol: float):
        self.a, self.b, self.rtol, self.atol = a, b, rtol, atol
        self._all = tuple(rows)
        self._sorted: dict[str, tuple] = {}
        self.rows: tuple[DiffRow, ...] = self.to_rows("change")
        counts = dict.fromkeys(STATUSES, 0)
        for row in self._all:
            counts[row.status] += 1
        self.counts: dict[str, int] = counts
        self._by_key = {row.key: row for row in self._all}
        self._by_key_b = {row.key_b: row for row in self._all if row.key_b is not None}

    def __len__(self) -> int:
        return len(self._all)

    def __iter__(self):
        return iter(self.rows)

    def find(self, key: str) -> DiffRow | None:
        """The row of ``key`` (a key of a, or of b), or None."""
        return self._by_key.get(key) or self._by_key_b.get(key)

    def to_rows(self, sort: str = "change", statuses=None) -> tuple[DiffRow, ...]:
        """The rows in one order, optionally only some statuses.

        Parameters
        ----------
        sort : str
            ``"change"`` (the order of ``rows``), ``"key"`` (by key, the key in a first) or
            ``"status"`` (in :data:`STATUSES` order, each by key).
        statuses : iterable of str, optional
            Keep rows of these statuses only.
        """
        if sort not in SORTS:
            raise PlanError(f"Unknown sort {sort!r}; sorts are {', '.join(SORTS)}.")
        rows = self._sorted.get(sort)
        if rows is None:
            rows = self._sorted[sort] = tuple(sorted(self._all, key=_SORT_KEYS[sort]))
        if statuses is None:
            return rows
        if isinstance(statuses, str):
            statuses = (statuses,)
        wanted = frozenset(statuses)
        bad = sorted(wanted - set(STATUSES))
        if bad:
            raise PlanError(f"Unknown status(es) {bad!r}; statuses are {', '.join(STATUSES)}.")
        return tuple(row for row in rows if row.status in wanted)

    def counts_text(self) -> str:
        """One line, the statuses present with their numbers: ``"3 changed · 1 only in a"``."""
        order = ("changed", "shape_changed", "dtype_changed", "renamed", "only_a", "only_b", "identical")
        parts = [f"{self.counts[s]:,} {STATUS_LABELS[s]}" for s in order if self.counts[s]]
        return " · ".join(parts) or "both checkpoints are empty"

    @staticmethod
    def row_texts(row: DiffRow) -> list[str]:
        """The text cells of one row: status, key (``old -> new`` for a rename), shape, dtype,
        ``max |a-b|``, relative change; keys shown by :func:`show_key`."""
        return [
            row.status,
            _pair_text(row.key_a, row.key_b, show_key),
            _pair_text(None if row.shape_a is None else format_shape(row.shape_a),
                       None if row.shape_b is None else format_shape(row.shape_b)),
            _pair_text(row.dtype_a, row.dtype_b),
            _number(row.max_abs),
            _number(row.rel_change),
        ]

    def text(self, limit: int | None = None, sort: str = "change", statuses=None) -> str:
        """A plain-text table of the rows (what the command line prints), after a header.

        Parameters
        ----------
        limit : int, optional
            At most this many rows, then a line saying how many more there are.
        sort, statuses
            As for :meth:`to_rows`.
        """
        rows = self.to_rows(sort, statuses)
        shown = rows if limit is None else rows[: max(0, int(limit))]
        lines = [f"a: {self.a.prefix} ({len(self.a):,} entries)", f"b: {self.b.prefix} ({len(self.b):,} entries)",
                 self.counts_text(),
                 text_table(["status", "key", "shape", "dtype", "max |a-b|", "rel. change"],
                            [self.row_texts(row) for row in shown])]
        if len(rows) > len(shown):
            lines.append(f"... {len(rows) - len(shown):,} more")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<CheckpointDiff {self.a.prefix!r} vs {self.b.prefix!r}: {self.counts_text()}>"


def _size(x: float | None) -> float:
    """A change as a sort key: None (no size) and NaN count as the largest."""
    return math.inf if x is None or x != x else x


_RANK = {status: i for i, status in enumerate(STATUSES)}
_MEASURED = frozenset({"changed", "renamed"})
_SORT_KEYS = {
    "change": lambda r: (_RANK[r.status], -_size(r.rel_change) if r.status in _MEASURED else 0.0,
                         -_size(r.max_abs) if r.status in _MEASURED else 0.0, r.key, r.key_b or ""),
    "key": lambda r: (r.key, r.key_b or ""),
    "status": lambda r: (_RANK[r.status], r.key, r.key_b or ""),
}


# --- comparing two values ------------------------------------------------------------------

def _flat_bytes(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values).reshape(-1).view(np.uint8)


def _same(va: np.ndarray, vb: np.ndarray, numeric: bool) -> bool:
    """Same bytes (numbers) or same strings."""
    if va.shape != vb.shape:
        return False
    if not numeric:
        try:
            return bool(np.array_equal(va, vb))
        except Exception:  # objects that cannot be compared (variant): different
            return False
    if va.nbytes <= 1 << 16:
        return va.tobytes() == vb.tobytes()
    return bool(np.array_equal(_flat_bytes(va), _flat_bytes(vb)))


def _numbers(values: np.ndarray) -> np.ndarray:
    """float64 (complex128 for complex) of any numeric tensor, flat; quantized: their integers."""
    if values.dtype.names:  # qint8 and friends: one named integer field
        values = values[values.dtype.names[0]]
    return values.reshape(-1).astype(np.complex128 if values.dtype.kind == "c" else np.float64)


def _measure(va: np.ndarray, vb: np.ndarray) -> tuple[float, float]:
    """``(max |a - b|, ||a - b|| / ||a||)`` of two numeric arrays of one shape."""
    fa, fb = va.reshape(-1), vb.reshape(-1)
    largest, diff2, norm2 = 0.0, 0.0, 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        for start in range(0, max(fa.size, 1), _CHUNK):
            x, y = _numbers(fa[start:start + _CHUNK]), _numbers(fb[start:start + _CHUNK])
            if not x.size:
                break
            d = np.abs(x - y)
            if not np.isfinite(d).all():
                # Equal infinities and NaN against NaN are no difference; the rest stays NaN or inf.
                d[(x == y) | (np.isnan(x) & np.isnan(y))] = 0.0
                if np.isnan(d).any():
                    largest = math.nan
            if largest == largest:
                largest = max(largest, float(d.max()))
            diff2 += float(np.vdot(d, d).real)
            norm2 += float(np.vdot(x, x).real)
    if largest != largest:
        return math.nan, math.nan
    if norm2 == 0.0:
        return largest, 0.0 if diff2 == 0.0 else math.inf
    with np.errstate(invalid="ignore"):
        return largest, float(np.sqrt(diff2) / np.sqrt(norm2))


def _close(va: np.ndarray, vb: np.ndarray, rtol: float, atol: float) -> bool:
    """``|b - a| <= atol + rtol * |a|`` everywhere (NaN equal to NaN), a sample checked first."""
    fa, fb = va.reshape(-1), vb.reshape(-1)
    if fa.size > _SAMPLE:
        pick = np.linspace(0, fa.size - 1, _SAMPLE).astype(np.intp)
        if not np.allclose(_numbers(fb[pick]), _numbers(fa[pick]), rtol=rtol, atol=atol, equal_nan=True):
            return False
    for start in range(0, fa.size, _CHUNK):
        x, y = _numbers(fa[start:start + _CHUNK]), _numbers(fb[start:start + _CHUNK])
        if not np.allclose(y, x, rtol=rtol, atol=atol, equal_nan=True):
            return False
    return True


def _digest(values: np.ndarray, numeric: bool) -> bytes:
    """A hash of a tensor's bytes (strings: of each string and its length)."""
    h = hashlib.blake2b(digest_size=16)
    if numeric:
        h.update(_flat_bytes(values))
    else:
        for item in values.reshape(-1):
            data = item if isinstance(item, bytes) else str(item).encode()
            h.update(len(data).to_bytes(8, "little"))
            h.update(data)
    return h.digest()


def _row(status: str, ea: Entry | None, eb: Entry | None, **numbers) -> DiffRow:
    return DiffRow(
        ea.key if ea else None, eb.key if eb else None, status, (ea or eb).kind,
        ea.shape if ea else None, eb.shape if eb else None, ea.dtype if ea else None, eb.dtype if eb else None,
        **numbers,
    )


def _compared(status: str, ea: Entry, eb: Entry, va: np.ndarray, vb: np.ndarray) -> DiffRow:
    """The row of two values of one shape and dtype: ``status`` unless identical."""
    numeric = ea.dtype not in _NOT_NUMBERS
    same = _same(va, vb, numeric)
    if status == "changed" and same:
        status = "identical"
    if not numeric:
        return _row(status, ea, eb, identical=same)
    largest, relative = (0.0, 0.0) if same else _measure(va, vb)
    return _row(status, ea, eb, max_abs=largest, rel_change=relative, identical=same)


# --- likely renames ------------------------------------------------------------------------

def _tail_score(key_a: str, key_b: str) -> int:
    """How many trailing path segments two keys share (``old/x/w`` and ``new/x/w``: 2)."""
    sa, sb = key_a.split("/"), key_b.split("/")
    n = 0
    while n < len(sa) and n < len(sb) and sa[-1 - n] == sb[-1 - n]:
        n += 1
    return n


def _pair_by_name(xs: list, ys: list) -> list:
    """Pairs of entries of equal values, the most similar names first.

    Small groups: greedily by the number of trailing segments the keys share, then by key
    order. Big ones (zeros in many tensors): by last segment, then key order.
    """
    if len(xs) * len(ys) <= _PAIR_SCORES:
        scored = sorted(
            ((-_tail_score(x.key, y.key), i, j) for i, x in enumerate(xs) for j, y in enumerate(ys)),
        )
        used_x, used_y, pairs = set(), set(), []
        for _, i, j in scored:
            if i not in used_x and j not in used_y:
                used_x.add(i)
                used_y.add(j)
                pairs.append((xs[i], ys[j]))
        return pairs
    by_last_y = defaultdict(deque)
    for y in ys:
        by_last_y[y.key.rsplit("/", 1)[-1]].append(y)
    pairs, left_x = [], []
    for x in xs:
        group = by_last_y.get(x.key.rsplit("/", 1)[-1])
        if group:
            pairs.append((x, group.popleft()))
        else:
            left_x.append(x)
    left_y = [y for group in by_last_y.values() for y in group]
    left_y.sort(key=lambda e: e.key)
    return pairs + list(zip(left_x, left_y))


def _renames(a: Checkpoint, b: Checkpoint, only_a: list, only_b: list, rtol, atol, limit) -> list:
    """``(entry in a, entry in b, value in a, value in b)`` of the likely renames.

    Leftover entries are bucketed by (shape, dtype); values are compared inside a bucket
    only: equal bytes first (a hash each), then, in buckets of at most ``limit`` entries a
    side, close numbers (``rtol``, ``atol``).
    """
    buckets: dict[tuple, tuple[list, list]] = defaultdict(lambda: ([], []))
    for entry in only_a:
        buckets[(entry.shape, entry.dtype)][0].append(entry)
    for entry in only_b:
        buckets[(entry.shape, entry.dtype)][1].append(entry)
    found, budget = [], CLOSE_BUDGET
    for (_shape, dtype), (xs, ys) in buckets.items():
        if not xs or not ys:
            continue
        numeric = dtype not in _NOT_NUMBERS
        groups_a, groups_b = defaultdict(list), defaultdict(list)
        for entry in xs:
            groups_a[_digest(a.read(entry.key), numeric)].append(entry)
        for entry in ys:
            groups_b[_digest(b.read(entry.key), numeric)].append(entry)
        paired = set()
        for digest, group in groups_a.items():
            if digest in groups_b:
                for x, y in _pair_by_name(group, groups_b[digest]):
                    found.append((x, y))
                    paired.update((x.key, y.key))
        if not numeric or len(xs) > limit or len(ys) > limit:
            continue
        left_x = [x for x in xs if x.key not in paired]
        left_y = [y for y in ys if y.key not in paired]
        if not left_x or not left_y or budget <= 0:
            continue
        values_b = {y.key: b.read(y.key) for y in left_y}
        for x in left_x:
            value = a.read(x.key)
            for y in sorted(left_y, key=lambda y: (-_tail_score(x.key, y.key), y.key)):
                budget -= 1
                if _close(value, values_b[y.key], rtol, atol):
                    found.append((x, y))
                    left_y.remove(y)
                    break
            if not left_y or budget <= 0:
                break
    return found


# --- the diff ------------------------------------------------------------------------------

def _tolerance(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise PlanError(f"{name} must be a number, not {type(value).__name__}: {value!r}.")
    value = float(value)
    if not value >= 0.0 or math.isinf(value):
        raise PlanError(f"{name} must be a finite number >= 0, got {value!r}.")
    return value


def diff_checkpoints(a, b, rtol: float = 1e-6, atol: float = 0.0, *, rename_limit: int = RENAME_LIMIT) -> CheckpointDiff:
    """Compare two checkpoints key by key, and find the keys that were likely renamed.

    Parameters
    ----------
    a, b
        Anything :func:`ckptwidgets.open_checkpoint` takes: a path (prefix, ``.index`` file,
        folder), a :class:`~ckptwidgets.Checkpoint` or a source. ``a`` is the reference:
        relative changes are relative to it.
    rtol, atol : float
        When the values of a key only in a and a key only in b count as close (a likely
        rename): ``|b - a| <= atol + rtol * |a|`` for every element (NaN matches NaN).
        They do not change the status of keys in both: ``"identical"`` means the same bytes.
    rename_limit : int
        Buckets with more leftover entries than this on a side look for equal values only.

    Returns
    -------
    CheckpointDiff
        ``.rows`` sorted by change (see :class:`CheckpointDiff`), ``.counts``, ``.text()``.

    Raises
    ------
    CheckpointNotFoundError, CorruptCheckpointError
        A checkpoint cannot be opened, or a value cannot be read (the message names the key).
    PlanError
        A tolerance that is not a finite number >= 0.

    Notes
    -----
    A key in both checkpoints with the same shape and dtype is ``"identical"`` (same bytes)
    or ``"changed"``, with ``max |a - b|`` and the relative change for numbers (strings:
    neither); another shape or dtype is ``"shape_changed"`` / ``"dtype_changed"`` and is not
    compared. Every value is read through ``Checkpoint.read``, one pair at a time, and big
    tensors are compared in chunks of a million elements: memory stays bounded. TensorFlow is
    imported only where ``read`` needs it (partitioned and ``variant`` tensors).

    Likely renames, kept cheap on big checkpoints: the keys only in a and only in b are
    bucketed by (shape, dtype), and only entries of one bucket are compared. Inside a bucket
    equal values are found by a hash of their bytes (linear in the bucket); equal values of
    several keys (zeros, say) are paired by how many trailing path segments the keys share,
    then by key order. Only in buckets of at most ``rename_limit`` entries a side are the
    remaining entries compared for close values, pair by pair (a 64-element sample first,
    then the whole tensor), and at most :data:`CLOSE_BUDGET` pairs in all (10,000: a few
    tenths of a second). Each entry is in at most one rename. So a renamed scope whose
    values also changed a little is found in a small model, but in a bucket of thousands
    of same-shaped tensors only exact copies are: the rest are ``"only_a"`` / ``"only_b"``.
    Two separate keys of equal value that happen to be only in a and only in b read as a
    rename: it is a guess, which the ``"renamed"`` status says.

    Examples
    --------
    >>> import numpy as np
    >>> from ckptwidgets.sources.arrays import ArraySource
    >>> d = diff_checkpoints(ArraySource({"w": np.zeros((2, 3))}), ArraySource({"w": np.zeros((3, 2))}))
    >>> d.rows[0].status, d.counts["shape_changed"]
    ('shape_changed', 1)
    """
    rtol, atol = _tolerance("rtol", rtol), _tolerance("atol", atol)
    if isinstance(rename_limit, bool) or not isinstance(rename_limit, int) or rename_limit < 0:
        raise PlanError(f"rename_limit must be an int >= 0, got {rename_limit!r}.")
    ckpt_a, ckpt_b = open_checkpoint(a), open_checkpoint(b)
    rows, only_a, only_b = [], [], []
    by_key_b = ckpt_b.by_key
    for ea in ckpt_a.entries:
        eb = by_key_b.get(ea.key)
        if eb is None:
            only_a.append(ea)
        elif ea.shape != eb.shape:
            rows.append(_row("shape_changed", ea, eb, identical=False))
        elif ea.dtype != eb.dtype:
            rows.append(_row("dtype_changed", ea, eb, identical=False))
        else:
            rows.append(_compared("changed", ea, eb, ckpt_a.read(ea.key), ckpt_b.read(eb.key)))
    by_key_a = ckpt_a.by_key
    only_b = [eb for eb in ckpt_b.entries if eb.key not in by_key_a]
    paired_a, paired_b = set(), set()
    for ea, eb in _renames(ckpt_a, ckpt_b, only_a, only_b, rtol, atol, rename_limit):
        rows.append(_compared("renamed", ea, eb, ckpt_a.read(ea.key), ckpt_b.read(eb.key)))
        paired_a.add(ea.key)
        paired_b.add(eb.key)
    rows.extend(_row("only_a", ea, None) for ea in only_a if ea.key not in paired_a)
    rows.extend(_row("only_b", None, eb) for eb in only_b if eb.key not in paired_b)
    return CheckpointDiff(ckpt_a, ckpt_b, rows, rtol, atol)
