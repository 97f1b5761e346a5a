"""Pure text helpers behind the widgets and the command line: sizes, shapes, statistics.

Nothing here imports ipywidgets, so every rule the widgets apply (how a size or shape is
written, what the statistics of a tensor are) can be tested and reused from a script. The
filter language (``filter_entries``, ``filter_names``, re-exported here) is
:mod:`ckptwidgets._text.filter`.

Example
-------
>>> human_size(1536)
'1.5 KiB'
>>> format_shape((3, 4))
'[3, 4]'
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .filter import filter_entries, filter_names  # the filter language lives in _filter.py

__all__ = [
    "human_size",
    "count_of",
    "format_shape",
    "filter_entries",
    "filter_names",
    "TensorStats",
    "finite_values",
    "tensor_stats",
    "compare_text",
    "text_table",
    "shorten",
    "short_labels",
    "ELLIPSIS",
    "first_lines",
]

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_size(nbytes: int) -> str:
    """Size in bytes as short binary-prefixed text.

    Examples
    --------
    >>> human_size(0), human_size(1023), human_size(1536), human_size(3 * 2**30)
    ('0 B', '1023 B', '1.5 KiB', '3.0 GiB')
    """
    nbytes = int(nbytes)
    if nbytes < 0:
        raise ValueError(f"A size cannot be negative, got {nbytes!r}.")
    if nbytes < 1024:
        return f"{nbytes} B"
    exponent = min(int(math.log(nbytes, 1024)), len(_UNITS) - 1)
    return f"{nbytes / 1024 ** exponent:.1f} {_UNITS[exponent]}"


def count_of(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and the noun, plural unless ``n`` is one (``noun`` takes an ``s`` unless ``plural`` is given).

    Examples
    --------
    >>> count_of(1, "tensor"), count_of(0, "tensor"), count_of(12345, "variable")
    ('1 tensor', '0 tensors', '12,345 variables')
    >>> count_of(1, "entry", "entries"), count_of(2, "entry", "entries")
    ('1 entry', '2 entries')
    """
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def format_shape(shape) -> str:
    """A shape as TensorFlow lists it, ``[]`` for a scalar, ``<unknown>`` for an unknown rank (None).

    The one shape format of the package: messages, widgets and the command line.

    Examples
    --------
    >>> format_shape(()), format_shape((1,)), format_shape([3, None]), format_shape(None)
    ('[]', '[1]', '[3, None]', '<unknown>')
    """
    if shape is None:
        return "<unknown>"
    return "[" + ", ".join("None" if d is None else str(d) for d in shape) + "]"


@dataclass(frozen=True)
class TensorStats:
    """Summary statistics of one tensor; the numbers are None for non-numeric tensors.

    ``nonfinite`` counts NaN and infinite values, which the other numbers skip.
    """

    size: int
    dtype: str
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    nonfinite: int = 0

    def __str__(self) -> str:
        if self.mean is None:
            return f"{self.size} values of {self.dtype} (no statistics for this dtype)"
        text = (
            f"min {self.min:.6g}   max {self.max:.6g}   mean {self.mean:.6g}   "
            f"std {self.std:.6g}   ({self.size} values, {self.dtype})"
        )
        if self.nonfinite:
            text += f"   {self.nonfinite} NaN/inf skipped"
        return text


def finite_values(values) -> tuple[np.ndarray | None, int]:
    """``(values, skipped)``: an array's numbers as one flat float64 array without NaN and
    infinities, and how many of those were skipped; ``(None, 0)`` for a non-numeric array.

    Bools count as 0/1. Compute it once per tensor and hand it to :func:`tensor_stats`
    and to a histogram: the browser converts each tensor once.

    Examples
    --------
    >>> finite_values(np.array([1.0, np.nan, np.inf], dtype=np.float32))
    (array([1.]), 2)
    """
    array = np.asarray(values)
    if array.dtype.kind not in "biuf":
        return None, 0
    # float64 accumulation: float16/float32 sums of large tensors lose digits.
    flat = array.ravel().astype(np.float64, copy=False)
    if array.dtype.kind != "f":
        return flat, 0
    finite = np.isfinite(flat)
    skipped = int(flat.size - np.count_nonzero(finite))
    return (flat[finite] if skipped else flat), skipped


