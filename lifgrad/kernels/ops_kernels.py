"""The compiled optimiser update and event-driven products: Numba source.

Serial kernels over a range of tasks; ``lifgrad.kernels.cpu_ops`` holds their
Python entry points, which spread the tasks over lifgrad's threads and pick
the ahead-of-time compiled copy (``lifgrad.kernels._compiled``) when there is
one, as for the scans (``scan_kernels.py``).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .constants import EVENT_BLOCK, EVENT_ROWS

_JIT = dict(cache=True, nogil=True, error_model="numpy")     # (aot.py builds with the same)



@njit(**_JIT)
def _adam_range(p, g, m, v, b1, c1, b2, c2, step, sbc2, eps, wd, decay, mode, lo, hi):
    """:func:`adam_update` on elements [lo, hi)."""
    for i in range(lo, hi):
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


@njit(**_JIT)
def event_matmul_idx(a, BT, out, idx, blk0, blk1):
    """``out = a @ BT`` for ``a (M, K)`` (uint8 or float), ``BT (K, N)`` C-contiguous and
    ``out (M, N)``: per row, the nonzero columns j of ``a`` are listed, then the
    rows ``a[r, j] BT[j]`` are added four at a time,
    ``out[r] += (c1 w1 + c2 w2) + (c3 w3 + c4 w4)``, in increasing j.
    ``idx``: int32 scratch, one row of K per task of EVENT_ROWS rows; this call
    makes the tasks [blk0, blk1)."""
    M, K = a.shape
    N = BT.shape[1]
    one = BT.dtype.type
    for blk in range(blk0, blk1):
        ix = idx[blk]
        for r in range(blk * EVENT_ROWS, min(M, (blk + 1) * EVENT_ROWS)):
            ar = a[r]
            n = 0
            for j in range(K):           # branch-free list of the nonzero columns
                ix[n] = j
                n += ar[j] != 0
            o = out[r]
            for k in range(N):
                o[k] = 0.0
            q = 0
            while q + 4 <= n:
                j1, j2, j3, j4 = ix[q], ix[q + 1], ix[q + 2], ix[q + 3]
                w1, w2, w3, w4 = BT[j1], BT[j2], BT[j3], BT[j4]
                c1, c2, c3, c4 = one(ar[j1]), one(ar[j2]), one(ar[j3]), one(ar[j4])
                for k in range(N):
                    o[k] += (c1 * w1[k] + c2 * w2[k]) + (c3 * w3[k] + c4 * w4[k])
                q += 4
            while q < n:
                j1 = ix[q]
                w1, c1 = BT[j1], one(ar[j1])
                for k in range(N):
                    o[k] += c1 * w1[k]
                q += 1


@njit(**_JIT)
def event_wgrad_parts(u, a, out, parts, G, lists, count, th0, th1):
    """``out += u^T a`` for ``u (M, N)`` (float), ``a (M, K)`` (uint8 or float)
    and ``out (N, K)``: a weight gradient ``dW = sum_t ubar_t^T x_t`` with a
    sparse input.  Column j of the product is ``G_j = sum_r a[r, j] u[r]``, summed
    over rows in blocks of EVENT_BLOCK rows (increasing r, four rows at a time
    as in event_matmul); the columns are split into ``parts`` ranges, one per
    thread (:func:`lifgrad.parallel.num_threads`), so each ``G_j`` has one order
    whatever their number; then ``out[:, j] += G_j``.  This call makes the
    parts [th0, th1).  Scratch: ``G (K, N)`` zeros of u's dtype, ``lists
    (K, EVENT_BLOCK)`` uint8 (a column's rows in the block, as offsets),
    ``count (K,)`` int64."""
    M, N = u.shape
    K = a.shape[1]
    one = u.dtype.type
    parts = max(1, min(K, parts))
    for th in range(th0, min(th1, parts)):
        j0 = th * K // parts
        j1 = (th + 1) * K // parts
        for r0 in range(0, M, EVENT_BLOCK):
            r1 = min(M, r0 + EVENT_BLOCK)
            count[j0:j1] = 0
            for r in range(r0, r1):        # rows in increasing order, read along the row
                ar = a[r]
                for j in range(j0, j1):    # branch-free: always store, count a one
                    c = count[j]
                    lists[j, c] = r - r0
                    count[j] = c + (ar[j] != 0)
            for j in range(j0, j1):
                rows = lists[j]
                n = count[j]
                g = G[j]
                q = 0
                while q + 4 <= n:
                    ra, rb, rc, rd = r0 + rows[q], r0 + rows[q + 1], r0 + rows[q + 2], r0 + rows[q + 3]
                    x1, x2, x3, x4 = u[ra], u[rb], u[rc], u[rd]
                    c1, c2, c3, c4 = one(a[ra, j]), one(a[rb, j]), one(a[rc, j]), one(a[rd, j])
                    for k in range(N):
                        g[k] += (c1 * x1[k] + c2 * x2[k]) + (c3 * x3[k] + c4 * x4[k])
                    q += 4
                while q < n:
                    ra = r0 + rows[q]
                    x1, c1 = u[ra], one(a[ra, j])
                    for k in range(N):
                        g[k] += c1 * x1[k]
                    q += 1
        for k0 in range(0, N, 32):         # out[:, j0:j1] += G^T by 32 x 32 tiles
            for i0 in range(j0, j1, 32):
                for k in range(k0, min(N, k0 + 32)):
                    o = out[k]
                    for j in range(i0, min(j1, i0 + 32)):
                        o[j] += G[j, k]
