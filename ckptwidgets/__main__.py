"""``python -m ckptwidgets COMMAND ...``: list, compare and rewrite checkpoints from the shell.

Git-style subcommands, each with ``--help``:

- ``ls PATH``: a checkpoint's entries (key, kind, dtype, shape, size) with totals per kind,
  like TensorFlow's ``inspect_checkpoint`` but one line per entry and no values; only the
  index is read, TensorFlow is not imported. ``python -m ckptwidgets PATH`` is ``ls PATH``.
- ``diff A B``: what changed between two checkpoints (:mod:`ckptwidgets.diff`).
- ``rename``, ``strip``, ``promote-ema``, ``average``, ``convert``: write a new checkpoint
  (:mod:`ckptwidgets.cli._write`); ``--dry-run`` prints the plan and writes nothing.

User errors print one ``error:`` line and exit 2; success exits 0. Messages name the
command line's options (``--overwrite``, ``--rule old/=new/``), not the Python keywords the
same errors name in a notebook. A mistyped command is named with the closest one
(``unknown command 'lss' (did you mean 'ls'?)``). TensorFlow, where a command needs it
(``convert``), is imported before anything else with its start-up log lines off
(:mod:`ckptwidgets._tf.quiet`).

``--filter`` takes the filter language of the widgets (:mod:`ckptwidgets._text.filter`):
``--filter 'dense !bias !kind:slot'``; ``--regex`` a regular expression (``re.search``);
``--kind`` a kind. Everything given must hold.

Example
-------
>>> main(["my_test_model.ckpt"])                       # doctest: +SKIP
checkpoint my_test_model.ckpt (name-based, 2 entries, 1 data file)
<BLANKLINE>
key  kind      dtype    shape  size
v1   variable  float32  [1]    4 B
v2   variable  float32  [1]    4 B
<BLANKLINE>
kind      entries  size
variable  2        8 B
total     2        8 B
0
"""
from __future__ import annotations

import argparse
import difflib
import os
import re
import sys

__all__ = ["main", "format_key", "command_line_words", "COMMANDS"]

_UNSIZED = ("string", "resource", "variant")  # the index does not say how big these are


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


def _add_ls(parser) -> None:
    from .reader import KINDS

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


_LS_DESCRIPTION = (
    "List the entries of a TensorFlow checkpoint (key, kind, dtype, shape, size) with totals per kind. "
    "Reads only the index file."
)
_KINDS_EPILOG = (
    "Kinds: variable, ema (moving-average shadow), slot (optimizer state), meta (object graph, counters). "
    "Exit status: 0 done, 2 error."
)


