"""Copy a plan's values into a torch module's tensors: all or nothing.

Private helper of :func:`ckptwidgets.restore` for plans whose target is a ``torch.nn.Module``
(``plan.target == "torch"``). :func:`ckptwidgets.restore` reads every value first (through the
checkpoint's ``read_many``, so a TF checkpoint needs no TensorFlow) and applies each
assignment's layout transform; here every value is checked against its tensor's shape and
turned into a CPU tensor before the first copy, then copied under ``torch.no_grad()``. A copy
that fails midway (a device error, a tensor that cannot take the value) puts back the values of
the tensors already copied into: no tensor changes unless all do.
"""
from __future__ import annotations

import contextlib

import numpy as np

from ._text.format import format_shape
from .errors import RestoreError

__all__ = ["copy_into_tensors", "tensor_values"]


def _as_torch(torch, value: np.ndarray):
    """A CPU tensor of ``value`` (bfloat16, which NumPy lacks, through its bits)."""
    if value.dtype.name == "bfloat16":
        return torch.from_numpy(np.ascontiguousarray(value).view(np.uint16).copy()).view(torch.bfloat16)
    if not value.flags.writeable or not value.flags.c_contiguous:  # torch.from_numpy wants its own memory
        value = np.array(value, order="C")
    return torch.from_numpy(value)


def copy_into_tensors(plan, items, values) -> None:
    """Copy ``values[i]`` into the tensor of ``items[i]`` (plan assignments), all or nothing.

    Raises
    ------
    RestoreError
        A value whose shape is not its tensor's (naming the variable, its key and both shapes),
        one torch cannot take, or a copy that failed; every tensor then keeps its value.
    """
    import torch

    prefix = plan.checkpoint.prefix
    sources = []
    for item, value in zip(items, values):
        tensor = item.info.variable
        if tuple(value.shape) != tuple(tensor.shape):
            raise RestoreError(
                f"Nothing was restored: variable {item.name!r} has shape {format_shape(tuple(tensor.shape))} but the "
                f"value of key {item.key!r} in checkpoint {prefix!r} has shape {format_shape(tuple(value.shape))}."
            )
        try:
            sources.append(_as_torch(torch, value))
        except (TypeError, ValueError) as error:
            raise RestoreError(
                f"Nothing was restored: the value of key {item.key!r} in checkpoint {prefix!r} ({value.dtype}) "
                f"cannot become a torch tensor for variable {item.name!r}: {error}"
            ) from None
    done = []  # (tensor, its value before) of the tensors already copied into
    current = None
    try:
        with torch.no_grad():
            for item, source in zip(items, sources):
                current, tensor = item, item.info.variable
                before = tensor.detach().clone()
                try:
                    tensor.copy_(source)
                except Exception:
                    with contextlib.suppress(Exception):  # a copy that wrote part of it: put that back too
                        tensor.copy_(before)
                    raise
                done.append((tensor, before))
    except Exception as error:
        with torch.no_grad():
            for tensor, before in reversed(done):
                tensor.copy_(before)
        raise RestoreError(
            f"Nothing was restored: copying key {current.key!r} of checkpoint {prefix!r} into variable "
            f"{current.name!r} failed ({type(error).__name__}: {error}); every tensor copied before it was put back."
        ) from None


def tensor_values(items, limit: int, elements: int) -> dict:
    """``{name: numpy value}`` of the first ``limit`` restored tensors of at most ``elements`` elements."""
    out = {}
    for item in items:
        tensor = item.info.variable
        if tensor.numel() <= elements and len(out) < limit:
            value = tensor.detach().cpu()
            out[item.name] = value.float().numpy() if str(value.dtype) == "torch.bfloat16" else value.numpy()
    return out
