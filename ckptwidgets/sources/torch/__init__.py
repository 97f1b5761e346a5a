"""PyTorch state dicts (``.pt``, ``.pth``, ``.bin``): read and written with torch, when it is installed.

A state dict is a flat ``{name: tensor}``, what ``torch.save(module.state_dict(), path)``
writes; keys are torch's dotted names (``0.weight``, ``bn.running_var``) and a record's name
is its key. Reading is ``torch.load(path, weights_only=True, mmap=True, map_location="cpu")``
(:mod:`ckptwidgets.sources.torch._load`): no pickled code runs, and a zip file's tensors stay
in the memory-mapped file (a legacy pickle is read into memory once). Values are
``tensor.numpy()`` bit for bit (bfloat16 and float8 as ml_dtypes' types); dtypes are
TensorFlow's names, which are torch's. A value that is not a readable tensor (an ``epoch``
int, a nested optimizer dict, a quantized or sparse tensor) is left out, listed in
:attr:`TorchSource.skipped`, in ``ls``'s header and in a
:class:`~ckptwidgets.errors.CheckpointWarning`; a file holding no tensor at its top level (a
training checkpoint ``{"model": state_dict, "optimizer": ...}``), a TorchScript archive or a
pickled module is a :class:`~ckptwidgets.errors.CorruptCheckpointError` saying what is there.

torch is imported only to read or write such a file (``pip install 'ckptwidgets[torch]'``;
without it, the package's error naming that extra). :func:`detect` itself needs no torch:
``.pt`` and ``.pth`` are ours by name; any other file (a Hugging Face ``pytorch_model.bin``)
only by its bytes: a zip archive holding ``<name>/data.pkl``, or a pickle starting with
torch's legacy magic number. A ``.bin`` of anything else is left to the other formats.

Writing (:func:`write`, chosen by :func:`ckptwidgets.sources.writer_for` for an output
ending in ``.pt`` or ``.pth``): :mod:`ckptwidgets.sources.torch._write`.

Example
-------
>>> import os, tempfile, torch
>>> import ckptwidgets
>>> path = os.path.join(tempfile.mkdtemp(), "net.pt")
>>> torch.save(torch.nn.Sequential(torch.nn.Linear(3, 2)).state_dict(), path)
>>> ckpt = ckptwidgets.open_checkpoint(path)
>>> [(e.key, e.dtype, e.shape) for e in ckpt], ckpt.source.format
([('0.bias', 'float32', (2,)), ('0.weight', 'float32', (2, 3))], 'torch')
>>> out = path.replace("net.pt", "renamed.pt")
>>> renamed = ckptwidgets.plan_write(ckpt).rename(pairs={"0.weight": "fc.weight", "0.bias": "fc.bias"})
>>> renamed.write(out, progress=False).keys
['fc.bias', 'fc.weight']
"""
from __future__ import annotations

import os
import stat
import warnings

import numpy as np

from .. import Record
from .._validate import check_special, file_mode, first_line, suggest
from ...errors import CheckpointWarning, CorruptCheckpointError
from ._load import load_state_dict, signature, tf_dtype, to_numpy

__all__ = ["TorchSource", "detect", "writes", "write", "SUFFIXES"]

#: Suffixes that are a PyTorch file by name (what :func:`writes` answers yes to); a ``.bin``
#: is one only by its bytes.
SUFFIXES = (".pt", ".pth")


def _is_ours(path: str) -> bool:
    return path.lower().endswith(SUFFIXES)


def detect(path: str) -> TorchSource | None:
    """The PyTorch state dict at ``path``, or None when it is none (left to the next format).

    A path ending in ``.pt`` or ``.pth`` is one: missing, a :class:`CheckpointNotFoundError`;
    damaged or another kind of file, a :class:`CorruptCheckpointError`. Any other file is one
    when its bytes are what ``torch.save`` writes (see the module docstring).
    """
    ours = _is_ours(path)
    mode = file_mode(path, ours, "PyTorch file", _is_ours)
    if mode is None:
        return None
    if not stat.S_ISREG(mode):
        if ours and not stat.S_ISDIR(mode):
            check_special(path, "PyTorch file")
        return None
    kind = signature(path)
    if ours or kind in ("zip", "legacy", "torchscript"):
        return TorchSource(path, kind)
    return None



def writes(out, model=None) -> bool:
    """True for an output ending in ``.pt`` or ``.pth``."""
    return _is_ours(os.fsdecode(os.fspath(out)))


