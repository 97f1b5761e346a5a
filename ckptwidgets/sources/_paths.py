"""From what a user typed to a tensor bundle's prefix, without TensorFlow for local paths.

A prefix (``model.ckpt``), its ``.index`` file, or a folder: its ``checkpoint`` state file
names the latest prefix (read here as ``tf.train.get_checkpoint_state`` reads it), else
its only ``.index``. A ``.meta`` file or a data shard is an error naming the prefix to
pass. Remote paths (``gs://``...) are looked up with TensorFlow's file systems.

Example
-------
>>> parse_state('model_checkpoint_path: "model.ckpt-2"\\nall_model_checkpoint_paths: "model.ckpt-1"\\n')
{'model_checkpoint_path': ['model.ckpt-2'], 'all_model_checkpoint_paths': ['model.ckpt-1']}
"""
from __future__ import annotations

import codecs
import difflib
import glob
import os
import re

from .. import _validate
from .._quiet import import_tensorflow
from ..errors import CheckpointNotFoundError, CorruptCheckpointError

__all__ = ["resolve_prefix", "parse_state", "is_remote", "first_line", "suggest"]

_META_FILE = re.compile(r"\.meta$")
_DATA_FILE = re.compile(r"\.data-\d{5}-of-\d{5}$")
# One field of a text-format CheckpointState: `name: "C-escaped string"` or `name: number`.
_FIELD = re.compile(r'\s*([A-Za-z_]\w*)\s*:\s*(?:"((?:[^"\\\n]|\\.)*)"|([-+0-9.eE]+))\s*')


def is_remote(path: str) -> bool:
    return "://" in path


def first_line(error: BaseException) -> str:
    text = getattr(error, "message", None) or str(error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__


def suggest(name: str, candidates, n: int = 3) -> str:
    """`` Did you mean 'a', 'b'?`` for the close matches of ``name``, or ``""``."""
    close = difflib.get_close_matches(name, list(candidates), n=n, cutoff=0.5)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


class _Files:
    """The few file-system calls resolution needs: local ones, or TensorFlow's for remote paths."""

    def __init__(self, path: str):
        self.gfile = import_tensorflow().io.gfile if is_remote(path) else None

    def isdir(self, path):
        return self.gfile.isdir(path) if self.gfile else os.path.isdir(path)

    def exists(self, path):
        return self.gfile.exists(path) if self.gfile else os.path.exists(path)

    def glob(self, pattern_folder, suffix):
        if self.gfile:
            return sorted(self.gfile.glob(os.path.join(pattern_folder, "*" + suffix)))
        return sorted(glob.glob(os.path.join(glob.escape(pattern_folder), "*" + suffix)))

    def listdir(self, folder):
        return self.gfile.listdir(folder) if self.gfile else os.listdir(folder)

    def read_text(self, path):
        if self.gfile:
            with self.gfile.GFile(path, "rb") as f:
                return f.read().decode("utf-8")
        with open(path, "rb") as f:
            return f.read().decode("utf-8")


def parse_state(text: str) -> dict[str, list] | None:
    """The fields of a text-format ``CheckpointState``, or None where TensorFlow would ignore the file.

    ``tf.train.get_checkpoint_state`` logs a warning and returns None for text it cannot
    parse; a file without ``model_checkpoint_path`` is an error there (ValueError).
    """
    fields: dict[str, list] = {}
    pos = 0
    while pos < len(text):
        found = _FIELD.match(text, pos)
        if found is None or found.end() == pos:
            return None
        name, quoted, number = found.groups()
        value = codecs.escape_decode(quoted.encode("utf-8"))[0].decode("utf-8") if quoted is not None else float(number)
        fields.setdefault(name, []).append(value)
        pos = found.end()
    return fields


def _latest_in_folder(path: str, files: _Files) -> str:
    state_file = os.path.join(path, "checkpoint")
    state = parse_state(files.read_text(state_file)) if files.exists(state_file) else None
    if state is not None:
        named = state.get("model_checkpoint_path", [""])[-1]
        if not named:
            raise ValueError(f"Invalid checkpoint state loaded from {path}")
        latest = named if os.path.isabs(named) or is_remote(named) else os.path.join(path, named)
        if files.exists(latest + ".index"):
            return latest
        raise CheckpointNotFoundError(
            f"The 'checkpoint' file in folder {path!r} points to {latest!r}, "
            "which has no .index file: the checkpoint it names was moved or deleted."
        )
    indexes = files.glob(path, ".index")
    if len(indexes) == 1:
        return indexes[0][: -len(".index")]
    if indexes:
        raise CheckpointNotFoundError(
            f"Folder {path!r} holds {len(indexes)} checkpoints and no 'checkpoint' file "
            f"saying which is latest; pass one prefix, e.g. {indexes[-1][:-6]!r}."
        )
    raise CheckpointNotFoundError(f"Folder {path!r} contains no checkpoint (no .index file).")


def _resolve(path: str) -> str:
    files = _Files(path)
    # Some remote file systems (TF's ram://) call every prefix a folder: the index decides.
    remote_prefix = is_remote(path) and not path.endswith("/") and files.exists(path + ".index")
    if files.isdir(path) and not remote_prefix:
        return _latest_in_folder(path, files)
    if path.endswith(".index"):
        path = path[: -len(".index")]
    for pattern, what in ((_META_FILE, "a MetaGraph file"), (_DATA_FILE, "a data shard")):
        found = pattern.search(path)
        if found:
            prefix = path[: found.start()]
            raise CheckpointNotFoundError(
                f"{path!r} is {what}, not a checkpoint prefix; "
                f"pass the prefix {prefix!r} (or its .index file) instead."
            )
    if not files.exists(path + ".index"):
        if files.exists(path) and not files.isdir(path):
            raise CorruptCheckpointError(
                f"{path!r} is a file but not a checkpoint prefix: there is no {path + '.index'!r}."
            )
        folder = os.path.dirname(path) or "."
        hint = ""
        if files.isdir(folder):
            prefixes = [f[:-6] for f in files.listdir(folder) if f.endswith(".index")]
            hint = suggest(os.path.basename(path), prefixes)
        raise CheckpointNotFoundError(f"No checkpoint at {path!r} (no file {path + '.index'!r}).{hint}")
    return path


def resolve_prefix(path: str) -> str:
    """The prefix of the checkpoint at ``path``, guarded by :mod:`ckptwidgets._validate`'s checks."""
    return _validate.resolve_prefix(path, _resolve)
