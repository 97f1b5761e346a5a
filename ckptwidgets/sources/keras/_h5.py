"""Keras weights in HDF5, read with h5py alone: the two layouts, named and classified.

Private helper of :mod:`ckptwidgets.sources.keras`. Neither Keras nor TensorFlow is
imported (``import keras`` imports TensorFlow).

Keras 3 (``model.save_weights("m.weights.h5")``, the ``model.weights.h5`` of a ``.keras``
archive; tf_keras 2.13+ writes the same layout without the ``name`` attributes): every
object Keras saves (model, layer, optimizer, metric) has a group ``<path>/vars`` holding
its variables as datasets ``0``, ``1``... in the order of its ``save_own_variables``;
``<path>`` is the *attribute path* Keras walked to reach it (``layers/dense_1``: the second
``Dense`` in the model's ``layers`` list, whatever its name; ``blocks/dense``: the first
``Dense`` of a list attribute ``blocks``), and the ``vars`` group's attribute ``name`` is
the object's own name (``hidden``). A record's name is the chain of those names, the root
model's left out: ``hidden/vars/0``, ``inner_model/core/vars/1``; the root model's own
variables are ``<model name>/vars/0``.

The optimizer is at ``optimizer`` (a ``LossScaleOptimizer``'s inner one at
``optimizer/inner_optimizer``): its variables in order, ``iteration`` first, then
``learning_rate`` (absent with a learning-rate schedule: then ``1`` is not a scalar),
then per-variable state (EMA averages first with ``use_ema=True``, then each variable's
slots). Its ``0`` is named ``<optimizer>/iteration``, a float scalar ``1``
``<optimizer>/learning_rate`` (what Keras 3 calls them: ``adam/iteration``); both, and
every other scalar (a loss scale, its counter), are ``meta``, the rest ``slot``; with
``records(f, use_ema=True)`` the averages are ``ema`` records with their variable's key as
``base`` where :func:`ema_bases` decides it (a flat model; base None where shapes fit
several variables).
Metrics (tf_keras saves them under ``metrics``) are ``meta``.

Legacy (Keras 2 ``save_weights("m.h5")`` and ``model.save("m.h5")``, Keras 3's
``model.save("m.h5")``): the root (or its ``model_weights`` group) lists its layers in the
attribute ``layer_names``, each layer group its datasets in ``weight_names``
(``hidden/kernel:0``; long lists are split as ``weight_names0``, ``weight_names1``...); a
record's name is the weight name without ``:0``: the variable's name. ``optimizer_weights``
(a whole saved model) lists the optimizer's: scalars ``meta``, the rest ``slot``.

Files Keras refuses to load (soft or external links, external or virtual datasets: they
read other files) are refused here too.

Example
-------
>>> import io, h5py, numpy as np
>>> buffer = io.BytesIO()
>>> with h5py.File(buffer, "w") as f:  # Keras 3's layout for one Dense(2, name="out")
...     f.create_group("vars").attrs["name"] = "model"
...     dense = f.create_group("layers/dense/vars")
...     dense.attrs["name"] = "out"
...     dense["0"], dense["1"] = np.ones((3, 2), np.float32), np.zeros(2, np.float32)
>>> with h5py.File(buffer, "r") as f:
...     layout, found = records(f)
...     print(layout, [(r.key, r.name, r.shape) for r in found], value(dataset(f, "layers/dense/vars/1")))
keras3 [('layers/dense/vars/0', 'out/vars/0', (3, 2)), ('layers/dense/vars/1', 'out/vars/1', (2,))] [0. 0.]
"""
from __future__ import annotations

import math
import re

import h5py
import numpy as np

from .._dtypes import dtype_info, numpy_type
from .. import Record

__all__ = ["KERAS3", "LEGACY", "Unreadable", "records", "dataset", "value", "describe", "ema_bases", "list_attribute"]

KERAS3, LEGACY = "keras3", "legacy"

# Keras' own guard against "shape bombs": a dataset declaring far more than it stores.
_BOMB_FLOOR = 1 << 32
_BOMB_EXPANSION = 1000
_OUTPUT_INDEX = re.compile(r":\d+$")
_METRICS = ("metrics", "compile_metrics")


