"""The source seam, the public plan protocol, and reading without TensorFlow (issue #10).

- Every module talks to the others through public names (an AST walk of the package), and
  nothing outside ``ckptwidgets/sources/`` imports a format's private modules
  (``ckptwidgets.sources.<format>._<x>``): what the rest needs is a public name of the format.
- A checkpoint is opened, listed, read, shown by the CLI and browsed in a process where
  TensorFlow is never imported, and the values equal TensorFlow's ``get_tensor``.
- A source without a ``RestoreV2`` path (:class:`ArraySource`, a bundle whose path TF's
  glob look-up cannot match) restores all or nothing through ``read_many``.
"""
from __future__ import annotations

import ast
import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import ckptwidgets
from ckptwidgets import CorruptCheckpointError, open_checkpoint, plan_restore, restore
from ckptwidgets.sources import Record, Source, is_source
from ckptwidgets.sources.arrays import ArraySource

from conftest import save_graph_checkpoint

v1_ = tf.compat.v1
PACKAGE = Path(ckptwidgets.__file__).parent


# --- modules talk through public names -------------------------------------------------


def _our_private_names(trees) -> set[str]:
    """Names starting with one underscore that the package itself defines or assigns."""
    ours = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                ours.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                ours.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                ours.add(node.id)
    # Dunders are Python's; _sunder_ names (_repr_mimebundle_) are Jupyter's protocol.
    return {n for n in ours if n.startswith("_") and not n.startswith("__") and not n.endswith("_")}


def private_accesses(trees) -> list[str]:
    ours = _our_private_names(trees)
    found = []
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ours:
                owner = node.value
                if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                    continue
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_module_reads_another_objects_private_state():
    trees = {path: ast.parse(path.read_text(), str(path)) for path in sorted(PACKAGE.rglob("*.py"))}
    assert len(trees) > 20
    assert private_accesses(trees) == []


def test_the_private_access_check_can_fail(tmp_path):
    tree = ast.parse("class A:\n    def f(self, plan):\n        self._x = 1\n        return plan._x, self._x\n")
    assert private_accesses({PACKAGE / "example.py": tree}) == ["ckptwidgets/example.py:4: plan._x"]


# --- a format's private modules stay inside sources/ ----------------------------------


