"""List the entries of a TensorFlow checkpoint (key, kind, dtype, shape, size) with totals per kind.
Reads only the index file.

``ls PATH``: like TensorFlow's ``inspect_checkpoint`` but one line per entry and no values;
TensorFlow is not imported. ``--filter`` takes the widgets' filter language
(:mod:`ckptwidgets._text.filter`), ``--regex`` a regular expression (``re.search``), ``--kind``
a kind; everything given must hold. The header's parentheses are the source's own
``describe(shown)`` where it has one (the TF bundle: name- or object-based, data files), else
its format's name. The first paragraph of this docstring heads ``ls --help``.

Example
-------
>>> from ckptwidgets.cli import parser
>>> args = parser().parse_args(["ls", "model.ckpt", "--kind", "ema", "--filter", "dense !bias"])
>>> args.path, args.kind, args.filter, args.regex
('model.ckpt', ['ema'], ['dense !bias'], None)
"""
from __future__ import annotations

import re

from ._common import KINDS_EPILOG, error, print_text

HELP = "list a checkpoint's entries"
EPILOG = KINDS_EPILOG

_UNSIZED = ("string", "resource", "variant")  # the index does not say how big these are


def add_arguments(parser) -> None:
    """``PATH`` and the options that choose entries (``--kind``, ``--filter``, ``--regex``)."""
    from .._planning.kinds import KINDS

    parser.add_argument("path", metavar="PATH", help="checkpoint prefix, its .index file, or a folder (latest checkpoint)")
    parser.add_argument(
        "--kind",
        action="append",
        choices=KINDS,
        metavar="KIND",
        help=f"show only entries of this kind ({', '.join(KINDS)}); repeat for several",
    )
    parser.add_argument(
        "--filter",
        action="append",
        metavar="FILTER",
        help="show only entries passing this filter, the widgets' filter language: words every key contains "
        "(case-insensitive), !word to exclude, kind:slot to keep a kind, !kind:slot to hide it "
        "(kind:variable,ema for several), \"quoted words\"; e.g. --filter 'dense !kind:slot' "
        "(single quotes keep the shell off the !); repeat for several",
    )
    parser.add_argument(
        "--regex", metavar="REGEX", help="show only keys matching this regular expression (re.search)"
    )


def run(args) -> int:
    """List the entries that pass every option; 2 with one ``error:`` line for a bad option or path."""
    pattern = None
    if args.regex is not None:
        try:
            pattern = re.compile(args.regex)
        except re.error as why:
            return error(f"--regex {args.regex!r} is not a valid regular expression: {why}")

    from .._text.filter import parse_filter
    from ..errors import CheckpointError, PlanError
    from ..reader import open_checkpoint

    filters = []
    for text in args.filter or ():
        try:
            filters.append(parse_filter(text))
        except PlanError as why:
            return error(f"--filter {text!r}: {why}")

    try:
        ckpt = open_checkpoint(args.path)
    except CheckpointError as why:
        return error(str(why))
    entries = list(ckpt.entries)
    for parsed in filters:
        entries = parsed.entries(entries)
    entries = [
        e
        for e in entries
        if (args.kind is None or e.kind in args.kind) and (pattern is None or pattern.search(e.key))
    ]
    return print_text(report(ckpt, entries, len(ckpt.entries)))


def format_key(key: str) -> str:
    """A key as one line of text: as is, or ``repr``-escaped if it holds control characters.

    Examples
    --------
    >>> format_key("dense/kernel")
    'dense/kernel'
    >>> format_key("two\\nlines")
    "'two\\\\nlines'"
    """
    return key if key.isprintable() else repr(key)


def _size(entry) -> str:
    from .._text.format import human_size

    return "-" if entry.dtype in _UNSIZED else human_size(entry.nbytes)


def _describe(source, shown: str) -> str:
    """The header's parentheses: the source's own ``describe(shown)``, else its format's name."""
    return source.describe(shown) if hasattr(source, "describe") else f"{source.format}, {shown}"


def report(ckpt, entries, total: int) -> str:
    """The listing of ``entries`` (of ``total`` in ``ckpt``): header, entries table, totals per kind.

    Examples
    --------
    >>> import numpy as np
    >>> from ckptwidgets import open_checkpoint
    >>> from ckptwidgets.sources.arrays import ArraySource
    >>> ckpt = open_checkpoint(ArraySource({"w": np.zeros(2, np.float32)}, location="mem"))
    >>> print(report(ckpt, list(ckpt.entries), 1))
    checkpoint mem (arrays, 1 entry)
    <BLANKLINE>
    key  kind      dtype    shape  size
    w    variable  float32  [2]    8 B
    <BLANKLINE>
    kind      entries  size
    variable  1        8 B
    total     1        8 B
    """
    from .._text.format import format_shape, human_size, text_table

    shown = f"{len(entries)} of {total} entries" if len(entries) != total else f"{total} entr{'y' if total == 1 else 'ies'}"
    lines = [f"checkpoint {ckpt.prefix} ({_describe(ckpt.source, shown)})", ""]
    if not entries:
        lines.append("no entries match")
        return "\n".join(lines)
    rows = [[format_key(e.key), e.kind, e.dtype, format_shape(e.shape), _size(e)] for e in entries]
    lines += [text_table(["key", "kind", "dtype", "shape", "size"], rows), ""]
    totals: dict[str, list[int]] = {}
    for e in entries:
        count_size = totals.setdefault(e.kind, [0, 0])
        count_size[0] += 1
        count_size[1] += e.nbytes
    order = ["variable", "ema", "slot", "meta"]
    rows = [[k, str(c), human_size(b)] for k, (c, b) in sorted(totals.items(), key=lambda kv: order.index(kv[0]))]
    rows.append(["total", str(len(entries)), human_size(sum(b for _, b in totals.values()))])
    lines.append(text_table(["kind", "entries", "size"], rows))
    if any(e.dtype in _UNSIZED for e in entries):
        lines.append("(sizes leave out string, resource and variant entries: the index does not record them)")
    return "\n".join(lines)
