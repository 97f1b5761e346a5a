"""ckptwidgets.checks.basics: notebook 01's checks (issue #14).

The right answer is ``Correct``; typical wrong answers get a hint naming what to look at;
``TODO`` is ``Not yet``; nothing raises.
"""
from __future__ import annotations

import numpy as np
import pytest

from ckptwidgets.checks import TODO, basics
from conftest import save_graph_checkpoint, tf, v1_
from _checks import result


def printed_line(capsys, check, *args):
    check(*args)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith(("Correct: ", "Not yet: ")), out
    return out


# --- exercise 1: save with a step ------------------------------------------------------
@pytest.fixture
def saved_with_step(tmp_path):
    graph = tf.Graph()
    with graph.as_default():
        v1_.Variable([1.0], name="v1")
        saver = v1_.train.Saver()
        with v1_.Session() as sess:
            sess.run(v1_.global_variables_initializer())
            saver.save(sess, str(tmp_path / "my_test_model.ckpt"))
            return saver.save(sess, str(tmp_path / "my_test_model.ckpt"), global_step=1000)


def test_save_with_step_right(saved_with_step, tmp_path):
    res = result(basics.save_with_step, saved_with_step, tmp_path)
    assert res.ok, res
    assert "my_test_model.ckpt-1000" in res.message


def test_save_with_step_wrong_answers(saved_with_step, tmp_path):
    assert "global_step=1000" in result(basics.save_with_step, TODO, tmp_path).message
    no_step = str(tmp_path / "my_test_model.ckpt")
    res = result(basics.save_with_step, no_step, tmp_path)
    assert not res.ok and "global_step=1000" in res.message and "'-1000'" in res.message
    res = result(basics.save_with_step, str(tmp_path / "typed-by-hand.ckpt-1000"), tmp_path)
    assert not res.ok and "did the save run" in res.message
    res = result(basics.save_with_step, 1000, tmp_path)
    assert not res.ok and "a str" in res.message
    other = tmp_path / "elsewhere"
    other.mkdir()
    res = result(basics.save_with_step, saved_with_step, other)
    assert not res.ok and "WORKDIR" in res.message


# --- exercise 2: a scoped key -----------------------------------------------------------
@pytest.fixture(scope="module")
def scoped(tmp_path_factory):
    graph = tf.Graph()
    with graph.as_default():
        with v1_.variable_scope("model"), v1_.variable_scope("dense"):
            v1_.get_variable("kernel", shape=[2, 3])
        saver = v1_.train.Saver()
        with v1_.Session() as sess:
            sess.run(v1_.global_variables_initializer())
            return saver.save(sess, str(tmp_path_factory.mktemp("scoped") / "model.ckpt"))


def test_predict_scoped_key_right(scoped):
    assert result(basics.predict_scoped_key, "model/dense/kernel", scoped).ok
    assert result(basics.predict_scoped_key, " model/dense/kernel ", scoped).ok


@pytest.mark.parametrize(
    "answer, hint",
    [
        (TODO, "replace TODO"),
        ("model/dense/kernel:0", "':0'"),
        ("kernel", "scope is part of the key"),
        ("model.dense.kernel", "joined with '/'"),
        ("model_dense_kernel", "joined with '/'"),
        ("Model/Dense/Kernel", "case-sensitive"),
        ("dense/kernel", "not a key"),
        (42, "in quotes"),
    ],
)
def test_predict_scoped_key_hints(scoped, answer, hint):
    res = result(basics.predict_scoped_key, answer, scoped)
    assert not res.ok and hint in res.message, res


# --- exercise 3: read a value -----------------------------------------------------------
def test_read_value_right(base_ckpt):
    reader = tf.train.load_checkpoint(base_ckpt)
    assert result(basics.read_value, reader.get_tensor("v2")).ok
    import ckptwidgets

    assert result(basics.read_value, ckptwidgets.open_checkpoint(base_ckpt).read("v2")).ok


def test_read_value_hints(base_ckpt):
    reader = tf.train.load_checkpoint(base_ckpt)
    assert "reader.get_tensor" in result(basics.read_value, TODO).message
    assert "is the key" in result(basics.read_value, "v2").message
    assert "shape" in result(basics.read_value, 2.0).message
    assert "check the key" in result(basics.read_value, reader.get_tensor("v1")).message
    assert "has shape [2]" in result(basics.read_value, np.array([2.0, 2.0])).message
    with tf.Graph().as_default():
        variable = v1_.Variable([2.0], name="v2")
        res = result(basics.read_value, variable)
    assert not res.ok and "session" in res.message, res
    assert "not a tensor value" in result(basics.read_value, {"v2": 2.0}).message


def test_checks_print_one_line_and_never_raise(capsys, scoped, tmp_path):
    for check, args in [
        (basics.save_with_step, (TODO, tmp_path)),
        (basics.save_with_step, (object(), tmp_path)),
        (basics.predict_scoped_key, ("x", str(tmp_path / "no such checkpoint"))),
        (basics.predict_scoped_key, (None, scoped)),
        (basics.read_value, (object(),)),
        (basics.read_value, ()),
    ]:
        assert printed_line(capsys, check, *args).startswith("Not yet: ")
    assert printed_line(capsys, basics.predict_scoped_key, "model/dense/kernel", scoped).startswith("Correct: ")
