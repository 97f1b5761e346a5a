"""Real checkpoints this project did not write (tests/corpus.py), with TensorFlow as the oracle.

For each checkpoint of the catalogue:

- entries: ``open_checkpoint``'s keys, shapes and dtypes are TensorFlow's reader's maps;
- values: every ``ckpt.read(key)`` (and ``read_many``) is ``get_tensor(key)`` bit for bit;
- kinds: every entry's kind and base follow the rule below, and ``totals()`` agrees;
- folders: a SavedModel folder, or a TF1 folder with its ``checkpoint`` state file, opens as
  its prefix does;
- restoring: TF1 graphs rebuilt from their ``.meta`` (or an Estimator SavedModel's graph)
  are planned by name and restored, and a renamed copy of every variable is restored with
  ``rules={"/": "copy/"}``; the values are then ``get_tensor``'s.

The rule for kinds (``rule_kinds``; each catalogue entry also spells out the expected count
of each kind and the exact kind of the entries that matter, ``Corpus.spot``):

- ``slot``: optimizer state. A key that extends a variable's key with one segment of the
  optimizer's own, possibly under an extra name scope (``<scope>/<var>/<segment>``), with the
  variable's shape: TF1 slots for any optimizer name (``<var>/dqn_adam``, ``<var>/Adam_1``);
  Keras 2 optimizers under ``training/<Optimizer>/<var>/<slot>``; TF2 keys holding
  ``/.OPTIMIZER_SLOT/``. Its base is the variable's key.
- ``meta``: optimizer hyperparameters and counters (``beta1_power``, ``beta1_power_1``,
  everything else under an optimizer's scope, ``global_step``, ``save_counter``...) and TF2's
  object graph ``_CHECKPOINTABLE_OBJECT_GRAPH``.
- ``ema``: ``<var>/ExponentialMovingAverage``.
- ``variable``: everything else (model weights, batch-norm moving statistics, Keras metric
  accumulators).
"""
from __future__ import annotations

import math
import re
import warnings
from collections import Counter

import numpy as np
import pytest

import ckptwidgets
from ckptwidgets.errors import CheckpointWarning
from corpus import ARCHIVES, BY_NAME, CATALOGUE, fetch

tf = ckptwidgets.import_tensorflow()
v1_ = tf.compat.v1

pytestmark = pytest.mark.corpus

SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
SLOT_MARK = "/.OPTIMIZER_SLOT/"
OBJECT_GRAPH = "_CHECKPOINTABLE_OBJECT_GRAPH"
_COUNTERS = re.compile(r"global_step|save_counter|beta[12]_power(_\d+)?")


def _ids(items):
    return [c.name for c in items]


WITH_GRAPH = [c for c in CATALOGUE if c.meta_graph]
WITH_VARIABLES = [c for c in CATALOGUE if c.counts.get("variable", 0) + c.counts.get("ema", 0)]
FOLDERS = [c for c in CATALOGUE if c.savedmodel or "checkpoint" in c.files]

_LOCAL = {}


def local(c):
    """The corpus checkpoint on this machine (downloaded and extracted once per cache)."""
    if c.name not in _LOCAL:
        _LOCAL[c.name] = fetch(c)
    return _LOCAL[c.name]


def tf_reader(loc):
    """TensorFlow's reader: ``tf.train.load_checkpoint(prefix)``.

    A prefix naming a folder (musicnn's ``MTT_vgg/``) makes ``load_checkpoint`` read that
    folder's state file instead, which points to another machine; the reader it would
    return is ``NewCheckpointReader(prefix)``, asked here directly.
    """
    if loc.corpus.prefix:
        return tf.train.load_checkpoint(loc.prefix)
    return v1_.train.NewCheckpointReader(loc.prefix)


