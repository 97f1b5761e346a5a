"""The one filter language of ckptwidgets: the command line's ``--filter``, the
CheckpointBrowser's filter box and the VariableMapper's filter box.

A filter is whitespace-separated terms; an entry is kept when every term holds:

============================  ===============================================================
term                          keeps
============================  ===============================================================
``word``                      keys containing ``word``, case-insensitively (``Dense`` = ``dense``)
``!word``                     keys not containing ``word``
``"two words"``               keys containing the quoted text, spaces included (``!"..."`` excludes)
``kind:slot``                 entries of that kind only; kinds are variable, ema, slot, meta
``kind:variable,ema``         entries of any of the kinds listed
``!kind:slot``                entries of any other kind (``!kind:slot,meta`` hides both)
============================  ===============================================================

Words are plain text, never patterns: ``<img``, ``a.b`` and ``变量`` match themselves. A
``"`` opens a quote only at the start of a term (after an optional ``!``); a quote left
open runs to the end of the text, and a lone ``!`` or ``""`` is an empty term (both keep
everything: a filter box passes through them while one types). To search for text that
starts with ``!`` or ``kind:``, quote it: ``"!important"``, ``"kind:x"``.

Hide optimizer state with ``!kind:slot``, not ``!Adam``: TF1 slots are named ``w/Adam``,
but TF2 (object-based) ones ``w/.OPTIMIZER_SLOT/optimizer/m``, and only the kind covers
both. An unknown kind (``kind:slots``) is a :class:`~ckptwidgets.errors.PlanError`
naming the term and the valid kinds. Variable names (the mapper) have no kind: a
``kind:`` term there is a PlanError saying so.

Example
-------
>>> f = parse_filter('dense !bias !kind:slot')
>>> f.include, f.exclude, sorted(f.kinds)
(('dense',), ('bias',), ['ema', 'meta', 'variable'])
>>> f.keeps_key("Dense/kernel", "variable"), f.keeps_key("dense/kernel/Adam", "slot")
(True, False)
"""
from __future__ import annotations

from dataclasses import dataclass

from .._planning.kinds import KINDS
from ..errors import PlanError

__all__ = ["Filter", "parse_filter", "filter_entries", "filter_names", "FILTER_SYNTAX", "NAME_FILTER_SYNTAX", "KIND_PREFIX"]

KIND_PREFIX = "kind:"
#: One line of the syntax, for placeholders, tooltips and ``--help``.
FILTER_SYNTAX = 'words to match, !word to exclude, kind:slot or !kind:slot (kinds: ' + ", ".join(KINDS) + '), "quoted words"'
#: The same for variable names (the mapper), which have no kind.
NAME_FILTER_SYNTAX = 'words to match, !word to exclude, "quoted words"'
_KIND_LIST = ", ".join(KINDS)


@dataclass(frozen=True)
class Filter:
    """A parsed filter: what :func:`parse_filter` returns.

    Attributes
    ----------
    text : str
        The filter as written.
    include : tuple of str
        Lower-cased words every kept key contains.
    exclude : tuple of str
        Lower-cased words no kept key contains.
    kinds : frozenset of str or None
        The kinds kept, None when no term names a kind.
    kind_terms : tuple of str
        The ``kind:`` / ``!kind:`` terms as written (the mapper refuses them).
    """

    text: str = ""
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    kinds: frozenset | None = None
    kind_terms: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """True when the filter keeps everything."""
        return not self.include and not self.exclude and self.kinds is None

    def keeps_key(self, key: str, kind: str | None = None) -> bool:
        """Whether an entry with this key (and kind) passes every term."""
        if self.kinds is not None and kind not in self.kinds:
            return False
        return self._keeps_text(key.lower())

    def _keeps_text(self, text: str) -> bool:
        for word in self.include:
            if word not in text:
                return False
        for word in self.exclude:
            if word in text:
                return False
        return True

    def entries(self, entries, kinds=None) -> list:
        """The entries passing the filter, in order; ``kinds`` (a collection) restricts further."""
        allowed = self.kinds
        if kinds is not None:
            allowed = frozenset(kinds) if allowed is None else allowed & frozenset(kinds)
        if allowed is None and not self.include and not self.exclude:
            return list(entries)
        words = bool(self.include or self.exclude)
        keeps = self._keeps_text
        return [
            e for e in entries
            if (allowed is None or e.kind in allowed) and (not words or keeps(e.key.lower()))
        ]

    def names(self, names) -> list[str]:
        """The names passing the word terms, in order.

        Raises
        ------
        PlanError
            The filter has a ``kind:`` term: names (of variables) have no kind.
        """
        if self.kind_terms:
            raise PlanError(
                f"Filter term {self.kind_terms[0]!r}: kinds ({_KIND_LIST}) apply to checkpoint entries, "
                "and variable names have no kind. Filter names with words and !word."
            )
        if not self.include and not self.exclude:
            return list(names)
        keeps = self._keeps_text
        return [n for n in names if keeps(n.lower())]


