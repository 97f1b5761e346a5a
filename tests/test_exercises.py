"""The exercises' contract (issue #14), for every notebook in notebooks/.

An exercise cell has the cell tag ``exercise`` and a line ``# %load solutions/<name>.py``
naming its solution in ``notebooks/solutions/``; the next tagged cell is its check (tag
``check``), which calls a function of :mod:`ckptwidgets.checks` and prints one line.

- static: every exercise names an existing solution and is followed by its check; the
  notebooks 01.. have two exercises or more (00 may have none); no solution file is orphaned;
- as committed (the run shared with test_notebooks.py, ``_notebooks.executed``): every check
  prints exactly one line ``Not yet: <hint>``, and no cell shows an error except those tagged
  ``raises-exception`` (which must raise: the tag says so);
- solved: with each exercise cell's source replaced by its solution file, every check prints
  exactly one line ``Correct: ...``, and the notebook still runs to the end.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat
import pytest

from _notebooks import executed, run_notebook

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
SOLUTIONS = NOTEBOOKS / "solutions"
PATHS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
LOAD = re.compile(r"^# %load (solutions/[A-Za-z0-9_.-]+\.py)[ \t]*$", re.MULTILINE)
MIN_EXERCISES = 2


def tags(cell) -> list:
    return cell.get("metadata", {}).get("tags", [])


def exercises(nb):
    """``[(exercise cell, solution path or None, check cell or None)]`` in notebook order.

    An exercise's check is the first ``check`` cell after it, provided no other exercise
    comes first.
    """
    found = []
    for i, cell in enumerate(nb.cells):
        if "exercise" not in tags(cell):
            continue
        loads = LOAD.findall(cell.source)
        solution = NOTEBOOKS / loads[0] if len(loads) == 1 else None
        check = None
        for later in nb.cells[i + 1:]:
            if "exercise" in tags(later):
                break
            if "check" in tags(later):
                check = later
                break
        found.append((cell, solution, check))
    return found


def read(path):
    return nbformat.read(path, as_version=4)


def stdout_of(cell) -> str:
    return "".join(out.get("text", "") for out in cell.get("outputs", [])
                   if out.output_type == "stream" and out.get("name") == "stdout")


def assert_one_line(nb_name, cell, word):
    """The check cell printed one line ``<word>: <text>`` and showed nothing else."""
    text = stdout_of(cell)
    others = [out.output_type for out in cell.outputs if out.output_type != "stream" or out.get("name") != "stdout"]
    assert not others, f"{nb_name}: check cell {cell.id} shows {others} besides its line:\n{text}"
    lines = text.splitlines()
    assert len(lines) == 1 and text.endswith("\n"), f"{nb_name}: check cell {cell.id} should print one line, printed:\n{text}"
    assert re.fullmatch(rf"{word}: \S.*", lines[0]), (
        f"{nb_name}: check cell {cell.id} should print '{word}: ...', printed:\n{lines[0]}"
    )


def assert_no_errors(nb_name, nb):
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        errors = [out for out in cell.outputs if out.output_type == "error"]
        if "raises-exception" in tags(cell):
            assert errors, f"{nb_name}: cell {cell.id} is tagged raises-exception but raised nothing"
        else:
            assert not errors, (
                f"{nb_name}: cell {cell.id} shows an error: {errors[0].ename}: {errors[0].evalue}"
            )


def check_cells(nb):
    return [cell for cell in nb.cells if "check" in tags(cell)]


# --- static ---------------------------------------------------------------------------
@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_exercises_are_well_formed(path):
    nb = read(path)
    found = exercises(nb)
    if not path.name.startswith("00"):
        assert len(found) >= MIN_EXERCISES, (
            f"{path.name} has {len(found)} exercise(s); every notebook from 01 on needs {MIN_EXERCISES} or more "
            "(cells tagged 'exercise', each with a '# %load solutions/<name>.py' line and a 'check' cell after it)"
        )
    for cell, solution, check in found:
        assert solution is not None, (
            f"{path.name}: exercise cell {cell.id} needs exactly one line '# %load solutions/<name>.py':\n{cell.source}"
        )
        assert solution.is_file(), f"{path.name}: exercise cell {cell.id} loads {solution.name}, which does not exist"
        assert check is not None, f"{path.name}: exercise cell {cell.id} has no 'check' cell after it"
        assert "check" not in tags(cell) and "exercise" not in tags(check)
        assert cell.cell_type == check.cell_type == "code", f"{path.name}: {cell.id} and {check.id} must be code cells"
        compile(solution.read_text(encoding="utf-8"), str(solution), "exec")
    checked = {check.id for _, _, check in found}
    stray = [cell.id for cell in check_cells(nb) if cell.id not in checked]
    assert not stray, f"{path.name}: check cells without an exercise before them: {stray}"
    solutions = [solution.name for _, solution, _ in found]
    assert len(solutions) == len(set(solutions)), f"{path.name}: two exercises load the same solution: {solutions}"


def test_every_solution_belongs_to_an_exercise():
    loaded = {solution.name for path in PATHS for _, solution, _ in exercises(read(path)) if solution}
    orphans = sorted(p.name for p in SOLUTIONS.glob("*.py") if p.name not in loaded)
    assert not orphans, f"solutions no exercise loads: {orphans}"


# --- as committed ----------------------------------------------------------------------
def listed_exercises(markdown: str, row_label) -> dict:
    """``{notebook number: number of exercises}`` from a markdown table whose first column is
    ``row_label(number)`` and whose last column lists the exercises separated by ``; ``."""
    counts = {}
    for path in PATHS:
        number = path.name[:2]
        rows = [line for line in markdown.splitlines() if line.startswith(f"| {row_label(path)} |")]
        if rows:
            items = rows[0].rstrip().rstrip("|").split(" | ")[-1]
            counts[number] = len([item for item in items.split("; ") if item.strip()])
    return counts


def test_the_exercise_lists_match_the_notebooks():
    """The README's notebook table and 00's exercise table name as many exercises as each
    notebook has, so a teacher reading either is not misled."""
    actual = {path.name[:2]: len(exercises(read(path))) for path in PATHS if not path.name.startswith("00")}
    readme = (NOTEBOOKS.parent / "README.md").read_text(encoding="utf-8")
    in_readme = listed_exercises(readme, lambda path: f"`{path.stem}`")
    in_readme.pop("00", None)
    assert in_readme == actual, f"README.md lists {in_readme} exercises, the notebooks have {actual}"
    start_here = "\n".join(c.source for c in read(NOTEBOOKS / "00_start_here.ipynb").cells if c.cell_type == "markdown")
    in_00 = listed_exercises(start_here.split("## Exercises", 1)[1], lambda path: path.name[:2])
    assert in_00 == actual, f"00_start_here lists {in_00} exercises, the notebooks have {actual}"


@pytest.mark.notebook
@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_as_committed_every_check_says_not_yet(path):
    nb = executed(path)  # the run test_notebooks.py makes too
    assert_no_errors(path.name, nb)
    for cell in check_cells(nb):
        assert_one_line(path.name, cell, "Not yet")


# --- solved ----------------------------------------------------------------------------
def solved(nb):
    """A copy of ``nb`` with each exercise cell's source replaced by its solution file."""
    nb = copy.deepcopy(nb)
    for cell, solution, _ in exercises(nb):
        cell.source = solution.read_text(encoding="utf-8")
    return nb


@pytest.mark.notebook
@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_with_the_solutions_every_check_says_correct(path):
    nb = read(path)
    if not exercises(nb):
        pytest.skip(f"{path.name} has no exercises")  # test_exercises_are_well_formed says whether it should
    ran = run_notebook(solved(nb), name=f"{path.name} with its solutions")
    assert_no_errors(path.name, ran)
    for cell in check_cells(ran):
        assert_one_line(f"{path.name} with its solutions", cell, "Correct")
