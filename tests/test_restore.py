"""ckptwidgets.restore against real tiny checkpoints, checked against a plain Saver(plan.var_list)."""
from __future__ import annotations

import glob
import importlib
import os

import numpy as np
import pytest
import tensorflow as tf

import ckptwidgets
from ckptwidgets import CheckpointError, CorruptCheckpointError, PlanError, RestoreError, plan_restore
from conftest import save_graph_checkpoint

v1_ = tf.compat.v1
# The module (ckptwidgets.restore may be the function, exported under the same name).
restore_module = importlib.import_module("ckptwidgets.restore")
SHADOW = np.float32(0.099999905)  # 0.99 * 0 + 0.01 * 10 in float32 (scenario 3)


def restore_in_fresh_graph(prefix, specs, how, use_resource=True, edit=None, init_unmapped=False, **plan_kwargs):
    """Declare ``{name: value}`` in a fresh graph, plan, restore ``how`` ("library" or "saver").

    Returns ``{name: value}`` of the variables that have one afterwards.
    """
    graph = tf.Graph()
    with graph.as_default():
        variables = {n: v1_.Variable(v, name=n, use_resource=use_resource) for n, v in specs.items()}
    plan = plan_restore(prefix, list(variables.values()), **plan_kwargs)
    if edit is not None:
        edit(plan)
    with v1_.Session(graph=graph) as sess:
        if how == "library":
            ckptwidgets.restore(plan, session=sess, initialize_unmapped=init_unmapped)
        else:
            with graph.as_default():
                v1_.train.Saver(var_list=plan.var_list).restore(sess, prefix)
                if init_unmapped:
                    sess.run(v1_.variables_initializer([variables[n] for n in plan.unmapped]))
        keep = [n for n in variables if init_unmapped or n not in plan.unmapped]
        return {n: value.tolist() for n, value in zip(keep, sess.run([variables[n] for n in keep]))}


# --- scenarios 1 to 4 ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "use_resource, wording",
    [
        (True, "Could not find variable v2"),
        (False, "Attempting to use uninitialized value v2"),
    ],
)
def test_scenario1_partial_restore(base_ckpt, use_resource, wording):
    graph = tf.Graph()
    with graph.as_default():
        v1 = v1_.Variable([10.0], name="v1", use_resource=use_resource)
        v2 = v1_.Variable([2.0], name="v2", use_resource=use_resource)
        total = v1 + v2
    plan = plan_restore(base_ckpt, [v1, v2])
    plan.unassign(v2)  # as Saver(var_list=[v1])
    assert plan.unmapped == ["v2"]
    with v1_.Session(graph=graph) as sess:
        report = ckptwidgets.restore(plan, session=sess)
        assert report.restored == [("v1", "v1")] and report.left_alone == ["v2"] and report.initialized == []
        with pytest.raises(tf.errors.FailedPreconditionError, match=wording):
            sess.run(total)
        report = ckptwidgets.restore(plan, session=sess, initialize_unmapped=True)
        assert report.initialized == ["v2"] and report.left_alone == []
        np.testing.assert_array_equal(sess.run(total), [3.0])


@pytest.mark.parametrize("how", ["library", "saver"])
@pytest.mark.parametrize("use_resource", [True, False])
def test_scenario1_values_match_saver(base_ckpt, how, use_resource):
    values = restore_in_fresh_graph(
        base_ckpt, {"v1": [10.0], "v2": [2.0]}, how, use_resource, edit=lambda p: p.unassign("v2"), init_unmapped=True
    )
    assert values == {"v1": [1.0], "v2": [2.0]}


