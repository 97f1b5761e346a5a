"""Keras weight files as checkpoint sources (issue 13, item 1): ``ckptwidgets.sources.keras``.

Real Keras 3 models (Dense, Conv2D, BatchNormalization, Embedding, LayerNormalization, a
nested functional model, a subclassed model, a bfloat16 layer), trained one step with Adam
(one with ``use_ema=True``), saved as ``.weights.h5`` and ``.keras``; legacy Keras 2 ``.h5``
written by tf_keras in a subprocess. Every dataset read through the source equals what the
model holds, what Keras loads into a fresh model, and what h5py reads; kinds and names as
the source documents them; damaged files are errors naming the file; no TensorFlow.
"""
from __future__ import annotations

import gc
import io
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import zipfile

import h5py
import numpy as np
import pytest

import ckptwidgets
from ckptwidgets import CheckpointNotFoundError, CorruptCheckpointError, open_checkpoint, plan_restore, restore

keras = pytest.importorskip("keras")

# --- the models ------------------------------------------------------------------------


def _functional():
    """Conv2D, BatchNormalization, Dense and a nested functional model; Adam with EMA."""
    inner_in = keras.Input((3,))
    inner = keras.Model(inner_in, keras.layers.Dense(2, name="core")(keras.layers.Dense(3)(inner_in)), name="inner")
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.Conv2D(2, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(3, name="hidden")(x)
    model = keras.Model(inputs, inner(x), name="functional_net")
    model.compile(keras.optimizers.Adam(use_ema=True), "mse")
    return model, np.linspace(0, 1, 4 * 36).reshape(4, 6, 6, 1).astype("float32"), np.ones((4, 2), "float32")


class _Subclassed(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.embed = keras.layers.Embedding(10, 4)
        self.blocks = [keras.layers.Dense(3), keras.layers.Dense(2)]
        self.norm = keras.layers.BatchNormalization()

    def call(self, x):
        x = self.embed(x)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


def _subclassed():
    model = _Subclassed(name="sub")
    model.compile(keras.optimizers.Adam(), "mse")
    return model, np.arange(15).reshape(3, 5) % 10, np.ones((3, 5, 2), "float32")


def _sequential():
    """A bfloat16 Dense without bias and a LayerNormalization; Adam."""
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, use_bias=False, dtype="bfloat16"), keras.layers.LayerNormalization()],
        name="seq",
    )
    model.compile(keras.optimizers.Adam(), "mse")
    return model, np.linspace(-1, 1, 8).reshape(2, 4).astype("float32"), np.ones((2, 3), "float32")


BUILDERS = {"functional": _functional, "subclassed": _subclassed, "sequential": _sequential}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """``{name: (model, x, weights.h5 path, .keras path)}``, each trained one step."""
    folder = tmp_path_factory.mktemp("keras")
    out = {}
    for name, build in BUILDERS.items():
        model, x, y = build()
        model.fit(x, y, epochs=1, batch_size=len(x), verbose=0)
        weights, archive = str(folder / f"{name}.weights.h5"), str(folder / f"{name}.keras")
        model.save_weights(weights)
        model.save(archive)
        out[name] = (model, x, weights, archive)
    return out


def layers_of(model, chain=()):
    """``(name chain, layer)`` of every leaf layer, as the source names them (root left out)."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from layers_of(layer, chain + (layer.name,))
        else:
            yield chain + (layer.name,), layer


def expected_values(model) -> dict:
    """``{record name: value}`` in the order Keras saves: each layer's weights, then the optimizer's variables."""
    out = {}
    for chain, layer in layers_of(model):
        for i, weight in enumerate(layer.weights):
            out[f"{'/'.join(chain)}/vars/{i}"] = weight.numpy()
    optimizer = model.optimizer
    for i, variable in enumerate(optimizer.variables):
        leaf = {0: "iteration", 1: "learning_rate"}.get(i, f"vars/{i}")
        out[f"{optimizer.name}/{leaf}"] = variable.numpy()
    return out


def assert_same(actual, expected, what):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert (actual.dtype, actual.shape) == (expected.dtype, expected.shape), what
    assert actual.tobytes() == expected.tobytes(), what


# --- Keras 3 ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(BUILDERS))
@pytest.mark.parametrize("how", ["weights", "archive"])
def test_every_dataset_equals_what_the_model_holds(saved, name, how):
    model, _x, weights, archive = saved[name]
    ckpt = open_checkpoint(weights if how == "weights" else archive)
    assert ckpt.source.format == ("keras-weights" if how == "weights" else "keras-archive")
    expected = expected_values(model)
    assert sorted(e.name for e in ckpt) == sorted(expected)
    for entry in ckpt:
        assert_same(ckpt.read(entry.name), expected[entry.name], entry.key)
        assert entry.nbytes == expected[entry.name].nbytes and entry.shape == expected[entry.name].shape
    assert ckpt.files == [weights if how == "weights" else archive]
    assert not ckpt.object_based and ckpt.source.restore_prefix is None


def test_names_kinds_and_keys_follow_the_layout(saved):
    model, _x, weights, _ = saved["functional"]
    ckpt = open_checkpoint(weights)
    by_name = {e.name: e for e in ckpt}
    # Keys are the dataset paths (class names, uniquified in list order); names the layers'.
    assert by_name["hidden/vars/0"].key == "layers/dense/vars/0"
    assert by_name["inner/core/vars/1"].key == "layers/functional/layers/dense_1/vars/1"
    assert by_name["conv/vars/0"].key == "layers/conv2d/vars/0"
    # An unnamed layer's name depends on the layers made before it in this process.
    batch_norm = next(layer.name for layer in model.layers if type(layer).__name__ == "BatchNormalization")
    assert by_name[f"{batch_norm}/vars/3"].key == "layers/batch_normalization/vars/3"
    # The optimizer's first two are named as Keras 3 names them.
    iteration, rate = model.optimizer.variables[:2]
    assert (by_name[iteration.path].key, by_name[rate.path].key) == ("optimizer/vars/0", "optimizer/vars/1")
    assert (by_name[iteration.path].kind, by_name[rate.path].kind) == ("meta", "meta")  # adam/ or adam_1/...
    # Model variables, EMA averages and moments: n variables, then n averages + 2n moments.
    variables = [e for e in ckpt if e.kind == "variable"]
    slots = [e for e in ckpt if e.kind == "slot"]
    trainable = len(model.trainable_variables)
    assert len(variables) == len(model.weights) and len(slots) == 3 * trainable == len(model.optimizer.variables) - 2
    assert all(e.base is None for e in slots) and all(e.key.startswith("optimizer/vars/") for e in slots)
    assert ckpt.totals()["meta"][0] == 2
    # The same model saved both ways: the same entries.
    assert open_checkpoint(saved["functional"][3]).entries == ckpt.entries


def assert_holds_what_was_read(ckpt, model, other, what):
    """``other`` (the same architecture as ``model``, loaded by Keras) holds what ``ckpt`` reads
    under ``model``'s names."""
    for (chain, _layer), (_, theirs) in zip(layers_of(model), layers_of(other), strict=True):
        for i, weight in enumerate(theirs.weights):
            assert_same(ckpt.read(f"{'/'.join(chain)}/vars/{i}"), weight.numpy(), (what, chain, i))
    for i, variable in enumerate(other.optimizer.variables):
        leaf = {0: "iteration", 1: "learning_rate"}.get(i, f"vars/{i}")
        assert_same(ckpt.read(f"{model.optimizer.name}/{leaf}"), variable.numpy(), (what, i))


@pytest.mark.parametrize("name", list(BUILDERS))
def test_what_keras_loads_is_what_is_read(saved, name):
    model, x, weights, archive = saved[name]
    fresh, _x, _y = BUILDERS[name]()
    fresh(x[:1])
    fresh.optimizer.build(fresh.trainable_variables)
    fresh.load_weights(weights)
    assert_holds_what_was_read(open_checkpoint(weights), model, fresh, "load_weights")
    loaded = keras.models.load_model(archive, custom_objects={"_Subclassed": _Subclassed})
    assert_holds_what_was_read(open_checkpoint(archive), model, loaded, "load_model")
    # A functional or Sequential model comes back with its layers' names (config.json holds
    # them); a subclassed model's layers are made anew by __init__, with new automatic names.
    same_names = [chain for chain, _ in layers_of(loaded)] == [chain for chain, _ in layers_of(model)]
    assert same_names == (name != "subclassed")


def test_restore_into_keras_variables_through_read_many(saved):
    model, x, weights, _ = saved["functional"]
    fresh, _x, _y = _functional()
    fresh(x[:1])
    ckpt = open_checkpoint(weights)
    variables = {
        f"{'/'.join(chain)}/vars/{i}": weight
        for (chain, _), (_, layer) in zip(layers_of(model), layers_of(fresh))
        for i, weight in enumerate(layer.weights)
    }
    report = restore(plan_restore(ckpt, variables))
    assert len(report.restored) == len(variables) == len(fresh.weights)
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), model.predict(x, verbose=0))


