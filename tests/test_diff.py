"""diff_checkpoints, with TensorFlow as the oracle: steps of a real training run, a renamed
scope, shape and dtype changes, keys on one side, strings; the sort order, the text, the
rename search's limits, and 10,000 entries."""
from __future__ import annotations

import math
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import ckptwidgets
from ckptwidgets import diff as diffmod
from ckptwidgets.diff import RENAME_LIMIT, SORTS, STATUSES, CheckpointDiff, DiffRow, diff_checkpoints, show_key
from ckptwidgets.errors import CheckpointNotFoundError, CorruptCheckpointError, PlanError
from ckptwidgets.sources.arrays import ArraySource

from _synthetic import HOSTILE_KEY, save_many
from conftest import save_graph_checkpoint, tf, v1_


def arrays(tensors, location="<arrays>"):
    return ckptwidgets.open_checkpoint(ArraySource(tensors, location=location))


def statuses(d):
    return {row.key: row.status for row in d.rows}


def oracle(prefix_a, key_a, prefix_b, key_b):
    """``(max |a - b|, ||a - b|| / ||a||, same bytes)`` from TensorFlow's own reader, in numpy."""
    x = tf.train.load_checkpoint(prefix_a).get_tensor(key_a)
    y = tf.train.load_checkpoint(prefix_b).get_tensor(key_b)
    same = x.tobytes() == y.tobytes()
    x, y = np.asarray(x, np.float64).ravel(), np.asarray(y, np.float64).ravel()
    diff = np.abs(x - y)
    norm = np.linalg.norm(x)
    rel = np.linalg.norm(diff) / norm if norm else (0.0 if not diff.any() else math.inf)
    return float(diff.max()), float(rel), same


# --- a real training run --------------------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Adam on a dense layer, saved by a Saver at steps 1 and 5 (``model.ckpt-1``, ``-5``)."""
    prefix = str(tmp_path_factory.mktemp("run") / "model.ckpt")
    rng = np.random.default_rng(0)
    graph = tf.Graph()
    with graph.as_default():
        step = v1_.train.get_or_create_global_step()
        x = tf.constant(rng.standard_normal((16, 4)).astype(np.float32))
        y = tf.constant(rng.standard_normal((16, 3)).astype(np.float32))
        with v1_.variable_scope("dense"):
            kernel = v1_.get_variable("kernel", (4, 3), initializer=v1_.glorot_uniform_initializer(seed=1))
            bias = v1_.get_variable("bias", (3,), initializer=v1_.zeros_initializer())
        loss = tf.reduce_mean(tf.square(tf.matmul(x, kernel) + bias - y))
        train = v1_.train.AdamOptimizer(0.05).minimize(loss, global_step=step)
        saver = v1_.train.Saver(max_to_keep=None)
        with v1_.Session(graph=graph) as sess:
            sess.run(v1_.global_variables_initializer())
            for i in range(1, 6):
                sess.run(train)
                if i in (1, 5):
                    saver.save(sess, prefix, global_step=step)
    return prefix + "-1", prefix + "-5"


def test_two_steps_of_a_training_run_match_numpy_on_get_tensor(run):
    a, b = run
    d = diff_checkpoints(a, b)
    keys = set(tf.train.load_checkpoint(a).get_variable_to_shape_map())
    assert {row.key for row in d.rows} == keys and len(d) == len(keys)
    assert {row.status for row in d.rows} == {"changed"}
    assert d.counts == {**dict.fromkeys(STATUSES, 0), "changed": len(keys)}
    for row in d.rows:
        largest, rel, same = oracle(a, row.key_a, b, row.key_b)
        assert row.key_a == row.key_b
        assert row.max_abs == largest, row.key  # float64 both: the same number
        assert row.rel_change == pytest.approx(rel, rel=1e-12), row.key
        assert row.identical is same is False
    step = d.find("global_step")
    assert (step.dtype_a, step.max_abs, step.rel_change, step.kind) == ("int64", 4.0, 4.0, "meta")
    assert d.find("dense/kernel/Adam").kind == "slot"
    # Most changed first.
    rels = [row.rel_change for row in d.rows]
    assert rels == sorted(rels, reverse=True)


