"""CheckpointDiff without a browser: set values, click buttons, read the model and the view."""
from __future__ import annotations

import html
import time

import ipywidgets as widgets
import numpy as np
import pytest
from traitlets import TraitError

from ckptwidgets import plots
from ckptwidgets.diff import diff_checkpoints
from ckptwidgets.errors import PlanError
from ckptwidgets.sources.arrays import ArraySource
from ckptwidgets.widgets import CheckpointDiff, DiffModel

from _synthetic import HOSTILE_KEY, save_many
from conftest import save_graph_checkpoint
from _widgets import count_children, iter_models, max_options, shown, state_size


def keys_shown(view):
    return [row.key for row in view.model.rows[view.table.page_slice()]]


@pytest.fixture
def pair(tmp_path):
    """Two small TF checkpoints with one row of every status."""
    a = save_graph_checkpoint(tmp_path / "a.ckpt", {
        "dense/kernel": np.arange(6, dtype=np.float32).reshape(2, 3), "dense/bias": np.zeros(3, np.float32),
        "gone": np.float32(7), "shape": np.zeros(2, np.float32), "dtype": np.zeros(2, np.float32),
        "old/w": np.arange(4, dtype=np.float32), "same": np.ones(2, np.float32),
    })
    b = save_graph_checkpoint(tmp_path / "b.ckpt", {
        "dense/kernel": np.arange(6, dtype=np.float32).reshape(2, 3) * 2, "dense/bias": np.full(3, 0.5, np.float32),
        "added": np.int64(3), "shape": np.zeros(3, np.float32), "dtype": np.zeros(2, np.float64),
        "new/w": np.arange(4, dtype=np.float32), "same": np.ones(2, np.float32),
    })
    return a, b


def test_table_lists_every_row_most_changed_first(pair):
    view = CheckpointDiff(*pair)
    model = view.model
    assert [r.key for r in model.rows] == [r.key for r in diff_checkpoints(*pair).rows]
    assert keys_shown(view) == ["gone", "added", "shape", "dtype", "dense/bias", "dense/kernel", "old/w", "same"]
    assert [shown(c) for c in view.table.cells[0][1:]] == ["only in a", "gone", "", "[]", "float32", "", ""]
    assert [shown(c) for c in view.table.cells[1][1:]] == ["only in b", "", "added", "[]", "int64", "", ""]
    assert [shown(c) for c in view.table.cells[2][1:4]] == ["shape changed", "shape", "shape"]
    assert view.table.cells[2][4].value == "[2] -> [3]"
    assert [shown(c) for c in view.table.cells[5][1:]] == ["changed", "dense/kernel", "dense/kernel", "[2, 3]",
                                                           "float32", "5", "1"]
    assert [shown(c) for c in view.table.cells[6][1:4]] == ["renamed", "old/w", "new/w"]
    assert view.table.pager_label.value == "page 1 of 1 · 8 rows"
    assert view.counts.value == "2 changed · 1 shape changed · 1 dtype changed · 1 renamed · 1 only in a · " \
                                "1 only in b · 1 identical"
    assert view.title.value.startswith(f"a: {pair[0]} (7 entries)  ·  b: {pair[1]} (7 entries)")
    assert view.table.cells[5][6].tooltip == "5.0"  # the exact number


def test_status_filter_from_the_dropdown_and_from_code(pair):
    view = CheckpointDiff(*pair)
    assert view.status_box.options == (("all (8)", "all"), ("changed (4)", "changed"), ("renamed (1)", "renamed"),
                                       ("only in one (2)", "only"), ("identical (1)", "identical"))
    view.status_box.value = "changed"
    assert view.model.status_filter == "changed"
    assert keys_shown(view) == ["shape", "dtype", "dense/bias", "dense/kernel"]
    assert view.table.rows_shown == 4
    view.model.status_filter = "only"
    assert view.status_box.value == "only" and keys_shown(view) == ["gone", "added"]
    view.status_box.value = "renamed"
    assert [(r.key_a, r.key_b) for r in view.model.rows] == [("old/w", "new/w")]
    view.status_box.value = "identical"
    assert keys_shown(view) == ["same"]
    with pytest.raises(TraitError, match="Unknown status filter 'moved'; filters are all, changed, renamed, only, identical"):
        view.model.status_filter = "moved"


