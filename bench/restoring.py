"""3. Restoring a ResNet-50-sized checkpoint (with EMA shadows) against ``Saver(plan.var_list)``.

The plan reads the shadows (``prefer_ema=True``): 214 shadow keys and 106 batch-norm
statistics into ResNet-50's 320 variables, 102 MB of the checkpoint's 205 MB. Both sides
are timed after a first call (which builds their graph ops), reading from the page cache.
The floor is a plain numpy copy of the same bytes between arrays already in memory.
"""
from __future__ import annotations

import math

import numpy as np

from . import _inputs
from ._timing import compare, ratio_row

NAME = "restoring"
TARGET = 1.10


def _check(plan, ckpt, read):
    """Every variable holds what the checkpoint has under its key (a sample of them)."""
    for key, var in list(plan.var_list.items())[::37]:
        np.testing.assert_array_equal(read(var), ckpt.read(key))


def run(ctx):
    import tensorflow as tf

    from ckptwidgets import open_checkpoint
    from ckptwidgets.plan import plan_restore
    from ckptwidgets.restore import restore

    width = ctx.resnet_width
    ctx.log(f"restoring: building/reusing ResNet-50 checkpoint (width 1/{width})")
    prefix = _inputs.resnet50(width, ctx.out)
    ckpt = open_checkpoint(prefix)
    specs = [(name, shape) for name, shape, _ in _inputs.resnet50_shapes(width)]
    params = sum(math.prod(s) for _, s in specs)
    size = f"{params / 1e6:.1f} M parameters" if params >= 1e6 else f"{params:,} parameters"
    rows = []

    # --- graph mode
    ctx.log("restoring: graph mode")
    graph = tf.Graph()
    variables = _inputs.graph_variables(graph, specs)
    plan = plan_restore(ckpt, variables, prefer_ema=True)
    assert plan.ok and not plan.unmapped, plan
    nbytes = sum(ckpt[k].nbytes for k in plan.mapping.values())
    with graph.as_default():
        saver = tf.compat.v1.train.Saver(plan.var_list)
    sess = tf.compat.v1.Session(graph=graph)
    try:
        with graph.as_default():  # Saver.restore outside its graph would try to build eager ops
            restore(plan, session=sess)
            _check(plan, ckpt, sess.run)
            g_ours, g_base = compare(lambda: restore(plan, session=sess), lambda: saver.restore(sess, prefix),
                                     ctx.fast_repeats, ctx.warmup)
    finally:
        sess.close()
    rows.append(ratio_row(NAME, f"`restore(plan, session=sess)`, ResNet-50 ({size}) from its EMA shadows, graph mode",
                          g_ours, g_base, "`Saver(plan.var_list).restore(sess, p)`", TARGET))

    # --- eager mode
    ctx.log("restoring: eager mode")
    variables = _inputs.eager_variables(specs)
    plan = plan_restore(ckpt, variables, prefer_ema=True)
    assert plan.ok and not plan.unmapped, plan
    saver = tf.compat.v1.train.Saver(plan.var_list)
    restore(plan)
    _check(plan, ckpt, lambda v: v.numpy())
    e_ours, e_base = compare(lambda: restore(plan), lambda: saver.restore(None, prefix), ctx.fast_repeats, ctx.warmup)
    rows.append(ratio_row(NAME, "`restore(plan)`, the same, eager mode", e_ours, e_base,
                          "`Saver(plan.var_list).restore(None, p)`", TARGET))

    # --- the floor: copying the same bytes in memory
    ctx.log("restoring: numpy floor")
    sources = [ckpt.read(k) for k in plan.var_list]
    targets = [np.empty_like(s) for s in sources]
    assert sum(s.nbytes for s in sources) == nbytes

    def copy():
        for target, source in zip(targets, sources):
            np.copyto(target, source)

    floor_ours, floor = compare(lambda: restore(plan), copy, ctx.fast_repeats, ctx.warmup)
    rows.append(ratio_row(NAME, f"`restore(plan)`, eager, against the floor ({nbytes / 1e6:.0f} MB)",
                          floor_ours, floor, "numpy copy of the same bytes", None))
    return rows