def test_a_checkpoint_against_itself_is_identical(run):
    ckpt = ckptwidgets.open_checkpoint(run[1])
    d = diff_checkpoints(ckpt, run[1])
    assert d.a is ckpt
    assert {row.status for row in d.rows} == {"identical"}
    assert all(row.identical and row.max_abs == 0.0 and row.rel_change == 0.0 for row in d.rows)
    assert [row.key for row in d.rows] == sorted(row.key for row in d.rows)


def save_values(prefix, values: dict) -> str:
    """``{key: numpy value}`` written by TensorFlow's SaveV2 (any dtype, strings included)."""
    keys = sorted(values)
    tf.raw_ops.SaveV2(prefix=str(prefix), tensor_names=keys, shape_and_slices=[""] * len(keys),
                      tensors=[tf.constant(values[k]) for k in keys])
    return str(prefix)


def test_a_renamed_scope_is_reported_as_renames(run, tmp_path):
    a = run[1]
    reader = tf.train.load_checkpoint(a)
    values = {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()}
    renamed = {("model/" + k if k.startswith("dense/") else k): v for k, v in values.items()}
    # The scope is renamed in a graph, as a user would: variables under "model/dense".
    graph = tf.Graph()
    with graph.as_default():
        variables = [v1_.Variable(v, name=k) for k, v in renamed.items()]
        saver = v1_.train.Saver(variables)
        with v1_.Session(graph=graph) as sess:
            sess.run(v1_.global_variables_initializer())
            b = saver.save(sess, str(tmp_path / "renamed.ckpt"))
    d = diff_checkpoints(a, b)
    moved = sorted(k for k in values if k.startswith("dense/"))
    assert len(moved) == 6  # kernel, bias and their two Adam slots each
    assert d.counts["renamed"] == len(moved) and d.counts["only_a"] == d.counts["only_b"] == 0
    assert sorted((r.key_a, r.key_b) for r in d.rows if r.status == "renamed") == [(k, "model/" + k) for k in moved]
    assert {r.key for r in d.rows if r.status == "identical"} == {k for k in values if not k.startswith("dense/")}
    for row in d.rows:
        assert (row.max_abs, row.identical) == oracle(a, row.key_a, b, row.key_b)[::2]
    assert "dense/kernel -> model/dense/kernel" in d.text()


def test_renamed_and_changed_a_little_is_close_with_rtol(tmp_path):
    rng = np.random.default_rng(1)
    kernel = rng.standard_normal((4, 3)).astype(np.float32)
    a = save_values(tmp_path / "a.ckpt", {"old/kernel": kernel, "old/bias": np.ones(3, np.float32)})
    nudged = kernel * np.float32(1 + 2 ** -22)  # a few float32 ulps
    assert not np.array_equal(nudged, kernel)
    b = save_values(tmp_path / "b.ckpt", {"new/kernel": nudged, "new/bias": np.full(3, 2.0, np.float32)})
    d = diff_checkpoints(a, b)
    row = d.find("old/kernel")
    assert (row.status, row.key_b, row.identical) == ("renamed", "new/kernel", False)
    assert row.max_abs == oracle(a, "old/kernel", b, "new/kernel")[0] > 0
    assert statuses(d) == {"old/kernel": "renamed", "old/bias": "only_a", "new/bias": "only_b"}
    exact = diff_checkpoints(a, b, rtol=0.0)
    assert statuses(exact) == {"old/kernel": "only_a", "old/bias": "only_a", "new/kernel": "only_b", "new/bias": "only_b"}
    loose = diff_checkpoints(a, b, atol=1.0)  # |2 - 1| <= 1: the biases too
    assert statuses(loose)["old/bias"] == "renamed" and loose.find("new/bias") is loose.find("old/bias")


