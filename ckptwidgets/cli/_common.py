"""What the subcommands share: the writing options, ``--rule``, the one ``error:`` line, printing.

Private helper of :mod:`ckptwidgets.cli`. User errors are one ``error:`` line on stderr and
exit status 2 (:func:`error`); messages the library raises are put in the command line's
words first (:func:`command_line_words`: ``overwrite=True`` -> ``--overwrite``). A first word
that is no subcommand is a path to list (:func:`names_a_path`) or a mistyped command
(:func:`unknown_command`).

Example
-------
>>> import argparse
>>> parser = argparse.ArgumentParser(prog="ckptwidgets rename")
>>> add_source_and_out(parser); add_write_options(parser)
>>> args = parser.parse_args(["a.ckpt", "b.ckpt", "--dry-run"])
>>> args.src, args.out, args.dry_run, args.overwrite, args.state_file
('a.ckpt', 'b.ckpt', True, False, False)
"""
from __future__ import annotations

import difflib
import os
import re
import shlex
import sys

from ..errors import CheckpointError, PlanError

__all__ = [
    "KINDS_EPILOG", "EXIT_STATUS", "OUT_HELP", "PREFER_EMA_HELP", "RULES_HELP", "add_source_and_out", "add_write_options", "parse_rule", "rules_of",
    "write_or_show", "error", "error_line", "command_line_words", "print_text", "names_a_path", "unknown_command", "unrecognized",
]

KINDS_EPILOG = "Kinds: variable, ema (moving-average shadow), slot (optimizer state), meta (object graph, counters)."
#: OUT of a subcommand that writes a plan (``WritePlan.write``): its ending picks the format.
OUT_HELP = "what to write: a TF checkpoint prefix, or a .safetensors or .pt file"
#: ``--prefer-ema`` of the subcommands that plan into a model or a preset.
PREFER_EMA_HELP = "take each variable's ExponentialMovingAverage shadow where the checkpoint has one (the averaged weights)"
#: Ends every ``--help``: the same for the command line and each subcommand.
EXIT_STATUS = "Exit status: 0 done, 2 error."

RULES_HELP = (
    "OLD=NEW as init_from_checkpoint's assignment map: 'old_scope/=new_scope/' renames a scope, "
    "'/=new/' puts everything under new/, 'old/=/' takes old/ off, 'key=other_key' renames one entry "
    "(also 'OLD -> NEW'); repeat for several"
)


# --- arguments -------------------------------------------------------------------------------


def add_source_and_out(parser, src="the checkpoint to read (a TF prefix, its .index or folder; .safetensors, .pt, "
                       ".weights.h5, .keras, .h5)", out=None) -> None:
    """``SRC OUT``: the checkpoint read and what is written (``src`` and ``out`` are their help)."""
    parser.add_argument("src", metavar="SRC", help=src)
    parser.add_argument("out", metavar="OUT", help=out or OUT_HELP)


def add_write_options(parser, state_file: bool = True) -> None:
    """``--dry-run``, ``--overwrite``, ``--state-file``: what every writing subcommand takes
    (``convert``, whose checkpoint is TF2's own, takes no ``--state-file``)."""
    parser.add_argument("--dry-run", action="store_true", help="print what would be written (which key becomes which, sizes), refuse what the write would refuse, and write nothing")
    parser.add_argument("--overwrite", action="store_true", help="replace a checkpoint that exists at OUT (never a source: OUT may not be SRC, however spelled)")
    if state_file:
        parser.add_argument("--state-file", action="store_true", help="also write the folder's 'checkpoint' file naming OUT as the latest")


def parse_rule(text: str) -> tuple[str, str]:
    """``(old, new)`` of one ``--rule``: ``OLD=NEW`` (at the first ``=``) or ``OLD -> NEW``.

    Examples
    --------
    >>> parse_rule("old/=new/"), parse_rule("a -> b"), parse_rule("/=net/")
    (('old/', 'new/'), ('a', 'b'), ('/', 'net/'))
    """
    from .._planning.rules import parse_rules

    if "->" in text:
        ((old, new),) = parse_rules(text).items()
        return old, new
    old, sep, new = text.partition("=")
    if not sep or not old or not new:
        raise PlanError(f"--rule {text!r} is not OLD=NEW (e.g. 'old_scope/=new_scope/', '/=new/', 'key=other_key').")
    return old, new


def rules_of(args) -> dict:
    """The ``--rule`` options as a rules dict (``{old: new}``, in the order given)."""
    rules = {}
    for text in args.rule or ():
        old, new = parse_rule(text)
        rules[old] = new
    return rules


