"""A JupyterLab server driven the way a learner uses it, and the memory of its processes.

- :class:`ProcessTreeSampler` reads, every fraction of a second, the resident memory of a
  set of processes (``/proc/PID/status``: all of it, anonymous, file-backed, shared) and
  keeps the peaks of two sums and of each process since the last :meth:`~ProcessTreeSampler.window`.
  The sum of RSS counts the pages of TensorFlow's libraries once in every kernel that maps
  them; a container's memory limit (Binder's 2 GB) charges them once. The estimate, each
  process's anonymous and shared memory plus the largest file-backed set once, is closer
  to what the container is charged. (PSS is no help on a shared machine: it divides a
  library's pages among every process of the machine that maps them, other users' too.)
- :func:`distinct_resident` counts the distinct physical pages of a set of processes
  (``/proc/PID/pagemap``): exact, but too slow to sample, so read at chosen moments.
- :class:`Lab` starts ``jupyter lab`` without a token on a free loopback port, its root a
  folder of the caller's, with its own config, runtime, settings, workspaces and ``TMPDIR``;
  :meth:`Lab.stop` stops it and any kernel it leaves behind (by pid).
- :class:`Learner` is one Chromium page of that server doing what a learner does: open a
  notebook, Run All, Kernel → Shut Down Kernel, close the tab, reload the page.

Used by ``python -m bench.notebook_memory``; not part of the test suite.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

CHROMIUM = os.environ.get("CKPTWIDGETS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# Only the news and update pop-ups are turned off (they could cover the menus); everything
# else is JupyterLab's default, as a learner has it.
LAB_SETTINGS = {"@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False}}
START_SECONDS = 90
RUN_ALL_SECONDS = 900


def _status(pid: int) -> dict | None:
    """Resident memory of ``pid`` in bytes by kind: ``rss``, ``anon``, ``file``, ``shmem``."""
    fields = {"VmRSS:": "rss", "RssAnon:": "anon", "RssFile:": "file", "RssShmem:": "shmem"}
    found = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key = line.split(None, 1)[0] if line.strip() else ""
                if key in fields:
                    found[fields[key]] = int(line.split()[1]) * 1024
    except OSError:
        return None
    return found if "rss" in found else None


def total(per_pid: dict) -> dict:
    """Sums over processes: ``rss`` (every shared page counted in each process) and
    ``estimate`` (anonymous and shared memory of each, plus the largest file-backed set once)."""
    return {"rss": sum(p["rss"] for p in per_pid.values()),
            "estimate": sum(p.get("anon", 0) + p.get("shmem", 0) for p in per_pid.values())
            + max((p.get("file", 0) for p in per_pid.values()), default=0)}


def distinct_resident(pids) -> int | None:
    """Bytes of the distinct physical pages the processes ``pids`` have resident, or None.

    Read from ``/proc/PID/pagemap``: a page mapped by several of them (a library every
    kernel loads) counts once, as a container's memory cgroup charges it. None when the
    page frame numbers are hidden (they need CAP_SYS_ADMIN) or a process is gone.
    Reads 8 bytes per virtual page of each process: too slow to sample continuously.
    """
    import numpy as np

    present_bit, frame_mask = np.uint64(1 << 63), np.uint64((1 << 55) - 1)
    frames = []
    try:
        for pid in pids:
            with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/pagemap", "rb") as pagemap:
                for line in maps:
                    if line.rstrip().endswith("[vsyscall]"):
                        continue
                    start, end = (int(x, 16) for x in line.split(None, 1)[0].split("-"))
                    pagemap.seek(start // 4096 * 8)
                    entries = np.frombuffer(pagemap.read((end - start) // 4096 * 8), dtype=np.uint64)
                    frames.append(entries[(entries & present_bit) != 0] & frame_mask)
    except OSError:
        return None
    frames = np.concatenate(frames) if frames else np.zeros(0, np.uint64)
    if frames.size and not frames.any():
        return None
    return int(np.unique(frames).size) * 4096


class ProcessTreeSampler(threading.Thread):
    """Peaks of the memory of ``pids()`` (a callable), sampled every ``interval`` seconds.

    ``pids()`` yields ``(pid, kind)``, the kind naming a process (``"server"``,
    ``"kernel"``...). Peaks are kept per process and for the sums of :func:`total`.
    :meth:`window` returns the peaks since the previous call and starts new ones;
    :meth:`now` is one fresh sample.
    """

    def __init__(self, pids, interval: float = 0.2):
        super().__init__(daemon=True)
        self._pids = pids
        self.interval = interval
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self.seen: set[int] = set()
        self._peaks = self._empty()

    @staticmethod
    def _empty() -> dict:
        return {"rss": 0, "estimate": 0, "per_pid": {}, "samples": 0}

    def now(self) -> dict:
        """One sample: ``{"rss", "estimate", "per_pid": {pid: {"rss", "anon", "file", "shmem", "kind"}}}``."""
        per_pid = {}
        for pid, kind in self._pids():
            values = _status(pid)
            if values is not None:
                per_pid[pid] = dict(values, kind=kind)
        return dict(total(per_pid), per_pid=per_pid)

    def run(self) -> None:
        while not self._halt.is_set():
            sample = self.now()
            with self._lock:
                peaks = self._peaks
                peaks["samples"] += 1
                peaks["rss"] = max(peaks["rss"], sample["rss"])
                peaks["estimate"] = max(peaks["estimate"], sample["estimate"])
                for pid, values in sample["per_pid"].items():
                    self.seen.add(pid)
                    old = peaks["per_pid"].setdefault(pid, {"rss": 0, "anon": 0})
                    old["kind"] = values["kind"]  # the latest: a kernel is its server's copy until it execs
                    old["rss"] = max(old["rss"], values["rss"])
                    old["anon"] = max(old["anon"], values.get("anon", 0))
            self._halt.wait(self.interval)

    def window(self) -> dict:
        """The peaks since the last call (or the start); new peaks start now."""
        with self._lock:
            peaks, self._peaks = self._peaks, self._empty()
        return peaks

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Lab:
    """``jupyter lab`` serving ``root``: :meth:`api`, :meth:`url`, :meth:`kernels`, :meth:`stop`."""

    def __init__(self, root: Path, base: Path, env: dict | None = None, python: str = sys.executable):
        self.root, self.base = Path(root), Path(base)
        self.port = free_port()
        settings = self.base / "settings"
        for name, values in LAB_SETTINGS.items():
            path = settings / f"{name}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        tmp = self.base / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, JUPYTER_CONFIG_DIR=str(self.base / "config"),
                   JUPYTER_RUNTIME_DIR=str(self.base / "runtime"), JUPYTERLAB_SETTINGS_DIR=str(settings),
                   JUPYTERLAB_WORKSPACES_DIR=str(self.base / "workspaces"), TMPDIR=str(tmp), TEMP=str(tmp),
                   TMP=str(tmp), PYDEVD_DISABLE_FILE_VALIDATION="1", **(env or {}))
        command = [python, "-m", "jupyterlab", "--no-browser", "--allow-root",
                   "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
                   "--IdentityProvider.token=", f"--ServerApp.root_dir={self.root}",
                   "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
                   "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                   "--ServerApp.terminals_enabled=False"]
        self.log_path = self.base / "lab.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                     cwd=self.root, start_new_session=True)
        self.kernel_pids: set[int] = set()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def api(self, method: str, path: str):
        request = urllib.request.Request(self.url(f"api/{path}"), method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.proc.returncode}:\n{self.log_path.read_text()}")
            try:
                self.api("GET", "status")
                return
            except (urllib.error.URLError, OSError):
                time.sleep(0.3)
        raise RuntimeError(f"jupyter lab did not answer in {START_SECONDS} s:\n{self.log_path.read_text()}")

    def processes(self) -> list:
        """``(pid, kind)`` of the server and every process under it (its kernels)."""
        import psutil

        try:
            server = psutil.Process(self.proc.pid)
            children = server.children(recursive=True)
        except psutil.Error:
            return []
        found = [(server.pid, "server")]
        for child in children:
            try:
                kind = "kernel" if "ipykernel" in " ".join(child.cmdline()) else child.name()
            except psutil.Error:
                continue
            found.append((child.pid, kind))
            if kind == "kernel":
                self.kernel_pids.add(child.pid)
        return found

    def kernels(self) -> list:
        """The server's kernels (``/api/kernels``)."""
        return self.api("GET", "kernels")

    def sessions(self) -> list:
        return self.api("GET", "sessions")

    def stop(self) -> None:
        import psutil

        if self.proc.poll() is None:
            self.processes()
            try:
                for kernel in self.kernels():
                    self.api("DELETE", f"kernels/{kernel['id']}")
            except Exception:  # noqa: BLE001 -- stopping anyway
                pass
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        # Kernels run in sessions of their own: none may outlive the server.
        for pid in self.kernel_pids:
            try:
                psutil.Process(pid).kill()
            except psutil.Error:
                pass
        self._log.close()


_JS_READY = "() => !!(window.jupyterapp && window.jupyterapp.shell)"

_JS_OPEN = """async (path) => {
  const app = window.jupyterapp;
  await app.restored;
  const panel = await app.commands.execute('docmanager:open', {path, factory: 'Notebook'});
  await panel.context.ready;
  await panel.sessionContext.ready;
  app.shell.activateById(panel.id);
  return panel.id;
}"""

# Run All, then what it left: cells run, errors (a cell tagged raises-exception shows one on purpose).
_JS_RUN_ALL = """async (seconds) => {
  const app = window.jupyterapp;
  const panel = app.shell.currentWidget;
  await panel.sessionContext.ready;
  const start = performance.now();
  const timeout = new Promise((_, reject) => setTimeout(
      () => reject(new Error(`Run All did not finish in ${seconds} s`)), seconds * 1000));
  const ok = await Promise.race([app.commands.execute('notebook:run-all-cells'), timeout]);
  const elapsed = (performance.now() - start) / 1000;
  const problems = [];
  let cells = 0, executed = 0;
  const models = panel.content.model.cells;
  for (let i = 0; i < models.length; i++) {
    const cell = models.get(i);
    if (cell.type !== 'code') continue;
    cells++;
    if (cell.executionCount !== null) executed++;
    for (let j = 0; j < cell.outputs.length; j++) {
      const out = cell.outputs.get(j).toJSON();
      if (out.output_type === 'error' && !(cell.getMetadata('tags') || []).includes('raises-exception'))
        problems.push(`cell ${i}: ${out.ename}: ${out.evalue}`);
    }
  }
  return {ok, seconds: elapsed, cells, executed, problems, path: panel.context.path};
}"""

