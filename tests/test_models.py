"""Synaptic, recurrent and adaptive cells; parametrisations; their validation."""
import numpy as np
import pytest

from lifgrad import LIFConfig, LIFParams, lif_backward, lif_forward
from lifgrad import surrogates as sgs
from lifgrad.network import Dense, Sequential

RESETS = ("subtract", "zero", "none")


@pytest.mark.parametrize("reset", RESETS)
@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_degenerate_models_reproduce_plain_lif_exactly(rng, reset, backend):
    """R = 0, alpha_s = 0 and beta_a = 0 give the plain LIF layer, bit for bit."""
    I = rng.normal(0.5, 0.6, (25, 3, 7))
    dv, du = rng.normal(size=I.shape), rng.normal(size=I.shape)
    base = LIFConfig(reset=reset, surrogate=sgs.get("sigmoid"), backend=backend)
    p = LIFParams(alpha=0.85, theta=1.0, u_reset=0.1)
    v0, tr0 = lif_forward(I, p, base)
    g0 = lif_backward(tr0, p, base, dv=dv, du=du)
    variants = {
        "synaptic": (base.replace(synaptic=True), p._replace(alpha_s=0.0)),
        "adaptive": (base.replace(adaptive=True), p._replace(beta_a=0.0, rho=0.9)),
        "recurrent-one": (base.replace(recurrent="one"), p._replace(R=np.zeros(7))),
        "recurrent-all": (base.replace(recurrent="all"), p._replace(R=np.zeros((7, 7)))),
        "all three": (base.replace(synaptic=True, adaptive=True, recurrent="all"),
                      p._replace(alpha_s=0.0, beta_a=0.0, R=np.zeros((7, 7)))),
    }
    for name, (cfg, pp) in variants.items():
        v, tr = lif_forward(I, pp, cfg)
        g = lif_backward(tr, pp, cfg, dv=dv, du=du)
        np.testing.assert_array_equal(v, v0, err_msg=name)
        np.testing.assert_array_equal(tr.u, tr0.u, err_msg=name)
        for k in ("I", "alpha", "theta", "u_reset", "u0"):
            np.testing.assert_array_equal(getattr(g, k), getattr(g0, k), err_msg=f"{name} {k}")


def test_synaptic_cell_integrates_current():
    cfg = LIFConfig(synaptic=True, reset="none")
    I = np.array([1.0, 0.0, 0.0])[:, None, None]
    v, tr = lif_forward(I, LIFParams(alpha=0.5, theta=10.0, alpha_s=0.5), cfg)
    np.testing.assert_allclose(tr.s[:, 0, 0], [1.0, 0.5, 0.25])
    np.testing.assert_allclose(tr.u[:, 0, 0], [1.0, 1.0, 0.75])


def test_adaptive_threshold_rises_after_a_spike():
    cfg = LIFConfig(adaptive=True, reset="zero")
    I = np.full((4, 1, 1), 1.2)
    v, tr = lif_forward(I, LIFParams(alpha=0.0, theta=1.0, rho=0.5, beta_a=1.0), cfg)
    # u = 1.2 every step; thresholds 1, 2, 1.5, 2.25 -> spikes 1, 0, 0, 0
    np.testing.assert_allclose(tr.a[:, 0, 0], [0.0, 1.0, 0.5, 0.25])
    assert v[:, 0, 0].tolist() == [1, 0, 0, 0]


def test_recurrent_all_to_all_uses_previous_spikes():
    cfg = LIFConfig(recurrent="all", reset="none")
    R = np.array([[0.0, 0.0], [5.0, 0.0]])          # neuron 0 excites neuron 1
    I = np.zeros((3, 1, 2))
    I[0, 0, 0] = 2.0
    v, tr = lif_forward(I, LIFParams(alpha=0.0, theta=1.0, R=R), cfg)
    assert v[:, 0, 0].tolist() == [1, 0, 0]
    assert v[:, 0, 1].tolist() == [0, 1, 0]


