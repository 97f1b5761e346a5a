"""Writing Keras 3 ``.weights.h5`` files from a plan (issue #13 item 4).

The oracle is Keras itself: the file written for a model loads with ``model.load_weights``
into a fresh copy of the model with the checkpoint's values, and is laid out exactly as
``model.save_weights`` lays out the same model (groups, ``name`` attributes, datasets).
The checkpoints are TF1 name-based ones written by ``tf.compat.v1`` graph-mode ``Saver``.
"""
from __future__ import annotations

import os
import warnings

import h5py
import numpy as np
import pytest
import tensorflow as tf

import keras

import ckptwidgets
from ckptwidgets import PlanError, WriteError, open_checkpoint, plan_restore
from ckptwidgets.sources.arrays import ArraySource
from ckptwidgets.write import from_plan, plan_write

from conftest import save_graph_checkpoint


def saved(model) -> list:
    """The model's variables Keras' weights file holds (a Dropout's seed state is not saved)."""
    return [v for v in model.variables if "seed_generator" not in v.path]


def tf1_checkpoint(tmp_path, model, seed=0, name="tf1.ckpt"):
    """A TF1 Saver checkpoint whose keys are the model's variable paths, random values."""
    rng = np.random.default_rng(seed)
    values = {v.path: rng.normal(size=v.shape).astype(v.dtype) for v in saved(model)}
    return save_graph_checkpoint(tmp_path / name, values), values


def tree(path) -> list:
    out = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: out.append((n, dict(o.attrs) if isinstance(o, h5py.Group) else (o.shape, str(o.dtype)))))
    return out


def files(folder) -> list:
    return sorted(os.listdir(folder))


def mlp(name="net"):
    return keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="relu", name="hidden"), keras.layers.Dropout(0.2),
         keras.layers.Dense(3, name="logits")],
        name=name,
    )


def conv_bn_embedding():
    tokens = keras.Input((5,), dtype="int32")
    x = keras.layers.Embedding(11, 6, name="embed")(tokens)
    x = keras.layers.Reshape((5, 6, 1))(x)
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(tokens, keras.layers.Dense(2, name="head")(x), name="cnn")


def nested():
    inner_in = keras.Input((4,))
    inner = keras.Model(inner_in, keras.layers.Dense(5, name="core")(inner_in), name="inner")
    block = keras.Sequential([keras.Input((5,)), keras.layers.Dense(5, name="mix"), keras.layers.LayerNormalization(name="norm")], name="block")
    inp = keras.Input((4,))
    return keras.Model(inp, keras.layers.Dense(2, name="top")(block(inner(inp))), name="outer")


def write_and_load(tmp_path, build, x):
    model = build()
    prefix, values = tf1_checkpoint(tmp_path, model)
    plan = plan_restore(prefix, model)
    out = tmp_path / "out" / "model.weights.h5"
    report = from_plan(plan).write(out, model=model, progress=False)
    fresh = build()
    fresh.load_weights(out)
    for v in saved(fresh):
        np.testing.assert_array_equal(v.numpy(), values[v.path], err_msg=v.path)
    # The same values through TF1's own restore path give the same outputs.
    model2 = build()
    ckptwidgets.restore(plan_restore(prefix, model2))
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), model2.predict(x, verbose=0))
    # Laid out exactly as Keras lays out the model (auto-named layers differ between copies).
    model.save_weights(tmp_path / "keras.weights.h5")
    assert tree(out) == tree(tmp_path / "keras.weights.h5")
    assert files(out.parent) == ["model.weights.h5"]  # no temporary file left
    return report, out, values


def test_dense_mlp_from_a_tf1_checkpoint(tmp_path):
    report, out, values = write_and_load(tmp_path, mlp, np.ones((2, 4), np.float32))
    assert report.keys == ["layers/dense/vars/0", "layers/dense/vars/1", "layers/dense_1/vars/0", "layers/dense_1/vars/1"]
    assert ("net/hidden/kernel", "layers/dense/vars/0") in report.placed and report.kept == []
    assert report.files == [str(out)] and report.nbytes == sum(v.nbytes for v in values.values())
    # Read back through ckptwidgets' own Keras source: names from the layer names.
    ckpt = open_checkpoint(str(out))
    assert [e.name for e in ckpt.entries] == ["hidden/vars/0", "hidden/vars/1", "logits/vars/0", "logits/vars/1"]
    np.testing.assert_array_equal(ckpt.read("hidden/vars/0"), values["net/hidden/kernel"])


def test_conv_batchnorm_embedding(tmp_path):
    x = np.arange(10).reshape(2, 5).astype("int32")
    report, _, values = write_and_load(tmp_path, conv_bn_embedding, x)
    assert len(report.keys) == len(values) == 1 + 2 + 4 + 2  # moving statistics included


def test_nested_functional_and_sequential(tmp_path):
    report, out, _ = write_and_load(tmp_path, nested, np.ones((3, 4), np.float32))
    assert "layers/functional/layers/dense/vars/0" in report.keys
    assert {e.name for e in open_checkpoint(str(out)).entries} >= {"inner/core/vars/0", "block/norm/vars/1"}


def test_rules_map_other_names(tmp_path):
    """A 2018 checkpoint under other scopes, mapped with rules, then written."""
    model = mlp()
    rng = np.random.default_rng(3)
    values = {
        "model/fc1/weights": rng.normal(size=(4, 8)).astype("float32"), "model/fc1/biases": np.ones(8, np.float32),
        "model/fc2/weights": rng.normal(size=(8, 3)).astype("float32"), "model/fc2/biases": np.zeros(3, np.float32),
    }
    prefix = save_graph_checkpoint(tmp_path / "old.ckpt", values)
    plan = plan_restore(prefix, model, rules={"model/fc1/weights": "net/hidden/kernel", "model/fc1/biases": "net/hidden/bias",
                                              "model/fc2/weights": "net/logits/kernel", "model/fc2/biases": "net/logits/bias"})
    out = tmp_path / "net.weights.h5"
    from_plan(plan).write(out, model=model, progress=False)
    fresh = mlp()
    fresh.load_weights(out)
    np.testing.assert_array_equal(fresh.get_layer("logits").kernel.numpy(), values["model/fc2/weights"])


