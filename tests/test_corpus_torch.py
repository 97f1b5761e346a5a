"""Real PyTorch and safetensors checkpoints this project did not write (tests/corpus.py,
:data:`TORCH_CATALOGUE`), with torch, safetensors and transformers as the oracles.

For each checkpoint:

- entries: ``open_checkpoint``'s keys, dtypes and shapes are those of
  ``torch.load(weights_only=True)`` (a ``.pt``) or ``safetensors.numpy.load_file``, and the
  catalogue's literal ``tensors`` expectations hold;
- values: every ``ckpt.read(key)`` (and ``read_many``) is the framework's tensor bit for bit;
- writing: ``plan_write(ckpt).write`` to ``.pt`` and to ``.safetensors`` gives files that
  torch and safetensors load as the original, bit for bit, and ``python -m ckptwidgets ls``
  lists every key of them with its dtype and shape;
- a Hugging Face model folder (config.json beside the weights): ``plan_restore`` into
  ``AutoModel.from_config`` (built offline from the folder's config) has no problem,
  ``restore`` gives every tensor ``load_state_dict`` gives, and the model's output on a fixed
  input is that of a twin loaded by ``load_state_dict``. The MiniLM's keys have no prefix
  (they are a ``BertModel``'s); restoring into ``BertForSequenceClassification``, whose
  encoder is under ``bert.``, needs the rule ``{"/": "bert."}``.

Like tests/test_corpus.py: skipped when the package index cannot be reached, failing under CI.
"""
from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
safetensors_numpy = pytest.importorskip("safetensors.numpy")

import ckptwidgets  # noqa: E402
from corpus import ARCHIVES, BY_NAME, TORCH_ARCHIVES, TORCH_BY_NAME, TORCH_CATALOGUE, fetch  # noqa: E402

pytestmark = pytest.mark.corpus

TRANSFORMERS = [c for c in TORCH_CATALOGUE if c.transformers_model]
FORMATS = (".pt", ".safetensors")


def _ids(items):
    return [c.name for c in items]


_LOCAL = {}


def local(c):
    """The corpus checkpoint on this machine (downloaded and extracted once per cache)."""
    if c.name not in _LOCAL:
        _LOCAL[c.name] = fetch(c)
    return _LOCAL[c.name]


def framework_load(path: str) -> dict:
    """``{key: numpy array}`` as the framework that wrote ``path`` reads it."""
    if path.endswith(".safetensors"):
        return safetensors_numpy.load_file(path)
    state = torch.load(path, weights_only=True, map_location="cpu")
    return {key: tensor.numpy() for key, tensor in state.items()}


def assert_same(ours, theirs, key):
    """Bit for bit: the same dtype, shape and bytes."""
    ours = np.asarray(ours)
    assert (ours.dtype, ours.shape) == (theirs.dtype, theirs.shape), (key, ours.dtype, theirs.dtype, ours.shape)
    assert ours.tobytes() == theirs.tobytes(), key


def assert_same_state(ours: dict, theirs: dict):
    assert sorted(ours) == sorted(theirs)
    for key in theirs:
        assert_same(ours[key], theirs[key], key)


# --- the catalogue itself (no download) -----------------------------------------------------


def test_torch_catalogue_is_consistent():
    assert {c.archive for c in TORCH_CATALOGUE} == set(TORCH_ARCHIVES)
    assert not set(TORCH_ARCHIVES) & set(ARCHIVES) and not set(TORCH_BY_NAME) & set(BY_NAME)
    assert len(TORCH_BY_NAME) == len(TORCH_CATALOGUE)
    for c in TORCH_CATALOGUE:
        assert c.framework == "torch" and c.prefix in c.files and c.prefix.endswith((".pt", ".safetensors"))
        assert sum(c.counts.values()) == c.entries and c.tensors, c.name
        assert c.root.endswith("/") and not any(f.startswith("/") or ".." in f for f in c.files)
        assert not c.transformers_model or "config.json" in c.files


# --- entries and values --------------------------------------------------------------------


@pytest.mark.parametrize("c", TORCH_CATALOGUE, ids=_ids(TORCH_CATALOGUE))
def test_entries_are_the_frameworks(c):
    loc = local(c)
    theirs = framework_load(loc.prefix)
    ckpt = ckptwidgets.open_checkpoint(loc.prefix)
    assert ckpt.source.format == ("safetensors" if c.prefix.endswith(".safetensors") else "torch")
    assert len(theirs) == c.entries == len(ckpt)
    assert [e.key for e in ckpt.entries] == sorted(theirs)
    for e in ckpt.entries:
        assert (e.dtype, tuple(e.shape)) == (theirs[e.key].dtype.name, theirs[e.key].shape), e.key
        assert e.name == e.key and e.nbytes == theirs[e.key].nbytes, e.key
    assert {k: (ckpt[k].dtype, tuple(ckpt[k].shape)) for k in c.tensors} == c.tensors
    assert {kind: count for kind, (count, _) in ckpt.totals().items() if count} == c.counts


