"""A ``torch.nn.Module`` as the variables of a plan: its ``state_dict`` names, described once.

Private helper of :mod:`ckptwidgets._planning.variables`. A module is recognised through
``sys.modules.get("torch")``, so nothing imports torch to look at a non-torch object. Its
variables are ``module.state_dict(keep_vars=True)``: parameters and buffers under the names
``load_state_dict`` takes (``"0.weight"``, ``"encoder.lin.bias"``, ``"bn.running_mean"``),
each the live tensor a restore copies into.

``num_batches_tracked`` (a ``BatchNorm``'s step counter) is bookkeeping, as Keras' seed
generator state is: it is in the plan (a checkpoint holding it by name restores it, as
``load_state_dict`` does) but never unmapped and never a problem (:func:`is_bookkeeping`).

The owning layer of a tensor (``VarInfo.layer``, ``.layer_kind``) is the OUTERMOST module on
its path whose class is one of torch's own (``torch.nn.*``) and no container
(``Sequential``, ``ModuleList``, ``ModuleDict``): ``attn.out_proj.weight`` belongs to the
``MultiheadAttention`` ``attn``; a user's own classes (and transformers') are containers, and a
parameter they hold themselves belongs to them (``layer_kind`` their class name). ``layer`` is
None for the root's own tensors.

Example
-------
>>> import torch
>>> infos = collect_torch(torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3)))
>>> [(i.name, i.shape, i.dtype, i.layer, i.layer_kind) for i in infos.values()][:2]
[('0.weight', (3, 4), 'float32', '0', 'Linear'), ('0.bias', (3,), 'float32', '0', 'Linear')]
>>> is_bookkeeping(infos["1.num_batches_tracked"])
True
"""
from __future__ import annotations

import sys

from ..errors import PlanError

__all__ = ["is_torch_module", "is_torch_tensor", "collect_torch", "is_bookkeeping", "torch_dtype_name",
           "BOOKKEEPING"]

#: Last name segments of torch buffers that are bookkeeping, not weights.
BOOKKEEPING = ("num_batches_tracked",)
_CONTAINERS = ("Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict")


def is_torch_module(obj) -> bool:
    """True for a ``torch.nn.Module``; torch is looked up in ``sys.modules``, never imported."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def is_torch_tensor(obj) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.Tensor)


def torch_dtype_name(dtype) -> str:
    """``torch.float32`` -> ``"float32"``: the package's dtype names."""
    return str(dtype).rpartition(".")[2]


def is_bookkeeping(info) -> bool:
    """True for a torch buffer that is bookkeeping (``num_batches_tracked``): never unmapped."""
    return info.framework == "torch" and info.name.rpartition(".")[2] in BOOKKEEPING


def _is_layer(module) -> bool:
    kind = type(module)
    return kind.__module__.startswith("torch.nn.") and kind.__name__ not in _CONTAINERS


def _owners(module) -> dict:
    """``{module path: (layer path, class name)}`` for every module inside a torch layer."""
    owners = {}
    for path, sub in module.named_modules():
        if path in owners:
            continue
        if _is_layer(sub) and path:
            for inner, _ in sub.named_modules(prefix=path):
                owners.setdefault(inner, (path, type(sub).__name__))
    if _is_layer(module):  # the module itself is one layer (a bare nn.Linear)
        owners = {p: ("", type(module).__name__) for p, _ in module.named_modules()}
    return owners


def collect_torch(module) -> dict:
    """``{state_dict name: VarInfo}`` of a torch module, in ``state_dict`` order."""
    from .variables import VarInfo

    try:
        state = module.state_dict(keep_vars=True)
    except Exception as error:  # a module whose state_dict hook fails says so in the package's words
        raise PlanError(f"Cannot list the tensors of {type(module).__qualname__}: state_dict() failed: {error}") from None
    if not state:
        raise PlanError(f"{type(module).__qualname__} has no parameters or buffers: there is nothing to restore.")
    owners, modules = _owners(module), dict(module.named_modules())
    infos = {}
    for name, tensor in state.items():
        if not is_torch_tensor(tensor):  # a custom state_dict hook's extra state: nothing to copy into
            continue
        scope = name.rpartition(".")[0]
        # Outside any torch layer (a user's module's own parameter): that module and its class.
        layer, kind = owners.get(scope) or (scope, type(modules[scope]).__name__ if scope in modules else None)
        infos[name] = VarInfo(name, tensor, None, tuple(int(d) for d in tensor.shape), torch_dtype_name(tensor.dtype),
                              None, None, False, False, None, "torch", layer or None, kind)
    return infos
