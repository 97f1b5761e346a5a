"""One exercise done in JupyterLab with the mouse and the keyboard only (issues #14, #23).

Notebook 03, Exercise 2 "a new scope with one rule, in the mapper": after Run All, with the
exercise cell left as committed, its check prints ``Not yet: ...``. Then, as a learner would:

- right away: click into the ``net_mapper`` widget's one-line rule box, type ``/ -> net/``,
  press Enter (the box adds the rule and applies it), see the counts line say "mapped 2",
  click the check cell and run it with Shift+Enter: one line, ``Correct: ...``;
- wrong, then right (issue #23): type the rule the wrong way round, ``net/ -> /``; the check
  says ``Not yet`` with the hint for exactly that mistake; select the rules box's text, type
  the right rule over it, click Apply rules; the check says ``Correct``;
- a cell that raises (issue #23): type code with a typo into the exercise cell and run it
  (NameError), then the check: it says the cell above raised, although the variables are
  unchanged; fix the cell, run it and the check again: ``Correct``.

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


WRONG_RULE = "net/ -> /"  # the checkpoint side and the variable side swapped
WRONG_RULE_HINT = "Not yet: the rule is the wrong way round: the checkpoint side comes first, '/ -> net/'."
CORRECT_LINE = "Correct: '/ -> net/' loads every top-level key into net/<key>: v1 -> net/v1, v2 -> net/v2."


def committed_cells():
    cells = nbformat.read(NOTEBOOK, as_version=4).cells
    exercise_source = cells[cell_index(cells, EXERCISE_CELL)].source
    # As committed: the %load line commented out and no answer in code, only comments.
    assert all(line.lstrip().startswith("#") for line in exercise_source.splitlines() if line.strip()), \
        f"{EXERCISE_CELL} holds code: the exercise must start unsolved\n{exercise_source}"
    return cells


def opened(open_notebook, cells):
    """Notebook 03 after Run All: ``(lab_page, mapper widget, check cell)``, the check saying Not yet."""
    lab_page = open_notebook(NOTEBOOK)
    check_run(lab_page)
    rendered_widgets(lab_page, lab_page.run["widgetViews"])
    notebook_cells = lab_page.notebook().locator(".jp-Cell")
    expect()(notebook_cells).to_have_count(len(cells))
    check_cell = notebook_cells.nth(cell_index(cells, CHECK_CELL))
    expect()(check_cell.locator(".jp-InputArea")).to_contain_text("checks.root_rule_mapper(net_mapper)")
    expect()(check_cell.locator(".jp-OutputArea-output")).to_have_text(re.compile(r"^Not yet: "))
    mapper = notebook_cells.nth(cell_index(cells, MAPPER_CELL)).locator(".jupyter-widgets").first
    return lab_page, mapper, check_cell


def counts_line(mapper):
    return mapper.get_by_text(re.compile(r"^2 variables: mapped \d+ · unmapped \d+"))


def type_rule(page, mapper, rule):
    """Click into the one-line rule box, type ``rule``, press Enter."""
    rule_box = mapper.get_by_placeholder(re.compile("add a rule and press Enter"))
    rule_box.scroll_into_view_if_needed()
    rule_box.click()
    expect()(rule_box).to_be_focused()
    page.keyboard.type(rule)
    expect()(rule_box).to_have_value(rule)  # every key reached the box, none the notebook
    page.keyboard.press("Enter")
    expect()(rule_box).to_have_value("")  # added to the rules box
    expect()(mapper.locator("textarea")).to_have_value(rule)


def run_selected_cell(page, cell):
    """Shift+Enter on the selected ``cell``; wait until it ran (a new execution count)."""
    prompt = cell.locator(".jp-InputPrompt")
    before = prompt.inner_text().strip()
    page.keyboard.press("Shift+Enter")
    expect()(prompt).not_to_have_text(before)  # ran again: a new count
    expect()(prompt).not_to_have_text(re.compile(r"\*"))  # and finished


def run_check(page, check_cell):
    """Click the check cell's prompt (command mode, the cell selected), run it; its one line."""
    prompt = check_cell.locator(".jp-InputPrompt")
    prompt.scroll_into_view_if_needed()
    prompt.click()
    expect()(check_cell).to_have_class(re.compile(r"\bjp-mod-selected\b"))
    run_selected_cell(page, check_cell)
    expect()(check_cell.locator(".jp-OutputArea-output")).to_have_count(1)
    lines = output_lines(check_cell)
    assert len(lines) == 1 and len(lines[0].splitlines()) == 1, f"the check printed more than one line: {lines}"
    return lines[0]


