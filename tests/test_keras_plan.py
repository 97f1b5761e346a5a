"""Planning and restoring into Keras 3 models (issue #13, items 2 and 3).

Real Keras 3 and tf_keras (Keras 2) models, saved every way Keras and TF save them; the
oracles are ``model.load_weights`` (Keras files), ``tf.train.Checkpoint(model=...).restore``
(TF2) and ``Saver`` (TF1), compared value for value. No mocks.
"""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import ckptwidgets
from ckptwidgets import PlanError, RestoreError, plan_restore, restore
from ckptwidgets.codegen import STYLES

keras = pytest.importorskip("keras")
v1_ = tf.compat.v1


# --- models -----------------------------------------------------------------------------


def sequential(k=keras, hidden=3, extra=False):
    layers = [k.Input((4,)), k.layers.Dense(hidden, name="hidden"), k.layers.BatchNormalization(name="bn"),
              k.layers.Dense(2, name="out")]
    if extra:
        layers.append(k.layers.Dense(2, name="extra"))
    return k.Sequential(layers, name="net")


def conv_embedding(k=keras):
    inputs = k.Input((5,), dtype="int32")
    x = k.layers.Embedding(10, 4, name="embed")(inputs)
    x = k.layers.Conv1D(3, 2, name="conv")(x)
    x = k.layers.BatchNormalization(name="bn")(x)
    x = k.layers.GlobalAveragePooling1D()(x)
    return k.Model(inputs, k.layers.Dense(2, name="out")(x), name="net")


def nested(k=keras, hidden=4):
    inner = k.Sequential([k.layers.Dense(3, name="core"), k.layers.BatchNormalization(name="bn")], name="inner")
    return k.Sequential([k.Input((4,)), k.layers.Dense(hidden, name="hidden"), inner, k.layers.Dense(2, name="out")],
                        name="net")


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__(name="sub")
        self.d1 = keras.layers.Dense(3, name="d1")
        self.bn = keras.layers.BatchNormalization(name="bn")
        self.d2 = keras.layers.Dense(2, name="d2")

    def call(self, x, training=False):
        return self.d2(self.bn(self.d1(x), training=training))


def subclassed(k=keras):
    model = Subclassed()
    model(np.zeros((1, 4), np.float32))
    return model


BUILDERS = {"sequential": sequential, "conv_embedding": conv_embedding, "nested": nested, "subclassed": subclassed}


def inputs_for(name):
    if name == "conv_embedding":
        return np.random.RandomState(0).randint(0, 10, (8, 5)).astype("int32")
    return np.random.RandomState(0).rand(8, 4).astype("float32")


def trained(name, seed=1, k=keras):
    """A model after one epoch: moving statistics and optimizer state are not their initial values."""
    (keras.utils if k is keras else k.utils).set_random_seed(seed)
    model = BUILDERS[name](k) if name != "subclassed" else subclassed()
    model.compile(optimizer="adam", loss="mse")
    model.fit(inputs_for(name), np.random.RandomState(1).rand(8, 2).astype("float32"), verbose=0, epochs=2)
    return model


def fresh(name, seed=2):
    keras.utils.set_random_seed(seed)
    return BUILDERS[name]() if name != "subclassed" else subclassed()


def values(model):
    return [v.numpy() for v in model.variables]


def assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


# --- Keras 3 files into Keras 3 models ---------------------------------------------------------


@pytest.mark.parametrize("name", BUILDERS)
@pytest.mark.parametrize("suffix", ["m.weights.h5", "m.keras"])
def test_keras3_file_into_keras3_model_equals_load_weights(tmp_path, name, suffix):
    source = trained(name)
    path = str(tmp_path / suffix)
    (source.save_weights if suffix.endswith(".weights.h5") else source.save)(path)
    model, reference = fresh(name, 2), fresh(name, 3)
    plan = plan_restore(path, model)
    assert plan.ok and plan.unmapped == [] and plan.hints == []
    assert len(plan.mapping) == len(model.variables)
    restore(plan)
    reference.load_weights(path)
    assert_same(values(model), values(reference))
    assert_same(values(model), values(source))
    # A tf.train.Checkpoint around the model: matched into its one Keras model, said in the hints.
    around = fresh(name, 4)
    wrapped = plan_restore(path, tf.train.Checkpoint(model=around))
    assert wrapped.ok and "matched it into 'model'" in wrapped.hints[0]
    restore(wrapped)
    assert_same(values(around), values(source))


