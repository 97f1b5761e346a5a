"""ckptwidgets.checks.moving_average: notebook 05's checks (issue #14).

The right answer is ``Correct``; typical wrong answers get a hint naming what to look at;
``TODO`` is ``Not yet``; nothing raises. The dict check restores for real with TensorFlow,
the mapper check reads a real ``VariableMapper`` after a real restore.
"""
from __future__ import annotations

import numpy as np
import pytest

import ckptwidgets
from ckptwidgets.checks import TODO
from ckptwidgets.checks import moving_average as checks
from conftest import tf, v1_
from _checks import result

SHADOW_VALUE = np.float32(0.099999905)  # 0.99 * 0 + 0.01 * 10 in float32 (SCENARIOS.md, 3.)


def eval_graph():
    graph = tf.Graph()
    with graph.as_default():
        v = v1_.Variable(0.0, name="v")
        v2 = v1_.Variable(0.0, name="v2")
    return graph, v, v2


# --- exercise 1: a Saver dict for v2's average only --------------------------------------
def test_only_v2_right(ema_ckpt):
    graph, v, v2 = eval_graph()
    res = result(checks.only_v2_average, {"v2/ExponentialMovingAverage": v2}, v2, ema_ckpt)
    assert res.ok, res
    assert "0.099999905" in res.message and "10.0" in res.message, res
    # the check restored in its own session; the learner's own Saver does the same
    with graph.as_default(), v1_.Session() as sess:
        v1_.train.Saver({"v2/ExponentialMovingAverage": v2}).restore(sess, ema_ckpt)
        assert sess.run(v2) == SHADOW_VALUE


def test_only_v2_right_with_a_checkpoint_object_and_eager(ema_ckpt):
    v2 = tf.Variable(0.0, name="v2")
    res = result(checks.only_v2_average, {"v2/ExponentialMovingAverage": v2}, v2, ckptwidgets.open_checkpoint(ema_ckpt))
    assert res.ok, res
    assert v2.numpy() == SHADOW_VALUE  # eager: the check's restore is the learner's too


def _vtr(v, v2):
    with v2.graph.as_default():
        return v1_.train.ExponentialMovingAverage(0.99).variables_to_restore([v2])


@pytest.mark.parametrize(
    "make, hint",
    [
        (lambda v, v2: TODO, "replace TODO"),
        (lambda v, v2: [v2], "a list (or one variable)"),
        (lambda v, v2: v2, "a list (or one variable)"),
        (lambda v, v2: "v2/ExponentialMovingAverage", "a dict"),
        (lambda v, v2: {}, "the dict is empty"),
        # the dict the wrong way round
        (lambda v, v2: {"v2": "v2/ExponentialMovingAverage"}, "wrong way round"),
        (lambda v, v2: {v2.ref(): "v2/ExponentialMovingAverage"}, "wrong way round"),
        (lambda v, v2: {v2.ref(): v2}, "keys are the names in the checkpoint"),
        (lambda v, v2: {"v2/ExponentialMovingAverage": "v2"}, "the variable v2 itself, not a name"),
        # the raw key instead of the shadow
        (lambda v, v2: {"v2": v2}, "raw value (10.0)"),
        # both variables, by hand or from variables_to_restore
        (lambda v, v2: {"v/ExponentialMovingAverage": v, "v2/ExponentialMovingAverage": v2}, "also loads 'v/ExponentialMovingAverage'"),
        (_vtr, "maps every other variable to its own name"),
        # a ":0" suffix (the tensor's name)
        (lambda v, v2: {"v2/ExponentialMovingAverage:0": v2}, "checkpoint keys have no ':0'"),
        (lambda v, v2: {"v2:0": v2}, "checkpoint keys have no ':0'"),
        # other wrong keys and values
        (lambda v, v2: {"v2/ExponentialMovingAvg": v2}, "not a key of the checkpoint"),
        (lambda v, v2: {"v/ExponentialMovingAverage": v2}, "is not v2's average"),
        (lambda v, v2: {"v2/ExponentialMovingAverage": v}, "into 'v'"),
        (lambda v, v2: {"v2/ExponentialMovingAverage": 0.1}, "the graph's variable v2"),
    ],
)
def test_only_v2_hints(ema_ckpt, make, hint):
    _, v, v2 = eval_graph()
    res = result(checks.only_v2_average, make(v, v2), v2, ema_ckpt)
    assert not res.ok and hint in res.message, res


