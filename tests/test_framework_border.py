"""The oracle of issue #25: after mapping, the same input gives the same output in both frameworks.

Five architectures, each built twice (a Keras 3 model and its torch twin, every weight random,
BatchNorm statistics included): an MLP with BatchNorm, a CNN (NHWC input for Keras, NCHW for
torch; Conv2D, DepthwiseConv2D, global average pooling, Dense), Embedding + LSTM + LayerNorm, a
GRU, and an attention block (MultiHeadAttention, residual, LayerNorm, Dense).

Keras -> torch: the Keras model saved as ``.weights.h5``, ``.keras``, a TF2
``tf.train.Checkpoint(model=m)`` (object keys ``model/_operations/N/...`` carry no layer names:
layers pair by their order), the same with its optimizer (which keys the trainable weights
``optimizer/_trainable_variables/N``: the object graph says which layer holds each), a TF1
Saver checkpoint under Keras' own variable names (``hidden/kernel``, ``lstm/lstm_cell/kernel``)
and a safetensors file of those names (``safetensors.numpy``). ``plan_restore(src, module)``
has no problem and leaves nothing unmapped (``num_batches_tracked`` is bookkeeping) or unused,
``restore`` gives the Keras output, and ``from_plan(plan).write("x.safetensors")`` loads into a
fresh module with ``load_state_dict(strict=True)`` and gives it too. The MLP's and the attention
block's torch attributes are named as the Keras layers (they pair by name, ``hidden`` before
``head`` whatever the natural order of names says); the others' are not (they pair by order).

torch -> Keras: the module's ``state_dict`` saved with ``safetensors.torch.save_file``,
``torch.save`` (``.pt``) and a TF1 Saver under its names (``hidden.weight``);
``plan_restore(src, keras_model)`` then ``restore`` gives the torch output, and
``from_plan(plan).write("x.weights.h5", model=...)`` loads into a fresh Keras model with
``load_weights`` and gives it too.

TF2 by order: ``plan_restore(tf2, module, match="order")`` pairs by layer order alone and gives
the same plan. Where order genuinely cannot decide (no layer names in a TF2 checkpoint and a
module declaring its layers in another order), the plan says so, a ``layout_mismatch`` naming
both shapes, and nothing is restored or written.

Tolerance: float32 round-off of two summation orders, ``rtol=1e-5`` with ``atol=1e-6`` for the
feed-forward models and ``atol=1e-5`` for recurrent and attention ones.
"""
from __future__ import annotations

import numpy as np
import pytest

import ckptwidgets
from ckptwidgets import plan_restore, restore
from ckptwidgets.write import from_plan
from conftest import save_graph_checkpoint

tf = ckptwidgets.import_tensorflow()
import keras  # noqa: E402
import safetensors.numpy  # noqa: E402
import safetensors.torch  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

RNG = np.random.default_rng(2025)


# --- the five architectures, each a Keras model and its torch twin ------------------------------


class TorchMLP(nn.Module):
    """Attributes named as the Keras layers are (``hidden`` before ``head``): pairs by name."""

    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(4, 6)
        self.norm = nn.BatchNorm1d(6, eps=1e-3)
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        return self.head(torch.relu(self.norm(self.hidden(x))))


def keras_mlp():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(6, name="hidden"),
                             keras.layers.BatchNormalization(epsilon=1e-3, name="norm"), keras.layers.ReLU(),
                             keras.layers.Dense(3, name="head")], name="mlp")


