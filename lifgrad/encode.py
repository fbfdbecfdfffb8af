"""Spike encoders: turn data in [0, 1] into network input over T steps.

``static`` returns the data itself ``(B, N)``: the network treats it as the
same current at every step and computes its first layer once (A21).  The
others return ``(T, B, N)`` arrays; ``events`` takes data that already are
spike trains ``(B, T, N)`` (the temporal data sets) and puts time first.  Random encoders take a
``numpy.random.Generator`` (seeded by the caller), so runs are reproducible.
"""
from __future__ import annotations

import numpy as np

__all__ = ["static", "poisson", "latency", "delta", "events", "ENCODERS", "get"]


def _data(x):
    x = np.asarray(x, np.float64)
    if x.ndim != 2:
        raise ValueError(f"x: expected shape (B, N), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x: contains NaN or Inf")
    return x


def _T(T):
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise ValueError(f"T: expected an integer >= 1, got {T!r}")
    return int(T)


def static(x, T=None, rng=None):
    """Direct current: the data itself, presented at every step (one product)."""
    return _data(x)


def poisson(x, T, rng, gain=1.0):
    """Bernoulli spikes with probability ``clip(gain * x, 0, 1)`` at each step
    (snnTorch ``spikegen.rate``)."""
    x, T = _data(x), _T(T)
    if rng is None or not hasattr(rng, "random"):
        raise ValueError(f"rng: poisson encoding needs a numpy Generator (seeded), got {rng!r}")
    if not np.isfinite(gain):
        raise ValueError(f"gain: expected a finite number, got {gain!r}")
    p = np.clip(gain * x, 0.0, 1.0)
    return (rng.random((T,) + x.shape) < p).astype(np.float32)


def latency(x, T, rng=None, tau=5.0, threshold=0.01, linear=False, normalize=True):
    """One spike per input at a time that decreases with intensity (snnTorch
    ``spikegen.latency``): log code ``t = tau ln(x / (x - threshold))``, linear
    code ``t = tau (1 - x)``; ``normalize`` stretches the codes to [0, T-1];
    inputs below ``threshold`` (log code) or beyond the window never spike."""
    x, T = _data(x), _T(T)
    if not (np.isfinite(tau) and tau > 0):
        raise ValueError(f"tau: expected a finite number > 0, got {tau!r}")
    if not (0 < threshold < 1):
        raise ValueError(f"threshold: expected a number in (0, 1), got {threshold!r}")
    if linear:
        t = tau * (1.0 - x)
        if normalize:
            t = (T - 1) * (1.0 - x)
    else:
        xc = np.clip(x, threshold + 1e-7, None)
        t = tau * np.log(xc / (xc - threshold))
        if normalize:
            tmax = tau * np.log((threshold + 1e-7) / 1e-7)
            t = t * (T - 1) / tmax
    steps = np.round(t).astype(np.int64)
    out = np.zeros((T,) + x.shape, np.float32)
    ok = (steps >= 0) & (steps <= T - 1)
    if not linear:
        ok &= x > threshold
    b, n = np.nonzero(ok)
    out[steps[b, n], b, n] = 1.0
    return out


def delta(x_seq, threshold=0.1, off_spike=False):
    """Spikes where a time series changes by at least ``threshold`` (snnTorch
    ``spikegen.delta``, first step compared with 0): +1 up, -1 down if
    ``off_spike``.  ``x_seq`` is ``(T, B, N)``."""
    x = np.asarray(x_seq, np.float64)
    if x.ndim != 3:
        raise ValueError(f"x_seq: expected shape (T, B, N), got {x.shape}")
    d = np.diff(x, axis=0, prepend=np.zeros_like(x[:1]))
    out = (d >= threshold).astype(np.float32)
    if off_spike:
        out -= (d <= -threshold).astype(np.float32)
    return out


def events(x, T=None, rng=None, dtype=np.float32):
    """Temporal data, already spikes per step: ``(B, T, N)`` to the network's
    time-first ``(T, B, N)``, as ``dtype``.  ``T``, when given, must be the
    data's number of steps."""
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"x: expected spike trains (B, T, N), got shape {x.shape}; static "
                         f"data (B, N) take an encoder: static, poisson or latency")
    if T is not None and x.shape[1] != T:
        raise ValueError(f"T: the data have {x.shape[1]} steps, the run has T={T} (T must "
                         f"equal the data's number of steps)")
    return np.ascontiguousarray(x.transpose(1, 0, 2), dtype=dtype)


ENCODERS = {"static": static, "poisson": poisson, "latency": latency, "events": events}


def get(name):
    try:
        return ENCODERS[name]
    except KeyError:
        raise ValueError(f"encoder: unknown name {name!r}; valid: {', '.join(ENCODERS)}") from None
