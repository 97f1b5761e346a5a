"""Cross-framework pairing (issue #25 interface 2): a checkpoint's layers, grouped from its keys, go
to the model's layers of the other framework by structure, with the transform map_layer derives.

Checkpoints are written by Keras 3, tf_keras, TF1's Saver and torch (safetensors) into tmp_path;
the variables are described as the plan describes them (name, shape, framework, layer, layer_kind).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

import ckptwidgets
from ckptwidgets import open_checkpoint
from ckptwidgets._planning.cross import cross_framework_matches, natural_key
from conftest import save_graph_checkpoint

tf = ckptwidgets.import_tensorflow()
import keras  # noqa: E402
import safetensors.torch  # noqa: E402
import tf_keras  # noqa: E402
import torch  # noqa: E402


class Var(NamedTuple):
    """The VarInfo fields cross matching reads."""

    name: str
    shape: tuple
    framework: str
    layer: str | None
    layer_kind: str | None


def torch_vars(module) -> list:
    """Each tensor's layer: the outermost module on its path that is no Sequential (as the torch target does)."""
    layers = {}
    for path, sub in module.named_modules():
        if path and type(sub).__name__ != "Sequential" and not any(path.startswith(p + ".") for p in layers):
            layers[path] = type(sub).__name__
    out = []
    for name, tensor in module.state_dict().items():
        layer = next((p for p in layers if name.startswith(p + ".")), None)
        out.append(Var(name, tuple(tensor.shape), "torch", layer, layers.get(layer)))
    return out


def keras_vars(model) -> list:
    return [Var(w.path, tuple(w.shape), "keras", layer.path, type(layer).__name__)
            for layer in model.layers for w in layer.weights]


def summary(match) -> dict:
    return {name: (keys, transform.name) for name, (keys, transform) in match.pairs.items()}


def test_natural_order_of_layer_names():
    names = ["dense_10", "dense_2", "dense", "dense_1", "10", "2", "layer_with_weights-10", "layer_with_weights-9"]
    assert sorted(names, key=natural_key) == ["2", "10", "dense", "dense_1", "dense_2", "dense_10",
                                              "layer_with_weights-9", "layer_with_weights-10"]


def test_keras_weights_h5_into_a_torch_mlp_computes_the_same(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, name="dense"),
                              keras.layers.BatchNormalization(epsilon=1e-3, name="batch_normalization"),
                              keras.layers.Dense(3, name="dense_1"), keras.layers.Dense(2, name="dense_2")])
    rng = np.random.default_rng(0)
    model.set_weights([np.abs(v) + 0.5 if "variance" in w.path else v
                       for w, v in ((w, rng.normal(size=w.shape).astype(np.float32)) for w in model.weights)])
    model.save_weights(tmp_path / "mlp.weights.h5")
    net = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.BatchNorm1d(5, eps=1e-3), torch.nn.Linear(5, 3),
                              torch.nn.Linear(3, 2)).eval()
    ckpt = open_checkpoint(tmp_path / "mlp.weights.h5")
    match = cross_framework_matches(ckpt, torch_vars(net))
    assert match.problems == []
    assert summary(match) == {
        "0.weight": (("layers/dense/vars/0",), "transpose"), "0.bias": (("layers/dense/vars/1",), "as is"),
        "1.weight": (("layers/batch_normalization/vars/0",), "as is"),
        "1.bias": (("layers/batch_normalization/vars/1",), "as is"),
        "1.running_mean": (("layers/batch_normalization/vars/2",), "as is"),
        "1.running_var": (("layers/batch_normalization/vars/3",), "as is"),
        "2.weight": (("layers/dense_1/vars/0",), "transpose"), "2.bias": (("layers/dense_1/vars/1",), "as is"),
        "3.weight": (("layers/dense_2/vars/0",), "transpose"), "3.bias": (("layers/dense_2/vars/1",), "as is")}
    assert "Keras layer 'dense_1' -> torch module '2' (Linear), by order" in match.hints
    state = {name: torch.from_numpy(t(*[ckpt.read(k) for k in keys])) for name, (keys, t) in match.pairs.items()}
    net.load_state_dict(state, strict=False)
    x = rng.normal(size=(3, 4)).astype(np.float32)
    np.testing.assert_allclose(net(torch.from_numpy(x)).detach().numpy(), np.asarray(model(x, training=False)),
                               rtol=1e-5, atol=1e-6)


