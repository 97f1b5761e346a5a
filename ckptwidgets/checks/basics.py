"""Checks for the exercises of notebook 01, *Save a checkpoint*.

Each check takes the learner's answer (and what it needs to verify it) and prints one line,
``Correct: ...`` or ``Not yet: <hint>``; see :mod:`ckptwidgets.checks`. None of them needs
TensorFlow: the checkpoint is read with ckptwidgets.

Example
-------
>>> from ckptwidgets.checks import TODO
>>> predict_scoped_key(TODO, "missing/prefix")
Not yet: replace TODO with the key you expect, a str such as "some/name".
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..reader import open_checkpoint
from ._answers import is_todo
from . import check, correct, not_yet

__all__ = ["save_with_step", "predict_scoped_key", "read_value"]


@check
def save_with_step(step_path, folder, step=1000):
    """``step_path`` is the prefix ``saver.save(sess, ..., global_step=step)`` returned in ``folder``."""
    if is_todo(step_path):
        return not_yet(
            f"call saver.save(sess, prefix, global_step={step}) in a session and assign the prefix it "
            "returns to step_path."
        )
    if not isinstance(step_path, (str, Path)):
        return not_yet(
            f"step_path should be the prefix saver.save returns (a str), not a {type(step_path).__name__}."
        )
    prefix = Path(step_path)
    if not prefix.name.endswith(f"-{step}"):
        return not_yet(
            f"the prefix is {prefix.name!r}; pass global_step={step} to saver.save, which appends "
            f"'-{step}' to the prefix you give it."
        )
    if not Path(f"{prefix}.index").is_file():
        return not_yet(f"there is no file {prefix.name}.index: did the save run? Use the prefix saver.save returns.")
    state = Path(folder) / "checkpoint"
    if prefix.resolve().parent != Path(folder).resolve() or not state.is_file():
        return not_yet(f"save into the notebook's folder WORKDIR ({folder}), next to my_test_model.ckpt.")
    if prefix.name not in state.read_text():
        return not_yet("the 'checkpoint' file does not name this prefix; assign the prefix saver.save returns.")
    return correct(
        f"the save wrote {prefix.name}.index and its data file, and the 'checkpoint' file now names "
        f"{prefix.name} as the newest, so tf.train.latest_checkpoint returns it."
    )


@check
def predict_scoped_key(predicted_key, prefix):
    """``predicted_key`` is a key of the checkpoint at ``prefix`` (written by the scoped example)."""
    if is_todo(predicted_key):
        return not_yet('replace TODO with the key you expect, a str such as "some/name".')
    if not isinstance(predicted_key, str):
        return not_yet(f"a checkpoint key is a str, not a {type(predicted_key).__name__}: write it in quotes.")
    keys = [entry.key for entry in open_checkpoint(prefix)]
    guess = predicted_key.strip()
    if guess in keys:
        return correct(
            f"{guess!r}: the variable's name, scope and all, without the ':0' that names the op's "
            "output. tf.train.list_variables below lists it."
        )
    if guess.endswith(":0") and guess[:-2] in keys:
        return not_yet(
            "close: ':0' names the first output of the variable's op (a tensor name); keys are "
            "variable names, without it."
        )
    last = {key.rsplit("/", 1)[-1]: key for key in keys}
    if guess in last:
        return not_yet("that is only the variable's own name; the variable scope is part of the key.")
    for sep in (".", "\\", ":", "_", "-", " "):
        if sep in guess and guess.replace(sep, "/") in keys:
            return not_yet(f"scope and name are joined with '/', not {sep!r}.")
    lowered = {key.lower(): key for key in keys}
    if guess.lower() in lowered:
        return not_yet("keys are case-sensitive: check the case of each part.")
    return not_yet(
        f"{guess!r} is not a key of this checkpoint. Look at the scope the variable was created in "
        "and the name given to get_variable."
    )


@check
def read_value(value, key="v2", expected=(2.0,)):
    """``value`` is what the checkpoint holds under ``key`` (a float32 array equal to ``expected``)."""
    expected = np.asarray(expected, dtype=np.float32)
    if is_todo(value):
        return not_yet(f'read the tensor with reader.get_tensor("{key}") and assign it to the answer.')
    if isinstance(value, str):
        if value == key:
            return not_yet(f"{value!r} is the key; pass it to reader.get_tensor to get the value stored under it.")
        return not_yet(f"that is a str; the value is what reader.get_tensor(\"{key}\") returns.")
    kind = type(value).__name__
    if hasattr(value, "graph") and hasattr(value, "op"):
        return not_yet(
            f"that is a {kind} of a graph (it has no value outside a session); the question is what the "
            f"checkpoint file holds: reader.get_tensor(\"{key}\")."
        )
    try:
        array = np.asarray(value)
    except Exception:
        return not_yet(f"a {kind} is not a tensor value; use reader.get_tensor(\"{key}\").")
    if array.dtype == object or not np.issubdtype(array.dtype, np.number):
        return not_yet(f"a {kind} is not a tensor value; use reader.get_tensor(\"{key}\").")
    if array.shape != expected.shape:
        if array.size == expected.size and np.allclose(array.ravel(), expected.ravel()):
            return not_yet(
                f"the number is right, the shape is not: the checkpoint stores shape {list(expected.shape)}, "
                f"so get_tensor returns an array of that shape, not {list(array.shape)}."
            )
        return not_yet(f"that has shape {list(array.shape)}; the entry {key!r} has shape {list(expected.shape)}.")
    if not np.allclose(array, expected):
        return not_yet(f"that holds {array.tolist()}, not the value saved under {key!r}: check the key you read.")
    return correct(f"the checkpoint holds {expected.tolist()} under {key!r} (float32, shape {list(expected.shape)}), read without any graph or session.")
