"""Layers and ``Sequential`` networks with flat, named parameters.

A network holds parameters (``net.params``, a flat dict ``{"layer0.W": ...}``)
and configuration only.  ``forward`` returns the top layer's spikes and a
trace; ``backward`` reads that trace and returns a dict of gradients with the
same keys.  Neither mutates its inputs.

Per layer: one matrix product over all ``T*B`` rows forward (A1) and two
backward (A20b, A20c), one fused scan each way; a static input ``(B, N_in)``
uses one ``(B, N_in)`` product instead (A21).  Recurrent layers add their
per-step product inside the scan driver (R1)-(R3).  Products over time go by
chunks of ``time_chunk(B)`` steps; a chunk whose input or spike operand is
sparse is made by the event-driven kernels (``functional.use_events``).

Reparametrisations of the decays and the threshold (``derivations/
parametrisations.md``, P*) live here: the kernels see the effective values,
and the gradient is carried to the underlying parameter by one chain-rule
factor.
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np

from . import parallel, workspace
from .config import LIFConfig, LIFParams
from .functional import (CHUNK_ROWS, TIME_CHUNK, Trace, backward_impl,
                         forward_impl, Parts, backward_scan, forward_scan, reduce_grads,
                         spike_dtype, time_chunk, use_events)
from .products import matmul, matmul_acc
from .validation import check_adjoint, check_finite, check_sequence

__all__ = ["Dense", "Readout", "Sequential", "NetTrace", "DECAY_PARAMETRISATIONS",
           "time_chunk", "TIME_CHUNK", "CHUNK_ROWS"]

_NEURON = ("alpha", "theta", "gamma", "u_reset", "alpha_s", "rho", "beta_a")
DECAY_PARAMETRISATIONS = ("direct", "clamp", "sigmoid", "tau")
_DECAY_NAMES = {"alpha": {"direct": "alpha", "clamp": "alpha", "sigmoid": "alpha_logit",
                          "tau": "tau_mem"},
                "alpha_s": {"direct": "alpha_s", "clamp": "alpha_s", "sigmoid": "alpha_s_logit",
                            "tau": "tau_syn"}}


def _sigmoid(w):
    return 0.5 * (1.0 + np.tanh(0.5 * w))


class Dense:
    """A dense layer of LIF cells: ``I_t = W x_t + b`` (A1) (``+ R v_{t-1}`` when
    recurrent, (R1)), then the cell of ``config`` (plain, synaptic, adaptive).

    n_in, n_out:  sizes.
    config:       :class:`LIFConfig`; its ``synaptic``, ``adaptive`` and
                  ``recurrent`` fields choose the model.
    alpha, theta, gamma, u_reset, alpha_s, rho, beta_a:
                  neuron parameters (scalar or ``(n_out,)``); ``gamma=None`` ties
                  it to theta.
    learn:        which neuron parameters are trained (W, b and R always are).
    bias:         whether the layer has a bias ``b``.
    rec_bias:     a separate bias of the recurrent product (snnTorch's RLeaky
                  ``Linear``); same gradient as ``b``.
    autapses:     False freezes the diagonal of an all-to-all ``R`` at zero.
    R_init:       initial recurrent weight: None (uniform +-1/sqrt(n_out) for 'all',
                  zero for 'one') or an array.
    alpha_param, alpha_s_param: 'direct' (in [0, 1], validated), 'clamp'
                  (clip to [0, 1], zero gradient outside, snnTorch), 'sigmoid'
                  (alpha = sigmoid(w)), 'tau' (alpha = exp(-dt/tau)).      (P1)-(P4)
    dt:           step for the 'tau' parametrisation.
    theta_range:  (theta_min, theta_max): the threshold used is the clipped
                  value, with zero gradient outside.                       (P5)
    """

    readout = False

    def __init__(self, n_in, n_out, config=None, *, alpha=0.9, theta=1.0, gamma=None,
                 u_reset=0.0, alpha_s=0.8, rho=0.95, beta_a=0.2, learn=(), bias=True,
                 rec_bias=False, autapses=True, R_init=None, alpha_param="direct",
                 alpha_s_param="direct", dt=1.0, theta_range=None):
        for arg, val in (("n_in", n_in), ("n_out", n_out)):
            if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 1:
                raise ValueError(f"{arg}: expected a positive integer, got {val!r}")
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.config = config if config is not None else LIFConfig()
        if not isinstance(self.config, LIFConfig):
            raise TypeError(f"config: expected a lifgrad.LIFConfig, got {type(config).__name__}")
        learn = (learn,) if isinstance(learn, str) else tuple(learn)
        bad = set(learn) - set(_NEURON)
        if bad:
            raise ValueError(f"learn: unknown parameter(s) {sorted(bad)}; valid: {list(_NEURON)}")
        if "gamma" in learn and gamma is None:
            raise ValueError("learn: 'gamma' is tied to theta (gamma=None); give gamma a value "
                             "to learn it separately")
        unused = [k for k, need in (("alpha_s", self.config.synaptic),
                                    ("rho", self.config.adaptive),
                                    ("beta_a", self.config.adaptive)) if k in learn and not need]
        if unused:
            raise ValueError(f"learn: {unused} not used by this cell (synaptic="
                             f"{self.config.synaptic}, adaptive={self.config.adaptive})")
        for arg, val in (("alpha_param", alpha_param), ("alpha_s_param", alpha_s_param)):
            if val not in DECAY_PARAMETRISATIONS:
                raise ValueError(f"{arg}: expected one of {DECAY_PARAMETRISATIONS}, got {val!r}")
        if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
            raise ValueError(f"dt: expected a finite number > 0, got {dt!r}")
        if theta_range is not None:
            lo, hi = theta_range
            if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
                raise ValueError(f"theta_range: expected finite (min, max) with min <= max, "
                                 f"got {theta_range!r}")
        self.learn = learn
        self.bias = bool(bias)
        self.rec_bias = bool(rec_bias) and self.config.recurrent is not None
        self.autapses = bool(autapses)
        self.param_kind = {"alpha": alpha_param, "alpha_s": alpha_s_param}
        self.dt = float(dt)
        self.theta_range = None if theta_range is None else (float(theta_range[0]),
                                                             float(theta_range[1]))
        self.neuron = LIFParams(alpha, theta, gamma, u_reset, alpha_s, rho, beta_a)
        self.R_init = R_init
        # validate the neuron parameters once, with the layer's size (R comes later)
        self.neuron.packed(self.n_out, np.float64, self.config.replace(recurrent=None))

    # -- parameters -------------------------------------------------------
    def _name(self, which):
        return _DECAY_NAMES[which][self.param_kind[which]] if which in _DECAY_NAMES else which

    def param_names(self):
        names = ["W"] + (["b"] if self.bias else [])
        if self.config.recurrent is not None:
            names.append("R")
            if self.rec_bias:
                names.append("b_rec")
        return names + [self._name(k) for k in self.learn]

    def init_params(self, rng, dtype=np.float64):
        """Initial parameters: W ~ U(-1/sqrt(n_in), 1/sqrt(n_in)), b likewise,
        R ~ U(-1/sqrt(n_out), 1/sqrt(n_out)) (all-to-all, diagonal zero without
        autapses) or zero (one-to-one), neuron parameters from the constructor
        in their parametrisation (P1)-(P4)."""
        bound = 1.0 / math.sqrt(self.n_in)
        p = {"W": rng.uniform(-bound, bound, (self.n_out, self.n_in)).astype(dtype)}
        if self.bias:
            p["b"] = rng.uniform(-bound, bound, self.n_out).astype(dtype)
        rec = self.config.recurrent
        if rec is not None:
            shape = (self.n_out, self.n_out) if rec == "all" else (self.n_out,)
            if self.R_init is not None:
                R = np.asarray(self.R_init, dtype)
                if R.shape != shape:
                    raise ValueError(f"R_init: expected shape {shape}, got {R.shape}")
            elif rec == "all":
                rb = 1.0 / math.sqrt(self.n_out)
                R = rng.uniform(-rb, rb, shape)
            else:
                R = np.zeros(shape)
            R = np.array(R, dtype)
            if rec == "all" and not self.autapses:
                np.fill_diagonal(R, 0.0)
            p["R"] = R
            if self.rec_bias:
                p["b_rec"] = np.zeros(self.n_out, dtype)
        for name in self.learn:
            val = np.broadcast_to(np.asarray(getattr(self.neuron, name), np.float64),
                                  (self.n_out,)).copy()
            kind = self.param_kind.get(name, "direct")
            if kind == "sigmoid":
                if np.any(val <= 0) or np.any(val >= 1):
                    raise ValueError(f"{name}: the sigmoid parametrisation needs values in (0, 1)")
                val = np.log(val) - np.log1p(-val)                             # (P2)
            elif kind == "tau":
                if np.any(val <= 0) or np.any(val >= 1):
                    raise ValueError(f"{name}: the tau parametrisation needs values in (0, 1)")
                val = -self.dt / np.log(val)                                   # (P4)
            p[self._name(name)] = val.astype(dtype)
        return p

    def effective(self, p):
        """(LIFParams with effective values, masks for the chain rule) from the
        layer's learned entries ``p`` (P1)-(P5)."""
        values, factors = {}, {}
        for name in self.learn:
            raw = np.asarray(p[self._name(name)])
            kind = self.param_kind.get(name, "direct")
            if kind == "clamp":
                values[name] = np.clip(raw, 0.0, 1.0)                          # (P1)
                factors[name] = ((raw >= 0) & (raw <= 1)).astype(raw.dtype)
            elif kind == "sigmoid":
                sig = _sigmoid(raw)                                            # (P2)
                values[name] = sig
                factors[name] = sig * (1 - sig)
            elif kind == "tau":
                if np.any(raw <= 0):
                    raise ValueError(f"{self._name(name)}: time constants must be > 0")
                val = np.exp(-self.dt / raw)                                   # (P3)
                values[name] = val
                factors[name] = val * self.dt / raw ** 2
            else:
                values[name] = raw
        if self.theta_range is not None:
            raw = np.asarray(values.get("theta", self.neuron.theta), dtype=np.float64)
            lo, hi = self.theta_range
            values["theta"] = np.clip(raw, lo, hi)                             # (P5)
            if "theta" in self.learn:
                factors["theta"] = ((raw >= lo) & (raw <= hi)).astype(np.asarray(
                    p[self._name("theta")]).dtype)
        R = None
        if self.config.recurrent is not None:
            R = np.asarray(p["R"])
            if self.config.recurrent == "all" and not self.autapses:
                R = R - np.diag(np.diag(R))
        return self.neuron._replace(R=R, **values), factors

    @property
    def partials(self):
        """Whether the backward scan sums the partials of alpha, theta and the
        reset value (A14)-(A17): only when the layer learns alpha, theta, gamma
        or u_reset (the scan then writes only what the gradients read)."""
        return bool(set(self.learn) & {"alpha", "theta", "gamma", "u_reset"})

    def chain(self, lg, factors):
        """Gradients of the learned neuron parameters in their parametrisation."""
        out = {}
        for name in self.learn:
            g = getattr(lg, name)
            out[self._name(name)] = g * factors[name] if name in factors else g
        return out

    def __repr__(self):
        c = self.config
        model = "+".join([m for m, on in (("synaptic", c.synaptic), ("adaptive", c.adaptive))
                          if on] or ["lif"])
        rec = f", recurrent={c.recurrent!r}" if c.recurrent else ""
        return (f"Dense({self.n_in}, {self.n_out}, {model}{rec}, reset={c.reset!r}, "
                f"surrogate={c.surrogate}, learn={self.learn})")


