"""Layer converters (issue #25 item 4): a Keras layer and its torch twin compute the same function
once weights are copied with ``map_layer``, both ways; the mapping round-trips bit for bit; what
cannot be decided is a LayoutError naming both shapes.

The oracle is the frameworks themselves: real Keras 3 layers (TF backend) and real torch modules
run on the same random input (channels-last for Keras, channels-first for torch; batch-first
recurrent layers). Tolerance: float32 round-off of two different summation orders, ``rtol=1e-5``
with ``atol=1e-6`` for feed-forward layers and ``atol=1e-5`` for recurrent and attention layers.
"""
from __future__ import annotations

import numpy as np
import pytest

import ckptwidgets
from ckptwidgets.layouts import LAYOUTS, LayoutError, map_layer

ckptwidgets.import_tensorflow()
import keras  # noqa: E402
import torch  # noqa: E402

torch.manual_seed(0)
RNG = np.random.default_rng(25)


def keras_weights(layer) -> dict:
    """``{local name: array}``: a weight's path without the layer's own name (``lstm_cell/kernel``, ``query/kernel``)."""
    return {w.path.split("/", 1)[1]: np.array(w.numpy()) for w in layer.weights}


def torch_weights(module) -> dict:
    return {name: t.detach().numpy().copy() for name, t in module.state_dict().items()}


def shapes(arrays: dict) -> dict:
    return {name: a.shape for name, a in arrays.items()}


def converted(kind, target: dict, source: dict) -> dict:
    """The target layer's arrays made from ``source`` by ``map_layer`` (shapes from ``target``)."""
    mappings = map_layer(kind, shapes(target), shapes(source))
    values = {m.target: m.transform(*[source[s] for s in m.sources]) for m in mappings}
    for name, value in values.items():
        assert value.shape == target[name].shape and value.dtype == target[name].dtype, name
    return values


def randomize_keras(layer):
    """Every weight random (Keras' zero biases and unit gammas would hide a wrong mapping)."""
    values = [RNG.normal(size=w.shape).astype(np.float32) for w in layer.weights]
    values = [np.abs(v) + 0.5 if "variance" in w.path else v for v, w in zip(values, layer.weights)]
    layer.set_weights(values)


def randomize_torch(module):
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.is_floating_point():
                value = torch.from_numpy(RNG.normal(size=tuple(t.shape)).astype(np.float32))
                t.copy_(value.abs() + 0.5 if name.endswith("running_var") else value)


def load_torch(module, values):
    missing, unexpected = module.load_state_dict({k: torch.from_numpy(v) for k, v in values.items()}, strict=False)
    assert not unexpected and all(name.endswith("num_batches_tracked") for name in missing)


def load_keras(layer, values):
    layer.set_weights([values[name] for name in keras_weights(layer)])


class Case:
    """A Keras layer and its torch twin, each built, and how to call both on one input."""

    def __init__(self, keras_layer, keras_kind, torch_module, torch_kind, inputs, to_torch=None, from_torch=None,
                 call_keras=None, call_torch=None, atol=1e-6):
        self.keras_layer, self.keras_kind, self.torch_module, self.torch_kind = keras_layer, keras_kind, torch_module, torch_kind
        self.inputs, self.atol = inputs, atol
        self.to_torch = to_torch or (lambda x: x)
        self.from_torch = from_torch or (lambda y: y)
        self.call_keras = call_keras or (lambda layer, *xs: layer(*xs))
        self.call_torch = call_torch or (lambda module, *xs: module(*xs))
        self.torch_module.eval()
        self.keras_out()  # builds the Keras layer

    def keras_out(self):
        return np.asarray(self.call_keras(self.keras_layer, *self.inputs))

    def torch_out(self):
        with torch.no_grad():
            out = self.call_torch(self.torch_module, *[torch.from_numpy(self.to_torch(x)) for x in self.inputs])
        return self.from_torch(out.numpy())


def channels_first(x):
    return np.ascontiguousarray(np.moveaxis(x, -1, 1))


def channels_last(y):
    return np.moveaxis(y, 1, -1)


def floats(*shape):
    return RNG.normal(size=shape).astype(np.float32)


def _mha(x, kdim=None):
    def call_torch(module, q, *kv):
        kv = kv or (q,)
        return module(q, kv[0], kv[0], need_weights=False)[0]

    return call_torch


