"""Writing is safe by construction (issue #12): nothing half-written ever has the final name.

A write streams into a hidden temporary prefix in the destination folder, reads every
tensor back, then renames the files into place. Here every way it can be interrupted is
tried: an exception from a source or a ``progress`` callback, ``kill -9`` at chosen moments
(from inside the writing process, just before or after the system calls that mark each
step) and at moments seen from outside (polling for the temporary files) or picked by a
delay, a full disk (``RLIMIT_FSIZE``: ``EFBIG``), and a folder the process may not write.
Afterwards the final name has no index (or, after the move, a complete checkpoint that reads
back equal), no temporary file is left (except after ``kill -9``, which nothing can clean
up), and the inputs are unchanged byte for byte (sha256 of every file). Also: a write is
peak memory of about one tensor, whatever the checkpoint's size.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from ckptwidgets import CheckpointNotFoundError, CorruptCheckpointError, WriteError, open_checkpoint
from ckptwidgets.sources.arrays import ArraySource
from ckptwidgets.write import average, plan_write
from _disk import require_free_disk

pytestmark = pytest.mark.skipif(os.name != "posix", reason="signals, resource limits and users are POSIX")

v1_ = tf.compat.v1
ROOT = Path(__file__).resolve().parent.parent
TEMPORARY = re.compile(r"^\..*ckptwidgets-tmp-")
MB = 1 << 20


# --- helpers --------------------------------------------------------------------------


def checkpoint_files(prefix) -> list[str]:
    """Names of the files of ``prefix`` in its folder (index, data shards, meta), sorted."""
    folder, base = os.path.split(os.fspath(prefix))
    if not os.path.isdir(folder):
        return []
    return sorted(n for n in os.listdir(folder) if n.startswith(base + "."))


def sha256s(prefix) -> dict:
    """``{file name: sha256}`` of every file of the checkpoint at ``prefix``."""
    folder = os.path.dirname(os.fspath(prefix))
    out = {}
    for name in checkpoint_files(prefix):
        digest = hashlib.sha256()
        with open(os.path.join(folder, name), "rb") as f:
            while chunk := f.read(8 * MB):
                digest.update(chunk)
        out[name] = digest.hexdigest()
    assert out, prefix
    return out


def temporaries(folder) -> list[str]:
    return sorted(n for n in os.listdir(folder) if TEMPORARY.match(n))


def assert_nothing_under(prefix) -> None:
    """No file of ``prefix`` and no temporary file in its folder (if there is one)."""
    folder = os.path.dirname(os.fspath(prefix))
    if os.path.isdir(folder):
        assert checkpoint_files(prefix) == [] and temporaries(folder) == [], os.listdir(folder)
    with pytest.raises(CheckpointNotFoundError):
        open_checkpoint(os.fspath(prefix))
    with pytest.raises(CheckpointNotFoundError):
        open_checkpoint(os.fspath(prefix))


def assert_reads_back(prefix, expected) -> None:
    """The checkpoint at ``prefix`` holds exactly ``expected`` (a Checkpoint, or ``{key: array}``), bit for bit."""
    ckpt = open_checkpoint(os.fspath(prefix))
    assert ckpt.keys() == sorted(expected.keys())
    for key in ckpt.keys():
        want = expected[key] if isinstance(expected, dict) else expected.read(key)
        got = ckpt.read(key)
        assert got.dtype == want.dtype and got.shape == want.shape and got.tobytes() == want.tobytes(), key


def tf_values(prefix) -> dict:
    reader = tf.train.load_checkpoint(os.fspath(prefix))
    return {key: reader.get_tensor(key) for key in reader.get_variable_to_shape_map()}


def save(prefix, values: dict) -> str:
    """A checkpoint written by TensorFlow (``SaveV2``) holding ``{key: array}``."""
    prefix = os.fspath(prefix)
    os.makedirs(os.path.dirname(prefix), exist_ok=True)
    names = sorted(values)
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(values[n]) for n in names])
    return prefix


def random_tensors(count: int, nbytes: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {f"layer_{i:02d}/kernel": rng.standard_normal(nbytes // 4, dtype=np.float32) for i in range(count)}


# --- the writing process, run as a child -------------------------------------------------

# One write in a fresh process, described by a JSON spec: which checkpoints (one: a copy;
# several: their average), where, and what interrupts it. ``kill: [name, n, when]`` sends
# SIGKILL to itself just "before" or "after" the n-th call of ``os.<name>`` (fdatasync: the
# background sync of the data file being written; fsync: the data file is complete, then
# the index; replace: the data file moves, then the index; remove: an overwritten
# checkpoint's index goes), or from the ``progress`` callback once that fraction of the
# bytes is written. ``fsize`` limits the size of any file it writes (EFBIG
# instead of SIGXFSZ); ``uid`` drops root before writing. Everything the write imports is
# imported first.
CHILD = r"""
import json, os, signal, sys
spec = json.loads(sys.argv[1])
import numpy as np
import ckptwidgets.sources.bundle._write, ckptwidgets.sources._atomic, ckptwidgets.reader
from ckptwidgets import WriteError
from ckptwidgets.write import average, plan_write

