"""numba-cuda kernels: the GPU twins of ``lifgrad/kernels/cpu.py``.

Same names, same argument order, same outputs as ``cpu.py`` and
``lifgrad/reference.py`` (the spec), so ``functional`` can call either.  Each
public function is a plain Python wrapper: it accepts host NumPy arrays or
device arrays (anything with ``__cuda_array_interface__``, or the simulator's
device arrays).  Device arrays are worked on in place with no host transfer;
a host output is copied to the device, updated there and copied back into the
same host array, so the wrappers are drop-in for the ``cpu`` ones.  ``mode``,
``sg`` and ``have`` travel as tuples of scalars (kernel arguments, no copy).

Thread layout
-------------
* Scans (``cell_forward_scan``, ``cell_backward_scan``): one thread per
  (batch row b, neuron n), ``thread = b * N + n``, so consecutive threads
  touch consecutive n of every ``(T, B, N)`` row (coalesced).  The time loop
  runs inside the thread; the state (u, v, s, a forward; ubar, sbar, abar and
  the N_ACC = 10 partial sums backward) lives in registers.  Like ``cpu.py`` the
  scans start from the trace at ``t0 - 1`` (forward) or from ``adj`` and
  ``acc`` (backward), so splitting time into segments changes no result;
  a static input reads ``I[0]`` and accumulates ``dI[0]``.
* All-to-all recurrence (``cell_forward_recurrent``,
  ``cell_backward_recurrent``): one thread block per batch row, threads stride
  over the neurons, ``cuda.syncthreads()`` closes every time step.  Step t
  first forms the product for its neurons, ``rec[k] = sum_j v_{t-1}[j] RT[j, k]``
  (forward, skipping silent neurons like ``cpu.py``) or
  ``rec[k] = sum_j dI_{t+1}[j] R[j, k]`` (backward), reading the previous row
  of the trace / of ``dI`` that the block wrote before the barrier (at a
  segment's last step, ``dI_next``, the later segment's first row).  A thread
  may own several neurons, so the state between steps is read back from the
  trace (forward) and from ``adj``/``acc`` in global memory (backward), which
  also carry it from one time segment to the next.  One block is one batch
  row: the GPU is filled only for batch sizes of about the number of
  multiprocessors or more.

Arithmetic follows ``cpu.py`` operation by operation in the arrays' dtype
(float32 or float64, one compiled specialisation each); the surrogate ``g``
and ``G`` are evaluated in float64 and rounded once to the dtype.  (On a real
GPU the compiler contracts ``a * b + c`` into FMAs, so results agree with the
reference to rounding, not bit for bit; the simulator runs plain Python.)

Surrogate formulas come from ``surrogates.FAMILIES``, bound to ``math`` with a
device ``step`` and compiled as device functions; ``_g``/``_G`` dispatch on
the family code (an if-chain generated from the table), NaN for an unknown
code.  As in ``cpu.py``, the on-disk kernel cache does not notice edits to
``surrogates.py`` (``make clean``).

Helpers for device-resident training: :func:`gemm`, :func:`add_bias`,
:func:`sum_rows`.
"""
from __future__ import annotations

import math

import numpy as np
from numba import config as _nbconfig, cuda, float32, float64

from .. import surrogates as _sg
from .constants import (ACC_RVA, ACC_UBIAS, ACC_UMIN, FWD_SMOOTH, FWD_STOCHASTIC,
                        FWD_STOCHASTIC_PHI, M_ADAPT, M_FORWARD, M_NORM, M_SYN, N_ACC,
                        P_UBIAS, P_UMIN, R_NONE,
                        R_SUBTRACT, R_ZERO, TG_NONE, TG_RATIO)

__all__ = ["cell_forward_scan", "cell_backward_scan", "cell_forward_recurrent",
           "cell_backward_recurrent", "gemm", "add_bias", "sum_rows"]

SIMULATOR = bool(_nbconfig.ENABLE_CUDASIM)   # NUMBA_ENABLE_CUDASIM=1: the CUDA simulator

SCAN_THREADS = 128        # threads per block of the scans
RECURRENT_THREADS = 256   # most threads per block (= batch row) of the recurrent kernels
TILE = 16                 # gemm tile
_TILE_PAD = TILE + 1      # shared-memory row length (padding against bank conflicts)
_JIT = dict(cache=True)


# --------------------------------------------------------------------------
# Rounding to the arrays' dtype, and the surrogate table
# --------------------------------------------------------------------------

def _cast(x, like):
    """``x`` rounded to the type of ``like`` (float32 or float64).  Kernel code
    cannot name the arrays' dtype, so on the GPU this is an overload that casts
    to the (compile-time) type of ``like``; the simulator runs this body."""
    return type(like)(x)


if not SIMULATOR:
    from numba.cuda.extending import overload

    @overload(_cast, target="cuda")
    def _cast_cuda(x, like):
        ty = like

        def impl(x, like):
            return ty(x)
        return impl


