"""The network's reverse pass: one adjoint for every backward (A20), (R2), (R3), (CK2), (CK3).

:func:`backward_segments` runs the adjoint segment by segment from the last,
every layer from the top within a segment; ``views(seg, t0, t1)`` supplies
each layer's trace rows and input over the segment.  Every network backward
is this one function:

* the full trace (:func:`backward_full`): views of the stored trace, one
  time chunk per segment;
* the checkpointed trace (``checkpoint.backward_checkpointed``): each segment
  recomputed from its checkpoint;
* the device network (``device.DeviceNetwork.backward``): the device trace as
  one segment, its arrays and products on the GPU.

Where the arrays live and how the products are made is the ``arrays``
argument (:class:`HostArrays` here, ``device.DeviceArrays`` on the GPU); the
order of the reverse pass, the recurrence carried between segments, the
frozen diagonal, ``layer_dv``/``layer_du`` and ``record`` are written once,
here.  Same chunks, same order of every sum: the full and the checkpointed
trace give the same bits.
"""
from __future__ import annotations

import numpy as np

from . import workspace
from .backends import kernels_for
from .chunked import chunked_matmul, weight_grads
from .functional import (Parts, Trace, backward_scan, delayed_adjoint, recurrent_grad,
                         reduce_grads, step_sum, time_chunk)
from .kernels.constants import N_ACC
from .products import matmul

__all__ = ["backward_segments", "backward_full", "trace_rows", "HostArrays"]


def trace_rows(tr, t0, t1, dummy):
    """Views of a kept trace for the reverse scan over [t0, t1): ``(u, v, s, a,
    state0, lead)`` with the row before t0 in front (lead 1), or from the
    trace's ``state0`` at t0 = 0 (lead 0).  No copies."""
    lead = 1 if t0 > 0 else 0
    rows = slice(t0 - lead, t1)
    return (tr.u[rows], tr.v[rows], dummy if tr.s is None else tr.s[rows],
            dummy if tr.a is None else tr.a[rows], tr.state0, lead)


class HostArrays:
    """The reverse pass's arrays and products on the host: NumPy buffers (step
    sized ones from the network's workspace) and lifgrad's chunked products
    (:mod:`lifgrad.chunked`), the cell kernels of each layer's backend."""

    def __init__(self, net, params):
        self.net, self.params, self.dtype = net, params, net.dtype

    def neuron(self, i):
        """Layer i's ``(neuron, factors, P)``: effective cell parameters, the
        parametrisation's factors, the packed rows the kernels read."""
        layer = self.net.layers[i]
        neuron, factors = layer.effective(self.net.layer_params(self.params, i))
        return neuron, factors, neuron.packed(layer.n_out, self.dtype, layer.config)

    def weight(self, i, name):
        return np.ascontiguousarray(self.params[f"layer{i}.{name}"], self.dtype)

    def zeros(self, shape):
        return np.zeros(shape, self.dtype)

    def buffer(self, shape):
        return workspace.empty(shape, self.dtype)

    def steps(self, arr, t0, t1, lead):
        """Steps [t0, t1) of a (T, B, N) array for a reverse scan over rows
        [lead, lead + t1 - t0): a view (with the row before t0 in front when
        lead = 1), or, for t0 = 0 with a leading row, a copy whose row 0 is zero."""
        if arr is None:
            return None
        if lead == 0 or t0 > 0:
            view = arr[t0 - lead:t1]
            # a scalar dv/du (a broadcast view) is made here, one chunk at a time
            return view if view.flags.c_contiguous else np.ascontiguousarray(view)
        out = np.zeros((t1 - t0 + 1,) + arr.shape[1:], self.dtype)
        out[1:] = arr[t0:t1]
        return out

    def row_copy(self, row):
        return row.copy()

    def kernels(self, config):
        return kernels_for(config)

    def scan(self, config, *args):
        backward_scan(config, *args)

    def matmul(self, a, W, out):
        if a.ndim == 2:            # a static input's error (B, N): one product
            matmul(a, W, out)
        else:
            chunked_matmul(a, W, out=out)                                # (A20c)

    def weight_grads(self, ub, h, dW, db, config):
        return weight_grads(ub, h, dW, db, config)                        # (A20b), (A21)

    def recurrent_grad(self, dI, v, lead, t0, dR, config):
        return recurrent_grad(dI, v, lead, t0, dR, config)                # (R3)

    def step_sum(self, rows, out):
        step_sum(rows, out)

    def zero_diagonal(self, a):
        np.fill_diagonal(a, 0)

    def copy(self, a):
        return a.copy()

    def batch_sums(self, acc):
        return acc                 # reduce_grads sums over the batch

    def result(self, name, g):
        return g


