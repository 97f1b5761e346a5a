"""The teaching notebooks run top to bottom and show the values of SCENARIOS.md.

Each notebook is executed once, in a fresh kernel, by the test that checks it
(marked ``notebook``). The committed files are also checked to hold no outputs.
Cells ``NN-cw-*`` are the "With ckptwidgets" sections (issues #3, #4); a widget
cell's text is the widget's plain-text repr, which nbclient stores next to the
widget view.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from _notebooks import SHARED_TMP, cell_text, executed, files_of_run, has_png, outputs_text, stream_text

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"

ISSUE_2_NOTEBOOKS = [
    "01_save_a_checkpoint.ipynb",
    "02_partial_restore.ipynb",
    "03_restore_under_other_names.ipynb",
    "04_exponential_moving_averages.ipynb",
    "05_restore_the_moving_average.ipynb",
]
ALL_NOTEBOOKS = ISSUE_2_NOTEBOOKS + [
    "06_explore_a_real_checkpoint.ipynb",
    "07_write_a_converted_checkpoint.ipynb",
    "08_migrate_to_keras3.ipynb",
    "09_take_your_checkpoint_to_pytorch.ipynb",
]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

# Text that means TensorFlow (or another library) leaked log noise into a cell.
NOISE = [
    re.compile(r"onednn", re.IGNORECASE),
    re.compile(r"cuda", re.IGNORECASE),
    re.compile(r"WARNING"),
    re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d", re.MULTILINE),  # absl / C++ log line
]


@pytest.fixture(scope="module", autouse=True)
def _matplotlib_font_cache():
    """Build matplotlib's font cache here, so a first run cannot announce it in a cell."""
    import matplotlib.font_manager  # noqa: F401


def execute(name):
    nb = executed(NOTEBOOKS / name)  # one run per session, shared with test_exercises.py
    assert stream_text(nb, "stderr") == "", f"{name} wrote to stderr:\n{stream_text(nb, 'stderr')}"
    assert_files_stay_beside_the_notebook(name, nb)
    text = outputs_text(nb)
    for pattern in NOISE:
        match = pattern.search(text)
        assert match is None, f"{name} shows log noise {match.group(0)!r}:\n{text}"
    return nb


def assert_files_stay_beside_the_notebook(name, nb):
    """Issue #23 item 7: a notebook writes into work/NN beside it, never into a shared /tmp
    folder (on a JupyterHub every learner's kernel has the same /tmp)."""
    files = files_of_run(nb)
    number = name[:2]
    assert files.shared_after == files.shared_before, (
        f"{name} changed {SHARED_TMP}:\nbefore {files.shared_before}\nafter {files.shared_after}"
    )
    stray = [path for path in files.kernel_tmp if "ckptwidgets" in path or ".ckpt" in path]
    assert not stray, f"{name} wrote into the kernel's temporary folder: {stray}"
    written = [path for path in files.beside if path.startswith(f"work/{number}/")]
    assert written, f"{name} wrote nothing into work/{number} beside it: {files.beside}"
    elsewhere = [path for path in files.beside if not path.startswith(f"work/{number}") and path != "work"]
    assert not elsewhere, f"{name} wrote beside the notebook outside work/{number}: {elsewhere}"


def shows(nb, cell_id, expected):
    """Assert that cell ``cell_id`` shows ``expected`` (a substring of its output)."""
    text = cell_text(nb, cell_id)
    assert expected in text, f"cell {cell_id} should show {expected!r}, shows:\n{text}"


def shows_exactly(nb, cell_id, expected):
    text = cell_text(nb, cell_id)
    assert text == expected, f"cell {cell_id} should show exactly:\n{expected}\nshows:\n{text}"


def shows_match(nb, cell_id, pattern):
    """Assert that cell ``cell_id`` shows text matching the regex ``pattern`` (re.search)."""
    text = cell_text(nb, cell_id)
    assert re.search(pattern, text), f"cell {cell_id} should match {pattern!r}, shows:\n{text}"


def widget_state(nb):
    """``{model_id: state}`` of every widget model, as nbclient recorded them at the end."""
    bundle = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    return {model_id: model["state"] for model_id, model in bundle.get("state", {}).items()}


def shows_widget(nb, cell_id, text_start):
    """Assert that the cell's result is a live widget whose plain-text repr starts with ``text_start``."""
    cell = next(c for c in nb.cells if c.get("id") == cell_id)
    results = [out for out in cell.outputs if out.output_type == "execute_result"]
    assert results, f"cell {cell_id} should end with the widget as its last expression"
    data = results[-1].data
    assert WIDGET_VIEW in data, f"cell {cell_id} shows no widget view: {sorted(data)}"
    model_id = data[WIDGET_VIEW]["model_id"]
    assert model_id in widget_state(nb), f"cell {cell_id}: widget model {model_id} was never sent to the front end"
    assert data["text/plain"].startswith(text_start), data["text/plain"]


@pytest.mark.notebook
def test_01_save_a_checkpoint():
    nb = execute("01_save_a_checkpoint.ipynb")
    files = cell_text(nb, "01-files")
    for name in (
        "my_test_model.ckpt.index",
        "my_test_model.ckpt.data-00000-of-00001",
        "my_test_model.ckpt.meta",
        "checkpoint ",
    ):
        assert name in files, f"the save should write {name!r}; the folder holds:\n{files}"
    assert len(files.splitlines()) == 4, files
    shows(nb, "01-save", "values: [array([1.], dtype=float32), array([2.], dtype=float32)]")
    shows(nb, "01-latest", "True")
    shows_exactly(nb, "01-keys", "v1 [1]\nv2 [1]\n")
    shows_exactly(nb, "01-reader", "v1 float32 [1.]\nv2 float32 [2.]\n")
    # Issue #14: the scoped key of exercise 2, listed after the learner's prediction.
    shows_exactly(nb, "01-scoped-list", "model/dense/kernel [2, 3]\n")


@pytest.mark.notebook
def test_02_partial_restore():
    nb = execute("02_partial_restore.ipynb")
    shows(nb, "02-base", "[('v1', [1]), ('v2', [1])]")
    shows_exactly(
        nb, "02-ref-error", "FailedPreconditionError: Attempting to use uninitialized value v2\n"
    )
    shows(
        nb,
        "02-resource-error",
        "FailedPreconditionError: Could not find variable v2. This could mean that the variable "
        "has been deleted. In TF1, it can also mean the variable is uninitialized.",
    )
    shows_exactly(nb, "02-fix", "use_resource=False: [3.]\nuse_resource=True: [3.]\n")
    # Issue #14: why graph mode allows it, the full traceback once, the v2-only mirror image.
    shows_exactly(
        nb,
        "02-why",
        "when the session starts: [b'v1' b'v2']\nafter the restore of var_list=[v1]: [b'v2']\n"
        "v2's initialiser, an op nobody ran: v2/Assign\n",
    )
    shows_exactly(nb, "02-why-eager", "eager, right after creation: [2.]\n")
    traceback_cell = next(c for c in nb.cells if c.get("id") == "02-traceback")
    assert "raises-exception" in traceback_cell.metadata.get("tags", [])
    assert [o.get("ename") for o in traceback_cell.outputs] == ["FailedPreconditionError"], traceback_cell.outputs
    for part in ("During handling of the above exception", "Node: 'add/ReadVariableOp'", "Could not find variable v2", "in build_graph"):
        shows(nb, "02-traceback", part)
    assert_the_traceback_is_read_as_shown(nb)
    shows(nb, "02-only-v2-error", "FailedPreconditionError: Could not find variable v1.")
    shows_exactly(
        nb, "02-order", "initialise, then restore: [3.]\nrestore, then initialise: [2.]\n"
    )
    shows_exactly(
        nb, "02-tf2-name-based", "NameBasedSaverStatus\nv1 = [1.]  v2 = [2.]  v1 + v2 = [3.]\n"
    )
    shows_exactly(nb, "02-tf2-unnamed", "Variable:0 [0.]\n")
    shows_exactly(nb, "02-tf2-reader", "v1 + v2 = [3.]\n")
    shows(nb, "02-tf2-object", "v1/.ATTRIBUTES/VARIABLE_VALUE [1]")
    shows(nb, "02-tf2-object", "v1 + v2 = [3.]")
    # Issue #14: the same in TF 2.21 / Keras 3.
    keras_lines = cell_text(nb, "02-keras").splitlines()
    assert keras_lines[0].startswith("without skip_mismatch: ValueError - A total of 1 objects could not be loaded."), keras_lines
    assert keras_lines[1:] == [
        "with skip_mismatch=True: 1 warning about the head",
        "base loaded: True",
        "head kept its initial weights, shape (8, 5)",
    ], keras_lines
    shows(nb, "02-keras-ckpt", "ValueError - File format not supported: filepath=")
    # With ckptwidgets
    assert cell_text(nb, "02-cw-open").endswith(
        "v1 (1,) float32 variable\nv2 (1,) float32 variable\n"
    ), cell_text(nb, "02-cw-open")
    shows_exactly(
        nb,
        "02-cw-plan",
        "unmapped: ['v2']\nproblems: []\nvar_list: {'v1': <tf.Variable 'v1:0' shape=(1,) dtype=float32>}\n",
    )
    shows_exactly(
        nb, "02-cw-restore", "restored: [('v1', 'v1')]\ninitialised: ['v2']\nv1 + v2 = [3.]\n"
    )
    diagram = next(c for c in nb.cells if c.get("id") == "02-cw-diagram")
    assert any("image/png" in out.get("data", {}) for out in diagram.outputs), "02-cw-diagram shows no image"
    shows(nb, "02-cw-code", "saver = tf.compat.v1.train.Saver(var_list=var_list)")
    shows(nb, "02-cw-code", "        'v1': variables['v1'],\n    }")
    shows(nb, "02-cw-code", "# Not restored (in graph mode initialise them")
    shows_widget(nb, "02-cw-mapper", "VariableMapper ")
    shows(nb, "02-cw-mapper", "2 variables: mapped 1 · unmapped 1 · problems 0")
    shows_match(nb, "02-cw-mapper", r"\nv2 +\[1\] float32 +\(none\) +– unmapped\n")
    shows(
        nb,
        "02-cw-mapper",
        "1 variable has no checkpoint key and will stay uninitialised: 'v2'.",
    )
    warning, message, total = cell_text(nb, "02-cw-mapper-restore").splitlines()
    assert warning == "1 variable has no checkpoint key and will be initialised: 'v2'.", warning
    assert re.fullmatch(r"Restored 1 variable, initialised 1, left 0 alone, in \d+\.\d\d s\.", message), message
    assert total == "v1 + v2 = [3.]", total
    # Issue #14, exercise 3: the fine-tuning mapper, before the learner edits it.
    shows_widget(nb, "02-finetune", "VariableMapper ")
    shows(nb, "02-finetune", "4 variables: mapped 4 · unmapped 0 · problems 2 · unused entries 0")
    shows_match(nb, "02-finetune", r"\nhead/kernel +\[8, 5\] float32 +head/kernel +✗ shape mismatch\n")


def traceback_frames(text):
    """``[(header, arrow line number, arrow code)]`` of one part of an IPython traceback."""
    frames = []
    for block in re.split(r"\n(?=File |Cell In\[)", text)[1:]:
        header = block.splitlines()[0]
        arrow = re.search(r"^\s*-+> ?(\d+)\s+(.*?)\s*$", block, re.MULTILINE)
        frames.append((header, int(arrow.group(1)) if arrow else None, arrow.group(2) if arrow else None))
    return frames


def assert_the_traceback_is_read_as_shown(nb):
    """Issue #23 item 2: "How to read it" points at frames and lines that the shown traceback has."""
    text = cell_text(nb, "02-traceback")
    first, second = text.split("During handling of the above exception, another exception occurred:")
    read = next(c.source for c in nb.cells if c.id == "02-traceback-read-md")
    said = " ".join(read.split())
    for words in ("`session.py` at `BaseSession._do_call`, whose arrow points at `return fn(*args)`",
                  "Its first frame points at `get_ipython().showtraceback()`",
                  "The next frame, `sum_without_v2`, points at line 6, `return sess.run(total)`",
                  "down to `raise type(e)(node_def, op, message)`",
                  "`sum_without_v2`, then `build_graph`, line 7: `total = v1 + v2`"):
        assert words in said, f"02's text no longer says {words!r}"
    # The first part starts inside TensorFlow, in _do_call, on the call into the runtime.
    header, _, code = traceback_frames(first)[0]
    assert "session.py" in header and "BaseSession._do_call" in header and code == "return fn(*args)", traceback_frames(first)
    # The second part: the cell (arrow on showtraceback()), sum_without_v2 at line 6, ..., the raise.
    frames = traceback_frames(second)
    assert frames[0][0].startswith("Cell In[") and frames[0][2] == "get_ipython().showtraceback()", frames
    assert frames[1][0].startswith("Cell In[") and frames[1][0].endswith(", line 6, in sum_without_v2()"), frames
    assert frames[1][1:] == (6, "return sess.run(total)"), frames
    assert "session.py" in frames[-1][0] and frames[-1][2] == "raise type(e)(node_def, op, message)", frames
    # "defined at": the cell's function, then build_graph, line 7, which is `total = v1 + v2`.
    assert re.search(r'line \d+, in sum_without_v2\n\s+File "[^"]+", line 7, in build_graph\nNode:', second), second
    build = next(c.source for c in nb.cells if c.id == "02-build").splitlines()
    assert build[6].strip() == "total = v1 + v2", build
    code = next(c.source for c in nb.cells if c.id == "02-traceback").splitlines()
    assert code[5].strip() == "return sess.run(total)", code


@pytest.mark.notebook
def test_03_restore_under_other_names():
    nb = execute("03_restore_under_other_names.ipynb")
    shows_exactly(nb, "03-renamed", "other-v1:0 other-v2:0\n")
    shows_exactly(nb, "03-notfound", "NotFoundError: Key other-v1 not found in checkpoint\n")
    shows_exactly(nb, "03-dict", "[3.]\n")
    shows(nb, "03-rule", "{'v1': <tf.Variable 'other-v1:0'")
    assert cell_text(nb, "03-rule").endswith("[3.]\n")
    shows_exactly(nb, "03-scope-save", "old_scope/b [1]\nold_scope/w [2]\n")
    shows_exactly(nb, "03-scope-load", "new_scope/w [1. 2.]\nnew_scope/b [0.5]\n")
    shows_exactly(nb, "03-scope-root", "[3.]\n")
    shows_exactly(nb, "03-scope-pitfall", "new_scope/w [0. 0.]\n")
    shows_exactly(nb, "03-tf2-reader", "[3.]\n")
    assert cell_text(nb, "03-tf2-object").endswith("[3.]\n")
    # With ckptwidgets
    shows_exactly(nb, "03-cw-plan", "unmapped: ['other-v1', 'other-v2']\nunused entries: ['v1', 'v2']\n")
    shows_exactly(
        nb,
        "03-cw-assign",
        "mapping: {'other-v1': 'v1', 'other-v2': 'v2'}\nproblems: []\n"
        "var_list: {'v1': <tf.Variable 'other-v1:0' shape=(1,) dtype=float32>, "
        "'v2': <tf.Variable 'other-v2:0' shape=(1,) dtype=float32>}\n[3.]\n",
    )
    shows_exactly(
        nb,
        "03-cw-rules",
        "mapping: {'new_scope/w': 'old_scope/w', 'new_scope/b': 'old_scope/b'}\n"
        "new_scope/w [1. 2.]\nnew_scope/b [0.5]\n",
    )
    typo = cell_text(nb, "03-cw-typo")
    assert typo.startswith("missing_key\nVariable 'other-v2' is mapped to key 'v3', which is not in checkpoint"), typo
    assert typo.endswith("Entries with its shape [1] and dtype float32: 'v1', 'v2'.\n"), typo
    shows(nb, "03-cw-code", "        'v1': variables['other-v1'],\n        'v2': variables['other-v2'],\n")
    diagram = next(c for c in nb.cells if c.get("id") == "03-cw-diagram")
    assert any("image/png" in out.get("data", {}) for out in diagram.outputs), "03-cw-diagram shows no image"
    shows_widget(nb, "03-cw-mapper", "VariableMapper ")
    shows(nb, "03-cw-mapper", "2 variables: mapped 0 · unmapped 2 · problems 0 · unused entries 2")
    shows_widget(nb, "03-cw-mapper-assign", "VariableMapper ")
    assert cell_text(nb, "03-cw-mapper-assign").startswith("other-v1's dropdown now shows: v1\n")
    shows(nb, "03-cw-mapper-assign", "2 variables: mapped 1 · unmapped 1 · problems 0 · unused entries 1")
    shows_match(nb, "03-cw-mapper-assign", r"\nother-v1 +\[1\] float32 +v1 +✓ mapped\n")
    shows_match(nb, "03-cw-mapper-assign", r"\nother-v2 +\[1\] float32 +\(none\) +– unmapped\n")
    shows_exactly(
        nb, "03-cw-mapper-restore", "2 variables: mapped 2 · unmapped 0 · problems 0 · unused entries 0\n[3.]\n"
    )
    # The front end got the edits made from code: the key dropdowns now select v1 and v2
    # (the two of exercise 2's mapper, net/v1 and net/v2, still "(none)").
    chosen = sorted(
        state["_options_labels"][state["index"]]
        for state in widget_state(nb).values()
        if state.get("_model_name") == "DropdownModel" and state.get("index") is not None
        and "(other key…)" in state.get("_options_labels", ())
    )
    assert chosen == ["(none)", "(none)", "v1", "v2"], chosen  # labels without shape where they fit (issue #23 item 6)
    # Issue #14, exercise 2: nothing matches net/v1, net/v2 by name until a rule is typed.
    shows_widget(nb, "03-net", "VariableMapper ")
    shows(nb, "03-net", "2 variables: mapped 0 · unmapped 2 · problems 0 · unused entries 2")


