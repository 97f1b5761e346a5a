"""Writing checkpoints (issue #12): every operation, checked with plain TensorFlow as the oracle."""
from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf

import ckptwidgets
from ckptwidgets import PlanError, WriteError, open_checkpoint, plan_restore
from ckptwidgets.convert import convert
from ckptwidgets.write import average, from_plan, plan_write

from conftest import save_graph_checkpoint

v1_ = tf.compat.v1


def tf_values(prefix) -> dict:
    reader = tf.train.load_checkpoint(prefix)
    return {key: reader.get_tensor(key) for key in reader.get_variable_to_shape_map()}


def saver_restore(prefix, values: dict) -> dict:
    """Restore ``{key: like-value}`` with a plain Saver in a fresh graph; return what it read."""
    graph = tf.Graph()
    with graph.as_default():
        variables = {k: v1_.Variable(np.zeros_like(v), name=k) for k, v in values.items()}
        saver = v1_.train.Saver(variables)
        with v1_.Session(graph=graph) as sess:
            saver.restore(sess, prefix)
            return {k: sess.run(v) for k, v in variables.items()}


@pytest.fixture
def trained(tmp_path):
    """A TF1 checkpoint with Adam slots, beta powers, global_step and EMA shadows."""
    graph = tf.Graph()
    with graph.as_default():
        w = v1_.Variable([[1.0, 2.0], [3.0, 4.0]], name="net/w")
        b = v1_.Variable([0.5, -0.5], name="net/b")
        step = v1_.train.get_or_create_global_step()
        train = v1_.train.AdamOptimizer(0.1).minimize(v1_.reduce_sum(w * w) + v1_.reduce_sum(b), global_step=step)
        with tf.control_dependencies([train]):
            update = v1_.train.ExponentialMovingAverage(0.5).apply([w, b])
        with v1_.Session(graph=graph) as sess:
            sess.run(v1_.global_variables_initializer())
            for _ in range(3):
                sess.run(update)
            return v1_.train.Saver().save(sess, str(tmp_path / "trained.ckpt"))


def test_copy_is_what_tensorflow_reads_bit_for_bit(tmp_path, trained):
    out = plan_write(trained).write(tmp_path / "copy.ckpt", progress=False)
    original, written = tf_values(trained), tf_values(out.prefix)
    assert set(written) == set(original)
    for key, value in original.items():
        assert written[key].dtype == value.dtype and written[key].tobytes() == value.tobytes(), key
    assert sorted(os.listdir(tmp_path)) == sorted(["checkpoint", "copy.ckpt.data-00000-of-00001", "copy.ckpt.index",
                                                   "trained.ckpt.data-00000-of-00001", "trained.ckpt.index",
                                                   "trained.ckpt.meta"])


def test_strip_for_serving_keeps_the_model_and_global_step(tmp_path, trained):
    plan = plan_write(trained).strip()
    assert sorted(plan.keys) == ["global_step", "net/b", "net/b/ExponentialMovingAverage", "net/w",
                                 "net/w/ExponentialMovingAverage"]
    assert {key for key, _ in plan.dropped} == {"beta1_power", "beta2_power", "net/b/Adam", "net/b/Adam_1",
                                                "net/w/Adam", "net/w/Adam_1"}
    out = plan.write(tmp_path / "serving.ckpt", progress=False)
    original = tf_values(trained)
    restored = saver_restore(out.prefix, {k: original[k] for k in plan.keys})
    for key, value in restored.items():
        np.testing.assert_array_equal(value, original[key])


def test_promote_ema_writes_each_shadow_under_its_variable(tmp_path, trained):
    plan = plan_write(trained).strip().promote_ema()
    assert sorted(plan.keys) == ["global_step", "net/b", "net/w"]
    assert ("net/w", "replaced by its shadow 'net/w/ExponentialMovingAverage'") in plan.dropped
    out = plan.write(tmp_path / "averaged.ckpt", progress=False)
    original = tf_values(trained)
    restored = saver_restore(out.prefix, {"net/w": original["net/w"], "net/b": original["net/b"]})
    np.testing.assert_array_equal(restored["net/w"], original["net/w/ExponentialMovingAverage"])
    np.testing.assert_array_equal(restored["net/b"], original["net/b/ExponentialMovingAverage"])
    assert not np.array_equal(restored["net/w"], original["net/w"])  # the shadow really differs


