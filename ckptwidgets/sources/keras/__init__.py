"""Keras weight files: Keras 3 ``.weights.h5``, ``.keras`` archives, legacy Keras 2 ``.h5``.

Read with h5py, zipfile and numpy: neither Keras nor TensorFlow is imported (``import
keras`` imports TensorFlow). Keys are the HDF5 dataset paths (``layers/dense_1/vars/0``);
names follow the layer names stored beside them (``hidden/vars/0``, ``adam/iteration``,
legacy ``hidden/kernel``) and optimizer state is ``slot`` / ``meta`` as the layout says:
:mod:`ckptwidgets.sources.keras._h5` describes both layouts.

A Keras 3 optimizer with ``use_ema=True`` keeps one average per trainable variable right
after its ``iteration`` and ``learning_rate``: a ``.keras`` archive's ``config.json`` says
so, and those become ``ema`` entries whose ``base`` is the variable's key, when the layout
decides which is whose (:mod:`ckptwidgets.sources.keras._ema`); a bare ``.weights.h5`` does not say
it: ``KerasSource(path, use_ema=True)`` does (``open_checkpoint`` takes the source).

A ``.keras`` archive's ``model.weights.h5`` is read in place when it is stored
uncompressed, as Keras writes it: h5py reads through a window onto that byte range of the
archive, so memory stays bounded by the tensor read. Its CRC-32 is checked once, on the
first value read (not when listing): one pass over the member, about a second per GB. A
compressed member (an archive re-zipped by hand) is extracted once to a temporary file,
streamed, zipfile checking its CRC-32, and removed with the source. HDF5 itself keeps no
checksums of Keras' datasets: a flipped bit in a plain ``.h5`` is not detected.

Each operation opens the file and closes it again, h5py reading through a Python file
object: HDF5 takes no file lock, so a notebook that saves the same file again while a
browser shows it is not blocked, file systems without locks (some network ones) work, and
a file the caller also holds open in h5py opens all the same. There is no ``RestoreV2``
path: restoring reads every value through :meth:`KerasSource.read_many`.

Example
-------
>>> import os, tempfile, h5py, numpy as np
>>> import ckptwidgets
>>> path = os.path.join(tempfile.mkdtemp(), "m.weights.h5")
>>> with h5py.File(path, "w") as f:  # what Keras 3 writes for a Dense(2, name="out") and Adam
...     f.create_group("vars").attrs["name"] = "model"
...     dense = f.create_group("layers/dense/vars")
...     dense.attrs["name"] = "out"
...     dense["0"], dense["1"] = np.ones((3, 2), np.float32), np.zeros(2, np.float32)
...     adam = f.create_group("optimizer/vars")
...     adam.attrs["name"] = "adam"
...     adam["0"], adam["1"], adam["2"] = np.int64(1), np.float32(0.001), np.zeros((3, 2), np.float32)
>>> ckpt = ckptwidgets.open_checkpoint(path)
>>> for e in ckpt:
...     print(e.key, e.name, e.kind)
layers/dense/vars/0 out/vars/0 variable
layers/dense/vars/1 out/vars/1 variable
optimizer/vars/0 adam/iteration meta
optimizer/vars/1 adam/learning_rate meta
optimizer/vars/2 adam/vars/2 slot
>>> ckpt.read("out/vars/1"), ckpt.source.format, ckpt.files == [path]
(array([0., 0.], dtype=float32), 'keras-weights', True)
"""
from __future__ import annotations

import io
import json
import os
import shutil
import stat
import struct
import tempfile
import weakref
import zipfile
import zlib
from contextlib import contextmanager
from typing import NamedTuple

from ._ema import from_object_graph, suggests_optimizer
from .._validate import check_special, first_line, is_remote, suggest
from ...errors import CheckpointNotFoundError, CorruptCheckpointError

__all__ = ["KerasSource", "detect", "writes", "write", "SUFFIXES", "MEMBER", "WEIGHTS_SUFFIX",
           "from_object_graph", "suggests_optimizer", "list_attribute"]

#: Suffixes that are Keras files whatever their bytes (anything else is recognised by them).
SUFFIXES = (".keras", ".h5", ".hdf5")
#: The weights inside a ``.keras`` archive.
MEMBER = "model.weights.h5"
#: What ``model.load_weights`` needs a weights file's name to end with (what :func:`write` writes).
WEIGHTS_SUFFIX = ".weights.h5"
_HDF5 = b"\x89HDF\r\n\x1a\n"  # an HDF5 file's first bytes (without a user block, as Keras writes it)
_ZIP = (b"PK\x03\x04", b"PK\x05\x06")
_CHUNK = 1 << 20
# Keras' own guard against zip bombs when it extracts a member.
_EXTRACT_FLOOR, _EXTRACT_EXPANSION = 1 << 28, 100
# What h5py, HDF5 and zipfile raise for damaged files.
_DAMAGE = (OSError, RuntimeError, ValueError, KeyError, TypeError, EOFError, struct.error, zipfile.BadZipFile)


