"""Cross-framework matching: a Keras / TF checkpoint into a torch module, or a torch one into Keras.

Names say nothing across the border (``dense_1/kernel`` vs ``2.weight``), so layers are
paired by structure: the checkpoint's entries are grouped into layers (``dense/kernel`` ->
``dense``; ``layers/dense/vars/0`` -> ``dense``; ``layer_with_weights-0/kernel`` ->
``layer_with_weights-0``; ``encoder.lin.weight`` -> ``encoder.lin``; a recurrent cell and
attention's query/key/value/output sublayers belong to their layer; a TF2 checkpoint's weights
that the optimizer's path keys, ``optimizer/_trainable_variables/N``, by their path through the
model in its object graph), each layer's family
(dense, conv, batchnorm, lstm...) is told from its tensor names and shapes. Layers whose names
match pair by name first (exactly, ``/`` and ``.`` alike, or once a leading scope common to all
of a side's layers, such as a Keras model's name, is dropped; positions such as torch's ``0``
or ``layer_with_weights-0`` are no names); the rest of a family pair by order: the N-th
remaining layer of a family in the checkpoint (natural order of names: ``dense``, ``dense_1``,
..., ``dense_10``; ``layer_with_weights-N`` and torch's ``N.`` by N) goes to the N-th remaining
layer of that family in the model (the model's order). Each hint says ``by name`` or ``by order``. :func:`~ckptwidgets.layouts.map_layer` then says, or
refuses with both shapes, how each variable is made from its layer's keys.
"""
from __future__ import annotations

import re
from typing import NamedTuple

from .._text.format import count_of
from ..layouts import IDENTITY, LAYOUTS, LayoutError, map_layer
from ..layouts._rules import shape_text

__all__ = ["CrossMatch", "cross_framework_matches", "checkpoint_layers", "natural_key", "KeyLayouts",
           "transform_for_key"]

_CELL = re.compile(r"^(cell|.*_cell)$")
_ATTENTION_PARTS = {"query", "key", "value", "attention_output", "query_dense", "key_dense", "value_dense",
                    "output_dense", "_query_dense", "_key_dense", "_value_dense", "_output_dense"}
_FAMILY_OF_KIND = {"Linear": "dense", "Dense": "dense", "Embedding": "embedding", "LayerNorm": "layernorm",
                   "LayerNormalization": "layernorm", "BatchNormalization": "batchnorm", "LSTM": "lstm", "GRU": "gru",
                   "MultiheadAttention": "attention", "MultiHeadAttention": "attention", "DepthwiseConv2D": "conv"}


class CrossMatch(NamedTuple):
    """What pairing layers across frameworks found.

    ``pairs``: ``{variable name: (checkpoint keys, Transform)}`` (keys in the transform's
    argument order); ``problems``: ``[(variable name or None, key or None, message)]``;
    ``hints``: which layer went where, one line each.
    """

    pairs: dict
    problems: list
    hints: list


def natural_key(name: str) -> tuple:
    """Digits compare as numbers: ``dense``, ``dense_1``, ``dense_2``, ``dense_10``; ``0.``, ``1.``, ``10.``."""
    return tuple((0, int(c), "") if c.isdigit() else (1, 0, c) for c in re.split(r"(\d+)", name) if c)


def _is_torch_name(name: str) -> bool:
    return "/" not in name and "." in name


def checkpoint_layers(entries, torch_names: bool) -> dict:
    """``{layer path: {local name: entry}}`` of the model-state entries, layers in natural order."""
    layers: dict = {}
    for entry in entries:
        if torch_names:
            layer, _, local = entry.name.rpartition(".")
        else:
            segments = entry.name.split("/")
            local = [segments.pop()]
            if segments and segments[-1] == "vars":
                segments.pop()
            if len(segments) > 1 and (_CELL.match(segments[-1]) or segments[-1] in _ATTENTION_PARTS):
                local.insert(0, segments.pop())
            layer, local = "/".join(segments), "/".join(local)
        layers.setdefault(layer, {})[local] = entry
    if torch_names:  # MultiheadAttention's out_proj is a submodule of its own: it belongs to the attention
        for path in [p for p in layers if p.endswith(".out_proj") or p == "out_proj"]:
            owner = path.rpartition(".")[0]
            if any(n in layers.get(owner, {}) for n in ("in_proj_weight", "q_proj_weight")):
                layers[owner].update({f"out_proj.{n}": e for n, e in layers.pop(path).items()})
    return {path: layers[path] for path in sorted(layers, key=natural_key)}