def test_only_v2_wrong_graph_or_shape(ema_ckpt):
    _, v, v2 = eval_graph()
    # a variable called v2, but of another graph than the v2 given
    _, _, stranger = eval_graph()
    res = result(checks.only_v2_average, {"v2/ExponentialMovingAverage": stranger}, v2, ema_ckpt)
    assert not res.ok and "into 'v2'" in res.message, res
    # a v2 declared [4]: a graph-mode Saver restores the scalar into it silently; the check does not
    with tf.Graph().as_default():
        wide = v1_.Variable(tf.zeros([4]), name="v2")
    res = result(checks.only_v2_average, {"v2/ExponentialMovingAverage": wide}, wide, ema_ckpt)
    assert not res.ok and "declared with shape [4], but 'v2/ExponentialMovingAverage' has shape []" in res.message, res


# --- exercise 2: predict a Keras 3 use_ema average --------------------------------------
def test_keras_average_right_and_what_keras_computes():
    res = result(checks.predict_keras_average, 16.875)
    assert res.ok and "10.0, 12.5, 16.875" in res.message, res
    assert result(checks.predict_keras_average, np.float32(16.875)).ok
    assert result(checks.predict_keras_average, "16.875").ok is False  # a number, not its text
    # the check's rule is Keras' own: the same three steps as the notebook
    import keras

    kernel = keras.Variable([[0.0]])
    optimizer = keras.optimizers.SGD(learning_rate=1.0, use_ema=True, ema_momentum=0.75)
    for _ in range(3):
        optimizer.apply_gradients([(tf.constant([[-10.0]]), kernel)])
    average = next(var for var in optimizer.variables if var.path.endswith("_average"))
    assert average.numpy()[0, 0] == 16.875 and kernel.numpy()[0, 0] == 30.0


@pytest.mark.parametrize(
    "answer, hint",
    [
        (TODO, "replace TODO with a number"),
        ("sixteen", "one number"),
        ([16.875, 30.0], "one number"),
        (30.0, "the kernel itself after step 3"),
        (12.5, "the average after step 2"),
        (10.0, "the average after step 1"),
        (12.65625, "starts the average at 0.0"),  # 0 -> 2.5 -> 6.875 -> 12.65625
        (26.875, "weighs the old average"),  # momentum and 1 - momentum swapped
        (20.0, "plain mean"),
        (15.0, "work step by step"),
    ],
)
def test_keras_average_hints(answer, hint):
    res = result(checks.predict_keras_average, answer)
    assert not res.ok and hint in res.message, res


def test_keras_average_other_run():
    # another run: weights 4, 8 with momentum 0.5 -> 4, 6
    assert result(checks.predict_keras_average, 6.0, weights=(4.0, 8.0), momentum=0.5).ok
    res = result(checks.predict_keras_average, 4.0, weights=(4.0, 8.0), momentum=0.5)
    assert not res.ok and "after step 1" in res.message, res


# --- exercise 3: prefer EMA in the mapper, then restore -----------------------------------
@pytest.fixture
def ema_mapper(ema_ckpt):
    graph, v, v2 = eval_graph()
    sess = v1_.Session(graph=graph)
    mapper = ckptwidgets.VariableMapper(ema_ckpt, [v, v2], session=sess)
    yield mapper
    sess.close()


def test_prefer_ema_right_by_the_button(ema_mapper):
    ema_mapper.prefer_ema_box.value = True  # what clicking the toggle does (linked to the model)
    assert ema_mapper.model.prefer_ema
    ema_mapper.restore_button.click()
    res = result(checks.prefer_ema_mapper, ema_mapper)
    assert res.ok, res
    assert "0.099999905" in res.message and "'v2/ExponentialMovingAverage'" in res.message, res
    assert ema_mapper.model.session.run(ema_mapper.plan.variables["v2"]) == SHADOW_VALUE
    # the model itself passes too
    assert result(checks.prefer_ema_mapper, ema_mapper.model).ok


