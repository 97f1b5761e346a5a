"""Write a :class:`~ckptwidgets.write.WritePlan` so that nothing half-written ever has the final name.

Private helper of :mod:`ckptwidgets.write`. The steps, each one a point where a crash,
``kill -9``, a full disk or a read-only folder leaves the inputs unchanged and nothing
under the output's name:

1. refuse an output that is one of the inputs, however it is spelled (a relative path,
   ``./``, a link, the ``.index`` file, a folder whose latest checkpoint it is), even with
   ``overwrite`` (:func:`refuse_own_source`, for bundles and ``.weights.h5`` files alike);
   refuse an output that exists unless ``overwrite``;
2. stream every tensor into a temporary prefix in the destination folder
   (``.<name>.ckptwidgets-tmp-<random>``, hidden), one tensor in memory at a time
   (means in float64 chunks; a TF2 object graph pruned to the keys written, so that
   TensorFlow's object-based restore finds every key it names);
3. read every tensor back with our reader: each tensor's crc32c against its index entry,
   which holds the crc32c of the bytes as they were written (so a read-back that differs
   from what was written fails there; the index's blocks have their own checksums);
4. move into place: the data file, then the index (a checkpoint exists once its index
   does); an overwritten checkpoint's index goes first, so no moment shows a mix;
5. optionally, the folder's ``checkpoint`` state file, written the same way (temp + rename).

On any failure the temporary files are removed and a :class:`WriteError` names the file
and the reason.
"""
from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass, field

import numpy as np

from .bundle._writer import DATA_SUFFIX, BundleWriter
from ..errors import CheckpointError, WriteError
from ._tfkeys import OBJECT_GRAPH_KEY

__all__ = ["write_plan", "refuse_own_source", "WriteReport", "CHUNK_ELEMENTS", "output_prefix", "existing_files", "temporary_prefix", "move_into_place", "remove_temporary", "item_value", "progress_callbacks"]

#: Means are computed over this many elements at a time (8 bytes each in float64).
CHUNK_ELEMENTS = 1 << 22


@dataclass
class WriteReport:
    """What :meth:`WritePlan.write` wrote.

    Attributes
    ----------
    prefix : str
        The checkpoint written (open it with :func:`ckptwidgets.open_checkpoint`).
    files : list of str
    keys : list of str
        Its keys, sorted.
    nbytes : int
        Bytes of tensor data written.
    seconds : float
    dropped : list of (str, str)
        Input keys left out and why.
    """

    prefix: str
    files: list = field(default_factory=list)
    keys: list = field(default_factory=list)
    nbytes: int = 0
    seconds: float = 0.0
    dropped: list = field(default_factory=list)

    def __str__(self) -> str:
        from .._text.format import human_size

        text = (
            f"Wrote {len(self.keys)} tensors ({human_size(self.nbytes)}) to {self.prefix!r} "
            f"in {self.seconds:.2f} s"
        )
        return text + (f"; left out {len(self.dropped)}" if self.dropped else "")


def output_prefix(out) -> str:
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


def existing_files(prefix: str) -> list[str]:
    folder = os.path.dirname(prefix) or "."
    base = os.path.basename(prefix)
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(
        os.path.join(folder, n) for n in names if n == base + ".index" or (n.startswith(base + ".data-") and base + ".data-" != n)
    )


def _values(item, keys=()):
    """The output value of an item (None for ``"mean"``: see :func:`_mean_chunks`);
    ``keys``, the keys written, are what a ``"prune"``d object graph may name."""
    if item.op == "mean":
        return None
    ckpt, key = item.sources[0]
    value = ckpt.read(key)
    if item.op == "prune":
        from .bundle._object_graph import prune

        return prune(value, keys)
    return value if item.op == "copy" else np.asarray(value).astype(_numpy(item.dtype))


def _numpy(dtype: str):
    from ._dtypes import BY_NAME

    return BY_NAME[dtype].numpy


def _mean_chunks(item):
    """The float64 mean of the sources, rounded once to the item's dtype, chunk by chunk."""
    arrays = [np.asarray(ckpt.read(key)).reshape(-1) for ckpt, key in item.sources]
    out_type, count = _numpy(item.dtype), len(arrays)
    size = arrays[0].size
    for start in range(0, max(size, 1), CHUNK_ELEMENTS):
        total = np.zeros(min(CHUNK_ELEMENTS, size - start), np.float64)
        for array in arrays:
            total += array[start : start + CHUNK_ELEMENTS]
        yield (total / count).astype(out_type)


