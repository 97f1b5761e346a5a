"""Rules: ``init_from_checkpoint``'s assignment map, as a dict or typed one per line.

``{"ckpt_scope/": "var_scope/"}`` maps a scope, ``"/"`` (or ``""``) is the root on either
side, ``{"ckpt_key": "var_name"}`` maps one name. When the variables are a torch module's
(dotted names, ``dotted=True``), a side ending in ``.`` is a scope as well: ``{"old.": "new."}``,
and ``{"dense/": "lin."}`` from a TF checkpoint; a scope rule replaces the prefix and keeps the
rest of the name as it is (``old.lin.weight`` -> ``new.lin.weight``). The text form, in the mapper's rules box
and on the command line, is one ``ckpt_side -> var_side`` per line. Both forms are checked
by :func:`check_rule`, so a mistake reads the same wherever it was typed.

Example
-------
>>> parse_rules("old/ -> new/\\n# a comment\\nv1 -> other-v1")
{'old/': 'new/', 'v1': 'other-v1'}
>>> check_rule("old/", "new", "Rule 'old/': 'new'")
Traceback (most recent call last):
...
ckptwidgets.errors.PlanError: Rule 'old/': 'new' maps a scope to a single name; both sides must end in '/' (scope -> scope, '/' for the root) or neither (name -> name).
"""
from __future__ import annotations

import ast

from ..errors import PlanError

__all__ = ["is_root", "is_scope", "check_rule", "parse_rules", "format_rules", "rules_in_text", "SCOPE_ENDS"]

#: What ends a scope side when the variables are torch's (dotted names): ``/`` or ``.``.
SCOPE_ENDS = ("/", ".")


def is_root(side: str) -> bool:
    """True for the checkpoint's or the model's root: ``"/"`` or ``""``."""
    return side in ("/", "")


def is_scope(side: str, dotted: bool = False) -> bool:
    """True for a scope side: the root, or a side ending in ``/`` (or ``.`` when ``dotted``)."""
    return is_root(side) or side.endswith(SCOPE_ENDS if dotted else "/")


def check_rule(ckpt_side: str, var_side: str, where: str, dotted: bool = False) -> bool:
    """True for a scope rule, False for a one-name rule; :class:`PlanError` (starting with ``where``) for a mix.

    ``dotted``: the names are torch's (``encoder.lin.weight``), where a side ending in ``.``
    is a scope too (``{"old.": "new."}``, or ``{"dense/": "lin."}`` across frameworks).
    """
    ckpt_scope, var_scope = is_scope(ckpt_side, dotted), is_scope(var_side, dotted)
    if ckpt_scope != var_scope:
        ends = "'/' or '.'" if dotted else "'/'"
        raise PlanError(
            f"{where} maps a scope to a single name; both sides must end in {ends} "
            "(scope -> scope, '/' for the root) or neither (name -> name)."
        )
    return ckpt_scope


def _rule_side(text: str, lineno: int, line: str) -> str:
    text = text.strip()
    if text[:1] in ("'", '"'):
        # Quoted sides allow names with leading/trailing spaces or a literal "->".
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = None
        if not isinstance(value, str):
            raise PlanError(f"Rule line {lineno}: {line!r}: {text} is not a valid quoted string.")
        return value
    return text


def rules_in_text(text: str) -> dict | None:
    """A rules dict written as Python (``"{'old/': 'new/'}"``, as messages show it), else None.

    Examples
    --------
    >>> rules_in_text("{'old/': 'net/'}")
    {'old/': 'net/'}
    >>> rules_in_text("{1: 2}") is None
    True
    """
    try:
        rules = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None
    if not isinstance(rules, dict) or not rules or not all(isinstance(k, str) and isinstance(v, str) for k, v in rules.items()):
        return None
    return rules


def _split_rule(line: str) -> tuple[str, str] | None:
    """Split at the first ``->`` outside quotes; None when there is none."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            if char == "\\":
                continue
            if char == quote:
                quote = None
        elif char in ("'", '"'):
            quote = char
        elif line.startswith("->", i):
            return line[:i], line[i + 2 :]
    return None


def parse_rules(text: str, dotted: bool = False) -> dict[str, str]:
    """Read a rules box: one ``ckpt_scope/ -> var_scope/`` per line.

    The result is an ``init_from_checkpoint``-style assignment map ``{ckpt side: variable
    side}``. A side ending in ``/`` is a scope, ``/`` alone (or an empty side) is the
    root; a side without a trailing slash names one tensor (``dotted``: torch names, where a
    side ending in ``.`` is a scope too). Blank lines and lines starting with ``#`` are
    skipped. Sides may be quoted (``'a b/' -> 'c/'``).

    Raises
    ------
    PlanError
        A line is not a rule, mixes a scope with a single name, or repeats a checkpoint
        side; the message quotes the line and gives its number.

    Examples
    --------
    >>> parse_rules("/ -> new/")
    {'/': 'new/'}
    >>> parse_rules("old/ new/")
    Traceback (most recent call last):
    ...
    ckptwidgets.errors.PlanError: Rule line 1: 'old/ new/' has no '->'; write one rule per line as 'ckpt_scope/ -> var_scope/'.
    """
    if text is None:
        return {}
    if not isinstance(text, str):
        raise PlanError(f"Rules must be text, not {type(text).__name__}: {text!r}")
    rules: dict[str, str] = {}
    seen_at: dict[str, tuple[int, str]] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = _split_rule(line)
        if parts is None:
            raise PlanError(
                f"Rule line {lineno}: {line!r} has no '->'; "
                "write one rule per line as 'ckpt_scope/ -> var_scope/'."
            )
        if _split_rule(parts[1]) is not None:
            raise PlanError(
                f"Rule line {lineno}: {line!r} has more than one '->'; "
                "quote a side that contains '->'."
            )
        ckpt_side = _rule_side(parts[0], lineno, line) or "/"
        var_side = _rule_side(parts[1], lineno, line) or "/"
        check_rule(ckpt_side, var_side, f"Rule line {lineno}: {line!r}", dotted)
        if ckpt_side in rules:
            first_line, first = seen_at[ckpt_side]
            raise PlanError(
                f"Rule line {lineno}: {line!r} repeats checkpoint side {ckpt_side!r} "
                f"already mapped on line {first_line} ({first!r})."
            )
        rules[ckpt_side] = var_side
        seen_at[ckpt_side] = (lineno, line)
    return rules


def _rule_text(side: str) -> str:
    needs_quotes = side != side.strip() or "->" in side or side[:1] in ("'", '"', "#") or not side
    return repr(side) if needs_quotes else side


def format_rules(rules) -> str:
    """The inverse of :func:`parse_rules`: one ``a -> b`` line per rule.

    Examples
    --------
    >>> format_rules({"old/": "new/", "v1": "other-v1"})
    'old/ -> new/\\nv1 -> other-v1'
    """
    return "\n".join(f"{_rule_text(k)} -> {_rule_text(v)}" for k, v in dict(rules or {}).items())
