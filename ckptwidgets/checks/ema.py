"""Checks for the exercises of notebook 04, *Exponential moving averages*.

Each check prints one line, ``Correct: ...`` or ``Not yet: <hint>``; see
:mod:`ckptwidgets.checks`. The numbers they compare with come from TensorFlow's own
``ExponentialMovingAverage``, run by :func:`ckptwidgets.ema.ema_trace` (the op the notebook
runs), never from a table: :func:`predict_first_shadow` checks a prediction of the shadow
after one update, :func:`full_decay_step` the first step at which ``num_updates`` no longer
lowers the decay, and :func:`decay_reaches_90_by_50` reads the state of an
:class:`~ckptwidgets.EMAExplorer` (or of its :class:`~ckptwidgets.widgets.EMAModel`), so
that exercise is done in the widget.

Example
-------
>>> predict_first_shadow(9.9)
Not yet: 9.9 is 0.99 × 10: the decay weighs the old shadow (0), not the new value; shadow = decay × shadow + (1 − decay) × value.
>>> predict_first_shadow(0.1)
Correct: 0.99 × 0 + 0.01 × 10 = 0.1; TensorFlow computes it in float32 and prints 0.099999905 (the cells below show it, and why).
>>> full_decay_step(889)
Not yet: one step short: at step 889 TensorFlow uses the decay 0.98998886, still below 0.99.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..ema import ema_trace, steps_to_reach
from ..plots import format_value
from ._answers import as_int, is_todo
from . import TODO, check, correct, not_yet  # the docstrings' examples use TODO

__all__ = ["predict_first_shadow", "full_decay_step", "decay_reaches_90_by_50"]


def _is_graph_tensor(answer) -> bool:
    return hasattr(answer, "graph") and hasattr(answer, "op")


def _as_number(answer):
    """``answer`` as a Python float (int, float, numpy scalar or size-1 array), else None."""
    if isinstance(answer, (bool, np.bool_)) or isinstance(answer, str) or _is_graph_tensor(answer):
        return None
    if isinstance(answer, numbers.Real):
        return float(answer)
    try:
        array = np.asarray(answer)
    except Exception:
        return None
    if array.size == 1 and array.dtype.kind in "iuf":
        return float(array.reshape(()))
    return None


def _near(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-7)


def _percent(share: float, boundary: float) -> str:
    """``share`` as a percentage, with as many digits as it takes not to look like ``boundary``."""
    for digits in range(1, 6):
        text = f"{100 * share:.{digits}f}"
        if float(text) != round(100 * boundary, digits) or share == boundary:
            return text + "%"
    return text + "%"


# --- exercise 1: predict the shadow after one update ----------------------------------------
@check
def predict_first_shadow(predicted_shadow, decay=0.99, value=10.0, initial=0.0):
    """``predicted_shadow`` is the shadow after one ``apply`` with the variable at ``value``.

    The shadow starts at ``initial`` (the variable's initial value). The expected number is
    what TensorFlow's ``ExponentialMovingAverage(decay)`` computes, through
    :func:`ckptwidgets.ema.ema_trace`; the exact float (0.1) and the float32 TensorFlow prints
    (0.099999905) are both right.

    Examples
    --------
    >>> predict_first_shadow(TODO)
    Not yet: replace TODO with a number: what ema.average(v) holds after one run of update, with v at 10.0 and the shadow starting at 0.0.
    """
    if is_todo(predicted_shadow):
        return not_yet(
            f"replace TODO with a number: what ema.average(v) holds after one run of update, with v at {value!r} "
            f"and the shadow starting at {initial!r}."
        )
    if _is_graph_tensor(predicted_shadow):
        return not_yet("that is a tensor of the graph, which has no value outside a session; predict the number it will hold.")
    if isinstance(predicted_shadow, str):
        if _as_number(_float_or_none(predicted_shadow)) is not None:
            return not_yet(f"write the number without quotes: {predicted_shadow.strip()}, not {predicted_shadow!r}.")
        return not_yet("the answer is a number (a float such as 1.5), not a str.")
    guess = _as_number(predicted_shadow)
    if guess is None:
        return not_yet(f"the answer is a number (a float such as 1.5), not a {type(predicted_shadow).__name__}.")
    tf_value = float(ema_trace([value], decay=decay, initial=initial).shadow[0])  # TensorFlow's float32
    exact = decay * initial + (1 - decay) * value
    if _near(guess, tf_value) or _near(guess, exact):
        return correct(
            f"{decay!r} × {initial:g} + {1 - decay:.2g} × {value:g} = {exact:.10g}; TensorFlow computes it in float32 "
            f"and prints {format_value(tf_value)} (the cells below show it, and why)."
        )
    if _near(guess, value):
        return not_yet(
            f"{guess:g} is the variable itself; one update moves the shadow only (1 − decay) = {1 - decay:.2g} of "
            f"the way from {initial:g} towards it."
        )
    if _near(guess, initial):
        return not_yet(f"the apply op did run once: the shadow moves (1 − decay) = {1 - decay:.2g} of the way towards {value:g}.")
    if _near(guess, decay * value):
        return not_yet(
            f"{guess:g} is {decay!r} × {value:g}: the decay weighs the old shadow ({initial:g}), not the new value; "
            "shadow = decay × shadow + (1 − decay) × value."
        )
    if _near(guess, decay):
        return not_yet(f"{guess!r} is the decay, a weight; the question is the shadow's value: decay × shadow + (1 − decay) × value.")
    if _near(guess, 1 - decay):
        return not_yet(f"{guess:.2g} = 1 − decay is the share the new value gets; the shadow is that share of {value:g} (plus decay × {initial:g}).")
    if _near(guess, 100 * (1 - decay)) or _near(guess, 100 * exact / value if value else math.nan):
        return not_yet(f"that looks like a percentage; the question is the shadow's value: that share of the way from {initial:g} to {value:g}.")
    return not_yet(
        f"not {guess:g}: shadow = decay × shadow + (1 − decay) × value, with the shadow at {initial:g}, "
        f"decay {decay!r} and value {value:g}."
    )


def _float_or_none(text: str):
    try:
        return float(text)
    except ValueError:
        return None


# --- exercise 2: when does num_updates stop lowering the decay? ------------------------------
def _decays_used(decay: float) -> np.ndarray:
    """The decay TensorFlow uses at steps 1, 2, ... with ``num_updates=n``, past the step it reaches ``decay``."""
    last = math.ceil((10 * decay - 1) / (1 - decay)) + 3  # (1 + n) / (10 + n) >= decay from about here
    return ema_trace(1.0, steps=max(last, 3), decay=decay, num_updates=True).decay


@check
def full_decay_step(answer, decay=0.99):
    """``answer`` is the first step ``n`` at which ``min(decay, (1 + n) / (10 + n))`` is ``decay``.

    The decay used at each step is read from TensorFlow (``ema_trace(..., num_updates=True).decay``,
    in float32), with ``num_updates`` = 1 at step 1, as the notebook's loop feeds it.

    Examples
    --------
    >>> full_decay_step(TODO)
    Not yet: replace TODO with a step number n: the first n at which (1 + n) / (10 + n) is no longer below the decay 0.99.
    """
    if is_todo(answer):
        return not_yet(
            f"replace TODO with a step number n: the first n at which (1 + n) / (10 + n) is no longer below the "
            f"decay {decay!r}."
        )
    n = as_int(answer)
    if n is None:
        number = _as_number(answer)
        if number is not None and 0 < number < 1:
            return not_yet(f"{number!r} is a decay; the question is a step number n (an int), the first with decay {decay!r}.")
        return not_yet(f"the answer is a step number, an int such as 100; not {answer!r}.")
    if n < 1:
        return not_yet("steps count from 1 (num_updates = 1 at the first update).")
    used = _decays_used(decay)
    target = np.float32(decay)
    first = int(np.flatnonzero(used >= target)[0]) + 1
    if n == first:
        return correct(
            f"from step {first} on: (1 + {first}) / (10 + {first}) = {1 + first}/{10 + first} = {decay!r}; before it "
            f"TensorFlow uses a smaller decay ({used[0]:.2f} at step 1), so in the first few hundred steps num_updates decides "
            "how fast the shadow moves."
        )
    if n < first:
        short = "one step short: " if n == first - 1 else ""
        return not_yet(
            f"{short}at step {n} TensorFlow uses the decay {format_value(used[n - 1])}, still below {decay!r}."
            + ("" if short else f" Solve (1 + n) / (10 + n) = {decay!r} for n.")
        )
    extra = "one step too far: " if n == first + 1 else ""
    return not_yet(
        f"{extra}at step {n} the decay is {decay!r}, but it already was at step {n - 1}: look for the first step "
        f"where (1 + n) / (10 + n) reaches {decay!r}."
    )


# --- exercise 3: a decay that reaches 90% by step 50, in the EMAExplorer ---------------------
def _ema_model(explorer):
    """The :class:`EMAModel` of an explorer (or the model itself), else None. Duck-typed:
    this module imports no ipywidgets."""
    model = getattr(explorer, "model", explorer)
    if all(hasattr(model, name) for name in ("decay", "steps", "target", "num_updates", "trace", "error")):
        return model
    return None


@check
def decay_reaches_90_by_50(explorer, fraction=0.9, step=50):
    """The explorer's decay brings the shadow, from 0, to ``fraction`` of the target by ``step``.

    Reads the :class:`~ckptwidgets.EMAExplorer`'s model: its ``decay`` (slider or typed), with
    ``num_updates``, ``zero_debias`` and noisy values off, ``initial`` 0 and at least ``step``
    steps drawn; the verdict comes from the trace the widget draws (TensorFlow's op), and is
    the same as ``ema_trace(target, steps=step, decay=decay)``.
    """
    model = _ema_model(explorer)
    if model is None:
        if is_todo(explorer):
            return not_yet("pass the EMAExplorer of the exercise to the check (reach_explorer): it reads its decay.")
        if _as_number(explorer) is not None:
            return not_yet("pass the EMAExplorer itself to the check, not a number: it reads the decay set in the widget.")
        return not_yet(f"pass the EMAExplorer to the check (reach_explorer), not a {type(explorer).__name__}.")
    if model.error:
        return not_yet(f"the explorer shows an error: {model.error}")
    decay = float(model.decay)
    target, initial = float(model.target), float(getattr(model, "initial", 0.0))
    if model.num_updates:
        quick = ema_trace(target or 10.0, steps=step, decay=decay, num_updates=True)
        at = steps_to_reach(quick, fraction, target=target or 10.0)
        when = f"at step {at}" if at is not None else "soon"
        return not_yet(
            f"untick num_updates: it lowers the decay of the first steps to (1 + n) / (10 + n), so the shadow gets to "
            f"{fraction:.0%} {when} whatever the decay; the exercise asks what the decay alone does."
        )
    if getattr(model, "zero_debias", False):
        return not_yet("untick zero_debias: it divides the shadow by 1 − decay**k, so it is at the target from step 1; "
                       "the exercise is about the plain shadow, starting at 0.")
    if getattr(model, "noisy", False):
        return not_yet("untick 'noisy training values': the exercise holds the variable at a constant target.")
    if initial != 0.0:
        return not_yet(f"the shadow starts at initial = {initial:g} here; the exercise starts it at 0 (set initial back to 0.0).")
    if target == 0.0:
        return not_yet("set the target to a number other than 0 (10, say): from 0 to 0 the shadow has nowhere to go.")
    if model.steps < step:
        return not_yet(f"the explorer draws {model.steps} steps; set steps to {step} or more to see step {step}.")
    trace = model.trace
    if trace is None or not np.isclose(trace.decay_param, decay) or trace.num_updates or len(trace) < step:
        trace = ema_trace(target, steps=step, decay=decay)  # the widget's trace is always current; be safe
    share = float((trace.shadow[step - 1] - initial) / (target - initial))
    reach = steps_to_reach(trace, fraction, target=target)
    where = (f"{fraction:.0%} at step {reach}" if reach is not None
             else f"{fraction:.0%} not reached in {len(trace)} steps")
    if reach is None or reach > step:
        close = "just short: " if reach is not None and reach <= step + 2 else ""
        return not_yet(
            f"{close}with decay {decay!r} the shadow is at {_percent(share, fraction)} of the target at step {step} "
            f"({where}); a smaller decay follows faster: {fraction:.0%} by step {step} needs "
            f"decay**{step} <= {1 - fraction:.1g}."
        )
    largest = (1 - fraction) ** (1 / step)
    return correct(
        f"with decay {decay!r} the shadow is at {_percent(share, fraction)} of the target at step {step} ({where}): "
        f"decay**{step} = {decay ** step:.3g} <= {1 - fraction:.1g}. The largest decay that does it is "
        f"{1 - fraction:.1g} ** (1/{step}) = {largest:.5f}; a larger decay averages over more steps, a smaller one "
        "follows the variable more closely."
    )
