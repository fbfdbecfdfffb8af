"""The reset by the adaptive threshold (M7), the spike's threshold without a
gradient (M8) and the adaptation as a membrane current (M9),
derivations/variants.md: the cells of Spyx's ``ALIF``, sinabs' ``ALIF`` and
Rockpool's ``aLIFTorch``.

    gamma_t = k theta_t,  u_{t+1} = ... - k theta_t v_t      reset_by_threshold   (M7)
    dv_t/dtheta_t = 0                                        theta_grad='none'    (M8)
    u_t -= beta_a a_t, theta_t = theta                       adaptation='current' (M9)

Each framework's equations written out in NumPy against lifgrad's forward
and, in a smooth form, against central differences through the chain rules
of the adapters; central differences of whole networks; the reference, CPU
and CUDA (simulator) kernels; full vs checkpointed networks bit for bit; the
zero variants bit for bit as the cell without them; and a planted error in
the adjoint (the reset's threshold term dropped) that the checks catch."""
import numpy as np
import pytest

from lifgrad import LIFConfig, LIFParams, lif_backward, lif_forward
from lifgrad import surrogates as sgs
from lifgrad.check import (TOL_FD, TOL_KERNEL, fd_layer, fd_network, fd_zero_surrogate,
                           kernel_vs_reference)
from lifgrad.network import Dense, Sequential

TRI = sgs.get("triangle", w=0.8)       # G = 0 below -0.8: a smooth spike that is 0 at rest
SIG = sgs.get("sigmoid", k=4.0)


def _fd(f, h=1e-5):
    """Fourth-order central difference at 0 of the scalar function ``f(eps)``."""
    return (8 * (f(h) - f(-h)) - (f(2 * h) - f(-2 * h))) / (12 * h)


def _agree(fd, an, what):
    assert abs(fd - an) <= 1e-7 * max(1.0, abs(fd)), (what, fd, an)


# --------------------------------------------------------------------------
# the frameworks' equations, written out
# --------------------------------------------------------------------------

def spyx_alif(I, beta, gamma, theta, spike):
    """Spyx 1.0.0 ALIF: s = spike(V - theta - T); V = beta V + x - s (theta + T);
    T = gamma T + (1 - gamma) s.  Returns (s, V) over time."""
    V = np.zeros(I.shape[1:])
    Th = np.zeros(I.shape[1:])
    out, mem = [], []
    for x in I:
        thresh = theta + Th
        s = spike(V - thresh)
        V = beta * V + x - s * thresh
        Th = gamma * Th + (1 - gamma) * s
        out.append(s)
        mem.append(V)
    return np.array(out), np.array(mem)


def sinabs_alif(I, alpha, rho, scale, b0, spike, alpha_syn=None, norm=True, held=None):
    """sinabs 3.1.3 ALIF: i = alpha_syn (i + x) (or x), stored as (1 - alpha) i
    with norm_input; v = alpha V + i; B = b0 + scale b; n = spike(v - B) (the
    threshold ``held[t]`` when given: no gradient); V = v - B n; b = rho b +
    (1 - rho) n.  Returns (n, v pre-reset)."""
    i = np.zeros(I.shape[1:])
    V = np.zeros(I.shape[1:])
    b = np.zeros(I.shape[1:])
    out, mem = [], []
    for t, x in enumerate(I):
        i = alpha_syn * (i + x) if alpha_syn is not None else x
        if norm:
            i = (1 - alpha) * i
        v = alpha * V + i
        B = b0 + scale * b
        n = spike(v - (B if held is None else held[t]))
        V = v - B * n
        b = rho * b + (1 - rho) * n
        out.append(n)
        mem.append(v)
    return np.array(out), np.array(mem)


