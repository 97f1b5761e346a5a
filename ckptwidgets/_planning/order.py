"""``plan_restore(ckpt, model, match="order")``: Keras 2 weights into a Keras 3 model by structure.

Keras 2 names its checkpoints by position, not by anything a Keras 3 model has: a TF2
checkpoint of a Keras 2 model stores the N-th layer that has weights under
``layer_with_weights-N`` (also ``layer-M``, every layer), each layer's variables as its
children in the order the layer created them; a legacy ``.h5`` lists ``layer_names`` and,
per layer, ``weight_names``. So the two are paired the way Keras' own legacy loader does:
the model's layers that have weights (``model.layers``, in order) with the checkpoint's,
and within a layer, weight by weight:

- TF2 checkpoint: the layer node's variables depth-first in child order (``kernel``,
  ``bias``; ``gamma``, ``beta``, ``moving_mean``, ``moving_variance``) against the Keras 3
  layer's ``trainable_weights + non_trainable_weights``; a nested model (a layer that has
  ``layers``, saved with ``layer_with_weights-N`` of its own) is paired layer by layer too.
  A subclassed Keras 2 model (no ``layer_with_weights-N``) gives its children holding
  variables in tracking order. The model is the checkpoint's root (``model.save_weights``)
  or its one child holding layers (``tf.train.Checkpoint(model=model)``).
- Legacy ``.h5``: ``layer_names`` (those with ``weight_names``) in file order, each
  layer's ``weight_names`` in order, against each layer's ``trainable_weights +
  non_trainable_weights``: what ``model.load_weights("m.h5")`` does (nested models are one
  layer there, as Keras saves them).

The default match of a legacy ``.h5`` uses the same reading by layer name instead
(:func:`legacy_name_keys`: ``model.load_weights(path, by_name=True)``): the model's layers
whose names the file's ``layer_names`` hold, each weight by weight as above.

A model's own weights (``self.bias = self.add_weight(...)`` in a subclassed model, not under
any layer: :func:`own_weights`, trainable first) are paired too: with a legacy ``.h5``'s
``top_level_model_weights`` in order, as Keras' ``load_weights`` reads them; with the
variables right under the model's node of a TF2 checkpoint by attribute name first (``bias``,
as ``tf.train.Checkpoint.restore`` would), the rest in order.

Counts that differ are paired as far as they go and said in the notes, with both counts;
shapes are checked by the plan like any other mapping.

Example
-------
>>> from ckptwidgets._planning.order import numbered_layers
>>> numbered_layers([("layer-0", 1), ("layer_with_weights-1", 3), ("layer_with_weights-0", 2), ("optimizer", 4)])
[('layer_with_weights-0', 2), ('layer_with_weights-1', 3)]
"""
from __future__ import annotations

from .graph_match import children
from ..sources.bundle import VALUE_ATTRIBUTE as VALUE
from ..sources.keras import list_attribute
from ..errors import PlanError

__all__ = ["order_keys", "legacy_name_keys", "numbered_layers", "own_weights", "TOP_LEVEL"]

_PREFIX = "layer_with_weights-"
#: The legacy ``.h5`` group of a model's own weights (``self.bias = self.add_weight(...)``).
TOP_LEVEL = "top_level_model_weights"
# Children of a Keras 2 model node that are not its layers.
_NOT_LAYERS = ("optimizer", "root", "save_counter", "keras_api", "train_function", "train_tf_function")


def numbered_layers(children) -> list[tuple[str, int]]:
    """The ``layer_with_weights-N`` children of a node, by N."""
    found = []
    for local, node in children:
        if local.startswith(_PREFIX) and local[len(_PREFIX):].isdecimal():
            found.append((int(local[len(_PREFIX):]), local, node))
    return [(local, node) for _, local, node in sorted(found)]


def _layers_with_weights(model) -> list:
    return [layer for layer in getattr(model, "layers", ()) if _weights(layer)]


def _weights(layer) -> list:
    # Keras' legacy order (its h5 loader's _legacy_weights): trainable first.
    return list(layer.trainable_weights) + list(layer.non_trainable_weights)


