"""Gradient checks: finite differences, the closed form, kernels vs reference.

Each check returns :class:`CheckResult` rows (a maximum error, a tolerance and
whether it passed); :func:`run_suite` runs them over reset modes x detach x
strict x surrogates, and ``lifgrad check`` prints the table.  Checks assert by
returning ``passed``; nothing here only prints.

Ground truth is independent of the code under test: :func:`naive_forward` is
a separately written simulation used for every finite difference, and it can
*freeze* the reset spikes, which turns ``detach_reset=True`` into an exact
gradient (A11) that finite differences can check.

Error measures.  Directional derivatives: ``|fd - an| / max(|fd|, |an|)``.
Arrays (kernel vs reference): ``max|a - b| / max|b|`` (normwise, so entries
near zero do not inflate it).
"""
from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import numpy as np

from . import surrogates as sgs
from .config import LIFConfig, LIFParams
from .functional import lif_backward, lif_forward, spike_dtype
from .gradcheck import directional_derivative, gradcheck, normwise_rel
from .gradcheck import rel_error as _rel
from .gradcheck import rounding_floor as _fd_floor
from .network import Dense, Sequential

__all__ = ["CheckResult", "naive_forward", "layer_functions", "fd_layer", "fd_zero_surrogate", "closed_form",
           "closed_form_check", "kernel_vs_reference", "fd_network", "run_suite"]

TOL_FD = 1e-6
TOL_CLOSED = 1e-12
TOL_KERNEL = {"float64": 1e-12, "float32": 1e-5}
SMOOTH_FAMILIES = tuple(f.name for f in sgs.FAMILIES if f.G is not None)


class CheckResult(NamedTuple):
    check: str
    case: str
    quantity: str
    error: float
    tol: float

    @property
    def passed(self) -> bool:
        return bool(np.isfinite(self.error) and self.error <= self.tol)


def _rel_array(a, b):
    """Normwise ``max|a - b| / max(|a|, |b|)`` (:func:`lifgrad.gradcheck.normwise_rel`)."""
    return normwise_rel(a, b)[1]


# ---------------------------------------------------------------------------
# Independent ground truth
# ---------------------------------------------------------------------------

