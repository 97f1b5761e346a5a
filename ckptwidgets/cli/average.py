"""Write the mean of SRC checkpoints of one model: float tensors averaged in float64 and
rounded once, others taken from the last. Keys, shapes and dtypes must agree.

``average OUT SRC SRC...``: OUT comes first, the sources are many. The first paragraph of this
docstring heads ``average --help``.

Example
-------
>>> from ckptwidgets.cli import parser
>>> args = parser().parse_args(["average", "avg.ckpt", "a.ckpt", "b.ckpt"])
>>> args.out, args.src
('avg.ckpt', ['a.ckpt', 'b.ckpt'])
"""
from __future__ import annotations

from ._common import add_write_options, write_or_show

HELP = "write the mean of several checkpoints"


def add_arguments(parser) -> None:
    """``OUT SRC...``, the writing options."""
    parser.add_argument("out", metavar="OUT", help="the prefix to write")
    parser.add_argument("src", metavar="SRC", nargs="+", help="two or more checkpoints")
    add_write_options(parser)


def run(args) -> int:
    """Write (or with ``--dry-run`` show) the mean."""
    from ..write import average

    return write_or_show(average(args.src), args)
