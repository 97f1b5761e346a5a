"""The Jupyter widgets of ckptwidgets, each a thin view over a traitlets model.

- :class:`CheckpointBrowser` (model :class:`BrowserModel`): the entries of a checkpoint.
- :class:`VariableMapper` (model :class:`MapperModel`): which key goes into which variable.
- :class:`EMAExplorer` (model :class:`EMAModel`): how a shadow variable converges.
- :class:`CheckpointDiff` (model :class:`DiffModel`): two checkpoints compared key by key.

This is the only part of the package that imports ipywidgets.
"""
from .browser import BrowserModel, CheckpointBrowser
from .diff import CheckpointDiff, DiffModel
from .ema_explorer import EMAExplorer, EMAModel
from ._mapper_model import MapperModel
from .mapper import VariableMapper
from ._text import reload_hint

__all__ = ["CheckpointBrowser", "BrowserModel", "VariableMapper", "MapperModel", "EMAExplorer", "EMAModel",
           "CheckpointDiff", "DiffModel", "reload_hint"]
