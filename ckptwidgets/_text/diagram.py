"""The mapping diagram: checkpoint keys on the left, the plan's variables on the right.

One arrow per assignment (key -> variable), so a partial restore (a variable with no arrow),
a renamed restore (arrows between different names) and an EMA restore (arrows leaving the
``/ExponentialMovingAverage`` shadows) read at a glance. Re-exported as
:func:`ckptwidgets.plots.mapping_diagram`; a pure function, data in, ``Figure`` out.

Every artist carries a ``gid`` (tests and widgets find them without looking at pixels):
``"key:<key>"``, ``"kind:<key>"`` (the EMA / slot badge), ``"var:<name>"``,
``"arrow:<name>"``, ``"problem:<name>"`` (the label on a red arrow), ``"more_keys"``,
``"more_vars"``, ``"title"``, ``"legend"``, ``"not_shown"``.
"""
from __future__ import annotations

import os

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .fonts import font_family, fonts
from .format import format_shape, short_labels

__all__ = ["mapping_diagram"]

_ARROW = "#1f77b4"
_EMA = "#e07b00"
_GREY = "#9aa5b1"
_RED = "#d62728"
_INK = "#222222"
_ROW = 0.27  # inches per row
_FONT = 8.0
_SMALL = 8.0  # badges and problem labels: 10 px at 90 dpi
_LEGEND = 9.0  # the legend under the columns: as big as the column headers
_CHAR = 0.6 * _FONT / 72  # inches per character of DejaVu Sans Mono
_KEY_X, _ARROW_X0, _ARROW_X1, _VAR_X = 0.085, 0.445, 0.565, 0.58
_PROBLEM_LABELS = {"shape_mismatch": "shape ≠", "dtype_mismatch": "dtype ≠", "missing_key": "no such key",
                   "duplicate_variable": "duplicate"}


def _fit(text: str, suffix: str, chars: int, among) -> str:
    """``text + suffix`` in at most ``chars`` characters: ``text`` shortened by
    :func:`~ckptwidgets._text.format.short_labels` among the texts of its column, so what tells
    it apart from the others stays (the common start goes first, then the middle)."""
    return short_labels(among, chars - len(suffix))[text] + suffix


def _pick(items: list, priority, limit: int) -> list:
    """The ``limit`` items of lowest ``priority(item)`` (stable), back in their own order."""
    if len(items) <= limit:
        return list(items)
    order = sorted(range(len(items)), key=lambda i: (priority(items[i]), i))[:limit]
    return [items[i] for i in sorted(order)]


