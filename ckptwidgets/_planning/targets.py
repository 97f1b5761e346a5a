"""Which keys a plan's variables get, whatever the target: TF variables, a Keras model or a
torch module, and across frameworks.

Private helper of :func:`ckptwidgets.plan_restore`:

- a torch module (``VarInfo.framework == "torch"``): rules (a side ending in ``.`` is a scope
  too, :mod:`.rules`), then exact names (a ``.pt`` / ``.safetensors`` saved from the module's
  ``state_dict``: identity), then EMA shadows; no TensorFlow structure (nothing imports TF);
  ``match="order"``: a checkpoint of the other framework whose layers pair by order alone
  (within each layer family, names ignored); a torch checkpoint is matched by name;
- anything else: :func:`.structure.find_keys` (rules, structure, names);
- then, when the checkpoint is of another framework than
  the variables (torch names against Keras / TF names), cross-framework pairing
  (:mod:`.cross`): each pair is an assignment with its keys and
  its layout transform; what it cannot decide is a ``layout_mismatch`` problem naming both
  shapes; which layer went where goes to ``plan.hints``. A pair comes before the exact name
  (and before structure) for the variables it pairs; a key a rule gives still wins. An "as is"
  pair is a plain assignment (no transform). A problem about a variable that has a key anyway
  (from a rule or its name) is settled; one about no variable (layer counts that differ)
  matters while a variable has no key (:func:`settled`, also after each edit of the plan).

A key picked by hand (``plan.assign(name, key)`` without a transform) in a cross-framework
plan is read through the transform pairing its layer with the variable's gives
(:func:`read_as`, :class:`.cross.KeyLayouts`); a pick that cannot be decided is a
``layout_mismatch`` problem bound to that key (it holds while the variable reads it), never a
plain copy.
"""
from __future__ import annotations

from typing import NamedTuple

from .cross import KeyLayouts, cross_framework_matches
from .matching import Rules, map_variables
from .structure import find_keys
from .torch_vars import is_bookkeeping
from ..errors import PlanError

__all__ = ["Planned", "plan_keys", "cross_matches", "settled", "KeyLayouts", "read_as"]


class Planned(NamedTuple):
    """What matching found: ``{name: key}``, rule conflicts, whether every mapped key fits
    (None: not known), notes for ``plan.hints``, ``{name: (Transform, extra_keys)}`` and the
    ``[(variable, key, message)]`` layout problems of cross-framework pairing."""

    mapping: dict
    conflicts: dict
    compatible: bool | None
    notes: list
    transforms: dict
    layout: list


def cross_matches(ckpt, infos: dict, by_name: bool = True):
    """``cross_framework_matches(ckpt, [VarInfo], by_name)`` (:mod:`.cross`): None unless the
    checkpoint's names and the variables are of different frameworks."""
    return cross_framework_matches(ckpt, list(infos.values()), by_name=by_name)


def plan_keys(ckpt, variables, infos: dict, skipped: set, rules, prefer_ema: bool, given_root: bool,
              match: str) -> Planned:
    """The keys (and transforms) of ``infos``; variables in ``skipped`` get none."""
    torch_target = bool(infos) and next(iter(infos.values())).framework == "torch"
    if torch_target:
        if match != "name" and cross_matches(ckpt, infos, by_name=False) is None:
            raise PlanError("match='order' pairs layers by their order alone: a Keras model's, or a torch module's "
                            "from a checkpoint of Keras / TF names; a torch checkpoint goes into a torch module by "
                            "name (its state_dict names) and by rules: leave match at its default.")
        mapping, conflicts, compatible = map_variables(ckpt, infos, Rules(rules, infos, dotted=True), skipped,
                                                       prefer_ema)
        notes = []
    else:
        found = find_keys(ckpt, variables, infos, skipped, rules, prefer_ema, given_root, match)
        mapping, conflicts, compatible, notes = found.mapping, found.conflicts, found.compatible, list(found.notes)
    transforms, layout = {}, []
    cross = cross_matches(ckpt, infos, by_name=match == "name") if match == "name" or torch_target else None
    if cross is not None:
        by_rule = _ruled(ckpt, infos, rules, torch_target)
        shadows = ckpt.ema_shadows if prefer_ema else {}
        paired = {}
        for name, (keys, transform) in cross.pairs.items():
            if name in infos and name not in skipped and name not in conflicts and not by_rule(name) and keys:
                keys = tuple(shadows[key].key if key in shadows else key for key in keys)  # the layer's averages
                paired[name] = keys[0]
                if len(keys) > 1 or not getattr(transform, "is_identity", False):  # "as is": a plain copy
                    transforms[name] = (transform, tuple(keys[1:]))
        if paired:
            merged = dict(mapping, **paired)
            mapping = {name: merged[name] for name in infos if name in merged}  # plan order
            compatible = None  # the transforms' shapes are checked by the analysis
        layout = settled(cross.problems, mapping, infos)
        notes += list(cross.hints)
    return Planned(mapping, conflicts, compatible, notes, transforms, layout)


def settled(problems, mapping: dict, infos: dict) -> list:
    """The cross-framework problems that still matter: a variable's while it has no key (one
    that a rule or its name gave it settles it), one bound to a key picked by hand while the
    variable reads that key, and one about no variable (layer counts that differ) while some
    variable other than bookkeeping has no key."""
    open_names = [n for n, i in infos.items() if n not in mapping and not is_bookkeeping(i)]
    return [(name, key, message) for name, key, message in problems
            if (name is None and open_names)
            or (name is not None and (name not in mapping if key is None else mapping.get(name) == key))]


def read_as(layouts: KeyLayouts, name: str, key: str) -> tuple:
    """``(keys, Transform or None, layout problem or None)`` of ``key`` picked by hand for ``name``.

    Within one framework the key as it is; across frameworks the transform
    :meth:`.cross.KeyLayouts.pick` derives (None for "as is" of one key), or the key as it is
    with the message of why its layout cannot be decided.
    """
    if not layouts.crosses:
        return (key,), None, None
    picked = layouts.pick(name, key)
    if isinstance(picked, str):
        return (key,), None, picked
    keys, transform = picked
    if len(keys) == 1 and transform.is_identity:
        return keys, None, None
    return keys, transform, None


def _ruled(ckpt, infos: dict, rules, dotted: bool):
    """``ruled(name)``: True when one of ``rules`` gives the variable a key (rules beat cross pairs)."""
    if not rules:
        return lambda name: False
    match = Rules(rules, infos, dotted=dotted).matcher(ckpt, exact_names=False)
    return lambda name: match(name)[0] is not None
