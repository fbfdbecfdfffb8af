"""The Spiking Heidelberg Digits (SHD) and Spiking Speech Commands (SSC) data
sets (Cramer, Stradmann, Schemmel & Zenke 2020, "The Heidelberg spiking data
sets for the systematic evaluation of spiking neural networks", IEEE TNNLS
33(7):2744-2757, doi:10.1109/TNNLS.2020.3044364), read from the user's files.

Nothing is downloaded: put ``shd_train.h5`` and ``shd_test.h5`` (or
``ssc_train.h5`` and ``ssc_test.h5``; SSC's ``ssc_valid.h5`` is not used)
in a folder and pass it as ``data_dir``.  The files are published at
https://zenkelab.org/datasets/ (gzipped: unpack them with ``gunzip``).

Format (one HDF5 file per split): ``spikes/times`` a variable-length array
per sample of spike times in seconds, ``spikes/units`` the matching
variable-length array of input channels (uint16, 0..699), ``labels`` one
uint16 per sample (20 classes for SHD, 35 for SSC); ``extra/...`` (speaker,
keys, meta data) is not read.

Samples are binned into ``T`` steps over ``[0, max_time)`` seconds (1 s by
default, the usual SHD practice; SHD digits last up to about 1.4 s, so later
spikes are dropped): step ``floor(t / max_time * T)``.  ``x`` holds spike
counts per (step, unit), capped at 255, or 0/1 with ``binary=True``, in an
:class:`~lifgrad.data.events.EventFrames` (events stored, dense uint8
``(B, T, 700)`` per batch: the whole of SSC at T=100 would take 5.3 GB).
"""
from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

from .dataset import Dataset
from .events import EventFrames, bin_events, check_binning

__all__ = ["read_file", "load", "Events", "FILES", "N_UNITS", "N_CLASSES", "URL"]

FILES = {"shd": ("shd_train.h5", "shd_test.h5"), "ssc": ("ssc_train.h5", "ssc_test.h5")}
N_UNITS = 700
N_CLASSES = {"shd": 20, "ssc": 35}
URL = "https://zenkelab.org/datasets/"
_KEYS = ("spikes/times", "spikes/units", "labels")
_BLOCK = 1 << 24                # events binned at a time


class Events(NamedTuple):
    offsets: np.ndarray     # (n + 1,) sample i's events are [offsets[i], offsets[i + 1])
    times: np.ndarray       # (E,) seconds, the file's float type (SHD: float16)
    units: np.ndarray       # (E,) the file's integer type (uint16)
    labels: np.ndarray      # (n,) int64


def _sample_of(offsets, event):
    return int(np.searchsorted(offsets, event, side="right") - 1)


def read_file(path, n_units=N_UNITS):
    """Read one SHD/SSC HDF5 file into :class:`Events`, checking it: a
    ``ValueError`` names the file and what is wrong (not HDF5, a missing
    dataset, times and units of different lengths, a unit index outside
    ``[0, n_units)``, a negative or non-finite time, a label count that does
    not match the samples)."""
    import h5py
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"{path}: not a readable HDF5 file, truncated or corrupt ({e})") from None
    with f:
        missing = []
        for k in _KEYS:
            try:
                ok = isinstance(f.get(k), h5py.Dataset)
            except (KeyError, TypeError, ValueError, OSError):
                ok = False
            if not ok:
                missing.append(k)
        if missing:
            raise ValueError(f"{path}: missing dataset(s) {', '.join(missing)} (an SHD/SSC file "
                             f"holds spikes/times, spikes/units and labels)")
        try:
            times, units, labels = (f[k][()] for k in _KEYS)
        except (OSError, KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path}: cannot read the data, the file may be truncated or "
                             f"corrupt ({e})") from None
    for k, a in (("spikes/times", times), ("spikes/units", units)):
        if a.ndim != 1 or a.dtype != object:
            raise ValueError(f"{path}: {k}: expected a 1-d variable-length array (one array "
                             f"per sample), got shape {a.shape} of {a.dtype}")
    if len(units) != len(times):
        raise ValueError(f"{path}: spikes/times has {len(times)} samples but spikes/units "
                         f"has {len(units)}")
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(times):
        raise ValueError(f"{path}: labels: expected one label per sample ({len(times)}), got "
                         f"shape {labels.shape}")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{path}: labels: expected integers, got {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise ValueError(f"{path}: labels: negative label {labels.min()}")
    nt = np.array([np.size(a) for a in times], np.int64)
    nu = np.array([np.size(a) for a in units], np.int64)
    bad = np.nonzero(nt != nu)[0]
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{path}: sample {i}: {nt[i]} spike times but {nu[i]} units "
                         f"({bad.size} sample(s) with times and units of different lengths)")
    offsets = np.concatenate([[0], np.cumsum(nt)])
    # kept in the file's types (SHD: 2 + 2 bytes an event; SSC has ~10^8 events)
    t = np.concatenate([np.ravel(a) for a in times]) if len(times) else np.zeros(0)
    u = np.concatenate([np.ravel(a) for a in units]) if len(units) else np.zeros(0, np.int64)
    if t.size and not np.issubdtype(t.dtype, np.floating):
        t = t.astype(np.float64)
    if u.size and not np.issubdtype(u.dtype, np.integer):
        raise ValueError(f"{path}: spikes/units: expected integers, got {u.dtype}")
    for what, wrong in (("non-finite spike time", ~np.isfinite(t)),
                        ("negative spike time", t < 0),
                        (f"unit index outside [0, {n_units})", (u < 0) | (u >= n_units))):
        hits = np.nonzero(wrong)[0]
        if hits.size:
            e = int(hits[0])
            val = t[e] if "time" in what else u[e]
            raise ValueError(f"{path}: sample {_sample_of(offsets, e)}: {what} ({val}); "
                             f"{hits.size} such event(s) in the file")
    return Events(offsets, t, u, labels.astype(np.int64))


