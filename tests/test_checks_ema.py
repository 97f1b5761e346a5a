"""ckptwidgets.checks.ema: notebook 04's checks (issue #14).

The right answer is ``Correct``; typical wrong answers get a hint naming what to look at;
``TODO`` is ``Not yet``; nothing raises. The expected numbers come from TensorFlow's own
``ExponentialMovingAverage`` (``ema_trace``); the widget check runs on a real
``EMAExplorer``, driven where a learner clicks and types (the slider, the decay box, the
check boxes).
"""
from __future__ import annotations

import numpy as np
import pytest

from ckptwidgets import EMAExplorer
from ckptwidgets.checks import TODO
from ckptwidgets.checks import ema as checks
from ckptwidgets.ema import ema_trace
from ckptwidgets.widgets import EMAModel
from conftest import tf, v1_
from _checks import hint, ok, result


# --- exercise 1: the shadow after one update ----------------------------------------------
def notebook_shadow():
    """Scenario 3 as the notebook runs it: v and its shadow at 0, v = 10, one apply."""
    with tf.Graph().as_default():
        v = v1_.Variable(0.0, name="v")
        ema = v1_.train.ExponentialMovingAverage(0.99)
        update = ema.apply([v])
        with v1_.Session() as sess:
            sess.run(v1_.global_variables_initializer())
            sess.run(v.assign(10.0))
            sess.run(update)
            return sess.run(ema.average(v))


def test_first_shadow_right_answers():
    shadow = notebook_shadow()
    assert shadow == np.float32(0.099999905)
    for answer in (shadow, float(shadow), 0.1, 0.99 * 0.0 + (1 - 0.99) * 10.0, np.float64(0.1), np.array([0.1])):
        res = ok(result(checks.predict_first_shadow, answer))
        assert "0.099999905" in res.message and "0.01 × 10" in res.message, res


def test_first_shadow_compares_with_tensorflow_not_a_constant():
    # Another decay, value and start: the expected number follows the arguments.
    ok(result(checks.predict_first_shadow, 3.5, decay=0.5, value=5.0, initial=2.0))
    hint(result(checks.predict_first_shadow, 0.1, decay=0.5, value=5.0, initial=2.0), "not 0.1")
    ok(result(checks.predict_first_shadow, float(ema_trace([4.0], decay=0.9).shadow[0]), decay=0.9, value=4.0))


@pytest.mark.parametrize("answer, words", [
    (TODO, ["replace TODO", "ema.average(v)"]),
    (None, ["replace TODO"]),
    (10.0, ["the variable itself", "0.01 of the way"]),
    (0, ["did run once"]),
    (9.9, ["0.99 × 10", "old shadow"]),
    (0.99, ["is the decay"]),
    (0.01, ["1 − decay", "share"]),
    (1, ["percentage"]),
    ("0.1", ["without quotes"]),
    ("a tenth", ["a number", "not a str"]),
    (True, ["a number", "bool"]),
    ([0.1, 0.2], ["a number", "list"]),
    (0.2, ["not 0.2", "decay × shadow + (1 − decay) × value"]),
])
def test_first_shadow_wrong_answers(answer, words):
    hint(result(checks.predict_first_shadow, answer), *words)


def test_first_shadow_graph_tensor():
    with tf.Graph().as_default():
        v = v1_.Variable(0.0, name="v")
        ema = v1_.train.ExponentialMovingAverage(0.99)
        ema.apply([v])
        hint(result(checks.predict_first_shadow, ema.average(v)), "tensor of the graph", "outside a session")


# --- exercise 2: the first step with the full decay ---------------------------------------
def test_full_decay_step_from_tensorflows_decays():
    used = ema_trace(1.0, steps=900, decay=0.99, num_updates=True).decay
    assert used[888] < np.float32(0.99) == used[889]  # step 889 below, step 890 the full decay
    for answer in (890, np.int64(890), 890.0, "890"):
        res = ok(result(checks.full_decay_step, answer))
        assert "891/900" in res.message, res
    # Another decay: (1 + n) / (10 + n) >= 0.9 from n = 80 on.
    ok(result(checks.full_decay_step, 80, decay=0.9))
    hint(result(checks.full_decay_step, 890, decay=0.9), "already was at step 889")


@pytest.mark.parametrize("answer, words", [
    (TODO, ["replace TODO", "(1 + n) / (10 + n)"]),
    (889, ["one step short", "0.98998886"]),
    (891, ["one step too far", "already was at step 890"]),
    (100, ["at step 100", "0.91818184", "Solve"]),
    (900, ["already was at step 899", "first step"]),
    (0.99, ["is a decay", "step number"]),
    (0, ["count from 1"]),
    (-5, ["count from 1"]),
    (890.5, ["step number, an int"]),
    ("step 890", ["step number, an int"]),
])
def test_full_decay_step_wrong_answers(answer, words):
    hint(result(checks.full_decay_step, answer), *words)


# --- exercise 3: a decay reaching 90% by step 50, in the EMAExplorer ------------------------
@pytest.fixture
def explorer():
    """The notebook's exercise explorer, as committed."""
    return EMAExplorer(decay=0.99, steps=100, target=10.0, fraction=0.9)


def test_reach_as_committed_says_how_far_decay_099_gets(explorer):
    res = hint(result(checks.decay_reaches_90_by_50, explorer), "with decay 0.99", "39.5% of the target at step 50",
               "90% not reached in 100 steps", "smaller decay")
    assert not res.message.startswith("just short"), res


def test_reach_with_the_slider(explorer):
    explorer.decay_slider.value = 0.95
    assert explorer.model.decay == 0.95
    res = ok(result(checks.decay_reaches_90_by_50, explorer))
    assert "92.3% of the target at step 50" in res.message and "90% at step 45" in res.message, res
    explorer.decay_slider.value = 0.97
    hint(result(checks.decay_reaches_90_by_50, explorer), "with decay 0.97", "78.2%", "90% at step 76")


def test_reach_with_a_typed_decay(explorer):
    explorer.decay_box.value = "0.9549"  # not on the slider's grid: typed, as the exercise allows
    assert explorer.model.decay == 0.9549
    ok(result(checks.decay_reaches_90_by_50, explorer))
    explorer.decay_box.value = "0.955"  # 0.955 ** 50 = 0.10004: reaches 90% at step 51
    res = hint(result(checks.decay_reaches_90_by_50, explorer), "just short", "89.99", "90% at step 51")
    assert "90.0%" not in res.message, res  # the percentage must not round up to the boundary


def test_reach_agrees_with_ema_trace_for_many_decays():
    for decay in (0.5, 0.9, 0.93, 0.95, 0.954, 0.9549, 0.955, 0.96, 0.97, 0.99, 0.999):
        model = EMAModel(decay=decay, steps=60, target=10.0)
        shadow = ema_trace(10.0, steps=50, decay=decay).shadow[49]
        assert result(checks.decay_reaches_90_by_50, model).ok == bool(shadow >= np.float32(9.0)), decay


def test_reach_accepts_the_model_and_any_target():
    ok(result(checks.decay_reaches_90_by_50, EMAModel(decay=0.9, steps=50, target=-3.0)))
    hint(result(checks.decay_reaches_90_by_50, EMAModel(decay=0.99, steps=50, target=-3.0)), "39.5%")


def test_reach_num_updates_is_not_a_shortcut(explorer):
    explorer.num_updates_box.value = True  # decay 0.99 reaches 90% at step 2 with it
    hint(result(checks.decay_reaches_90_by_50, explorer), "untick num_updates", "at step 2")
    explorer.num_updates_box.value = False
    explorer.compare_box.value = True  # comparing is fine: the decay alone is judged
    hint(result(checks.decay_reaches_90_by_50, explorer), "39.5%")
    explorer.decay_slider.value = 0.95
    ok(result(checks.decay_reaches_90_by_50, explorer))


def test_reach_other_settings_get_their_own_hints(explorer):
    explorer.decay_slider.value = 0.95
    explorer.zero_debias_box.value = True
    hint(result(checks.decay_reaches_90_by_50, explorer), "untick zero_debias")
    explorer.zero_debias_box.value = False
    explorer.noisy_box.value = True
    hint(result(checks.decay_reaches_90_by_50, explorer), "noisy training values")
    explorer.noisy_box.value = False
    explorer.steps_slider.value = 30
    hint(result(checks.decay_reaches_90_by_50, explorer), "draws 30 steps", "50 or more")
    explorer.steps_slider.value = 100
    explorer.target_box.value = 0.0
    hint(result(checks.decay_reaches_90_by_50, explorer), "target to a number other than 0")
    explorer.target_box.value = 10.0
    ok(result(checks.decay_reaches_90_by_50, explorer))
    explorer.model.initial = 2.0
    hint(result(checks.decay_reaches_90_by_50, explorer), "initial = 2")


def test_reach_model_error():
    model = EMAModel(decay=0.95, steps=60, target=10.0)
    model.zero_debias = True
    model.initial = 1.0  # zero_debias needs initial 0: the model reports an error
    assert model.error
    hint(result(checks.decay_reaches_90_by_50, model), "shows an error")


@pytest.mark.parametrize("answer, words", [
    (0.95, ["pass the EMAExplorer itself", "not a number"]),
    (TODO, ["pass the EMAExplorer", "reach_explorer"]),
    ("0.95", ["pass the EMAExplorer", "str"]),
])
def test_reach_wrong_argument(answer, words):
    hint(result(checks.decay_reaches_90_by_50, answer), *words)


# --- every check prints one line and never raises -----------------------------------------
@pytest.mark.parametrize("check, args", [
    (checks.predict_first_shadow, (object(),)),
    (checks.full_decay_step, (object(),)),
    (checks.decay_reaches_90_by_50, (object(),)),
    (checks.predict_first_shadow, ()),
    (checks.decay_reaches_90_by_50, ()),
])
def test_checks_print_one_line_and_never_raise(capsys, check, args):
    check(*args)
    out = capsys.readouterr().out
    assert out.startswith("Not yet: ") and out.count("\n") == 1, out