#: Children that make a TF2 checkpoint's node an optimizer (Keras 3's, and TF's own with ``iter``).
_OPTIMIZER_CHILDREN = {"_trainable_variables", "_iterations", "iter"}
_VALUE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"


def _through_the_model(ckpt, entries: list) -> list:
    """A TF2 checkpoint's entries named by their path through the model, not the optimizer.

    A Keras 3 model saved with its optimizer keys its trainable weights
    ``optimizer/_trainable_variables/N`` (the first path a breadth-first walk finds), which
    says no layer; the object graph also reaches each through the model
    (``model/_functional/_operations/1/_kernel``). Grouping into layers uses that path; the
    keys stay as they are.
    """
    if not getattr(ckpt, "object_based", False) or not any(e.name.startswith("optimizer/") for e in entries):
        return entries
    graph = ckpt.object_graph
    if graph is None:
        return entries
    paths: dict = {0: ""}
    queue = [0]
    while queue:  # breadth first, as TensorFlow names keys, but never into an optimizer
        parent = queue.pop(0)
        for name, child in graph.nodes[parent].children:
            node = graph.nodes[child]
            if child in paths or node.slots or _OPTIMIZER_CHILDREN & {n for n, _ in node.children}:
                continue
            paths[child] = f"{paths[parent]}/{name}" if paths[parent] else name
            queue.append(child)
    by_key = {graph.key_of(node): path for node, path in paths.items() if graph.key_of(node)}
    return [e._replace(name=by_key[e.key]) if e.key.endswith(_VALUE_SUFFIX) and by_key.get(e.key) else e
            for e in entries]


def _crossing(entries: list, infos: list) -> bool | None:
    """Whether the checkpoint's names are torch's, when they and the variables are of different
    frameworks and some variable has a layer kind; None when they are not."""
    if not infos or not entries:
        return None
    torch_checkpoint = all(_is_torch_name(e.name) for e in entries)
    if torch_checkpoint == (infos[0].framework == "torch") or not any(getattr(i, "layer_kind", None) for i in infos):
        return None
    return torch_checkpoint


def _family(tensors: dict, has_embeddings: bool) -> str | None:
    """The layer family of a layer's ``{local name: shape}``, whichever framework saved it."""
    names = set(tensors)
    leaves = {n.rpartition("/")[2].lstrip("_") for n in names}
    if any(n.startswith(("in_proj", "q_proj", "out_proj.")) or n.split("/")[0] in _ATTENTION_PARTS for n in names):
        return "attention"
    gates = [s for n, s in tensors.items() if n in ("weight_hh_l0", "recurrent_kernel") or n.endswith("_cell/recurrent_kernel")
             or n.endswith("cell/recurrent_kernel")]
    if not gates and all(n.isdigit() for n in leaves) and len(tensors) in (2, 3):
        shapes = [tensors[n] for n in sorted(tensors, key=lambda n: int(n.rpartition("/")[2]))]
        if len(shapes[1]) == 2 and shapes[1][1] in (3 * shapes[1][0], 4 * shapes[1][0]) and len(shapes[0]) == 2:
            gates = [shapes[1]]  # a Keras recurrent cell by position: kernel, recurrent_kernel [u, 3u or 4u]
    if gates:
        rows, cols = gates[0]
        return "lstm" if 4 * min(rows, cols) == max(rows, cols) else "gru" if 3 * min(rows, cols) == max(rows, cols) else None
    if leaves & {"running_mean", "moving_mean"}:
        return "batchnorm"
    if leaves & {"gamma", "beta"}:
        return "layernorm"
    if "embeddings" in leaves:
        return "embedding"
    shapes = list(tensors.values())
    if all(n.isdigit() for n in leaves) and len(shapes) == 4 and all(len(s) == 1 for s in shapes):
        return "batchnorm"
    main = max(shapes, key=len, default=())  # the kernel / weight, whatever the saved order
    if len(main) == 1 and all(s == main for s in shapes):
        return "layernorm"
    if 3 <= len(main) <= 5:
        return "conv"
    if len(main) == 2:
        return "embedding" if len(shapes) == 1 and has_embeddings and not leaves & {"kernel"} else "dense"
    return None


def _target_family(kind: str) -> str | None:
    if kind in _FAMILY_OF_KIND:
        return _FAMILY_OF_KIND[kind]
    if kind.lower().startswith("conv"):
        return "conv"
    return "batchnorm" if kind.startswith("BatchNorm") else None


