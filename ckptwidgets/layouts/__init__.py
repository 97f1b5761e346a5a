"""Layout transforms between frameworks: how a tensor saved by one is laid out for another.

Keras stores a Dense kernel ``[in, out]``, torch a Linear weight ``[out, in]``; a Conv2D
kernel is HWIO in Keras and OIHW in torch; gates and biases of recurrent layers differ too.
A :class:`Transform` says how a target tensor is made from its source tensor(s); a plan
carries one per assignment and shows it (``print(plan)``, the mapper, ``to_code``).

Pure NumPy: importing this module imports no framework.
"""
from __future__ import annotations

from ._transform import IDENTITY, Transform, chain, permute, reshape, transpose

__all__ = ["Transform", "IDENTITY", "permute", "transpose", "reshape", "chain"]
