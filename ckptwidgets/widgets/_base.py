"""What every widget is, and the view two of them share.

:class:`WidgetRoot` is the outermost box of each widget of :data:`~ckptwidgets.widgets.WIDGETS`:
its DOM classes (``ckptwidgets-root`` and the widget's own), the hidden stylesheet and
keyboard guard, the message line that follows its model, and its text form (the whole text
summary as ``text/plain``, where widgets cannot render). A widget builds its parts and hands
them to :meth:`WidgetRoot.show`; a model that could not open its input shows only its
message (:meth:`WidgetRoot.show_message_only`).

:class:`TableView` is "a paged table, a selection and a histogram": the rows of a
:class:`TableModel` in a :class:`~ckptwidgets.widgets._table.PagedTable`, the selected row
highlighted, the selection's texts (``model.details``) shown at once and its histogram
(``model.png``, drawn by one reused :class:`HistogramCanvas`) after. The browser and the diff
are two of them.

Also here: the stylesheet (:data:`STYLESHEET`) and :func:`reload_hint`, the setup cells' line
about widgets lost to a kernel restart.
"""
from __future__ import annotations

import html

import ipywidgets as widgets
import numpy as np
from traitlets import Bytes, HasTraits, Tuple, Unicode

from .. import plots
from .._text.filter import FILTER_SYNTAX, Filter, parse_filter
from ..errors import PlanError
from . import WIDGETS
from ._keyboard import keyboard_guard
from ._table import PagedTable
from ._text import CSS_CLASSES, label_style, message_label, set_message, show_png, text_label

__all__ = ["WidgetRoot", "widget_module", "message_line", "TableModel", "TableView", "HistogramCanvas", "plottable",
           "FILTER_PLACEHOLDER", "stylesheet", "STYLESHEET", "RELOAD_HINT", "STDOUT_CSS", "reload_hint", "ReloadHint"]


#: CSS for every ckptwidgets widget, sent once per widget in a hidden ``HTML`` (a ``<style>``
#: applies wherever it sits in the page: JupyterLab, Notebook 7, VS Code, Colab).
#: ipywidgets' ``Label`` is one line that cuts its text and renders no ``tooltip``
#: (only a description's); here labels inside our widgets wrap instead, so names, keys,
#: shapes with dtype and messages are shown whole (broken at spaces; keys in tables after a
#: '/', see :func:`~ckptwidgets.widgets._text.path_html`; a message, a block, breaks a word only when it cannot fit a
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

#: The filter box's placeholder (the filter language of :mod:`ckptwidgets._text.filter`).
FILTER_PLACEHOLDER = "filter keys: words, !word, kind:slot, !kind:slot"


def widget_module(cls) -> str:
    """The module in :data:`~ckptwidgets.widgets.WIDGETS` of a widget class (or of the widget it extends).

    Examples
    --------
    >>> from ckptwidgets.widgets.diff import CheckpointDiff
    >>> widget_module(type("MyDiff", (CheckpointDiff,), {}))
    'diff'
    """
    for klass in cls.__mro__:
        module = WIDGETS.get(klass.__name__)
        if module is not None and klass.__module__ == f"{__package__}.{module}":
            return module
    raise TypeError(f"{cls.__name__} is not a widget of ckptwidgets.widgets.WIDGETS; add it there: "
                    f"{{'{cls.__name__}': '<its module>'}}")


def message_line(model: HasTraits, trait: str = "error", kind_trait: str | None = None) -> widgets.Label:
    """A :func:`message_label` showing ``model.<trait>`` now and whenever it changes.

    Its kind (error, warning, info) is ``model.<kind_trait>``, or error without one.
    """
    label = message_label()

    def show(_change=None):
        set_message(label, getattr(model, trait), getattr(model, kind_trait) if kind_trait else "error")

    show()
    model.observe(show, trait)
    return label


class WidgetRoot(widgets.VBox):
    """The outermost box of a ckptwidgets widget (see the module docstring).

    Parameters
    ----------
    model : HasTraits
        The widget's model (``widget.model``); ``repr(widget)`` is its ``text_summary()``.
    message, message_kind : str
        The model's traits shown in ``widget.message``: the text, and its kind (error when None).
    **kwargs
        For the ``VBox`` (``layout``...).
    """

    def __init__(self, model, message: str = "error", message_kind: str | None = None, **kwargs):
        self.model = model
        self.message = message_line(model, message, message_kind)
        super().__init__(**kwargs)
        self.add_class(CSS_CLASSES[widget_module(type(self))])
        self.add_class(CSS_CLASSES["root"])

    def show(self, *parts: widgets.Widget) -> None:
        """Show ``parts`` (in order) under the stylesheet and the keyboard guard, both hidden."""
        self.children = (stylesheet(), keyboard_guard(), *parts)

    def show_message_only(self) -> None:
        """Show only the message: the model could not open what it was given, and says why."""
        self.children = (stylesheet(), self.message)

    def __repr__(self) -> str:
        return self.model.text_summary()

    def _repr_mimebundle_(self, **kwargs):
        # ipywidgets cuts text/plain at 110 characters; where widgets cannot render (nbconvert,
        # a terminal, a closed kernel) the text summary is all a reader sees.
        data = super()._repr_mimebundle_(**kwargs)
        if data is not None:
            data["text/plain"] = repr(self)
        return data


