"""``python -m ckptwidgets COMMAND ...``: list, compare and rewrite checkpoints from the shell.

Git-style subcommands, each with ``--help``, each one module of this package named in
:data:`SUBCOMMANDS`:

- ``ls PATH``: a checkpoint's entries with totals per kind, without TensorFlow
  (:mod:`~ckptwidgets.cli.ls`). ``python -m ckptwidgets PATH`` is ``ls PATH``.
- ``diff A B``: what changed between two checkpoints (:mod:`~ckptwidgets.cli.diff`).
- ``rename``, ``strip``, ``promote-ema``, ``average``, ``convert``: write a new checkpoint;
  ``--dry-run`` prints the plan, refuses what the write would refuse, and writes nothing.
- ``export SRC OUT --preset NAME`` or ``--model MODULE:FUNCTION``: write a checkpoint for
  another framework, in the format OUT's suffix names (``.safetensors``, ``.pt``,
  ``.weights.h5``; :mod:`~ckptwidgets.cli.export`).

A subcommand module has a one-line ``HELP`` (its line in ``--help``), ``add_arguments(parser)``
and ``run(args) -> int`` (the exit status); the first paragraph of its docstring heads its own
``--help`` and an optional ``EPILOG`` ends it. What they share (the writing options, ``--rule``,
the ``error:`` line) is in :mod:`ckptwidgets.cli._common`.

User errors print one ``error:`` line and exit 2; success exits 0. Messages name the command
line's options (``--overwrite``, ``--rule old/=new/``), not the Python keywords the same errors
name in a notebook. A mistyped command is named with the closest one (``unknown command 'lss'
(did you mean 'ls'?)``). TensorFlow, where a command needs it (``convert``), is imported before
anything else with its start-up log lines off (:mod:`ckptwidgets._tf.quiet`).

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
>>> list(SUBCOMMANDS)
['ls', 'diff', 'rename', 'strip', 'promote-ema', 'average', 'convert', 'export']
"""
from __future__ import annotations

import argparse
import importlib
import re
import sys

from ._common import EXIT_STATUS, KINDS_EPILOG, error, error_line, names_a_path, unknown_command, unrecognized

__all__ = ["main", "SUBCOMMANDS", "subcommand", "parser"]

#: Subcommand name -> its module in this package, in the order ``--help`` lists them.
SUBCOMMANDS = {
    "ls": "ls",
    "diff": "diff",
    "rename": "rename",
    "strip": "strip",
    "promote-ema": "promote_ema",
    "average": "average",
    "convert": "convert",
    "export": "export",
}

_LISTING = "ls"  # what `python -m ckptwidgets PATH` runs


def subcommand(name: str):
    """The module of subcommand ``name`` (a fixed name of :data:`SUBCOMMANDS`, never user input)."""
    return importlib.import_module(f"{__name__}.{SUBCOMMANDS[name]}")


def parser() -> argparse.ArgumentParser:
    """The command line's parser: one subparser per entry of :data:`SUBCOMMANDS`."""
    top = argparse.ArgumentParser(
        prog="ckptwidgets",
        description="List, compare and rewrite TensorFlow checkpoints. "
        f"'python -m ckptwidgets PATH' is 'python -m ckptwidgets {_LISTING} PATH'.",
        epilog=f"{KINDS_EPILOG} {EXIT_STATUS}",
    )
    commands = top.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        module = subcommand(name)
        epilog = " ".join(filter(None, (getattr(module, "EPILOG", None), EXIT_STATUS)))
        module.add_arguments(commands.add_parser(name, help=module.HELP, description=_description(module), epilog=epilog))
    return top


def _description(module) -> str:
    """The text atop a subcommand's ``--help``: its docstring's first paragraph (argparse rewraps it)."""
    return (module.__doc__ or module.HELP).split("\n\n")[0]


def _options_of(command) -> list[str]:
    """The long options a subcommand takes, as its usage line lists them."""
    probe = argparse.ArgumentParser(prog=command or "ckptwidgets", add_help=False)
    if command is not None:
        subcommand(command).add_arguments(probe)
    return re.findall(r"--[\w-]+", probe.format_usage())


def main(argv=None) -> int:
    """Run the command line; return the exit status (0 done, 2 error).

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name (``sys.argv[1:]`` when None).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in SUBCOMMANDS and not argv[0].startswith("-"):
        if not names_a_path(argv[0]):
            return error(unknown_command(argv[0], list(SUBCOMMANDS)))
        argv = [_LISTING, *argv]  # python -m ckptwidgets PATH: the listing, as before subcommands
    command_line = parser()
    args, unknown = command_line.parse_known_args(argv)
    if unknown:  # what parse_args says, and the option meant
        command_line.error(unrecognized(unknown, _options_of(args.command)))
    if args.command is None:
        command_line.print_help()
        return 2
    from ..errors import CheckpointError

    try:
        return subcommand(args.command).run(args)
    except CheckpointError as exception:
        return error(error_line(exception))
