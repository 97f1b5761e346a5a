"""Checkpoint surgery that persists: plan a new checkpoint, check it, write it safely.

A :class:`WritePlan` says which output key is made from which input key(s), and how
(copied, cast, averaged); it is checked (collisions, missing keys, shapes that disagree)
and shown (``print(plan)``: the dry run) before anything is written. Plans compose:

>>> plan = plan_write("model.ckpt").strip().promote_ema()                # doctest: +SKIP
>>> print(plan)                                                          # doctest: +SKIP
>>> plan.write("serving.ckpt")                                           # doctest: +SKIP

Operations: :meth:`WritePlan.rename` (``init_from_checkpoint`` rules and explicit pairs),
:meth:`~WritePlan.strip` (kinds, a filter), :meth:`~WritePlan.promote_ema` (each shadow
under its variable's key), :meth:`~WritePlan.cast` (float32 -> float16 / bfloat16), and
plans made by :func:`from_plan` (what a :class:`~ckptwidgets.RestorePlan` maps, under the
variables' names) and :func:`average` (N checkpoints of one model, a float64 mean).
:func:`ckptwidgets.convert.convert` makes a TF2 object-based checkpoint for a model.

Writing goes to the first format of :data:`ckptwidgets.sources.FORMATS` that writes the
output (:func:`ckptwidgets.sources.writer_for`); each streams one tensor at a time into a
temporary name in the destination folder, reads every tensor back (checksum and value), and
only then moves the files into place (:mod:`ckptwidgets.sources._atomic`); the inputs are
never touched. Output is a name-based TF checkpoint (``Saver``, ``load_checkpoint``,
``init_from_checkpoint`` read it: :mod:`ckptwidgets.sources.bundle`); with
``write("net.weights.h5", model=model)``, a Keras 3 weights file laid out for that model
(:mod:`ckptwidgets.sources.keras`), which ``model.load_weights`` takes: the migration path
from a TF1 checkpoint to Keras 3 is ``from_plan(plan_restore(ckpt, model)).write(...)``.

Example
-------
>>> import numpy as np, os, tempfile
>>> from ckptwidgets.sources.arrays import ArraySource
>>> source = ArraySource({"old/w": np.ones(3, np.float32), "old/w/Adam": np.zeros(3, np.float32)})
>>> plan = plan_write(source).strip().rename({"old/": "new/"})
>>> [(item.key, item.sources[0][1], item.op) for item in plan.items]
[('new/w', 'old/w', 'copy')]
>>> report = plan.write(os.path.join(tempfile.mkdtemp(), "out.ckpt"), progress=False)
>>> report.keys
['new/w']
"""
from __future__ import annotations

import difflib
from typing import NamedTuple

from ._text.filter import filter_entries
from ._text.format import count_of, format_shape, human_size, text_table
from ._planning.rules import check_rule, is_root
from .errors import CheckpointError, PlanError
from .reader import open_checkpoint
from .sources._tfkeys import OBJECT_GRAPH_KEY

__all__ = ["WriteItem", "WritePlan", "plan_write", "from_plan", "model_option", "average", "FLOAT_DTYPES", "KEEP_META"]

#: Dtypes ``cast`` and ``average`` treat as floating point.
FLOAT_DTYPES = frozenset({"float16", "bfloat16", "float32", "float64"})
#: ``meta`` entries :meth:`WritePlan.strip` keeps by default: step counters, not optimizer state.
KEEP_META = ("global_step", "save_counter")
_CAST_TARGETS = ("float16", "bfloat16", "float32", "float64")


class WriteItem(NamedTuple):
    """One tensor of the checkpoint to write.

    Attributes
    ----------
    key : str
        Its key in the output.
    sources : tuple of (Checkpoint, str)
        Where its value comes from: one ``(checkpoint, key)`` pair, several for ``"mean"``.
    dtype : str
        Its dtype in the output.
    shape : tuple of int
    op : str
        ``"copy"``, ``"cast"`` (to ``dtype``), ``"mean"`` (of the sources, in float64),
        ``"prune"`` (a TF2 object graph without what names keys the plan leaves out) or
        ``"transform"`` (``transform(*sources)``, then cast to ``dtype`` if it differs).
    transform : ckptwidgets.layouts.Transform or None
        For ``op="transform"``: how the output is made from the sources' values, in order
        (``shape`` is what it gives).
    """

    key: str
    sources: tuple
    dtype: str
    shape: tuple
    op: str
    transform: object = None

    @property
    def nbytes(self) -> int:
        """Bytes of the output tensor (0 for strings: their size is not in an index)."""
        from .sources._dtypes import BY_NAME

        count = 1
        for d in self.shape:
            count *= d
        return count * BY_NAME[self.dtype].itemsize


