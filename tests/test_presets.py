"""Presets (issue #25 item 5): ``bert`` maps a google-research/bert TF1 checkpoint into
transformers' ``BertModel``; a preset is one checked data file and one registry line.

The oracle: TensorFlow writes the checkpoint (``Saver``) and reads it back
(``tf.train.load_checkpoint``); the exported file loads into ``BertModel`` with
``load_state_dict(strict=True)``, and every tensor equals TensorFlow's value, transposed
exactly where transformers' old ``load_tf_weights_in_bert`` transposed it
(:func:`_bert.hf_name`, :func:`_bert.is_kernel`).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from ckptwidgets import plan_write
from ckptwidgets.errors import PlanError
from ckptwidgets.presets import PRESETS, apply_preset, load_preset
from ckptwidgets.sources.arrays import ArraySource

from _bert import CONFIG, bert_values, bert_weights, head_weights, hf_name, is_kernel
from conftest import save_graph_checkpoint, tf

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
safetensors_torch = pytest.importorskip("safetensors.torch")


@pytest.fixture(scope="module")
def bert_ckpt(tmp_path_factory):
    """A TF1 BERT checkpoint as google-research/bert's run_pretraining.py leaves it (tiny config)."""
    return save_graph_checkpoint(tmp_path_factory.mktemp("bert") / "bert_model.ckpt", bert_values())


def tiny_bert():
    torch.manual_seed(0)
    return transformers.BertModel(transformers.BertConfig(**CONFIG)).eval()


def test_bert_checkpoint_loads_strictly_into_BertModel(bert_ckpt, tmp_path):
    plan = apply_preset(plan_write(bert_ckpt), "bert")
    assert plan.ok, plan.problems
    out = tmp_path / "model.safetensors"
    plan.write(out, progress=False)

    state = safetensors_torch.load_file(str(out))
    model = tiny_bert()
    model.load_state_dict(state, strict=True)  # no key missing, none unexpected, every shape right
    reader = tf.train.load_checkpoint(bert_ckpt)
    for tf_name in bert_weights():
        expected = reader.get_tensor(tf_name)
        expected = expected.T if is_kernel(tf_name) else expected
        actual = model.state_dict()[hf_name(tf_name)].numpy()
        assert actual.dtype == expected.dtype and np.array_equal(actual, expected), tf_name
    assert len(state) == len(bert_weights())


def test_bert_leaves_out_optimizer_state_step_and_heads_saying_why(bert_ckpt):
    plan = apply_preset(plan_write(bert_ckpt), "bert")
    why = dict(plan.dropped)
    weights, heads = bert_weights(), head_weights()
    assert set(why) == {f"{n}/{slot}" for n in {**weights, **heads} for slot in ("adam_m", "adam_v")} | {
        "global_step", *heads}
    assert why["bert/pooler/dense/kernel/adam_m"] == why["cls/predictions/output_bias/adam_v"] \
        == "Adam's moment estimate (optimizer state)"
    assert "step counter" in why["global_step"]
    assert "pre-training head" in why["cls/seq_relationship/output_weights"]
    assert not plan.notes  # every key of a BERT checkpoint is known to the preset


def test_the_plan_shows_each_transpose(bert_ckpt):
    text = str(apply_preset(plan_write(bert_ckpt), "bert"))
    assert "transpose('bert/encoder/layer_1/intermediate/dense/kernel')" in text
    item = {i.key: i for i in apply_preset(plan_write(bert_ckpt), "bert").items}
    assert item["encoder.layer.1.intermediate.dense.weight"].shape == (16, 8)
    assert item["encoder.layer.1.intermediate.dense.bias"].op == "copy"
    assert item["embeddings.word_embeddings.weight"].op == "copy"  # an embedding table is not transposed


def test_a_cast_plan_is_transposed_and_cast(bert_ckpt, tmp_path):
    plan = apply_preset(plan_write(bert_ckpt).cast({"float32": "float16"}), "bert")
    out = tmp_path / "half.safetensors"
    plan.write(out, progress=False)
    state = safetensors_torch.load_file(str(out))
    kernel = tf.train.load_checkpoint(bert_ckpt).get_tensor("bert/pooler/dense/kernel")
    assert state["pooler.dense.weight"].dtype == torch.float16
    assert np.array_equal(state["pooler.dense.weight"].numpy(), kernel.T.astype(np.float16))


def test_keys_the_preset_does_not_know_are_left_out_with_a_note():
    values = {name: np.zeros(shape, np.float32) for name, shape in bert_weights().items()}
    values["bert/encoder/layer_0/attention/self/rel_bias"] = np.zeros(3, np.float32)
    plan = apply_preset(plan_write(ArraySource(values)), "bert")
    assert plan.ok and "bert/encoder/layer_0/attention/self/rel_bias" not in {k for i in plan.items for _, k in i.sources}
    assert dict(plan.dropped)["bert/encoder/layer_0/attention/self/rel_bias"] == "the bert preset has no rule for it"
    assert plan.notes == [
        "The bert preset has no rule for 1 key, left out: 'bert/encoder/layer_0/attention/self/rel_bias' "
        f"(add a rule to {load_preset('bert').path} if the target needs them)."
    ]


def test_a_kernel_that_is_not_2d_is_a_problem_not_a_guess():
    plan = apply_preset(plan_write(ArraySource({"bert/pooler/dense/kernel": np.zeros((2, 2, 2), np.float32)})), "bert")
    assert plan.problems == [
        "The bert preset transposes 'bert/pooler/dense/kernel' into 'pooler.dense.weight', but it is 3-D "
        "(shape [2, 2, 2]): a transpose takes a 2-D tensor that is copied or cast."
    ]


def test_a_checkpoint_the_preset_does_not_fit_is_a_problem():
    plan = apply_preset(plan_write(ArraySource({"dense/kernel": np.zeros((2, 3), np.float32)})), "bert")
    assert not plan.items and len(plan.problems) == 1
    assert plan.problems[0].startswith("The bert preset maps none of the plan's 1 keys (e.g. 'dense/kernel'); it is for: ")


def test_the_input_plan_is_unchanged(bert_ckpt):
    plan = plan_write(bert_ckpt)
    before = list(plan.items)
    apply_preset(plan, "bert")
    assert plan.items == before and not plan.dropped


def test_an_unknown_preset_names_the_closest_and_lists_them():
    with pytest.raises(PlanError) as info:
        apply_preset(plan_write(ArraySource({"a": np.zeros(1, np.float32)})), "bret")
    assert str(info.value) == "No preset 'bret' (did you mean 'bert'? presets: bert)."
    with pytest.raises(PlanError, match=r"^No preset 'gpt' \(presets: bert\)\.$"):
        load_preset("gpt")


def test_every_registered_preset_file_is_valid():
    for name in PRESETS:
        preset = load_preset(name)
        assert preset.rules and preset.description


BAD_FILES = [
    ("{not json", "is not JSON"),
    ("[]", "holds a JSON list; a preset is an object"),
    ('{"description": "d", "rules": [{"match": "a", "key": "b"}], "transpse": []}', "unknown field 'transpse'"),
    ('{"description": "d"}', "has no 'rules'"),
    ('{"description": "d", "rules": [{"match": "a", "key": "b"}, {"match": "(c", "key": "d"}]}',
     "rules[1] {'match': '(c', 'key': 'd'}: bad pattern: missing ), unterminated subpattern"),
    ('{"description": "d", "rules": [{"match": "layer_(\\\\d+)", "key": "layer.\\\\2"}]}',
     "rules[0] {'match': 'layer_(\\\\d+)', 'key': 'layer.\\\\2'}: bad template 'layer.\\\\2': invalid group reference 2"),
    ('{"description": "d", "rules": [{"match": "a"}]}', "rules[0] {'match': 'a'} is not {\"match\": pattern, 'key': text}"),
    ('{"description": "d", "rules": [{"match": "a", "key": "b"}], "drop": [{"match": "x", "why": ""}]}',
     "drop[0] {'match': 'x', 'why': ''}: 'why' is not a non-empty string"),
    ('{"description": "d", "rules": [{"match": "a", "key": "b"}], "transpose": ["*"]}', "transpose[0] '*': bad pattern"),
]


@pytest.mark.parametrize("text, message", BAD_FILES)
def test_a_bad_preset_file_is_an_error_naming_the_file_and_the_rule(tmp_path, monkeypatch, text, message):
    path = tmp_path / "broken.json"
    path.write_text(text)
    monkeypatch.setitem(PRESETS, "broken", str(path))  # an absolute path: os.path.join keeps it
    with pytest.raises(PlanError) as info:
        apply_preset(plan_write(ArraySource({"a": np.zeros(1, np.float32)})), "broken")
    assert str(info.value).startswith(f"Preset 'broken' ({path})") and message in str(info.value), str(info.value)


def test_a_new_preset_is_one_data_file_and_one_registry_line(tmp_path, monkeypatch):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({
        "description": "old TF names -> torch names",
        "drop": [{"match": ".*/Adam(_1)?", "why": "Adam slot"}],
        "rules": [{"match": "net/(\\w+)/kernel", "key": "\\1.weight"}, {"match": "net/(\\w+)/bias", "key": "\\1.bias"}],
        "transpose": [".*\\.weight"],
    }))
    monkeypatch.setitem(PRESETS, "mine", str(path))
    kernel = np.arange(6, dtype=np.float32).reshape(2, 3)
    source = ArraySource({"net/fc/kernel": kernel, "net/fc/kernel/Adam": kernel, "net/fc/bias": np.ones(3, np.float32)})
    plan = apply_preset(plan_write(source), "mine")
    assert [(i.key, i.op, i.shape) for i in plan.items] == [("fc.bias", "copy", (3,)), ("fc.weight", "transform", (3, 2))]
    assert plan.dropped == [("net/fc/kernel/Adam", "Adam slot")]
    out = tmp_path / "mine.safetensors"
    plan.write(out, progress=False)
    assert np.array_equal(safetensors_torch.load_file(str(out))["fc.weight"].numpy(), kernel.T)


def test_an_installed_package_has_every_preset_file(tmp_path):
    """What ``pip install .`` (Binder's postBuild) installs: the wheel must hold each data file."""
    import shutil
    import subprocess
    import sys
    import zipfile
    from pathlib import Path

    import ckptwidgets

    root = Path(ckptwidgets.__file__).parent.parent
    copy = tmp_path / "src"
    shutil.copytree(root / "ckptwidgets", copy / "ckptwidgets", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(root / name, copy / name)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "-w", str(tmp_path / "wheel"), str(copy)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp_path / "wheel").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"ckptwidgets/presets/{file}" for file in PRESETS.values()} <= names
