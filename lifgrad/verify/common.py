"""Shared machinery of the verification adapters.

An adapter (``lifgrad.verify.snntorch``, ``.spikingjelly``, ``.norse``) knows
one framework: how to build and run its neurons, and how to map a neuron
module onto lifgrad's canonical cell (a :class:`LayerMap`); what an adapter
provides is :mod:`lifgrad.verify.protocol`.  Everything else is here, on
NumPy arrays: running lifgrad on the same input in float64, injecting the
same loss, and comparing spikes and every gradient with the framework's
(:func:`check_layer`).

The loss is ``L = sum(A * spk) + sum(Bm * mem)`` with random ``A``, ``Bm``
(rounded to float32 values, so that frameworks that keep spikes in float32
receive exactly the same upstream gradient), where ``spk`` and ``mem`` are
what the framework returns (its membrane may be pre- or post-reset; the
:class:`LayerMap` says which and lifgrad maps the loss accordingly).

Verdicts (:class:`CaseReport.status`).  Every compared quantity gets one of

* ``agrees``: ``max|a - b| <= TOL * max(|a|, |b|)`` (float64 rounding), or the
  absolute difference is below the rounding of the terms that form it,
  ``ATOL_ULPS`` ulps of the loss weights' size (a surrogate derivative written
  ``(1 - s) s a`` loses all relative precision where ``s`` rounds to 1:
  saturated neurons give gradients of 1e-14 .. 1e-68 that differ in every
  digit and mean nothing);
* ``agrees within a precision limit``: the framework computes part of the
  gradient in lower precision for a documented reason (a :class:`Limit` of the
  layer's mapping, e.g. snnTorch's float32 spike) and the error is within
  that limit;
* ``disagrees``: anything else, and always a NaN or an infinity; the row
  says where (the index of the largest difference and both values).

A case whose model leaves the domain lifgrad's cell can express (found while
running it, e.g. snnTorch's immediate reset subtracting twice) *does not
apply*: its numbers are shown but blame no one.  Each report carries the
coverage of every layer (firing rate, how often the surrogate window was
active, resets) and warns when the check exercised little.

Torch is imported lazily: the core of lifgrad never imports it.
"""
from __future__ import annotations

import contextlib
import logging
from typing import Callable, NamedTuple

import numpy as np

from ..config import LIFConfig, LIFParams
from ..functional import lif_backward, lif_forward
from ..reference import fired
from ..gradcheck import normwise_rel  # noqa: F401  (one normwise error for check, gradcheck, verify)

TOL = 1e-10                 # relative agreement in float64
ATOL_ULPS = 4096            # absolute floor, in ulps of the loss weights' size
F32_TOL = 1e-5              # a float32 precision limit (float32 eps 1.2e-7, sums of ~100 terms)

AGREES = "agrees"
LIMITED = "agrees within a precision limit"
DISAGREES = "disagrees"
NOT_APPLICABLE = "does not apply"
CANNOT_RUN = "cannot run"


@contextlib.contextmanager
def quiet_framework():
    """Keep the frameworks' import-time and first-run log lines (torch's
    "Triton not available" when SpikingJelly registers its kernels) out of
    lifgrad's output; the loggers' levels are restored afterwards."""
    names = ("torch._library.triton", "torch._native.triton_utils")
    saved = [(logging.getLogger(n), logging.getLogger(n).level) for n in names]
    for lg, _ in saved:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, lvl in saved:
            lg.setLevel(lvl)


def require_torch():
    try:
        import torch
    except ImportError as e:  # pragma: no cover - exercised without torch only
        raise ImportError("lifgrad.verify needs PyTorch and the peer frameworks: "
                          "`make peers` (or pip install 'lifgrad[verify]' and the "
                          "frameworks with --no-deps, see the README)") from e
    return torch


class LayerMap(NamedTuple):
    """How one peer neuron maps onto lifgrad's cell.

    lifgrad's input current is ``I_lg[t] = gain * I_peer[t] + bias[t]`` (``bias``
    a scalar, ``(N,)`` or ``(T, B, N)`` array, e.g. a leak term or the
    synaptic-bias trick, or a function of ``I_peer``'s shape returning one, for
    a bias that depends on the step; :func:`mapped_input`); ``u0``/``s0`` are lifgrad's initial states;
    ``post_reset`` says whether the framework returns the membrane after the
    reset (``u - theta v`` for subtract, ``(1 - v) u + v u_reset`` for zero,
    see :func:`reported_membrane`) rather than the pre-reset ``u``; ``spike_scale`` is a graded-spike factor.
    ``param_grads(grads, I_peer, trace)`` turns lifgrad's :class:`LIFGrads` into
    the framework's parameter gradients, ``{name: array}`` shaped like the
    framework's parameters (names as in ``module.named_parameters()``).
    ``notes`` lists where the framework departs from its documentation or
    from lifgrad's default conventions; ``limits`` the :class:`Limit` s of
    its precision that apply to this layer; ``hidden_limits`` those that apply
    when the layer's spikes feed a later layer (the gradient entering them
    then comes from that layer); ``domain(trace, v)`` returns why a run left
    the domain the mapping holds on ("" when it did not).  ``input_weights``
    ``(name, W)``: the neuron holds its own input weights (Norse's recurrent
    cells): ``I_peer`` is then ``x W^T`` for the neuron's input ``x``, and the
    report names the gradient of ``W`` ``grad:<name>``.  ``reset_value``: what a
    subtract reset removes per spike from the reported post-reset membrane, a
    constant (sinabs' ``MembraneSubtract(subtract_value=...)``); None: theta.
    ``mem_offset``: a constant the framework adds to every neuron's reported
    post-reset membrane (sinabs' ``MembraneReset(reset_value=r)``).
    ``input_sum``: the framework's input has ``input_sum`` channels per neuron
    (neuron-major, channel ``n * input_sum + k``) whose currents add up
    (Rockpool's synapses sharing a time constant): lifgrad's ``I_lg`` sums
    them, and ``dL/dI_peer`` repeats ``dL/dI_lg`` over them (:func:`mapped_input`,
    :func:`input_grad`).  ``pre``: a linear filter of the framework's input
    before the cell (Rockpool's synapses with different time constants), an
    object with ``forward(I) -> I_lg`` and its transpose ``vjp(dL/dI_lg) ->
    dL/dI``.  ``draws``: for a stochastic forward, a function of lifgrad's
    input shape ``(T, B, N)`` giving the uniform numbers the framework's
    Bernoulli spikes were drawn with (lifgrad's ``rng``, (M13)).
    """

    config: LIFConfig
    params: LIFParams
    gain: object = 1.0
    bias: object = 0.0
    u0: object = None
    s0: object = None
    post_reset: bool = False
    spike_scale: float = 1.0
    param_grads: Callable | None = None
    notes: tuple = ()
    limits: tuple = ()
    domain: Callable | None = None
    hidden_limits: tuple = ()
    input_weights: tuple | None = None
    reset_value: object = None
    mem_offset: float = 0.0
    input_sum: int = 1
    pre: object = None
    draws: Callable | None = None


class Limit(NamedTuple):
    """A documented precision limit of a framework: gradients may differ from
    the exact ones by up to ``tol`` (relative) for ``reason``."""

    name: str
    tol: float
    reason: str


class Row(NamedTuple):
    """One compared quantity: its largest absolute and relative difference,
    its status, where the largest difference is, and the limit that applied."""

    quantity: str
    max_abs: float
    max_rel: float
    status: str = AGREES
    where: str = ""
    limit: str = ""


class LayerCoverage(NamedTuple):
    """What a check exercised in one layer: the firing rate (spikes per neuron
    and step), the fraction of (step, sample, neuron) where the surrogate was
    at least 1% of its peak, and the number of spikes followed by another
    step (resets whose effect the gradient carries)."""

    layer: str
    rate: float
    window: float
    resets: int

    def warning(self):
        if self.rate == 0.0:
            return (f"{self.layer}: no neuron fired, so the reset and the surrogate's peak were "
                    f"not exercised (the check tested little); scale the input up")
        if self.rate == 1.0:
            return (f"{self.layer}: every neuron fired at every step (saturated; the check "
                    f"tested little); scale the input down")
        if self.window < 0.01:
            return (f"{self.layer}: the surrogate was active (>= 1% of its peak) at only "
                    f"{100 * self.window:.2g}% of the steps; the gradients carry little of it")
        return ""


