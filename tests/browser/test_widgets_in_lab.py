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

from ckptwidgets.widgets import WIDGETS

from . import fixture_notebooks as fixtures
from .fixture_notebooks import HOSTILE_KEY

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
#: Every widget of the package's one list (a teaching notebook naming one shows a widget).
WIDGET_CLASSES = tuple(WIDGETS)

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


# --- every widget ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, module", WIDGETS.items(), ids=list(WIDGETS))
def test_every_widget_renders_alone_with_its_root(fixture_page, name, module):
    """Each widget of the registry has its fixture notebook, renders there, and carries its DOM
    classes, the stylesheet and the keyboard guard; the console stays clean."""
    from ckptwidgets.widgets._text import CSS_CLASSES

    notebook = fixtures.widget_notebook(module)
    assert notebook in fixtures.NOTEBOOKS, f"{name}: add a fixture notebook {notebook!r} showing it alone"
    lab_page = fixture_page(notebook)
    check_run(lab_page)
    output = rendered_widgets(lab_page, 1).nth(0)
    root = output.locator(f".{CSS_CLASSES['root']}.{CSS_CLASSES[module]}")
    expect()(root).to_have_count(1)
    expect()(root).to_have_attribute("data-ckptwidgets-keyboard", "kept")
    assert ".ckptwidgets-root" in root.locator("style").first.text_content()
    assert_console_clean(lab_page)


# --- VariableMapper ------------------------------------------------------------------------

def map_v1_and_restore(nb_page, root):
    """Drive the mapper fixture: rows unmapped, choose key v1 for other-v1, Restore, read back.

    Shared by every front end that shows the mapper (JupyterLab, Notebook 7).
    """
    grid = root.locator(".widget-gridbox")
    # The rows: one per variable, nothing mapped (the names differ from the checkpoint's).
    for name in ("other-v1", "other-v2"):
        expect()(grid_cell_after(grid, name, 1)).to_have_text("[1] float32")
        expect()(grid_cell_after(grid, name, 4)).to_have_text("– unmapped")
    expect()(root.get_by_text("2 variables: mapped 0 · unmapped 2", exact=False)).to_be_visible()

    # Choose key v1 for other-v1 in its row's dropdown.
    select = grid_cell_after(grid, "other-v1", 2).locator("select")
    labels = select.locator("option").all_text_contents()
    v1 = [label for label in labels if re.match(r"v1\b", label)]
    assert v1, f"no option for key v1 in {labels}"
    select.select_option(label=v1[0])
    expect()(grid_cell_after(grid, "other-v1", 4)).to_have_text("✓ mapped · ✎ by hand")  # picked by hand: marked
    expect()(root.get_by_text("mapped 1 · unmapped 1", exact=False)).to_be_visible()
    assert nb_page.execute("print(mapper.plan.mapping)").strip() == "{'other-v1': 'v1'}"

    # Restore: the report names what went where, with the restored value; the kernel agrees.
    root.locator("button", has_text=re.compile(r"^\s*Restore\s*$")).click()
    report = root.locator("pre", has_text="'other-v1' <- 'v1'")
    expect()(report).to_be_visible(timeout=30_000)
    text = report.inner_text()
    assert "Restored 1 variable from" in text and "Initialized: 'other-v2'" in text, text
    assert "'other-v1' <- 'v1' = [1.]" in text, text
    expect()(root.get_by_text(re.compile(r"^Restored 1 variable, initialised 1"))).to_be_visible()
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
    # The slider has no readout (a SelectionSlider's ignores typing): the box beside it shows and takes the decay.
    readout = widget.locator(".ckptwidgets-decay-box input")
    expect()(readout).to_have_value("0.99")
    summary = widget.get_by_text(re.compile(r"^step 1: shadow "))
    expect()(summary).to_contain_text("step 1: shadow 0.099999905 (decay used 0.99) · 95% of the way to 10 at step 299")

    screenshot(lab_page, widget, screenshot_dir / "ema_explorer.png")

    before_src, before_digest = image.get_attribute("src"), image_digest(image)
    slider.locator(".noUi-handle").focus()
    lab_page.page.keyboard.press("ArrowLeft")  # one step down the log grid: 0.99 -> 0.98
    expect()(readout).to_have_value("0.98")
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


# --- issue #15: readable at 1400 px and at 900 px with the side panel open -------------------

