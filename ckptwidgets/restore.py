"""Perform a :class:`~ckptwidgets.plan.RestorePlan`: all or nothing.

Every mapped tensor is read first, its shape checked against the index, and only then
assigned; a failed read changes no variable. A TF checkpoint is read with ``RestoreV2``,
the op ``Saver`` uses (its source has a ``restore_prefix``); any other source's values come
through its ``read_many`` (:mod:`ckptwidgets.sources`) and are assigned the same way.

A plan whose target is a ``torch.nn.Module`` (``plan.target == "torch"``) needs no
TensorFlow: its values come through the source's ``read_many`` (a TF bundle included), each
assignment's layout transform is applied, and :mod:`ckptwidgets._torch_restore` copies them
into the module's tensors under ``torch.no_grad()``, all or nothing. A plan with transforms
(``plan.transforms``) into TF or Keras variables reads through ``read_many`` too, applies them,
and assigns as any other.

A part of a partitioned variable reads its slice of the full key: ``RestoreV2`` is given
the part's ``shape_and_slices`` spec (``"10 3 0,4:0,3"``, as ``Saver`` gives it), so TF
assembles the slice from however the checkpoint was partitioned; through ``read_many``
the full tensor is read once and each part takes its slice of it.

Example
-------
>>> import os, tempfile
>>> import tensorflow as tf
>>> import ckptwidgets
>>> path = os.path.join(tempfile.mkdtemp(), "my_test_model.ckpt")
>>> path = tf.compat.v1.train.Saver({"v1": tf.Variable([1.0])}).save(None, path)
>>> v1, extra = tf.Variable([0.0], name="v1"), tf.Variable([5.0], name="extra")
>>> report = ckptwidgets.restore(ckptwidgets.plan_restore(path, [v1, extra]))
>>> report.restored, report.left_alone, v1.numpy()
([('v1', 'v1')], ['extra'], array([1.], dtype=float32))

In graph mode pass the session: ``ckptwidgets.restore(plan, session=sess)``.
"""
from __future__ import annotations

import math
import re
import threading
import time
import weakref
from dataclasses import dataclass, field

import numpy as np

from ._text.format import count_of, format_shape
from ._tf.quiet import import_tensorflow
from .errors import CheckpointError, CorruptCheckpointError, PlanError, RestoreError
from .plan import RestorePlan

__all__ = ["restore", "RestoreReport", "CHUNK_BYTES"]

tf = None  # TensorFlow, imported by the first restore (restoring needs it; reading does not)
# The graph-mode ops built for a plan, per plan, kept until the plan's next edit.
_BUILT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

#: With a ``progress`` callback, tensors are read in chunks of about this many bytes.
CHUNK_BYTES = 64 << 20
#: The report shows the values of this many restored variables, each of at most
#: PREVIEW_ELEMENTS elements (read back after the restore).
PREVIEW_VARIABLES = 10
PREVIEW_ELEMENTS = 8


@dataclass
class RestoreReport:
    """What :func:`restore` did.

    Attributes
    ----------
    checkpoint : str
        The checkpoint prefix read.
    restored : list of (str, str)
        ``(variable name, checkpoint key)`` for every variable restored.
    initialized : list of str
        Unmapped variables whose initializer was run (graph mode, ``initialize_unmapped=True``).
    left_alone : list of str
        Unmapped variables not touched (eager ones keep their current values).
    seconds : float
    nbytes : int
        Bytes of tensor data read.
    values : dict
        ``{variable name: numpy value}`` read back from the variables after the restore, for
        the first :data:`PREVIEW_VARIABLES` restored variables of at most
        :data:`PREVIEW_ELEMENTS` elements: what a learner wants to see (``[1.]``), never a
        copy of a large tensor.
    """

    checkpoint: str
    restored: list = field(default_factory=list)
    initialized: list = field(default_factory=list)
    left_alone: list = field(default_factory=list)
    seconds: float = 0.0
    nbytes: int = 0
    values: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"<RestoreReport {self.checkpoint!r}: {len(self.restored)} restored, "
            f"{len(self.initialized)} initialized, {len(self.left_alone)} left alone, "
            f"{self.nbytes} bytes in {self.seconds:.3f} s>"
        )

    def __str__(self) -> str:
        def names(items, limit=10):
            shown = ", ".join(map(repr, items[:limit]))
            return shown + (f" and {len(items) - limit} more" if len(items) > limit else "") or "none"

        lines = [
            f"Restored {count_of(len(self.restored), 'variable')} from {self.checkpoint!r} "
            f"({self.nbytes} bytes, {self.seconds:.3f} s)"
        ]
        for name, key in self.restored[:10]:
            value = self.values.get(name)
            shown = "" if value is None else f" = {_plain(value)}"
            lines.append(f"  {name!r} <- {key!r}{shown}")
        if len(self.restored) > 10:
            lines.append(f"  ... and {len(self.restored) - 10} more")
        lines.append(f"Initialized: {names(self.initialized)}")
        lines.append(f"Left alone: {names(self.left_alone)}")
        return "\n".join(lines)


def _plain(value) -> str:
    """A small array as numpy prints it, without a dtype wrapper: ``[1.]``, ``0.099999905``."""
    return str(value.item() if value.ndim == 0 and value.dtype.kind in "iub" else value)


def _shape(item, ckpt=None) -> tuple:
    """The shape a variable receives: the entry's, a part's slice of it, or what its transform
    makes of its entries (``ckpt`` finds the extra keys' entries)."""
    if item.transform is not None:
        shapes = [item.entry.shape] + [ckpt.find(k).shape for k in item.extra_keys] if ckpt else [item.entry.shape]
        # Without ``ckpt`` a transform of several keys is taken to keep its first key's shape (the
        # preview's size only); the plan's checks compared the real one with the variable's.
        return item.transform.shape(*shapes) if len(shapes) == item.transform.arity else item.entry.shape
    part = item[3].part
    return item[2].shape if part is None else part.shape


def _spec(item) -> str:
    """``RestoreV2``'s ``shape_and_slices`` for an item: the whole tensor, or a part's slice."""
    part = item[3].part
    return "" if part is None else part.spec


def _nbytes(item) -> int:
    """Bytes an item receives (a part: its share of the entry's)."""
    part, nbytes = item[3].part, item[2].nbytes
    return nbytes if part is None else round(nbytes * part.fraction)


def _preview(items, session) -> dict:
    """Read back the values of the first few small restored variables."""
    small = [
        (item[0], item[3].tf_variable)
        for item in items
        if math.prod(_shape(item)) <= PREVIEW_ELEMENTS and item[2].dtype != "string"
    ][:PREVIEW_VARIABLES]
    if not small:
        return {}
    names, variables = zip(*small)
    if session is None:
        values = [v.numpy() for v in variables]
    else:
        values = session.run(list(variables))
    return {name: np.asarray(value) for name, value in zip(names, values)}


def _chunks(items, progress):
    """One chunk (the fast path, as Saver) without progress; else chunks of ~CHUNK_BYTES."""
    if progress is None or not items:
        return [items] if items else []
    chunks, current, size = [], [], 0
    for item in items:
        current.append(item)
        size += _nbytes(item)
        if size >= CHUNK_BYTES:
            chunks.append(current)
            current, size = [], 0
    if current:
        chunks.append(current)
    return chunks


def _read_op(prefix, items):
    """``RestoreV2`` of the items' keys (a part: its slice) from a TF bundle prefix: the fast path."""
    with tf.device("/cpu:0"):  # as Saver: read on the host, assign copies to the variable's device
        return tf.raw_ops.RestoreV2(
            prefix=prefix,
            tensor_names=[item[1] for item in items],
            shape_and_slices=[_spec(item) for item in items],
            dtypes=[tf.as_dtype(item[2].dtype) for item in items],
        )


_TF_NOISE = re.compile(r"\{\{[^}]*\}\}|\[Op:\w+\]|\[\[.*?\]\]")


def _tf_reason(error) -> str:
    """The useful line of a TensorFlow error (graph-mode errors wrap it in node tracebacks)."""
    text = getattr(error, "message", None) or str(error)
    for line in text.splitlines():
        line = _TF_NOISE.sub("", line).strip()
        if not line or line.startswith(("Graph execution error", "Detected at node", "Node:", "File ")):
            continue
        if "root error(s) found" in line:
            continue
        return re.sub(r"^\(\d+\)\s*", "", line)
    return type(error).__name__


def _corrupt(plan, chunk_items, error) -> CorruptCheckpointError:
    """Name the data file(s) and, by reading the keys one by one, the damaged key."""
    ckpt = plan.checkpoint
    data = ckpt.files[1:]
    where = f"data file {data[0]!r}" if len(data) == 1 else f"data files {data!r}" if data else "no data file found"
    culprit = ""
    for name, key in ((item.name, item.key) for item in chunk_items):
        try:
            ckpt.read(key)
        except Exception:  # the one that cannot be read
            culprit = f" Key {key!r} (for variable {name!r}) cannot be read."
            break
    return CorruptCheckpointError(
        f"Cannot read checkpoint {ckpt.prefix!r} ({where}): {_tf_reason(error)}.{culprit} "
        "Nothing was restored: every variable keeps its value."
    )


def _read_after_tf_failed(plan, items, chunks, progress, error) -> list:
    """Every value read through the source, after ``RestoreV2`` failed with ``error``.

    TensorFlow's reader refuses a few things ours reads: a slice of a partitioned tensor
    whose dtype it cannot copy across stored slices ("Dtype half not supported"). Damage
    (what made TF fail, usually) is the CorruptCheckpointError naming the key.
    """
    try:
        return _read_through_source(plan, items, chunks, progress)
    except CheckpointError:
        raise _corrupt(plan, items, error) from None