def opened(path, warns=None):
    """``open_checkpoint(path)``; ``warns``: True a CheckpointWarning is expected, False none is
    allowed, None either (musicnn's prefix ``<folder>/`` is also its folder)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CheckpointWarning)
        ckpt = ckptwidgets.open_checkpoint(path)
    said = [str(w.message) for w in caught if issubclass(w.category, CheckpointWarning)]
    if warns is True:
        assert said, f"opening {path} with a stale state file gave no CheckpointWarning"
    elif warns is False:
        assert not said, said
    return ckpt


def open_prefix(loc):
    return opened(loc.prefix, warns=None if loc.corpus.stale_state_file else False)


def name_of(key):
    return key[: -len(SUFFIX)] if key.endswith(SUFFIX) else key


def rule_kinds(shapes, c):
    """``{key: (kind, base key)}`` as the rule says, given TensorFlow's ``{key: shape}``."""
    key_of_name = {name_of(k): k for k in shapes}

    def base(name, like):  # the variable's key when the checkpoint has it, with the same shape
        k = key_of_name.get(name)
        return k if k is not None and k != like and list(shapes[k]) == list(shapes[like]) else None

    def own_segment(segment):
        return bool(c.slot_segment) and re.fullmatch(c.slot_segment, segment) is not None

    out = {}
    for key in shapes:
        name = name_of(key)
        head, _, last = name.rpartition("/")
        scope = next((s for s in c.optimizer_scopes if name.startswith(s)), None)
        if key == OBJECT_GRAPH:
            out[key] = ("meta", None)
        elif SLOT_MARK in name:
            out[key] = ("slot", base(name.split(SLOT_MARK, 1)[0], key))
        elif last == "ExponentialMovingAverage" and head:
            out[key] = ("ema", base(head, key))
        elif scope is not None:  # Keras 2: training/<Optimizer>/<var>/<slot>, else its scalars
            var, _, segment = name[len(scope):].rpartition("/")
            owner = base(var, key) if var and own_segment(segment) else None
            out[key] = ("slot", owner) if owner else ("meta", None)
        elif _COUNTERS.fullmatch(last):
            out[key] = ("meta", None)
        elif head and own_segment(last):  # TF1: [<scope>/]<var>/<segment>
            parts = head.split("/")
            owner = next((k for i in range(len(parts)) if (k := base("/".join(parts[i:]), key))), None)
            out[key] = ("slot", owner) if owner else ("variable", None)
        else:
            out[key] = ("variable", None)
    return out


def assert_same(ours, theirs, key=""):
    """Bit for bit: the same type, dtype, shape and bytes (strings: the same bytes objects)."""
    if isinstance(theirs, bytes):
        assert type(ours) is bytes and ours == theirs, key
        return
    theirs = np.asarray(theirs)  # a session gives numpy scalars for scalar variables
    ours = np.asarray(ours)
    assert (ours.dtype, ours.shape) == (theirs.dtype, theirs.shape), (key, ours.dtype, theirs.dtype, ours.shape)
    if theirs.dtype == object:
        assert [type(x) for x in ours.flat] == [type(x) for x in theirs.flat], key
        assert list(ours.flat) == list(theirs.flat), key
    else:
        assert ours.tobytes() == theirs.tobytes(), key


def _mismatches(got, want, limit=25):
    bad = [f"{k}: {got.get(k)} (rule: {want.get(k)})" for k in sorted(set(got) | set(want)) if got.get(k) != want.get(k)]
    return f"{len(bad)} entries differ:\n  " + "\n  ".join(bad[:limit]) + ("\n  ..." if len(bad) > limit else "")


# --- the catalogue itself (no download) -----------------------------------------------------


def test_catalogue_is_consistent():
    assert len(CATALOGUE) >= 5 and len(BY_NAME) == len(CATALOGUE)
    assert {c.archive for c in CATALOGUE} == set(ARCHIVES)
    for c in CATALOGUE:
        assert sum(c.counts.values()) == c.entries, c.name
        assert set(c.counts) <= set(ckptwidgets.reader.KINDS), c.name
        assert all(kind in ckptwidgets.reader.KINDS for kind, _ in c.spot.values()), c.name
        assert c.archive.kind in ("wheel", "sdist") and len(c.archive.sha256) == 64
        assert c.archive.filename.endswith(".whl" if c.archive.kind == "wheel" else ".tar.gz")
        assert c.root.endswith("/") and c.files and not any(f.startswith("/") or ".." in f for f in c.files)
        assert not c.meta_graph or c.meta_graph in c.files


# --- entries and values --------------------------------------------------------------------