@pytest.mark.notebook
def test_04_exponential_moving_averages():
    nb = execute("04_exponential_moving_averages.ipynb")
    shows_exactly(nb, "04-vars", "['v:0', 'v2:0']\n")
    shows(
        nb,
        "04-apply",
        "['v:0', 'v2:0', 'v/ExponentialMovingAverage:0', 'v2/ExponentialMovingAverage:0']\n",
    )
    shows_exactly(
        nb,
        "04-vtr",
        "{'v/ExponentialMovingAverage': <tf.Variable 'v:0' shape=() dtype=float32>, "
        "'v2/ExponentialMovingAverage': <tf.Variable 'v2:0' shape=() dtype=float32>}\n",
    )
    shows_exactly(nb, "04-update", "[10.0, 0.099999905]\n")
    shows_exactly(nb, "04-float32", "0.00999999 0.099999905\n")
    shows_exactly(
        nb,
        "04-keys",
        "v []\nv/ExponentialMovingAverage []\nv2 []\nv2/ExponentialMovingAverage []\n",
    )
    shows(nb, "04-trace", "num_updates=False  after 1 step: 0.1000  90% after 230 steps")
    shows(nb, "04-trace", "num_updates=True   after 1 step: 8.1818  90% after 2 steps")
    assert has_png(nb), "notebook 04 should display the convergence plot"
    plot_cell = next(cell for cell in nb.cells if cell.get("id") == "04-plot")
    assert any("image/png" in out.get("data", {}) for out in plot_cell.outputs)
    for line in cell_text(nb, "04-agree").splitlines():
        difference = float(line.rsplit(" ", 1)[1])
        assert difference < 1e-4, line
    # With ckptwidgets
    shows_exactly(
        nb,
        "04-cw-open",
        "v variable None\nv/ExponentialMovingAverage ema v\nv2 variable None\nv2/ExponentialMovingAverage ema v2\n",
    )
    shows_exactly(
        nb,
        "04-cw-trace",
        "first step: 0.099999905\n"
        "num_updates=False  same as the loop above: True\n"
        "num_updates=True   same as the loop above: True\n",
    )
    shows_widget(nb, "04-cw-explorer", "EMAExplorer(decay=0.99, steps=500, target=10.0")
    shows(nb, "04-cw-explorer", "step 1: shadow 0.099999905 (decay used 0.99) · 95% of the way to 10 at step 299")
    drive = cell_text(nb, "04-cw-explorer-drive").splitlines()
    assert drive[0].startswith("step 1: shadow 8.181818 (decay used 0.18181819)"), drive
    assert drive[1].startswith("step 1: shadow 1.0000002 (decay used 0.9) · 95% of the way to 10 at step 29 "), drive
    # Issue #14: navigation, and the exercises as committed (the widget one still at decay 0.99).
    nav = (
        "[Contents](00_start_here.ipynb) · [← 03 Restore under other names](03_restore_under_other_names.ipynb) · "
        "[05 Restore the moving average →](05_restore_the_moving_average.ipynb)"
    )
    assert nb.cells[0].source == nav and nb.cells[-1].source.endswith(nav)
    ids = [cell.id for cell in nb.cells]
    assert ids.index("04-ex-first-check") < ids.index("04-update"), "exercise 1 predicts what 04-update shows"
    shows_exactly(
        nb,
        "04-ex-first-check",
        "Not yet: replace TODO with a number: what ema.average(v) holds after one run of update, with v at 10.0 "
        "and the shadow starting at 0.0.\n",
    )
    shows_exactly(
        nb,
        "04-ex-full-check",
        "Not yet: replace TODO with a step number n: the first n at which (1 + n) / (10 + n) is no longer below "
        "the decay 0.99.\n",
    )
    shows_widget(nb, "04-ex-reach-widget", "EMAExplorer(decay=0.99, steps=100, target=10.0")
    shows(nb, "04-ex-reach-widget", "90% of the way to 10 not reached in 100 steps")
    shows_match(nb, "04-ex-reach-check", r"^Not yet: with decay 0\.99 the shadow is at 39\.5% of the target at step 50 ")


@pytest.mark.notebook
def test_05_restore_the_moving_average():
    nb = execute("05_restore_the_moving_average.ipynb")
    shows(nb, "05-base", "v/ExponentialMovingAverage [] 0.099999905")
    shows_exactly(nb, "05-direct", "0.099999905\n")
    shows_exactly(nb, "05-ex-only-v2-graph", "v:0 v2:0\n")  # exercise 1's graph (its check: test_exercises.py)
    shows_exactly(
        nb,
        "05-vtr",
        "{'v/ExponentialMovingAverage': <tf.Variable 'v:0' shape=() dtype=float32>}\n"
        "0.099999905\n",
    )
    shows_exactly(nb, "05-pitfall-save", "v []\nv/ExponentialMovingAverage []\nx []\n")
    shows(nb, "05-pitfall", "'x/ExponentialMovingAverage': <tf.Variable 'x:0'")
    shows(nb, "05-pitfall", "NotFoundError: Key x/ExponentialMovingAverage not found in checkpoint\n")
    for cell_id in ("05-fix-list", "05-fix-keys"):
        shows(nb, cell_id, "'x': <tf.Variable 'x:0'")
        assert cell_text(nb, cell_id).endswith("[0.099999905, 5.0]\n"), cell_text(nb, cell_id)
    assert cell_text(nb, "05-tf2-vtr").startswith("{}\n")
    shows(nb, "05-tf2-saver", "RuntimeError: When eager execution is enabled, `var_list` must")
    assert cell_text(nb, "05-tf2-saver").endswith("\n0.099999905\n")
    shows_exactly(nb, "05-tf2-reader", "0.099999905\n")
    # Issue #14, the same in TF 2.21 / Keras 3: the docstring's tf.train.Checkpoint of the averages...
    shows_exactly(
        nb,
        "05-today-ema",
        "v/ExponentialMovingAverage:0 0.099999905\n"
        "ValueError: `Checkpoint` was expecting ema to be a trackable object (an object derived from `Trackable`)\n"
        "_CHECKPOINTABLE_OBJECT_GRAPH []\n"
        "averaged_weights/0/.ATTRIBUTES/VARIABLE_VALUE []\n"
        "model_weights/0/.ATTRIBUTES/VARIABLE_VALUE []\n"
        "save_counter/.ATTRIBUTES/VARIABLE_VALUE []\n",
    )
    shows_exactly(nb, "05-today-restore", "0.099999905\n")  # the average restored straight into the variable
    # ...and Keras 3's use_ema: the average starts at the weight, then 0.75 * average + 0.25 * weight.
    shows_exactly(
        nb,
        "05-keras-ema",
        "step 1: kernel 10.0, average 10.0\n"
        "step 2: kernel 20.0, average 12.5\n"
        "step 3: kernel 30.0, average 16.875\n"
        "['sgd/iteration', 'sgd/learning_rate', 'sgd/tiny_dense_kernel_average']\n",
    )
    shows_exactly(nb, "05-keras-swap", "while evaluating: 16.875\nafter evaluating: 30.0\nfinalized: 16.875\n")
    # With ckptwidgets
    shows_exactly(
        nb,
        "05-cw-plan",
        "unmapped: []\nproblems: []\n"
        "var_list: {'v/ExponentialMovingAverage': <tf.Variable 'v:0' shape=() dtype=float32>}\n"
        "0.099999905\n",
    )
    shows(nb, "05-cw-code", "        'v/ExponentialMovingAverage': variables['v'],\n")
    shows_exactly(
        nb, "05-cw-partial", "mapping: {'v': 'v/ExponentialMovingAverage', 'x': 'x'}\n[0.099999905, 5.0]\n"
    )
    diagram = next(c for c in nb.cells if c.get("id") == "05-cw-diagram")
    assert any("image/png" in out.get("data", {}) for out in diagram.outputs), "05-cw-diagram shows no image"
    # prefer_ema finds a Keras 3 optimizer's average by the object graph, and restores it.
    shows_exactly(
        nb, "05-cw-keras", "mapping: {'tiny/dense/kernel': 'optimizer/_variables/2/.ATTRIBUTES/VARIABLE_VALUE'}\n[[16.875]]\n"
    )
    shows_exactly(nb, "05-cw-shape-save", "w [1]\nw/ExponentialMovingAverage [1]\n")
    # TensorFlow itself accepts the [1] tensor into the [4] variable...
    shows_exactly(nb, "05-cw-shape-tf", "declared shape: (4,)  holds: [0.0999999] of shape (1,)\n")
    # ...the plan reports it, and restore refuses it.
    reason, message, refused = cell_text(nb, "05-cw-shape-plan").splitlines()
    assert reason == "shape_mismatch", reason
    assert message.startswith("Variable 'w' has shape [4] but key 'w/ExponentialMovingAverage' in checkpoint "), message
    assert "vector_ema.ckpt' has shape [1]. TensorFlow would not complain here" in message, message
    assert refused == "RestoreError with 1 problem(s): nothing was restored", refused
    shows_widget(nb, "05-cw-mapper", "VariableMapper ")
    shows(nb, "05-cw-mapper", "2 variables: mapped 2 · unmapped 0 · problems 0 · unused entries 1")
    shows_match(nb, "05-cw-mapper", r"\nv +\[\] float32 +v/ExponentialMovingAverage +✓ mapped\n")
    shows_match(nb, "05-cw-mapper", r"\nx +\[\] float32 +x +✓ mapped")
    shows_exactly(nb, "05-cw-mapper-restore", "[0.099999905, 5.0]\n")
    # Exercise 2's own mapper starts with prefer EMA off: both variables read their raw keys.
    shows_widget(nb, "05-ex-mapper-setup", "VariableMapper ")
    shows(nb, "05-ex-mapper-setup", "2 variables: mapped 2 · unmapped 0 · problems 0 · unused entries 2")
    shows_match(nb, "05-ex-mapper-setup", r"\nv2 +\[\] float32 +v2 +✓ mapped")
    # Navigation, links, the Chinese goals and summary (issue #14).
    source = nbformat.read(NOTEBOOKS / "05_restore_the_moving_average.ipynb", as_version=4)
    nav = (
        "[Contents](00_start_here.ipynb) · [← 04 Exponential moving averages](04_exponential_moving_averages.ipynb)"
        " · [06 Explore a real checkpoint →](06_explore_a_real_checkpoint.ipynb)"
    )
    assert source.cells[0].source == nav and source.cells[-1].source.endswith(nav)
    markdown = "\n".join(c.source for c in source.cells if c.cell_type == "markdown")
    for text in ("学习目标", "**小结**", "## Further reading", "## The same in TF 2.21 / Keras 3",
                 "https://www.tensorflow.org/api_docs/python/tf/train/ExponentialMovingAverage",
                 "https://www.tensorflow.org/api_docs/python/tf/train/Checkpoint",
                 "https://www.tensorflow.org/api_docs/python/tf/compat/v1/train/Saver",
                 "https://keras.io/api/callbacks/swap_ema_weights/", "https://www.tensorflow.org/guide/checkpoint"):
        assert text in markdown, text


