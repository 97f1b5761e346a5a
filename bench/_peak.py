"""Peak memory of one call, measured inside a fresh benchmark process (Linux ``/proc``).

:func:`peak_growth` resets the peak RSS (``/proc/self/clear_refs``), runs the call, and gives
how far the peak (``VmHWM``, what ``ru_maxrss`` reports) rose over the RSS before it, and,
sampled every 2 ms by a thread, how far private memory (``RssAnon``: not the page cache of a
mapped file) rose. Used by the memory, writing and export benchmarks.
"""
from __future__ import annotations

import gc
import re
import threading

__all__ = ["status", "reset_peak", "peak_growth"]


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
