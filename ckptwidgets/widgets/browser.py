"""CheckpointBrowser: a filterable, paginated table of a checkpoint's entries.

:class:`BrowserModel` holds the state (filter, kinds, selection, statistics) and works
without a browser; :class:`CheckpointBrowser` is the view over it.

Example
-------
>>> from ckptwidgets import CheckpointBrowser
>>> browser = CheckpointBrowser("moving_average.ckpt")        # doctest: +SKIP
>>> browser.model.filter_text = "v2 !kind:meta"               # doctest: +SKIP
>>> browser.model.selected = "v2"                             # doctest: +SKIP
>>> print(browser.model.comparison)                           # doctest: +SKIP
raw 'v2' vs EMA shadow 'v2/ExponentialMovingAverage': ...

The filter box speaks the filter language of :mod:`ckptwidgets._text.filter` (the command line's
``--filter`` too). A checkpoint saved at several steps of one run (``model.ckpt-0``,
``model.ckpt-1000``) gets a step dropdown: ``browser.model.step = 0`` opens that one.
Selecting an entry shows its statistics at once (``details``) and then its histogram
(``png``), drawn into one reused figure (:class:`HistogramCanvas`).
"""
from __future__ import annotations

import re

import ipywidgets as widgets
import numpy as np
from traitlets import Enum, Instance, Int, TraitError, Tuple, Unicode, observe, validate

from .._text.format import TensorStats, compare_text, finite_values, format_shape, human_size, tensor_stats, text_table
from ..errors import CheckpointError
from ..reader import KINDS, Checkpoint, Entry, open_checkpoint
from ._base import FILTER_PLACEHOLDER, HistogramCanvas, TableModel, TableView, plottable
from ._table import Column, PAGE_SIZE
from ._text import label_style, set_message, text_label

__all__ = ["BrowserModel", "CheckpointBrowser", "HistogramCanvas", "FILTER_PLACEHOLDER", "SORTS", "HISTOGRAMS",
           "natural_key"]

#: ``(label, sort)`` of the sort dropdown; ``BrowserModel.sort`` takes the second.
SORTS = (("key (block_2 before block_10)", "key"), ("kind, then key", "kind"), ("size, largest first", "size"),
         ("shape: rank, then dims", "shape"))
#: What the histogram shows: the values (with the shadow overlaid) or raw minus EMA shadow.
HISTOGRAMS = (("values", "values"), ("raw − EMA", "difference"))
_DIGITS = re.compile(r"(\d+)")
#: The histogram beside the table: 396 x 252 px at plots.DPI, the width of the details column.
DETAILS_FIGSIZE = (4.4, 2.8)


def natural_key(text: str) -> tuple:
    """Sort key putting ``block_2`` before ``block_10`` (numbers compared as numbers).

    Examples
    --------
    >>> sorted(["block_10/w", "block_2/w", "Block_3/w", "v2", "v/ExponentialMovingAverage", "v"], key=natural_key)
    ['block_2/w', 'Block_3/w', 'block_10/w', 'v', 'v/ExponentialMovingAverage', 'v2']
    """
    # Segment by segment (a scope's entries stay together: 'v', 'v/ema', then 'v2'); in each,
    # re.split with a group alternates text, digits, text...: the types at each index agree.
    return tuple(tuple(int(p) if i % 2 else p.casefold() for i, p in enumerate(_DIGITS.split(segment)))
                 for segment in text.split("/")), text


