"""CheckpointBrowser: a filterable, paginated table of a checkpoint's entries.

:class:`BrowserModel` holds the state (filter, kinds, selection, statistics) and works
without a browser; :class:`CheckpointBrowser` is the view over it.

Example
-------
>>> from ckptwidgets import CheckpointBrowser
>>> browser = CheckpointBrowser("moving_average.ckpt")        # doctest: +SKIP
>>> browser.model.filter_text = "v2"                          # doctest: +SKIP
>>> browser.model.selected = "v2"                             # doctest: +SKIP
>>> print(browser.model.comparison)                           # doctest: +SKIP
EMA shadow 'v2/ExponentialMovingAverage': ...
"""
from __future__ import annotations

import ipywidgets as widgets
from traitlets import Bytes, HasTraits, Instance, TraitError, Tuple, Unicode, observe, validate

from .. import plots
from .._format import TensorStats, compare_text, filter_entries, format_shape, human_size, tensor_stats, text_table
from ..errors import CheckpointError
from ..reader import KINDS, Checkpoint, Entry, open_checkpoint
from ._table import Column, PagedTable, PAGE_SIZE
from ._text import CSS_CLASSES, PlainTextRepr, label_style, message_label, set_message, text_label

__all__ = ["BrowserModel", "CheckpointBrowser"]