class _Ticker:
    """Progress from inside a graph-mode run (called on a TensorFlow thread)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.progress, self.done, self.total, self.error = None, 0, 0, None

    def __call__(self, count):
        with self.lock:
            self.done += int(count)
            try:
                self.progress(self.done, self.total)
            except BaseException as error:  # kept, re-raised by restore() on the main thread
                self.error = error
                raise
        return count


def _assign_graph(info, value):
    var = info.tf_variable
    if info.ref:
        return tf.compat.v1.assign(var, value, validate_shape=var.shape.is_fully_defined()).op
    if type(var).__name__ == "ResourceVariable":  # the raw op: no extra reads, as Saver
        return tf.raw_ops.AssignVariableOp(resource=var.handle, value=value)
    return var.assign(value, read_value=False)


def _built(plan) -> dict:
    """The ops built for ``plan`` at its current revision (a new dict after every edit)."""
    cache = _BUILT.get(plan)
    if cache is None or cache["revision"] != plan.revision:
        cache = _BUILT[plan] = {"revision": plan.revision}
    return cache


def _graph_ops(plan, graph, chunks, ticking):
    """Build (once per plan edit, graph and chunking) the read-then-assign op."""
    key = (tuple(len(c) for c in chunks), ticking)
    cache = _built(plan)
    if key in cache:
        return cache[key]
    ticker = _Ticker() if ticking else None
    try:
        with graph.as_default(), tf.name_scope("ckptwidgets_restore"):
            reads, ticks = [], []
            for chunk in chunks:
                read = _read_op(plan.checkpoint.source.restore_prefix, chunk)
                with tf.device("/cpu:0"):
                    checked = [tf.ensure_shape(t, _shape(item)) for t, item in zip(read, chunk)]
                reads.extend(checked)
                if ticker is not None:
                    with tf.control_dependencies(checked):
                        ticks.append(tf.numpy_function(ticker, [tf.constant(len(chunk), tf.int64)], tf.int64))
            all_read = tf.group(*reads, *ticks, name="all_read")
            with tf.control_dependencies([all_read]):  # no assign starts before every read succeeded
                assigns = [_assign_graph(item[3], t) for item, t in zip((i for c in chunks for i in c), reads)]
            op = tf.group(*assigns, name="assign")
    except RuntimeError as error:  # e.g. "Graph is finalized"
        raise RestoreError(
            f"Cannot add the restore ops to the graph: {error}. Restore before the graph is finalized, "
            "or build a tf.compat.v1.train.Saver(plan.var_list) earlier."
        ) from None
    cache[key] = (op, ticker)
    return cache[key]


def _init_op(plan, graph, unmapped_infos):
    cache = _built(plan)
    if "init" not in cache:
        with graph.as_default():
            cache["init"] = tf.compat.v1.variables_initializer([i.tf_variable for i in unmapped_infos])
    return cache["init"]


def _restore_graph(plan, graph, session, items, chunks, progress, unmapped, initialize_unmapped):
    if session is None:
        raise RestoreError(
            "These are graph-mode variables: pass the session that holds them, "
            "ckptwidgets.restore(plan, session=sess)."
        )
    if session.graph is not graph:
        raise RestoreError("The session given runs another graph than the plan's variables.")
    if chunks and (plan.checkpoint.source.restore_prefix is None or plan.transforms):
        values = _read_through_source(plan, items, chunks, progress)
        op, placeholders = _feed_ops(plan, graph, items)
        session.run(op, feed_dict=dict(zip(placeholders, values)))
    elif chunks:
        op, ticker = _graph_ops(plan, graph, chunks, progress is not None and len(chunks) > 1)
        if ticker is not None:
            ticker.progress, ticker.done, ticker.total, ticker.error = progress, 0, len(items), None
        try:
            session.run(op)
        except tf.errors.OpError as error:
            if ticker is not None and ticker.error is not None:
                raise ticker.error
            op_type = getattr(getattr(error, "op", None), "type", None)
            if op_type in ("RestoreV2", "EnsureShape") or op_type is None:
                values = _read_after_tf_failed(plan, items, chunks, progress, error)
                op, placeholders = _feed_ops(plan, graph, items)
                session.run(op, feed_dict=dict(zip(placeholders, values)))
                return _initialize(plan, graph, session, unmapped, initialize_unmapped)
            raise RestoreError(
                f"Restoring from {plan.checkpoint.prefix!r} failed in {op_type}: {_tf_reason(error)}"
            ) from None
        if progress is not None and ticker is None:
            progress(len(items), len(items))
    return _initialize(plan, graph, session, unmapped, initialize_unmapped)


def _initialize(plan, graph, session, unmapped, initialize_unmapped) -> list:
    if not (initialize_unmapped and unmapped):
        return []
    session.run(_init_op(plan, graph, [plan.infos[n] for n in unmapped]))
    return list(unmapped)


def _read_through_source(plan, items, chunks, progress) -> list:
    """Every value of ``items`` read through the checkpoint's source, shapes checked, in item
    order; a key read by several variables (the parts of a partitioned one) is read once. An
    item with a transform gets ``transform(*values of its keys)``."""
    ckpt, values, done = plan.checkpoint, {}, 0
    for chunk in chunks:
        try:
            keys = [key for key in dict.fromkeys(k for item in chunk for k in item.keys) if key not in values]
            for key, value in ckpt.read_many(keys):
                values[key] = value
        except CheckpointError as error:
            raise CorruptCheckpointError(f"{error} Nothing was restored: every variable keeps its value.") from None
        done += len(chunk)
        if progress is not None:
            progress(done, len(items))
    out = []
    for item in items:
        name, info = item.name, item.info
        for key in item.keys:
            value, entry = values[key], ckpt.find(key)
            if tuple(value.shape) != entry.shape:
                raise CorruptCheckpointError(
                    f"Key {key!r} of checkpoint {ckpt.prefix!r} (for variable {name!r}) read with shape "
                    f"{format_shape(value.shape)} but its index says {format_shape(entry.shape)}. Nothing was restored."
                )
        if item.transform is not None:
            out.append(item.transform(*(values[k] for k in item.keys)))
        else:
            value = values[item.key]
            out.append(value if info.part is None else value[info.part.index])
    return out


def _feed_ops(plan, graph, items):
    """Assign ops fed from placeholders (built once per plan edit), for sources RestoreV2 cannot read."""
    cache = _built(plan)
    if "feed" not in cache:
        try:
            with graph.as_default(), tf.name_scope("ckptwidgets_restore"):
                placeholders = [tf.compat.v1.placeholder(tf.as_dtype(item[2].dtype), _shape(item, plan.checkpoint))
                                for item in items]
                op = tf.group(*[_assign_graph(item[3], p) for item, p in zip(items, placeholders)], name="assign")
        except RuntimeError as error:  # e.g. "Graph is finalized"
            raise RestoreError(
                f"Cannot add the restore ops to the graph: {error}. Restore before the graph is finalized, "
                "or build a tf.compat.v1.train.Saver(plan.var_list) earlier."
            ) from None
        cache["feed"] = (op, placeholders)
    return cache["feed"]


def _restore_eager(plan, items, chunks, progress):
    if plan.checkpoint.source.restore_prefix is None or plan.transforms:  # transforms need the values here
        values = _read_through_source(plan, items, chunks, progress)
        for item, value in zip(items, values):  # every read succeeded: now assign
            item.info.tf_variable.assign(value, read_value=False)
        return
    values, done = [], 0
    for chunk in chunks:
        try:
            read = _read_op(plan.checkpoint.source.restore_prefix, chunk)
        except tf.errors.OpError as error:
            values = _read_after_tf_failed(plan, items, chunks, progress, error)
            for item, value in zip(items, values):  # every read succeeded: now assign
                item.info.tf_variable.assign(value, read_value=False)
            return
        for t, item in zip(read, chunk):
            name, key = item.name, item.key
            if tuple(t.shape) != _shape(item):
                raise CorruptCheckpointError(
                    f"Key {key!r} of checkpoint {plan.checkpoint.prefix!r} (for variable {name!r}) read "
                    f"with shape {format_shape(t.shape)} but its index says {format_shape(_shape(item))}. "
                    "Nothing was restored."
                )
        values.extend(read)
        done += len(chunk)
        if progress is not None:
            progress(done, len(items))
    for item, value in zip(items, values):  # every read succeeded: now assign
        item.info.tf_variable.assign(value, read_value=False)


def _restore_torch(plan, progress, start) -> RestoreReport:
    """A torch module's plan: read everything through the source (no TensorFlow), then copy."""
    from ._torch_restore import copy_into_tensors, tensor_values

    items = plan.assignments
    chunks = _chunks(items, progress)
    if progress is not None:
        progress(0, len(items))
    values = _read_through_source(plan, items, chunks, progress) if items else []
    copy_into_tensors(plan, items, values)
    return RestoreReport(
        checkpoint=plan.checkpoint.prefix,
        restored=[(item.name, item.key) for item in items],
        left_alone=list(plan.unmapped),
        seconds=time.perf_counter() - start,
        nbytes=sum(_nbytes(item) for item in items),
        values=tensor_values(items, PREVIEW_VARIABLES, PREVIEW_ELEMENTS),
    )


