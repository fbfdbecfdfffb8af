"""The CPU kernels compiled ahead of time, and the choice between them and Numba's JIT.

    python -m lifgrad.kernels.aot        # `make` runs it after installing

compiles every kernel of ``scan_kernels.py`` and ``ops_kernels.py`` for the
argument types lifgrad passes (float32 and float64 layers, uint8 or float
spikes) into one extension module, ``lifgrad/kernels/_compiled*.so``, with
Numba's ahead-of-time compiler (``numba.pycc``, for this machine's CPU), and
writes ``_compiled.json`` beside it with a hash of the kernel sources.

At run time :func:`pick` returns the compiled function when that module is
there and was built from the current sources; then Numba is never imported
by the CPU path (no compile, no JIT: a first training step starts at once,
and the process does not carry Numba's ~110 MB of compiler and typing
machinery).  Otherwise -- no build, sources edited since, arguments of a type
or layout that was not compiled, or ``LIFGRAD_KERNELS=jit`` -- the same
function is compiled just in time by Numba and cached on disk, with a note on
stderr (``kernels/compiling.py``).  ``LIFGRAD_KERNELS=aot`` makes a missing or
stale module an error instead.
"""
from __future__ import annotations

import hashlib
import importlib
import os
import sys
import time
import warnings

from .build_info import HERE, MODULE, read_meta, write_meta

SOURCES = ("scan_kernels.py", "ops_kernels.py", "constants.py", "aot.py",
           os.path.join("..", "surrogates.py"))

# the argument types of the compiled copies: (float dtype, spike or operand dtype)
SCAN_KEYS = (("f4", "u1"), ("f8", "u1"), ("f4", "f4"), ("f8", "f8"))
EVENT_KEYS = SCAN_KEYS            # (float operand/output dtype, sparse operand dtype)
ADAM_KEYS = ("f4", "f8")


