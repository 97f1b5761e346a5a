"""The mapper's key candidates in O(limit) per variable.

:meth:`RestorePlan.candidates <ckptwidgets.plan.RestorePlan.candidates>` defines the order
(compatible entries first: the current key, the exact name, its EMA shadow, entries with
the variable's last name segment, the other compatible ones by key; then the rest by key).
It scans every compatible entry per call, which for 10,000 same-shaped entries costs
milliseconds per row, and the mapper asks for a page of rows at once. :class:`CandidateIndex`
gives the same list from indexes built once per checkpoint, stopping at ``limit``.
Variables with an unknown dimension fall back to ``plan.candidates``.

Example
-------
>>> index = CandidateIndex(plan.checkpoint)                          # doctest: +SKIP
>>> index.candidates(plan, "v", (), "float32", limit=50) == plan.candidates("v", limit=50)  # doctest: +SKIP
True
"""
from __future__ import annotations

from .reader import EMA_SEGMENT, OBJECT_GRAPH_KEY, VALUE_SUFFIX

__all__ = ["CandidateIndex"]


class CandidateIndex:
    """Entries of one checkpoint indexed by (shape, dtype) and by (shape, dtype, last name segment)."""

    def __init__(self, checkpoint):
        self.checkpoint = checkpoint
        self._listed = []
        self._by_signature: dict = {}
        self._by_leaf: dict = {}
        for entry in checkpoint.entries:  # sorted by key, so every list below is too
            # As plan.candidates: never the object graph or other object metadata.
            if entry.key == OBJECT_GRAPH_KEY or ("/.ATTRIBUTES/" in entry.key and not entry.key.endswith(VALUE_SUFFIX)):
                continue
            self._listed.append(entry)
            signature = (entry.shape, entry.dtype)
            self._by_signature.setdefault(signature, []).append(entry)
            self._by_leaf.setdefault(signature + (entry.name.rpartition("/")[2],), []).append(entry)

    def candidates(self, plan, name: str, shape, dtype: str, limit: int, current: str | None = None) -> list:
        """``plan.candidates(name, limit)`` for a variable of static ``shape`` and ``dtype``.

        ``current`` is the variable's key in the plan (passed in: ``plan.mapping`` copies
        the whole mapping on every access).
        """
        if shape is None or None in shape:
            return plan.candidates(name, limit=limit)
        signature = (tuple(shape), dtype)
        find = self.checkpoint.find
        out, seen = [], set()

        def add(entry) -> bool:
            if entry.key not in seen:
                seen.add(entry.key)
                out.append(entry)
            return len(out) >= limit

        for key in (current, name, f"{name}/{EMA_SEGMENT}"):
            entry = find(key) if key else None
            if entry is not None and (entry.shape, entry.dtype) == signature and add(entry):
                return out
        for group in (self._by_leaf.get(signature + (name.rpartition("/")[2],), ()),
                      self._by_signature.get(signature, ()), self._listed):
            for entry in group:
                if add(entry):
                    return out
        return out