# Every element with text of its own inside a widget whose text does not fit its box, or
# whose box sticks out of the widget, unless a scroll container holds it (the table, a
# <pre>) or it or an ancestor carries a title. Selects are left out: the open list shows
# every option whole, and a closed key dropdown has the key as its title.
_JS_CLIPPED = """(root) => {
  const rootRight = root.getBoundingClientRect().right;
  const scrolls = (el) => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX);
  const problems = [];
  for (const el of root.querySelectorAll('*')) {
    if (['SELECT', 'OPTION', 'STYLE', 'IMG', 'INPUT', 'TEXTAREA', 'svg', 'path'].includes(el.tagName)) continue;
    if (!el.getClientRects().length) continue;  // not displayed
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own) continue;
    let held = false, titled = false;
    for (let a = el; a && a !== root.parentElement; a = a.parentElement) {
      if (a.title) titled = true;
      if (a !== el && scrolls(a)) held = true;
    }
    const wide = el.scrollWidth > el.clientWidth + 1 && !scrolls(el);
    const out = el.getBoundingClientRect().right > rootRight + 1 && !held;
    if ((wide || out) && !titled) {
      problems.push(`${el.tagName}.${el.className}: ${el.textContent.trim().slice(0, 70)} ` +
                    `(scroll ${el.scrollWidth} > client ${el.clientWidth}, right ${Math.round(el.getBoundingClientRect().right)} of ${Math.round(rootRight)})`);
    }
  }
  return problems;
}"""

_JS_LEFT_PANEL_OPEN = """() => { const s = document.querySelector('#jp-left-stack'); return !!s && s.offsetWidth > 0; }"""


def set_layout(lab_page, width, side_panel):
    """Viewport ``width`` px wide; JupyterLab's left panel (the file browser) open or closed."""
    page = lab_page.page
    page.set_viewport_size({"width": width, "height": 900})
    if page.evaluate(_JS_LEFT_PANEL_OPEN) != side_panel:
        page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id='filebrowser']").click()
        page.wait_for_function(_JS_LEFT_PANEL_OPEN if side_panel else f"() => !({_JS_LEFT_PANEL_OPEN})()")
    page.wait_for_timeout(500)  # a relayout


@pytest.mark.parametrize("width, side_panel", [(1400, False), (900, True)], ids=["1400px", "900px-side-panel"])
def test_no_text_is_cut_without_a_way_to_read_it(fixture_page, screenshot_dir, width, side_panel):
    lab_page = fixture_page("long_names.ipynb")
    check_run(lab_page)
    outputs = rendered_widgets(lab_page, 3)
    set_layout(lab_page, width, side_panel)
    try:
        mapper, browser = outputs.nth(0), outputs.nth(1)
        # A long refusal, and a selection with statistics and a comparison.
        lab_page.execute("long_mapper.plan.assign(long_names[0], kernel_key)")
        mapper.locator("button", has_text=re.compile(r"^\s*Restore\s*$")).click()
        message = mapper.locator(".ckptwidgets-message", has_text="Nothing was restored")
        expect()(message).to_be_visible()
        box = message.evaluate("e => [e.scrollWidth, e.clientWidth, e.getBoundingClientRect().height]")
        assert box[0] <= box[1] + 1 and box[2] > 30, f"the refusal does not wrap: {box}"
        grid = browser.locator(".widget-gridbox")
        grid_cell_before(grid, "encoder/stage_1/block_2/depthwise_conv_1_BN/moving_mean", 1).click()
        expect()(browser.get_by_text(re.compile(r"^raw 'encoder/stage_1/block_2/"))).to_be_visible()
        for index in range(3):
            output = outputs.nth(index)
            output.scroll_into_view_if_needed()
            problems = output.locator(".jupyter-widgets").first.evaluate(_JS_CLIPPED)
            assert not problems, f"widget {index} at {width}px: text cut without a way to read it:\n" + "\n".join(problems)
        # The whole name, both ends, is on the page.
        for name in ("encoder/stage_1/block_2/depthwise_conv_1_BN/moving_mean",
                     "encoder/stage_1/block_2/depthwise_conv_1_BN/moving_variance"):
            expect()(mapper.get_by_text(name, exact=True)).to_be_visible()
        expect()(mapper.get_by_text("[64] float32", exact=True).first).to_be_visible()
        if side_panel:  # the README shows the narrow layout beside the wide screenshots
            screenshot(lab_page, mapper, screenshot_dir / f"mapper-{width}px.png")
            screenshot(lab_page, browser, screenshot_dir / f"browser-{width}px.png")
    finally:
        lab_page.execute("long_mapper.plan.unassign(long_names[0]); long_mapper.plan.assign(long_names[0], long_names[0])")
        set_layout(lab_page, 1200, True)


