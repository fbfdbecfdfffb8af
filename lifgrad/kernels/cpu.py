"""Numba CPU kernels: the compiled twins of ``lifgrad/reference.py``.

Same names, same argument order, same outputs.  Parallel over (batch row,
block of neurons); the time loop runs inside one compiled pass per direction
and keeps the state of a block of neurons in small local arrays, so every
time step reads and writes one contiguous run of each ``(T, B, N)`` array.

Surrogate formulas come from the table in ``lifgrad/surrogates.py``, bound to
``math`` and compiled here; ``_g``/``_G`` dispatch on the family's integer code.
(A stale-cache note: Numba's on-disk cache of a kernel does not notice edits to
``surrogates.py``; ``make clean`` removes the caches.)
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .. import surrogates as _sg

_JIT = dict(cache=True, nogil=True)
BLOCK = 512  # neurons per parallel task


@njit(**_JIT)
def _step(z):
    return 1.0 if z >= 0 else 0.0


_NS = dict(_sg._MATH_NS, step=_step)


def _compile(formula):
    if formula is None:
        return None
    return njit(**_JIT)(_sg._bind(formula, _NS))


_F = {f.name: (_compile(f.g), _compile(f.G)) for f in _sg.FAMILIES}
_g_sigmoid, _G_sigmoid = _F["sigmoid"]
_g_fast_sigmoid, _G_fast_sigmoid = _F["fast_sigmoid"]
_g_fast_sigmoid_norm, _G_fast_sigmoid_norm = _F["fast_sigmoid_norm"]
_g_atan, _G_atan = _F["atan"]
_g_atan_pi, _G_atan_pi = _F["atan_pi"]
_g_rect, _G_rect = _F["rect"]
_g_triangle, _G_triangle = _F["triangle"]
_g_laplace, _G_laplace = _F["laplace"]
_g_gaussian, _G_gaussian = _F["gaussian"]
_g_straight_through = _F["straight_through"][0]
_g_spike_operator = _F["spike_operator"][0]
_g_zero = _F["zero"][0]


@njit(**_JIT)
def _g(x, v, sg):
    """Raw derivative of the family with code ``sg[0]`` (codes: surrogates.FAMILIES)."""
    c = sg[0]
    a, b, d = sg[1], sg[2], sg[3]
    if c == 0:
        return _g_sigmoid(x, v, a, b, d)
    if c == 1:
        return _g_fast_sigmoid(x, v, a, b, d)
    if c == 2:
        return _g_fast_sigmoid_norm(x, v, a, b, d)
    if c == 3:
        return _g_atan(x, v, a, b, d)
    if c == 4:
        return _g_atan_pi(x, v, a, b, d)
    if c == 5:
        return _g_rect(x, v, a, b, d)
    if c == 6:
        return _g_triangle(x, v, a, b, d)
    if c == 7:
        return _g_laplace(x, v, a, b, d)
    if c == 8:
        return _g_gaussian(x, v, a, b, d)
    if c == 9:
        return _g_straight_through(x, v, a, b, d)
    if c == 10:
        return _g_spike_operator(x, v, a, b, d)
    if c == 11:
        return _g_zero(x, v, a, b, d)
    return np.nan


@njit(**_JIT)
def _G(x, sg):
    """Primitive of the family with code ``sg[0]``; NaN where there is none."""
    c = sg[0]
    a, b, d = sg[1], sg[2], sg[3]
    if c == 0:
        return _G_sigmoid(x, 0.0, a, b, d)
    if c == 1:
        return _G_fast_sigmoid(x, 0.0, a, b, d)
    if c == 2:
        return _G_fast_sigmoid_norm(x, 0.0, a, b, d)
    if c == 3:
        return _G_atan(x, 0.0, a, b, d)
    if c == 4:
        return _G_atan_pi(x, 0.0, a, b, d)
    if c == 5:
        return _G_rect(x, 0.0, a, b, d)
    if c == 6:
        return _G_triangle(x, 0.0, a, b, d)
    if c == 7:
        return _G_laplace(x, 0.0, a, b, d)
    if c == 8:
        return _G_gaussian(x, 0.0, a, b, d)
    return np.nan


@njit(**_JIT)
def _phi(x, v, sg):
    """``scale * clip(g, lo, hi)``  (A7)."""
    g = _g(x, v, sg)
    return sg[4] * min(max(g, sg[5]), sg[6])


@njit(parallel=True, **_JIT)
def lif_forward_scan(I, static, u0, alpha, theta, gamma, u_reset,
                     reset, strict, smooth, sg, u, v):
    T, B, N = u.shape
    nblk = (N + BLOCK - 1) // BLOCK
    one = np.ones(1, u.dtype)[0]
    for task in prange(B * nblk):
        b = task // nblk
        n0 = (task % nblk) * BLOCK
        n1 = min(N, n0 + BLOCK)
        m = n1 - n0
        up = np.empty(m, u.dtype)
        vp = np.zeros(m, u.dtype)
        for k in range(m):
            up[k] = u0[b, n0 + k]
        for t in range(T):
            ti = 0 if static else t
            for k in range(m):
                n = n0 + k
                a = alpha[n]
                if reset == 0:                                            # (A2)
                    ut = a * up[k] + I[ti, b, n] - gamma[n] * vp[k]
                elif reset == 1:                                          # (A3)
                    ut = a * ((one - vp[k]) * up[k] + vp[k] * u_reset[n]) + I[ti, b, n]
                else:                                                     # (A4)
                    ut = a * up[k] + I[ti, b, n]
                x = ut - theta[n]
                if smooth:
                    vt = _G(x, sg)                                        # (A6)
                elif strict:
                    vt = 1.0 if x > 0 else 0.0                            # (A5) strict
                else:
                    vt = 1.0 if x >= 0 else 0.0                           # (A5)
                u[t, b, n] = ut
                v[t, b, n] = vt
                up[k] = ut
                vp[k] = v[t, b, n]


@njit(parallel=True, **_JIT)
def lif_backward_scan(u, v, u0, dv, du, has_dv, has_du, static,
                      alpha, theta, gamma, u_reset, reset, detach, sg,
                      dI, acc_alpha, acc_theta, acc_rv, du0):
    T, B, N = u.shape
    nblk = (N + BLOCK - 1) // BLOCK
    one = np.ones(1, u.dtype)[0]
    zero = one - one
    for task in prange(B * nblk):
        b = task // nblk
        n0 = (task % nblk) * BLOCK
        n1 = min(N, n0 + BLOCK)
        m = n1 - n0
        ubn = np.zeros(m, u.dtype)      # ubar_{t+1}; ubar_{T+1} = 0
        a_al = np.zeros(m, u.dtype)
        a_th = np.zeros(m, u.dtype)
        a_rv = np.zeros(m, u.dtype)
        a_dI = np.zeros(m, u.dtype)
        ph = np.empty(m, u.dtype)       # phi_t of the block, rounded to the dtype
        for t in range(T - 1, -1, -1):
            for k in range(m):
                n = n0 + k
                ph[k] = _phi(u[t, b, n] - theta[n], v[t, b, n], sg)       # (A7)
            for k in range(m):
                n = n0 + k
                a = alpha[n]
                ut = u[t, b, n]
                vt = v[t, b, n]
                un = ubn[k]
                if reset == 0:                                            # (A10a)
                    leak = a
                    rv = -gamma[n] * un
                elif reset == 1:                                          # (A10b)
                    leak = a * (one - vt)
                    rv = a * (u_reset[n] - ut) * un
                else:                                                     # (A10c)
                    leak = a
                    rv = zero
                if detach:                                                # (A11)
                    rv = zero
                delta = dv[t, b, n] if has_dv else zero
                eps = du[t, b, n] if has_du else zero
                vbar = delta + rv                                         # (A8)
                phi = ph[k]
                ubar = eps + phi * vbar + leak * un                       # (A9)
                if t > 0:
                    upr = u[t - 1, b, n]
                    vpr = v[t - 1, b, n]
                else:
                    upr = u0[b, n]
                    vpr = zero
                if reset == 1:
                    a_al[k] += ubar * ((one - vpr) * upr + vpr * u_reset[n])  # (A14b)
                else:
                    a_al[k] += ubar * upr                                 # (A14a)
                a_th[k] -= phi * vbar                                     # (A15)
                a_rv[k] += un * vt                                        # (A15)-(A17)
                if static:
                    a_dI[k] += ubar                                       # (A21)
                else:
                    dI[t, b, n] = ubar                                    # (A13)
                ubn[k] = ubar
        for k in range(m):
            n = n0 + k
            acc_alpha[b, n] = a_al[k]
            acc_theta[b, n] = a_th[k]
            acc_rv[b, n] = a_rv[k]
            du0[b, n] = alpha[n] * ubn[k]                                 # (A18)
            if static:
                dI[0, b, n] = a_dI[k]
