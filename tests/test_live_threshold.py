"""The surrogate evaluated at the neuron's live threshold (M10,
``LIFConfig(surrogate_threshold="live")``; derivations/variants.md).

sinabs' ALIF calls its threshold-scaled surrogates (SingleExponential,
PeriodicExponential, Heaviside) with the adaptive threshold b0 + adapt_scale b
of the step, sinabs' LIF and Rockpool's LIFTorch with each neuron's own
threshold.  Tests: the slots of every preset against the preset rebuilt at
each threshold; the reference's phi against that per element; the kernels
(CPU, CUDA on the simulator) against the reference; the variant with theta_t
equal to the preset's threshold bit for bit the constant one; the
validation; the frameworks agree and a constant-threshold mapping does not;
``lifgrad check``'s rows of the two variants.
"""
import numpy as np
import pytest

from lifgrad import check as ck
from lifgrad import reference as ref
from lifgrad import surrogates as sgs
from lifgrad.config import LIFConfig, LIFParams
from lifgrad.functional import lif_backward, lif_forward

LIVE = ck.LIVE_SURROGATES


@pytest.mark.parametrize("name", LIVE)
def test_phi_live_is_the_preset_at_each_threshold(name):
    """reference.surrogate_phi_live(x; theta) == the preset built with
    threshold=theta, element by element (float64)."""
    rng = np.random.default_rng(3)
    theta = rng.uniform(0.4, 2.5, 40)
    u = theta + rng.normal(0, 0.8, 40)
    u[:5] = theta[:5] * np.array([1.0, 2.0, 3.0, 0.5, 1.5])    # on the bumps' edges
    v = np.zeros(40)
    sg, code = LIFConfig(surrogate=name, surrogate_threshold="live")._live
    got = ref.surrogate_phi_live(u - theta, v, sg, code, theta)
    want = np.array([sgs.get(name, threshold=th).phi(np.array([x]))[0]
                     for x, th in zip(u - theta, theta)])
    # sinabs.Heaviside's preset rounds 1/threshold to float32 (sinabs does, for a Python
    # float threshold); with a float64 threshold tensor, as on ALIF, sinabs divides in
    # float64, and so does the live variant
    np.testing.assert_allclose(got, want, rtol=1e-7 if name == "sinabs.Heaviside" else 1e-12,
                               atol=0)
    # and not the constant threshold 1
    const = sgs.get(name).phi(u - theta)
    assert np.max(np.abs(const - want)) > 1e-2


def _problem(cfg, dtype="float64", seed=0, theta=None):
    rng = np.random.default_rng(seed)
    T, B, N = 14, 3, 6
    I = rng.normal(0.5, 0.8, (T, B, N)).astype(dtype)
    p = LIFParams(alpha=0.85, theta=rng.uniform(0.6, 1.4, N) if theta is None else theta,
                  alpha_s=0.7, rho=0.8, beta_a=0.3)
    dv = rng.normal(size=I.shape).astype(dtype)
    return I, p, dv


@pytest.mark.parametrize("variant", ["live-threshold-sinabs", "live-threshold-rockpool"])
@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_theta_equal_to_the_presets_is_the_constant_bit_for_bit(variant, backend):
    """A non-adaptive neuron at threshold 1 with the preset at threshold 1:
    the live and the constant surrogate are the same bits."""
    kw = {k: v for k, v in ck.VARIANTS[variant].items() if k != "surrogate_threshold"}
    kw.update(adaptive=False, backend=backend)
    for dtype in ("float64", "float32"):
        for name in LIVE:
            kw["surrogate"] = name
            I, p, dv = _problem(LIFConfig(**kw), dtype, theta=1.0)
            out = []
            for mode in ("constant", "live"):
                c = LIFConfig(**kw, surrogate_threshold=mode)
                v, tr = lif_forward(I, p, c)
                out.append(lif_backward(tr, p, c, dv=dv))
            for k, a in out[0]._asdict().items():
                if a is not None:
                    assert np.asarray(a).tobytes() == np.asarray(getattr(out[1], k)).tobytes(), \
                        (name, dtype, k)


@pytest.mark.parametrize("variant", ["live-threshold-sinabs", "live-threshold-rockpool"])
def test_live_changes_the_gradient(variant):
    """Per-neuron thresholds (and the adaptation): live and constant differ."""
    c = ck.model_config(variant)
    I, p, dv = _problem(c)
    g = []
    for mode in ("live", "constant"):
        cc = c.replace(surrogate_threshold=mode)
        v, tr = lif_forward(I, p, cc)
        g.append(lif_backward(tr, p, cc, dv=dv).I)
    assert np.max(np.abs(g[0] - g[1])) > 1e-3 * np.max(np.abs(g[0]))


