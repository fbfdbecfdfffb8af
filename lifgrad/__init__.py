"""lifgrad: exact surrogate-gradient BPTT for spiking networks, by a hand-derived adjoint.

Public API (re-exports only).  See README.md for a tour and
``derivations/`` for the equations the code cites as (A*) and (C*).
"""
from . import surrogates
from .config import LIFConfig, LIFParams, alpha_from_tau, tau_from_alpha
from .functional import LIFGrads, Trace, lif_backward, lif_forward

__version__ = "0.1.0"

__all__ = ["surrogates", "LIFConfig", "LIFParams", "alpha_from_tau", "tau_from_alpha",
           "lif_forward", "lif_backward", "Trace", "LIFGrads", "__version__"]
