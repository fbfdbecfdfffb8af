"""Layers and ``Sequential`` networks with flat, named parameters.

A network holds parameters (``net.params``, a flat dict ``{"layer0.W": ...}``)
and configuration only.  ``forward`` returns the top layer's spikes and a
trace; ``backward`` reads that trace and returns a dict of gradients with the
same keys.  Neither mutates its inputs.

Per layer: one matrix product over all ``T*B`` rows forward (A1) and two
backward (A20b, A20c), one fused scan each way; a static input ``(B, N_in)``
uses one ``(B, N_in)`` product instead (A21).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .config import LIFConfig, LIFParams
from .functional import (Trace, _backward_impl, _check_finite, _forward_impl,
                         reduce_grads)

__all__ = ["Dense", "Sequential", "NetTrace"]

_NEURON_PARAMS = ("alpha", "theta", "gamma", "u_reset")


class Dense:
    """A dense layer of LIF neurons: ``I_t = W x_t + b`` (A1), then (A2)-(A6).

    n_in, n_out:  sizes.
    config:       :class:`LIFConfig` of the neurons.
    alpha, theta, gamma, u_reset: neuron parameters (scalar or ``(n_out,)``);
                  ``gamma=None`` ties it to theta.
    learn:        which neuron parameters are trained, a subset of
                  ('alpha', 'theta', 'gamma', 'u_reset'); W and b always are.
    bias:         whether the layer has a bias ``b``.
    """

    kind = "dense"

    def __init__(self, n_in, n_out, config=None, *, alpha=0.9, theta=1.0, gamma=None,
                 u_reset=0.0, learn=(), bias=True):
        for arg, val in (("n_in", n_in), ("n_out", n_out)):
            if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 1:
                raise ValueError(f"{arg}: expected a positive integer, got {val!r}")
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.config = config if config is not None else LIFConfig()
        if not isinstance(self.config, LIFConfig):
            raise TypeError(f"config: expected a lifgrad.LIFConfig, got {type(config).__name__}")
        learn = (learn,) if isinstance(learn, str) else tuple(learn)
        bad = set(learn) - set(_NEURON_PARAMS)
        if bad:
            raise ValueError(f"learn: unknown parameter(s) {sorted(bad)}; valid: {list(_NEURON_PARAMS)}")
        if "gamma" in learn and gamma is None:
            raise ValueError("learn: 'gamma' is tied to theta (gamma=None); give gamma a value "
                             "to learn it separately")
        self.learn = learn
        self.bias = bool(bias)
        self.neuron = LIFParams(alpha, theta, gamma, u_reset)
        # validate once, with the layer's size
        self.neuron.resolved(self.n_out, np.float64)

    def init_params(self, rng, dtype=np.float64):
        """Initial parameters: W ~ U(-1/sqrt(n_in), 1/sqrt(n_in)), b likewise,
        neuron parameters from the constructor, as per-neuron arrays when learned."""
        bound = 1.0 / math.sqrt(self.n_in)
        p = {"W": rng.uniform(-bound, bound, (self.n_out, self.n_in)).astype(dtype)}
        if self.bias:
            p["b"] = rng.uniform(-bound, bound, self.n_out).astype(dtype)
        for name in self.learn:
            p[name] = np.broadcast_to(np.asarray(getattr(self.neuron, name), dtype),
                                      (self.n_out,)).copy()
        return p

    def neuron_params(self, p):
        """LIFParams with the learned entries of ``p`` substituted."""
        return self.neuron._replace(**{k: p[k] for k in self.learn})

    def __repr__(self):
        return (f"Dense({self.n_in}, {self.n_out}, reset={self.config.reset!r}, "
                f"surrogate={self.config.surrogate}, learn={self.learn})")


class LayerTrace(NamedTuple):
    x: np.ndarray          # the layer's input: (T, B, n_in), or (B, n_in) if static
    trace: Trace


class NetTrace(NamedTuple):
    layers: list


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

    def _layer_params(self, params, i):
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

    def forward(self, x, params=None, T=None):
        """Run the network on ``x`` ``(T, B, n_in)``, or static ``(B, n_in)`` with ``T=``.

        Returns ``(v_top, NetTrace)``; ``v_top`` is ``(T, B, n_out)``.
        """
        params = self.params if params is None else params
        self._check_params(params)
        x = np.asarray(x)
        if x.dtype.kind not in "biuf":
            raise TypeError(f"x: expected real numbers, got dtype {x.dtype}")
        if x.ndim == 2:
            if T is None or isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
                raise ValueError(f"T: a static input x of shape {x.shape} needs an integer "
                                 f"T >= 1, got {T!r}")
            static, T = True, int(T)
        elif x.ndim == 3:
            if T is not None and T != x.shape[0]:
                raise ValueError(f"T: given {T} but x has {x.shape[0]} time steps")
            static, T = False, x.shape[0]
        else:
            raise ValueError(f"x: expected shape (T, B, {self.n_in}) or static (B, {self.n_in}), "
                             f"got {x.shape}")
        if x.shape[-1] != self.n_in or 0 in x.shape:
            raise ValueError(f"x: expected last dimension {self.n_in} and no empty axis, "
                             f"got shape {x.shape}")
        _check_finite("x", x)
        x = np.ascontiguousarray(x, dtype=self.dtype)
        traces = []
        h = x
        for i, layer in enumerate(self.layers):
            p = self._layer_params(params, i)
            W = np.asarray(p["W"], self.dtype)
            lead = h.shape[:-1]
            I = (h.reshape(-1, h.shape[-1]) @ W.T).reshape(*lead, layer.n_out)   # (A1)
            if layer.bias:
                I += np.asarray(p["b"], self.dtype)
            B = I.shape[-2]
            resolved = layer.neuron_params(p).resolved(layer.n_out, self.dtype)
            u0 = np.zeros((B, layer.n_out), self.dtype)
            I3 = I[None] if static else I
            u, v = _forward_impl(I3, static, T, resolved, layer.config, u0)
            traces.append(LayerTrace(h, Trace(u, v, u0, static, None)))
            h, static = v, False
        return h, NetTrace(traces)

    def backward(self, trace, dv=None, du=None, params=None, need_input_grad=False):
        """Gradients of every parameter, given ``dv = dL/dv`` and ``du = dL/du``
        of the top layer (each ``(T, B, n_out)`` or ``None``).

        Returns a dict with the keys of ``params`` (plus ``"x"`` when
        ``need_input_grad``).  Layer by layer from the top (A20), (A21).
        """
        params = self.params if params is None else params
        top = trace.layers[-1].trace
        shape = top.u.shape
        dtype = top.u.dtype

        def _adj(arg, a):
            if a is None:
                return None
            a = np.asarray(a)
            if a.shape != shape:
                raise ValueError(f"{arg}: expected shape {shape} (T, B, n_out), got {a.shape}")
            _check_finite(arg, a)
            return np.ascontiguousarray(a, dtype=dtype)

        dv, du = _adj("dv", dv), _adj("du", du)
        grads = {}
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            p = self._layer_params(params, i)
            x, tr = trace.layers[i]
            neuron = layer.neuron_params(p)
            resolved = neuron.resolved(layer.n_out, dtype)
            parts = _backward_impl(tr, resolved, layer.config, dv, du)
            lg = reduce_grads(parts, neuron, tr)
            ubar = parts.dI                                  # (T, B, N) or (B, N) if static
            ub2 = ubar.reshape(-1, layer.n_out)
            x2 = x.reshape(-1, layer.n_in)
            grads[f"layer{i}.W"] = ub2.T @ x2                                    # (A20b), (A21)
            if layer.bias:
                grads[f"layer{i}.b"] = ub2.sum(axis=0)
            for name in layer.learn:
                grads[f"layer{i}.{name}"] = getattr(lg, name)
            if i > 0 or need_input_grad:
                W = np.asarray(p["W"], dtype)
                dx = (ub2 @ W).reshape(*ubar.shape[:-1], layer.n_in)             # (A20c)
                if i == 0:
                    grads["x"] = dx
                dv, du = dx, None
        return {k: grads[k] for k in list(params) + (["x"] if need_input_grad else [])
                if k in grads}
