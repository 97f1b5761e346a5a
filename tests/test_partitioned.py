"""Partitioned variables (TF1 ``partitioner=``): read without TensorFlow, planned, restored, exported.

TensorFlow is the oracle: ``get_tensor`` for reading, ``init_from_checkpoint`` for restoring
(the partitioned cases of TF's own ``checkpoint_utils_test.py`` and
``warm_starting_util_test.py`` are replayed through ``plan_restore`` + ``restore``).
"""
from __future__ import annotations

import json
import pathlib
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from tensorflow.core.protobuf import tensor_bundle_pb2

import ckptwidgets
from ckptwidgets import CorruptCheckpointError, PlanError, open_checkpoint, plan_restore, restore
from ckptwidgets.sources.bundle._slices import parse_slice_key, slice_key
from ckptwidgets.sources.bundle._sstable import block_items, data_blocks
from ckptwidgets.sources.arrays import ArraySource

from _bundle_bytes import write_table

tf = ckptwidgets.import_tensorflow()
v1 = tf.compat.v1


# --- helpers -------------------------------------------------------------------------------


def graph_checkpoint(prefix, build) -> str:
    """Run ``build()`` in a fresh graph, initialise everything, run the ops it returns (if any),
    save with a default Saver."""
    graph = tf.Graph()
    with graph.as_default():
        ops = build()
        saver = v1.train.Saver()
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            if ops:
                sess.run(ops)
            return saver.save(sess, str(prefix))


def fill(pv, value) -> list:
    """Ops assigning ``value`` (the full array) to the parts of ``pv``, each its slice."""
    ops = []
    for part in pv:
        info = part._save_slice_info
        box = tuple(slice(o, o + n) for o, n in zip(info.var_offset, info.var_shape))
        ops.append(v1.assign(part, value[box]))
    return ops


def partitioned(name, shape, parts, axis=0, **kwargs):
    """``get_variable`` split into ``parts`` along ``axis``."""
    split = [1] * len(shape)
    split[axis] = parts
    return v1.get_variable(name, shape, partitioner=lambda shape, dtype: split, **kwargs)


def _is_pv(obj) -> bool:
    return type(obj).__name__ == "PartitionedVariable"


def assert_bitwise(ours, theirs, key=""):
    assert type(ours) is type(theirs), key
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, (key, ours.dtype, ours.shape)
    assert ours.tobytes() == theirs.tobytes(), key


def index_items(prefix) -> list:
    return [item for block in data_blocks(pathlib.Path(prefix + ".index").read_bytes()) for item in block_items(block)]


def entry(value: bytes):
    return tensor_bundle_pb2.BundleEntryProto.FromString(value)


def extents_of(proto) -> list:
    return [tuple((e.start, e.length if e.HasField("length") else None) for e in s.extent) for s in proto.slices]


# --- reading without TensorFlow ------------------------------------------------------------


@pytest.fixture
def w_ckpt(tmp_path):
    """``w`` [10, 3] float32 in 3 row slices (4, 3, 3 rows) and a plain ``b``."""

    def build():
        v1.get_variable("w", [10, 3], partitioner=v1.fixed_size_partitioner(3))
        v1.get_variable("b", [2])

    return graph_checkpoint(tmp_path / "w.ckpt", build)


def test_the_slice_keys_are_tensorflows_ordered_code(w_ckpt):
    keys = [key for key, _ in index_items(w_ckpt) if key[:1] == b"\x00"]
    assert [parse_slice_key(k) for k in keys] == [
        (b"w", ((0, 4), (0, 3))),
        (b"w", ((4, 3), (0, 3))),
        (b"w", ((7, 3), (0, 3))),
    ]
    assert [slice_key(*parse_slice_key(k)) for k in keys] == keys
    # Escapes, full extents, negative and multi-byte numbers round-trip; damage is refused.
    for name, extents in [(b"a\x00b\xff", ((0, None),)), (b"x", ((2**40, 7), (-5, 300), (0, 2**62)))]:
        assert parse_slice_key(slice_key(name, extents)) == (name, extents)
    assert parse_slice_key(b"\x00w\x00\x01\x01\x02\x80\x84\x80") is None  # truncated
    assert parse_slice_key(b"\x00w\x00\x02\x01\x01\x80\x84") is None  # bad string terminator
    assert parse_slice_key(b"\x00w\x00\x01\x00") is None  # rank 0


