"""What the mapper says: row statuses, key option labels, the message of a re-plan, rules that
map nothing, and the report and counts as text.

Pure functions of a plan, its checkpoint and names (no traitlets, no ipywidgets), used by
:class:`~ckptwidgets.widgets._mapper_model.MapperModel`.

Example
-------
>>> closest_text("dense/", ["dense_1/", "head/"], "variable scope")
"; the closest variable scope is 'dense_1/'"
>>> names_text(["a", "b", "c"], limit=2)
"'a', 'b' and 1 more"
"""
from __future__ import annotations

import difflib

from .._planning.candidates import fits
from .._planning.rules import is_root, is_scope
from .._text.format import count_of, format_shape

__all__ = ["SHOW", "STATUS_TEXT", "NOT_PROBLEMS", "CANDIDATES", "PREVIEW_LINES", "NONE", "OTHER", "LAYOUT",
           "KEY_LABEL_CHARS", "MANUAL_MARK",
           "LET_RULES_DECIDE", "scopes", "closest_text", "names_text", "idle_rules", "replan_message",
           "option_label", "unmapped_warning", "full_report_text", "counts_text"]

SHOW = ("all", "problems", "unmapped", "mapped")
STATUS_TEXT = {
    "mapped": "✓ mapped",
    "unmapped": "– unmapped",
    "missing_key": "✗ missing key",
    "shape_mismatch": "✗ shape mismatch",
    "dtype_mismatch": "✗ dtype mismatch",
    "duplicate_variable": "✗ duplicate",
    "layout_mismatch": "✗ layout mismatch",
    "bookkeeping": "· bookkeeping",
}
#: Statuses that are no problem: what ``show="problems"`` leaves out (a torch module's
#: unmapped ``num_batches_tracked`` is bookkeeping, never a problem).
NOT_PROBLEMS = ("mapped", "unmapped", "bookkeeping")
#: Candidate keys offered per variable (plus the current key, "(none)" and "(other key…)").
CANDIDATES = 50
#: Lines of generated code / report sent to the browser; the rest is one call away.
PREVIEW_LINES = 200
#: Characters of a key in a dropdown's option: a closed dropdown shows about this many at
#: its narrowest (900 px with JupyterLab's side panel open). Longer keys are shortened by
#: :func:`~ckptwidgets._text.format.short_labels` so what tells them apart stays; the dropdown's
#: tooltip holds the whole key with its shape and dtype.
KEY_LABEL_CHARS = 30
#: Added to the status of a row whose key was picked by hand (rules do not change it).
MANUAL_MARK = "✎ by hand"
#: The button that clears manual picks (``MapperModel.let_rules_decide``).
LET_RULES_DECIDE = "Let rules decide"
# Option values that cannot be checkpoint keys (a NUL byte never appears in a TF key).
NONE = "\x00none"
OTHER = "\x00other"
#: The option a row shows while its layout cannot be decided and it reads no key: picking
#: "(none)" (or a key) away from it settles the problem.
LAYOUT = "\x00layout"


def scopes(names) -> list[str]:
    """Every scope (``a/``, ``a/b/``) of ``names``, first seen first.

    Examples
    --------
    >>> scopes(["a/b/w", "a/v", "c"])
    ['a/', 'a/b/']
    """
    found = {}
    for name in names:
        parts = name.split("/")[:-1]
        for end in range(1, len(parts) + 1):
            found["/".join(parts[:end]) + "/"] = None
    return list(found)


def closest_text(text: str, among, what: str) -> str:
    """``"; the closest <what> is '...'"``, or the first few when none is close ('' for none)."""
    among = list(among)
    close = difflib.get_close_matches(text, among, n=1, cutoff=0.5)
    if close:
        return f"; the closest {what} is {close[0]!r}"
    if among:
        return f"; {what}s are e.g. {', '.join(repr(s) for s in among[:3])}"
    return ""


