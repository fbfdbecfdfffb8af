"""The probes of the gradient (``lifgrad diagnose``, steps 6 and 7 of
:mod:`lifgrad.diagnose_probes`): the surrogate from the single-step derivative
``dv_t/dI_t = c phi(u_t - theta)`` on a grid of membranes (D7)-(D9), the
precision of the gradient entering a spike (D7), and whether the reset is
detached (D10).  Black box only, as every probe."""
from __future__ import annotations

import math

import numpy as np

from .diagnose_shape import BP, M_NONE, _kick, _rows
from .diagnose_surrogate import fit as _fit_surrogate, phi_of

__all__ = ["surrogate_grid", "surrogate_probe", "detach_probe"]


# ------------------------------------------------------------------ probe 6: surrogate

def surrogate_grid():
    """Membranes ``x = u - theta`` of the surrogate probe: 0 and 63 each side,
    log-spaced from 1e-4 to 6 (128 rows)."""
    g = np.logspace(-4, np.log10(6.0), 64)
    g = g[np.abs(g - np.round(g)) > 1e-6]            # not on a multiple of theta
    g = np.concatenate([g, np.logspace(-4, np.log10(6.0), 64)[:63 - g.size]])[:63]
    return np.concatenate([-np.sort(g)[::-1], [0.0], np.sort(g)])


def surrogate_probe(box, r, h, theta, delay, G, M, ev):
    n = box.n
    xs = surrogate_grid()

    def measure_all(x):
        x = np.asarray(x, np.float64)
        out_y, out_v, out_x = [], [], []
        for lo in range(0, x.size, BP):
            chunk = x[lo:lo + BP]
            I = _rows(n)
            I[0, :chunk.size] = (theta[None, :] + chunk[:, None] - r[0]) / h[0]
            A = np.zeros_like(I)
            A[delay, :chunk.size] = 1.0
            out = box.gradient(I, A, np.zeros_like(I))
            I = box._input(I)
            u = r[0] + h[0] * I[0, :chunk.size]
            fired = out["spikes"][delay, :chunk.size] != 0
            mem0 = out["mem"][0, :chunk.size]
            u = np.where(np.abs(mem0 - u) <= 1e-12 * np.maximum(np.abs(u), 1e-300), mem0, u)
            out_x.append(u - theta)
            out_y.append(out["grad:input"][0, :chunk.size] / (G * h[0]))
            out_v.append(fired.astype(np.float64))
        return np.concatenate(out_x), np.concatenate(out_y), np.concatenate(out_v)

    X, Y, V = measure_all(xs)

    def measure(x):                                  # neuron 0, for locating an edge
        x = np.asarray(x, np.float64)
        Xm, Ym, Vm = measure_all(x)
        return Ym[:, 0], Vm[:, 0]

    cell = {"theta": float(theta[0]), "M": float(M if M is not None else M_NONE)}
    f = _fit_surrogate(X[:, 0], V[:, 0], Y[:, 0], cell=cell, measure=measure,
                       prefer=box.framework)
    # every other neuron must show the same derivative
    worst = 0.0
    for i in range(1, n):
        with np.errstate(all="ignore"):
            p = phi_of(f.surrogate, X[:, i], V[:, i])
        ny = max(float(np.max(np.abs(Y[:, i]))), 1e-300)
        worst = max(worst, float(np.max(np.abs(p - Y[:, i]))) / ny)
    ev["surrogate"] = (f"dv/du sampled at {xs.size} membranes around the threshold "
                       f"(x = u - theta in [-6, 6]): {f.surrogate} reproduces them to "
                       f"{f.residual:.1e}" + (f" (the other neurons to {worst:.1e})"
                                              if n > 1 else ""))
    if f.edges:
        ev["surrogate"] += (f"; its window edge located between x = {f.edges[0][0]:.17g} "
                            f"(inside) and {f.edges[0][1]:.17g} by bisection")
    exact = f.exact and worst <= 1e-8
    # the precision of the gradient entering the spike: a loss weight of 1 + 2^-30
    # (not a float32 number) on the rows where the derivative is largest   (D7)
    top = np.argsort(-np.abs(Y[:, 0]))[:8]
    top = top[np.abs(Y[top, 0]) > 0]
    f32 = False
    if top.size:
        I = _rows(n)
        I[0, :top.size] = (theta[None, :] + X[top] - r[0]) / h[0]
        A = np.zeros_like(I)
        w = 1.0 + 2.0 ** -30
        A[delay, :top.size] = w
        out = box.gradient(I, A, np.zeros_like(I))
        got = out["grad:input"][0, :top.size, 0] / (G * h[0, 0])
        ref = Y[top, 0]
        f32 = bool(np.all(np.abs(got - ref) <= 1e-12 * np.abs(ref)))
        ev["gradient precision"] = (
            "a loss weight of 1 + 2^-30 on the spike gives the gradient of 1: the gradient "
            "entering the spike is rounded to float32 (agreement is then limited to float32 "
            "precision where that gradient is not a float32 number)" if f32 else
            "a loss weight of 1 + 2^-30 on the spike reaches dL/dI in float64")
    return f, exact, (X, Y, V), f32


