"""Data sets (lifgrad.data): IDX reading on synthetic files, folder loading and
its missing-data message, the digits split, seeded batching, and the real
Fashion-MNIST when it is installed."""
import gzip
import os
import re
import struct

import numpy as np
import pytest

from lifgrad import data

STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _idx_bytes(arr, code=0x08):
    arr = np.asarray(arr)
    dt = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    head = bytes([0, 0, code, arr.ndim]) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    return head + arr.astype(dt).tobytes()


def _write(path, arr, code=0x08):
    raw = _idx_bytes(arr, code)
    if str(path).endswith(".gz"):
        with gzip.open(path, "wb") as f:
            f.write(raw)
    else:
        with open(path, "wb") as f:
            f.write(raw)
    return path


def _fake(rng, n_train=12, n_test=5, rows=4, cols=3, n_classes=7):
    xtr = rng.integers(0, 256, (n_train, rows, cols), dtype=np.uint8)
    xtr[0, 0, 0], xtr[0, 0, 1] = 0, 255
    ytr = rng.integers(0, n_classes, n_train).astype(np.uint8)
    ytr[0] = n_classes - 1
    xte = rng.integers(0, 256, (n_test, rows, cols), dtype=np.uint8)
    yte = rng.integers(0, n_classes, n_test).astype(np.uint8)
    return xtr, ytr, xte, yte


def _folder(tmp_path, arrays, gz=(True, False, True, False), skip=()):
    tmp_path.mkdir(parents=True, exist_ok=True)
    for stem, arr, z in zip(STEMS, arrays, gz):
        if stem not in skip:
            _write(tmp_path / (stem + (".gz" if z else "")), arr)
    return str(tmp_path)


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_uint8_images_and_labels(tmp_path, rng, gz):
    ext = ".gz" if gz else ""
    img = rng.integers(0, 256, (6, 5, 4), dtype=np.uint8)
    lab = rng.integers(0, 10, 6).astype(np.uint8)
    a = data.read_idx(_write(tmp_path / f"img{ext}", img))
    b = data.read_idx(str(_write(tmp_path / f"lab{ext}", lab)))
    assert a.dtype == np.uint8 and a.shape == (6, 5, 4)
    assert b.dtype == np.uint8 and b.shape == (6,)
    np.testing.assert_array_equal(a, img)
    np.testing.assert_array_equal(b, lab)


@pytest.mark.parametrize("code,values", [(0x0B, [-300, 2, 7000]), (0x0C, [-70000, 1, 5]),
                                         (0x0D, [0.5, -1.25, 3.0]), (0x0E, [1e-300, -2.5, 1.0])])
def test_read_idx_big_endian_types(tmp_path, code, values):
    arr = np.array(values).reshape(3, 1)
    out = data.read_idx(_write(tmp_path / "x.idx", arr, code))
    assert out.shape == (3, 1)
    np.testing.assert_array_equal(out.astype(np.float64), arr)


def test_read_idx_rejects_bad_files(tmp_path):
    good = _idx_bytes(np.zeros((2, 3), np.uint8))
    cases = {"magic": b"\x01" + good[1:], "type": good[:2] + b"\x07" + good[3:],
             "short": good[:-1], "long": good + b"\x00", "header": good[:6], "empty": b""}
    for name, raw in cases.items():
        p = tmp_path / name
        p.write_bytes(raw)
        with pytest.raises(ValueError, match=re.escape(str(p))):
            data.read_idx(p)


def test_load_idx_folder(tmp_path, rng):
    xtr, ytr, xte, yte = _fake(rng)
    ds = data.load_idx_folder(_folder(tmp_path, (xtr, ytr, xte, yte)), "mnist")
    assert ds.name == "mnist" and ds.n_classes == 7 and ds.n_features == 12
    assert ds.x_train.shape == (12, 12) and ds.x_test.shape == (5, 12)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    np.testing.assert_allclose(ds.x_train, xtr.reshape(12, -1) / 255.0, rtol=1e-7)
    np.testing.assert_allclose(ds.x_test, xte.reshape(5, -1) / 255.0, rtol=1e-7)
    np.testing.assert_array_equal(ds.y_train, ytr)
    np.testing.assert_array_equal(ds.y_test, yte)
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    # the same through load(); all plain and all gzipped folders read the same
    for gz in ((False,) * 4, (True,) * 4):
        other = _folder(tmp_path / str(gz[0]), (xtr, ytr, xte, yte), gz=gz)
        ds2 = data.load("mnist", data_dir=other)
        np.testing.assert_array_equal(ds2.x_train, ds.x_train)
        np.testing.assert_array_equal(ds2.y_test, ds.y_test)


def test_load_idx_folder_mismatched_counts(tmp_path, rng):
    xtr, ytr, xte, yte = _fake(rng)
    with pytest.raises(ValueError, match="train images"):
        data.load_idx_folder(_folder(tmp_path, (xtr, ytr[:-1], xte, yte)))


