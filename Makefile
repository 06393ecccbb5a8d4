# The two commands of the README: `make test` and `make book`.
# Each creates .venv when missing and installs the project (editable) with what it needs.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
NATIVE := $(wildcard native/*.c native/*.h native/*.py) setup.py pyproject.toml

.PHONY: test book native clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Re-install (and so rebuild the C library) whenever the native sources change.
$(VENV)/.installed-test: $(PY) $(NATIVE)
	$(PY) -m pip install --quiet -e '.[test,book]'
	touch $@

$(VENV)/.installed-book: $(PY) $(NATIVE)
	$(PY) -m pip install --quiet -e '.[book]'
	touch $@

# Strict: any Sphinx warning, broken reference or cell error fails the build.
book: $(VENV)/.installed-book
	$(VENV)/bin/jupyter-book build . --all -W -n --keep-going

test: $(VENV)/.installed-test
	$(PY) -m pytest

native: $(VENV)/.installed-test

clean:
	rm -rf _build build *.egg-info softmax_lib/_native*.so softmax_lib/_native.c
