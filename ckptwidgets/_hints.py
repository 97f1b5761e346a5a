"""What to tell a user whose plan matched nothing: ``RestorePlan.hints``.

The common ways to be lost, each answered with what to do instead:

- an object-based (TF2) checkpoint planned against a list of variables (from a model's
  ``.variables``, or from ``tf.saved_model.load``): its keys are object paths
  (``model/layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE``), not variable names.
  Pass the model / trackable itself, whose variables are then named by object path;
- variable names that are the checkpoint's names under another scope (``net/dense/kernel``
  against ``dense/kernel``): the ``init_from_checkpoint`` rule that maps them;
- where no rule fits, the entry that would have matched one variable (same shape, dtype
  and last name segment), for a hand edit.

Only public names of the plan are read.

Example
-------
>>> scope_rule(["dense/kernel", "dense/bias"], ["net/dense/kernel", "net/dense/bias", "step"])
({'net/': '/'}, 2)
"""
from __future__ import annotations

from collections import Counter

__all__ = ["hints", "scope_rule"]

_SHOWN = 3


def scope_rule(variable_names, entry_names) -> tuple[dict, int]:
    """The one scope rule ``{ckpt_scope: var_scope}`` mapping the most variables, and how many.

    Tries a checkpoint scope in front of the variables' names (``{"net/": "/"}``) and a
    variable scope to drop (``{"/": "net/"}``); ``({}, 0)`` when neither maps any.
    """
    entries = set(entry_names)
    votes: Counter = Counter()
    by_tail: dict[str, list[str]] = {}
    for name in entry_names:
        cut = name.find("/")
        while cut > 0:
            by_tail.setdefault(name[cut + 1 :], []).append(name[: cut + 1])
            cut = name.find("/", cut + 1)
    for var in variable_names:
        for prefix in set(by_tail.get(var, ())):
            votes[(prefix, "/")] += 1  # checkpoint's "<prefix><var>" <- variable "<var>"
        cut = var.find("/")
        while cut > 0:
            if var[cut + 1 :] in entries:
                votes[("/", var[: cut + 1])] += 1  # checkpoint's "<rest>" <- variable "<scope><rest>"
            cut = var.find("/", cut + 1)
    if not votes:
        return {}, 0
    (ckpt_side, var_side), count = votes.most_common(1)[0]
    return {ckpt_side: var_side}, count


def _close_entry(plan, name):
    """The single entry of the variable's shape, dtype and last name segment, if exactly one."""
    shape, dtype = plan.describe(name)
    leaf = name.rpartition("/")[2]
    found = [e for e in plan.checkpoint.candidate_index.compatible(shape, dtype) if e.name.rpartition("/")[2] == leaf]
    return found[0] if len(found) == 1 else None


def hints(plan, given_root: bool) -> list[str]:
    """Sentences for a plan that maps none of its variables (empty otherwise)."""
    if plan.mapping:  # something matched: the user is not lost (unmapped ones may be on purpose)
        return []
    unmapped = plan.unmapped
    ckpt = plan.checkpoint
    out = []
    if ckpt.object_based and not given_root:
        example = next((e.key for e in ckpt.entries if e.kind == "variable"), None)
        out.append(
            f"Checkpoint {ckpt.prefix!r} is object-based (written by tf.train.Checkpoint or Keras): its keys are "
            f"object paths{f' such as {example!r}' if example else ''}, not variable names such as {unmapped[0]!r}. "
            "Pass the model or tf.Module it was saved from (or the object tf.saved_model.load returned) instead "
            "of a list of its variables: plan_restore(ckpt, model) names each variable by its object path."
        )
    rule, count = scope_rule(unmapped, [e.name for e in ckpt.entries if e.kind in ("variable", "ema")])
    if count:
        (ckpt_side, var_side), = rule.items()
        out.append(
            f"rules={{{ckpt_side!r}: {var_side!r}}} would map {count} of the {len(unmapped)} unmapped variables "
            f"(checkpoint names under {ckpt_side!r} <- variable names under {var_side!r})."
        )
    else:
        close = [(name, entry) for name in unmapped[:50] for entry in [_close_entry(plan, name)] if entry is not None]
        for name, entry in close[:_SHOWN]:
            out.append(f"Variable {name!r} would match key {entry.key!r} (same shape, dtype and last name segment).")
    return out
