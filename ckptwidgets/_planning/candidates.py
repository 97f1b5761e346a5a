"""Which checkpoint entries a variable could take, in O(limit) per variable.

The mapper asks for a page of dropdowns at once over checkpoints of 10,000 entries, many of
one shape: scanning the compatible entries per variable would cost milliseconds per row.
:class:`CandidateIndex` is built once per checkpoint (and kept on it) and answers from
dictionaries, stopping at ``limit``. A checkpoint builds its index once
(``Checkpoint.candidate_index``) for every plan over it.

Order: compatible shape and dtype first (the current key, the exact name, its EMA shadow,
entries with the variable's last name segment, the other compatible ones by key), then every
other entry by key. What the format keeps as bookkeeping (TF2's object graph,
``Checkpoint.bookkeeping``) is never a candidate.
"""
from __future__ import annotations

from .kinds import EMA_SEGMENT

__all__ = ["CandidateIndex", "shapes_compatible", "fits"]


def shapes_compatible(var_shape, entry_shape) -> bool:
    """True when a variable of static ``var_shape`` (None: unknown rank or dims) can hold the entry."""
    if var_shape is None or var_shape == entry_shape:  # the common case, without a generator
        return True
    return len(var_shape) == len(entry_shape) and all(a is None or a == b for a, b in zip(var_shape, entry_shape))


def fits(shape, dtype: str, entry) -> bool:
    """True when a variable of static ``shape`` and ``dtype`` (names) can take ``entry``: the one check.

    Examples
    --------
    >>> from ckptwidgets.reader import Entry
    >>> e = Entry("w", "w", (2, 3), "float32", 24, "variable", None)
    >>> fits((2, 3), "float32", e), fits((None, 3), "float32", e), fits((3, 2), "float32", e), fits((2, 3), "int32", e)
    (True, True, False, False)
    """
    return entry.dtype == dtype and (shape == entry.shape or shapes_compatible(shape, entry.shape))


class CandidateIndex:
    """Entries of one checkpoint indexed by (shape, dtype) and by (shape, dtype, last name segment)."""

    def __init__(self, checkpoint):
        self.checkpoint = checkpoint
        bookkeeping = checkpoint.bookkeeping
        self.listed = []
        self._by_signature: dict = {}
        self._by_leaf: dict = {}
        self._by_rank: dict = {}
        self._by_dtype: dict = {}
        for entry in checkpoint.entries:  # sorted by key, so every list below is too
            if entry.key in bookkeeping:
                continue
            self.listed.append(entry)
            signature = (entry.shape, entry.dtype)
            self._by_signature.setdefault(signature, []).append(entry)
            self._by_leaf.setdefault(signature + (entry.name.rpartition("/")[2],), []).append(entry)
            self._by_rank.setdefault((len(entry.shape), entry.dtype), []).append(entry)
            self._by_dtype.setdefault(entry.dtype, []).append(entry)

    def compatible(self, shape, dtype: str) -> list:
        """Entries a variable of static ``shape`` and ``dtype`` can hold, by key."""
        if shape is None:
            return self._by_dtype.get(dtype, [])
        if None not in shape:
            return self._by_signature.get((tuple(shape), dtype), [])
        return [e for e in self._by_rank.get((len(shape), dtype), []) if shapes_compatible(shape, e.shape)]

    def candidates(self, name: str, shape, dtype: str, limit: int | None = None, current: str | None = None) -> list:
        """Candidate entries for variable ``name``, best first; at most ``limit`` of them."""
        find, bookkeeping = self.checkpoint.find, self.checkpoint.bookkeeping
        known = shape is not None and None not in shape
        compatible = self.compatible(shape, dtype)
        leaf = name.rpartition("/")[2]
        if known:
            same_leaf = self._by_leaf.get((tuple(shape), dtype, leaf), ())
        else:  # unknown dimensions: no index for them, filter the (rarer) compatible list
            same_leaf = [e for e in compatible if e.name.rpartition("/")[2] == leaf]
        out, seen = [], set()

        def add(entry) -> bool:
            if entry.key not in seen:
                seen.add(entry.key)
                out.append(entry)
            return limit is not None and len(out) >= limit

        if limit is not None and limit <= 0:
            return out
        for key in (current, name, f"{name}/{EMA_SEGMENT}"):
            entry = find(key) if key else None
            if (
                entry is not None
                and entry.key not in bookkeeping
                and fits(shape, dtype, entry)
                and add(entry)
            ):
                return out
        for group in (same_leaf, compatible, self.listed):
            for entry in group:
                if add(entry):
                    return out
        return out
