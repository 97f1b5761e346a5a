"""Write a :class:`~ckptwidgets.write.WritePlan` as a Keras 3 ``.weights.h5`` for one model.

Private helper of :mod:`ckptwidgets.sources.keras` (its ``write``, behind
``plan.write("out.weights.h5", model=m)``); ``m`` is
any Keras 3 model or layer (``isinstance`` of ``keras.layers.Layer``: a user's ``class
Net(keras.Model)`` defined anywhere).
The plan's keys are the model's variable names as :func:`ckptwidgets.plan_restore` names
them (a Keras variable's ``.path``: ``net/hidden/kernel``), which is what
:func:`~ckptwidgets.write.from_plan` produces. The file is laid out as Keras'
``model.save_weights`` lays it out, so ``model.load_weights`` takes it:

- every ``vars`` group Keras makes, empty ones included (an ``InputLayer``'s, a
  ``Dropout``'s), at the attribute path Keras walks (``layers/dense_1``), with the object's
  name as its ``name`` attribute (:func:`ckptwidgets._tf.private.keras_weight_layout`);
- every dataset Keras writes (``layers/dense_1/vars/0``; where each variable goes comes
  from the same walk of Keras' own): a variable the
  plan maps takes the checkpoint's value; a model variable it leaves unmapped is refused
  (named) unless ``keep_unmapped=True``, which writes the model's current value; a built
  optimizer's state, which is no model variable and which no plan maps, is written as the
  model's optimizer holds it (so ``load_weights`` restores it instead of warning and
  skipping it); ``bfloat16`` as Keras stores it (opaque bytes, a ``dtype`` attribute).

Safety is every writer's (:mod:`ckptwidgets.sources._atomic`): everything is checked
before a byte is written (shapes, dtypes, unmapped variables, an existing output); the
file is written to a hidden temporary name in the destination folder one tensor at a
time (memory stays near the largest tensor: sources are memory-mapped and each value is
dropped once written), read back through :class:`ckptwidgets.sources.keras.KerasSource`
(keys, dtypes, shapes, and a crc32 of every value's bytes against what was written), and
only then moved into place. Any failure removes the temporary file and raises
:class:`~ckptwidgets.errors.WriteError`.

Example
-------
>>> import os, tempfile, numpy as np                                      # doctest: +SKIP
>>> import keras, ckptwidgets                                             # doctest: +SKIP
>>> from ckptwidgets.sources.arrays import ArraySource                    # doctest: +SKIP
>>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="hidden")], name="net")  # doctest: +SKIP
>>> source = ArraySource({"net/hidden/kernel": np.ones((3, 2), np.float32),
...                       "net/hidden/bias": np.zeros(2, np.float32)})  # doctest: +SKIP
>>> plan = ckptwidgets.plan_restore(source, model)                        # doctest: +SKIP
>>> out = os.path.join(tempfile.mkdtemp(), "net.weights.h5")              # doctest: +SKIP
>>> report = ckptwidgets.from_plan(plan).write(out, model=model, progress=False)  # doctest: +SKIP
>>> report.keys                                                          # doctest: +SKIP
['layers/dense/vars/0', 'layers/dense/vars/1']
>>> model.load_weights(out)                                               # doctest: +SKIP
"""
from __future__ import annotations

import os
import sys
import time
import zlib
from dataclasses import dataclass, field, replace

import numpy as np

from ..._text.format import count_of, format_shape
from . import WEIGHTS_SUFFIX
from .. import _atomic
from .._atomic import WriteReport
from .._dtypes import numpy_type
from ...errors import WriteError

__all__ = ["write", "write_weights", "KerasWriteReport", "SUFFIX"]

#: What ``model.load_weights`` needs a weights file's name to end with.
SUFFIX = WEIGHTS_SUFFIX


@dataclass
class KerasWriteReport(WriteReport):
    """What :meth:`WritePlan.write` wrote to a ``.weights.h5`` (a :class:`WriteReport`; ``prefix``
    is the file).

    Attributes
    ----------
    placed : list of (str, str)
        ``(variable name, dataset key)`` of every variable written from the plan.
    kept : list of (str, str)
        ``(variable name, dataset key)`` written with the model's current value: unmapped
        variables (``keep_unmapped=True``) and the optimizer's state.
    """

    placed: list = field(default_factory=list)
    kept: list = field(default_factory=list)

    def __str__(self) -> str:
        text = super().__str__()
        return text + (f"; {len(self.kept)} kept as the model holds them" if self.kept else "")