@pytest.mark.parametrize("kw, match", [
    (dict(recurrent="all", R=None), r"R: recurrent='all' needs shape \(3, 3\), got None"),
    (dict(recurrent="all", R=np.zeros(3)), r"R: recurrent='all' needs shape \(3, 3\), got \(3,\)"),
    (dict(recurrent="one", R=np.zeros((3, 3))), r"R: recurrent='one' needs a scalar or shape \(3,\)"),
    (dict(synaptic=True, alpha_s=1.5), r"alpha_s: expected values in \[0.0, 1.0\]"),
    (dict(adaptive=True, rho=-0.1), r"rho: expected values in \[0.0, 1.0\]"),
    (dict(adaptive=True, beta_a=np.nan), r"beta_a: contains NaN or Inf"),
])
def test_bad_model_parameters_raise_with_argument_name(kw, match):
    cfg_kw = {k: kw.pop(k) for k in ("recurrent", "synaptic", "adaptive") if k in kw}
    with pytest.raises(ValueError, match=match):
        lif_forward(np.ones((4, 2, 3)), LIFParams(**kw), LIFConfig(**cfg_kw))


def test_bad_recurrent_config():
    with pytest.raises(ValueError, match=r"recurrent: expected one of 'one', 'all', got 'some'"):
        LIFConfig(recurrent="some")
    with pytest.raises(TypeError, match="synaptic: expected True or False"):
        LIFConfig(synaptic="yes")


def test_clamped_alpha_has_zero_gradient_outside_unit_interval(rng):
    """snnTorch's semantics (P1): clip to [0, 1]; the gradient passes for 0 <= raw <= 1."""
    cfg = LIFConfig(surrogate=sgs.get("sigmoid"))
    layer = Dense(3, 4, cfg, alpha=np.array([0.5, 0.9, 1.0, 0.7]), learn=("alpha",),
                  alpha_param="clamp")
    net = Sequential([layer], dtype="float64")
    net.params["layer0.alpha"] = np.array([0.5, 1.3, 1.0, -0.2])
    x = rng.uniform(0, 1, (6, 2, 3))
    v, tr = net.forward(x)
    g = net.backward(tr, dv=np.ones_like(v), du=np.ones_like(v))
    assert g["layer0.alpha"][1] == 0 and g["layer0.alpha"][3] == 0
    assert g["layer0.alpha"][0] != 0 and g["layer0.alpha"][2] != 0
    # the effective value is the clipped one
    net2 = Sequential([Dense(3, 4, cfg, alpha=np.array([0.5, 1.0, 1.0, 0.0]))], dtype="float64")
    net2.params["layer0.W"], net2.params["layer0.b"] = net.params["layer0.W"], net.params["layer0.b"]
    np.testing.assert_array_equal(net2.forward(x)[0], v)


def test_sigmoid_and_tau_parametrisations_map_to_alpha():
    cfg = LIFConfig()
    a = np.array([0.5, 0.9])
    ls = Dense(2, 2, cfg, alpha=a, learn=("alpha",), alpha_param="sigmoid")
    lt = Dense(2, 2, cfg, alpha=a, learn=("alpha",), alpha_param="tau", dt=0.1)
    ps = ls.init_params(np.random.default_rng(0))
    pt = lt.init_params(np.random.default_rng(0))
    assert "alpha_logit" in ps and "tau_mem" in pt
    np.testing.assert_allclose(ls.effective(ps)[0].alpha, a)
    np.testing.assert_allclose(lt.effective(pt)[0].alpha, a)
    np.testing.assert_allclose(pt["tau_mem"], -0.1 / np.log(a))


def test_theta_range_clips_threshold_and_its_gradient(rng):
    cfg = LIFConfig(surrogate=sgs.get("sigmoid"))
    layer = Dense(3, 3, cfg, theta=np.array([0.5, 2.0, 0.05]), learn=("theta",),
                  theta_range=(0.1, 1.0))
    net = Sequential([layer], dtype="float64")
    v, tr = net.forward(rng.uniform(0, 1, (5, 2, 3)))
    g = net.backward(tr, dv=np.ones_like(v))
    assert g["layer0.theta"][0] != 0 and g["layer0.theta"][1] == 0 and g["layer0.theta"][2] == 0


