"""Load a PyTorch state dict with torch, checked, and turn its tensors into numpy arrays.

Private helper of :mod:`ckptwidgets.sources.torch`. torch is imported here, inside
functions only (:func:`import_torch`), so that ``import ckptwidgets`` and opening any other
format never import it (seconds of start-up and about 300 MB). Without torch, reading or
writing a PyTorch file is the package's own error naming the extra to install.

``torch.load(path, weights_only=True, mmap=True, map_location="cpu")``: no pickled code is
run, and the tensors of a zip file (what ``torch.save`` writes since torch 1.6) stay in the
memory-mapped file, so nothing is read twice. A legacy pickle (``_use_new_zipfile_serialization=False``)
cannot be mapped: its tensors are read into memory once.
"""
from __future__ import annotations

import sys
import warnings
import zipfile
from typing import NamedTuple

import numpy as np

from .._dtypes import numpy_type
from .._validate import first_line
from ...errors import CheckpointError, CorruptCheckpointError, WriteError

__all__ = ["EXTRA", "LEGACY_MAGIC", "StateDict", "import_torch", "signature", "load_state_dict", "tf_dtype",
           "torch_dtype", "to_numpy", "to_tensor", "WHAT_WE_READ"]

#: What to install for torch.
EXTRA = "pip install 'ckptwidgets[torch]'"
#: torch's legacy format pickles this number first (``torch.serialization.MAGIC_NUMBER``),
#: as the 10-byte long ``\x8a\x0a`` + little-endian bytes.
LEGACY_MAGIC = b"\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
#: The one shape of file ckptwidgets reads, said in every message about another.
WHAT_WE_READ = "ckptwidgets reads a state dict {name: tensor}, as torch.save(module.state_dict(), path) writes"
#: torch dtypes with a TensorFlow dtype; torch's names for them are TensorFlow's.
_SHARED_DTYPES = (
    "float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8",
    "uint8", "uint16", "uint32", "uint64", "bool", "complex64", "complex128",
    "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz",
)
#: Same-size integer types through which numpy and torch exchange dtypes the other lacks.
_CARRIER = {1: (np.uint8, "uint8"), 2: (np.int16, "int16")}


class StateDict(NamedTuple):
    """A loaded file: ``tensors`` by key (file order), ``skipped`` ``[(key, why)]`` values
    that are not readable tensors, ``layout`` ``"zip"`` or ``"legacy"``."""

    tensors: dict
    skipped: list
    layout: str


def import_torch(path: str, writing: bool = False):
    """The ``torch`` module, or the package's error naming the extra to install."""
    try:
        import torch
    except ImportError:
        if writing:
            raise WriteError(f"Nothing was written to {path!r}: writing a PyTorch file needs torch, which is not "
                             f"installed: {EXTRA}") from None
        raise CheckpointError(f"Reading the PyTorch file {path!r} needs torch, which is not installed: {EXTRA}") from None
    return torch


def signature(path: str) -> str | None:
    """What the first bytes of ``path`` say: ``"zip"`` (an archive holding ``<name>/data.pkl``),
    ``"torchscript"`` (one that also holds ``constants.pkl``: ``torch.jit.save``'s),
    ``"damaged zip"`` (an archive that cannot be listed), ``"other zip"``, ``"legacy"`` (a
    pickle starting with torch's magic number) or None (none of them, or unreadable)."""
    try:
        with open(path, "rb") as f:
            head = f.read(32)
            if head.startswith(b"PK\x03\x04"):
                try:
                    names = zipfile.ZipFile(f).namelist()
                except (zipfile.BadZipFile, ValueError, EOFError):
                    return "damaged zip"
                top = {n.rsplit("/", 1)[1] for n in names if n.count("/") == 1}
                if "data.pkl" not in top:
                    return "other zip"
                return "torchscript" if "constants.pkl" in top else "zip"
    except OSError:
        return None
    return "legacy" if head[:1] == b"\x80" and LEGACY_MAGIC in head else None


def _damaged(path: str, why: str) -> CorruptCheckpointError:
    return CorruptCheckpointError(f"The PyTorch file {path!r} is damaged or not a state dict: {why}. {WHAT_WE_READ}.")


def _load_error(path: str, error: Exception) -> CorruptCheckpointError:
    text = str(error)
    if "TorchScript" in text:  # (weights_only refuses these; signature() finds them first)
        return _damaged(path, "it is a TorchScript archive (torch.jit.save), not a state dict; save "
                              "torch.jit.load(path).state_dict() with torch.save")
    if "WeightsUnpickler error:" in text:  # weights_only's allowlist refused a global
        refused = text.split("WeightsUnpickler error:", 1)[1].strip().splitlines()[0]
        refused = refused.split(" was not an allowed global")[0]
        return _damaged(path, f"it holds Python objects that torch.load(weights_only=True) refuses to run ({refused}); "
                              "a pickled module or optimizer is code, which ckptwidgets never runs")
    said = first_line(error).split(". ")[0][:300]  # torch's messages go on with advice for its own API
    return _damaged(path, f"torch cannot load it ({type(error).__name__}: {said})")


