"""Issue #22, items 5-11: written checkpoints TensorFlow reads back, and a command line that
never hurts its source.

TensorFlow is the oracle where it reads a file: its object-based restore of a stripped TF2
checkpoint (into fresh objects and into a ``saved_model``), ``tf.train.load_checkpoint``
and TensorFlow's own ``TrackableObjectGraph`` proto. The command line runs through
``main([...])`` (capsys) and, for exit statuses, as ``python -m ckptwidgets``.
"""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from tensorflow.core.protobuf import trackable_object_graph_pb2

import ckptwidgets
from ckptwidgets import PlanError, WriteError, open_checkpoint, plan_restore
from ckptwidgets.__main__ import main
from ckptwidgets.cli._common import command_line_words
from ckptwidgets.write import average, from_plan, plan_write

from conftest import save_graph_checkpoint

PACKAGE_ROOT = os.path.dirname(os.path.dirname(ckptwidgets.__file__))
GRAPH = "_CHECKPOINTABLE_OBJECT_GRAPH"
SAVE_COUNTER = "save_counter/.ATTRIBUTES/VARIABLE_VALUE"


def cli(*args, cwd=None, env=None):
    """``python -m ckptwidgets ARGS`` of the package these tests import (also from another folder)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"} if env is None else dict(env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [PACKAGE_ROOT, env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "ckptwidgets", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300, cwd=cwd)


def digests(folder) -> dict:
    """``{file name: sha256}`` of every file in ``folder`` (to show nothing changed)."""
    out = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                out[name] = hashlib.sha256(f.read()).hexdigest()
    return out


def tf_values(prefix) -> dict:
    reader = tf.train.load_checkpoint(str(prefix))
    return {key: reader.get_tensor(key) for key in reader.get_variable_to_shape_map()}


# --- 5, 6: strip() of a TF2 checkpoint, read back by TensorFlow's object-based restore -------


class Net(tf.Module):
    def __init__(self):
        super().__init__()
        self.w = tf.Variable(tf.zeros([3, 2]))
        self.b = tf.Variable(tf.zeros([2]))

    def __call__(self, x):
        return tf.matmul(x, self.w) + self.b

    @property
    def weights(self):
        return [self.w, self.b]


def tf_keras_dense():
    return tf_keras.Sequential([tf_keras.layers.Dense(2, input_shape=(3,), name="dense")])


# (build the model, its variables in a fixed order, an optimizer): a tf.Module with Keras 3's
# Adam (slots under optimizer/_variables/N), and a tf_keras model with the legacy Adam (slots
# under <variable>/.OPTIMIZER_SLOT/optimizer/m, the error).
SETUPS = {
    "module+keras3_adam": (Net, lambda m: m.weights, lambda: keras.optimizers.Adam(0.1)),
    "tf_keras+legacy_adam": (tf_keras_dense, lambda m: [m.layers[0].kernel, m.layers[0].bias],
                             lambda: tf_keras.optimizers.legacy.Adam(0.1)),
}


def train_one_step(model, weights, optimizer):
    x = tf.constant([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(model(x) - 1.0))
    optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))


@pytest.fixture(params=sorted(SETUPS))
def trained_tf2(request, tmp_path):
    """A TF2 checkpoint of a model and its optimizer after one step, its saved_model, the values."""
    build, weights_of, make_optimizer = SETUPS[request.param]
    model = build()
    weights = weights_of(model)
    if isinstance(model, Net):
        for i, w in enumerate(weights):
            w.assign(np.arange(1.0 + i, 1.0 + i + np.prod(w.shape), dtype=np.float32).reshape(w.shape))
    optimizer = make_optimizer()
    train_one_step(model, weights, optimizer)
    root = tf.train.Checkpoint(model=model, optimizer=optimizer)
    prefix = root.save(str(tmp_path / "train" / "ckpt"))
    saved_model = str(tmp_path / "saved_model")
    tf.saved_model.save(root, saved_model)
    return prefix, saved_model, [w.numpy() for w in weights], (build, weights_of, make_optimizer)


def test_strip_writes_an_object_graph_that_names_only_what_the_file_holds(tmp_path, trained_tf2):
    prefix, _, _, _ = trained_tf2
    plan = plan_write(prefix).strip()
    assert {item.key: item.op for item in plan.items}[GRAPH] == "prune"
    out = str(tmp_path / "stripped" / "ckpt")
    plan.write(out, progress=False)
    held = tf_values(out)
    assert not any("optimizer" in key for key in held), sorted(held)
    graph = trackable_object_graph_pb2.TrackableObjectGraph.FromString(held[GRAPH])  # TF's own proto
    named = {a.checkpoint_key for node in graph.nodes for a in node.attributes}
    assert named == set(held) - {GRAPH}
    assert all(s.slot_variable_node_id < len(graph.nodes) for n in graph.nodes for s in n.slot_variables)
    assert not any(n.slot_variables for n in graph.nodes)  # the slots went with the optimizer
    root_children = {c.local_name for c in graph.nodes[0].children}
    assert {"model", "save_counter"} <= root_children


def test_tf_restores_the_stripped_checkpoint_into_a_model_and_its_optimizer(tmp_path, trained_tf2):
    """Fails without pruning: the graph names the optimizer's keys, which the file no longer holds."""
    prefix, _, values, (build, weights_of, make_optimizer) = trained_tf2
    out = str(tmp_path / "stripped" / "ckpt")
    plan_write(prefix).strip().write(out, progress=False)
    for built in (False, True):  # a fresh optimizer, and one whose slots already exist
        model, optimizer = build(), make_optimizer()
        if built:
            train_one_step(model, weights_of(model), optimizer)
        checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
        checkpoint.read(out).expect_partial()
        for variable, value in zip(weights_of(model), values):
            np.testing.assert_array_equal(variable.numpy(), value)
        assert checkpoint.save_counter.numpy() == 1  # item 6: kept, and read back
    fresh = build()
    tf.train.Checkpoint(model=fresh).read(out).assert_existing_objects_matched()
    for variable, value in zip(weights_of(fresh), values):
        np.testing.assert_array_equal(variable.numpy(), value)