def restore(plan, session=None, initialize_unmapped=False, progress=None) -> RestoreReport:
    """Restore every mapped variable of ``plan``, all or nothing.

    Parameters
    ----------
    plan : RestorePlan
    session : tf.compat.v1.Session, optional
        Required for graph-mode variables; unused in eager mode.
    initialize_unmapped : bool
        Graph mode: also run the initializers of the unmapped variables (an already
        initialised one is reset), so that nothing is left uninitialised (scenario 1).
        Eager variables always have a value: they are listed as left alone.
    progress : callable, optional
        ``progress(done, total)`` in tensors, called with ``(0, total)`` first and after each
        chunk of about :data:`CHUNK_BYTES` is read. In graph mode it is called from a
        TensorFlow thread while the session runs.

    Returns
    -------
    RestoreReport

    Raises
    ------
    RestoreError
        The plan has problems (``.problems`` lists them all), or a graph-mode plan got no
        session. Raised before any variable changes.
    CorruptCheckpointError
        A tensor cannot be read (truncated or damaged data file); no variable changed.

    Examples
    --------
    >>> report = restore(plan, session=sess, initialize_unmapped=True)   # doctest: +SKIP
    >>> print(report)                                                    # doctest: +SKIP
    Restored 1 variable from 'my_test_model.ckpt' (4 bytes, 0.003 s)
      'v1' <- 'v1' = [1.]
    Initialized: 'v2'
    Left alone: none
    """
    start = time.perf_counter()
    if not isinstance(plan, RestorePlan):
        raise PlanError(f"restore() takes a RestorePlan (from plan_restore), not {type(plan).__name__}.")
    problems = plan.problems
    if problems:
        lines = "\n".join(f"  - {p.reason}: {p.message}" for p in problems)
        raise RestoreError(
            f"Nothing was restored: the plan for {plan.checkpoint.prefix!r} has "
            f"{count_of(len(problems), 'problem')}:\n{lines}",
            problems,
        )
    if plan.target == "torch":
        return _restore_torch(plan, progress, start)
    try:
        graph = plan.graph
    except PlanError as error:
        raise RestoreError(str(error)) from None
    global tf
    tf = import_tensorflow()
    ckpt = plan.checkpoint
    items = plan.assignments
    unmapped = plan.unmapped
    chunks = _chunks(items, progress)
    if progress is not None:
        progress(0, len(items))
    if graph is None:
        _restore_eager(plan, items, chunks, progress)
        initialized = []
    else:
        initialized = _restore_graph(plan, graph, session, items, chunks, progress, unmapped, initialize_unmapped)
    done = set(initialized)
    seconds = time.perf_counter() - start
    return RestoreReport(
        checkpoint=ckpt.prefix,
        restored=[(item.name, item.key) for item in items],
        initialized=initialized,
        left_alone=[n for n in unmapped if n not in done],
        seconds=seconds,
        nbytes=sum(_nbytes(item) for item in items),
        values=_preview(items, None if graph is None else session),
    )
