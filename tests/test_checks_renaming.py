"""ckptwidgets.checks.renaming: notebook 03's checks (issue #14).

The right answer is ``Correct``; typical wrong answers get a hint naming what to look at;
``TODO`` is ``Not yet``; nothing raises. The rule check reads a real ``VariableMapper``.
"""
from __future__ import annotations

import pytest

import ckptwidgets
from ckptwidgets.checks import TODO, renaming
from conftest import tf, v1_
from _checks import result


@pytest.fixture(scope="module")
def graph_vars():
    with tf.Graph().as_default():
        a1 = v1_.Variable([0.0], name="other-v1")
        a2 = v1_.Variable([0.0], name="other-v2")
    return a1, a2


# --- exercise 1: swap with a dict -------------------------------------------------------
def test_swapped_right(graph_vars, base_ckpt):
    a1, a2 = graph_vars
    swapped = {"v1": a2, "v2": a1}
    res = result(renaming.swapped_var_list, swapped, a1, a2)
    assert res.ok and "other-v2" in res.message, res
    # and it is what a Saver does with that dict
    with a1.graph.as_default(), v1_.Session() as sess:
        v1_.train.Saver(swapped).restore(sess, base_ckpt)
        assert sess.run([a1, a2]) == [[2.0], [1.0]]


@pytest.mark.parametrize(
    "make, hint",
    [
        (lambda a1, a2: TODO, "replace TODO"),
        (lambda a1, a2: [a2, a1], "a dict"),
        (lambda a1, a2: {"v1": a1, "v2": a2}, "straight mapping"),
        (lambda a1, a2: {"other-v2": "v1", "other-v1": "v2"}, "wrong way round"),
        (lambda a1, a2: {a2.ref(): "v1", a1.ref(): "v2"}, "wrong way round"),
        (lambda a1, a2: {"other-v1": a2, "other-v2": a1}, "not a key of the checkpoint"),
        (lambda a1, a2: {"v1": a2}, "leaves out 'v2'"),
        (lambda a1, a2: {"v1": "other-v2", "v2": "other-v1"}, "variables themselves"),
        (lambda a1, a2: {"v1": a1, "v2": a1}, "each variable takes one key"),
        (lambda a1, a2: {"v1": 1, "v2": 2}, "a1 and a2"),
    ],
)
def test_swapped_hints(graph_vars, make, hint):
    a1, a2 = graph_vars
    res = result(renaming.swapped_var_list, make(a1, a2), a1, a2)
    assert not res.ok and hint in res.message, res


# --- exercise 2: one root rule in the mapper --------------------------------------------
@pytest.fixture
def net_mapper(base_ckpt):
    graph = tf.Graph()
    with graph.as_default():
        n1 = v1_.Variable([0.0], name="net/v1")
        n2 = v1_.Variable([0.0], name="net/v2")
    sess = v1_.Session(graph=graph)
    yield ckptwidgets.VariableMapper(base_ckpt, [n1, n2], session=sess)
    sess.close()


@pytest.mark.parametrize("text", ["/ -> net/", " / -> net/ \n", "# the root\n/ -> net/", "'' -> net/"])
def test_root_rule_right(net_mapper, text):
    net_mapper.model.rules_text = text
    res = result(renaming.root_rule_mapper, net_mapper)
    assert res.ok, res


def test_root_rule_typed_in_the_box(net_mapper):
    net_mapper.rules_box.value = "/ -> net/"  # what typing in the widget does (linked to the model)
    assert result(renaming.root_rule_mapper, net_mapper).ok


@pytest.mark.parametrize(
    "text, hint",
    [
        ("", "type one rule"),
        ("# nothing yet", "type one rule"),
        ("net/ -> /", "wrong way round"),
        ("/ -> net", "shows an error"),
        ("/ net/", "shows an error"),
        ("/ -> other/", "map nothing"),
        ("v1 -> net/v1\nv2 -> net/v2", "one rule '/ -> net/'"),
    ],
)
def test_root_rule_hints(net_mapper, text, hint):
    net_mapper.model.rules_text = text
    res = result(renaming.root_rule_mapper, net_mapper)
    assert not res.ok and hint in res.message, res


def test_root_rule_mapped_by_hand_is_not_a_rule(net_mapper):
    net_mapper.plan.assign("net/v1", "v1")
    net_mapper.plan.assign("net/v2", "v2")
    res = result(renaming.root_rule_mapper, net_mapper)
    assert not res.ok and "type one rule" in res.message, res


def test_checks_print_one_line_and_never_raise(capsys, graph_vars, net_mapper):
    for check, args in [
        (renaming.swapped_var_list, (TODO, *graph_vars)),
        (renaming.swapped_var_list, (object(), *graph_vars)),
        (renaming.swapped_var_list, ()),
        (renaming.root_rule_mapper, (TODO,)),
        (renaming.root_rule_mapper, (net_mapper.plan,)),
        (renaming.root_rule_mapper, (net_mapper,)),
    ]:
        check(*args)
        out = capsys.readouterr().out
        assert out.count("\n") == 1 and out.startswith("Not yet: "), out
