"""CheckpointBrowser without a browser: set values, click buttons, read the model and the view."""
from __future__ import annotations

import html
import time

import ipywidgets as widgets
import numpy as np
import pytest
from traitlets import TraitError

from ckptwidgets import CheckpointBrowser
from ckptwidgets._synthetic import HOSTILE_KEY, save_many
from ckptwidgets.widgets import BrowserModel
from ckptwidgets.widgets._inspect import count_children, iter_models, max_options, state_size

from conftest import save_graph_checkpoint


def keys_shown(browser):
    return [label.value for label in browser.table.column("key") if label.value]


@pytest.fixture(scope="module")
def big_ckpt(tmp_path_factory):
    """10,000 entries, the first one a key that is also markup."""
    return save_many(tmp_path_factory.mktemp("big") / "big.ckpt", 10_000)


def test_lists_entries_with_totals(ema_ckpt):
    browser = CheckpointBrowser(ema_ckpt)
    assert keys_shown(browser) == ["v", "v/ExponentialMovingAverage", "v2", "v2/ExponentialMovingAverage"]
    row = [cell.value for cell in browser.table.cells[1][1:]]
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
    assert browser.children == (browser.message,)
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
    assert seconds < 3.0, f"construction took {seconds:.2f}s"
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
