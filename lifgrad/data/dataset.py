"""The data-set container and seeded batching.

A :class:`Dataset` holds a train and a test split.  Static data sets
(images, Yin-Yang coordinates) have ``x`` of shape ``(n, N)``, values in
[0, 1], turned into network input by an encoder (:mod:`lifgrad.encode`).
Temporal data sets (Randman, SHD, SSC, N-MNIST) have ``x`` of shape
``(n, T, N)``: spike counts per time step, already the network's input
(``encoder="events"`` in training).  ``x`` is a NumPy array or an
array-like that bins events on indexing (:class:`lifgrad.data.events.EventFrames`).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Dataset", "batches"]


class Dataset(NamedTuple):
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int

    @property
    def n_features(self):
        """N: input units (the last axis of ``x``)."""
        return self.x_train.shape[-1]

    @property
    def temporal(self):
        """True when ``x`` is ``(n, T, N)`` spike trains, False for static ``(n, N)``."""
        return len(self.x_train.shape) == 3

    @property
    def n_steps(self):
        """T of a temporal data set; None for a static one."""
        return self.x_train.shape[1] if self.temporal else None


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
