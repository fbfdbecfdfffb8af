"""Data sets for temporal tasks (lifgrad.data): the Yin-Yang and Randman
generators against properties stated in their papers and reference code, the
SHD/SSC and N-MNIST readers on small files written here in exactly their
formats (and truncated or corrupt ones), the event-frame container against a
dense twin, and short training runs on the new data sets."""
import json
import re

import numpy as np
import pytest

from lifgrad import data, encode
from lifgrad.data import nmnist, randman, shd, yinyang
from lifgrad.data.events import EventFrames

# ---------------------------------------------------------------- Yin-Yang


def _polar_label(x, y):
    """The Yin-Yang regions in polar coordinates about the centre (0.5, 0.5),
    written independently of lifgrad.data.yinyang: with p = c + rho e^{i phi}
    and the circles of radius r around c -/+ 0.25 (the dots, r = 0.1, and the
    half-size circles, r = 0.25), |p - (c -/+ 0.25)|^2 = rho^2 +/- rho cos(phi) / 2
    + 1/16.  Label 2: in a dot; label 1: in the left half-size circle, or in the
    upper half outside the right one; label 0: the rest."""
    z = (np.asarray(x) - 0.5) + 1j * (np.asarray(y) - 0.5)
    rho, phi = np.abs(z), np.angle(z)
    c = rho * np.cos(phi) / 2
    left2, right2 = rho ** 2 + c + 1 / 16, rho ** 2 - c + 1 / 16
    dot = (left2 < 0.01) | (right2 < 0.01)
    one = (rho < -np.cos(phi) / 2) | ((np.sin(phi) > 0) & (rho > np.cos(phi) / 2))
    return np.where(dot, 2, one.astype(int)), rho


def test_yinyang_reproduces_reference_test_set():
    # the reference's YinYangDataset(size=1000, seed=40), i.e. publication_data/
    # test_samples.npy and test_labels.npy of github.com/lkriener/yin_yang_data_set
    x, y = yinyang.generate(1000, seed=40)
    assert x.shape == (1000, 4) and x.dtype == np.float64 and y.dtype == np.int64
    assert x[0, 0] == 0.23409664559563403 and x[0, 1] == 0.4017249751828972
    assert x[1, 0] == 0.7513290219574494 and x[1, 1] == 0.4682425192680968
    assert y[:10].tolist() == [2, 2, 1, 1, 1, 2, 2, 0, 2, 2]
    assert np.bincount(y).tolist() == [350, 316, 334]
    assert x[:, 0].sum() == pytest.approx(498.2569893484742, abs=1e-9)
    ds = data.load("yinyang")
    assert ds.name == "yinyang" and ds.n_classes == 3 and ds.n_features == 4
    assert not ds.temporal and ds.n_steps is None
    assert ds.x_train.shape == (5000, 4) and ds.x_test.shape == (1000, 4)
    assert ds.x_train.dtype == np.float32
    np.testing.assert_array_equal(ds.x_test, x.astype(np.float32))
    np.testing.assert_array_equal(ds.y_test, y)
    np.testing.assert_array_equal(ds.x_train, yinyang.generate(5000, seed=42)[0].astype(np.float32))


def test_yinyang_labels_agree_with_polar_region_test():
    x, y = yinyang.generate(3000, seed=3)
    expect, rho = _polar_label(x[:, 0], x[:, 1])
    np.testing.assert_array_equal(y, expect)
    assert rho.max() <= 0.5                        # every point inside the big circle
    # which_class on a grid of the whole disk (away from the boundaries)
    g = np.linspace(0.0005, 0.9995, 400)
    gx, gy = (a.ravel() for a in np.meshgrid(g, g))
    lab, rho = _polar_label(gx, gy)
    ins = rho < 0.5
    np.testing.assert_array_equal(yinyang.which_class(gx[ins], gy[ins]), lab[ins])
    # the areas: the dots 2 pi 0.01 / (pi 0.25) = 8 %, the rest split evenly
    frac = np.bincount(lab[ins], minlength=3) / ins.sum()
    np.testing.assert_allclose(frac, [0.46, 0.46, 0.08], atol=0.005)


def test_yinyang_classes_balanced_by_rejection_sampling():
    # each label is drawn uniformly first, so counts are Binomial(n, 1/3);
    # sampling by area would give 8 % dots
    n = 3000
    _, y = yinyang.generate(n, seed=7)
    sd = np.sqrt(n * (1 / 3) * (2 / 3))
    assert np.all(np.abs(np.bincount(y, minlength=3) - n / 3) < 4 * sd)
    ds = data.load("yinyang", seed=2, train_size=600, test_size=300)
    for lab in (ds.y_train, ds.y_test):
        m = len(lab)
        assert np.all(np.abs(np.bincount(lab, minlength=3) - m / 3)
                      < 4 * np.sqrt(m * 2 / 9))


