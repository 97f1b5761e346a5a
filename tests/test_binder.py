"""The ``binder/`` folder works the way mybinder.org uses it.

- ``jupyter-repo2docker --no-build --debug`` reads the folder and prints the Dockerfile
  it would build (no Docker needed): Python from ``runtime.txt``, ``pip install -r
  binder/requirements.txt``, then ``./binder/postBuild``.
- The image, rebuilt as a fresh virtual environment in the same order: the Jupyter
  packages repo2docker puts in every image (their versions from repo2docker's own lock
  file), then ``binder/requirements.txt``, then ``binder/postBuild`` run from a copy of
  the repository. ``pip check`` must pass, and every notebook must execute in a kernel
  of that environment. Each notebook's kernel peak memory (``ru_maxrss``) is measured
  and printed as a table (``pytest -s``); it must stay well under mybinder's 2 GB.

- torch (notebook 09) comes from PyTorch's CPU index: ``requirements.txt`` names the
  index (``--extra-index-url``) and pins ``torch==X+cpu``, the version of the ``test``
  extra. CI reaches PyPI only, so the environment is built from a copy of the file without
  the index line and with the plain pin, which pip resolves to the same ``+cpu`` build
  (a local file here); the committed text is what a separate test checks.

The environment costs a few minutes (TensorFlow's and torch's wheels come from pip's cache
after the first time); it is built once, in one test.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _disk import GB, require_free_disk

pytestmark = pytest.mark.binder

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# mybinder.org gives a session 2 GB in total (server, kernels, the terminal...): one
# notebook's kernel may take at most half of it.
KERNEL_PEAK_LIMIT_MB = 1024
# Notebook 09 holds TensorFlow, torch and transformers in one kernel: their imports alone peak at
# about 920 MB (587 + 220 + 115), its run at about 1030 MB. It gets a quarter more, still leaving
# the server and a terminal room in 2 GB; its last cell says to shut the kernel down after.
KERNEL_PEAK_LIMITS_MB = {"09_take_your_checkpoint_to_pytorch.ipynb": 1280}
NOTEBOOK_TIMEOUT = 600  # seconds per cell
# Where Binder's image gets torch: the CPU build (PyPI's torch brings ~3 GB of CUDA libraries).
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", "build", "dist",
                                     ".pytest_cache", ".ipynb_checkpoints", "out")

# Runs inside the Binder environment: executes one notebook with nbclient in that
# environment's own kernel, then reads the kernel's peak resident memory.
DRIVER = r'''
import json, sys, time
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

path, cwd, out = sys.argv[1:4]
nb = nbformat.read(path, as_version=4)
nb.cells.append(nbformat.v4.new_code_cell(
    "import resource as _r, sys as _s\n"
    "print('PEAK-KB', _r.getrusage(_r.RUSAGE_SELF).ru_maxrss, _s.prefix)"))
start = time.monotonic()
result = {"error": None, "stderr": ""}
try:
    NotebookClient(nb, timeout=int(sys.argv[4]), kernel_name="python3", iopub_timeout=60,
                   raise_on_iopub_timeout=True, resources={"metadata": {"path": cwd}}).execute(cwd=cwd)
except CellExecutionError as error:
    result["error"] = str(error)
result["seconds"] = time.monotonic() - start
for cell in nb.cells:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream" and output.get("name") == "stderr":
            result["stderr"] += output.get("text", "")
last = "".join(o.get("text", "") for o in nb.cells[-1].get("outputs", []) if o.get("output_type") == "stream")
if "PEAK-KB" in last:
    _, kb, prefix = last.split()
    result["peak_mb"] = int(kb) / 1024
    result["kernel_prefix"] = prefix
json.dump(result, open(out, "w"))
'''


def run(command, **kwargs):
    """Run ``command``; on failure raise AssertionError with its output."""
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, command))} exited with {result.returncode}\n"
            f"--- stdout\n{result.stdout[-5000:]}\n--- stderr\n{result.stderr[-5000:]}"
        )
    return result


def repo2docker():
    exe = shutil.which("jupyter-repo2docker", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if exe is None:
        pytest.fail("jupyter-repo2docker is not installed: pip install -e '.[test]'", pytrace=False)
    return exe


def runtime_python():
    text = (BINDER / "runtime.txt").read_text().strip()
    match = re.fullmatch(r"python-(\d+\.\d+)", text)
    assert match, f"binder/runtime.txt should read like 'python-3.11', reads {text!r}"
    return match.group(1)


def binder_python(version):
    """An interpreter of the Python version Binder uses: this one, or ``pythonX.Y`` on PATH.

    Without one the test is skipped, except in CI (``CI`` set), where it fails.
    """
    if sys.version.startswith(version + "."):
        return sys.executable
    found = shutil.which(f"python{version}")
    if found:
        return found
    reason = (f"binder/runtime.txt asks for Python {version}: neither this Python "
              f"({sys.version.split()[0]}) nor python{version} on PATH is it")
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def base_image_packages(python_version):
    """``name==version`` of the Jupyter packages repo2docker installs before ours.

    Read from repo2docker's environment.yml (which packages) and its conda lock file
    for ``python_version`` (which versions); conda's ``jupyterhub-singleuser`` is pip's
    ``jupyterhub``.
    """
    spec = importlib.util.find_spec("repo2docker")  # found, not imported (its logging warns)
    if spec is None:
        pytest.fail("jupyter-repo2docker is not installed: pip install -e '.[test]'", pytrace=False)
    folder = Path(spec.origin).parent / "buildpacks" / "conda"
    lock = folder / f"environment.py-{python_version}-linux-64.lock"
    assert lock.exists(), f"repo2docker has no lock file for Python {python_version}: {lock}"
    wanted = []
    for line in (folder / "environment.yml").read_text().splitlines():
        match = re.match(r"\s*-\s*([A-Za-z0-9_.-]+)\s*[=<>]", line)
        if match and match.group(1) not in ("python", "nodejs", "pip"):
            wanted.append(match.group(1))
    locked = dict(re.findall(r"/([A-Za-z0-9_.-]+?)-(\d[^-/]*)-[^-/]+\.conda", lock.read_text()))
    pins = []
    for name in wanted:
        assert name in locked, f"{name} not in {lock.name}"
        pins.append(f"{'jupyterhub' if name == 'jupyterhub-singleuser' else name}=={locked[name]}")
    return pins


def requirement_lines(path=BINDER / "requirements.txt") -> list[str]:
    """The file's lines without comments and blank lines."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def pinned_by_test_extra(name):
    """The version pyproject.toml's ``test`` extra pins ``name`` to (the version the suite tests)."""
    text = (ROOT / "pyproject.toml").read_text()
    extra = re.search(r"^test\s*=\s*\[(.*?)^\]", text, re.S | re.M)
    assert extra, "pyproject.toml has no test extra"
    pins = re.findall(rf'"{re.escape(name)}==([^"]+)"', extra.group(1))
    assert len(pins) == 1, f"pyproject.toml's test extra should pin {name} once: {pins}"
    return pins[0]