def test_rename_by_rules_and_pairs_as_init_from_checkpoint(tmp_path, trained):
    plan = plan_write(trained).strip().promote_ema().rename({"net/": "serving/net/"}, pairs={"global_step": "step"})
    assert sorted(plan.keys) == ["serving/net/b", "serving/net/w", "step"]
    out = plan.write(tmp_path / "renamed.ckpt", progress=False)
    original = tf_values(trained)
    graph = tf.Graph()
    with graph.as_default():  # the oracle: init_from_checkpoint with a scope rule into the new names
        w = v1_.get_variable("model/net/w", [2, 2])
        v1_.train.init_from_checkpoint(out.prefix, {"serving/net/": "model/net/"})
        with v1_.Session(graph=graph) as sess:
            sess.run(v1_.global_variables_initializer())
            np.testing.assert_array_equal(sess.run(w), original["net/w/ExponentialMovingAverage"])
    with pytest.raises(PlanError, match="maps a scope to a single name"):
        plan_write(trained).rename({"net/": "single"})
    with pytest.raises(PlanError, match=r"The rule \{'nope': 'x'\} renames nothing: no key 'nope' in"):
        plan_write(trained).rename({"nope": "x"})


def test_a_rename_that_collides_is_refused_before_anything_is_written(tmp_path, trained):
    plan = plan_write(trained).rename(pairs={"net/b": "net/w"})
    assert not plan.ok and "Two entries would be written under key 'net/w'" in plan.problems[0]
    with pytest.raises(WriteError, match="Nothing was written"):
        plan.write(tmp_path / "bad.ckpt", progress=False)
    assert not any(name.startswith("bad.ckpt") or "ckptwidgets-tmp" in name for name in os.listdir(tmp_path))


@pytest.mark.parametrize("target", ["float16", "bfloat16"])
def test_cast_floating_tensors(tmp_path, trained, target):
    out = plan_write(trained).strip().cast({"float32": target}).write(tmp_path / f"{target}.ckpt", progress=False)
    original, written = tf_values(trained), tf_values(out.prefix)
    assert written["net/w"].dtype.name == target and written["global_step"].dtype == np.int64
    np.testing.assert_array_equal(written["net/w"], original["net/w"].astype(written["net/w"].dtype))
    with pytest.raises(PlanError, match="float dtype"):
        plan_write(trained).cast({"int64": "float16"})


def test_from_a_restore_plan_under_the_variables_names(tmp_path, base_ckpt):
    a1, a2 = tf.Variable([0.0], name="other-v1"), tf.Variable([0.0], name="other-v2")
    plan = plan_restore(base_ckpt, [a1, a2], rules={"v1": "other-v1", "v2": "other-v2"})
    out = from_plan(plan).write(tmp_path / "saved" / "for-the-next-person.ckpt", progress=False)
    graph = tf.Graph()
    with graph.as_default():  # the next person needs no rules: plain names match
        b1, b2 = v1_.Variable([0.0], name="other-v1"), v1_.Variable([0.0], name="other-v2")
        with v1_.Session(graph=graph) as sess:
            v1_.train.Saver().restore(sess, out.prefix)
            assert sess.run(b1 + b2).tolist() == [3.0]
    bad = plan_restore(base_ckpt, [tf.Variable([0.0] * 4, name="v1")])
    with pytest.raises(PlanError, match="The plan has 1 problem; fix it first: "):
        from_plan(bad)


def test_average_is_the_float64_mean_rounded_once(tmp_path):
    rng = np.random.default_rng(0)
    values = [rng.standard_normal((3, 5)).astype(np.float32) for _ in range(5)]
    prefixes = []
    for i, value in enumerate(values):
        prefixes.append(save_graph_checkpoint(tmp_path / f"step-{i}.ckpt", {"w": value, "count": np.int64(i)}))
    out = average(prefixes).write(tmp_path / "averaged.ckpt", progress=False)
    written = tf_values(out.prefix)
    expected = (np.sum([v.astype(np.float64) for v in values], axis=0) / 5).astype(np.float32)
    assert written["w"].tobytes() == expected.tobytes()
    assert written["count"] == 4  # not a float: taken from the last


def test_average_refuses_checkpoints_that_disagree(tmp_path):
    a = save_graph_checkpoint(tmp_path / "a.ckpt", {"w": [1.0, 2.0]})
    b = save_graph_checkpoint(tmp_path / "b.ckpt", {"w": [1.0, 2.0, 3.0]})
    c = save_graph_checkpoint(tmp_path / "c.ckpt", {"x": [1.0, 2.0]})
    assert "'w' is float32 [2]" in average([a, b]).problems[0]
    assert "hold different keys" in average([a, c]).problems[0]
    with pytest.raises(PlanError, match="two checkpoints or more"):
        average([a])


