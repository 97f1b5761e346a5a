"""A WritePlan item with a layout transform is written transformed, in every writing format."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ckptwidgets import open_checkpoint
from ckptwidgets.layouts import chain, permute, reshape, transpose
from ckptwidgets.sources.arrays import ArraySource
from ckptwidgets.write import WriteItem, WritePlan

KERNEL = np.arange(6, dtype=np.float32).reshape(2, 3)


def _plan(source, transform, key="dense.weight"):
    shape = transform.shape(KERNEL.shape)
    item = WriteItem(key, ((source, "dense/kernel"),), "float32", shape, "transform", transform)
    return WritePlan([item])


@pytest.mark.parametrize("name", ["out.ckpt", "out.safetensors"])
def test_transposed_kernel_is_written_transposed(tmp_path, name):
    source = open_checkpoint(ArraySource({"dense/kernel": KERNEL}))
    plan = _plan(source, transpose())
    assert "transpose('dense/kernel')" in str(plan)
    plan.write(tmp_path / name, progress=False)
    written = open_checkpoint(tmp_path / name)
    np.testing.assert_array_equal(written.read("dense.weight"), KERNEL.T)
    assert written.read("dense.weight").flags.c_contiguous


def test_safetensors_metadata_says_which_transform(tmp_path):
    source = open_checkpoint(ArraySource({"dense/kernel": KERNEL}))
    _plan(source, transpose()).write(tmp_path / "out.safetensors", progress=False)
    head = (tmp_path / "out.safetensors").read_bytes()
    header = json.loads(head[8:8 + int.from_bytes(head[:8], "little")])
    assert json.loads(header["__metadata__"]["ckptwidgets.from"]) == {"dense.weight": "transpose of dense/kernel"}


def test_inverse_round_trips_a_conv_kernel():
    hwio = np.random.default_rng(0).normal(size=(3, 5, 4, 8)).astype(np.float32)
    to_oihw = permute((3, 2, 0, 1), "HWIO->OIHW")
    oihw = to_oihw(hwio)
    assert oihw.shape == (8, 4, 3, 5) == to_oihw.shape(hwio.shape)
    np.testing.assert_array_equal(to_oihw.inverse()(oihw), hwio)
    assert to_oihw.inverse().name == "OIHW->HWIO"


def test_chain_shapes_codes_and_inverts():
    t = chain(reshape((6,), source=(2, 3)), reshape((3, 2), source=(6,)))
    assert t.shape((2, 3)) == (3, 2)
    x = KERNEL
    np.testing.assert_array_equal(t.inverse()(t(x)), x)
    assert eval(t.code("x"), {"np": np, "x": x}).shape == (3, 2)


def test_wrong_shape_is_refused_with_both_shapes():
    with pytest.raises(ValueError, match=r"rank-4 tensor, got shape \[2, 3\]"):
        permute((3, 2, 0, 1)).shape((2, 3))