class WritePlan:
    """What to write: :attr:`items` by output key, what was left out and why, and problems.

    Build one with :func:`plan_write`, :func:`from_plan` or :func:`average`; every
    operation returns a new plan (the old one is unchanged).
    """

    def __init__(self, items, dropped=(), problems=(), notes=()):
        self.items: list[WriteItem] = _graphs_pruned(sorted(items, key=lambda item: item.key))
        #: ``[(input key, why)]`` of entries left out.
        self.dropped: list[tuple[str, str]] = list(dropped)
        #: Sentences saying why the plan cannot be written as it is.
        self.problems: list[str] = list(problems)
        #: What an operation did that a user should know (e.g. an object graph dropped).
        self.notes: list[str] = list(notes)
        seen: dict[str, WriteItem] = {}
        for item in self.items:
            first = seen.setdefault(item.key, item)
            if first is not item:
                self.problems.append(
                    f"Two entries would be written under key {item.key!r}: {_from(first)} and {_from(item)}."
                )

    # --- operations -------------------------------------------------------------------
    def _with(self, items, dropped=(), problems=(), notes=()) -> WritePlan:
        return WritePlan(items, self.dropped + list(dropped), self.problems + list(problems), self.notes + list(notes))

    def rename(self, rules=None, pairs=None) -> WritePlan:
        """Rename keys: ``rules`` as ``init_from_checkpoint``'s assignment map, ``pairs`` one by one.

        ``rules``: ``{"old_scope/": "new_scope/"}``, ``"/"`` for the root on either side, or
        ``{"old_key": "new_key"}``; the most specific rule wins, keys no rule covers keep
        their names. ``pairs``: ``{"old_key": "new_key"}`` (or a list of pairs), applied
        after the rules. Object-based keys are renamed by name, their
        ``/.ATTRIBUTES/VARIABLE_VALUE`` kept, and the object graph is dropped (it names the
        old keys: the result is read by name).

        Raises
        ------
        PlanError
            A rule or pair that renames nothing (a typo such as ``{"modle/": "net/"}``);
            the message names it and the closest scope or key there is.
        """
        exact, scopes = _parse_rules(rules)
        pairs = dict(pairs or {})
        for old, new in pairs.items():
            if not isinstance(old, str) or not isinstance(new, str) or not new:
                raise PlanError(f"Rename pairs are {{old key: new key}} of non-empty str; got {old!r}: {new!r}.")
        items, dropped, notes, used = [], [], [], set()
        for item in self.items:
            if item.key == OBJECT_GRAPH_KEY and (exact or scopes or pairs):
                dropped.append((item.key, "the object graph names the old keys (the renamed checkpoint is read by name)"))
                continue
            if item.key in pairs:
                new = pairs[item.key]
                used.add(("pair", item.key))
            else:
                new, rule = _renamed(item.key, exact, scopes)
                used.add(rule)
            if new in pairs and new != item.key:
                used.add(("pair", new))
            items.append(item._replace(key=pairs.get(new, new)))
        _refuse_unused_rules(self, rules, exact, scopes, pairs, used)
        if dropped:
            notes.append("The object graph was dropped: load the result by name (Saver, init_from_checkpoint).")
        return self._with(items, dropped, notes=notes)

    def strip(self, kinds=("slot",), filter=None, keep=KEEP_META) -> WritePlan:
        """Leave out optimizer state (default: slots and the optimizer's meta entries).

        ``kinds``: kinds to drop (``"slot"``; ``"meta"`` drops every counter not in ``keep``).
        With the default kinds, the ``meta`` entries too, except those ``keep`` names (the
        last part of the entry's name: ``global_step``, ``save_counter``, also as the TF2
        key ``save_counter/.ATTRIBUTES/VARIABLE_VALUE``) and the format's own bookkeeping:
        beta powers, ``iter``, learning rates, hyperparameters go. ``filter``: also drop
        the entries this filter keeps (:mod:`ckptwidgets._text.filter` syntax, e.g.
        ``"kind:ema"``, ``"Adam"``). A TF2 object graph is kept and written pruned to the
        keys written (op ``"prune"``), so that TensorFlow's object-based restore reads
        the result.
        """
        kinds = {kinds} if isinstance(kinds, str) else set(kinds or ())
        optimizer_meta = kinds == {"slot"}
        items, dropped = [], []
        matched = set()
        if filter:
            entries = [entry for item in self.items for entry in [_entry(item)] if entry is not None]
            matched = {e.key for e in filter_entries(entries, filter)}
        for item in self.items:
            entry = _entry(item)
            kind = entry.kind if entry is not None else "variable"
            # The name, not the key: a TF2 key ends in VARIABLE_VALUE, whatever it holds.
            last = (entry.name if entry is not None else item.key).rsplit("/", 1)[-1]
            bookkeeping = entry is not None and entry.key in item.sources[0][0].bookkeeping
            if kind in kinds and not (kind == "meta" and (bookkeeping or last in keep)):
                dropped.append((item.key, "optimizer state (slot)" if optimizer_meta else f"kind {kind}"))
            elif optimizer_meta and kind == "meta" and not bookkeeping and last not in keep:
                dropped.append((item.key, "optimizer state (meta)"))
            elif entry is not None and entry.key in matched:
                dropped.append((item.key, f"matches the filter {filter!r}"))
            else:
                items.append(item)
        return WritePlan(items, self.dropped + dropped, self.problems, self.notes)

    def promote_ema(self) -> WritePlan:
        """Write each ``ExponentialMovingAverage`` shadow under its variable's key (shadows dropped).

        The result evaluates with the averaged weights and needs no EMA code to load.
        """
        by_key = {item.key: item for item in self.items}
        promoted, dropped = {}, []
        for item in self.items:
            entry = _entry(item)
            if entry is not None and entry.kind == "ema" and entry.base:
                target = _renamed_like(item, entry, by_key)
                promoted[target] = item._replace(key=target)
                dropped.append((item.key, f"promoted to {target!r}"))
                if target in by_key:
                    dropped.append((target, f"replaced by its shadow {item.key!r}"))
        if not promoted:
            return self._with(self.items, notes=["promote_ema: the checkpoint has no ExponentialMovingAverage shadows."])
        shadows = {key for key, why in dropped if why.startswith("promoted")}
        items = [promoted.pop(item.key, item) for item in self.items if item.key not in shadows]
        items += list(promoted.values())  # shadows whose variable is not in the checkpoint
        return self._with(items, dropped)

    def cast(self, dtypes=None) -> WritePlan:
        """Cast floating tensors: ``{"float32": "float16"}`` (the default) or ``"bfloat16"``."""
        dtypes = {"float32": "float16"} if dtypes is None else dict(dtypes)
        for old, new in dtypes.items():
            if old not in FLOAT_DTYPES or new not in _CAST_TARGETS:
                raise PlanError(
                    f"cast takes {{float dtype: float dtype}}, e.g. {{'float32': 'float16'}}; got {old!r}: {new!r} "
                    f"(float dtypes: {', '.join(sorted(FLOAT_DTYPES))})."
                )
        items = [
            item._replace(dtype=dtypes[item.dtype], op="cast" if item.op == "copy" else item.op)
            if item.dtype in dtypes else item
            for item in self.items
        ]
        return self._with(items)

    # --- output ---------------------------------------------------------------------
    @property
    def keys(self) -> list[str]:
        return [item.key for item in self.items]

    @property
    def nbytes(self) -> int:
        return sum(item.nbytes for item in self.items)

    @property
    def ok(self) -> bool:
        return not self.problems

    def write(self, out, overwrite=False, state_file=False, progress=None, *, model=None, keep_unmapped=False,
              dry_run=False):
        """Write the checkpoint to prefix ``out`` (safely: :mod:`ckptwidgets.sources._atomic`), in
        the format :func:`ckptwidgets.sources.writer_for` chooses for ``out`` and ``model``.

        With ``model=`` (a built Keras 3 model) and ``out`` ending in ``.weights.h5``, write
        that model's weights file instead (:mod:`ckptwidgets.sources.keras`): the plan's keys
        are the model's variable names (what :func:`from_plan` gives), laid out as
        ``model.save_weights`` lays them out, so ``model.load_weights(out)`` takes it.

        Parameters
        ----------
        out : str or os.PathLike
            Its ending picks the format: ``.safetensors``, ``.pt`` or ``.pth`` (PyTorch),
            ``.weights.h5`` (with ``model=``), else a TF checkpoint prefix (``"serving.ckpt"``
            writes ``serving.ckpt.index`` and ``serving.ckpt.data-00000-of-00001``). A folder,
            or an ending of a format not written (``.keras``, ``.bin``, ``.h5``...), is refused.
            Its folder is made if missing.
        overwrite : bool
            Replace an existing checkpoint at ``out``. Never an input: an ``out`` that is
            one of the plan's inputs, however spelled, is refused.
        state_file : bool
            Also write the folder's ``checkpoint`` file naming ``out`` as the latest.
        progress : None, False or callable
            None: a tqdm bar (a widget in Jupyter) when the write takes over a second;
            False: none; a callable gets ``(bytes done, bytes total)``.
        model : Keras 3 model, optional
            Write ``out`` as this model's ``.weights.h5``. Every variable Keras saves must
            have a key in the plan (else :class:`WriteError` naming the unmapped ones);
            a built optimizer's state is written as the model's optimizer holds it.
        keep_unmapped : bool
            With ``model=``: write the model's current value for a variable the plan does
            not map, instead of refusing.
        dry_run : bool
            Refuse what the write would refuse (the same :class:`WriteError`), write nothing,
            and report what the write would write: what ``--dry-run`` checks and shows.

        Returns
        -------
        WriteReport
            (a ``KerasWriteReport`` with ``placed`` and ``kept`` for a ``.weights.h5``;
            with ``dry_run``, its ``dry_run`` is True and ``files`` empty; ``prefix`` is the
            path the write takes: ``"a.ckpt"`` for ``"a.ckpt.index"``)

        Raises
        ------
        WriteError
            The plan has problems, ``out`` is one of its inputs, ``out`` exists, or the
            write failed (nothing is left under ``out``; the inputs are unchanged).
        """
        from .sources import writer_for

        options = {"overwrite": overwrite, "state_file": state_file, "progress": progress}
        if dry_run:
            options.update(dry_run=True)
        if model is not None:
            options.update(model=model, keep_unmapped=keep_unmapped)
        return writer_for(out, model).write(self, out, **options)

    def __str__(self) -> str:
        rows = [[item.key, _from(item), item.op, item.dtype, format_shape(item.shape), human_size(item.nbytes)] for item in self.items]
        lines = [f"Write {count_of(len(self.items), 'tensor')} ({human_size(self.nbytes)}):"]
        lines.append(text_table(["key", "from", "op", "dtype", "shape", "size"], rows) if rows else "  (nothing)")
        if self.dropped:
            lines.append(f"Left out ({len(self.dropped)}):")
            lines += [f"  {key}: {why}" for key, why in self.dropped]
        lines += [f"Note: {note}" for note in self.notes]
        lines += [f"PROBLEM: {problem}" for problem in self.problems]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"<WritePlan: {len(self.items)} tensors ({human_size(self.nbytes)}), {len(self.dropped)} left out, "
            f"{len(self.problems)} problems>"
        )


