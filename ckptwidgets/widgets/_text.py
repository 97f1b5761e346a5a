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

__all__ = [
    "show_png",
    "LabelStyle",
    "label_style",
    "text_label",
    "message_label",
    "set_message",
    "pre_html",
    "path_html",
    "PlainTextRepr",
    "download_link",
    "stylesheet",
    "STYLESHEET",
    "RELOAD_HINT",
    "reload_hint",
    "ReloadHint",
    "NO_MATH",
    "MESSAGE_COLORS",
    "CSS_CLASSES",
]

#: DOM classes that make MathJax (3 and 2) leave an element's text alone.
NO_MATH = ("mathjax_ignore", "tex2jax_ignore")

#: Stable DOM classes for styling and for finding the widgets' parts in a page.
CSS_CLASSES = {
    "mapper": "ckptwidgets-mapper",
    "browser": "ckptwidgets-browser",
    "ema": "ckptwidgets-ema",
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


#: CSS for every ckptwidgets widget, sent once per widget in a hidden ``HTML`` (a ``<style>``
#: applies wherever it sits in the page: JupyterLab, Notebook 7, VS Code, Colab).
#: ipywidgets' ``Label`` is one line that cuts its text and renders no ``tooltip``
#: (only a description's); here labels inside our widgets wrap instead, so names, keys,
#: shapes with dtype and messages are shown whole (broken at spaces; keys in tables after a
#: '/', see :func:`path_html`; a message, a block, breaks a word only when it cannot fit a
#: line: never a shape inside its number); tables scroll sideways inside the widget
#: when their columns cannot fit (900 px with JupyterLab's side panel open).
STYLESHEET = """
.ckptwidgets-root div.widget-label { white-space: normal; word-break: normal; overflow-wrap: anywhere; height: auto;
  min-height: var(--jp-widgets-inline-height, 28px); line-height: 1.35; padding-top: 4px; padding-bottom: 4px; }
.ckptwidgets-root .ckptwidgets-message { white-space: pre-wrap; max-width: 100%; display: block;
  overflow-wrap: break-word; }
.ckptwidgets-root .ckptwidgets-table .widget-html-content { font-family: monospace; line-height: 1.35;
  overflow-wrap: anywhere; }
.ckptwidgets-root .ckptwidgets-table { max-width: 100%; overflow-x: auto; }
.ckptwidgets-root .ckptwidgets-table .widget-gridbox { min-width: min-content; }
.ckptwidgets-root .ckptwidgets-table .widget-gridbox > div.widget-label { padding-right: 0.4em; }
.ckptwidgets-root .ckptwidgets-selected { background: #fff3c4; outline: 1px solid #e0b400; }
.ckptwidgets-root .ckptwidgets-stale { opacity: 0.45; }
.ckptwidgets-root select:focus, .ckptwidgets-root button:focus-visible, .ckptwidgets-root input:focus
  { outline: 2px solid #1a73e8; outline-offset: 1px; }
.ckptwidgets-root .widget-toggle-button.mod-active { background: #1b5e20; color: white; }
.ckptwidgets-root .widget-html-content { white-space: normal; word-break: normal; overflow-wrap: break-word; }
.ckptwidgets-root a.ckptwidgets-download { color: var(--jp-content-link-color, #1a73e8); text-decoration: underline; }
.ckptwidgets-root .widget-button { min-width: max-content; }
"""

#: What a reader sees where a widget cannot be drawn any more (the kernel restarted or the
#: page was reloaded: the widget's model lived in the old kernel).
RELOAD_HINT = "This widget lived in a kernel that has restarted (or the page was reloaded): run this cell again."


#: Printed text (the checks' one line) wraps between words in the notebooks that show the setup
#: cell's :func:`reload_hint`: JupyterLab's ``word-break: break-all`` for output ``<pre>`` would
#: break a shape inside a number (``[1`` / ``280, 5]``).
STDOUT_CSS = (
    " .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stdout'] pre "
    "{ word-break: normal; overflow-wrap: break-word; }"
)

#: Shown after each "Error displaying widget: model not found" of a JupyterLab / Notebook 7
#: page (the widget's output holds only that text), by the CSS of :func:`reload_hint`.
_RELOAD_CSS = (
    ".jp-OutputArea-output.jupyter-widgets:not(:has(*))::after { content: '%s'; display: block; "
    "color: #8a5300; font-weight: bold; white-space: normal; }" % RELOAD_HINT.replace("'", "\\'")
) + STDOUT_CSS


class ReloadHint:
    """The setup cell's one line about reloads; ``reload_hint()`` makes one.

    Its ``text/html`` (kept in the saved notebook, unlike widget state) says what to do when
    a widget shows "Error displaying widget: model not found", and carries CSS that puts the
    same sentence under each such error in JupyterLab and Notebook 7 (a trusted notebook
    keeps the ``<style>``; otherwise the line itself remains).
    """

    text = ("ckptwidgets: if a widget below is missing or says \"model not found\", the kernel restarted "
            "or the page was reloaded: run its cell again (or Run All).")

    def _repr_html_(self) -> str:
        return (f'<style>{_RELOAD_CSS}</style><div class="ckptwidgets-reload-hint" '
                f'style="color:#555;font-size:12px">{html.escape(self.text)}</div>')

    def __repr__(self) -> str:
        return self.text


def reload_hint() -> ReloadHint:
    """Show as the last expression of a notebook's setup cell: see :class:`ReloadHint`.

    Examples
    --------
    >>> print(repr(reload_hint()))  # doctest: +ELLIPSIS
    ckptwidgets: if a widget below is missing or says "model not found", ... run its cell again (or Run All).
    """
    return ReloadHint()


def stylesheet() -> widgets.HTML:
    """A hidden ``HTML`` holding :data:`STYLESHEET` (add it to a widget with class ``ckptwidgets-root``)."""
    return widgets.HTML(f"<style>{STYLESHEET}</style>", layout=widgets.Layout(display="none"))


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


class PlainTextRepr:
    """Mixin for a widget whose ``text/plain`` is its whole ``repr`` (put it before the box class).

    ipywidgets cuts ``text/plain`` at 110 characters; where widgets cannot render
    (nbconvert, a terminal, a closed kernel) the text summary is all a reader sees.
    """

    def _repr_mimebundle_(self, **kwargs):
        data = super()._repr_mimebundle_(**kwargs)
        if data is not None:
            data["text/plain"] = repr(self)
        return data
