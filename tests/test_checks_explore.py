"""ckptwidgets.checks.explore: notebook 06's checks (issue #14).

The right answer is ``Correct``; typical wrong answers get a hint naming what to look at;
``TODO`` is ``Not yet``; nothing raises. The checks run on a real (tiny) Keras 3 model
trained with a ``tf.train.ExponentialMovingAverage`` and saved as notebook 06 saves its
MobileNetV2 (weights under their paths, shadows under ``<path>/ExponentialMovingAverage``),
through a real ``CheckpointBrowser`` and a real ``VariableMapper``.
"""
from __future__ import annotations

import keras
import numpy as np
import pytest

import ckptwidgets
from ckptwidgets.checks import TODO, explore
from ckptwidgets.widgets import BrowserModel
from ckptwidgets.widgets._mapper_model import NONE
from conftest import tf, v1_
from _checks import hint, ok, result

SHADOW = "/ExponentialMovingAverage"
HEAD = ("finetune/predictions/kernel", "finetune/predictions/bias")


def network(scope, classes):
    """notebook 06's model in small: a convolution, a BatchNormalization, a head ``predictions``."""
    with keras.name_scope(scope):  # a functional model, as MobileNetV2: paths are scope/layer/variable
        inputs = keras.Input((6, 6, 3))
        x = keras.layers.Conv2D(4, 3, name="Conv1")(inputs)
        x = keras.layers.BatchNormalization(name="bn_Conv1")(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, keras.layers.Dense(classes, name="predictions")(x))


@pytest.fixture(scope="module")
def teacher_ckpt(tmp_path_factory):
    """Two training steps with an EMA (decay 0.5), saved as notebook 06 saves: 6 weights, 6 shadows, 2 BN statistics."""
    keras.utils.set_random_seed(0)
    teacher = network("teacher", 10)
    rng = np.random.default_rng(0)
    images = rng.normal(size=(8, 6, 6, 3)).astype("float32")
    labels = rng.integers(0, 10, size=8)
    optimizer = keras.optimizers.SGD(learning_rate=0.5)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    ema = tf.train.ExponentialMovingAverage(decay=0.5)
    trainable = [var.value for var in teacher.trainable_variables]
    for _ in range(2):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, teacher(images, training=True))
        optimizer.apply_gradients(zip(tape.gradient(loss, teacher.trainable_variables), teacher.trainable_variables))
        ema.apply(trainable)
    var_list = {var.path: var.value for var in teacher.weights}
    var_list.update({f"{var.path}{SHADOW}": ema.average(var.value) for var in teacher.trainable_variables})
    prefix = str(tmp_path_factory.mktemp("teacher") / "model.ckpt")
    return v1_.train.Saver(var_list=var_list).save(None, prefix)


def test_the_teacher_checkpoint_is_like_notebook_06s(teacher_ckpt):
    ckpt = ckptwidgets.open_checkpoint(teacher_ckpt)
    assert {kind: count for kind, (count, _) in ckpt.totals().items()} == {"variable": 8, "ema": 6}
    # Shadows differ from the raw weights, so comparing with one or the other means something.
    assert not np.array_equal(ckpt.read("teacher/Conv1/kernel"), ckpt.read("teacher/Conv1/kernel" + SHADOW))


# --- exercise 1: the head's shadow, selected in the CheckpointBrowser -----------------------
@pytest.fixture
def browser(teacher_ckpt):
    return ckptwidgets.CheckpointBrowser(teacher_ckpt)


def test_shadow_selected_right(browser):
    browser.model.selected = "teacher/predictions/kernel" + SHADOW
    res = ok(result(explore.shadow_selected, browser, "teacher/predictions/kernel"))
    assert "[4, 10]" in res.message and "kind ema" in res.message, res
    ok(result(explore.shadow_selected, browser.model, "teacher/predictions/kernel"))  # the model alone


def test_shadow_selected_by_typing_the_key_in_the_go_to_box(browser):
    assert browser.jump_to("teacher/predictions/kernel" + SHADOW)  # what Enter in the go-to box does
    ok(result(explore.shadow_selected, browser, "teacher/predictions/kernel"))


