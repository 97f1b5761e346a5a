"""1. Reading: ``open_checkpoint(p).entries`` against TensorFlow's own index read, and one
big tensor read by ``Checkpoint.read`` against ``CheckpointReader.get_tensor``.

The tensor rows read one 100 MB float32 tensor (25,000,000 random values; 1 MB with
``--quick``) from the page cache (the equality check before the timing reads the file),
with both readers made once, outside the timing: ``open_checkpoint(p)`` and
``tf.train.load_checkpoint(p)``. Each side is timed as it is called, with nothing computed
on its result; the row names what ``read`` returned (an array in memory, or a read-only
memory-mapped view). ``read(key, copy=True)``, a writable array of its own like TF's, gets
a second row when the method takes ``copy`` (looked up with ``inspect.signature``).
"""
from __future__ import annotations

import inspect
import mmap

from . import _inputs
from ._timing import compare, format_bytes, ratio_row

NAME = "reading"
TARGET = 1.0
TENSOR_TARGET = 1.0


def tf_read(prefix):
    """The plain TensorFlow way to the same facts: every key with its shape and dtype, sorted."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    dtypes = reader.get_variable_to_dtype_map()
    return [(key, shapes[key], dtypes[key]) for key in sorted(shapes)]


def tensor_bytes(ctx) -> int:
    """100 MB (25,000,000 float32), 1 MB in a quick run."""
    return 1_000_000 if ctx.quick else 100_000_000


def returned(value) -> str:
    """What a read returned, in words: memory-mapped or in memory, read-only or writable."""
    import numpy as np

    mapped, base = False, value
    while base is not None and not mapped:
        mapped = isinstance(base, (np.memmap, mmap.mmap))
        base = base.obj if isinstance(base, memoryview) else getattr(base, "base", None)
    where = "a memory-mapped view" if mapped else "an array in memory"
    return f"{where}, {'writable' if value.flags.writeable else 'read-only'}"


def tensor_rows(ctx) -> list:
    import numpy as np
    import tensorflow as tf

    from ckptwidgets import open_checkpoint

    nbytes = tensor_bytes(ctx)
    ctx.log(f"reading: building/reusing a {format_bytes(nbytes)} one-tensor checkpoint")
    prefix, key = _inputs.one_tensor(nbytes, ctx.out), _inputs.TENSOR_KEY
    ckpt = open_checkpoint(prefix)
    reader = tf.train.load_checkpoint(prefix)
    theirs = reader.get_tensor(key)  # also brings the data file into the page cache
    ours = ckpt.read(key)
    assert ours.dtype == theirs.dtype == np.float32 and ours.shape == theirs.shape, (ours.dtype, ours.shape)
    assert ours.nbytes == nbytes and np.array_equal(ours, theirs)
    what = returned(ours)
    del ours, theirs
    size = f"one {format_bytes(nbytes)} float32 tensor ({nbytes // 4:,} elements), page cache warm"
    base_label = "`tf.train.load_checkpoint(p).get_tensor(key)`"

    ctx.log("reading: one big tensor")
    rows = []
    a, b = compare(lambda: ckpt.read(key), lambda: reader.get_tensor(key), ctx.fast_repeats, ctx.warmup)
    rows.append(ratio_row(NAME, f"`ckpt.read(key)`, {size} (returns {what})", a, b, base_label, TENSOR_TARGET))

    if "copy" in inspect.signature(ckpt.read).parameters:
        copied = ckpt.read(key, copy=True)
        assert copied.flags.writeable and np.array_equal(copied, reader.get_tensor(key))
        what = returned(copied)
        del copied
        a, b = compare(lambda: ckpt.read(key, copy=True), lambda: reader.get_tensor(key), ctx.fast_repeats,
                       ctx.warmup)
        rows.append(ratio_row(NAME, f"`ckpt.read(key, copy=True)`, the same tensor (returns {what})", a, b,
                              base_label, TENSOR_TARGET))
    else:
        ctx.log("reading: Checkpoint.read takes no copy=: no copy row")
    return rows


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
    rows.extend(tensor_rows(ctx))
    return rows
