"""Keras models as Keras itself handles them (issue #22, items 1 to 4).

Keras and TensorFlow are the oracles: ``load_weights`` of the files written, Keras' own
``load_weights`` of a legacy ``.h5``, ``tf.train.Checkpoint.restore`` of a converted
checkpoint, and the values tf_keras saved. Real models and files, no mocks.
"""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import ckptwidgets
from ckptwidgets import WriteError, plan_restore, restore
from ckptwidgets.convert import convert
from ckptwidgets.write import from_plan

from conftest import save_graph_checkpoint

keras = pytest.importorskip("keras")
X = np.linspace(-1.0, 1.0, 12, dtype=np.float32).reshape(4, 3)


def assert_weights_equal(model, reference):
    assert len(model.weights) == len(reference.weights)
    for mine, theirs in zip(model.weights, reference.weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy(), err_msg=mine.path)


# --- item 1: a user-subclassed Keras 3 model (or a bare layer) is written ------------------------


class Net(keras.Model):
    """Defined here, so its class's module is this test module, not Keras."""

    def __init__(self):
        super().__init__(name="net")
        self.hidden = keras.layers.Dense(4, name="hidden")
        self.out = keras.layers.Dense(2, name="out")

    def call(self, x):
        return self.out(self.hidden(x))


def built(make, seed):
    keras.utils.set_random_seed(seed)
    model = make()
    model(X)
    return model


def test_weights_file_for_a_user_subclassed_model_loads_with_load_weights(tmp_path):
    source = built(Net, 1)
    source.save_weights(tmp_path / "keras.weights.h5")
    model = built(Net, 2)
    plan = plan_restore(tmp_path / "keras.weights.h5", model)
    assert plan.ok and plan.unmapped == []
    out = tmp_path / "out.weights.h5"
    report = from_plan(plan).write(out, model=model, progress=False)
    assert len(report.placed) == 4
    reference = built(Net, 3)
    reference.load_weights(out)  # Keras reads what was written
    assert_weights_equal(reference, source)
    np.testing.assert_array_equal(reference.predict(X, verbose=0), source.predict(X, verbose=0))


def test_weights_file_for_a_bare_layer_and_refusals(tmp_path):
    keras.utils.set_random_seed(1)
    layer = keras.layers.Dense(3, name="proj")
    layer.build((None, 4))
    keras.saving.save_weights(layer, tmp_path / "layer.weights.h5")
    target = keras.layers.Dense(3, name="proj")
    target.build((None, 4))
    plan = plan_restore(tmp_path / "layer.weights.h5", target)
    from_plan(plan).write(tmp_path / "out.weights.h5", model=target, progress=False)
    reference = keras.layers.Dense(3, name="proj")
    reference.build((None, 4))
    keras.saving.load_weights(reference, tmp_path / "out.weights.h5")
    assert_weights_equal(reference, layer)
    module = tf.Module()  # not Keras: refused, naming what was given
    with pytest.raises(WriteError, match="must be a Keras 3 model or layer.*tensorflow.*Module"):
        from_plan(plan).write(tmp_path / "no.weights.h5", model=module, progress=False)
    assert not (tmp_path / "no.weights.h5").exists()


# --- item 2: a SeedGenerator's state is no variable to map -----------------------------------------


def rnn_model():
    return keras.Sequential(
        [keras.Input((5, 3)), keras.layers.LSTM(4, return_sequences=True, name="lstm"),
         keras.layers.GRU(3, dropout=0.1, name="gru"), keras.layers.Dropout(0.5, name="drop"),
         keras.layers.Dense(2, name="out")],
        name="rnn",
    )


SEQUENCES = np.linspace(-1.0, 1.0, 30, dtype=np.float32).reshape(2, 5, 3)


def rnn(seed):
    keras.utils.set_random_seed(seed)
    model = rnn_model()
    model(SEQUENCES)
    return model


