"""A Run All that does not finish says where it stopped.

CI once saw Run All of notebook 07 not finish in 300 s, with nothing to tell a hung cell
from a lost kernel message. The failure now names the first unfinished cell and what the
page and the server say of the kernel; this test hangs a cell on purpose to check that.
"""
from __future__ import annotations

import nbformat
import pytest

from .conftest import _JS_PANEL, VIEWPORT, _record, run_all


def test_a_run_all_that_does_not_finish_names_the_cell_and_the_kernel_state(lab, chromium):
    name = "hangs.ipynb"
    cells = ["x = 1", "import time\ntime.sleep(60)  # the hung cell", "y = 2"]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(notebook, lab.root / name)
    context = chromium.new_context(viewport=VIEWPORT, device_scale_factor=1)
    try:
        page = context.new_page()
        _record(page)
        page.goto(lab.url(f"lab/tree/{name}"))
        page.wait_for_function(_JS_PANEL, timeout=120_000)
        with pytest.raises(pytest.fail.Exception) as failure:
            run_all(page, lab, seconds=8)
    finally:
        for session in lab.api("GET", "sessions"):
            if session.get("path") == name:
                lab.api("DELETE", f"sessions/{session['id']}")
        context.close()
    message = str(failure.value)
    assert "run-all did not finish in 8 s; kernel busy" in message, message
    assert "first unfinished: cell 1: import time\ntime.sleep(60)" in message, message
    assert " 0:1 " in message, message  # cell 0 ran, as execution count 1
    assert "busy (last activity" in message, message  # the server's view of the kernel
