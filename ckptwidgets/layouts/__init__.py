"""Layout transforms between frameworks: how a tensor saved by one is laid out for another.

Keras stores a Dense kernel ``[in, out]``, torch a Linear weight ``[out, in]``; a Conv2D
kernel is HWIO in Keras and OIHW in torch; gates and biases of recurrent layers differ too.
A :class:`Transform` says how a target tensor is made from its source tensor(s); a plan
carries one per assignment and shows it (``print(plan)``, the mapper, ``to_code``).
:func:`map_layer` derives them for a whole layer from its kind and the shapes of both
sides (:data:`LAYOUTS`: one converter per target layer kind).

Pure NumPy: importing this module imports no framework.
"""
from __future__ import annotations

from ._mapping import LAYOUTS, map_layer
from ._rules import LayerMapping, LayoutError
from ._transform import (IDENTITY, Transform, chain, concat, part, parts_of, permute, reorder_blocks, reshape, sum_of,
                         take, transpose, zeros_like)

__all__ = ["Transform", "IDENTITY", "permute", "transpose", "reshape", "chain", "take", "part", "concat", "parts_of",
           "sum_of", "zeros_like", "reorder_blocks", "map_layer", "LayerMapping", "LayoutError", "LAYOUTS"]
