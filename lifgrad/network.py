"""``Sequential`` networks with flat, named parameters: the entry points.

A network holds parameters (``net.params``, a flat dict ``{"layer0.W": ...}``)
and configuration only.  ``forward`` returns the top layer's spikes and a
trace; ``backward`` reads that trace and returns a dict of gradients with the
same keys.  Neither mutates its inputs.

Per layer: one matrix product over all ``T*B`` rows forward (A1) and two
backward (A20b, A20c), one fused scan each way; a static input ``(B, N_in)``
uses one ``(B, N_in)`` product instead (A21).  Recurrent layers add their
per-step product inside the scan driver (R1)-(R3).  The pieces live beside
this file, one concept each: the layers and their parametrisations
(``layers.py``), the products over time (``chunked.py``), the traces
(``net_traces.py``), the reverse pass over time segments (``adjoint.py``),
checkpointing (``checkpoint.py``).  ``Dense``, ``Readout`` and the traces are
importable from here as before.
"""
from __future__ import annotations

import functools

import numpy as np

from . import parallel, workspace
from .adjoint import backward_full
from .checkpoint import backward_checkpointed, forward_checkpointed
from .chunked import chunked_matmul, input_current, weight_grads
from .functional import (CHUNK_ROWS, TIME_CHUNK, backward_impl, forward_impl, reduce_grads,
                         time_chunk)
from .layers import DECAY_PARAMETRISATIONS, Dense, Readout
from .net_traces import CheckpointTrace, LayerTrace, NetTrace
from .validation import check_adjoint, check_sequence

__all__ = ["Dense", "Readout", "Sequential", "NetTrace", "LayerTrace", "CheckpointTrace",
           "DECAY_PARAMETRISATIONS", "time_chunk", "TIME_CHUNK", "CHUNK_ROWS"]


