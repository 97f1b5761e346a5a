"""The checks of notebook 08's exercises (ckptwidgets/checks/migration.py): right, wrong, missing.

Real objects throughout: a TF1 Saver checkpoint with Adam-like slots, the notebook's Keras 3
model, a real VariableMapper, and a .weights.h5 written by ckptwidgets and loaded by Keras.
"""
from __future__ import annotations

import numpy as np
import pytest

import keras

import ckptwidgets
from ckptwidgets.checks import TODO
from ckptwidgets.checks import migration

from conftest import save_graph_checkpoint

maps = migration.mapper_maps_the_logits.__wrapped__
key_of = migration.weights_file_key.__wrapped__


def build():
    return keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="relu", name="hidden"), keras.layers.Dense(2, name="logits")],
        name="net",
    )


@pytest.fixture
def tf1(tmp_path):
    rng = np.random.default_rng(0)
    shapes = {"hidden/kernel": (4, 8), "hidden/bias": (8,), "output/kernel": (8, 2), "output/bias": (2,)}
    values = {}
    for name, shape in shapes.items():
        values[f"mlp/{name}"] = rng.normal(size=shape).astype("float32")
        values[f"mlp/{name}/Adam"] = rng.normal(size=shape).astype("float32")
    values["global_step"] = np.int64(100)
    return save_graph_checkpoint(tmp_path / "model.ckpt", values)


@pytest.fixture
def mapper(tf1):
    return ckptwidgets.VariableMapper(tf1, build(), rules={"mlp/": "net/"})


def test_mapper_right_answer_in_a_dropdown(mapper):
    mapper.model.choose("net/logits/kernel", "mlp/output/kernel")
    mapper.model.choose("net/logits/bias", "mlp/output/bias")
    result = maps(mapper)
    assert result.ok and str(result).startswith("Correct: all 4 variables")


def test_mapper_right_answer_as_a_rule(mapper):
    mapper.model.rules_text = "mlp/ -> net/\nmlp/output/ -> net/logits/"
    assert mapper.model.rules_error == ""
    assert maps(mapper).ok


def test_mapper_missing_answer(mapper, capsys):
    result = maps(mapper)
    assert not result.ok and "'net/logits/kernel' has no key yet" in result.message
    assert "mlp/output/ -> net/logits/" in result.message
    migration.mapper_maps_the_logits(mapper)  # as the notebook calls it: one line
    out = capsys.readouterr().out
    assert out.startswith("Not yet: ") and out.count("\n") == 1


def test_mapper_wrong_answers(mapper):
    mapper.model.choose("net/logits/kernel", "mlp/output/kernel/Adam")  # a slot, same shape
    mapper.model.choose("net/logits/bias", "mlp/output/bias")
    result = maps(mapper)
    assert not result.ok and "optimizer slot" in result.message and "mlp/output/kernel/Adam" in result.message

    mapper.model.choose("net/logits/kernel", "mlp/output/bias")  # wrong shape: the plan's problem
    result = maps(mapper)
    assert not result.ok and "problem for 'net/logits/kernel'" in result.message and "[8, 2]" in result.message

    mapper.model.choose("net/logits/kernel", "mlp/output/kernel")
    mapper.model.choose("net/hidden/bias", "mlp/hidden/bias/Adam")
    result = maps(mapper)
    assert not result.ok and "'net/hidden/bias' takes 'mlp/hidden/bias/Adam'" in result.message


def test_mapper_not_a_mapper(mapper):
    assert maps(mapper.plan).message == "pass the VariableMapper itself to the check, not a RestorePlan."
    assert not maps(TODO).ok


@pytest.fixture
def weights(tf1, tmp_path):
    model = build()
    plan = ckptwidgets.plan_restore(tf1, model, rules={"mlp/": "net/", "mlp/output/": "net/logits/"})
    path = tmp_path / "net.weights.h5"
    ckptwidgets.from_plan(plan).write(path, model=model, progress=False)
    build().load_weights(path)  # Keras takes it
    return path


def test_weights_key_right_answer(weights):
    assert key_of("layers/dense/vars/1", weights).ok
    assert key_of("/layers/dense/vars/1", weights).ok  # h5py's absolute form
    assert key_of("layers/dense_1/vars/1", weights, name="logits/vars/1", variable="net/logits/bias").ok


@pytest.mark.parametrize(
    "answer, hint",
    [
        (TODO, "replace TODO"),
        (None, "replace TODO"),
        (1, "that is a int"),
        ("hidden/vars/1", "the name ckptwidgets shows"),
        ("layers/hidden/vars/1", "not use the layer's name 'hidden'"),
        ("net/hidden/bias", "not use the layer's name 'hidden'"),
        ("layers/dense/vars/0", "the right layer, but variable 0"),
        ("layers/dense_1/vars/1", "'logits/vars/1', a variable of another layer"),
        ("layers/dense_2/vars/1", "no dataset 'layers/dense_2/vars/1'"),
    ],
)
def test_weights_key_wrong_and_missing_answers(weights, answer, hint):
    result = key_of(answer, weights)
    assert not result.ok and hint in result.message, result.message


def test_weights_key_before_the_file_exists(tmp_path, capsys):
    migration.weights_file_key("layers/dense/vars/1", tmp_path / "net.weights.h5")
    out = capsys.readouterr().out
    assert out.startswith("Not yet: weights_file_key could not check this (CheckpointNotFoundError") and out.count("\n") == 1


def test_mapper_manual_pick_blocks_the_rule_and_the_hint_says_how_out(mapper):
    """Issue #23: a wrong pick in a dropdown, then the rule the hint suggests: the pick wins, and
    the hint must lead to what works (the 'Let rules decide' button), not repeat the rule."""
    mapper.model.choose("net/logits/kernel", "mlp/output/kernel/Adam")  # a wrong pick by hand
    mapper.rule_box.value = "mlp/output/ -> net/logits/"  # the rule the check suggests
    assert mapper.plan.key_of("net/logits/kernel") == "mlp/output/kernel/Adam"  # the pick is kept
    result = maps(mapper)
    assert not result.ok and "picked by hand" in result.message and "'Let rules decide'" in result.message
    assert "the rules give it the right key" in result.message, result.message
    mapper.let_rules_button.click()
    assert maps(mapper).ok

    mapper.model.rules_text = "mlp/ -> net/"
    mapper.model.choose("net/logits/kernel", None)  # "(none)" by hand, and no rule for it yet
    result = maps(mapper)
    assert "has no key yet" in result.message and "'mlp/output/ -> net/logits/'" in result.message
    assert "click 'Let rules decide' above the table before adding a rule" in result.message, result.message