class TorchCNN(nn.Module):
    """Names unlike Keras' (``features.0``, ``classifier``): pairs by order."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 8, 3, groups=4), nn.ReLU())
        self.classifier = nn.Linear(8, 2)

    def forward(self, x):
        return self.classifier(self.features(x).mean(dim=(2, 3)))


def keras_cnn():
    return keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, activation="relu", name="conv2d"),
                             keras.layers.DepthwiseConv2D(3, depth_multiplier=2, activation="relu",
                                                          name="depthwise_conv2d"),
                             keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2, name="dense")], name="cnn")


class TorchSequence(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 6)
        self.rnn = nn.LSTM(6, 5, batch_first=True)
        self.norm = nn.LayerNorm(5, eps=1e-3)

    def forward(self, tokens):
        return self.norm(self.rnn(self.emb(tokens))[0])


def keras_sequence():
    return keras.Sequential([keras.Input((7,), dtype="int32"), keras.layers.Embedding(20, 6, name="embedding"),
                             keras.layers.LSTM(5, return_sequences=True, name="lstm"),
                             keras.layers.LayerNormalization(epsilon=1e-3, name="layer_normalization")], name="seq")


class TorchGRU(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(4, 5, batch_first=True)
        self.out = nn.Linear(5, 2)

    def forward(self, x):
        return self.out(self.gru(x)[0])


def keras_gru():
    return keras.Sequential([keras.Input((6, 4)), keras.layers.GRU(5, return_sequences=True, name="gru"),
                             keras.layers.Dense(2, name="dense")], name="gru_model")


class TorchAttention(nn.Module):
    """Attributes named as the Keras layers (``mha``, ``ln``, ``ffn``): pairs by name."""

    def __init__(self):
        super().__init__()
        self.mha = nn.MultiheadAttention(8, 2, batch_first=True)
        self.ln = nn.LayerNorm(8, eps=1e-3)
        self.ffn = nn.Linear(8, 8)

    def forward(self, x):
        return self.ffn(self.ln(x + self.mha(x, x, x, need_weights=False)[0]))


def keras_attention():
    inputs = keras.Input((5, 8))
    attended = keras.layers.MultiHeadAttention(2, 4, name="mha")(inputs, inputs)
    normed = keras.layers.LayerNormalization(epsilon=1e-3, name="ln")(keras.layers.Add()([inputs, attended]))
    return keras.Model(inputs, keras.layers.Dense(8, name="ffn")(normed), name="block")


def floats(*shape):
    return RNG.normal(size=shape).astype(np.float32)


#: name: (Keras builder, torch class, Keras input, Keras input -> torch input, atol)
ARCHITECTURES = {
    "mlp_batchnorm": (keras_mlp, TorchMLP, lambda: floats(3, 4), lambda x: x, 1e-6),
    "cnn": (keras_cnn, TorchCNN, lambda: floats(2, 8, 8, 3), lambda x: np.ascontiguousarray(x.transpose(0, 3, 1, 2)),
            1e-6),
    "embedding_lstm_layernorm": (keras_sequence, TorchSequence, lambda: RNG.integers(0, 20, (2, 7)).astype(np.int32),
                                 lambda x: x.astype(np.int64), 1e-5),
    "gru": (keras_gru, TorchGRU, lambda: floats(2, 6, 4), lambda x: x, 1e-5),
    "attention": (keras_attention, TorchAttention, lambda: floats(2, 5, 8), lambda x: x, 1e-5),
}


def keras_output(model, x):
    return np.asarray(model(x, training=False))


def torch_output(module, x):
    module.eval()
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


def randomize_keras(model):
    """Every weight random (zero biases, unit gammas and fresh BN statistics would hide a wrong mapping)."""
    model.set_weights([np.abs(v) + 0.5 if "variance" in w.path else v
                       for w, v in ((w, floats(*w.shape)) for w in model.weights)])


def randomize_torch(module):
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if tensor.is_floating_point():
                value = torch.from_numpy(floats(*tensor.shape))
                tensor.copy_(value.abs() + 0.5 if name.endswith("running_var") else value)
            elif name.endswith("num_batches_tracked"):
                tensor.fill_(7)


def save_tf1(model, prefix: str) -> str:
    """The Keras weights under TF1-style names (their Keras paths: ``hidden/kernel``,
    ``lstm/lstm_cell/kernel``, ``mha/query/kernel``) with ``tf.compat.v1.train.Saver``."""
    # read eagerly, outside the graph
    return save_tf1_values({weight.path: np.asarray(weight.numpy()) for weight in model.weights}, prefix)


def save_tf1_values(values: dict, prefix: str) -> str:
    return save_graph_checkpoint(prefix, values)


KERAS_FORMATS = ("weights.h5", "keras", "tf2", "tf2_with_optimizer", "tf1", "safetensors_keras_names")
TORCH_FORMATS = ("safetensors", "pt", "tf1_torch_names")


class Sources:
    """One architecture's source models, their files and the oracle outputs."""

    def __init__(self, name, folder):
        build_keras, torch_class, make_input, to_torch, self.atol = ARCHITECTURES[name]
        self.build_keras, self.torch_class, self.to_torch = build_keras, torch_class, to_torch
        self.x = make_input()
        self.keras_model = build_keras()
        randomize_keras(self.keras_model)
        self.keras_out = keras_output(self.keras_model, self.x)
        self.files = {"weights.h5": str(folder / "model.weights.h5"), "keras": str(folder / "model.keras")}
        self.keras_model.save_weights(self.files["weights.h5"])
        self.keras_model.save(self.files["keras"])
        self.files["tf2"] = tf.train.Checkpoint(model=self.keras_model).write(str(folder / "tf2" / "ckpt"))
        self.files["tf1"] = save_tf1(self.keras_model, str(folder / "tf1" / "model.ckpt"))
        self.files["safetensors_keras_names"] = str(folder / "keras_names.safetensors")
        safetensors.numpy.save_file({w.path: np.asarray(w.numpy()) for w in self.keras_model.weights},
                                    self.files["safetensors_keras_names"])
        # Saved with its optimizer, a Keras 3 model's trainable weights are keyed
        # optimizer/_trainable_variables/N: only the object graph says which layer holds each.
        self.keras_model.compile(optimizer="adam", loss="mse")
        self.keras_model.optimizer.build(self.keras_model.trainable_variables)
        self.files["tf2_with_optimizer"] = tf.train.Checkpoint(
            model=self.keras_model, optimizer=self.keras_model.optimizer).write(str(folder / "tf2_opt" / "ckpt"))
        torch.manual_seed(0)
        self.torch_module = torch_class().eval()
        randomize_torch(self.torch_module)
        self.torch_out = torch_output(self.torch_module, to_torch(self.x))
        state = {k: v.detach().contiguous() for k, v in self.torch_module.state_dict().items()}
        self.files["safetensors"] = str(folder / "model.safetensors")
        safetensors.torch.save_file(state, self.files["safetensors"])
        self.files["pt"] = str(folder / "model.pt")
        torch.save(state, self.files["pt"])
        self.files["tf1_torch_names"] = save_tf1_values({k: v.numpy() for k, v in state.items()},
                                                        str(folder / "tf1_torch" / "model.ckpt"))

    def fresh_torch(self):
        torch.manual_seed(1)
        return self.torch_class().eval()


