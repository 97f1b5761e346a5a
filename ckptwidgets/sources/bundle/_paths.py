"""From what a user typed to a tensor bundle's prefix, without TensorFlow for local paths.

A prefix (``model.ckpt``), its ``.index`` file, or a folder: its ``checkpoint`` state file
names the latest prefix (read here as ``tf.train.get_checkpoint_state`` reads it), else
its only ``.index``, else the highest step of one run. A state file naming paths that are
not there (another machine's, a moved folder's) falls back to the same basename here, else
the newest checkpoint here, with a :class:`~ckptwidgets.errors.CheckpointWarning`. A
SavedModel folder (or its ``saved_model.pb``) opens its ``variables/variables``. A bare
``.index`` (``Saver.save(sess, "dir/")``) is the prefix ``dir/``. A ``.meta`` file or a data
shard is an error naming the prefix to pass. Remote paths (``gs://``...) are looked up with
TensorFlow's file systems.

Example
-------
>>> parse_state('model_checkpoint_path: "model.ckpt-2"\\nall_model_checkpoint_paths: "model.ckpt-1"\\n')
{'model_checkpoint_path': ['model.ckpt-2'], 'all_model_checkpoint_paths': ['model.ckpt-1']}
"""
from __future__ import annotations

import codecs
import glob
import os
import re
import sys
import warnings

from .. import _validate
from .._validate import is_remote, suggest
from ..._tf.quiet import import_tensorflow
from ...errors import CheckpointNotFoundError, CheckpointWarning, CorruptCheckpointError

__all__ = ["resolve_prefix", "parse_state", "steps_beside", "step_of"]

_META_FILE = re.compile(r"\.meta$")
_DATA_FILE = re.compile(r"\.data-\d{5}-of-\d{5}$")
_STEP = re.compile(r"-(\d+)$")
_SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
# One field of a text-format CheckpointState: `name: "C-escaped string"` or `name: number`.
_FIELD = re.compile(r'\s*([A-Za-z_]\w*)\s*:\s*(?:"((?:[^"\\\n]|\\.)*)"|([-+0-9.eE]+))\s*')


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


def _indexes(folder: str, files: _Files) -> list[str]:
    """Prefixes of the ``.index`` files in ``folder``, sorted; also ``folder/`` itself for a
    bare ``.index`` (what ``Saver.save(sess, "dir/")`` writes: an empty basename)."""
    try:
        names = files.listdir(folder)
    except OSError:
        return []
    return sorted(
        os.path.join(folder, name[: -len(".index")])
        for name in names
        # A write's hidden temporary prefix (.name.ckptwidgets-tmp-xxxx) left by a kill is no checkpoint.
        if name.endswith(".index") and not (name.startswith(".") and ".ckptwidgets-tmp-" in name)
    )


def step_of(prefix: str) -> tuple[str, int] | None:
    """``(stem, step)`` of a prefix ending in ``-<step>`` (``model.ckpt-1000``), else None."""
    found = _STEP.search(prefix)
    return (prefix[: found.start()], int(found.group(1))) if found else None


def steps_beside(prefix: str) -> list[tuple[int, str]]:
    """``(step, prefix)`` of every checkpoint in ``prefix``'s folder with the same stem, by step.

    Empty for a prefix without a step number. ``model.ckpt-999`` comes before
    ``model.ckpt-1000``: steps are numbers, not text.
    """
    own = step_of(prefix)
    if own is None:
        return []
    files = _Files(prefix)
    found = []
    for other in _indexes(os.path.dirname(prefix) or ".", files):
        theirs = step_of(other)
        if theirs is not None and theirs[0] == own[0]:
            found.append((theirs[1], other))
    return sorted(found)


def _warn(text: str) -> None:
    """A :class:`CheckpointWarning` pointing at the caller's line, outside this package."""
    package = os.path.dirname(os.path.abspath(sys.modules["ckptwidgets"].__file__))
    level, frame = 1, sys._getframe(0)
    while frame is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    warnings.warn(CheckpointWarning(text), stacklevel=level)


