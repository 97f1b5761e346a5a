"""How TensorFlow names checkpoint keys: shared by the sources that hold TF-style keys.

Object-based (TF2 ``tf.train.Checkpoint``) keys are object paths with
``/.ATTRIBUTES/VARIABLE_VALUE`` appended to a variable's value; other ``/.ATTRIBUTES/``
entries and the ``_CHECKPOINTABLE_OBJECT_GRAPH`` are the checkpoint's own bookkeeping.

Example
-------
>>> record("net/l1/kernel/.ATTRIBUTES/VARIABLE_VALUE", "float32", (2,), 8).name
'net/l1/kernel'
>>> record("_CHECKPOINTABLE_OBJECT_GRAPH", "string", (), 0).kind
'meta'
"""
from __future__ import annotations

from . import Record

__all__ = ["VALUE_SUFFIX", "OBJECT_GRAPH_KEY", "record", "records", "name_of"]

VALUE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
_CUT = -len(VALUE_SUFFIX)


def name_of(key: str) -> tuple[str, str | None]:
    """``(name, kind)``: the key without the value suffix, and ``"meta"`` for bookkeeping entries."""
    if key.endswith(VALUE_SUFFIX):
        return key[:_CUT], None
    if key == OBJECT_GRAPH_KEY or "/.ATTRIBUTES/" in key:
        return key, "meta"
    return key, None


def record(key: str, dtype: str, shape: tuple, nbytes: int) -> Record:
    """The :class:`~ckptwidgets.sources.Record` of a TF-style key."""
    name, kind = name_of(key)
    return Record(key, name, dtype, shape, nbytes, kind)


def records(keys, infos) -> list[Record]:
    """:func:`record` of each key with its ``(dtype, shape, nbytes)``; one tight loop (10,000 keys
    open with a checkpoint), the records built with ``tuple.__new__``."""
    new, suffix, cut = tuple.__new__, VALUE_SUFFIX, _CUT
    out = []
    append = out.append
    for key, (dtype, shape, nbytes) in zip(keys, infos):
        if key.endswith(suffix):
            append(new(Record, (key, key[:cut], dtype, shape, nbytes, None, None)))
        elif key == OBJECT_GRAPH_KEY or "/.ATTRIBUTES/" in key:
            append(new(Record, (key, key, dtype, shape, nbytes, "meta", None)))
        else:
            append(new(Record, (key, key, dtype, shape, nbytes, None, None)))
    return out