@pytest.fixture(scope="module", params=sorted(ARCHITECTURES))
def sources(request, tmp_path_factory):
    return Sources(request.param, tmp_path_factory.mktemp(request.param))


def assert_clean(plan):
    assert plan.problems == [] and plan.ok, plan
    assert plan.unmapped == [], plan


@pytest.mark.parametrize("source_format", KERAS_FORMATS)
def test_keras_to_torch_gives_the_keras_output(sources, source_format, tmp_path):
    module = sources.fresh_torch()
    plan = plan_restore(sources.files[source_format], module)
    if source_format == "tf2_with_optimizer":
        assert any(e.key.startswith("optimizer/_trainable_variables/") for e in plan.checkpoint.entries)
    assert_clean(plan)
    assert [e.key for e in plan.unused] == []
    restore(plan)
    np.testing.assert_allclose(torch_output(module, sources.to_torch(sources.x)), sources.keras_out,
                               rtol=1e-5, atol=sources.atol)
    out = str(tmp_path / "exported.safetensors")
    from_plan(plan).write(out, progress=False)
    loaded = sources.fresh_torch()
    loaded.load_state_dict(safetensors.torch.load_file(out), strict=True)
    np.testing.assert_allclose(torch_output(loaded, sources.to_torch(sources.x)), sources.keras_out,
                               rtol=1e-5, atol=sources.atol)