def missing_message(name, folder, missing):
    where = folder if folder else "(no folder given)"
    train, test = FILES[name]
    title = {"shd": "Spiking Heidelberg Digits", "ssc": "Spiking Speech Commands"}[name]
    msg = f"{name}: data not found in {where}; missing {', '.join(missing)}"
    gz = [m + ".gz" for m in missing if folder and os.path.isfile(os.path.join(folder, m + ".gz"))]
    if gz:
        msg += f" (found {', '.join(gz)}: unpack with gunzip)"
    return (msg + f". Put the {title} files {train} and {test} in a folder and pass it with "
            f"--data-dir / data_dir=. The data set is published at {URL} (Cramer et al. 2020, "
            f"IEEE TNNLS). Nothing is downloaded.")


def frames(events, T, max_time, binary=False, n_units=N_UNITS):
    """Bin :class:`Events` into :class:`EventFrames` ``(n, T, n_units)``."""
    steps, units, keep = [], [], []
    for i in range(0, len(events.times), _BLOCK):           # bounded float64 temporaries
        s, k = bin_events(events.times[i:i + _BLOCK], T, max_time)
        steps.append(s[k].astype(np.int16 if T < 2 ** 15 else np.int32))
        units.append(events.units[i:i + _BLOCK][k])
        keep.append(k)
    cat = (lambda a, dt: np.concatenate(a) if a else np.zeros(0, dt))
    keep = cat(keep, bool)
    offsets = np.concatenate([[0], np.cumsum(keep)])[events.offsets]     # kept before each
    return EventFrames(offsets, cat(steps, np.int32), cat(units, np.int64), T, n_units, binary)


def load(data_dir, name="shd", T=100, max_time=1.0, binary=False):
    """The SHD (``name="shd"``) or SSC (``"ssc"``) :class:`Dataset` from the
    files in ``data_dir``: ``x`` ``(n, T, 700)`` spike counts (see the module
    docstring), labels int64."""
    if name not in FILES:
        raise ValueError(f"name: expected 'shd' or 'ssc', got {name!r}")
    check_binning(T, max_time)
    paths = [os.path.join(data_dir, f) if data_dir else f for f in FILES[name]]
    missing = [f for f, p in zip(FILES[name], paths) if not (data_dir and os.path.isfile(p))]
    if missing:
        raise FileNotFoundError(missing_message(name, data_dir, missing))
    out = []
    for p in paths:
        ev = read_file(p)
        if ev.labels.size and ev.labels.max() >= N_CLASSES[name]:
            raise ValueError(f"{p}: label {ev.labels.max()} outside the {N_CLASSES[name]} "
                             f"classes of {name}")
        out += [frames(ev, T, max_time, binary), ev.labels]
    return Dataset(name, out[0], out[1], out[2], out[3], N_CLASSES[name])
