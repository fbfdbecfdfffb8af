"""Theory tools: mismatch bias, gradient flow, calibration (SPEC section 7)."""
import numpy as np
import pytest

from lifgrad import LIFConfig, losses, theory
from lifgrad import surrogates as sgs
from lifgrad.network import Dense, Readout, Sequential


def _memoryless(surrogate="sigmoid", seed=0):
    cfg = LIFConfig(reset="none", surrogate=surrogate)
    net = Sequential([Dense(5, 4, cfg, alpha=0.0, theta=0.2)], dtype="float64", seed=seed)
    net.params["layer0.W"] *= 3
    return net


def test_mismatch_bias_vanishes_for_a_loss_linear_in_the_spikes():
    net = _memoryless()
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (1, 16, 5))
    A = rng.normal(size=(1, 16, 4))
    lin = lambda v, u, y: losses.Loss(float(np.sum(A * v)), A, None)   # noqa: E731
    rep = theory.mismatch_bias(net, x, None, lin)
    for k in rep.surrogate:
        np.testing.assert_allclose(rep.surrogate[k], rep.smooth[k], rtol=1e-13, atol=1e-15)
    assert rep.cosine_all == pytest.approx(1.0, abs=1e-12)


def test_mismatch_bias_matches_the_closed_expression_for_a_quadratic_loss():
    """bias = sum_b (H(u) - G(u)) g(u) x for L = 1/2 sum (s - c)^2 (SPEC 7)."""
    net = _memoryless()
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (1, 32, 5))
    c = rng.uniform(0, 1, (1, 32, 4))
    quad = lambda v, u, y: losses.Loss(0.5 * float(np.sum((v - c) ** 2)), v - c, None)  # noqa: E731
    rep = theory.mismatch_bias(net, x, None, quad)
    W, b = net.params["layer0.W"], net.params["layer0.b"]
    u = x[0] @ W.T + b
    s = sgs.get("sigmoid")
    H = (u - 0.2 >= 0).astype(float)
    G = s.G(u - 0.2)
    g = s.g(u - 0.2)
    bias_W = ((H - G) * g).T @ x[0]
    np.testing.assert_allclose(rep.surrogate["layer0.W"] - rep.smooth["layer0.W"], bias_W,
                               rtol=1e-12, atol=1e-14)
    assert np.linalg.norm(bias_W) > 1e-2 and rep.cosine["layer0.W"] < 1.0


def test_mismatch_bias_needs_primitives():
    net = Sequential([Dense(3, 2, LIFConfig(surrogate="straight_through"))])
    with pytest.raises(ValueError, match="has no primitive"):
        theory.mismatch_bias(net, np.ones((2, 1, 3)), np.zeros(1, int), "ce_membrane")


def _deep(scale_w=3.0, depth=6):
    cfg = LIFConfig(surrogate="fast_sigmoid")
    sizes = [20] + [40] * depth + [5]
    net = Sequential([Dense(a, b, cfg, alpha=0.9) for a, b in zip(sizes[:-1], sizes[1:])],
                     dtype="float64", seed=2)
    for k in net.params:
        if k.endswith(".W"):
            net.params[k] = net.params[k] * scale_w
    return net


def test_gradient_flow_measures_error_norms_of_the_backward_pass():
    net = _deep()
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1, (10, 8, 20))
    C = rng.normal(size=(10, 8, 5))
    f = theory.gradient_flow(net, x, du=C)
    rec = {}
    _, tr = net.forward(x)
    net.backward(tr, du=C, record=rec)
    for i, n in enumerate(f.error_norm):
        assert n == pytest.approx(np.mean(np.linalg.norm(rec[i].reshape(-1, rec[i].shape[-1]), axis=1)))
    assert f.rho[2] == pytest.approx(f.error_norm[2] / f.error_norm[3])
    W3 = net.params["layer3.W"]
    assert f.weight_norm[2] == pytest.approx(np.linalg.svd(W3, compute_uv=False)[0])
    assert all(p > 0 for p in f.predicted)


def test_calibrate_sets_the_amplitudes_of_the_rule():
    net = _deep()
    x = np.random.default_rng(4).uniform(0, 1, (10, 8, 20))
    f = theory.gradient_flow(net, x, du=np.ones((10, 8, 5)))
    cal = theory.calibrate(net, x, c=0.5)
    for i in range(len(net.layers) - 1):
        s = cal.layers[i].config.surrogate.scale
        assert s == pytest.approx(0.5 / (f.weight_norm[i] * f.mean_abs_g[i]), rel=1e-12)
    assert cal.layers[-1].config.surrogate.scale == 1.0
    assert net.layers[0].config.surrogate.scale == 1.0          # original untouched
    f2 = theory.gradient_flow(cal, x, du=np.ones((10, 8, 5)))
    np.testing.assert_allclose(f2.predicted, 0.5, rtol=1e-9)
