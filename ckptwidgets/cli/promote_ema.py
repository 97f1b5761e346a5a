"""Write a copy of SRC in which each ExponentialMovingAverage shadow replaces its variable
(the shadows themselves are dropped): the averaged model loads without EMA code.

``promote-ema SRC OUT``: ``--strip`` also drops the optimizer state. The first paragraph of
this docstring heads ``promote-ema --help``.

Example
-------
>>> from ckptwidgets.cli import parser
>>> parser().parse_args(["promote-ema", "a.ckpt", "b.ckpt", "--strip"]).strip
True
"""
from __future__ import annotations

from ._common import add_source_and_out, add_write_options, write_or_show

HELP = "write each EMA shadow under its variable's key"


def add_arguments(parser) -> None:
    """``SRC OUT``, ``--strip``, the writing options."""
    add_source_and_out(parser)
    parser.add_argument("--strip", action="store_true", help="also drop the optimizer state (as the strip command)")
    add_write_options(parser)


def run(args) -> int:
    """Write (or with ``--dry-run`` show) the copy with the shadows promoted."""
    from ..write import plan_write

    plan = plan_write(args.src)
    return write_or_show((plan.strip() if args.strip else plan).promote_ema(), args)
