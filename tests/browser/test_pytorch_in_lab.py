"""Notebook 09 in JupyterLab: the mapper shows each tensor's layout transform (issue #25).

The notebook is opened and run with "Run All" in Chromium, like a learner's: the mapper of its
first section (a Keras CNN's weights into the same model in PyTorch) must show a ``transform``
column whose cells read ``HWIO->OIHW`` for the conv weight and ``transpose`` for the Linear
weight, on the rows of those tensors, in view. Its picture is the README's
``docs/mapper_transforms.png`` (written there with ``CKPTWIDGETS_SCREENSHOTS=1``,
``make screenshots``; else into a temporary folder).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from .test_widgets_in_lab import assert_console_clean, check_run, expect, rendered_widgets, screenshot

pytestmark = pytest.mark.browser

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "09_take_your_checkpoint_to_pytorch.ipynb"


def visible_cell(root, text):
    """The one grid cell of the widget ``root`` whose whole text is ``text``, visible."""
    cell = root.get_by_text(re.compile(rf"^\s*{re.escape(text)}\s*$"))
    expect()(cell).to_have_count(1)
    expect()(cell).to_be_visible()
    return cell


def same_row(a, b) -> bool:
    """Two grid cells on one line of the table: their boxes overlap vertically."""
    box_a, box_b = a.bounding_box(), b.bounding_box()
    return box_a["y"] < box_b["y"] + box_b["height"] and box_b["y"] < box_a["y"] + box_a["height"]


def test_the_mapper_shows_each_transform(open_notebook, screenshot_dir):
    lab_page = open_notebook(NOTEBOOK)
    try:
        check_run(lab_page)
        mapper, student_mapper = rendered_widgets(lab_page, 2).all()

        header = visible_cell(mapper, "transform")
        for variable, transform in (("conv.weight", "HWIO->OIHW"), ("logits.weight", "transpose")):
            name, shown = visible_cell(mapper, variable), visible_cell(mapper, transform)
            assert same_row(name, shown), f"{transform!r} is not on the row of {variable!r}"
            # In the transform column: under its header, not in another column of the row.
            left, width = header.bounding_box()["x"], header.bounding_box()["width"]
            assert left - 2 <= shown.bounding_box()["x"] <= left + width, f"{transform!r} is not under 'transform'"
        assert "mapped 8" in mapper.inner_text() and "problems 0" in mapper.inner_text()

        # The way back, in the exercise's mapper: the inverse transform.
        visible_cell(student_mapper, "OIHW->HWIO")

        screenshot(lab_page, mapper, screenshot_dir / "mapper_transforms.png")
        assert_console_clean(lab_page)
    finally:
        open_notebook.close(lab_page)
