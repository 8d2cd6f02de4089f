# voxd: the quick start and the tests, from a fresh clone.
#   make quickstart   set up .venv, build a sample EPUB, render it to outbox/ (CPU, no GPU needed)
#   make test         run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: quickstart install test bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -e '.[test]'
	touch $@

quickstart: install
	$(BIN)/python -m voxd.samples state/sample/alice.epub
	VOXD_STATE_DIR=state VOXD_OUTBOX=outbox VOXD_ENGINE=espeak \
		$(BIN)/voxd render state/sample/alice.epub

test: install
	$(BIN)/python -m pytest

clean:
	rm -rf state outbox/* build *.egg-info
