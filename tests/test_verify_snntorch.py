"""lifgrad.verify.snntorch: snnTorch's autograd gradients against lifgrad's adjoint.

Every case of ``cases()`` must agree to 1e-10 (relative, float64) with identical
spikes, except the variants of ``FLOAT32_LIMITED`` (immediate subtract/zero
reset and every RLeaky), shown here to be limited by snnTorch's float32 spike
only: the same module with a float64 copy of the surrogate agrees to ~1e-15.
See derivations/peers.md (snnTorch).
"""
import numpy as np
import pytest

pytest.importorskip("snntorch", reason="snnTorch is installed by `make peers` / `make test`")
pytestmark = pytest.mark.torch

import torch  # noqa: E402
import snntorch as snn  # noqa: E402
from snntorch import surrogate as ss  # noqa: E402

from lifgrad.verify import snntorch as S  # noqa: E402
from lifgrad.verify.common import AGREES, LIMITED, TOL, check_layer, problem  # noqa: E402
from lifgrad.verify.torchpeer import peer_values  # noqa: E402

AD = S.ADAPTER


def _check(label, peer_run, m, I, A, Bm):
    """check_layer on the snnTorch side that ``peer_run(x) -> (spk, mem, leaves)`` gives."""
    return check_layer(("snntorch",) + label, peer_values(peer_run, I, A, Bm), m, I, A, Bm)


def _run(*args, **kw):
    return AD.run(AD.case(*args, **kw))


@pytest.mark.parametrize("case", AD.cases(), ids=lambda c: " ".join((c.neuron, c.variant,
                                                                         c.surrogate)))
def test_case_agrees_to_float64_precision(case):
    rep = AD.run(case)
    assert rep.spike_mismatches == 0, rep
    if (case.neuron, case.variant) in S.FLOAT32_LIMITED:   # snnTorch's float32 spike: a named limit
        assert rep.status == LIMITED and rep.worst < 1e-6, rep
        assert all(r.limit == "float32 spike" for r in rep.rows if r.status == LIMITED)
    else:
        assert rep.worst <= TOL, rep
        assert rep.status == AGREES
    assert rep.passed
    # every learnable parameter was compared, not silently skipped
    names = {r.quantity for r in rep.rows}
    assert {"mem", "grad:input", "grad:beta", "grad:threshold"} <= names


def test_cases_cover_every_neuron_variant_and_snntorch_preset():
    from lifgrad import surrogates as sgs
    cs = [(c.neuron, c.variant, c.surrogate) for c in AD.cases()]
    listed = {(n, v) for n, v, _ in cs}
    for n, vs in S.NEURONS.items():
        for v in vs:
            assert (n, v) in listed, (n, v)
    presets = {p for p in sgs.PRESETS if p.startswith("snntorch.")}
    assert presets <= {s for n, v, s in cs if (n, v) == ("Leaky", "subtract")}
    quick = AD.cases(quick=True)
    assert 0 < len(quick) < len(cs) and set(quick) <= set(AD.cases())


# ---------------------------------------------------------------------------
# Variants limited by snnTorch's float32 spike
# ---------------------------------------------------------------------------

class _ATan64(torch.autograd.Function):
    """snnTorch's ATan, operation for operation, but the spike keeps x's dtype."""

    @staticmethod
    def forward(ctx, x, alpha):
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return ctx.alpha / 2 / (1 + (torch.pi / 2 * ctx.alpha * x).pow_(2)) * g, None


def _limited_case(neuron, variant, float64_spike, seed=0, T=20, B=3, N=6):
    """The case's problem, optionally with a float64 spike on the snnTorch side.

    For the immediate subtract reset the comparison is made on the pre-reset
    potential, reconstructed on the snnTorch side as mem + theta * spk (the
    loss then reaches the module's graph through both): the
    post-reset u - theta v depends on theta directly, a term param_grads cannot
    form (see the derivation)."""
    reset, delay, a2a = S._parse(neuron, variant)
    rng, I, A, Bm = problem(seed, T, B, N)
    beta = rng.uniform(0.5, 0.95, N)
    thr = rng.uniform(0.8, 1.2, N)
    alpha = V = None
    if neuron == "RLeaky":
        if a2a:
            V = rng.uniform(-0.4, 0.4, (N, N))
            alpha = rng.uniform(-0.1, 0.1, N)
        else:
            V = rng.uniform(-0.5, 0.5, N)
    if reset == "subtract" and not delay:
        I = np.minimum(I, (2 - beta) * thr * 0.999)

    def make():
        return S.make_module(neuron, variant, "snntorch.atan", beta, thr, alpha, V, N)

    m = AD.layer_map(make())
    pre = reset == "subtract" and not delay
    if pre:
        assert m.post_reset
        m = m._replace(post_reset=False)

    def peer_run(It):
        mod = make()
        if float64_spike:
            mod.spike_grad = lambda x: _ATan64.apply(x, 2.0)
        spk, mem = AD.forward(mod, It)
        if pre:
            mem = mem + spk * mod.threshold
        return spk, mem, dict(mod.named_parameters())

    return _check((neuron, variant, "snntorch.atan"), peer_run, m, I, A, Bm)


