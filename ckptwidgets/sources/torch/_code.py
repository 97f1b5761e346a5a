"""The code that restores a plan from a PyTorch state dict (:meth:`TorchSource.restore_code`).

Private helper of :mod:`ckptwidgets.sources.torch`, asked by
:func:`ckptwidgets.codegen.to_code`. TensorFlow's ``Saver`` and readers cannot open a
``.pt`` file, so in every style the values are read with ``torch.load(weights_only=True)``
(``.numpy()``; bfloat16 and float8 through a same-size integer viewed as ml_dtypes' type, as
TensorFlow's numpy dtypes are), all before any variable is assigned
(:func:`ckptwidgets.codegen.restore_with`).
"""
from __future__ import annotations

__all__ = ["restore_code"]

_ML_DTYPES = {"bfloat16": "int16", "float8_e4m3fn": "uint8", "float8_e5m2": "uint8",
              "float8_e4m3fnuz": "uint8", "float8_e5m2fnuz": "uint8"}


def restore_code(plan, style: str) -> list[str]:
    """The lines restoring ``plan`` in ``style``."""
    from ...codegen import restore_with
    from ..bundle import format_box

    why = [
        f"# {plan.checkpoint.prefix!r} is a PyTorch state dict, which TensorFlow's Saver and readers cannot open:",
        "# its tensors are read with torch.load, every one before any variable is assigned.",
    ]
    imports = ["import torch"]
    reading = ['state = torch.load(checkpoint_path, weights_only=True, mmap=True, map_location="cpu")', "values = {}"]
    for name, key in plan.mapping.items():
        part = plan.infos[name].part
        where = "" if part is None else format_box(part.box)
        dtype = plan.checkpoint[key].dtype
        if dtype in _ML_DTYPES:
            if "import ml_dtypes" not in imports:
                imports.insert(0, "import ml_dtypes")
            value = f"state[{key!r}].view(torch.{_ML_DTYPES[dtype]}).numpy().view(ml_dtypes.{dtype})"
        else:
            value = f"state[{key!r}].numpy()"
        reading.append(f"values[{name!r}] = {value}{where}")
    lines = restore_with(plan, style, why, imports, reading)
    lines[0] = lines[0].replace("from a checkpoint", "from a PyTorch state dict")
    return lines