def kill_at(name, n, when):
    real, calls = getattr(os, name), [0]
    def patched(*args, **kwargs):
        calls[0] += 1
        if calls[0] == n and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        result = real(*args, **kwargs)
        if calls[0] == n and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    setattr(os, name, patched)

progress = False
if spec.get("kill"):
    name, n, when = spec["kill"]
    if name == "progress":
        def progress(done, total):
            if done >= n * total:
                os.kill(os.getpid(), signal.SIGKILL)
    else:
        kill_at(name, n, when)
sources = spec["sources"]
plan = average(sources) if len(sources) > 1 else plan_write(sources[0])
if spec.get("fsize") is not None:
    import resource
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (spec["fsize"], spec["fsize"]))
if spec.get("uid") is not None:
    # Import what the write imports lazily while the files are still readable: the package
    # may live in a folder the unprivileged user cannot read (a clone under a mktemp dir).
    import ckptwidgets.sources.bundle._write, ckptwidgets.sources._atomic, ml_dtypes, tqdm.auto  # noqa: F401,E401
    from ckptwidgets.sources._dtypes import BY_NAME
    BY_NAME["float32"].numpy
    os.setgid(spec["uid"])
    os.setuid(spec["uid"])
print("started", flush=True)
try:
    report = plan.write(spec["out"], overwrite=spec.get("overwrite", False), progress=progress)
except WriteError as error:
    print(json.dumps({"error": str(error)}), flush=True)
else:
    print(json.dumps({"prefix": report.prefix}), flush=True)
