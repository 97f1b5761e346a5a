"""MapperModel: the state and logic behind :class:`~ckptwidgets.VariableMapper`.

It owns a live :class:`~ckptwidgets.plan.RestorePlan` and everything the view shows (rows,
counts, code, warnings, the last report), as traitlets a view links to; it imports no
ipywidgets, so every rule of the mapper runs (and is tested) without a browser. Edits go
both ways: :meth:`MapperModel.choose` assigns a key in the plan, and ``model.plan.assign``
from code bumps ``revision``, which views refresh on. What the mapper says (statuses, option
labels, messages) is in :mod:`~ckptwidgets.widgets._mapper_text`; restoring and saving the
plan in :mod:`~ckptwidgets.widgets._mapper_restore`.

Example
-------
>>> model = MapperModel("my_test_model.ckpt", [v1, v2])        # doctest: +SKIP
>>> model.plan.unassign("v2"); model.warning                   # doctest: +SKIP
"1 variable has no checkpoint key and will keep its current value: 'v2'."
"""
from __future__ import annotations

from traitlets import Any, Bool, Dict, Enum, Instance, Int, Tuple, Unicode, observe

from .._text.filter import Filter, parse_filter
from .._text.format import count_of, first_lines, format_shape, short_labels, text_table
from .._planning.cross import KeyLayouts
from .._planning.rules import format_rules, parse_rules
from .._planning.variables import is_torch_module
from ..codegen import STYLES
from ..errors import CheckpointError, PlanError
from ..plan import RestorePlan, plan_restore, variable_name
from ..reader import Checkpoint, open_checkpoint
from ._mapper_restore import RestoreActions
from ._mapper_text import (CANDIDATES, KEY_LABEL_CHARS, LAYOUT, LET_RULES_DECIDE, MANUAL_MARK, NONE, NOT_PROBLEMS,
                           OTHER, PREVIEW_LINES, SHOW, STATUS_TEXT, counts_text, idle_rules, names_text, option_label,
                           replan_message, unmapped_warning)

__all__ = ["MapperModel", "STYLES", "SHOW", "STATUS_TEXT", "CANDIDATES", "PREVIEW_LINES", "NONE", "OTHER", "LAYOUT",
           "KEY_LABEL_CHARS", "MANUAL_MARK", "LET_RULES_DECIDE"]