def test_read_assembles_the_full_tensor_as_get_tensor(w_ckpt):
    ckpt = open_checkpoint(w_ckpt)
    assert [(e.key, e.shape, e.kind) for e in ckpt] == [("b", (2,), "variable"), ("w", (10, 3), "variable")]
    reader = tf.train.load_checkpoint(w_ckpt)
    for key in ("w", "b"):
        assert_bitwise(ckpt.read(key), reader.get_tensor(key), key)
    value = ckpt.read("w")
    assert value.flags.writeable and value.flags.owndata
    assert dict(ckpt.read_many(["w", "b"]))["w"].tobytes() == value.tobytes()


@pytest.mark.parametrize("dtype", ["float32", "int64", "bool", "bfloat16", "complex64", "float16", "uint16"])
def test_dtypes_and_axes(tmp_path, dtype):
    def build():
        ops = []
        for name, shape, axis in (("rows", [7, 4], 0), ("cols", [2, 9], 1)):
            pv = partitioned(name, shape, 3 if axis == 0 else 4, axis=axis, dtype=dtype, initializer=v1.zeros_initializer())
            value = np.arange(np.prod(shape)).reshape(shape) + 1
            ops += fill(pv, (value % 2).astype(bool) if dtype == "bool" else value.astype(tf.as_dtype(dtype).as_numpy_dtype))
        return ops

    prefix = graph_checkpoint(tmp_path / f"{dtype}.ckpt", build)
    ckpt = open_checkpoint(prefix)
    reader = tf.train.load_checkpoint(prefix)
    for key in ("rows", "cols"):
        ours = ckpt.read(key)
        if dtype in ("float16", "uint16"):
            # TF's reader copies slices of some dtypes only ("Dtype half not supported"):
            # the oracle is then each stored slice, read alone (TF's no-copy fast path).
            with pytest.raises(ValueError, match="not supported"):
                reader.get_tensor(key)
            theirs = np.empty(ours.shape, ours.dtype)
            for extents in extents_of(entry(dict(index_items(prefix))[key.encode()])):
                spec = " ".join(map(str, ours.shape)) + " " + ":".join("-" if n is None else f"{a},{n}" for a, n in extents)
                box = tuple(slice(a, None if n is None else a + n) for a, n in extents)
                theirs[box] = tf.raw_ops.RestoreV2(
                    prefix=prefix, tensor_names=[key], shape_and_slices=[spec], dtypes=[tf.as_dtype(dtype)]
                )[0].numpy()
        else:
            theirs = reader.get_tensor(key)
        assert_bitwise(ours, theirs, key)


def grid_checkpoint(prefix, value, rows, cols, key="g") -> str:
    """``value`` saved as a grid of slices (both axes split), by a Saver over hand-made parts."""
    graph = tf.Graph()
    with graph.as_default():
        parts = []
        for r0, r1 in zip(rows, rows[1:]):
            for c0, c1 in zip(cols, cols[1:]):
                part = v1.Variable(value[r0:r1, c0:c1], name=f"part_{len(parts)}")
                part._set_save_slice_info(tf.Variable.SaveSliceInfo(key, list(value.shape), [r0, c0], [r1 - r0, c1 - c0]))
                parts.append(part)
        saver = v1.train.Saver({key: parts})
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            return saver.save(sess, str(prefix))


@pytest.mark.parametrize("key", ["g", "é/ü's \"w\"\\x\u2028"])
def test_a_grid_of_slices_and_strings(tmp_path, key):
    grid = np.arange(42, dtype=np.float64).reshape(6, 7)
    prefix = grid_checkpoint(tmp_path / "grid.ckpt", grid, [0, 2, 6], [0, 3, 5, 7], key=key)
    assert len(extents_of(entry(dict(index_items(prefix))[key.encode()]))) == 6
    assert_bitwise(open_checkpoint(prefix).read(key), tf.train.load_checkpoint(prefix).get_tensor(key))
    words = np.array([[b"a", b"bb", b""], [b"\x00\xff", "é".encode(), b"z" * 300]], dtype=object)
    prefix = grid_checkpoint(tmp_path / "words.ckpt", words, [0, 1, 2], [0, 2, 3], key="s")
    ours = open_checkpoint(prefix).read("s")
    assert ours.dtype == object and ours.tolist() == words.tolist()


