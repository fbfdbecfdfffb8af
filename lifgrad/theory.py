"""Theory the toolkit exposes (SPEC section 7).

* :func:`mismatch_bias`: the surrogate gradient of the spiking network beside
  the exact gradient of the smooth network (same surrogate, forward ``G``),
  their difference per parameter and their cosine similarity (T1)-(T3).
* :func:`gradient_flow` and :func:`calibrate`: the per-layer error ratio
  ``rho_l = E||ubar_l|| / E||ubar_{l+1}||`` measured from a real backward pass,
  the mean-field prediction ``s_l E|g(u_l - theta)| ||W_{l+1}||_2`` beside it,
  and the amplitudes ``s_l = c / (||W_{l+1}||_2 E|g|)`` that make it 1 (T4)-(T6).

The window mass ``G(d) - G(-d)`` is :meth:`lifgrad.surrogates.Surrogate.mass`.
Derivations: ``derivations/theory.md``.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import losses as _losses

__all__ = ["mismatch_bias", "MismatchReport", "gradient_flow", "FlowReport", "calibrate",
           "calibrate_measured", "cosine", "score", "reinforce", "ReinforceResult",
           "expected_loss_exact", "expected_loss_gradient", "compare_estimators",
           "format_compare"]


def cosine(a, b):
    a = np.ravel(np.asarray(a, np.float64))
    b = np.ravel(np.asarray(b, np.float64))
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(a @ b / (na * nb)) if na > 0 and nb > 0 else float("nan")


class MismatchReport(NamedTuple):
    surrogate: dict          # gradients of the spiking network (hard forward)
    smooth: dict             # exact gradients of the smooth network (forward G)
    cosine: dict             # per parameter
    rel_bias: dict           # ||surrogate - smooth|| / ||smooth|| per parameter
    cosine_all: float        # over all parameters together
    loss_hard: float
    loss_smooth: float


def _loss_fn(loss):
    if callable(loss):
        return loss
    return _losses.get(loss)


def _grads(net, x, y, loss_fn, T):
    out, tr = net.forward(x, T=T)
    top = tr.layers[-1].trace
    v = None if net.layers[-1].readout else top.v
    lo = loss_fn(v, top.u, y)
    return net.backward(tr, dv=lo.dv, du=lo.du), lo.L


def mismatch_bias(net, x, y, loss="ce_membrane", T=None):
    """Surrogate gradient (hard forward) vs smooth-network gradient (T1)-(T3).

    ``loss`` is a name of :mod:`lifgrad.losses` or a callable
    ``(v, u, y) -> Loss``.  Exact comparison needs each layer's surrogate with
    amplitude 1 and no clip (then the smooth gradient is the true gradient of
    the smooth network, (A22)).  ``net`` is not modified."""
    fn = _loss_fn(loss)
    for i, layer in enumerate(net.layers):
        sg = layer.config.surrogate
        if not layer.readout and not sg.has_primitive:
            raise ValueError(f"layer {i}: surrogate {sg.name!r} has no primitive, so there is "
                             f"no smooth network to compare with")
    g_hard, L_hard = _grads(net, x, y, fn, T)
    smooth = net.replace_configs(lambda i, layer, c: c.replace(forward="smooth"))
    g_smooth, L_smooth = _grads(smooth, x, y, fn, T)
    cos = {k: cosine(g_hard[k], g_smooth[k]) for k in g_hard}
    rel = {}
    for k in g_hard:
        den = np.linalg.norm(np.ravel(g_smooth[k]))
        num = np.linalg.norm(np.ravel(g_hard[k] - g_smooth[k]))
        rel[k] = float(num / den) if den > 0 else (0.0 if num == 0 else float("inf"))
    flat = lambda g: np.concatenate([np.ravel(g[k]) for k in g_hard])  # noqa: E731
    return MismatchReport(g_hard, g_smooth, cos, rel, cosine(flat(g_hard), flat(g_smooth)),
                          float(L_hard), float(L_smooth))


class FlowReport(NamedTuple):
    error_norm: list         # E||ubar_l|| per layer (mean over steps and samples)
    rho: list                # measured ratio per layer l < L-1
    predicted: list          # s_l E|g(u_l - theta_l)| ||W_{l+1}||_2
    mean_abs_g: list         # E|g(u_l - theta_l)| per spiking layer
    weight_norm: list        # ||W_{l+1}||_2 per layer l < L-1
    scale: list              # s_l of each layer


def _mean_norm(a):
    a = np.asarray(a, np.float64)
    return float(np.mean(np.linalg.norm(a.reshape(-1, a.shape[-1]), axis=1)))


def gradient_flow(net, x, dv=None, du=None, T=None, y=None, loss=None):
    """Measure ``rho_l`` from a real backward pass and predict it (T4), (T5).

    Give either the top layer's ``dv``/``du`` or labels ``y`` and a ``loss``.
    A static input is repeated over the T steps, so every layer's error is
    measured per step (the static path sums the first layer's over time)."""
    x = np.asarray(x)
    if x.ndim == 2:
        if T is None:
            raise ValueError("T: a static input needs T")
        x = np.broadcast_to(x, (T,) + x.shape)
    out, tr = net.forward(x)
    if loss is not None:
        top = tr.layers[-1].trace
        lo = _loss_fn(loss)(None if net.layers[-1].readout else top.v, top.u, y)
        dv, du = lo.dv, lo.du
    rec = {}
    net.backward(tr, dv=dv, du=du, record=rec)
    L = len(net.layers)
    norms = [_mean_norm(rec[i]) for i in range(L)]
    mean_g, wnorm, scale = [], [], []
    for i, layer in enumerate(net.layers):
        t = tr.layers[i].trace
        sg = layer.config.surrogate
        if layer.readout:
            mean_g.append(float("nan"))
            scale.append(float("nan"))
        else:
            theta = np.asarray(layer.effective(net.layer_params(net.params, i))[0].theta)
            mean_g.append(float(np.mean(np.abs(sg.g(t.u.astype(np.float64) - theta,
                                                    t.v.astype(np.float64))))))
            scale.append(sg.scale)
        if i + 1 < L:
            wnorm.append(float(np.linalg.norm(np.asarray(net.params[f"layer{i + 1}.W"],
                                                         np.float64), 2)))
    rho = [norms[i] / norms[i + 1] if norms[i + 1] > 0 else float("inf") for i in range(L - 1)]
    pred = [scale[i] * mean_g[i] * wnorm[i] for i in range(L - 1)]
    return FlowReport(norms, rho, pred, mean_g, wnorm, scale)


def calibrate(net, x, T=None, c=1.0, flow=None):
    """Return a network sharing ``net``'s parameters whose layer l < L-1 has
    surrogate amplitude ``s_l = c / (||W_{l+1}||_2 E|g(u_l - theta)|)`` (T6),
    measured on input ``x``; the top layer keeps its amplitude."""
    if not (np.isfinite(c) and c > 0):
        raise ValueError(f"c: expected a finite number > 0, got {c!r}")
    if flow is None:
        _, tr = net.forward(x, T=T)
        flow = gradient_flow(net, x, du=np.zeros_like(tr.layers[-1].trace.u), T=T)
    new_scale = {}
    for i in range(len(net.layers) - 1):
        if net.layers[i].readout:
            continue
        denom = flow.weight_norm[i] * flow.mean_abs_g[i]
        if denom > 0 and np.isfinite(denom):
            new_scale[i] = c / denom
    out = net.replace_configs(
        lambda i, layer, cfg: cfg.replace(surrogate=cfg.surrogate.with_scale(new_scale[i]))
        if i in new_scale else cfg)
    _warn_unstable_reset(out)
    return out


def _warn_unstable_reset(net):
    """With a subtractive reset that is not detached, the adjoint carries
    ``alpha - gamma s g`` from step to step ((A12), (C1)); an amplitude with
    ``gamma s max g > 1 + alpha`` makes that factor exceed 1 in magnitude, and
    the backward pass grows geometrically in time (measured: training on digits
    stalls at chance with calibrated amplitudes 20-140, and is unaffected with
    ``detach_reset=True``).  The reset strength is gamma, or with
    ``reset_by_threshold`` (M7) ``k theta`` at the base threshold (gamma the
    factor k)."""
    import warnings
    for i, layer in enumerate(net.layers):
        c = layer.config
        if layer.readout or c.reset != "subtract" or c.detach_reset:
            continue
        gmax = float(np.max(c.surrogate.phi(np.linspace(-3, 3, 601))))
        nrn = layer.neuron
        th = np.abs(np.asarray(nrn.theta, np.float64))
        if c.reset_by_threshold:    # gamma is the factor k of gamma_t = k theta_t (M7, 1 if tied)
            k = 1.0 if nrn.gamma is None else np.abs(np.asarray(nrn.gamma, np.float64))
            theta = float(np.max(k * th))      # at the base threshold: adaptation only adds
        else:
            theta = float(np.max(th if nrn.gamma is None
                                 else np.abs(np.asarray(nrn.gamma, np.float64))))
        alpha = float(np.min(np.asarray(layer.neuron.alpha, np.float64)))
        if theta * gmax > 1 + alpha:
            warnings.warn(f"layer {i}: surrogate amplitude {c.surrogate.scale:.3g} with a "
                          f"subtractive reset that is not detached makes |alpha - gamma s g| "
                          f"reach {theta * gmax - alpha:.3g} > 1: the adjoint can grow "
                          f"geometrically in time (consider detach_reset=True)", stacklevel=3)


# ---------------------------------------------------------------------------
# Stochastic spikes and the score-function (REINFORCE) estimator
# ---------------------------------------------------------------------------

def score(u, v, theta, surrogate):
    """``d log p(v | u) / du`` for Bernoulli spikes with ``p = G(u - theta)`` (T8):
    ``(v - p) g / (p (1 - p))``; for the sigmoid family exactly ``k (v - p)``."""
    x = np.asarray(u, np.float64) - theta
    v = np.asarray(v, np.float64)
    if surrogate.name == "sigmoid":
        k = surrogate.params[0]
        return k * (v - surrogate.G(x))
    p = surrogate.G(x)
    g = surrogate.g(x)
    den = p * (1.0 - p)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (v - p) * g / den
    return np.where(den > 0, out, 0.0)


class ReinforceResult(NamedTuple):
    mean: dict               # estimate of d E[L] / d param (mean over samples)
    variance: dict           # per parameter: sum over elements of the sample variance
    samples: int
    loss_mean: float


def reinforce(net, x, y, loss="ce_membrane", T=None, n_samples=100, rng=None, baseline=True,
              keep_samples=False):
    """Score-function estimate of the gradient of the expected loss under
    stochastic spikes (T9): per sample, ``(L - b) sum_t dlog p(v_t|u_t)/dparam``
    (spikes held fixed) plus the path-wise gradient of L with spikes fixed
    (parameters that reach the loss without a spike, e.g. a readout).  ``b``
    is the leave-one-out mean loss of the other samples (``baseline=True``) or
    0.  Every spiking layer fires stochastically with p = G(u - theta)."""
    if rng is None or not isinstance(rng, np.random.Generator):
        raise TypeError("rng: expected a numpy.random.Generator")
    if n_samples < 2:
        raise ValueError(f"n_samples: expected >= 2, got {n_samples}")
    fn = _loss_fn(loss)
    stoch = net.replace_configs(lambda i, l, c: c.replace(forward="stochastic"))
    fixed = net.replace_configs(lambda i, l, c: c.replace(forward="hard", surrogate="zero"))
    runs = []
    for _ in range(n_samples):
        out, tr = stoch.forward(x, T=T, rng=rng)
        top = tr.layers[-1].trace
        lo = fn(None if net.layers[-1].readout else top.v, top.u, y)
        scores = {}
        for i, layer in enumerate(net.layers):
            if layer.readout:
                continue
            theta = np.asarray(layer.effective(net.layer_params(net.params, i))[0].theta)
            if layer.config.adaptive:
                raise ValueError(f"layer {i}: REINFORCE with an adaptive threshold is not supported")
            t = tr.layers[i].trace
            scores[i] = score(t.u, t.v, theta, layer.config.surrogate)
        runs.append((tr, lo, scores))
    losses_ = np.array([r[1].L for r in runs])
    total = losses_.sum()
    grads = []
    for k, (tr, lo, scores) in enumerate(runs):
        b = (total - losses_[k]) / (n_samples - 1) if baseline else 0.0
        w = lo.L - b
        g = fixed.backward(tr, du=lo.du, layer_du={i: w * sc for i, sc in scores.items()})
        for i, sc in scores.items():                     # theta enters p directly
            key = f"layer{i}.theta"
            if key in g:
                g[key] = g[key] - w * sc.sum(axis=(0, 1))
        grads.append(g)
    keys = list(grads[0])
    mean = {k: np.mean([g[k] for g in grads], axis=0) for k in keys}
    var = {k: float(np.sum(np.var([g[k] for g in grads], axis=0, ddof=1))) for k in keys}
    res = ReinforceResult(mean, var, n_samples, float(losses_.mean()))
    return (res, grads) if keep_samples else res


def expected_loss_exact(net, x, loss_of_spikes, T):
    """Exact expected loss of a one-layer stochastic network by enumerating all
    ``2^(T N)`` spike trains of its single spiking layer (tiny networks only).

    ``loss_of_spikes(v)`` maps spikes ``(T, K, N)`` of K trains to K losses.
    ``x`` is one sample ``(n_in,)`` (static).  Uses the plain cell (A2)-(A4)."""
    from .check import naive_forward
    if len(net.layers) != 1 or net.layers[0].readout:
        raise ValueError("net: expected exactly one spiking layer")
    layer = net.layers[0]
    cfg = layer.config
    if cfg.synaptic or cfg.adaptive or cfg.recurrent:
        raise ValueError("net: the enumeration supports the plain cell only")
    N = layer.n_out
    bits = T * N
    if bits > 16:
        raise ValueError(f"T * N = {bits} spikes to enumerate; at most 16")
    p = net.layer_params(net.params, 0)
    neuron, _ = layer.effective(p)
    I1 = np.asarray(x, np.float64) @ np.asarray(p["W"], np.float64).T
    if layer.bias:
        I1 = I1 + np.asarray(p["b"], np.float64)
    K = 1 << bits
    codes = np.arange(K)
    S = ((codes[:, None] >> np.arange(bits)) & 1).astype(np.float64)   # (K, T*N)
    S = S.reshape(K, T, N).transpose(1, 0, 2)                          # (T, K, N)
    I = np.broadcast_to(I1, (T, K, N)).astype(np.float64)
    vals = {k: np.asarray(getattr(neuron, k), np.float64) for k in ("alpha", "theta", "u_reset")}
    vals["gamma"] = None if neuron.gamma is None else np.asarray(neuron.gamma, np.float64)
    u, _ = naive_forward(I, vals, cfg.replace(forward="hard"), frozen_v=S)
    pr = cfg.surrogate.G(u - vals["theta"])
    logp = np.sum(S * np.log(np.clip(pr, 1e-300, None)) + (1 - S) * np.log(np.clip(1 - pr, 1e-300, None)),
                  axis=(0, 2))
    return float(np.sum(np.exp(logp) * loss_of_spikes(S)))


def expected_loss_gradient(net, x, loss_of_spikes, T, key="layer0.W", h=1e-6):
    """Gradient of :func:`expected_loss_exact` with respect to ``net.params[key]``
    by central differences, element by element (the reference that estimators
    are compared with).  ``net.params`` is restored afterwards."""
    P = net.params[key].copy()
    grad = np.zeros_like(P, dtype=np.float64)
    try:
        for idx in np.ndindex(P.shape):
            for sgn in (1, -1):
                net.params[key] = P.copy()
                net.params[key][idx] += sgn * h
                grad[idx] += sgn * expected_loss_exact(net, x, loss_of_spikes, T) / (2 * h)
    finally:
        net.params[key] = P
    return grad


# ---------------------------------------------------------------------------
# Estimators side by side (`lifgrad theory compare`)
# ---------------------------------------------------------------------------

COMPARE_SURROGATES = ("sigmoid", "fast_sigmoid", "atan", "gaussian", "triangle", "rect",
                      "straight_through", "spike_operator")


def compare_estimators(seed=0, T=4, n_in=4, N=3, k=2.0, n_samples=2000):
    """Every gradient estimator on one tiny network and input, against the exact
    gradient of the expected loss under escape noise ``p = sigmoid(k (u - theta))``
    (computed by enumerating all ``2^(T N)`` spike trains and finite differences).

    Returns rows ``(estimator, cosine similarity to the exact gradient of
    layer0.W, relative error of its norm, sampling variance)``; the
    deterministic estimators have variance 0."""
    from .config import LIFConfig
    from .network import Dense, Sequential
    rng = np.random.default_rng(seed)
    base_cfg = LIFConfig(reset="subtract", surrogate=("sigmoid"), dtype="float64")
    net = Sequential([Dense(n_in, N, base_cfg.replace(surrogate=_sg_get("sigmoid", k=k)),
                            alpha=0.8, theta=0.6)], dtype="float64", seed=seed)
    net.params["layer0.W"] = net.params["layer0.W"] * 2.0
    x = rng.uniform(0, 1, n_in)
    target = rng.integers(0, T + 1, N).astype(float)

    def loss(v, u, y):
        d = v.sum(axis=0) - target
        return _losses.Loss(0.5 * float(np.sum(d ** 2)), np.broadcast_to(d, v.shape).copy(), None)

    def of_spikes(S):
        return 0.5 * np.sum((S.sum(axis=0) - target) ** 2, axis=1)

    exact = expected_loss_gradient(net, x, of_spikes, T)
    rows = []

    def row(name, g, var=0.0):
        rel = abs(np.linalg.norm(g) - np.linalg.norm(exact)) / np.linalg.norm(exact)
        rows.append((name, cosine(g, exact), float(rel), float(var)))

    for name in COMPARE_SURROGATES:
        params = {"k": k} if name == "sigmoid" else {}
        sg = _sg_get(name, **params)
        n2 = net.replace_configs(lambda i, l, c: c.replace(surrogate=sg, forward="hard"))
        out, tr = n2.forward(x[None], T=T)
        lo = loss(tr.layers[0].trace.v, None, None)
        rows_name = f"surrogate {sg}" if name not in ("straight_through", "spike_operator") else name
        row(rows_name, n2.backward(tr, dv=lo.dv)["layer0.W"])
    sm = net.replace_configs(lambda i, l, c: c.replace(forward="smooth"))
    out, tr = sm.forward(x[None], T=T)
    lo = loss(tr.layers[0].trace.v, None, None)
    row(f"smooth forward (sigmoid k={k:g})", sm.backward(tr, dv=lo.dv)["layer0.W"])
    for baseline in (False, True):
        res = reinforce(net, x[None], None, loss, T=T, n_samples=n_samples,
                        rng=np.random.default_rng(seed + 1), baseline=baseline)
        row(f"REINFORCE {'with' if baseline else 'without'} baseline, {n_samples} samples",
            res.mean["layer0.W"], res.variance["layer0.W"])
    return rows, exact


def _sg_get(name, **kw):
    from . import surrogates
    return surrogates.get(name, **kw)


def format_compare(rows):
    lines = [f"{'estimator':<52} {'cosine':>8} {'|norm err|':>10} {'variance':>10}"]
    for name, cos, rel, var in rows:
        lines.append(f"{name:<52} {cos:>8.4f} {rel:>10.3f} {var:>10.3g}")
    return "\n".join(lines)


def calibrate_measured(net, x, T=None, dv=None, du=None, c=1.0, n_iter=3):
    """Iterated calibration (T6'): ``s_l <- s_l c / rho_l`` with ``rho_l``
    measured by :func:`gradient_flow`, ``n_iter`` times, from the top layer
    down each round.  The mean-field rule (T6) misses the leak's temporal
    accumulation of the adjoint and the typical (not spectral) gain of
    ``W^T``; measuring removes both.  With ``detach_reset=True`` rho_l is
    linear in s_l and one round is exact; with a subtract reset that is not
    detached large amplitudes can destabilise the adjoint (a warning says so).
    ``dv``/``du`` default to random errors on the top layer."""
    if not (np.isfinite(c) and c > 0):
        raise ValueError(f"c: expected a finite number > 0, got {c!r}")
    if dv is None and du is None:
        out, tr = net.forward(x, T=T)
        du = np.random.default_rng(0).normal(size=tr.layers[-1].trace.u.shape)
    cur = net
    for _ in range(int(n_iter)):
        f = gradient_flow(cur, x, dv=dv, du=du, T=T)
        scales = {i: cur.layers[i].config.surrogate.scale * c / f.rho[i]
                  for i in range(len(cur.layers) - 1)
                  if not cur.layers[i].readout and np.isfinite(f.rho[i]) and f.rho[i] > 0}
        cur = cur.replace_configs(
            lambda i, layer, cfg: cfg.replace(surrogate=cfg.surrogate.with_scale(scales[i]))
            if i in scales else cfg)
    _warn_unstable_reset(cur)
    return cur
