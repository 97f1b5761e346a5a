"""The teaching notebooks run top to bottom and show the values of SCENARIOS.md.

Each notebook is executed once, in a fresh kernel, by the test that checks it
(marked ``notebook``). The committed files are also checked to hold no outputs.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from _notebooks import cell_text, has_png, outputs_text, run_notebook, stream_text

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"

ISSUE_2_NOTEBOOKS = [
    "01_save_a_checkpoint.ipynb",
    "02_partial_restore.ipynb",
    "03_restore_under_other_names.ipynb",
    "04_exponential_moving_averages.ipynb",
    "05_restore_the_moving_average.ipynb",
]

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
    nb = run_notebook(NOTEBOOKS / name)
    assert stream_text(nb, "stderr") == "", f"{name} wrote to stderr:\n{stream_text(nb, 'stderr')}"
    text = outputs_text(nb)
    for pattern in NOISE:
        match = pattern.search(text)
        assert match is None, f"{name} shows log noise {match.group(0)!r}:\n{text}"
    return nb


def shows(nb, cell_id, expected):
    """Assert that cell ``cell_id`` shows ``expected`` (a substring of its output)."""
    text = cell_text(nb, cell_id)
    assert expected in text, f"cell {cell_id} should show {expected!r}, shows:\n{text}"


def shows_exactly(nb, cell_id, expected):
    text = cell_text(nb, cell_id)
    assert text == expected, f"cell {cell_id} should show exactly:\n{expected}\nshows:\n{text}"


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


@pytest.mark.notebook
def test_05_restore_the_moving_average():
    nb = execute("05_restore_the_moving_average.ipynb")
    shows(nb, "05-base", "v/ExponentialMovingAverage [] 0.099999905")
    shows_exactly(nb, "05-direct", "0.099999905\n")
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


def test_issue_2_notebooks_exist():
    missing = [name for name in ISSUE_2_NOTEBOOKS if not (NOTEBOOKS / name).is_file()]
    assert not missing, f"missing notebooks: {missing}"


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


@pytest.mark.parametrize("name", ISSUE_2_NOTEBOOKS)
def test_setup_imports_ckptwidgets_before_tensorflow(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    setup = next(cell.source for cell in nb.cells if cell.cell_type == "code")
    assert "import ckptwidgets" in setup and "import tensorflow as tf" in setup
    assert setup.index("import ckptwidgets") < setup.index("import tensorflow as tf"), setup
