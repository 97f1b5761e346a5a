"""CheckpointBrowser without a browser: set values, click buttons, read the model and the view."""
from __future__ import annotations

import html
import os
import statistics
import time

import ipywidgets as widgets
import numpy as np
import pytest
from traitlets import TraitError

from ckptwidgets import CheckpointBrowser, plots
from ckptwidgets._text.filter import FILTER_SYNTAX
from ckptwidgets.reader import Checkpoint
from ckptwidgets.sources.arrays import ArraySource
from ckptwidgets.widgets import BrowserModel
from ckptwidgets.widgets.browser import DETAILS_FIGSIZE

from _synthetic import HOSTILE_KEY, save_many
from conftest import save_graph_checkpoint, tf, v1_
from _widgets import count_children, iter_models, max_options, shown, state_size


def keys_shown(browser):
    return [shown(label) for label in browser.table.column("key") if label.value]


@pytest.fixture(scope="module")
def big_ckpt(tmp_path_factory):
    """10,000 entries, the first one a key that is also markup."""
    return save_many(tmp_path_factory.mktemp("big") / "big.ckpt", 10_000)


def test_lists_entries_with_totals(ema_ckpt):
    browser = CheckpointBrowser(ema_ckpt)
    assert keys_shown(browser) == ["v", "v/ExponentialMovingAverage", "v2", "v2/ExponentialMovingAverage"]
    row = [shown(cell) for cell in browser.table.cells[1][1:]]
    assert row == ["v/ExponentialMovingAverage", "ema", "float32", "[]", "4 B"]
    assert browser.totals.value.startswith("variable 2 (8 B) · ema 2 (8 B) · total 4 entries")
    assert browser.table.pager_label.value == "page 1 of 1 · 4 rows"


def test_filter_box_drives_model_and_table(ema_ckpt):
    browser = CheckpointBrowser(ema_ckpt)
    browser.filter_box.value = "V2"  # case-insensitive
    assert [e.key for e in browser.model.matches] == ["v2", "v2/ExponentialMovingAverage"]
    assert keys_shown(browser) == ["v2", "v2/ExponentialMovingAverage"]
    browser.filter_box.value = "v !moving"
    assert keys_shown(browser) == ["v", "v2"]


def test_filter_box_speaks_the_filter_language(ema_ckpt):
    browser = CheckpointBrowser(ema_ckpt)
    assert browser.filter_box.placeholder.startswith("filter keys") and "!kind:slot" in browser.filter_box.placeholder
    assert FILTER_SYNTAX in browser.filter_box.tooltip
    browser.filter_box.value = "!kind:ema"
    assert keys_shown(browser) == ["v", "v2"]
    browser.filter_box.value = "kind:ema V2"
    assert keys_shown(browser) == ["v2/ExponentialMovingAverage"]
    browser.filter_box.value = '"v2/exp"'
    assert keys_shown(browser) == ["v2/ExponentialMovingAverage"]
    # The kind boxes and the filter's kind terms both apply.
    browser.filter_box.value = "kind:variable,ema"
    browser.kind_boxes["ema"].value = False
    assert keys_shown(browser) == ["v", "v2"]


def test_bad_filter_term_is_a_message_and_keeps_the_table(ema_ckpt):
    browser = CheckpointBrowser(ema_ckpt)
    model = browser.model
    browser.filter_box.value = "kind:e"  # on the way to kind:ema
    assert model.filter_error.startswith("Unknown kind 'e' in filter term 'kind:e'; kinds are variable, ema, slot, meta")
    assert browser.filter_message.value == model.filter_error
    assert len(keys_shown(browser)) == 4  # the last filter that worked: none
    assert model.filter_error in repr(browser)
    browser.filter_box.value = "kind:ema"
    assert model.filter_error == "" and browser.filter_message.layout.display == "none"
    assert keys_shown(browser) == ["v/ExponentialMovingAverage", "v2/ExponentialMovingAverage"]


