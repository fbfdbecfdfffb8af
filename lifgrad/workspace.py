"""Step-sized buffers kept between training steps and handed out again.

A training step allocates the same large arrays every step: each layer's
input current, membrane and spike traces, the chunks of errors of the
backward pass, weight-gradient sums.  Freed at the end of a step, they go
back to the operating system (glibc serves such blocks with ``mmap``), and
the next step page-faults every one of them in again.  In a training loop
whose step is a function (lifgrad's own ``fit``, ``benchmarks/workloads.py``)
that made W2's step 73-92 ms instead of 42-50 ms on 2 cores (the page faults
of the two threads contend in the kernel); a loop that kept the previous
step's trace alive until the next one did not pay it.

A :class:`Workspace`, owned by a network, keeps every buffer it handed out and
gives it out again -- for the same shape and dtype -- only when nothing else
holds it any more: its reference count shows that no trace, view, gradient
dict or torch tensor of the caller still refers to it.  So a trace the user
keeps is never overwritten; it simply makes the next step take fresh
buffers.  Between steps the buffers stay mapped (the process's RSS stays at
its peak instead of falling and rising); the peak itself is unchanged.

Allocation sites call :func:`empty` / :func:`zeros`; they draw from the
workspace that the running network call installed (:func:`use`, per
thread), or allocate as NumPy does when none is installed.
"""
from __future__ import annotations

import sys
import threading

import numpy as np

__all__ = ["Workspace", "use", "empty", "zeros"]

MIN_BYTES = 1 << 16     # smaller arrays are cheap to allocate: not pooled
MAX_PER_KEY = 8         # buffers kept per (shape, dtype)

_local = threading.local()


class Workspace:
    """A pool of buffers, keyed by (shape, dtype)."""

    def __init__(self):
        self._bufs = {}

    def empty(self, shape, dtype):
        dtype = np.dtype(dtype)
        shape = tuple(int(n) for n in np.atleast_1d(shape)) if not isinstance(shape, tuple) \
            else tuple(int(n) for n in shape)
        nbytes = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
        if nbytes < MIN_BYTES:
            return np.empty(shape, dtype)
        pool = self._bufs.setdefault((shape, dtype.str), [])
        for buf in pool:
            # held by this list, this loop's name and getrefcount's argument: by nothing else
            if sys.getrefcount(buf) <= 3:
                return buf
        buf = np.empty(shape, dtype)
        if len(pool) < MAX_PER_KEY:
            pool.append(buf)
        return buf

    def nbytes(self):
        """Bytes held by the pool."""
        return sum(b.nbytes for pool in self._bufs.values() for b in pool)

    def clear(self):
        self._bufs.clear()


class use:
    """Context: allocations through :func:`empty`/:func:`zeros` on this thread
    draw from ``ws`` (re-entrant; the outermost installed workspace wins)."""

    def __init__(self, ws):
        self.ws = ws

    def __enter__(self):
        self.prev = getattr(_local, "ws", None)
        if self.prev is None:
            _local.ws = self.ws
        return self

    def __exit__(self, *exc):
        if self.prev is None:
            _local.ws = None
        return False


def empty(shape, dtype):
    """An uninitialised array, from the running network's workspace if any."""
    ws = getattr(_local, "ws", None)
    return np.empty(shape, dtype) if ws is None else ws.empty(shape, dtype)


def zeros(shape, dtype):
    """A zero-filled array, from the running network's workspace if any."""
    ws = getattr(_local, "ws", None)
    if ws is None:
        return np.zeros(shape, dtype)
    a = ws.empty(shape, dtype)
    a.fill(0)
    return a
