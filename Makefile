# Two commands for a fresh machine (README): `make run` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.casewise-installed

.PHONY: install run test lint bench

install: $(STAMP)

$(STAMP): requirements.lock requirements-embedded.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.lock
	$(PY) -m pip install --disable-pip-version-check -q --no-deps -r requirements-embedded.txt
	touch $(STAMP)

run: install
	$(PY) main.py

test: install
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(PY) benchmarks/bench_classifier.py
