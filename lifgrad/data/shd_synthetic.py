"""A synthetic data set in the exact file format of the Spiking Heidelberg
Digits (SHD; Cramer et al. 2020, see :mod:`.shd`), for running the SHD recipe
where the real files are not at hand.

**It is synthetic and is not a stand-in for SHD's difficulty**: accuracies on
it say that a pipeline runs and learns temporal structure, nothing about
accuracy on spoken digits.  Train on the real files (``shd_train.h5``,
``shd_test.h5`` from https://zenkelab.org/datasets/) for numbers that compare
with the literature.

What it writes: ``shd_train.h5`` and ``shd_test.h5`` in SHD's HDF5 layout,
``spikes/times`` (a variable-length float16 array of spike times in seconds
per sample), ``spikes/units`` (variable-length uint16 channel indices,
0..699), ``labels`` (uint16, 20 classes), and ``extra/speaker`` (uint16, the
sample's "speaker": its channel shift and rate draw) and ``extra/keys`` (the
class names), so :func:`lifgrad.data.shd.load` reads it as it reads SHD.

The task.  Six "phonemes" are drawn once (``template_seed``), each two
"formant" bands on the 700 channels that sweep from one channel to another
over the phoneme's duration (a Gaussian band, ``width`` channels wide).  A
class is an ordered sequence of three distinct phonemes; the 20 classes are 5
sets of three phonemes, each set in 4 of its 6 orders.  Classes of the same
set produce the same expected spike count on every channel, so a classifier
of spike counts summed over time can at best tell the set (25 % accuracy):
the class is in the order, and a network needs memory across phonemes to
tell it.  The phonemes are separated by silent gaps (background only, 120 to
200 ms by default), longer than the membrane memory of the recipe's cells,
so that memory has to bridge them.  Per sample: an onset delay, random
phoneme durations (time warping) and gaps, a global channel shift and rate
factor (the "speaker", one of 10 per split), Gaussian jitter of every spike
time, and background noise spikes on all channels.  Samples last at most
``max_duration`` seconds (default 0.95 s, inside the usual 1 s binning
window).

``python -m lifgrad.data.shd_synthetic FOLDER`` writes the two files.
"""
from __future__ import annotations

import itertools
import os
from typing import NamedTuple

import numpy as np

from .shd import FILES, N_UNITS

__all__ = ["Template", "make_template", "generate", "write_file", "make", "N_CLASSES",
           "N_PHONEMES"]

N_CLASSES = 20
N_PHONEMES = 6
_SETS, _ORDERS = 5, 4           # 5 sets of 3 phonemes x 4 orders = 20 classes
_ONSET = (0.02, 0.08)           # seconds before the first phoneme
_SPEECH = (0.30, 0.40)          # seconds of the three phonemes together


class Template(NamedTuple):
    bands: np.ndarray       # (N_PHONEMES, 2 bands, 2): start and end channel of each sweep
    classes: np.ndarray     # (N_CLASSES, 3): the phoneme sequence of each class
    sets: np.ndarray        # (N_CLASSES,): which phoneme set a class uses (0..4)


def make_template(template_seed=0):
    """The phonemes and the 20 class sequences (fixed by ``template_seed``)."""
    rng = np.random.default_rng([template_seed, 7919])
    lo, hi = 60, N_UNITS - 60
    bands = np.empty((N_PHONEMES, 2, 2))
    for p in range(N_PHONEMES):
        for b in range(2):                       # a low and a high formant
            half = (lo + (hi - lo) * b / 2, lo + (hi - lo) * (b + 1) / 2)
            start = rng.uniform(*half)
            bands[p, b] = start, np.clip(start + rng.uniform(-120, 120), lo, hi)
    triples = list(itertools.combinations(range(N_PHONEMES), 3))
    chosen = rng.choice(len(triples), _SETS, replace=False)
    classes, sets = [], []
    for s, idx in enumerate(chosen):
        orders = list(itertools.permutations(triples[idx]))
        for j in rng.choice(len(orders), _ORDERS, replace=False):
            classes.append(orders[j])
            sets.append(s)
    return Template(bands, np.array(classes, np.int64), np.array(sets, np.int64))


def _check_count(name, v, lo):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise ValueError(f"{name}: expected an integer >= {lo}, got {v!r}")


