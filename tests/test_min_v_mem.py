"""A lower clip of the membrane (M11, ``LIFConfig(u_min=...)``;
derivations/variants.md): sinabs' ``min_v_mem``.

``u_t = max(Lambda_t, alpha u_min) + c s_t + b_u`` with Lambda_t the leak and
reset terms.  Tests: the adjoint against finite differences of the smooth
forward with the clip hit often, and the same with the clip's mask dropped
failing; the kernels (CPU, CUDA on the simulator) bit for bit the reference;
a worked example; the validation; sinabs' layers with ``min_v_mem`` agree and
the unclipped mapping does not; ``lifgrad check``'s rows of the variants.
"""
import numpy as np
import pytest

from lifgrad import check as ck
from lifgrad import reference as ref
from lifgrad.config import LIFConfig, LIFParams
from lifgrad.functional import lif_backward, lif_forward

CLIP_VARIANTS = ("min-membrane", "min-membrane-alif", "min-membrane-recurrent")
FD_CASES = (dict(), dict(reset="zero"), dict(reset="none", norm_input=True, u_min=0.3),
            dict(adaptive=True, reset_by_threshold=True, theta_grad="none", synaptic=True,
                 decay_input=True),
            dict(adaptive=True, adaptation="current", recurrent="one"))


def _clipped_fraction(cfg, seed=0, T=12, B=2, N=5):
    """The share of steps where the clip acts in check._layer_problem's problem."""
    rng = np.random.default_rng(seed)
    I, p, _, _ = ck._layer_problem(rng, T, B, N, False, cfg)
    params = LIFParams(**{k: p[k] for k in ("alpha", "theta", "gamma", "u_reset")},
                       **{k: p[k] for k in ("alpha_s", "rho", "beta_a", "R") if k in p})
    _, tr = lif_forward(I, params, cfg, u0=p["u0"], s0=p.get("s0"), a0=p.get("a0"))
    P = params.packed(N, np.float64, cfg)
    prev = lambda x, x0: np.concatenate([x0[None], x[:-1]])     # noqa: E731
    z = np.zeros((B, N))
    L = ref.leak_reset(cfg.mode(), P, prev(tr.u, p["u0"]), prev(tr.v, z),
                       prev(tr.a, p["a0"]) if cfg.adaptive else z)
    return float(np.mean(L <= P[0] * cfg.u_min))


@pytest.mark.parametrize("kw", FD_CASES,
                         ids=lambda kw: ",".join(k for k in kw if k != "u_min") or "lif")
def test_adjoint_matches_finite_differences_with_the_clip(kw):
    cfg = LIFConfig(forward="smooth", surrogate="sigmoid", **{"u_min": 0.05, **kw})
    assert _clipped_fraction(cfg) > 0.1
    errs = ck.fd_layer(cfg)
    assert max(errs.values()) < 1e-6, errs


@pytest.mark.parametrize("kw", FD_CASES[:2] + FD_CASES[3:4],
                         ids=("lif", "zero", "alif"))
def test_gradient_of_the_clip_level(kw, monkeypatch):
    """dL/du_min = alpha sum of ubar_t over the clipped steps (LIFGrads.u_min,
    a scalar in the layer's dtype): finite differences of the level agree, on
    the reference and the CPU kernels; the sum divided by alpha does not."""
    for backend in ("reference", "cpu"):
        cfg = LIFConfig(forward="smooth", surrogate="sigmoid", backend=backend,
                        **{"u_min": 0.05, **kw})
        errs = ck.fd_layer(cfg)
        assert errs["u_min"] < 1e-6, errs
    rng = np.random.default_rng(0)
    I, p, A, C = ck._layer_problem(rng, 12, 2, 5, False, cfg)
    params = LIFParams(**{k: p[k] for k in ("alpha", "theta", "gamma", "u_reset")},
                       **{k: p[k] for k in ("alpha_s", "rho", "beta_a", "R") if k in p})
    _, tr = lif_forward(I.astype(np.float32), params, cfg, u0=p["u0"], s0=p.get("s0"),
                        a0=p.get("a0"))
    g32 = lif_backward(tr, params, cfg, dv=A, du=C).u_min
    assert np.asarray(g32).dtype == np.float32 and g32 != 0
    real = ck.lif_backward
    alpha = np.asarray(params.alpha)
    assert alpha.min() < 0.95                  # so that leaving alpha out shows

    def without_alpha(tr, params, config, **kw):     # sum of ubar_t, alpha left out
        g = real(tr, params, config, **kw)
        return g._replace(u_min=g.u_min / float(np.mean(alpha)))
    monkeypatch.setattr(ck, "lif_backward", without_alpha)
    assert ck.fd_layer(cfg)["u_min"] > 1e-3


