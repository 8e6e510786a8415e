# One-command set-up: `make run` and `make test` create/refresh .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PIP    := $(BIN)/python -m pip --quiet --disable-pip-version-check
PYPROJECTS := pyproject.toml $(wildcard packages/*/pyproject.toml) external/etl-database-schema/pyproject.toml
EDITABLES  := -e 'packages/etl_core[s3,cli,celery]' -e 'external/etl-database-schema' \
              -e 'packages/file_processing[schema]' -e 'packages/data_pipeline[schema]' \
              -e 'packages/observability[schema]'

.PHONY: install run test lint format bench clean

install: $(STAMP)

$(STAMP): $(PYPROJECTS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade 'pip>=25.1'
	$(PIP) install $(EDITABLES)
	$(PIP) install --group dev
	@touch $(STAMP)

## run: the platform's main job on the embedded defaults (local store + SQLite)
run: install
	$(BIN)/python examples/retail/run.py

## test: every package's tests (pytest; services skipped unless ETL_REQUIRE_SERVICES=1)
test: install
	$(BIN)/pytest $(PYTEST_ARGS)

## lint: ruff, mypy (strict for etl_core) and the import-linter boundaries
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## bench: the benchmarks (bench/README.md); reference tools go into .venv-bench
BENCH_VENV := .venv-bench
bench: install $(BENCH_VENV)/.installed
	ETL_BENCH_TOOLS_PYTHON=$(BENCH_VENV)/bin/python $(BIN)/python bench/run.py $(BENCH_ARGS)

$(BENCH_VENV)/.installed: pyproject.toml
	@test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip --quiet --disable-pip-version-check install --upgrade 'pip>=25.1'
	$(BENCH_VENV)/bin/python -m pip --quiet --disable-pip-version-check install --group bench
	@touch $@

clean:
	rm -rf $(VENV) $(BENCH_VENV) .etl .pytest_cache .mypy_cache .ruff_cache