def test_tf1_names_dense_to_dense_10_go_in_numeric_order(tmp_path):
    graph = tf.Graph()
    widths = [3 + i for i in range(12)]
    with graph.as_default():
        for i in range(11):
            scope = "dense" if i == 0 else f"dense_{i}"
            tf.compat.v1.get_variable(f"{scope}/kernel", (widths[i], widths[i + 1]))
            tf.compat.v1.get_variable(f"{scope}/bias", (widths[i + 1],))
        tf.compat.v1.get_variable("global_step", (), dtype=tf.int64)
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            prefix = saver.save(sess, str(tmp_path / "model.ckpt"))
    net = torch.nn.Sequential(*[torch.nn.Linear(widths[i], widths[i + 1]) for i in range(11)])
    match = cross_framework_matches(open_checkpoint(prefix), torch_vars(net))
    assert match.problems == []
    assert match.pairs["10.weight"][0] == ("dense_10/kernel",) and match.pairs["2.weight"][0] == ("dense_2/kernel",)
    assert len(match.pairs) == 22 and match.hints[-1] == "Keras layer 'dense_10' -> torch module '10' (Linear), by order"


def _tf_keras_model():
    inputs = tf_keras.Input((6, 4))
    x = tf_keras.layers.LSTM(8, return_sequences=True)(inputs)
    x = tf_keras.layers.MultiHeadAttention(2, 4)(x, x)
    return tf_keras.Model(inputs, tf_keras.layers.Dense(2)(x))


