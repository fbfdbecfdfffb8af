"""Data sets (nothing is downloaded) and seeded batching.

* ``digits``: scikit-learn's bundled 8x8 handwritten digits (1797 images),
  the embedded default; a fixed, stratified 20 % test split.
* ``fashion-mnist`` / ``mnist``: any folder of MNIST-format IDX files
  (``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
  ``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``).
  Fashion-MNIST defaults to Debian's ``dataset-fashion-mnist`` location.

Images are flattened and scaled to [0, 1] (float32); labels are int64.
"""
from __future__ import annotations

import gzip
import os
import struct
from typing import NamedTuple

import numpy as np

__all__ = ["Dataset", "load", "load_digits", "load_idx_folder", "read_idx", "batches",
           "DEFAULT_DIRS"]

DEFAULT_DIRS = {"fashion-mnist": "/usr/share/datasets/fashion-mnist",
                "mnist": "/usr/share/datasets/mnist"}
_FILES = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
          "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}


class Dataset(NamedTuple):
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int

    @property
    def n_features(self):
        return self.x_train.shape[1]


def load_digits(test_fraction=0.2, seed=0):
    """scikit-learn's digits, pixel values / 16, stratified split with ``seed``."""
    from sklearn.datasets import load_digits as _ld
    from sklearn.model_selection import train_test_split
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction: expected a number in (0, 1), got {test_fraction!r}")
    d = _ld()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=test_fraction, random_state=seed,
                                          stratify=y)
    return Dataset("digits", xtr, ytr, xte, yte, 10)


def read_idx(path):
    """Read one IDX file (gzipped or not) into a numpy array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    code, ndim = data[2], data[3]
    if code not in dtypes:
        raise ValueError(f"{path}: unknown IDX element type 0x{code:02x}")
    if len(data) < 4 + 4 * ndim:
        raise ValueError(f"{path}: truncated IDX header ({ndim} dimensions declared, "
                         f"{len(data)} bytes in the file)")
    shape = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    dt = np.dtype(dtypes[code])
    n = int(np.prod(shape, dtype=np.int64))
    body = len(data) - (4 + 4 * ndim)
    if body != n * dt.itemsize:
        raise ValueError(f"{path}: expected {n} values for shape {shape}, "
                         f"found {body / dt.itemsize:g}")
    arr = np.frombuffer(data, dtype=dt, offset=4 + 4 * ndim)
    return arr.reshape(shape)


def _find(folder, stem):
    for name in (stem + ".gz", stem):
        p = os.path.join(folder, name)
        if os.path.exists(p):
            return p
    return None


def load_idx_folder(folder, name="mnist"):
    """Load the four MNIST-format files from ``folder``."""
    if folder is None or not os.path.isdir(folder):
        raise FileNotFoundError(_missing_message(name, folder))
    paths = {k: _find(folder, stem) for k, stem in _FILES.items()}
    missing = [(_FILES[k] + "[.gz]") for k, p in paths.items() if p is None]
    if missing:
        raise FileNotFoundError(_missing_message(name, folder, missing))
    arrs = {k: read_idx(p) for k, p in paths.items()}
    for part in ("train", "test"):
        x, y = arrs[f"x_{part}"], arrs[f"y_{part}"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"{folder}: {part} images {x.shape} and labels {y.shape} do not match")
    flat = {k: (v.reshape(len(v), -1).astype(np.float32) / 255.0 if k.startswith("x")
                else v.astype(np.int64)) for k, v in arrs.items()}
    n_classes = int(max(flat["y_train"].max(), flat["y_test"].max())) + 1
    return Dataset(name, flat["x_train"], flat["y_train"], flat["x_test"], flat["y_test"],
                   n_classes)


def _missing_message(name, folder, missing=None):
    where = folder if folder else "(no folder given)"
    msg = f"{name}: data not found in {where}"
    if missing:
        msg += f"; missing {', '.join(missing)}"
    msg += (". Put the four MNIST-format IDX files (train-images-idx3-ubyte.gz, "
            "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) "
            "in a folder and pass it with --data-dir / data_dir=")
    if name == "fashion-mnist":
        msg += (", or install Debian's package: apt-get install dataset-fashion-mnist "
                f"(files in {DEFAULT_DIRS['fashion-mnist']})")
    return msg + ". Nothing is downloaded."


def load(name="digits", data_dir=None, seed=0):
    """Load a data set by name: 'digits', 'fashion-mnist' or 'mnist'."""
    if name == "digits":
        return load_digits(seed=seed)
    if name in ("fashion-mnist", "mnist"):
        return load_idx_folder(data_dir or DEFAULT_DIRS[name], name)
    raise ValueError(f"dataset: unknown name {name!r}; valid: digits, fashion-mnist, mnist")


def batches(x, y, batch_size, rng=None, drop_last=False):
    """Yield ``(x_batch, y_batch)``; shuffled by ``rng`` (a numpy Generator) if given."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
    n = len(x)
    if len(y) != n:
        raise ValueError(f"y: expected {n} labels (one per sample of x), got {len(y)}")
    order = rng.permutation(n) if rng is not None else np.arange(n)
    stop = n - n % batch_size if drop_last else n
    for i in range(0, stop, batch_size):
        idx = order[i:i + batch_size]
        yield x[idx], y[idx]
