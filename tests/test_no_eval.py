"""Nothing in the package evaluates or unpickles content (issue #6).

Two checks: an AST walk of every module of ``ckptwidgets`` for the calls and imports that
run or unpickle data (``eval``, ``exec``, ``compile``, ``__import__``, ``pickle``,
``marshal``, ``shelve``, ``np.load(allow_pickle=True)``, ``yaml.load``, ``os.system``,
``subprocess``...); and a behavioural one: string tensors holding a pickle that would
create a file, and Python source that would, go through every path that touches tensor
values (``Checkpoint.read``, the browser's selection and statistics, ``restore`` into a
string variable, the mapper and its code preview) and the file never appears.

Allowed on purpose: ``Session.run`` (TensorFlow's), ``re.compile``, ``ast.literal_eval``
(``_rules.parse_rules`` unquotes rule sides typed by the user; it builds literals only and
calls nothing), ``torch.load(..., weights_only=True)`` (torch's allowlisting unpickler: tensors
and plain containers only, no global it does not know; ``sources/torch/`` reads state dicts so), ``importlib.import_module`` in an ``__init__`` on its fixed table of submodules
(the package's lazy names, ``sources.FORMATS``, ``cli.SUBCOMMANDS``), and in ``cli/_model_spec.py``,
which imports the module the user names in ``convert``/``export --model MODULE:FUNCTION``.
"""
from __future__ import annotations

import ast
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import ckptwidgets

PACKAGE = Path(ckptwidgets.__file__).parent

BANNED_NAMES = {"eval", "exec", "compile", "__import__", "execfile", "input", "breakpoint"}
BANNED_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "cloudpickle", "joblib", "yaml",
                  "subprocess", "pty", "code", "codeop", "runpy"}
BANNED_ATTRS = {
    ("os", "system"), ("os", "popen"), ("os", "execv"), ("os", "execve"), ("os", "execvp"), ("os", "spawnv"),
    ("yaml", "load"), ("yaml", "unsafe_load"), ("yaml", "full_load"),
    ("pickle", "loads"), ("pickle", "load"), ("marshal", "loads"), ("builtins", "eval"), ("builtins", "exec"),
}
# Paths inside the package: ckptwidgets/convert.py is another module of the same name.
ALLOWED_IMPORT_MODULE = {"cli/_model_spec.py"}  # convert/export --model MODULE:FUNCTION: the user names the module


def may_import_modules(filename: str) -> bool:
    """An ``__init__`` (its fixed table of submodules) or a module of ``ALLOWED_IMPORT_MODULE``."""
    path = Path(filename)
    inside = path.relative_to(PACKAGE.name).as_posix() if path.parts[:1] == (PACKAGE.name,) else None
    return path.name == "__init__.py" or inside in ALLOWED_IMPORT_MODULE


def dotted(node) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{dotted(node.value)}.{node.attr}"
    return "?"