class _Slot:
    """One dataset of the layout: its key, the variable, its name, and where the value comes from."""

    __slots__ = ("key", "variable", "name", "shape", "dtype", "item", "model_variable")

    def __init__(self, key, variable, name, shape, dtype, model_variable):
        self.key, self.variable, self.name = key, variable, name
        self.shape, self.dtype, self.model_variable = shape, dtype, model_variable
        self.item = None


def _layout(model, path: str) -> tuple[list, list[_Slot], set]:
    """``(groups, slots, names of variables Keras lists but never saves)`` of ``model``'s
    weights file, or a WriteError."""
    from ..._tf import private as _tfprivate
    from ..._planning.variables import collect, variable_name

    if not _is_keras3_layer(model):
        raise WriteError(
            f"Nothing was written to {path!r}: model= must be a Keras 3 model or layer (its weights file's layout is "
            f"Keras'); got {type(model).__module__}.{type(model).__qualname__}."
        )
    if not getattr(model, "built", False):
        raise WriteError(f"Nothing was written to {path!r}: the model is not built; call it on data or build() it first.")
    layout = _tfprivate.keras_weight_layout(model)
    if layout is None:
        raise WriteError(
            f"Nothing was written to {path!r}: this Keras version's saving walk is not one ckptwidgets knows; "
            "restore the plan into the model and call model.save_weights instead."
        )
    infos, duplicates = collect(model)
    if duplicates:
        names = sorted({group[0].name for group in duplicates})
        raise WriteError(f"Nothing was written to {path!r}: several variables of the model share the names {names}.")
    by_id = {id(info.variable): info for info in infos}
    optimizer = getattr(model, "optimizer", None)
    others = {id(v): v for v in getattr(optimizer, "variables", None) or ()}
    slots = []
    for var_id, key in layout.keys.items():
        info = by_id.get(var_id)
        if info is not None:
            slots.append(_Slot(key, info.variable, info.name, tuple(info.shape or ()), info.dtype, True))
        elif var_id in others:
            var = others[var_id]
            slots.append(_Slot(key, var, variable_name(var), tuple(var.shape), _dtype_name(var.dtype), False))
        else:  # Keras saves a variable neither the model nor its optimizer lists: a walk we do not know
            raise WriteError(f"Nothing was written to {path!r}: Keras saves {key!r}, which is no variable of the model.")
    # What Keras lists but never saves (a SeedGenerator's state): a plan may still map it.
    unsaved = {variable_name(v) for v in getattr(model, "variables", ())} - {info.name for info in infos}
    return layout.groups, slots, unsaved


def _is_keras3_layer(model) -> bool:
    """A Keras 3 model or layer, whatever module defines its class (``__main__.Net(keras.Model)``).

    By ``isinstance``; Keras is not imported for it: an object of a Keras class has
    imported Keras already, so without ``keras`` in ``sys.modules`` it is none.
    """
    keras = sys.modules.get("keras")
    layer = getattr(getattr(keras, "layers", None), "Layer", None)
    return isinstance(layer, type) and isinstance(model, layer)


def _dtype_name(dtype) -> str:
    return getattr(dtype, "name", None) or str(dtype)


def _place(plan, slots: list[_Slot], unsaved: set, path: str, keep_unmapped: bool) -> list:
    """Give each slot its plan item; the problems (named) and the items Keras has no place for."""
    items = {item.key: item for item in plan.items}
    problems = []
    for slot in slots:
        item = items.pop(slot.name, None)
        if item is None:
            if slot.model_variable and not keep_unmapped:
                problems.append(
                    f"variable {slot.name!r} ({slot.key!r} in the file) is not mapped by the plan: map it, or pass "
                    "keep_unmapped=True to write the model's current value"
                )
            continue
        ckpt, key = item.sources[0]
        if tuple(item.shape) != slot.shape or item.dtype != slot.dtype:
            problems.append(
                f"variable {slot.name!r} ({slot.key!r} in the file) is {slot.dtype} {format_shape(slot.shape)} in the "
                f"model, but key {key!r} of {ckpt.prefix!r} gives {item.dtype} {format_shape(item.shape)}"
            )
        slot.item = item
    dropped = []
    for name, item in items.items():
        if name in unsaved:  # a seed generator's state: Keras does not save it
            dropped.append((name, "Keras' weights file has no place for this variable (save_weights skips it)"))
        else:
            problems.append(f"key {name!r} of the plan names no variable of the model")
    if problems:
        raise WriteError(
            f"Nothing was written to {path!r}: {count_of(len(problems), 'problem')}:\n" + "\n".join(f"  - {p}" for p in problems)
        )
    return dropped


