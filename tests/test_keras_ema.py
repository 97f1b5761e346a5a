"""Keras 3 ``use_ema=True`` averages (issue 13, item 5): kind ``ema`` with the right ``base``.

Real Keras 3 models trained a few steps with Adam, SGD(momentum) and RMSprop keeping
averages, saved as a TF2 checkpoint (``tf.train.Checkpoint(model=..., optimizer=...)``), a
``.keras`` archive and a ``.weights.h5``. The oracle is Keras itself: the optimizer's
``_model_variables_moving_average`` (what ``finalize_variable_values`` copies into the
model) against each average entry, ``model.trainable_variables`` against its base entry.
Where the file cannot say whose an average is (a subclassed model, shapes that fit two
ways, a bare ``.weights.h5``) nothing is guessed.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from ckptwidgets import open_checkpoint, plan_restore, restore
from ckptwidgets.sources.keras import KerasSource
from ckptwidgets.widgets import BrowserModel

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

OPTIMIZERS = {
    "adam": lambda: keras.optimizers.Adam(0.05, use_ema=True, ema_momentum=0.5),
    "sgd": lambda: keras.optimizers.SGD(0.05, momentum=0.9, use_ema=True, ema_momentum=0.5),
    "rmsprop": lambda: keras.optimizers.RMSprop(0.05, use_ema=True, ema_momentum=0.5),
}


def _train(model, optimizer, steps=3):
    keras.utils.set_random_seed(0)
    model.compile(optimizer, "mse")
    x = np.random.RandomState(0).rand(8, 3).astype("float32")
    y = np.random.RandomState(1).rand(8, 2).astype("float32")
    model.fit(x, y, epochs=steps, batch_size=8, verbose=0)
    return model


def _functional(batch_norm=False):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((3,))
    h = keras.layers.Dense(4, name="hidden")(inputs)
    if batch_norm:
        h = keras.layers.BatchNormalization(name="bn")(h)
    return keras.Model(inputs, keras.layers.Dense(2, name="out")(h), name="net")


def _sequential():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(5, name="a"), keras.layers.Dense(2, name="b")])


def _averages(optimizer):
    """Keras' own averages, one per trainable variable in ``model.trainable_variables`` order."""
    return [np.asarray(v) for v in optimizer._model_variables_moving_average]


def _finalized(model):
    """What Keras puts into the model when it swaps the averages in (``finalize_variable_values``)."""
    saved = [np.asarray(v) for v in model.trainable_variables]
    model.optimizer.finalize_variable_values(model.trainable_variables)
    out = [np.asarray(v) for v in model.trainable_variables]
    for var, value in zip(model.trainable_variables, saved):
        var.assign(value)
    return out


def _ema_entries(ckpt):
    return [e for e in ckpt.entries if e.kind == "ema"]


def _check_against_keras(ckpt, model):
    """Every average entry holds Keras' average ``i`` and its base holds trainable variable ``i``."""
    averages = _averages(model.optimizer)
    trained = [np.asarray(v) for v in model.trainable_variables]
    ema = _ema_entries(ckpt)
    assert len(ema) == len(trained)
    for entry in ema:
        index = [i for i, a in enumerate(averages) if a.shape == entry.shape and np.array_equal(a, ckpt.read(entry.key))]
        assert index, entry
        if entry.base is not None:
            base_value = ckpt.read(entry.base)
            assert any(np.array_equal(base_value, trained[i]) for i in index), entry
            assert ckpt.ema_shadows[entry.base] == entry
    return ema


# --- TF2 object-based checkpoints: exact, from the object graph ------------------------------


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_tf2_checkpoint_averages_have_exact_bases(tmp_path, name):
    model = _train(_functional(batch_norm=True), OPTIMIZERS[name]())
    prefix = tf.train.Checkpoint(model=model, optimizer=model.optimizer).write(str(tmp_path / "ckpt"))
    ckpt = open_checkpoint(prefix)
    ema = _check_against_keras(ckpt, model)
    assert all(e.base is not None for e in ema)
    # In order: average i belongs to trainable variable i (the graph's list index).
    averages, trained = _averages(model.optimizer), [np.asarray(v) for v in model.trainable_variables]
    graph = ckpt.object_graph
    listed = graph.nodes[graph.walk(["optimizer", "_model_variables_moving_average"])].children
    for index, node in listed:
        entry = ckpt[graph.key_of(node)]
        assert entry.kind == "ema"
        np.testing.assert_array_equal(ckpt.read(entry.key), averages[int(index)])
        np.testing.assert_array_equal(ckpt.read(entry.base), trained[int(index)])
    # The slots know their variable too; counters stay meta.
    slots = [e for e in ckpt.entries if e.kind == "slot"]
    assert slots and all(e.base in ckpt for e in slots)
    assert ckpt["optimizer/_iterations"].kind == "meta"


