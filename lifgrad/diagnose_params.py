"""The framework's parameter gradients as a chain rule of lifgrad's (``lifgrad diagnose``, D13).

A framework's parameter (a time constant, a threshold, a decay behind a
clip) reaches the cell through some of lifgrad's parameters, so its gradient
is a fixed linear combination of lifgrad's gradients, neuron by neuron::

    dL/dp_n = sum_q J_qn dL/dq_n,   q in {alpha, theta, gamma, u_reset, alpha_s, b_u,
                                          u0, s0, c, the reported membrane's removal}

with ``J`` the (unknown) derivatives ``dq/dp``.  :func:`fit_parameters` finds
``J`` by least squares over problems whose loss reads one neuron at a time
(so a parameter shared by the neurons gives one equation per neuron), with
the framework's autograd as the only source, and then checks the fitted rule
on a fresh problem.  Fitting with the threshold's derivative taken either way
(lifgrad's ``theta_grad='shift'``, ``-phi``, or ``'ratio'``, ``-(u/theta) phi``,
(M4)) identifies which the framework uses when one of its parameters moves
the threshold.  Nothing here reads the module: parameters are known by the
names the framework's gradients come back under.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["ParameterFit", "fit_parameters"]

FIT_TOL = 1e-8           # relative residual of an exact chain rule
F32_FIT_TOL = 1e-5       # ... when the framework rounds the spike's gradient to float32


class ParameterFit(NamedTuple):
    """One framework parameter: its name, how its gradient is reproduced
    (``loads``: lifgrad's gradients it is made of, with the median factor
    over the neurons), the residual of the fit and the relative error of the
    fitted rule on a fresh problem, and whether that is within tolerance."""

    name: str
    loads: dict
    residual: float
    fresh_error: float
    reproduced: bool


def _problem(cell, seed, T, B):
    from .diagnose_probes import drive
    I, A, Bm = drive(None, cell, seed, T, B)
    return I, A, Bm


def _bases(cell, I, A, Bm, theta_grad):
    """lifgrad's per-neuron parameter gradients ``{name: (N,)}`` for one problem."""
    from .verify.common import lifgrad_side
    m = cell.layer_map()
    m = m._replace(config=m.config.replace(theta_grad=theta_grad))
    v, mem, dI, g, tr = lifgrad_side(m, I, A, Bm)
    out = {"alpha": g.alpha, "theta": g.theta, "b_u": g.u_bias, "u0": g.u0,
           "c": np.sum(np.asarray(g.I) * I, axis=(0, 1))}
    if cell.reset == "subtract":
        out["gamma"] = g.gamma
    if cell.reset == "zero":
        out["u_reset"] = g.u_reset
    if cell.alpha_s is not None:
        out["alpha_s"] = g.alpha_s
        out["s0"] = g.s0
    if cell.post_reset:                       # the removal in the reported membrane
        out["removal"] = np.sum(Bm * np.asarray(tr.v, np.float64), axis=(0, 1))
    return {k: np.broadcast_to(np.asarray(val, np.float64), (cell.n,)).copy()
            for k, val in out.items()}


def _isolated(A, Bm, j):
    """The loss weights on neuron ``j`` only."""
    a, b = np.zeros_like(A), np.zeros_like(Bm)
    a[..., j], b[..., j] = A[..., j], Bm[..., j]
    return a, b


