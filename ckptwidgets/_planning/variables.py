"""Turn what a user passes as "the variables" into named, described variables.

Private helper of :mod:`ckptwidgets.plan`. It accepts a list or tuple of
variables, a dict ``{name: variable}``, or a trackable root (a ``tf.Module``,
a Keras model, a ``tf.train.Checkpoint``) and returns one :class:`VarInfo` per
variable, computed once: name, static shape, base dtype, graph, and the
``tf.Variable`` that ``Saver`` and ``assign`` must be given. A ``torch.nn.Module`` is
described by :mod:`.torch_vars` (its ``state_dict`` names; torch is never imported to
recognise one). Each :class:`VarInfo` says whose it is (``framework``) and, for Keras models
and torch modules, which layer owns it (``layer``, ``layer_kind``): what cross-framework
matching pairs layers by.

A ``PartitionedVariable`` (what ``tf.compat.v1.get_variable(..., partitioner=...)``
returns) stands for its parts: one :class:`VarInfo` per part, named as TensorFlow names
the part (``"w/part_0"``; under a dict key ``K``: ``"K/part_0"``), whose ``part``
(:class:`~ckptwidgets._planning.partitions.Part`) says where it sits in the full tensor and whose
``shape`` is the full shape, the one a checkpoint key must have. A variable carrying a save
slice info on its own (``list(pv)``) is such a part too.

A plan over 10,000 variables must cost less than TensorFlow's own index read, so the
description of one variable is a handful of attribute reads: a ``tf.Variable``'s type is
recognised by a set lookup (``isinstance`` against its ABC is slower), the static shape is
read once, the dtype's base name comes from a cache, and the ``where`` of an error message is
only formatted when there is an error.

Example
-------
>>> import tensorflow as tf
>>> from ckptwidgets._planning.variables import collect
>>> infos, duplicates = collect([tf.Variable([1.0], name="v1")])
>>> infos[0].name, infos[0].shape, infos[0].dtype
('v1', (1,), 'float32')
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple

from .._tf import private as _tfprivate
from .partitions import Part
from .torch_vars import collect_torch, is_torch_module
from .._tf.quiet import import_tensorflow
from ..errors import PlanError

__all__ = ["VarInfo", "collect", "collect_by_name", "variable_name", "is_variable", "partitioned_parts", "is_keras_object",
           "keras_saved_variables", "is_torch_module"]

_OUTPUT_INDEX = re.compile(r":\d+$")


def _is_keras_variable(obj) -> bool:
    # Keras 3 variables are not tf.Variable subclasses: they hold one in `_value`.
    # Checked by module so that Keras is never imported here.
    return type(obj).__module__.startswith("keras") and hasattr(obj, "path") and _tfprivate.has_keras_value(obj)


# Types seen to be real tf.Variable subclasses (Keras' own excluded): `type(v) in` this set is
# a hash lookup, where isinstance() against tf.Variable's ABC metaclass is several times slower.
_TF_TYPES: set = set()


def _is_tf_variable(obj) -> bool:
    kind = type(obj)
    if kind in _TF_TYPES:
        return True
    tf = import_tensorflow()
    if not isinstance(obj, tf.Variable) or _is_keras_variable(obj):
        return False
    if issubclass(kind, tf.Variable) and not kind.__module__.startswith("keras"):
        _TF_TYPES.add(kind)  # a real subclass: every instance is a tf.Variable
    return True


def partitioned_parts(obj) -> list | None:
    """The part variables of a ``PartitionedVariable`` (``list(pv)``: offset order), else None.

    Recognised by type name and module (TF does not export the class in ``tf.compat.v1``).
    """
    kind = type(obj)
    if kind.__name__ != "PartitionedVariable" or not kind.__module__.startswith("tensorflow"):
        return None
    return list(obj)


def is_variable(obj) -> bool:
    """True for a ``tf.Variable`` (graph or eager, resource or reference) or a Keras 3 variable."""
    return type(obj) in _TF_TYPES or _is_tf_variable(obj) or _is_keras_variable(obj)


def variable_name(var) -> str:
    """The name a plan gives a variable: a Keras variable's ``.path``, else ``.name`` without ``:N``.

    Examples
    --------
    >>> import tensorflow as tf
    >>> variable_name(tf.Variable(1.0, name="scope/w"))
    'scope/w'
    """
    if type(var) not in _TF_TYPES and _is_keras_variable(var):
        return var.path
    name = var.name
    head, colon, index = name.rpartition(":")
    if colon and index.isdecimal():  # the common "scope/w:0", without a regex per variable
        return head
    return _OUTPUT_INDEX.sub("", name)


class VarInfo(NamedTuple):
    """One variable of a plan, described once so that matching needs no TensorFlow calls.

    A named tuple: ``tuple.__new__`` builds one in a fraction of a dataclass ``__init__``.
    """

    name: str
    variable: object  # what the user passed (for a partitioned variable: the part)
    tf_variable: object  # the tf.Variable to give Saver / assign (Keras 3: the one it holds)
    shape: tuple | None  # static shape, None for unknown dimensions; None for unknown rank;
    # for a part of a partitioned variable the full shape: what its checkpoint key must have
    dtype: str  # base dtype name: float32_ref -> float32
    graph: object | None  # tf.Graph in graph mode, None for eager variables
    alias: str | None  # object path under the trackable root given, when it differs from name
    keras: bool
    ref: bool  # a TF1 reference variable (use_resource=False)
    part: Part | None  # a part of a partitioned variable: its full name, full shape, offset, shape
    framework: str = "tf"  # "tf", "keras" or "torch": whose names, layouts and layers these are
    layer: str | None = None  # the owning layer's / module's path ("sequential/dense", "encoder.lin")
    layer_kind: str | None = None  # its class name ("Dense", "Linear"), when known


_new = tuple.__new__


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


def _unwrap(name: str, var, where, index) -> tuple:
    """``(tf_variable, keras)`` for anything but a known tf.Variable type; raises PlanError naming ``where(index)``."""
    if _is_keras_variable(var):
        tf_var = _tfprivate.keras_value(var)
        if not isinstance(tf_var, import_tensorflow().Variable):
            raise PlanError(f"{where(index)}: Keras variable {name!r} holds no value yet; build the model first.")
        return tf_var, True
    if _is_tf_variable(var):
        return var, False
    hint = ""
    if isinstance(var, import_tensorflow().Tensor):
        hint = " (a tensor, e.g. the result of reading a variable: pass the variable itself)"
    raise PlanError(_describe(var, where(index)) + hint + ".")


def _info(name: str, var, where, index=None, alias: str | None = None, full_name: str | None = None) -> VarInfo:
    """Describe any variable; ``where(index)`` names it in an error message, formatted only for one."""
    if type(var) in _TF_TYPES:
        return _described(name, var, var, False, alias, full_name)
    tf_var, keras = _unwrap(name, var, where, index)
    return _described(name, var, tf_var, keras, alias, full_name)


def _part(name: str, info, dims, full_name: str | None) -> Part:
    """The :class:`Part` of a variable from its save slice info ``info``, checked (TF builds
    them right, hand-made ones may not be)."""
    try:
        full_shape, offset, shape = (
            tuple(int(d) for d in dims) for dims in (info.full_shape, info.var_offset, info.var_shape)
        )
        fits = len(full_shape) == len(offset) == len(shape) and all(
            o >= 0 and s >= 0 and o + s <= f for f, o, s in zip(full_shape, offset, shape)
        )
    except (TypeError, ValueError):
        fits = False
    if not fits or (dims is not None and None not in dims and dims != shape):
        raise PlanError(
            f"Variable {name!r} says it is a slice of {info.full_name!r} (full shape {info.full_shape}, "
            f"offset {info.var_offset}, shape {info.var_shape}) but has shape {list(dims or [])}: "
            "its save slice info does not fit."
        )
    return Part(full_name or info.full_name, info.full_name, full_shape, offset, shape)


def _described(name: str, var, tf_var, keras: bool, alias: str | None, full_name: str | None = None) -> VarInfo:
    """The VarInfo of a checked variable. Called once per variable (10,000 in a big model),
    so each TF property is read once and nothing else is called in the common case."""
    dims = _tfprivate.static_dims(tf_var.shape)
    dtype = tf_var.dtype
    known = _DTYPE_NAMES.get(id(dtype))
    dtype = known[1] if known is not None and known[0] is dtype else _dtype_name(dtype)
    graph, ref = None, False
    if _tfprivate.in_graph_mode(tf_var):
        graph, ref = tf_var.graph, not hasattr(tf_var, "handle")
    part = None
    slice_info = _tfprivate.save_slice_info(tf_var)
    if slice_info is not None:
        part = _part(name, slice_info, dims, full_name)
        dims = part.full_shape  # what the checkpoint key must hold; the part's own is part.shape
    if keras:  # its layer: the path without the last segment (a Keras root's pass names the owner)
        return _new(VarInfo, (name, var, tf_var, dims, dtype, graph, None if alias == name else alias, keras, ref,
                              part, "keras", var.path.rpartition("/")[0] or None, None))
    return _new(VarInfo, (name, var, tf_var, dims, dtype, graph, None if alias == name else alias, keras, ref, part,
                          "tf", None, None))


def _plain_list(variables) -> dict[str, VarInfo] | None:
    """The common input in one pass: a list of tf.Variables of distinct names, ``{name: info}``.

    None at the first item it does not take (a Keras variable, not a variable, a name seen
    before): the general path then starts again and handles it (or names it in an error).
    """
    infos: dict[str, VarInfo] = {}
    for var in variables:
        if type(var) not in _TF_TYPES and not (_is_tf_variable(var) and type(var) in _TF_TYPES):
            return None
        name = var.name
        name = name[:-2] if name.endswith(":0") else variable_name(var)  # variable_name() inlined
        if name in infos:
            return None
        infos[name] = _described(name, var, var, False, None)
    return infos or None


def _object_paths(root) -> tuple[list, dict]:
    """Variables reachable from a trackable root, in traversal order, and ``{id: object path}``.

    The paths are the ones ``tf.train.Checkpoint`` writes (``l1/kernel``), escaped the same way.
    """
    objects, paths = _tfprivate.object_paths(root)
    found, seen = [], set()
    for obj in objects:
        if is_variable(obj) and id(obj) not in seen:
            seen.add(id(obj))
            found.append(obj)
    return found, {i: paths[i] for i in seen}


def is_keras_object(obj) -> bool:
    """A Keras 3 object (model, layer, optimizer), subclasses defined elsewhere included; by
    the modules of its classes, so that Keras is never imported here (tf_keras' are not)."""
    return any(kind.__module__.startswith("keras.") for kind in type(obj).__mro__)


def keras_saved_variables(obj) -> list:
    """The variables of a Keras 3 model / layer (or optimizer) that Keras' saving stores.

    A layer saves ``_trainable_variables + _non_trainable_variables`` (``save_own_variables``),
    which is what Keras' public ``weights`` gathers over the layer and its sublayers.
    ``variables`` adds the state of each ``SeedGenerator`` (a ``Dropout``'s, an ``LSTM``'s):
    Keras never saves it (not in ``save_weights``, ``.keras`` or a TF checkpoint), and
    ``load_weights`` leaves it alone, so it is no variable to map. An optimizer has no
    ``weights``: its ``variables`` are what it saves.
    """
    weights = getattr(obj, "weights", None)
    return list(obj.variables if weights is None else weights)


def _is_tf_keras_model(obj) -> bool:
    """A tf_keras (Keras 2) model or layer, by the modules of its classes (nothing imported)."""
    return any(kind.__module__.startswith("tf_keras.") for kind in type(obj).__mro__)


def _unique_names(variables) -> bool:
    names = [variable_name(var) for var in variables]
    return len(set(names)) == len(names)


def _is_trackable_root(obj) -> bool:
    return _tfprivate.is_trackable(obj) and not is_variable(obj)


def _named(variables) -> tuple[list, object]:
    """``([(name, variable, alias, full_name)], where)``: ``where(i)`` names item ``i`` in an
    error message; ``full_name`` is a partitioned variable's name for its parts, else None."""
    if isinstance(variables, Mapping):
        pairs = []
        for name, var in variables.items():
            if not isinstance(name, str):
                raise PlanError(f"Variable names must be str; got {type(name).__name__} {name!r} as a key.")
            parts = partitioned_parts(var)
            if parts is None:
                pairs.append((name, var, None, None))
            else:  # the dict key names the whole variable; its parts are numbered as TF numbers them
                pairs.extend((f"{name}/part_{j}", p, None, name) for j, p in enumerate(parts))
        return pairs, lambda i: f"variables[{pairs[i][0]!r}]"
    if isinstance(variables, (list, tuple)):
        pairs, origin = [], []
        for i, var in enumerate(variables):
            parts = partitioned_parts(var)
            if parts is not None:
                pairs.extend((variable_name(p), p, None, var.name) for p in parts)
                origin.extend([i] * len(parts))
                continue
            if not is_variable(var):
                _info("", var, "item {} of variables".format, i)  # raises the error naming the item
            pairs.append((variable_name(var), var, None, None))
            origin.append(i)
        return pairs, lambda k: f"item {origin[k]} of variables"
    if _is_trackable_root(variables):
        try:
            found, paths = _object_paths(variables)
        except Exception:  # the private traversal changed: fall back to the public variables
            found, paths = list(getattr(variables, "variables", ())), {}
        keras_root = is_keras_object(variables)
        if keras_root:
            found = keras_saved_variables(variables)  # Keras: the model's own list, named by .path
        # A tf_keras model names its variables after its layers ('conv2d_1/kernel', what a TF1
        # checkpoint of it holds and what its .h5 lists): those names, the object path as alias,
        # unless two variables share a name.
        by_name = keras_root or (_is_tf_keras_model(variables) and _unique_names(found))
        pairs, kinds = [], []
        for var in found:
            path = paths.get(id(var))
            if by_name or path is None:
                pairs.append((variable_name(var), var, path, None))
                kinds.append("a variable of the model")
            else:
                pairs.append((path, var, None, None))
                kinds.append("a variable of the module")
        return pairs, kinds.__getitem__
    if is_variable(variables):
        raise PlanError("variables must be a list, a dict or a module; wrap a single variable in a list: [v].")
    if partitioned_parts(variables) is not None:  # one partitioned variable: its parts
        return _named([variables])
    raise PlanError(
        f"variables must be a list or tuple of variables, a dict {{name: variable}} or a "
        f"tf.Module / Keras model; got {type(variables).__module__}.{type(variables).__qualname__}."
    )


def collect(variables) -> tuple[list[VarInfo], list[list[VarInfo]]]:
    """Describe every variable; return ``(infos, duplicate_groups)``.

    ``infos`` holds one entry per distinct name, in input order (the first variable of a name
    wins). ``duplicate_groups`` lists, per name given to two different variables, all of them.
    The same object repeated under the same name is kept once, silently.
    """
    infos, groups, _ = collect_by_name(variables)
    return list(infos.values()), groups


def collect_by_name(variables) -> tuple[dict[str, VarInfo], list[list[VarInfo]], bool]:
    """:func:`collect` as ``({name: info}, duplicate_groups, shared)``, what a plan keeps.

    ``shared``: one object is in ``infos`` under two names. Only a dict can do that (a list's
    or a module's names come from the objects), so only a dict's values are checked.
    """
    if type(variables) in (list, tuple):
        infos = _plain_list(variables)
        if infos is not None:
            return infos, [], False
    if is_torch_module(variables):  # before any TF check: a torch module imports no TensorFlow
        return collect_torch(variables), [], False
    pairs, where = _named(variables)
    if not pairs:
        raise PlanError("The variable list is empty: there is nothing to restore.")
    infos: dict[str, VarInfo] = {}
    groups: dict[str, list[VarInfo]] = {}
    for i, (name, var, alias, full_name) in enumerate(pairs):
        first = infos.get(name)
        if first is None:
            infos[name] = _info(name, var, where, i, alias, full_name)
        elif first.variable is not var:
            groups.setdefault(name, [first]).append(_info(name, var, where, i, alias, full_name))
    shared = isinstance(variables, Mapping) and len({id(i.variable) for i in infos.values()}) < len(infos)
    if is_keras_object(variables) and hasattr(variables, "weights"):
        infos = _with_keras_layers(variables, infos)
    return infos, list(groups.values()), shared


def _with_keras_layers(root, infos: dict) -> dict:
    """``infos`` with each Keras variable's owning layer: the longest layer path (``.path``,
    layers found through the public ``layers`` of models) its own path starts with, so that
    ``mha/query/kernel`` belongs to the ``MultiHeadAttention`` ``mha``; its class name is the
    ``layer_kind``. Variables no layer owns keep the path without the last segment."""
    layers, stack = {}, [root]
    if isinstance(getattr(root, "path", None), str) and root.path:
        layers[root.path] = root
    while stack:
        layer = stack.pop()
        for child in getattr(layer, "layers", None) or ():
            path = getattr(child, "path", None)
            if isinstance(path, str) and path:
                layers[path] = child
            stack.append(child)
    if not layers:
        return infos
    out = {}
    for name, info in infos.items():
        owner, scope = None, info.layer
        while scope and owner is None:
            owner = layers.get(scope)
            if owner is None:
                scope = scope.rpartition("/")[0]
        out[name] = info if owner is None else info._replace(layer=scope, layer_kind=type(owner).__name__)
    return out
