"""Dense matrix products on lifgrad's threads, cut into pieces by shape.

Every BLAS product of a training step goes through :func:`matmul` (``out = a
@ b``) or :func:`matmul_acc` (``out += a @ b``).  Each cuts the product into
pieces of at most ``parallel.PIECE_ROWS`` rows (or columns) of its output and
makes the pieces on :mod:`lifgrad.parallel`'s threads, with BLAS held to one
thread per call.  The pieces depend on the shapes alone, so a product gives
the same bits on any number of threads (OpenBLAS's own threading and a
different cut both change the float32 rounding of a row), and every path that
makes a product (full trace, checkpointed recompute) makes the same pieces.

A ``uint8`` spike operand has no BLAS type: NumPy casts it to the float dtype
for the call.  The cast is made a piece at a time (a piece of a spike operand
on the left; pieces of ``SPIKE_ROWS`` rows of the reduction on the right), so
no float copy of a whole chunk of spikes is ever held.
"""
from __future__ import annotations

import numpy as np

from . import parallel, workspace

__all__ = ["matmul", "matmul_acc", "SPIKE_ROWS"]

from .tuning import SPIKE_ROWS  # noqa: E402  (uint8 rows cast to float at a time)


def _pieces(rows, cols):
    """('rows' or 'cols', slices) of an output of ``rows x cols``: rows in
    pieces of PIECE_ROWS, or columns when there are fewer than two pieces of
    rows and at least two of columns (W1's static (128, 784) @ (784, 1000))."""
    P = parallel.PIECE_ROWS
    if rows < 2 * P <= cols:
        return "cols", parallel.row_pieces(cols)
    return "rows", parallel.row_pieces(rows)


def matmul(a, b, out):
    """``out = a @ b`` for 2-D ``a (M, K)`` (float or uint8), ``b (K, N)`` and
    ``out (M, N)`` (any strides BLAS accepts), in pieces on lifgrad's threads."""
    axis, pieces = _pieces(a.shape[0], b.shape[1])
    if axis == "rows":
        def piece(sl):
            np.matmul(a[sl], b, out=out[sl])
    else:
        def piece(sl):
            np.matmul(a, b[:, sl], out=out[:, sl])

    def part(lo, hi):
        for sl in pieces[lo:hi]:
            piece(sl)
    parallel.run(part, len(pieces), ())
    return out


def matmul_acc(a, b, out, first=False):
    """``out += a @ b`` for ``a (M, K)`` float (a transposed view is fine),
    ``b (K, N)`` float or uint8 and ``out (M, N)``, in pieces of the output on
    lifgrad's threads (``first``: ``out = a @ b``, whatever ``out`` held).  A
    uint8 ``b`` is cast SPIKE_ROWS rows of the reduction at a time, the
    slabs added in order (a fixed order of the sum); when the output is cut
    into pieces of columns (a weight gradient of a narrow layer, W1's 10
    outputs), each thread casts only its piece's columns, into scratch made on
    the calling thread (a worker's allocations come from its own malloc arena
    and add to the peak).  A product that is added goes through one buffer of
    ``out``'s shape; the first slab of a ``first`` call is written straight
    into ``out``."""
    axis, pieces = _pieces(a.shape[0], b.shape[1])
    K = b.shape[0]
    if K == 0:                              # an empty sum
        if first:
            out.fill(0)
        return out
    spikes = b.dtype.kind != "f"
    slabs = ([slice(k, min(K, k + SPIKE_ROWS)) for k in range(0, K, SPIKE_ROWS)] if spikes
             else [slice(0, K)])
    tmp = None if (first and len(slabs) == 1) else workspace.empty(out.shape, out.dtype)

    def add(j, a_, b_, o, t):
        if first and j == 0:
            np.matmul(a_, b_, out=o)
        else:
            np.matmul(a_, b_, out=t)
            o += t

    if spikes and axis == "cols":           # each thread casts its own columns
        P = parallel.PIECE_ROWS
        k = parallel.split(len(pieces))
        scratch = [workspace.empty((min(K, SPIKE_ROWS), P), out.dtype) for _ in range(k)]

        def part(i, lo, hi):
            buf = scratch[i]
            for sl in pieces[lo:hi]:
                w = sl.stop - sl.start
                for j, r in enumerate(slabs):
                    bb = buf[:r.stop - r.start, :w]
                    np.copyto(bb, b[r, sl], casting="unsafe")
                    add(j, a[:, r], bb, out[:, sl], None if tmp is None else tmp[:, sl])
        parallel.run(part, len(pieces), (), with_index=True)
        return out
    for j, r in enumerate(slabs):
        a_ = a[:, r]
        b_ = b[r].astype(out.dtype) if spikes else b

        def part(lo, hi, j=j, a_=a_, b_=b_):
            for sl in pieces[lo:hi]:
                if axis == "rows":
                    add(j, a_[sl], b_, out[sl], None if tmp is None else tmp[sl])
                else:
                    add(j, a_, b_[:, sl], out[:, sl], None if tmp is None else tmp[:, sl])
        parallel.run(part, len(pieces), ())
    return out