def _fmt(x):
    return f"{x:.3g}" if isinstance(x, float) else str(x)


class CaseReport(NamedTuple):
    framework: str
    neuron: str
    variant: str
    surrogate: str
    spike_mismatches: int
    rows: list
    notes: tuple = ()
    coverage: tuple = ()
    out_of_domain: str = ""
    spike_where: str = ""
    profiles: tuple = ()     # ((label, (T,) error at each step), ...): error_over_time

    @property
    def worst(self) -> float:
        """Largest relative difference of any quantity; NaN if any is NaN."""
        vals = [r.max_rel for r in self.rows]
        if any(np.isnan(v) for v in vals):
            return float("nan")
        return max(vals, default=0.0)

    @property
    def status(self) -> str:
        if self.out_of_domain:
            return NOT_APPLICABLE
        if self.spike_mismatches or any(r.status == DISAGREES for r in self.rows):
            return DISAGREES
        if any(r.status == LIMITED for r in self.rows):
            return LIMITED
        return AGREES

    @property
    def passed(self) -> bool:
        """The gradients agree (exactly, or within a documented precision limit)."""
        return self.status in (AGREES, LIMITED)

    @property
    def warnings(self) -> tuple:
        return tuple(w for w in (c.warning() for c in self.coverage) if w)

    @property
    def failing(self) -> list:
        return [r for r in self.rows if r.status == DISAGREES]


def _index(shape, flat):
    idx = np.unravel_index(flat, shape) if shape else ()
    return "[" + ", ".join(str(int(i)) for i in idx) + "]"


def judge(quantity, ours, peer, atol=0.0, limits=(), layout=None):
    """The :class:`Row` of one quantity: lifgrad's value ``ours`` against the
    framework's ``peer``; ``atol`` the absolute floor, ``limits`` the
    :class:`Limit` s that may apply; ``layout`` names the axes in ``where``
    (e.g. ``("t", "b", "n")``)."""
    a = np.asarray(ours, np.float64)
    b = np.asarray(peer, np.float64)
    if a.shape != b.shape:
        return Row(quantity, float("inf"), float("inf"), DISAGREES,
                   f"shape {a.shape} (lifgrad) vs {b.shape} (framework)")
    ab, rel = normwise_rel(a, b)

    def where(flat):
        idx = np.unravel_index(flat, a.shape) if a.shape else ()
        if layout and len(layout) == len(idx):
            pos = ", ".join(f"{n}={int(i)}" for n, i in zip(layout, idx))
        else:
            pos = _index(a.shape, flat)
        return f"at {pos}: framework {b.flat[flat]:.17g}, lifgrad {a.flat[flat]:.17g}"

    if np.isnan(rel):
        bad = np.flatnonzero(np.isnan(a) | np.isnan(b))[0]
        return Row(quantity, ab, rel, DISAGREES, "NaN " + where(bad))
    if np.isinf(rel):
        bad = np.flatnonzero(~np.isfinite(a) | ~np.isfinite(b) | (a != b))[0]
        return Row(quantity, ab, rel, DISAGREES, where(bad))
    if ab == 0.0 or rel <= TOL or ab <= atol:
        return Row(quantity, ab, rel, AGREES)
    flat = int(np.argmax(np.abs(a - b)))
    for lim in limits:
        if rel <= lim.tol:
            return Row(quantity, ab, rel, LIMITED, where(flat), lim.name)
    return Row(quantity, ab, rel, DISAGREES, where(flat))


