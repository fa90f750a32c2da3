# The two set-up commands: `make run` and `make test`. Both create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# CPU build of torch for the embeddings extra: a plain `torch` would pull a multi-GB CUDA build.
TORCH := torch==2.13.0

.PHONY: run test lint types imports unit integration deploy-check bench-overhead fuzz check-config clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[dev,embeddings]'
	touch $(VENV)/.installed $@

run: $(VENV)/.installed
	$(BIN)/tiergate serve --demo

test: $(VENV)/.dev-installed lint types imports
	$(BIN)/python -m pytest -q

SRC := gateway cache tests bench

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check $(SRC)
	$(BIN)/ruff format --check $(SRC)

types: $(VENV)/.dev-installed
	$(BIN)/mypy

imports: $(VENV)/.dev-installed
	$(BIN)/lint-imports

unit: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -q tests/unit tests/property

integration: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -q tests/integration

# The container image, compose files and Helm chart, checked without Docker or a helm binary.
deploy-check: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -q tests/deploy

bench-overhead: $(VENV)/.dev-installed
	$(BIN)/python -m bench.overhead

fuzz: $(VENV)/.dev-installed
	$(BIN)/python -m bench.fuzz --seconds 60

check-config: $(VENV)/.installed
	$(BIN)/tiergate check-config routing_rules/default.yaml

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache
