# `make demo` and `make test` each create (or reuse) .venv, installing the CPU build of torch
# first: a plain `torch` requirement would pull a multi-GB CUDA build.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/morphospace demo

test: $(VENV)/.installed
	$(PY) -m pytest -q --durations=15

bench: $(VENV)/.installed
	$(PY) bench/encode.py

clean:
	rm -rf $(VENV) .morphospace
