"""The membrane bias b_u (``LIFParams(u_bias=...)``, Rockpool's LIFTorch/LIFJax
``bias``), derivations/variants.md (M6):

    u_t = alpha u_{t-1} + c s_t + b_u - gamma v_{t-1}   (zero and no reset likewise)
    dL/db_u = sum_t ubar_t

in the reference, the CPU kernels and the CUDA kernels (on the simulator when
there is no GPU: tiny problems), against central differences in float64 (the
smooth forward), zero bias bit for bit as the cell without it, and learned by
a network layer."""
import numpy as np
import pytest

from lifgrad import LIFConfig, LIFParams, lif_backward, lif_forward
from lifgrad import surrogates as sgs
from lifgrad.check import (TOL_FD, TOL_KERNEL, fd_layer, fd_network, fd_zero_surrogate,
                           kernel_vs_reference)
from lifgrad.network import Dense, Sequential

CELLS = {
    "plain": {},
    "synaptic": dict(synaptic=True),
    "decay-input": dict(synaptic=True, decay_input=True),
    "norm-input": dict(norm_input=True),
    "synaptic-norm-input-adaptive": dict(synaptic=True, norm_input=True, adaptive=True),
    "one-to-one": dict(recurrent="one", synaptic=True),
    "all-to-all": dict(recurrent="all"),
    "all-to-all-synaptic-adaptive": dict(recurrent="all", synaptic=True, adaptive=True),
}
MULTI = {
    "multi-spike": dict(max_spikes=3),
    "multi-spike-rockpool": dict(synaptic=True, decay_input=True, max_spikes=5,
                                 theta_grad="ratio"),
    "multi-spike-all-to-all": dict(max_spikes=None, recurrent="all", norm_input=True),
}
RESETS = ("subtract", "zero", "none")


def _configs(names, resets=RESETS, **kw):
    out = []
    for name, ckw in names.items():
        for reset in resets:
            try:
                out.append(pytest.param(LIFConfig(reset=reset, **ckw, **kw), id=f"{name}-{reset}"))
            except ValueError:          # several spikes and a zero reset
                pass
    return out


# --------------------------------------------------------------------------
# kernels against the reference
# --------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("cfg", _configs({**CELLS, **MULTI}))
def test_cpu_kernels_match_reference(cfg, dtype):
    for strict, fwd in ((False, "hard"), (True, "hard"), (False, "smooth")):
        try:
            c = cfg.replace(strict=strict, forward=fwd, surrogate=sgs.get("sigmoid"))
        except ValueError:              # several spikes need the hard forward
            continue
        errs = kernel_vs_reference(c, dtype=dtype, gamma_free=True, T=10, B=4, N=21,
                                   u_bias=0.4, backend="cpu")
        assert "u_bias" in errs
        assert max(errs.values()) <= TOL_KERNEL[dtype], (strict, fwd, errs)


CUDA_CASES = [pytest.param(LIFConfig(reset=r, **kw), id=f"{n}-{r}") for n, kw, r in (
    ("plain", {}, "subtract"), ("synaptic", CELLS["synaptic"], "zero"),
    ("decay-input", CELLS["decay-input"], "none"), ("norm-input", CELLS["norm-input"], "zero"),
    ("one-to-one", CELLS["one-to-one"], "subtract"),
    ("all-to-all", CELLS["all-to-all-synaptic-adaptive"], "zero"),
    ("multi-spike", MULTI["multi-spike-rockpool"], "subtract"),
    ("multi-spike-all-to-all", MULTI["multi-spike-all-to-all"], "none"))]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("cfg", CUDA_CASES)
def test_cuda_kernels_match_reference(cfg, dtype):
    """On a GPU, or on Numba's CUDA simulator (one Python thread per CUDA
    thread: a tiny problem)."""
    from lifgrad.backends import available
    if not available():
        pytest.skip("no CUDA device and no CUDA simulator")
    c = cfg.replace(surrogate=sgs.get("sigmoid"), strict=True)
    errs = kernel_vs_reference(c, dtype=dtype, gamma_free=True, T=6, B=2, N=7, u_bias=0.4,
                               backend="cuda")
    assert "u_bias" in errs
    assert max(errs.values()) <= TOL_KERNEL[dtype], errs


