"""TensorFlow's tensor dtypes (the ``DataType`` enum of ``types.proto``), without TensorFlow.

Private helper of :mod:`ckptwidgets.sources.bundle._index` and :mod:`ckptwidgets.sources.bundle._tensordata`. A
checkpoint index stores each tensor's dtype as its enum number; this table gives its
name, item size and numpy type, so an index is read without importing TensorFlow (seconds
of start-up). :mod:`tests.test_tensordata` checks the table against TensorFlow's own.

Only the real tensor dtypes are here (``0 < enum < 100``): TensorFlow aborts the process
on an index entry of ``DT_INVALID`` or of a reference dtype (``enum >= 100``), so those
must read as unknown.

``ml_dtypes`` (bfloat16, float8, int4...) takes longer to import than numpy itself, so
names and sizes (:func:`dtype_info`) never need it; it is imported when a numpy type of
its is asked for (:func:`numpy_type`, or :data:`BY_ENUM` / :data:`BY_NAME`: mappings
that build the full table on first use).

Example
-------
>>> dtype_info(14), dtype_info("float32_ref")
(('bfloat16', 2), ('float32', 4))
>>> BY_ENUM[14]
DType(enum=14, name='bfloat16', itemsize=2, numpy=<class 'ml_dtypes.bfloat16'>)
"""
from __future__ import annotations

import functools
import sys
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

__all__ = ["DType", "BY_ENUM", "BY_NAME", "dtype_info", "numpy_type"]


class DType(NamedTuple):
    """One TensorFlow dtype.

    ``itemsize`` is 0 for ``string``, ``resource`` and ``variant``, whose size is not fixed.
    ``numpy`` is what ``tf.as_dtype(enum).as_numpy_dtype`` gives (a numpy scalar type, a
    structured dtype for the quantized ones, ``object`` for strings), None for
    ``resource`` and ``variant``, and None for a dtype the installed ml_dtypes lacks.
    """

    enum: int
    name: str
    itemsize: int
    numpy: object | None


def _quantized(name: str, base: str) -> np.dtype:
    # TensorFlow's numpy stand-in for a quantized dtype: one named field of the base type.
    return np.dtype([(name, base)])


_ML = "ml_dtypes"  # the numpy type is ml_dtypes.<name>, looked up when first needed

# enum, name, itemsize, numpy type
_TABLE = [
    (1, "float32", 4, np.float32),
    (2, "float64", 8, np.float64),
    (3, "int32", 4, np.int32),
    (4, "uint8", 1, np.uint8),
    (5, "int16", 2, np.int16),
    (6, "int8", 1, np.int8),
    (7, "string", 0, object),
    (8, "complex64", 8, np.complex64),
    (9, "int64", 8, np.int64),
    (10, "bool", 1, np.bool_),
    (11, "qint8", 1, _quantized("qint8", "i1")),
    (12, "quint8", 1, _quantized("quint8", "u1")),
    (13, "qint32", 4, _quantized("qint32", "<i4")),
    (14, "bfloat16", 2, _ML),
    (15, "qint16", 2, _quantized("qint16", "<i2")),
    (16, "quint16", 2, _quantized("quint16", "<u2")),
    (17, "uint16", 2, np.uint16),
    (18, "complex128", 16, np.complex128),
    (19, "float16", 2, np.float16),
    (20, "resource", 0, None),
    (21, "variant", 0, None),
    (22, "uint32", 4, np.uint32),
    (23, "uint64", 8, np.uint64),
    (24, "float8_e5m2", 1, _ML),
    (25, "float8_e4m3fn", 1, _ML),
    (26, "float8_e4m3fnuz", 1, _ML),
    (27, "float8_e4m3b11fnuz", 1, _ML),
    (28, "float8_e5m2fnuz", 1, _ML),
    (29, "int4", 1, _ML),
    (30, "uint4", 1, _ML),
    (31, "int2", 1, _ML),
    (32, "uint2", 1, _ML),
    (33, "float4_e2m1fn", 1, _ML),
]

