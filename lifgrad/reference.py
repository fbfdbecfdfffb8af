"""Plain NumPy forward and adjoint scans of a LIF cell: the spec in code.

One cell covers every neuron model of lifgrad, switched by flags in ``mode``:

    s_t     = alpha_s s_{t-1} + J_t           synaptic (else s_t = J_t)       (S1)
              or alpha_s (s_{t-1} + J_t) with decay_input                      (M3)
    J_t     = I_t + r * v_{t-1}               one-to-one recurrence (else I_t) (R1)
    u_t     = alpha u_{t-1} + c s_t + b_u - gamma v_{t-1}                      (A2)-(A4)
              (subtract; zero: alpha ((1 - v) u + v u_reset) + c s_t + b_u;
              none: alpha u_{t-1} + c s_t + b_u)
              c = 1, or 1 - alpha with norm_input                              (M1)
              b_u the membrane bias (default 0), a current added to the
              membrane directly, not through the synapse (Rockpool's bias)    (M6)
              gamma = gamma_{t-1} = k theta_{t-1} with reset_by_threshold     (M7)
              - beta_a a_t with the adaptation as a current                   (M9)
              clip: max(alpha u_{t-1} - gamma v_{t-1}, alpha u_min) + c s_t + b_u,
              the leak and reset terms (any reset) clipped at alpha u_min,
              from the second step on: the initial state is not clipped     (M11)
              a zero reset of a count reads h = min(v, 1), whether it fired (M12)
    a_t     = rho a_{t-1} + v_{t-1}           adaptive (else a_t = 0)          (L1)
    theta_t = theta + beta_a a_t              (theta with the current)         (L2)
    v_t     = H(u_t - theta_t)  or  G(u_t - theta_t)                           (A5), (A6)
              or min(floor(u_t / theta_t), M) spikes (max_spikes M)            (M2)
    phi_t   = scale * clip(g(u_t - theta_t)), the surrogate's threshold
              parameter theta_t itself with a live surrogate threshold        (A7), (M10)

An all-to-all recurrence ``I_t = W x_t + b + R v_{t-1}`` couples neurons
within a step: :func:`cell_forward_recurrent` / :func:`cell_backward_recurrent`
do one product per step and one step of the scan (the backward passes
``rec_t = R^T dL/dI_{t+1}`` into it).

Every function here has a compiled twin with the same name and argument order
in ``lifgrad/kernels/cpu.py``; tests compare them.  Arrays are ``(T, B, N)``,
time first; 0-based in code (``u[t]`` is ``u_{t+1}`` of the derivations).
Tags: ``derivations/lif_adjoint.md`` (A*), ``synaptic.md`` (S*),
``recurrent.md`` (R*), ``adaptive.md`` (L*).

Packed arguments (numbers only, resolved by ``lifgrad.functional``):

    P       (N_P, N)  rows alpha, theta, gamma, u_reset, alpha_s, rho, beta_a, r,
                      u_bias, u_min (N_P = 10)
    mode    15 ints   reset (0 subtract, 1 zero, 2 none), strict, forward (0 hard,
                      1 smooth, 2 stochastic), detach,
                      synaptic, adaptive, onetoone, norm_input,
                      max spikes per step (1; M; 0 for no maximum), decay_input,
                      theta_grad (0 shift, 1 ratio, 2 none), reset_by_threshold,
                      adaptation current, live surrogate threshold (0 off, else
                      the slots' base-3 code, M10), clip at u_min (M11)
    sg      7 numbers surrogate (code, p0, p1, p2, scale, clip_lo, clip_hi)
    state0  (3, B, N) u_0, s_0, a_0
    acc     (N_ACC, B, N) partial sums, see ACC_* below (N_ACC = 10)
    adj     (3, B, N) adjoint carried between calls: ubar, sbar, abar at t1
"""
from __future__ import annotations

import numpy as np

from .surrogates import FAMILIES, flush_subnormal

from .kernels.constants import (M_ADAPT, M_ADAPT_CURRENT, M_DECAY_IN, M_DETACH,  # noqa: E402
                                M_FORWARD, M_NORM, M_ONE, M_RESET, M_RESET_THETA, M_SPIKES,
                                M_STRICT, M_SYN, M_THETA_GRAD, N_ACC, N_MODE, N_P, R_NONE,
                                R_SUBTRACT, R_ZERO, TG_NONE, TG_RATIO)