def test_the_bias_reaches_the_kernels():
    """A non-zero bias changes u and has a non-zero gradient on every backend
    (else the comparisons above would compare nothing)."""
    rng = np.random.default_rng(0)
    I = rng.normal(0.3, 0.5, (8, 2, 5))
    cfg = LIFConfig(synaptic=True, surrogate="sigmoid")
    for be in ("reference", "cpu"):
        c = cfg.replace(backend=be)
        _, tr0 = lif_forward(I, LIFParams(), c)
        _, tr1 = lif_forward(I, LIFParams(u_bias=np.full(5, 0.25)), c)
        assert not np.array_equal(tr0.u, tr1.u)
        g = lif_backward(tr1, LIFParams(u_bias=np.full(5, 0.25)), c, du=np.ones_like(I))
        assert np.all(g.u_bias != 0)


# --------------------------------------------------------------------------
# the mathematics
# --------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_closed_form_of_a_silent_neuron(backend):
    """No spikes, no input: u_t = alpha u_{t-1} + b (Rockpool's vmem = alpha vmem
    + isyn + bias with isyn = 0), so u_t = b (1 - alpha^(t+1)) / (1 - alpha);
    with L = sum_t u_t, dL/db = sum_t ubar_t, ubar_t = sum_{k >= t} alpha^(k-t).
    The synapse does not filter it: the synaptic cell gives the same u."""
    T, a, b = 6, 0.75, 0.5
    t = np.arange(T)
    want_u = b * (1 - a ** (t + 1)) / (1 - a)
    ubar = np.array([sum(a ** (k - j) for k in range(j, T)) for j in range(T)])
    for syn in (False, True):
        cfg = LIFConfig(synaptic=syn, decay_input=syn, surrogate="zero", backend=backend)
        p = LIFParams(alpha=a, theta=100.0, u_bias=b, alpha_s=0.5)
        _, tr = lif_forward(np.zeros((T, 1, 1)), p, cfg)
        np.testing.assert_allclose(tr.u[:, 0, 0], want_u, rtol=1e-15)
        g = lif_backward(tr, p, cfg, du=np.ones((T, 1, 1)))
        assert np.ndim(g.u_bias) == 0                  # shaped like the value given
        np.testing.assert_allclose(g.u_bias, ubar.sum(), rtol=1e-14)
        if not syn:                                    # dL/dI_t = ubar_t (A13)
            np.testing.assert_allclose(g.I[:, 0, 0], ubar, rtol=1e-14)


@pytest.mark.parametrize("cfg", _configs(CELLS, forward="smooth",
                                         surrogate=sgs.get("sigmoid")))
def test_finite_differences_smooth_forward(cfg):
    """Every parameter, u_bias among them, against central differences of
    check.naive_forward (written apart from the scans), float64."""
    for detach in (False, True):
        errs = fd_layer(cfg.replace(detach_reset=detach), seed=21,
                        gamma_free=cfg.reset == "subtract", u_bias=0.3)
        assert "u_bias" in errs
        assert max(errs.values()) <= TOL_FD, (detach, errs)


def test_finite_differences_see_a_wrong_bias_gradient(monkeypatch):
    """The check fails when the partial sum of (M6) misses one step's ubar_t,
    and passes with the reference as it is."""
    from lifgrad import reference
    cfg = LIFConfig(synaptic=True, forward="smooth", surrogate="sigmoid", backend="reference")
    assert fd_layer(cfg, seed=13, u_bias=0.3)["u_bias"] <= TOL_FD
    original = reference.cell_backward_scan

    def shifted(u, v, s, a, state0, dv, du, rec, have, static, t0, t1, P, mode, sg, dI, acc,
                adj, dstate0):
        original(u, v, s, a, state0, dv, du, rec, have, static, t0, t1, P, mode, sg, dI, acc,
                 adj, dstate0)
        # dI_t = ubar_t here (c = 1): replace sum_t ubar_t by sum_{t>=1} ubar_t
        acc[reference.ACC_UBIAS] -= dI[0] if not static else 0
    monkeypatch.setattr(reference, "cell_backward_scan", shifted)
    cfg = cfg.replace(synaptic=False)
    assert fd_layer(cfg, seed=13, u_bias=0.3)["u_bias"] > 1e-3


@pytest.mark.parametrize("cfg", _configs(MULTI))
def test_finite_differences_zero_surrogate_several_spikes(cfg):
    """Several spikes per step (hard forward only): the zero surrogate's
    adjoint is the exact gradient between count changes."""
    errs, _ = fd_zero_surrogate(cfg, seed=5, gamma_free=cfg.reset == "subtract", u_bias=0.3)
    assert max(errs.values()) <= TOL_FD, errs