class BrowserModel(HasTraits):
    """State and logic of :class:`CheckpointBrowser`, usable without any widget.

    Parameters
    ----------
    ckpt_or_path : Checkpoint or str or os.PathLike
        Anything :func:`ckptwidgets.open_checkpoint` takes. A path that cannot be opened
        gives a model with ``checkpoint=None`` and the reason in ``error``.

    Examples
    --------
    >>> model = BrowserModel("my_test_model.ckpt")            # doctest: +SKIP
    >>> [e.key for e in model.matches]                        # doctest: +SKIP
    ['v1', 'v2']
    >>> model.selected = "v1"; model.stats.mean               # doctest: +SKIP
    1.0
    """

    checkpoint = Instance(Checkpoint, allow_none=True, help="The checkpoint browsed; None if it could not be opened.")
    filter_text = Unicode(
        "", help="Words every shown key contains (case-insensitive); a word starting with '!' excludes keys."
    )
    kinds = Tuple(help="Kinds of entries shown, a subset of ('variable', 'ema', 'slot', 'meta').")
    matches = Tuple(read_only=True, help="The entries passing the filter and kinds, sorted by key.")
    selected = Unicode(None, allow_none=True, help="Key of the entry whose statistics are shown, or None.")
    stats = Instance(TensorStats, allow_none=True, read_only=True, help="Statistics of the selected entry.")
    shadow = Instance(
        Entry,
        allow_none=True,
        read_only=True,
        help="The entry compared with the selection: its EMA shadow, or for a shadow its variable.",
    )
    shadow_stats = Instance(TensorStats, allow_none=True, read_only=True, help="Statistics of `shadow`.")
    comparison = Unicode("", read_only=True, help="Text comparing the selection with `shadow`.")
    png = Bytes(b"", read_only=True, help="PNG histogram of the selection (with its shadow overlaid).")
    error = Unicode("", help="A message for the user, '' when all is well.")

    def __init__(self, ckpt_or_path, **kwargs):
        super().__init__(**kwargs)
        try:
            self.checkpoint = open_checkpoint(ckpt_or_path)
        except CheckpointError as error:
            self.error = str(error)
            return
        self._totals = self.checkpoint.totals()
        if not self.kinds:
            self.kinds = tuple(k for k in KINDS if k in self._totals)
        self._refilter()

    # --- filtering -----------------------------------------------------------------------
    @validate("kinds")
    def _valid_kinds(self, proposal):
        kinds = tuple(proposal.value)
        bad = [k for k in kinds if k not in KINDS]
        if bad:
            raise TraitError(f"Unknown entry kind(s) {bad!r}; kinds are {KINDS!r}.")
        return kinds

    @observe("filter_text", "kinds")
    def _refilter(self, change=None):
        if self.checkpoint is None:
            return
        self.set_trait("matches", tuple(filter_entries(self.checkpoint.entries, self.filter_text, self.kinds)))

    @property
    def totals(self) -> dict:
        """``{kind: (count, nbytes)}`` of the whole checkpoint."""
        return dict(self._totals) if self.checkpoint is not None else {}

    def _kind_totals(self) -> list[tuple[str, tuple[int, int]]]:
        return sorted(self._totals.items(), key=lambda kv: KINDS.index(kv[0]))

    def title_text(self) -> str:
        """The heading: prefix, number of entries, and whether the checkpoint is object-based."""
        ckpt = self.checkpoint
        return f"{ckpt.prefix} · {len(ckpt):,} entries" + (" · object-based" if ckpt.object_based else "")

    def totals_text(self) -> str:
        """One line: count and size per kind, then the total."""
        if self.checkpoint is None:
            return ""
        parts = [f"{kind} {count:,} ({human_size(nbytes)})" for kind, (count, nbytes) in self._kind_totals()]
        count = sum(c for c, _ in self._totals.values())
        nbytes = sum(b for _, b in self._totals.values())
        return " · ".join(parts + [f"total {count:,} entries, {human_size(nbytes)}"])

    def kind_labels(self) -> dict[str, str]:
        """``{kind: "kind (count)"}`` for the kinds present, in :data:`KINDS` order (the kind boxes)."""
        return {kind: f"{kind} ({count:,})" for kind, (count, _) in self._kind_totals()}

    @staticmethod
    def row_texts(entry: Entry) -> list[str]:
        """The table cells of one entry: key, kind, dtype, shape, size."""
        return [entry.key, entry.kind, entry.dtype, format_shape(entry.shape), human_size(entry.nbytes)]

    @staticmethod
    def row_tooltips(entry: Entry) -> tuple[list[str | None], str]:
        """Tooltips of a row's cells (the full key, shape, exact size) and of its select button."""
        return [entry.key, None, None, format_shape(entry.shape), f"{entry.nbytes:,} bytes"], f"Statistics of {entry.key}"

    # --- selection -----------------------------------------------------------------------
    def shadow_of(self, entry: Entry) -> Entry | None:
        """The entry to compare ``entry`` with: its EMA shadow, or for a shadow its variable."""
        if entry.kind == "ema":
            return self.checkpoint.find(entry.base) if entry.base else None
        return self.checkpoint.ema_shadows.get(entry.key)

    @observe("selected")
    def _on_selection(self, change):
        for name in ("stats", "shadow", "shadow_stats"):
            self.set_trait(name, None)
        self.set_trait("comparison", "")
        self.set_trait("png", b"")
        key = change.new
        if key is None or self.checkpoint is None:
            return
        try:
            entry = self.checkpoint[key]
            values = self.checkpoint.read(entry.key)
            other = self.shadow_of(entry)
            other_values = self.checkpoint.read(other.key) if other is not None else None
        except KeyError as error:
            self.error = error.args[0] if error.args else str(error)
            return
        except CheckpointError as error:
            self.error = str(error)
            return
        self.error = ""
        self.set_trait("stats", tensor_stats(values))
        # Raw first, shadow second, whichever of the two was selected.
        pair = [(entry, values), (other, other_values)]
        if entry.kind == "ema" and other is not None:
            pair.reverse()
        (raw, raw_values), (shadow, shadow_values) = pair
        if other is not None:
            self.set_trait("shadow", other)
            self.set_trait("shadow_stats", tensor_stats(other_values))
            self.set_trait("comparison", compare_text(raw.key, raw_values, shadow.key, shadow_values))
        self.set_trait("png", plots.figure_to_png(plots.histogram_figure(raw_values, shadow_values, title=entry.key)))

    def select(self, key: str | None) -> None:
        """Show the statistics of ``key`` (None clears the selection)."""
        self.selected = key

    def shadow_text(self, quote: bool = False) -> str:
        """``"<kind> <key>: <statistics>"`` of ``shadow`` ('' when there is none)."""
        if self.shadow is None:
            return ""
        key = repr(self.shadow.key) if quote else self.shadow.key
        return f"{self.shadow.kind} {key}: {self.shadow_stats}"

    # --- text ----------------------------------------------------------------------------
    def text_summary(self, rows: int = 10) -> str:
        """A plain-text view: the checkpoint, totals, and the first ``rows`` matches."""
        if self.checkpoint is None:
            return f"CheckpointBrowser: {self.error}"
        lines = [f"CheckpointBrowser {self.checkpoint.prefix!r}: {len(self.checkpoint):,} entries", self.totals_text()]
        shown = self.matches[:rows]
        if self.filter_text or set(self.kinds) != set(self._totals):
            lines.append(f"filter {self.filter_text!r}, kinds {', '.join(self.kinds)}: {len(self.matches):,} match")
        lines.append(text_table(["key", "kind", "dtype", "shape", "size"], [self.row_texts(e) for e in shown],
                                max_widths=[60, 0, 0, 24, 0]))
        if len(self.matches) > rows:
            lines.append(f"... {len(self.matches) - rows:,} more")
        if self.selected is not None and self.stats is not None:
            lines.append(f"selected {self.selected!r}: {self.stats}")
            if self.comparison:
                lines.append(self.comparison)
                lines.append(self.shadow_text(quote=True))
        return "\n".join(lines)