@pytest.mark.parametrize("how", ["library", "saver"])
@pytest.mark.parametrize("via", ["assign", "rules"])
def test_scenario2_other_names(base_ckpt, how, via):
    specs = {"other-v1": [0.0], "other-v2": [0.0]}
    if via == "assign":
        values = restore_in_fresh_graph(
            base_ckpt, specs, how, edit=lambda p: (p.assign("other-v1", "v1"), p.assign("other-v2", "v2"))
        )
    else:
        values = restore_in_fresh_graph(base_ckpt, specs, how, rules={"v1": "other-v1", "v2": "other-v2"})
    assert values == {"other-v1": [1.0], "other-v2": [2.0]}
    assert np.add(values["other-v1"], values["other-v2"]).tolist() == [3.0]


def test_scenario2_without_mapping_is_what_saver_refuses(base_ckpt):
    graph = tf.Graph()
    with graph.as_default():
        a1 = v1_.Variable([0.0], name="other-v1")
        with v1_.Session(graph=graph) as sess, pytest.raises(tf.errors.NotFoundError, match="Key other-v1 not found"):
            v1_.train.Saver([a1]).restore(sess, base_ckpt)
    assert plan_restore(base_ckpt, [a1]).unmapped == ["other-v1"]


@pytest.mark.parametrize("how", ["library", "saver"])
def test_scenario3_shadows_restored(ema_ckpt, how):
    graph = tf.Graph()
    with graph.as_default():
        v = v1_.Variable(0.0, name="v")
        v2 = v1_.Variable(0.0, name="v2")
        ema = v1_.train.ExponentialMovingAverage(0.99)
        ema.apply([v, v2])
        plan = plan_restore(ema_ckpt, v1_.global_variables())
        assert sorted(plan.mapping.values()) == ["v", "v/ExponentialMovingAverage", "v2", "v2/ExponentialMovingAverage"]
        with v1_.Session(graph=graph) as sess:
            if how == "library":
                ckptwidgets.restore(plan, session=sess)
            else:
                v1_.train.Saver(plan.var_list).restore(sess, ema_ckpt)
            assert sess.run([v, ema.average(v)]) == [np.float32(10.0), SHADOW]


@pytest.mark.parametrize("how", ["library", "saver"])
def test_scenario4_shadow_into_variable(ema_ckpt, how):
    values = restore_in_fresh_graph(ema_ckpt, {"v": 0.0}, how, prefer_ema=True)
    assert values == {"v": SHADOW}
    assert restore_in_fresh_graph(ema_ckpt, {"v": 0.0}, how) == {"v": np.float32(10.0)}


# --- eager, modules, Keras ----------------------------------------------------------------------
def test_eager_matches_saver(base_ckpt):
    mine = {"other-v1": tf.Variable([0.0]), "v2": tf.Variable([0.0])}
    plan = plan_restore(base_ckpt, mine, rules={"v1": "other-v1"})
    report = ckptwidgets.restore(plan, session="ignored in eager mode")
    assert report.restored == [("other-v1", "v1"), ("v2", "v2")] and report.nbytes == 8
    theirs = {"other-v1": tf.Variable([0.0]), "v2": tf.Variable([0.0])}
    v1_.train.Saver(plan_restore(base_ckpt, theirs, rules={"v1": "other-v1"}).var_list).restore(None, base_ckpt)
    for name in mine:
        np.testing.assert_array_equal(mine[name].numpy(), theirs[name].numpy())
    assert mine["other-v1"].numpy().tolist() == [1.0]


def test_eager_unmapped_left_alone(base_ckpt):
    v1, w = tf.Variable([0.0], name="v1"), tf.Variable([5.0], name="w")
    report = ckptwidgets.restore(plan_restore(base_ckpt, [v1, w]), initialize_unmapped=True)
    assert report.initialized == [] and report.left_alone == ["w"]
    assert w.numpy().tolist() == [5.0] and v1.numpy().tolist() == [1.0]


class Net(tf.Module):
    def __init__(self, scale):
        self.l1 = tf.Variable(tf.constant([1.0, 2.0]) * scale)
        self.layers = [tf.Variable(3.0 * scale)]