def detect(path: str) -> KerasSource | None:
    """The Keras file at ``path``, or None when it is none (left to the next format).

    A path with a Keras suffix (:data:`SUFFIXES`) is one: missing, it is a
    :class:`CheckpointNotFoundError` (unless a TF checkpoint has that prefix), damaged a
    :class:`CorruptCheckpointError`. Other files are recognised by their first bytes: HDF5,
    or a zip archive holding ``model.weights.h5``.
    """
    if is_remote(path):  # gs://, s3://: TensorFlow's file systems, the bundle's
        return None
    ours = path.lower().endswith(SUFFIXES)
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        if ours and not os.path.exists(path + ".index"):
            raise CheckpointNotFoundError(f"No Keras weights file at {path!r}.{_close_names(path)}") from None
        return None
    if stat.S_ISDIR(mode):
        return None
    if not stat.S_ISREG(mode):
        if ours:
            check_special(path, "Keras weights file")
        return None  # a FIFO or device: the bundle's checks explain it without reading it
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as error:
        if ours:
            raise CorruptCheckpointError(f"Cannot read Keras weights file {path!r}: {first_line(error)}") from None
        return None
    if head.startswith(_ZIP):
        return KerasSource(path, archive=True) if ours or _holds_weights(path) else None
    if head == _HDF5 or (ours and not path.lower().endswith(".keras")):
        return KerasSource(path)  # an .h5 with other bytes: h5py says what is wrong with it
    if ours:
        raise CorruptCheckpointError(
            f"{path!r} is not a Keras archive: a .keras file is a zip archive, and this one starts with {head!r}."
        )
    return None


def writes(out, model=None) -> bool:
    """True when ``plan.write(out, model=model)`` writes a Keras weights file: given a model,
    or an output ending in ``.weights.h5`` (then :func:`write` asks for the model)."""
    return model is not None or str(out).endswith(WEIGHTS_SUFFIX)


def write(plan, out, **options):
    """Write ``plan`` as a Keras 3 model's ``.weights.h5`` (``model=``, ``keep_unmapped=``,
    ``overwrite=``, ``progress=``): :mod:`ckptwidgets.sources.keras._writer`."""
    from ._writer import write as write_weights_file  # Keras' layout: only when writing one

    return write_weights_file(plan, out, **options)


def list_attribute(group, name: str) -> list[str]:
    """An h5py group's Keras list attribute (``layer_names``, ``weight_names``) as str, joined
    from ``name0``, ``name1``... when Keras split it: :func:`ckptwidgets.sources.keras._h5.list_attribute`."""
    from ._h5 import list_attribute as parse

    return parse(group, name)


class _Member(NamedTuple):
    start: int  # where the member's bytes start in the archive
    size: int
    crc: int
    stored: bool  # uncompressed: read in place