def test_yinyang_coding_mirrored_axes_and_bias():
    x, _ = yinyang.generate(500, seed=1)
    np.testing.assert_allclose(x[:, 0] + x[:, 2], 1.0, rtol=0, atol=1e-15)
    np.testing.assert_allclose(x[:, 1] + x[:, 3], 1.0, rtol=0, atol=1e-15)
    assert x.min() >= 0 and x.max() <= 1
    xb, yb = yinyang.generate(500, seed=1, bias=True)
    assert xb.shape == (500, 5) and np.all(xb[:, 4] == 1.0)
    np.testing.assert_array_equal(xb[:, :4], x)
    ds = data.load("yinyang", train_size=30, test_size=30, bias=True)
    assert ds.n_features == 5
    np.testing.assert_allclose(ds.x_train[:, 0] + ds.x_train[:, 2], 1.0, atol=1e-6)


def test_yinyang_paper_latency_code_is_linear_latency():
    """The paper's time-to-first-spike code (t = value * t_late, a bias spike at
    t = 0) is encode.latency(linear=True) with channels swapped pairwise."""
    T = 41
    x, _ = yinyang.generate(200, seed=5, bias=True)
    s = encode.latency(x, T, linear=True)
    assert s.shape == (T, 200, 5)
    assert np.all(s.sum(axis=0) == 1)                     # one spike per input
    step = s.argmax(axis=0)
    np.testing.assert_array_equal(step[:, 2], np.round((T - 1) * x[:, 0]))   # 1 - x codes x
    np.testing.assert_array_equal(step[:, 3], np.round((T - 1) * x[:, 1]))
    np.testing.assert_array_equal(step[:, 0], np.round((T - 1) * x[:, 2]))
    assert np.all(step[:, 4] == 0)                        # the bias spike


def test_yinyang_seeds_splits_and_bad_arguments():
    a, b = data.load("yinyang", seed=0), data.load("yinyang", seed=1)
    assert not np.array_equal(a.x_train, b.x_train)
    again = data.load("yinyang", seed=1)
    np.testing.assert_array_equal(again.x_train, b.x_train)
    # train and test are different streams: no shared point
    assert not set(map(bytes, a.x_test)) & set(map(bytes, a.x_train))
    with pytest.raises(ValueError, match="^size:"):
        yinyang.generate(-1)
    with pytest.raises(ValueError, match="^r_small:"):
        yinyang.generate(10, r_small=0.3)
    with pytest.raises(ValueError, match="^seed:"):
        yinyang.load(seed=-1)

# ---------------------------------------------------------------- Randman


SMALL = dict(nb_classes=3, nb_units=12, dim_manifold=1, nb_samples=40)


def test_randman_shapes_balance_and_split():
    ds = data.load("randman", seed=4, T=30, test_fraction=0.25, **SMALL)
    assert ds.name == "randman" and ds.temporal and ds.n_steps == 30 and ds.n_features == 12
    assert ds.x_train.shape == (90, 30, 12) and ds.x_test.shape == (30, 30, 12)
    assert ds.x_train.dtype == np.uint8 and ds.n_classes == 3
    assert np.bincount(ds.y_train).tolist() == [30, 30, 30]
    assert np.bincount(ds.y_test).tolist() == [10, 10, 10]
    assert not np.all(np.diff(ds.y_train) >= 0)           # shuffled
    # train and test partition the generator's samples (same class manifolds)
    s = randman.make_spiking_dataset(seed=4, nb_steps=30, shuffle=False, **SMALL)
    key = lambda x, y: sorted(bytes(a) + bytes([b]) for a, b in zip(x, y))   # noqa: E731
    assert key(np.concatenate([ds.x_train, ds.x_test]), np.concatenate([ds.y_train, ds.y_test])) \
        == key(randman.spike_trains(s.times, 30), s.labels)


def test_randman_deterministic_per_seed_and_different_across_seeds():
    a = randman.make_spiking_dataset(seed=11, nb_steps=50, **SMALL)
    b = randman.make_spiking_dataset(seed=11, nb_steps=50, **SMALL)
    c = randman.make_spiking_dataset(seed=12, nb_steps=50, **SMALL)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.allclose(np.sort(a.times.ravel()), np.sort(c.times.ravel()))
    d1 = data.load("randman", seed=3, T=20, **SMALL)
    d2 = data.load("randman", seed=3, T=20, **SMALL)
    np.testing.assert_array_equal(d1.x_train, d2.x_train)
    np.testing.assert_array_equal(d1.y_test, d2.y_test)
    assert not np.array_equal(data.load("randman", seed=4, T=20, **SMALL).x_train, d1.x_train)
    # the reference's parameters: (units, dims, amplitude/frequency/phase, K), and
    # no constant term unless use_bias
    p0 = randman.manifold_params(np.random.default_rng(0), 4, 2)
    assert p0.shape == (4, 2, 3, 32) and np.all(p0[:, :, 0, 0] == 0)
    assert np.all((p0 >= 0) & (p0 < 1)) and p0[:, :, 1:].min() > 0
    p1 = randman.manifold_params(np.random.default_rng(0), 4, 2, use_bias=True)
    assert np.all(p1[:, :, 0, 0] > 0)


