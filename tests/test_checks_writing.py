"""ckptwidgets.checks.writing: notebook 07's checks (issue #14).

The right answer is ``Correct``; typical wrong answers get a hint naming what to look at;
``TODO`` is ``Not yet``; nothing raises. The checks run on a real (tiny) TF1 training run
with Adam and an EMA, on checkpoints written by ckptwidgets and by a plain ``Saver``, and on
a real ``CheckpointDiff`` widget.
"""
from __future__ import annotations

import numpy as np
import pytest

import ckptwidgets
from ckptwidgets.checks import TODO, writing
from ckptwidgets.sources.arrays import ArraySource
from ckptwidgets.widgets import CheckpointDiff, DiffModel
from conftest import tf, v1_
from _checks import hint, ok, result

SHADOW = "/ExponentialMovingAverage"
WEIGHTS = ["model/hidden/bias", "model/hidden/kernel", "model/out/bias", "model/out/kernel"]
SERVING = [name.replace("model/", "serving/") for name in WEIGHTS]


# --- a training run: notebook 07's model, 2 steps, a checkpoint after each ------------------
def dense(x, units, name, activation=None):
    with v1_.variable_scope(name):
        kernel = v1_.get_variable("kernel", [x.shape[-1], units])
        bias = v1_.get_variable("bias", [units], initializer=v1_.zeros_initializer())
        y = tf.matmul(x, kernel) + bias
        return y if activation is None else activation(y)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The prefixes of steps 1, 2 and 3 of a TF1 run with Adam and an EMA of the weights."""
    folder = tmp_path_factory.mktemp("run")
    rng = np.random.default_rng(0)
    with tf.Graph().as_default():
        v1_.set_random_seed(0)
        x = v1_.placeholder(tf.float32, [None, 4])
        y = v1_.placeholder(tf.float32, [None, 2])
        with v1_.variable_scope("model"):
            out = dense(dense(x, 8, "hidden", tf.nn.relu), 2, "out")
        loss = tf.reduce_mean(tf.square(out - y))
        step = v1_.train.get_or_create_global_step()
        train = v1_.train.AdamOptimizer(0.05).minimize(loss, global_step=step)
        ema = v1_.train.ExponentialMovingAverage(0.99, num_updates=step)
        with tf.control_dependencies([train]):
            train_and_average = ema.apply(v1_.trainable_variables())
        saver = v1_.train.Saver(max_to_keep=10)
        prefixes = []
        with v1_.Session() as sess:
            sess.run(v1_.global_variables_initializer())
            for n in (1, 2, 3):
                sess.run(train_and_average, {x: rng.normal(size=(16, 4)), y: rng.normal(size=(16, 2))})
                prefixes.append(saver.save(sess, str(folder / "model.ckpt"), global_step=n))
    return prefixes


@pytest.fixture(scope="module")
def step_2(run):
    return run[1]


def write(plan, tmp_path, name="out"):
    return plan.write(tmp_path / name / "model.ckpt", progress=False).prefix


def save_by_hand(prefix, values):
    """``{key: value}`` saved with a plain ``Saver`` (no ckptwidgets)."""
    with tf.Graph().as_default():
        var_list = {key: v1_.Variable(value, name=key.replace("/", "_")) for key, value in values.items()}
        with v1_.Session() as sess:
            sess.run(v1_.global_variables_initializer())
            return v1_.train.Saver(var_list).save(sess, str(prefix), write_meta_graph=False)


# --- exercise 1: predict the dry run ----------------------------------------------------------
def test_the_run_has_notebook_07s_entries(step_2):
    kinds = [entry.kind for entry in ckptwidgets.open_checkpoint(step_2).entries]
    assert (kinds.count("variable"), kinds.count("ema"), kinds.count("slot"), kinds.count("meta")) == (4, 4, 8, 3)


@pytest.mark.parametrize("answer", [5, "5", 5.0, np.int64(5), " 5 "])
def test_predict_write_count_right(step_2, answer):
    res = ok(result(writing.predict_write_count, answer, step_2))
    assert "4 weights" in res.message and "global_step" in res.message and "8 slots" in res.message, res


@pytest.mark.parametrize(
    "answer, words",
    [
        (TODO, ["replace TODO with a number"]),
        (None, ["replace TODO with a number"]),
        ("five", ["an int such as 7", "str"]),
        (True, ["an int", "bool"]),
        (5.5, ["an int", "float"]),
        (19, ["every entry", "strip() and promote_ema()"]),
        (23, ["adds nothing", "19 entries"]),
        (4, ["strip() keeps global_step", "step counter"]),
        (9, ["promote_ema() writes each shadow under its variable's key", "adds no tensor"]),
        (7, ["optimizer's counters", "beta1_power", "beta2_power"]),
        (13, ["8 optimizer slots"]),
        (15, ["8 optimizer slots"]),
        (3, ["not 3", "count what remains"]),
        (-1, ["0 or more"]),
    ],
)
def test_predict_write_count_hints(step_2, answer, words):
    hint(result(writing.predict_write_count, answer, step_2), *words)


def test_predict_write_count_takes_an_opened_checkpoint(step_2):
    ok(result(writing.predict_write_count, 5, ckptwidgets.open_checkpoint(step_2)))


# --- exercise 2: write a serving checkpoint ---------------------------------------------------
def serving_plan(source):
    return ckptwidgets.plan_write(source).strip().promote_ema().rename({"model/": "serving/"})


def check_serving(prefix, source):
    return result(writing.serving_checkpoint, prefix, source, scope="serving/")


def test_serving_checkpoint_right(step_2, tmp_path):
    report = serving_plan(step_2).write(tmp_path / "a" / "model.ckpt", progress=False)
    res = ok(check_serving(report.prefix, step_2))
    assert "global_step = 2" in res.message and "4 weights under 'serving/'" in res.message, res
    ok(check_serving(report, step_2))  # the WriteReport itself: its prefix
    ok(check_serving(tmp_path / "a" / "model.ckpt", step_2))  # a Path


def test_serving_checkpoint_any_order_of_operations(step_2, tmp_path):
    plan = ckptwidgets.plan_write(step_2).rename({"model/": "serving/"}).promote_ema().strip()
    ok(check_serving(write(plan, tmp_path), step_2))


def test_serving_checkpoint_written_with_plain_tensorflow(step_2, tmp_path):
    """The by-hand program of the notebook, with the new names: no ckptwidgets in the answer."""
    reader = tf.train.load_checkpoint(step_2)
    values = {new: reader.get_tensor(old + SHADOW) for old, new in zip(WEIGHTS, SERVING)}
    values["global_step"] = reader.get_tensor("global_step")
    ok(check_serving(save_by_hand(tmp_path / "hand" / "model.ckpt", values), step_2))


def test_serving_checkpoint_not_written(step_2, tmp_path):
    hint(check_serving(TODO, step_2), "replace TODO", "plan.write(out).prefix")
    hint(check_serving(serving_plan(step_2), step_2), "that is the plan", "plan.write(out)")
    hint(check_serving(str(tmp_path / "nowhere" / "model.ckpt"), step_2), "nothing is written", "model.ckpt.index")
    hint(check_serving(42, step_2), "the prefix", "not a int")
    prefix = write(serving_plan(step_2), tmp_path)
    hint(check_serving(prefix + ".index", step_2), "by its prefix, without '.index'")
    hint(check_serving(prefix + ".data-00000-of-00001", step_2), "without the data file's suffix")
    hint(check_serving(str(tmp_path / "out"), step_2), "is a folder")
    hint(check_serving(step_2, step_2), "the training checkpoint itself")


@pytest.mark.parametrize(
    "make, words",
    [
        # slots (and Adam's counters) kept: no strip()
        (lambda p: p.promote_ema().rename({"model/": "serving/"}), ["optimizer slots", "strip()"]),
        # slots dropped by a filter, Adam's counters kept
        (lambda p: p.strip(kinds=(), filter="kind:slot").promote_ema().rename({"model/": "serving/"}),
         ["optimizer's counters", "beta1_power, beta2_power"]),
        # shadows kept: no promote_ema()
        (lambda p: p.strip().rename({"model/": "serving/"}), ["still holds shadows", "promote_ema()"]),
        # the counter stripped too
        (lambda p: p.strip(keep=()).promote_ema().rename({"model/": "serving/"}),
         ["global_step is missing", "keeps it by default", "keep=()"]),
        (lambda p: p.strip(filter="global_step").promote_ema().rename({"model/": "serving/"}),
         ["global_step is missing"]),
        # not renamed
        (lambda p: p.strip().promote_ema(), ["still under 'model/'", ".rename({'model/': 'serving/'})"]),
        # a root rule: everything, the counter too, under serving/
        (lambda p: p.strip().promote_ema().rename({"/": "serving/"}), ["root rule", "'serving/model/"]),
        # another scope
        (lambda p: p.strip().promote_ema().rename({"model/": "deploy/"}), ["'deploy/", "go under 'serving/'"]),
        # the shadows dropped instead of promoted: raw weights
        (lambda p: p.strip(filter="kind:ema").rename({"model/": "serving/"}), ["raw weight", "promote_ema()"]),
        # a weight left out
        (lambda p: p.strip(filter="out/bias").promote_ema().rename({"model/": "serving/"}),
         ["'serving/out/bias' is missing"]),
        # cast to float16
        (lambda p: p.strip().promote_ema().rename({"model/": "serving/"}).cast(), ["float16", "no cast()"]),
    ],
    ids=["slots", "adam-counters", "shadows", "no-step", "no-step-filter", "no-rename", "root-rule", "other-scope", "raw", "missing",
         "cast"],
)
def test_serving_checkpoint_hints(step_2, tmp_path, make, words):
    prefix = write(make(ckptwidgets.plan_write(step_2)), tmp_path)
    hint(check_serving(prefix, step_2), *words)


def test_serving_checkpoint_of_another_step(run, tmp_path):
    prefix = write(serving_plan(run[2]), tmp_path)  # step 3 instead of step 2
    hint(check_serving(prefix, run[1]), "global_step is 3", "at step 2")


def test_serving_checkpoint_wrong_values_and_extra_keys(step_2, tmp_path):
    reader = tf.train.load_checkpoint(step_2)
    values = {new: reader.get_tensor(old + SHADOW) for old, new in zip(WEIGHTS, SERVING)}
    values["global_step"] = reader.get_tensor("global_step")
    values["serving/out/bias"] = values["serving/out/bias"] + 1.0
    hint(check_serving(save_by_hand(tmp_path / "off" / "model.ckpt", values), step_2),
         "serving/out/bias does not hold the EMA shadow of 'model/out/bias'")
    values["serving/out/bias"] = reader.get_tensor("model/out/bias" + SHADOW)
    values["serving/extra"] = np.zeros(3, np.float32)
    hint(check_serving(save_by_hand(tmp_path / "extra" / "model.ckpt", values), step_2),
         "'serving/extra' does not belong")


# --- exercise 3: the most changed weight in the CheckpointDiff widget ------------------------------
@pytest.fixture
def diff(run):
    return CheckpointDiff(run[0], run[1])


def ranked_weights(widget):
    rows = [row for row in widget.model.diff.rows if row.kind == "variable"]
    return sorted(rows, key=lambda row: -row.rel_change)


def test_most_changed_weight_right(diff):
    best = ranked_weights(diff)[0]
    diff.model.selected = best.key
    res = ok(result(writing.most_changed_weight, diff))
    assert best.key in res.message and "of the 4 weights" in res.message, res
    ok(result(writing.most_changed_weight, diff.model))  # the model alone


def test_most_changed_weight_as_the_solution_does_it(diff):
    diff.model.filter_text = "kind:variable"
    diff.model.sort = "change"
    diff.model.selected = diff.model.rows[0].key  # what the magnifier button of the first row does
    ok(result(writing.most_changed_weight, diff))


def test_most_changed_weight_with_the_widgets_button(diff):
    diff.model.filter_text = "kind:variable"
    diff._row_clicked(0)  # the first row's magnifier button
    ok(result(writing.most_changed_weight, diff))


def test_most_changed_weight_hints(diff):
    hint(result(writing.most_changed_weight, diff), "nothing is selected yet", "magnifier", "kind:variable")
    for key, words in [
        ("model/hidden/kernel/Adam", ["is an optimizer slot", "kind:variable"]),
        ("model/hidden/kernel" + SHADOW, ["is an EMA shadow"]),
        ("global_step", ["is a counter"]),
    ]:
        diff.model.selected = key
        hint(result(writing.most_changed_weight, diff), key, *words)
    others = ranked_weights(diff)[1:]
    by_abs = max(ranked_weights(diff), key=lambda row: row.max_abs)
    for row in others:
        diff.model.selected = row.key
        res = hint(result(writing.most_changed_weight, diff), row.key)
        if row.key == by_abs.key:
            assert "largest max |a-b|" in res.message and "rel. change" in res.message, res
        else:
            assert "is elsewhere" in res.message and "most changed first" in res.message, res
    diff.model.selected = "no/such/key"
    hint(result(writing.most_changed_weight, diff), "not a key of this diff")
    hint(result(writing.most_changed_weight, TODO), "pass the CheckpointDiff widget")


def test_most_changed_weight_the_largest_max_abs_is_not_the_answer():
    """``w`` moves by 1.0 of 100 (rel. 0.01), ``b`` by 0.5 of 1 (rel. 0.5): b changed most."""
    model = DiffModel(ArraySource({"w": np.full(4, 100.0, np.float32), "b": np.ones(4, np.float32)}),
                      ArraySource({"w": np.full(4, 101.0, np.float32), "b": np.full(4, 1.5, np.float32)}))
    model.selected = "w"
    hint(result(writing.most_changed_weight, model), "w has the largest max |a-b| (1)", "relative")
    model.selected = "b"
    ok(result(writing.most_changed_weight, model))


def test_most_changed_weight_unreadable_checkpoint(tmp_path, run):
    model = DiffModel(str(tmp_path / "missing.ckpt"), run[1])
    hint(result(writing.most_changed_weight, model), "could not compare")


# --- all: one printed line, never a traceback --------------------------------------------------
def test_checks_print_one_line_and_never_raise(capsys, step_2, diff):
    for check, args in [
        (writing.predict_write_count, (TODO, step_2)),
        (writing.predict_write_count, (5, "/no/such/checkpoint")),
        (writing.predict_write_count, ()),
        (writing.serving_checkpoint, (TODO, step_2)),
        (writing.serving_checkpoint, ("/no/such/prefix", step_2)),
        (writing.serving_checkpoint, (object(), step_2)),
        (writing.most_changed_weight, (diff,)),
        (writing.most_changed_weight, (None,)),
    ]:
        check(*args)
        out = capsys.readouterr().out
        assert out.count("\n") == 1 and out.startswith("Not yet: "), out
    diff.model.selected = ranked_weights(diff)[0].key
    writing.most_changed_weight(diff)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("Correct: "), out
