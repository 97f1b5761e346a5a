"""The widgets render and work in JupyterLab, in a real browser.

Each widget is opened in a small fixture notebook (``fixture_notebooks.py``), run with
"Run All", then used the way a person would: a key chosen in a dropdown, a button
clicked, a slider moved by keyboard, a filter typed. Every check also looks at the kernel
side, and at the browser console: no error, no JavaScript dialog. The teaching notebooks
with widgets are run too and must show no error output and render every widget.

Screenshots of the three widgets go to a temporary folder, or to ``docs/`` with
``CKPTWIDGETS_SCREENSHOTS=1`` (``make screenshots``).
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from . import fixture_notebooks as fixtures
from .fixture_notebooks import HOSTILE_KEY

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
WIDGET_CLASSES = ("VariableMapper", "EMAExplorer", "CheckpointBrowser", "CheckpointDiff")

# Console errors that are not about the page's widgets, each with why it is harmless.
# None has been seen so far; the test prints every error it ignores.
IGNORED_CONSOLE = [
    re.compile(r"favicon\.ico"),  # a missing favicon, should the server ever not have one
]
# What a console error about our widgets (or the widget front-end) looks like.
WIDGET_ERROR = re.compile(r"ckptwidgets|ipywidgets|jupyter-widgets|jupyterlab-manager|widget", re.IGNORECASE)


def expect():
    """Playwright's ``expect``, waiting up to 30 s (two shared cores can be slow)."""
    from playwright.sync_api import expect as expect_

    expect_.set_options(timeout=30_000)
    return expect_


# --- helpers -------------------------------------------------------------------------------

def check_run(lab_page):
    run = lab_page.run
    assert run["ok"] and not run["problems"], f"{lab_page.name}: Run All failed:\n" + "\n".join(run["problems"])
    assert run["executed"] == run["cells"], f"{lab_page.name}: only {run['executed']} of {run['cells']} cells ran"


def rendered_widgets(lab_page, expected):
    """Wait until ``expected`` widget views are rendered; return their output areas."""
    outputs = lab_page.widget_outputs()
    expect()(outputs).to_have_count(expected, timeout=30_000)
    for i in range(expected):
        expect()(outputs.nth(i)).to_be_visible()
        height = outputs.nth(i).evaluate("e => e.getBoundingClientRect().height")
        assert height > 20, f"{lab_page.name}: widget output {i} is {height}px high: not rendered"
    notebook_text = lab_page.notebook().inner_text()
    for bad in ("Error displaying widget", "Loading widget..."):
        assert bad not in notebook_text, f"{lab_page.name} shows {bad!r}"
    return outputs


def assert_console_clean(lab_page):
    page = lab_page.page
    assert not page.dialogs, f"{lab_page.name}: a JavaScript dialog opened: {page.dialogs}"
    errors = page.console_errors
    ignored = [e for e in errors if any(p.search(e) for p in IGNORED_CONSOLE)]
    if ignored:
        print(f"{lab_page.name}: ignored console errors:", *ignored, sep="\n  ")
    relevant = [e for e in errors if e not in ignored]
    about_widgets = [e for e in relevant if WIDGET_ERROR.search(e)]
    assert not about_widgets, f"{lab_page.name}: console errors from the widgets:\n" + "\n".join(about_widgets)
    assert not relevant, f"{lab_page.name}: console errors:\n" + "\n".join(relevant)


def screenshot(lab_page, output, path):
    """An element screenshot of one widget output, with a viewport tall enough for all of it."""
    page = lab_page.page
    size = page.viewport_size
    height = int(output.evaluate("e => e.getBoundingClientRect().height"))
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], height + 400)})
    try:
        page.mouse.move(0, 0)  # no hover highlight or tooltip in the picture
        output.scroll_into_view_if_needed()
        page.wait_for_timeout(300)
        output.screenshot(path=str(path), animations="disabled", caret="hide")
    finally:
        page.set_viewport_size(size)
    assert path.stat().st_size > 5_000, f"{path} looks empty"


def image_digest(image):
    """SHA-256 of the bytes an <img> shows (its blob: URL fetched in the page)."""
    return image.evaluate("""async (img) => {
        const bytes = await (await fetch(img.src)).arrayBuffer();
        const digest = await crypto.subtle.digest('SHA-256', bytes);
        return Array.from(new Uint8Array(digest)).map(b => b.toString(16).padStart(2, '0')).join('');
    }""")


def grid_cell_before(grid, text, offset=1):
    """The grid cell ``offset`` places before the cell showing exactly ``text`` (same row)."""
    return grid.locator(f"xpath=./*[normalize-space(.)='{text}']/preceding-sibling::*[{offset}]")


