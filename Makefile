# make test: create .venv if missing, install everything, lint, type-check, run the tests.
# make demo: the main job (see README).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo lint typecheck sim bench clean

$(STAMP): pyproject.toml deploy/install-system-deps.sh
	bash deploy/install-system-deps.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest -q

demo: $(STAMP)
	$(BIN)/metroledger demo

sim: $(STAMP)
	$(BIN)/metroledger sim --runs 2000 --n 4 --byzantine 1
	$(BIN)/metroledger sim --runs 2000 --n 7 --byzantine 2

bench: $(STAMP)
	$(BIN)/python -m bench.micro_consensus

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
