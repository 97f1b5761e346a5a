"""``map_layer``: which source tensors, through which transform, make each tensor of a layer.

The registry :data:`LAYOUTS` names one converter per target layer kind (its class name).
torch and Keras share three class names (``Embedding``, ``LSTM``, ``GRU``); for those the
target's tensor names tell the direction (``weight_ih_l0`` is torch's, ``kernel`` Keras').
Keras' tensors may come by position (``"0"``, ``"1"``: a ``.weights.h5``'s ``vars/N``), by
path (``lstm_cell/kernel``, ``query_dense/vars/0``) or with TF's ``:0``; they are read as
the layer's own weight names first and given back under the names the caller used.
"""
from __future__ import annotations

import re

from . import _to_keras as to_keras
from . import _to_torch as to_torch
from ._rules import LayoutError, shape_text

__all__ = ["LAYOUTS", "map_layer", "KERAS_WEIGHTS", "TORCH_TO_KERAS"]

_MHA = ("query", "key", "value", "attention_output")

#: Keras' weight names by position, per layer kind and number of weights (its own weight order;
#: a count missing here would be a guess: a BatchNormalization of 3 lacks gamma or beta).
KERAS_WEIGHTS = {
    "Dense": {1: ("kernel",), 2: ("kernel", "bias")},
    "Conv": {1: ("kernel",), 2: ("kernel", "bias")},
    "Embedding": {1: ("embeddings",)},
    "BatchNormalization": {2: ("moving_mean", "moving_variance"), 4: ("gamma", "beta", "moving_mean", "moving_variance")},
    "LayerNormalization": {2: ("gamma", "beta")},
    "Recurrent": {2: ("kernel", "recurrent_kernel"), 3: ("kernel", "recurrent_kernel", "bias")},
    "MultiHeadAttention": {4: tuple(f"{n}/kernel" for n in _MHA),
                           8: tuple(f"{n}/{w}" for n in _MHA for w in ("kernel", "bias"))},
}
#: The Keras layer kind a torch module kind pairs with (for reading positions and for messages).
TORCH_TO_KERAS = {"Linear": "Dense", "Conv1d": "Conv", "Conv2d": "Conv", "Conv3d": "Conv", "Embedding": "Embedding",
                  "BatchNorm1d": "BatchNormalization", "BatchNorm2d": "BatchNormalization",
                  "BatchNorm3d": "BatchNormalization", "LayerNorm": "LayerNormalization", "LSTM": "Recurrent",
                  "GRU": "Recurrent", "MultiheadAttention": "MultiHeadAttention"}
_KERAS_FAMILY = {"Dense": "Dense", "Conv1D": "Conv", "Conv2D": "Conv", "Conv3D": "Conv", "DepthwiseConv2D": "Conv",
                 "Embedding": "Embedding", "BatchNormalization": "BatchNormalization",
                 "LayerNormalization": "LayerNormalization", "LSTM": "Recurrent", "GRU": "Recurrent",
                 "MultiHeadAttention": "MultiHeadAttention"}
# MultiHeadAttention's sublayers as a .weights.h5 names them (query_dense) and as its weights do (query).
_MHA_ALIASES = {"query_dense": "query", "_query_dense": "query", "key_dense": "key", "_key_dense": "key",
                "value_dense": "value", "_value_dense": "value", "output_dense": "attention_output",
                "_output_dense": "attention_output"}
_TORCH_NAME = re.compile(r"(^|\.)(weight|running_mean|running_var|num_batches_tracked|in_proj_weight|in_proj_bias|"
                         r"[qkv]_proj_weight|(weight|bias)_[ih]h_l\d+(_reverse)?|weight_hr_l\d+(_reverse)?)$")


def _canonical_keras(family: str, tensors: dict) -> dict:
    """``{Keras weight name: the caller's name}`` for a Keras layer's tensors."""
    paths = {name: [s for s in name.split(":")[0].split("/") if s != "vars"] for name in tensors}
    if family == "MultiHeadAttention" and all(len(p) >= 2 for p in paths.values()):
        canonical = {}
        for name, segments in paths.items():
            sub, leaf = _MHA_ALIASES.get(segments[-2], segments[-2]), segments[-1].lstrip("_")
            canonical[f"{sub}/{('kernel', 'bias')[int(leaf)] if leaf in ('0', '1') else leaf}"] = name
        return canonical
    # Keras 3's Dense tracks `_kernel` (an object-based checkpoint's name); a .weights.h5 numbers them.
    leaves = {name: segments[-1].lstrip("_") for name, segments in paths.items()}
    if leaves and all(leaf.isdigit() for leaf in leaves.values()):
        order = KERAS_WEIGHTS[family].get(len(leaves))
        if order is None or sorted(leaves.values(), key=int) != [str(i) for i in range(len(leaves))]:
            shapes = ", ".join(f"{n} {shape_text(tensors[n])}" for n in tensors)
            raise LayoutError(f"a Keras {family} layer's weights by position ({shapes}): which is which "
                              f"cannot be told from {len(leaves)} positions; name them")
        return {order[int(leaf)]: name for name, leaf in leaves.items()}
    return {leaf: name for name, leaf in leaves.items()}