def test_wrong_rule_then_right_rule_with_mouse_and_keyboard(open_notebook):
    cells = committed_cells()
    lab_page, mapper, check_cell = opened(open_notebook, cells)
    try:
        page = lab_page.page
        # Wrong: the rule typed the wrong way round maps nothing; the check names that mistake.
        type_rule(page, mapper, WRONG_RULE)
        expect()(counts_line(mapper)).to_have_text(re.compile(r"^2 variables: mapped 0 · unmapped 2 · "))
        assert run_check(page, check_cell) == WRONG_RULE_HINT
        # Right: select the rules box's text, type the right rule over it, click Apply rules.
        rules_box = mapper.locator("textarea")
        rules_box.scroll_into_view_if_needed()
        rules_box.click()
        expect()(rules_box).to_be_focused()
        page.keyboard.press("Control+A")
        page.keyboard.type(RULE)
        expect()(rules_box).to_have_value(RULE)
        mapper.get_by_role("button", name="Apply rules").click()
        expect()(counts_line(mapper)).to_have_text(re.compile(r"^2 variables: mapped 2 · unmapped 0 · problems 0 · "))
        assert run_check(page, check_cell) == CORRECT_LINE
        assert_console_clean(lab_page)
    finally:
        open_notebook.close(lab_page)


def test_a_check_after_the_exercise_cell_raised(open_notebook):
    cells = committed_cells()
    lab_page, mapper, check_cell = opened(open_notebook, cells)
    try:
        page = lab_page.page
        exercise_cell = lab_page.notebook().locator(".jp-Cell").nth(cell_index(cells, EXERCISE_CELL))
        editor = exercise_cell.locator(".cm-content")
        # The learner types the rule from code, with a typo (`rule` for the string), and runs
        # the cell with Shift+Enter: it raises, and Shift+Enter moves on to the check cell.
        editor.scroll_into_view_if_needed()
        editor.click()
        page.keyboard.press("Control+End")
        page.keyboard.press("Enter")
        page.keyboard.type("net_mapper.model.add_rule(rule)")
        expect()(editor).to_contain_text("net_mapper.model.add_rule(rule)")
        run_selected_cell(page, exercise_cell)
        expect()(exercise_cell.locator(".jp-OutputArea-output")).to_contain_text("NameError")
        expect()(check_cell).to_have_class(re.compile(r"\bjp-mod-selected\b"))
        run_selected_cell(page, check_cell)
        raised = ("Not yet: the cell above raised NameError: name 'rule' is not defined; "
                  "fix it and run it again.")
        expect()(check_cell.locator(".jp-OutputArea-output")).to_have_text(raised)
        # Run the check again without fixing the cell: still that error, nothing graded.
        assert run_check(page, check_cell) == raised
        # Fix it: select the cell's text, type the call with the rule as a string, run both.
        editor.scroll_into_view_if_needed()
        editor.click()
        page.keyboard.press("Control+A")
        page.keyboard.type('net_mapper.model.add_rule("/ -> net/")')
        expect()(editor).to_have_text('net_mapper.model.add_rule("/ -> net/")')
        run_selected_cell(page, exercise_cell)
        expect()(exercise_cell.locator(".jp-OutputArea-output")).to_have_text("True")
        expect()(counts_line(mapper)).to_have_text(re.compile(r"^2 variables: mapped 2 · unmapped 0 · problems 0 · "))
        run_selected_cell(page, check_cell)
        expect()(check_cell.locator(".jp-OutputArea-output")).to_have_text(CORRECT_LINE)
        assert_console_clean(lab_page)
    finally:
        open_notebook.close(lab_page)


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
        expect()(mapper.get_by_text(re.compile(r"^Rules applied \(1 rule\): 2 variables changed key"))).to_be_visible()

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