def _target_layers(infos) -> dict:
    """``{layer path: (kind, {local name: info})}`` in the model's order (variables without a layer kind left out)."""
    layers: dict = {}
    for info in infos:
        if not getattr(info, "layer_kind", None):
            continue
        layer = info.layer or ""
        separator = "." if info.framework == "torch" else "/"
        local = info.name[len(layer) + 1:] if layer and info.name.startswith(layer + separator) else info.name
        layers.setdefault(layer, (info.layer_kind, {}))[1][local] = info
    return layers


def _words(torch_side: bool) -> str:
    return "torch module" if torch_side else "Keras layer"


#: Layer names that are positions, not names (torch's ``0``, Keras' ``layer_with_weights-0``,
#: ``_operations/1``): positions of two frameworks count different things, so they never pair by name.
_POSITION = re.compile(r"^(\d+|layer_with_weights-\d+|layer-\d+)$")


def _segments(path: str) -> tuple:
    return tuple(s for s in re.split(r"[/.]", path) if s)


def _without_common_scope(paths: dict) -> dict:
    """``{path: segments}`` with the leading segments every path shares dropped (a Keras model's
    name, ``model/``, ``layers/``), each path keeping at least its last segment."""
    segments = list(paths.values())
    if not segments:
        return {}
    common = 0
    shortest = min(len(s) for s in segments)
    while common < shortest - 1 and len({s[common] for s in segments}) == 1:
        common += 1
    return {p: s[common:] for p, s in paths.items()}


def _named_pairs(by_family: dict, wanted: dict, source_paths: list, target_paths: list) -> dict:
    """``{family: [(checkpoint layer, model layer)]}`` of layers whose names match: exactly, or
    with ``/`` and ``.`` alike, or once a leading scope common to all of a side's layers is
    dropped (in that order of preference). A name that is a position, or that matches more than
    one layer of the family, pairs nothing: order decides for those."""
    full_source = {p: _segments(p) for p in source_paths}
    full_target = {p: _segments(p) for p in target_paths}
    short_source, short_target = _without_common_scope(full_source), _without_common_scope(full_target)
    views = [(full_source, full_target), (short_source, full_target), (full_source, short_target),
             (short_source, short_target)]
    named: dict = {}
    for family, paths in wanted.items():
        sources, targets, found = list(by_family.get(family, [])), list(paths), []
        for source_view, target_view in views:
            keys: dict = {}
            for source in sources:
                keys.setdefault(source_view[source], []).append(source)
            target_keys = [target_view[t] for t in targets]
            for target in list(targets):
                key = target_view[target]
                candidates = keys.get(key, [])
                if key and len(candidates) == 1 and target_keys.count(key) == 1 and not _POSITION.match(key[-1]):
                    found.append((candidates[0], target))
                    sources.remove(candidates[0])
                    targets.remove(target)
        named[family] = found
    return named