def order_keys(ckpt, model) -> tuple[dict[int, str], list[str]]:
    """``({id(variable): key}, notes)`` pairing ``model``'s layers with ``ckpt``'s by order."""
    notes: list[str] = []
    if not hasattr(model, "layers"):  # a tf.train.Checkpoint(model=m): the one model it holds
        models = [(local, obj) for local, obj in children(model).items() if hasattr(obj, "layers")]
        if len(models) == 1:
            notes.append(f"match='order' paired the layers of {models[0][0]!r}, the one model of what you passed.")
            model = models[0][1]
    if not hasattr(model, "layers"):
        raise PlanError(
            f"match='order' pairs the layers of a Keras model: pass the model itself, not a "
            f"{type(model).__module__}.{type(model).__qualname__}."
        )
    pairs: list = []  # (variable, key, layer name, saved layer)
    layout = getattr(ckpt.source, "layout", None)
    if layout == "legacy":
        saved, top_level = _legacy_layers(ckpt)
        _pair_flat(model, saved, pairs, notes, ckpt)
        _pair_own(model, top_level, TOP_LEVEL, pairs, notes, ckpt)
    elif layout == "keras3":
        raise PlanError(
            f"{ckpt.prefix!r} is a Keras 3 weights file: the default match already pairs each variable with the "
            "dataset model.load_weights reads (by structure); match='order' is for Keras 2 checkpoints "
            "(layer_with_weights-N keys, legacy .h5)."
        )
    elif ckpt.object_graph is None:
        raise PlanError(
            f"match='order' needs a Keras 2 checkpoint (a TF2 one with layer_with_weights-N keys, or a legacy .h5); "
            f"{ckpt.prefix!r} is name-based: match it by name (the default match){_rule_advice(ckpt, model)}."
        )
    else:
        graph = ckpt.object_graph
        node = _model_node(graph)
        if node is None:
            raise PlanError(
                f"Checkpoint {ckpt.prefix!r} holds no Keras 2 model structure (no layer_with_weights-N objects); "
                "match='order' needs one. A checkpoint of a Keras 3 model is matched by the default match."
            )
        _pair_graph(model, graph, node, pairs, notes, ckpt)
    summary = _summary(pairs)
    if summary:
        notes.append(summary)
    return {id(var): key for var, key, _layer, _label in pairs}, notes


def _rule_advice(ckpt, model) -> str:
    """``, with rules={...} (it maps N of the model's M variables)`` for the scope rule mapping the most."""
    from .hints import scope_rule

    names = [getattr(w, "path", None) or w.name for w in getattr(model, "weights", ())]
    rule, count = scope_rule(names, [e.name for e in ckpt.entries if e.kind in ("variable", "ema")])
    return f", with rules={rule!r} (it maps {count} of the model's {len(names)} variables)" if count else ""


def _summary(pairs) -> str:
    layers: dict = {}
    for _var, _key, layer, label in pairs:
        layers.setdefault((layer, label), 0)
        layers[(layer, label)] += 1
    if not layers:
        return ""
    shown = [f"{layer!r} <- {label!r}" for (layer, label) in list(layers)[:6]]
    more = f" and {len(layers) - 6} more" if len(layers) > 6 else ""
    return f"match='order' paired {len(layers)} layers by position: {', '.join(shown)}{more}."


# --- TF2 checkpoints of Keras 2 models ------------------------------------------------


def _model_node(graph) -> int | None:
    """The node of the saved model: the root, or its one child holding layers."""
    nodes = graph.nodes
    if numbered_layers(nodes[0].children):
        return 0
    candidates = [c for local, c in nodes[0].children if local not in _NOT_LAYERS]
    with_layers = [c for c in candidates if numbered_layers(nodes[c].children)]
    if len(with_layers) == 1:
        return with_layers[0]
    if not with_layers and len(candidates) == 1 and _layer_nodes(graph, candidates[0]):
        return candidates[0]  # a subclassed Keras 2 model written as tf.train.Checkpoint(model=...)
    if not with_layers and _is_subclassed_model(graph, 0):
        return 0
    return None