@pytest.mark.parametrize("kind", ["weights.h5", "keras", "tf2"])
def test_seed_generator_state_is_not_unmapped(tmp_path, kind):
    source = rnn(1)
    assert any("seed_generator" in v.path for v in source.variables)  # the state exists, Keras lists it
    if kind == "weights.h5":
        path = str(tmp_path / "m.weights.h5")
        source.save_weights(path)
    elif kind == "keras":
        path = str(tmp_path / "m.keras")
        source.save(path)
    else:
        path = tf.train.Checkpoint(model=source).write(str(tmp_path / "ckpt"))
    model = rnn(2)
    plan = plan_restore(path, model)
    assert plan.ok and plan.unmapped == [] and plan.unused == []
    assert not any("seed_generator" in name for name in plan.variables)
    restore(plan)
    assert_weights_equal(model, source)
    reference = rnn(3)
    if kind == "tf2":  # TensorFlow's own restore has nothing to say about the seed state either
        tf.train.Checkpoint(model=reference).read(path).assert_existing_objects_matched()
    else:
        reference.load_weights(path)
    assert_weights_equal(model, reference)
    out = tmp_path / "out.weights.h5"
    report = from_plan(plan).write(out, model=model, progress=False)  # nothing unmapped: no keep_unmapped
    assert report.dropped == [] and report.kept == []
    written = rnn(4)
    written.load_weights(out)
    assert_weights_equal(written, source)


# --- item 3: a model's own weights, paired by order ------------------------------------------------


@pytest.fixture(scope="module")
def own_weights(tmp_path_factory):
    """A tf_keras subclassed model with weights of its own, saved as legacy .h5 and TF2 checkpoint."""
    tf_keras = pytest.importorskip("tf_keras")
    folder = tmp_path_factory.mktemp("own")

    class Keras2Net(tf_keras.Model):
        def __init__(self, gain):
            super().__init__()
            self.d = tf_keras.layers.Dense(2)
            self.bias = self.add_weight(name="bias", shape=(2,), initializer="random_normal")
            if gain:
                self.gain = self.add_weight(name="gain", shape=(2,), initializer="random_normal")

        def call(self, x):
            return self.d(x) + self.bias

    tf_keras.utils.set_random_seed(3)
    saved = {}
    for gain in (False, True):
        source = Keras2Net(gain)
        source(X)
        h5 = str(folder / f"gain{gain}.h5")
        source.save_weights(h5)
        prefix = str(folder / f"gain{gain}")
        source.save_weights(prefix)
        values = {"d/kernel": source.d.kernel.numpy(), "d/bias": source.d.bias.numpy(), "bias": source.bias.numpy()}
        if gain:
            values["gain"] = source.gain.numpy()
        saved[gain] = (h5, prefix, values)
    return saved


class OwnBias(keras.Model):
    def __init__(self, gain=False):
        super().__init__(name="own")
        self.d = keras.layers.Dense(2, name="d")
        if gain:  # created first here, last in the Keras 2 model: found by its name in a TF2 checkpoint
            self.gain = self.add_weight(name="gain", shape=(2,), initializer="zeros")
        self.bias = self.add_weight(name="bias", shape=(2,), initializer="zeros")

    def call(self, x):
        return self.d(x) + self.bias


def own_model(gain=False, seed=5):
    keras.utils.set_random_seed(seed)
    model = OwnBias(gain)
    model(X)
    return model


def own_values(model) -> dict:
    out = {"d/kernel": model.d.kernel.numpy(), "d/bias": model.d.bias.numpy(), "bias": model.bias.numpy()}
    if hasattr(model, "gain"):
        out["gain"] = model.gain.numpy()
    return out


def assert_values(got: dict, expected: dict):
    assert sorted(got) == sorted(expected)
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