def cross_framework_matches(ckpt, infos, by_name: bool = True) -> CrossMatch | None:
    """Pair a checkpoint's layers with the variables' layers when their frameworks differ.

    Parameters
    ----------
    ckpt : Checkpoint
        The opened checkpoint (its ``entries``: ``name``, ``shape``, ``kind``).
    infos : iterable of VarInfo
        The plan's variables, with ``framework``, ``layer`` and ``layer_kind``.
    by_name : bool
        False: every layer pairs by order within its family, whatever the names say
        (``plan_restore(..., match="order")`` into a torch module).

    Returns
    -------
    CrossMatch or None
        None when the checkpoint's names and the variables are of one framework (torch's
        ``x.weight`` on both sides, or TF / Keras names on both), or no variable has a layer kind.
    """
    infos = list(infos)
    entries = [e for e in ckpt.entries if e.kind == "variable"]
    torch_checkpoint = _crossing(entries, infos)
    if torch_checkpoint is None:
        return None
    torch_target = not torch_checkpoint
    source_layers = checkpoint_layers(entries if torch_checkpoint else _through_the_model(ckpt, entries),
                                      torch_checkpoint)
    target_layers = _target_layers(infos)
    has_embeddings = any(kind == "Embedding" for kind, _ in target_layers.values())
    by_family: dict = {}
    for path, tensors in source_layers.items():
        family = _family({n: tuple(e.shape) for n, e in tensors.items()}, has_embeddings)
        by_family.setdefault(family, []).append(path)
    wanted: dict = {}
    pairs, problems, hints = {}, [], []
    for path, (kind, tensors) in target_layers.items():
        family = _target_family(kind)
        if family is None or kind not in LAYOUTS:
            hints.append(f"{_words(torch_target)} '{path}' ({kind}): no layout known for a {kind}; left to names and rules")
            continue
        wanted.setdefault(family, []).append(path)
    named = _named_pairs(by_family, wanted, list(source_layers), list(target_layers)) if by_name else {}
    for family, paths in wanted.items():
        by_name = {t: s for s, t in named.get(family, [])}
        found = [s for s in by_family.get(family, []) if s not in by_name.values()]
        rest = [t for t in paths if t not in by_name]
        ordered = []
        if len(found) != len(rest):
            named_note = " not paired by name" if by_name else ""
            problems.append((None, None, f"the checkpoint has {count_of(len(found), family + ' layer')}{named_note} "
                                         f"({', '.join(found) or 'none'}), the model {len(rest)} ({', '.join(rest)}): "
                                         "which goes where cannot be told"))
        else:
            ordered = list(zip(found, rest))
        chosen = {t: (s, "by name") for t, s in by_name.items()}
        chosen.update({t: (s, "by order") for s, t in ordered})
        for target_path in [t for t in paths if t in chosen]:  # the model's order
            source_path, how = chosen[target_path]
            kind, tensors = target_layers[target_path]
            source = source_layers[source_path]
            try:
                mappings = map_layer(kind, {n: i.shape for n, i in tensors.items()},
                                     {n: tuple(e.shape) for n, e in source.items()})
            except LayoutError as error:
                message = (f"{_words(torch_checkpoint)} '{source_path}' -> {_words(torch_target)} '{target_path}' "
                           f"({how}): {error}")
                problems.extend((info.name, None, message) for info in tensors.values())
                continue
            for m in mappings:
                pairs[tensors[m.target].name] = (tuple(source[s].key for s in m.sources), m.transform)
            hints.append(f"{_words(torch_checkpoint)} '{source_path}' -> {_words(torch_target)} '{target_path}' "
                         f"({kind}), {how}")
    return CrossMatch(pairs, problems, hints)


