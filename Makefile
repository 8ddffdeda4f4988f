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

.PHONY: help install test test-fast lint bench gpu-check demo submit sweep status logs cancel results \
        render manifests image push image-test system-deps ci-system-deps clean

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

test: $(STAMP) system-deps ## the full test suite (slow tests included), as CI runs it
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP) ## unit and quick integration tests only
	$(BIN)/python -m pytest -m 'not slow' $(PYTEST_ARGS)

lint: $(STAMP) ## ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP) ## benchmarks: printed table + JSON under bench-results/ (ONLY=trainer: one module)
	$(BIN)/python -m benchmarks $(if $(ONLY),--only $(ONLY))

gpu-check: $(STAMP) ## one GPU at realistic scale (< 8 min): benchmarks/results/gpu-<date>.{json,md}; DRY=1: on the CPU
	$(BIN)/python -m benchmarks.gpu_check $(if $(DRY),--dry-run --out_dir bench-results)

demo: $(STAMP) ## a tiny local training run (single process), fresh each time
	$(BIN)/corejob-train train --model_config $(MODEL) --dataset_configs_path synthetic_tiny \
	  --run_dir runs/demo --data_root data --max_epochs 2 --resume never

# ---- jobs: the corejob CLI (`corejob --help`; BACKEND=kubernetes|local|container, default:
# kubernetes when a kube context exists, else local) -----------------------------------------
SET ?=
WAIT ?=
ALL ?=
FOLLOW ?=
REPLICA ?=
CLI_OPTS = $(if $(BACKEND),--backend $(BACKEND)) $(if $(NAMESPACE),--namespace $(NAMESPACE))
SPEC_OPTS = --workers $(WORKERS) --gpus $(GPUS) $(if $(IMAGE),--image $(IMAGE)) \
  $(foreach item,$(SET),--set '$(item)') $(if $(DRY_RUN),--dry-run)

# Without a cluster (the local backends) `make submit` waits for the job and ends with the
# results table. Evaluated in the recipe, after the venv exists.
ON_CLUSTER = $(if $(BACKEND),$(filter kubernetes,$(BACKEND)),$(shell $(BIN)/python -c \
  'from corejob.backends.kubernetes.config import cluster_configured as c; print("1" if c() else "")'))
SUBMIT_WAITS = $(if $(DRY_RUN),,$(or $(WAIT),$(if $(ON_CLUSTER),,1)))
# On a workstation the job gets a wall-clock budget (minutes) unless TIME_BUDGET= or SET= says
# otherwise; on a cluster the chart's values decide.
TIME_BUDGET ?=
SUBMIT_BUDGET = $(or $(TIME_BUDGET),$(if $(ON_CLUSTER),,5))

submit: $(STAMP) ## submit one job: MODEL= [DATASET= WORKERS= GPUS= IMAGE= NAMESPACE= SET= VALUES=site.yaml TIME_BUDGET=min DRY_RUN=1 WAIT=1]
	$(BIN)/corejob submit --model $(MODEL) --dataset $(DATASET) $(SPEC_OPTS) $(CLI_OPTS) \
	  $(if $(VALUES),-f $(VALUES)) \
	  $(if $(SUBMIT_BUDGET),--set trainer.timeBudgetMinutes=$(SUBMIT_BUDGET)) $(if $(SUBMIT_WAITS),--wait)
	$(if $(SUBMIT_WAITS),$(BIN)/corejob results $(CLI_OPTS))

sweep: $(STAMP) ## one job per cell: MODELS=a,b DATASETS=x,y [MAX_PARALLEL=2 RETRIES=1 SWEEP=id VALUES=site.yaml]
	$(BIN)/corejob sweep --models $(MODELS) --datasets $(DATASETS) --max-parallel $(MAX_PARALLEL) \
	  $(if $(VALUES),-f $(VALUES)) \
	  --retries $(RETRIES) $(if $(SWEEP),--name $(SWEEP)) $(SPEC_OPTS) $(CLI_OPTS)

status: $(STAMP) ## jobs table, pending reasons explained [JOB= | SWEEP=]
	$(BIN)/corejob status $(JOB) $(if $(SWEEP),--sweep $(SWEEP)) $(CLI_OPTS)

logs: $(STAMP) ## a job's log: JOB= [ALL=1 FOLLOW=1 REPLICA=worker-0]
	$(BIN)/corejob logs $(JOB) $(if $(ALL),--all) $(if $(FOLLOW),--follow) \
	  $(if $(REPLICA),--replica $(REPLICA)) $(CLI_OPTS)

cancel: $(STAMP) ## delete jobs: JOB=name or SWEEP=id
	$(BIN)/corejob cancel $(JOB) $(if $(SWEEP),--sweep $(SWEEP)) $(CLI_OPTS)

results: $(STAMP) ## model x dataset table + results.{csv,json} + results-<sweep>.png [SWEEP= FROM_CLAIM=1 VALUES=site.yaml]
	$(BIN)/corejob results $(if $(SWEEP),--sweep $(SWEEP)) --csv results.csv --json results.json \
	  --plot $(CLI_OPTS) \
	  $(if $(FROM_CLAIM),--from-claim $(if $(VALUES),-f $(VALUES)) $(foreach item,$(SET),--set '$(item)'))

# ---- chart (charts/corejob/README.md) -----------------------------------------------------
NPROC ?=
VALUES ?=

# The same command line as `corejob render` (one renderer, Helm's value options): the output
# is byte-identical for the same inputs (tests/corejob/test_cli_render.py).
render: $(STAMP) ## print the job the chart renders: make render MODEL=res_small WORKERS=3 [VALUES=f.yaml SET=k=v NPROC=2]
	@$(BIN)/corejob render --model $(MODEL) --dataset $(DATASET) $(SPEC_OPTS) \
	  $(if $(VALUES),-f $(VALUES)) $(if $(NPROC),--set nprocPerNode=$(NPROC)) $(CLI_OPTS)

manifests: $(STAMP) ## regenerate the golden chart renders in manifests/examples/
	@set -e; for values in manifests/examples/values/*.yaml; do \
	  out=manifests/examples/$$(basename $$values); \
	  $(BIN)/python -m corejob.job.examples $$values > $$out.tmp || { rm -f $$out.tmp; exit 1; }; \
	  mv $$out.tmp $$out; echo "wrote $$out"; \
	done

# ---- container image (image/README.md) -------------------------------------------------
REGISTRY ?=
TLS_VERIFY ?=

image: $(STAMP) ## build the trainer image (docker or podman; tags <version>-<sha> and <version>)
	image/build.sh

push: ## push the image: make push REGISTRY=ghcr.io/mylab [TLS_VERIFY=false]
	REGISTRY=$(REGISTRY) TLS_VERIFY=$(TLS_VERIFY) image/push.sh

image-test: $(STAMP) ci-system-deps ## hadolint, build, run (help, 2-pod DDP, SIGTERM), checkov, push
	$(BIN)/python -m pytest tests/image $(PYTEST_ARGS)

system-deps: ## apt-get install podman, buildah, runc, debootstrap, ... (idempotent, quick when present)
	image/ci-system-deps.sh
	tests/infra/kube-server/install-deps.sh  # etcd, helm, kubectl; builds kube-apiserver once

ci-system-deps: system-deps

clean: ## remove runs, data and caches
	rm -rf runs data bench-results .pytest_cache .ruff_cache