"""


def child_env() -> dict:
    return {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}


def start(spec: dict) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(spec)], cwd=ROOT, env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line == "started\n", (line, proc.stderr.read())
    return proc


def run_child(spec: dict, timeout=300) -> tuple[int, dict | None, str]:
    """Run one write to its end (or its own SIGKILL): ``(returncode, result, stderr)``."""
    run = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], cwd=ROOT, env=child_env(),
                         capture_output=True, text=True, timeout=timeout)
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    return run.returncode, (json.loads(lines[-1]) if lines else None), run.stderr


# --- crash: an exception in the middle of a write --------------------------------------


class _FailingSource(ArraySource):
    """Reads its first tensors, then raises ``error`` on key ``t05``."""

    def __init__(self, tensors, error):
        super().__init__(tensors, "failing")
        self.error = error

    def read(self, key, copy=False):
        if key == "t05":
            raise self.error
        return super().read(key, copy)


def _ten_tensors() -> dict:
    return {f"t{i:02d}": np.full(256 * 1024, i, np.float32) for i in range(10)}  # 1 MB each: mapped, streamed


def test_a_write_goes_to_a_hidden_temporary_prefix_is_read_back_then_moved(tmp_path, monkeypatch):
    import ckptwidgets.reader

    source = save(tmp_path / "src" / "model.ckpt", random_tensors(6, 2 * MB))
    out = tmp_path / "out" / "model.ckpt"
    seen, reads, moves = [], [], []
    real_read, real_replace = ckptwidgets.reader.Checkpoint.read, os.replace

    def read(self, key, copy=False):
        reads.append((self.prefix, key))
        return real_read(self, key, copy)

    def replace(src, dst, *args, **kwargs):
        moves.append((os.fspath(src), os.fspath(dst), len(reads)))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(ckptwidgets.reader.Checkpoint, "read", read)
    monkeypatch.setattr(os, "replace", replace)
    plan_write(source).write(out, progress=lambda done, total: seen.append(sorted(os.listdir(out.parent))))

    # While writing: one hidden data file in the destination folder, nothing under the final name.
    assert len(seen) == 6 and all(len(names) == 1 for names in seen), seen
    (temp_data,) = seen[0]
    assert temp_data.startswith(".model.ckpt.ckptwidgets-tmp-") and temp_data.endswith(".data-00000-of-00001")
    temp = str(out.parent / temp_data[: -len(".data-00000-of-00001")])
    # Every tensor read from the source, then every one read back from the temporary prefix...
    keys = open_checkpoint(source).keys()
    assert reads == [(source, k) for k in keys] + [(temp, k) for k in keys]
    # ...and only then the data file, then the index, renamed into place.
    assert moves == [(temp + ".data-00000-of-00001", str(out) + ".data-00000-of-00001", 12),
                     (temp + ".index", str(out) + ".index", 12)]
    assert sorted(os.listdir(out.parent)) == ["model.ckpt.data-00000-of-00001", "model.ckpt.index"]
    assert_reads_back(out, open_checkpoint(source))


@pytest.mark.parametrize("error", [CorruptCheckpointError("Cannot read key 't05': checksum does not match."),
                                   KeyboardInterrupt(), MemoryError()], ids=["damaged", "ctrl-c", "memory"])
def test_a_source_failing_in_the_middle_leaves_nothing(tmp_path, error):
    source = _FailingSource(_ten_tensors(), error)
    out = tmp_path / "out.ckpt"
    expected = WriteError if isinstance(error, CorruptCheckpointError) else type(error)
    with pytest.raises(expected) as info:
        plan_write(source).write(out, progress=False)
    if expected is WriteError:
        assert f"Nothing was written to {str(out)!r}" in str(info.value) and "'t05'" in str(info.value)
    assert os.listdir(tmp_path) == []


def test_a_failing_read_in_an_average_leaves_nothing(tmp_path):
    good = ArraySource(_ten_tensors(), "good")
    failing = _FailingSource(_ten_tensors(), CorruptCheckpointError("Cannot read key 't05'."))
    with pytest.raises(WriteError, match="'t05'"):
        average([good, failing]).write(tmp_path / "mean.ckpt", progress=False)
    assert os.listdir(tmp_path) == []


def test_a_progress_callback_raising_leaves_nothing_and_the_source_unchanged(tmp_path):
    source = save(tmp_path / "src" / "model.ckpt", random_tensors(8, MB))
    before = sha256s(source)
    out = tmp_path / "out" / "model.ckpt"

    def progress(done, total):
        if done >= total / 2:
            raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        plan_write(source).write(out, progress=progress)
    assert os.listdir(out.parent) == []
    assert sha256s(source) == before


def test_damage_found_by_the_read_back_leaves_nothing(tmp_path, monkeypatch):
    """The read-back is a real check: a byte changed on its way to the disk is found there."""
    from ckptwidgets.sources.bundle import _writer as _bundle_writer

    real_finish = _bundle_writer.BundleWriter.finish

    def finish(self):
        real_finish(self)
        with open(self.prefix + _bundle_writer.DATA_SUFFIX, "r+b") as f:  # a bit flipped on the disk
            f.seek(MB + 7)
            byte = f.read(1)
            f.seek(MB + 7)
            f.write(bytes([byte[0] ^ 0x10]))

    monkeypatch.setattr(_bundle_writer.BundleWriter, "finish", finish)
    out = tmp_path / "out.ckpt"
    with pytest.raises(WriteError, match="Nothing was written.*checksum does not match"):
        plan_write(ArraySource(_ten_tensors())).write(out, progress=False)
    assert os.listdir(tmp_path) == []


def _record_background_syncs(monkeypatch, every: int) -> list:
    """Sync every ``every`` bytes; each sync appends ``(thread name, data file size)`` to the list returned."""
    import threading

    from ckptwidgets.sources import _background_sync
    from ckptwidgets.sources.bundle import _writer as _bundle_writer

    real, calls = _background_sync.sync_data, []

    def sync_data(fd):
        calls.append((threading.current_thread().name, os.fstat(fd).st_size))
        real(fd)

    monkeypatch.setattr(_bundle_writer, "SYNC_EVERY_BYTES", every)
    monkeypatch.setattr(_background_sync, "sync_data", sync_data)
    return calls


@pytest.mark.parametrize("tensors", [10, 1], ids=["ten-tensors", "one-big-tensor"])
def test_the_data_is_synced_in_the_background_while_it_is_written(tmp_path, monkeypatch, tensors):
    """The disk takes the data as it comes (not all of it at the final fsync), a big tensor in pieces too."""
    values = random_tensors(tensors, 10 * MB // tensors)
    source = save(tmp_path / "src" / "model.ckpt", values)
    calls = _record_background_syncs(monkeypatch, MB)
    out = tmp_path / "out" / "model.ckpt"

    def progress(done, total):  # a slow source: the sync thread gets its turn between the writes
        time.sleep(0.02)

    if tensors == 1:  # one tensor is one progress tick: slow its pieces down instead
        from ckptwidgets.sources.bundle import _writer as _bundle_writer

        real_write = _bundle_writer.BundleWriter._write

        def slow_write(self, piece):
            real_write(self, piece)
            time.sleep(0.02)

        monkeypatch.setattr(_bundle_writer.BundleWriter, "_write", slow_write)
    plan_write(source).write(out, progress=progress)
    total = os.path.getsize(str(out) + ".data-00000-of-00001")
    assert total == 10 * MB
    assert calls and all(name == "ckptwidgets-sync" for name, _ in calls), calls
    assert any(0 < size < total for _, size in calls), (calls, total)  # before the last byte
    assert {k: v.tobytes() for k, v in tf_values(out).items()} == {k: v.tobytes() for k, v in values.items()}


def test_a_small_write_starts_no_sync_thread(tmp_path, monkeypatch):
    calls = _record_background_syncs(monkeypatch, 64 * MB)
    plan_write(ArraySource(_ten_tensors())).write(tmp_path / "out.ckpt", progress=False)
    assert calls == []


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), OSError(5, "Input/output error")],
                         ids=["ENOSPC", "EIO"])
def test_a_background_sync_failing_leaves_nothing(tmp_path, monkeypatch, error):
    """A full disk or a failing device often shows only when the data is synced: in the thread."""
    from ckptwidgets.sources import _background_sync
    from ckptwidgets.sources.bundle import _writer as _bundle_writer

    def sync_data(fd):
        raise error

    monkeypatch.setattr(_bundle_writer, "SYNC_EVERY_BYTES", MB)
    monkeypatch.setattr(_background_sync, "sync_data", sync_data)
    source = save(tmp_path / "src" / "model.ckpt", random_tensors(6, 2 * MB))
    before = sha256s(source)
    out = tmp_path / "out" / "model.ckpt"
    with pytest.raises(WriteError) as info:
        plan_write(source).write(out, progress=False)
    assert str(info.value) == (
        f"Nothing was written to {str(out)!r}: {error.strerror} ({str(out.parent)!r}). The inputs are unchanged."
    )
    assert os.listdir(out.parent) == []
    assert sha256s(source) == before


@pytest.mark.parametrize("error", [OSError(5, "Input/output error"), KeyboardInterrupt()], ids=["EIO", "ctrl-c"])
def test_a_failure_between_the_two_renames_leaves_nothing(tmp_path, monkeypatch, error):
    real_replace, calls = os.replace, []

    def replace(src, dst, *args, **kwargs):
        calls.append(dst)
        if len(calls) == 2:  # the data file is in place, the index is not
            raise error
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    out = tmp_path / "out.ckpt"
    with pytest.raises(WriteError if isinstance(error, OSError) else KeyboardInterrupt):
        plan_write(ArraySource(_ten_tensors())).write(out, progress=False)
    assert calls == [str(out) + ".data-00000-of-00001", str(out) + ".index"]
    assert os.listdir(tmp_path) == []


def test_a_failure_writing_the_state_file_says_the_checkpoint_is_there(tmp_path, monkeypatch):
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "older.ckpt"\n')
    real_replace, calls = os.replace, []

    def replace(src, dst, *args, **kwargs):
        calls.append(dst)
        if os.path.basename(dst) == "checkpoint":
            raise OSError(28, "No space left on device")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    out = tmp_path / "out.ckpt"
    with pytest.raises(WriteError, match=r"The checkpoint was written to .*out.ckpt'.* but not the folder's "
                                         r"'checkpoint' file naming it: No space left on device"):
        plan_write(ArraySource(_ten_tensors())).write(out, state_file=True, progress=False)
    assert len(calls) == 3
    assert_reads_back(out, _ten_tensors())
    assert (tmp_path / "checkpoint").read_text() == 'model_checkpoint_path: "older.ckpt"\n'  # untouched
    assert temporaries(tmp_path) == []


# --- refusals ---------------------------------------------------------------------------


def test_the_source_under_another_spelling_and_an_existing_output_are_refused(tmp_path):
    source = save(tmp_path / "src" / "model.ckpt", random_tensors(2, 1024))
    before = sha256s(source)
    (tmp_path / "link").symlink_to(tmp_path / "src", target_is_directory=True)
    spellings = [source, source + ".index", str(tmp_path / "link" / "model.ckpt"),
                 os.path.relpath(source), str(tmp_path / "src" / ".." / "src" / "model.ckpt")]
    for spelling in spellings:
        for overwrite in (False, True):
            with pytest.raises(WriteError, match="is the input checkpoint itself"):
                plan_write(source).rename({"/": "new/"}).write(spelling, overwrite=overwrite, progress=False)
    other = save(tmp_path / "other" / "model.ckpt", {"x": np.zeros(3, np.float32)})
    other_before = sha256s(other)
    with pytest.raises(WriteError, match="already exists.*overwrite=True"):
        plan_write(source).write(other, progress=False)
    assert sha256s(source) == before and sha256s(other) == other_before
    assert temporaries(tmp_path / "src") == temporaries(tmp_path / "other") == []



def test_data_left_without_its_index_is_named_and_replaced_on_request(tmp_path):
    """A kill between the two renames leaves the data file under the final name and no index:
    no checkpoint (TensorFlow cannot open it), but in the way of the next write, which says
    what it found; overwrite=True replaces it."""
    tensors = random_tensors(2, 1024)
    source = save(tmp_path / "src" / "model.ckpt", tensors)
    out = tmp_path / "out" / "model.ckpt"
    out.parent.mkdir()
    orphan = tmp_path / "out" / "model.ckpt.data-00000-of-00001"
    orphan.write_bytes(b"half of an interrupted write")
    with pytest.raises(WriteError, match=r"already exists as data without its index \(model\.ckpt\.data-00000-of-00001\)"
                                         r".*killed while moving into place; pass overwrite=True"):
        plan_write(source).write(out, progress=False)
    assert orphan.read_bytes() == b"half of an interrupted write"
    plan_write(source).write(out, overwrite=True, progress=False)
    assert_reads_back(out, tensors)
    assert tf_values(out).keys() == tensors.keys()
    assert temporaries(tmp_path / "out") == []

# --- overwrite=True ----------------------------------------------------------------------


def _sharded(prefix) -> str:
    """An object-based checkpoint in three data shards (TF's MaxShardSizePolicy)."""
    module = tf.Module()
    module.a = tf.Variable(tf.range(64, dtype=tf.float32))
    module.b = tf.Variable(tf.ones([64]))
    module.c = tf.Variable(tf.range(64))
    policy = tf.train.experimental.MaxShardSizePolicy(max_shard_size=300)
    written = tf.train.Checkpoint(m=module).write(
        os.fspath(prefix), options=tf.train.CheckpointOptions(experimental_sharding_callback=policy))
    assert len([n for n in checkpoint_files(written) if ".data-" in n]) == 3
    return written


def saver_restore(prefix, values: dict) -> dict:
    """What a plain ``Saver`` restores into fresh variables shaped as ``values``."""
    graph = tf.Graph()
    with graph.as_default():
        variables = {k: v1_.Variable(np.zeros_like(v), name=k) for k, v in values.items()}
        saver = v1_.train.Saver(variables)
        with v1_.Session(graph=graph) as sess:
            saver.restore(sess, os.fspath(prefix))
            return {k: sess.run(v) for k, v in variables.items()}


def test_overwrite_replaces_an_existing_sharded_checkpoint(tmp_path):
    values = random_tensors(3, 4096)
    source = save(tmp_path / "src" / "model.ckpt", values)
    out = _sharded(tmp_path / "out" / "model.ckpt")
    plan = plan_write(source).rename({"layer_00/": "serving/layer_00/"})
    plan.write(out, overwrite=True, progress=False)
    assert checkpoint_files(out) == ["model.ckpt.data-00000-of-00001", "model.ckpt.index"]  # the 3 old shards gone
    assert temporaries(tmp_path / "out") == []
    planned = {"serving/layer_00/kernel": values["layer_00/kernel"], "layer_01/kernel": values["layer_01/kernel"],
               "layer_02/kernel": values["layer_02/kernel"]}
    assert tf_values(out).keys() == planned.keys() == set(plan.keys)
    for key, value in saver_restore(out, planned).items():
        assert value.tobytes() == planned[key].tobytes(), key


def test_overwrite_never_replaces_the_source_itself(tmp_path):
    """A write reads its source while it writes: in place is refused, overwrite=True or not."""
    source = _sharded(tmp_path / "ckpt")
    before = sha256s(source)
    plan = plan_write(source).strip().rename({"m/": "model/"})
    with pytest.raises(WriteError, match=r"The output '.*ckpt' is the input checkpoint itself \('.*ckpt'\)"):
        plan.write(source, overwrite=True, progress=False)
    assert sha256s(source) == before and temporaries(tmp_path) == []
    plan.write(tmp_path / "other", overwrite=True, progress=False)
    after = tf_values(tmp_path / "other")
    key = "model/a/.ATTRIBUTES/VARIABLE_VALUE"
    assert saver_restore(tmp_path / "other", {key: after[key]})[key].tolist() == list(range(64))  # as TF restores it


# --- kill -9 -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_source(tmp_path_factory):
    """A 336 MB TensorFlow checkpoint (40 random tensors of 8.4 MB) and its files' sha256."""
    prefix = save(tmp_path_factory.mktemp("big") / "model.ckpt", random_tensors(40, 8 * MB))
    return prefix, sha256s(prefix)


def _after_a_kill(out, source, before, old=None) -> str:
    """Check what a SIGKILL left: ``"absent"``, ``"complete"`` or (``old``: the files' sha256 of
    the checkpoint being overwritten) ``"old"``.

    The source is unchanged byte for byte. Under the final name there is no index, or a
    complete checkpoint that reads back equal to the source (or the old one, intact: never
    a mix). Besides temporary files only a data file without its index may be there (a kill
    between the two renames), and nothing opens it as a checkpoint.
    """
    out = os.fspath(out)
    if os.path.exists(out + ".index"):
        if old is not None and sha256s(out) == old:
            state = "old"
        else:
            assert_reads_back(out, open_checkpoint(source))
            assert checkpoint_files(out) == [os.path.basename(out) + s for s in (".data-00000-of-00001", ".index")]
            state = "complete"
    else:
        with pytest.raises(CheckpointNotFoundError):
            open_checkpoint(out)
        assert set(checkpoint_files(out)) <= {os.path.basename(out) + ".data-00000-of-00001"}, checkpoint_files(out)
        state = "absent"
    assert sha256s(source) == before
    return state


# (id, kill spec, what the final name holds afterwards)
KILLS = [
    ("streaming", ["progress", 0.5, None], "absent"),
    ("synced-in-the-background", ["fdatasync", 1, "after"], "absent"),
    ("data-file-complete", ["fsync", 1, "after"], "absent"),
    ("temporary-checkpoint-complete", ["fsync", 2, "after"], "absent"),
    ("read-back-done", ["replace", 1, "before"], "absent"),
    ("between-the-renames", ["replace", 2, "before"], "absent"),
    ("index-renamed", ["replace", 2, "after"], "complete"),
]


@pytest.mark.parametrize("kill,expected", [k[1:] for k in KILLS], ids=[k[0] for k in KILLS])
def test_kill_9_at_each_step(tmp_path, big_source, kill, expected):
    source, before = big_source
    out = tmp_path / "out" / "model.ckpt"
    code, result, stderr = run_child({"sources": [source], "out": str(out), "kill": kill})
    assert code == -signal.SIGKILL and result is None, (code, result, stderr)
    assert _after_a_kill(out, source, before) == expected
    if expected == "complete":
        assert temporaries(out.parent) == []  # both files were renamed: nothing else is left
    elif checkpoint_files(out):  # the data file without its index: writing again replaces it
        plan_write(source).write(out, overwrite=True, progress=False)
        assert_reads_back(out, open_checkpoint(source))
        assert sha256s(source) == before


def _kill_when(spec, condition, folder, timeout=120) -> subprocess.Popen:
    """Start a write and SIGKILL it as soon as ``condition(names in folder)`` holds (polled)."""
    proc = start(spec)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if os.path.isdir(folder) and condition(os.listdir(folder)):
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.0005)
    proc.wait(timeout)
    proc.stdout.close()
    proc.stderr.close()
    return proc


