"""Write a :class:`~ckptwidgets.plan.RestorePlan` as plain TensorFlow code.

The code expects ``variables`` in scope (``{name: variable}``, i.e. ``plan.variables``) and,
for the ``"saver"`` style, ``sess`` (the ``tf.compat.v1.Session``; ``None`` in eager mode).
Every key, name and path is written with ``repr()``, and comments are escaped the same way,
so quotes, backslashes, newlines, markup and non-ASCII names cannot break the code.

The parts of a partitioned variable (plan names ``"w/part_0"``...) are written as TensorFlow
takes them: a list of the parts under the full key in a ``Saver`` var_list or an
``init_from_checkpoint`` assignment map (each restores its slice by its save slice info),
and in the ``"checkpoint"`` style the part's slice of the full tensor
(``reader.get_tensor('w')[0:4, 0:3]``). TensorFlow's ``Saver`` and ``init_from_checkpoint``
fail on the parts of EAGER variables (they read ``variable.op``): in eager mode those two
styles restore the parts with ``tf.raw_ops.RestoreV2`` and the part's slice spec, the op
``Saver`` itself runs.

Layout transforms (``plan.transforms``: a Keras kernel transposed for a torch weight) are
written as NumPy expressions (``Transform.code``): in the ``"checkpoint"`` style the value
read is transformed in place; ``"saver"`` and ``"init_from_checkpoint"`` leave the transformed
variables out of their dicts and read, transform and assign them after (``var.assign(np...)``);
a format's own reading code (``restore_with``) transforms ``values`` before assigning.

A plan into a ``torch.nn.Module`` (``plan.target == "torch"``) gives the same torch code in
every style, with ``module`` in scope: the checkpoint opened with ckptwidgets (no TensorFlow),
the state dict built from NumPy expressions, ``module.load_state_dict(state, strict=False)``,
and its missing and unexpected keys printed.

Example
-------
>>> import os, tempfile
>>> import tensorflow as tf
>>> import ckptwidgets
>>> path = os.path.join(tempfile.mkdtemp(), "model.ckpt")
>>> path = tf.compat.v1.train.Saver({"v1": tf.Variable([1.0])}).save(None, path)
>>> plan = ckptwidgets.plan_restore(path, {"it's": tf.Variable([0.0])}, rules={"v1": "it's"})
>>> code = plan.to_code("checkpoint")
>>> print(code[code.index("values"):])
values = {
    "it's": reader.get_tensor('v1'),
}
for name, value in values.items():
    variables[name].assign(value)
<BLANKLINE>
>>> exec(code, {"variables": plan.variables})
>>> plan.variables["it's"].numpy()
array([1.], dtype=float32)
"""
from __future__ import annotations

from ._planning.partitions import var_list_names
from .sources.bundle import format_box
from ._text.format import count_of
from .errors import PlanError

__all__ = ["to_code", "STYLES", "header", "unmapped_note", "restore_with"]

STYLES = ("saver", "init_from_checkpoint", "checkpoint")


def _comment(text: str) -> str:
    # Escape what is not printable (\n, \r, \x0c, \u2028, NUL...), as repr() does: one line.
    return "# " + "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def _variable(plan, name: str) -> str:
    # Saver and init_from_checkpoint need the tf.Variable a Keras 3 variable holds (.value).
    suffix = ".value" if plan.infos[name].keras else ""
    return f"variables[{name!r}]{suffix}"


def header(plan, style: str, needs: str) -> list[str]:
    lines = [
        f"# Restore {count_of(len(plan.mapping), 'variable')} from a checkpoint ({style} style, written by ckptwidgets).",
        f"# Needs in scope: {needs}.",
    ]
    for problem in plan.problems:
        lines.append(_comment(f"PROBLEM ({problem.reason}): {problem.message}"))
    lines += ["import tensorflow as tf", "", f"checkpoint_path = {plan.checkpoint.prefix!r}"]
    return lines


def unmapped_note(plan, lines: list[str], advice: str) -> None:
    unmapped = plan.unmapped
    if unmapped:
        lines.append(f"# Not restored ({advice}):")
        lines.extend(f"#   {name!r}" for name in unmapped)  # repr(): always one line


def _graph_of(plan):
    try:
        graph = plan.graph
    except PlanError:  # several graphs: the code cannot enter one
        return None
    return next(iter(plan.infos)) if graph is not None else None


def _eager(plan) -> bool:
    try:
        return plan.graph is None
    except PlanError:
        return False


def _split_eager_parts(plan, lists: list[dict]) -> tuple[list[dict], list[tuple]]:
    """``(lists without the parts, [(part name, key)])`` for an eager plan, else ``(lists, [])``:
    TF's Saver and init_from_checkpoint cannot restore the parts of eager variables."""
    if not _eager(plan) or not any(isinstance(n, list) for names in lists for n in names.values()):
        return lists, []
    kept, parts = [], []
    for names in lists:
        rest = {}
        for key, name in names.items():
            if isinstance(name, list):
                parts += [(part, key) for part in name]
            else:
                rest[key] = name
        if rest:
            kept.append(rest)
    return kept, parts


def _slice_reads(plan, parts: list[tuple]) -> list[str]:
    """RestoreV2 of each eager part's slice (read all first, then assign)."""
    if not parts:
        return []
    infos = plan.infos
    lines = [
        "# TensorFlow's Saver and init_from_checkpoint cannot restore slices of eager variables:",
        "# each part reads its slice of the full key with RestoreV2 (the op Saver runs), then all are assigned.",
        "slices = {",
    ]
    lines += [f"    {name!r}: ({key!r}, {infos[name].part.spec!r})," for name, key in parts]
    lines += [
        "}",
        "values = {",
        "    name: tf.raw_ops.RestoreV2(prefix=checkpoint_path, tensor_names=[key], shape_and_slices=[spec],",
        "                               dtypes=[variables[name].dtype])[0]",
        "    for name, (key, spec) in slices.items()",
        "}",
        "for name, value in values.items():",
        "    variables[name].assign(value)",
    ]
    return lines


def _saver(plan) -> list[str]:
    lines = header(plan, "saver", "`variables` (dict name -> variable) and `sess` (None in eager mode)")
    lists, parts = _split_eager_parts(plan, _untransformed_lists(plan))
    graph_var = _graph_of(plan)
    body: list[str] = []
    if len(lists) > 1:
        body.append("# A key feeds several variables: one Saver per dict (a dict key is unique).")
    for i, names in enumerate(lists):
        suffix = "" if len(lists) == 1 else f"_{i + 1}"
        body += _dict_lines(names, plan, f"var_list{suffix}")
        body.append(f"saver{suffix} = tf.compat.v1.train.Saver(var_list=var_list{suffix})")
        body.append(f"saver{suffix}.restore(sess, checkpoint_path)")
    body += _slice_reads(plan, parts)
    body += _transform_lines(plan, "saver")
    if not lists and not parts and not plan.transforms:
        body.append("pass  # nothing is mapped: nothing to restore")
    if graph_var is not None:  # the Saver's ops must go into the variables' graph
        lines.append("with sess.graph.as_default():")
        lines.extend("    " + line for line in body)
    else:
        lines.extend(body)
    unmapped_note(plan, lines, "in graph mode initialise them, e.g. tf.compat.v1.variables_initializer")
    return lines


def _dict_lines(names: dict, plan, target: str) -> list[str]:
    """``target = {key: variables[name], ...}`` for one dict of ``plan.var_list_names``, every
    string repr-quoted; the parts of a partitioned variable as a list, one part a line."""
    lines = [f"{target} = {{"]
    for key, name in names.items():
        if isinstance(name, list):
            lines.append(f"    {key!r}: [")
            lines += [f"        {_variable(plan, part)}," for part in name]
            lines.append("    ],")
        else:
            lines.append(f"    {key!r}: {_variable(plan, name)},")
    return lines + ["}"]


