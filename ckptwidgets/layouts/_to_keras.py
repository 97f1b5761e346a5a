"""torch module -> Keras layer: one converter per Keras layer kind (the target).

The mirror of :mod:`._to_torch`: each converter gets the Keras layer's tensors (canonical
names) as ``target`` and the paired torch module's as ``source``. A mapping read one way
and written back the other gives the same arrays bit for bit, except torch's two LSTM
biases, which Keras holds as their sum.
"""
from __future__ import annotations

from ._rules import LayoutError, build, shape_text
from ._to_torch import CONV_NAMES, GRU_TO_TORCH, conv_axes, renamed
from ._transform import IDENTITY, chain, concat, part, permute, reshape, sum_of, transpose

__all__ = ["dense", "conv", "depthwise_conv", "embedding", "batch_normalization", "layer_normalization",
           "lstm", "gru", "multi_head_attention"]

_TORCH_TO_GRU = GRU_TO_TORCH.inverse()
_ONE_LAYER = " (a Keras recurrent layer is one layer, one direction: torch's num_layers=1, bidirectional=False, proj_size=0)"


def dense(kind, target, source):
    return build(kind, "Linear", target, source, {"kernel": (("weight",), transpose()), "bias": (("bias",), IDENTITY)})


def conv(kind, target, source):
    rank = int(kind[4])
    to_keras = permute(conv_axes(rank), "->".join(CONV_NAMES[rank])).inverse()
    return build(kind, f"Conv{rank}d", target, source, {"kernel": (("weight",), to_keras), "bias": (("bias",), IDENTITY)})


def depthwise_conv(kind, target, source):
    def kernel(target_shape, weight_shape):
        kh, kw, channels, multiplier = target_shape
        return chain(reshape((channels, multiplier, kh, kw), weight_shape), permute((2, 3, 0, 1)),
                     name="depthwise OIHW->HWIM")

    return build(kind, "Conv2d (groups=in_channels)", target, source,
                 {"kernel": (("weight",), kernel), "bias": (("bias",), IDENTITY)})


def embedding(kind, target, source):
    return build(kind, "Embedding", target, source, renamed("Embedding", False))


def batch_normalization(kind, target, source):
    return build(kind, "BatchNorm", target, source, renamed("BatchNorm", False), skip_source=("num_batches_tracked",))


def layer_normalization(kind, target, source):
    return build(kind, "LayerNorm", target, source, renamed("LayerNorm", False))


def lstm(kind, target, source):
    rules = {"kernel": (("weight_ih_l0",), transpose()), "recurrent_kernel": (("weight_hh_l0",), transpose()),
             "bias": (("bias_ih_l0", "bias_hh_l0"), sum_of(2))}
    return build(kind, "LSTM", target, source, rules, advice=_ONE_LAYER)


def gru(kind, target, source):
    bias = target.get("bias")
    if bias is not None and len(bias) == 1:
        shapes = ", ".join(f"{n} {shape_text(s)}" for n, s in source.items() if n.startswith("bias"))
        raise LayoutError(f"{kind} bias {shape_text(bias)} cannot come from GRU {shapes}: a Keras GRU with "
                          f"reset_after=False applies the reset gate before its recurrent kernel, which torch's "
                          f"GRU does not; build the Keras GRU with reset_after=True (bias [2, 3*units])")
    weight = chain(_TORCH_TO_GRU, transpose())
    rules = {"kernel": (("weight_ih_l0",), weight), "recurrent_kernel": (("weight_hh_l0",), weight),
             "bias": (("bias_ih_l0", "bias_hh_l0"),
                      concat(0, 2, _TORCH_TO_GRU, name=f"stack, {_TORCH_TO_GRU.name}", stack=True))}
    return build(kind, "GRU", target, source, rules, advice=_ONE_LAYER)


def _rows_to_heads(which: int, name: str):
    """A torch projection ``[heads*head_dim, d]`` (part ``which`` of a fused one) -> Keras ``[d, heads, head_dim]``."""

    def factory(target_shape, weight_shape):
        d, heads, head_dim = target_shape
        rows = heads * head_dim
        if which is not None and weight_shape[0] != 3 * rows:
            raise ValueError(f"in_proj has {weight_shape[0]} rows, not 3 x heads*head_dim = {3 * rows}")
        steps = [transpose(), reshape(target_shape, (d, rows))]
        if which is not None:
            steps.insert(0, part(0, which * rows, (which + 1) * rows, f"{name} of in_proj"))
        return chain(*steps, name=f"{name} of in_proj, transposed, split into heads" if which is not None
                     else "transposed, split into heads")

    return factory


def _bias_to_heads(which: int, name: str):
    def factory(target_shape, bias_shape):
        rows = target_shape[0] * target_shape[1]
        if bias_shape[0] != 3 * rows:
            raise ValueError(f"in_proj_bias has {bias_shape[0]} values, not 3 x heads*head_dim = {3 * rows}")
        return chain(part(0, which * rows, (which + 1) * rows), reshape(target_shape, (rows,)),
                     name=f"{name} of in_proj, split into heads")

    return factory


def multi_head_attention(kind, target, source):
    fused = "in_proj_weight" in source
    rules = {"attention_output/bias": (("out_proj.bias",), IDENTITY)}
    for which, name in enumerate(("query", "key", "value")):
        projection = "in_proj_weight" if fused else f"{name[0]}_proj_weight"
        rules[f"{name}/kernel"] = ((projection,), _rows_to_heads(which if fused else None, name))
        rules[f"{name}/bias"] = (("in_proj_bias",), _bias_to_heads(which, name))

    def output(target_shape, weight_shape):
        return chain(transpose(), reshape(target_shape, weight_shape[::-1]), name="transposed, split into heads")

    rules["attention_output/kernel"] = (("out_proj.weight",), output)
    return build(kind, "MultiheadAttention", target, source, rules)
