"""Every docstring example of the package runs and prints what it says (``doctest``)."""
from __future__ import annotations

import doctest
import importlib
import pkgutil
import tempfile

import pytest

import ckptwidgets

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(ckptwidgets.__path__, "ckptwidgets.")
    if not info.name.endswith("__main__")
)


def test_the_package_has_modules():
    assert len(MODULES) > 25 and "ckptwidgets._planning.kinds" in MODULES and "ckptwidgets.sources.bundle" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    # The examples write into tempfile.mkdtemp(), as TensorFlow's do: here, into tmp_path.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS, report=True)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed (see the output above)"
