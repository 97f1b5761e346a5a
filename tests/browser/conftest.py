"""JupyterLab in headless Chromium: a server, a browser, and notebook pages.

Fixtures (package-scoped: server and browser stop when the browser tests are done, not at
the end of a whole ``make test``; all stop what they start, also when a test fails):

- ``lab``: ``jupyter lab`` on a free loopback port (:func:`_free_port`) with a random token, a
  temporary root folder (``lab.root``) and its own settings, workspaces, runtime and
  ``TMPDIR``; the news and update checks are off so no pop-up covers a screenshot. It
  runs in its own process group, which the finalizer kills (kernels included).
- ``chromium``: Debian's Chromium (``/usr/bin/chromium``) through Playwright.
  Missing Chromium skips the browser tests locally and fails them when ``CI`` is set.
- ``open_notebook(path)``: copies the notebook into the root folder, opens it in a
  fresh workspace, runs all cells and returns a :class:`LabPage`, which records console
  errors, page errors and dialogs and can run code in the notebook's kernel.
- ``screenshot_dir``: ``docs/`` when ``CKPTWIDGETS_SCREENSHOTS=1`` (``make
  screenshots``), else a temporary folder: the screenshot code runs either way.
"""
from __future__ import annotations

import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CKPTWIDGETS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # root in a container
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1200, "height": 900}
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
SERVER_START_SECONDS = 60
RUN_ALL_SECONDS = 300

# JupyterLab user settings for the test server: no news or update pop-ups, every cell in
# the DOM (no virtual scrolling), and no "kernel restarted" or "save?" dialogs.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
}


