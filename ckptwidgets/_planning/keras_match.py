"""Match Keras 3 variables to a Keras 3 weights file (``.weights.h5``, ``.keras``) as Keras loads it.

Keras 3's ``load_weights`` does not use names either: each object's variables go, by
index, into the dataset at the attribute path Keras walks to reach it
(``layers/dense_1/vars/0``: the second ``Dense`` of ``model.layers``), whatever the
layers are called. For a Keras model given as the root, :func:`keras_file_keys` asks
Keras for that walk (``_tfprivate.keras_weight_keys``) and maps each variable to the key
Keras would load into it, so the plan equals ``model.load_weights(path)``; a key the file
does not have is kept (a ``missing_key`` naming both sides) as long as the file holds any
of the model's keys at all.

Keras variables given as a list or dict have no model to walk: each is placed by its
``.path`` (``net/hidden/kernel``: owner ``net/hidden``) in the file's object of the
longest matching trailing name (``hidden``, records ``hidden/vars/N``), the variables of
one owner taking the file's indices in the order given (Keras' own order:
``layer.weights``), and only when their count equals the file's for that object.

Example
-------
>>> from ckptwidgets._planning.keras_match import owner_groups
>>> owner_groups(["hidden/vars/0", "hidden/vars/1", "inner/core/vars/0"])
{'hidden': ['hidden/vars/0', 'hidden/vars/1'], 'inner/core': ['inner/core/vars/0']}
"""
from __future__ import annotations

from .._tf import private as _tfprivate
from .graph_match import children
from .variables import is_keras_object

__all__ = ["keras_file_keys", "owner_groups", "is_keras3_file"]


def is_keras3_file(ckpt) -> bool:
    """A Keras 3 layout (``.weights.h5``, ``.keras``): variables stored by index per object."""
    return getattr(ckpt.source, "layout", None) == "keras3"


def owner_groups(names) -> dict[str, list[str]]:
    """``{owner: [names by index]}`` for Keras 3 record names ``<owner>/vars/<index>``."""
    groups: dict[str, dict[int, str]] = {}
    for name in names:
        owner, sep, index = name.rpartition("/vars/")
        if sep and index.isdecimal():
            groups.setdefault(owner, {})[int(index)] = name
    return {owner: [found[i] for i in sorted(found)] for owner, found in groups.items()}


def keras_file_keys(ckpt, root, infos: dict, given_root: bool) -> tuple[dict[str, str], list[str]]:
    """``({plan name: key}, notes)`` for a Keras 3 weights file: by Keras' own walk for a
    model root, by owner name and index for Keras variables in a list or dict."""
    if given_root:
        return _model_keys(ckpt, root, infos)
    return _variable_keys(ckpt, infos)


def _model_keys(ckpt, root, infos):
    notes = []
    if not is_keras_object(root):  # a tf.train.Checkpoint(model=m) or module holding one Keras model
        models = [(local, obj) for local, obj in children(root).items() if is_keras_object(obj) and hasattr(obj, "layers")]
        if len(models) != 1:
            return {}, []
        local, root = models[0]
        notes.append(
            f"{ckpt.prefix!r} is a Keras weights file: matched it into {local!r}, the one Keras model of what you "
            f"passed, as {local}.load_weights(path) does."
        )
    keys = _tfprivate.keras_weight_keys(root)
    if not keys:
        return {}, []
    out = {name: keys[id(info.variable)] for name, info in infos.items() if id(info.variable) in keys}
    if not any(key in ckpt.by_key for key in out.values()):
        example = next(iter(out.values()), None)
        return {}, [
            f"{ckpt.prefix!r} holds none of the datasets Keras would load this model's variables from "
            f"(such as {example!r}): it was saved from another architecture. match='order' pairs layers by "
            "position instead, or assign keys by hand."
        ]
    return out, notes


def _variable_keys(ckpt, infos):
    keras = [(name, info) for name, info in infos.items() if info.keras and info.part is None]
    if not keras:
        return {}, []
    groups = owner_groups(e.name for e in ckpt.entries if e.kind == "variable")
    by_owner: dict[str, list[str]] = {}
    for name, info in keras:
        by_owner.setdefault(info.variable.path.rpartition("/")[0], []).append(name)
    out: dict[str, str] = {}
    unresolved = []
    for owner, names in by_owner.items():
        segments = owner.split("/")
        group = next(
            (groups["/".join(segments[i:])] for i in range(len(segments)) if "/".join(segments[i:]) in groups),
            None,
        )
        if group is None or len(group) != len(names):
            unresolved.append(owner)
            continue
        for name, record_name in zip(names, group):
            out[name] = ckpt.find(record_name).key
    notes = []
    if unresolved:
        notes.append(
            f"Keras variables under {', '.join(map(repr, unresolved[:3]))} find no object of that name (with as many "
            f"variables) in Keras weights file {ckpt.prefix!r}: pass the model itself, plan_restore(path, model), "
            "which matches every variable to the dataset model.load_weights would read."
        )
    return out, notes
