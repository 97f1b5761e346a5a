"""plots.py: pure figures, no pyplot state, PNG bytes, in-place EMA redraws."""
from __future__ import annotations

import sys

import numpy as np
import pytest
from matplotlib.figure import Figure

from ckptwidgets import plots
from ckptwidgets.ema import closed_form, ema_trace, steps_to_reach

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def trace():
    return ema_trace(10.0, steps=400, decay=0.99)


def artist(fig, gid):
    return plots._artist(fig, gid)


def test_ema_figure_draws_trace_closed_form_and_markers(trace):
    closed = closed_form(10.0, steps=400, decay=0.99)
    fig = plots.ema_figure(trace, closed, target=10.0, reach_step=steps_to_reach(trace, 0.95), title="decay 0.99")
    assert isinstance(fig, Figure)
    x, y = artist(fig, "shadow").get_data()
    assert list(x[:2]) == [1, 2] and np.float32(y[0]) == np.float32(0.099999905)
    assert np.allclose(artist(fig, "closed").get_ydata(), closed)
    assert artist(fig, "first_label").get_text() == "step 1: 0.099999905"
    assert artist(fig, "reach_label").get_text() == "95% at step 299"
    assert list(artist(fig, "reach").get_xdata()) == [299, 299]
    assert list(artist(fig, "target").get_ydata()) == [10.0, 10.0]
    # A constant input is the target line already: the raw trajectory is hidden.
    assert not artist(fig, "values").get_visible()
    assert plots.figure_to_png(fig).startswith(PNG)


def test_update_reuses_the_figure_and_changes_the_image(trace):
    fig = plots.ema_figure(trace, target=10.0)
    lines = list(fig.axes[0].lines)
    before = plots.figure_to_png(fig)
    slower = ema_trace(10.0, steps=400, decay=0.9)
    assert plots.update_ema_figure(fig, slower, target=10.0, reach_step=29) is fig
    assert list(fig.axes[0].lines) == lines  # same artists, new data
    assert np.float32(artist(fig, "shadow").get_ydata()[0]) == slower.shadow[0]
    assert plots.figure_to_png(fig) != before


def test_noisy_values_are_drawn(trace):
    rng = np.random.default_rng(0)
    values = 10 + rng.standard_normal(200)
    noisy = ema_trace(values, decay=0.9)
    fig = plots.ema_figure(noisy, target=10.0)
    assert artist(fig, "values").get_visible()
    assert np.allclose(artist(fig, "values").get_ydata(), noisy.values)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "variable value" in labels and "closed form" not in labels


def test_reach_marker_hidden_when_never_reached(trace):
    fig = plots.ema_figure(trace, target=10.0, reach_step=None)
    assert not artist(fig, "reach").get_visible()
    fig = plots.ema_figure(trace, target=10.0, reach_step=10_000)  # past the end
    assert not artist(fig, "reach").get_visible()


def stairs(fig, gid):
    """(heights, edges) of a step patch."""
    data = artist(fig, gid).get_data()
    return data.values, data.edges


def bars(fig, gid):
    """(left edges, heights) of the bars one step patch draws (zero-height steps are gaps)."""
    heights, edges = stairs(fig, gid)
    shown = np.nonzero(heights)[0]
    return list(edges[shown]), list(heights[shown])


def test_histogram_small_and_large_and_non_numeric():
    scalar = plots.histogram_figure(np.float32(10.0), shadow=np.float32(0.1), title="v")
    assert [p.get_gid() for p in scalar.axes[0].patches] == ["raw", "shadow"]  # two artists, whatever the data
    # One bar each, side by side: raw left of the element's tick, shadow right of it.
    assert bars(scalar, "raw") == ([-0.4], [10.0])
    left, height = bars(scalar, "shadow")
    assert left == [0.0] and np.float32(height[0]) == np.float32(0.1)
    assert artist(scalar, "shadow").get_fill() and artist(scalar, "zero").get_visible()
    assert list(scalar.axes[0].get_xticks()) == [0]

    large = plots.histogram_figure(np.arange(1000.0), shadow=np.arange(1000.0) * 0.5, bins=20)
    counts, edges = stairs(large, "raw")
    assert len(counts) == 20 and counts.sum() == 1000 and edges[0] == 0 and edges[-1] == 999
    shadow_counts, shadow_edges = stairs(large, "shadow")
    assert shadow_counts.sum() == 1000 and list(shadow_edges) == list(edges)  # same bins, overlaid
    assert not artist(large, "shadow").get_fill()  # an outline over the filled raw bins
    assert [t.get_text() for t in large.axes[0].get_legend().get_texts()] == ["raw", "EMA shadow"]

    text = plots.histogram_figure(np.array([b"abc"]))
    assert artist(text, "message").get_visible() and "no numeric values" in artist(text, "message").get_text()
    assert not artist(text, "raw").get_visible()
    for fig in (scalar, large, text):
        assert plots.figure_to_png(fig).startswith(PNG)


