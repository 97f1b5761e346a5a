"""8. Writing (issue #12): a checkpoint rewritten, averaged, and the memory a rewrite takes.

- Rewrite throughput: ``plan_write(p).write(out)`` of a 537 MB checkpoint (32 float32
  tensors of 16.8 MB, random values; 8 MB with ``--quick``) against TensorFlow writing the
  same tensors from eager variables, ``tf.compat.v1.train.Saver(variables).save`` (no meta
  graph, no state file), and against copying the two files (``shutil.copyfile``). Ours
  reads every tensor from the input (checksums checked), writes a temporary prefix (synced
  to disk from a thread as it is written), fsyncs it, reads every tensor back and renames
  it into place; ``Saver`` writes temporary files
  and renames them too, but without an fsync or a read-back. Each side writes over its
  previous output (``overwrite=True`` for ours), the input in the page cache; before each
  timed call ``os.sync()`` writes out what the previous one left dirty (not timed: an fsync
  would otherwise wait for the baseline's bytes too).
- Averaging: ``average(5 checkpoints).write(out)`` of five 134 MB checkpoints of one model
  (1 MB with ``--quick``) against the plain numpy way: ``tf.train.load_checkpoint`` of each,
  a float64 sum of each key's five ``get_tensor`` divided by 5, rounded to float32, and not
  written (ours is also written and read back). Both results are checked equal bit for bit.
- Peak memory: ``plan_write(p).rename({"/": "copy/"}).write(out)`` of a 1.07 GB checkpoint
  (four 268 MB tensors; 8 MB with ``--quick``) in a fresh process: the peak RSS growth
  (``VmHWM`` after the write minus ``VmRSS`` before, the peak reset with
  ``/proc/self/clear_refs``), which counts the memory-mapped pages of the tensor being read
  (file-backed: the page cache, not a copy), and the peak of private memory (``RssAnon``,
  sampled every 2 ms). Target: the largest tensor + 200 MB. The baseline is the plain
  TensorFlow rename script in a fresh process: ``load_checkpoint``, every ``get_tensor``,
  one ``tf.raw_ops.SaveV2`` under the new names.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

from . import _inputs
from ._peak import in_child, peak_growth
from ._timing import Row, Sample, format_bytes, ratio_row, timed

NAME = "writing"
TARGET = 1.2
MEMORY_SLACK = 200_000_000  # bytes above the largest tensor
AVERAGED = 5


def synced_compare(ours, base, repeats: int, warmup: int = 1) -> tuple[Sample, Sample]:
    """:func:`bench._timing.compare` with ``os.sync()`` before every timed call (not timed).

    Ours fsyncs its files before renaming them into place; ``Saver`` and ``copyfile`` leave
    theirs dirty in the page cache, and an fsync (ext4, data=ordered) also waits for other
    files' dirty data: without the sync, ours would also pay for writing the baseline's out.
    """
    for _ in range(warmup):
        ours()
        base()
    a, b = Sample(), Sample()
    for i in range(repeats):
        for fn, sample in ((base, b), (ours, a)) if i % 2 else ((ours, a), (base, b)):
            os.sync()
            sample.values.append(timed(fn, sample.cpu))
    return a, b


def rewrite_bytes(ctx) -> int:
    return (8 << 20) if ctx.quick else (512 << 20)


def average_bytes(ctx) -> int:
    return (1 << 20) if ctx.quick else (128 << 20)


def _files_size(prefix: str) -> int:
    folder, base = os.path.split(prefix)
    return sum(os.path.getsize(os.path.join(folder, n)) for n in os.listdir(folder) if n.startswith(base + "."))


def _tf_values(tf, prefix) -> dict:
    reader = tf.train.load_checkpoint(prefix)
    return {key: reader.get_tensor(key) for key in reader.get_variable_to_shape_map()}


def rewrite_rows(ctx, scratch: Path) -> list:
    import tensorflow as tf

    from ckptwidgets import open_checkpoint
    from ckptwidgets.write import plan_write

    nbytes = rewrite_bytes(ctx)
    ctx.log(f"writing: building/reusing a {format_bytes(nbytes)} checkpoint of random tensors")
    prefix = _inputs.layers(nbytes, out=ctx.out)
    ckpt = open_checkpoint(prefix)
    size = _files_size(prefix)
    ours_out, tf_out, copy_out = (str(scratch / name) for name in ("ours.ckpt", "saver.ckpt", "copy.ckpt"))

    original = _tf_values(tf, prefix)
    variables = {key: tf.Variable(value, name=key, trainable=False) for key, value in original.items()}
    saver = tf.compat.v1.train.Saver(variables)

    def ours():
        plan_write(prefix).write(ours_out, overwrite=True, progress=False)

    def saver_save():
        saver.save(None, tf_out, write_meta_graph=False, write_state=False)

    def copy():
        for path in ckpt.files:
            shutil.copyfile(path, copy_out + path[len(prefix):])

    ours()
    saver_save()
    for out in (ours_out, tf_out):  # both hold the input's values, bit for bit, as TF reads them
        written = _tf_values(tf, out)
        assert written.keys() == original.keys(), out
        assert all(written[k].tobytes() == v.tobytes() for k, v in original.items()), out

    what = f"{len(ckpt.entries)} float32 tensors, {format_bytes(size)}"
    ctx.log("writing: rewrite against Saver.save")
    a, b = synced_compare(ours, saver_save, ctx.repeats, ctx.warmup)
    rows = [ratio_row(NAME, f"`plan_write(p).write(out)`, {what} (read, write, fsync, read back, rename)", a, b,
                      "`Saver(variables).save(None, out)` of the same tensors", TARGET)]
    ctx.log("writing: rewrite against copying the files")
    a, b = synced_compare(ours, copy, ctx.repeats, ctx.warmup)
    rows.append(ratio_row(NAME, "the same rewrite, against copying the files", a, b,
                          "`shutil.copyfile` of the index and data file", None))
    return rows


def average_rows(ctx, scratch: Path) -> list:
    import tensorflow as tf

    from ckptwidgets.write import average

    nbytes = average_bytes(ctx)
    ctx.log(f"writing: building/reusing {AVERAGED} checkpoints of {format_bytes(nbytes)}")
    prefixes = [_inputs.layers(nbytes, seed=seed, out=ctx.out) for seed in range(AVERAGED)]
    out = str(scratch / "averaged.ckpt")

    def ours():
        average(prefixes).write(out, overwrite=True, progress=False)

    def numpy_mean():
        readers = [tf.train.load_checkpoint(p) for p in prefixes]
        keys = sorted(readers[-1].get_variable_to_shape_map())
        return {k: (sum(r.get_tensor(k).astype(np.float64) for r in readers) / len(readers)).astype(np.float32)
                for k in keys}

    ours()
    expected, written = numpy_mean(), _tf_values(tf, out)
    assert written.keys() == expected.keys() and all(written[k].tobytes() == v.tobytes() for k, v in expected.items())
    del expected, written
    ctx.log(f"writing: averaging {AVERAGED} checkpoints")
    a, b = synced_compare(ours, numpy_mean, ctx.repeats, ctx.warmup)
    size = sum(_files_size(p) for p in prefixes)
    return [ratio_row(NAME, f"`average({AVERAGED} checkpoints).write(out)`, {format_bytes(size)} in all "
                      "(float64 mean, written and read back)", a, b,
                      "numpy float64 mean of `load_checkpoint` + `get_tensor` (not written)", None)]


# --- peak memory, in fresh processes ----------------------------------------------------


def _child(kind: str, prefix: str, out: str, small: str) -> dict:
    if kind == "ckptwidgets":
        from ckptwidgets.write import plan_write

        def rewrite(source, target):
            plan_write(source).rename({"/": "copy/"}).write(target, progress=False)
    else:
        from ckptwidgets._tf.quiet import import_tensorflow

        tf = import_tensorflow()

        def rewrite(source, target):
            reader = tf.train.load_checkpoint(source)
            keys = sorted(reader.get_variable_to_shape_map())
            tensors = [reader.get_tensor(k) for k in keys]
            tf.raw_ops.SaveV2(prefix=target, tensor_names=["copy/" + k for k in keys],
                              shape_and_slices=[""] * len(keys), tensors=tensors)

    rewrite(small, out + "-warm")  # imports and first calls, outside the measurement
    return peak_growth(lambda: rewrite(prefix, out))


def measure(kind: str, prefix: str, out: str, small: str) -> dict:
    return in_child("bench.writing", kind, prefix, out, small, remove=out)


def memory_row(ctx, scratch: Path) -> Row:
    from ckptwidgets import open_checkpoint

    nbytes = ctx.big_bytes
    ctx.log(f"writing: building/reusing a {format_bytes(nbytes)} checkpoint")
    prefix = _inputs.big(nbytes, ctx.out)
    small = _inputs.many_entries(ctx.small_entries, ctx.out)
    largest = max(e.nbytes for e in open_checkpoint(prefix).entries)
    size = _files_size(prefix)
    ours, private, base = Sample(), Sample(), Sample()
    exact = True
    repeats = 1 if ctx.quick else 3
    for i in range(repeats):
        ctx.log(f"writing: memory run {i + 1} of {repeats} (two fresh processes)")
        for kind, sample in (("ckptwidgets", ours), ("tensorflow", base)):
            result = measure(kind, prefix, str(scratch / f"{kind}.ckpt"), small)
            sample.values.append(result["growth"])
            exact &= result["reset"]
            if kind == "ckptwidgets":
                private.values.append(result["private"])
    note = "" if exact else " (peak not resettable: lower bound)"
    limit, over = largest + MEMORY_SLACK, ours.median - largest
    return Row(
        NAME,
        f"peak RSS growth rewriting a {format_bytes(size)} checkpoint (largest tensor {format_bytes(largest)}), "
        f"`plan_write(p).rename(...).write(out)` in a fresh process{note}",
        f"{format_bytes(ours.median)} ± {format_bytes(ours.spread)} (private: {format_bytes(private.median)})",
        f"`load_checkpoint` + `get_tensor` each + `SaveV2`: {format_bytes(base.median)} ± {format_bytes(base.spread)}",
        f"{ours.median / base.median:.2f}x (largest tensor {'+' if over >= 0 else '−'} {format_bytes(abs(over))})",
        f"≤ largest tensor + {format_bytes(MEMORY_SLACK)}",
        ours.median,
        limit,
    )


def run(ctx):
    scratch = Path(ctx.out) / "writing-scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        rows = rewrite_rows(ctx, scratch)
        rows.extend(average_rows(ctx, scratch))
        rows.append(memory_row(ctx, scratch))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return rows


if __name__ == "__main__":  # python -m bench.writing KIND PREFIX OUT SMALL_PREFIX
    kind, prefix, out, small = sys.argv[1:5]
    print(json.dumps(_child(kind, prefix, out, small)))
