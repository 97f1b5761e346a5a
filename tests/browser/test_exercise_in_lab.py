"""One exercise done in JupyterLab with the mouse and the keyboard only (issue #14).

Notebook 03, Exercise 2 "a new scope with one rule, in the mapper": after Run All, with the
exercise cell left as committed, its check prints ``Not yet: ...``. Then, as a learner would:
click into the ``net_mapper`` widget's one-line rule box, type ``/ -> net/``, press Enter
(the box adds the rule and applies it), see the counts line say "mapped 2", click the check
cell and run it with Shift+Enter: it now prints one line, ``Correct: ...``.

Nothing is run in the kernel from the test and no trait is set from code: only Playwright's
``click``, ``keyboard.type`` and ``keyboard.press``. What the page shows is read back.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from .test_widgets_in_lab import assert_console_clean, check_run, expect, rendered_widgets

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "03_restore_under_other_names.ipynb"
MAPPER_CELL = "03-net"  # shows net_mapper: net/v1 and net/v2, both unmapped
EXERCISE_CELL = "03-ex-rule"  # left as committed: no answer in code
CHECK_CELL = "03-ex-rule-check"  # checks.root_rule_mapper(net_mapper)
RULE = "/ -> net/"


def cell_index(cells, cell_id):
    """The position of the cell with ``cell_id`` in the committed notebook."""
    ids = [cell.get("id") for cell in cells]
    assert cell_id in ids, f"{NOTEBOOK.name} has no cell {cell_id!r}"
    return ids.index(cell_id)


def output_lines(cell):
    """The cell's output areas' texts (one entry per output)."""
    return [text.strip() for text in cell.locator(".jp-OutputArea-output").all_inner_texts()]


def test_root_rule_exercise_with_mouse_and_keyboard(open_notebook):
    cells = nbformat.read(NOTEBOOK, as_version=4).cells
    exercise_source = cells[cell_index(cells, EXERCISE_CELL)].source
    # As committed: the %load line commented out and no answer in code, only comments.
    assert all(line.lstrip().startswith("#") for line in exercise_source.splitlines() if line.strip()), \
        f"{EXERCISE_CELL} holds code: the exercise must start unsolved\n{exercise_source}"

    lab_page = open_notebook(NOTEBOOK)
    try:
        check_run(lab_page)
        rendered_widgets(lab_page, lab_page.run["widgetViews"])
        page = lab_page.page
        notebook_cells = lab_page.notebook().locator(".jp-Cell")
        expect()(notebook_cells).to_have_count(len(cells))
        mapper_cell = notebook_cells.nth(cell_index(cells, MAPPER_CELL))
        check_cell = notebook_cells.nth(cell_index(cells, CHECK_CELL))
        expect()(check_cell.locator(".jp-InputArea")).to_contain_text("checks.root_rule_mapper(net_mapper)")

        # After Run All: the check says "Not yet", the mapper maps nothing.
        check_output = check_cell.locator(".jp-OutputArea-output")
        expect()(check_output).to_have_count(1)
        expect()(check_output).to_have_text(re.compile(r"^Not yet: "))
        mapper = mapper_cell.locator(".jupyter-widgets").first
        counts = mapper.get_by_text(re.compile(r"^2 variables: mapped \d+ · unmapped \d+"))
        expect()(counts).to_have_text(re.compile(r"^2 variables: mapped 0 · unmapped 2 · "))

        # The learner: click into the rule box, type the rule, press Enter.
        rule_box = mapper.get_by_placeholder(re.compile("add a rule and press Enter"))
        rule_box.scroll_into_view_if_needed()
        rule_box.click()
        expect()(rule_box).to_be_focused()
        page.keyboard.type(RULE)
        expect()(rule_box).to_have_value(RULE)  # every key reached the box, none the notebook
        page.keyboard.press("Enter")
        expect()(counts).to_have_text(re.compile(r"^2 variables: mapped 2 · unmapped 0 · problems 0 · "))
        # Enter added the rule to the rules box and emptied the one-line box, without an error.
        expect()(mapper.locator("textarea")).to_have_value(RULE)
        expect()(rule_box).to_have_value("")
        expect()(mapper.get_by_text(re.compile(r"^Rules applied \(1 rule\): 2 variable\(s\) changed key"))).to_be_visible()

        # Click the check cell (its prompt: command mode, the cell selected) and run it.
        prompt = check_cell.locator(".jp-InputPrompt")
        prompt.scroll_into_view_if_needed()
        prompt.click()
        expect()(check_cell).to_have_class(re.compile(r"\bjp-mod-selected\b"))
        before = check_cell.locator(".jp-InputPrompt").inner_text().strip()
        page.keyboard.press("Shift+Enter")
        expect()(check_cell.locator(".jp-InputPrompt")).not_to_have_text(before)  # ran again: a new count
        expect()(check_cell.locator(".jp-InputPrompt")).not_to_have_text(re.compile(r"\*"))  # and finished
        expect()(check_output).to_have_count(1)
        expect()(check_output).to_have_text(re.compile(r"^Correct: "))
        lines = output_lines(check_cell)
        assert len(lines) == 1 and len(lines[0].splitlines()) == 1, f"the check printed more than one line: {lines}"
        assert lines[0] == ("Correct: '/ -> net/' loads every top-level key into net/<key>: "
                            "v1 -> net/v1, v2 -> net/v2."), lines
        assert_console_clean(lab_page)
    finally:
        open_notebook.close(lab_page)