def mapping_diagram(plan, *, max_rows: int = 12, title: str | None = None, width: float = 7.5, dpi: float = 90) -> Figure:
    """Draw which checkpoint key goes into which variable of a restore plan.

    Checkpoint keys are on the left (EMA shadows with an orange ``EMA`` badge, optimizer
    slots with a ``slot`` badge), the plan's variables on the right, an arrow for each
    assignment. Keys no variable reads (``plan.unused``) and variables no key is read into
    (``plan.unmapped``: in graph mode they stay uninitialised) are grey. A problem is red:
    both rows show their shapes (or dtypes) and the arrow says what is wrong. Longer lists
    end with "… N more"; problems, then mapped variables, are kept first.

    Parameters
    ----------
    plan : RestorePlan
        Read through its public members only: ``assignments``, ``infos``, ``status``,
        ``problems``, ``unused``, ``checkpoint``.
    max_rows : int
        Rows per column, the "… N more" row included (at least 2).
    title : str, optional
        Defaults to ``"<checkpoint>: N of M variables mapped"`` (and the problems).
    width, dpi
        7.5 inches at 90 dpi is 675 pixels: the width of a notebook's output area.

    Returns
    -------
    matplotlib.figure.Figure
        Built without pyplot; render it with :func:`ckptwidgets.plots.figure_to_png`, or let
        Jupyter display it.

    Examples
    --------
    Scenario 1: ``v2`` is in the plan but no key is read into it.

    >>> import os, tempfile
    >>> import ckptwidgets
    >>> tf = ckptwidgets.import_tensorflow()
    >>> path = os.path.join(tempfile.mkdtemp(), "my_test_model.ckpt")
    >>> path = tf.compat.v1.train.Saver({"v1": tf.Variable([1.0]), "v2": tf.Variable([2.0])}).save(None, path)
    >>> v1, v2 = tf.Variable([0.0], name="v1"), tf.Variable([0.0], name="v2")
    >>> plan = ckptwidgets.plan_restore(path, [v1, v2], include="v1")
    >>> fig = mapping_diagram(plan)
    >>> [t.get_gid() for t in fig.axes[0].texts if t.get_gid().startswith(("arrow:", "var:"))]
    ['var:v1', 'var:v2', 'arrow:v1']
    >>> next(t.get_text() for t in fig.axes[0].texts if t.get_gid() == "var:v2")
    'v2 [1]  (unmapped)'
    """
    max_rows = max(int(max_rows), 2)
    ckpt = plan.checkpoint
    infos = plan.infos
    assignments = {a.name: a for a in plan.assignments}
    problems: dict[str, object] = {}
    for problem in plan.problems:
        problems.setdefault(problem.variable, problem)
    status = {name: plan.status(name) for name in infos}

    # --- right column: the variables, problems first, then mapped, then unmapped -------------
    rank = {"mapped": 1, "unmapped": 2}
    names = list(infos)
    shown_vars = names if len(names) <= max_rows else _pick(names, lambda n: rank.get(status[n], 0), max_rows - 1)
    more_vars = len(names) - len(shown_vars)

    # --- left column: the keys the shown variables read, then unused ones ---------------------
    position = {e.key: i for i, e in enumerate(ckpt.entries)}
    read = []
    for name in shown_vars:
        a = assignments.get(name)
        if a is not None and a.key not in read:
            read.append(a.key)
    read.sort(key=lambda k: position.get(k, len(position)))  # keys not in the checkpoint last
    unused = [e.key for e in plan.unused]
    all_keys = {a.key for a in assignments.values()} | set(unused)
    limit = max_rows if len(all_keys) <= max_rows else max_rows - 1  # a row for "… N more keys"
    keys = read[:limit]
    keys += [k for k in unused if k not in keys][: limit - len(keys)]
    keys.sort(key=lambda k: position.get(k, len(position)))
    more_keys = len(all_keys) - len(keys)

    rows = max(len(keys) + (more_keys > 0), len(shown_vars) + (more_vars > 0), 1)
    head, foot = 2.1, 1.3  # rows of title + column headers, and of the legend
    fig = Figure(figsize=(width, _ROW * (rows + head + foot)), dpi=dpi)
    FigureCanvasAgg(fig)
    with fonts():
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        ax.set_xlim(0, 1)
        ax.set_ylim(-(rows - 0.5 + foot), head - 0.5)
        mono = font_family(monospace=True)
        key_chars = int((_ARROW_X0 - 0.01 - _KEY_X) * width / _CHAR)
        var_chars = int((1 - 0.01 - _VAR_X) * width / _CHAR)

        mapped = sum(1 for n in names if n in assignments)
        if title is None:
            title = f"{os.path.basename(ckpt.prefix) or ckpt.prefix}: {mapped} of {len(names)} variables mapped"
            if problems:
                title += f", {len(problems)} with problems"
        ax.text(0.5, head - 0.85, title, ha="center", va="center", fontsize=10.5, gid="title")
        # (not bold: a CJK fallback font has one weight, and matplotlib logs a warning for it)
        ax.text(_KEY_X, 0.65, "checkpoint keys", ha="left", va="center", fontsize=9, color=_INK, gid="keys_header")
        ax.text(_VAR_X, 0.65, "variables", ha="left", va="center", fontsize=9, color=_INK, gid="vars_header")

        problem_keys = {problems[n].key for n in problems if getattr(problems[n], "key", None)}
        key_y = {}
        for i, key in enumerate(keys):
            y = -i
            key_y[key] = y
            entry = ckpt.find(key)
            used = key not in unused
            color = _INK if used else _GREY
            if entry is None:
                text, color = _fit(key, "  (not in checkpoint)", key_chars, keys), _RED
            else:
                color = _RED if key in problem_keys else color
                suffix = f" {format_shape(entry.shape)}"
                if any(problems[n].reason == "dtype_mismatch" and problems[n].key == key for n in problems):
                    suffix += f" {entry.dtype}"
                text = _fit(key, suffix, key_chars, keys)
                if entry.kind in ("ema", "slot", "meta"):
                    badge = {"ema": "EMA", "slot": "slot", "meta": "meta"}[entry.kind]
                    tint = _EMA if entry.kind == "ema" else _GREY
                    ax.text(0.012, y, badge, ha="left", va="center", fontsize=_SMALL - 0.5, color="white", fontweight="bold", family="DejaVu Sans",
                            bbox={"boxstyle": "round,pad=0.2", "fc": tint if used else _GREY, "ec": "none"},
                            gid=f"kind:{key}")
            ax.text(_KEY_X, y, text, ha="left", va="center", fontsize=_FONT, color=color, family=mono, gid=f"key:{key}")
        more_keys_y = -len(keys)
        if more_keys:
            ax.text(_KEY_X, more_keys_y, f"… {more_keys} more keys", ha="left", va="center", fontsize=_FONT,
                    color=_GREY, style="italic", gid="more_keys")

        for i, name in enumerate(shown_vars):
            y = -i
            info = infos[name]
            state = status[name]
            problem = problems.get(name)
            suffix = f" {format_shape(info.shape)}"
            if problem is not None and problem.reason == "dtype_mismatch":
                suffix += f" {info.dtype}"
            if state == "unmapped":
                suffix += "  (unmapped)"
            color = _RED if problem is not None else _GREY if state == "unmapped" else _INK
            ax.text(_VAR_X, y, _fit(name, suffix, var_chars, shown_vars), ha="left", va="center", fontsize=_FONT, color=color,
                    family=mono, style="italic" if state == "unmapped" else "normal", gid=f"var:{name}")
        if more_vars:
            ax.text(_VAR_X, -len(shown_vars), f"… {more_vars} more variables", ha="left", va="center",
                    fontsize=_FONT, color=_GREY, style="italic", gid="more_vars")

        for i, name in enumerate(shown_vars):
            a = assignments.get(name)
            if a is None:
                continue
            problem = problems.get(name)
            elided = a.key not in key_y
            start = more_keys_y if elided else key_y[a.key]
            color = _RED if problem is not None else _EMA if a.entry is not None and a.entry.kind == "ema" else _ARROW
            ax.annotate("", xy=(_ARROW_X1, -i), xytext=(_ARROW_X0, start), gid=f"arrow:{name}",
                        arrowprops={"arrowstyle": "-|>", "color": color, "lw": 1.3, "shrinkA": 0, "shrinkB": 0,
                                    "linestyle": "--" if elided else "-"})
            if problem is not None:
                label = _PROBLEM_LABELS.get(problem.reason, problem.reason)
                ax.text((_ARROW_X0 + _ARROW_X1) / 2, (start - i) / 2 + 0.28, label, ha="center", va="bottom",
                        fontsize=_SMALL, color=_RED, gid=f"problem:{name}")

        hidden = sum(1 for e in ckpt.entries if e.kind in ("slot", "meta") and e.key not in all_keys)
        legend = "→ restores    orange: from an EMA shadow    grey: unused key / unmapped variable    red: problem"
        ax.text(0.5, -(rows - 0.5 + foot) + 0.75, legend, ha="center", va="center", fontsize=_LEGEND, color=_INK,
                gid="legend")
        if hidden:
            ax.text(0.5, -(rows - 0.5 + foot) + 0.3, f"({hidden} optimizer slot and bookkeeping entries not shown)",
                    ha="center", va="center", fontsize=_SMALL, color=_GREY, gid="not_shown")
    return fig
