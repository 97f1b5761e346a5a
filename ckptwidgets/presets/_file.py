"""A preset's data file, read and checked: :class:`Preset`.

Private helper of :mod:`ckptwidgets.presets`. A preset file is JSON with these fields (every
pattern must match the *whole* key, as ``re.fullmatch``):

- ``description``: one sentence, what the preset maps from and to;
- ``drop``: ``[{"match": pattern, "why": sentence}]``, input keys left out, and why;
- ``rules``: ``[{"match": pattern, "key": template}]``, input key -> output key, tried in
  order, the first that matches wins; ``template`` is :meth:`re.Match.expand`'s (``\\1``,
  ``\\g<name>``);
- ``transpose``: ``[pattern]``, output keys whose tensor is transposed (a TF kernel
  ``[in, out]`` -> a torch weight ``[out, in]``).

Everything is checked when the file is read: a bad file is a
:class:`~ckptwidgets.errors.PlanError` naming the file and the rule, before any key is mapped.
"""
from __future__ import annotations

import json
import os
import re
from typing import NamedTuple

from ..errors import PlanError

__all__ = ["Preset", "read_preset"]

_FIELDS = {"description": str, "drop": list, "rules": list, "transpose": list}
_REQUIRED = ("description", "rules")


class Preset(NamedTuple):
    """A preset's rules, compiled.

    Attributes
    ----------
    name : str
    path : str
        The data file it was read from.
    description : str
    drop : list of (re.Pattern, str)
        Input keys left out and why.
    rules : list of (re.Pattern, str)
        ``(pattern, template)``: the first pattern matching an input key names its output key.
    transpose : list of re.Pattern
        Output keys whose tensor is transposed.
    """

    name: str
    path: str
    description: str
    drop: list
    rules: list
    transpose: list

    def why_dropped(self, key: str) -> str | None:
        """Why the preset leaves input ``key`` out, or None when it does not."""
        return next((why for pattern, why in self.drop if pattern.fullmatch(key)), None)

    def renamed(self, key: str) -> str | None:
        """The output key of input ``key`` (the first rule matching it), or None: no rule does."""
        for pattern, template in self.rules:
            match = pattern.fullmatch(key)
            if match:
                return match.expand(template)
        return None

    def transposed(self, out_key: str) -> bool:
        """True when output ``out_key``'s tensor is transposed."""
        return any(pattern.fullmatch(out_key) for pattern in self.transpose)


def read_preset(name: str, path: str) -> Preset:
    """Read and check the data file of preset ``name`` at ``path``.

    Raises
    ------
    PlanError
        The file is missing, is not JSON, or a field or rule is malformed (the message names
        the file, the field and the rule's position and text).
    """
    where = f"Preset {name!r} ({path})"
    try:
        with open(path, encoding="utf-8") as f:
            body = json.load(f)
    except OSError as error:
        raise PlanError(f"{where} cannot be read: {error.strerror or error}.") from None
    except ValueError as error:  # JSONDecodeError and bad UTF-8
        raise PlanError(f"{where} is not JSON: {error}.") from None
    if not isinstance(body, dict):
        raise PlanError(f"{where} holds a JSON {type(body).__name__}; a preset is an object with fields {list(_FIELDS)}.")
    for field in body:
        if field not in _FIELDS:
            raise PlanError(f"{where} has an unknown field {field!r}; the fields are {list(_FIELDS)}.")
    for field, kind in _FIELDS.items():
        if field in body and not isinstance(body[field], kind):
            raise PlanError(f"{where}: field {field!r} is a {type(body[field]).__name__}, not a {kind.__name__}.")
    for field in _REQUIRED:
        if not body.get(field):
            raise PlanError(f"{where} has no {field!r} (or it is empty).")
    drop = [_pair(where, "drop", i, rule, "why") for i, rule in enumerate(body.get("drop", []))]
    rules = [_pair(where, "rules", i, rule, "key") for i, rule in enumerate(body["rules"])]
    for i, (pattern, template) in enumerate(rules):
        try:
            pattern.sub(template, "")  # checks the template's group references and escapes
        except re.error as error:
            raise PlanError(f"{where}: rules[{i}] {body['rules'][i]!r}: bad template {template!r}: {error}.") from None
    transpose = [_pattern(where, f"transpose[{i}] {text!r}", text) for i, text in enumerate(body.get("transpose", []))]
    return Preset(name, os.fspath(path), body["description"], drop, rules, transpose)


def _pair(where: str, field: str, index: int, rule, second: str) -> tuple:
    """``(compiled match, rule[second])`` of one ``{"match": ..., second: ...}`` entry, checked."""
    label = f"{field}[{index}] {rule!r}"
    if not isinstance(rule, dict) or set(rule) != {"match", second}:
        raise PlanError(f"{where}: {label} is not {{\"match\": pattern, {second!r}: text}}.")
    if not isinstance(rule[second], str) or not rule[second]:
        raise PlanError(f"{where}: {label}: {second!r} is not a non-empty string.")
    return _pattern(where, label, rule["match"]), rule[second]


def _pattern(where: str, label: str, text) -> re.Pattern:
    if not isinstance(text, str) or not text:
        raise PlanError(f"{where}: {label}: the pattern is not a non-empty string.")
    try:
        return re.compile(text)
    except re.error as error:
        raise PlanError(f"{where}: {label}: bad pattern: {error}.") from None
