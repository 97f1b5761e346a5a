"""``--model MODULE:FUNCTION`` or ``--model path/to/file.py:FUNCTION``: the function that builds a model.

The one module of the package that imports a module the user names (``convert`` and
``export`` take ``--model``); tests/test_no_eval.py allows it here and nowhere else.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys

from ..errors import PlanError

__all__ = ["model_builder"]


def model_builder(spec: str):
    """The function ``spec`` names: ``MODULE:FUNCTION`` (MODULE imported from the current
    folder or the Python path) or ``path/to/file.py:FUNCTION``; :class:`PlanError` otherwise."""
    path, sep, function = spec.rpartition(":")
    if sep and path.endswith(".py"):
        return _function_in_file(path, function, spec)
    module_name, sep, function = spec.partition(":")
    if not sep or not module_name or not function:
        raise PlanError(f"--model {spec!r} is not MODULE:FUNCTION (e.g. mymodels:build).")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise PlanError(f"--model {spec!r}: cannot import {module_name!r}: {error}") from None
    return _function(module, function, module_name, spec)


def _function_in_file(path: str, function: str, spec: str):
    if not function:
        raise PlanError(f"--model {spec!r} names no function after the ':' (e.g. {path}:build).")
    if not os.path.isfile(path):
        raise PlanError(f"--model {spec!r}: there is no file {path!r}.")
    folder = os.path.dirname(os.path.abspath(path))
    if folder not in sys.path:  # the file may import modules beside it
        sys.path.insert(0, folder)
    name = os.path.splitext(os.path.basename(path))[0]
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except ImportError as error:
        raise PlanError(f"--model {spec!r}: cannot import {path!r}: {error}") from None
    return _function(module, function, path, spec)


def _function(module, function: str, where: str, spec: str):
    build = getattr(module, function, None)
    if not callable(build):
        raise PlanError(f"--model {spec!r}: {where!r} has no function {function!r}.")
    return build
