# Two entry points: `make demo` and `make test`. Both install whatever is
# missing first (Debian packages, a virtual environment, GPAW built from source).
# `make docs` builds the documentation into docs/_build/html (warnings are errors).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# openmpi-bin + libopenmpi-dev: GPAW's setup.py builds against MPI when `mpic++` is on PATH (mpi_ranks > 1).
APT_PACKAGES := g++ make libxc-dev libopenblas-dev openmpi-bin libopenmpi-dev hdf5-tools chromium chromium-driver
SLURM_PACKAGES := slurmctld slurmd slurm-client munge
SLURM_STATE ?= /tmp/activemat-slurm
STAMP := .make

.PHONY: demo test docs setup system-packages clean-venv slurm-up slurm-down

demo: setup
	$(BIN)/activemat run campaigns/demo.toml
	$(BIN)/activemat status runs/demo.h5

test: setup slurm-up
	ACTIVEMAT_SLURM_STATE=$(SLURM_STATE) $(BIN)/python -m pytest tests

# Sphinx + MyST; the reference pages are generated from the code (docs/_ext, sphinx-argparse,
# autodoc-pydantic, autosummary). The docs dependencies are in the `test` extra: installed if missing.
DOCS_MODULES := sphinx myst_parser sphinxarg sphinxcontrib.autodoc_pydantic furo
docs: setup
	@$(BIN)/python -c 'import importlib, sys; [importlib.import_module(m) for m in sys.argv[1:]]' $(DOCS_MODULES) \
	  2>/dev/null || $(BIN)/pip install -q -e '.[test]'
	$(BIN)/python -m sphinx -W --keep-going -b html docs docs/_build/html
	@echo "docs: docs/_build/html/index.html"

setup: $(STAMP)/venv

# apt-get only when a package is actually missing (needs root, as on CI).
system-packages:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if ! $(PYTHON) -c 'import ensurepip, venv' 2>/dev/null; then missing="$$missing python3-venv python3-dev"; fi; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

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

# GPAW is source-only on PyPI; 26.x compiles its C sources as C++ (CC=g++). Its setup.py builds
# against MPI by itself when Open MPI's `mpic++` is on PATH (`gpaw info`: "MPI enabled yes").
# pip's wheel cache is keyed by the sdist, not by the machine: a wheel built earlier without MPI
# would be reused, so GPAW is rebuilt without the cache whenever mpic++ is here and it lacks MPI.
GPAW_HAS_MPI := from gpaw import cgpaw; assert cgpaw.have_mpi
$(STAMP)/venv: pyproject.toml Makefile | system-packages
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/python -c 'import gpaw' 2>/dev/null || CC=g++ $(BIN)/pip install -q gpaw
	if command -v mpic++ >/dev/null && ! $(BIN)/python -c '$(GPAW_HAS_MPI)' 2>/dev/null; then \
	  echo "rebuilding GPAW against Open MPI"; \
	  CC=g++ $(BIN)/pip install -q --no-cache-dir --no-deps --force-reinstall \
	    "gpaw==$$($(BIN)/python -c 'import gpaw; print(gpaw.__version__)')"; \
	fi
	$(BIN)/pip install -q -e '.[test]'
	mkdir -p $(STAMP) && touch $@

clean-venv:
	rm -rf $(VENV) $(STAMP)