class Readout(Dense):
    """A non-spiking leaky integrator: ``u_t = alpha u_{t-1} + W x_t + b``, whose
    output is the membrane ``u`` (for membrane losses).  It is the cell with
    ``reset='none'``: spikes never feed back, so the adjoint is
    ``ubar_t = eps_t + alpha ubar_{t+1}`` ((A9) with phi * vbar = 0)."""

    readout = True

    def __init__(self, n_in, n_out, *, alpha=0.9, learn=(), bias=True, alpha_param="direct",
                 dt=1.0, backend="cpu"):
        bad = set((learn,) if isinstance(learn, str) else learn) - {"alpha"}
        if bad:
            raise ValueError(f"learn: a readout only learns 'alpha', got {sorted(bad)}")
        cfg = LIFConfig(reset="none", surrogate="zero", backend=backend)
        super().__init__(n_in, n_out, cfg, alpha=alpha, theta=0.0, learn=learn, bias=bias,
                         alpha_param=alpha_param, dt=dt)

    def __repr__(self):
        return f"Readout({self.n_in}, {self.n_out}, learn={self.learn})"


def _chunked_matmul(a, B_, out=None, config=None, bt=None):
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


def _input_current(layer, p, h, dtype, bt=None, out=None):
    """``I_t = W x_t + b (+ b_rec)`` for all steps (A1), chunked like every product
    (``bt``: see :func:`_chunked_matmul`), into ``out`` when given."""
    I = _chunked_matmul(h, np.asarray(p["W"], dtype).T, out=out, config=layer.config, bt=bt)
    if layer.bias:
        I += np.asarray(p["b"], dtype)
    if layer.rec_bias:
        I += np.asarray(p["b_rec"], dtype)
    return I


