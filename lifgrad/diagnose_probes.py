"""Targeted probes that identify a spiking neuron's configuration, factor by factor.

The neuron is a black box (:class:`BlackBox`): the search may run its
forward on an input current ``I`` ``(T, B, N)`` (spikes and the membrane it
reports) and its own autograd of ``sum A spk + sum Bm mem`` (``dL/dI``).  It
never reads the module.  Every probe runs at one shape (:data:`TP` steps,
:data:`BP` rows: one compiled function for a JAX framework), each row one
experiment and every neuron in parallel.  :func:`identify` runs them in
order, each using what the earlier ones found (``derivations/diagnose.md``):

1. the linear response below threshold (D1)-(D3): rest trajectory, impulse
   response -> leak ``alpha``, the synapse's ``alpha_s``, the input gain ``c``;
   linearity, time invariance, neurons independent; the input's precision;
2. a ladder of membrane targets (D4): whether the output is one step late,
   the threshold's bracket, the spike's size;
3. bisection on the input to adjacent floats (D4): ``theta`` and the
   comparison (strict or not) up to the rounding the framework leaves;
4. several thresholds at once (D5): spike counts, their maximum;
5. one spike, then the membrane's deviation from the linear response (D6):
   reset mode, ``gamma`` / ``u_reset``, which decay is the membrane's, and
   the membrane reported (pre- or post-reset);
6. the single-step derivative ``dv_t/dI_t = c phi(u_t - theta)`` on a grid of
   ``u`` (D7)-(D9): the surrogate, and the precision of the spike's gradient;
7. ``dL/dI`` with the membrane after a spike in the loss (D10): the reset
   detached or not (6 and 7, the probes of the gradient, are in
   :mod:`lifgrad.diagnose_gradients`).

The result is a :class:`Cell`: lifgrad's configuration (:meth:`Cell.layer_map`)
and the evidence for each factor.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from . import surrogates as _sg
from .config import LIFConfig, LIFParams
from .diagnose_surrogate import SurrogateFit, shortest_between

__all__ = ["BlackBox", "Cell", "IdentificationError", "identify", "TP", "BP"]

from .diagnose_shape import BP, LIN_TOL, M_NONE, TP, _kick, _rows  # noqa: F401


class IdentificationError(ValueError):
    """A factor that no lifgrad cell reproduces: ``factor`` names it."""

    def __init__(self, factor, message):
        super().__init__(f"{factor}: {message}")
        self.factor = factor


class BlackBox:
    """One neuron as the search sees it: ``forward(I) -> (spikes, membrane)`` and
    ``gradient(I, A, Bm) -> {"spikes", "mem", "grad:input", ...}``, NumPy
    float64 ``(T, B, N)``; ``n`` neurons; ``framework`` only names presets
    that win ties.  ``calls`` counts the framework's runs."""

    def __init__(self, forward: Callable, gradient: Callable, n: int, framework: str = "",
                 name: str = ""):
        self._forward, self._gradient = forward, gradient
        self.n, self.framework, self.name = int(n), framework, name
        self.calls = 0
        self.round_input = None          # set by the first probe: np.float32 if the input is

    def _input(self, I):
        I = np.ascontiguousarray(I, np.float64)
        if self.round_input is not None:
            I = I.astype(self.round_input).astype(np.float64)
        return I

    def forward(self, I):
        self.calls += 1
        spk, mem = self._forward(self._input(I))
        return np.asarray(spk, np.float64), np.asarray(mem, np.float64)

    def gradient(self, I, A, Bm):
        self.calls += 1
        out = self._gradient(self._input(I), np.asarray(A, np.float64),
                             np.asarray(Bm, np.float64))
        return {k: np.asarray(v, np.float64) for k, v in out.items()}

    @classmethod
    def of(cls, adapter, module, n, name=""):
        """The black box of a framework's neuron ``module`` through its adapter
        (:mod:`lifgrad.verify.protocol`): ``peer_forward`` and ``peer_gradients``
        on a :class:`~lifgrad.verify.protocol.Built` made here.  A framework
        whose forward is slow outside its compiled gradient (JAX) is run through
        the gradient with zero loss weights."""
        from .verify.protocol import Built, Case
        from .verify.torchpeer import TorchAdapter
        neuron = type(module).__name__
        if neuron not in adapter.neurons:
            neuron = next(iter(adapter.neurons))
        variants = [v for v in adapter.neurons[neuron] if "parallel" not in v]
        case = Case(adapter.name, neuron, variants[0] if variants else "", "")

        def gradient(I, A, Bm):
            return adapter.peer_gradients(Built(case, module, I, A, Bm, ("diagnose",)))
        if isinstance(adapter, TorchAdapter) and neuron != "LIFJax":
            def forward(I):
                return adapter.peer_forward(module, I)
        else:
            def forward(I):
                z = np.zeros(I.shape[:2] + (n,))
                out = gradient(I, z, z)
                return out["spikes"], out["mem"]
        return cls(forward, gradient, n, adapter.name, name or neuron)