SUBTRACT, ZERO, NONE = R_SUBTRACT, R_ZERO, R_NONE
# (N_P, N_ACC and the bias rows come from kernels/constants.py, which the kernels read)
P_ALPHA, P_THETA, P_GAMMA, P_URESET, P_ALPHA_S, P_RHO, P_BETA_A, P_R, P_UBIAS, P_UMIN = range(N_P)
M_SMOOTH = M_FORWARD          # the forward flag: 0 hard, 1 smooth, 2 stochastic
(ACC_ALPHA, ACC_THETA, ACC_RV, ACC_ALPHA_S, ACC_RHO, ACC_BETA_A, ACC_R, ACC_UBIAS,
 ACC_RVA, ACC_UMIN) = range(N_ACC)


def surrogate_phi(x, v, sg):
    """``phi = scale * clip(g(x), lo, hi)``  (A7).

    Evaluated in float64, rounded once to the layer's dtype and subnormals
    flushed to 0 (the kernels do the same, so float32 results agree to
    rounding)."""
    code, p0, p1, p2, scale, lo, hi = sg
    x64 = x.astype(np.float64)
    g = FAMILIES[int(code)].g_np(x64, v.astype(np.float64), p0, p1, p2)
    return flush_subnormal((scale * np.clip(g, lo, hi)).astype(x.dtype))


