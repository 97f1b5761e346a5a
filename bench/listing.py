"""7. Listing from the shell: ``python -m ckptwidgets PATH`` as a whole, fresh process.

What a user waits for and the memory it takes, start-up included, on the 10,000-entry
checkpoint; the targets are absolute (≤ 1.0 s wall, ≤ 150 MB peak RSS), the ratios
against two processes that need TensorFlow are shown next to them:
``python -c "import tensorflow"`` (the floor of anything that imports it) and TF's own
``python -m tensorflow.python.tools.inspect_checkpoint --file_name=PREFIX``, which with no
``--tensor_name`` prints only each key's dtype and shape (``reader.debug_string()``) and
the parameter count.

Each command runs as ``sys.executable`` in a fresh process with ``TF_CPP_MIN_LOG_LEVEL=3``,
its stdout and stderr to ``/dev/null``, started and measured by the tiny launcher of
:mod:`bench._process` (a child started by the benchmark itself would report the
benchmark's peak RSS as its own). The three run in turn, the order rotated every repeat:
5 repeats, as each costs seconds (a smaller ``--repeats`` lowers it; 1 with ``--quick``).
Before the timing each runs once with its output kept and checked (every key listed):
that run is also the warm-up (page cache of TF's libraries).
"""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

from . import _inputs, _process
from ._timing import Row, Sample, format_bytes, ratio_row, ratio_sample

NAME = "listing"
WALL_LIMIT = 1.0  # seconds
RSS_LIMIT = 150_000_000  # bytes
REPEATS = 5

IMPORT_TF = "`python -c \"import tensorflow\"`"
INSPECT = "`python -m tensorflow.python.tools.inspect_checkpoint --file_name=PREFIX`"


def commands(prefix: str) -> dict:
    python = sys.executable
    return {
        "ckptwidgets": [python, "-m", "ckptwidgets", prefix],
        "import": [python, "-c", "import tensorflow"],
        "inspect": [python, "-m", "tensorflow.python.tools.inspect_checkpoint", f"--file_name={prefix}"],
    }


def child_env() -> dict:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def _check(kind: str, argv: list, keys: list) -> None:
    """Run ``argv`` once, output kept: it must succeed and (for the listings) name every key."""
    result = subprocess.run(argv, cwd=_process.ROOT, env=child_env(), capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{kind}: {' '.join(argv)} exited with status {result.returncode}:\n"
                           f"{result.stderr[-2000:]}")
    if kind == "import":
        return
    # ckptwidgets prints "key kind dtype shape size" rows, inspect_checkpoint "key (DT_FLOAT) [2,3]"
    # (and prints its errors to stdout with status 0): every key must start a line.
    first_words = {line.split(maxsplit=1)[0] for line in result.stdout.splitlines() if line.strip()}
    missing = [k for k in keys if k not in first_words]
    assert not missing, f"{kind} did not list {len(missing)} of {len(keys)} keys, e.g. {missing[:3]}:\n" \
                        f"{result.stdout[:2000]}"


def _with_target(row: Row, target: str, value: float, limit: float) -> Row:
    return dataclasses.replace(row, target=target, value=value, limit=limit)


def _bytes(sample: Sample) -> str:
    return f"{format_bytes(sample.median)} ± {format_bytes(sample.spread)}"


def _rss_row(measurement: str, ours: Sample, base: Sample, base_label: str, limit=None) -> Row:
    r = ratio_sample(ours, base)
    return Row(
        NAME,
        measurement,
        _bytes(ours),
        f"{base_label}: {_bytes(base)}",
        f"{r.median:.2f}x ± {r.spread:.2f}",
        "—" if limit is None else f"≤ {format_bytes(limit)}",
        None if limit is None else ours.median,
        limit,
    )


def run(ctx):
    import tensorflow as tf

    n = ctx.entries
    prefix = _inputs.many_entries(n, ctx.out)
    keys = [k for k, _ in tf.train.list_variables(prefix)]
    assert len(keys) == n
    cmds = commands(prefix)
    for kind, argv in cmds.items():
        ctx.log(f"listing: checking `{' '.join(argv[1:3])}` (also the warm-up)")
        _check(kind, argv, keys)

    kinds = list(cmds)
    wall = {k: Sample() for k in kinds}
    rss = {k: Sample() for k in kinds}
    floor = 0
    repeats = min(ctx.repeats, REPEATS)
    env = child_env()
    for i in range(repeats):
        ctx.log(f"listing: run {i + 1} of {repeats} (three fresh processes)")
        for kind in kinds[i % 3:] + kinds[:i % 3]:
            result = _process.measure(cmds[kind], env)
            wall[kind].values.append(result["wall"])
            wall[kind].cpu.append(result["cpu"])
            rss[kind].values.append(result["maxrss"])
            floor = max(floor, result["floor"])

    # A peak at the launcher's own is only an upper bound (never seen with Python children).
    note = "" if min(rss["ckptwidgets"].values) > floor else f" (at the launcher's floor of {format_bytes(floor)})"
    ours_wall, ours_rss = wall["ckptwidgets"], rss["ckptwidgets"]
    what = f"`python -m ckptwidgets PATH` as a fresh process, {n:,} entries"
    rows = [
        _with_target(ratio_row(NAME, f"{what}: wall time", ours_wall, wall["import"], IMPORT_TF),
                     f"≤ {WALL_LIMIT:.1f} s", ours_wall.median, WALL_LIMIT),
        ratio_row(NAME, "the same wall time, against TF's `inspect_checkpoint` (keys, dtypes, shapes)", ours_wall,
                  wall["inspect"], INSPECT),
        _rss_row(f"{what}: peak RSS of the process{note}", ours_rss, rss["import"], IMPORT_TF, RSS_LIMIT),
        _rss_row("the same peak RSS, against TF's `inspect_checkpoint`", ours_rss, rss["inspect"], INSPECT),
    ]
    return rows
