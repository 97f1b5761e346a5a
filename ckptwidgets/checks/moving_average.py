"""Checks for the exercises of notebook 05, *Restore the moving average into the variable*.

Each check prints one line, ``Correct: ...`` or ``Not yet: <hint>``; see
:mod:`ckptwidgets.checks`. :func:`only_v2_average` looks at a learner's ``Saver`` dict and
then restores it for real with TensorFlow, comparing the variable with the shadow read from
the checkpoint; :func:`predict_keras_average` checks a prediction of a Keras 3 ``use_ema=True`` average;
:func:`prefer_ema_mapper` reads the state of a
:class:`~ckptwidgets.VariableMapper` (prefer EMA, the plan, the last restore and the value
the variable holds), so that exercise is done in the widget.

Example
-------
>>> only_v2_average({"v2": "v2/ExponentialMovingAverage"}, None, "moving_average.ckpt")
Not yet: the dict is the wrong way round: keys are the checkpoint's names (str), values the graph's variables: {'v2/ExponentialMovingAverage': v2}.
>>> only_v2_average({"v2/ExponentialMovingAverage:0": None}, None, "moving_average.ckpt")
Not yet: 'v2/ExponentialMovingAverage:0' ends in ':0', which names a tensor of the graph (v2.name); checkpoint keys have no ':0': write 'v2/ExponentialMovingAverage'.
>>> predict_keras_average(12.65625)
Not yet: 12.65625 starts the average at 0.0; a Keras optimizer starts it at the weight on the first step (10.0), then averages.
"""
from __future__ import annotations

import re

import numpy as np

from .._planning.variables import is_variable
from ..errors import CheckpointError
from ..plan import RestorePlan
from ..reader import open_checkpoint
from ._answers import is_todo, label, mapper_parts
from . import check, correct, not_yet

__all__ = ["only_v2_average", "predict_keras_average", "prefer_ema_mapper"]

#: The suffix of an ``ExponentialMovingAverage`` shadow's key.
SHADOW = "/ExponentialMovingAverage"
_OUTPUT_INDEX = re.compile(r":\d+$")


def _plain(value) -> str:
    """A float32 value as the notebook prints it: 0.099999905, [0.099999905]."""
    array = np.asarray(value)
    return str(array[()]) if array.ndim == 0 else np.array2string(array, separator=", ")


def _value(variable, session=None):
    """The current value of a graph variable (in ``session``) or an eager one."""
    try:
        variable.graph
    except AttributeError:  # eager: "Tensor.graph is undefined when eager execution is enabled"
        return variable.numpy()
    return session.run(variable)


def _restore_for_real(var_list, variable, prefix):
    """Restore ``var_list`` with a ``tf.compat.v1.train.Saver`` and return the variable's value."""
    from .._tf.quiet import import_tensorflow

    tf = import_tensorflow()
    try:
        graph = variable.graph
    except AttributeError:
        graph = None
    if graph is None:  # eager: a Saver with a var_list restores without a session
        tf.compat.v1.train.Saver(var_list).restore(None, prefix)
        return variable.numpy()
    with graph.as_default():
        saver = tf.compat.v1.train.Saver(var_list)
    with tf.compat.v1.Session(graph=graph) as sess:
        saver.restore(sess, prefix)
        return sess.run(variable)


