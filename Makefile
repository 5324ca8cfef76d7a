# userops — run `make` (or `make help`) for the list of targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SAMPLE := data/sample

## Set up .venv (if missing) and build the reports from the bundled sample into reports/latest/
report: $(STAMP) $(SAMPLE)/dataset.yml
	$(BIN)/userops report $(SAMPLE) --jobs 2

## Reports for every bundled dataset (sample, Hillstrom, Telco), one run each
reports-all: $(STAMP) $(SAMPLE)/dataset.yml
	@for dataset in data/sample data/hillstrom data/telco_churn; do \
		$(BIN)/userops report $$dataset --jobs 2 || exit $$?; done

## Set up .venv (if missing) and run the linter and the test suite
test: $(STAMP)
	$(BIN)/ruff check userops_lib tests notebooks
	$(BIN)/ruff format --check userops_lib tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest

## The fast tier (under a minute): unit and hand-worked tests, no notebooks, subprocesses, Spark or browser
test-fast: $(STAMP)
	$(BIN)/ruff check userops_lib tests notebooks
	$(BIN)/ruff format --check userops_lib tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest -m "not slow" -q

## Create .venv and install the package with its dev tools (re-runs when pyproject.toml changes)
install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "userops needs Python 3.11 or newer"'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,spark,postgres]'
	@touch $(STAMP)

## Rebuild the bundled synthetic sample (data/sample) from its seed
sample: $(STAMP)
	$(BIN)/userops synth --out $(SAMPLE) --users 10000 --seed 42 --force

$(SAMPLE)/dataset.yml: | $(STAMP)
	$(BIN)/userops synth --out $(SAMPLE) --users 10000 --seed 42

## Start (or find running) the throwaway PostgreSQL server of the engine matrix; `bash tests/postgres.sh stop` stops it
postgres:
	@bash tests/postgres.sh

## Start JupyterLab on the notebooks
lab: $(STAMP)
	$(BIN)/jupyter lab notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

## Remove the virtual environment and generated reports
clean:
	rm -rf $(VENV) reports/*/ .pytest_cache .ruff_cache

## Show this help
help:
	@awk '/^## /{doc=substr($$0,4); next} /^[a-z][a-zA-Z_-]*:/{ if (doc) { split($$0,t,":"); printf "  make %-12s %s\n", t[1], doc }; doc="" }' $(MAKEFILE_LIST)

.PHONY: report reports-all test test-fast install sample postgres lab clean help
