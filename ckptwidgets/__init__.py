"""ckptwidgets: TensorFlow checkpoint surgery you can see.

Open a checkpoint, plan which key goes into which variable, check the plan,
restore it, and explore exponential moving averages, from scripts or in
Jupyter widgets.

Importing the package imports TensorFlow with its start-up log silenced; the
widgets (and so ipywidgets) load on first use.
"""
from importlib import import_module as _import_module

from ._quiet import import_tensorflow as _import_tensorflow

_import_tensorflow()

from ._version import __version__  # noqa: E402
from .errors import (  # noqa: E402
    CheckpointError,
    CheckpointNotFoundError,
    CkptWidgetsWarning,
    CorruptCheckpointError,
    PlanError,
    RestoreError,
)
from .reader import Checkpoint, Entry, open_checkpoint  # noqa: E402
from .plan import Problem, RestorePlan, plan_restore  # noqa: E402

# Imported eagerly on purpose: the function shares its module's name, and the package
# attribute must end up as the function even after someone imports the submodule.
from .restore import RestoreReport, restore  # noqa: E402

# Public name -> module that defines it, loaded on first access.
_LAZY = {
    "ema_trace": "ema",
    "EMATrace": "ema",
    "CheckpointBrowser": "widgets",
    "VariableMapper": "widgets",
    "EMAExplorer": "widgets",
}

__all__ = [
    "__version__",
    "Checkpoint",
    "Entry",
    "open_checkpoint",
    "CheckpointError",
    "CheckpointNotFoundError",
    "CorruptCheckpointError",
    "PlanError",
    "RestoreError",
    "CkptWidgetsWarning",
    "Problem",
    "RestorePlan",
    "plan_restore",
    "RestoreReport",
    "restore",
    *_LAZY,
]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(_import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ckptwidgets' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
