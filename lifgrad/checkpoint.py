"""Checkpointed BPTT (``derivations/checkpointing.md``, CK1-CK3): a forward
that keeps every layer's state only at the start of each segment of K steps
(and the top layer's trace), and a backward that recomputes each segment's
forward from its checkpoint and hands it to the network's one reverse pass
(:mod:`lifgrad.adjoint`).  Memory O(T/K + K) per layer, the same gradients
to the bit.  All-to-all recurrent layers run their segment from the
checkpoint like any other (the recurrent kernel reads the state before the
segment from the buffers' row 0); a stochastic layer's uniform draws are
replayed from a copy of its random generator kept at each segment's start
(CK4), so the recomputed spikes are the forward's."""
from __future__ import annotations

import copy

import numpy as np

from . import workspace
from .adjoint import HostArrays, backward_segments, trace_rows
from .chunked import input_current
from .functional import Trace, cell_forward, layer_output, spike_dtype, time_chunk
from .net_traces import CheckpointTrace, LayerTrace
from .validation import check_sequence

__all__ = ["forward_checkpointed", "backward_checkpointed", "check_every", "trace_bytes",
           "every_for_budget"]

_SKIP = 1 << 20     # uniform numbers drawn at a time when a generator skips a layer's draws


def check_every(checkpoint_every):
    """``checkpoint_every`` as an int >= 1, or a clear error."""
    if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, (int, np.integer)) \
            or checkpoint_every < 1:
        raise ValueError(f"checkpoint_every: expected an integer >= 1, got {checkpoint_every!r}")
    return int(checkpoint_every)


def _step_bytes(layer, dtype):
    """Bytes of one (batch row x neuron) of one step of a layer's trace: u and
    the synaptic/adaptive states in the dtype, v in its own dtype (uint8 for
    hard and stochastic spikes)."""
    cfg, item = layer.config, np.dtype(dtype).itemsize
    return item * (1 + cfg.stores_s + cfg.adaptive) + np.dtype(spike_dtype(cfg, dtype)).itemsize


