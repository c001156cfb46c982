# torchkiln: `make demo` and `make test` set everything up on a fresh machine (Python 3.10+
# and a Rust toolchain) and are quick on re-run: each step is guarded by a stamp file.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
STAMPS := $(VENV)/.stamps
RUST_SOURCES := Cargo.toml $(wildcard Cargo.lock) $(shell find rust -name '*.rs' -o -name 'Cargo.toml' 2>/dev/null)
PLUGIN_SOURCES := $(wildcard plugins/*/pyproject.toml)
PYTEST_ARGS ?=

.PHONY: setup demo test test-rust test-python bench bench-peers lint clean

setup: $(STAMPS)/native $(STAMPS)/plugins

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade uv

$(STAMPS)/deps: pyproject.toml | $(PY)
	$(UV) pip install --quiet --python $(PY) -r pyproject.toml --extra dev --extra demo --extra vision maturin
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/native: $(STAMPS)/deps $(RUST_SOURCES)
	VIRTUAL_ENV=$(abspath $(VENV)) $(VENV)/bin/maturin develop --release --uv
	$(PY) -c "import torchkiln._native" || (echo "building the extension failed" >&2; exit 1)
	@touch $@

$(STAMPS)/plugins: $(STAMPS)/native $(PLUGIN_SOURCES)
	for p in plugins/*/; do $(UV) pip install --quiet --python $(PY) --no-deps -e "$$p" || exit 1; done
	@touch $@

demo: setup
	$(PY) -m torchkiln train configs/quickstart.yaml --work-dir work_dirs/quickstart

test: setup lint test-rust test-python

test-rust:
	cargo test --workspace --quiet

test-python: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: setup
	$(PY) bench/run_all.py

# The same, with MMEngine, Lightning and Ignite installed (the `bench` extra) so the overhead
# benchmark measures them beside torchkiln.
bench-peers: setup
	$(UV) pip install --quiet --python $(PY) -r pyproject.toml --extra bench
	$(PY) bench/run_all.py

# Static checks: ruff (lint and formatting) and mypy on the package, clippy and rustfmt on the
# Rust workspace. A fresh rustup toolchain may lack clippy/rustfmt: add them once if so.
lint: $(STAMPS)/deps
	$(VENV)/bin/ruff check python/torchkiln
	$(VENV)/bin/ruff format --check python/torchkiln
	$(VENV)/bin/mypy python/torchkiln
	@if ! cargo clippy --version >/dev/null 2>&1 || ! cargo fmt --version >/dev/null 2>&1; then \
		if command -v rustup >/dev/null 2>&1; then rustup component add clippy rustfmt; \
		else echo "lint: cargo clippy and cargo fmt are missing and rustup is not installed;" \
			"install the clippy and rustfmt components of your Rust toolchain" >&2; exit 1; fi; \
	fi
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --quiet -- -D warnings

clean:
	rm -rf target work_dirs $(STAMPS)
