"""CheckpointDiff: two checkpoints side by side, key by key (a view over :func:`diff_checkpoints`).

:class:`DiffModel` holds the state (which rows, in which order, the selected one, its numbers
and histograms) and works without a browser; :class:`CheckpointDiff` is the view over it: a
status filter, a sort, a filter box, a paged table and the selected row's details.

Example
-------
>>> from ckptwidgets.widgets import CheckpointDiff
>>> diff = CheckpointDiff("run/model.ckpt-1000", "run/model.ckpt-2000")   # doctest: +SKIP
>>> diff.model.status_filter = "renamed"                                  # doctest: +SKIP
>>> diff.model.selected = "dense/kernel"                                  # doctest: +SKIP
>>> diff.model.details                                                    # doctest: +SKIP
('changed: dense/kernel', 'a: [4, 3] float32: min ...', 'b: ...', 'max |a - b| ...')
"""
from __future__ import annotations

import ipywidgets as widgets
from traitlets import Instance, TraitError, Tuple, Unicode, observe, validate

from .._text.format import format_shape, tensor_stats, text_table
from ..diff import SORTS, STATUS_LABELS, CheckpointDiff as Diff, DiffRow, diff_checkpoints, show_key
from ..errors import CheckpointError, PlanError
from ._base import HistogramCanvas, TableModel, TableView, plottable
from ._table import Column, PAGE_SIZE
from ._text import CSS_CLASSES, label_style, text_label

__all__ = ["DiffModel", "CheckpointDiff", "STATUS_FILTERS", "CSS_CLASS"]

#: ``{filter: (its label, the statuses it shows)}``, in the order of the status dropdown.
STATUS_FILTERS = {
    "all": ("all", None),
    "changed": ("changed", ("changed", "shape_changed", "dtype_changed")),
    "renamed": ("renamed", ("renamed",)),
    "only": ("only in one", ("only_a", "only_b")),
    "identical": ("identical", ("identical",)),
}
SORT_LABELS = {"change": "most changed first", "key": "by key", "status": "by status"}
#: The DOM class of the widget.
CSS_CLASS = CSS_CLASSES["diff"]


