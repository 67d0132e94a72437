# Two commands for a fresh machine (README): `make run` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.casewise-installed

.PHONY: install run test lint bench system-deps

install: $(STAMP)

# The PDF tests render pages with poppler's pdftoppm (Debian's poppler-utils); the app
# itself does not need it, so only `make test` installs it.
system-deps:
	@command -v pdftoppm >/dev/null || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q poppler-utils || \
	  { $$SUDO apt-get update -q && \
	    $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q poppler-utils; }; }

$(STAMP): requirements.lock requirements-embedded.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.lock
	$(PY) -m pip install --disable-pip-version-check -q --no-deps -r requirements-embedded.txt
	touch $(STAMP)

run: install
	$(PY) main.py

test: install system-deps
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

# Style (ruff) and architecture (import-linter: Qt only in app.ui, app > explainers > models;
# the contracts are [tool.importlinter] in pyproject.toml). CI runs it beside `make test`.
lint: install  # both run, so one report shows every finding
	status=0; $(VENV)/bin/ruff check . || status=1; \
	$(VENV)/bin/lint-imports --no-logo || status=1; exit $$status

bench: install
	$(PY) benchmarks/bench_classifier.py
