"""Randman: spike-timing classification on smooth random manifolds (Zenke &
Vogels 2021, "The remarkable robustness of surrogate gradient learning for
instilling complex function in spiking neural networks", Neural Computation
33(4):899-925, doi:10.1162/neco_a_01367), generated.

A random manifold maps intrinsic coordinates ``x`` in ``[0, 1)^D``
(``D = dim_manifold``) to ``nb_units`` dimensions; coordinate ``j`` of the
embedding is a product over the ``D`` intrinsic axes of smooth random 1-d
functions

    f(x) = sum_{k=0}^{K-1}  a_k s_k sin(2 pi (k x b_k + c_k)),
    s_k = 1 / (|k + 1 - beta|^alpha + 1),    K = min(ceil(prec^(-1/alpha)), max_f_cutoff)

with ``a_k, b_k, c_k`` uniform in [0, 1) (``a_0 = 0`` unless ``use_bias``):
amplitudes fall off as a power law of the frequency, steeper (smoother
manifolds) for larger ``alpha``.  Each class is its own manifold; a sample is
a point ``x`` drawn uniformly, and unit ``j`` fires at a time given by the
``j``-th embedding coordinate, min-max standardised over the class's samples
and scaled to ``[0, nb_steps * step_frac)``.  With ``nb_spikes > 1`` each
unit fires once on each of ``nb_spikes`` independent manifolds of the class.
Every unit fires exactly ``nb_spikes`` times in every sample, so spike counts
carry no information: the class is in the relative timing.

Reference code: github.com/fzenke/randman, ``randman/torch_randman.py`` (the
default backend) and ``make_spiking_dataset`` of the notebook "Spiking
dataset generation example"; parameter names follow them.  This is an
independent NumPy implementation.  Deviations: the random streams are
NumPy's ``default_rng(seed)`` (the reference seeds the global torch and
NumPy generators), so the numbers differ while the distribution is the same;
the spectrum is the torch version's ``1 / (|k + 1 - beta|^alpha + 1)`` (the
older ``numpy_randman.py`` uses ``1 / (k + 1)^alpha``); the continuous spike
times are binned into steps ``floor(t)`` to give spike trains
``(n, nb_steps, nb_units)``.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .dataset import Dataset

__all__ = ["f_cutoff", "spectrum", "manifold_params", "eval_manifold", "make_spiking_dataset",
           "spike_trains", "load", "Samples"]

_CHUNK = 1 << 22            # sine evaluations per block (32 MiB of float64)


def f_cutoff(alpha, prec=1e-3, max_f_cutoff=1000):
    """Number of frequencies K: amplitudes below ``prec`` are cut."""
    return int(min(math.ceil(prec ** (-1.0 / alpha)), max_f_cutoff))


def spectrum(K, alpha, beta=0.0):
    """Amplitude factors ``s_k = 1 / (|k + 1 - beta|^alpha + 1)``, k = 0..K-1."""
    r = np.arange(K, dtype=np.float64) + 1.0
    return 1.0 / (np.abs(r - beta) ** alpha + 1.0)


def manifold_params(rng, nb_units, dim_manifold, alpha=2.0, prec=1e-3, max_f_cutoff=1000,
                    use_bias=False):
    """Random parameters ``(nb_units, dim_manifold, 3, K)``: amplitude, frequency
    scale and phase of each term, uniform in [0, 1); the constant term's
    amplitude is 0 unless ``use_bias``."""
    p = rng.random((nb_units, dim_manifold, 3, f_cutoff(alpha, prec, max_f_cutoff)))
    if not use_bias:
        p[:, :, 0, 0] = 0.0
    return p


def eval_manifold(params, x, alpha=2.0, beta=0.0):
    """Points of the manifold ``params`` at intrinsic coordinates ``x``
    ``(n, dim_manifold)`` in [0, 1): an ``(n, nb_units)`` array."""
    x = np.atleast_2d(np.asarray(x, np.float64))
    U, D, _, K = params.shape
    if x.shape[1] != D:
        raise ValueError(f"x: expected shape (n, {D}), got {x.shape}")
    s = spectrum(K, alpha, beta)
    amp = params[:, :, 0, :] * s                       # (U, D, K)
    freq = params[:, :, 1, :] * np.arange(K)           # k b_k
    phase = params[:, :, 2, :]
    out = np.ones((len(x), U))
    step = max(1, _CHUNK // (U * K))
    for d in range(D):
        for i in range(0, len(x), step):
            xi = x[i:i + step, d, None, None]           # (m, 1, 1)
            waves = np.sin(2.0 * np.pi * (xi * freq[None, :, d] + phase[None, :, d]))
            out[i:i + step] *= np.einsum("muk,uk->mu", waves, amp[:, d])
    return out


class Samples(NamedTuple):
    times: np.ndarray       # (n, nb_spikes, nb_units) spike times in [0, nb_steps * step_frac)
    labels: np.ndarray      # (n,) int64 class
    coords: np.ndarray      # (n, dim_manifold) intrinsic coordinates (regression targets)


def _check_int(name, v, lo):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise ValueError(f"{name}: expected an integer >= {lo}, got {v!r}")


def make_spiking_dataset(nb_classes=10, nb_units=100, nb_steps=100, step_frac=1.0,
                         dim_manifold=2, nb_spikes=1, nb_samples=1000, alpha=2.0, beta=0.0,
                         prec=1e-3, max_f_cutoff=1000, use_bias=False, shuffle=True, seed=0):
    """The spiking Randman classification data set as continuous spike times.

    ``nb_samples`` per class.  The class manifolds depend on ``seed`` and the
    shape parameters only (not on ``nb_samples``): the manifolds, the sample
    coordinates and the shuffle draw from three independent streams of
    ``numpy.random.SeedSequence(seed)``.  Returns :class:`Samples`."""
    for name, v, lo in (("nb_classes", nb_classes, 1), ("nb_units", nb_units, 1),
                        ("nb_steps", nb_steps, 1), ("dim_manifold", dim_manifold, 1),
                        ("nb_spikes", nb_spikes, 1), ("nb_samples", nb_samples, 2),
                        ("max_f_cutoff", max_f_cutoff, 1)):
        _check_int(name, v, lo)
    if not (0 < step_frac <= 1):
        raise ValueError(f"step_frac: expected a number in (0, 1], got {step_frac!r}")
    if not (np.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha: expected a number > 0, got {alpha!r}")
    if not (0 < prec < 1):
        raise ValueError(f"prec: expected a number in (0, 1), got {prec!r}")
    man_ss, coord_ss, shuf_ss = np.random.SeedSequence(seed).spawn(3)
    man_rng, coord_rng = np.random.default_rng(man_ss), np.random.default_rng(coord_ss)
    times, labels, coords = [], [], []
    for k in range(nb_classes):
        mans = [manifold_params(man_rng, nb_units, dim_manifold, alpha, prec, max_f_cutoff,
                                use_bias) for _ in range(nb_spikes)]
        x = coord_rng.random((nb_samples, dim_manifold))
        t = np.stack([_standardize(eval_manifold(p, x, alpha, beta)) for p in mans], axis=1)
        times.append(t * (nb_steps * step_frac))
        labels.append(np.full(nb_samples, k, np.int64))
        coords.append(x)
    times, labels, coords = (np.concatenate(a) for a in (times, labels, coords))
    if shuffle:
        order = np.random.default_rng(shuf_ss).permutation(len(labels))
        times, labels, coords = times[order], labels[order], coords[order]
    return Samples(times, labels, coords)


def _standardize(y, eps=1e-7):
    """Min-max over the samples (axis 0) to [0, 1), as the reference."""
    lo, hi = y.min(axis=0), y.max(axis=0)
    return (y - lo) / (hi - lo + eps)


def spike_trains(times, nb_steps):
    """Bin spike times ``(n, nb_spikes, nb_units)`` into counts ``(n, nb_steps,
    nb_units)`` (uint8; step ``floor(t)``)."""
    n, S, U = times.shape
    steps = np.minimum(np.floor(times).astype(np.int64), nb_steps - 1)
    if S > 255:
        raise ValueError(f"nb_spikes: at most 255 per unit fit the uint8 counts, got {S}")
    out = np.zeros((n, nb_steps, U), np.uint8)
    rows, cols = np.arange(n)[:, None], np.arange(U)[None, :]
    for s in range(S):                 # one spike per (sample, unit) each: no repeated index
        out[rows, steps[:, s, :], cols] += 1
    return out


def load(seed=0, T=100, test_fraction=0.2, nb_classes=10, nb_units=100, step_frac=1.0,
         dim_manifold=2, nb_spikes=1, nb_samples=1000, alpha=2.0, beta=0.0, prec=1e-3,
         max_f_cutoff=1000, use_bias=False):
    """The Randman :class:`Dataset`: spike trains ``(n, T, nb_units)`` (uint8
    counts), ``nb_samples`` per class split into train and test per class
    (``test_fraction`` of each class to the test set, both shuffled).
    ``T`` is the reference's ``nb_steps``.  Defaults: the reference's
    ``make_spiking_dataset`` (10 classes, 100 units, 100 steps, 2-d manifolds,
    one spike per unit, 1000 samples per class, alpha 2)."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction: expected a number in (0, 1), got {test_fraction!r}")
    s = make_spiking_dataset(nb_classes, nb_units, T, step_frac, dim_manifold, nb_spikes,
                             nb_samples, alpha, beta, prec, max_f_cutoff, use_bias,
                             shuffle=False, seed=seed)
    n_test = int(round(test_fraction * nb_samples))
    if not 0 < n_test < nb_samples:
        raise ValueError(f"test_fraction: {test_fraction} of {nb_samples} samples per class "
                         f"leaves an empty split")
    in_test = (np.arange(len(s.labels)) % nb_samples) >= nb_samples - n_test
    shuf = np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[2])
    parts = []
    for mask in (~in_test, in_test):
        idx = shuf.permutation(np.nonzero(mask)[0])
        parts += [spike_trains(s.times[idx], T), s.labels[idx]]
    return Dataset("randman", parts[0], parts[1], parts[2], parts[3], nb_classes)