class Unreadable(Exception):
    """The file is HDF5 but not Keras weights, or holds what Keras refuses; the message says which."""


def records(f, use_ema: bool = False, counters=None) -> tuple[str, tuple]:
    """``(layout, records sorted by key)`` of an open ``h5py.File``; :class:`Unreadable` if neither layout.

    ``use_ema``: the optimizer kept ``use_ema=True`` averages (the file cannot say it; a
    ``.keras`` archive's config does): they are found by :func:`ema_bases` and become
    ``ema`` records with their variable's key as ``base``, when that is unambiguous.
    ``counters``: how many of the optimizer's first variables are counters (2, or 1 with a
    learning-rate schedule), when known.
    """
    if _group(f, "vars") is not None or _group(f, "layers") is not None:
        layout, items = KERAS3, _keras3(f)
        bases = ema_bases(f, counters) if use_ema else None
        if bases:
            items = [_average(item, bases[item.key]) if item.key in bases else item for item in items]
    else:
        weights = _group(f, "model_weights")
        root = weights if weights is not None and _has_list(weights, "layer_names") else f
        if not _has_list(root, "layer_names"):
            raise Unreadable(
                "it is an HDF5 file but not Keras weights: no 'vars' or 'layers' group (Keras 3) and no "
                "'layer_names' attribute (Keras 2 .h5)"
            )
        layout, items = LEGACY, _legacy(f, root)
    return layout, tuple(sorted(_unique(items)))


def dataset(f, key: str):
    """The dataset at ``key``, through hard links only, stored in this file."""
    node = f
    for part in key.split("/"):
        node = _child(node, part, key)
        if node is None:
            raise Unreadable(f"it has no dataset {key!r}")
    if not isinstance(node, h5py.Dataset):
        raise Unreadable(f"{key!r} is a group, not a dataset")
    return _here(node, key)


def _here(node, key: str):
    """``node`` unless its data is in other files (external or virtual: Keras refuses those)."""
    if node.external or node.is_virtual:
        raise Unreadable(f"dataset {key!r} keeps its data in other files (Keras refuses to load it)")
    return node


def value(ds) -> np.ndarray:
    """The array Keras loads from dataset ``ds`` (bfloat16 from its opaque bytes, strings as bytes)."""
    name, _itemsize = describe(ds)
    declared = math.prod(ds.shape or ()) * ds.dtype.itemsize
    if declared > _BOMB_FLOOR and declared > _BOMB_EXPANSION * ds.id.get_storage_size():
        raise Unreadable(
            f"dataset {ds.name.lstrip('/')!r} declares {declared} bytes but stores {ds.id.get_storage_size()}"
        )
    array = np.asarray(ds[()])
    if ds.dtype.kind == "V":  # what Keras writes for bfloat16: the raw bytes, named in an attribute
        return array.view(numpy_type(name))
    if array.dtype.kind in "SU":  # fixed-length strings: bytes objects, as TensorFlow reads strings
        return np.vectorize(lambda s: s if isinstance(s, bytes) else str(s).encode(), otypes=[object])(array)
    return array


def describe(ds) -> tuple[str, int]:
    """``(TensorFlow dtype name, item size)`` of a dataset; :class:`Unreadable` for other dtypes."""
    dtype = ds.dtype
    if dtype.kind == "V" and dtype.fields is None:
        named = _text(ds.attrs.get("dtype"))
        try:
            name, itemsize = dtype_info(named or "")
        except ValueError:
            name = itemsize = None
        if itemsize != dtype.itemsize:
            raise Unreadable(f"dataset {ds.name.lstrip('/')!r} holds opaque {dtype.itemsize}-byte values of no known dtype")
        return name, itemsize
    if h5py.check_string_dtype(dtype) is not None or dtype.kind in "SU":
        return "string", 0
    try:
        return dtype_info(dtype)
    except ValueError:
        raise Unreadable(f"dataset {ds.name.lstrip('/')!r} has dtype {dtype}, which is no tensor dtype") from None


# --- Keras 3 ---------------------------------------------------------------------------