@pytest.mark.parametrize("moment", ["temporary-data-appears", "temporary-index-appears", "temporary-files-go"])
def test_kill_9_from_outside_at_the_moments_seen_in_the_folder(tmp_path, big_source, moment):
    source, before = big_source
    out = tmp_path / "out" / "model.ckpt"
    out.parent.mkdir()
    conditions = {
        "temporary-data-appears": lambda names: any(TEMPORARY.match(n) and ".data-" in n for n in names),
        "temporary-index-appears": lambda names: any(TEMPORARY.match(n) and n.endswith(".index") for n in names),
        # the data file renamed into place: the move is under way (or done)
        "temporary-files-go": lambda names: "model.ckpt.data-00000-of-00001" in names,
    }
    proc = _kill_when({"sources": [source], "out": str(out)}, conditions[moment], out.parent)
    state = _after_a_kill(out, source, before)
    if moment != "temporary-files-go":  # (that one may come after the index too: then it is complete)
        assert proc.returncode == -signal.SIGKILL and state == "absent", (proc.returncode, state)


def test_kill_9_at_a_range_of_delays(tmp_path, big_source):
    source, before = big_source
    proc = start({"sources": [source], "out": str(tmp_path / "timed" / "model.ckpt")})
    started = time.perf_counter()
    proc.communicate(timeout=300)
    duration = time.perf_counter() - started  # of the write alone
    assert proc.returncode == 0
    shutil.rmtree(tmp_path / "timed")
    states = []
    for i, fraction in enumerate([0.05, 0.2, 0.4, 0.6, 0.8, 0.9, 0.97, 1.05]):
        out = tmp_path / f"run{i}" / "model.ckpt"
        proc = start({"sources": [source], "out": str(out)})
        time.sleep(fraction * duration)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=300)
        states.append((fraction, proc.returncode, _after_a_kill(out, source, before)))
        shutil.rmtree(out.parent, ignore_errors=True)
    assert any(state == "absent" for *_, state in states), states  # some kills came in time


