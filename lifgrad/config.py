"""Layer configuration (static, hashable) and neuron parameters (arrays).

The split follows DESIGN.md: everything that changes *which* computation runs
(reset mode, detach flag, strictness, forward mode, surrogate, backend, dtype)
is a frozen, validated :class:`LIFConfig`; everything that is differentiated
is a plain array in :class:`LIFParams`.  Equations: SPEC section 2 and
``derivations/lif_adjoint.md`` (A2)-(A7).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np

from . import surrogates as _sg

__all__ = ["LIFConfig", "LIFParams", "RESETS", "FORWARDS", "BACKENDS",
           "alpha_from_tau", "tau_from_alpha"]

RESETS = ("subtract", "zero", "none")
FORWARDS = ("hard", "smooth")
BACKENDS = ("cpu", "reference")
_RESET_ALIASES = {"hard": "zero"}
DTYPES = (np.float32, np.float64)


def _choice(arg, value, valid, aliases=None):
    if aliases and value in aliases:
        value = aliases[value]
    if not isinstance(value, str) or value not in valid:
        raise ValueError(f"{arg}: expected one of {', '.join(map(repr, valid))}, got {value!r}")
    return value


def _flag(arg, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{arg}: expected True or False, got {value!r}")
    return bool(value)


@dataclass(frozen=True)
class LIFConfig:
    """Static configuration of one LIF layer.

    reset:        'subtract' (default), 'zero' (alias 'hard') or 'none'     (A2)-(A4)
    detach_reset: drop the gradient through the reset's spike               (A11)
    strict:       fire at u > theta instead of u >= theta (snnTorch, Norse)  (A5)
    forward:      'hard' (Heaviside) or 'smooth' (surrogate primitive)      (A5), (A6)
    surrogate:    a name from :func:`lifgrad.surrogates.names` or a Surrogate
    backend:      'cpu' (Numba, default) or 'reference' (NumPy)
    dtype:        None (follow the input; integers/bools become float64),
                  'float32' or 'float64'
    """

    reset: str = "subtract"
    detach_reset: bool = False
    strict: bool = False
    forward: str = "hard"
    surrogate: _sg.Surrogate = field(default_factory=lambda: _sg.get("atan"))
    backend: str = "cpu"
    dtype: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "reset", _choice("reset", self.reset, RESETS, _RESET_ALIASES))
        object.__setattr__(self, "forward", _choice("forward", self.forward, FORWARDS))
        object.__setattr__(self, "backend", _choice("backend", self.backend, BACKENDS))
        _flag("detach_reset", self.detach_reset)
        _flag("strict", self.strict)
        object.__setattr__(self, "surrogate", _sg.get(self.surrogate))
        if self.dtype is not None:
            try:
                dt = np.dtype(self.dtype)
            except TypeError:
                dt = None
            if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
                raise ValueError(f"dtype: expected None, 'float32' or 'float64', got {self.dtype!r}")
            object.__setattr__(self, "dtype", dt.name)
        if self.forward == "smooth" and not self.surrogate.has_primitive:
            raise ValueError(f"forward='smooth' needs a surrogate with a primitive; "
                             f"{self.surrogate.name!r} has none")

    def replace(self, **changes) -> "LIFConfig":
        return replace(self, **changes)

    @property
    def reset_code(self) -> int:
        return RESETS.index(self.reset)


def _as_param(arg, value, n, dtype, lo=-math.inf, hi=math.inf):
    """Validate a scalar-or-per-neuron parameter; return (array (n,), was_scalar)."""
    a = np.asarray(value)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{arg}: expected a real number or an array of shape ({n},), "
                        f"got dtype {a.dtype}")
    if a.ndim == 0:
        scalar = True
        full = np.full(n, a, dtype=dtype)
    elif a.shape == (n,):
        scalar = False
        full = a.astype(dtype)
    else:
        raise ValueError(f"{arg}: expected a scalar or shape ({n},), got shape {a.shape}")
    if not np.all(np.isfinite(full)):
        raise ValueError(f"{arg}: contains NaN or Inf")
    if np.any(full < lo) or np.any(full > hi):
        bad = full[(full < lo) | (full > hi)][0]
        raise ValueError(f"{arg}: expected values in [{lo}, {hi}], got {bad}")
    return np.ascontiguousarray(full), scalar


class LIFParams(NamedTuple):
    """Differentiable neuron parameters of one LIF layer.

    Each is a scalar or an array of shape (N,).  ``gamma=None`` ties the reset
    strength to the threshold (gamma = theta, the SPEC default), so a learned
    threshold also moves the reset, (A15).
    """

    alpha: object = 0.9
    theta: object = 1.0
    gamma: object = None
    u_reset: object = 0.0

    @property
    def tied(self) -> bool:
        return self.gamma is None

    def resolved(self, n: int, dtype):
        """Per-neuron arrays ``(alpha, theta, gamma, u_reset)`` of shape (n,), validated."""
        alpha, _ = _as_param("alpha", self.alpha, n, dtype, 0.0, 1.0)
        theta, _ = _as_param("theta", self.theta, n, dtype)
        if self.gamma is None:
            gamma = theta
        else:
            gamma, _ = _as_param("gamma", self.gamma, n, dtype)
        u_reset, _ = _as_param("u_reset", self.u_reset, n, dtype)
        return alpha, theta, gamma, u_reset


def alpha_from_tau(tau, dt=1.0):
    """Decay per step ``alpha = exp(-dt/tau)`` for a time constant ``tau`` (same unit as dt)."""
    tau = np.asarray(tau, dtype=float)
    if np.any(~np.isfinite(tau)) or np.any(tau <= 0):
        raise ValueError(f"tau: expected finite values > 0, got {tau}")
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt: expected a finite number > 0, got {dt}")
    return np.exp(-dt / tau)


def tau_from_alpha(alpha, dt=1.0):
    """Inverse of :func:`alpha_from_tau`: ``tau = -dt / log(alpha)`` for alpha in (0, 1)."""
    alpha = np.asarray(alpha, dtype=float)
    if np.any(~(alpha > 0)) or np.any(~(alpha < 1)):
        raise ValueError(f"alpha: expected values in (0, 1) to define a time constant, got {alpha}")
    return -dt / np.log(alpha)