def test_model_changes_update_the_view(ema_ckpt):
    browser = CheckpointBrowser(ema_ckpt)
    browser.model.filter_text = "moving"
    assert browser.filter_box.value == "moving"
    assert keys_shown(browser) == ["v/ExponentialMovingAverage", "v2/ExponentialMovingAverage"]
    browser.model.filter_text = ""
    browser.model.kinds = ("variable",)
    assert browser.kind_boxes["ema"].value is False
    assert keys_shown(browser) == ["v", "v2"]


def test_kind_checkbox_hides_a_kind(ema_ckpt):
    browser = CheckpointBrowser(ema_ckpt)
    assert set(browser.kind_boxes) == {"variable", "ema"}
    assert browser.kind_boxes["ema"].description == "ema (2)"
    browser.kind_boxes["ema"].value = False
    assert browser.model.kinds == ("variable",)
    assert keys_shown(browser) == ["v", "v2"]


def test_bad_kind_is_refused_with_the_value(ema_ckpt):
    model = BrowserModel(ema_ckpt)
    with pytest.raises(TraitError, match="'weights'"):
        model.kinds = ("variable", "weights")


def test_row_button_selects_and_compares_with_shadow(ema_ckpt):
    browser = CheckpointBrowser(ema_ckpt)
    assert browser.histogram.layout.display == "none"
    browser.table.cells[0][0].click()  # row "v"
    model = browser.model
    assert model.selected == "v"
    assert (model.stats.min, model.stats.max, model.stats.mean, model.stats.std) == (10.0, 10.0, 10.0, 0.0)
    assert model.shadow.key == "v/ExponentialMovingAverage"
    assert np.float32(model.shadow_stats.mean) == np.float32(0.099999905)
    assert "max |raw - shadow| 9.9" in model.comparison
    assert browser.selected_label.value == "v"
    assert browser.stats_label.value.startswith("min 10   max 10   mean 10   std 0")
    assert browser.comparison_label.value == model.comparison
    assert browser.histogram.value[:4] == b"\x89PNG"
    assert browser.histogram.layout.display is None


def test_selecting_a_shadow_compares_with_its_variable(ema_ckpt):
    model = BrowserModel(ema_ckpt)
    model.selected = "v2/ExponentialMovingAverage"
    assert model.shadow.key == "v2"
    assert model.comparison.startswith("raw 'v2' vs EMA shadow 'v2/ExponentialMovingAverage'")


def test_selection_from_code_updates_the_view(ema_ckpt):
    browser = CheckpointBrowser(ema_ckpt)
    browser.model.select("v2")
    assert browser.selected_label.value == "v2"
    first = browser.histogram.value
    browser.model.select("v")
    assert browser.selected_label.value == "v"
    browser.model.select(None)
    assert browser.stats_label.value == ""
    assert browser.histogram.layout.display == "none"
    assert first[:4] == b"\x89PNG"


def test_variable_without_shadow_has_no_comparison(base_ckpt):
    model = BrowserModel(base_ckpt)
    model.selected = "v2"
    assert model.stats.mean == 2.0 and model.shadow is None and model.comparison == ""
    assert model.png[:4] == b"\x89PNG"


def test_unknown_key_is_a_message_not_a_traceback(base_ckpt):
    browser = CheckpointBrowser(base_ckpt)
    browser.model.selected = "v3"
    assert "'v3' not found" in browser.message.value
    assert browser.message.layout.display is None
    assert browser.message.style.text_color == "#b00020"
    browser.model.selected = "v1"
    assert browser.message.value == "" and browser.message.layout.display == "none"


def test_bad_path_shows_the_reason(tmp_path):
    missing = str(tmp_path / "nope.ckpt")
    browser = CheckpointBrowser(missing)
    assert browser.model.checkpoint is None
    assert browser.children[1:] == (browser.message,)  # after the stylesheet
    assert "No checkpoint at" in browser.message.value and missing in browser.message.value
    assert "No checkpoint at" in repr(browser)


