"""What every writer shares so that nothing half-written ever has the final name.

Private helper of the formats' writers (:mod:`ckptwidgets.sources.bundle`,
:mod:`ckptwidgets.sources.keras`) and of :mod:`ckptwidgets.convert`. A write takes these
steps, each one a point where a crash, ``kill -9``, a full disk or a read-only folder
leaves the inputs unchanged and nothing under the output's name:

1. :func:`refuse_own_source`: an output that is one of the inputs, however it is spelled
   (a relative path, ``./``, a link), is refused even with ``overwrite``;
   :func:`refuse_problems`: a plan with problems writes nothing;
2. the format writes into :func:`temporary_name`, a hidden name in the destination folder,
   one tensor at a time (:func:`item_value`, :func:`mean_chunks`: a mean in float64,
   rounded once), :func:`ticking` the progress;
3. :func:`read_back` opens what was written with our reader and checks keys, dtypes and
   shapes against the plan; the format then checks the values (checksums);
4. the format moves its files into place (:func:`move_into_place`: in order, the last one
   making the checkpoint exist; an earlier one is taken back if a later one fails).

:func:`staged` wraps steps 2-4: the temporary files are removed on every exit, and any
failure becomes the one :class:`WriteError` wording, "Nothing was written to <out>: <why>
(<where>). The inputs are unchanged."

Example
-------
>>> import os, tempfile
>>> final = os.path.join(tempfile.mkdtemp(), "out.txt")
>>> temp = temporary_name(final)
>>> with staged(final, temp):
...     with open(temp, "w") as f:
...         _ = f.write("done")
...     _ = move_into_place([(temp, final)])
>>> open(final).read(), os.listdir(os.path.dirname(final))
('done', ['out.txt'])
"""
from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from ..errors import CheckpointError, WriteError
from ._dtypes import numpy_type
from ._tfkeys import OBJECT_GRAPH_KEY

__all__ = ["WriteReport", "would_write", "CHUNK_ELEMENTS", "refuse_own_source", "refuse_problems", "local_output", "tensor_items",
           "refuse_for_one_file",
           "temporary_name", "staged",
           "remove_temporary", "move_into_place", "read_back", "item_value", "mean_chunks", "ticking"]

#: Means are computed over this many elements at a time (8 bytes each in float64).
CHUNK_ELEMENTS = 1 << 22


@dataclass
class WriteReport:
    """What :meth:`WritePlan.write` wrote (with ``dry_run``: would write; ``files`` is empty).

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
        Input keys left out and why (by the plan, and by the format: a string a safetensors
        file cannot hold).
    dry_run : bool
        Nothing was written: the report of a ``write(..., dry_run=True)``.
    """

    prefix: str
    files: list
    keys: list
    nbytes: int
    seconds: float
    dropped: list = field(default_factory=list)
    dry_run: bool = False

    def __str__(self) -> str:
        from .._text.format import count_of, human_size

        what = f"{count_of(len(self.keys), 'tensor')} ({human_size(self.nbytes)}) to {self.prefix!r}"
        text = f"Would write {what}" if self.dry_run else f"Wrote {what} in {self.seconds:.2f} s"
        return text + (f"; left out {len(self.dropped)}" if self.dropped else "")


# --- before anything is written ------------------------------------------------------


def refuse_own_source(inputs, shown: str, files) -> None:
    """:class:`WriteError` when writing ``files`` (what the output ``shown`` would replace)
    would replace a file of ``inputs`` (a :class:`~ckptwidgets.write.WritePlan`, or the
    checkpoints read: ``[Checkpoint]``).

    Files are compared by their real paths, so every spelling of an input is refused (a
    relative path, ``./``, a link, ``.index``), with or without ``overwrite``: a write
    reads its inputs while it writes, and a checkpoint is never rewritten in place.
    """
    if hasattr(inputs, "items") and hasattr(inputs, "problems"):  # a WritePlan
        inputs = [ckpt for item in inputs.items for ckpt, _key in item.sources]
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


def would_write(path: str, items, dropped) -> WriteReport:
    """The report of a one-file writer's dry run: ``items`` (``WriteItem`` s) by key, nothing written."""
    return WriteReport(path, [], sorted(item.key for item in items), sum(item.nbytes for item in items), 0.0,
                       list(dropped), dry_run=True)


