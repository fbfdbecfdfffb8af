# lifgrad: two commands.  `make demo` runs the main job, `make test` the tests.
# Both create .venv and install what they need (nothing else is assumed).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
# No thread variables: lifgrad runs its kernels and products on its own threads
# (lifgrad/parallel.py), whatever the environment, and its results do not
# depend on their number.

.PHONY: demo test check bench clean venv peers fashion-mnist

$(VENV)/.stamp-base: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -e ".[dev,sweep]"
	touch $@

# The CPU kernels compiled ahead of time for this machine (lifgrad/kernels/aot.py,
# about 100 s): afterwards no run compiles anything and Numba is not loaded on
# the CPU path.  Rebuilt when a kernel source changes; without it lifgrad
# compiles just in time (and says so).
KERNEL_SOURCES := lifgrad/kernels/scan_kernels.py lifgrad/kernels/ops_kernels.py \
                  lifgrad/kernels/constants.py lifgrad/kernels/aot.py lifgrad/surrogates.py
$(VENV)/.stamp-kernels: $(VENV)/.stamp-base $(KERNEL_SOURCES)
	$(PY) -m lifgrad.kernels.aot
	$(PY) -m lifgrad.kernels.calibrate
	touch $@

venv: $(VENV)/.stamp-kernels

demo: $(VENV)/.stamp-kernels
	$(VENV)/bin/lifgrad demo

check: $(VENV)/.stamp-kernels
	$(VENV)/bin/lifgrad check

# The peer frameworks (tests and lifgrad.verify only): torch exactly 2.13.0 (a
# CPU build is on the machine; any other spec pulls gigabytes of CUDA wheels),
# then the frameworks without their dependency pins, then what they import.
$(VENV)/.stamp-peers: $(VENV)/.stamp-base
	$(PIP) install "torch==2.13.0"
	$(PIP) install --no-deps "snntorch==1.0.0" "spikingjelly==2.0.0" "norse==1.1.0" "nirtorch==2.6" \
	  "sinabs==3.1.3" "rockpool==3.1.0" "spyx==1.0.0"
	$(PIP) install "nir==1.0.8" h5py loguru tqdm pbr
	# JAX for Rockpool's LIFJax and Spyx: PyPI's jaxlib is the CPU build (no CUDA plugin)
	$(PIP) install "jax==0.10.2" "jaxlib==0.10.2" "flax==0.12.8" "grain==0.2.18" "jax-tqdm==0.4.0"
	$(PIP) install "numba-cuda==0.30.4"    # the CUDA kernels (tests run them on the simulator)
	touch $@

peers: $(VENV)/.stamp-peers

# Fashion-MNIST for the tests that need it: Debian's package, when apt-get is
# available and we may use it; otherwise those tests skip with the reason.
fashion-mnist:
	@if [ -d /usr/share/datasets/fashion-mnist ]; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null 2>&1 \
	  || echo "note: could not install dataset-fashion-mnist; its tests will skip"; \
	else echo "note: apt-get unavailable; Fashion-MNIST tests will skip"; fi

test: $(VENV)/.stamp-kernels $(VENV)/.stamp-peers fashion-mnist
	$(PY) -m pytest -q -ra

clean:
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	rm -rf .pytest_cache *.egg-info lifgrad/kernels/_compiled*.so lifgrad/kernels/_compiled.json
	rm -f $(VENV)/.stamp-kernels
