"""Hostile names: markup, quotes, backslashes, newlines, Chinese and accented text (issue #6).

Checkpoint keys are written with ``tf.raw_ops.SaveV2`` (eager and in a graph) into a
folder whose name is hostile too; variables carry hostile names (a dict given to
``plan_restore``). Each name must come back exactly:

- from ``open_checkpoint`` / ``Checkpoint.read``;
- in the browser's table cells (``Label`` values, shown as text) and selection, and in the
  mapper's row labels and dropdown options; any ``HTML`` widget holds only the
  ``html.escape``d text, never a raw ``<img``;
- through every ``to_code`` style: the code compiles, an AST walk proves it calls only the
  TensorFlow functions of its style on the names it should (no ``eval``, ``exec``,
  ``__import__``, ``open``, ``os``...), its string constants are exactly the checkpoint path,
  keys and names, and executed it restores the same values as ``ckptwidgets.restore``.
"""
from __future__ import annotations

import ast
import html
import os
import re

import ipywidgets as widgets
import numpy as np
import pytest
import tensorflow as tf

import ckptwidgets
from ckptwidgets import CheckpointBrowser, VariableMapper, open_checkpoint, plan_restore
from ckptwidgets.codegen import STYLES
from _widgets import iter_models, shown

v1_ = tf.compat.v1

HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "a\"b'c",
    "back\\slash",
    "new\nline",
    "变量/权重",
    "ü/é",
    "'''); __import__('os').system('echo pwned') #",
    "{x}${y}$\\n",
    "tab\tand\r\ncrlf\u2028sep",
    "</pre><script>alert(2)</script>",
]
#: Shadows, so the mapper's ★ labels and prefer_ema meet hostile names too.
SHADOWED = [HOSTILE[0], HOSTILE[4]]
EMA = "/ExponentialMovingAverage"


def value_of(i: int, shadow: bool = False) -> np.ndarray:
    base = np.array([i + 1.0, -(i + 1.0)], np.float32)
    return base / 10 if shadow else base


def all_keys():
    return sorted(HOSTILE + [k + EMA for k in SHADOWED])


def expected(key: str) -> np.ndarray:
    if key.endswith(EMA):
        return value_of(HOSTILE.index(key[: -len(EMA)]), shadow=True)
    return value_of(HOSTILE.index(key))


def save_v2(prefix: str, graph_mode: bool) -> str:
    keys = all_keys()
    tensors = [expected(k) for k in keys]
    if graph_mode:
        graph = tf.Graph()
        with graph.as_default():
            op = tf.raw_ops.SaveV2(prefix=prefix, tensor_names=keys, shape_and_slices=[""] * len(keys),
                                   tensors=[tf.constant(t) for t in tensors])
            with v1_.Session(graph=graph) as sess:
                sess.run(op)
    else:
        tf.raw_ops.SaveV2(prefix=prefix, tensor_names=keys, shape_and_slices=[""] * len(keys),
                          tensors=[tf.constant(t) for t in tensors])
    return prefix


@pytest.fixture(scope="module", params=["eager-SaveV2", "graph-SaveV2"])
def hostile_ckpt(request, tmp_path_factory):
    # No backslash or "[...]": TensorFlow itself cannot read such paths (see test_bad_inputs.py).
    folder = tmp_path_factory.mktemp("hostile") / "dir 'q' \"d\" [x\n变量 ü"
    folder.mkdir()
    return save_v2(str(folder / "model.ckpt"), graph_mode=request.param == "graph-SaveV2")


# --- reading --------------------------------------------------------------------------------


def test_keys_and_values_round_trip(hostile_ckpt):
    ckpt = open_checkpoint(hostile_ckpt)
    assert [e.key for e in ckpt.entries] == all_keys()
    for key in all_keys():
        assert ckpt[key].key == key and ckpt.find(key).key == key
        assert ckpt.read(key).tolist() == expected(key).tolist()
    kinds = {e.key: e.kind for e in ckpt.entries}
    assert all(kinds[k + EMA] == "ema" and ckpt[k + EMA].base == k for k in SHADOWED)


def test_a_string_tensor_reads_as_bytes_and_is_never_evaluated(tmp_path):
    payload = [b"__import__('os').system('echo pwned')", b"<img src=x onerror=alert(1)>", "变量".encode()]
    prefix = str(tmp_path / "strings.ckpt")
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=["s"], shape_and_slices=[""], tensors=[tf.constant(payload)])
    ckpt = open_checkpoint(prefix)
    assert ckpt["s"].dtype == "string"
    got = ckpt.read("s")
    assert got.dtype == object and got.tolist() == payload and all(type(b) is bytes for b in got.tolist())
    browser = CheckpointBrowser(prefix)
    browser.model.selected = "s"  # statistics of a string tensor: shown, or refused with a message
    assert browser.model.stats is not None or browser.message.value