CASES = {
    "dense": lambda: Case(keras.layers.Dense(3), "Dense", torch.nn.Linear(4, 3), "Linear", [floats(2, 4)]),
    "conv1d": lambda: Case(keras.layers.Conv1D(5, 3), "Conv1D", torch.nn.Conv1d(4, 5, 3), "Conv1d", [floats(2, 9, 4)],
                           channels_first, channels_last),
    "conv2d": lambda: Case(keras.layers.Conv2D(5, (3, 2)), "Conv2D", torch.nn.Conv2d(4, 5, (3, 2)), "Conv2d",
                           [floats(2, 7, 6, 4)], channels_first, channels_last),
    "conv3d": lambda: Case(keras.layers.Conv3D(3, (2, 3, 2)), "Conv3D", torch.nn.Conv3d(2, 3, (2, 3, 2)), "Conv3d",
                           [floats(2, 5, 6, 4, 2)], channels_first, channels_last),
    "depthwise": lambda: Case(keras.layers.DepthwiseConv2D((3, 2), depth_multiplier=2), "DepthwiseConv2D",
                              torch.nn.Conv2d(3, 6, (3, 2), groups=3), "Conv2d", [floats(2, 7, 6, 3)],
                              channels_first, channels_last),
    "embedding": lambda: Case(keras.layers.Embedding(10, 4), "Embedding", torch.nn.Embedding(10, 4), "Embedding",
                              [RNG.integers(0, 10, size=(2, 5))]),
    "batch_norm": lambda: Case(keras.layers.BatchNormalization(epsilon=1e-3), "BatchNormalization",
                               torch.nn.BatchNorm1d(5, eps=1e-3), "BatchNorm1d", [floats(4, 5)],
                               call_keras=lambda layer, x: layer(x, training=False)),
    "batch_norm_2d": lambda: Case(keras.layers.BatchNormalization(epsilon=1e-3), "BatchNormalization",
                                  torch.nn.BatchNorm2d(3, eps=1e-3), "BatchNorm2d", [floats(2, 4, 5, 3)],
                                  channels_first, channels_last, call_keras=lambda layer, x: layer(x, training=False)),
    "layer_norm": lambda: Case(keras.layers.LayerNormalization(epsilon=1e-5), "LayerNormalization",
                               torch.nn.LayerNorm(5, eps=1e-5), "LayerNorm", [floats(2, 3, 5)]),
    "lstm": lambda: Case(keras.layers.LSTM(3, return_sequences=True), "LSTM",
                         torch.nn.LSTM(4, 3, batch_first=True), "LSTM", [floats(2, 6, 4)],
                         call_torch=lambda module, x: module(x)[0], atol=1e-5),
    "gru": lambda: Case(keras.layers.GRU(3, return_sequences=True), "GRU",
                        torch.nn.GRU(4, 3, batch_first=True), "GRU", [floats(2, 6, 4)],
                        call_torch=lambda module, x: module(x)[0], atol=1e-5),
    "attention": lambda: Case(keras.layers.MultiHeadAttention(2, 4), "MultiHeadAttention",
                              torch.nn.MultiheadAttention(8, 2, batch_first=True), "MultiheadAttention",
                              [floats(2, 5, 8)], call_keras=lambda layer, x: layer(x, x), call_torch=_mha(None),
                              atol=1e-5),
    "cross_attention": lambda: Case(keras.layers.MultiHeadAttention(2, 4), "MultiHeadAttention",
                                    torch.nn.MultiheadAttention(8, 2, kdim=6, vdim=6, batch_first=True),
                                    "MultiheadAttention", [floats(2, 5, 8), floats(2, 7, 6)],
                                    call_keras=lambda layer, q, kv: layer(q, kv), call_torch=_mha(6), atol=1e-5),
}


@pytest.fixture(params=sorted(CASES))
def case(request):
    return CASES[request.param]()


def test_keras_to_torch_computes_the_same_function(case):
    randomize_keras(case.keras_layer)
    load_torch(case.torch_module, converted(case.torch_kind, torch_weights(case.torch_module),
                                            keras_weights(case.keras_layer)))
    np.testing.assert_allclose(case.torch_out(), case.keras_out(), rtol=1e-5, atol=case.atol)