class TorchTwin(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = torch.nn.LSTM(4, 8, batch_first=True)
        self.attn = torch.nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = torch.nn.Linear(8, 2)


def test_tf2_object_keys_with_optimizer_slots_go_by_layer_with_weights_n(tmp_path):
    model = _tf_keras_model()
    # The legacy optimizer keeps its slots beside each variable (``.../kernel/.OPTIMIZER_SLOT/optimizer/m``),
    # where grouping by path would make layers of them.
    model.compile(optimizer=tf_keras.optimizers.legacy.Adam(), loss="mse")
    model.fit(np.zeros((2, 6, 4)), np.zeros((2, 6, 2)), verbose=0)
    prefix = tf.train.Checkpoint(model=model, optimizer=model.optimizer).write(str(tmp_path / "tf2"))
    ckpt = open_checkpoint(prefix)
    assert any(e.kind == "slot" and "/.OPTIMIZER_SLOT/" in e.key for e in ckpt.entries)
    match = cross_framework_matches(ckpt, torch_vars(TorchTwin()))
    assert match.problems == []
    key = "model/layer_with_weights-{}/{}/.ATTRIBUTES/VARIABLE_VALUE".format
    assert summary(match) == {
        "rnn.weight_ih_l0": ((key(0, "cell/kernel"),), "transpose"),
        "rnn.weight_hh_l0": ((key(0, "cell/recurrent_kernel"),), "transpose"),
        "rnn.bias_ih_l0": ((key(0, "cell/bias"),), "as is"), "rnn.bias_hh_l0": ((key(0, "cell/bias"),), "zeros"),
        "attn.in_proj_weight": ((key(1, "_query_dense/kernel"), key(1, "_key_dense/kernel"),
                                 key(1, "_value_dense/kernel")), "q,k,v fused (heads merged, transposed)"),
        "attn.in_proj_bias": ((key(1, "_query_dense/bias"), key(1, "_key_dense/bias"), key(1, "_value_dense/bias")),
                              "q,k,v fused (heads merged)"),
        "attn.out_proj.weight": ((key(1, "_output_dense/kernel"),), "heads merged, transposed"),
        "attn.out_proj.bias": ((key(1, "_output_dense/bias"),), "as is"),
        "head.weight": ((key(2, "kernel"),), "transpose"), "head.bias": ((key(2, "bias"),), "as is")}
    assert match.hints == ["Keras layer 'model/layer_with_weights-0' -> torch module 'rnn' (LSTM), by order",
                           "Keras layer 'model/layer_with_weights-1' -> torch module 'attn' (MultiheadAttention), by order",
                           "Keras layer 'model/layer_with_weights-2' -> torch module 'head' (Linear), by order"]


class TorchSequenceModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(20, 8)
        self.gru = torch.nn.GRU(8, 8, batch_first=True)
        self.norm = torch.nn.LayerNorm(8)
        self.attn = torch.nn.MultiheadAttention(8, 2, batch_first=True)
        self.conv = torch.nn.Conv1d(8, 4, 3)


def _keras_sequence_model(gru_reset_after=True):
    inputs = keras.Input((10,), dtype="int32")
    x = keras.layers.Embedding(20, 8, name="embedding")(inputs)
    x = keras.layers.GRU(8, return_sequences=True, reset_after=gru_reset_after, name="gru")(x)
    x = keras.layers.LayerNormalization(name="layer_normalization")(x)
    x = keras.layers.MultiHeadAttention(2, 4, name="multi_head_attention")(x, x)
    return keras.Model(inputs, keras.layers.Conv1D(4, 3, name="conv1d")(x))


def test_torch_safetensors_into_a_keras_model(tmp_path):
    safetensors.torch.save_file(TorchSequenceModel().state_dict(), tmp_path / "model.safetensors")
    model = _keras_sequence_model()
    match = cross_framework_matches(open_checkpoint(tmp_path / "model.safetensors"), keras_vars(model))
    assert match.problems == []
    got = summary(match)
    assert got["embedding/embeddings"] == (("emb.weight",), "as is")
    assert got["gru/gru_cell/kernel"] == (("gru.weight_ih_l0",), "gates r,z,n->z,r,h then transpose")
    assert got["gru/gru_cell/bias"] == (("gru.bias_ih_l0", "gru.bias_hh_l0"), "stack, gates r,z,n->z,r,h")
    assert got["layer_normalization/gamma"] == (("norm.weight",), "as is")
    assert got["multi_head_attention/query/kernel"] == (("attn.in_proj_weight",),
                                                        "query of in_proj, transposed, split into heads")
    assert got["multi_head_attention/attention_output/kernel"] == (("attn.out_proj.weight",),
                                                                   "transposed, split into heads")
    assert got["conv1d/kernel"] == (("conv.weight",), "OIW->WIO")
    assert len(got) == len(model.weights)
    assert "torch module 'attn' -> Keras layer 'multi_head_attention' (MultiHeadAttention), by order" in match.hints


def test_an_undecidable_layer_is_a_problem_naming_both_shapes(tmp_path):
    safetensors.torch.save_file(TorchSequenceModel().state_dict(), tmp_path / "model.safetensors")
    model = _keras_sequence_model(gru_reset_after=False)
    match = cross_framework_matches(open_checkpoint(tmp_path / "model.safetensors"), keras_vars(model))
    gru_problems = [p for p in match.problems if p[0].startswith("gru/")]
    assert {p[0] for p in gru_problems} == {"gru/gru_cell/kernel", "gru/gru_cell/recurrent_kernel", "gru/gru_cell/bias"}
    assert all("bias [24]" in p[2] and "bias_ih_l0 [24]" in p[2] and "reset_after" in p[2] for p in gru_problems)
    assert not any(name.startswith("gru/") for name in match.pairs) and "embedding/embeddings" in match.pairs


def test_layer_counts_that_differ_are_a_problem_not_a_guess(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="dense"), keras.layers.Dense(2, name="dense_1")])
    model.save_weights(tmp_path / "two.weights.h5")
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 3), torch.nn.Linear(3, 2))
    match = cross_framework_matches(open_checkpoint(tmp_path / "two.weights.h5"), torch_vars(net))
    assert match.pairs == {}
    assert match.problems == [(None, None, "the checkpoint has 2 dense layers (dense, dense_1), the model 3 "
                                           "(0, 1, 2): which goes where cannot be told")]


