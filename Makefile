# `make demo` and `make test` set up .venv on their own (a fresh machine needs only python3).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.taomi-installed
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
# pip prints a warning per package for local index folders this machine's pip.conf names but lacks.
QUIET := 2>&1 | sed '/is ignored: it is neither a file nor a directory/d'

.PHONY: demo test lint bench clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first, pinned, by pip: 2.13.0 is the CPU wheel on this disk; a looser spec pulls a multi-GB CUDA build.
	$(PY) -m pip install -q --no-compile "torch==2.13.0" $(QUIET)
	# The rest by uv (from PyPI) when it can be had: the same versions as pip picks (it gets pip's
	# sources and constraints from .ci/uv-flags) in seconds instead of ~80 s. Otherwise pip.
	# Bytecode: uv compiles site-packages in parallel (torch's too, hence pip's --no-compile above),
	# so the first `make demo` does not compile thousands of modules one by one.
	$(PY) -m pip install -q "uv>=0.5" $(QUIET) || true
	if [ -x $(VENV)/bin/uv ] && $(VENV)/bin/uv pip install -q --compile-bytecode --python $(PY) $$($(PY) .ci/uv-flags) -e ".[torch,test]"; \
	then echo "installed with uv"; \
	else $(PY) -m pip install -q --upgrade pip $(QUIET) && $(PY) -m pip install -q -e ".[torch,test]" $(QUIET); fi
	# Check the imports while numba compiles the dedup kernel once per install (it caches the
	# machine code; never per run): two processes, ~6 s and ~8 s, side by side.
	$(PY) -c "import taomi, duckdb, prefect, datasketch, torch, sklearn, cleanlab" & check=$$!; \
	$(PY) -c "from dedup.kernel import warm; warm()"; \
	wait $$check
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/taomi demo

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(PY) bench/ingest_bench.py

clean:
	rm -rf $(VENV) demo-out taomi.duckdb .pytest_cache
