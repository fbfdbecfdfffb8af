"""The network's reverse pass over time segments (A20), (CK2), (CK3).

:func:`backward_segments` runs the adjoint segment by segment from the last,
every layer from the top within a segment; ``views(seg, t0, t1)`` supplies
each layer's trace rows and input over the segment.  The full-trace backward
(:func:`backward_full`) passes views of the stored trace, one chunk per
segment; the checkpointed backward (``checkpoint.backward_checkpointed``)
recomputes each segment from its checkpoint.  Same chunks, same order of
every sum: the same bits either way.
"""
from __future__ import annotations

import numpy as np

from . import workspace
from .chunked import chunked_matmul, weight_grads
from .functional import Parts, Trace, backward_scan, reduce_grads, time_chunk

__all__ = ["backward_segments", "backward_full", "trace_rows"]


def trace_rows(tr, t0, t1, dummy):
    """Views of a kept trace for the reverse scan over [t0, t1): ``(u, v, s, a,
    state0, lead)`` with the row before t0 in front (lead 1), or from the
    trace's ``state0`` at t0 = 0 (lead 0).  No copies."""
    lead = 1 if t0 > 0 else 0
    rows = slice(t0 - lead, t1)
    return (tr.u[rows], tr.v[rows], dummy if tr.s is None else tr.s[rows],
            dummy if tr.a is None else tr.a[rows], tr.state0, lead)


def _lead(arr, t0, t1, lead, dtype):
    """Steps [t0, t1) of a (T, B, N) array for a reverse scan over rows
    [lead, lead + t1 - t0): a view (with the row before t0 in front when
    lead = 1), or, for t0 = 0 with a leading row, a copy whose row 0 is zero."""
    if arr is None:
        return None
    if lead == 0 or t0 > 0:
        view = arr[t0 - lead:t1]
        # a scalar dv/du (a broadcast view) is made here, one chunk at a time
        return view if view.flags.c_contiguous else np.ascontiguousarray(view)
    out = np.zeros((t1 - t0 + 1,) + arr.shape[1:], dtype)
    out[1:] = arr[t0:t1]
    return out


def _plus_segment(cur, extra, t0, t1, lead, dtype):
    """``cur`` plus the segment of a caller's extra term (``layer_dv``/``layer_du``),
    and whether the result is an array made here (which dI may overwrite)."""
    seg = _lead(extra, t0, t1, lead, dtype)
    return (seg, False) if cur is None else (cur + seg, True)


