"""Write a copy of SRC with keys renamed by rules.

``rename SRC OUT --rule OLD=NEW``: a ``--rule`` that renames nothing is an error naming the
closest scope, not an unchanged copy. The first paragraph of this docstring heads
``rename --help``.

Example
-------
``--dry-run`` shows which key becomes which and writes nothing:

>>> import os, tempfile
>>> import numpy as np
>>> from ckptwidgets.cli import main
>>> from ckptwidgets.sources.arrays import ArraySource
>>> from ckptwidgets.write import plan_write
>>> src = os.path.join(tempfile.mkdtemp(), "old.safetensors")
>>> _ = plan_write(ArraySource({"old/w": np.zeros(2, np.float32)})).write(src)
>>> main(["rename", src, "new.safetensors", "--rule", "old/=new/", "--dry-run"])
Write 1 tensor (8 B):
key    from   op    dtype    shape  size
new/w  old/w  copy  float32  [2]    8 B
(dry run: nothing written)
0
"""
from __future__ import annotations

from ._common import RULES_HELP, add_source_and_out, add_write_options, rules_of, write_or_show

HELP = "write a copy with keys renamed"


def add_arguments(parser) -> None:
    """``SRC OUT``, one ``--rule`` or more, the writing options."""
    add_source_and_out(parser)
    parser.add_argument("--rule", action="append", required=True, metavar="OLD=NEW",
                        help=RULES_HELP + "; a rule that renames nothing is an error")
    add_write_options(parser)


def run(args) -> int:
    """Write (or with ``--dry-run`` show) the renamed copy."""
    from ..write import plan_write

    return write_or_show(plan_write(args.src).rename(rules_of(args)), args)
