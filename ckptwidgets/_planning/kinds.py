"""What each entry of a checkpoint is: a variable, an EMA shadow, optimizer state or bookkeeping.

One classifier for every source (:mod:`ckptwidgets.sources`). A source names its entries
(``name``: the key without what the format appends, e.g. TF2's ``/.ATTRIBUTES/VARIABLE_VALUE``)
and may already know that an entry is bookkeeping (``kind="meta"``: TF2's object graph) or
whose state it is (``kind="ema"``/``"slot"`` with ``base``: a Keras 3 optimizer's averages,
which only the object graph or the file's layout tells, :mod:`ckptwidgets.sources.keras._ema`);
everything else is decided here, from the names, their shapes and their neighbours.

Optimizer state is recognised by structure, not by a list of optimizer names: a *slot* is
an entry whose name extends a variable's name by one segment of the optimizer's own, with
the variable's shape, possibly under an extra scope (``<scope>/<variable>/<segment>``, as
TF1 optimizers built inside a scope and Keras 2 optimizers write them). A structural match
counts when the segment is one TF1 optimizers use (``Adam``, ``Momentum``...), when the
same segment (``my_adam``, ``my_adam_1``) extends two or more entries, or when the scope is
an optimizer's (it holds an ``iter`` / ``iterations`` / ``beta1_power`` counter). Scalars
beside an optimizer's ``iter`` counter are its hyperparameters: ``meta``.

The per-name rules are a table (:data:`RULES`), tried in order on the last segment; which
rules a segment can match is cached per distinct segment, so most of 10,000 entries cost a
dict lookup or two.

Example
-------
>>> classify_names(["w", "w/Adam", "w/ExponentialMovingAverage", "global_step"])
[('variable', None), ('slot', 'w'), ('ema', 'w'), ('meta', None)]
>>> shapes = {"w": (3,), "w/my_adam": (3,), "w/my_adam_1": (3,), "beta1_power": ()}
>>> classify_names(list(shapes), shapes)
[('variable', None), ('slot', 'w'), ('slot', 'w'), ('meta', None)]
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
    r"Adadelta|Ftrl|ProximalAdagrad|ProximalGradientDescent|LARS|LAMB|Lamb)(_\d+)?$"
)
# Bookkeeping that is not model state: step counters, optimizer scalars.
_META_NAMES = frozenset(
    {
        "global_step",
        "save_counter",
        "iter",
        "iterations",
        "_iterations",
        "learning_rate",
        "_learning_rate",
        "local_step",
        "biased",
    }
)
# Adam's beta powers, uniquified when a graph holds several optimizers: beta1_power_1.
_POWER = re.compile(r"^beta[12]_power(_\d+)?$")
# torch's BatchNorm counts the batches it has seen (a step counter, not a weight); torch names
# are dotted, so the whole name is the last "/" segment.
_TORCH_COUNTER = re.compile(r"(^|\.)num_batches_tracked$")
# Counters an optimizer's scope holds: the scope's scalars are its hyperparameters.
_COUNTERS = ("iter", "iterations", "_iterations")
# Keras 3 optimizers keep their state in a flat list `<optimizer>/_variables/N` (the model
# weights are `<optimizer>/_trainable_variables/N`); which weight a state belongs to is not
# in the keys, so those slots have base None here (the bundle source gives the bases, and
# marks the use_ema averages, from the object graph).
_KERAS3_STATE = re.compile(r"^(.*/)?_variables/\d+$")
_UNIQUIFIED = re.compile(r"_\d+$")


def _same(a, b) -> bool:
    """Shapes equal, or one unknown (None)."""
    return a is None or b is None or a == b


class Rule(NamedTuple):
    """One row of the classification table.

    ``segment(last)`` tests the last name segment; ``check(name, head, shape, shapes)`` then
    returns the base name (``""`` for "no base") when the rule applies, or None when the
    neighbours it needs are absent. ``shapes`` maps every name to its shape (None: unknown).
    """

    kind: str
    what: str
    segment: Callable[[str], object]
    check: Callable[[str, str, object, object], str | None]


def _with_head(name, head, shape, shapes):
    return head or None


def _always(name, head, shape, shapes):
    return ""


def _beside_its_variable(name, head, shape, shapes):
    # <variable>/Adam, or <scope>/<variable>/Adam when the optimizer was built inside a scope.
    owner = head
    while owner:
        if owner in shapes and _same(shapes[owner], shape):
            return owner
        owner = owner.partition("/")[2]
    return None


def _keras3_state(name, head, shape, shapes):
    if not head or not _KERAS3_STATE.match(name):
        return None
    owner = name[: len(head) - len("_variables")]
    return "" if owner + "_iterations" in shapes or owner + "iterations" in shapes else None


RULES = (
    Rule("ema", "an ExponentialMovingAverage shadow: <variable>/ExponentialMovingAverage", EMA_SEGMENT.__eq__, _with_head),
    Rule("meta", "step counters and optimizer scalars (global_step, iter, learning_rate...)", _META_NAMES.__contains__, _always),
    Rule("meta", "Adam's beta powers: beta1_power, beta2_power_1...", _POWER.match, _always),
    Rule("meta", "torch BatchNorm's batch counter: <module>.num_batches_tracked", _TORCH_COUNTER.search, _always),
    Rule("slot", "Keras 3 optimizer state <optimizer>/_variables/N next to its iterations counter", str.isdigit, _keras3_state),
    Rule("slot", "TF1 optimizer slots <variable>/Adam, <variable>/Momentum_1... next to their variable", _TF1_SLOT.match, _beside_its_variable),
)

_SEGMENT_RULES: dict[str, tuple[Rule, ...]] = {}


def _rules_for(last: str) -> tuple[Rule, ...]:
    rules = _SEGMENT_RULES.get(last)
    if rules is None:
        rules = _SEGMENT_RULES[last] = tuple(r for r in RULES if r.segment(last))
    return rules


class _AnyShape:
    """``shapes`` for a caller that only knows which names exist: every shape unknown."""

    def __init__(self, names):
        self._names = names

    def __contains__(self, name):
        return name in self._names

    def __getitem__(self, name):
        return None

    def get(self, name, default=None):
        return None if name in self._names else default


def _shapes_of(present):
    return present if hasattr(present, "get") and not isinstance(present, (set, frozenset)) else _AnyShape(present)


def classify_name(name: str, present, shape=None) -> tuple[str, str | None]:
    """``(kind, base name or None)`` of one name by the table alone (no structural slots).

    ``present`` maps the other names to their shapes (a set of names: shapes unknown).

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
        shapes = _shapes_of(present)
        head = name[:cut] if cut > 0 else ""
        for rule in rules:
            base = rule.check(name, head, shape, shapes)
            if base is not None:
                return rule.kind, base or None
    return "variable", None


