# Two commands for a fresh machine (README): `make run` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.casewise-installed

.PHONY: install run test lint bench system-deps

install: $(STAMP)

# Debian packages the tests need and the app does not: poppler's pdftoppm (the PDF tests
# render pages) and PostgreSQL (the store's tests run on a throwaway server too:
# tests/helpers/postgres.py). Only what is missing is installed, in one apt call.
system-deps:
	@need=""; command -v pdftoppm >/dev/null || need="$$need poppler-utils"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need="$$need postgresql"; \
	[ -z "$$need" ] || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$need || \
	  { $$SUDO apt-get update -q && \
	    $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$need; }; }

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