_INFO_BY_ENUM = {enum: (name, size) for enum, name, size, _ in _TABLE}
_INFO_BY_NAME = {name: (name, size) for _, name, size, _ in _TABLE}
_NUMPY = {name: numpy for _, name, _, numpy in _TABLE}
# Names tf.as_dtype also takes.
_ALIASES = {"half": "float16", "float": "float32", "double": "float64"}
# numpy dtype -> TF name, for the types numpy itself has (ml_dtypes ones: see _by_numpy).
_BY_NUMPY = {np.dtype(numpy): name for name, numpy in _NUMPY.items() if numpy is not None and numpy is not _ML}


def numpy_type(name: str):
    """What ``tf.as_dtype(name).as_numpy_dtype`` gives (see :class:`DType`); KeyError if unknown."""
    numpy = _NUMPY[name]
    if numpy is _ML:
        import ml_dtypes

        # float8/int4/int2/float4 types came in later ml_dtypes releases than TF 2.16 pins.
        return getattr(ml_dtypes, name, None)
    return numpy


@functools.cache
def _dtypes() -> tuple[DType, ...]:
    return tuple(DType(enum, name, size, numpy_type(name)) for enum, name, size, _ in _TABLE)


class _Table(Mapping):
    """``BY_ENUM`` / ``BY_NAME``: built on first use, as their ml_dtypes types import ml_dtypes."""

    def __init__(self, field: str):
        self._field = field

    @functools.cached_property
    def _dict(self) -> dict:
        return {getattr(d, self._field): d for d in _dtypes()}

    def __getitem__(self, key):
        return self._dict[key]

    def __iter__(self):
        return iter(self._dict)

    def __len__(self) -> int:
        return len(_TABLE)

    def __repr__(self) -> str:
        return repr(self._dict)


BY_ENUM: Mapping[int, DType] = _Table("enum")
BY_NAME: Mapping[str, DType] = _Table("name")


def _by_numpy(dtype: np.dtype) -> str | None:
    if dtype.kind in "OSU":  # object, bytes and str arrays are TensorFlow strings
        return "string"
    found = _BY_NUMPY.get(dtype)
    if found is None and "ml_dtypes" in sys.modules:  # (without it, no dtype can be one of its)
        found = next((d.name for d in _dtypes() if d.numpy is not None and np.dtype(d.numpy) == dtype), None)
    return found


def dtype_info(dtype) -> tuple[str, int]:
    """``(TensorFlow dtype name, item size)`` of a dtype however it is given.

    ``dtype`` is an enum number, a TensorFlow dtype name (a ``_ref`` name gives its base
    dtype), a numpy dtype or scalar type, or anything with a ``.name`` such as a
    ``tf.DType``. Raises ``ValueError`` naming ``dtype`` when it is none of the table's.

    >>> dtype_info(9), dtype_info(np.float16), dtype_info("string")
    (('int64', 8), ('float16', 2), ('string', 0))
    """
    found = None
    if isinstance(dtype, (int, np.integer)) and not isinstance(dtype, bool):
        found = _INFO_BY_ENUM.get(int(dtype))
    elif isinstance(dtype, str):
        name = dtype[: -len("_ref")] if dtype.endswith("_ref") else dtype
        found = _INFO_BY_NAME.get(_ALIASES.get(name, name))
    elif isinstance(dtype, np.dtype) or (isinstance(dtype, type) and issubclass(dtype, np.generic)):
        found = _INFO_BY_NAME.get(_by_numpy(np.dtype(dtype)))
    elif isinstance(getattr(dtype, "name", None), str):  # tf.DType, without importing TF
        try:
            return dtype_info(dtype.name)
        except ValueError:
            pass
    if found is None:
        raise ValueError(f"{dtype!r} is not a TensorFlow tensor dtype")
    return found