# ------------------------------------------------------------------ probe 7: detach

def detach_probe(box, cell, r, h, samples, ev):
    from .verify.common import lifgrad_side, normwise_rel
    if cell.reset == "none":
        ev["detach"] = "no reset: nothing to detach"
        return None
    X, Y, V = samples
    # where the surrogate is active, away from u = theta itself (where one ulp of
    # the membrane decides the spike)
    q = (X[:, 0] + cell.theta[0]) / cell.theta[0] if cell.theta[0] else X[:, 0]
    act = np.flatnonzero((np.abs(Y[:, 0]) >= 0.05 * np.max(np.abs(Y[:, 0])))
                         & (np.abs(X[:, 0]) > 1e-6 * np.abs(cell.theta[0]))
                         & (np.abs(q - np.round(q)) > 1e-6))
    # within a threshold of it: one spike, and a post-reset membrane below threshold
    # (snnTorch's immediate reset is lifgrad's cell only there)
    near = act[np.abs(X[act, 0]) < 0.9 * np.abs(cell.theta[0])]
    act = near if near.size else act
    if not act.size:
        ev["detach"] = "the surrogate is zero: the reset's gradient cannot be seen"
        return None
    pick = act[np.linspace(0, act.size - 1, min(act.size, 64)).astype(int)]
    n = box.n
    I = _rows(n)
    k = pick.size
    xs = X[pick]                                    # per neuron
    I[0, :k] = (cell.theta[None, :] + xs - r[0][None, :]) / h[0][None, :]
    I[1, :k] = _kick(cell.theta, r, h)
    A = np.zeros_like(I)
    Bm = np.zeros_like(I)
    Bm[:, :k] = 1.0
    peer = box.gradient(I, A, Bm)
    I = box._input(I)
    errs = {}
    for d in (True, False):
        m = cell.layer_map(detach=d)
        v, mem, dI, g, tr = lifgrad_side(m, I, A, Bm)
        if not np.array_equal(v, peer["spikes"]):
            errs[d] = math.inf
            continue
        errs[d] = normwise_rel(dI, peer["grad:input"])[1]
    best = min(errs, key=errs.get)
    other = errs[not best]
    # decided when one hypothesis agrees (to float32 precision at worst: some frameworks
    # round the gradient entering a spike to float32) and the other misses by far more
    if not (errs[best] <= 1e-5) or not (other > 1000 * max(errs[best], 1e-14)):
        ev["detach"] = (f"dL/dI with the membrane after a spike in the loss: detached "
                        f"{errs[True]:.1e}, live {errs[False]:.1e}: not decided")
        return None
    ev["detach"] = (f"dL/dI with the membrane after {k} spikes in the surrogate's window in the "
                    f"loss: lifgrad with the reset {'detached' if best else 'live'} agrees to "
                    f"{errs[best]:.1e}, {'live' if best else 'detached'} misses by {other:.1e}"
                    + (" (agreement at float32 precision: the framework rounds part of this "
                       "gradient to float32)" if errs[best] > 1e-10 else ""))
    return best
