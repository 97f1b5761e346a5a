"""Convert a TF1 name-based checkpoint into a TF2 object-based one for a model.

The TensorFlow migration guide's manual recipe ("Checkpoint conversion": build the TF2
model, load the TF1 values into its variables by name, save it with
``tf.train.Checkpoint``) in one call, with the checks of a restore plan and the safety of
the writer: the result is written to a temporary prefix, read back and compared value for
value with the source, then moved into place. Afterwards
``tf.train.Checkpoint(model=m).restore(out).assert_existing_objects_matched()`` works.

Example
-------
>>> import ckptwidgets.convert as c                                         # doctest: +SKIP
>>> c.convert("tf1/model.ckpt", "tf2/ckpt", build_model(), rules={"old/": "/"})  # doctest: +SKIP
"""
from __future__ import annotations

import os
import time

import numpy as np

from ._tf.quiet import import_tensorflow
from ._tf import private as _tfprivate
from .sources._atomic import WriteReport, staged, temporary_name
from .sources.bundle import check_output, move_into_place
from ._text.format import count_of
from .errors import WriteError
from .plan import plan_restore
from .reader import open_checkpoint
from .restore import restore

__all__ = ["convert"]


def convert(source, out, model, rules=None, prefer_ema=False, attribute="model", overwrite=False, dry_run=False):
    """Write ``source``'s values into ``model`` and save it as a TF2 object-based checkpoint.

    Parameters
    ----------
    source : str or Checkpoint
        The (TF1, name-based) checkpoint to convert.
    out : str or os.PathLike
        The output prefix.
    model : Keras model or tf.Module
        The model the new checkpoint is for, built (its variables exist). It ends up holding
        the converted values.
    rules, prefer_ema :
        As :func:`ckptwidgets.plan_restore`: map renamed scopes, load EMA shadows.
    attribute : str
        The root attribute: ``tf.train.Checkpoint(<attribute>=model)``.
    overwrite : bool
        Replace a checkpoint that exists at ``out``.
    dry_run : bool
        Refuse what the conversion would refuse (the same :class:`WriteError`), and return
        the plan it would restore and write, without touching the model or writing.

    Returns
    -------
    WriteReport
        What was written (with ``dry_run``: the :class:`~ckptwidgets.RestorePlan`).

    Raises
    ------
    WriteError
        A variable of the model finds no key, or a shape or dtype disagrees (nothing is
        written and the model is unchanged), or ``out`` exists.
    """
    start = time.perf_counter()
    tf = import_tensorflow()
    ckpt = open_checkpoint(source)
    prefix = check_output([ckpt], out, overwrite)
    plan = plan_restore(ckpt, model, rules=rules, prefer_ema=prefer_ema)
    if plan.problems or plan.unmapped:
        reasons = [p.message for p in plan.problems] + [
            f"variable {name!r} of the model finds no key in {ckpt.prefix!r}" for name in plan.unmapped
        ]
        raise WriteError(
            f"Nothing was written to {prefix!r}: the model does not fit the checkpoint ({count_of(len(reasons), 'problem')}): "
            + "; ".join(reasons[:5]) + ("; ..." if len(reasons) > 5 else "") + ". " + _what_to_do(plan)
        )
    if dry_run:
        return plan
    restore(plan)
    temp = temporary_name(prefix)
    root = tf.train.Checkpoint(**{attribute: model})
    # Made now so that it is written: a Checkpoint restoring this one creates its own
    # save_counter, and assert_existing_objects_matched() wants it in the file.
    root.save_counter  # noqa: B018
    with staged(prefix, temp):
        os.makedirs(os.path.dirname(prefix) or ".", exist_ok=True)
        written = root.write(temp)
        _verify(written, root, plan)
        files = move_into_place(written, prefix, overwrite)
    result = open_checkpoint(prefix)
    return WriteReport(prefix, files, result.keys(), sum(e.nbytes for e in result.entries), time.perf_counter() - start)


def _what_to_do(plan) -> str:
    """The rule that would map the most unmapped variables, computed from both sides' names."""
    from ._planning.hints import best_rule

    if not plan.unmapped:
        return "Fix the shapes or dtypes above (or assign other keys with plan_restore and plan.assign)."
    rule, count = best_rule(plan)
    if not count:
        return ("No scope rule maps the unmapped variables' names to the checkpoint's: "
                "assign their keys by hand (plan_restore, then plan.assign(variable, key)).")
    maps = f"maps {count} of the {len(plan.unmapped)} unmapped variables"
    if not plan.rules:
        return f"Map the names with rules={rule!r}, which {maps}."
    return f"Add the rule {rule!r}, which {maps}: rules={({**plan.rules, **rule})!r}."



def _verify(prefix: str, root, plan) -> None:
    """Every variable's value in the written checkpoint equals the source's, bit for bit."""
    from .sources._tfkeys import VALUE_SUFFIX

    written = open_checkpoint(prefix)
    _objects, paths = _tfprivate.object_paths(root)
    for item in plan.assignments:
        path = paths.get(id(item.info.variable)) or paths.get(id(item.info.tf_variable))
        key = None if path is None else path + VALUE_SUFFIX
        if key not in written:
            raise WriteError(f"Variable {item.name!r} is not in the converted checkpoint {prefix!r} (no key {key!r}).")
        expected, actual = np.asarray(plan.checkpoint.read(item.key)), np.asarray(written.read(key))
        if expected.dtype != actual.dtype or expected.shape != actual.shape or expected.tobytes() != actual.tobytes():
            raise WriteError(f"Key {key!r} of {prefix!r} does not hold the value of {item.key!r} (variable {item.name!r}).")
