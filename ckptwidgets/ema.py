"""Exponential moving averages, computed by TensorFlow's own ``ExponentialMovingAverage``.

:func:`ema_trace` feeds a sequence of raw values through the real
``tf.compat.v1.train.ExponentialMovingAverage`` (graph mode, its ``apply`` op) and
records the shadow value and the decay used after every step. :func:`closed_form`
evaluates the same update rule in float64 numpy, so a plot can overlay the exact
mathematics on TensorFlow's float32 result. :func:`steps_to_reach` answers "how
many steps until the average has caught up?".

Example
-------
>>> import numpy as np
>>> from ckptwidgets.ema import ema_trace, closed_form, steps_to_reach
>>> trace = ema_trace([10.0], decay=0.99)          # scenario 3: 0.0 -> 10 -> apply once
>>> bool(trace.shadow[0] == np.float32(0.099999905))
True
>>> trace = ema_trace(10.0, steps=400, decay=0.99)
>>> steps_to_reach(trace, 0.95)                   # 1 - 0.99**k >= 0.95
299
>>> ema_trace([10.0], num_updates=True).decay     # min(0.99, (1 + 1) / (10 + 1))
array([0.18181819], dtype=float32)
"""
from __future__ import annotations

import math
import numbers
import threading
from dataclasses import dataclass

import numpy as np

from ._tf.quiet import import_tensorflow
from .errors import PlanError

__all__ = ["EMATrace", "ema_trace", "closed_form", "steps_to_reach"]


@dataclass(frozen=True, eq=False)
class EMATrace:
    """The result of :func:`ema_trace`: one row per step. Arrays are read-only.

    Attributes
    ----------
    values : numpy.ndarray of float32
        The raw value assigned to the variable before each step.
    shadow : numpy.ndarray of float32
        The shadow (moving average) after each step, as TensorFlow computed it.
    decay : numpy.ndarray of float32
        The decay TensorFlow used at each step (``decay_param``, or
        ``min(decay_param, (1 + n) / (10 + n))`` with ``num_updates``).
    steps : numpy.ndarray of int64
        Step numbers ``1..N``: ``shadow[i]`` is the value after step ``steps[i]``.
    decay_param, num_updates, zero_debias, initial
        The arguments the trace was computed with.
    """

    values: np.ndarray
    shadow: np.ndarray
    decay: np.ndarray
    steps: np.ndarray
    decay_param: float
    num_updates: bool
    zero_debias: bool
    initial: float

    def __len__(self) -> int:
        return len(self.steps)

    def __repr__(self) -> str:
        return (
            f"EMATrace({len(self)} steps, decay={self.decay_param:g}, num_updates={self.num_updates}, "
            f"zero_debias={self.zero_debias}, initial={self.initial:g}, final shadow={str(self.shadow[-1])})"
        )


# --- validation --------------------------------------------------------------------------


def _check_decay(decay) -> float:
    if isinstance(decay, bool) or not isinstance(decay, numbers.Real):
        raise PlanError(f"decay must be a number strictly between 0 and 1, got {decay!r}")
    value = float(decay)
    # float32 is what TF computes in: 0.99999999 would round to 1.0 and never move.
    if not (0.0 < value < 1.0) or not (0.0 < float(np.float32(value)) < 1.0):
        raise PlanError(f"decay must be strictly between 0 and 1 (in float32), got {decay!r}")
    return value


def _check_flag(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise PlanError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _check_initial(initial, zero_debias: bool) -> float:
    if isinstance(initial, bool) or not isinstance(initial, numbers.Real) or not math.isfinite(initial):
        raise PlanError(f"initial must be a finite number, got {initial!r}")
    if zero_debias and initial != 0:
        # TF creates a zero-debiased shadow with zeros (create_zeros_slot): the start is 0.
        raise PlanError(f"zero_debias=True shadows start at 0 (TensorFlow creates them with zeros); initial={initial!r}")
    return float(initial)


def _check_values(values, steps) -> np.ndarray:
    if steps is not None:
        if isinstance(steps, bool) or not isinstance(steps, numbers.Integral):
            raise PlanError(f"steps must be a positive integer, got {steps!r}")
        if steps < 1:
            raise PlanError(f"steps must be a positive integer, got {steps!r}")
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise PlanError(f"values must be numbers (a sequence or 1-D array), got {values!r:.80}") from None
    if array.ndim == 0:
        if steps is None:
            raise PlanError(f"a single value {values!r} needs steps=N (how many steps to hold it)")
        array = np.full(int(steps), array)
    elif steps is not None and steps != array.shape[0]:
        raise PlanError(f"steps={steps!r} but {array.shape[0]} values were given; pass one or the other")
    if array.ndim != 1:
        raise PlanError(f"values must be 1-D (one value per step), got shape {array.shape}")
    if array.size == 0:
        raise PlanError("values is empty: an EMA trace needs at least one step")
    with np.errstate(over="ignore"):  # overflow to inf is reported just below
        as32 = array.astype(np.float32)
    bad = np.flatnonzero(~np.isfinite(as32))
    if bad.size:
        raise PlanError(f"values[{bad[0]}] = {float(array[bad[0]])!r} is not a finite float32 number")
    return as32


# --- the TensorFlow program --------------------------------------------------------------


class _Program:
    """One graph + session running the real EMA over a whole sequence in a ``tf.while_loop``.

    Built once per (num_updates, zero_debias): the decay, the values and the initial value
    are fed, so slider changes never rebuild the graph. A loop costs one ``session.run``
    instead of one per step.
    """

    def __init__(self, num_updates: bool, zero_debias: bool):
        tf = import_tensorflow()
        v1 = tf.compat.v1
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.values = v1.placeholder(tf.float32, [None], name="values")
            self.decay = v1.placeholder(tf.float32, [], name="decay")
            self.initial = v1.placeholder_with_default(np.float32(0.0), [], name="initial")
            var = v1.Variable(self.initial, name="x", use_resource=True)
            count = tf.shape(self.values)[0]

            def body(i, previous, shadows, decays):
                # The chain through `previous` (plus parallel_iterations=1) keeps the steps
                # in order: stateful ops of different iterations are otherwise unordered.
                with tf.control_dependencies([previous]):
                    assigned = var.assign(self.values[i])
                with tf.control_dependencies([assigned]):
                    # TF zero-debiases only shadows of *tensors*; given a Variable it
                    # silently ignores zero_debias. So debiasing applies to the value.
                    target = tf.identity(var.read_value(), name="value") if zero_debias else var
                    # n = the step number, as global_step is after the train op of the
                    # canonical loop `with control_dependencies([train_op]): ema.apply()`.
                    n = tf.cast(i + 1, tf.float32, name="n") if num_updates else None
                    ema = v1.train.ExponentialMovingAverage(self.decay, num_updates=n, zero_debias=zero_debias)
                    first_op = len(tf.compat.v1.get_default_graph().get_operations())
                    update = ema.apply([target])
                    # The decay TF used is the `Minimum` op apply built (num_updates) or the feed.
                    created = tf.compat.v1.get_default_graph().get_operations()[first_op:]
                    minimum = [op.outputs[0] for op in created if op.type == "Minimum"]
                    used = minimum[0] if minimum else tf.identity(self.decay)
                with tf.control_dependencies([update]):
                    shadow = ema.average(target).read_value()
                return i + 1, shadow, shadows.write(i, shadow), decays.write(i, used)

            start = (
                tf.constant(0),
                tf.constant(0.0),
                tf.TensorArray(tf.float32, size=count),
                tf.TensorArray(tf.float32, size=count),
            )
            _, _, shadows, decays = tf.while_loop(
                lambda i, *_: i < count, body, start, parallel_iterations=1
            )
            self.outputs = (shadows.stack(), decays.stack())
            # The shadow's initializer reads the variable when it is initialised: reset the
            # variable first, then the shadows (EMA ones, `biased`, `local_step`).
            self.init_variable = var.initializer
            self.init_rest = v1.group(*[v.initializer for v in v1.global_variables() if v is not var])
        self.graph.finalize()
        self.session = v1.Session(graph=self.graph)

    def run(self, values: np.ndarray, decay: float, initial: float):
        feed = {self.values: values, self.decay: np.float32(decay), self.initial: np.float32(initial)}
        self.session.run(self.init_variable, feed)
        self.session.run(self.init_rest, feed)
        return self.session.run(self.outputs, feed)


_programs: dict[tuple[bool, bool], _Program] = {}
# One lock for building and running: a program's variables are shared state.
_lock = threading.Lock()


def ema_trace(values, decay=0.99, num_updates=False, zero_debias=False, initial=0.0, steps=None) -> EMATrace:
    """Run TensorFlow's ``ExponentialMovingAverage`` over ``values``, one ``apply`` per step.

    A scalar float32 variable starts at ``initial``; before step ``k`` it is assigned
    ``values[k-1]`` and the EMA's apply op runs. TF creates the shadow with the variable's
    initial value, so the shadow also starts at ``initial``: ``shadow_k = d_k * shadow_{k-1}
    + (1 - d_k) * values[k-1]``, in float32.

    Parameters
    ----------
    values : sequence or 1-D array of float, or a single float with ``steps``
        The raw value at each step (converted to float32; must be finite).
    decay : float
        The EMA decay, strictly between 0 and 1.
    num_updates : bool
        Pass a step counter ``n`` to the EMA, so the decay used at step ``k`` is
        ``min(decay, (1 + n) / (10 + n))`` with ``n = k`` (1 at the first step, the value
        ``global_step`` has after the optimizer incremented it in the canonical loop).
    zero_debias : bool
        Pass ``zero_debias=True`` to the EMA. TF honours it only for shadows of tensors
        (given a ``tf.Variable`` it is silently ignored), so the EMA is applied to the
        variable's value tensor: the shadow starts at 0 and is divided by ``1 - d**k``.
    initial : float
        The variable's initial value, where the shadow starts (must be 0 with zero_debias).
    steps : int, optional
        With a single value: hold it for this many steps.

    Returns
    -------
    EMATrace

    Raises
    ------
    PlanError
        Bad arguments (decay outside (0, 1), empty or non-finite values, bad steps...).

    Examples
    --------
    >>> trace = ema_trace([10.0, 10.0, 10.0], decay=0.5)
    >>> trace.shadow
    array([5.  , 7.5 , 8.75], dtype=float32)
    >>> trace.steps
    array([1, 2, 3])
    """
    decay = _check_decay(decay)
    num_updates = _check_flag("num_updates", num_updates)
    zero_debias = _check_flag("zero_debias", zero_debias)
    initial = _check_initial(initial, zero_debias)
    array = _check_values(values, steps)
    key = (num_updates, zero_debias)
    with _lock:
        program = _programs.get(key)
        if program is None:
            program = _programs[key] = _Program(num_updates, zero_debias)
        shadow, used = program.run(array, decay, initial)
    for column in (array, shadow, used):
        column.setflags(write=False)
    numbers_ = np.arange(1, array.shape[0] + 1)
    numbers_.setflags(write=False)
    return EMATrace(array, shadow, used, numbers_, decay, num_updates, zero_debias, initial)


def closed_form(values, decay, num_updates=False, zero_debias=False, initial=0.0, steps=None) -> np.ndarray:
    """The EMA's shadow after each step in exact float64 arithmetic (no TensorFlow).

    The same rule :func:`ema_trace` runs in float32, for an overlay that shows TF's rounding.
    For a constant value ``x`` and a fixed decay it is the closed form
    ``x + (initial - x) * decay**k``. With ``zero_debias`` the biased average
    ``b_k`` (from 0) is divided by ``1 - d_k**k``, as TF does with the current decay ``d_k``.

    Parameters are those of :func:`ema_trace`.

    Returns
    -------
    numpy.ndarray of float64, one value per step.

    Examples
    --------
    >>> closed_form([10.0, 10.0], decay=0.99)
    array([0.1  , 0.199])
    """
    decay = _check_decay(decay)
    num_updates = _check_flag("num_updates", num_updates)
    zero_debias = _check_flag("zero_debias", zero_debias)
    initial = _check_initial(initial, zero_debias)
    xs = _check_values(values, steps).astype(np.float64)
    k = np.arange(1, xs.shape[0] + 1, dtype=np.float64)
    d = np.minimum(decay, (1.0 + k) / (10.0 + k)) if num_updates else np.full(xs.shape, decay)
    if not num_updates and np.all(xs == xs[0]):
        # Constant input, fixed decay: the true closed form, no accumulated rounding;
        # expm1 keeps 1 - decay**k accurate where the subtraction would cancel digits.
        out = initial * decay**k - xs[0] * np.expm1(k * np.log(decay))
    else:
        out = np.empty_like(xs)
        s = initial
        for i, (x, di) in enumerate(zip(xs.tolist(), d.tolist())):
            s = di * s + (1.0 - di) * x
            out[i] = s
    if zero_debias:
        out = out / (1.0 - d**k)
    return out


def steps_to_reach(trace: EMATrace, fraction=0.95, target=None) -> int | None:
    """The first step after which the shadow has closed ``fraction`` of the gap to ``target``.

    "Reached" means ``abs(target - shadow) <= (1 - fraction) * abs(target - start)``, where
    ``start`` is where the shadow began (``trace.initial``; 0 with zero_debias).

    Parameters
    ----------
    trace : EMATrace
    fraction : float
        Between 0 and 1 (inclusive of 1: exact arrival).
    target : float, optional
        Defaults to the last raw value, ``trace.values[-1]``.

    Returns
    -------
    int or None
        A step number (``trace.steps`` counts from 1), or None if never reached.

    Examples
    --------
    >>> steps_to_reach(ema_trace(1.0, steps=30, decay=0.5), 0.99)   # 1 - 0.5**7 >= 0.99
    7
    """
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0.0 < fraction <= 1.0:
        raise PlanError(f"fraction must be in (0, 1], got {fraction!r}")
    if target is None:
        target = float(trace.values[-1])
    elif isinstance(target, bool) or not isinstance(target, numbers.Real) or not math.isfinite(target):
        raise PlanError(f"target must be a finite number, got {target!r}")
    start = 0.0 if trace.zero_debias else trace.initial
    gap = (1.0 - fraction) * abs(target - start)
    hits = np.flatnonzero(np.abs(target - trace.shadow.astype(np.float64)) <= gap)
    return int(trace.steps[hits[0]]) if hits.size else None
