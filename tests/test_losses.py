"""Losses (lifgrad.losses): dv/du against finite differences of L, end-to-end
network gradients against finite differences through the network, and the
snnTorch-named losses against snnTorch itself (derivations/losses.md)."""
import numpy as np
import pytest

from lifgrad import losses
from lifgrad.check import _fd_directional, _fd_floor, _rel
from lifgrad.config import LIFConfig
from lifgrad.network import Dense, Readout, Sequential

# (name, options, reads): reads 'v' (spikes) or 'u' (membrane)
CASES = [
    ("ce_membrane", {}, "u"),
    ("ce_rate", {}, "v"),
    ("ce_count", {}, "v"),
    ("ce_max_membrane", {}, "u"),
    ("mse_count", {}, "v"),
    ("mse_count", {"correct_rate": 0.8, "incorrect_rate": 0.2}, "v"),
    ("mse_count", {"correct_rate": 0.5, "incorrect_rate": -0.3}, "v"),
    ("mse_membrane", {}, "u"),
    ("mse_membrane", {"on_target": 2.0, "off_target": -1.0}, "u"),
    ("mse_membrane", {"on_target": 0.5, "off_target": 1.5}, "u"),
]
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in o.items())}" if o else n for n, o, _ in CASES]


def test_cases_cover_every_loss():
    assert {n for n, _, _ in CASES} == set(losses.LOSSES)
    for name in losses.LOSSES:
        assert losses.get(name) is losses.LOSSES[name]
    with pytest.raises(ValueError, match="loss: unknown name 'nope'"):
        losses.get("nope")


def _call(name, opts, v, u, y):
    return losses.LOSSES[name](v, u, y, **opts)


def _check_direct(f, x, g, rng, n_dir=4):
    """Directional FD of the scalar f at x along random directions and along
    every coordinate, against the analytic gradient g."""
    L0 = f(x)
    dirs = [rng.normal(size=x.shape) for _ in range(n_dir)]
    for i in range(x.size):
        e = np.zeros(x.size)
        e[i] = 1.0
        dirs.append(e.reshape(x.shape))
    worst = 0.0
    for d in dirs:
        fd = _fd_directional(f, x, d)
        worst = max(worst, _rel(fd, np.sum(g * d), atol=_fd_floor(L0, None)))
    return worst


@pytest.mark.parametrize("name,opts,reads", CASES, ids=IDS)
def test_injection_equals_fd_of_loss(name, opts, reads):
    rng = np.random.default_rng(7)
    T, B, C = 4, 3, 5
    for _ in range(3):                         # several random points
        a = rng.uniform(-1.5, 2.5, (T, B, C))
        other = rng.uniform(0, 1, (T, B, C))
        y = rng.integers(0, C, B)
        if reads == "v":
            out = _call(name, opts, a, other, y)
            assert out.du is None and out.dv.shape == a.shape and out.dv.dtype == np.float64
            g = out.dv
            f = lambda vv: _call(name, opts, vv, other, y).L   # noqa: E731
        else:
            out = _call(name, opts, other, a, y)
            assert out.dv is None and out.du.shape == a.shape and out.du.dtype == np.float64
            g = out.du
            f = lambda uu: _call(name, opts, other, uu, y).L   # noqa: E731
        assert isinstance(out.L, float) and np.isfinite(out.L)
        assert np.any(g != 0)
        assert _check_direct(f, a, g, rng) <= 1e-7


def test_l1_rate_injection_equals_fd():
    rng = np.random.default_rng(3)
    v = rng.uniform(0, 1, (4, 3, 5))
    out = losses.l1_rate(v, lam=0.3)
    assert out.du is None
    assert out.L == pytest.approx(0.3 * v.sum() / 3, rel=1e-14)
    assert _check_direct(lambda vv: losses.l1_rate(vv, lam=0.3).L, v, out.dv, rng) <= 1e-7


