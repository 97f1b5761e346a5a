"""The command line's writing subcommands: ``rename``, ``strip``, ``promote-ema``, ``average``, ``convert``.

Private helper of :mod:`ckptwidgets.__main__`. Each subcommand builds a
:class:`~ckptwidgets.write.WritePlan` and writes it (``--dry-run`` prints the plan and
writes nothing); user errors print one ``error:`` line and exit 2, success exits 0 and
says what was written. OUT is never one of the sources (the shared write path refuses
it, ``--overwrite`` or not), and a ``--rule`` that renames nothing is an error.

Example
-------
>>> import argparse
>>> parser = argparse.ArgumentParser(prog="ckptwidgets"); add_parsers(parser.add_subparsers(dest="command"))
>>> args = parser.parse_args(["rename", "a.ckpt", "b.ckpt", "--rule", "old/=new/", "--dry-run"])
>>> args.command, args.rule, args.dry_run
('rename', ['old/=new/'], True)
"""
from __future__ import annotations

import sys

from .._planning.kinds import KINDS
from ..errors import PlanError

__all__ = ["add_parsers", "COMMANDS", "parse_rule"]

COMMANDS = ("rename", "strip", "promote-ema", "average", "convert")

_RULES_HELP = (
    "OLD=NEW as init_from_checkpoint's assignment map: 'old_scope/=new_scope/' renames a scope, "
    "'/=new/' puts everything under new/, 'old/=/' takes old/ off, 'key=other_key' renames one entry "
    "(also 'OLD -> NEW'); repeat for several"
)


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


def _common(parser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="print what would be written (which key becomes which, sizes) and write nothing")
    parser.add_argument("--overwrite", action="store_true", help="replace a checkpoint that exists at OUT (never a source: OUT may not be SRC, however spelled)")
    parser.add_argument("--state-file", action="store_true", help="also write the folder's 'checkpoint' file naming OUT as the latest")


def _command(subparsers, name, help, description, *, out_first=False):
    """A writing subcommand with its ``SRC`` and ``OUT`` arguments (``average`` takes OUT first)."""
    p = subparsers.add_parser(name, help=help, description=description)
    if not out_first:
        p.add_argument("src", metavar="SRC", help="the checkpoint to read (prefix, .index file or folder)")
    p.add_argument("out", metavar="OUT", help="the prefix to write")
    return p


def add_parsers(subparsers) -> None:
    """Add the writing subcommands to an ``argparse`` subparsers object."""
    p = _command(subparsers, "rename", "write a copy with keys renamed", "Write a copy of SRC with keys renamed by rules.")
    p.add_argument("--rule", action="append", required=True, metavar="OLD=NEW",
                   help=_RULES_HELP + "; a rule that renames nothing is an error")
    _common(p)

    p = _command(
        subparsers, "strip", "write a copy without optimizer state",
        "Write a copy of SRC without optimizer state: by default slots and the optimizer's "
        "meta entries (beta powers, iter, hyperparameters); global_step and save_counter are kept.",
    )
    p.add_argument("--kind", action="append", choices=KINDS, metavar="KIND",
                   help=f"drop entries of this kind instead ({', '.join(KINDS)}); repeat for several")
    p.add_argument("--filter", metavar="FILTER", help="also drop the entries this filter keeps (e.g. 'kind:ema', 'Adam')")
    _common(p)

    p = _command(
        subparsers, "promote-ema", "write each EMA shadow under its variable's key",
        "Write a copy of SRC in which each ExponentialMovingAverage shadow replaces its variable "
        "(the shadows themselves are dropped): the averaged model loads without EMA code.",
    )
    p.add_argument("--strip", action="store_true", help="also drop the optimizer state (as the strip command)")
    _common(p)

    p = _command(
        subparsers, "average", "write the mean of several checkpoints",
        "Write the mean of SRC checkpoints of one model: float tensors averaged in float64 and "
        "rounded once, others taken from the last. Keys, shapes and dtypes must agree.", out_first=True,
    )
    p.add_argument("src", metavar="SRC", nargs="+", help="two or more checkpoints")
    _common(p)

    p = _command(
        subparsers, "convert", "write a TF2 object-based checkpoint for a model",
        "Convert a TF1 name-based checkpoint into a TF2 object-based one for the model that "
        "MODULE:FUNCTION builds, as tf.train.Checkpoint(model=...) writes it. Needs TensorFlow.",
    )
    p.add_argument("--model", required=True, metavar="MODULE:FUNCTION",
                   help="a function that builds the model (a Keras model or tf.Module), e.g. mymodels:build; "
                   "MODULE is imported from the current folder or the Python path")
    p.add_argument("--rule", action="append", metavar="OLD=NEW", help=_RULES_HELP.replace("renames", "maps"))
    p.add_argument("--prefer-ema", action="store_true", help="load each variable's EMA shadow where there is one")
    p.add_argument("--overwrite", action="store_true", help="replace a checkpoint that exists at OUT")


def _rules(args) -> dict:
    rules = {}
    for text in args.rule or ():
        old, new = parse_rule(text)
        rules[old] = new
    return rules


def _plan(args):
    from ..write import average, plan_write

    if args.command == "rename":
        return plan_write(args.src).rename(_rules(args))
    if args.command == "strip":
        return plan_write(args.src).strip(kinds=tuple(args.kind) if args.kind else ("slot",), filter=args.filter)
    if args.command == "promote-ema":
        plan = plan_write(args.src)
        return (plan.strip() if args.strip else plan).promote_ema()
    return average(args.src)


def _builder(spec: str):
    """The function ``MODULE:FUNCTION`` names (the user asked for that module to be imported)."""
    import importlib
    import os

    module_name, sep, function = spec.partition(":")
    if not sep or not module_name or not function:
        raise PlanError(f"--model {spec!r} is not MODULE:FUNCTION (e.g. mymodels:build).")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise PlanError(f"--model {spec!r}: cannot import {module_name!r}: {error}") from None
    build = getattr(module, function, None)
    if not callable(build):
        raise PlanError(f"--model {spec!r}: {module_name!r} has no function {function!r}.")
    return build


def run(args) -> int:
    """Run one writing subcommand; return its exit status."""
    if args.command == "convert":
        from .._tf.quiet import import_tensorflow

        # Before the user's module: it imports TensorFlow (or Keras) and would do it loudly.
        import_tensorflow()
        from ..convert import convert

        model = _builder(args.model)()
        report = convert(args.src, args.out, model, rules=_rules(args), prefer_ema=args.prefer_ema, overwrite=args.overwrite)
        print(f"{report}: a TF2 object-based checkpoint for tf.train.Checkpoint(model=...)")
        return 0
    plan = _plan(args)
    if args.dry_run:
        print(plan)
        print("(dry run: nothing written)")
        return 2 if plan.problems else 0
    report = plan.write(args.out, overwrite=args.overwrite, state_file=args.state_file)
    print(report)
    return 0
