"""Big synthetic checkpoints written cheaply, for scale tests and benchmarks (``bench/_inputs.py``).

``tf.raw_ops.SaveV2`` writes any number of tiny tensors in one op, without building
variables or a graph: 10,000 entries take about a second.

Example
-------
>>> prefix = save_many("/tmp/big/model.ckpt", 10_000)          # doctest: +SKIP
>>> len(ckptwidgets.open_checkpoint(prefix))                  # doctest: +SKIP
10000
"""
from __future__ import annotations

import os

import numpy as np

from ckptwidgets import import_tensorflow

__all__ = ["save_many", "synthetic_keys", "HOSTILE_KEY"]

#: A valid checkpoint key that is also markup: widgets must show it as text.
HOSTILE_KEY = "<img src=x onerror=alert(1)>"


def synthetic_keys(n: int, ema_every: int = 10) -> list[str]:
    """``n`` keys shaped like a real model's: ``layer_0000/dense_0/kernel``, biases, shadows.

    Every ``ema_every``-th kernel also gets an ``/ExponentialMovingAverage`` shadow.
    """
    if n < 1:
        raise ValueError(f"n must be positive, got {n!r}")
    keys = []
    i = 0
    while len(keys) < n:
        base = f"layer_{i // 4:04d}/dense_{i % 4}"
        keys.append(f"{base}/kernel")
        if ema_every and i % ema_every == 0:
            keys.append(f"{base}/kernel/ExponentialMovingAverage")
        keys.append(f"{base}/bias")
        i += 1
    return keys[:n]


def save_many(prefix, n: int, hostile: bool = True, ema_every: int = 10, seed: int = 0) -> str:
    """Write a name-based checkpoint of ``n`` tiny float32 tensors; return its prefix.

    Kernels are ``[2, 3]``, biases ``[3]`` (shadows take their variable's shape). With
    ``hostile`` the first key is :data:`HOSTILE_KEY` (a ``[3]`` tensor).
    """
    tf = import_tensorflow()
    prefix = os.fspath(prefix)
    os.makedirs(os.path.dirname(prefix) or ".", exist_ok=True)
    keys = synthetic_keys(n - 1 if hostile else n, ema_every)
    if hostile:
        keys = [HOSTILE_KEY] + keys
    rng = np.random.default_rng(seed)
    tensors = []
    for key in keys:
        shape = (2, 3) if "/kernel" in key else (3,)
        tensors.append(tf.constant(rng.standard_normal(shape).astype(np.float32)))
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=keys, shape_and_slices=[""] * len(keys), tensors=tensors)
    return prefix
