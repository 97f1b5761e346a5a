"""Run the benchmarks and print a markdown table of ratios measured in the same run.

    .venv/bin/python -m bench.run              # every measurement, full sizes (a few minutes)
    .venv/bin/python -m bench.run --quick      # smoke run: tiny sizes, 1 repeat
    .venv/bin/python -m bench.run --only reading --only planning
    .venv/bin/python -m bench.run --only listing  # `python -m ckptwidgets PATH` as a process
    python bench/run.py --help

Inputs are built once and cached in ``bench/out/`` (git-ignored; about 1.4 GB for the
full run). Timings are medians over ``--repeats`` runs with half the interquartile range
as the spread; each ratio is the median of per-pair ratios of interleaved runs, so the
noise of a shared machine hits both sides.
"""
from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # python bench/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._context import Context  # noqa: E402
from bench._timing import markdown_table  # noqa: E402

#: name -> module, in the order of issue #7, then the TF-free listing of the redesign, writing (#12), export (#25).
MEASUREMENTS = {
    "reading": "bench.reading",
    "planning": "bench.planning",
    "restoring": "bench.restoring",
    "memory": "bench.memory",
    "mapper": "bench.mapper",
    "ema": "bench.ema_explorer",
    "listing": "bench.listing",
    "writing": "bench.writing",
    "export": "bench.export",
}


def machine() -> str:
    """One line naming the machine and the versions measured."""
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        memory = f", {kb / 1024 ** 2:.0f} GB RAM"
    except (OSError, ValueError, IndexError):
        pass
    import ipywidgets
    import matplotlib
    import numpy
    import tensorflow as tf

    return (f"{cores} cores ({model}), CPU only{memory}; Python {platform.python_version()}, "
            f"TensorFlow {tf.__version__}, numpy {numpy.__version__}, matplotlib {matplotlib.__version__}, "
            f"ipywidgets {ipywidgets.__version__}")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes and 1 repeat: checks that it runs, not timings")
    parser.add_argument("--only", action="append", choices=list(MEASUREMENTS), metavar="NAME",
                        help=f"run only this measurement (repeatable): {', '.join(MEASUREMENTS)}")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per measurement (default 7; 1 with --quick)")
    parser.add_argument("--out", type=Path, default=None, help="where inputs are built and cached (default bench/out)")
    parser.add_argument("--check", action="store_true", help="exit with status 1 when a target is missed")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    ctx = Context(quick=args.quick)
    ctx.repeats = args.repeats or (1 if args.quick else 7)
    if args.out is not None:
        ctx.out = args.out
    ctx.verbose = not args.quiet
    ctx.out.mkdir(parents=True, exist_ok=True)

    from ckptwidgets._tf.quiet import import_tensorflow

    import_tensorflow()
    load = " ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    names = args.only or list(MEASUREMENTS)
    rows, start = [], time.perf_counter()
    for name in names:
        module = importlib.import_module(MEASUREMENTS[name])
        rows.extend(module.run(ctx))
    sizes = "quick (tiny sizes, not the targets' sizes)" if ctx.quick else "full"
    print(f"Machine: {machine()}")
    repeats = f"{ctx.repeats} repeat(s)" if ctx.quick else f"{ctx.repeats} repeats ({ctx.fast_repeats} for the faster calls)"
    print(f"Run: {sizes}, {repeats}, load average before {load}, {time.perf_counter() - start:.0f} s\n")
    print(markdown_table(rows))
    missed = [row for row in rows if row.ok is False]
    print(f"\n{len(rows)} rows, {sum(r.ok is True for r in rows)} targets met, {len(missed)} missed"
          + (f": {', '.join(dict.fromkeys(r.name for r in missed))}" if missed else ""))
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
