"""Layer configuration (static, hashable) and neuron parameters (arrays).

The split follows DESIGN.md: everything that changes *which* computation runs
(reset mode, detach flag, strictness, forward mode, surrogate, backend, dtype)
is a frozen, validated :class:`LIFConfig`; everything that is differentiated
is a plain array in :class:`LIFParams`.  Equations: SPEC section 2 and
``derivations/lif_adjoint.md`` (A2)-(A7).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np

from . import surrogates as _sg
from .kernels.constants import FWD_STOCHASTIC_PHI, N_P, P_UBIAS, P_UMIN

__all__ = ["LIFConfig", "LIFParams", "RESETS", "FORWARDS", "BACKENDS",
           "alpha_from_tau", "tau_from_alpha"]

RESETS = ("subtract", "zero", "none")
FORWARDS = ("hard", "smooth", "stochastic")
BACKENDS = ("cpu", "reference", "cuda")
RECURRENT = ("one", "all")
THETA_GRADS = ("shift", "ratio", "none")            # kernels/constants.py TG_* order
ADAPTATIONS = ("threshold", "current")
SURROGATE_THRESHOLDS = ("constant", "live")
SPIKE_PROBABILITIES = ("primitive", "surrogate")
_RESET_ALIASES = {"hard": "zero"}
DTYPES = (np.float32, np.float64)


def _choice(arg, value, valid, aliases=None):
    if aliases and value in aliases:
        value = aliases[value]
    if not isinstance(value, str) or value not in valid:
        raise ValueError(f"{arg}: expected one of {', '.join(map(repr, valid))}, got {value!r}")
    return value


def _flag(arg, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{arg}: expected True or False, got {value!r}")
    return bool(value)


@dataclass(frozen=True)
class LIFConfig:
    """Static configuration of one LIF layer.

    reset:        'subtract' (default), 'zero' (alias 'hard') or 'none'     (A2)-(A4)
    detach_reset: drop the gradient through the reset's spike               (A11)
    strict:       fire at u > theta instead of u >= theta (snnTorch, Norse)  (A5);
                  None (default): the comparison of the peer preset the surrogate
                  came from (``surrogates.get("snntorch.atan")`` fires at >),
                  else False
    forward:      'hard' (Heaviside), 'smooth' (surrogate primitive G) or
                  'stochastic' (Bernoulli(G), escape noise; needs rng=)     (A5), (A6), (T7)
    surrogate:    a name from :func:`lifgrad.surrogates.names` or a Surrogate
    backend:      'cpu' (Numba, default), 'reference' (NumPy) or 'cuda' (numba-cuda:
                  host arrays are copied to the GPU and back each call; for
                  device-resident training see lifgrad.device)
    dtype:        None (follow the input; integers/bools become float64),
                  'float32' or 'float64'
    synaptic:     two-state cell, the membrane is driven by s_t = alpha_s s_{t-1} + I_t  (S1)
    adaptive:     adaptive threshold theta_t = theta + beta_a a_t,
                  a_t = rho a_{t-1} + v_{t-1}                                 (L1), (L2)
    recurrent:    None, 'one' (one-to-one, I_t += r * v_{t-1}) or
                  'all' (all-to-all, I_t += R v_{t-1})                        (R1)
    norm_input:   the membrane is driven by (1 - alpha) s_t instead of s_t
                  (sinabs' ``norm_input``, EXODUS)                            (M1)
    max_spikes:   spikes per step: 1 (default) the Heaviside spike; M > 1 up to M
                  spikes, v_t = min(floor(u_t / theta_t), M) (Rockpool's
                  max_spikes_per_dt); None any number (sinabs' MultiSpike).
                  Several spikes need the hard forward and theta > 0; the
                  surrogate stands for dv_t/du_t (M2).  A zero reset of a count
                  resets where the neuron fired, h_t = min(v_t, 1), and needs
                  detach_reset=True (sinabs' MembraneReset)                  (M12)
    decay_input:  with synaptic=True, s_t = alpha_s (s_{t-1} + J_t): the input
                  decays in the step it arrives (sinabs' tau_syn, Rockpool) (M3)
    theta_grad:   the spike's derivative in theta: 'shift' (default) -phi_t, the
                  step moves with theta; 'ratio' -(u_t/theta) phi_t, the spikes as
                  a function of u/theta (Rockpool's StepPWL); not with an adaptive
                  threshold (M4); 'none' 0, the spike function passes its threshold
                  (baseline and adaptation) no gradient (sinabs) (M8)
    reset_by_threshold: the subtractive reset removes gamma_t = k theta_t, k times
                  the threshold the spike crossed (with an adaptive threshold,
                  theta + beta_a a_t of that step), with its gradient; k is
                  LIFParams.gamma when given, 1 when tied (Spyx's and sinabs'
                  ALIF).  Needs reset='subtract'                              (M7)
    adaptation:   with adaptive=True, 'threshold' (default): a_t raises the
                  threshold, theta_t = theta + beta_a a_t (L2); 'current': a_t is a
                  current into the membrane, u_t -= beta_a a_t, and the threshold
                  stays theta (Rockpool's aLIFTorch after-hyperpolarisation) (M9)
    delay_output: the layer's output at step t is the cell's spike of step t - 1
                  (0 at t = 0): the spike is read from the state before the
                  step's update (Spyx's neurons).  The cell itself is
                  unchanged; lif_forward returns, and lif_backward's dv is
                  about, the delayed output (M5)
    surrogate_threshold: 'constant' (default): the surrogate preset's ``threshold``
                  parameter is the number it was built with; 'live': it is the
                  neuron's own threshold theta_t of the step (per neuron, with the
                  adaptation when adaptive), phi_t = phi(u_t - theta_t; theta_t)
                  (sinabs' ALIF, Rockpool's per-neuron threshold).  A coefficient
                  of the adjoint, not differentiated; needs a peer preset with a
                  ``threshold`` parameter and forward='hard'               (M10)
    u_min:        None (default), or a number: the post-reset membrane is clipped
                  from below at u_min before it decays, u_t = max(alpha u_{t-1} -
                  reset, alpha u_min) + c s_t + b_u, zero gradient where clipped
                  (sinabs' ``min_v_mem``).  A constant of the configuration; its
                  gradient is returned as ``LIFGrads.u_min``                   (M11)
    spike_probability: with forward='stochastic', what a spike's probability is:
                  'primitive' (default) G(u - theta), whose derivative is the
                  surrogate (T7); 'surrogate' the surrogate phi(u - theta) itself
                  (scaled and clipped), so the backward multiplies by the
                  probability, not its derivative (Spyx's Bernoulli neurons,
                  ``spyx.sigmoid_bernoulli``); a probability above 1 always
                  fires.  The surrogate then needs no primitive              (M13)
    """

    reset: str = "subtract"
    detach_reset: bool = False
    strict: bool | None = None
    forward: str = "hard"
    surrogate: _sg.Surrogate = field(default_factory=lambda: _sg.get("atan"))
    backend: str = "cpu"
    dtype: str | None = None
    synaptic: bool = False
    adaptive: bool = False
    recurrent: str | None = None
    norm_input: bool = False
    max_spikes: int | None = 1
    decay_input: bool = False
    theta_grad: str = "shift"
    delay_output: bool = False
    reset_by_threshold: bool = False
    adaptation: str = "threshold"
    surrogate_threshold: str = "constant"
    u_min: float | None = None
    spike_probability: str = "primitive"

    def __post_init__(self):
        object.__setattr__(self, "reset", _choice("reset", self.reset, RESETS, _RESET_ALIASES))
        object.__setattr__(self, "forward", _choice("forward", self.forward, FORWARDS))
        object.__setattr__(self, "backend", _choice("backend", self.backend, BACKENDS))
        _flag("detach_reset", self.detach_reset)
        object.__setattr__(self, "surrogate", _sg.get(self.surrogate))
        auto = self.strict is None
        if auto:
            pre = self.surrogate.preset
            object.__setattr__(self, "strict", _sg.preset(pre).strict if pre else False)
        object.__setattr__(self, "_auto_strict", auto)
        _flag("strict", self.strict)
        _flag("synaptic", self.synaptic)
        _flag("adaptive", self.adaptive)
        if self.recurrent is not None:
            _choice("recurrent", self.recurrent, RECURRENT)
        if self.dtype is not None:
            try:
                dt = np.dtype(self.dtype)
            except TypeError:
                dt = None
            if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
                raise ValueError(f"dtype: expected None, 'float32' or 'float64', got {self.dtype!r}")
            object.__setattr__(self, "dtype", dt.name)
        _flag("norm_input", self.norm_input)
        _flag("decay_input", self.decay_input)
        _flag("delay_output", self.delay_output)
        _choice("theta_grad", self.theta_grad, THETA_GRADS)
        _flag("reset_by_threshold", self.reset_by_threshold)
        _choice("adaptation", self.adaptation, ADAPTATIONS)
        if self.adaptation != "threshold" and not self.adaptive:
            raise ValueError(f"adaptation={self.adaptation!r}: the adaptation variable exists "
                             f"only with adaptive=True")
        if self.theta_grad == "ratio" and self.adaptive_threshold:
            raise ValueError("theta_grad='ratio': the spike's threshold derivative -(u/theta) "
                             "phi is defined for a fixed threshold, not with adaptive=True "
                             "(adaptation='current' keeps the threshold fixed)")
        if self.reset_by_threshold and self.reset != "subtract":
            raise ValueError(f"reset_by_threshold=True: only a subtractive reset removes a "
                             f"threshold; got reset={self.reset!r}")
        if self.decay_input and not self.synaptic:
            raise ValueError("decay_input=True: the input decays in the synaptic state; it "
                             "needs synaptic=True")
        ms = self.max_spikes
        if ms is not None and (isinstance(ms, (bool, np.bool_))
                               or not isinstance(ms, (int, np.integer)) or ms < 1):
            raise ValueError(f"max_spikes: expected an integer >= 1 or None (no maximum), "
                             f"got {ms!r}")
        if ms is not None:
            object.__setattr__(self, "max_spikes", int(ms))
        if self.multi_spike:
            if self.forward != "hard":
                raise ValueError(f"max_spikes={ms!r}: several spikes per step need "
                                 f"forward='hard', got {self.forward!r}")
            if self.reset == "zero" and not self.detach_reset:
                raise ValueError(f"max_spikes={ms!r} with reset='zero': the zero reset of a "
                                 f"count reads whether the neuron fired, min(v, 1), a step "
                                 f"whose gradient the count's surrogate does not define; "
                                 f"only detach_reset=True is supported (sinabs' "
                                 f"MembraneReset), (M12)")
        _choice("surrogate_threshold", self.surrogate_threshold, SURROGATE_THRESHOLDS)
        live = None
        if self.surrogate_threshold == "live":
            if self.forward != "hard":
                raise ValueError(f"surrogate_threshold='live' with forward={self.forward!r}: "
                                 f"the live threshold is a coefficient of the adjoint; a "
                                 f"smooth or stochastic forward G(u - theta_t; theta_t) would "
                                 f"depend on theta_t through the surrogate too, a derivative "
                                 f"the adjoint does not take: refused (M10)")
            live = _sg.live_threshold(self.surrogate)
        object.__setattr__(self, "_live", live)
        if self.u_min is not None:
            um = self.u_min
            if isinstance(um, (bool, np.bool_)) or not isinstance(um, (int, float, np.integer,
                                                                       np.floating)) \
                    or not math.isfinite(um):
                raise ValueError(f"u_min: expected None or a finite number, got {um!r}")
            object.__setattr__(self, "u_min", float(um))
        _choice("spike_probability", self.spike_probability, SPIKE_PROBABILITIES)
        if self.spike_probability == "surrogate" and self.forward != "stochastic":
            raise ValueError(f"spike_probability='surrogate': the spike's probability is read "
                             f"by the stochastic forward only; got forward={self.forward!r}")
        if self.forward in ("smooth", "stochastic") and not self.surrogate.has_primitive \
                and self.spike_probability != "surrogate":
            raise ValueError(f"forward={self.forward!r} needs a surrogate with a primitive; "
                             f"{self.surrogate.name!r} has none"
                             + (" (or spike_probability='surrogate', the surrogate itself as "
                                "the probability, M13)" if self.forward == "stochastic" else ""))

    def replace(self, **changes) -> "LIFConfig":
        """A copy with ``changes``; a new surrogate brings its preset's comparison
        when ``strict`` was never given."""
        if "surrogate" in changes and "strict" not in changes and self._auto_strict:
            changes["strict"] = None
        return replace(self, **changes)

    @property
    def reset_code(self) -> int:
        return RESETS.index(self.reset)

    @property
    def stores_s(self) -> bool:
        """The trace keeps ``s_t``, the current the membrane integrates: the
        synaptic state, or with ``norm_input`` the input current itself (the
        gradient of alpha reads it, (M1))."""
        return self.synaptic or self.norm_input

    @property
    def adaptive_threshold(self) -> bool:
        """The adaptation raises the threshold, theta_t = theta + beta_a a_t (L2)
        (adaptive, not as a current (M9))."""
        return self.adaptive and self.adaptation == "threshold"

    @property
    def multi_spike(self) -> bool:
        """More than one spike per step possible (``max_spikes`` not 1)."""
        return self.max_spikes != 1

    def mode(self) -> tuple:
        """The flags the kernels read, see ``lifgrad.reference`` (M_*)."""
        fwd = FORWARDS.index(self.forward)
        if self.spike_probability == "surrogate":
            fwd = FWD_STOCHASTIC_PHI                                       # (M13)
        return (self.reset_code, int(self.strict), fwd,
                int(self.detach_reset), int(self.synaptic), int(self.adaptive),
                int(self.recurrent == "one"), int(self.norm_input),
                0 if self.max_spikes is None else self.max_spikes, int(self.decay_input),
                THETA_GRADS.index(self.theta_grad), int(self.reset_by_threshold),
                int(self.adaptive and self.adaptation == "current"),
                self._live[1] if self._live else 0, int(self.u_min is not None))

    def kernel_sg(self) -> tuple:
        """The surrogate's kernel arguments (``Surrogate.kernel_args``); with
        ``surrogate_threshold='live'`` its values at threshold 1, which the
        kernels scale by each neuron's theta_t as ``mode()`` says (M10)."""
        return self._live[0] if self._live else self.surrogate.kernel_args()


def _as_param(arg, value, n, dtype, lo=-math.inf, hi=math.inf):
    """Validate a scalar-or-per-neuron parameter; return (array (n,), was_scalar)."""
    a = np.asarray(value)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{arg}: expected a real number or an array of shape ({n},), "
                        f"got dtype {a.dtype}")
    if a.ndim == 0:
        scalar = True
        full = np.full(n, a, dtype=dtype)
    elif a.shape == (n,):
        scalar = False
        full = a.astype(dtype)
    else:
        raise ValueError(f"{arg}: expected a scalar or shape ({n},), got shape {a.shape}")
    if not np.all(np.isfinite(full)):
        raise ValueError(f"{arg}: contains NaN or Inf")
    if np.any(full < lo) or np.any(full > hi):
        bad = full[(full < lo) | (full > hi)][0]
        raise ValueError(f"{arg}: expected values in [{lo}, {hi}], got {bad}")
    return np.ascontiguousarray(full), scalar


class LIFParams(NamedTuple):
    """Differentiable neuron parameters of one LIF layer.

    Each of alpha, theta, gamma, u_reset, alpha_s, rho, beta_a, u_bias is a
    scalar or an array of shape (N,).  ``gamma=None`` ties the reset strength to the
    (baseline) threshold (gamma = theta, the SPEC default), so a learned
    threshold also moves the reset, (A15).  With ``LIFConfig(reset_by_threshold=True)``
    gamma is a factor instead: the reset removes ``gamma theta_t`` (the
    threshold the spike crossed), ``gamma=None`` meaning 1 (M7).  ``alpha_s`` is read only by a
    synaptic cell, ``rho`` and ``beta_a`` only by an adaptive one.  ``R`` is
    the recurrent weight: ``(N,)`` for ``recurrent='one'``, ``(N, N)`` for
    ``recurrent='all'`` (``R[i, j]`` from neuron j to neuron i), else unused.
    ``u_bias`` is the membrane bias b_u, a constant current added to the
    membrane at every step, ``u_t = alpha u_{t-1} + c s_t + b_u - ...``, not
    through the synapse (Rockpool's ``bias``; default 0), (M6).
    """

    alpha: object = 0.9
    theta: object = 1.0
    gamma: object = None
    u_reset: object = 0.0
    alpha_s: object = 0.8
    rho: object = 0.95
    beta_a: object = 0.2
    R: object = None
    u_bias: object = 0.0

    @property
    def tied(self) -> bool:
        return self.gamma is None

    def resolved(self, n: int, dtype):
        """Per-neuron arrays ``(alpha, theta, gamma, u_reset)`` of shape (n,), validated."""
        alpha, _ = _as_param("alpha", self.alpha, n, dtype, 0.0, 1.0)
        theta, _ = _as_param("theta", self.theta, n, dtype)
        if self.gamma is None:
            gamma = theta
        else:
            gamma, _ = _as_param("gamma", self.gamma, n, dtype)
        u_reset, _ = _as_param("u_reset", self.u_reset, n, dtype)
        return alpha, theta, gamma, u_reset

    def packed(self, n: int, dtype, config) -> np.ndarray:
        """The (N_P, n) parameter matrix of the kernels (rows P_* of ``lifgrad.reference``).

        Validates every parameter the configuration uses.  With
        ``reset_by_threshold`` the gamma row is the factor k of gamma_t = k
        theta_t: the value given, or 1 when tied (M7)."""
        P = np.zeros((N_P, n), dtype)
        P[0], P[1], P[2], P[3] = self.resolved(n, dtype)
        if config.reset_by_threshold and self.gamma is None:
            P[2] = 1                                                               # (M7)
        if config.multi_spike and np.any(P[1] <= 0):
            raise ValueError(f"theta: several spikes per step (max_spikes="
                             f"{config.max_spikes}) count multiples of theta and need "
                             f"theta > 0, got {P[1][P[1] <= 0][0]}")
        if config.synaptic:
            P[4] = _as_param("alpha_s", self.alpha_s, n, dtype, 0.0, 1.0)[0]
            if config.decay_input and np.any(P[4] <= 0):
                raise ValueError("alpha_s: decay_input=True needs alpha_s > 0 (it scales the "
                                 "input; dL/dalpha_s reads s_t / alpha_s)")
        if config.adaptive:
            P[5] = _as_param("rho", self.rho, n, dtype, 0.0, 1.0)[0]
            P[6] = _as_param("beta_a", self.beta_a, n, dtype)[0]
        if config.recurrent == "one":
            if self.R is None or np.ndim(self.R) > 1:
                raise ValueError(f"R: recurrent='one' needs a scalar or shape ({n},) of "
                                 f"one-to-one weights, got "
                                 f"{'None' if self.R is None else np.shape(self.R)}")
            P[7] = _as_param("R", self.R, n, dtype)[0]
        P[P_UBIAS] = _as_param("u_bias", self.u_bias, n, dtype)[0]                 # (M6)
        if config.u_min is not None:
            P[P_UMIN] = config.u_min                                               # (M11)
        return P

    def recurrent_matrix(self, n: int, dtype, config):
        """The (n, n) all-to-all weight for ``recurrent='all'``, validated; else None."""
        if config.recurrent != "all":
            return None
        R = np.asarray(self.R) if self.R is not None else None
        if R is None or R.shape != (n, n):
            raise ValueError(f"R: recurrent='all' needs shape ({n}, {n}), got "
                             f"{'None' if R is None else R.shape}")
        if R.dtype.kind not in "biuf":
            raise TypeError(f"R: expected real numbers, got dtype {R.dtype}")
        if not np.all(np.isfinite(R)):
            raise ValueError("R: contains NaN or Inf")
        return np.ascontiguousarray(R, dtype=dtype)


def alpha_from_tau(tau, dt=1.0):
    """Decay per step ``alpha = exp(-dt/tau)`` for a time constant ``tau`` (same unit as dt)."""
    tau = np.asarray(tau, dtype=float)
    if np.any(~np.isfinite(tau)) or np.any(tau <= 0):
        raise ValueError(f"tau: expected finite values > 0, got {tau}")
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt: expected a finite number > 0, got {dt}")
    return np.exp(-dt / tau)


def tau_from_alpha(alpha, dt=1.0):
    """Inverse of :func:`alpha_from_tau`: ``tau = -dt / log(alpha)`` for alpha in (0, 1)."""
    alpha = np.asarray(alpha, dtype=float)
    if np.any(~(alpha > 0)) or np.any(~(alpha < 1)):
        raise ValueError(f"alpha: expected values in (0, 1) to define a time constant, got {alpha}")
    return -dt / np.log(alpha)