def test_torch_to_keras_computes_the_same_function(case):
    randomize_torch(case.torch_module)
    load_keras(case.keras_layer, converted(case.keras_kind, keras_weights(case.keras_layer),
                                           torch_weights(case.torch_module)))
    np.testing.assert_allclose(case.keras_out(), case.torch_out(), rtol=1e-5, atol=case.atol)


def test_keras_to_torch_and_back_is_bit_for_bit(case):
    randomize_keras(case.keras_layer)
    original = keras_weights(case.keras_layer)
    in_torch = converted(case.torch_kind, torch_weights(case.torch_module), original)
    torch_side = {**torch_weights(case.torch_module), **in_torch}
    back = converted(case.keras_kind, original, torch_side)
    assert list(back) == list(original)
    for name, value in original.items():
        np.testing.assert_array_equal(back[name], value, err_msg=name)


def test_torch_to_keras_and_back_is_bit_for_bit_but_the_lstm_bias_pair(case):
    randomize_torch(case.torch_module)
    original = torch_weights(case.torch_module)
    back = converted(case.torch_kind, original, converted(case.keras_kind, keras_weights(case.keras_layer), original))
    for name, value in back.items():
        if case.torch_kind == "LSTM" and name.startswith("bias"):
            continue  # Keras holds their sum: bias_ih gets it, bias_hh zeros (the function is the same, tested above)
        np.testing.assert_array_equal(value, original[name], err_msg=name)
    assert set(back) == {n for n in original if not n.endswith("num_batches_tracked")}


def test_positional_keras_names_give_the_same_mappings(case):
    named = keras_weights(case.keras_layer)
    positional = {str(i): value for i, value in enumerate(named.values())}
    position_of = dict(zip(named, positional))
    to_torch = map_layer(case.torch_kind, shapes(torch_weights(case.torch_module)), shapes(named))
    by_position = map_layer(case.torch_kind, shapes(torch_weights(case.torch_module)), shapes(positional))
    assert [(m.target, tuple(position_of[s] for s in m.sources), m.transform.name) for m in to_torch] == \
        [(m.target, m.sources, m.transform.name) for m in by_position]
    to_keras = map_layer(case.keras_kind, shapes(positional), shapes(torch_weights(case.torch_module)))
    assert [m.target for m in to_keras] == list(positional)


def test_weights_h5_names_of_attention_sublayers():
    layer = CASES["attention"]().keras_layer
    h5_names = {f"{sub}_dense/vars/{i}" if sub != "attention_output" else f"output_dense/vars/{i}": value.shape
                for (sub, i), value in zip([(s, i) for s in ("query", "key", "value", "attention_output") for i in (0, 1)],
                                           keras_weights(layer).values())}
    mappings = map_layer("MultiheadAttention", {"in_proj_weight": (24, 8), "in_proj_bias": (24,),
                                                "out_proj.weight": (8, 8), "out_proj.bias": (8,)}, h5_names)
    assert [m.sources for m in mappings] == [("query_dense/vars/0", "key_dense/vars/0", "value_dense/vars/0"),
                                             ("query_dense/vars/1", "key_dense/vars/1", "value_dense/vars/1"),
                                             ("output_dense/vars/0",), ("output_dense/vars/1",)]


def test_transform_names_say_what_happens():
    names = {kind: [(m.target, m.transform.name) for m in map_layer(kind, target, source)] for kind, target, source in [
        ("Linear", {"weight": (3, 4)}, {"kernel": (4, 3)}),
        ("Conv2d", {"weight": (5, 4, 3, 2)}, {"kernel": (3, 2, 4, 5)}),
        ("Conv2D", {"kernel": (3, 2, 4, 5)}, {"weight": (5, 4, 3, 2)}),
        ("GRU", {"weight_ih_l0": (9, 4)}, {"kernel": (4, 9)}),
        ("LSTM", {"kernel": (4, 12), "bias": (12,)},
         {"weight_ih_l0": (12, 4), "bias_ih_l0": (12,), "bias_hh_l0": (12,)}),
        ("LSTM", {"bias_ih_l0": (12,), "bias_hh_l0": (12,)}, {"bias": (12,)}),
    ]}
    assert names == {"Linear": [("weight", "transpose")], "Conv2d": [("weight", "HWIO->OIHW")],
                     "Conv2D": [("kernel", "OIHW->HWIO")], "GRU": [("weight_ih_l0", "transpose then gates z,r,h->r,z,n")],
                     "LSTM": [("bias_ih_l0", "as is"), ("bias_hh_l0", "zeros")]}
    lstm_to_keras = map_layer("LSTM", {"kernel": (4, 12), "bias": (12,)},
                              {"weight_ih_l0": (12, 4), "bias_ih_l0": (12,), "bias_hh_l0": (12,)})
    assert [(m.sources, m.transform.name) for m in lstm_to_keras] == [(("weight_ih_l0",), "transpose"),
                                                                       (("bias_ih_l0", "bias_hh_l0"), "sum")]
    assert lstm_to_keras[1].transform.code("a", "b") == "(a + b)"