def test_shape_and_dtype_changes_and_keys_on_one_side(tmp_path):
    a = save_graph_checkpoint(tmp_path / "a.ckpt", {"w": np.zeros((2, 3), np.float32),
                                                    "c": np.array([1.0, 2.0], np.float32), "gone": 1.0})
    b = save_graph_checkpoint(tmp_path / "b.ckpt", {"w": np.zeros((3, 2), np.float32),
                                                    "c": np.array([1.0, 2.0], np.float64), "new": 2.0})
    d = diff_checkpoints(a, b)
    assert [(r.status, r.key_a, r.key_b) for r in d.rows] == [
        ("only_a", "gone", None), ("only_b", None, "new"), ("shape_changed", "w", "w"), ("dtype_changed", "c", "c")]
    w, c = d.find("w"), d.find("c")
    assert (w.shape_a, w.shape_b, w.max_abs, w.rel_change, w.identical) == ((2, 3), (3, 2), None, None, False)
    assert (c.dtype_a, c.dtype_b, c.max_abs) == ("float32", "float64", None)
    gone = d.find("gone")
    assert (gone.shape_a, gone.dtype_a, gone.shape_b, gone.dtype_b, gone.identical) == ((), "float32", None, None, None)
    assert d.find("new").key_a is None and d.find("nothing") is None
    text = d.text()
    assert "shape_changed  w     [2, 3] -> [3, 2]" in text and "float32 -> float64" in text


def test_strings_are_identical_or_changed_without_numbers(tmp_path):
    names = np.array([b"alpha", b"beta"], dtype=object)
    a = save_values(tmp_path / "a.ckpt", {"same": names, "other": names, "old/vocab": np.array([b"x", b"\x00y"])})
    b = save_values(tmp_path / "b.ckpt", {"same": names, "other": np.array([b"alpha", b"gamma"]),
                                          "new/vocab": np.array([b"x", b"\x00y"])})
    d = diff_checkpoints(a, b)
    same, other, vocab = d.find("same"), d.find("other"), d.find("old/vocab")
    assert (same.status, same.identical, same.max_abs, same.rel_change) == ("identical", True, None, None)
    assert (other.status, other.identical, other.max_abs, other.rel_change) == ("changed", False, None, None)
    assert (vocab.status, vocab.key_b, vocab.dtype_a, vocab.identical) == ("renamed", "new/vocab", "string", True)
    # A string change has no size: it sorts first among the changed rows.
    mixed = diff_checkpoints(ArraySource({"s": np.array([b"a"]), "w": np.zeros(2)}),
                             ArraySource({"s": np.array([b"b"]), "w": np.ones(2)}))
    assert [r.key for r in mixed.rows] == ["s", "w"]


# --- numbers -------------------------------------------------------------------------------


def test_numbers_zero_nan_inf_empty_and_other_dtypes():
    import ml_dtypes

    a = arrays({
        "zeros": np.zeros(3), "from_zero": np.zeros(3), "nan_same": np.array([np.nan, np.inf, 1.0]),
        "nan_new": np.array([1.0, 2.0]), "empty": np.zeros((0, 4), np.float32),
        "u8": np.array([0, 255], np.uint8), "flag": np.array([True, False]),
        "c": np.array([1 + 1j, 2], np.complex64), "bf": np.array([1, 2], ml_dtypes.bfloat16),
        "neg0": np.array([0.0]),
    })
    b = arrays({
        "zeros": np.zeros(3), "from_zero": np.array([0.0, 3.0, 4.0]), "nan_same": np.array([np.nan, np.inf, 1.0]),
        "nan_new": np.array([1.0, np.nan]), "empty": np.zeros((0, 4), np.float32),
        "u8": np.array([255, 0], np.uint8), "flag": np.array([True, True]),
        "c": np.array([1 - 1j, 2], np.complex64), "bf": np.array([1, 3], ml_dtypes.bfloat16),
        "neg0": np.array([-0.0]),
    })
    d = diff_checkpoints(a, b)
    get = {row.key: (row.status, row.max_abs, row.rel_change) for row in d.rows}
    assert get["zeros"] == ("identical", 0.0, 0.0)
    assert get["from_zero"] == ("changed", 4.0, math.inf)
    assert get["nan_same"] == ("identical", 0.0, 0.0)  # same bytes
    status, largest, rel = get["nan_new"]
    assert status == "changed" and math.isnan(largest) and math.isnan(rel)
    assert get["empty"] == ("identical", 0.0, 0.0)
    assert get["u8"] == ("changed", 255.0, pytest.approx(math.sqrt(2)))  # no unsigned wrap-around
    assert get["flag"] == ("changed", 1.0, 1.0)
    assert get["c"][:2] == ("changed", 2.0) and get["c"][2] == pytest.approx(2 / math.sqrt(6))
    assert get["bf"][:2] == ("changed", 1.0)
    assert get["neg0"] == ("changed", 0.0, 0.0)  # other bytes, the same number
    # NaN (no size) sorts first among the changed; inf next.
    changed = [r.key for r in d.rows if r.status == "changed"]
    assert changed[:2] == ["nan_new", "from_zero"]