def grid_cell_after(grid, text, offset=1):
    return grid.locator(f"xpath=./*[normalize-space(.)='{text}']/following-sibling::*[{offset}]")


# --- fixtures ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fixture_page(open_notebook, tmp_path_factory):
    """``fixture_page(name)``: a fixture notebook, opened and run once per module."""
    folder = tmp_path_factory.mktemp("fixture-notebooks")
    pages = {}

    def get(name):
        if name not in pages:
            pages[name] = open_notebook(fixtures.write(name, folder))
        return pages[name]

    yield get
    for lab_page in pages.values():
        open_notebook.close(lab_page)


# --- VariableMapper ------------------------------------------------------------------------

def map_v1_and_restore(nb_page, root):
    """Drive the mapper fixture: rows unmapped, choose key v1 for other-v1, Restore, read back.

    Shared by every front end that shows the mapper (JupyterLab, Notebook 7).
    """
    grid = root.locator(".widget-gridbox")
    # The rows: one per variable, nothing mapped (the names differ from the checkpoint's).
    for name in ("other-v1", "other-v2"):
        expect()(grid_cell_after(grid, name, 1)).to_have_text("[1] float32")
        expect()(grid_cell_after(grid, name, 3)).to_have_text("– unmapped")
    expect()(root.get_by_text("2 variables: mapped 0 · unmapped 2", exact=False)).to_be_visible()

    # Choose key v1 for other-v1 in its row's dropdown.
    select = grid_cell_after(grid, "other-v1", 2).locator("select")
    labels = select.locator("option").all_text_contents()
    v1 = [label for label in labels if re.match(r"v1\b", label)]
    assert v1, f"no option for key v1 in {labels}"
    select.select_option(label=v1[0])
    expect()(grid_cell_after(grid, "other-v1", 3)).to_have_text("✓ mapped")
    expect()(root.get_by_text("mapped 1 · unmapped 1", exact=False)).to_be_visible()
    assert nb_page.execute("print(mapper.plan.mapping)").strip() == "{'other-v1': 'v1'}"

    # Restore: the report names what went where, with the restored value; the kernel agrees.
    root.locator("button", has_text=re.compile(r"^\s*Restore\s*$")).click()
    report = root.locator("pre", has_text="'other-v1' <- 'v1'")
    expect()(report).to_be_visible(timeout=30_000)
    text = report.inner_text()
    assert "Restored 1 variable from" in text and "Initialized: 'other-v2'" in text, text
    assert "'other-v1' <- 'v1' = [1.]" in text, text
    expect()(root.get_by_text(re.compile(r"^Restored 1 variable\(s\), initialised 1"))).to_be_visible()
    values = nb_page.execute("print(sess.run(a1), sess.run(a2))")
    assert values.strip() == "[1.] [5.]", values  # v1 restored into other-v1; other-v2 initialised


def test_mapper_choose_key_and_restore(fixture_page, screenshot_dir):
    lab_page = fixture_page("mapper.ipynb")
    check_run(lab_page)
    widget = rendered_widgets(lab_page, 1).first

    map_v1_and_restore(lab_page, widget)

    screenshot(lab_page, widget, screenshot_dir / "mapper.png")
    assert_console_clean(lab_page)


# --- EMAExplorer ---------------------------------------------------------------------------

def test_ema_decay_slider_redraws_plot(fixture_page, screenshot_dir):
    lab_page = fixture_page("ema_explorer.ipynb")
    check_run(lab_page)
    widget = rendered_widgets(lab_page, 1).first
    image = widget.locator("img")
    expect()(image).to_be_visible()
    lab_page.page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    slider = widget.locator(".widget-slider", has=lab_page.page.locator("label", has_text="decay"))
    readout = slider.locator(".widget-readout")
    expect()(readout).to_have_text("0.99")
    summary = widget.get_by_text(re.compile(r"^step 1: shadow "))
    expect()(summary).to_contain_text("step 1: shadow 0.099999905 (decay used 0.99) · 95% of the way to 10 at step 299")

    screenshot(lab_page, widget, screenshot_dir / "ema_explorer.png")

    before_src, before_digest = image.get_attribute("src"), image_digest(image)
    slider.locator(".noUi-handle").focus()
    lab_page.page.keyboard.press("ArrowLeft")  # one step down the log grid: 0.99 -> 0.98
    expect()(readout).to_have_text("0.98")
    expect()(image).not_to_have_attribute("src", before_src, timeout=30_000)
    assert image_digest(image) != before_digest, "the plot's src changed but not its picture"
    expect()(summary).to_contain_text("95% of the way to 10 at step 149")
    assert lab_page.execute("print(explorer.model.decay, explorer.model.reach_step)").strip() == "0.98 149"
    assert_console_clean(lab_page)