@pytest.mark.parametrize("c", CATALOGUE, ids=_ids(CATALOGUE))
def test_entries_match_tensorflow(c):
    loc = local(c)
    ckpt = open_prefix(loc)
    reader = tf_reader(loc)
    shapes, dtypes = reader.get_variable_to_shape_map(), reader.get_variable_to_dtype_map()
    assert len(shapes) == c.entries
    assert [e.key for e in ckpt.entries] == sorted(shapes)
    assert len(ckpt) == c.entries
    for e in ckpt.entries:
        assert list(e.shape) == list(shapes[e.key]), e.key
        assert e.dtype == dtypes[e.key].name, e.key
        assert e.name == name_of(e.key), e.key
        if dtypes[e.key] != tf.string:
            assert e.nbytes == math.prod(shapes[e.key]) * dtypes[e.key].size, e.key
    assert ckpt.object_based is c.object_based


@pytest.mark.parametrize("c", CATALOGUE, ids=_ids(CATALOGUE))
def test_every_value_is_tensorflows_bit_for_bit(c):
    loc = local(c)
    ckpt = open_prefix(loc)
    reader = tf_reader(loc)
    keys = sorted(reader.get_variable_to_shape_map())
    for key in keys:
        assert_same(ckpt.read(key), reader.get_tensor(key), key)
    streamed = dict(ckpt.read_many(keys))
    assert sorted(streamed) == keys
    for key in keys:
        assert_same(streamed[key], reader.get_tensor(key), key)


# --- kinds ---------------------------------------------------------------------------------


@pytest.mark.parametrize("c", CATALOGUE, ids=_ids(CATALOGUE))
def test_the_rule_as_written_here(c):
    """The test's own reading of the rule gives the hand-written expectations (no ckptwidgets)."""
    shapes = tf_reader(local(c)).get_variable_to_shape_map()
    want = rule_kinds(shapes, c)
    assert {k: want[k] for k in c.spot} == c.spot
    assert Counter(kind for kind, _ in want.values()) == Counter(c.counts)


@pytest.mark.parametrize("c", CATALOGUE, ids=_ids(CATALOGUE))
def test_kinds_follow_the_rule(c):
    loc = local(c)
    ckpt = open_prefix(loc)
    want = rule_kinds(tf_reader(loc).get_variable_to_shape_map(), c)
    got = {e.key: (e.kind, e.base) for e in ckpt.entries}
    spot = {k: got.get(k) for k in c.spot}
    assert spot == c.spot, _mismatches(spot, c.spot)
    assert got == want, _mismatches(got, want)


@pytest.mark.parametrize("c", CATALOGUE, ids=_ids(CATALOGUE))
def test_totals_agree_with_the_kinds(c):
    loc = local(c)
    ckpt = open_prefix(loc)
    by_key = {e.key: e for e in ckpt.entries}
    want = rule_kinds(tf_reader(loc).get_variable_to_shape_map(), c)
    expected = {}
    for key, (kind, _) in want.items():
        count, nbytes = expected.get(kind, (0, 0))
        expected[kind] = (count + 1, nbytes + by_key[key].nbytes)
    totals = {kind: v for kind, v in ckpt.totals().items() if v[0]}
    assert totals == expected
    assert {kind: count for kind, (count, _) in totals.items()} == c.counts


# --- folders -------------------------------------------------------------------------------


@pytest.mark.parametrize("c", FOLDERS, ids=_ids(FOLDERS))
def test_the_folder_opens_as_its_prefix(c):
    """A SavedModel folder, or a Saver folder through its ``checkpoint`` state file."""
    loc = local(c)
    by_prefix = open_prefix(loc)
    by_folder = opened(str(loc.folder), warns=c.stale_state_file)
    assert by_folder.entries == by_prefix.entries
    assert by_folder.object_based is c.object_based


# --- restoring -----------------------------------------------------------------------------


def _meta_graph_def(path):
    """The MetaGraphDef of a ``.meta`` file or of a SavedModel's (first) graph.

    The ``.meta`` files written by TF 1.x carry ``_output_shapes`` attributes on gradient
    nodes that TF 2's shape inference now computes differently (``FusedBatchNormGrad``:
    [0] against [128]), and importing refuses them; they are only hints, so they are dropped.
    """
    from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

    data = path.read_bytes()
    if path.name == "saved_model.pb":
        saved = saved_model_pb2.SavedModel()
        saved.ParseFromString(data)
        meta = saved.meta_graphs[0]
    else:
        meta = meta_graph_pb2.MetaGraphDef()
        meta.ParseFromString(data)
    for node in meta.graph_def.node:
        if "_output_shapes" in node.attr:
            del node.attr["_output_shapes"]
    return meta