def test_tf_module_object_based(tmp_path):
    prefix = tf.train.Checkpoint(net=Net(1.0)).write(str(tmp_path / "module"))
    fresh, reference = Net(0.0), Net(0.0)
    plan = plan_restore(prefix, fresh, rules={"net/": "/"})
    ckptwidgets.restore(plan)
    tf.train.Checkpoint(net=reference).restore(prefix).expect_partial()
    assert fresh.l1.numpy().tolist() == reference.l1.numpy().tolist() == [1.0, 2.0]
    assert float(fresh.layers[0].numpy()) == float(reference.layers[0].numpy()) == 3.0


def make_keras_model(seed, name=None):
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d1"), keras.layers.Dense(1, name="d2")], name=name)


def test_keras_model_object_based(tmp_path):
    trained = make_keras_model(1)
    prefix = tf.train.Checkpoint(net=trained).write(str(tmp_path / "keras"))
    fresh = make_keras_model(2)
    plan = plan_restore(prefix, fresh, rules={"net/": "/"})
    # Names are the Keras paths; the object paths the checkpoint uses are tried after them.
    assert list(plan.variables) == [v.path for v in fresh.variables]
    assert plan.ok and plan.unmapped == [] and plan.unused == []
    assert plan.mapping[fresh.variables[0].path] == "net/_functional/_operations/1/_kernel/.ATTRIBUTES/VARIABLE_VALUE"
    ckptwidgets.restore(plan)
    for mine, theirs in zip(fresh.variables, trained.variables):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


def test_keras_model_against_name_based_checkpoint(tmp_path):
    trained = make_keras_model(1, name="net")
    # A name-based checkpoint keyed by the Keras paths ("net/d1/kernel").
    keys = {v.path: v.value for v in trained.variables}
    prefix = v1_.train.Saver(var_list=keys).save(None, str(tmp_path / "named.ckpt"))
    assert "net/d1/kernel" in ckptwidgets.open_checkpoint(prefix)
    fresh, reference = make_keras_model(2, name="net"), make_keras_model(3, name="net")
    plan = plan_restore(prefix, fresh)
    assert plan.ok and sorted(plan.mapping.values()) == sorted(keys)
    ckptwidgets.restore(plan)
    # plan.var_list holds the tf.Variables inside the Keras variables: a plain Saver accepts it.
    v1_.train.Saver(plan_restore(prefix, reference).var_list).restore(None, prefix)
    for mine, ref, theirs in zip(fresh.variables, reference.variables, trained.variables):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
        np.testing.assert_array_equal(ref.numpy(), theirs.numpy())


def test_slots_and_shadows_all_restored(tmp_path):
    def build():
        w = v1_.Variable([1.0, 2.0], name="w")
        step = v1_.train.get_or_create_global_step()
        train = v1_.train.AdamOptimizer(0.1).minimize(tf.reduce_sum(w * w), global_step=step)
        update = v1_.train.ExponentialMovingAverage(0.9).apply([w])
        return train, update

    graph = tf.Graph()
    with graph.as_default():
        train, update = build()
        with v1_.Session(graph=graph) as sess:
            sess.run(v1_.global_variables_initializer())
            sess.run(train)
            sess.run(update)
            expected = dict(zip([v.op.name for v in v1_.global_variables()], sess.run(v1_.global_variables())))
            prefix = v1_.train.Saver().save(sess, str(tmp_path / "train.ckpt"))
    graph = tf.Graph()
    with graph.as_default():
        build()
        plan = plan_restore(prefix, v1_.global_variables())
        assert plan.ok and plan.unmapped == [] and plan.unused == []
        with v1_.Session(graph=graph) as sess:
            ckptwidgets.restore(plan, session=sess)
            got = dict(zip(plan.variables, sess.run(list(plan.variables.values()))))
    assert got.keys() == expected.keys()
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name])