@pytest.mark.parametrize("kind", ["h5", "tf2"])
def test_order_pairs_a_models_own_weights(own_weights, kind):
    h5, prefix, values = own_weights[False]
    model = own_model()
    plan = plan_restore(h5 if kind == "h5" else prefix, model, match="order")
    assert plan.ok and plan.unmapped == []
    assert plan.mapping["own/bias"] == ("top_level_model_weights/bias:0" if kind == "h5"
                                        else "bias/.ATTRIBUTES/VARIABLE_VALUE")
    restore(plan)
    reference = own_model(seed=6)
    reference.load_weights(h5)  # Keras 3 reads the legacy .h5's top_level_model_weights itself
    assert_values(own_values(model), own_values(reference))
    assert_values(own_values(model), values)  # and that is what tf_keras saved


def test_order_pairs_own_weights_by_name_in_a_tf2_checkpoint(own_weights):
    h5, prefix, values = own_weights[True]
    model = own_model(gain=True)
    plan = plan_restore(prefix, model, match="order")
    assert plan.ok and plan.unmapped == []
    assert plan.mapping["own/gain"] == "gain/.ATTRIBUTES/VARIABLE_VALUE"  # not the first saved: by name
    restore(plan)
    assert_values(own_values(model), values)
    shorter = own_model()  # one own weight against two saved: paired as far as it goes, and said
    plan = plan_restore(h5, shorter, match="order")
    assert any("1 weights of its own" in h and "has 2" in h for h in plan.hints)


# --- item 4: the leading model name of Keras 3 paths ---------------------------------------------


def classifier(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="dense"),
                             keras.layers.Dense(2, name="out")], name="classifier")


def tf1_values(seed, scope=""):
    rng = np.random.default_rng(seed)
    return {f"{scope}dense/kernel": rng.normal(size=(4, 3)).astype(np.float32),
            f"{scope}dense/bias": rng.normal(size=3).astype(np.float32),
            f"{scope}out/kernel": rng.normal(size=(3, 2)).astype(np.float32),
            f"{scope}out/bias": rng.normal(size=2).astype(np.float32)}


def test_convert_into_a_named_sequential_without_rules(tmp_path):
    values = tf1_values(1)
    source = save_graph_checkpoint(tmp_path / "tf1.ckpt", values)
    model = classifier()
    plan = plan_restore(source, model)
    assert plan.ok and plan.unmapped == []
    assert plan.mapping["classifier/dense/kernel"] == "dense/kernel"
    assert any("model's own name ('classifier/')" in h and "matched 4 variables without it" in h
               for h in plan.hints)
    convert(source, tmp_path / "tf2" / "ckpt", model)
    fresh = classifier(seed=9)
    tf.train.Checkpoint(model=fresh).restore(str(tmp_path / "tf2" / "ckpt")).assert_existing_objects_matched()
    for v in fresh.weights:
        np.testing.assert_array_equal(v.numpy(), values[v.path.partition("/")[2]], err_msg=v.path)
    # The name the model's variables have comes first: a checkpoint holding it is matched by it.
    full = save_graph_checkpoint(tmp_path / "full.ckpt", {"classifier/" + k: v for k, v in values.items()})
    assert plan_restore(full, classifier()).mapping["classifier/dense/kernel"] == "classifier/dense/kernel"