def test_dropping_the_mask_fails(monkeypatch):
    """The adjoint of the unclipped cell on the clipped trace: finite
    differences tell it apart (the planted error this variant guards against)."""
    cfg = LIFConfig(forward="smooth", surrogate="sigmoid", u_min=0.05, backend="reference")
    assert max(ck.fd_layer(cfg).values()) < 1e-6
    monkeypatch.setattr(ref, "clip_mask", lambda mode, P, u, v, a, ubar: ubar)
    errs = ck.fd_layer(cfg)
    assert errs["I"] > 1e-2 and errs["u0"] > 1e-2, errs


@pytest.mark.parametrize("variant", CLIP_VARIANTS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cpu_kernels_match_reference_bit_for_bit(variant, dtype):
    for reset in ("subtract", "zero", "none"):
        c = ck._variant_config(variant, reset=reset)
        if c is None:
            continue
        errs = ck.kernel_vs_reference(c, dtype=dtype, gamma_free=True, u_bias=0.3)
        assert max(errs.values()) == 0, (reset, errs)


@pytest.mark.parametrize("variant", CLIP_VARIANTS)
def test_cuda_kernels_match_reference(variant):
    from lifgrad.backends import available
    if not available():
        pytest.skip("no CUDA device and no CUDA simulator")
    c = ck.model_config(variant)
    for dtype in ("float64", "float32"):
        errs = ck.kernel_vs_reference(c, dtype=dtype, gamma_free=True, T=6, B=2, N=7,
                                      backend="cuda")
        assert max(errs.values()) <= ck.TOL_KERNEL[dtype], (dtype, errs)


def test_worked_example():
    """derivations/variants.md (M11): alpha 0.5, u_min -1, u_0 = -3, input 0.25
    per step.  The initial state is not clipped: u_1 = 0.5 (-3) + 0.25 = -1.25;
    step 2 clips, u_2 = max(-0.625, -0.5) + 0.25 = -0.25.  For L = u_1:
    dL/du_0 = 0.5, dL/dalpha = u_0 = -3; for L = u_2 the clip holds: dL/du_0
    = 0 and dL/dalpha = u_min = -1.  From u_0 = 0.5 nothing clips: u_1 = u_2 =
    0.5, and for L = u_2 dL/du_0 = alpha^2 = 0.25, dL/dalpha = u_1 + alpha u_0
    = 0.75."""
    p = LIFParams(alpha=0.5, theta=1.0)
    cfg = LIFConfig(u_min=-1.0, surrogate="zero", backend="reference")    # no spike paths
    I = np.full((2, 1, 1), 0.25)
    for u0, want, du0, dalpha in ((-3.0, (-1.25, -0.25), (0.5, 0.0), (-3.0, -1.0)),
                                  (0.5, (0.5, 0.5), (0.5, 0.25), (0.5, 0.75))):
        v, tr = lif_forward(I, p, cfg, u0=np.array([[u0]]))
        assert tuple(tr.u[:, 0, 0]) == want
        for t in (0, 1):
            du = np.zeros((2, 1, 1))
            du[t] = 1.0
            g = lif_backward(tr, p, cfg, du=du)
            assert g.u0[0, 0] == du0[t] and float(g.alpha) == dalpha[t], (u0, t)


def test_the_initial_state_is_not_clipped():
    """sinabs starts from an unclipped 0 and clips what its steps leave: so does
    lifgrad, with u_min above 0 too (min_v_mem = 0.5 from rest: u_1 = the input
    alone, u_2 = max(alpha u_1, alpha u_min) + input)."""
    p = LIFParams(alpha=0.5, theta=10.0)
    I = np.full((2, 1, 1), 0.1)
    for backend in ("reference", "cpu"):
        v, tr = lif_forward(I, p, LIFConfig(u_min=0.5, backend=backend))
        assert tuple(tr.u[:, 0, 0]) == (0.1, 0.35), backend


def test_very_low_u_min_is_the_unclipped_cell():
    rng = np.random.default_rng(2)
    I = rng.normal(0.4, 0.7, (10, 2, 4))
    p = LIFParams(alpha=0.8, theta=1.0)
    out = []
    for um in (None, -1e6):
        v, tr = lif_forward(I, p, LIFConfig(u_min=um))
        out.append((v, tr.u, lif_backward(tr, p, LIFConfig(u_min=um), dv=I).I))
    for a, b in zip(*out):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_validation():
    for bad in (float("nan"), float("inf"), "0", True):
        with pytest.raises(ValueError, match="u_min"):
            LIFConfig(u_min=bad)
    assert LIFConfig(u_min=-1).u_min == -1.0 and LIFConfig().mode()[-1] == 0


def test_sinabs_cases_agree_and_the_unclipped_mapping_does_not():
    pytest.importorskip("sinabs")
    from lifgrad.verify import sinabs as sn
    AD = sn.ADAPTER
    for neuron, variant in (("LIF", "SingleSpike MembraneReset min_v_mem"),
                            ("ALIF", "SingleSpike min_v_mem"), ("ExpLeak", "min_v_mem")):
        sur = sn.ALIF_SURROGATE if neuron == "ALIF" else sn.DEFAULT_SURROGATE
        b = AD.build(AD.case(neuron, variant, sur))
        m = AD.layer_map(b.module)
        assert m.config.u_min is not None
        rep = AD.check(b, m)
        assert rep.status == "agrees" and rep.worst < 1e-10, (variant, rep.rows)
        wrong = AD.check(b, m._replace(config=m.config.replace(u_min=None)))
        assert wrong.status == "disagrees", variant


def test_check_rows_pass():
    rows = ck.run_suite(quick=True, models=list(CLIP_VARIANTS))
    assert rows and all(r.passed for r in rows), [r for r in rows if not r.passed][:3]


@pytest.mark.parametrize("model", [dict(), dict(adaptive=True, reset_by_threshold=True,
                                                 synaptic=True, decay_input=True),
                                   dict(recurrent="all", norm_input=True)],
                         ids=["lif", "alif", "recurrent-all"])
def test_network_checkpointed_equals_full_trace_and_the_clip_acts(model):
    from lifgrad.network import Dense, Sequential
    rng = np.random.default_rng(0)
    T, B = 96, 3

    def net(u_min):
        cfg = LIFConfig(surrogate="sigmoid", u_min=u_min, **model)
        n = Sequential([Dense(6, 8, cfg, alpha=0.9, learn=("alpha", "theta")),
                        Dense(8, 4, LIFConfig(surrogate="atan", u_min=u_min), alpha=0.8)],
                       dtype="float64", seed=3)
        n.params["layer0.W"] = n.params["layer0.W"] * 3
        return n
    x = rng.normal(0, 1, (T, B, 6))
    dv = rng.normal(size=(T, B, 4))
    grads = {}
    for u_min in (None, -0.25):
        n = net(u_min)
        out, tr = n.forward(x, T=T)
        g = n.backward(tr, dv=dv, need_input_grad=True)
        out2, tr2 = n.forward(x, T=T, checkpoint_every=32)
        g2 = n.backward(tr2, dv=dv, need_input_grad=True)
        np.testing.assert_array_equal(out, out2)
        for k in g:
            np.testing.assert_array_equal(np.asarray(g[k]), np.asarray(g2[k]), err_msg=k)
        grads[u_min] = g
    assert any(np.max(np.abs(np.asarray(grads[None][k]) - np.asarray(grads[-0.25][k]))) > 1e-3
               for k in grads[None])


def test_device_network_matches_sequential():
    from lifgrad.device import DeviceNetwork, available
    from lifgrad.network import Dense, Sequential
    if not available():
        pytest.skip("no CUDA device and no CUDA simulator")
    rng = np.random.default_rng(4)
    cfg = LIFConfig(u_min=-0.25, adaptive=True, reset_by_threshold=True)
    net = Sequential([Dense(5, 6, cfg, alpha=0.9, theta=0.5, learn=("alpha", "theta")),
                      Dense(6, 3, LIFConfig(u_min=0.0, reset="zero"), theta=0.5)],
                     dtype="float64", seed=1)
    x = rng.normal(0, 2, (6, 2, 5))
    _, tr = net.forward(x)
    du = rng.standard_normal(tr.layers[-1].trace.u.shape)
    g = net.backward(tr, du=du)
    dev = DeviceNetwork(net)
    dtr = dev.forward(x)
    v, u = dev.output(dtr)
    np.testing.assert_allclose(u, tr.layers[-1].trace.u, rtol=1e-12, atol=1e-14)
    dg = dev.backward(dtr, du=du)
    for k in g:
        np.testing.assert_allclose(dg[k].copy_to_host(), g[k], rtol=1e-12, atol=1e-14,
                                   err_msg=k)
