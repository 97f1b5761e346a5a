"""What each entry of a checkpoint is: a variable, an EMA shadow, optimizer state or bookkeeping.

One classifier for every source (:mod:`ckptwidgets.sources`). A source names its entries
(``name``: the key without what the format appends, e.g. TF2's ``/.ATTRIBUTES/VARIABLE_VALUE``)
and may already know that an entry is bookkeeping (``kind="meta"``: TF2's object graph);
everything else is decided here, from the names alone and their neighbours: ``w/Adam`` is
a slot only when ``w`` is in the checkpoint too.

The rules are a table (:data:`RULES`), tried in order on the last segment of a name; the
first rule whose segment matches and whose neighbour check passes decides. Which rules a
segment can match is cached per distinct segment, so most of 10,000 entries cost one dict
lookup (``kernel`` matches no rule: a variable).

Example
-------
>>> classify_names(["w", "w/Adam", "w/ExponentialMovingAverage", "global_step"])
[('variable', None), ('slot', 'w'), ('ema', 'w'), ('meta', None)]
"""
from __future__ import annotations

import re
from typing import Callable, NamedTuple

__all__ = ["KINDS", "EMA_SEGMENT", "SLOT_MARK", "Rule", "RULES", "classify_name", "classify_names", "classify_records"]

KINDS = ("variable", "ema", "slot", "meta")
EMA_SEGMENT = "ExponentialMovingAverage"
#: TF2 object-based checkpoints put optimizer slots under ``<variable>/.OPTIMIZER_SLOT/<optimizer>/<slot>``.
SLOT_MARK = "/.OPTIMIZER_SLOT/"

# Last name segments TF1 optimizers give their slots ("w/Adam", "w/Adam_1").
_TF1_SLOT = re.compile(
    r"^(Adam|AdamW|Adamax|Nadam|LazyAdam|Momentum|RMSProp|Adagrad|AdagradDA|"
    r"Adadelta|Ftrl|ProximalAdagrad|LARS|LAMB|Lamb)(_\d+)?$"
)
# Bookkeeping that is not model state: step counters, optimizer scalars.
_META_NAMES = frozenset(
    {
        "global_step",
        "save_counter",
        "beta1_power",
        "beta2_power",
        "iter",
        "iterations",
        "_iterations",
        "learning_rate",
        "_learning_rate",
        "local_step",
        "biased",
    }
)
# Hyperparameters a Keras 2 optimizer tracks next to its `iter` counter.
_KERAS2_HYPER = frozenset({"beta_1", "beta_2", "decay", "epsilon", "rho", "momentum", "initial_accumulator_value"})
# Keras 3 optimizers keep their state in a flat list `<optimizer>/_variables/N` (the model
# weights are `<optimizer>/_trainable_variables/N`); which weight a state belongs to is not
# recorded, so those slots have base None.
_KERAS3_STATE = re.compile(r"^(.*/)?_variables/\d+$")


class Rule(NamedTuple):
    """One row of the classification table.

    ``segment(last)`` tests the last name segment; ``check(name, head, present)`` then
    returns the base name (``""`` for "no base") when the rule applies, or None when the
    neighbours it needs are absent. ``present`` is a container of every name.
    """

    kind: str
    what: str
    segment: Callable[[str], object]
    check: Callable[[str, str, object], str | None]


def _with_head(name, head, present):
    return head or None


def _always(name, head, present):
    return ""


def _variable_present(name, head, present):
    return head if head and head in present else None


def _beside_iter(name, head, present):
    return "" if head and head + "/iter" in present else None


def _keras3_state(name, head, present):
    if not head or not _KERAS3_STATE.match(name):
        return None
    owner = name[: len(head) - len("_variables")]
    return "" if owner + "_iterations" in present or owner + "iterations" in present else None


RULES = (
    Rule("ema", "an ExponentialMovingAverage shadow: <variable>/ExponentialMovingAverage", EMA_SEGMENT.__eq__, _with_head),
    Rule("meta", "step counters and optimizer scalars (global_step, beta1_power, iter...)", _META_NAMES.__contains__, _always),
    Rule("slot", "Keras 3 optimizer state <optimizer>/_variables/N next to its iterations counter", str.isdigit, _keras3_state),
    Rule("meta", "Keras 2 optimizer hyperparameters next to its iter counter", _KERAS2_HYPER.__contains__, _beside_iter),
    Rule("slot", "TF1 optimizer slots <variable>/Adam, <variable>/Momentum... next to their variable", _TF1_SLOT.match, _variable_present),
)

_SEGMENT_RULES: dict[str, tuple[Rule, ...]] = {}


def _rules_for(last: str) -> tuple[Rule, ...]:
    rules = _SEGMENT_RULES.get(last)
    if rules is None:
        rules = _SEGMENT_RULES[last] = tuple(r for r in RULES if r.segment(last))
    return rules


def classify_name(name: str, present) -> tuple[str, str | None]:
    """``(kind, base name or None)`` of one name; ``present`` answers ``in`` for the others.

    Examples
    --------
    >>> classify_name("w/Momentum", {"w"}), classify_name("w/Momentum", set())
    (('slot', 'w'), ('variable', None))
    """
    if SLOT_MARK in name:
        return "slot", name.split(SLOT_MARK, 1)[0]
    cut = name.rfind("/")
    rules = _rules_for(name[cut + 1 :])
    if rules:
        head = name[:cut] if cut > 0 else ""
        for rule in rules:
            base = rule.check(name, head, present)
            if base is not None:
                return rule.kind, base or None
    return "variable", None


def classify_names(names, present=None) -> list[tuple[str, str | None]]:
    """``(kind, base name)`` of each name; ``present`` (default: the names) answers ``in``.

    Examples
    --------
    >>> classify_names(["opt/_iterations", "opt/_variables/0", "layer/_variables/0"])
    [('meta', None), ('slot', None), ('variable', None)]
    """
    if present is None:
        present = set(names)
    plain = ("variable", None)
    out = []
    append, cached, mark = out.append, _SEGMENT_RULES.get, SLOT_MARK
    for name in names:
        last = name[name.rfind("/") + 1 :]
        rules = cached(last)
        if rules is None:
            rules = _rules_for(last)
        if not rules and mark not in name:
            append(plain)  # the common case: a segment no rule matches
        else:
            append(classify_name(name, present))
    return out


def classify_records(records) -> list[tuple[str, str | None]]:
    """``(kind, base key)`` for each record of a source (``key``, ``name``, ``kind`` or None).

    A record's own ``kind`` wins; otherwise its ``name`` is classified, and a base name is
    turned back into the key of the entry with that name (for a shadow whose variable is
    absent, the key the variable would have: the shadow's key with the name replaced).
    """
    names = [r[1] for r in records]
    by_name = dict(zip(names, [r[0] for r in records]))
    out = []
    append = out.append
    for (key, name, _dtype, _shape, _nbytes, own), decided in zip(records, classify_names(names, by_name)):
        if own is not None:
            append((own, None))
        elif decided[1] is None:
            append(decided)
        else:
            kind, base = decided
            owner = by_name.get(base)
            if owner is None:  # the owner is not in the checkpoint: same suffix as this entry
                owner = base + key[len(name) :] if key.startswith(name) else base
            append((kind, owner))
    return out