def test_a_shape_that_fits_no_rule_names_both_shapes(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="dense")])
    model.save_weights(tmp_path / "one.weights.h5")
    match = cross_framework_matches(open_checkpoint(tmp_path / "one.weights.h5"), torch_vars(torch.nn.Sequential(torch.nn.Linear(5, 3))))
    assert match.pairs == {}
    assert [(p[0], p[1]) for p in match.problems] == [("0.weight", None), ("0.bias", None)]
    assert "Linear weight [3, 5] cannot come from Dense kernel [4, 3]" in match.problems[0][2]
    assert match.problems[0][2].startswith("Keras layer 'dense' -> torch module '0' (by order): ")


def test_same_framework_is_none(tmp_path):
    net = torch.nn.Sequential(torch.nn.Linear(4, 3))
    safetensors.torch.save_file(net.state_dict(), tmp_path / "m.safetensors")
    assert cross_framework_matches(open_checkpoint(tmp_path / "m.safetensors"), torch_vars(net)) is None
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.save_weights(tmp_path / "m.weights.h5")
    assert cross_framework_matches(open_checkpoint(tmp_path / "m.weights.h5"), keras_vars(model)) is None
    assert cross_framework_matches(open_checkpoint(tmp_path / "m.weights.h5"), torch_vars(net)) is not None


# --- pairing by name first (a layer's name beats its place in the family) --------------------


def _tf1_checkpoint(path, shapes: dict) -> tuple:
    """A TF1 Saver checkpoint of ``{name: shape}`` with random values: (prefix, {name: value})."""
    rng = np.random.default_rng(3)
    values = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}
    return save_graph_checkpoint(path, values), values


class HiddenHead(torch.nn.Module):
    """Attributes in the model's order: ``hidden`` before ``head`` (natural name order says the opposite)."""

    def __init__(self, extra: int = 0):
        super().__init__()
        self.hidden = torch.nn.Linear(3, 4)
        self.head = torch.nn.Linear(4, 2)
        self.extra = torch.nn.Sequential(*[torch.nn.Linear(2, 5 + i) for i in range(extra)])


def test_layers_whose_names_match_pair_by_name_not_by_order(tmp_path):
    prefix, _ = _tf1_checkpoint(tmp_path / "m.ckpt", {"hidden/kernel": (3, 4), "hidden/bias": (4,),
                                                      "head/kernel": (4, 2), "head/bias": (2,)})
    match = cross_framework_matches(open_checkpoint(prefix), torch_vars(HiddenHead()))
    assert match.problems == []
    assert summary(match) == {"hidden.weight": (("hidden/kernel",), "transpose"), "hidden.bias": (("hidden/bias",), "as is"),
                              "head.weight": (("head/kernel",), "transpose"), "head.bias": (("head/bias",), "as is")}
    assert match.hints == ["Keras layer 'hidden' -> torch module 'hidden' (Linear), by name",
                           "Keras layer 'head' -> torch module 'head' (Linear), by name"]


def test_a_common_leading_scope_and_dots_for_slashes_still_pair_by_name(tmp_path):
    prefix, _ = _tf1_checkpoint(tmp_path / "m.ckpt", {"my_model/hidden/kernel": (3, 4), "my_model/hidden/bias": (4,),
                                                      "my_model/head/kernel": (4, 2), "my_model/head/bias": (2,)})
    match = cross_framework_matches(open_checkpoint(prefix), torch_vars(HiddenHead()))
    assert match.problems == [] and match.pairs["hidden.weight"][0] == ("my_model/hidden/kernel",)
    assert match.hints[0] == "Keras layer 'my_model/hidden' -> torch module 'hidden' (Linear), by name"

    class Wrapped(torch.nn.Module):  # torch's scope is an attribute: 'body.hidden.weight'
        def __init__(self):
            super().__init__()
            self.body = HiddenHead()

    safetensors.torch.save_file(Wrapped().state_dict(), tmp_path / "wrapped.safetensors")
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(4, name="hidden")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(hidden))
    back = cross_framework_matches(open_checkpoint(tmp_path / "wrapped.safetensors"), keras_vars(model))
    assert back.problems == [] and back.pairs["hidden/kernel"][0] == ("body.hidden.weight",)
    assert back.hints == ["torch module 'body.hidden' -> Keras layer 'hidden' (Dense), by name",
                          "torch module 'body.head' -> Keras layer 'head' (Dense), by name"]


