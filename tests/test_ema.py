"""ema_trace against TensorFlow's own ExponentialMovingAverage, run one step at a time."""
from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest
import tensorflow as tf

from ckptwidgets import EMATrace, PlanError, ema_trace
from ckptwidgets.ema import closed_form, steps_to_reach

v1_ = tf.compat.v1


def per_step_tf(values, decay, num_updates=False, zero_debias=False, initial=0.0, ema_on_tensor=None):
    """The textbook TF1 loop: assign, (increment global_step), run apply, read the shadow.

    Returns ``(shadow, decay_used)`` as float32 arrays. ``decay_used`` is the output of the
    ``Minimum`` op the EMA built (or the decay itself without num_updates).
    """
    if ema_on_tensor is None:
        ema_on_tensor = zero_debias  # TF debiases shadows of tensors only
    graph = tf.Graph()
    with graph.as_default():
        var = v1_.Variable(np.float32(initial), name="x")
        global_step = v1_.Variable(0.0, name="global_step", trainable=False)
        value = v1_.placeholder(tf.float32, [])
        assign = var.assign(value)
        increment = global_step.assign_add(1.0)
        target = tf.identity(var) if ema_on_tensor else var
        ema = v1_.train.ExponentialMovingAverage(
            decay, num_updates=global_step if num_updates else None, zero_debias=zero_debias
        )
        update = ema.apply([target])
        shadow = ema.average(target)
        minimum = [op.outputs[0] for op in graph.get_operations() if op.type == "Minimum"]
        used = minimum[0] if minimum else tf.constant(decay, tf.float32)
        with v1_.Session(graph=graph) as sess:
            sess.run(v1_.global_variables_initializer())
            shadows, decays = [], []
            for x in values:
                sess.run([assign, increment], {value: x})
                _, d = sess.run([update, used])
                shadows.append(sess.run(shadow))
                decays.append(d)
    return np.array(shadows, np.float32), np.array(decays, np.float32)


@pytest.fixture(scope="module")
def noisy():
    return np.random.default_rng(3).normal(5.0, 3.0, 120).astype(np.float32)


def test_scenario_3_first_step_is_0_099999905():
    trace = ema_trace([10.0], decay=0.99)
    assert isinstance(trace, EMATrace)
    assert trace.shadow.dtype == np.float32
    assert trace.shadow[0] == np.float32(0.099999905)
    assert trace.shadow[0] != np.float32(0.1)  # the float32 rounding scenario 3 shows
    assert trace.decay.tolist() == [np.float32(0.99)]
    assert trace.steps.tolist() == [1]


@pytest.mark.parametrize("num_updates", [False, True])
@pytest.mark.parametrize("zero_debias", [False, True])
@pytest.mark.parametrize("decay", [0.9, 0.999])
def test_matches_per_step_tensorflow_exactly(noisy, decay, num_updates, zero_debias):
    trace = ema_trace(noisy, decay, num_updates=num_updates, zero_debias=zero_debias)
    shadow, used = per_step_tf(noisy, decay, num_updates, zero_debias)
    np.testing.assert_array_equal(trace.shadow, shadow)
    np.testing.assert_array_equal(trace.decay, used)
    np.testing.assert_array_equal(trace.values, noisy)
    assert (trace.decay_param, trace.num_updates, trace.zero_debias) == (decay, num_updates, zero_debias)


def test_initial_value_is_where_the_shadow_starts():
    trace = ema_trace([1.0, 2.0, 3.0], decay=0.9, initial=5.0)
    shadow, _ = per_step_tf([1.0, 2.0, 3.0], 0.9, initial=5.0)
    np.testing.assert_array_equal(trace.shadow, shadow)
    assert trace.shadow[0] == np.float32(5.0) - (np.float32(5.0) - np.float32(1.0)) * (
        np.float32(1.0) - np.float32(0.9)
    )


def test_num_updates_decay_column_uses_n_equal_to_the_step_number():
    trace = ema_trace(np.ones(40), decay=0.99, num_updates=True)
    n = np.arange(1, 41, dtype=np.float32)
    expected = np.minimum(np.float32(0.99), (np.float32(1) + n) / (np.float32(10) + n))
    np.testing.assert_array_equal(trace.decay, expected)
    assert trace.decay[0] == np.float32(2 / 11)  # step 1 -> n = 1, as global_step after the train op
    # (1 + n) / (10 + n) reaches 0.99 at n = 890 (891 / 900): from there on the cap holds.
    long = ema_trace(np.ones(900), decay=0.99, num_updates=True)
    assert long.decay[888] < np.float32(0.99)
    assert np.all(long.decay[889:] == np.float32(0.99))
    assert ema_trace(np.ones(3), decay=0.2, num_updates=True).decay.tolist() == [
        np.float32(2 / 11),  # below 0.2: the ramp
        np.float32(0.2),  # 3 / 12 = 0.25 is above: the cap
        np.float32(0.2),
    ]


def test_zero_debias_on_a_constant_gives_the_constant_from_step_one():
    trace = ema_trace(10.0, steps=5, decay=0.99, zero_debias=True)
    shadow, _ = per_step_tf([10.0] * 5, 0.99, zero_debias=True)
    np.testing.assert_array_equal(trace.shadow, shadow)
    np.testing.assert_allclose(trace.shadow, 10.0, rtol=1e-5)
    plain = ema_trace(10.0, steps=5, decay=0.99)
    assert plain.shadow[0] == np.float32(0.099999905)


def test_tensorflow_ignores_zero_debias_for_variables():
    """Why ema_trace applies the EMA to the variable's value when zero_debias=True."""
    on_variable, _ = per_step_tf([10.0] * 3, 0.99, zero_debias=True, ema_on_tensor=False)
    plain, _ = per_step_tf([10.0] * 3, 0.99, zero_debias=False)
    np.testing.assert_array_equal(on_variable, plain)
    assert not np.array_equal(ema_trace(10.0, steps=3, zero_debias=True).shadow, plain)


@pytest.mark.parametrize("num_updates", [False, True])
@pytest.mark.parametrize("zero_debias", [False, True])
def test_closed_form_agrees_within_float32_rounding(noisy, num_updates, zero_debias):
    trace = ema_trace(noisy, 0.95, num_updates=num_updates, zero_debias=zero_debias)
    exact = closed_form(noisy, 0.95, num_updates=num_updates, zero_debias=zero_debias)
    assert exact.dtype == np.float64 and exact.shape == trace.shadow.shape
    np.testing.assert_allclose(trace.shadow, exact, rtol=2e-6, atol=2e-6)


def test_closed_form_constant_input():
    exact = closed_form(10.0, 0.99, steps=3)
    np.testing.assert_allclose(exact, [0.1, 0.199, 0.29701], rtol=1e-15)
    assert closed_form([10.0, 10.0], 0.99, initial=4.0)[0] == pytest.approx(4.0 * 0.99 + 0.1, rel=1e-15)
    # Loop path (varying input) and formula path agree.
    np.testing.assert_allclose(closed_form([10.0, 10.0, 10.0 + 1e-12], 0.9)[:2], closed_form(10.0, 0.9, steps=2))


def test_steps_to_reach():
    trace = ema_trace(10.0, steps=400, decay=0.99)
    reached = steps_to_reach(trace, 0.95)
    # 1 - 0.99**k >= 0.95  <=>  k >= log(0.05) / log(0.99) = 298.07
    assert reached == 299
    assert trace.shadow[reached - 1] >= np.float32(9.5) > trace.shadow[reached - 2]
    assert steps_to_reach(trace, 0.5) == 69  # 0.99**69 = 0.4998
    assert steps_to_reach(ema_trace(10.0, steps=100, decay=0.99), 0.95) is None
    assert steps_to_reach(trace, 0.5, target=5.0) == 1 + steps_to_reach(trace, 0.5, target=5.0) - 1
    assert steps_to_reach(trace, 0.95, target=100.0) is None