def naive_forward(I, p, config, frozen_v=None, freeze_all=False, frozen_theta=None,
                  clip_mask=False):
    """A deliberately plain simulation of a layer, written apart from the
    reference and used as ground truth: (A2)-(A6), (S1), (R1), (L1), (L2),
    (M1) input scaled by 1 - alpha, (M2) several spikes per step, (M3) the
    synaptic state decaying its input, (M5) the output one step late (the
    returned ``v`` is then the output ``v_{t-1}``), (M7) the reset removing
    ``k`` times the threshold the spike crossed, (M9) the adaptation as a
    current into the membrane, (M11) the decayed post-reset membrane clipped
    from below at ``alpha u_min`` (``config.u_min``; the initial state is not
    clipped), (M12) the zero reset of
    a count, where the neuron fired.

    ``p``: dict with alpha, theta, gamma (None = tied), u_reset, alpha_s, rho,
    beta_a, R, u0, s0, a0 and optionally u_bias, the membrane bias (M6), and
    u_min, the clip's level (M11; default ``config.u_min``).  ``frozen_v``
    (T, B, N): use these spikes inside the
    reset instead of the simulated ones (the function whose exact gradient
    ``detach_reset=True`` computes, (A11)); with ``freeze_all`` these spikes
    replace the simulated ones everywhere (reset, recurrence, adaptation,
    output): the frozen-spike forward, whose exact gradient is the adjoint
    with the zero surrogate.  ``frozen_theta`` (T, B, N): the threshold the
    spike function compares with (the reset keeps the live one): the function
    whose exact gradient ``theta_grad='none'`` computes (M8).  ``clip_mask``:
    also return where the clip holds (M11), ``(u, v, held)``: a finite
    difference that moves it crosses the clip's kink."""
    T, B, N = I.shape
    gamma = p["theta"] if p.get("gamma") is None else p["gamma"]
    k = 1.0 if p.get("gamma") is None else p["gamma"]     # (M7): gamma_t = k theta_t
    athr = config.adaptive and config.adaptation == "threshold"
    u = np.zeros_like(I)
    v = np.zeros_like(I)
    prev_u = np.broadcast_to(p.get("u0", 0.0), (B, N)).astype(I.dtype)
    prev_s = np.broadcast_to(p.get("s0", 0.0), (B, N)).astype(I.dtype)
    prev_a = np.broadcast_to(p.get("a0", 0.0), (B, N)).astype(I.dtype)
    prev_v = np.zeros((B, N), I.dtype)
    held = np.zeros(I.shape)
    for t in range(T):
        r = prev_v if frozen_v is None else (frozen_v[t - 1] if t > 0 else np.zeros_like(prev_v))
        # a zero reset acts where the neuron fired: a count of spikes counts once (M12)
        z = np.where(r > 0, 1.0, 0.0) if config.multi_spike else r
        cur_in = I[t]
        if config.recurrent == "one":
            cur_in = cur_in + p["R"] * prev_v
        elif config.recurrent == "all":
            cur_in = cur_in + np.einsum("ij,bj->bi", p["R"], prev_v)
        if config.synaptic and config.decay_input:
            prev_s = p["alpha_s"] * (prev_s + cur_in)
            cur_in = prev_s
        elif config.synaptic:
            prev_s = p["alpha_s"] * prev_s + cur_in
            cur_in = prev_s
        if config.norm_input:
            cur_in = (1 - p["alpha"]) * cur_in
        bias = p.get("u_bias", 0.0)       # (M6) the membrane bias, straight into u
        if config.u_min is not None:      # (M11): what the last step left, decayed, clipped
            if config.reset == "subtract" and config.reset_by_threshold:
                crossed = p["theta"] + p["beta_a"] * prev_a if athr else p["theta"]
                kept = p["alpha"] * prev_u - k * crossed * r
            elif config.reset == "subtract":
                kept = p["alpha"] * prev_u - gamma * r
            elif config.reset == "zero":
                kept = p["alpha"] * (prev_u - z * prev_u + z * p["u_reset"])
            else:
                kept = p["alpha"] * prev_u
            if t == 0:                    # the initial state is taken as given
                cur = kept + cur_in + bias
            else:
                u_min = p.get("u_min", config.u_min)
                held[t] = kept <= p["alpha"] * u_min
                cur = np.maximum(kept, p["alpha"] * u_min) + cur_in + bias
        elif config.reset == "subtract" and config.reset_by_threshold:
            # (M7): the threshold that v_{t-1} crossed, adaptation included
            crossed = p["theta"] + p["beta_a"] * prev_a if athr else p["theta"]
            cur = p["alpha"] * prev_u + cur_in + bias - k * crossed * r
        elif config.reset == "subtract":
            cur = p["alpha"] * prev_u + cur_in + bias - gamma * r
        elif config.reset == "zero":
            cur = p["alpha"] * (prev_u - z * prev_u + z * p["u_reset"]) + cur_in + bias
        else:
            cur = p["alpha"] * prev_u + cur_in + bias
        thr = p["theta"]
        if config.adaptive:
            prev_a = p["rho"] * prev_a + prev_v
            if athr:
                thr = p["theta"] + p["beta_a"] * prev_a
            else:                          # (M9) a current into the membrane
                cur = cur - p["beta_a"] * prev_a
        if frozen_theta is not None:       # (M8) the spike's threshold held
            thr = frozen_theta[t]
        if config.forward == "smooth":
            spk = config.surrogate.G(cur - thr)
        elif config.multi_spike:
            # the number of multiples of thr reached (exceeded, strict), at most max_spikes
            n = np.where(cur > thr, np.ceil(cur / thr) - 1, 0.0) if config.strict else \
                np.where(cur >= thr, np.floor(cur / thr), 0.0)
            spk = n if config.max_spikes is None else np.minimum(n, config.max_spikes)
        elif config.strict:
            spk = np.where(cur > thr, 1.0, 0.0)
        else:
            spk = np.where(cur >= thr, 1.0, 0.0)
        if freeze_all:
            spk = frozen_v[t]
        u[t], v[t] = cur, spk
        prev_u, prev_v = cur, spk
    if config.delay_output:             # (M5) the output is the spike of the step before
        v = np.concatenate([np.zeros_like(v[:1]), v[:-1]])
    return (u, v, held) if clip_mask else (u, v)


MODELS = {
    "lif": {},
    "synaptic": dict(synaptic=True),
    "adaptive": dict(adaptive=True),
    "recurrent-one": dict(recurrent="one"),
    "recurrent-all": dict(recurrent="all"),
    "synaptic-recurrent": dict(synaptic=True, recurrent="all"),
    "adaptive-recurrent": dict(adaptive=True, recurrent="all"),
}