@pytest.mark.notebook
def test_06_explore_a_real_checkpoint():
    nb = execute("06_explore_a_real_checkpoint.ipynb")
    shows(nb, "06-model", ": 262 variables, 158 trainable, 104 non-trainable\n")
    shows(nb, "06-model", "\nteacher/Conv1/kernel (3, 3, 3, 32) trainable\n")
    shows(nb, "06-model", "\nteacher/bn_Conv1/moving_mean (32,) non-trainable\n")
    train = cell_text(nb, "06-train").splitlines()
    assert [line.split(":")[0] for line in train[:3]] == ["step 1", "step 2", "step 3"], train
    for line in train[:3]:
        assert 0 < float(line.rsplit(" ", 1)[1]) < 100, line
    assert train[3] == "teacher/Conv1/kernel -> teacher/Conv1/kernel/ExponentialMovingAverage:0", train
    assert cell_text(nb, "06-keras-pitfall").startswith("AttributeError: "), cell_text(nb, "06-keras-pitfall")
    shows_exactly(nb, "06-save-pitfall", "[('teacher/Conv1/kernelVARIABLE_VALUE', [3, 3, 3, 32])]\n")
    assert cell_text(nb, "06-save").startswith("420 tensors saved to mobilenet.ckpt\n")
    shows(nb, "06-open", "mobilenet.ckpt': 420 entries (158 ema, 262 variable)>\n")
    shows_match(nb, "06-open", r"\nvariable +262 entries +\d+\.\d MiB\nema +158 entries +\d+\.\d MiB\n$")
    # The browser: totals per kind, and the selected kernel compared with its shadow.
    shows_widget(nb, "06-browser", "CheckpointBrowser ")
    shows_match(nb, "06-browser", r"\nvariable 262 \([\d.]+ MiB\) · ema 158 \([\d.]+ MiB\) · total 420 entries")
    shows(nb, "06-browser", "\nselected 'teacher/Conv1/kernel': min ")
    shows(
        nb,
        "06-browser",
        "\nraw 'teacher/Conv1/kernel' vs EMA shadow 'teacher/Conv1/kernel/ExponentialMovingAverage': max |raw - shadow| ",
    )
    shows_exactly(nb, "06-student", "student/Conv1/kernel\nNone\n")
    # The mapper: the scope rule and prefer_ema map everything.
    shows_widget(nb, "06-mapper", "VariableMapper ")
    shows(nb, "06-mapper", "262 variables: mapped 262 · unmapped 0 · problems 0 · unused entries 158\n")
    shows_match(
        nb,
        "06-mapper",
        r"\nstudent/Conv1/kernel +\[3, 3, 3, 32\] float32 +teacher/Conv1/kernel/ExponentialMovingAverage +✓ mapped\n",
    )
    shows_match(nb, "06-mapper", r"\nstudent/bn_Conv1/moving_mean +\[32\] float32 +teacher/bn_Conv1/moving_mean +✓ mapped\n")
    shows_exactly(
        nb,
        "06-unused",
        "problems: 0  unmapped: 0\n"
        "variables read from a shadow: 158\n"
        "variables read from a raw entry: 104\n"
        "unused entries: 158 of kind ['variable']\n"
        "for example: teacher/Conv1/kernel\n",
    )
    shows(nb, "06-code", "\nassignment_map = {\n")
    shows(
        nb, "06-code", "    'teacher/Conv1/kernel/ExponentialMovingAverage': variables['student/Conv1/kernel'].value,\n"
    )
    shows_match(nb, "06-restore", r"^Restored 262 variables, initialised 0, left 0 alone, in \d+\.\d\d s\.\n$")
    shadows, raw, gap = cell_text(nb, "06-check").splitlines()
    assert shadows == "all 158 variables equal their EMA shadows: True", shadows
    assert raw == "all 104 non-trainable variables equal their raw values: True", raw
    # Shadows and weights differ, so the equality above could have failed.
    assert gap.startswith("largest |shadow - raw weight|: ") and float(gap.rsplit(" ", 1)[1]) > 0.01, gap
    # Issue #14: navigation, goals and summary in both languages, links.
    nav = ("[Contents](00_start_here.ipynb) · [← 05 Restore the moving average](05_restore_the_moving_average.ipynb)"
           " · [07 Write a converted checkpoint →](07_write_a_converted_checkpoint.ipynb)")
    assert nb.cells[0].source == nav and nb.cells[-1].source.endswith(nav)
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for text in ("**What you will learn**", "**学习目标**", "## Summary", "**小结**", "## Further reading",
                 "## The same in TF 2.21 / Keras 3", "微调",
                 "(https://www.tensorflow.org/api_docs/python/tf/train/ExponentialMovingAverage)",
                 "(https://www.tensorflow.org/api_docs/python/tf/compat/v1/train/Saver)",
                 "(https://www.tensorflow.org/guide/checkpoint)",
                 "(https://www.tensorflow.org/guide/migrate/migrating_checkpoints)",
                 "(https://keras.io/guides/serialization_and_saving/)",
                 "(https://keras.io/api/models/model_saving_apis/weights_saving_and_loading/)"):
        assert text in markdown, text
    # Exercise 1 as committed: the browser still shows what the code selected.
    shows(nb, "06-ex-shadow-check", "Not yet: 'teacher/Conv1/kernel' is selected, a variable entry; select the EMA shadow")
    # The capstone: a new head, shape problems exactly on its kernel and bias.
    shows_exactly(
        nb,
        "06-ft-model",
        "finetune/predictions/kernel  (1280, 5)  teacher: teacher/predictions/kernel (1280, 10)\n"
        "finetune/predictions/bias    (5,)       teacher: teacher/predictions/bias (10,)\n",
    )
    shows_exactly(
        nb,
        "06-ft-plan",
        "262 of 262 variables mapped, 2 problems:\n"
        "  shape_mismatch: finetune/predictions/kernel [1280, 5] <- teacher/predictions/kernel/ExponentialMovingAverage [1280, 10]\n"
        "  shape_mismatch: finetune/predictions/bias [5] <- teacher/predictions/bias/ExponentialMovingAverage [10]\n"
        "restore(ft_plan): RestoreError - Nothing was restored\n",
    )
    shows_widget(nb, "06-ft-mapper", "VariableMapper ")
    shows(nb, "06-ft-mapper", "262 variables: mapped 262 · unmapped 0 · problems 2 · unused entries 158\n")
    shows_match(nb, "06-ft-mapper", r"\nshape_mismatch: Variable 'finetune/predictions/kernel' has shape \[1280, 5\] but key "
                r"'teacher/predictions/kernel/ExponentialMovingAverage' in checkpoint '[^']*mobilenet\.ckpt' has shape \[1280, 10\]\.\n")
    shows(nb, "06-ex-head-check", "Not yet: finetune/predictions/kernel still reads 'teacher/predictions/kernel/ExponentialMovingAverage'")
    diagram = next(c for c in nb.cells if c.id == "06-ft-diagram")
    assert any("image/png" in out.get("data", {}) for out in diagram.outputs), "06-ft-diagram shows no image"
    shows(nb, "06-ft-diagram", "unmapped: ['finetune/predictions/kernel', 'finetune/predictions/bias']  problems: 0\n")
    start, step, trained = cell_text(nb, "06-ft-train").splitlines()
    # As committed, exercise 2 is not done: the backbone trains from its own initialisation.
    assert start == "backbone starts from the teacher's EMA shadows: False", start
    assert step.startswith("fine-tuning step 1: loss ") and 0 < float(step.rsplit(" ", 1)[1]) < 100, step
    assert trained == "the head was trained: True", trained
    # Today's API: load_weights refuses a TF checkpoint; skip_mismatch leaves the head alone.
    shows_match(nb, "06-keras3-ckpt", r"^ValueError: File format not supported: filepath=\S*mobilenet\.ckpt\. Keras 3 only "
                r"supports V3 `\.keras` files, `\.weights\.h5` files, .*\n$")
    shows_exactly(
        nb,
        "06-keras3-h5",
        "without skip_mismatch: ValueError - A total of 1 objects could not be loaded. Example error message for "
        "object <Dense name=predictions, built=True>:\n"
        "with skip_mismatch=True: 1 warning; the layer that kept its weights: predictions\n"
        "the head kept its weights: True\n"
        "the backbone holds the teacher's raw weights: True\n",
    )


# Notebook 07 (issue #12): what the training run saves, entry by entry (no values: those
# depend on the platform's float arithmetic; the notebook prints the checks on them).
_07_ENTRIES = [
    ("beta1_power", "meta", "[]", 4),
    ("beta2_power", "meta", "[]", 4),
    ("global_step", "meta", "[]", 8),
    ("model/hidden/bias", "variable", "[8]", 32),
    ("model/hidden/bias/Adam", "slot", "[8]", 32),
    ("model/hidden/bias/Adam_1", "slot", "[8]", 32),
    ("model/hidden/bias/ExponentialMovingAverage", "ema", "[8]", 32),
    ("model/hidden/kernel", "variable", "[4, 8]", 128),
    ("model/hidden/kernel/Adam", "slot", "[4, 8]", 128),
    ("model/hidden/kernel/Adam_1", "slot", "[4, 8]", 128),
    ("model/hidden/kernel/ExponentialMovingAverage", "ema", "[4, 8]", 128),
    ("model/out/bias", "variable", "[2]", 8),
    ("model/out/bias/Adam", "slot", "[2]", 8),
    ("model/out/bias/Adam_1", "slot", "[2]", 8),
    ("model/out/bias/ExponentialMovingAverage", "ema", "[2]", 8),
    ("model/out/kernel", "variable", "[8, 2]", 64),
    ("model/out/kernel/Adam", "slot", "[8, 2]", 64),
    ("model/out/kernel/Adam_1", "slot", "[8, 2]", 64),
    ("model/out/kernel/ExponentialMovingAverage", "ema", "[8, 2]", 64),
]
_07_TOTALS = "meta      3 entries   16 B\nvariable  4 entries  232 B\nslot      8 entries  464 B\nema       4 entries  232 B\n"
_07_SERVING_PLAN = (
    "Write 5 tensors (240 B):\n"
    "key                  from                                          op    dtype    shape   size\n"
    "global_step          =                                             copy  int64    []      8 B\n"
    "model/hidden/bias    model/hidden/bias/ExponentialMovingAverage    copy  float32  [8]     32 B\n"
    "model/hidden/kernel  model/hidden/kernel/ExponentialMovingAverage  copy  float32  [4, 8]  128 B\n"
    "model/out/bias       model/out/bias/ExponentialMovingAverage       copy  float32  [2]     8 B\n"
    "model/out/kernel     model/out/kernel/ExponentialMovingAverage     copy  float32  [8, 2]  64 B\n"
    "Left out (18):\n"
    "  beta1_power: optimizer state (meta)\n"
    "  beta2_power: optimizer state (meta)\n"
    + "".join(
        f"  model/{w}/{slot}: optimizer state (slot)\n" for w in ("hidden/bias", "hidden/kernel", "out/bias", "out/kernel")
        for slot in ("Adam", "Adam_1")
    )
    + "".join(
        f"  model/{w}/ExponentialMovingAverage: promoted to 'model/{w}'\n"
        f"  model/{w}: replaced by its shadow 'model/{w}/ExponentialMovingAverage'\n"
        for w in ("hidden/bias", "hidden/kernel", "out/bias", "out/kernel")
    )
)
_07_WEIGHTS = ["model/hidden/kernel", "model/hidden/bias", "model/out/kernel", "model/out/bias"]