@pytest.mark.parametrize("c", TORCH_CATALOGUE, ids=_ids(TORCH_CATALOGUE))
def test_every_value_is_the_frameworks_bit_for_bit(c):
    loc = local(c)
    theirs = framework_load(loc.prefix)
    ckpt = ckptwidgets.open_checkpoint(loc.prefix)
    for key in theirs:
        assert_same(ckpt.read(key), theirs[key], key)
    assert_same_state(dict(ckpt.read_many(sorted(theirs))), theirs)
    if c.name == "minilm_l6_v2":  # the buffer transformers wrote: 0..511, not floats
        assert ckpt.read("embeddings.position_ids").tolist() == [list(range(512))]


# --- writing -------------------------------------------------------------------------------


def _listed(text: str) -> dict:
    """``{key: (dtype, shape)}`` from ``ckptwidgets ls``'s table (the rows under its header)."""
    rows, table = {}, False
    for line in text.splitlines():
        if line.split()[:2] == ["key", "kind"]:
            table = True
        elif table and not line.strip():
            break
        elif table:
            key, _kind, dtype, rest = line.split(None, 3)
            shape = re.match(r"\[([^\]]*)\]", rest).group(1)
            rows[key] = (dtype, tuple(int(n) for n in shape.split(",") if n.strip()))
    return rows


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("c", TORCH_CATALOGUE, ids=_ids(TORCH_CATALOGUE))
def test_written_copies_load_as_the_original(c, suffix, tmp_path):
    loc = local(c)
    theirs = framework_load(loc.prefix)
    out = tmp_path / f"copy{suffix}"
    ckptwidgets.plan_write(ckptwidgets.open_checkpoint(loc.prefix)).write(str(out), progress=False)
    assert_same_state(framework_load(str(out)), theirs)
    if suffix == ".pt":  # torch's own tensors, not only their numpy view
        state = torch.load(str(out), weights_only=True)
        assert {k: (v.dtype, tuple(v.shape)) for k, v in state.items()} == {
            k: (getattr(torch, v.dtype.name), v.shape) for k, v in theirs.items()}
    done = subprocess.run([sys.executable, "-m", "ckptwidgets", "ls", str(out)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert _listed(done.stdout) == {k: (v.dtype.name, v.shape) for k, v in theirs.items()}


# --- restoring into the transformers model of the folder ---------------------------------------


def _model(c, seed: int, cls: str | None = None):
    """The folder's model built from its config.json alone (offline), randomly initialised."""
    transformers = pytest.importorskip("transformers")
    config = transformers.AutoConfig.from_pretrained(str(local(c).folder), local_files_only=True)
    torch.manual_seed(seed)
    model = getattr(transformers, cls or c.transformers_model)(config)
    return model.eval()


def _state(module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _assert_same_tensors(ours: dict, theirs: dict):
    assert list(ours) == list(theirs)
    for key in theirs:
        assert ours[key].dtype == theirs[key].dtype and torch.equal(ours[key], theirs[key]), key


def _output(model, bert=None):
    """``last_hidden_state`` and ``pooler_output`` on a fixed batch (with padding)."""
    ids = torch.tensor([[101, 7592, 2088, 2003, 1037, 3231, 102], [101, 2307, 2154, 102, 0, 0, 0]])
    with torch.no_grad():
        out = (bert or model)(input_ids=ids, attention_mask=(ids != 0).long(), token_type_ids=torch.zeros_like(ids))
    return out.last_hidden_state, out.pooler_output


@pytest.mark.parametrize("c", TRANSFORMERS, ids=_ids(TRANSFORMERS))
def test_restore_into_the_model_of_its_config(c):
    """Into ``AutoModel.from_config``: every tensor and the output are those of a twin loaded by
    ``load_state_dict``; the file's ``embeddings.position_ids`` (a buffer today's BertModel
    no longer saves) is unused, as ``load_state_dict`` says it is unexpected."""
    transformers = pytest.importorskip("transformers")
    loc = local(c)
    folder = str(loc.folder)
    config = transformers.AutoConfig.from_pretrained(folder, local_files_only=True)
    torch.manual_seed(1)
    target = transformers.AutoModel.from_config(config).eval()
    assert type(target).__name__ == c.transformers_model
    twin = _model(c, seed=2)
    before = _state(target)
    assert not torch.equal(before["encoder.layer.0.attention.self.query.weight"],
                           _state(twin)["encoder.layer.0.attention.self.query.weight"])

    state = {k: torch.from_numpy(v) for k, v in safetensors_numpy.load_file(loc.prefix).items()}
    said = twin.load_state_dict(state, strict=False)
    assert said.missing_keys == [] and said.unexpected_keys == ["embeddings.position_ids"]

    plan = ckptwidgets.plan_restore(loc.prefix, target)
    assert plan.ok and plan.problems == [] and plan.target == "torch"
    assert plan.unmapped == [] and [e.key for e in plan.unused] == ["embeddings.position_ids"]
    assert plan.mapping == {name: name for name in target.state_dict()}
    report = ckptwidgets.restore(plan)
    assert sorted(name for name, _ in report.restored) == sorted(target.state_dict())
    after = _state(target)
    _assert_same_tensors(after, _state(twin))
    assert not torch.equal(after["pooler.dense.weight"], before["pooler.dense.weight"])
    ours, theirs = _output(target), _output(twin)
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))
    assert ours[0].shape == (2, 7, config.hidden_size)


@pytest.mark.parametrize("c", TRANSFORMERS, ids=_ids(TRANSFORMERS))
def test_restore_under_a_prefix_needs_the_rule(c):
    """``BertForSequenceClassification`` keeps the encoder under ``bert.``: by name nothing
    matches; with ``rules={"/": "bert."}`` the encoder is the file's and only the new
    classifier head is unmapped (left as it was)."""
    loc = local(c)
    target = _model(c, seed=3, cls="BertForSequenceClassification")
    assert ckptwidgets.plan_restore(loc.prefix, target).mapping == {}

    plan = ckptwidgets.plan_restore(loc.prefix, target, rules={"/": "bert."})
    assert plan.problems == [] and plan.target == "torch"
    assert sorted(plan.unmapped) == ["classifier.bias", "classifier.weight"]
    assert [e.key for e in plan.unused] == ["embeddings.position_ids"]
    assert plan.mapping["bert.encoder.layer.3.output.dense.weight"] == "encoder.layer.3.output.dense.weight"
    head = _state(target.classifier)
    ckptwidgets.restore(plan)
    _assert_same_tensors(_state(target.classifier), head)

    twin = _model(c, seed=4)
    state = {k: torch.from_numpy(v) for k, v in safetensors_numpy.load_file(loc.prefix).items()}
    twin.load_state_dict(state, strict=False)
    _assert_same_tensors(_state(target.bert), _state(twin))
    assert all(torch.equal(a, b) for a, b in zip(_output(target, target.bert), _output(twin)))


# --- into Keras --------------------------------------------------------------------------------


@pytest.mark.parametrize("c", TRANSFORMERS, ids=_ids(TRANSFORMERS))
def test_the_embedding_block_into_keras(c):
    """Keras ``Embedding -> LayerNormalization -> Dense`` built to match the MiniLM's word
    embedding, embedding LayerNorm and first attention query: assigned by hand, the kernel
    through ``transpose()``. The weights are the file's bit for bit (the kernel transposed)
    and the output is torch's ``embedding -> layer_norm -> linear`` of the same tensors."""
    keras = pytest.importorskip("keras")
    from ckptwidgets.layouts import transpose

    path = local(c).prefix
    ids = np.array([[101, 7592, 2088, 2003, 102]], dtype="int32")
    model = keras.Sequential([keras.Input((5,), dtype="int32"), keras.layers.Embedding(30522, 384, name="word"),
                              keras.layers.LayerNormalization(epsilon=1e-12, name="ln"),
                              keras.layers.Dense(384, name="query")], name="block")
    pairs = {"word/embeddings": "embeddings.word_embeddings.weight", "ln/gamma": "embeddings.LayerNorm.weight",
             "ln/beta": "embeddings.LayerNorm.bias", "query/kernel": "encoder.layer.0.attention.self.query.weight",
             "query/bias": "encoder.layer.0.attention.self.query.bias"}
    pairs = {"block/" + name: key for name, key in pairs.items()}  # Keras 3 paths start at the model
    plan = ckptwidgets.plan_restore(path, model)
    assert sorted(plan.infos) == sorted(pairs)
    for name, key in pairs.items():
        plan.assign(name, key, transform=transpose() if name == "block/query/kernel" else None)
    assert plan.ok and plan.problems == [] and list(plan.transforms) == ["block/query/kernel"]
    ckptwidgets.restore(plan)

    file = safetensors_numpy.load_file(path)
    weights = {w.path: np.asarray(w.numpy()) for w in model.weights}
    for name, key in pairs.items():
        assert_same(weights[name], file[key].T if name == "block/query/kernel" else file[key], name)
    t = {k.split("/", 1)[1]: torch.from_numpy(file[v]) for k, v in pairs.items()}
    with torch.no_grad():
        hidden = torch.nn.functional.layer_norm(torch.nn.functional.embedding(torch.from_numpy(ids).long(),
                                                                              t["word/embeddings"]),
                                                (384,), t["ln/gamma"], t["ln/beta"], eps=1e-12)
        expected = torch.nn.functional.linear(hidden, t["query/kernel"], t["query/bias"]).numpy()
    np.testing.assert_allclose(np.asarray(model(ids)), expected, rtol=1e-4, atol=1e-5)
