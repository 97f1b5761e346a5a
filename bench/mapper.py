"""5. The mapper view: its own cost must not grow with the checkpoint, nor its widget state.

``VariableMapper(ckpt, variables)`` on the 10,000-entry checkpoint minus
``plan_restore(ckpt, variables)`` on the same inputs is what the view adds; it must stay
within 3x of building the whole mapper on a 10-entry checkpoint. The state sent to the
front end is every widget reachable from the mapper (children, layouts, styles, any
widget-valued trait), serialized as ipywidgets does (JSON plus binary buffers).
"""
from __future__ import annotations

import json

from . import _inputs
from ._timing import Row, Sample, format_bytes, format_seconds, ratio_sample, timed
from .planning import variable_specs

NAME = "mapper"
TARGET = 3.0
STATE_LIMIT = 1_000_000


def reachable_widgets(root) -> list:
    """Every widget reachable from ``root`` through its synced traits."""
    import ipywidgets

    def inside(value):
        if isinstance(value, ipywidgets.Widget):
            yield value
        elif isinstance(value, (list, tuple)):
            for item in value:
                yield from inside(item)
        elif isinstance(value, dict):
            for item in value.values():
                yield from inside(item)

    seen, stack = {}, [root]
    while stack:
        widget = stack.pop()
        if id(widget) in seen:
            continue
        seen[id(widget)] = widget
        for name in widget.keys:
            stack.extend(inside(getattr(widget, name)))
    return list(seen.values())


def state_bytes(root) -> tuple[int, int]:
    """``(bytes, widgets)``: the serialized state of every widget reachable from ``root``."""
    from ipywidgets.widgets.widget import _remove_buffers

    total, found = 0, reachable_widgets(root)
    for widget in found:
        state, _paths, buffers = _remove_buffers(widget.get_state())
        total += len(json.dumps(state, ensure_ascii=False).encode()) + sum(len(memoryview(b).cast("B")) for b in buffers)
    return total, len(found)


def _close(root) -> None:
    for widget in reachable_widgets(root):
        widget.close()


def run(ctx):
    from ckptwidgets import open_checkpoint
    from ckptwidgets.plan import plan_restore
    from ckptwidgets.widgets import VariableMapper

    n, m = ctx.entries, ctx.small_entries
    big_ckpt = open_checkpoint(_inputs.many_entries(n, ctx.out))
    small_ckpt = open_checkpoint(_inputs.many_entries(m, ctx.out))
    ctx.log(f"mapper: making {n + m:,} eager variables")
    big_vars = _inputs.eager_variables(variable_specs(big_ckpt, n))
    small_vars = _inputs.eager_variables(variable_specs(small_ckpt, m))

    def build(ckpt, variables, cpu=None):
        box = []
        seconds = timed(lambda: box.append(VariableMapper(ckpt, variables)), cpu)
        return seconds, box[0]

    for _ in range(ctx.warmup):
        _close(build(big_ckpt, big_vars)[1])
        _close(build(small_ckpt, small_vars)[1])
    ctx.log("mapper: timing")
    whole_big, plan_big, whole_small = Sample(), Sample(), Sample()
    view, big_state, small_state = None, None, None
    for i in range(ctx.fast_repeats):
        seconds, mapper = build(big_ckpt, big_vars, whole_big.cpu)
        whole_big.values.append(seconds)
        if big_state is None:
            big_state = state_bytes(mapper)
            assert len(mapper.plan.variables) == n
        _close(mapper)
        plan_big.values.append(timed(lambda: plan_restore(big_ckpt, big_vars), plan_big.cpu))
        seconds, mapper = build(small_ckpt, small_vars, whole_small.cpu)
        whole_small.values.append(seconds)
        if small_state is None:
            small_state = state_bytes(mapper)
        _close(mapper)
    view = Sample([w - p for w, p in zip(whole_big.values, plan_big.values)],
                  [w - p for w, p in zip(whole_big.cpu, plan_big.cpu)])
    r = ratio_sample(view, whole_small)
    r_cpu = ratio_sample(view, whole_small, cpu=True)
    rows = [Row(
        NAME,
        f"`VariableMapper` own cost ({n:,} entries: construction {format_seconds(whole_big)} "
        f"minus `plan_restore` {format_seconds(plan_big)})",
        format_seconds(view),
        f"whole construction, {m} entries: {format_seconds(whole_small)}",
        f"{r.median:.2f}x ± {r.spread:.2f} (CPU time {r_cpu.median:.2f}x)",
        f"≤ {TARGET:g}x",
        r.median,
        TARGET,
    )]
    (big_bytes, big_count), (small_bytes, small_count) = big_state, small_state
    rows.append(Row(
        NAME,
        f"`VariableMapper` widget state sent to the front end, {n:,} entries ({big_count} widgets)",
        format_bytes(big_bytes),
        f"{m} entries ({small_count} widgets): {format_bytes(small_bytes)}",
        f"{big_bytes / small_bytes:.2f}x",
        f"≤ {format_bytes(STATE_LIMIT)}",
        big_bytes,
        STATE_LIMIT,
    ))
    return rows  # the variables go with this frame