def _is_subclassed_model(graph, node) -> bool:
    # A Keras 2 model saved by model.save_weights has an "optimizer" child or layers holding variables.
    children = dict(graph.nodes[node].children)
    return "save_counter" not in children and bool(_layer_nodes(graph, node))


def _layer_nodes(graph, node) -> list[tuple[str, int]]:
    """A model node's layers: ``layer_with_weights-N`` by N; else (subclassed) its children
    that are layers (:func:`_is_layer`), in tracking order."""
    children = graph.nodes[node].children
    numbered = numbered_layers(children)
    if numbered:
        return numbered
    out, seen = [], set()
    for local, child in children:
        # Keras 2 tracks a subclassed model's layers under their attribute names; what starts
        # with "_" is bookkeeping (and how Keras 3 tracks its models: _functional, _tracked).
        if local in _NOT_LAYERS or local.startswith("_") or child in seen or VALUE in graph.nodes[child].attributes:
            continue
        seen.add(child)
        if _is_layer(graph, child):
            out.append((local, child))
    return out


def _is_layer(graph, node) -> bool:
    """A layer of a subclassed model: variables of its own (children holding a value), or a
    nested Keras 2 model (``layer_with_weights-N``); a node that only leads to variables
    further down (Keras 3's ``_functional`` wrapper) is not one."""
    children = graph.nodes[node].children
    return bool(numbered_layers(children)) or any(VALUE in graph.nodes[c].attributes for _, c in children)


def _node_keys(graph, node) -> list[str]:
    """The keys of the variables under a layer node, depth-first in child order."""
    out, seen = [], {node}

    def visit(current):
        key = graph.key_of(current)
        if key is not None:
            out.append(key)
        for local, child in graph.nodes[current].children:
            if child not in seen and local not in _NOT_LAYERS:
                seen.add(child)
                visit(child)

    visit(node)
    return out


def _pair_graph(model, graph, node, pairs, notes, ckpt) -> None:
    live = _layers_with_weights(model)
    saved = _layer_nodes(graph, node)
    where = graph.paths[node] or "the root"
    _count_note(notes, model, live, saved, where, ckpt)
    for layer, (local, child) in zip(live, saved):
        label = graph.paths[child]
        if hasattr(layer, "layers") and numbered_layers(graph.nodes[child].children):
            _pair_graph(layer, graph, child, pairs, notes, ckpt)  # a nested model: layer by layer
            continue
        _pair_weights(layer, _node_keys(graph, child), label, pairs, notes)
    own = _own_variable_nodes(graph, node)
    _pair_own(model, [graph.key_of(child) for _local, child in own], where, pairs, notes, ckpt,
              [local for local, _child in own])


def _own_variable_nodes(graph, node) -> list[tuple[str, int]]:
    """A model node's own variables (``self.bias = self.add_weight(...)``): its children that
    hold a value, in child order (a layer's are under the layer's node)."""
    nodes = graph.nodes
    return [(local, child) for local, child in nodes[node].children
            if local not in _NOT_LAYERS and VALUE in nodes[child].attributes]


# --- a model's own weights ----------------------------------------------------------------


def own_weights(model) -> list:
    """The weights a model holds itself, not through a layer, in Keras' order (trainable
    first): what Keras' legacy loader reads from ``top_level_model_weights``."""
    inner = {id(w) for layer in getattr(model, "layers", ()) for w in _weights(layer)}
    return [w for w in getattr(model, "weights", ()) if id(w) not in inner]


def _pair_own(model, keys, where, pairs, notes, ckpt, locals_=None) -> None:
    """Pair ``model``'s own weights with the saved ones (``keys``): by attribute name where the
    checkpoint names them (``locals_``, a TF2 object graph: as ``tf.train.Checkpoint`` restores),
    the rest in order."""
    weights = own_weights(model)
    if not weights and not keys:
        return
    if len(weights) != len(keys):
        notes.append(
            f"Model {model.name!r} has {len(weights)} weights of its own but {where!r} in {ckpt.prefix!r} has "
            f"{len(keys)}: paired in order, the first {min(len(weights), len(keys))}."
        )
    remaining_weights, remaining_keys = list(weights), list(keys)
    if locals_:
        live = {local: obj for local, obj in children(model).items()}
        for local, key in zip(locals_, keys):
            var = live.get(local)
            if var is not None and any(var is w for w in remaining_weights):
                pairs.append((var, key, model.name, where))
                remaining_weights = [w for w in remaining_weights if w is not var]
                remaining_keys.remove(key)
    for var, key in zip(remaining_weights, remaining_keys):
        pairs.append((var, key, model.name, where))


def _count_note(notes, model, live, saved, where, ckpt) -> None:
    if len(live) != len(saved):
        notes.append(
            f"Model {model.name!r} has {len(live)} layers with weights but {where!r} in {ckpt.prefix!r} has "
            f"{len(saved)}: paired in order, the first {min(len(live), len(saved))}."
        )


def _pair_weights(layer, keys, label, pairs, notes) -> None:
    weights = _weights(layer)
    if len(weights) != len(keys):
        notes.append(
            f"Layer {layer.name!r} has {len(weights)} weights but {label!r} has {len(keys)}: "
            f"paired in order, the first {min(len(weights), len(keys))}."
        )
    for var, key in zip(weights, keys):
        pairs.append((var, key, layer.name, label))


# --- legacy .h5 -------------------------------------------------------------------------


def _legacy_layers(ckpt) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """``([(layer name, [keys])], [top-level keys])``: the layers in ``layer_names`` order,
    those without weights left out, and the model's own weights (``top_level_model_weights``)."""
    import h5py  # only for a legacy Keras file, which h5py opened already

    path = ckpt.source.location
    with h5py.File(path, "r") as f:
        group = f["model_weights"] if "model_weights" in f and list_attribute(f["model_weights"], "layer_names") else f
        prefix = "" if group is f else "model_weights/"
        out = []
        for layer in list_attribute(group, "layer_names"):
            weights = list_attribute(group[layer], "weight_names") if layer in group else []
            if weights:
                out.append((layer, [f"{prefix}{layer}/{w}" for w in weights]))
        top = group.get(TOP_LEVEL)
        top_level = [f"{prefix}{TOP_LEVEL}/{w}" for w in list_attribute(top, "weight_names")] if top is not None else []
    return out, top_level


def legacy_name_keys(ckpt, model) -> tuple[dict[int, str], list[str]]:
    """``({id(variable): key}, notes)``: a legacy ``.h5``'s layers paired with ``model``'s by layer
    name, each layer's weights in order, and the model's own weights with ``top_level_model_weights``:
    what ``model.load_weights("m.h5", by_name=True)`` does. What the default match uses for a
    legacy ``.h5``; the notes name the model's layers with weights the file has no layer for."""
    saved, top_level = _legacy_layers(ckpt)
    by_name = dict(saved)
    pairs: list = []
    notes: list[str] = []
    live = _layers_with_weights(model)
    for layer in live:
        keys = by_name.get(layer.name)
        if keys is not None:
            _pair_weights(layer, keys, layer.name, pairs, notes)
    missing = [layer.name for layer in live if layer.name not in by_name]
    if missing and len(missing) < len(live):
        shown = ", ".join(map(repr, missing[:5])) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        notes.append(
            f"Keras file {ckpt.prefix!r} (a legacy .h5) has no layer named {shown}; the model's other "
            f"{len(live) - len(missing)} layers with weights were matched by name, as model.load_weights(path, "
            "by_name=True) does."
        )
    _pair_own(model, top_level, TOP_LEVEL, pairs, notes, ckpt)
    return {id(var): key for var, key, _layer, _label in pairs}, notes


def _pair_flat(model, saved, pairs, notes, ckpt) -> None:
    live = _layers_with_weights(model)
    _count_note(notes, model, live, saved, "layer_names", ckpt)
    for layer, (name, keys) in zip(live, saved):
        _pair_weights(layer, keys, name, pairs, notes)
