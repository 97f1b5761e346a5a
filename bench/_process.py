"""One command run as a fresh process: its wall time, CPU time and exact peak RSS.

A child's ``ru_maxrss`` on Linux is not only its own: ``exec`` folds the peak RSS of the
memory it replaces into it, and ``subprocess``/``posix_spawn`` start a child in its
parent's memory (vfork), so a child of a big process reports at least the parent's peak
(``python -c pass`` started from a process holding 500 MB reports 519 MB, from a bare
one 11 MB). So the benchmark does not start the measured command itself: a tiny launcher
(this file, run as ``python -I -S bench/_process.py ARGV...``, about 10 MB, standard
library only) starts it with ``os.posix_spawn``, stdout and stderr to ``/dev/null``,
reaps it with ``os.wait4`` and prints one JSON line: wall seconds (spawn to reaped), CPU
seconds (user + system), peak RSS in bytes, exit status, and the launcher's own peak RSS
before the spawn (the floor below which no child's peak can be seen).
"""
from __future__ import annotations

# Only what the launcher needs: every module it imports raises the floor of what it can measure.
import json
import os
import sys
import time

__all__ = ["measure"]

LAUNCHER = os.path.realpath(__file__)
ROOT = os.path.dirname(os.path.dirname(LAUNCHER))


def _own_peak() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _launch(argv: list) -> dict:
    """In the launcher: spawn ``argv`` (its output discarded), wait for it, measure it."""
    floor = _own_peak()
    actions = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_WRONLY, 0) for fd in (1, 2)]
    start = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "maxrss": usage.ru_maxrss * scale,
        "status": os.waitstatus_to_exitcode(status),
        "floor": floor,
    }


def measure(argv: list, env: dict | None = None, cwd=ROOT) -> dict:
    """Run ``argv`` once through the launcher; its measurements (see the module docstring).

    Raises ``RuntimeError`` when the command exits with a non-zero status.
    """
    import subprocess

    out = subprocess.run(
        [sys.executable, "-I", "-S", LAUNCHER, *map(str, argv)],
        cwd=cwd, env=env, check=True, capture_output=True, text=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    if result["status"] != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} exited with status {result['status']}")
    return result


if __name__ == "__main__":  # python -I -S bench/_process.py ARGV...
    print(json.dumps(_launch(sys.argv[1:])))