def _init_from_checkpoint(plan) -> list[str]:
    lines = header(plan, "init_from_checkpoint", "`variables` (dict name -> variable)")
    lists, parts = _split_eager_parts(plan, _untransformed_lists(plan))
    graph_var = _graph_of(plan)
    body: list[str] = []
    for i, names in enumerate(lists):
        suffix = "" if len(lists) == 1 else f"_{i + 1}"
        body += _dict_lines(names, plan, f"assignment_map{suffix}")
        body.append(f"tf.compat.v1.train.init_from_checkpoint(checkpoint_path, assignment_map{suffix})")
    body += _slice_reads(plan, parts)
    body += _transform_lines(plan, "init_from_checkpoint")
    if not lists and not parts and not plan.transforms:
        body.append("pass  # nothing is mapped: nothing to restore")
    if graph_var is not None:
        lines.append(f"with variables[{graph_var!r}].graph.as_default():")
        lines.extend("    " + line for line in body)
        lines += [
            "# init_from_checkpoint only replaces the initializers: the values arrive when they run,",
            "# e.g. sess.run(tf.compat.v1.global_variables_initializer()), after this code.",
        ]
    else:
        lines.extend(body)
        lines.append("# Eager variables are assigned at once; in graph mode run the initializers after this.")
    unmapped_note(plan, lines, "their own initializers give them their values")
    return lines


def _checkpoint(plan) -> list[str]:
    lines = header(plan, "checkpoint", "`variables` (dict name -> variable), eager execution")
    lines += [
        "reader = tf.train.load_checkpoint(checkpoint_path)",
        "# Read every tensor first, then assign: a failed read changes nothing.",
        "values = {",
    ]
    infos = plan.infos
    exprs = _transformed(plan, lambda key: f"reader.get_tensor({key!r})")
    if exprs:
        lines.insert(lines.index("reader = tf.train.load_checkpoint(checkpoint_path)"), "import numpy as np")
    for name, key in plan.mapping.items():
        part = infos[name].part
        where = "" if part is None else format_box(part.box)  # a part: its slice, "[0:4, 0:3]"
        lines.append(f"    {name!r}: {exprs[name]}," if name in exprs else f"    {name!r}: reader.get_tensor({key!r}){where},")
    lines += ["}", "for name, value in values.items():", "    variables[name].assign(value)"]
    unmapped_note(plan, lines, "they keep their current values")
    return lines


def restore_with(plan, style: str, why: list[str], imports: list[str], reading: list[str]) -> list[str]:
    """Every style's code for a format TensorFlow's readers cannot open (a source's
    ``restore_code`` hook builds on it): codegen's header without TensorFlow, the comment
    lines ``why`` under its first line, ``imports``, then ``reading`` (lines that fill
    ``values``, ``{variable name: value}``), and every variable assigned after all are read.
    """
    needs = "`variables` (dict name -> variable)" + (" and `sess` (None in eager mode)" if style == "saver" else "")
    lines = header(plan, style, needs)
    lines.remove("import tensorflow as tf")
    lines[1:1] = why
    at = lines.index("") if "" in lines else len(lines)
    lines[at:at] = imports
    lines += reading
    lines += _transforms_after_reading(plan)
    lines.append("for name, value in values.items():")
    if style == "saver":  # graph-mode variables take their value through the session
        lines += [
            "    if sess is None:",
            "        variables[name].assign(value)",
            "    else:",
            "        variables[name].load(value, sess)",
        ]
    else:
        lines.append("    variables[name].assign(value)")
    unmapped_note(plan, lines, "they keep their current values")
    return lines


def _transformed(plan, read) -> dict:
    """``{name: NumPy expression}`` of the plan's transformed assignments; ``read(key)`` is the
    expression that reads one key."""
    return {a.name: a.transform.code(*(read(k) for k in a.keys)) for a in plan.assignments if a.transform is not None}


def _untransformed_lists(plan) -> list[dict]:
    """``plan.var_list_names`` without the variables that take a transform (TF cannot apply it)."""
    transforms = plan.transforms
    if not transforms:
        return plan.var_list_names
    return var_list_names({n: k for n, k in plan.mapping.items() if n not in transforms}, plan.infos)


def _transform_lines(plan, style: str) -> list[str]:
    """Read, transform (NumPy) and assign the transformed variables: after a Saver / init_from_checkpoint."""
    exprs = _transformed(plan, lambda key: f"reader.get_tensor({key!r})")
    if not exprs:
        return []
    lines = ["# Layout transforms: TensorFlow cannot apply them, so these keys are read, transformed with NumPy,",
             "# and assigned (every one read before any is assigned).",
             "import numpy as np", "reader = tf.train.load_checkpoint(checkpoint_path)", "transformed = {"]
    lines += [f"    {name!r}: {expr}," for name, expr in exprs.items()]
    lines += ["}", "for name, value in transformed.items():"]
    if style == "saver":
        lines += ["    if sess is None:", "        variables[name].assign(value)", "    else:",
                  "        variables[name].load(value, sess)"]
    else:
        lines.append("    variables[name].assign(value)")
    return lines


