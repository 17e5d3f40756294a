# `make demo` and `make test` each create (or reuse) .venv, installing the CPU build of torch
# first: a plain `torch` requirement would pull a multi-GB CUDA build.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test bench clean browser

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/morphospace demo

# Browser tests drive Debian's Chromium; without root they are skipped and say so, except under
# CI=true, where a missing browser fails the run.
browser:
	@command -v chromedriver >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; } \
		|| { echo "could not install chromium + chromium-driver: browser tests will be skipped"; test "$$CI" != true; }

test: $(VENV)/.installed browser
	$(PY) -m pytest -q --durations=15

bench: $(VENV)/.installed
	$(PY) bench/encode.py

clean:
	rm -rf $(VENV) .morphospace