def trace_bytes(net, T, B, checkpoint_every=None):
    """Bytes a forward keeps for its backward on an input of T steps and B
    rows: the full trace (``checkpoint_every=None``), or the checkpointed one
    with segments of K steps (K rounded up to a multiple of ``time_chunk(B)``,
    as the forward does) together with the buffers its backward recomputes a
    segment into (an upper estimate: the input currents' buffers are reused
    from layer to layer).  Per layer below the top, with S = ceil(T / K)
    segments of L = min(K, T) steps and ``b`` the bytes of one neuron's step
    (u, v, s, a as the model has them):

        full trace:    T B N b
        checkpointed:  S 4 B N itemsize            (the states, CK1)
                       + (L + 1) B N (b + itemsize) (a segment's trace and input current)
                       + (L + 1) B N 8              (its uniform draws, stochastic only)

    and the top layer's full trace in both.  Not counted: the input ``x`` (the
    caller's) and one time chunk of errors per layer, the same in both."""
    T, B = int(T), int(B)
    dtype = net.dtype
    item = np.dtype(dtype).itemsize
    top = net.layers[-1]
    total = T * B * top.n_out * _step_bytes(top, dtype)
    K = None if checkpoint_every is None else check_every(checkpoint_every)
    if K is not None:
        C = time_chunk(B)
        K = -(-K // C) * C
        S, L = -(-T // K), min(K, T)
    for layer in net.layers[:-1]:
        per = B * layer.n_out
        if K is None:
            total += T * per * _step_bytes(layer, dtype)
            continue
        total += S * 4 * per * item + (L + 1) * per * (_step_bytes(layer, dtype) + item)
        if layer.config.forward == "stochastic":
            total += (L + 1) * per * 8
    return total


def every_for_budget(net, T, B, budget_bytes):
    """The ``checkpoint_every`` for a memory budget: None when the full trace
    fits in ``budget_bytes`` (:func:`trace_bytes`), else the longest segment
    (a multiple of ``time_chunk(B)``; fewest segments) whose checkpointed trace
    fits; a ValueError naming the smallest possible size when none does (about
    K = sqrt(T) chunks' worth)."""
    if not (isinstance(budget_bytes, (int, float, np.integer, np.floating))
            and budget_bytes > 0 and np.isfinite(budget_bytes)):
        raise ValueError(f"budget_bytes: expected a positive number, got {budget_bytes!r}")
    if trace_bytes(net, T, B) <= budget_bytes:
        return None
    C = time_chunk(B)
    sizes = {K: trace_bytes(net, T, B, K) for K in range(C, -(-T // C) * C + 1, C)}
    fits = [K for K, b in sizes.items() if b <= budget_bytes]
    if not fits:
        K = min(sizes, key=sizes.get)
        raise ValueError(f"budget_bytes: {budget_bytes / 2**20:.1f} MiB is below the smallest "
                         f"checkpointed trace for T={T}, B={B}: {sizes[K] / 2**20:.1f} MiB "
                         f"at checkpoint_every={K}")
    return max(fits)


def _segment_input(layer, p, h, static, L, B, dtype, bt):
    """The input current of one segment for :func:`_segment_forward`: ``(1, B, N)``
    for a static input, else made straight into rows 1..L of an ``(L+1, B, N)``
    buffer (no copy of a segment's currents: W5's 64 segments x 4 MB per step)."""
    if static:
        return input_current(layer, p, h, dtype, bt)[None]
    I3 = workspace.empty((L + 1, B, layer.n_out), dtype)
    input_current(layer, p, h, dtype, bt, out=I3[1:])
    return I3


def _output(layer, u, v):
    """What a recomputed segment (row 0 the state before it) passes to the next
    layer: the membrane of a readout, the spikes, or the spikes one step late
    (row 0's spike is the step before the segment's; 0 before the first) (M5)."""
    if layer.readout:
        return u[1:]
    return v[:-1] if layer.config.delay_output else v[1:]


class _Layer:
    """What a segment's forward of one layer reads: parameters and the
    generator of its uniform draws (stochastic forward)."""

    def __init__(self, net, params, i, dtype):
        layer = net.layers[i]
        self.layer, self.cfg, self.p = layer, layer.config, net.layer_params(params, i)
        neuron, _ = layer.effective(self.p)
        self.P = neuron.packed(layer.n_out, dtype, layer.config)
        R = neuron.recurrent_matrix(layer.n_out, dtype, layer.config)
        self.RT = None if R is None else np.ascontiguousarray(R.T)
        self.bt = [None]       # W^T copy of the event kernels, made once

    def forward(self, h, static, prev, L, B, dtype, draws=None):
        """One segment of L steps: buffers of L+1 steps whose row 0 is ``prev`` =
        (u, v, s, a), the state before the segment (CK1); returns (u, v, s, a).
        ``draws``: a Generator positioned at the segment's first uniform draw."""
        cfg, N = self.cfg, self.layer.n_out
        I3 = _segment_input(self.layer, self.p, h, static, L, B, dtype, self.bt)
        u = workspace.empty((L + 1, B, N), dtype)
        v = workspace.empty(u.shape, spike_dtype(cfg, dtype))
        dummy = np.zeros((1, 1, 1), dtype)
        s = workspace.empty(u.shape, dtype) if cfg.stores_s else dummy
        a = workspace.empty(u.shape, dtype) if cfg.adaptive else dummy
        u[0], v[0] = prev[0], prev[1]
        if cfg.synaptic:
            s[0] = prev[2]
        if cfg.adaptive:
            a[0] = prev[3]
        rnd = np.zeros((1, 1, 1))
        if draws is not None:
            rnd = np.empty((L + 1, B, N))
            draws.random(out=rnd[1:])                                        # (T7)
        cell_forward(cfg, I3, static, 1, L + 1, np.zeros((3, B, N), dtype), self.P, self.RT,
                     rnd, u, v, s, a)
        return u, v, s, a


def _streams(net, rng, T, B):
    """Per stochastic layer, a copy of ``rng`` positioned where the full
    forward would start that layer's ``(T, B, N)`` draws; ``rng`` is left where
    the full forward leaves it (every layer's draws consumed, in layer order)."""
    streams = {}
    for i, layer in enumerate(net.layers):
        if layer.config.forward != "stochastic":
            continue
        if not isinstance(rng, np.random.Generator):
            raise TypeError("rng: forward='stochastic' needs a numpy.random.Generator "
                            f"(e.g. numpy.random.default_rng(seed)), got {type(rng).__name__}")
        streams[i] = copy.deepcopy(rng)
        left = T * B * layer.n_out
        while left:                      # skip the layer's draws (a chunk at a time)
            n = min(left, _SKIP)
            rng.random(n)
            left -= n
    return streams


def forward_checkpointed(net, x, params, T, checkpoint_every, rng=None):
    """``Sequential.forward(x, params, T, rng, checkpoint_every=K)`` (which has
    checked ``params``): a :class:`CheckpointTrace` (CK1, CK4)."""
    K = check_every(checkpoint_every)
    x, static, T = check_sequence("x", x, T, net.n_in)
    x = np.ascontiguousarray(x, dtype=net.dtype)
    B = x.shape[-2]
    C = time_chunk(B)
    K = -(-K // C) * C
    dtype = net.dtype
    nseg = -(-T // K)
    Ls = len(net.layers)
    lays = [_Layer(net, params, i, dtype) for i in range(Ls)]
    streams = _streams(net, rng, T, B)
    # per stochastic layer below the top: its generator at the start of each segment
    draws = [[] if (i in streams and i < Ls - 1) else None for i in range(Ls)]
    states = [np.zeros((nseg, 4, B, l.n_out), dtype) for l in net.layers[:-1]]
    top = net.layers[-1]
    top_u = np.empty((T, B, top.n_out), dtype)
    top_v = np.empty(top_u.shape, spike_dtype(top.config, dtype))
    top_s = np.empty_like(top_u) if top.config.stores_s else None
    top_a = np.empty_like(top_u) if top.config.adaptive else None
    prev = [np.zeros((4, B, l.n_out), dtype) for l in net.layers]     # u0 = s0 = a0 = 0, v0 = 0
    for seg in range(nseg):
        t0, t1 = seg * K, min(T, (seg + 1) * K)
        h = x if static else x[t0:t1]
        h_static = static
        for i, layer in enumerate(net.layers):
            cfg = layer.config
            if i < Ls - 1:            # the top layer's trace is kept whole
                states[i][seg] = prev[i]
            if draws[i] is not None:
                draws[i].append(copy.deepcopy(streams[i]))
            u, v, s_, a_ = lays[i].forward(h, h_static, prev[i], t1 - t0, B, dtype,
                                           streams.get(i))
            prev[i] = np.stack([u[-1], v[-1], s_[-1] if cfg.synaptic else prev[i][2],
                                a_[-1] if cfg.adaptive else prev[i][3]])
            if i == Ls - 1:
                top_u[t0:t1], top_v[t0:t1] = u[1:], v[1:]
                if top_s is not None:
                    top_s[t0:t1] = s_[1:]
                if top_a is not None:
                    top_a[t0:t1] = a_[1:]
            h = _output(layer, u, v)
            h_static = False
    top_trace = Trace(top_u, top_v, top_s, top_a, np.zeros((3, B, top.n_out), dtype), False,
                      (None, None, None))
    out = top_u if top.readout else layer_output(top_v, top.config)
    layers = [None] * (Ls - 1) + [LayerTrace(None, top_trace)]
    return out, CheckpointTrace(x, static, T, K, states, layers, dict(params), draws)


def backward_checkpointed(net, trace, dv, du, need_input_grad, layer_dv=None, layer_du=None,
                          record=None):
    """``Sequential.backward`` of a :class:`CheckpointTrace` (checked ``dv``,
    ``du`` and layer terms): each segment recomputed from its checkpoint (CK2)
    and handed to :func:`lifgrad.adjoint.backward_segments`."""
    x, static, T, K = trace.x, trace.static, trace.T, trace.K
    B = x.shape[-2]
    dtype = net.dtype
    Ls = len(net.layers)
    lays = [_Layer(net, trace.params, i, dtype) for i in range(Ls)]
    zeros0 = [np.zeros((3, B, layer.n_out), dtype) for layer in net.layers]
    segments = [(t0, min(T, t0 + K)) for t0 in range(0, T, K)]
    dummy = np.zeros((1, 1, 1), dtype)
    draws = trace.draws or [None] * Ls

    def views(seg, t0, t1):
        # recompute the segment's forward from the checkpoints (CK2)
        out = []
        h, h_static = (x if static else x[t0:t1]), static
        for i, layer in enumerate(net.layers):
            if i == Ls - 1:    # the top layer's trace is kept: no recompute
                out.append(trace_rows(trace.layers[-1].trace, t0, t1, dummy) + (h, h_static))
                break
            gen = None if draws[i] is None else copy.deepcopy(draws[i][seg])
            u, v, s_, a_ = lays[i].forward(h, h_static, trace.states[i][seg], t1 - t0, B,
                                           dtype, gen)
            out.append((u, v, s_, a_, zeros0[i], 1, h, h_static))
            h, h_static = _output(layer, u, v), False
        return out

    return backward_segments(net, segments, views, x, static, B, dv, du,
                             HostArrays(net, trace.params), need_input_grad, layer_dv, layer_du,
                             record)