@pytest.mark.parametrize("name", ["fashion-mnist", "mnist"])
def test_missing_data_message(tmp_path, rng, name):
    xtr, ytr, xte, yte = _fake(rng)
    folder = _folder(tmp_path / "partial", (xtr, ytr, xte, yte),
                     skip=("t10k-images-idx3-ubyte", "train-labels-idx1-ubyte"))
    with pytest.raises(FileNotFoundError) as e:
        data.load(name, data_dir=folder)
    msg = str(e.value)
    assert folder in msg
    assert "missing t10k-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz]" in msg \
        or "missing train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz]" in msg
    assert "train-images-idx3-ubyte[.gz]" not in msg
    assert ("dataset-fashion-mnist" in msg) == (name == "fashion-mnist")
    assert "Nothing is downloaded" in msg
    nowhere = str(tmp_path / "does-not-exist")
    with pytest.raises(FileNotFoundError, match=re.escape(nowhere)) as e:
        data.load_idx_folder(nowhere, name)
    for stem in STEMS:
        assert stem in str(e.value)
    if name == "fashion-mnist":
        assert "apt-get install dataset-fashion-mnist" in str(e.value)


def test_load_unknown_name():
    with pytest.raises(ValueError, match="^dataset: unknown name 'cifar'"):
        data.load("cifar")


def test_load_digits_split():
    ds = data.load_digits()
    n = len(ds.y_train) + len(ds.y_test)
    assert n == 1797 and len(ds.y_test) == 360            # ceil(0.2 * 1797)
    assert ds.n_classes == 10 and ds.n_features == 64
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.x_train.min() >= 0 and ds.x_train.max() <= 1 and ds.x_train.max() == 1
    # stratified: each class's test share is 20 % of its total, to one sample
    tot = np.bincount(np.concatenate([ds.y_train, ds.y_test]), minlength=10)
    te = np.bincount(ds.y_test, minlength=10)
    assert np.all(np.abs(te - 0.2 * tot) <= 1)
    # the split partitions the whole data set
    from sklearn.datasets import load_digits
    d = load_digits()
    allx = np.concatenate([ds.x_train, ds.x_test]) * 16
    key = lambda a: sorted(map(bytes, np.rint(a).astype(np.uint8)))     # noqa: E731
    assert key(allx) == key(d.data)
    # reproducible with a seed, different with another
    again = data.load_digits(seed=0)
    np.testing.assert_array_equal(again.x_test, ds.x_test)
    np.testing.assert_array_equal(again.y_test, ds.y_test)
    other = data.load_digits(seed=1)
    assert not np.array_equal(other.x_test, ds.x_test)
    np.testing.assert_array_equal(np.bincount(other.y_test, minlength=10), te)
    assert data.load("digits", seed=1).y_test.tolist() == other.y_test.tolist()
    for bad in (0, 1, -0.1, 1.5):
        with pytest.raises(ValueError, match="^test_fraction:"):
            data.load_digits(test_fraction=bad)


@pytest.mark.parametrize("bs", [1, 4, 7, 23, 100])
def test_batches_cover_every_sample_once(bs):
    n = 23
    x = np.arange(n * 2).reshape(n, 2).astype(float)
    y = np.arange(n)
    out = list(data.batches(x, y, bs, np.random.default_rng(3)))
    assert len(out) == -(-n // bs)
    assert all(len(yb) == bs for _, yb in out[:-1])
    seen = np.concatenate([yb for _, yb in out])
    assert sorted(seen.tolist()) == list(range(n))
    for xb, yb in out:
        np.testing.assert_array_equal(xb[:, 0], 2 * yb)      # x and y stay paired
    if bs not in (23, 100):
        assert seen.tolist() != list(range(n))               # shuffled
    again = np.concatenate([yb for _, yb in data.batches(x, y, bs, np.random.default_rng(3))])
    np.testing.assert_array_equal(again, seen)
    if bs < n:
        other = np.concatenate([yb for _, yb in data.batches(x, y, bs, np.random.default_rng(4))])
        assert not np.array_equal(other, seen)
    plain = np.concatenate([yb for _, yb in data.batches(x, y, bs)])
    np.testing.assert_array_equal(plain, y)
    dropped = list(data.batches(x, y, bs, np.random.default_rng(3), drop_last=True))
    assert len(dropped) == n // bs and all(len(yb) == bs for _, yb in dropped)


def test_batches_bad_arguments():
    x, y = np.zeros((5, 2)), np.zeros(5, int)
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="^batch_size:"):
            list(data.batches(x, y, bad))
    with pytest.raises(ValueError, match="^y: expected 5 labels"):
        list(data.batches(x, y[:4], 2))


def test_real_fashion_mnist():
    folder = data.DEFAULT_DIRS["fashion-mnist"]
    have = os.path.isdir(folder) and all(
        os.path.exists(os.path.join(folder, s)) or os.path.exists(os.path.join(folder, s + ".gz"))
        for s in STEMS)
    if not have:
        pytest.skip(f"Fashion-MNIST not installed in {folder}: install it with "
                    f"'apt-get install dataset-fashion-mnist' (or pass data_dir= a folder of "
                    f"the four IDX files)")
    ds = data.load("fashion-mnist")
    assert ds.name == "fashion-mnist" and ds.n_classes == 10 and ds.n_features == 784
    assert ds.x_train.shape == (60000, 784) and ds.x_test.shape == (10000, 784)
    assert ds.y_train.shape == (60000,) and ds.y_test.shape == (10000,)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    for x in (ds.x_train, ds.x_test):
        assert x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_array_equal(np.bincount(ds.y_train), np.full(10, 6000))
    np.testing.assert_array_equal(np.bincount(ds.y_test), np.full(10, 1000))