@cuda.jit(device=True)
def _step(z):
    return 1.0 if z >= 0 else 0.0


_NS = dict(_sg.MATH_NS, step=_step)


def _device(formula):
    return cuda.jit(device=True)(_sg.bind(formula, _NS))


def _dispatcher(name, which):
    """Device function ``name(c, x, v, p0, p1, p2)``: formula ``which`` ('g' or
    'G') of the family with code c; NaN where there is none."""
    ns = {"NAN": math.nan, "__name__": __name__}
    lines = [f"def {name}(c, x, v, p0, p1, p2):"]
    for f in _sg.FAMILIES:
        formula = getattr(f, which)
        if formula is not None:
            ns[f"_{which}{f.code}"] = _device(formula)
            lines += [f"    if c == {f.code}:",
                      f"        return _{which}{f.code}(x, v, p0, p1, p2)"]
    lines.append("    return NAN")
    exec(compile("\n".join(lines), f"<lifgrad.kernels.cuda.{name}>", "exec"), ns)
    return cuda.jit(device=True)(ns[name])


_g = _dispatcher("_g", "g")
_G = _dispatcher("_G", "G")


@cuda.jit(device=True)
def _flush(c, like):
    """``c`` (of the type of ``like``) or 0 when subnormal, below the type's
    smallest normal number (``lifgrad.surrogates.flush_subnormal``)."""
    tiny = _cast(2.2250738585072014e-308, like)      # 0 in float32
    if tiny == 0:
        tiny = _cast(1.1754943508222875e-38, like)
    if abs(c) < tiny:
        return _cast(0.0, like)
    return c


@cuda.jit(device=True)
def _phi(x, v, q):
    """``scale * clip(g(x), lo, hi)`` in float64  (A7); q = sg as a tuple."""
    return q[4] * min(max(_g(q[0], x, v, q[1], q[2], q[3]), q[5]), q[6])


@cuda.jit(device=True)
def _live_slot(val, e, th):
    if e == 1:
        return val * th
    if e == 2:
        return val / th
    return val


