"""Spike encoders (lifgrad.encode): static, poisson (rate), latency, delta;
snnTorch's spikegen where the definitions coincide."""
import numpy as np
import pytest

from lifgrad import encode


def _x(rng, B=3, N=7):
    return rng.uniform(0, 1, (B, N))


def test_static_returns_the_data(rng):
    x = _x(rng)
    out = encode.static(x, T=9, rng=rng)
    assert out.shape == x.shape and out.dtype == np.float64
    np.testing.assert_array_equal(out, x)
    np.testing.assert_array_equal(encode.static(x.astype(np.float32)), x.astype(np.float32))
    assert encode.get("static") is encode.static


def test_poisson_rate_follows_x():
    x = np.linspace(0, 1, 21)[None, :].repeat(2, axis=0)
    T = 4000
    s = encode.poisson(x, T, np.random.default_rng(5))
    assert s.shape == (T, 2, 21) and s.dtype == np.float32
    assert set(np.unique(s)) <= {0.0, 1.0}
    rate = s.mean(axis=0)
    tol = 5 * np.sqrt(x * (1 - x) / T) + 1e-12      # 5 binomial standard deviations
    assert np.all(np.abs(rate - x) <= tol)
    assert np.all(s[:, :, 0] == 0) and np.all(s[:, :, -1] == 1)
    # gain: probability clip(gain x, 0, 1)
    s2 = encode.poisson(x, T, np.random.default_rng(6), gain=2.0)
    p = np.clip(2 * x, 0, 1)
    assert np.all(np.abs(s2.mean(axis=0) - p) <= 5 * np.sqrt(p * (1 - p) / T) + 1e-12)
    assert np.all(s2[:, :, 11:] == 1)


def test_poisson_is_reproducible_with_a_seed(rng):
    x = _x(rng, 4, 10)
    a = encode.poisson(x, 25, np.random.default_rng(42))
    b = encode.poisson(x, 25, np.random.default_rng(42))
    c = encode.poisson(x, 25, np.random.default_rng(43))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert encode.get("poisson") is encode.poisson


def test_poisson_needs_a_generator(rng):
    with pytest.raises(ValueError, match="^rng:"):
        encode.poisson(_x(rng), 5, None)
    with pytest.raises(ValueError, match="^rng:"):
        encode.poisson(_x(rng), 5, 123)


def _one_spike_at(out, steps, fires):
    """Each input spikes exactly once, at steps[b, n], where fires; never elsewhere."""
    T = out.shape[0]
    counts = out.sum(axis=0)
    np.testing.assert_array_equal(counts, fires.astype(np.float32))
    b, n = np.nonzero(fires)
    np.testing.assert_array_equal(out[steps[b, n], b, n], np.ones(len(b)))
    assert out.min() == 0 and out.max() <= 1 and out.shape[0] == T


def test_latency_linear_normalized():
    x = np.array([[0.0, 0.02, 0.25, 0.5, 0.75, 1.0]])
    T = 9
    out = encode.latency(x, T, linear=True)
    assert out.shape == (T, 1, 6) and out.dtype == np.float32
    steps = np.round((T - 1) * (1 - x)).astype(int)      # [8, 8, 6, 4, 2, 0]
    np.testing.assert_array_equal(steps, [[8, 8, 6, 4, 2, 0]])
    _one_spike_at(out, steps, np.ones_like(x, bool))
    # stronger inputs spike earlier
    t_first = out.argmax(axis=0)[0]
    assert np.all(np.diff(t_first) <= 0)


def test_latency_linear_unnormalized_drops_spikes_beyond_the_window():
    x = np.array([[0.05, 0.4, 0.7, 1.0]])
    out = encode.latency(x, 4, tau=5.0, linear=True, normalize=False)
    t = 5.0 * (1 - x)                                    # [4.75, 3, 1.5, 0]
    steps = np.round(t).astype(int)                      # [5, 3, 2, 0]
    _one_spike_at(out, steps, steps <= 3)
    assert out[:, 0, 0].sum() == 0


@pytest.mark.parametrize("normalize", [True, False])
def test_latency_log_code(normalize):
    thr, tau, T = 0.1, 2.0, 12
    x = np.array([[0.0, 0.05, 0.1, 0.1001, 0.15, 0.3, 0.6, 1.0]])
    out = encode.latency(x, T, tau=tau, threshold=thr, normalize=normalize)
    xc = np.clip(x, thr + 1e-7, None)
    t = tau * np.log(xc / (xc - thr))
    if normalize:
        t = t * (T - 1) / (tau * np.log((thr + 1e-7) / 1e-7))
    steps = np.round(t).astype(int)
    fires = (x > thr) & (steps <= T - 1)
    assert not fires[0, :3].any()                    # at or below threshold: no spike
    assert fires[0, -1] and steps[0, -1] == 0        # x = 1: t = 2 ln(10/9), first step
    if normalize:
        assert fires[0, 3] and steps[0, 3] < T      # just above threshold: inside the window
    else:
        assert not fires[0, 3]                     # t = 2 ln(1001) = 13.8: beyond the window
    _one_spike_at(out, np.minimum(steps, T - 1), fires)
    t_first = np.where(out.any(axis=0), out.argmax(axis=0), T)[0]
    assert np.all(np.diff(t_first[3:]) <= 0)        # stronger inputs spike earlier