def test_tf_restores_the_stripped_checkpoint_into_a_saved_model(tmp_path, trained_tf2):
    """The issue's route: tf.train.Checkpoint(root=tf.saved_model.load(sm)).read(out)."""
    prefix, saved_model, values, _ = trained_tf2
    out = str(tmp_path / "stripped" / "ckpt")
    plan_write(prefix).strip().write(out, progress=False)
    loaded = tf.saved_model.load(saved_model)
    variables = [o for o in tf.train.TrackableView(loaded.model).descendants() if isinstance(o, tf.Variable)]
    weights = sorted(variables, key=lambda v: len(v.shape), reverse=True)  # w (kernel), then b (bias)
    assert len(weights) == len(values)
    for variable in weights:
        variable.assign(tf.zeros_like(variable))
    tf.train.Checkpoint(root=loaded).read(out).expect_partial()
    for variable, value in zip(weights, values):
        np.testing.assert_array_equal(variable.numpy(), value)


def test_strip_keeps_save_counter_and_global_step_by_name(tmp_path, trained_tf2):
    prefix, _, _, _ = trained_tf2
    plan = plan_write(prefix).strip()
    assert SAVE_COUNTER in plan.keys
    assert not any(key.startswith("optimizer/") for key in plan.keys)
    assert SAVE_COUNTER not in plan_write(prefix).strip(keep=()).keys
    tf1 = save_graph_checkpoint(tmp_path / "tf1.ckpt", {"w": [1.0], "global_step": np.int64(7), "beta1_power": 0.9})
    assert plan_write(tf1).strip().keys == ["global_step", "w"]