def names_text(names, limit=5) -> str:
    """The first ``limit`` of ``names``, quoted, and how many more."""
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def idle_rules(rules: dict, names, checkpoint, dotted: bool = False) -> dict:
    """``{(checkpoint side, variable side): why}`` for each of ``rules`` that maps none of ``names``.

    A scope rule maps a variable when the variable's name starts with its variable side
    and the checkpoint has the key its checkpoint side gives (the rest of the name after
    it); ``why`` names the side that finds nothing and the closest scope that exists.
    ``dotted``: the names are a torch module's, where a side ending in ``.`` is a scope too.
    """
    keys = [e.key for e in checkpoint.entries]
    idle = {}
    for side, target in rules.items():
        if not isinstance(target, str):
            continue  # {key: variable}: the variable exists, and a missing key is the plan's problem
        scope = is_scope(side, dotted)
        if not scope:
            if checkpoint.find(side) is None:
                idle[(side, target)] = f"the checkpoint has no key {side!r}{closest_text(side, keys, 'key')}."
            continue
        var_scope, ckpt_scope = ("" if is_root(target) else target), ("" if is_root(side) else side)
        under = [n for n in names if n.startswith(var_scope)]
        if not under:
            idle[(side, target)] = (f"no variable name starts with {target!r}"
                                    f"{closest_text(var_scope, scopes(names), 'variable scope')}.")
        elif not any(k.startswith(ckpt_scope) for k in keys):
            idle[(side, target)] = (f"no checkpoint key starts with {side!r}"
                                    f"{closest_text(ckpt_scope, scopes(keys), 'checkpoint scope')}.")
        elif not any(checkpoint.find(ckpt_scope + n[len(var_scope):]) is not None for n in under):
            example = under[0]
            wanted = ckpt_scope + example[len(var_scope):]
            idle[(side, target)] = (f"it gives {example!r} the key {wanted!r}, which the checkpoint does not have, "
                                    f"and likewise for the other {count_of(len(under) - 1, 'variable')} under {target!r}"
                                    f"{closest_text(wanted, keys, 'key')}.")
    return idle


def replan_message(why: str, before: dict, after: dict, variables, *, rules: dict, idle: dict, prefer_ema: bool,
                   has_shadows: bool, kept_over: dict) -> tuple[str, str]:
    """``(text, kind)``: what a re-plan changed, in one message (issue #15: every state change is said).

    Parameters
    ----------
    why : str
        ``"rules"``, ``"prefer_ema"`` or ``"automap"``.
    before, after : dict
        The plan's mapping before and after.
    variables : sequence of str
        The plan's variables.
    rules, idle : dict
        The rules used, and :func:`idle_rules` of them.
    prefer_ema, has_shadows : bool
        The setting, and whether the checkpoint has EMA shadows at all.
    kept_over : dict
        ``{name: the key the rules give}`` of the manual edits kept over them.
    """
    changed = sum(1 for n in variables if before.get(n) != after.get(n))
    mapped = f"{len(after):,} of {len(variables):,} variables mapped"
    kind = "info"
    if why == "prefer_ema":
        if not has_shadows:
            return ("prefer EMA changes nothing here: this checkpoint has no ExponentialMovingAverage "
                    "shadows (no '<variable>/ExponentialMovingAverage' entries).", "warning")
        head = (f"prefer EMA {'on' if prefer_ema else 'off'}: {count_of(changed, 'variable')} changed key (now "
                f"{'the shadow' if prefer_ema else 'the raw value'}); {mapped}.")
    elif why == "automap":
        head = f"Auto-map: matched again from names, rules and prefer EMA, manual edits dropped; {count_of(changed, 'key')} changed; {mapped}."
    else:
        count = len(rules)
        changed_key = f"{count_of(changed, 'variable')} changed key; {mapped}."
        head = f"Rules applied ({count_of(count, 'rule')}): {changed_key}" if count else f"No rules: matched by name; {changed_key}"
        if idle:
            (side, target), reason = next(iter(idle.items()))
            others = len(idle) - 1
            more = f" ({count_of(others, 'more rule')} {'maps' if others == 1 else 'map'} nothing either)" if others else ""
            head += f" Rule '{side} -> {target}' maps nothing: {reason}{more}"
            kind = "warning"
    if kept_over:
        shown = [f"{n!r} (the rules give {k!r})" if k else f"{n!r} (the rules give no key)"
                 for n, k in list(kept_over.items())[:3]]
        more = f" and {len(kept_over) - 3:,} more" if len(kept_over) > 3 else ""
        head += (f" Kept {count_of(len(kept_over), 'manual edit')} over the automatic matching: {', '.join(shown)}{more}"
                 f" (rows marked {MANUAL_MARK!r}); '{LET_RULES_DECIDE}' drops them.")
        kind = "warning"
    return head, kind


