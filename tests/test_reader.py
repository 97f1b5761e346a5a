"""open_checkpoint on real checkpoints of every kind, and on damaged files.

Damaged indexes are written two ways: by cutting or overwriting bytes of a real index
(TensorFlow's block checksums then reject them), and by :func:`_bundle_bytes.write_table`,
an SSTable writer with correct checksums whose entries carry what TensorFlow's C++ reader
aborts the process on. Those run in a subprocess, so a regression fails one test instead
of killing the test run.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import tensor_bundle_pb2

import ckptwidgets
from ckptwidgets import CheckpointNotFoundError, CorruptCheckpointError, open_checkpoint
from ckptwidgets import reader as reader_module
from ckptwidgets.sources.bundle._index import scan
from ckptwidgets.sources.bundle._sstable import data_blocks
from ckptwidgets.reader import Checkpoint, Entry, classify
from ckptwidgets.sources.arrays import ArraySource

from _bundle_bytes import block_handles, reseal, varint, write_table

v1_ = tf.compat.v1


# --- helpers -----------------------------------------------------------------------------


def tf_listing(prefix):
    """What TensorFlow's own reader says: sorted (key, shape tuple, dtype name)."""
    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    dtypes = reader.get_variable_to_dtype_map()
    return [(k, tuple(shapes[k]), dtypes[k].name) for k in sorted(shapes)]


def listing(ckpt):
    return [(e.key, e.shape, e.dtype) for e in ckpt.entries]


def kinds(ckpt):
    return {e.key: (e.kind, e.base) for e in ckpt.entries}


def same_value(ours, theirs) -> bool:
    """Bit for bit: dtype, shape and bytes (element by element for strings)."""
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    if ours.dtype != theirs.dtype or ours.shape != theirs.shape:
        return False
    if ours.dtype == object:
        return ours.ravel().tolist() == theirs.ravel().tolist()
    return np.ascontiguousarray(ours).tobytes() == np.ascontiguousarray(theirs).tobytes()


def check_against_tensorflow(ckpt):
    """Entries equal TF's maps, every value read without TF equals get_tensor bit for bit,
    and the classification equals classify()."""
    assert listing(ckpt) == tf_listing(ckpt.prefix)
    reader = tf.train.load_checkpoint(ckpt.prefix)
    for e in ckpt.entries:
        assert same_value(ckpt.read(e.key), reader.get_tensor(e.key)), e.key
    shapes = {e.key: e.shape for e in ckpt.entries}
    given = {r.key for r in ckpt.source.records() if r.base is not None}  # from the object graph, not the keys
    for e in ckpt.entries[:300]:  # each call classifies the whole checkpoint again
        kind, base = classify(e.key, shapes)
        assert (kind, base) == (e.kind, e.base) or (e.key in given and (kind, base) == (e.kind, None)), e.key
        assert e.nbytes == int(np.prod(e.shape, dtype=np.int64)) * (
            0 if e.dtype in ("string", "resource", "variant") else tf.as_dtype(e.dtype).size
        )
        assert isinstance(e.shape, tuple) and all(type(d) is int for d in e.shape)


def graph_checkpoint(prefix, build):
    """Run ``build()`` in a fresh graph (returns ops to run once), save with a Saver."""
    graph = tf.Graph()
    with graph.as_default():
        ops = build()
        saver = v1_.train.Saver()
        with v1_.Session(graph=graph) as sess:
            sess.run(v1_.global_variables_initializer())
            if ops is not None:
                sess.run(ops)
            return saver.save(sess, str(prefix))


# --- index entries TensorFlow would not write (tables: tests/_bundle_bytes.py) ------------


def snappy_literal(data: bytes) -> bytes:
    """Valid snappy: the length, then the data as one literal."""
    n = len(data) - 1
    head = bytes([60 << 2]) + bytes([n]) if n >= 60 else bytes([n << 2])
    assert n < 256
    return varint(len(data)) + head + data


def header(num_shards=1, min_consumer=0) -> bytes:
    h = tensor_bundle_pb2.BundleHeaderProto(num_shards=num_shards)
    h.version.producer = 1
    h.version.min_consumer = min_consumer
    return h.SerializeToString()


def bundle_entry(dtype=1, dims=(1,), offset=0, size=4, slices=(), unknown_rank=False) -> bytes:
    e = tensor_bundle_pb2.BundleEntryProto(dtype=dtype, offset=offset, size=size)
    for d in dims:
        e.shape.dim.add(size=d)
    e.shape.unknown_rank = unknown_rank
    for piece in slices:
        s = e.slices.add()
        for start, length in piece:
            x = s.extent.add()
            x.start = start
            if length is not None:
                x.length = length
    return e.SerializeToString()