# --- building plans ---------------------------------------------------------------------


def _entry(item: WriteItem):
    ckpt, key = item.sources[0]
    return ckpt.find(key)


def _from(item: WriteItem) -> str:
    keys = [key for _, key in item.sources]
    if item.op == "mean":
        return f"mean of {len(keys)} x {keys[0]!r}"
    if item.op == "transform":
        return f"{item.transform.name}({', '.join(map(repr, keys))})"
    return keys[0] if keys[0] != item.key else "="


def _parse_rules(rules) -> tuple[dict, dict]:
    exact, scopes = {}, {}
    for old, new in (rules or {}).items():
        if not isinstance(old, str) or not isinstance(new, str):
            raise PlanError(f"Rename rules are {{old: new}} of str; got {old!r}: {new!r}.")
        if check_rule(old, new, f"Rule {old!r}: {new!r}"):
            scopes["" if is_root(old) else old] = "" if is_root(new) else new
        else:
            exact[old] = new
    return exact, scopes


def _renamed(key: str, exact: dict, scopes: dict) -> tuple[str, tuple | None]:
    """``(new key, the rule that made it)``: the most specific rule, an exact one, then the
    longest scope; ``(key, None)`` when no rule covers ``key``."""
    from .sources._tfkeys import name_of

    name, _kind = name_of(key)
    suffix = key[len(name) :]
    if name in exact:
        return exact[name] + suffix, ("exact", name)
    if key in exact:
        return exact[key], ("exact", key)
    for old in sorted(scopes, key=len, reverse=True):
        if name.startswith(old):
            return scopes[old] + name[len(old) :] + suffix, ("scope", old)
    return key, None


