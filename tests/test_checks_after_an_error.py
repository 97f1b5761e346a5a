"""Issue #23 item 1: a check run right after its exercise cell raised grades nothing.

The variables may still hold a right answer from an earlier run, so every check (all of them,
through the shared :func:`ckptwidgets.checks.check`) says ``Not yet: the cell above raised
<Error>: <message>; fix it and run it again.`` instead, in a real kernel (nbclient), also when
the check cell is run again; once the cell above has run without an error the check grades
the answer as usual.
"""
from __future__ import annotations

import importlib
import pkgutil

import nbformat
import pytest
from nbclient import NotebookClient

import ckptwidgets.checks

MODULES = [
    importlib.import_module(f"ckptwidgets.checks.{info.name}")
    for info in pkgutil.iter_modules(ckptwidgets.checks.__path__)
    if not info.name.startswith("_")
]
CHECKS = sorted(
    (module.__name__.rsplit(".", 1)[1], name)
    for module in MODULES
    for name, value in vars(module).items()
    if callable(value) and hasattr(value, "__wrapped__") and getattr(value, "__module__", None) == module.__name__
)


def test_every_check_module_is_found():
    assert len(CHECKS) >= 20, CHECKS
    assert ("basics", "read_value") in CHECKS and ("renaming", "swapped_var_list") in CHECKS


def _cell(source, id_):
    return nbformat.v4.new_code_cell(source, id=id_)


def _kernel_notebook():
    """For every check: a cell that raises, the check, the check again, the cell fixed, the check.

    Then a real right answer (``basics.read_value``): Correct, then after a raising cell Not yet,
    then after the cell is fixed Correct again.
    """
    cells = [_cell("from ckptwidgets.checks import TODO\n" + "".join(
        f"from ckptwidgets.checks import {module}\n" for module in sorted({m for m, _ in CHECKS})), "imports")]
    for module, name in CHECKS:
        call = f"{module}.{name}(answer)"
        cells += [
            _cell(f"answer = TODO\nraise ValueError('a typo in the {name} exercise')", f"{name}-raises"),
            _cell(call, f"{name}-check-after-error"),
            _cell(call, f"{name}-check-again"),
            _cell("answer = TODO", f"{name}-fixed"),
            _cell(call, f"{name}-check-after-fix"),
        ]
    cells += [
        _cell("import numpy as np\nanswer = np.array([2.0], dtype=np.float32)", "right-answer"),
        _cell("basics.read_value(answer)", "right-check"),
        _cell("answer = reader.get_tensor('v2:0')  # NameError: reader was never defined", "right-raises"),
        _cell("basics.read_value(answer)", "right-check-after-error"),
        _cell("answer = np.array([2.0], dtype=np.float32)", "right-fixed"),
        _cell("basics.read_value(answer)", "right-check-after-fix"),
        _cell("def broken(:\n    pass", "syntax-error"),
        _cell("basics.read_value(answer)", "check-after-syntax-error"),
    ]
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    return nb


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    nb = _kernel_notebook()
    folder = tmp_path_factory.mktemp("kernel")
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True, iopub_timeout=60,
                   raise_on_iopub_timeout=True, resources={"metadata": {"path": str(folder)}}).execute()
    return {cell.id: cell for cell in nb.cells}


def shown(cell) -> str:
    errors = [out for out in cell.outputs if out.output_type == "error"]
    assert not errors, f"cell {cell.id} raised {errors[0].ename}: {errors[0].evalue}"
    return "".join(out.get("text", "") for out in cell.outputs if out.output_type == "stream")


def graded_without_a_kernel(capsys, module, name):
    """What the check prints for ``TODO`` where no cell raised (plain Python)."""
    capsys.readouterr()
    getattr(importlib.import_module(f"ckptwidgets.checks.{module}"), name)(ckptwidgets.checks.TODO)
    return capsys.readouterr().out


@pytest.mark.parametrize("module, name", CHECKS, ids=[f"{m}.{n}" for m, n in CHECKS])
def test_a_check_after_a_cell_that_raised(ran, capsys, module, name):
    raised = f"Not yet: the cell above raised ValueError: a typo in the {name} exercise; fix it and run it again.\n"
    assert [out.get("ename") for out in ran[f"{name}-raises"].outputs] == ["ValueError"]
    assert shown(ran[f"{name}-check-after-error"]) == raised
    # Run again without fixing the cell above: still that cell's error, not the old answer.
    assert shown(ran[f"{name}-check-again"]) == raised
    # The cell above fixed and run: graded as it would be anywhere.
    graded = shown(ran[f"{name}-check-after-fix"])
    assert graded == graded_without_a_kernel(capsys, module, name)
    assert graded.startswith("Not yet: ") and "raised ValueError" not in graded, graded


def test_a_right_answer_left_from_before_is_not_graded(ran):
    correct = shown(ran["right-check"])
    assert correct.startswith("Correct: the checkpoint holds [2.0] under 'v2'"), correct
    assert shown(ran["right-check-after-error"]) == (
        "Not yet: the cell above raised NameError: name 'reader' is not defined; fix it and run it again.\n"
    )
    assert shown(ran["right-check-after-fix"]) == correct


def test_a_syntax_error_counts_as_raised(ran):
    text = shown(ran["check-after-syntax-error"])
    assert text.startswith("Not yet: the cell above raised SyntaxError: "), text
    assert text.endswith("; fix it and run it again.\n"), text
