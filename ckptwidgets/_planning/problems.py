"""What can be wrong with a plan, found and said: the checks behind ``RestorePlan.problems``.

:func:`all_fit` is the fast path (no message written): every mapped key present, with a
shape the variable can hold and its dtype. Only when it fails, or when the input itself has
problems, does :func:`find_problems` say what and why, one :class:`Problem` each.

A variable with a layout transform (``transforms``: ``{name: (Transform, extra_keys)}``)
reads ``(key,) + extra_keys``; what must fit it is ``transform.shape(*their shapes)``, and a
mismatch names the variable's shape, the transform and each key's shape. Cross-framework
matching may add ``layout_mismatch`` problems of its own (a transform it could not decide).
:class:`Analysis` holds the checks of one version of a plan.
"""
from __future__ import annotations

from dataclasses import dataclass

from .candidates import fits, shapes_compatible
from .torch_vars import BOOKKEEPING, is_bookkeeping
from .variables import VarInfo
from .._text.format import count_of, format_shape

__all__ = ["Problem", "all_fit", "find_problems", "Analysis"]


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a plan cannot be restored as it is.

    Attributes
    ----------
    variable : str
        The variable's name in the plan.
    key : str or None
        The checkpoint key involved (None when the problem is not about one key).
    reason : str
        ``"missing_key"``, ``"shape_mismatch"``, ``"dtype_mismatch"``, ``"duplicate_variable"`` or
        ``"layout_mismatch"`` (cross-framework matching could not decide a transform).
    message : str
        A sentence naming the checkpoint, the key, the variable and both shapes / dtypes.
    """

    variable: str
    key: str | None
    reason: str
    message: str

    def __str__(self) -> str:
        return self.message


def all_fit(checkpoint, infos: dict, mapping: dict, transforms: dict | None = None) -> bool:
    """Every mapped key present, with a shape the variable can hold and its dtype (one tight loop)."""
    by_key, find = checkpoint.by_key.get, checkpoint.find
    for name, key in mapping.items():
        info = infos[name]
        if transforms and name in transforms:
            if _transform_problem(checkpoint, info, key, *transforms[name]) is not None:
                return False
            continue
        entry = by_key(key) or find(key)
        if entry is None or not fits(info.shape, info.dtype, entry):
            return False
    return True


def _transform_problem(checkpoint, info: VarInfo, key: str, transform, extra_keys) -> tuple | None:
    """``(key, reason, message)`` of what keeps a transformed assignment from fitting, else None."""
    prefix, keys = checkpoint.prefix, (key,) + tuple(extra_keys)
    entries = []
    for each in keys:
        entry = checkpoint.find(each)
        if entry is None:
            return each, "missing_key", _missing_message(checkpoint, info, each)
        entries.append(entry)
    shapes = " and ".join(f"key {e.key!r} {format_shape(e.shape)}" for e in entries)
    try:
        if transform.arity != len(entries):
            raise ValueError(f"it takes {count_of(transform.arity, 'tensor')}, given {len(entries)}")
        shape = transform.shape(*(e.shape for e in entries))
    except ValueError as error:
        return key, "shape_mismatch", (
            f"Variable {info.name!r} has shape {format_shape(info.shape)} but transform {transform.name!r} cannot make "
            f"it from {shapes} of checkpoint {prefix!r}: {error}.")
    if not shapes_compatible(info.shape, shape):
        return key, "shape_mismatch", (
            f"Variable {info.name!r} has shape {format_shape(info.shape)} but transform {transform.name!r} of "
            f"{shapes} in checkpoint {prefix!r} gives shape {format_shape(shape)}.")
    for entry in entries:
        if entry.dtype != info.dtype:
            return entry.key, "dtype_mismatch", (
                f"Variable {info.name!r} has dtype {info.dtype} but key {entry.key!r} in checkpoint "
                f"{prefix!r} has dtype {entry.dtype}.")
    return None


def find_problems(checkpoint, infos: dict, mapping: dict, duplicates, conflicts: dict, transforms: dict | None = None,
                  layout: list = ()) -> list[Problem]:
    """Every problem with its message, in order: input problems, then per mapped variable.

    ``duplicates``: groups of :class:`VarInfo` sharing one name; ``conflicts``: ``{name: keys}``
    two rules of one specificity gave a variable; ``transforms``: ``{name: (Transform,
    extra_keys)}``; ``layout``: ``[(variable or None, key or None, message)]`` cross-framework
    matching could not decide.
    """
    prefix = checkpoint.prefix
    problems: list[Problem] = [Problem(name or "", key, "layout_mismatch", message) for name, key, message in layout]
    for group in duplicates:
        shapes = ", ".join(format_shape(i.shape) for i in group)
        problems.append(Problem(
            group[0].name, None, "duplicate_variable",
            f"{len(group)} different variables are named {group[0].name!r} (shapes {shapes}); "
            "a plan needs distinct names: pass a dict {name: variable}.",
        ))
    for name, keys in conflicts.items():
        problems.append(Problem(
            name, None, "duplicate_variable",
            f"Rules map several keys of checkpoint {prefix!r} into variable {name!r}: "
            f"{', '.join(map(repr, keys))}; make one rule more specific or assign the key by hand.",
        ))
    owner: dict[int, str] = {}
    for name, key in mapping.items():
        info = infos[name]
        first = owner.setdefault(id(info.variable), name)
        if first != name:
            problems.append(Problem(
                name, key, "duplicate_variable",
                f"The same variable is in the plan as {first!r} and {name!r}, mapped to keys "
                f"{mapping[first]!r} and {key!r} of checkpoint {prefix!r}; unassign one.",
            ))
        if transforms and name in transforms:
            found = _transform_problem(checkpoint, info, key, *transforms[name])
            if found is not None:
                problems.append(Problem(name, found[0], found[1], found[2]))
            continue
        entry = checkpoint.find(key)
        if entry is None:
            problems.append(Problem(name, key, "missing_key", _missing_message(checkpoint, info, key)))
        elif not shapes_compatible(info.shape, entry.shape):
            problems.append(Problem(name, key, "shape_mismatch", _shape_message(prefix, name, info, key, entry)))
        elif info.dtype != entry.dtype:
            problems.append(Problem(
                name, key, "dtype_mismatch",
                f"Variable {name!r} has dtype {info.dtype} but key {key!r} in checkpoint "
                f"{prefix!r} has dtype {entry.dtype}.",
            ))
    return problems


def _shape_message(prefix: str, name: str, info: VarInfo, key: str, entry) -> str:
    if info.part is not None:
        return (f"Variable {name!r} is part {info.part} of full shape {format_shape(info.shape)}, but key {key!r} "
                f"in checkpoint {prefix!r} has shape {format_shape(entry.shape)}; a part reads its slice of a key "
                "of the full shape.")
    silent = ""
    if info.graph is not None and not info.ref:
        silent = (
            " TensorFlow would not complain here (graph mode, resource variable): "
            f"the variable would silently take shape {format_shape(entry.shape)}."
        )
    return (f"Variable {name!r} has shape {format_shape(info.shape)} but key {key!r} in "
            f"checkpoint {prefix!r} has shape {format_shape(entry.shape)}.{silent}")


def _missing_message(checkpoint, info: VarInfo, key: str) -> str:
    text = f"Variable {info.name!r} is mapped to key {key!r}, which is not in checkpoint {checkpoint.prefix!r}."
    close = [e.key for e in checkpoint.candidate_index.compatible(info.shape, info.dtype)[:3]]
    if close:
        text += (
            f" Entries with its shape {format_shape(info.shape)} and dtype {info.dtype}: "
            f"{', '.join(map(repr, close))}."
        )
    return text


class Analysis:
    """The checks of one version of a plan (a new one after every edit).

    ``problems`` is found at once (``.ok`` needs it); status, unused and unmapped are worked
    out on first use, so a plan checked with ``.ok`` pays for nothing else.
    """

    def __init__(self, problems: list[Problem], infos: dict, mapping: dict, checkpoint, extra_keys=()):
        self.problems = problems
        self._infos, self._mapping, self._checkpoint = infos, mapping, checkpoint
        self._extra_keys = extra_keys  # keys transforms read besides the mapped ones
        self._status = self._unused = self._unmapped = None

    @property
    def status(self) -> dict[str, str]:
        if self._status is None:
            status = dict.fromkeys(self._infos, "unmapped")
            status.update((name, "bookkeeping") for name in self._bookkeeping())
            status.update(dict.fromkeys(self._mapping, "mapped"))
            for problem in reversed(self.problems):  # the first problem of a variable wins
                status[problem.variable] = problem.reason
            self._status = status
        return self._status

    @property
    def unused(self) -> list:
        if self._unused is None:
            used = set(self._mapping.values()).union(self._extra_keys)
            self._unused = [e for e in self._checkpoint.entries if e.kind in ("variable", "ema") and e.key not in used
                            and e.name.rpartition(".")[2] not in BOOKKEEPING]
        return self._unused

    def _bookkeeping(self) -> list[str]:
        """Unmapped torch buffers that are bookkeeping (``num_batches_tracked``): never unmapped."""
        return [name for name, info in self._infos.items() if info.framework == "torch" and is_bookkeeping(info)
                and name not in self._mapping]

    @property
    def unmapped(self) -> list[str]:
        if self._unmapped is None:
            mapping = self._mapping
            keep = set(self._bookkeeping())
            self._unmapped = [name for name in self._infos if name not in mapping and name not in keep]
        return self._unmapped
