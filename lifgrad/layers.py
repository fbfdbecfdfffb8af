"""Layers of a network: ``Dense`` (any model of the cell, learnable neuron
parameters, reparametrisations) and ``Readout`` (a leaky integrator).

Reparametrisations of the decays and the threshold (``derivations/
parametrisations.md``, P*) live here: the kernels see the effective values,
and the gradient is carried to the underlying parameter by one chain-rule
factor (:meth:`Dense.effective`, :meth:`Dense.chain`).
"""
from __future__ import annotations

import math

import numpy as np

from .config import LIFConfig, LIFParams

__all__ = ["Dense", "Readout", "DECAY_PARAMETRISATIONS"]

_NEURON = ("alpha", "theta", "gamma", "u_reset", "alpha_s", "rho", "beta_a", "u_bias")
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
    alpha, theta, gamma, u_reset, alpha_s, rho, beta_a, u_bias:
                  neuron parameters (scalar or ``(n_out,)``); ``gamma=None`` ties
                  it to theta; ``u_bias`` (default 0) is the membrane bias, a
                  current added to u_t directly, not through the synapse (M6).
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
                 alpha_s_param="direct", dt=1.0, theta_range=None, u_bias=0.0):
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
        self.neuron = LIFParams(alpha, theta, gamma, u_reset, alpha_s, rho, beta_a,
                                u_bias=u_bias)
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
        """Whether the backward scan sums the partials of alpha, theta, the
        reset value and the membrane bias (A14)-(A17), (M6): only when the layer
        learns alpha, theta, gamma, u_reset or u_bias (the scan then writes
        only what the gradients read)."""
        return bool(set(self.learn) & {"alpha", "theta", "gamma", "u_reset", "u_bias"})

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