@pytest.mark.parametrize("nb_spikes,step_frac", [(1, 1.0), (3, 1.0), (2, 0.5)])
def test_randman_every_unit_fires_nb_spikes_times(nb_spikes, step_frac):
    T = 40
    s = randman.make_spiking_dataset(seed=1, nb_steps=T, step_frac=step_frac,
                                     nb_spikes=nb_spikes, shuffle=False, **SMALL)
    assert s.times.shape == (120, nb_spikes, 12)
    assert s.times.min() >= 0 and s.times.max() < T * step_frac
    x = randman.spike_trains(s.times, T)
    assert x.shape == (120, T, 12) and x.dtype == np.uint8
    assert np.all(x.sum(axis=1) == nb_spikes)             # counts carry no information
    assert x[:, int(np.ceil(T * step_frac)):].sum() == 0
    # min-max standardised per class: each unit's earliest spike is at time 0 and
    # its latest close to the end of the window
    for k in range(3):
        tk = s.times[s.labels == k]
        np.testing.assert_allclose(tk.min(axis=0), 0.0, atol=1e-12)
        np.testing.assert_allclose(tk.max(axis=0), T * step_frac, rtol=1e-5)
    ds = data.load("randman", T=T, nb_spikes=nb_spikes, step_frac=step_frac, **SMALL)
    assert np.all(ds.x_train.sum(axis=1) == nb_spikes)


def test_randman_smooth_nearby_coordinates_nearby_points():
    rng = np.random.default_rng(0)
    p = randman.manifold_params(rng, 50, 2, alpha=2.0)
    x = rng.random((300, 2))
    f = randman.eval_manifold(p, x)
    near = randman.eval_manifold(p, x + 1e-3)
    far = f[rng.permutation(300)]
    d_near = np.linalg.norm(near - f, axis=1).mean()
    d_far = np.linalg.norm(far - f, axis=1).mean()
    assert d_near < 0.02 * d_far
    # the spike times of a class vary smoothly with the manifold coordinate
    s = randman.make_spiking_dataset(seed=2, nb_steps=100, nb_classes=1, nb_units=30,
                                     dim_manifold=1, nb_samples=400, shuffle=False)
    order = np.argsort(s.coords[:, 0])
    t = s.times[order, 0]
    step_adjacent = np.abs(np.diff(t, axis=0)).mean()
    step_random = np.abs(t - t[rng.permutation(400)]).mean()
    assert step_adjacent < 0.05 * step_random


def test_randman_spectrum_decays_with_alpha():
    """Term k has amplitude a_k s_k ~ k^-alpha at a frequency k b_k uniform in
    [0, k), so the power in the octave [F, 2F) of a 1-d manifold's coordinates
    scales as F^(1 - 2 alpha): fit the slope of log band power over log F."""
    assert [randman.f_cutoff(a) for a in (1.0, 1.5, 2.0, 3.0)] == [1000, 100, 32, 10]
    np.testing.assert_allclose(randman.spectrum(3, 2.0), [1 / 2, 1 / 5, 1 / 10])
    n = 1024
    x = (np.arange(n) / n)[:, None]
    w = np.hanning(n)[:, None]
    bands = [2, 4, 8, 16]
    slopes = {}
    for alpha in (1.0, 1.5, 2.0):
        p = randman.manifold_params(np.random.default_rng(1), 64, 1, alpha)
        f = randman.eval_manifold(p, x, alpha)
        power = (np.abs(np.fft.rfft((f - f.mean(0)) * w, axis=0)) ** 2).mean(axis=1)
        band = [power[b:2 * b].sum() for b in bands]
        slopes[alpha] = np.polyfit(np.log2(bands), np.log2(band), 1)[0]
        assert slopes[alpha] == pytest.approx(1 - 2 * alpha, abs=0.3), slopes
    assert slopes[1.0] > slopes[1.5] > slopes[2.0]


