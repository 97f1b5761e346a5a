"""VariableMapper: choose which checkpoint key goes into which variable, then restore.

:class:`~ckptwidgets.widgets._mapper_model.MapperModel` owns a live
:class:`~ckptwidgets.plan.RestorePlan` and everything the view shows (rows, counts, code,
warnings, the last report); :class:`VariableMapper` is the view. Edits go both ways: a
dropdown assigns a key in the plan, and ``mapper.plan.assign(...)`` from code updates the row.

Example
-------
>>> from ckptwidgets import VariableMapper
>>> mapper = VariableMapper("my_test_model.ckpt", [v1, v2], session=sess)   # doctest: +SKIP
>>> mapper.plan.unassign("v2")                                               # doctest: +SKIP
>>> mapper.model.warning                                                     # doctest: +SKIP
"1 variable has no checkpoint key and will be initialised: 'v2'."
>>> mapper.restore()                  # initialises v2 too (the checkbox, on in graph mode)  # doctest: +SKIP
"""
from __future__ import annotations

import ipywidgets as widgets

from .._text.filter import NAME_FILTER_SYNTAX
from ..errors import CheckpointError, PlanError
from ..plan import RestorePlan
from ._mapper_model import LET_RULES_DECIDE, OTHER, SHOW, STYLES, MapperModel
from ._base import WidgetRoot, message_line
from ._table import Column, PagedTable, PAGE_SIZE
from ._text import CSS_CLASSES, download_link, label_style, pre_html, text_label

__all__ = ["VariableMapper"]