@pytest.fixture
def sharded_ckpt(tmp_path):
    """A Saver(sharded=True) checkpoint with variables on two CPU devices: two data shards."""
    graph = tf.Graph()
    with graph.as_default():
        with tf.device("/cpu:0"):
            v1_.Variable([1.0, 2.0], name="a")
        with tf.device("/cpu:1"):
            v1_.Variable([3.0], name="b")
        saver = v1_.train.Saver(sharded=True)
        with v1_.Session(graph=graph, config=v1_.ConfigProto(device_count={"CPU": 2})) as sess:
            sess.run(v1_.global_variables_initializer())
            prefix = saver.save(sess, str(tmp_path / "sharded.ckpt"))
    assert len(glob.glob(prefix + ".data-*-of-00002")) == 2
    return prefix


@pytest.mark.parametrize("how", ["library", "saver"])
def test_sharded_graph(sharded_ckpt, how):
    assert restore_in_fresh_graph(sharded_ckpt, {"a": [0.0, 0.0], "b": [0.0]}, how) == {"a": [1.0, 2.0], "b": [3.0]}


def test_sharded_eager(sharded_ckpt):
    a, b = tf.Variable([0.0, 0.0], name="a"), tf.Variable([0.0], name="b")
    ckptwidgets.restore(plan_restore(sharded_ckpt, [a, b]))
    assert a.numpy().tolist() == [1.0, 2.0] and b.numpy().tolist() == [3.0]


# --- refusals: problems, sessions -------------------------------------------------------------
def test_problems_refused_before_anything_changes(base_ckpt):
    graph = tf.Graph()
    with graph.as_default():
        v1 = v1_.Variable([7.0, 7.0, 7.0, 7.0], name="v1")  # [1] into [4]: TensorFlow says nothing
        v2 = v1_.Variable([7.0], name="v2")
    plan = plan_restore(base_ckpt, [v1, v2])
    plan.assign(v2, "missing")
    with v1_.Session(graph=graph) as sess:
        sess.run(v1_.global_variables_initializer())
        with pytest.raises(RestoreError) as info:
            ckptwidgets.restore(plan, session=sess)
        assert [p.reason for p in info.value.problems] == ["shape_mismatch", "missing_key"]
        assert "[1]" in str(info.value) and "[4]" in str(info.value) and "'missing'" in str(info.value)
        assert sess.run(v1).tolist() == [7.0] * 4 and sess.run(v2).tolist() == [7.0]


def test_graph_resource_shape_pitfall_is_real(base_ckpt):
    """What the shape_mismatch check protects from: a plain Saver silently changes the shape."""
    graph = tf.Graph()
    with graph.as_default():
        v1 = v1_.Variable([0.0] * 4, name="v1")
        plan = plan_restore(base_ckpt, [v1])
        assert plan.problems[0].reason == "shape_mismatch"
        with v1_.Session(graph=graph) as sess:
            v1_.train.Saver(plan.var_list).restore(sess, base_ckpt)  # no error at all
            assert sess.run(v1).tolist() == [1.0]


def test_session_required_in_graph_mode(base_ckpt):
    _, graph_v1 = tf.Graph(), None
    graph = tf.Graph()
    with graph.as_default():
        graph_v1 = v1_.Variable([0.0], name="v1")
    plan = plan_restore(base_ckpt, [graph_v1])
    with pytest.raises(RestoreError, match="session=sess"):
        ckptwidgets.restore(plan)
    with v1_.Session(graph=tf.Graph()) as other, pytest.raises(RestoreError, match="another graph"):
        ckptwidgets.restore(plan, session=other)
    mixed = plan_restore(base_ckpt, {"v1": graph_v1, "e": tf.Variable([0.0])})
    with pytest.raises(RestoreError, match="several graphs"):
        ckptwidgets.restore(mixed)
    with pytest.raises(PlanError, match="RestorePlan"):
        ckptwidgets.restore({"v1": graph_v1})


def test_graph_ops_built_once(base_ckpt):
    graph = tf.Graph()
    with graph.as_default():
        v1 = v1_.Variable([0.0], name="v1")
    plan = plan_restore(base_ckpt, [v1])
    with v1_.Session(graph=graph) as sess:
        ckptwidgets.restore(plan, session=sess)
        count = len(graph.get_operations())
        ckptwidgets.restore(plan, session=sess)
        assert len(graph.get_operations()) == count
        assert sess.run(v1).tolist() == [1.0]


# --- atomicity: damaged data files -----------------------------------------------------------------
@pytest.fixture
def damaged(tmp_path):
    """``a`` (100 floats, readable) then ``b`` (100 floats) cut short: ``(prefix, data file)``."""
    prefix = save_graph_checkpoint(tmp_path / "d.ckpt", {"a": [1.0] * 100, "b": [2.0] * 100})
    (data,) = glob.glob(prefix + ".data-*")
    with open(data, "rb") as f:
        raw = f.read()
    with open(data, "wb") as f:
        f.write(raw[:500])
    return prefix, data


@pytest.mark.parametrize("chunked", [False, True])
def test_truncated_eager_changes_nothing(damaged, chunked, monkeypatch):
    prefix, data = damaged
    monkeypatch.setattr(restore_module, "CHUNK_BYTES", 1)  # one read per tensor when chunked
    a, b = tf.Variable([7.0] * 100, name="a"), tf.Variable([7.0] * 100, name="b")
    with pytest.raises(CorruptCheckpointError) as info:
        ckptwidgets.restore(plan_restore(prefix, [a, b]), progress=(lambda d, t: None) if chunked else None)
    assert data in str(info.value) and "'b'" in str(info.value) and "Nothing was restored" in str(info.value)
    assert a.numpy().tolist() == [7.0] * 100 and b.numpy().tolist() == [7.0] * 100


@pytest.mark.parametrize("use_resource", [True, False])
@pytest.mark.parametrize("chunked", [False, True])
def test_truncated_graph_changes_nothing(damaged, use_resource, chunked, monkeypatch):
    prefix, data = damaged
    monkeypatch.setattr(restore_module, "CHUNK_BYTES", 1)
    graph = tf.Graph()
    with graph.as_default():
        a = v1_.Variable([7.0] * 100, name="a", use_resource=use_resource)
        b = v1_.Variable([7.0] * 100, name="b", use_resource=use_resource)
    plan = plan_restore(prefix, [a, b])
    with v1_.Session(graph=graph) as sess:
        sess.run(v1_.global_variables_initializer())
        with pytest.raises(CheckpointError) as info:
            ckptwidgets.restore(plan, session=sess, progress=(lambda d, t: None) if chunked else None)
        assert isinstance(info.value, CorruptCheckpointError)
        assert data in str(info.value) and "'b'" in str(info.value)
        assert sess.run(a).tolist() == [7.0] * 100 and sess.run(b).tolist() == [7.0] * 100


def test_flipped_bits_and_missing_data_file(base_ckpt):
    v1, v2 = tf.Variable([7.0], name="v1"), tf.Variable([7.0], name="v2")
    plan = plan_restore(base_ckpt, [v1, v2])
    (data,) = glob.glob(base_ckpt + ".data-*")
    with open(data, "rb") as f:
        raw = bytearray(f.read())
    raw[5] ^= 0xFF  # inside v2's four bytes
    with open(data, "wb") as f:
        f.write(bytes(raw))
    with pytest.raises(CorruptCheckpointError, match="Checksum") as info:
        ckptwidgets.restore(plan)
    assert "'v2'" in str(info.value)
    os.remove(data)
    with pytest.raises(CorruptCheckpointError, match="No such file"):
        ckptwidgets.restore(plan)
    assert v1.numpy().tolist() == [7.0] and v2.numpy().tolist() == [7.0]


