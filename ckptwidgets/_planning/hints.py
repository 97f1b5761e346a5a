"""What to tell a user whose plan matched nothing: ``RestorePlan.hints``.

The common ways to be lost, each answered with what to do instead:

- an object-based (TF2) checkpoint planned against a list of variables (from a model's
  ``.variables``, or from ``tf.saved_model.load``): its keys are object paths
  (``model/layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE``), not variable names.
  Pass the model / trackable itself, whose variables are then named by object path;
- variable names that are the checkpoint's names under another scope (``net/dense/kernel``
  against ``dense/kernel``, ``new/dense/kernel`` against ``old/dense/kernel``): the
  ``init_from_checkpoint`` rule that maps the most of them (:func:`scope_rule`, also what
  :func:`ckptwidgets.convert.convert`'s error names);
- where no rule fits, the entry that would have matched one variable (same shape, dtype
  and last name segment), for a hand edit.

Only public names of the plan are read.

Example
-------
>>> scope_rule(["dense/kernel", "dense/bias"], ["net/dense/kernel", "net/dense/bias", "step"])
({'net/': '/'}, 2)
>>> scope_rule(["new/dense/kernel", "new/dense/bias", "new/out/kernel"], ["old/dense/kernel", "old/dense/bias"])
({'old/': 'new/'}, 2)
"""
from __future__ import annotations

from collections import Counter

__all__ = ["hints", "scope_rule", "best_rule", "rule_sentence"]

_SHOWN = 3
# A name tail ending more checkpoint names than this (``kernel``) says nothing about scopes.
_AMBIGUOUS = 20


def scope_rule(variable_names, entry_names) -> tuple[dict, int]:
    """The one scope rule ``{ckpt_scope: var_scope}`` mapping the most variables, and how many.

    Every way a variable's name is a checkpoint name under another scope votes for the
    rule that maps it: ``"net/dense/kernel"`` <- variable ``"dense/kernel"`` for
    ``{"net/": "/"}``, checkpoint ``"dense/kernel"`` <- variable ``"student/dense/kernel"``
    for ``{"/": "student/"}``, ``"old/dense/kernel"`` <- ``"new/dense/kernel"`` for
    ``{"old/": "new/"}`` (and for ``{"old/dense/": "new/dense/"}``, which a tie gives up for
    the shorter, more general rule). A tail that ends more than ``_AMBIGUOUS`` checkpoint
    names (``kernel``) votes for none. ``({}, 0)`` when no rule maps any.
    """
    by_tail: dict[str, list[str]] = {}
    for name in dict.fromkeys(entry_names):
        by_tail.setdefault(name, []).append("")
        cut = name.find("/")
        while cut > 0:
            by_tail.setdefault(name[cut + 1 :], []).append(name[: cut + 1])
            cut = name.find("/", cut + 1)
    votes: Counter = Counter()
    for var in variable_names:
        cut = -1
        while True:  # the variable's scope: "" (the whole name), then each "/"
            var_side, rest = var[: cut + 1], var[cut + 1 :]
            prefixes = by_tail.get(rest, ()) if rest else ()
            if len(prefixes) <= _AMBIGUOUS:
                for ckpt_side in prefixes:
                    if ckpt_side != var_side:  # the same scope on both sides is the exact name
                        votes[(ckpt_side or "/", var_side or "/")] += 1
            cut = var.find("/", cut + 1)
            if cut <= 0:
                break
    if not votes:
        return {}, 0
    (ckpt_side, var_side), count = min(votes.items(), key=lambda kv: (-kv[1], len(kv[0][0]) + len(kv[0][1]), kv[0]))
    return {ckpt_side: var_side}, count


def rule_sentence(rule: dict, count: int, total: int) -> str:
    """``rules={'old/': 'new/'} would map N of the M unmapped variables (...)``."""
    (ckpt_side, var_side), = rule.items()
    return (
        f"rules={{{ckpt_side!r}: {var_side!r}}} would map {count} of the {total} unmapped variables "
        f"(checkpoint names under {ckpt_side!r} <- variable names under {var_side!r})."
    )


def best_rule(plan) -> tuple[dict, int]:
    """:func:`scope_rule` for a plan's unmapped variables and its checkpoint's names."""
    ckpt = plan.checkpoint
    return scope_rule(plan.unmapped, [e.name for e in ckpt.entries if e.kind in ("variable", "ema")])


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
    rule, count = best_rule(plan)
    if count:
        out.append(rule_sentence(rule, count, len(unmapped)))
    else:
        close = [(name, entry) for name in unmapped[:50] for entry in [_close_entry(plan, name)] if entry is not None]
        for name, entry in close[:_SHOWN]:
            out.append(f"Variable {name!r} would match key {entry.key!r} (same shape, dtype and last name segment).")
    return out
