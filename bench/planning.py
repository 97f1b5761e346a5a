"""2. Planning: ``plan_restore`` for 10,000 variables against TensorFlow's index read.

The target rows time the plan with its checks (``.ok`` runs the analysis: shapes, dtypes,
unused entries), as a user gets it; one more row shows the call alone. The checkpoint is
opened once, outside the timing; the variables are eager ``tf.Variable`` s.
"""
from __future__ import annotations

from . import _inputs
from ._timing import Row, compare, ratio_row, ratio_sample, timed, Sample
from .reading import tf_read

NAME = "planning"
TARGET = 1.0
SCALING_TARGET = 1.5


def variable_specs(ckpt, n: int, scope: str = ""):
    """``n`` (name, shape): every variable entry of ``ckpt`` (under ``scope``), then new ones."""
    specs = [(scope + e.name, e.shape) for e in ckpt.entries if e.kind == "variable"][:n]
    specs += [(f"{scope}head/extra_{i}/kernel", (3,)) for i in range(n - len(specs))]
    return specs


RULES = {
    "/": "net/",  # the whole checkpoint under a new root scope
    "layer_0001/": "net/layer_0001/",  # a more specific scope
    "layer_0002/dense_0/kernel": "net/layer_0002/dense_0/kernel",  # one name
}


def run(ctx):
    from ckptwidgets import open_checkpoint
    from ckptwidgets.plan import plan_restore

    n = ctx.entries
    prefix = _inputs.many_entries(n, ctx.out)
    ckpt = open_checkpoint(prefix)
    ctx.log(f"planning: making {2 * n:,} eager variables")
    plain = _inputs.eager_variables(variable_specs(ckpt, n))
    scoped = _inputs.eager_variables(variable_specs(ckpt, n, "net/"))
    cases = [
        ("exact names", plain, {}),
        ("scope rules", scoped, {"rules": RULES}),
        ("prefer EMA", plain, {"prefer_ema": True}),
    ]
    expected_shadows = sum(1 for e in ckpt.entries if e.kind == "ema")
    rows = []
    for label, variables, kwargs in cases:
        plan = plan_restore(ckpt, variables, **kwargs)
        assert plan.ok, plan
        mapped = len(plan.mapping)
        assert mapped == sum(1 for e in ckpt.entries if e.kind == "variable"), (label, mapped)
        if kwargs.get("prefer_ema"):
            assert sum(k.endswith(_inputs.EMA) for k in plan.mapping.values()) == expected_shadows
        ctx.log(f"planning: {label}")
        a, b = compare(lambda: plan_restore(ckpt, variables, **kwargs).ok, lambda: tf_read(prefix),
                       ctx.fast_repeats, ctx.warmup)
        rows.append(ratio_row(NAME, f"`plan_restore(...).ok`, {n:,} variables, {label}", a, b,
                              "the TF index read of row 1", TARGET))
    # The checks (.ok, .problems) run on first use; how much of the above is the call alone.
    a, b = compare(lambda: plan_restore(ckpt, plain), lambda: tf_read(prefix), ctx.fast_repeats, ctx.warmup)
    rows.append(ratio_row(NAME, f"`plan_restore(...)` alone (checks deferred), {n:,} variables, exact names", a, b,
                          "the TF index read of row 1", None))

    # The floor of any plan: reading each variable's name, static shape and dtype once.
    def describe():
        return [(v.name, tuple(v.shape.as_list()), v.dtype.name) for v in plain]

    a, b = compare(describe, lambda: tf_read(prefix), ctx.fast_repeats, ctx.warmup)
    rows.append(ratio_row(NAME, f"floor: a bare loop reading `.name`, `.shape`, `.dtype` of {n:,} variables", a, b,
                          "the TF index read of row 1", None))

    # No quadratic matching: the cost per variable must not grow with the number of variables.
    few = n // 10
    kwargs = {"rules": RULES, "prefer_ema": True}
    ctx.log("planning: scaling")
    for _ in range(ctx.warmup):
        plan_restore(ckpt, scoped, **kwargs).ok
    big, small = Sample(), Sample()
    for _ in range(ctx.repeats):
        big.values.append(timed(lambda: plan_restore(ckpt, scoped, **kwargs).ok) / n)
        small.values.append(timed(lambda: plan_restore(ckpt, scoped[:few], **kwargs).ok) / few)
    r = ratio_sample(big, small)
    rows.append(Row(
        NAME,
        f"per-variable cost, {n:,} vs {few:,} variables (same checkpoint, rules + prefer EMA)",
        f"{big.median * 1e6:.2f} µs ± {big.spread * 1e6:.2f} per variable",
        f"{few:,} variables: {small.median * 1e6:.2f} µs ± {small.spread * 1e6:.2f} per variable",
        f"{r.median:.2f}x ± {r.spread:.2f}",
        f"≤ {SCALING_TARGET:g}x (linear)",
        r.median,
        SCALING_TARGET,
    ))
    return rows
