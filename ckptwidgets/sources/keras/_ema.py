"""Keras 3 optimizer state: which entries are ``use_ema=True`` averages, and whose.

A Keras 3 optimizer keeps every state variable in one flat list (``optimizer.variables``:
``iteration``, ``learning_rate``, then with ``use_ema=True`` one average per trainable
variable, in ``model.trainable_variables`` order, then the slots). Checkpoints name these
by position only (TF2: ``optimizer/_variables/N``; a Keras file: ``optimizer/vars/N``), so
which entry is an average, and of which variable, comes from structure. Two sources of it:

- A TF2 checkpoint's object graph (:mod:`ckptwidgets.sources.bundle._object_graph`) says it exactly: the
  optimizer node's list ``_model_variables_moving_average`` has as child ``i`` the average
  of its list ``_trainable_variables``' child ``i``; lists like ``_momentums`` name the
  slots the same way. :func:`from_object_graph`.
- A Keras weights file says nothing of ``use_ema`` (a ``.keras`` archive's ``config.json``
  does) and stores layers by class (``layers/dense``, ``layers/dense_1``), not in model
  order. :func:`from_layout` decides from shapes, for a *flat* model only (every layer's
  variables directly in ``layers/<layer>/vars``, nothing else at the root): there the
  order of ``model.trainable_variables`` is the order Keras wrote the layers in (their data
  offsets in the file), each layer contributing a prefix of its variables (Keras saves a
  layer's trainable variables first). Every split of the optimizer's list into
  ``[counters][averages][slots]`` whose averages have the shapes of such a sequence and
  whose slots are a whole number of copies of those shapes is tried: the averages must be
  the same entries in every one, and an average gets its variable only when all agree on
  it (else base None: a ``Dense`` bias beside a ``BatchNormalization`` of its width fits
  either). Subclassed models (attributes saved in sorted order, trained in assignment
  order), nested layers and counts that fit several splits give None: never a guess.

Example
-------
>>> layers = [("layers/dense/vars", [(3, 4), (4,)]), ("layers/dense_1/vars", [(4, 2), (2,)])]
>>> sgd = [(), (), (3, 4), (4,), (4, 2), (2,), (3, 4), (4,), (4, 2), (2,)]   # SGD(momentum, use_ema)
>>> from_layout(layers, "optimizer/vars", sgd)["optimizer/vars/3"]
'layers/dense/vars/1'
>>> layers.insert(1, ("layers/batch_normalization/vars", [(4,)] * 4))   # a Dense's bias or the BN's gamma?
>>> sgd = [(), ()] + [(3, 4), (4,), (4,), (4,), (4, 2), (2,)] * 2
>>> [from_layout(layers, "optimizer/vars", sgd)[f"optimizer/vars/{i}"] for i in (2, 3, 6)]
['layers/dense/vars/0', None, 'layers/dense_1/vars/0']
>>> from_layout([("layers/dense/vars", [(4,), (4,)])], "optimizer/vars", [(), (), (4,), (4,), (4,), (4,)]) is None
True
"""
from __future__ import annotations

from collections import Counter

__all__ = ["AVERAGES", "suggests_optimizer", "from_object_graph", "from_layout"]

#: The optimizer's list of averages in the object graph (Keras 3 and tf_keras optimizers).
AVERAGES = "_model_variables_moving_average"
_TRAINED = "_trainable_variables"
_ALL = "_variables"
_ITERATIONS = "/_iterations/.ATTRIBUTES/VARIABLE_VALUE"
_STATE = "/_variables/"


def suggests_optimizer(keys) -> bool:
    """True when TF2 keys hold a Keras 3 optimizer (``<opt>/_iterations`` beside
    ``<opt>/_variables/N``): only then is the object graph worth reading at open."""
    counters = [key[: -len(_ITERATIONS)] for key in keys if key.endswith(_ITERATIONS)]
    return bool(counters) and any(key.startswith(c + _STATE) for c in counters for key in keys)


