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


def _tiny():
    cfg = LIFConfig(reset="subtract", surrogate="sigmoid")
    return Sequential([Dense(3, 2, cfg, alpha=0.8, theta=0.5)], dtype="float64", seed=0)


def _count_loss(target):
    def loss(v, u, y):
        d = v.sum(axis=0) - target
        return losses.Loss(0.5 * float(np.sum(d ** 2)), np.broadcast_to(d, v.shape).copy(), None)

    def of_spikes(S):
        return 0.5 * np.sum((S.sum(axis=0) - target) ** 2, axis=1)
    return loss, of_spikes


@pytest.mark.parametrize("baseline", [True, False])
def test_reinforce_is_unbiased_for_the_exactly_enumerated_expected_loss(baseline):
    """Mean of the score-function estimator vs finite differences of the exact
    expectation over all 2^(T N) spike trains, within 4 standard errors (T9)."""
    net = _tiny()
    x = np.array([0.5, 1.0, 0.2])
    T = 4
    loss, of_spikes = _count_loss(np.array([2.0, 1.0]))
    fd = theory.expected_loss_gradient(net, x, of_spikes, T)
    n = 4000
    res, samples = theory.reinforce(net, x[None], None, loss, T=T, n_samples=n,
                                    rng=np.random.default_rng(1), baseline=baseline,
                                    keep_samples=True)
    se = np.std([g["layer0.W"] for g in samples], axis=0, ddof=1) / np.sqrt(n)
    assert np.all(np.abs(res.mean["layer0.W"] - fd) < 4 * se + 1e-12), (res.mean["layer0.W"], fd, se)
    assert np.linalg.norm(fd) > 0.1


def test_reinforce_baseline_reduces_variance():
    net = _tiny()
    loss, _ = _count_loss(np.array([2.0, 1.0]))
    x = np.array([[0.5, 1.0, 0.2]])
    with_b = theory.reinforce(net, x, None, loss, T=8, n_samples=400, rng=np.random.default_rng(2))
    without = theory.reinforce(net, x, None, loss, T=8, n_samples=400, rng=np.random.default_rng(2),
                               baseline=False)
    assert with_b.variance["layer0.W"] < without.variance["layer0.W"]


def test_score_of_the_sigmoid_family_is_k_times_v_minus_p():
    s = sgs.get("sigmoid", k=3.0)
    u = np.linspace(-2, 3, 11)
    v = (np.arange(11) % 2).astype(float)
    np.testing.assert_allclose(theory.score(u, v, 0.5, s), 3.0 * (v - s.G(u - 0.5)), rtol=1e-13)
    # the general formula (v - p) g / (p (1 - p)) gives the same for a generic family
    g = sgs.get("gaussian", sigma=0.7)
    p = g.G(u - 0.5)
    np.testing.assert_allclose(theory.score(u, v, 0.5, g), (v - p) * g.g(u - 0.5) / (p * (1 - p)),
                               rtol=1e-12)


def test_expected_loss_enumeration_refuses_big_or_deep_networks():
    net = Sequential([Dense(3, 5, LIFConfig(surrogate="sigmoid"))])
    with pytest.raises(ValueError, match="at most 16"):
        theory.expected_loss_exact(net, np.ones(3), lambda S: S.sum(axis=(0, 2)), T=4)
    deep = Sequential([Dense(3, 2), Dense(2, 2)])
    with pytest.raises(ValueError, match="exactly one spiking layer"):
        theory.expected_loss_exact(deep, np.ones(3), lambda S: S.sum(axis=(0, 2)), T=2)


def test_estimator_comparison_table():
    rows, exact = theory.compare_estimators(n_samples=600)
    by = {r[0].split(",")[0].split(" (")[0]: r for r in rows}
    assert len(rows) == len(theory.COMPARE_SURROGATES) + 3
    rf = [r for r in rows if r[0].startswith("REINFORCE with baseline")][0]
    assert rf[1] > 0.99 and rf[3] > 0                        # unbiased but noisy
    for r in rows:
        if not r[0].startswith("REINFORCE"):
            assert r[3] == 0.0                               # deterministic
        assert -1.0 <= r[1] <= 1.0
    assert by["spike_operator"][1] < rf[1]
    from lifgrad import cli
    assert cli.main(["theory", "compare", "--samples", "50", "--json"]) == 0


def test_calibration_warns_when_the_subtract_reset_can_explode_the_adjoint():
    net = _deep()
    x = np.random.default_rng(4).uniform(0, 1, (10, 8, 20))
    with pytest.warns(UserWarning, match="geometrically in time"):
        theory.calibrate(net, x, c=50.0)
    det = net.replace_configs(lambda i, l, c: c.replace(detach_reset=True))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        theory.calibrate(det, x, c=50.0)


def test_measured_calibration_brings_every_rho_to_one_with_a_detached_reset():
    cfg = LIFConfig(surrogate="atan", detach_reset=True)
    sizes = [20] + [40] * 6 + [5]
    net = Sequential([Dense(a, b, cfg, alpha=0.9) for a, b in zip(sizes[:-1], sizes[1:])],
                     dtype="float64", seed=2)
    for k in net.params:
        if k.endswith(".W"):
            net.params[k] = net.params[k] * 2.5
    x = np.random.default_rng(5).uniform(0, 1, (10, 8, 20))
    C = np.random.default_rng(6).normal(size=(10, 8, 5))
    before = theory.gradient_flow(net, x, du=C)
    cal = theory.calibrate_measured(net, x, du=C, n_iter=2)
    after = theory.gradient_flow(cal, x, du=C)
    np.testing.assert_allclose(after.rho, 1.0, rtol=1e-6)
    assert max(before.error_norm) / min(before.error_norm) > 2     # there was something to fix
    assert max(abs(r - 1) for r in before.rho) > 0.2


def test_unstable_reset_warning_reads_gamma_as_a_factor_with_reset_by_threshold():
    """With reset_by_threshold (M7) the reset removes k theta_t: gamma = k = 0.9
    at theta 5 is a strength of 4.5, which with max g = 2 exceeds 1 + alpha;
    the same gamma as an absolute strength (0.9 * 2 < 1.9) does not."""
    import warnings
    from types import SimpleNamespace

    from lifgrad import surrogates as sgs
    from lifgrad.config import LIFConfig, LIFParams
    from lifgrad.theory import _warn_unstable_reset
    sg = sgs.get("fast_sigmoid", scale=2.0)          # max g = 2
    assert abs(float(np.max(sg.phi(np.linspace(-3, 3, 601)))) - 2.0) < 1e-12

    def net(**cfg):
        layer = SimpleNamespace(readout=False,
                                config=LIFConfig(reset="subtract", surrogate=sg, **cfg),
                                neuron=LIFParams(alpha=0.9, theta=5.0, gamma=0.9))
        return SimpleNamespace(layers=[layer])
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        _warn_unstable_reset(net())
    assert not w
    with pytest.warns(UserWarning, match="grow geometrically"):
        _warn_unstable_reset(net(reset_by_threshold=True))