def test_randman_bad_arguments():
    with pytest.raises(ValueError, match="^nb_units:"):
        randman.make_spiking_dataset(nb_units=0)
    with pytest.raises(ValueError, match="^step_frac:"):
        randman.make_spiking_dataset(step_frac=1.5, **SMALL)
    with pytest.raises(ValueError, match="^alpha:"):
        randman.make_spiking_dataset(alpha=0, **SMALL)
    with pytest.raises(ValueError, match="^test_fraction:"):
        data.load("randman", test_fraction=1.0, **SMALL)
    with pytest.raises(ValueError, match=r"^x: expected shape \(n, 2\)"):
        randman.eval_manifold(randman.manifold_params(np.random.default_rng(0), 3, 2),
                              np.zeros((4, 1)))

# ---------------------------------------------------------------- event frames


def _dense_twin(samples, T, N, binary=False):
    out = np.zeros((len(samples), T, N), np.int64)
    for i, (steps, units) in enumerate(samples):
        for s, u in zip(steps, units):
            out[i, s, u] += 1
    out = np.minimum(out, 255) if not binary else (out > 0)
    return out.astype(np.uint8)


def test_event_frames_index_like_the_dense_array():
    rng = np.random.default_rng(0)
    T, N = 7, 5
    samples = []
    for k in (0, 12, 3, 40, 0, 9):
        samples.append((rng.integers(0, T, k), rng.integers(0, N, k)))
    samples.append((np.zeros(300, int), np.zeros(300, int)))        # 300 in one bin: capped
    counts = [len(s) for s, _ in samples]
    ef = EventFrames(np.concatenate([[0], np.cumsum(counts)]),
                     np.concatenate([s for s, _ in samples]),
                     np.concatenate([u for _, u in samples]), T, N)
    dense = _dense_twin(samples, T, N)
    assert len(ef) == 7 and ef.shape == (7, T, N) and ef.ndim == 3 and ef.dtype == np.uint8
    assert dense[6, 0, 0] == 255
    np.testing.assert_array_equal(ef[3], dense[3])
    np.testing.assert_array_equal(ef[-1], dense[-1])
    np.testing.assert_array_equal(ef[1:5], dense[1:5])
    np.testing.assert_array_equal(ef[::-2], dense[::-2])
    idx = np.array([5, 0, 3, 3, -2])
    np.testing.assert_array_equal(ef[idx], dense[idx])
    mask = np.array([True, False, True, True, False, False, True])
    np.testing.assert_array_equal(ef[mask], dense[mask])
    assert ef[np.array([], int)].shape == (0, T, N)
    np.testing.assert_array_equal(np.asarray(ef), dense)
    np.testing.assert_array_equal(ef.n_events(), counts)
    binary = EventFrames(ef.offsets, ef.steps, ef.units, T, N, binary=True)
    np.testing.assert_array_equal(binary[:], _dense_twin(samples, T, N, binary=True))
    y = np.arange(7)
    for xb, yb in data.batches(ef, y, 3, np.random.default_rng(1)):
        np.testing.assert_array_equal(xb, dense[yb])
    for bad in (7, -8):
        with pytest.raises(IndexError):
            ef[bad]
    with pytest.raises(ValueError, match="^events:"):
        EventFrames([0, 1], [T], [0], T, N)

# ---------------------------------------------------------------- SHD / SSC


h5py = pytest.importorskip("h5py")


def _write_h5(path, times, units, labels, times_dtype=np.float32, extra=True, skip=()):
    with h5py.File(path, "w") as f:
        if "times" not in skip:
            d = f.create_dataset("spikes/times", (len(times),),
                                 dtype=h5py.vlen_dtype(np.dtype(times_dtype)))
            for i, t in enumerate(times):
                d[i] = np.asarray(t, times_dtype)
        if "units" not in skip:
            d = f.create_dataset("spikes/units", (len(units),), dtype=h5py.vlen_dtype(np.uint16))
            for i, u in enumerate(units):
                d[i] = np.asarray(u, np.uint16)
        if "labels" not in skip:
            f.create_dataset("labels", data=np.asarray(labels, np.uint16))
        if extra:
            f.create_dataset("extra/speaker", data=np.arange(len(labels), dtype=np.uint16))
    return str(path)


def _shd_samples(rng, n, n_classes=20, t_max=1.4):
    times, units = [], []
    for i in range(n):
        k = int(rng.integers(0, 60))
        times.append(np.sort(rng.uniform(0, t_max, k)))
        units.append(rng.integers(0, 700, k))
    if n:
        times[0] = np.array([0.0, 0.0101, 0.0101, 0.0102, 0.9999, 1.0, 1.2])   # same bin twice,
        units[0] = np.array([0, 699, 699, 699, 5, 5, 5])                   # the window's edge
    return times, units, rng.integers(0, n_classes, n)


