"""``promote-ema SRC OUT``: each ExponentialMovingAverage shadow written under its variable's key.

The shadows themselves are dropped, so the averaged model loads without EMA code;
``--strip`` also drops the optimizer state.

Example
-------
>>> import argparse
>>> parser = argparse.ArgumentParser(prog="ckptwidgets promote-ema"); add_arguments(parser)
>>> parser.parse_args(["a.ckpt", "b.ckpt", "--strip"]).strip
True
"""
from __future__ import annotations

from ._common import add_source_and_out, add_write_options, write_or_show

__all__ = ["HELP", "DESCRIPTION", "add_arguments", "run"]

HELP = "write each EMA shadow under its variable's key"
DESCRIPTION = (
    "Write a copy of SRC in which each ExponentialMovingAverage shadow replaces its variable "
    "(the shadows themselves are dropped): the averaged model loads without EMA code."
)


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