def test_damaged_data_file_is_reported_on_selection(tmp_path):
    prefix = save_graph_checkpoint(tmp_path / "m.ckpt", {"w": np.arange(1000, dtype=np.float32)})
    data = prefix + ".data-00000-of-00001"
    with open(data, "r+b") as handle:
        handle.truncate(100)
    browser = CheckpointBrowser(prefix)
    browser.model.selected = "w"
    assert "Cannot read key 'w'" in browser.message.value
    assert browser.model.stats is None


def test_pages_keep_the_widget_count(tmp_path):
    prefix = save_graph_checkpoint(tmp_path / "m.ckpt", {f"w{i:02d}": float(i) for i in range(60)})
    browser = CheckpointBrowser(prefix)
    before = count_children(browser)
    table = browser.table
    assert table.pager_label.value == "page 1 of 3 · 60 rows"
    assert table.prev_button.disabled and not table.next_button.disabled
    table.next_button.click()
    assert keys_shown(browser)[0] == "w25"
    table.next_button.click()
    assert keys_shown(browser) == [f"w{i}" for i in range(50, 60)]
    assert table.next_button.disabled
    # Rows past the end are blank, their buttons hidden; clicking one selects nothing.
    assert table.cells[20][0].layout.visibility == "hidden"
    table.cells[20][0].click()
    assert browser.model.selected is None
    table.cells[0][0].click()
    assert browser.model.selected == "w50"
    # Filtering goes back to the first page.
    browser.filter_box.value = "w1"
    assert table.page == 0 and keys_shown(browser) == [f"w{i}" for i in range(10, 20)]
    assert count_children(browser) == before


def test_unused_rows_are_hidden_and_shown_again(tmp_path):
    prefix = save_graph_checkpoint(tmp_path / "m.ckpt", {f"w{i:02d}": float(i) for i in range(60)})
    browser = CheckpointBrowser(prefix)
    before = count_children(browser)
    table = browser.table

    def displays(row):
        return [cell.layout.display for cell in table.cells[row]]

    assert table.rows_shown == 25 and all(d is None for d in displays(24))
    table.page = 2  # 10 rows: the other 15 take no space (display none), not just blank
    assert table.rows_shown == 10
    assert [table.row_shown(row) for row in range(25)] == [True] * 10 + [False] * 15
    assert displays(9) == [None] * 6 and displays(10) == ["none"] * 6
    table.page = 0  # a full page shows them again
    assert table.rows_shown == 25 and displays(24) == [None] * 6
    assert table.cells[24][0].layout.visibility is None and not table.cells[24][0].disabled
    browser.filter_box.value = "w01"
    assert table.rows_shown == 1 and keys_shown(browser) == ["w01"]
    browser.filter_box.value = "no such key"
    assert table.rows_shown == 0 and table.pager_label.value == "page 1 of 1 · 0 rows"
    assert count_children(browser) == before


def test_css_classes(ema_ckpt, tmp_path):
    browser = CheckpointBrowser(ema_ckpt)
    assert "ckptwidgets-browser" in browser._dom_classes
    assert "ckptwidgets-table" in browser.table._dom_classes
    assert "ckptwidgets-message" in browser.message._dom_classes
    assert set(browser.message._dom_classes) >= {"mathjax_ignore", "tex2jax_ignore"}  # still skips MathJax
    broken = CheckpointBrowser(str(tmp_path / "nope.ckpt"))
    assert "ckptwidgets-browser" in broken._dom_classes
    assert "ckptwidgets-message" in broken.message._dom_classes


def test_plain_text_repr(ema_ckpt):
    browser = CheckpointBrowser(ema_ckpt)
    bundle = browser._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    text = bundle["text/plain"]
    assert text == repr(browser) and len(text) > 110
    assert "moving_average.ckpt" in text and "v2/ExponentialMovingAverage  ema" in text