def refuse_problems(plan, shown: str) -> None:
    """:class:`WriteError` listing the plan's problems, if it has any."""
    if plan.problems:
        from .._text.format import count_of

        # The first problem on the first line: the command line shows that line alone.
        first, *rest = plan.problems
        raise WriteError(
            f"Nothing was written to {shown!r}: the plan has {count_of(len(plan.problems), 'problem')}: {first}"
            + "".join(f"\n  - {p}" for p in rest)
        )


# --- the temporary files and the move into place -------------------------------------


def local_output(out) -> str:
    """``out`` as a local path (``str``); a remote one (``gs://...``) is a :class:`WriteError`."""
    path = os.fsdecode(os.fspath(out))
    if "://" in path:
        raise WriteError(f"Writing to a remote path is not supported; write {path!r} locally and copy it.")
    return path


def tensor_items(plan, shown: str, holds, container: str) -> tuple[list, list]:
    """``(items, [(key, why left out)])`` of a plan written to a format of numbers only.

    TensorFlow's object graph (a string) is left out, saying why; an item whose dtype
    ``holds(dtype)`` refuses is a :class:`WriteError` listing every such item, ``container``
    naming the format (``"safetensors"``, ``"a torch tensor"``).
    """
    items, dropped, refused = [], [], []
    for item in plan.items:
        if item.key == OBJECT_GRAPH_KEY or item.op == "prune":
            dropped.append((item.key, f"TensorFlow's object graph (a string): {container} holds numbers only"))
        elif not holds(item.dtype):
            refused.append(f"key {item.key!r} is {item.dtype}, which {container} cannot hold")
        else:
            items.append(item)
    if refused:  # the first line names them (the command line shows only it), up to three
        head = "; ".join(refused[:3]) + (f"; and {len(refused) - 3} more" if len(refused) > 3 else "")
        rest = "".join(f"\n  - {r}" for r in refused) if len(refused) > 3 else ""
        raise WriteError(f"Nothing was written to {shown!r}: {head} (leave them out with plan.strip(filter=...), "
                         f"or cast them).{rest}")
    return items, dropped


def refuse_for_one_file(plan, path: str, what: str, model_hint: str, *, overwrite, state_file, model) -> None:
    """What every one-file writer (safetensors, torch) refuses before it writes: an output that
    is an input, a plan with problems, ``model=``/``state_file=`` (their keys are the plan's,
    they have no state file), a folder, an existing file without ``overwrite``.

    ``what`` names the format in a sentence (``"a safetensors file"``); ``model_hint`` says
    how to name a model's tensors instead.
    """
    refuse_own_source(plan, path, [path])
    refuse_problems(plan, path)
    if model is not None:
        raise WriteError(f"Nothing was written to {path!r}: {what}'s keys are the plan's; model= lays out a "
                         f"Keras weights file ('.weights.h5'). {model_hint}")
    if state_file:
        raise WriteError(f"state_file=True names a TF checkpoint; {what} has no state file.")
    if os.path.isdir(path):
        raise WriteError(f"Nothing was written to {path!r}: it is a folder.")
    if os.path.lexists(path) and not overwrite:
        raise WriteError(f"A file already exists at {path!r}; pass overwrite=True to replace it.")


def temporary_name(final: str) -> str:
    """A fresh hidden name beside ``final`` (same folder: moving it in is a rename)."""
    folder = os.path.dirname(final) or "."
    return os.path.join(folder, f".{os.path.basename(final) or 'ckpt'}.ckptwidgets-tmp-{secrets.token_hex(6)}")


def remove_temporary(temp: str) -> None:
    """Delete ``temp`` and every ``temp.<suffix>`` file that is still there."""
    folder, base = os.path.dirname(temp) or ".", os.path.basename(temp)
    try:
        names = os.listdir(folder)
    except OSError:  # the folder was never made (or cannot be listed: nothing of ours is there)
        return
    for name in names:
        if name == base or name.startswith(base + "."):
            os.remove(os.path.join(folder, name))