def test_tf2_prefer_ema_restores_what_keras_finalizes(tmp_path):
    model = _train(_functional(batch_norm=True), OPTIMIZERS["adam"]())
    prefix = tf.train.Checkpoint(model=model, optimizer=model.optimizer).write(str(tmp_path / "ckpt"))
    ckpt = open_checkpoint(prefix)
    expected = _finalized(model)
    bases = [ckpt[e.base] for e in sorted(_ema_entries(ckpt), key=lambda e: int(e.name.rsplit("/", 1)[1]))]
    targets = {base.name: tf.Variable(tf.zeros(base.shape)) for base in bases}
    plan = plan_restore(ckpt, targets, prefer_ema=True)
    assert plan.ok and set(plan.mapping.values()) == {e.key for e in _ema_entries(ckpt)}
    restore(plan)
    for base, value in zip(bases, expected):
        np.testing.assert_array_equal(targets[base.name].numpy(), value)
    raw = plan_restore(ckpt, targets)  # without prefer_ema: the raw weights
    assert set(raw.mapping.values()) == {b.key for b in bases}


def test_tf2_prefer_ema_into_the_model_itself(tmp_path):
    model = _train(_functional(batch_norm=True), OPTIMIZERS["adam"]())
    prefix = tf.train.Checkpoint(model=model, optimizer=model.optimizer).write(str(tmp_path / "ckpt"))
    expected = _finalized(model)
    fresh = _functional(batch_norm=True)
    plan = plan_restore(prefix, fresh, prefer_ema=True)
    restore(plan)
    for var, value in zip(fresh.trainable_variables, expected):
        np.testing.assert_array_equal(np.asarray(var), value)


def test_tf2_without_ema_reads_no_averages(tmp_path):
    model = _train(_functional(), keras.optimizers.Adam(0.05, amsgrad=True))
    prefix = tf.train.Checkpoint(model=model, optimizer=model.optimizer).write(str(tmp_path / "ckpt"))
    ckpt = open_checkpoint(prefix)
    assert not _ema_entries(ckpt) and not ckpt.ema_shadows
    assert {e.kind for e in ckpt.entries if "/_variables/" in e.key} <= {"slot", "meta"}


# --- Keras files: .keras says use_ema; the layout decides whose, or nothing is said -----------


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("build", [_functional, _sequential], ids=["functional", "sequential"])
def test_keras_archive_averages_have_exact_bases(tmp_path, name, build):
    model = _train(build(), OPTIMIZERS[name]())
    model.save(tmp_path / "m.keras")
    ckpt = open_checkpoint(str(tmp_path / "m.keras"))
    ema = _check_against_keras(ckpt, model)
    assert all(e.base is not None for e in ema)
    # Average i is the optimizer's variable 2 + i; its base is trainable variable i's dataset.
    from ckptwidgets._tf.private import keras_weight_keys

    keys = keras_weight_keys(model)
    if keys is None:
        pytest.skip("Keras' save walk is not available")
    for i, var in enumerate(model.trainable_variables):
        assert ckpt[f"optimizer/vars/{2 + i}"].base == keys[id(var)]


def test_keras_files_prefer_ema_restores_what_keras_finalizes(tmp_path):
    model = _train(_functional(), OPTIMIZERS["adam"]())
    model.save(tmp_path / "m.keras")
    model.save_weights(tmp_path / "m.weights.h5")
    expected = _finalized(model)
    for ckpt in (open_checkpoint(str(tmp_path / "m.keras")), open_checkpoint(KerasSource(str(tmp_path / "m.weights.h5"), use_ema=True))):
        names = ["hidden/vars/0", "hidden/vars/1", "out/vars/0", "out/vars/1"]  # trainable order
        targets = {name: tf.Variable(tf.zeros(ckpt[name].shape)) for name in names}
        plan = plan_restore(ckpt, targets, prefer_ema=True)
        assert plan.ok and all(ckpt[key].kind == "ema" for key in plan.mapping.values()), plan.mapping
        restore(plan)
        for name, value in zip(names, expected):
            np.testing.assert_array_equal(targets[name].numpy(), value)


def test_keras_archive_prefer_ema_into_the_model_itself(tmp_path):
    model = _train(_functional(), OPTIMIZERS["adam"]())
    model.save(tmp_path / "m.keras")
    expected = _finalized(model)
    fresh = _functional()
    restore(plan_restore(str(tmp_path / "m.keras"), fresh, prefer_ema=True))
    for var, value in zip(fresh.trainable_variables, expected):
        np.testing.assert_array_equal(np.asarray(var), value)


def test_ambiguous_shapes_give_no_base(tmp_path):
    # Dense(4)'s bias and BatchNormalization(4)'s gamma/beta/moving stats share a shape: from the
    # file, the second average could be either; the ends are decided.
    model = _train(_functional(batch_norm=True), OPTIMIZERS["adam"]())
    model.save(tmp_path / "m.keras")
    ckpt = open_checkpoint(str(tmp_path / "m.keras"))
    ema = _check_against_keras(ckpt, model)
    by_key = {e.key: e.base for e in ema}
    assert by_key["optimizer/vars/2"] == "layers/dense/vars/0"
    assert by_key["optimizer/vars/6"] == "layers/dense_1/vars/0" and by_key["optimizer/vars/7"] == "layers/dense_1/vars/1"
    assert by_key["optimizer/vars/3"] is None and by_key["optimizer/vars/4"] is None


