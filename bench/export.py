"""9. Export to safetensors (issue #25 item 8): a TF checkpoint out of TensorFlow.

The input is the writing benchmark's checkpoint: 32 float32 ``[4096, 1024]`` tensors of
random values, 537 MB, written by TensorFlow's ``SaveV2`` (8 MB with ``--quick``).

- Export throughput: ``plan_write(src).write("out.safetensors")`` (reads every tensor from
  the bundle, crc32c checked; writes a temporary file, fsyncs it, reads it back, renames it)
  against ``safetensors.numpy.save_file`` of the same arrays already in memory (read with
  ``tf.train.load_checkpoint`` before the timing) followed by an ``os.fsync`` of the file,
  the writer's own durability promise; and against copying the bundle's two files
  (``shutil.copyfile`` + ``fsync`` each). ``os.sync()`` before every timed call (not timed),
  as in :mod:`bench.writing`.
- Reading: every tensor of the reference writer's file, ``open_checkpoint(p)`` then
  ``read(key)`` of each key, against ``safe_open(p, "np")`` then ``get_tensor(key)``; the
  file in the page cache, nothing computed on the results. ``read`` returns a read-only
  memory-mapped view, so a second row times ``read(key, copy=True)`` (an array of its own,
  as ``get_tensor`` returns).
- Peak memory exporting a 1.07 GB checkpoint (four 268 MB tensors; 8 MB with ``--quick``)
  in a fresh process: after the imports and a warm-up export of a small checkpoint the peak
  is reset (``/proc/self/clear_refs``) and the growth of ``VmHWM`` (the figure
  ``ru_maxrss`` reports) over the RSS before the export is taken, with the peak of private
  memory (``RssAnon``, sampled every 2 ms) beside it. Target: the largest tensor + 200 MB.
  Baseline, measured the same way: every array read into memory, then ``save_file``.
- The old Hugging Face way as a whole process (``python -m bench.export hf SRC OUT``, run
  through :mod:`bench._process`: wall time and the process's exact peak RSS): import
  TensorFlow and torch, ``tf.train.load_checkpoint``, ``get_tensor`` every tensor, transpose
  the 2-D ones (``np.transpose``, as ``load_tf_weights_in_bert`` did) into contiguous torch
  tensors, ``safetensors.torch.save_file``. Against the same export by ckptwidgets as a
  process (``python -m bench.export ours SRC OUT``): a plan whose 2-D items are
  ``op="transform"`` with :func:`ckptwidgets.layouts.transpose`. Both files are checked
  equal, tensor by tensor.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

from . import _inputs, _process
from ._timing import Row, Sample, compare, format_bytes, format_seconds, ratio_row
from ._peak import in_child, peak_growth
from .writing import _files_size, synced_compare

NAME = "export"
TARGET = 1.2  # export against save_file + fsync
READ_TARGET = 1.0
MEMORY_SLACK = 200_000_000  # bytes above the largest tensor


def export_bytes(ctx) -> int:
    return (8 << 20) if ctx.quick else (512 << 20)


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _equal_files(path: str, expected: dict) -> bool:
    """Whether the safetensors file at ``path`` holds exactly ``expected``, bit for bit (the reference reader)."""
    from safetensors.numpy import load_file

    written = load_file(path)
    return written.keys() == expected.keys() and all(
        written[k].dtype == v.dtype and written[k].shape == v.shape and written[k].tobytes() == v.tobytes()
        for k, v in expected.items())


def export_rows(ctx, scratch: Path) -> tuple[list, str]:
    """The two throughput rows; also returns the reference writer's file for the reading rows."""
    import tensorflow as tf
    from safetensors.numpy import save_file

    from ckptwidgets import open_checkpoint
    from ckptwidgets.write import plan_write

    nbytes = export_bytes(ctx)
    ctx.log(f"export: building/reusing a {format_bytes(nbytes)} checkpoint of random tensors")
    prefix = _inputs.layers(nbytes, out=ctx.out)
    ckpt = open_checkpoint(prefix)
    ours_out, base_out, copy_out = (str(scratch / n) for n in ("ours.safetensors", "numpy.safetensors", "copy.ckpt"))
    reader = tf.train.load_checkpoint(prefix)
    arrays = {key: reader.get_tensor(key) for key in sorted(reader.get_variable_to_shape_map())}

    def ours():
        plan_write(prefix).write(ours_out, overwrite=True, progress=False)

    def save_file_synced():
        save_file(arrays, base_out, metadata={"format": "pt"})
        _fsync(base_out)

    def copy():
        for path in ckpt.files:
            target = copy_out + path[len(prefix):]
            shutil.copyfile(path, target)
            _fsync(target)

    ours()
    save_file_synced()
    assert _equal_files(ours_out, arrays) and _equal_files(base_out, arrays)

    what = f"{len(arrays)} float32 tensors, {format_bytes(_files_size(prefix))} TF bundle"
    ctx.log("export: against save_file + fsync")
    a, b = synced_compare(ours, save_file_synced, ctx.repeats, ctx.warmup)
    rows = [ratio_row(NAME, f"export `plan_write(src).write(out.safetensors)`, {what} (read, write, fsync, "
                      "read back, rename)", a, b,
                      "`safetensors.numpy.save_file` of the arrays already in memory + `os.fsync`", TARGET)]
    ctx.log("export: against copying the files")
    a, b = synced_compare(ours, copy, ctx.repeats, ctx.warmup)
    rows.append(ratio_row(NAME, "the same export, against copying the bundle's files", a, b,
                          "`shutil.copyfile` of the index and data file + `os.fsync` each", None))
    return rows, base_out


