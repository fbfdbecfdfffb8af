"""Event streams binned into time steps, stored compactly.

Recorded spike data sets (SHD, SSC, N-MNIST) are lists of events ``(t, unit)``.
:func:`bin_events` puts each event into step ``floor(t / max_time * T)`` and
drops events at or after ``max_time``; :class:`EventFrames` keeps the binned
events of all samples (a few bytes per event) and behaves as the dense
``(n, T, N)`` array of spike counts: ``len``, ``shape``, ``dtype`` and
indexing, which returns dense ``uint8`` counts for the requested samples
only.  So a batch is densified when it is drawn and the whole set never is:
SSC at T=100 would be 75466 x 100 x 700 bytes = 5.3 GB dense.
"""
from __future__ import annotations

import numpy as np

__all__ = ["bin_events", "EventFrames"]


def bin_events(times, T, max_time):
    """Steps ``floor(times / max_time * T)`` (int64) and the mask of events kept
    (``0 <= t < max_time``)."""
    t = np.asarray(times, np.float64)
    keep = (t >= 0) & (t < max_time)
    steps = np.floor(t / max_time * T).astype(np.int64)
    keep &= steps < T                      # t just below max_time may round up to T
    return steps, keep


def check_binning(T, max_time):
    """Validate the binning parameters (``T`` steps over ``max_time`` seconds)."""
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise ValueError(f"T: expected an integer >= 1 (time steps), got {T!r}")
    if isinstance(max_time, bool) or not isinstance(max_time, (int, float, np.floating)) \
            or not (np.isfinite(max_time) and max_time > 0):
        raise ValueError(f"max_time: expected a number of seconds > 0, got {max_time!r}")


class EventFrames:
    """``(n, T, N)`` spike counts of ``n`` samples, stored as events.

    ``offsets`` (``n + 1``) delimit each sample's events in ``steps`` and
    ``units``.  ``x[i]`` is a ``(T, N)`` array, ``x[idx]`` (a slice, a list or
    an integer array) a ``(len(idx), T, N)`` array, both ``uint8``: counts
    capped at 255, or 0/1 when ``binary``.  ``np.asarray(x)`` densifies all.
    """

    def __init__(self, offsets, steps, units, T, N, binary=False):
        self.T, self.N, self.binary = int(T), int(N), bool(binary)
        self.offsets = np.asarray(offsets, np.int64)
        # the narrowest integer types that hold them: SHD's events take 4 bytes
        self.steps = np.asarray(steps).astype(np.int16 if self.T < 2 ** 15 else np.int32,
                                              copy=False)
        self.units = np.asarray(units).astype(np.uint16 if self.N <= 2 ** 16 else np.int32,
                                              copy=False)
        if self.offsets.ndim != 1 or len(self.offsets) < 1 or self.offsets[0] != 0 \
                or self.offsets[-1] != len(self.steps) or np.any(np.diff(self.offsets) < 0):
            raise ValueError("offsets: expected 0 = offsets[0] <= ... <= offsets[-1] = "
                             "number of events")
        if len(self.units) != len(self.steps):
            raise ValueError(f"units: expected {len(self.steps)} (one per step), "
                             f"got {len(self.units)}")
        if len(steps) and (np.min(steps) < 0 or np.max(steps) >= self.T
                           or np.min(units) < 0 or np.max(units) >= self.N):
            raise ValueError(f"events: steps must lie in [0, {self.T}) and units in [0, {self.N})")

    dtype = np.dtype(np.uint8)
    ndim = 3

    @property
    def shape(self):
        return (len(self.offsets) - 1, self.T, self.N)

    def __len__(self):
        return len(self.offsets) - 1

    def n_events(self):
        """Events per sample (after binning: those inside the window)."""
        return np.diff(self.offsets)

    def __getitem__(self, idx):
        n = len(self)
        if isinstance(idx, (int, np.integer)):
            i = int(idx) + n if idx < 0 else int(idx)
            if not 0 <= i < n:
                raise IndexError(f"index {idx} out of range for {n} samples")
            return self._dense(np.array([i]))[0]
        if isinstance(idx, slice):
            ids = np.arange(n)[idx]
        else:
            ids = np.asarray(idx)
            if ids.dtype == bool:
                if ids.shape != (n,):
                    raise IndexError(f"boolean index: expected shape ({n},), got {ids.shape}")
                ids = np.nonzero(ids)[0]
            if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
                raise IndexError("EventFrames: index with an integer, a slice, or a 1-d "
                                 "integer or boolean array")
            ids = np.where(ids < 0, ids + n, ids).astype(np.int64)
            if ids.size and (ids.min() < 0 or ids.max() >= n):
                raise IndexError(f"index out of range for {n} samples")
        return self._dense(ids)

    def _dense(self, ids):
        T, N = self.T, self.N
        lo, hi = self.offsets[ids], self.offsets[ids + 1]
        counts = hi - lo
        sel = np.repeat(hi - np.cumsum(counts), counts) + np.arange(counts.sum())
        row = np.repeat(np.arange(len(ids), dtype=np.int64), counts)
        flat = (row * T + self.steps[sel]) * N + self.units[sel].astype(np.int64)
        out = np.bincount(flat, minlength=len(ids) * T * N)
        out = (out > 0) if self.binary else np.minimum(out, 255)
        return out.astype(np.uint8).reshape(len(ids), T, N)

    def __array__(self, dtype=None, copy=None):
        out = self._dense(np.arange(len(self)))
        return out if dtype is None else out.astype(dtype)

    def __repr__(self):
        return (f"EventFrames(n={len(self)}, T={self.T}, N={self.N}, events={len(self.steps)}, "
                f"binary={self.binary})")