def _shd_twin(times, units, T, max_time, binary=False):
    out = np.zeros((len(times), T, 700), np.int64)
    for i, (ts, us) in enumerate(zip(times, units)):
        for t, u in zip(np.asarray(ts, np.float64), us):
            if 0 <= t < max_time and int(t / max_time * T) < T:
                out[i, int(t / max_time * T), u] += 1
    return ((out > 0) if binary else np.minimum(out, 255)).astype(np.uint8)


@pytest.mark.parametrize("T,max_time,binary,stored", [(100, 1.0, False, np.float32),
                                                      (25, 0.5, True, np.float16),
                                                      (7, 0.3, False, np.float16)])
def test_shd_reads_and_bins_events(tmp_path, rng, T, max_time, binary, stored):
    tr, te = _shd_samples(rng, 9), _shd_samples(rng, 4)
    _write_h5(tmp_path / "shd_train.h5", *tr, times_dtype=stored)     # SHD's own: float16
    _write_h5(tmp_path / "shd_test.h5", *te, times_dtype=np.float64, extra=False)
    ds = data.load("shd", str(tmp_path), T=T, max_time=max_time, binary=binary)
    assert ds.name == "shd" and ds.n_classes == 20 and ds.temporal and ds.n_steps == T
    assert ds.x_train.shape == (9, T, 700) and ds.x_test.shape == (4, T, 700)
    assert ds.n_features == 700 and ds.y_train.dtype == np.int64
    np.testing.assert_array_equal(ds.y_train, tr[2])
    np.testing.assert_array_equal(ds.y_test, te[2])
    trains = [(np.asarray(t, stored), u) for t, u in zip(*tr[:2])]          # as stored
    np.testing.assert_array_equal(ds.x_train[:], _shd_twin(*zip(*trains), T, max_time, binary))
    np.testing.assert_array_equal(ds.x_test[:], _shd_twin(*te[:2], T, max_time, binary))
    if T == 100:
        assert ds.x_train[0][1, 699] == 3                 # three spikes in one 10 ms bin
        assert ds.x_train[0][:, 5].sum() == 1             # 1.0 s and later are dropped
    ev = shd.read_file(tmp_path / "shd_train.h5")
    assert ev.offsets[-1] == sum(len(t) for t in tr[0])


def test_ssc_uses_the_same_format(tmp_path, rng):
    _write_h5(tmp_path / "ssc_train.h5", *_shd_samples(rng, 5, 35))
    _write_h5(tmp_path / "ssc_test.h5", *_shd_samples(rng, 3, 35))
    ds = data.load("ssc", str(tmp_path), T=10)
    assert ds.name == "ssc" and ds.n_classes == 35 and ds.x_train.shape == (5, 10, 700)
    with pytest.raises(FileNotFoundError, match="shd_train.h5, shd_test.h5"):
        data.load("shd", str(tmp_path))


def test_shd_missing_files_message(tmp_path, rng):
    for folder in (str(tmp_path), None, str(tmp_path / "absent")):
        with pytest.raises(FileNotFoundError) as e:
            data.load("shd", folder)
        msg = str(e.value)
        assert "missing shd_train.h5, shd_test.h5" in msg
        assert (folder or "(no folder given)") in msg
        assert "https://zenkelab.org/datasets/" in msg and "Cramer et al. 2020" in msg
        assert "data_dir" in msg and "Nothing is downloaded" in msg
    _write_h5(tmp_path / "shd_train.h5", *_shd_samples(rng, 2))
    (tmp_path / "shd_test.h5.gz").write_bytes(b"\x1f\x8b")
    with pytest.raises(FileNotFoundError) as e:
        data.load("shd", str(tmp_path))
    msg = str(e.value)
    assert "missing shd_test.h5" in msg and "missing shd_train.h5" not in msg
    assert "found shd_test.h5.gz: unpack with gunzip" in msg