def read_rows(ctx, path: str) -> list:
    from safetensors import safe_open

    from ckptwidgets import open_checkpoint

    with safe_open(path, "np") as f:
        keys = list(f.keys())
        expected = {key: f.get_tensor(key) for key in keys}
    ckpt = open_checkpoint(path)
    for copy in (False, True):
        assert all(np.array_equal(ckpt.read(k, copy=copy), v) and ckpt.read(k, copy=copy).dtype == v.dtype
                   for k, v in expected.items())
    del expected

    def ours(copy=False):
        opened = open_checkpoint(path)
        for key in keys:
            opened.read(key, copy=copy)

    def theirs():
        with safe_open(path, "np") as f:
            for key in keys:
                f.get_tensor(key)

    what = f"every tensor ({len(keys)}) of a {format_bytes(os.path.getsize(path))} safetensors file, page cache warm"
    base_label = '`safe_open(p, "np")` + `get_tensor(key)` each'
    ctx.log("export: reading a safetensors file")
    a, b = compare(ours, theirs, ctx.repeats, ctx.warmup)
    rows = [ratio_row(NAME, f"`open_checkpoint(p)` + `read(key)`, {what} (returns memory-mapped views, read-only)",
                      a, b, base_label, READ_TARGET)]
    a, b = compare(lambda: ours(copy=True), theirs, ctx.repeats, ctx.warmup)
    rows.append(ratio_row(NAME, "the same with `read(key, copy=True)` (arrays in memory, writable)", a, b,
                          base_label, READ_TARGET))
    return rows


# --- peak memory of an export, in fresh processes ------------------------------------------


def _memory_child(kind: str, prefix: str, out: str, small: str) -> dict:
    from ckptwidgets import open_checkpoint
    from ckptwidgets.write import plan_write

    if kind == "ckptwidgets":
        def export(source, target):
            plan_write(source).write(target, overwrite=True, progress=False)
    else:
        from safetensors.numpy import save_file

        def export(source, target):
            ckpt = open_checkpoint(source)
            save_file({e.name: ckpt.read(e.name, copy=True) for e in ckpt.entries}, target, metadata={"format": "pt"})
            _fsync(target)

    export(small, out + "-warm.safetensors")  # imports and first calls, outside the measurement
    return peak_growth(lambda: export(prefix, out))


def _measure_memory(kind: str, prefix: str, out: str, small: str) -> dict:
    return in_child("bench.export", "memory", kind, prefix, out, small, remove=out[: -len(".safetensors")])


def memory_row(ctx, scratch: Path) -> Row:
    from ckptwidgets import open_checkpoint

    nbytes = ctx.big_bytes
    ctx.log(f"export: building/reusing a {format_bytes(nbytes)} checkpoint")
    prefix = _inputs.big(nbytes, ctx.out)
    small = _inputs.many_entries(ctx.small_entries, ctx.out)
    largest = max(e.nbytes for e in open_checkpoint(prefix).entries)
    ours, private, base = Sample(), Sample(), Sample()
    exact = True
    repeats = 1 if ctx.quick else 3
    for i in range(repeats):
        ctx.log(f"export: memory run {i + 1} of {repeats} (two fresh processes)")
        for kind, sample in (("ckptwidgets", ours), ("numpy", base)):
            result = _measure_memory(kind, prefix, str(scratch / f"memory-{kind}.safetensors"), small)
            sample.values.append(result["growth"])
            exact &= result["reset"]
            if kind == "ckptwidgets":
                private.values.append(result["private"])
    note = "" if exact else " (peak not resettable: lower bound)"
    over = ours.median - largest
    return Row(
        NAME,
        f"peak RSS growth exporting a {format_bytes(_files_size(prefix))} checkpoint (largest tensor "
        f"{format_bytes(largest)}) to safetensors, `plan_write(p).write(out.safetensors)` in a fresh process{note}",
        f"{format_bytes(ours.median)} ± {format_bytes(ours.spread)} (private: {format_bytes(private.median)})",
        f"every `read(key, copy=True)` + `save_file`: {format_bytes(base.median)} ± {format_bytes(base.spread)}",
        f"{ours.median / base.median:.2f}x (largest tensor {'+' if over >= 0 else '−'} {format_bytes(abs(over))})",
        f"≤ largest tensor + {format_bytes(MEMORY_SLACK)}",
        ours.median,
        largest + MEMORY_SLACK,
    )


