# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ENTERPRISES ?= 50000
YEARS ?= 5
PYTEST_ARGS ?=

.PHONY: setup demo test lint bench clean

setup: $(STAMP)

# Re-install only when requirements.txt or pyproject.toml change (idempotent).
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

demo: setup
	$(VENV)/bin/risk-insight demo --enterprises $(ENTERPRISES) --years $(YEARS)

test: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: setup
	$(PY) bench/bench_pipeline.py

clean:
	rm -rf lakehouse data/sim