# Issue #23, on a MobileNet-sized checkpoint: every text that does not fit its box (a label,
# a button, the shown option of a closed <select>) is a cut text; each must carry a title
# (its own or an ancestor's) holding all of it. Returns the cut texts without one.
_JS_CUT_WITHOUT_TOOLTIP = """(root) => {
  const canvas = document.createElement('canvas').getContext('2d');
  const titled = (el) => { for (let a = el; a && a !== root.parentElement; a = a.parentElement)
                             if (a.title) return a.title; return ''; };
  const cut = [];
  for (const el of root.querySelectorAll('select')) {
    if (!el.getClientRects().length || el.multiple || el.selectedIndex < 0) continue;
    const style = getComputedStyle(el);
    canvas.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
    const text = el.options[el.selectedIndex].text;
    const room = el.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const title = titled(el);
    if (canvas.measureText(text).width > room + 1 && !(title && title.replace(/\\s+/g, ' ').length >= text.length))
      cut.push(`select: ${text} (${Math.round(canvas.measureText(text).width)} > ${Math.round(room)} px)`);
  }
  for (const el of root.querySelectorAll('*')) {
    if (['SELECT', 'OPTION', 'STYLE', 'IMG', 'INPUT', 'TEXTAREA', 'svg', 'path'].includes(el.tagName)) continue;
    if (!el.getClientRects().length) continue;
    if (![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    const style = getComputedStyle(el);
    if (['auto', 'scroll'].includes(style.overflowX)) continue;
    if (el.scrollWidth > el.clientWidth + 1 && !titled(el))
      cut.push(`${el.tagName}.${el.className}: ${el.textContent.trim().slice(0, 80)}`);
  }
  return cut;
}"""

# Options of the closed key dropdowns: the shown text of each, to see that keys stay apart.
_JS_SHOWN_OPTIONS = """(root) => [...root.querySelectorAll('.widget-gridbox select')]
  .filter(s => s.getClientRects().length && s.selectedIndex >= 0)
  .map(s => [s.options[s.selectedIndex].text, s.closest('[title]') ? s.closest('[title]').title : ''])"""

# Each number of printed text lies on one line: the client rects of a range around each
# number share one top. Returns the numbers broken over two lines (JupyterLab's own
# ``word-break: break-all`` breaks them; reload_hint()'s CSS must not).
_JS_BROKEN_NUMBERS = """(pre) => {
  const broken = [];
  const walker = document.createTreeWalker(pre, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (const m of node.textContent.matchAll(/\\d+/g)) {
      const range = document.createRange();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
      if (tops.size > 1) broken.push(m[0]);
    }
  }
  return broken;
}"""


