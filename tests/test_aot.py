"""lifgrad.kernels.aot: the kernels compiled ahead of time, and Numba's JIT as
the fallback -- same bits either way, no Numba in a training process when the
compiled module is there, a stale or missing build handled openly."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import lifgrad
from lifgrad import LIFConfig
from lifgrad.kernels import aot
from lifgrad.network import Dense, Readout, Sequential

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(lifgrad.__file__)))
needs_build = pytest.mark.skipif(
    aot.compiled() is None, reason="the ahead-of-time kernels are not built for these sources "
                                   "(`python -m lifgrad.kernels.aot`, run by `make`)")


def test_every_compiled_kernel_has_its_jit_source_and_the_hash_covers_the_sources():
    names = [n for n, _, _ in aot._exports()]
    assert len(names) == len(set(names))
    for name, fn, sig in aot._exports():
        assert hasattr(fn, "py_func"), name
        assert name.split("__")[0] == fn.py_func.__name__
    for src in aot.SOURCES:
        assert os.path.exists(os.path.join(aot.HERE, src)), src


@needs_build
def test_training_step_does_not_import_numba_with_the_compiled_kernels():
    code = textwrap.dedent("""
        import sys, numpy as np
        import lifgrad
        from lifgrad.network import Dense, Sequential
        from lifgrad import losses, optim
        net = Sequential([Dense(80, 300, lifgrad.LIFConfig(surrogate="atan")),
                          Dense(300, 4, lifgrad.LIFConfig(synaptic=True, adaptive=True))])
        x = (np.random.default_rng(0).random((12, 40, 80)) < 0.1).astype(np.float32)
        out, tr = net.forward(x)
        lo = losses.ce_membrane(None, tr.layers[-1].trace.u, np.zeros(40, int))
        optim.Adam(1e-3).step(net.params, net.backward(tr, du=lo.du))
        print("numba" in sys.modules)
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env={k: v for k, v in os.environ.items() if k != "LIFGRAD_KERNELS"},
                       timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "False"
    assert "compiling" not in p.stderr


def _run_models():
    """Forward and backward of small networks over every cell model, both
    dtypes, a smooth forward, all-to-all recurrence and event-driven products."""
    rng = np.random.default_rng(3)
    out = []
    cases = [
        ("float32", [Dense(70, 80, LIFConfig(surrogate="atan"), learn=("alpha", "theta")),
                     Dense(80, 65, LIFConfig(synaptic=True, adaptive=True, surrogate="sigmoid"),
                           learn=("alpha_s", "rho", "beta_a")),
                     Readout(65, 3)]),
        ("float64", [Dense(70, 20, LIFConfig(recurrent="one", reset="zero",
                                             surrogate="gaussian", forward="smooth")),
                     Dense(20, 9, LIFConfig(recurrent="all", surrogate="triangle"))]),
    ]
    for dtype, layers in cases:
        net = Sequential(layers, dtype=dtype, seed=1)
        x = (rng.random((9, 11, 70)) < 0.1).astype(dtype)
        o, tr = net.forward(x)
        g = net.backward(tr, dv=rng.normal(size=o.shape), need_input_grad=True)
        out += [o, tr.layers[0].trace.u] + [g[k] for k in sorted(g)]
    return out


@needs_build
def test_compiled_and_jit_kernels_give_the_same_bits(monkeypatch):
    compiled = _run_models()
    monkeypatch.setitem(aot._state, "module", None)          # the JIT, from the same source
    jit = _run_models()
    assert len(compiled) == len(jit) > 10
    for a, b in zip(compiled, jit):
        np.testing.assert_array_equal(a, b)


def test_a_stale_build_is_not_used_and_says_so(monkeypatch, capsys):
    monkeypatch.setitem(aot._state, "module", False)
    monkeypatch.setattr(aot, "source_hash", lambda: "edited since the build")
    monkeypatch.setenv("LIFGRAD_KERNELS", "auto")
    meta = os.path.join(aot.HERE, f"{aot.MODULE}.json")
    if os.path.exists(meta):
        assert aot.compiled() is None
        assert "not using the compiled kernels" in capsys.readouterr().err
    monkeypatch.setitem(aot._state, "module", False)
    monkeypatch.setenv("LIFGRAD_KERNELS", "aot")
    with pytest.raises(RuntimeError, match="LIFGRAD_KERNELS=aot: the compiled kernels cannot"):
        aot.compiled()
    monkeypatch.setitem(aot._state, "module", False)
    monkeypatch.setenv("LIFGRAD_KERNELS", "fast")
    with pytest.raises(ValueError, match="LIFGRAD_KERNELS: expected 'auto', 'aot' or 'jit'"):
        aot.compiled()
    monkeypatch.setitem(aot._state, "module", False)


@needs_build
def test_the_build_records_the_hash_of_its_sources():
    with open(os.path.join(aot.HERE, f"{aot.MODULE}.json")) as f:
        meta = json.load(f)
    assert meta["source_hash"] == aot.source_hash()
    assert meta["exports"] == len(aot._exports())


@needs_build
def test_arrays_that_are_not_contiguous_take_the_jit(monkeypatch):
    """The compiled copies take C-contiguous arrays only; any other layout goes
    to Numba's JIT (a compiled kernel would read such an array wrongly)."""
    T, B, N = 4, 3, 5
    u = np.zeros((T, 2 * B, N), np.float32)[:, ::2]
    ok = np.zeros((T, B, N), np.float32)
    mod = aot.compiled()
    assert aot.pick("_forward_tasks", "f4_u1", (ok,)) is getattr(mod, "_forward_tasks__f4_u1")
    assert aot.pick("_forward_tasks", "f4_u1", (u,)) is not getattr(mod, "_forward_tasks__f4_u1")
