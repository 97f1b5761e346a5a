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
- ``keras_weight_layout(obj)``: the dataset path Keras 3's ``save_weights`` gives each
  variable of a model / layer / optimizer (``layers/dense_1/vars/0``) and the ``vars``
  groups (with their ``name`` attributes) it makes: Keras computes both in its private
  ``saving_lib._save_state`` walk, which is run here once with a store that records instead
  of writing (no public API says where a variable goes); None when that walk moved.
  ``keras_weight_keys(obj)`` gives the first half (planning needs only where each variable goes).
- ``save_slice_info(var)``: where a part of a partitioned variable sits in the full tensor
  (``._save_slice_info``, a ``tf.Variable.SaveSliceInfo``; TF has no public getter, so the
  fallback is its private method ``_get_save_slice_info``, and None when neither exists).
"""
from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "keras_value",
    "has_keras_value",
    "static_dims",
    "in_graph_mode",
    "object_paths",
    "is_trackable",
    "save_slice_info",
    "keras_weight_layout",
    "KerasWeightLayout",
    "keras_weight_keys",
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


def _recording_store(base):
    """A Keras ``H5IOStore`` (Keras' walk insists on the type) that records instead of writing:
    ``make(path)`` gives a group where ``group["0"] = value`` records ``(path, "0", value)``.
    Built without ``__init__``: no file."""

    class RecordingStore(base):
        def __bool__(self):
            return True

        def make(self, path, metadata=None):
            self.groups.append((path, (metadata or {}).get("name")))
            written = self.written

            class Group(dict):
                def __setitem__(self, index, value):
                    # An optimizer hands numpy copies: keep none (memory), only where they go.
                    kept = value if hasattr(value, "path") else None
                    written.append((path, index, kept))
                    super().__setitem__(index, kept)

            return Group()

    store = object.__new__(RecordingStore)
    store.written = []
    store.groups = []
    return store


def _owner(root, path: str):
    """The object at attribute path ``path`` under ``root`` (``"optimizer"``), or None."""
    obj = root
    for name in path.split("/") if path else ():
        obj = getattr(obj, name, None)
    return obj


class KerasWeightLayout(NamedTuple):
    """Where ``obj.save_weights`` would put each variable, and the groups it would make.

    ``keys``: ``{id(keras variable): dataset path}`` (``layers/dense_1/vars/0``).
    ``groups``: ``[(path, object name)]`` of every ``vars`` group in Keras' order, empty ones
    included (``("layers/dropout", "dropout")``; ``""`` is the root).
    """

    keys: dict
    groups: list


def keras_weight_layout(obj) -> KerasWeightLayout | None:
    """The :class:`KerasWeightLayout` of ``obj`` (a Keras 3 model, layer or optimizer) from one
    run of Keras' saving walk, or None when that walk is not available.

    Layers hand Keras' store their variables; an optimizer hands it ``numpy()`` copies, so
    its entries are matched back by index to the ``variables`` of the object at that path.
    A group without a name (Keras makes it on its first value) exists only if it holds one.
    """
    try:
        from keras.src.saving import saving_lib
    except ImportError:
        return None
    store = _recording_store(saving_lib.H5IOStore)
    try:
        saving_lib._save_state(obj, weights_store=store, assets_store=None, inner_path="", visited_saveables=set())
    except (AttributeError, TypeError, ValueError):
        return None
    keys: dict[int, str] = {}
    for path, index, value in store.written:
        key = f"{path}/vars/{index}" if path else f"vars/{index}"
        if not hasattr(value, "path"):  # a copy: the variable is the owner's variables[index]
            owned = getattr(_owner(obj, path), "variables", None)
            try:
                value = owned[int(index)]
            except (TypeError, ValueError, IndexError):
                continue
        keys.setdefault(id(value), key)
    used = {path for path, _index, _value in store.written}
    seen, groups = set(), []
    for path, name in store.groups:
        if path not in seen and (name is not None or path in used):
            seen.add(path)
            groups.append((path, name))
    return KerasWeightLayout(keys, groups)


def keras_weight_keys(obj) -> dict[int, str] | None:
    """``keras_weight_layout(obj).keys``: ``{id(keras variable): dataset path}``, or None."""
    layout = keras_weight_layout(obj)
    return None if layout is None else layout.keys
