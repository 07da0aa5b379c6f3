# Each target creates the virtual environment it needs on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)  ## run the guided demo on a throwaway PostgreSQL
	$(BIN)/queryopt demo

test: $(STAMP)  ## run the whole test suite (it starts its own PostgreSQL)
	$(BIN)/python -m pytest

lint: $(STAMP)  ## ruff and mypy --strict
	$(BIN)/ruff check queryopt tests benchmarks
	$(BIN)/ruff format --check queryopt tests benchmarks
	$(BIN)/mypy --strict queryopt

bench: $(STAMP)  ## run every benchmark and print ratio tables
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