_JS_EXECUTE = """async (code) => {
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  const future = kernel.requestExecute({code, store_history: false, silent: false});
  let text = '';
  future.onIOPub = (msg) => { if (msg.header.msg_type === 'stream') text += msg.content.text; };
  await future.done;
  return text;
}"""

_JS_SAVE_AND_CLOSE = """async () => {
  const panel = window.jupyterapp.shell.currentWidget;
  await panel.context.save();
  panel.close();
}"""

_JS_OPEN_TABS = """() => Array.from(window.jupyterapp.shell.widgets('main'))
    .filter(w => w.context).map(w => w.context.path)"""


class Learner:
    """One browser page of ``lab`` in workspace ``workspace``, used as a learner does."""

    def __init__(self, browser, lab: Lab, workspace: str = "class"):
        self.lab = lab
        self.context = browser.new_context(viewport={"width": 1400, "height": 900})
        self.page = self.context.new_page()
        self.page.set_default_timeout(60_000)
        self.dialogs: list[str] = []
        self.page.on("dialog", self._on_dialog)
        self.page.goto(lab.url(f"lab/workspaces/{workspace}"))
        self._wait_for_app()

    def _on_dialog(self, dialog) -> None:
        """Note a browser dialog; "Leave/Reload site?" (unsaved changes) is answered as a learner does."""
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        if dialog.type == "beforeunload":
            dialog.accept()
        else:
            dialog.dismiss()

    def _wait_for_app(self) -> None:
        self.page.wait_for_function(_JS_READY, timeout=120_000)
        self.page.evaluate("async () => { await window.jupyterapp.restored; }")

    def open(self, name: str) -> None:
        """Open the notebook ``name`` (its kernel starts) and make it the current tab."""
        self.page.evaluate(_JS_OPEN, name)

    def activate(self, name: str) -> None:
        """Make the open tab of notebook ``name`` the current one (a click on its tab)."""
        self.page.evaluate("""(path) => { const app = window.jupyterapp;
          const w = Array.from(app.shell.widgets('main')).find(w => w.context && w.context.path === path);
          app.shell.activateById(w.id); }""", name)
        self.page.wait_for_timeout(300)

    def run_all(self) -> dict:
        """Run All on the current notebook; wait until every cell has run."""
        return self.page.evaluate(_JS_RUN_ALL, RUN_ALL_SECONDS)

    def kernel_peak(self) -> int:
        """The current notebook's kernel's own peak RSS (``ru_maxrss``), bytes."""
        text = self.page.evaluate(_JS_EXECUTE, "import resource as _r\nprint('PEAK-KB', "
                                                "_r.getrusage(_r.RUSAGE_SELF).ru_maxrss)\ndel _r")
        match = re.search(r"PEAK-KB (\d+)", text)
        return int(match.group(1)) * 1024 if match else 0

    def shut_down_kernel(self) -> None:
        """Kernel → Shut Down Kernel in the menu bar (and confirm, if JupyterLab asks)."""
        before = {k["id"] for k in self.lab.kernels()}
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Kernel$")).click()
        self.page.locator(".lm-Menu-item:visible", has_text="Shut Down Kernel").first.click()
        accept = self.page.locator(".jp-Dialog .jp-mod-accept")
        try:
            accept.wait_for(timeout=2_000)
            accept.click()
        except Exception:  # noqa: BLE001 -- no confirmation asked
            pass
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if len({k["id"] for k in self.lab.kernels()} & before) < len(before):
                return
            time.sleep(0.3)
        raise RuntimeError("Kernel → Shut Down Kernel did not shut a kernel down in 60 s")

    def close_tab(self) -> None:
        """Save the current notebook and close its tab (its kernel, if any, keeps running)."""
        self.page.evaluate(_JS_SAVE_AND_CLOSE)
        self.page.wait_for_timeout(500)

    def open_tabs(self) -> list:
        return self.page.evaluate(_JS_OPEN_TABS)

    def reload(self) -> None:
        self.page.reload()
        self._wait_for_app()

    def close(self) -> None:
        self.context.close()
