"""Spyx 1.0.0 (JAX, Flax NNX) against lifgrad (lifgrad.verify.spyx)."""
import math
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("spyx", reason="needs spyx (make peers)")
pytest.importorskip("jax", reason="needs JAX")

from lifgrad import surrogates as sgs  # noqa: E402
from lifgrad.verify import spyx as sx  # noqa: E402
from lifgrad.verify.common import TOL  # noqa: E402
from lifgrad.verify.model import compare  # noqa: E402
from lifgrad.verify.protocol import ChainLink  # noqa: E402

AD = sx.ADAPTER
jax, jnp, nnx, snn, axn = sx._jax()          # turns on jax_enable_x64 (the adapter does too)


def _ids(case):
    return " / ".join((case.neuron, case.variant, case.surrogate))


_PARAMS = {"IF": set(), "RIF": {"recurrent_w"}, "LIF": {"beta"}, "RLIF": {"beta", "recurrent_w"},
           "CuBaLIF": {"alpha", "beta"}, "RCuBaLIF": {"alpha", "beta", "recurrent_w"},
           "PSU_LIF": {"beta"}, "AssociativeLIF": {"beta"}, "LI": {"beta"},
           "ALIF": {"beta", "gamma"}, "ParallelResetLIF": {"beta"},
           "StochasticAssociativeLIF": {"beta"}, "SPSN": {"beta"},
           "StochasticAssociativeCuBaLIF": {"alpha", "beta"}}


@pytest.mark.parametrize("case", AD.cases(), ids=_ids)
def test_case_matches(case):
    rep = AD.run(case)
    assert rep.spike_mismatches == 0, rep
    assert rep.worst <= TOL, rep.rows
    assert rep.status == "agrees", rep.rows
    names = {r.quantity for r in rep.rows}
    want = {"grad:input", "mem"} | {f"grad:{p}" for p in _PARAMS[case.neuron]}
    if "parallel" in case.variant or case.neuron == "StochasticAssociativeCuBaLIF":
        want.discard("mem")                     # they return the spikes alone
    assert names == want, names
    if case.neuron == "LI" or "spike=False" in case.variant:
        assert math.isnan(rep.coverage[0].rate) and not rep.warnings
    else:
        assert 0.05 < rep.coverage[0].rate < 0.9, rep.coverage
        assert not rep.warnings, rep.warnings


def test_coverage():
    assert set(sx.NEURONS) == set(_PARAMS)
    presets = {p for p in sgs.PRESETS if p.startswith("spyx.")}
    assert presets == {c.surrogate for c in AD.cases()} == \
        set(sx.SURROGATE_PARAMS) | set(sx.BERNOULLI_PARAMS)
    quick = AD.cases(quick=True)
    assert 0 < len(quick) < len(AD.cases())
    assert {c.neuron for c in quick} >= {"LIF", "CuBaLIF", "RLIF", "PSU_LIF", "LI"}
    kinds = [kw.get("beta") for vs in sx.VARIANTS.values() for kw in vs.values()]
    assert {"scalar", "per-neuron", "bounds"} <= set(kinds)


def test_layer_map_fields():
    lif = sx.make_module("LIF", "beta per neuron")
    m = AD.layer_map(lif)
    c = m.config
    assert c.delay_output and c.strict and c.reset == "subtract" and not c.detach_reset
    assert not m.post_reset and m.params.gamma is None and m.params.theta == 1.0
    assert np.array_equal(m.params.alpha, np.asarray(lif.beta[...]))
    assert AD.layer_map(sx.make_module("IF", "theta=0.8")).params.alpha == 1.0
    cuba = sx.make_module("CuBaLIF", "alpha, beta scalar")
    m = AD.layer_map(cuba)
    assert m.config.synaptic and m.config.delay_output and not m.config.decay_input
    assert m.params.alpha == sx.BETA and m.params.alpha_s == sx.ALPHA
    assert m.params.gamma == pytest.approx(sx.BETA * 1.0, rel=1e-15)
    r = sx.make_module("RLIF", "beta per neuron")
    m = AD.layer_map(r)
    assert m.config.recurrent == "all"
    assert np.array_equal(m.params.R, np.asarray(r.recurrent_w[...]).T)
    for n in ("PSU_LIF", "AssociativeLIF"):
        m = AD.layer_map(sx.make_module(n, "beta per neuron"))
        assert m.config.reset == "none" and not m.config.delay_output and m.config.strict
    li = AD.layer_map(sx.make_module("LI", "beta scalar"))
    assert li.spike_scale == 0.0 and li.config.reset == "none" and li.params.alpha == sx.BETA


@pytest.mark.parametrize("name", sorted(sx.SURROGATE_PARAMS))
def test_surrogate_of_reads_the_activation(name):
    mod = sx.make_module("LIF", "beta scalar", name)
    preset, params = AD.surrogate_of(mod)
    want = sx.SURROGATE_PARAMS[name] or {"k": 25.0}
    assert preset == name and params.keys() == want.keys()
    for k, v in want.items():
        assert params[k] == pytest.approx(v, rel=1e-15)
    sg = sgs.get(preset, **params)
    x = np.linspace(-1.5, 1.5, 301)
    g = np.asarray(jax.vmap(jax.grad(mod.spike))(jnp.asarray(x)))
    assert np.allclose(sg.phi(x), g, rtol=1e-12, atol=0)


def test_custom_and_foreign_activations_are_refused():
    with pytest.raises(ValueError, match="spyx.custom"):
        AD.surrogate_of(axn.custom())
    with pytest.raises(ValueError, match="spyx.custom"):
        AD.surrogate_of(axn.custom(lambda x: jnp.ones_like(x)))
    with pytest.raises(ValueError, match="not one of Spyx's surrogate activations"):
        AD.surrogate_of(snn.LIF((3,), beta=0.5, activation=jax.nn.sigmoid, rngs=nnx.Rngs(0)))
    with pytest.raises(ValueError, match="no spikes"):
        AD.surrogate_of(sx.make_module("LI", "beta scalar"))


def _remapped(case, **changes):
    b = AD.build(AD.case(*case))
    m = AD.layer_map(b.module)
    for k in ("params", "config"):
        if k in changes:
            changes[k] = changes[k](m)
    return AD.check(b, m._replace(**changes))


@pytest.mark.parametrize("case,change", [
    (("LIF", "beta per neuron"), dict(config=lambda m: m.config.replace(delay_output=False))),
    (("RIF", "all-to-all"), dict(config=lambda m: m.config.replace(delay_output=False))),
    (("LIF", "beta per neuron"), dict(config=lambda m: m.config.replace(detach_reset=True))),
    (("CuBaLIF", "alpha, beta per neuron"),
     dict(params=lambda m: m.params._replace(gamma=m.params.theta))),
    (("RLIF", "beta per neuron"), dict(params=lambda m: m.params._replace(R=m.params.R.T))),
    (("RCuBaLIF", "alpha, beta per neuron"),
     dict(params=lambda m: m.params._replace(R=m.params.R.T))),
    (("PSU_LIF", "beta per neuron"), dict(config=lambda m: m.config.replace(delay_output=True))),
    (("PSU_LIF", "beta per neuron"), dict(config=lambda m: m.config.replace(reset="subtract"))),
    (("LIF", "beta per neuron"), dict(config=lambda m: m.config.replace(
        surrogate=sgs.get("spyx.superspike", k=20.0)))),
], ids=lambda x: str(x) if isinstance(x, tuple) else "")
def test_wrong_mapping_detected(case, change):
    assert not _remapped(case, **change).passed


def test_wrong_chain_rules_detected():
    """CuBaLIF's dL/dbeta without gamma's share theta dL/dgamma, and a clip
    derivative of 1 at the bounds (JAX's is 1/2), each fail grad:beta alone."""
    b = AD.build(AD.case("CuBaLIF", "alpha, beta per neuron"))
    m = AD.layer_map(b.module)
    right = m.param_grads

    def no_gamma(g, I, tr):
        return dict(right(g, I, tr), beta=np.asarray(g.alpha))
    rep = AD.check(b, m._replace(param_grads=no_gamma))
    assert [r.quantity for r in rep.failing] == ["grad:beta"]

    # a scalar beta with a per-neuron threshold: g.alpha is already summed,
    # theta g.gamma is not; adding the sum to every neuron's term is caught
    b = AD.build(AD.case("CuBaLIF", "alpha, beta scalar, threshold per neuron"))
    m = AD.layer_map(b.module)
    theta = m.params.theta
    assert np.ndim(theta) == 1 and np.ndim(m.params.alpha) == 0

    def summed_together(g, I, tr):
        return dict(m.param_grads(g, I, tr),
                    beta=np.asarray(np.sum(np.asarray(g.alpha) + theta * np.asarray(g.gamma))))
    rep = AD.check(b, m._replace(param_grads=summed_together))
    assert [r.quantity for r in rep.failing] == ["grad:beta"]

    b = AD.build(AD.case("LIF", "beta at the clip bounds"))
    m = AD.layer_map(b.module)
    assert {0.0, 1.0} <= set(np.asarray(b.module.beta[...]).tolist())
    rep = AD.check(b, m._replace(param_grads=lambda g, I, tr: {"beta": np.asarray(g.alpha)}))
    assert [r.quantity for r in rep.failing] == ["grad:beta"]