def test_a_graph_that_names_every_key_written_is_copied_unchanged(tmp_path, trained_tf2):
    prefix, _, _, _ = trained_tf2
    plan = plan_write(prefix).cast({"float32": "float16"})
    assert {item.key: item.op for item in plan.items}[GRAPH] == "copy"
    out = tmp_path / "half" / "ckpt"
    plan.write(out, progress=False)
    assert tf_values(out)[GRAPH] == tf_values(prefix)[GRAPH]


# --- 7: no output is one of the sources, however spelled ------------------------------------


@pytest.fixture
def tf1_source(tmp_path):
    """A Saver checkpoint in its own folder, with its .meta and the folder's state file."""
    prefix = save_graph_checkpoint(tmp_path / "src" / "model.ckpt", {"model/w": [1.0, 2.0], "model/b": [3.0]})
    return prefix


def spellings(prefix, tmp_path) -> list:
    folder = os.path.dirname(prefix)
    (tmp_path / "link").symlink_to(folder, target_is_directory=True)
    os.symlink(prefix + ".index", tmp_path / "alias.index")  # a prefix whose index is the source's
    for name in os.listdir(folder):
        if ".data-" in name:
            os.symlink(os.path.join(folder, name), tmp_path / name.replace("model.ckpt", "alias"))
    relative = os.path.relpath(prefix)
    return [prefix, relative, "./" + relative, prefix + ".index", str(tmp_path / "link" / "model.ckpt"),
            str(tmp_path / "alias"), folder, folder + "/"]


def test_writing_over_a_source_is_refused_however_spelled(tmp_path, tf1_source, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = digests(tmp_path / "src")
    second = save_graph_checkpoint(tmp_path / "src2" / "model.ckpt", {"model/w": [3.0, 4.0], "model/b": [5.0]})
    plans = [plan_write(tf1_source).rename({"model/": "net/"}), average([second, tf1_source])]
    for spelling in spellings(tf1_source, tmp_path):
        for plan in plans:
            for overwrite in (False, True):
                with pytest.raises(WriteError) as caught:
                    plan.write(spelling, overwrite=overwrite, progress=False)
                message = str(caught.value)
                assert "is the input checkpoint itself" in message and repr(tf1_source) in message, message
    assert digests(tmp_path / "src") == before
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]


def test_writing_a_weights_file_over_its_source_is_refused(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="dense")], name="net")
    source = tmp_path / "net.weights.h5"
    model.save_weights(source)
    os.symlink(source, tmp_path / "link.weights.h5")
    before = digests(tmp_path)
    plan = from_plan(plan_restore(source, model))
    for spelling in (source, tmp_path / "link.weights.h5", os.path.relpath(source)):
        with pytest.raises(WriteError, match=r"is the input checkpoint itself \('.*net.weights.h5'\)"):
            plan.write(spelling, model=model, overwrite=True, progress=False)
    assert digests(tmp_path) == before


def test_convert_over_its_source_is_refused(tmp_path, tf1_source, monkeypatch):
    from ckptwidgets.convert import convert

    monkeypatch.chdir(tmp_path)
    before = digests(tmp_path / "src")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, name="dense")], name="model")
    for spelling in (tf1_source, "./" + os.path.relpath(tf1_source), tf1_source + ".index"):
        with pytest.raises(WriteError, match="is the input checkpoint itself"):
            convert(tf1_source, spelling, model, rules={"model/": "model/dense/"}, overwrite=True)
    assert digests(tmp_path / "src") == before