def test_an_existing_output_is_refused_without_overwrite_and_the_source_itself_always(tmp_path, trained):
    before = tf_values(trained)
    for overwrite in (False, True):
        with pytest.raises(WriteError, match="is the input checkpoint itself"):
            plan_write(trained).strip().write(trained, overwrite=overwrite, progress=False)
    plan_write(trained).write(tmp_path / "out.ckpt", progress=False)
    with pytest.raises(WriteError, match="already exists"):
        plan_write(trained).write(tmp_path / "out.ckpt", progress=False)
    plan_write(trained).strip().write(tmp_path / "out.ckpt", overwrite=True, progress=False)  # another one, on request
    after = tf_values(tmp_path / "out.ckpt")
    assert "net/w/Adam" in before and "net/w/Adam" not in after
    np.testing.assert_array_equal(after["net/w"], before["net/w"])
    assert tf_values(trained).keys() == before.keys()


def test_state_file_only_on_request(tmp_path, base_ckpt):
    folder = tmp_path / "out"
    plan_write(base_ckpt).write(folder / "a.ckpt", progress=False)
    assert not (folder / "checkpoint").exists()
    plan_write(base_ckpt).write(folder / "b.ckpt", state_file=True, progress=False)
    assert tf.train.latest_checkpoint(str(folder)) == str(folder / "b.ckpt")


def test_dry_run_text_says_which_key_becomes_which(trained):
    text = str(plan_write(trained).strip().promote_ema().rename({"net/": "serving/"}))
    row = next(line for line in text.splitlines() if line.startswith("serving/w "))
    assert row.split() == ["serving/w", "net/w/ExponentialMovingAverage", "copy", "float32", "[2,", "2]", "16", "B"]
    assert "net/w/Adam: optimizer state (slot)" in text and "beta1_power: optimizer state (meta)" in text
    assert text.startswith("Write 3 tensors (32 B):")


def test_strings_and_an_object_based_checkpoint(tmp_path):
    module = tf.Module()
    module.w = tf.Variable([1.0, 2.0])
    module.words = tf.Variable([b"a", "检查点".encode(), b""])
    prefix = tf.train.Checkpoint(m=module).save(str(tmp_path / "objects"))  # save_counter too
    out = plan_write(prefix).write(tmp_path / "copy", progress=False)
    fresh = tf.Module()
    fresh.w, fresh.words = tf.Variable([0.0, 0.0]), tf.Variable([b"", b"", b""])
    tf.train.Checkpoint(m=fresh).restore(out.prefix).assert_existing_objects_matched()
    assert fresh.words.numpy().tolist() == [b"a", "检查点".encode(), b""] and fresh.w.numpy().tolist() == [1.0, 2.0]
    renamed = plan_write(prefix).rename({"m/": "model/"})
    assert "_CHECKPOINTABLE_OBJECT_GRAPH" not in renamed.keys and renamed.notes


def test_convert_a_tf1_checkpoint_for_a_keras_model(tmp_path):
    import keras

    kernel = np.arange(6, dtype=np.float32).reshape(2, 3)
    source = save_graph_checkpoint(tmp_path / "tf1.ckpt", {"old/dense/kernel": kernel, "old/dense/bias": [1.0, 2.0, 3.0]})

    def build():
        return keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, name="dense")], name="net")

    out = convert(source, tmp_path / "tf2" / "ckpt", build(), rules={"old/": "net/"})
    fresh = build()
    tf.train.Checkpoint(model=fresh).restore(out.prefix).assert_existing_objects_matched()
    np.testing.assert_array_equal(fresh.layers[0].kernel.numpy(), kernel)
    assert open_checkpoint(out.prefix).object_based
    with pytest.raises(WriteError, match="finds no key"):
        convert(source, tmp_path / "tf2b" / "ckpt", build())  # without the rule
    assert not (tmp_path / "tf2b").exists() or not os.listdir(tmp_path / "tf2b")


def test_write_needs_no_tensorflow(tmp_path, base_ckpt):
    import subprocess
    import sys

    code = (
        "import sys; from ckptwidgets.write import plan_write; "
        f"plan_write({base_ckpt!r}).rename({{'v1': 'w1'}}).write({str(tmp_path / 'out.ckpt')!r}, progress=False); "
        "print(any(m.startswith('tensorflow') for m in sys.modules))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.stdout.strip() == "False", run.stderr
    assert tf_values(str(tmp_path / "out.ckpt"))["w1"].tolist() == [1.0]


def test_lazy_names_in_the_package():
    assert ckptwidgets.plan_write is plan_write and ckptwidgets.average is average
