"""Shared fixtures: tiny real checkpoints written into ``tmp_path``; how ``make test`` splits the suite.

``make test`` runs the tests in parallel (pytest-xdist, ``--dist loadgroup``). Each test
file is one unit of work given to one worker, so module- and package-scoped fixtures are
built once; files that share state are one unit together (:data:`SHARED_GROUPS`), and the
longest units start first (:data:`LONGEST_FIRST`) so that none of them starts last and
keeps one core busy alone at the end.
"""
from __future__ import annotations

from pathlib import Path

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


def save_adam_checkpoint(prefix, ema_decay=None):
    """A Saver checkpoint of ``net/w`` = [[1, 2]] after one Adam step: its slots ``net/w/Adam``,
    ``net/w/Adam_1``, ``beta1_power``, ``beta2_power``, ``global_step`` = 1 and, with ``ema_decay``,
    the shadow ``net/w/ExponentialMovingAverage`` updated once after the step."""
    graph = tf.Graph()
    with graph.as_default():
        w = v1_.Variable([[1.0, 2.0]], name="net/w")
        step = v1_.train.get_or_create_global_step()
        train = v1_.train.AdamOptimizer(0.1).minimize(v1_.reduce_sum(w * w), global_step=step)
        if ema_decay is not None:
            with tf.control_dependencies([train]):
                train = v1_.train.ExponentialMovingAverage(ema_decay).apply([w])
        with v1_.Session(graph=graph) as sess:
            sess.run(v1_.global_variables_initializer())
            sess.run(train)
            return v1_.train.Saver().save(sess, str(prefix))


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


# --- parallel runs (pytest-xdist) ------------------------------------------------------------

TESTS = Path(__file__).resolve().parent

# Files that must run in one worker process, one after the other.
SHARED_GROUPS = {
    # tests/_notebooks.executed runs each notebook once per process, for both files.
    "test_notebooks.py": "notebooks",
    "test_exercises.py": "notebooks",
    # The package-scoped JupyterLab server and Chromium (tests/browser/conftest.py).
    "browser/test_widgets_in_lab.py": "browser-lab",
    "browser/test_exercise_in_lab.py": "browser-lab",
}

# Units that take minutes (the --durations list of a full run), longest first; the other
# files follow, the ones with the most tests first.
LONGEST_FIRST = [
    "browser-lab",                      # JupyterLab and Chromium: every notebook, every widget
    "test_binder.py",                   # builds the Binder environment, runs every notebook
    "notebooks",                        # every notebook in a kernel, then the exercises' checks
    "test_write_safety.py",             # kill -9 and 1 GB writes
    "test_bench.py",                    # the quick benchmark: fresh processes importing TensorFlow
    "browser/test_other_frontends.py",  # Notebook 7 and Voila servers
    "test_cli_write.py",
    "test_keras_plan.py",
    "test_keras_source.py",
    "test_fuzz.py",
]


def work_unit(path) -> str:
    """The unit of work of a test file: its path under tests/, or the group it shares."""
    path = Path(path).resolve()
    relative = path.relative_to(TESTS).as_posix() if path.is_relative_to(TESTS) else str(path)
    return SHARED_GROUPS.get(relative, relative)


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist, absent without it
def pytest_xdist_make_scheduler(config, log):
    """With ``--dist loadgroup``: each unit of :func:`work_unit` goes to one worker, in the
    order the workers collected them (:func:`pytest_collection_modifyitems`).

    Our own rather than xdist's ``xdist_group`` marks, which pytest 9.2 ignores: xdist 3.8
    appends the group to ``item._nodeid``, which pytest no longer reads.
    """
    if config.getoption("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    rootdir = Path(str(config.rootpath))

    class ByWorkUnit(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return work_unit(rootdir / nodeid.split("::", 1)[0])

    config.option.loadscopereorder = False  # the longest first, not the most tests first
    return ByWorkUnit(config, log)


def pytest_collection_modifyitems(config, items):
    if not hasattr(config, "workerinput"):
        return  # a run in one process keeps pytest's order
    # Every worker sorts its identical collection the same way, and the controller hands out
    # the units in this order: the longest first, so that none starts last and runs alone.
    sizes = {}
    for item in items:
        unit = work_unit(item.path)
        sizes[unit] = sizes.get(unit, 0) + 1
    rank = {unit: i for i, unit in enumerate(LONGEST_FIRST)}
    order = {unit: i for i, unit in enumerate(sorted(sizes, key=lambda u: (rank.get(u, len(rank)), -sizes[u])))}
    items.sort(key=lambda item: order[work_unit(item.path)])  # stable: a file keeps its own order
