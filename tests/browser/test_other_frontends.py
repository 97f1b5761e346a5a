"""The widgets render and work in Notebook 7 and in Voila, in a real browser.

Issue #4: the widgets must work in JupyterLab 4, Notebook 7, VS Code and Voila.
JupyterLab is covered by ``test_widgets_in_lab.py``; this module covers:

- Notebook 7: the ``notebook`` package adds its UI to a JupyterLab server, at
  ``/notebooks/<path>``; the server exposes it as ``window.jupyterapp`` too, so the
  notebook is run with the same "Run All" as in JupyterLab. The mapper fixture notebook:
  rows render, a key is chosen, Restore reports what went where. It gets a server of its
  own (same settings as ``lab``): jupyter_server caches static file paths by file name
  for all its static handlers at once, and JupyterLab and Notebook 7 both ship a font
  ``620019ed9d1100b6.woff2``; once a Notebook 7 page loaded it, JupyterLab pages on the
  same server get "403 ... is not in root static directory" for theirs (and the other way
  round), a console error in every later JupyterLab test.
- Voila: ``voila`` on a free loopback port over a folder with the EMA explorer and the
  checkpoint browser fixture notebooks. Voila executes a notebook when its page is
  requested and keeps its kernel running, so moving the decay slider redraws the plot.

Requests the pages make to other hosts than the loopback servers (Voila's template loads
Font Awesome from a CDN) are answered with an empty body, so the tests need no network
and such a request cannot log a console error; the tests print the URLs.
"""
from __future__ import annotations

import os
import re
import secrets
import sys
import urllib.error
import urllib.request

import pytest

from . import fixture_notebooks as fixtures
from .conftest import (VIEWPORT, LabPage, LabServer, ServerProcess, _JS_PANEL, run_all,
                       _free_port, _record, _require_browser)
from .fixture_notebooks import HOSTILE_KEY
from .test_widgets_in_lab import (WIDGET_ERROR, check_run, expect, image_digest, map_v1_and_restore,
                                  rendered_widgets)

pytestmark = pytest.mark.browser

# Console errors that are not about the widgets, per front end, each with why.
NOTEBOOK7_IGNORED = [
    # Notebook 7.6.5 with JupyterLab 4.6.6: its keyboard-shortcuts plugin reads the settings
    # schema of a plugin it has not loaded, at start-up. The same error shows on /tree and on
    # a notebook with only `1+1` in it, with our settings files or without: not the widgets.
    re.compile(r"^pageerror: Cannot read properties of undefined \(reading 'schema'\)$"),
]
VOILA_IGNORED: list[re.Pattern] = []

# Voila 0.5 loads every installed JupyterLab extension into its own front end, which is
# built on JupyterLab 4.2 packages. Notebook 7.6's lab extension (the "open in Notebook"
# buttons in JupyterLab, useless in a dashboard) needs JupyterLab ^4.6 packages and fails
# to load there, with a console error. Leave it out, as a deployment would.
VOILA_DENYLIST = ["@jupyter-notebook/lab-extension"]


def require_package(name):
    """Like the Chromium check: a missing front end skips locally and fails under CI."""
    _require_browser()
    try:
        __import__(name)
    except ImportError as error:
        reason = f"{name} is not installed ({error}): pip install -e '.[test]'"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests: {reason}", pytrace=False)
        pytest.skip(reason)


def assert_no_console_errors(page, name, ignore):
    assert not page.dialogs, f"{name}: a JavaScript dialog opened: {page.dialogs}"
    ignored = [e for e in page.console_errors if any(p.search(e) for p in ignore)]
    if ignored:
        print(f"{name}: ignored console errors:", *ignored, sep="\n  ")
    relevant = [e for e in page.console_errors if e not in ignored]
    about_widgets = [e for e in relevant if WIDGET_ERROR.search(e)]
    assert not about_widgets, f"{name}: console errors from the widgets:\n" + "\n".join(about_widgets)
    assert not relevant, f"{name}: console errors:\n" + "\n".join(relevant)