def live_slots(sg, live, theta_t):
    """``(p0, p1, p2, scale)`` of the surrogate at the threshold ``theta_t``
    (float64): slot k times theta_t, divided by it or as it is, by the base-3
    digit k of ``live`` (1, 2, 0) (M10)."""
    out = []
    for k in range(4):
        e = (live // 3 ** k) % 3
        out.append(sg[k + 1] * theta_t if e == 1 else sg[k + 1] / theta_t if e == 2
                   else sg[k + 1])
    return out


def surrogate_phi_live(x, v, sg, live, theta_t):
    """``phi = scale * clip(g(x; theta_t))`` with the surrogate's threshold
    replaced by each neuron's ``theta_t`` (``surrogate_threshold='live'``),
    (M10), rounded like :func:`surrogate_phi`."""
    code, lo, hi = sg[0], sg[5], sg[6]
    x64 = x.astype(np.float64)
    th = np.broadcast_to(np.asarray(theta_t).astype(np.float64), x64.shape)
    p0, p1, p2, scale = live_slots(sg, live, th)
    g = FAMILIES[int(code)].g_np(x64, v.astype(np.float64), p0, p1, p2)
    return flush_subnormal((scale * np.clip(g, lo, hi)).astype(x.dtype))


def surrogate_primitive(x, sg):
    """``G(x)`` (A6), evaluated in float64 and rounded once to the layer's dtype."""
    code, p0, p1, p2 = sg[:4]
    x64 = x.astype(np.float64)
    return flush_subnormal(np.asarray(FAMILIES[int(code)].G_np(x64, np.zeros_like(x64), p0, p1,
                                                               p2), dtype=x.dtype))


def _previous(arr, t, init):
    return arr[t - 1] if t > 0 else init


def spike_count(u, theta, strict, max_spikes):
    """Spikes of one step with several per step (M2): ``floor(u / theta)``
    (``u >= theta``; strict: ``ceil(u / theta) - 1`` for ``u > theta``, the
    number of multiples of theta that u exceeds), at most ``max_spikes``
    (0: no maximum), in u's dtype."""
    q = u / theta
    c = np.where(u > theta, np.ceil(q) - 1, 0) if strict else np.where(u >= theta, np.floor(q), 0)
    if max_spikes > 0:
        c = np.minimum(c, max_spikes)
    return c.astype(u.dtype)


def cell_forward_scan(I, static, t0, t1, state0, P, mode, sg, rnd, u, v, s, a):
    """Forward steps ``t0 <= t < t1``; the state before ``t0`` is read from the
    trace (or ``state0`` when ``t0 == 0``).  Writes u, v and, when the model
    has them, s (synaptic) and a (adaptive).  I: (T, B, N) or (1, B, N) static.
    rnd: (T, B, N) uniform numbers in [0, 1) for the stochastic forward, where
    ``v_t = 1`` if ``rnd_t < G(u_t - theta_t)`` (T7); unused otherwise."""
    reset, strict, fwd, _, synaptic, adaptive, onetoone, norm, spikes, decay_in, _, by_theta, \
        current, _, clip = mode
    alpha, theta, gamma, u_reset, alpha_s, rho, beta_a, r, u_bias, u_min = P
    zeros = np.zeros_like(state0[0])
    for t in range(t0, t1):
        u_prev = _previous(u, t, state0[0])
        v_prev = _previous(v, t, zeros)                 # v_0 = 0
        if adaptive:
            a_prev = _previous(a, t, state0[2])
            a_t = rho * a_prev + v_prev                                       # (L1)
            a[t] = a_t
        J = I[0] if static else I[t]
        if onetoone:
            J = J + r * v_prev                                                # (R1)
        if synaptic and decay_in:
            s_t = alpha_s * (_previous(s, t, state0[1]) + J)                  # (M3)
        elif synaptic:
            s_t = alpha_s * _previous(s, t, state0[1]) + J                    # (S1)
        else:
            s_t = J
        if synaptic or norm:
            s[t] = s_t               # norm_input: the input current, for dL/dalpha (M1)
        if norm:
            s_t = (1 - alpha) * s_t                                           # (M1)
        if clip:                               # the decayed post-reset state clipped (M11)
            L = leak_reset(mode, P, u_prev, v_prev, a_prev if adaptive else zeros)
            # the initial state is taken as given (sinabs does not clip it)
            u_t = (np.maximum(L, alpha * u_min) if t > 0 else L) + s_t + u_bias
        elif reset == SUBTRACT and by_theta:   # gamma_{t-1} = k theta_{t-1}            (M7)
            theta_prev = theta + beta_a * a_prev if adaptive and not current else theta
            u_t = alpha * u_prev + s_t + u_bias - gamma * theta_prev * v_prev
        elif reset == SUBTRACT:
            u_t = alpha * u_prev + s_t + u_bias - gamma * v_prev              # (A2), (M6)
        elif reset == ZERO:
            h_prev = fired(v_prev, spikes)                                    # (M12)
            u_t = alpha * ((1 - h_prev) * u_prev + h_prev * u_reset) + s_t + u_bias  # (A3)
        else:
            u_t = alpha * u_prev + s_t + u_bias                               # (A4), (M6)
        if adaptive and current:
            u_t = u_t - beta_a * a_t                                          # (M9)
            theta_t = theta
        elif adaptive:
            theta_t = theta + beta_a * a_t                                    # (L2)
        else:
            theta_t = theta
        x = u_t - theta_t
        if spikes != 1:
            v_t = spike_count(u_t, theta_t, strict, spikes)                   # (M2)
        elif fwd == 1:
            v_t = surrogate_primitive(x, sg)                                  # (A6)
        elif fwd == 2:                                                        # (T7)
            v_t = (rnd[t] < surrogate_primitive(x, sg).astype(np.float64)).astype(u.dtype)
        elif fwd == 3:                          # the probability phi itself     (M13)
            v_t = (rnd[t] < surrogate_phi(x, x, sg).astype(np.float64)).astype(u.dtype)
        elif strict:
            v_t = (x > 0).astype(u.dtype)                                     # (A5) strict
        else:
            v_t = (x >= 0).astype(u.dtype)                                    # (A5)
        u[t] = u_t
        v[t] = v_t


def cell_backward_scan(u, v, s, a, state0, dv, du, rec, have, static, t0, t1,
                       P, mode, sg, dI, acc, adj, dstate0):
    """Reverse steps ``t1 > t >= t0`` of the adjoint.

    dv, du: dL/dv_t, dL/du_t (delta_t, eps_t); rec: (T, B, N) with
    ``rec[t] = R^T dL/dI_{t+1}`` from an all-to-all recurrence.  ``have`` =
    (has_dv, has_du, has_rec, partials); ``partials`` False leaves the acc rows
    alpha, theta, rv and u_bias untouched (a layer that learns none of alpha,
    theta, gamma, u_reset, u_bias: the scan then writes only what its gradients
    read).  Reads and updates ``adj`` (ubar, sbar, abar of
    step t1, zero for t1 = T); adds to ``acc``; writes dI[t] (or adds to dI[0]
    when ``static``), and ``dstate0`` when the scan reaches t0 = 0.

    acc rows: alpha (A14), theta (A15), rv = sum ubar_{t+1} v_t (A15)-(A17),
    alpha_s (S4), rho (L6), beta_a (L7), r (R3), u_bias = sum ubar_t (M6)
    (with ``partials``, like alpha, theta and rv), rva = sum ubar_{t+1} v_t a_t
    (M7, when the reset removes the adaptive threshold), umin = sum of ubar_t
    where the clip holds, k_t = 0 (M11, with ``partials``).
    """
    has_dv, has_du, has_rec, partials = have
    reset, _, _, detach, synaptic, adaptive, onetoone, norm, spikes, decay_in, tgrad, by_theta, \
        current, live, clip = mode
    alpha, theta, gamma, u_reset, alpha_s, rho, beta_a, r, _, u_min = P
    # the reset removes k theta_t v_t with the adaptive theta_t                (M7)
    adapt_reset = reset == SUBTRACT and by_theta and adaptive and not current
    spike_theta = tgrad != TG_NONE           # the spike passes its threshold a gradient (M8)
    zeros = np.zeros_like(state0[0])
    c_in = (1 - alpha) if norm else 1                                         # (M1)
    ubar_next, sbar_next, abar_next = adj[0].copy(), adj[1].copy(), adj[2].copy()
    for t in range(t1 - 1, t0 - 1, -1):
        u_t, v_t = u[t], v[t]
        # the clip's mask k_{t+1}: what reaches u_t through the leak and the reset
        # of step t+1 (ubk = k_{t+1} ubar_{t+1}); the input path is not clipped (M11)
        ubk = clip_mask(mode, P, u_t, v_t, a[t] if adaptive else zeros, ubar_next) \
            if clip else ubar_next
        # dL/dI_{t+1}: what the recurrence of step t+1 sends back to v_t
        if synaptic:
            Ibar_next = alpha_s * sbar_next if decay_in else sbar_next        # (M3)
        else:
            Ibar_next = c_in * ubar_next
        # reset_v_t and leak_t, table (A10a-c); detach drops reset_v_t (A11)
        if reset == SUBTRACT and by_theta:                                    # (M7)
            leak = alpha
            reset_v = -gamma * (theta + beta_a * a[t] if adapt_reset else theta) * ubk
        elif reset == SUBTRACT:
            leak = alpha
            reset_v = -gamma * ubk
        elif reset == ZERO:
            h_t = fired(v_t, spikes)                                          # (M12)
            leak = alpha * (1 - h_t)
            reset_v = alpha * (u_reset - u_t) * ubk
        else:
            leak = alpha
            reset_v = zeros
        if detach:
            reset_v = zeros
        vbar = (dv[t] if has_dv else zeros) + reset_v                         # (A8)
        if onetoone:
            vbar = vbar + r * Ibar_next                                       # (R2)
        if has_rec:
            vbar = vbar + rec[t]                                              # (R2)
        if adaptive:
            vbar = vbar + abar_next                                           # (L3)
        if adaptive and not current:
            theta_t = theta + beta_a * a[t]                                   # (L2)
        else:
            theta_t = theta
        if live:                                                              # (M10)
            phi = surrogate_phi_live(u_t - theta_t, v_t, sg, live, theta_t)
        else:
            phi = surrogate_phi(u_t - theta_t, v_t, sg)                       # (A7)
        ubar = (du[t] if has_du else zeros) + phi * vbar + leak * ubk         # (A9), (M11)
        if synaptic:
            sbar = c_in * ubar + alpha_s * sbar_next                          # (S2), (M1)
            if decay_in:                                                      # (M3)
                acc[ACC_ALPHA_S] += sbar * (s[t] / alpha_s)
                Ibar = alpha_s * sbar
            else:
                acc[ACC_ALPHA_S] += sbar * _previous(s, t, state0[1])        # (S4)
                Ibar = sbar                                                   # (S3)
        else:
            sbar = zeros
            Ibar = c_in * ubar                                                # (A13), (M1)
        if adaptive and current:                                              # (M9)
            abar = -beta_a * ubar + rho * abar_next
            acc[ACC_RHO] += abar * _previous(a, t, state0[2])                 # (L6)
            acc[ACC_BETA_A] -= ubar * a[t]
        elif adaptive:
            if spike_theta:
                abar = -beta_a * phi * vbar + rho * abar_next                 # (L4)
            else:
                abar = rho * abar_next                                        # (M8)
            if adapt_reset:                                                   # (M7)
                d_abar, rva = adaptive_reset_terms(gamma, beta_a, v_t, ubk, a[t])
                abar = abar + d_abar
                acc[ACC_RVA] += rva
            acc[ACC_RHO] += abar * _previous(a, t, state0[2])                 # (L6)
            if spike_theta:
                acc[ACC_BETA_A] -= phi * vbar * a[t]                          # (L7)
        else:
            abar = zeros
        u_prev = _previous(u, t, state0[0])
        v_prev = _previous(v, t, zeros)
        h_prev = fired(v_prev, spikes) if reset == ZERO else v_prev          # (M12)
        if not partials:
            pass
        elif clip:                 # alpha u_min where clipped, k_t             (M11)
            k_t = leak_reset(mode, P, u_prev, v_prev,
                             _previous(a, t, state0[2]) if adaptive else zeros) > alpha * u_min
            if t == 0:                 # no clip on the initial state: k_0 = 1
                k_t = np.ones_like(k_t)
            d_alpha = ((1 - h_prev) * u_prev + h_prev * u_reset) if reset == ZERO else u_prev
            acc[ACC_ALPHA] += ubar * (np.where(k_t, d_alpha, u_min) - (s[t] if norm else 0))
            acc[ACC_UMIN] += np.where(k_t, 0, ubar)           # dL/du_min / alpha (M11)
        elif reset == ZERO:
            acc[ACC_ALPHA] += ubar * ((1 - h_prev) * u_prev + h_prev * u_reset
                                      - (s[t] if norm else 0))                # (A14b), (M1)
        else:
            acc[ACC_ALPHA] += ubar * (u_prev - s[t] if norm else u_prev)      # (A14a), (M1)
        if partials:
            if tgrad == TG_RATIO:
                acc[ACC_THETA] -= phi * vbar * (u_t / theta)                  # (M4)
            elif spike_theta:
                acc[ACC_THETA] -= phi * vbar                                  # (A15), (L5)
            acc[ACC_RV] += ubk * (fired(v_t, spikes) if reset == ZERO else v_t)  # (A15)-(A17)
            acc[ACC_UBIAS] += ubar                                            # (M6)
        if onetoone:
            acc[ACC_R] += Ibar * v_prev                                       # (R3)
        if static:
            dI[0] += Ibar                                                     # (A21)
        else:
            dI[t] = Ibar                                                      # (A13), (S3)
        ubar_next, sbar_next, abar_next = ubar, sbar, abar
    adj[0], adj[1], adj[2] = ubar_next, sbar_next, abar_next
    if t0 == 0:
        dstate0[0] = alpha * ubar_next            # (A18); the clip spares u_0 (M11)
        dstate0[1] = alpha_s * sbar_next if synaptic else zeros               # (S5)
        dstate0[2] = rho * abar_next if adaptive else zeros                   # (L8)


def leak_reset(mode, P, u_prev, v_prev, a_prev):
    """The leak and reset terms of ``u_t`` that the clip acts on (M11):
    ``alpha u_{t-1} - gamma v_{t-1}`` (subtract; ``- k theta_{t-1} v_{t-1}``
    with (M7)), ``alpha ((1 - v) u + v u_reset)`` (zero), ``alpha u_{t-1}``
    (none); ``a_prev`` is a_{t-1}, read by (M7) with the adaptive threshold."""
    reset, adaptive, by_theta, current = mode[M_RESET], mode[M_ADAPT], mode[M_RESET_THETA], \
        mode[M_ADAPT_CURRENT]
    alpha, theta, gamma, u_reset, beta_a = P[P_ALPHA], P[P_THETA], P[P_GAMMA], P[P_URESET], \
        P[P_BETA_A]
    if reset == SUBTRACT and by_theta:
        theta_prev = theta + beta_a * a_prev if adaptive and not current else theta
        return alpha * u_prev - gamma * theta_prev * v_prev
    if reset == SUBTRACT:
        return alpha * u_prev - gamma * v_prev
    if reset == ZERO:
        h = fired(v_prev, mode[M_SPIKES])                                     # (M12)
        return alpha * ((1 - h) * u_prev + h * u_reset)
    return alpha * u_prev


def fired(v, spikes):
    """``h``: whether a neuron fired, what a zero reset reads: ``v`` itself with
    one spike per step (``spikes`` = 1), ``min(v, 1)`` for a count (M12)."""
    return v if spikes == 1 else np.minimum(v, 1)


def clip_mask(mode, P, u_prev, v_prev, a_prev, ubar):
    """``k_t ubar`` with the clip's mask ``k_t = 1[leak_reset > alpha u_min]``
    (strictly: the clipped value's derivative at the corner is 0, as torch's
    relu'(0)), (M11)."""
    L = leak_reset(mode, P, u_prev, v_prev, a_prev)
    return np.where(L > P[P_ALPHA] * P[P_UMIN], ubar, 0).astype(ubar.dtype)


def adaptive_reset_terms(gamma, beta_a, v_t, ubar_next, a_t):
    """What the reset by the adaptive threshold (M7), ``u_{t+1} = ... - k
    (theta + beta_a a_t) v_t`` with ``k = gamma``, adds to the adjoint of
    ``a_t``: its partial ``-k beta_a v_t`` times ``ubar_{t+1}``; and the term
    ``ubar_{t+1} v_t a_t`` of the partial sum ``ACC_RVA`` (from which
    ``reduce_grads`` makes the reset's share of dL/dbeta_a and dL/dk)."""
    return -gamma * beta_a * v_t * ubar_next, ubar_next * v_t * a_t


def cell_forward_recurrent(I, static, t0, t1, state0, P, RT, mode, sg, rnd, u, v, s, a):
    """Forward steps ``t0 <= t < t1`` of an all-to-all recurrent layer: per
    step, the product ``v_{t-1} R^T`` (R1), then one step of
    :func:`cell_forward_scan`.  The state before ``t0`` is read from the trace
    (or ``state0`` when ``t0 == 0``), as in :func:`cell_forward_scan`, so a
    checkpointed forward runs a segment from its checkpoint row."""
    T, B, N = u.shape
    buf = np.empty((1, B, N), u.dtype)
    for t in range(t0, t1):
        It = I[0] if static else I[t]
        if t == 0:
            buf[0] = It
        else:
            np.matmul(v[t - 1].astype(u.dtype), RT, out=buf[0])              # (R1)
            buf[0] += It
        cell_forward_scan(buf, True, t, t + 1, state0, P, mode, sg, rnd, u, v, s, a)


def cell_backward_recurrent(u, v, s, a, state0, dv, du, have, t0, t1, P, R, mode, sg,
                            dI, dI_next, acc, adj, dstate0):
    """Reverse steps ``t1 > t >= t0`` of the adjoint of
    :func:`cell_forward_recurrent`: per step, the product ``dL/dI_{t+1} R``
    sent back to v_t (R2), then one reverse step of :func:`cell_backward_scan`.
    ``have`` = (has_dv, has_du, has_next, partials); ``dI_next`` (B, N) is
    dL/dI of step t1 (the later segment's first row) when ``has_next``, else
    t1 is the last step and nothing comes back to it.  Reads and updates
    ``adj`` like :func:`cell_backward_scan`; writes dI[t] (T, B, N)."""
    has_dv, has_du, has_next, partials = have
    T, B, N = u.shape
    rec = np.zeros((t1, B, N), u.dtype)
    for t in range(t1 - 1, t0 - 1, -1):
        has_rec = t < t1 - 1 or has_next
        if has_rec:
            np.matmul(dI[t + 1] if t < t1 - 1 else dI_next, R, out=rec[t])     # (R2)
        cell_backward_scan(u, v, s, a, state0, dv, du, rec, (has_dv, has_du, has_rec, partials),
                           False, t, t + 1, P, mode, sg, dI, acc, adj, dstate0)


def event_matmul(a, BT, out):
    """``out = a @ BT`` for a sparse ``a (M, K)`` (uint8 spikes or a float
    input): the dense product.  Twin of ``kernels.cpu_ops.event_matmul``, which
    adds only the rows of the nonzeros (equal up to rounding; exactly when
    every partial sum is exact)."""
    np.matmul(a.astype(BT.dtype, copy=False), BT, out=out)


def event_wgrad(u, a, out):
    """``out += u^T a`` (a weight gradient ``sum_t ubar_t^T x_t`` with a sparse
    ``x``): the dense product.  Twin of ``kernels.cpu_ops.event_wgrad``."""
    out += u.T @ a.astype(u.dtype, copy=False)