def _corrupt_cases(tmp_path, rng):
    times, units, labels = _shd_samples(rng, 4)
    good = _write_h5(tmp_path / "good.h5", times, units, labels)
    raw = open(good, "rb").read()
    cases = {}

    def case(name, problem, writer):
        p = tmp_path / f"{name}.h5"
        writer(p)
        cases[name] = (str(p), problem)
    case("not_hdf5", "not a readable HDF5 file", lambda p: p.write_bytes(b"hello" * 100))
    case("empty", "not a readable HDF5 file", lambda p: p.write_bytes(b""))
    case("truncated", "truncated", lambda p: p.write_bytes(raw[:len(raw) // 2]))
    case("no_labels", r"missing dataset\(s\) labels", lambda p: _write_h5(
        p, times, units, labels, skip=("labels",)))
    case("no_spikes", r"missing dataset\(s\) spikes/times, spikes/units", lambda p: _write_h5(
        p, times, units, labels, skip=("times", "units")))
    bad_u = [u.copy() for u in units]
    bad_u[2] = bad_u[2][:-1]
    case("lengths", "sample 2: .* spike times but .* units", lambda p: _write_h5(
        p, times, bad_u, labels))
    case("samples", "spikes/times has 4 samples but spikes/units has 3", lambda p: _write_h5(
        p, times, units[:3], labels))
    big = [u.copy() for u in units]
    big[1][0] = 700
    case("unit", r"sample 1: unit index outside \[0, 700\) \(700\)", lambda p: _write_h5(
        p, times, big, labels))
    neg = [t.copy() for t in times]
    neg[3][0] = -0.5
    case("negative", r"sample 3: negative spike time \(-0.5\)", lambda p: _write_h5(
        p, neg, units, labels))
    case("labels", r"labels: expected one label per sample \(4\)", lambda p: _write_h5(
        p, times, units, labels[:3]))
    return cases


def test_shd_corrupt_files_name_file_and_problem(tmp_path, rng):
    for name, (path, problem) in _corrupt_cases(tmp_path, rng).items():
        with pytest.raises(ValueError) as e:
            shd.read_file(path)
        msg = str(e.value)
        assert msg.startswith(path + ":"), (name, msg)
        assert re.search(problem, msg), (name, msg)
    # through load(): a label beyond SHD's 20 classes, and a corrupt split
    t, u, lab = _shd_samples(rng, 3)
    lab[1] = 20
    _write_h5(tmp_path / "shd_train.h5", t, u, lab)
    _write_h5(tmp_path / "shd_test.h5", *_shd_samples(rng, 2))
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "shd_train.h5"))
                       + ": label 20 outside the 20 classes of shd"):
        data.load("shd", str(tmp_path))
    (tmp_path / "shd_test.h5").write_bytes(b"\x00" * 64)
    _write_h5(tmp_path / "shd_train.h5", *_shd_samples(rng, 2))
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "shd_test.h5"))):
        data.load("shd", str(tmp_path))
    with pytest.raises(ValueError, match="^max_time:"):
        data.load("shd", str(tmp_path), max_time=0)
    with pytest.raises(ValueError, match="^T:"):
        data.load("shd", str(tmp_path), T=0)

# ---------------------------------------------------------------- N-MNIST


def _nmnist_bytes(x, y, p, t):
    """The 40-bit N-MNIST event: x, y, then polarity in bit 7 and the 23-bit
    microsecond time stamp, big-endian (Orchard's eventvision.py)."""
    out = bytearray()
    for xi, yi, pi, ti in zip(x, y, p, t):
        assert 0 <= ti < 2 ** 23
        out += bytes([xi, yi, (pi << 7) | (ti >> 16), (ti >> 8) & 0xFF, ti & 0xFF])
    return bytes(out)


def _nmnist_events(rng, k, t_max=320_000):
    return (rng.integers(0, 34, k), rng.integers(0, 34, k), rng.integers(0, 2, k),
            np.sort(rng.integers(0, t_max, k)))


def test_nmnist_reads_the_bit_layout(tmp_path, rng):
    x, y, p, t = _nmnist_events(rng, 50, t_max=2 ** 23)
    t[-1] = 2 ** 23 - 1                                   # every time-stamp bit set
    p[-1] = 1
    f = tmp_path / "a.bin"
    f.write_bytes(_nmnist_bytes(x, y, p, t))
    ev = nmnist.read_file(f)
    for got, want in zip(ev, (x, y, p, t)):
        np.testing.assert_array_equal(got, want)
    # an overflow marker (y = 240) adds 2^13 us to every later event and is dropped
    raw = _nmnist_bytes(x[:3], y[:3], p[:3], t[:3]) + bytes([0, 240, 0, 0, 0]) + \
        _nmnist_bytes(x[3:6], y[3:6], p[3:6], t[3:6])
    f.write_bytes(raw)
    ev = nmnist.read_file(f)
    np.testing.assert_array_equal(ev.t, np.concatenate([t[:3], t[3:6] + 8192]))
    np.testing.assert_array_equal(ev.x, x[:6])
    f.write_bytes(b"")
    assert len(nmnist.read_file(f).t) == 0


def _nmnist_folder(root, rng, counts):
    made = {}
    for split, per_digit in counts.items():
        for digit, n in per_digit.items():
            d = root / split / str(digit)
            d.mkdir(parents=True)
            for i in range(n):
                ev = _nmnist_events(rng, int(rng.integers(0, 80)))
                (d / f"{i:05d}.bin").write_bytes(_nmnist_bytes(*ev))
                made.setdefault(split, []).append((digit, ev))
    return made


