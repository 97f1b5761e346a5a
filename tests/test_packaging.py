"""The Binder environment and ``make lab`` can run everything the package and the notebooks import.

``binder/requirements.txt`` must pin (``==``) the distribution behind every
third-party top-level import in ``ckptwidgets/**/*.py``, ``notebooks/*.ipynb`` and
``notebooks/solutions/*.py`` (loaded into the learner's kernel);
``binder/postBuild`` must stop on the first error and install the package
itself without dependencies (so the pins stay the pins); ``binder/runtime.txt``
must name a Python 3 version.

``make lab`` installs what the notebooks need and no test tool; ``make test`` installs
the rest on top (its own stamp file, so a ``.venv`` made by ``make lab`` is upgraded).
"""
from __future__ import annotations

import ast
import functools
import importlib.metadata
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"

# Import name -> distribution to pin, where they differ or Binder needs another one.
DISTRIBUTIONS = {
    "tensorflow": "tensorflow-cpu",  # no CUDA libraries on mybinder.org
    "absl": "absl-py",
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "PIL": "pillow",
    "yaml": "PyYAML",
    "IPython": "ipython",
    "google": "protobuf",
}
FIRST_PARTY = {"ckptwidgets"}


def normalize(name):
    """PEP 503 form of a distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


@functools.lru_cache(maxsize=None)
def installed_distributions():
    return importlib.metadata.packages_distributions()


def distribution_for(module):
    if module in DISTRIBUTIONS:
        return normalize(DISTRIBUTIONS[module])
    installed = installed_distributions().get(module)
    return normalize(installed[0] if installed else module)


def top_level_imports(source):
    """Top-level module names of absolute imports anywhere in ``source``."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def notebook_code(path):
    """A notebook's code cells as Python (IPython magics turned into calls)."""
    from IPython.core.inputtransformer2 import TransformerManager

    transformer = TransformerManager()
    nb = nbformat.read(path, as_version=4)
    return [transformer.transform_cell(cell.source) for cell in nb.cells if cell.cell_type == "code"]


@functools.lru_cache(maxsize=None)
def imported_modules():
    """``{top-level module: [files importing it]}`` for third-party imports."""
    sources = [(path, path.read_text(encoding="utf-8")) for path in sorted((ROOT / "ckptwidgets").rglob("*.py"))]
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        sources.extend((path, code) for code in notebook_code(path))
    for path in sorted((ROOT / "notebooks" / "solutions").glob("*.py")):
        sources.append((path, path.read_text(encoding="utf-8")))
    found = {}
    for path, source in sources:
        for module in top_level_imports(source):
            if module in sys.stdlib_module_names or module in FIRST_PARTY:
                continue
            found.setdefault(module, set()).add(str(path.relative_to(ROOT)))
    return {module: sorted(files) for module, files in found.items()}


def imported_distributions():
    """``{distribution to pin on Binder: [files importing it]}`` for third-party imports."""
    found = {}
    for module, files in imported_modules().items():
        found.setdefault(distribution_for(module), set()).update(files)
    return {dist: sorted(files) for dist, files in found.items()}


#: The one pip option binder/requirements.txt may carry: PyTorch's index of CPU builds (notebook
#: 09's torch without the CUDA libraries PyPI's build brings).
INDEX_OPTIONS = {"--extra-index-url https://download.pytorch.org/whl/cpu"}


def requirement_lines():
    """binder/requirements.txt's requirements: comments and the allowed index option left out."""
    lines = BINDER.joinpath("requirements.txt").read_text(encoding="utf-8").splitlines()
    stripped = [line.split("#", 1)[0].strip() for line in lines]
    return [line for line in stripped if line and line not in INDEX_OPTIONS]


def test_the_only_pip_option_is_the_cpu_index_for_torch():
    lines = BINDER.joinpath("requirements.txt").read_text(encoding="utf-8").splitlines()
    options = [line.strip() for line in lines if line.strip().startswith("-")]
    assert options == sorted(INDEX_OPTIONS), options
    assert pins()["torch"].endswith("+cpu"), "Binder's torch must be the CPU build from that index"


PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([A-Za-z0-9.+!*-]+)$")


def pins():
    return {normalize(match.group(1)): match.group(3) for match in map(PIN.match, requirement_lines()) if match}


def test_every_requirement_is_pinned_exactly():
    loose = [line for line in requirement_lines() if not PIN.match(line)]
    assert not loose, f"binder/requirements.txt lines not pinned with ==: {loose}"


def test_imports_are_found():
    """The scan itself works: it sees what the package and notebooks certainly import."""
    found = imported_distributions()
    for dist in ("tensorflow-cpu", "numpy", "matplotlib"):
        assert dist in found, f"import scan missed {dist}: {found}"


def test_every_third_party_import_is_pinned_in_binder_requirements():
    pinned = pins()
    missing = {dist: files for dist, files in imported_distributions().items() if dist not in pinned}
    assert not missing, (
        "binder/requirements.txt has no == pin for these imports (distribution: files): "
        f"{missing}"
    )


def test_distribution_mapping():
    assert distribution_for("tensorflow") == "tensorflow-cpu"
    assert distribution_for("absl") == "absl-py"
    assert distribution_for("sklearn") == "scikit-learn"
    assert distribution_for("ipywidgets") == "ipywidgets"
    assert top_level_imports("import a.b\nfrom c.d import e\nfrom . import f\n") == {"a", "c"}


def test_postbuild_stops_on_errors_and_installs_without_dependencies():
    lines = BINDER.joinpath("postBuild").read_text(encoding="utf-8").splitlines()
    assert lines and lines[0].startswith("#!"), "binder/postBuild must start with a shebang"
    commands = [line.strip() for line in lines[1:] if line.strip() and not line.strip().startswith("#")]
    assert commands and re.match(r"^set\s+-[a-zA-Z]*e", commands[0]), (
        f"the first command of binder/postBuild must be `set -e`, not {commands[:1]}"
    )
    installs = []
    for command in commands:
        words = shlex.split(command, comments=True)
        if "pip" in " ".join(words) and "install" in words and ({".", "./"} & set(words)):
            installs.append(words)
    assert installs, "binder/postBuild does not `pip install .`"
    for words in installs:
        assert "--no-deps" in words, f"`{' '.join(words)}` must use --no-deps (the pins are the pins)"


def test_runtime_names_python_3():
    runtime = BINDER.joinpath("runtime.txt").read_text(encoding="utf-8").strip()
    match = re.fullmatch(r"python-3\.(\d+)(\.\d+)?", runtime)
    assert match, f"binder/runtime.txt should read like python-3.11, reads {runtime!r}"
    assert int(match.group(1)) >= 10, "the package requires Python >= 3.10 (pyproject.toml)"


