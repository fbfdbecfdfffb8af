"""A stochastic forward whose spike probability is the surrogate itself (M13,
``LIFConfig(forward='stochastic', spike_probability='surrogate')``;
derivations/variants.md): Spyx's Bernoulli neurons draw a spike with
probability p and multiply the gradient by p.  Tests: the draws, the
backward (the hard cell's with phi = p, whatever the spikes when nothing
feeds them back), the CPU kernels against the reference, the user-given
uniform draws, the validation, the two new families against Spyx's own
functions, and the Spyx adapter's cases with planted wrong maps.
"""
import numpy as np
import pytest

from lifgrad import surrogates as sgs
from lifgrad.check import kernel_vs_reference
from lifgrad.config import LIFConfig, LIFParams
from lifgrad.functional import lif_backward, lif_forward

SIG = sgs.get("spyx.sigmoid_bernoulli", k=4.0)          # p = 0.8 sig(4 x)


def _cfg(**kw):
    return LIFConfig(**{"reset": "none", "forward": "stochastic",
                        "spike_probability": "surrogate", "surrogate": SIG, **kw})


def test_fires_with_probability_phi_and_the_backward_multiplies_by_it():
    I = np.zeros((4000, 1, 3)) + np.array([-1.0, 0.0, 0.5])      # u - theta = -2, -1, -0.5
    p = LIFParams(alpha=0.0, theta=1.0)
    v, tr = lif_forward(I, p, _cfg(), rng=np.random.default_rng(5))
    want = 0.8 / (1 + np.exp(-4.0 * np.array([-2.0, -1.0, -0.5])))
    np.testing.assert_allclose(v[:, 0].mean(axis=0), want, atol=4 * np.sqrt(0.25 / 4000))
    # the primitive's draws (T7) would fire far more often: sig's primitive is softplus
    g = lif_backward(tr, p, _cfg(), dv=np.ones(I.shape))
    np.testing.assert_allclose(g.I[:, 0], np.broadcast_to(want, (4000, 3)), rtol=1e-14)


def test_the_draws_may_be_given_and_decide_the_spikes():
    rng = np.random.default_rng(0)
    I = rng.normal(0.5, 1.0, (12, 2, 5))
    draws = rng.random(I.shape)
    p = LIFParams(alpha=0.7, theta=1.0)
    v, tr = lif_forward(I, p, _cfg(), rng=draws)
    phi = SIG.phi(tr.u - 1.0)
    np.testing.assert_array_equal(v, (draws < phi).astype(v.dtype))
    with pytest.raises(ValueError, match=r"rng: an array of uniform draws must have shape"):
        lif_forward(I, p, _cfg(), rng=draws[:3])
    with pytest.raises(ValueError, match=r"in \[0, 1\)"):
        lif_forward(I, p, _cfg(), rng=draws + 1.0)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kw", [dict(), dict(reset="subtract", synaptic=True),
                                dict(reset="zero", adaptive=True),
                                dict(surrogate="spyx.refractory_sigmoid_bernoulli",
                                     norm_input=True)],
                         ids=["none", "subtract-synaptic", "zero-adaptive", "refractory"])
def test_cpu_kernels_match_reference(kw, dtype):
    errs = kernel_vs_reference(_cfg(**kw), dtype=dtype, gamma_free=kw.get("reset") == "subtract",
                               T=10, B=4, N=13)
    assert max(errs.values()) <= (1e-12 if dtype == "float64" else 1e-5), errs


def test_validation():
    with pytest.raises(ValueError, match="spike_probability='surrogate'.*forward='hard'"):
        LIFConfig(spike_probability="surrogate", surrogate=SIG)
    with pytest.raises(ValueError, match="spike_probability: expected one of"):
        LIFConfig(forward="stochastic", spike_probability="phi", surrogate="sigmoid")
    with pytest.raises(ValueError, match="spike_probability='surrogate'"):
        LIFConfig(forward="stochastic", surrogate=SIG)          # logistic has no primitive
    assert LIFConfig(forward="stochastic", surrogate="sigmoid").mode()[2] == 2
    assert _cfg().mode()[2] == 3


@pytest.mark.parametrize("name,params", [("spyx.sigmoid_bernoulli", dict(k=10.0)),
                                         ("spyx.sigmoid_bernoulli", dict(k=100.0, max_prob=0.6)),
                                         ("spyx.refractory_sigmoid_bernoulli", dict(k=50.0)),
                                         ("spyx.refractory_sigmoid_bernoulli",
                                          dict(k=20.0, threshold=0.8))])
def test_families_equal_spyx_probability(name, params):
    """The preset's phi is Spyx's p, its backward's factor (jax.grad of the
    activation is g p), on a grid around the threshold."""
    from lifgrad.verify.surrogate_calls import peer_backward
    x = np.linspace(-1.5, 1.5, 301)
    sur = sgs.get(name, **params)
    got = peer_backward(name, x, params)
    np.testing.assert_allclose(sur.phi(x), got.grad, rtol=1e-13, atol=1e-300)
    assert got.grad.max() > 0.3


def test_spyx_bernoulli_cases_agree_and_wrong_maps_do_not():
    from lifgrad.verify import spyx as sx
    AD = sx.ADAPTER
    b = AD.build(AD.case("StochasticAssociativeLIF", "k=10, threshold=0.8"))
    m = AD.layer_map(b.module)
    assert m.config.spike_probability == "surrogate" and m.config.reset == "none"
    rep = AD.check(b, m)
    assert rep.status == "agrees" and rep.spike_mismatches == 0, rep.rows
    assert 0.05 < rep.coverage[0].rate < 0.9
    # the textbook backward dp/dV (T7: probability sig(kx), derivative k sig (1 - sig))
    t7 = m.config.replace(spike_probability="primitive", surrogate=sgs.get("sigmoid", k=10.0))
    assert AD.check(b, m._replace(config=t7)).status == "disagrees"
    # the same map with other draws: the spikes differ
    other = m._replace(draws=lambda shape: np.random.default_rng(1).random(shape))
    assert AD.check(b, other).spike_mismatches > 0