def error_over_time(ours, peer):
    """The error of a ``(T, ...)`` quantity at each time step, ``(T,)``:
    ``max_{b,n} |a_t - b_t|`` over the largest magnitude of either array at
    any step (the normwise error of :func:`judge`, resolved in time, so the
    largest entry equals the quantity's relative error).  NaN at a step with
    a NaN or an infinity in either array; zeros when both are exactly zero."""
    a = np.asarray(ours, np.float64)
    b = np.asarray(peer, np.float64)
    if a.shape != b.shape or a.ndim == 0:
        raise ValueError(f"error_over_time: expected two arrays of one shape (T, ...), got "
                         f"{a.shape} and {b.shape}")
    T = a.shape[0]
    a2, b2 = a.reshape(T, -1), b.reshape(T, -1)
    bad = ~(np.isfinite(a2) & np.isfinite(b2)) & (a2 != b2)
    with np.errstate(invalid="ignore"):
        diff = np.where(bad, 0.0, np.abs(a2 - b2)).max(axis=1) if a2.shape[1] else np.zeros(T)
    ok = np.isfinite(a2) & np.isfinite(b2)
    den = max(float(np.max(np.abs(a2[ok]), initial=0.0)), float(np.max(np.abs(b2[ok]),
                                                                         initial=0.0)))
    err = diff / den if den > 0 else np.zeros(T)
    err[bad.any(axis=1)] = np.nan
    return err


def abs_floor(*loss_weights):
    """The absolute floor of a check: ``ATOL_ULPS`` ulps (float64) of the
    largest loss weight (the size of the terms every gradient is made of)."""
    size = sum(float(np.max(np.abs(w))) for w in loss_weights if np.size(w))
    return ATOL_ULPS * float(np.finfo(np.float64).eps) * max(size, 1.0)


def coverage(layer, cfg, params, trace, spiking=True):
    """:class:`LayerCoverage` of one lifgrad layer run (``trace`` its Trace);
    a layer that emits no spikes (``spiking=False``: a readout, whose map has
    ``spike_scale = 0``) has no firing rate or window (NaN)."""
    if not spiking:
        return LayerCoverage(layer, float("nan"), float("nan"), 0)
    u, v = np.asarray(trace.u, np.float64), np.asarray(trace.v, np.float64)
    N = u.shape[-1]
    P = params.packed(N, np.float64, cfg)
    theta = P[1]
    sg = cfg.surrogate
    try:
        grid = np.linspace(-20.0, 20.0, 4001)
        phi_grid = sg.phi(grid)
        peak = float(np.max(phi_grid))
        act = sg.phi(u - theta, v)
        window = float(np.mean(act >= 0.01 * peak)) if peak > 0 else 0.0
    except (ValueError, TypeError):       # pragma: no cover - a family without a NumPy form
        window = float("nan")
    resets = int(np.sum(v[:-1] != 0)) if cfg.reset != "none" else 0
    return LayerCoverage(layer, float(np.mean(v != 0)) if v.size else 0.0, window, resets)


def problem(seed, T, B, N, mean=0.35, std=0.6):
    """Input current and loss weights of a check, float64; A, Bm float32-exact."""
    rng = np.random.default_rng(seed)
    I = rng.normal(mean, std, (T, B, N))
    A = rng.normal(size=(T, B, N)).astype(np.float32).astype(np.float64)
    Bm = rng.normal(size=(T, B, N)).astype(np.float32).astype(np.float64)
    return rng, I, A, Bm


def reported_membrane(m: LayerMap, cfg, u, v, A, Bm):
    """The membrane the framework reports, and the loss mapped onto lifgrad's
    ``(du, dv)`` for ``L = sum(A spk) + sum(Bm mem)``.

    A post-reset membrane is ``u - theta v`` (subtract: the framework removes
    its threshold at once; the decay of that removal is what makes lifgrad's
    ``gamma = alpha theta``) or ``(1 - h) u + h u_reset`` (zero; ``h = v``, or
    ``min(v, 1)`` for a count, (M12)).  With
    ``detach_reset`` the spike inside that expression is detached too.  With
    ``cfg.u_min`` (M11) the post-reset membrane is recorded clipped,
    ``max(w, u_min)``, its derivative 0 where clipped (strictly: ``w > u_min``
    passes, as torch's relu'(0) = 0), the reset none included; then shifted
    by ``m.mem_offset`` (the clip acts in lifgrad's coordinates)."""
    clip = m.post_reset and cfg.u_min is not None
    if not m.post_reset or (cfg.reset == "none" and not clip):
        return u, Bm, A * m.spike_scale
    P = m.params.packed(u.shape[-1], np.float64, cfg)
    keep = 0.0 if cfg.detach_reset else 1.0
    if cfg.reset == "none":
        w, du, dv = u, Bm, 0.0 * Bm
    elif cfg.reset == "subtract":
        theta = P[1] if m.reset_value is None else m.reset_value
        w, du, dv = u - theta * v, Bm, -keep * theta * Bm
    else:
        ur, h = P[3], _fired(cfg, v)
        w, du, dv = (1 - h) * u + h * ur, Bm * (1 - h), keep * Bm * (ur - u)
    if clip:                                                              # (M11)
        k = w > cfg.u_min
        w, du, dv = np.where(k, w, cfg.u_min), du * k, dv * k
    return w + m.mem_offset, du, A * m.spike_scale + dv


