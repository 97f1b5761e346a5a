"""Write a :class:`~ckptwidgets.write.WritePlan` as a tensor bundle: the default output.

Private helper of :mod:`ckptwidgets.sources.bundle` (its ``write``); the steps every writer
takes are :mod:`ckptwidgets.sources._atomic`'s. For a bundle:

1. refuse an output that is one of the inputs, however it is spelled (also its ``.index``
   file, or a folder whose latest checkpoint it is), even with ``overwrite``; refuse an
   output that exists unless ``overwrite``;
2. stream every tensor into a temporary prefix in the destination folder
   (``.<name>.ckptwidgets-tmp-<random>``, hidden) with
   :class:`~ckptwidgets.sources.bundle._writer.BundleWriter`, one tensor in memory at a
   time (means in float64 chunks; a TF2 object graph pruned to the keys written, so that
   TensorFlow's object-based restore finds every key it names);
3. read every tensor back with our reader: each tensor's crc32c against its index entry,
   which holds the crc32c of the bytes as they were written (so a read-back that differs
   from what was written fails there; the index's blocks have their own checksums);
4. move into place: the data file, then the index (a checkpoint exists once its index
   does); an overwritten checkpoint's index goes first, so no moment shows a mix;
5. optionally, the folder's ``checkpoint`` state file, written the same way (temp + rename).
"""
from __future__ import annotations

import os
import secrets
import time

from .. import _atomic
from .._tfkeys import OBJECT_GRAPH_KEY
from ...errors import CheckpointError, WriteError
from ._object_graph import checkpoint_keys, prune
from ._writer import DATA_SUFFIX, BundleWriter

__all__ = ["write", "check_output", "output_prefix", "move_into_place"]

#: Endings of files in formats the bundle is not: a prefix ending so would be written as
#: ``model.bin.index`` and ``model.bin.data-...``, never the file its name promises.
NOT_A_PREFIX = (".keras", ".h5", ".hdf5", ".bin", ".pb", ".npz", ".npy", ".json", ".onnx", ".tflite", ".msgpack",
                ".pkl", ".pickle", ".zip", ".gguf")


def output_prefix(out) -> str:
    """The prefix ``out`` names (without ``.index``), or a :class:`WriteError`."""
    out = os.fspath(out)
    if isinstance(out, bytes):
        out = os.fsdecode(out)
    if not isinstance(out, str) or not out:
        raise WriteError(f"The output must be a checkpoint prefix (str or os.PathLike); got {out!r}.")
    if out.endswith(".index"):
        out = out[: -len(".index")]
    if "://" in out:
        raise WriteError(f"Writing to a remote path is not supported; write {out!r} locally and copy it.")
    return out


def _refuse_other_names(out: str) -> None:
    """A :class:`WriteError` for an output a bundle would honour only in name: a folder, a data
    file, a file of another format (``model.bin`` would be ``model.bin.index`` ...)."""
    if out.endswith(("/", os.sep)) or os.path.isdir(out):
        raise WriteError(f"Nothing was written to {out!r}: it is a folder; name the checkpoint in it "
                         f"({os.path.join(out, 'model.ckpt')!r}).")
    base, _, ending = out.rpartition(".")
    if base and ending.startswith("data-") and "-of-" in ending:
        raise WriteError(f"Nothing was written to {out!r}: it names a TF checkpoint's data file; name the checkpoint "
                         f"by its prefix ({base!r}).")
    stem = os.path.join(os.path.dirname(out), os.path.basename(out).split(".")[0] or "model")
    claimed = _claimed_by(out)
    if claimed:  # reached only by a TF-only writer (convert): writer_for gives that format the name
        raise WriteError(f"Nothing was written to {out!r}: it names a {claimed} file, and this writes a TF checkpoint "
                         f"({out + '.index'!r} and its data files); name it {stem + '.ckpt'!r}.")
    ending = next((e for e in NOT_A_PREFIX if out.lower().endswith(e)), None)
    if ending:
        raise WriteError(
            f"Nothing was written to {out!r}: ckptwidgets writes no {ending!r} file, and a TF checkpoint named so would "
            f"be {out + '.index'!r} and its data files. Name the output {stem + '.safetensors'!r}, {stem + '.pt'!r}, "
            f"{stem + '.weights.h5'!r} (with the model) or a TF checkpoint prefix such as {stem + '.ckpt'!r}."
        )


def _claimed_by(out: str) -> str | None:
    """The format (its module's name) that writes ``out``, when it is not the bundle."""
    from .. import writer_for

    name = writer_for(out).__name__
    return None if name == __package__ else name.rsplit(".", 1)[-1]


def _existing_files(prefix: str) -> list[str]:
    folder = os.path.dirname(prefix) or "."
    base = os.path.basename(prefix)
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(
        os.path.join(folder, n) for n in names if n == base + ".index" or (n.startswith(base + ".data-") and base + ".data-" != n)
    )


def _output_files(out, prefix: str) -> list[str]:
    """The files writing ``prefix`` may replace (a folder ``out`` names its latest checkpoint's)."""
    files = [prefix + ".index", prefix + DATA_SUFFIX, *_existing_files(prefix)]
    path = os.fsdecode(os.fspath(out))
    if os.path.isdir(path):  # a folder names its latest checkpoint when read: refuse that too
        from ...reader import open_checkpoint

        try:
            files += open_checkpoint(path).files
        except CheckpointError:
            pass
    return files


