# Two commands matter on a fresh clone: `make demo` and `make test`. Both set up what they need.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
INSTALLED := $(VENV)/.installed

.PHONY: demo test airflow lint format lock benchmark clean

$(INSTALLED): pyproject.toml requirements.lock
	@bash .ci/system-packages
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	@echo "Installing locked dependencies into $(VENV) ..."
	@$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.lock
	@$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $@

## demo: run the whole job on embedded DuckDB through Airflow and print where the PDF is
demo: $(INSTALLED)
	@$(BIN)/python -m revops.demo

## test: run the test suite, in two processes (a test file each at a time; pytest-xdist)
test: $(INSTALLED)
	@bash .ci/browser-packages
	@$(BIN)/python -m pytest --numprocesses 2 --dist loadfile


## airflow: start Airflow locally (standalone) with the project's DAGs and demo connections
airflow: $(INSTALLED)
	@$(BIN)/python -m revops.devtools.local_airflow

## benchmark: each stage at 10k and 100k leads, with the baselines (docs/performance.md)
benchmark: $(INSTALLED)
	@$(BIN)/python -m benchmarks.harness --prospects 10000 100000 --write-docs

## lint: ruff (with Airflow's AIR rules) and sqlfluff
lint: $(INSTALLED)
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .
	@$(BIN)/sqlfluff lint include/sql

format: $(INSTALLED)
	@$(BIN)/ruff format .
	@$(BIN)/ruff check --fix .

## lock: re-resolve requirements.lock from pyproject.toml (run after changing dependencies)
lock: $(INSTALLED)
	@$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

clean:
	rm -rf var .pytest_cache .ruff_cache