@cuda.jit(device=True)
def _phi_live(x, v, q, live, th):
    """:func:`_phi` with slot k of (p0, p1, p2, scale) times th, divided by th or
    as it is by the base-3 digit k of ``live`` (M10); twin of
    ``scan_kernels._live_slots``."""
    q0 = _live_slot(q[1], live % 3, th)
    q1 = _live_slot(q[2], (live // 3) % 3, th)
    q2 = _live_slot(q[3], (live // 9) % 3, th)
    q3 = _live_slot(q[4], (live // 27) % 3, th)
    return q3 * min(max(_g(q[0], x, v, q0, q1, q2), q[5]), q[6])


@cuda.jit(device=True)
def _prim(x, q):
    """``G(x)`` in float64  (A6)."""
    return _G(q[0], x, 0.0, q[1], q[2], q[3])


@cuda.jit(device=True)
def _params(P, n):
    return (P[0, n], P[1, n], P[2, n], P[3, n], P[4, n], P[5, n], P[6, n], P[7, n],
            P[P_UBIAS, n], P[P_UMIN, n])


@cuda.jit(device=True)
def _leak1(reset, by_theta, athr, al, up, vp, ga, th, ba, ap, ur, one):
    """The leak and reset terms of u_t that the clip acts on (M11), twin of
    ``reference.leak_reset``."""
    if reset == R_SUBTRACT and by_theta:
        if athr:
            return al * up - ga * (th + ba * ap) * vp
        return al * up - ga * th * vp
    if reset == R_SUBTRACT:
        return al * up - ga * vp
    if reset == R_ZERO:
        return al * ((one - vp) * up + vp * ur)
    return al * up


@cuda.jit(device=True)
def _acc(acc, b, n):
    """The N_ACC partial sums of neuron (b, n), rows ACC_*."""
    return (acc[0, b, n], acc[1, b, n], acc[2, b, n], acc[3, b, n],
            acc[4, b, n], acc[5, b, n], acc[6, b, n], acc[ACC_UBIAS, b, n], acc[ACC_RVA, b, n],
            acc[ACC_UMIN, b, n])


@cuda.jit(device=True)
def _store_acc(acc, b, n, c, partials):
    """Write the sums back: rows alpha, theta, rv, u_bias and u_min only when
    asked for (``partials``, as in cpu.py), the model's rows always."""
    for j in range(N_ACC):
        if partials or (j >= 3 and j != ACC_UBIAS and j != ACC_UMIN):
            acc[j, b, n] = c[j]


# --------------------------------------------------------------------------
# One step of one neuron (shared by the scans and the recurrent kernels)
# --------------------------------------------------------------------------

@cuda.jit(device=True)
def _forward_step(J, up, vp, sp, ap, rt, p, mode, q, one, first):
    """Step of one neuron: (S1), (R1), (A2)-(A6), (L1), (L2), (T7), (M1), (M2), (M6),
    (M7), (M9).
    J is the input current (plus any all-to-all recurrence), up..ap the
    previous state, rt the uniform number of the stochastic forward; ``first``:
    the first step, whose initial state the clip spares (M11).  Returns u, v,
    s, a (s: the synaptic state, or with norm_input the input current)."""
    reset, strict, fwd, _, synaptic, adaptive, onetoone, norm, spikes, decay_in, _, by_theta, \
        current, _, clip = mode
    al, th, ga, ur, als, rh, ba, rr, ub, mn = p
    zero = one - one
    if onetoone:                                                          # (R1)
        J = J + rr * vp
    st = zero
    if synaptic and decay_in:                                             # (M3)
        st = als * (sp + J)
        J = st
    elif synaptic:                                                        # (S1)
        st = als * sp + J
        J = st
    if norm:                                                              # (M1)
        if not synaptic:
            st = J
        J = (one - al) * J
    athr = adaptive != 0 and current == 0   # the adaptation raises the threshold (L2)
    hp = vp                              # a zero reset of a count reads min(v, 1) (M12)
    if reset == R_ZERO and spikes != 1:
        hp = min(vp, one)
    if clip and first:                   # the initial state is not clipped      (M11)
        ut = _leak1(reset, by_theta, athr, al, up, hp, ga, th, ba, ap, ur, one) + J + ub
    elif clip:                           # the decayed post-reset state clipped  (M11)
        ut = max(_leak1(reset, by_theta, athr, al, up, hp, ga, th, ba, ap, ur, one),
                 al * mn) + J + ub
    elif reset == R_SUBTRACT and by_theta and athr:                       # (M7), (L2)
        ut = al * up + J + ub - ga * (th + ba * ap) * vp
    elif reset == R_SUBTRACT and by_theta:                                # (M7)
        ut = al * up + J + ub - ga * th * vp
    elif reset == R_SUBTRACT:                                             # (A2), (M6)
        ut = al * up + J + ub - ga * vp
    elif reset == R_ZERO:                                                 # (A3), (M6)
        ut = al * ((one - hp) * up + hp * ur) + J + ub
    else:                                                                 # (A4), (M6)
        ut = al * up + J + ub
    at = zero
    if adaptive and current:                                              # (L1), (M9)
        at = rh * ap + vp
        ut = ut - ba * at
        x = ut - th
    elif adaptive:                                                        # (L1), (L2)
        at = rh * ap + vp
        x = ut - (th + ba * at)
    else:
        x = ut - th
    if spikes != 1:                                                       # (M2)
        thk = th + ba * at if athr else th
        vt = zero
        if strict:
            if ut > thk:
                vt = _cast(math.ceil(ut / thk), one) - one
        elif ut >= thk:
            vt = _cast(math.floor(ut / thk), one)
        if spikes > 0 and vt > spikes:
            vt = _cast(spikes, one)
    elif fwd == FWD_SMOOTH:                                                        # (A6)
        vt = _flush(_cast(_prim(float(x), q), one), one)
    elif fwd == FWD_STOCHASTIC:                                                        # (T7)
        vt = one if rt < _cast(_prim(float(x), q), one) else zero
    elif fwd == FWD_STOCHASTIC_PHI:                     # probability phi itself   (M13)
        vt = one if rt < _flush(_cast(_phi(float(x), 0.0, q), one), one) else zero
    elif strict:                                                          # (A5) strict
        vt = one if x > zero else zero
    else:                                                                 # (A5)
        vt = one if x >= zero else zero
    return ut, vt, st, at


@cuda.jit(device=True)
def _state_before(u, v, s, a, state0, t, b, n, synaptic, adaptive, zero):
    """(u, v, s, a) of neuron (b, n) before step t: the trace's row t - 1, or
    the initial state (v_0 = 0); s and a are zero for a cell without them."""
    if t > 0:
        return (u[t - 1, b, n], _cast(v[t - 1, b, n], zero), s[t - 1, b, n] if synaptic else zero,
                a[t - 1, b, n] if adaptive else zero)
    return (state0[0, b, n], zero, state0[1, b, n] if synaptic else zero,
            state0[2, b, n] if adaptive else zero)


@cuda.jit(device=True)
def _backward_step(u, v, s, a, state0, dv, du, t, b, n, has_dv, has_du, has_rec, rt,
                   p, mode, q, ubn, sbn, abn, c, one):
    """Reverse step t of neuron (b, n): (A7)-(A17), (S2)-(S4), (R2), (R3),
    (L3)-(L7), (M1), (M6)-(M9).  ubn, sbn, abn are ubar, sbar, abar of step t+1, c the
    N_ACC partial sums (rows ACC_*); rt the all-to-all term
    ``(R^T dI_{t+1})[n]``.  Returns ubar, sbar, abar and dL/dI of step t and
    the updated sums."""
    reset, _, _, detach, synaptic, adaptive, onetoone, norm, spikes, decay_in, tgrad, by_theta, \
        current, live, clip = mode
    al, th, ga, ur, als, rh, ba, rr, _, mn = p
    zero = one - one
    athr = adaptive != 0 and current == 0   # the adaptation raises the threshold (L2)
    adapt_reset = by_theta != 0 and athr and reset == R_SUBTRACT         # (M7)
    ut = u[t, b, n]
    vt = _cast(v[t, b, n], one)           # spikes may be stored as uint8
    at = a[t, b, n] if adaptive else zero
    upr, vpr, spr, apr = _state_before(u, v, s, a, state0, t, b, n, synaptic, adaptive, zero)
    hvt, hvpr = vt, vpr                   # what a zero reset reads: min(v, 1) of a count (M12)
    if reset == R_ZERO and spikes != 1:
        hvt, hvpr = min(vt, one), min(vpr, one)
    dvt = dv[t, b, n] if has_dv else zero
    dut = du[t, b, n] if has_du else zero
    uk = ubn                    # k_{t+1} ubar_{t+1}; kc the mask k_t        (M11)
    kc = True
    if clip:
        if not (_leak1(reset, by_theta, athr, al, ut, hvt, ga, th, ba, at, ur, one) > al * mn):
            uk = zero
        kc = t == 0 or _leak1(reset, by_theta, athr, al, upr, hvpr, ga, th, ba, apr, ur,
                              one) > al * mn          # the initial state is not clipped
    # phi_t = scale * clip(g(u_t - theta_t)), rounded once               (A7), (L2)
    if athr:
        x = ut - (th + ba * at)
    else:
        x = ut - th
    if live != 0:                       # the surrogate at theta_t itself   (M10)
        tk = (th + ba * at) if athr else th
        ph = _flush(_cast(_phi_live(float(x), float(vt), q, live, float(tk)), one), one)
    else:
        ph = _flush(_cast(_phi(float(x), float(vt), q), one), one)
    # vbar_t = delta_t + reset_v_t (+ recurrence, adaptation)            (A8), (A10), (A11)
    if detach or reset == R_NONE:
        vbar = dvt + zero
    elif reset == R_SUBTRACT and adapt_reset:                             # (M7)
        vbar = dvt + (-ga * (th + ba * at) * uk)
    elif reset == R_SUBTRACT and by_theta:                                # (M7)
        vbar = dvt + (-ga * th * uk)
    elif reset == R_SUBTRACT:
        vbar = dvt + (-ga * uk)
    else:
        vbar = dvt + al * (ur - ut) * uk
    if onetoone:                                                          # (R2), (M1)
        if synaptic:
            vbar = vbar + rr * (als * sbn if decay_in else sbn)           # (M3)
        else:
            vbar = vbar + rr * ((one - al) * ubn if norm else ubn)
    if has_rec:                                                           # (R2)
        vbar = vbar + rt
    if adaptive:                                                          # (L3)
        vbar = vbar + abn
    # ubar_t = eps_t + phi_t vbar_t + leak_t ubar_{t+1}; gradients        (A9), (A14)-(A17)
    c0, c1, c2, c3, c4, c5, c6, c7, c8, c9 = c
    st = s[t, b, n] if (norm or decay_in) else zero                     # (M1), (M3)
    if clip:                                                              # (M11)
        if reset == R_ZERO:
            ub = dut + ph * vbar + al * (one - hvt) * uk
            d = (one - hvpr) * upr + hvpr * ur if kc else mn
        else:
            ub = dut + ph * vbar + al * uk
            d = upr if kc else mn
        c0 = c0 + ub * (d - st if norm else d)
        if not kc:
            c9 = c9 + ub                                                  # dL/du_min / alpha
    elif reset == R_ZERO:
        ub = dut + ph * vbar + al * (one - hvt) * ubn                     # (A10b)
        if norm:
            c0 = c0 + ub * ((one - hvpr) * upr + hvpr * ur - st)          # (A14b), (M1)
        else:
            c0 = c0 + ub * ((one - hvpr) * upr + hvpr * ur)               # (A14b)
    else:
        ub = dut + ph * vbar + al * ubn                                   # (A10a,c)
        if norm:
            c0 = c0 + ub * (upr - st)                                     # (A14a), (M1)
        else:
            c0 = c0 + ub * upr                                            # (A14a)
    if tgrad == TG_RATIO:                                                 # (M4)
        c1 = c1 - ph * vbar * (ut / th)
    elif tgrad != TG_NONE:                                                # (A15); (M8): 0
        c1 = c1 - ph * vbar
    c2 = c2 + uk * hvt                    # (A15)-(A17); h_t for a zero reset (M12)
    c7 = c7 + ub                                                          # (M6)
    sb = sbn
    if synaptic:                                                          # (S2), (S4)
        sb = ((one - al) * ub if norm else ub) + als * sbn
        if decay_in:                                                      # (M3)
            c3 = c3 + sb * (st / als)
            ib = als * sb
        else:
            c3 = c3 + sb * spr
            ib = sb                                                       # (S3)
    else:
        ib = (one - al) * ub if norm else ub                              # (A13), (M1)
    ab = abn
    if adaptive and current:                                              # (M9), (L6)
        ab = -ba * ub + rh * abn
        c4 = c4 + ab * apr
        c5 = c5 - ub * at
    elif adaptive:                                                        # (L4), (L6), (L7)
        if tgrad != TG_NONE:
            ab = -ba * ph * vbar + rh * abn
        else:                                   # the spike's threshold: no gradient (M8)
            ab = rh * abn
        if adapt_reset:                         # a_t in the reset of u_{t+1}  (M7)
            ab = ab - ga * ba * vt * uk
            c8 = c8 + uk * vt * at
        c4 = c4 + ab * apr
        if tgrad != TG_NONE:
            c5 = c5 - ph * vbar * at
    if onetoone:                                                          # (R3)
        c6 = c6 + ib * vpr
    return ub, sb, ab, ib, (c0, c1, c2, c3, c4, c5, c6, c7, c8, c9)


# --------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------

@cuda.jit(**_JIT)
def _forward_scan_kernel(I, static, t0, t1, state0, P, mode, sg, rnd, u, v, s, a, one):
    B, N = u.shape[1], u.shape[2]
    i = cuda.grid(1)
    if i >= B * N:
        return
    b = i // N
    n = i - b * N
    synaptic, adaptive, norm = mode[M_SYN], mode[M_ADAPT], mode[M_NORM]
    stochastic = mode[M_FORWARD] >= FWD_STOCHASTIC       # (T7), (M13)
    p = _params(P, n)
    zero = one - one
    up, vp, sp, ap = _state_before(u, v, s, a, state0, t0, b, n, synaptic, adaptive, zero)
    for t in range(t0, t1):
        J = I[0, b, n] if static else I[t, b, n]
        rt = rnd[t, b, n] if stochastic else 0.0
        up, vp, sp, ap = _forward_step(J, up, vp, sp, ap, rt, p, mode, sg, one, t == 0)
        u[t, b, n] = up
        v[t, b, n] = vp
        if synaptic or norm:
            s[t, b, n] = sp
        if adaptive:
            a[t, b, n] = ap


@cuda.jit(**_JIT)
def _backward_scan_kernel(u, v, s, a, state0, dv, du, rec, have, static, t0, t1,
                          P, mode, sg, dI, acc, adj, dstate0, one):
    B, N = u.shape[1], u.shape[2]
    i = cuda.grid(1)
    if i >= B * N:
        return
    b = i // N
    n = i - b * N
    has_dv, has_du, has_rec, partials = have
    synaptic, adaptive = mode[M_SYN], mode[M_ADAPT]
    p = _params(P, n)
    zero = one - one
    ubn = adj[0, b, n]          # ubar_{t+1}, sbar_{t+1}, abar_{t+1}
    sbn = adj[1, b, n]
    abn = adj[2, b, n]
    # partial sums continue acc (and dI[0] when static), as in cpu.py
    c = _acc(acc, b, n)
    sum_dI = dI[0, b, n] if static else zero
    for t in range(t1 - 1, t0 - 1, -1):
        rt = rec[t, b, n] if has_rec else zero
        ubn, sbn, abn, Ib, c = _backward_step(u, v, s, a, state0, dv, du, t, b, n, has_dv,
                                              has_du, has_rec, rt, p, mode, sg, ubn, sbn, abn,
                                              c, one)                     # (S3), (A13)
        if static:                                                        # (A21)
            sum_dI += Ib
        else:
            dI[t, b, n] = Ib
    _store_acc(acc, b, n, c, partials)
    adj[0, b, n] = ubn
    adj[1, b, n] = sbn
    adj[2, b, n] = abn
    if static:
        dI[0, b, n] = sum_dI
    if t0 == 0:
        dstate0[0, b, n] = p[0] * ubn             # (A18); the clip spares u_0 (M11)
        dstate0[1, b, n] = p[4] * sbn if synaptic else zero               # (S5)
        dstate0[2, b, n] = p[5] * abn if adaptive else zero               # (L8)


@cuda.jit(**_JIT)
def _forward_recurrent_kernel(I, static, t0, t1, state0, P, RT, mode, sg, rnd, u, v, s, a, one):
    N = u.shape[2]
    b = cuda.blockIdx.x
    synaptic, adaptive, norm = mode[M_SYN], mode[M_ADAPT], mode[M_NORM]
    stochastic = mode[M_FORWARD] >= FWD_STOCHASTIC       # (T7), (M13)
    zero = one - one
    for t in range(t0, t1):
        for n in range(cuda.threadIdx.x, N, cuda.blockDim.x):
            It = I[0, b, n] if static else I[t, b, n]
            up, vp, sp, ap = _state_before(u, v, s, a, state0, t, b, n, synaptic, adaptive, zero)
            if t == 0:
                J = It
            else:
                # rec = v_{t-1} R^T, skipping silent neurons (event driven)  (R1)
                r = zero
                for j in range(N):
                    w = _cast(v[t - 1, b, j], one)
                    if w != zero:
                        r += w * RT[j, n]
                J = r + It
            rt = rnd[t, b, n] if stochastic else 0.0
            ut, vt, st, at = _forward_step(J, up, vp, sp, ap, rt, _params(P, n), mode, sg, one,
                                           t == 0)
            u[t, b, n] = ut
            v[t, b, n] = vt
            if synaptic or norm:
                s[t, b, n] = st
            if adaptive:
                a[t, b, n] = at
        cuda.syncthreads()      # v_t of the whole row before step t+1


@cuda.jit(**_JIT)
def _backward_recurrent_kernel(u, v, s, a, state0, dv, du, have, t0, t1, P, R, mode, sg,
                               dI, dI_next, acc, adj, dstate0, one):
    N = u.shape[2]
    b = cuda.blockIdx.x
    has_dv, has_du, has_next, partials = have
    synaptic, adaptive = mode[M_SYN], mode[M_ADAPT]
    zero = one - one
    for t in range(t1 - 1, t0 - 1, -1):
        has_rec = t < t1 - 1 or has_next
        for n in range(cuda.threadIdx.x, N, cuda.blockDim.x):
            rt = zero
            if t < t1 - 1:                                                # (R2)
                for j in range(N):
                    rt += dI[t + 1, b, j] * R[j, n]
            elif has_next:
                for j in range(N):
                    rt += dI_next[b, j] * R[j, n]
            c = _acc(acc, b, n)
            ub, sb, ab, ib, c = _backward_step(u, v, s, a, state0, dv, du, t, b, n, has_dv,
                                               has_du, has_rec, rt, _params(P, n), mode, sg,
                                               adj[0, b, n], adj[1, b, n], adj[2, b, n], c, one)
            _store_acc(acc, b, n, c, partials)
            adj[0, b, n] = ub
            adj[1, b, n] = sb
            adj[2, b, n] = ab
            dI[t, b, n] = ib                                              # (S3), (A13)
        cuda.syncthreads()      # dI_t of the whole row before step t-1
    if t0 == 0:
        for n in range(cuda.threadIdx.x, N, cuda.blockDim.x):
            dstate0[0, b, n] = P[0, n] * adj[0, b, n]  # (A18); the clip spares u_0 (M11)
            dstate0[1, b, n] = P[4, n] * adj[1, b, n] if synaptic else zero   # (S5)
            dstate0[2, b, n] = P[5, n] * adj[2, b, n] if adaptive else zero   # (L8)


# --------------------------------------------------------------------------
# Host <-> device plumbing
# --------------------------------------------------------------------------

def _is_device(x):
    if hasattr(x, "__cuda_array_interface__"):
        return True
    return SIMULATOR and hasattr(x, "copy_to_host")


def _dev(x):
    """``x`` on the device: a device array as it is, a host array copied."""
    if _is_device(x):
        return x
    return cuda.to_device(np.ascontiguousarray(x))


def _copy_back(hosts, devs):
    """Copy device results into the host arrays they came from."""
    for h, d in zip(hosts, devs):
        if d is not h:
            if isinstance(h, np.ndarray) and h.flags.c_contiguous and h.flags.writeable:
                d.copy_to_host(h)
            else:
                h[...] = d.copy_to_host()


def _one(arr):
    return np.dtype(arr.dtype).type(1)


def _mode(mode):
    return tuple(int(m) for m in mode)


def _sgt(sg):
    return tuple(float(x) for x in sg)


def _flags(have):
    return tuple(bool(h) for h in have)


def _launch(n, threads):
    """(blocks, threads per block) for n threads, at most ``threads`` a block."""
    tpb = min(threads, 32 * ((n + 31) // 32))
    return (n + tpb - 1) // tpb, tpb


# --------------------------------------------------------------------------
# Public kernels (argument order and semantics of cpu.py / reference.py)
# --------------------------------------------------------------------------

def cell_forward_scan(I, static, t0, t1, state0, P, mode, sg, rnd, u, v, s, a):
    """Forward steps t0 <= t < t1 (``reference.cell_forward_scan``)."""
    T, B, N = u.shape
    if B * N == 0 or t1 <= t0:
        return
    outs = (u, v, s, a)
    d = [_dev(x) for x in outs]
    blocks, tpb = _launch(B * N, SCAN_THREADS)
    _forward_scan_kernel[blocks, tpb](_dev(I), bool(static), int(t0), int(t1), _dev(state0),
                                      _dev(P), _mode(mode), _sgt(sg), _dev(rnd), *d, _one(u))
    _copy_back(outs, d)


def cell_backward_scan(u, v, s, a, state0, dv, du, rec, have, static, t0, t1,
                       P, mode, sg, dI, acc, adj, dstate0):
    """Reverse steps t1 > t >= t0 (``reference.cell_backward_scan``)."""
    T, B, N = u.shape
    if B * N == 0:
        return
    outs = (dI, acc, adj, dstate0)
    d = [_dev(x) for x in outs]
    blocks, tpb = _launch(B * N, SCAN_THREADS)
    _backward_scan_kernel[blocks, tpb](_dev(u), _dev(v), _dev(s), _dev(a), _dev(state0),
                                       _dev(dv), _dev(du), _dev(rec), _flags(have), bool(static),
                                       int(t0), int(t1), _dev(P), _mode(mode), _sgt(sg),
                                       *d, _one(u))
    _copy_back(outs, d)


def cell_forward_recurrent(I, static, t0, t1, state0, P, RT, mode, sg, rnd, u, v, s, a):
    """All-to-all recurrent forward over t0 <= t < t1, RT = R^T
    (``reference.cell_forward_recurrent``)."""
    T, B, N = u.shape
    if B * N == 0 or t1 <= t0:
        return
    outs = (u, v, s, a)
    d = [_dev(x) for x in outs]
    tpb = _launch(N, RECURRENT_THREADS)[1]
    _forward_recurrent_kernel[B, tpb](_dev(I), bool(static), int(t0), int(t1), _dev(state0),
                                      _dev(P), _dev(RT), _mode(mode), _sgt(sg), _dev(rnd), *d,
                                      _one(u))
    _copy_back(outs, d)


def cell_backward_recurrent(u, v, s, a, state0, dv, du, have, t0, t1, P, R, mode, sg,
                            dI, dI_next, acc, adj, dstate0):
    """Its adjoint over t1 > t >= t0 (``reference.cell_backward_recurrent``)."""
    T, B, N = u.shape
    if B * N == 0 or t1 <= t0:
        return
    outs = (dI, acc, adj, dstate0)
    d = [_dev(x) for x in outs]
    tpb = _launch(N, RECURRENT_THREADS)[1]
    _backward_recurrent_kernel[B, tpb](_dev(u), _dev(v), _dev(s), _dev(a), _dev(state0),
                                       _dev(dv), _dev(du), _flags(have), int(t0), int(t1),
                                       _dev(P), _dev(R), _mode(mode), _sgt(sg), d[0],
                                       _dev(dI_next), *d[1:], _one(u))
    _copy_back(outs, d)


# --------------------------------------------------------------------------
# Device helpers: gemm, add_bias, sum_rows
# --------------------------------------------------------------------------

_cupy = None
if not SIMULATOR:
    try:
        import cupy as _cupy
    except Exception:       # not installed, or no usable CUDA runtime for it
        _cupy = None


def _make_gemm(dt):
    @cuda.jit(**_JIT)
    def kernel(A, B, C, trans_a, trans_b, accumulate):
        """C = op(A) @ op(B) (+ C) by TILE x TILE tiles in shared memory.  Thread
        (ty, tx) loads so that consecutive tx read consecutive addresses."""
        sA = cuda.shared.array((TILE, _TILE_PAD), dt)     # sA[i, k] = op(A)[i0 + i, k0 + k]
        sB = cuda.shared.array((TILE, _TILE_PAD), dt)     # sB[k, j] = op(B)[k0 + k, j0 + j]
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        i0 = cuda.blockIdx.y * TILE
        j0 = cuda.blockIdx.x * TILE
        M, Nc = C.shape
        K = A.shape[0] if trans_a else A.shape[1]
        zero = dt(0)
        total = zero
        for k0 in range(0, K, TILE):
            if trans_a:                                  # A is (K, M)
                r, col = k0 + ty, i0 + tx
                sA[tx, ty] = A[r, col] if r < K and col < M else zero
            else:
                r, col = i0 + ty, k0 + tx
                sA[ty, tx] = A[r, col] if r < M and col < K else zero
            if trans_b:                                  # B is (Nc, K)
                r, col = j0 + ty, k0 + tx
                sB[tx, ty] = B[r, col] if r < Nc and col < K else zero
            else:
                r, col = k0 + ty, j0 + tx
                sB[ty, tx] = B[r, col] if r < K and col < Nc else zero
            cuda.syncthreads()
            for k in range(TILE):
                total += sA[ty, k] * sB[k, tx]
            cuda.syncthreads()
        i = i0 + ty
        j = j0 + tx
        if i < M and j < Nc:
            if accumulate:
                C[i, j] = C[i, j] + total
            else:
                C[i, j] = total
    return kernel


_GEMM = {np.dtype(np.float32): _make_gemm(float32), np.dtype(np.float64): _make_gemm(float64)}


def _check_float(name, x, dtype=None):
    dt = np.dtype(x.dtype)
    if dt not in _GEMM:
        raise TypeError(f"{name}: expected a float32 or float64 array, got dtype {dt}")
    if dtype is not None and dt != dtype:
        raise TypeError(f"{name}: dtype {dt} differs from {dtype}")
    return dt


def gemm(A, B, C, trans_a=False, trans_b=False, accumulate=False):
    """``C = op(A) @ op(B)`` (``C +=`` when ``accumulate``), all 2-D, in C's dtype;
    ``op`` transposes when ``trans_a``/``trans_b``.  Device or host arrays; C
    is updated in place.  CuPy's matmul when CuPy is importable (not in the
    simulator), else a tiled shared-memory kernel."""
    dt = _check_float("C", C)
    _check_float("A", A, dt)
    _check_float("B", B, dt)
    if len(A.shape) != 2 or len(B.shape) != 2 or len(C.shape) != 2:
        raise ValueError(f"gemm: expected 2-D arrays, got {A.shape}, {B.shape}, {C.shape}")
    M, K = A.shape[::-1] if trans_a else A.shape
    K2, Nc = B.shape[::-1] if trans_b else B.shape
    if K != K2 or tuple(C.shape) != (M, Nc):
        raise ValueError(f"gemm: op(A) {(M, K)} @ op(B) {(K2, Nc)} does not give C {tuple(C.shape)}")
    dA, dB, dC = _dev(A), _dev(B), _dev(C)
    if _cupy is not None:
        a, b, c = (_cupy.asarray(x) for x in (dA, dB, dC))
        prod = _cupy.matmul(a.T if trans_a else a, b.T if trans_b else b)
        if accumulate:
            c += prod
        else:
            c[...] = prod
    elif M and Nc:
        grid = ((Nc + TILE - 1) // TILE, (M + TILE - 1) // TILE)
        _GEMM[dt][grid, (TILE, TILE)](dA, dB, dC, bool(trans_a), bool(trans_b), bool(accumulate))
    _copy_back((C,), (dC,))


@cuda.jit(**_JIT)
def _add_bias_kernel(X, b):
    j, i = cuda.grid(2)            # x over columns: consecutive threads, consecutive j
    if i < X.shape[0] and j < X.shape[1]:
        X[i, j] = X[i, j] + b[j]


def add_bias(X, b):
    """``X[r, :] += b`` for every row of the 2-D X, in place."""
    dt = _check_float("X", X)
    _check_float("b", b, dt)
    R, N = X.shape
    if tuple(b.shape) != (N,):
        raise ValueError(f"add_bias: b has shape {tuple(b.shape)}, expected ({N},)")
    dX = _dev(X)
    if R and N:
        _add_bias_kernel[((N + 31) // 32, (R + 7) // 8), (32, 8)](dX, _dev(b))
    _copy_back((X,), (dX,))


@cuda.jit(**_JIT)
def _chunk_sums_kernel(X, chunk, part):
    """part[g, j] = sum of X[g*chunk : (g+1)*chunk, j] (consecutive threads on
    consecutive columns)."""
    j, g = cuda.grid(2)
    R, N = X.shape
    if j < N and g < part.shape[0]:
        total = X[g * chunk, j]
        for r in range(g * chunk + 1, min(R, (g + 1) * chunk)):
            total += X[r, j]
        part[g, j] = total


@cuda.jit(**_JIT)
def _column_sums_kernel(X, out, accumulate, zero):
    """out[j] (+)= sum of column j of X, rows in order."""
    j = cuda.grid(1)
    if j < X.shape[1]:
        total = zero
        for r in range(X.shape[0]):
            total += X[r, j]
        out[j] = out[j] + total if accumulate else total


CHUNK = 256     # rows summed by one thread in the first pass of sum_rows


def sum_rows(X, out, accumulate=False):
    """``out[:] = X.sum(axis=0)`` (``+=`` when ``accumulate``) for a 2-D X.  Long
    columns are summed in chunks of CHUNK rows (one thread each), then the
    chunk sums in order: deterministic."""
    dt = _check_float("X", X)
    _check_float("out", out, dt)
    R, N = X.shape
    if tuple(out.shape) != (N,):
        raise ValueError(f"sum_rows: out has shape {tuple(out.shape)}, expected ({N},)")
    dX, dout = _dev(X), _dev(out)
    if N:
        src = dX
        if R > CHUNK:
            G = (R + CHUNK - 1) // CHUNK
            src = cuda.device_array((G, N), dt)
            _chunk_sums_kernel[((N + 31) // 32, (G + 7) // 8), (32, 8)](dX, CHUNK, src)
        blocks, tpb = _launch(N, SCAN_THREADS)
        _column_sums_kernel[blocks, tpb](src, dout, bool(accumulate), dt.type(0))
    _copy_back((out,), (dout,))