def _torch(plan) -> list[str]:
    """The code for a plan into a torch module: ckptwidgets reads, NumPy transforms, load_state_dict."""
    lines = [f"# Restore {count_of(len(plan.mapping), 'tensor')} of a torch module from a checkpoint (written by ckptwidgets).",
             "# Needs in scope: `module` (the torch.nn.Module planned into)."]
    lines += [_comment(f"PROBLEM ({p.reason}): {p.message}") for p in plan.problems]
    lines += ["import numpy as np", "import torch", "import ckptwidgets", "",
              f"checkpoint_path = {plan.checkpoint.prefix!r}",
              "checkpoint = ckptwidgets.open_checkpoint(checkpoint_path)  # reads TF, Keras, safetensors... without TF",
              "",
              "def as_tensor(value):",
              "    value = np.array(value)  # its own, writable memory",
              '    if value.dtype.name == "bfloat16":  # NumPy has no bfloat16 of its own: through its bits',
              "        return torch.from_numpy(value.view(np.uint16)).view(torch.bfloat16)",
              "    return torch.from_numpy(value)",
              "",
              "# Read (and transform) every tensor first, then load: a failed read changes nothing.",
              "state = {"]
    exprs = _transformed(plan, lambda key: f"checkpoint.read({key!r})")
    for name, key in plan.mapping.items():
        lines.append(f"    {name!r}: as_tensor({exprs.get(name) or f'checkpoint.read({key!r})'}),")
    lines += ["}", "result = module.load_state_dict(state, strict=False)",
              'print("missing keys:", result.missing_keys)', 'print("unexpected keys:", result.unexpected_keys)']
    return lines


def _transforms_after_reading(plan) -> list[str]:
    """``values[name] = <NumPy expression>`` for each transformed variable, after a format's own
    reading filled ``values[name]`` with its first key's value; further keys through ckptwidgets."""
    if not plan.transforms:
        return []
    lines = ["# Layout transforms (NumPy), before anything is assigned.", "import numpy as np"]
    extra = any(a.extra_keys for a in plan.assignments if a.transform is not None)
    if extra:
        lines += ["import ckptwidgets", "checkpoint = ckptwidgets.open_checkpoint(checkpoint_path)"]
    for a in plan.assignments:
        if a.transform is not None:
            reads = [f"values[{a.name!r}]"] + [f"checkpoint.read({k!r})" for k in a.extra_keys]
            lines.append(f"values[{a.name!r}] = {a.transform.code(*reads)}")
    return lines


def to_code(plan, style: str = "saver") -> str:
    """Python source that performs ``plan`` in the given style.

    Parameters
    ----------
    plan : RestorePlan
    style : {"saver", "init_from_checkpoint", "checkpoint"}
        ``"saver"``: a ``tf.compat.v1.train.Saver`` with a dict var_list (one per dict of
        ``plan.var_lists``). ``"init_from_checkpoint"``: an assignment map of Variable
        objects. ``"checkpoint"``: TF2 eager code reading with ``tf.train.load_checkpoint``.

    Returns
    -------
    str
        Code that compiles; problems of the plan are listed in comments at the top (the
        code then fails as TensorFlow would, or, for a shape mismatch in graph mode, not).

    Examples
    --------
    >>> code = to_code(plan, "saver")                       # doctest: +SKIP
    >>> exec(code, {"variables": plan.variables, "sess": sess})   # doctest: +SKIP
    """
    builders = {"saver": _saver, "init_from_checkpoint": _init_from_checkpoint, "checkpoint": _checkpoint}
    if style not in builders:
        raise PlanError(f"Unknown code style {style!r}; choose one of {', '.join(map(repr, STYLES))}.")
    if getattr(plan, "target", "tf") == "torch":
        return "\n".join(_torch(plan)) + "\n"
    own = getattr(plan.checkpoint.source, "restore_code", None)  # a format TF cannot read
    lines = own(plan, style) if own is not None else None
    return "\n".join(lines if lines is not None else builders[style](plan)) + "\n"