def test_ten_thousand_entries_stay_small(big_ckpt, ema_ckpt):
    start = time.perf_counter()
    browser = CheckpointBrowser(big_ckpt)
    seconds = time.perf_counter() - start
    assert len(browser.model.checkpoint) == 10_000
    # A guard against work per entry in the widget (about 0.4 s alone), not a speed target: a
    # timed test fails under CI's load (the plan's did); `python -m bench.run` measures speed.
    assert seconds < 10.0, f"construction took {seconds:.2f}s"
    small = CheckpointBrowser(ema_ckpt)
    # Same number of widgets for 4 entries and for 10,000: only values change.
    assert count_children(browser) == count_children(small) < 200
    assert state_size(browser) < 250_000
    assert max_options(browser) <= 100
    assert browser.table.pager_label.value == "page 1 of 400 · 10,000 rows"
    browser.filter_box.value = "dense_3 bias"
    assert len(browser.model.matches) == len([e for e in browser.model.checkpoint if "dense_3/bias" in e.key])
    assert count_children(browser) == count_children(small)


def test_hostile_key_is_text_everywhere(big_ckpt):
    browser = CheckpointBrowser(big_ckpt)
    assert keys_shown(browser)[0] == HOSTILE_KEY  # "<" sorts before letters
    browser.table.cells[0][0].click()
    assert browser.model.selected == HOSTILE_KEY
    assert browser.selected_label.value == HOSTILE_KEY
    assert browser.table.cells[0][0].tooltip == f"Statistics of {HOSTILE_KEY}"
    assert HOSTILE_KEY in repr(browser)
    labels = [w for w in iter_models(browser) if isinstance(w, widgets.Label) and HOSTILE_KEY in w.value]
    assert labels, "the key should be shown verbatim by a Label"
    # Labels skip MathJax, so "$...$" in a key stays text too.
    assert all("mathjax_ignore" in label._dom_classes for label in labels)
    for widget in iter_models(browser):
        if isinstance(widget, widgets.HTML):
            assert "<img" not in widget.value
            assert HOSTILE_KEY not in widget.value or html.escape(HOSTILE_KEY) in widget.value


def test_public_name_is_the_widget():
    import ckptwidgets

    assert ckptwidgets.CheckpointBrowser is CheckpointBrowser
    assert issubclass(CheckpointBrowser, widgets.VBox)


# --- selecting: statistics at once, then one histogram drawing ------------------------------


def small_entries(n=10, seed=0):
    """``n`` small variables (scalars to 64 x 64) with EMA shadows, in memory."""
    rng = np.random.default_rng(seed)
    shapes = [(), (1,), (10,), (100,), (1000,), (32, 32), (64, 64), (3, 3, 16, 32), (128,), (256, 10)]
    arrays = {}
    for i in range(n):
        value = rng.standard_normal(shapes[i % len(shapes)]).astype(np.float32)
        arrays[f"layer{i}/kernel"] = value
        arrays[f"layer{i}/kernel/ExponentialMovingAverage"] = (0.9 * value).astype(np.float32)
    return Checkpoint(ArraySource(arrays))


def selection_times(model, keys, clock=time.perf_counter):
    """Seconds each selection of ``keys`` takes, in order (statistics, comparison and histogram)."""
    times = []
    for key in keys:
        start = clock()
        model.selected = key
        times.append(clock() - start)
        assert model.stats is not None and model.png[:4] == b"\x89PNG", key
    return times