def _nmnist_twin(samples, T, max_time):
    out = np.zeros((len(samples), T, 2 * 34 * 34), np.int64)
    for i, (_, (x, y, p, t)) in enumerate(samples):
        for xi, yi, pi, ti in zip(x, y, p, t):
            sec = ti / 1e6
            if sec < max_time:
                out[i, int(sec / max_time * T), pi * 1156 + yi * 34 + xi] += 1
    return np.minimum(out, 255).astype(np.uint8)


def test_nmnist_loads_and_bins_folders(tmp_path, rng):
    made = _nmnist_folder(tmp_path, rng, {"Train": {0: 3, 3: 2}, "Test": {3: 2, 7: 1}})
    (tmp_path / "Train" / "README").mkdir()               # not a digit: ignored
    ds = data.load("nmnist", str(tmp_path), T=12, max_time=0.3)
    assert ds.name == "nmnist" and ds.temporal and ds.n_classes == 10
    assert ds.x_train.shape == (5, 12, 2312) and ds.x_test.shape == (3, 12, 2312)
    assert ds.y_train.tolist() == [0, 0, 0, 3, 3] and ds.y_test.tolist() == [3, 3, 7]
    np.testing.assert_array_equal(ds.x_train[:], _nmnist_twin(made["Train"], 12, 0.3))
    np.testing.assert_array_equal(ds.x_test[:], _nmnist_twin(made["Test"], 12, 0.3))
    few = data.load("nmnist", str(tmp_path), T=12, max_per_class=1)
    assert few.y_train.tolist() == [0, 3] and few.y_test.tolist() == [3, 7]
    np.testing.assert_array_equal(few.x_train[1], ds.x_train[3])
    np.testing.assert_array_equal(data.load("nmnist", str(tmp_path), T=12, binary=True).x_test[:],
                                  np.minimum(ds.x_test[:], 1))


def test_nmnist_corrupt_files_name_file_and_problem(tmp_path, rng):
    good = _nmnist_bytes(*_nmnist_events(rng, 4))
    cases = {"truncated": (good[:-2], "18 bytes is not a multiple of 5"),
             "x": (good + bytes([34, 3, 0, 0, 1]), "event 4 .byte 20.: x address 34 outside "
                   "the 34 x 34 sensor"),
             "y": (bytes([1, 40, 0, 0, 1]) + good, "event 0 .byte 0.: y address 40")}
    for name, (raw, problem) in cases.items():
        f = tmp_path / f"{name}.bin"
        f.write_bytes(raw)
        with pytest.raises(ValueError, match=re.escape(str(f)) + ": .*" + problem):
            nmnist.read_file(f)
    # through load(): the bad file is named
    _nmnist_folder(tmp_path / "set", rng, {"Train": {1: 1}, "Test": {1: 1}})
    bad = tmp_path / "set" / "Test" / "1" / "00009.bin"
    bad.write_bytes(good[:7])
    with pytest.raises(ValueError, match=re.escape(str(bad))):
        data.load("nmnist", str(tmp_path / "set"))


def test_nmnist_missing_folder_message(tmp_path, rng):
    def message(folder):
        with pytest.raises(FileNotFoundError) as e:
            data.load("nmnist", folder)
        msg = str(e.value)
        assert "https://www.garrickorchard.com/datasets/n-mnist" in msg
        assert "Train/<digit>/*.bin" in msg and "data_dir" in msg
        return msg
    assert "(no folder given)" in message(None)
    assert str(tmp_path / "absent") in message(str(tmp_path / "absent"))
    (tmp_path / "Train").mkdir()
    assert "missing Test/" in message(str(tmp_path))
    (tmp_path / "Test" / "2").mkdir(parents=True)
    assert "has no digit folders" in message(str(tmp_path))
    (tmp_path / "Train" / "2").mkdir()
    assert "no .bin files under" in message(str(tmp_path))

# ---------------------------------------------------------------- load()


def test_load_names_options_and_temporal_flag():
    with pytest.raises(ValueError, match="^dataset: unknown name 'cifar'") as e:
        data.load("cifar")
    for name in ("digits", "fashion-mnist", "mnist", "yinyang", "randman", "shd", "ssc",
                 "nmnist"):
        assert name in str(e.value) and name in data.NAMES
    assert data.TEMPORAL == {"randman", "shd", "ssc", "nmnist"}
    with pytest.raises(ValueError, match=r"^dataset 'yinyang': unknown option\(s\) \['T'\]; "
                                         r"valid: train_size"):
        data.load("yinyang", T=10)
    with pytest.raises(ValueError, match="valid: none"):
        data.load("mnist", "/nowhere", T=3)
    assert {"T", "max_time", "binary"} <= set(data.options("shd"))
    assert data.options("randman")["nb_units"] == 100 and "seed" not in data.options("randman")
    assert not data.load("digits").temporal

