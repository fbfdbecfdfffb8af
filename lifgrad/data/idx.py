"""MNIST-format IDX files: ``fashion-mnist`` / ``mnist`` from any folder of
``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``.
Fashion-MNIST defaults to Debian's ``dataset-fashion-mnist`` location.

Images are flattened and scaled to [0, 1] (float32); labels are int64.
"""
from __future__ import annotations

import gzip
import os
import struct

import numpy as np

from .dataset import Dataset

__all__ = ["read_idx", "load_idx_folder", "DEFAULT_DIRS"]

DEFAULT_DIRS = {"fashion-mnist": "/usr/share/datasets/fashion-mnist",
                "mnist": "/usr/share/datasets/mnist"}
_FILES = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
          "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}


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