# cell variants of peer frameworks (sinabs, Rockpool): checked alongside MODELS
# wherever the configuration exists (several spikes need the hard forward and a
# subtract or no reset)
VARIANTS = {
    "norm-input": dict(norm_input=True),
    "synaptic-norm-input": dict(synaptic=True, norm_input=True, recurrent="one"),
    "multi-spike": dict(max_spikes=3),
    "multi-spike-unbounded": dict(max_spikes=None, adaptive=True),
    "multi-spike-norm-input": dict(max_spikes=4, norm_input=True, synaptic=True),
    "decay-input": dict(synaptic=True, decay_input=True, recurrent="one"),
    "decay-input-multi-spike": dict(synaptic=True, decay_input=True, max_spikes=3,
                                    norm_input=True),
    # Rockpool's LIFTorch: (M2), (M3), the count's threshold derivative -(u/theta) phi (M4)
    "rockpool-like": dict(synaptic=True, decay_input=True, max_spikes=5, theta_grad="ratio"),
    # Spyx's RLIF and CuBaLIF: the spike read from the state before the step (M5)
    "delayed-output": dict(delay_output=True, recurrent="all"),
    "delayed-output-synaptic": dict(delay_output=True, synaptic=True, adaptive=True),
    # Spyx's ALIF: the reset removes the adaptive threshold, read one step late (M7), (M5)
    "adaptive-reset": dict(adaptive=True, reset_by_threshold=True, delay_output=True),
    # sinabs' ALIF: the same reset, the spike's threshold without gradient, the
    # synapse decaying its input (M7), (M8), (M3); and with several spikes and an
    # all-to-all recurrence (ALIFRecurrent)
    "adaptive-reset-sinabs": dict(adaptive=True, reset_by_threshold=True, theta_grad="none",
                                  synaptic=True, decay_input=True),
    "adaptive-reset-multi-spike": dict(adaptive=True, reset_by_threshold=True,
                                       theta_grad="none", max_spikes=None, recurrent="all"),
    # Rockpool's aLIFTorch: the adaptation as a current (M9) with (M2)-(M4)
    "adaptation-current": dict(adaptive=True, adaptation="current", synaptic=True,
                               decay_input=True, max_spikes=5, theta_grad="ratio"),
    "adaptation-current-recurrent": dict(adaptive=True, adaptation="current", recurrent="one"),
    # Rockpool's LIFTorch/LIFJax membrane bias (M6), a parameter: see VARIANT_PARAMS
    # sinabs' ALIF with a threshold-scaled surrogate (evaluated at b0 + adapt_scale b),
    # Rockpool's LIFTorch with per-neuron thresholds: the surrogate at the live
    # threshold theta_t (M10) on (M7), (M8), (M3) and on (M2)-(M4)
    "live-threshold-sinabs": dict(adaptive=True, reset_by_threshold=True, theta_grad="none",
                                  synaptic=True, decay_input=True, surrogate_threshold="live",
                                  surrogate="sinabs.SingleExponential"),
    "live-threshold-rockpool": dict(synaptic=True, decay_input=True, max_spikes=5,
                                    theta_grad="ratio", surrogate_threshold="live",
                                    surrogate="rockpool.StepPWL"),
    # sinabs' min_v_mem: the decayed post-reset membrane clipped at alpha u_min (M11),
    # on the plain cell (every reset), on sinabs' ALIF (M7), (M8), (M3), and with several
    # spikes, norm_input and an all-to-all recurrence (sinabs' LIFRecurrent)
    "min-membrane": dict(u_min=0.125),
    "min-membrane-alif": dict(adaptive=True, reset_by_threshold=True, theta_grad="none",
                              synaptic=True, decay_input=True, u_min=0.125),
    "min-membrane-recurrent": dict(max_spikes=None, norm_input=True, recurrent="all",
                                   u_min=-0.125),
    # sinabs' MembraneReset with MultiSpike / MaxSpike: a zero reset of a count, detached
    # (M12); with the clip and norm_input, and with a synapse and an all-to-all recurrence
    "zero-reset-count": dict(reset="zero", detach_reset=True, max_spikes=None, norm_input=True,
                             u_min=-0.125),
    "zero-reset-count-recurrent": dict(reset="zero", detach_reset=True, max_spikes=3,
                                       synaptic=True, decay_input=True, recurrent="all"),
    "membrane-bias": dict(synaptic=True, recurrent="all"),
    "membrane-bias-rockpool": dict(synaptic=True, decay_input=True, max_spikes=5,
                                   theta_grad="ratio"),
    # Spyx's Bernoulli neurons: the spike drawn with probability phi itself, the
    # backward g phi (M13); a forward, so only the kernels-vs-reference rows (the
    # backward is (A7)-(A10) with phi, checked by the rows above)
    "bernoulli-probability": dict(forward="stochastic", spike_probability="surrogate",
                                  synaptic=True),
    "bernoulli-probability-recurrent": dict(forward="stochastic", spike_probability="surrogate",
                                            norm_input=True, recurrent="all"),
}

# variants that are parameter values, not configuration: {variant: {parameter:
# scale}}; the check problems draw per-neuron values of that scale and check
# the parameter's gradient too (VARIANTS holds the variant's configuration)
VARIANT_PARAMS = {
    "membrane-bias": dict(u_bias=0.3),
    "membrane-bias-rockpool": dict(u_bias=0.3),
}


def variant_params(model):
    """The keyword arguments of ``model``'s parameter values for
    :func:`fd_layer`, :func:`fd_zero_surrogate` and :func:`kernel_vs_reference`
    (``VARIANT_PARAMS``; empty for the others)."""
    return dict(VARIANT_PARAMS.get(model, {}))


def model_config(model, **kw):
    """A LIFConfig for one of ``MODELS`` or ``VARIANTS`` with further fields
    ``kw``."""
    return LIFConfig(**{**{**MODELS, **VARIANTS}[model], **kw})


def _variant_config(model, **kw):
    """:func:`model_config`, or None where the combination does not exist (a
    variant with several spikes and the smooth forward or a zero reset)."""
    try:
        return model_config(model, **kw)
    except ValueError:
        if model in VARIANTS:
            return None
        raise


def _layer_problem(rng, T, B, N, gamma_free, config, u_bias=None):
    I = rng.normal(0.35, 0.5, (T, B, N))
    if config.multi_spike:
        I = I * 3.0              # several spikes per step happen
    if config.norm_input:
        I = I * 4.0              # about the drive of the unscaled cell
    p = dict(alpha=rng.uniform(0.6, 0.95, N), theta=rng.uniform(0.8, 1.2, N),
             gamma=rng.uniform(0.5, 1.5, N) if gamma_free else None,
             u_reset=rng.uniform(-0.3, 0.3, N), u0=rng.normal(0.0, 0.3, (B, N)))
    if config.synaptic:
        I *= 0.4
        p.update(alpha_s=rng.uniform(0.3, 0.8, N), s0=rng.normal(0.0, 0.2, (B, N)))
    if config.adaptive:
        p.update(rho=rng.uniform(0.7, 0.95, N), beta_a=rng.uniform(0.1, 0.5, N),
                 a0=rng.uniform(0.0, 0.5, (B, N)))
    if config.recurrent == "one":
        p["R"] = rng.normal(0.0, 0.3, N)
    elif config.recurrent == "all":
        p["R"] = rng.normal(0.0, 0.3 / np.sqrt(N), (N, N))
    A = rng.normal(size=(T, B, N))
    C = rng.normal(size=(T, B, N))
    if u_bias is not None:          # a membrane bias of this scale, checked too (M6)
        p["u_bias"] = rng.normal(0.0, u_bias, N)
    return I, p, A, C