def test_integer_spikes_keep_a_float_gradient():
    # bool / integer spikes must not truncate the injected gradient to 0
    rng = np.random.default_rng(0)
    vb = rng.random((5, 3, 4)) < 0.4
    y = np.array([0, 3, 1])
    for name in ("ce_rate", "ce_count", "mse_count"):
        ref = losses.LOSSES[name](vb.astype(np.float64), None, y)
        for arr in (vb, vb.astype(np.int64)):
            out = losses.LOSSES[name](arr, None, y)
            assert out.dv.dtype == np.float64
            np.testing.assert_array_equal(out.dv, ref.dv)
            assert out.L == ref.L
    out = losses.l1_rate(vb.astype(np.int32), lam=0.5)
    np.testing.assert_array_equal(out.dv, np.full(vb.shape, 0.5 / 3))


# ---------------------------------------------------------------------------
# end to end through a network (smooth forward, float64)
# ---------------------------------------------------------------------------

def _net(readout, seed=0):
    rng = np.random.default_rng(seed)
    cfg = LIFConfig(forward="smooth", surrogate="sigmoid")
    sizes = (4, 6, 3)
    layers = [Dense(sizes[0], sizes[1], cfg, alpha=rng.uniform(0.6, 0.95, sizes[1]),
                    theta=rng.uniform(0.3, 0.6, sizes[1]), learn=("alpha", "theta"))]
    if readout:
        layers.append(Readout(sizes[1], sizes[2], alpha=0.8, learn=("alpha",)))
    else:
        layers.append(Dense(sizes[1], sizes[2], cfg, alpha=rng.uniform(0.6, 0.95, sizes[2]),
                            theta=rng.uniform(0.3, 0.6, sizes[2]), learn=("alpha", "theta")))
    net = Sequential(layers, seed=seed, dtype="float64")
    for k in net.params:
        if k.endswith(".W"):
            net.params[k] = net.params[k] * 2.0
    return net


def _e2e_errors(net, total, grads, rng, params):
    L0 = total(params)
    errs = {}
    for name, base in params.items():
        worst = 0.0
        for _ in range(2):
            d = rng.normal(size=base.shape)
            d /= np.linalg.norm(d)

            def f(val, name=name):
                pp = dict(params)
                pp[name] = val
                return total(pp)

            fd = _fd_directional(f, base, d)
            worst = max(worst, _rel(fd, np.sum(grads[name] * d), atol=_fd_floor(L0, None)))
        errs[name] = worst
    return errs


@pytest.mark.parametrize("name,opts,reads", CASES, ids=IDS)
def test_network_gradient_matches_fd(name, opts, reads):
    rng = np.random.default_rng(11)
    T, B = 6, 3
    net = _net(readout=(reads == "u"))
    x = rng.uniform(0, 1, (T, B, 4))
    y = np.array([0, 2, 1])

    def outputs(pp):
        out, tr = net.forward(x, pp)
        top = tr.layers[-1].trace
        return (None if reads == "u" else out), top.u, tr

    def total(pp):
        v, u, _ = outputs(pp)
        return _call(name, opts, v, u, y).L

    params = dict(net.params)
    v, u, tr = outputs(params)
    lo = _call(name, opts, v, u, y)
    grads = net.backward(tr, dv=lo.dv, du=lo.du)
    assert set(grads) == set(params)
    errs = _e2e_errors(net, total, grads, rng, params)
    assert max(errs.values()) <= 1e-6, errs


def test_network_gradient_with_l1_rate_on_hidden_and_top():
    rng = np.random.default_rng(5)
    T, B = 6, 3
    net = _net(readout=False, seed=1)
    x = rng.uniform(0, 1, (T, B, 4))
    y = np.array([1, 2, 0])
    lam = 0.2

    def total(pp):
        out, tr = net.forward(x, pp)
        return (losses.ce_rate(out, None, y).L + losses.l1_rate(out, lam).L
                + losses.l1_rate(tr.layers[0].trace.v, lam).L)

    params = dict(net.params)
    out, tr = net.forward(x, params)
    top = losses.ce_rate(out, None, y)
    reg_top = losses.l1_rate(out, lam)
    reg_hid = losses.l1_rate(tr.layers[0].trace.v, lam)
    grads = net.backward(tr, dv=top.dv + reg_top.dv, layer_dv={0: reg_hid.dv})
    errs = _e2e_errors(net, total, grads, rng, params)
    assert max(errs.values()) <= 1e-6, errs
    # the regulariser really contributes
    g0 = net.backward(tr, dv=top.dv)
    assert not np.allclose(g0["layer0.W"], grads["layer0.W"])


