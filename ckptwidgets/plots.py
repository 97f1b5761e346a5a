"""Figures of the widgets, as pure functions: data in, ``matplotlib.figure.Figure`` out.

Figures are built with ``matplotlib.figure.Figure()`` directly, never through pyplot, so
drawing one touches no global state and cannot leave a stray inline image in a notebook.
Widgets show them as PNG bytes (:func:`figure_to_png`) in an ``ipywidgets.Image`` and
replace its value on change: no Output clear-and-redraw, so no flicker in any front end.

Redraws reuse one figure: :func:`update_ema_figure` and :func:`update_histogram_figure`
move the data of the artists :func:`ema_figure` and :func:`histogram_figure` created
(found by their ``gid``) instead of building new ones. Both figures have fixed margins (no
layout engine) and :func:`figure_to_png` draws once and encodes the pixels directly, so a
redraw costs one Agg drawing plus a fast PNG encoding (about 20 ms here).

Example
-------
>>> import numpy as np
>>> from types import SimpleNamespace
>>> trace = SimpleNamespace(values=np.full(300, 10.0, np.float32),
...                         shadow=(10 * (1 - 0.99 ** np.arange(1, 301))).astype(np.float32))
>>> fig = ema_figure(trace, target=10.0, reach_step=299)
>>> figure_to_png(fig)[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
True
"""
from __future__ import annotations

import functools
import io
import warnings

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import AutoLocator

from ._text.diagram import mapping_diagram
from ._text.fonts import cjk_fonts, font_family, fonts

__all__ = [
    "ema_figure",
    "update_ema_figure",
    "histogram_figure",
    "update_histogram_figure",
    "figure_to_png",
    "format_value",
    "mapping_diagram",
    "cjk_fonts",
    "font_family",
    "FIGSIZE",
    "DPI",
]

#: Small figures keep PNG encoding (and so every slider redraw) fast.
FIGSIZE = (6.0, 3.2)
DPI = 90
#: Histograms of bigger tensors are drawn from an evenly strided sample of this size.
HISTOGRAM_SAMPLE = 1_000_000
#: Up to this many elements a raw/shadow comparison shows one bar pair per element.
ELEMENTWISE_LIMIT = 16

_RAW_COLOR = "#9aa5b1"
_SHADOW_COLOR = "#1f77b4"
_CLOSED_COLOR = "#d62728"
_TARGET_COLOR = "#2ca02c"
_REACH_COLOR = "#ff7f0e"
_COMPARE_COLOR = "#9467bd"


def format_value(x) -> str:
    """The shortest text that reads back as the same float32 (as TensorFlow prints it).

    Examples
    --------
    >>> one_step = (np.float32(1) - np.float32(0.99)) * np.float32(10)  # TF's update from 0
    >>> format_value(one_step)
    '0.099999905'
    """
    value = np.float32(x)
    if not np.isfinite(value):
        return str(value)
    if value == 0 or 1e-4 <= abs(value) < 1e6:
        return np.format_float_positional(value, trim="-")
    return np.format_float_scientific(value, trim="-")


def _new_figure(figsize, dpi, layout="constrained") -> Figure:
    fig = Figure(figsize=figsize, dpi=dpi, layout=layout)
    # An Agg canvas of our own: rendering needs no backend choice and no pyplot.
    FigureCanvasAgg(fig)
    return fig


def _with_fonts(function):
    """Build the figure's artists with the CJK fallback font list (:mod:`ckptwidgets._text.fonts`).

    Each text keeps the family list it was created with, so Chinese keys in titles draw
    as glyphs, not boxes, when a CJK font is installed; rcParams are restored on return.
    """

    @functools.wraps(function)
    def build(*args, **kwargs):
        with fonts():
            return function(*args, **kwargs)

    return build


def _artist(fig: Figure, gid: str):
    for ax in fig.axes:
        for artist in (*ax.lines, *ax.texts, *ax.collections, *ax.patches):
            if artist.get_gid() == gid:
                return artist
    raise KeyError(f"Figure has no artist with gid {gid!r}; was it built by ema_figure or histogram_figure?")