def test_keras3_file_into_another_architecture(tmp_path):
    source = trained("sequential")
    path = str(tmp_path / "m.weights.h5")
    source.save_weights(path)
    wider = sequential(hidden=5)
    plan = plan_restore(path, wider)
    mismatched = [p for p in plan.problems if p.reason == "shape_mismatch"]
    assert {p.variable for p in mismatched} >= {"net/hidden/kernel", "net/hidden/bias"}
    text = next(p.message for p in mismatched if p.variable == "net/hidden/kernel")
    assert path in text and "layers/dense/vars/0" in text and "[4, 5]" in text and "[4, 3]" in text
    before = values(wider)
    with pytest.raises(RestoreError):
        restore(plan)
    assert_same(values(wider), before)  # all or nothing
    with pytest.raises(ValueError):  # Keras refuses it too
        sequential(hidden=5).load_weights(path)
    longer = sequential(extra=True)
    plan = plan_restore(path, longer)
    missing = [p for p in plan.problems if p.reason == "missing_key"]
    assert [p.variable for p in missing] == ["net/extra/kernel", "net/extra/bias"]
    assert "layers/dense_2/vars/0" in missing[0].message and path in missing[0].message


def test_keras_variables_in_a_list(tmp_path):
    source = trained("sequential")
    path = str(tmp_path / "m.weights.h5")
    source.save_weights(path)
    model = fresh("sequential")
    plan = plan_restore(path, model.variables)  # owners found by name: hidden, bn, out
    assert plan.ok and plan.unmapped == []
    assert plan.mapping["net/bn/moving_mean"] == "layers/batch_normalization/vars/2"
    restore(plan)
    assert_same(values(model), values(source))
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="first"),
                              keras.layers.BatchNormalization(name="bn"), keras.layers.Dense(2, name="out")], name="net")
    partial = plan_restore(path, other.variables)
    assert partial.unmapped == ["net/first/kernel", "net/first/bias"]
    assert any("'net/first'" in h and "pass the model itself" in h for h in partial.hints)


# --- TF2 checkpoints into Keras 3 models ---------------------------------------------------


@pytest.mark.parametrize("name", BUILDERS)
def test_tf2_checkpoint_with_optimizer_equals_checkpoint_restore(tmp_path, name):
    source = trained(name)
    prefix = tf.train.Checkpoint(model=source, optimizer=source.optimizer).write(str(tmp_path / "ckpt"))
    keys = ckptwidgets.open_checkpoint(prefix).keys()
    if name != "subclassed":  # kernels are keyed by the optimizer (a shorter path than the model's)
        assert any(k.startswith("optimizer/_trainable_variables/") for k in keys)
    model, reference = fresh(name, 2), fresh(name, 3)
    plan = plan_restore(prefix, tf.train.Checkpoint(model=model))
    assert plan.ok and plan.unmapped == [] and plan.hints == []
    restore(plan)
    tf.train.Checkpoint(model=reference).restore(prefix).expect_partial()
    assert_same(values(model), values(reference))
    assert_same(values(model), values(source))
    bare = fresh(name, 4)
    plan = plan_restore(prefix, bare)  # the bare model: matched under the checkpoint's child 'model'
    assert plan.ok and plan.unmapped == [] and "under 'model'" in plan.hints[0]
    restore(plan)
    assert_same(values(bare), values(source))


def test_tf2_checkpoint_of_the_bare_model_into_a_checkpoint_root(tmp_path):
    source = trained("nested")
    prefix = tf.train.Checkpoint(source).write(str(tmp_path / "root"))  # the model is the root
    model = fresh("nested")
    plan = plan_restore(prefix, tf.train.Checkpoint(model=model))
    assert plan.unmapped == [] and plan.ok and "child 'model'" in plan.hints[0]
    restore(plan)
    assert_same(values(model), values(source))


