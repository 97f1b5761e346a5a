"""The protocol buffer messages of a checkpoint index, built here instead of imported from TF.

Private helper of :mod:`ckptwidgets.sources.bundle` (its index, writer and object graph). A checkpoint's ``.index`` holds a
``BundleHeaderProto`` and one ``BundleEntryProto`` per tensor
(``tensorflow/core/protobuf/tensor_bundle.proto``). TensorFlow's generated modules for
them come with ``import tensorflow``; we describe the same messages (same names, field
numbers and types, so the same wire format) to the ``protobuf`` runtime ourselves, in a
private descriptor pool, at import time. :mod:`tests.test_tensordata` checks that
messages serialized by either side parse identically on the other.

``dtype`` is TensorFlow's ``DataType``, a proto3 (open) enum: every number parses and is
kept as that number, so the enum lists only ``DT_INVALID`` here and
:mod:`ckptwidgets.sources._dtypes` names the numbers.

Example
-------
>>> entry = BundleEntryProto.FromString(b"\\x08\\x01\\x12\\x04\\x12\\x02\\x08\\x03\\x28\\x0c")
>>> entry.dtype, [d.size for d in entry.shape.dim], entry.size
(1, [3], 12)
"""
from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

__all__ = [
    "BundleEntryProto",
    "BundleHeaderProto",
    "DecodeError",
    "TensorShapeProto",
    "TensorSliceProto",
    "VersionDef",
    "TrackableObjectGraph",
]

# The messages of tensor_bundle.proto and of what it imports (tensor_shape.proto,
# tensor_slice.proto, versions.proto, types.proto), and of trackable_object_graph.proto
# (what a TF2 checkpoint's _CHECKPOINTABLE_OBJECT_GRAPH holds), field by field as the
# .proto files declare them: "[repeated] [oneof <name>] [enum] <type> <name> = <number>".
# A message's nested messages follow it (their names are dotted).
_MESSAGES = {
    "TensorShapeProto": ["repeated TensorShapeProto.Dim dim = 2", "bool unknown_rank = 3"],
    "TensorShapeProto.Dim": ["int64 size = 1", "string name = 2"],
    "TensorSliceProto": ["repeated TensorSliceProto.Extent extent = 1"],
    # length in a oneof, as TF declares it, so that HasField tells a full extent (no length) from 0.
    "TensorSliceProto.Extent": ["int64 start = 1", "oneof has_length_hack int64 length = 2"],
    "VersionDef": ["int32 producer = 1", "int32 min_consumer = 2", "repeated int32 bad_consumers = 3"],
    "BundleHeaderProto": ["int32 num_shards = 1", "enum BundleHeaderProto.Endianness endianness = 2",
                          "VersionDef version = 3"],
    "BundleEntryProto": ["enum DataType dtype = 1", "TensorShapeProto shape = 2", "int32 shard_id = 3", "int64 offset = 4",
                         "int64 size = 5", "fixed32 crc32c = 6", "repeated TensorSliceProto slices = 7"],
    "TrackableObjectGraph": ["repeated TrackableObjectGraph.TrackableObject nodes = 1"],
    # registered_saver and has_checkpoint_values (a google.protobuf.BoolValue) are described by
    # messages of the same wire format, so that a pruned graph can clear or keep them.
    "TrackableObjectGraph.TrackableObject": [
        "repeated TrackableObjectGraph.TrackableObject.ObjectReference children = 1",
        "repeated TrackableObjectGraph.TrackableObject.SerializedTensor attributes = 2",
        "repeated TrackableObjectGraph.TrackableObject.SlotVariableReference slot_variables = 3",
        "TrackableObjectGraph.TrackableObject.RegisteredSaver registered_saver = 4",
        "TrackableObjectGraph.TrackableObject.BoolValue has_checkpoint_values = 5",
    ],
    "TrackableObjectGraph.TrackableObject.ObjectReference": ["int32 node_id = 1", "string local_name = 2"],
    "TrackableObjectGraph.TrackableObject.SerializedTensor": ["string name = 1", "string full_name = 2",
                                                             "string checkpoint_key = 3"],
    "TrackableObjectGraph.TrackableObject.SlotVariableReference": [
        "int32 original_variable_node_id = 1", "string slot_name = 2", "int32 slot_variable_node_id = 3"],
    "TrackableObjectGraph.TrackableObject.RegisteredSaver": ["string name = 1", "string object_name = 2"],
    "TrackableObjectGraph.TrackableObject.BoolValue": ["bool value = 1"],
}
# DataType is an open enum: every number parses and is kept (:mod:`ckptwidgets.sources._dtypes` names them).
_ENUMS = {"DataType": {"DT_INVALID": 0}, "BundleHeaderProto.Endianness": {"LITTLE": 0, "BIG": 1}}
_SCALARS = {"int32", "int64", "bool", "string", "fixed32"}


def _file() -> descriptor_pb2.FileDescriptorProto:
    """:data:`_MESSAGES` and :data:`_ENUMS` as the FileDescriptorProto ``protoc`` makes of them."""
    Field = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name="ckptwidgets/tensor_bundle.proto", package="tensorflow", syntax="proto3")
    messages = {}

    def container(name: str):  # where a (dotted) message or enum is declared
        parent, _, _ = name.rpartition(".")
        return messages[parent].nested_type if parent else file.message_type

    for name, fields in _MESSAGES.items():
        message = messages[name] = container(name).add(name=name.rpartition(".")[2])
        for spec in fields:
            words = spec.split()
            label = Field.LABEL_REPEATED if words[0] == "repeated" else Field.LABEL_OPTIONAL
            words = words[1:] if words[0] == "repeated" else words
            field = message.field.add(label=label, name=words[-3], number=int(words[-1]))
            if words[0] == "oneof":
                field.oneof_index = len(message.oneof_decl)
                message.oneof_decl.add(name=words[1])
                words = words[2:]
            kind = words[-4]
            if kind in _SCALARS:
                field.type = Field.Type.Value("TYPE_" + kind.upper())
            else:
                field.type = Field.TYPE_ENUM if words[0] == "enum" else Field.TYPE_MESSAGE
                field.type_name = ".tensorflow." + kind
    for name, values in _ENUMS.items():
        parent = name.rpartition(".")[0]
        enum = (messages[parent].enum_type if parent else file.enum_type).add(name=name.rpartition(".")[2])
        for value_name, number in values.items():
            enum.value.add(name=value_name, number=number)
    return file


def _message_classes() -> dict:
    # A pool of our own: TensorFlow's generated modules register the same full names in
    # the default pool, and both may be loaded in one process.
    pool = descriptor_pool.DescriptorPool()
    pool.Add(_file())
    names = ("BundleEntryProto", "BundleHeaderProto", "TensorShapeProto", "TensorSliceProto", "VersionDef",
             "TrackableObjectGraph")
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow." + name)) for name in names}


_CLASSES = _message_classes()
BundleEntryProto = _CLASSES["BundleEntryProto"]
BundleHeaderProto = _CLASSES["BundleHeaderProto"]
TensorShapeProto = _CLASSES["TensorShapeProto"]
TensorSliceProto = _CLASSES["TensorSliceProto"]
VersionDef = _CLASSES["VersionDef"]
TrackableObjectGraph = _CLASSES["TrackableObjectGraph"]