# --- the widgets ------------------------------------------------------------------------------


def html_is_escaped(root):
    """No HTML widget shows raw markup from a name; any name in one is escaped."""
    for widget in iter_models(root):
        if isinstance(widget, widgets.HTML):
            assert "<img" not in widget.value and "<script" not in widget.value, widget.value[:300]
            for name in HOSTILE:
                if html.escape(name) not in widget.value:
                    assert name not in widget.value or name == html.escape(name), (name, widget.value[:300])


def test_browser_shows_the_exact_text(hostile_ckpt):
    browser = CheckpointBrowser(hostile_ckpt, page_size=20)
    shown_keys = [shown(label) for label in browser.table.column("key") if label.value]
    assert shown_keys == all_keys()
    for row, key in enumerate(all_keys()):
        assert shown(browser.table.cells[row][1]) == key
        browser.table.cells[row][0].click()  # the row's statistics button
        assert browser.model.selected == key and browser.selected_label.value == key
        assert browser.message.value == ""
        html_is_escaped(browser)
    # Filtering on hostile text is plain text matching, not a pattern.
    browser.model.filter_text = "变量"
    assert [e.key for e in browser.model.matches] == ["变量/权重", "变量/权重" + EMA]
    browser.model.filter_text = "<img"
    assert [e.key for e in browser.model.matches] == [HOSTILE[0], HOSTILE[0] + EMA]
    assert HOSTILE[0] in repr(browser)


def hostile_variables():
    """Eager variables named as the keys, plus one renamed by a rule to another hostile name."""
    variables = {name: tf.Variable(np.zeros(2, np.float32)) for name in HOSTILE}
    variables["renamed \"<b>\" 名\n"] = tf.Variable(np.zeros(2, np.float32))
    return variables


def test_mapper_rows_and_dropdowns_hold_the_exact_text(hostile_ckpt):
    variables = hostile_variables()
    rules = {HOSTILE[1]: variables["renamed \"<b>\" 名\n"]}
    mapper = VariableMapper(hostile_ckpt, variables, rules=rules, page_size=20)
    assert mapper.plan.ok and mapper.plan.mapping == {**{n: n for n in HOSTILE}, "renamed \"<b>\" 名\n": HOSTILE[1]}
    names = [shown(c) for c in mapper.table.column("variable") if c.value]
    assert names == list(variables)
    for row, name in enumerate(names):
        dropdown = mapper.key_dropdowns[row]
        values = [value for _label, value in dropdown.options]
        assert dropdown.value == mapper.plan.mapping[name]
        assert set(all_keys()) <= set(values)
        labels = [label for label, value in dropdown.options if value in all_keys()]
        assert len(set(labels)) == len(labels), labels  # long keys are shortened, never to the same text
        assert mapper.plan.mapping[name] in dropdown.tooltip  # the whole key, verbatim, on hover
    # A choice in a dropdown puts the exact key into the plan.
    row = names.index("ü/é")
    mapper.key_dropdowns[row].value = HOSTILE[0]
    assert mapper.plan.mapping["ü/é"] == HOSTILE[0]
    html_is_escaped(mapper)
    accordion = getattr(mapper, "code_accordion", None)
    if accordion is not None:
        accordion.selected_index = 0  # open the code panel: the preview is made while it is shown
    for style in STYLES:
        mapper.style_buttons.value = style
        html_is_escaped(mapper)
        assert html.escape(repr(HOSTILE[0])) in mapper.code.value
    mapper.restore_button.click()
    assert mapper.model.report is not None, mapper.message.value
    assert variables["ü/é"].numpy().tolist() == expected(HOSTILE[0]).tolist()
    assert variables["renamed \"<b>\" 名\n"].numpy().tolist() == expected(HOSTILE[1]).tolist()
    html_is_escaped(mapper)


def test_mapper_prefer_ema_with_hostile_names(hostile_ckpt):
    variables = hostile_variables()
    mapper = VariableMapper(hostile_ckpt, variables, prefer_ema=True)
    assert mapper.plan.mapping[HOSTILE[0]] == HOSTILE[0] + EMA
    row = [shown(c) for c in mapper.table.column("variable")].index(HOSTILE[0])
    labels = [label for label, value in mapper.key_dropdowns[row].options if value == HOSTILE[0] + EMA]
    assert labels and labels[0].startswith("★ ")
    assert mapper.key_dropdowns[row].tooltip.startswith("★ " + HOSTILE[0] + EMA)  # the whole key on hover


# --- exported code ------------------------------------------------------------------------------