def item_value(item) -> np.ndarray:
    """One item's whole output value: copied, cast, or the float64 mean rounded once.

    For writers that take a tensor whole (HDF5 datasets); the bundle writer streams means
    in chunks instead.
    """
    if item.op == "mean":
        return np.concatenate(list(_mean_chunks(item))).reshape(item.shape)
    return np.asarray(_values(item))


def progress_callbacks(total: int, progress):
    """``(tick(done), close())`` for a ``progress`` argument (None: tqdm, False, or a callable)."""
    return _progress(total, progress)


def _progress(total: int, progress):
    if progress is False:
        return lambda done: None, lambda: None
    if callable(progress):
        return (lambda done: progress(done, total)), (lambda: None)
    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit="B", unit_scale=True, desc="writing", delay=1.0, leave=False)
    return (lambda done: bar.update(done - bar.n)), bar.close


def _write_tensors(plan, temp: str, tick) -> dict:
    writer = BundleWriter(temp)
    keys = set(plan.keys)
    try:
        done = 0
        for item in plan.items:
            if item.op == "mean":
                done += writer.add_chunks(item.key, item.dtype, item.shape, _mean_chunks(item))
            else:
                done += writer.add(item.key, _values(item, keys), item.dtype)
            tick(done)
        writer.finish()
    except BaseException:
        writer.abort()
        raise
    return writer.crcs


def _verify(plan, temp: str) -> None:
    from ..reader import open_checkpoint

    written = open_checkpoint(temp)
    expected = {item.key: item for item in plan.items}
    if written.keys() != sorted(expected):
        raise WriteError(f"The temporary checkpoint {temp!r} does not hold the planned keys.")
    for entry in written.entries:
        item = expected[entry.key]
        if (entry.dtype, entry.shape) != (item.dtype, tuple(item.shape)):
            raise WriteError(f"Key {entry.key!r} was written as {entry.dtype} {entry.shape}, planned {item.dtype} {item.shape}.")
        # The reader checks the bytes' crc32c against the index entry, which is the crc32c the
        # writer computed of what it wrote (a second crc32c here would compute the same number).
        value = written.read(entry.key)
        if entry.key == OBJECT_GRAPH_KEY:
            _verify_graph(temp, value, expected)
        del value  # unmapped now: the next read must not map a second tensor beside this one


def _verify_graph(temp: str, data, keys) -> None:
    """The object graph names only keys the checkpoint holds (TensorFlow reads each one)."""
    from .bundle._object_graph import checkpoint_keys

    try:
        missing = sorted(checkpoint_keys(data) - set(keys))
    except ValueError:
        return  # copied as the source had it: not ours to judge
    if missing:
        raise WriteError(f"The object graph written to {temp!r} names keys it does not hold, e.g. {missing[0]!r}.")


def move_into_place(temp: str, prefix: str, overwrite: bool) -> list[str]:
    if overwrite:
        old = existing_files(prefix)
        for path in sorted(old, key=lambda p: not p.endswith(".index")):  # the index first
            os.remove(path)
    os.replace(temp + DATA_SUFFIX, prefix + DATA_SUFFIX)
    try:
        os.replace(temp + ".index", prefix + ".index")
    except BaseException:  # a data file without its index is no checkpoint: leave none
        os.remove(prefix + DATA_SUFFIX)
        raise
    return [prefix + ".index", prefix + DATA_SUFFIX]


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


def temporary_prefix(prefix: str) -> str:
    """A fresh hidden prefix beside ``prefix`` (same folder: moving it in is a rename)."""
    folder = os.path.dirname(prefix) or "."
    return os.path.join(folder, f".{os.path.basename(prefix) or 'ckpt'}.ckptwidgets-tmp-{secrets.token_hex(6)}")


def remove_temporary(temp: str) -> None:
    """Delete every file of a temporary prefix that is still there."""
    folder, base = os.path.dirname(temp) or ".", os.path.basename(temp)
    for name in os.listdir(folder):
        if name.startswith(base + "."):
            os.remove(os.path.join(folder, name))