def findings(source: str, filename: str = "<src>") -> list[str]:
    """Every banned call or import in ``source``, as ``file:line: what``."""
    out = []
    tree = ast.parse(source, filename)
    for node in ast.walk(tree):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in BANNED_MODULES:
                    out.append(f"{where}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            module = (node.module or "").split(".")[0]
            if module in BANNED_MODULES:
                out.append(f"{where}: from {node.module} import ...")
            if module == "builtins" and any(a.name in BANNED_NAMES for a in node.names):
                out.append(f"{where}: from builtins import {[a.name for a in node.names]}")
        elif isinstance(node, ast.Call):
            func = node.func
            name = dotted(func)
            parts = name.split(".")
            if isinstance(func, ast.Name) and func.id in BANNED_NAMES:
                out.append(f"{where}: {func.id}(...)")
            if isinstance(func, ast.Name) and func.id == "getattr" and len(node.args) > 1:
                target = node.args[1]
                if isinstance(target, ast.Constant) and target.value in BANNED_NAMES:
                    out.append(f"{where}: getattr(..., {target.value!r})")
            if name == "torch.load" and not any(k.arg == "weights_only" and isinstance(k.value, ast.Constant)
                                                and k.value.value is True for k in node.keywords):
                out.append(f"{where}: {name}(...) without weights_only=True")
            if len(parts) >= 2 and (parts[-2], parts[-1]) in BANNED_ATTRS:
                out.append(f"{where}: {name}(...)")
            if parts[0] in BANNED_MODULES:
                out.append(f"{where}: {name}(...)")
            if parts[-1] == "load" and len(parts) >= 2 and parts[-2] in ("np", "numpy"):
                if any(k.arg == "allow_pickle" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
                       for k in node.keywords):
                    out.append(f"{where}: {name}(..., allow_pickle=...)")
            if parts[-1] == "import_module" and not may_import_modules(filename):
                out.append(f"{where}: {name}(...)")
            if name.endswith("literal_eval") and Path(filename).name != "rules.py":
                out.append(f"{where}: {name}(...) outside the rules parser")
    return out


def package_files():
    return sorted(PACKAGE.rglob("*.py"))


def test_the_package_has_modules_to_check():
    names = {p.name for p in package_files()}
    assert {"reader.py", "plan.py", "restore.py", "codegen.py", "browser.py", "mapper.py"} <= names


def test_no_module_evaluates_or_unpickles():
    found = []
    for path in package_files():
        found += findings(path.read_text(encoding="utf-8"), str(path.relative_to(PACKAGE.parent)))
    assert not found, "\n".join(found)


@pytest.mark.parametrize("snippet", [
    "eval(text)",
    "exec(code)",
    "x = compile(s, 'f', 'exec')",
    "__import__('os')",
    "import pickle\npickle.loads(b)",
    "from pickle import loads",
    "import marshal",
    "np.load(path, allow_pickle=True)",
    "numpy.load(path, allow_pickle=flag)",
    "yaml.load(text)",
    "os.system('ls')",
    "import subprocess",
    "getattr(builtins, 'eval')(s)",
    "from builtins import exec",
    "torch.load(path)",
    "torch.load(path, weights_only=False)",
    "torch.load(path, weights_only=flag)",
])
def test_the_walk_catches(snippet):
    assert findings(snippet), snippet


@pytest.mark.parametrize("snippet", [
    "sess.run(op)", "re.compile(p)", "np.load(path)", "np.load(path, allow_pickle=False)",
    "session.run(fetches)", "tf.compat.v1.Session().run(x)",
    "torch.load(path, weights_only=True, mmap=True)",
])
def test_the_walk_allows(snippet):
    assert not findings(snippet), findings(snippet)


def test_import_module_only_where_allowed():
    call = "import importlib\nimportlib.import_module(name)"
    assert not findings(call, "ckptwidgets/cli/_model_spec.py") and not findings(call, "ckptwidgets/cli/__init__.py")
    for elsewhere in ("ckptwidgets/convert.py", "ckptwidgets/cli/convert.py", "ckptwidgets/cli/export.py",
                      "ckptwidgets/cli/rename.py", "convert.py", "<src>"):
        assert findings(call, elsewhere), elsewhere


# --- behaviour: hostile string tensors stay bytes ------------------------------------------------


class _Touch:
    """Unpickling this creates the marker file."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_string_tensors_are_bytes_never_unpickled_or_evaluated(tmp_path):
    marker = str(tmp_path / "MARKER")
    payloads = [
        pickle.dumps(_Touch(marker)),
        f"open({marker!r}, 'w')".encode(),
        f"__import__('builtins').open({marker!r}, 'w')".encode(),
        b"<img src=x onerror=alert(1)>",
    ]
    npy = tmp_path / "obj.npy"
    np.save(npy, np.array([_Touch(marker)], dtype=object), allow_pickle=True)
    payloads.append(npy.read_bytes())
    prefix = str(tmp_path / "strings.ckpt")
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=["payload", "shadowed", "shadowed/ExponentialMovingAverage"],
                      shape_and_slices=[""] * 3,
                      tensors=[tf.constant(payloads), tf.constant(payloads[:2]), tf.constant(payloads[:2])])

    ckpt = ckptwidgets.open_checkpoint(prefix)
    got = ckpt.read("payload")
    assert got.dtype == object and got.tolist() == payloads and all(type(b) is bytes for b in got.tolist())

    from ckptwidgets import CheckpointBrowser, VariableMapper

    browser = CheckpointBrowser(prefix)
    for key in ("payload", "shadowed", "shadowed/ExponentialMovingAverage"):
        browser.model.selected = key  # statistics, comparison with the shadow, histogram
        repr(browser)

    variables = {"payload": tf.Variable(np.full(len(payloads), b"", dtype=object)),
                 "shadowed": tf.Variable(np.full(2, b"", dtype=object))}
    plan = ckptwidgets.plan_restore(ckpt, variables, prefer_ema=True)
    assert plan.ok, plan.problems
    ckptwidgets.restore(plan)
    assert variables["payload"].numpy().tolist() == payloads
    mapper = VariableMapper(prefix, variables)
    accordion = getattr(mapper, "code_accordion", None)
    if accordion is not None:
        accordion.selected_index = 0
    for style in ("saver", "init_from_checkpoint", "checkpoint"):
        mapper.style_buttons.value = style
    repr(mapper)
    mapper.restore_button.click()
    assert not os.path.exists(marker)
    # The payload does work when unpickled: the check above is not vacuous.
    pickle.loads(payloads[0]).close()
    assert os.path.exists(marker)