def from_object_graph(graph) -> dict[str, tuple[str, str]]:
    """``{key: (kind, base key)}`` of the averages (``ema``) and per-variable slots (``slot``)
    of every Keras optimizer in ``graph`` (an :class:`~ckptwidgets.sources.bundle._object_graph.ObjectGraph`).

    Exact: each list child is named by the index of the trainable variable it belongs to.
    """
    out: dict[str, tuple[str, str]] = {}
    for node in graph.nodes:
        children = dict(node.children)
        if _TRAINED not in children or _ALL not in children:
            continue
        trained = {name: graph.key_of(child) for name, child in graph.nodes[children[_TRAINED]].children}
        state = {child for _, child in graph.nodes[children[_ALL]].children}
        for name, list_id in node.children:
            if name in (_TRAINED, _ALL):
                continue
            kind = "ema" if name == AVERAGES else "slot"
            for index, child in graph.nodes[list_id].children:
                key, base = graph.key_of(child), trained.get(index)
                # Only lists of the optimizer's own state, indexed like its trainable variables.
                if key is not None and base is not None and child in state:
                    out.setdefault(key, (kind, base))
    return out


def from_layout(layers, optimizer_path: str, shapes, counters=(2,)) -> dict[str, str | None] | None:
    """``{average key: variable key, or None where the shapes fit several}`` for a flat Keras
    model's file, or None when not even which entries are averages is decided.

    Parameters
    ----------
    layers : list of (str, list of shape)
        Each ``vars`` group of the model in the order Keras wrote them, with the shapes of
        its datasets ``0``, ``1``...
    optimizer_path : str
        The optimizer's ``vars`` group; ``shapes`` the shapes of its datasets ``0``, ``1``...
    counters : tuple of int
        How many leading entries may be counters (2: ``iteration``, ``learning_rate``; 1 with
        a learning-rate schedule).

    An average's variable is given when every way of fitting the shapes gives it the same
    one (a ``Dense`` bias beside a ``BatchNormalization`` of the same width does not: either
    could be the trainable one); which entries are averages must be the same in all.
    """
    shapes = [tuple(s) for s in shapes]
    found = []
    for lead in counters:
        state = shapes[lead:]
        forward = _forward(layers, state)
        found += [(lead, n, state, forward) for n in sorted(forward[-1]) if _slots_fit(state, n)]
    if len(found) != 1:
        return None
    lead, n, state, forward = found[0]
    backward = _backward(layers, state, forward, n)
    candidates: list[set] = [set() for _ in range(n)]
    for at, (path, own) in enumerate(layers):
        for start in forward[at]:
            for take in _takes(own, state, start):
                if start + take in backward[at + 1]:
                    for j in range(take):
                        candidates[start + j].add(f"{path}/{j}")
    return {
        f"{optimizer_path}/{lead + i}": next(iter(found)) if len(found) == 1 else None
        for i, found in enumerate(candidates)
    }


def _takes(own, state, start: int):
    """How many of a layer's first variables can be trainable from position ``start``: the
    counts whose shapes are the next ones of ``state`` (Keras saves trainable ones first)."""
    yield 0
    for take, shape in enumerate(own, 1):
        if start + take > len(state) or state[start + take - 1] != tuple(shape):
            return
        yield take


def _forward(layers, state) -> list[set]:
    """Positions of ``state`` the trainable variables of the first ``l`` layers can end at, for each ``l``."""
    reach = [{0}]
    for _path, own in layers:
        reach.append({start + take for start in reach[-1] for take in _takes(own, state, start)})
    return reach


def _backward(layers, state, forward, n: int) -> list[set]:
    """Positions before layer ``l`` from which the trainable variables can end exactly at ``n``."""
    back = [set() for _ in range(len(layers))] + [{n}]
    for at in range(len(layers) - 1, -1, -1):
        own, later = layers[at][1], back[at + 1]
        back[at] = {start for start in forward[at] if any(start + t in later for t in _takes(own, state, start))}
    return back


def _slots_fit(state, n: int) -> bool:
    """After ``n`` averages, the rest is a whole number of slots per variable, each with its
    variable's shape (Keras' own optimizers; Adafactor's factored slots do not fit: None)."""
    rest = len(state) - n
    if n == 0 or rest % n:
        return False
    per = rest // n
    return Counter(state[n:]) == Counter({shape: count * per for shape, count in Counter(state[:n]).items()})