def test_optimizer_state_is_written_as_the_model_holds_it(tmp_path):
    def compiled():
        model = mlp()
        model.compile(keras.optimizers.Adam(0.01), "mse")
        model.fit(np.ones((4, 4)), np.ones((4, 3)), verbose=0)
        return model

    model = compiled()
    prefix, values = tf1_checkpoint(tmp_path, model)
    out = tmp_path / "net.weights.h5"
    report = from_plan(plan_restore(prefix, model)).write(out, model=model, progress=False)
    assert [name for name, key in report.kept if key.startswith("optimizer/")] == [v.path for v in model.optimizer.variables]
    fresh = compiled()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Keras warns when it skips an optimizer it cannot load
        fresh.load_weights(out)
    for a, b in zip(fresh.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(fresh.get_layer("hidden").kernel.numpy(), values["net/hidden/kernel"])
    model.save_weights(tmp_path / "keras.weights.h5")
    assert tree(out) == tree(tmp_path / "keras.weights.h5")


def test_unmapped_variable_is_refused_unless_kept(tmp_path):
    model = mlp()
    prefix, values = tf1_checkpoint(tmp_path, model)
    plan = plan_restore(prefix, model, exclude="logits/bias")
    out = tmp_path / "net.weights.h5"
    before = files(tmp_path)
    with pytest.raises(WriteError) as info:
        from_plan(plan).write(out, model=model, progress=False)
    message = str(info.value)
    assert "net/logits/bias" in message and "layers/dense_1/vars/1" in message and str(out) in message
    assert "keep_unmapped=True" in message and "net/hidden/kernel" not in message
    assert files(tmp_path) == before and not out.exists()

    current = model.get_layer("logits").bias.numpy() + 0
    report = from_plan(plan).write(out, model=model, progress=False, keep_unmapped=True)
    assert report.kept == [("net/logits/bias", "layers/dense_1/vars/1")]
    fresh = mlp()
    fresh.load_weights(out)
    np.testing.assert_array_equal(fresh.get_layer("logits").bias.numpy(), current)
    np.testing.assert_array_equal(fresh.get_layer("logits").kernel.numpy(), values["net/logits/kernel"])


def test_shape_mismatch_is_refused_naming_both_shapes(tmp_path):
    model = mlp()
    values = {v.path: np.zeros(v.shape, "float32") for v in saved(model)}
    values["net/hidden/kernel"] = np.zeros((5, 8), np.float32)
    prefix = save_graph_checkpoint(tmp_path / "bad.ckpt", values)
    # plan_restore reports it as a problem, and from_plan refuses the plan ...
    with pytest.raises(PlanError, match="hidden/kernel"):
        from_plan(plan_restore(prefix, model))
    # ... and a write plan made by hand is checked against the model before anything is written.
    out = tmp_path / "net.weights.h5"
    before = files(tmp_path)
    with pytest.raises(WriteError) as info:
        plan_write(prefix).write(out, model=model, progress=False)
    message = str(info.value)
    for text in ("net/hidden/kernel", "layers/dense/vars/0", "[4, 8]", "[5, 8]", str(prefix), str(out)):
        assert text in message, text
    assert files(tmp_path) == before


def test_keys_that_name_no_variable_and_dtype_mismatch(tmp_path):
    model = mlp()
    arrays = {v.path: np.zeros(v.shape, "float32") for v in saved(model)}
    out = tmp_path / "net.weights.h5"
    with pytest.raises(WriteError, match="'net/extra' of the plan names no variable"):
        plan_write(ArraySource({**arrays, "net/extra": np.zeros(2, np.float32)})).write(out, model=model, progress=False)
    with pytest.raises(WriteError, match=r"float32 \[3\] in the model, but key 'net/logits/bias' .* gives float16 \[3\]"):
        plan_write(ArraySource(arrays)).cast().write(out, model=model, progress=False)
    assert files(tmp_path) == []


def test_existing_output_is_refused_and_left_as_it_was(tmp_path):
    model = mlp()
    prefix, _ = tf1_checkpoint(tmp_path, model)
    out = tmp_path / "net.weights.h5"
    out.write_bytes(b"mine")
    wplan = from_plan(plan_restore(prefix, model))
    with pytest.raises(WriteError, match="already exists.*overwrite=True"):
        wplan.write(out, model=model, progress=False)
    assert out.read_bytes() == b"mine"
    wplan.write(out, model=model, progress=False, overwrite=True)
    mlp().load_weights(out)


def test_a_failure_while_writing_leaves_no_file(tmp_path):
    model = mlp()
    prefix, _ = tf1_checkpoint(tmp_path, model)
    out = tmp_path / "out" / "net.weights.h5"
    seen = []

    class Stop(Exception):
        pass

    def progress(done, total):
        seen.append([n for n in os.listdir(out.parent) if "ckptwidgets-tmp" in n])
        raise Stop

    with pytest.raises(Stop):
        from_plan(plan_restore(prefix, model)).write(out, model=model, progress=progress)
    assert seen and seen[0]  # the temporary file existed while writing ...
    assert files(out.parent) == []  # ... and is gone, and nothing has the output's name


def test_arguments_are_checked(tmp_path):
    model = mlp()
    prefix, _ = tf1_checkpoint(tmp_path, model)
    wplan = from_plan(plan_restore(prefix, model))
    before = files(tmp_path)
    with pytest.raises(WriteError, match="needs the model"):
        wplan.write(tmp_path / "a.weights.h5")
    with pytest.raises(WriteError, match="ending in '.weights.h5'"):
        wplan.write(tmp_path / "a.h5", model=model)
    with pytest.raises(WriteError, match="no state file"):
        wplan.write(tmp_path / "a.weights.h5", model=model, state_file=True)
    with pytest.raises(WriteError, match="not built"):
        wplan.write(tmp_path / "a.weights.h5", model=keras.Sequential([keras.layers.Dense(2)]))
    with pytest.raises(WriteError, match="must be a Keras 3 model"):
        wplan.write(tmp_path / "a.weights.h5", model=tf.Module())
    assert files(tmp_path) == before


def test_progress_counts_bytes(tmp_path):
    model = mlp()
    prefix, values = tf1_checkpoint(tmp_path, model)
    calls = []
    from_plan(plan_restore(prefix, model)).write(tmp_path / "n.weights.h5", model=model, progress=lambda d, t: calls.append((d, t)))
    total = sum(v.nbytes for v in values.values())
    assert calls[-1] == (total, total) and len(calls) == len(values)


def test_bfloat16_is_stored_as_keras_stores_it(tmp_path):
    def build():
        return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d", dtype="bfloat16")], name="b")

    model = build()
    import ml_dtypes

    arrays = {v.path: np.arange(np.prod(v.shape), dtype=np.float32).reshape(v.shape).astype(ml_dtypes.bfloat16) for v in model.variables}
    out = tmp_path / "b.weights.h5"
    from_plan(plan_restore(ArraySource(arrays), model)).write(out, model=model, progress=False)
    fresh = build()
    fresh.load_weights(out)
    for v in fresh.variables:
        np.testing.assert_array_equal(np.asarray(v.numpy()).astype(np.float32), arrays[v.path].astype(np.float32))
    model.save_weights(tmp_path / "keras.weights.h5")
    assert tree(out) == tree(tmp_path / "keras.weights.h5")