def test_convert_error_names_the_rule_that_maps_most(tmp_path):
    values = tf1_values(2, scope="old/")
    source = save_graph_checkpoint(tmp_path / "tf1.ckpt", values)
    model = classifier()
    plan = plan_restore(source, model)
    assert plan.mapping == {}
    assert plan.hints == ["rules={'old/': 'classifier/'} would map 4 of the 4 unmapped variables "
                          "(checkpoint names under 'old/' <- variable names under 'classifier/')."]
    with pytest.raises(WriteError, match=r"rules=\{'old/': 'classifier/'\}, which maps 4 of the 4 unmapped") as error:
        convert(source, tmp_path / "out", model)
    assert "'old_scope/'" not in str(error.value)
    assert not list(tmp_path.glob("out*"))
    convert(source, tmp_path / "out", model, rules={"old/": "classifier/"})  # the advice works
    # Some variables mapped (without the model name), the others under another scope: the
    # error names the rule for those.
    mixed = {k: v for k, v in tf1_values(3).items() if k.startswith("dense/")}
    mixed.update({k: v for k, v in tf1_values(3, scope="head/").items() if k.startswith("head/out/")})
    source = save_graph_checkpoint(tmp_path / "mixed.ckpt", mixed)
    with pytest.raises(WriteError, match=r"rules=\{'head/': 'classifier/'\}, which maps 2 of the 2 unmapped"):
        convert(source, tmp_path / "mixed_out", classifier())
    with pytest.raises(WriteError, match=r"Add the rule \{'head/': 'classifier/'\}, which maps 2 of the 2 unmapped "
                                         r"variables: rules=\{'dense/': 'classifier/dense/', 'head/': 'classifier/'\}"):
        convert(source, tmp_path / "mixed_out", classifier(), rules={"dense/": "classifier/dense/"})
    convert(source, tmp_path / "mixed_out", model, rules={"head/": "classifier/"})
    fresh = classifier(seed=9)
    tf.train.Checkpoint(model=fresh).restore(str(tmp_path / "mixed_out")).assert_existing_objects_matched()
    np.testing.assert_array_equal(fresh.layers[1].kernel.numpy(), mixed["head/out/kernel"])
    np.testing.assert_array_equal(fresh.layers[0].kernel.numpy(), mixed["dense/kernel"])


# --- a tf_keras model's variables are named after its layers ------------------------------------


def test_a_tf_keras_models_variables_are_named_after_its_layers(tmp_path):
    """Its names ('hidden/kernel'), not object paths ('layer_with_weights-0/kernel'): a name-based
    checkpoint of those names maps by name, a TF2 checkpoint of the model still by its object graph
    (``tf.train.Checkpoint.restore`` is the oracle), and two variables of one name fall back to paths."""
    tf_keras = pytest.importorskip("tf_keras")

    def build(seed):
        tf_keras.utils.set_random_seed(seed)
        return tf_keras.Sequential([tf_keras.Input((3,)), tf_keras.layers.Dense(4, name="hidden"),
                                    tf_keras.layers.Dense(2, name="head")], name="net")

    model = build(1)
    names = ["hidden/kernel", "hidden/bias", "head/kernel", "head/bias"]
    assert list(plan_restore(str(save_graph_checkpoint(tmp_path / "empty.ckpt", {"x": [0.0]})), model).variables) == names
    values = {name: np.full(w.shape, i + 1, np.float32) for i, (name, w) in enumerate(zip(names, model.weights))}
    plan = plan_restore(save_graph_checkpoint(tmp_path / "tf1.ckpt", values), model)
    assert plan.mapping == {name: name for name in names} and plan.ok
    restore(plan)
    for name, weight in zip(names, model.weights):
        assert np.array_equal(weight.numpy(), values[name]), name

    trained = build(2)
    prefix = tf.train.Checkpoint(model=trained).write(str(tmp_path / "tf2" / "ckpt"))
    ours, oracle = build(3), build(3)
    plan = plan_restore(prefix, ours)  # the model itself, found under the checkpoint's child 'model'
    assert plan.ok and plan.unmapped == [] and list(plan.variables) == names
    assert plan.mapping["hidden/kernel"] == "model/layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE"
    restore(plan)
    tf.train.Checkpoint(model=oracle).restore(prefix).assert_nontrivial_match()
    for a, b in zip(ours.weights, oracle.weights):
        assert np.array_equal(a.numpy(), b.numpy())

    class Twins(tf_keras.Model):  # two layers of one name: their variables share names
        def __init__(self):
            super().__init__()
            self.first, self.second = tf_keras.layers.Dense(2, name="d"), tf_keras.layers.Dense(2, name="d")

        def call(self, x):
            return self.second(self.first(x))

    twins = Twins()
    twins(np.zeros((1, 3), np.float32))
    assert sorted(plan_restore(prefix, twins).variables) == ["first/bias", "first/kernel", "second/bias", "second/kernel"]