class DiffModel(TableModel):
    """State and logic of :class:`CheckpointDiff`, usable without any widget.

    Parameters
    ----------
    a, b : Checkpoint or str or os.PathLike or Source
        Anything :func:`ckptwidgets.open_checkpoint` takes. When either cannot be opened
        (or read), the model has ``diff=None`` and the reason in ``error``.
    rtol, atol : float
        Tolerances of likely renames (:func:`ckptwidgets.diff.diff_checkpoints`).

    Examples
    --------
    >>> import numpy as np
    >>> from ckptwidgets.sources.arrays import ArraySource
    >>> model = DiffModel(ArraySource({"w": np.zeros(2), "b": np.ones(2)}),
    ...                   ArraySource({"w": np.ones(2), "b": np.ones(2)}))
    >>> [row.key for row in model.rows], model.counts_text()
    (['w', 'b'], '1 changed · 1 identical')
    >>> model.status_filter = "identical"; [row.key for row in model.rows]
    ['b']
    """

    diff = Instance(Diff, allow_none=True, read_only=True,
                    help="The diff shown (ckptwidgets.diff.CheckpointDiff); None if a checkpoint could not be read.")
    status_filter = Unicode("all", help="Rows shown by status: 'all', 'changed' (values, shape or dtype), "
                            "'renamed', 'only' (a key in one checkpoint) or 'identical'.")
    sort = Unicode("change", help="Order of the rows: 'change' (most changed first), 'key' or 'status'.")
    filter_text = Unicode("", help="The filter language of the browser on the rows' keys (a renamed row is kept "
                          "when either key passes): words, !word, kind:slot, !kind:slot, \"quoted words\".")
    rows = Tuple(read_only=True, help="The rows shown (DiffRow), filtered and sorted.")
    selected = Unicode(None, allow_none=True, help="Key of the selected row (its key in a, or in b for a key only "
                       "in b), or None.")
    row = Instance(DiffRow, allow_none=True, read_only=True, help="The selected row.")
    details = Tuple(read_only=True, help="(title, a, b, numbers) texts of the selection, () for none; set before "
                    "`png`, so a view shows the numbers before the histogram is drawn.")

    def __init__(self, a, b, rtol: float = 1e-6, atol: float = 0.0, **kwargs):
        super().__init__(HistogramCanvas(labels={"raw": "a", "shadow": "b"}), **kwargs)
        try:
            found = diff_checkpoints(a, b, rtol=rtol, atol=atol)
        except PlanError:
            raise  # bad tolerances: the caller's mistake, not the files'
        except CheckpointError as error:
            self.error = str(error)
            return
        self.set_trait("diff", found)
        self._refilter()

    # --- rows ----------------------------------------------------------------------------
    @validate("status_filter")
    def _valid_status_filter(self, proposal):
        if proposal.value not in STATUS_FILTERS:
            raise TraitError(f"Unknown status filter {proposal.value!r}; filters are {', '.join(STATUS_FILTERS)}.")
        return proposal.value

    @validate("sort")
    def _valid_sort(self, proposal):
        if proposal.value not in SORTS:
            raise TraitError(f"Unknown sort {proposal.value!r}; sorts are {', '.join(SORTS)}.")
        return proposal.value

    @observe("status_filter", "sort", "filter_text")
    def _refilter(self, change=None):
        if self.diff is None:
            return
        keep = self._parse_filter()
        rows = self.diff.to_rows(self.sort, STATUS_FILTERS[self.status_filter][1])
        if not keep.empty:
            rows = tuple(r for r in rows if any(k is not None and keep.keeps_key(k, r.kind) for k in (r.key_a, r.key_b)))
        self.set_trait("rows", rows)

    def status_options(self) -> list[tuple[str, str]]:
        """``(label, filter)`` for the status dropdown, with counts: ``("changed (3)", "changed")``."""
        counts = self.diff.counts if self.diff is not None else {}
        options = []
        for name, (label, statuses) in STATUS_FILTERS.items():
            count = sum(counts.values()) if statuses is None else sum(counts.get(s, 0) for s in statuses)
            options.append((f"{label} ({count:,})", name))
        return options

    def is_selected(self, row) -> bool:
        """Whether ``row`` (a DiffRow of ``rows``) is the selected one (its key in a, or in b)."""
        return self.row is not None and (row.key_a, row.key_b) == (self.row.key_a, self.row.key_b)

    @staticmethod
    def sort_options() -> list[tuple[str, str]]:
        """``(label, sort)`` for the sort dropdown."""
        return [(SORT_LABELS[s], s) for s in SORTS]

    # --- texts ---------------------------------------------------------------------------
    def title_text(self) -> str:
        """Both checkpoints, a first: ``"a: run/model.ckpt-1 (12 entries)  ·  b: ..."``."""
        a, b = self.diff.a, self.diff.b
        return f"a: {a.prefix} ({len(a):,} entries)  ·  b: {b.prefix} ({len(b):,} entries)"

    def counts_text(self) -> str:
        """The counts line: ``"3 changed · 1 renamed · 2 identical"``."""
        return self.diff.counts_text() if self.diff is not None else ""

    @staticmethod
    def row_texts(row: DiffRow) -> list[str]:
        """The table cells of one row: status, key in a, key in b, shape, dtype, max |a-b|, relative change."""
        status, _key, shape, dtype, largest, relative = Diff.row_texts(row)
        return [STATUS_LABELS[status], show_key(row.key_a), show_key(row.key_b), shape, dtype, largest, relative]

    @staticmethod
    def row_tooltips(row: DiffRow) -> tuple[list, str]:
        """Tooltips of a row's cells (the full keys and numbers) and of its select button."""
        numbers = [None if x is None else repr(x) for x in (row.max_abs, row.rel_change)]
        return [None, row.key_a, row.key_b, None, None, *numbers], f"Compare {show_key(row.key)}"

    # --- selection -----------------------------------------------------------------------
    def _clear_selection(self) -> None:
        self.set_trait("row", None)
        self._clear_details()

    @observe("selected")
    def _on_selection(self, change):
        if change.new is None or self.diff is None:
            self._clear_selection()
            return
        row = self.diff.find(change.new)
        if row is None:
            self._clear_selection()
            self.error = f"No row of key {change.new!r} in this diff."
            return
        try:
            values_a = self.diff.a.read(row.key_a) if row.key_a is not None else None
            values_b = self.diff.b.read(row.key_b) if row.key_b is not None else None
        except CheckpointError as error:
            self._clear_selection()
            self.error = str(error)
            return
        self.error = ""
        self.set_trait("row", row)
        # The numbers first: a view shows them while the histogram is drawn.
        self.set_trait("details", (self._title(row), self._side("a", row.key_a, values_a, row),
                                   self._side("b", row.key_b, values_b, row), self.numbers_text(row)))
        title = show_key(row.key) if row.status != "renamed" else f"{show_key(row.key_a)} -> {show_key(row.key_b)}"
        self.set_trait("png", self.canvas.png(
            plottable(values_a), plottable(values_b), title=title,
        ))

    @staticmethod
    def _title(row: DiffRow) -> str:
        return f"{STATUS_LABELS[row.status]}: " + Diff.row_texts(row)[1]

    @staticmethod
    def _side(side: str, key, values, row: DiffRow) -> str:
        if key is None:
            return f"{side}: not in this checkpoint"
        shape, dtype = (row.shape_a, row.dtype_a) if side == "a" else (row.shape_b, row.dtype_b)
        return f"{side} {show_key(key)!s}: {format_shape(shape)} {dtype}: {tensor_stats(values)}"

    @staticmethod
    def numbers_text(row: DiffRow) -> str:
        """The row's comparison in words: ``max |a - b|``, relative change, identical or not."""
        if row.status in ("only_a", "only_b"):
            return f"only in {row.status[-1]}: nothing to compare"
        if row.status in ("shape_changed", "dtype_changed"):
            what = "shapes" if row.status == "shape_changed" else "dtypes"
            return f"{what} differ: values not compared"
        same = "identical (same bytes)" if row.identical else "not identical"
        if row.max_abs is None:
            return same
        return f"max |a - b| {row.max_abs:.6g} · relative change {row.rel_change:.6g} (||a - b|| / ||a||) · {same}"

    # --- text ----------------------------------------------------------------------------
    def text_summary(self, rows: int = 10) -> str:
        """A plain-text view: both checkpoints, the counts and the first ``rows`` rows shown."""
        if self.diff is None:
            return f"CheckpointDiff: {self.error}"
        lines = [f"CheckpointDiff {self.title_text()}", self.counts_text()]
        if self.status_filter != "all" or self.filter_text:
            lines.append(f"showing {STATUS_FILTERS[self.status_filter][0]}, filter {self.filter_text!r}: "
                         f"{len(self.rows):,} rows")
        if self.filter_error:
            lines.append(self.filter_error)
        lines.append(text_table(["status", "key", "shape", "dtype", "max |a-b|", "rel. change"],
                                [Diff.row_texts(r) for r in self.rows[:rows]], max_widths=[0, 70, 24, 0, 0, 0]))
        if len(self.rows) > rows:
            lines.append(f"... {len(self.rows) - rows:,} more")
        if self.row is not None and self.details:
            lines.extend([f"selected {self.details[0]}", *self.details[1:]])
        return "\n".join(lines)