def test_names_pair_first_and_order_pairs_the_rest_of_a_family(tmp_path):
    prefix, _ = _tf1_checkpoint(tmp_path / "m.ckpt", {
        "hidden/kernel": (3, 4), "hidden/bias": (4,), "head/kernel": (4, 2), "head/bias": (2,),
        "dense/kernel": (2, 5), "dense/bias": (5,), "dense_1/kernel": (2, 6), "dense_1/bias": (6,)})
    match = cross_framework_matches(open_checkpoint(prefix), torch_vars(HiddenHead(extra=2)))
    assert match.problems == []
    assert match.pairs["head.weight"][0] == ("head/kernel",) and match.pairs["extra.0.weight"][0] == ("dense/kernel",)
    assert match.pairs["extra.1.weight"][0] == ("dense_1/kernel",)
    assert match.hints == ["Keras layer 'hidden' -> torch module 'hidden' (Linear), by name",
                           "Keras layer 'head' -> torch module 'head' (Linear), by name",
                           "Keras layer 'dense' -> torch module 'extra.0' (Linear), by order",
                           "Keras layer 'dense_1' -> torch module 'extra.1' (Linear), by order"]
    one_short = cross_framework_matches(open_checkpoint(prefix), torch_vars(HiddenHead(extra=3)))
    assert one_short.problems == [(None, None, "the checkpoint has 2 dense layers not paired by name (dense, dense_1), "
                                               "the model 3 (extra.0, extra.1, extra.2): which goes where cannot be told")]


def test_positions_are_no_names(tmp_path):
    """Keras 3's TF2 keys count operations from the input layer (``model/_operations/1`` is the
    first Dense); torch's ``1`` is its second module: equal numbers pair nothing."""
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(hidden))
    prefix = tf.train.Checkpoint(model=model).write(str(tmp_path / "tf2"))
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    match = cross_framework_matches(open_checkpoint(prefix), torch_vars(net))
    assert match.problems == []
    assert match.pairs["0.weight"][0] == ("model/_operations/1/_kernel/.ATTRIBUTES/VARIABLE_VALUE",)
    assert all(hint.endswith("by order") for hint in match.hints)


def test_by_name_false_pairs_by_order_alone(tmp_path):
    prefix, _ = _tf1_checkpoint(tmp_path / "m.ckpt", {"hidden/kernel": (3, 4), "hidden/bias": (4,),
                                                      "head/kernel": (4, 2), "head/bias": (2,)})
    match = cross_framework_matches(open_checkpoint(prefix), torch_vars(HiddenHead()), by_name=False)
    assert match.pairs == {}
    assert {p[0] for p in match.problems} == {"hidden.weight", "hidden.bias", "head.weight", "head.bias"}
    assert match.problems[0][2].startswith("Keras layer 'head' -> torch module 'hidden' (by order): ")


def test_a_keras_3_tf2_checkpoint_with_its_optimizer_groups_by_the_object_graph(tmp_path):
    """Saved with its optimizer, Keras 3's trainable weights are keyed
    ``optimizer/_trainable_variables/N``: the object graph's path through the model says the layer."""
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(hidden))
    model.compile(optimizer="adam", loss="mse")
    model.optimizer.build(model.trainable_variables)
    prefix = tf.train.Checkpoint(model=model, optimizer=model.optimizer).write(str(tmp_path / "tf2"))
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    match = cross_framework_matches(open_checkpoint(prefix), torch_vars(net))
    assert match.problems == []
    assert summary(match) == {
        "0.weight": (("optimizer/_trainable_variables/0/.ATTRIBUTES/VARIABLE_VALUE",), "transpose"),
        "0.bias": (("optimizer/_trainable_variables/1/.ATTRIBUTES/VARIABLE_VALUE",), "as is"),
        "1.weight": (("optimizer/_trainable_variables/2/.ATTRIBUTES/VARIABLE_VALUE",), "transpose"),
        "1.bias": (("optimizer/_trainable_variables/3/.ATTRIBUTES/VARIABLE_VALUE",), "as is")}
    assert match.hints[0] == "Keras layer 'model/_operations/1' -> torch module '0' (Linear), by order"
