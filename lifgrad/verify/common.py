"""Shared machinery of the verification adapters.

An adapter (``lifgrad.verify.snntorch``, ``.spikingjelly``, ``.norse``) knows
one framework: how to build and run its neurons, and how to map a neuron
module onto lifgrad's canonical cell (a :class:`LayerMap`).  Everything else
is here: running the same input through both in float64, injecting the same
loss, and comparing spikes and every gradient (:func:`check_layer`).

The loss is ``L = sum(A * spk) + sum(Bm * mem)`` with random ``A``, ``Bm``
(rounded to float32 values, so that frameworks that keep spikes in float32
receive exactly the same upstream gradient), where ``spk`` and ``mem`` are
what the framework returns (its membrane may be pre- or post-reset; the
:class:`LayerMap` says which and lifgrad maps the loss accordingly).

Torch is imported lazily: the core of lifgrad never imports it.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from ..config import LIFConfig, LIFParams
from ..functional import lif_backward, lif_forward

TOL = 1e-10


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
    synaptic-bias trick); ``u0``/``s0`` are lifgrad's initial states;
    ``post_reset`` says whether the framework returns the membrane after the
    reset (``u - theta v`` for subtract, ``(1 - v) u + v u_reset`` for zero,
    see :func:`reported_membrane`) rather than the pre-reset ``u``; ``spike_scale`` is a graded-spike factor.
    ``param_grads(grads, I_peer, trace)`` turns lifgrad's :class:`LIFGrads` into
    the framework's parameter gradients, ``{name: array}`` shaped like the
    framework's parameters (names as in ``module.named_parameters()``).
    ``notes`` lists where the framework departs from its documentation or
    from lifgrad's default conventions.
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


class Row(NamedTuple):
    quantity: str
    max_abs: float
    max_rel: float


class CaseReport(NamedTuple):
    framework: str
    neuron: str
    variant: str
    surrogate: str
    spike_mismatches: int
    rows: list
    notes: tuple = ()

    @property
    def worst(self) -> float:
        return max((r.max_rel for r in self.rows), default=0.0)

    @property
    def passed(self) -> bool:
        return self.spike_mismatches == 0 and bool(np.isfinite(self.worst)) and self.worst <= TOL


def normwise_rel(a, b):
    """``max|a - b| / max|b|`` (0 when both are exactly zero)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf"), float("inf")
    diff = float(np.max(np.abs(a - b))) if a.size else 0.0
    den = float(np.max(np.abs(b))) if b.size else 0.0
    if diff == 0.0:
        return 0.0, 0.0
    return diff, diff / den if den > 0 else float("inf")


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
    ``gamma = alpha theta``) or ``(1 - v) u + v u_reset`` (zero).  With
    ``detach_reset`` the spike inside that expression is detached too."""
    if not m.post_reset or cfg.reset == "none":
        return u, Bm, A * m.spike_scale
    P = m.params.packed(u.shape[-1], np.float64, cfg)
    keep = 0.0 if cfg.detach_reset else 1.0
    if cfg.reset == "subtract":
        theta = P[1]
        return u - theta * v, Bm, A * m.spike_scale - keep * theta * Bm
    ur = P[3]
    return (1 - v) * u + v * ur, Bm * (1 - v), A * m.spike_scale + keep * Bm * (ur - u)


def membrane_param_terms(m: LayerMap, cfg, g, v, Bm):
    """Add to lifgrad's gradients what a post-reset membrane in the loss adds
    directly: ``d(u - theta v)/dtheta = -v`` (subtract) and
    ``d((1 - v) u + v u_reset)/du_reset = v`` (zero), summed like the parameter."""
    if not m.post_reset or cfg.reset == "none":
        return g
    term = np.sum(Bm * v, axis=(0, 1))
    if cfg.reset == "subtract":
        extra = -term
        return g._replace(theta=g.theta + (extra.sum() if np.ndim(g.theta) == 0 else extra))
    return g._replace(u_reset=g.u_reset + (term.sum() if np.ndim(g.u_reset) == 0 else term))


def lifgrad_side(m: LayerMap, I, A, Bm):
    """Run lifgrad on the mapped layer with the mapped loss.

    Returns ``(spikes, membrane as the framework reports it, dL/dI_peer, grads, trace)``."""
    I_lg = m.gain * I + m.bias
    cfg = m.config.replace(dtype="float64", backend="cpu")
    v, tr = lif_forward(I_lg, m.params, cfg, u0=m.u0, s0=m.s0)
    mem, du, dv = reported_membrane(m, cfg, tr.u, v, A, Bm)
    g = membrane_param_terms(m, cfg, lif_backward(tr, m.params, cfg, dv=dv, du=du), v, Bm)
    dI = m.gain * g.I
    return v * m.spike_scale, mem, dI, g, tr


def compare(framework, neuron, variant, surrogate, peer, ours, notes=()):
    """Build a :class:`CaseReport` from ``peer`` and ``ours``: dicts with keys
    ``spikes``, ``mem``, ``grad:<name>``... (numpy arrays)."""
    mism = int(np.sum(np.asarray(peer["spikes"]) != np.asarray(ours["spikes"])))
    rows = []
    for k in peer:
        if k == "spikes":
            continue
        if k not in ours:
            rows.append(Row(k, float("inf"), float("inf")))
            continue
        rows.append(Row(k, *normwise_rel(ours[k], peer[k])))
    return CaseReport(framework, neuron, variant, surrogate, mism, rows, tuple(notes))


def check_layer(framework, neuron, variant, surrogate, peer_run, m: LayerMap, I, A, Bm):
    """The whole comparison for one neuron layer.

    ``peer_run(I_tensor)`` runs the framework on the input (a float64 torch
    tensor with ``requires_grad``) and returns ``(spk, mem, named_params)``
    where spk, mem are ``(T, B, N)`` tensors and named_params a dict of the
    module's parameters (leaf tensors).  The loss is backpropagated here."""
    torch = require_torch()
    It = torch.tensor(I, dtype=torch.float64, requires_grad=True)
    spk, mem, named = peer_run(It)
    L = (torch.as_tensor(A) * spk).sum() + (torch.as_tensor(Bm) * mem).sum()
    L.backward()
    peer = {"spikes": spk.detach().numpy().astype(np.float64),
            "mem": mem.detach().numpy().astype(np.float64),
            "grad:input": It.grad.numpy()}
    for name, p in named.items():
        peer[f"grad:{name}"] = (p.grad.numpy() if p.grad is not None
                                else np.zeros(tuple(p.shape)))
    v, mem_lg, dI, g, tr = lifgrad_side(m, I, A, Bm)
    ours = {"spikes": v, "mem": mem_lg, "grad:input": dI}
    if m.param_grads is not None:
        for name, val in m.param_grads(g, I, tr).items():
            ours[f"grad:{name}"] = np.asarray(val, np.float64).reshape(
                peer.get(f"grad:{name}", np.asarray(val)).shape)
    return compare(framework, neuron, variant, surrogate, peer, ours, m.notes)


def format_reports(reports):
    """A table: framework, neuron, variant, surrogate, worst relative error, status."""
    lines = [f"{'framework':<13} {'neuron':<18} {'variant':<34} {'surrogate':<34} "
             f"{'spikes':>6} {'worst rel':>10}  status"]
    for r in reports:
        lines.append(f"{r.framework:<13} {r.neuron:<18} {r.variant:<34} {r.surrogate:<34} "
                     f"{r.spike_mismatches:>6} {r.worst:>10.1e}  {'PASS' if r.passed else 'FAIL'}")
    n_fail = sum(not r.passed for r in reports)
    lines.append(f"{len(reports)} cases, {len(reports) - n_fail} passed, {n_fail} failed "
                 f"(tolerance {TOL:g} relative, float64; spikes must be identical)")
    return "\n".join(lines)
