"""Plain NumPy forward and adjoint scans of one LIF layer: the spec in code.

Every function here has a compiled twin with the same name and argument order
in ``lifgrad/kernels/cpu.py``; tests compare them.  Arrays are ``(T, B, N)``
with time first; parameters are per-neuron arrays ``(N,)``.  Outputs are
written into the arrays passed in (the caller allocates), exactly as the
kernels do.  Indices are 0-based in code: ``u[t]`` is ``u_{t+1}`` of the
derivation, and the initial state ``u_0`` is the argument ``u0``.

Equation tags refer to ``derivations/lif_adjoint.md``.

Surrogate arguments ``sg = (code, p0, p1, p2, scale, clip_lo, clip_hi)`` are
the numbers of :meth:`lifgrad.surrogates.Surrogate.kernel_args`.
"""
from __future__ import annotations

import numpy as np

from .surrogates import FAMILIES

SUBTRACT, ZERO, NONE = 0, 1, 2


def surrogate_phi(x, v, sg):
    """``phi = scale * clip(g(x), lo, hi)``  (A7).

    Evaluated in float64 and rounded once to the layer's dtype (the kernels
    do the same, so float32 results agree to rounding)."""
    code, p0, p1, p2, scale, lo, hi = sg
    x64 = x.astype(np.float64)
    g = FAMILIES[int(code)].g_np(x64, v.astype(np.float64), p0, p1, p2)
    return (scale * np.clip(g, lo, hi)).astype(x.dtype)


def surrogate_primitive(x, sg):
    """``G(x)`` (A6), evaluated in float64 and rounded once to the layer's dtype."""
    code, p0, p1, p2 = sg[:4]
    x64 = x.astype(np.float64)
    return np.asarray(FAMILIES[int(code)].G_np(x64, np.zeros_like(x64), p0, p1, p2),
                      dtype=x.dtype)


def lif_forward_scan(I, static, u0, alpha, theta, gamma, u_reset,
                     reset, strict, smooth, sg, u, v):
    """Forward simulation, (A2)-(A6).

    I: (T, B, N), or (1, B, N) with ``static`` (the same current every step).
    u0: (B, N) initial membrane; v_0 = 0.  Writes u (pre-reset) and v.
    """
    T = u.shape[0]
    u_prev = u0
    v_prev = np.zeros_like(u0)
    for t in range(T):
        I_t = I[0] if static else I[t]
        if reset == SUBTRACT:                                             # (A2)
            u_t = alpha * u_prev + I_t - gamma * v_prev
        elif reset == ZERO:                                               # (A3)
            u_t = alpha * ((1 - v_prev) * u_prev + v_prev * u_reset) + I_t
        else:                                                             # (A4)
            u_t = alpha * u_prev + I_t
        x = u_t - theta
        if smooth:
            v_t = surrogate_primitive(x, sg)                              # (A6)
        elif strict:
            v_t = (x > 0).astype(u.dtype)                                 # (A5), strict
        else:
            v_t = (x >= 0).astype(u.dtype)                                # (A5)
        u[t] = u_t
        v[t] = v_t
        u_prev, v_prev = u[t], v[t]


def lif_backward_scan(u, v, u0, dv, du, has_dv, has_du, static,
                      alpha, theta, gamma, u_reset, reset, detach, sg,
                      dI, acc_alpha, acc_theta, acc_rv, du0):
    """Reverse-time adjoint scan, (A8)-(A18).

    dv, du: dL/dv_t and dL/du_t (delta_t, eps_t), each (T, B, N), read only
    when ``has_dv``/``has_du``.  Writes:

    dI        (T, B, N) = ubar_t, or (1, B, N) = sum_t ubar_t when ``static``  (A13), (A21)
    acc_alpha (B, N)    = sum_t ubar_t * (state multiplied by alpha)           (A14)
    acc_theta (B, N)    = -sum_t phi_t * vbar_t                                (A15)
    acc_rv    (B, N)    = sum_t ubar_{t+1} * v_t   (reset terms of (A15)-(A17))
    du0       (B, N)    = leak_0 * ubar_1 = alpha * ubar_1                     (A18)
    """
    T = u.shape[0]
    ubar_next = np.zeros_like(u0)                     # ubar_{T+1} = 0
    acc_alpha[...] = 0
    acc_theta[...] = 0
    acc_rv[...] = 0
    if static:
        dI[...] = 0
    for t in range(T - 1, -1, -1):
        u_t, v_t = u[t], v[t]
        # reset_v_t and leak_t, table (A10a-c); detach drops reset_v_t (A11)
        if reset == SUBTRACT:
            leak = alpha
            reset_v = -gamma * ubar_next
        elif reset == ZERO:
            leak = alpha * (1 - v_t)
            reset_v = alpha * (u_reset - u_t) * ubar_next
        else:
            leak = alpha
            reset_v = 0.0
        if detach:
            reset_v = 0.0
        delta = dv[t] if has_dv else 0.0
        eps = du[t] if has_du else 0.0
        vbar = delta + reset_v                                            # (A8)
        phi = surrogate_phi(u_t - theta, v_t, sg)                         # (A7)
        ubar = eps + phi * vbar + leak * ubar_next                        # (A9)
        # parameter gradients
        u_prev = u[t - 1] if t > 0 else u0
        v_prev = v[t - 1] if t > 0 else np.zeros_like(u0)
        if reset == ZERO:
            acc_alpha += ubar * ((1 - v_prev) * u_prev + v_prev * u_reset)  # (A14b)
        else:
            acc_alpha += ubar * u_prev                                    # (A14a)
        acc_theta -= phi * vbar                                           # (A15)
        acc_rv += ubar_next * v_t                                         # (A15)-(A17)
        if static:
            dI[0] += ubar                                                 # (A21)
        else:
            dI[t] = ubar                                                  # (A13)
        ubar_next = ubar
    du0[...] = alpha * ubar_next                                          # (A18)
