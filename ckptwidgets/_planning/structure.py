"""Which route :func:`ckptwidgets.plan_restore` takes to each variable's key.

- ``match="name"``: rules, then the checkpoint's structure where it has one (a TF2 object
  graph walked from a trackable root, :mod:`.graph_match`; the dataset a Keras 3 file holds
  for each variable, :mod:`.keras_match`; a legacy ``.h5``'s layer of the same name as each of
  the model's, :func:`.order.legacy_name_keys`), then names (:mod:`.matching`). A Keras 3 model's
  variables still unmapped are tried again without the model's own name; a Keras 2
  checkpoint that names do not fit gets a note pointing to ``match="order"``.
- ``match="order"``: a Keras 2 checkpoint's layers paired with the model's by position
  (:mod:`.order`); no rules, no EMA shadows.

Each route also returns notes: how the structure was matched, for ``plan.hints``.
"""
from __future__ import annotations

from typing import NamedTuple

from .._text.format import count_of
from .graph_match import graph_keys
from .keras_match import is_keras3_file, keras_file_keys
from .matching import Rules, map_under_scope, map_variables
from .order import legacy_name_keys, order_keys
from .variables import is_keras_object
from ..errors import PlanError

__all__ = ["MATCHES", "Found", "find_keys"]

#: The ways :func:`ckptwidgets.plan_restore` can pair variables with keys (its ``match``).
MATCHES = ("name", "order")


class Found(NamedTuple):
    """What matching found: ``{name: key}``, ``{name: keys two rules gave}``, whether every
    mapped key fits its variable (None: not known yet), and notes for ``plan.hints``."""

    mapping: dict
    conflicts: dict
    compatible: bool | None
    notes: list


def find_keys(ckpt, variables, infos: dict, skipped: set, rules, prefer_ema: bool, given_root: bool,
              match: str) -> Found:
    """The keys of ``infos`` (variables in ``skipped`` get none) by the route ``match`` names.

    ``variables`` is what the user passed (a root's structure is walked from it);
    ``given_root`` says it is a model or module rather than a list or dict.
    """
    if match == "order":
        mapping, notes = _by_order(ckpt, variables, infos, skipped, rules, prefer_ema, given_root)
        return Found(mapping, {}, None, notes)
    table = Rules(rules, infos)
    structural, notes = _structure(ckpt, variables, infos, given_root)
    mapping, conflicts, compatible = map_variables(ckpt, infos, table, skipped, prefer_ema, structural)
    if given_root and len(mapping) < len(infos):
        compatible = _without_model_name(ckpt, variables, infos, table, skipped, prefer_ema, mapping, conflicts,
                                         notes) and compatible
    legacy = getattr(ckpt.source, "layout", None) == "legacy"
    if given_root and (len(mapping) < len(infos) if legacy else not mapping) and _keras2_structure(ckpt, variables):
        notes.append(
            f"Keras file {ckpt.prefix!r} is a legacy .h5, which model.load_weights reads by layer order: "
            "plan_restore(ckpt, model, match='order') pairs its layers with this model's the same way."
            if legacy else
            f"Checkpoint {ckpt.prefix!r} was written from a Keras 2 model (its layers are numbered, not named): "
            "plan_restore(ckpt, model, match='order') pairs them with this model's layers by order."
        )
    return Found(mapping, conflicts, compatible, notes)


def _without_model_name(ckpt, model, infos, table, skipped, prefer_ema, mapping, conflicts, notes) -> bool:
    """Match a Keras 3 model's unmapped variables again without the model's own name
    (``classifier/dense/kernel`` as ``dense/kernel``), adding to ``mapping`` and ``notes``;
    whether what it added fits. Not for Keras files, which are matched by structure or order."""
    name = getattr(model, "name", None)
    if not isinstance(name, str) or not name or not is_keras_object(model):
        return True
    if getattr(ckpt.source, "layout", None) in ("legacy", "keras3"):
        return True
    scope = name + "/"
    found, compatible = map_under_scope(ckpt, infos, table, skipped, prefer_ema, scope, mapping, conflicts)
    if not found:
        return True
    mapping.update(found)
    example = next(iter(found))
    notes.append(
        f"Keras 3 names this model's variables under the model's own name ({scope!r}), which the names in "
        f"checkpoint {ckpt.prefix!r} lack: matched {count_of(len(found), 'variable')} without it "
        f"({example!r} <- {found[example]!r})."
    )
    return compatible


def _structure(ckpt, variables, infos, given_root) -> tuple[dict | None, list[str]]:
    """``({name: key}, notes)`` found by structure, before names: the object graph of a TF2
    checkpoint walked from a trackable root, or the dataset Keras 3 loads into each variable."""
    if is_keras3_file(ckpt):
        return keras_file_keys(ckpt, variables, infos, given_root)
    if given_root and getattr(ckpt.source, "layout", None) == "legacy" and hasattr(variables, "layers"):
        keys, notes = legacy_name_keys(ckpt, variables)
        return {name: keys[id(info.variable)] for name, info in infos.items() if id(info.variable) in keys}, notes
    if not given_root or not ckpt.object_based or ckpt.object_graph is None:
        return None, []
    return graph_keys(ckpt, variables, {name: info.variable for name, info in infos.items() if info.part is None})


def _keras2_structure(ckpt, model) -> bool:
    """A Keras 2 checkpoint (legacy .h5, or layer_with_weights-N objects) and a model with layers."""
    if not hasattr(model, "layers"):
        return False
    if getattr(ckpt.source, "layout", None) == "legacy":
        return True
    return ckpt.object_based and any(e.key.startswith("layer_with_weights-") or "/layer_with_weights-" in e.key
                                     for e in ckpt.entries)


def _by_order(ckpt, model, infos, skipped, rules, prefer_ema, given_root) -> tuple[dict, list[str]]:
    if rules:
        raise PlanError(
            "match='order' pairs variables by position, so rules (which rename) do not apply: leave them out and "
            "edit the plan with plan.assign(variable, key)."
        )
    if prefer_ema:
        raise PlanError("prefer_ema=True looks up shadows by name; match='order' pairs by position: use one.")
    if not given_root:
        raise PlanError("match='order' pairs the layers of a Keras model: pass the model itself, not a list or dict.")
    keys, notes = order_keys(ckpt, model)
    mapping = {
        name: keys[id(info.variable)]
        for name, info in infos.items()
        if id(info.variable) in keys and name not in skipped
    }
    return mapping, notes
