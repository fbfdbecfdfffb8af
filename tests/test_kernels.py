"""Every CPU kernel against its NumPy reference twin (SPEC section 6, item 4)."""
import itertools

import numpy as np
import pytest

from lifgrad import LIFConfig, LIFParams, lif_backward, lif_forward
from lifgrad import surrogates as sgs
from lifgrad.check import MODELS, TOL_KERNEL, kernel_vs_reference, model_config
from lifgrad.kernels import cpu
from lifgrad import reference

RESETS = ("subtract", "zero", "none")
ALL = sgs.names()


def test_kernels_have_reference_twins_with_same_signature():
    import inspect
    for name in ("cell_forward_scan", "cell_backward_scan", "cell_forward_recurrent",
                 "cell_backward_recurrent"):
        ref = inspect.signature(getattr(reference, name))
        ker = inspect.signature(getattr(cpu, name))
        assert list(ref.parameters) == list(ker.parameters)
    # the compiled scans behind them take the same arguments and a task range
    from lifgrad.kernels import scan_kernels
    for name, compiled in (("cell_forward_scan", "_forward_tasks"),
                           ("cell_backward_scan", "_backward_tasks")):
        ref = list(inspect.signature(getattr(reference, name)).parameters)
        ker = list(inspect.signature(getattr(scan_kernels, compiled).py_func).parameters)
        assert ker == ref + ["task0", "task1"]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reset,detach,strict", list(itertools.product(RESETS, (False, True), (False, True))))
@pytest.mark.parametrize("surrogate", ALL)
def test_backward_cpu_matches_reference(reset, detach, strict, surrogate, dtype):
    cfg = LIFConfig(reset=reset, detach_reset=detach, strict=strict, surrogate=sgs.get(surrogate))
    errs = kernel_vs_reference(cfg, dtype=dtype, gamma_free=(reset == "subtract"), T=12, B=4, N=21)
    assert max(errs.values()) <= TOL_KERNEL[dtype], errs


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reset,detach", list(itertools.product(RESETS, (False, True))))
@pytest.mark.parametrize("surrogate", [f.name for f in sgs.FAMILIES if f.G is not None])
def test_smooth_forward_cpu_matches_reference(reset, detach, surrogate, dtype):
    cfg = LIFConfig(reset=reset, detach_reset=detach, forward="smooth", surrogate=sgs.get(surrogate))
    errs = kernel_vs_reference(cfg, dtype=dtype, T=12, B=4, N=21)
    assert max(errs.values()) <= TOL_KERNEL[dtype], errs


def test_kernel_handles_more_neurons_than_one_block():
    # N spans several parallel blocks, including a partial one
    cfg = LIFConfig(surrogate=sgs.get("sigmoid"))
    errs = kernel_vs_reference(cfg, dtype="float64", T=5, B=3, N=cpu.BLOCK * 2 + 17)
    assert max(errs.values()) <= 1e-12


def test_kernel_comparison_detects_a_wrong_kernel(monkeypatch):
    """The comparison can fail: a kernel that ignores detach=False is caught."""
    orig = cpu.cell_backward_scan

    def broken(u, v, s, a, state0, dv, du, rec, have, static, t0, t1, P, mode, sg, *out):
        mode = mode[:3] + (1,) + mode[4:]              # force detach_reset
        return orig(u, v, s, a, state0, dv, du, rec, have, static, t0, t1, P, mode, sg, *out)
    monkeypatch.setattr(cpu, "cell_backward_scan", broken)
    errs = kernel_vs_reference(LIFConfig(surrogate=sgs.get("sigmoid")), dtype="float64")
    assert max(errs.values()) > 1e-3


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("model", [m for m in MODELS if m != "lif"])
@pytest.mark.parametrize("reset,detach,strict", list(itertools.product(RESETS, (False, True), (False, True))))
def test_model_kernels_match_reference(model, reset, detach, strict, dtype):
    for surrogate, fwd in (("sigmoid", "hard"), ("spike_operator", "hard"), ("gaussian", "smooth")):
        if fwd == "smooth" and strict:
            continue
        cfg = model_config(model, reset=reset, detach_reset=detach, strict=strict, forward=fwd,
                           surrogate=sgs.get(surrogate))
        errs = kernel_vs_reference(cfg, dtype=dtype, gamma_free=(reset == "subtract"),
                                   T=10, B=4, N=13)
        assert max(errs.values()) <= TOL_KERNEL[dtype], (surrogate, fwd, errs)


def test_strict_firing_matters_on_exact_hits():
    """With binary inputs and round numbers u == theta happens exactly (SPEC 2)."""
    I = np.array([0.5, 0.5, 0.0, 1.0])[:, None, None]  # u: 0.5, 1.0 (== theta), ...
    p = LIFParams(alpha=1.0, theta=1.0)
    for backend in ("reference", "cpu"):
        v, _ = lif_forward(I, p, LIFConfig(strict=False, backend=backend))
        vs, _ = lif_forward(I, p, LIFConfig(strict=True, backend=backend))
        assert v[:, 0, 0].tolist() == [0, 1, 0, 1]
        assert vs[:, 0, 0].tolist() == [0, 0, 0, 1]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("reset", RESETS)
def test_stochastic_forward_cpu_matches_reference(model, reset, dtype):
    """Bernoulli(G) spikes from the same uniform draws (T7)."""
    cfg = model_config(model, reset=reset, forward="stochastic", surrogate=sgs.get("sigmoid"))
    errs = kernel_vs_reference(cfg, dtype=dtype, gamma_free=(reset == "subtract"), T=10, B=4, N=13)
    assert max(errs.values()) <= TOL_KERNEL[dtype], errs


