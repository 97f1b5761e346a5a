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

import os

from ._common import OUT_HELP, add_write_options, write_or_show

HELP = "write the mean of several checkpoints"


def add_arguments(parser) -> None:
    """``OUT SRC...``, the writing options."""
    parser.add_argument("out", metavar="OUT", help=OUT_HELP)
    parser.add_argument("src", metavar="SRC", nargs="+", help="two or more checkpoints")
    add_write_options(parser)


def run(args) -> int:
    """Write (or with ``--dry-run`` show) the mean; OUT named last by mistake is said before anything
    is written."""
    from ..errors import CheckpointNotFoundError, PlanError
    from ..write import average

    out_is_a_checkpoint = _is_checkpoint(args.out)
    try:
        plan = average(args.src)
    except CheckpointNotFoundError as error:
        last = args.src[-1]
        if not out_is_a_checkpoint or _is_checkpoint(last):
            raise
        raise PlanError(f"{error} If {last!r} is the output: average writes its first argument, OUT "
                        f"('average {last} {args.out} {' '.join(args.src[:-1])}').") from None
    if out_is_a_checkpoint and not args.overwrite:
        # The writer's own refusals first: OUT among the sources is never written, even with --overwrite.
        plan.write(args.out, overwrite=True, dry_run=True)
        raise PlanError(f"OUT {args.out!r} is a checkpoint already: average writes its first argument "
                        f"(average OUT SRC [SRC ...]); name a new OUT first, or pass overwrite=True to replace it "
                        f"with the mean of {' '.join(args.src)}.")
    return write_or_show(plan, args)


def _is_checkpoint(path: str) -> bool:
    """``path`` opens as a checkpoint (a folder is left to the writer, which refuses it)."""
    from ..errors import CheckpointError
    from ..reader import open_checkpoint

    if os.path.isdir(path):
        return False
    try:
        open_checkpoint(path)
    except CheckpointError:
        return False
    return True