# What generated code may call, by style: dotted names, "[]" for a subscript.
ALLOWED_CALLS = {
    "saver": {"tf.compat.v1.train.Saver", "saver.restore", "sess.graph.as_default"},
    "init_from_checkpoint": {"tf.compat.v1.train.init_from_checkpoint", "variables[].graph.as_default"},
    "checkpoint": {"tf.train.load_checkpoint", "reader.get_tensor", "values.items", "variables[].assign"},
}
ALLOWED_NAMES = re.compile(
    r"^(tf|variables|sess|checkpoint_path|reader|values|name|value|(var_list|saver|assignment_map)(_\d+)?)$"
)


def dotted(node) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Subscript):
        return f"{dotted(node.value)}[]"
    return f"<{type(node).__name__}>"


def check_code(code: str, style: str, prefix: str, strings: set) -> None:
    """Prove from the AST that ``code`` only does what its style does."""
    tree = ast.parse(code)
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert [ast.dump(n) for n in imports] == [ast.dump(ast.parse("import tensorflow as tf").body[0])]
    for node in ast.walk(tree):
        assert not isinstance(node, (ast.Lambda, ast.JoinedStr, ast.FunctionDef, ast.ClassDef, ast.Global,
                                     ast.Delete, ast.Try, ast.While, ast.AsyncFunctionDef, ast.Await)), ast.dump(node)
        if isinstance(node, ast.Call):
            name = dotted(node.func)
            name = re.sub(r"^(saver|var_list|assignment_map)_\d+", r"\1", name)
            assert name in ALLOWED_CALLS[style], f"{style} code calls {name}"
            assert not node.keywords or style == "saver" and {k.arg for k in node.keywords} == {"var_list"}
        if isinstance(node, ast.Name):
            assert ALLOWED_NAMES.match(node.id), f"{style} code uses the name {node.id!r}"
        if isinstance(node, ast.Attribute):
            assert not node.attr.startswith("_"), f"{style} code touches {node.attr!r}"
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            assert node.value in strings | {prefix}, f"{style} code holds the string {node.value!r}"
    assert any(isinstance(n, ast.Constant) and n.value == prefix for n in ast.walk(tree))


def run(code: str, **namespace):
    exec(compile(code, "<generated>", "exec"), namespace)


@pytest.mark.parametrize("style", STYLES)
def test_exported_code_restores_the_same_values_eager(hostile_ckpt, style):
    variables = hostile_variables()
    renamed = "renamed \"<b>\" 名\n"
    plan = plan_restore(hostile_ckpt, variables, rules={HOSTILE[1]: variables[renamed]}, prefer_ema=True)
    assert plan.ok
    code = plan.to_code(style)
    check_code(code, style, hostile_ckpt, set(all_keys()) | set(variables))
    run(code, variables=plan.variables, sess=None)
    got = {n: v.numpy().tolist() for n, v in variables.items()}
    # The same plan through ckptwidgets.restore, into fresh variables.
    fresh = hostile_variables()
    twin = plan_restore(hostile_ckpt, fresh, rules={HOSTILE[1]: fresh[renamed]}, prefer_ema=True)
    assert twin.mapping == plan.mapping
    ckptwidgets.restore(twin)
    assert got == {n: v.numpy().tolist() for n, v in fresh.items()}
    assert got[HOSTILE[0]] == expected(HOSTILE[0] + EMA).tolist() and got[renamed] == expected(HOSTILE[1]).tolist()


@pytest.mark.parametrize("style", ["saver", "init_from_checkpoint"])
def test_exported_code_restores_the_same_values_graph(hostile_ckpt, style):
    graph = tf.Graph()
    with graph.as_default():
        variables = {name: v1_.Variable(np.zeros(2, np.float32), name=f"v{i}") for i, name in enumerate(HOSTILE)}
    plan = plan_restore(hostile_ckpt, variables)
    assert plan.ok and plan.mapping == {n: n for n in HOSTILE}
    code = plan.to_code(style)
    check_code(code, style, hostile_ckpt, set(all_keys()) | set(variables))
    with v1_.Session(graph=graph) as sess:
        run(code, variables=plan.variables, sess=sess)
        if style == "init_from_checkpoint":
            sess.run(v1_.global_variables_initializer())
        got = dict(zip(variables, (g.tolist() for g in sess.run(list(variables.values())))))
    assert got == {n: expected(n).tolist() for n in HOSTILE}


def test_the_code_check_can_fail(base_ckpt):
    plan = plan_restore(base_ckpt, {"v1": tf.Variable([0.0])})
    code = plan.to_code("checkpoint")
    check_code(code, "checkpoint", base_ckpt, {"v1"})
    for evil in ("__import__('os').system('true')", "eval('1')", "open('/etc/passwd')", "exec('x = 1')",
                 "variables['v1']._handle", "import os"):
        with pytest.raises(AssertionError):
            check_code(code + evil + "\n", "checkpoint", base_ckpt, {"v1"})
    with pytest.raises(AssertionError):
        check_code(code.replace("'v1'", "'v1' + 'x'", 1), "checkpoint", base_ckpt, {"v1"})
