"""plan.to_code: every style compiles and, executed, restores what ckptwidgets.restore restores."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import ckptwidgets
from ckptwidgets import plan_restore
from ckptwidgets.codegen import STYLES, to_code

v1_ = tf.compat.v1

HOSTILE = [
    "it's \"quoted\" \\ back\\slash",
    "new\nline\r\nand\ttab",
    "<img src=x onerror=alert(1)>",
    "变量/权重",
    "trailing/",
    "\u2028sep\x0cfeed\x00nul",
]


def run(code, **namespace):
    compiled = compile(code, "<generated>", "exec")
    exec(compiled, namespace)
    return namespace


def values(variables):
    return {name: v.numpy().tolist() for name, v in variables.items()}


@pytest.mark.parametrize("style", ["saver", "init_from_checkpoint", "checkpoint"])
def test_eager_styles_restore(base_ckpt, style):
    variables = {"other-v1": tf.Variable([0.0]), "v2": tf.Variable([0.0]), "spare": tf.Variable([9.0])}
    plan = plan_restore(base_ckpt, variables, rules={"v1": "other-v1"})
    code = plan.to_code(style)
    assert repr(base_ckpt) in code and "#   'spare'" in code  # the unmapped one is named
    run(code, variables=plan.variables, sess=None)
    assert values(variables) == {"other-v1": [1.0], "v2": [2.0], "spare": [9.0]}


@pytest.mark.parametrize("use_resource", [True, False])
@pytest.mark.parametrize("style", ["saver", "init_from_checkpoint"])
def test_graph_styles_restore(base_ckpt, style, use_resource):
    graph = tf.Graph()
    with graph.as_default():
        a1 = v1_.Variable([0.0], name="other-v1", use_resource=use_resource)
        v2 = v1_.Variable([2.0], name="v2", use_resource=use_resource)
        total = a1 + v2
    plan = plan_restore(base_ckpt, [a1, v2])
    plan.assign(a1, "v1")
    plan.unassign(v2)  # scenario 1 and 2 at once
    code = plan.to_code(style)
    with v1_.Session(graph=graph) as sess:
        run(code, variables=plan.variables, sess=sess)
        if style == "init_from_checkpoint":
            assert "initializer" in code  # the code says the initializers must run after it
            sess.run(v1_.global_variables_initializer())
        else:
            sess.run(v1_.variables_initializer([v2]))
        assert sess.run(total).tolist() == [3.0]


def test_shadow_plan_as_code(ema_ckpt):
    graph = tf.Graph()
    with graph.as_default():
        v = v1_.Variable(0.0, name="v")
    plan = plan_restore(ema_ckpt, [v], prefer_ema=True)
    assert "'v/ExponentialMovingAverage': variables['v']" in plan.to_code("saver")
    with v1_.Session(graph=graph) as sess:
        run(plan.to_code("saver"), variables=plan.variables, sess=sess)
        assert sess.run(v) == np.float32(0.099999905)


@pytest.fixture
def hostile_ckpt(tmp_path):
    """Keys with quotes, backslashes, newlines, markup, Chinese, NUL; values 1, 2, 3..."""
    source = {key: tf.Variable([float(i + 1)]) for i, key in enumerate(HOSTILE)}
    return v1_.train.Saver(var_list=source).save(None, str(tmp_path / "hostile's \"dir\".ckpt"))


@pytest.mark.parametrize("style", STYLES)
def test_hostile_names_eager(hostile_ckpt, style):
    # Variable names are hostile too, and differ from the keys: one rule {key: variable} each
    # (a str value would make "trailing/" a scope rule).
    variables = {"v:" + key[::-1]: tf.Variable([0.0]) for key in HOSTILE}
    rules = {key: variables["v:" + key[::-1]] for key in HOSTILE}
    plan = plan_restore(hostile_ckpt, variables, rules=rules)
    assert plan.ok and len(plan.mapping) == len(HOSTILE)
    code = plan.to_code(style)
    assert "<img src=x onerror=alert(1)>" in code and "变量/权重" in code  # readable, not mangled
    run(code, variables=plan.variables, sess=None)
    assert [v.numpy().tolist() for v in variables.values()] == [[float(i + 1)] for i in range(len(HOSTILE))]


@pytest.mark.parametrize("style", ["saver", "init_from_checkpoint"])
def test_hostile_names_graph(hostile_ckpt, style):
    graph = tf.Graph()
    with graph.as_default():
        variables = {name: v1_.Variable([0.0], name=f"v{i}") for i, name in enumerate(HOSTILE)}
    plan = plan_restore(hostile_ckpt, variables, rules={key: key for key in HOSTILE})
    assert plan.ok
    with v1_.Session(graph=graph) as sess:
        run(plan.to_code(style), variables=plan.variables, sess=sess)
        if style == "init_from_checkpoint":
            sess.run(v1_.global_variables_initializer())
        got = sess.run(list(variables.values()))
    assert [g.tolist() for g in got] == [[float(i + 1)] for i in range(len(HOSTILE))]


def test_hostile_problems_and_unmapped_stay_in_comments(base_ckpt):
    name = "x\n'''\nimport os; os.remove('/')\n"
    variables = {name: tf.Variable([0.0] * 4), "bad\r\nname": tf.Variable([0.0])}
    plan = plan_restore(base_ckpt, variables)
    plan.assign(name, "v1")  # a shape mismatch whose message holds the hostile name
    for style in STYLES:
        code = to_code(plan, style)
        compile(code, "<generated>", "exec")
        assert "PROBLEM (shape_mismatch)" in code
        for line in code.splitlines():
            assert not line.startswith("import os")


def test_one_key_into_two_variables(base_ckpt):
    a, b = tf.Variable([0.0], name="a"), tf.Variable([0.0], name="b")
    plan = plan_restore(base_ckpt, [a, b])
    plan.assign(a, "v2")
    plan.assign(b, "v2")
    saver_code = plan.to_code("saver")
    assert "saver_1 = " in saver_code and "saver_2 = " in saver_code
    for style in STYLES:
        a.assign([0.0])
        b.assign([0.0])
        run(plan.to_code(style), variables=plan.variables, sess=None)
        assert a.numpy().tolist() == b.numpy().tolist() == [2.0]


def test_keras_variables_use_the_tf_variable(tmp_path):
    keras = pytest.importorskip("keras")
    source = tf.Variable([[1.0], [2.0], [3.0]])
    prefix = v1_.train.Saver({"kernel": source}).save(None, str(tmp_path / "k.ckpt"))
    for style in STYLES:
        layer = keras.layers.Dense(1, use_bias=False)
        layer.build((None, 3))
        plan = plan_restore(prefix, {"dense": layer.kernel}, rules={"kernel": "dense"})
        assert plan.ok
        run(plan.to_code(style), variables=plan.variables, sess=None)
        assert layer.kernel.numpy().tolist() == [[1.0], [2.0], [3.0]]


def test_nothing_mapped_still_compiles(base_ckpt):
    plan = plan_restore(base_ckpt, [tf.Variable([5.0], name="w")])
    for style in STYLES:
        run(plan.to_code(style), variables=plan.variables, sess=None)
    assert plan.variables["w"].numpy().tolist() == [5.0]
