"""One network adjoint (issue 17): the same random networks through every
backward path — the full trace, the checkpointed trace with segments of 1, 3
and T steps, and the device network (CUDA simulator) — give the same
gradients: bitwise on the CPU, within 1e-12 (float64) on the device.  A
finite-difference check of the all-to-all layer ties the common result to
the mathematics rather than to itself."""
import numpy as np
import pytest

from lifgrad import LIFConfig
from lifgrad.functional import time_chunk
from lifgrad.network import Dense, Sequential

T, N_IN, HID = 7, 6, (8, 7)
B_CPU = 1100                    # time_chunk(B) = 1: checkpoint lengths 1 and 3 stay 1 and 3
B_DEV = 3                       # the simulator runs one Python thread per CUDA thread

CASES = {
    "plain": (dict(), dict(learn=("alpha", "theta"))),
    "synaptic": (dict(synaptic=True), dict(learn=("alpha", "alpha_s", "theta"))),
    "adaptive": (dict(adaptive=True), dict(learn=("rho", "beta_a", "theta"))),
    "one-to-one": (dict(recurrent="one"), dict(learn=("alpha",))),
    "all-to-all": (dict(recurrent="all"), dict(learn=("theta",))),
    "all-to-all-no-autapses": (dict(recurrent="all", synaptic=True),
                               dict(autapses=False, rec_bias=True)),
    "stochastic": (dict(forward="stochastic", adaptive=True), dict(learn=("alpha", "beta_a"))),
    "norm-input": (dict(norm_input=True, synaptic=True), dict(learn=("alpha", "theta"))),
    "multi-spike": (dict(max_spikes=3, recurrent="all"), dict(learn=("alpha", "theta"))),
    "decay-input": (dict(synaptic=True, decay_input=True, max_spikes=2),
                    dict(learn=("alpha_s", "theta"))),
    "delayed-output": (dict(delay_output=True, recurrent="all"), dict(learn=("alpha", "theta"))),
    "delayed-output-synaptic": (dict(delay_output=True, synaptic=True),
                                dict(learn=("alpha_s",))),
}
# the device network refuses delay_output (tests/test_delay_output.py)
DEVICE_CASES = [c for c in CASES if not CASES[c][0].get("delay_output")]


def _net(case, dtype):
    """Two hidden layers of the case's kind (the lower one below a layer of
    its own kind, so its state and draws are recomputed by the checkpointed
    path) under a plain spiking top layer."""
    cfg_kw, layer_kw = CASES[case]
    cfg = LIFConfig(surrogate="sigmoid", **cfg_kw)
    alphas = (0.9, 0.85, 0.9)
    layers = [Dense(N_IN, HID[0], cfg, alpha=alphas[0], **layer_kw),
              Dense(HID[0], HID[1], cfg, alpha=alphas[1], **layer_kw),
              Dense(HID[1], 4, LIFConfig(surrogate="atan"), alpha=alphas[2])]
    net = Sequential(layers, dtype=dtype, seed=11)
    for i, (layer, alpha) in enumerate(zip(layers, alphas)):
        # norm_input drives the membrane with (1 - alpha) s_t: the same drive needs 1/(1 - alpha)
        gain = 3 / (1 - alpha) if layer.config.norm_input else 3
        net.params[f"layer{i}.W"] = net.params[f"layer{i}.W"] * gain
    return net


def _rng():
    return np.random.default_rng(5)


def _input(B, dtype, static, T=T):
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 1, (B, N_IN)) if static else (rng.uniform(size=(T, B, N_IN)) < 0.4) * 1.0
    return x.astype(dtype)


def _run(net, x, checkpoint_every=None, record=False, T=T, **kw):
    T_arg = T if x.ndim == 2 else None
    out, tr = net.forward(x, T=T_arg, rng=_rng(), checkpoint_every=checkpoint_every)
    B = x.shape[-2]
    seeds = np.random.default_rng(9)
    dv = seeds.normal(size=(T, B, 4)).astype(net.dtype)
    du = seeds.normal(size=(T, B, 4)).astype(net.dtype)
    extra = {0: seeds.normal(size=(T, B, HID[0])).astype(net.dtype)}
    rec = {} if record else None
    g = net.backward(tr, dv=dv, du=du, layer_dv=extra, layer_du=extra, record=rec, **kw)
    return out, tr, g, rec