class Cell(NamedTuple):
    """What the probes identified, per neuron ``(N,)`` arrays where a factor may
    differ between neurons.  The lifgrad cell on the input current ``c I``::

        s_t = alpha_s s_{t-1} + c I_t            (two-state cells; else s_t = c I_t)
        u_t = alpha u_{t-1} + s_t + u_bias - reset,   v_t = spikes of u_t vs theta

    ``evidence``: ``{factor: text}`` of the probe and residual behind each value."""

    n: int
    alpha: np.ndarray
    alpha_s: np.ndarray | None
    c: np.ndarray
    u0: np.ndarray
    s0: np.ndarray | None
    u_bias: np.ndarray
    theta: np.ndarray
    strict: bool
    strict_determined: bool
    theta_bracket: tuple             # (u_lo (no spike), u_hi (spike)) per neuron
    delay_output: bool
    spike_scale: float
    max_spikes: int | None
    reset: str
    gamma: np.ndarray | None
    u_reset: np.ndarray | None
    post_reset: bool
    reset_value: np.ndarray | None
    detach: bool | None
    surrogate: SurrogateFit | None
    states_interchangeable: bool
    input_float32: bool
    evidence: dict
    unidentified: tuple = ()         # (factor, reason) that nothing reproduced
    gradient_float32: bool = False   # the gradient entering a spike is rounded to float32
    theta_grad: str | None = None    # the threshold's spike derivative (M4), when a parameter
                                     # gradient shows it (lifgrad.diagnose_params)

    def config(self, detach=None, surrogate=None) -> LIFConfig:
        sg = surrogate or (self.surrogate.surrogate if self.surrogate else _sg.get("zero"))
        d = self.detach if detach is None else detach
        return LIFConfig(reset=self.reset, detach_reset=bool(d) if self.reset != "none" else False,
                         strict=self.strict, surrogate=sg, synaptic=self.alpha_s is not None,
                         max_spikes=self.max_spikes, delay_output=self.delay_output,
                         theta_grad=self.theta_grad or "shift")

    def params(self) -> LIFParams:
        kw = dict(alpha=self.alpha, theta=self.theta, u_bias=self.u_bias)
        if self.reset == "subtract":
            kw["gamma"] = self.gamma
        if self.reset == "zero":
            kw["u_reset"] = self.u_reset
        if self.alpha_s is not None:
            kw["alpha_s"] = self.alpha_s
        return LIFParams(**kw)

    def layer_map(self, detach=None, surrogate=None, limits=(), notes=()):
        """The :class:`lifgrad.verify.common.LayerMap` of the identified cell (no
        chain rules to the framework's parameters: ``param_grads=None``)."""
        from .verify.common import LayerMap
        return LayerMap(self.config(detach, surrogate), self.params(), gain=self.c, bias=0.0,
                        u0=self.u0, s0=self.s0, post_reset=self.post_reset,
                        spike_scale=self.spike_scale,
                        reset_value=self.reset_value if self.post_reset and self.reset ==
                        "subtract" else None, limits=tuple(limits), notes=tuple(notes))


# ------------------------------------------------------------------ helpers

def _conv(h, I):
    """The linear response ``sum_k h_{t-k} I_k`` of every row: h ``(T, N)``, I ``(T, B, N)``."""
    out = np.zeros_like(I)
    for t in range(I.shape[0]):
        for k in range(t + 1):
            out[t] += h[t - k][None, :] * I[k]
    return out


def _close(a, b, scale, tol=LIN_TOL):
    return np.all(np.abs(np.asarray(a) - np.asarray(b)) <= tol * np.maximum(scale, 1e-300))


def _simulate(cell_like, I, T=TP):
    """lifgrad's membrane without spikes (threshold at infinity) for the linear
    part of a cell: ``cell_like`` = dict(alpha, alpha_s, c, u0, s0, u_bias)."""
    from .functional import lif_forward
    syn = cell_like.get("alpha_s") is not None
    cfg = LIFConfig(reset="none", surrogate="zero", synaptic=syn, backend="reference",
                    dtype="float64")
    n = I.shape[-1]
    P = LIFParams(alpha=cell_like["alpha"], theta=np.full(n, 1e300),
                  alpha_s=cell_like["alpha_s"] if syn else 0.8,
                  u_bias=cell_like.get("u_bias", 0.0))
    _, tr = lif_forward(cell_like["c"] * I, P, cfg, u0=cell_like.get("u0"),
                        s0=cell_like.get("s0") if syn else None)
    return np.asarray(tr.u, np.float64)


# ------------------------------------------------------------------ probe 1: linear response