@_with_fonts
def ema_figure(
    trace,
    closed=None,
    target=None,
    reach_step=None,
    *,
    reach_fraction=0.95,
    title=None,
    figsize=FIGSIZE,
    dpi=DPI,
    log_steps=False,
    compare=None,
    compare_label="compared",
) -> Figure:
    """Plot a shadow variable converging: the values, the shadow, its closed form.

    Parameters
    ----------
    trace : EMATrace or any object with ``values`` and ``shadow`` arrays
        ``shadow[i]`` is the shadow after update ``i + 1``; ``values[i]`` the variable's
        value at that update (drawn thin and grey, the noisy trajectory in noisy mode).
    closed : array, optional
        The closed-form shadow, drawn dotted over the real one.
    target : float, optional
        A horizontal reference line (the value the shadow converges to).
    reach_step : int, optional
        The step where the shadow first reaches ``reach_fraction`` of the target; marked
        with a vertical line.
    reach_fraction : float
        Only used in the label of ``reach_step``.
    title : str, optional
    figsize, dpi
        Keep them small: every redraw encodes a PNG of this size (twice :data:`DPI` is
        crisp on a high-density screen shown at ``figsize * DPI`` CSS pixels).
    log_steps : bool
        A logarithmic step axis (with ``num_updates`` the decay changes in the first steps).
    compare : array, optional
        A second shadow drawn on the same axes (dashed), labelled ``compare_label``:
        fixed decay next to ``num_updates``, say.

    Returns
    -------
    matplotlib.figure.Figure
        Reuse it with :func:`update_ema_figure`.

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> t = SimpleNamespace(values=np.ones(5), shadow=np.linspace(0.1, 0.5, 5))
    >>> fig = ema_figure(t, target=1.0)
    >>> [line.get_gid() for line in fig.axes[0].lines][:3]
    ['values', 'shadow', 'closed']
    """
    # Fixed margins instead of a layout engine: constrained layout would double the cost
    # of every slider redraw, and this figure's furniture never changes size much.
    fig = _new_figure(figsize, dpi, layout=None)
    fig.subplots_adjust(left=0.1, right=0.98, bottom=0.15, top=0.9)
    ax = fig.add_subplot()
    ax.plot([], [], color=_RAW_COLOR, lw=0.8, gid="values", label="variable value")
    ax.plot([], [], color=_SHADOW_COLOR, lw=2.0, gid="shadow", label="shadow (ema_trace)")
    ax.plot([], [], color=_CLOSED_COLOR, lw=1.2, ls=":", gid="closed", label="closed form")
    ax.plot([], [], color=_COMPARE_COLOR, lw=1.6, ls="--", gid="compare", label="compared")
    ax.axhline(0.0, color=_TARGET_COLOR, lw=0.8, ls="--", gid="target", label="target")
    ax.axvline(0.0, color=_REACH_COLOR, lw=0.8, ls="--", gid="reach")
    ax.plot([], [], "o", color=_SHADOW_COLOR, ms=5, gid="first")
    ax.annotate(
        "", (0, 0), xytext=(8, -4), textcoords="offset points", fontsize=8, va="top", gid="first_label"
    )
    # In axes height (y from 0 to 1) beside the vertical line, on a white box: never on the noise.
    ax.annotate(
        "", (0, 0.04), xycoords=ax.get_xaxis_transform(), xytext=(4, 0), textcoords="offset points",
        fontsize=8, color=_REACH_COLOR, va="bottom", gid="reach_label",
        bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="none", alpha=0.9),
    )
    ax.set_xlabel("update step")
    ax.set_ylabel("value")
    ax.grid(True, lw=0.3, alpha=0.5)
    return update_ema_figure(
        fig, trace, closed, target, reach_step, reach_fraction=reach_fraction, title=title,
        log_steps=log_steps, compare=compare, compare_label=compare_label,
    )