def _no_browser_reason():
    if not Path(CHROMIUM).exists():
        return (f"Chromium not found at {CHROMIUM}: install it with `apt-get install chromium` "
                "(`make test` does when run as root)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as error:
        return f"playwright is not installed ({error}): pip install -e '.[test]'"
    return None


def _require_browser():
    reason = _no_browser_reason()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the browser tests: {reason}", pytrace=False)
    pytest.skip(reason)


# Servers listen on a port below Linux's ephemeral range (32768-60999), in a block of its own
# for each pytest-xdist worker: the port is free when chosen, and nothing takes it before
# the server binds it (a kernel's ZeroMQ sockets, any client, and the other workers take
# theirs elsewhere). A port of the ephemeral range, freed by a bind to port 0, could be
# handed to one of them in between.
PORT_BLOCK = 1000
PORT_BASE = 20000


def _worker_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")  # "gw3" under pytest-xdist
    return int(worker[2:]) if worker[2:].isdigit() else 0


def _free_port() -> int:
    first = PORT_BASE + (_worker_index() % 12) * PORT_BLOCK
    for port in random.sample(range(first, first + PORT_BLOCK), 100):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {first}-{first + PORT_BLOCK - 1}")


def _kill_group(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the process group (Jupyter then shuts its kernels down), SIGKILL what is left."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


class ServerProcess:
    """A Jupyter-style server in its own process group, with its log and its kernels.

    Subclasses build the command and environment and say how to probe readiness.
    """

    name = "server"

    def _start(self, command, env, base: Path) -> None:
        self.kernel_pids: set[int] = set()
        self.log = base / f"{self.name}.log"
        self._log_file = open(self.log, "w")
        self.proc = subprocess.Popen(command, stdout=self._log_file, stderr=subprocess.STDOUT, env=env,
                                     cwd=self.root, start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    @staticmethod
    def _environment(base: Path, **extra) -> dict:
        """Our own config, runtime and temp folders (kernels write under tempfile.gettempdir())."""
        tmp = base / "tmp"
        tmp.mkdir()
        env = dict(os.environ)
        env.update(JUPYTER_CONFIG_DIR=str(base / "config"), JUPYTER_RUNTIME_DIR=str(base / "runtime"),
                   TMPDIR=str(tmp), TEMP=str(tmp), TMP=str(tmp), PYDEVD_DISABLE_FILE_VALIDATION="1", **extra)
        return env

    def _probe(self) -> None:
        """Return when the server answers; raise OSError (URLError) while it does not."""
        raise NotImplementedError

    def _wait_ready(self):
        deadline = time.monotonic() + SERVER_START_SECONDS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                self._probe()
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.3)
        raise RuntimeError(f"{self.name} did not answer in {SERVER_START_SECONDS} s:\n{self.log.read_text()}")

    def remember_kernels(self):
        """Note the pids of running kernels, to kill any the server leaves behind."""
        import psutil

        try:
            for child in psutil.Process(self.proc.pid).children(recursive=True):
                self.kernel_pids.add(child.pid)
        except psutil.Error:
            pass

    def _before_stop(self) -> None:
        """Shut down politely while the server still runs (optional)."""

    def stop(self):
        import psutil

        self.remember_kernels()
        if self.proc.poll() is None:
            self._before_stop()
        _kill_group(self.proc)
        # Kernels run in their own sessions: make sure none outlives the server.
        for pid in self.kernel_pids:
            try:
                psutil.Process(pid).kill()
            except psutil.Error:
                pass
        self._log_file.close()


class LabServer(ServerProcess):
    """A running ``jupyter lab``: ``url(path)``, ``api(method, path)``, ``root``, ``log``."""

    name = "lab"

    def __init__(self, base: Path):
        self.base = base
        self.root = base / "root"
        self.root.mkdir()
        self.token = secrets.token_hex(16)
        self.port = _free_port()
        settings = base / "settings"
        for name, values in LAB_SETTINGS.items():
            path = settings / f"{name}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        env = self._environment(
            base,
            JUPYTERLAB_SETTINGS_DIR=str(settings),
            JUPYTERLAB_WORKSPACES_DIR=str(base / "workspaces"),
        )
        command = [
            sys.executable, "-m", "jupyterlab", "--no-browser",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
            "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
            # Notebook 7 (the `notebook` package) is served by the same server at /notebooks/.
            "--JupyterNotebookApp.expose_app_in_browser=True",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--ServerApp.terminals_enabled=False", "--allow-root",
        ]
        self._start(command, env, base)

    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}{sep}token={self.token}"

    def api(self, method: str, path: str):
        request = urllib.request.Request(self.url(f"api/{path}"), method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def _probe(self) -> None:
        self.api("GET", "status")

    def kernel_states(self) -> str:
        """Each kernel's state as the server sees it, and its process' CPU seconds so far."""
        import psutil

        try:
            kernels = self.api("GET", "kernels")
            children = psutil.Process(self.proc.pid).children(recursive=True)
            cpu = {p.pid: sum(p.cpu_times()[:2]) for p in children}
        except Exception as error:  # noqa: BLE001 -- a diagnosis must not hide the failure
            return f"could not ask ({error!r})"
        states = [f"{k['id'][:8]} {k['execution_state']} (last activity {k['last_activity']})" for k in kernels]
        return "; ".join(states) + f"; CPU seconds of the server's children: {sorted(cpu.values())}"

    def _before_stop(self) -> None:
        try:
            for session in self.api("GET", "sessions"):
                self.api("DELETE", f"sessions/{session['id']}")
        except Exception:  # noqa: BLE001 -- stopping anyway
            pass


# JavaScript run in the page. `panel()` is the notebook this page opened.
_JS_PANEL = "() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;" \
            " return !!(w && w.sessionContext && w.content && w.content.model); }"

_JS_RUN_ALL = """async (seconds) => {
  const app = window.jupyterapp;
  const panel = app.shell.currentWidget;
  await panel.context.ready;
  await panel.sessionContext.ready;
  app.shell.collapseLeft();
  app.shell.collapseRight();
  const TIMED_OUT = {};
  const timeout = new Promise((resolve) => setTimeout(() => resolve(TIMED_OUT), seconds * 1000));
  const ok = await Promise.race([app.commands.execute('notebook:run-all-cells'), timeout]);
  const models = panel.content.model.cells;
  if (ok === TIMED_OUT) {
    // Say where it stopped: a cell still running (kernel busy) is the notebook's doing; a
    // kernel idle with cells still waiting for their reply is a lost message.
    const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
    const states = [];
    let first = null;
    for (let i = 0; i < models.length; i++) {
      const cell = models.get(i);
      if (cell.type !== 'code') continue;
      const count = cell.executionCount;
      states.push(`${i}:${count === null ? (cell.executionState || 'none') : count}`);
      if (count === null && first === null) first = `cell ${i}: ${cell.sharedModel.getSource().slice(0, 300)}`;
    }
    throw new Error(`run-all did not finish in ${seconds} s; kernel ${kernel ? kernel.status + ', ' +
        kernel.connectionStatus : 'none'}; cells (index:execution count) ${states.join(' ')}; ` +
        `first unfinished: ${first}`);
  }
  const problems = [];
  let cells = 0, executed = 0, widgetViews = 0;
  for (let i = 0; i < models.length; i++) {
    const cell = models.get(i);
    if (cell.type !== 'code') continue;
    cells++;
    if (cell.executionCount !== null) executed++;
    for (let j = 0; j < cell.outputs.length; j++) {
      const out = cell.outputs.get(j).toJSON();
      if (out.output_type === 'error') {
        // A cell tagged raises-exception shows its error on purpose (02 shows a traceback with showtraceback()).
        if ((cell.getMetadata('tags') || []).includes('raises-exception')) continue;
        problems.push(`cell ${i}: ${out.ename}: ${out.evalue}\\n${cell.sharedModel.getSource()}`);
      } else if (out.output_type === 'stream' && out.name === 'stderr') {
        problems.push(`cell ${i} wrote to stderr: ${out.text}`);
      } else if (out.data && out.data['""" + WIDGET_VIEW + """']) {
        widgetViews++;
      }
    }
  }
  return {ok, problems, cells, executed, widgetViews};
}"""

_JS_EXECUTE = """async (code) => {
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  const future = kernel.requestExecute({code, store_history: false});
  let text = '';
  future.onIOPub = (msg) => {
    const c = msg.content;
    if (msg.header.msg_type === 'stream') text += c.text;
    else if (msg.header.msg_type === 'error') text += `${c.ename}: ${c.evalue}`;
    else if (c.data && c.data['text/plain']) text += c.data['text/plain'] + '\\n';
  };
  await future.done;
  return text;
}"""


class LabPage:
    """One notebook open in Chromium, with what the page reported.

    ``console_errors``: ``console.error`` texts and uncaught exceptions (``pageerror``);
    ``dialogs``: messages of JavaScript dialogs (alert, confirm...), each dismissed.
    """

    def __init__(self, page, name: str, run: dict):
        self.page = page
        self.name = name
        self.run = run

    def notebook(self):
        """The notebook's panel (locator)."""
        return self.page.locator(".jp-NotebookPanel:visible")

    def widget_outputs(self):
        """The output areas holding widget views, in notebook order."""
        return self.notebook().locator(".jp-OutputArea-output:has(> .jupyter-widgets)")

    def execute(self, code: str) -> str:
        """Run ``code`` in the notebook's kernel; return what it printed (and errors)."""
        return self.page.evaluate(_JS_EXECUTE, code)

    def relevant_errors(self, ignore=()):
        """Console and page errors not matching any pattern of ``ignore``."""
        return [text for text in self.page.console_errors if not any(p.search(text) for p in ignore)]


def _record(page):
    page.console_errors = []
    page.console_all = []
    page.dialogs = []

    def on_console(message):
        page.console_all.append(f"{message.type}: {message.text}")
        if message.type == "error":
            location = message.location or {}
            page.console_errors.append(f"console.error: {message.text} ({location.get('url', '')})")

    def on_dialog(dialog):
        page.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("console", on_console)
    page.on("pageerror", lambda error: page.console_errors.append(f"pageerror: {error}"))
    page.on("dialog", on_dialog)


def run_all(page, server, seconds: float = RUN_ALL_SECONDS) -> dict:
    """Run All in the page's notebook (:data:`_JS_RUN_ALL`); on a timeout, fail with what the
    page and the server say of the kernel, so that a hang says where it is."""
    from playwright.sync_api import Error as PlaywrightError

    try:
        return page.evaluate(_JS_RUN_ALL, seconds)
    except PlaywrightError as error:
        if "run-all did not finish" not in str(error):
            raise
        pytest.fail(f"{error}\nserver: {server.kernel_states()}", pytrace=False)


@pytest.fixture(scope="package")
def lab(tmp_path_factory):
    _require_browser()
    server = LabServer(tmp_path_factory.mktemp("lab"))
    yield server
    server.stop()


@pytest.fixture(scope="package")
def chromium():
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="package")
def open_notebook(lab, chromium):
    """``open_notebook(path, name=None)``: open a copy in a fresh page, run all; a LabPage.

    The page and the notebook's kernel are closed after the browser tests, or earlier
    with ``close(lab_page)``.
    """
    opened = []

    def open_(path, name=None):
        path = Path(path)
        name = name or path.name
        shutil.copy(path, lab.root / name)
        context = chromium.new_context(viewport=VIEWPORT, device_scale_factor=1)
        page = context.new_page()
        page.set_default_timeout(60_000)
        _record(page)
        lab_page = LabPage(page, name, run={})
        opened.append(lab_page)
        workspace = f"w{len(opened)}-{secrets.token_hex(3)}"
        page.goto(lab.url(f"lab/workspaces/{workspace}/tree/{name}"))
        page.wait_for_function(_JS_PANEL, timeout=120_000)
        lab_page.run = run_all(page, lab)
        lab.remember_kernels()
        return lab_page

    def close(lab_page):
        if lab_page not in opened:
            return
        opened.remove(lab_page)
        try:
            for session in lab.api("GET", "sessions"):
                if session.get("path") == lab_page.name:
                    lab.api("DELETE", f"sessions/{session['id']}")
        except Exception:  # noqa: BLE001 -- the server finalizer kills kernels anyway
            pass
        lab_page.page.context.close()

    open_.close = close
    yield open_
    for lab_page in list(opened):
        close(lab_page)


@pytest.fixture(scope="package")
def screenshot_dir(tmp_path_factory):
    if os.environ.get("CKPTWIDGETS_SCREENSHOTS") == "1":
        return ROOT / "docs"
    return tmp_path_factory.mktemp("screenshots")
