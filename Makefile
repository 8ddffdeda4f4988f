# corejob front door. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU wheel on disk here; CUDA users: make install TORCH_SPEC='torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126'
TORCH_SPEC ?= torch==2.13.0

MODEL ?= res_small
DATASET ?= synthetic_mixed
WORKERS ?= 1
GPUS ?= 0
BACKEND ?=
NAMESPACE ?=
IMAGE ?=
DRY_RUN ?=
JOB ?=
SWEEP ?=
MODELS ?= res_small
DATASETS ?= synthetic_mixed
MAX_PARALLEL ?= 2
RETRIES ?= 1
PYTEST_ARGS ?=

.PHONY: help install test test-fast lint bench demo submit sweep status logs cancel results \
        render manifests image push image-test ci-system-deps clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# The stamp makes every target usable on a fresh machine and re-installs when deps change.
STAMP := $(VENV)/.corejob-installed
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

install: $(STAMP) ## create .venv with everything for dev and test (idempotent)

test: $(STAMP) ## the full test suite (slow tests included), as CI runs it
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP) ## unit and quick integration tests only
	$(BIN)/python -m pytest -m 'not slow' $(PYTEST_ARGS)

lint: $(STAMP) ## ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP) ## benchmarks: printed table + JSON under bench-results/
	$(BIN)/python -m benchmarks

demo: $(STAMP) ## a tiny local training run (single process)
	$(BIN)/corejob-train --model_config $(MODEL) --dataset_configs_path synthetic_tiny \
	  --run_dir runs/demo --data_root data --max_epochs 2

# ---- chart (charts/corejob/README.md) -----------------------------------------------------
NPROC ?= 1
VALUES ?=
CHART_IMAGE := $(if $(IMAGE),--image $(IMAGE),--set-string image.repository=localhost/corejob-trainer)

render: $(STAMP) ## print the PyTorchJob the chart renders: make render MODEL=res_small WORKERS=3
	@$(BIN)/python -m corejob.render $(if $(VALUES),-f $(VALUES)) \
	  --set-string model=$(MODEL),dataset=$(DATASET) \
	  --set workers=$(WORKERS),gpusPerReplica=$(GPUS),nprocPerNode=$(NPROC) \
	  $(CHART_IMAGE) $(if $(NAMESPACE),--namespace $(NAMESPACE))

manifests: $(STAMP) ## regenerate the golden chart renders in manifests/examples/
	@set -e; for values in manifests/examples/values/*.yaml; do \
	  out=manifests/examples/$$(basename $$values); \
	  $(BIN)/python -m corejob.render --example $$values > $$out.tmp || { rm -f $$out.tmp; exit 1; }; \
	  mv $$out.tmp $$out; echo "wrote $$out"; \
	done

# ---- container image (image/README.md) -------------------------------------------------
REGISTRY ?=

image: ## build the trainer image (docker or podman; tags <version>-<sha> and <version>)
	image/build.sh

push: ## push the image: make push REGISTRY=ghcr.io/mylab
	REGISTRY=$(REGISTRY) image/push.sh

image-test: $(STAMP) ## hadolint, build, run (help, 2-pod DDP, SIGTERM), checkov
	$(BIN)/python -m pytest tests/image $(PYTEST_ARGS)

ci-system-deps: ## apt-get install podman, buildah, runc, debootstrap, ... (idempotent)
	image/ci-system-deps.sh

clean: ## remove runs, data and caches
	rm -rf runs data bench-results .pytest_cache .ruff_cache
