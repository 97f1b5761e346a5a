"""The code that restores a plan from a safetensors checkpoint (:meth:`SafetensorsSource.restore_code`).

Private helper of :mod:`ckptwidgets.sources.safetensors`, asked by
:func:`ckptwidgets.codegen.to_code`. TensorFlow's ``Saver`` and readers cannot open
safetensors, so in every style the values are read with ``safetensors.safe_open``
(``"np"``: numpy arrays, bfloat16 included), all before any variable is assigned
(:func:`ckptwidgets.codegen.restore_with`).
"""
from __future__ import annotations

__all__ = ["restore_code"]


def restore_code(plan, style: str, files: dict) -> list[str]:
    """The lines restoring ``plan`` in ``style``; ``files``: ``{key: the file holding it}``."""
    from ...codegen import restore_with
    from ..bundle import format_box

    why = [
        f"# {plan.checkpoint.prefix!r} is safetensors, which TensorFlow's Saver and readers cannot open:",
        "# its tensors are read with the safetensors package, every one before any variable is assigned.",
    ]
    by_file: dict = {}
    for name, key in plan.mapping.items():
        part = plan.infos[name].part
        by_file.setdefault(files[key], []).append((name, key, "" if part is None else format_box(part.box)))
    reading = ["values = {}"]
    for path, wanted in by_file.items():
        shown = "checkpoint_path" if path == plan.checkpoint.prefix else repr(path)  # a shard: its own file
        reading.append(f'with safe_open({shown}, "np") as f:')
        reading += [f"    values[{name!r}] = f.get_tensor({key!r}){where}" for name, key, where in wanted]
    lines = restore_with(plan, style, why, ["from safetensors import safe_open"], reading)
    lines[0] = lines[0].replace("from a checkpoint", "from a safetensors checkpoint")
    return lines
