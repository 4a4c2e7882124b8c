# Two entry points for a fresh machine: `make app` (the studio on the shipped weights) and `make test`.
# Each sets up .venv on first use; pip takes the local CPU torch wheel because torch is pinned.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: app test lint

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python requirements.txt requirements-dev.txt pyproject.toml
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

app: $(VENV)/.installed
	$(BIN)/python app.py

lint: $(VENV)/.installed
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest
