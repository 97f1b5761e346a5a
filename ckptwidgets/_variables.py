"""Turn what a user passes as "the variables" into named, described variables.

Private helper of :mod:`ckptwidgets.plan`. It accepts a list or tuple of
variables, a dict ``{name: variable}``, or a trackable root (a ``tf.Module``,
a Keras model, a ``tf.train.Checkpoint``) and returns one :class:`VarInfo` per
variable, computed once: name, static shape, base dtype, graph, and the
``tf.Variable`` that ``Saver`` and ``assign`` must be given.

Example
-------
>>> import tensorflow as tf
>>> from ckptwidgets._variables import collect
>>> infos, duplicates = collect([tf.Variable([1.0], name="v1")])
>>> infos[0].name, infos[0].shape, infos[0].dtype
('v1', (1,), 'float32')
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ._quiet import import_tensorflow
from .errors import PlanError

tf = import_tensorflow()

__all__ = ["VarInfo", "collect", "variable_name", "is_variable"]

_OUTPUT_INDEX = re.compile(r":\d+$")


def _is_keras_variable(obj) -> bool:
    # Keras 3 variables are not tf.Variable subclasses: they hold one in `_value`.
    # Checked by module so that Keras is never imported here.
    return type(obj).__module__.startswith("keras") and hasattr(obj, "path") and hasattr(obj, "_value")


def is_variable(obj) -> bool:
    """True for a ``tf.Variable`` (graph or eager, resource or reference) or a Keras 3 variable."""
    return isinstance(obj, tf.Variable) or _is_keras_variable(obj)


def variable_name(var) -> str:
    """The name a plan gives a variable: a Keras variable's ``.path``, else ``.name`` without ``:N``.

    Examples
    --------
    >>> import tensorflow as tf
    >>> variable_name(tf.Variable(1.0, name="scope/w"))
    'scope/w'
    """
    if _is_keras_variable(var):
        return var.path
    name = var.name
    head, colon, index = name.rpartition(":")
    if colon and index.isdecimal():  # the common "scope/w:0", without a regex per variable
        return head
    return _OUTPUT_INDEX.sub("", name)


@dataclass(slots=True)
class VarInfo:
    """One variable of a plan, described once so that matching needs no TensorFlow calls."""

    name: str
    variable: object  # what the user passed
    tf_variable: object  # the tf.Variable to give Saver / assign (Keras 3: the one it holds)
    shape: tuple | None  # static shape, None for unknown dimensions; None for unknown rank
    dtype: str  # base dtype name: float32_ref -> float32
    graph: object | None  # tf.Graph in graph mode, None for eager variables
    alias: str | None  # object path under the trackable root given, when it differs from name
    keras: bool
    ref: bool  # a TF1 reference variable (use_resource=False)


def _describe(item, where: str) -> str:
    text = repr(item)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{where} is a {type(item).__module__}.{type(item).__qualname__} ({text}), not a variable"


# id(DType) -> (DType, base dtype name): "float32_ref" -> "float32". A DType hashes and compares
# in Python, so looking it up by id (kept alive here, so the id stays its own) is 4x cheaper.
_DTYPE_NAMES: dict = {}


def _dtype_name(dtype) -> str:
    known = _DTYPE_NAMES.get(id(dtype))
    if known is None or known[0] is not dtype:
        known = _DTYPE_NAMES[id(dtype)] = (dtype, dtype.base_dtype.name)
    return known[1]


def _info(name: str, var, where: str, alias: str | None = None) -> VarInfo:
    # Called once per variable (10,000 in a big model): each TF property is read once.
    keras = _is_keras_variable(var)
    if not keras and not isinstance(var, tf.Variable):
        hint = ""
        if isinstance(var, tf.Tensor):
            hint = " (a tensor, e.g. the result of reading a variable: pass the variable itself)"
        raise PlanError(_describe(var, where) + hint + ".")
    tf_var = getattr(var, "_value", None) if keras else var
    if keras and not isinstance(tf_var, tf.Variable):
        raise PlanError(f"{where}: Keras variable {name!r} holds no value yet; build the model first.")
    shape = tf_var.shape
    shape = None if shape.rank is None else tuple(shape.as_list())
    in_graph = bool(getattr(tf_var, "_in_graph_mode", False))
    return VarInfo(
        name,
        var,
        tf_var,
        shape,
        _dtype_name(tf_var.dtype),
        tf_var.graph if in_graph else None,
        alias if alias != name else None,
        keras,
        in_graph and not hasattr(tf_var, "handle"),
    )


def _object_paths(root) -> tuple[list, dict]:
    """Variables reachable from a trackable root, in traversal order, and their object paths.

    The paths are the ones ``tf.train.Checkpoint`` writes (``l1/kernel``), escaped the same way.
    """
    from tensorflow.python.checkpoint import graph_view  # private, but it is the checkpoint's own naming
    from tensorflow.python.trackable import trackable_utils

    objects, paths = graph_view.ObjectGraphView(root).breadth_first_traversal()
    found, names = [], {}
    for obj in objects:
        if is_variable(obj) and id(obj) not in names:
            found.append(obj)
            names[id(obj)] = trackable_utils.object_path_to_string(paths[obj])
    return found, names


def _is_trackable_root(obj) -> bool:
    from tensorflow.python.trackable.base import Trackable

    return isinstance(obj, Trackable) and not is_variable(obj)


def collect(variables) -> tuple[list[VarInfo], list[list[VarInfo]]]:
    """Describe every variable; return ``(infos, duplicate_groups)``.

    ``infos`` holds one entry per distinct name, in input order (the first variable of a name
    wins). ``duplicate_groups`` lists, per name given to two different variables, all of them.
    The same object repeated under the same name is kept once, silently.
    """
    pairs: list[tuple[str, object, str, str | None]] = []  # name, var, where, alias
    if isinstance(variables, Mapping):
        for name, var in variables.items():
            if not isinstance(name, str):
                raise PlanError(f"Variable names must be str; got {type(name).__name__} {name!r} as a key.")
            pairs.append((name, var, f"variables[{name!r}]", None))
    elif isinstance(variables, (list, tuple)):
        for i, var in enumerate(variables):
            where = f"item {i} of variables"
            if not is_variable(var):
                _info("", var, where)  # raises the error naming the item
            pairs.append((variable_name(var), var, where, None))
    elif _is_trackable_root(variables):
        try:
            found, paths = _object_paths(variables)
        except Exception:  # the private traversal changed: fall back to the public variables
            found, paths = list(getattr(variables, "variables", ())), {}
        keras_root = type(variables).__module__.startswith("keras")
        if keras_root:
            found = list(variables.variables)  # Keras: the model's own list, named by .path
        for var in found:
            path = paths.get(id(var))
            if keras_root or path is None:
                pairs.append((variable_name(var), var, "a variable of the model", path))
            else:
                pairs.append((path, var, "a variable of the module", None))
    elif is_variable(variables):
        raise PlanError("variables must be a list, a dict or a module; wrap a single variable in a list: [v].")
    else:
        raise PlanError(
            f"variables must be a list or tuple of variables, a dict {{name: variable}} or a "
            f"tf.Module / Keras model; got {type(variables).__module__}.{type(variables).__qualname__}."
        )
    if not pairs:
        raise PlanError("The variable list is empty: there is nothing to restore.")

    infos: dict[str, VarInfo] = {}
    groups: dict[str, list[VarInfo]] = {}
    for name, var, where, alias in pairs:
        first = infos.get(name)
        if first is None:
            infos[name] = _info(name, var, where, alias)
        elif first.variable is not var:
            groups.setdefault(name, [first]).append(_info(name, var, where, alias))
    return list(infos.values()), list(groups.values())