# ---------------------------------------------------------------- training


def test_events_encoder_puts_time_first():
    x = np.random.default_rng(0).integers(0, 3, (4, 6, 5)).astype(np.uint8)
    out = encode.events(x, 6, dtype="float64")
    assert out.shape == (6, 4, 5) and out.dtype == np.float64 and out.flags.c_contiguous
    for b in range(4):
        np.testing.assert_array_equal(out[:, b], x[b])
    assert encode.get("events") is encode.events and encode.events(x).dtype == np.float32
    with pytest.raises(ValueError, match="^T: the data have 6 steps, the run has T=5"):
        encode.events(x, 5)
    with pytest.raises(ValueError, match=r"^x: expected spike trains \(B, T, N\)"):
        encode.events(x[:, 0])


def _cfg(tmp_path, **kw):
    from lifgrad.train import TrainConfig
    base = dict(hidden=(16,), epochs=1, batch_size=32, lr=5e-3, out=str(tmp_path / "run"),
                readout=True)
    return TrainConfig(**{**base, **kw})


def test_train_on_yinyang_one_epoch(tmp_path):
    from lifgrad.train import fit
    hist = fit(_cfg(tmp_path, dataset="yinyang", T=8, max_train=256,
                    data_options=dict(test_size=150)), progress=False)
    row = hist[0]
    assert len(hist) == 1 and np.isfinite(row["loss"]) and 0 <= row["test_acc"] <= 1
    assert hist.network.layers[0].n_in == 4
    cfg = json.load(open(tmp_path / "run" / "config.json"))
    assert cfg["dataset"] == "yinyang" and cfg["data_options"] == {"test_size": 150}


def test_train_on_randman_learns_spike_timing(tmp_path):
    """Every unit fires once in every sample, so only spike timing separates
    the classes; a few epochs must beat chance clearly (a wrong layout of
    the input, e.g. (B, T, N) read as (T, B, N), cannot)."""
    from lifgrad.train import fit
    opts = dict(nb_classes=2, nb_units=20, dim_manifold=1, nb_samples=150, alpha=2.0)
    hist = fit(_cfg(tmp_path, dataset="randman", encoder="events", T=20, epochs=6,
                    hidden=(32,), batch_size=16, lr=2e-2, alpha=0.9, data_options=opts),
               progress=False)
    assert hist[0]["test_acc"] < 0.9 and hist[-1]["test_acc"] >= 0.85, list(hist)


def test_train_temporal_rules(tmp_path):
    from lifgrad.train import fit
    small = dict(data_options=dict(SMALL))
    with pytest.raises(ValueError, match="^encoder: the randman data set is spike trains "
                                         r"\(n, T, N\) = \(96, 25, 12\); use encoder='events'"):
        fit(_cfg(tmp_path, dataset="randman", **small), progress=False)
    ds = data.load("randman", T=10, **SMALL)
    with pytest.raises(ValueError, match="^T: the randman data have 10 steps; set T=10"):
        fit(_cfg(tmp_path, encoder="events", T=12), dataset=ds, progress=False)
    with pytest.raises(ValueError, match="^encoder: 'events' takes spike trains"):
        fit(_cfg(tmp_path, dataset="yinyang", encoder="events"), progress=False)
    with pytest.raises(ValueError, match="^data_options:"):
        fit(_cfg(tmp_path, data_options=[1]), progress=False)
    hist = fit(_cfg(tmp_path, encoder="events", T=10, dtype="float64"), dataset=ds,
               progress=False)
    assert np.isfinite(hist[0]["loss"])


@pytest.mark.parametrize("name", ["yinyang", "randman"])
def test_cli_train_runs(tmp_path, name, capsys):
    from lifgrad import cli
    conf = tmp_path / "c.json"
    conf.write_text(json.dumps({"data_options": dict(SMALL) if name == "randman"
                                else {"train_size": 200, "test_size": 90}}))
    code = cli.main(["train", "--dataset", name, "--config", str(conf), "--hidden", "8",
                     "--epochs", "1", "--T", "6", "--out", str(tmp_path / "run"), "--quiet"])
    assert code == 0, capsys.readouterr().err
    saved = json.load(open(tmp_path / "run" / "config.json"))
    assert saved["encoder"] == ("events" if name == "randman" else "static")
    assert cli.main(["evaluate", str(tmp_path / "run")]) == 0
    assert "test accuracy" in capsys.readouterr().out