def test_big_tensors_are_compared_in_chunks(monkeypatch):
    monkeypatch.setattr(diffmod, "_CHUNK", 1000)
    rng = np.random.default_rng(2)
    x = rng.standard_normal(10_500).astype(np.float32)
    y = x.copy()
    y[[3, 7777, 10_499]] += np.float32(0.5)
    y[5000] = np.nan
    d = diff_checkpoints(ArraySource({"w": x, "v": x}), ArraySource({"w": y, "v": x + 1}))
    assert math.isnan(d.find("w").max_abs)
    v = d.find("v")
    exact = np.abs(x.astype(np.float64) - (x + 1).astype(np.float64))
    assert v.max_abs == exact.max()
    assert v.rel_change == pytest.approx(np.linalg.norm(exact) / np.linalg.norm(x.astype(np.float64)), rel=1e-12)


# --- order and text ------------------------------------------------------------------------


@pytest.fixture
def every_status():
    a = {"only_in_a": np.zeros(5), "shape": np.zeros(2), "dtype": np.zeros(2, np.float32),
         "small": np.array([1.0, 1.0]), "big": np.array([1.0, 1.0]), "same": np.ones(2), "x/old": np.arange(3.0)}
    b = {"only_in_b": np.ones(7), "shape": np.zeros(3), "dtype": np.zeros(2, np.float64),
         "small": np.array([1.0, 1.1]), "big": np.array([1.0, 5.0]), "same": np.ones(2), "x/new": np.arange(3.0)}
    return diff_checkpoints(ArraySource(a, "A"), ArraySource(b, "B"))


def test_sort_orders(every_status):
    d = every_status
    assert list(dict.fromkeys(r.status for r in d.rows)) == list(STATUSES)
    assert [r.key for r in d.rows] == ["only_in_a", "only_in_b", "shape", "dtype", "big", "small", "x/old", "same"]
    assert d.to_rows("change") is d.rows
    assert [r.key for r in d.to_rows("key")] == sorted(r.key for r in d.rows)
    assert list(dict.fromkeys(r.status for r in d.to_rows("status"))) == list(STATUSES)
    assert [r.key for r in d.to_rows("change", ["changed", "identical"])] == ["big", "small", "same"]
    assert d.to_rows(statuses="renamed")[0].key_b == "x/new"
    with pytest.raises(PlanError, match="Unknown sort 'size'; sorts are change, key, status"):
        d.to_rows("size")
    with pytest.raises(PlanError, match="'moved'"):
        d.to_rows(statuses=["moved"])
    assert SORTS == ("change", "key", "status")


def test_text_and_repr(every_status):
    d = every_status
    text = d.text()
    lines = text.splitlines()
    assert lines[:3] == ["a: A (7 entries)", "b: B (7 entries)",
                         "2 changed · 1 shape changed · 1 dtype changed · 1 renamed · 1 only in a · 1 only in b · 1 identical"]
    assert lines[3].split() == ["status", "key", "shape", "dtype", "max", "|a-b|", "rel.", "change"]
    assert lines[8].split() == ["changed", "big", "[2]", "float64", "4", "2.83"]
    assert "renamed        x/old -> x/new  [3]" in text
    assert d.text(limit=2).splitlines()[-1] == "... 6 more"
    assert len(d.text(limit=2, statuses=["identical"]).splitlines()) == 5
    assert repr(d) == f"<CheckpointDiff 'A' vs 'B': {d.counts_text()}>"
    empty = diff_checkpoints(ArraySource({}), ArraySource({}))
    assert empty.rows == () and empty.counts_text() == "both checkpoints are empty"


