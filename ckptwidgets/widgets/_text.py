"""Widgets that show untrusted text (checkpoint keys, variable names, messages) as text.

Keys and names come from files: ``<img src=x onerror=alert(1)>`` is a valid key. The
helpers here only use widgets that render text (``Label``, ``Dropdown`` options,
``Text``); the one ``HTML`` use, :func:`pre_html`, escapes everything first.

Labels are also run through the notebook's LaTeX typesetter (MathJax), which would turn
a key like ``loss$a$`` into math; the ``mathjax_ignore`` / ``tex2jax_ignore`` classes
(MathJax 3 / 2) make it skip them, so the text shows exactly as stored.
"""
from __future__ import annotations

import base64
import html

import ipywidgets as widgets
# Not re-exported at the top of ipywidgets 8, but public in its module.
from ipywidgets.widgets.widget_string import LabelStyle

from . import WIDGETS

__all__ = [
    "show_png",
    "LabelStyle",
    "label_style",
    "text_label",
    "message_label",
    "set_message",
    "pre_html",
    "path_html",
    "download_link",
    "NO_MATH",
    "MESSAGE_COLORS",
    "CSS_CLASSES",
]

#: DOM classes that make MathJax (3 and 2) leave an element's text alone.
NO_MATH = ("mathjax_ignore", "tex2jax_ignore")

#: DOM names published before the registry (pages and user CSS select ``ckptwidgets-ema``).
_DOM_NAMES = {"ema_explorer": "ema"}

#: Stable DOM classes for styling and for finding the widgets' parts in a page: each widget's
#: root, keyed by its module in :data:`~ckptwidgets.widgets.WIDGETS` (``ckptwidgets-<module>``),
#: then the parts.
CSS_CLASSES = {
    **{module: f"ckptwidgets-{_DOM_NAMES.get(module, module)}" for module in WIDGETS.values()},
    "table": "ckptwidgets-table",
    "report": "ckptwidgets-report",
    "message": "ckptwidgets-message",
    "root": "ckptwidgets-root",
    "selected": "ckptwidgets-selected",
    "stale": "ckptwidgets-stale",
}

MESSAGE_COLORS = {"error": "#b00020", "warning": "#8a5300", "info": "#1b5e20", "": None}


def label_style(**traits) -> LabelStyle:
    """A ``LabelStyle`` to share between labels, e.g. ``label_style(font_weight="bold")``."""
    return LabelStyle(**traits)


def text_label(value: str = "", *, layout=None, style=None, tooltip=None) -> widgets.Label:
    """A ``Label`` showing ``value`` verbatim: no HTML, no math typesetting.

    ``layout`` and ``style`` may be shared between many labels (one model each in the
    browser instead of one per label), which keeps big tables' state small.

    Examples
    --------
    >>> text_label("<img src=x onerror=alert(1)>").value
    '<img src=x onerror=alert(1)>'
    """
    kwargs = {}
    if layout is not None:
        kwargs["layout"] = layout
    if style is not None:
        kwargs["style"] = style
    label = widgets.Label(value=value, tooltip=tooltip, _dom_classes=NO_MATH, **kwargs)
    return label


def message_label() -> widgets.Label:
    """A Label for user-facing messages (errors in red), empty and collapsed until used."""
    label = text_label("", layout=widgets.Layout(display="none", width="auto"))
    label.style.font_weight = "bold"
    label.add_class(CSS_CLASSES["message"])
    return label


def set_message(label: widgets.Label, text: str, kind: str = "error") -> None:
    """Show ``text`` in a :func:`message_label` (``kind``: error, warning, info); '' hides it.

    The full text also goes to the tooltip: a Label shows one line and may cut it.
    """
    if kind not in MESSAGE_COLORS:
        raise ValueError(f"kind must be one of {sorted(MESSAGE_COLORS)}, got {kind!r}")
    text = text or ""
    label.value = text
    label.tooltip = text or None
    label.style.text_color = MESSAGE_COLORS[kind] if text else None
    label.layout.display = None if text else "none"


def show_png(image: widgets.Image, png: bytes) -> None:
    """Show ``png`` in ``image``, or hide the image when there is none (no empty frame)."""
    if png:
        image.value = png
        image.layout.display = None
    else:
        image.layout.display = "none"


def pre_html(text: str, max_height: str | None = None) -> str:
    """``text`` as an escaped ``<pre>`` block for an ``HTML`` widget.

    MathJax skips ``<pre>`` too, so nothing in ``text`` is interpreted.

    Examples
    --------
    >>> pre_html("<img src=x onerror=alert(1)>")  # doctest: +ELLIPSIS
    '<pre ...>&lt;img src=x onerror=alert(1)&gt;</pre>'
    """
    style = "margin:0;font-size:12px;line-height:1.35;white-space:pre;overflow:auto"
    if max_height:
        style += f";max-height:{html.escape(max_height)}"
    return f'<pre class="{" ".join(NO_MATH)}" style="{style}">{html.escape(text)}</pre>'


def path_html(text: str) -> str:
    """``text`` escaped for an ``HTML`` widget, with a line-break opportunity after each ``/``.

    Browsers do not break a key such as ``teacher/block_1_depthwise/kernel`` at its slashes;
    ``<wbr>`` lets it wrap there (not inside a name) and is not copied with the text.

    Examples
    --------
    >>> path_html("a/<b>")
    '<span class="mathjax_ignore tex2jax_ignore">a/<wbr>&lt;b&gt;</span>'
    """
    inner = "/<wbr>".join(html.escape(part) for part in str(text).split("/"))
    return f'<span class="{" ".join(NO_MATH)}">{inner}</span>'


def download_link(text: str, filename: str, label: str, mime: str = "text/plain") -> str:
    """HTML of a link that downloads ``text`` as ``filename`` (a ``data:`` URI: no server, no JavaScript).

    ``filename`` and ``label`` are ours, escaped anyway; ``text`` is base64, so a hostile key
    inside it is only bytes of the file.

    Examples
    --------
    >>> download_link("x = 1", "restore.py", "Download")  # doctest: +ELLIPSIS
    '<a download="restore.py" href="data:text/plain;charset=utf-8;base64,eCA9IDE=" ...>Download</a>'
    """
    data = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return (f'<a download="{html.escape(filename)}" href="data:{mime};charset=utf-8;base64,{data}" '
            f'title="{html.escape(label)}: {html.escape(filename)}" class="ckptwidgets-download" '
            f'style="margin-right:1em">{html.escape(label)}</a>')
