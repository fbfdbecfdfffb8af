"""Fused CPU kernels around the gradient engine: the optimiser updates.

``optim.Adam._update`` written with NumPy makes about ten passes over each
parameter (temporaries for ``(1 - b1) g``, ``g g``, ``sqrt(v)``, ...); this is
one parallel pass with the same operations in the same order and every scalar
rounded to the array's dtype first, as NumPy does with a Python float
(NEP 50), so the results are the NumPy update's to the bit
(``tests/test_optim.py``).  The CUDA twin is ``cuda_ops.adam``.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True, nogil=True)
def adam_update(p, g, m, v, b1, c1, b2, c2, step, sbc2, eps, wd, decay, mode):
    """One Adam step on 1-D contiguous arrays of one dtype, scalars in that dtype.

    mode 0: no weight decay; 1: L2 (``g + wd p``); 2: decoupled (``p *= decay``).
    ``c1 = 1 - b1``, ``c2 = 1 - b2``, ``step = lr / (1 - b1^t)``,
    ``sbc2 = sqrt(1 - b2^t)``."""
    for i in prange(p.size):
        pi = p[i]
        gi = g[i]
        if mode == 2:
            pi = pi * decay
        elif mode == 1:
            gi = gi + wd * pi
        mi = m[i] * b1 + c1 * gi
        vi = v[i] * b2 + c2 * gi * gi
        m[i] = mi
        v[i] = vi
        p[i] = pi - step * mi / (np.sqrt(vi) / sbc2 + eps)