def _tokens(text: str):
    """``(negated, quoted, word, as_written)`` per term of ``text``."""
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start = i
        negated = text[i] == "!"
        if negated:
            i += 1
        if i < n and text[i] == '"':
            close = text.find('"', i + 1)
            end = n if close < 0 else close
            word = text[i + 1:end]
            i = n if close < 0 else close + 1
            yield negated, True, word, text[start:i]
            continue
        while i < n and not text[i].isspace():
            i += 1
        yield negated, False, text[start + negated:i], text[start:i]


def _kinds_of(term: str, listed: str) -> frozenset:
    kinds = [k.strip().lower() for k in listed.split(",")]
    if not any(kinds):
        raise PlanError(f"Filter term {term!r} names no kind; kinds are {_KIND_LIST} (e.g. kind:slot, !kind:meta).")
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise PlanError(
            f"Unknown kind {bad[0]!r} in filter term {term!r}; kinds are {_KIND_LIST} "
            "(several: kind:variable,ema)."
        )
    return frozenset(kinds)


def parse_filter(text: str | None) -> Filter:
    """Read a filter (syntax in this module's docstring).

    Parameters
    ----------
    text : str or None
        None and ``""`` keep everything.

    Returns
    -------
    Filter

    Raises
    ------
    PlanError
        A ``kind:`` term with an unknown kind or none; the message names the term and
        the valid kinds.

    Examples
    --------
    >>> parse_filter('"dense 1" !kind:slot,meta').include
    ('dense 1',)
    >>> parse_filter("kind:slots")
    Traceback (most recent call last):
    ...
    ckptwidgets.errors.PlanError: Unknown kind 'slots' in filter term 'kind:slots'; kinds are variable, ema, slot, meta (several: kind:variable,ema).
    """
    if text is None:
        return Filter()
    if not isinstance(text, str):
        raise PlanError(f"A filter is text, not {type(text).__name__}: {text!r}")
    include, exclude, kind_terms = [], [], []
    kinds = None
    for negated, quoted, word, written in _tokens(text):
        if not quoted and word[:len(KIND_PREFIX)].lower() == KIND_PREFIX:
            named = _kinds_of(written, word[len(KIND_PREFIX):])
            kind_terms.append(written)
            keep = frozenset(KINDS) - named if negated else named
            kinds = keep if kinds is None else kinds & keep
            continue
        word = word.lower()
        if word:
            (exclude if negated else include).append(word)
    return Filter(text, tuple(include), tuple(exclude), kinds, tuple(kind_terms))


def filter_entries(entries, text: str = "", kinds=None) -> list:
    """The entries passing the filter ``text`` whose kind is also in ``kinds`` (all when None).

    Examples
    --------
    >>> from ckptwidgets.reader import Entry
    >>> es = [Entry("v", "v", (), "float32", 4, "variable", None),
    ...       Entry("v/ExponentialMovingAverage", "v/ExponentialMovingAverage", (),
    ...             "float32", 4, "ema", "v")]
    >>> [e.key for e in filter_entries(es, "moving")]
    ['v/ExponentialMovingAverage']
    >>> [e.key for e in filter_entries(es, "!kind:ema")]
    ['v']
    >>> [e.key for e in filter_entries(es, kinds={"variable"})]
    ['v']
    """
    return parse_filter(text).entries(entries, kinds)


def filter_names(names, text: str = "") -> list[str]:
    """The names passing the word terms of ``text`` (``kind:`` terms are a PlanError).

    Examples
    --------
    >>> filter_names(["net/l1/kernel", "net/l1/bias", "net/l2/kernel"], "l1 !bias")
    ['net/l1/kernel']
    """
    return parse_filter(text).names(names)