def _output_files(out) -> tuple[str, list[str]]:
    """``(the output as messages name it, the files writing it may replace)``."""
    path = os.fsdecode(os.fspath(out))
    if path.endswith(".weights.h5"):
        return path, [path]
    prefix = output_prefix(out)
    files = [prefix + ".index", prefix + DATA_SUFFIX, *existing_files(prefix)]
    if os.path.isdir(path):  # a folder names its latest checkpoint when read: refuse that too
        from ..reader import open_checkpoint

        try:
            files += open_checkpoint(path).files
        except CheckpointError:
            pass
    return prefix, files


def refuse_own_source(inputs, out) -> None:
    """:class:`WriteError` when writing ``out`` would replace a file of ``inputs`` (a
    :class:`~ckptwidgets.write.WritePlan`, or the checkpoints read: ``[Checkpoint]``).

    Files are compared by their real paths, so every spelling of an input is refused (a
    relative path, ``./``, a link, ``.index``), with or without ``overwrite``: a write
    reads its inputs while it writes, and a checkpoint is never rewritten in place.
    """
    if hasattr(inputs, "items") and hasattr(inputs, "problems"):  # a WritePlan
        inputs = [ckpt for item in inputs.items for ckpt, _key in item.sources]
    shown, files = _output_files(out)
    targets = {os.path.realpath(f) for f in files}
    seen = set()
    for ckpt in inputs:
        if id(ckpt) not in seen:
            seen.add(id(ckpt))
            if any(os.path.realpath(f) in targets for f in ckpt.files):
                raise WriteError(
                    f"The output {shown!r} is the input checkpoint itself ({ckpt.prefix!r}): nothing was written. "
                    "Write to another name; a checkpoint is never written over one it is read from, "
                    "even with overwrite=True."
                )


def write_plan(plan, out, overwrite=False, state_file=False, progress=None) -> WriteReport:
    """Write ``plan`` to prefix ``out``: see the module docstring."""
    start = time.perf_counter()
    prefix = output_prefix(out)
    if plan.problems:
        raise WriteError(
            f"Nothing was written to {prefix!r}: the plan has {len(plan.problems)} problem(s):\n"
            + "\n".join(f"  - {p}" for p in plan.problems)
        )
    if not overwrite:
        existing = existing_files(prefix)
        if existing and not any(path.endswith(".index") for path in existing):
            names = ", ".join(os.path.basename(path) for path in existing)
            raise WriteError(
                f"The output {prefix!r} already exists as data without its index ({names}): no checkpoint, "
                "most likely left by a write that was killed while moving into place; pass overwrite=True to replace it."
            )
        if existing:
            raise WriteError(f"A checkpoint already exists at {prefix!r}; pass overwrite=True to replace it.")
    folder = os.path.dirname(prefix) or "."
    temp = temporary_prefix(prefix)
    tick, close = _progress(plan.nbytes, progress)
    try:
        os.makedirs(folder, exist_ok=True)
        _write_tensors(plan, temp, tick)
        try:
            _verify(plan, temp)
            files = move_into_place(temp, prefix, overwrite)
        finally:
            remove_temporary(temp)
        if state_file:
            try:
                _write_state_file(prefix)
            except OSError as error:  # the checkpoint is in place: say so
                raise WriteError(
                    f"The checkpoint was written to {prefix!r}, but not the folder's 'checkpoint' file naming it: "
                    f"{error.strerror or error} ({error.filename or folder!r})."
                ) from None
    except WriteError:
        raise
    except CheckpointError as error:
        raise WriteError(f"Nothing was written to {prefix!r}: {error}") from None
    except OSError as error:
        where = error.filename or folder
        if os.path.basename(os.fsdecode(where)).startswith(os.path.basename(temp) + "."):
            where = folder  # our hidden temporary files: the folder is what a user can fix
        raise WriteError(
            f"Nothing was written to {prefix!r}: {error.strerror or error} ({where!r}). The inputs are unchanged."
        ) from None
    finally:
        close()
    return WriteReport(prefix, files, plan.keys, sum(i.nbytes for i in plan.items), time.perf_counter() - start, plan.dropped)