def _from_state_file(path: str, files: _Files) -> str | None:
    """The prefix the folder's ``checkpoint`` file names, falling back as a user would.

    A state file written on another machine (or before the folder moved) names paths that
    do not exist here: the checkpoint of the same basename in this folder, else the newest
    ``.index`` here, is what was meant; a warning says what was opened instead.
    """
    state_file = os.path.join(path, "checkpoint")
    state = parse_state(files.read_text(state_file)) if files.exists(state_file) else None
    if state is None:
        return None
    named = state.get("model_checkpoint_path", [""])[-1]
    if not named:
        raise ValueError(f"Invalid checkpoint state loaded from {path}")
    latest = named if os.path.isabs(named) or is_remote(named) else os.path.join(path, named)
    if files.exists(latest + ".index"):
        return latest
    here = os.path.join(path, os.path.basename(named.rstrip("/")) if not named.endswith("/") else "")
    indexes = _indexes(path, files)
    if here in indexes:
        opened, how = here, "the checkpoint of that name in this folder"
    elif indexes:
        opened, how = _newest(indexes, files), "the newest checkpoint in this folder"
    else:
        raise CheckpointNotFoundError(
            f"The 'checkpoint' file in folder {path!r} points to {latest!r}, "
            "which has no .index file: the checkpoint it names was moved or deleted, "
            "and the folder holds no other checkpoint."
        )
    _warn(
        f"The 'checkpoint' file in folder {path!r} points to {named!r}, which is not there "
        f"(written on another machine, or the folder moved); opened {how}: {opened!r}."
    )
    return opened


def _newest(prefixes: list[str], files: _Files) -> str:
    """The highest step if they are steps of one run, else the most recently written."""
    steps = [step_of(p) for p in prefixes]
    if all(steps) and len({stem for stem, _ in steps}) == 1:
        return max(zip(steps, prefixes))[1]
    if files.gfile is not None:
        return prefixes[-1]
    return max(prefixes, key=lambda p: (os.path.getmtime(p + ".index"), p))


def _saved_model_variables(path: str, files: _Files) -> str | None:
    """``<folder>/variables/variables`` when ``path`` is a SavedModel folder or its ``saved_model.pb``."""
    folder = path
    if os.path.basename(path) in _SAVED_MODEL_FILES and not files.isdir(path):
        folder = os.path.dirname(path) or "."
    elif not any(files.exists(os.path.join(folder, name)) for name in _SAVED_MODEL_FILES):
        return None
    prefix = os.path.join(folder, "variables", "variables")
    if files.exists(prefix + ".index"):
        return prefix
    raise CheckpointNotFoundError(
        f"{path!r} is a SavedModel without variables (no {prefix + '.index'!r}): it holds only constants."
    )


def _latest_in_folder(path: str, files: _Files) -> str:
    named = _from_state_file(path, files)
    if named is not None:
        return named
    indexes = _indexes(path, files)
    if len(indexes) == 1:
        return indexes[0]
    if indexes:
        steps = [step_of(p) for p in indexes]
        if all(steps) and len({stem for stem, _ in steps}) == 1:
            latest = max(zip(steps, indexes))[1]
            _warn(
                f"Folder {path!r} has no 'checkpoint' file; opened its highest step, {latest!r} "
                f"(steps here: {', '.join(str(step) for _, step in sorted(steps))})."
            )
            return latest
        raise CheckpointNotFoundError(
            f"Folder {path!r} holds {len(indexes)} checkpoints and no 'checkpoint' file "
            f"saying which is latest; pass one prefix, e.g. {indexes[-1]!r}."
        )
    raise CheckpointNotFoundError(f"Folder {path!r} contains no checkpoint (no .index file).")


def _resolve(path: str) -> str:
    files = _Files(path)
    # Some remote file systems (TF's ram://) call every prefix a folder: the index decides.
    remote_prefix = is_remote(path) and not path.endswith("/") and files.exists(path + ".index")
    saved_model = None if remote_prefix else _saved_model_variables(path, files)
    if saved_model is not None:
        return saved_model
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
    """The prefix of the checkpoint at ``path``, guarded by :mod:`ckptwidgets.sources._validate`'s checks."""
    return _validate.resolve_prefix(path, _resolve)
