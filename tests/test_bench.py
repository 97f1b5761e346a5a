"""The benchmark cannot rot: ``bench/run.py --quick`` runs and prints every row.

Timings are not checked here (a shared test machine makes them meaningless); the
README's Benchmarks section holds a full run's table.
"""
from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Text found in each row, in order: the measurements of issue #7 and the extra rows (export: issue #25).
ROWS = {
    "reading": ["`open_checkpoint(p).entries`", "against `list_variables`", "`ckpt.read(key)`",
                "`ckpt.read(key, copy=True)`"],
    "planning": ["exact names", "scope rules", "prefer EMA", "alone (checks deferred)", "floor: a bare loop",
                 "per-variable cost"],
    "restoring": ["graph mode", "eager mode", "against the floor"],
    "memory": ["peak RSS growth"],
    "mapper": ["`VariableMapper` own cost", "`VariableMapper` widget state"],
    "ema": ["value seen before", "moved to a new value"],
    "listing": ["`python -m ckptwidgets PATH` as a fresh process",
                "the same wall time, against TF's `inspect_checkpoint`",
                "peak RSS of the process", "the same peak RSS, against TF's `inspect_checkpoint`"],
    "writing": ["`plan_write(p).write(out)`", "the same rewrite, against copying the files",
                "`average(5 checkpoints).write(out)`", "peak RSS growth rewriting"],
    "export": ["export `plan_write(src).write(out.safetensors)`", "the same export, against copying",
               "`open_checkpoint(p)` + `read(key)`", "the same with `read(key, copy=True)`",
               "peak RSS growth exporting", "the old HF-style export as a fresh process",
               "the same processes: peak RSS"],
}
# Rows printed only when the package has the feature they time.
COPY_ROW = "`ckpt.read(key, copy=True)`"  # Checkpoint.read(key, copy=...)


def expected_rows(names, copy: bool) -> list[str]:
    return [text for name in names for text in ROWS[name] if copy or text != COPY_ROW]


def table_rows(out: str) -> list[list[str]]:
    lines = [line for line in out.splitlines() if line.startswith("| ")]
    assert lines and lines[0].startswith("| measurement | ckptwidgets"), out
    return [[c.strip() for c in line.strip("|").split(" | ")] for line in lines[1:]]


def test_quick_benchmark_prints_every_row(tmp_path):
    # As a script (python bench/run.py), in a fresh process as a user runs it.
    result = subprocess.run(
        [sys.executable, "bench/run.py", "--quick", "--quiet", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("Machine: "), result.stdout
    rows = table_rows(result.stdout)
    # The subprocess decides whether Checkpoint.read takes copy=; the other test checks that choice.
    expected = expected_rows(ROWS, COPY_ROW in result.stdout)
    assert len(rows) == len(expected), result.stdout
    for text, cells in zip(expected, rows):
        assert text in cells[0], (text, cells)
        assert len(cells) == 6 and cells[5] in ("✓", "✗ MISS", "—"), cells
    assert f"{len(rows)} rows" in result.stdout


def test_only_runs_the_measurements_named(tmp_path, capsys):
    sys.path.insert(0, str(ROOT))
    try:
        from bench.run import MEASUREMENTS, main
    finally:
        sys.path.remove(str(ROOT))
    assert list(MEASUREMENTS) == list(ROWS)
    assert main(["--quick", "--quiet", "--only", "reading", "--out", str(tmp_path)]) == 0
    rows = table_rows(capsys.readouterr().out)
    from ckptwidgets import Checkpoint

    expected = expected_rows(["reading"], "copy" in inspect.signature(Checkpoint.read).parameters)
    assert len(rows) == len(expected), rows
    for text, cells in zip(expected, rows):
        assert text in cells[0], (text, cells)