def _linear(box, ev):
    n = box.n
    I = _rows(n)
    I[0, 1] = -1.0
    I[0, 2] = -2.0
    I[3, 3] = -1.0
    if n > 1:
        I[0, 4, 0] = -1.0
    I[0, 5] = -1.0 - 2.0 ** -30
    spk, mem = box.forward(I)
    if np.any(spk[:, :6] != 0):
        t, b, i = np.argwhere(spk[:, :6] != 0)[0]
        raise IdentificationError("rest", f"the neuron fires without input or on a negative "
                                          f"input (step {t}, neuron {i}): no threshold above "
                                          f"its rest")
    r = mem[:, 0]
    h = -(mem[:, 1] - r)
    scale = np.max(np.abs(h), axis=0)
    if np.any(scale == 0):
        raise IdentificationError("input", "the membrane does not respond to the input")
    box.round_input = None
    input32 = bool(np.all(mem[:, 5] == mem[:, 1]))
    if input32:
        box.round_input = np.float32
    if not _close(h, -(mem[:, 2] - r) / 2, scale):
        raise IdentificationError("linearity", "the membrane below threshold is not linear in "
                                               "the input (a clipped or rescaled membrane?)")
    shifted = mem[:, 3] - r
    if not (_close(shifted[:3], 0.0, scale) and _close(-shifted[3:], h[:-3], scale)):
        raise IdentificationError("time invariance", "the response to an input at step 3 is "
                                                     "not the response at step 0, shifted")
    if n > 1 and not _close(mem[:, 4, 1:], r[:, 1:], scale[1:]):
        raise IdentificationError("coupling", "an input to neuron 0 moves the other neurons' "
                                              "membranes (a recurrence): not identified")
    if np.any(np.abs(h[0]) <= 1e-12 * scale):
        raise IdentificationError("input", "the input reaches the membrane one step late "
                                           "(the membrane of step t does not see I_t)")
    ev["linear"] = (f"rest and impulse responses over {TP} steps; linear and time-invariant to "
                    f"{LIN_TOL:g}; neurons independent"
                    + ("; the input is rounded to float32" if input32 else ""))
    # one state: h_k = c alpha^k;   two: h_k = p1 h_{k-1} + p2 h_{k-2}    (D2), (D3)
    a1 = np.sum(h[1:] * h[:-1], axis=0) / np.sum(h[:-1] ** 2, axis=0)
    res1 = np.max(np.abs(h[1:] - a1 * h[:-1]), axis=0) / scale
    if np.all(res1 <= LIN_TOL):
        ev["states"] = f"one state: h_k = c alpha^k (residual {np.max(res1):.1e})"
        return r, h, a1, None, input32
    p1 = np.empty(n)
    p2 = np.empty(n)
    for i in range(n):
        M = np.stack([h[1:-1, i], h[:-2, i]], axis=1)
        (p1[i], p2[i]), *_ = np.linalg.lstsq(M, h[2:, i], rcond=None)
    res2 = np.max(np.abs(h[2:] - p1 * h[1:-1] - p2 * h[:-2]), axis=0) / scale
    if np.any(res2 > LIN_TOL):
        raise IdentificationError("states", f"the impulse response is neither one- nor "
                                            f"two-exponential (residual {np.max(res2):.1e})")
    disc = p1 * p1 + 4 * p2
    if np.any(disc < -1e-12 * np.maximum(p1 * p1, 1e-300)):
        raise IdentificationError("states", "the impulse response oscillates (complex decays)")
    sq = np.sqrt(np.maximum(disc, 0.0))
    ev["states"] = (f"two states: h_k = (a + b) h_(k-1) - ab h_(k-2), roots "
                    f"{_fmt((p1 + sq) / 2)} and {_fmt((p1 - sq) / 2)} (residual "
                    f"{np.max(res2):.1e})")
    return r, h, (p1 + sq) / 2, (p1 - sq) / 2, input32


def _snap(a, scale, tol=4e-15):
    """Each value at its shortest decimal within ``tol * scale`` (rounding left
    by the probes' subtractions, e.g. a reset to 1e-16 instead of 0)."""
    if a is None:
        return None
    a = np.array(a, np.float64)
    sc = np.broadcast_to(np.asarray(scale, np.float64), a.shape)
    out = a.copy()
    for i in np.ndindex(a.shape):
        out[i] = shortest_between(a[i] - tol * sc[i], a[i] + tol * sc[i])
    return out


def _fmt(a, digits=6):
    a = np.atleast_1d(np.asarray(a, np.float64))
    if a.size and np.all(a == a[0]):
        return f"{a[0]:.17g}"
    return "[" + ", ".join(f"{x:.{digits}g}" for x in a) + "]"


# ------------------------------------------------------------------ probes 2-3: threshold

def _ladder(box, r, h, ev):
    n = box.n
    js = np.arange(-30, 21)                      # membranes 2^-30 .. 2^20 above rest
    I = _rows(n)
    I[0, :js.size] = (2.0 ** js)[:, None] / h[0][None, :]
    spk, mem = box.forward(I)
    fires0 = spk[0, :js.size] != 0
    fires1 = spk[1, :js.size] != 0
    if np.any(fires0):
        delay = 0
        fires = fires0
    elif np.any(fires1):
        delay = 1
        fires = fires1
    else:
        raise IdentificationError("threshold", "no spike for membranes up to 2^20 above rest "
                                               "(a readout without spikes?)")
    lo = np.empty(n)
    hi = np.empty(n)
    for i in range(n):
        f = fires[:, i]
        if not f.any():
            raise IdentificationError("threshold", f"neuron {i} does not fire for membranes up "
                                                   f"to 2^20 above rest")
        j0 = int(np.argmax(f))
        if not f[j0:j0 + 12].all():
            raise IdentificationError("threshold", f"neuron {i} fires for a membrane 2^{js[j0]} "
                                                   f"above rest but not for some larger one")
        if j0 == 0:
            raise IdentificationError("threshold", f"neuron {i}'s threshold is within 2^-30 "
                                                   f"of its rest")
        lo[i], hi[i] = I[0, j0 - 1, i], I[0, j0, i]
    ev["delay"] = ("the output is one step late: a membrane above threshold at step 0 gives "
                   "its spike at step 1" if delay else "the spike is emitted in the step its "
                   "membrane crosses the threshold")
    return delay, lo, hi