@pytest.mark.parametrize("source_format", TORCH_FORMATS)
def test_torch_to_keras_gives_the_torch_output(sources, source_format, tmp_path):
    model = sources.build_keras()
    plan = plan_restore(sources.files[source_format], model)
    assert_clean(plan)
    assert [e.key for e in plan.unused] == []
    restore(plan)
    np.testing.assert_allclose(keras_output(model, sources.x), sources.torch_out, rtol=1e-5, atol=sources.atol)
    out = str(tmp_path / "exported.weights.h5")
    from_plan(plan).write(out, progress=False, model=model)
    loaded = sources.build_keras()
    loaded.load_weights(out)
    np.testing.assert_allclose(keras_output(loaded, sources.x), sources.torch_out, rtol=1e-5, atol=sources.atol)


# --- by order alone, and where order cannot decide -------------------------------------------------


@pytest.fixture(scope="module")
def mlp_sources(tmp_path_factory):
    return Sources("mlp_batchnorm", tmp_path_factory.mktemp("mlp_order"))


def test_match_order_pairs_a_tf2_checkpoint_into_torch_by_order(mlp_sources):
    """``match="order"`` into a torch module: layers pair by their order alone, as the TF2 object
    keys (``model/_functional/_operations/N``) need; the same plan as the default gives."""
    module = mlp_sources.fresh_torch()
    plan = plan_restore(mlp_sources.files["tf2"], module, match="order")
    assert_clean(plan)
    assert plan.mapping == plan_restore(mlp_sources.files["tf2"], mlp_sources.fresh_torch()).mapping
    assert [h.rpartition(", ")[2] for h in plan.hints if "->" in h] == ["by order"] * 3
    restore(plan)
    np.testing.assert_allclose(torch_output(module, mlp_sources.x), mlp_sources.keras_out, rtol=1e-5, atol=1e-6)
    with pytest.raises(ckptwidgets.PlanError, match="leave match at its default"):
        plan_restore(mlp_sources.files["safetensors"], mlp_sources.fresh_torch(), match="order")


class HeadFirstMLP(nn.Module):
    """TorchMLP with its Linear layers declared head first and named unlike Keras' layers."""

    def __init__(self):
        super().__init__()
        self.out = nn.Linear(6, 3)
        self.inp = nn.Linear(4, 6)
        self.norm = nn.BatchNorm1d(6, eps=1e-3)

    def forward(self, x):
        return self.out(torch.relu(self.norm(self.inp(x))))


def test_where_order_cannot_decide_the_plan_says_so_with_both_shapes(mlp_sources):
    """Genuinely undecidable: a TF2 checkpoint carries no layer names, and the module declares
    its Linear layers in the other order under other names. Pairing by order gives the Keras
    ``hidden`` kernel ``[4, 6]`` to ``out.weight [3, 6]``: a layout_mismatch naming both shapes,
    no guess, and nothing restored or written. ``match="order"`` on the ``.weights.h5`` (whose
    names would pair ``hidden`` and ``head`` with TorchMLP's) is refused the same way."""
    module = HeadFirstMLP().eval()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    plan = plan_restore(mlp_sources.files["tf2"], module)
    layout = [p for p in plan.problems if p.reason == "layout_mismatch"]
    assert {p.variable for p in layout} == {"out.weight", "out.bias", "inp.weight", "inp.bias"}
    (message,) = {p.message for p in layout if p.variable == "out.weight"}
    assert "Linear weight [3, 6] cannot come from Dense kernel [4, 6]" in message and "by order" in message
    with pytest.raises(ckptwidgets.RestoreError):
        restore(plan)
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())
    with pytest.raises(ckptwidgets.PlanError):
        from_plan(plan)
    by_order = plan_restore(mlp_sources.files["weights.h5"], mlp_sources.fresh_torch(), match="order")
    messages = [p.message for p in by_order.problems if p.reason == "layout_mismatch"]
    assert any("Linear weight [6, 4] cannot come from Dense kernel [6, 3]" in m for m in messages), messages
