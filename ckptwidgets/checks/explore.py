"""Checks for the exercises of notebook 06, *Explore a real checkpoint*.

Each check prints one line, ``Correct: ...`` or ``Not yet: <hint>``; see
:mod:`ckptwidgets.checks`. Both exercises are done in a widget:
:func:`shadow_selected` reads the selection of a :class:`~ckptwidgets.CheckpointBrowser`
(``browser.model.selected``), and :func:`finetune_from_ema` reads the plan and the last
report of a :class:`~ckptwidgets.VariableMapper`, then compares the restored variables with
the checkpoint's values.

Example
-------
>>> import numpy as np
>>> from ckptwidgets.sources.arrays import ArraySource
>>> from ckptwidgets.widgets import BrowserModel
>>> model = BrowserModel(ArraySource({"net/w": np.ones(2, np.float32),
...                                   "net/w/ExponentialMovingAverage": np.ones(2, np.float32)}))
>>> model.selected = "net/w"; shadow_selected(model, "net/w")
Not yet: 'net/w' is the raw weight itself (kind variable); its shadow is another entry, of kind ema, whose key starts with the same path.
>>> model.selected = "net/w/ExponentialMovingAverage"; shadow_selected(model, "net/w")
Correct: 'net/w/ExponentialMovingAverage' is the EMA shadow of 'net/w': its key plus '/ExponentialMovingAverage', kind ema, the same shape [2].
"""
from __future__ import annotations

import numpy as np

from .._text.format import format_shape
from ._answers import plan_of
from . import check, correct, not_yet

__all__ = ["shadow_selected", "finetune_from_ema"]

#: The suffix of an ``ExponentialMovingAverage`` shadow's key.
SHADOW = "/ExponentialMovingAverage"

#: The new head of notebook 06's fine-tuned student (a Dense layer named ``predictions``).
HEAD = ("finetune/predictions/kernel", "finetune/predictions/bias")


# --- exercise 1: a shadow's key, found in the CheckpointBrowser -------------------------------
@check
def shadow_selected(browser, variable):
    """The browser's selected entry is the EMA shadow of the checkpoint key ``variable``.

    Parameters
    ----------
    browser : CheckpointBrowser or BrowserModel
        Read: ``model.selected`` and ``model.checkpoint``.
    variable : str
        A key of the checkpoint that has a shadow.
    """
    model = getattr(browser, "model", browser)
    if not (hasattr(model, "selected") and hasattr(model, "checkpoint")):
        return not_yet(f"pass the CheckpointBrowser (or its model) to the check, not a {type(browser).__name__}.")
    ckpt = model.checkpoint
    if ckpt is None:
        return not_yet(f"the browser could not open its checkpoint: {getattr(model, 'error', '') or 'no checkpoint'}")
    shadow = ckpt.ema_shadows.get(variable)
    if shadow is None:
        return not_yet(f"{variable!r} has no EMA shadow in this checkpoint: browse the checkpoint the notebook saved.")
    selected = model.selected
    if selected is None:
        return not_yet(
            "nothing is selected: type the shadow's key in the go-to box and press Enter, or click the "
            "magnifier button of its row (a word in the filter box narrows the table)."
        )
    if selected == shadow.key:
        return correct(
            f"{shadow.key!r} is the EMA shadow of {variable!r}: its key plus {SHADOW!r}, kind ema, "
            f"the same shape {format_shape(shadow.shape)}."
        )
    if selected == variable:
        return not_yet(
            f"{variable!r} is the raw weight itself (kind variable); its shadow is another entry, of kind ema, "
            "whose key starts with the same path."
        )
    entry = ckpt.find(selected)
    if entry is None:
        return not_yet(f"{selected!r} is not a key of this checkpoint: choose a row of the table.")
    if entry.kind == "ema":
        return not_yet(
            f"{selected!r} is a shadow, but of {entry.base!r}; find the one of {variable!r} "
            f"(type a word of it in the filter box)."
        )
    return not_yet(
        f"{selected!r} is selected, a {entry.kind} entry; select the EMA shadow of {variable!r} "
        f"(tick only the kind ema, or type a word of its name in the filter box)."
    )


# --- exercise 2: fine-tune from the EMA, in the VariableMapper --------------------------------
def _value(info, session):
    """The current value of a plan's variable, as a NumPy array."""
    if info.graph is not None:
        if session is None:
            raise ValueError(f"{info.name} lives in a graph: the mapper needs its session")
        return session.run(info.tf_variable)
    return info.tf_variable.numpy()


def _layer_path(name: str) -> str:
    """``layer/variable``: a Keras path without its scope (``finetune/Conv1/kernel`` -> ``Conv1/kernel``)."""
    parts = name.split("/")
    return "/".join(parts[-2:])


