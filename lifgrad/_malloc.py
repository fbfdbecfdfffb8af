"""Keep freed trace-sized buffers in the process heap (glibc only).

A training step allocates and frees the same ``(T, B, N)`` arrays every step.
glibc serves blocks above its mmap threshold with fresh ``mmap`` pages and
gives freed heap tops back to the kernel, so each step page-faults every
buffer in again: on the W1 benchmark (784-1000-10, T=25, B=128) that made
three matrix products take 20 ms instead of 5 and the forward scans 13 ms
instead of 7 (``benchmarks/results.md``).  Raising the mmap threshold to its
maximum (32 MiB) and the trim threshold keeps those pages mapped between
steps.  Peak memory is unchanged; memory is simply not returned to the kernel
between steps.  Set ``LIFGRAD_MALLOC_TUNE=0`` before importing lifgrad to leave
the allocator alone; an explicit ``MALLOC_MMAP_THRESHOLD_`` or
``MALLOC_TRIM_THRESHOLD_`` in the environment also wins.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20      # glibc's maximum on 64-bit systems
TRIM_THRESHOLD = 1 << 30

applied = False


def tune():
    """Apply the settings once; returns whether they are in effect."""
    global applied
    if applied:
        return True
    if os.environ.get("LIFGRAD_MALLOC_TUNE", "1") == "0":
        return False
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):     # not glibc (musl, macOS, Windows)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    applied = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and \
        bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return applied