def test_tf_module_roots_unchanged(tmp_path):
    module = tf.Module()
    module.w = tf.Variable([1.0, 2.0])
    module.inner = tf.Module()
    module.inner.b = tf.Variable(3.0)
    prefix = tf.train.Checkpoint(net=module).write(str(tmp_path / "m"))
    other = tf.Module()
    other.w = tf.Variable([0.0, 0.0])
    other.inner = tf.Module()
    other.inner.b = tf.Variable(0.0)
    plan = plan_restore(prefix, tf.train.Checkpoint(net=other))
    assert plan.mapping == {"net/w": "net/w/.ATTRIBUTES/VARIABLE_VALUE",
                            "net/inner/b": "net/inner/b/.ATTRIBUTES/VARIABLE_VALUE"}
    assert plan.hints == []


# --- TF1 name-based into Keras 3 ---------------------------------------------------------------


def test_tf1_names_into_keras3_with_a_scope_rule(tmp_path):
    source = trained("sequential")
    # Keras 2 / TF1 names: no model scope ("hidden/kernel"), as a graph-mode Keras 2 model saves them.
    var_list = {v.path.partition("/")[2]: v.value for v in source.variables}
    prefix = v1_.train.Saver(var_list=var_list).save(None, str(tmp_path / "tf1.ckpt"))
    model, reference = fresh("sequential", 2), fresh("sequential", 3)
    # The leading model name of Keras 3 paths is matched without (issue #22): no rule needed.
    unruled = plan_restore(prefix, model)
    assert unruled.ok and unruled.unmapped == [] and "model's own name ('net/')" in unruled.hints[0]
    plan = plan_restore(prefix, model, rules={"/": "net/"})
    assert plan.ok and plan.unmapped == [] and plan.mapping == unruled.mapping and plan.hints == []
    restore(plan)
    v1_.train.Saver(plan_restore(prefix, reference, rules={"/": "net/"}).var_list).restore(None, prefix)
    assert_same(values(model), values(reference))
    assert_same(values(model), values(source))


# --- Keras 2 -> Keras 3 by structure (match="order") ------------------------------------------


@pytest.fixture(scope="module")
def keras2(tmp_path_factory):
    """A trained tf_keras (Keras 2) nested model saved as TF2 (save_weights, tf.train.Checkpoint) and .h5."""
    tf_keras = pytest.importorskip("tf_keras")
    folder = tmp_path_factory.mktemp("keras2")
    tf_keras.utils.set_random_seed(5)
    model = nested(tf_keras)
    model.compile(optimizer="adam", loss="mse")
    model.fit(inputs_for("nested"), np.random.RandomState(1).rand(8, 2).astype("float32"), verbose=0, epochs=2)
    model.save_weights(str(folder / "weights"))
    model.save_weights(str(folder / "weights.h5"))
    model.save(str(folder / "model.h5"))
    prefix = tf.train.Checkpoint(model=model).write(str(folder / "ckpt"))
    paths = {"save_weights": str(folder / "weights"), "checkpoint": prefix,
             "weights.h5": str(folder / "weights.h5"), "model.h5": str(folder / "model.h5")}
    return paths, [w.numpy() for w in model.weights]


@pytest.mark.parametrize("kind", ["save_weights", "checkpoint", "weights.h5", "model.h5"])
def test_order_keras2_into_keras3(keras2, kind):
    paths, weights = keras2
    path = paths[kind]
    model = fresh("nested")
    by_name = plan_restore(path, model)
    if kind.endswith(".h5"):  # the legacy .h5 names its layers: matched by layer name (load_weights by_name=True)
        assert by_name.ok and by_name.unmapped == [] and by_name.hints == []
    else:  # TF2 numbers them: by name nothing matches, and the hint says match='order'
        assert any("match='order'" in h for h in by_name.hints)
    plan = plan_restore(path, model, match="order")
    if kind.endswith(".h5"):
        assert by_name.mapping == plan.mapping
    assert plan.match == "order" and plan.ok and plan.unmapped == []
    assert "paired" in plan.hints[-1] and "'hidden' <- " in plan.hints[-1]
    if kind in ("save_weights", "checkpoint"):
        head = "model/" if kind == "checkpoint" else ""
        assert plan.mapping["net/inner/bn/moving_mean"] == (
            f"{head}layer_with_weights-1/layer_with_weights-1/moving_mean/.ATTRIBUTES/VARIABLE_VALUE")
    restore(plan)
    assert_same([w.numpy() for w in model.weights], weights)
    if kind.endswith(".h5"):  # Keras 3 reads legacy .h5 by order too: the oracle
        reference = fresh("nested", 3)
        reference.load_weights(path)
        assert_same(values(model), values(reference))


