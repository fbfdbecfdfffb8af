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
from .chunked import input_current
from .functional import CHUNK_ROWS, TIME_CHUNK, forward_impl, time_chunk
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
        same gradients to the bit, one extra forward in time (CK1)-(CK3).  Every
        model checkpoints; a stochastic layer's draws are replayed (CK4), and
        ``rng`` ends where the full forward leaves it.  K for a memory budget:
        :func:`lifgrad.checkpoint.every_for_budget`.
        """
        params = self.params if params is None else params
        self._check_params(params)
        if checkpoint_every is not None:
            return forward_checkpointed(self, x, params, T, checkpoint_every, rng)
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

    def _layer_terms(self, name, terms, T, B, dtype):
        """A caller's ``layer_dv``/``layer_du``: ``{layer index: (T, B, n)}`` as
        arrays of the trace's dtype, checked once for every backward."""
        out = {}
        for i, e in (terms or {}).items():
            if isinstance(i, bool) or not isinstance(i, (int, np.integer)) \
                    or not 0 <= i < len(self.layers):
                raise ValueError(f"{name}: keys must be layer indices in "
                                 f"[0, {len(self.layers)}), got {i!r}")
            e = np.asarray(e, dtype)
            want = (T, B, self.layers[i].n_out)
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
        ``need_input_grad``).  One reverse pass for every trace
        (:mod:`lifgrad.adjoint`): segment by segment from the last, every
        layer from the top within a segment (A20), (A21), (CK2); a
        checkpointed trace recomputes each segment first, with the parameters
        of its forward (``params`` is not read).
        """
        params = self.params if params is None else params
        top = trace.layers[-1].trace
        shape = top.u.shape
        dtype = top.u.dtype
        dv = check_adjoint("dv", dv, shape, dtype, scalar=True)
        du = check_adjoint("du", du, shape, dtype, scalar=True)
        layer_dv = self._layer_terms("layer_dv", layer_dv, *shape[:2], dtype)
        layer_du = self._layer_terms("layer_du", layer_du, *shape[:2], dtype)
        if isinstance(trace, CheckpointTrace):
            params = trace.params
            grads = backward_checkpointed(self, trace, dv, du, need_input_grad, layer_dv,
                                          layer_du, record)
        else:
            grads = backward_full(self, trace, dv, du, params, need_input_grad, layer_dv,
                                  layer_du, record)
        return {k: grads[k] for k in list(params) + (["x"] if need_input_grad else [])
                if k in grads}