def test_stochastic_forward_is_seeded_and_fires_with_probability_G():
    I = np.zeros((4000, 1, 3)) + np.array([-1.0, 0.0, 0.5])      # u - theta = -2, -1, -0.5
    cfg = LIFConfig(reset="none", forward="stochastic", surrogate=sgs.get("sigmoid", k=2.0))
    p = LIFParams(alpha=0.0, theta=1.0)
    v1, _ = lif_forward(I, p, cfg, rng=np.random.default_rng(5))
    v2, _ = lif_forward(I, p, cfg, rng=np.random.default_rng(5))
    v3, _ = lif_forward(I, p, cfg, rng=np.random.default_rng(6))
    np.testing.assert_array_equal(v1, v2)
    assert not np.array_equal(v1, v3)
    want = 1 / (1 + np.exp(-2.0 * np.array([-2.0, -1.0, -0.5])))
    np.testing.assert_allclose(v1[:, 0].mean(axis=0), want, atol=4 * np.sqrt(0.25 / 4000))
    with pytest.raises(TypeError, match="rng: forward='stochastic' needs a numpy.random.Generator"):
        lif_forward(I, p, cfg)


def _layer_run(cfg, rng_seed=3, T=9, B=5, N=13, static=False, stochastic=False):
    rng = np.random.default_rng(rng_seed)
    I = rng.normal(0.4, 0.6, (B, N) if static else (T, B, N)).astype(np.float32)
    R = rng.integers(-2, 3, N) * 0.25 if cfg.recurrent == "one" else None
    p = LIFParams(alpha=rng.uniform(0.5, 0.95, N), theta=rng.uniform(0.8, 1.2, N),
                  alpha_s=np.full(N, 0.5), rho=np.full(N, 0.5), beta_a=np.full(N, 0.25), R=R)
    v, tr = lif_forward(I, p, cfg, u0=rng.normal(0, 0.3, (B, N)).astype(np.float32),
                        T=T if static else None, rng=np.random.default_rng(1))
    g = lif_backward(tr, p, cfg, dv=rng.normal(size=(T, B, N)).astype(np.float32),
                     du=rng.normal(size=(T, B, N)).astype(np.float32))
    return [tr.u, v] + [x for x in g if isinstance(x, np.ndarray)]


@pytest.mark.parametrize("model", ["lif", "synaptic", "adaptive", "recurrent-one"])
@pytest.mark.parametrize("variant", ["plain", "static", "stochastic"])
def test_narrow_layer_as_one_row_of_neurons_gives_the_same_bits(model, variant, monkeypatch):
    """A layer narrower than a block runs as one row of B*N neurons with tiled
    parameters: the same bits as one task per batch row."""
    from lifgrad import functional
    cfg = model_config(model, forward="stochastic" if variant == "stochastic" else "hard",
                       surrogate=sgs.get("sigmoid"))
    calls = []
    orig = cpu.cell_backward_scan

    def spy(u, *rest):
        calls.append(u.shape)
        return orig(u, *rest)
    monkeypatch.setattr(cpu, "cell_backward_scan", spy)
    rows = _layer_run(cfg, static=(variant == "static"))
    assert calls and calls[-1][1] == 1          # (T, 1, B*N): the row path ran
    monkeypatch.setattr(functional, "_row_of_neurons", lambda *a: False)
    tasks = _layer_run(cfg, static=(variant == "static"))
    assert calls[-1][1] == 5
    assert len(rows) == len(tasks) >= 5
    for a, b in zip(rows, tasks):
        assert np.array_equal(a, b)


def test_row_of_neurons_falls_back_for_arrays_that_cannot_be_viewed(monkeypatch):
    """An array whose batch and neuron axes cannot be merged without a copy
    (here every other batch row of a buffer) is passed on as it is: the scan
    runs per batch row rather than writing into a copy."""
    from lifgrad import functional
    T, B, N = 6, 4, 7
    full = np.zeros((T, 2 * B, N), np.float32)
    assert functional._as_rows((full[:, ::2],), B, N) is None
    ok = np.zeros((T, B, N), np.float32)
    assert functional._as_rows((ok, np.zeros((1, 1, 1))), B, N)[0].shape == (T, 1, B * N)
    seen = []
    monkeypatch.setattr(cpu, "cell_forward_scan", lambda I, *rest: seen.append(rest[-4].shape))
    cfg = LIFConfig()
    P = LIFParams().packed(N, np.float32, cfg)
    d = np.zeros((1, 1, 1), np.float32)
    st0 = np.zeros((3, B, N), np.float32)
    functional.forward_scan(cfg, ok, False, 0, T, st0, P, d, ok, ok.astype(np.uint8), d, d)
    functional.forward_scan(cfg, ok, False, 0, T, st0, P, d, full[:, ::2],
                            ok.astype(np.uint8), d, d)
    assert seen == [(T, 1, B * N), (T, B, N)]


def test_row_of_neurons_only_below_half_a_block():
    from lifgrad import functional
    from lifgrad.kernels.cpu import BLOCK
    cfg = LIFConfig()
    assert functional._row_of_neurons(cfg, 8, 10)
    assert functional._row_of_neurons(cfg, 8, BLOCK // 2 - 1)
    assert not functional._row_of_neurons(cfg, 8, BLOCK // 2)
    assert not functional._row_of_neurons(cfg, 1, 10)                       # one batch row
    assert not functional._row_of_neurons(LIFConfig(backend="reference"), 8, 10)
