"""Figures of the widgets, as pure functions: data in, ``matplotlib.figure.Figure`` out.

Figures are built with ``matplotlib.figure.Figure()`` directly, never through pyplot, so
drawing one touches no global state and cannot leave a stray inline image in a notebook.
Widgets show them as PNG bytes (:func:`figure_to_png`) in an ``ipywidgets.Image`` and
replace its value on change: no Output clear-and-redraw, so no flicker in any front end.

Redraws reuse one figure: :func:`update_ema_figure` moves the data of the artists
:func:`ema_figure` created (found by their ``gid``) instead of building new ones.

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

import io
import warnings

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = [
    "ema_figure",
    "update_ema_figure",
    "histogram_figure",
    "figure_to_png",
    "format_value",
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


def _artist(fig: Figure, gid: str):
    for ax in fig.axes:
        for artist in (*ax.lines, *ax.texts, *ax.collections):
            if artist.get_gid() == gid:
                return artist
    raise KeyError(f"Figure has no artist with gid {gid!r}; was it built by ema_figure?")


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
        Keep them small: every redraw encodes a PNG of this size.

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
    ax.axhline(0.0, color=_TARGET_COLOR, lw=0.8, ls="--", gid="target", label="target")
    ax.axvline(0.0, color=_REACH_COLOR, lw=0.8, ls="--", gid="reach")
    ax.plot([], [], "o", color=_SHADOW_COLOR, ms=5, gid="first")
    ax.annotate(
        "", (0, 0), xytext=(8, -4), textcoords="offset points", fontsize=8, va="top", gid="first_label"
    )
    ax.annotate(
        "", (0, 0), xytext=(5, -14), textcoords="offset points", fontsize=8, color=_REACH_COLOR,
        gid="reach_label",
    )
    ax.set_xlabel("update step")
    ax.set_ylabel("value")
    ax.grid(True, lw=0.3, alpha=0.5)
    return update_ema_figure(
        fig, trace, closed, target, reach_step, reach_fraction=reach_fraction, title=title
    )


def update_ema_figure(
    fig, trace, closed=None, target=None, reach_step=None, *, reach_fraction=0.95, title=None
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
        reach_label.xy = (reach_step, shadow[reach_step - 1])
        reach_label.set_text(f"{reach_fraction:.0%} at step {reach_step}")
    reach.set_visible(shown)
    reach_label.set_visible(shown)

    # Limits from the data, not relim(): axhline/axvline would drag them to 0.
    series = [shadow] + ([values] if noisy else []) + ([closed] if closed is not None else [])
    finite = np.concatenate([s[np.isfinite(s)] for s in series]) if n else np.zeros(0)
    low = min([0.0] + ([finite.min()] if finite.size else []) + ([target] if target is not None else []))
    high = max([0.0] + ([finite.max()] if finite.size else []) + ([target] if target is not None else []))
    pad = (high - low) * 0.06 or 1.0
    ax.set_xlim(0, max(n, 1) * 1.02)
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
        ax.legend(handles, labels, loc="lower right", fontsize=7, frameon=False)


def _numeric(values) -> np.ndarray | None:
    array = np.asarray(values)
    if array.dtype == bool:
        array = array.astype(np.float64)
    if array.dtype.kind not in "iuf":
        return None
    flat = array.ravel().astype(np.float64, copy=False)
    return flat[np.isfinite(flat)]


def _sample(flat: np.ndarray) -> np.ndarray:
    if flat.size <= HISTOGRAM_SAMPLE:
        return flat
    return flat[:: -(-flat.size // HISTOGRAM_SAMPLE)]


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

    Examples
    --------
    >>> fig = histogram_figure(np.arange(100.0), shadow=np.arange(100.0) * 0.9, title="w")
    >>> len(fig.axes)
    1
    """
    fig = _new_figure(figsize, dpi)
    ax = fig.add_subplot()
    # parse_math=False: a key such as "a$b$" is a name, not mathtext.
    ax.set_title(title, fontsize=9, parse_math=False)
    raw = _numeric(values)
    shade = None if shadow is None else _numeric(shadow)
    if raw is None or raw.size == 0:
        ax.text(0.5, 0.5, "no numeric values to plot", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    if raw.size <= ELEMENTWISE_LIMIT and (shade is None or shade.size == raw.size):
        index = np.arange(raw.size)
        width = 0.4 if shade is not None else 0.8
        ax.bar(index - (width / 2 if shade is not None else 0), raw, width, color=_RAW_COLOR, label="raw")
        if shade is not None:
            ax.bar(index + width / 2, shade, width, color=_SHADOW_COLOR, label="EMA shadow")
        ax.set_xticks(index)
        ax.set_xlabel("element (flattened)")
        ax.set_ylabel("value")
        ax.axhline(0, color="black", lw=0.5)
    else:
        raw_sample = _sample(raw)
        both = raw_sample if shade is None or shade.size == 0 else np.concatenate([raw_sample, _sample(shade)])
        low, high = float(both.min()), float(both.max())
        if low == high:
            low, high = low - 0.5, high + 0.5
        edges = np.linspace(low, high, bins + 1)
        ax.hist(raw_sample, edges, color=_RAW_COLOR, label="raw")
        if shade is not None and shade.size:
            ax.hist(_sample(shade), edges, histtype="step", lw=1.5, color=_SHADOW_COLOR, label="EMA shadow")
        ax.set_xlabel("value" + (" (strided sample)" if raw.size > HISTOGRAM_SAMPLE else ""))
        ax.set_ylabel("count")
    if shade is not None:
        ax.legend(fontsize=7, frameon=False)
    ax.grid(True, lw=0.3, alpha=0.5)
    return fig


def figure_to_png(fig: Figure, dpi=None) -> bytes:
    """Render a figure to PNG bytes with the Agg canvas (no pyplot, no display).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    dpi : float, optional
        Defaults to the figure's own dpi.

    Examples
    --------
    >>> figure_to_png(histogram_figure([1.0, 2.0]))[:4]
    b'\\x89PNG'
    """
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    # Fast zlib level: these PNGs are redrawn on every slider move and sent to the
    # browser at once; size hardly differs for flat plots.
    with warnings.catch_warnings():
        # A key in a script the default font lacks (Chinese, say) draws as boxes in the
        # title; the table beside the plot shows it as text, so the warning would only
        # put red noise in the learner's cell.
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)
        fig.savefig(
            buffer, format="png", dpi=dpi or fig.dpi, metadata={"Software": None},
            pil_kwargs={"compress_level": 1},
        )
    return buffer.getvalue()