def test_selections_share_one_figure_and_draw_once_each():
    browser = CheckpointBrowser(small_entries())
    model = browser.model
    keys = [e.key for e in model.matches]
    model.selected = keys[0]
    figure = model.canvas.figure
    draws = []
    figure.canvas.mpl_connect("draw_event", lambda event: draws.append(event))
    created = []
    original = plots.histogram_figure
    plots.histogram_figure = lambda *a, **k: created.append(1) or original(*a, **k)
    try:
        selection_times(model, keys[1:])
    finally:
        plots.histogram_figure = original
    assert model.canvas.figure is figure and created == []  # no new figure after the first
    assert len(draws) == len(keys) - 1 == model.canvas.drawings - 1  # one Agg drawing per selection
    # And the picture is the one a new figure of the same data gives (a shadow selected:
    # its variable is the raw values, the shadow overlaid).
    assert keys[-1] == "layer9/kernel/ExponentialMovingAverage" and model.shadow.key == "layer9/kernel"
    read = model.checkpoint.read
    fresh = plots.histogram_figure(read("layer9/kernel"), read(keys[-1]), title=keys[-1], figsize=DETAILS_FIGSIZE)
    assert browser.histogram.value == model.png == plots.figure_to_png(fresh)


def test_statistics_reach_the_view_before_the_histogram(ema_ckpt):
    browser = CheckpointBrowser(ema_ckpt)
    seen = []
    browser.model.observe(lambda c: seen.append((c.name, browser.stats_label.value, browser.histogram.value)),
                          ["details", "png"])
    browser.model.selected = "v2"
    (first, stats, image), (second, _, final_image) = seen
    assert (first, second) == ("details", "png")
    assert stats.startswith("min 10") and image == b""  # the numbers are shown, no picture yet
    assert final_image[:4] == b"\x89PNG"
    assert browser.selected_label.value == "v2" and browser.comparison_label.value == browser.model.comparison


def test_selecting_a_small_entry_takes_well_under_100_ms():
    """The issue's target: statistics of a small tensor within 100 ms. Asserted on CPU time (other
    processes on the machine do not count); the wall-clock medians are printed (pytest -s)."""
    model = BrowserModel(small_entries(20))
    keys = [e.key for e in model.matches][:20]
    model.selected = keys[-1]  # the first selection builds the figure
    cpu = selection_times(model, keys, clock=time.process_time)
    wall = selection_times(model, list(reversed(keys)))
    print(f"\n20 selections of small entries: median {statistics.median(wall) * 1e3:.1f} ms wall clock, "
          f"{statistics.median(cpu) * 1e3:.1f} ms CPU (max {max(wall) * 1e3:.1f} ms)")
    assert statistics.median(cpu) < 0.1, cpu


def test_histogram_kinds_of_pictures_in_one_browser(tmp_path):
    strings = Checkpoint(ArraySource({"names": np.array([b"a", b"b"]), "w": np.arange(40, dtype=np.float32),
                                      "nan": np.array([np.nan, 1.0, 2.0], np.float32)}))
    model = BrowserModel(strings)
    for key in ("w", "names", "nan", "w"):
        model.selected = key
        assert model.png[:4] == b"\x89PNG", key
    model.selected = "names"
    assert model.stats.mean is None and "no statistics" in str(model.stats)
    model.selected = "nan"
    assert model.stats.nonfinite == 1 and model.stats.mean == 1.5


# --- steps of one run ---------------------------------------------------------------------


@pytest.fixture
def steps_ckpt(tmp_path):
    """``model.ckpt-0``, ``-999`` and ``-1000`` of one run: w (3 values) = the step, with an EMA shadow."""
    graph = tf.Graph()
    with graph.as_default():
        step = v1_.train.get_or_create_global_step()
        w = v1_.Variable(np.zeros(3, np.float32), name="w")
        ema = v1_.train.ExponentialMovingAverage(0.5)
        update = ema.apply([w])
        saver = v1_.train.Saver()
        prefix = str(tmp_path / "model.ckpt")
        with v1_.Session(graph=graph) as sess:
            sess.run(v1_.global_variables_initializer())
            for value in (0, 999, 1000):
                sess.run([v1_.assign(w, np.full(3, value, np.float32)), v1_.assign(step, value)])
                sess.run(update)
                saver.save(sess, prefix, global_step=value)
    return prefix


