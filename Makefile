# Two entry points, each doing all of its own set-up on a fresh machine:
#   make lab    opens the notebooks in JupyterLab
#   make test   runs every test (notebooks, library, widgets, browser)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: lab test browser-deps screenshots

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[tf,test,lab]"
	touch $@

# As root (a container, CI) Jupyter refuses to start without --allow-root.
lab: $(VENV)/.installed
	$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/

# Headless Chromium for the browser tests, from Debian (Playwright's own browser
# download cannot work offline). Without root the browser tests are skipped locally.
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: chromium not found and not root: browser tests will be skipped"; fi; }

test: $(VENV)/.installed browser-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Regenerate the docs/*.png screenshots: mapper, browser, EMA explorer, diff, and the 900 px ones (the browser
# tests take them; CKPTWIDGETS_SCREENSHOTS=1 writes them into docs/).
screenshots: $(VENV)/.installed browser-deps
	CKPTWIDGETS_SCREENSHOTS=1 $(BIN)/python -m pytest tests/browser -k "not notebook_runs_in_lab" $(PYTEST_ARGS)
