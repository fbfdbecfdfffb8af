"""The delayed spike output (M5, issue 18): ``LIFConfig(delay_output=True)``
passes on ``y_t = v_{t-1}`` (0 at t = 0), the spike read from the state
before the step's update as Spyx's neurons do.  Checked against Spyx's
equations written out in NumPy, against finite differences of whole
networks (full and checkpointed traces), and against the undelayed cell
with a shifted loss."""
import numpy as np
import pytest

from lifgrad import LIFConfig, LIFParams
from lifgrad.functional import lif_backward, lif_forward, time_chunk
from lifgrad.network import Dense, Readout, Sequential

T, B, N = 23, 3, 5


def _I(seed=0, scale=1.0):
    return np.random.default_rng(seed).normal(0.45, 0.7, (T, B, N)) * scale


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_output_is_the_cell_spike_of_the_step_before(backend):
    cfg = LIFConfig(delay_output=True, backend=backend)
    y, tr = lif_forward(_I(), LIFParams(alpha=0.85), cfg)
    v, tr0 = lif_forward(_I(), LIFParams(alpha=0.85), cfg.replace(delay_output=False))
    np.testing.assert_array_equal(tr.u, tr0.u)          # the cell itself is unchanged
    np.testing.assert_array_equal(tr.v, v)
    assert not y[0].any()
    np.testing.assert_array_equal(y[1:], v[:-1])
    assert y.dtype == v.dtype and v[-1].any()           # the last spike is never output


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_backward_is_the_undelayed_one_with_a_shifted_loss(backend):
    cfg = LIFConfig(delay_output=True, synaptic=True, backend=backend)
    p = LIFParams(alpha=0.9, alpha_s=0.6)
    dy = np.random.default_rng(1).normal(size=(T, B, N))
    _, tr = lif_forward(_I(2), p, cfg)
    g = lif_backward(tr, p, cfg, dv=dy, du=dy)
    dv = np.zeros_like(dy)
    dv[:-1] = dy[1:]                                     # dL/dv_t = dL/dy_{t+1}
    _, tr0 = lif_forward(_I(2), p, cfg.replace(delay_output=False))
    g0 = lif_backward(tr0, p, cfg.replace(delay_output=False), dv=dv, du=dy)
    for a, b in zip(g, g0):
        if a is not None:
            np.testing.assert_array_equal(a, b)
    # and a wrong shift is seen
    g1 = lif_backward(tr0, p, cfg.replace(delay_output=False), dv=dy, du=dy)
    assert not np.array_equal(g1.alpha, g.alpha)


def _spyx_loop(x, beta, theta, alpha=None, W=None):
    """Spyx 1.0.0's LIF/RLIF/CuBaLIF ``__call__`` over time, written out:
    spikes = H(V - theta) (strict) from the state before the step, then
    V = beta V + x + spikes @ W - spikes theta (LIF, RLIF), or for CuBaLIF
    V = beta (V - spikes theta) + I with I = alpha I + x."""
    V = np.zeros(x.shape[1:])
    Icur = np.zeros(x.shape[1:])
    out = np.zeros_like(x)
    for t in range(len(x)):
        s = (V - theta > 0).astype(float)
        if alpha is None:
            fb = 0.0 if W is None else s @ W
            V = beta * V + x[t] + fb - s * theta
        else:
            V = V - s * theta
            Icur = alpha * Icur + x[t]
            V = beta * V + Icur
        out[t] = s
    return out


@pytest.mark.parametrize("neuron", ["LIF", "RLIF", "CuBaLIF"])
def test_spyx_equations(neuron):
    rng = np.random.default_rng(3)
    x = _I(4, 1.5)
    beta, theta = rng.uniform(0.6, 0.95, N), 1.0
    sg = "spyx.superspike"
    if neuron == "LIF":
        want = _spyx_loop(x, beta, theta)
        cfg, p = LIFConfig(delay_output=True, surrogate=sg), LIFParams(alpha=beta, theta=theta)
    elif neuron == "RLIF":
        W = rng.normal(0, 0.4, (N, N))
        want = _spyx_loop(x, beta, theta, W=W)
        cfg = LIFConfig(delay_output=True, surrogate=sg, recurrent="all")
        p = LIFParams(alpha=beta, theta=theta, R=W.T)    # R[i, j] from j to i
    else:
        a = rng.uniform(0.3, 0.8, N)
        want = _spyx_loop(x * 0.5, beta, theta, alpha=a)
        x = x * 0.5
        cfg = LIFConfig(delay_output=True, surrogate=sg, synaptic=True)
        p = LIFParams(alpha=beta, theta=theta, gamma=beta * theta, alpha_s=a)
    assert cfg.strict                                    # the preset carries Spyx's '>'
    y, _ = lif_forward(x, p, cfg)
    assert 0.05 < want.mean() < 0.9
    np.testing.assert_array_equal(y, want)


