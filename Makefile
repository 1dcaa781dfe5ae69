# The two commands a newcomer runs (see README.md):
#   make demo   - install what is missing, bring the lab up, migrate a guest zero-copy, verify it
#   make test   - install what is missing, run every test (unit, lab integration, end-to-end)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.ferry-installed

.PHONY: setup system-deps demo demo-down test test-faults unit lint mutation clean

setup: system-deps $(STAMP)

system-deps:
	bash scripts/install-system.sh

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV) || (apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV))
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,bench]'
	touch $(STAMP)

demo: setup
	$(BIN)/ferry demo

demo-down: setup
	$(BIN)/ferry demo --down

test: setup lint
	$(BIN)/pytest $(PYTEST_ARGS)

# The whole fault matrix on the lab (issue 11; `make test` runs three of its faults). -m here
# replaces the default "-m 'not faults'" of pyproject's addopts.
test-faults: setup
	$(BIN)/pytest tests/e2e/test_faults.py -m 'lab' $(PYTEST_ARGS)

# ruff, configured in pyproject.toml; part of `make test`.
lint: setup
	$(BIN)/ruff check ferry tests

# Fast feedback while developing: only the pure unit tests.
unit: setup
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

# Mutation testing of the pure decision modules with their unit tests (config: [tool.mutmut]
# in pyproject.toml; equivalent mutants: mutmut-equivalent.md). Not part of `make test`: the
# protocol and agent modules (1,031 mutants) took 4 min 37 s on a quiet 2-core machine and 13 min
# at load 6-16; all 3,121 took 9 min 30 s in two runs at load 1-5 (mutmut-equivalent.md). MUTANTS='ferry.engine.bandwidth*' runs one module,
# MUTMUT_ARGS='--max-children 1' one mutant at a time; the last step prints the per-module table
# (logic-mutant score: scripts/mutation_score.py says what counts as text-only).
mutation: setup
	rm -rf mutants
	env -u PYTHONPATH $(BIN)/mutmut run $(MUTMUT_ARGS) $(MUTANTS)
	$(BIN)/mutmut results
	env -u PYTHONPATH $(BIN)/python scripts/mutation_score.py

clean:
	rm -rf $(VENV) build *.egg-info