def test_h5py_reads_what_the_source_reads(saved):
    _model, _x, weights, archive = saved["sequential"]
    with zipfile.ZipFile(archive) as z, h5py.File(io.BytesIO(z.read("model.weights.h5"))) as inner:
        ckpt = open_checkpoint(archive)
        for entry in ckpt:
            raw = inner[entry.key][()]
            value = ckpt.read(entry.key)
            assert value.tobytes() == np.asarray(raw).tobytes()
            if inner[entry.key].attrs.get("dtype") == "bfloat16":
                assert entry.dtype == "bfloat16" and value.dtype.name == "bfloat16"
    assert open_checkpoint(weights)["layers/dense/vars/0"].dtype == "bfloat16"


# --- Keras 2 (tf_keras), in a subprocess ----------------------------------------------------

LEGACY = textwrap.dedent(
    """
    import os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np
    import tf_keras as k2
    folder = sys.argv[1]

    def build():
        inputs = k2.Input((6, 6, 1))
        x = k2.layers.Conv2D(2, 3, name="conv")(inputs)
        x = k2.layers.BatchNormalization()(x)
        x = k2.layers.Flatten()(x)
        x = k2.layers.Dense(3, name="hidden")(x)
        model = k2.Model(inputs, k2.layers.Dense(2)(x))
        model.compile(k2.optimizers.Adam(), "mse")
        return model

    x = np.linspace(0, 1, 4 * 36).reshape(4, 6, 6, 1).astype("float32")
    model = build()
    model.fit(x, np.ones((4, 2)), epochs=1, batch_size=4, verbose=0)
    model.save_weights(os.path.join(folder, "k2.h5"))
    model.save(os.path.join(folder, "k2_model.h5"))
    np.savez(os.path.join(folder, "weights.npz"), **{w.name: w.numpy() for w in model.weights})
    np.savez(os.path.join(folder, "optimizer.npz"), **{v.name: v.numpy() for v in model.optimizer.variables()})
    fresh = build()
    fresh.load_weights(os.path.join(folder, "k2.h5"))
    np.savez(os.path.join(folder, "loaded.npz"), *[w.numpy() for w in fresh.weights])
    np.savez(os.path.join(folder, "order.npz"), names=np.array([w.name for w in model.weights]))
    """
)