def test_kill_9_while_overwriting(tmp_path, big_source):
    """With overwrite=True the final name holds the old checkpoint intact, the new one, or no index."""
    source, before = big_source
    states = {}
    # The move begins by removing the old index (the old checkpoint is gone from then on),
    # then its data files; then the new data file and index are renamed into place.
    kills = {"streaming": ["progress", 0.5, None], "read-back-done": ["remove", 1, "before"],
             "old-index-removed": ["remove", 1, "after"], "old-files-removed": ["replace", 1, "before"],
             "between-the-renames": ["replace", 2, "before"], "index-renamed": ["replace", 2, "after"]}
    for moment, kill in kills.items():
        out = save(tmp_path / moment / "model.ckpt", {"old": np.arange(5, dtype=np.float32)})
        old = sha256s(out)
        code, result, stderr = run_child({"sources": [source], "out": out, "kill": kill, "overwrite": True})
        assert code == -signal.SIGKILL, (moment, code, result, stderr)
        states[moment] = _after_a_kill(out, source, before, old)
        shutil.rmtree(tmp_path / moment)
    assert states == {"streaming": "old", "read-back-done": "old", "old-index-removed": "absent",
                      "old-files-removed": "absent", "between-the-renames": "absent", "index-renamed": "complete"}


def test_a_leftover_temporary_is_not_opened_as_the_folders_checkpoint(tmp_path, big_source):
    source, before = big_source
    out = tmp_path / "out" / "model.ckpt"
    code, _, stderr = run_child({"sources": [source], "out": str(out), "kill": ["replace", 1, "before"]})
    assert code == -signal.SIGKILL, stderr
    assert [n for n in temporaries(out.parent) if n.endswith(".index")]  # a complete temporary checkpoint is left
    with pytest.raises(CheckpointNotFoundError):
        open_checkpoint(str(out.parent))  # the folder holds no checkpoint