class CheckpointDiff(TableView):
    """Two checkpoints compared key by key: a paged table, filters, and the selected row's histograms.

    Parameters
    ----------
    a, b : Checkpoint or str or os.PathLike or Source
        The two checkpoints (``a`` is the reference of relative changes). If either cannot
        be opened the widget shows why (no traceback).
    page_size : int
        Rows per page; the number of widgets does not depend on the checkpoints' size.
    rtol, atol : float
        Tolerances of likely renames.

    Attributes
    ----------
    model : DiffModel
        Drive it from code: ``diff.model.status_filter = "renamed"``, ``diff.model.sort = "key"``,
        ``diff.model.selected = key``.

    Examples
    --------
    >>> diff = CheckpointDiff("model.ckpt-1", "model.ckpt-5")        # doctest: +SKIP
    >>> diff                                                         # doctest: +SKIP
    CheckpointDiff a: model.ckpt-1 (12 entries)  ·  b: model.ckpt-5 (12 entries)
    12 changed
    ...
    """

    def __init__(self, a, b, page_size: int = PAGE_SIZE, rtol: float = 1e-6, atol: float = 0.0, **kwargs):
        super().__init__(DiffModel(a, b, rtol=rtol, atol=atol), **kwargs)
        model = self.model
        if model.diff is None:
            self.show_message_only()
            return
        self.title = text_label(model.title_text(), style=label_style(font_weight="bold"))
        self.counts = text_label(model.counts_text())
        # The description at its own width: the options' whole text fits ("most changed first").
        self.status_box = widgets.Dropdown(options=model.status_options(), value=model.status_filter,
                                           description="show", style={"description_width": "initial"},
                                           layout=widgets.Layout(width="auto", max_width="100%"))
        self.sort_box = widgets.Dropdown(options=model.sort_options(), value=model.sort, description="sort",
                                         style={"description_width": "initial"},
                                         layout=widgets.Layout(width="auto", max_width="100%"))
        widgets.link((self.status_box, "value"), (model, "status_filter"))
        widgets.link((self.sort_box, "value"), (model, "sort"))
        self.make_filter_box(width="24em")
        self.make_table(
            [Column("", "2.6em", "button"), Column("status", "7.5em"), Column("key in a", "minmax(10em, 3fr)", "path"),
             Column("key in b", "minmax(10em, 3fr)", "path"), Column("shape", "minmax(5em, 1fr)"), Column("dtype", "6em"),
             Column("max |a-b|", "6em"), Column("rel. change", "6em")],
            page_size,
        )
        # (title, a, b, numbers): each side's statistics whole in its tooltip.
        self.make_details(["selected_label", "a_label", "b_label", "numbers_label"], tooltips=[1, 2],
                          histogram_layout=widgets.Layout(max_width="540px", display="none"))
        self.details = widgets.VBox([*self.details_labels, self.histogram])
        self.controls = widgets.HBox([self.status_box, self.sort_box, self.filter_box],
                                     layout=widgets.Layout(flex_flow="row wrap", align_items="center"))
        self.show(self.title, self.counts, self.controls, self.filter_message, self.table, self.message, self.details)
        self.follow_model()