def _keras3(f) -> list[Record]:
    out: list[Record] = []

    def walk(group, path: str, chain: tuple, context: str | None):
        own = _group(group, "vars")
        if own is not None:
            label = _text(own.attrs.get("name")) or path.rpartition("/")[2]
            if path:
                chain = chain + (label,)
            _own_variables(own, f"{path}/vars" if path else "vars", "/".join(chain) if chain else label, context, out)
        for child in sorted(group):
            if child == "vars":
                continue
            node = _child(group, child, f"{path}/{child}" if path else child)
            if isinstance(node, h5py.Group):
                top = path.partition("/")[0] or child
                kind = "optimizer" if top == "optimizer" else "meta" if top in _METRICS else None
                walk(node, f"{path}/{child}" if path else child, chain, kind)

    walk(f, "", (), None)
    return out


def _own_variables(group, path: str, owner: str, context: str | None, out: list, under: str = "vars") -> None:
    """One object's ``vars`` group: ``<owner>/vars/<i>``, an optimizer's first two by their names."""
    for item in sorted(group):
        key = f"{path}/{item}"
        node = _child(group, item, key)
        if isinstance(node, h5py.Group):  # a custom save_own_variables may nest: keep the path
            _own_variables(node, key, owner, context, out, f"{under}/{item}")
            continue
        _here(node, key)
        shape, (dtype, itemsize) = tuple(int(d) for d in node.shape or ()), describe(node)
        name, kind = f"{owner}/{under}/{item}" if owner else f"{under}/{item}", None
        if context == "meta":
            kind = "meta"
        elif context == "optimizer":
            scalar, top = shape == (), under == "vars"
            kind = "meta" if scalar else "slot"
            if top and item == "0" and scalar and node.dtype.kind in "iu":
                name = f"{owner}/iteration"
            elif top and item == "1" and scalar and node.dtype.kind == "f":
                name = f"{owner}/learning_rate"
        out.append(Record(key, name, dtype, shape, math.prod(shape) * itemsize, kind))


def _average(item: Record, base: str) -> Record:
    # By index, as the other state: "adam/learning_rate" was a guess a schedule can make wrong.
    owner, index = item.name.rpartition("/")[0], item.key.rpartition("/")[2]
    name = item.name if item.name.endswith(f"/vars/{index}") else f"{owner}/vars/{index}"
    return item._replace(name=name, kind="ema", base=base)


def ema_bases(f, counters=None) -> dict[str, str] | None:
    """``{average key: variable key}`` of a Keras 3 file whose optimizer had ``use_ema=True``,
    or None when the file's structure does not decide it (:func:`ckptwidgets.sources.keras._ema.from_layout`:
    a flat model only, the layers in the order Keras wrote them)."""
    from ._ema import from_layout

    inner = _group(f, "optimizer")
    if inner is not None and _group(inner, "inner_optimizer") is not None:  # a LossScaleOptimizer
        inner, path = _group(inner, "inner_optimizer"), "optimizer/inner_optimizer/vars"
    else:
        path = "optimizer/vars"
    optimizer = _group(inner, "vars") if inner is not None else None
    layers = _flat_layers(f)
    if optimizer is None or layers is None:
        return None
    shapes = _indexed_shapes(optimizer)
    if shapes is None:
        return None
    if counters is None:
        second = optimizer.get("1") if len(shapes) > 1 else None
        counters = (2, 1) if second is not None and shapes[1] == () and second.dtype.kind == "f" else (1,)
    elif isinstance(counters, int):
        counters = (counters,)
    return from_layout(layers, path, shapes, tuple(counters))


def _indexed_shapes(group) -> list | None:
    """Shapes of datasets ``0``..``N-1`` of a ``vars`` group, or None when it holds anything else."""
    names = list(group)
    if sorted(names) != sorted(str(i) for i in range(len(names))):
        return None
    out = []
    for i in range(len(names)):
        node = _child(group, str(i), f"{group.name}/{i}")
        if not isinstance(node, h5py.Dataset):
            return None
        out.append(tuple(int(d) for d in node.shape or ()))
    return out