@pytest.mark.parametrize("framework", ["keras", "tf_keras"])
@pytest.mark.parametrize("kind", ["weights.h5", "model.h5"])
def test_legacy_h5_by_layer_name_equals_load_weights_by_name(keras2, kind, framework):
    """The default match of a legacy .h5 pairs layers by name, weights in order, as
    ``model.load_weights(path, by_name=True)`` does in Keras 3 and in tf_keras: the oracle.
    A layer the file lacks stays as it is and is named; the file's layer nobody has is unused."""
    k = pytest.importorskip(framework)
    path = paths_of(keras2)[kind]

    def build(seed):
        k.utils.set_random_seed(seed)
        inner = k.Sequential([k.layers.Dense(3, name="core"), k.layers.BatchNormalization(name="bn")], name="inner")
        # 'out' renamed 'new_head', and the layers in another order than the file's layer_names
        return k.Sequential([k.Input((4,)), k.layers.Dense(4, name="hidden"), inner, k.layers.Dense(2, name="new_head")],
                            name="net")

    model, reference = build(3), build(3)
    plan = plan_restore(path, model)
    assert plan.ok and len(plan.mapping) == 8 and len(plan.unmapped) == 2
    head = {id(w) for w in model.layers[-1].weights}  # tf_keras variables are named by object path here
    assert {id(plan.variables[name]) for name in plan.unmapped} == head
    assert sorted(e.key.rpartition("/")[0].rpartition("/")[2] for e in plan.unused) == ["out", "out"]
    (note,) = [h for h in plan.hints if "by_name=True" in h]
    assert "no layer named 'new_head'" in note and "other 2 layers with weights" in note
    restore(plan)
    reference.load_weights(path, by_name=True)
    assert_same(values(model), values(reference))
    assert not np.array_equal(values(model)[0], values(build(3))[0])  # the restore changed something
    unnamed = k.Sequential([k.Input((4,)), k.layers.Dense(4), k.Sequential([k.layers.Dense(3), k.layers.BatchNormalization()]),
                            k.layers.Dense(2)])
    lost = plan_restore(path, unnamed)  # no layer name in common: nothing by name, and the hint says order
    assert not lost.mapping and any("match='order'" in h for h in lost.hints), lost.hints


def paths_of(keras2) -> dict:
    return keras2[0]


@pytest.mark.parametrize("kind", ["save_weights", "weights.h5"])
def test_order_code_export_and_mapper(keras2, kind):
    paths, weights = keras2
    plan = plan_restore(paths[kind], fresh("nested"), match="order")
    for style in STYLES:
        model = fresh("nested", 7)
        target = plan_restore(paths[kind], model, match="order")
        exec(compile(target.to_code(style), "<plan>", "exec"), {"variables": target.variables, "sess": None})
        assert_same([w.numpy() for w in model.weights], weights)
    from ckptwidgets.widgets import VariableMapper

    model = fresh("nested", 8)
    mapper = VariableMapper(paths[kind], model, match="order")
    assert mapper.model.plan.mapping == plan_restore(paths[kind], model, match="order").mapping
    assert mapper.model.current_key("net/inner/core/kernel") == plan.mapping["net/inner/core/kernel"]
    assert mapper.model.row_texts("net/inner/core/kernel")[0][2] == mapper.model.status_text("net/inner/core/kernel")[0]
    keys = [value for _label, value in mapper.model.options("net/inner/core/kernel")]  # labels are shortened
    assert plan.mapping["net/inner/core/kernel"] in keys
    mapper.model.restore()
    assert_same([w.numpy() for w in model.weights], weights)


