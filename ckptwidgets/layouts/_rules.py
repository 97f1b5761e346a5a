"""What every layer converter shares: the mapping type, the error, the check of each rule.

A converter (``_to_torch.py``, ``_to_keras.py``) says, per target tensor, which source
tensors it comes from and through which :class:`~._transform.Transform`; :func:`build`
checks that every target tensor has a rule, that its sources exist, that the transform
gives exactly the target's shape, and that no source tensor is left over (a bias that has
no place would be lost silently). Each failure is a :class:`LayoutError` naming the layer
kinds and both shapes.
"""
from __future__ import annotations

from typing import NamedTuple

from ._transform import Transform

__all__ = ["LayoutError", "LayerMapping", "build", "shape_text"]


class LayoutError(ValueError):
    """A target tensor's layout cannot be decided from the source layer's tensors (named with both shapes)."""


class LayerMapping(NamedTuple):
    """One target tensor of a layer: made by ``transform(*[source[name] for name in sources])``."""

    target: str
    sources: tuple
    transform: Transform


def shape_text(shape) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _sources_text(kind: str, source: dict, names) -> str:
    return " + ".join(f"{kind} {n} {shape_text(source[n])}" for n in names)


def _fits(got, want) -> bool:
    return len(got) == len(want) and all(w is None or g == w for g, w in zip(got, want))


def build(kind: str, source_kind: str, target: dict, source: dict, rules: dict,
          skip_target=(), skip_source=(), advice: str = "") -> list:
    """The checked :class:`LayerMapping` of every target tensor, by ``rules``.

    ``rules``: ``{target name: (source names, transform)}``, where ``transform`` is a
    :class:`Transform` or ``factory(target_shape, *source_shapes) -> Transform`` (for
    transforms that need the shapes, such as a reshape into heads). ``skip_target`` /
    ``skip_source``: bookkeeping that has no mapping (torch's ``num_batches_tracked``).
    """
    mappings, used = [], set()
    for name, shape in target.items():
        if name in skip_target:
            continue
        if name not in rules:
            raise LayoutError(f"{kind} {name} {shape_text(shape)} has no counterpart in a {source_kind} "
                              f"(it has {', '.join(source) or 'no tensors'}){advice}")
        names, transform = rules[name]
        missing = [n for n in names if n not in source]
        if missing:
            raise LayoutError(f"{kind} {name} {shape_text(shape)} cannot come from {source_kind}: it has no "
                              f"{missing[0]} (it has {', '.join(f'{n} {shape_text(s)}' for n, s in source.items()) or 'no tensors'})"
                              f"{advice}")
        shapes = [tuple(source[n]) for n in names]
        wrong = f"{kind} {name} {shape_text(shape)} cannot come from {_sources_text(source_kind, source, names)}"
        try:
            if not isinstance(transform, Transform):
                transform = transform(tuple(shape), *shapes)
            got = transform.shape(*shapes)
        except (ValueError, TypeError, IndexError, ZeroDivisionError) as error:
            raise LayoutError(f"{wrong} ({error}){advice}") from None
        if not _fits(got, tuple(shape)):
            raise LayoutError(f"{wrong} ({transform.name} gives {shape_text(got)}){advice}")
        mappings.append(LayerMapping(name, tuple(names), transform))
        used.update(names)
    left = [n for n in source if n not in used and n not in skip_source]
    if left:
        raise LayoutError(f"{_sources_text(source_kind, source, left[:1])} has no place in {kind} "
                          f"(it has {', '.join(f'{n} {shape_text(s)}' for n, s in target.items())}){advice}")
    return mappings
