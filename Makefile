# pycontainerd: every target is a thin wrapper around a script in scripts/, so
# that a fresh Debian 12 without make can run the same commands (see README).
#
#   make setup        Debian packages (root) and .venv          scripts/setup.sh
#   make demo         setup, start the daemon, walk through pyctr scripts/demo.sh
#   make test         setup, then lint, typecheck, imports, docs, pytest
#   make lint         ruff check . && ruff format --check .
#   make typecheck    mypy --strict
#   make imports      lint-imports
#   make docs-check   python -m pycontainerd.api.docgen --check
#   make unit         pytest tests/unit
#   make integration  pytest tests/integration (root)
#   make bench        bench/rpc.py: pycontainerd vs Debian's containerd (root)
#
# Variables: PYTEST_ARGS="-x -k name", BENCH_ARGS="--calls 500 --json out.json".

SHELL := /bin/bash
VENV := .venv/bin
BENCH_ARGS ?=

.PHONY: setup demo test lint typecheck imports docs-check unit integration bench

setup:
	./scripts/setup.sh

demo:
	./scripts/demo.sh

test:
	./scripts/test.sh

lint:
	./scripts/test.sh lint

typecheck:
	./scripts/test.sh typecheck

imports:
	./scripts/test.sh imports

docs-check:
	./scripts/test.sh docs

unit:
	./scripts/test.sh unit

integration:
	./scripts/test.sh integration

bench: setup
	$(VENV)/python bench/rpc.py $(BENCH_ARGS)
