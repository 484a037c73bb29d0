# The first two targets are all a fresh machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint unit e2e run dev bench clean

demo: $(STAMP)  ## Run the whole OBO flow offline against the local emulator
	$(BIN)/python -m scripts.demo

test: $(STAMP) lint  ## Lint, type-check and run every test
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy app

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

e2e: $(STAMP)
	$(BIN)/python -m pytest tests/e2e

run: $(STAMP)  ## Serve the API with gunicorn, configured from .env
	$(BIN)/gunicorn --config gunicorn.conf.py wsgi:app

dev: $(STAMP)  ## The demo stack kept running for curl and Postman (Ctrl-C stops it)
	$(BIN)/python -m scripts.demo --keep-running

bench: $(STAMP)  ## Measure latency, outbound calls and cache memory
	$(BIN)/python -m scripts.bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) .emulator .pytest_cache .mypy_cache .ruff_cache
