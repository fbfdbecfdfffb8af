"""Fused CPU kernels around the gradient engine: the optimiser updates and the
event-driven products with spike operands.

``optim.Adam._update`` written with NumPy makes about ten passes over each
parameter (temporaries for ``(1 - b1) g``, ``g g``, ``sqrt(v)``, ...); this is
one pass (spread over lifgrad's threads) with the same operations in the same order and every scalar
rounded to the array's dtype first, as NumPy does with a Python float
(NEP 50), so the results are the NumPy update's to the bit
(``tests/test_optim.py``).  The CUDA twin is ``cuda_ops.adam``.
"""
from __future__ import annotations

import numpy as np

from .. import parallel, workspace
from .aot import pick
from .constants import EVENT_BLOCK, EVENT_ROWS

from ..tuning import ADAM_MIN  # noqa: E402  (smaller updates run on the calling thread)


def adam_update(p, g, m, v, b1, c1, b2, c2, step, sbc2, eps, wd, decay, mode):
    """One Adam step on 1-D contiguous arrays of one dtype, scalars in that dtype.

    mode 0: no weight decay; 1: L2 (``g + wd p``); 2: decoupled (``p *= decay``).
    ``c1 = 1 - b1``, ``c2 = 1 - b2``, ``step = lr / (1 - b1^t)``,
    ``sbc2 = sqrt(1 - b2^t)``.  Element ranges on lifgrad's threads
    (``ops_kernels._adam_range``)."""
    fn = pick("_adam_range", f"{p.dtype.kind}{p.dtype.itemsize}", (p, g, m, v))
    parallel.run(fn, p.size, (p, g, m, v, b1, c1, b2, c2, step, sbc2, eps, wd, decay,
                                       mode), parts=1 if p.size < ADAM_MIN else None)


# --- Event-driven products with sparse operands -----------------------------
#
# A layer's spikes are uint8 0/1 with (in the workloads of benchmarks/run.py)
# 0 to 35% ones, and Poisson inputs are 80% zeros.  A dense product
# multiplies every zero; these two kernels visit only the nonzero entries and
# add the matching rows scaled by them, four at a time (one load and store of
# the output row per four events).  Each output element is summed in a fixed
# order that depends on the operands alone (not on the thread count), so the
# results are deterministic; the order differs from BLAS's, so they agree with
# the dense product -- their twins in ``reference.py`` -- to rounding, exactly
# when every partial sum is exact (integer values; tests/test_events.py).
# Which one a product uses is decided by ``functional.use_events``.

# Scratch memory is allocated by the Python wrappers, on the calling thread:
# blocks that Numba's worker threads allocate come from their own malloc
# arenas and add to the peak instead of reusing the step's freed buffers
# (W4's peak memory growth 15.7 -> 16.7 MB when the kernels allocated it).


def event_matmul(a, BT, out):
    """``out = a @ BT`` by ``ops_kernels.event_matmul_idx`` with its scratch,
    tasks on lifgrad's threads."""
    M, K = a.shape
    nblk = (M + EVENT_ROWS - 1) // EVENT_ROWS
    idx = workspace.empty((nblk, K), np.int32)
    fn = pick("event_matmul_idx", _key(BT, a), (a, BT, out, idx))
    parallel.run(fn, nblk, (a, BT, out, idx))


def event_wgrad(u, a, out, parts=None):
    """``out += u^T a`` by ``ops_kernels.event_wgrad_parts`` with its scratch;
    one part per thread of lifgrad's (:func:`lifgrad.parallel.num_threads`)
    unless ``parts`` is given (the result is the same for any number)."""
    M, N = u.shape
    K = a.shape[1]
    if parts is None:
        parts = parallel.num_threads()
    parts = max(1, min(K, parts))
    G, lists, count = (workspace.zeros((K, N), u.dtype),
                       workspace.empty((K, EVENT_BLOCK), np.uint8), np.empty(K, np.int64))
    fn = pick("event_wgrad_parts", _key(u, a), (u, a, out, G, lists, count))
    parallel.run(fn, parts, (u, a, out, parts, G, lists, count))


def _key(f, a):
    return f"{f.dtype.kind}{f.dtype.itemsize}_{a.dtype.kind}{a.dtype.itemsize}"
