"""Partitioned variables: where one part variable sits in its full tensor, for restoring it.

TF1's ``partitioner=`` variables are saved as slices of one full key (how the bundle stores
and reads them: :mod:`ckptwidgets.sources.bundle`). Restoring needs, per part variable:

- :class:`Part`, where the part sits in its full tensor, with the ``shape_and_slices``
  spec ``RestoreV2`` takes (``"10 3 0,4:0,3"``, as ``tf.Variable.SaveSliceInfo.spec``
  writes it) and the numpy index of its slice;
- :func:`var_list_names`, a plan's mapping as ``Saver`` var_lists (parts in one list).

Example
-------
>>> Part("w", "w", (10, 3), (4, 0), (3, 3)).spec
'10 3 4,3:0,3'
>>> str(Part("w", "w", (10, 3), (4, 0), (3, 3)))
"[4:7, 0:3] of 'w'"
"""
from __future__ import annotations

import math
from typing import NamedTuple

__all__ = ["Part", "var_list_names"]


# --- a part variable's place in its full tensor -------------------------------------------


class Part(NamedTuple):
    """Where one part of a partitioned variable sits in the full tensor.

    Attributes
    ----------
    full_name : str
        The name of the whole variable in the plan: what rules and exact names match.
    slice_name : str
        ``SaveSliceInfo.full_name``: parts restored from one key in one ``Saver`` list must
        agree on it.
    full_shape, offset, shape : tuple of int
        The full tensor's shape, the part's offset in it and the part's own shape.
    """

    full_name: str
    slice_name: str
    full_shape: tuple
    offset: tuple
    shape: tuple

    @property
    def spec(self) -> str:
        """The ``shape_and_slices`` string of ``RestoreV2`` (``SaveSliceInfo.spec``): ``"10 3 0,4:0,3"``."""
        return " ".join(map(str, self.full_shape)) + " " + ":".join(f"{o},{s}" for o, s in zip(self.offset, self.shape))

    @property
    def box(self) -> tuple:
        return tuple((o, o + s) for o, s in zip(self.offset, self.shape))

    @property
    def index(self) -> tuple:
        """The numpy index of the part in the full array: ``(slice(0, 4), slice(0, 3))``."""
        return tuple(slice(o, o + s) for o, s in zip(self.offset, self.shape))

    @property
    def fraction(self) -> float:
        """The part's share of the full tensor's elements (its share of the bytes)."""
        total = math.prod(self.full_shape)
        return math.prod(self.shape) / total if total else 0.0

    def __str__(self) -> str:
        from ..sources.bundle import format_box  # the bundle's slice text; imported when shown

        return f"{format_box(self.box)} of {self.full_name!r}"


def var_list_names(mapping: dict, infos: dict) -> list[dict]:
    """``{name: key}`` as dicts of distinct keys, ``[{key: name or [part names]}]``: one
    ``Saver`` var_list (or ``init_from_checkpoint`` assignment map) per dict.

    A key read by several variables goes into one dict per variable. The parts of one
    partitioned variable read from one key count as one variable: a list in one dict, as
    ``Saver`` takes them (they must agree on ``SaveSliceInfo.full_name``, ``slice_name``).
    ``infos`` maps names to what has a ``.part`` (:class:`Part` or None).

    Examples
    --------
    >>> from types import SimpleNamespace as V
    >>> p = lambda i: V(part=Part("w", "w", (4,), (2 * i,), (2,)))
    >>> infos = {"w/part_0": p(0), "w/part_1": p(1), "copy": V(part=None)}
    >>> var_list_names({"w/part_0": "w", "w/part_1": "w", "copy": "w"}, infos)
    [{'w': ['w/part_0', 'w/part_1']}, {'w': 'copy'}]
    """
    lists: list[dict] = []
    seen: dict[str, int] = {}
    slices: dict[tuple, list] = {}  # (key, slice name) -> the list of part names in a dict
    for name, key in mapping.items():
        part = infos[name].part
        if part is not None:
            group = slices.get((key, part.slice_name))
            if group is not None:
                group.append(name)
                continue
        n = seen.get(key, 0)
        seen[key] = n + 1
        if n == len(lists):
            lists.append({})
        if part is None:
            lists[n][key] = name
        else:
            lists[n][key] = slices[(key, part.slice_name)] = [name]
    return lists