def source_hash():
    h = hashlib.sha256()
    for name in SOURCES:
        with open(os.path.join(HERE, name), "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def _exports():
    """(exported name, njit function, signature) of every compiled copy."""
    from numba import types as t

    from . import ops_kernels as O
    from . import scan_kernels as S
    from .constants import N_MODE

    def A(dt, nd):
        return t.Array(getattr(t, {"f4": "float32", "f8": "float64", "u1": "uint8"}[dt]), nd, "C")
    i8, b1 = t.int64, t.boolean
    mode = t.UniTuple(t.int64, N_MODE)
    sg = t.Tuple((t.int64,) + (t.float64,) * 6)
    R3 = t.Array(t.float64, 3, "C")
    out = []
    for f, v in SCAN_KEYS:
        F3, F2, V3 = A(f, 3), A(f, 2), A(v, 3)
        key = f"{f}_{v}"
        out += [
            (f"_forward_tasks__{key}", S._forward_tasks,
             t.void(F3, b1, i8, i8, F3, F2, mode, sg, R3, F3, V3, F3, F3, i8, i8)),
            (f"_backward_tasks__{key}", S._backward_tasks,
             t.void(F3, V3, F3, F3, F3, F3, F3, F3, t.UniTuple(b1, 4), b1, i8, i8, F2, mode, sg,
                    F3, F3, F3, F3, i8, i8)),
            (f"_forward_recurrent__{key}", S._forward_recurrent,
             t.void(F3, b1, i8, i8, F3, F2, F2, mode, sg, R3, F3, V3, F3, F3)),
            (f"_backward_recurrent__{key}", S._backward_recurrent,
             t.void(F3, V3, F3, F3, F3, F3, F3, t.UniTuple(b1, 4), i8, i8, F2, F2, mode, sg,
                    F3, F2, F3, F3, F3)),
        ]
    D1 = A("f8", 1)
    f8 = t.float64
    out += [("_phi_block__f8_f8", S._phi_block, t.void(i8, f8, f8, f8, f8, f8, f8, D1, D1, D1, i8)),
            ("_G_block__f8", S._G_block, t.void(i8, f8, f8, f8, D1, D1, i8))]
    for f, a in EVENT_KEYS:
        key = f"{f}_{a}"
        out += [
            (f"event_matmul_idx__{key}", O.event_matmul_idx,
             t.void(A(a, 2), A(f, 2), A(f, 2), t.Array(t.int32, 2, "C"), i8, i8)),
            (f"event_wgrad_parts__{key}", O.event_wgrad_parts,
             t.void(A(f, 2), A(a, 2), A(f, 2), i8, A(f, 2), A("u1", 2), t.Array(t.int64, 1, "C"),
                    i8, i8)),
        ]
    for f in ADAM_KEYS:
        s = t.float32 if f == "f4" else t.float64
        V1 = A(f, 1)
        out.append((f"_adam_range__{f}", O._adam_range,
                    t.void(V1, V1, V1, V1, s, s, s, s, s, s, s, s, s, i8, i8, i8)))
    return out


def build(out_dir=HERE, verbose=True):
    """Compile every export into ``out_dir/_compiled*.so`` and write the hash.
    (``make`` then runs ``python -m lifgrad.kernels.calibrate``, which
    measures the event kernels' density crossover with this build.)"""
    from numba.core import compiler
    from numba.pycc import CC

    t0 = time.perf_counter()
    # the hash of the sources as they are read now: a source edited while the
    # compiler runs leaves a build that the next import rejects as stale
    digest = source_hash()
    cc = CC(MODULE)
    cc.output_dir = out_dir
    cc.target_cpu = "host"          # this machine's vector units (the default is generic x86-64)
    for name, fn, sig in _exports():
        cc.export(name, sig)(fn.py_func)
    # The exported entry points get Numba's default flags; give them the
    # kernels' own: release the GIL (lifgrad's threads call them side by
    # side) and the NumPy error model (no zero test per division, so loops
    # vectorise), as @njit(nogil=True, error_model="numpy") does for the JIT.
    init = compiler.Flags.__init__

    def flags_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.release_gil = True
        self.error_model = "numpy"
    compiler.Flags.__init__ = flags_init
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cc.compile()
    finally:
        compiler.Flags.__init__ = init
    meta = {"source_hash": digest, "python": sys.version.split()[0],
            "exports": len(_exports()), "seconds": round(time.perf_counter() - t0, 1)}
    write_meta(meta, out_dir)
    if verbose:
        print(f"lifgrad: compiled {meta['exports']} kernels ahead of time into {out_dir} "
              f"({meta['seconds']} s)")
    return meta


_state = {"module": False}


def compiled():
    """The ahead-of-time module, or None (absent, stale, or LIFGRAD_KERNELS=jit)."""
    mod = _state["module"]
    if mod is not False:
        return mod
    mode = os.environ.get("LIFGRAD_KERNELS", "auto").strip().lower()
    mod, why = None, None
    if mode not in ("auto", "aot", "jit"):
        raise ValueError(f"LIFGRAD_KERNELS: expected 'auto', 'aot' or 'jit', got {mode!r}")
    if mode != "jit":
        try:
            meta = read_meta()
            if not meta:
                raise OSError("no _compiled.json")
            if meta.get("source_hash") != source_hash():
                why = "it was built from older kernel sources"
            else:
                mod = importlib.import_module(f"{__package__}.{MODULE}")
        except (OSError, ValueError, ImportError) as e:
            why = f"it is not built ({type(e).__name__})"
        if mod is None and mode == "aot":
            raise RuntimeError(f"LIFGRAD_KERNELS=aot: the compiled kernels cannot be used: "
                               f"{why}; run `python -m lifgrad.kernels.aot`")
        if mod is None and why and why.startswith("it was built"):
            print(f"lifgrad: not using the compiled kernels ({why}); compiling just in time "
                  f"instead -- `python -m lifgrad.kernels.aot` (or `make`) rebuilds them",
                  file=sys.stderr, flush=True)
    _state["module"] = mod
    return mod


def pick(name, key, arrays):
    """The kernel ``name`` for argument type ``key`` ("f4_u1", ...): the compiled
    copy when there is one and every array is C-contiguous, else Numba's JIT
    (imported here, on first need)."""
    mod = compiled()
    if mod is not None and all(a.flags.c_contiguous for a in arrays):
        fn = getattr(mod, f"{name}__{key}", None)
        if fn is not None:
            return fn
    from .compiling import watch
    watch()
    src = importlib.import_module(f"{__package__}."
                                  f"{'ops_kernels' if name in _OPS else 'scan_kernels'}")
    return getattr(src, name)


_OPS = ("event_matmul_idx", "event_wgrad_parts", "_adam_range")


if __name__ == "__main__":
    build()
