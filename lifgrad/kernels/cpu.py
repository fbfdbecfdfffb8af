"""The CPU kernels of the LIF cell: the compiled twins of ``lifgrad/reference.py``.

Same names, same argument order, same outputs as the reference scans.  Each
call spreads its tasks (batch row x block of BLOCK neurons) over lifgrad's
threads (:mod:`lifgrad.parallel`); the kernels themselves are the serial task
loops of ``scan_kernels.py``, compiled ahead of time (``kernels/aot.py``:
``lifgrad.kernels._compiled``, built by ``make``) or, without that build,
just in time by Numba.  This module does not import Numba itself.
"""
from __future__ import annotations

from .. import parallel
from .aot import pick
from .constants import BLOCK

from ..tuning import PARALLEL_MIN  # noqa: E402  (smaller scans run on the calling thread)

__all__ = ["cell_forward_scan", "cell_backward_scan", "cell_forward_recurrent",
           "cell_backward_recurrent", "BLOCK"]


def _key(u, v):
    return f"{u.dtype.kind}{u.dtype.itemsize}_{v.dtype.kind}{v.dtype.itemsize}"


def _tasks(N, B):
    return B * ((N + BLOCK - 1) // BLOCK)


def _parts(t0, t1, B, N):
    return 1 if (t1 - t0) * B * N < PARALLEL_MIN else None


def _mode(mode):
    return tuple(int(m) for m in mode)


def _sg(sg):
    return (int(sg[0]),) + tuple(float(x) for x in sg[1:7])


def cell_forward_scan(I, static, t0, t1, state0, P, mode, sg, rnd, u, v, s, a):
    """Forward steps t0 <= t < t1 (``reference.cell_forward_scan``)."""
    T, B, N = u.shape
    fn = pick("_forward_tasks", _key(u, v), (I, state0, P, rnd, u, v, s, a))
    parallel.run(fn, _tasks(N, B), (I, bool(static), int(t0), int(t1), state0, P, _mode(mode),
                                    _sg(sg), rnd, u, v, s, a), parts=_parts(t0, t1, B, N))


def cell_backward_scan(u, v, s, a, state0, dv, du, rec, have, static, t0, t1,
                       P, mode, sg, dI, acc, adj, dstate0):
    """Reverse steps t1 > t >= t0 (``reference.cell_backward_scan``)."""
    T, B, N = u.shape
    fn = pick("_backward_tasks", _key(u, v),
              (u, v, s, a, state0, dv, du, rec, P, dI, acc, adj, dstate0))
    parallel.run(fn, _tasks(N, B),
                 (u, v, s, a, state0, dv, du, rec, tuple(bool(h) for h in have), bool(static),
                  int(t0), int(t1), P, _mode(mode), _sg(sg), dI, acc, adj, dstate0),
                 parts=_parts(t0, t1, B, N))


def cell_forward_recurrent(I, static, t0, t1, state0, P, RT, mode, sg, rnd, u, v, s, a):
    """All-to-all recurrent forward over t0 <= t < t1, RT = R^T
    (``reference.cell_forward_recurrent``)."""
    fn = pick("_forward_recurrent", _key(u, v), (I, state0, P, RT, rnd, u, v, s, a))
    with parallel.blas_one_thread():
        fn(I, bool(static), int(t0), int(t1), state0, P, RT, _mode(mode), _sg(sg), rnd,
           u, v, s, a)


def cell_backward_recurrent(u, v, s, a, state0, dv, du, have, t0, t1, P, R, mode, sg,
                            dI, dI_next, acc, adj, dstate0):
    """Its adjoint over t1 > t >= t0 (``reference.cell_backward_recurrent``)."""
    fn = pick("_backward_recurrent", _key(u, v), (u, v, s, a, state0, dv, du, P, R, dI,
                                                   dI_next, acc, adj, dstate0))
    with parallel.blas_one_thread():
        fn(u, v, s, a, state0, dv, du, tuple(bool(h) for h in have), int(t0), int(t1), P, R,
           _mode(mode), _sg(sg), dI, dI_next, acc, adj, dstate0)