def classify_names(names, present=None) -> list[tuple[str, str | None]]:
    """``(kind, base name)`` of each name of one checkpoint, structural slots included.

    ``present`` maps every name to its shape (default: all shapes unknown, so structure is
    judged by names alone).

    Examples
    --------
    >>> classify_names(["opt/_iterations", "opt/_variables/0", "layer/_variables/0"])
    [('meta', None), ('slot', None), ('variable', None)]
    >>> classify_names(["Adam/dense/kernel/m", "Adam/iter", "Adam/beta_1", "dense/kernel"],
    ...                {"Adam/dense/kernel/m": (2,), "Adam/iter": (), "Adam/beta_1": (), "dense/kernel": (2,)})
    [('slot', 'dense/kernel'), ('meta', None), ('meta', None), ('variable', None)]
    """
    shapes = _shapes_of(set(names) if present is None else present)
    plain = ("variable", None)
    out = []
    append, cached, mark = out.append, _SEGMENT_RULES.get, SLOT_MARK
    optimizer_scopes: set[str] = set()  # scopes holding an optimizer's counter ("" for the root)
    candidates = []  # (index, owner name, scope, segment) of possible structural slots
    unowned = set()  # heads that are no name: maybe <scope>/<variable>
    add_unowned = unowned.add
    for index, name in enumerate(names):
        cut = name.rfind("/")
        last = name[cut + 1 :]
        rules = cached(last)
        if rules is None:
            rules = _rules_for(last)
        if rules or mark in name:
            append(classify_name(name, shapes, shapes[name]))
            if last in _COUNTERS or _POWER.match(last):
                optimizer_scopes.add(name[: cut + 1])
            continue
        append(plain)
        if cut > 0:
            head = name[:cut]
            if head in shapes:
                if _same(shapes[head], shapes[name]):
                    candidates.append((index, head, "", last))
            else:
                add_unowned(head)
    if unowned:
        _scoped_candidates(names, shapes, out, unowned, candidates)
    if candidates:
        # Scopes whose slots were found are optimizers' too (Keras 2 Adagrad has no counter).
        optimizer_scopes |= _accept_structural(names, out, candidates, optimizer_scopes)
    scoped = {scope for scope in optimizer_scopes if scope}
    if scoped:  # only checkpoints with an optimizer under a scope pay for this
        _hyperparameters(names, shapes, out, scoped)
    return out