class KeyLayouts:
    """Which keys, through which transform, a variable reads when a key is picked for it by hand.

    The derivation of :func:`cross_framework_matches` for one pick: the picked key's layer is
    paired with the variable's layer through :func:`~ckptwidgets.layouts.map_layer`. Built once
    per plan (the layers of both sides are grouped once; each pair of layers is mapped once), so
    that a dropdown can ask about every key it offers.

    Parameters
    ----------
    ckpt : Checkpoint
    infos : dict or iterable of VarInfo
        The plan's variables, with ``framework``, ``layer`` and ``layer_kind``.

    Attributes
    ----------
    crosses : bool
        True when the checkpoint and the variables are of different frameworks (what
        :func:`cross_framework_matches` pairs); else every pick is read as it is.
    """

    def __init__(self, ckpt, infos):
        self._infos = {i.name: i for i in (infos.values() if hasattr(infos, "values") else infos)}
        self._ckpt = ckpt
        entries = [e for e in ckpt.entries if e.kind == "variable"]
        torch_checkpoint = _crossing(entries, list(self._infos.values()))
        self.crosses = torch_checkpoint is not None
        self._mapped: dict = {}  # (model layer, checkpoint layer) -> {variable: (keys, Transform)} or a message
        if not self.crosses:
            return
        self._words = _words(torch_checkpoint), _words(not torch_checkpoint)
        self._source = checkpoint_layers(entries if torch_checkpoint else _through_the_model(ckpt, entries),
                                         torch_checkpoint)
        self._layer_of_key = {e.key: path for path, tensors in self._source.items() for e in tensors.values()}
        self._target = _target_layers(self._infos.values())
        self._layer_of_name = {i.name: path for path, (_kind, tensors) in self._target.items() for i in tensors.values()}
        has_embeddings = any(kind == "Embedding" for kind, _ in self._target.values())
        self._family = {path: _family({n: tuple(e.shape) for n, e in tensors.items()}, has_embeddings)
                        for path, tensors in self._source.items()}

    def pick(self, name: str, key: str):
        """``(keys, Transform)`` that ``name`` reads when ``key`` is picked for it, or a message
        naming both shapes when that cannot be decided.

        ``keys`` is ``(key,) + the extra keys the transform needs`` (an LSTM's bias pair). A
        variable whose layer has no known layout, or a plan within one framework, reads the key
        as it is (``IDENTITY``); the shape check then does its work.
        """
        info, entry = self._infos[name], self._ckpt.find(key)
        if entry is None:
            return f"key {key!r} is not in the checkpoint"
        key = entry.key
        # A shadow has its variable's layout: decide with the variable's key, then read the averages.
        averaged = entry.kind == "ema" and entry.base in self._layer_of_key
        if averaged:
            key = entry.base
        target_path = self._layer_of_name.get(name) if self.crosses else None
        if target_path is None or self._target[target_path][0] not in LAYOUTS:
            return (key,), IDENTITY
        head = f"{name!r} {shape_text(info.shape or ())} cannot read {key!r} {shape_text(entry.shape)}"
        source_path = self._layer_of_key.get(key)
        if source_path is None:
            return f"{head}: the key is no layer's weight, so its layout cannot be told"
        pairing = f"{self._words[0]} '{source_path}' -> {self._words[1]} '{target_path}'"
        mapped = self._map(target_path, source_path)
        if isinstance(mapped, str):
            return f"{head}: {pairing}: {mapped}"
        if name not in mapped:
            return f"{head}: {pairing}: {self._target[target_path][0]} {name!r} reads nothing of that layer"
        keys, transform = mapped[name]
        if keys[0] != key:
            return (f"{head}: with {self._words[0]} '{source_path}' it reads {' + '.join(map(repr, keys))} "
                    f"({transform.name}); pick {keys[0]!r}")
        if averaged:
            shadows = self._ckpt.ema_shadows
            keys = tuple(shadows[k].key if k in shadows else k for k in keys)
        return keys, transform

    def fits(self, name: str, key: str) -> bool:
        """True when the transform :meth:`pick` gives makes the variable's shape and dtype from ``key``."""
        picked = self.pick(name, key)
        if isinstance(picked, str):
            return False
        info, (keys, transform) = self._infos[name], picked
        entries = [self._ckpt.find(k) for k in keys]
        try:
            shape = transform.shape(*(e.shape for e in entries))
        except (ValueError, TypeError, IndexError):
            return False
        wanted = info.shape
        return (entries[0].dtype == info.dtype and (wanted is None or (
            len(wanted) == len(shape) and all(w is None or w == s for w, s in zip(wanted, shape)))))

    def fitting(self, name: str) -> list:
        """The keys :meth:`pick` gives ``name`` a transform for: at most one per checkpoint layer
        of its layer's family, in the checkpoint's layer order."""
        target_path = self._layer_of_name.get(name) if self.crosses else None
        if target_path is None or self._target[target_path][0] not in LAYOUTS:
            return []
        family = _target_family(self._target[target_path][0])
        found = []
        for source_path in self._source:
            if self._family[source_path] == family:
                mapped = self._map(target_path, source_path)
                if not isinstance(mapped, str) and name in mapped and self.fits(name, mapped[name][0][0]):
                    found.append(mapped[name][0][0])
        return found

    def _map(self, target_path: str, source_path: str):
        """``{variable name: (keys, Transform)}`` of a model layer from a checkpoint layer, or why not."""
        pair = (target_path, source_path)
        if pair not in self._mapped:
            kind, tensors = self._target[target_path]
            source = self._source[source_path]
            try:
                mappings = map_layer(kind, {n: i.shape for n, i in tensors.items()},
                                     {n: tuple(e.shape) for n, e in source.items()})
            except LayoutError as error:
                self._mapped[pair] = str(error)
            else:
                self._mapped[pair] = {tensors[m.target].name: (tuple(source[s].key for s in m.sources), m.transform)
                                      for m in mappings}
        return self._mapped[pair]


def transform_for_key(ckpt, infos, variable, key):
    """How one variable reads one key of a checkpoint of the other framework, picked by hand.

    Parameters
    ----------
    ckpt : Checkpoint
    infos : dict or iterable of VarInfo
        The plan's variables (the variable's whole layer is mapped, as :func:`map_layer` needs).
    variable : str or VarInfo
        The variable (its ``layer``, ``layer_kind`` and ``framework`` say its layer).
    key : str
        The picked checkpoint key.

    Returns
    -------
    tuple or str
        ``(keys, Transform)`` (``keys``: ``key`` first, then the extra keys the transform reads)
        when the mapping of the variable's layer from the key's layer reads exactly that key for
        the variable; else a message naming both names and shapes (a bias picked for a weight,
        layers that cannot be paired).
    """
    name = variable if isinstance(variable, str) else variable.name
    return KeyLayouts(ckpt, infos).pick(name, key)
