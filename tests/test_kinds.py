"""Optimizer state recognised by structure (issue #11): checkpoints written by every TF1 and
Keras 2 optimizer, with default and custom names, inside and outside scopes."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import tensorflow as tf

from ckptwidgets import open_checkpoint
from ckptwidgets._planning.kinds import classify_names

v1_ = tf.compat.v1

TF1_OPTIMIZERS = {
    # name: (factory, slot segments it writes per variable, its own meta entries)
    "Adam": (lambda n: v1_.train.AdamOptimizer(0.1, name=n), ["{n}", "{n}_1"], ["beta1_power", "beta2_power"]),
    "Momentum": (lambda n: v1_.train.MomentumOptimizer(0.1, 0.9, name=n), ["{n}"], []),
    "RMSProp": (lambda n: v1_.train.RMSPropOptimizer(0.1, name=n), ["{n}", "{n}_1"], []),
    "Adagrad": (lambda n: v1_.train.AdagradOptimizer(0.1, name=n), ["{n}"], []),
    "Adadelta": (lambda n: v1_.train.AdadeltaOptimizer(0.1, name=n), ["{n}", "{n}_1"], []),
    "Ftrl": (lambda n: v1_.train.FtrlOptimizer(0.1, name=n), ["{n}", "{n}_1"], []),
    "ProximalAdagrad": (lambda n: v1_.train.ProximalAdagradOptimizer(0.1, name=n), ["{n}"], []),
}


def tf1_checkpoint(tmp_path, optimizer, name, scope):
    make, _, _ = TF1_OPTIMIZERS[optimizer]
    graph = tf.Graph()
    with graph.as_default():
        w = v1_.get_variable("dense/w", [2, 3])
        b = v1_.get_variable("dense/b", [3])
        loss = tf.reduce_sum(w) + tf.reduce_sum(b)
        if scope:
            with v1_.variable_scope(scope):
                train = make(name).minimize(loss)
        else:
            train = make(name).minimize(loss)
        with v1_.Session(graph=graph) as sess:
            sess.run(v1_.global_variables_initializer())
            sess.run(train)
            return v1_.train.Saver().save(sess, str(tmp_path / "model.ckpt"))


@pytest.mark.parametrize("scope", ["", "train_scope"])
@pytest.mark.parametrize("custom", [False, True], ids=["default-name", "custom-name"])
@pytest.mark.parametrize("optimizer", list(TF1_OPTIMIZERS))
def test_tf1_optimizer_state(tmp_path, optimizer, custom, scope):
    name = f"my_{optimizer.lower()}" if custom else optimizer
    ckpt = open_checkpoint(tf1_checkpoint(tmp_path, optimizer, name, scope))
    _, segments, meta = TF1_OPTIMIZERS[optimizer]
    prefix = scope + "/" if scope else ""
    expected = {"dense/w": ("variable", None), "dense/b": ("variable", None)}
    for var in ("dense/w", "dense/b"):
        for segment in segments:
            expected[f"{prefix}{var}/{segment.format(n=name)}"] = ("slot", var)
    for key in meta:
        expected[prefix + key] = ("meta", None)
    assert {e.key: (e.kind, e.base) for e in ckpt} == expected
    for e in ckpt:
        if e.kind == "slot":
            assert ckpt[e.base].shape == e.shape  # a slot has its variable's shape


KERAS2 = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    import ckptwidgets
    tf = ckptwidgets.import_tensorflow()
    tf.compat.v1.disable_eager_execution()  # graph-mode Keras 2, as Estimators ran it
    import tf_keras as keras
    legacy = keras.optimizers.legacy
    out = {}
    for name, make in [("Adam", legacy.Adam), ("Ftrl", legacy.Ftrl), ("SGD", lambda lr: legacy.SGD(lr, momentum=0.9)),
                       ("RMSprop", legacy.RMSprop), ("Adagrad", legacy.Adagrad), ("Nadam", legacy.Nadam)]:
        keras.backend.clear_session()
        model = keras.Sequential([keras.layers.Dense(3, input_shape=(2,), name="dense"),
                                  keras.layers.Dense(1, name="out")])
        model.compile(make(0.1), "mse")
        model.fit(np.zeros((4, 2)), np.zeros((4, 1)), verbose=0)
        sess = keras.src.backend.get_session()
        out[name] = tf.compat.v1.train.Saver().save(sess, os.path.join(sys.argv[1], name, "model.ckpt"))
    print(json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def keras2_checkpoints(tmp_path_factory):
    pytest.importorskip("tf_keras")
    folder = tmp_path_factory.mktemp("keras2")
    run = subprocess.run([sys.executable, "-c", KERAS2, str(folder)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("optimizer", ["Adam", "Ftrl", "SGD", "RMSprop", "Adagrad", "Nadam"])
def test_keras2_optimizer_state_under_training(keras2_checkpoints, optimizer):
    ckpt = open_checkpoint(keras2_checkpoints[optimizer])
    weights = {"dense/kernel", "dense/bias", "out/kernel", "out/bias"}
    scope = f"training/{optimizer}/"
    for e in ckpt:
        if e.key in weights:
            assert (e.kind, e.base) == ("variable", None), e.key
        elif e.key.startswith(scope) and e.key[len(scope):].rpartition("/")[0] in weights:
            assert (e.kind, e.base) == ("slot", e.key[len(scope):].rpartition("/")[0]), e.key
        else:  # iter, learning_rate, decay, beta_1, l1_regularization_strength, momentum...
            assert e.key.startswith(scope) and e.shape == () and e.kind == "meta", e.key
    assert ckpt.totals()["slot"][0] >= 4 and "training/" + optimizer + "/iter" in ckpt


# --- the rule on names alone: what is not optimizer state ---------------------------


def test_a_single_same_shape_extension_without_an_optimizer_is_a_variable():
    shapes = {"layer": (3,), "layer/w": (3,), "other": (2,), "other/w": (3,)}
    assert classify_names(list(shapes), shapes) == [("variable", None)] * 4


def test_the_same_segment_on_two_variables_is_a_slot_group():
    shapes = {"a": (3,), "a/my_opt": (3,), "b": (2, 2), "b/my_opt": (2, 2), "c": (1,), "c/my_opt": (2,)}
    assert classify_names(list(shapes), shapes) == [
        ("variable", None), ("slot", "a"), ("variable", None), ("slot", "b"), ("variable", None), ("variable", None),
    ]


def test_a_tf1_slot_name_needs_its_variable_with_its_shape():
    shapes = {"w": (3,), "w/Adam": (3,), "v": (3,), "v/Adam": (4,)}
    assert classify_names(list(shapes), shapes) == [
        ("variable", None), ("slot", "w"), ("variable", None), ("variable", None),
    ]


def test_beta_powers_and_hyperparameters_are_meta():
    shapes = {"beta1_power_1": (), "beta2_power_1": (), "opt/iter": (), "opt/l1_regularization_strength": (),
              "opt/not_a_scalar": (3,), "model/l1_regularization_strength": ()}
    assert [kind for kind, _ in classify_names(list(shapes), shapes)] == [
        "meta", "meta", "meta", "meta", "variable", "variable",
    ]


def test_torch_batch_counters_are_meta_not_weights():
    """``num_batches_tracked`` counts batches (as global_step counts steps): meta, whatever module holds it."""
    names = ["0.weight", "1.num_batches_tracked", "encoder.bn.num_batches_tracked", "num_batches_tracked",
             "my_num_batches_tracked"]
    assert [kind for kind, _ in classify_names(names)] == ["variable", "meta", "meta", "meta", "variable"]
