"""Disk space for the few tests that write gigabytes.

numpy's ``requires_memory`` for the disk: a test that needs more free space than the machine
has is skipped with the numbers, not failed halfway with ``ENOSPC`` in some later test. The
whole suite's footprint stays small because ``tmp_path_retention_policy = "failed"``
(pyproject.toml) removes a passed test's ``tmp_path`` as soon as it ends.
"""
from __future__ import annotations

import shutil

import pytest

GB = 1000 ** 3
# What the rest of the suite may still be writing beside the test (the other xdist worker).
HEADROOM = 2 * GB


def require_free_disk(path, needed: int) -> None:
    """Skip the calling test unless the disk holding ``path`` has ``needed`` bytes free, plus headroom."""
    free = shutil.disk_usage(path).free
    if free < needed + HEADROOM:
        pytest.skip(f"needs {(needed + HEADROOM) / GB:.1f} GB free under {path}, has {free / GB:.1f} GB")
