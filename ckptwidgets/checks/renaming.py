"""Checks for the exercises of notebook 03, *Restore under other names*.

Each check prints one line, ``Correct: ...`` or ``Not yet: <hint>``; see
:mod:`ckptwidgets.checks`. :func:`root_rule_mapper` reads the rules box and the plan of a
:class:`~ckptwidgets.VariableMapper`, so the exercise can be done in the widget.

Example
-------
>>> swapped_var_list({"v1": 1, "v2": 2}, 1, 2)
Not yet: that is the straight mapping (v1 into a1); swap them: the checkpoint's 'v1' goes into a2, 'v2' into a1.
"""
from __future__ import annotations

from ._answers import is_todo, label, mapper_parts
from . import check, correct, not_yet
from .._text.format import count_of

__all__ = ["swapped_var_list", "root_rule_mapper"]


@check
def swapped_var_list(var_list, a1, a2, keys=("v1", "v2")):
    """``var_list`` is the Saver dict loading checkpoint ``v1`` into ``a2`` and ``v2`` into ``a1``."""
    first, second = keys
    if is_todo(var_list):
        return not_yet(f"replace TODO with a dict {{checkpoint key: variable}} for tf.compat.v1.train.Saver, keys {first!r} and {second!r}.")
    if not isinstance(var_list, dict):
        return not_yet(f"a Saver takes a dict {{checkpoint key: variable}} here; that is a {type(var_list).__name__}.")
    if any(not isinstance(k, str) for k in var_list):
        if all(isinstance(v, str) for v in var_list.values()):
            return not_yet("the dict is the wrong way round: keys are the checkpoint's names (str), values the variables.")
        return not_yet("the dict's keys are the names in the checkpoint, as str: 'v1', 'v2'.")
    if all(isinstance(v, str) for v in var_list.values()) and set(var_list.values()) == set(keys):
        return not_yet("the dict is the wrong way round: keys are the checkpoint's names, values the variables.")
    unknown = sorted(set(var_list) - set(keys))
    if unknown:
        return not_yet(f"{unknown[0]!r} is not a key of the checkpoint; its keys are {first!r} and {second!r} (the variables' names play no part).")
    missing = [k for k in keys if k not in var_list]
    if missing:
        return not_yet(f"the dict leaves out {missing[0]!r}; load both keys.")
    if any(isinstance(v, str) for v in var_list.values()):
        return not_yet("the values should be the variables themselves (a1, a2), not their names.")
    if var_list[first] is a1 and var_list[second] is a2:
        return not_yet(f"that is the straight mapping ({first} into a1); swap them: the checkpoint's {first!r} goes into a2, {second!r} into a1.")
    if var_list[first] is var_list[second]:
        return not_yet(f"both keys go into {label(var_list[first])}; each variable takes one key.")
    if var_list[first] is a2 and var_list[second] is a1:
        return correct(f"Saver({{'{first}': a2, '{second}': a1}}) loads 1.0 into {label(a2)} and 2.0 into {label(a1)}: the dict, not the names, decides.")
    return not_yet("the values should be the graph's variables a1 and a2.")


@check
def root_rule_mapper(mapper, scope="net/", keys=("v1", "v2")):
    """The mapper's rules box holds one rule loading the checkpoint's root into ``scope``."""
    model, plan = mapper_parts(mapper, "rules_text")
    if model is None:
        return not_yet(f"pass the VariableMapper itself to the check, not a {type(mapper).__name__}.")
    expected = {scope + key: key for key in keys}
    error = getattr(model, "rules_error", "")
    if error:
        return not_yet(f"the rules box shows an error: {error}")
    rules = dict(getattr(model, "rules", {}) or {})
    if not model.rules_text.strip() or not rules:
        return not_yet("type one rule in the rules box, 'checkpoint side -> variable side'; the checkpoint's root is written '/'.")
    if plan.mapping != expected:
        if rules.get(scope) in ("/", ""):
            return not_yet(f"the rule is the wrong way round: the checkpoint side comes first, '/ -> {scope}'.")
        return not_yet(
            f"the rules {model.rules_text.strip()!r} map {plan.mapping or 'nothing'}; the keys are at the "
            f"checkpoint's root ('/') and the variables under {scope!r}."
        )
    if rules.get("/") != scope:
        return not_yet(f"everything is mapped, but with {count_of(len(rules), 'rule')} of single names; one rule '/ -> {scope}' does it for any number of variables.")
    return correct(f"'/ -> {scope}' loads every top-level key into {scope}<key>: {', '.join(f'{k} -> {v}' for v, k in expected.items())}.")