def rockpool_alif(I, alpha, beta, g, w, theta, bias, spike):
    """Rockpool 3.1.0 aLIFTorch: isyn = beta (isyn + x); iahp = g (iahp + w s);
    vmem = alpha vmem + isyn + iahp + bias; s = spike(vmem); vmem -= s theta.
    Returns (s, vmem post-reset)."""
    isyn = np.zeros(I.shape[1:])
    iahp = np.zeros(I.shape[1:])
    vmem = np.zeros(I.shape[1:])
    s = np.zeros(I.shape[1:])
    out, mem = [], []
    for x in I:
        isyn = beta * (isyn + x)
        iahp = g * (iahp + w * s)
        vmem = alpha * vmem + (isyn + iahp) + bias
        s = spike(vmem)
        vmem = vmem - s * theta
        out.append(s)
        mem.append(vmem)
    return np.array(out), np.array(mem)


def _spyx_map(beta, gamma, theta, **kw):
    cfg = LIFConfig(adaptive=True, reset_by_threshold=True, delay_output=True, strict=True, **kw)
    return cfg, LIFParams(alpha=beta, theta=theta, rho=gamma, beta_a=1 - gamma)


def _sinabs_map(alpha, rho, scale, b0, alpha_syn, norm, **kw):
    syn = alpha_syn is not None
    cfg = LIFConfig(adaptive=True, reset_by_threshold=True, theta_grad="none", strict=False,
                    synaptic=syn, decay_input=syn, norm_input=norm and not syn, **kw)
    alpha_s = None if not syn else ((1 - alpha) * alpha_syn if norm else alpha_syn)
    return cfg, LIFParams(alpha=alpha, theta=b0, gamma=alpha, rho=rho, beta_a=scale * (1 - rho),
                          **({"alpha_s": alpha_s} if syn else {}))


def _rockpool_map(alpha, beta, g, w, theta, bias, **kw):
    cfg = LIFConfig(adaptive=True, adaptation="current", synaptic=True, decay_input=True,
                    strict=False, **kw)
    return cfg, LIFParams(alpha=alpha, theta=theta, gamma=alpha * theta, alpha_s=beta, rho=g,
                          beta_a=-g * w, u_bias=bias)


N = 4