def backward_segments(self, segments, views, x, static, B, dv, du, params, need_input_grad,
                      layer_dv=None, layer_du=None, traces=None):
    """The reverse pass segment by segment, from the last segment, every layer
    from the top within a segment (CK2).  ``views(seg, t0, t1)`` gives per layer
    ``(u, v, s, a, state0, lead, h, h_static)``: trace buffers whose row ``lead``
    is step t0 (row 0 the state before it when ``lead`` is 1) and the layer's
    input over the segment.  The full-trace backward passes views of its trace
    (segments of one chunk: one chunk of errors per layer in memory at a time);
    the checkpointed backward recomputes the segment (CK1).  Same chunks, same
    order of every sum: the same bits either way (CK3)."""
    dtype = self.dtype
    Ls = len(self.layers)
    info = []
    for i, layer in enumerate(self.layers):
        p = self.layer_params(params, i)
        neuron, factors = layer.effective(p)
        info.append((p, neuron, factors, neuron.packed(layer.n_out, dtype, layer.config)))
    acc = [np.zeros((7, B, l.n_out), dtype) for l in self.layers]
    adj = [np.zeros((3, B, l.n_out), dtype) for l in self.layers]
    scratch0 = [np.zeros((3, B, l.n_out), dtype) for l in self.layers]
    dI_static = np.zeros((1, B, self.layers[0].n_out), dtype) if static else None
    dW, db = [None] * Ls, [None] * Ls
    dx_all = workspace.zeros(x.shape, dtype) if (need_input_grad and not static) else None
    dummy = np.zeros((1, 1, 1), dtype)
    layer_dv, layer_du = layer_dv or {}, layer_du or {}
    # error buffers are asked for at the longest segment's size and cut to
    # each segment: the last segment, often shorter and met first, would
    # otherwise take a buffer the longer ones cannot reuse
    Lmax = 1 + max(t1 - t0 for t0, t1 in segments)

    def chunk_buffer(rows, n):
        return workspace.empty((Lmax, B, n), dtype)[:rows]

    for seg in range(len(segments) - 1, -1, -1):
        t0, t1 = segments[seg]
        L = t1 - t0
        dI = ub = dh = None   # the last segment's error buffers, free for this one's
        bufs = views(seg, t0, t1)
        top_lead = bufs[-1][5]
        dvb, dub = _lead(dv, t0, t1, top_lead, dtype), _lead(du, t0, t1, top_lead, dtype)
        mine = None           # a buffer of dv/du made here, which dI may overwrite
        for i in range(Ls - 1, -1, -1):
            layer = self.layers[i]
            cfg = layer.config
            p, neuron, factors, P = info[i]
            u, v, s_, a_, st0, lead, hin, hstat = bufs[i]
            if i in layer_dv:
                dvb, made = _plus_segment(dvb, layer_dv[i], t0, t1, lead, dtype)
                mine = dvb if made else mine
            if i in layer_du:
                dub, made = _plus_segment(dub, layer_du[i], t0, t1, lead, dtype)
                mine = dub if made else mine
            N = layer.n_out
            if hstat:
                dI = dI_static
            elif mine is not None:
                dI = mine     # the scans read dv_t and du_t of a step before writing dI_t
            else:
                dI = chunk_buffer(lead + L, N)
            backward_scan(cfg, u, v, s_, a_, st0, dummy if dvb is None else dvb,
                          dummy if dub is None else dub, dummy,
                          (dvb is not None, dub is not None, False, layer.partials), hstat,
                          lead, lead + L, P,
                          dI, acc[i], adj[i], scratch0[i] if lead == 0 else dummy)
            ub = None if hstat else dI[lead:]
            if ub is not None:
                dW[i], db[i] = weight_grads(ub, hin, dW[i], db[i], cfg)           # (A20b)
            W = np.asarray(p["W"], dtype)
            if i > 0:                                                            # (A20c)
                below = bufs[i - 1][5]
                dh = chunk_buffer(below + L, layer.n_in)
                dh[:below] = 0
                chunked_matmul(ub, W, out=dh[below:])
                if self.layers[i - 1].readout:
                    dvb, dub = None, dh      # a readout feeds its membrane forward
                else:
                    dvb, dub = dh, None
                mine = dh
            elif dx_all is not None:
                chunked_matmul(ub, W, out=dx_all[t0:t1])
    grads = {}
    for i, layer in enumerate(self.layers):
        p, neuron, factors, P = info[i]
        cfg = layer.config
        # (the gradients of the initial state, (A18), (S5), (L8), are not
        # parameters of a network: not made)
        tr_like = traces[i] if traces is not None else \
            Trace(None, None, None, None, None, static and i == 0, (None, None, None))
        dIi = None
        if static and i == 0:
            dIi = dI_static[0]
            dW[i], db[i] = weight_grads(dIi, x)                                 # (A21)
        lg = reduce_grads(Parts(dIi, acc[i], None, None, P), neuron, tr_like, cfg)
        grads[f"layer{i}.W"] = dW[i]
        if layer.bias:
            grads[f"layer{i}.b"] = db[i]
        if cfg.recurrent is not None:
            grads[f"layer{i}.R"] = lg.R
        if layer.rec_bias:
            grads[f"layer{i}.b_rec"] = db[i].copy()
        for k, g in layer.chain(lg, factors).items():
            grads[f"layer{i}.{k}"] = g
    if need_input_grad:
        grads["x"] = (chunked_matmul(dI_static[0], np.asarray(info[0][0]["W"], dtype))
                      if static else dx_all)
    return {k: grads[k] for k in list(params) + (["x"] if need_input_grad else []) if k in grads}


def backward_full(self, trace, dv, du, params, need_input_grad, layer_dv, layer_du):
    """The full-trace backward chunk by chunk (views of the trace, no recompute)."""
    x = trace.layers[0].x
    first = trace.layers[0].trace
    static = first.static
    T, B = first.u.shape[:2]
    C = time_chunk(B)
    segments = [(t0, min(T, t0 + C)) for t0 in range(0, T, C)]
    dummy = np.zeros((1, 1, 1), self.dtype)

    def views(seg, t0, t1):
        return [trace_rows(lt.trace, t0, t1, dummy)
                + (lt.x if lt.trace.static else lt.x[t0:t1], lt.trace.static)
                for lt in trace.layers]

    return backward_segments(self, segments, views, x, static, B, dv, du, params,
                             need_input_grad, layer_dv, layer_du,
                             traces=[lt.trace for lt in trace.layers])