def test_step_dropdown_switches_checkpoints(steps_ckpt):
    browser = CheckpointBrowser(steps_ckpt + "-1000")
    model = browser.model
    assert model.step == 1000 and [s for s, _ in model.steps] == [0, 999, 1000]
    assert browser.step_box.layout.display is None and browser.step_box in browser.controls.children
    assert browser.step_box.options == (("step 1000 (latest)", 1000), ("step 999", 999), ("step 0", 0))
    assert browser.step_box.label == "step 1000 (latest)"
    assert "step 1000 of steps 0, 999, 1000" in repr(browser)

    browser.filter_box.value = "w"
    browser.kind_boxes["meta"].value = False
    kinds = model.kinds
    model.selected = "w"
    assert model.stats.mean == 1000.0
    before = count_children(browser)

    model.step = 999  # from code
    assert model.checkpoint.prefix == steps_ckpt + "-999" and browser.step_box.value == 999
    assert model.selected is None and model.stats is None and model.details == ()
    assert browser.selected_label.value == "" and browser.histogram.layout.display == "none"
    assert model.filter_text == "w" and model.kinds == kinds  # kept
    assert keys_shown(browser) == ["w", "w/ExponentialMovingAverage"]
    assert browser.title.value.startswith(steps_ckpt + "-999")
    model.selected = "w"
    assert model.stats.mean == 999.0

    browser.step_box.value = 0  # from the dropdown
    assert model.step == 0 and model.checkpoint.prefix == steps_ckpt + "-0"
    assert model.selected is None and browser.filter_box.value == "w"
    browser.table.cells[0][0].click()
    assert model.selected == "w" and model.stats.mean == 0.0
    assert count_children(browser) == before


def test_step_is_validated_with_the_value(steps_ckpt):
    model = BrowserModel(steps_ckpt + "-999")
    with pytest.raises(TraitError, match=r"step 5 is not a step of .*model\.ckpt-999'; its steps: 0, 999, 1000"):
        model.step = 5
    with pytest.raises(TraitError, match="step None is not a step"):
        model.step = None
    assert model.step == 999


def test_a_step_that_cannot_be_opened_is_a_message(steps_ckpt):
    browser = CheckpointBrowser(os.path.dirname(steps_ckpt))  # a folder: its latest checkpoint
    model = browser.model
    assert model.step == 1000
    for name in os.listdir(os.path.dirname(steps_ckpt)):
        if name.startswith("model.ckpt-0.data"):
            os.remove(os.path.join(os.path.dirname(steps_ckpt), name))
        if name == "model.ckpt-0.index":
            with open(os.path.join(os.path.dirname(steps_ckpt), name), "r+b") as handle:
                handle.truncate(10)
    browser.step_box.value = 0
    assert model.step == 1000 and browser.step_box.value == 1000  # back where it was
    assert "model.ckpt-0" in browser.message.value and browser.message.layout.display is None
    assert model.checkpoint.prefix.endswith("model.ckpt-1000")


def test_without_steps_no_dropdown_shows(base_ckpt):
    browser = CheckpointBrowser(base_ckpt)
    assert browser.model.steps == () and browser.model.step is None
    assert browser.step_box.layout.display == "none"
    assert "step" not in repr(browser).splitlines()[2]


# --- issue #15 item 5: navigation that scales ------------------------------------------------

def _sizes_source():
    rng = np.random.default_rng(0)
    arrays = {f"block_{i}/w": rng.normal(size=(i, 3)).astype(np.float32) for i in (1, 2, 10, 11)}
    arrays["block_2/w/ExponentialMovingAverage"] = (arrays["block_2/w"] * 0.9).astype(np.float32)
    arrays["global_step"] = np.array(7, dtype=np.int64)
    return Checkpoint(ArraySource(arrays))