def new_page(chromium, loopback_port):
    """A fresh page recording console errors; requests to other hosts get an empty answer."""
    context = chromium.new_context(viewport=VIEWPORT, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(60_000)
    _record(page)
    page.external_requests = []
    local = f"http://127.0.0.1:{loopback_port}/"
    local_ws = f"ws://127.0.0.1:{loopback_port}/"

    def answer_empty(route):
        page.external_requests.append(route.request.url)
        content_type = "text/css" if route.request.url.endswith(".css") else "text/plain"
        route.fulfill(status=200, body="", content_type=content_type)

    context.route(lambda url: not (url.startswith(local) or url.startswith(local_ws)), answer_empty)
    return page


def report_external(page, name):
    if page.external_requests:
        print(f"{name}: answered empty:", *page.external_requests, sep="\n  ")


# --- Notebook 7 ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def notebook7_server(tmp_path_factory):
    """A JupyterLab server for Notebook 7 pages only (see the module docstring)."""
    require_package("notebook")
    server = LabServer(tmp_path_factory.mktemp("notebook7-server"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def notebook7(notebook7_server, chromium, tmp_path_factory):
    """``notebook7(name)``: a fixture notebook opened at /notebooks/ and run; a LabPage."""
    lab = notebook7_server
    folder = tmp_path_factory.mktemp("notebook7")
    opened = []

    def open_(name):
        path = fixtures.write(name, folder)
        target = f"nb7-{name}"
        (lab.root / target).write_bytes(path.read_bytes())
        page = new_page(chromium, lab.port)
        nb_page = LabPage(page, target, run={})
        opened.append(nb_page)
        page.goto(lab.url(f"notebooks/{target}"))
        page.wait_for_function(_JS_PANEL, timeout=120_000)
        assert page.evaluate("() => window.jupyterapp.name") == "Jupyter Notebook"
        nb_page.run = run_all(page, lab)
        lab.remember_kernels()
        return nb_page

    yield open_
    for nb_page in opened:
        try:
            for session in lab.api("GET", "sessions"):
                if session.get("path") == nb_page.name:
                    lab.api("DELETE", f"sessions/{session['id']}")
        except Exception:  # noqa: BLE001 -- the server finalizer kills kernels anyway
            pass
        nb_page.page.context.close()


def test_notebook7_mapper_choose_key_and_restore(notebook7):
    nb_page = notebook7("mapper.ipynb")
    page = nb_page.page
    check_run(nb_page)
    widget = rendered_widgets(nb_page, 1).first
    mapper = widget.locator(".ckptwidgets-mapper")
    expect()(mapper).to_be_visible()
    map_v1_and_restore(nb_page, mapper)

    report_external(page, nb_page.name)
    assert_no_console_errors(page, nb_page.name, NOTEBOOK7_IGNORED)



def test_notebook7_dropdown_keys_stay_in_the_widget(notebook7):
    """Notebook 7 reads shortcuts in the capture phase, before any listener on the widget:
    ArrowDown on a focused dropdown still chooses, and "d", "d" deletes no cell."""
    nb_page = notebook7("mapper.ipynb")
    page = nb_page.page
    check_run(nb_page)
    mapper = rendered_widgets(nb_page, 1).first.locator(".ckptwidgets-mapper")
    expect()(mapper).to_have_attribute("data-ckptwidgets-keyboard", "kept")
    cells = nb_page.notebook().locator(".jp-Cell")
    count = cells.count()
    select = mapper.locator("select").filter(has=page.locator("option", has_text="problems")).first
    select.focus()
    before = select.input_value()
    page.keyboard.press("ArrowDown")
    expect()(select).not_to_have_value(before)
    page.keyboard.press("d")
    page.keyboard.press("d")
    page.wait_for_timeout(300)
    expect()(cells).to_have_count(count)
    assert select.evaluate("e => document.activeElement === e"), "the dropdown lost the focus"
    assert_no_console_errors(page, nb_page.name, NOTEBOOK7_IGNORED)

# --- Voila ---------------------------------------------------------------------------------

class VoilaServer(ServerProcess):
    """``voila`` over ``root`` on a free loopback port with a random token."""

    name = "voila"

    def __init__(self, base):
        self.root = base / "root"
        self.root.mkdir()
        for name in ("ema_explorer.ipynb", "browser.ipynb"):
            fixtures.write(name, self.root)
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        command = [
            sys.executable, "-m", "voila", str(self.root), "--no-browser",
            "--Voila.ip=127.0.0.1", f"--Voila.port={self.port}", "--Voila.port_retries=0",
            f"--Voila.token={self.token}",
            f"--VoilaConfiguration.extension_denylist={VOILA_DENYLIST!r}",
        ]
        # On stop, SIGTERM to the group: Voila shuts its kernels down itself.
        self._start(command, self._environment(base), base)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}?token={self.token}"

    def _probe(self) -> None:
        with urllib.request.urlopen(self.url(""), timeout=10):
            pass


@pytest.fixture(scope="module")
def voila(tmp_path_factory):
    require_package("voila")
    server = VoilaServer(tmp_path_factory.mktemp("voila"))
    yield server
    server.stop()


@pytest.fixture()
def voila_page(voila, chromium):
    """``voila_page(name, css_class)``: the rendered notebook, once the widget root shows."""
    pages = []

    def open_(name, css_class):
        page = new_page(chromium, voila.port)
        pages.append(page)
        page.goto(voila.url(f"voila/render/{name}"))
        widget = page.locator(f".{css_class}")
        expect()(widget).to_be_visible(timeout=120_000)
        voila.remember_kernels()
        text = page.locator("body").inner_text()
        for bad in ("Error displaying widget", "Loading widget...", "Traceback", "There was an error"):
            assert bad not in text, f"Voila {name} shows {bad!r}"
        return page, widget

    yield open_
    for page in pages:
        page.context.close()


def test_voila_ema_slider_redraws_plot(voila_page):
    page, widget = voila_page("ema_explorer.ipynb", "ckptwidgets-ema")
    image = widget.locator("img")
    expect()(image).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    slider = widget.locator(".widget-slider", has=page.locator("label", has_text="decay"))
    # The slider has no readout (a SelectionSlider's ignores typing): the box beside it shows and takes the decay.
    readout = widget.locator(".ckptwidgets-decay-box input")
    expect()(readout).to_have_value("0.99")
    summary = widget.get_by_text(re.compile(r"^step 1: shadow "))
    expect()(summary).to_contain_text("95% of the way to 10 at step 299")

    before_src, before_digest = image.get_attribute("src"), image_digest(image)
    slider.locator(".noUi-handle").focus()
    page.keyboard.press("ArrowLeft")  # one step down the log grid: 0.99 -> 0.98
    expect()(readout).to_have_value("0.98")
    # The kernel (alive behind the dashboard) redraws: a new picture, a new summary.
    expect()(image).not_to_have_attribute("src", before_src, timeout=30_000)
    assert image_digest(image) != before_digest, "the plot's src changed but not its picture"
    expect()(summary).to_contain_text("95% of the way to 10 at step 149")

    report_external(page, "voila ema_explorer.ipynb")
    assert_no_console_errors(page, "voila ema_explorer.ipynb", VOILA_IGNORED)


def test_voila_browser_renders_and_selects(voila_page):
    page, widget = voila_page("browser.ipynb", "ckptwidgets-browser")
    grid = widget.locator(".widget-gridbox")
    expect()(widget.get_by_text("page 1 of 2 · 18 rows")).to_be_visible()
    # The hostile key shows as text, and selecting it runs in the kernel.
    expect()(grid.get_by_text(HOSTILE_KEY, exact=True)).to_be_visible()
    grid.locator(f"xpath=./*[normalize-space(.)='{HOSTILE_KEY}']/preceding-sibling::*[1]").click()
    expect()(widget.get_by_text(re.compile(r"^min 1   max 3   mean 2 "))).to_be_visible()
    assert page.locator('img[src="x"]').count() == 0

    report_external(page, "voila browser.ipynb")
    assert_no_console_errors(page, "voila browser.ipynb", VOILA_IGNORED)
