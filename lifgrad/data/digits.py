"""scikit-learn's bundled 8x8 handwritten digits (1797 images), the embedded
default data set; a fixed, stratified test split."""
from __future__ import annotations

import numpy as np

from .dataset import Dataset

__all__ = ["load_digits"]


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
