"""Checks for the exercises of notebook 09, *Take your checkpoint to PyTorch*.

Each check prints one line, ``Correct: ...`` or ``Not yet: <hint>``; see
:mod:`ckptwidgets.checks`. :func:`conv_kernel_axes` applies the learner's axes to a Keras
kernel with NumPy; :func:`bert_file_loads` loads the learner's ``.pt`` file into a fresh
``transformers.BertModel`` with ``load_state_dict(strict=True)``, as a PyTorch user would;
:func:`new_head_in_the_mapper` reads the plan of a :class:`~ckptwidgets.VariableMapper` and
the Keras model's values, so that exercise is done in the widget. torch and transformers are
imported inside the checks that need them, never by importing this module.

Example
-------
>>> import numpy as np
>>> kernel = np.arange(36, dtype="float32").reshape(3, 3, 1, 4)
>>> conv_kernel_axes(TODO, kernel)
Not yet: replace TODO with four axes for np.transpose, a tuple like (0, 1, 2, 3).
>>> conv_kernel_axes((3, 2, 0, 1), kernel)
Correct: np.transpose(kernel, (3, 2, 0, 1)) is [out, in, height, width] = [4, 1, 3, 3], torch's layout: what the mapper calls HWIO->OIHW.
>>> new_head_in_the_mapper("mapper", None, "cnn.safetensors")
Not yet: pass the VariableMapper itself to the check, not a str.
"""
from __future__ import annotations

import os

import numpy as np

from ._answers import as_int, is_todo, plan_of
from . import TODO, check, correct, not_yet  # the docstrings' examples use TODO

__all__ = ["conv_kernel_axes", "bert_file_loads", "new_head_in_the_mapper", "HWIO_TO_OIHW", "NEW_HEAD"]

#: Keras' conv kernel ``[height, width, in, out]`` -> torch's weight ``[out, in, height, width]``.
HWIO_TO_OIHW = (3, 2, 0, 1)
_AXIS_NAMES = ("height", "width", "in", "out")

#: Notebook 09's Keras model: the head left to its fresh values in exercise 3.
NEW_HEAD = ("cnn/logits/kernel", "cnn/logits/bias")


def _axes_of(answer):
    """``answer`` as a tuple of ints (a tuple, list or array of integers), else None."""
    if isinstance(answer, (str, bytes)) or not hasattr(answer, "__iter__"):
        return None
    axes = tuple(as_int(axis) for axis in answer)
    return None if any(axis is None for axis in axes) else axes


def _shape(shape) -> str:
    return str([int(n) for n in shape])


@check
def conv_kernel_axes(axes, keras_kernel):
    """``np.transpose(keras_kernel, axes)`` is the torch Conv2d weight (``[out, in, h, w]``)."""
    if is_todo(axes):
        return not_yet("replace TODO with four axes for np.transpose, a tuple like (0, 1, 2, 3).")
    kernel = np.asarray(keras_kernel)
    found = _axes_of(axes)
    if found is None:
        return not_yet(f"np.transpose takes the axes as a tuple of ints, like (0, 1, 2, 3); that is a {type(axes).__name__}.")
    if len(found) != kernel.ndim:
        return not_yet(f"the kernel has {kernel.ndim} axes (height, width, in, out), so np.transpose needs "
                       f"{kernel.ndim} of them; {found} names {len(found)}.")
    normal = tuple(axis % kernel.ndim if -kernel.ndim <= axis < kernel.ndim else axis for axis in found)
    if sorted(normal) != list(range(kernel.ndim)):
        return not_yet(f"{found} is not an order of the axes: np.transpose needs each of 0, 1, 2, 3 once.")
    expected = np.transpose(kernel, HWIO_TO_OIHW)
    got = np.transpose(kernel, normal)
    said = ", ".join(_AXIS_NAMES[axis] for axis in normal)
    if got.shape != expected.shape:
        return not_yet(
            f"np.transpose(kernel, {found}) is [{said}] = {_shape(got.shape)}; torch's weight is [out, in, height, "
            f"width] = {_shape(expected.shape)}: axis i of the result is axis axes[i] of the Keras kernel "
            f"[height, width, in, out] = {_shape(kernel.shape)}."
        )
    if not np.array_equal(got, expected):
        return not_yet(
            f"the shape {_shape(got.shape)} is right, but the result is [{said}]: a square 3x3 kernel hides a swap of "
            "height and width, the values do not. torch keeps height before width, as Keras does."
        )
    return correct(
        f"np.transpose(kernel, {HWIO_TO_OIHW}) is [out, in, height, width] = {_shape(expected.shape)}, torch's "
        "layout: what the mapper calls HWIO->OIHW."
    )


def _read_torch_file(path):
    """``(state dict, None)`` read as a PyTorch user reads it, or ``(None, hint)``."""
    import torch

    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as error:  # whatever torch says of a file it cannot read
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return None, f"torch.load(..., weights_only=True) cannot read {os.path.basename(path)!r} ({first[:120]})."
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        return None, f"{os.path.basename(path)!r} holds a {type(state).__name__}, not a state dict {{name: tensor}}."
    return state, None


@check
def bert_file_loads(path, reference, config):
    """The ``.pt`` file at ``path`` loads into ``BertModel(BertConfig(**config))`` with
    ``strict=True``, every tensor equal to the one in ``reference`` (the notebook's export)."""
    if is_todo(path):
        return not_yet("replace TODO with the path of the .pt file you wrote (a str or a Path).")
    if not isinstance(path, (str, os.PathLike)):
        return not_yet(f"the answer is a path (a str or a Path); that is a {type(path).__name__}.")
    path = os.fspath(path)
    if not os.path.isfile(path):
        return not_yet(f"there is no file {path!r}: run your cell that writes it, and give its path.")
    if path.endswith(".safetensors"):
        return not_yet("that is a safetensors file; the exercise asks for a .pt file, which torch.load reads: "
                       "give the output a name ending in '.pt'.")
    state, trouble = _read_torch_file(path)
    if trouble:
        return not_yet(trouble + " Write the file with ckptwidgets and a name ending in '.pt'.")
    tf_names = [key for key in state if "/" in key]
    if tf_names:
        return not_yet(f"the file holds TensorFlow's names ({tf_names[0]!r}, ...): apply the preset 'bert' to the "
                       "plan before writing, as for the safetensors file.")
    from transformers import BertConfig, BertModel

    model = BertModel(BertConfig(**config))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first = str(error).strip().splitlines()
        detail = " ".join(line.strip() for line in first[1:3]) or first[0]
        return not_yet(f"BertModel.load_state_dict(strict=True) refuses it: {detail[:220]}")
    from ..reader import open_checkpoint

    expected = open_checkpoint(os.fspath(reference))
    for key, tensor in state.items():
        if not np.array_equal(tensor.numpy(), expected.read(key)):
            return not_yet(f"{key!r} differs from the export above: write the .pt from the same checkpoint and preset.")
    return correct(
        f"BertModel loads all {len(state)} tensors of {os.path.basename(path)!r} with strict=True (none missing, "
        "none unexpected), each equal to the safetensors export: OUT's suffix chose torch.save's format."
    )


def _expected_backbone(plan, model, head):
    """``(automatic plan, {variable: (transform or None, keys)})``: what ``plan_restore`` gives
    every variable of ``model`` but the head."""
    from ..plan import plan_restore

    auto = plan_restore(plan.checkpoint, model)
    expected = {}
    for name, key in auto.mapping.items():
        if name in head:
            continue
        found = auto.transform_of(name)
        expected[name] = found if found is not None else (None, (key,))
    return auto, expected


def _value(variable) -> np.ndarray:
    return np.asarray(variable.numpy() if hasattr(variable, "numpy") else variable)


@check
def new_head_in_the_mapper(mapper, model, torch_file, head=NEW_HEAD):
    """The mapper maps every variable of ``model`` but ``head`` (as ``plan_restore`` pairs them),
    leaves ``head`` unmapped, and the model holds the restored backbone with its own head."""
    plan, view = plan_of(mapper)
    if view is None:
        return not_yet(f"pass the VariableMapper itself to the check, not a {type(mapper).__name__}.")
    head = tuple(head)
    for name in head:
        key = plan.key_of(name)
        if key is not None:
            return not_yet(f"{name!r} still reads {key!r}, the old head: choose (none) in its dropdown.")
    variables = {getattr(v, "path", None): v for v in getattr(model, "weights", ())}
    missing = [name for name in list(plan.variables) if name not in variables]
    if not variables or missing:
        return not_yet("pass the Keras model the mapper was made for as the second argument.")
    auto, expected = _expected_backbone(plan, model, head)
    for name, (transform, keys) in expected.items():
        key = plan.key_of(name)
        if key is None:
            return not_yet(f"{name!r} has no key: only the head gets (none). 'Auto-map' gives the backbone its keys "
                           "back (then choose (none) for the head again).")
        found = plan.transform_of(name)
        if key != keys[0] or (found is None) != (transform is None) or (found and found[0].name != transform.name):
            shown = f"{found[0].name}({key!r})" if found else repr(key)
            wanted = f"{transform.name}({keys[0]!r})" if transform else repr(keys[0])
            return not_yet(f"{name!r} reads {shown}, where the pairing gave {wanted}: another key, or the key "
                           "without its transform (plan.assign(..., transform=IDENTITY) from code). 'Let rules decide' "
                           "(or 'Auto-map') puts the pairing's back.")
    for problem in plan.problems:
        return not_yet(f"the mapper shows a problem for {problem.variable!r}: {problem.message}")
    ckpt = plan.checkpoint
    for name, (transform, keys) in expected.items():
        values = [ckpt.read(key) for key in keys]
        want = transform(*values) if transform is not None else values[0]
        if not np.array_equal(_value(variables[name]), want):
            return not_yet(f"the plan is right; now click Restore in the mapper (the model's {name!r} does not hold "
                           "the torch values yet).")
    for name in head:
        transform_keys = auto.transform_of(name)
        key = auto.key_of(name)
        if key is None:
            continue
        old = ckpt.read(key) if transform_keys is None else transform_keys[0](*[ckpt.read(k) for k in transform_keys[1]])
        if np.array_equal(_value(variables[name]), old):
            return not_yet(f"{name!r} holds the old head's values: it was restored before you chose (none). Run the "
                           "cell that builds the model and the mapper again, choose (none) for the head, then Restore.")
    return correct(
        f"the {len(expected)} backbone tensors came from {os.path.basename(os.fspath(torch_file))!r}, each through "
        f"its transform where it needs one, and the new head {list(head)} keeps the values Keras gave it."
    )