def test_no_autapses_keeps_diagonal_zero_and_rec_bias_gradient_equals_bias(rng):
    cfg = LIFConfig(recurrent="all", surrogate=sgs.get("sigmoid"))
    net = Sequential([Dense(3, 4, cfg, autapses=False, rec_bias=True)], dtype="float64")
    assert list(net.params) == ["layer0.W", "layer0.b", "layer0.R", "layer0.b_rec"]
    assert np.all(np.diag(net.params["layer0.R"]) == 0)
    net.params["layer0.R"] = net.params["layer0.R"] + np.eye(4)   # ignored: diagonal frozen
    v, tr = net.forward(rng.uniform(0, 2, (6, 2, 3)))
    g = net.backward(tr, dv=np.ones_like(v))
    assert np.all(np.diag(g["layer0.R"]) == 0)
    np.testing.assert_array_equal(g["layer0.b_rec"], g["layer0.b"])
    net.params["layer0.R"] = net.params["layer0.R"] - np.eye(4)
    np.testing.assert_array_equal(net.forward(rng.uniform(0, 2, (6, 2, 3)))[0].shape, (6, 2, 4))


def test_sequential_mixes_models_with_flat_names(rng):
    layers = [Dense(5, 6, LIFConfig(synaptic=True), learn=("alpha_s",), alpha_s_param="tau"),
              Dense(6, 6, LIFConfig(recurrent="all")),
              Dense(6, 4, LIFConfig(adaptive=True), learn=("rho", "beta_a")),
              Dense(4, 2, LIFConfig(recurrent="one"))]
    net = Sequential(layers)
    assert list(net.params) == ["layer0.W", "layer0.b", "layer0.tau_syn", "layer1.W", "layer1.b",
                                "layer1.R", "layer2.W", "layer2.b", "layer2.rho", "layer2.beta_a",
                                "layer3.W", "layer3.b", "layer3.R"]
    v, tr = net.forward(rng.uniform(0, 1, (7, 3, 5)))
    g = net.backward(tr, dv=np.ones_like(v))
    assert list(g) == list(net.params)
    assert all(g[k].shape == net.params[k].shape for k in g)


def test_learning_a_parameter_the_cell_does_not_use_is_an_error():
    with pytest.raises(ValueError, match=r"learn: \['alpha_s'\] not used by this cell"):
        Dense(3, 2, LIFConfig(), learn=("alpha_s",))
    with pytest.raises(ValueError, match="alpha_param: expected one of"):
        Dense(3, 2, alpha_param="log")
    with pytest.raises(ValueError, match="theta_range: expected finite"):
        Dense(3, 2, theta_range=(1.0, 0.5))


def test_all_to_all_layer_below_another_gets_the_functional_gradients(rng):
    """Inside a network the all-to-all layer's dI overwrites the dv the layer
    above sent down (a buffer made by the network); the result is the
    functional API's, which works on its own copies."""
    from lifgrad import lif_backward
    net = Sequential([Dense(4, 5, LIFConfig(recurrent="all", surrogate=sgs.get("sigmoid"))),
                      Dense(5, 3, LIFConfig(surrogate=sgs.get("sigmoid")))], dtype="float64")
    x = rng.uniform(0, 2, (8, 2, 4))
    out, tr = net.forward(x)
    dv_top = rng.normal(size=out.shape)
    g = net.backward(tr, dv=dv_top)
    l0, l1 = net.layers
    n1, _ = l1.effective(net.layer_params(net.params, 1))
    g1 = lif_backward(tr.layers[1].trace, n1, l1.config, dv=dv_top)
    dv0 = g1.I @ net.params["layer1.W"]
    dv0_copy = dv0.copy()
    n0, _ = l0.effective(net.layer_params(net.params, 0))
    g0 = lif_backward(tr.layers[0].trace, n0, l0.config, dv=dv0)
    np.testing.assert_array_equal(dv0, dv0_copy)                  # the caller's dv is kept
    want_W = np.einsum("tbn,tbi->ni", g0.I, x)
    np.testing.assert_allclose(g["layer0.W"], want_W, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g["layer0.R"], g0.R, rtol=1e-12, atol=1e-14)
