"""The object graph a TF2 (``tf.train.Checkpoint``) checkpoint stores beside its tensors.

A TF2 checkpoint's keys are one path per saved object (the first one a breadth-first walk
from the root finds), but an object can be reachable under several: a Keras 3 model's
kernel is ``model/_functional/_operations/1/_kernel`` *and*
``optimizer/_trainable_variables/0``, and the key says only the latter. TensorFlow restores
by walking this graph from the root and matching children by their local names, so what a
key is called matters less than where its node sits. The entry
``_CHECKPOINTABLE_OBJECT_GRAPH`` (a ``TrackableObjectGraph`` proto) says where; this module
parses it without TensorFlow. Private helper of :mod:`ckptwidgets.sources.bundle`, which
exposes :class:`ObjectGraph`, :data:`VALUE_ATTRIBUTE` and :func:`checkpoint_keys`.

Example
-------
>>> from ckptwidgets.sources.bundle._protos import TrackableObjectGraph
>>> proto = TrackableObjectGraph()
>>> root, model, opt, kernel, tvars = (proto.nodes.add() for _ in range(5))
>>> edges = [(root, 1, "model"), (root, 2, "optimizer"), (model, 3, "kernel"), (opt, 4, "_trainable_variables"), (tvars, 3, "0")]
>>> for parent, child, name in edges:
...     _ = parent.children.add(node_id=child, local_name=name)
>>> _ = kernel.attributes.add(name="VARIABLE_VALUE", checkpoint_key="model/kernel/.ATTRIBUTES/VARIABLE_VALUE")
>>> graph = ObjectGraph.parse(proto.SerializeToString())
>>> graph.paths[3], graph.walk(["optimizer", "_trainable_variables", "0"])
('model/kernel', 3)
>>> graph.key_of(3)
'model/kernel/.ATTRIBUTES/VARIABLE_VALUE'
"""
from __future__ import annotations

from collections import deque
from typing import NamedTuple

from ._protos import DecodeError, TrackableObjectGraph

__all__ = ["ObjectGraph", "Node", "VALUE_ATTRIBUTE", "escape", "checkpoint_keys", "prune"]

#: The attribute name of a variable's value (``<path>/.ATTRIBUTES/VARIABLE_VALUE``).
VALUE_ATTRIBUTE = "VARIABLE_VALUE"


def escape(local_name: str) -> str:
    """A local name as it appears in a key: TensorFlow's ``escape_local_name`` ("." -> "..",
    "/" -> ".S"), so that a path splits back into names at "/"."""
    if "." not in local_name and "/" not in local_name:
        return local_name
    return local_name.replace(".", "..").replace("/", ".S")


class Node(NamedTuple):
    """One saved object: its children ``[(local_name, node_id)]`` in the order the object
    tracked them, its attributes ``{attribute name: checkpoint key}``, and its slot variables
    ``[(original node id, slot name, slot node id)]`` (an optimizer's)."""

    children: tuple
    attributes: dict
    slots: tuple


class ObjectGraph:
    """A parsed ``TrackableObjectGraph``: node 0 is the root.

    Attributes
    ----------
    nodes : list of Node
    paths : list of str or None
        Each node's path from the root as TensorFlow writes it in keys (breadth-first, first
        found; ``""`` for the root, None for a node no child edge reaches).
    """

    def __init__(self, nodes: list[Node]):
        self.nodes = nodes
        self.paths = self._breadth_first_paths()

    @classmethod
    def parse(cls, data: bytes) -> ObjectGraph:
        """Parse the serialized proto; ``ValueError`` when it is not one."""
        proto = _proto(data)
        count = len(proto.nodes)
        nodes = []
        for node in proto.nodes:
            children = tuple((c.local_name, c.node_id) for c in node.children if 0 <= c.node_id < count)
            attributes = {a.name: a.checkpoint_key for a in node.attributes}
            slots = tuple(
                (s.original_variable_node_id, s.slot_name, s.slot_variable_node_id)
                for s in node.slot_variables
                if 0 <= s.original_variable_node_id < count and 0 <= s.slot_variable_node_id < count
            )
            nodes.append(Node(children, attributes, slots))
        return cls(nodes)

    def _breadth_first_paths(self) -> list:
        paths: list = [None] * len(self.nodes)
        if not self.nodes:
            return paths
        paths[0] = ""
        queue = deque([0])
        while queue:
            parent = queue.popleft()
            prefix = paths[parent]
            for name, child in self.nodes[parent].children:
                if paths[child] is None:
                    name = escape(name)
                    paths[child] = f"{prefix}/{name}" if prefix else name
                    queue.append(child)
        return paths

    def key_of(self, node_id: int) -> str | None:
        """The checkpoint key of a node's value (a variable's), or None."""
        return self.nodes[node_id].attributes.get(VALUE_ATTRIBUTE)

    def child(self, node_id: int, name: str) -> int | None:
        """The node a child edge ``name`` of ``node_id`` leads to, or None."""
        for local, child in self.nodes[node_id].children:
            if local == name:
                return child
        return None

    def walk(self, names) -> int | None:
        """The node reached from the root by the local names ``names`` (unescaped), or None."""
        node: int | None = 0
        for name in names:
            node = self.child(node, name) if node is not None else None
        return node


