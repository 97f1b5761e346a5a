"""ckptwidgets: TensorFlow checkpoint surgery you can see.

Open a checkpoint, plan which key goes into which variable, check the plan,
restore it, and explore exponential moving averages, from scripts or in
Jupyter widgets.

Importing the package does not import TensorFlow: opening, listing and reading a
checkpoint never need it. Planning against ``tf.Variable`` s, restoring and ``ema_trace``
import it, with its start-up log silenced. The widgets (and so ipywidgets) load on first use.
"""
from importlib import import_module as _import_module

from ._tf.quiet import import_tensorflow
from ._version import __version__
from .errors import (
    CheckpointError,
    CheckpointNotFoundError,
    CheckpointWarning,
    CorruptCheckpointError,
    PlanError,
    RestoreError,
    WriteError,
)
from .reader import Checkpoint, Entry, open_checkpoint
from .plan import Assignment, Problem, RestorePlan, plan_restore

# Imported eagerly on purpose: the function shares its module's name, and the package
# attribute must end up as the function even after someone imports the submodule.
from .restore import RestoreReport, restore
# The widgets' registry only: the widgets themselves (and ipywidgets) load on first use.
from .widgets import WIDGETS as _WIDGETS

# Public name -> module that defines it, loaded on first access.
_LAZY = {
    "plan_write": "write",
    "from_plan": "write",
    "average": "write",
    "WritePlan": "write",
    "ema_trace": "ema",
    "EMATrace": "ema",
    "diff_checkpoints": "diff",
    # Every widget of the one list, widgets.WIDGETS (reading it imports no ipywidgets).
    **{name: "widgets" for name in _WIDGETS},
}

__all__ = [
    "__version__",
    "import_tensorflow",
    "Checkpoint",
    "Entry",
    "open_checkpoint",
    "CheckpointError",
    "CheckpointNotFoundError",
    "CheckpointWarning",
    "CorruptCheckpointError",
    "PlanError",
    "RestoreError",
    "WriteError",
    "Problem",
    "Assignment",
    "RestorePlan",
    "plan_restore",
    "RestoreReport",
    "restore",
    *_LAZY,
]


#: Submodules reachable as attributes after a bare ``import ckptwidgets`` (imported on first
#: use, so ``ckptwidgets.widgets.reload_hint()`` needs no ``import ckptwidgets.widgets``).
_SUBMODULES = ("widgets", "plots", "checks", "write", "convert", "diff", "ema", "codegen")


def __getattr__(name):
    if name in _SUBMODULES:
        return _import_module(f".{name}", __name__)  # the import binds it in globals()
    if name in _LAZY:
        value = getattr(_import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ckptwidgets' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