def option_label(entry, shape, dtype, key_label: str, whole: bool = False, fitting: bool | None = None) -> str:
    """A key option: ``★`` for an EMA shadow; a key that does not fit the variable is marked ``✗``
    and shows its shape and dtype (a fitting one has the row's, shown beside it; ``whole`` shows
    them anyway). ``fitting``: whether it fits, when a layout transform decides that (a Keras
    kernel ``[4, 3]`` fits a torch weight ``[3, 4]`` through ``transpose``); None: by its shape."""
    mark = "★ " if entry.kind == "ema" else ""
    if not (fits(shape, dtype, entry) if fitting is None else fitting):
        return f"✗ {mark}{key_label}  {format_shape(entry.shape)} {entry.dtype}"
    return f"{mark}{key_label}  {format_shape(entry.shape)} {entry.dtype}" if whole else f"{mark}{key_label}"


def unmapped_warning(unmapped, graph_mode: bool, initialize_unmapped: bool, hints) -> str:
    """What a restore now would do to the ``unmapped`` variables ('' for none), with the plan's
    first ``hints`` when something is unmapped."""
    if not unmapped:
        return ""
    one = len(unmapped) == 1
    have_no_key = f"{count_of(len(unmapped), 'variable')} {'has' if one else 'have'} no checkpoint key"
    if graph_mode:
        verb = "will be initialised" if initialize_unmapped else "will stay uninitialised"
        warning = f"{have_no_key} and {verb}: {names_text(unmapped)}."
    else:
        keep = "will keep its current value" if one else "will keep their current values"
        warning = f"{have_no_key} and {keep}: {names_text(unmapped)}."
    if hints:  # matched (almost) nothing: say what to do instead
        shown = list(hints[:2])
        warning += " Hint: " + "; ".join([hint.removesuffix(".") for hint in shown[:-1]] + shown[-1:])
    return warning


def full_report_text(report) -> str:
    """A RestoreReport with every variable: each restored one (``name <- key``), initialised, left alone."""
    if report is None:
        return ""
    lines = [f"Restored {count_of(len(report.restored), 'variable')} from {report.checkpoint!r} "
             f"({report.nbytes:,} bytes, {report.seconds:.3f} s)"]
    lines += [f"  {name!r} <- {key!r}" for name, key in report.restored]
    lines.append(f"Initialised {len(report.initialized):,}:")
    lines += [f"  {name!r}" for name in report.initialized]
    lines.append(f"Left alone {len(report.left_alone):,}:")
    lines += [f"  {name!r}" for name in report.left_alone]
    return "\n".join(lines)


def counts_text(counts: dict) -> str:
    """The counts line: ``"2 variables: mapped 1 · unmapped 1 · problems 0 · unused entries 3"``."""
    c = counts
    return (f"{c['variables']:,} variables: mapped {c['mapped']:,} · unmapped {c['unmapped']:,} · "
            f"problems {c['problems']:,} · unused entries {c['unused']:,}")