def _weight_grads(ubar, x, dW=None, db=None, config=None):
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


class LayerTrace(NamedTuple):
    x: np.ndarray          # the layer's input: (T, B, n_in), or (B, n_in) if static
    trace: Trace


class NetTrace(NamedTuple):
    layers: list


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
            return self._forward_checkpointed(x, params, T, checkpoint_every)
        params = self.params if params is None else params
        self._check_params(params)
        x, static, T = check_sequence("x", x, T, self.n_in)
        x = np.ascontiguousarray(x, dtype=self.dtype)
        traces = []
        h = x
        for i, layer in enumerate(self.layers):
            p = self.layer_params(params, i)
            I = _input_current(layer, p, h, self.dtype)                        # (A1)
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
            return self._backward_checkpointed(trace, dv, du, params, need_input_grad)
        layer_dv = self._layer_terms("layer_dv", layer_dv, trace, dtype)
        layer_du = self._layer_terms("layer_du", layer_du, trace, dtype)
        if record is None and all(l.config.recurrent != "all" for l in self.layers):
            # chunk by chunk through all layers: one chunk of errors per layer in
            # memory, the same numbers as the layer-by-layer pass below (CK3)
            return self._backward_full_segments(trace, dv, du, params, need_input_grad,
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
            dW, db = _weight_grads(ubar, x, config=layer.config)                 # (A20b), (A21)
            grads[f"layer{i}.W"] = dW
            if layer.bias:
                grads[f"layer{i}.b"] = db
            if layer.config.recurrent is not None:
                gR = lg.R
                if layer.config.recurrent == "all" and not layer.autapses:
                    gR = gR - np.diag(np.diag(gR))                               # frozen diagonal
                grads[f"layer{i}.R"] = gR
                if layer.rec_bias:
                    grads[f"layer{i}.b_rec"] = db.copy() if layer.bias else _weight_grads(ubar, x)[1]
            for k, g in layer.chain(lg, factors).items():
                grads[f"layer{i}.{k}"] = g
            if i > 0 or need_input_grad:
                W = np.asarray(p["W"], dtype)
                dx = _chunked_matmul(ubar, W)                                    # (A20c)
                if i == 0:
                    grads["x"] = dx
                elif self.layers[i - 1].readout:
                    dv, du = None, dx                # a readout feeds its membrane forward
                else:
                    dv, du = dx, None
                owned = True
        return {k: grads[k] for k in list(params) + (["x"] if need_input_grad else [])
                if k in grads}


class CheckpointTrace(NamedTuple):
    """Trace of a checkpointed forward: the input, every layer's state at the
    start of each segment, and the top layer's full trace (for the loss).
    ``layers[-1].trace`` is the top layer's :class:`Trace` like a NetTrace's."""

    x: np.ndarray
    static: bool
    T: int
    K: int
    states: list            # per layer: (n_segments, 4, B, N) u, v, s, a before each segment
    layers: list            # [None, ..., LayerTrace(None, top Trace)]
    params: dict


def _segment_input(layer, p, h, static, L, B, dtype, bt):
    """The input current of one segment for :func:`_segment_forward`: ``(B, N)``
    for a static input, else made straight into rows 1..L of an ``(L+1, B, N)``
    buffer (no copy of a segment's currents: W5's 64 segments x 4 MB per step)."""
    if static:
        return _input_current(layer, p, h, dtype, bt)
    I3 = workspace.empty((L + 1, B, layer.n_out), dtype)
    _input_current(layer, p, h, dtype, bt, out=I3[1:])
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


def _trace_rows(tr, t0, t1, dummy):
    """Views of a kept trace for the reverse scan over [t0, t1): ``(u, v, s, a,
    state0, lead)`` with the row before t0 in front (lead 1), or from the
    trace's ``state0`` at t0 = 0 (lead 0).  No copies."""
    lead = 1 if t0 > 0 else 0
    rows = slice(t0 - lead, t1)
    return (tr.u[rows], tr.v[rows], dummy if tr.s is None else tr.s[rows],
            dummy if tr.a is None else tr.a[rows], tr.state0, lead)


def _forward_checkpointed(self, x, params, T, checkpoint_every):
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


def _backward_segments(self, segments, views, x, static, B, dv, du, params, need_input_grad,
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
                dW[i], db[i] = _weight_grads(ub, hin, dW[i], db[i], cfg)           # (A20b)
            W = np.asarray(p["W"], dtype)
            if i > 0:                                                            # (A20c)
                below = bufs[i - 1][5]
                dh = chunk_buffer(below + L, layer.n_in)
                dh[:below] = 0
                _chunked_matmul(ub, W, out=dh[below:])
                if self.layers[i - 1].readout:
                    dvb, dub = None, dh      # a readout feeds its membrane forward
                else:
                    dvb, dub = dh, None
                mine = dh
            elif dx_all is not None:
                _chunked_matmul(ub, W, out=dx_all[t0:t1])
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
            dW[i], db[i] = _weight_grads(dIi, x)                                 # (A21)
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
        grads["x"] = (_chunked_matmul(dI_static[0], np.asarray(info[0][0]["W"], dtype))
                      if static else dx_all)
    return {k: grads[k] for k in list(params) + (["x"] if need_input_grad else []) if k in grads}


def _backward_full_segments(self, trace, dv, du, params, need_input_grad, layer_dv, layer_du):
    """The full-trace backward chunk by chunk (views of the trace, no recompute)."""
    x = trace.layers[0].x
    first = trace.layers[0].trace
    static = first.static
    T, B = first.u.shape[:2]
    C = time_chunk(B)
    segments = [(t0, min(T, t0 + C)) for t0 in range(0, T, C)]
    dummy = np.zeros((1, 1, 1), self.dtype)

    def views(seg, t0, t1):
        return [_trace_rows(lt.trace, t0, t1, dummy)
                + (lt.x if lt.trace.static else lt.x[t0:t1], lt.trace.static)
                for lt in trace.layers]

    return self._backward_segments(segments, views, x, static, B, dv, du, params,
                                   need_input_grad, layer_dv, layer_du,
                                   traces=[lt.trace for lt in trace.layers])


def _backward_checkpointed(self, trace, dv, du, params, need_input_grad):
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
                out.append(_trace_rows(trace.layers[-1].trace, t0, t1, dummy) + (h, h_static))
                break
            I = _segment_input(layer, self.layer_params(trace.params, i), h, h_static, t1 - t0,
                               B, dtype, bts[i])
            u, v, s_, a_ = _segment_forward(layer, layer.config, packed[i], I, h_static,
                                            trace.states[i][seg], t1 - t0, B, dtype)
            out.append((u, v, s_, a_, zeros0[i], 1, h, h_static))
            h, h_static = (u[1:] if layer.readout else v[1:]), False
        return out

    return self._backward_segments(segments, views, x, static, B, dv, du, trace.params,
                                   need_input_grad)


Sequential._backward_segments = _backward_segments
Sequential._backward_full_segments = _backward_full_segments
Sequential._forward_checkpointed = _forward_checkpointed
Sequential._backward_checkpointed = _backward_checkpointed
