"""Match a trackable root's variables to a TF2 checkpoint the way TensorFlow restores.

``tf.train.Checkpoint(...).restore`` does not look at key names: it walks the checkpoint's
object graph (:class:`~ckptwidgets.sources.bundle.ObjectGraph`) from its root in parallel
with the live objects, child by child under the same local name, and each saved node gives
its value to the live object it reaches. A Keras 3 model shows why that matters: its kernel
is reachable as ``model/_functional/_operations/1/_kernel`` and as
``optimizer/_trainable_variables/0``, and the key says only the latter. This module does
the same walk over TensorFlow's public ``tf.train.TrackableView(obj).children(obj)``, plus
the slot variables of optimizers that keep them beside the graph (``get_slot``).

The root given and the checkpoint's root need not be the same object: a bare model
planned against ``tf.train.Checkpoint(model=m).write(...)`` is matched under the
checkpoint root's child ``model``, and ``tf.train.Checkpoint(model=m2)`` against a
checkpoint whose root was the model itself under the live root's child ``model`` (one such
child must fit better than the roots do); :func:`graph_keys` says so in its notes.

Example
-------
>>> import os, tempfile
>>> import tensorflow as tf
>>> import ckptwidgets
>>> net = tf.Module()
>>> net.w = tf.Variable([1.0, 2.0])
>>> path = tf.train.Checkpoint(model=net).write(os.path.join(tempfile.mkdtemp(), "ckpt"))
>>> fresh = tf.Module()
>>> fresh.w = tf.Variable([0.0, 0.0])
>>> keys, notes = graph_keys(ckptwidgets.open_checkpoint(path), fresh, {"w": fresh.w})
>>> keys
{'w': 'model/w/.ATTRIBUTES/VARIABLE_VALUE'}
>>> "under 'model'" in notes[0]
True
"""
from __future__ import annotations

from collections import deque

from ..sources.bundle import VALUE_ATTRIBUTE
from .._tf.quiet import import_tensorflow

__all__ = ["graph_keys", "walk", "children"]

# Children of a checkpoint's root that are never the model written around (tf.train.Checkpoint's own).
_NOT_A_MODEL = ("save_counter", "optimizer", "root")


def children(obj) -> dict:
    """``{local name: child trackable}`` of a live object (public TF), {} for what has none."""
    try:
        return import_tensorflow().train.TrackableView.children(obj)
    except Exception:  # not a trackable, or one whose children cannot be listed: a leaf
        return {}


def walk(graph, node: int, obj, wanted: dict) -> dict[str, int]:
    """``{name: node id}`` for the ``wanted`` variables (``{id(variable): name}``) that the
    walk from checkpoint node ``node`` and live object ``obj`` reaches, breadth-first.

    Each node is bound to the first live object that reaches it (as TensorFlow binds one
    object per saved node); a variable keeps the first node holding a value it reaches.
    """
    found: dict[str, int] = {}
    bound = {node: obj}
    queue = deque([(node, obj)])
    nodes = graph.nodes
    while queue:
        node, obj = queue.popleft()
        saved = nodes[node]
        name = wanted.get(id(obj))
        if name is not None and VALUE_ATTRIBUTE in saved.attributes:
            found.setdefault(name, node)
        if not saved.children:
            continue
        live = children(obj)
        if not live:
            continue
        for local, child in saved.children:
            target = live.get(local)
            if target is not None and child not in bound:
                bound[child] = target
                queue.append((child, target))
    _slots(graph, bound, wanted, found)
    return found


def _slots(graph, bound: dict, wanted: dict, found: dict) -> None:
    """Slot variables an optimizer keeps beside the graph (TF1 and Keras 2 optimizers): the
    saved node's ``(original, slot name, slot)`` triples, the live one's ``get_slot``."""
    for node, obj in bound.items():
        slots = graph.nodes[node].slots
        get_slot = getattr(obj, "get_slot", None) if slots else None
        if get_slot is None:
            continue
        for original, slot_name, slot_node in slots:
            variable = bound.get(original)
            if variable is None:
                continue
            try:
                slot = get_slot(variable, slot_name)
            except Exception:  # this optimizer has no such slot for that variable
                continue
            name = wanted.get(id(slot))
            if name is not None and VALUE_ATTRIBUTE in graph.nodes[slot_node].attributes:
                found.setdefault(name, slot_node)


def graph_keys(ckpt, root, variables: dict) -> tuple[dict[str, str], list[str]]:
    """``({name: checkpoint key}, notes)`` for the variables (``{name: variable}``) of the
    trackable ``root``, matched through ``ckpt``'s object graph; ``({}, [])`` without one.

    The roots are matched first; when that leaves variables over, the walk is tried from
    each child of the checkpoint's root against ``root``, and from the root against each
    child of ``root``: the one alignment that reaches more variables than any other wins,
    and a note says which (a tie is reported, and the roots' result kept).
    """
    graph = ckpt.object_graph
    if graph is None or not graph.nodes:
        return {}, []
    wanted = {id(var): name for name, var in variables.items()}
    best = walk(graph, 0, root, wanted)
    notes: list[str] = []
    if len(best) < len(wanted):
        options = []
        for local, child in graph.nodes[0].children:
            if local not in _NOT_A_MODEL:
                options.append((walk(graph, child, root, wanted), "checkpoint", local))
        for local, obj in children(root).items():
            if local not in _NOT_A_MODEL and id(obj) not in wanted:
                options.append((walk(graph, 0, obj, wanted), "given", local))
        options.sort(key=lambda option: -len(option[0]))
        if options and len(options[0][0]) > len(best):
            top = [o for o in options if len(o[0]) == len(options[0][0])]
            if len(top) == 1:
                best, side, local = options[0]
                notes.append(_note(ckpt, side, local, len(best), len(wanted)))
            else:
                places = ", ".join(repr(o[2]) for o in top)
                notes.append(
                    f"The variables fit under several children of checkpoint {ckpt.prefix!r} "
                    f"({places}, {len(top[0][0])} variables each): none was chosen; pass the object "
                    "the checkpoint was written from, e.g. tf.train.Checkpoint(model=model)."
                )
    return {name: graph.key_of(node) for name, node in best.items()}, notes


def _note(ckpt, side: str, local: str, count: int, total: int) -> str:
    if side == "checkpoint":
        return (
            f"Checkpoint {ckpt.prefix!r} holds the model under {local!r} (written as "
            f"tf.train.Checkpoint({local}=model)): matched {count} of {total} variables under that child, as "
            f"tf.train.Checkpoint({local}=<what you passed>).restore(path) does."
        )
    return (
        f"Checkpoint {ckpt.prefix!r} was written from the model itself: matched {count} of {total} variables "
        f"against the child {local!r} of what you passed, as tf.train.Checkpoint(<that child>).restore(path) does."
    )