def test_strict_comparison_detected():
    """Inputs on a grid of 1/4 put the membrane exactly on the threshold: Spyx
    fires at V > theta, and strict=False is caught."""
    b = AD.build(AD.case("IF", "theta=1"))
    I = np.round(b.I * 4) / 4
    b = b._replace(I=I)
    rep = AD.check(b)
    assert rep.passed and rep.spike_mismatches == 0
    lg = AD.layer_map(b.module)
    u = np.asarray(AD.peer_forward(b.module, I)[1])
    assert np.any(u == 1.0)                                  # exactly at the threshold
    rep = AD.check(b, lg._replace(config=lg.config.replace(strict=False)))
    assert rep.spike_mismatches > 0


def test_output_is_one_step_late():
    """Departure: the spike Spyx returns at step t is the one of V_{t-1} (its
    docstrings do not say so): the first step never spikes, whatever the input."""
    m = sx.make_module("LIF", "beta scalar")
    I = np.full((5, 1, 6), 3.0)
    spk, mem = AD.peer_forward(m, I)
    assert not spk[0].any() and spk[1].all()
    assert np.array_equal(spk[1:], (mem[:-1] > 1.0).astype(float))


def test_documented_departures_of_the_activations():
    g = lambda act, x: float(jax.grad(act)(jnp.float64(x)))  # noqa: E731
    assert g(axn.custom(), 3.0) == 3.0                       # identity backward: g*x, not STE's 1
    assert g(axn.arctan(), 0.0) == pytest.approx(1 / math.pi, rel=1e-15)   # peak 1/pi
    assert g(axn.tanh(2.0), 0.0) == 1.0                      # d tanh(2x)/dx would be 2
    assert g(axn.boxcar(), 1.0) == 0.0 and g(axn.boxcar(), 0.999) == 0.5   # |x| < w/2, not <=
    assert float(jax.grad(lambda b: jnp.clip(b, 0, 1))(1.0)) == 0.5      # clip at its bound


def test_alif_maps_onto_the_reset_by_the_adaptive_threshold():
    """ALIF (M7): rho = clip(gamma), beta_a = 1 - clip(gamma), the tied reset by
    theta_t, read one step late; a reset by the constant theta, the spike's
    threshold without gradient, an increment without the (1 - gamma), or
    dL/dgamma without the beta_a share each disagree."""
    b = AD.build(AD.case("ALIF", "beta, gamma per neuron"))
    m = AD.layer_map(b.module)
    c, p = m.config, m.params
    assert c.adaptive and c.reset_by_threshold and c.delay_output and c.strict
    assert p.gamma is None and np.allclose(p.rho + p.beta_a, 1.0)
    assert AD.check(b, m).passed
    wrong = [m._replace(config=c.replace(reset_by_threshold=False)),
             m._replace(config=c.replace(theta_grad="none")),
             m._replace(params=p._replace(beta_a=np.ones_like(p.beta_a)))]
    for w in wrong:
        assert not AD.check(b, w).passed
    right = m.param_grads
    rep = AD.check(b, m._replace(param_grads=lambda g, I, tr: dict(
        right(g, I, tr), gamma=np.asarray(g.rho))))
    assert [r.quantity for r in rep.failing] == ["grad:gamma"]


