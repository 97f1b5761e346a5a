"""ckptwidgets: TensorFlow checkpoint surgery you can see.

Open a checkpoint, plan which key goes into which variable, check the plan,
restore it, and explore exponential moving averages, from scripts or in
Jupyter widgets.

Importing the package imports TensorFlow with its start-up log silenced.
"""
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
]