def _is_torch(tensors: dict) -> bool:
    return any(_TORCH_NAME.search(n) for n in tensors)


def _either(torch_converter, keras_converter):
    """A converter for a class name both frameworks use: the target's tensor names tell which it is."""

    def converter(kind, target, source):
        return (torch_converter if _is_torch(target) else keras_converter)(kind, target, source)

    converter.torch, converter.keras = torch_converter, keras_converter
    return converter


#: ``{target layer kind: converter(kind, target, source) -> [LayerMapping]}``; one line per kind.
LAYOUTS = {
    # torch targets, from Keras layers
    "Linear": to_torch.linear,
    "Conv1d": to_torch.conv,
    "Conv2d": to_torch.conv,
    "Conv3d": to_torch.conv,
    "BatchNorm1d": to_torch.batch_norm,
    "BatchNorm2d": to_torch.batch_norm,
    "BatchNorm3d": to_torch.batch_norm,
    "LayerNorm": to_torch.layer_norm,
    "MultiheadAttention": to_torch.multihead_attention,
    # Keras targets, from torch modules
    "Dense": to_keras.dense,
    "Conv1D": to_keras.conv,
    "Conv2D": to_keras.conv,
    "Conv3D": to_keras.conv,
    "DepthwiseConv2D": to_keras.depthwise_conv,
    "BatchNormalization": to_keras.batch_normalization,
    "LayerNormalization": to_keras.layer_normalization,
    "MultiHeadAttention": to_keras.multi_head_attention,
    # both: the target's names say which
    "Embedding": _either(to_torch.embedding, to_keras.embedding),
    "LSTM": _either(to_torch.lstm, to_keras.lstm),
    "GRU": _either(to_torch.gru, to_keras.gru),
}


def map_layer(target_kind: str, target: dict, source: dict) -> list:
    """How each tensor of a target layer is made from the paired layer of the other framework.

    Parameters
    ----------
    target_kind : str
        The target layer's class name: torch's (``"Linear"``, ``"Conv2d"``, ``"LSTM"``...)
        or Keras' (``"Dense"``, ``"Conv2D"``, ``"MultiHeadAttention"``...); see :data:`LAYOUTS`.
    target, source : dict
        ``{local name: shape}`` of the target layer's tensors and of the source layer's
        (saved order). Keras names are weight names (``kernel``, ``query/kernel``) or
        positions (``"0"``, ``"1"``) read in the Keras layer's own weight order.

    Returns
    -------
    list of LayerMapping
        One per target tensor (torch's ``num_batches_tracked`` has none), in target order,
        named as the caller named them.

    Raises
    ------
    LayoutError
        When a target tensor cannot be decided; the message names the layer kinds and both shapes.

    Examples
    --------
    >>> [(m.target, m.sources, m.transform.name) for m in map_layer(
    ...     "Linear", {"weight": (3, 4), "bias": (3,)}, {"kernel": (4, 3), "bias": (3,)})]
    [('weight', ('kernel',), 'transpose'), ('bias', ('bias',), 'as is')]
    >>> map_layer("Linear", {"weight": (3, 4)}, {"kernel": (5, 3)})
    Traceback (most recent call last):
    ...
    ckptwidgets.layouts._rules.LayoutError: Linear weight [3, 4] cannot come from Dense kernel [5, 3] (transpose gives [3, 5])
    """
    converter = LAYOUTS.get(target_kind)
    if converter is None:
        raise LayoutError(f"no layout for a {target_kind} layer (known: {', '.join(sorted(LAYOUTS))})")
    to_torch_side = target_kind in TORCH_TO_KERAS and (target_kind not in _KERAS_FAMILY or _is_torch(target))
    keras_side, torch_side = (source, target) if to_torch_side else (target, source)
    family = TORCH_TO_KERAS[target_kind] if to_torch_side else _KERAS_FAMILY[target_kind]
    keras_names = _canonical_keras(family, keras_side)
    canonical = {name: tuple(keras_side[original]) for name, original in keras_names.items()}
    torch_tensors = {name: tuple(shape) for name, shape in torch_side.items()}
    target_in, source_in = (torch_tensors, canonical) if to_torch_side else (canonical, torch_tensors)
    original = (lambda n: n) if to_torch_side else keras_names.get
    from_source = keras_names.get if to_torch_side else (lambda n: n)
    return [m._replace(target=original(m.target), sources=tuple(from_source(s) for s in m.sources))
            for m in converter(target_kind, target_in, source_in)]