def _drive(seed, T=30, B=2, mean=0.6, std=0.8):
    return np.random.default_rng(seed).normal(mean, std, (T, B, N))


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_spyx_alif_equations(backend):
    beta, gamma = np.linspace(0.6, 0.9, N), np.array([0.3, 0.7, 0.95, 1.0])
    I = _drive(1)
    spk, V = spyx_alif(I, beta, gamma, 1.0, lambda x: (x > 0) * 1.0)
    cfg, p = _spyx_map(beta, gamma, 1.0, backend=backend, surrogate="spyx.superspike")
    y, tr = lif_forward(I, p, cfg)
    assert 0.1 < spk.mean() < 0.6
    np.testing.assert_array_equal(y, spk)                 # the output one step late (M5)
    np.testing.assert_allclose(tr.u, V, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("syn,norm", [(False, True), (False, False), (True, True), (True, False)])
def test_sinabs_alif_equations(syn, norm):
    alpha, rho, scale, b0 = np.exp(-1 / 2.7), np.exp(-1 / np.linspace(3, 8, N)), 1.8, 1.1
    alpha_syn = np.exp(-1 / 1.9) if syn else None
    I = _drive(2, mean=2.0 if norm else 0.5, std=2.5 if norm else 0.7)
    spk, v = sinabs_alif(I, alpha, rho, scale, b0, lambda x: (x >= 0) * 1.0, alpha_syn, norm)
    cfg, p = _sinabs_map(alpha, rho, scale, b0, alpha_syn, norm, surrogate="sinabs.Gaussian")
    n, tr = lif_forward(I, p, cfg)
    assert 0.05 < spk.mean() < 0.6
    np.testing.assert_array_equal(n, spk)
    np.testing.assert_allclose(tr.u, v, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("M", [1, 3])
def test_rockpool_alif_equations(M):
    alpha, beta = np.exp(-1 / 4.3), np.exp(-1 / 2.7)
    g, w = np.exp(-1 / np.linspace(3, 9, N)), np.linspace(-1.2, -0.2, N)
    bias = np.linspace(-0.1, 0.2, N)
    I = _drive(3, mean=0.9, std=1.0)

    def count(vm):                                        # floor(v/theta), at most M
        return np.minimum(np.where(vm >= 1.0, np.floor(vm / 1.0), 0.0), M)
    spk, vmem = rockpool_alif(I, alpha, beta, g, w, 1.0, bias, count)
    cfg, p = _rockpool_map(alpha, beta, g, w, 1.0, bias, max_spikes=M, theta_grad="ratio",
                           surrogate=sgs.get("rockpool.StepPWL", window=0.5, threshold=1.0))
    n, tr = lif_forward(I, p, cfg)
    assert spk.max() == M and 0.1 < (spk > 0).mean() < 0.7
    np.testing.assert_array_equal(n, spk)
    np.testing.assert_allclose(tr.u - 1.0 * n, vmem, rtol=1e-13, atol=1e-13)


# --------------------------------------------------------------------------
# the gradients of the frameworks' equations, through the adapters' chain rules
# --------------------------------------------------------------------------

def test_spyx_alif_gradient_against_central_differences():
    """Smooth spike G (triangle: 0 at rest, so Spyx's first output is 0 as in
    the hard forward): dL/dx, dL/dbeta = g.alpha and dL/dgamma = g.rho - g.beta_a
    of L = sum A s + sum C V against central differences of Spyx's equations."""
    rng = np.random.default_rng(4)
    I = _drive(4, T=16, mean=0.7)
    A, C = rng.normal(size=I.shape), rng.normal(size=I.shape)
    beta, gamma, theta = np.linspace(0.6, 0.9, N), np.linspace(0.4, 0.9, N), 1.0

    def loss(I_=I, beta_=beta, gamma_=gamma):
        s, V = spyx_alif(I_, beta_, gamma_, theta, TRI.G)
        return float(np.sum(A * s) + np.sum(C * V))
    cfg, p = _spyx_map(beta, gamma, theta, forward="smooth", surrogate=TRI)
    y, tr = lif_forward(I, p, cfg)
    assert np.max(np.abs(y - spyx_alif(I, beta, gamma, theta, TRI.G)[0])) < 1e-13
    g = lif_backward(tr, p, cfg, dv=A, du=C)
    dI, d = rng.normal(size=I.shape), rng.normal(size=N)
    _agree(_fd(lambda e: loss(I_=I + e * dI)), float(np.sum(g.I * dI)), "input")
    _agree(_fd(lambda e: loss(beta_=beta + e * d)), float(np.sum(g.alpha * d)), "beta")
    _agree(_fd(lambda e: loss(gamma_=gamma + e * d)),
           float(np.sum((g.rho - g.beta_a) * d)), "gamma")
    assert np.all(np.abs(g.beta_a) > 1e-6)          # the adaptation matters


@pytest.mark.parametrize("syn", [False, True])
def test_sinabs_alif_gradient_against_central_differences(syn):
    """The spike's threshold held at its value (sinabs passes it no gradient,
    M8): dL/dx, dL/dalpha_mem = g.alpha + g.gamma (- alpha_syn g.alpha_s),
    dL/dalpha_syn = (1 - alpha) g.alpha_s, dL/dalpha_adapt = g.rho - scale
    g.beta_a, dL/dadapt_scale = (1 - rho) g.beta_a, dL/db0 = g.theta, of L =
    sum A n + sum C v against central differences of sinabs' equations."""
    rng = np.random.default_rng(5)
    I = _drive(5, T=16, mean=2.2, std=2.0)
    A, C = rng.normal(size=I.shape), rng.normal(size=I.shape)
    alpha, rho = np.linspace(0.55, 0.8, N), np.linspace(0.7, 0.9, N)
    scale, b0 = 1.8, 1.0
    asyn = np.linspace(0.5, 0.7, N) if syn else None
    cfg, p = _sinabs_map(alpha, rho, scale, b0, asyn, True, forward="smooth", surrogate=SIG)
    n, tr = lif_forward(I, p, cfg)
    held = b0 + p.beta_a * tr.a                     # the spike's threshold at this point
    base = dict(I=I, alpha=alpha, rho=rho, scale=scale, b0=b0, alpha_syn=asyn)

    def loss(**ch):
        q = dict(base, **ch)
        s, v = sinabs_alif(q["I"], q["alpha"], q["rho"], q["scale"], q["b0"], SIG.G,
                           q["alpha_syn"], True, held)
        return float(np.sum(A * s) + np.sum(C * v))
    assert np.max(np.abs(n - sinabs_alif(I, alpha, rho, scale, b0, SIG.G, asyn)[0])) < 1e-13
    g = lif_backward(tr, p, cfg, dv=A, du=C)
    dI, d = rng.normal(size=I.shape), rng.normal(size=N)
    ga = g.alpha + g.gamma - (asyn * g.alpha_s if syn else 0)
    _agree(_fd(lambda e: loss(I=I + e * dI)), float(np.sum(g.I * dI)), "input")
    _agree(_fd(lambda e: loss(alpha=alpha + e * d)), float(np.sum(ga * d)), "alpha_mem")
    _agree(_fd(lambda e: loss(rho=rho + e * d)),
           float(np.sum((g.rho - scale * g.beta_a) * d)), "alpha_adapt")
    _agree(_fd(lambda e: loss(scale=scale + e)), float(np.sum((1 - rho) * g.beta_a)),
           "adapt_scale")
    _agree(_fd(lambda e: loss(b0=b0 + e)), float(np.sum(g.theta)), "b0")
    if syn:
        _agree(_fd(lambda e: loss(alpha_syn=asyn + e * d)),
               float(np.sum((1 - alpha) * g.alpha_s * d)), "alpha_syn")
    assert abs(float(np.sum(g.theta))) > 1e-3 and np.all(np.abs(g.beta_a) > 1e-6)


def test_rockpool_alif_gradient_against_central_differences():
    """A smooth spike (one per step, threshold derivative -phi): dL/dx,
    dL/dw_ahp = -g g.beta_a, dL/dg = g.rho - w_ahp g.beta_a, dL/dalpha =
    g.alpha + theta g.gamma, dL/dbias = g.u_bias of L = sum A s + sum C vmem
    (post-reset) against central differences of aLIFTorch's equations."""
    rng = np.random.default_rng(6)
    I = _drive(6, T=16, mean=0.9, std=1.0)
    A, C = rng.normal(size=I.shape), rng.normal(size=I.shape)
    alpha, beta, theta = np.linspace(0.6, 0.85, N), 0.7, 1.0
    gg, w, bias = np.linspace(0.6, 0.9, N), np.linspace(-1.2, -0.3, N), np.full(N, 0.1)
    base = dict(I=I, alpha=alpha, g=gg, w=w, bias=bias)

    def loss(**ch):
        q = dict(base, **ch)
        s, vm = rockpool_alif(q["I"], q["alpha"], beta, q["g"], q["w"], theta, q["bias"],
                              lambda x: SIG.G(x - theta))
        return float(np.sum(A * s) + np.sum(C * vm))
    cfg, p = _rockpool_map(alpha, beta, gg, w, theta, bias, forward="smooth", surrogate=SIG)
    v, tr = lif_forward(I, p, cfg)
    # the post-reset membrane in the loss: dL/dv = A - theta C, and -sum C v in theta
    g = lif_backward(tr, p, cfg, dv=A - theta * C, du=C)
    dI, d = rng.normal(size=I.shape), rng.normal(size=N)
    _agree(_fd(lambda e: loss(I=I + e * dI)), float(np.sum(g.I * dI)), "input")
    _agree(_fd(lambda e: loss(w=w + e * d)), float(np.sum(-gg * g.beta_a * d)), "w_ahp")
    _agree(_fd(lambda e: loss(g=gg + e * d)), float(np.sum((g.rho - w * g.beta_a) * d)), "g")
    _agree(_fd(lambda e: loss(alpha=alpha + e * d)),
           float(np.sum((g.alpha + theta * g.gamma) * d)), "alpha")
    _agree(_fd(lambda e: loss(bias=bias + e * d)), float(np.sum(g.u_bias * d)), "bias")


# --------------------------------------------------------------------------
# the worked example of variants.md (M7), by hand
# --------------------------------------------------------------------------

def test_two_step_example_by_hand(monkeypatch):
    """T = 2, one neuron, L = delta_1 v_1 + delta_2 v_2 with phi = (0.5, 0.2):
    u_2 = alpha u_1 + I_2 - k (theta + beta_a a_1) v_1, a_2 = rho a_1 + v_1.
    ubar_2 = phi_2 delta_2, abar_2 = -beta_a phi_2 delta_2, vbar_1 = delta_1 - k
    theta_1 ubar_2 + abar_2, abar_1 = -beta_a phi_1 vbar_1 - k beta_a v_1 ubar_2
    + rho abar_2; dL/da_0 = rho abar_1 (variants.md, M7)."""
    alpha, theta, k, beta_a, rho, a0 = 0.9, 1.0, 0.8, 0.2, 0.5, 0.4
    phi = np.array([0.5, 0.2])
    delta = np.array([1.0, 2.0])
    u = np.array([1.25, 0.3])            # u_1 >= theta_1 = 1.04 fired, u_2 did not
    v = np.array([1.0, 0.0])
    theta1 = theta + beta_a * rho * a0
    ubar2 = phi[1] * delta[1]
    abar2 = -beta_a * phi[1] * delta[1]
    vbar1 = delta[0] - k * theta1 * ubar2 + abar2
    ubar1 = phi[0] * vbar1 + alpha * ubar2
    abar1 = -beta_a * phi[0] * vbar1 - k * beta_a * v[0] * ubar2 + rho * abar2
    want = dict(I=np.array([ubar1, ubar2]), a0=rho * abar1, u0=alpha * ubar1,
                gamma=-ubar2 * v[0] * theta1,
                theta=-(phi[0] * vbar1 + phi[1] * delta[1]) - k * ubar2 * v[0],
                beta_a=-(phi[0] * vbar1 * rho * a0 + phi[1] * delta[1] * (rho * rho * a0 + 1))
                - k * ubar2 * v[0] * rho * a0,
                rho=abar1 * a0 + abar2 * (rho * a0))
    # lifgrad's reference backward on that trace, phi read from a table
    from lifgrad import reference
    from lifgrad.functional import Trace
    cfg = LIFConfig(adaptive=True, reset_by_threshold=True, backend="reference")
    p = LIFParams(alpha=alpha, theta=theta, gamma=k, rho=rho, beta_a=beta_a)
    a = np.array([rho * a0, rho * rho * a0 + v[0]]).reshape(2, 1, 1)
    tr = Trace(u.reshape(2, 1, 1), v.reshape(2, 1, 1).astype(np.uint8), None, a,
               np.array([0.0, 0.0, a0]).reshape(3, 1, 1), False, (None, None, None))
    table = {}

    def fixed_phi(x, vv, sg):
        return np.full_like(x, table[round(float(x.ravel()[0]), 12)])
    table[round(u[0] - theta1, 12)] = phi[0]
    table[round(u[1] - (theta + beta_a * a[1, 0, 0]), 12)] = phi[1]
    monkeypatch.setattr(reference, "surrogate_phi", fixed_phi)
    g = lif_backward(tr, p, cfg, dv=delta.reshape(2, 1, 1))
    for key, val in want.items():
        got = np.ravel(getattr(g, key))
        np.testing.assert_allclose(got, np.ravel(val), rtol=1e-14, err_msg=key)


# --------------------------------------------------------------------------
# networks: central differences, full vs checkpointed, the device
# --------------------------------------------------------------------------

@pytest.mark.parametrize("model,learn,kw", [
    ("adaptive-reset", ("alpha", "theta", "rho", "beta_a"), {}),
    ("adaptive-reset", ("theta", "gamma", "beta_a"), dict(gamma=0.85)),
    ("adaptation-current-recurrent", ("alpha", "theta", "rho", "beta_a"), {}),
], ids=["spyx-like", "free-k", "current"])
def test_network_gradient_matches_finite_differences(model, learn, kw):
    """Smooth forward, float64: every parameter of a 3-layer network of the
    variant (W, b, R, the learned neuron parameters, the input)."""
    errs = fd_network(model=model, learn=learn, **kw)
    assert any(k.endswith(".beta_a") for k in errs)
    assert max(errs.values()) <= TOL_FD, errs


_NET_CFGS = (
    # sinabs' ALIF: (M7) factor k = gamma, (M8), the synapse decaying its input
    (dict(adaptive=True, reset_by_threshold=True, theta_grad="none", synaptic=True,
          decay_input=True), dict(gamma=0.8, learn=("alpha", "theta", "gamma", "rho", "beta_a"))),
    # Rockpool's aLIFTorch with an all-to-all recurrence (M9)
    (dict(adaptive=True, adaptation="current", recurrent="all"),
     dict(learn=("alpha", "rho", "beta_a"))),
    # Spyx's ALIF (M7), (M5), tied
    (dict(adaptive=True, reset_by_threshold=True, delay_output=True),
     dict(learn=("theta", "rho", "beta_a"))),
)


def _variant_net(dtype="float64", device=False):
    cfgs = _NET_CFGS[:2] if device else _NET_CFGS      # the device refuses delay_output
    sizes = (5, 4, 3) if device else (5, 7, 6, 4)
    layers = [Dense(a, b, LIFConfig(surrogate="sigmoid", **ckw), rho=0.8, beta_a=0.3, **lkw)
              for a, b, (ckw, lkw) in zip(sizes[:-1], sizes[1:], cfgs)]
    net = Sequential(layers, seed=3, dtype=dtype)
    for i in range(len(layers)):
        net.params[f"layer{i}.W"] = net.params[f"layer{i}.W"] * 3.0
    return net


def _backward(net, x, K=None):
    out, tr = net.forward(x, checkpoint_every=K)
    rng = np.random.default_rng(9)
    shape = out.shape
    g = net.backward(tr, dv=rng.normal(size=shape).astype(net.dtype),
                     du=rng.normal(size=shape).astype(net.dtype), need_input_grad=True)
    return out, tr, g


@pytest.mark.parametrize("B", [3, 200], ids=["one-chunk", "chunks-of-10"])
def test_network_checkpointed_gradient_is_bitwise_the_full_one(B):
    from lifgrad.functional import time_chunk
    T = 25 if B == 200 else 9
    net = _variant_net("float32" if B == 200 else "float64")
    x = (np.random.default_rng(2).uniform(size=(T, B, 5)) < 0.5).astype(net.dtype)
    out, tr, g = _backward(net, x)
    for lt in tr.layers:
        assert 0.02 < float(np.mean(lt.trace.v)) < 0.9
    for K in ((1, 3) if B == 3 else (10, 20)):
        assert B == 3 or time_chunk(B) == 10
        out_k, _, g_k = _backward(net, x, K)
        np.testing.assert_array_equal(out_k, out)
        assert list(g_k) == list(g)
        for k in g:
            np.testing.assert_array_equal(g_k[k], g[k], err_msg=f"K={K} {k}")
    assert np.count_nonzero(g["layer0.gamma"]) >= 3 and np.count_nonzero(g["layer1.beta_a"]) >= 3


def test_device_network_agrees():
    from lifgrad.device import DeviceNetwork, available
    if not available():
        pytest.skip("no CUDA device and no CUDA simulator")
    net = _variant_net(device=True)
    x = (np.random.default_rng(2).uniform(size=(5, 2, 5)) < 0.5) * 1.0
    du = np.random.default_rng(3).normal(size=(5, 2, 3))
    out, tr = net.forward(x)
    g = net.backward(tr, du=du)
    dev = DeviceNetwork(net)
    dtr = dev.forward(x)
    np.testing.assert_array_equal(dev.output(dtr)[0], out)
    dg = dev.backward(dtr, du=du)
    assert sorted(dg) == sorted(g)
    for k in g:
        got = dg[k].copy_to_host()
        assert float(np.max(np.abs(got - g[k]))) <= 1e-12 * max(np.max(np.abs(g[k])), 1e-30), k


# --------------------------------------------------------------------------
# kernels against the reference
# --------------------------------------------------------------------------

CELLS = {
    "k-theta": dict(reset_by_threshold=True),
    "k-theta-adaptive-norm": dict(reset_by_threshold=True, adaptive=True, norm_input=True,
                                  synaptic=True),
    "k-theta-detached": dict(reset_by_threshold=True, adaptive=True, detach_reset=True,
                             recurrent="one"),
    "k-theta-counts-all-to-all": dict(reset_by_threshold=True, adaptive=True, max_spikes=3,
                                      recurrent="all"),
    "no-theta-grad": dict(theta_grad="none", synaptic=True),
    "no-theta-grad-adaptive": dict(theta_grad="none", adaptive=True, recurrent="all"),
    "current": dict(adaptive=True, adaptation="current"),
    "current-zero-reset": dict(adaptive=True, adaptation="current", reset="zero",
                               synaptic=True),
    "current-k-theta-counts": dict(adaptive=True, adaptation="current",
                                   reset_by_threshold=True, max_spikes=None,
                                   theta_grad="ratio"),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(CELLS))
def test_cpu_kernels_match_reference(name, dtype):
    for strict, fwd in ((False, "hard"), (True, "hard"), (False, "smooth")):
        try:
            c = LIFConfig(strict=strict, forward=fwd, surrogate="sigmoid", **CELLS[name])
        except ValueError:              # several spikes need the hard forward
            continue
        errs = kernel_vs_reference(c, dtype=dtype, gamma_free=True, T=10, B=4, N=21,
                                   u_bias=0.3, backend="cpu")
        assert max(errs.values()) <= TOL_KERNEL[dtype], (strict, fwd, errs)


@pytest.mark.parametrize("name", ["k-theta-adaptive-norm", "k-theta-counts-all-to-all",
                                  "no-theta-grad-adaptive", "current-zero-reset"])
def test_cuda_kernels_match_reference(name):
    """On a GPU, or on Numba's CUDA simulator (a tiny problem)."""
    from lifgrad.backends import available
    if not available():
        pytest.skip("no CUDA device and no CUDA simulator")
    c = LIFConfig(surrogate="sigmoid", strict=True, **CELLS[name])
    for dtype in ("float64", "float32"):
        errs = kernel_vs_reference(c, dtype=dtype, gamma_free=True, T=6, B=2, N=7, u_bias=0.3,
                                   backend="cuda")
        assert max(errs.values()) <= TOL_KERNEL[dtype], (dtype, errs)


# --------------------------------------------------------------------------
# the layer against finite differences of check.naive_forward
# --------------------------------------------------------------------------

@pytest.mark.parametrize("name", [n for n in CELLS if "counts" not in n])
def test_layer_against_finite_differences(name):
    """Smooth forward (theta_grad='none': the spike's threshold held at its
    value in the ground truth) and the zero surrogate on the spiking layer,
    every parameter, free k."""
    kw = dict(CELLS[name])
    errs = fd_layer(LIFConfig(forward="smooth", surrogate="sigmoid", **kw), seed=3,
                    gamma_free=kw.get("reset", "subtract") == "subtract", u_bias=0.2)
    assert max(errs.values()) <= TOL_FD, errs
    errs, _ = fd_zero_surrogate(LIFConfig(**kw), seed=4, u_bias=0.2,
                                gamma_free=kw.get("reset", "subtract") == "subtract")
    assert max(errs.values()) <= TOL_FD, errs


def test_a_dropped_reset_threshold_term_is_caught(monkeypatch):
    """Planted error: the adjoint without what the reset by the adaptive
    threshold sends to a_t (and to dL/dbeta_a, dL/dk) fails the finite
    differences of the spiking network (zero surrogate: that term is then the
    only source of abar) and of the smooth one; as it is, both pass."""
    from lifgrad import reference
    from lifgrad.check import VARIANTS
    cfg = LIFConfig(backend="reference", **VARIANTS["adaptive-reset"])
    smooth = cfg.replace(forward="smooth", surrogate=sgs.get("sigmoid"))
    ok = [max(fd_zero_surrogate(cfg, seed=7, gamma_free=True)[0].values()),
          max(fd_layer(smooth, seed=7, gamma_free=True).values())]
    assert max(ok) <= TOL_FD, ok
    monkeypatch.setattr(reference, "adaptive_reset_terms",
                        lambda gamma, beta_a, v_t, ubar_next, a_t: (0 * ubar_next, 0 * ubar_next))
    errs, _ = fd_zero_surrogate(cfg, seed=7, gamma_free=True)
    assert errs["rho"] > 1e-3 and errs["beta_a"] > 1e-3 and errs["gamma"] > 1e-3, errs
    assert max(fd_layer(smooth, seed=7, gamma_free=True).values()) > 1e-3


# --------------------------------------------------------------------------
# the variants switched off: the cell without them, bit for bit
# --------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_degenerate_variants_are_the_cell_without_them(backend, dtype):
    """Tied reset_by_threshold without adaptation is gamma = theta; the
    adaptation current with beta_a = 0 the cell without adaptation;
    theta_grad='none' changes nothing but the threshold's own gradients."""
    rng = np.random.default_rng(3)
    I = rng.normal(0.5, 0.7, (12, 3, 6)).astype(dtype)
    dv, du = (rng.normal(size=I.shape).astype(dtype) for _ in range(2))
    p = LIFParams(alpha=0.8, theta=0.9, rho=0.7, beta_a=0.0)

    def run(**kw):
        c = LIFConfig(surrogate="sigmoid", backend=backend, **kw)
        v, tr = lif_forward(I, p, c)
        return v, tr.u, lif_backward(tr, p, c, dv=dv, du=du)
    plain = run()
    for kw, skip in ((dict(reset_by_threshold=True), ()),
                     (dict(adaptive=True, adaptation="current"), ("rho", "beta_a", "a0")),
                     (dict(adaptive=True, adaptation="current", reset_by_threshold=True),
                      ("rho", "beta_a", "a0")),
                     (dict(theta_grad="none"), ("theta",))):
        v, u, g = run(**kw)
        np.testing.assert_array_equal(v, plain[0])
        np.testing.assert_array_equal(u, plain[1])
        for k, val in plain[2]._asdict().items():
            if val is not None and k not in skip:
                np.testing.assert_array_equal(getattr(g, k), val, err_msg=f"{kw} {k}")
    # theta_grad='none': the threshold's gradient is the tied reset's term alone
    _, _, g = run(theta_grad="none", reset="zero")
    assert np.all(g.theta == 0)


def test_validation_names_the_variant():
    with pytest.raises(ValueError, match="reset_by_threshold=True: only a subtractive reset"):
        LIFConfig(reset_by_threshold=True, reset="zero")
    with pytest.raises(ValueError, match="adaptation='current': .* only with adaptive=True"):
        LIFConfig(adaptation="current")
    with pytest.raises(ValueError, match="adaptation: expected one of"):
        LIFConfig(adaptive=True, adaptation="reset")
    with pytest.raises(ValueError, match="theta_grad='ratio'.*not with adaptive"):
        LIFConfig(adaptive=True, theta_grad="ratio")
    assert LIFConfig(adaptive=True, adaptation="current", theta_grad="ratio").theta_grad == "ratio"
    with pytest.raises(TypeError, match="reset_by_threshold: expected True or False"):
        LIFConfig(reset_by_threshold=1)
    assert LIFConfig().mode()[10:13] == (0, 0, 0)
    assert LIFConfig(theta_grad="none", reset_by_threshold=True, adaptive=True,
                     adaptation="current").mode()[10:13] == (2, 1, 1)