def write(plan, out, **options):
    """Write ``plan`` as the PyTorch state dict ``out`` (``overwrite=``, ``progress=``):
    :mod:`ckptwidgets.sources.torch._write`."""
    from ._write import write as write_file

    return write_file(plan, out, **options)


class TorchSource:
    """A PyTorch state dict file as a checkpoint source (loaded, memory-mapped, when made).

    Parameters
    ----------
    path : str
        A file ``torch.save`` wrote.
    kind : str, optional
        What its bytes are (:func:`ckptwidgets.sources.torch._load.signature`), when known.

    Attributes
    ----------
    skipped : list of (str, str)
        ``(key, why)`` of the values left out: not tensors, or tensors without a
        TensorFlow dtype.
    layout : str
        ``"zip"`` (memory-mapped) or ``"legacy"`` (a pickle, read into memory).
    """

    format = "torch"
    object_based = False
    restore_prefix = None

    def __init__(self, path: str, kind: str | None = None):
        self.location = path
        check_special(path, "PyTorch file")
        try:
            info = os.stat(path)
        except OSError as error:
            raise CorruptCheckpointError(f"Cannot read PyTorch file {path!r}: {first_line(error)}") from None
        loaded = load_state_dict(path, kind if kind is not None else signature(path))
        self._tensors, self.skipped, self.layout = loaded
        self._opened = (info.st_size, info.st_mtime_ns, info.st_ino)
        if self.skipped:
            listed = ", ".join(f"{key!r} ({why})" for key, why in self.skipped[:5])
            more = f" and {len(self.skipped) - 5} more" if len(self.skipped) > 5 else ""
            what = "value that is not a readable tensor is" if len(self.skipped) == 1 else \
                "values that are not readable tensors are"
            warnings.warn(f"{path!r}: {len(self.skipped)} {what} left out: {listed}{more}.", CheckpointWarning,
                          stacklevel=4)

    def records(self) -> list[Record]:
        out = []
        for key in sorted(self._tensors):
            tensor = self._tensors[key]
            out.append(Record(key, key, tf_dtype(tensor), tuple(tensor.shape), tensor.numel() * tensor.element_size()))
        return out

    def files(self) -> list[str]:
        return [self.location]

    def describe(self, shown: str) -> str:
        """The ``ls`` header: ``"PyTorch state dict, 3 entries"``, and what was left out."""
        text = "PyTorch state dict" + (" (legacy pickle, read into memory)" if self.layout == "legacy" else "")
        text += f", {shown}"
        if self.skipped:
            text += f", {len(self.skipped)} left out (not readable tensors): " + ", ".join(key for key, _ in self.skipped[:5])
            text += ", ..." if len(self.skipped) > 5 else ""
        return text

    def restore_code(self, plan, style: str) -> list[str]:
        """Code restoring ``plan`` with ``torch.load``, which TensorFlow cannot read
        (:func:`ckptwidgets.codegen.to_code` asks; :mod:`ckptwidgets.sources.torch._code`)."""
        from ._code import restore_code

        return restore_code(plan, style)

    def read(self, key: str, copy: bool = False):
        """The tensor ``key`` as ``tensor.numpy()`` gives it: a read-only view of the mapped
        file unless ``copy=True``."""
        try:
            tensor = self._tensors[key]
        except KeyError:
            raise KeyError(f"Key {key!r} not found in {self.location!r}.{suggest(key, self._tensors)}") from None
        try:
            info = os.stat(self.location)
        except OSError as error:
            raise CorruptCheckpointError(f"Cannot read key {key!r} from {self.location!r}: {first_line(error)}") from None
        if (info.st_size, info.st_mtime_ns, info.st_ino) != self._opened:
            # a mapped file changed under us reads other bytes, or faults when it shrank
            raise CorruptCheckpointError(f"The PyTorch file {self.location!r} changed since it was opened (key {key!r}): "
                                         "open it again.")
        value = to_numpy(tensor)
        if copy:
            return np.array(value, copy=True)
        value = value.view()
        value.flags.writeable = False  # the source's own tensor: nobody may change it through a read
        return value

    def read_many(self, keys, copy: bool = False):
        position = {key: i for i, key in enumerate(self._tensors)}  # file order
        for key in sorted(keys, key=lambda k: position.get(k, -1)):
            yield key, self.read(key, copy)