def test_keys_are_shown_as_text_or_repr():
    keys = [HOSTILE_KEY, "tab\there", "new\nline", "变量/权重"]
    d = diff_checkpoints(ArraySource({k: np.zeros(1) for k in keys}), ArraySource({k: np.ones(1) for k in keys}))
    text = d.text()
    assert HOSTILE_KEY in text and "变量/权重" in text
    assert repr("tab\there") in text and repr("new\nline") in text and "new\nline" not in text
    assert show_key(HOSTILE_KEY) == HOSTILE_KEY


def test_rows_are_named_tuples(every_status):
    row = every_status.find("small")
    assert isinstance(row, DiffRow) and isinstance(row, tuple)
    assert row._fields == ("key_a", "key_b", "status", "kind", "shape_a", "shape_b", "dtype_a", "dtype_b",
                           "max_abs", "rel_change", "identical")
    assert every_status.find("x/new").key == "x/old"
    assert isinstance(every_status, CheckpointDiff) and len(every_status) == 8


# --- renames: pairing and limits ------------------------------------------------------------


def test_equal_values_of_several_keys_pair_by_name():
    zeros = np.zeros(3, np.float32)
    a = {"old/l1/bias": zeros, "old/l2/bias": zeros, "old/l3/bias": zeros}
    b = {"new/l3/bias": zeros, "new/l1/bias": zeros, "misc": zeros}
    d = diff_checkpoints(ArraySource(a), ArraySource(b))
    renames = {r.key_a: r.key_b for r in d.rows if r.status == "renamed"}
    # Names first; the leftovers of equal value pair too (a guess, which "renamed" says).
    assert renames == {"old/l1/bias": "new/l1/bias", "old/l3/bias": "new/l3/bias", "old/l2/bias": "misc"}
    b["misc"] = np.ones(3, np.float32)
    d = diff_checkpoints(ArraySource(a), ArraySource(b))
    assert {r.key for r in d.rows if r.status.startswith("only")} == {"old/l2/bias", "misc"}


def test_big_groups_of_equal_values_pair_by_last_segment_then_order():
    zeros = np.zeros(2)
    a = {f"old/{i:03d}/{name}": zeros for i in range(50) for name in ("kernel", "bias")}
    b = {f"new/{i:03d}/{name}": zeros for i in range(50) for name in ("kernel", "bias")}
    d = diff_checkpoints(ArraySource(a), ArraySource(b))  # 100 x 100 pairs: too many to score
    assert d.counts["renamed"] == 100
    assert all(r.key_b == r.key_a.replace("old/", "new/") for r in d.rows)


def test_close_values_are_searched_only_in_small_buckets():
    rng = np.random.default_rng(3)
    n = RENAME_LIMIT + 1
    a = {f"old/{i}": rng.standard_normal(4) for i in range(n)}
    b = {f"new/{i}": v * (1 + 1e-9) for i, v in enumerate(a.values())}
    big = diff_checkpoints(ArraySource(a), ArraySource(b))  # over the limit: hashes only
    assert big.counts["renamed"] == 0 and big.counts["only_a"] == n
    small = diff_checkpoints(ArraySource(a), ArraySource(b), rename_limit=n)
    assert small.counts["renamed"] == n
    assert all(r.key_b == r.key_a.replace("old/", "new/") and r.identical is False for r in small.rows)
    b[f"new/{n - 1}"] = a[f"old/{n - 1}"].copy()  # an exact copy is found whatever the bucket size
    one = diff_checkpoints(ArraySource(a), ArraySource(b))
    assert [(r.key_a, r.key_b) for r in one.rows if r.status == "renamed"] == [(f"old/{n - 1}", f"new/{n - 1}")]
    none = diff_checkpoints(ArraySource(a), ArraySource(b), rename_limit=0)
    assert none.counts["renamed"] == 1


