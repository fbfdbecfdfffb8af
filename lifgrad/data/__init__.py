"""Data sets (nothing is downloaded) and seeded batching.

Static data sets, ``x`` of shape ``(n, N)`` in [0, 1], turned into spikes
by an encoder (:mod:`lifgrad.encode`):

* ``digits``: scikit-learn's bundled 8x8 handwritten digits (the embedded
  default; :mod:`.digits`).
* ``fashion-mnist`` / ``mnist``: a folder of MNIST-format IDX files (:mod:`.idx`).
* ``yinyang``: the Yin-Yang data set, generated (:mod:`.yinyang`).

Temporal data sets, ``x`` of shape ``(n, T, N)``: spike counts per step, fed
to the network as they are (``encoder="events"`` in training):

* ``randman``: spike-timing classes on smooth random manifolds, generated
  (:mod:`.randman`).
* ``shd`` / ``ssc``: Spiking Heidelberg Digits / Spiking Speech Commands, read
  from the user's HDF5 files (:mod:`.shd`); :mod:`.shd_synthetic` writes a
  synthetic set in SHD's file format (not SHD) for the SHD recipe.
* ``nmnist``: N-MNIST, read from the user's ``.bin`` files (:mod:`.nmnist`).

:func:`load` takes the name and the loader's options; ``Dataset.temporal``
tells the two kinds apart.
"""
from __future__ import annotations

import inspect

from . import nmnist, randman, shd, yinyang
from .dataset import Dataset, batches
from .digits import load_digits
from .events import EventFrames
from .idx import DEFAULT_DIRS, load_idx_folder, read_idx

__all__ = ["Dataset", "load", "load_digits", "load_idx_folder", "read_idx", "batches",
           "DEFAULT_DIRS", "EventFrames", "NAMES", "TEMPORAL", "options"]

# name: (temporal, loader, the arguments load() fixes from (data_dir, seed))
_LOADERS = {
    "digits": (False, load_digits, lambda d, s: dict(seed=s)),
    "fashion-mnist": (False, load_idx_folder,
                      lambda d, s: dict(folder=d or DEFAULT_DIRS["fashion-mnist"],
                                        name="fashion-mnist")),
    "mnist": (False, load_idx_folder,
              lambda d, s: dict(folder=d or DEFAULT_DIRS["mnist"], name="mnist")),
    "yinyang": (False, yinyang.load, lambda d, s: dict(seed=s)),
    "randman": (True, randman.load, lambda d, s: dict(seed=s)),
    "shd": (True, shd.load, lambda d, s: dict(data_dir=d, name="shd")),
    "ssc": (True, shd.load, lambda d, s: dict(data_dir=d, name="ssc")),
    "nmnist": (True, nmnist.load, lambda d, s: dict(data_dir=d)),
}
NAMES = tuple(_LOADERS)
TEMPORAL = frozenset(k for k, (temporal, _, _) in _LOADERS.items() if temporal)


def _entry(name):
    try:
        return _LOADERS[name]
    except (KeyError, TypeError):
        raise ValueError(f"dataset: unknown name {name!r}; valid: {', '.join(NAMES)}") from None


def options(name):
    """The options :func:`load` accepts for data set ``name`` (with defaults)."""
    _, fn, fixed = _entry(name)
    taken = fixed(None, 0)
    return {k: p.default for k, p in inspect.signature(fn).parameters.items() if k not in taken}


def load(name="digits", data_dir=None, seed=0, **options_):
    """Load a data set by name (:data:`NAMES`).  ``seed`` drives the split
    (digits) or the generator (yinyang, randman); files are read as they are.
    Further keyword options go to the data set's loader (:func:`options`),
    e.g. ``load("shd", folder, T=100, max_time=1.0)``."""
    _, fn, fixed = _entry(name)
    valid = options(name)
    unknown = sorted(set(options_) - set(valid))
    if unknown:
        raise ValueError(f"dataset {name!r}: unknown option(s) {unknown}; valid: "
                         f"{', '.join(valid) or 'none'}")
    return fn(**fixed(data_dir, seed), **options_)