def _fd_directional(loss, x, d, h=None, usable=None):
    """:func:`lifgrad.gradcheck.directional_derivative` on the ladder of steps
    (or the step ``h``); the value, or None when no step was usable."""
    return directional_derivative(loss, x, d, "ladder" if h is None else h, usable)[0]


def _fd_names(config, gamma_free):
    names = ["I", "alpha", "theta", "u0"]
    if config.reset == "zero":
        names.append("u_reset")          # u_reset enters (A3) only
    if gamma_free and config.reset == "subtract":
        names.append("gamma")            # gamma enters (A2) only
    if config.synaptic:
        names += ["alpha_s", "s0"]
    if config.adaptive:
        names += ["rho", "beta_a", "a0"]
    if config.recurrent is not None:
        names.append("R")
    return names


def _layer_fd(config, seed, T, B, N, gamma_free, h, check_flips, u_bias=None):
    """Shared body of the smooth and zero-surrogate finite-difference checks."""
    rng = np.random.default_rng(seed)
    I, p, A, C = _layer_problem(rng, T, B, N, gamma_free, config, u_bias)
    params = LIFParams(**{k: p[k] for k in ("alpha", "theta", "gamma", "u_reset")},
                       **{k: p[k] for k in ("alpha_s", "rho", "beta_a", "R", "u_bias")
                          if k in p})
    v, tr = lif_forward(I, params, config, u0=p["u0"], s0=p.get("s0"), a0=p.get("a0"))
    g = lif_backward(tr, params, config, dv=A, du=C)
    frozen = tr.v if config.detach_reset else None    # the cell's spikes (M5: not the output)
    names = _fd_names(config, gamma_free) + (["u_bias"] if "u_bias" in p else [])   # (M6)
    base = dict(I=I, **p)
    if config.u_min is not None:        # the clip's level (M11)
        names.append("u_min")
        base["u_min"] = np.float64(config.u_min)
    theta_held = None
    if config.theta_grad == "none":     # (M8): the spike's threshold held at this point
        theta_held = np.broadcast_to(p["theta"], I.shape).astype(I.dtype)
        if config.adaptive_threshold:
            theta_held = theta_held + p["beta_a"] * tr.a

    clip = config.u_min is not None

    def f(*vals):                       # the ground truth: the naive simulation
        out = naive_forward(vals[0], dict(base, **dict(zip(names, vals))), config, frozen,
                            frozen_theta=theta_held, clip_mask=clip)
        # with the clip (M11), where it holds as a third output of no weight:
        # a step that moves it crosses the kink and is not used, as a spike flip
        return (out[1], out[0]) + out[2:]

    held0 = f(*[base[k] for k in names])[2:]

    def vjp(*vals):                     # lifgrad's adjoint at the point
        return (v, tr.u) + held0, lambda ct: tuple(getattr(g, k) for k in names)

    flips = None
    if check_flips or clip:
        flips = (lambda o: o[0]) if not clip else (lambda o: o[2]) if not check_flips \
            else (lambda o: np.concatenate([np.ravel(o[0]), np.ravel(o[2])]))
    res = gradcheck(f, [base[k] for k in names], vjp, names=names,
                    cotangents=(A, C) + ((np.zeros(A.shape),) if clip else ()),
                    eps="ladder" if h is None else h, n_directions=2, tries=1,
                    seed=int(rng.integers(2**31)), spikes=flips, raise_exception=False)
    if res.unchecked:
        return {}, True
    L0 = float(np.sum(A * f(*[base[k] for k in names])[0]) + np.sum(C * tr.u))
    out = {}
    for r in res.rows:
        e = _rel(r.numeric, r.analytic, atol=_fd_floor(L0, r.eps))
        out[r.name] = max(out.get(r.name, 0.0), e)
    return out, False


def fd_layer(config, seed=0, T=12, B=2, N=5, gamma_free=False, h=None, u_bias=None):
    """Smooth-forward adjoint vs finite differences, every parameter (A22).

    ``config`` must have ``forward='smooth'``, amplitude 1 and no clip.  For
    ``detach_reset=True`` the reference function freezes the reset spikes.
    Returns ``{parameter: max relative error over two random directions}``.
    ``u_bias``: the scale of a per-neuron membrane bias (M6), whose gradient is
    checked too (None: no bias).
    """
    if config.forward != "smooth":
        raise ValueError("fd_layer: config.forward must be 'smooth'")
    if config.surrogate.scale != 1.0 or config.surrogate.clip is not None:
        raise ValueError("fd_layer: the surrogate must have scale 1 and no clip to be exact (A22)")
    out, _ = _layer_fd(config, seed, T, B, N, gamma_free, h, check_flips=False, u_bias=u_bias)
    return out