def test_binder_takes_torch_from_the_cpu_index():
    # What mybinder.org installs, as text: CI cannot reach PyTorch's index to try it.
    lines = requirement_lines()
    assert f"--extra-index-url {TORCH_CPU_INDEX}" in lines, lines
    torch = [line for line in lines if re.match(r"torch\b", line)]
    assert torch == [f"torch=={pinned_by_test_extra('torch')}+cpu"], torch
    assert f"transformers=={pinned_by_test_extra('transformers')}" in lines, lines
    # No other index: every other pin still comes from PyPI (the CPU index only adds torch's builds).
    assert [line for line in lines if line.startswith("-")] == [f"--extra-index-url {TORCH_CPU_INDEX}"], lines


def requirements_ci_can_reach(folder: Path) -> Path:
    """``binder/requirements.txt`` without PyTorch's index and with torch's plain pin.

    CI reaches PyPI only: pip would retry the unreachable index for every package. The
    plain pin ``torch==X`` matches the local ``X+cpu`` build (the higher version, so pip's
    choice); the environment test checks that the ``+cpu`` build is what it got.
    """
    text = (BINDER / "requirements.txt").read_text()
    index_line = f"--extra-index-url {TORCH_CPU_INDEX}\n"
    assert index_line in text and "+cpu\n" in text, "test_binder_takes_torch_from_the_cpu_index says what is wrong"
    path = folder / "requirements-ci.txt"
    path.write_text(re.sub(r"^(torch==[^+\s]+)\+cpu$", r"\1", text.replace(index_line, ""), flags=re.M))
    return path


def test_repo2docker_accepts_the_binder_folder(tmp_path):
    # cwd: repo2docker looks for a repo2docker_config file in the current folder.
    result = run([repo2docker(), "--no-build", "--debug", str(ROOT)], cwd=tmp_path)
    out = result.stdout + result.stderr
    assert f"Building conda environment for python={runtime_python()}" in out, out[-3000:]
    assert 'pip install --no-cache-dir -r "binder/requirements.txt"' in out, out[-3000:]
    assert "RUN ./binder/postBuild" in out, out[-3000:]
    assert out.index("binder/requirements.txt") < out.index("RUN ./binder/postBuild")


def test_binder_environment_runs_every_notebook(tmp_path):
    require_free_disk(tmp_path, 4 * GB)  # the environment takes 3.1 GB
    python = runtime_python()
    venv = tmp_path / "binder-env"
    run([binder_python(python), "-m", "venv", str(venv)])
    bin_dir = venv / "bin"
    pip = [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    timings = {}

    start = time.monotonic()
    run(pip + base_image_packages(python))
    run(pip + ["-r", str(requirements_ci_can_reach(tmp_path))])
    # postBuild runs from the repository's folder, with the environment's pip on PATH.
    repo = tmp_path / "repo"
    shutil.copytree(ROOT, repo, ignore=COPY_IGNORE)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", VIRTUAL_ENV=str(venv))
    env.pop("PYTHONPATH", None)
    post_build = repo / "binder" / "postBuild"
    post_build.chmod(0o755)
    run([str(post_build)], cwd=repo, env=env)
    timings["environment"] = time.monotonic() - start
    run([str(bin_dir / "python"), "-m", "pip", "check"], env=env)
    shown = run([str(bin_dir / "python"), "-m", "pip", "show", "ckptwidgets"], env=env).stdout
    assert "Location: " + str(venv) in shown, shown  # installed into the environment, not editable
    torch_version = run([str(bin_dir / "python"), "-c", "import torch; print(torch.__version__, torch.version.cuda)"],
                        env=env).stdout.split()
    # The notebooks' memory below is the CPU build's, the one Binder installs.
    assert torch_version == [f"{pinned_by_test_extra('torch')}+cpu", "None"], torch_version

    # Every notebook, in this environment's kernel and nothing else's.
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    jupyter = tmp_path / "jupyter"
    env.update(JUPYTER_PATH="", JUPYTER_DATA_DIR=str(jupyter / "data"), JUPYTER_CONFIG_DIR=str(jupyter / "config"),
               JUPYTER_RUNTIME_DIR=str(jupyter / "runtime"), PYDEVD_DISABLE_FILE_VALIDATION="1")
    results = {}
    for path in NOTEBOOKS:
        work = tmp_path / "run" / path.stem
        work.mkdir(parents=True)
        out = tmp_path / f"{path.stem}.json"
        run([str(bin_dir / "python"), str(driver), str(path), str(work), str(out), str(NOTEBOOK_TIMEOUT)],
            cwd=work, env=dict(env, TMPDIR=str(work), TEMP=str(work), TMP=str(work)))
        results[path.name] = json.loads(out.read_text())

    print(f"\nBinder environment built in {timings['environment']:.0f} s (Python {python}, torch {torch_version[0]}, "
          f"{', '.join(base_image_packages(python))})")
    print("| notebook | kernel peak memory | run time |\n|---|---:|---:|")
    for name, result in results.items():
        print(f"| `{name[:-6]}` | {result.get('peak_mb', float('nan')):.0f} MB | {result['seconds']:.0f} s |")
    assert set(KERNEL_PEAK_LIMITS_MB) <= set(results), "a notebook with its own memory limit is gone"
    for name, result in results.items():
        assert result["error"] is None, f"{name} failed in the Binder environment:\n{result['error']}"
        assert result["stderr"] == "", f"{name} wrote to stderr in the Binder environment:\n{result['stderr']}"
        assert result.get("kernel_prefix") == str(venv), f"{name} ran in {result.get('kernel_prefix')}, not {venv}"
        limit = KERNEL_PEAK_LIMITS_MB.get(name, KERNEL_PEAK_LIMIT_MB)
        assert result["peak_mb"] < limit, f"{name}: the kernel peaked at {result['peak_mb']:.0f} MB (limit {limit} MB)"