def tensor_stats(values, finite=None) -> TensorStats:
    """Min, max, mean and standard deviation of an array (bools count as 0/1).

    Parameters
    ----------
    values : array_like
    finite : tuple, optional
        What :func:`finite_values` gives for ``values``, when already computed.

    Examples
    --------
    >>> s = tensor_stats(np.array([1.0, 2.0, 3.0], dtype=np.float32))
    >>> (s.min, s.max, s.mean, round(s.std, 4))
    (1.0, 3.0, 2.0, 0.8165)
    >>> tensor_stats(np.array([b"a"])).mean is None
    True
    """
    array = np.asarray(values)
    # TensorFlow strings read back as numpy bytes ("|S123") or objects: name them as TF does.
    dtype = "string" if array.dtype.kind in "SOU" else str(array.dtype)
    work, nonfinite = finite_values(array) if finite is None else finite
    if work is None:
        return TensorStats(size=int(array.size), dtype=dtype)
    if work.size == 0:
        return TensorStats(size=int(array.size), dtype=dtype, nonfinite=nonfinite)
    return TensorStats(
        size=int(array.size),
        dtype=dtype,
        min=float(work.min()),
        max=float(work.max()),
        mean=float(work.mean()),
        std=float(work.std()),
        nonfinite=nonfinite,
    )


def compare_text(raw_key: str, raw, shadow_key: str, shadow) -> str:
    """One line comparing a variable's values with its EMA shadow's: largest and mean difference.

    Examples
    --------
    >>> compare_text("w", np.array([1.0, 2.0]), "w/ExponentialMovingAverage", np.array([0.5, 2.0]))
    "raw 'w' vs EMA shadow 'w/ExponentialMovingAverage': max |raw - shadow| 0.5, mean |raw - shadow| 0.25"
    """
    text = f"raw {raw_key!r} vs EMA shadow {shadow_key!r}: "
    a, b = np.asarray(raw), np.asarray(shadow)
    if a.shape != b.shape or a.dtype.kind not in "iufb" or b.dtype.kind not in "iufb":
        return text + f"not comparable (shapes {format_shape(a.shape)} and {format_shape(b.shape)})"
    diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
    if diff.size == 0:
        return text + "empty tensors"
    return text + f"max |raw - shadow| {diff.max():.6g}, mean |raw - shadow| {diff.mean():.6g}"


