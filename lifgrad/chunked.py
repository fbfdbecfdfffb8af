"""A layer's products over time, chunk by chunk: input currents (A1), weight
gradients (A20b), errors sent down (A20c).

One product per chunk of ``functional.time_chunk(B)`` steps, so every path
that makes a product (the full trace, the checkpointed recompute, the
segmented reverse pass) adds the same terms in the same order (CK3).  A
chunk whose input or spike operand is sparse is made by the event-driven
kernels (``functional.use_events``: the density measured on this machine),
else by :mod:`lifgrad.products` (pieces fixed by shape on lifgrad's threads).
"""
from __future__ import annotations

import numpy as np

from . import workspace
from .functional import time_chunk, use_events
from .products import matmul, matmul_acc

__all__ = ["chunked_matmul", "input_current", "weight_grads"]


def chunked_matmul(a, B_, out=None, config=None, bt=None):
    """``a @ B_`` over the last axis, one product per chunk of ``time_chunk(B)`` steps
    for a ``(T, B, n)`` array (a 2-D array: one product), into ``out`` when
    given.  A product's rounding can depend on how many rows it gets (BLAS tail
    kernels), so the full-trace and the checkpointed paths both use the same
    chunks (CK3).  With the layer's ``config`` (the input currents), a chunk
    is made by the event kernel when :func:`~lifgrad.functional.use_events`
    says its operand is sparse; else by :func:`lifgrad.products.matmul` (pieces
    by shape on lifgrad's threads, uint8 spikes cast a piece at a time).
    ``bt``: a one-element list that
    keeps the event kernel's contiguous copy of ``B_`` between calls with the
    same ``B_`` (the checkpointed paths call this once per segment: W5 made 63
    copies of its 784 x 1000 W^T per step, 0.53 ms each)."""
    if a.ndim == 2:
        return matmul(a, B_, workspace.empty((a.shape[0], B_.shape[1]), np.result_type(a, B_)))
    T = a.shape[0]
    C = time_chunk(a.shape[1])
    shape = a.shape[:-1] + (B_.shape[1],)
    if out is None:
        out = workspace.empty(shape, np.result_type(a, B_))
    bt = [None] if bt is None else bt
    for c in range(0, T, C):                  # each chunk's product straight into out
        sl = slice(c, min(T, c + C))
        a2, o2 = a[sl].reshape(-1, a.shape[-1]), out[sl].reshape(-1, B_.shape[1])
        if config is not None and use_events(a2, B_.shape[1], config):
            from .kernels.cpu_ops import event_matmul
            if bt[0] is None:
                bt[0] = np.ascontiguousarray(B_, out.dtype)
            event_matmul(a2, bt[0], o2)
            continue
        matmul(a2, B_, o2)                    # pieces by shape, on lifgrad's threads
    return out


def input_current(layer, p, h, dtype, bt=None, out=None):
    """``I_t = W x_t + b (+ b_rec)`` for all steps (A1), chunked like every product
    (``bt``: see :func:`chunked_matmul`), into ``out`` when given."""
    I = chunked_matmul(h, np.asarray(p["W"], dtype).T, out=out, config=layer.config, bt=bt)
    if layer.bias:
        I += np.asarray(p["b"], dtype)
    if layer.rec_bias:
        I += np.asarray(p["b_rec"], dtype)
    return I


def weight_grads(ubar, x, dW=None, db=None, config=None):
    """``dW = sum_t ubar_t^T x_t`` and ``db = sum_t ubar_t`` (A20b), one product
    per chunk of ``time_chunk(B)`` steps, last chunk first (static input: one product,
    (A21)).  A fixed chunking makes the checkpointed backward, which meets the
    steps segment by segment from the end, add the same terms in the same order
    as the full-trace backward, so both give the same bits.  Accumulates into
    ``dW``/``db`` when given.  With the layer's ``config``, a chunk's product
    is made by the event kernel when :func:`~lifgrad.functional.use_events`
    says ``x`` is sparse there (it adds the chunk's sum to ``dW`` like
    ``dW += w``)."""
    if ubar.ndim == 2:                               # static input: ubar summed over t
        w = matmul(ubar.T, x, np.empty((ubar.shape[1], x.shape[1]), ubar.dtype))
        b = ubar.sum(axis=0)
        return (w, b) if dW is None else (dW + w, db + b)
    T, C = ubar.shape[0], time_chunk(ubar.shape[1])
    for c in range((T - 1) // C, -1, -1):
        sl = slice(c * C, min(T, (c + 1) * C))
        u2 = ubar[sl].reshape(-1, ubar.shape[-1])
        x2 = x[sl].reshape(-1, x.shape[-1])
        b = u2.sum(axis=0)
        if config is not None and use_events(x2, u2.shape[1], config):
            from .kernels.cpu_ops import event_wgrad
            if dW is None:
                dW = workspace.zeros((u2.shape[1], x2.shape[1]), u2.dtype)
            event_wgrad(u2, x2, dW)                # dW += this chunk's sum
        elif dW is None:
            dW = matmul_acc(u2.T, x2, workspace.empty((u2.shape[1], x2.shape[1]), u2.dtype),
                            first=True)
        else:
            matmul_acc(u2.T, x2, dW)   # in place: the caller's running sum
        if db is None:
            db = b
        else:
            db += b          # in place, like dW
    return dW, db