def test_steps_to_reach_downwards_and_from_an_initial_value():
    trace = ema_trace(-4.0, steps=50, decay=0.5, initial=4.0)
    # gap 8; within 1% of it (0.08) once 8 * 0.5**k <= 0.08, k = 7.
    assert steps_to_reach(trace, 0.99) == 7
    assert steps_to_reach(ema_trace([0.0, 0.0], decay=0.5), 0.9) == 1  # no gap: reached at once


@pytest.mark.parametrize("bad", [0, 1, 1.0, -0.1, 1.5, float("nan"), float("inf"), 0.999999999, "0.9", True, None])
def test_bad_decay(bad):
    with pytest.raises(PlanError, match="decay") as info:
        ema_trace([1.0], decay=bad)
    assert repr(bad) in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"values": []}, "empty"),
        ({"values": [1.0, float("nan")]}, "values[1] = nan"),
        ({"values": [float("inf")]}, "values[0] = inf"),
        ({"values": [1e39]}, "values[0] = 1e+39"),  # overflows float32
        ({"values": [[1.0, 2.0]]}, "shape (1, 2)"),
        ({"values": ["a"]}, "numbers"),
        ({"values": 3.0}, "steps"),
        ({"values": 3.0, "steps": -1}, "-1"),
        ({"values": 3.0, "steps": 0}, "0"),
        ({"values": 3.0, "steps": 2.5}, "2.5"),
        ({"values": 3.0, "steps": True}, "True"),
        ({"values": [1.0, 2.0], "steps": 3}, "steps=3"),
        ({"values": [1.0], "zero_debias": True, "initial": 1.0}, "initial=1.0"),
        ({"values": [1.0], "initial": float("nan")}, "nan"),
        ({"values": [1.0], "num_updates": "yes"}, "'yes'"),
        ({"values": [1.0], "zero_debias": 1}, "zero_debias"),
    ],
)
def test_bad_arguments(kwargs, fragment):
    with pytest.raises(PlanError) as info:
        ema_trace(**kwargs)
    assert fragment in str(info.value)


@pytest.mark.parametrize("bad", [0, 1.5, -0.5, True])
def test_steps_to_reach_bad_fraction(bad):
    with pytest.raises(PlanError, match="fraction"):
        steps_to_reach(ema_trace([1.0]), bad)


def test_trace_is_immutable():
    trace = ema_trace([1.0, 2.0])
    with pytest.raises(dataclasses.FrozenInstanceError):
        trace.shadow = None
    with pytest.raises(ValueError):
        trace.shadow[0] = 0.0
    assert len(trace) == 2 and "2 steps" in repr(trace)


def test_repeated_calls_reset_the_state(noisy):
    first = ema_trace(noisy, 0.9, initial=2.0)
    ema_trace(np.full(7, 1000.0), 0.5)
    again = ema_trace(noisy, 0.9, initial=2.0)
    np.testing.assert_array_equal(first.shadow, again.shadow)
    np.testing.assert_array_equal(again.shadow, per_step_tf(noisy, 0.9, initial=2.0)[0])


def test_concurrent_calls_do_not_mix(noisy):
    inputs = [noisy * k for k in range(1, 7)]
    expected = [ema_trace(x, 0.9, num_updates=True).shadow for x in inputs]
    results = [None] * len(inputs)

    def work(i):
        for _ in range(5):
            results[i] = ema_trace(inputs[i], 0.9, num_updates=True).shadow

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, expected):
        np.testing.assert_array_equal(got, want)


def test_repr_prints_the_float32_shadow_plainly():
    # Learners read this in notebooks: no np.float32(...) wrapper, no float64 digits.
    assert repr(ema_trace([10.0])).endswith("final shadow=0.099999905)")