def clipped_membrane_mask(m: LayerMap, cfg, u, v):
    """1 where the recorded post-reset membrane is not clipped (M11), else 0
    (1 without the clip)."""
    if not (m.post_reset and cfg.u_min is not None):
        return 1.0
    if cfg.reset == "none":
        return (np.asarray(u) > cfg.u_min).astype(np.float64)
    P = m.params.packed(u.shape[-1], np.float64, cfg)
    if cfg.reset == "subtract":
        theta = P[1] if m.reset_value is None else m.reset_value
        return (u - theta * v > cfg.u_min).astype(np.float64)
    h = _fired(cfg, v)
    return ((1 - h) * u + h * P[3] > cfg.u_min).astype(np.float64)


def _fired(cfg, v):
    """What a zero reset reads: ``v``, or ``min(v, 1)`` for a count (M12)."""
    return fired(np.asarray(v, np.float64), 1 if cfg.max_spikes == 1 else 0)


def membrane_param_terms(m: LayerMap, cfg, g, v, Bm, u=None):
    """Add to lifgrad's gradients what a post-reset membrane in the loss adds
    directly: ``d(u - theta v)/dtheta = -v`` (subtract) and
    ``d((1 - v) u + v u_reset)/du_reset = v`` (zero), summed like the parameter;
    with the clip (M11), ``d max(w, u_min)/du_min = 1`` where it clips."""
    if not m.post_reset:
        return g
    if cfg.u_min is not None and g.u_min is not None:
        clipped = 1.0 - clipped_membrane_mask(m, cfg, u, v)
        g = g._replace(u_min=g.u_min + np.sum(Bm * clipped))
    if cfg.reset == "none":
        return g
    h = v if cfg.reset == "subtract" else _fired(cfg, v)                 # (M12)
    term = np.sum(Bm * h * clipped_membrane_mask(m, cfg, u, v), axis=(0, 1))     # (M11)
    if cfg.reset == "subtract" and m.reset_value is not None:
        return g                     # a constant removed, not theta
    if cfg.reset == "subtract":
        extra = -term
        return g._replace(theta=g.theta + (extra.sum() if np.ndim(g.theta) == 0 else extra))
    return g._replace(u_reset=g.u_reset + (term.sum() if np.ndim(g.u_reset) == 0 else term))


def mapped_input(m: LayerMap, I):
    """lifgrad's input current ``gain * I + bias`` of the framework's ``I``
    ``(T, B, N)`` (``(T, B, N * input_sum)`` summed per neuron first; ``bias``
    called with the summed shape when it is a function)."""
    J = m.gain * np.asarray(I)
    if m.pre is not None:
        J = m.pre.forward(J)
    elif m.input_sum != 1:
        J = J.reshape(J.shape[:-1] + (-1, m.input_sum)).sum(-1)
    b = m.bias(np.shape(J)) if callable(m.bias) else m.bias
    return J + b


def input_grad(m: LayerMap, gI):
    """``dL/dI_peer`` from lifgrad's ``dL/dI_lg``: times ``gain``, repeated over
    the ``input_sum`` channels of each neuron."""
    gI = np.asarray(gI)
    if m.pre is not None:
        gI = m.pre.vjp(gI)
    elif m.input_sum != 1:
        gI = np.repeat(gI, m.input_sum, axis=-1)
    return m.gain * gI