def slice_key(name: bytes, extents) -> bytes:
    """EncodeTensorNameSlice (OrderedCode) for small extents."""
    key = b"\x00" + name + b"\x00\x01" + bytes([1, len(extents)])
    for start, length in extents:
        key += bytes([0x80 + start, (0x80 + (-1 if length is None else length)) & 0xFF])
    return key


# --- name-based checkpoints --------------------------------------------------------------


def test_base_checkpoint(base_ckpt):
    ckpt = open_checkpoint(base_ckpt)
    assert ckpt.prefix == base_ckpt
    assert ckpt.entries == (
        Entry("v1", "v1", (1,), "float32", 4, "variable", None),
        Entry("v2", "v2", (1,), "float32", 4, "variable", None),
    )
    assert len(ckpt) == 2 and [e.key for e in ckpt] == ckpt.keys() == ["v1", "v2"]
    assert "v1" in ckpt and "v3" not in ckpt
    assert not ckpt.object_based
    assert ckpt.totals() == {"variable": (2, 8)}
    assert ckpt.files == [base_ckpt + ".index", base_ckpt + ".data-00000-of-00001"]
    assert ckpt.entries[0].size == 1
    check_against_tensorflow(ckpt)
    assert "2 entries (2 variable)" in repr(ckpt)


def test_read_gives_numpy_arrays(base_ckpt):
    ckpt = open_checkpoint(base_ckpt)
    value = ckpt.read("v2")
    assert isinstance(value, np.ndarray) and value.dtype == np.float32
    np.testing.assert_array_equal(value, np.array([2.0], np.float32))
    np.testing.assert_array_equal(ckpt.read("v1"), [1.0])


def test_unknown_key_suggests_close_keys(base_ckpt):
    ckpt = open_checkpoint(base_ckpt)
    with pytest.raises(KeyError) as info:
        ckpt["v3"]
    assert "'v3'" in str(info.value) and "Did you mean" in str(info.value) and "'v1'" in str(info.value)
    assert base_ckpt in str(info.value)
    with pytest.raises(KeyError):
        ckpt.read("vv1")
    with pytest.raises(KeyError) as info:
        ckpt["zzzzzz"]
    assert "Did you mean" not in str(info.value)
    assert ckpt.find("nothing") is None and ckpt.find("v1").key == "v1"


def test_prefix_index_folder_and_pathlike_open_the_same(base_ckpt):
    folder = os.path.dirname(base_ckpt)
    for path in (base_ckpt, base_ckpt + ".index", folder, folder + "/", pathlib.Path(base_ckpt), pathlib.Path(folder)):
        ckpt = open_checkpoint(path)
        assert ckpt.prefix == base_ckpt, path
        assert ckpt.keys() == ["v1", "v2"]
    same = open_checkpoint(base_ckpt)
    assert open_checkpoint(same) is same


def test_folder_without_checkpoint_file(tmp_path, base_ckpt):
    os.remove(tmp_path / "checkpoint")
    assert open_checkpoint(tmp_path).prefix == base_ckpt  # the only .index there
    shutil.copy(base_ckpt + ".index", tmp_path / "other.ckpt.index")
    with pytest.raises(CheckpointNotFoundError, match="2 checkpoints"):
        open_checkpoint(tmp_path)


def test_folder_opens_the_latest(tmp_path):
    graph = tf.Graph()
    with graph.as_default():
        v = v1_.Variable(1.0, name="v")
        saver = v1_.train.Saver()
        with v1_.Session(graph=graph) as sess:
            sess.run(v.initializer)
            saver.save(sess, str(tmp_path / "model"), global_step=1)
            sess.run(v.assign(7.0))
            last = saver.save(sess, str(tmp_path / "model"), global_step=2)
    ckpt = open_checkpoint(tmp_path)
    assert ckpt.prefix == last and last.endswith("model-2")
    assert ckpt.read("v") == np.float32(7.0)


def test_ema_shadows(ema_ckpt):
    ckpt = open_checkpoint(ema_ckpt)
    assert kinds(ckpt) == {
        "v": ("variable", None),
        "v/ExponentialMovingAverage": ("ema", "v"),
        "v2": ("variable", None),
        "v2/ExponentialMovingAverage": ("ema", "v2"),
    }
    assert ckpt["v/ExponentialMovingAverage"].shape == ()
    assert ckpt.read("v/ExponentialMovingAverage") == np.float32(0.099999905)
    assert ckpt.totals() == {"variable": (2, 8), "ema": (2, 8)}
    check_against_tensorflow(ckpt)


