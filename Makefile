# The first two targets are all a fresh machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo demo-certificate test lint unit e2e run dev bench system-deps clean

demo: $(STAMP)  ## Run the whole OBO flow offline against the local emulator
	$(BIN)/python -m scripts.demo $(DEMO_ARGS)

demo-certificate: $(STAMP)  ## The same, the API authenticating with a client certificate
	$(BIN)/python -m scripts.demo --certificate $(DEMO_ARGS)

# system-deps first: a fresh Debian machine may need python3-venv before .venv can exist.
test: system-deps lint  ## System packages, lint, type-check, every test with coverage of app/
	$(BIN)/python -m pytest --cov

lint: $(STAMP)  ## ruff (rules and formatting) on the tree, mypy --strict on app, emulator, scripts, bench
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

e2e: $(STAMP)
	$(BIN)/python -m pytest tests/e2e

run: $(STAMP)  ## Serve the API with gunicorn, configured from .env
	$(BIN)/gunicorn --config gunicorn.conf.py wsgi:app

dev: $(STAMP)  ## The demo stack kept running for curl and Postman (Ctrl-C stops it)
	$(BIN)/python -m scripts.demo --keep-running

bench: $(STAMP)  ## API vs bare proxy, naive OBO and Redis under load (~5 min; BENCH_ARGS=--quick ~1.5)
	$(BIN)/python -m bench $(BENCH_ARGS)

system-deps:  ## Debian packages (chromium, redis-server, wrk, npm) and node_modules, if missing
	PYTHON=$(PYTHON) sh scripts/setup_system.sh

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) .emulator .pytest_cache .mypy_cache .ruff_cache .coverage