class VariableMapper(WidgetRoot):
    """Map model variables to checkpoint keys, preview the code, and restore.

    Parameters
    ----------
    ckpt_or_path : Checkpoint or str or os.PathLike
    variables : list, tuple, dict, tf.Module / Keras model or torch.nn.Module
    session : tf.compat.v1.Session, optional
        Needed for graph-mode variables.
    rules : str or dict, optional
        ``"ckpt_scope/ -> var_scope/"`` lines, or an ``init_from_checkpoint`` assignment map.
    prefer_ema : bool
    page_size : int

    Attributes
    ----------
    model : MapperModel
    plan : RestorePlan
        The live plan: ``mapper.plan.assign(name, key)`` updates the view.

    Examples
    --------
    >>> mapper = VariableMapper(prefix, [v1, v2], session=sess)   # doctest: +SKIP
    >>> mapper.plan.mapping                                      # doctest: +SKIP
    {'v1': 'v1', 'v2': 'v2'}
    >>> report = mapper.restore()                                # doctest: +SKIP
    """

    def __init__(self, ckpt_or_path, variables, session=None, rules=None, prefer_ema=False,
                 page_size: int = PAGE_SIZE, match: str = "name", **kwargs):
        # preview=False: the code panel starts closed; opening it generates the code.
        super().__init__(MapperModel(ckpt_or_path, variables, session=session, rules=rules, prefer_ema=prefer_ema,
                                     preview=False, match=match),
                         message="message", message_kind="message_kind", **kwargs)
        model = self.model
        if model.plan is None:
            self.show_message_only()
            return
        self._syncing = False
        bold = label_style(font_weight="bold")
        self.title = text_label(model.title_text(), style=bold)
        self.counts = text_label(model.counts_text())

        # --- matching controls
        self.filter_box = widgets.Text(placeholder="filter variables: words, !word to exclude",
                                       tooltip=f"Filter variable names: {NAME_FILTER_SYNTAX}",
                                       layout=widgets.Layout(width="22em"))
        widgets.link((self.filter_box, "value"), (model, "filter_text"))
        self.filter_message = message_line(model, "filter_error")
        self.show_box = widgets.Dropdown(options=SHOW, value=model.show, description="show",
                                         style={"description_width": "initial"},
                                         layout=widgets.Layout(width="13em"))
        widgets.link((self.show_box, "value"), (model, "show"))
        self.prefer_ema_box = widgets.ToggleButton(value=model.prefer_ema, description="prefer EMA ★",
                                                   tooltip="Read each variable's ExponentialMovingAverage shadow")
        widgets.link((self.prefer_ema_box, "value"), (model, "prefer_ema"))
        self.automap_button = widgets.Button(description="Auto-map", icon="magic",
                                             tooltip="Match again from names, rules and prefer EMA; drops manual edits")
        self.automap_button.on_click(lambda _b: model.automap())
        # Shown while a row keeps a key picked by hand (marked in its status): rules skip those rows.
        self.let_rules_button = widgets.Button(description=LET_RULES_DECIDE, icon="undo",
                                               tooltip="Drop the keys picked by hand (rows marked ✎ by hand): "
                                                       "the rules, names and prefer EMA decide them again",
                                               layout=widgets.Layout(display="none"))
        self.let_rules_button.on_click(lambda _b: model.let_rules_decide())
        self.rules_box = widgets.Textarea(
            value=model.rules_text, placeholder="rules, one per line:  ckpt_scope/ -> var_scope/",
            continuous_update=False, rows=3, layout=widgets.Layout(width="36em", max_width="100%"),
        )
        widgets.link((self.rules_box, "value"), (model, "rules_text"))
        # A textarea takes Enter as a new line and applies on blur: one rule per Enter here,
        # and a button for the box (clicking it blurs the box, which applies it).
        self.rule_box = widgets.Text(placeholder="add a rule and press Enter:  ckpt_scope/ -> var_scope/",
                                     continuous_update=False, layout=widgets.Layout(width="30em", max_width="100%"))
        self.rule_box.observe(self._rule_typed, "value")
        self.apply_rules_button = widgets.Button(description="Apply rules", icon="check",
                                                 tooltip="Apply the rules box now (leaving it applies it too)")
        self.apply_rules_button.on_click(lambda _b: model.apply_rules())
        self.rules_message = message_line(model, "rules_error")

        # --- the table: fixed rows, values change
        self.table = PagedTable(
            # The key column fits a shortened key (KEY_LABEL_CHARS) whole at its narrowest.
            [Column("variable", "minmax(7em, 3fr)", "path"), Column("shape", "minmax(6.5em, 1fr)"),
             Column("checkpoint key", "minmax(18em, 4fr)", "dropdown"), Column("transform", "minmax(4em, 8em)"),
             Column("status", "minmax(7em, 9.5em)")],
            page_size=page_size,
        )
        self.key_dropdowns = self.table.column("checkpoint key")
        for row, dropdown in enumerate(self.key_dropdowns):
            dropdown.observe(lambda c, row=row: self._on_dropdown(row, c.new), "value")
        self.table.observe(lambda _c: self._fill_page(), "page")

        # --- any key by hand
        self.assign_variable = widgets.Text(placeholder="variable", layout=widgets.Layout(width="16em"))
        self.assign_key = widgets.Combobox(placeholder="any checkpoint key", ensure_option=False,
                                           layout=widgets.Layout(width="24em"))
        self.assign_key.observe(lambda c: self._suggest(c.new), "value")
        self.assign_button = widgets.Button(description="Assign", tooltip="Read this key into this variable")
        self.assign_button.on_click(lambda _b: self.assign_typed())

        # --- code preview
        self.style_buttons = widgets.ToggleButtons(options=STYLES, value=model.style,
                                                   style={"button_width": "auto"})
        widgets.link((self.style_buttons, "value"), (model, "style"))
        self.code = widgets.HTML(pre_html(model.code, max_height="18em"))
        # All of the code, as a file: a data: link (no JavaScript, so it works in every front end;
        # a copy button would need a script, which ipywidgets' HTML does not run).
        self.code_download = widgets.HTML("")
        # On every change of what the code says (its first lines may stay the same).
        model.observe(lambda c: self._show_code(), ["code", "revision", "style", "preview"])

        # --- restore
        self.warning = text_label("", style=label_style(text_color="#8a5300"))
        self.initialize_box = widgets.Checkbox(value=model.initialize_unmapped, description="initialise them",
                                               indent=False, layout=widgets.Layout(width="auto"),
                                               disabled=not model.graph_mode)
        widgets.link((self.initialize_box, "value"), (model, "initialize_unmapped"))
        self.restore_button = widgets.Button(description="Restore", icon="download", button_style="primary")
        self.restore_button.on_click(self._restore_clicked)
        # Right of the button: the "done/total" description at its own width, then a short bar.
        self.progress = widgets.IntProgress(value=0, min=0, max=1, style={"description_width": "initial"},
                                            layout=widgets.Layout(display="none", width="16em", margin="0 0 0 0.6em"),
                                            tooltip="tensors read")
        model.observe(self._on_progress, "progress")
        # --- save what the plan maps as a checkpoint of its own
        self.save_path = widgets.Text(placeholder="mapped/model.ckpt, or .safetensors, .pt",
                                      tooltip="Where to write: a TF checkpoint prefix, a .safetensors or .pt file, "
                                      "or (for a Keras model) its .weights.h5",
                                      layout=widgets.Layout(width="24em"))
        self.save_overwrite = widgets.Checkbox(value=False, description="overwrite", indent=False,
                                               layout=widgets.Layout(width="auto"))
        self.save_button = widgets.Button(description="Save as checkpoint...", icon="save",
                                          tooltip="Write what the plan maps, under the variables' names",
                                          layout=widgets.Layout(width="auto"))
        self.save_button.on_click(self._save_clicked)
        self.report = widgets.HTML("")
        self.report.add_class(CSS_CLASSES["report"])
        self.full_report_button = widgets.ToggleButton(value=False, description="full report", icon="list",
                                                       tooltip="Every variable restored, initialised and left alone",
                                                       layout=widgets.Layout(display="none", width="auto"))
        self.full_report_button.observe(lambda _c: self._on_report(None), "value")
        self.report_download = widgets.HTML("")
        model.observe(self._on_report, ["report", "report_current", "message_kind"])

        model.observe(lambda _c: self._refresh(), "revision")
        model.observe(lambda _c: self._on_rows(), "rows")
        # A new filter starts at its first page; rows leaving by status keep the page.
        model.observe(lambda _c: setattr(self.table, "page", 0), ["filter_text", "show"])

        matching = widgets.VBox([
            widgets.HBox([self.filter_box, self.show_box, self.prefer_ema_box, self.automap_button, self.let_rules_button],
                         layout=widgets.Layout(flex_flow="row wrap", align_items="center")),
            self.filter_message,
            widgets.HBox([self.rules_box, self.apply_rules_button],
                         layout=widgets.Layout(flex_flow="row wrap", align_items="flex-start")),
            self.rule_box, self.rules_message,
        ])
        by_hand = widgets.HBox([text_label("assign by hand:"), self.assign_variable, self.assign_key, self.assign_button],
                               layout=widgets.Layout(flex_flow="row wrap", align_items="center"))
        restoring = widgets.VBox([
            widgets.HBox([self.warning, self.initialize_box], layout=widgets.Layout(align_items="center")),
            widgets.HBox([self.restore_button, self.progress],
                         layout=widgets.Layout(align_items="center", justify_content="flex-start")),
            widgets.HBox([self.full_report_button, self.report_download],
                         layout=widgets.Layout(flex_flow="row wrap", align_items="center")),
            self.report,
            widgets.HBox([self.save_button, self.save_path, self.save_overwrite],
                         layout=widgets.Layout(flex_flow="row wrap", align_items="center")),
        ])
        self.code_panel = widgets.VBox([self.style_buttons, self.code_download, self.code])
        self.code_accordion = widgets.Accordion([self.code_panel], titles=("code",), selected_index=None)
        widgets.dlink((self.code_accordion, "selected_index"), (model, "preview"), transform=lambda i: i is not None)
        self.show(self.title, self.counts, matching, self.table, by_hand, self.code_accordion, restoring, self.message)
        self._show_code()
        self._refresh(fill=False)
        self._on_rows()

    # --- public -------------------------------------------------------------------------
    @property
    def plan(self) -> RestorePlan:
        """The live plan (the same object the model holds)."""
        return self.model.plan

    def restore(self, initialize_unmapped=None):
        """Do what the Restore button does and return the report (errors also raise)."""
        return self.model.restore(initialize_unmapped=initialize_unmapped)

    def assign_typed(self) -> None:
        """Assign the key typed in the key box to the variable typed in the variable box."""
        self.model.choose_typed(self.assign_variable.value, self.assign_key.value)  # says why not

    # --- model -> view ------------------------------------------------------------------
    def _on_rows(self):
        self.table.set_page_count(len(self.model.rows))
        self._fill_page()

    def _refresh(self, fill=True):
        self.counts.value = self.model.counts_text()
        self.warning.value = self.model.warning
        self.warning.tooltip = self.model.warning or None
        self.initialize_box.layout.visibility = "visible" if self.model.initialize_applies else "hidden"
        self.let_rules_button.layout.display = None if self.model.manual_picks else "none"
        if fill:
            self._fill_page()

    def _fill_page(self):
        model = self.model
        names = model.rows[self.table.page_slice()]
        self._syncing = True  # option/value updates below are not user choices
        # The transform column takes room only when some variable reads a transformed key.
        self.table.show_column("transform", bool(model.plan.transforms))
        try:
            for row in range(self.table.page_size):
                if row >= len(names):
                    self.table.clear_row(row)
                    dropdown = self.key_dropdowns[row]
                    dropdown.options = ()
                    continue
                name = names[row]
                texts, tooltips = model.row_texts(name)
                transform, why = model.transform_text(name)  # the column after the key's
                self.table.set_row(row, texts[:2] + [transform] + texts[2:], tooltips=tooltips[:2] + [why] + tooltips[2:])
                dropdown = self.key_dropdowns[row]
                options = tuple(model.options(name))
                if tuple(dropdown.options) != options:
                    dropdown.options = options
                dropdown.value = model.dropdown_value(name)  # a key, "(none)" or "(layout mismatch)"
                dropdown.tooltip = model.option_tooltip(name)  # the label may be shortened
        finally:
            self._syncing = False

    def _on_progress(self, change):
        done, total = change.new
        self.progress.layout.display = None if total else "none"
        self.progress.max = max(total, 1)
        self.progress.value = done
        self.progress.description = f"{done}/{total}"
        # A description's title is the tooltip, "null" when None: say what the numbers are.
        self.progress.tooltip = f"{done} of {total} tensors read"

    def _on_report(self, change):
        model = self.model
        full = self.full_report_button.value
        text = model.full_report_text() if full else model.report_text()
        current = model.report_current
        if text and not current and model.message_kind == "error":
            text = ""  # a refused restore: nothing above the reason
        elif text and not current:
            text = "Out of date: the plan changed since this restore.\n" + text
        self.report.value = pre_html(text, max_height="24em" if full else None) if text else ""
        # A report about another plan is greyed out; after a refusal it is gone.
        if current or not text:
            self.report.remove_class(CSS_CLASSES["stale"])
        else:
            self.report.add_class(CSS_CLASSES["stale"])
        shown = bool(text) and current
        self.full_report_button.layout.display = None if shown else "none"
        self.report_download.value = (download_link(model.full_report_text(), "restore-report.txt", "download the report")
                                      if shown else "")
        self.report_download.layout.display = None if shown else "none"

    def _show_code(self):
        model = self.model
        self.code.value = pre_html(model.code, max_height="18em")
        if not model.preview:
            self.code_download.value = ""
            return
        # The whole code (the preview shows its first lines) in a file, as generated now.
        self.code_download.value = download_link(model.full_code(), f"restore_{model.style}.py",
                                                 "download all the code (.py)", mime="text/x-python")

    def _rule_typed(self, change):
        if change.new.strip() and self.model.add_rule(change.new):
            self.rule_box.value = ""
            self.rules_box.value = self.model.rules_text

    # --- view -> model ------------------------------------------------------------------
    def _on_dropdown(self, row: int, value):
        if self._syncing:
            return
        names = self.model.rows[self.table.page_slice()]
        if row >= len(names):
            return
        name = names[row]
        if value == OTHER:
            # Any key, also one outside the ~50 offered: typed into the key box below.
            self.assign_variable.value = name
            self.assign_key.value = self.model.current_key(name) or ""
            self._fill_page()
            return
        try:
            self.model.choose(name, value)
        except PlanError:
            self._fill_page()

    def _suggest(self, text):
        self.assign_key.options = tuple(self.model.key_suggestions(text))

    def _save_clicked(self, _button):
        try:
            self.model.save_as(self.save_path.value, overwrite=self.save_overwrite.value)
        except CheckpointError:
            pass  # shown by the model's message

    def _restore_clicked(self, _button):
        try:
            self.model.restore()
        except CheckpointError:
            pass  # shown by the model's message
