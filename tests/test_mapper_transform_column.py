"""The mapper's transform column takes room only when some variable reads a transformed key."""
from __future__ import annotations

import numpy as np
import torch

from ckptwidgets import VariableMapper
from ckptwidgets.layouts import transpose
from ckptwidgets.sources.arrays import ArraySource


def _column_width(mapper, header="transform"):
    """The width the grid gives column ``header`` (its template lists one width per column)."""
    import re

    widths = re.findall(r"minmax\([^)]*\)|\S+", mapper.table.grid.layout.grid_template_columns)
    return widths[[c.header for c in mapper.table.columns].index(header)]


def test_hidden_without_transforms_shown_with_one_hidden_again_without():
    source = ArraySource({"fc/kernel": np.ones((3, 2), np.float32), "fc/bias": np.zeros(2, np.float32),
                          "fc.bias": np.zeros(2, np.float32)})
    module = torch.nn.Sequential()
    module.add_module("fc", torch.nn.Linear(3, 2))
    mapper = VariableMapper(source, module)
    header = mapper.table._headers["transform"]
    # The TF names pair by layer: the kernel transposed into fc.weight.
    assert mapper.plan.transforms == {"fc.weight": mapper.plan.transforms["fc.weight"]}
    assert _column_width(mapper) == "minmax(4em, 8em)" and header.value == "transform"
    mapper.plan.unassign("fc.weight")
    assert _column_width(mapper) == "0" and header.value == ""
    mapper.plan.assign("fc.weight", "fc/kernel", transform=transpose())
    assert _column_width(mapper) == "minmax(4em, 8em)" and header.value == "transform"