def _refuse_unused_rules(plan, rules, exact: dict, scopes: dict, pairs: dict, used: set) -> None:
    """:class:`PlanError` naming the first rule or pair that renamed nothing, and what is close."""
    from .sources._tfkeys import name_of

    unused = [(old, new, ("exact", old)) for old, new in exact.items()]
    originals = {("" if is_root(old) else old): old for old in (rules or {})}
    unused += [(originals.get(old, old), new, ("scope", old)) for old, new in scopes.items()]
    unused += [(old, new, ("pair", old)) for old, new in pairs.items()]
    for old, new, rule in unused:
        if rule in used:
            continue
        names = sorted({name_of(item.key)[0] for item in plan.items if item.key != OBJECT_GRAPH_KEY})
        if rule[0] == "scope":
            scopes_there = sorted({name[: i + 1] for name in names for i, c in enumerate(name) if c == "/"})
            close, what = difflib.get_close_matches(old, scopes_there, n=1, cutoff=0.5), "scope"
        else:
            close, what = difflib.get_close_matches(old, names, n=1, cutoff=0.5), "key"
        where = _prefixes(plan)
        hint = f" (the closest {what} is {close[0]!r})" if close else ""
        side = "rule" if rule[0] != "pair" else "pair"
        raise PlanError(
            f"The {side} {{{old!r}: {new!r}}} renames nothing: no {what} {old!r} in {where}{hint}."
            if rule[0] != "scope" or is_root(old) else
            f"The {side} {{{old!r}: {new!r}}} renames nothing: no key of {where} is under {old!r}{hint}."
        )