class MapperModel(RestoreActions):
    """State and logic of :class:`VariableMapper`, usable without widgets.

    Parameters
    ----------
    ckpt_or_path : Checkpoint or str or os.PathLike
    variables : list, tuple, dict, tf.Module / Keras model or torch.nn.Module
        What :func:`ckptwidgets.plan_restore` takes. For a torch module the rows are its
        ``state_dict`` names, a rule side ending in ``.`` is a scope, and the code is torch code
        (``module`` in scope) whatever the style.
    session : tf.compat.v1.Session, optional
        For graph-mode variables.
    rules : str or dict, optional
        Rules text (``"ckpt_scope/ -> var_scope/"`` per line) or an assignment map.
    prefer_ema : bool

    Rules and ``prefer_ema`` drive the automatic matching: changing them re-plans and keeps
    the manual edits made since; :meth:`automap` re-plans and drops manual edits.

    Examples
    --------
    >>> model = MapperModel("my_test_model.ckpt", [v1, v2])        # doctest: +SKIP
    >>> model.counts                                               # doctest: +SKIP
    {'variables': 2, 'mapped': 2, 'unmapped': 0, 'problems': 0, 'unused': 0}
    """

    checkpoint = Instance(Checkpoint, allow_none=True, read_only=True, help="The checkpoint; None if it cannot be opened.")
    plan = Instance(RestorePlan, allow_none=True, read_only=True, help="The live restore plan (edit it directly or via the view).")
    session = Any(None, help="tf.compat.v1.Session holding graph-mode variables, or None (eager).")
    rules_text = Unicode("", help="Rules, one 'ckpt_scope/ -> var_scope/' per line; '#' starts a comment line.")
    rules = Dict(read_only=True, help="The parsed rules used by the automatic matching.")
    rules_error = Unicode("", read_only=True, help="Why rules_text was not applied ('' when it was).")
    prefer_ema = Bool(False, help="Prefer each variable's ExponentialMovingAverage shadow when there is one.")
    filter_text = Unicode(
        "", help="The filter (ckptwidgets._text.filter) on variable names: words every shown name contains "
        "(case-insensitive), !word to exclude, \"quoted words\"; names have no kind, so no kind: terms."
    )
    filter_error = Unicode("", read_only=True, help="Why filter_text was not applied ('' when it was).")
    show = Enum(SHOW, default_value="all", help="Which rows to show, by status.")
    rows = Tuple(read_only=True, help="Names of the variables passing the filter, in plan order.")
    style = Enum(STYLES, default_value="saver", help="Style of the generated code (plan.to_code(style)).")
    preview = Bool(True, help="Keep `code` up to date; a view turns it off while the code is hidden.")
    code = Unicode("", read_only=True, help=f"The first {PREVIEW_LINES} lines of plan.to_code(style).")
    counts = Dict(read_only=True, help="variables, mapped, unmapped, problems, unused entries.")
    warning = Unicode("", read_only=True, help="What a restore now would leave uninitialised or untouched.")
    graph_mode = Bool(False, read_only=True, help="True when the variables live in a tf.Graph (need a session).")
    initialize_unmapped = Bool(help="Run the initializers of unmapped variables when restoring (graph mode).")
    message = Unicode("", read_only=True, help="A message for the user ('' for none).")
    message_kind = Enum(("error", "warning", "info", ""), default_value="", read_only=True, help="Kind of message.")
    manual_picks = Tuple(read_only=True, help="Names of the variables whose key (or '(none)') was picked by hand: "
                         "rules and prefer EMA leave them alone until let_rules_decide() (the 'Let rules decide' button).")
    revision = Int(0, read_only=True, help="Incremented after every change of the plan (views refresh on it).")

    def __init__(self, ckpt_or_path, variables, session=None, rules=None, prefer_ema=False, match="name", **kwargs):
        self._match = match  # plan_restore's match: "order" pairs a Keras 2 checkpoint's layers by position
        self._ready = False  # derived state is computed once, at the end of __init__
        super().__init__(session=session, **kwargs)
        self._options_cache: dict = {}
        self._layouts = None  # KeyLayouts of the plan: which keys fit a row through a layout transform
        self._filter = Filter()  # the last filter that worked, kept while the box holds a bad one
        self._mapping: dict = {}  # plan.mapping copies on every access: one copy per edit
        self._auto: dict = {}
        self._auto_transforms: dict = {}  # {name: (Transform, keys)} the automatic matching gave
        self._problems: dict = {}
        self._variables = variables
        self._dotted = is_torch_module(variables)  # torch names: a rule side ending in "." is a scope
        self._code_rules, self._code_text = None, None
        self._adding = False
        self._batch = False  # let_rules_decide edits many rows and refreshes once
        self._chosen: dict = {}  # {name: key or None} chosen in the widget since the last Auto-map
        try:
            self.set_trait("checkpoint", open_checkpoint(ckpt_or_path))
        except CheckpointError as error:
            self._say(str(error))
            return
        if isinstance(rules, dict):
            # A dict may map keys to variables ({key: variable}), which text cannot hold: the
            # box shows their names, and the dict itself is used while the text is unchanged.
            self._code_rules = dict(rules)
            rules = self._code_text = format_rules(
                {k: v if isinstance(v, str) else variable_name(v) for k, v in rules.items()}
            )
        elif rules is not None and not isinstance(rules, str):
            raise PlanError(f"rules must be text or a dict, not {type(rules).__name__}: {rules!r}")
        self.rules_text = rules or ""
        self.prefer_ema = bool(prefer_ema)
        self._replan(keep_edits=False)
        # One variable tells: restore() refuses plans mixing graphs, or graph and eager.
        first = next(iter(self.plan.infos.values()), None)
        self.set_trait("graph_mode", first is not None and first.graph is not None)
        self.initialize_unmapped = self.graph_mode
        self._ready = True
        self._on_plan_edit()

    # --- messages ------------------------------------------------------------------------
    def _say(self, text: str, kind: str = "error") -> None:
        self.set_trait("message_kind", kind if text else "")
        self.set_trait("message", text)

    # --- planning ------------------------------------------------------------------------
    def _parsed_rules(self):
        if self._code_rules is not None and self.rules_text == self._code_text:
            return self._code_rules
        return parse_rules(self.rules_text, dotted=self._dotted)

    def _replan(self, keep_edits: bool, why: str | None = None) -> bool:
        """Build a new plan from rules and prefer_ema; re-apply manual edits if asked.

        ``why`` (``"rules"``, ``"prefer_ema"``, ``"automap"``) makes it say in ``message``
        what changed: keys changed, manual edits kept over the rules, no shadows to prefer.
        """
        before = dict(self._mapping) if self.plan is not None else None
        try:
            rules = self._parsed_rules()
            plan = plan_restore(self.checkpoint, self._variables, rules=rules or None, prefer_ema=self.prefer_ema,
                                match=self._match)
        except PlanError as error:
            self.set_trait("rules_error", str(error))
            if self.plan is not None:
                return False  # keep the current plan until the rules are fixed
            # The first plan: without the rules (a second PlanError is about the variables
            # themselves, a programming error, and propagates).
            rules = {}
            plan = plan_restore(self.checkpoint, self._variables, prefer_ema=self.prefer_ema, match=self._match)
        else:
            self.set_trait("rules_error", "")
        self.set_trait("rules", dict(rules))
        edits = self.manual_edits() if keep_edits and self.plan is not None else {}
        transformed = {n: self.plan.transform_of(n) for n in edits} if edits else {}
        self._chosen = {n: k for n, k in self._chosen.items() if n in edits}
        auto = plan.mapping
        auto_transforms = {n: plan.transform_of(n) for n in plan.transforms}
        kept_over = {n: auto.get(n) for n, key in edits.items() if auto.get(n) != key}
        for name, key in edits.items():
            self._assign(plan, name, key, transformed.get(name))
        if self.plan is not None:
            self.plan.on_change(self._on_plan_edit, remove=True)
        self._auto, self._auto_transforms = auto, auto_transforms
        self._options_cache.clear()
        self._layouts = None
        self.set_trait("plan", plan)
        plan.on_change(self._on_plan_edit)
        self._on_plan_edit()
        if why is not None and before is not None:
            self._say(*replan_message(
                why, before, self._mapping, self.plan.variables, rules=self.rules,
                idle=self.idle_rules() if why == "rules" else {}, prefer_ema=self.prefer_ema,
                has_shadows=bool(self.checkpoint.ema_shadows), kept_over=kept_over,
            ))
        return True

    def idle_rules(self) -> dict:
        """``{(checkpoint side, variable side): why}`` for each rule that maps no variable
        (:func:`~ckptwidgets.widgets._mapper_text.idle_rules`)."""
        if self.plan is None:
            return {}
        return idle_rules(self.rules, self.plan.variables, self.checkpoint, dotted=self._dotted)

    def apply_rules(self) -> bool:
        """Apply ``rules_text`` now (the Apply button; Enter in the rule box); False if it does not parse."""
        if self.checkpoint is None:
            return False
        return self._replan(keep_edits=True, why="rules")

    def add_rule(self, line: str) -> bool:
        """Add one ``ckpt_scope/ -> var_scope/`` line to the rules and apply them (the rule box's Enter).

        A rule that does not parse, or names no variable, is not added: ``rules_error`` says why.
        """
        line = (line or "").strip()
        if not line:
            return False
        try:
            parse_rules(line, dotted=self._dotted)
        except PlanError as error:
            self.set_trait("rules_error", str(error))
            return False
        previous = self.rules_text
        text = (previous.rstrip("\n") + "\n" + line) if previous.strip() else line
        self._adding = True
        try:
            self.rules_text = text
        finally:
            self._adding = False
        if not self._replan(keep_edits=True, why="rules"):
            self._adding = True
            try:
                self.rules_text = previous  # the error stays in rules_error
            finally:
                self._adding = False
            return False
        return True

    @staticmethod
    def _assign(plan, name: str, key, transformed) -> None:
        """Give ``name`` ``key`` (None: no key), with ``transformed`` = ``(Transform, keys)`` when
        it reads ``key`` through a transform."""
        if key is None:
            plan.unassign(name)
        elif transformed is not None and transformed[1][0] == key:
            plan.assign(name, transformed[1], transform=transformed[0])
        else:
            plan.assign(name, key)

    def manual_edits(self) -> dict:
        """``{name: key or None}`` edited by hand: where the plan differs from its automatic
        matching (its key, or the transform it reads it through), and keys chosen in the
        widget that happen to equal it (a raw key chosen by hand stays when prefer EMA turns on)."""
        plan = self.plan
        mapping = plan.mapping
        edits = {n: mapping.get(n) for n in plan.variables if mapping.get(n) != self._auto.get(n)}
        for name in set(plan.transforms) | set(self._auto_transforms):
            if name not in edits and plan.transform_of(name) != self._auto_transforms.get(name):
                edits[name] = mapping.get(name)
        for name, key in self._chosen.items():
            if name not in edits and mapping.get(name) == key:
                edits[name] = key
        return edits

    def let_rules_decide(self, names=None) -> int:
        """Drop the keys picked by hand (of ``names``, default all): the rules, names and
        prefer EMA decide those rows again (the 'Let rules decide' button). Returns how many
        rows changed back; other manual picks stay."""
        if self.plan is None:
            return 0
        picks = self.manual_edits()
        names = list(picks) if names is None else [n for n in names if n in picks]
        self._batch = True
        try:
            for name in names:
                self._chosen.pop(name, None)
                self._assign(self.plan, name, self._auto.get(name), self._auto_transforms.get(name))
        finally:
            self._batch = False
        self._on_plan_edit()
        mapped = f"{len(self._mapping):,} of {len(self.plan.variables):,} variables mapped"
        self._say(f"{LET_RULES_DECIDE}: {count_of(len(names), 'key')} picked by hand dropped, the rules decide {'it' if len(names) == 1 else 'them'} again; "
                  f"{mapped}." if names else f"{LET_RULES_DECIDE}: no key was picked by hand; {mapped}.", "info")
        return len(names)

    def automatic_key(self, name: str) -> str | None:
        """The key rules, names and prefer EMA give ``name`` (what it reads without a manual pick)."""
        return self._auto.get(name)

    def automap(self) -> None:
        """Match again from the rules and prefer_ema, dropping manual edits (the Auto-map button)."""
        if self.checkpoint is not None:
            chosen, self._chosen = self._chosen, {}
            if not self._replan(keep_edits=False, why="automap"):
                self._chosen = chosen

    @observe("rules_text", "prefer_ema")
    def _on_inputs(self, change):
        if self._ready and not self._adding:
            self._replan(keep_edits=True, why="rules" if change.name == "rules_text" else "prefer_ema")

    # --- derived state -------------------------------------------------------------------
    def _on_plan_edit(self):
        if not self._ready or self._batch:
            return
        plan = self.plan
        self._mapping = plan.mapping
        problems = plan.problems
        unmapped = plan.unmapped
        self.set_trait("counts", {
            "variables": len(plan.variables),
            "mapped": len(self._mapping),
            "unmapped": len(unmapped),
            "problems": len(problems),
            "unused": len(plan.unused),
        })
        self._problems = {}
        for problem in problems:
            self._problems.setdefault(problem.variable, problem)
        warning = unmapped_warning(unmapped, self.graph_mode, self.initialize_unmapped,
                                   plan.hints if unmapped else [])
        self.set_trait("warning", warning)
        self.set_trait("manual_picks", tuple(self.manual_edits()))
        self._refilter()
        self._regenerate()
        if self.report_current:  # the last report no longer describes what a restore would do
            self.set_trait("report_current", False)
            self.set_trait("progress", (0, 0))
        self.set_trait("revision", self.revision + 1)

    @observe("initialize_unmapped")
    def _on_initialize(self, change):
        self._on_plan_edit()

    @observe("filter_text", "show")
    def _refilter(self, change=None):
        if not self._ready:
            return
        try:
            parsed = parse_filter(self.filter_text)
            names = parsed.names(self.plan.variables)  # a kind: term is a PlanError here
        except PlanError as error:
            # Say why, and keep filtering with the last filter that worked.
            self.set_trait("filter_error", str(error))
            names = self._filter.names(self.plan.variables)
        else:
            self.set_trait("filter_error", "")
            self._filter = parsed
        if self.show != "all":
            status = self.plan.status
            if self.show == "problems":
                names = [n for n in names if status(n) not in NOT_PROBLEMS]
            else:
                names = [n for n in names if status(n) == self.show]
        self.set_trait("rows", tuple(names))

    @observe("style", "preview")
    def _regenerate(self, change=None):
        # Generating code is O(variables): skipped while nobody looks at it.
        if not self._ready or not self.preview:
            return
        try:
            code = self.plan.to_code(self.style)
        except CheckpointError as error:  # e.g. a key feeding two variables in a dict var_list
            code = f"# Cannot generate {self.style!r} code for this plan: {error}"
        self.set_trait("code", first_lines(code, PREVIEW_LINES, "lines: plan.to_code(style) gives all"))

    @property
    def variables(self):
        """What the mapper plans into, as it was given: variables, a Keras model, a torch module."""
        return self._variables

    @property
    def initialize_applies(self) -> bool:
        """True when ``initialize_unmapped`` changes what a restore does: unmapped graph variables."""
        return bool(self.warning) and self.graph_mode

    # --- per-row information -------------------------------------------------------------
    def current_key(self, name: str) -> str | None:
        """The key ``name`` reads in the plan, or None."""
        return self._mapping.get(name)

    def describe(self, name: str) -> tuple:
        """``(shape text, dtype)`` of a variable of the plan."""
        shape, dtype = self.plan.describe(name)
        return format_shape(shape), dtype

    def status_text(self, name: str) -> tuple[str, str | None]:
        """``(status shown in the row, tooltip)``: the problem's message for a problem; a key
        picked by hand is marked :data:`MANUAL_MARK`, and its tooltip says what that means."""
        status = self.plan.status(name)
        problem = self._problems.get(name)
        text, why = STATUS_TEXT.get(status, status), (problem.message if problem is not None else None)
        if name in self.manual_picks:
            auto = self._auto.get(name)
            text += f" · {MANUAL_MARK}"
            why = ((why + " ") if why else "") + (
                f"Picked by hand: rules and prefer EMA do not change this row (they give "
                f"{repr(auto) if auto else 'no key'}); '{LET_RULES_DECIDE}' clears the picks.")
        return text, why

    def transform_text(self, name: str) -> tuple[str, str | None]:
        """``(the transform column's text, tooltip)``: '' when the variable reads its key as it is,
        else the transform's name and, in the tooltip, what it reads."""
        found = self.plan.transform_of(name)
        if found is None:
            return "", None
        transform, keys = found
        return transform.name, f"{name} = {transform.name}({', '.join(keys)})"

    def row_texts(self, name: str) -> tuple[list[str], list[str | None]]:
        """``(texts, tooltips)`` of the text cells of a row: variable, shape and dtype, status."""
        shape, dtype = self.describe(name)
        status, why = self.status_text(name)
        return [name, f"{shape} {dtype}", status], [name, None, why or status]

    def _key_layouts(self) -> KeyLayouts:
        if self._layouts is None:
            self._layouts = KeyLayouts(self.checkpoint, self.plan.infos)
        return self._layouts

    def _layout_problem(self, name: str):
        """The ``layout_mismatch`` problem of a row that reads no key, else None."""
        problem = self._problems.get(name)
        if problem is not None and problem.reason == "layout_mismatch" and name not in self._mapping:
            return problem
        return None

    def dropdown_value(self, name: str) -> str:
        """The value the key dropdown of ``name`` shows: its key, :data:`LAYOUT` while its layout
        cannot be decided and it reads no key (so that "(none)" can be picked), else :data:`NONE`."""
        current = self._mapping.get(name)
        if current is not None:
            return current
        return LAYOUT if self._layout_problem(name) is not None else NONE

    def options(self, name: str) -> list[tuple[str, str]]:
        """``(label, value)`` pairs for the key dropdown of ``name``; at most ~53 of them.

        "(none)" first (after "(layout mismatch)" while the row's layout cannot be decided and
        it reads no key), then the current key, then up to :data:`CANDIDATES` candidates
        (compatible shape and dtype first, EMA shadows marked ★, incompatible ones ✗), and
        "(other key…)" to type any key. Across frameworks a key is compatible when the layout
        transform a pick of it would take makes the variable's shape (a Keras kernel for a
        torch weight through ``transpose``), and those keys come first.
        """
        shape, dtype = self.plan.describe(name)
        current = self._mapping.get(name)
        layouts = self._key_layouts()
        # Candidates do not depend on edits except for the current key, which goes first:
        # cached per variable (computed without it) until the plan is rebuilt.
        if name not in self._options_cache:
            entries = list(self.plan.candidates(name, limit=CANDIDATES))
            if layouts.crosses:
                fitting = [self.checkpoint.find(k) for k in layouts.fitting(name)]
                keys = {e.key for e in fitting}
                entries = fitting + [e for e in entries if e.key not in keys]
            self._options_cache[name] = entries
        entries = self._options_cache[name]
        if current is not None and not any(e.key == current for e in entries):
            entries = [self.checkpoint.find(current) or current] + entries
        elif current is not None:
            entries = [e for e in entries if e.key == current] + [e for e in entries if e.key != current]
        labels = short_labels([e if isinstance(e, str) else e.key for e in entries], KEY_LABEL_CHARS)
        options = []
        for entry in entries:
            if isinstance(entry, str):  # a key typed by hand that the checkpoint lacks
                options.append((f"✗ {labels[entry]}  (not in checkpoint)", entry))
            else:
                fitting = layouts.fits(name, entry.key) if layouts.crosses else None
                options.append((option_label(entry, shape, dtype, labels[entry.key], fitting=fitting), entry.key))
        head = [("(layout mismatch)", LAYOUT)] if self._layout_problem(name) is not None else []
        return head + [("(none)", NONE)] + options + [("(other key…)", OTHER)]

    def option_tooltip(self, name: str) -> str:
        """All of what the key dropdown of ``name`` shows, whole: its key with shape and dtype
        (the option's label may be shortened), or what "(none)" means."""
        current = self._mapping.get(name)
        problem = self._layout_problem(name)
        if problem is not None:
            return (f"(layout mismatch): {problem.message}. Pick a key here, or (none) to leave this variable "
                    "as it is")
        if current is None:
            return "(none): no key is read into this variable; pick one here, or type any key below"
        entry = self.checkpoint.find(current)
        if entry is None:
            return f"✗ {current}  (not in checkpoint)"
        shape, dtype = self.plan.describe(name)
        layouts = self._key_layouts()
        fitting = layouts.fits(name, current) if layouts.crosses else None
        return option_label(entry, shape, dtype, entry.key, whole=True, fitting=fitting)

    def key_suggestions(self, text: str, limit: int = CANDIDATES) -> list[str]:
        """Up to ``limit`` checkpoint keys containing every word of ``text`` (for a key box)."""
        out = []
        terms = (text or "").lower().split()
        for entry in self.checkpoint.entries:
            key = entry.key.lower()
            if all(t in key for t in terms):
                out.append(entry.key)
                if len(out) >= limit:
                    break
        return out

    # --- edits ---------------------------------------------------------------------------
    def choose(self, name: str, key) -> None:
        """Set the key of ``name`` from a dropdown value (None or "(none)" unassigns; across
        frameworks the key is read through the transform its layer's pairing gives)."""
        if key == LAYOUT:
            return  # the row's state, not a choice: nothing changes
        try:
            if key is None or key == NONE:
                self._chosen[name] = None
                self.plan.unassign(name)
            elif key == self.plan.key_of(name) and self.plan.transform_of(name) is not None:
                self._chosen[name] = key  # the key it reads already: its transform stays
            else:
                self.plan.assign(name, key)
                self._chosen[name] = key
        except PlanError as error:
            self._say(str(error))
            raise
        if name not in self.manual_picks:  # the same key again: no plan change, but now a pick
            self._on_plan_edit()

    def choose_typed(self, name: str, key: str) -> bool:
        """Assign a key typed by hand (any key, also one not offered); False if it was not.

        Why not is in ``message``: nothing typed, or the plan's :class:`PlanError`.
        """
        name = (name or "").strip()
        if not name or not key:
            self._say("Type a variable name and a checkpoint key to assign.", "warning")
            return False
        try:
            self.choose(name, key)
        except PlanError:
            return False
        self._say("")
        return True

    # --- text ----------------------------------------------------------------------------
    def title_text(self) -> str:
        """The heading: checkpoint prefix and number of variables."""
        return f"{self.checkpoint.prefix} → {len(self.plan.variables):,} variables"

    def counts_text(self) -> str:
        """The counts line: variables, mapped, unmapped, problems, unused entries."""
        return counts_text(self.counts)

    def full_code(self) -> str:
        """All of ``plan.to_code(style)`` (``code`` holds its first lines), or why it cannot be generated."""
        try:
            return self.plan.to_code(self.style)
        except CheckpointError as error:
            return f"# Cannot generate {self.style!r} code for this plan: {error}"

    def text_summary(self, rows: int = 10) -> str:
        """A plain-text view: counts, the first ``rows`` rows (with a transform column when the
        plan has transforms), problems, warning."""
        if self.plan is None:
            return f"VariableMapper: {self.message}"
        lines = [f"VariableMapper {self.checkpoint.prefix!r}: {self.counts_text()}"]
        table = []
        for name in self.rows[:rows]:
            (name, shape, status), _ = self.row_texts(name)
            status = status.replace(f" · {MANUAL_MARK}", "")  # listed below, one line for all
            table.append([name, shape, self._mapping.get(name, "(none)"), self.transform_text(name)[0], status])
        headers, widths = ["variable", "shape", "checkpoint key", "transform", "status"], [40, 24, 50, 24, 0]
        if not self.plan.transforms:  # no transform anywhere: no empty column
            table = [row[:3] + row[4:] for row in table]
            headers, widths = headers[:3] + headers[4:], widths[:3] + widths[4:]
        lines.append(text_table(headers, table, max_widths=widths))
        if len(self.rows) > rows:
            lines.append(f"... {len(self.rows) - rows:,} more")
        for problem in self.plan.problems[:3]:
            lines.append(f"{problem.reason}: {problem.message}")
        if self.warning:
            lines.append(self.warning)
        if self.manual_picks:
            lines.append(f"Picked by hand (rules and prefer EMA leave them; let_rules_decide() drops them): "
                         f"{names_text(list(self.manual_picks))}")
        return "\n".join(lines)
