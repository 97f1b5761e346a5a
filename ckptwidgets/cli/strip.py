"""Write a copy of SRC without optimizer state: by default slots and the optimizer's
meta entries (beta powers, iter, hyperparameters); global_step and save_counter are kept.

``strip SRC OUT``: ``--kind`` drops other kinds instead, ``--filter`` also what a filter keeps.
A TF2 checkpoint's object graph is pruned to the keys written. The first paragraph of this
docstring heads ``strip --help``.

Example
-------
>>> from ckptwidgets.cli import parser
>>> args = parser().parse_args(["strip", "a.ckpt", "b.ckpt", "--kind", "ema"])
>>> args.kind, args.filter
(['ema'], None)
"""
from __future__ import annotations

from ._common import add_source_and_out, add_write_options, write_or_show

HELP = "write a copy without optimizer state"


def add_arguments(parser) -> None:
    """``SRC OUT``, what to drop (``--kind``, ``--filter``), the writing options."""
    from .._planning.kinds import KINDS

    add_source_and_out(parser)
    parser.add_argument("--kind", action="append", choices=KINDS, metavar="KIND",
                        help=f"drop entries of this kind instead ({', '.join(KINDS)}); repeat for several")
    parser.add_argument("--filter", metavar="FILTER", help="also drop the entries this filter keeps (e.g. 'kind:ema', 'Adam')")
    add_write_options(parser)


def run(args) -> int:
    """Write (or with ``--dry-run`` show) the stripped copy."""
    from ..write import plan_write

    kinds = tuple(args.kind) if args.kind else ("slot",)
    return write_or_show(plan_write(args.src).strip(kinds=kinds, filter=args.filter), args)
