"""Checks on a checkpoint path made before TensorFlow touches it.

Private helper of the formats (:mod:`ckptwidgets.sources.bundle`, :mod:`ckptwidgets.sources.keras`),
with the few words their messages share (:func:`first_line`, :func:`suggest`). Two things
stall or crash a notebook before the reader's own index checks run:

- a special file where a checkpoint file is expected: reading a FIFO blocks until some
  other process writes to it (forever, in a class), ``/dev/zero`` never ends. The folder's
  ``checkpoint`` file, the ``.index`` file and the data shards must be regular files (a
  directory is left to the reader: TensorFlow reports "Is a directory" at once);
- a folder's ``checkpoint`` file that is not text: ``tf.train.latest_checkpoint`` raises
  ``UnicodeDecodeError`` (not a TensorFlow error) on random bytes.

All become a :class:`~ckptwidgets.errors.CorruptCheckpointError` naming the file.
Remote file systems (``gs://``, ``s3://``...) hold no special files and are not checked.

Example
-------
>>> import os, tempfile
>>> from ckptwidgets.sources._validate import check_special
>>> folder = tempfile.mkdtemp()
>>> os.mkfifo(os.path.join(folder, "m.ckpt.index"))
>>> check_special(os.path.join(folder, "m.ckpt.index"), "index file")
Traceback (most recent call last):
...
ckptwidgets.errors.CorruptCheckpointError: The index file '...m.ckpt.index' is a FIFO (named pipe), not a regular file: reading it would wait for a writer forever.
"""
from __future__ import annotations

import difflib
import glob
import os
import stat

from ..errors import CheckpointError, CheckpointNotFoundError, CorruptCheckpointError

__all__ = ["check_special", "resolve_prefix", "is_remote", "first_line", "suggest"]

_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)", "reading it would wait for a writer forever"),
    (stat.S_ISSOCK, "a socket", "it cannot be read as a file"),
    (stat.S_ISCHR, "a character device", "reading it may never end"),
    (stat.S_ISBLK, "a block device", "it is not a checkpoint file"),
)


def is_remote(path: str) -> bool:
    return "://" in path


def _local(path: str) -> bool:
    return not is_remote(path)


def first_line(error: BaseException) -> str:
    """The first line of what ``error`` says (TensorFlow's messages run on for pages)."""
    text = getattr(error, "message", None) or str(error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__


def suggest(name: str, candidates, n: int = 3) -> str:
    """`` Did you mean 'a', 'b'?`` for the close matches of ``name``, or ``""``."""
    close = difflib.get_close_matches(name, list(candidates), n=n, cutoff=0.5)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def suggest_in_folder(path: str, is_ours) -> str:
    """:func:`suggest` among the names in ``path``'s folder for which ``is_ours(name)`` holds."""
    folder = os.path.dirname(path) or "."
    try:
        names = [n for n in os.listdir(folder) if is_ours(n)]
    except OSError:
        return ""
    return suggest(os.path.basename(path), names)


def file_mode(path: str, ours: bool, what: str, is_ours) -> int | None:
    """``os.stat(path).st_mode``, or None for a remote or absent path; an absent path whose name
    is ``ours`` is a :class:`CheckpointNotFoundError` (``No <what> at ...``, with close names)."""
    if is_remote(path):
        return None
    try:
        return os.stat(path).st_mode
    except (OSError, ValueError):
        if ours:
            raise CheckpointNotFoundError(f"No {what} at {path!r}.{suggest_in_folder(path, is_ours)}") from None
        return None


def check_special(path: str, what: str) -> None:
    """Raise :class:`CorruptCheckpointError` if ``path`` exists and is a FIFO, socket or device."""
    if not _local(path):
        return
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):  # absent, a broken link, a NUL in the name: the reader reports it
        return
    for test, kind, why in _KINDS:
        if test(mode):
            raise CorruptCheckpointError(f"The {what} {path!r} is {kind}, not a regular file: {why}.")


def resolve_prefix(path: str, resolve) -> str:
    """``resolve(path)`` (the reader's prefix resolution) guarded by the checks above."""
    local_dir = _local(path) and os.path.isdir(path)
    if local_dir:
        check_special(os.path.join(path, "checkpoint"), "'checkpoint' file")
    try:
        prefix = resolve(path)
    except (CheckpointError, Warning):  # a warning turned into an error by the caller's filters
        raise
    except Exception as error:  # e.g. UnicodeDecodeError from a binary 'checkpoint' file
        where = f"the 'checkpoint' file of folder {path!r}" if local_dir else repr(path)
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise CorruptCheckpointError(
            f"Cannot read {where}: {type(error).__name__}: {first}. "
            "Pass a checkpoint prefix, or repair or delete that file."
        ) from None
    if _local(prefix):
        check_special(prefix + ".index", "index file")
        for shard in sorted(glob.glob(glob.escape(prefix) + ".data-*")):
            check_special(shard, "data file")
    return prefix
