"""``average OUT SRC SRC...``: the mean of several checkpoints of one model.

Float tensors are averaged in float64 and rounded once, the others taken from the last
checkpoint; keys, shapes and dtypes must agree. OUT comes first: the sources are many.

Example
-------
>>> import argparse
>>> parser = argparse.ArgumentParser(prog="ckptwidgets average"); add_arguments(parser)
>>> args = parser.parse_args(["avg.ckpt", "a.ckpt", "b.ckpt"])
>>> args.out, args.src
('avg.ckpt', ['a.ckpt', 'b.ckpt'])
"""
from __future__ import annotations

from ._common import add_write_options, write_or_show

__all__ = ["HELP", "DESCRIPTION", "add_arguments", "run"]

HELP = "write the mean of several checkpoints"
DESCRIPTION = (
    "Write the mean of SRC checkpoints of one model: float tensors averaged in float64 and "
    "rounded once, others taken from the last. Keys, shapes and dtypes must agree."
)


def add_arguments(parser) -> None:
    """``OUT SRC...``, the writing options."""
    parser.add_argument("out", metavar="OUT", help="the prefix to write")
    parser.add_argument("src", metavar="SRC", nargs="+", help="two or more checkpoints")
    add_write_options(parser)


def run(args) -> int:
    """Write (or with ``--dry-run`` show) the mean."""
    from ..write import average

    return write_or_show(average(args.src), args)