def test_slices_spread_over_shards_by_a_sharding_policy(tmp_path):
    # A small shard size makes TF2's Checkpoint split variables into slices across shards.
    values = [tf.Variable(tf.reshape(tf.range(100 * i, 100 * i + 100, dtype=tf.float32), [50, 2])) for i in range(2)]
    policy = tf.train.experimental.MaxShardSizePolicy(max_shard_size=300)
    prefix = tf.train.Checkpoint(vs=values).write(
        str(tmp_path / "sliced"), options=tf.train.CheckpointOptions(experimental_sharding_callback=policy)
    )
    ckpt, reader = open_checkpoint(prefix), tf.train.load_checkpoint(prefix)
    sliced = [k for k, v in index_items(prefix) if k and k[:1] != b"\x00" and entry(v).slices]
    assert sliced
    for e in ckpt:
        assert_bitwise(np.asarray(ckpt.read(e.key)), np.asarray(reader.get_tensor(e.key)), e.key)


def test_reading_a_partitioned_tensor_needs_no_tensorflow(w_ckpt):
    script = textwrap.dedent(
        """
        import json, sys
        import ckptwidgets
        ckpt = ckptwidgets.open_checkpoint(sys.argv[1])
        value = ckpt.read("w")
        print(json.dumps({"tf": "tensorflow" in sys.modules, "value": value.tolist()}))
        """
    )
    out = subprocess.run([sys.executable, "-c", script, w_ckpt], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["tf"] is False
    assert np.array(result["value"], np.float32).tobytes() == tf.train.load_checkpoint(w_ckpt).get_tensor("w").tobytes()


# --- damaged slices: errors naming the key, never a crash or a wrong value -------------------


def _rewrite(prefix, edit) -> None:
    """Rewrite the index through ``edit(items) -> items`` (the data file untouched)."""
    write_table(prefix + ".index", edit(index_items(prefix)))


def _relist(items, extents):
    """``w``'s entry listing ``extents`` instead of its slices."""
    out = []
    for key, value in items:
        if key == b"w":
            proto = entry(value)
            del proto.slices[:]
            for piece in extents:
                s = proto.slices.add()
                for start, length in piece:
                    x = s.extent.add(start=start)
                    if length is not None:
                        x.length = length
            value = proto.SerializeToString()
        out.append((key, value))
    return out


_DAMAGE = {
    "missing slice key": (lambda items: [i for i in items if i[0] != slice_key(b"w", ((4, 3), (0, 3)))], "slice [4:7, 0:3] has no entry"),
    "overlapping slices": (lambda items: _relist(items, [[(0, 4), (0, 3)], [(3, 4), (0, 3)], [(7, 3), (0, 3)]]), "overlap"),
    "a gap": (lambda items: _relist(items, [[(0, 4), (0, 3)], [(7, 3), (0, 3)]]), "cover 21 of its 30 elements"),
    "slice past the end": (lambda items: _relist(items, [[(0, 4), (0, 3)], [(4, 3), (0, 3)], [(7, 4), (0, 3)]]), "does not fit its shape"),
    "full extent not at 0": (lambda items: _relist(items, [[(0, 10), (1, None)]]), "does not fit its shape"),
}


@pytest.mark.parametrize("damage", list(_DAMAGE))
def test_damaged_slices_are_errors_naming_the_key(w_ckpt, damage):
    edit, message = _DAMAGE[damage]
    _rewrite(w_ckpt, edit)
    ckpt = open_checkpoint(w_ckpt)  # the listing is read when the tensor is
    with pytest.raises(CorruptCheckpointError, match=re.escape(message)) as info:
        ckpt.read("w")
    assert "'w'" in str(info.value) and w_ckpt in str(info.value)
    np.testing.assert_array_equal(ckpt.read("b"), tf.train.load_checkpoint(w_ckpt).get_tensor("b"))


def test_a_flipped_bit_in_a_slice_names_the_key_and_the_slice(w_ckpt):
    data = pathlib.Path(w_ckpt + ".data-00000-of-00001")
    offset = entry(dict(index_items(w_ckpt))[slice_key(b"w", ((7, 3), (0, 3)))]).offset
    raw = bytearray(data.read_bytes())
    raw[offset + 5] ^= 1
    data.write_bytes(bytes(raw))
    with pytest.raises(CorruptCheckpointError, match=r"'w' \(slice \[7:10, 0:3\]\).*checksum does not match"):
        open_checkpoint(w_ckpt).read("w")


@pytest.mark.parametrize(
    "edit, message",
    [
        # TF copies a slice by its extents, trusting its entry: these abort or read out of bounds.
        (lambda p: p.shape.dim[0].__setattr__("size", 5), "shape"),
        (lambda p: setattr(p, "dtype", tf.int32.as_datatype_enum), "dtype enum 3"),
    ],
)
def test_a_slice_entry_not_holding_its_extents_is_refused_at_open(w_ckpt, edit, message):
    key = slice_key(b"w", ((4, 3), (0, 3)))

    def damage(items):
        out = []
        for k, v in items:
            if k == key:
                proto = entry(v)
                edit(proto)
                v = proto.SerializeToString()
            out.append((k, v))
        return out

    _rewrite(w_ckpt, damage)
    with pytest.raises(CorruptCheckpointError, match=message) as info:
        open_checkpoint(w_ckpt)
    assert "'w'" in str(info.value)


@pytest.mark.parametrize("graph_mode", [True, False])
def test_a_restore_from_a_damaged_slice_changes_nothing(w_ckpt, graph_mode):
    _rewrite(w_ckpt, _DAMAGE["missing slice key"][0])
    if graph_mode:
        with tf.Graph().as_default():
            pv = v1.get_variable("w", [10, 3], partitioner=v1.fixed_size_partitioner(2), initializer=v1.ones_initializer())
            b = v1.get_variable("b", [2], initializer=v1.ones_initializer())
            with v1.Session() as sess:
                sess.run(v1.global_variables_initializer())
                with pytest.raises(CorruptCheckpointError, match="'w'"):
                    restore(plan_restore(w_ckpt, [pv, b]), session=sess)
                assert all((v == 1).all() for v in sess.run(list(pv) + [b]))
    else:
        parts = eager_parts("w", [10, 3], [(0, 6), (6, 4)])
        b = tf.Variable(tf.ones([2]), name="b")
        with pytest.raises(CorruptCheckpointError, match="'w'"):
            restore(plan_restore(w_ckpt, parts + [b]))
        assert all((v.numpy() == 1).all() for v in parts + [b])


# --- plans ----------------------------------------------------------------------------------


def eager_parts(name, full_shape, rows, value=1.0, dtype=tf.float32) -> list:
    """Eager variables carrying save slice infos: row slices ``[(start, size)]`` of ``name``."""
    parts = []
    for i, (start, size) in enumerate(rows):
        part = tf.Variable(tf.fill([size] + list(full_shape[1:]), tf.constant(value, dtype)), name=f"{name}/part_{i}")
        part._set_save_slice_info(tf.Variable.SaveSliceInfo(name, list(full_shape), [start] + [0] * (len(full_shape) - 1), [size] + list(full_shape[1:])))
        parts.append(part)
    return parts


def test_a_partitioned_variable_is_planned_part_by_part(w_ckpt):
    with tf.Graph().as_default():
        pv = v1.get_variable("w", [10, 3], partitioner=v1.fixed_size_partitioner(4))
        b = v1.get_variable("b", [2])
        for given in ([pv, b], list(pv) + [b]):
            plan = plan_restore(w_ckpt, given)
            names = ["w/part_0", "w/part_1", "w/part_2", "w/part_3"]
            assert list(plan.infos) == names + ["b"]
            assert plan.mapping == {**dict.fromkeys(names, "w"), "b": "b"}
            assert plan.ok and plan.unused == [] and [plan.status(n) for n in names] == ["mapped"] * 4
            assert plan.var_list == {"w": list(pv), "b": b}
            assert plan.var_list_names == [{"w": names, "b": "b"}]
            assert plan.describe("w/part_1") == ((10, 3), "float32")
            part = plan.infos["w/part_1"].part
            assert (part.full_name, part.full_shape, part.offset, part.shape, part.spec) == ("w", (10, 3), (3, 0), (3, 3), "10 3 3,3:0,3")
            assert plan.candidates("w/part_1", limit=1)[0].key == "w"
        # A dict key names the whole variable; a lone PartitionedVariable is its parts.
        plan = plan_restore(w_ckpt, {"enc": pv}, rules={"w": "enc"})
        assert list(plan.mapping.items()) == [(f"enc/part_{i}", "w") for i in range(4)]
        assert list(plan_restore(w_ckpt, pv).mapping) == names
        # Edits: a PartitionedVariable stands for its parts; its own name is no part's.
        plan = plan_restore(w_ckpt, [pv, b])
        plan.unassign(pv)
        assert plan.unmapped == names
        plan.assign(pv, "w")
        assert plan.ok and plan.var_list == {"w": list(pv), "b": b}
        with pytest.raises(PlanError, match="partitioned variable; pass one of its parts"):
            plan.status(pv)


def test_shapes_are_checked_against_the_full_shape(w_ckpt):
    with tf.Graph().as_default():
        pv = v1.get_variable("w", [12, 3], partitioner=v1.fixed_size_partitioner(2))
        plan = plan_restore(w_ckpt, [pv])
        assert [p.reason for p in plan.problems] == ["shape_mismatch"] * 2
        message = plan.problems[0].message
        assert "'w/part_0'" in message and "[0:6, 0:3] of 'w'" in message
        assert "[12, 3]" in message and "[10, 3]" in message and w_ckpt in message
        with pytest.raises(ckptwidgets.RestoreError):
            restore(plan, session=v1.Session())
        # A part of full shape [10, 3] fits whatever partitioning was saved.
        small = v1.get_variable("v", [4, 3])
        plan = plan_restore(w_ckpt, [small], rules={"w": "v"})
        assert plan.problems[0].reason == "shape_mismatch"


def test_rules_see_the_whole_variable(w_ckpt):
    with tf.Graph().as_default():
        with v1.variable_scope("new"):
            pv = v1.get_variable("w", [10, 3], partitioner=v1.fixed_size_partitioner(2))
        names = ["new/w/part_0", "new/w/part_1"]
        assert plan_restore(w_ckpt, [pv], rules={"/": "new/"}).mapping == dict.fromkeys(names, "w")
        assert plan_restore(w_ckpt, [pv], rules={"w": "new/w"}).mapping == dict.fromkeys(names, "w")
        assert plan_restore(w_ckpt, [pv], rules={"w": pv}).mapping == dict.fromkeys(names, "w")
        assert plan_restore(w_ckpt, [pv], rules={"w": list(pv)}).mapping == dict.fromkeys(names, "w")
        # include / exclude patterns also see the whole variable's name
        assert plan_restore(w_ckpt, [pv], rules={"/": "new/"}, include="^new/w$").mapping == dict.fromkeys(names, "w")
        assert plan_restore(w_ckpt, [pv], rules={"/": "new/"}, exclude="^new/w$").unmapped == names
        with pytest.raises(PlanError, match="a rule names the whole variable"):
            plan_restore(w_ckpt, [pv], rules={"w": "new/w/part_0"})
        other = v1.get_variable("x", [2])
        with pytest.raises(PlanError, match="several variables"):
            plan_restore(w_ckpt, [pv, other], rules={"w": [list(pv)[0], other]})


def test_one_key_for_a_plain_and_a_partitioned_variable_needs_two_savers(w_ckpt):
    with tf.Graph().as_default():
        pv = v1.get_variable("w", [10, 3], partitioner=v1.fixed_size_partitioner(2))
        plain = v1.get_variable("copy", [10, 3])
        plan = plan_restore(w_ckpt, [pv, plain], rules={"w": "copy"})
        assert plan.ok and plan.var_lists == [{"w": list(pv)}, {"w": plain}]
        with pytest.raises(PlanError, match="feeds 3 variables"):
            plan.var_list


def test_a_save_slice_info_that_does_not_fit_is_a_plan_error(w_ckpt):
    part = tf.Variable(tf.zeros([4, 3]), name="w/part_0")
    part._set_save_slice_info(tf.Variable.SaveSliceInfo("w", [10, 3], [8, 0], [4, 3]))
    with pytest.raises(PlanError, match="save slice info does not fit"):
        plan_restore(w_ckpt, [part])


# --- restoring: TF's own partitioned cases replayed, init_from_checkpoint as the oracle --------


def _oracle_and_ours(path, build, assignment_map, rules=None, read_many=False):
    """Values of ``build()``'s variables after TF's ``init_from_checkpoint(path, map)`` and after
    ``restore(plan_restore(path, variables, rules))``, each in a fresh graph."""
    results = []
    for ours in (False, True):
        with tf.Graph().as_default():
            objects = build()
            with v1.Session() as sess:
                if ours:
                    source = path
                    if read_many:
                        reader = tf.train.load_checkpoint(path)
                        source = ArraySource({k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()})
                    plan = plan_restore(source, list(objects), rules=rules(objects) if callable(rules) else rules)
                    assert plan.ok, plan.problems
                    restore(plan, session=sess, initialize_unmapped=True)
                else:
                    v1.train.init_from_checkpoint(path, assignment_map(objects) if callable(assignment_map) else assignment_map)
                    sess.run(v1.global_variables_initializer())
                results.append([sess.run(list(o)) if _is_pv(o) else sess.run(o) for o in objects])
    return results


def _min_max(size):
    return v1.min_max_variable_partitioner(max_partitions=5, axis=0, min_slice_size=size)


@pytest.fixture
def scope_var1(tmp_path):
    """checkpoint_utils_test's _create_partition_checkpoints: scope/var1 [100, 100] in slices."""

    def build():
        with v1.variable_scope("scope"):
            v1.get_variable("var1", [100, 100], initializer=v1.truncated_normal_initializer(0.5), partitioner=_min_max(8 << 10))

    return graph_checkpoint(tmp_path / "model", build)


@pytest.mark.parametrize("read_many", [False, True])
def test_init_from_partition_var(scope_var1, read_many):
    """checkpoint_utils_test.testInitFromPartitionVar, first part: the same partitioning, and
    a differently partitioned variable through a scope rule."""

    def build():
        with v1.variable_scope("some_scope"):
            my1 = v1.get_variable("my1", [100, 100], initializer=v1.zeros_initializer(), partitioner=_min_max(8 << 10))
        with v1.variable_scope("some_other_scope"):
            my2 = v1.get_variable("var1", [100, 100], initializer=v1.zeros_initializer(), partitioner=_min_max(16 << 10))
        return my1, my2

    rules = {"scope/var1": "some_scope/my1", "scope/": "some_other_scope/"}
    theirs, ours = _oracle_and_ours(scope_var1, build, rules, rules, read_many=read_many)
    saved = tf.train.load_checkpoint(scope_var1).get_tensor("scope/var1")
    assert len(ours[1]) != len(ours[0])  # the test's point: another number of partitions
    for mine, tfs in zip(ours, theirs):
        assert len(mine) == len(tfs)
        for a, b in zip(mine, tfs):
            assert a.tobytes() == b.tobytes()
        np.testing.assert_array_equal(np.concatenate(mine), saved)


def test_init_from_partition_var_by_list(scope_var1):
    """testInitFromPartitionVar, second part: ``{"scope/var1": my1_var_list}``."""

    def build():
        with v1.variable_scope("some_scope"):
            return (v1.get_variable("my1", [100, 100], initializer=v1.zeros_initializer(), partitioner=_min_max(8 << 10)),)

    theirs, ours = _oracle_and_ours(
        scope_var1, build, lambda o: {"scope/var1": list(o[0])}, rules=lambda o: {"scope/var1": list(o[0])}
    )
    assert [a.tobytes() for a in ours[0]] == [b.tobytes() for b in theirs[0]]


@pytest.fixture
def fruit(tmp_path):
    """warm_starting_util_test's previous runs: fruit_weights [4, 1], plain and partitioned."""
    values = np.array([[0.5], [1.0], [1.5], [2.0]], np.float32)

    def build():
        v1.get_variable("plain/fruit_weights", initializer=values)
        return fill(v1.get_variable("old_scope/fruit_weights", [4, 1], partitioner=lambda shape, dtype: [2, 1]), values)

    return graph_checkpoint(tmp_path / "prev", build), values


def test_prev_var_partitioned_into_a_plain_one(fruit):
    """warm_starting_util_test.testWarmStartVarPrevVarPartitioned."""
    path, values = fruit

    def build():
        return (v1.get_variable("fruit_weights", initializer=np.zeros([4, 1], np.float32)),)

    rules = {"old_scope/fruit_weights": "fruit_weights"}
    theirs, ours = _oracle_and_ours(path, build, rules, rules)
    np.testing.assert_array_equal(ours[0], values)
    assert ours[0].tobytes() == theirs[0].tobytes()


def test_plain_var_into_a_partitioned_one(fruit):
    """warm_starting_util_test.testWarmStartVarCurrentVarPartitioned."""
    path, values = fruit

    def build():
        return (v1.get_variable("fruit_weights", [4, 1], initializer=v1.zeros_initializer(), partitioner=lambda shape, dtype: [2, 1]),)

    theirs, ours = _oracle_and_ours(path, build, lambda o: {"plain/fruit_weights": list(o[0])}, {"plain/fruit_weights": "fruit_weights"})
    np.testing.assert_array_equal(np.concatenate(ours[0]), values)
    assert [a.tobytes() for a in ours[0]] == [b.tobytes() for b in theirs[0]]


@pytest.mark.parametrize("parts", [2, 3, 4])
def test_both_partitioned_differently_and_renamed(fruit, parts):
    """warm_starting_util_test.testWarmStartVarBothVarsPartitioned (and other partitionings)."""
    path, values = fruit

    def build():
        return (v1.get_variable("new_scope/fruit_weights", [4, 1], initializer=v1.zeros_initializer(), partitioner=lambda shape, dtype: [parts, 1]),)

    theirs, ours = _oracle_and_ours(path, build, {"old_scope/": "new_scope/"}, {"old_scope/": "new_scope/"})
    assert len(ours[0]) == parts
    np.testing.assert_array_equal(np.concatenate(ours[0]), values)
    assert [a.tobytes() for a in ours[0]] == [b.tobytes() for b in theirs[0]]


@pytest.mark.parametrize("use_resource", [True, False])
@pytest.mark.parametrize("read_many", [False, True])
def test_graph_restore_of_a_grid_into_row_parts(tmp_path, use_resource, read_many):
    grid = np.arange(42, dtype=np.float32).reshape(6, 7)
    prefix = grid_checkpoint(tmp_path / "grid.ckpt", grid, [0, 2, 6], [0, 3, 5, 7])
    source = ArraySource({"g": grid}) if read_many else prefix
    with tf.Graph().as_default():
        pv = v1.get_variable("g", [6, 7], partitioner=v1.fixed_size_partitioner(4), initializer=v1.zeros_initializer(), use_resource=use_resource)
        with v1.Session() as sess:
            report = restore(plan_restore(source, [pv]), session=sess, initialize_unmapped=True)
            np.testing.assert_array_equal(np.concatenate(sess.run(list(pv))), grid)
    assert report.restored == [(f"g/part_{i}", "g") for i in range(4)] and report.nbytes == grid.nbytes


@pytest.mark.parametrize("read_many", [False, True])
def test_eager_partitioned_variables(w_ckpt, read_many):
    full = tf.train.load_checkpoint(w_ckpt).get_tensor("w")
    source = ArraySource({"w": full, "b": np.zeros(2, np.float32)}) if read_many else w_ckpt
    # What get_variable returns in eager mode with a partitioner, and hand-made parts.
    pv = v1.get_variable(f"w_eager_{read_many}", [10, 3], partitioner=v1.fixed_size_partitioner(3), initializer=v1.zeros_initializer())
    restore(plan_restore(source, {"w": pv}))
    np.testing.assert_array_equal(np.concatenate([p.numpy() for p in pv]), full)
    parts = eager_parts("w", [10, 3], [(0, 1), (1, 9)])
    report = restore(plan_restore(source, parts, include="w"))
    np.testing.assert_array_equal(np.concatenate([p.numpy() for p in parts]), full)
    assert report.restored == [("w/part_0", "w"), ("w/part_1", "w")]


@pytest.mark.parametrize("graph_mode", [True, False])
def test_a_dtype_tensorflow_cannot_copy_across_slices_is_restored(tmp_path, graph_mode):
    # RestoreV2 of a float16 slice spanning two stored slices: "Dtype half not supported".
    value = (np.arange(10, dtype=np.float16) / 4).reshape(5, 2)
    prefix = graph_checkpoint(tmp_path / "half.ckpt", lambda: fill(partitioned("w", [5, 2], 2, dtype=tf.float16), value))
    if graph_mode:
        with tf.Graph().as_default():
            pv = v1.get_variable("w", [5, 2], tf.float16, partitioner=v1.fixed_size_partitioner(3))
            with pytest.raises(Exception, match="half not supported"):
                with v1.Session() as sess:
                    v1.train.Saver({"w": list(pv)}).restore(sess, prefix)
            with v1.Session() as sess:
                restore(plan_restore(prefix, [pv]), session=sess)
                got = sess.run(list(pv))
    else:
        parts = eager_parts("w", [5, 2], [(0, 2), (2, 3)], value=0.0, dtype=tf.float16)
        with pytest.raises(Exception, match="half not supported"):
            tf.raw_ops.RestoreV2(prefix=prefix, tensor_names=["w"], shape_and_slices=["5 2 0,2:0,2"], dtypes=[tf.float16])
        restore(plan_restore(prefix, parts))
        got = [p.numpy() for p in parts]
    assert np.concatenate(got).tobytes() == value.tobytes()


def test_prefer_ema_reads_the_partitioned_shadow(tmp_path):
    def build():
        pv = v1.get_variable("w", [6, 2], partitioner=v1.fixed_size_partitioner(2))
        ema = v1.train.ExponentialMovingAverage(0.5)
        update = ema.apply(list(pv))
        with tf.control_dependencies([update]):
            v1.add_to_collection("update", tf.no_op())

    graph = tf.Graph()
    with graph.as_default():
        build()
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            sess.run(v1.get_collection("update"))
            prefix = v1.train.Saver().save(sess, str(tmp_path / "ema.ckpt"))
    ckpt = open_checkpoint(prefix)
    shadow = ckpt.find("w/ExponentialMovingAverage")
    assert shadow is not None and shadow.kind == "ema" and shadow.shape == (6, 2)
    assert_bitwise(ckpt.read(shadow.key), tf.train.load_checkpoint(prefix).get_tensor(shadow.key))
    with tf.Graph().as_default():
        pv = v1.get_variable("w", [6, 2], partitioner=v1.fixed_size_partitioner(3), initializer=v1.zeros_initializer())
        plan = plan_restore(ckpt, [pv], prefer_ema=True)
        assert set(plan.mapping.values()) == {shadow.key}
        with v1.Session() as sess:
            restore(plan, session=sess)
            np.testing.assert_array_equal(np.concatenate(sess.run(list(pv))), ckpt.read(shadow.key))


# --- code export: run what is written ---------------------------------------------------------


@pytest.mark.parametrize("style", ["saver", "init_from_checkpoint"])
def test_graph_code_export_runs(w_ckpt, style):
    full = tf.train.load_checkpoint(w_ckpt).get_tensor("w")
    with tf.Graph().as_default():
        with v1.variable_scope("new"):
            pv = v1.get_variable("w", [10, 3], partitioner=v1.fixed_size_partitioner(4), initializer=v1.zeros_initializer())
        b = v1.get_variable("b", [2], initializer=v1.ones_initializer())
        plan = plan_restore(w_ckpt, [pv, b], rules={"w": "new/w"})
        code = plan.to_code(style)
        assert "'w': [" in code and "variables['new/w/part_3']," in code
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            exec(compile(code, "<export>", "exec"), {"variables": plan.variables, "sess": sess})
            if style == "init_from_checkpoint":
                sess.run(v1.global_variables_initializer())
            np.testing.assert_array_equal(np.concatenate(sess.run(list(pv))), full)
            np.testing.assert_array_equal(sess.run(b), tf.train.load_checkpoint(w_ckpt).get_tensor("b"))


@pytest.mark.parametrize("style", ["saver", "init_from_checkpoint", "checkpoint"])
def test_eager_code_export_runs(w_ckpt, style):
    reader = tf.train.load_checkpoint(w_ckpt)
    parts = eager_parts("w", [10, 3], [(0, 7), (7, 3)], value=0.0)
    b = tf.Variable(tf.zeros([2]), name="b")
    plan = plan_restore(w_ckpt, parts + [b])
    code = plan.to_code(style)
    exec(compile(code, "<export>", "exec"), {"variables": plan.variables, "sess": None})
    np.testing.assert_array_equal(np.concatenate([p.numpy() for p in parts]), reader.get_tensor("w"))
    np.testing.assert_array_equal(b.numpy(), reader.get_tensor("b"))
    if style == "checkpoint":
        assert "reader.get_tensor('w')[7:10, 0:3]" in code


def test_the_mapper_shows_a_row_per_part(w_ckpt):
    from ckptwidgets.widgets import MapperModel

    with tf.Graph().as_default():
        pv = v1.get_variable("w", [10, 3], partitioner=v1.fixed_size_partitioner(2), initializer=v1.zeros_initializer())
        with v1.Session() as sess:
            model = MapperModel(w_ckpt, [pv], session=sess)
            assert model.counts["variables"] == 2 and model.counts["mapped"] == 2
            assert model.row_texts("w/part_1")[0] == ["w/part_1", "[10, 3] float32", model.status_text("w/part_1")[0]]
            assert model.options("w/part_0")[1][1] == "w"
            model.restore()
            np.testing.assert_array_equal(np.concatenate(sess.run(list(pv))), tf.train.load_checkpoint(w_ckpt).get_tensor("w"))
