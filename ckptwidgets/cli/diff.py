"""The command line's ``diff A B``: what changed between two checkpoints.

Private helper of :mod:`ckptwidgets.__main__`; the comparison is
:func:`ckptwidgets.diff.diff_checkpoints` and the table its ``text()``.

Example
-------
>>> import argparse
>>> parser = argparse.ArgumentParser(prog="ckptwidgets"); add_parser(parser.add_subparsers(dest="command"))
>>> parser.parse_args(["diff", "a.ckpt", "b.ckpt", "--rtol", "1e-3"]).rtol
0.001
"""
from __future__ import annotations

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> None:
    """Add ``diff`` to an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "diff", help="compare two checkpoints",
        description="Compare two checkpoints: keys only in one, shape or dtype changes, likely renames "
        "(same shape and dtype, equal or close values under another key) and how much each value changed, "
        "most changed first. Reads both without TensorFlow.",
    )
    p.add_argument("a", metavar="A", help="the first checkpoint (prefix, .index file or folder)")
    p.add_argument("b", metavar="B", help="the second checkpoint")
    p.add_argument("--rtol", type=float, default=1e-6, help="relative tolerance for 'close' (renames); default 1e-6")
    p.add_argument("--atol", type=float, default=0.0, help="absolute tolerance for 'close'; default 0")


def run(args) -> str:
    """The diff's table as text."""
    from ..diff import diff_checkpoints

    return diff_checkpoints(args.a, args.b, rtol=args.rtol, atol=args.atol).text()
