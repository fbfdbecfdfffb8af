"""N-MNIST (Orchard, Jayawant, Cohen & Thakor 2015, "Converting static image
datasets to spiking neuromorphic datasets using saccades", Frontiers in
Neuroscience 9:437, doi:10.3389/fnins.2015.00437), read from the user's files.

Nothing is downloaded: unzip N-MNIST's ``Train.zip`` and ``Test.zip`` into a
folder so that it holds ``Train/<digit>/*.bin`` and ``Test/<digit>/*.bin``,
and pass it as ``data_dir``.  The data set is published at
https://www.garrickorchard.com/datasets/n-mnist.

Format: one ``.bin`` file per sample, a sequence of 40-bit events, 5 bytes
each: byte 0 the x address, byte 1 the y address (0..33 on the 34 x 34
sensor), then 24 big-endian bits whose top bit is the polarity (1 = ON) and
whose lower 23 bits are the time stamp in microseconds.  An event with
y = 240 marks a time-stamp overflow: 2^13 us are added to every later time
stamp and the marker is not an event (as in Orchard's reference reader,
github.com/gorchard/event-Python ``eventvision.py``, and tonic's
``read_mnist_file``).

Samples are binned into ``T`` steps over ``[0, max_time)`` seconds (0.3 s by
default: the three 100 ms saccades of the recording; events after it are
dropped), step ``floor(t / max_time * T)``, into ``N = 2 * 34 * 34 = 2312``
units ordered (polarity, y, x): unit ``p * 1156 + y * 34 + x`` with p = 0
for OFF and 1 for ON.  Counts are capped at 255 (or 0/1 with ``binary``),
stored as events in an :class:`~lifgrad.data.events.EventFrames` (all of
N-MNIST densified at T=30 would take 4.9 GB).
"""
from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

from .dataset import Dataset
from .events import EventFrames, bin_events, check_binning

__all__ = ["read_file", "load", "Events", "SIZE", "N_UNITS", "URL"]

SIZE = 34
N_UNITS = 2 * SIZE * SIZE
URL = "https://www.garrickorchard.com/datasets/n-mnist"
_OVERFLOW_Y = 240
_SPLITS = ("Train", "Test")


class Events(NamedTuple):
    x: np.ndarray           # (E,) int64 column 0..33
    y: np.ndarray           # (E,) int64 row 0..33
    p: np.ndarray           # (E,) int64 polarity 0 (OFF) or 1 (ON)
    t: np.ndarray           # (E,) int64 microseconds


def read_file(path):
    """The events of one N-MNIST ``.bin`` file; a ``ValueError`` names the file
    and the problem (a length that is not a multiple of 5: truncated; an
    address outside the 34 x 34 sensor)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % 5:
        raise ValueError(f"{path}: truncated or corrupt: {raw.size} bytes is not a multiple of "
                         f"5 (N-MNIST events are 5 bytes each)")
    ev = raw.reshape(-1, 5).astype(np.int64)
    x, y = ev[:, 0], ev[:, 1]
    p = ev[:, 2] >> 7
    t = ((ev[:, 2] & 0x7F) << 16) | (ev[:, 3] << 8) | ev[:, 4]
    over = y == _OVERFLOW_Y
    if over.any():
        t = t + (np.cumsum(over) << 13)        # each marker shifts itself and all later ones
    keep = ~over
    x, y, p, t = x[keep], y[keep], p[keep], t[keep]
    for axis, a in (("x", x), ("y", y)):
        bad = np.nonzero(a >= SIZE)[0]
        if bad.size:
            e = int(np.nonzero(keep)[0][bad[0]])
            raise ValueError(f"{path}: event {e} (byte {5 * e}): {axis} address {a[bad[0]]} "
                             f"outside the {SIZE} x {SIZE} sensor; {bad.size} such event(s) "
                             f"(corrupt file, or not N-MNIST)")
    return Events(x, y, p, t)


def missing_message(folder, problem):
    where = folder if folder else "(no folder given)"
    return (f"nmnist: data not found in {where}; {problem}. Unzip N-MNIST's Train.zip and "
            f"Test.zip into a folder (it then holds Train/<digit>/*.bin and Test/<digit>/*.bin) "
            f"and pass it with --data-dir / data_dir=. N-MNIST is published at {URL} "
            f"(Orchard et al. 2015). Nothing is downloaded.")


def _split_files(folder, split, max_per_class):
    root = os.path.join(folder, split)
    digits = sorted(d for d in os.listdir(root)
                    if d.isdigit() and os.path.isdir(os.path.join(root, d)))
    if not digits:
        raise FileNotFoundError(missing_message(folder, f"{root} has no digit folders 0-9"))
    files, labels = [], []
    for d in digits:
        names = sorted(f for f in os.listdir(os.path.join(root, d)) if f.endswith(".bin"))
        if max_per_class is not None:
            names = names[:max_per_class]
        files += [os.path.join(root, d, f) for f in names]
        labels += [int(d)] * len(names)
    if not files:
        raise FileNotFoundError(missing_message(folder, f"no .bin files under {root}"))
    return files, np.array(labels, np.int64)


def frames(files, T, max_time, binary=False):
    """Read and bin ``files`` into :class:`EventFrames` ``(n, T, 2312)``."""
    steps, units, counts = [], [], []
    step_type = np.int16 if T < 2 ** 15 else np.int32          # 4 bytes an event kept
    for f in files:
        ev = read_file(f)
        s, keep = bin_events(ev.t * 1e-6, T, max_time)
        steps.append(s[keep].astype(step_type))
        units.append((((ev.p * SIZE + ev.y) * SIZE + ev.x)[keep]).astype(np.uint16))
        counts.append(int(keep.sum()))
    offsets = np.concatenate([[0], np.cumsum(counts)])
    cat = (lambda a, dt: np.concatenate(a) if a else np.zeros(0, dt))
    return EventFrames(offsets, cat(steps, step_type), cat(units, np.uint16), T, N_UNITS, binary)


def load(data_dir, T=30, max_time=0.3, binary=False, max_per_class=None):
    """The N-MNIST :class:`Dataset` from ``data_dir`` (``Train/`` and ``Test/``):
    ``x`` ``(n, T, 2312)`` spike counts (see the module docstring), labels the
    digit folder names; ``max_per_class`` keeps the first files (sorted) of
    each digit."""
    check_binning(T, max_time)
    if max_per_class is not None and (isinstance(max_per_class, bool) or not isinstance(
            max_per_class, (int, np.integer)) or max_per_class < 1):
        raise ValueError(f"max_per_class: expected an integer >= 1 or None, got "
                         f"{max_per_class!r}")
    if not data_dir or not os.path.isdir(data_dir):
        raise FileNotFoundError(missing_message(data_dir, "no such folder"))
    missing = [s + "/" for s in _SPLITS if not os.path.isdir(os.path.join(data_dir, s))]
    if missing:
        raise FileNotFoundError(missing_message(data_dir, f"missing {', '.join(missing)}"))
    out = []
    for split in _SPLITS:
        files, labels = _split_files(data_dir, split, max_per_class)
        out += [frames(files, T, max_time, binary), labels]
    return Dataset("nmnist", out[0], out[1], out[2], out[3], 10)