@contextmanager
def staged(shown: str, temp: str, also=()):
    """Run a write into ``temp``'s files: they are gone on every exit, and a failure is
    one :class:`WriteError` saying nothing was written to ``shown``.

    ``also``: further exception types that mean the write failed (h5py refusing a value).
    """
    folder = os.path.dirname(temp) or "."
    try:
        try:
            yield
        finally:
            remove_temporary(temp)
    except WriteError:
        raise
    except CheckpointError as error:  # the read-back found damage
        raise WriteError(f"Nothing was written to {shown!r}: {error}") from None
    except OSError as error:
        where = error.filename or folder
        name = os.path.basename(os.fsdecode(where))
        if name == os.path.basename(temp) or name.startswith(os.path.basename(temp) + "."):
            where = folder  # our hidden temporary files: the folder is what a user can fix
        raise WriteError(
            f"Nothing was written to {shown!r}: {error.strerror or error} ({where!r}). The inputs are unchanged."
        ) from None
    except also as error:
        raise WriteError(f"Nothing was written to {shown!r}: {error}") from None


def move_into_place(moves, remove=()) -> list[str]:
    """Remove the files ``remove`` (an overwritten output's, in that order), then rename each
    ``(temporary, final)`` of ``moves`` in order; the last one makes the output exist.

    When a rename fails, the files already moved are removed: a part is no output.
    """
    for path in remove:
        os.remove(path)
    done = []
    try:
        for temp, final in moves:
            os.replace(temp, final)
            done.append(final)
    except BaseException:
        for final in done:
            os.remove(final)
        raise
    return done


# --- reading the inputs and checking the output --------------------------------------


def read_back(temp: str, planned: dict):
    """The output written to ``temp``, opened with our reader, after checking it holds
    exactly the keys of ``planned`` (``{key: (dtype, shape)}``) with those dtypes and shapes."""
    from ..reader import open_checkpoint
    from .._text.format import format_shape

    written = open_checkpoint(temp)
    if sorted(written.keys()) != sorted(planned):
        raise WriteError(f"The temporary output {temp!r} does not hold the planned keys.")
    for entry in written.entries:
        dtype, shape = planned[entry.key]
        if (entry.dtype, tuple(entry.shape)) != (dtype, tuple(shape)):
            raise WriteError(
                f"Key {entry.key!r} was written as {entry.dtype} {format_shape(entry.shape)}, planned "
                f"{dtype} {format_shape(shape)}."
            )
    return written


def mean_chunks(item):
    """The float64 mean of the item's sources, rounded once to its dtype, chunk by chunk."""
    arrays = [np.asarray(ckpt.read(key)).reshape(-1) for ckpt, key in item.sources]
    out_type, count = numpy_type(item.dtype), len(arrays)
    size = arrays[0].size
    for start in range(0, max(size, 1), CHUNK_ELEMENTS):
        total = np.zeros(min(CHUNK_ELEMENTS, size - start), np.float64)
        for array in arrays:
            total += array[start : start + CHUNK_ELEMENTS]
        yield (total / count).astype(out_type)


def item_value(item, whole: bool = True):
    """One item's output value: copied, cast or transformed; a ``"mean"`` whole (``whole``) or
    None (``whole=False``: a writer that streams it takes :func:`mean_chunks`)."""
    if item.op == "mean":
        return np.concatenate(list(mean_chunks(item))).reshape(item.shape) if whole else None
    if item.op == "transform":
        value = item.transform(*(ckpt.read(key) for ckpt, key in item.sources))
        wanted = numpy_type(item.dtype)
        return value if value.dtype == wanted else value.astype(wanted)
    ckpt, key = item.sources[0]
    value = ckpt.read(key)
    return value if item.op != "cast" else np.asarray(value).astype(numpy_type(item.dtype))


@contextmanager
def ticking(total: int, progress):
    """``tick(bytes done)`` for a ``progress`` argument (None: a tqdm bar, False, or a callable
    taking ``(done, total)``); the bar is closed on exit."""
    if progress is False:
        yield lambda done: None
    elif callable(progress):
        yield lambda done: progress(done, total)
    else:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, unit="B", unit_scale=True, desc="writing", delay=1.0, leave=False)
        try:
            yield lambda done: bar.update(done - bar.n)
        finally:
            bar.close()