@pytest.mark.parametrize("width, side_panel", [(1400, False), (900, True)], ids=["1400px", "900px-side-panel"])
def test_mobilenet_sized_checkpoint_no_cut_text_without_a_tooltip(fixture_page, tmp_path, width, side_panel):
    lab_page = fixture_page("mobilenet.ipynb")
    check_run(lab_page)
    outputs = rendered_widgets(lab_page, 3)
    set_layout(lab_page, width, side_panel)
    try:
        mapper, browser, diff = outputs.nth(0), outputs.nth(1), outputs.nth(2)
        expect()(mapper.get_by_text(re.compile(r"^251 variables: mapped 251"))).to_be_visible()
        grid = browser.locator(".widget-gridbox")
        grid.locator("button").nth(2).click()  # a row of the browser: statistics and a histogram
        expect()(browser.locator("img")).to_be_visible(timeout=30_000)
        diff.locator(".widget-gridbox button").first.click()
        expect()(diff.locator("img")).to_be_visible(timeout=30_000)
        lab_page.page.wait_for_timeout(500)
        report = {}
        for name, output in (("mapper", mapper), ("browser", browser), ("diff", diff)):
            output.scroll_into_view_if_needed()
            report[name] = output.locator(".jupyter-widgets").first.evaluate(_JS_CUT_WITHOUT_TOOLTIP)
        print(f"cut texts without a tooltip at {width}px:", {k: len(v) for k, v in report.items()})
        assert not any(report.values()), f"at {width}px, texts cut without a tooltip:\n" + "\n".join(
            f"{name}: {line}" for name, lines in report.items() for line in lines)
        # The key dropdowns: no two show the same text, and each has all of its key on hover.
        shown = mapper.locator(".jupyter-widgets").first.evaluate(_JS_SHOWN_OPTIONS)
        assert len(shown) == 25 and len({text for text, _ in shown}) == 25, shown
        for text, title in shown:
            assert title.startswith("★ teacher/") and title.endswith("float32"), (text, title)
            assert text.split("/")[-1].lstrip("…") in title, (text, title)
        # The diff's selected row is marked, as the browser's is.
        expect()(diff.locator(".ckptwidgets-selected").first).to_be_visible()
        # Printed text (a check's line) breaks between words, never inside a shape's number.
        printed = lab_page.notebook().locator("pre", has_text="'student/Logits/kernel' is [1280, 5]")
        assert printed.evaluate("e => e.getClientRects()[0].height") > 60  # it wraps, over several lines
        assert printed.evaluate(_JS_BROKEN_NUMBERS) == []
        for name, output in (("mapper", mapper), ("browser", browser), ("diff", diff)):  # to look at
            screenshot(lab_page, output, tmp_path / f"mobilenet-{name}-{width}px.png")
        print("screenshots in", tmp_path)
    finally:
        set_layout(lab_page, 1200, True)


def test_stale_report_goes_grey_after_a_plan_change(fixture_page):
    lab_page = fixture_page("long_names.ipynb")
    mapper = rendered_widgets(lab_page, 3).nth(0)
    mapper.locator("button", has_text=re.compile(r"^\s*Restore\s*$")).click()
    report = mapper.locator(".ckptwidgets-report")
    expect()(report).to_contain_text("Restored 8 variable")
    expect()(mapper.locator("a.ckptwidgets-download", has_text="download the report")).to_be_visible()
    expect()(mapper.locator(".widget-readout", has_text="8/8").or_(mapper.get_by_text("8/8"))).to_be_visible()
    # Choose "(none)" for the first row: the plan changes.
    select = mapper.locator(".widget-gridbox select").first
    select.select_option(label="(none)")
    expect()(report).to_have_class(re.compile("ckptwidgets-stale"))
    expect()(report).to_contain_text("Out of date: the plan changed since this restore.")
    assert report.evaluate("e => getComputedStyle(e).opacity") == "0.45"
    expect()(mapper.locator(".widget-progress")).to_be_hidden()
    lab_page.execute("long_mapper.model.automap()")


def test_rules_apply_on_enter_and_the_message_says_so(fixture_page):
    lab_page = fixture_page("long_names.ipynb")
    mapper = rendered_widgets(lab_page, 3).nth(0)
    box = mapper.get_by_placeholder(re.compile("add a rule and press Enter"))
    box.fill("encoder/stage_1/ -> encoder/stage_2/")
    box.press("Enter")
    expect()(mapper.get_by_text(re.compile(r"^Rules applied \(1 rule\): 4 variables changed key"))).to_be_visible()
    expect()(mapper.locator("textarea")).to_have_value("encoder/stage_1/ -> encoder/stage_2/")
    box.fill("encoder/stage_1 -> encoder/stage_2")  # no trailing '/'
    box.press("Enter")
    expect()(mapper.get_by_text(re.compile("has no trailing '/'"))).to_be_visible()
    lab_page.execute("long_mapper.model.rules_text = ''")