def _describe(value) -> str:
    """A value that is not a tensor, in a few words: ``int 3``, ``dict of 7 tensors``."""
    if isinstance(value, dict):
        tensors = sum(1 for v in value.values() if _is_tensor(v))
        return f"dict of {tensors} tensors" if tensors else f"dict of {len(value)}"
    if isinstance(value, (list, tuple)):
        return f"{type(value).__name__} of {len(value)}"
    if isinstance(value, (int, float, bool, type(None))):
        return f"{type(value).__name__} {value!r}"
    return type(value).__name__


def _is_tensor(value) -> bool:
    torch = sys.modules.get("torch")  # a torch object exists only once torch is imported
    return torch is not None and isinstance(value, torch.Tensor)


def _unreadable(tensor) -> str | None:
    """Why a tensor cannot be a record, or None."""
    torch = import_torch("")
    name = str(tensor.dtype).removeprefix("torch.")
    if tensor.layout != torch.strided:
        return f"a {str(tensor.layout).removeprefix('torch.')} tensor (only dense tensors are read)"
    if tensor.is_quantized:
        return f"a quantized tensor ({name}), which has no TensorFlow dtype"
    if name not in _SHARED_DTYPES:
        return f"dtype {name}, which has no TensorFlow dtype"
    if tensor.device.type != "cpu":
        return f"a tensor on device {tensor.device}"
    return None


def load_state_dict(path: str, kind: str) -> StateDict:
    """The state dict of the torch file ``path`` (its :func:`signature` ``kind``), checked.

    Raises
    ------
    CorruptCheckpointError
        Not a PyTorch file, damaged, or not a state dict (a training checkpoint holding
        one, a TorchScript archive, a pickled module): the message names the file and says
        what is there.
    """
    if kind == "torchscript":
        raise _load_error(path, RuntimeError("TorchScript"))
    if kind == "other zip":
        raise _damaged(path, "it is a zip archive without <name>/data.pkl, not what torch.save writes")
    if kind not in ("zip", "damaged zip", "legacy"):
        raise _damaged(path, "it is neither a zip archive holding data.pkl (torch.save) nor a legacy torch pickle")
    torch = import_torch(path)
    try:
        loaded = torch.load(path, weights_only=True, mmap=kind != "legacy", map_location="cpu")
    except MemoryError:
        raise
    except Exception as error:  # torch says RuntimeError, UnpicklingError, EOFError, ValueError... for damage
        raise _load_error(path, error) from None
    if _is_tensor(loaded) or not isinstance(loaded, dict):
        raise _damaged(path, f"it holds a {_describe(loaded) if not _is_tensor(loaded) else 'single tensor'}, "
                             "not a dict of tensors")
    tensors, skipped, nested = {}, [], []
    for key, value in loaded.items():
        if not isinstance(key, str):
            skipped.append((repr(key), f"a key that is not a string ({_describe(value)})"))
        elif not _is_tensor(value):
            skipped.append((key, f"not a tensor: {_describe(value)}"))
            if isinstance(value, dict) and any(_is_tensor(v) for v in value.values()):
                nested.append(key)
        elif (why := _unreadable(value)) is not None:
            skipped.append((key, why))
        else:
            tensors[key] = value.detach()
    if not tensors and skipped:
        inside = f"; {', '.join(repr(k) for k in nested)} {'holds' if len(nested) == 1 else 'hold'} tensors" if nested else ""
        hint = (f": save that part on its own, torch.save(torch.load(path, weights_only=True)[{nested[0]!r}], "
                "'model.pt')" if nested else "")
        listed = ", ".join(f"{k!r} ({why})" for k, why in skipped[:8])
        raise _damaged(path, f"it holds no tensor at its top level, only {listed}{inside}{hint}")
    order = sorted(tensors, key=lambda k: (tensors[k].untyped_storage().data_ptr(), tensors[k].storage_offset()))
    return StateDict({k: tensors[k] for k in order}, skipped, "legacy" if kind == "legacy" else "zip")


def tf_dtype(tensor) -> str:
    """TensorFlow's name for a readable tensor's dtype (torch's name for it)."""
    return str(tensor.dtype).removeprefix("torch.")


def torch_dtype(name: str):
    """The torch dtype of TensorFlow's dtype ``name``, or None when torch has none."""
    torch = import_torch("")
    return getattr(torch, name, None) if name in _SHARED_DTYPES else None


def to_numpy(tensor) -> np.ndarray:
    """The tensor's values as numpy, sharing its memory: ``tensor.numpy()``, and for dtypes
    numpy lacks (bfloat16, float8) the same bits viewed as ml_dtypes' type."""
    wanted = numpy_type(tf_dtype(tensor))
    if np.dtype(wanted).kind != "V":  # numpy's own type: torch hands it over itself
        return tensor.numpy()
    torch = import_torch("")
    _carrier, torch_name = _CARRIER[tensor.element_size()]
    return tensor.view(getattr(torch, torch_name)).numpy().view(wanted)


def to_tensor(value: np.ndarray, name: str):
    """A CPU tensor of TensorFlow's dtype ``name`` sharing the C-contiguous, native-order ``value``'s memory."""
    torch = import_torch("")
    dtype = torch_dtype(name)
    with warnings.catch_warnings():  # a read-only mapped input: torch.save only reads it
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        if np.dtype(numpy_type(name)).kind == "V":  # an ml_dtypes type, which torch.from_numpy refuses
            carrier, _torch_name = _CARRIER[value.dtype.itemsize]
            return torch.from_numpy(value.view(carrier)).view(dtype)
        return torch.from_numpy(value)