@pytest.fixture(scope="module")
def legacy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keras2")
    run = subprocess.run([sys.executable, "-c", LEGACY, str(folder)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return folder


def test_keras2_h5_weights(legacy):
    ckpt = open_checkpoint(str(legacy / "k2.h5"))
    assert ckpt.source.format == "keras-legacy-h5" and ckpt.source.layout == "legacy"
    saved = dict(np.load(legacy / "weights.npz"))
    # Names are the variables' names without ":0"; keys the dataset paths.
    assert sorted(e.name + ":0" for e in ckpt) == sorted(saved)
    assert ckpt["hidden/kernel"].key == "hidden/hidden/kernel:0"
    assert {e.kind for e in ckpt} == {"variable"}
    with h5py.File(legacy / "k2.h5") as f:
        for entry in ckpt:
            assert_same(ckpt.read(entry.key), saved[entry.name + ":0"], entry.key)
            assert_same(ckpt.read(entry.key), f[entry.key][()], entry.key)
    # What tf_keras load_weights put into a fresh model, in its weights' order.
    loaded = np.load(legacy / "loaded.npz")
    order = list(np.load(legacy / "order.npz")["names"])
    for i, name in enumerate(order):
        assert_same(ckpt.read(name[: -len(":0")]), loaded[f"arr_{i}"], name)


def test_keras2_whole_model_h5_has_its_optimizer(legacy):
    ckpt = open_checkpoint(str(legacy / "k2_model.h5"))
    optimizer = dict(np.load(legacy / "optimizer.npz"))
    by_name = {e.name: e for e in ckpt}
    assert by_name["hidden/kernel"].key == "model_weights/hidden/hidden/kernel:0"
    for name, value in optimizer.items():
        entry = by_name[name[: -len(":0")]]
        assert entry.kind == ("meta" if value.shape == () else "slot"), name
        assert_same(ckpt.read(entry.key), value, name)
    assert ckpt.totals()["variable"][0] == len(np.load(legacy / "weights.npz"))


# --- without TensorFlow -----------------------------------------------------------------------

TF_FREE = textwrap.dedent(
    """
    import contextlib, io, json, sys
    import numpy as np
    import ckptwidgets
    from ckptwidgets.__main__ import main
    from ckptwidgets.widgets import CheckpointBrowser

    out = {}
    for path in sys.argv[1:]:
        ckpt = ckptwidgets.open_checkpoint(path)
        out[path] = {e.key: [e.name, e.kind, np.asarray(ckpt.read(e.key)).tobytes().hex()] for e in ckpt}
        with contextlib.redirect_stdout(io.StringIO()) as listing:
            assert main(["ls", path]) == 0
        out[path + " listing"] = listing.getvalue()
        browser = CheckpointBrowser(ckpt)
        browser.model.selected = ckpt.entries[0].key
        out[path + " browser"] = [browser.model.error, len(browser.model.png) > 0]
    out["imported"] = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras"))
    print(json.dumps(out))
    """
)


def test_open_list_read_and_browse_without_tensorflow(saved, legacy):
    paths = [saved["functional"][2], saved["sequential"][3], str(legacy / "k2_model.h5")]
    run = subprocess.run([sys.executable, "-c", TF_FREE, *paths], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout)
    assert out["imported"] == []
    for path in paths:
        ckpt = open_checkpoint(path)
        assert out[path] == {e.key: [e.name, e.kind, np.asarray(ckpt.read(e.key)).tobytes().hex()] for e in ckpt}
        assert out[path + " browser"] == ["", True]
        assert "total" in out[path + " listing"] and ckpt.keys()[0] in out[path + " listing"]


# --- recognising files, and damaged ones ------------------------------------------------------


def _tiny(path, **extra):
    """A Keras-3-layout file with one layer of two variables (h5py alone)."""
    with h5py.File(path, "w") as f:
        f.create_group("vars").attrs["name"] = "model"
        layer = f.create_group("layers/dense/vars")
        layer.attrs["name"] = "out"
        layer["0"] = np.arange(6, dtype=np.float32).reshape(3, 2)
        layer["1"] = np.zeros(2, np.float32)
        for key, value in extra.items():
            layer[key] = value
    return str(path)


def test_missing_files_are_not_found(tmp_path):
    for name in ("gone.weights.h5", "gone.keras", "gone.h5"):
        with pytest.raises(CheckpointNotFoundError, match=name):
            open_checkpoint(str(tmp_path / name))
    _tiny(tmp_path / "model.weights.h5")
    with pytest.raises(CheckpointNotFoundError, match="Did you mean 'model.weights.h5'"):
        open_checkpoint(str(tmp_path / "modle.weights.h5"))


def test_files_are_recognised_by_their_bytes(tmp_path):
    path = _tiny(tmp_path / "weights.bin")
    assert open_checkpoint(path).source.format == "keras-weights"
    archive = tmp_path / "model.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(path, "model.weights.h5")
        z.writestr("config.json", "{}")
    ckpt = open_checkpoint(str(archive))
    assert ckpt.source.format == "keras-archive" and ckpt.read("out/vars/0").tolist() == [[0, 1], [2, 3], [4, 5]]
    # A TF checkpoint whose prefix ends in .h5 is still a TF checkpoint.
    tf = ckptwidgets.import_tensorflow()
    prefix = tf.train.Checkpoint(v=tf.Variable([1.0])).write(str(tmp_path / "tf.h5"))
    assert open_checkpoint(prefix).source.format == "tf-bundle"


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: open(p, "wb").write(b"not hdf5 at all" * 10), "Keras weights file"),
        (lambda p: os.truncate(p, os.path.getsize(p) // 2), "Keras weights file"),
        (lambda p: open(p, "r+b").write(b"\0" * 64), "Keras weights file"),
    ],
    ids=["garbage", "truncated", "zeroed-header"],
)
def test_damaged_h5_files(tmp_path, damage, message):
    path = _tiny(tmp_path / "m.weights.h5", big=np.ones(4096, np.float32))
    damage(path)
    with pytest.raises(CorruptCheckpointError, match=message) as info:
        ckpt = open_checkpoint(path)
        for _ in ckpt.read_many(ckpt.keys()):
            pass
    assert path in str(info.value)


def test_hdf5_that_is_not_keras(tmp_path):
    path = str(tmp_path / "data.h5")
    with h5py.File(path, "w") as f:
        f["x"] = np.ones(3)
    with pytest.raises(CorruptCheckpointError, match="not Keras weights") as info:
        open_checkpoint(path)
    assert path in str(info.value)


def test_links_and_external_data_are_refused(tmp_path):
    other = _tiny(tmp_path / "other.weights.h5")
    for link in (h5py.SoftLink("/layers/dense/vars/0"), h5py.ExternalLink(other, "/layers/dense/vars/0")):
        path = str(tmp_path / f"{type(link).__name__}.weights.h5")
        _tiny(path)
        with h5py.File(path, "a") as f:
            f["layers/dense/vars"]["2"] = link
        with pytest.raises(CorruptCheckpointError, match="Keras refuses"):
            open_checkpoint(path)
    raw = tmp_path / "raw.bin"
    np.zeros(4, np.float32).tofile(raw)
    path = _tiny(tmp_path / "external.weights.h5")
    with h5py.File(path, "a") as f:
        f["layers/dense/vars"].create_dataset("2", shape=(4,), dtype="f4", external=[(str(raw), 0, 16)])
    with pytest.raises(CorruptCheckpointError, match="other files"):
        open_checkpoint(path)


def test_a_shape_bomb_is_refused_when_read(tmp_path):
    path = _tiny(tmp_path / "bomb.weights.h5")
    with h5py.File(path, "a") as f:  # 8 GiB declared, nothing stored
        f["layers/dense/vars"].create_dataset("2", shape=(2**31,), dtype="f4", chunks=(2**20,), compression="gzip")
    ckpt = open_checkpoint(path)
    assert ckpt["out/vars/2"].nbytes == 2**33
    with pytest.raises(CorruptCheckpointError, match="declares"):
        ckpt.read("out/vars/2")


def test_damaged_archives(tmp_path, saved):
    archive = saved["functional"][3]
    not_zip = tmp_path / "a.keras"
    not_zip.write_bytes(b"nothing like a zip")
    with pytest.raises(CorruptCheckpointError, match="not a Keras archive"):
        open_checkpoint(str(not_zip))
    no_weights = tmp_path / "b.keras"
    with zipfile.ZipFile(no_weights, "w") as z:
        z.writestr("config.json", "{}")
    with pytest.raises(CorruptCheckpointError, match="holds no model.weights.h5"):
        open_checkpoint(str(no_weights))
    truncated = tmp_path / "c.keras"
    truncated.write_bytes(open(archive, "rb").read()[:-200])
    with pytest.raises(CorruptCheckpointError, match="c.keras"):
        open_checkpoint(str(truncated))


def test_a_flipped_bit_in_an_archive_fails_its_crc(tmp_path, saved):
    archive = saved["functional"][3]
    data = bytearray(open(archive, "rb").read())
    with zipfile.ZipFile(archive) as z, h5py.File(io.BytesIO(z.read("model.weights.h5"))) as inner:
        info = z.getinfo("model.weights.h5")
        assert info.compress_type == zipfile.ZIP_STORED  # as Keras writes it: read in place
        header = data[info.header_offset : info.header_offset + 30]
        start = info.header_offset + 30 + int.from_bytes(header[26:28], "little") + int.from_bytes(header[28:30], "little")
        offset = inner["layers/dense/vars/0"].id.get_offset()
    data[start + offset] ^= 0x01
    damaged = tmp_path / "flipped.keras"
    damaged.write_bytes(bytes(data))
    ckpt = open_checkpoint(str(damaged))  # listing reads no values: it opens
    with pytest.raises(CorruptCheckpointError, match="CRC-32") as info:
        ckpt.read("hidden/vars/0")
    assert "flipped.keras" in str(info.value) and "'layers/dense/vars/0'" in str(info.value)


def test_a_compressed_archive_is_extracted_to_a_temporary_file(tmp_path, saved, monkeypatch):
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    model, _x, _w, archive = saved["subclassed"]
    squeezed = tmp_path / "deflated.keras"
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(squeezed, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            out.writestr(info.filename, source.read(info.filename))
    ckpt = open_checkpoint(str(squeezed))
    expected = expected_values(model)
    for entry in ckpt:
        assert_same(ckpt.read(entry.key), expected[entry.name], entry.key)
    assert len(os.listdir(temporary)) == 1  # one copy, whatever was read
    del ckpt, entry
    gc.collect()
    assert os.listdir(temporary) == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_without_reading_it(tmp_path):
    fifo = str(tmp_path / "pipe.weights.h5")
    os.mkfifo(fifo)
    with pytest.raises(CorruptCheckpointError, match="FIFO"):
        open_checkpoint(fifo)