def _scoped_candidates(names, shapes, out, unowned, candidates) -> None:
    """``<scope>/<variable>/<segment>`` (an optimizer built inside a scope) among the names
    whose head is no name. Cheap for model checkpoints: an owner ends with its head's last
    segment, which must then be a segment seen before (``_SEGMENT_RULES`` caches every one),
    so few heads are searched, once each; the names are walked again only if one is found."""
    seen = _SEGMENT_RULES
    owners = {}
    for head in unowned:
        if head[head.rfind("/") + 1 :] in seen:
            found = _scoped_owner(head, shapes)
            if found is not None:
                owners[head] = found
    if not owners:
        return
    for index, name in enumerate(names):
        cut = name.rfind("/")
        found = owners.get(name[:cut]) if cut > 0 and out[index][0] == "variable" else None
        if found is not None and _same(shapes[found[0]], shapes[name]):
            candidates.append((index, found[0], found[1], name[cut + 1 :]))


def _scoped_owner(head: str, shapes) -> tuple[str, str] | None:
    """``(variable, scope)`` when ``head`` is ``<scope>/<a present name>``, else None."""
    at = head.find("/")
    while at > 0:
        owner = head[at + 1 :]
        if owner in shapes:
            return owner, head[: at + 1]
        at = head.find("/", at + 1)
    return None


def _hyperparameters(names, shapes, out, scopes) -> None:
    """Scalars directly in an optimizer's scope (``training/Adam/decay``) are its hyperparameters."""
    for index, name in enumerate(names):
        if out[index] != ("variable", None) or shapes[name] != ():
            continue
        cut = name.rfind("/")
        if name[: cut + 1] in scopes:
            out[index] = ("meta", None)


def _accept_structural(names, out, candidates, optimizer_scopes) -> set[str]:
    """Mark the candidates that are optimizer slots (see the module docstring).

    A group is one (scope, segment without its ``_N``) pair: ``w/my_adam`` and
    ``w/my_adam_1`` are one group. It counts with two or more members, or under an
    optimizer's own scope (not the root: a root counter says nothing about root names).
    """
    groups: dict[tuple[str, str], list] = {}
    for index, owner, scope, last in candidates:
        groups.setdefault((scope, _UNIQUIFIED.sub("", last)), []).append((index, owner))
    accepted = [
        (index, owner, scope)
        for (scope, _segment), members in groups.items()
        if len(members) >= 2 or (scope and scope in optimizer_scopes)
        for index, owner in members
    ]
    if not accepted:
        return set()
    position = {name: i for i, name in enumerate(names)}
    slots = {index for index, _, _ in accepted}
    scopes = set()
    for index, owner, scope in accepted:
        owner_at = position[owner]
        if owner_at not in slots and out[owner_at][0] == "variable":
            out[index] = ("slot", owner)
            scopes.add(scope)
    return scopes


def classify_records(records) -> list[tuple[str, str | None]]:
    """``(kind, base key)`` for each record of a source (``key``, ``name``, ``shape``, ``kind``).

    A record's own ``kind`` wins, with its own ``base`` (a key; a record without that field:
    None): the format knows (a Keras 3 optimizer's averages, from the object graph).
    Otherwise its ``name`` is classified, and a base name is turned back into the key of the
    entry with that name (for a shadow whose variable is absent, the key the variable would
    have: the shadow's key with the name replaced).
    """
    names = [r[1] for r in records]
    shapes = dict(zip(names, [r[3] for r in records]))
    by_name = None  # name -> key, built when the first base needs it
    out = []
    append = out.append
    for record, decided in zip(records, classify_names(names, shapes)):
        key, name, own = record[0], record[1], record[5]
        if own is not None:
            append((own, record[6] if len(record) > 6 else None))
        elif decided[1] is None:
            append(decided)
        else:
            if by_name is None:
                by_name = {r[1]: r[0] for r in records}
            kind, base = decided
            owner = by_name.get(base)
            if owner is None:  # the owner is not in the checkpoint: same suffix as this entry
                owner = base + key[len(name) :] if key.startswith(name) else base
            append((kind, owner))
    return out