def shorten(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters with a trailing ellipsis when it is longer.

    Examples
    --------
    >>> shorten("abcdef", 4)
    'abc…'
    """
    text = str(text)
    if width <= 0:
        return ""
    return text if len(text) <= width else text[: width - 1] + "…"


#: What a label puts where it leaves part of a key out.
ELLIPSIS = "…"


def _elided(parts: list[str], kept: tuple[int, ...]) -> list[str]:
    """The pieces of a label keeping the components ``kept`` (sorted indices) of ``parts``;
    ``None`` stands for each run of components left out."""
    pieces: list = []
    last = -1
    for index in kept:
        if index != last + 1:
            pieces.append(None)
        pieces.append(parts[index])
        last = index
    if last != len(parts) - 1:
        pieces.append(None)
    return pieces


def _label_of(pieces, sep: str) -> str:
    return sep.join(ELLIPSIS if p is None else p for p in pieces)


def _matches(pieces, sep: str, text: str) -> bool:
    """Whether ``text`` reads as the label ``pieces``: each ``None`` one or more components
    left out, a piece starting with ``…`` the end of a component."""
    import re

    pattern = sep.join(".+" if p is None else ".+" + re.escape(p[1:]) if p.startswith(ELLIPSIS) else re.escape(p)
                       for p in pieces)
    return re.fullmatch(pattern, text, flags=re.DOTALL) is not None


def short_labels(texts, width: int, sep: str = "/") -> dict[str, str]:
    """``{text: label}``: each text in at most ``width`` characters where it can be, no two labels equal.

    A text that fits is its own label. A longer one leaves whole ``sep``-separated components
    out (``…`` stands for them) and keeps what tells it apart from the other texts: its last
    component, then the components where it differs (a common prefix such as ``teacher/``
    goes first); where that is still too long, the start of its last component goes too
    (``…MovingAverage``). A label reads as exactly one of ``texts`` (each ``…`` standing for
    what was left out), so a label that would also fit another text is not used; where none
    fits ``width``, the end of the text is kept (``…`` and its last characters) when that is
    unambiguous, else the shortest unambiguous label, longer than ``width``. Wherever a label
    is shown, show the whole text on hover (a title or tooltip).

    Examples
    --------
    >>> keys = ["teacher/Conv_1_bn/gamma/ExponentialMovingAverage", "teacher/Conv_1_bn/beta/ExponentialMovingAverage"]
    >>> list(short_labels(keys, 32).values())
    ['…/gamma/ExponentialMovingAverage', '…/beta/ExponentialMovingAverage']
    >>> list(short_labels(keys, 22).values())
    ['…/gamma/…MovingAverage', '…/beta/…lMovingAverage']
    >>> short_labels(["a/b", "c"], 10)
    {'a/b': 'a/b', 'c': 'c'}
    """
    texts = list(dict.fromkeys(str(t) for t in texts))
    width = max(int(width), 4)
    by_last: dict[str, list[str]] = {}
    for text in texts:
        by_last.setdefault(text.rsplit(sep, 1)[-1], []).append(text)
    # Components every text starts with say nothing about any of them: leaving them out is free.
    split = [t.split(sep)[:-1] for t in texts]
    common = 0
    while split and all(len(p) > common and p[common] == split[0][common] for p in split):
        common += 1
    return {text: text if len(text) <= width else _short_label(text, width, sep, texts, by_last, common)
            for text in texts}


#: The shortest end of a last component a label keeps ("…Average"), unless nothing else fits.
_MIN_END = 7


def _short_label(text: str, width: int, sep: str, texts: list[str], by_last: dict, common: int) -> str:
    parts = text.split(sep)
    n = len(parts)
    # Only texts with the same last component can read as a label that keeps it.
    rivals = [t for t in by_last.get(parts[-1], []) if t != text]

    def unique(pieces):
        return not any(_matches(pieces, sep, t) for t in rivals)

    kept_sets = set()
    for head in (1, 0):
        for tail in range(1, n - head):
            kept = tuple(range(head)) + tuple(range(n - tail, n))
            kept_sets.add(kept)
            middles = range(head, n - tail)  # one or two more components from the middle
            for first in middles:
                kept_sets.add(tuple(sorted(kept + (first,))))
                for second in middles:
                    if second > first:
                        kept_sets.add(tuple(sorted(kept + (first, second))))
    for shortest_end in (_MIN_END, 3):
        best = None
        for kept in kept_sets:
            pieces = _elided(parts, kept)
            over = len(_label_of(pieces, sep)) - width
            cut = 0
            if over > 0:  # the start of the last component goes too ("…MovingAverage")
                cut = over + 1
                if len(parts[-1]) - cut < shortest_end:
                    continue
                pieces = pieces[:-1] + [ELLIPSIS + parts[-1][cut:]]
            if not unique(pieces):
                continue
            # Fewest telling components left out, then fewest characters cut, then the longest label.
            label = _label_of(pieces, sep)
            dropped = sum(1 for i in range(common, n) if i not in kept)
            score = (dropped, cut, -len(label), label)
            if best is None or score < best:
                best = score
        if best is not None:
            return best[3]
        end = ELLIPSIS + text[len(text) - (width - 1):]
        if not any(t.endswith(end[1:]) for t in texts if t != text):
            return end  # the end of the text tells it apart
    # Nothing fits: the shortest label that still tells it apart, longer than width.
    labels = [_label_of(_elided(parts, kept), sep) for kept in kept_sets
              if unique(_elided(parts, kept))]
    shortest = min(labels, key=len, default=text)
    return shortest if len(shortest) < len(text) else text


def text_table(headers, rows, max_widths=None) -> str:
    """Rows as a left-aligned plain-text table (the widgets' ``text/plain`` repr).

    Examples
    --------
    >>> print(text_table(["key", "shape"], [["v1", "[1]"], ["v2", "[1]"]]))
    key  shape
    v1   [1]
    v2   [1]
    """
    headers = [str(h) for h in headers]
    rows = [[str(c) for c in row] for row in rows]
    if max_widths:
        rows = [[shorten(c, w) if w else c for c, w in zip(row, max_widths)] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row)]
    lines = [headers] + rows
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines)


def first_lines(text: str, limit: int, what: str = "lines") -> str:
    """At most ``limit`` lines of ``text``, then a note saying how many were left out.

    Widgets show long generated text (code, reports) this way so the state sent to the
    browser stays small.

    Examples
    --------
    >>> first_lines("a\\nb\\nc", 2)
    'a\\nb\\n... 1 more lines'
    """
    lines = text.splitlines()
    if len(lines) <= limit:
        return text
    return "\n".join(lines[:limit] + [f"... {len(lines) - limit} more {what}"])
