"""The functional core: ``lif_forward`` and ``lif_backward`` for one LIF layer.

These validate at the boundary, allocate outputs, and dispatch to a backend
(``reference`` NumPy or ``cpu`` Numba).  They are pure: no argument is
mutated, and the backward reads only the :class:`Trace` the forward returned
(plus the parameters and configuration, which are part of the contract).

Equations: ``derivations/lif_adjoint.md``; gradient reductions (A13)-(A19).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import reference
from .config import LIFConfig, LIFParams

__all__ = ["lif_forward", "lif_backward", "Trace", "LIFGrads"]


class Trace(NamedTuple):
    """What the backward needs: the pre-reset membrane ``u`` and spikes ``v``
    (both ``(T, B, N)``), the initial state ``u0`` as a ``(B, N)`` array, whether
    the input was static, and the shape the caller gave for ``u0``."""

    u: np.ndarray
    v: np.ndarray
    u0: np.ndarray
    static: bool
    u0_shape: tuple | None


class LIFGrads(NamedTuple):
    """Gradients of one LIF layer, each shaped like its argument.

    ``I`` is ``(T, B, N)``, or ``(B, N)`` for a static input (A21).  ``gamma``
    is ``None`` when gamma is tied to theta (its effect is inside ``theta``,
    (A15)).  ``u0`` is shaped like the ``u0`` given to the forward, ``(B, N)``
    when none was given.
    """

    I: np.ndarray
    alpha: np.ndarray
    theta: np.ndarray
    gamma: np.ndarray | None
    u_reset: np.ndarray
    u0: np.ndarray


def _backend(config):
    if config.backend == "reference":
        return reference
    from .kernels import cpu
    return cpu


def _float_dtype(arg, a, config):
    if config.dtype is not None:
        return np.dtype(config.dtype)
    if a.dtype in (np.float32, np.float64):
        return a.dtype
    if a.dtype.kind in "biu":
        return np.dtype(np.float64)
    raise TypeError(f"{arg}: expected a float32 or float64 array (or integers/bools), "
                    f"got dtype {a.dtype}")


def _check_finite(arg, a):
    if not np.all(np.isfinite(a)):
        bad = np.argwhere(~np.isfinite(a))[0]
        raise ValueError(f"{arg}: contains NaN or Inf (first at index {tuple(int(i) for i in bad)})")


def _as_config(config):
    if config is None:
        return LIFConfig()
    if not isinstance(config, LIFConfig):
        raise TypeError(f"config: expected a lifgrad.LIFConfig, got {type(config).__name__}")
    return config


def _as_params(params):
    if isinstance(params, LIFParams):
        return params
    if isinstance(params, dict):
        unknown = set(params) - set(LIFParams._fields)
        if unknown:
            raise ValueError(f"params: unknown key(s) {sorted(unknown)}; valid: "
                             f"{list(LIFParams._fields)}")
        return LIFParams(**params)
    raise TypeError(f"params: expected a lifgrad.LIFParams or a dict, got {type(params).__name__}")


def _resolve_u0(u0, B, N, dtype):
    if u0 is None:
        return np.zeros((B, N), dtype), None
    a = np.asarray(u0)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"u0: expected real numbers, got dtype {a.dtype}")
    if a.shape not in ((), (N,), (B, N)):
        raise ValueError(f"u0: expected a scalar or shape ({N},) or ({B}, {N}), got {a.shape}")
    _check_finite("u0", a)
    return np.ascontiguousarray(np.broadcast_to(a, (B, N)), dtype=dtype), a.shape


def lif_forward(I, params=LIFParams(), config=None, u0=None, T=None):
    """Simulate one LIF layer; return ``(v, trace)``.

    I:      input current ``(T, B, N)``, or ``(B, N)`` together with ``T=`` for a
            static input (the same current at every step, (A21)).
    params: :class:`LIFParams` (or a dict of its fields).
    config: :class:`LIFConfig` (default: subtract reset, hard forward, atan).
    u0:     initial membrane, scalar, ``(N,)`` or ``(B, N)``; default 0.

    ``v`` is ``(T, B, N)`` in the input's float dtype; ``trace`` feeds
    :func:`lif_backward`.  Equations (A2)-(A6).
    """
    config = _as_config(config)
    params = _as_params(params)
    I = np.asarray(I)
    dtype = _float_dtype("I", I, config)
    if I.ndim == 3:
        if T is not None and T != I.shape[0]:
            raise ValueError(f"T: given {T} but I has {I.shape[0]} time steps")
        static = False
        T = I.shape[0]
    elif I.ndim == 2:
        if T is None or isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
            raise ValueError(f"T: a static input I of shape {I.shape} needs an integer T >= 1, "
                             f"got {T!r}")
        static = True
        T = int(T)
    else:
        raise ValueError(f"I: expected shape (T, B, N) or a static (B, N) with T=, got {I.shape}")
    if 0 in I.shape:
        raise ValueError(f"I: every dimension must be non-empty, got shape {I.shape}")
    _check_finite("I", I)
    B, N = I.shape[-2:]
    resolved = params.resolved(N, dtype)
    u0_full, u0_shape = _resolve_u0(u0, B, N, dtype)
    I3 = np.ascontiguousarray(I[None] if static else I, dtype=dtype)
    u, v = _forward_impl(I3, static, T, resolved, config, u0_full)
    return v, Trace(u, v, u0_full, static, u0_shape)


def _forward_impl(I3, static, T, resolved, config, u0_full):
    """Unvalidated forward on resolved arrays (used by networks)."""
    B, N = I3.shape[1:]
    u = np.empty((T, B, N), I3.dtype)
    v = np.empty((T, B, N), I3.dtype)
    alpha, theta, gamma, u_reset = resolved
    _backend(config).lif_forward_scan(
        I3, static, u0_full, alpha, theta, gamma, u_reset,
        config.reset_code, config.strict, config.forward == "smooth",
        config.surrogate.kernel_args(), u, v)
    return u, v


def _check_adjoint(arg, a, shape, dtype):
    if a is None:
        return None
    a = np.asarray(a)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{arg}: expected real numbers, got dtype {a.dtype}")
    if a.shape != shape:
        raise ValueError(f"{arg}: expected shape {shape} (T, B, N) like the trace, got {a.shape}")
    _check_finite(arg, a)
    return np.ascontiguousarray(a, dtype=dtype)


def lif_backward(trace, params=LIFParams(), config=None, dv=None, du=None):
    """Adjoint of :func:`lif_forward`: gradients given ``dv = dL/dv``, ``du = dL/du``.

    ``dv`` and ``du`` are ``(T, B, N)`` (either may be ``None`` for zero).
    Returns :class:`LIFGrads`; equations (A8)-(A19).  ``params`` and ``config``
    must be the ones the forward used.
    """
    config = _as_config(config)
    params = _as_params(params)
    if not isinstance(trace, Trace):
        raise TypeError(f"trace: expected the Trace returned by lif_forward, got "
                        f"{type(trace).__name__}")
    T, B, N = trace.u.shape
    dtype = trace.u.dtype
    dv = _check_adjoint("dv", dv, (T, B, N), dtype)
    du = _check_adjoint("du", du, (T, B, N), dtype)
    resolved = params.resolved(N, dtype)
    parts = _backward_impl(trace, resolved, config, dv, du)
    return reduce_grads(parts, params, trace)


def _backward_impl(trace, resolved, config, dv, du):
    """Unvalidated backward; returns the per-(b, n) partial sums."""
    T, B, N = trace.u.shape
    dtype = trace.u.dtype
    dummy = np.zeros((1, 1, 1), dtype)
    dI = np.empty((1 if trace.static else T, B, N), dtype)
    acc_alpha, acc_theta, acc_rv, du0 = (np.empty((B, N), dtype) for _ in range(4))
    alpha, theta, gamma, u_reset = resolved
    _backend(config).lif_backward_scan(
        trace.u, trace.v, trace.u0,
        dummy if dv is None else dv, dummy if du is None else du,
        dv is not None, du is not None, trace.static,
        alpha, theta, gamma, u_reset, config.reset_code, config.detach_reset,
        config.surrogate.kernel_args(),
        dI, acc_alpha, acc_theta, acc_rv, du0)
    return _Parts(dI[0] if trace.static else dI, acc_alpha, acc_theta, acc_rv, du0,
                  config.reset, alpha)


class _Parts(NamedTuple):
    dI: np.ndarray
    acc_alpha: np.ndarray
    acc_theta: np.ndarray
    acc_rv: np.ndarray
    du0: np.ndarray
    reset: str
    alpha: np.ndarray


def _like(grad_n, value):
    """Reduce a per-neuron gradient to the shape of the parameter (A19)."""
    return grad_n.sum() if np.ndim(value) == 0 else grad_n


def reduce_grads(parts, params, trace):
    """Sum the kernels' per-(b, n) partials into parameter gradients (A14)-(A19)."""
    rv = parts.acc_rv.sum(axis=0)
    theta_n = parts.acc_theta.sum(axis=0)
    zeros = np.zeros_like(rv)
    if parts.reset == "subtract":
        if params.tied:
            theta_n = theta_n - rv                                        # (A15)
            gamma_n = None
        else:
            gamma_n = -rv                                                 # (A16)
        u_reset_n = zeros
    else:
        gamma_n = None if params.tied else zeros
        u_reset_n = parts.alpha * rv if parts.reset == "zero" else zeros  # (A17)
    du0 = parts.du0
    if trace.u0_shape is not None and trace.u0_shape != du0.shape:
        du0 = du0.sum(axis=0) if trace.u0_shape == (du0.shape[1],) else du0.sum()
    return LIFGrads(
        I=parts.dI,
        alpha=_like(parts.acc_alpha.sum(axis=0), params.alpha),
        theta=_like(theta_n, params.theta),
        gamma=None if gamma_n is None else _like(gamma_n, params.gamma),
        u_reset=_like(u_reset_n, params.u_reset),
        u0=du0,
    )
