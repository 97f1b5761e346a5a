"""Real Keras files this project did not write (tests/corpus.py, :data:`KERAS_CATALOGUE`), with
h5py and tf_keras as the oracles.

For each file:

- entries: ``open_checkpoint``'s keys are the file's datasets (h5py's ``visititems``), with
  their dtypes and shapes, and the catalogue's kinds and literal ``tensors`` hold;
- values: every ``ckpt.read(key)`` is h5py's array bit for bit;
- restoring: into the model its own config builds (``tf_keras.models.model_from_json``), the
  name plan maps nothing and its first hint says ``match="order"`` (Keras 2 saved by layer
  order); the order plan maps every variable, and after ``restore`` the weights and the
  output on a fixed input are those of ``tf_keras.models.load_model`` of the same file;
- writing: ``strip`` to ``.safetensors`` leaves the model's weights only, bit for bit.

Like tests/test_corpus.py: skipped when the package index cannot be reached, failing under CI.
"""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

import ckptwidgets
from corpus import ARCHIVES, KERAS_ARCHIVES, KERAS_CATALOGUE, TORCH_ARCHIVES, fetch
from ckptwidgets.write import plan_write

pytestmark = pytest.mark.corpus


@pytest.fixture(scope="module", params=KERAS_CATALOGUE, ids=[c.name for c in KERAS_CATALOGUE])
def corpus(request):
    return fetch(request.param)


def h5py_datasets(path) -> dict:
    """``{path: numpy array}`` of every dataset in the file, as h5py reads it."""
    found = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: found.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return found


def _bytes(value) -> bytes:
    return np.ascontiguousarray(value).tobytes()


def test_the_catalogue_is_pinned_apart():
    assert {c.archive for c in KERAS_CATALOGUE} == set(KERAS_ARCHIVES)
    assert not set(KERAS_ARCHIVES) & (set(ARCHIVES) | set(TORCH_ARCHIVES))


def test_entries_are_the_files_datasets(corpus):
    c = corpus.corpus
    ckpt = ckptwidgets.open_checkpoint(corpus.prefix)
    datasets = h5py_datasets(corpus.prefix)
    assert len(ckpt.entries) == c.entries == len(datasets)
    assert {e.key: (e.dtype, tuple(e.shape)) for e in ckpt.entries} == {
        key: (str(value.dtype), value.shape) for key, value in datasets.items()}
    for key, expected in c.tensors.items():
        entry = ckpt.find(key)
        assert (entry.dtype, tuple(entry.shape)) == expected, key
    kinds = {}
    for entry in ckpt.entries:
        kinds[entry.kind] = kinds.get(entry.kind, 0) + 1
    assert kinds == c.counts


def test_values_are_h5pys_bit_for_bit(corpus):
    ckpt = ckptwidgets.open_checkpoint(corpus.prefix)
    datasets = h5py_datasets(corpus.prefix)
    for key, value in ckpt.read_many(ckpt.keys()):
        expected = datasets[key]
        assert value.dtype == expected.dtype and _bytes(value) == _bytes(expected), key


def test_restores_into_the_model_its_config_builds_as_keras_loads_it(corpus):
    tf_keras = pytest.importorskip("tf_keras")
    with h5py.File(corpus.prefix, "r") as f:
        config = f.attrs["model_config"]
    config = config.decode() if isinstance(config, bytes) else config
    model = tf_keras.models.model_from_json(config)
    oracle = tf_keras.models.load_model(corpus.prefix, compile=False)

    # The default match pairs the file's layers by name (load_weights(by_name=True)); the model its
    # config builds has the same names, so the layer order (Keras' default for .h5) agrees.
    plan = ckptwidgets.plan_restore(corpus.prefix, model)
    assert plan.hints == [] and plan.mapping == ckptwidgets.plan_restore(corpus.prefix, model, match="order").mapping
    assert not plan.problems and not plan.unmapped and len(plan.mapping) == len(model.weights)
    assert set(plan.mapping.values()) == {e.key for e in plan.checkpoint.entries if e.key.startswith("model_weights/")}
    report = ckptwidgets.restore(plan)
    assert len(report.restored) == len(model.weights) == len(oracle.weights)
    for ours, theirs in zip(model.weights, oracle.weights):
        assert np.array_equal(ours.numpy(), theirs.numpy()), ours.name
    inputs = np.random.RandomState(0).rand(2, *model.input_shape[1:]).astype(np.float32)
    assert np.array_equal(model(inputs).numpy(), oracle(inputs).numpy())


def test_strip_to_safetensors_keeps_the_models_weights(corpus, tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    datasets = h5py_datasets(corpus.prefix)
    report = plan_write(corpus.prefix).strip().write(tmp_path / "weights.safetensors", progress=False)
    written = safetensors_numpy.load_file(report.prefix)
    assert sorted(written) == sorted(key for key in datasets if key.startswith("model_weights/"))
    for key, value in written.items():
        assert np.array_equal(value, datasets[key]), key
    with h5py.File(corpus.prefix, "r") as f:  # the JSON config said which layers there are
        layers = json.loads(f.attrs["model_config"])["config"]["layers"]
    assert {key.split("/")[1] for key in written} <= {layer["config"]["name"] for layer in layers}
