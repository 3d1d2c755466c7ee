# make run: set up .venv if missing, then the main job on the embedded defaults.
# make test: set up .venv if missing, then the test suite.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
GLUE ?= $(wildcard ../shared/glue)
RUN_OUT ?= runs/quick

.PHONY: run test lint setup clean-venv bench

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned to the CPU build, or a dependency pulls a multi-GB CUDA build
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[test]"
	@touch $(STAMP)

# the tests also run attn sweep through a local Ray head: Ray core only (no dashboard extras), not needed by make run
$(VENV)/.installed-ray: $(STAMP)
	$(PY) -m pip install -q -e ".[ray]"
	@touch $@

run: $(STAMP)
	$(if $(GLUE),ATTN_GLUE_DIR=$(abspath $(GLUE))) $(VENV)/bin/attn run --profile quick --out $(RUN_OUT)

test: $(STAMP) $(VENV)/.installed-ray lint
	$(if $(GLUE),ATTN_GLUE_DIR=$(abspath $(GLUE))) $(PY) -m pytest -q -rs

# the habits that keep the tree readable: ruff's lint (pycodestyle, pyflakes, import order), its formatter, and
# mypy over the library (settings in pyproject.toml)
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(if $(GLUE),ATTN_GLUE_DIR=$(abspath $(GLUE))) $(PY) bench/run_all.py

clean-venv:
	rm -rf $(VENV)
