"""Matching variables to checkpoint keys: rules, exact names, EMA shadows.

The per-variable work of :func:`ckptwidgets.plan_restore`, kept to dict lookups (a plan over
10,000 variables must cost less than TensorFlow's own read of the index). Rules follow
``tf.compat.v1.train.init_from_checkpoint``'s assignment map; see :mod:`ckptwidgets.plan`
for the precedence. A part of a partitioned variable is matched by the whole variable's name
(``VarInfo.part.full_name``: ``"w"`` for ``"w/part_0"``), as ``init_from_checkpoint`` does:
rules and exact names see the full name, and every part of it gets the full key.
"""
from __future__ import annotations

import difflib
import re

from .candidates import fits
from .rules import check_rule, is_root
from .variables import VarInfo, partitioned_parts
from .._text.format import count_of
from ..errors import PlanError
from ..reader import Checkpoint

__all__ = ["Rules", "patterns", "skipped_names", "map_variables", "map_under_scope"]


def patterns(value, what: str) -> list:
    if value is None:
        return []
    items = [value] if isinstance(value, (str, re.Pattern)) else list(value)
    try:
        return [re.compile(p) for p in items]
    except (re.error, TypeError) as error:
        raise PlanError(f"{what} must be regular expressions; {error}.") from None


def skipped_names(infos: dict[str, VarInfo], include=None, exclude=None) -> set[str]:
    """Names of the variables ``include`` / ``exclude`` (regular expressions, ``re.search``)
    leave out; a part is also filtered by its whole variable's name (``"w"`` as well as ``"w/part_0"``)."""
    keep, drop = patterns(include, "include"), patterns(exclude, "exclude")
    if not keep and not drop:
        return set()
    return {name for name, info in infos.items()
            if (keep and not _search(keep, name, info)) or _search(drop, name, info)}


def _search(compiled: list, name: str, info: VarInfo) -> bool:
    if any(p.search(name) for p in compiled):
        return True
    return info.part is not None and any(p.search(info.part.full_name) for p in compiled)


class Rules:
    """init_from_checkpoint-style rules, indexed by the variable side for O(rules) lookups.

    A variable's scope rules are found by slicing its name at the lengths of the rules'
    variable-side prefixes (longest first), not at every ``/`` of the name: a variable no rule
    applies to costs a dict lookup per distinct prefix length.
    """

    def __init__(self, rules, infos: dict[str, VarInfo], dotted: bool = False):
        self.exact: dict[str, list[str]] = {}  # variable name -> checkpoint keys
        self.scopes: dict[str, list[str]] = {}  # variable prefix ("" = root) -> checkpoint prefixes
        by_id = known = None
        sep = "." if dotted else "/"  # what ends a scope of the variables' names
        for ckpt_side, var_side in (rules or {}).items():
            if not isinstance(ckpt_side, str):
                raise PlanError(f"Rule keys are checkpoint names or scopes (str); got {ckpt_side!r}.")
            if not isinstance(var_side, str):  # {key: variable}, as init_from_checkpoint allows
                by_id = by_id or {id(i.variable): _matched_name(i) for i in infos.values()}
                self.exact.setdefault(_object_rule(ckpt_side, var_side, by_id), []).append(ckpt_side)
                continue
            if check_rule(ckpt_side, var_side, f"Rule {ckpt_side!r}: {var_side!r}", dotted):
                self.scopes.setdefault("" if is_root(var_side) else var_side, []).append(
                    "" if is_root(ckpt_side) else ckpt_side
                )
            else:
                info = infos.get(var_side)
                if info is not None and info.part is not None and info.part.full_name != var_side:
                    raise PlanError(
                        f"Rule {ckpt_side!r}: {var_side!r} is a part of partitioned variable "
                        f"{info.part.full_name!r}; a rule names the whole variable: "
                        f"{{{ckpt_side!r}: {info.part.full_name!r}}} (each part reads its slice)."
                    )
                if info is None:
                    known = known or [_matched_name(i) for i in infos.values()] + [
                        i.alias for i in infos.values() if i.alias
                    ]
                    if var_side not in known:
                        # A cut inside a scope's name ('block_2_' of 'block_2_conv/...'): say what a
                        # rule is (issue #15); a cut inside a variable's own name is a typo (below).
                        starting = [n for n in dict.fromkeys(known)
                                    if n.startswith(var_side) and sep in n[len(var_side):]]
                        if starting:
                            raise PlanError(_prefix_rule_message(ckpt_side, var_side, starting, sep))
                        close = difflib.get_close_matches(var_side, list(dict.fromkeys(known)), n=3, cutoff=0.5)
                        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
                        raise PlanError(
                            f"Rule {ckpt_side!r}: {var_side!r} names no variable of the plan.{hint}"
                        )
                self.exact.setdefault(var_side, []).append(ckpt_side)
        # Every scope prefix ends with "/" (or "." for torch names), so name[:n] equal to one is a cut there:
        # longest first is the most specific first, and the root ("", length 0) comes last.
        self.lengths = sorted({len(prefix) for prefix in self.scopes}, reverse=True)

    def __bool__(self) -> bool:
        return bool(self.exact or self.scopes)

    def matcher(self, ckpt: Checkpoint, exact_names: bool = True):
        """``match(name) -> (entry, conflict_keys)`` over ``ckpt``: rules first, then the exact name.

        ``entry`` comes from the most specific rule level that finds a key (else the exact
        name, unless ``exact_names`` is False, else None); ``conflict_keys`` lists the keys
        when that level finds several. A closure over the dicts it needs, as it runs once per
        variable.
        """
        exact, scopes, lengths = self.exact.get, self.scopes.get, self.lengths
        by_key, by_name = ckpt.by_key.get, ckpt.by_name.get

        def find(name):
            return by_key(name) or by_name(name)

        def match(name: str):
            keys = exact(name)
            if keys is not None:
                found = _present(keys, "", find)
                if found:
                    return found
            size = len(name)
            for length in lengths:
                if length > size:
                    continue
                prefixes = scopes(name[:length])
                if prefixes is None:
                    continue
                if len(prefixes) == 1:  # one rule for this scope: no conflict possible
                    key = prefixes[0] + name[length:]
                    entry = by_key(key) or by_name(key)
                    if entry is not None:
                        return entry, None
                    continue
                found = _present(prefixes, name[length:], find)
                if found:
                    return found
            if not exact_names:
                return None, None
            return by_key(name) or by_name(name), None

        return match


def _prefix_rule_message(ckpt_side: str, var_side: str, starting: list, sep: str = "/") -> str:
    """Why ``teacher/block_1_ -> student/block_2_`` is no rule: a side without '/' ('.' for torch
    names) is one whole name."""
    shown = ", ".join(repr(n) for n in starting[:3]) + (f" and {len(starting) - 3:,} more" if len(starting) > 3 else "")
    cut = var_side.rfind(sep) + 1
    example = starting[0][: starting[0].find(sep, len(var_side)) + 1] if sep in starting[0][len(var_side):] else ""
    ckpt_example = ckpt_side + example[len(var_side):] if example else ckpt_side + "…" + sep
    suggestion = f" ({ckpt_example!r} -> {example!r})" if example else ""
    return (f"Rule {ckpt_side!r}: {var_side!r} has no trailing {sep!r}, so it names one whole variable, and no variable "
            f"is called that; {count_of(len(starting), 'variable name')} {'starts' if len(starting) == 1 else 'start'} with it ({shown}). A rule maps one name "
            f"exactly or a whole scope: end both sides with {sep!r}{suggestion}; a rule cannot rename part of a name "
            f"segment ({var_side[cut:]!r}).")


def _matched_name(info: VarInfo) -> str:
    """The name matched against the checkpoint: a part's full name, else the variable's."""
    return info.name if info.part is None else info.part.full_name


def _object_rule(ckpt_side: str, var_side, by_id: dict) -> str:
    """The matched name a ``{key: variable}`` rule is about. As in ``init_from_checkpoint`` the
    value may be a variable, a ``PartitionedVariable`` or a list of its parts; a part (or a
    list of parts) stands for the whole partitioned variable."""
    targets = partitioned_parts(var_side)
    if targets is None:
        targets = list(var_side) if isinstance(var_side, (list, tuple)) else [var_side]
    names = list(dict.fromkeys(by_id.get(id(v)) for v in targets))
    if not targets or None in names:
        raise PlanError(f"Rule {ckpt_side!r}: {var_side!r} names no variable of the plan.")
    if len(names) > 1:
        raise PlanError(
            f"Rule {ckpt_side!r}: the variables listed belong to several variables ({', '.join(map(repr, names))}); "
            "a list in a rule holds the parts of one partitioned variable."
        )
    return names[0]


