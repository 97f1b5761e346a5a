"""A tiny google-research/bert TF1 checkpoint, and the oracle of its transformers names.

The names and shapes are those google-research/bert's ``modeling.py`` creates (and its
``AdamWeightDecayOptimizer`` slots ``adam_m`` / ``adam_v``, ``global_step``, the ``cls/``
pre-training heads), for a config small enough to save in a second. :func:`hf_name` is
transformers' old ``load_tf_weights_in_bert`` walk written out again, the oracle the
``bert`` preset's regular expressions are checked against.
"""
from __future__ import annotations

import numpy as np

#: ``BertConfig(**CONFIG)``: the tiny model every test builds (nothing is downloaded).
CONFIG = dict(vocab_size=50, hidden_size=8, num_hidden_layers=2, num_attention_heads=2, intermediate_size=16,
              max_position_embeddings=16, type_vocab_size=2)


def bert_weights() -> dict:
    """``{TF1 name: shape}`` of BERT's own variables for :data:`CONFIG`, as modeling.py names them."""
    h, i = CONFIG["hidden_size"], CONFIG["intermediate_size"]
    shapes = {
        "bert/embeddings/word_embeddings": (CONFIG["vocab_size"], h),
        "bert/embeddings/token_type_embeddings": (CONFIG["type_vocab_size"], h),
        "bert/embeddings/position_embeddings": (CONFIG["max_position_embeddings"], h),
        "bert/embeddings/LayerNorm/beta": (h,),
        "bert/embeddings/LayerNorm/gamma": (h,),
        "bert/pooler/dense/kernel": (h, h),
        "bert/pooler/dense/bias": (h,),
    }
    for n in range(CONFIG["num_hidden_layers"]):
        layer = f"bert/encoder/layer_{n}"
        for part in ("query", "key", "value"):
            shapes[f"{layer}/attention/self/{part}/kernel"] = (h, h)
            shapes[f"{layer}/attention/self/{part}/bias"] = (h,)
        for dense, (rows, cols) in {"attention/output": (h, h), "intermediate": (h, i), "output": (i, h)}.items():
            shapes[f"{layer}/{dense}/dense/kernel"] = (rows, cols)
            shapes[f"{layer}/{dense}/dense/bias"] = (cols,)
        for norm in ("attention/output", "output"):
            shapes[f"{layer}/{norm}/LayerNorm/beta"] = (h,)
            shapes[f"{layer}/{norm}/LayerNorm/gamma"] = (h,)
    return shapes


def head_weights() -> dict:
    """``{TF1 name: shape}`` of the pre-training heads (``cls/``), which BertModel has not."""
    h, v = CONFIG["hidden_size"], CONFIG["vocab_size"]
    return {
        "cls/predictions/transform/dense/kernel": (h, h),
        "cls/predictions/transform/dense/bias": (h,),
        "cls/predictions/transform/LayerNorm/beta": (h,),
        "cls/predictions/transform/LayerNorm/gamma": (h,),
        "cls/predictions/output_bias": (v,),
        "cls/seq_relationship/output_weights": (2, h),
        "cls/seq_relationship/output_bias": (2,),
    }


def bert_values(seed: int = 0, heads: bool = True) -> dict:
    """``{TF1 name: array}``: BERT's weights (distinct random float32 values), each with its
    ``adam_m`` / ``adam_v`` slots, ``global_step``, and with ``heads`` the ``cls/`` heads."""
    rng = np.random.default_rng(seed)
    shapes = {**bert_weights(), **(head_weights() if heads else {})}
    values = {}
    for name, shape in shapes.items():
        values[name] = rng.standard_normal(shape).astype(np.float32)
        values[f"{name}/adam_m"] = rng.standard_normal(shape).astype(np.float32)
        values[f"{name}/adam_v"] = rng.random(shape).astype(np.float32)
    values["global_step"] = np.int64(1000)
    return values


def hf_name(tf_name: str) -> str:
    """The BertModel name transformers' ``load_tf_weights_in_bert`` put ``tf_name`` under:
    ``bert/`` off, ``layer_N`` -> ``layer.N``, ``kernel`` / ``gamma`` -> ``weight``,
    ``beta`` -> ``bias``, an ``*_embeddings`` table gets ``.weight``."""
    parts = tf_name.split("/")[1:]
    out = []
    for part in parts:
        if part.startswith("layer_") and part[6:].isdigit():
            out += ["layer", part[6:]]
        else:
            out.append({"kernel": "weight", "gamma": "weight", "beta": "bias"}.get(part, part))
    if parts[-1].endswith("_embeddings"):
        out.append("weight")
    return ".".join(out)


def is_kernel(tf_name: str) -> bool:
    """True for a dense kernel ``[in, out]``, which torch's Linear holds transposed."""
    return tf_name.endswith("/kernel")