def test_sort_natural_kind_size_shape():
    browser = CheckpointBrowser(_sizes_source())
    assert keys_shown(browser) == ["block_1/w", "block_2/w", "block_2/w/ExponentialMovingAverage", "block_10/w",
                                   "block_11/w", "global_step"]  # block_2 before block_10
    browser.sort_box.value = "size"
    assert keys_shown(browser)[:2] == ["block_11/w", "block_10/w"] and keys_shown(browser)[-1] == "global_step"
    browser.sort_box.value = "kind"
    kinds = [label.value for label in browser.table.column("kind") if label.value]
    assert kinds == sorted(kinds, key=["variable", "ema", "slot", "meta"].index)
    browser.sort_box.value = "shape"
    assert keys_shown(browser)[0] == "global_step"  # rank 0 first, then [1, 3], [2, 3], [10, 3]...
    assert keys_shown(browser)[1:3] == ["block_1/w", "block_2/w"]
    assert [label for label, _ in browser.sort_box.options][0].startswith("key (block_2 before block_10)")


def test_first_last_and_page_box_and_one_page_has_no_pager(tmp_path):
    prefix = save_graph_checkpoint(tmp_path / "m.ckpt", {f"w{i}": float(i) for i in range(60)})
    browser = CheckpointBrowser(prefix, page_size=10)
    table = browser.table
    assert table.first_button.disabled and table.page_box.value == 1 and table.page_box.max == 6
    table.last_button.click()
    assert table.page == 5 and keys_shown(browser)[-1] == "w59" and table.page_box.value == 6
    table.first_button.click()
    assert keys_shown(browser)[0] == "w0"
    table.page_box.value = 3  # typed, Enter
    assert table.page == 2 and keys_shown(browser)[0] == "w20"  # natural order: w2 .. w9 then w10
    browser.filter_box.value = "w5"
    assert table.n_pages == 2
    browser.filter_box.value = "w59"
    assert table.n_pages == 1 and table.prev_button.layout.display == "none"
    assert table.page_box.layout.display == "none" and table.pager_label.value == "page 1 of 1 · 1 rows"


def test_jump_to_a_key_selects_and_highlights_its_row(tmp_path):
    prefix = save_graph_checkpoint(tmp_path / "m.ckpt", {f"w{i}": float(i) for i in range(60)})
    browser = CheckpointBrowser(prefix, page_size=10)
    browser.jump_box.value = "w42"
    assert browser.table.page == 4 and browser.model.selected == "w42"
    row = keys_shown(browser).index("w42")
    key_cell = browser.table.column("key")[row]
    assert "ckptwidgets-selected" in key_cell._dom_classes
    others = [c for i, c in enumerate(browser.table.column("key")) if i != row]
    assert not any("ckptwidgets-selected" in c._dom_classes for c in others)
    browser.table.first_button.click()  # the selected row is not on this page: no highlight
    assert not any("ckptwidgets-selected" in c._dom_classes for c in browser.table.column("key"))
    browser.jump_box.value = "nothing like it"
    assert "No key shown matches 'nothing like it'" in browser.message.value
    # The details sit beside the table (wrapping under it when narrow), not below the page.
    assert browser.body.children == (browser.table, browser.details)
    assert browser.body.layout.flex_flow == "row wrap"


def test_histogram_of_raw_minus_ema():
    browser = CheckpointBrowser(_sizes_source())
    model = browser.model
    model.selected = "block_1/w"  # no shadow: no choice offered
    assert browser.histogram_box.layout.display == "none" and model.difference_values() is None
    model.selected = "block_2/w"
    assert browser.histogram_box.layout.display is None
    before = model.png
    browser.histogram_box.value = "difference"
    raw = model.checkpoint.read("block_2/w")
    np.testing.assert_allclose(np.sort(model.difference_values()), np.sort((raw - (raw * 0.9).astype(np.float32)).ravel()),
                               rtol=1e-6)
    assert model.png != before and model.png.startswith(b"\x89PNG")
    assert "−" in model.canvas.figure.axes[0].get_title()


