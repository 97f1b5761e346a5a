"""1. Reading: ``open_checkpoint(p).entries`` against TensorFlow's own index read."""
from __future__ import annotations

from . import _inputs
from ._timing import compare, ratio_row

NAME = "reading"
TARGET = 1.5


def tf_read(prefix):
    """The plain TensorFlow way to the same facts: every key with its shape and dtype, sorted."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    dtypes = reader.get_variable_to_dtype_map()
    return [(key, shapes[key], dtypes[key]) for key in sorted(shapes)]


def run(ctx):
    import tensorflow as tf

    from ckptwidgets import open_checkpoint

    n = ctx.entries
    prefix = _inputs.many_entries(n, ctx.out)
    ctx.log(f"reading: {n:,}-entry checkpoint")
    assert len(open_checkpoint(prefix).entries) == len(tf_read(prefix)) == n

    def ours():
        return open_checkpoint(prefix).entries

    rows = []
    a, b = compare(ours, lambda: tf_read(prefix), ctx.fast_repeats, ctx.warmup)
    rows.append(ratio_row(NAME, f"`open_checkpoint(p).entries`, {n:,} entries", a, b,
                          "`load_checkpoint` + shape and dtype maps, sorted", TARGET))
    a, b = compare(ours, lambda: tf.train.list_variables(prefix), ctx.fast_repeats, ctx.warmup)
    rows.append(ratio_row(NAME, "the same, against `list_variables` (names and shapes only)", a, b,
                          "`tf.train.list_variables(p)`", None))
    return rows
