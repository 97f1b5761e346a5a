"""Write a :class:`~ckptwidgets.write.WritePlan` as a PyTorch state dict (``.pt``) with ``torch.save``.

Private helper of :mod:`ckptwidgets.sources.torch` (its ``write``, behind
``plan.write("out.pt")``). The file is a plain dict ``{key: tensor}`` in the plan's order,
every tensor contiguous, on the CPU, of the plan's dtype: what
``module.load_state_dict(torch.load(out, weights_only=True), strict=True)`` takes when the
keys are the module's (a BatchNorm's missing ``num_batches_tracked`` torch fills in itself).

Safety is every writer's (:mod:`ckptwidgets.sources._atomic`): everything is checked before
a byte is written (the plan's problems, its own source, dtypes torch cannot hold, an
existing output); ``torch.save`` writes a hidden temporary name in the destination folder,
which is ``fsync``-ed, read back with our reader (keys, dtypes, shapes) and compared with
what was saved byte for byte, and only then moved into place. Any failure removes the
temporary file and raises :class:`~ckptwidgets.errors.WriteError`. A TF2 object graph (a
string tensor of TensorFlow's bookkeeping) is left out and reported in ``dropped``.

``torch.save`` takes the whole dict at once: values memory-mapped from the inputs (large
tensors of every format) are handed to it as views, so memory holds the tensors that had to
be computed (casts, means, transforms) and those of inputs that are read into memory.
"""
from __future__ import annotations

import os
import time

import numpy as np

from .. import _atomic
from .._dtypes import numpy_type
from ...errors import WriteError
from . import SUFFIXES
from ._load import import_torch, to_tensor, torch_dtype

__all__ = ["write"]


def _output(out) -> str:
    path = _atomic.local_output(out)
    if not path.lower().endswith(SUFFIXES):
        raise WriteError(f"A PyTorch file's name ends with {' or '.join(map(repr, SUFFIXES))}; got {path!r}.")
    return path


def _items(plan, path: str) -> tuple[list, list]:
    """``(items to write, [(key, why left out)])``, or a WriteError naming what torch cannot hold."""
    return _atomic.tensor_items(plan, path, lambda dtype: torch_dtype(dtype) is not None, "a torch tensor")


def _value(item) -> np.ndarray:
    """The item's value, C-contiguous in native byte order (a view of a mapped input when it is one)."""
    value = np.asarray(_atomic.item_value(item))
    if tuple(value.shape) != tuple(item.shape):
        raise WriteError(f"Key {item.key!r} was read with shape {list(value.shape)}, planned {list(item.shape)}.")
    wanted = np.dtype(numpy_type(item.dtype))
    if value.dtype.newbyteorder("=") != wanted:
        raise WriteError(f"Key {item.key!r} was read as {value.dtype}, planned {item.dtype}.")
    if not value.dtype.isnative:
        value = value.astype(value.dtype.newbyteorder("="))
    return value if value.flags.c_contiguous else value.copy(order="C")  # (ascontiguousarray makes a scalar 1-d)


def _bytes(value) -> np.ndarray:
    return np.ascontiguousarray(value).reshape(-1).view(np.uint8)


def _verify(path: str, temp: str, items, values: dict) -> None:
    written = _atomic.read_back(temp, {item.key: (item.dtype, tuple(item.shape)) for item in items})
    for key, value in written.read_many(written.keys()):
        if not np.array_equal(_bytes(value), _bytes(values[key])):
            raise WriteError(f"Nothing was written to {path!r}: tensor {key!r} reads back other bytes than were "
                             f"saved to the temporary file {temp!r} (now removed). The inputs are unchanged.")
        del value


def write(plan, out, overwrite=False, state_file=False, progress=None, model=None, keep_unmapped=False, dry_run=False):
    """Write ``plan`` as the PyTorch state dict ``out``: see the module docstring (``dry_run``: refuse,
    write nothing, report what would be written)."""
    start = time.perf_counter()
    path = _output(out)
    _atomic.refuse_for_one_file(plan, path, "a PyTorch file", "Name a module's tensors with plan.rename(...).",
                                overwrite=overwrite, state_file=state_file, model=model)
    torch = import_torch(path, writing=True)
    items, dropped = _items(plan, path)
    if dry_run:
        return _atomic.would_write(path, items, list(plan.dropped) + dropped)
    total = sum(item.nbytes for item in items)
    temp = _atomic.temporary_name(path)
    written = temp + ".pt"  # ends like a PyTorch file: our reader knows it by its name
    with _atomic.ticking(total, progress) as tick, _atomic.staged(path, temp, also=(RuntimeError,)):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        values, state, done = {}, {}, 0
        for item in items:
            values[item.key] = _value(item)
            state[item.key] = to_tensor(values[item.key], item.dtype)
            done += item.nbytes
            tick(done)
        with open(written, "xb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        del state
        _verify(path, written, items, values)
        del values
        _atomic.move_into_place([(written, path)])
    return _atomic.WriteReport(path, [path], sorted(item.key for item in items), total, time.perf_counter() - start,
                               list(plan.dropped) + dropped)
