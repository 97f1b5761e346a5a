"""TensorFlow's tensor dtypes (the ``DataType`` enum of ``types.proto``), without TensorFlow.

Private helper of :mod:`ckptwidgets._bundle` and :mod:`ckptwidgets._tensordata`. A
checkpoint index stores each tensor's dtype as its enum number; this table gives its
name, item size and numpy type, so an index is read without importing TensorFlow (seconds
of start-up). :mod:`tests.test_tensordata` checks the table against TensorFlow's own.

Only the real tensor dtypes are here (``0 < enum < 100``): TensorFlow aborts the process
on an index entry of ``DT_INVALID`` or of a reference dtype (``enum >= 100``), so those
must read as unknown.

Example
-------
>>> BY_ENUM[14]
DType(enum=14, name='bfloat16', itemsize=2, numpy=<class 'ml_dtypes.bfloat16'>)
>>> dtype_info("float32_ref")
('float32', 4)
"""
from __future__ import annotations

from typing import NamedTuple

import ml_dtypes
import numpy as np

__all__ = ["DType", "BY_ENUM", "BY_NAME", "dtype_info"]


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


def _ml(name: str):
    # float8/int4/int2/float4 types came in later ml_dtypes releases than TF 2.16 pins.
    return getattr(ml_dtypes, name, None)


_TABLE = [
    DType(1, "float32", 4, np.float32),
    DType(2, "float64", 8, np.float64),
    DType(3, "int32", 4, np.int32),
    DType(4, "uint8", 1, np.uint8),
    DType(5, "int16", 2, np.int16),
    DType(6, "int8", 1, np.int8),
    DType(7, "string", 0, object),
    DType(8, "complex64", 8, np.complex64),
    DType(9, "int64", 8, np.int64),
    DType(10, "bool", 1, np.bool_),
    DType(11, "qint8", 1, _quantized("qint8", "i1")),
    DType(12, "quint8", 1, _quantized("quint8", "u1")),
    DType(13, "qint32", 4, _quantized("qint32", "<i4")),
    DType(14, "bfloat16", 2, ml_dtypes.bfloat16),
    DType(15, "qint16", 2, _quantized("qint16", "<i2")),
    DType(16, "quint16", 2, _quantized("quint16", "<u2")),
    DType(17, "uint16", 2, np.uint16),
    DType(18, "complex128", 16, np.complex128),
    DType(19, "float16", 2, np.float16),
    DType(20, "resource", 0, None),
    DType(21, "variant", 0, None),
    DType(22, "uint32", 4, np.uint32),
    DType(23, "uint64", 8, np.uint64),
    DType(24, "float8_e5m2", 1, _ml("float8_e5m2")),
    DType(25, "float8_e4m3fn", 1, _ml("float8_e4m3fn")),
    DType(26, "float8_e4m3fnuz", 1, _ml("float8_e4m3fnuz")),
    DType(27, "float8_e4m3b11fnuz", 1, _ml("float8_e4m3b11fnuz")),
    DType(28, "float8_e5m2fnuz", 1, _ml("float8_e5m2fnuz")),
    DType(29, "int4", 1, _ml("int4")),
    DType(30, "uint4", 1, _ml("uint4")),
    DType(31, "int2", 1, _ml("int2")),
    DType(32, "uint2", 1, _ml("uint2")),
    DType(33, "float4_e2m1fn", 1, _ml("float4_e2m1fn")),
]

BY_ENUM: dict[int, DType] = {d.enum: d for d in _TABLE}
BY_NAME: dict[str, DType] = {d.name: d for d in _TABLE}
# Names tf.as_dtype also takes.
_ALIASES = {"half": "float16", "float": "float32", "double": "float64"}
_BY_NUMPY: dict[np.dtype, DType] = {np.dtype(d.numpy): d for d in _TABLE if d.numpy is not None}


def _by_numpy(dtype: np.dtype) -> DType | None:
    if dtype.kind in "OSU":  # object, bytes and str arrays are TensorFlow strings
        return BY_NAME["string"]
    return _BY_NUMPY.get(dtype)


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
        found = BY_ENUM.get(int(dtype))
    elif isinstance(dtype, str):
        name = dtype[: -len("_ref")] if dtype.endswith("_ref") else dtype
        found = BY_NAME.get(_ALIASES.get(name, name))
    elif isinstance(dtype, np.dtype) or (isinstance(dtype, type) and issubclass(dtype, np.generic)):
        found = _by_numpy(np.dtype(dtype))
    elif isinstance(getattr(dtype, "name", None), str):  # tf.DType, without importing TF
        try:
            return dtype_info(dtype.name)
        except ValueError:
            pass
    if found is None:
        raise ValueError(f"{dtype!r} is not a TensorFlow tensor dtype")
    return found.name, found.itemsize