def test_submodules_are_attributes_after_a_bare_import():
    """A notebook's setup cell does ``import ckptwidgets`` and then calls
    ``ckptwidgets.widgets.reload_hint()``: the submodules load on first use, without TensorFlow."""
    code = (
        "import sys, ckptwidgets\n"
        # Only the widgets' registry (ckptwidgets.widgets.WIDGETS) is read: no widget, no ipywidgets.
        "assert not [m for m in sys.modules if m.startswith(('ckptwidgets.widgets.', 'ipywidgets'))]\n"
        "print(repr(ckptwidgets.widgets.reload_hint())[:12])\n"
        "assert callable(ckptwidgets.plots.mapping_diagram) and ckptwidgets.checks.TODO is not None\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ckptwidgets:\n"


# --- make lab: what a learner's .venv holds ----------------------------------------------

# Distributions only the tests use: none of them may reach a learner's .venv through `make lab`.
TEST_TOOLS = {"pytest", "pytest-xdist", "playwright", "voila", "jupyter-repo2docker", "tf-keras", "notebook"}


def make_recipe(target):
    """The recipe lines of ``target`` in the Makefile (tab-indented lines after ``target:``)."""
    lines = (ROOT / "Makefile").read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if line.split(":", 1)[0].strip() == target and ":" in line:
            recipe = []
            for body in lines[i + 1:]:
                if not body.startswith("\t"):
                    break
                recipe.append(body.strip())
            return line.split(":", 1)[1], recipe
    raise AssertionError(f"the Makefile has no rule for {target}")


def installed_extras(target):
    """The extras that the stamp ``target`` installs with ``pip install -e ".[...]"``."""
    _, recipe = make_recipe(target)
    installs = [re.search(r"pip install .*-e \"?\.\[([^\]]*)\]", line) for line in recipe]
    extras = [set(match.group(1).split(",")) for match in installs if match]
    assert len(extras) == 1, f"{target} should install the package once with extras, runs {recipe}"
    return extras[0]


def project_requirements(extras):
    """The package's own dependencies plus those of ``extras``, from pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    listed = list(project["dependencies"])
    for extra in sorted(extras):
        listed += project["optional-dependencies"][extra]
    return [Requirement(line) for line in listed]


def install_closure(requirements):
    """Every distribution pip installs for ``requirements``, from the installed metadata.

    Dependencies behind an extra count only when that extra is asked for; markers are
    evaluated for this machine. Distributions not installed here end the walk there.
    """
    seen = set()
    todo = [(requirement, frozenset()) for requirement in requirements]
    while todo:
        requirement, _ = todo.pop()
        name = normalize(requirement.name)
        wanted = {""} | set(requirement.extras)
        key = (name, frozenset(wanted))
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for line in requires:
            child = Requirement(line)
            if child.marker is None or any(child.marker.evaluate({"extra": extra}) for extra in wanted):
                todo.append((child, frozenset()))
    return {name for name, _ in seen}


def lab_install():
    return install_closure(project_requirements(installed_extras("$(VENV)/.installed-lab")))


def test_make_lab_and_make_test_have_their_own_stamps():
    """`make lab` installs .[tf,lab]; `make test` installs .[tf,lab,test] on top, under another
    stamp, so a .venv made by `make lab` is upgraded by `make test`."""
    assert installed_extras("$(VENV)/.installed-lab") == {"tf", "lab"}
    assert installed_extras("$(VENV)/.installed-test") == {"tf", "lab", "test"}
    assert make_recipe("lab")[0].split() == ["$(VENV)/.installed-lab"]
    assert "$(VENV)/.installed-test" in make_recipe("test")[0].split()
    assert "$(VENV)/.installed-lab" not in make_recipe("test")[0].split()
    for stamp in ("$(VENV)/.installed-lab", "$(VENV)/.installed-test"):
        prerequisites = make_recipe(stamp)[0]
        assert "pyproject.toml" in prerequisites, f"{stamp} must be redone when pyproject.toml changes"
        assert "$(BIN)/python" in prerequisites, f"{stamp} must create the .venv on a fresh machine"


def test_make_lab_installs_no_test_tool():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    test_extra = {normalize(Requirement(line).name) for line in project["optional-dependencies"]["test"]}
    lab = lab_install()
    # Every test dependency is either a test tool or comes with `make lab` anyway.
    unsorted = test_extra - TEST_TOOLS - lab
    assert not unsorted, f"test extra entries neither in TEST_TOOLS nor installed by `make lab`: {unsorted}"
    assert TEST_TOOLS <= test_extra, f"TEST_TOOLS not in the test extra: {TEST_TOOLS - test_extra}"
    assert not TEST_TOOLS & lab, f"`make lab` installs test tools: {sorted(TEST_TOOLS & lab)}"


def test_make_lab_installs_every_notebook_import():
    """A .venv made by `make lab` imports everything the notebooks, the solutions and the package do."""
    lab = lab_install() | FIRST_PARTY
    for dist in ("tensorflow", "jupyterlab", "ipykernel", "ipython", "keras"):
        assert dist in lab, f"`make lab` would not install {dist}"
    missing = {}
    for module, files in imported_modules().items():
        dist = normalize(installed_distributions().get(module, [module])[0])
        if dist not in lab:
            missing.setdefault(dist, []).extend(files)
    assert not missing, f"imported but not installed by `make lab` (distribution: files): {missing}"
