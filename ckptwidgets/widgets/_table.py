"""A paginated table with a fixed number of row widgets.

A checkpoint may hold 10,000 entries; a table with one widget per entry would send all of
them to the browser. :class:`PagedTable` builds ``page_size`` rows once and only changes
their values when the page or the data changes, so its size never depends on the data.
Cells are text (``Label``), a row button (``Button``) or a ``Dropdown``, laid out in one
``GridBox`` so the columns line up without a box per row.

Rows past the last data row are hidden (``display: none``), not left blank, so a short
table is short; the row widgets stay, so the widget count does not change either.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import ipywidgets as widgets
from traitlets import Int, observe, validate

from ._text import CSS_CLASSES, label_style, path_html, text_label

__all__ = ["Column", "PagedTable", "PAGE_SIZE"]

PAGE_SIZE = 25
_KINDS = ("text", "path", "button", "dropdown")
_TEXTS = ("text", "path")  # cells a row's texts go into, in column order


@dataclass(frozen=True)
class Column:
    """One column of a :class:`PagedTable`.

    Attributes
    ----------
    header : str
    width : str
        A CSS grid track, e.g. ``"6em"`` or ``"minmax(10em, 3fr)"``.
    kind : str
        ``"text"`` (a Label), ``"path"`` (a key: text that wraps after its ``/``, an escaped
        ``HTML``), ``"button"`` (a Button per row) or ``"dropdown"``.
    """

    header: str
    width: str
    kind: str = "text"

    def __post_init__(self):
        if self.kind not in _KINDS:
            raise ValueError(f"Column kind must be one of {', '.join(map(repr, _KINDS))}, got {self.kind!r}")


class PagedTable(widgets.VBox):
    """``page_size`` rows of cells plus a pager; the owner fills the cells of each page.

    Parameters
    ----------
    columns : sequence of Column
    page_size : int
    button_icon : str
        FontAwesome icon of ``"button"`` cells.

    Examples
    --------
    >>> table = PagedTable([Column("key", "1fr"), Column("kind", "6em")], page_size=3)
    >>> table.set_page_count(7)
    >>> table.set_row(0, ["v1", "variable"])
    >>> table.cells[0][0].value, table.pager_label.value
    ('v1', 'page 1 of 3 · 7 rows')
    >>> table.rows_shown  # rows not filled take no space
    1
    """

    page = Int(0, help="Index of the page shown, from 0.")
    n_pages = Int(1, help="Number of pages (at least 1, also for no rows).")
    n_rows = Int(0, help="Number of data rows over all pages.")

    def __init__(self, columns, page_size: int = PAGE_SIZE, button_icon: str = "search", **kwargs):
        if not isinstance(page_size, int) or page_size < 1:
            raise ValueError(f"page_size must be a positive int, got {page_size!r}")
        self.columns = tuple(columns)
        self.page_size = page_size
        self._button_callbacks = []
        # One layout per row, shared by its text cells (hiding a row is one change), and one
        # shared style: a few browser models instead of one per cell.
        def cell_layout():
            return widgets.Layout(overflow="hidden", min_width="0", width="100%")

        mono = label_style(font_family="monospace")
        header_style = label_style(font_weight="bold")
        header_layout = cell_layout()
        header = [text_label(c.header, layout=header_layout, style=header_style) for c in self.columns]
        self._headers = dict(zip((c.header for c in self.columns), header))
        self.cells: list[list[widgets.Widget]] = []
        self._row_layouts: list[widgets.Layout] = []
        for row in range(page_size):
            cells = []
            row_layout = cell_layout()
            self._row_layouts.append(row_layout)
            for column in self.columns:
                if column.kind == "text":
                    cells.append(text_label("", layout=row_layout, style=mono))
                elif column.kind == "path":
                    cells.append(widgets.HTML("", layout=row_layout))
                elif column.kind == "button":
                    button = widgets.Button(
                        icon=button_icon, layout=widgets.Layout(width="2.4em", padding="0"), disabled=True
                    )
                    button.on_click(lambda _b, row=row: self._clicked(row))
                    cells.append(button)
                else:
                    cells.append(widgets.Dropdown(options=[], layout=widgets.Layout(width="100%")))
            self.cells.append(cells)
        self._hidden: set[str] = set()
        self.grid = widgets.GridBox(
            header + [cell for cells in self.cells for cell in cells],
            layout=widgets.Layout(
                grid_template_columns=self._template(),
                grid_gap="0 0.6em",
                align_items="center",
            ),
        )
        button = widgets.Layout(width="3em")
        self.first_button = widgets.Button(icon="angle-double-left", tooltip="First page", layout=button)
        self.prev_button = widgets.Button(icon="chevron-left", tooltip="Previous page", layout=button)
        self.next_button = widgets.Button(icon="chevron-right", tooltip="Next page", layout=button)
        self.last_button = widgets.Button(icon="angle-double-right", tooltip="Last page", layout=button)
        self.first_button.on_click(lambda _b: setattr(self, "page", 0))
        self.prev_button.on_click(lambda _b: self.turn(-1))
        self.next_button.on_click(lambda _b: self.turn(+1))
        self.last_button.on_click(lambda _b: setattr(self, "page", self.n_pages - 1))
        # Page numbers from 1 as people count; Enter or leaving the box goes there.
        self.page_box = widgets.BoundedIntText(value=1, min=1, max=1, description="page", continuous_update=False,
                                               style={"description_width": "initial"},
                                               layout=widgets.Layout(width="9em"))
        self.page_box.observe(lambda c: setattr(self, "page", c.new - 1), "value")
        self.pager_label = text_label("")
        self.pager = widgets.HBox([self.first_button, self.prev_button, self.page_box, self.next_button,
                                   self.last_button, self.pager_label],
                                  layout=widgets.Layout(align_items="center", flex_flow="row wrap"))
        self.selected_row = None
        super().__init__([self.grid, self.pager], **kwargs)
        self.add_class(CSS_CLASSES["table"])
        for row in range(page_size):
            self.clear_row(row)  # hidden until filled
        self._update_pager()

    # --- paging --------------------------------------------------------------------------
    def set_page_count(self, n_rows: int) -> None:
        """Set the number of data rows; clamps ``page`` into range."""
        self.n_rows = int(n_rows)
        self.n_pages = max(1, math.ceil(self.n_rows / self.page_size))
        self.page = min(self.page, self.n_pages - 1)
        self._update_pager()

    @validate("page")
    def _valid_page(self, proposal):
        return max(0, min(int(proposal.value), self.n_pages - 1))

    @observe("page")
    def _on_page(self, change):
        self._update_pager()

    def turn(self, delta: int) -> None:
        """Go ``delta`` pages forward (negative: back), staying in range."""
        self.page = self.page + delta

    def page_slice(self) -> slice:
        """The slice of the data rows on the current page."""
        start = self.page * self.page_size
        return slice(start, min(start + self.page_size, self.n_rows))

    def _update_pager(self):
        first, last = self.page <= 0, self.page >= self.n_pages - 1
        self.prev_button.disabled = self.first_button.disabled = first
        self.next_button.disabled = self.last_button.disabled = last
        self.pager_label.value = f"page {self.page + 1} of {self.n_pages} · {self.n_rows:,} rows"
        self.page_box.max = self.n_pages
        self.page_box.value = self.page + 1
        # One page needs no pager: only its count of rows.
        display = "none" if self.n_pages <= 1 else None
        for control in (self.first_button, self.prev_button, self.page_box, self.next_button, self.last_button):
            control.layout.display = display

    def go_to_row(self, index: int) -> int:
        """Show the page holding data row ``index`` (from 0); returns that row's place on the page."""
        self.page = index // self.page_size
        return index - self.page * self.page_size

    def highlight(self, row: int | None) -> None:
        """Mark ``row`` of this page as the selected one (None: no row); one class per text cell."""
        if row == self.selected_row:
            return
        for index in (self.selected_row, row):
            if index is None:
                continue
            for cell, col in zip(self.cells[index], self.columns):
                if col.kind in _TEXTS:
                    if index == row:
                        cell.add_class(CSS_CLASSES["selected"])
                    else:
                        cell.remove_class(CSS_CLASSES["selected"])
        self.selected_row = row

    # --- rows ----------------------------------------------------------------------------
    def set_row(self, row: int, texts, tooltips=None, button_tooltip: str | None = None) -> None:
        """Fill the text cells of ``row`` (in column order) and enable its button.

        ``tooltips`` (same order) carry text too long for the column.
        """
        texts = list(texts)
        tooltips = list(tooltips) if tooltips is not None else [None] * len(texts)
        labels = [(c, col.kind) for c, col in zip(self.cells[row], self.columns) if col.kind in _TEXTS]
        if len(texts) != len(labels):
            raise ValueError(f"Row needs {len(labels)} texts, got {len(texts)}: {texts!r}")
        for (label, kind), text, tip in zip(labels, texts, tooltips):
            label.value = path_html(text) if kind == "path" and text else text
            label.tooltip = tip
        for cell, col in zip(self.cells[row], self.columns):
            if col.kind == "button":
                cell.disabled = False
                cell.tooltip = button_tooltip
                cell.layout.visibility = None
            elif col.kind == "dropdown":
                cell.layout.visibility = None
        self._show_row(row, True)

    def clear_row(self, row: int) -> None:
        """Blank and hide ``row`` (past the last data row): it takes no space until filled again."""
        for cell, col in zip(self.cells[row], self.columns):
            if col.kind in _TEXTS:
                cell.value = ""
                cell.tooltip = None
            elif col.kind == "button":
                cell.disabled = True
                cell.tooltip = None
                cell.layout.visibility = "hidden"
            else:
                cell.layout.visibility = "hidden"
        self._show_row(row, False)

    def _show_row(self, row: int, shown: bool) -> None:
        display = None if shown else "none"
        self._row_layouts[row].display = display
        for cell, col in zip(self.cells[row], self.columns):
            if col.kind not in _TEXTS:
                cell.layout.display = display

    def row_shown(self, row: int) -> bool:
        """Whether ``row`` is displayed (a data row) or hidden (past the last data row)."""
        return self._row_layouts[row].display != "none"

    @property
    def rows_shown(self) -> int:
        """Number of displayed rows: the data rows on this page."""
        return sum(self.row_shown(row) for row in range(self.page_size))

    def _template(self) -> str:
        return " ".join("0" if c.header in self._hidden else c.width for c in self.columns)

    def show_column(self, header: str, shown: bool) -> None:
        """Show or hide a column (hidden: zero wide, its cells clipped), e.g. one that is empty
        on every row, so that the others keep its room in a narrow notebook."""
        if header not in {c.header for c in self.columns}:
            raise KeyError(header)
        hidden = set(self._hidden)
        (hidden.discard if shown else hidden.add)(header)
        if hidden != self._hidden:
            self._hidden = hidden
            self.grid.layout.grid_template_columns = self._template()
            self._headers[header].value = header if shown else ""  # no clipped text left behind

    def column(self, header: str) -> list:
        """The cells of the column called ``header``, one per row."""
        for index, column in enumerate(self.columns):
            if column.header == header:
                return [cells[index] for cells in self.cells]
        raise KeyError(f"No column {header!r}; columns are {[c.header for c in self.columns]}")

    def on_button(self, callback) -> None:
        """Call ``callback(row)`` when the button of a row (0 .. page_size-1) is clicked."""
        self._button_callbacks.append(callback)

    def _clicked(self, row: int) -> None:
        for callback in self._button_callbacks:
            callback(row)