def test_histogram_without_shadow_has_no_legend():
    fig = plots.histogram_figure(np.arange(100.0))
    assert not artist(fig, "shadow").get_visible()
    assert fig.axes[0].get_legend() is None or not fig.axes[0].get_legend().get_visible()


def test_update_histogram_reuses_the_figure_across_every_kind_of_picture():
    rng = np.random.default_rng(0)
    fig = plots.histogram_figure(rng.standard_normal(500), rng.standard_normal(500), title="first")
    patches = list(fig.axes[0].patches)
    pictures = [
        (np.float32(3.0), np.float32(1.0), "scalar"),
        (np.array([b"x"]), None, "string"),
        (np.array([1.0, -2.0, 3.0]), None, "three"),
        (rng.standard_normal(2000), rng.standard_normal(2000) * 0.5, "many"),
    ]
    for values, shadow, title in pictures:
        assert plots.update_histogram_figure(fig, values, shadow, title=title) is fig
        assert list(fig.axes[0].patches) == patches  # the same two artists, new data
        assert fig.axes[0].get_title() == title
        # The same picture as a new figure would give.
        assert plots.figure_to_png(fig) == plots.figure_to_png(plots.histogram_figure(values, shadow, title=title))
    # Back from element bars to a histogram: automatic ticks again, not the element indexes.
    ticks = fig.axes[0].get_xticks()
    assert len(ticks) > 2 and not np.array_equal(ticks, np.arange(len(ticks)))


def test_large_tensors_are_sampled_before_converting():
    big = np.ones(plots.HISTOGRAM_SAMPLE * 3, dtype=np.float16)
    fig = plots.histogram_figure(big)
    counts, _ = stairs(fig, "raw")
    assert counts.sum() == plots.HISTOGRAM_SAMPLE
    assert "strided sample" in fig.axes[0].get_xlabel()


def test_nonfinite_values_are_left_out():
    fig = plots.histogram_figure(np.array([1.0, np.nan, np.inf] + [2.0] * 20))
    counts, edges = stairs(fig, "raw")
    assert counts.sum() == 21 and edges[0] == 1.0 and edges[-1] == 2.0


def test_png_is_drawn_once_and_deterministic():
    fig = plots.histogram_figure(np.arange(50.0), title="w")
    draws = []
    fig.canvas.mpl_connect("draw_event", lambda event: draws.append(event))
    first = plots.figure_to_png(fig)
    assert len(draws) == 1  # one Agg drawing per PNG (savefig with a layout engine drew twice)
    assert plots.figure_to_png(fig) == first
    assert plots.figure_to_png(fig, dpi=45).startswith(PNG)  # another dpi still works (savefig)


def test_titles_are_plain_text():
    # Matplotlib would parse "$...$" as math (and fail on unbalanced dollars).
    fig = plots.histogram_figure([1.0, 2.0], title="a$b$ $ <img src=x onerror=alert(1)>")
    assert fig.axes[0].get_title() == "a$b$ $ <img src=x onerror=alert(1)>"
    assert plots.figure_to_png(fig).startswith(PNG)


def test_format_value_matches_tensorflow_printing():
    assert plots.format_value(np.float32(0.099999905)) == "0.099999905"
    assert plots.format_value(10.0) == "10"
    assert plots.format_value(np.float32(1e-7)) == "1e-07"
    assert plots.format_value(0.0) == "0"


def test_no_pyplot_state():
    # Building and rendering figures must not import pyplot (global figures, inline output).
    had_pyplot = "matplotlib.pyplot" in sys.modules
    plots.figure_to_png(plots.histogram_figure([1.0, 2.0, 3.0]))
    if not had_pyplot:
        assert "matplotlib.pyplot" not in sys.modules


def test_png_size_is_modest(trace):
    png = plots.figure_to_png(plots.ema_figure(trace, target=10.0))
    assert len(png) < 80_000


def test_title_in_a_script_the_font_lacks_draws_without_warnings():
    import warnings

    from ckptwidgets.plots import figure_to_png, histogram_figure

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        png = figure_to_png(histogram_figure([1.0, 2.0, 3.0], title="变量/权重"))
    assert png[:4] == b"\x89PNG"