def test_shadow_selected_hints(browser):
    model = browser.model
    hint(result(explore.shadow_selected, browser, "teacher/predictions/kernel"), "nothing is selected", "go-to box")
    model.selected = "teacher/predictions/kernel"
    hint(result(explore.shadow_selected, browser, "teacher/predictions/kernel"), "raw weight itself", "kind ema")
    model.selected = "teacher/predictions/bias" + SHADOW
    hint(result(explore.shadow_selected, browser, "teacher/predictions/kernel"),
         "a shadow, but of 'teacher/predictions/bias'")
    model.selected = "teacher/Conv1/kernel"  # what the notebook selects from code
    hint(result(explore.shadow_selected, browser, "teacher/predictions/kernel"),
         "'teacher/Conv1/kernel' is selected, a variable entry")
    model.selected = "teacher/bn_Conv1/moving_mean"
    hint(result(explore.shadow_selected, browser, "teacher/bn_Conv1/moving_mean"), "has no EMA shadow")
    hint(result(explore.shadow_selected, TODO, "teacher/predictions/kernel"), "pass the CheckpointBrowser")
    broken = BrowserModel("/nonexistent/model.ckpt")
    hint(result(explore.shadow_selected, broken, "teacher/predictions/kernel"), "could not open its checkpoint")


# --- exercise 2: fine-tune from the EMA, in the VariableMapper ------------------------------
@pytest.fixture
def finetuned():
    return network("finetune", 5)


@pytest.fixture
def mapper(teacher_ckpt, finetuned):
    return ckptwidgets.VariableMapper(teacher_ckpt, finetuned.weights, rules={"teacher/": "finetune/"}, prefer_ema=True)


def unassign_head(mapper):
    for name in HEAD:
        mapper.model.choose(name, NONE)  # what choosing "(none)" in the row's dropdown does


def test_the_plan_as_created_has_problems_on_the_head_only(mapper):
    assert sorted(p.variable for p in mapper.plan.problems) == sorted(HEAD)
    assert {p.reason for p in mapper.plan.problems} == {"shape_mismatch"}


def test_finetune_from_ema_right(teacher_ckpt, mapper, finetuned):
    head_kernel = finetuned.get_layer("predictions").kernel.numpy().copy()
    unassign_head(mapper)
    mapper.restore()
    res = ok(result(explore.finetune_from_ema, mapper, head=HEAD))
    assert "backbone's 4 weights hold their EMA shadows" in res.message and "2 other variables" in res.message, res
    ok(result(explore.finetune_from_ema, mapper))  # the default head is notebook 06's
    ok(result(explore.finetune_from_ema, mapper.model))
    ok(result(explore.finetune_from_ema, mapper.plan))  # a plan: no report, the values are still compared
    # What the check accepted is really there: read with plain TensorFlow.
    reader = tf.train.load_checkpoint(teacher_ckpt)
    conv = finetuned.get_layer("Conv1").kernel.numpy()
    assert np.array_equal(conv, reader.get_tensor("teacher/Conv1/kernel" + SHADOW))
    assert np.array_equal(finetuned.get_layer("predictions").kernel.numpy(), head_kernel)


def test_finetune_from_ema_done_with_the_widgets_controls(mapper):
    """The exercise as the notebook tells it: show problems, (none) in both dropdowns, Restore."""
    mapper.show_box.value = "problems"
    assert list(mapper.model.rows) == list(HEAD)
    hint(result(explore.finetune_from_ema, mapper), "still reads")
    mapper.key_dropdowns[0].value = NONE  # the "(none)" option: the fixed row leaves the problems list
    assert list(mapper.model.rows) == [HEAD[1]]
    mapper.key_dropdowns[0].value = NONE
    assert list(mapper.model.rows) == []
    assert mapper.model.counts["problems"] == 0 and all(name not in mapper.plan.mapping for name in HEAD)
    hint(result(explore.finetune_from_ema, mapper), "press Restore")
    mapper.restore_button.click()
    ok(result(explore.finetune_from_ema, mapper))


def test_finetune_from_ema_done_in_code(mapper):
    for name in HEAD:
        mapper.plan.unassign(name)
    mapper.restore()
    ok(result(explore.finetune_from_ema, mapper))


def test_finetune_from_ema_hints_in_the_order_of_the_exercise(mapper, finetuned):
    res = hint(result(explore.finetune_from_ema, mapper), "finetune/predictions/kernel still reads",
               "the new head is [4, 5], the key [4, 10]", "(none)", "show: problems")
    mapper.model.choose(HEAD[0], NONE)
    hint(result(explore.finetune_from_ema, mapper), "finetune/predictions/bias still reads", "[5], the key [10]")
    mapper.model.choose(HEAD[1], NONE)
    hint(result(explore.finetune_from_ema, mapper), "plan is right", "press Restore")
    mapper.restore()
    ok(result(explore.finetune_from_ema, mapper))
    # Trained (or changed) after the restore: the values no longer are the checkpoint's.
    conv = finetuned.get_layer("Conv1").kernel
    conv.assign(conv.numpy() + 1.0)
    hint(result(explore.finetune_from_ema, mapper), "finetune/Conv1/kernel does not hold its EMA shadow",
         "restore first")
    hint(result(explore.finetune_from_ema, mapper.plan), "finetune/Conv1/kernel does not hold its EMA shadow")
    # The plan changed after the restore: the report is not current any more.
    mapper.model.choose("finetune/Conv1/bias", "teacher/Conv1/bias")
    hint(result(explore.finetune_from_ema, mapper), "finetune/Conv1/bias reads the raw weight", "prefer EMA")
    mapper.model.choose("finetune/Conv1/bias", "teacher/Conv1/bias" + SHADOW)
    hint(result(explore.finetune_from_ema, mapper), "plan changed since the last restore", "Restore again")


