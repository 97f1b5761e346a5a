"""Checks for the exercises of notebook 02, *Partial restore*.

Each check prints one line, ``Correct: ...`` or ``Not yet: <hint>``; see
:mod:`ckptwidgets.checks`. :func:`finetune_mapper` reads the state of a
:class:`~ckptwidgets.VariableMapper` (or of its plan), so the exercise can be done in the
widget.

Example
-------
>>> predict_error("FailedPreconditionError", "v2")
Not yet: the class is right, but the saver now loads v2; the error names the variable that got no value at all.
"""
from __future__ import annotations

import numpy as np

from ._answers import is_todo, plan_of
from . import check, correct, not_yet

__all__ = ["predict_error", "fixed_sum", "finetune_mapper"]

_FROM_THE_SESSION = "the graph builds fine; the error comes from the session, when the sum is evaluated"
_ERROR_CLASSES = {
    "NotFoundError": "the key v2 is in the checkpoint, so the restore itself succeeds",
    "InvalidArgumentError": "the shapes and dtypes agree; the problem is a variable without a value",
    "ValueError": _FROM_THE_SESSION,
    "KeyError": _FROM_THE_SESSION,
    "UnimplementedError": "nothing is missing in TensorFlow; one of the variables has no value",
}


def _class_name(answer) -> str:
    if isinstance(answer, type):
        return answer.__name__
    text = str(answer).strip()
    return text.rsplit(".", 1)[-1].removesuffix("()")


@check
def predict_error(error_class, variable):
    """The prediction for ``var_list=[v2]``: ``FailedPreconditionError`` naming ``v1``."""
    if is_todo(error_class) or is_todo(variable):
        return not_yet("replace both TODOs: the error's class name (a str) and the name of the variable it will complain about.")
    name = _class_name(error_class)
    var = str(getattr(variable, "name", variable)).strip().removesuffix(":0")
    if name.lower() != "failedpreconditionerror":
        why = _ERROR_CLASSES.get(name, "look at the error the v1-only restore gave above")
        return not_yet(f"not {name}: {why}. The error class is the same as in the v1-only case.")
    if var == "v2":
        return not_yet("the class is right, but the saver now loads v2; the error names the variable that got no value at all.")
    if var != "v1":
        return not_yet(f"the class is right; but {var!r} is not a variable of this graph: it has v1 and v2.")
    return correct("FailedPreconditionError about v1: the saver loads only v2, and nothing runs v1's initialiser.")


@check
def fixed_sum(total, expected=(3.0,)):
    """The learner evaluated ``v1 + v2`` after the v2-only restore and initialising v1: ``[3.]``."""
    if is_todo(total):
        return not_yet(
            "in the session, after the restore, run the initialiser of the variable the saver does not load, "
            "then assign sess.run(total) to the answer."
        )
    if hasattr(total, "graph") and hasattr(total, "op"):
        return not_yet("that is the graph's tensor, not its value: evaluate it inside the session with sess.run(total).")
    if isinstance(total, (str, bytes)):
        return not_yet("a str is not the sum's value; assign sess.run(total) itself.")
    try:
        value = np.asarray(total, dtype=np.float32)
    except (TypeError, ValueError):
        return not_yet(f"a {type(total).__name__} is not the sum's value; assign sess.run(total).")
    expected = np.asarray(expected, dtype=np.float32)
    if value.shape != expected.shape:
        return not_yet(f"the sum has shape {list(expected.shape)}; assign sess.run(total) itself, not {value.tolist()!r}.")
    if np.allclose(value, expected):
        return correct("[3.]: v1 = 1.0 from its initialiser, v2 = 2.0 from the checkpoint.")
    if np.allclose(value, [1.0]):
        return not_yet(
            "[1.] means v2 is 0.0, its initial value: an initialiser ran after the restore and undid it. "
            "Initialise only v1 (tf.compat.v1.variables_initializer([v1])), or everything before restoring."
        )
    if np.allclose(value, [4.0]) or np.allclose(value, [2.0]):
        return not_yet(f"{value.tolist()} is not v1's 1.0 plus the checkpoint's 2.0: did you assign new values by hand?")
    return not_yet(f"{value.tolist()} is not [3.]: v1 should keep its initial 1.0 and v2 take 2.0 from the checkpoint.")


@check
def finetune_mapper(mapper, keep=("base/kernel", "base/bias"), new=("head/kernel", "head/bias")):
    """The mapper loads the ``keep`` variables under their own keys, leaves ``new`` out, and initialises them."""
    plan, model = plan_of(mapper)
    if plan is None:
        return not_yet(f"pass the VariableMapper (or its plan) to the check, not a {type(mapper).__name__}.")
    mapping, problems = plan.mapping, plan.problems
    for name in keep:
        key = mapping.get(name)
        if key is None:
            return not_yet(f"{name} should still come from the pretrained checkpoint: choose its key {name!r} again (or press Auto-map).")
        if key != name:
            return not_yet(f"{name} reads {key!r}; choose its own key {name!r}.")
    for name in new:
        if name in mapping:
            shape, dtype = plan.describe(name)
            problem = next((p for p in problems if p.variable == name), None)
            why = f": {problem.reason.replace('_', ' ')}" if problem is not None else ""
            return not_yet(
                f"{name} {list(shape) if shape is not None else ''} still reads {mapping[name]!r}{why}. "
                "The new head starts from its initialiser: choose (none) in its dropdown."
            )
    if problems:
        return not_yet(f"the plan still has a problem: {problems[0].message}")
    if model is not None and getattr(model, "graph_mode", False) and not getattr(model, "initialize_unmapped", True):
        return not_yet(
            f"{', '.join(new)} are left out, but 'initialise them' is cleared: they would stay uninitialised "
            "and the first sess.run would fail as above. Tick the box."
        )
    return correct(
        f"the base ({', '.join(keep)}) comes from the checkpoint and the new head ({', '.join(new)}) "
        "from its initialiser: a fine-tuning restore."
    )
