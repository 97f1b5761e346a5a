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

__all__ = ["Transform", "IDENTITY", "permute", "transpose", "reshape", "chain"]


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
            raise ValueError(f"transform {self.name!r} takes {self.arity} tensor(s), got {len(arrays)}")
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
    t = permute((1, 0), "transpose")
    t._inverse = transpose
    return t


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