def test_adam_slots_ema_and_global_step(tmp_path):
    def build():
        w = v1_.Variable([[1.0, 2.0], [3.0, 4.0]], name="dense/kernel")
        b = v1_.Variable([0.5, 0.5], name="dense/bias")
        step = v1_.train.get_or_create_global_step()
        train = v1_.train.AdamOptimizer(0.1).minimize(v1_.reduce_sum(w) + v1_.reduce_sum(b), global_step=step)
        with tf.control_dependencies([train]):
            return v1_.train.ExponentialMovingAverage(0.9, num_updates=step).apply([w, b])

    ckpt = open_checkpoint(graph_checkpoint(tmp_path / "adam.ckpt", build))
    assert kinds(ckpt) == {
        "beta1_power": ("meta", None),
        "beta2_power": ("meta", None),
        "dense/bias": ("variable", None),
        "dense/bias/Adam": ("slot", "dense/bias"),
        "dense/bias/Adam_1": ("slot", "dense/bias"),
        "dense/bias/ExponentialMovingAverage": ("ema", "dense/bias"),
        "dense/kernel": ("variable", None),
        "dense/kernel/Adam": ("slot", "dense/kernel"),
        "dense/kernel/Adam_1": ("slot", "dense/kernel"),
        "dense/kernel/ExponentialMovingAverage": ("ema", "dense/kernel"),
        "global_step": ("meta", None),
    }
    assert ckpt["global_step"].dtype == "int64" and ckpt.read("global_step") == 1
    assert ckpt["dense/kernel/Adam"].shape == (2, 2) and ckpt["dense/kernel/Adam"].nbytes == 16
    assert ckpt.totals() == {"meta": (3, 16), "variable": (2, 24), "slot": (4, 48), "ema": (2, 24)}
    check_against_tensorflow(ckpt)


@pytest.mark.parametrize(
    "optimizer, slots",
    [
        (lambda: v1_.train.MomentumOptimizer(0.1, 0.9), ["Momentum"]),
        (lambda: v1_.train.RMSPropOptimizer(0.1), ["RMSProp", "RMSProp_1"]),
        (lambda: v1_.train.AdagradOptimizer(0.1), ["Adagrad"]),
    ],
)
def test_tf1_optimizer_slots(tmp_path, optimizer, slots):
    def build():
        w = v1_.Variable([1.0, 2.0], name="w")
        return optimizer().minimize(v1_.reduce_sum(w * w))

    ckpt = open_checkpoint(graph_checkpoint(tmp_path / "opt.ckpt", build))
    assert kinds(ckpt) == {"w": ("variable", None), **{f"w/{s}": ("slot", "w") for s in slots}}
    check_against_tensorflow(ckpt)


def test_slot_like_names_without_their_variable_are_variables(tmp_path):
    # "Adam" alone, or "x/Momentum" without "x", is an ordinary variable's name.
    prefix = graph_checkpoint(
        tmp_path / "names.ckpt",
        lambda: [v1_.Variable(1.0, name=n) for n in ("Adam", "x/Momentum", "y", "y/Adam_7", "ExponentialMovingAverage")]
        and None,
    )
    assert kinds(open_checkpoint(prefix)) == {
        "Adam": ("variable", None),
        "ExponentialMovingAverage": ("variable", None),
        "x/Momentum": ("variable", None),
        "y": ("variable", None),
        "y/Adam_7": ("slot", "y"),
    }


# --- object-based checkpoints ------------------------------------------------------------


class _Net(tf.Module):
    def __init__(self):
        super().__init__()
        self.l1 = tf.Variable([[1.0, 2.0]], name="l1")
        self.l2 = tf.Module()
        self.l2.kernel = tf.Variable(tf.ones([2, 3]), name="kernel")


def test_tf2_module_checkpoint(tmp_path):
    net = _Net()
    prefix = tf.train.Checkpoint(net=net).save(str(tmp_path / "ckpt"))
    ckpt = open_checkpoint(prefix)
    assert ckpt.object_based
    assert [(e.key, e.name, e.kind) for e in ckpt.entries] == [
        ("_CHECKPOINTABLE_OBJECT_GRAPH", "_CHECKPOINTABLE_OBJECT_GRAPH", "meta"),
        ("net/l1/.ATTRIBUTES/VARIABLE_VALUE", "net/l1", "variable"),
        ("net/l2/kernel/.ATTRIBUTES/VARIABLE_VALUE", "net/l2/kernel", "variable"),
        ("save_counter/.ATTRIBUTES/VARIABLE_VALUE", "save_counter", "meta"),
    ]
    assert ckpt["_CHECKPOINTABLE_OBJECT_GRAPH"].dtype == "string"
    assert ckpt["_CHECKPOINTABLE_OBJECT_GRAPH"].nbytes == 0
    assert ckpt["save_counter/.ATTRIBUTES/VARIABLE_VALUE"].dtype == "int64"
    # Found by name too, and read by name.
    assert ckpt["net/l1"] is ckpt["net/l1/.ATTRIBUTES/VARIABLE_VALUE"] is ckpt.find("net/l1")
    np.testing.assert_array_equal(ckpt.read("net/l1"), [[1.0, 2.0]])
    check_against_tensorflow(ckpt)


