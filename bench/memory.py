"""4. Memory: peak RSS growth while opening and planning against a 1 GB checkpoint.

Each measurement runs in a fresh subprocess: import TensorFlow and ckptwidgets, warm up
on a small checkpoint, make graph-mode variables of the big tensors' shapes (never
initialised, so they hold no memory), reset the peak (``/proc/self/clear_refs``), then
open and plan, and read the peak (``VmHWM``) again. Only the index should be read.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from . import _inputs
from ._peak import in_child, peak_growth
from ._timing import Row, Sample, format_bytes

NAME = "memory"
TARGET = 0.05


def _child(kind: str, prefix: str, nbytes: int, small: str) -> dict:
    from ckptwidgets._tf.quiet import import_tensorflow

    tf = import_tensorflow()
    from ckptwidgets import open_checkpoint
    from ckptwidgets.plan import plan_restore

    from .reading import tf_read

    warm_graph = tf.Graph()
    warm = open_checkpoint(small)
    warm_vars = _inputs.graph_variables(warm_graph, [(e.name, e.shape) for e in warm.entries if e.kind == "variable"])
    plan_restore(warm, warm_vars).ok
    tf_read(small)
    graph = tf.Graph()
    variables = _inputs.graph_variables(graph, list(_inputs.big_shapes(nbytes).items()))

    def run():
        if kind == "ckptwidgets":
            ckpt = open_checkpoint(prefix)
            plan = plan_restore(ckpt, variables)
            assert plan.ok and len(plan.mapping) == len(variables), plan
            plan.unused, plan.to_code("saver")
        else:
            tf_read(prefix)

    return peak_growth(run)


def measure(kind: str, prefix: str, nbytes: int, small: str) -> dict:
    return in_child("bench.memory", kind, prefix, str(nbytes), small)


def run(ctx):
    nbytes = ctx.big_bytes
    ctx.log(f"memory: building/reusing a {format_bytes(nbytes)} checkpoint")
    prefix = _inputs.big(nbytes, ctx.out)
    small = _inputs.many_entries(ctx.small_entries, ctx.out)
    size = sum(os.path.getsize(f) for f in Path(prefix).parent.iterdir() if f.name.startswith("model.ckpt"))
    ours, base = Sample(), Sample()
    exact = True
    repeats = 1 if ctx.quick else 3
    for i in range(repeats):
        ctx.log(f"memory: run {i + 1} of {repeats} (two fresh processes)")
        for kind, sample in (("ckptwidgets", ours), ("tensorflow", base)):
            result = measure(kind, prefix, nbytes, small)
            sample.values.append(result["growth"])
            exact &= result["reset"]
    note = "" if exact else " (peak not resettable: lower bound)"
    fraction = ours.median / size
    return [Row(
        NAME,
        f"peak RSS growth, `open_checkpoint` + `plan_restore` + checks, {format_bytes(size)} checkpoint{note}",
        f"{format_bytes(ours.median)} ± {format_bytes(ours.spread)}",
        f"`load_checkpoint` + maps: {format_bytes(base.median)} ± {format_bytes(base.spread)}",
        f"{fraction:.2%} of the checkpoint",
        f"≤ {TARGET:.0%} of its size",
        fraction,
        TARGET,
    )]


if __name__ == "__main__":  # python -m bench.memory KIND PREFIX NBYTES SMALL_PREFIX
    kind, prefix, nbytes, small = sys.argv[1:5]
    print(json.dumps(_child(kind, prefix, int(nbytes), small)))