def test_a_leftover_temporary_beside_the_checkpoint_does_not_hide_it(tmp_path, big_source):
    source, before = big_source
    out = tmp_path / "out" / "model.ckpt"
    code, _, stderr = run_child({"sources": [source], "out": str(out), "kill": ["replace", 1, "before"]})
    assert code == -signal.SIGKILL, stderr
    plan_write(source).write(out, progress=False)
    assert [n for n in temporaries(out.parent) if n.endswith(".index")]
    assert open_checkpoint(str(out.parent)).prefix == str(out)  # the folder's one checkpoint


def test_a_leftover_temporary_is_not_opened_under_the_final_name(tmp_path, big_source):
    source, before = big_source
    out = tmp_path / "out" / "model.ckpt"
    code, _, stderr = run_child({"sources": [source], "out": str(out), "kill": ["replace", 1, "before"]})
    assert code == -signal.SIGKILL, stderr
    assert temporaries(out.parent)
    with pytest.raises(CheckpointNotFoundError):
        open_checkpoint(str(out))
    # A later write (no overwrite needed: nothing is there) is not confused by the leftovers.
    report = plan_write(source).write(out, progress=False)
    assert report.prefix == str(out)
    assert_reads_back(out, open_checkpoint(source))


# --- a full disk ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def disk_sources(tmp_path_factory):
    folder = tmp_path_factory.mktemp("disk")
    return {
        # 8 tensors of 4 MB: each written straight through
        "big": save(folder / "big" / "model.ckpt", random_tensors(8, 4 * MB)),
        # 2,000 tensors of 400 B: written through the file's buffer
        "small": save(folder / "small" / "model.ckpt", {f"t{i:04d}": np.full(100, i, np.float32) for i in range(2000)}),
        # 2,000 scalars: the index (about 50 KB) is bigger than the data (8 KB)
        "scalars": save(folder / "scalars" / "model.ckpt", {f"s{i:04d}": np.float32(i) for i in range(2000)}),
    }