def test_sort_by_change_key_status(pair):
    view = CheckpointDiff(*pair)
    view.sort_box.value = "key"
    assert keys_shown(view) == sorted(keys_shown(view))
    view.model.sort = "status"
    assert view.sort_box.value == "status"
    assert [r.status for r in view.model.rows] == ["only_a", "only_b", "shape_changed", "dtype_changed",
                                                    "changed", "changed", "renamed", "identical"]
    assert view.sort_box.options == (("most changed first", "change"), ("by key", "key"), ("by status", "status"))
    with pytest.raises(TraitError, match="Unknown sort 'size'"):
        view.model.sort = "size"


def test_filter_box_uses_the_filter_language(pair):
    view = CheckpointDiff(*pair)
    view.filter_box.value = "dense !bias"
    assert keys_shown(view) == ["dense/kernel"]
    view.filter_box.value = "new/"  # a renamed row is kept when either key passes
    assert keys_shown(view) == ["old/w"]
    view.filter_box.value = "kind:e"
    assert view.model.filter_error.startswith("Unknown kind 'e'") and view.filter_message.value == view.model.filter_error
    assert keys_shown(view) == ["old/w"]  # the last filter that worked
    view.filter_box.value = "!kind:variable"
    assert keys_shown(view) == [] and view.filter_message.layout.display == "none"


def test_row_button_shows_both_sides_and_histograms(pair):
    view = CheckpointDiff(*pair)
    model = view.model
    assert view.histogram.layout.display == "none"
    view.table.cells[5][0].click()  # dense/kernel
    assert model.selected == "dense/kernel" and model.row.status == "changed"
    assert view.selected_label.value == "changed: dense/kernel"
    assert view.a_label.value == "a dense/kernel: [2, 3] float32: min 0   max 5   mean 2.5   std 1.70783   (6 values, float32)"
    assert view.b_label.value.startswith("b dense/kernel: [2, 3] float32: min 0   max 10   mean 5")
    assert view.numbers_label.value == ("max |a - b| 5 · relative change 1 (||a - b|| / ||a||) · not identical")
    assert view.histogram.value[:4] == b"\x89PNG" and view.histogram.layout.display is None
    legend = model.canvas.figure.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["a", "b"] and legend.get_visible()
    # The picture is the one a new figure of the same data draws, legend aside.
    read_a, read_b = model.diff.a.read, model.diff.b.read
    assert model.canvas.figure.axes[0].get_title() == "dense/kernel"
    fresh = plots.histogram_figure(read_a("dense/kernel"), read_b("dense/kernel"), title="dense/kernel")
    fresh_patches = [p.get_verts().tolist() for p in fresh.axes[0].patches]
    assert [p.get_verts().tolist() for p in model.canvas.figure.axes[0].patches] == fresh_patches


def test_other_rows_in_the_details(pair):
    model = DiffModel(*pair)
    model.selected = "new/w"  # a key of b finds its renamed row
    assert model.row.key_a == "old/w"
    assert model.details[0] == "renamed: old/w -> new/w"
    assert model.details[3].endswith("· identical (same bytes)")
    assert model.canvas.figure.axes[0].get_title() == "old/w -> new/w"
    model.selected = "gone"
    assert model.details[1].startswith("a gone: [] float32: min 7") and model.details[2] == "b: not in this checkpoint"
    assert model.details[3] == "only in a: nothing to compare" and model.png[:4] == b"\x89PNG"
    model.selected = "added"
    assert model.details[1] == "a: not in this checkpoint" and model.details[2].startswith("b added: [] int64")
    model.selected = "shape"
    assert model.details[3] == "shapes differ: values not compared"
    model.selected = "dtype"
    assert model.details[3] == "dtypes differ: values not compared"
    assert model.canvas.drawings == 5
    model.select(None)
    assert model.row is None and model.details == () and model.png == b""