def _parser() -> argparse.ArgumentParser:
    from .cli import diff as _cli_diff, _write as _cli_write

    parser = argparse.ArgumentParser(
        prog="ckptwidgets",
        description="List, compare and rewrite TensorFlow checkpoints. "
        "'python -m ckptwidgets PATH' is 'python -m ckptwidgets ls PATH'.",
        epilog=_KINDS_EPILOG,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_ls(commands.add_parser("ls", help="list a checkpoint's entries", description=_LS_DESCRIPTION, epilog=_KINDS_EPILOG))
    _cli_diff.add_parser(commands)
    _cli_write.add_parsers(commands)
    return parser


COMMANDS = ("ls", "diff", "rename", "strip", "promote-ema", "average", "convert")


def _size(entry) -> str:
    from ._text.format import human_size

    return "-" if entry.dtype in _UNSIZED else human_size(entry.nbytes)


def _report(ckpt, entries, total: int) -> str:
    from ._text.format import format_shape, human_size, text_table

    shown = f"{len(entries)} of {total} entries" if len(entries) != total else f"{total} entries"
    if ckpt.source.format == "tf-bundle":
        shards = len(ckpt.files) - 1
        style = "object-based" if ckpt.object_based else "name-based"
        lines = [f"checkpoint {ckpt.prefix} ({style}, {shown}, {shards} data file{'s' if shards != 1 else ''})", ""]
    else:  # another format: its name says what the file is
        lines = [f"checkpoint {ckpt.prefix} ({ckpt.source.format}, {shown})", ""]
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


def main(argv=None) -> int:
    """Run the command line; return the exit status (0 done, 2 error).

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name (``sys.argv[1:]`` when None).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in COMMANDS and not argv[0].startswith("-"):
        if not _names_a_path(argv[0]):
            close = difflib.get_close_matches(argv[0], COMMANDS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (commands: {', '.join(COMMANDS)})"
            print(f"error: unknown command {argv[0]!r}{hint}", file=sys.stderr)
            return 2
        argv = ["ls", *argv]  # python -m ckptwidgets PATH: the listing, as before subcommands
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help()
        return 2
    if args.command == "ls":
        return _ls(args)
    from .errors import CheckpointError

    try:
        if args.command == "diff":
            from .cli import diff as _cli_diff

            return _print(_cli_diff.run(args))
        from .cli import _write as _cli_write

        return _cli_write.run(args)
    except CheckpointError as error:
        print(f"error: {command_line_words(_one_line(error))}", file=sys.stderr)
        return 2


def _names_a_path(word: str) -> bool:
    """True when the first word is a checkpoint to list, not a (mistyped) command: it exists
    (as a file, a folder or a prefix) or is spelled like a path."""
    if os.path.exists(word) or os.path.exists(word + ".index"):
        return True
    return any(mark in word for mark in ("/", os.sep, ".", "~")) or word.endswith(".index")


#: Python keywords that name a command-line option in the messages the library raises.
_OPTIONS = {"overwrite": "--overwrite", "state_file": "--state-file", "prefer_ema": "--prefer-ema",
            "rules": "--rule", "rule": "--rule", "kinds": "--kind", "filter": "--filter", "dry_run": "--dry-run"}
_DICT = r"\{[^{}]*\}"


def _rule_options(text: str) -> str | None:
    """``{'old/': 'new/'}`` as ``--rule old/=new/`` (one per rule); None when it is not a rules dict."""
    import shlex

    from ._planning.rules import rules_in_text

    rules = rules_in_text(text)
    if rules is None:
        return None
    return " ".join(f"--rule {shlex.quote(f'{old}={new}')}" for old, new in rules.items())


def command_line_words(message: str) -> str:
    """A library message as the command line says it: ``pass overwrite=True`` -> ``pass --overwrite``,
    ``rules={'a/': 'b/'}`` and ``rule {'a/': 'b/'}`` -> ``--rule a/=b/``.

    Examples
    --------
    >>> command_line_words("A checkpoint already exists at 'x'; pass overwrite=True to replace it.")
    "A checkpoint already exists at 'x'; pass --overwrite to replace it."
    >>> command_line_words("The rule {'modle/': 'net/'} renames nothing; try rules={'old/': '/'}.")
    'The --rule modle/=net/ renames nothing; try --rule old/=/.'
    """
    def rules(match):
        options = _rule_options(match.group(2))
        return match.group(0) if options is None else match.group(1) + options

    message = re.sub(rf"(\brules?=|\brule |\bpair |\be\.g\. )({_DICT})", rules, message)
    message = re.sub(r"\brules?=--rule", "--rule", message)
    message = re.sub(r"\brule --rule", "--rule", message)
    message = re.sub(r"\bpair --rule", "--rule", message)

    def keyword(match):
        option = _OPTIONS.get(match.group(1))
        if option is None:
            return match.group(0)
        value = match.group(2)
        return option if value in ("True", "") or option == "--rule" else f"{option} {value}"

    return re.sub(r"\b([a-z_]+)=(True|[\w'\"./:-]*)(?=[\s,;.)]|$)", keyword, message)


def _one_line(error) -> str:
    return " ".join(str(error).split("\n")[:1]) + (" (...)" if "\n" in str(error) else "")


def _print(text: str, status: int = 0) -> int:
    try:
        if hasattr(sys.stdout, "reconfigure"):
            # Keys are arbitrary Unicode; a terminal that cannot show some must not crash us.
            sys.stdout.reconfigure(errors="backslashreplace")
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `... | head`: the reader left, nothing more to say
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return status


def _ls(args) -> int:
    pattern = None
    if args.regex is not None:
        try:
            pattern = re.compile(args.regex)
        except re.error as error:
            print(f"error: --regex {args.regex!r} is not a valid regular expression: {error}", file=sys.stderr)
            return 2

    from ._text.filter import parse_filter
    from .errors import CheckpointError, PlanError
    from .reader import open_checkpoint

    filters = []
    for text in args.filter or ():
        try:
            filters.append(parse_filter(text))
        except PlanError as error:
            print(f"error: --filter {text!r}: {error}", file=sys.stderr)
            return 2

    try:
        ckpt = open_checkpoint(args.path)
    except CheckpointError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    entries = list(ckpt.entries)
    for parsed in filters:
        entries = parsed.entries(entries)
    entries = [
        e
        for e in entries
        if (args.kind is None or e.kind in args.kind) and (pattern is None or pattern.search(e.key))
    ]
    return _print(_report(ckpt, entries, len(ckpt.entries)))


if __name__ == "__main__":
    sys.exit(main())