def lifgrad_side(m: LayerMap, I, A, Bm):
    """Run lifgrad on the mapped layer with the mapped loss.

    Returns ``(spikes, membrane as the framework reports it, dL/dI_peer, grads, trace)``."""
    I_lg = mapped_input(m, I)
    cfg = m.config.replace(dtype="float64", backend="cpu")
    rng = None if m.draws is None else m.draws(np.shape(I_lg))
    v, tr = lif_forward(I_lg, m.params, cfg, u0=m.u0, s0=m.s0, rng=rng)
    mem, du, dv = reported_membrane(m, cfg, tr.u, v, A, Bm)
    g = membrane_param_terms(m, cfg, lif_backward(tr, m.params, cfg, dv=dv, du=du), v, Bm,
                             tr.u)
    dI = input_grad(m, g.I)
    return v * m.spike_scale, mem, dI, g, tr


def spike_report(peer_spikes, our_spikes):
    """``(number of differing spikes, where the first one is)``."""
    p, o = np.asarray(peer_spikes), np.asarray(our_spikes)
    if p.shape != o.shape:
        return int(max(p.size, o.size)), f"shape {p.shape} (framework) vs {o.shape} (lifgrad)"
    diff = p != o
    n = int(np.sum(diff))
    if not n:
        return 0, ""
    first = int(np.flatnonzero(diff)[0])
    idx = np.unravel_index(first, p.shape)
    pos = (", ".join(f"{k}={int(i)}" for k, i in zip("tbn", idx)) if p.ndim == 3
           else _index(p.shape, first))
    return n, f"first at {pos}: framework {p.flat[first]:g}, lifgrad {o.flat[first]:g}"


def compare(framework, neuron, variant, surrogate, peer, ours, notes=(), limits=(), atol=0.0,
            coverage=(), out_of_domain="", profiles=()):
    """Build a :class:`CaseReport` from ``peer`` and ``ours``: dicts with keys
    ``spikes``, ``mem``, ``grad:<name>``... (numpy arrays).  A quantity the
    framework has and lifgrad does not is a disagreement.  The report's
    ``profiles`` hold the error over time (:func:`error_over_time`) of
    ``mem`` and ``grad:input`` when they are ``(T, B, N)``, after the
    caller's ``profiles`` (e.g. every layer's ``dL/d(input)`` of a model)."""
    mism, swhere = spike_report(peer["spikes"], ours["spikes"])
    profiles = list(profiles)
    rows = []
    for k in peer:
        if k == "spikes":
            continue
        if k not in ours:
            rows.append(Row(k, float("inf"), float("inf"), DISAGREES, "lifgrad has no value"))
            continue
        shape = np.shape(peer[k])
        layout = ("t", "b", "n") if len(shape) == 3 and k in ("mem", "grad:input") else None
        rows.append(judge(k, ours[k], peer[k], atol, limits, layout))
        if layout and np.shape(ours[k]) == shape:
            profiles.append((k, error_over_time(ours[k], peer[k])))
    return CaseReport(framework, neuron, variant, surrogate, mism, rows, tuple(notes),
                      tuple(coverage), out_of_domain, swhere, tuple(profiles))