def check_output(inputs, out, overwrite: bool) -> str:
    """The prefix to write ``out`` to, after refusing one of ``inputs`` (a plan, whose
    problems are refused too, or ``[Checkpoint]``) and, without ``overwrite``, an existing
    checkpoint."""
    prefix = output_prefix(out)
    _atomic.refuse_own_source(inputs, prefix, _output_files(out, prefix))
    _refuse_other_names(prefix)
    if hasattr(inputs, "problems"):
        _atomic.refuse_problems(inputs, prefix)
    if not overwrite:
        existing = _existing_files(prefix)
        if existing and not any(path.endswith(".index") for path in existing):
            names = ", ".join(os.path.basename(path) for path in existing)
            raise WriteError(
                f"The output {prefix!r} already exists as data without its index ({names}): no checkpoint, "
                "most likely left by a write that was killed while moving into place; pass overwrite=True to replace it."
            )
        if existing:
            raise WriteError(f"A checkpoint already exists at {prefix!r}; pass overwrite=True to replace it.")
    return prefix


def move_into_place(temp: str, prefix: str, overwrite: bool) -> list[str]:
    """The bundle at ``temp`` renamed to ``prefix``: data file, then index (an overwritten
    checkpoint's files removed first, its index first)."""
    old = sorted(_existing_files(prefix), key=lambda p: not p.endswith(".index")) if overwrite else []
    moved = _atomic.move_into_place([(temp + DATA_SUFFIX, prefix + DATA_SUFFIX), (temp + ".index", prefix + ".index")], old)
    return moved[::-1]


def _write_tensors(plan, temp: str, tick) -> None:
    writer = BundleWriter(temp)
    keys = set(plan.keys)
    try:
        done = 0
        for item in plan.items:
            if item.op == "mean":
                done += writer.add_chunks(item.key, item.dtype, item.shape, _atomic.mean_chunks(item))
            elif item.op == "prune":
                ckpt, key = item.sources[0]
                done += writer.add(item.key, prune(ckpt.read(key), keys), item.dtype)
            else:
                done += writer.add(item.key, _atomic.item_value(item), item.dtype)
            tick(done)
        writer.finish()
    except BaseException:
        writer.abort()
        raise


def _verify(plan, temp: str) -> None:
    written = _atomic.read_back(temp, {item.key: (item.dtype, item.shape) for item in plan.items})
    for entry in written.entries:
        # The reader checks the bytes' crc32c against the index entry, which is the crc32c the
        # writer computed of what it wrote (a second crc32c here would compute the same number).
        value = written.read(entry.key)
        if entry.key == OBJECT_GRAPH_KEY:
            _verify_graph(temp, value, plan.keys)
        del value  # unmapped now: the next read must not map a second tensor beside this one


def _verify_graph(temp: str, data, keys) -> None:
    """The object graph names only keys the checkpoint holds (TensorFlow reads each one)."""
    try:
        missing = sorted(checkpoint_keys(data) - set(keys))
    except ValueError:
        return  # copied as the source had it: not ours to judge
    if missing:
        raise WriteError(f"The object graph written to {temp!r} names keys it does not hold, e.g. {missing[0]!r}.")


def _write_state_file(prefix: str) -> None:
    folder = os.path.dirname(prefix) or "."
    name = os.path.basename(prefix)
    text = f'model_checkpoint_path: "{_escape(name)}"\nall_model_checkpoint_paths: "{_escape(name)}"\n'
    temp = os.path.join(folder, f".checkpoint.ckptwidgets-tmp-{secrets.token_hex(4)}")
    try:
        with open(temp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(temp, os.path.join(folder, "checkpoint"))
    except BaseException:
        if os.path.exists(temp):
            os.remove(temp)
        raise


def _escape(text: str) -> str:
    """``text`` as a quoted string of protobuf's text format: C escapes, UTF-8 bytes in octal."""
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        if char in '"\\':
            out.append("\\" + char)
        elif 0x20 <= byte < 0x7F:
            out.append(char)
        else:
            out.append(f"\\{byte:03o}")
    return "".join(out)


def write(plan, out, overwrite=False, state_file=False, progress=None, dry_run=False) -> _atomic.WriteReport:
    """Write ``plan`` to prefix ``out``: see the module docstring (``dry_run``: refuse, write nothing,
    report what would be written)."""
    start = time.perf_counter()
    prefix = check_output(plan, out, overwrite)
    if dry_run:
        return _atomic.WriteReport(prefix, [], plan.keys, plan.nbytes, 0.0, plan.dropped, dry_run=True)
    folder = os.path.dirname(prefix) or "."
    temp = _atomic.temporary_name(prefix)
    with _atomic.ticking(plan.nbytes, progress) as tick, _atomic.staged(prefix, temp):
        os.makedirs(folder, exist_ok=True)
        _write_tensors(plan, temp, tick)
        _verify(plan, temp)
        files = move_into_place(temp, prefix, overwrite)
    if state_file:
        try:
            _write_state_file(prefix)
        except OSError as error:  # the checkpoint is in place: say so
            raise WriteError(
                f"The checkpoint was written to {prefix!r}, but not the folder's 'checkpoint' file naming it: "
                f"{error.strerror or error} ({error.filename or folder!r})."
            ) from None
    return _atomic.WriteReport(prefix, files, plan.keys, sum(i.nbytes for i in plan.items), time.perf_counter() - start,
                               plan.dropped)