# --- mapping_diagram (issue #14 item 6) -------------------------------------------------------

from ckptwidgets._text import diagram as _diagram  # noqa: E402  (its colours)


def _texts(fig):
    """``{gid: text}`` of the diagram's texts (arrows are annotations: their text is empty)."""
    return {t.get_gid(): t.get_text() for t in fig.axes[0].texts if t.get_gid()}


def _by_gid(fig, gid):
    return next(t for t in fig.axes[0].texts if t.get_gid() == gid)


def _color(artist):
    from matplotlib.colors import to_hex

    return to_hex(artist.get_color())


def _arrow_color(fig, name):
    from matplotlib.colors import to_hex

    return to_hex(_by_gid(fig, f"arrow:{name}").arrow_patch.get_edgecolor())


def test_mapping_diagram_partial_restore_greys_the_unmapped_variable(base_ckpt):
    import tensorflow as tf

    import ckptwidgets

    v1, v2 = tf.Variable([0.0], name="v1"), tf.Variable([0.0], name="v2")
    plan = ckptwidgets.plan_restore(base_ckpt, [v1, v2], include="v1")
    assert plan.unmapped == ["v2"]
    fig = plots.mapping_diagram(plan)
    assert isinstance(fig, Figure)
    texts = _texts(fig)
    assert texts["key:v1"] == "v1 [1]" and texts["key:v2"] == "v2 [1]"
    assert texts["var:v1"] == "v1 [1]" and texts["var:v2"] == "v2 [1]  (unmapped)"
    assert "arrow:v1" in texts and "arrow:v2" not in texts
    assert texts["title"] == "my_test_model.ckpt: 1 of 2 variables mapped"
    grey = _diagram._GREY
    assert _color(_by_gid(fig, "var:v2")) == grey and _color(_by_gid(fig, "key:v2")) == grey  # unmapped, unused
    assert _color(_by_gid(fig, "var:v1")) != grey
    arrow = _by_gid(fig, "arrow:v1")
    assert arrow.xy[1] == arrow.xyann[1] == 0  # row 0 of the keys into row 0 of the variables
    assert plots.figure_to_png(fig).startswith(PNG)


def test_mapping_diagram_renamed_by_rules(base_ckpt):
    import tensorflow as tf

    import ckptwidgets

    a1, a2 = tf.Variable([0.0], name="other-v1"), tf.Variable([0.0], name="other-v2")
    plan = ckptwidgets.plan_restore(base_ckpt, [a1, a2], rules={"v1": "other-v1", "v2": "other-v2"})
    fig = plots.mapping_diagram(plan, title="变量重命名 renamed")
    texts = _texts(fig)
    assert texts["title"] == "变量重命名 renamed"
    assert {g for g in texts if g.startswith("arrow:")} == {"arrow:other-v1", "arrow:other-v2"}
    # Arrows cross names: key v2 (row 1) into other-v2 (row 1), nothing greyed.
    arrow = _by_gid(fig, "arrow:other-v2")
    assert arrow.xyann[1] == -1 and arrow.xy[1] == -1
    assert _arrow_color(fig, "other-v1") == _diagram._ARROW
    assert not any(g.startswith(("problem:", "kind:")) for g in texts)


def test_mapping_diagram_ema_shadows_into_the_variables(ema_ckpt):
    import tensorflow as tf

    import ckptwidgets

    v, v2 = tf.Variable(0.0, name="v"), tf.Variable(0.0, name="v2")
    plan = ckptwidgets.plan_restore(ema_ckpt, [v, v2], prefer_ema=True)
    assert plan.mapping == {"v": "v/ExponentialMovingAverage", "v2": "v2/ExponentialMovingAverage"}
    fig = plots.mapping_diagram(plan)
    texts = _texts(fig)
    assert texts["kind:v/ExponentialMovingAverage"] == "EMA" and texts["kind:v2/ExponentialMovingAverage"] == "EMA"
    assert "kind:v" not in texts  # plain variables carry no badge
    # Keys in checkpoint order: v, v/ExponentialMovingAverage, v2, v2/ExponentialMovingAverage.
    assert _by_gid(fig, "arrow:v").xyann[1] == -1 and _by_gid(fig, "arrow:v2").xyann[1] == -3
    assert _arrow_color(fig, "v") == _diagram._EMA
    grey = _diagram._GREY
    assert _color(_by_gid(fig, "key:v")) == grey and _color(_by_gid(fig, "key:v2")) == grey  # the raw values: unused


