"""A checkpoint held in memory: ``{key: numpy array}``.

The smallest :class:`~ckptwidgets.sources.Source`: for checkpoints built in code (a test,
a tensor computed in a notebook, a plan's result before it is written), and the example a
new format can start from. It has no ``RestoreV2`` path: restoring from it goes through
:meth:`read_many`, as for any source TensorFlow cannot read itself.

Example
-------
>>> import numpy as np
>>> import ckptwidgets
>>> ckpt = ckptwidgets.open_checkpoint(ArraySource({"w": np.zeros((2, 3), np.float32),
...                                                 "w/Adam": np.zeros((2, 3), np.float32)}))
>>> [(e.key, e.kind, e.base) for e in ckpt]
[('w', 'variable', None), ('w/Adam', 'slot', 'w')]
"""
from __future__ import annotations

import math

import numpy as np

from ._dtypes import dtype_info
from . import Record
from ._tfkeys import OBJECT_GRAPH_KEY, record

__all__ = ["ArraySource"]


class ArraySource:
    """Tensors in memory as a checkpoint source, keys named as TensorFlow names them.

    Parameters
    ----------
    tensors : dict
        ``{key: array-like}``; each value becomes a numpy array (strings: an object array of
        ``bytes``, as TensorFlow reads them). Read-only views are kept as they are, so
        ``np.broadcast_to(0.0, shape)`` describes a big tensor without allocating it.
    location : str
        What messages call the checkpoint.
    """

    format = "arrays"
    restore_prefix = None

    def __init__(self, tensors: dict, location: str = "<arrays>"):
        self.location = location
        self._tensors = {}
        for key in sorted(tensors):
            if not isinstance(key, str):
                raise TypeError(f"Keys of an ArraySource are str; got {type(key).__name__} {key!r}.")
            value = tensors[key]
            if not isinstance(value, np.ndarray):
                value = np.asarray(value)
            if value.dtype.kind in "US":
                value = np.vectorize(lambda s: s if isinstance(s, bytes) else str(s).encode(), otypes=[object])(value)
            self._tensors[key] = value
        self.object_based = OBJECT_GRAPH_KEY in self._tensors

    def records(self) -> list[Record]:
        out = []
        for key, value in self._tensors.items():
            dtype, itemsize = _dtype_of(value)
            shape = tuple(int(d) for d in value.shape)
            out.append(record(key, dtype, shape, math.prod(shape) * itemsize))
        return out

    def read(self, key: str, copy: bool = False):
        value = self._tensors[key]
        return value.copy() if copy or value.flags.writeable else value

    def read_many(self, keys, copy: bool = False):
        for key in keys:
            yield key, self.read(key, copy)

    def files(self) -> list[str]:
        return []


def _dtype_of(value: np.ndarray) -> tuple[str, int]:
    if value.dtype == object:
        return "string", 0
    return dtype_info(value.dtype)