# ---------------------------------------------------------------------------
# snnTorch (same names, same definitions, quirks included)
# ---------------------------------------------------------------------------

@pytest.fixture
def sf(monkeypatch):
    """snntorch.functional with its float32 accumulators switched to float64,
    so values can be compared to 1e-12."""
    pytest.importorskip("torch")
    pytest.importorskip("snntorch")
    import snntorch.functional as SF
    import snntorch.functional.loss as sl
    import snntorch.spikegen as sg
    import torch
    monkeypatch.setattr(sl, "dtype", torch.float64)
    monkeypatch.setattr(sg, "dtype", torch.float64)
    return SF


def _snn(fn, arr, y):
    import torch
    t = torch.tensor(arr, dtype=torch.float64, requires_grad=True)
    L = fn(t, torch.tensor(y, dtype=torch.int64))
    L.sum().backward()
    return float(L.detach().sum()), t.grad.numpy()


SNN_CASES = [
    ("ce_rate", {}, "ce_rate_loss", {}),
    ("ce_count", {}, "ce_count_loss", {}),
    ("ce_max_membrane", {}, "ce_max_membrane_loss", {}),
    ("mse_count", {}, "mse_count_loss", {}),
    ("mse_count", {"correct_rate": 0.8, "incorrect_rate": 0.2}, "mse_count_loss",
     {"correct_rate": 0.8, "incorrect_rate": 0.2}),
    ("mse_count", {"correct_rate": 0.5, "incorrect_rate": -0.3}, "mse_count_loss",
     {"correct_rate": 0.5, "incorrect_rate": -0.3}),      # off < 0: clamped to 0
    ("mse_count", {"correct_rate": 0.2, "incorrect_rate": 0.6}, "mse_count_loss",
     {"correct_rate": 0.2, "incorrect_rate": 0.6}),       # on < off: no clamp
    ("mse_membrane", {}, "mse_membrane_loss", {}),
    ("mse_membrane", {"on_target": 2.0, "off_target": -1.0}, "mse_membrane_loss",
     {"on_target": 2.0, "off_target": -1.0}),             # the clamp quirk
    ("mse_membrane", {"on_target": 0.5, "off_target": 1.5}, "mse_membrane_loss",
     {"on_target": 0.5, "off_target": 1.5}),              # on < off
    ("mse_membrane", {"on_target": -2.0, "off_target": -1.0}, "mse_membrane_loss",
     {"on_target": -2.0, "off_target": -1.0}),
]


# spike losses also on binary spikes; membranes are real-valued
SNN_RUNS = [(*c, b) for c in SNN_CASES for b in ((False, True) if "membrane" not in c[0]
                                                  else (False,))]


@pytest.mark.torch
@pytest.mark.parametrize("name,opts,snn_name,snn_opts,binary", SNN_RUNS,
                         ids=[f"{c[0]}-{i}{'-binary' if c[4] else ''}"
                              for i, c in enumerate(SNN_RUNS)])