def _present(prefixes: list[str], rest: str, find):
    """The outcome of one rule level: ``(entry, None)``, ``(None, [keys])`` or None when it finds nothing."""
    found: dict = {}
    for prefix in prefixes:
        entry = find(prefix + rest)
        if entry is not None:
            found.setdefault(entry.key, entry)
    if len(found) == 1:
        return next(iter(found.values())), None
    return (None, list(found)) if found else None


def map_variables(ckpt: Checkpoint, infos: dict, rules: Rules, skipped: set, prefer_ema: bool,
                  structural: dict | None = None):
    """``(mapping, conflicts, compatible)``: the key of every variable found one, the rule
    conflicts, and whether every mapped key is present and fits its variable's shape and dtype.

    One pass of dict lookups; without rules ``ckpt.find`` is inlined (10,000 calls add up).
    ``compatible`` is the analysis' shape and dtype check, done here with the entry at hand.
    Per variable: rules on its name (then on its object path, ``VarInfo.alias``), each rule
    level before the exact name, then the exact names.

    ``structural``: ``{name: key}`` found by structure (the object graph walked as TensorFlow
    restores, the dataset Keras would load): for those variables rules still come first, then
    that key (kept when absent from the checkpoint: a ``missing_key``), then the exact names.
    """
    mapping: dict[str, str] = {}
    conflicts: dict[str, list[str]] = {}
    compatible = True
    find, by_key, by_name = ckpt.find, ckpt.by_key.get, ckpt.by_name.get
    shadows = ckpt.ema_shadows if prefer_ema else None
    # With a structure the exact names wait until the structural key was tried.
    match = rules.matcher(ckpt, exact_names=not structural) if rules else None
    names_last = match is None or bool(structural)
    for name, info in infos.items():
        if skipped and name in skipped:
            continue
        part = info.part
        name_matched = name if part is None else part.full_name  # a part: its whole variable's name
        entry = None
        if match is not None:
            entry, conflict = match(name_matched)
            if entry is None and conflict is None and info.alias is not None:
                entry, conflict = match(info.alias)
            if conflict:
                conflicts[name] = conflict
                continue
        if entry is None and structural:
            key = structural.get(name)
            if key is not None:
                entry = find(key)
                if entry is None:  # the key this structure reads is absent: a missing_key
                    mapping[name] = key
                    compatible = False
                    continue
        if entry is None and names_last:
            entry = by_key(name_matched) or by_name(name_matched)
            if entry is None and info.alias is not None:
                entry = find(info.alias)
        if entry is None:
            explicit = rules.exact.get(name_matched)
            if explicit:  # a one-name rule to an absent key: keep it, reported as missing_key
                mapping[name] = explicit[0]
                compatible = False
            continue
        if shadows is not None and entry.kind != "ema":
            entry = shadows.get(entry.name, entry)
        mapping[name] = entry.key
        if compatible and not fits(info.shape, info.dtype, entry):
            compatible = False
    return mapping, conflicts, compatible


def map_under_scope(ckpt, infos: dict, rules: Rules, skipped: set, prefer_ema: bool, scope: str,
                    mapping: dict, conflicts: dict) -> tuple[dict, bool]:
    """``({name: key}, compatible)`` for the variables under ``scope`` that found no key,
    matched again (rules, then the exact name) with ``scope`` cut off their names.

    For a Keras 3 model whose variables are named ``<model name>/dense/kernel`` (a
    Sequential or subclassed model builds its layers under its own name) against a
    checkpoint saying ``dense/kernel`` (TF1, Keras 2): the leading model name is an artifact
    of Keras 3 paths. A cut name that is another variable's name is not tried.
    """
    retry = {}
    for name, info in infos.items():
        if name in mapping or name in conflicts or name in skipped or info.part is not None:
            continue
        if name.startswith(scope) and name[len(scope):] and name[len(scope):] not in infos:
            retry[name[len(scope):]] = info._replace(alias=None)
    if not retry:
        return {}, True
    found, found_conflicts, compatible = map_variables(ckpt, retry, rules, set(), prefer_ema)
    return {retry[cut].name: key for cut, key in found.items() if cut not in found_conflicts}, compatible