def _bisect(box, delay, lo, hi, ev, rounds=14):
    """Adjacent floats ``lo`` (no spike) < ``hi`` (spike) of the step-0 input."""
    n = box.n
    k = np.arange(1, BP + 1) / (BP + 1)
    for _ in range(rounds):
        done = np.nextafter(lo, np.inf) >= hi
        if box.round_input is not None:
            done |= np.nextafter(lo.astype(np.float32), np.float32(np.inf)).astype(
                np.float64) >= hi
        if np.all(done):
            break
        I = _rows(n)
        cand = lo[None, :] + (hi - lo)[None, :] * k[:, None]
        small = (hi - lo) <= BP * np.spacing(np.maximum(np.abs(lo), np.abs(hi)))
        for i in np.flatnonzero(small):
            steps = [lo[i]]
            for _ in range(BP):
                steps.append(np.nextafter(steps[-1], np.inf))
            cand[:, i] = np.minimum(steps[1:], hi[i])
        cand = np.clip(cand, lo, hi)
        I[0] = cand
        spk, _ = box.forward(I)
        f = spk[delay] != 0
        I0 = box._input(I)[0]
        for i in range(n):
            no, yes = I0[~f[:, i], i], I0[f[:, i], i]
            if no.size and yes.size and no.max() >= yes.min():
                raise IdentificationError("threshold", f"neuron {i}: the spike is not monotone "
                                                       f"in the input near the threshold")
            if no.size:
                lo[i] = max(lo[i], no.max())
            if yes.size:
                hi[i] = min(hi[i], yes.min())
    return lo, hi


def _threshold(box, r, h, delay, lo, hi, ev):
    n = box.n
    I = _rows(n)
    I[0, 0] = lo
    I[0, 1] = hi
    spk, mem = box.forward(I)
    if np.any(spk[delay, 0] != 0) or np.any(spk[delay, 1] == 0):
        raise IdentificationError("threshold", "the bracket found by bisection does not "
                                               "reproduce")
    I0 = box._input(I)[0]
    u_lo = mem[0, 0].copy()                           # no spike: the membrane itself
    lin_hi = r[0] + h[0] * I0[1]
    # a spike's membrane is seen where the framework reports the pre-reset one;
    # else it is the linear prediction, exact to an ulp or two: widened by two
    seen = np.abs(mem[0, 1] - lin_hi) <= 1e-12 * np.maximum(np.abs(lin_hi), 1e-300)
    wide = np.nextafter(np.nextafter(lin_hi, np.inf), np.inf)
    u_hi = np.where(seen, mem[0, 1], wide)
    u_hi = np.maximum(u_hi, np.nextafter(u_lo, np.inf))
    spike_size = spk[delay, 1]
    if not np.allclose(spike_size, spike_size[0], rtol=0, atol=0):
        raise IdentificationError("spike size", f"neurons emit spikes of different sizes "
                                                f"{_fmt(spike_size)}")
    G = float(spike_size[0])
    # the roundest float in [u_lo, u_hi]: u_lo itself means strict (u_lo did not fire)
    votes = {True: 0, False: 0}            # by the shorter decimal
    seen_votes = {True: 0, False: 0}       # by a membrane seen at the shorter decimal
    for i in range(n):
        rr = shortest_between(u_lo[i], u_hi[i])
        if rr == u_lo[i]:                  # seen not to fire there
            votes[True] += 1
            seen_votes[True] += 1
        else:
            votes[False] += 1
            if rr == u_hi[i] and seen[i]:  # seen to fire there
                seen_votes[False] += 1
    determined = bool(seen_votes[True] or seen_votes[False])
    if determined:
        strict = seen_votes[True] >= seen_votes[False]
    else:
        strict = votes[True] > votes[False]
    theta = np.empty(n)
    for i in range(n):
        rr = shortest_between(u_lo[i], u_hi[i])
        if strict:          # u_lo <= theta < u_hi
            theta[i] = rr if rr < u_hi[i] else u_lo[i]
        else:               # u_lo < theta <= u_hi
            theta[i] = rr if rr > u_lo[i] else np.nextafter(u_lo[i], np.inf)
    ev["threshold"] = (f"bisection on the step-0 input to adjacent floats: membrane "
                       f"{_fmt(u_lo, 17)} gives no spike, {_fmt(u_hi, 17)} a spike; theta = "
                       f"{_fmt(theta, 17)}")
    ev["spike size"] = f"a single spike is {G:g}"
    return theta, strict, determined, (u_lo, u_hi), G