@pytest.mark.notebook
def test_07_write_a_converted_checkpoint():
    nb = execute("07_write_a_converted_checkpoint.ipynb")
    # The TF1 run: five checkpoints, every 10 steps, all kept.
    train = cell_text(nb, "07-train").splitlines()
    assert [line.split(":")[0] for line in train[:5]] == [f"step {n}" for n in (10, 20, 30, 40, 50)], train
    for line in train[:5]:
        assert 0 < float(line.rsplit(" ", 1)[1]) < 100, line
    assert train[5:] == [str([f"model.ckpt-{n}" for n in (10, 20, 30, 40, 50)])], train
    shows_exactly(
        nb,
        "07-open",
        "".join(f"{key:45} {kind:8} {shape:7} {nbytes:4} B\n" for key, kind, shape, nbytes in _07_ENTRIES)
        + "\n" + _07_TOTALS,
    )
    shows_exactly(nb, "07-by-hand", "model/hidden/bias [8]\nmodel/hidden/kernel [4, 8]\nmodel/out/bias [2]\nmodel/out/kernel [8, 2]\n")
    # Strip + promote: the dry run, then the sizes before and after.
    shows_exactly(nb, "07-cw-plan", _07_SERVING_PLAN)
    written = (
        "wrote 5 tensors: ['global_step', 'model/hidden/bias', 'model/hidden/kernel', 'model/out/bias', 'model/out/kernel']\n"
        "training checkpoint run/model.ckpt-50:\n"
        "  model.ckpt-50.data-00000-of-00001          944 B\n"
        "  model.ckpt-50.index                    INDEX B\n"
        "  model.ckpt-50.meta                     META B\n"
        + "".join("  " + line + "\n" for line in _07_TOTALS.splitlines())
        + "serving checkpoint serving/model.ckpt:\n"
        "  model.ckpt.data-00000-of-00001             240 B\n"
        "  model.ckpt.index                       INDEX B\n"
        "  meta      1 entries    8 B\n"
        "  variable  4 entries  232 B\n"
    )
    pattern = re.escape(written).replace("INDEX", r" *[1-9][\d,]*").replace("META", r" *[1-9]\d?,\d{3}")
    assert re.fullmatch(pattern, cell_text(nb, "07-cw-write")), cell_text(nb, "07-cw-write")
    # A plain Saver restores the shadows (not the raw weights), as the hand-written program saved them.
    shows_exactly(
        nb,
        "07-cw-saver",
        f"Saver() restored: {_07_WEIGHTS}\n"
        "each equals its EMA shadow at step 50: True\n"
        "each differs from the raw weight: True\n"
        "the same values as the hand-written checkpoint: True\n",
    )
    renamed = [name.replace("model/", "serving/") for name in _07_WEIGHTS]
    shows_exactly(
        nb,
        "07-cw-rename",
        "Write 5 tensors (240 B):\n"
        "key                    from                 op    dtype    shape   size\n"
        "global_step            =                    copy  int64    []      8 B\n"
        "serving/hidden/bias    model/hidden/bias    copy  float32  [8]     32 B\n"
        "serving/hidden/kernel  model/hidden/kernel  copy  float32  [4, 8]  128 B\n"
        "serving/out/bias       model/out/bias       copy  float32  [2]     8 B\n"
        "serving/out/kernel     model/out/kernel     copy  float32  [8, 2]  64 B\n"
        f"init_from_checkpoint loaded: {renamed}\n"
        "the serving weights: True\n"
        "a plain Saver() loads them too: True\n",
    )
    # convert: Keras 3 paths carry the Sequential model's name; the result is object-based.
    shows_exactly(
        nb,
        "07-cw-convert",
        "Keras paths: ['net/hidden/kernel', 'net/hidden/bias', 'net/out/kernel', 'net/out/bias']\n"
        "  _CHECKPOINTABLE_OBJECT_GRAPH                            meta\n"
        + "".join(
            f"  model/_functional/_operations/{n}/{v}/.ATTRIBUTES/VARIABLE_VALUE variable\n"
            for n in (1, 2) for v in ("_kernel", "bias")
        )
        + "  save_counter/.ATTRIBUTES/VARIABLE_VALUE                 meta\n",
    )
    shows_exactly(
        nb,
        "07-cw-convert-check",
        "CheckpointLoadStatus assert_existing_objects_matched: ok\neach Keras weight equals its TF1 shadow: True\n",
    )
    # average: float64 mean rounded once, the step counter from the last checkpoint.
    shows_exactly(
        nb,
        "07-cw-average",
        "Write 19 tensors (944 B):\n"
        "key                                           from                                                        op    dtype    shape   size\n"
        "global_step                                   =                                                           copy  int64    []      8 B\n"
        "model/out/bias                                mean of 3 x 'model/out/bias'                                mean  float32  [2]     8 B\n"
        "every float tensor is the float64 mean, rounded once: True\n"
        "global_step: 50\n",
    )
    compare = cell_text(nb, "07-cw-compare").splitlines()
    assert compare[0] == "step       raw       EMA", compare
    rows = [re.fullmatch(r" *(\d+) +(-?\d\.\d{5}) +(-?\d\.\d{5})", line) for line in compare[1:6]]
    assert all(rows) and [int(r.group(1)) for r in rows] == [10, 20, 30, 40, 50], compare
    mean = re.fullmatch(r"mean of steps 30, 40, 50: (-?\d\.\d{5})", compare[6])
    assert mean, compare
    # The printed mean is the mean of the printed raw values of steps 30-50 (each rounded to 1e-5).
    assert abs(float(mean.group(1)) - sum(float(r.group(2)) for r in rows[2:]) / 3) <= 2e-5, compare
    assert compare[7] == "the EMA of step 50 equals the shadow saved in the last checkpoint: True", compare
    plot_cell = next(cell for cell in nb.cells if cell.get("id") == "07-cw-compare")
    assert any("image/png" in out.get("data", {}) for out in plot_cell.outputs)
    # The diff widget: two steps of the run, slots filtered out, one row selected.
    shows_widget(nb, "07-cw-diff", "CheckpointDiff a: ")
    shows_match(nb, "07-cw-diff", r"^CheckpointDiff a: \S+/run/model\.ckpt-40 \(19 entries\)  ·  b: \S+/run/model\.ckpt-50 \(19 entries\)\n")
    shows(nb, "07-cw-diff", "\n19 changed\nshowing all, filter '!kind:slot': 11 rows\n")
    shows(nb, "07-cw-diff", "\n... 1 more\nselected changed: model/hidden/kernel\na model/hidden/kernel: [4, 8] float32: min ")
    shows(nb, "07-cw-diff", "\nb model/hidden/kernel: [4, 8] float32: min ")
    assert "/Adam" not in cell_text(nb, "07-cw-diff"), cell_text(nb, "07-cw-diff")
    models = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"].values()
    assert any(
        model["state"].get("_model_name") == "ImageModel" and any(b["path"] == ["value"] and b["data"] for b in model.get("buffers", ()))
        for model in models
    ), "the diff's histogram was never sent to the front end"
    # The same from the shell: every one of the 19 entries changed.
    diff = cell_text(nb, "07-cw-diff-shell").splitlines()
    assert diff[:5] == [
        "$ python -m ckptwidgets diff run/model.ckpt-40 run/model.ckpt-50",
        "a: run/model.ckpt-40 (19 entries)",
        "b: run/model.ckpt-50 (19 entries)",
        "19 changed",
        "status   key                                           shape   dtype    max |a-b|  rel. change",
    ], diff
    assert all(line.startswith("changed  ") for line in diff[5:]), diff
    assert sorted(line.split()[1] for line in diff[5:]) == [key for key, *_ in _07_ENTRIES], diff
    shows_exactly(
        nb,
        "07-shell",
        "$ python -m ckptwidgets promote-ema run/model.ckpt-50 serving2/model.ckpt --strip --dry-run\n"
        + _07_SERVING_PLAN
        + "(dry run: nothing written)\nserving2 written: False\n",
    )
    # Issue #14: navigation, and the exercises as committed (the widget one on steps 10 and 20).
    nav = (
        "[Contents](00_start_here.ipynb) · [← 06 Explore a real checkpoint](06_explore_a_real_checkpoint.ipynb)"
        " · [08 Migrate a TF1 checkpoint to Keras 3 →](08_migrate_to_keras3.ipynb)"
    )
    assert nb.cells[0].source == nav and nb.cells[-1].source.endswith(nav)
    shows_match(nb, "07-setup", r"\nckptwidgets: if a widget below is missing or says \"model not found\"")
    shows_exactly(nb, "07-ex-count-check", "Not yet: replace TODO with a number: how many tensors will the serving plan write?\n")
    shows_match(nb, "07-ex-serving-check", r"^Not yet: replace TODO with the prefix you wrote")
    shows_widget(nb, "07-ex-diff-widget", "CheckpointDiff a: ")
    shows_match(nb, "07-ex-diff-widget", r"^CheckpointDiff a: \S+/run/model\.ckpt-10 \(19 entries\)  ·  b: \S+/run/model\.ckpt-20 \(19 entries\)\n19 changed\n")
    shows_match(nb, "07-ex-diff-check", r"^Not yet: nothing is selected yet")