def test_every_widget_carries_the_stylesheet_that_wraps_text(ema_ckpt, tmp_path):
    from ckptwidgets import CheckpointDiff, EMAExplorer, VariableMapper
    from ckptwidgets.widgets import reload_hint
    from ckptwidgets.widgets._base import STYLESHEET

    views = [CheckpointBrowser(ema_ckpt), CheckpointBrowser(str(tmp_path / "missing")),
             VariableMapper(ema_ckpt, [tf.Variable(0.0, name="v")]), EMAExplorer(steps=10),
             CheckpointDiff(ema_ckpt, ema_ckpt)]
    for view in views:
        assert "ckptwidgets-root" in view._dom_classes, type(view).__name__
        sheets = [c for c in view.children if isinstance(c, widgets.HTML) and c.value.startswith("<style>")]
        assert len(sheets) == 1 and sheets[0].layout.display == "none", type(view).__name__
    assert "white-space: normal" in STYLESHEET and "overflow-x: auto" in STYLESHEET
    hint = reload_hint()._repr_html_()
    assert "run this cell again" in hint and "Error displaying widget" not in hint


def test_every_widget_with_controls_keeps_its_keys(ema_ckpt):
    """Each widget's outermost box holds one hidden KeyboardGuard (issue #15: arrow keys on a
    focused dropdown choose, they do not move the notebook; the browser tests press them)."""
    from ckptwidgets import CheckpointDiff, EMAExplorer, VariableMapper
    from ckptwidgets.widgets._keyboard import KeyboardGuard

    views = [CheckpointBrowser(ema_ckpt), VariableMapper(ema_ckpt, [tf.Variable(0.0, name="v")]),
             EMAExplorer(steps=10), CheckpointDiff(ema_ckpt, ema_ckpt)]
    for view in views:
        guards = [c for c in view.children if isinstance(c, KeyboardGuard)]
        assert len(guards) == 1 and guards[0].layout.display == "none", type(view).__name__
    assert "data-lm-suppress-shortcuts" in KeyboardGuard._esm and ":read-write" in KeyboardGuard._esm


def test_the_registry_lists_every_widget_and_everything_follows_from_it():
    """ckptwidgets.widgets.WIDGETS is the one list: each widget is a WidgetRoot of its module, a
    lazy name of ckptwidgets and of ckptwidgets.widgets, and has its DOM class (the diff had none
    in CSS_CLASSES); every WidgetRoot of the package is listed."""
    import importlib
    import inspect
    import pkgutil

    import ckptwidgets
    import ckptwidgets.widgets as package
    from ckptwidgets.widgets import WIDGETS
    from ckptwidgets.widgets._base import TableView, WidgetRoot, widget_module
    from ckptwidgets.widgets._text import CSS_CLASSES

    assert WIDGETS == {"CheckpointBrowser": "browser", "VariableMapper": "mapper", "EMAExplorer": "ema_explorer",
                       "CheckpointDiff": "diff"}
    for name, module in WIDGETS.items():
        widget = getattr(importlib.import_module(f"ckptwidgets.widgets.{module}"), name)
        assert issubclass(widget, WidgetRoot) and widget_module(widget) == module
        assert getattr(ckptwidgets, name) is widget and getattr(package, name) is widget
        assert name in ckptwidgets.__all__ and name in package.__all__
        assert CSS_CLASSES[module].startswith("ckptwidgets-")
    assert CSS_CLASSES["diff"] == "ckptwidgets-diff" and CSS_CLASSES["ema_explorer"] == "ckptwidgets-ema"
    roots = set()
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"ckptwidgets.widgets.{info.name}")
        roots |= {cls.__name__ for _, cls in inspect.getmembers(module, inspect.isclass)
                  if issubclass(cls, WidgetRoot) and cls.__module__ == module.__name__ and cls not in (WidgetRoot, TableView)}
    assert roots == set(WIDGETS)
    # The browser and the diff are one view: a paged table, a selection and a histogram.
    assert issubclass(CheckpointBrowser, TableView) and issubclass(package.CheckpointDiff, TableView)
    with pytest.raises(TypeError, match="WIDGETS"):
        widget_module(type("Unlisted", (WidgetRoot,), {}))