class BrowserModel(TableModel):
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

    checkpoint = Instance(Checkpoint, allow_none=True, read_only=True,
                          help="The checkpoint browsed; None if it could not be opened. Set `step` to browse another.")
    step = Int(None, allow_none=True,
               help="Step of the checkpoint browsed, one of `steps` (None: its prefix has no step); setting it "
               "opens that checkpoint of the run, keeping the filter and kinds.")
    kinds = Tuple(help="Kinds of entries shown, a subset of ('variable', 'ema', 'slot', 'meta').")
    matches = Tuple(read_only=True, help="The entries passing the filter and kinds, in `sort` order.")
    sort = Enum(tuple(v for _, v in SORTS), default_value="key",
                help="Order of `matches`: key (natural: block_2 before block_10), kind, size (largest first), shape.")
    histogram = Enum(tuple(v for _, v in HISTOGRAMS), default_value="values",
                     help="The histogram: 'values' (shadow overlaid) or 'difference' (raw minus its EMA shadow).")
    stats = Instance(TensorStats, allow_none=True, read_only=True, help="Statistics of the selected entry.")
    shadow = Instance(
        Entry,
        allow_none=True,
        read_only=True,
        help="The entry compared with the selection: its EMA shadow, or for a shadow its variable.",
    )
    shadow_stats = Instance(TensorStats, allow_none=True, read_only=True, help="Statistics of `shadow`.")
    comparison = Unicode("", read_only=True, help="Text comparing the selection with `shadow`.")
    details = Tuple(
        read_only=True,
        help="(key, statistics, comparison, shadow) texts of the selection, () for none; set before `png`, "
        "so a view shows the numbers before the histogram is drawn.",
    )

    def __init__(self, ckpt_or_path, **kwargs):
        self._sort_keys: dict = {}
        self._selection = None  # (raw entry, raw values, shadow entry, shadow values) of the selection
        self._totals: dict = {}
        self._steps: tuple = ()
        self._quiet = False
        super().__init__(HistogramCanvas(DETAILS_FIGSIZE), **kwargs)
        try:
            ckpt = open_checkpoint(ckpt_or_path)
        except CheckpointError as error:
            self.error = str(error)
            return
        self._use(ckpt)
        if not self.kinds:
            self.kinds = tuple(k for k in KINDS if k in self._totals)
        self._refilter()

    def _use(self, ckpt: Checkpoint) -> None:
        self._sort_keys = {}
        self._totals = ckpt.totals()
        self._steps = ckpt.steps  # lists the folder: once per checkpoint opened
        self._set_step_quietly(ckpt.step)
        self.set_trait("checkpoint", ckpt)  # views refresh title, totals, kinds and steps

    # --- steps ---------------------------------------------------------------------------
    @property
    def steps(self) -> tuple[tuple[int, str], ...]:
        """``(step, prefix)`` of the checkpoints of this run, by step (empty when none)."""
        return self._steps

    def step_options(self) -> list[tuple[str, int]]:
        """``(label, step)`` for the step dropdown, latest first: ``("step 1000 (latest)", 1000)``."""
        if not self._steps:
            return []
        latest = self._steps[-1][0]
        return [(f"step {step}" + (" (latest)" if step == latest else ""), step) for step, _ in reversed(self._steps)]

    def _not_a_step(self, value) -> TraitError:
        have = ", ".join(str(step) for step, _ in self._steps) or "none"
        return TraitError(f"step {value!r} is not a step of {self.checkpoint.prefix!r}; its steps: {have}.")

    @validate("step")
    def _valid_step(self, proposal):
        # (traitlets passes None by, as for any allow_none trait: _on_step refuses it.)
        if not self._quiet and self.checkpoint is not None and proposal.value not in dict(self._steps):
            raise self._not_a_step(proposal.value)
        return proposal.value

    def _set_step_quietly(self, step) -> None:
        """Set ``step`` without validating or opening anything (the step of what is open)."""
        self._quiet = True
        try:
            self.step = step
        finally:
            self._quiet = False

    @observe("step")
    def _on_step(self, change):
        if self._quiet or self.checkpoint is None:
            return
        if change.new is None:
            self._set_step_quietly(change.old)
            raise self._not_a_step(None)
        prefix = dict(self._steps).get(change.new)
        if prefix is None or prefix == self.checkpoint.prefix:
            return
        try:
            ckpt = open_checkpoint(prefix)
        except CheckpointError as error:
            self.error = str(error)
            self._set_step_quietly(change.old)
            return
        shown_all = set(self.kinds) >= set(self._totals)
        self.selected = None
        self.error = ""
        self._use(ckpt)
        # Kinds are kept; when every kind was shown, a kind new to this step is shown too.
        if shown_all:
            self.kinds = tuple(k for k in KINDS if k in self._totals or k in self.kinds)
        self._refilter()

    # --- filtering -----------------------------------------------------------------------
    @validate("kinds")
    def _valid_kinds(self, proposal):
        kinds = tuple(proposal.value)
        bad = [k for k in kinds if k not in KINDS]
        if bad:
            raise TraitError(f"Unknown entry kind(s) {bad!r}; kinds are {KINDS!r}.")
        return kinds

    def _sort_key(self, entry: Entry):
        if self.sort == "size":
            return (-entry.nbytes, natural_key(entry.key))
        if self.sort == "kind":
            return (KINDS.index(entry.kind), natural_key(entry.key))
        if self.sort == "shape":
            shape = entry.shape if entry.shape is not None else ()
            return (len(shape), tuple(shape), natural_key(entry.key))
        return natural_key(entry.key)

    def _sorted(self, entries) -> tuple:
        keys = self._sort_keys.get(self.sort)
        if keys is None:  # once per checkpoint and order: 10,000 entries in a few ms
            keys = self._sort_keys[self.sort] = {e.key: self._sort_key(e) for e in self.checkpoint.entries}
        return tuple(sorted(entries, key=lambda e: keys[e.key]))

    def find_row(self, text: str) -> int | None:
        """Index in ``matches`` of the key typed (exactly, else the first starting with it, else containing it)."""
        text = (text or "").strip()
        if not text:
            return None
        keys = [e.key for e in self.matches]
        for test in (lambda k: k == text, lambda k: k.startswith(text), lambda k: text.lower() in k.lower()):
            for index, key in enumerate(keys):
                if test(key):
                    return index
        return None

    @observe("filter_text", "kinds", "sort")
    def _refilter(self, change=None):
        if self.checkpoint is None:
            return
        self.set_trait("matches", self._sorted(self._parse_filter().entries(self.checkpoint.entries, self.kinds)))

    def show_kind(self, kind: str, shown: bool = True) -> None:
        """Show (or hide) the entries of one kind, keeping the other kinds as they are (a kind box)."""
        self.kinds = tuple(k for k in KINDS if (k == kind and shown) or (k != kind and k in self.kinds))

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

    def _clear_selection(self) -> None:
        self._selection = None
        for name in ("stats", "shadow", "shadow_stats"):
            self.set_trait(name, None)
        self.set_trait("comparison", "")
        self._clear_details()

    @observe("selected")
    def _on_selection(self, change):
        key = change.new
        if key is None or self.checkpoint is None:
            self._clear_selection()
            return
        try:
            entry = self.checkpoint[key]
            values = self.checkpoint.read(entry.key)
            other = self.shadow_of(entry)
            other_values = self.checkpoint.read(other.key) if other is not None else None
        except KeyError as error:
            self._clear_selection()
            self.error = error.args[0] if error.args else str(error)
            return
        except CheckpointError as error:
            self._clear_selection()
            self.error = str(error)
            return
        self.error = ""
        # Each array is converted once (float64, finite values) for its statistics and its histogram.
        finite = finite_values(values)
        other_finite = finite_values(other_values) if other is not None else None
        # Raw first, shadow second, whichever of the two was selected.
        pair = [(entry, values, finite), (other, other_values, other_finite)]
        if entry.kind == "ema" and other is not None:
            pair.reverse()
        (raw, raw_values, raw_finite), (shadow, shadow_values, shadow_finite) = pair
        self.set_trait("shadow", other)
        self.set_trait("shadow_stats", tensor_stats(other_values, finite=other_finite) if other is not None else None)
        self.set_trait("comparison", compare_text(raw.key, raw_values, shadow.key, shadow_values) if other is not None else "")
        self.set_trait("stats", tensor_stats(values, finite=finite))
        # The numbers first: a view shows them while the histogram is drawn.
        self._selection = (entry, raw, raw_values, raw_finite, shadow, shadow_values, shadow_finite)
        self.set_trait("details", (key, str(self.stats), self.comparison, self.shadow_text()))
        self._draw_histogram()

    @observe("histogram")
    def _draw_histogram(self, change=None):
        if self._selection is None:
            return
        entry, raw, raw_values, raw_finite, shadow, shadow_values, shadow_finite = self._selection
        difference = self.difference_values() if self.histogram == "difference" else None
        if difference is not None:
            png = self.canvas.png(difference, None, title=f"{raw.key} − {shadow.key}")
        else:
            png = self.canvas.png(
                plottable(raw_values, raw_finite), None if shadow is None else plottable(shadow_values, shadow_finite),
                title=entry.key,
            )
        self.set_trait("png", png)

    def difference_values(self):
        """Raw minus EMA shadow of the selection (finite float64 values), or None without a shadow of its shape."""
        if self._selection is None:
            return None
        _, raw, raw_values, _, shadow, shadow_values, _ = self._selection
        if shadow is None or np.shape(raw_values) != np.shape(shadow_values):
            return None
        try:
            difference = np.asarray(raw_values, dtype=np.float64) - np.asarray(shadow_values, dtype=np.float64)
        except (TypeError, ValueError):  # strings
            return None
        return difference[np.isfinite(difference)].ravel()

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
        if len(self._steps) > 1:
            lines.append(f"step {self.step} of steps {', '.join(str(s) for s, _ in self._steps)}")
        shown = self.matches[:rows]
        if self.filter_text or set(self.kinds) != set(self._totals):
            lines.append(f"filter {self.filter_text!r}, kinds {', '.join(self.kinds)}: {len(self.matches):,} match")
        if self.filter_error:
            lines.append(self.filter_error)
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


class CheckpointBrowser(TableView):
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
        Drive the browser from code: ``browser.model.filter_text = "kernel !kind:slot"``,
        ``browser.model.selected = key``, ``browser.model.step = 1000``.
    step_box : ipywidgets.Dropdown
        The steps of the run (``model.ckpt-0``, ``model.ckpt-1000``...), shown when there
        are more than one.

    Examples
    --------
    >>> browser = CheckpointBrowser("my_test_model.ckpt")     # doctest: +SKIP
    >>> browser                                               # doctest: +SKIP
    CheckpointBrowser 'my_test_model.ckpt': 2 entries
    ...
    """

    rows_trait = "matches"

    def __init__(self, ckpt_or_path, page_size: int = PAGE_SIZE, **kwargs):
        super().__init__(BrowserModel(ckpt_or_path), **kwargs)
        model = self.model
        if model.checkpoint is None:
            self.show_message_only()
            return
        self.title = text_label("", style=label_style(font_weight="bold"))
        self.totals = text_label("")
        self.step_box = widgets.Dropdown(options=model.step_options(), value=model.step, description="step",
                                         layout=widgets.Layout(width="16em"),
                                         tooltip="Browse another checkpoint of this run")
        # A link by hand: new options select their first one, which is not a user's choice.
        self._syncing_steps = False
        self.step_box.observe(self._on_step_box, "value")
        model.observe(lambda c: self._show_step(), "step")
        self.make_filter_box(width="28em", max_width="100%")
        self.sort_box = widgets.Dropdown(options=SORTS, value=model.sort, description="sort",
                                         style={"description_width": "initial"},
                                         layout=widgets.Layout(width="21em", max_width="100%"))
        widgets.link((self.sort_box, "value"), (model, "sort"))
        # Type a key (or its start) and Enter: its page opens and the row is selected.
        self.jump_box = widgets.Text(placeholder="go to key, Enter", continuous_update=False,
                                     layout=widgets.Layout(width="16em", max_width="100%"))
        self.jump_box.observe(lambda c: self.jump_to(c.new), "value")
        # One box per kind, whether present or not (a step may add a kind): the absent are not shown.
        self._all_kind_boxes = {
            kind: widgets.Checkbox(value=kind in model.kinds, description=kind, indent=False,
                                   layout=widgets.Layout(width="auto"))
            for kind in KINDS
        }
        for kind, box in self._all_kind_boxes.items():
            box.observe(lambda c, kind=kind: self.model.show_kind(kind, c.new), "value")
        self.kind_boxes: dict[str, widgets.Checkbox] = {}
        self.make_table(
            # Short columns as wide as their longest text (never a cut "variabl|e"), the key takes the rest.
            [Column("", "2.6em", "button"), Column("key", "minmax(14em, 5fr)", "path"), Column("kind", "max-content"),
             Column("dtype", "max-content"), Column("shape", "max-content"), Column("size", "max-content")],
            page_size,
        )
        # (key, statistics, comparison, shadow): the comparison is long, whole in its tooltip.
        self.make_details(["selected_label", "stats_label", "comparison_label", "shadow_label"], tooltips=[2],
                          histogram_layout=widgets.Layout(max_width="100%", display="none"))
        self.histogram_box = widgets.ToggleButtons(options=HISTOGRAMS, value=model.histogram,
                                                   style={"button_width": "auto"},
                                                   tooltips=["The values, the EMA shadow overlaid",
                                                             "Raw minus EMA shadow, element by element"],
                                                   layout=widgets.Layout(display="none"))
        widgets.link((self.histogram_box, "value"), (model, "histogram"))
        # Beside the table when there is room (the row stays in view), under it when narrow.
        # The keys take the room; the details are as wide as their histogram, drawn at its own
        # size (DETAILS_FIGSIZE: a figure shrunk to fit would shrink its legend with it).
        self.details = widgets.VBox([*self.details_labels, self.histogram_box, self.histogram],
                                    layout=widgets.Layout(flex="0 1 400px", min_width="0", max_width="100%"))
        self.table.layout.flex = "3 1 520px"
        self.table.layout.min_width = "0"
        self.body = widgets.HBox([self.table, self.details],
                                 layout=widgets.Layout(flex_flow="row wrap", align_items="flex-start", grid_gap="0 1em"))
        self.controls = widgets.HBox([], layout=widgets.Layout(flex_flow="row wrap", align_items="center"))
        self.show(self.title, self.totals, self.controls, self.filter_message, self.message, self.body)
        self._on_checkpoint()
        model.observe(lambda _c: self._on_checkpoint(), "checkpoint")
        model.observe(self._on_kinds, "kinds")
        model.observe(self._show_histogram_choice, "details")  # raw − EMA: for a selection with a shadow
        self.follow_model()

    # --- model -> view -------------------------------------------------------------------
    def _on_checkpoint(self):
        model = self.model
        self.title.value = model.title_text()
        self.totals.value = model.totals_text()
        labels = model.kind_labels()
        self.kind_boxes = {kind: self._all_kind_boxes[kind] for kind in labels}
        for kind, label in labels.items():
            self.kind_boxes[kind].description = label
        self._show_step()
        self.controls.children = [self.step_box, self.filter_box, *self.kind_boxes.values(), self.sort_box, self.jump_box]

    def _show_step(self):
        options = self.model.step_options()
        self._syncing_steps = True
        try:
            if list(self.step_box.options) != options:
                self.step_box.options = options
            self.step_box.value = self.model.step
        finally:
            self._syncing_steps = False
        self.step_box.layout.display = None if len(options) > 1 else "none"

    def jump_to(self, text: str) -> bool:
        """Open the page of the key typed (exact, else the first starting with it or containing it) and select it."""
        index = self.model.find_row(text)
        if index is None:
            if (text or "").strip():
                set_message(self.message, f"No key shown matches {text.strip()!r} (the filter and kinds apply).",
                            "warning")
            return False
        self.table.go_to_row(index)
        self.model.selected = self.model.matches[index].key
        set_message(self.message, self.model.error)
        return True

    def _on_kinds(self, change):
        for kind, box in self._all_kind_boxes.items():
            box.value = kind in change.new

    def _show_histogram_choice(self, _change):
        self.histogram_box.layout.display = None if self.model.difference_values() is not None else "none"

    # --- view -> model -------------------------------------------------------------------
    def _on_step_box(self, change):
        if not self._syncing_steps and change.new is not None:
            self.model.step = change.new