def test_notebooks_exist():
    missing = [name for name in ["00_start_here.ipynb", *ALL_NOTEBOOKS] if not (NOTEBOOKS / name).is_file()]
    assert not missing, f"missing notebooks: {missing}"


@pytest.mark.parametrize("name", ALL_NOTEBOOKS[1:])
def test_notebooks_02_to_06_use_ckptwidgets(name):
    """Issue #3/#4: 02-05 end with a "With ckptwidgets" section, and 02-06 show widgets."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    number = name[:2]
    headings = [c.source for c in nb.cells if c.cell_type == "markdown"]
    if number not in ("06", "08", "09"):  # 06, 08 and 09 use ckptwidgets throughout
        assert any(h.startswith("## With ckptwidgets") for h in headings), name
        ids = [c.id for c in nb.cells]
        assert ids.index(f"{number}-cw-md") < ids.index(f"{number}-summary"), name
    widget_cells = [
        c for c in nb.cells
        if c.cell_type == "code" and re.search(r"ckptwidgets\.(VariableMapper|EMAExplorer|CheckpointBrowser|CheckpointDiff)\(", c.source)
    ]
    assert widget_cells, f"{name} shows no widget"


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_committed_notebook_has_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    ids = [cell.get("id") for cell in nb.cells]
    assert all(ids) and len(set(ids)) == len(ids), f"{path.name}: cell ids missing or repeated"
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        assert cell.outputs == [], f"{path.name}: cell {cell.id} has outputs"
        assert cell.execution_count is None, f"{path.name}: cell {cell.id} has an execution count"


@pytest.mark.parametrize("name", ALL_NOTEBOOKS)
def test_setup_imports_tensorflow_quietly(name):
    # ckptwidgets no longer imports TensorFlow; its import_tensorflow() keeps TF's C++
    # start-up lines out of the cell (the notebook runs check that no stderr appears).
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    setup = next(cell.source for cell in nb.cells if cell.cell_type == "code")
    assert "import ckptwidgets" in setup and "tf = ckptwidgets.import_tensorflow()" in setup
    assert "import tensorflow" not in setup.split("tf = ckptwidgets.import_tensorflow()")[0], setup


@pytest.mark.parametrize("name", ALL_NOTEBOOKS[1:])
def test_setup_of_a_widget_notebook_ends_with_the_reload_hint(name):
    """Issue #14: a widget gone after a kernel restart says "model not found"; the setup
    cell's last line says what to do (and is kept in the saved notebook, unlike widgets)."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    setup = next(cell.source for cell in nb.cells if cell.cell_type == "code")
    last = setup.rstrip().splitlines()[-1]
    assert last.startswith("ckptwidgets.widgets.reload_hint()"), f"{name}: setup ends with {last!r}"