def _flat_layers(f) -> list | None:
    """``[(vars path, shapes)]`` of a flat model's objects in the order Keras wrote them (their
    data offsets), or None when the model is not flat: something at the root besides
    ``layers``, ``vars``, the optimizer and metrics, or a layer holding more than ``vars``
    (the order Keras saves those in is not the order it trains them in)."""
    found = []
    for name in f:
        if name in ("vars", "optimizer", *_METRICS):
            continue
        if name != "layers":
            return None
        layers = _group(f, "layers")
        if layers is None:
            return None
        for layer in layers:
            group = _group(layers, layer)
            if group is None or set(group) - {"vars"}:
                return None
            if "vars" in group:
                found.append((f"layers/{layer}/vars", _group(group, "vars")))
    if _group(f, "vars") is not None:
        found.append(("vars", _group(f, "vars")))
    ordered = []
    for path, group in found:
        shapes = _indexed_shapes(group) if group is not None else None
        if shapes is None:
            return None
        if not shapes:
            continue
        offsets = [group[str(i)].id.get_offset() for i in range(len(shapes))]
        if None in offsets:  # an empty or compact dataset: where it was written is unknown
            return None
        ordered.append((min(offsets), path, shapes))
    return [(path, shapes) for _, path, shapes in sorted(ordered)]


# --- Keras 2 (legacy .h5) ----------------------------------------------------------------


def _legacy(f, root) -> list[Record]:
    prefix = "" if root is f else root.name.lstrip("/") + "/"
    out: list[Record] = []
    layers = list_attribute(root, "layer_names")
    if _group(root, "top_level_model_weights") is not None:  # the model's own weights (Keras 2.x)
        layers.append("top_level_model_weights")
    for layer in layers:
        group = _group(root, layer)
        if group is None:
            raise Unreadable(f"its 'layer_names' lists {layer!r}, which has no group")
        _listed(f, group, prefix + layer + "/", None, out)
    optimizer = _group(f, "optimizer_weights")
    if optimizer is not None and _has_list(optimizer, "weight_names"):
        _listed(f, optimizer, "optimizer_weights/", "optimizer", out)
    return out


def _listed(f, group, prefix: str, context: str | None, out: list) -> None:
    for weight in list_attribute(group, "weight_names"):
        key = prefix + weight
        node = dataset(f, key)
        shape, (dtype, itemsize) = tuple(int(d) for d in node.shape or ()), describe(node)
        kind = None if context is None else "meta" if shape == () else "slot"
        out.append(Record(key, _OUTPUT_INDEX.sub("", weight), dtype, shape, math.prod(shape) * itemsize, kind))


def _has_list(group, name: str) -> bool:
    return name in group.attrs or f"{name}0" in group.attrs


def list_attribute(group, name: str) -> list[str]:
    """A Keras list attribute (``layer_names``, ``weight_names``) as str, joined from ``name0``,
    ``name1``... when Keras split it (HDF5's 64 KiB header limit); empty items left out."""
    if name in group.attrs:
        parts = [group.attrs[name]]
    else:
        parts, n = [], 0
        while f"{name}{n}" in group.attrs:
            parts.append(group.attrs[f"{name}{n}"])
            n += 1
    return [_text(item) for part in parts for item in np.atleast_1d(part) if _text(item)]


# --- shared -----------------------------------------------------------------------------


def _child(group, name: str, where: str):
    """``group[name]`` through a hard link, None when absent; links Keras refuses are Unreadable."""
    link = group.get(name, default=None, getlink=True)
    if link is None:
        return None
    if not isinstance(link, h5py.HardLink):
        raise Unreadable(f"{where!r} is a {type(link).__name__} (Keras refuses to load files with links)")
    return group[name]


def _group(group, name: str):
    node = _child(group, name, name)
    return node if isinstance(node, h5py.Group) else None


def _text(raw) -> str:
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "replace")
    return raw if isinstance(raw, str) else ""


def _unique(items: list[Record]) -> list[Record]:
    """Records whose names repeat (two layers of one name in different models) are named by key."""
    seen: dict[str, int] = {}
    for item in items:
        seen[item.name] = seen.get(item.name, 0) + 1
    return [item if seen[item.name] == 1 else item._replace(name=item.key) for item in items]