def test_code_of_each_transform_computes_what_the_transform_does():
    case = CASES["gru"]()
    randomize_keras(case.keras_layer)
    source = keras_weights(case.keras_layer)
    for m in map_layer("GRU", shapes(torch_weights(case.torch_module)), shapes(source)):
        names = [f"s{i}" for i in range(len(m.sources))]
        value = eval(m.transform.code(*names), {"np": np, **dict(zip(names, (source[s] for s in m.sources)))})
        np.testing.assert_array_equal(value, m.transform(*[source[s] for s in m.sources]), err_msg=m.target)


@pytest.mark.parametrize("kind, target, source, words", [
    ("Linear", {"weight": (3, 4), "bias": (3,)}, {"kernel": (5, 3), "bias": (3,)},
     ["Linear weight [3, 4]", "Dense kernel [5, 3]"]),
    ("Dense", {"kernel": (4, 3)}, {"weight": (4, 3)}, ["Dense kernel [4, 3]", "Linear weight [4, 3]"]),
    ("Conv2d", {"weight": (5, 4, 3, 3)}, {"kernel": (3, 3, 5, 4)}, ["Conv2d weight [5, 4, 3, 3]", "kernel [3, 3, 5, 4]"]),
    ("Linear", {"weight": (3, 4)}, {"kernel": (4, 3), "bias": (3,)}, ["Dense bias [3]", "has no place in Linear"]),
    ("Linear", {"weight": (3, 4), "bias": (3,)}, {"kernel": (4, 3)}, ["Linear bias [3]", "no bias"]),
    ("GRU", {"weight_ih_l0": (9, 4), "bias_ih_l0": (9,), "bias_hh_l0": (9,)}, {"kernel": (4, 9), "bias": (9,)},
     ["bias_ih_l0 [9]", "bias_hh_l0 [9]", "GRU bias [9]", "reset_after"]),
    ("GRU", {"kernel": (4, 9), "bias": (9,)}, {"weight_ih_l0": (9, 4), "bias_ih_l0": (9,), "bias_hh_l0": (9,)},
     ["GRU bias [9]", "bias_ih_l0 [9]", "reset_after"]),
    ("LSTM", {"weight_ih_l0": (12, 4), "weight_ih_l1": (12, 3)}, {"kernel": (4, 12)}, ["weight_ih_l1 [12, 3]", "num_layers=1"]),
    ("MultiheadAttention", {"in_proj_weight": (24, 8)},
     {"query/kernel": (8, 2, 3), "key/kernel": (8, 2, 3), "value/kernel": (8, 2, 3)},
     ["in_proj_weight [24, 8]", "query/kernel [8, 2, 3]"]),
    ("MultiHeadAttention", {"query/kernel": (8, 2, 3)}, {"in_proj_weight": (24, 8)},
     ["query/kernel [8, 2, 3]", "in_proj_weight [24, 8]"]),
    ("BatchNorm1d", {"weight": (5,), "running_mean": (5,)}, {"0": (5,), "1": (5,), "2": (5,)},
     ["0 [5]", "1 [5]", "2 [5]", "name them"]),
    ("Flatten", {}, {}, ["Flatten", "Linear"]),
])
def test_what_cannot_be_decided_is_a_layout_error_naming_both_shapes(kind, target, source, words):
    with pytest.raises(LayoutError) as error:
        map_layer(kind, target, source)
    for word in words:
        assert word in str(error.value)
    assert isinstance(error.value, ValueError)


def test_every_registered_kind_is_tested():
    tested = {c.torch_kind for c in (f() for f in CASES.values())} | {c.keras_kind for c in (f() for f in CASES.values())}
    assert tested == set(LAYOUTS) - {"BatchNorm3d"}
