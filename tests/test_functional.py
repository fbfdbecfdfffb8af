"""Behaviour of the functional API: purity, shapes, dtypes, conventions."""
import numpy as np
import pytest

from lifgrad import LIFConfig, LIFParams, lif_backward, lif_forward
from lifgrad import surrogates as sgs

RESETS = ("subtract", "zero", "none")


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_forward_does_not_mutate_inputs(rng, backend):
    I = rng.normal(0.5, 0.5, (10, 2, 3))
    alpha = np.array([0.5, 0.8, 0.9])
    u0 = rng.normal(size=(2, 3))
    dv = rng.normal(size=I.shape)
    copies = [a.copy() for a in (I, alpha, u0, dv)]
    cfg = LIFConfig(backend=backend)
    p = LIFParams(alpha=alpha)
    v, tr = lif_forward(I, p, cfg, u0=u0)
    trace_copy = [tr.u.copy(), tr.v.copy()]
    lif_backward(tr, p, cfg, dv=dv)
    for a, c in zip((I, alpha, u0, dv), copies):
        np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(tr.u, trace_copy[0])
    np.testing.assert_array_equal(tr.v, trace_copy[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_outputs_keep_input_dtype(rng, dtype, backend):
    """Spikes are stored in one byte (0 or 1); the smooth forward's v is real."""
    I = rng.normal(size=(5, 2, 3)).astype(dtype)
    cfg = LIFConfig(backend=backend)
    v, tr = lif_forward(I, LIFParams(), cfg)
    g = lif_backward(tr, LIFParams(), cfg, dv=np.ones(v.shape))
    assert v.dtype == np.uint8 and tr.v is v and set(np.unique(v)) <= {0, 1}
    assert tr.u.dtype == dtype and g.I.dtype == dtype
    assert g.alpha.dtype == dtype and g.u0.dtype == dtype
    vs, _ = lif_forward(I, LIFParams(), cfg.replace(forward="smooth", surrogate="sigmoid"))
    assert vs.dtype == dtype


def test_integer_input_becomes_float64_and_config_dtype_wins():
    I = np.ones((3, 1, 2), dtype=np.int64)
    v, tr = lif_forward(I)
    assert tr.u.dtype == np.float64
    v, tr = lif_forward(I.astype(np.float64), config=LIFConfig(dtype="float32"))
    assert tr.u.dtype == np.float32


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_reset_mode_irrelevant_while_no_spike_occurs(rng, backend):
    """Without spikes the forward is the same for every reset, and so is the
    detached gradient.  Not detached, the surrogate gradient still flows
    through the (unused) reset: -gamma (subtract) vs alpha (u_reset - u)
    (zero), (A10a)/(A10b), so those gradients differ."""
    I = rng.uniform(0.0, 0.05, (20, 3, 4))     # stays far below theta = 1
    out, undetached = [], []
    for reset in RESETS:
        grads = []
        for detach in (True, False):
            cfg = LIFConfig(reset=reset, backend=backend, detach_reset=detach)
            v, tr = lif_forward(I, LIFParams(0.9, 1.0), cfg)
            assert v.sum() == 0
            g = lif_backward(tr, LIFParams(0.9, 1.0), cfg, dv=np.ones_like(v), du=np.ones_like(v))
            grads.append(g)
        out.append((tr.u, grads[0].I, grads[0].alpha, grads[0].theta))
        undetached.append(grads[1].I)
    for other in out[1:]:
        for a, b in zip(out[0], other):
            np.testing.assert_allclose(a, b, rtol=1e-13)
    assert np.max(np.abs(undetached[0] - undetached[1])) > 1e-3   # subtract vs zero
    np.testing.assert_allclose(undetached[2], out[2][1], rtol=1e-13)  # none: nothing to detach


def test_gradient_shapes_follow_parameter_shapes(rng):
    I = rng.normal(0.6, 0.5, (8, 3, 4))
    cfg = LIFConfig()
    scalar = LIFParams(alpha=0.9, theta=1.0, gamma=0.8, u_reset=0.0)
    per = LIFParams(alpha=np.full(4, 0.9), theta=np.ones(4), gamma=np.full(4, 0.8),
                    u_reset=np.zeros(4))
    _, tr = lif_forward(I, scalar, cfg)
    gs = lif_backward(tr, scalar, cfg, dv=np.ones_like(I))
    _, trp = lif_forward(I, per, cfg)
    gp = lif_backward(trp, per, cfg, dv=np.ones_like(I))
    for name in ("alpha", "theta", "gamma", "u_reset"):
        assert np.ndim(getattr(gs, name)) == 0
        assert np.shape(getattr(gp, name)) == (4,)
        assert float(getattr(gs, name)) == pytest.approx(float(np.sum(getattr(gp, name))), rel=1e-12)
    assert gs.I.shape == I.shape and gs.u0.shape == (3, 4)


@pytest.mark.parametrize("u0_shape", [(), (4,), (3, 4)])
def test_u0_gradient_shaped_like_u0(rng, u0_shape):
    I = rng.normal(0.6, 0.5, (8, 3, 4))
    u0 = rng.normal(size=u0_shape)
    _, tr = lif_forward(I, u0=u0)
    g = lif_backward(tr, dv=np.ones_like(I))
    _, tr_full = lif_forward(I, u0=np.broadcast_to(u0, (3, 4)))
    g_full = lif_backward(tr_full, dv=np.ones_like(I))
    assert np.shape(g.u0) == u0_shape
    np.testing.assert_allclose(g.u0, g_full.u0.sum(axis=tuple(range(2 - len(u0_shape)))), rtol=1e-12)


def test_tied_theta_gradient_is_free_theta_plus_gamma(rng):
    """(A15)-(A16): with gamma tied, dL/dtheta = dL/dtheta|free + dL/dgamma|free."""
    I = rng.normal(0.6, 0.5, (30, 3, 4))
    cfg = LIFConfig(surrogate=sgs.get("sigmoid"))
    dv, du = rng.normal(size=I.shape), rng.normal(size=I.shape)
    tied = LIFParams(0.9, np.ones(4))
    free = LIFParams(0.9, np.ones(4), gamma=np.ones(4))
    _, tr = lif_forward(I, tied, cfg)
    gt = lif_backward(tr, tied, cfg, dv=dv, du=du)
    _, tr2 = lif_forward(I, free, cfg)
    gf = lif_backward(tr2, free, cfg, dv=dv, du=du)
    assert gt.gamma is None
    np.testing.assert_allclose(gt.theta, gf.theta + gf.gamma, rtol=1e-12)
    assert np.max(np.abs(gf.gamma)) > 1e-3


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_static_input_equals_repeated_input(rng, backend):
    x = rng.normal(0.4, 0.5, (3, 5))
    T = 9
    cfg = LIFConfig(backend=backend, surrogate=sgs.get("sigmoid"))
    dv = rng.normal(size=(T, 3, 5))
    v1, tr1 = lif_forward(x, config=cfg, T=T)
    g1 = lif_backward(tr1, config=cfg, dv=dv)
    v2, tr2 = lif_forward(np.broadcast_to(x, (T, 3, 5)), config=cfg)
    g2 = lif_backward(tr2, config=cfg, dv=dv)
    np.testing.assert_array_equal(v1, v2)
    assert g1.I.shape == (3, 5)
    np.testing.assert_allclose(g1.I, g2.I.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(g1.alpha, g2.alpha, rtol=1e-12)


def test_gamma_and_u_reset_gradients_vanish_where_they_do_not_enter(rng):
    I = rng.normal(0.6, 0.5, (10, 2, 3))
    p = LIFParams(0.9, 1.0, gamma=1.0, u_reset=0.2)
    for reset in ("zero", "none"):
        _, tr = lif_forward(I, p, LIFConfig(reset=reset))
        g = lif_backward(tr, p, LIFConfig(reset=reset), dv=np.ones_like(I))
        assert g.gamma == 0
    _, tr = lif_forward(I, p, LIFConfig(reset="subtract"))
    assert lif_backward(tr, p, LIFConfig(), dv=np.ones_like(I)).u_reset == 0


def test_config_is_hashable_and_reset_alias():
    a = LIFConfig(reset="hard")
    assert a.reset == "zero"
    assert hash(a) == hash(LIFConfig(reset="zero"))
    assert a.replace(strict=True).strict is True


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("tied", [True, False])
def test_lifgrads_none_means_not_a_parameter_zeros_mean_no_effect(reset, tied):
    """The documented rule of LIFGrads: None when the value is not a parameter
    of the configuration (tied gamma), zeros when it is one without effect
    (free gamma under zero/none reset, u_reset under subtract/none)."""
    rng = np.random.default_rng(0)
    I = rng.normal(0.6, 1.0, (12, 3, 4))
    params = LIFParams(0.9, 1.0, gamma=None if tied else 0.8, u_reset=0.1)
    cfg = LIFConfig(reset=reset)
    v, tr = lif_forward(I, params, cfg)
    assert v.sum() > 0
    g = lif_backward(tr, params, cfg, dv=rng.normal(size=v.shape))
    if tied:
        assert g.gamma is None
    elif reset == "subtract":
        assert np.any(g.gamma != 0)
    else:
        assert np.array_equal(g.gamma, np.zeros_like(g.gamma))
    if reset == "zero":
        assert np.any(g.u_reset != 0)
    else:
        assert np.all(np.asarray(g.u_reset) == 0)
    assert g.alpha_s is None and g.rho is None and g.R is None