def test_tf2_checkpoint_with_optimizer_slots(tmp_path):
    net = _Net()
    opt = v1_.train.AdamOptimizer(0.1)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(net.l1) + tf.reduce_sum(net.l2.kernel)
    variables = [net.l1, net.l2.kernel]
    opt.apply_gradients(zip(tape.gradient(loss, variables), variables))
    ckpt = open_checkpoint(tf.train.Checkpoint(net=net, optimizer=opt).save(str(tmp_path / "ckpt")))
    k = "/.ATTRIBUTES/VARIABLE_VALUE"
    assert kinds(ckpt) == {
        "_CHECKPOINTABLE_OBJECT_GRAPH": ("meta", None),
        "net/l1" + k: ("variable", None),
        "net/l1/.OPTIMIZER_SLOT/optimizer/m" + k: ("slot", "net/l1" + k),
        "net/l1/.OPTIMIZER_SLOT/optimizer/v" + k: ("slot", "net/l1" + k),
        "net/l2/kernel" + k: ("variable", None),
        "net/l2/kernel/.OPTIMIZER_SLOT/optimizer/m" + k: ("slot", "net/l2/kernel" + k),
        "net/l2/kernel/.OPTIMIZER_SLOT/optimizer/v" + k: ("slot", "net/l2/kernel" + k),
        "optimizer/beta1_power" + k: ("meta", None),
        "optimizer/beta2_power" + k: ("meta", None),
        "save_counter" + k: ("meta", None),
    }
    check_against_tensorflow(ckpt)


