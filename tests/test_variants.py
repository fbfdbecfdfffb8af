"""Cell variants of peer frameworks (issue 18): the input scaled by 1 - alpha
(sinabs' norm_input, (M1)) and several spikes per step (sinabs' MultiSpike,
Rockpool's max_spikes_per_dt, (M2)), in the reference, CPU and CUDA kernels,
against finite differences of check.naive_forward (written apart)."""
import numpy as np
import pytest

from lifgrad import LIFConfig, LIFParams, lif_backward, lif_forward
from lifgrad import surrogates as sgs
from lifgrad.check import (TOL_FD, TOL_KERNEL, VARIANTS, _variant_config, fd_layer,
                           fd_zero_surrogate, kernel_vs_reference, naive_forward,
                           variant_params)


def test_variant_configuration_is_validated():
    with pytest.raises(ValueError, match="max_spikes: expected an integer >= 1 or None"):
        LIFConfig(max_spikes=0)
    with pytest.raises(ValueError, match="max_spikes: expected an integer"):
        LIFConfig(max_spikes=2.5)
    with pytest.raises(ValueError, match="need forward='hard'"):
        LIFConfig(max_spikes=3, forward="smooth", surrogate="sigmoid")
    with pytest.raises(ValueError, match="only detach_reset=True"):   # (M12)
        LIFConfig(max_spikes=None, reset="zero")
    assert LIFConfig(max_spikes=None, reset="zero", detach_reset=True).multi_spike
    with pytest.raises(TypeError, match="norm_input: expected True or False"):
        LIFConfig(norm_input=1)
    with pytest.raises(ValueError, match="theta: several spikes per step .* need theta > 0"):
        lif_forward(np.ones((3, 1, 2)), LIFParams(theta=0.0), LIFConfig(max_spikes=2))
    assert LIFConfig(max_spikes=1) == LIFConfig()          # one spike is the default cell
    with pytest.raises(ValueError, match="decay_input=True: .* needs synaptic=True"):
        LIFConfig(decay_input=True)
    with pytest.raises(ValueError, match="alpha_s: decay_input=True needs alpha_s > 0"):
        lif_forward(np.ones((3, 1, 2)), LIFParams(alpha_s=0.0),
                    LIFConfig(synaptic=True, decay_input=True))


def test_theta_ratio_derivative():
    """theta_grad='ratio' (M4): one step, L = v_0 = H(u_0 - theta) with u_0 = I:
    dL/dtheta = -(u_0/theta) phi(u_0 - theta), where 'shift' gives -phi."""
    I = np.array([[[0.8, 1.3, 2.6]]])
    p = LIFParams(alpha=0.5, theta=np.full(3, 1.1))       # per neuron: a gradient each
    sg = sgs.get("sigmoid", k=2.0)
    for grad, factor in (("shift", np.ones(3)), ("ratio", I[0, 0] / 1.1)):
        cfg = LIFConfig(surrogate=sg, theta_grad=grad, max_spikes=None)
        v, tr = lif_forward(I, p, cfg)
        g = lif_backward(tr, p, cfg, dv=np.ones_like(I))
        want = -(factor * sg.phi(I[0, 0] - 1.1))
        np.testing.assert_allclose(g.theta, want, rtol=1e-14)
    with pytest.raises(ValueError, match="theta_grad='ratio'.*not with adaptive"):
        LIFConfig(theta_grad="ratio", adaptive=True)
    with pytest.raises(ValueError, match="theta_grad: expected one of"):
        LIFConfig(theta_grad="other")


def test_decay_input_synapse():
    """s_t = alpha_s (s_{t-1} + I_t) (M3): dL/dI_t = alpha_s dL/ds_t."""
    cfg = LIFConfig(synaptic=True, decay_input=True, surrogate="zero")
    I = np.array([[[1.0]], [[2.0]]])
    p = LIFParams(alpha=0.5, theta=10.0, alpha_s=0.25)
    _, tr = lif_forward(I, p, cfg)
    np.testing.assert_allclose(tr.s[:, 0, 0], [0.25, 0.25 * (0.25 + 2.0)])
    g = lif_backward(tr, p, cfg, du=np.ones_like(I))
    # u_0 = s_0, u_1 = 0.5 u_0 + s_1; L = u_0 + u_1 = 1.5 s_0 + s_1, s_1 = 0.25 (s_0 + I_1)
    # dL/ds_1 = 1, dL/ds_0 = 1.5 + 0.25 = 1.75; dL/dI_t = 0.25 dL/ds_t
    np.testing.assert_allclose(g.I[:, 0, 0], [0.25 * 1.75, 0.25])


@pytest.mark.parametrize("max_spikes,strict,dtype", [(3, False, np.uint8), (None, False, None),
                                                     (5, True, np.uint8), (300, False, None)])
