"""6. EMAExplorer: a slider change against a bare matplotlib redraw of the same figure.

The baseline is what one would write by hand: put the new shadow into the figure's line
and ``fig.savefig(buffer, format="png")``. The explorer does everything a slider move
does: the model update, the EMA trace (from its cache when the slider returns to a value
seen before, from TensorFlow's ``ExponentialMovingAverage`` for a new one), markers,
figure update, PNG and the widget values.
"""
from __future__ import annotations

import io

import numpy as np

from ._timing import compare, ratio_row

NAME = "ema"
TARGET = 1.5


def run(ctx):
    from ckptwidgets.widgets import EMAExplorer

    ctx.log("ema: EMAExplorer")
    explorer = EMAExplorer(decay=0.99, steps=500, target=10.0)
    slider = explorer.decay_slider
    values = [v for _, v in slider.options]
    fig = explorer.model.figure
    shadow_line = next(line for line in fig.axes[0].lines if line.get_gid() == "shadow")
    shadows = [np.asarray(10 * (1 - d ** np.arange(1, 501)), np.float64) for d in (0.99, 0.98)]
    state = {"i": 0, "fresh": iter(v for v in values if v not in (0.99, 0.98))}

    def bare():
        state["i"] += 1
        shadow_line.set_ydata(shadows[state["i"] % 2])
        fig.savefig(io.BytesIO(), format="png")

    def back_and_forth():
        slider.value = 0.98 if slider.value == 0.99 else 0.99
        assert explorer.image.value == explorer.model.png and not explorer.model.error

    def new_decay():
        slider.value = next(state["fresh"])
        assert explorer.image.value == explorer.model.png and not explorer.model.error

    slider.value = 0.98  # both back-and-forth values are computed once, before timing
    slider.value = 0.99
    rows = []
    a, b = compare(back_and_forth, bare, ctx.fast_repeats, ctx.warmup)
    rows.append(ratio_row(NAME, "`EMAExplorer` decay slider moved back to a value seen before (trace cached)", a, b,
                          "`line.set_ydata` + `fig.savefig(png)`", TARGET))
    repeats = min(ctx.fast_repeats, len(values) - 2 - ctx.warmup)  # each value once
    a, b = compare(new_decay, bare, repeats, ctx.warmup)
    rows.append(ratio_row(NAME, "`EMAExplorer` decay slider moved to a new value (runs TF's EMA, 500 steps)", a, b,
                          "the same bare redraw", TARGET))
    explorer.close()
    return rows