def generate(n, seed=0, template=None, rate=900.0, width=8.0, shift=20.0, jitter=0.004,
             noise_rate=0.5, gap=(0.12, 0.20), max_duration=0.95):
    """``n`` samples (``n`` a multiple of 20: the classes are balanced),
    shuffled.  Returns ``(times, units, labels, speakers)``: lists of float64
    spike times (seconds, sorted) and int64 channels per sample, and int64
    arrays of labels and speaker ids.

    rate:        spikes per second of one formant band (times the speaker's factor);
    width:       band width, the standard deviation in channels;
    shift:       the speaker's channel shift is uniform in [-shift, shift];
    jitter:      standard deviation of the spike-time jitter, seconds;
    noise_rate:  background spikes per second on every channel;
    gap:         (min, max) seconds of silence (background only) between phonemes;
    max_duration: no spike at or after it (seconds)."""
    _check_count("n", n, 0)
    if n % N_CLASSES:
        raise ValueError(f"n: expected a multiple of {N_CLASSES} (balanced classes), got {n}")
    for name, v in (("rate", rate), ("width", width), ("shift", shift), ("jitter", jitter),
                    ("noise_rate", noise_rate)):
        if not (np.isfinite(v) and v >= 0):
            raise ValueError(f"{name}: expected a finite number >= 0, got {v!r}")
    gap = tuple(gap)
    if len(gap) != 2 or not (0 <= gap[0] <= gap[1] < 1):
        raise ValueError(f"gap: expected (min, max) seconds with 0 <= min <= max < 1, got {gap!r}")
    need = _ONSET[1] + _SPEECH[1] + 2 * gap[1]
    if not (np.isfinite(max_duration) and max_duration >= need):
        raise ValueError(f"max_duration: expected seconds >= {need:.2f} (onset, phonemes and "
                         f"gaps), got {max_duration!r}")
    tpl = make_template() if template is None else template
    rng = np.random.default_rng([seed, 104729])
    labels = rng.permutation(np.repeat(np.arange(N_CLASSES), n // N_CLASSES))
    speakers = rng.integers(0, 10, n)
    sp_shift = np.random.default_rng([seed, 1]).uniform(-shift, shift, 10)
    sp_gain = np.exp(np.random.default_rng([seed, 2]).normal(0.0, 0.2, 10))
    times, units = [], []
    for i in range(n):
        t0 = rng.uniform(*_ONSET)
        w = rng.uniform(0.7, 1.3, 3)                    # time warping of the phonemes
        durs = rng.uniform(*_SPEECH) * w / w.sum()
        gaps = rng.uniform(gap[0], gap[1], 2)
        ts, us = [], []
        for k, p in enumerate(tpl.classes[labels[i]]):
            dur = durs[k]
            for c0, c1 in tpl.bands[p]:
                m = rng.poisson(rate * sp_gain[speakers[i]] * dur)
                frac = rng.random(m)
                centre = c0 + (c1 - c0) * frac + sp_shift[speakers[i]]
                ts.append(t0 + dur * frac)
                us.append(np.rint(centre + width * rng.standard_normal(m)))
            t0 += dur + (gaps[k] if k < 2 else 0.0)
        t = np.concatenate(ts) + jitter * rng.standard_normal(sum(map(len, ts)))
        u = np.concatenate(us)
        m = rng.poisson(noise_rate * N_UNITS * max_duration)
        t = np.concatenate([t, rng.uniform(0.0, max_duration, m)])
        u = np.concatenate([u, rng.integers(0, N_UNITS, m)])
        keep = (u >= 0) & (u < N_UNITS) & (t >= 0) & (t < max_duration)
        order = np.argsort(t[keep], kind="stable")
        times.append(t[keep][order])
        units.append(u[keep][order].astype(np.int64))
    return times, units, labels.astype(np.int64), speakers.astype(np.int64)


def write_file(path, times, units, labels, speakers=None, template=None):
    """Write one split in SHD's HDF5 layout (float16 times, uint16 units and labels)."""
    import h5py
    n = len(labels)
    if len(times) != n or len(units) != n:
        raise ValueError(f"times, units, labels: expected {n} samples each, got "
                         f"{len(times)}, {len(units)}, {n}")
    tpl = make_template() if template is None else template
    t_obj = np.empty(n, object)
    u_obj = np.empty(n, object)
    for i in range(n):
        t_obj[i] = np.asarray(times[i], np.float16)
        u_obj[i] = np.asarray(units[i], np.uint16)
    tmp = os.fspath(path) + ".tmp"
    with h5py.File(tmp, "w") as f:
        f.create_dataset("spikes/times", data=t_obj, dtype=h5py.vlen_dtype(np.float16))
        f.create_dataset("spikes/units", data=u_obj, dtype=h5py.vlen_dtype(np.uint16))
        f.create_dataset("labels", data=np.asarray(labels, np.uint16))
        f.create_dataset("extra/speaker", data=np.asarray(
            speakers if speakers is not None else np.zeros(n), np.uint16))
        names = ["-".join(f"p{p}" for p in seq) for seq in tpl.classes]
        f.create_dataset("extra/keys", data=np.array(names, dtype=h5py.string_dtype()))
        f.attrs["synthetic"] = ("lifgrad.data.shd_synthetic: synthetic SHD-format data, not "
                                "SHD; see the module docstring")
    os.replace(tmp, path)
    return os.fspath(path)


def make(folder, n_train=4000, n_test=1000, seed=0, template_seed=0, **options):
    """Write ``shd_train.h5`` (``n_train`` samples, seed ``seed``) and
    ``shd_test.h5`` (``n_test``, an independent stream) into ``folder``;
    ``options`` go to :func:`generate`.  Returns the two paths."""
    os.makedirs(folder, exist_ok=True)
    tpl = make_template(template_seed)
    paths = []
    for name, n, s in zip(FILES["shd"], (n_train, n_test), (2 * seed, 2 * seed + 1)):
        times, units, labels, speakers = generate(n, seed=s, template=tpl, **options)
        paths.append(write_file(os.path.join(folder, name), times, units, labels, speakers,
                                tpl))
    return tuple(paths)


def _main(argv=None):
    import argparse
    p = argparse.ArgumentParser(prog="python -m lifgrad.data.shd_synthetic",
                                description="write a synthetic SHD-format data set "
                                            "(shd_train.h5, shd_test.h5); not SHD")
    p.add_argument("folder")
    p.add_argument("--n-train", type=int, default=4000)
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    for path in make(a.folder, a.n_train, a.n_test, a.seed):
        print(path)


if __name__ == "__main__":
    _main()
