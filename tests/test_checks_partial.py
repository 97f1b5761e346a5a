"""ckptwidgets.checks.partial: notebook 02's checks (issue #14).

The right answer is ``Correct``; typical wrong answers get a hint naming what to look at;
``TODO`` is ``Not yet``; nothing raises. The mapper check reads a real ``VariableMapper``.
"""
from __future__ import annotations

import numpy as np
import pytest

import ckptwidgets
from ckptwidgets.checks import TODO, partial
from conftest import tf, v1_
from _checks import result


# --- exercise 1: predict the error ------------------------------------------------------
@pytest.mark.parametrize(
    "error_class, variable",
    [
        ("FailedPreconditionError", "v1"),
        ("tf.errors.FailedPreconditionError", "v1:0"),
        (tf.errors.FailedPreconditionError, "v1"),
        ("failedpreconditionerror", " v1 "),
    ],
)
def test_predict_error_right(error_class, variable):
    assert result(partial.predict_error, error_class, variable).ok


@pytest.mark.parametrize(
    "error_class, variable, hint",
    [
        (TODO, TODO, "replace both TODOs"),
        ("FailedPreconditionError", TODO, "replace both TODOs"),
        ("FailedPreconditionError", "v2", "the saver now loads v2"),
        ("NotFoundError", "v1", "the key v2 is in the checkpoint"),
        ("InvalidArgumentError", "v1", "shapes and dtypes agree"),
        ("ValueError", "v1", "from the session"),
        ("SomethingElse", "v1", "look at the error"),
        ("FailedPreconditionError", "v3", "not a variable of this graph"),
    ],
)
def test_predict_error_hints(error_class, variable, hint):
    res = result(partial.predict_error, error_class, variable)
    assert not res.ok and hint in res.message, res


# --- exercise 2: fix the v2-only restore (values from a real session) -------------------
def only_v2(base_ckpt, fix):
    graph = tf.Graph()
    with graph.as_default():
        v1 = v1_.Variable([1.0], name="v1")
        v2 = v1_.Variable([0.0], name="v2")
        total = v1 + v2
        saver = v1_.train.Saver(var_list=[v2])
        with v1_.Session() as sess:
            if fix == "before":
                sess.run(v1_.global_variables_initializer())
            saver.restore(sess, base_ckpt)
            if fix == "v1":
                sess.run(v1_.variables_initializer([v1]))
            if fix == "after":
                sess.run(v1_.global_variables_initializer())
            return sess.run(total), total


@pytest.mark.parametrize("fix", ["v1", "before"])
def test_fixed_sum_right(base_ckpt, fix):
    value, _ = only_v2(base_ckpt, fix)
    assert result(partial.fixed_sum, value).ok
    assert result(partial.fixed_sum, value.tolist()).ok


def test_fixed_sum_hints(base_ckpt):
    value, total = only_v2(base_ckpt, "after")
    res = result(partial.fixed_sum, value)
    assert not res.ok and "undid it" in res.message and "variables_initializer([v1])" in res.message, res
    assert "sess.run(total)" in result(partial.fixed_sum, total).message
    assert "run the initialiser" in result(partial.fixed_sum, TODO).message
    assert "shape [1]" in result(partial.fixed_sum, np.array([1.0, 2.0])).message
    assert "not the sum's value" in result(partial.fixed_sum, "3").message
    assert "not the sum's value" in result(partial.fixed_sum, {"total": 3}).message
    assert "not [3.]" in result(partial.fixed_sum, [7.0]).message


# --- exercise 3: fine-tune in the mapper ------------------------------------------------
def dense_variables(classes):
    variables = []
    for scope, shape in (("base", [4, 8]), ("head", [8, classes])):
        with v1_.variable_scope(scope):
            variables.append(v1_.get_variable("kernel", shape=shape))
            variables.append(v1_.get_variable("bias", shape=shape[1:], initializer=v1_.zeros_initializer()))
    return variables


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    with tf.Graph().as_default():
        dense_variables(10)
        with v1_.Session() as sess:
            sess.run(v1_.global_variables_initializer())
            return v1_.train.Saver().save(sess, str(tmp_path_factory.mktemp("pre") / "model.ckpt"))


@pytest.fixture
def mapper(pretrained):
    graph = tf.Graph()
    with graph.as_default():
        variables = dense_variables(5)
    sess = v1_.Session(graph=graph)
    yield ckptwidgets.VariableMapper(pretrained, variables, session=sess)
    sess.close()


def test_finetune_mapper_right(mapper):
    mapper.plan.unassign("head/kernel")
    mapper.plan.unassign("head/bias")
    assert result(partial.finetune_mapper, mapper).ok
    assert result(partial.finetune_mapper, mapper.plan).ok  # the plan alone: no checkbox to read


def test_finetune_mapper_done_with_the_models_choose(mapper):
    from ckptwidgets.widgets._mapper_model import NONE

    for name in ("head/kernel", "head/bias"):
        mapper.model.choose(name, NONE)  # what choosing "(none)" in the dropdown does
    assert result(partial.finetune_mapper, mapper).ok


def test_finetune_mapper_hints(mapper):
    res = result(partial.finetune_mapper, mapper)  # as created: the head mapped, mismatched
    assert not res.ok and "head/kernel" in res.message and "shape mismatch" in res.message and "(none)" in res.message, res
    mapper.plan.unassign("head/kernel")
    res = result(partial.finetune_mapper, mapper)
    assert not res.ok and "head/bias" in res.message, res
    mapper.plan.unassign("head/bias")
    mapper.model.initialize_unmapped = False
    res = result(partial.finetune_mapper, mapper)
    assert not res.ok and "initialise them" in res.message, res
    mapper.model.initialize_unmapped = True
    mapper.plan.unassign("base/bias")
    res = result(partial.finetune_mapper, mapper)
    assert not res.ok and "base/bias should still come from" in res.message, res
    mapper.plan.assign("base/bias", "head/bias")
    res = result(partial.finetune_mapper, mapper)
    assert not res.ok and "choose its own key 'base/bias'" in res.message, res
    assert "pass the VariableMapper" in result(partial.finetune_mapper, TODO).message


def test_checks_print_one_line_and_never_raise(capsys, mapper):
    for check, args in [
        (partial.predict_error, (TODO, TODO)),
        (partial.predict_error, (object(), object())),
        (partial.fixed_sum, (object(),)),
        (partial.fixed_sum, ()),
        (partial.finetune_mapper, (None,)),
        (partial.finetune_mapper, (mapper,)),
    ]:
        check(*args)
        out = capsys.readouterr().out
        assert out.count("\n") == 1 and out.startswith("Not yet: "), out