def test_statistics_reach_the_view_before_the_histogram(pair):
    view = CheckpointDiff(*pair)
    seen = []
    view.model.observe(lambda c: seen.append((c.name, view.numbers_label.value, view.histogram.value)), ["details", "png"])
    view.model.selected = "dense/bias"
    (first, numbers, image), (second, _, final) = seen
    assert (first, second) == ("details", "png")
    assert numbers.startswith("max |a - b| 0.5 · relative change inf") and image == b""
    assert final[:4] == b"\x89PNG"


def test_strings_and_unknown_keys():
    model = DiffModel(ArraySource({"s": np.array([b"a", b"b"]), "w": np.zeros(2)}),
                      ArraySource({"s": np.array([b"a", b"c"]), "w": np.zeros(2)}))
    model.selected = "s"
    assert model.details[3] == "not identical" and "no statistics" in model.details[1]
    assert model.png[:4] == b"\x89PNG"
    model.selected = "nothing"
    assert model.error == "No row of key 'nothing' in this diff." and model.row is None
    model.selected = "w"
    assert model.error == ""


def test_bad_path_is_a_message_not_a_traceback(tmp_path, pair):
    missing = str(tmp_path / "nope.ckpt")
    view = CheckpointDiff(pair[0], missing)
    assert view.model.diff is None and view.children[1:] == (view.message,)  # after the stylesheet
    assert "No checkpoint at" in view.message.value and missing in view.message.value
    assert view.message.layout.display is None and view.message.style.text_color == "#b00020"
    assert repr(view).startswith("CheckpointDiff: No checkpoint at")
    assert "ckptwidgets-diff" in view._dom_classes
    view.model.selected = "x"  # nothing to select, nothing raised
    with pytest.raises(PlanError, match="rtol must be"):
        DiffModel(pair[0], pair[1], rtol=-1)


def test_damaged_data_is_a_message(tmp_path):
    a = save_graph_checkpoint(tmp_path / "a.ckpt", {"w": np.arange(1000, dtype=np.float32)})
    b = save_graph_checkpoint(tmp_path / "b.ckpt", {"w": np.arange(1000, dtype=np.float32)})
    with open(b + ".data-00000-of-00001", "r+b") as handle:
        handle.truncate(100)
    view = CheckpointDiff(a, b)
    assert "Cannot read key 'w'" in view.message.value and view.model.diff is None


def test_plain_text_repr(pair):
    view = CheckpointDiff(*pair)
    bundle = view._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    text = bundle["text/plain"]
    assert text == repr(view) and len(text) > 110
    lines = text.splitlines()
    assert lines[0] == f"CheckpointDiff {view.model.title_text()}" and lines[1] == view.model.counts_text()
    assert "renamed        old/w -> new/w" in text
    view.model.status_filter = "changed"
    view.model.selected = "dense/kernel"
    text = repr(view)
    assert "showing changed, filter '': 4 rows" in text and "only_a" not in text
    assert text.splitlines()[-1].startswith("max |a - b| 5")


def test_pages_keep_the_widget_count(tmp_path):
    a = ArraySource({f"w{i:02d}": np.full(2, float(i)) for i in range(60)})
    b = ArraySource({f"w{i:02d}": np.full(2, float(i) * 2) for i in range(60)})
    view = CheckpointDiff(a, b)
    before = count_children(view)
    table = view.table
    assert table.pager_label.value == "page 1 of 3 · 60 rows"
    assert keys_shown(view)[0] == "w59"  # the largest change
    table.next_button.click()
    table.next_button.click()
    assert table.rows_shown == 10
    table.cells[0][0].click()
    assert view.model.selected == keys_shown(view)[0]
    table.cells[20][0].click()  # a hidden row: nothing happens
    assert view.model.selected == keys_shown(view)[0]
    view.status_box.value = "identical"  # the w00 row (0 * 2 == 0); back to the first page
    assert table.page == 0 and keys_shown(view) == ["w00"]
    assert count_children(view) == before


