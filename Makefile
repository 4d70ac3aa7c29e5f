# Tasks for working on sqlml. Run `make setup` once; the other targets use the venv it makes.
# `make ci` is what CI runs (.ci/run), in fresh environments of its own.
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin

.PHONY: setup test lint docs bench ci

# The package in editable mode, with the test tools, mypy and pre-commit (pyproject's dev extra).
setup:
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'

# The README's test command.
test:
	$(BIN)/ruff check sqlml tests benchmarks
	$(BIN)/mypy sqlml
	$(BIN)/pytest -q -n 2 --dist loadfile

# Style and types; settings in pyproject.toml ([tool.ruff], [tool.mypy]).
lint:
	$(BIN)/ruff check sqlml tests benchmarks
	$(BIN)/mypy

# Checks that the generated reference text in docs/ (CLI reference, option tables) matches the
# code; `$(PY) docs/gen.py` rewrites it.
docs:
	$(PY) docs/gen.py --check

# Every benchmark once, on small inputs: a check that they run, not figures to quote (the
# defaults, which the README's numbers use, take much longer).
bench:
	$(PY) benchmarks/bench_startup.py --repeat 1
	$(PY) benchmarks/bench_metrics.py --rows 20000 --repeat 1
	$(PY) benchmarks/bench_scoring.py --rows 20000 --train-rows 5000 --repeat 1
	$(PY) benchmarks/bench_compiled.py --rows 20000 --train-rows 5000 --repeat 1
	$(PY) benchmarks/bench_tuning.py --rows 1000 --budgets 2
	$(PY) benchmarks/bench_quality.py --quick --datasets breast_cancer,synthetic --max-runtime 10
	$(PY) benchmarks/bench_recommend.py --quick
	$(PY) benchmarks/bench_serving.py --clients 2 --queries 10 --rows 10 --timeout 60

ci:
	bash .ci/run