def _prefixes(plan) -> str:
    prefixes = []
    for item in plan.items:
        for ckpt, _key in item.sources:
            if ckpt.prefix not in prefixes:
                prefixes.append(ckpt.prefix)
    if not prefixes:
        return "the plan (it writes nothing)"
    return repr(prefixes[0]) if len(prefixes) == 1 else f"{prefixes[0]!r} and {len(prefixes) - 1} more"


def _graphs_pruned(items: list) -> list:
    """``items`` with each TF2 object graph's op ``"prune"`` where it names a key the plan
    leaves out (TensorFlow's object-based restore would look for it), ``"copy"`` otherwise."""
    keys = {item.key for item in items}
    out = []
    for item in items:
        if item.key == OBJECT_GRAPH_KEY and item.op in ("copy", "prune"):
            named = _graph_keys(*item.sources[0])
            if named is not None:
                item = item._replace(op="prune" if named - keys else "copy")
        out.append(item)
    return out


def _graph_keys(ckpt, key) -> set | None:
    """The keys an object graph names, or None when it cannot be read (the write says why)."""
    from .sources.bundle import checkpoint_keys

    try:
        return checkpoint_keys(ckpt.read(key))
    except (CheckpointError, ValueError, TypeError):
        return None


def _renamed_like(item: WriteItem, entry, by_key) -> str:
    """The key a shadow is promoted to: its variable's output key (renames followed)."""
    for other in by_key.values():
        if other.sources[0][1] == entry.base and other.sources[0][0] is item.sources[0][0]:
            return other.key
    return entry.base


def plan_write(ckpt) -> WritePlan:
    """A plan writing every entry of ``ckpt`` as it is; start of every operation.

    ``ckpt``: a :class:`Checkpoint` or anything :func:`ckptwidgets.open_checkpoint` takes.
    """
    ckpt = open_checkpoint(ckpt)
    return WritePlan([WriteItem(e.key, ((ckpt, e.key),), e.dtype, e.shape, "copy") for e in ckpt.entries])


def model_option(out, target) -> dict:
    """``{"model": target}`` for :meth:`WritePlan.write` when ``out`` names a Keras weights file
    and ``target`` is a Keras 3 model (the file is then laid out as its ``save_weights`` would,
    for ``load_weights``), else ``{}``: ``out``'s ending alone picks the format.

    Examples
    --------
    >>> model_option("net.safetensors", object()), model_option("net.weights.h5", object())
    ({}, {})
    """
    from ._planning.variables import is_keras_object
    from .sources.keras import WEIGHTS_SUFFIX

    return {"model": target} if str(out).endswith(WEIGHTS_SUFFIX) and is_keras_object(target) else {}


