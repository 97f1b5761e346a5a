"""Peak memory of one call, measured inside a fresh benchmark process (Linux ``/proc``).

:func:`peak_growth` resets the peak RSS (``/proc/self/clear_refs``), runs the call, and gives
how far the peak (``VmHWM``, what ``ru_maxrss`` reports) rose over the RSS before it, and,
sampled every 2 ms by a thread, how far private memory (``RssAnon``: not the page cache of a
mapped file) rose. Used by the memory, writing and export benchmarks.
"""
from __future__ import annotations

import gc
import json
import os
import re
import subprocess
import sys
import threading

__all__ = ["status", "reset_peak", "peak_growth", "in_child"]

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def status() -> dict:
    """``/proc/self/status``'s sizes in bytes (``VmRSS``, ``VmHWM``, ``RssAnon``...)."""
    with open("/proc/self/status") as f:
        return {k: int(v) * 1024 for k, v in re.findall(r"(\w+):\s+(\d+) kB", f.read())}


def reset_peak() -> bool:
    """Set the peak RSS to the current RSS (Linux 4.0+); False when not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class _AnonPeak(threading.Thread):
    """Samples ``RssAnon`` every 2 ms; ``.peak`` in bytes."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.done = status()["RssAnon"], threading.Event()

    def run(self):
        while not self.done.wait(0.002):
            self.peak = max(self.peak, status()["RssAnon"])


def peak_growth(call) -> dict:
    """``{"growth", "private", "reset"}`` of ``call()``: bytes the peak RSS and the private memory
    rose over what they were before it; ``reset`` False when the peak could not be reset (the
    growth is then over the peak so far)."""
    gc.collect()
    reset = reset_peak()
    before = status()
    sampler = _AnonPeak()
    sampler.start()
    try:
        call()
    finally:
        sampler.done.set()
        sampler.join()
    after = status()
    base = before["VmRSS"] if reset else before["VmHWM"]
    return {"growth": max(0, after["VmHWM"] - base), "private": max(0, sampler.peak - before["RssAnon"]),
            "reset": reset}


def in_child(module: str, *args: str, remove: str | None = None) -> dict:
    """Run ``python -m <module> ARGS`` in a fresh process (the repository as its folder, TF's
    start-up log off) and return the JSON its last line prints; afterwards remove the files
    whose path starts with ``remove`` (what the child wrote), whether it succeeded or not."""
    try:
        out = subprocess.run(
            [sys.executable, "-m", module, *args], cwd=_ROOT, check=True, capture_output=True, text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        ).stdout
    finally:
        if remove is not None:
            folder, base = os.path.split(remove)
            for name in os.listdir(folder):
                if name.startswith(base):
                    os.remove(os.path.join(folder, name))
    return json.loads(out.strip().splitlines()[-1])