def test_other_modules_are_refused():
    from spyx.phasor import ResonateFire          # a complex (resonate-and-fire) state
    for m, word in ((ResonateFire((4,), rngs=nnx.Rngs(0)), "resonate-and-fire"),):
        assert AD.is_neuron(m)
        with pytest.raises(ValueError, match="not covered") as e:
            AD.layer_map(m)
        assert word in str(e.value)
    lin = nnx.Linear(2, 2, rngs=nnx.Rngs(0))
    assert not AD.is_neuron(lin) and not AD.is_neuron(object())
    # a Bernoulli neuron (module(key, x)) inside a Sequential, which cannot call it so
    from spyx.experimental.stochastic import SPSN
    net = snn.Sequential(nnx.Linear(3, 4, rngs=nnx.Rngs(0)), SPSN((4,), rngs=nnx.Rngs(0)))
    with pytest.raises(ValueError, match="whole sequence with a key"):
        compare(net, np.ones((5, 2, 3)))
    with pytest.raises(ValueError, match="expected a Spyx neuron"):
        AD.layer_map(lin)


def test_associative_lif_reparameterisation_matches_stateleaky():
    """AssociativeLIF(beta_from_snntorch(b)) is snnTorch's StateLeaky(b): in float64
    to 1e-10 (snnTorch's tau = 1/(1 - b + 1e-12)); its beta is the per-step decay."""
    torch = pytest.importorskip("torch")
    snntorch = pytest.importorskip("snntorch")
    b = snn.AssociativeLIF.beta_from_snntorch(0.9)
    assert float(b) == pytest.approx(math.exp(-0.1), rel=1e-15)
    assert float(snn.AssociativeLIF.snntorch_beta_from_beta(b)) == pytest.approx(0.9, rel=1e-15)
    m = sx.make_module("AssociativeLIF", "beta_from_snntorch(0.9)")
    assert AD.layer_map(m).params.alpha == float(b)
    x = np.random.default_rng(0).normal(0.1, 0.6, (20, 3, 6))
    spk, mem = AD.peer_forward(m, x)
    sl = snntorch.StateLeaky(beta=torch.tensor(0.9, dtype=torch.float64), channels=6).double()
    s2, m2 = sl(torch.tensor(x))
    assert np.max(np.abs(m2.detach().numpy() - mem)) < 1e-10 * np.max(np.abs(mem))
    assert np.array_equal(s2.detach().numpy(), spk)


def test_importing_lifgrad_leaves_jax_alone():
    code = ("import lifgrad, lifgrad.verify, lifgrad.verify.spyx, jax; "
            "from lifgrad.verify import protocol; protocol.adapter('spyx'); "
            "print(jax.config.jax_enable_x64)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------- compare()

def _net(kind="LI", dtype=None):
    dtype = jnp.float32 if dtype is None else dtype
    r = nnx.Rngs(0)
    l1 = nnx.Linear(5, 8, rngs=r, param_dtype=dtype)
    l2 = nnx.Linear(8, 4, rngs=r, param_dtype=dtype)
    if kind == "LI":
        n1, n2 = snn.LIF((8,), rngs=r), snn.LI((4,), rngs=r)
    elif kind == "ALIF":
        n1, n2 = snn.ALIF((8,), beta=0.85, rngs=r), snn.ALIF((4,), rngs=r)
    else:
        n1 = snn.RLIF((8,), beta=0.85, rngs=r, activation=axn.triangular(1.5))
        n1.recurrent_w = nnx.Param(n1.recurrent_w[...] * 0.3)
        n2 = snn.CuBaLIF((4,), rngs=r, activation=axn.arctan())
    return snn.Sequential(snn.Flatten(), l1, n1, l2, n2)


@pytest.mark.parametrize("kind", ["LI", "CuBaLIF", "ALIF"])
def test_compare_sequential_model(kind):
    net = _net(kind)
    x = np.random.default_rng(1).uniform(0, 1.5, (4, 20, 5))
    before = jax.tree.map(np.array, nnx.state(net))
    rep = compare(net, x, layout="BTN")
    assert rep.framework == "spyx"
    assert rep.status == "agrees" and rep.worst <= TOL, rep.rows
    assert rep.spike_mismatches == 0
    names = {r.quantity for r in rep.rows}
    want = {"grad:input", "mem", "grad:layers.1.kernel", "grad:layers.1.bias", "grad:layers.2.beta",
            "grad:layers.3.kernel", "grad:layers.4.beta"}
    if kind == "CuBaLIF":
        want |= {"grad:layers.2.recurrent_w", "grad:layers.4.alpha"}
    if kind == "ALIF":
        want |= {"grad:layers.2.gamma", "grad:layers.4.gamma"}
    assert want <= names, names
    assert rep.coverage[0].rate > 0.02
    if kind == "LI":
        assert math.isnan(rep.coverage[1].rate)
    else:
        assert rep.coverage[1].rate > 0.02
    after = nnx.state(net)
    same = jax.tree.map(lambda a, b: a.dtype == b.dtype and np.array_equal(a, b), before,
                        jax.tree.map(np.array, after))
    assert all(jax.tree.leaves(same))                       # the user's model untouched
    assert net.layers[1].kernel[...].dtype == jnp.float32


def test_compare_refuses_unmapped_layers_before_running():
    r = nnx.Rngs(0)
    from spyx.phasor import ResonateFire
    net = snn.Sequential(nnx.Linear(3, 4, rngs=r), ResonateFire((4,), rngs=r))
    with pytest.raises(ValueError, match="ResonateFire"):
        compare(net, np.ones((5, 2, 3)))
    net = snn.Sequential(nnx.Linear(3, 4, rngs=r), nnx.Dropout(0.5, rngs=r),
                         snn.LIF((4,), rngs=r))
    with pytest.raises(ValueError, match="Dropout"):
        compare(net, np.ones((5, 2, 3)))
    net = snn.Sequential(nnx.Linear(3, 4, rngs=r), snn.LI((4,), rngs=r),
                         nnx.Linear(4, 2, rngs=r), snn.LIF((2,), rngs=r))
    with pytest.raises(ValueError, match="LI"):
        compare(net, np.ones((5, 2, 3)))
    with pytest.raises(TypeError, match="spyx.nn.Sequential"):
        compare(snn.LIF((4,), rngs=r), np.ones((5, 2, 4)))


def test_wrong_delay_in_a_model_is_detected(monkeypatch):
    """compare() goes through layer_map: a mapping without the one-step delay disagrees."""
    orig = sx.Spyx.layer_map

    def wrong(self, module):
        m = orig(self, module)
        return m._replace(config=m.config.replace(delay_output=False))
    monkeypatch.setattr(sx.Spyx, "layer_map", wrong)
    rep = compare(_net("CuBaLIF"), np.random.default_rng(1).uniform(0, 1.5, (20, 4, 5)))
    assert not rep.passed


def test_model_chain_is_numpy():
    links = AD.model_chain(_net("CuBaLIF"))
    assert [type(lk) for lk in links] == [ChainLink, ChainLink]
    assert links[0].W.shape == (8, 5) and links[0].transposed and links[0].weight == \
        "layers.1.kernel"
    assert all(isinstance(lk.W, np.ndarray) and lk.W.dtype == np.float64 for lk in links)


def test_parallel_reset_needs_nearly_t_iterations_for_exact_gradients(monkeypatch):
    """ParallelResetLIF.parallel(x, K): K = T agrees with the sequential
    recurrence (the cases); its default K = 3 misses spikes on the standard
    problem (an approximation its docstring states), and K = 10 reproduces
    every spike of T = 20 steps while its gradient is still off (the unrolled
    iteration's early surrogate factors, evaluated before convergence)."""
    case = AD.case("ParallelResetLIF", "beta per neuron, parallel(K=T)")
    assert case.T == 20
    out = {}
    for K in (3, 10, 20):
        monkeypatch.setattr(sx, "_parallel_reset", lambda m, x, K=K: (m.parallel(x, K=K), None))
        sx._GRADS.clear()
        out[K] = AD.run(case)
    sx._GRADS.clear()
    assert out[3].spike_mismatches > 0 and out[3].status == "disagrees"
    assert out[10].spike_mismatches == 0 and 1e-6 < out[10].worst < 1e-2
    assert out[20].status == "agrees" and out[20].worst <= TOL


def test_compare_sequential_with_parallel_reset_lif():
    """A Sequential holding ParallelResetLIF (run by its __call__, LIF's step)."""
    from spyx.experimental import ParallelResetLIF
    r = nnx.Rngs(0)
    net = snn.Sequential(nnx.Linear(3, 5, rngs=r), ParallelResetLIF((5,), rngs=r),
                         nnx.Linear(5, 2, rngs=r), snn.LIF((2,), beta=0.8, rngs=r))
    x = np.random.default_rng(2).uniform(0.0, 2.0, (12, 2, 3))
    rep = compare(net, x)
    assert rep.status == "agrees" and rep.spike_mismatches == 0 and rep.worst <= TOL, rep.rows
    assert "grad:layers.1.beta" in {q.quantity for q in rep.rows}
    assert all(c.rate > 0.02 for c in rep.coverage), rep.coverage
