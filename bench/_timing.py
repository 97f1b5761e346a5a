"""Repeated, interleaved timings and the rows of the result table.

Every measurement runs ckptwidgets and its baseline alternately in the same process, so
that the noise of a shared machine hits both; the table shows medians with half the
interquartile range as the spread, and the ratio is the median of the per-pair ratios of
wall-clock times (targets are judged on it). The median per-pair ratio of process CPU
times is shown next to it: on a loaded machine it moves much less.
"""
from __future__ import annotations

import gc
import statistics
import time
from dataclasses import dataclass, field

__all__ = ["Sample", "Row", "timed", "compare", "ratio_sample", "format_seconds", "format_bytes"]


@dataclass
class Sample:
    """Repeated measurements of one thing (seconds, bytes or a ratio)."""

    values: list = field(default_factory=list)
    cpu: list = field(default_factory=list)  # process CPU seconds of the same runs, when timed

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def spread(self) -> float:
        """Half the interquartile range (0 for fewer than 2 values)."""
        if len(self.values) < 2:
            return 0.0
        q1, _, q3 = statistics.quantiles(self.values, n=4, method="inclusive")
        return (q3 - q1) / 2


def timed(fn, cpu: list | None = None) -> float:
    """Wall seconds one call of ``fn()`` takes, garbage collected before and paused during.

    With ``cpu``, the process CPU seconds of the call are appended to it: a second view
    that other processes' load disturbs much less than the wall clock.
    """
    gc.collect()
    gc.disable()
    try:
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall = time.perf_counter() - start
        if cpu is not None:
            cpu.append(time.process_time() - start_cpu)
        return wall
    finally:
        gc.enable()


def compare(ours, base, repeats: int, warmup: int = 1) -> tuple[Sample, Sample]:
    """Time ``ours()`` and ``base()`` alternately (order flipped every repeat)."""
    for _ in range(warmup):
        ours()
        base()
    a, b = Sample(), Sample()
    for i in range(repeats):
        if i % 2:
            b.values.append(timed(base, b.cpu))
            a.values.append(timed(ours, a.cpu))
        else:
            a.values.append(timed(ours, a.cpu))
            b.values.append(timed(base, b.cpu))
    return a, b


def ratio_sample(a: Sample, b: Sample, cpu: bool = False) -> Sample:
    """Per-pair ratios ``a[i] / b[i]`` (of the CPU times with ``cpu``)."""
    xs, ys = (a.cpu, b.cpu) if cpu else (a.values, b.values)
    return Sample([x / y if y else float("inf") for x, y in zip(xs, ys)])


def format_seconds(sample_or_seconds) -> str:
    if isinstance(sample_or_seconds, Sample):
        m, s = sample_or_seconds.median, sample_or_seconds.spread
    else:
        m, s = sample_or_seconds, None
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if abs(m) >= scale or unit == "µs":
            text = f"{m / scale:.3g} {unit}"
            if s is not None:
                text += f" ± {s / scale:.2g}"
            return text
    raise AssertionError  # pragma: no cover


def format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{n:.0f} B"
        n /= 1000
    raise AssertionError  # pragma: no cover


@dataclass
class Row:
    """One line of the result table.

    ``value`` is the number compared with ``target`` (a ratio, or a size in bytes); ``ok``
    is None for informational rows (no target).
    """

    name: str
    measurement: str
    ours: str
    baseline: str
    ratio: str
    target: str = "—"
    value: float | None = None
    limit: float | None = None

    @property
    def ok(self) -> bool | None:
        if self.limit is None or self.value is None:
            return None
        return self.value <= self.limit

    def cells(self) -> list[str]:
        ok = {None: "—", True: "✓", False: "✗ MISS"}[self.ok]
        return [self.measurement, self.ours, self.baseline, self.ratio, self.target, ok]


def ratio_row(name, measurement, ours: Sample, base: Sample, base_label: str, limit=None) -> Row:
    """A row comparing two timings: the ratio is the median of the per-pair ratios."""
    r = ratio_sample(ours, base)
    text = f"{r.median:.2f}x ± {r.spread:.2f}"
    if ours.cpu and base.cpu:
        text += f" (CPU time {ratio_sample(ours, base, cpu=True).median:.2f}x)"
    return Row(
        name=name,
        measurement=measurement,
        ours=format_seconds(ours),
        baseline=f"{base_label}: {format_seconds(base)}",
        ratio=text,
        target="—" if limit is None else f"≤ {limit:g}x",
        value=r.median,
        limit=limit,
    )


HEADER = ["measurement", "ckptwidgets (median ± spread)", "baseline (median ± spread)", "ratio", "target", "ok"]


def markdown_table(rows) -> str:
    def esc(text):
        return str(text).replace("|", "\\|")

    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for row in rows:
        lines.append("| " + " | ".join(esc(c) for c in row.cells()) + " |")
    return "\n".join(lines)