def from_plan(plan) -> WritePlan:
    """What a :class:`~ckptwidgets.RestorePlan` maps, under the variables' names.

    The mapper's result, saved for the next person: loading it by name needs no rules.
    Raises :class:`PlanError` when the plan has problems (a missing key, a shape mismatch).

    An assignment with a layout transform (``plan.transforms``) is written as
    ``WriteItem(name, sources, dtype, shape, "transform", transform)``: its sources are
    ``(key,) + extra_keys`` and its shape what the transform makes of them, so a Keras or TF
    checkpoint planned into a torch module is written in torch's layout, and
    ``from_plan(plan_restore(ckpt, module)).write("out.safetensors")`` gives a file that
    ``module.load_state_dict(safetensors.torch.load_file(...), strict=True)`` takes.

    A torch module's bookkeeping buffers (``num_batches_tracked``) that no key is read into
    are written with the module's current values (copied now, read from an in-memory
    :class:`~ckptwidgets.sources.arrays.ArraySource` named ``<current values of the module>``):
    ``load_state_dict(strict=True)`` requires every buffer, and a checkpoint from another
    framework has no step counter to give them. Any other unmapped variable is left out
    (``dropped``), so a strict load then names what the plan does not map.
    """
    if plan.problems:
        raise PlanError(
            f"The plan has {count_of(len(plan.problems), 'problem')}; fix {'it' if len(plan.problems) == 1 else 'them'} first: "
            + "; ".join(p.message for p in plan.problems[:3])
        )
    ckpt = plan.checkpoint
    items = []
    for assignment in plan.assignments:
        entry, transform = assignment.entry, assignment.transform
        if transform is None:
            items.append(WriteItem(assignment.name, ((ckpt, entry.key),), entry.dtype, entry.shape, "copy"))
            continue
        entries = [ckpt.find(key) for key in assignment.keys]
        shape = transform.shape(*(e.shape for e in entries))
        items.append(WriteItem(assignment.name, tuple((ckpt, e.key) for e in entries), entry.dtype, shape,
                               "transform", transform))
    mapped, infos = plan.mapping, plan.infos
    unmapped = set(plan.unmapped)
    current = {name: info.variable for name, info in infos.items()
               if info.framework == "torch" and name not in mapped and name not in unmapped}
    if current:
        from .sources.arrays import ArraySource

        values = open_checkpoint(ArraySource({name: t.detach().cpu().numpy().copy() for name, t in current.items()},
                                             location="<current values of the module>"))
        items += [WriteItem(e.key, ((values, e.key),), e.dtype, e.shape, "copy") for e in values.entries]
    if plan.target == "torch":  # written in the module's state_dict order
        order = {name: i for i, name in enumerate(infos)}
        items.sort(key=lambda item: order.get(item.key, len(order)))
    return WritePlan(items, [(n, "unmapped variable: nothing to write") for n in plan.unmapped])


def average(checkpoints) -> WritePlan:
    """The mean of N checkpoints of one model, as OpenNMT-tf and tensor2tensor average them.

    Float tensors are averaged with a float64 accumulator and rounded once to their dtype;
    other tensors (step counters, strings) are taken from the last checkpoint. Keys, shapes
    and dtypes must agree (a problem names the first that does not).
    """
    ckpts = [open_checkpoint(c) for c in checkpoints]
    if len(ckpts) < 2:
        raise PlanError(f"average needs two checkpoints or more; got {len(ckpts)}.")
    last = ckpts[-1]
    problems = []
    for ckpt in ckpts[:-1]:
        mine, theirs = set(ckpt.keys()), set(last.keys())
        if mine != theirs:
            only = sorted(mine ^ theirs)[:3]
            problems.append(f"Checkpoints {ckpt.prefix!r} and {last.prefix!r} hold different keys (e.g. {only}).")
            continue
        for entry in ckpt.entries:
            other = last[entry.key]
            if (entry.shape, entry.dtype) != (other.shape, other.dtype):
                problems.append(
                    f"Key {entry.key!r} is {entry.dtype} {format_shape(entry.shape)} in {ckpt.prefix!r} but "
                    f"{other.dtype} {format_shape(other.shape)} in {last.prefix!r}."
                )
    items = []
    for entry in last.entries:
        if entry.dtype in FLOAT_DTYPES and entry.key not in last.bookkeeping:
            items.append(WriteItem(entry.key, tuple((c, entry.key) for c in ckpts), entry.dtype, entry.shape, "mean"))
        else:
            items.append(WriteItem(entry.key, ((last, entry.key),), entry.dtype, entry.shape, "copy"))
    return WritePlan(items, problems=problems)