def test_keras3_model_and_optimizer(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d1"), keras.layers.BatchNormalization()])
    opt = keras.optimizers.Adam(0.01)
    model.compile(opt, "mse")
    model.fit(np.ones((4, 3)), np.ones((4, 2)), verbose=0, epochs=1)
    ckpt = open_checkpoint(tf.train.Checkpoint(model=model, optimizer=opt).save(str(tmp_path / "ckpt")))
    # What Keras 3 really writes: the weights under the optimizer's _trainable_variables,
    # the non-trainable ones under the model, the optimizer state as a flat list.
    by_kind = {}
    for e in ckpt.entries:
        by_kind.setdefault(e.kind, []).append(e.name)
    assert by_kind["variable"] == [
        "model/_functional/_operations/2/moving_mean",
        "model/_functional/_operations/2/moving_variance",
        *[f"optimizer/_trainable_variables/{i}" for i in range(4)],
    ]
    assert by_kind["slot"] == [f"optimizer/_variables/{i}" for i in range(2, 10)]
    assert by_kind["meta"] == ["_CHECKPOINTABLE_OBJECT_GRAPH", "optimizer/_iterations", "optimizer/_learning_rate", "save_counter"]
    # Whose each slot is comes from the object graph (_momentums / _velocities, by index).
    tv = "optimizer/_trainable_variables/{}/.ATTRIBUTES/VARIABLE_VALUE"
    assert [ckpt[f"optimizer/_variables/{i}"].base for i in range(2, 10)] == [tv.format(i // 2 - 1) for i in range(2, 10)]
    assert all(e.base is None for e in ckpt.entries if e.kind != "slot")
    trainable = [v.numpy() for v in model.trainable_variables]
    for i, value in enumerate(trainable):
        np.testing.assert_array_equal(ckpt.read(f"optimizer/_trainable_variables/{i}"), value)
    assert ckpt.read("optimizer/_iterations") == 1
    check_against_tensorflow(ckpt)


def test_optimizer_state_lists_need_their_counter(tmp_path):
    """`_variables/N` is optimizer state only next to an `_iterations` counter."""
    names = ["opt/_iterations", "opt/_variables/2", "layer/_variables/0", "x/iter", "x/beta_1", "y/beta_1"]
    prefix = str(tmp_path / "raw.ckpt")
    tf.raw_ops.SaveV2(
        prefix=prefix, tensor_names=sorted(names), shape_and_slices=[""] * len(names),
        tensors=[tf.constant(1.0)] * len(names),
    )
    assert kinds(open_checkpoint(prefix)) == {
        "layer/_variables/0": ("variable", None),
        "opt/_iterations": ("meta", None),
        "opt/_variables/2": ("slot", None),
        "x/beta_1": ("meta", None),  # a Keras 2 optimizer hyperparameter (next to x/iter)
        "x/iter": ("meta", None),
        "y/beta_1": ("variable", None),
    }


def test_shadow_and_slot_segments_in_object_keys(tmp_path):
    k = "/.ATTRIBUTES/VARIABLE_VALUE"
    names = sorted(["net/w" + k, "net/w/ExponentialMovingAverage" + k, "net/w/Adam" + k, "net/u/Adam" + k, "g/global_step" + k])
    prefix = str(tmp_path / "raw.ckpt")
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names), tensors=[tf.constant(1.0)] * len(names))
    ckpt = open_checkpoint(prefix)
    assert kinds(ckpt) == {
        "g/global_step" + k: ("meta", None),
        "net/u/Adam" + k: ("variable", None),
        "net/w" + k: ("variable", None),
        "net/w/Adam" + k: ("slot", "net/w" + k),
        "net/w/ExponentialMovingAverage" + k: ("ema", "net/w" + k),
    }
    check_against_tensorflow(ckpt)


# --- sharded and partitioned -------------------------------------------------------------


def test_sharded_by_size_policy(tmp_path):
    module = tf.Module()
    module.a = tf.Variable(tf.range(64, dtype=tf.float32))
    module.b = tf.Variable(tf.zeros([64]))
    module.c = tf.Variable(tf.range(64))
    policy = tf.train.experimental.MaxShardSizePolicy(max_shard_size=300)
    prefix = tf.train.Checkpoint(m=module).write(
        str(tmp_path / "ckpt"), options=tf.train.CheckpointOptions(experimental_sharding_callback=policy)
    )
    ckpt = open_checkpoint(prefix)
    assert len(ckpt.files) == 4 and ckpt.files[-1].endswith(".data-00002-of-00003")
    np.testing.assert_array_equal(ckpt.read("m/a"), np.arange(64, dtype=np.float32))
    np.testing.assert_array_equal(ckpt.read("m/c"), np.arange(64))
    check_against_tensorflow(ckpt)


@pytest.fixture(scope="module")
def saver_sharded(tmp_path_factory):
    """A Saver(sharded=True) checkpoint over two virtual CPUs (set before TF starts)."""
    folder = tmp_path_factory.mktemp("sharded")
    script = textwrap.dedent(
        """
        import sys
        import tensorflow as tf  # not ckptwidgets: importing it starts TF's devices
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        v1 = tf.compat.v1
        graph = tf.Graph()
        with graph.as_default():
            with tf.device("/device:CPU:0"):
                v1.Variable([1.0, 2.0], name="a")
            with tf.device("/device:CPU:1"):
                v1.Variable([[3, 4]], name="b", dtype=tf.int64)
            saver = v1.train.Saver(sharded=True)
            with v1.Session(graph=graph) as sess:
                sess.run(v1.global_variables_initializer())
                print(saver.save(sess, sys.argv[1]))
        """
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(
        [sys.executable, "-c", script, str(folder / "model.ckpt")], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


def test_saver_sharded_over_two_devices(saver_sharded):
    ckpt = open_checkpoint(saver_sharded)
    assert [os.path.basename(f) for f in ckpt.files] == [
        "model.ckpt.index",
        "model.ckpt.data-00000-of-00002",
        "model.ckpt.data-00001-of-00002",
    ]
    np.testing.assert_array_equal(ckpt.read("a"), [1.0, 2.0])
    np.testing.assert_array_equal(ckpt.read("b"), [[3, 4]])
    assert ckpt["b"].dtype == "int64" and ckpt["b"].shape == (1, 2)
    check_against_tensorflow(ckpt)


def test_partitioned_variable(tmp_path):
    def build():
        v1_.get_variable("w", [10, 3], partitioner=v1_.fixed_size_partitioner(3), initializer=v1_.ones_initializer())
        v1_.get_variable("b", [2], initializer=v1_.zeros_initializer())

    ckpt = open_checkpoint(graph_checkpoint(tmp_path / "part.ckpt", build))
    # The slices are stored under binary keys; like TF's maps, only the whole tensor shows.
    assert listing(ckpt) == [("b", (2,), "float32"), ("w", (10, 3), "float32")]
    np.testing.assert_array_equal(ckpt.read("w"), np.ones((10, 3), np.float32))
    check_against_tensorflow(ckpt)


def test_many_entries_match_tensorflow(tmp_path):
    # Long keys, keys sharing long prefixes, multi-byte varints (shape and key lengths > 127).
    names = sorted(
        [f"scope_{i:03d}/" + "x" * (i % 150) + f"/kernel_{i}" for i in range(300)]
        + ["big", "é/ünïcode", "a" * 300, "scalar"]
    )
    tensors = [tf.zeros([i % 4 + 1] * (i % 3)) for i in range(len(names))]
    tensors[names.index("big")] = tf.zeros([130, 129], tf.int8)
    prefix = str(tmp_path / "many.ckpt")
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names), tensors=tensors)
    ckpt = open_checkpoint(prefix)
    assert len(ckpt) == len(names)
    assert ckpt["big"].shape == (130, 129) and ckpt["big"].nbytes == 130 * 129
    check_against_tensorflow(ckpt)
    np.testing.assert_array_equal(ckpt.read("é/ünïcode"), tensors[names.index("é/ünïcode")].numpy())


def test_constructor_from_an_array_source():
    tensors = {"w": np.zeros((2, 3), np.float32), "w/Adam": np.zeros((2, 3), np.float32), "n": np.int64(0)}
    ckpt = Checkpoint(ArraySource(tensors, "/nowhere/x"))
    assert [(e.key, e.shape, e.dtype, e.nbytes, e.kind, e.base) for e in ckpt] == [
        ("n", (), "int64", 8, "variable", None),
        ("w", (2, 3), "float32", 24, "variable", None),
        ("w/Adam", (2, 3), "float32", 24, "slot", "w"),
    ]


# --- errors: paths -----------------------------------------------------------------------


def test_missing_path(tmp_path, base_ckpt):
    missing = str(tmp_path / "nothing.ckpt")
    with pytest.raises(CheckpointNotFoundError) as info:
        open_checkpoint(missing)
    assert missing in str(info.value) and isinstance(info.value, FileNotFoundError)
    with pytest.raises(CheckpointNotFoundError, match="Did you mean 'my_test_model.ckpt'"):
        open_checkpoint(str(tmp_path / "my_test_modle.ckpt"))
    with pytest.raises(CheckpointNotFoundError):
        open_checkpoint(str(tmp_path / "no" / "such" / "dir" / "x"))


def test_empty_folder(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="contains no checkpoint") as info:
        open_checkpoint(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_checkpoint_file_pointing_nowhere(tmp_path, base_ckpt):
    for f in tmp_path.glob("my_test_model.ckpt*"):
        f.rename(tmp_path / f.name.replace("my_test_model", "renamed"))
    # What the state file names is gone, but another checkpoint is here: opened, and said.
    with pytest.warns(ckptwidgets.CheckpointWarning) as caught:
        ckpt = open_checkpoint(tmp_path)
    assert ckpt.prefix == str(tmp_path / "renamed.ckpt")
    text = str(caught[0].message)
    assert "'checkpoint' file" in text and "my_test_model.ckpt" in text and str(tmp_path) in text


@pytest.mark.parametrize("suffix, what", [(".meta", "MetaGraph"), (".data-00000-of-00001", "data shard")])
def test_meta_and_data_paths_point_to_the_prefix(base_ckpt, suffix, what):
    with pytest.raises(CheckpointNotFoundError) as info:
        open_checkpoint(base_ckpt + suffix)
    assert what in str(info.value) and repr(base_ckpt) in str(info.value)


def test_a_file_that_is_no_checkpoint(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(CorruptCheckpointError) as info:
        open_checkpoint(path)
    assert str(path) in str(info.value)
    with pytest.raises(CheckpointNotFoundError, match="must be a str"):
        open_checkpoint(42)


# --- errors: damaged index files (TF's checksums or our parser catch them) ----------------


def _damage(base_ckpt, transform):
    index = base_ckpt + ".index"
    data = pathlib.Path(index).read_bytes()
    pathlib.Path(index).write_bytes(transform(data))
    return index


@pytest.mark.parametrize(
    "name, transform, fragment",
    [
        ("empty", lambda d: b"", "is empty (0 bytes)"),
        ("short", lambda d: d[:20], "20 bytes, too short"),
        ("truncated", lambda d: d[:-1], "magic number"),
        ("truncated-half", lambda d: d[: len(d) // 2], "magic number"),
        ("random", lambda d: np.random.default_rng(0).bytes(len(d)), "magic number"),
        ("random-1k", lambda d: np.random.default_rng(1).bytes(1000), "magic number"),
        ("text", lambda d: b"model_checkpoint_path: 'x'\n" * 4, "magic number"),
        ("bad-handle", lambda d: d[:-48] + b"\xff" * 40 + d[-8:], "garbled"),
        ("handle-outside", lambda d: d[:-48] + varint(0) + varint(1) + varint(10**6) + varint(5) + b"\0" * 32 + d[-8:], "outside the file"),
    ],
)
def test_damaged_index(base_ckpt, name, transform, fragment):
    index = _damage(base_ckpt, transform)
    with pytest.raises(CorruptCheckpointError) as info:
        open_checkpoint(base_ckpt)
    assert index in str(info.value) and fragment in str(info.value), str(info.value)


def _reseal_data_block(data: bytes) -> bytes:
    """The index with its (single) data block's crc32c recomputed: damage only a checksum can see."""
    buf = bytearray(data)
    reseal(buf, block_handles(data)[1:])
    return bytes(buf)


def test_flipped_bit_in_a_key_is_caught_by_the_block_checksums(base_ckpt):
    # A changed key character keeps the table well formed: only the block crc32c tells.
    original = pathlib.Path(base_ckpt + ".index").read_bytes()
    position = original.index(b"v1")
    damaged = original[:position] + b"w" + original[position + 1 :]
    # With the checksum made to fit, the damage reads as renamed keys ("v2" shares the first
    # byte with "v1": both are renamed), so the checksum is what catches it.
    pathlib.Path(base_ckpt + ".index").write_bytes(_reseal_data_block(damaged))
    assert open_checkpoint(base_ckpt).keys() == ["w1", "w2"]
    index = _damage(base_ckpt, lambda d: damaged)
    with pytest.raises(CorruptCheckpointError) as info:
        open_checkpoint(base_ckpt)
    assert index in str(info.value) and "checksum" in str(info.value)
    with pytest.raises(Exception, match="checksum"):  # TensorFlow agrees
        tf.train.load_checkpoint(base_ckpt)


def test_missing_data_file_is_an_error_on_read(base_ckpt):
    os.remove(base_ckpt + ".data-00000-of-00001")
    ckpt = open_checkpoint(base_ckpt)  # the index alone is enough to list
    with pytest.raises(CorruptCheckpointError, match="data-00000-of-00001"):
        ckpt.read("v1")


def test_truncated_data_file_is_an_error_on_read(base_ckpt):
    pathlib.Path(base_ckpt + ".data-00000-of-00001").write_bytes(b"\0\0")
    ckpt = open_checkpoint(base_ckpt)
    with pytest.raises(CorruptCheckpointError) as info:
        ckpt.read("v2")
    assert "'v2'" in str(info.value) and base_ckpt in str(info.value)


def test_snappy_decoder():
    from ckptwidgets.sources.bundle._sstable import Damaged, snappy_uncompress

    # literal "abcd", then a 1-byte-offset copy of 8 bytes from 4 back (overlapping)
    assert snappy_uncompress(bytes([12, 3 << 2]) + b"abcd" + bytes([(4 << 2) | 1, 4])) == b"abcd" * 3
    # a 2-byte-offset copy
    assert snappy_uncompress(bytes([6, 1 << 2]) + b"xy" + bytes([(3 << 2) | 2, 2, 0])) == b"xyxyxy"
    assert snappy_uncompress(snappy_literal(b"x" * 100)) == b"x" * 100
    for garbled in (
        bytes([5, 3 << 2]) + b"abcd",  # one byte short of its length
        bytes([8, 3 << 2]) + b"abcd" + bytes([(4 << 2) | 1, 9]),  # a copy from before the start
        b"",  # not even the length
        varint(2**40) + bytes([3 << 2]) + b"abcd",  # a length no block of 9 bytes can hold
    ):
        with pytest.raises(Damaged):
            snappy_uncompress(garbled)


def test_snappy_compressed_index(base_ckpt):
    items = [(b"", header()), (b"v1", bundle_entry(size=4)), (b"v2", bundle_entry(offset=4))]
    write_table(base_ckpt + ".index", items, compress=snappy_literal)  # checksums over the compressed bytes
    assert listing(open_checkpoint(base_ckpt)) == [("v1", (1,), "float32"), ("v2", (1,), "float32")]
    index = _damage(base_ckpt, lambda d: d[:5] + bytes([d[5] ^ 1]) + d[6:])  # in the compressed data block
    with pytest.raises(CorruptCheckpointError, match="data block .* checksum does not match") as info:
        open_checkpoint(base_ckpt)
    assert index in str(info.value)


# --- entries TensorFlow's C++ reader aborts on: must be errors, in a subprocess ------------

_INDEXES = {
    # name: (items, expected: "open" error fragment, or "read" for an error on reading)
    "negative-dim": ([(b"", header()), (b"v1", bundle_entry(dims=(-5,)))], "negative dimension"),
    "minus-one-dim": ([(b"", header()), (b"v1", bundle_entry(dims=(-1,)))], "negative dimension"),
    "int64-overflow": ([(b"", header()), (b"v1", bundle_entry(dims=(2**40, 2**40)))], "more elements than int64"),
    "rank-300": ([(b"", header()), (b"v1", bundle_entry(dims=(1,) * 300))], "300 dimensions"),
    "garbage-entry": ([(b"", header()), (b"v1", b"\xff\xfe\x00garbage")], "not a readable BundleEntryProto"),
    "ref-dtype": ([(b"", header()), (b"v1", bundle_entry(dtype=101))], "dtype enum 101"),
    "invalid-dtype": ([(b"", header()), (b"v1", bundle_entry(dtype=0))], "dtype enum 0"),
    "unknown-rank": ([(b"", header()), (b"v1", bundle_entry(dims=(), unknown_rank=True))], "unknown rank"),
    "repeated-slice": (
        [(b"", header()), (slice_key(b"w", [(0, 1)]), bundle_entry()), (b"w", bundle_entry(dims=(2,), size=0, slices=[[(0, 1)], [(0, 1)]]))],
        "twice",
    ),
    "negative-slice": (
        [(b"", header()), (slice_key(b"w", [(0, 1)]), bundle_entry()), (b"w", bundle_entry(dims=(2,), size=0, slices=[[(0, -7)]]))],
        "negative slice extent",
    ),
    "orphan-slice": ([(b"", header()), (slice_key(b"w", [(0, 1)]), bundle_entry())], "slice of no partitioned"),
    "no-header": ([(b"v1", bundle_entry())], "no header entry"),
    "no-entries": ([], "not even the header"),
    "garbage-header": ([(b"", b"\xff\xfe\x00garbage"), (b"v1", bundle_entry())], "unreadable header"),
    "zero-shards": ([(b"", header(num_shards=0)), (b"v1", bundle_entry())], "claims 0 data shards"),
    "newer-format": ([(b"", header(min_consumer=99)), (b"v1", bundle_entry())], "version 99"),
    "out-of-order": ([(b"", header()), (b"v2", bundle_entry()), (b"v1", bundle_entry())], "out of order"),
    "binary-key": ([(b"", header()), (b"v\xff1", bundle_entry())], "not UTF-8"),
    "huge-but-consistent": ([(b"", header()), (b"v1", bundle_entry(dims=(2**20, 2**20), size=2**42))], "read"),
    "offset-past-end": ([(b"", header()), (b"v1", bundle_entry(offset=2**40))], "read"),
    "size-mismatch": ([(b"", header()), (b"v1", bundle_entry(dims=(1000,), size=4))], "read"),
    "huge-string": ([(b"", header()), (b"v1", bundle_entry(dtype=7, dims=(2**40,), size=4))], "read"),
}

_CHILD = """
import json, sys
from ckptwidgets import open_checkpoint, CheckpointError
for name, prefix in json.loads(sys.argv[1]):
    print(json.dumps({"begin": name}), flush=True)
    try:
        ckpt = open_checkpoint(prefix)
    except CheckpointError as error:
        print(json.dumps({"name": name, "open": type(error).__name__, "message": str(error)}), flush=True)
        continue
    errors = []
    for entry in ckpt.entries:
        try:
            ckpt.read(entry.key)
        except CheckpointError as error:
            errors.append([type(error).__name__, str(error)])
    print(json.dumps({"name": name, "open": None, "read": errors, "keys": ckpt.keys()}), flush=True)
"""


def test_what_would_abort_tensorflow_raises_instead(tmp_path):
    jobs = []
    for name, (items, _) in _INDEXES.items():
        folder = tmp_path / name
        folder.mkdir()
        prefix = folder / "m.ckpt"
        write_table(str(prefix) + ".index", items)
        pathlib.Path(str(prefix) + ".data-00000-of-00001").write_bytes(b"\0" * 64)
        jobs.append((name, str(prefix)))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    run = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(jobs)], capture_output=True, text=True, env=env, timeout=300)
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    results = {r["name"]: r for r in lines if "name" in r}
    began = [r["begin"] for r in lines if "begin" in r]
    assert run.returncode == 0, f"the process died (code {run.returncode}) on {began[-1:]}: {run.stderr[-1500:]}"
    for name, (_, expected) in _INDEXES.items():
        result = results[name]
        if expected == "read":
            assert result["open"] is None, (name, result)
            assert result["read"] and all(kind == "CorruptCheckpointError" for kind, _ in result["read"]), (name, result)
            assert all(str(tmp_path / name) in message for _, message in result["read"])
        else:
            assert result["open"] == "CorruptCheckpointError", (name, result)
            assert expected in result["message"] and str(tmp_path / name / "m.ckpt.index") in result["message"], (name, result)


def test_crafted_index_writer_is_what_tensorflow_reads(base_ckpt):
    """The writer above makes real indexes: TF reads the values through one."""
    expected = tf.train.load_checkpoint(base_ckpt).get_tensor("v2")
    items = [(b"", header())]
    original = scan(data_blocks(pathlib.Path(base_ckpt + ".index").read_bytes()))
    for key, value in zip(original.keys, original.values):
        items.append((key.encode(), value))
    write_table(base_ckpt + ".index", items)
    ckpt = open_checkpoint(base_ckpt)
    assert ckpt.keys() == ["v1", "v2"]
    np.testing.assert_array_equal(ckpt.read("v2"), expected)
