"""Compare two checkpoints: keys only in one, shape or dtype changes, likely renames
(same shape and dtype, equal or close values under another key) and how much each value changed,
most changed first. Reads both without TensorFlow.

``diff A B``: the comparison is :func:`ckptwidgets.diff.diff_checkpoints` and the table its
``text()``. The first paragraph of this docstring heads ``diff --help``.

Example
-------
>>> from ckptwidgets.cli import parser
>>> parser().parse_args(["diff", "a.ckpt", "b.ckpt", "--rtol", "1e-3"]).rtol
0.001
"""
from __future__ import annotations

from ._common import print_text

HELP = "compare two checkpoints"


def add_arguments(parser) -> None:
    """``A B`` and the tolerances for "close"."""
    parser.add_argument("a", metavar="A", help="the first checkpoint (prefix, .index file or folder)")
    parser.add_argument("b", metavar="B", help="the second checkpoint")
    parser.add_argument("--rtol", type=float, default=1e-6, help="relative tolerance for 'close' (renames); default 1e-6")
    parser.add_argument("--atol", type=float, default=0.0, help="absolute tolerance for 'close'; default 0")


def run(args) -> int:
    """Print the diff's table."""
    from ..diff import diff_checkpoints

    return print_text(diff_checkpoints(args.a, args.b, rtol=args.rtol, atol=args.atol).text())
