# voxd: the quick start and the tests, from a fresh clone.
#   make quickstart   set up .venv, build a sample EPUB, render it to outbox/ with Piper (CPU, no GPU needed)
#   make test         run the whole test suite
#   make test-unit    the fast tests only: no daemon subprocesses (e2e), nothing slow
#   make lint         ruff and mypy, as CI runs them
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: quickstart install test test-unit lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -e '.[test]'
	touch $@

quickstart: install
	$(BIN)/python -m voxd.samples state/sample/alice.epub
	VOXD_STATE_DIR=state VOXD_OUTBOX=outbox \
		VOXD_ENGINE=$$($(BIN)/python -c 'import piper' 2>/dev/null && echo piper || echo espeak) \
		$(BIN)/voxd render state/sample/alice.epub

test: install
	$(BIN)/python -m pytest

test-unit: install
	$(BIN)/python -m pytest -m "not e2e and not slow"

lint: install
	$(BIN)/ruff check voxd tests bench
	$(BIN)/mypy

clean:
	rm -rf state outbox/* build *.egg-info