# --- exercise 1: a Saver dict for v2's average only ------------------------------------------
@check
def only_v2_average(var_list, v2, ckpt, name="v2"):
    """``var_list`` is the Saver dict loading ``v2/ExponentialMovingAverage`` into ``v2``, and nothing else.

    The dict is looked at first (each typical mistake has its hint), then restored for real
    in a new session of ``v2``'s graph; ``v2`` must then hold the shadow's value, read from
    the checkpoint ``ckpt`` (a prefix or a :class:`~ckptwidgets.Checkpoint`).
    """
    shadow = name + SHADOW
    if is_todo(var_list):
        return not_yet(f"replace TODO with a dict {{checkpoint key: variable}} for tf.compat.v1.train.Saver, with one entry: the key of {name}'s average.")
    if is_variable(var_list) or isinstance(var_list, (list, tuple, set)):
        return not_yet(
            f"a list (or one variable) makes the Saver look each variable up under its own name, the raw {name!r}; "
            f"to read another key, give a dict {{checkpoint key: variable}}."
        )
    if not isinstance(var_list, dict):
        return not_yet(f"a Saver takes a dict {{checkpoint key: variable}} here; that is a {type(var_list).__name__}.")
    if not var_list:
        return not_yet(f"the dict is empty; it needs one entry, the key of {name}'s average and the variable {name}.")
    keys, values = list(var_list), list(var_list.values())
    if any(not isinstance(k, str) for k in keys):
        if all(isinstance(v, str) for v in values):
            return not_yet(f"the dict is the wrong way round: keys are the checkpoint's names (str), values the graph's variables: {{{shadow!r}: {name}}}.")
        return not_yet(f"the dict's keys are the names in the checkpoint, as str, such as {shadow!r}.")
    if all(isinstance(v, str) for v in values):
        if any(v.startswith(name) for v in values) and any(k == name or k.startswith(name + ":") for k in keys):
            return not_yet(f"the dict is the wrong way round: keys are the checkpoint's names (str), values the graph's variables: {{{shadow!r}: {name}}}.")
        return not_yet(f"the values should be the variable {name} itself, not a name.")
    suffixed = [k for k in keys if _OUTPUT_INDEX.search(k)]
    if suffixed:
        return not_yet(
            f"{suffixed[0]!r} ends in {_OUTPUT_INDEX.search(suffixed[0]).group(0)!r}, which names a tensor of the graph "
            f"({name}.name); checkpoint keys have no ':0': write {_OUTPUT_INDEX.sub('', suffixed[0])!r}."
        )
    checkpoint = open_checkpoint(ckpt)
    unknown = [k for k in keys if k not in checkpoint]
    if unknown:
        listed = ", ".join(repr(e.key) for e in checkpoint.entries)
        return not_yet(f"{unknown[0]!r} is not a key of the checkpoint; its keys are {listed} (tf.train.list_variables shows them).")
    if shadow not in var_list:
        if name in var_list:
            raw = checkpoint.read(name)
            return not_yet(
                f"the key {name!r} holds {name}'s raw value ({_plain(raw)}); its moving average is stored under "
                f"its own key, {shadow!r}."
            )
        other = next((k for k in keys if k.endswith(SHADOW)), keys[0])
        return not_yet(f"{other!r} is not {name}'s average; {name}'s shadow is the key {shadow!r}.")
    if len(var_list) > 1:
        others = [k for k in keys if k != shadow]
        hint = (
            " (variables_to_restore([v2]) maps every other variable to its own name too)"
            if any(not k.endswith(SHADOW) for k in others) else ""
        )
        return not_yet(
            f"only {name}'s average: the dict also loads {', '.join(map(repr, others))}{hint}; leave out every entry but {shadow!r}."
        )
    target = var_list[shadow]
    if target is not v2:
        if is_variable(target):
            return not_yet(f"the dict loads {name}'s average into {label(target)!r}; its value should be the variable {name} itself.")
        return not_yet(f"the value should be the graph's variable {name}, not {type(target).__name__} {target!r}.")
    entry = checkpoint[shadow]
    shape = v2.shape.as_list() if v2.shape.rank is not None else None
    if shape != list(entry.shape):
        return not_yet(
            f"{name} is declared with shape {shape}, but {shadow!r} has shape {list(entry.shape)}; declare {name} "
            "as the training graph did (a graph-mode Saver would not even complain)."
        )
    expected = checkpoint.read(shadow)
    got = _restore_for_real(var_list, v2, checkpoint.prefix)
    if not np.array_equal(np.asarray(got), expected):
        return not_yet(f"restoring that dict left {name} at {_plain(got)}, not the shadow's {_plain(expected)}; is {name} from this graph?")
    raw = _plain(checkpoint.read(name)) if name in checkpoint else "?"
    return correct(
        f"Saver({{{shadow!r}: {name}}}) restores {name} to its average {_plain(expected)} (its raw value is {raw}), "
        "and nothing else is read."
    )


# --- exercise 2: predict a Keras 3 use_ema average ------------------------------------------
def _keras_averages(weights, momentum, start=None):
    """The averages after each step: Keras sets the first to the weight (``start=None``)."""
    out, average = [], start
    for weight in weights:
        average = np.float32(weight) if average is None else np.float32(momentum * average + (1 - momentum) * weight)
        out.append(float(average))
    return out


def _f(x) -> str:
    """A number as float32 prints it: 16.875, 10.0, 0.25."""
    return str(np.float32(x))


