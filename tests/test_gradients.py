"""The adjoint against independent ground truth (SPEC section 6, items 1-3)."""
import itertools

import numpy as np
import pytest

from lifgrad import LIFConfig, LIFParams, lif_backward, lif_forward
from lifgrad import check
from lifgrad import reference
from lifgrad import surrogates as sgs

RESETS = ("subtract", "zero", "none")
SMOOTH = [f.name for f in sgs.FAMILIES if f.G is not None]


@pytest.mark.parametrize("surrogate", SMOOTH)
@pytest.mark.parametrize("reset,detach", list(itertools.product(RESETS, (False, True))))
@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_adjoint_matches_finite_differences_smooth_forward(surrogate, reset, detach, backend):
    """(A22); detach=True is checked against the network with frozen reset spikes (A11)."""
    cfg = LIFConfig(reset=reset, detach_reset=detach, forward="smooth",
                    surrogate=sgs.get(surrogate), backend=backend)
    for gamma_free in ((False, True) if reset == "subtract" else (False,)):
        errs = check.fd_layer(cfg, seed=3, gamma_free=gamma_free)
        expected = {"I", "alpha", "theta", "u0"} | ({"u_reset"} if reset == "zero" else set()) \
            | ({"gamma"} if gamma_free and reset == "subtract" else set())
        assert set(errs) == expected
        assert max(errs.values()) <= 1e-6, errs


@pytest.mark.parametrize("reset,detach,strict", list(itertools.product(RESETS, (False, True), (False, True))))
def test_zero_surrogate_matches_finite_differences_of_spiking_network(reset, detach, strict):
    """(A22): hard forward, g = 0, at points where no spike flips."""
    for gamma_free in (False, True):
        errs, _ = check.fd_zero_surrogate(LIFConfig(reset=reset, detach_reset=detach, strict=strict),
                                          seed=11, gamma_free=gamma_free)
        assert max(errs.values()) <= 1e-6, errs


def test_zero_surrogate_check_still_sees_theta_through_tied_reset():
    """With gamma tied, theta moves the reset (A15): a non-trivial gradient."""
    cfg = LIFConfig(reset="subtract", forward="hard", surrogate=sgs.get("zero"))
    rng = np.random.default_rng(0)
    I = rng.normal(0.5, 0.5, (20, 2, 4))
    v, tr = lif_forward(I, LIFParams(0.9, 1.0), cfg)
    g = lif_backward(tr, LIFParams(0.9, 1.0), cfg, du=np.ones_like(I))
    assert v.sum() > 0 and abs(g.theta) > 1e-3


@pytest.mark.parametrize("T", [1, 2, 10, 50, 200])
@pytest.mark.parametrize("detach", [False, True])
@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_adjoint_matches_closed_form_single_neuron(T, detach, backend):
    """(C2), (C3) against the O(T) adjoint, relative 1e-12 in float64."""
    for seed, surrogate in enumerate(["sigmoid", "atan", "triangle"]):
        err, adj, closed = check.closed_form_check(T=T, detach=detach, seed=seed,
                                                   surrogate=surrogate, backend=backend)
        assert err <= 1e-12, (adj, closed)


def test_closed_form_is_not_trivially_equal():
    """Detached and not detached differ whenever a spike falls in the window."""
    _, a, _ = check.closed_form_check(T=100, detach=False)
    _, b, _ = check.closed_form_check(T=100, detach=True)
    assert abs(a - b) > 1e-3 * abs(b)


@pytest.mark.parametrize("reset", RESETS)
@pytest.mark.parametrize("static", [False, True])
@pytest.mark.parametrize("surrogate", ["sigmoid", "gaussian"])
def test_network_gradients_match_finite_differences(reset, static, surrogate):
    """Every W, b, learned alpha/theta and the input, through a 3-layer network (A20), (A21)."""
    errs = check.fd_network(surrogate=surrogate, reset=reset, static=static)
    assert max(errs.values()) <= 1e-6, errs
    assert {"layer0.W", "layer0.b", "layer0.alpha", "layer0.theta", "layer2.W", "x"} <= set(errs)


def test_finite_difference_check_detects_a_wrong_adjoint(monkeypatch):
    """The check can fail: a reference backward that ignores the reset term is caught."""
    orig = reference.cell_backward_scan

    def broken(u, v, s, a, state0, dv, du, rec, have, static, t0, t1, P, mode, sg, *out):
        mode = mode[:3] + (1,) + mode[4:]              # force detach_reset
        return orig(u, v, s, a, state0, dv, du, rec, have, static, t0, t1, P, mode, sg, *out)
    monkeypatch.setattr(reference, "cell_backward_scan", broken)
    cfg = LIFConfig(forward="smooth", surrogate=sgs.get("sigmoid"), backend="reference")
    errs = check.fd_layer(cfg, seed=0)
    assert errs["I"] > 1e-3


def test_naive_forward_agrees_with_reference_forward(rng):
    for model, reset, strict, fwd in itertools.product(check.MODELS, RESETS, (False, True),
                                                      ("hard", "smooth")):
        cfg = check.model_config(model, reset=reset, strict=strict, forward=fwd,
                                 surrogate=sgs.get("sigmoid"), backend="reference")
        I, p, _, _ = check._layer_problem(rng, 15, 3, 6, False, cfg)
        params = LIFParams(p["alpha"], p["theta"], None, p["u_reset"],
                           **{k: p[k] for k in ("alpha_s", "rho", "beta_a", "R") if k in p})
        v, tr = lif_forward(I, params, cfg, u0=p["u0"], s0=p.get("s0"), a0=p.get("a0"))
        u2, v2 = check.naive_forward(I, p, cfg)
        np.testing.assert_allclose(tr.u, u2, rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(v, v2, rtol=1e-13, atol=1e-13)


MODELS = [m for m in check.MODELS if m != "lif"]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("reset,detach", list(itertools.product(RESETS, (False, True))))
def test_model_adjoint_matches_finite_differences_smooth_forward(model, reset, detach):
    """(S*), (R*), (L*): every parameter and initial state of every model."""
    for surrogate in check.MODEL_SURROGATES:
        cfg = check.model_config(model, reset=reset, detach_reset=detach, forward="smooth",
                                 surrogate=sgs.get(surrogate))
        for gamma_free in ((False, True) if reset == "subtract" else (False,)):
            errs = check.fd_layer(cfg, seed=5, gamma_free=gamma_free)
            assert set(errs) == set(check._fd_names(cfg, gamma_free))
            assert max(errs.values()) <= 1e-6, (surrogate, errs)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("reset,detach,strict", list(itertools.product(RESETS, (False, True), (False, True))))
def test_model_zero_surrogate_matches_spiking_network(model, reset, detach, strict):
    cfg = check.model_config(model, reset=reset, detach_reset=detach, strict=strict)
    errs, _ = check.fd_zero_surrogate(cfg, seed=13, gamma_free=(reset == "subtract"))
    assert max(errs.values()) <= 1e-6, errs


@pytest.mark.parametrize("model", list(check.MODELS))
@pytest.mark.parametrize("static", [False, True])
def test_model_network_gradients_match_finite_differences(model, static):
    errs = check.fd_network(model=model, static=static, reset="subtract")
    assert max(errs.values()) <= 1e-6, errs


@pytest.mark.parametrize("label", list(check.PARAMETRISATION_CASES))
def test_parametrisation_gradients_match_finite_differences(label):
    errs = check.fd_network(**check.PARAMETRISATION_CASES[label])
    assert max(errs.values()) <= 1e-6, errs