def update_ema_figure(
    fig, trace, closed=None, target=None, reach_step=None, *, reach_fraction=0.95, title=None,
    log_steps=False, compare=None, compare_label="compared",
) -> Figure:
    """Put new data into a figure made by :func:`ema_figure`; returns the same figure.

    Only line data, texts and limits change, which keeps a slider redraw as cheap as a
    bare matplotlib redraw.
    """
    shadow = np.asarray(trace.shadow, dtype=np.float64).ravel()
    values = np.asarray(trace.values, dtype=np.float64).ravel()
    n = shadow.size
    steps = np.arange(1, n + 1)
    ax = fig.axes[0]

    raw = _artist(fig, "values")
    # A constant trajectory equals the target line: drawing it again only adds clutter.
    noisy = values.size == n and n > 0 and np.ptp(values) > 0
    raw.set_data(steps, values if noisy else [])
    raw.set_visible(bool(noisy))
    _artist(fig, "shadow").set_data(steps, shadow)
    closed_line = _artist(fig, "closed")
    if closed is not None:
        closed = np.asarray(closed, dtype=np.float64).ravel()
        closed_line.set_data(np.arange(1, closed.size + 1), closed)
    closed_line.set_visible(closed is not None)
    compare_line = _artist(fig, "compare")
    if compare is not None:
        compare = np.asarray(compare, dtype=np.float64).ravel()
        compare_line.set_data(np.arange(1, compare.size + 1), compare)
        compare_line.set_label(compare_label)
    compare_line.set_visible(compare is not None)
    target_line = _artist(fig, "target")
    target_line.set_visible(target is not None)
    if target is not None:
        target_line.set_ydata([target, target])

    first, first_label = _artist(fig, "first"), _artist(fig, "first_label")
    if n:
        first.set_data([1], [shadow[0]])
        first_label.xy = (1, shadow[0])
        first_label.set_text(f"step 1: {format_value(trace.shadow[0])}")
    first.set_visible(bool(n))
    first_label.set_visible(bool(n))

    reach, reach_label = _artist(fig, "reach"), _artist(fig, "reach_label")
    shown = reach_step is not None and 1 <= reach_step <= n
    if shown:
        reach.set_xdata([reach_step, reach_step])
        # Where the curves are not: the bottom of the axes for a rising shadow, the top for a
        # falling one; left of the line when it is in the right third (the legend's side).
        rising = target is None or shadow[reach_step - 1] >= shadow[0]
        right_side = reach_step > (n ** (2 / 3) if log_steps else n * 2 / 3)
        reach_label.xy = (reach_step, 0.04 if rising else 0.96)
        reach_label.set_va("bottom" if rising else "top")
        reach_label.set_ha("right" if right_side else "left")
        reach_label.xyann = (-4 if right_side else 4, 0)
        reach_label.set_text(f"{reach_fraction:.0%} at step {reach_step:,}")
    reach.set_visible(shown)
    reach_label.set_visible(shown)

    # Limits from the data, not relim(): axhline/axvline would drag them to 0.
    series = ([shadow] + ([values] if noisy else []) + ([closed] if closed is not None else [])
              + ([compare] if compare is not None else []))
    finite = np.concatenate([s[np.isfinite(s)] for s in series]) if n else np.zeros(0)
    low = min([0.0] + ([finite.min()] if finite.size else []) + ([target] if target is not None else []))
    high = max([0.0] + ([finite.max()] if finite.size else []) + ([target] if target is not None else []))
    pad = (high - low) * 0.06 or 1.0
    if log_steps:
        if ax.get_xscale() != "log":
            ax.set_xscale("log")
        ax.set_xlim(0.9, max(n, 2) * 1.1)
        ax.set_xlabel("update step (log scale)")
    else:
        if ax.get_xscale() != "linear":
            ax.set_xscale("linear")
        ax.set_xlim(0, max(n, 1) * 1.02)
        ax.set_xlabel("update step")
    ax.set_ylim(low - pad, high + pad)
    ax.set_title(title or "", fontsize=9, parse_math=False)
    _update_legend(ax)
    return fig


def _update_legend(ax) -> None:
    # Rebuilt only when the set of visible lines changes (the noisy toggle), not per redraw.
    handles = [a for a in ax.lines if a.get_visible() and not a.get_label().startswith("_")]
    labels = tuple(h.get_label() for h in handles)
    legend = ax.get_legend()
    if legend is None or tuple(t.get_text() for t in legend.get_texts()) != labels:
        # Centre right: below a rising shadow's plateau, above the reach label at the bottom.
        ax.legend(handles, labels, loc="center right", fontsize=7, framealpha=0.85, edgecolor="none")