def _proto(data: bytes):
    try:
        return TrackableObjectGraph.FromString(bytes(data))
    except (DecodeError, TypeError) as error:
        raise ValueError(f"not a TrackableObjectGraph: {error}") from None


def checkpoint_keys(data: bytes) -> set[str]:
    """Every checkpoint key a serialized graph's attributes name; ``ValueError`` when it is no graph."""
    proto = _proto(data)
    return {attribute.checkpoint_key for node in proto.nodes for attribute in node.attributes}


def prune(data: bytes, kept_keys) -> bytes:
    """The serialized graph naming only ``kept_keys``: what a checkpoint that left keys out needs.

    TensorFlow's object-based restore reads every attribute of every node it matches, so a
    graph naming a key the file lacks fails (``NotFoundError: Key ... not found``) as soon
    as the reader's model has that object (an optimizer, a ``saved_model`` holding one).
    Attributes whose key is not kept go; so does every node whose contents all went (a
    variable of the optimizer, a slot, then the optimizer if nothing of it is left), the
    edges and slot references to it, and ``has_checkpoint_values`` is recomputed as
    TensorFlow computes it. Nodes that held nothing to begin with (a layer without
    weights) stay: the graph stays the model's.
    """
    kept_keys = set(kept_keys)
    proto = _proto(data)
    nodes = proto.nodes
    had_contents = [bool(n.children or n.attributes or n.slot_variables or n.HasField("registered_saver")) for n in nodes]
    removed: set[int] = set()
    pruned = False
    for node in nodes:
        kept = [a for a in node.attributes if a.checkpoint_key in kept_keys]
        if len(kept) != len(node.attributes):
            del node.attributes[:]
            node.attributes.extend(kept)
            pruned = True
    if not pruned:
        return bytes(data)
    changed = True
    while changed:  # a removed node can empty its parents: repeat until nothing more goes
        changed = False
        for node_id, node in enumerate(nodes):
            if node_id in removed:
                continue
            _keep_references(node, removed)
            empty = not (node.children or node.attributes or node.slot_variables or node.HasField("registered_saver"))
            if node_id and empty and had_contents[node_id]:
                removed.add(node_id)
                changed = True
    return _renumbered(proto, removed).SerializeToString()


def _keep_references(node, removed: set) -> None:
    """Drop ``node``'s child edges and slot references that lead to a removed node."""
    children = [c for c in node.children if c.node_id not in removed]
    if len(children) != len(node.children):
        del node.children[:]
        node.children.extend(children)
    slots = [s for s in node.slot_variables
             if s.original_variable_node_id not in removed and s.slot_variable_node_id not in removed]
    if len(slots) != len(node.slot_variables):
        del node.slot_variables[:]
        node.slot_variables.extend(slots)


def _renumbered(proto, removed: set):
    """A new graph without the ``removed`` nodes, the others' ids closed up."""
    new_id = {}
    for node_id in range(len(proto.nodes)):
        if node_id not in removed:
            new_id[node_id] = len(new_id)
    out = TrackableObjectGraph()
    for node_id, node in enumerate(proto.nodes):
        if node_id in removed:
            continue
        copy = out.nodes.add()
        copy.CopyFrom(node)
        for child in copy.children:
            child.node_id = new_id[child.node_id]
        for slot in copy.slot_variables:
            slot.original_variable_node_id = new_id[slot.original_variable_node_id]
            slot.slot_variable_node_id = new_id[slot.slot_variable_node_id]
    _mark_checkpoint_values(out)
    return out


def _mark_checkpoint_values(proto) -> None:
    """``has_checkpoint_values`` as TensorFlow sets it: a node with attributes or a registered
    saver, and every node above one by child edges (slot references do not count)."""
    if not any(node.HasField("has_checkpoint_values") for node in proto.nodes):
        return  # an older writer that did not set it: TensorFlow then looks at the contents
    parents: dict[int, set] = {}
    for node_id, node in enumerate(proto.nodes):
        for child in node.children:
            parents.setdefault(child.node_id, set()).add(node_id)
    marked = {i for i, node in enumerate(proto.nodes) if node.attributes or node.HasField("registered_saver")}
    queue = deque(marked)
    while queue:
        for parent in parents.pop(queue.popleft(), ()):
            if parent not in marked:
                marked.add(parent)
                queue.append(parent)
    for node_id, node in enumerate(proto.nodes):
        node.has_checkpoint_values.value = node_id in marked
