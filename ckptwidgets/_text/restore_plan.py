"""A :class:`~ckptwidgets.plan.RestorePlan` as text: ``repr(plan)`` sums it up, ``print(plan)``
shows which key goes into which variable, as ``print(write_plan)`` shows what a write makes.

Example
-------
>>> import numpy as np, tensorflow as tf
>>> import ckptwidgets
>>> from ckptwidgets.sources.arrays import ArraySource
>>> ckpt = ckptwidgets.Checkpoint(ArraySource({"mlp/w": np.ones((2, 3), np.float32), "step": np.int64(7)}, "demo.ckpt"))
>>> w, b = tf.Variable(tf.zeros((2, 3)), name="net/w"), tf.Variable(tf.zeros(3), name="net/b")
>>> print(ckptwidgets.plan_restore(ckpt, [w, b], rules={"mlp/": "net/"}))
RestorePlan 'demo.ckpt': 2 variables, 1 mapped, 1 unmapped, 0 problems, 1 unused entry
variable  reads  shape
net/w     mlp/w  [2, 3]
Unmapped (1): 'net/b'
Unused entries (1): 'step'
"""
from __future__ import annotations

from .format import count_of, format_shape, text_table

# pandas shows 60 rows, then the first and the last few: a plan of thousands of variables
# printed in a notebook stays a screen or two. ``plan.mapping`` has them all.
MAX_ROWS = 60
MAX_NAMES = 10


def summary(plan) -> str:
    """The counts: ``RestorePlan 'model.ckpt': 4 variables, 2 mapped, 2 unmapped, 0 problems, 1 unused entry``."""
    counts = [
        count_of(len(plan.infos), "variable"), f"{len(plan.mapping)} mapped", f"{len(plan.unmapped)} unmapped",
        count_of(len(plan.problems), "problem"), count_of(len(plan.unused), "unused entry", "unused entries"),
    ]
    return f"RestorePlan {plan.checkpoint.prefix!r}: " + ", ".join(counts)


def plan_repr(plan) -> str:
    """``repr(plan)``: the counts, the first problems, the transforms and the hints."""
    problems, mapping = plan.problems, plan.mapping
    transforms = [name for name in plan.transforms if name in mapping]
    lines = [f"<{summary(plan)}>"]
    lines += [f"  {problem.reason}: {problem.message}" for problem in problems[:3]]
    if len(problems) > 3:
        lines.append(f"  ... and {len(problems) - 3} more problems")
    for name in transforms[:10]:
        lines.append(f"  transform: {name!r} <- {_reads(plan, name, quote=True)}")
    if len(transforms) > 10:
        lines.append(f"  ... and {len(transforms) - 10} more transforms")
    lines += [f"  hint: {hint}" for hint in plan.hints]
    return "\n".join(lines)


def plan_text(plan) -> str:
    """``print(plan)``: the counts, a row per mapped variable (what it reads, its shape), then the
    unmapped variables, the unused entries, every problem and the hints."""
    mapping = plan.mapping
    names = list(mapping)
    shown = names if len(names) <= MAX_ROWS else names[: MAX_ROWS // 2] + [None] + names[-MAX_ROWS // 2:]
    infos = plan.infos
    rows = [["...", f"({len(names) - MAX_ROWS} more)", ""] if name is None
            else [name, _reads(plan, name), format_shape(infos[name].shape)] for name in shown]
    lines = [summary(plan)]
    lines.append(text_table(["variable", "reads", "shape"], rows) if rows else "  (no variable mapped)")
    for title, items in (("Unmapped", plan.unmapped), ("Unused entries", [entry.key for entry in plan.unused])):
        if items:
            listed = ", ".join(map(repr, items[:MAX_NAMES]))
            more = f" and {len(items) - MAX_NAMES} more" if len(items) > MAX_NAMES else ""
            lines.append(f"{title} ({len(items)}): {listed}{more}")
    lines += [f"PROBLEM {problem.reason}: {problem.message}" for problem in plan.problems]
    lines += [f"hint: {hint}" for hint in plan.hints]
    return "\n".join(lines)


def _reads(plan, name: str, quote: bool = False) -> str:
    """What a mapped variable reads: its key, or ``transpose('dense/kernel')``."""
    found = plan.transform_of(name)
    if found is None:
        key = plan.mapping[name]
        return repr(key) if quote else key
    transform, keys = found
    return f"{transform.name}({', '.join(map(repr, keys))})"
