"""The object graph a TF2 (``tf.train.Checkpoint``) checkpoint stores beside its tensors.

A TF2 checkpoint's keys are one path per saved object (the first one a breadth-first walk
from the root finds), but an object can be reachable under several: a Keras 3 model's
kernel is ``model/_functional/_operations/1/_kernel`` *and*
``optimizer/_trainable_variables/0``, and the key says only the latter. TensorFlow restores
by walking this graph from the root and matching children by their local names, so what a
key is called matters less than where its node sits. The entry
``_CHECKPOINTABLE_OBJECT_GRAPH`` (a ``TrackableObjectGraph`` proto) says where; this module
parses it without TensorFlow.

Example
-------
>>> from ckptwidgets._protos import TrackableObjectGraph
>>> proto = TrackableObjectGraph()
>>> root, model, opt, kernel, tvars = (proto.nodes.add() for _ in range(5))
>>> edges = [(root, 1, "model"), (root, 2, "optimizer"), (model, 3, "kernel"), (opt, 4, "_trainable_variables"), (tvars, 3, "0")]
>>> for parent, child, name in edges:
...     _ = parent.children.add(node_id=child, local_name=name)
>>> _ = kernel.attributes.add(name="VARIABLE_VALUE", checkpoint_key="model/kernel/.ATTRIBUTES/VARIABLE_VALUE")
>>> graph = ObjectGraph.parse(proto.SerializeToString())
>>> graph.paths[3], sorted(graph.aliases())
('model/kernel', ['model/kernel', 'optimizer/_trainable_variables/0'])
>>> graph.key_of(3)
'model/kernel/.ATTRIBUTES/VARIABLE_VALUE'
"""
from __future__ import annotations

from collections import deque
from typing import NamedTuple

from ._protos import DecodeError, TrackableObjectGraph

__all__ = ["ObjectGraph", "Node", "VALUE_ATTRIBUTE", "escape"]

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
        try:
            proto = TrackableObjectGraph.FromString(bytes(data))
        except (DecodeError, TypeError) as error:
            raise ValueError(f"not a TrackableObjectGraph: {error}") from None
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

    def aliases(self) -> dict[str, int]:
        """``{path: node id}`` for every path one edge away from a breadth-first path, for
        nodes holding a value: the key's own path and each other parent's path plus the
        child's local name (``model/_functional/_operations/1/_kernel``). Linear in the edges."""
        out: dict[str, int] = {}
        for parent, node in enumerate(self.nodes):
            prefix = self.paths[parent]
            if prefix is None:
                continue
            for name, child in node.children:
                if VALUE_ATTRIBUTE in self.nodes[child].attributes:
                    name = escape(name)
                    out.setdefault(f"{prefix}/{name}" if prefix else name, child)
        return out

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
