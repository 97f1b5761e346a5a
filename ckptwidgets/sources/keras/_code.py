"""The code that restores a plan from a Keras weights file (:meth:`KerasSource.restore_code`).

Private helper of :mod:`ckptwidgets.sources.keras`, asked by :func:`ckptwidgets.codegen.to_code`.
TensorFlow's ``Saver`` and readers cannot open HDF5, so in every style the values are read
with h5py (a ``.keras`` archive's ``model.weights.h5`` through zipfile), all before any
variable is assigned; the header and the unmapped note are codegen's.
"""
from __future__ import annotations

__all__ = ["restore_code"]


def restore_code(plan, style: str, archive: bool) -> list[str]:
    """The lines restoring ``plan`` in ``style``; ``archive``: the file is a ``.keras`` zip archive."""
    from ...codegen import header, unmapped_note
    from ..bundle import format_box

    needs = "`variables` (dict name -> variable)" + (" and `sess` (None in eager mode)" if style == "saver" else "")
    lines = header(plan, style, needs)
    lines.remove("import tensorflow as tf")
    lines[1:1] = [
        f"# {plan.checkpoint.prefix!r} is a Keras weights file, which TensorFlow's Saver and readers cannot open:",
        "# its datasets are read with h5py, every one before any variable is assigned.",
    ]
    lines[0:1] = [lines[0].replace("from a checkpoint", "from a Keras weights file")]
    lines.insert(lines.index("") if "" in lines else len(lines), "import h5py")
    if archive:
        lines.insert(lines.index("import h5py"), "import zipfile")
        lines.append('with zipfile.ZipFile(checkpoint_path) as archive, archive.open("model.weights.h5") as member, '
                     'h5py.File(member, "r") as f:')
    else:
        lines.append('with h5py.File(checkpoint_path, "r") as f:')
    lines.append("    values = {")
    infos = plan.infos
    for name, key in plan.mapping.items():
        part = infos[name].part
        where = "[()]" if part is None else format_box(part.box)
        lines.append(f"        {name!r}: f[{key!r}]{where},")
    lines.append("    }")
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