@pytest.mark.notebook
def test_00_start_here():
    """Issue #14: the teacher's page runs (one setup cell, the diagram) and links every notebook."""
    name = "00_start_here.ipynb"
    source = nbformat.read(NOTEBOOKS / name, as_version=4)
    markdown = "\n".join(c.source for c in source.cells if c.cell_type == "markdown")
    linked = set(re.findall(r"\]\((\d\d_[a-z0-9_]+\.ipynb)\)", markdown))
    existing = {p.name for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")} - {name}
    assert existing <= linked, f"{name} does not link {sorted(existing - linked)}"
    assert "08_migrate_to_keras3.ipynb" in linked
    nav = "[01 Save a checkpoint →](01_save_a_checkpoint.ipynb)"
    assert source.cells[0].source == nav and source.cells[-1].source.endswith(nav)
    assert "https://github.com/suonikeyinsuxiao/tf_notes/tree/master/save_restore" in markdown
    for term in ("检查点", "影子变量", "滑动平均", "未初始化", "变量作用域", "部分恢复", "前缀", "计算图", "会话",
                 "衰减率", "优化器槽变量", "学习目标"):
        assert term in markdown, term
    for call in ("tf.train.Saver", "tf.compat.v1.train.Saver", "tf.train.Checkpoint", "tf.Session()",
                 "tf.global_variables_initializer()", "variables_to_restore()", "tf.get_variable",
                 "tf.variable_scope", "saver.restore(sess, path)", "tf.train.latest_checkpoint",
                 "tf.train.list_variables"):
        assert call in markdown, call
    assert [c.id for c in source.cells if c.cell_type == "code"][0] == "00-setup"
    nb = execute(name)
    shows(nb, "00-setup", "TensorFlow 2.")
    shows(nb, "00-diagram", "['v2']")
    assert any("image/png" in out.get("data", {}) for c in nb.cells if c.id == "00-diagram" for out in c.outputs)


@pytest.mark.notebook
def test_08_migrate_to_keras3():
    """Issue #13 item 6: a TF1 checkpoint mapped into a Keras 3 model, written as .weights.h5, loaded back."""
    name = "08_migrate_to_keras3.ipynb"
    nb = execute(name)
    nav = ("[Contents](00_start_here.ipynb) · [← 07 Write a converted checkpoint](07_write_a_converted_checkpoint.ipynb)"
           " · [09 Take your checkpoint to PyTorch →](09_take_your_checkpoint_to_pytorch.ipynb)")
    assert nb.cells[0].source == nav and nb.cells[-1].source.endswith(nav)
    setup = next(cell.source for cell in nb.cells if cell.cell_type == "code")
    assert "tf = ckptwidgets.import_tensorflow()" in setup
    assert "import tensorflow" not in setup.split("tf = ckptwidgets.import_tensorflow()")[0]
    shows(nb, "08-tf1", "saved model.ckpt-100")
    shows(nb, "08-entries", "mlp/output/kernel         variable [8, 2]")
    shows(nb, "08-entries", "mlp/output/kernel/Adam    slot     [8, 2]")
    shows(nb, "08-keras", "net/logits/kernel    [8, 2]")
    shows(nb, "08-plan", "4 variables, 0 mapped, 4 unmapped")
    # The hint names a matching key, or (with the scope-rule hints of issue #22) the rule.
    shows_match(nb, "08-plan", r"hint: (Variable 'net/hidden/kernel' would match key 'mlp/hidden/kernel'"
                r"|rules=\{'mlp/': 'net/'\} would map 2 of the 4 unmapped variables)")
    shows(nb, "08-plan", "4 variables, 2 mapped, 2 unmapped, 0 problems")
    shows(nb, "08-plan", "unmapped: ['net/logits/kernel', 'net/logits/bias']")
    shows_match(nb, "08-plan", r"\nnet/hidden/kernel +mlp/hidden/kernel +\[4, 8\]\n")
    shows(nb, "08-refuse", "variable 'net/logits/kernel' ('layers/dense_1/vars/0' in the file) is not mapped by the plan")
    shows(nb, "08-refuse", "written: False")
    shows_widget(nb, "08-mapper", "VariableMapper")
    shows(nb, "08-mapper", "net/logits/kernel  [8, 2] float32  (none)")
    shows_match(nb, "08-ex1-check", r"^Not yet: 'net/logits/kernel' has no key yet")
    shows(nb, "08-write", "net/logits/kernel  mlp/output/kernel  copy  float32  [8, 2]  64 B")
    shows_match(nb, "08-write", r"Wrote 4 tensors \(232 B\) to '.*net\.weights\.h5'")
    shows(nb, "08-write", "folder: ['net.weights.h5', 'tf1']")  # no temporary file left
    shows(nb, "08-load", "same outputs: True\nsame classes: True\n")
    shows_match(nb, "08-ex2-check", r"^Not yet: replace TODO")
    shows_exactly(
        nb,
        "08-listing",
        "layers/dense/vars/0    hidden/vars/0    [4, 8] \n"
        "layers/dense/vars/1    hidden/vars/1    [8]    \n"
        "layers/dense_1/vars/0  logits/vars/0    [8, 2] \n"
        "layers/dense_1/vars/1  logits/vars/1    [2]    \n",
    )


@pytest.mark.notebook
def test_09_take_your_checkpoint_to_pytorch():
    """Issue #25 item 7: a Keras model into torch with transforms, BERT through the preset into
    BertModel (strict), safetensors back into Keras; both frameworks compute the same outputs."""
    nb = execute("09_take_your_checkpoint_to_pytorch.ipynb")
    # print(plan): a row per variable, what it reads (the transform on its key) and its shape.
    shows_match(nb, "09-plan", r"\nconv\.weight +HWIO->OIHW\('layers/conv2d/vars/0'\) +\[4, 1, 3, 3\]\n")
    shows_match(nb, "09-plan", r"\nlogits\.weight +transpose\('layers/dense/vars/0'\) +\[3, 144\]\n")
    shows(nb, "09-plan", "9 variables, 8 mapped, 0 unmapped, 0 problems")
    shows_widget(nb, "09-mapper", "VariableMapper")
    shows_match(nb, "09-mapper", r"\nconv\.weight +\[4, 1, 3, 3\] float32 +layers/conv2d/vars/0 +HWIO->OIHW +✓ mapped\n")
    shows_match(nb, "09-mapper", r"\nlogits\.weight +\[3, 144\] float32 +layers/dense/vars/0 +transpose +✓ mapped\n")
    shows_match(nb, "09-ex1-check", r"^Not yet: replace TODO")
    shows(nb, "09-restore", "Restored 8 variables")
    shows_match(nb, "09-restore", r"max abs difference: \d\.\de-0[6-9]\n")
    shows_match(nb, "09-flatten", r"max abs difference, flattened NCHW: (0\.[1-9]|[1-9])")  # clearly not the same
    shows(nb, "09-bert-write", "slot      84 entries")
    shows(nb, "09-bert-plan", "transpose('bert/encoder/layer_0/attention/self/query/kernel')")
    shows(nb, "09-bert-plan", "left out: 88 keys\n   84 × Adam's moment estimate (optimizer state)\n")
    shows(nb, "09-bert-load", "<All keys matched successfully>\nquery weight == TF kernel transposed: True\n")
    shows(nb, "09-bert-shell", "cli written: False")
    shows(nb, "09-bert-shell", "Wrote 39 tensors")
    shows(nb, "09-bert-shell", "the same tensors as the Python export: True")
    shows(nb, "09-back-train", "norm.num_batches_tracked  int64    []")
    shows_match(nb, "09-back-plan", r"\ncnn/conv/kernel +OIHW->HWIO\('conv\.weight'\) +\[3, 3, 1, 4\]\n")
    shows(nb, "09-back-plan", "cnn/logits/kernel         transpose('logits.weight')  transform  float32  [144, 3]")
    shows_match(nb, "09-back-load", r"max abs difference: \d\.\de-0[6-9]\nsame classes: True\n")
    shows_widget(nb, "09-ex3-mapper", "VariableMapper")
    shows_match(nb, "09-ex3-check", r"^Not yet: 'cnn/logits/kernel' still reads 'logits.weight'")


def _nav_targets(line: str) -> list:
    return re.findall(r"\]\(([0-9a-z_]+\.ipynb)\)", line)


@pytest.mark.parametrize("name", ALL_NOTEBOOKS)
def test_every_notebook_has_navigation_goals_summary_and_reading(name):
    """Issue #14 items 3 and 7, for every notebook: the same contents / previous / next line at
    the top and the bottom (pointing at the notebooks around it; the last cell has the advice
    to shut the kernel down before it), goals and summary in English and Chinese,
    tensorflow.org links, and a Further reading list of links."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    names = sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    i = names.index(name)
    first, last = nb.cells[0], nb.cells[-1]
    assert first.cell_type == last.cell_type == "markdown" and last.source.endswith("\n\n" + first.source), name
    expected = ["00_start_here.ipynb", names[i - 1]] + ([names[i + 1]] if i + 1 < len(names) else [])
    assert _nav_targets(first.source) == expected, f"{name}: navigation line {first.source!r}"
    markdown = [c.source for c in nb.cells if c.cell_type == "markdown"]
    text = "\n".join(markdown)
    for part in ("**What you will learn**", "**学习目标**", "## Summary", "**小结**"):
        assert part in text, f"{name} has no {part}"
    assert text.count("https://www.tensorflow.org/") >= 5, f"{name} links tensorflow.org only {text.count('https://www.tensorflow.org/')} times"
    reading = [m for m in markdown if m.startswith("## Further reading")]
    assert len(reading) == 1 and len(re.findall(r"\]\(https://", reading[0])) >= 3, f"{name}: Further reading {reading}"


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")), ids=lambda p: p.name)
def test_the_last_cell_says_to_shut_the_kernel_down(path):
    """Issue #23 item 8: a learner reaches the end of every notebook, not only 00 or the README."""
    last = nbformat.read(path, as_version=4).cells[-1]
    assert last.cell_type == "markdown", path.name
    advice = last.source
    for part in ("Shut its kernel down", "*Kernel → Shut Down Kernel*", "*File →\nShut Down*",
                 "close the tabs", "after its tab is\nclosed", "2 GB", "Binder", "关闭内核", "reloaded", "about six kernels"):
        assert part in advice, f"{path.name}: the last cell lacks {part!r}:\n{advice}"


# Issue #23 item 3: the cells 00 used to name by id, each now marked where a teacher sees it.
DEMO_CELLS = [
    "01-files", "01-keys", "02-ref-error", "02-resource-error", "02-fix", "03-notfound", "03-dict",
    "03-cw-mapper", "04-update", "04-cw-explorer", "05-direct", "05-pitfall", "05-cw-shape-tf",
    "06-browser", "06-mapper", "07-cw-plan", "07-cw-diff",
]
DEMO_MARK = re.compile(r"🎬 \*\*Demo live: (?P<title>[^*]+)\.\*\* Run the next cell in front of the class: ")
DEMO_LINK = re.compile(r"\| \d\d \| \[(?P<title>[^\]]+)\]\((?P<notebook>\d\d_[a-z0-9_]+\.ipynb)#(?P<anchor>[^)]+)\) \|")


def heading_anchor(line: str) -> str:
    """The id JupyterLab gives a markdown heading: its text as shown, spaces replaced by '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", line.lstrip("#").strip())
    return text.replace("`", "").replace("*", "").replace(" ", "-")


def demo_marks(nb):
    """``[(title, anchor of the section it is in, the cell after the marker)]`` of a notebook."""
    found, anchor = [], None
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            if re.match(r"#{1,6} ", line):
                anchor = heading_anchor(line)
        for match in DEMO_MARK.finditer(cell.source):
            found.append((match["title"], anchor, nb.cells[i + 1] if i + 1 < len(nb.cells) else None))
    return found


def test_00_links_every_demo_and_each_is_marked_above_its_cell():
    start = nbformat.read(NOTEBOOKS / "00_start_here.ipynb", as_version=4)
    teach = next(c.source for c in start.cells if c.id == "00-teach")
    assert "View → Cell toolbar" not in teach, "JupyterLab 4 shows cell ids nowhere"
    links = [m.groupdict() for m in DEMO_LINK.finditer(teach)]
    marks = {
        path.name: demo_marks(nbformat.read(path, as_version=4))
        for path in sorted(NOTEBOOKS.glob("0[1-8]_*.ipynb"))
    }
    # Every link of 00 leads to a marker of that title, in the section the link opens, just
    # above a code cell.
    for link in links:
        found = [(anchor, after) for title, anchor, after in marks[link["notebook"]] if title == link["title"]]
        assert len(found) == 1, f"00 links {link}, but {link['notebook']} has {len(found)} such marker(s)"
        anchor, after = found[0]
        assert anchor == link["anchor"], f"{link}: the marker is in section #{anchor}"
        assert after is not None and after.cell_type == "code", f"{link}: no code cell after the marker"
    # Every marker is linked from 00, and every cell 00 named before is marked.
    linked = {(link["notebook"], link["title"]) for link in links}
    marked = {(name, title) for name, found in marks.items() for title, _, _ in found}
    assert marked == linked, f"marked but not linked: {marked - linked}; linked but not marked: {linked - marked}"
    marked_cells = {after.id for found in marks.values() for _, _, after in found}
    assert set(DEMO_CELLS) <= marked_cells, f"demo cells without a marker: {sorted(set(DEMO_CELLS) - marked_cells)}"


def test_00_counts_its_code_cells_right():
    """Issue #23 item 10: the text said "the one code cell of this page" above one of two."""
    start = nbformat.read(NOTEBOOKS / "00_start_here.ipynb", as_version=4)
    code = [c.id for c in start.cells if c.cell_type == "code"]
    assert code == ["00-setup", "00-diagram"], code
    setup_md = next(c.source for c in start.cells if c.id == "00-setup-md")
    assert "one code cell" not in setup_md and "two code cells" in setup_md, setup_md