def test_prefer_ema_right_in_eager_code(ema_ckpt):
    v = tf.Variable(0.0, name="v")
    v2 = tf.Variable(0.0, name="v2")
    mapper = ckptwidgets.VariableMapper(ema_ckpt, [v, v2], prefer_ema=True)
    mapper.restore()
    assert result(checks.prefer_ema_mapper, mapper).ok
    v2.assign(10.0)  # changed after the restore
    res = result(checks.prefer_ema_mapper, mapper)
    assert not res.ok and "v2 holds 10.0, not its shadow's 0.099999905" in res.message, res


def test_prefer_ema_hints_in_order(ema_mapper):
    model = ema_mapper.model

    def hint():
        res = result(checks.prefer_ema_mapper, ema_mapper)
        assert not res.ok, res
        return res.message

    assert "press the prefer EMA ★ button" in hint() and "v2 reads 'v2'" in hint()
    # the shadow chosen by hand, without the button
    model.choose("v2", "v2/ExponentialMovingAverage")
    assert "chosen by hand; press the prefer EMA ★ button instead" in hint()
    model.automap()
    # the button on, but a raw key chosen by hand is kept over it
    model.choose("v2", "v2")
    model.prefer_ema = True
    assert model.plan.mapping["v2"] == "v2"
    assert "kept over prefer EMA; press Auto-map" in hint()
    model.automap()
    assert model.plan.mapping["v2"] == "v2/ExponentialMovingAverage"
    assert "now press Restore" in hint()
    ema_mapper.restore()
    assert result(checks.prefer_ema_mapper, ema_mapper).ok
    # the plan changed after the restore: the report is out of date
    model.prefer_ema = False
    model.prefer_ema = True
    assert "changed since the last restore" in hint()
    ema_mapper.restore()
    assert result(checks.prefer_ema_mapper, ema_mapper).ok
    # an initialiser run after the restore undoes it
    model.session.run(ema_mapper.plan.variables["v2"].initializer)
    assert "v2 holds 0.0, not its shadow's 0.099999905" in hint()


def test_prefer_ema_problem_and_closed_session(ema_ckpt):
    graph = tf.Graph()
    with graph.as_default():
        v2 = v1_.Variable(tf.zeros([4]), name="v2")  # the checkpoint's v2 is a scalar
    sess = v1_.Session(graph=graph)
    mapper = ckptwidgets.VariableMapper(ema_ckpt, [v2], session=sess, prefer_ema=True)
    res = result(checks.prefer_ema_mapper, mapper)
    assert not res.ok and res.message.startswith("the plan has a problem: Variable 'v2' has shape [4]"), res
    graph, v, v2 = eval_graph()
    sess = v1_.Session(graph=graph)
    mapper = ckptwidgets.VariableMapper(ema_ckpt, [v, v2], session=sess, prefer_ema=True)
    mapper.restore()
    sess.close()
    res = result(checks.prefer_ema_mapper, mapper)
    assert not res.ok and "could not read v2 in the mapper's session" in res.message, res


def test_prefer_ema_wrong_arguments(ema_mapper, ema_ckpt):
    res = result(checks.prefer_ema_mapper, ema_mapper.plan)
    assert not res.ok and "not its plan" in res.message, res
    res = result(checks.prefer_ema_mapper, TODO)
    assert not res.ok and "pass the VariableMapper itself" in res.message, res
    res = result(checks.prefer_ema_mapper, ema_mapper, name="w")
    assert not res.ok and "has no variable 'w'" in res.message, res


def test_checks_print_one_line_and_never_raise(capsys, ema_ckpt, ema_mapper):
    _, v, v2 = eval_graph()
    for check, args in [
        (checks.only_v2_average, (TODO, v2, ema_ckpt)),
        (checks.only_v2_average, ({"v2/ExponentialMovingAverage": v2}, v2, "no/such/checkpoint")),
        (checks.only_v2_average, ({"v2/ExponentialMovingAverage": v2}, v2, TODO)),
        (checks.only_v2_average, ()),
        (checks.predict_keras_average, (TODO,)),
        (checks.predict_keras_average, (object(),)),
        (checks.predict_keras_average, ()),
        (checks.prefer_ema_mapper, (TODO,)),
        (checks.prefer_ema_mapper, (ema_mapper,)),
        (checks.prefer_ema_mapper, ()),
    ]:
        check(*args)
        out = capsys.readouterr().out
        assert out.count("\n") == 1 and out.startswith("Not yet: "), out