def test_order_counts_and_shapes_that_differ(keras2):
    paths, _ = keras2
    longer = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, name="hidden"),
                               keras.Sequential([keras.layers.Dense(3, name="core"),
                                                 keras.layers.BatchNormalization(name="bn")], name="inner"),
                               keras.layers.Dense(2, name="out"), keras.layers.Dense(2, name="extra")], name="net")
    plan = plan_restore(paths["weights.h5"], longer, match="order")
    assert any("has 4 layers with weights" in h and "has 3" in h for h in plan.hints)
    assert plan.unmapped == ["net/extra/kernel", "net/extra/bias"] and plan.ok
    no_bias = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, name="hidden", use_bias=False),
                                keras.Sequential([keras.layers.Dense(3, name="core"),
                                                  keras.layers.BatchNormalization(name="bn")], name="inner"),
                                keras.layers.Dense(2, name="out")], name="net")
    plan = plan_restore(paths["save_weights"], no_bias, match="order")
    assert any("Layer 'hidden' has 1 weights" in h and "has 2" in h for h in plan.hints)
    wider = nested(hidden=5)
    plan = plan_restore(paths["save_weights"], wider, match="order")
    problem = next(p for p in plan.problems if p.variable == "net/hidden/kernel")
    assert problem.reason == "shape_mismatch" and "[4, 5]" in problem.message and "[4, 4]" in problem.message
    assert "layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE" in problem.message
    with pytest.raises(RestoreError):
        restore(plan)


def test_order_errors(keras2, tmp_path):
    paths, _ = keras2
    model = fresh("nested")
    with pytest.raises(PlanError, match="Unknown match 'position'"):
        plan_restore(paths["save_weights"], model, match="position")
    with pytest.raises(PlanError, match="pass the model itself"):
        plan_restore(paths["save_weights"], model.variables, match="order")
    with pytest.raises(PlanError, match="rules"):
        plan_restore(paths["save_weights"], model, match="order", rules={"/": "net/"})
    with pytest.raises(PlanError, match="prefer_ema"):
        plan_restore(paths["save_weights"], model, match="order", prefer_ema=True)
    prefix = v1_.train.Saver({"w": tf.Variable([1.0])}).save(None, str(tmp_path / "tf1.ckpt"))
    with pytest.raises(PlanError, match="name-based"):
        plan_restore(prefix, model, match="order")
    model.save_weights(str(tmp_path / "k3.weights.h5"))
    with pytest.raises(PlanError, match="Keras 3 weights file"):
        plan_restore(str(tmp_path / "k3.weights.h5"), model, match="order")
    k3 = tf.train.Checkpoint(model=model).write(str(tmp_path / "k3"))
    with pytest.raises(PlanError, match="no Keras 2 model structure"):
        plan_restore(k3, model, match="order")


# --- code export from Keras files ---------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["m.weights.h5", "m.keras"])
def test_keras_file_code_export_runs(tmp_path, suffix):
    source = trained("sequential")
    path = str(tmp_path / suffix)
    (source.save_weights if suffix.endswith(".weights.h5") else source.save)(path)
    for style in STYLES:
        model = fresh("sequential", 9)
        plan = plan_restore(path, model)
        code = plan.to_code(style)
        assert "import h5py" in code and "tf.train.load_checkpoint" not in code
        exec(compile(code, "<plan>", "exec"), {"variables": plan.variables, "sess": None})
        assert_same(values(model), values(source))


def test_order_keras2_subclassed_into_keras3_subclassed(tmp_path):
    tf_keras = pytest.importorskip("tf_keras")

    class Keras2Net(tf_keras.Model):
        def __init__(self):
            super().__init__()
            self.d1 = tf_keras.layers.Dense(3)
            self.bn = tf_keras.layers.BatchNormalization()
            self.d2 = tf_keras.layers.Dense(2)

        def call(self, x, training=False):
            return self.d2(self.bn(self.d1(x), training=training))

    source = Keras2Net()
    source(np.ones((2, 4), np.float32))
    for i, w in enumerate(source.weights):
        w.assign(np.full(w.shape, i + 1.0, np.float32))
    prefix = str(tmp_path / "sub")
    source.save_weights(prefix)
    model = fresh("subclassed")
    plan = plan_restore(prefix, model, match="order")
    assert plan.ok and plan.unmapped == []
    restore(plan)
    assert_same([w.numpy() for w in model.trainable_weights + model.non_trainable_weights],
                [w.numpy() for w in source.trainable_weights + source.non_trainable_weights])
