"""Losses on the output layer, each returning the loss and what it injects.

Every loss is ``fn(v, u, y, **options) -> Loss(L, dv, du)`` with ``v`` the
output spikes and ``u`` the output membrane (both ``(T, B, C)``; a readout
layer has only ``u``), ``y`` the integer labels ``(B,)``.  ``dv = dL/dv`` and
``du = dL/du`` (``None`` where the loss does not read that output) go
straight into :meth:`lifgrad.network.Sequential.backward`.  Means are over the
batch (SPEC section 8).  Where a name coincides with snnTorch's
``functional.loss`` the definition is snnTorch's, including its quirks
(tests compare with snnTorch): ``ce_rate``, ``ce_count``, ``ce_max_membrane``,
``mse_count``, ``mse_membrane``.  Derivatives: ``derivations/losses.md``.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Loss", "LOSSES", "get", "ce_membrane", "ce_rate", "ce_count", "ce_max_membrane",
           "mse_count", "mse_membrane", "l1_rate", "accuracy"]


class Loss(NamedTuple):
    L: float
    dv: np.ndarray | None
    du: np.ndarray | None


def _softmax_ce_steps(z, y):
    """Mean cross-entropy of logits z (T, B, C) and labels y at every step at
    once: the (T,) losses and dL/dz."""
    z = np.asarray(z, np.float64)
    B = z.shape[1]
    m = z.max(axis=2, keepdims=True)
    e = np.exp(z - m)
    s = e.sum(axis=2, keepdims=True)
    ar = np.arange(B)
    logp_y = z[:, ar, y] - m[:, :, 0] - np.log(s[:, :, 0])
    g = e / s
    g[:, ar, y] -= 1.0
    return -np.mean(logp_y, axis=1), g / B


def _softmax_ce(z, y):
    """Mean cross-entropy of logits z (B, C) and labels y, and dL/dz."""
    L, g = _softmax_ce_steps(np.asarray(z)[None], y)
    return float(L[0]), g[0]


def _float(arr, name):
    """``arr`` as a float array: float32/float64 kept, anything else (bool or
    integer spikes) as float64, so the injected gradient is not truncated."""
    arr = np.asarray(arr)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    return arr


def _targets(y, B, C, on, off):
    """snnTorch's ``spikegen.targets_convert(y, C, on_target=on, off_target=off)``:
    ``max(onehot * on, off)`` when ``on > off`` (so an ``off < 0`` becomes 0 on
    the wrong classes), else ``onehot * on + (1 - onehot) * off`` (LS6)."""
    onehot = np.zeros((B, C))
    onehot[np.arange(B), y] = 1.0
    if on > off:
        return np.maximum(onehot * on, off)
    return onehot * on + (1.0 - onehot) * off


def _check(arr, y, name):
    if arr is None:
        raise ValueError(f"{name}: this loss needs the output {'spikes' if name == 'v' else 'membrane'}")
    arr = _float(arr, name)
    if arr.ndim != 3 or 0 in arr.shape:
        raise ValueError(f"{name}: expected shape (T, B, C) with no empty axis, got {arr.shape}")
    y = np.asarray(y)
    if y.shape != (arr.shape[1],) or y.dtype.kind not in "iu":
        raise ValueError(f"y: expected integer labels of shape ({arr.shape[1]},), got "
                         f"{y.dtype} {y.shape}")
    if y.min() < 0 or y.max() >= arr.shape[2]:
        raise ValueError(f"y: labels must be in [0, {arr.shape[2]}), got [{y.min()}, {y.max()}]")
    return arr, y


def ce_membrane(v, u, y):
    """Cross-entropy of the membrane at every step, summed over steps (the
    source tutorial's loss): ``L = sum_t CE(softmax(u_t), y)`` (LS1)."""
    u, y = _check(u, y, "u")
    Ls, g = _softmax_ce_steps(u, y)
    L = 0.0
    for Lt in Ls:                    # summed over steps in order, as a loop would
        L += float(Lt)
    return Loss(L, None, g.astype(u.dtype, copy=False))


def ce_rate(v, u, y):
    """snnTorch ``ce_rate_loss``: ``L = (1/T) sum_t CE(v_t, y)`` (LS2)."""
    v, y = _check(v, y, "v")
    T = v.shape[0]
    Ls, g = _softmax_ce_steps(v, y)
    L = 0.0
    for Lt in Ls:                    # summed over steps in order, as a loop would
        L += float(Lt) / T
    return Loss(L, (g / T).astype(v.dtype, copy=False), None)


def ce_count(v, u, y):
    """snnTorch ``ce_count_loss``: ``L = CE(sum_t v_t, y)`` (LS3); dv equal at every t."""
    v, y = _check(v, y, "v")
    L, g = _softmax_ce(v.sum(axis=0), y)
    return Loss(L, np.broadcast_to(g, v.shape).astype(v.dtype), None)


def ce_max_membrane(v, u, y):
    """snnTorch ``ce_max_membrane_loss``: ``L = CE(max_t u_t, y)`` (LS4); the
    gradient goes to the step of the maximum (the first one on ties)."""
    u, y = _check(u, y, "u")
    idx = u.argmax(axis=0)
    L, g = _softmax_ce(np.take_along_axis(u, idx[None], 0)[0], y)
    du = np.zeros(u.shape, u.dtype)
    np.put_along_axis(du, idx[None], g[None].astype(u.dtype), 0)
    return Loss(L, None, du)


def mse_count(v, u, y, correct_rate=1.0, incorrect_rate=0.0):
    """snnTorch ``mse_count_loss``: ``L = mean_{b,c}(sum_t v - target)^2 / T``
    with targets ``int(T correct_rate)`` on the label, ``int(T incorrect_rate)``
    elsewhere (LS5), built as snnTorch's ``targets_convert`` (see mse_membrane)."""
    v, y = _check(v, y, "v")
    T, B, C = v.shape
    target = _targets(y, B, C, int(T * correct_rate), int(T * incorrect_rate))
    diff = v.sum(axis=0) - target
    L = float(np.mean(diff ** 2)) / T
    g = 2.0 * diff / (B * C * T)
    return Loss(L, np.broadcast_to(g, v.shape).astype(v.dtype), None)


def mse_membrane(v, u, y, on_target=1.0, off_target=0.0):
    """snnTorch ``mse_membrane_loss``: ``L = (1/T) sum_t mean_{b,c}(u_t - tgt)^2``
    with snnTorch's target: ``tgt = max(onehot * on_target, off_target)``
    elementwise when ``on_target > off_target`` (LS6) — so an ``off_target < 0``
    with ``on_target > 0`` is silently 0 on the wrong classes, as in snnTorch —
    and ``on_target`` / ``off_target`` exactly otherwise."""
    u, y = _check(u, y, "u")
    T, B, C = u.shape
    tgt = _targets(y, B, C, on_target, off_target)
    diff = u - tgt
    L = float(np.mean(diff ** 2))            # = (1/T) sum_t mean_{b,c}
    return Loss(L, None, (2.0 * diff / (T * B * C)).astype(u.dtype))


def l1_rate(v, lam=1e-5):
    """Spike-count regulariser ``L = lam * sum(v) / B`` (LS7): ``dv = lam / B``.
    (snnTorch's ``l1_rate_sparsity`` sums without the 1/B.)"""
    v = _float(v, "v")
    if v.ndim != 3 or 0 in v.shape:
        raise ValueError(f"v: expected shape (T, B, N) with no empty axis, got {v.shape}")
    B = v.shape[1]
    return Loss(lam * float(v.sum()) / B, np.full(v.shape, lam / B, v.dtype), None)


def accuracy(v, y, u=None):
    """Fraction of samples whose largest spike count (ties broken by the summed
    membrane when given, else by the lowest index) is the label."""
    v, y = _check(v, y, "v")
    if u is not None and np.shape(u) != v.shape:
        raise ValueError(f"u: expected the shape of v {v.shape}, got {np.shape(u)}")
    count = v.sum(axis=0).astype(np.float64)
    if u is not None:
        # tie-break: a tiny fraction of the mean membrane, below one spike
        m = np.asarray(u).mean(axis=0)
        span = np.max(np.abs(m)) + 1e-12
        count = count + 0.25 * m / span
    return float(np.mean(count.argmax(axis=1) == np.asarray(y)))


LOSSES = {"ce_membrane": ce_membrane, "ce_rate": ce_rate, "ce_count": ce_count,
          "ce_max_membrane": ce_max_membrane, "mse_count": mse_count,
          "mse_membrane": mse_membrane}


def get(name):
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"loss: unknown name {name!r}; valid: {', '.join(LOSSES)}") from None