def check_layer(label, peer, m: LayerMap, I, A, Bm):
    """The whole comparison for one neuron layer, framework-neutral.

    ``label``: the report's ``(framework, neuron, variant, surrogate)``;
    ``peer``: the framework's side, NumPy ``{"spikes", "mem", "grad:input",
    "grad:<parameter>"...}`` for the input ``I`` and the loss
    ``sum A spk + sum Bm mem`` (an adapter's ``peer_gradients``).  lifgrad
    runs the mapped layer on the same input and loss; a neuron with its own
    input weights (``m.input_weights``) runs on ``I W^T``, and ``dL/dI``,
    ``dL/dW`` are formed here."""
    W = m.input_weights
    Y = I if W is None else I @ W[1].T
    v, mem_lg, dY, g, tr = lifgrad_side(m, Y, A, Bm)
    ours = {"spikes": v, "mem": mem_lg, "grad:input": dY if W is None else dY @ W[1]}
    if W is not None:
        ours[f"grad:{W[0]}"] = np.einsum("tbi,tbk->ik", dY, I)
    if m.param_grads is not None:
        for name, val in m.param_grads(g, Y, tr).items():
            ours[f"grad:{name}"] = np.asarray(val, np.float64).reshape(
                peer.get(f"grad:{name}", np.asarray(val)).shape)
    cfg = m.config.replace(dtype="float64", backend="cpu")
    cov = (coverage(label[1], cfg, m.params, tr, m.spike_scale != 0),)
    ood = m.domain(tr, tr.v) if m.domain is not None else ""
    return compare(*label, peer, ours, m.notes, m.limits, abs_floor(A, Bm), cov, ood)


SHORT = {AGREES: "agrees", LIMITED: "agrees*", DISAGREES: "DISAGREES",
         NOT_APPLICABLE: "n/a", CANNOT_RUN: "cannot run"}


def detail_items(reports, code=str):
    """What a report lists under its table, case by case: ``(case name, serious,
    text)`` for a case that does not apply, differing spikes, a quantity that
    disagrees (serious) or is precision-limited, and a warning; ``code``
    formats a quantity's name (plain text, or backticks for markdown)."""
    for r in reports:
        name = f"{r.framework} {r.neuron} {r.variant} {r.surrogate}"
        if r.out_of_domain:
            yield name, True, f"does not apply: {r.out_of_domain}"
        if r.spike_mismatches:
            yield name, True, f"{r.spike_mismatches} spikes differ, {r.spike_where}"
        for q in r.rows:
            if q.status == DISAGREES:
                yield name, True, (f"{code(q.quantity)} disagrees, relative {q.max_rel:.2e} "
                                   f"(absolute {q.max_abs:.2e}) {q.where}")
            elif q.status == LIMITED:
                yield name, False, (f"{code(q.quantity)} within the limit '{q.limit}', "
                                    f"relative {q.max_rel:.2e}")
        for w in r.warnings:
            yield name, False, f"warning: {w}"


def format_reports(reports, details=True):
    """A table (framework, neuron, variant, surrogate, spike mismatches, worst
    relative difference, firing rate, status), its columns as wide as their
    longest entry; then, with ``details``, every quantity that disagrees or
    is precision-limited, cases that do not apply, coverage warnings, and a
    legend."""
    head = ("framework", "neuron", "variant", "surrogate", "spikes", "worst rel", "rate", "status")
    body = []
    for r in reports:
        rate = (", ".join(f"{c.rate:.2f}" for c in r.coverage) if r.coverage else "-")
        body.append((r.framework, r.neuron, r.variant, r.surrogate, str(r.spike_mismatches),
                     f"{r.worst:.1e}", rate, SHORT.get(r.status, r.status)))
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h)
              for i, h in enumerate(head)]
    right = {4, 5}

    def line(cells):
        return "  ".join((c.rjust(w) if i in right else c.ljust(w))
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    lines = [line(head)] + [line(b) for b in body]
    counts = {}
    for r in reports:
        counts[r.status] = counts.get(r.status, 0) + 1
    summary = ", ".join(f"{n} {st}" for st, n in counts.items())
    lines.append(f"{len(reports)} cases: {summary}")
    if not details:
        return "\n".join(lines)
    extra = [f"  {name}: {text}" for name, _, text in detail_items(reports)]
    if extra:
        lines.append("")
        lines.extend(extra)
    lines.append("")
    lines.append(f"agrees: every gradient within {TOL:g} relative (float64) or below the "
                 f"rounding of its terms ({ATOL_ULPS} ulps of the loss weights); agrees*: "
                 f"within a documented precision limit of the framework (listed above); n/a: "
                 f"the model left the domain lifgrad's cell expresses; spikes: spikes that "
                 f"differ (must be 0); rate: firing rate per layer; [mem=v]/[mem=h]: the "
                 f"loss reads the post-reset (v) or pre-reset (h) membrane")
    return "\n".join(lines)