def _value(slot: _Slot) -> np.ndarray:
    if slot.item is not None:
        return np.asarray(_atomic.item_value(slot.item))
    return np.asarray(slot.variable.numpy())


def _crc(value: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(value).reshape(-1).view(np.uint8))


def _write(temp: str, groups: list, slots: list[_Slot], tick) -> dict:
    import h5py

    crcs, done = {}, 0
    with h5py.File(temp, "w") as f:
        for group_path, name in groups:
            group = f.require_group(f"{group_path}/vars" if group_path else "vars")
            if name is not None:
                group.attrs["name"] = name
        for slot in slots:
            value = _value(slot)
            if slot.dtype == "bfloat16":  # as Keras' H5IOStore stores it: opaque bytes, named
                f.create_dataset(slot.key, data=value).attrs["dtype"] = "bfloat16"
            else:
                f.create_dataset(slot.key, data=value)
            crcs[slot.key] = _crc(value)
            done += value.nbytes
            del value  # one tensor at a time
            tick(done)
    return crcs


def _verify(temp: str, slots: list[_Slot], crcs: dict) -> None:
    written = _atomic.read_back(temp, {slot.key: (slot.dtype, slot.shape) for slot in slots})
    for entry in written.entries:
        if _crc(written.read(entry.key)) != crcs[entry.key]:
            raise WriteError(f"Dataset {entry.key!r} reads back other bytes than were written.")


def write(plan, out, model=None, keep_unmapped=False, overwrite=False, state_file=False, progress=None, dry_run=False):
    """Write ``plan`` as ``model``'s Keras 3 weights file ``out``: see the module docstring (``dry_run``:
    refuse, write nothing, report what would be written)."""
    path = os.fsdecode(os.fspath(out))
    _atomic.refuse_own_source(plan, path, [path])
    if model is None:
        raise WriteError(
            f"Writing the Keras weights file {path!r} needs the model whose layout it takes: "
            "plan.write(out, model=model)."
        )
    if state_file:
        raise WriteError("state_file=True names a TF checkpoint; a Keras weights file has no state file.")
    if not path.endswith(SUFFIX):
        raise WriteError(f"With model=, the output is a Keras weights file ending in {SUFFIX!r}; got {path!r}.")
    return write_weights(plan, path, model, keep_unmapped=keep_unmapped, overwrite=overwrite, progress=progress,
                         dry_run=dry_run)


def write_weights(plan, out, model, keep_unmapped=False, overwrite=False, progress=None, dry_run=False) -> KerasWriteReport:
    """Write ``plan`` as ``model``'s Keras 3 weights file ``out`` (its own source not refused: :func:`write` does)."""
    start = time.perf_counter()
    path = os.fsdecode(os.fspath(out))
    if not path.endswith(SUFFIX):
        raise WriteError(f"A Keras weights file's name must end with {SUFFIX!r} (model.load_weights needs it); got {path!r}.")
    if "://" in path:
        raise WriteError(f"Writing to a remote path is not supported; write {path!r} locally and copy it.")
    _atomic.refuse_problems(plan, path)
    groups, slots, unsaved = _layout(model, path)
    dropped = _place(plan, slots, unsaved, path, keep_unmapped)
    if os.path.isdir(path):
        raise WriteError(f"Nothing was written to {path!r}: it is a folder.")
    if os.path.lexists(path) and not overwrite:
        raise WriteError(f"A file already exists at {path!r}; pass overwrite=True to replace it.")
    total = sum(int(np.prod(s.shape)) * np.dtype(numpy_type(s.dtype)).itemsize for s in slots)
    report = KerasWriteReport(
        path,
        [],
        sorted(s.key for s in slots),
        total,
        0.0,
        list(plan.dropped) + dropped,
        dry_run=dry_run,
        placed=[(s.name, s.key) for s in slots if s.item is not None],
        kept=[(s.name, s.key) for s in slots if s.item is None],
    )
    if dry_run:
        return report
    temp = _atomic.temporary_name(path)
    # h5py refuses a value or a file with ValueError or TypeError.
    with _atomic.ticking(total, progress) as tick, _atomic.staged(path, temp, also=(ValueError, TypeError)):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        crcs = _write(temp, groups, slots, tick)
        _verify(temp, slots, crcs)
        _atomic.move_into_place([(temp, path)])
    return replace(report, files=[path], seconds=time.perf_counter() - start)
