# lifgrad: two commands.  `make demo` runs the main job, `make test` the tests.
# Both create .venv and install what they need (nothing else is assumed).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
# two cores: let Numba use both, keep BLAS from oversubscribing them
export NUMBA_NUM_THREADS ?= 2
export OPENBLAS_NUM_THREADS ?= 1
export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1

.PHONY: demo test check bench clean venv

$(VENV)/.stamp-base: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -e ".[dev]"
	touch $@

venv: $(VENV)/.stamp-base

demo: $(VENV)/.stamp-base
	$(VENV)/bin/lifgrad demo

check: $(VENV)/.stamp-base
	$(VENV)/bin/lifgrad check

test: $(VENV)/.stamp-base
	$(PY) -m pytest -q -ra

clean:
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	rm -rf .pytest_cache *.egg-info