def test_close_comparisons_have_a_budget(monkeypatch):
    monkeypatch.setattr(diffmod, "CLOSE_BUDGET", 3)
    a = {f"old/{i}": np.full(2, i + 1.0) for i in range(6)}
    b = {f"new/{i}": np.full(2, (i + 1.0) * (1 + 1e-9)) for i in range(6)}
    d = diff_checkpoints(ArraySource(a), ArraySource(b))
    assert d.counts["renamed"] == 3  # one comparison each (the same name is tried first), then none


def test_only_one_bucket_is_compared():
    # Same values, other shape or dtype: not a rename.
    a = {"old": np.zeros(4, np.float32)}
    d = diff_checkpoints(ArraySource(a), ArraySource({"new": np.zeros((2, 2), np.float32), "new64": np.zeros(4)}))
    assert d.counts["renamed"] == 0 and d.counts["only_b"] == 2


# --- boundaries ----------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [-1e-6, math.nan, math.inf, "0.1", True, None])
def test_bad_tolerances_are_refused(bad):
    with pytest.raises(PlanError, match="rtol must be"):
        diff_checkpoints(ArraySource({}), ArraySource({}), rtol=bad)
    with pytest.raises(PlanError, match="atol must be"):
        diff_checkpoints(ArraySource({}), ArraySource({}), atol=bad)


def test_bad_rename_limit_and_paths(tmp_path):
    with pytest.raises(PlanError, match="rename_limit must be an int >= 0, got -1"):
        diff_checkpoints(ArraySource({}), ArraySource({}), rename_limit=-1)
    missing = str(tmp_path / "nope.ckpt")
    with pytest.raises(CheckpointNotFoundError, match="nope.ckpt"):
        diff_checkpoints(ArraySource({}), missing)


def test_damaged_data_is_an_error_naming_the_key(tmp_path):
    a = save_graph_checkpoint(tmp_path / "a.ckpt", {"w": np.arange(1000, dtype=np.float32)})
    b = save_graph_checkpoint(tmp_path / "b.ckpt", {"w": np.arange(1000, dtype=np.float32)})
    with open(b + ".data-00000-of-00001", "r+b") as handle:
        handle.truncate(100)
    with pytest.raises(CorruptCheckpointError, match="'w'"):
        diff_checkpoints(a, b)


def test_diffing_needs_no_tensorflow(run):
    code = (
        "import sys; from ckptwidgets.diff import diff_checkpoints; "
        f"d = diff_checkpoints({run[0]!r}, {run[1]!r}); d.text(); "
        "assert d.counts['changed'] > 0; assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": os.getcwd()})


# --- 10,000 entries ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_big(tmp_path_factory):
    root = tmp_path_factory.mktemp("big")
    return save_many(root / "a" / "m.ckpt", 10_000, seed=0), save_many(root / "b" / "m.ckpt", 10_000, seed=1)


def test_ten_thousand_entries(two_big):
    a, b = two_big
    start = time.perf_counter()
    d = diff_checkpoints(a, b)
    seconds = time.perf_counter() - start
    print(f"\ndiff_checkpoints of two 10,000-entry checkpoints: {seconds:.2f} s")
    assert d.counts["changed"] == 10_000 and seconds < 10
    ca, cb = d.a, d.b
    for row in d.rows[::997]:
        x, y = ca.read(row.key).astype(np.float64), cb.read(row.key).astype(np.float64)
        assert row.max_abs == np.abs(x - y).max()
    # A renamed scope over all 10,000 (two buckets of ~5,000 same-shaped tensors): hashes only.
    renamed = ArraySource({"new/" + e.key: ca.read(e.key) for e in ca.entries})
    start = time.perf_counter()
    moved = diff_checkpoints(a, renamed)
    seconds = time.perf_counter() - start
    print(f"... and against the same values under a renamed scope: {seconds:.2f} s")
    assert moved.counts["renamed"] == 10_000 and seconds < 10
    assert all(r.key_b == "new/" + r.key_a for r in moved.rows)
    assert moved.find(HOSTILE_KEY).key_b == "new/" + HOSTILE_KEY