def test_cli_rename_and_average_refuse_their_source(tmp_path, tf1_source, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = digests(tmp_path / "src")
    second = save_graph_checkpoint(tmp_path / "src2" / "model.ckpt", {"model/w": [3.0, 4.0], "model/b": [5.0]})
    relative = os.path.relpath(tf1_source)
    for argv in (["rename", tf1_source, tf1_source, "--rule", "model/=net/", "--overwrite"],
                 ["rename", relative, "./" + relative, "--rule", "model/=net/", "--overwrite"],
                 ["average", "./" + relative, second, relative, "--overwrite"],
                 ["strip", relative, "src", "--overwrite"]):
        assert main(argv) == 2, argv
        out, err = capsys.readouterr()
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: The output "), err
        assert "is the input checkpoint itself" in err and "--overwrite" in err and "overwrite=True" not in err
    assert digests(tmp_path / "src") == before  # the .meta too
    run = cli("rename", tf1_source, "./" + relative, "--rule", "model/=net/", "--overwrite", cwd=tmp_path)
    assert run.returncode == 2 and run.stderr.startswith("error: The output ") and "Traceback" not in run.stderr
    assert digests(tmp_path / "src") == before


# --- 8: a rule that renames nothing is an error ----------------------------------------------


def test_a_rule_that_matches_nothing_is_a_plan_error_naming_the_closest_scope(tf1_source):
    with pytest.raises(PlanError, match=r"The rule \{'modle/': 'net/'\} renames nothing: no key of '.*model.ckpt' "
                                        r"is under 'modle/' \(the closest scope is 'model/'\)"):
        plan_write(tf1_source).rename({"modle/": "net/"})
    with pytest.raises(PlanError, match=r"The rule \{'model/x': 'y'\} renames nothing: no key 'model/x' in .*"
                                        r"\(the closest key is 'model/w'\)"):
        plan_write(tf1_source).rename({"model/x": "y"})
    with pytest.raises(PlanError, match=r"The pair \{'nope': 'x'\} renames nothing"):
        plan_write(tf1_source).rename(pairs={"nope": "x"})
    with pytest.raises(PlanError, match=r"\{'zzz/': 'net/'\} renames nothing"):  # among rules that do
        plan_write(tf1_source).rename({"model/": "net/", "zzz/": "net/"})
    # A pair may name a key the rules made; a rule covered only by a more specific one renames nothing.
    assert plan_write(tf1_source).rename({"model/": "net/"}, pairs={"net/w": "net/kernel"}).keys == ["net/b", "net/kernel"]
    with pytest.raises(PlanError, match=r"\{'model/': 'a/'\} renames nothing"):
        plan_write(tf1_source).rename({"model/": "a/", "model/w": "w", "model/b": "b"})


def test_cli_rule_that_matches_nothing_exits_2_and_writes_nothing(tmp_path, tf1_source, capsys):
    out = tmp_path / "out" / "renamed.ckpt"
    assert main(["rename", tf1_source, str(out), "--rule", "modle/=net/"]) == 2
    _, err = capsys.readouterr()
    assert err.startswith("error: The --rule modle/=net/ renames nothing") and "closest scope is 'model/'" in err, err
    assert len(err.splitlines()) == 1
    assert main(["rename", tf1_source, str(out), "--rule", "modle/=net/", "--dry-run"]) == 2
    assert not out.parent.exists()
    run = cli("rename", tf1_source, out, "--rule", "modle/=net/")
    assert run.returncode == 2 and "--rule modle/=net/" in run.stderr and not out.parent.exists(), run.stderr


# --- 9: command-line errors name command-line options ----------------------------------------


def test_cli_errors_name_options_not_python_keywords(tmp_path, tf1_source, capsys):
    out = tmp_path / "out.ckpt"
    assert main(["strip", tf1_source, str(out)]) == 0
    capsys.readouterr()
    assert main(["strip", tf1_source, str(out)]) == 2
    _, err = capsys.readouterr()
    assert err == f"error: A checkpoint already exists at {str(out)!r}; pass --overwrite to replace it.\n"
    run = cli("strip", tf1_source, out)
    assert run.returncode == 2 and "pass --overwrite" in run.stderr and "overwrite=True" not in run.stderr


@pytest.mark.parametrize(
    "message, expected",
    [
        ("pass overwrite=True to replace it.", "pass --overwrite to replace it."),
        ("state_file=True names a TF checkpoint", "--state-file names a TF checkpoint"),
        ("prefer_ema=True looks up shadows", "--prefer-ema looks up shadows"),
        ("Map the names with rules= (e.g. {'old_scope/': '/'}).", "Map the names with --rule (e.g. --rule old_scope/=/)."),
        ("rules={'dense/': 'classifier/dense/'} would map 3", "--rule dense/=classifier/dense/ would map 3"),
        ("rules={'a b/': 'c/', 'x': 'y'} maps", "--rule 'a b/=c/' --rule x=y maps"),
        ("no key 'v1' in 'model.ckpt'", "no key 'v1' in 'model.ckpt'"),
        ("keep_unmapped=True, match='order'", "keep_unmapped=True, match='order'"),
    ],
)
def test_command_line_words(message, expected):
    assert command_line_words(message) == expected


# --- 10: a mistyped command -----------------------------------------------------------------


def test_a_mistyped_command_is_named_with_the_closest_one(tmp_path, tf1_source, capsys, monkeypatch):
    assert main(["lss", tf1_source]) == 2
    assert capsys.readouterr().err == "error: unknown command 'lss' (did you mean 'ls'?)\n"
    assert main(["strp", tf1_source, str(tmp_path / "out.ckpt")]) == 2
    assert capsys.readouterr().err == "error: unknown command 'strp' (did you mean 'strip'?)\n"
    assert main(["frobnicate"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown command 'frobnicate' (commands: ls, diff, rename")
    assert not (tmp_path / "out.ckpt.index").exists()
    # A path is still listed: as given, relative, a bare existing name, or a missing path.
    monkeypatch.chdir(os.path.dirname(tf1_source))
    for path in (tf1_source, "model.ckpt", "."):
        assert main([path]) == 0, path
        assert capsys.readouterr().out.startswith("checkpoint ")
    os.symlink("model.ckpt.index", "lss.index")  # a prefix named like the typo is a path
    os.symlink(next(n for n in os.listdir(".") if n.startswith("model.ckpt.data-")), "lss.data-00000-of-00001")
    assert main(["lss"]) == 0 and "model/w" in capsys.readouterr().out
    assert main(["missing/model.ckpt"]) == 2 and "No checkpoint at" in capsys.readouterr().err
    run = cli("lss", tf1_source, cwd=tmp_path)
    assert run.returncode == 2 and run.stderr == "error: unknown command 'lss' (did you mean 'ls'?)\n"


# --- 11: no TensorFlow start-up lines -------------------------------------------------------

TF_NOISE = re.compile(r"absl::InitializeLog|oneDNN|cuda|cpu_feature_guard|TF_ENABLE_ONEDNN_OPTS|^[IWEF]\d{4} ",
                      re.IGNORECASE | re.MULTILINE)


def test_no_subcommand_prints_tensorflow_start_up_lines(tmp_path):
    """Run as a user would, without TF_CPP_MIN_LOG_LEVEL: convert imports TensorFlow (the
    user's model module imports Keras), the others must not print TF lines either."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    source = save_graph_checkpoint(tmp_path / "tf1.ckpt", {"old/dense/kernel": np.ones((2, 3), np.float32),
                                                           "old/dense/bias": [1.0, 2.0, 3.0]})
    (tmp_path / "mymodels.py").write_text(textwrap.dedent(
        """
        import keras

        def build():
            return keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, name="dense")], name="net")
        """
    ))
    commands = [
        ("convert", source, tmp_path / "tf2" / "ckpt", "--model", "mymodels:build", "--rule", "old/=net/"),
        ("ls", source),
        ("diff", source, source),
        ("rename", source, tmp_path / "renamed.ckpt", "--rule", "old/=new/"),
        ("strip", source, tmp_path / "stripped.ckpt"),
        ("promote-ema", source, tmp_path / "averaged.ckpt"),
        ("average", tmp_path / "mean.ckpt", source, source),
    ]
    for args in commands:
        run = cli(*args, cwd=tmp_path, env=env)
        assert run.returncode == 0, (args, run.stderr)
        assert not TF_NOISE.search(run.stderr), (args[0], run.stderr)
    assert open_checkpoint(tmp_path / "tf2" / "ckpt").object_based
