"""Write a :class:`~ckptwidgets.plan.RestorePlan` as plain TensorFlow code.

The code expects ``variables`` in scope (``{name: variable}``, i.e. ``plan.variables``) and,
for the ``"saver"`` style, ``sess`` (the ``tf.compat.v1.Session``; ``None`` in eager mode).
Every key, name and path is written with ``repr()``, and comments are escaped the same way,
so quotes, backslashes, newlines, markup and non-ASCII names cannot break the code.

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

from .errors import PlanError

__all__ = ["to_code", "STYLES"]

STYLES = ("saver", "init_from_checkpoint", "checkpoint")


def _comment(text: str) -> str:
    # Escape what is not printable (\n, \r, \x0c, \u2028, NUL...), as repr() does: one line.
    return "# " + "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def _variable(plan, name: str) -> str:
    # Saver and init_from_checkpoint need the tf.Variable a Keras 3 variable holds (.value).
    suffix = ".value" if plan.infos[name].keras else ""
    return f"variables[{name!r}]{suffix}"


def _header(plan, style: str, needs: str) -> list[str]:
    lines = [
        f"# Restore {len(plan.mapping)} variable(s) from a checkpoint ({style} style, written by ckptwidgets).",
        f"# Needs in scope: {needs}.",
    ]
    for problem in plan.problems:
        lines.append(_comment(f"PROBLEM ({problem.reason}): {problem.message}"))
    lines += ["import tensorflow as tf", "", f"checkpoint_path = {plan.checkpoint.prefix!r}"]
    return lines


def _unmapped_note(plan, lines: list[str], advice: str) -> None:
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


def _saver(plan) -> list[str]:
    lines = _header(plan, "saver", "`variables` (dict name -> variable) and `sess` (None in eager mode)")
    lists = plan.var_lists
    graph_var = _graph_of(plan)
    body: list[str] = []
    if len(lists) > 1:
        body.append("# A key feeds several variables: one Saver per dict (a dict key is unique).")
    for i, var_list in enumerate(lists):
        suffix = "" if len(lists) == 1 else f"_{i + 1}"
        body += _dict_lines(plan, i, f"var_list{suffix}")
        body.append(f"saver{suffix} = tf.compat.v1.train.Saver(var_list=var_list{suffix})")
        body.append(f"saver{suffix}.restore(sess, checkpoint_path)")
    if not lists:
        body.append("pass  # nothing is mapped: nothing to restore")
    if graph_var is not None:  # the Saver's ops must go into the variables' graph
        lines.append("with sess.graph.as_default():")
        lines.extend("    " + line for line in body)
    else:
        lines.extend(body)
    _unmapped_note(plan, lines, "in graph mode initialise them, e.g. tf.compat.v1.variables_initializer")
    return lines


def _pairs(plan, n: int) -> list[tuple[str, str]]:
    """The ``(name, key)`` pairs of ``plan.var_lists[n]``, in plan order."""
    seen: dict[str, int] = {}
    out = []
    for name, key in plan.mapping.items():
        k = seen.get(key, 0)
        seen[key] = k + 1
        if k == n:
            out.append((name, key))
    return out


def _dict_lines(plan, n: int, target: str) -> list[str]:
    """``target = {key: variables[name], ...}`` for ``plan.var_lists[n]``, every string repr-quoted."""
    return [f"{target} = {{"] + [f"    {key!r}: {_variable(plan, name)}," for name, key in _pairs(plan, n)] + ["}"]


def _init_from_checkpoint(plan) -> list[str]:
    lines = _header(plan, "init_from_checkpoint", "`variables` (dict name -> variable)")
    lists = plan.var_lists
    graph_var = _graph_of(plan)
    body: list[str] = []
    for i in range(len(lists)):
        suffix = "" if len(lists) == 1 else f"_{i + 1}"
        body += _dict_lines(plan, i, f"assignment_map{suffix}")
        body.append(f"tf.compat.v1.train.init_from_checkpoint(checkpoint_path, assignment_map{suffix})")
    if not lists:
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
    _unmapped_note(plan, lines, "their own initializers give them their values")
    return lines


def _checkpoint(plan) -> list[str]:
    lines = _header(plan, "checkpoint", "`variables` (dict name -> variable), eager execution")
    lines += [
        "reader = tf.train.load_checkpoint(checkpoint_path)",
        "# Read every tensor first, then assign: a failed read changes nothing.",
        "values = {",
    ]
    lines += [f"    {name!r}: reader.get_tensor({key!r})," for name, key in plan.mapping.items()]
    lines += ["}", "for name, value in values.items():", "    variables[name].assign(value)"]
    _unmapped_note(plan, lines, "they keep their current values")
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
    return "\n".join(builders[style](plan)) + "\n"