# --- progress, report ---------------------------------------------------------------------------------
def test_progress_eager_and_graph(tmp_path, monkeypatch):
    prefix = save_graph_checkpoint(tmp_path / "p.ckpt", {"a": [1.0] * 4, "b": [2.0] * 4, "c": [3.0] * 4})
    monkeypatch.setattr(restore_module, "CHUNK_BYTES", 20)  # a+b, then c
    calls = []
    variables = [tf.Variable([0.0] * 4, name=n) for n in "abc"]
    ckptwidgets.restore(plan_restore(prefix, variables), progress=lambda d, t: calls.append((d, t)))
    assert calls == [(0, 3), (2, 3), (3, 3)]
    assert [v.numpy()[0] for v in variables] == [1.0, 2.0, 3.0]

    graph = tf.Graph()
    with graph.as_default():
        variables = [v1_.Variable([0.0] * 4, name=n) for n in "abc"]
    plan = plan_restore(prefix, variables)
    calls.clear()
    with v1_.Session(graph=graph) as sess:
        ckptwidgets.restore(plan, session=sess, progress=lambda d, t: calls.append((d, t)))
        assert sess.run(variables[2]).tolist() == [3.0] * 4
    assert calls[0] == (0, 3) and calls[-1] == (3, 3) and len(calls) == 3  # chunks may finish in any order

    def broken(done, total):
        if done:
            raise KeyboardInterrupt("stop")

    with v1_.Session(graph=graph) as sess:
        sess.run(v1_.global_variables_initializer())
        with pytest.raises(KeyboardInterrupt):
            ckptwidgets.restore(plan, session=sess, progress=broken)
        assert sess.run(variables[0]).tolist() == [0.0] * 4  # nothing assigned


def test_report_text(base_ckpt):
    v1, w = tf.Variable([0.0], name="v1"), tf.Variable([0.0], name="w")
    report = ckptwidgets.restore(plan_restore(base_ckpt, [v1, w]))
    assert isinstance(report, ckptwidgets.RestoreReport)
    assert report.checkpoint == base_ckpt and report.seconds >= 0
    text = str(report)
    assert "Restored 1 variable from" in text and "'v1' <- 'v1' = [1.]" in text and "Left alone: 'w'" in text
    assert report.values["v1"].tolist() == [1.0]
    assert "1 restored" in repr(report) and "1 left alone" in repr(report)


def test_restore_callable_whether_function_or_module(base_ckpt):
    import ckptwidgets.restore  # noqa: F401  (sets the package attribute to the module)

    v1 = tf.Variable([0.0], name="v1")
    report = ckptwidgets.restore(plan_restore(base_ckpt, [v1]))
    assert report.restored == [("v1", "v1")] and v1.numpy().tolist() == [1.0]
    from ckptwidgets.restore import restore

    assert restore(plan_restore(base_ckpt, [v1])).restored == [("v1", "v1")]


def test_excluded_variables_are_initialised_in_graph_mode(base_ckpt):
    # exclude= is a partial restore: the excluded v2 must still get its initializer,
    # or the sum fails exactly as in scenario 1.
    graph = tf.Graph()
    with graph.as_default():
        v1 = tf.compat.v1.Variable([0.0], name="v1")
        v2 = tf.compat.v1.Variable([5.0], name="v2")
        total = v1 + v2
        with tf.compat.v1.Session(graph=graph) as sess:
            plan = plan_restore(base_ckpt, [v1, v2], exclude="v2")
            report = ckptwidgets.restore(plan, session=sess, initialize_unmapped=True)
            assert report.restored == [("v1", "v1")] and report.initialized == ["v2"]
            assert sess.run(total).tolist() == [6.0]


def test_report_shows_small_values_read_back_in_graph_mode(base_ckpt):
    graph = tf.Graph()
    with graph.as_default():
        a1 = tf.compat.v1.Variable([0.0], name="other-v1")
        big = tf.compat.v1.Variable(tf.zeros([16]), name="big")
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(big.initializer)
            plan = plan_restore(base_ckpt, {"other-v1": a1})
            plan.assign("other-v1", "v1")
            report = ckptwidgets.restore(plan, session=sess)
            assert {k: v.tolist() for k, v in report.values.items()} == {"other-v1": [1.0]}
            assert "'other-v1' <- 'v1' = [1.]" in str(report)
