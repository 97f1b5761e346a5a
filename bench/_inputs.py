"""Inputs of the benchmarks, built cheaply once and cached under ``bench/out/``.

Each input lives in its own folder with a ``DONE`` marker written last, so an
interrupted build is redone and a finished one is reused by every later run.

- :func:`many_entries`: ``n`` tiny float32 tensors (``layer_0000/dense_0/kernel``, biases,
  an EMA shadow for every 10th kernel) written by one ``tf.raw_ops.SaveV2``
  (``tests/_synthetic.py``'s ``save_many``, which the scale tests use).
- :func:`resnet50`: every weight of Keras' ``ResNet50`` with its real shape (25,636,712
  parameters in 320 tensors) plus an ``/ExponentialMovingAverage`` shadow of each of the
  214 trainable ones.
- :func:`big`: a few big float32 tensors, about ``nbytes`` in all, written in a
  subprocess so that the 1 GB of values never sits in the benchmark's own memory.
- :func:`one_tensor`: one float32 tensor of ``nbytes`` (100 MB: ``[5000, 5000]``) of random
  values, for timing one read; a big one also written in a subprocess.
- :func:`layers`: ``count`` float32 tensors of random values, about ``nbytes`` in all, under
  a model's kind of keys (``layer_00/kernel``); ``seed`` gives another checkpoint of the same
  model (the steps :func:`ckptwidgets.average` averages). A big one written in a subprocess.
"""
from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

__all__ = [
    "OUT",
    "many_entries",
    "resnet50",
    "resnet50_shapes",
    "big",
    "one_tensor",
    "TENSOR_KEY",
    "layers",
    "layer_shapes",
    "eager_variables",
    "graph_variables",
]

OUT = Path(__file__).resolve().parent / "out"
#: The tests' helpers; ``_synthetic`` there writes the many-entry checkpoints the tests use too.
TESTS = Path(__file__).resolve().parent.parent / "tests"
EMA = "/ExponentialMovingAverage"


def _tf():
    from ckptwidgets._tf.quiet import import_tensorflow

    return import_tensorflow()


def _cached(out, name: str, build) -> str:
    """``out/name/model.ckpt``, built by ``build(prefix)`` unless already done."""
    folder = Path(out) / name
    prefix = str(folder / "model.ckpt")
    if (folder / "DONE").exists():
        return prefix
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    build(prefix)
    (folder / "DONE").write_text("ok\n")
    return prefix


def many_entries(n: int, out=OUT) -> str:
    """A name-based checkpoint of ``n`` tiny tensors; returns its prefix."""
    if str(TESTS) not in sys.path:  # tests/ is a folder of modules, not a package
        sys.path.append(str(TESTS))
    from _synthetic import save_many

    return _cached(out, f"many-{n}", lambda prefix: save_many(prefix, n, hostile=False))