# --- CheckpointBrowser ---------------------------------------------------------------------

def test_browser_hostile_key_is_text(fixture_page):
    lab_page = fixture_page("browser.ipynb")
    check_run(lab_page)
    widget = rendered_widgets(lab_page, 1).first
    grid = widget.locator(".widget-gridbox")
    page = lab_page.page

    # The key shows as text; no <img src="x"> exists, so its onerror cannot run.
    expect()(grid.get_by_text(HOSTILE_KEY, exact=True)).to_be_visible()
    # Select it: its name becomes a heading and a histogram title.
    grid_cell_before(grid, HOSTILE_KEY, 1).click()
    expect()(widget.get_by_text(re.compile(r"^min 1   max 3   mean 2 "))).to_be_visible()
    expect()(widget.get_by_text(HOSTILE_KEY, exact=True)).to_have_count(2)
    page.wait_for_timeout(500)  # time for an onerror to fire, if there were an <img>
    assert page.locator('img[src="x"]').count() == 0
    assert page.evaluate("() => document.body.innerHTML.includes('<img src=\"x\"')") is False
    assert page.dialogs == [], f"a dialog opened: {page.dialogs}"
    assert lab_page.execute("print(repr(browser.model.selected))").strip() == repr(HOSTILE_KEY)
    assert_console_clean(lab_page)


def test_browser_filter_and_select(fixture_page, screenshot_dir):
    lab_page = fixture_page("browser.ipynb")
    widget = rendered_widgets(lab_page, 1).first
    grid = widget.locator(".widget-gridbox")

    expect()(widget.get_by_text("page 1 of 2 · 18 rows")).to_be_visible()
    widget.get_by_placeholder(re.compile("filter keys")).fill("!Adam")
    expect()(widget.get_by_text("page 1 of 1 · 10 rows")).to_be_visible()
    expect()(grid.get_by_text("dense/kernel/Adam", exact=True)).to_have_count(0)

    grid_cell_before(grid, "dense/kernel", 1).click()
    comparison = widget.get_by_text(re.compile(r"^raw 'dense/kernel' vs EMA shadow 'dense/kernel/ExponentialMovingAverage'"))
    expect()(comparison).to_be_visible(timeout=30_000)
    histogram = widget.locator("img")
    expect()(histogram).to_be_visible()
    lab_page.page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=histogram.element_handle())
    assert lab_page.execute("print(browser.model.selected, len(browser.model.matches))").strip() == "dense/kernel 10"

    screenshot(lab_page, widget, screenshot_dir / "browser.png")
    assert_console_clean(lab_page)


# --- CheckpointDiff ------------------------------------------------------------------------

def test_diff_shows_renames_and_a_selected_row(fixture_page, screenshot_dir):
    lab_page = fixture_page("diff.ipynb")
    check_run(lab_page)
    widget = rendered_widgets(lab_page, 1).first
    grid = widget.locator(".widget-gridbox")
    expect()(grid.get_by_text("head/w", exact=True)).to_be_visible()
    expect()(grid.get_by_text("classifier/w", exact=True)).to_be_visible()  # a rename: one row
    expect()(grid.get_by_text("extra/scale", exact=True)).to_be_visible()

    grid_cell_before(grid, "dense/kernel", 2).first.click()  # the row's select button (key in a)
    histogram = widget.locator("img")
    expect()(histogram).to_be_visible(timeout=30_000)
    lab_page.page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=histogram.element_handle())
    assert lab_page.execute("print(diff.model.selected)").strip() == "dense/kernel"
    screenshot(lab_page, widget, screenshot_dir / "diff.png")

    widget.get_by_placeholder(re.compile("filter keys")).fill("dense")
    expect()(grid.get_by_text("classifier/w", exact=True)).to_have_count(0)
    expect()(grid.get_by_text("dense/bias", exact=True)).to_have_count(2)  # its key in a and in b
    assert_console_clean(lab_page)


# --- the teaching notebooks ----------------------------------------------------------------

def widget_notebooks():
    found = []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        source = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        if any(name in source for name in WIDGET_CLASSES):
            found.append(path)
    return found


@pytest.mark.parametrize("path", widget_notebooks(), ids=lambda p: p.stem)
def test_notebook_runs_in_lab(open_notebook, path):
    lab_page = open_notebook(path)
    try:
        check_run(lab_page)
        rendered_widgets(lab_page, lab_page.run["widgetViews"])
        assert lab_page.run["widgetViews"] >= 1, f"{path.name} shows no widget"
        assert_console_clean(lab_page)
    finally:
        open_notebook.close(lab_page)
