"""The Yin-Yang data set (Kriener, Göltz & Petrovici 2022, "The Yin-Yang
dataset", NICE '22, doi:10.1145/3517343.3517380, arXiv:2102.08211), generated.

Points ``(x, y)`` drawn uniformly in the square ``[0, 2 R]^2`` and kept
inside the big circle of radius ``R = r_big = 0.5`` around ``(R, R)``; three
classes (the reference code's ``which_class``):

* label 2 ("dot"): inside one of the two dots, radius ``r_small = 0.1``
  around ``(R/2, R)`` and ``(3R/2, R)``;
* label 1: inside the left half-size circle (radius ``R/2`` around
  ``(R/2, R)``), or in the upper half (``y > R``) outside the right
  half-size circle;
* label 0: the rest of the big disk.

The reference names the classes ``['yin', 'yang', 'dot']`` by label
(:data:`CLASS_NAMES`).  Classes are balanced by rejection sampling: each
sample first draws its class uniformly from {0, 1, 2}, then draws points
until one falls in that class (so the counts are binomial around n/3, not
exactly equal; the dots alone cover 8 % of the disk).  Each sample is coded
as ``(x, y, 1 - x, 1 - y)``, the mirrored axes that let networks without an
intrinsic bias learn; ``bias=True`` appends a constant input 1.

This module reproduces the reference code (github.com/lkriener/yin_yang_data_set,
``dataset.py``) draw for draw: the same legacy Mersenne-Twister stream
(``numpy.random.RandomState(seed)``), the same order of draws, so
``generate(1000, seed=40)`` is the reference test set (and the
``publication_data/test_samples.npy`` of Göltz et al. 2021).  The reference
sizes and seeds: train 5000 (seed 42), validation 1000 (41), test 1000 (40).

Spiking input: the paper's time-to-first-spike code places each value at a
time linear in the value, plus a bias spike at a fixed time (t_bias = 0).
``lifgrad.encode.latency(x, T, linear=True)`` is that code: it puts value
``v`` at step ``round((T - 1) (1 - v))``; because the coding is mirrored,
``(1 - x, 1 - y, x, y)`` is the paper's ``(x, y, 1 - x, 1 - y)`` with the
channels swapped pairwise, and the bias input 1 spikes at step 0.  The
default training encoder ``static`` presents the four values as currents.
"""
from __future__ import annotations

import numpy as np

from .dataset import Dataset

__all__ = ["generate", "which_class", "load", "CLASS_NAMES", "SIZES", "SEEDS"]

CLASS_NAMES = ("yin", "yang", "dot")
R_SMALL, R_BIG = 0.1, 0.5
SIZES = {"train": 5000, "validation": 1000, "test": 1000}
SEEDS = {"train": 42, "validation": 41, "test": 40}


def which_class(x, y, r_small=R_SMALL, r_big=R_BIG):
    """Label of points ``(x, y)`` (arrays or scalars) of the big disk: 0, 1 or 2 (dot)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    d_right = np.sqrt((x - 1.5 * r_big) ** 2 + (y - r_big) ** 2)     # as the reference
    d_left = np.sqrt((x - 0.5 * r_big) ** 2 + (y - r_big) ** 2)
    one = ((d_right <= r_small) | ((d_left > r_small) & (d_left <= 0.5 * r_big))
           | ((y > r_big) & (d_right > 0.5 * r_big)))
    dot = (d_right < r_small) | (d_left < r_small)
    return np.where(dot, 2, one.astype(np.int64))


def _check(n, r_small, r_big):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"size: expected an integer >= 0, got {n!r}")
    if not (0 < r_small < 0.5 * r_big):
        raise ValueError(f"r_small: expected a number in (0, r_big / 2), got {r_small!r} "
                         f"(r_big={r_big!r})")


def generate(size, seed=42, r_small=R_SMALL, r_big=R_BIG, bias=False):
    """``size`` samples: features ``(size, 4)`` (``(size, 5)`` with ``bias``),
    float64 ``(x, y, 1 - x, 1 - y[, 1])``, and int64 labels; the reference's
    rejection sampling with ``numpy.random.RandomState(seed)``."""
    _check(size, r_small, r_big)
    rs = np.random.RandomState(seed)
    pts = np.empty((size, 2))
    labels = np.empty(size, np.int64)
    for i in range(size):
        goal = rs.randint(3)
        while True:
            x, y = rs.rand(2) * 2.0 * r_big
            if np.sqrt((x - r_big) ** 2 + (y - r_big) ** 2) > r_big:
                continue
            c = int(which_class(x, y, r_small, r_big))
            if c == goal:
                break
        pts[i] = x, y
        labels[i] = c
    feats = [pts, 1.0 - pts]
    if bias:
        feats.append(np.ones((size, 1)))
    return np.concatenate(feats, axis=1), labels


def load(seed=0, train_size=SIZES["train"], test_size=SIZES["test"], bias=False,
         r_small=R_SMALL, r_big=R_BIG):
    """The Yin-Yang :class:`Dataset` (static features, float32, 3 classes).

    ``seed=0`` gives the reference sets: train with seed 42, test with seed 40;
    ``seed=s`` uses ``42 + 3 s`` and ``40 + 3 s``, so splits and seeds never
    share a stream.  The reference validation set is
    ``generate(1000, seed=41 + 3 s)``."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected an integer >= 0, got {seed!r}")
    xtr, ytr = generate(train_size, SEEDS["train"] + 3 * seed, r_small, r_big, bias)
    xte, yte = generate(test_size, SEEDS["test"] + 3 * seed, r_small, r_big, bias)
    return Dataset("yinyang", xtr.astype(np.float32), ytr, xte.astype(np.float32), yte, 3)
