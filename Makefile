# Two entry points: `make demo` and `make test`. Both install whatever is missing first (Debian packages, a
# virtual environment, GPAW built from source); `make demo` only what the demo needs, `make test` adds the
# test-only tools. `make docs` builds the documentation into docs/_build/html (warnings are errors).
# Without root, follow docs/howto/install.md instead: a venv and pip, nothing else.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# What the demo needs: compilers (GPAW and icet build from source), libxc and a BLAS for GPAW.
# python3-venv and python3-dev are added when $(PYTHON) lacks venv/ensurepip or its C headers (Python.h).
DEMO_PACKAGES := g++ make libxc-dev libopenblas-dev
# Test-only tools: Open MPI (GPAW's setup.py builds against MPI when `mpic++` is on PATH: the mpi_ranks > 1
# tests), h5dump (hdf5-tools), headless Chromium for the browser tests; SLURM comes with slurm-up.
TEST_PACKAGES := openmpi-bin libopenmpi-dev hdf5-tools chromium chromium-driver
SLURM_PACKAGES := slurmctld slurmd slurm-client munge
SLURM_STATE ?= /tmp/activemat-slurm
STAMP := .make

.PHONY: demo test docs setup demo-packages test-packages gpaw-mpi clean-venv slurm-up slurm-down

demo: setup
	$(BIN)/activemat run campaigns/demo.toml
	$(BIN)/activemat status runs/demo.h5

# test-packages first: on a fresh machine GPAW is then built against Open MPI at once.
test: test-packages setup gpaw-mpi $(STAMP)/test-extra slurm-up
	ACTIVEMAT_SLURM_STATE=$(SLURM_STATE) $(BIN)/python -m pytest tests --durations=30

# Sphinx + MyST; the reference pages are generated from the code (docs/_ext, sphinx-argparse,
# autodoc-pydantic, autosummary). The docs dependencies are in the `test` extra.
docs: setup $(STAMP)/test-extra
	$(BIN)/python -m sphinx -W --keep-going -j auto -b html docs docs/_build/html
	@echo "docs: docs/_build/html/index.html"

setup: $(STAMP)/venv

# apt-get only when a package is actually missing (needs root, as on CI).
APT_MISSING = missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done)
APT_INSTALL = if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi
PYTHON_H := import os, sys, sysconfig as s; sys.exit(not os.path.isfile(os.path.join(s.get_path("include"), "Python.h")))

demo-packages:
	@$(call APT_MISSING,$(DEMO_PACKAGES)); \
	if ! $(PYTHON) -c 'import ensurepip, venv' 2>/dev/null; then missing="$$missing python3-venv"; fi; \
	if ! $(PYTHON) -c '$(PYTHON_H)' 2>/dev/null; then missing="$$missing python3-dev"; fi; \
	$(APT_INSTALL)

test-packages:
	@$(call APT_MISSING,$(TEST_PACKAGES)); \
	$(APT_INSTALL)

# The slurm test tier runs against a real single-node SLURM (slurm/local-slurm.sh, on
# 127.0.0.1): its packages are installed when apt-get can, and it is started (idempotently)
# before the tests. Where it cannot run, the slurm tests skip and say why.
slurm-up:
	@missing=$$(for p in $(SLURM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian packages:$$missing"; \
	  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing) \
	    || echo "SLURM packages not installable here: the slurm tests will skip"; \
	fi; \
	if command -v slurmctld >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  bash slurm/local-slurm.sh start $(SLURM_STATE) || [ $$? = 3 ]; \
	else echo "no local SLURM (needs root and $(SLURM_PACKAGES)): the slurm tests will skip"; fi

slurm-down:
	bash slurm/local-slurm.sh stop $(SLURM_STATE)

# GPAW is source-only on PyPI; 26.x compiles its C sources as C++ (CC=g++). Its setup.py builds against MPI by
# itself when Open MPI's `mpic++` is on PATH (`gpaw info`: "MPI enabled yes"). The demo needs neither the
# `test` extra nor MPI.
$(STAMP)/venv: pyproject.toml Makefile | demo-packages
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/python -c 'import gpaw' 2>/dev/null || CC=g++ $(BIN)/pip install -q gpaw
	$(BIN)/pip install -q -e .
	mkdir -p $(STAMP) && touch $@

$(STAMP)/test-extra: pyproject.toml Makefile | $(STAMP)/venv
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# pip's wheel cache is keyed by the sdist, not by the machine: a GPAW wheel built earlier without MPI (by
# `make demo`, before Open MPI was here) would be reused, so GPAW is rebuilt without the cache whenever mpic++
# is here and it lacks MPI. Checked on every `make test`; it rebuilds nothing when GPAW has MPI.
GPAW_HAS_MPI := from gpaw import cgpaw; assert cgpaw.have_mpi
gpaw-mpi: | $(STAMP)/venv
	@if command -v mpic++ >/dev/null && ! $(BIN)/python -c '$(GPAW_HAS_MPI)' 2>/dev/null; then \
	  echo "rebuilding GPAW against Open MPI"; \
	  CC=g++ $(BIN)/pip install -q --no-cache-dir --no-deps --force-reinstall \
	    "gpaw==$$($(BIN)/python -c 'import gpaw; print(gpaw.__version__)')"; \
	fi

clean-venv:
	rm -rf $(VENV) $(STAMP)