def _number(answer):
    if isinstance(answer, bool) or isinstance(answer, (str, bytes)):
        return None
    try:
        array = np.asarray(answer, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return float(array.reshape(-1)[0]) if array.size == 1 else None


@check
def predict_keras_average(answer, weights=(10.0, 20.0, 30.0), momentum=0.75):
    """The prediction of ``keras.optimizers.SGD(use_ema=True, ema_momentum=momentum)``'s average after the last step.

    ``weights`` are the weight's values after each step; on the first step the average is
    the weight itself, then ``momentum * average + (1 - momentum) * weight``.
    """
    n = len(weights)
    if is_todo(answer):
        return not_yet(f"replace TODO with a number: the kernel's average after step {n}, before the next cell prints it.")
    value = _number(answer)
    if value is None:
        return not_yet(f"the answer is one number (a float), not a {type(answer).__name__}.")
    averages = _keras_averages(weights, momentum)
    expected = averages[-1]

    def near(x):
        return abs(value - x) <= 1e-4 * max(1.0, abs(x))

    if near(expected):
        steps = ", ".join(f"{_f(a)}" for a in averages)
        return correct(
            f"{_f(expected)}: the average starts at the weight ({_f(weights[0])}), then each step keeps {_f(momentum)} of it "
            f"and takes {_f(1 - momentum)} of the weight: {steps}."
        )
    if near(weights[-1]):
        return not_yet(f"{_f(weights[-1])} is the kernel itself after step {n}; its average lags behind it.")
    for step, average in enumerate(averages[:-1], start=1):
        if near(average):
            return not_yet(f"{_f(value)} is the average after step {step}; go on to step {n}.")
    if near(_keras_averages(weights, momentum, start=0.0)[-1]):
        return not_yet(
            f"{_f(value)} starts the average at 0.0; a Keras optimizer starts it at the weight on the first step "
            f"({_f(weights[0])}), then averages."
        )
    if near(_keras_averages(weights, 1 - momentum)[-1]):
        return not_yet(
            f"ema_momentum weighs the old average: average = {_f(momentum)} * average + {_f(1 - momentum)} * weight, "
            "not the other way round."
        )
    if near(float(np.mean(weights))):
        return not_yet(f"{_f(value)} is the plain mean of the weights; an EMA weighs its old average by {_f(momentum)} at every step.")
    return not_yet(
        f"not {_f(value)}: work step by step, step 1's average is {_f(averages[0])}, then "
        f"{_f(momentum)} * average + {_f(1 - momentum)} * weight for each later weight ({', '.join(f'{_f(w)}' for w in weights[1:])})."
    )


# --- exercise 3: prefer EMA in the VariableMapper, and restore ------------------------------


@check
def prefer_ema_mapper(mapper, name="v2"):
    """The mapper has prefer EMA on, maps ``name`` to its shadow, and was restored: the variable holds the shadow."""
    if isinstance(mapper, RestorePlan):
        return not_yet("pass the VariableMapper itself to the check, not its plan: the check reads its prefer EMA button and its last restore.")
    model, plan = mapper_parts(mapper, "prefer_ema")
    if model is None:
        return not_yet(f"pass the VariableMapper itself to the check, not a {type(mapper).__name__}.")
    shadow = name + SHADOW
    if name not in plan.variables:
        return not_yet(f"this mapper has no variable {name!r} (it has {', '.join(map(repr, plan.variables))}); use the mapper made above.")
    key = plan.mapping.get(name)
    if not model.prefer_ema:
        if key == shadow:
            return not_yet(
                f"{name} reads {shadow!r}, chosen by hand; press the prefer EMA ★ button instead: it takes the shadow "
                "of every variable that has one."
            )
        return not_yet(f"press the prefer EMA ★ button above the table (now off: {name} reads {key!r}), then Restore.")
    if key != shadow:
        return not_yet(
            f"prefer EMA is on, but {name} reads {key!r}: a key chosen by hand is kept over prefer EMA; press "
            f"Auto-map (or choose ★ {shadow} in its dropdown)."
        )
    if plan.problems:
        return not_yet(f"the plan has a problem: {plan.problems[0].message}")
    report = model.report
    if report is None:
        return not_yet(f"the plan maps {name} to {shadow!r}; now press Restore (or call mapper.restore()) so that {name} gets the value.")
    if not model.report_current:
        return not_yet("the plan changed since the last restore (the report is greyed out); press Restore again.")
    restored = dict(report.restored)
    if restored.get(name) != shadow:
        return not_yet(f"the last restore read {restored.get(name)!r} into {name}; press Restore again.")
    expected = plan.checkpoint.read(shadow)
    try:
        got = _value(plan.infos[name].tf_variable, model.session)
    except Exception as error:  # a closed session, a graph reset: say what to redo
        if isinstance(error, CheckpointError):
            raise
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        return not_yet(f"could not read {name} in the mapper's session ({first}); run the cell that makes the mapper again, then prefer EMA and Restore.")
    if not np.array_equal(np.asarray(got), expected):
        return not_yet(
            f"{name} holds {_plain(got)}, not its shadow's {_plain(expected)}: did a cell run an initialiser or an "
            "assign after the restore? Press Restore again."
        )
    raw = _plain(plan.checkpoint.read(name)) if name in plan.checkpoint else "?"
    return correct(
        f"prefer EMA maps {name} to {shadow!r}, and the restore put its average {_plain(expected)} into {name} "
        f"(the raw value is {raw})."
    )
