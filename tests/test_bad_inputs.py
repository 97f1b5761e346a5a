"""Bad inputs, through the public functions and through the widgets (issue #6).

One table, :data:`CASES`: each row builds its input in ``tmp_path`` (real files written by
TensorFlow, then damaged), names the public call to make, the error expected and the
substrings its message must hold (the file, key or variable). The same rows then go
through the widgets.

The widget behaviour, as decided here:

- a widget built on a path that cannot be opened does not raise: it shows the reason in its
  ``message`` label (``CheckpointBrowser(path)``, ``VariableMapper(path, variables)``);
- ``VariableMapper(path, variables)`` with variables that are no variables (or none) raises
  the package's ``PlanError``: there is nothing to show yet, as with a bad path in code;
- actions inside a built widget never raise: the Restore button with a refused plan or a
  damaged data file, a bad rule typed in the rules box, a click on a damaged entry of the
  browser show the message in the widget (``message`` / ``rules_message``) and change no
  variable;
- ``EMAExplorer``: the decay slider only offers decays in (0, 1) and the steps slider
  clamps to its minimum, so no bad value can be typed; a bad value given in code
  (``EMAExplorer(decay=1.5)``, ``explorer.model.decay = 1.5``) raises an error that is
  both a ``ckptwidgets.PlanError`` (as ``ema_trace`` raises) and a ``TraitError`` (as
  ipywidgets' validators raise), naming the trait and the value.

Unreadable files: the tests run as root, where ``chmod 000`` stops nothing. The closest
equivalents are used: a directory where the ``.index`` or data file should be, and a FIFO
(which used to block ``open_checkpoint`` forever). The ``chmod 000`` row runs only when
the tests do not run as root.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

import numpy as np
import pytest
import tensorflow as tf
from traitlets import TraitError

import ckptwidgets
from ckptwidgets import (
    CheckpointError,
    CheckpointNotFoundError,
    CorruptCheckpointError,
    PlanError,
    RestoreError,
    open_checkpoint,
    plan_restore,
    restore,
)
from ckptwidgets.ema import ema_trace

from conftest import save_graph_checkpoint

v1_ = tf.compat.v1
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


# --- what a row builds ------------------------------------------------------------------


@dataclass
class Bad:
    """One bad input, built.

    ``action``: ``open`` (``open_checkpoint(path)``), ``read`` (``open_checkpoint(path).read(key)``),
    ``getitem`` (``ckpt[key]``), ``plan`` (``plan_restore``), ``restore`` (``plan_restore`` then
    ``restore``), ``ema`` (``ema_trace(**ema)``), ``code`` (``plan.to_code(style)``).
    ``error`` None means the input is accepted; ``needles`` must all be in the message.
    """

    action: str
    error: type | None
    needles: list
    path: str | None = None
    key: str | None = None
    variables: object = None
    rules: dict | None = None
    session: object = None
    assign: list = field(default_factory=list)  # (variable name, key) edits after planning
    ema: dict = field(default_factory=dict)
    style: str | None = None
    expect_values: dict | None = None  # accepted restores: name -> value after
    cleanup: list = field(default_factory=list)
    snapshot_session: object = None  # reads graph variables when ``session`` is not given to the call

    def watched(self):
        """``{name: variable}`` whose values must not change on an error."""
        if isinstance(self.variables, dict):
            return {n: v for n, v in self.variables.items() if isinstance(v, tf.Variable)}
        if isinstance(self.variables, (list, tuple)):
            return {f"#{i}": v for i, v in enumerate(self.variables) if isinstance(v, tf.Variable)}
        return {}

    def values(self):
        watched = self.watched()
        session = self.session or self.snapshot_session
        if session is not None:
            return dict(zip(watched, session.run(list(watched.values()))))
        return {n: v.numpy() for n, v in watched.items()}


class Env:
    """Builds the files of one row in ``tmp_path``."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path

    def base(self, folder="m"):
        """Scenario 0 (``v1`` = [1.0], ``v2`` = [2.0]): the four files a Saver writes."""
        return save_graph_checkpoint(self.tmp / folder / "my_test_model.ckpt", {"v1": [1.0], "v2": [2.0]})

    @staticmethod
    def index(prefix):
        return prefix + ".index"

    @staticmethod
    def data(prefix):
        return prefix + ".data-00000-of-00001"

    @staticmethod
    def rewrite(path, change):
        with open(path, "rb") as f:
            buf = bytearray(f.read())
        buf = change(buf)
        with open(path, "wb") as f:
            f.write(bytes(buf))

    def flip(self, path, byte, bit=0):
        def change(buf):
            buf[byte] ^= 1 << bit
            return buf

        self.rewrite(path, change)


def eager(**values):
    """Eager variables named as the keys, holding sentinel values (never the checkpoint's)."""
    return {name: tf.Variable(value, name=name) for name, value in values.items()}


def graph(**values):
    """Graph-mode resource variables (initialised) and their session."""
    g = tf.Graph()
    with g.as_default():
        variables = {name: v1_.Variable(value, name=name) for name, value in values.items()}
        init = v1_.global_variables_initializer()
    sess = v1_.Session(graph=g)
    sess.run(init)
    return variables, sess


def fifo_guard(path):
    """Open ``path`` for writing from another process after a while, so that a regression
    fails instead of hanging (TensorFlow's file read holds the GIL: a thread cannot help)."""
    code = (
        "import os, sys, time\n"
        "time.sleep(15)\n"
        "while True:\n"
        "    try:\n"
        "        os.close(os.open(sys.argv[1], os.O_WRONLY | os.O_NONBLOCK))\n"
        "    except OSError:\n"
        "        pass\n"
        "    time.sleep(1)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)])

    def stop():
        proc.kill()
        proc.wait()

    return stop


# --- the table ----------------------------------------------------------------------------

CASES = {}


def case(id_, *, widget="message", marks=()):
    """Register a row. ``widget``: how the widgets show it (see ``test_bad_input_in_widgets``)."""

    def register(build):
        CASES[id_] = (build, widget, marks)
        return build

    return register


# Paths.


@case("missing-path")
def _(env):
    path = str(env.tmp / "nope.ckpt")
    return Bad("open", CheckpointNotFoundError, [path, "No checkpoint"], path=path)


@case("missing-path-with-a-typo")
def _(env):
    prefix = env.base()
    path = prefix.replace("my_test_model", "my_test_modle")
    return Bad("open", CheckpointNotFoundError, [path, "Did you mean", "'my_test_model.ckpt'"], path=path)


@case("path-not-a-string", widget=None)
def _(env):
    return Bad("open", CheckpointNotFoundError, ["str or os.PathLike", "int", "42"], path=42)


@case("empty-folder")
def _(env):
    folder = env.tmp / "empty"
    folder.mkdir()
    return Bad("open", CheckpointNotFoundError, [str(folder), "no checkpoint"], path=str(folder))


@case("folder-checkpoint-file-points-nowhere")
def _(env):
    prefix = env.base()
    for path in (env.index(prefix), env.data(prefix)):
        os.remove(path)
    folder = os.path.dirname(prefix)
    return Bad("open", CheckpointNotFoundError, [folder, repr(prefix), "'checkpoint' file", "moved or deleted"],
               path=folder)


@case("folder-with-two-checkpoints-and-no-checkpoint-file")
def _(env):
    prefix = env.base()
    folder = os.path.dirname(prefix)
    for name in os.listdir(folder):
        if name.startswith("my_test_model"):
            shutil.copy(os.path.join(folder, name), os.path.join(folder, name.replace("my_test_model", "other")))
    os.remove(os.path.join(folder, "checkpoint"))
    return Bad("open", CheckpointNotFoundError, [folder, "2 checkpoints", "pass one prefix"], path=folder)


@case("index-path-is-accepted", widget="accepted")
def _(env):
    prefix = env.base()
    return Bad("open", None, [], path=env.index(prefix))


@case("meta-path")
def _(env):
    prefix = env.base()
    path = prefix + ".meta"
    return Bad("open", CheckpointNotFoundError, [path, "MetaGraph", f"prefix {prefix!r}"], path=path)


@case("data-path")
def _(env):
    prefix = env.base()
    return Bad("open", CheckpointNotFoundError, [env.data(prefix), "data shard", f"prefix {prefix!r}"], path=env.data(prefix))


# Damaged index.


@case("zero-length-index")
def _(env):
    prefix = env.base()
    env.rewrite(env.index(prefix), lambda buf: b"")
    return Bad("open", CorruptCheckpointError, [env.index(prefix), "empty"], path=prefix)


@case("truncated-index")
def _(env):
    prefix = env.base()
    env.rewrite(env.index(prefix), lambda buf: buf[: len(buf) // 2])
    return Bad("open", CorruptCheckpointError, [env.index(prefix)], path=prefix)


@case("flipped-bit-in-index")
def _(env):
    prefix = env.base()
    env.flip(env.index(prefix), 8, 0)  # the header entry's version: the block's crc32c no longer matches
    # Whether open or restore notices (crc32c checks are TensorFlow's), the restore fails naming the index.
    return Bad("restore", CorruptCheckpointError, [env.index(prefix)], path=prefix, variables=eager(v1=[5.0], v2=[6.0]))


@case("flipped-bit-in-index-key")
def _(env):
    prefix = env.base()
    env.flip(env.index(prefix), 12, 3)  # the first key's first byte: 'v1' -> '~1' (and 'v2' -> '~2')
    return Bad("open", CorruptCheckpointError, [env.index(prefix)], path=prefix)


@case("flipped-bit-in-index-magic")
def _(env):
    prefix = env.base()
    env.flip(env.index(prefix), os.path.getsize(env.index(prefix)) - 1, 7)
    return Bad("open", CorruptCheckpointError, [env.index(prefix), "magic"], path=prefix)


@case("random-bytes-as-index")
def _(env):
    prefix = str(env.tmp / "random.ckpt")
    with open(env.index(prefix), "wb") as f:
        f.write(np.random.default_rng(0).bytes(300))
    return Bad("open", CorruptCheckpointError, [env.index(prefix)], path=prefix)


@case("text-file-as-index")
def _(env):
    prefix = str(env.tmp / "notes.ckpt")
    with open(env.index(prefix), "w") as f:
        f.write("These are my notes, not a checkpoint.\n" * 5)
    return Bad("open", CorruptCheckpointError, [env.index(prefix), "not a checkpoint index"], path=prefix)


@case("a-file-that-is-no-checkpoint")
def _(env):
    path = str(env.tmp / "README.txt")
    with open(path, "w") as f:
        f.write("hello\n")
    return Bad("open", CorruptCheckpointError, [path, "not a checkpoint prefix"], path=path)


# Damaged bookkeeping files: the .meta is never read; the 'checkpoint' file only to find the prefix.


@case("flipped-bit-in-meta-is-harmless", widget="accepted")
def _(env):
    prefix = env.base()
    env.flip(prefix + ".meta", 40, 2)
    return Bad("restore", None, [], path=prefix, variables=eager(v1=[5.0], v2=[6.0]),
               expect_values={"v1": [1.0], "v2": [2.0]})


@case("random-bytes-as-checkpoint-file")
def _(env):
    prefix = env.base()
    folder = os.path.dirname(prefix)
    with open(os.path.join(folder, "checkpoint"), "wb") as f:
        f.write(b"\xff\xfe" + np.random.default_rng(1).bytes(100))
    return Bad("open", CorruptCheckpointError, [folder, "'checkpoint' file"], path=folder)


# Damaged data.


@case("truncated-data-restore")
def _(env):
    prefix = env.base()
    env.rewrite(env.data(prefix), lambda buf: buf[:4])  # v1 still readable, v2 cut
    return Bad("restore", CorruptCheckpointError, [env.data(prefix), "'v2'", "Nothing was restored"],
               path=prefix, variables=eager(v1=[5.0], v2=[6.0]))


@case("truncated-data-restore-graph")
def _(env):
    prefix = env.base()
    env.rewrite(env.data(prefix), lambda buf: buf[:4])
    variables, sess = graph(v1=[5.0], v2=[6.0])
    return Bad("restore", CorruptCheckpointError, [env.data(prefix), "'v2'", "Nothing was restored"],
               path=prefix, variables=variables, session=sess, cleanup=[sess.close])


@case("truncated-data-read", widget="selection")
def _(env):
    prefix = env.base()
    env.rewrite(env.data(prefix), lambda buf: buf[:4])
    return Bad("read", CorruptCheckpointError, ["'v2'", prefix, env.data(prefix)], path=prefix, key="v2")


@case("flipped-bit-in-data")
def _(env):
    prefix = env.base()
    env.flip(env.data(prefix), 6, 1)  # inside v2's float: its crc32c no longer matches
    return Bad("restore", CorruptCheckpointError, [env.data(prefix), "'v2'", "Nothing was restored"],
               path=prefix, variables=eager(v1=[5.0], v2=[6.0]))


@case("flipped-bit-in-data-read", widget="selection")
def _(env):
    prefix = env.base()
    env.flip(env.data(prefix), 6, 1)
    return Bad("read", CorruptCheckpointError, ["'v2'", prefix], path=prefix, key="v2")


@case("random-bytes-as-data")
def _(env):
    prefix = env.base()
    env.rewrite(env.data(prefix), lambda buf: np.random.default_rng(2).bytes(len(buf)))
    return Bad("restore", CorruptCheckpointError, [env.data(prefix), "Nothing was restored"],
               path=prefix, variables=eager(v1=[5.0], v2=[6.0]))


@case("missing-data-file")
def _(env):
    prefix = env.base()
    os.remove(env.data(prefix))
    return Bad("restore", CorruptCheckpointError, [env.data(prefix), "'v1'", "Nothing was restored"],
               path=prefix, variables=eager(v1=[5.0], v2=[6.0]))


# Unreadable files (root ignores permissions: see the module docstring).


@case("unreadable-index-is-a-directory")
def _(env):
    prefix = str(env.tmp / "dir.ckpt")
    os.makedirs(env.index(prefix))
    return Bad("open", CorruptCheckpointError, [env.index(prefix), "Is a directory"], path=prefix)


@case("unreadable-data-is-a-directory")
def _(env):
    prefix = env.base()
    os.remove(env.data(prefix))
    os.makedirs(env.data(prefix))
    return Bad("restore", CorruptCheckpointError, [env.data(prefix), "Is a directory", "Nothing was restored"],
               path=prefix, variables=eager(v1=[5.0], v2=[6.0]))


@case("unreadable-index-is-a-fifo")
def _(env):
    prefix = str(env.tmp / "fifo.ckpt")
    os.mkfifo(env.index(prefix))
    return Bad("open", CorruptCheckpointError, [env.index(prefix), "FIFO"], path=prefix,
               cleanup=[fifo_guard(env.index(prefix))])


@case("unreadable-data-is-a-fifo")
def _(env):
    prefix = env.base()
    os.remove(env.data(prefix))
    os.mkfifo(env.data(prefix))
    return Bad("open", CorruptCheckpointError, [env.data(prefix), "FIFO"], path=prefix,
               cleanup=[fifo_guard(env.data(prefix))])


@case("unreadable-checkpoint-file-is-a-fifo")
def _(env):
    prefix = env.base()
    state = os.path.join(os.path.dirname(prefix), "checkpoint")
    os.remove(state)
    os.mkfifo(state)
    return Bad("open", CorruptCheckpointError, [state, "FIFO"], path=os.path.dirname(prefix), cleanup=[fifo_guard(state)])


@case("unreadable-index-chmod-000",
      marks=[pytest.mark.skipif(IS_ROOT, reason="root reads a chmod 000 file; the directory and FIFO rows stand in")])
def _(env):
    prefix = env.base()
    os.chmod(env.index(prefix), 0)
    return Bad("open", CorruptCheckpointError, [env.index(prefix)], path=prefix)


@case("unknown-key-getitem", widget="selection")
def _(env):
    prefix = env.base()
    return Bad("getitem", KeyError, ["'v3'", prefix, "Did you mean"], path=prefix, key="v3")


# Plans that cannot be restored: refused before any variable changes.


@case("shape-mismatch")
def _(env):
    return Bad("restore", RestoreError, ["shape_mismatch", "'v1'", "[2]", "[1]"], path=env.base(),
               variables=eager(v1=[5.0, 5.0], v2=[6.0]))


@case("shape-mismatch-graph-that-tensorflow-lets-through")
def _(env):
    variables, sess = graph(v1=[5.0, 5.0, 5.0, 5.0], v2=[6.0])
    return Bad("restore", RestoreError, ["'v1'", "[4]", "[1]", "silently"], path=env.base(),
               variables=variables, session=sess, cleanup=[sess.close])


@case("dtype-mismatch")
def _(env):
    return Bad("restore", RestoreError, ["dtype_mismatch", "'v2'", "float64", "float32"], path=env.base(),
               variables={"v1": tf.Variable([5.0]), "v2": tf.Variable([6.0], dtype=tf.float64)})


@case("missing-key")
def _(env):
    return Bad("restore", RestoreError, ["missing_key", "'v3'", "'x'"], path=env.base(),
               variables={"x": tf.Variable([5.0]), "v2": tf.Variable([6.0])}, rules={"v3": "x"})


@case("one-key-into-two-variables-is-allowed", widget="accepted")
def _(env):
    return Bad("restore", None, [], path=env.base(), variables=eager(a=[5.0], b=[6.0]),
               rules={"v1": "a"}, assign=[("b", "v1")], expect_values={"a": [1.0], "b": [1.0]})


@case("one-variable-mapped-twice")
def _(env):
    shared = tf.Variable([5.0])
    return Bad("restore", RestoreError, ["duplicate_variable", "'a'", "'b'", "'v1'", "'v2'"], path=env.base(),
               variables={"a": shared, "b": shared}, rules={"v1": "a", "v2": "b"})


@case("rules-make-two-keys-collide-in-one-variable")
def _(env):
    return Bad("restore", RestoreError, ["duplicate_variable", "'w'", "'v1'", "'v2'"], path=env.base(),
               variables={"w": tf.Variable([5.0])}, rules={"v1": "w", "v2": "w"})


@case("two-variables-with-one-name")
def _(env):
    return Bad("restore", RestoreError, ["duplicate_variable", "'v1'", "2 different variables"], path=env.base(),
               variables=[tf.Variable([5.0], name="v1"), tf.Variable([6.0], name="v1")])


@case("graph-variables-without-a-session", widget=None)
def _(env):
    variables, sess = graph(v1=[5.0])
    return Bad("restore", RestoreError, ["session"], path=env.base(), variables=variables, session=None,
               snapshot_session=sess, cleanup=[sess.close])


# Plans that cannot be made.


@case("target-is-a-tensor", widget="raises")
def _(env):
    return Bad("plan", PlanError, ["item 0", "EagerTensor", "not a variable"], path=env.base(),
               variables=[tf.constant([5.0])])


@case("target-is-a-string", widget="raises")
def _(env):
    return Bad("plan", PlanError, ["variables['v1']", "str", "not a variable"], path=env.base(), variables={"v1": "v1"})


@case("target-is-a-numpy-array", widget="raises")
def _(env):
    return Bad("plan", PlanError, ["item 1", "ndarray", "not a variable"], path=env.base(),
               variables=[tf.Variable([5.0], name="v1"), np.zeros(1)])


@case("rule-target-not-in-the-plan", widget="rules_message")
def _(env):
    outsider = tf.Variable([5.0], name="outsider")
    return Bad("plan", PlanError, ["Rule 'v1'", "names no variable of the plan"], path=env.base(),
               variables=eager(v2=[6.0]), rules={"v1": outsider})


@case("rule-maps-a-name-to-a-scope", widget="rules_message")
def _(env):
    return Bad("plan", PlanError, ["'v1'", "'w/'", "scope"], path=env.base(), variables=eager(w=[5.0]),
               rules={"v1": "w/"})


@case("empty-variable-list", widget="raises")
def _(env):
    return Bad("plan", PlanError, ["empty"], path=env.base(), variables=[])


@case("unknown-code-style", widget=None)
def _(env):
    return Bad("code", PlanError, ["'pickle'", "'saver'"], path=env.base(), variables=eager(v1=[5.0]), style="pickle")


# EMA arguments.


@case("decay-above-one", widget="ema")
def _(env):
    return Bad("ema", PlanError, ["decay", "1.5"], ema={"values": [10.0], "decay": 1.5})


@case("decay-one", widget="ema")
def _(env):
    return Bad("ema", PlanError, ["decay", "1.0"], ema={"values": [10.0], "decay": 1.0})


@case("decay-zero", widget="ema")
def _(env):
    return Bad("ema", PlanError, ["decay", "0.0"], ema={"values": [10.0], "decay": 0.0})


@case("decay-negative", widget="ema")
def _(env):
    return Bad("ema", PlanError, ["decay", "-0.5"], ema={"values": [10.0], "decay": -0.5})


@case("decay-that-is-one-in-float32", widget="ema")
def _(env):
    return Bad("ema", PlanError, ["decay", "float32", "0.99999999"], ema={"values": [10.0], "decay": 0.99999999})


@case("negative-steps", widget="ema")
def _(env):
    return Bad("ema", PlanError, ["steps", "-5"], ema={"values": 10.0, "steps": -5})


@case("zero-steps", widget="ema")
def _(env):
    return Bad("ema", PlanError, ["steps", "0"], ema={"values": 10.0, "steps": 0})


def params():
    out = []
    for id_, (build, widget, marks) in CASES.items():
        out.append(pytest.param(build, widget, id=id_, marks=list(marks)))
    return out


# --- the public functions -----------------------------------------------------------------


def call_public(bad: Bad):
    if bad.action == "open":
        return open_checkpoint(bad.path)
    if bad.action == "read":
        return open_checkpoint(bad.path).read(bad.key)
    if bad.action == "getitem":
        return open_checkpoint(bad.path)[bad.key]
    if bad.action == "ema":
        return ema_trace(**bad.ema)
    plan = plan_restore(bad.path, bad.variables, rules=bad.rules)
    for name, key in bad.assign:
        plan.assign(name, key)
    if bad.action == "plan":
        return plan
    if bad.action == "code":
        return plan.to_code(bad.style)
    return restore(plan, session=bad.session)


def message_of(error) -> str:
    if isinstance(error, KeyError) and error.args:  # str(KeyError) is the repr of its argument
        return str(error.args[0])
    return str(error)


@pytest.fixture
def built(tmp_path):
    made = []

    def build(builder):
        bad = builder(Env(tmp_path))
        made.append(bad)
        return bad

    yield build
    for bad in made:
        for cleanup in bad.cleanup:
            cleanup()


def test_table_is_big_enough():
    errors = [id_ for id_, (build, _w, _m) in CASES.items()]
    assert len(errors) >= 20


@pytest.mark.parametrize("builder, widget", params())
def test_bad_input(builder, widget, built):
    bad = built(builder)
    before = bad.values()
    if bad.error is None:
        result = call_public(bad)
        if bad.expect_values is not None:
            after = bad.values()
            assert {n: after[n].tolist() for n in bad.expect_values} == bad.expect_values
        else:
            assert isinstance(result, ckptwidgets.Checkpoint) and [e.key for e in result.entries] == ["v1", "v2"]
        return
    with pytest.raises(Exception) as info:
        call_public(bad)
    error = info.value
    # A KeyError only for ckpt[key], as documented; everything else is the package's.
    if bad.action == "getitem":
        assert type(error) is KeyError
    else:
        assert isinstance(error, CheckpointError), f"{type(error).__name__}: {error}"
    assert isinstance(error, bad.error), f"expected {bad.error.__name__}, got {type(error).__name__}: {error}"
    text = message_of(error)
    missing = [n for n in bad.needles if n not in text]
    assert not missing, f"message lacks {missing}: {text}"
    assert "Traceback" not in text and "\n  File " not in text
    after = bad.values()
    assert all(np.array_equal(before[n], after[n]) for n in before), (before, after)


def test_the_table_can_fail(built, tmp_path):
    """The checks above are not vacuous: a wrong needle or a changed variable is noticed."""
    bad = built(CASES["shape-mismatch"][0])
    with pytest.raises(RestoreError) as info:
        call_public(bad)
    assert "'v1'" in str(info.value) and "not-in-the-message" not in str(info.value)
    before = bad.values()
    bad.variables["v2"].assign([1.5])
    assert not all(np.array_equal(before[n], bad.values()[n]) for n in before)


# --- the widgets ----------------------------------------------------------------------------


def shown_children(widget):
    """The widget's children without its hidden stylesheet (an ``HTML`` with ``display: none``)."""
    return [child for child in widget.children if child.layout.display != "none"]


def _widgets_for(bad: Bad, widget: str):
    """Exercise the widgets with ``bad``; return the text they show (never raising)."""
    from ckptwidgets import CheckpointBrowser, VariableMapper

    if widget == "message" and bad.action in ("open", "read", "getitem"):
        browser = CheckpointBrowser(bad.path)
        assert browser.model.checkpoint is None and shown_children(browser) == [browser.message]
        mapper = VariableMapper(bad.path, [tf.Variable([5.0], name="v1")])
        assert mapper.plan is None and shown_children(mapper) == [mapper.message]
        assert mapper.message.value == browser.message.value
        assert browser.message.layout.display is None  # visible
        return browser.message.value
    if widget == "selection":
        browser = CheckpointBrowser(bad.path)
        assert browser.model.checkpoint is not None
        browser.model.selected = bad.key
        assert browser.model.stats is None
        return browser.message.value
    if widget == "message" and bad.action == "restore":
        mapper = VariableMapper(bad.path, bad.variables, session=bad.session, rules=bad.rules)
        if mapper.plan is None:  # the checkpoint could not even be opened: the message says why
            assert shown_children(mapper) == [mapper.message]
            return mapper.message.value
        for name, key in bad.assign:
            mapper.plan.assign(name, key)
        mapper.restore_button.click()  # the button: must not raise
        assert mapper.model.report is None
        assert mapper.message.style.text_color == "#b00020" and mapper.message.layout.display is None
        return mapper.message.value
    if widget == "rules_message":
        mapper = VariableMapper(bad.path, bad.variables, session=bad.session, rules=bad.rules)
        assert mapper.plan is not None and mapper.model.rules == {}
        return mapper.rules_message.value
    raise AssertionError(f"no widget route for {widget!r}")


WIDGET_ROUTES = [p for p in params() if p.values[1] in ("message", "selection", "rules_message")]


@pytest.mark.parametrize("builder, widget", WIDGET_ROUTES)
def test_bad_input_in_widgets(builder, widget, built):
    bad = built(builder)
    before = bad.values()
    shown = _widgets_for(bad, widget)
    missing = [n for n in bad.needles if n not in shown]
    assert not missing, f"the widget's message lacks {missing}: {shown!r}"
    assert "Traceback" not in shown
    after = bad.values()
    assert all(np.array_equal(before[n], after[n]) for n in before), (before, after)


@pytest.mark.parametrize("builder, widget", [p for p in params() if p.values[1] == "raises"])
def test_not_variables_make_the_mapper_raise_the_package_error(builder, widget, built):
    from ckptwidgets import VariableMapper

    bad = built(builder)
    with pytest.raises(PlanError) as info:
        VariableMapper(bad.path, bad.variables)
    assert all(n in str(info.value) for n in bad.needles), str(info.value)


@pytest.mark.parametrize("builder, widget", [p for p in params() if p.values[1] == "accepted"])
def test_accepted_inputs_work_in_widgets(builder, widget, built):
    from ckptwidgets import CheckpointBrowser, VariableMapper

    bad = built(builder)
    browser = CheckpointBrowser(bad.path)
    assert browser.message.value == "" and [e.key for e in browser.model.matches] == ["v1", "v2"]
    if bad.expect_values is not None:
        mapper = VariableMapper(bad.path, bad.variables, rules=bad.rules)
        for name, key in bad.assign:
            mapper.plan.assign(name, key)
        mapper.restore_button.click()
        assert mapper.model.report is not None, mapper.message.value
        after = bad.values()
        assert {n: after[n].tolist() for n in bad.expect_values} == bad.expect_values


def test_bad_rule_typed_in_the_rules_box_is_a_message(built):
    from ckptwidgets import VariableMapper

    bad = built(CASES["shape-mismatch"][0])
    variables = eager(w=[5.0])
    mapper = VariableMapper(bad.path, variables)
    plan = mapper.plan
    for typed, needles in [("v1 -> w/", ["line 1", "'v1 -> w/'"]), ("v1 w", ["line 1", "'v1 w'", "->"]),
                           ("# fine\nv1 -> w\nv1 -> x", ["line 3", "v1"])]:
        mapper.rules_box.value = typed  # as typed in the box: must not raise
        shown = mapper.rules_message.value
        assert all(n in shown for n in needles), shown
        assert mapper.plan is plan  # the plan in use is kept until the rules are fixed
    # Rules that make two keys collide in one variable parse, and the problem shows on the row.
    mapper.rules_box.value = "v1 -> w\nv2 -> w"
    assert mapper.rules_message.value == ""
    assert mapper.plan.status("w") == "duplicate_variable"
    mapper.restore_button.click()
    assert "'w'" in mapper.message.value and "'v1'" in mapper.message.value
    assert variables["w"].numpy().tolist() == [5.0]


@pytest.mark.parametrize("builder, widget", [p for p in params() if p.values[1] == "ema"])
def test_bad_ema_arguments_in_the_explorer(builder, widget, built):
    """The slider cannot hold a bad decay; a bad one from code is refused with the value."""
    from ckptwidgets import EMAExplorer

    bad = built(builder)
    name = "decay" if "decay" in bad.ema else "steps"
    value = bad.ema[name]
    explorer = EMAExplorer(steps=50)
    png = explorer.model.png
    assert all(0.0 < v < 1.0 for _, v in explorer.decay_slider.options)
    if name == "steps":
        explorer.steps_slider.value = value  # typed in the slider's box: clamped, no error
        assert explorer.steps_slider.value == 1 and explorer.model.steps == 1
        assert explorer.message.value == ""
    with pytest.raises(TraitError, match=name) as info:
        EMAExplorer(**{name: value})
    assert repr(value) in str(info.value) or str(value) in str(info.value)
    assert isinstance(info.value, PlanError)
    with pytest.raises(PlanError, match=name):
        setattr(explorer.model, name, value)
    assert getattr(explorer.model, name) != value and explorer.model.trace is not None
    if name == "decay":
        assert explorer.model.png == png and explorer.decay_slider.value == explorer.model.decay


@pytest.mark.parametrize("typed", [float("inf"), float("-inf"), float("nan")])
def test_non_finite_target_typed_is_a_message(typed):
    from ckptwidgets import EMAExplorer

    explorer = EMAExplorer(steps=50)
    png = explorer.model.png
    explorer.target_box.value = typed  # as typed in the box: must not raise
    assert "target must be a finite number" in explorer.message.value and explorer.model.target == 10.0
    assert explorer.message.layout.display is None and explorer.model.png == png
    explorer.target_box.value = 5.0  # a good number clears the message
    assert explorer.message.value == "" and explorer.model.target == 5.0
    explorer.model.target = 7.0  # and the box follows the model
    assert explorer.target_box.value == 7.0