def resnet50_shapes(width: int = 1) -> list[tuple[str, tuple, bool]]:
    """``(name, shape, trainable)`` of every weight of Keras' ResNet50, in model order.

    Names are the Keras 3 variable paths (``conv2_block1_1_conv/kernel``). ``width``
    divides every channel count (``width=16`` gives a tiny model of the same structure).
    """
    out = []

    def conv(name, k, cin, cout):
        out.append((f"{name}_conv/kernel", (k, k, cin, cout), True))
        out.append((f"{name}_conv/bias", (cout,), True))
        out.append((f"{name}_bn/gamma", (cout,), True))
        out.append((f"{name}_bn/beta", (cout,), True))
        out.append((f"{name}_bn/moving_mean", (cout,), False))
        out.append((f"{name}_bn/moving_variance", (cout,), False))

    c = lambda n: max(1, n // width)  # noqa: E731
    conv("conv1", 7, 3, c(64))
    cin = c(64)
    for stage, (blocks, filters) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512)), start=2):
        f = c(filters)
        for block in range(1, blocks + 1):
            name = f"conv{stage}_block{block}"
            if block == 1:
                conv(f"{name}_0", 1, cin, 4 * f)
            conv(f"{name}_1", 1, cin, f)
            conv(f"{name}_2", 3, f, f)
            conv(f"{name}_3", 1, f, 4 * f)
            cin = 4 * f
    out.append(("predictions/kernel", (cin, max(1, 1000 // width)), True))
    out.append(("predictions/bias", (max(1, 1000 // width),), True))
    # Keras orders conv weights (kernel, bias) before the block's batch norms; the order of
    # the checkpoint keys is sorted anyway.
    return out


def resnet50(width: int = 1, out=OUT) -> str:
    """ResNet-50's weights and the EMA shadows of its trainable ones, random float32."""

    def build(prefix):
        tf = _tf()
        rng = np.random.default_rng(0)
        names, tensors = [], []
        for name, shape, trainable in resnet50_shapes(width):
            value = rng.standard_normal(shape, dtype=np.float32)
            names.append(name)
            tensors.append(tf.constant(value))
            if trainable:
                names.append(name + EMA)
                tensors.append(tf.constant(value * np.float32(0.9)))
        tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names), tensors=tensors)

    return _cached(out, f"resnet50-w{width}", build)


def big_shapes(nbytes: int, count: int = 4) -> dict[str, tuple]:
    """``count`` square-ish float32 tensors of about ``nbytes`` together."""
    side = max(1, int(math.sqrt(nbytes / 4 / count)))
    return {f"big/tensor_{i}": (side, side) for i in range(count)}


#: Bigger checkpoints are written by a subprocess, so their values never sit in our memory.
IN_PROCESS_BYTES = 64 << 20


def big(nbytes: int, out=OUT) -> str:
    """A checkpoint of a few big float32 tensors, about ``nbytes``; a big one built in a subprocess."""

    def build(prefix):
        spec = json.dumps({k: list(v) for k, v in big_shapes(nbytes).items()})
        if nbytes <= IN_PROCESS_BYTES:
            _write_big(prefix, spec)
            return
        subprocess.run([sys.executable, "-m", "bench._inputs", "big", prefix, spec], check=True,
                       cwd=Path(__file__).resolve().parent.parent)

    return _cached(out, f"big-{nbytes}", build)


def _write_big(prefix: str, spec: str) -> None:
    tf = _tf()
    shapes = json.loads(spec)
    names = list(shapes)
    # Zeros are as big as any value on disk (checkpoints are not compressed) and free to make.
    tensors = [tf.zeros(shapes[n], tf.float32) for n in names]
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names), tensors=tensors)


#: The key of :func:`one_tensor`'s tensor.
TENSOR_KEY = "dense/kernel"


def one_tensor_shape(nbytes: int) -> tuple:
    """A square float32 shape of ``nbytes`` when there is one (1e8 -> 5000 x 5000), else flat."""
    count = max(1, nbytes // 4)
    side = math.isqrt(count)
    return (side, side) if side * side == count else (count,)


def one_tensor(nbytes: int, out=OUT) -> str:
    """A checkpoint of one float32 tensor of ``nbytes`` (random values) under :data:`TENSOR_KEY`."""

    def build(prefix):
        spec = json.dumps({TENSOR_KEY: list(one_tensor_shape(nbytes))})
        if nbytes <= IN_PROCESS_BYTES:
            _write_random(prefix, spec)
            return
        subprocess.run([sys.executable, "-m", "bench._inputs", "random", prefix, spec], check=True,
                       cwd=Path(__file__).resolve().parent.parent)

    return _cached(out, f"tensor-{nbytes}", build)


def _write_random(prefix: str, spec: str) -> None:
    tf = _tf()
    shapes = json.loads(spec)
    names = list(shapes)
    # Random values, unlike big()'s zeros: a reader returning wrong bytes fails the equality check.
    rng = np.random.default_rng(0)
    tensors = [tf.constant(rng.random(shapes[n], dtype=np.float32)) for n in names]
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names), tensors=tensors)


def layer_shapes(nbytes: int, count: int = 32) -> dict[str, tuple]:
    """``count`` float32 ``[rows, 1024]`` kernels of about ``nbytes`` together (at least one row each)."""
    rows = max(1, nbytes // 4 // 1024 // count)
    return {f"layer_{i:02d}/kernel": (rows, 1024) for i in range(count)}


def layers(nbytes: int, count: int = 32, seed: int = 0, out=OUT) -> str:
    """A checkpoint of :func:`layer_shapes` tensors of random values (``seed``); a big one built in a subprocess."""

    def build(prefix):
        spec = json.dumps({"seed": seed, "shapes": {k: list(v) for k, v in layer_shapes(nbytes, count).items()}})
        if nbytes <= IN_PROCESS_BYTES:
            _write_layers(prefix, spec)
            return
        subprocess.run([sys.executable, "-m", "bench._inputs", "layers", prefix, spec], check=True,
                       cwd=Path(__file__).resolve().parent.parent)

    return _cached(out, f"layers-{nbytes}-{count}-s{seed}", build)


def _write_layers(prefix: str, spec: str) -> None:
    tf = _tf()
    spec = json.loads(spec)
    names = list(spec["shapes"])
    rng = np.random.default_rng(spec["seed"])
    tensors = [tf.constant(rng.standard_normal(spec["shapes"][n], dtype=np.float32)) for n in names]
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names), tensors=tensors)


def eager_variables(specs) -> list:
    """Eager ``tf.Variable`` s of zeros for ``(name, shape)`` pairs (non-trainable: faster to make)."""
    tf = _tf()
    return [tf.Variable(np.zeros(shape, np.float32), name=name, trainable=False) for name, shape in specs]


def graph_variables(graph, specs) -> list:
    """Resource variables in ``graph`` for ``(name, shape)`` pairs; never initialised, so they
    hold no memory until a restore or an initializer fills them."""
    tf = _tf()
    with graph.as_default():
        return [
            tf.compat.v1.get_variable(name, shape=shape, dtype=tf.float32, use_resource=True,
                                      initializer=tf.compat.v1.zeros_initializer())
            for name, shape in specs
        ]


if __name__ == "__main__":  # python -m bench._inputs big|random|layers PREFIX SPEC
    if sys.argv[1:2] == ["big"]:
        _write_big(sys.argv[2], sys.argv[3])
    elif sys.argv[1:2] == ["random"]:
        _write_random(sys.argv[2], sys.argv[3])
    elif sys.argv[1:2] == ["layers"]:
        _write_layers(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit("usage: python -m bench._inputs big|random|layers PREFIX SPEC_JSON")