def test_matches_snntorch(sf, name, opts, snn_name, snn_opts, binary):
    rng = np.random.default_rng(21)
    T, B, C = 7, 5, 4
    reads = "u" if "membrane" in name else "v"
    a = (rng.random((T, B, C)) < 0.4).astype(np.float64) if binary else rng.normal(size=(T, B, C))
    y = rng.integers(0, C, B)
    y[0], y[1] = 0, C - 1
    out = _call(name, opts, a if reads == "v" else None, a if reads == "u" else None, y)
    mine = out.dv if reads == "v" else out.du
    L, g = _snn(getattr(sf, snn_name)(**snn_opts), a, y)
    assert out.L == pytest.approx(L, rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(mine, g, rtol=1e-12, atol=1e-15)


@pytest.mark.torch
def test_mse_membrane_off_target_quirk_is_snntorchs(sf):
    """off_target=-1 with on_target=2 gives exactly the off_target=0 value (snnTorch)."""
    rng = np.random.default_rng(2)
    u = rng.normal(size=(5, 3, 4))
    y = np.array([1, 0, 3])
    q = losses.mse_membrane(None, u, y, on_target=2.0, off_target=-1.0)
    z = losses.mse_membrane(None, u, y, on_target=2.0, off_target=0.0)
    assert q.L == z.L
    np.testing.assert_array_equal(q.du, z.du)
    L, _ = _snn(sf.mse_membrane_loss(on_target=2.0, off_target=-1.0), u, y)
    assert q.L == pytest.approx(L, rel=1e-12)


# ---------------------------------------------------------------------------
# validation and accuracy
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name,opts,reads", CASES, ids=IDS)
def test_bad_inputs_name_the_argument(name, opts, reads):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 4, 5))
    good_y = np.array([0, 1, 4, 2])

    def call(arr, y):
        return _call(name, opts, arr if reads == "v" else None, arr if reads == "u" else None, y)

    call(a, good_y)                                        # sanity: valid inputs pass
    with pytest.raises(ValueError, match=f"^{reads}: this loss needs"):
        _call(name, opts, None, None, good_y)
    with pytest.raises(ValueError, match=f"^{reads}: expected shape"):
        call(a[0], good_y)
    with pytest.raises(ValueError, match=f"^{reads}: expected shape"):
        call(a[:, :0], good_y[:0])
    with pytest.raises(ValueError, match="^y: expected integer labels"):
        call(a, good_y.astype(float))
    with pytest.raises(ValueError, match="^y: expected integer labels"):
        call(a, good_y[:3])
    with pytest.raises(ValueError, match="^y: expected integer labels"):
        call(a, good_y[:, None])
    with pytest.raises(ValueError, match=r"^y: labels must be in \[0, 5\)"):
        call(a, np.array([0, 1, 5, 2]))
    with pytest.raises(ValueError, match=r"^y: labels must be in \[0, 5\)"):
        call(a, np.array([0, -1, 3, 2]))


def test_l1_rate_bad_shape():
    with pytest.raises(ValueError, match="^v: expected shape"):
        losses.l1_rate(np.zeros((3, 4)))


def test_accuracy_hand_made():
    # T=3, B=4, C=3; counts per sample:
    #  b0: [3, 1, 0] -> 0      b1: [0, 2, 2] tie -> lowest index 1, or by membrane
    #  b2: [1, 1, 3] -> 2      b3: [0, 0, 0] all tied -> 0, or by membrane
    v = np.zeros((3, 4, 3))
    v[:, 0, 0] = 1
    v[0, 0, 1] = 1
    v[:2, 1, 1] = 1
    v[1:, 1, 2] = 1
    v[0, 2, 0] = v[1, 2, 1] = 1
    v[:, 2, 2] = 1
    np.testing.assert_array_equal(v.sum(0), [[3, 1, 0], [0, 2, 2], [1, 1, 3], [0, 0, 0]])
    y = np.array([0, 2, 2, 1])
    assert losses.accuracy(v, y) == 0.5                # b0, b2 right; b1 -> 1, b3 -> 0
    u = np.zeros((3, 4, 3))
    u[:, 1, 2] = 0.9                                   # b1: class 2 has the larger membrane
    u[:, 3, 1] = 0.5                                   # b3: class 1
    u[:, 0, 1] = 50.0                                  # a membrane never beats a spike count
    assert losses.accuracy(v, y, u) == 1.0
    assert losses.accuracy(v, np.array([1, 0, 0, 2])) == 0.0
    assert losses.accuracy(v.astype(bool), y) == 0.5
    with pytest.raises(ValueError, match="^y:"):
        losses.accuracy(v, y[:3])
    with pytest.raises(ValueError, match="^u:"):
        losses.accuracy(v, y, u[:2])
