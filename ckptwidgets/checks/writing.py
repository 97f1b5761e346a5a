"""Checks for the exercises of notebook 07, *Write a converted checkpoint*.

Each check prints one line, ``Correct: ...`` or ``Not yet: <hint>``; see
:mod:`ckptwidgets.checks`. :func:`predict_write_count` checks a prediction of a dry run;
:func:`serving_checkpoint` opens the checkpoint a learner wrote with plain TensorFlow
(``tf.train.load_checkpoint``) and compares its keys and values with what a serving
checkpoint should hold; :func:`most_changed_weight` reads the selection of a
:class:`~ckptwidgets.CheckpointDiff` (or of its :class:`~ckptwidgets.widgets.DiffModel`), so
that exercise can be done in the widget.

Example
-------
>>> import numpy as np
>>> from ckptwidgets.sources.arrays import ArraySource
>>> run = ArraySource({"w": np.ones(2, np.float32), "w/Adam": np.zeros(2, np.float32),
...                    "w/ExponentialMovingAverage": np.ones(2, np.float32), "global_step": np.int64(7)})
>>> predict_write_count(3, run)
Not yet: promote_ema() writes each shadow under its variable's key, in place of the raw weight: it adds no tensor.
>>> predict_write_count(2, run)
Correct: 2 tensors: 1 weight (each now holding its EMA shadow) and global_step; 1 slot, 0 optimizer counters and the shadows' own keys are left out.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._text.format import count_of
from ..reader import open_checkpoint
from ..write import KEEP_META, plan_write
from ._answers import as_int, is_todo
from . import TODO, check, correct, not_yet  # the docstrings' examples use TODO

__all__ = ["predict_write_count", "serving_checkpoint", "most_changed_weight"]

#: The suffix of an ``ExponentialMovingAverage`` shadow's key.
SHADOW = "/ExponentialMovingAverage"


# --- exercise 1: predict the dry run ------------------------------------------------------
@check
def predict_write_count(answer, ckpt):
    """The number of tensors ``plan_write(ckpt).strip().promote_ema()`` writes.

    Parameters
    ----------
    answer : int
        The learner's prediction.
    ckpt : Checkpoint or str
        The training checkpoint (anything :func:`ckptwidgets.open_checkpoint` takes).
    """
    if is_todo(answer):
        return not_yet("replace TODO with a number: how many tensors will the serving plan write?")
    n = as_int(answer)
    if n is None:
        return not_yet(f"the answer is a number of tensors, an int such as 7; not a {type(answer).__name__}.")
    ckpt = open_checkpoint(ckpt)
    expected = len(plan_write(ckpt).strip().promote_ema().items)
    kinds = [entry.kind for entry in ckpt.entries]
    total, shadows, slots = len(kinds), kinds.count("ema"), kinds.count("slot")
    weights = kinds.count("variable")
    counters = [e.key for e in ckpt.entries if e.kind == "meta" and e.key.rsplit("/", 1)[-1] in KEEP_META]
    optimizer_meta = [e.key for e in ckpt.entries if e.kind == "meta" and e.key not in counters
                      and e.key not in ckpt.bookkeeping]
    if n == expected:
        kept = " and ".join(counters) if counters else "no counter"
        return correct(
            f"{expected} tensors: {count_of(weights, 'weight')} (each now holding its EMA shadow) and {kept}; "
            f"{count_of(slots, 'slot')}, {count_of(len(optimizer_meta), 'optimizer counter')} and the shadows' own keys "
            "are left out."
        )
    if n < 0:
        return not_yet("a number of tensors is 0 or more.")
    if n == total:
        return not_yet(f"{total} is every entry of the checkpoint: strip() and promote_ema() both leave some out.")
    if n > total:
        return not_yet(f"the plan adds nothing: it writes at most the checkpoint's {total} entries.")
    if counters and n == expected - len(counters):
        return not_yet(f"strip() keeps {' and '.join(counters)}: a step counter, not optimizer state.")
    if shadows and n == expected + shadows:
        return not_yet("promote_ema() writes each shadow under its variable's key, in place of the raw weight: it adds no tensor.")
    if optimizer_meta and n == expected + len(optimizer_meta):
        return not_yet(
            f"strip() also leaves out the optimizer's counters ({', '.join(optimizer_meta)}): meta entries "
            "that are optimizer state."
        )
    if slots and n in (expected + slots, expected + slots + len(optimizer_meta)):
        return not_yet(f"strip() leaves out the {slots} optimizer slots (Adam's m and v of each weight).")
    return not_yet(
        f"not {n}: of the {total} entries, strip() leaves out the slots and the optimizer's counters, and "
        "promote_ema() puts each shadow in its weight's place; count what remains (the table above lists the kinds)."
    )


# --- exercise 2: write a serving checkpoint -----------------------------------------------
def _prefix_of(answer):
    """``(prefix, None)`` of what the learner passed, or ``(None, hint)``."""
    if hasattr(answer, "items") and hasattr(answer, "write") and hasattr(answer, "dropped"):
        return None, ("that is the plan, a dry run: nothing is written until you call plan.write(out); "
                      "assign its result's .prefix.")
    if hasattr(answer, "prefix") and hasattr(answer, "keys") and not isinstance(answer, (str, os.PathLike)):
        answer = answer.prefix  # a WriteReport (or a Checkpoint): its prefix
    if not isinstance(answer, (str, os.PathLike)):
        return None, f"assign the prefix of the checkpoint you wrote (a str, e.g. report.prefix), not a {type(answer).__name__}."
    prefix = os.fspath(answer)
    for suffix in (".index", ".meta"):
        if prefix.endswith(suffix):
            return None, f"a checkpoint is named by its prefix, without {suffix!r}: {prefix[: -len(suffix)]!r}."
    if ".data-" in Path(prefix).name:
        return None, f"a checkpoint is named by its prefix, without the data file's suffix: {prefix.split('.data-')[0]!r}."
    if os.path.isdir(prefix):
        return None, f"{prefix!r} is a folder; assign the checkpoint's prefix in it (e.g. .../model.ckpt, what report.prefix says)."
    if not os.path.isfile(prefix + ".index"):
        return None, (f"nothing is written at {prefix!r} (no {Path(prefix).name}.index): did the plan's .write(out) run? "
                      "A plan printed is only the dry run.")
    return prefix, None


def _rename(key: str, old_scope: str, scope: str) -> str:
    return scope + key[len(old_scope):] if key.startswith(old_scope) else key


@check
def serving_checkpoint(prefix, source, scope="serving/", old_scope="model/"):
    """The checkpoint at ``prefix`` is ``source`` made for serving, under ``scope``.

    It holds the step counter ``global_step`` of ``source`` and each weight of ``source``
    that has an EMA shadow, renamed from ``old_scope`` to ``scope`` and holding the shadow's
    value; no optimizer slots, no optimizer counters, no shadows. Both checkpoints are read
    with plain TensorFlow (``tf.train.load_checkpoint``).

    Parameters
    ----------
    prefix : str or os.PathLike or WriteReport
        What the learner wrote.
    source : str
        The training checkpoint it was made from.
    scope, old_scope : str
        The scope of the serving weights, and the training scope it replaces.

    Examples
    --------
    >>> serving_checkpoint(TODO, "run/model.ckpt-40")
    Not yet: replace TODO with the prefix you wrote: exercise_prefix = plan.write(out).prefix, where plan strips, promotes the EMA and renames 'model/' to 'serving/'.
    """
    if is_todo(prefix):
        return not_yet(
            "replace TODO with the prefix you wrote: exercise_prefix = plan.write(out).prefix, where plan strips, "
            f"promotes the EMA and renames {old_scope!r} to {scope!r}."
        )
    prefix, hint = _prefix_of(prefix)
    if hint:
        return not_yet(hint)
    source = os.fspath(source)
    if os.path.abspath(prefix) == os.path.abspath(source):
        return not_yet("that is the training checkpoint itself; write a new one (plan.write(out) never changes its source).")

    from .._tf.quiet import import_tensorflow

    tf = import_tensorflow()
    reader, src = tf.train.load_checkpoint(prefix), tf.train.load_checkpoint(source)
    keys, src_keys = reader.get_variable_to_dtype_map(), src.get_variable_to_dtype_map()
    kinds = {entry.key: entry.kind for entry in open_checkpoint(source).entries}
    weights = sorted(key for key in src_keys if key + SHADOW in src_keys)
    expected = {_rename(key, old_scope, scope): key for key in weights}
    counters = sorted(key for key in src_keys if kinds.get(key) == "meta" and key.rsplit("/", 1)[-1] in KEEP_META)

    def source_key(key):
        """The key of ``source`` a written key most likely came from (renames undone), or None."""
        for candidate in (key, _rename(key, scope, old_scope)):
            if candidate in src_keys:
                return candidate
        return None

    extra = sorted(set(keys) - set(expected) - set(counters))
    by_kind = {}
    for key in extra:
        by_kind.setdefault(kinds.get(source_key(key) or "", "other"), []).append(key)
    if "slot" in by_kind:
        return not_yet(f"the checkpoint still holds optimizer slots ({by_kind['slot'][0]!r}, ...): strip() leaves them out.")
    if "meta" in by_kind:
        return not_yet(
            f"the checkpoint still holds the optimizer's counters ({', '.join(by_kind['meta'])}): strip() with its "
            "default kinds leaves them out and keeps global_step."
        )
    if "ema" in by_kind or any(key.endswith(SHADOW) for key in keys):
        shadow = (by_kind.get("ema") or sorted(key for key in keys if key.endswith(SHADOW)))[0]
        return not_yet(f"the checkpoint still holds shadows ({shadow!r}, ...): promote_ema() writes each under its weight's key.")
    nested = sorted(
        (key for key in keys if key.startswith(scope + old_scope) or (key.startswith(scope) and source_key(key[len(scope):]))),
        key=lambda key: (not key.startswith(scope + old_scope), key),
    )
    if nested:
        return not_yet(
            f"{nested[0]!r}: a root rule put the whole old name under {scope!r}; rename the scope itself, "
            f"{{{old_scope!r}: {scope!r}}}, so that the step counter keeps its name too."
        )
    missing_counters = [key for key in counters if key not in keys]
    if missing_counters:
        moved = [key for key in keys if key.rsplit("/", 1)[-1] == missing_counters[0].rsplit("/", 1)[-1]]
        if moved:
            return not_yet(f"the step counter was renamed to {moved[0]!r}: it keeps its name {missing_counters[0]!r}; rename the scope {old_scope!r} only.")
        return not_yet(
            f"{missing_counters[0]} is missing: the serving checkpoint keeps the step counter. strip() keeps it "
            "by default (keep=('global_step', 'save_counter')); keep=() or a filter matching it drops it."
        )
    missing = sorted(set(expected) - set(keys))
    if missing:
        if all(weight in keys for weight in weights):
            return not_yet(
                f"the weights are still under {old_scope!r} ({weights[0]!r}); rename the scope: "
                f".rename({{{old_scope!r}: {scope!r}}})."
            )
        if extra:
            return not_yet(f"{extra[0]!r} is not a key of the serving checkpoint: the weights go under {scope!r}, e.g. {missing[0]!r}.")
        return not_yet(f"{missing[0]!r} is missing: every weight with a shadow belongs in the serving checkpoint.")
    if extra:
        return not_yet(f"{extra[0]!r} does not belong in the serving checkpoint: only the weights under {scope!r} and {', '.join(counters)}.")

    for key in counters:
        written, wanted = reader.get_tensor(key), src.get_tensor(key)
        if not np.array_equal(written, wanted):
            return not_yet(
                f"{key} is {written}, but the source checkpoint is at step {wanted}: start the plan from the "
                "checkpoint the exercise names (its source), not another step."
            )
    raw, off = [], []
    for key, old in expected.items():
        written = reader.get_tensor(key)
        shadow = src.get_tensor(old + SHADOW)
        if written.dtype != shadow.dtype:
            return not_yet(f"{key} is {written.dtype}, the weights are {shadow.dtype}: write them as they are (no cast()).")
        if np.array_equal(written, shadow):
            continue
        (raw if np.array_equal(written, src.get_tensor(old)) else off).append(key)
    if raw and not off:
        return not_yet(
            f"{raw[0]} holds the raw weight, not its EMA shadow: the shadows were dropped instead of promoted. "
            "Use promote_ema(), which writes each shadow under its weight's key."
        )
    if raw or off:
        return not_yet(f"{(off or raw)[0]} does not hold the EMA shadow of {expected[(off or raw)[0]]!r} in the source checkpoint.")
    step = ", ".join(f"{key} = {src.get_tensor(key)}" for key in counters)
    return correct(
        f"{len(keys)} tensors: {step} and the {len(expected)} weights under {scope!r}, each holding its EMA shadow; "
        "no slots, no optimizer counters, no shadows."
    )


# --- exercise 3: the most changed weight, in the CheckpointDiff widget ------------------------
_KIND_WORDS = {
    "slot": "an optimizer slot",
    "ema": "an EMA shadow",
    "meta": "a counter",
}


@check
def most_changed_weight(diff, kind="variable"):
    """The diff's selected row is the entry of ``kind`` with the largest relative change.

    "Changed most" is the widget's ranking, its sort "most changed first": the relative
    change ``||a - b|| / ||a||`` (the ``rel. change`` column). The check reads the
    selection of a :class:`~ckptwidgets.CheckpointDiff` (``diff.model.selected``) or of a
    :class:`~ckptwidgets.widgets.DiffModel`.

    Examples
    --------
    >>> import numpy as np
    >>> from ckptwidgets.sources.arrays import ArraySource
    >>> from ckptwidgets.widgets import DiffModel
    >>> model = DiffModel(ArraySource({"w": np.ones(2), "b": np.ones(2)}),
    ...                   ArraySource({"w": np.full(2, 1.5), "b": np.full(2, 3.0)}))
    >>> most_changed_weight(model)
    Not yet: nothing is selected yet: click the magnifier button of a row (sort 'most changed first', filter kind:variable).
    >>> model.selected = "b"; most_changed_weight(model)
    Correct: b changed most of the 2 weights: relative change ||a - b|| / ||a|| = 2, where the next is 0.5.
    """
    model = getattr(diff, "model", diff)
    if not (hasattr(model, "selected") and hasattr(model, "diff") and hasattr(model, "rows")):
        return not_yet(f"pass the CheckpointDiff widget (or its model) to the check, not a {type(diff).__name__}.")
    found = model.diff
    if found is None:
        return not_yet(f"the widget could not compare its checkpoints: {model.error or 'no diff'}")
    candidates = [row for row in found.rows if row.kind == kind and row.rel_change is not None]
    if not candidates:
        return not_yet(f"this diff has no compared entries of kind {kind!r}; compare two checkpoints of the run.")
    ranked = sorted(candidates, key=lambda row: -row.rel_change)
    best = ranked[0]
    words = "weights" if kind == "variable" else f"{kind} entries"
    if model.selected is None:
        return not_yet(
            f"nothing is selected yet: click the magnifier button of a row (sort 'most changed first', filter kind:{kind})."
        )
    row = found.find(model.selected)
    if row is None:
        return not_yet(f"{model.selected!r} is not a key of this diff: click the magnifier button of one of its rows.")
    if row.kind != kind:
        what = _KIND_WORDS.get(row.kind, f"of kind {row.kind}")
        return not_yet(
            f"{row.key} is {what}, not one of the {words}: type kind:{kind} in the filter box to see only those."
        )
    if row.key == best.key:
        runner = f", where the next is {ranked[1].rel_change:.3g}" if len(ranked) > 1 else ""
        return correct(
            f"{row.key} changed most of the {len(candidates)} {words}: relative change ||a - b|| / ||a|| = "
            f"{row.rel_change:.3g}{runner}."
        )
    by_abs = max(candidates, key=lambda r: r.max_abs if r.max_abs is not None else -1.0)
    if row.key == by_abs.key:
        return not_yet(
            f"{row.key} has the largest max |a-b| ({row.max_abs:.3g}), but 'changed most' is relative to the "
            "tensor's size: the rel. change column, which the sort 'most changed first' orders by."
        )
    return not_yet(
        f"{row.key} changed by {row.rel_change:.3g} (rel. change); the largest change among the {words} is "
        "elsewhere: choose 'most changed first' in the sort menu."
    )