@pytest.mark.parametrize("nv", sorted(S.FLOAT32_LIMITED), ids=" ".join)
def test_float32_limited_variants_deviate_only_by_the_float32_spike(nv):
    peer = _limited_case(*nv, float64_spike=False)
    assert peer.spike_mismatches == 0
    # snnTorch as shipped: float32-level error, neither exact nor worse
    assert 1e-10 < peer.worst < 1e-6, peer
    # the same graph with the spike kept in float64: the mapping is exact
    f64 = _limited_case(*nv, float64_spike=True)
    assert f64.spike_mismatches == 0 and f64.worst < 1e-13, f64
    # the case measures the same and reports the cause in its notes
    rep = _run(*nv)
    assert rep.spike_mismatches == 0 and 1e-10 < rep.worst < 1e-6, rep
    assert any("float32" in n for n in rep.notes)


def test_sigmoid_default_slope_rounds_in_float32():
    """grad_output (float32) * slope is a float32 product: exact for slope 16, not 25."""
    rep = _run("Leaky", "subtract", "snntorch.sigmoid", sg_params={"slope": 25.0})
    assert rep.spike_mismatches == 0 and 1e-10 < rep.worst < 1e-6
    assert _run("Leaky", "subtract", "snntorch.sigmoid",
                sg_params={"slope": 16.0}).passed


def test_rleaky_all_to_all_does_not_run_in_float64_without_the_cast():
    m = S.make_module("RLeaky", "all-to-all none", "snntorch.atan", np.full(3, 0.9), np.ones(3),
                      np.zeros(3), np.eye(3), 3)
    x = torch.full((2, 3), 2.0, dtype=torch.float64)
    m.reset_mem()
    m(x)                                   # t = 1: stored spike is float64 zeros
    with pytest.raises(RuntimeError, match="dtype"):
        m(x)                               # t = 2: float32 spike into a float64 Linear
    spk, mem = AD.forward(m, torch.stack([x, x]))
    assert mem.dtype == torch.float64


def test_immediate_subtract_input_cap_keeps_the_delayed_term_zero():
    rep = _run("Leaky", "subtract immediate")
    assert any("capped" in n for n in rep.notes)
    assert not any("post-reset membrane > theta" in n for n in rep.notes)
    # without the cap the leftover term fires and is counted
    rng, I, A, Bm = problem(0, 20, 3, 6)
    beta, thr = rng.uniform(0.5, 0.95, 6), rng.uniform(0.8, 1.2, 6)
    m = AD.layer_map(S.make_module("Leaky", "subtract immediate", "snntorch.atan", beta, thr))
    assert S.delayed_term_steps(m, I, thr) > 0
    assert S.delayed_term_steps(m, np.minimum(I, (2 - beta) * thr * 0.999), thr) == 0


# ---------------------------------------------------------------------------
# Mapping details
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("factory, kwargs, preset", [
    ("atan", {"alpha": 3.0}, "snntorch.atan"),
    ("sigmoid", {"slope": 5.0}, "snntorch.sigmoid"),
    ("fast_sigmoid", {"slope": 4.0}, "snntorch.fast_sigmoid"),
    ("triangular", {"threshold": 0.5}, "snntorch.triangular"),
    ("spike_rate_escape", {"beta": 2.0, "slope": 3.0}, "snntorch.spike_rate_escape"),
    ("straight_through_estimator", {}, "snntorch.straight_through_estimator"),
    ("heaviside", {}, "snntorch.heaviside"),
    ("SFS", {"slope": 2.0, "B": 0.5}, "snntorch.SFS"),
])
def test_surrogate_and_its_parameters_are_recovered(factory, kwargs, preset):
    from lifgrad import surrogates as sgs
    mod = snn.Leaky(beta=0.9, spike_grad=getattr(ss, factory)(**kwargs))
    name, params = AD.surrogate_of(mod)
    assert name == preset and params == {k: float(v) for k, v in kwargs.items()}
    assert AD.layer_map(mod.double()).config.surrogate == sgs.get(preset, **kwargs)


@pytest.mark.parametrize("kw", [{"surrogate_disable": True}, {"spike_grad": ss.Heaviside.apply},
                                {"spike_grad": ss.StraightThroughEstimator.apply}],
                         ids=["surrogate_disable", "Heaviside.apply", "STE.apply"])