def _imported_modules(path: Path, tree) -> list[tuple[int, str]]:
    """``(line, dotted name)`` of every module (and ``from`` name) a module of the package imports."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = parts[:-1]  # the package a relative import starts from (for __init__ too)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            found.append((node.lineno, target))
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
    return found


def format_private_imports(trees) -> list[str]:
    """Imports of ``ckptwidgets.sources.<format>._<x>`` by modules outside ``ckptwidgets/sources/``."""
    found = []
    for path, tree in trees.items():
        if (PACKAGE / "sources") in path.parents:
            continue
        for line, name in _imported_modules(path, tree):
            words = name.split(".")
            if words[:2] == ["ckptwidgets", "sources"] and len(words) > 3 and words[3].startswith("_"):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {'.'.join(words[:4])}")
    return sorted(set(found))


def test_no_module_outside_sources_imports_a_formats_private_modules():
    trees = {path: ast.parse(path.read_text(), str(path)) for path in sorted(PACKAGE.rglob("*.py"))}
    assert any("sources" in path.parts and path.name == "_object_graph.py" for path in trees)
    assert format_private_imports(trees) == []


def test_the_format_import_check_can_fail():
    codegen, bundle = PACKAGE / "codegen.py", PACKAGE / "sources" / "bundle" / "__init__.py"
    trees = {
        codegen: ast.parse("from .sources.bundle._slices import format_box\n"
                           "from .sources.bundle import _index, format_box\n"
                           "import ckptwidgets.sources.keras._h5\n"
                           "from .sources import _atomic\n"),  # shared by every writer: not a format's
        PACKAGE / "_planning" / "order.py": ast.parse("from ..sources.keras._h5 import list_attribute\n"),
        bundle: ast.parse("from ._slices import format_box\nfrom ..keras._ema import from_object_graph\n"),
    }
    assert format_private_imports(trees) == [
        "ckptwidgets/_planning/order.py:1: ckptwidgets.sources.keras._h5",
        "ckptwidgets/codegen.py:1: ckptwidgets.sources.bundle._slices",
        "ckptwidgets/codegen.py:2: ckptwidgets.sources.bundle._index",
        "ckptwidgets/codegen.py:3: ckptwidgets.sources.keras._h5",
    ]


# --- reading without TensorFlow --------------------------------------------------------


def _digest(value) -> str:
    """What a value is, bit for bit: dtype, shape and bytes (each element for strings)."""
    value = np.asarray(value)
    h = hashlib.sha256(f"{value.dtype.str}|{value.shape}|".encode())
    if value.dtype == object:
        for item in value.ravel():
            h.update(len(item).to_bytes(8, "little") + item)
    else:
        h.update(np.ascontiguousarray(value).tobytes())
    return h.hexdigest()


@pytest.fixture
def checkpoints(tmp_path):
    """A name-based checkpoint with EMA shadows and an object-based one with strings and ints."""
    named = save_graph_checkpoint(tmp_path / "named" / "model.ckpt", {"dense/w": [[1.0, 2.0]], "b": [3.0]},
                                  ema_decay=0.9, ema_steps=2)
    module = tf.Module()
    module.w = tf.Variable(tf.reshape(tf.range(12, dtype=tf.float64), [3, 4]))
    module.words = tf.Variable([b"checkpoint", "检查点".encode(), b"\x00\xff"])
    module.step = tf.Variable(7, dtype=tf.int64)
    objects = tf.train.Checkpoint(m=module).write(str(tmp_path / "objects" / "ckpt"))
    return [named, objects]


TF_FREE = textwrap.dedent(
    """
    import contextlib, hashlib, io, json, sys
    import numpy as np
    import ckptwidgets
    from ckptwidgets.__main__ import main
    from ckptwidgets.widgets import CheckpointBrowser

    def digest(value):
        value = np.asarray(value)
        h = hashlib.sha256(f"{value.dtype.str}|{value.shape}|".encode())
        if value.dtype == object:
            for item in value.ravel():
                h.update(len(item).to_bytes(8, "little") + item)
        else:
            h.update(np.ascontiguousarray(value).tobytes())
        return h.hexdigest()

    out = {}
    for path in sys.argv[1:]:
        ckpt = ckptwidgets.open_checkpoint(path)
        out[path] = {e.key: [e.kind, digest(ckpt.read(e.key))] for e in ckpt}
        with contextlib.redirect_stdout(io.StringIO()) as listing:
            assert main([path]) == 0
        out[path + " listing"] = listing.getvalue()
        browser = CheckpointBrowser(ckpt)
        browser.model.selected = ckpt.entries[0].key
        out[path + " browser"] = [browser.model.error, len(browser.model.png) > 0]
    out["tensorflow imported"] = sorted(m for m in sys.modules if m == "tensorflow" or m.startswith("tensorflow."))
    print(json.dumps(out))
    """
)


def test_open_list_read_cli_and_browser_never_import_tensorflow(checkpoints):
    run = subprocess.run([sys.executable, "-c", TF_FREE, *checkpoints], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["tensorflow imported"] == []
    for prefix in checkpoints:
        reader = tf.train.load_checkpoint(prefix)
        expected = {key: _digest(reader.get_tensor(key)) for key in reader.get_variable_to_shape_map()}
        assert {key: d for key, (_kind, d) in out[prefix].items()} == expected
        assert out[prefix + " browser"] == ["", True]
        assert "total" in out[prefix + " listing"]
    assert out[checkpoints[0]]["dense/w/ExponentialMovingAverage"][0] == "ema"
    assert out[checkpoints[1]]["_CHECKPOINTABLE_OBJECT_GRAPH"][0] == "meta"


def test_import_does_not_import_tensorflow():
    code = "import sys, ckptwidgets; print(any(m.startswith('tensorflow') for m in sys.modules))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.stdout.strip() == "False", run.stderr


# --- sources other than the bundle -----------------------------------------------------


def test_array_source_is_a_source_and_classifies_like_a_bundle(tmp_path):
    tensors = {"w": np.ones((2, 3), np.float32), "w/Adam": np.zeros((2, 3), np.float32),
               "w/ExponentialMovingAverage": np.full((2, 3), 0.5, np.float32), "global_step": np.int64(3),
               "name": np.array(b"text")}
    source = ArraySource(tensors, "in-memory")
    assert is_source(source) and isinstance(source, Source) and not is_source("model.ckpt")
    prefix = str(tmp_path / "same.ckpt")
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=sorted(tensors), shape_and_slices=[""] * len(tensors),
                      tensors=[tf.constant(tensors[k]) for k in sorted(tensors)])
    from_arrays, from_bundle = open_checkpoint(source), open_checkpoint(prefix)
    assert from_arrays.entries == from_bundle.entries
    assert from_arrays.prefix == "in-memory" and from_arrays.files == []
    assert [r.key for r in source.records()] == sorted(tensors) and isinstance(source.records()[0], Record)
    np.testing.assert_array_equal(from_arrays.read("w/ExponentialMovingAverage"), from_bundle.read("w/ExponentialMovingAverage"))
    assert from_arrays.read("name") == from_bundle.read("name") == b"text"
    assert dict(from_arrays.ema_shadows) == {"w": from_arrays["w/ExponentialMovingAverage"]}


def test_restore_from_a_source_without_restorev2_eager():
    source = ArraySource({"v1": np.array([1.0], np.float32), "v2": np.array([2.0], np.float32)}, "arrays")
    a1, a2 = tf.Variable([0.0], name="other-v1"), tf.Variable([0.0], name="other-v2")
    plan = plan_restore(source, [a1, a2], rules={"v1": "other-v1", "v2": "other-v2"})
    seen = []
    report = restore(plan, progress=lambda done, total: seen.append((done, total)))
    assert report.restored == [("other-v1", "v1"), ("other-v2", "v2")] and seen[0] == (0, 2) and seen[-1] == (2, 2)
    assert (a1 + a2).numpy().tolist() == [3.0]  # scenario 2's [3.]


def test_restore_from_a_source_without_restorev2_graph():
    source = ArraySource({"v/ExponentialMovingAverage": np.float32(0.099999905), "v": np.float32(10.0)})
    graph = tf.Graph()
    with graph.as_default():
        v = v1_.Variable(0.0, name="v")
        with v1_.Session(graph=graph) as sess:
            plan = plan_restore(source, [v], prefer_ema=True)
            restore(plan, session=sess)
            assert sess.run(v) == np.float32(0.099999905)  # scenario 4, through read_many


class _FailingSource(ArraySource):
    """Reads the first tensor, then finds the rest damaged."""

    def read(self, key, copy=False):
        if key != "a":
            raise CorruptCheckpointError(f"Cannot read key {key!r}: checksum does not match.")
        return super().read(key, copy)


def test_a_failed_read_through_a_source_changes_no_variable():
    source = _FailingSource({"a": np.float32(1.0), "b": np.float32(2.0)}, "damaged")
    a, b = tf.Variable(5.0, name="a"), tf.Variable(6.0, name="b")
    with pytest.raises(CorruptCheckpointError, match="Nothing was restored") as info:
        restore(plan_restore(source, [a, b]))
    assert "'b'" in str(info.value) and (a.numpy(), b.numpy()) == (5.0, 6.0)


@pytest.mark.parametrize("folder", ["back\\slash", "run[1]"])
def test_paths_tensorflow_cannot_glob_open_read_and_restore(tmp_path, folder):
    # RestoreV2 looks files up as a glob pattern, which such a path does not match; our
    # reader does not, and restoring goes through read_many instead.
    (tmp_path / folder).mkdir()
    prefix = str(tmp_path / folder / "m.ckpt")
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=["v1"], shape_and_slices=[""], tensors=[tf.constant([1.0])])
    ckpt = open_checkpoint(prefix)
    assert ckpt.source.restore_prefix is None and ckpt.read("v1").tolist() == [1.0]
    v1 = tf.Variable([5.0], name="v1")
    assert restore(plan_restore(ckpt, [v1])).restored == [("v1", "v1")] and v1.numpy().tolist() == [1.0]


# --- the public plan protocol ----------------------------------------------------------


def test_plan_protocol(base_ckpt):
    a1, extra = tf.Variable([0.0], name="other-v1"), tf.Variable([0.0], name="extra")
    plan = plan_restore(base_ckpt, [a1, extra], rules={"v1": "other-v1"})
    (item,) = plan.assignments
    assert isinstance(item, ckptwidgets.Assignment)
    assert (item.name, item.key, item.entry.key, item.info.variable is a1) == ("other-v1", "v1", "v1", True)
    assert list(plan.infos) == ["other-v1", "extra"] and plan.graph is None
    revision = plan.revision
    plan.assign("extra", "v2")
    assert plan.revision != revision and [a.key for a in plan.assignments] == ["v1", "v2"]
    with pytest.raises(TypeError):
        plan.infos["x"] = None  # read-only


def test_one_shape_format_in_plans_widgets_and_cli(base_ckpt):
    plan = plan_restore(base_ckpt, [tf.Variable([0.0] * 4, name="v1")])
    (problem,) = plan.problems
    assert "shape [4]" in problem.message and "shape [1]" in problem.message and "(4,)" not in problem.message


def test_unused_names_are_gone():
    from ckptwidgets import errors, plan, reader

    assert not hasattr(plan, "REASONS") and not hasattr(errors, "CkptWidgetsWarning")
    assert not hasattr(reader, "_snappy_uncompress") and "CkptWidgetsWarning" not in ckptwidgets.__all__
    from ckptwidgets import codegen
    from ckptwidgets.widgets import _mapper_model

    assert _mapper_model.STYLES is codegen.STYLES


def test_remote_paths_go_through_tensorflows_file_systems():
    # TF's in-memory ram:// file system stands in for gs:// and s3://.
    prefix = tf.train.Checkpoint(v=tf.Variable([1.0, 2.0])).write("ram://seam-test/ckpt")
    ckpt = open_checkpoint(prefix)
    assert ckpt.keys() == ["_CHECKPOINTABLE_OBJECT_GRAPH", "v/.ATTRIBUTES/VARIABLE_VALUE"]
    assert ckpt.read("v").tolist() == [1.0, 2.0] and ckpt.files[0] == prefix + ".index"
    v = tf.Variable([0.0, 0.0])
    assert restore(plan_restore(ckpt, {"v": v})).restored == [("v", "v/.ATTRIBUTES/VARIABLE_VALUE")]
    assert v.numpy().tolist() == [1.0, 2.0]
    tf.train.CheckpointManager(tf.train.Checkpoint(v=v), "ram://seam-run/", 3).save()
    assert open_checkpoint("ram://seam-run/").prefix == "ram://seam-run/ckpt-1"