def test_finetune_from_ema_hints_without_prefer_ema(mapper):
    unassign_head(mapper)
    mapper.model.prefer_ema = False  # the toggle released: the (none) choices are kept
    assert all(name not in mapper.plan.mapping for name in HEAD)
    res = hint(result(explore.finetune_from_ema, mapper), "reads the raw weight 'teacher/", "(and 3 more)", "prefer EMA")
    assert "finetune/" in res.message, res
    mapper.restore()  # restoring the raw weights does not help
    hint(result(explore.finetune_from_ema, mapper), "reads the raw weight")
    mapper.prefer_ema_box.value = True  # pressed again, as the hint says: the (none) choices are still kept
    hint(result(explore.finetune_from_ema, mapper), "plan changed since the last restore")
    mapper.restore_button.click()
    ok(result(explore.finetune_from_ema, mapper))


def test_finetune_from_ema_hints_for_the_backbone(mapper):
    unassign_head(mapper)
    mapper.model.choose("finetune/bn_Conv1/gamma", NONE)
    hint(result(explore.finetune_from_ema, mapper), "finetune/bn_Conv1/gamma is unmapped", "only the head")
    mapper.model.choose("finetune/bn_Conv1/gamma", "teacher/bn_Conv1/beta" + SHADOW)
    hint(result(explore.finetune_from_ema, mapper), "finetune/bn_Conv1/gamma reads 'teacher/bn_Conv1/beta",
         "another layer's value")
    mapper.model.choose("finetune/bn_Conv1/gamma", "teacher/Conv1/bias" + SHADOW)  # [4] as well: no shape problem
    hint(result(explore.finetune_from_ema, mapper), "another layer's value")
    mapper.model.choose("finetune/bn_Conv1/gamma", "teacher/predictions/bias" + SHADOW)  # [10]: a problem
    hint(result(explore.finetune_from_ema, mapper), "the plan still has a problem", "finetune/bn_Conv1/gamma")


def test_finetune_from_ema_other_inputs(teacher_ckpt):
    hint(result(explore.finetune_from_ema, TODO), "pass the VariableMapper")
    hint(result(explore.finetune_from_ema, "mapper"), "pass the VariableMapper")
    student = network("student", 10)  # another model: no finetune/ head in it
    other = ckptwidgets.VariableMapper(teacher_ckpt, student.weights, rules={"teacher/": "student/"}, prefer_ema=True)
    hint(result(explore.finetune_from_ema, other), "no variable 'finetune/predictions/kernel'")


def test_finetune_from_ema_in_graph_mode(teacher_ckpt):
    """A TF1 graph and its session: the values are read through the session."""
    graph = tf.Graph()
    with graph.as_default():
        variables = [
            v1_.get_variable("finetune/Conv1/kernel", shape=[3, 3, 3, 4]),
            v1_.get_variable("finetune/Conv1/bias", shape=[4]),
            v1_.get_variable("finetune/predictions/kernel", shape=[4, 5]),
        ]
    with v1_.Session(graph=graph) as sess:
        mapper = ckptwidgets.VariableMapper(teacher_ckpt, variables, session=sess, rules={"teacher/": "finetune/"},
                                            prefer_ema=True)
        mapper.model.choose("finetune/predictions/kernel", NONE)
        mapper.restore()
        ok(result(explore.finetune_from_ema, mapper, head=["finetune/predictions/kernel"]))


def test_checks_print_one_line_and_never_raise(capsys, browser, mapper):
    for check, args in [
        (explore.shadow_selected, (TODO, TODO)),
        (explore.shadow_selected, (browser, "teacher/predictions/kernel")),
        (explore.shadow_selected, (browser, object())),
        (explore.shadow_selected, ()),
        (explore.finetune_from_ema, (None,)),
        (explore.finetune_from_ema, (mapper,)),
        (explore.finetune_from_ema, (mapper, object())),
        (explore.finetune_from_ema, ()),
    ]:
        check(*args)
        out = capsys.readouterr().out
        assert out.count("\n") == 1 and out.startswith("Not yet: "), out
