"""A layout transform: how a target tensor is made from one or more source tensors.

Private core of :mod:`ckptwidgets.layouts`. A :class:`Transform` is a small value object
(NumPy in, NumPy out, no framework import) that a plan carries per assignment and shows
wherever the assignment is shown: :attr:`Transform.name` in ``print(plan)`` and the
mapper's column, :meth:`Transform.code` in ``to_code``. One-to-one transforms know their
inverse, so a mapping read one way can be written the other way.

Example
-------
>>> import numpy as np
>>> t = transpose()
>>> t.name, t.shape((3, 2)), t(np.arange(6).reshape(3, 2)).tolist()
('transpose', (2, 3), [[0, 2, 4], [1, 3, 5]])
>>> t.code("x")
'np.transpose(x, (1, 0))'
>>> hwio_to_oihw = permute((3, 2, 0, 1), "HWIO->OIHW")
>>> hwio_to_oihw.inverse().name, hwio_to_oihw.inverse().shape((8, 4, 3, 3))
('OIHW->HWIO', (3, 3, 4, 8))
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .._text.format import count_of

__all__ = ["Transform", "IDENTITY", "permute", "transpose", "reshape", "chain",
           "take", "part", "concat", "parts_of", "sum_of", "zeros_like", "reorder_blocks"]


class Transform:
    """How a target tensor is computed from its source tensors (in the order of the plan's keys).

    Parameters
    ----------
    name : str
        What a plan shows: ``"transpose"``, ``"HWIO->OIHW"``, ``"sum"``.
    apply : callable
        ``apply(*arrays) -> ndarray``.
    shape : callable
        ``shape(*shapes) -> tuple``: the target shape for these source shapes (checked
        against the variable's before anything runs).
    code : callable
        ``code(*expressions) -> str``: a NumPy expression for ``to_code`` (``np`` imported).
    inverse : callable, optional
        Returns the inverse :class:`Transform` (one-to-one transforms only).
    arity : int
        How many source tensors it takes.
    """

    __slots__ = ("name", "_apply", "_shape", "_code", "_inverse", "arity")

    def __init__(self, name: str, apply: Callable, shape: Callable, code: Callable,
                 inverse: Callable | None = None, arity: int = 1):
        self.name, self._apply, self._shape, self._code = name, apply, shape, code
        self._inverse, self.arity = inverse, arity

    def __call__(self, *arrays) -> np.ndarray:
        if len(arrays) != self.arity:
            raise ValueError(f"transform {self.name!r} takes {count_of(self.arity, 'tensor')}, got {len(arrays)}")
        return np.ascontiguousarray(self._apply(*(np.asarray(a) for a in arrays)))

    def shape(self, *shapes) -> tuple:
        """The target shape for source ``shapes``; ``ValueError`` when they cannot be transformed."""
        return tuple(int(d) for d in self._shape(*(tuple(s) for s in shapes)))

    def code(self, *expressions: str) -> str:
        return self._code(*expressions)

    @property
    def invertible(self) -> bool:
        return self._inverse is not None

    def inverse(self) -> Transform:
        """The transform that undoes this one; ``ValueError`` for one that loses information."""
        if self._inverse is None:
            raise ValueError(f"transform {self.name!r} has no inverse")
        return self._inverse()

    @property
    def is_identity(self) -> bool:
        return self is IDENTITY

    def __repr__(self) -> str:
        return f"Transform({self.name!r})"


IDENTITY = Transform("as is", lambda a: a, lambda s: s, lambda x: x, inverse=lambda: IDENTITY)


def _inverse_axes(axes: Sequence[int]) -> tuple:
    return tuple(int(i) for i in np.argsort(axes))


def _swap_name(name: str) -> str:
    left, arrow, right = name.partition("->")
    return f"{right}->{left}" if arrow else f"inverse of {name}"


def permute(axes: Sequence[int], name: str | None = None) -> Transform:
    """``np.transpose(x, axes)``; its inverse permutes back (``"A->B"`` names become ``"B->A"``)."""
    axes = tuple(int(a) for a in axes)
    label = name or f"permute{axes}"

    def shape(s):
        if len(s) != len(axes):
            raise ValueError(f"{label} needs a rank-{len(axes)} tensor, got shape {list(s)}")
        return tuple(s[a] for a in axes)

    return Transform(label, lambda a: np.transpose(a, axes), shape, lambda x: f"np.transpose({x}, {axes})",
                     inverse=lambda: permute(_inverse_axes(axes), _swap_name(label) if name else None))


def transpose() -> Transform:
    """A 2-D transpose: Keras' Dense kernel ``[in, out]`` <-> torch's Linear weight ``[out, in]``."""
    swap = permute((1, 0), "transpose")
    return Transform("transpose", swap, swap.shape, swap.code, inverse=transpose)


def reshape(target: Sequence[int], source: Sequence[int] | None = None, name: str | None = None) -> Transform:
    """``x.reshape(target)`` (same element count); with ``source`` given, its inverse reshapes back."""
    target = tuple(int(d) for d in target)
    label = name or f"reshape{list(target)}"

    def shape(s):
        if int(np.prod(s, dtype=np.int64)) != int(np.prod(target, dtype=np.int64)):
            raise ValueError(f"{label}: shape {list(s)} has {int(np.prod(s))} elements, not {int(np.prod(target))}")
        return target

    inverse = None if source is None else (lambda: reshape(source, target, _swap_name(label) if name else None))
    return Transform(label, lambda a: a.reshape(target), shape, lambda x: f"{x}.reshape({target})", inverse=inverse)


def chain(*transforms: Transform, name: str | None = None) -> Transform:
    """Apply ``transforms`` left to right (each one-to-one but the first, which may take several)."""
    first, rest = transforms[0], transforms[1:]
    label = name or " then ".join(t.name for t in transforms)

    def apply(*arrays):
        value = first(*arrays)
        for t in rest:
            value = t(value)
        return value

    def shape(*shapes):
        s = first.shape(*shapes)
        for t in rest:
            s = t.shape(s)
        return s

    def code(*xs):
        text = first.code(*xs)
        for t in rest:
            text = t.code(text)
        return text

    inverse = None
    if all(t.invertible for t in transforms):
        inverse = lambda: chain(*(t.inverse() for t in reversed(transforms)), name=_swap_name(label) if name else None)  # noqa: E731
    return Transform(label, apply, shape, code, inverse=inverse, arity=first.arity)


# --- building blocks of the layer converters: several tensors in, parts out, gates reordered ---


def take(axis: int, index: int, name: str | None = None) -> Transform:
    """``x[index]`` along ``axis`` (that axis removed): GRU's ``[2, 3u]`` bias -> its row ``index``."""
    label = name or f"row {index}"

    def shape(s):
        if not -len(s) <= axis < len(s) or not 0 <= index < s[axis]:
            raise ValueError(f"{label}: shape {list(s)} has no index {index} on axis {axis}")
        return s[:axis % len(s)] + s[axis % len(s) + 1:]

    return Transform(label, lambda a: np.take(a, index, axis=axis), shape,
                     lambda x: f"np.take({x}, {index}, axis={axis})")


def part(axis: int, start: int, stop: int, name: str | None = None) -> Transform:
    """``x[start:stop]`` along ``axis``: one source of a :func:`concat`, cut back out."""
    label = name or f"[{start}:{stop}] of axis {axis}"

    def shape(s):
        if not -len(s) <= axis < len(s) or not 0 <= start < stop <= s[axis]:
            raise ValueError(f"{label}: shape {list(s)} has no [{start}:{stop}] on axis {axis}")
        return s[:axis % len(s)] + (stop - start,) + s[axis % len(s) + 1:]

    def apply(a):
        index = [slice(None)] * a.ndim
        index[axis] = slice(start, stop)
        return a[tuple(index)]

    return Transform(label, apply, shape,
                     lambda x: f"np.take({x}, np.arange({start}, {stop}), axis={axis})")


def concat(axis: int, n: int, each: Transform = IDENTITY, name: str | None = None, stack: bool = False) -> Transform:
    """``n`` sources, each through ``each``, joined along ``axis`` (a new axis when ``stack``).

    Many-to-one, so it has no :meth:`Transform.inverse`: :func:`parts_of` gives the slices
    that take it apart again. torch's fused ``in_proj_weight`` is ``concat(0, 3, ...)`` of
    the query, key and value kernels; Keras' GRU bias ``[2, 3u]`` is a ``stack`` of two.
    """
    join, joined = ("np.stack", np.stack) if stack else ("np.concatenate", np.concatenate)
    label = name or ("stack" if stack else "concatenate")

    def shape(*shapes):
        parts = [each.shape(s) for s in shapes]
        if stack:
            if len(set(parts)) != 1:
                raise ValueError(f"{label}: shapes {[list(p) for p in parts]} differ")
            return parts[0][:axis] + (n,) + parts[0][axis:]
        if len({p[:axis] + p[axis + 1:] for p in parts}) != 1 or any(len(p) <= axis for p in parts):
            raise ValueError(f"{label}: shapes {[list(p) for p in parts]} cannot be joined on axis {axis}")
        return parts[0][:axis] + (sum(p[axis] for p in parts),) + parts[0][axis + 1:]

    return Transform(label, lambda *arrays: joined([each(a) for a in arrays], axis=axis), shape,
                     lambda *xs: f"{join}([{', '.join(each.code(x) for x in xs)}], axis={axis})", arity=n)


def parts_of(axis: int, sizes: Sequence[int], names: Sequence[str] | None = None) -> list:
    """The slices that undo a :func:`concat` along ``axis`` of sources ``sizes`` long."""
    bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(int).tolist()
    names = names or [None] * len(sizes)
    return [part(axis, a, b, name) for a, b, name in zip(bounds, bounds[1:], names)]


def sum_of(n: int = 2) -> Transform:
    """The element-wise sum of ``n`` tensors of one shape: torch's ``bias_ih + bias_hh`` as one Keras bias."""

    def shape(*shapes):
        if len(set(shapes)) != 1:
            raise ValueError(f"sum: shapes {[list(s) for s in shapes]} differ")
        return shapes[0]

    return Transform("sum", lambda *arrays: sum(arrays[1:], arrays[0]), shape,
                     lambda *xs: "(" + " + ".join(xs) + ")", arity=n)


def zeros_like() -> Transform:
    """Zeros of the source's shape and dtype: torch's ``bias_hh`` when one Keras bias went to ``bias_ih``."""
    return Transform("zeros", np.zeros_like, lambda s: s, lambda x: f"np.zeros_like({x})")


def reorder_blocks(order: Sequence[int], axis: int = 0, labels: tuple[str, str] | None = None) -> Transform:
    """Split ``axis`` into ``len(order)`` equal blocks and put block ``order[i]`` at ``i``.

    The gates of recurrent layers: Keras' GRU stacks ``z, r, h``, torch's ``r, z, n``, so
    ``reorder_blocks((1, 0, 2), labels=("z,r,h", "r,z,n"))``, shown as ``"gates z,r,h->r,z,n"``.
    """
    order = tuple(int(i) for i in order)
    label = f"gates {labels[0]}->{labels[1]}" if labels else f"blocks {list(order)}"
    back = tuple(int(i) for i in np.argsort(order))

    def shape(s):
        if not -len(s) <= axis < len(s) or s[axis] % len(order):
            raise ValueError(f"{label}: shape {list(s)} does not split into {len(order)} equal blocks on axis {axis}")
        return s

    def apply(a):
        blocks = np.split(a, len(order), axis=axis)
        return np.concatenate([blocks[i] for i in order], axis=axis)

    def code(x):
        return f"np.concatenate([np.split({x}, {len(order)}, axis={axis})[i] for i in {order}], axis={axis})"

    inverse = lambda: reorder_blocks(back, axis, labels and (labels[1], labels[0]))  # noqa: E731
    return Transform(label, apply, shape, code, inverse=inverse)
