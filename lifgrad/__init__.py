"""lifgrad: exact surrogate-gradient BPTT for spiking networks, by a hand-derived adjoint.

Public API (re-exports only).  See README.md for a tour and
``derivations/`` for the equations the code cites as (A*) and (C*).

Importing lifgrad changes nothing in the process: no environment variable,
no allocator or thread setting.  Its kernels and products run on its own
threads (``lifgrad.parallel``; ``lifgrad.set_num_threads``), with BLAS held to
one thread only while lifgrad's calls run.
"""
from . import surrogates
from .config import LIFConfig, LIFParams, alpha_from_tau, tau_from_alpha
from .functional import LIFGrads, Trace, lif_backward, lif_forward
from .parallel import num_threads, set_num_threads

__version__ = "0.1.0"

# submodules reachable as attributes (``lg.network``, ``lg.losses``, ...),
# imported on first use so that ``import lifgrad`` stays light
_SUBMODULES = ("network", "losses", "optim", "encode", "data", "train", "theory", "check",
               "gradcheck", "diagnose", "sweep", "plot", "nir", "reference", "functional", "config", "parallel", "products",
               "workspace", "device", "verify", "kernels")


def __getattr__(name):
    if name in _SUBMODULES:
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'lifgrad' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES))

__all__ = ["surrogates", "LIFConfig", "LIFParams", "alpha_from_tau", "tau_from_alpha",
           "lif_forward", "lif_backward", "Trace", "LIFGrads", "num_threads", "set_num_threads",
           "__version__"]