def _snn_latency(x, T, **kw):
    torch = pytest.importorskip("torch")
    spikegen = pytest.importorskip("snntorch.spikegen")
    return spikegen.latency(torch.tensor(x, dtype=torch.float64), num_steps=T, **kw).numpy()


@pytest.mark.torch
def test_latency_matches_snntorch():
    rng = np.random.default_rng(3)
    T, thr = 16, 0.05
    x = rng.uniform(0, 1, (6, 20))
    x[0, 0] = 0.0          # snnTorch normalises by the data's largest time: make it the saturated one
    x[1, :3] = [0.051, 0.055, 0.06]                  # late spikes (some past the window below)
    # log code, normalised; snnTorch's clip=True drops the below-threshold inputs as lifgrad does
    mine = encode.latency(x, T, tau=1.0, threshold=thr)
    theirs = _snn_latency(x, T, tau=1.0, threshold=thr, normalize=True, clip=True)
    np.testing.assert_array_equal(mine, theirs)
    # log code, not normalised: spikes past the window dropped (bypass=True in snnTorch)
    mine = encode.latency(x, T, tau=5.0, threshold=thr, normalize=False)
    theirs = _snn_latency(x, T, tau=5.0, threshold=thr, clip=True, bypass=True)
    np.testing.assert_array_equal(mine, theirs)
    assert 0 < mine.sum() < np.sum(x > thr)          # some dropped, some kept
    # linear code, inputs at or above threshold (snnTorch clamps the time below it)
    xl = np.clip(x, thr, 1)
    mine = encode.latency(xl, T, threshold=thr, linear=True)
    theirs = _snn_latency(xl, T, threshold=thr, linear=True, normalize=True, clip=True)
    np.testing.assert_array_equal(mine, theirs)
    mine = encode.latency(xl, T, tau=20.0, threshold=thr, linear=True, normalize=False)
    theirs = _snn_latency(xl, T, tau=20.0, threshold=thr, linear=True, clip=True, bypass=True)
    np.testing.assert_array_equal(mine, theirs)


def test_delta_by_hand():
    x = np.array([1.0, 2.0, 0.0, 2.0, 2.9, 2.95])[:, None, None]
    np.testing.assert_array_equal(encode.delta(x, threshold=1.0)[:, 0, 0], [1, 1, 0, 1, 0, 0])
    np.testing.assert_array_equal(encode.delta(x, threshold=1.0, off_spike=True)[:, 0, 0],
                                  [1, 1, -1, 1, 0, 0])


@pytest.mark.torch
@pytest.mark.parametrize("off_spike", [False, True])
def test_delta_matches_snntorch(off_spike):
    torch = pytest.importorskip("torch")
    spikegen = pytest.importorskip("snntorch.spikegen")
    rng = np.random.default_rng(8)
    x = np.cumsum(rng.normal(0, 0.15, (30, 3, 5)), axis=0)
    mine = encode.delta(x, threshold=0.1, off_spike=off_spike)
    theirs = spikegen.delta(torch.tensor(x), threshold=0.1, off_spike=off_spike).numpy()
    np.testing.assert_array_equal(mine, theirs)
    assert (mine == 1).any() and ((mine == -1).any() == off_spike)


@pytest.mark.parametrize("call,match", [
    (lambda x: encode.static(x[0]), "^x: expected shape"),
    (lambda x: encode.static(x[None]), "^x: expected shape"),
    (lambda x: encode.static(np.where(x > 0.5, np.nan, x)), "^x: contains NaN"),
    (lambda x: encode.poisson(x[0], 5, np.random.default_rng(0)), "^x: expected shape"),
    (lambda x: encode.poisson(x, 0, np.random.default_rng(0)), "^T:"),
    (lambda x: encode.poisson(x, 2.5, np.random.default_rng(0)), "^T:"),
    (lambda x: encode.latency(x[None], 5), "^x: expected shape"),
    (lambda x: encode.latency(x, True), "^T:"),
    (lambda x: encode.latency(x, 5, tau=0.0), "^tau:"),
    (lambda x: encode.latency(x, 5, threshold=0.0), "^threshold:"),
    (lambda x: encode.latency(x, 5, threshold=1.0), "^threshold:"),
    (lambda x: encode.delta(x), "^x_seq: expected shape"),
    (lambda x: encode.get("delta"), "^encoder: unknown name 'delta'"),
])
def test_bad_inputs_raise(call, match, rng):
    with pytest.raises(ValueError, match=match):
        call(_x(rng))
