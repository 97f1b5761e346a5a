"""The code that restores a plan from a Keras weights file (:meth:`KerasSource.restore_code`).

Private helper of :mod:`ckptwidgets.sources.keras`, asked by :func:`ckptwidgets.codegen.to_code`.
TensorFlow's ``Saver`` and readers cannot open HDF5, so in every style the values are read
with h5py (a ``.keras`` archive's ``model.weights.h5`` through zipfile), all before any
variable is assigned (:func:`ckptwidgets.codegen.restore_with`).
"""
from __future__ import annotations

__all__ = ["restore_code"]


def restore_code(plan, style: str, archive: bool) -> list[str]:
    """The lines restoring ``plan`` in ``style``; ``archive``: the file is a ``.keras`` zip archive."""
    from ...codegen import restore_with
    from ..bundle import format_box

    why = [
        f"# {plan.checkpoint.prefix!r} is a Keras weights file, which TensorFlow's Saver and readers cannot open:",
        "# its datasets are read with h5py, every one before any variable is assigned.",
    ]
    if archive:
        imports = ["import zipfile", "import h5py"]
        reading = ['with zipfile.ZipFile(checkpoint_path) as archive, archive.open("model.weights.h5") as member, '
                   'h5py.File(member, "r") as f:']
    else:
        imports, reading = ["import h5py"], ['with h5py.File(checkpoint_path, "r") as f:']
    reading.append("    values = {")
    for name, key in plan.mapping.items():
        part = plan.infos[name].part
        where = "[()]" if part is None else format_box(part.box)
        reading.append(f"        {name!r}: f[{key!r}]{where},")
    reading.append("    }")
    lines = restore_with(plan, style, why, imports, reading)
    lines[0] = lines[0].replace("from a checkpoint", "from a Keras weights file")
    return lines
