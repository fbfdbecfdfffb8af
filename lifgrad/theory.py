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
           "cosine"]


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
            theta = np.asarray(layer.effective(net._layer_params(net.params, i))[0].theta)
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
    return net.replace_configs(
        lambda i, layer, cfg: cfg.replace(surrogate=cfg.surrogate.with_scale(new_scale[i]))
        if i in new_scale else cfg)
