# Two entry points: `make demo` and `make test`. Both install whatever is
# missing first (Debian packages, a virtual environment, GPAW built from source).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := g++ make libxc-dev libopenblas-dev
STAMP := .make

.PHONY: demo test setup system-packages clean-venv

demo: setup
	$(BIN)/activemat run campaigns/demo.toml
	$(BIN)/activemat status runs/demo.h5

test: setup
	$(BIN)/python -m pytest tests

setup: $(STAMP)/venv

# apt-get only when a package is actually missing (needs root, as on CI).
system-packages:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if ! $(PYTHON) -c 'import ensurepip, venv' 2>/dev/null; then missing="$$missing python3-venv python3-dev"; fi; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

# GPAW is source-only on PyPI; 26.x compiles its C sources as C++ (CC=g++).
$(STAMP)/venv: pyproject.toml | system-packages
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/python -c 'import gpaw' 2>/dev/null || CC=g++ $(BIN)/pip install -q gpaw
	$(BIN)/pip install -q -e '.[test]'
	mkdir -p $(STAMP) && touch $@

clean-venv:
	rm -rf $(VENV) $(STAMP)
