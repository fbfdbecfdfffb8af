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
gives it out again -- for an array of any shape and dtype that fits -- only
when nothing else holds it any more: its reference count shows that no trace,
view, gradient dict or torch tensor of the caller still refers to it.  So a trace the user
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

from .tuning import MIN_BYTES  # noqa: E402  (smaller arrays are not pooled)

_local = threading.local()


class Workspace:
    """A pool of raw byte buffers.  A request of n bytes gets a view of the
    smallest free buffer of n to FIT * n bytes (or a new buffer), so a buffer
    freed by one phase of a step serves another phase's arrays of other
    shapes: the pool holds about the largest set of arrays alive at once, not
    every array a step ever makes (the forward's input currents serve the
    backward's error chunks)."""

    FIT = 4          # a buffer serves requests down to 1/FIT of its size
    MAX_BUFFERS = 64

    def __init__(self):
        self._bufs = []

    def empty(self, shape, dtype):
        dtype = np.dtype(dtype)
        shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(n) for n in shape)
        nbytes = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
        if nbytes < MIN_BYTES:
            return np.empty(shape, dtype)
        best = None
        for buf in self._bufs:
            # held by this list, this loop's name and getrefcount's argument: by
            # nothing else (every array handed out is a view that holds its buffer)
            if nbytes <= buf.nbytes <= self.FIT * nbytes and sys.getrefcount(buf) <= 3 \
                    and (best is None or buf.nbytes < best.nbytes):
                best = buf
        if best is None:
            best = np.empty(nbytes, np.uint8)
            if len(self._bufs) < self.MAX_BUFFERS:
                self._bufs.append(best)
        return best[:nbytes].view(dtype).reshape(shape)

    def nbytes(self):
        """Bytes held by the pool."""
        return sum(b.nbytes for b in self._bufs)

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
