"""lifgrad's own worker threads, and BLAS kept to one thread inside lifgrad's calls.

Why lifgrad runs its own threads
--------------------------------
A training step alternates compiled scans with matrix products.  When the
scans ran as Numba ``prange`` loops (OpenMP) and the products on OpenBLAS's
own threads, each runtime's idle workers spun after their work and took the
cores from the other: OpenBLAS's workers spin for about 2^28 cycles after
every product unless ``OPENBLAS_THREAD_TIMEOUT`` is set before OpenBLAS loads,
and OpenMP's workers spin unless ``OMP_WAIT_POLICY`` is set before OpenMP
starts.  Environment variables set by a library work only when it is imported
before numpy and torch, which users do not do (issue 15: W2 took 51-74 ms
with lifgrad imported first, 93-123 ms with numpy first, 157 ms with torch
first).

So nothing here depends on import order or on the environment: every
parallel piece of work of lifgrad -- a block of neurons of a scan, a block of
rows of a matrix product, a slice of an optimiser update -- runs on this
module's pool of Python threads (the compiled kernels and BLAS release the
GIL), and while lifgrad's calls run, BLAS is held to one thread per call with
``threadpoolctl`` (set on entry to the outermost call, restored on exit), so
no BLAS or OpenMP worker is ever woken to spin.  Idle pool threads wait on a
lock and use no CPU.

Results do not depend on the number of threads: a scan's tasks are
independent, and a product is cut into pieces by its shape alone
(:func:`row_pieces`), whatever the number of threads that make them.

``set_num_threads(n)`` sets the number of threads; the default is
``NUMBA_NUM_THREADS`` when that is set, else the number of CPUs this process
may run on.
"""
from __future__ import annotations

import functools
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

__all__ = ["num_threads", "set_num_threads", "run", "scoped", "blas_one_thread",
           "row_pieces", "PIECE_ROWS"]

_lock = threading.Lock()
_state = {"n": None, "pool": None, "pool_workers": 0, "pid": None}


def _default_threads():
    env = os.environ.get("NUMBA_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:                     # not Linux
        return max(1, os.cpu_count() or 1)


def num_threads() -> int:
    """Threads lifgrad's kernels and products use (see :func:`set_num_threads`)."""
    n = _state["n"]
    return _default_threads() if n is None else n


def set_num_threads(n: int | None) -> None:
    """Use ``n`` threads for lifgrad's kernels and products (``None``: the
    default, ``NUMBA_NUM_THREADS`` or the CPUs available).  Results are the
    same for every ``n``."""
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"n: expected an integer >= 1 or None, got {n!r}")
    _state["n"] = n


def _pool(workers):
    """The worker pool (at least ``workers`` threads), made on first use and
    again after a fork (a forked child has none of its parent's threads)."""
    with _lock:
        pool = _state["pool"]
        if pool is None or _state["pid"] != os.getpid() or _state["pool_workers"] < workers:
            if pool is not None and _state["pid"] == os.getpid():
                pool.shutdown(wait=False)
            pool = ThreadPoolExecutor(workers, thread_name_prefix="lifgrad")
            _state.update(pool=pool, pool_workers=workers, pid=os.getpid())
        return pool


def split(n_tasks, parts=None):
    """The number of ranges :func:`run` cuts ``range(n_tasks)`` into."""
    return max(1, min(num_threads(), n_tasks, n_tasks if parts is None else parts))