class KerasSource:
    """A Keras weights file (``.weights.h5``, ``.keras``, legacy ``.h5``) as a checkpoint source.

    Parameters
    ----------
    path : str
        The file.
    archive : bool
        ``path`` is a ``.keras`` zip archive (its ``model.weights.h5`` is read).
    use_ema : bool or None
        Whether the optimizer kept ``use_ema=True`` averages. None: what the file says (a
        ``.keras`` archive's ``config.json``; a bare ``.weights.h5`` says nothing, so its
        optimizer state stays ``slot``). True for a ``.weights.h5`` one knows was saved with
        ``use_ema=True``. Either way the averages become ``ema`` entries with their
        variable's key as ``base`` only when the file's structure decides which is whose
        (:mod:`ckptwidgets.sources.keras._ema`: a flat Functional or Sequential model).

    Attributes
    ----------
    format : str
        ``"keras-weights"`` (Keras 3 ``.weights.h5``), ``"keras-archive"`` (``.keras``) or
        ``"keras-legacy-h5"`` (``layer_names`` / ``weight_names``: Keras 2, or ``model.save("m.h5")``).
    layout : str
        ``"keras3"`` or ``"legacy"``: how the HDF5 inside is organised.
    """

    object_based = False
    restore_prefix = None

    def __init__(self, path: str, archive: bool = False, use_ema: bool | None = None):
        from . import _h5 as _keras_h5  # h5py: imported only when a Keras file is opened

        self.location = path
        self._h5 = _keras_h5
        self._member = self._find_member() if archive else None
        self._extracted = None
        self._checked = self._member is None or not self._member.stored
        if self._member is not None and not self._member.stored:
            self._extracted = self._extract()
        counters = None
        if use_ema is None:
            use_ema, counters = self._config_ema() if archive else (False, None)
        try:
            with self._open() as f:
                self.layout, self._records = _keras_h5.records(f, bool(use_ema), counters)
        except CorruptCheckpointError:
            raise
        except (_keras_h5.Unreadable, *_DAMAGE) as error:
            raise CorruptCheckpointError(f"Cannot read {self._what()}: {first_line(error)}") from None
        self._keys = frozenset(r.key for r in self._records)
        legacy = self.layout == _keras_h5.LEGACY
        self.format = "keras-archive" if archive else "keras-legacy-h5" if legacy else "keras-weights"

    def records(self):
        return list(self._records)

    def restore_code(self, plan, style: str) -> list[str]:
        """Code restoring ``plan`` with h5py, which TensorFlow's readers cannot do for HDF5
        (:func:`ckptwidgets.codegen.to_code` asks; :mod:`ckptwidgets.sources.keras._code`)."""
        from ._code import restore_code

        return restore_code(plan, style, archive=self.format == "keras-archive")

    def files(self) -> list[str]:
        return [self.location]

    def read(self, key: str, copy: bool = False):
        reading = self.read_many([key], copy)
        try:
            return next(reading)[1]
        finally:
            reading.close()  # closes the file now, not when the generator is collected

    def read_many(self, keys, copy: bool = False):
        keys = list(keys)
        for key in keys:
            if key not in self._keys:
                raise KeyError(f"Key {key!r} not found in {self._what()}.{suggest(key, self._keys)}")
        if not keys:
            return
        self._check_member(keys[0])
        h5 = self._h5
        try:
            with self._open() as f:
                # Datasets in file order (compressed ones have no offset: first): reads go forward.
                located = sorted(((h5.dataset(f, key), key) for key in keys), key=lambda item: item[0].id.get_offset() or 0)
                for ds, key in located:
                    yield key, self._value(ds, key)  # h5py's arrays are new and writable: copy or not
        except CorruptCheckpointError:
            raise
        except (h5.Unreadable, *_DAMAGE) as error:
            raise CorruptCheckpointError(f"Cannot read from {self._what()}: {first_line(error)}") from None

    def _value(self, ds, key: str):
        try:
            return self._h5.value(ds)
        except (self._h5.Unreadable, *_DAMAGE) as error:
            raise CorruptCheckpointError(f"Cannot read key {key!r} from {self._what()}: {first_line(error)}") from None

    def _config_ema(self) -> tuple[bool, int | None]:
        """``(use_ema, counters)`` from a ``.keras`` archive's ``config.json``: whether the
        compiled optimizer kept averages (a LossScaleOptimizer's inner one) and how many
        counters come first (1 with a learning-rate schedule, else 2). Only a Functional or
        Sequential model counts: a subclassed one trains its layers in another order than
        Keras saves them. A missing or unreadable config says nothing: (False, None)."""
        try:
            with zipfile.ZipFile(self.location) as archive:
                config = json.loads(archive.read("config.json"))
            model = config.get("class_name")
            optimizer = (config.get("compile_config") or {}).get("optimizer") or {}
            settings = optimizer.get("config") or {}
            if optimizer.get("class_name") == "LossScaleOptimizer":
                settings = (settings.get("inner_optimizer") or {}).get("config") or {}
        except (KeyError, ValueError, AttributeError, *_DAMAGE):
            return False, None
        if model not in ("Functional", "Sequential") or settings.get("use_ema") is not True:
            return False, None
        return True, 1 if isinstance(settings.get("learning_rate"), dict) else 2

    def _what(self) -> str:
        if self._member is not None:
            return f"Keras archive {self.location!r} (its {MEMBER})"
        return f"Keras weights file {self.location!r}"

    # --- the bytes: the file, a window onto an archive member, or an extracted copy -------
    @contextmanager
    def _open(self):
        import h5py

        # Through a Python file object, never by name: HDF5 then takes no file lock, and a file
        # the caller also has open in h5py (with other locking flags) opens all the same.
        with open(self._extracted or self.location, "rb") as raw:
            inside = raw if self._member is None or self._extracted else _Window(raw, *self._member[:2])
            with h5py.File(inside, "r") as f:
                yield f

    def _find_member(self) -> _Member:
        try:
            with zipfile.ZipFile(self.location) as archive:
                names = archive.namelist()
                if MEMBER not in names:
                    sharded = " (sharded weights, model.weights.json, are not read yet)" if "model.weights.json" in names else ""
                    raise CorruptCheckpointError(
                        f"Keras archive {self.location!r} holds no {MEMBER}{sharded}; it holds {sorted(names)[:6]}."
                    )
                info = archive.getinfo(MEMBER)
            if info.flag_bits & 0x1:
                raise CorruptCheckpointError(f"Keras archive {self.location!r}: its {MEMBER} is encrypted.")
            stored = info.compress_type == zipfile.ZIP_STORED
            start = self._data_start(info.header_offset) if stored else 0
            return _Member(start, info.file_size, info.CRC, stored)
        except CorruptCheckpointError:
            raise
        except _DAMAGE as error:
            raise CorruptCheckpointError(f"Cannot read Keras archive {self.location!r}: {first_line(error)}") from None

    def _data_start(self, header_offset: int) -> int:
        """Where a stored member's bytes begin: after its local header (its own name and extra field)."""
        with open(self.location, "rb") as f:
            f.seek(header_offset)
            header = f.read(30)
        if len(header) != 30 or header[:4] != b"PK\x03\x04":
            raise zipfile.BadZipFile(f"the local header of {MEMBER} is damaged")
        name_length, extra_length = struct.unpack("<HH", header[26:30])
        return header_offset + 30 + name_length + extra_length

    def _extract(self) -> str:
        """A compressed member streamed to a temporary file (removed with the source); CRC checked by zipfile."""
        try:
            with zipfile.ZipFile(self.location) as archive:
                info = archive.getinfo(MEMBER)
                if info.file_size > _EXTRACT_FLOOR and info.file_size > _EXTRACT_EXPANSION * info.compress_size:
                    raise CorruptCheckpointError(
                        f"Keras archive {self.location!r}: its {MEMBER} declares {info.file_size} bytes from "
                        f"{info.compress_size} compressed; refusing a likely zip bomb (as Keras does)."
                    )
                handle, path = tempfile.mkstemp(suffix=".weights.h5", prefix="ckptwidgets-")
                weakref.finalize(self, _remove, path)
                with os.fdopen(handle, "wb") as out, archive.open(info) as member:
                    shutil.copyfileobj(member, out, _CHUNK)
            return path
        except CorruptCheckpointError:
            raise
        except _DAMAGE as error:
            raise CorruptCheckpointError(f"Cannot read Keras archive {self.location!r}: {first_line(error)}") from None

    def _check_member(self, key: str) -> None:
        """The stored member's CRC-32, once, before the first value is trusted."""
        if self._checked:
            return
        crc, member = 0, self._member
        try:
            with open(self.location, "rb") as f:
                f.seek(member.start)
                left = member.size
                while left:
                    block = f.read(min(_CHUNK, left))
                    if not block:
                        raise EOFError("the archive ends inside it")
                    crc, left = zlib.crc32(block, crc), left - len(block)
        except OSError as error:
            raise CorruptCheckpointError(f"Cannot read key {key!r} from {self._what()}: {first_line(error)}") from None
        except EOFError as error:
            raise CorruptCheckpointError(f"Cannot read key {key!r} from {self._what()}: {error}") from None
        if crc != member.crc:
            raise CorruptCheckpointError(
                f"Cannot read key {key!r} from {self._what()}: the member fails its CRC-32 check "
                f"(stored {member.crc:08x}, computed {crc:08x}); the archive is damaged."
            )
        self._checked = True


class _Window(io.RawIOBase):
    """Bytes ``start .. start + size`` of an open file, as a seekable read-only file for h5py."""

    def __init__(self, raw, start: int, size: int):
        self._raw, self._start, self._size, self._pos = raw, start, size, 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self._pos

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer):
        wanted = min(len(buffer), self._size - self._pos)
        if wanted <= 0:
            return 0
        self._raw.seek(self._start + self._pos)
        got = self._raw.readinto(memoryview(buffer).cast("B")[:wanted])
        self._pos += got
        return got


def _holds_weights(path: str) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return MEMBER in archive.namelist()
    except _DAMAGE:
        return False


def _close_names(path: str) -> str:
    folder = os.path.dirname(path) or "."
    try:
        names = [name for name in os.listdir(folder) if name.lower().endswith(SUFFIXES)]
    except OSError:
        return ""
    return suggest(os.path.basename(path), names)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass
