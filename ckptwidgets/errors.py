"""The exceptions and warnings ckptwidgets raises.

Every error a user can cause is a :class:`CheckpointError`, so a notebook can
catch one class and show its message instead of a TensorFlow traceback.
"""
from __future__ import annotations

__all__ = [
    "CheckpointError",
    "CheckpointNotFoundError",
    "CorruptCheckpointError",
    "PlanError",
    "RestoreError",
    "WriteError",
    "CheckpointWarning",
]


class CheckpointError(Exception):
    """Base class of every error ckptwidgets raises on purpose."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """No checkpoint at the given path (or the folder's ``checkpoint`` file points nowhere)."""


class CorruptCheckpointError(CheckpointError):
    """The checkpoint's files exist but cannot be read (truncated, flipped bits, not a checkpoint)."""


class PlanError(CheckpointError, ValueError):
    """A restore plan was asked for something impossible (bad arguments, unknown variable)."""


class RestoreError(CheckpointError):
    """A restore was refused or failed; no variable was changed.

    Attributes
    ----------
    problems : list of Problem
        Every problem found, when the plan was refused before restoring.
    """

    def __init__(self, message, problems=()):
        super().__init__(message)
        self.problems = list(problems)


class WriteError(CheckpointError):
    """A checkpoint was not written: the plan had problems, the output exists, or the write
    failed. Nothing is left under the output's name and the inputs are unchanged."""


class CheckpointWarning(UserWarning):
    """Something was opened other than what was named, and why: e.g. a folder's ``checkpoint``
    file names another machine's paths and the checkpoint of the same name here was opened."""
