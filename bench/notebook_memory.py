"""Memory of the notebooks, as a class on Binder meets it: the numbers of the README's Binder section.

    .venv/bin/python -m bench.notebook_memory                 # everything (about 15 minutes)
    .venv/bin/python -m bench.notebook_memory --only fresh    # one notebook per fresh kernel
    .venv/bin/python -m bench.notebook_memory --only lab --only reload --notebooks 00 08

Three passes, each on a temporary copy of ``notebooks/`` (nothing is written into the
repository), kernels from this environment's ``python3`` kernel spec:

1. ``fresh``: every notebook in a fresh kernel (nbclient). The kernel's own peak
   (``ru_maxrss``, read by a cell appended to the copy, as ``tests/test_binder.py`` does),
   its peak RSS and anonymous memory sampled from ``/proc`` while it runs, and the run
   time (kernel start included).
2. ``lab``: one ``jupyter lab`` (no token, a free loopback port) in headless Chromium,
   00 to 08 one after another in one workspace, as a class goes: open the notebook, Run
   All, then Kernel → Shut Down Kernel (what every notebook's last cell asks) and close the
   tab. Per notebook: the kernel's ``ru_maxrss`` and the peak of the server and all its
   kernels together, sampled every 0.2 s: the sum of RSS (libraries counted in every
   process) and an estimate of what a container is charged (anonymous memory of each,
   the largest file-backed set once; see ``bench/_jupyterlab.py``). Then the same with
   a new server and without shutting kernels down (the tab is closed, the kernel keeps
   running): the total after each notebook.
   In both, after Run All, the distinct physical pages of the server and all its kernels
   (``/proc/PID/pagemap``: a library page every kernel maps counts once, as a container's
   memory cgroup charges it; needs root) besides the sum of their RSS.
3. ``reload``: what reloading the page does. A notebook open with its kernel running,
   reload: kernels before and after (``/api/kernels``). Then that kernel shut down with its
   tab left open, a second notebook opened and run, reload: does the restored tab start a
   kernel again? Then that kernel shut down with its tab closed, reload.

Prints markdown tables and writes them with the raw numbers to
``bench/out/notebook_memory.json``. Chromium's own memory is not counted (on Binder the
browser runs on the learner's computer). Run by hand; not part of ``make test``.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # python bench/notebook_memory.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._jupyterlab import (  # noqa: E402
    CHROMIUM, CHROMIUM_ARGS, Lab, Learner, ProcessTreeSampler, distinct_resident)

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
OUT = ROOT / "bench" / "out" / "notebook_memory.json"
CELL_TIMEOUT = 600  # seconds
PASSES = ("fresh", "lab", "reload")
BINDER_LIMIT = 2 * 1024 ** 3  # mybinder.org: the server and every kernel together
MB = 1024 ** 2
_COPY_IGNORE = shutil.ignore_patterns(".ipynb_checkpoints", "work", "__pycache__")


def _mb(nbytes) -> str:
    return "?" if nbytes is None else f"{nbytes / MB:.0f} MB"


def _copy_notebooks(notebooks: list, folder: Path) -> Path:
    """A copy of the folder holding ``notebooks`` (solutions included) at ``folder``."""
    shutil.copytree(notebooks[0].parent, folder, ignore=_COPY_IGNORE)
    return folder


def export(rev: str, folder: Path) -> tuple:
    """``(notebooks folder, kernel environment)`` for revision ``rev`` of the repository.

    ``"worktree"``: the checkout as it is. Otherwise ``git archive`` of ``rev``'s
    ``ckptwidgets/`` and ``notebooks/`` into ``folder``, and ``PYTHONPATH`` set so that the
    kernels import that package, not the editable install of the checkout (which other
    work may be changing meanwhile).
    """
    if rev == "worktree":
        return NOTEBOOKS, {}
    folder.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", rev, "ckptwidgets", "notebooks"], cwd=ROOT, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder / "notebooks", {"PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))}


def _log(text: str) -> None:
    print(f"  .. {text}", file=sys.stderr, flush=True)


# --- 1. each notebook in a fresh kernel --------------------------------------------------

_PEAK_CELL = ("import resource as _r, ckptwidgets as _c\n"
              "print('PEAK-KB', _r.getrusage(_r.RUSAGE_SELF).ru_maxrss, _c.__file__)")


def _own_kernels() -> list:
    """``(pid, "kernel")`` of every process this one started (nbclient's kernel)."""
    import psutil

    return [(child.pid, "kernel") for child in psutil.Process().children(recursive=True)]


def run_fresh(path: Path, folder: Path, kernel_env: dict) -> dict:
    """Execute the copy of ``path`` in ``folder`` in a new kernel; its peaks and run time."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(folder / path.name, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(_PEAK_CELL))
    tmp = folder.parent / f"tmp-{path.stem}"
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp), TEMP=str(tmp), TMP=str(tmp), PYDEVD_DISABLE_FILE_VALIDATION="1", **kernel_env)
    sampler = ProcessTreeSampler(_own_kernels)
    sampler.start()
    error = None
    start = time.monotonic()
    try:
        NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                       resources={"metadata": {"path": str(folder)}}).execute(cwd=str(folder), env=env)
    except CellExecutionError as exc:
        error = str(exc)[-2000:]
    seconds = time.monotonic() - start
    sampler.stop()
    peaks = sampler.window()
    last = "".join(o.get("text", "") for o in nb.cells[-1].get("outputs", []) if o.get("output_type") == "stream")
    words = last.split()
    maxrss = int(words[1]) * 1024 if last.startswith("PEAK-KB") else 0
    kernels = peaks["per_pid"].values()
    return {"maxrss": maxrss, "sampled_rss": max((k["rss"] for k in kernels), default=0),
            "sampled_anon": max((k["anon"] for k in kernels), default=0),
            "seconds": seconds, "error": error, "package": words[2] if len(words) > 2 else None}


def fresh_pass(notebooks: list, work: Path, kernel_env: dict) -> dict:
    results = {}
    for path in notebooks:
        folder = work / f"fresh-{path.stem}" / "notebooks"
        _copy_notebooks(notebooks, folder)
        _log(f"fresh kernel: {path.stem}")
        results[path.stem] = run_fresh(path, folder, kernel_env)
    return results


# --- 2. one JupyterLab, notebook after notebook ------------------------------------------

def _browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def lab_pass(browser, notebooks: list, work: Path, kernel_env: dict, shut_down: bool) -> dict:
    """00..08 in one server and one page; per notebook its kernel's and the server's peaks."""
    label = "shutting kernels down" if shut_down else "leaving kernels running"
    base = work / ("lab-shut-down" if shut_down else "lab-kept")
    lab = Lab(_copy_notebooks(notebooks, base / "root"), base, env=kernel_env)
    sampler = ProcessTreeSampler(lab.processes)
    sampler.start()
    learner = None
    try:
        learner = Learner(browser, lab)
        time.sleep(2)
        sampler.window()
        idle = sampler.now()
        idle["distinct"] = distinct_resident([pid for pid, _ in lab.processes()])
        rows = {}
        for path in notebooks:
            _log(f"one JupyterLab, {label}: {path.stem}")
            known = set(sampler.seen)
            learner.open(path.name)
            run = learner.run_all()
            kernel_maxrss = learner.kernel_peak()
            end_distinct = distinct_resident([pid for pid, _ in lab.processes()])
            if shut_down:
                learner.shut_down_kernel()
            learner.close_tab()
            time.sleep(2)  # a shut-down kernel's memory is returned; a kept one settles
            peaks = sampler.window()
            after = sampler.now()
            after_distinct = distinct_resident([pid for pid, _ in lab.processes()])
            new_kernels = [v for pid, v in peaks["per_pid"].items() if v["kind"] == "kernel" and pid not in known]
            rows[path.stem] = {
                "kernel_maxrss": kernel_maxrss,
                "kernel_sampled_rss": max((v["rss"] for v in new_kernels), default=0),
                "kernel_sampled_anon": max((v["anon"] for v in new_kernels), default=0),
                "peak_rss": peaks["rss"], "peak_estimate": peaks["estimate"],
                "after_rss": after["rss"], "after_estimate": after["estimate"],
                "end_distinct": end_distinct, "after_distinct": after_distinct,
                "kernels_after": len(lab.kernels()),
                "run_all_seconds": run["seconds"], "cells": run["cells"], "executed": run["executed"],
                "problems": run["problems"], "dialogs": list(learner.dialogs),
            }
        return {"idle_rss": idle["rss"], "idle_estimate": idle["estimate"], "idle_distinct": idle["distinct"],
                "notebooks": rows}
    finally:
        sampler.stop()
        if learner is not None:
            learner.close()
        lab.stop()


# --- 3. what a page reload does -----------------------------------------------------------

def _settled_kernels(lab: Lab, seconds: float = 20.0, quiet: float = 4.0) -> list:
    """``/api/kernels`` once it has not changed for ``quiet`` seconds (at most ``seconds``)."""
    deadline = time.monotonic() + seconds
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        ids = sorted(k["id"] for k in lab.kernels())
        if ids != last:
            last, since = ids, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
        time.sleep(0.5)
    return lab.kernels()


def _session_paths(lab: Lab) -> list:
    return sorted(s["path"] for s in lab.sessions())


def reload_check(browser, first: Path, second: Path, work: Path, kernel_env: dict) -> dict:
    base = work / "reload"
    lab = Lab(_copy_notebooks([first], base / "root"), base, env=kernel_env)
    learner = None
    steps = []

    def note(step: str) -> None:
        kernels = _settled_kernels(lab)
        steps.append({"step": step, "kernels": len(kernels), "sessions": _session_paths(lab),
                      "tabs": learner.open_tabs()})
        _log(f"reload check: {step}: {len(kernels)} kernel(s), sessions {steps[-1]['sessions']}")

    try:
        learner = Learner(browser, lab)
        learner.open(first.name)
        learner.run_all()
        note(f"{first.stem} open and run")
        time.sleep(3)  # the workspace is saved to the server a moment after a change
        learner.reload()
        note(f"page reloaded with {first.stem} open")
        learner.shut_down_kernel()
        note(f"{first.stem}'s kernel shut down, its tab left open")
        learner.open(second.name)
        learner.run_all()
        note(f"{second.stem} opened and run")
        time.sleep(3)
        learner.reload()
        note("page reloaded")
        learner.activate(first.name)
        learner.shut_down_kernel()
        learner.close_tab()
        note(f"{first.stem}'s kernel shut down again and its tab closed")
        time.sleep(3)
        learner.reload()
        note("page reloaded")
        return {"steps": steps}
    finally:
        if learner is not None:
            learner.close()
        lab.stop()


# --- tables --------------------------------------------------------------------------------

def fresh_table(results: dict) -> str:
    lines = ["| notebook | kernel peak (`ru_maxrss`) | sampled peak RSS (anonymous) | run time |", "|---|---:|---:|---:|"]
    for name, r in results.items():
        flag = " (failed)" if r["error"] else ""
        lines.append(f"| `{name}`{flag} | {_mb(r['maxrss'])} | {_mb(r['sampled_rss'])} ({_mb(r['sampled_anon'])}) "
                     f"| {r['seconds']:.0f} s |")
    return "\n".join(lines)


def lab_table(shut: dict | None, kept: dict | None) -> str:
    """Server + kernels: distinct resident pages (a shared library once), and the sum of RSS."""
    header, rule = "| notebook |", "|---|"
    if shut:
        header += " kernel peak | server + kernels, peak while it runs | Run All |"
        rule += "---:|---:|---:|"
    if kept:
        header += " without shutting down: server + kernels after it | kernels running |"
        rule += "---:|---:|"
    lines = [header, rule]
    idle = "| server alone, no notebook open |"
    if shut:
        idle += f" | {_mb(shut['idle_estimate'])} ({_mb(shut['idle_rss'])}) | |"
    if kept:
        idle += f" {_mb(kept['idle_distinct'])} ({_mb(kept['idle_rss'])}) | 0 |"
    lines.append(idle)
    for name in (shut or kept)["notebooks"]:
        row = f"| `{name}` |"
        if shut:
            s = shut["notebooks"][name]
            flag = "" if s["executed"] == s["cells"] and not s["problems"] else f" ({s['executed']}/{s['cells']} cells ran)"
            row += (f" {_mb(s['kernel_maxrss'])} | {_mb(s['peak_estimate'])} ({_mb(s['peak_rss'])}) "
                    f"| {s['run_all_seconds']:.0f} s{flag} |")
        if kept:
            k = kept["notebooks"][name]
            over = " **over 2 GB**" if (k["after_distinct"] or 0) > BINDER_LIMIT else ""
            row += f" {_mb(k['after_distinct'])} ({_mb(k['after_rss'])}){over} | {k['kernels_after']} |"
        lines.append(row)
    return "\n".join(lines)


def estimate_error(*passes) -> int:
    """The largest difference between the sampled estimate and the exact distinct pages, bytes."""
    return max((abs(r["after_estimate"] - r["after_distinct"]) for p in passes if p
                for r in p["notebooks"].values() if r["after_distinct"] is not None), default=0)


def reload_table(result: dict) -> str:
    lines = ["| step | kernels (`/api/kernels`) | sessions | tabs open |", "|---|---:|---|---|"]
    for s in result["steps"]:
        lines.append(f"| {s['step']} | {s['kernels']} | {', '.join(s['sessions']) or '-'} | {', '.join(s['tabs']) or '-'} |")
    return "\n".join(lines)


def conditions(rev: str) -> dict:
    """When, on what, under which load: for the README's sentence about the measurement."""
    at = "HEAD" if rev == "worktree" else rev
    commit = subprocess.run(["git", "rev-parse", "--short", at], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = rev == "worktree" and subprocess.run(["git", "status", "--porcelain", "--", "notebooks", "ckptwidgets"],
                                                 cwd=ROOT, capture_output=True, text=True).stdout.strip()
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
        with open("/proc/meminfo") as f:
            ram = f"{int(f.readline().split()[1]) / 1024 ** 2:.0f} GB RAM"
    except OSError:
        ram = "? RAM"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for name in ("tensorflow", "tensorflow-cpu", "keras", "jupyterlab", "ipykernel"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            pass
    return {"date": datetime.date.today().isoformat(), "commit": commit + (" (+ uncommitted changes)" if dirty else ""),
            "machine": f"{cores} cores ({model}), {ram}", "python": platform.python_version(), "versions": versions,
            "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.notebook_memory", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", choices=PASSES, help="run only this pass (repeatable)")
    parser.add_argument("--notebooks", nargs="+", metavar="PREFIX",
                        help="only the notebooks whose names start so (e.g. 00 08); default all")
    parser.add_argument("--at", default="HEAD", metavar="REV",
                        help="measure this commit's package and notebooks (default HEAD), or 'worktree' for the "
                             "checkout as it is")
    parser.add_argument("--tables", type=Path, metavar="JSON", help="only print the tables of saved results")
    parser.add_argument("--out", type=Path, default=OUT, help=f"JSON results (default {OUT.relative_to(ROOT)})")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.tables:
        print(report(json.loads(args.tables.read_text()))[0])
        return 0
    passes = args.only or list(PASSES)
    before = conditions(args.at)
    results = {"conditions_before": before}
    with tempfile.TemporaryDirectory(prefix="notebook-memory-") as tmp:
        work = Path(tmp)
        source, kernel_env = export(args.at, work / "source")
        notebooks = sorted(source.glob("*.ipynb"))
        if args.notebooks:
            notebooks = [p for p in notebooks if p.name.startswith(tuple(args.notebooks))]
        if not notebooks:
            sys.exit(f"no notebook in {source} starts with {' or '.join(args.notebooks)}")
        if "fresh" in passes:
            results["fresh"] = fresh_pass(notebooks, work, kernel_env)
        if "lab" in passes or "reload" in passes:
            from playwright.sync_api import sync_playwright

            with sync_playwright() as playwright:
                browser = _browser(playwright)
                try:
                    if "lab" in passes:
                        results["lab_shut_down"] = lab_pass(browser, notebooks, work, kernel_env, shut_down=True)
                        results["lab_kept"] = lab_pass(browser, notebooks, work, kernel_env, shut_down=False)
                    if "reload" in passes:
                        pair = notebooks[:2] if len(notebooks) >= 2 else notebooks * 2
                        results["reload"] = reload_check(browser, *pair, work, kernel_env)
                finally:
                    browser.close()
    results["conditions_after"] = conditions(args.at)
    text, failed = report(results)
    print(text)
    results["tables"] = text
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    return 1 if failed else 0


def report(results: dict) -> tuple:
    """``(markdown text, notebooks where not every cell ran cleanly)`` of a run's results."""
    before, after = results["conditions_before"], results["conditions_after"]
    parts = [f"Measured {before['date']} at commit {before['commit']} on {before['machine']}, "
             f"Python {before['python']}, {', '.join(f'{k} {v}' for k, v in before['versions'].items())}\n"
             f"Load before: {before['uptime']}\nLoad after:  {after['uptime']}"]
    if "fresh" in results:
        parts.append("Each notebook in a fresh kernel:\n\n" + fresh_table(results["fresh"]))
    if "lab_shut_down" in results:
        error = estimate_error(results["lab_shut_down"], results["lab_kept"])
        parts.append("One JupyterLab, 00 to 08 one after another. Server + kernels: the memory a container is "
                     "charged, a page shared by kernels counted once (after a notebook: its distinct resident "
                     "pages, `/proc/PID/pagemap`; the peak: sampled as each process's anonymous memory plus the "
                     f"largest file-backed set, within {_mb(error)} of the exact count where both were read), "
                     "and in parentheses the sum of their RSS (shared libraries counted in every kernel):\n\n"
                     + lab_table(results["lab_shut_down"], results["lab_kept"]))
    if "reload" in results:
        parts.append("Reloading the page:\n\n" + reload_table(results["reload"]))
    failed = [n for n, r in results.get("fresh", {}).items() if r["error"]]
    failed += [n for key in ("lab_shut_down", "lab_kept") for n, r in results.get(key, {}).get("notebooks", {}).items()
               if r["problems"] or r["executed"] != r["cells"]]
    if failed:
        parts.append(f"Not every cell ran cleanly: {', '.join(sorted(set(failed)))} (see the JSON results)")
    return "\n\n".join(parts), failed


if __name__ == "__main__":
    sys.exit(main())
