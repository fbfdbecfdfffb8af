"""Checkpointed BPTT (``derivations/checkpointing.md``, CK1-CK3): a forward
that keeps every layer's state only at the start of each segment of K steps
(and the top layer's trace), and a backward that recomputes each segment's
forward from its checkpoint and hands it to the segmented reverse pass
(:mod:`lifgrad.adjoint`).  Memory O(T/K + K) per layer, the same gradients
to the bit."""
from __future__ import annotations

import numpy as np

from . import workspace
from .adjoint import backward_segments, trace_rows
from .chunked import input_current
from .functional import Trace, forward_scan, spike_dtype, time_chunk
from .net_traces import CheckpointTrace, LayerTrace
from .validation import check_sequence

__all__ = ["forward_checkpointed", "backward_checkpointed"]


def _segment_input(layer, p, h, static, L, B, dtype, bt):
    """The input current of one segment for :func:`_segment_forward`: ``(B, N)``
    for a static input, else made straight into rows 1..L of an ``(L+1, B, N)``
    buffer (no copy of a segment's currents: W5's 64 segments x 4 MB per step)."""
    if static:
        return input_current(layer, p, h, dtype, bt)
    I3 = workspace.empty((L + 1, B, layer.n_out), dtype)
    input_current(layer, p, h, dtype, bt, out=I3[1:])
    return I3


def _segment_forward(layer, cfg, P, I_seg, static, prev, L, B, dtype):
    """One segment of L steps of one layer: buffers of L+1 steps whose row 0 is
    ``prev`` = (u, v, s, a), the state before the segment (CK1); returns the
    (u, v, s, a) buffers.  ``I_seg``: from :func:`_segment_input`."""
    u = workspace.empty((L + 1, B, layer.n_out), dtype)
    v = workspace.empty(u.shape, spike_dtype(cfg, dtype))
    s = workspace.empty(u.shape, dtype) if cfg.synaptic else np.zeros((1, 1, 1), dtype)
    a = workspace.empty(u.shape, dtype) if cfg.adaptive else np.zeros((1, 1, 1), dtype)
    u[0], v[0] = prev[0], prev[1]
    if cfg.synaptic:
        s[0] = prev[2]
    if cfg.adaptive:
        a[0] = prev[3]
    I3 = I_seg[None] if static else I_seg
    dummy0 = np.zeros((3, B, layer.n_out), dtype)
    forward_scan(cfg, I3, static, 1, L + 1, dummy0, P, np.zeros((1, 1, 1)), u, v, s, a)
    return u, v, s, a


def forward_checkpointed(self, x, params, T, checkpoint_every):
    params = self.params if params is None else params
    self._check_params(params)
    for i, layer in enumerate(self.layers):
        if layer.config.recurrent == "all":
            raise ValueError(f"checkpoint_every: layer {i} has an all-to-all recurrence, "
                             f"which the checkpointed path does not support")
        if layer.config.forward == "stochastic":
            raise ValueError(f"checkpoint_every: layer {i} has a stochastic forward, which "
                             f"cannot be replayed")
    if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, (int, np.integer)) \
            or checkpoint_every < 1:
        raise ValueError(f"checkpoint_every: expected an integer >= 1, got {checkpoint_every!r}")
    x, static, T = check_sequence("x", x, T, self.n_in)
    x = np.ascontiguousarray(x, dtype=self.dtype)
    B = x.shape[-2]
    C = time_chunk(B)
    K = -(-int(checkpoint_every) // C) * C
    dtype = self.dtype
    nseg = -(-T // K)
    Ls = len(self.layers)
    packed = []
    for i, layer in enumerate(self.layers):
        neuron, _ = layer.effective(self.layer_params(params, i))
        packed.append(neuron.packed(layer.n_out, dtype, layer.config))
    states = [np.zeros((nseg, 4, B, l.n_out), dtype) for l in self.layers]
    top = self.layers[-1]
    top_u = np.empty((T, B, top.n_out), dtype)
    top_v = np.empty(top_u.shape, spike_dtype(top.config, dtype))
    top_s = np.empty_like(top_u) if top.config.synaptic else None
    top_a = np.empty_like(top_u) if top.config.adaptive else None
    prev = [np.zeros((4, B, l.n_out), dtype) for l in self.layers]     # u0 = s0 = a0 = 0, v0 = 0
    bts = [[None] for _ in self.layers]     # W^T copies of the event kernels, made once
    for seg in range(nseg):
        t0, t1 = seg * K, min(T, (seg + 1) * K)
        h = x if static else x[t0:t1]
        h_static = static
        for i, layer in enumerate(self.layers):
            states[i][seg] = prev[i]
            I = _segment_input(layer, self.layer_params(params, i), h, h_static, t1 - t0, B,
                               dtype, bts[i])
            u, v, s_, a_ = _segment_forward(layer, layer.config, packed[i], I, h_static, prev[i],
                                            t1 - t0, B, dtype)
            prev[i] = np.stack([u[-1], v[-1], s_[-1] if layer.config.synaptic else prev[i][2],
                                a_[-1] if layer.config.adaptive else prev[i][3]])
            if i == Ls - 1:
                top_u[t0:t1], top_v[t0:t1] = u[1:], v[1:]
                if top_s is not None:
                    top_s[t0:t1] = s_[1:]
                if top_a is not None:
                    top_a[t0:t1] = a_[1:]
            h = u[1:] if layer.readout else v[1:]
            h_static = False
    top_trace = Trace(top_u, top_v, top_s, top_a, np.zeros((3, B, top.n_out), dtype), False,
                      (None, None, None))
    out = top_u if top.readout else top_v
    layers = [None] * (Ls - 1) + [LayerTrace(None, top_trace)]
    return out, CheckpointTrace(x, static, T, K, states, layers, dict(params))


def backward_checkpointed(self, trace, dv, du, params, need_input_grad):
    x, static, T, K = trace.x, trace.static, trace.T, trace.K
    B = x.shape[-2]
    dtype = self.dtype
    packed = [layer.effective(self.layer_params(trace.params, i))[0].packed(
        layer.n_out, dtype, layer.config) for i, layer in enumerate(self.layers)]
    zeros0 = [np.zeros((3, B, layer.n_out), dtype) for layer in self.layers]
    segments = [(seg * K, min(T, (seg + 1) * K)) for seg in range(len(trace.states[0]))]
    bts = [[None] for _ in self.layers]     # W^T copies of the event kernels, made once
    dummy = np.zeros((1, 1, 1), dtype)

    def views(seg, t0, t1):
        # recompute the segment's forward from the checkpoints (CK2)
        out = []
        h, h_static = (x if static else x[t0:t1]), static
        for i, layer in enumerate(self.layers):
            if i == len(self.layers) - 1:    # the top layer's trace is kept: no recompute
                out.append(trace_rows(trace.layers[-1].trace, t0, t1, dummy) + (h, h_static))
                break
            I = _segment_input(layer, self.layer_params(trace.params, i), h, h_static, t1 - t0,
                               B, dtype, bts[i])
            u, v, s_, a_ = _segment_forward(layer, layer.config, packed[i], I, h_static,
                                            trace.states[i][seg], t1 - t0, B, dtype)
            out.append((u, v, s_, a_, zeros0[i], 1, h, h_static))
            h, h_static = (u[1:] if layer.readout else v[1:]), False
        return out

    return backward_segments(self, segments, views, x, static, B, dv, du, trace.params,
                             need_input_grad)