@pytest.mark.parametrize("static", [False, True], ids=["spikes", "static"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", list(CASES))
def test_full_and_checkpointed_traces_agree_bitwise(case, dtype, static):
    assert time_chunk(B_CPU) == 1
    net = _net(case, dtype)
    x = _input(B_CPU, dtype, static)
    out, tr, g, rec = _run(net, x, record=True, need_input_grad=True)
    # every layer is active, and not saturated, so the surrogate terms matter
    for i, lt in enumerate(tr.layers):
        rate = float(np.mean(lt.trace.v))
        assert 0.02 < rate < 0.9, (i, rate)
    for K in (1, 3, T):
        out_k, tr_k, g_k, rec_k = _run(net, x, checkpoint_every=K, record=True,
                                       need_input_grad=True)
        assert tr_k.K == K
        np.testing.assert_array_equal(out_k, out)
        assert list(g_k) == list(g)
        for k in g:
            np.testing.assert_array_equal(g_k[k], g[k], err_msg=f"K={K} {k}")
        for i in rec:
            np.testing.assert_array_equal(rec_k[i], rec[i], err_msg=f"K={K} record {i}")


@pytest.mark.parametrize("static", [False, True], ids=["spikes", "static"])
@pytest.mark.parametrize("case", list(CASES))
def test_segments_of_several_chunks_agree_bitwise(case, static):
    """Chunks of several steps (time_chunk(200) = 10): the full trace runs
    one chunk per segment, the checkpointed path 1, 2 or 3 chunks per segment
    (K = 10, 20, 30 of T = 25); every product over time is still made per
    chunk, and the all-to-all dR has no term for step 0 in either path."""
    B, T2 = 200, 25
    assert time_chunk(B) == 10
    net = _net(case, "float32")
    x = _input(B, "float32", static, T=T2)
    out, _, g, rec = _run(net, x, record=True, T=T2, need_input_grad=True)
    for K in (10, 20, 30):
        out_k, tr_k, g_k, rec_k = _run(net, x, checkpoint_every=K, record=True, T=T2,
                                       need_input_grad=True)
        assert tr_k.K == K
        np.testing.assert_array_equal(out_k, out)
        for k in g:
            np.testing.assert_array_equal(g_k[k], g[k], err_msg=f"K={K} {k}")
        for i in rec:
            np.testing.assert_array_equal(rec_k[i], rec[i], err_msg=f"K={K} record {i}")


def test_the_bitwise_comparison_can_fail():
    """A checkpointed run with another random stream (a different stochastic
    forward) or another parameter differs: the equality above is not vacuous."""
    net = _net("stochastic", "float64")
    x = _input(B_CPU, "float64", False)
    _, _, g, _ = _run(net, x)
    _, tr = net.forward(x, rng=np.random.default_rng(6), checkpoint_every=3)
    g2 = net.backward(tr, dv=1.0)
    assert not np.array_equal(g2["layer0.W"], g["layer0.W"])
    net2 = _net("all-to-all", "float64")
    _, _, g3, _ = _run(net2, x, checkpoint_every=3)
    net2.params["layer1.R"] = net2.params["layer1.R"] * (1 + 1e-12)
    _, _, g4, _ = _run(net2, x, checkpoint_every=3)
    assert not np.array_equal(g3["layer0.W"], g4["layer0.W"])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", DEVICE_CASES)
def test_device_network_agrees_with_the_host(case, dtype):
    from lifgrad.device import DeviceNetwork, available
    if not available():
        pytest.skip("no CUDA device and no CUDA simulator")
    net = _net(case, dtype)
    x = _input(B_DEV, dtype, False)
    out, tr = net.forward(x, rng=_rng())
    seeds = np.random.default_rng(9)
    du = seeds.normal(size=(T, B_DEV, 4)).astype(dtype)
    g = net.backward(tr, du=du)
    dev = DeviceNetwork(net)
    dtr = dev.forward(x, rng=_rng())
    v, _ = dev.output(dtr)
    np.testing.assert_array_equal(v, out)               # the same spikes
    dg = dev.backward(dtr, du=du)
    assert sorted(dg) == sorted(g)
    tol = 1e-12 if dtype == "float64" else 1e-5
    for k in g:
        got = dg[k].copy_to_host()
        scale = max(float(np.max(np.abs(g[k]))), 1e-30)
        assert float(np.max(np.abs(got - g[k]))) <= tol * scale, k


def test_all_to_all_network_gradient_matches_finite_differences():
    """The smooth forward (a differentiable network): the checkpointed adjoint
    of a network with an all-to-all layer without autapses against central
    differences of the loss, every parameter, in a random direction."""
    cfg = LIFConfig(recurrent="all", forward="smooth", surrogate="sigmoid", synaptic=True)
    net = Sequential([Dense(N_IN, 5, cfg, alpha=0.9, autapses=False, learn=("alpha", "theta")),
                      Dense(5, 3, LIFConfig(forward="smooth", surrogate="sigmoid"), alpha=0.9)],
                     dtype="float64", seed=4)
    x = _input(4, "float64", False)
    w = np.random.default_rng(8).normal(size=(T, 4, 3))

    def loss(params):
        out, _ = net.forward(x, params=params)
        return float(np.sum(w * out))

    _, tr = net.forward(x, checkpoint_every=3)
    g = net.backward(tr, dv=w)
    rng = np.random.default_rng(3)
    for k, p in net.params.items():
        d = rng.normal(size=p.shape)
        if k == "layer0.R":
            np.fill_diagonal(d, 0)                      # the diagonal is frozen at zero
        eps = 1e-6
        plus, minus = dict(net.params), dict(net.params)
        plus[k], minus[k] = p + eps * d, p - eps * d
        fd = (loss(plus) - loss(minus)) / (2 * eps)
        an = float(np.sum(g[k] * d))
        assert abs(fd - an) <= 1e-6 * max(1.0, abs(fd)), (k, fd, an)