@check
def finetune_from_ema(mapper, head=HEAD):
    """Fine-tuning from the EMA: ``head`` left out, every other variable read from its shadow, restored.

    The plan of ``mapper`` (a :class:`~ckptwidgets.VariableMapper`, its model, or a plan)
    must leave the ``head`` variables unmapped (they keep their initialisation), map every
    other variable to the checkpoint key of its own layer path, reading the
    ``/ExponentialMovingAverage`` shadow wherever the checkpoint has one, and have no
    problems. For a mapper, its last restore must be of this plan; and every mapped
    variable must now hold the checkpoint's value of its key (read with the checkpoint's
    own reader, not from the report).

    Parameters
    ----------
    mapper : VariableMapper or MapperModel or RestorePlan
    head : sequence of str
        Names of the new head's variables, which get no key.
    """
    plan, model = plan_of(mapper)
    if plan is None:
        return not_yet(f"pass the VariableMapper (or its plan) to the check, not a {type(mapper).__name__}.")
    ckpt, mapping = plan.checkpoint, plan.mapping
    missing = [name for name in head if name not in plan.infos]
    if missing:
        return not_yet(f"this mapper has no variable {missing[0]!r}: it should hold the fine-tuned model's weights.")
    for name in head:
        if name in mapping:
            problem = next((p for p in plan.problems if p.variable == name), None)
            shape, _ = plan.describe(name)
            entry = ckpt.find(mapping[name])
            if problem is not None and problem.reason == "shape_mismatch" and entry is not None:
                why = f": the new head is {format_shape(shape)}, the key {format_shape(entry.shape)}"
            elif problem is not None:
                why = f": {problem.reason.replace('_', ' ')}"
            else:
                why = ""
            return not_yet(
                f"{name} still reads {mapping[name]!r}{why}. The new head starts from its initialiser: choose "
                "(none) in its dropdown ('show: problems' lists the rows to fix)."
            )
    backbone = [name for name in plan.infos if name not in head]
    unmapped = [name for name in backbone if name not in mapping]
    if unmapped:
        return not_yet(
            f"{unmapped[0]} is unmapped{f' (and {len(unmapped) - 1} more)' if len(unmapped) > 1 else ''}: only "
            "the head starts from scratch; choose its key again (Auto-map matches all again, then the head needs "
            "(none) once more)."
        )
    if plan.problems:
        return not_yet(f"the plan still has a problem: {plan.problems[0].message}")
    raw = [name for name in backbone if mapping[name] in ckpt.ema_shadows and not mapping[name].endswith(SHADOW)]
    if raw:
        return not_yet(
            f"{raw[0]} reads the raw weight {mapping[raw[0]]!r}{f' (and {len(raw) - 1} more)' if len(raw) > 1 else ''}, "
            "not its EMA shadow: press 'prefer EMA ★' (it keeps your (none) choices)."
        )
    for name in backbone:
        key = mapping[name]
        if _layer_path(key.removesuffix(SHADOW)) != _layer_path(name):
            return not_yet(f"{name} reads {key!r}, another layer's value: choose the key of its own layer.")
    session = getattr(model, "session", None)
    if model is not None and hasattr(model, "report"):
        if model.report is None:
            return not_yet("the plan is right; now restore it: press Restore in the mapper (or call its .restore()).")
        if not model.report_current:
            return not_yet("the plan changed since the last restore (the report is greyed out): press Restore again.")
    by_key = {}
    for name in backbone:
        by_key.setdefault(ckpt[mapping[name]].key, []).append(name)
    off = []
    for key, value in ckpt.read_many(list(by_key)):  # one tensor in memory at a time
        off += [name for name in by_key[key] if not np.array_equal(_value(plan.infos[name], session), value)]
    order = {name: i for i, name in enumerate(backbone)}
    off.sort(key=order.__getitem__)
    if off:
        name = off[0]
        what = "the checkpoint's value"
        if mapping[name].endswith(SHADOW):
            what = "its EMA shadow"
        return not_yet(
            f"{name} does not hold {what} {mapping[name]!r}{f' ({len(off)} variables differ)' if len(off) > 1 else ''}: "
            "restore first (press Restore); a training step after the restore changes the values, so check before training."
        )
    shadows = sum(mapping[name].endswith(SHADOW) for name in backbone)
    return correct(
        f"the backbone's {shadows} weights hold their EMA shadows and its {len(backbone) - shadows} other variables "
        f"(BatchNorm statistics) their raw values; the head ({', '.join(head)}) keeps its initialisation: "
        "ready to fine-tune."
    )