class _Layer:
    """One layer's state in the reverse pass: what carries across segments."""

    def __init__(self, arrays, i, layer, B):
        self.layer, self.cfg = layer, layer.config
        self.neuron, self.factors, self.P = arrays.neuron(i)
        N = layer.n_out
        self.acc = arrays.zeros((N_ACC, B, N))  # partial sums, rows ACC_*
        self.adj = arrays.zeros((3, B, N))      # ubar, sbar, abar after the segment
        self.dstate0 = arrays.zeros((3, B, N))  # written at t0 = 0, not used (see below)
        self.all_to_all = self.cfg.recurrent == "all"
        self.R = arrays.weight(i, "R") if self.all_to_all else None
        self.dR = None
        self.next_row = None                    # dL/dI of the later segment's first step
        self.delayed = self.cfg.delay_output
        self.later_dy = None                    # dL/dy of the later segment's first step (M5)
        self.no_row = arrays.zeros((1, 1)) if self.all_to_all else None    # (before any)
        self.dW = self.db = None

    def delay(self, arrays, dy, lead, L):
        """dL/dv of a delayed layer from dL/dy over the segment (M5): shifted by
        a step, the last from the later segment (carried), into a new buffer."""
        out = delayed_adjoint(dy, arrays.zeros((lead + L,) + dy.shape[1:]), lead, L,
                              self.later_dy)
        self.later_dy = arrays.row_copy(dy[lead])
        return out

    def reverse(self, arrays, rows, dv, du, dI, t0, L, dummy):
        """The cell's adjoint over one segment's L steps from t0 (``rows``: the
        layer's views, :func:`backward_segments`): the scan, or the
        all-to-all kernel (R2) carrying dL/dI of the segment's first step to
        the earlier segment and adding the segment's terms of dR (R3).
        Writes ``dI``, updates the partial sums and the adjoint state."""
        u, v, s, a, state0, lead, _, static = rows
        have = (dv is not None, du is not None)
        dv, du = dummy if dv is None else dv, dummy if du is None else du
        dstate0 = self.dstate0 if lead == 0 else dummy
        cfg = self.cfg
        if not self.all_to_all:
            arrays.scan(cfg, u, v, s, a, state0, dv, du, dummy,
                        have + (False, self.layer.partials), static, lead, lead + L, self.P,
                        dI, self.acc, self.adj, dstate0)
            return
        nxt = self.no_row if self.next_row is None else self.next_row
        arrays.kernels(cfg).cell_backward_recurrent(
            u, v, s, a, state0, dv, du, have + (self.next_row is not None, self.layer.partials),
            lead, lead + L, self.P, self.R, cfg.mode(), cfg.kernel_sg(), dI, nxt,
            self.acc, self.adj, dstate0)                                        # (R2)
        self.next_row = arrays.row_copy(dI[lead])
        self.dR = arrays.recurrent_grad(dI, v, lead, t0, self.dR, cfg)         # (R3)


def _layer_terms(cur, extra, arrays, t0, t1, lead):
    """``cur`` plus the segment of a caller's extra term (``layer_dv``/``layer_du``),
    and whether the result is an array made here (which dI may overwrite)."""
    seg = arrays.steps(extra, t0, t1, lead)
    return (seg, False) if cur is None else (cur + seg, True)


def backward_segments(net, segments, views, x, static, B, dv, du, arrays, need_input_grad,
                      layer_dv=None, layer_du=None, record=None):
    """The reverse pass segment by segment, from the last segment, every layer
    from the top within a segment (CK2).  ``views(seg, t0, t1)`` gives per layer
    ``(u, v, s, a, state0, lead, h, h_static)``: trace buffers whose row ``lead``
    is step t0 (row 0 the state before it when ``lead`` is 1) and the layer's
    input over the segment.  ``arrays``: :class:`HostArrays` or the device's
    twin.  ``record`` (a dict) receives every layer's ``dL/dI`` over all steps
    (``(B, N)`` for a static input)."""
    Ls = len(net.layers)
    T = segments[-1][1]
    st = [_Layer(arrays, i, layer, B) for i, layer in enumerate(net.layers)]
    dI_static = arrays.zeros((1, B, net.layers[0].n_out)) if static else None
    dx_all = arrays.zeros(x.shape) if (need_input_grad and not static) else None
    dummy = arrays.zeros((1, 1, 1))
    layer_dv, layer_du = layer_dv or {}, layer_du or {}
    if record is not None:
        for i, layer in enumerate(net.layers):
            record[i] = None if (static and i == 0) else arrays.zeros((T, B, layer.n_out))
    # error buffers are asked for at the longest segment's size and cut to
    # each segment: the last segment, often shorter and met first, would
    # otherwise take a buffer the longer ones cannot reuse
    Lmax = 1 + max(t1 - t0 for t0, t1 in segments)

    def chunk_buffer(rows, n):
        return arrays.buffer((Lmax, B, n))[:rows]

    for seg in range(len(segments) - 1, -1, -1):
        t0, t1 = segments[seg]
        L = t1 - t0
        dI = ub = dh = None   # the last segment's error buffers, free for this one's
        bufs = views(seg, t0, t1)
        top_lead = bufs[-1][5]
        dvb, dub = arrays.steps(dv, t0, t1, top_lead), arrays.steps(du, t0, t1, top_lead)
        mine = None           # a buffer of dv/du made here, which dI may overwrite
        for i in range(Ls - 1, -1, -1):
            ly = st[i]
            lead, hin, hstat = bufs[i][5:]
            if i in layer_dv:
                dvb, made = _layer_terms(dvb, layer_dv[i], arrays, t0, t1, lead)
                mine = dvb if made else mine
            if i in layer_du:
                dub, made = _layer_terms(dub, layer_du[i], arrays, t0, t1, lead)
                mine = dub if made else mine
            if ly.delayed and dvb is not None:       # dvb is dL/dy of the output (M5)
                dvb = ly.delay(arrays, dvb, lead, L)
                mine = dvb
            if hstat and not ly.all_to_all:
                dI = dI_static            # the scan adds every step's dI into row 0 (A21)
            elif mine is not None:
                dI = mine     # the scans read dv_t and du_t of a step before writing dI_t
            else:
                dI = chunk_buffer(lead + L, ly.layer.n_out)
            ly.reverse(arrays, bufs[i], dvb, dub, dI, t0, L, dummy)
            if hstat and ly.all_to_all:
                arrays.step_sum(dI[lead:], dI_static[0])
            ub = None if hstat else dI[lead:]
            if ub is not None:
                ly.dW, ly.db = arrays.weight_grads(ub, hin, ly.dW, ly.db, ly.cfg)   # (A20b)
                if record is not None:
                    record[i][t0:t1] = ub
            W = arrays.weight(i, "W")
            if i > 0:                                                            # (A20c)
                if hstat:
                    raise AssertionError("only the first layer reads a static input")
                below = bufs[i - 1][5]
                dh = chunk_buffer(below + L, ly.layer.n_in)
                if below:
                    dh[:below] = 0
                arrays.matmul(ub, W, dh[below:])
                if net.layers[i - 1].readout:
                    dvb, dub = None, dh      # a readout feeds its membrane forward
                else:
                    dvb, dub = dh, None
                mine = dh
            elif dx_all is not None:
                arrays.matmul(ub, W, dx_all[t0:t1])
    return _assemble(net, st, arrays, x, static, dI_static, dx_all, need_input_grad, record)


def _assemble(net, st, arrays, x, static, dI_static, dx_all, need_input_grad, record):
    """Every parameter's gradient from the pass's sums: the batch sums of the
    neuron-parameter partials through :func:`~lifgrad.functional.reduce_grads`
    and the layer's parametrisation, the weights (A21 for a static input),
    the recurrence (frozen diagonal without autapses)."""
    grads = {}
    for i, (layer, ly) in enumerate(zip(net.layers, st)):
        cfg = layer.config
        # (the gradients of the initial state, (A18), (S5), (L8), are not
        # parameters of a network: not made)
        first_static = static and i == 0
        tr_like = Trace(None, None, None, None, None, first_static, (None, None, None))
        if first_static:
            dIi = dI_static[0]
            ly.dW, ly.db = arrays.weight_grads(dIi, x, None, None, cfg)           # (A21)
            if record is not None:
                record[i] = dIi
        lg = reduce_grads(Parts(None, arrays.batch_sums(ly.acc), None, None, ly.P),
                          ly.neuron, tr_like, cfg)
        grads[f"layer{i}.W"] = ly.dW
        if layer.bias:
            grads[f"layer{i}.b"] = ly.db
        if ly.all_to_all:
            if not layer.autapses:
                arrays.zero_diagonal(ly.dR)                                 # frozen diagonal
            grads[f"layer{i}.R"] = ly.dR
        elif cfg.recurrent is not None:
            grads[f"layer{i}.R"] = arrays.result(f"layer{i}.R", lg.R)
        if layer.rec_bias:
            grads[f"layer{i}.b_rec"] = arrays.copy(ly.db)
        for k, g in layer.chain(lg, ly.factors).items():
            grads[f"layer{i}.{k}"] = arrays.result(f"layer{i}.{k}", g)
    if need_input_grad:
        grads["x"] = dx_all
        if static:
            grads["x"] = arrays.zeros(x.shape)
            arrays.matmul(dI_static[0], arrays.weight(0, "W"), grads["x"])
    return grads


def backward_full(net, trace, dv, du, params, need_input_grad, layer_dv, layer_du, record):
    """The full-trace backward chunk by chunk (views of the trace, no recompute)."""
    x = trace.layers[0].x
    first = trace.layers[0].trace
    static = first.static
    T, B = first.u.shape[:2]
    C = time_chunk(B)
    segments = [(t0, min(T, t0 + C)) for t0 in range(0, T, C)]
    dummy = np.zeros((1, 1, 1), net.dtype)

    def views(seg, t0, t1):
        return [trace_rows(lt.trace, t0, t1, dummy)
                + (lt.x if lt.trace.static else lt.x[t0:t1], lt.trace.static)
                for lt in trace.layers]

    return backward_segments(net, segments, views, x, static, B, dv, du,
                             HostArrays(net, params), need_input_grad, layer_dv, layer_du,
                             record)