def plottable(values, finite=None):
    """What :func:`plots.histogram_figure` can draw of ``values`` (None stays None).

    ``finite`` is what :func:`~ckptwidgets._text.format.finite_values` gave for ``values``,
    when already computed: its float64 numbers are used as they are. Else numpy's numbers stay
    as they are; bfloat16, float8, int4 and quantized ones become float64 (a strided sample of
    big ones).

    Examples
    --------
    >>> plottable(np.array([1, 2], dtype=np.int8)).dtype
    dtype('int8')
    """
    if values is None:
        return None
    if finite is not None and finite[0] is not None:
        return finite[0]
    values = np.asarray(values)
    if values.dtype.kind in "biufcOSU":
        return values
    flat = values.reshape(-1)
    if flat.size > plots.HISTOGRAM_SAMPLE:
        flat = flat[:: -(-flat.size // plots.HISTOGRAM_SAMPLE)]
    if flat.dtype.names:
        flat = flat[flat.dtype.names[0]]
    return flat.astype(np.float64)


class HistogramCanvas:
    """One histogram figure, drawn again from data for every selection.

    :func:`ckptwidgets.plots.histogram_figure` builds the figure on the first call and
    :func:`ckptwidgets.plots.update_histogram_figure` moves its artists' data afterwards:
    a selection costs one Agg drawing and a PNG encoding, no new figure.

    Parameters
    ----------
    figsize : tuple
    labels : dict, optional
        The legend's names for the two tensors instead of raw and EMA shadow:
        ``{"raw": "a", "shadow": "b"}``.

    Attributes
    ----------
    figure : matplotlib.figure.Figure or None
        None until the first drawing.
    drawings : int
        How many PNGs were drawn (tests count them).
    """

    def __init__(self, figsize=plots.FIGSIZE, labels: dict | None = None):
        self.figure = None
        self.drawings = 0
        self.figsize = figsize
        self.labels = labels

    def png(self, values, other=None, title: str = "") -> bytes:
        """PNG bytes of the histogram of ``values`` with ``other`` overlaid (either may be None)."""
        if values is None:
            values, other = other, None
        if self.figure is None:
            self.figure = plots.histogram_figure(values, other, title=title, figsize=self.figsize)
            if self.labels:
                for patch in self.figure.axes[0].patches:
                    patch.set_label(self.labels.get(patch.get_gid(), patch.get_label()))
                legend = self.figure.axes[0].get_legend()
                if legend is not None:
                    legend.remove()  # built again from the new labels
                plots.update_histogram_figure(self.figure, values, other, title=title)
        else:
            plots.update_histogram_figure(self.figure, values, other, title=title)
        self.drawings += 1
        return plots.figure_to_png(self.figure)


class TableModel(HasTraits):
    """What the models of a :class:`TableView` share (rows each with a ``key``).

    A subclass keeps its rows in a tuple trait (``rows``, or the view's ``rows_trait``), gives
    ``row_texts(row)`` and ``row_tooltips(row)`` (the cells, and their tooltips with the select
    button's), sets ``details`` then ``png`` for a selection, and ``text_summary()``.
    """

    filter_text = Unicode(
        "", help="The filter (ckptwidgets._text.filter): words every shown key contains (case-insensitive), "
        "!word to exclude, kind:slot to keep a kind, !kind:slot to hide it, \"quoted words\"."
    )
    filter_error = Unicode("", read_only=True, help="Why filter_text was not applied ('' when it was).")
    selected = Unicode(None, allow_none=True, help="Key of the selected row, or None.")
    details = Tuple(read_only=True, help="Texts of the selection, () for none; set before `png`, so a view "
                    "shows the numbers before the histogram is drawn.")
    png = Bytes(b"", read_only=True, help="PNG histogram of the selection, set last.")
    error = Unicode("", help="A message for the user, '' when all is well.")

    def __init__(self, canvas: HistogramCanvas, **kwargs):
        self._filter = Filter()  # the last filter that parsed: kept while the box holds a bad one
        self.canvas = canvas
        super().__init__(**kwargs)

    def _parse_filter(self) -> Filter:
        """The filter of ``filter_text``; while it does not parse (typing "kind:s" on the way to
        "kind:slot"), ``filter_error`` says why and the last one that did is kept."""
        try:
            self._filter = parse_filter(self.filter_text)
        except PlanError as error:
            self.set_trait("filter_error", str(error))
        else:
            self.set_trait("filter_error", "")
        return self._filter

    def _clear_details(self) -> None:
        self.set_trait("details", ())
        self.set_trait("png", b"")

    def is_selected(self, row) -> bool:
        """Whether ``row`` is the selected one."""
        return row.key == self.selected

    def select(self, key: str | None) -> None:
        """Select the row of ``key`` (None clears the selection)."""
        self.selected = key


class TableView(WidgetRoot):
    """A :class:`WidgetRoot` over a :class:`TableModel`: its paged table (``self.table``, a
    select button first in each row), the selected row highlighted, and the details
    (``self.details_labels``, then ``self.histogram``); see the module docstring.

    A subclass calls :meth:`make_filter_box`, :meth:`make_table` and :meth:`make_details`,
    lays them out with :meth:`show`, and then :meth:`follow_model`.
    """

    #: The model's trait holding the rows shown.
    rows_trait = "rows"

    def make_filter_box(self, **layout) -> widgets.Text:
        """``self.filter_box``, linked to ``model.filter_text``, and ``self.filter_message``, which
        shows ``model.filter_error``."""
        self.filter_box = widgets.Text(value=self.model.filter_text, placeholder=FILTER_PLACEHOLDER,
                                       tooltip=f"Filter: {FILTER_SYNTAX}", layout=widgets.Layout(**layout))
        widgets.link((self.filter_box, "value"), (self.model, "filter_text"))
        self.filter_message = message_line(self.model, "filter_error")
        return self.filter_box

    def make_table(self, columns, page_size: int) -> PagedTable:
        """``self.table``: the rows of the model, ``page_size`` a page; a row's button selects it."""
        self.table = PagedTable(columns, page_size=page_size)
        self.table.on_button(self._row_clicked)
        self.table.observe(lambda _c: self._fill_page(), "page")
        return self.table

    def make_details(self, names, tooltips=(), histogram_layout=None) -> list[widgets.Label]:
        """One label per text of ``model.details``, each the attribute ``names[i]`` (the first
        bold; the texts at ``tooltips`` also go to their label's tooltip), and ``self.histogram``."""
        labels = [text_label("", style=label_style(font_weight="bold"))] + [text_label("") for _ in names[1:]]
        for name, label in zip(names, labels):
            setattr(self, name, label)
        self.details_labels = labels
        self._tooltip_details = frozenset(tooltips)
        self.histogram = widgets.Image(format="png", layout=histogram_layout or widgets.Layout(display="none"))
        return labels

    def follow_model(self) -> None:
        """Show the model's rows now, and its rows, selection and histogram as they change."""
        model = self.model
        model.observe(self._on_rows, self.rows_trait)
        model.observe(self._show_details, "details")
        model.observe(lambda c: show_png(self.histogram, c.new), "png")
        self._on_rows()

    def _rows(self) -> tuple:
        return getattr(self.model, self.rows_trait)

    def _on_rows(self, change=None):
        self.table.page = 0
        self.table.set_page_count(len(self._rows()))
        self._fill_page()

    def _fill_page(self):
        rows = self._rows()[self.table.page_slice()]
        selected = None
        for index in range(self.table.page_size):
            if index < len(rows):
                row = rows[index]
                tooltips, button_tooltip = self.model.row_tooltips(row)
                self.table.set_row(index, self.model.row_texts(row), tooltips=tooltips, button_tooltip=button_tooltip)
                if self.model.is_selected(row):
                    selected = index
            else:
                self.table.clear_row(index)
        self.table.highlight(selected)

    def _show_details(self, change):
        self._fill_page()  # the highlight follows the selection
        texts = change.new or ("",) * len(self.details_labels)
        for index, (label, text) in enumerate(zip(self.details_labels, texts)):
            label.value = text
            if index in self._tooltip_details:
                label.tooltip = text or None
        if not change.new:
            self.histogram.layout.display = "none"

    def _row_clicked(self, index: int):
        rows = self._rows()[self.table.page_slice()]
        if index < len(rows):
            self.model.selected = rows[index].key