def fit_parameters(box, cell, seed=1, T=10, B=2):
    """Fit every parameter gradient the framework returns (per-neuron or shared
    parameters) as a chain rule of lifgrad's (see the module docstring).
    Returns ``([ParameterFit], theta_grad or None, evidence text)``; an empty
    list when the framework returns no parameter gradient."""
    n = cell.n
    names = None
    # the threshold's derivative, both ways (a readout has no spike derivative)
    rows = {"shift": [], "ratio": []} if cell.spike_scale and np.all(cell.theta != 0) else \
        {"shift": []}
    grads = []                                 # per (k, j): {param: flat gradient}
    K = 0
    nb = len(_bases(cell, *_problem(cell, seed, 4, 1), "shift"))
    K_needed = nb + 4
    while K < K_needed:
        I, A, Bm = _problem(cell, seed + 1000 + K, T, B)
        for j in range(n):
            a, b = _isolated(A, Bm, j)
            out = box.gradient(I, a, b)
            g = {k[5:]: np.asarray(val, np.float64).ravel() for k, val in out.items()
                 if k.startswith("grad:") and k != "grad:input"}
            if names is None:
                names = [k for k, val in g.items() if val.size in (1, n)]
                if not names:
                    return [], None, "the framework returns no parameter gradient"
            grads.append(g)
            for tg in rows:
                rows[tg].append(_bases(cell, I, a, b, tg))
        K += 1
    # fresh problem for the check of each fitted rule
    If, Af, Bf = _problem(cell, seed + 999, T, B)
    fresh = [box.gradient(If, *_isolated(Af, Bf, j)) for j in range(n)]
    results = {}
    for tg, bases in rows.items():
        fits = []
        keys = sorted(bases[0])
        for name in names:
            loads, worst_res, worst_fresh = {}, 0.0, 0.0
            for j in range(n):
                idx = [k * n + j for k in range(K)]
                X = np.array([[bases[i][q][j] for q in keys] for i in idx])
                size = grads[0][name].size
                y = np.array([grads[i][name][0 if size == 1 else j] for i in idx])
                if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
                    worst_res = worst_fresh = float("inf")     # (ratio with theta = 0)
                    continue
                coef, *_ = np.linalg.lstsq(X, y, rcond=None)
                scale = max(float(np.max(np.abs(y))), 1e-300)
                res = float(np.max(np.abs(X @ coef - y))) / scale
                fb = _bases(cell, If, *_isolated(Af, Bf, j), tg)
                pred = float(np.dot([fb[q][j] for q in keys], coef))
                got = np.asarray(fresh[j][f"grad:{name}"], np.float64).ravel()
                got = float(got[0 if got.size == 1 else j])
                fe = abs(pred - got) / max(abs(got), scale, 1e-300)
                worst_res, worst_fresh = max(worst_res, res), max(worst_fresh, fe)
                floor = 1e-5 if cell.gradient_float32 else 1e-9     # rounding, not a load
                for q, cq in zip(keys, coef):
                    if abs(cq) * max(float(np.max(np.abs(X[:, keys.index(q)]))), 1e-300) > \
                            floor * scale:
                        loads.setdefault(q, []).append(float(cq))
            loads = {q: float(np.median(c)) for q, c in loads.items()}
            tol = F32_FIT_TOL if cell.gradient_float32 else FIT_TOL
            fits.append(ParameterFit(name, loads, worst_res, worst_fresh,
                                     worst_res <= tol and worst_fresh <= tol))
        results[tg] = fits
    ok = {tg: all(f.reproduced for f in fits) for tg, fits in results.items()}
    ok.setdefault("ratio", ok["shift"])
    results.setdefault("ratio", results["shift"])
    uses_theta = any("theta" in f.loads for f in results["shift"] + results["ratio"])
    if ok["shift"] and ok["ratio"]:
        tg = None
        why = ("no parameter moves the threshold's spike derivative: shift and ratio "
               "(M4) fit alike" if not uses_theta else "shift and ratio fit alike")
        chosen = results["shift"]
    elif ok["shift"] or ok["ratio"]:
        tg = "shift" if ok["shift"] else "ratio"
        other = "ratio" if tg == "shift" else "shift"
        worst = max(f.fresh_error for f in results[other])
        why = (f"the threshold's spike derivative is {'-phi' if tg == 'shift' else '-(u/theta) phi'}"
               f" (theta_grad='{tg}'); with '{other}' a parameter misses by {worst:.1e}")
        chosen = results[tg]
    else:
        tg = None
        chosen = results["shift"]
        why = "not every parameter gradient is a chain rule of lifgrad's"
    text = (f"{len(names)} parameter gradient(s) fitted as chain rules of lifgrad's over {K} "
            f"problems x {n} neurons (loss on one neuron at a time) and checked on a fresh "
            f"problem: {why}")
    return chosen, tg, text
