"""lifgrad: exact surrogate-gradient BPTT for spiking networks, by a hand-derived adjoint.

Public API (re-exports only).  See README.md for a tour and
``derivations/`` for the equations the code cites as (A*) and (C*).
"""
import os as _os

# OpenMP threads that spin between Numba's parallel regions fight BLAS threads for
# the cores: alternating a small kernel with a small matrix product took 41 ms
# instead of 1.2 ms per step on 2 cores.  A passive wait policy avoids it; it must
# be set before the OpenMP runtime starts (an explicit user setting wins).
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# OpenBLAS workers spin for ~2^28 cycles after every product by default and take
# the cores from the Numba kernel that follows (a 13 ms backward scan took 22-27 ms
# right after a product); 2^4 cycles lets them sleep.  Read when OpenBLAS loads,
# so it only takes effect if lifgrad is imported before numpy.
_os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

from . import _malloc  # noqa: E402

_malloc.tune()     # keep step-sized buffers mapped between steps (see _malloc.py)

from . import surrogates  # noqa: E402
from .config import LIFConfig, LIFParams, alpha_from_tau, tau_from_alpha  # noqa: E402
from .functional import LIFGrads, Trace, lif_backward, lif_forward  # noqa: E402

__version__ = "0.1.0"

__all__ = ["surrogates", "LIFConfig", "LIFParams", "alpha_from_tau", "tau_from_alpha",
           "lif_forward", "lif_backward", "Trace", "LIFGrads", "__version__"]