@pytest.mark.parametrize("which,limit", [
    ("big", 1000),  # the first tensor
    ("big", 17 * MB),  # the middle of a tensor
    ("big", 32 * MB - 1),  # the last byte of the data
    ("small", 5000),
    ("small", 400_000),
    ("scalars", 20_000),  # the data fits, the index does not
])
def test_a_full_disk_leaves_nothing(tmp_path, disk_sources, which, limit):
    source = disk_sources[which]
    before = sha256s(source)
    out = tmp_path / "out" / "model.ckpt"
    code, result, stderr = run_child({"sources": [source], "out": str(out), "fsize": limit})
    assert code == 0 and result is not None and "error" in result, (code, result, stderr)
    message = result["error"]
    assert message.startswith(f"Nothing was written to {str(out)!r}: File too large"), message
    assert repr(str(out.parent)) in message and "ckptwidgets-tmp" not in message, message
    assert_nothing_under(out)
    assert sha256s(source) == before


def test_a_full_disk_while_averaging_leaves_nothing(tmp_path):
    folder = tmp_path / "steps"
    steps = [save(folder / f"model.ckpt-{i}", random_tensors(4, 4 * MB, seed=i)) for i in range(3)]
    before = {step: sha256s(step) for step in steps}
    out = tmp_path / "out" / "averaged.ckpt"
    code, result, stderr = run_child({"sources": steps, "out": str(out), "fsize": 9 * MB})
    assert code == 0 and "File too large" in result["error"], (code, result, stderr)
    assert_nothing_under(out)
    assert {step: sha256s(step) for step in steps} == before


# --- a read-only folder ---------------------------------------------------------------


@pytest.fixture
def shared_tmp():
    """A folder every user can read (pytest's own tmp_path is root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="ckptwidgets-ro-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _unprivileged() -> dict:
    """What the child needs to write as a user that may not write our folder."""
    if os.geteuid() != 0:
        return {}  # chmod is enough
    import pwd

    try:
        return {"uid": pwd.getpwnam("nobody").pw_uid}
    except KeyError:
        pytest.skip("running as root and there is no user 'nobody' to drop to")


@pytest.mark.parametrize("where", ["the folder", "a folder to make inside it"])
def test_a_read_only_folder_leaves_nothing(shared_tmp, where):
    source = save(shared_tmp / "src" / "model.ckpt", random_tensors(3, MB))
    before = sha256s(source)
    readonly = shared_tmp / "readonly"
    readonly.mkdir()
    readonly.chmod(0o555)
    out = readonly / "model.ckpt" if where == "the folder" else readonly / "sub" / "model.ckpt"
    code, result, stderr = run_child({"sources": [source], "out": str(out), **_unprivileged()})
    assert code == 0 and result is not None and "error" in result, (code, result, stderr)
    message = result["error"]
    assert message.startswith(f"Nothing was written to {str(out)!r}: Permission denied"), message
    assert repr(str(out.parent)) in message and "ckptwidgets-tmp" not in message, message
    assert os.listdir(readonly) == []
    assert sha256s(source) == before


# --- memory: one tensor at a time ---------------------------------------------------------

# Rewrite (or average) in a fresh process; print the peak RSS growth (VmHWM, reset first
# through /proc/self/clear_refs when allowed) and the peak of private memory (RssAnon,
# sampled every 2 ms: RSS also counts the memory-mapped pages of the tensors being read,
# which are the page cache, not copies).
MEMORY_CHILD = r"""
import json, re, sys, threading
spec = json.loads(sys.argv[1])
from ckptwidgets.sources.arrays import ArraySource
from ckptwidgets.write import average, plan_write
import numpy as np