def test_mapping_diagram_shape_problem_is_red_with_both_shapes(base_ckpt):
    import tensorflow as tf

    import ckptwidgets

    big, v2 = tf.Variable([0.0] * 4, name="v1"), tf.Variable([0.0], name="v2")
    plan = ckptwidgets.plan_restore(base_ckpt, [big, v2])
    assert [p.reason for p in plan.problems] == ["shape_mismatch"]
    fig = plots.mapping_diagram(plan)
    texts = _texts(fig)
    red = _diagram._RED
    assert texts["key:v1"] == "v1 [1]" and texts["var:v1"] == "v1 [4]"
    assert texts["problem:v1"] == "shape ≠" and "problem:v2" not in texts
    assert _color(_by_gid(fig, "key:v1")) == red and _color(_by_gid(fig, "var:v1")) == red
    assert _arrow_color(fig, "v1") == red and _arrow_color(fig, "v2") != red
    assert texts["title"].endswith("1 with problems")


def test_mapping_diagram_elides_long_lists_and_keeps_problems(tmp_path):
    import tensorflow as tf

    import ckptwidgets
    from conftest import save_graph_checkpoint

    prefix = save_graph_checkpoint(tmp_path / "many.ckpt", {f"net/l{i:02d}/w": [float(i)] for i in range(30)})
    variables = [tf.Variable([0.0], name=f"net/l{i:02d}/w") for i in range(29)] + [tf.Variable([0.0, 0.0], name="net/l29/w")]
    plan = ckptwidgets.plan_restore(prefix, variables)
    fig = plots.mapping_diagram(plan, max_rows=8)
    texts = _texts(fig)
    assert sum(g.startswith("var:") for g in texts) == 7 and texts["more_vars"] == "… 23 more variables"
    assert sum(g.startswith("key:") for g in texts) == 7 and texts["more_keys"] == "… 23 more keys"
    assert "var:net/l29/w" in texts and "problem:net/l29/w" in texts  # the problem is kept in view
    # Deterministic: the same plan, the same picture.
    assert plots.figure_to_png(fig) == plots.figure_to_png(plots.mapping_diagram(plan, max_rows=8))
    long = [tf.Variable([0.0], name="a/very/long/scope/name/that/never/seems/to/end/at/all/kernel")]
    texts = _texts(plots.mapping_diagram(ckptwidgets.plan_restore(prefix, long)))
    shown = texts["var:" + long[0].name.split(":")[0]]
    assert "…" in shown and shown.endswith("kernel [1]  (unmapped)")


def test_mapping_diagram_needs_no_pyplot(base_ckpt):
    import tensorflow as tf

    import ckptwidgets

    plan = ckptwidgets.plan_restore(base_ckpt, [tf.Variable([0.0], name="v1")])
    had_pyplot = "matplotlib.pyplot" in sys.modules
    plots.mapping_diagram(plan)
    assert had_pyplot or "matplotlib.pyplot" not in sys.modules


# --- CJK text (issue #14 item 7) -----------------------------------------------------------


