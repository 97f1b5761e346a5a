"""The benchmark cannot rot: ``python -m bench.run --quick`` runs and prints every row.

Timings are not checked here (a shared test machine makes them meaningless); the
README's Benchmarks section holds a full run's table.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# One row per measurement of issue #7 and the extra rows each prints.
ROWS = {
    "reading": ["`open_checkpoint(p).entries`", "against `list_variables`"],
    "planning": ["exact names", "scope rules", "prefer EMA", "alone (checks deferred)", "floor: a bare loop", "per-variable cost"],
    "restoring": ["graph mode", "eager mode", "against the floor"],
    "memory": ["peak RSS growth"],
    "mapper": ["`VariableMapper` own cost", "`VariableMapper` widget state"],
    "ema": ["value seen before", "moved to a new value"],
}


def test_quick_benchmark_prints_every_row(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--quiet", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert out.startswith("Machine: "), out
    table = [line for line in out.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| measurement | ckptwidgets"), out
    rows = table[1:]
    expected = [text for texts in ROWS.values() for text in texts]
    assert len(rows) == len(expected), out
    for text, row in zip(expected, rows):
        assert text in row, (text, row)
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        assert len(cells) == 6 and cells[5] in ("✓", "✗ MISS", "—"), row
    assert f"{len(rows)} rows" in out


def test_only_runs_one_measurement_from_the_script_path(tmp_path):
    result = subprocess.run(
        [sys.executable, "bench/run.py", "--quick", "--quiet", "--only", "reading", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")][1:]
    assert len(rows) == 2 and all("open_checkpoint" in r or "list_variables" in r for r in rows), result.stdout
