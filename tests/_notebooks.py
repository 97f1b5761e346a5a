"""Execute notebooks in a real kernel and look at what they show.

Shared by the notebook tests (and meant for later browser tests too):

- ``run_notebook(path)`` executes every cell with nbclient in a fresh ``python3``
  kernel and returns the executed notebook. A failing cell becomes an
  ``AssertionError`` whose message holds that cell's source and traceback, so
  pytest shows them. ``path`` may also be a notebook node (e.g. one with edited
  cells), which is executed as it is, a copy.
- ``executed(path)`` is ``run_notebook(path)`` once per test session: the notebook
  tests and the exercise tests look at the same run of a committed notebook.
- ``outputs_text(nb)``, ``stream_text(nb, name)``, ``cell_text(nb, cell_id)`` and
  ``has_png(nb)`` read the outputs;
- ``files_of_run(nb)`` says which files the run left in the notebook's folder, in the
  kernel's temporary folder and under the shared ``/tmp/ckptwidgets-notebooks``.
"""
from __future__ import annotations

import copy
import os
import re
import tempfile
from pathlib import Path
from typing import NamedTuple

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

__all__ = [
    "run_notebook", "executed", "outputs_text", "stream_text", "cell_text", "has_png", "iter_outputs",
    "files_of_run", "SHARED_TMP",
]

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


#: Where the notebooks wrote before issue #23 (shared by every user of a JupyterHub).
SHARED_TMP = Path("/tmp/ckptwidgets-notebooks")


class RunFiles(NamedTuple):
    """The files (relative paths, sorted) one run left: beside the notebook (its ``cwd``), in the
    kernel's ``TMPDIR``, and ``(path, size, mtime_ns)`` under :data:`SHARED_TMP` before and after."""

    beside: list
    kernel_tmp: list
    shared_before: list
    shared_after: list


_FILES_OF_RUN: dict = {}  # id(executed notebook) -> RunFiles


def _listing(folder: Path) -> list:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.is_dir() else []


def _stamps(folder: Path) -> list:
    if not folder.exists():
        return []
    return sorted((str(p), p.lstat().st_size, p.lstat().st_mtime_ns) for p in [folder, *folder.rglob("*")])


def files_of_run(nb) -> RunFiles:
    """What the run that returned ``nb`` left behind (see :class:`RunFiles`)."""
    return _FILES_OF_RUN[id(nb)]


#: Seconds to wait for a cell's outputs after its reply (nbclient's default: 4).
IOPUB_TIMEOUT = 60


def run_notebook(path, timeout=120, kernel_name="python3", cwd=None, env=None, name=None):
    """Execute the notebook at ``path`` top to bottom and return the executed node.

    The kernel runs in a fresh temporary directory (or ``cwd``), the notebook's folder as
    JupyterLab would start it there, and its ``TMPDIR`` is another fresh one, so notebooks
    neither collide with parallel runs nor leave files behind; :func:`files_of_run` lists
    what each held at the end. ``env`` adds or overrides kernel environment variables.
    ``timeout`` is per cell, in seconds. The notebook file is not modified.
    ``path`` may be a notebook node instead, run as a copy; ``name`` names it in messages.
    """
    if isinstance(path, nbformat.NotebookNode):
        nb, path = copy.deepcopy(path), Path(name or "edited notebook")
    else:
        path = Path(path)
        nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="nbrun-") as tmp:
        workdir = Path(cwd) if cwd is not None else Path(tmp) / "notebooks"
        kernel_tmp = Path(tmp) / "tmp"
        workdir.mkdir(exist_ok=True)
        kernel_tmp.mkdir()
        kernel_env = dict(os.environ)
        kernel_env.update(TMPDIR=str(kernel_tmp), TEMP=str(kernel_tmp), TMP=str(kernel_tmp))
        # ipykernel's debugger otherwise prints a "frozen modules" notice at start-up.
        kernel_env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
        kernel_env.update(env or {})
        client = NotebookClient(
            nb,
            timeout=timeout,
            kernel_name=kernel_name,
            resources={"metadata": {"path": str(workdir)}},
            # nbclient waits 4 s after a cell's reply for its outputs, then drops them silently: on a
            # loaded CI machine a widget's output came later. Wait longer, and fail rather than drop.
            iopub_timeout=IOPUB_TIMEOUT,
            raise_on_iopub_timeout=True,
        )
        shared_before = _stamps(SHARED_TMP)
        try:
            client.execute(cwd=str(workdir), env=kernel_env)
        except CellExecutionError as exc:
            # str(exc) holds the failing cell's source and the kernel's traceback.
            raise AssertionError(
                f"{path.name}: a cell failed\n{_strip_ansi(str(exc))}"
            ) from None
        except CellTimeoutError as exc:
            raise AssertionError(
                f"{path.name}: a cell ran longer than {timeout} s\n{_strip_ansi(str(exc))}"
            ) from None
        except DeadKernelError as exc:
            raise AssertionError(f"{path.name}: the kernel died\n{exc}") from None
        _FILES_OF_RUN[id(nb)] = RunFiles(_listing(workdir), _listing(kernel_tmp), shared_before, _stamps(SHARED_TMP))
    return nb


# (resolved path, mtime_ns, size) -> the executed notebook, or the AssertionError its run raised
_EXECUTED: dict = {}


def executed(path):
    """``run_notebook(path)`` with the defaults, run once per process and then shared.

    The same node is returned to every caller: read it, do not edit it. A failed run is
    remembered too, and raised again (as a new ``AssertionError`` with the same message).
    """
    path = Path(path).resolve()
    stat = path.stat()
    key = (path, stat.st_mtime_ns, stat.st_size)
    if key not in _EXECUTED:
        try:
            _EXECUTED[key] = run_notebook(path)
        except AssertionError as error:
            _EXECUTED[key] = error
    result = _EXECUTED[key]
    if isinstance(result, AssertionError):
        raise AssertionError(str(result)) from None
    return result


def iter_outputs(nb, cell_type="code"):
    """Yield ``(cell, output)`` for every output of every code cell."""
    for cell in nb.cells:
        if cell.cell_type != cell_type:
            continue
        for output in cell.get("outputs", []):
            yield cell, output


def stream_text(nb, name="stdout"):
    """All text a notebook wrote to one stream (``"stdout"`` or ``"stderr"``)."""
    return "".join(
        output.get("text", "")
        for _, output in iter_outputs(nb)
        if output.output_type == "stream" and output.get("name") == name
    )


def _output_text(output):
    if output.output_type == "stream":
        return output.get("text", "")
    if output.output_type in ("execute_result", "display_data"):
        return output.get("data", {}).get("text/plain", "")
    if output.output_type == "error":
        return _strip_ansi("\n".join(output.get("traceback", [])))
    return ""


def outputs_text(nb):
    """Every stream text and ``text/plain`` result of the notebook, joined by newlines."""
    return "\n".join(_output_text(output) for _, output in iter_outputs(nb))


def cell_text(nb, cell_id):
    """The text one cell shows (streams and ``text/plain`` results, in order).

    Raises ``KeyError`` naming the known ids when no cell has ``cell_id``.
    """
    for cell in nb.cells:
        if cell.get("id") == cell_id:
            return "".join(_output_text(output) for output in cell.get("outputs", []))
    raise KeyError(f"no cell with id {cell_id!r}; ids: {[c.get('id') for c in nb.cells]}")


def has_png(nb):
    """True when some output displays a PNG image (e.g. a matplotlib figure)."""
    return any(
        "image/png" in output.get("data", {})
        for _, output in iter_outputs(nb)
        if output.output_type in ("execute_result", "display_data")
    )