def run(fn, n_tasks, args, parts=None, with_index=False):
    """Call ``fn(*args, lo, hi)`` over contiguous ranges that split
    ``range(n_tasks)``, one range per thread (at most ``parts`` ranges), the
    first on the calling thread (``with_index``: ``fn(*args, i, lo, hi)`` with
    the range's index i < :func:`split`, for per-thread scratch).  ``fn`` must release the GIL (a ``nogil``
    Numba kernel, a NumPy product) and be correct for any split.  Returns when
    every range is done; an exception in any range is raised here, after all
    of them have finished (none still writes into the caller's arrays)."""
    k = split(n_tasks, parts)
    if k <= 1:
        if n_tasks > 0:
            fn(*args, *((0,) if with_index else ()), 0, n_tasks)
        return
    bounds = [n_tasks * i // k for i in range(k + 1)]
    pool = _pool(k - 1)
    with blas_one_thread():
        futures = [pool.submit(fn, *args, *((i,) if with_index else ()), bounds[i], bounds[i + 1])
                   for i in range(1, k)]
        try:
            fn(*args, *((0,) if with_index else ()), bounds[0], bounds[1])
        finally:
            errors = []
            for f in futures:
                try:
                    f.result()
                except BaseException as e:  # noqa: BLE001 - re-raised below
                    errors.append(e)
        if errors:
            raise errors[0]


def run_each(fns):
    """Run the zero-argument callables ``fns`` (each releasing the GIL) on the
    pool, about ``len(fns) / num_threads()`` per thread, the first share on the
    calling thread."""
    def part(lo, hi):
        for f in fns[lo:hi]:
            f()
    run(part, len(fns), ())


# -- BLAS held to one thread inside lifgrad's calls -----------------------------------

_blas = {"depth": 0, "controller": None, "modules": -1, "limiter": None, "at_exit": []}


def _import_threadpoolctl():
    """threadpoolctl, imported without its one side effect: at import it sets
    ``KMP_DUPLICATE_LIB_OK=True`` in ``os.environ`` (since 3.x; it lets two
    Intel OpenMP runtimes load side by side), and lifgrad changes nothing in
    the process it is used in.  The variable is put back as it was."""
    if "threadpoolctl" in sys.modules:
        return sys.modules["threadpoolctl"]
    key = "KMP_DUPLICATE_LIB_OK"
    before = os.environ.get(key)
    try:
        import threadpoolctl
    finally:
        if before is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before
    return threadpoolctl


def _controller():
    """A threadpoolctl controller of the loaded BLAS libraries, made again when
    modules were imported since (a module may have loaded another BLAS: SciPy's,
    which Numba's ``np.dot`` uses)."""
    threadpoolctl = _import_threadpoolctl()
    if _blas["controller"] is None or _blas["modules"] != len(sys.modules):
        _blas["controller"] = threadpoolctl.ThreadpoolController()
        _blas["modules"] = len(sys.modules)
    return _blas["controller"]


class blas_one_thread:
    """Context: BLAS libraries use one thread each while lifgrad runs (lifgrad
    splits its products over its own threads); the outermost entry sets it and
    its exit restores the previous numbers.  Nested and repeated entries cost
    a counter.  Process-wide while active, like any BLAS thread setting: a
    product another thread makes at the same time also gets one thread."""

    def __enter__(self):
        with _lock:
            if _blas["depth"] == 0:
                _blas["limiter"] = _controller().limit(limits=1, user_api="blas")
            _blas["depth"] += 1
        return self

    def __exit__(self, *exc):
        with _lock:
            _blas["depth"] -= 1
            if _blas["depth"] == 0:
                limiter, _blas["limiter"] = _blas["limiter"], None
                limiter.restore_original_limits()
                at_exit, _blas["at_exit"] = _blas["at_exit"], []
            else:
                at_exit = []
        for fn in at_exit:
            fn()
        return False


def in_scope() -> bool:
    """Whether a lifgrad call (a :class:`blas_one_thread` scope) is running."""
    return _blas["depth"] > 0


def at_scope_exit(fn):
    """Call ``fn()`` when the outermost running scope exits (now, if none runs)."""
    with _lock:
        if _blas["depth"] > 0:
            _blas["at_exit"].append(fn)
            return
    fn()


def scoped(fn):
    """Decorator for lifgrad's public entry points: the call runs inside
    :class:`blas_one_thread` (entered once, however deep the calls nest)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with blas_one_thread():
            return fn(*args, **kwargs)
    return wrapper


# -- products cut by shape ---------------------------------------------------------

from .tuning import PIECE_ROWS  # noqa: E402  (rows per piece of a product, see row_pieces)


def row_pieces(n):
    """Row slices of an ``n``-row operand of a product: pieces of PIECE_ROWS
    rows, the last one shorter.  Fixed by the shape alone, so a product gives
    the same bits on any number of threads (BLAS rounds a row differently
    depending on how many rows a call gets), and every path that makes a
    product makes the same pieces.  256 rows: BLAS packs the other operand
    once per piece, about 4 % of a piece's time at 256 rows x 784 x 1000."""
    return [slice(r, min(n, r + PIECE_ROWS)) for r in range(0, n, PIECE_ROWS)]
