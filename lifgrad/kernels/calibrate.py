"""The density below which this machine's event kernels beat its BLAS.

A product with a sparse operand (spikes, a Poisson input) can be made by the
event-driven kernels (``cpu_ops.event_matmul`` / ``event_wgrad``: one row of
the other operand added per nonzero) or by BLAS (every zero multiplied, but
at the machine's full vector speed).  Where the two cross depends on the
machine, not on lifgrad: measured with ``benchmarks/events.py`` (2048 x 784
float 0/1 operand, 1000 outputs, forward + weight gradient), the event kernels
took 0.9 of BLAS's time at density 0.3 on an AMD EPYC (AVX2) and 2.6 at 0.2
on an Intel Xeon with AVX-512, where they win only below ~0.05.

:func:`measure` times both on one representative layer (2048 rows x 512
inputs x 512 outputs, the same calls a training step makes, on lifgrad's
threads) at increasing densities and returns the largest density at which
the event kernels were still at least as fast.  ``python -m
lifgrad.kernels.calibrate``, which ``make`` runs right after it builds the
kernels (``python -m lifgrad.kernels.aot``), measures it once and stores it in
``_compiled.json`` (running it again measures again); :func:`event_density` reads it
(``DEFAULT`` without a build).  The choice is made once per installation,
not per process, so a training run gives the same bits every time on the
same installation; ``lifgrad.functional.EVENT_DENSITY`` overrides it.
"""
from __future__ import annotations

import time

import numpy as np

from ..tuning import EVENT_DENSITY_DEFAULT as DEFAULT  # without a measurement
from . import build_info

__all__ = ["DEFAULT", "DENSITIES", "measure", "event_density", "store"]

DENSITIES = (0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4)


def measure(rows=2048, inputs=512, outputs=512, densities=DENSITIES, repeats=5, seed=0,
            operand="spikes"):
    """Largest density of ``densities`` (ascending) at which the event kernels
    made a layer's forward product plus weight gradient at most as slowly as
    lifgrad's BLAS path (medians of ``repeats``, alternating); 0.0 if they
    lost already at the first.  Returns ``(density, table)`` with
    ``table = [(density, event ms, blas ms), ...]``.  ``operand``: uint8
    ``"spikes"`` (BLAS needs a float copy of them) or ``"float"`` 0/1 values
    (a Poisson input: BLAS reads them as they are)."""
    if operand not in ("spikes", "float"):
        raise ValueError(f"operand: expected 'spikes' or 'float', got {operand!r}")
    from .. import parallel, products
    from .cpu_ops import event_matmul, event_wgrad

    rng = np.random.default_rng(seed)
    WT = rng.standard_normal((inputs, outputs), dtype=np.float32)
    u = rng.standard_normal((rows, outputs), dtype=np.float32)
    out = np.empty((rows, outputs), np.float32)
    dW = np.empty((outputs, inputs), np.float32)

    @parallel.scoped
    def blas(s):
        products.matmul(s, WT, out)
        products.matmul_acc(u.T, s, dW, first=True)

    @parallel.scoped
    def events(s):
        event_matmul(s, WT, out)
        dW.fill(0)
        event_wgrad(u, s, dW)

    best, table = 0.0, []
    for d in densities:
        s = (rng.random((rows, inputs)) < d).astype(np.uint8 if operand == "spikes"
                                                     else np.float32)
        tb, te = [], []
        blas(s), events(s)                       # warm (first use loads the kernels)
        for _ in range(repeats):
            for fn, acc in ((blas, tb), (events, te)):
                t0 = time.perf_counter()
                fn(s)
                acc.append(time.perf_counter() - t0)
        e, b = 1e3 * float(np.median(te)), 1e3 * float(np.median(tb))
        table.append((d, e, b))
        if e > b:
            break
        best = d
    return best, table


_cache = {}
KEYS = {"spikes": "event_density", "float": "event_density_float"}


def event_density(operand="spikes"):
    """This installation's measured crossover density for a uint8 spike
    (``"spikes"``) or float (``"float"``) operand, from ``_compiled.json``;
    :data:`DEFAULT` without a measurement."""
    if operand not in _cache:
        d = DEFAULT
        val = build_info.read_meta().get(KEYS[operand])
        if isinstance(val, (int, float)) and not isinstance(val, bool) and 0.0 <= val <= 1.0:
            d = float(val)
        _cache[operand] = d
    return _cache[operand]


def store(meta=None, verbose=True):
    """Measure both operands with the built kernels and write the crossovers
    into ``_compiled.json`` (``meta``: its contents, read from the file when
    None).  Returns the updated contents."""
    if meta is None:
        meta = build_info.read_meta()
        if not meta:
            raise RuntimeError("no kernel build to measure with: run `python -m "
                               "lifgrad.kernels.aot` (or `make`) first")
    _cache.clear()
    lines = []
    for operand, key in KEYS.items():
        meta[key], table = measure(operand=operand)
        lines.append(f"{operand}: " + ", ".join(f"{d:g} {e:.1f}/{b:.1f}" for d, e, b in table)
                     + f" -> up to {meta[key]:g}")
    build_info.write_meta(meta)
    _cache.clear()
    if verbose:
        print("lifgrad: event kernels against BLAS on this machine (density event/BLAS ms, "
              "forward + weight gradient, 2048 x 512 x 512); sparse products use them up to "
              "the density shown.\n  " + "\n  ".join(lines))
    return meta


if __name__ == "__main__":
    store()