def status():
    with open("/proc/self/status") as f:
        return {k: int(v) * 1024 for k, v in re.findall(r"(\w+):\s+(\d+) kB", f.read())}

def write(sources, out):
    plan = average(sources) if len(sources) > 1 else plan_write(sources[0]).rename({"/": "copy/"})
    plan.write(out, progress=False)

warm = ArraySource({"w": np.ones(1 << 19, np.float32)})  # imports and first calls, mapped reads included
write([warm], spec["out"] + "-warm")
write([spec["out"] + "-warm", spec["out"] + "-warm"], spec["out"] + "-warm-mean")
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
except OSError:
    pass
before = status()
peak, done = [before["RssAnon"]], threading.Event()

def sample():
    while not done.wait(0.002):
        peak[0] = max(peak[0], status()["RssAnon"])

thread = threading.Thread(target=sample, daemon=True)
thread.start()
write(spec["sources"], spec["out"])
done.set()
thread.join()
after = status()
print(json.dumps({"rss": after["VmHWM"] - before["VmRSS"], "private": peak[0] - before["RssAnon"]}))
"""


def measure_memory(sources, out) -> dict:
    run = subprocess.run([sys.executable, "-c", MEMORY_CHILD, json.dumps({"sources": sources, "out": str(out)})],
                         cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def constant_checkpoint(prefix, sizes, offset=0.0) -> str:
    """A checkpoint of float32 tensors ``t0``... of ``sizes`` bytes, ``t<i>`` all ``i + offset``, written
    one tensor at a time (broadcast views: no value is held)."""
    tensors = {f"t{i}": np.broadcast_to(np.float32(i + offset), (size // 4,)) for i, size in enumerate(sizes)}
    return plan_write(ArraySource(tensors)).write(prefix, progress=False).prefix


SLACK = 200 * 1000 * 1000  # the bound: the largest tensor + 200 MB
linux_only = pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc/self/status (Linux)")


def _check_rewrite(tmp_path, sizes):
    require_free_disk(tmp_path, 2 * sum(sizes))  # the source and its copy
    source = constant_checkpoint(tmp_path / "src" / "model.ckpt", sizes)
    largest = max(sizes)
    out = tmp_path / "out" / "model.ckpt"
    used = measure_memory([source], out)
    assert used["rss"] <= largest + SLACK, (used, largest)
    # One tensor at a time: never two of them mapped or copied at once.
    assert used["rss"] < 2 * largest, (used, largest)
    assert used["private"] < 100 * MB, used
    ckpt = open_checkpoint(str(out))
    assert ckpt.keys() == sorted(f"copy/t{i}" for i in range(len(sizes)))
    for i in range(len(sizes)):
        value = ckpt.read(f"copy/t{i}")
        assert value.shape == (sizes[i] // 4,) and value[0] == value[-1] == i
    return used


def _check_average(tmp_path, sizes, count=3):
    require_free_disk(tmp_path, (count + 1) * sum(sizes))  # the steps and their average
    steps = [constant_checkpoint(tmp_path / "steps" / f"model.ckpt-{k}", sizes, offset=k) for k in range(count)]
    largest = max(sizes)
    out = tmp_path / "out" / "averaged.ckpt"
    used = measure_memory(steps, out)
    # RSS counts the sources' mapped pages (file-backed); private memory is the float64 chunks.
    assert used["private"] <= largest + SLACK, (used, largest)
    # Chunks, not tensors: less than a float64 copy of the largest tensor.
    assert used["private"] < 2 * largest, (used, largest)
    ckpt = open_checkpoint(str(out))
    mean = np.float32(np.mean(np.arange(count, dtype=np.float64)))
    for i in range(len(sizes)):
        value = ckpt.read(f"t{i}")
        assert value[0] == value[-1] == i + mean
    return used


@linux_only
def test_a_1_gb_rewrite_takes_the_memory_of_one_tensor(tmp_path):
    # 1.1 GB in tensors of at most 268 MB (about 10 s): holding two tensors breaks the bound.
    _check_rewrite(tmp_path, [256 * MB] * 4 + [16 * MB] * 4)


@linux_only
def test_an_average_takes_private_memory_of_one_chunk(tmp_path):
    # 3 x 210 MB in 105 MB tensors: a float64 copy of one tensor breaks the bound.
    _check_average(tmp_path, [100 * MB] * 2)


@linux_only
@pytest.mark.slow
def test_an_average_of_three_1_gb_checkpoints_takes_private_memory_of_one_chunk(tmp_path):
    _check_average(tmp_path, [256 * MB] * 4 + [16 * MB] * 4)