@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("reset", RESETS)
def test_finite_differences_of_lif_forward_itself(backend, reset):
    """Central differences of lifgrad's own smooth forward (not the naive one)
    in a scalar and a per-neuron bias, float64."""
    rng = np.random.default_rng(7)
    T, B, N = 10, 2, 4
    I = rng.normal(0.3, 0.5, (T, B, N))
    A, C = rng.normal(size=(T, B, N)), rng.normal(size=(T, B, N))
    cfg = LIFConfig(reset=reset, synaptic=True, recurrent="all", forward="smooth",
                    surrogate="sigmoid", backend=backend)
    R = rng.normal(0, 0.3, (N, N))
    for b0 in (0.2, rng.normal(0, 0.3, N)):
        def loss(b):
            v, tr = lif_forward(I, LIFParams(alpha=0.8, theta=0.9, u_reset=0.1, R=R, u_bias=b),
                                cfg)
            return float(np.sum(A * v) + np.sum(C * tr.u))

        p = LIFParams(alpha=0.8, theta=0.9, u_reset=0.1, R=R, u_bias=b0)
        _, tr = lif_forward(I, p, cfg)
        g = lif_backward(tr, p, cfg, dv=A, du=C)
        assert np.shape(g.u_bias) == np.shape(b0)
        d = np.ones_like(b0) if np.ndim(b0) else 1.0
        d = d / np.linalg.norm(d)
        h = 1e-5
        fd = (8 * (loss(b0 + h * d) - loss(b0 - h * d))
              - (loss(b0 + 2 * h * d) - loss(b0 - 2 * h * d))) / (12 * h)
        an = float(np.sum(g.u_bias * d))
        assert abs(fd - an) <= 1e-8 * max(1.0, abs(an)), (fd, an)


# --------------------------------------------------------------------------
# zero bias: the cell without it, bit for bit
# --------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_zero_bias_is_the_cell_without_it(backend, dtype):
    rng = np.random.default_rng(3)
    T, B, N = 12, 3, 6
    I = rng.normal(0.4, 0.6, (T, B, N)).astype(dtype)
    dv = rng.normal(size=I.shape).astype(dtype)
    alpha, theta = np.float64(0.8), np.float64(0.9)
    for reset in RESETS:
        cfg = LIFConfig(reset=reset, surrogate="sigmoid", backend=backend)
        runs = []
        for p in (LIFParams(alpha, theta, u_reset=0.125), LIFParams(alpha, theta, u_reset=0.125,
                                                                    u_bias=0.0),
                  LIFParams(alpha, theta, u_reset=0.125, u_bias=np.zeros(N))):
            v, tr = lif_forward(I, p, cfg)
            g = lif_backward(tr, p, cfg, dv=dv)
            runs.append((v, tr.u, g))
        for v, u, g in runs[1:]:
            np.testing.assert_array_equal(v, runs[0][0])
            np.testing.assert_array_equal(u, runs[0][1])
            for k, val in g._asdict().items():
                if val is not None and k != "u_bias":      # (u_bias: shaped like the value)
                    np.testing.assert_array_equal(val, getattr(runs[0][2], k), err_msg=k)
        np.testing.assert_array_equal(runs[1][2].u_bias, runs[0][2].u_bias)
        assert runs[2][2].u_bias.shape == (N,)
        # the membrane of the bias-free recurrence, written out (same operations)
        a, th, ur = (np.asarray(x, dtype) for x in (alpha, theta, 0.125))
        up, vp = np.zeros((B, N), dtype), np.zeros((B, N), dtype)
        for t in range(T):
            if reset == "subtract":
                ut = a * up + I[t] - th * vp
            elif reset == "zero":
                ut = a * ((1 - vp) * up + vp * ur) + I[t]
            else:
                ut = a * up + I[t]
            np.testing.assert_array_equal(runs[0][1][t], ut)
            up, vp = ut, (ut - th >= 0).astype(dtype)
        # the bias's gradient of a plain cell is the time and batch sum of dL/dI (M6)
        np.testing.assert_allclose(runs[2][2].u_bias, runs[2][2].I.sum(axis=(0, 1)),
                                   rtol=1e-12 if dtype == "float64" else 1e-4, atol=1e-12)


# --------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------

def test_bad_bias_is_refused_by_name():
    I = np.ones((3, 2, 4))
    with pytest.raises(ValueError, match="u_bias: contains NaN or Inf"):
        lif_forward(I, LIFParams(u_bias=np.nan))
    with pytest.raises(ValueError, match="u_bias: contains NaN or Inf"):
        lif_forward(I, LIFParams(u_bias=np.array([0.0, np.inf, 0.0, 0.0])))
    with pytest.raises(ValueError, match=r"u_bias: expected a scalar or shape \(4,\), got shape"):
        lif_forward(I, LIFParams(u_bias=np.zeros(5)))
    with pytest.raises(ValueError, match=r"u_bias: expected a scalar or shape \(4,\)"):
        lif_forward(I, LIFParams(u_bias=np.zeros((2, 4))))
    with pytest.raises(TypeError, match="u_bias: expected a real number"):
        lif_forward(I, LIFParams(u_bias="0.5"))
    with pytest.raises(ValueError, match="u_bias: contains NaN"):
        Dense(3, 4, u_bias=np.nan)
    _, tr = lif_forward(I, LIFParams(u_bias=0.1))
    with pytest.raises(ValueError, match="u_bias: contains NaN"):
        lif_backward(tr, LIFParams(u_bias=np.nan), dv=np.ones_like(I))
    assert lif_forward(I, {"u_bias": 0.5})[1].u[0, 0, 0] == 1.5      # a dict of fields


# --------------------------------------------------------------------------
# a network layer learns it
# --------------------------------------------------------------------------

def test_dense_layer_declares_u_bias():
    cfg = LIFConfig(synaptic=True)
    layer = Dense(3, 4, cfg, learn=("u_bias",), u_bias=np.arange(4) * 0.1)
    assert "u_bias" in layer.param_names() and layer.partials
    net = Sequential([layer, Dense(4, 2, learn=("u_bias",))], seed=0, dtype="float64")
    np.testing.assert_array_equal(net.params["layer0.u_bias"], np.arange(4) * 0.1)
    np.testing.assert_array_equal(net.params["layer1.u_bias"], np.zeros(2))   # default 0
    assert not Dense(3, 4).partials


@pytest.mark.parametrize("model,static,learn", [
    ("synaptic", False, ("u_bias",)),
    ("lif", True, ("u_bias", "alpha")),
    ("recurrent-all", False, ("u_bias", "theta")),
])
def test_network_gradient_matches_finite_differences(model, static, learn):
    """Smooth forward, float64: every parameter of a network whose layers
    learn u_bias (started at 0.15) against central differences."""
    errs = fd_network(model=model, static=static, learn=learn, u_bias=0.15)
    assert any(k.endswith(".u_bias") for k in errs)
    assert max(errs.values()) <= TOL_FD, errs


def _bias_net(dtype="float64"):
    cfg = LIFConfig(synaptic=True, surrogate="sigmoid")
    rng = np.random.default_rng(1)
    layers = [Dense(5, 6, cfg, learn=("u_bias",), u_bias=rng.normal(0, 0.2, 6)),
              Dense(6, 3, LIFConfig(surrogate="atan", recurrent="all"),
                    learn=("u_bias", "alpha"), u_bias=0.1)]
    net = Sequential(layers, seed=4, dtype=dtype)
    net.params["layer0.W"] = net.params["layer0.W"] * 3
    return net


def test_network_checkpointed_gradient_is_bitwise_the_full_one():
    net = _bias_net()
    rng = np.random.default_rng(2)
    x = (rng.uniform(size=(9, 4, 5)) < 0.5) * 1.0
    du = rng.normal(size=(9, 4, 3))
    _, tr = net.forward(x)
    g = net.backward(tr, du=du)
    _, trk = net.forward(x, checkpoint_every=1)
    gk = net.backward(trk, du=du)
    assert sorted(g) == sorted(gk) and "layer0.u_bias" in g and "layer1.u_bias" in g
    for k in g:
        np.testing.assert_array_equal(g[k], gk[k], err_msg=k)
    assert np.all(g["layer0.u_bias"] != 0)


def test_device_network_learns_u_bias():
    from lifgrad.device import DeviceNetwork, available
    if not available():
        pytest.skip("no CUDA device and no CUDA simulator")
    net = _bias_net()
    rng = np.random.default_rng(2)
    x = (rng.uniform(size=(4, 2, 5)) < 0.5) * 1.0
    du = rng.normal(size=(4, 2, 3))
    out, tr = net.forward(x)
    g = net.backward(tr, du=du)
    dev = DeviceNetwork(net)
    dtr = dev.forward(x)
    np.testing.assert_array_equal(dev.output(dtr)[0], out)
    dg = dev.backward(dtr, du=du)
    assert sorted(dg) == sorted(g)
    for k in g:
        got = dg[k].copy_to_host()
        assert float(np.max(np.abs(got - g[k]))) <= 1e-12 * max(np.max(np.abs(g[k])), 1e-30), k


def test_nir_export_refuses_a_bias():
    pytest.importorskip("nir")
    from lifgrad import nir as lnir
    cfg = LIFConfig(reset="zero", strict=True)
    net = Sequential([Dense(3, 2, cfg, learn=("u_bias",), u_bias=0.5)], seed=0)
    with pytest.raises(ValueError, match="membrane bias"):
        lnir.export(net)