@pytest.mark.parametrize("variant", ["live-threshold-sinabs", "live-threshold-rockpool"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cpu_kernels_match_reference(variant, dtype):
    for name in LIVE:
        c = ck.model_config(variant, surrogate=name, strict=False)
        errs = ck.kernel_vs_reference(c, dtype=dtype, gamma_free=True, u_bias=0.3)
        assert max(errs.values()) <= ck.TOL_KERNEL[dtype], (name, errs)


@pytest.mark.parametrize("variant,name", [("live-threshold-sinabs", "sinabs.PeriodicExponential"),
                                          ("live-threshold-rockpool", "rockpool.StepPWL")])
def test_cuda_kernels_match_reference(variant, name):
    from lifgrad.backends import available
    if not available():
        pytest.skip("no CUDA device and no CUDA simulator")
    c = ck.model_config(variant, surrogate=name, strict=False)
    for dtype in ("float64", "float32"):
        errs = ck.kernel_vs_reference(c, dtype=dtype, gamma_free=True, T=6, B=2, N=7,
                                      backend="cuda")
        assert max(errs.values()) <= ck.TOL_KERNEL[dtype], (dtype, errs)


def test_validation_names_the_variant():
    with pytest.raises(ValueError, match="surrogate_threshold"):
        LIFConfig(surrogate_threshold="adaptive")
    with pytest.raises(ValueError, match="no threshold parameter"):
        LIFConfig(surrogate="atan", surrogate_threshold="live")
    with pytest.raises(ValueError, match="forward='smooth'"):
        LIFConfig(surrogate="sinabs.SingleExponential", surrogate_threshold="live",
                  forward="smooth")
    # the preset's own threshold is replaced; its amplitude is kept
    sur = sgs.get("sinabs.SingleExponential", threshold=3.0, grad_scale=1.5).with_scale(6.0)
    sg, code = LIFConfig(surrogate=sur, surrogate_threshold="live")._live
    assert code == 1 and sg[1] == 0.5 and sg[4] == 6.0


def test_check_rows_pass():
    rows = ck.run_suite(models=["live-threshold-sinabs", "live-threshold-rockpool"])
    kernel = [r for r in rows if r.check.startswith("kernel")]
    assert len(kernel) >= 40 and all(r.passed for r in rows), \
        [r for r in rows if not r.passed][:3]


# -- the frameworks ----------------------------------------------------------------

def test_sinabs_live_cases_agree_and_a_constant_mapping_does_not():
    pytest.importorskip("sinabs")
    from lifgrad.verify import sinabs as sn
    AD = sn.ADAPTER
    for neuron, variant, sur in (("ALIF", "SingleSpike", "sinabs.SingleExponential"),
                                 ("ALIFRecurrent", "MultiSpike tau_syn", "sinabs.Heaviside"),
                                 ("LIF", "MultiSpike threshold per neuron",
                                  "sinabs.PeriodicExponential")):
        b = AD.build(AD.case(neuron, variant, sur))
        m = AD.layer_map(b.module)
        assert m.config.surrogate_threshold == "live"
        rep = AD.check(b, m)
        assert rep.status == "agrees" and rep.worst < 1e-10, (variant, rep.rows)
        wrong = AD.check(b, m._replace(config=m.config.replace(surrogate_threshold="constant")))
        assert wrong.status == "disagrees", (variant, sur)


def test_rockpool_per_neuron_threshold_agrees_and_a_constant_mapping_does_not():
    pytest.importorskip("rockpool")
    from lifgrad.verify import rockpool as rp
    AD = rp.ADAPTER
    for neuron, variant, sur in (
            ("LIFTorch", "threshold per neuron", "rockpool.StepPWL"),
            ("LIFTorch", "threshold per neuron, has_rec, max_spikes 3, bias",
             "rockpool.PeriodicExponential"),
            ("aLIFTorch", "threshold per neuron", "rockpool.StepPWL")):
        b = AD.build(AD.case(neuron, variant, sur))
        m = AD.layer_map(b.module)
        assert m.config.surrogate_threshold == "live"
        rep = AD.check(b, m)
        assert rep.status == "agrees" and rep.worst < 1e-10, (variant, rep.rows)
        wrong = AD.check(b, m._replace(config=m.config.replace(surrogate_threshold="constant")))
        assert wrong.status == "disagrees", (variant, sur)


def test_worked_example():
    """derivations/variants.md, (M10): sinabs.SingleExponential at theta_t = 1.5,
    u_t = 1.2: exp(-0.3/0.75)/0.75, not the constant preset's exp(-0.3/0.5)/0.5."""
    sg, code = LIFConfig(surrogate="sinabs.SingleExponential", surrogate_threshold="live")._live
    phi = ref.surrogate_phi_live(np.array([1.2 - 1.5]), np.zeros(1), sg, code, np.array([1.5]))
    assert phi[0] == pytest.approx(np.exp(-0.3 / 0.75) / 0.75, rel=1e-15)
    assert sgs.get("sinabs.SingleExponential").phi(np.array([-0.3]))[0] == pytest.approx(1.0976,
                                                                                        abs=1e-4)