def test_chinese_text_draws_with_a_cjk_font_and_no_missing_glyphs(base_ckpt):
    """No empty boxes: every figure function draws Chinese text with real glyphs.

    Skipped when no CJK font is installed, except in CI (``CI`` set), where it fails:
    binder/apt.txt and .ci/run install fonts-wqy-microhei.
    """
    import os
    import warnings

    import tensorflow as tf

    import ckptwidgets

    if not plots.cjk_fonts():
        message = "no CJK font installed (apt-get install fonts-wqy-microhei): Chinese text would draw as boxes"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    assert plots.font_family()[1] in plots.cjk_fonts()
    plan = ckptwidgets.plan_restore(base_ckpt, [tf.Variable([0.0], name="v1")])
    t = ema_trace(10.0, steps=20, decay=0.9)
    figures = [
        plots.mapping_diagram(plan, title="部分恢复：检查点 → 变量"),
        plots.histogram_figure([1.0, 2.0, 3.0], title="变量/权重 影子变量"),
        plots.ema_figure(t, target=10.0, title="滑动平均 衰减率 0.9"),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Glyph 21464 (\N{CJK UNIFIED IDEOGRAPH-53D8}) missing from font(s) DejaVu Sans."
        for fig in figures:
            fig.canvas.draw()  # not figure_to_png: it silences that warning where no CJK font exists
    assert _by_gid(figures[0], "title").get_fontfamily()[1] in plots.cjk_fonts()


def test_the_binder_image_and_ci_install_the_cjk_font():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    assert "fonts-wqy-microhei" in (root / "binder" / "apt.txt").read_text().split()
    assert "fonts-wqy-microhei" in (root / ".ci" / "run").read_text()


def test_fonts_leave_global_rcparams_alone():
    import matplotlib

    before = list(matplotlib.rcParams["font.family"])
    plots.histogram_figure([1.0], title="检查点")
    assert list(matplotlib.rcParams["font.family"]) == before


# --- issue #23: readable labels and legends --------------------------------------------------

def _mobilenet_like(tmp_path):
    """A teacher checkpoint with EMA shadows whose keys differ only in the middle (issue #23: three
    rows read ``teacher/Con…nentialMovingAverage [1280]``), and student variables of the same names."""
    from conftest import save_graph_checkpoint

    shapes = {"Conv_1/kernel": [1, 1, 4, 1280]}
    shapes.update({f"Conv_1_bn/{v}": [1280] for v in ("gamma", "beta", "moving_mean", "moving_variance")})
    shapes.update({f"block_{i}_expand_BN/{v}": [96] for i in (1, 12) for v in ("gamma", "beta")})
    values = {}
    for name, shape in shapes.items():
        values[f"teacher/{name}"] = np.zeros(shape, np.float32)
    prefix = save_graph_checkpoint(tmp_path / "teacher.ckpt", values, ema_decay=0.99)
    return prefix, shapes


def test_mapping_diagram_labels_tell_keys_apart(tmp_path):
    import tensorflow as tf

    import ckptwidgets

    prefix, shapes = _mobilenet_like(tmp_path)
    variables = [tf.Variable(np.zeros(shape, np.float32), name=f"student/{name}") for name, shape in shapes.items()]
    plan = ckptwidgets.plan_restore(prefix, variables, rules={"teacher/": "student/"}, prefer_ema=True)
    assert all(a.key.endswith("/ExponentialMovingAverage") for a in plan.assignments)
    fig = plots.mapping_diagram(plan, max_rows=12)
    texts = _texts(fig)
    keys = [t for g, t in texts.items() if g.startswith("key:")]
    names = [t for g, t in texts.items() if g.startswith("var:")]
    assert len(keys) == 11 and len(names) == 9  # rows: 9 variables, 9 shadows and 2 unused keys
    assert len(set(keys)) == len(keys), sorted(keys)
    assert len(set(names)) == len(names), sorted(names)
    # What tells the four [1280] shadows apart stays readable.
    for v in ("gamma", "beta", "moving_mean", "moving_variance"):
        (label,) = [t for g, t in texts.items() if g == f"key:teacher/Conv_1_bn/{v}/ExponentialMovingAverage"]
        assert f"/{v}/" in label and label.endswith(" [1280]"), label
    for text in fig.axes[0].texts:  # every label fits the column it is drawn in
        if text.get_gid().startswith("key:"):
            assert len(text.get_text()) <= 40, text.get_text()


def test_mapping_diagram_legend_is_readable(base_ckpt):
    import tensorflow as tf

    import ckptwidgets

    plan = ckptwidgets.plan_restore(base_ckpt, [tf.Variable([0.0], name="v1")])
    fig = plots.mapping_diagram(plan)
    legend = _by_gid(fig, "legend")
    assert legend.get_fontsize() >= 9  # 11 px at 90 dpi; it was 6.5 pt (8 px)
    fig.canvas.draw()
    assert legend.get_window_extent().width < fig.bbox.width  # whole, inside the figure


def test_histogram_legend_is_readable_and_off_the_bars():
    rng = np.random.default_rng(0)
    for values in (rng.normal(size=1000), np.arange(5.0)):  # a histogram, and bars per element
        fig = plots.histogram_figure(values, shadow=values * 0.9, title="teacher/block_12_depthwise_BN/moving_variance")
        ax = fig.axes[0]
        legend = ax.get_legend()
        assert legend.get_visible() and all(t.get_fontsize() >= 9 for t in legend.get_texts())
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        box, axes, title = legend.get_window_extent(renderer), ax.get_window_extent(renderer), ax.title.get_window_extent(renderer)
        assert box.y0 >= axes.y1 - 1, (box, axes)  # above the plotting area: on no bar
        assert title.y0 >= box.y1 - 1, (title, box)  # and under the title, not on it
        assert box.y1 <= fig.bbox.y1 and box.x1 <= fig.bbox.x1 + 1