# ------------------------------------------------------------------ probe 4: spike counts

def _counts(box, r, h, theta, delay, G, ev):
    n = box.n
    ks = np.array([1, 2, 3, 4, 5, 7, 10, 20, 50, 100, 300, 1000, 3000, 10000, 30000, 70000],
                  np.float64)
    if np.any(theta <= 0):
        ev["max spikes"] = "one spike per step (theta <= 0: not probed)"
        return 1
    I = _rows(n)
    I[0, :ks.size] = (theta[None, :] * (ks[:, None] + 0.5) - r[0]) / h[0]
    spk, _ = box.forward(I)
    c = spk[delay, :ks.size] / G
    if np.all(c == 1):
        ev["max spikes"] = "one spike per step at membranes 1.5 .. 70000.5 theta"
        return 1
    if np.all(c == ks[:, None]):
        ev["max spikes"] = "floor(u/theta) spikes per step up to 70000 (no maximum)"
        return None
    M = c[-1]
    if np.all(M == M[0]) and np.all(c == np.minimum(ks[:, None], M[0])):
        M = int(M[0])
        ev["max spikes"] = f"floor(u/theta) spikes per step, at most {M}" + (
            " (lifgrad: no maximum)" if M >= M_NONE else "")
        return None if M >= M_NONE else M
    raise IdentificationError("max spikes", f"the spike counts at membranes (k + 1/2) theta "
                                            f"are {c[:, 0].tolist()}: neither one spike nor "
                                            f"floor(u/theta)")


# ------------------------------------------------------------------ probe 5: reset

def _reset(box, r, h, theta, delay, G, roots, ev):
    n = box.n
    fr = np.array([0.02, 0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 0.97])
    I = _rows(n)
    u0 = theta[None, :] + fr[:, None] * np.abs(theta)[None, :]
    I[0, :fr.size] = (u0 - r[0]) / h[0]
    I[1, :fr.size] = _kick(theta, r, h)
    j = fr.size                                   # a spike of neuron 0 alone
    I[0, j, 0] = (1.5 * theta[0] - r[0, 0]) / h[0, 0]
    I[1, j, 0] = _kick(theta, r, h)[0]
    spk, mem = box.forward(I)
    if n > 1 and (np.any(spk[:, j, 1:] != 0) or not _close(
            mem[:, j, 1:], r[:, 1:], np.maximum(np.abs(theta[1:]), np.max(np.abs(r[:, 1:]),
                                                                          axis=0)))):
        raise IdentificationError("coupling", "a spike of neuron 0 moves the other neurons' "
                                              "membranes (a recurrence through the spikes): "
                                              "not identified")
    I = box._input(I)
    lin = r[:, None, :] + _conv(h, I)
    u0 = lin[0, :fr.size]
    s = spk[:, :fr.size]
    want = np.zeros_like(s)
    want[delay] = G
    if not np.array_equal(s, want):
        raise IdentificationError("reset", "after one spike at step 0 and a large negative "
                                           "input the neuron did not stay silent")
    d = mem[:, :fr.size] - lin[:, :fr.size]          # (T, rows, N)
    scale = np.maximum(np.abs(theta), np.max(np.abs(u0), axis=0))
    issues = []              # what no lifgrad reset reproduces (the closest is kept)
    reset = []
    gamma = np.zeros(n)
    u_reset = np.zeros(n)
    a_mem = np.zeros(n)
    for i in range(n):
        A = np.stack([np.ones(fr.size), u0[:, i]], axis=1)
        (a, b), *_ = np.linalg.lstsq(A, d[1, :, i], rcond=None)
        res = np.max(np.abs(A @ [a, b] - d[1, :, i])) / scale[i]
        if res > LIN_TOL and not issues:
            issues.append(("reset", f"neuron {i}: the membrane one step after a spike is not "
                                    f"the linear response minus a constant or a reset to a "
                                    f"value (residual {res:.1e})"))
        if abs(b) <= LIN_TOL:
            if abs(a) <= LIN_TOL * scale[i]:
                reset.append("none")
            else:
                reset.append("subtract")
                gamma[i] = -a
        else:
            reset.append("zero")
            a_mem[i] = -b
            u_reset[i] = a / -b
    mode = max(set(reset), key=reset.count)
    if len(set(reset)) != 1:
        issues.append(("reset", f"neurons reset differently: {reset}"))
    gamma, u_reset = _snap(gamma, scale), _snap(u_reset, scale)
    # the membrane's decay: the reset's deviation decays with alpha alone   (D6)
    alpha = None
    if mode != "none":
        num = np.sum(d[2:] * d[1:-1], axis=(0, 1))
        den = np.sum(d[1:-1] ** 2, axis=(0, 1))
        alpha = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
        fit_res = np.max(np.abs(d[2:] - alpha * d[1:-1]), axis=(0, 1)) / np.maximum(
            np.max(np.abs(d[1]), axis=0), 1e-300)
        if np.any(fit_res > LIN_TOL):
            issues.append(("reset", f"the reset's effect does not decay geometrically "
                                    f"(residual {np.max(fit_res):.1e}): the reset acts on more "
                                    f"than the membrane"))
        if mode == "zero" and not _close(alpha, a_mem, 1.0):
            issues.append(("reset", f"after a reset to a value the membrane decays with "
                                    f"{_fmt(alpha)}, but the reset's dependence on the membrane "
                                    f"before it says {_fmt(a_mem)}: more than the membrane is "
                                    f"reset (the step's input too?)"))
    # the membrane reported at the spike's step
    d0 = d[0]
    post, rv = False, None
    if _close(d0, 0.0, scale[None, :], 1e-12):
        ev["membrane"] = "the membrane reported is the pre-reset potential"
    elif mode == "subtract" and _close(d0, d0[:1], scale[None, :], 1e-12):
        post, rv = True, _snap(-d0[0], scale)
        ev["membrane"] = (f"the membrane reported is post-reset: u - {_fmt(rv)} in the step "
                          f"of the spike")
    elif mode == "zero" and _close(mem[0, :fr.size], mem[0, :1], scale[None, :], 1e-12):
        post = True
        shown = mem[0, 0]
        if not _close(shown, u_reset, scale, 1e-9):
            issues.append(("membrane", f"the membrane reported after a spike is "
                                       f"{_fmt(shown)}, the state is reset to {_fmt(u_reset)}"))
        ev["membrane"] = f"the membrane reported is post-reset: {_fmt(shown)} after a spike"
    else:
        issues.append(("membrane", "the membrane reported in the step of a spike is neither "
                                   "the potential nor its reset"))
    if mode == "subtract":
        ev["reset"] = (f"one step after a spike the membrane is {_fmt(gamma)} below the linear "
                       f"response, whatever its value: subtract gamma = {_fmt(gamma)}, decaying "
                       f"with {_fmt(alpha)}")
    elif mode == "zero":
        ev["reset"] = (f"one step after a spike the membrane is alpha ({_fmt(alpha)}) times "
                       f"{_fmt(u_reset)}: reset to u_reset = {_fmt(u_reset)}")
    else:
        ev["reset"] = "a spike leaves the membrane on its linear response: no reset"
    if issues:
        ev["reset"] += "; NOT reproduced: " + "; ".join(t for _, t in issues)
    return mode, gamma if mode == "subtract" else None, u_reset if mode == "zero" else None, \
        alpha, post, rv, issues