def _in_workspace(method):
    """Run a network method with the network's workspace installed."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with workspace.use(self.workspace):
            return method(self, *args, **kwargs)
    return wrapper


class Sequential:
    """A stack of layers; layer l reads the spikes of layer l-1 at the same step (A20a)."""

    def __init__(self, layers, *, seed=0, dtype="float32"):
        layers = list(layers)
        if not layers:
            raise ValueError("layers: expected at least one layer")
        for i in range(1, len(layers)):
            if layers[i].n_in != layers[i - 1].n_out:
                raise ValueError(f"layers: layer {i} expects {layers[i].n_in} inputs but layer "
                                 f"{i - 1} has {layers[i - 1].n_out} neurons")
        self.layers = layers
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype: expected 'float32' or 'float64', got {dtype!r}")
        rng = np.random.default_rng(seed)
        self.params = {}
        for i, layer in enumerate(layers):
            for k, v in layer.init_params(rng, self.dtype).items():
                self.params[f"layer{i}.{k}"] = v

    @property
    def n_in(self):
        return self.layers[0].n_in

    @property
    def workspace(self):
        """The network's :class:`lifgrad.workspace.Workspace`: step-sized buffers
        reused between steps once nothing else holds them (made on first use)."""
        ws = self.__dict__.get("_workspace")
        if ws is None:
            ws = self.__dict__["_workspace"] = workspace.Workspace()
        return ws

    def replace_configs(self, fn):
        """A network sharing this one's parameters whose layer configurations
        are ``fn(index, layer, config)`` (readout layers are left as they are).
        Used to switch the forward mode or the surrogate amplitudes."""
        import copy
        new = copy.copy(self)
        new.layers = []
        for i, layer in enumerate(self.layers):
            lay = copy.copy(layer)
            if not layer.readout:
                lay.config = fn(i, layer, layer.config)
            new.layers.append(lay)
        return new

    def layer_params(self, params, i):
        """Layer ``i``'s entries of a flat parameter dict, without the
        ``layer{i}.`` prefix (``{"W": ..., "alpha": ...}``)."""
        prefix = f"layer{i}."
        return {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}

    def _check_params(self, params):
        missing = set(self.params) - set(params)
        if missing:
            raise ValueError(f"params: missing {sorted(missing)}")
        for k, v in params.items():
            if k in self.params and np.shape(v) != self.params[k].shape:
                raise ValueError(f"params[{k!r}]: expected shape {self.params[k].shape}, "
                                 f"got {np.shape(v)}")

    @parallel.scoped
    @_in_workspace
    def forward(self, x, params=None, T=None, rng=None, checkpoint_every=None):
        """Run the network on ``x`` ``(T, B, n_in)``, or static ``(B, n_in)`` with ``T=``.

        Returns ``(v_top, NetTrace)``; ``v_top`` is ``(T, B, n_out)``.  ``rng``
        (a numpy Generator) drives layers with ``forward='stochastic'``.

        ``x`` is cast to the network's dtype first (``x.astype(net.dtype)``,
        as NumPy casts on assignment): a float64 input to a float32 network
        (the default) is computed in float32, rounded to 24 bits; build the
        network with ``dtype="float64"`` to keep float64 (integer and boolean
        inputs, e.g. spikes, are exact in both).

        ``checkpoint_every=K`` keeps only every layer's state at the start of
        each segment of K steps (rounded up to a multiple of ``time_chunk(B)``) and
        the top layer's trace; the backward recomputes each segment's forward
        from its checkpoint.  Memory O(T/K + K) instead of O(T) per layer, the
        same gradients to the bit, one extra forward in time (CK1)-(CK3).
        """
        if checkpoint_every is not None:
            return forward_checkpointed(self, x, params, T, checkpoint_every)
        params = self.params if params is None else params
        self._check_params(params)
        x, static, T = check_sequence("x", x, T, self.n_in)
        x = np.ascontiguousarray(x, dtype=self.dtype)
        traces = []
        h = x
        for i, layer in enumerate(self.layers):
            p = self.layer_params(params, i)
            I = input_current(layer, p, h, self.dtype)                        # (A1)
            B = I.shape[-2]
            neuron, _ = layer.effective(p)
            P = neuron.packed(layer.n_out, self.dtype, layer.config)
            R = neuron.recurrent_matrix(layer.n_out, self.dtype, layer.config)
            state0 = np.zeros((3, B, layer.n_out), self.dtype)
            v, tr = forward_impl(I[None] if static else I, static, T, P, R, layer.config, state0,
                                  rng=rng)
            del I             # not held while the next layer's current is made
            traces.append(LayerTrace(h, tr))
            h, static = (tr.u if layer.readout else v), False
        return h, NetTrace(traces)

    def _layer_terms(self, name, terms, trace, dtype):
        """A caller's ``layer_dv``/``layer_du``: ``{layer index: (T, B, n)}`` as
        arrays of the trace's dtype, checked once for both backward paths."""
        out = {}
        for i, e in (terms or {}).items():
            if isinstance(i, bool) or not isinstance(i, (int, np.integer)) \
                    or not 0 <= i < len(self.layers):
                raise ValueError(f"{name}: keys must be layer indices in "
                                 f"[0, {len(self.layers)}), got {i!r}")
            e = np.asarray(e, dtype)
            want = trace.layers[i].trace.u.shape
            if e.shape != want:
                raise ValueError(f"{name}[{i}]: expected shape {want}, got {e.shape}")
            out[int(i)] = e
        return out

    @parallel.scoped
    @_in_workspace
    def backward(self, trace, dv=None, du=None, params=None, need_input_grad=False,
                 layer_dv=None, record=None, layer_du=None):
        """Gradients of every parameter, given ``dv = dL/dv`` and ``du = dL/du``
        of the top layer (each ``(T, B, n_out)``, a scalar, or ``None``; for a
        readout top layer only ``du`` is meaningful).  A scalar is that value
        at every step, batch row and neuron (``dv=1.0`` for L = the sum of the
        output spikes) and takes the memory of one chunk of steps, not of
        ``(T, B, n_out)``.  ``layer_dv`` optionally adds direct
        ``dL/dv`` of lower layers, ``{layer index: (T, B, n)}`` (e.g. a spike
        regulariser); ``layer_du`` likewise adds direct ``dL/du`` (e.g. the
        score of a stochastic layer).  ``record``, a dict, receives ``record[i] = ubar_i``, the
        error ``dL/dI`` of layer i, for every layer (the gradient-flow tools).

        Returns a dict with the keys of ``params`` (plus ``"x"`` when
        ``need_input_grad``).  Layer by layer from the top (A20), (A21).
        """
        params = self.params if params is None else params
        top = trace.layers[-1].trace
        shape = top.u.shape
        dtype = top.u.dtype
        if isinstance(trace, CheckpointTrace):
            params = trace.params

        dv = check_adjoint("dv", dv, shape, dtype, scalar=True)
        du = check_adjoint("du", du, shape, dtype, scalar=True)
        if isinstance(trace, CheckpointTrace):
            if layer_dv or layer_du or record is not None:
                raise ValueError("layer_dv, layer_du and record are not available with a "
                                 "checkpointed trace")
            return backward_checkpointed(self, trace, dv, du, params, need_input_grad)
        layer_dv = self._layer_terms("layer_dv", layer_dv, trace, dtype)
        layer_du = self._layer_terms("layer_du", layer_du, trace, dtype)
        if record is None and all(l.config.recurrent != "all" for l in self.layers):
            # chunk by chunk through all layers: one chunk of errors per layer in
            # memory, the same numbers as the layer-by-layer pass below (CK3)
            return backward_full(self, trace, dv, du, params, need_input_grad,
                                 layer_dv, layer_du)
        dv = None if dv is None else np.ascontiguousarray(dv)       # a scalar: made in full
        du = None if du is None else np.ascontiguousarray(du)
        grads = {}
        owned = False      # whether dv is an array made here (may be overwritten)
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            p = self.layer_params(params, i)
            x, tr = trace.layers[i]
            if i in layer_dv:
                extra = layer_dv[i]
                dv, owned = (extra, False) if dv is None else (dv + extra, True)
            if i in layer_du:
                extra = layer_du[i]
                du = extra if du is None else du + extra
            neuron, factors = layer.effective(p)
            P = neuron.packed(layer.n_out, dtype, layer.config)
            R = neuron.recurrent_matrix(layer.n_out, dtype, layer.config)
            # an all-to-all layer's dI may overwrite a dv made here (not the caller's)
            reuse = dv if (owned and R is not None and dv is not None) else None
            parts = backward_impl(tr, P, R, layer.config, dv, du, dI_out=reuse,
                                   partials=layer.partials)
            lg = reduce_grads(parts, neuron, tr, layer.config)
            ubar = parts.dI                                  # (T, B, N) or (B, N) if static
            if record is not None:
                record[i] = ubar
            dW, db = weight_grads(ubar, x, config=layer.config)                 # (A20b), (A21)
            grads[f"layer{i}.W"] = dW
            if layer.bias:
                grads[f"layer{i}.b"] = db
            if layer.config.recurrent is not None:
                gR = lg.R
                if layer.config.recurrent == "all" and not layer.autapses:
                    gR = gR - np.diag(np.diag(gR))                               # frozen diagonal
                grads[f"layer{i}.R"] = gR
                if layer.rec_bias:
                    grads[f"layer{i}.b_rec"] = db.copy() if layer.bias else weight_grads(ubar, x)[1]
            for k, g in layer.chain(lg, factors).items():
                grads[f"layer{i}.{k}"] = g
            if i > 0 or need_input_grad:
                W = np.asarray(p["W"], dtype)
                dx = chunked_matmul(ubar, W)                                    # (A20c)
                if i == 0:
                    grads["x"] = dx
                elif self.layers[i - 1].readout:
                    dv, du = None, dx                # a readout feeds its membrane forward
                else:
                    dv, du = dx, None
                owned = True
        return {k: grads[k] for k in list(params) + (["x"] if need_input_grad else [])
                if k in grads}
