"""The Jupyter widgets of ckptwidgets, each a thin view over a traitlets model.

- :class:`CheckpointBrowser` (model :class:`BrowserModel`): the entries of a checkpoint.
- :class:`VariableMapper` (model :class:`MapperModel`): which key goes into which variable.
- :class:`EMAExplorer` (model :class:`EMAModel`): how a shadow variable converges.
- :class:`CheckpointDiff` (model :class:`DiffModel`): two checkpoints compared key by key.

:data:`WIDGETS` is the one list of them. This is the only part of the package that imports
ipywidgets, and only when a widget (or a name below) is first used: importing the package
itself is free, so ``ckptwidgets`` reads :data:`WIDGETS` for its own lazy names.

Example
-------
>>> from ckptwidgets.widgets import WIDGETS
>>> WIDGETS["CheckpointDiff"]
'diff'
"""
from importlib import import_module as _import_module

#: Every widget: its public class name -> the module of this package that defines it (and its
#: model). ``ckptwidgets.<name>``, ``ckptwidgets.widgets.<name>``, the widget's DOM class
#: (``widgets._text.CSS_CLASSES``) and the browser tests' list of widgets come from here: a
#: new widget is its module (its root a ``widgets._base.WidgetRoot``) plus one line here.
WIDGETS = {
    "CheckpointBrowser": "browser",
    "VariableMapper": "mapper",
    "EMAExplorer": "ema_explorer",
    "CheckpointDiff": "diff",
}

# The models and helpers of the first widgets, importable from here as before.
_SHARED = {
    "BrowserModel": "browser",
    "MapperModel": "_mapper_model",
    "EMAModel": "ema_explorer",
    "DiffModel": "diff",
    "reload_hint": "_base",
}

__all__ = ["WIDGETS", *WIDGETS, *_SHARED]


def __getattr__(name):
    module = WIDGETS.get(name) or _SHARED.get(name)
    if module is None:
        raise AttributeError(f"module 'ckptwidgets.widgets' has no attribute {name!r}")
    value = getattr(_import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
