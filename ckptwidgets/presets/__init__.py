"""Presets: named rename-and-transpose sets for well-known checkpoints whose names are standard.

A preset turns a :class:`~ckptwidgets.write.WritePlan` of, say, a google-research/bert TF1
checkpoint into one written under another framework's names: ``bert`` gives the
``state_dict`` names of transformers' ``BertModel`` (kernels transposed, ``gamma`` /
``beta`` -> ``weight`` / ``bias``, ``layer_N`` -> ``layer.N``; Adam's ``adam_m`` /
``adam_v``, ``global_step`` and the pre-training heads left out, each with why), as
transformers' old ``load_tf_weights_in_bert`` did, without TensorFlow and one tensor at a
time.

A preset is one JSON data file beside this module (its fields:
:mod:`ckptwidgets.presets._file`) and one line in :data:`PRESETS`. It is built on the
plan's public API only (``plan.items``, ``WritePlan(items, dropped, problems, notes)``,
``WriteItem(op="transform")``), so what it did shows in ``print(plan)`` like any operation.

Example
-------
>>> from ckptwidgets import plan_write                                      # doctest: +SKIP
>>> plan = apply_preset(plan_write("bert_model.ckpt"), "bert")              # doctest: +SKIP
>>> plan.write("model.safetensors")                                         # doctest: +SKIP
>>> sorted(PRESETS)
['bert']
>>> load_preset("bert").renamed("bert/encoder/layer_11/attention/self/query/kernel")
'encoder.layer.11.attention.self.query.weight'
"""
from __future__ import annotations

import difflib
import os

from .._text.format import count_of
from ..errors import PlanError
from ._file import Preset, read_preset

__all__ = ["PRESETS", "apply_preset", "load_preset", "Preset"]

#: Preset name -> its data file in this package.
PRESETS = {
    "bert": "bert.json",
}

_SHOWN = 3  # unknown keys named in the note


def load_preset(name: str) -> Preset:
    """The preset ``name`` of :data:`PRESETS`, read and checked.

    Raises
    ------
    PlanError
        No such preset (the message names the closest and lists them), or its file is bad.
    """
    if name not in PRESETS:
        close = difflib.get_close_matches(str(name), list(PRESETS), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise PlanError(f"No preset {name!r} ({hint}presets: {', '.join(PRESETS)}).")
    return read_preset(name, os.path.join(os.path.dirname(__file__), PRESETS[name]))


def apply_preset(plan, name: str):
    """``plan`` with preset ``name``'s rules applied: keys renamed, tensors transposed, some left out.

    Each item is taken by the first of: the preset's ``drop`` (left out, with its why); its
    first matching rule (renamed; transposed when the preset transposes the new key);
    otherwise left out as a key the preset does not know (also said in one note).

    Parameters
    ----------
    plan : WritePlan
        From :func:`ckptwidgets.plan_write` (and any operations before).
    name : str
        A name of :data:`PRESETS`.

    Returns
    -------
    WritePlan
        A new plan; ``plan`` is unchanged. A tensor the preset transposes that is not 2-D,
        or a preset that maps no key at all, is a problem of the plan (nothing is written).
    """
    from ..layouts import chain, transpose
    from ..write import WriteItem, WritePlan

    preset = load_preset(name)
    items, dropped, problems, unknown = [], [], [], []
    for item in plan.items:
        why = preset.why_dropped(item.key)
        new = None if why else preset.renamed(item.key)
        if why:
            dropped.append((item.key, why))
        elif new is None:
            unknown.append(item.key)
            dropped.append((item.key, f"the {name} preset has no rule for it"))
        elif not preset.transposed(new):
            items.append(item._replace(key=new))
        elif len(item.shape) != 2 or item.op not in ("copy", "cast", "transform"):
            what = f"is {len(item.shape)}-D" if len(item.shape) != 2 else f"is made by op {item.op!r}"
            problems.append(f"The {name} preset transposes {item.key!r} into {new!r}, but it {what} "
                            f"(shape {list(item.shape)}): a transpose takes a 2-D tensor that is copied or cast.")
            items.append(item._replace(key=new))
        else:
            turn = transpose() if item.op != "transform" else chain(item.transform, transpose())
            items.append(WriteItem(new, item.sources, item.dtype, turn.shape(item.shape), "transform", turn))
    notes = []
    if unknown:
        shown = ", ".join(map(repr, unknown[:_SHOWN])) + (", ..." if len(unknown) > _SHOWN else "")
        notes.append(f"The {name} preset has no rule for {count_of(len(unknown), 'key')}, left out: {shown} "
                     f"(add a rule to {preset.path} if the target needs them).")
    if plan.items and not items and not problems:
        problems.append(f"The {name} preset maps none of the plan's {len(plan.items)} keys "
                        f"(e.g. {plan.items[0].key!r}); it is for: {preset.description}.")
    return WritePlan(items, plan.dropped + dropped, plan.problems + problems, plan.notes + notes)
