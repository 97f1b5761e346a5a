"""Keras layer -> torch module: one converter per torch module kind (the target).

Each converter gets the torch module's tensors (``target``) and the paired Keras layer's
(``source``, names already made canonical: ``kernel``, ``query/kernel``...) as
``{local name: shape}`` and returns :func:`~._rules.build`'s checked mappings.
"""
from __future__ import annotations

from ._rules import LayoutError, build, shape_text
from ._transform import IDENTITY, chain, concat, permute, reorder_blocks, reshape, take, transpose, zeros_like

__all__ = ["linear", "conv", "embedding", "batch_norm", "layer_norm", "lstm", "gru", "multihead_attention",
           "conv_axes", "CONV_NAMES", "GRU_TO_TORCH"]

#: Keras' channels-last kernel letters -> torch's, by spatial rank.
CONV_NAMES = {1: ("WIO", "OIW"), 2: ("HWIO", "OIHW"), 3: ("DHWIO", "OIDHW")}
#: Keras' GRU stacks its gates z, r, h; torch's r, z, n (n is Keras' h).
GRU_TO_TORCH = reorder_blocks((1, 0, 2), axis=0, labels=("z,r,h", "r,z,n"))
_ONE_LAYER = " (a Keras recurrent layer is one layer, one direction: torch's num_layers=1, bidirectional=False, proj_size=0)"


def conv_axes(rank: int) -> tuple:
    """Keras ``(spatial..., in, out)`` -> torch ``(out, in, spatial...)``: HWIO -> OIHW is ``(3, 2, 0, 1)``."""
    return (rank + 1, rank) + tuple(range(rank))


def linear(kind, target, source):
    return build(kind, "Dense", target, source, {"weight": (("kernel",), transpose()), "bias": (("bias",), IDENTITY)})


def _depthwise(kernel_shape) -> object:
    """Keras' depthwise ``[kh, kw, in, mult]`` -> torch's ``Conv2d(groups=in)`` ``[in*mult, 1, kh, kw]``."""
    kh, kw, channels, multiplier = kernel_shape
    return chain(permute((2, 3, 0, 1)), reshape((channels * multiplier, 1, kh, kw), (channels, multiplier, kh, kw)),
                 name="depthwise HWIM->OIHW")


def conv(kind, target, source):
    rank = int(kind[4])
    hwio = permute(conv_axes(rank), "->".join(CONV_NAMES[rank]))

    def weight(target_shape, kernel_shape):
        if rank == 2 and len(kernel_shape) == 4 and hwio.shape(kernel_shape) != target_shape:
            depthwise = _depthwise(kernel_shape)  # a Conv2d(groups=in) from a DepthwiseConv2D
            if depthwise.shape(kernel_shape) == target_shape:
                return depthwise
        return hwio

    source_kind = "Conv2D or DepthwiseConv2D" if rank == 2 else f"Conv{rank}D"
    return build(kind, source_kind, target, source, {"weight": (("kernel",), weight), "bias": (("bias",), IDENTITY)})


#: Layers whose tensors only change names: ``{Keras name: torch name}``, read one way here and
#: the other way in :mod:`._to_keras`.
RENAMED = {
    "Embedding": {"embeddings": "weight"},
    "BatchNorm": {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"},
    "LayerNorm": {"gamma": "weight", "beta": "bias"},
}


def renamed(table: str, to_torch: bool) -> dict:
    """``build``'s rules of a layer of :data:`RENAMED`: each tensor as it is, under its other name."""
    pairs = RENAMED[table].items()
    return {(t if to_torch else k): ((k if to_torch else t,), IDENTITY) for k, t in pairs}


def embedding(kind, target, source):
    return build(kind, "Embedding", target, source, renamed("Embedding", True))


def batch_norm(kind, target, source):
    return build(kind, "BatchNormalization", target, source, renamed("BatchNorm", True),
                 skip_target=("num_batches_tracked",))


def layer_norm(kind, target, source):
    return build(kind, "LayerNormalization", target, source, renamed("LayerNorm", True))


def lstm(kind, target, source):
    # Keras' gates i, f, c, o are torch's i, f, g, o: the same order, only transposed.
    rules = {"weight_ih_l0": (("kernel",), transpose()), "weight_hh_l0": (("recurrent_kernel",), transpose()),
             "bias_ih_l0": (("bias",), IDENTITY), "bias_hh_l0": (("bias",), zeros_like())}
    return build(kind, "LSTM", target, source, rules, advice=_ONE_LAYER)


def gru(kind, target, source):
    bias = source.get("bias")
    if bias is not None and len(bias) == 1 and ("bias_ih_l0" in target or "bias_hh_l0" in target):
        shapes = ", ".join(f"{n} {shape_text(s)}" for n, s in target.items() if n.startswith("bias"))
        raise LayoutError(f"{kind} {shapes} cannot come from GRU bias {shape_text(bias)}: a Keras GRU with "
                          f"reset_after=False applies the reset gate before its recurrent kernel, which torch's "
                          f"GRU cannot express; build the Keras GRU with reset_after=True (bias [2, 3*units])")
    weight = chain(transpose(), GRU_TO_TORCH)
    rules = {"weight_ih_l0": (("kernel",), weight), "weight_hh_l0": (("recurrent_kernel",), weight),
             "bias_ih_l0": (("bias",), chain(take(0, 0, "input bias"), GRU_TO_TORCH)),
             "bias_hh_l0": (("bias",), chain(take(0, 1, "recurrent bias"), GRU_TO_TORCH))}
    return build(kind, "GRU", target, source, rules, advice=_ONE_LAYER)


def _heads_to_rows(kernel_shape):
    """Keras ``[d, heads, head_dim]`` -> a torch projection ``[heads*head_dim, d]``."""
    d, heads, head_dim = kernel_shape
    return chain(reshape((d, heads * head_dim), kernel_shape), transpose(), name="heads merged, transposed")


def multihead_attention(kind, target, source):
    def fused_weight(target_shape, *shapes):
        return concat(0, 3, _heads_to_rows(shapes[0]), name="q,k,v fused (heads merged, transposed)")

    def fused_bias(target_shape, *shapes):
        heads, head_dim = shapes[0]
        return concat(0, 3, reshape((heads * head_dim,), shapes[0]), name="q,k,v fused (heads merged)")

    def separate(target_shape, kernel_shape):
        return _heads_to_rows(kernel_shape)

    def output(target_shape, kernel_shape):
        heads, head_dim, d = kernel_shape
        return chain(reshape((heads * head_dim, d), kernel_shape), transpose(), name="heads merged, transposed")

    kernels = ("query/kernel", "key/kernel", "value/kernel")
    rules = {"in_proj_weight": (kernels, fused_weight),
             "q_proj_weight": (kernels[:1], separate), "k_proj_weight": (kernels[1:2], separate),
             "v_proj_weight": (kernels[2:], separate),
             "in_proj_bias": (("query/bias", "key/bias", "value/bias"), fused_bias),
             "out_proj.weight": (("attention_output/kernel",), output),
             "out_proj.bias": (("attention_output/bias",), IDENTITY)}
    return build(kind, "MultiHeadAttention", target, source, rules)