@pytest.fixture(scope="module")
def big_pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("bigdiff")
    return save_many(root / "a" / "m.ckpt", 10_000, seed=0), save_many(root / "b" / "m.ckpt", 10_000, seed=1)


def test_ten_thousand_entries_stay_small(big_pair, pair):
    start = time.perf_counter()
    view = CheckpointDiff(*big_pair)
    seconds = time.perf_counter() - start
    assert len(view.model.rows) == 10_000 and seconds < 10, f"construction took {seconds:.2f}s"
    small = CheckpointDiff(*pair)
    assert count_children(view) == count_children(small) < 260
    assert state_size(view) < 300_000
    assert max_options(view) <= 100
    assert view.table.pager_label.value == "page 1 of 400 · 10,000 rows"
    view.filter_box.value = "dense_3 bias"
    assert len(view.model.rows) == len([e for e in view.model.diff.a if "dense_3/bias" in e.key])
    assert count_children(view) == count_children(small)


def test_hostile_key_is_text_everywhere(big_pair):
    view = CheckpointDiff(*big_pair)
    view.model.sort = "key"
    assert keys_shown(view)[0] == HOSTILE_KEY  # "<" sorts before letters
    view.table.cells[0][0].click()
    assert view.model.selected == HOSTILE_KEY
    assert view.selected_label.value == f"changed: {HOSTILE_KEY}"
    assert view.table.cells[0][0].tooltip == f"Compare {HOSTILE_KEY}"
    assert HOSTILE_KEY in repr(view)
    labels = [w for w in iter_models(view) if isinstance(w, widgets.Label) and HOSTILE_KEY in w.value]
    assert len(labels) >= 3, "the key should be shown verbatim by Labels (the title, a, b)"
    cells = [c for c in view.table.cells[0][2:4] if shown(c) == HOSTILE_KEY]  # the key cells: escaped HTML
    assert len(cells) == 2 and all(html.escape(HOSTILE_KEY) in c.value for c in cells)
    assert all("mathjax_ignore" in label._dom_classes for label in labels)
    for widget in iter_models(view):
        if isinstance(widget, widgets.HTML):
            assert "<img" not in widget.value
            assert HOSTILE_KEY not in widget.value or html.escape(HOSTILE_KEY) in widget.value


def test_exported_from_the_widgets_package():
    import ckptwidgets.widgets as package

    assert package.CheckpointDiff is CheckpointDiff and package.DiffModel is DiffModel
    assert {"CheckpointDiff", "DiffModel"} <= set(package.__all__)
    assert issubclass(CheckpointDiff, widgets.VBox)


def test_selected_row_is_highlighted_and_the_sort_dropdown_is_whole(pair):
    """Issue #23: the diff marks its selected row as the browser does; its dropdowns show all of
    their text (the description at its own width, the box as wide as its options)."""
    view = CheckpointDiff(*pair)
    selected = view.model.rows.index(next(r for r in view.model.rows if r.key == "dense/kernel"))
    view.table.cells[selected][0].click()
    assert view.table.selected_row == selected
    marked = [i for i, cells in enumerate(view.table.cells) if "ckptwidgets-selected" in cells[1]._dom_classes]
    assert marked == [selected]
    view.model.sort = "key"  # the rows move: the mark follows the key
    row = [r.key for r in view.model.rows].index("dense/kernel")
    assert view.table.selected_row == row
    view.model.selected = None
    assert view.table.selected_row is None
    for box in (view.sort_box, view.status_box):
        assert box.style.description_width == "initial" and box.layout.width == "auto"
