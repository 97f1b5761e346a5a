"""Test helpers for the widgets: what a cell shows a person."""
from __future__ import annotations

import html
import re


def shown(cell) -> str:
    """The text a cell shows (a key cell is HTML: the key with ``<wbr>`` after each '/')."""
    return html.unescape(re.sub(r"<[^>]*>", "", cell.value))