def write_or_show(plan, args, **options) -> int:
    """Write ``plan`` to ``args.out`` (``options``: ``model=`` for a Keras weights file) and say
    what was written, or with ``--dry-run`` print it, write nothing, and refuse what the write
    would refuse (exit status 2 when the plan has problems or the write would fail)."""
    if args.dry_run:
        print(plan)
        if plan.problems:
            print("(dry run: nothing written)")
            return 2
        try:
            report = plan.write(args.out, overwrite=args.overwrite, state_file=args.state_file, dry_run=True, **options)
        except CheckpointError:  # the error line says why the write would fail
            print("(dry run: nothing written)")
            raise
        by_format = [(key, why) for key, why in report.dropped if (key, why) not in plan.dropped]
        if by_format:
            print(f"Left out by {os.path.basename(report.prefix)!r} ({len(by_format)}):")
            print("\n".join(f"  {key}: {why}" for key, why in by_format))
        print("(dry run: nothing written)")
        return 0
    print(plan.write(args.out, overwrite=args.overwrite, state_file=args.state_file, **options))
    return 0


# --- output ----------------------------------------------------------------------------------


def error(message: str) -> int:
    """Print the one ``error:`` line and return the exit status of a user error (2)."""
    print(f"error: {message}", file=sys.stderr)
    return 2


def error_line(exception) -> str:
    """A library error as one line in the command line's words (its first line, ``(...)`` if more)."""
    text = str(exception)
    return command_line_words(text.split("\n")[0] + (" (...)" if "\n" in text else ""))


def print_text(text: str) -> int:
    """Print ``text`` whatever the terminal can show and however soon the reader leaves; 0."""
    try:
        if hasattr(sys.stdout, "reconfigure"):
            # Keys are arbitrary Unicode; a terminal that cannot show some must not crash us.
            sys.stdout.reconfigure(errors="backslashreplace")
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `... | head`: the reader left, nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


#: Python keywords that name a command-line option in the messages the library raises.
_OPTIONS = {"overwrite": "--overwrite", "state_file": "--state-file", "prefer_ema": "--prefer-ema",
            "rules": "--rule", "rule": "--rule", "kinds": "--kind", "filter": "--filter", "dry_run": "--dry-run"}
_DICT = r"\{[^{}]*\}"
#: Library phrases that have a command line of their own.
_PHRASES = {"plan.write(out, model=model)": "'export SRC OUT --model MODULE:FUNCTION'",
            "plan.strip(filter=...)": "'strip SRC OUT --filter ...'"}


def _rule_options(text: str) -> str | None:
    """``{'old/': 'new/'}`` as ``--rule old/=new/`` (one per rule); None when it is not a rules dict."""
    from .._planning.rules import rules_in_text

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
    for phrase, words in _PHRASES.items():
        message = message.replace(phrase, words)

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


# --- a first word that is no subcommand ------------------------------------------------------


def names_a_path(word: str) -> bool:
    """True when the first word is a checkpoint to list, not a (mistyped) command: it exists
    (as a file, a folder or a prefix) or is spelled like a path.

    Examples
    --------
    >>> names_a_path("run/model.ckpt"), names_a_path("lss")
    (True, False)
    """
    if os.path.exists(word) or os.path.exists(word + ".index"):
        return True
    return any(mark in word for mark in ("/", os.sep, ".", "~")) or word.endswith(".index")


def unknown_command(word: str, commands) -> str:
    """The message for a first word that is neither a command nor a path: the closest command.

    Examples
    --------
    >>> unknown_command("lss", ["ls", "diff"])
    "unknown command 'lss' (did you mean 'ls'?)"
    >>> unknown_command("frobnicate", ["ls", "diff"])
    "unknown command 'frobnicate' (commands: ls, diff)"
    """
    close = difflib.get_close_matches(word, list(commands), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f" (commands: {', '.join(commands)})"
    return f"unknown command {word!r}{hint}"


def unrecognized(words, options) -> str:
    """argparse's message for arguments nothing takes, with the closest of ``options`` for each
    mistyped option (argparse before Python 3.14 names none).

    Examples
    --------
    >>> unrecognized(["--keep-optimiser", "extra"], ["--keep-optimizer", "--dry-run"])
    "unrecognized arguments: --keep-optimiser (did you mean '--keep-optimizer'?) extra"
    """
    shown = []
    for word in words:
        close = difflib.get_close_matches(word.split("=")[0], list(options), n=1) if word.startswith("--") else []
        shown.append(f"{word} (did you mean {close[0]!r}?)" if close else word)
    return "unrecognized arguments: " + " ".join(shown)
