"""The few places where TensorFlow and Keras offer no public way to ask what we need.

Every access to their private attributes or modules is here, in one small module, so a
TensorFlow or Keras release that moves one breaks one function, each with a public fallback.

- ``keras_value(var)``: the ``tf.Variable`` a Keras 3 variable holds (``._value``; Keras'
  public ``.value`` reads it as a tensor, which ``Saver`` and ``assign`` cannot take).
- ``static_dims(shape)``: a ``TensorShape``'s dims as a tuple without copying (``._dims``).
- ``in_graph_mode(var)``: whether a variable lives in a ``tf.Graph`` (``._in_graph_mode``).
- ``object_paths(root)``: the object path of every variable under a trackable root, as
  ``tf.train.Checkpoint`` names them (its own ``graph_view`` traversal).
- ``is_trackable(obj)``: ``tensorflow.python.trackable.base.Trackable``, which TF does not export.
- ``save_slice_info(var)``: where a part of a partitioned variable sits in the full tensor
  (``._save_slice_info``, a ``tf.Variable.SaveSliceInfo``; TF has no public getter, so the
  fallback is its private method ``_get_save_slice_info``, and None when neither exists).
"""
from __future__ import annotations

__all__ = [
    "keras_value",
    "has_keras_value",
    "static_dims",
    "in_graph_mode",
    "object_paths",
    "is_trackable",
    "save_slice_info",
]


def has_keras_value(obj) -> bool:
    return hasattr(obj, "_value")


def keras_value(var):
    """The ``tf.Variable`` inside a Keras 3 variable, or None before the model is built."""
    return getattr(var, "_value", None)


def static_dims(shape):
    """``TensorShape`` dims as a tuple of int / None (None for an unknown rank), read once."""
    dims = getattr(shape, "_dims", shape)
    if dims is None or type(dims) is tuple:
        return dims
    return None if shape.rank is None else tuple(shape.as_list())


def in_graph_mode(var) -> bool:
    return bool(getattr(var, "_in_graph_mode", False))


def object_paths(root) -> tuple[list, dict]:
    """Objects reachable from ``root`` in breadth-first order and ``{id(obj): object path}``."""
    from tensorflow.python.checkpoint import graph_view
    from tensorflow.python.trackable import trackable_utils

    objects, paths = graph_view.ObjectGraphView(root).breadth_first_traversal()
    return objects, {id(obj): trackable_utils.object_path_to_string(paths[obj]) for obj in objects}


def is_trackable(obj) -> bool:
    from tensorflow.python.trackable.base import Trackable

    return isinstance(obj, Trackable)


def save_slice_info(var):
    """``tf.Variable.SaveSliceInfo`` of a part variable (``full_name``, ``full_shape``,
    ``var_offset``, ``var_shape``), or None for a variable that is not a slice of another."""
    try:
        return var._save_slice_info
    except AttributeError:
        pass
    try:
        return var._get_save_slice_info()
    except (AttributeError, TypeError):
        return None
