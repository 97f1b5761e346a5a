"""Shared fixtures: tiny real checkpoints written into ``tmp_path``."""
from __future__ import annotations

import pytest

import ckptwidgets

tf = ckptwidgets.import_tensorflow()  # TensorFlow without its C++ start-up log lines

v1_ = tf.compat.v1


def save_graph_checkpoint(prefix, values, use_resource=True, ema_decay=None, ema_steps=0):
    """Save ``{name: value}`` as a name-based (Saver) checkpoint and return the prefix.

    With ``ema_decay`` each variable also gets an EMA shadow, updated ``ema_steps`` times.
    """
    graph = tf.Graph()
    with graph.as_default():
        variables = [
            v1_.Variable(value, name=name, use_resource=use_resource) for name, value in values.items()
        ]
        update = None
        if ema_decay is not None:
            ema = v1_.train.ExponentialMovingAverage(ema_decay)
            update = ema.apply(variables)
        saver = v1_.train.Saver()
        with v1_.Session(graph=graph) as sess:
            sess.run(v1_.global_variables_initializer())
            for _ in range(ema_steps):
                sess.run(update)
            return saver.save(sess, str(prefix))


@pytest.fixture
def base_ckpt(tmp_path):
    """Scenario 0: float32 ``v1`` = [1.0] and ``v2`` = [2.0] in ``my_test_model.ckpt``."""
    return save_graph_checkpoint(tmp_path / "my_test_model.ckpt", {"v1": [1.0], "v2": [2.0]})


@pytest.fixture
def ema_ckpt(tmp_path):
    """Scenario 3: scalars ``v``, ``v2`` at 10.0 with shadows after one update (0.099999905)."""
    graph = tf.Graph()
    with graph.as_default():
        v = v1_.Variable(0.0, name="v")
        v2 = v1_.Variable(0.0, name="v2")
        ema = v1_.train.ExponentialMovingAverage(0.99)
        update = ema.apply(v1_.global_variables())
        saver = v1_.train.Saver()
        with v1_.Session(graph=graph) as sess:
            sess.run(v1_.global_variables_initializer())
            sess.run([v1_.assign(v, 10.0), v1_.assign(v2, 10.0)])
            sess.run(update)
            return saver.save(sess, str(tmp_path / "moving_average.ckpt"))


# --- fuzzing (tests/test_fuzz.py) ----------------------------------------------------------


def pytest_addoption(parser):
    parser.addoption(
        "--fuzz-count",
        type=int,
        default=None,
        help="Mutated checkpoints tests/test_fuzz.py opens, plans and restores "
        "(default: $CKPTWIDGETS_FUZZ_COUNT or 100; the full run is 1000).",
    )
    parser.addoption("--fuzz-seed", type=int, default=None, help="Seed of the fuzz mutations (default 0).")