def test_browser_sorts_naturally_and_jumps_to_a_key(fixture_page):
    lab_page = fixture_page("long_names.ipynb")
    browser = rendered_widgets(lab_page, 3).nth(1)
    grid = browser.locator(".widget-gridbox")
    keys = lambda: [t.strip() for t in grid.locator("xpath=./*[position() mod 6 = 2]").all_inner_texts()][1:]  # noqa: E731
    expect()(grid.get_by_text("encoder/stage_1/block_2/depthwise_conv_1_BN/moving_mean", exact=True)).to_be_visible()
    first = keys()
    assert first[0].startswith("encoder/stage_1/block_2/"), first  # block_2 before block_10
    browser.locator("select").filter(has=lab_page.page.locator("option", has_text="size, largest first")).select_option(
        label="size, largest first")
    expect()(grid.get_by_text(re.compile("depthwise_kernel_with_a_long_name$"))).to_be_visible()
    assert "depthwise_kernel_with_a_long_name" in keys()[0], keys()
    jump = browser.get_by_placeholder("go to key, Enter")
    jump.fill("encoder/stage_2/block_10/depthwise_conv_1_BN/moving_variance")
    jump.press("Enter")
    selected = browser.locator(".ckptwidgets-selected", has_text="moving_variance")
    expect()(selected.first).to_be_visible()
    assert selected.first.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(255, 243, 196)"
    assert lab_page.execute("print(long_browser.model.selected)").strip().endswith("block_10/depthwise_conv_1_BN/moving_variance")
    expect()(browser.get_by_text(re.compile(r"^page 3 of 3"))).to_be_visible()  # the last page holds it
    browser.locator("button[title='First page']").click()
    expect()(browser.get_by_text(re.compile(r"^page 1 of 3"))).to_be_visible()
    browser.locator("button[title='Last page']").click()
    expect()(browser.get_by_text(re.compile(r"^page 3 of 3"))).to_be_visible()


def test_ema_decay_typed_in_the_box(fixture_page):
    lab_page = fixture_page("long_names.ipynb")
    ema = rendered_widgets(lab_page, 3).nth(2)
    box = ema.locator(".ckptwidgets-decay-box input")
    box.fill("0.995")
    box.press("Enter")
    expect()(ema.get_by_text(re.compile(r"^step 1: shadow 0\.049999"))).to_be_visible()
    assert lab_page.execute("print(explorer.model.decay)").strip() == "0.995"
    box.fill("2")
    box.press("Enter")
    expect()(ema.get_by_text(re.compile("decay must be strictly between 0 and 1"))).to_be_visible()
    expect()(box).to_have_value("0.995")


def test_dropdown_keys_reach_the_dropdown_not_the_notebook(fixture_page):
    """Keys on a focused, closed dropdown change its value, and never reach the notebook:
    ArrowDown chooses the next entry (JupyterLab would move to the next cell), and "d", "d"
    (typed to jump to an entry) leaves every cell in place (JupyterLab would delete the cell)."""
    lab_page = fixture_page("long_names.ipynb")
    page = lab_page.page
    mapper = rendered_widgets(lab_page, 3).nth(0)
    cells = lab_page.notebook().locator(".jp-Cell")
    count = cells.count()
    select = mapper.locator("select").filter(has=page.locator("option", has_text="problems")).first
    expect()(mapper.locator("[data-ckptwidgets-keyboard=kept]")).to_have_count(1)
    select.focus()
    before = select.input_value()
    page.keyboard.press("ArrowDown")
    expect()(select).not_to_have_value(before)
    after = select.input_value()
    assert select.evaluate("e => document.activeElement === e"), "the dropdown lost the focus"
    assert lab_page.execute("print(long_mapper.model.show)").strip() == after
    page.keyboard.press("d")
    page.keyboard.press("d")
    page.wait_for_timeout(300)
    expect()(cells).to_have_count(count)
    assert select.evaluate("e => document.activeElement === e"), "the dropdown lost the focus"


def test_after_a_restart_and_reload_the_page_says_to_run_the_cell_again(open_notebook, tmp_path):
    from .conftest import _JS_PANEL

    lab_page = open_notebook(fixtures.write("reload.ipynb", tmp_path))
    try:
        check_run(lab_page)
        rendered_widgets(lab_page, 1)
        page = lab_page.page
        page.evaluate("""async () => {
            const panel = window.jupyterapp.shell.currentWidget;
            await panel.context.save();
            await panel.sessionContext.session.kernel.restart();
        }""")
        page.reload()
        page.wait_for_function(_JS_PANEL, timeout=120_000)
        error = lab_page.notebook().locator(".jp-OutputArea-output.jupyter-widgets", has_text="Error displaying widget")
        expect()(error).to_be_visible(timeout=60_000)
        after = error.evaluate("e => getComputedStyle(e, '::after').content")
        assert "run this cell again" in after, after
        expect()(lab_page.notebook().get_by_text(re.compile("^ckptwidgets: if a widget below is missing"))).to_be_visible()
    finally:
        open_notebook.close(lab_page)


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
