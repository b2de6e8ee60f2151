# The two commands a newcomer needs: `make dev` runs onsale, `make test` tests it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: dev test lint install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'

dev: install
	$(BIN)/onsale dev

lint: install
	$(BIN)/ruff check onsale tests
	$(BIN)/ruff format --check onsale tests
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest
