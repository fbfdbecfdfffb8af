"""One line on stderr while Numba compiles lifgrad's kernels for first use.

A kernel is compiled the first time a configuration needs it (one surrogate
family, one cell, one dtype) and cached on disk afterwards (``cache=True``:
next to the package, or in the user's cache directory when the package
directory is read-only; ``NUMBA_CACHE_DIR`` overrides both).  The first call
of ``forward``, ``backward`` or an optimiser step that compiles prints::

    lifgrad: compiling kernels for first use, cached afterwards ... 2.6 s

The listener is registered with Numba's event API only while that lifgrad
call runs (:func:`watch`, called by the kernel wrappers), so nothing in the
process changes outside lifgrad's calls.
"""
from __future__ import annotations

import sys
import threading
import time

from numba.core import event

from .. import parallel

MESSAGE = "lifgrad: compiling kernels for first use, cached afterwards ..."


class _Listener(event.Listener):
    def __init__(self):
        self.lock = threading.Lock()
        self.depth = 0
        self.t0 = None

    def on_start(self, ev):
        with self.lock:
            if self.depth == 0 and self.t0 is None:
                self.t0 = time.perf_counter()
                print(MESSAGE, end="", file=sys.stderr, flush=True)
            self.depth += 1

    def on_end(self, ev):
        with self.lock:
            self.depth -= 1


_state = {"listener": None}
_lock = threading.Lock()


def watch():
    """Note compilations until the running lifgrad call ends (no-op outside one)."""
    if _state["listener"] is not None or not parallel.in_scope():
        return
    with _lock:
        if _state["listener"] is not None:
            return
        listener = _Listener()
        event.register("numba:compile", listener)
        _state["listener"] = listener
    parallel.at_scope_exit(_finish)


def _finish():
    with _lock:
        listener, _state["listener"] = _state["listener"], None
    if listener is None:
        return
    event.unregister("numba:compile", listener)
    if listener.t0 is not None:
        print(f" {time.perf_counter() - listener.t0:.1f} s", file=sys.stderr, flush=True)