# --- the old Hugging Face path, as whole processes ------------------------------------------


def _ours_process(source: str, out: str) -> None:
    from ckptwidgets.layouts import transpose
    from ckptwidgets.write import WritePlan, plan_write

    plan, t = plan_write(source), transpose()
    items = [item._replace(shape=t.shape(item.shape), op="transform", transform=t)
             if item.op == "copy" and len(item.shape) == 2 else item for item in plan.items]
    WritePlan(items, plan.dropped, plan.problems, plan.notes).write(out, overwrite=True, progress=False)


def _hf_process(source: str, out: str) -> None:
    """What ``convert_bert_original_tf_checkpoint_to_pytorch.py`` did, less the model class."""
    import tensorflow as tf
    import torch
    from safetensors.torch import save_file

    reader = tf.train.load_checkpoint(source)
    state = {}
    for name in reader.get_variable_to_shape_map():
        array = reader.get_tensor(name)
        if array.ndim == 2:
            array = np.transpose(array)
        state[name] = torch.from_numpy(np.ascontiguousarray(array))
    save_file(state, out, metadata={"format": "pt"})


def process_rows(ctx, scratch: Path) -> list:
    from safetensors.numpy import load_file

    prefix = _inputs.layers(export_bytes(ctx), out=ctx.out)
    ours_out, hf_out = str(scratch / "process-ours.safetensors"), str(scratch / "process-hf.safetensors")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    argv = {kind: [sys.executable, "-m", "bench.export", kind, prefix, out]
            for kind, out in (("ours", ours_out), ("hf", hf_out))}
    repeats = 1 if ctx.quick else 3
    ours, hf = Sample(), Sample()
    ours_peak, hf_peak = Sample(), Sample()
    for i in range(repeats):
        ctx.log(f"export: old HF path, process run {i + 1} of {repeats}")
        for kind, time_sample, peak_sample in (("ours", ours, ours_peak), ("hf", hf, hf_peak))[:: -1 if i % 2 else 1]:
            result = _process.measure(argv[kind], env=env)
            time_sample.values.append(result["wall"])
            time_sample.cpu.append(result["cpu"])
            peak_sample.values.append(result["maxrss"])
        if i == 0:
            theirs, mine = load_file(hf_out), load_file(ours_out)
            assert mine.keys() == theirs.keys() and all(
                mine[k].shape == v.shape and mine[k].tobytes() == v.tobytes() for k, v in theirs.items())
            del theirs, mine

    what = f"{_files_size(prefix) / 1e6:.0f} MB, 32 tensors, the 2-D ones transposed"
    label = ("TensorFlow + torch: `load_checkpoint`, `get_tensor` each, `np.transpose`, "
             "`safetensors.torch.save_file`")
    rows = [ratio_row(NAME, f"the old HF-style export as a fresh process ({what}): wall time, against "
                      "`python -m bench.export ours` (the same export, `op=\"transform\"` items)", ours, hf, label)]
    rows.append(Row(
        NAME, "the same processes: peak RSS (`ru_maxrss`)",
        f"{format_bytes(ours_peak.median)} ± {format_bytes(ours_peak.spread)}",
        f"{label}: {format_bytes(hf_peak.median)} ± {format_bytes(hf_peak.spread)}",
        f"{ours_peak.median / hf_peak.median:.2f}x",
    ))
    ctx.log(f"export: HF path {format_seconds(hf)}, {format_bytes(hf_peak.median)}")
    return rows


def run(ctx):
    scratch = Path(ctx.out) / "export-scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        rows, reference_file = export_rows(ctx, scratch)
        rows.extend(read_rows(ctx, reference_file))
        rows.append(memory_row(ctx, scratch))
        rows.extend(process_rows(ctx, scratch))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return rows


if __name__ == "__main__":  # python -m bench.export memory KIND PREFIX OUT SMALL | ours|hf SRC OUT
    if sys.argv[1] == "memory":
        print(json.dumps(_memory_child(*sys.argv[2:6])))
    elif sys.argv[1] == "ours":
        _ours_process(*sys.argv[2:4])
    elif sys.argv[1] == "hf":
        _hf_process(*sys.argv[2:4])
    else:
        raise SystemExit("usage: python -m bench.export memory KIND PREFIX OUT SMALL | ours SRC OUT | hf SRC OUT")
