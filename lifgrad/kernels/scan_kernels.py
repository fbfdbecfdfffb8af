"""The compiled scans of the LIF cell: the Numba source of the CPU kernels.

These are the compiled twins of ``lifgrad/reference.py``'s scans, written as
serial kernels over a range of tasks (a task = one batch row x one block of
BLOCK neurons): ``lifgrad.kernels.cpu`` keeps the reference twins' names and
arguments and spreads the tasks over lifgrad's threads (:mod:`lifgrad.parallel`).
The time loop runs inside one compiled pass per direction and keeps the state
of a block of neurons in small local arrays, so every time step reads and
writes one contiguous run of each ``(T, B, N)`` array.

Nothing imports this module at run time when the kernels were compiled ahead
of time (``python -m lifgrad.kernels.aot``, run by ``make``): the compiled
extension ``lifgrad.kernels._compiled`` holds them, and Numba is not loaded.
Without it (or when this source is newer), the same functions are compiled
just in time by Numba and cached on disk.

Surrogate formulas come from the table in ``lifgrad/surrogates.py``, bound to
``math`` and compiled here; ``_phi_block``/``_G_block`` dispatch on the
family's integer code, outside the element loops.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .. import surrogates as _sg
from .constants import (ACC_RVA, ACC_UBIAS, ACC_UMIN, BLOCK, FWD_SMOOTH, FWD_STOCHASTIC,
                        FWD_STOCHASTIC_PHI, M_ADAPT, M_ADAPT_CURRENT, M_DECAY_IN, M_DETACH,
                        M_FORWARD, M_NORM, M_ONE,
                        M_RESET, M_RESET_THETA, M_SG_LIVE, M_SPIKES, M_STRICT, M_SYN,
                        M_THETA_GRAD, M_CLIP, N_ACC,
                        P_UBIAS, P_UMIN, R_NONE, R_SUBTRACT, R_ZERO, TG_NONE, TG_RATIO, TG_SHIFT)

# error_model="numpy": a float division by zero gives inf/nan instead of raising,
# so the loops carry no zero test and LLVM vectorises them (the surrogate pass
# of the backward scan took 2 ms of 8 with the Python error model)
_JIT = dict(cache=True, nogil=True, error_model="numpy")     # (aot.py builds with the same)


@njit(**_JIT)
def _step(z):
    return 1.0 if z >= 0 else 0.0


_NS = dict(_sg.MATH_NS, step=_step)


def _compile(formula):
    if formula is None:
        return None
    return njit(**_JIT)(_sg.bind(formula, _NS))


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
_g_sign_step = _F["sign_step"][0]
_g_spike_rate_escape = _F["spike_rate_escape"][0]
_g_sparse_fast_sigmoid = _F["sparse_fast_sigmoid"][0]
_g_nonzero_sign_log_abs = _F["nonzero_sign_log_abs"][0]
_g_piecewise_leaky_relu = _F["piecewise_leaky_relu"][0]
_g_squarewave_fourier = _F["squarewave_fourier"][0]
_g_s2nn = _F["s2nn"][0]
_g_q_pseudo_spike, _G_q_pseudo_spike = _F["q_pseudo_spike"]
_g_leaky_k_relu = _F["leaky_k_relu"][0]
_g_fake_numerical_gradient = _F["fake_numerical_gradient"][0]
_g_log_tailed_relu = _F["log_tailed_relu"][0]
_g_rect_open, _G_rect_open = _F["rect_open"]
_g_tanh, _G_tanh = _F["tanh"]
_g_circ, _G_circ = _F["circ"]
_g_one_sided = _F["one_sided"][0]
_g_periodic_exponential = _F["periodic_exponential"][0]
_g_periodic_exponential_steep = _F["periodic_exponential_steep"][0]
_g_gaussian_shifted, _G_gaussian_shifted = _F["gaussian_shifted"]
_g_multi_gaussian, _G_multi_gaussian = _F["multi_gaussian"]
_g_logistic = _F["logistic"][0]
_g_refractory_logistic = _F["refractory_logistic"][0]


@njit(**_JIT)
def _flush_subnormal(out, m):
    """Subnormal values of out[:m] (below the dtype's smallest normal number)
    set to 0, as ``lifgrad.surrogates.flush_subnormal``."""
    _flush_like(out, out, m)


@njit(**_JIT)
def _flush_like(out, like, m):
    """:func:`_flush_subnormal` with the smallest normal number of ``like``'s
    float dtype (``out`` may be typed as spikes in a branch that stores reals)."""
    tiny = np.finfo(like.dtype).tiny
    for k in range(m):
        if abs(out[k]) < tiny:
            out[k] = 0


@njit(**_JIT)
def _phi_block(c, a, b, d, scale, lo, hi, x, v, out, m):
    """out[:m] = scale * clip(g(x[:m]), lo, hi) for family code c  (A7), x in
    float64, v the spikes in their storage type (real or uint8; the one family
    that reads v adds a float to it); the store into ``out`` rounds once to
    its dtype.  NaN for an
    unknown code.  The branch on the family sits outside the loops, so each
    loop is one plain pass with the formula inlined."""
    if c == 0:
        for k in range(m):
            out[k] = scale * min(max(_g_sigmoid(x[k], v[k], a, b, d), lo), hi)
    elif c == 1:
        for k in range(m):
            out[k] = scale * min(max(_g_fast_sigmoid(x[k], v[k], a, b, d), lo), hi)
    elif c == 2:
        for k in range(m):
            out[k] = scale * min(max(_g_fast_sigmoid_norm(x[k], v[k], a, b, d), lo), hi)
    elif c == 3:
        for k in range(m):
            out[k] = scale * min(max(_g_atan(x[k], v[k], a, b, d), lo), hi)
    elif c == 4:
        for k in range(m):
            out[k] = scale * min(max(_g_atan_pi(x[k], v[k], a, b, d), lo), hi)
    elif c == 5:
        for k in range(m):
            out[k] = scale * min(max(_g_rect(x[k], v[k], a, b, d), lo), hi)
    elif c == 6:
        for k in range(m):
            out[k] = scale * min(max(_g_triangle(x[k], v[k], a, b, d), lo), hi)
    elif c == 7:
        for k in range(m):
            out[k] = scale * min(max(_g_laplace(x[k], v[k], a, b, d), lo), hi)
    elif c == 8:
        for k in range(m):
            out[k] = scale * min(max(_g_gaussian(x[k], v[k], a, b, d), lo), hi)
    elif c == 9:
        for k in range(m):
            out[k] = scale * min(max(_g_straight_through(x[k], v[k], a, b, d), lo), hi)
    elif c == 10:
        for k in range(m):
            out[k] = scale * min(max(_g_spike_operator(x[k], v[k], a, b, d), lo), hi)
    elif c == 11:
        for k in range(m):
            out[k] = scale * min(max(_g_zero(x[k], v[k], a, b, d), lo), hi)
    elif c == 12:
        for k in range(m):
            out[k] = scale * min(max(_g_sign_step(x[k], v[k], a, b, d), lo), hi)
    elif c == 13:
        for k in range(m):
            out[k] = scale * min(max(_g_spike_rate_escape(x[k], v[k], a, b, d), lo), hi)
    elif c == 14:
        for k in range(m):
            out[k] = scale * min(max(_g_sparse_fast_sigmoid(x[k], v[k], a, b, d), lo), hi)
    elif c == 15:
        for k in range(m):
            out[k] = scale * min(max(_g_nonzero_sign_log_abs(x[k], v[k], a, b, d), lo), hi)
    elif c == 16:
        for k in range(m):
            out[k] = scale * min(max(_g_piecewise_leaky_relu(x[k], v[k], a, b, d), lo), hi)
    elif c == 17:
        for k in range(m):
            out[k] = scale * min(max(_g_squarewave_fourier(x[k], v[k], a, b, d), lo), hi)
    elif c == 18:
        for k in range(m):
            out[k] = scale * min(max(_g_s2nn(x[k], v[k], a, b, d), lo), hi)
    elif c == 19:
        for k in range(m):
            out[k] = scale * min(max(_g_q_pseudo_spike(x[k], v[k], a, b, d), lo), hi)
    elif c == 20:
        for k in range(m):
            out[k] = scale * min(max(_g_leaky_k_relu(x[k], v[k], a, b, d), lo), hi)
    elif c == 21:
        for k in range(m):
            out[k] = scale * min(max(_g_fake_numerical_gradient(x[k], v[k], a, b, d), lo), hi)
    elif c == 22:
        for k in range(m):
            out[k] = scale * min(max(_g_log_tailed_relu(x[k], v[k], a, b, d), lo), hi)
    elif c == 23:
        for k in range(m):
            out[k] = scale * min(max(_g_rect_open(x[k], v[k], a, b, d), lo), hi)
    elif c == 24:
        for k in range(m):
            out[k] = scale * min(max(_g_tanh(x[k], v[k], a, b, d), lo), hi)
    elif c == 25:
        for k in range(m):
            out[k] = scale * min(max(_g_circ(x[k], v[k], a, b, d), lo), hi)
    elif c == 26:
        for k in range(m):
            out[k] = scale * min(max(_g_one_sided(x[k], v[k], a, b, d), lo), hi)
    elif c == 27:
        for k in range(m):
            out[k] = scale * min(max(_g_periodic_exponential(x[k], v[k], a, b, d), lo), hi)
    elif c == 28:
        for k in range(m):
            out[k] = scale * min(max(_g_periodic_exponential_steep(x[k], v[k], a, b, d), lo),
                                 hi)
    elif c == 29:
        for k in range(m):
            out[k] = scale * min(max(_g_gaussian_shifted(x[k], v[k], a, b, d), lo), hi)
    elif c == 30:
        for k in range(m):
            out[k] = scale * min(max(_g_multi_gaussian(x[k], v[k], a, b, d), lo), hi)
    elif c == 31:
        for k in range(m):
            out[k] = scale * min(max(_g_logistic(x[k], v[k], a, b, d), lo), hi)
    elif c == 32:
        for k in range(m):
            out[k] = scale * min(max(_g_refractory_logistic(x[k], v[k], a, b, d), lo), hi)
    else:
        for k in range(m):
            out[k] = np.nan
    _flush_subnormal(out, m)


@njit(**_JIT)
def _G_block(c, a, b, d, x, out, m):
    """out[:m] = G(x[:m]) for family code c; NaN where there is no primitive."""
    if c == 0:
        for k in range(m):
            out[k] = _G_sigmoid(x[k], 0.0, a, b, d)
    elif c == 1:
        for k in range(m):
            out[k] = _G_fast_sigmoid(x[k], 0.0, a, b, d)
    elif c == 2:
        for k in range(m):
            out[k] = _G_fast_sigmoid_norm(x[k], 0.0, a, b, d)
    elif c == 3:
        for k in range(m):
            out[k] = _G_atan(x[k], 0.0, a, b, d)
    elif c == 4:
        for k in range(m):
            out[k] = _G_atan_pi(x[k], 0.0, a, b, d)
    elif c == 5:
        for k in range(m):
            out[k] = _G_rect(x[k], 0.0, a, b, d)
    elif c == 6:
        for k in range(m):
            out[k] = _G_triangle(x[k], 0.0, a, b, d)
    elif c == 7:
        for k in range(m):
            out[k] = _G_laplace(x[k], 0.0, a, b, d)
    elif c == 8:
        for k in range(m):
            out[k] = _G_gaussian(x[k], 0.0, a, b, d)
    elif c == 19:
        for k in range(m):
            out[k] = _G_q_pseudo_spike(x[k], 0.0, a, b, d)
    elif c == 23:
        for k in range(m):
            out[k] = _G_rect_open(x[k], 0.0, a, b, d)
    elif c == 24:
        for k in range(m):
            out[k] = _G_tanh(x[k], 0.0, a, b, d)
    elif c == 25:
        for k in range(m):
            out[k] = _G_circ(x[k], 0.0, a, b, d)
    elif c == 29:
        for k in range(m):
            out[k] = _G_gaussian_shifted(x[k], 0.0, a, b, d)
    elif c == 30:
        for k in range(m):
            out[k] = _G_multi_gaussian(x[k], 0.0, a, b, d)
    else:
        for k in range(m):
            out[k] = np.nan


@njit(inline="always", **_JIT)
def _spike_counts(ut, at, th, ba, adaptive, strict, spikes, vt, m):
    """Several spikes per step (M2), ``reference.spike_count``: floor(u/theta_t)
    for u >= theta_t (strict: ceil(u/theta_t) - 1 for u > theta_t), at most
    ``spikes`` (0: no maximum)."""
    for k in range(m):
        thk = th[k] + ba[k] * at[k] if adaptive else th[k]
        c = 0.0
        if strict:
            if ut[k] > thk:
                c = np.ceil(ut[k] / thk) - 1.0
        elif ut[k] >= thk:
            c = np.floor(ut[k] / thk)
        if spikes > 0 and c > spikes:
            c = spikes
        vt[k] = c


@njit(inline="always", **_JIT)
def _leak1(reset, by_theta, athr, al, up, vp, ga, th, ba, ap, ur, one):
    """The leak and reset terms of u_t that the clip acts on (M11), twin of
    ``reference.leak_reset`` (one neuron; vp in the dtype)."""
    if reset == R_SUBTRACT and by_theta:
        if athr:
            return al * up - ga * (th + ba * ap) * vp
        return al * up - ga * th * vp
    if reset == R_SUBTRACT:
        return al * up - ga * vp
    if reset == R_ZERO:
        return al * ((one - vp) * up + vp * ur)
    return al * up


@njit(inline="always", **_JIT)
def _fired(v, spikes, one):
    """h: whether a neuron fired, what a zero reset reads: v with one spike per
    step, min(v, 1) for a count (M12); twin of ``reference.fired``."""
    if spikes == 1:
        return v
    return min(v, one)


@njit(inline="always", **_JIT)
def _forward_step(J, ut, vt, st, at, up, vp, sp, ap, al, th, ga, ur, als, rh, ba, rr, ub, mn,
                  mode, sg, rt, one, x64, G64, m, first):
    """One time step of a block of m neurons, (S1), (R1), (A2)-(A6), (L1), (L2),
    (M1), (M2), (M6) (ub: the membrane bias), (M7), (M9).

    J holds the input current of the step (plus any all-to-all recurrence) and
    is used as scratch; up, vp, sp, ap hold the previous state and are updated;
    ut, vt (st, at) are the trace rows of this step; rt the uniform numbers of
    the stochastic forward (T7).  ``first``: the first step, whose initial
    state the clip spares (M11)."""
    reset, strict, fwd = mode[M_RESET], mode[M_STRICT], mode[M_FORWARD]
    synaptic, adaptive, onetoone = mode[M_SYN], mode[M_ADAPT], mode[M_ONE]
    norm, spikes, decay_in = mode[M_NORM], mode[M_SPIKES], mode[M_DECAY_IN]
    by_theta, current = mode[M_RESET_THETA], mode[M_ADAPT_CURRENT]
    if onetoone:                                                          # (R1)
        for k in range(m):
            J[k] = J[k] + rr[k] * vp[k]
    if synaptic and decay_in:                                             # (M3)
        for k in range(m):
            st[k] = als[k] * (sp[k] + J[k])
            sp[k] = st[k]
            J[k] = st[k]
    elif synaptic:                                                        # (S1)
        for k in range(m):
            st[k] = als[k] * sp[k] + J[k]
            sp[k] = st[k]
            J[k] = st[k]
    if norm:                                                              # (M1)
        if not synaptic:            # the input current, which dL/dalpha reads
            for k in range(m):
                st[k] = J[k]
        for k in range(m):
            J[k] = (one - al[k]) * J[k]
    if mode[M_CLIP] and first:           # the initial state is not clipped     (M11)
        athr = adaptive == 1 and current == 0
        for k in range(m):
            hp = _fired(vp[k], spikes, one) if reset == R_ZERO else vp[k]
            ut[k] = _leak1(reset, by_theta, athr, al[k], up[k], hp, ga[k], th[k],
                           ba[k], ap[k], ur[k], one) + J[k] + ub[k]
    elif mode[M_CLIP]:                   # the decayed post-reset state clipped  (M11)
        athr = adaptive == 1 and current == 0
        for k in range(m):
            hp = _fired(vp[k], spikes, one) if reset == R_ZERO else vp[k]
            ut[k] = max(_leak1(reset, by_theta, athr, al[k], up[k], hp, ga[k], th[k],
                               ba[k], ap[k], ur[k], one), al[k] * mn[k]) + J[k] + ub[k]
    elif reset == R_SUBTRACT and by_theta and adaptive and not current:   # (M7), (L2)
        for k in range(m):      # gamma_{t-1} = k theta_{t-1}, ap still a_{t-1}
            ut[k] = al[k] * up[k] + J[k] + ub[k] - ga[k] * (th[k] + ba[k] * ap[k]) * vp[k]
    elif reset == R_SUBTRACT and by_theta:                                # (M7)
        for k in range(m):
            ut[k] = al[k] * up[k] + J[k] + ub[k] - ga[k] * th[k] * vp[k]
    elif reset == R_SUBTRACT:                                             # (A2), (M6)
        for k in range(m):
            ut[k] = al[k] * up[k] + J[k] + ub[k] - ga[k] * vp[k]
    elif reset == R_ZERO and spikes != 1:                                 # (A3), (M12)
        for k in range(m):
            hp = min(vp[k], one)
            ut[k] = al[k] * ((one - hp) * up[k] + hp * ur[k]) + J[k] + ub[k]
    elif reset == R_ZERO:                                                 # (A3), (M6)
        for k in range(m):
            ut[k] = al[k] * ((one - vp[k]) * up[k] + vp[k] * ur[k]) + J[k] + ub[k]
    else:                                                                 # (A4), (M6)
        for k in range(m):
            ut[k] = al[k] * up[k] + J[k] + ub[k]
    # x = u_t - theta_t, kept in the dtype (J is reused as scratch)
    if adaptive and current:                                              # (L1), (M9)
        for k in range(m):
            at[k] = rh[k] * ap[k] + vp[k]
            ap[k] = at[k]
            ut[k] = ut[k] - ba[k] * at[k]
            J[k] = ut[k] - th[k]
    elif adaptive:                                                        # (L1), (L2)
        for k in range(m):
            at[k] = rh[k] * ap[k] + vp[k]
            ap[k] = at[k]
            J[k] = ut[k] - (th[k] + ba[k] * at[k])
    else:
        for k in range(m):
            J[k] = ut[k] - th[k]
    if spikes != 1:                                                       # (M2)
        _spike_counts(ut, at, th, ba, adaptive == 1 and current == 0, strict, spikes, vt, m)
    elif fwd == FWD_SMOOTH:                                                        # (A6)
        for k in range(m):
            x64[k] = J[k]
        _G_block(sg[0], sg[1], sg[2], sg[3], x64, G64, m)
        for k in range(m):
            vt[k] = G64[k]
        _flush_like(vt, J, m)
    elif fwd == FWD_STOCHASTIC:                                                        # (T7)
        for k in range(m):
            x64[k] = J[k]
        _G_block(sg[0], sg[1], sg[2], sg[3], x64, G64, m)
        for k in range(m):
            vt[k] = 1.0 if rt[k] < G64[k] else 0.0
    elif fwd == FWD_STOCHASTIC_PHI:                     # probability phi itself   (M13)
        for k in range(m):
            x64[k] = J[k]
        _phi_block(sg[0], sg[1], sg[2], sg[3], sg[4], sg[5], sg[6], x64, x64, G64, m)
        for k in range(m):
            vt[k] = 1.0 if rt[k] < G64[k] else 0.0
    elif strict:                                                          # (A5) strict
        for k in range(m):
            vt[k] = 1.0 if J[k] > 0 else 0.0
    else:                                                                 # (A5)
        for k in range(m):
            vt[k] = 1.0 if J[k] >= 0 else 0.0
    for k in range(m):
        up[k] = ut[k]
        vp[k] = vt[k]


@njit(**_JIT)
def _forward_tasks(I, static, t0, t1, state0, P, mode, sg, rnd, u, v, s, a, task0, task1):
    """Forward steps [t0, t1) (``reference.cell_forward_scan``) of the tasks
    [task0, task1) (task = batch row x block of BLOCK neurons)."""
    T, B, N = u.shape
    synaptic, adaptive, norm = mode[M_SYN], mode[M_ADAPT], mode[M_NORM]
    stochastic = mode[M_FORWARD] >= FWD_STOCHASTIC       # (T7), (M13)
    nblk = (N + BLOCK - 1) // BLOCK
    one = np.ones(1, u.dtype)[0]
    for task in range(task0, task1):
        b = task // nblk
        n0 = (task % nblk) * BLOCK
        n1 = min(N, n0 + BLOCK)
        m = n1 - n0
        # state before t0: from the trace, or the initial state (v_0 = 0)
        if t0 > 0:
            up = u[t0 - 1, b, n0:n1].copy()
            vp = np.empty(m, u.dtype)       # spikes may be stored as uint8
            for k in range(m):
                vp[k] = v[t0 - 1, b, n0 + k]
            sp = s[t0 - 1, b, n0:n1].copy() if synaptic else np.zeros(m, u.dtype)
            ap = a[t0 - 1, b, n0:n1].copy() if adaptive else np.zeros(m, u.dtype)
        else:
            up = state0[0, b, n0:n1].copy()
            vp = np.zeros(m, u.dtype)
            sp = state0[1, b, n0:n1].copy()
            ap = state0[2, b, n0:n1].copy()
        J = np.empty(m, u.dtype)
        dummy = np.empty(m, u.dtype)
        dummy64 = np.empty(m)
        x64 = np.empty(m)
        G64 = np.empty(m)
        # the parameter rows, sliced once per task (not per step: a small layer
        # pays the slicing of ~20 views per step otherwise)
        p0, p1, p2, p3 = P[0, n0:n1], P[1, n0:n1], P[2, n0:n1], P[3, n0:n1]
        p4, p5, p6, p7 = P[4, n0:n1], P[5, n0:n1], P[6, n0:n1], P[7, n0:n1]
        p8, p9 = P[P_UBIAS, n0:n1], P[P_UMIN, n0:n1]
        for t in range(t0, t1):
            It = I[0, b, n0:n1] if static else I[t, b, n0:n1]
            for k in range(m):
                J[k] = It[k]
            st = s[t, b, n0:n1] if (synaptic or norm) else dummy
            at = a[t, b, n0:n1] if adaptive else dummy
            rt = rnd[t, b, n0:n1] if stochastic else dummy64
            _forward_step(J, u[t, b, n0:n1], v[t, b, n0:n1], st, at, up, vp, sp, ap,
                          p0, p1, p2, p3, p4, p5, p6, p7, p8, p9, mode, sg, rt, one, x64, G64,
                          m, t == 0)


@njit(**_JIT)
def _forward_recurrent(I, static, t0, t1, state0, P, RT, mode, sg, rnd, u, v, s, a):
    """``reference.cell_forward_recurrent``: all-to-all recurrence over steps
    [t0, t1), RT = R^T; the state before t0 from the trace row t0 - 1 (or
    ``state0`` at t0 = 0)."""
    T, B, N = u.shape
    synaptic, adaptive, norm = mode[M_SYN], mode[M_ADAPT], mode[M_NORM]
    stochastic = mode[M_FORWARD] >= FWD_STOCHASTIC       # (T7), (M13)
    one = np.ones(1, u.dtype)[0]
    up = np.empty((B, N), u.dtype)
    vp = np.zeros((B, N), u.dtype)
    sp = np.zeros((B, N), u.dtype)
    ap = np.zeros((B, N), u.dtype)
    if t0 > 0:
        for b in range(B):
            for k in range(N):
                up[b, k] = u[t0 - 1, b, k]
                vp[b, k] = v[t0 - 1, b, k]
                if synaptic:
                    sp[b, k] = s[t0 - 1, b, k]
                if adaptive:
                    ap[b, k] = a[t0 - 1, b, k]
    else:
        up[:] = state0[0]
        sp[:] = state0[1]
        ap[:] = state0[2]
    J = np.empty(N, u.dtype)
    rec = np.empty(N, u.dtype)
    dummy = np.empty(N, u.dtype)
    dummy64 = np.empty(N)
    x64 = np.empty(N)
    G64 = np.empty(N)
    for t in range(t0, t1):
        for b in range(B):
            It = I[0, b] if static else I[t, b]
            # rec = v_{t-1} R^T, skipping silent neurons (event driven)    (R1)
            for k in range(N):
                rec[k] = 0
            vrow = vp[b]
            for j in range(N):
                w = vrow[j]
                if w != 0:
                    Rj = RT[j]
                    for k in range(N):
                        rec[k] += w * Rj[k]
            if t == 0:
                for k in range(N):
                    J[k] = It[k]
            else:
                for k in range(N):
                    J[k] = rec[k] + It[k]
            st = s[t, b] if (synaptic or norm) else dummy
            at = a[t, b] if adaptive else dummy
            rt = rnd[t, b] if stochastic else dummy64
            _forward_step(J, u[t, b], v[t, b], st, at, up[b], vp[b], sp[b], ap[b],
                          P[0], P[1], P[2], P[3], P[4], P[5], P[6], P[7], P[P_UBIAS],
                          P[P_UMIN], mode, sg, rt, one, x64, G64, N, t == 0)


@njit(**_JIT)
def _backward_step(ut, vt, at, st, upr, vpr, spr, apr, dvt, dut, rt, has_rec,
                   al, th, ga, ur, als, rh, ba, rr, mn, mode, sg, one,
                   ubn, sbn, abn, loc, vbar, ph, x64, m, partials, ib, ukn, kc, first):
    """One reverse step of a block of m neurons, (A7)-(A17), (S2)-(S4), (R2),
    (R3), (L3)-(L7), (M1), (M6)-(M9).  ubn, sbn, abn hold ubar, sbar, abar of step t+1 on
    entry and of step t on exit; loc (N_ACC, m) accumulates the partial sums; ib
    receives dL/dI_t (S3), (A13); st is the s row of step t (read with
    norm_input).

    Every loop stores to one array: a loop that stores to several (or reads
    an array it may store to through another name) is not vectorised by LLVM,
    which cannot prove the arrays distinct.  vbar ends holding phi_t vbar_t.
    With the clip (M11), ukn receives k_{t+1} ubar_{t+1}, what the leak and the
    reset of step t+1 carry back, and kc the mask k_t (0/1) of step t (1 on
    the ``first`` step: the initial state is not clipped)."""
    reset, detach = mode[M_RESET], mode[M_DETACH]
    synaptic, adaptive, onetoone = mode[M_SYN], mode[M_ADAPT], mode[M_ONE]
    norm, decay_in = mode[M_NORM], mode[M_DECAY_IN]
    tgrad, by_theta, current = mode[M_THETA_GRAD], mode[M_RESET_THETA], mode[M_ADAPT_CURRENT]
    athr = adaptive == 1 and current == 0      # the adaptation raises the threshold (L2)
    adapt_reset = by_theta == 1 and athr and reset == R_SUBTRACT          # (M7)
    scale, lo, hi = sg[4], sg[5], sg[6]
    clip = mode[M_CLIP]
    hz = reset == R_ZERO and mode[M_SPIKES] != 1     # a zero reset of a count (M12)
    uk = ubn
    if clip:                    # k_{t+1} ubar_{t+1} and k_t                   (M11)
        for k in range(m):
            h = min(one * vt[k], one) if hz else one * vt[k]
            L = _leak1(reset, by_theta, athr, al[k], ut[k], h, ga[k], th[k], ba[k],
                       at[k], ur[k], one)
            ukn[k] = ubn[k] if L > al[k] * mn[k] else one - one
        for k in range(m):
            h = min(one * vpr[k], one) if hz else one * vpr[k]
            L = _leak1(reset, by_theta, athr, al[k], upr[k], h, ga[k], th[k], ba[k],
                       apr[k], ur[k], one)
            kc[k] = one if (first or L > al[k] * mn[k]) else one - one
        uk = ukn
    # phi_t = scale * clip(g(u_t - theta_t))                            (A7), (L2)
    if athr:
        for k in range(m):
            x64[k] = ut[k] - (th[k] + ba[k] * at[k])
    else:
        for k in range(m):
            x64[k] = ut[k] - th[k]
    live = mode[M_SG_LIVE]
    if live != 0:                        # the surrogate at theta_t itself   (M10)
        for k in range(m):
            tk = float(th[k] + ba[k] * at[k]) if athr else float(th[k])
            q0, q1, q2, q3 = _live_slots(sg, live, tk)
            _phi_block(sg[0], q0, q1, q2, q3, lo, hi, x64[k:k + 1], vt[k:k + 1],
                       ph[k:k + 1], 1)
    else:
        _phi_block(sg[0], sg[1], sg[2], sg[3], scale, lo, hi, x64, vt, ph, m)
    # vbar_t = delta_t + reset_v_t (+ recurrence, adaptation)           (A8), (A10), (A11)
    if detach or reset == R_NONE:
        for k in range(m):
            vbar[k] = dvt[k] + (one - one)
    elif reset == R_SUBTRACT and adapt_reset:                             # (M7)
        for k in range(m):
            vbar[k] = dvt[k] + (-ga[k] * (th[k] + ba[k] * at[k]) * uk[k])
    elif reset == R_SUBTRACT and by_theta:                                # (M7)
        for k in range(m):
            vbar[k] = dvt[k] + (-ga[k] * th[k] * uk[k])
    elif reset == R_SUBTRACT:
        for k in range(m):
            vbar[k] = dvt[k] + (-ga[k] * uk[k])
    else:
        for k in range(m):
            vbar[k] = dvt[k] + al[k] * (ur[k] - ut[k]) * uk[k]
    if onetoone:                                                          # (R2)
        if synaptic and decay_in:                                         # (M3)
            for k in range(m):
                vbar[k] = vbar[k] + rr[k] * (als[k] * sbn[k])
        elif synaptic:
            for k in range(m):
                vbar[k] = vbar[k] + rr[k] * sbn[k]
        elif norm:                                                        # (M1)
            for k in range(m):
                vbar[k] = vbar[k] + rr[k] * ((one - al[k]) * ubn[k])
        else:
            for k in range(m):
                vbar[k] = vbar[k] + rr[k] * ubn[k]
    if has_rec:                                                           # (R2)
        for k in range(m):
            vbar[k] = vbar[k] + rt[k]
    if adaptive:                                                          # (L3)
        for k in range(m):
            vbar[k] = vbar[k] + abn[k]
    if athr:
        l4, l5 = loc[4], loc[5]                                           # (L4), (L6), (L7)
        if tgrad != TG_NONE:
            for k in range(m):
                abn[k] = -ba[k] * ph[k] * vbar[k] + rh[k] * abn[k]
        else:                                   # the spike's threshold: no gradient (M8)
            for k in range(m):
                abn[k] = rh[k] * abn[k]
        if adapt_reset:                         # a_t in the reset of u_{t+1}  (M7)
            l8 = loc[ACC_RVA]
            for k in range(m):
                abn[k] = abn[k] - ga[k] * ba[k] * vt[k] * uk[k]
            for k in range(m):
                l8[k] += uk[k] * vt[k] * at[k]
        for k in range(m):
            l4[k] += abn[k] * apr[k]
        if tgrad != TG_NONE:
            for k in range(m):
                l5[k] -= ph[k] * vbar[k] * at[k]
    # ubar_t = eps_t + phi_t vbar_t + leak_t ubar_{t+1}; gradients       (A9), (A14)-(A17)
    for k in range(m):
        vbar[k] = ph[k] * vbar[k]
    _adjoint_u(ut, vt, upr, vpr, dut, al, ur, reset, one, ubn, loc, vbar, m, partials,
               norm, st, th, tgrad, clip, uk, kc, mn, hz)
    if adaptive and current:                    # a_t a current into u_t    (M9), (L6)
        l4, l5 = loc[4], loc[5]
        for k in range(m):
            abn[k] = -ba[k] * ubn[k] + rh[k] * abn[k]
        for k in range(m):
            l4[k] += abn[k] * apr[k]
        for k in range(m):
            l5[k] -= ubn[k] * at[k]
    if synaptic:                                                          # (S2), (S4), (M1)
        l3 = loc[3]
        if norm:
            for k in range(m):
                sbn[k] = (one - al[k]) * ubn[k] + als[k] * sbn[k]
        else:
            for k in range(m):
                sbn[k] = ubn[k] + als[k] * sbn[k]
        if decay_in:                                                      # (M3)
            for k in range(m):
                l3[k] += sbn[k] * (st[k] / als[k])
            for k in range(m):
                ib[k] = als[k] * sbn[k]
        else:
            for k in range(m):
                l3[k] += sbn[k] * spr[k]
            for k in range(m):
                ib[k] = sbn[k]                                            # (S3)
    elif norm:
        for k in range(m):
            ib[k] = (one - al[k]) * ubn[k]                                # (A13), (M1)
    else:
        for k in range(m):
            ib[k] = ubn[k]                                                # (A13)
    if onetoone:                                                          # (R3)
        l6 = loc[6]
        for k in range(m):
            l6[k] += ib[k] * vpr[k]


@njit(inline="always", **_JIT)
def _live_slots(sg, live, th):
    """(p0, p1, p2, scale) at the threshold th (float64): slot k of sg times
    th, divided by th or as it is by the base-3 digit k of ``live`` (M10);
    twin of ``reference.live_slots``."""
    q0, q1, q2, q3 = sg[1], sg[2], sg[3], sg[4]
    e = live % 3
    q0 = q0 * th if e == 1 else (q0 / th if e == 2 else q0)
    e = (live // 3) % 3
    q1 = q1 * th if e == 1 else (q1 / th if e == 2 else q1)
    e = (live // 9) % 3
    q2 = q2 * th if e == 1 else (q2 / th if e == 2 else q2)
    e = (live // 27) % 3
    q3 = q3 * th if e == 1 else (q3 / th if e == 2 else q3)
    return q0, q1, q2, q3


@njit(inline="always", **_JIT)
def _adjoint_u(ut, vt, upr, vpr, dut, al, ur, reset, one, ubn, loc, pv, m, partials, norm, st,
               th, tgrad, clip, uk, kc, mn, hz):
    """ubar_t = eps_t + pv_t + leak_t ubar_{t+1} with pv = phi_t vbar_t, and
    (when ``partials``) the partial sums of alpha, theta, the reset value and
    the membrane bias (A9), (A10), (A14)-(A16), (M6) (with norm_input, dalpha
    also gets -ubar_t s_t, (M1); the spike's theta term by ``tgrad``, (M4),
    (M8)); ubn holds ubar_{t+1} on entry, ubar_t on exit.  With the clip
    (``clip``), uk is k_{t+1} ubar_{t+1} and kc the mask k_t (M11).  ``hz``: a
    zero reset of a count, which reads h = min(v, 1) (M12); it has its own
    loops (:func:`_adjoint_u_zero_count`)."""
    if hz:
        _adjoint_u_zero_count(ut, vt, upr, vpr, dut, al, ur, one, ubn, loc, pv, m, partials,
                              norm, st, th, tgrad, clip, uk, kc, mn)
        return
    l0, l2 = loc[0], loc[2]
    if partials:
        _theta_partial(loc[1], pv, ut, th, tgrad, m)
        for k in range(m):
            l2[k] += uk[k] * vt[k]
    if clip:                                                              # (M11)
        if reset == R_ZERO:
            for k in range(m):
                ubn[k] = dut[k] + pv[k] + al[k] * (one - vt[k]) * uk[k]
        else:
            for k in range(m):
                ubn[k] = dut[k] + pv[k] + al[k] * uk[k]
        if partials:
            l9 = loc[ACC_UMIN]
            for k in range(m):
                if kc[k] != 0:
                    d = (one - vpr[k]) * upr[k] + vpr[k] * ur[k] if reset == R_ZERO else upr[k]
                else:
                    d = mn[k]
                    l9[k] += ubn[k]                                       # dL/du_min / alpha
                l0[k] += ubn[k] * (d - st[k] if norm else d)
    elif reset == R_ZERO:                                                    # (A10b), (A14b)
        for k in range(m):
            ubn[k] = dut[k] + pv[k] + al[k] * (one - vt[k]) * ubn[k]
        if partials and norm:
            for k in range(m):
                l0[k] += ubn[k] * ((one - vpr[k]) * upr[k] + vpr[k] * ur[k] - st[k])
        elif partials:
            for k in range(m):
                l0[k] += ubn[k] * ((one - vpr[k]) * upr[k] + vpr[k] * ur[k])
    else:                                                                 # (A10a,c), (A14a)
        for k in range(m):
            ubn[k] = dut[k] + pv[k] + al[k] * ubn[k]
        if partials and norm:
            for k in range(m):
                l0[k] += ubn[k] * (upr[k] - st[k])
        elif partials:
            for k in range(m):
                l0[k] += ubn[k] * upr[k]
    if partials:                                                          # (M6)
        l7 = loc[ACC_UBIAS]
        for k in range(m):
            l7[k] += ubn[k]


@njit(inline="always", **_JIT)
def _theta_partial(l1, pv, ut, th, tgrad, m):
    """The spike's share of dL/dtheta in l1: -pv (A15), -(u/theta) pv (M4), none (M8)."""
    if tgrad == TG_RATIO:                                                 # (M4)
        for k in range(m):
            l1[k] -= pv[k] * (ut[k] / th[k])
    elif tgrad == TG_SHIFT:                                               # (A15)
        for k in range(m):
            l1[k] -= pv[k]


@njit(inline="always", **_JIT)
def _adjoint_u_zero_count(ut, vt, upr, vpr, dut, al, ur, one, ubn, loc, pv, m, partials, norm,
                          st, th, tgrad, clip, uk, kc, mn):
    """:func:`_adjoint_u` for a zero reset of a count (M12): the reset reads
    h = min(v, 1) where one spike's cell reads v (the leak (1 - h_t), dL/dalpha's
    (1 - h) u + h u_reset and u_reset's sum of ubar_{t+1} h_t)."""
    l0, l2 = loc[0], loc[2]
    if partials:
        _theta_partial(loc[1], pv, ut, th, tgrad, m)
        for k in range(m):
            l2[k] += uk[k] * min(one * vt[k], one)
    for k in range(m):
        ubn[k] = dut[k] + pv[k] + al[k] * (one - min(one * vt[k], one)) * uk[k]
    if partials:
        l9 = loc[ACC_UMIN]
        for k in range(m):
            h = min(one * vpr[k], one)
            d = (one - h) * upr[k] + h * ur[k]
            if clip and kc[k] == 0:
                d = mn[k]
                l9[k] += ubn[k]                                           # dL/du_min / alpha
            l0[k] += ubn[k] * (d - st[k] if norm else d)
        l7 = loc[ACC_UBIAS]
        for k in range(m):
            l7[k] += ubn[k]


@njit(inline="always", **_JIT)
def _backward_step_plain(ut, vt, upr, vpr, dvt, dut, al, th, ga, ur, mode, sg, one,
                         ubn, loc, ph, x64, m, partials):
    """:func:`_backward_step` for the plain cell (no synaptic current,
    adaptation or recurrence), the training workhorse: phi_t vbar_t is made in
    one pass per reset mode.  Same operations in the same order as the general
    step, so the same bits."""
    reset, detach = mode[M_RESET], mode[M_DETACH]
    for k in range(m):
        x64[k] = ut[k] - th[k]
    _phi_block(sg[0], sg[1], sg[2], sg[3], sg[4], sg[5], sg[6], x64, vt, ph, m)   # (A7)
    if detach or reset == R_NONE:                                              # (A8)
        for k in range(m):
            ph[k] = ph[k] * (dvt[k] + (one - one))
    elif reset == R_SUBTRACT:                                                      # (A10a)
        for k in range(m):
            ph[k] = ph[k] * (dvt[k] + (-ga[k] * ubn[k]))
    else:                                                                 # (A10b)
        for k in range(m):
            ph[k] = ph[k] * (dvt[k] + al[k] * (ur[k] - ut[k]) * ubn[k])
    _adjoint_u(ut, vt, upr, vpr, dut, al, ur, reset, one, ubn, loc, ph, m, partials, 0, ph,
               th, mode[M_THETA_GRAD], 0, ubn, ph, ph,
               reset == R_ZERO and mode[M_SPIKES] != 1)


@njit(**_JIT)
def _backward_tasks(u, v, s, a, state0, dv, du, rec, have, static, t0, t1,
                    P, mode, sg, dI, acc, adj, dstate0, task0, task1):
    """Reverse steps [t1, t0) (``reference.cell_backward_scan``) of the tasks
    [task0, task1)."""
    T, B, N = u.shape
    has_dv, has_du, has_rec, partials = have[0], have[1], have[2], have[3]
    synaptic, adaptive, norm = mode[M_SYN], mode[M_ADAPT], mode[M_NORM]
    decay_in = mode[M_DECAY_IN]
    plain = not (synaptic or adaptive or mode[M_ONE] or has_rec or norm or mode[M_RESET_THETA]
                 or mode[M_SG_LIVE] or mode[M_CLIP])
    # acc rows (reference.ACC_*): alpha, theta, rv when asked for; alpha_s, rho,
    # beta_a, r by model; u_bias when asked for; rva with the reset by the
    # adaptive threshold (M7); u_min when asked for, with the clip (M11)
    used = (partials, partials, partials, synaptic == 1, adaptive == 1, adaptive == 1,
            mode[M_ONE] == 1, partials,
            adaptive == 1 and mode[M_RESET_THETA] == 1 and mode[M_ADAPT_CURRENT] == 0,
            partials and mode[M_CLIP] == 1)
    nblk = (N + BLOCK - 1) // BLOCK
    one = np.ones(1, u.dtype)[0]
    for task in range(task0, task1):
        b = task // nblk
        n0 = (task % nblk) * BLOCK
        n1 = min(N, n0 + BLOCK)
        m = n1 - n0
        ubn = adj[0, b, n0:n1].copy()   # ubar_{t+1}, sbar_{t+1}, abar_{t+1}
        sbn = adj[1, b, n0:n1].copy() if synaptic else np.zeros(m, u.dtype)
        abn = adj[2, b, n0:n1].copy() if adaptive else np.zeros(m, u.dtype)
        # partial sums continue acc (and dI[0] when static) so that splitting
        # time into several calls never changes the order of summation; only
        # the rows the model uses are read and written (a chunked backward
        # calls this once per chunk)
        loc = np.empty((N_ACC, m), u.dtype)
        for j in range(N_ACC):
            if used[j]:
                for k in range(m):
                    loc[j, k] = acc[j, b, n0 + k]
        a_dI = np.zeros(m, u.dtype)
        if static:
            for k in range(m):
                a_dI[k] = dI[0, b, n0 + k]
        vbar = np.empty(m, u.dtype)
        ib = np.empty(m, u.dtype)       # dL/dI_t of the block
        ph = np.empty(m, u.dtype)       # phi_t of the block, rounded to the dtype
        x64 = np.empty(m)
        zrow = np.zeros(m, u.dtype)
        zspk = np.zeros(m, v.dtype)     # v_0 = 0 in the spikes' storage type
        p0, p1, p2, p3 = P[0, n0:n1], P[1, n0:n1], P[2, n0:n1], P[3, n0:n1]   # once per task
        p4, p5, p6, p7 = P[4, n0:n1], P[5, n0:n1], P[6, n0:n1], P[7, n0:n1]
        p9 = P[P_UMIN, n0:n1]
        ukn = np.empty(m, u.dtype)      # k_{t+1} ubar_{t+1}, k_t of the clip (M11)
        kc = np.empty(m, u.dtype)
        for t in range(t1 - 1, t0 - 1, -1):
            at = a[t, b, n0:n1] if adaptive else zrow
            upr = u[t - 1, b, n0:n1] if t > 0 else state0[0, b, n0:n1]
            vpr = v[t - 1, b, n0:n1] if t > 0 else zspk
            spr = zrow
            if synaptic:
                spr = s[t - 1, b, n0:n1] if t > 0 else state0[1, b, n0:n1]
            apr = zrow
            if adaptive:
                apr = a[t - 1, b, n0:n1] if t > 0 else state0[2, b, n0:n1]
            dvt = dv[t, b, n0:n1] if has_dv else zrow
            dut = du[t, b, n0:n1] if has_du else zrow
            rt = rec[t, b, n0:n1] if has_rec else zrow
            st = s[t, b, n0:n1] if (norm or decay_in) else zrow
            if plain:
                _backward_step_plain(u[t, b, n0:n1], v[t, b, n0:n1], upr, vpr, dvt, dut,
                                     p0, p1, p2, p3, mode, sg, one, ubn, loc, ph, x64, m,
                                     partials)
            else:
                _backward_step(u[t, b, n0:n1], v[t, b, n0:n1], at, st, upr, vpr, spr, apr,
                               dvt, dut, rt, has_rec, p0, p1, p2, p3, p4, p5, p6, p7, p9, mode,
                               sg, one, ubn, sbn, abn, loc, vbar, ph, x64, m, partials, ib, ukn,
                               kc, t == 0)
            Ib = ubn if plain else ib                                     # (S3), (A13)
            if static:                                                    # (A21)
                for k in range(m):
                    a_dI[k] += Ib[k]
            else:
                dIt = dI[t, b, n0:n1]
                for k in range(m):
                    dIt[k] = Ib[k]
        for k in range(m):
            n = n0 + k
            for j in range(N_ACC):
                if used[j]:
                    acc[j, b, n] = loc[j, k]
            adj[0, b, n] = ubn[k]
            if synaptic:
                adj[1, b, n] = sbn[k]
            if adaptive:
                adj[2, b, n] = abn[k]
            if static:
                dI[0, b, n] = a_dI[k]
            if t0 == 0:                       # (A18); the clip spares u_0 (M11)
                dstate0[0, b, n] = P[0, n] * ubn[k]
                dstate0[1, b, n] = P[4, n] * sbn[k] if synaptic else 0.0  # (S5)
                dstate0[2, b, n] = P[5, n] * abn[k] if adaptive else 0.0  # (L8)


@njit(**_JIT)
def _backward_recurrent(u, v, s, a, state0, dv, du, have, t0, t1, P, R, mode, sg,
                        dI, dI_next, acc, adj, dstate0):
    """``reference.cell_backward_recurrent``: the adjoint of :func:`_forward_recurrent`
    over steps [t0, t1), carrying ``adj`` and reading ``dI_next`` (dL/dI of
    step t1) when ``have[2]``."""
    T, B, N = u.shape
    has_dv, has_du, has_next, partials = have[0], have[1], have[2], have[3]
    synaptic, adaptive, norm = mode[M_SYN], mode[M_ADAPT], mode[M_NORM]
    decay_in = mode[M_DECAY_IN]
    one = np.ones(1, u.dtype)[0]
    ubn = np.zeros((B, N), u.dtype)
    sbn = np.zeros((B, N), u.dtype)
    abn = np.zeros((B, N), u.dtype)
    for b in range(B):
        for k in range(N):
            ubn[b, k] = adj[0, b, k]
            if synaptic:
                sbn[b, k] = adj[1, b, k]
            if adaptive:
                abn[b, k] = adj[2, b, k]
    rec = np.zeros((B, N), u.dtype)
    vbar = np.empty(N, u.dtype)
    ib = np.empty(N, u.dtype)
    ph = np.empty(N, u.dtype)
    x64 = np.empty(N)
    zrow = np.zeros(N, u.dtype)
    zspk = np.zeros(N, v.dtype)
    ukn = np.empty(N, u.dtype)
    kc = np.empty(N, u.dtype)
    loc = np.empty((B, N_ACC, N), u.dtype)   # contiguous partial sums continuing acc
    for b in range(B):
        for j in range(N_ACC):
            for k in range(N):
                loc[b, j, k] = acc[j, b, k]
    for t in range(t1 - 1, t0 - 1, -1):
        has_rec = t < t1 - 1 or has_next
        if t < t1 - 1:
            np.dot(dI[t + 1], R, rec)                                     # (R2)
        elif has_next:
            np.dot(dI_next, R, rec)
        for b in range(B):
            at = a[t, b] if adaptive else zrow
            upr = u[t - 1, b] if t > 0 else state0[0, b]
            vpr = v[t - 1, b] if t > 0 else zspk
            spr = zrow
            if synaptic:
                spr = s[t - 1, b] if t > 0 else state0[1, b]
            apr = zrow
            if adaptive:
                apr = a[t - 1, b] if t > 0 else state0[2, b]
            dvt = dv[t, b] if has_dv else zrow
            dut = du[t, b] if has_du else zrow
            st = s[t, b] if (norm or decay_in) else zrow
            _backward_step(u[t, b], v[t, b], at, st, upr, vpr, spr, apr,
                           dvt, dut, rec[b], has_rec,
                           P[0], P[1], P[2], P[3], P[4], P[5], P[6], P[7], P[P_UMIN], mode, sg,
                           one, ubn[b], sbn[b], abn[b], loc[b], vbar, ph, x64, N, partials, ib,
                           ukn, kc, t == 0)
            dIt = dI[t, b]                                                # (S3), (A13)
            for k in range(N):
                dIt[k] = ib[k]
    for b in range(B):
        for j in range(N_ACC):
            for k in range(N):
                acc[j, b, k] = loc[b, j, k]
        for k in range(N):
            adj[0, b, k] = ubn[b, k]
            if synaptic:
                adj[1, b, k] = sbn[b, k]
            if adaptive:
                adj[2, b, k] = abn[b, k]
        if t0 == 0:
            for k in range(N):              # (A18); the clip spares u_0 (M11)
                dstate0[0, b, k] = P[0, k] * ubn[b, k]
                dstate0[1, b, k] = P[4, k] * sbn[b, k] if synaptic else 0.0   # (S5)
                dstate0[2, b, k] = P[5, k] * abn[b, k] if adaptive else 0.0   # (L8)
