# Two entry points, each doing all of its own set-up on a fresh machine:
#   make lab    opens the notebooks in JupyterLab (installs what the notebooks need: .[tf,lab])
#   make test   runs every test (notebooks, library, widgets, browser; installs .[tf,lab,test])
# Each has its own stamp, so a .venv made by `make lab` gets the test tools from `make test`,
# and a learner's .venv never holds them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# pytest-xdist workers: one per core (`-n auto`), at most PYTEST_MAX_WORKERS, since each worker
# imports TensorFlow and some start kernels and a browser. PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= auto
PYTEST_MAX_WORKERS ?= 4
# torch for notebook 09 and the torch tests, pinned: an exact pin takes the CPU build that the
# build machines' package index holds, where an open range takes PyPI's newest, a CUDA build of
# several GB. Elsewhere install torch's CPU build first (pip install torch --index-url
# https://download.pytorch.org/whl/cpu) and run make with TORCH=torch.
TORCH ?= torch==2.13.0

.PHONY: lab test browser-deps screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Order-only on the interpreter: its timestamp (a symlink to the system Python) says nothing.
$(VENV)/.installed-lab: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[tf,lab]" "$(TORCH)"
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[tf,lab,test]" "$(TORCH)"
	touch $@

# As root (a container, CI) Jupyter refuses to start without --allow-root.
lab: $(VENV)/.installed-lab
	$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/

# Headless Chromium for the browser tests, from Debian (Playwright's own browser
# download cannot work offline). Without root the browser tests are skipped locally.
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: chromium not found and not root: browser tests will be skipped"; fi; }

# --dist loadgroup: each test file is one unit of work, files sharing a server, a browser or a
# notebook run are one unit together, and the longest units start first (tests/conftest.py).
PYTEST_PARALLEL := -n $(PYTEST_WORKERS) --maxprocesses=$(PYTEST_MAX_WORKERS) --dist loadgroup

test: $(VENV)/.installed-test browser-deps
	$(BIN)/python -m pytest $(PYTEST_PARALLEL) $(PYTEST_ARGS)

# Regenerate the docs/*.png screenshots: mapper, browser, EMA explorer, diff, and the 900 px ones (the browser
# tests take them; CKPTWIDGETS_SCREENSHOTS=1 writes them into docs/).
screenshots: $(VENV)/.installed-test browser-deps
	CKPTWIDGETS_SCREENSHOTS=1 $(BIN)/python -m pytest tests/browser -k "not notebook_runs_in_lab" $(PYTEST_ARGS)