def fd_zero_surrogate(config, seed=0, T=12, B=2, N=5, gamma_free=False, h=None, tries=20,
                      u_bias=None):
    """Hard forward with the zero surrogate vs finite differences of the real
    spiking network (A22).  Steps whose perturbation flips a spike are not
    used; when every step of some direction flips one, another random point is
    tried; raises if ``tries`` points all fail.  Returns
    ``({parameter: max relative error}, seed used)``.  ``u_bias`` as in
    :func:`fd_layer`."""
    # the zero surrogate has no threshold: a live one (M10) is the constant one
    config = config.replace(forward="hard", surrogate=sgs.get("zero"),
                            surrogate_threshold="constant")
    for k in range(tries):
        out, flipped = _layer_fd(config, seed + 1000 * k, T, B, N, gamma_free, h,
                                 check_flips=True, u_bias=u_bias)
        if not flipped:
            return out, seed + 1000 * k
    raise RuntimeError(f"fd_zero_surrogate: every one of {tries} points flipped a spike")


# ---------------------------------------------------------------------------
# lifgrad's layer as f and vjp for lifgrad.gradcheck
# ---------------------------------------------------------------------------

PARAM_NAMES = ("alpha", "theta", "gamma", "u_reset", "alpha_s", "rho", "beta_a", "R", "u_bias")


def layer_functions(config, params, I, mode="smooth", u0=None, s0=None, a0=None):
    """``(f, vjp, args, names)`` of one lifgrad LIF layer at input current ``I``
    for :func:`lifgrad.gradcheck.gradcheck`: the arguments are ``I`` and every parameter the
    configuration reads (``gamma`` when given), the outputs ``(v, u)``.

    mode:  ``"smooth"``: the smooth forward (``forward='smooth'``) and its adjoint;
           ``"frozen"``: the hard forward with every spike held at its value at
           this point (reset, recurrence, adaptation and output), against the
           adjoint with the zero surrogate, its exact gradient;
           ``"hard"``: the hard forward and the configuration's surrogate, for
           ``gradcheck(..., spikes=lambda o: o[0])`` (between flips its finite
           differences are those of the zero surrogate: a configuration with
           ``surrogate="zero"`` is then the exact gradient).
    The forward of ``f`` in the smooth and hard modes is lifgrad's own; the
    frozen one is ``lifgrad.check.naive_forward``, written apart from it.
    ``theta_grad='ratio'`` or ``'none'`` (M4), (M8) are conventions for the
    spike's threshold derivative, not the smooth forward's: there the smooth
    mode's finite differences of the threshold's paths differ by design
    (:func:`fd_layer` holds the spike's threshold for ``'none'``).
    """
    if mode not in ("smooth", "frozen", "hard"):
        raise ValueError(f"mode: expected 'smooth', 'frozen' or 'hard', got {mode!r}")
    config = config.replace(forward="smooth" if mode == "smooth" else "hard")
    if mode == "frozen":
        config = config.replace(surrogate=sgs.get("zero"))
    p = params._asdict() if isinstance(params, LIFParams) else dict(params)
    used = ["alpha", "theta", "u_reset", "u_bias"]
    p.setdefault("u_bias", 0.0)
    if p.get("gamma") is not None:
        used.append("gamma")
    if config.synaptic:
        used.append("alpha_s")
    if config.adaptive:
        used += ["rho", "beta_a"]
    if config.recurrent is not None:
        used.append("R")
    names = ["I"] + used
    fixed = {k: v for k, v in p.items() if k not in used and k in PARAM_NAMES}
    state = {k: v for k, v in dict(u0=u0, s0=s0, a0=a0).items() if v is not None}

    def lp(vals):
        return LIFParams(**fixed, **dict(zip(used, vals)))

    args = [np.asarray(I, np.float64)] + [np.asarray(p[k], np.float64) for k in used]
    frozen = None
    if mode == "frozen":
        _, tr0 = lif_forward(args[0], lp(args[1:]), config, **state)
        frozen = np.asarray(tr0.v, np.float64)

    def f(I, *vals):
        if mode == "frozen":
            pp = {**fixed, **dict(zip(used, vals)), **state}
            u, v = naive_forward(np.asarray(I, np.float64), pp, config, frozen_v=frozen,
                                 freeze_all=True)
            return v, u
        v, tr = lif_forward(I, lp(vals), config, **state)
        return v, tr.u

    def vjp(I, *vals):
        v, tr = lif_forward(I, lp(vals), config, **state)

        def pullback(ct):
            dv, du = ct
            g = lif_backward(tr, lp(vals), config, dv=dv, du=du)
            return (g.I,) + tuple(getattr(g, k) for k in used)
        return (v, tr.u), pullback

    return f, vjp, args, names


# ---------------------------------------------------------------------------
# Closed form, SPEC section 4 and derivations/closed_form.md (C2), (C3)
# ---------------------------------------------------------------------------