# ------------------------------------------------------------------ probe 5b: u = theta exactly

def _strictness(box, r, h, delay, bracket, post, rv, ev):
    """Land the membrane of step 1 on the candidate threshold itself, through
    two inputs (the rounding of step 0 differs from row to row, so some rows
    hit it exactly): a row that did not fire there shows ``u = theta`` and
    means ``>``; a row that fired with ``u = theta`` (read from the membrane,
    pre-reset, or ``theta - R`` post-reset) means ``>=``  (D4).  Returns
    ``(theta*, strict or None)`` per neuron."""
    n = box.n
    u_lo, u_hi = bracket
    cand = np.array([shortest_between(a, b) for a, b in zip(u_lo, u_hi)])
    I = _rows(n)
    f = np.repeat(np.linspace(0.2, 0.8, 8), 16)
    I[0] = (f[:, None] * cand[None, :] - r[0]) / h[0]
    I0 = box._input(I)[0]
    lin1 = r[1] + h[1] * I0
    I[1] = (cand[None, :] - lin1) / h[0]
    # the prediction is exact to a few ulps: step through them around it
    off = np.tile(np.arange(-8, 8), 8)[:, None]
    I[1] = I[1] + off * np.spacing(np.abs(I[1]))
    spk, mem = box.forward(I)
    I = box._input(I)
    fired = spk[1 + delay] != 0
    if np.any(spk[:1 + delay] != 0):
        return cand, [None] * n
    out = []
    for i in range(n):
        no = (~fired[:, i]) & (mem[1, :, i] == cand[i])
        if post and rv is not None:
            yes = fired[:, i] & (mem[1, :, i] == cand[i] - rv[i]) & (
                np.abs(cand[i] - rv[i]) <= 2 * np.abs(cand[i]))
        elif post:
            # a reset to a value hides u where it fired: within a group of rows (one
            # step-0 input, the step-1 input one ulp apart) u moves by at most one
            # ulp per row (seen on the rows below); if the last row below is the
            # float before theta*, the first row that fired sits on theta* itself
            yes = np.zeros(BP, bool)
            below = np.nextafter(cand[i], -np.inf)
            for g in range(BP // 16):
                rows = np.arange(16 * g, 16 * g + 16)
                quiet = rows[~fired[rows, i]]
                if quiet.size < 3 or quiet[-1] == rows[-1] or \
                        mem[1, quiet[-1], i] != below or not fired[quiet[-1] + 1, i]:
                    continue
                steps = np.diff(mem[1, quiet, i])
                if np.all(np.diff(quiet) == 1) and np.all(
                        (steps >= 0) & (steps <= np.spacing(np.abs(below)))):
                    yes[quiet[-1] + 1] = True
        else:
            yes = fired[:, i] & (mem[1, :, i] == cand[i])
        if no.any() and yes.any():
            raise IdentificationError("threshold", f"neuron {i}: a membrane of exactly "
                                                   f"{cand[i]:.17g} both fired and did not")
        out.append(True if no.any() else (False if yes.any() else None))
    hits = sum(o is not None for o in out)
    ev["threshold"] += (f"; two-step inputs landed u on {_fmt(cand, 17)} exactly for {hits} "
                        f"of {n} neurons: it {'did not fire' if any(out) else 'fired'}"
                        if hits else "")
    return cand, out


# ------------------------------------------------------------------ the search

def _rest_fit(r, alpha, alpha_s, theta, ev):
    """u0, s0 and a constant drive that give the rest trajectory ``r``, by least
    squares on lifgrad's own responses to each (D1)."""
    n = r.shape[1]
    base = dict(alpha=alpha, alpha_s=alpha_s, c=1.0)
    zeros = np.zeros((TP, 1, n))
    cols = [("u0", dict(base, u0=np.ones(n))), ("u_bias", dict(base, u_bias=np.ones(n)))]
    if alpha_s is not None:
        cols.append(("s0", dict(base, s0=np.ones(n))))
    basis = np.stack([_simulate(cfg, zeros)[:, 0] for _, cfg in cols], axis=-1)   # (T, N, k)
    coef = np.zeros((len(cols), n))
    for i in range(n):
        coef[:, i] = np.linalg.lstsq(basis[:, i], r[:, i], rcond=None)[0]
    rest_fit = np.einsum("tnk,kn->tn", basis, coef)
    rscale = np.maximum(np.max(np.abs(r), axis=0), np.abs(theta))
    rscale = np.maximum(rscale, 1e-300)
    if not _close(rest_fit, r, rscale):
        raise IdentificationError("rest", "the rest trajectory is not the cell's (initial "
                                          "state and a constant drive)")
    vals = dict(zip([k for k, _ in cols], coef))
    ev["rest"] = (f"rest trajectory from u0 = {_fmt(vals['u0'])}" +
                  (f", s0 = {_fmt(vals['s0'])}" if "s0" in vals else "") +
                  f" with a constant drive {_fmt(vals['u_bias'])} (residual "
                  f"{np.max(np.abs(rest_fit - r) / rscale):.1e})")
    return vals["u0"], vals.get("s0"), vals["u_bias"]


def _readout(box, r, h, a, b, input32, ev):
    """A layer that never spikes: lifgrad's readout (no reset, no spikes out,
    the membrane its output)."""
    n = box.n
    ev["threshold"] = ("no spike for membranes up to 2^20 above rest: a readout (its output "
                       "is the membrane; lifgrad's cell without reset, spikes scaled by 0)")
    alpha, alpha_s = a, b
    interchangeable = b is not None
    alpha = np.clip(alpha, 0.0, 1.0)
    if alpha_s is not None:
        alpha_s = np.clip(alpha_s, 0.0, 1.0)
    u0, s0, u_bias = _rest_fit(r, alpha, alpha_s, np.zeros(n), ev)
    zero = SurrogateFit(_sg.get("zero"), 0.0, True)
    return Cell(n, alpha, alpha_s, h[0].copy(), u0, s0, u_bias, np.zeros(n), True, False,
                (np.full(n, -np.inf), np.full(n, np.inf)), False, 0.0, 1, "none", None, None,
                False, None, None, zero, interchangeable, input32, ev)


def identify(box: BlackBox) -> Cell:
    """Identify the neuron behind ``box`` probe by probe; :class:`Cell`.  A factor
    that no lifgrad cell reproduces raises :class:`IdentificationError` naming
    it, except the surrogate and the detach flag, which are recorded in
    ``Cell.unidentified`` (the closest fit is kept, so that the verification
    can say where it disagrees)."""
    ev = {}
    n = box.n
    r, h, a, b, input32 = _linear(box, ev)
    try:
        delay, lo, hi = _ladder(box, r, h, ev)
    except IdentificationError as e:
        if "no spike for membranes" not in str(e):
            raise
        return _readout(box, r, h, a, b, input32, ev)
    lo, hi = _bisect(box, delay, lo, hi, ev)
    theta, strict, determined, bracket, G = _threshold(box, r, h, delay, lo, hi, ev)
    M = _counts(box, r, h, theta, delay, G, ev)
    mode, gamma, u_reset, a_mem, post, rv, issues = _reset(box, r, h, theta, delay, G, (a, b),
                                                           ev)
    if not determined:
        cand, says = _strictness(box, r, h, delay, bracket, post, rv, ev)
        votes = [x for x in says if x is not None]
        if votes and all(x == votes[0] for x in votes):
            strict, determined = votes[0], True
            u_lo, u_hi = bracket
            theta = np.where((cand >= u_lo) & (cand <= u_hi) &
                             ((cand < u_hi) if strict else (cand > u_lo)), cand,
                             u_lo if strict else np.nextafter(u_lo, np.inf))
    # which decay is the membrane's (two states): the reset's; else interchangeable
    interchangeable = False
    if b is None:
        alpha, alpha_s = a, None
        if a_mem is not None and not _close(a_mem, alpha, 1.0, 1e-8):
            issues.append(("leak", f"the impulse response decays with {_fmt(alpha)}, the "
                                   f"reset's effect with {_fmt(a_mem)}"))
    else:
        if a_mem is None:
            alpha, alpha_s, interchangeable = a, b, True
        else:
            # both decays from the impulse response: a + b exactly, the reset's alone
            total = a + b
            alpha = a_mem
            alpha_s = total - a_mem
            near = np.minimum(np.abs(alpha - a), np.abs(alpha - b))
            if np.any(near > 1e-6):
                issues.append(("leak", f"the reset's effect decays with {_fmt(alpha)}, the "
                                       f"impulse response with {_fmt(a)} and {_fmt(b)}"))
                alpha = np.where(np.abs(alpha - a) <= np.abs(alpha - b), a, b)
                alpha_s = total - alpha
        ev["states"] += (f"; the membrane decays with {_fmt(alpha)}, the synapse with "
                         f"{_fmt(alpha_s)}" if not interchangeable else
                         "; no reset: which decay is the synapse's cannot be told (the two "
                         "are interchangeable)")
    alpha = np.clip(alpha, 0.0, 1.0)
    if alpha_s is not None:
        alpha_s = np.clip(alpha_s, 0.0, 1.0)
    c = h[0].copy()
    u0, s0, u_bias = _rest_fit(r, alpha, alpha_s, theta, ev)
    scale = np.maximum(np.abs(theta), np.max(np.abs(r), axis=0))
    alpha, c = _snap(alpha, np.abs(alpha)), _snap(c, np.abs(c))
    alpha_s = _snap(alpha_s, np.abs(alpha_s)) if alpha_s is not None else None
    u0, u_bias, gamma, u_reset, rv = (_snap(a, scale) for a in (u0, u_bias, gamma, u_reset, rv))
    s0 = _snap(s0, np.maximum(scale, np.abs(s0))) if s0 is not None else None
    ev["input"] = f"the input enters with gain c = {_fmt(c)} (the impulse response's first step)"
    ev["threshold"] += (f"; fires at u {'>' if strict else '>='} theta" +
                        ("" if determined else " (no membrane was seen exactly at theta: the "
                         "comparison is the one whose threshold is the shorter decimal)"))
    cell = Cell(n, alpha, alpha_s, c, u0, s0, u_bias, theta, strict, determined, bracket,
                bool(delay), G, M, mode, gamma, u_reset, post, rv, None, None, interchangeable,
                input32, ev)
    from .diagnose_gradients import detach_probe, surrogate_probe
    fitres, exact, samples, f32 = surrogate_probe(box, r, h, theta, delay, G, M, ev)
    cell = cell._replace(surrogate=fitres, gradient_float32=f32)
    unident = list(issues)
    if not exact:
        unident.append(("surrogate", f"no family reproduces the derivative: the closest is "
                                     f"{fitres.surrogate} (residual {fitres.residual:.1e})"))
    detach = detach_probe(box, cell, r, h, samples, ev) if exact else None
    if mode != "none" and detach is None and exact and "not decided" in ev.get("detach", ""):
        unident.append(("detach", ev["detach"]))
    cell = cell._replace(detach=detach, unidentified=tuple(unident))
    return cell


def drive(box, cell, seed, T, B):
    """A fresh random problem around the identified threshold: input ``(T, B, N)``
    (a mean drive and noise per row, so that the membrane crosses the threshold
    often but rarely by more than one threshold in a step), loss weights."""
    from .verify.common import problem
    n = cell.n
    rng, _, A, Bm = problem(seed, T, B, n)
    imp = np.zeros((4, 1, n))
    imp[0] = 1.0
    lin = dict(alpha=cell.alpha, alpha_s=cell.alpha_s, c=cell.c)
    h = _simulate(lin, imp, 4)[:, 0]                     # impulse response, 4 steps
    rest = _simulate(dict(lin, u0=cell.u0, s0=cell.s0, u_bias=cell.u_bias),
                     np.zeros((T, 1, n)), T)[-1, 0]
    gap = np.abs(cell.theta - rest) + 1e-3 * np.maximum(np.abs(cell.theta), 1.0)
    level = gap / np.sum(h, axis=0)
    mean = np.array([0.8, 0.45, 1.25, 0.65, 1.0, 0.9])[:B] if B <= 6 else \
        rng.uniform(0.4, 1.3, B)
    std = np.array([0.9, 1.2, 0.6, 0.8, 0.5, 1.0])[:B] if B <= 6 else rng.uniform(0.5, 1.2, B)
    z = rng.normal(size=(T, B, n))
    I = level * (mean[None, :, None] + std[None, :, None] * z)
    cap = 0.9 * gap / np.abs(h[0])                       # at most 0.9 of the gap per step
    I = np.clip(I, -4 * cap, cap)
    if cell.input_float32:
        I = I.astype(np.float32).astype(np.float64)
    return I, A, Bm
