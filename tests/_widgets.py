"""Test helpers for the widgets: what a cell shows a person, and how big a widget tree is
(how many widgets, how much state, the longest option list: a widget's size must not grow
with the checkpoint).

Example
-------
>>> import ipywidgets as widgets
>>> box = widgets.VBox([widgets.Label("a"), widgets.Dropdown(options=["x", "y"])])
>>> count_children(box), max_options(box)
(2, 2)
"""
from __future__ import annotations

import html
import json
import re

import ipywidgets as widgets


def shown(cell) -> str:
    """The text a cell shows (a key cell is HTML: the key with ``<wbr>`` after each '/')."""
    return html.unescape(re.sub(r"<[^>]*>", "", cell.value))


def _widget_values(widget):
    for name in widget.keys:
        value = getattr(widget, name, None)
        if isinstance(value, widgets.Widget):
            yield value
        elif isinstance(value, (list, tuple)):
            yield from (v for v in value if isinstance(v, widgets.Widget))


def iter_models(root):
    """Every widget model reachable from ``root`` (children, layouts, styles), each once."""
    seen, stack = set(), [root]
    while stack:
        widget = stack.pop()
        if id(widget) in seen:
            continue
        seen.add(id(widget))
        yield widget
        stack.extend(_widget_values(widget))


def iter_children(root):
    """The widgets shown under ``root`` (following ``children`` of boxes), not ``root`` itself."""
    stack = list(getattr(root, "children", ()))
    while stack:
        widget = stack.pop()
        yield widget
        stack.extend(getattr(widget, "children", ()))


def count_children(root) -> int:
    """Number of widgets displayed under ``root``."""
    return sum(1 for _ in iter_children(root))


def state_size(root) -> int:
    """Bytes of JSON state plus binary buffers sent to open every model under ``root``."""
    total = 0
    for widget in iter_models(root):
        state = widget.get_state()
        for name, value in list(state.items()):
            if isinstance(value, (bytes, bytearray, memoryview)):
                total += len(value)
                state[name] = None
        total += len(json.dumps(state, default=str))
    return total


def max_options(root) -> int:
    """The most options any selection widget (Dropdown, Select, Combobox...) under ``root`` has."""
    most = 0
    for widget in iter_models(root):
        options = getattr(widget, "options", None)
        if isinstance(widget, (widgets.widgets.widget_selection._Selection, widgets.Combobox)) and options is not None:
            most = max(most, len(options))
    return most