class CheckpointBrowser(PlainTextRepr, widgets.VBox):
    """A filterable table of a checkpoint's entries, with statistics of the selected one.

    Parameters
    ----------
    ckpt_or_path : Checkpoint or str or os.PathLike
        A checkpoint prefix, ``.index`` file, folder or open :class:`~ckptwidgets.Checkpoint`.
        If it cannot be opened the widget shows why (no traceback).
    page_size : int
        Rows per page; the number of widgets does not depend on the checkpoint's size.

    Attributes
    ----------
    model : BrowserModel
        Drive the browser from code: ``browser.model.filter_text = "kernel"``,
        ``browser.model.selected = key``.

    Examples
    --------
    >>> browser = CheckpointBrowser("my_test_model.ckpt")     # doctest: +SKIP
    >>> browser                                               # doctest: +SKIP
    CheckpointBrowser 'my_test_model.ckpt': 2 entries
    ...
    """

    def __init__(self, ckpt_or_path, page_size: int = PAGE_SIZE, **kwargs):
        self.model = BrowserModel(ckpt_or_path)
        self.message = message_label()
        if self.model.checkpoint is None:
            super().__init__([self.message], **kwargs)
            self.add_class(CSS_CLASSES["browser"])
            set_message(self.message, self.model.error)
            return
        model = self.model
        self.title = text_label(model.title_text(), style=label_style(font_weight="bold"))
        self.totals = text_label(model.totals_text())
        self.filter_box = widgets.Text(
            value=model.filter_text, placeholder="filter keys: words to match, !word to exclude",
            layout=widgets.Layout(width="28em"),
        )
        widgets.link((self.filter_box, "value"), (model, "filter_text"))
        self.kind_boxes = {
            kind: widgets.Checkbox(value=kind in model.kinds, description=label, indent=False,
                                   layout=widgets.Layout(width="auto"))
            for kind, label in model.kind_labels().items()
        }
        for box in self.kind_boxes.values():
            box.observe(self._on_kind_box, "value")
        self.table = PagedTable(
            [Column("", "2.6em", "button"), Column("key", "minmax(12em, 4fr)"), Column("kind", "5.5em"),
             Column("dtype", "6em"), Column("shape", "minmax(5em, 1fr)"), Column("size", "6.5em")],
            page_size=page_size,
        )
        self.table.on_button(self._row_clicked)
        self.table.observe(lambda _c: self._fill_page(), "page")
        self.selected_label = text_label("", style=label_style(font_weight="bold"))
        self.stats_label = text_label("")
        self.comparison_label = text_label("")
        self.shadow_label = text_label("")
        self.histogram = widgets.Image(format="png", layout=widgets.Layout(max_width="540px", display="none"))
        self.details = widgets.VBox([self.selected_label, self.stats_label, self.comparison_label, self.shadow_label, self.histogram])
        controls = widgets.HBox([self.filter_box, *self.kind_boxes.values()], layout=widgets.Layout(flex_flow="row wrap"))
        super().__init__([self.title, self.totals, controls, self.table, self.message, self.details], **kwargs)
        self.add_class(CSS_CLASSES["browser"])

        model.observe(self._on_matches, "matches")
        model.observe(self._on_kinds, "kinds")
        # `png` is set last when a selection changes: one refresh per selection.
        model.observe(self._show_selection, ["png", "selected"])
        model.observe(lambda c: set_message(self.message, c.new), "error")
        self._on_matches()

    # --- model -> view -------------------------------------------------------------------
    def _on_matches(self, change=None):
        self.table.page = 0
        self.table.set_page_count(len(self.model.matches))
        self._fill_page()

    def _fill_page(self):
        entries = self.model.matches[self.table.page_slice()]
        for row in range(self.table.page_size):
            if row < len(entries):
                entry = entries[row]
                tooltips, button_tooltip = self.model.row_tooltips(entry)
                self.table.set_row(row, self.model.row_texts(entry), tooltips=tooltips, button_tooltip=button_tooltip)
            else:
                self.table.clear_row(row)

    def _on_kinds(self, change):
        for kind, box in self.kind_boxes.items():
            box.value = kind in change.new

    def _show_selection(self, change=None):
        model = self.model
        if model.selected is None or model.stats is None:
            self.selected_label.value = ""
            self.stats_label.value = ""
            self.comparison_label.value = ""
            self.shadow_label.value = ""
            self.histogram.layout.display = "none"
            return
        self.selected_label.value = model.selected
        self.stats_label.value = str(model.stats)
        self.comparison_label.value = model.comparison
        self.comparison_label.tooltip = model.comparison or None
        self.shadow_label.value = model.shadow_text()
        if model.png:
            self.histogram.value = model.png
            self.histogram.layout.display = None

    # --- view -> model -------------------------------------------------------------------
    def _on_kind_box(self, change):
        self.model.kinds = tuple(k for k, box in self.kind_boxes.items() if box.value)

    def _row_clicked(self, row: int):
        entries = self.model.matches[self.table.page_slice()]
        if row < len(entries):
            self.model.selected = entries[row].key

    # --- text repr -----------------------------------------------------------------------
    def __repr__(self) -> str:
        return self.model.text_summary()