def _numeric(values) -> tuple[np.ndarray | None, bool]:
    """``(finite float64 values, sampled)``: an evenly strided sample of at most
    :data:`HISTOGRAM_SAMPLE` values, converted after sampling (a big tensor costs the
    sample, not the tensor); None for a non-numeric array."""
    array = np.asarray(values)
    if array.dtype.kind not in "biuf":
        return None, False
    flat = array.ravel()
    sampled = flat.size > HISTOGRAM_SAMPLE
    if sampled:
        flat = flat[:: -(-flat.size // HISTOGRAM_SAMPLE)]
    flat = flat.astype(np.float64, copy=False)
    finite = np.isfinite(flat)
    return (flat if finite.all() else flat[finite]), sampled


@_with_fonts
def histogram_figure(
    values, shadow=None, title="", *, bins=40, figsize=FIGSIZE, dpi=DPI
) -> Figure:
    """A histogram of a tensor's values, with its EMA shadow overlaid when given.

    Tensors of at most 16 elements are drawn element by element (a histogram of a scalar
    says nothing); with a shadow, raw and shadow bars stand side by side.

    Parameters
    ----------
    values : array_like
    shadow : array_like, optional
        The shadow (moving average) of the same variable.
    title : str
        Drawn as plain text (no mathtext), so any key is safe as a title.
    bins : int
    figsize, dpi
        Keep them small: a selection in the browser encodes a PNG of this size.

    Returns
    -------
    matplotlib.figure.Figure
        Draw other data into it with :func:`update_histogram_figure` (the browser does:
        one figure for every selection).

    Examples
    --------
    >>> fig = histogram_figure(np.arange(100.0), shadow=np.arange(100.0) * 0.9, title="w")
    >>> [a.get_gid() for a in fig.axes[0].patches]
    ['raw', 'shadow']
    """
    # Fixed margins instead of a layout engine: constrained layout tripled the cost of
    # each drawing (it draws twice to measure), and the furniture here hardly changes size.
    fig = _new_figure(figsize, dpi, layout=None)
    # The top margin holds two rows: the title, and under it the legend (off the bars).
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.16, top=0.82)
    ax = fig.add_subplot()
    # Two step patches hold every picture: filled bins (raw) and an outline (shadow) for a
    # histogram, and bars of one element each for a small tensor. Redraws move their data.
    ax.stairs([0.0], [0.0, 1.0], fill=True, color=_RAW_COLOR, label="raw", gid="raw")
    ax.stairs([0.0], [0.0, 1.0], color=_SHADOW_COLOR, lw=1.5, label="EMA shadow", gid="shadow")
    ax.axhline(0, color="black", lw=0.5, gid="zero")
    ax.text(0.5, 0.5, "no numeric values to plot", ha="center", va="center", transform=ax.transAxes,
            gid="message")
    ax.tick_params(labelsize=8)
    ax.grid(True, lw=0.3, alpha=0.5)
    return update_histogram_figure(fig, values, shadow, title, bins=bins)


def _bar_steps(heights: np.ndarray, offset: float, width: float):
    """Edges and heights of one step patch drawing a bar of ``width`` per element (zero-height
    steps in between), bar ``i`` starting at ``i + offset``."""
    n = heights.size
    starts = np.arange(n) + offset
    edges = np.empty(2 * n + 1)
    edges[0:-1:2] = starts
    edges[1::2] = starts + width
    edges[-1] = edges[-2] + (1.0 - width) if n else 1.0
    steps = np.zeros(2 * n)
    steps[0::2] = heights
    return steps, edges


def update_histogram_figure(fig, values, shadow=None, title="", *, bins=40) -> Figure:
    """Draw new data into a figure made by :func:`histogram_figure`; returns the same figure.

    What :func:`histogram_figure` draws, with the same artists: only their data, limits,
    ticks and texts change, so a redraw costs one Agg drawing (no new figure, no layout).
    """
    ax = fig.axes[0]
    raw_patch, shadow_patch = _artist(fig, "raw"), _artist(fig, "shadow")
    zero, message = _artist(fig, "zero"), _artist(fig, "message")
    # parse_math=False: a key such as "a$b$" is a name, not mathtext. A fixed y: placing
    # the title automatically measures every tick label again on each drawing.
    ax.set_title(title, fontsize=9, parse_math=False, y=1.0, pad=_LEGEND_ROW)
    raw, sampled = _numeric(values)
    shade = None if shadow is None else _numeric(shadow)[0]
    if raw is None or raw.size == 0:
        for artist in (raw_patch, shadow_patch, zero):
            artist.set_visible(False)
        message.set_visible(True)
        ax.set_axis_off()
        _update_histogram_legend(ax, False)
        return fig
    message.set_visible(False)
    ax.set_axis_on()
    raw_patch.set_visible(True)
    with_shadow = shade is not None and shade.size > 0
    if raw.size <= ELEMENTWISE_LIMIT and (shade is None or shade.size == raw.size):
        n = raw.size
        width = 0.4 if with_shadow else 0.8
        raw_patch.set_data(*_bar_steps(raw, -width if with_shadow else -width / 2, width))
        if with_shadow:
            shadow_patch.set_data(*_bar_steps(shade, 0.0, width))
        shadow_patch.set_fill(True)
        shadow_patch.set_linewidth(0)
        ax.set_xticks(np.arange(n))
        ax.set_xlabel("element (flattened)", fontsize=9)
        ax.set_ylabel("value", fontsize=9)
        zero.set_visible(True)
        heights = np.concatenate([raw, shade]) if with_shadow else raw
        low, high = min(0.0, float(heights.min())), max(0.0, float(heights.max()))
        pad = (high - low) * 0.08 or 1.0
        ax.set_xlim(-0.6, n - 0.4)
        ax.set_ylim(low - (pad if low < 0 else 0), high + (pad if high > 0 or low == 0 else 0))
    else:
        both = np.concatenate([raw, shade]) if with_shadow else raw
        low, high = float(both.min()), float(both.max())
        if low == high:
            low, high = low - 0.5, high + 0.5
        edges = np.linspace(low, high, bins + 1)
        counts = np.histogram(raw, edges)[0]
        raw_patch.set_data(counts, edges)
        top = counts.max()
        if with_shadow:
            shadow_counts = np.histogram(shade, edges)[0]
            shadow_patch.set_data(shadow_counts, edges)
            top = max(top, shadow_counts.max())
        shadow_patch.set_fill(False)
        shadow_patch.set_linewidth(1.5)
        ax.xaxis.set_major_locator(AutoLocator())
        ax.set_xlabel("value" + (" (strided sample)" if sampled else ""), fontsize=9)
        ax.set_ylabel("count", fontsize=9)
        zero.set_visible(False)
        ax.set_xlim(low - (high - low) * 0.02, high + (high - low) * 0.02)
        ax.set_ylim(0, (top or 1) * 1.08)
    shadow_patch.set_visible(with_shadow)
    _update_histogram_legend(ax, with_shadow)
    return fig


#: Font size of the histogram's legend (9 pt: 11 px at :data:`DPI`, as the axis labels).
LEGEND_FONTSIZE = 9
# Points between the top of the axes and the title: the legend's row.
_LEGEND_ROW = 17


def _update_histogram_legend(ax, shown: bool) -> None:
    # Above the axes, right-aligned, in its own row under the title: never on the bars,
    # whatever the data (and no loc="best" search on each drawing). Rebuilt only when the
    # shadow's look changes (bars or outline), not per redraw.
    legend = ax.get_legend()
    shadow = next(p for p in ax.patches if p.get_gid() == "shadow")
    look = "legend bars" if shadow.get_fill() else "legend outline"  # kept as the legend's gid
    if shown and (legend is None or legend.get_gid() != look):
        legend = ax.legend(handles=list(ax.patches), fontsize=LEGEND_FONTSIZE, frameon=False, loc="lower right",
                           bbox_to_anchor=(1.0, 1.0), ncols=2, borderaxespad=0.1, borderpad=0.1,
                           handlelength=1.5, columnspacing=1.2)
        legend.set_gid(look)
    if legend is not None:
        legend.set_visible(shown)


def figure_to_png(fig: Figure, dpi=None) -> bytes:
    """Render a figure to PNG bytes with the Agg canvas (no pyplot, no display).

    The figure is drawn once and its pixels encoded as an RGB PNG (fast zlib level, no
    metadata: the same figure gives the same bytes); ``savefig`` would add a second pass
    through the print machinery for nothing here.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    dpi : float, optional
        Defaults to the figure's own dpi (another dpi goes through ``savefig``).

    Examples
    --------
    >>> figure_to_png(histogram_figure([1.0, 2.0]))[:4]
    b'\\x89PNG'
    """
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # A key in a script the default font lacks (Chinese, say) draws as boxes in the
        # title; the table beside the plot shows it as text, so the warning would only
        # put red noise in the learner's cell.
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)
        if dpi is not None and dpi != fig.dpi:
            fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None}, pil_kwargs={"compress_level": 1})
            return buffer.getvalue()
        fig.canvas.draw()
    from PIL import Image  # matplotlib's own PNG writer; imported by matplotlib already

    width, height = fig.canvas.get_width_height(physical=True)
    image = Image.frombuffer("RGBA", (width, height), fig.canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    # Fast zlib level: these PNGs are redrawn on every selection and slider move and sent
    # to the browser at once; RGB (figures are opaque) is a quarter less to compress.
    image.convert("RGB").save(buffer, format="png", compress_level=1)
    return buffer.getvalue()