def _net(top_delay, readout):
    sm = dict(forward="smooth", surrogate="sigmoid")
    layers = [Dense(4, 6, LIFConfig(delay_output=True, recurrent="all", **sm),
                    learn=("alpha", "theta")),
              Dense(6, 5, LIFConfig(delay_output=True, synaptic=True, **sm),
                    learn=("alpha", "alpha_s"))]
    if readout:
        layers.append(Readout(5, 3, learn=("alpha",)))
    else:
        layers.append(Dense(5, 3, LIFConfig(delay_output=top_delay, **sm)))
    net = Sequential(layers, dtype="float64", seed=7)
    for i in range(len(layers)):
        net.params[f"layer{i}.W"] = net.params[f"layer{i}.W"] * 2.5
    return net


@pytest.mark.parametrize("top", ["delayed", "plain", "readout"])
def test_network_gradient_matches_finite_differences(top):
    """The smooth forward (differentiable): the full and the checkpointed
    adjoint of a network of delayed layers against central differences of
    the loss, every parameter and the input, in random directions; the loss
    also has a direct term on the lower delayed layer's output."""
    net = _net(top == "delayed", top == "readout")
    TT, BB = 17, 1100
    assert time_chunk(BB) == 1        # a segment a step: the carried dL/dy row crosses each
    rng = np.random.default_rng(8)
    x = rng.uniform(0, 1, (TT, BB, 4))
    w = rng.normal(size=(TT, BB, 3))
    w1 = rng.normal(size=(TT, BB, 6))

    def loss(params, x=x):
        out, tr = net.forward(x, params=params)
        # layer 1's input is layer 0's delayed output
        y0 = tr.layers[1].x
        return float(np.sum(w * out) + np.sum(w1 * y0))

    kw = dict(du=w) if top == "readout" else dict(dv=w)
    _, tr = net.forward(x)
    assert not tr.layers[1].x[0].any()                     # y_0 = 0
    np.testing.assert_array_equal(tr.layers[1].x[1:], tr.layers[0].trace.v[:-1])
    g = net.backward(tr, layer_dv={0: w1}, need_input_grad=True, **kw)
    _, trk = net.forward(x, checkpoint_every=3)
    gk = net.backward(trk, layer_dv={0: w1}, need_input_grad=True, **kw)
    for k in g:
        np.testing.assert_allclose(gk[k], g[k], rtol=1e-13, atol=1e-13, err_msg=k)
    eps = 1e-6
    for k, p in list(net.params.items()) + [("x", x)]:
        d = rng.normal(size=p.shape)
        if k == "x":
            fd = (loss(net.params, x + eps * d) - loss(net.params, x - eps * d)) / (2 * eps)
        else:
            plus, minus = dict(net.params), dict(net.params)
            plus[k], minus[k] = p + eps * d, p - eps * d
            fd = (loss(plus) - loss(minus)) / (2 * eps)
        an = float(np.sum(g[k] * d))
        assert abs(fd - an) <= 1e-6 * max(1.0, abs(fd)), (k, fd, an)


def test_network_hard_forward_checkpointed_bitwise():
    """Spiking layers (hard forward), time chunks of 10 steps and checkpoint
    segments of 10/20/30: the delayed output's carried row crosses every
    kind of boundary and the gradients are the same bits."""
    cfg = LIFConfig(delay_output=True, surrogate="spyx.superspike")
    net = Sequential([Dense(4, 8, cfg, learn=("alpha",)), Dense(8, 6, cfg.replace(synaptic=True)),
                      Dense(6, 3, cfg)], dtype="float32", seed=2)
    for i in range(3):
        net.params[f"layer{i}.W"] = net.params[f"layer{i}.W"] * 3
    TT, BB = 25, 200
    rng = np.random.default_rng(1)
    x = (rng.uniform(size=(TT, BB, 4)) < 0.4).astype(np.float32)
    dv = rng.normal(size=(TT, BB, 3)).astype(np.float32)
    out, tr = net.forward(x)
    assert all(0.02 < lt.trace.v.mean() < 0.9 for lt in tr.layers)
    g = net.backward(tr, dv=dv, need_input_grad=True)
    for K in (10, 20, 30):
        out_k, trk = net.forward(x, checkpoint_every=K)
        np.testing.assert_array_equal(out_k, out)
        gk = net.backward(trk, dv=dv, need_input_grad=True)
        for k in g:
            np.testing.assert_array_equal(gk[k], g[k], err_msg=f"K={K} {k}")


def test_refusals():
    with pytest.raises(TypeError, match="delay_output"):
        LIFConfig(delay_output=1)
    from lifgrad.device import DeviceNetwork
    net = Sequential([Dense(2, 3, LIFConfig(delay_output=True))])
    with pytest.raises(ValueError, match="delay_output"):
        DeviceNetwork(net)