def closed_form(x, delta, phi, alpha, gamma, detach):
    """``dL/dw = sum_k x_k sum_{t>=k} delta_t phi_t prod_{j=k}^{t-1} c_j`` with
    ``c_j = alpha - gamma phi_j`` (C2), or ``c_j = alpha`` when detached (C3).
    O(T^2), written from the formula, not from the recursion."""
    T = len(x)
    c = np.full(T, float(alpha)) if detach else float(alpha) - float(gamma) * np.asarray(phi)
    total = 0.0
    for k in range(T):
        inner = 0.0
        prod = 1.0
        for t in range(k, T):
            inner += delta[t] * phi[t] * prod
            prod *= c[t]
        total += x[k] * inner
    return total


def closed_form_check(T=200, detach=False, seed=0, surrogate="sigmoid", backend="cpu"):
    """Adjoint dL/dw of a single neuron vs the closed form; relative error."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, T)
    delta = rng.uniform(0.0, 1.0, T)
    w, alpha, theta = 0.7, 0.9, 1.0
    cfg = LIFConfig(reset="subtract", detach_reset=detach, surrogate=sgs.get(surrogate),
                    backend=backend)
    params = LIFParams(alpha, theta)
    I = (w * x).reshape(T, 1, 1)
    v, tr = lif_forward(I, params, cfg)
    g = lif_backward(tr, params, cfg, dv=delta.reshape(T, 1, 1))
    adjoint = float(np.sum(x * g.I[:, 0, 0]))
    phi = cfg.surrogate.phi(tr.u[:, 0, 0] - theta, tr.v[:, 0, 0])
    closed = closed_form(x, delta, phi, alpha, theta, detach)
    return _rel(adjoint, closed), adjoint, closed


# ---------------------------------------------------------------------------
# Kernels vs reference
# ---------------------------------------------------------------------------

def _kernel_problem(rng, T, B, N, dtype, scale=1.0):
    """Half random, half on an exact binary grid so that u == theta happens
    exactly (strict vs non-strict firing differs there); ``scale`` (a power of
    2) makes several spikes per step happen."""
    I = rng.normal(0.35, 0.6, (T, B, N))
    half = B // 2
    I[:, :half] = rng.integers(0, 5, (T, half, N)) * 0.25
    return (I * scale).astype(dtype)


def kernel_params(rng, N, config, gamma_free=False, u_bias=None):
    """Per-neuron parameters of the kernel comparisons (a scalar's gradient
    would be one heavily cancelling sum): multiples of 1/8, alpha = 0.5 on half
    the neurons, R on a grid of 1/4 (one-to-one) or 1/8 (all-to-all), a
    membrane bias of scale ``u_bias`` rounded to 1/8 (M6; None: 0)."""
    alpha = np.full(N, 0.5)
    alpha[N // 2:] = rng.uniform(0.5, 1.0, N - N // 2)
    R = None
    if config.recurrent == "one":
        R = rng.integers(-2, 3, N) * 0.25
    elif config.recurrent == "all":
        R = rng.integers(-1, 2, (N, N)) * 0.125
    return LIFParams(alpha=alpha, theta=np.ones(N), gamma=np.full(N, 0.75) if gamma_free else None,
                     u_reset=np.full(N, 0.25), alpha_s=np.full(N, 0.5), rho=np.full(N, 0.5),
                     beta_a=np.full(N, 0.25), R=R,
                     u_bias=0.0 if u_bias is None else np.round(rng.normal(0, u_bias, N) * 8) / 8)


def kernel_vs_reference(config, dtype="float64", seed=0, T=16, B=4, N=37, gamma_free=False,
                        backend="cpu", u_bias=None):
    """Max normwise relative difference between ``backend`` and the NumPy
    reference, over u, v (s, a), and every gradient.  Returns ``{quantity: error}``.

    Parameters are multiples of 1/8 on half the batch, so u == theta_t happens
    exactly there (strict vs non-strict firing differs)."""
    rng = np.random.default_rng(seed)
    I = _kernel_problem(rng, T, B, N, dtype, 4.0 if config.multi_spike else 1.0)
    params = kernel_params(rng, N, config, gamma_free, u_bias)
    dv = rng.normal(size=I.shape).astype(dtype)
    du = rng.normal(size=I.shape).astype(dtype)
    u0 = rng.normal(0, 0.3, (B, N)).astype(dtype)
    s0 = rng.normal(0, 0.3, (B, N)).astype(dtype) if config.synaptic else None
    a0 = rng.uniform(0, 0.5, (B, N)).astype(dtype) if config.adaptive else None
    res = {}
    for be in ("reference", backend):
        cfg = config.replace(backend=be)
        draws = np.random.default_rng(seed + 12345)      # same spikes draws for both backends
        v, tr = lif_forward(I, params, cfg, u0=u0, s0=s0, a0=a0, rng=draws)
        g = lif_backward(tr, params, cfg, dv=dv, du=du)
        res[be] = dict(u=tr.u, v=v, **{k: val for k, val in g._asdict().items() if val is not None})
        for k in ("s", "a"):
            if getattr(tr, k) is not None:
                res[be][k] = getattr(tr, k)
        # a static input exercises the (1, B, N) path
        vs, trs = lif_forward(I[0], params, cfg, u0=u0, T=T, rng=draws)
        gs = lif_backward(trs, params, cfg, dv=dv)
        res[be]["v_static"] = vs
        res[be]["I_static"] = gs.I
    ref, ker = res["reference"], res[backend]
    out = {}
    for k in ref:
        want = spike_dtype(config, dtype) if k in ("v", "v_static") else np.dtype(dtype)
        if np.asarray(ker[k]).dtype != want:
            out[k] = math.inf            # storage type not as documented
        else:
            out[k] = _rel_array(ker[k], ref[k])
    return out


# ---------------------------------------------------------------------------
# Networks
# ---------------------------------------------------------------------------

def fd_network(surrogate="sigmoid", reset="subtract", static=False, seed=0, h=None,
               sizes=(6, 7, 5, 3), T=8, B=3, model="lif", learn=("alpha", "theta"), **layer_kw):
    """Smooth-forward network gradients vs central differences for every
    parameter (W, b, R, learned neuron parameters in their parametrisation)
    and the input (A20), (A21), (P1)-(P5).  ``model`` is a key of ``MODELS``."""
    cfg = model_config(model, reset=reset, forward="smooth", surrogate=sgs.get(surrogate),
                       backend="cpu")
    rng = np.random.default_rng(seed)
    layers = [Dense(a, b, cfg, alpha=rng.uniform(0.6, 0.95, b), theta=rng.uniform(0.3, 0.6, b),
                    u_reset=0.1, alpha_s=rng.uniform(0.3, 0.7, b), rho=rng.uniform(0.6, 0.9, b),
                    beta_a=rng.uniform(0.1, 0.4, b), learn=learn, **layer_kw)
              for a, b in zip(sizes[:-1], sizes[1:])]
    net = Sequential(layers, seed=seed, dtype="float64")
    for k in net.params:
        if k.endswith(".W"):
            net.params[k] = net.params[k] * 2.0
        if k.endswith(".R"):
            net.params[k] = net.params[k] + rng.normal(0, 0.2, net.params[k].shape) * (
                net.params[k] != 0 if net.params[k].ndim == 2 else 1)
    x = rng.uniform(0, 1, (B, sizes[0])) if static else rng.uniform(0, 1, (T, B, sizes[0]))
    A = rng.normal(size=(T, B, sizes[-1]))
    C = rng.normal(size=(T, B, sizes[-1]))
    names = list(net.params) + ["x"]

    def f(*vals):
        vv, tt = net.forward(vals[-1], dict(zip(names, vals[:-1])), T=T)
        return vv, tt.layers[-1].trace.u

    def vjp(*vals):
        pp = dict(zip(names, vals[:-1]))
        vv, tt = net.forward(vals[-1], pp, T=T)

        def pullback(ct):
            g = net.backward(tt, dv=ct[0], du=ct[1], params=pp, need_input_grad=True)
            return tuple(g[k] for k in names)
        return (vv, tt.layers[-1].trace.u), pullback

    point = [net.params[k] for k in names[:-1]] + [x]
    res = gradcheck(f, point, vjp, names=names, cotangents=(A, C),
                    eps="ladder" if h is None else h, n_directions=2,
                    seed=int(rng.integers(2**31)), raise_exception=False)
    L0 = float(sum(np.sum(w * o) for w, o in zip((A, C), f(*point))))
    out = {}
    for r in res.rows:
        out[r.name] = max(out.get(r.name, 0.0), _rel(r.numeric, r.analytic,
                                                     atol=_fd_floor(L0, r.eps)))
    return out


# ---------------------------------------------------------------------------
# The suite behind `lifgrad check`
# ---------------------------------------------------------------------------

def _case(model, reset, detach, strict=None, surrogate=None, extra=""):
    parts = [model, f"reset={reset}", f"detach={detach}"]
    if strict is not None:
        parts.append(f"strict={strict}")
    if surrogate is not None:
        parts.append(f"sg={surrogate}")
    if extra:
        parts.append(extra)
    return " ".join(parts)


MODEL_SURROGATES = ("sigmoid", "atan", "gaussian")      # families for non-plain models
# the presets with a threshold parameter, for the live-threshold variants (M10)
LIVE_SURROGATES = ("sinabs.SingleExponential", "sinabs.PeriodicExponential", "sinabs.Heaviside",
                   "rockpool.StepPWL", "rockpool.PeriodicExponential")


def run_suite(quick=False, progress=None, models=None):
    """Run every check; return a list of :class:`CheckResult`.

    The plain LIF cell is checked with every surrogate, the other models
    (``MODELS``) with ``MODEL_SURROGATES``.  ``quick`` trims surrogates, models
    and sizes (used by ``lifgrad demo``)."""
    rows = []
    resets = ("subtract", "zero", "none")
    models = list(MODELS) + list(VARIANTS) if models is None else list(models)
    if quick:
        models = models[:3] + [m for m in models if m in VARIANTS][:1]
    all_fams = tuple(f.name for f in sgs.FAMILIES)

    def fams_for(model, smooth):
        if VARIANTS.get(model, {}).get("surrogate_threshold") == "live":
            fams = () if smooth else LIVE_SURROGATES    # presets with a threshold (M10)
        elif model == "lif":
            fams = SMOOTH_FAMILIES if smooth else all_fams
        else:
            fams = MODEL_SURROGATES + (() if smooth else ("spike_operator",))
        return fams[:2] if quick else fams

    def note(msg):
        if progress:
            progress(msg)

    seed = itertools.count(1)
    # 1. smooth forward vs finite differences
    note("finite differences, smooth forward")
    for model in models:
        for reset, detach, fam in itertools.product(resets, (False, True), fams_for(model, True)):
            for gamma_free in ((False, True) if reset == "subtract" else (False,)):
                cfg = _variant_config(model, reset=reset, detach_reset=detach, forward="smooth",
                                      surrogate=sgs.get(fam))
                if cfg is None:
                    continue
                errs = fd_layer(cfg, seed=next(seed), gamma_free=gamma_free,
                                **variant_params(model))
                case = _case(model, reset, detach, surrogate=fam,
                             extra="gamma=free" if gamma_free else "")
                rows += [CheckResult("fd-smooth", case, k, e, TOL_FD) for k, e in errs.items()]
    # 2. zero surrogate on the spiking network
    note("finite differences, spiking network with the zero surrogate")
    for model in models:
        for reset, detach, strict in itertools.product(resets, (False, True), (False, True)):
            for gamma_free in ((False, True) if reset == "subtract" else (False,)):
                cfg = _variant_config(model, reset=reset, detach_reset=detach, strict=strict)
                if cfg is None or cfg.forward == "stochastic":    # (M13): kernels only
                    continue
                errs, _ = fd_zero_surrogate(cfg, seed=next(seed), gamma_free=gamma_free,
                                            **variant_params(model))
                case = _case(model, reset, detach, strict, extra="gamma=free" if gamma_free else "")
                rows += [CheckResult("fd-zero-surrogate", case, k, e, TOL_FD)
                         for k, e in errs.items()]
    # 3. closed form
    note("closed form, single neuron")
    for T, detach in itertools.product((1, 10, 200) if not quick else (50,), (False, True)):
        err, _, _ = closed_form_check(T=T, detach=detach, seed=T)
        rows.append(CheckResult("closed-form", f"T={T} detach={detach}", "dL/dw", err, TOL_CLOSED))
    # 4. kernels vs reference
    note("cpu kernels vs NumPy reference")
    for dtype, model in itertools.product(("float64", "float32"), models):
        for reset, detach, strict, fam in itertools.product(resets, (False, True), (False, True),
                                                            fams_for(model, False)):
            fwds = ("hard", "smooth") if sgs.get(fam).has_primitive else ("hard",)
            if VARIANTS.get(model, {}).get("spike_probability") == "surrogate":
                fwds = ("stochastic",)            # the probability phi itself (M13)
            for fwd in fwds:
                if fwd == "smooth" and strict:
                    continue                     # strict only matters for the hard forward
                cfg = _variant_config(model, reset=reset, detach_reset=detach, strict=strict,
                                      forward=fwd, surrogate=sgs.get(fam))
                if cfg is None:
                    continue
                errs = kernel_vs_reference(cfg, dtype=dtype, gamma_free=(reset == "subtract"),
                                           T=8 if quick else 16, **variant_params(model))
                worst = max(errs, key=errs.get)
                rows.append(CheckResult(f"kernel-{dtype}",
                                        _case(model, reset, detach, strict, fam, f"fwd={fwd}"),
                                        f"max over {len(errs)} ({worst})", errs[worst],
                                        TOL_KERNEL[dtype]))
    # 5. networks (every model, the static path, the parametrisations)
    note("finite differences, networks")
    for model, reset in itertools.product([m for m in models if m in MODELS], resets):
        for static in (False, True):
            errs = fd_network(reset=reset, static=static, model=model)
            rows += [CheckResult("fd-network", f"{model} reset={reset} static={static}", k, e,
                                 TOL_FD) for k, e in errs.items()]
    if not quick:
        for label, kw in PARAMETRISATION_CASES.items():
            errs = fd_network(**kw)
            rows += [CheckResult("fd-network", f"parametrisation {label}", k, e, TOL_FD)
                     for k, e in errs.items()]
    return rows


PARAMETRISATION_CASES = {
    "alpha=sigmoid(w)": dict(alpha_param="sigmoid"),
    "alpha=exp(-dt/tau)": dict(alpha_param="tau", dt=0.5),
    "alpha clamped": dict(alpha_param="clamp"),
    "theta clamped": dict(theta_range=(0.35, 0.55)),
    "synaptic tau_syn, tau_mem": dict(model="synaptic", alpha_param="tau",
                                      alpha_s_param="tau", learn=("alpha", "alpha_s", "theta")),
    "adaptive rho, beta_a": dict(model="adaptive", learn=("alpha", "theta", "rho", "beta_a")),
    "recurrent, no autapses, own bias": dict(model="recurrent-all", autapses=False,
                                             rec_bias=True),
}


def format_table(rows, only_failures=False):
    """A plain-text table of check rows, one line each, and a summary line."""
    lines = [f"{'check':<18} {'case':<52} {'quantity':<22} {'max rel err':>11} {'tol':>7}  ok"]
    for r in rows:
        if only_failures and r.passed:
            continue
        lines.append(f"{r.check:<18} {r.case:<52} {r.quantity:<22} {r.error:>11.2e} "
                     f"{r.tol:>7.0e}  {'PASS' if r.passed else 'FAIL'}")
    n_fail = sum(not r.passed for r in rows)
    lines.append(f"{len(rows)} rows, {len(rows) - n_fail} passed, {n_fail} failed")
    return "\n".join(lines)