def test_spike_counts(max_spikes, strict, dtype):
    """floor(u/theta) spikes (strict: multiples exceeded), at most max_spikes,
    the reset subtracting theta per spike; stored as uint8 up to 255 a step."""
    cfg = LIFConfig(max_spikes=max_spikes, strict=strict)
    I = np.array([[[0.5, 1.0, 2.0, 3.5, 7.0, 30.0]]] * 3)      # (T=3, B=1, N=6)
    v, tr = lif_forward(I, LIFParams(alpha=0.5, theta=1.0), cfg)
    assert v.dtype == (dtype or np.float64)
    u0 = I[0, 0]
    if strict:
        want = np.where(u0 > 1, np.ceil(u0) - 1, 0)
    else:
        want = np.where(u0 >= 1, np.floor(u0), 0)
    if max_spikes is not None:
        want = np.minimum(want, max_spikes)
    np.testing.assert_array_equal(v[0, 0], want)
    # next step: u_1 = alpha u_0 + I_1 - theta v_0
    np.testing.assert_allclose(tr.u[1, 0], 0.5 * u0 + I[1, 0] - want)
    u_naive, v_naive = naive_forward(I, dict(alpha=0.5, theta=1.0), cfg)
    np.testing.assert_array_equal(v, v_naive)
    np.testing.assert_allclose(tr.u, u_naive, rtol=1e-15)


def test_norm_input_scales_the_drive():
    I = np.full((2, 1, 1), 1.0)
    cfg = LIFConfig(norm_input=True, surrogate="zero")      # no spike term: u alone
    _, tr = lif_forward(I, LIFParams(alpha=0.75, theta=10.0), cfg)
    np.testing.assert_allclose(tr.u[:, 0, 0], [0.25, 0.75 * 0.25 + 0.25])
    np.testing.assert_array_equal(tr.s, I)            # the input current kept for dL/dalpha
    g = lif_backward(tr, LIFParams(alpha=0.75, theta=10.0), cfg, du=np.ones_like(I))
    # L = u_0 + u_1 = (1-a) I_0 + a (1-a) I_0 + (1-a) I_1: dL/dI_0 = (1-a)(1+a), dL/dI_1 = 1-a
    np.testing.assert_allclose(g.I[:, 0, 0], [0.25 * 1.75, 0.25])


@pytest.mark.parametrize("backend", ["cpu", "cuda"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_kernels_match_reference(name, dtype, backend):
    for strict, rec in ((False, None), (True, "all")):
        kw = {} if rec is None or "recurrent" in VARIANTS[name] else {"recurrent": rec}
        # the live-threshold variants (M10) keep their preset (sigmoid has no threshold)
        cfg = _variant_config(name, surrogate=sgs.get(VARIANTS[name].get("surrogate", "sigmoid")),
                              strict=strict, **kw)
        n = 9 if backend == "cuda" else 21
        errs = kernel_vs_reference(cfg, dtype=dtype, gamma_free=True, T=8, B=4, N=n,
                                   backend=backend, **variant_params(name))
        assert max(errs.values()) <= TOL_KERNEL[dtype], (strict, rec, errs)


def test_variant_kernel_problem_has_several_spikes():
    """The kernel comparison above sees counts above 1 (else it tests nothing new)."""
    from lifgrad.check import _kernel_problem, kernel_params
    rng = np.random.default_rng(0)
    cfg = LIFConfig(max_spikes=None)
    I = _kernel_problem(rng, 8, 4, 21, "float64", 4.0)
    v, _ = lif_forward(I, kernel_params(rng, 21, cfg), cfg)
    assert v.max() >= 3


@pytest.mark.parametrize("name", list(VARIANTS))
def test_variants_against_finite_differences(name):
    """Zero surrogate on the spiking network (every variant, resets that exist),
    smooth forward (the variants with one spike per step).  The stochastic
    variants (M13, a forward: the spike drawn with probability phi) have
    kernel rows only; their backward is the hard cell's, checked here."""
    for reset in ("subtract", "zero", "none"):
        for detach in (False, True):
            cfg = _variant_config(name, reset=reset, detach_reset=detach, strict=detach)
            if cfg is not None and cfg.forward == "stochastic":
                assert cfg.spike_probability == "surrogate" and name.startswith("bernoulli")
                continue
            if cfg is not None:
                errs, _ = fd_zero_surrogate(cfg, seed=11, gamma_free=(reset == "subtract"),
                                            **variant_params(name))
                assert max(errs.values()) <= TOL_FD, (reset, detach, errs)
            cfg = _variant_config(name, reset=reset, detach_reset=detach, forward="smooth",
                                  surrogate=sgs.get("sigmoid"))
            if cfg is not None:
                errs = fd_layer(cfg, seed=13, gamma_free=(reset == "subtract"),
                                **variant_params(name))
                assert max(errs.values()) <= TOL_FD, (reset, detach, errs)


def test_finite_differences_see_a_wrong_norm_gradient(monkeypatch):
    """The check fails when dL/dalpha misses the -ubar s term of (M1)."""
    from lifgrad import reference
    cfg = LIFConfig(norm_input=True, forward="smooth", surrogate="sigmoid", backend="reference")
    original = reference.cell_backward_scan

    def without_s(u, v, s, a, state0, dv, du, rec, have, static, t0, t1, P, mode, sg, dI, acc,
                  adj, dstate0):
        mode = mode[:7] + (0,) + mode[8:]          # the forward scaled, the backward does not
        return original(u, v, s, a, state0, dv, du, rec, have, static, t0, t1, P, mode, sg, dI,
                        acc, adj, dstate0)
    monkeypatch.setattr(reference, "cell_backward_scan", without_s)
    errs = fd_layer(cfg, seed=13)
    assert errs["alpha"] > 1e-3 and errs["I"] > 1e-3