def test_bare_weights_file_says_nothing_unless_told(tmp_path):
    model = _train(_functional(), OPTIMIZERS["sgd"]())
    path = str(tmp_path / "m.weights.h5")
    model.save_weights(path)
    # SGD(momentum, use_ema) is laid out as RMSprop(momentum) is: the file cannot say which.
    plain = open_checkpoint(path)
    assert not _ema_entries(plain)
    assert [e.kind for e in plain.entries if e.key.startswith("optimizer/vars/")].count("slot") == 8
    told = open_checkpoint(KerasSource(path, use_ema=True))
    assert all(e.base is not None for e in _check_against_keras(told, model))


def test_subclassed_model_is_never_guessed(tmp_path):
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.z = keras.layers.Dense(3)  # trained first, saved second (attributes sorted)
            self.a = keras.layers.Dense(3)

        def call(self, x):
            return self.a(self.z(x))

    keras.utils.set_random_seed(0)
    model = Net()
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9, use_ema=True), "mse")
    x = np.ones((4, 3), "float32")
    model.fit(x, x, verbose=0)
    path = str(tmp_path / "m.weights.h5")
    model.save_weights(path)
    ckpt = open_checkpoint(KerasSource(path, use_ema=True))
    assert not _ema_entries(ckpt)  # the shapes fit, the order would be wrong: nothing said
    model.save(tmp_path / "m.keras")
    assert not _ema_entries(open_checkpoint(str(tmp_path / "m.keras")))


def test_keras_archive_without_ema_or_with_a_schedule(tmp_path):
    model = _train(_functional(), keras.optimizers.Adam(0.05, amsgrad=True))  # 3 slots: as many as Adam + EMA
    model.save(tmp_path / "plain.keras")
    assert not _ema_entries(open_checkpoint(str(tmp_path / "plain.keras")))
    schedule = keras.optimizers.schedules.ExponentialDecay(0.05, 10, 0.9)
    model = _train(_functional(), keras.optimizers.Adam(schedule, use_ema=True))
    model.save(tmp_path / "schedule.keras")
    ckpt = open_checkpoint(str(tmp_path / "schedule.keras"))
    config = json.loads(__import__("zipfile").ZipFile(tmp_path / "schedule.keras").read("config.json"))
    assert isinstance(config["compile_config"]["optimizer"]["config"]["learning_rate"], dict)
    ema = _check_against_keras(ckpt, model)
    assert [e.key for e in ema] == [f"optimizer/vars/{i}" for i in range(1, 5)]  # no learning_rate variable
    assert all(e.base is not None for e in ema) and ckpt["optimizer/vars/1"].name.endswith("/vars/1")


# --- the browser compares raw and average --------------------------------------------------


def test_browser_compares_a_variable_with_its_keras_average(tmp_path):
    model = _train(_functional(), OPTIMIZERS["adam"]())
    model.save(tmp_path / "m.keras")
    prefix = tf.train.Checkpoint(model=model, optimizer=model.optimizer).write(str(tmp_path / "ckpt"))
    for ckpt, raw in ((open_checkpoint(str(tmp_path / "m.keras")), "layers/dense/vars/0"),
                      (open_checkpoint(prefix), "optimizer/_trainable_variables/0/.ATTRIBUTES/VARIABLE_VALUE")):
        browser = BrowserModel(ckpt)
        browser.selected = raw
        assert browser.shadow is not None and browser.shadow.kind == "ema"
        assert browser.comparison.startswith(f"raw {raw!r} vs EMA shadow {browser.shadow.key!r}")
        browser.selected = browser.shadow.key  # and back from the average
        assert browser.shadow.key == raw


# --- opening stays TensorFlow-free -----------------------------------------------------------

TF_FREE = textwrap.dedent(
    """
    import json, sys
    import ckptwidgets
    from ckptwidgets.sources.keras import KerasSource
    kinds = []
    for path in sys.argv[1:]:
        ckpt = ckptwidgets.open_checkpoint(path)
        kinds.append(sorted({e.kind for e in ckpt.entries}))
    imported = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras"))
    print(json.dumps({"kinds": kinds, "imported": imported}))
    """
)


def test_finding_averages_imports_no_tensorflow(tmp_path):
    model = _train(_functional(), OPTIMIZERS["adam"]())
    model.save(tmp_path / "m.keras")
    prefix = tf.train.Checkpoint(model=model, optimizer=model.optimizer).write(str(tmp_path / "ckpt"))
    run = subprocess.run([sys.executable, "-c", TF_FREE, str(tmp_path / "m.keras"), prefix],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["imported"] == [] and all("ema" in kinds for kinds in out["kinds"]), out