@pytest.mark.parametrize("c", WITH_GRAPH, ids=_ids(WITH_GRAPH))
def test_restore_into_the_graph_of_its_meta(c):
    """Rebuild the graph from its MetaGraphDef; every global variable is planned by name and
    restored (nothing initialised: a variable left out would fail to read)."""
    loc = local(c)
    ckpt = open_prefix(loc)
    reader = tf_reader(loc)
    graph = tf.Graph()
    with graph.as_default():
        v1_.train.import_meta_graph(_meta_graph_def(loc.meta_graph), clear_devices=True)
        variables = v1_.global_variables()
    names = [v.name[: -len(":0")] for v in variables]
    assert sorted(names) == sorted(reader.get_variable_to_shape_map())
    plan = ckptwidgets.plan_restore(ckpt, variables)
    assert plan.ok, plan.problems
    assert plan.unmapped == []
    assert {n: plan.key_of(n) for n in names} == {n: n for n in names}
    with v1_.Session(graph=graph) as sess:
        ckptwidgets.restore(plan, session=sess)
        values = sess.run(variables)
    for name, value in zip(names, values):
        assert_same(value, reader.get_tensor(name), name)


@pytest.mark.parametrize("c", WITH_VARIABLES, ids=_ids(WITH_VARIABLES))
def test_restore_a_renamed_copy(c):
    """``copy/<name>`` for every variable (and EMA shadow) entry, restored with rules {"/": "copy/"}."""
    loc = local(c)
    ckpt = open_prefix(loc)
    reader = tf_reader(loc)
    shapes, dtypes = reader.get_variable_to_shape_map(), reader.get_variable_to_dtype_map()
    keys = sorted(k for k, (kind, _) in rule_kinds(shapes, c).items() if kind in ("variable", "ema"))
    graph = tf.Graph()
    with graph.as_default():
        variables = {
            key: v1_.get_variable("copy/" + name_of(key), shape=shapes[key], dtype=dtypes[key]) for key in keys
        }
    plan = ckptwidgets.plan_restore(ckpt, list(variables.values()), rules={"/": "copy/"})
    assert plan.ok, plan.problems
    assert plan.unmapped == []
    assert {"copy/" + name_of(k): plan.key_of("copy/" + name_of(k)) for k in keys} == {
        "copy/" + name_of(k): k for k in keys
    }
    with v1_.Session(graph=graph) as sess:
        ckptwidgets.restore(plan, session=sess)  # nothing initialised: every copy must be restored
        values = sess.run(variables)
    for key in keys:
        assert_same(values[key], reader.get_tensor(key), key)


def test_fetching_at_once_extracts_once_and_every_fetch_sees_whole_files(tmp_path, monkeypatch):
    """Parallel test processes (pytest-xdist) share the cache: while one extracts, another
    must neither extract again (replacing the folder the first one reads) nor see half of it."""
    import shutil
    import threading

    import corpus

    c = BY_NAME["basic_pitch_nmp"]  # the smallest archive
    archive = fetch(c).folder.parent / "archives" / c.archive.filename  # downloaded once, reused
    cache = tmp_path / "cache"
    (cache / "archives").mkdir(parents=True)
    shutil.copy(archive, cache / "archives" / c.archive.filename)
    monkeypatch.setenv("CKPTWIDGETS_CORPUS_CACHE", str(cache))
    extractions, real_extract = [], corpus._extract

    def slow_extract(*args):
        extractions.append(threading.get_ident())
        real_extract(*args)
        threading.Event().wait(0.2)  # the window in which another fetch looks at the cache

    monkeypatch.setattr(corpus, "_extract", slow_extract)
    start, got, errors = threading.Barrier(4), [], []

    def fetch_one():
        start.wait()
        try:
            local = fetch(c)
            got.append({rel: (local.folder / rel).read_bytes() for rel in c.files})
        except BaseException as error:  # noqa: BLE001 -- reported below
            errors.append(repr(error))

    threads = [threading.Thread(target=fetch_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert len(extractions) == 1, f"extracted {len(extractions)} times"
    assert len(got) == 4 and all(files == got[0] for files in got)