def test_bypass_and_class_apply_surrogates(kw):
    rng, I, A, Bm = problem(1, 15, 2, 5)
    beta, thr = np.linspace(0.6, 0.9, 5), np.linspace(0.8, 1.1, 5)

    def make():
        return snn.Leaky(beta=torch.tensor(beta), threshold=torch.tensor(thr), learn_beta=True,
                         learn_threshold=True, **kw).double()

    def peer_run(It):
        mod = make()
        spk, mem = AD.forward(mod, It)
        return spk, mem, dict(mod.named_parameters())

    m = AD.layer_map(make())
    assert _check(("Leaky", "subtract", "-"), peer_run, m, I, A, Bm).passed


def test_unsupported_surrogate_and_neuron_raise_clear_errors():
    custom = snn.Leaky(beta=0.9, spike_grad=ss.custom_surrogate(lambda x, g, out: g))
    with pytest.raises(ValueError, match=r"Leaky: unsupported spike_grad"):
        AD.layer_map(custom)
    with pytest.raises(ValueError, match=r"Synaptic: unsupported spike_grad"):
        AD.layer_map(snn.Synaptic(alpha=0.5, beta=0.9, spike_grad=ss.SSO()))
    with pytest.raises(ValueError, match=r"Synaptic: reset_mechanism='zero'"):
        AD.layer_map(snn.Synaptic(alpha=0.5, beta=0.9, reset_mechanism="zero"))
    with pytest.raises(ValueError, match=r"RLeaky: reset_mechanism='zero'"):
        AD.layer_map(snn.RLeaky(beta=0.9, linear_features=3, reset_mechanism="zero"))
    with pytest.raises(ValueError, match="Alpha"):
        AD.layer_map(snn.Alpha(alpha=0.9, beta=0.8))


def test_wrong_mapping_is_detected():
    """The check can fail: an undetached delayed reset, or a dropped clamp mask."""
    rng, I, A, Bm = problem(0, 20, 3, 6)
    beta, thr = rng.uniform(0.5, 0.95, 6), rng.uniform(0.8, 1.2, 6)
    beta[0] = 1.3

    def peer_run(It):
        mod = S.make_module("Leaky", "subtract", "snntorch.atan", beta, thr)
        spk, mem = AD.forward(mod, It)
        return spk, mem, dict(mod.named_parameters())

    label = ("Leaky", "subtract", "atan")
    m = AD.layer_map(S.make_module("Leaky", "subtract", "snntorch.atan", beta, thr))
    assert _check(label, peer_run, m, I, A, Bm).passed
    bad = m._replace(config=m.config.replace(detach_reset=False))
    assert not _check(label, peer_run, bad, I, A, Bm).passed
    pg = m.param_grads
    nomask = m._replace(param_grads=lambda g, I_, tr: {**pg(g, I_, tr), "beta": g.alpha})
    rep = _check(label, peer_run, nomask, I, A, Bm)
    assert not rep.passed
    assert [r.max_rel for r in rep.rows if r.quantity == "grad:beta"][0] > 1e-3


def test_clamped_beta_gets_zero_gradient():
    rep = _run("Leaky", "subtract", clamp_beta=True)
    assert rep.passed, rep


def _leaky_check(seed, reset, beta, thr, G=1.0):
    rng, I, A, Bm = problem(seed, 15, 2, 5)

    def make():
        return snn.Leaky(beta=torch.tensor(beta), threshold=torch.tensor(thr), learn_beta=True,
                         learn_threshold=True, graded_spikes_factor=G,
                         reset_mechanism=reset).double()

    def peer_run(It):
        mod = make()
        spk, mem = AD.forward(mod, It)
        return spk, mem, dict(mod.named_parameters())

    m = AD.layer_map(make())
    assert m.spike_scale == G
    return _check(("Leaky", reset, "atan"), peer_run, m, I, A, Bm)


def test_graded_spikes():
    rep = _leaky_check(3, "subtract", np.linspace(0.6, 0.9, 5), np.linspace(0.8, 1.1, 5), G=2.0)
    assert rep.passed, rep


def test_scalar_parameters():
    # zero reset: the threshold appears only in mem - threshold (float64)
    rep = _leaky_check(3, "zero", 0.8, 0.9)
    assert rep.passed, rep
    # subtract: reset * threshold is a float32 tensor for a 0-dim threshold
    rep = _leaky_check(3, "subtract", 0.8, 0.9)
    errs = {r.quantity: r.max_rel for r in rep.rows}
    assert rep.spike_mismatches == 0 and errs["grad:beta"] < TOL and errs["grad:input"] < TOL
    assert 1e-10 < errs["grad:threshold"] < 1e-6
    assert any("0-dim threshold" in n for n in rep.notes)
