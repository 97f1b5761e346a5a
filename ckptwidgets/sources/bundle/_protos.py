"""The protocol buffer messages of a checkpoint index, built here instead of imported from TF.

Private helper of :mod:`ckptwidgets.sources.bundle._index`. A checkpoint's ``.index`` holds a
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

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
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
# tensor_slice.proto, versions.proto, types.proto), as a FileDescriptorProto in text form.
_FILE = """
name: "ckptwidgets/tensor_bundle.proto"
package: "tensorflow"
syntax: "proto3"
enum_type {
  name: "DataType"
  value { name: "DT_INVALID" number: 0 }
}
message_type {
  name: "TensorShapeProto"
  field { name: "dim" number: 2 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: ".tensorflow.TensorShapeProto.Dim" }
  field { name: "unknown_rank" number: 3 label: LABEL_OPTIONAL type: TYPE_BOOL }
  nested_type {
    name: "Dim"
    field { name: "size" number: 1 label: LABEL_OPTIONAL type: TYPE_INT64 }
    field { name: "name" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING }
  }
}
message_type {
  name: "TensorSliceProto"
  field { name: "extent" number: 1 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: ".tensorflow.TensorSliceProto.Extent" }
  nested_type {
    name: "Extent"
    field { name: "start" number: 1 label: LABEL_OPTIONAL type: TYPE_INT64 }
    # In a oneof so that HasField tells a full extent (no length) from a length of 0.
    field { name: "length" number: 2 label: LABEL_OPTIONAL type: TYPE_INT64 oneof_index: 0 }
    oneof_decl { name: "has_length_hack" }
  }
}
message_type {
  name: "VersionDef"
  field { name: "producer" number: 1 label: LABEL_OPTIONAL type: TYPE_INT32 }
  field { name: "min_consumer" number: 2 label: LABEL_OPTIONAL type: TYPE_INT32 }
  field { name: "bad_consumers" number: 3 label: LABEL_REPEATED type: TYPE_INT32 }
}
message_type {
  name: "BundleHeaderProto"
  field { name: "num_shards" number: 1 label: LABEL_OPTIONAL type: TYPE_INT32 }
  field { name: "endianness" number: 2 label: LABEL_OPTIONAL type: TYPE_ENUM type_name: ".tensorflow.BundleHeaderProto.Endianness" }
  field { name: "version" number: 3 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".tensorflow.VersionDef" }
  enum_type {
    name: "Endianness"
    value { name: "LITTLE" number: 0 }
    value { name: "BIG" number: 1 }
  }
}
message_type {
  name: "BundleEntryProto"
  field { name: "dtype" number: 1 label: LABEL_OPTIONAL type: TYPE_ENUM type_name: ".tensorflow.DataType" }
  field { name: "shape" number: 2 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".tensorflow.TensorShapeProto" }
  field { name: "shard_id" number: 3 label: LABEL_OPTIONAL type: TYPE_INT32 }
  field { name: "offset" number: 4 label: LABEL_OPTIONAL type: TYPE_INT64 }
  field { name: "size" number: 5 label: LABEL_OPTIONAL type: TYPE_INT64 }
  field { name: "crc32c" number: 6 label: LABEL_OPTIONAL type: TYPE_FIXED32 }
  field { name: "slices" number: 7 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: ".tensorflow.TensorSliceProto" }
}
# trackable_object_graph.proto: what a TF2 checkpoint's _CHECKPOINTABLE_OBJECT_GRAPH holds.
# registered_saver and has_checkpoint_values (a google.protobuf.BoolValue) are described by
# messages of the same wire format, so that a pruned graph can clear or keep them.
message_type {
  name: "TrackableObjectGraph"
  field { name: "nodes" number: 1 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: ".tensorflow.TrackableObjectGraph.TrackableObject" }
  nested_type {
    name: "TrackableObject"
    field { name: "children" number: 1 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: ".tensorflow.TrackableObjectGraph.TrackableObject.ObjectReference" }
    field { name: "attributes" number: 2 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: ".tensorflow.TrackableObjectGraph.TrackableObject.SerializedTensor" }
    field { name: "slot_variables" number: 3 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: ".tensorflow.TrackableObjectGraph.TrackableObject.SlotVariableReference" }
    nested_type {
      name: "ObjectReference"
      field { name: "node_id" number: 1 label: LABEL_OPTIONAL type: TYPE_INT32 }
      field { name: "local_name" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING }
    }
    nested_type {
      name: "SerializedTensor"
      field { name: "name" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
      field { name: "full_name" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING }
      field { name: "checkpoint_key" number: 3 label: LABEL_OPTIONAL type: TYPE_STRING }
    }
    nested_type {
      name: "SlotVariableReference"
      field { name: "original_variable_node_id" number: 1 label: LABEL_OPTIONAL type: TYPE_INT32 }
      field { name: "slot_name" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING }
      field { name: "slot_variable_node_id" number: 3 label: LABEL_OPTIONAL type: TYPE_INT32 }
    }
    field { name: "registered_saver" number: 4 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".tensorflow.TrackableObjectGraph.TrackableObject.RegisteredSaver" }
    field { name: "has_checkpoint_values" number: 5 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".tensorflow.TrackableObjectGraph.TrackableObject.BoolValue" }
    nested_type {
      name: "RegisteredSaver"
      field { name: "name" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
      field { name: "object_name" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING }
    }
    nested_type {
      name: "BoolValue"
      field { name: "value" number: 1 label: LABEL_OPTIONAL type: TYPE_BOOL }
    }
  }
}
"""


def _message_classes() -> dict:
    # A pool of our own: TensorFlow's generated modules register the same full names in
    # the default pool, and both may be loaded in one process.
    pool = descriptor_pool.DescriptorPool()
    pool.Add(text_format.Parse(_FILE, descriptor_pb2.FileDescriptorProto()))
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
