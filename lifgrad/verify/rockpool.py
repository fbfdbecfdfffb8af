"""Rockpool 3.1.0's ``LIFTorch``, ``aLIFTorch``, ``LIFBitshiftTorch``,
``LIFNeuronTorch`` and ``LIFJax`` against lifgrad (issue 18).

What ``LIFTorch.forward`` computes per step (read from
``rockpool/nn/modules/torch/lif_torch.py``)::

    isyn = isyn + x_t (+ spikes_{t-1} @ w_rec)          input, recurrence
    vmem = alpha vmem;  isyn = beta isyn                decay
    vmem = vmem + isyn + noise + bias                    integrate
    n_t  = min(floor(vmem / theta) [vmem >= theta], max_spikes_per_dt)
    vmem = vmem - n_t theta                              subtract reset

``alpha = exp(-dt/tau_mem)``, ``beta = exp(-dt/tau_syn)`` (``leak_mode='taus'``,
the decays themselves with ``leak_mode='decays'``, or ``alpha = 1 - 2^-dash_mem``,
``beta = 1 - 2^-dash_syn`` with ``leak_mode='bitshifts'``: ``dL/ddash = dL/dalpha
ln2 (1 - alpha)``).  On lifgrad's cell:
a synaptic cell whose synapse decays its input (``decay_input``, M3) with
``alpha_s = beta``, the all-to-all recurrence ``R = w_rec^T`` inside the
synaptic input, the membrane bias ``u_bias = bias`` (M6), several spikes per
step ``max_spikes = max_spikes_per_dt`` (M2) fired at ``>=``, the subtract
reset not detached with ``gamma = alpha theta`` (the removal decays with the
next step), and the spike functions' threshold derivative as a ratio,
``-(v/theta) phi`` (``theta_grad='ratio'``, M4).  The chain rules back to
Rockpool's parameters::

    dL/dalpha  = g.alpha + theta g.gamma             dL/dtau_mem = dL/dalpha alpha dt / tau_mem^2
    dL/dtheta  = g.theta + alpha g.gamma             (g.theta holds -sum Bm n of the membrane)
    dL/dbeta   = g.alpha_s                           dL/dtau_syn = dL/dbeta beta dt / tau_syn^2
    dL/dbias   = g.u_bias                            dL/dw_rec   = g.R^T

``aLIFTorch`` (``ahp_lif_torch.py``) is ``LIFTorch`` plus an after-
hyperpolarisation current driven by the neuron's own spikes::

    iahp = gamma (iahp + w_ahp spikes_{t-1})             gamma = exp(-dt/tau_ahp)
    vmem = alpha vmem + isyn + iahp + noise + bias       (iahp an extra synapse of the sum)

With lifgrad's adaptation variable ``a_t = rho a_{t-1} + v_{t-1}`` (L1),
``rho = gamma``, the current is ``iahp_t = gamma w_ahp a_t``: lifgrad's
adaptation as a current (``adaptation='current'``, M9), ``u_t -= beta_a a_t``
with ``beta_a = -gamma w_ahp``, the threshold unchanged (so the count's
``theta_grad='ratio'`` still holds).  Its chain rules::

    dL/dw_ahp  = -gamma g.beta_a
    dL/dgamma  = g.rho - w_ahp g.beta_a                  dL/dtau_ahp = dL/dgamma gamma dt / tau_ahp^2

float64: Rockpool's parameters, states and recordings are created float32
(``cast_fn`` to ``torch.float``, ``torch.zeros`` of the default dtype), and
both spike functions end in ``.float()``.  The check builds the module under
``torch.set_default_dtype(float64)``, converts it with ``.double()``, writes
every parameter again in float64, and runs it with dtype-keeping subclasses
of ``StepPWL`` / ``PeriodicExponential`` (same forward and backward); a stock
spike function is checked within a float32 precision limit.

``LIFBitshiftTorch`` (``lif_bitshift_torch.py``) is ``LIFTorch`` whose
``alpha`` / ``beta`` properties round the time constants to bitshifts,
``alpha = 1 - 2^-dash``, ``dash = max(round(log2(tau_mem / dt)), 0)`` (``beta``
likewise), ``max_spikes_per_dt`` 31 by default: the same map with those
decays; ``dash`` is an integer, a step function of ``tau``, so ``tau_mem`` /
``tau_syn`` get no gradient (``dL/dtau = 0``, their ``.grad`` stays None);
only its ``leak_mode='taus'`` is mapped.

``LIFNeuronTorch`` (``lif_neuron_torch.py``) is the membrane alone: ``vmem =
alpha vmem + x + bias``, the same spike count, subtract reset (``gamma = alpha
theta``) and spike functions (its module holds a copy of ``StepPWL``; the
check runs lif_torch's dtype-keeping one).  lifgrad's one-state cell with
``u_bias = bias``; its docstring documents a threshold ``V_thr = 0`` crossed
at ``>`` with one spike.

``n_synapses = S > 1`` (``LIFTorch``, ``aLIFTorch``): the input has ``N S``
channels, channel ``n S + s`` feeding synapse s of neuron n, ``isyn[n, s] =
beta[n, s] (isyn + x + spikes @ w_rec)``, and the membrane adds ``sum_s
isyn[n, s]``.  With one decay per neuron (``beta[n, s] = beta[n]``, what a
scalar or per-neuron ``tau_syn`` builds) the sum of the states is one
synaptic state driven by the summed channels: ``LayerMap.input_sum = S``,
``R[n, j] = sum_s w_rec[j, n S + s]``, ``dL/dx[n S + s] = dL/dJ[n]``,
``dL/dw_rec[j, n S + s] = g.R[n, j]``, and each synapse's
``dL/dbeta[n, s] = sum_t dL/dJ_t isyn[t, n, s] / beta^2`` from its state
filtered again (summed over s it is ``g.alpha_s``).  Different time
constants within a neuron without ``has_rec``: the states are linear
filters of their own channels, never reset, so they form a filter bank
before lifgrad's one-state cell (``LayerMap.pre``, :class:`_SynapseBank`:
its forward, its transpose for ``dL/dx`` and ``dL/dbeta[n, s] = sum_t
lambda_t (isyn_{t-1} + x_t)``, ``lambda_t = dL/dJ_t + beta lambda_{t+1}``).

The same holds for ``LIFJax`` (one :class:`_Synapses` map for both).

Refused with the reason: ``n_synapses > 1`` with different ``tau_syn`` within
a neuron and a recurrence (it runs through several synaptic states); ``noise_std != 0`` (random), a ``leak_mode``
other than taus, decays and bitshifts, a spike function other than the two
above.  A per-neuron threshold is mapped with ``surrogate_threshold='live'``
(M10): ``StepPWL`` and ``PeriodicExponential`` divide by each neuron's own
threshold (LIFTorch, aLIFTorch, LIFJax's ``step_pwl``).
``LIFJax`` computes the same cell (window fixed at 0.5) in JAX: the check
runs it with JAX's 64-bit switch on inside its own calls, on float32-exact
inputs, since LIFJax casts its input to float32 whatever that switch says
(so ``dL/dinput`` is rounded to float32, a documented limit; every parameter
gradient is float64).
See ``derivations/peers.md`` (Rockpool 3.1.0).
"""
from __future__ import annotations

import contextlib
import functools

import numpy as np

from .. import surrogates as _sgs
from ..config import LIFConfig, LIFParams
from .common import F32_TOL, LayerMap, Limit, problem, require_torch
from .protocol import Built, ChainLink
from .surrogate_calls import rockpool_float64
from .torchpeer import TorchAdapter
from .torchpeer import value as _value

DEFAULT_SURROGATE = "rockpool.StepPWL"
DT = 1e-3
TAU_MEM, TAU_SYN = 4.3e-3, 2.7e-3          # not float32-exact: the float64 rewrite matters
TAU_AHP = 6.1e-3                           # aLIFTorch's after-hyperpolarisation

# variant -> keywords of make_module
VARIANTS = {
    "LIFTorch": {
        "defaults": dict(),
        "max_spikes 1": dict(max_spikes=1),
        "max_spikes 3": dict(max_spikes=3),
        "max_spikes 300": dict(max_spikes=300),
        "taus per neuron": dict(per_neuron=True),
        "bias": dict(bias=True),
        "threshold 0.8, bias": dict(theta=0.8, bias=True),
        "has_rec": dict(rec=True),
        "has_rec, max_spikes 2, bias": dict(rec=True, max_spikes=2, bias=True),
        "leak_mode decays": dict(decays=True),
        "leak_mode decays, has_rec": dict(decays=True, rec=True, per_neuron=True),
        "leak_mode bitshifts": dict(bitshifts=True, per_neuron=True),
        "learning_window 0.3": dict(window=0.3),
        # per-neuron thresholds: the surrogate divides by each neuron's (M10)
        "threshold per neuron": dict(theta="per-neuron"),
        "threshold per neuron, has_rec, max_spikes 3, bias": dict(theta="per-neuron", rec=True,
                                                                   max_spikes=3, bias=True),
        # several synapses per neuron sharing its tau_syn (n_synapses, input_sum)
        "n_synapses 2": dict(synapses=2),
        "n_synapses 3, taus per neuron, has_rec, max_spikes 3": dict(
            synapses=3, per_neuron=True, rec=True, max_spikes=3),
        "n_synapses 2, leak_mode decays": dict(synapses=2, decays=True, per_neuron=True),
        # a tau_syn per synapse, no recurrence: a filter bank before the cell (LayerMap.pre)
        "n_synapses 2, tau_syn per synapse": dict(synapses=2, per_synapse=True),
        "n_synapses 3, tau_syn per synapse, leak_mode decays, max_spikes 2": dict(
            synapses=3, per_synapse=True, decays=True, max_spikes=2),
    },
    # the after-hyperpolarisation current (M9); w_ahp: Rockpool's default -0.9 or
    # per neuron, tau_ahp scalar or per neuron
    "aLIFTorch": {
        "defaults": dict(),
        "max_spikes 1": dict(max_spikes=1),
        "max_spikes 3, tau_ahp, w_ahp per neuron": dict(max_spikes=3, ahp_per_neuron=True),
        "has_rec, max_spikes 2, bias": dict(rec=True, max_spikes=2, bias=True,
                                            ahp_per_neuron=True),
        "leak_mode decays": dict(decays=True, ahp_per_neuron=True),
        "threshold per neuron": dict(theta="per-neuron", ahp_per_neuron=True),
        "n_synapses 2, has_rec": dict(synapses=2, rec=True, ahp_per_neuron=True),
        "n_synapses 2, tau_syn per synapse": dict(synapses=2, per_synapse=True),
    },
    # LIFTorch with decays 1 - 2^-round(log2(tau/dt)); its max_spikes_per_dt defaults to 31
    "LIFBitshiftTorch": {
        "defaults": dict(),
        "taus per neuron, has_rec, bias": dict(per_neuron=True, rec=True, bias=True),
        "max_spikes 1, threshold 0.8": dict(max_spikes=1, theta=0.8),
    },
    # the membrane-only LIF (lif_neuron_torch.py): no synaptic state, no recurrence,
    # no leak_mode; tau_mem scalar or per neuron
    "LIFNeuronTorch": {
        "defaults": dict(),
        "max_spikes 1": dict(max_spikes=1),
        "max_spikes 3, taus per neuron, bias": dict(max_spikes=3, per_neuron=True, bias=True),
        "threshold per neuron, bias": dict(theta="per-neuron", bias=True),
        "learning_window 0.3, threshold 0.8": dict(window=0.3, theta=0.8),
    },
    "LIFJax": {
        "defaults": dict(),
        "max_spikes 3": dict(max_spikes=3),
        "taus per neuron, bias": dict(per_neuron=True, bias=True),
        "has_rec, max_spikes 2, bias": dict(rec=True, max_spikes=2, bias=True),
        "threshold per neuron, bias": dict(theta="per-neuron", bias=True),
        "n_synapses 2, has_rec": dict(synapses=2, rec=True, per_neuron=True),
        "n_synapses 3, tau_syn per synapse": dict(synapses=3, per_synapse=True),
    },
}
NEURONS = {n: tuple(vs) for n, vs in VARIANTS.items()}

_NOTES = (
    "Rockpool fires at v >= theta (lifgrad strict=False) and counts floor(v/theta) spikes, "
    "clipped to max_spikes_per_dt (default 2^16)",
    "the synaptic current is decayed after the input is added, isyn = beta (isyn + x + "
    "spikes @ w_rec): lifgrad's decay_input (M3) with the recurrence inside it",
    "the reset subtracts n theta from the state before the next decay, so lifgrad's free "
    "reset strength is gamma = alpha theta; the reset is not detached",
    "the spike functions' threshold derivative is -(v/theta^2) times the mask, a ratio "
    "(lifgrad theta_grad='ratio', M4), not -phi",
    "the membrane in the loss is record['vmem'] (evolve(record=True)), the post-reset state; "
    "LIFTorch takes (batch, time, channels) and keeps its state across calls (the check "
    "resets it before every run)",
    "record['vmem'] and the spike functions' outputs are float32 whatever the module's dtype "
    "(the check builds and runs it in float64); reset_state() recreates the states in torch's "
    "default dtype, so a .double() LIFTorch fails after it unless that default is float64",
    "after a call the layer keeps only the first sample's state (vmem[0]) and the next call "
    "copies it to every sample",
    "the docstrings: StepPWL is called 'piece-wise linear' but is a one-sided step of height "
    "1/theta (only its threshold derivative is linear in v); PeriodicExponential is described "
    "as subtracting from the membrane (it is a spike function and subtracts nothing); LIFTorch "
    "documents one spike at V > V_thr; tau_syn/isyn are documented (Nin,) and are "
    "(Nout, n_synapses)",
)


_AHP_NOTES = (
    "aLIFTorch's after-hyperpolarisation iahp = gamma (iahp + w_ahp spikes_{t-1}) is lifgrad's "
    "adaptation as a current (adaptation='current', M9): rho = gamma = exp(-dt/tau_ahp), "
    "beta_a = -gamma w_ahp, u_t -= beta_a a_t; the threshold and its reset stay constant",
    "aLIFTorch's docstring adds I_ahp to I_syn (I_syn += I_ahp, which would then decay with "
    "tau_syn); the code sums iahp into the membrane as an extra synapse and keeps it out of "
    "isyn; it documents w_ahp as a (Nout, Nin) matrix and tau_ahp as (Nin,): both are (Nout,)",
)


_BITSHIFT_NOTES = (
    "LIFBitshiftTorch is LIFTorch with the decays alpha = 1 - 2^-dash_mem, beta = 1 - "
    "2^-dash_syn, dash = max(round(log2(tau / dt)), 0) (its alpha / beta properties): "
    "integer bitshifts, a step function of tau_mem / tau_syn, so the time constants get no "
    "gradient (they are trainable parameters whose .grad stays None); max_spikes_per_dt "
    "defaults to 31",
    "LIFBitshiftTorch's Bitshift autograd function (gradient tau) is defined but unused; the "
    "constructor rewrites tau_mem / tau_syn to -dt / ln(alpha) of the rounded decay",
)


def _rp():
    require_torch()
    from rockpool.nn.modules.torch import lif_torch as lt
    return lt


@functools.lru_cache(maxsize=None)
def spike_functions():
    """Dtype-keeping subclasses of Rockpool's spike functions, by name."""
    lt = _rp()
    return {name: rockpool_float64(getattr(lt, name))
            for name in ("StepPWL", "PeriodicExponential")}


def _spike_kind(fn):
    """``(name, dtype_keeping)`` of a module's ``spike_generation_fn`` (a bound
    ``apply``); ValueError for anything else."""
    lt = _rp()
    cls = getattr(fn, "__self__", fn)
    ours = spike_functions()
    for name in ("StepPWL", "PeriodicExponential"):
        if isinstance(cls, type) and issubclass(cls, getattr(lt, name)):
            return name, issubclass(cls, ours[name])
    # LIFNeuronTorch's module holds its own StepPWL, the same code as lif_torch's
    from rockpool.nn.modules.torch import lif_neuron_torch as lnt
    if isinstance(cls, type) and issubclass(cls, lnt.StepPWL):
        return "StepPWL", False
    raise ValueError(f"spike_generation_fn: {getattr(cls, '__name__', cls)!r} is not covered: "
                     f"only Rockpool's StepPWL and PeriodicExponential have lifgrad presets")


def _max_spikes(value):
    """lifgrad's ``max_spikes`` of Rockpool's ``max_spikes_per_dt``: None for
    the default 2^16 and above (never reached in one step), else the count."""
    M = float(value)
    max_spikes = None if M >= 2 ** 16 else int(M)
    if max_spikes is not None and M != max_spikes:
        raise ValueError(f"max_spikes_per_dt: expected a whole number, got {M}")
    return max_spikes



_SYNAPSES_NOTE = (
    "n_synapses = {S}: the input has {S} channels per neuron (channel n {S} + s), each "
    "filtered by its own synaptic state isyn[n, s] and summed into the membrane; with one "
    "time constant per neuron the sum of the states is one synaptic state driven by the sum "
    "of the channels (lifgrad's input_sum), and each tau_syn[n, s] gets its synapse's share "
    "sum_t dL/dJ_t isyn[t, n, s] / beta^2 of dL/dbeta, from the states filtered again")


_BANK_NOTE = (
    "n_synapses = {S} with different tau_syn within a neuron and no recurrence: the "
    "synaptic states are linear filters of their own input channels, not reset by spikes, "
    "so their sum is a filter bank before the cell: lifgrad's one-state cell (synaptic=False) "
    "driven by sum_s isyn[n, s] (LayerMap.pre), dL/dx by the bank's transpose, and "
    "dL/dbeta[n, s] = sum_t lambda_t (isyn_{{t-1}} + x_t), lambda_t = dL/dJ_t + beta "
    "lambda_{{t+1}}")


class _SynapseBank:
    """Rockpool's ``S`` synapses per neuron as a linear filter bank before the
    cell: ``isyn[t, n, s] = beta[n, s] (isyn[t-1, n, s] + x[t, n S + s])``,
    ``J[t, n] = sum_s isyn[t, n, s]`` (no recurrence through them)."""

    def __init__(self, beta):
        self.beta = np.asarray(beta, np.float64)            # (N, S)
        self.N, self.S = self.beta.shape

    def _states(self, I):
        I = np.asarray(I, np.float64)
        x = I.reshape(I.shape[:2] + (self.N, self.S))
        return x, _synaptic_states(self.beta, x)

    def forward(self, I):
        return self._states(I)[1].sum(-1)

    def _lambda(self, gJ):
        """lambda_t = dL/disyn_t = dL/dJ_t + beta lambda_{t+1}, (T, B, N, S)."""
        gJ = np.asarray(gJ, np.float64)
        lam = np.zeros(gJ.shape + (self.S,))
        nxt = np.zeros(gJ.shape[1:] + (self.S,))
        for t in range(gJ.shape[0] - 1, -1, -1):
            nxt = gJ[t][..., None] + self.beta * nxt
            lam[t] = nxt
        return lam

    def vjp(self, gJ):
        lam = self._lambda(gJ)
        return (self.beta * lam).reshape(lam.shape[:2] + (self.N * self.S,))

    def beta_grads(self, I, gJ):
        """dL/dbeta ``(N, S)``: sum over t and the batch of lambda_t (isyn_{t-1} + x_t)."""
        x, isyn = self._states(I)
        before = np.concatenate([np.zeros_like(isyn[:1]), isyn[:-1]]) + x
        return np.einsum("tbns,tbns->ns", self._lambda(gJ), before)


def _synaptic_states(beta, drive):
    """``isyn[t] = beta (isyn[t-1] + drive[t])`` from 0 (Rockpool's synapses,
    decay after the input, (M3)); ``beta`` ``(N, S)``, ``drive`` ``(T, B, N, S)``."""
    isyn = np.zeros_like(drive)
    prev = np.zeros(drive.shape[1:])
    for t in range(drive.shape[0]):
        prev = beta * (prev + drive[t])
        isyn[t] = prev
    return isyn


def _shared(beta, N, S):
    """Whether the synaptic decays (scalar, ``(N,)`` or ``(N, S)``) are one per neuron."""
    b = np.asarray(beta)
    return b.ndim < 2 or b.shape[1] == 1 or not np.any(b != b[:, :1])


def _shared_synapse_decay(beta, N, S):
    """lifgrad's ``alpha_s`` ``(N,)`` of Rockpool's synaptic decays ``beta``
    (scalar, ``(N,)`` or ``(N, S)``): with ``S`` synapses per neuron they must
    share one decay per neuron; ValueError otherwise."""
    b = np.asarray(beta, np.float64)
    if b.ndim == 2:
        if b.shape[1] > 1 and np.any(b != b[:, :1]):
            raise ValueError(f"n_synapses: {S} synapses per neuron with different tau_syn are "
                             f"not covered: each has its own synaptic state, and lifgrad's "
                             f"synaptic cell has one (synapses sharing one tau_syn per neuron "
                             f"are mapped)")
        b = b[:, 0]
    return np.broadcast_to(np.reshape(b, -1) if b.ndim else b, (N,)).copy()


class _Synapses:
    """How ``S`` synapses per neuron map (``LIFTorch``, ``aLIFTorch``,
    ``LIFJax``): one synapse, or several sharing a decay per neuron (one
    synaptic state driven by the summed channels, ``input_sum``), or several
    with their own decays and no recurrence (a filter bank before the
    one-state cell, ``pre``); with their own decays and a recurrence:
    ValueError.  ``beta`` the decays as the module holds them (scalar,
    ``(N,)`` or ``(N, S)``), ``w_rec`` ``(N, N S)`` or None."""

    def __init__(self, beta, N, S, w_rec):
        self.S, self.w_rec = S, w_rec
        self.bank = None
        self.alpha_s = None
        if S > 1 and not _shared(beta, N, S):
            if w_rec is not None:
                raise ValueError(f"n_synapses: {S} synapses per neuron with different tau_syn "
                                 f"and a recurrence are not covered: the recurrence runs "
                                 f"through several synaptic states, and lifgrad's cell has "
                                 f"one (without it they are a filter bank before the cell; "
                                 f"sharing one tau_syn per neuron they are mapped with it)")
            self.bank = _SynapseBank(_synapse_grid(beta, N, S))
        else:
            self.alpha_s = _shared_synapse_decay(beta, N, S)
        # w_rec (N, N S): neuron j's spikes into synapse s of neuron n at column n S + s
        self.R = None if w_rec is None else \
            np.asarray(w_rec, np.float64).reshape(N, N, S).sum(-1).T.copy()
        self.beta = self.bank.beta if self.bank is not None else _col(self.alpha_s, S)
        self.note = (_BANK_NOTE.format(S=S) if self.bank is not None
                     else _SYNAPSES_NOTE.format(S=S) if S > 1 else None)

    def dbeta(self, g, I, tr):
        """dL/dbeta: ``(N,)`` for one synapse, ``(N, S)`` for several."""
        if self.bank is not None:
            return self.bank.beta_grads(I, g.I)
        if self.S > 1:
            return _synapse_decay_grads(g, I, tr, self.alpha_s, self.S, self.w_rec)
        return np.asarray(g.alpha_s)

    def dw_rec(self, g):
        """dL/dw_rec ``(N, N S)``: every synapse of neuron n carries neuron j's spikes alike."""
        return np.repeat(np.asarray(g.R).T, self.S, axis=1)


def _synapse_grid(x, N, S):
    """A per-synapse value (scalar, ``(N,)``, ``(N, 1)`` or ``(N, S)``) as ``(N, S)``."""
    x = np.asarray(x, np.float64)
    if x.ndim == 1:
        x = x.reshape(-1, 1)
    return np.broadcast_to(x, (N, S))


def _col(x, S):
    """``x`` per neuron as a column ``(N, 1)`` when there are ``S > 1`` synapses."""
    x = np.asarray(x, np.float64)
    return x.reshape(-1, 1) if S > 1 and x.ndim else x


def _synapse_decay_grads(g, I, tr, beta, S, w_rec):
    """``dL/dbeta[n, s]`` of Rockpool's ``S`` synapses per neuron sharing the
    decay ``beta[n]``: each synapse's state ``isyn[t, n, s]`` filtered again
    (:func:`_synaptic_states`) from the input ``I`` ``(T, B, N S)`` plus the
    recurrence of lifgrad's spikes, and ``dL/dbeta[n, s] = sum_t dL/dJ_t
    isyn[t, n, s] / beta^2`` (decay_input: ``dL/dJ_t = beta sbar_t``, (M3));
    summed over s it is ``g.alpha_s``."""
    I = np.asarray(I, np.float64)
    T, B = I.shape[:2]
    N = beta.shape[0]
    drive = I.reshape(T, B, N, S).copy()
    if w_rec is not None:               # spikes of step t-1 into the synapses of step t
        v = np.asarray(tr.v, np.float64)
        drive[1:] += (v[:-1] @ w_rec).reshape(T - 1, B, N, S)
    b = np.repeat(beta[:, None], S, axis=1)
    isyn = _synaptic_states(b, drive)
    return np.einsum("tbn,tbns->ns", np.asarray(g.I, np.float64), isyn) / b ** 2


@contextlib.contextmanager
def _float64_default():
    torch = require_torch()
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def make_module(variant="defaults", surrogate=DEFAULT_SURROGATE, N=6, seed=0,
                neuron="LIFTorch"):
    """A float64 ``LIFTorch`` (or ``aLIFTorch``) of ``variant`` (:data:`VARIANTS`)
    with the preset's dtype-keeping spike function."""
    torch = require_torch()
    lt = _rp()
    if neuron not in ("LIFTorch", "aLIFTorch", "LIFBitshiftTorch", "LIFNeuronTorch"):
        raise ValueError(f"neuron: expected LIFTorch, LIFBitshiftTorch, aLIFTorch or "
                         f"LIFNeuronTorch, got {neuron!r}")
    if variant not in VARIANTS[neuron]:
        raise ValueError(f"variant: expected one of {', '.join(VARIANTS[neuron])}, "
                         f"got {variant!r}")
    if surrogate not in ("rockpool.StepPWL", "rockpool.PeriodicExponential"):
        raise ValueError(f"surrogate: expected rockpool.StepPWL or rockpool.PeriodicExponential, "
                         f"got {surrogate!r}")
    kw = VARIANTS[neuron][variant]
    rng = np.random.default_rng(seed + 17)
    per = kw.get("per_neuron", False)
    tau_m = np.linspace(3e-3, 6e-3, N) if per else TAU_MEM
    # per neuron: (N, n_synapses) = (N, 1), as Rockpool's tau_syn shape
    tau_s = np.linspace(1.5e-3, 4e-3, N)[:, None] if per else TAU_SYN
    theta = kw.get("theta", 1.0)
    if theta == "per-neuron":
        theta = np.linspace(0.7, 1.3, N)
    bias = rng.uniform(-0.1, 0.3, N) if kw.get("bias") else None
    S = kw.get("synapses", 1)
    if S > 1 and kw.get("per_synapse"):      # (N, n_synapses), every synapse its own
        tau_s = np.linspace(1.5e-3, 5e-3, N * S).reshape(N, S)
    elif S > 1:         # (N, n_synapses): one tau_syn per neuron, shared by its synapses
        tau_s = np.repeat(np.reshape(np.broadcast_to(tau_s, (N, 1)), (N, 1)), S, axis=1)
    ctor = dict(shape=(N * S, N), dt=DT, has_rec=kw.get("rec", False),
                spike_generation_fn=spike_functions()[surrogate.split(".")[1]])
    if neuron == "LIFNeuronTorch":      # one state per neuron: shape (N,), no has_rec
        ctor = dict(shape=(N,), dt=DT, spike_generation_fn=ctor["spike_generation_fn"])
    if "max_spikes" in kw:
        ctor["max_spikes_per_dt"] = torch.tensor(float(kw["max_spikes"]))
    if kw.get("decays"):
        ctor["leak_mode"] = "decays"
    if kw.get("bitshifts"):
        ctor["leak_mode"] = "bitshifts"
    if "window" in kw:
        ctor["learning_window"] = kw["window"]
    with _float64_default():
        if neuron == "aLIFTorch":
            from rockpool.nn.modules.torch.ahp_lif_torch import aLIFTorch
            m = aLIFTorch(**ctor).double()
        elif neuron == "LIFBitshiftTorch":
            from rockpool.nn.modules.torch.lif_bitshift_torch import LIFBitshiftTorch
            m = LIFBitshiftTorch(**ctor).double()
        elif neuron == "LIFNeuronTorch":
            from rockpool.nn.modules.torch.lif_neuron_torch import LIFNeuronTorch
            m = LIFNeuronTorch(**ctor).double()
        else:
            m = lt.LIFTorch(**ctor).double()
    with torch.no_grad():
        if neuron == "aLIFTorch":          # tau_ahp, w_ahp: written in float64
            per_ahp = kw.get("ahp_per_neuron", False)
            m.tau_ahp.data = torch.as_tensor(np.linspace(3e-3, 9e-3, N) if per_ahp
                                             else np.full(N, TAU_AHP), dtype=torch.float64)
            m.w_ahp.data = torch.as_tensor(rng.uniform(-1.2, -0.2, N) if per_ahp
                                           else np.full(N, -0.9), dtype=torch.float64)
        if kw.get("bitshifts"):          # alpha = 1 - 2^-dash: dash = -log2(1 - alpha)
            m.dash_mem.data = torch.as_tensor(-np.log2(1 - np.exp(-DT / np.asarray(tau_m))),
                                              dtype=torch.float64)
            m.dash_syn.data = torch.as_tensor(-np.log2(1 - np.exp(-DT / np.asarray(tau_s))),
                                              dtype=torch.float64)
        elif kw.get("decays"):
            m.alpha.data = torch.as_tensor(np.exp(-DT / np.asarray(tau_m)), dtype=torch.float64)
            m.beta.data = torch.as_tensor(np.exp(-DT / np.asarray(tau_s)), dtype=torch.float64)
        else:
            m.tau_mem.data = torch.as_tensor(tau_m, dtype=torch.float64)
            if neuron != "LIFNeuronTorch":
                m.tau_syn.data = torch.as_tensor(tau_s, dtype=torch.float64)
        m.threshold.data = torch.as_tensor(theta, dtype=torch.float64)
        if bias is not None:
            m.bias.data = torch.as_tensor(bias, dtype=torch.float64)
        if kw.get("rec"):
            m.w_rec.data = torch.as_tensor(rng.normal(0, 0.4 / np.sqrt(N), (N, N * S)),
                                           dtype=torch.float64)
    return m


def _jax():
    import jax
    return jax


def _values(variant, N, seed, neuron):
    kw = VARIANTS[neuron][variant]
    rng = np.random.default_rng(seed + 17)
    per = kw.get("per_neuron", False)
    S = kw.get("synapses", 1)
    tau_s = (np.linspace(1.5e-3, 4e-3, N) if per else np.full(N, TAU_SYN))[:, None]
    if kw.get("per_synapse"):           # (N, n_synapses), every synapse its own
        tau_s = np.linspace(1.5e-3, 5e-3, N * S).reshape(N, S)
    elif S > 1:
        tau_s = np.repeat(tau_s, S, axis=1)
    return kw, dict(
        tau_m=np.linspace(3e-3, 6e-3, N) if per else np.full(N, TAU_MEM),
        tau_s=tau_s,
        theta=(np.linspace(0.7, 1.3, N) if kw.get("theta") == "per-neuron"
               else np.full(N, float(kw.get("theta", 1.0)))),
        bias=rng.uniform(-0.1, 0.3, N) if kw.get("bias") else np.zeros(N),
        w_rec=rng.normal(0, 0.4 / np.sqrt(N), (N, N * S)) if kw.get("rec") else None)


def make_jax_module(variant="defaults", N=6, seed=0):
    """A float64 ``LIFJax`` of ``variant`` (made under JAX's 64-bit switch,
    which is restored afterwards)."""
    jax = _jax()
    from rockpool.nn.modules.jax import LIFJax
    kw, v = _values(variant, N, seed, "LIFJax")
    ctor = dict(tau_mem=v["tau_m"], tau_syn=v["tau_s"], bias=v["bias"], threshold=v["theta"],
                dt=DT, has_rec=kw.get("rec", False), rng_key=np.array([0, seed], np.uint32))
    if kw.get("rec"):
        ctor["w_rec"] = v["w_rec"]
    if "max_spikes" in kw:
        ctor["max_spikes_per_dt"] = float(kw["max_spikes"])
    with jax.enable_x64(True):
        return LIFJax((N * kw.get("synapses", 1), N), **ctor)


class Rockpool(TorchAdapter):
    """Rockpool's ``LIFTorch``, ``LIFBitshiftTorch``, ``aLIFTorch`` and
    ``LIFNeuronTorch`` (``StepPWL`` / ``PeriodicExponential``), and ``LIFJax``."""

    name = "rockpool"
    neurons = NEURONS
    default_surrogate = DEFAULT_SURROGATE
    preset_case = ("LIFTorch", "max_spikes 3")
    quick = (("LIFTorch", "defaults", DEFAULT_SURROGATE),
             ("LIFTorch", "has_rec, max_spikes 2, bias", DEFAULT_SURROGATE),
             ("aLIFTorch", "has_rec, max_spikes 2, bias", DEFAULT_SURROGATE),
             ("LIFTorch", "max_spikes 3", "rockpool.PeriodicExponential"))
    option_defaults = {}

    def cases(self, quick=False) -> list:
        """The protocol's cases and, in full, PeriodicExponential with per-neuron
        thresholds (the surrogate at each neuron's threshold, M10)."""
        out = super().cases(quick)
        if not quick:
            out.append(self.case("LIFTorch", "threshold per neuron, has_rec, max_spikes 3, bias",
                                 "rockpool.PeriodicExponential"))
            out.append(self.case("LIFNeuronTorch", "max_spikes 3, taus per neuron, bias",
                                 "rockpool.PeriodicExponential"))
        return out

    def is_neuron(self, module):
        return type(module).__module__.startswith("rockpool.nn.modules") and \
            type(module).__name__ in ("LIFTorch", "LIFJax", "LIFExodus", "LIFBitshiftTorch",
                                      "LIFNeuronTorch", "aLIFTorch")

    def surrogate_of(self, module):
        name, _ = _spike_kind(module.spike_generation_fn)
        params = {"window": _value(module.learning_window),
                  "threshold": _value(module.threshold)}
        if name == "PeriodicExponential":
            params["max_spikes_per_dt"] = _value(module.max_spikes_per_dt)
        if np.ndim(params["threshold"]):
            th = np.asarray(params["threshold"])
            # a per-neuron threshold: each neuron's surrogate divides by its own, lifgrad's
            # surrogate_threshold='live' (M10); the preset's threshold is then replaced
            params["threshold"] = 1.0 if np.any(th != th[0]) else float(th[0])
        return f"rockpool.{name}", params

    @staticmethod
    def live_threshold(module):
        """A per-neuron threshold (not all equal): Rockpool's spike functions
        evaluate the surrogate with each neuron's threshold (M10)."""
        th = np.asarray(_value(module.threshold))
        return bool(th.ndim and np.any(th != th.reshape(-1)[0]))

    def layer_map(self, module) -> LayerMap:
        """lifgrad's :class:`LayerMap` of a constructed Rockpool ``LIFTorch`` or
        ``aLIFTorch``."""
        kind = type(module).__name__
        if kind == "LIFJax":
            return self._jax_map(module)
        if kind == "LIFNeuronTorch":
            return self._neuron_map(module)
        if kind == "LIFExodus":
            raise ValueError("module: Rockpool LIFExodus is not covered: it runs sinabs-exodus' "
                             "CUDA kernels, which need an NVIDIA GPU and the sinabs-exodus "
                             "package; none was available to write and test its map against")
        if kind not in ("LIFTorch", "aLIFTorch", "LIFBitshiftTorch"):
            raise ValueError(f"module: Rockpool {kind} is not covered yet: only LIFTorch, "
                             f"LIFBitshiftTorch, aLIFTorch, LIFNeuronTorch and LIFJax are "
                             f"mapped")
        shift = kind == "LIFBitshiftTorch"
        if shift and module.leak_mode != "taus":
            raise ValueError(f"leak_mode: LIFBitshiftTorch with leak_mode={module.leak_mode!r} "
                             f"is not covered: its alpha / beta properties round the time "
                             f"constants, which only leak_mode='taus' holds as parameters")
        S = int(module.n_synapses)
        if float(_value(module.noise_std)) != 0.0:
            raise ValueError("noise_std: a noisy membrane is random; only noise_std=0 is checked")
        if module.leak_mode not in ("taus", "decays", "bitshifts"):
            raise ValueError(f"leak_mode: {module.leak_mode!r} is not covered (taus, decays and "
                             f"bitshifts are)")
        name, keeps = _spike_kind(module.spike_generation_fn)
        N = module.size_out
        # the decays in float64 from the module's values (Rockpool computes them in
        # the parameters' dtype: a float32 module's alpha is float32)
        dt0 = float(_value(module.dt))
        if shift:       # alpha = 1 - 2^-max(round(log2(tau_mem/dt)), 0): the module's own
            alpha = np.asarray(_value(module.alpha), np.float64)
            beta = np.asarray(_value(module.beta), np.float64)
        elif module.leak_mode == "taus":
            alpha = np.exp(-dt0 / np.asarray(_value(module.tau_mem), np.float64))
            beta = np.exp(-dt0 / np.asarray(_value(module.tau_syn), np.float64))
        elif module.leak_mode == "bitshifts":        # alpha = 1 - 2^-dash (Xylo)
            alpha = 1 - 2.0 ** -np.asarray(_value(module.dash_mem), np.float64)
            beta = 1 - 2.0 ** -np.asarray(_value(module.dash_syn), np.float64)
        else:
            alpha = np.asarray(_value(module.alpha), np.float64)
            beta = np.asarray(_value(module.beta), np.float64)
        alpha = np.broadcast_to(alpha, (N,)).copy()
        rec = bool(module._has_rec)
        syn = _Synapses(beta, N, S, _value(module.w_rec) if rec else None)
        bank = syn.bank
        theta = np.broadcast_to(_value(module.threshold), (N,)).copy()
        bias = np.broadcast_to(_value(module.bias), (N,)).copy()
        sname, sparams = self.surrogate_of(module)
        max_spikes = _max_spikes(_value(module.max_spikes_per_dt))
        ahp = kind == "aLIFTorch"
        adapt = {}
        if ahp:     # iahp_t = gamma w_ahp a_t: the adaptation as a current (M9)
            g_ahp = np.broadcast_to(np.exp(-dt0 / np.asarray(_value(module.tau_ahp), np.float64)),
                                    (N,)).copy()
            w_ahp = np.broadcast_to(np.asarray(_value(module.w_ahp), np.float64), (N,)).copy()
            adapt = dict(rho=g_ahp, beta_a=-g_ahp * w_ahp)
        config = LIFConfig(reset="subtract", detach_reset=False, strict=False,
                           surrogate=_sgs.get(sname, **sparams), synaptic=bank is None,
                           decay_input=bank is None, max_spikes=max_spikes, theta_grad="ratio",
                           recurrent="all" if rec else None, adaptive=ahp,
                           adaptation="current" if ahp else "threshold",
                           surrogate_threshold="live" if self.live_threshold(module)
                           else "constant")
        params = LIFParams(alpha=alpha, theta=theta, gamma=alpha * theta, alpha_s=syn.alpha_s,
                           u_bias=bias, R=syn.R, **adapt)
        notes = list(_NOTES) + ([syn.note] if syn.note else [])
        if ahp:
            notes += list(_AHP_NOTES)
        if shift:
            notes += list(_BITSHIFT_NOTES)
        if _sgs.preset(sname).note:
            notes.append(f"{sname}: {_sgs.preset(sname).note}")
        if max_spikes is None:
            notes.append("max_spikes_per_dt = 2^16 (the default) is lifgrad's unbounded count "
                         "(max_spikes=None): 2^16 spikes in one step are not reached")
        limits = ()
        if not keeps:
            notes.append("Rockpool's stock spike functions return float32 (.float()): in a "
                         "float64 module the recurrence product then fails on mixed dtypes; "
                         "lifgrad.verify's copy runs a dtype-keeping subclass")
            limits = (Limit("float32 spike", F32_TOL, "Rockpool's spike functions return "
                                                      "float32"),)
        shape = {n: tuple(p.shape) for n, p in module.named_parameters()}
        dt = float(_value(module.dt))
        mode = module.leak_mode
        tau_m = _value(module.tau_mem) if mode == "taus" else None
        tau_s = None
        if mode == "taus":
            tau_s = _value(module.tau_syn)
            # per neuron (N,) with one synapse; a grid (N, S) with several
            tau_s = _synapse_grid(tau_s, N, S) if S > 1 else np.reshape(tau_s, -1)
        ln2 = np.log(2.0)

        def fit(g, name):
            target = shape[name]
            g = np.asarray(g, np.float64)
            if int(np.prod(target)) == 1:
                return np.reshape(np.sum(g), target)
            return np.reshape(g, target)

        def param_grads(g, I, tr):
            out = {}
            ga = np.asarray(g.alpha) + theta * np.asarray(g.gamma)
            gb, bcol = syn.dbeta(g, I, tr), syn.beta      # per synapse with several
            if shift:                 # alpha a step function of tau_mem: no gradient
                out["tau_mem"] = np.zeros(shape["tau_mem"])
                out["tau_syn"] = np.zeros(shape["tau_syn"])
            elif mode == "taus":
                out["tau_mem"] = fit(ga * alpha * dt / np.asarray(tau_m) ** 2, "tau_mem")
                out["tau_syn"] = fit(gb * bcol * dt / np.asarray(tau_s) ** 2, "tau_syn")
            elif mode == "bitshifts":     # d(1 - 2^-dash)/ddash = ln2 2^-dash = ln2 (1 - alpha)
                out["dash_mem"] = fit(ga * ln2 * (1 - alpha), "dash_mem")
                out["dash_syn"] = fit(gb * ln2 * (1 - bcol), "dash_syn")
            else:
                out["alpha"] = fit(ga, "alpha")
                out["beta"] = fit(gb, "beta")
            out["threshold"] = fit(np.asarray(g.theta) + alpha * np.asarray(g.gamma), "threshold")
            out["bias"] = fit(g.u_bias, "bias")
            if rec:
                out["w_rec"] = fit(syn.dw_rec(g), "w_rec")
            if ahp:                 # rho = gamma, beta_a = -gamma w_ahp (M9)
                gba = np.asarray(g.beta_a, np.float64)
                out["w_ahp"] = fit(-g_ahp * gba, "w_ahp")
                dgam = np.asarray(g.rho, np.float64) - w_ahp * gba
                out["tau_ahp"] = fit(dgam * g_ahp * dt / np.asarray(
                    np.broadcast_to(_value(module.tau_ahp), (N,)), np.float64) ** 2, "tau_ahp")
            return {k: v for k, v in out.items() if k in shape}
        return LayerMap(config, params, gain=1.0, bias=0.0, u0=None, post_reset=True,
                        param_grads=param_grads, notes=tuple(notes), limits=limits,
                        hidden_limits=limits, input_sum=S, pre=bank)

    def _neuron_map(self, module) -> LayerMap:
        """The LayerMap of a ``LIFNeuronTorch``: ``LIFTorch`` without the
        synaptic state, ``v = alpha v + x + bias``, the same spikes, reset and
        surrogates (its own ``StepPWL`` is lif_torch's code)."""
        if float(_value(module.noise_std)) != 0.0:
            raise ValueError("noise_std: a noisy membrane is random; only noise_std=0 is checked")
        N = module.size_out
        dt = float(_value(module.dt))
        tau_m = np.broadcast_to(np.asarray(_value(module.tau_mem), np.float64), (N,)).copy()
        alpha = np.exp(-dt / tau_m)
        theta = np.broadcast_to(_value(module.threshold), (N,)).astype(np.float64)
        bias = np.broadcast_to(_value(module.bias), (N,)).astype(np.float64)
        sname, sparams = self.surrogate_of(module)
        _, keeps = _spike_kind(module.spike_generation_fn)
        max_spikes = _max_spikes(_value(module.max_spikes_per_dt))
        config = LIFConfig(reset="subtract", detach_reset=False, strict=False,
                           surrogate=_sgs.get(sname, **sparams), max_spikes=max_spikes,
                           theta_grad="ratio",
                           surrogate_threshold="live" if self.live_threshold(module)
                           else "constant")
        params = LIFParams(alpha=alpha, theta=theta, gamma=alpha * theta, u_bias=bias)
        notes = [_NOTES[0], _NOTES[2], _NOTES[3], _NOTES[5],
                 "LIFNeuronTorch has no synaptic state: vmem = alpha vmem + x + bias, lifgrad's "
                 "one-state cell with u_bias = bias; the membrane in the loss is "
                 "record['vmem'], the post-reset state",
                 "LIFNeuronTorch's docstring: a spike when V_mem > V_thr = 0, one spike, a "
                 "reset of -theta; the code fires at V >= theta, emits floor(V/theta) spikes "
                 "up to max_spikes_per_dt and subtracts n theta",
                 "LIFNeuronTorch's StepPWL is a copy of lif_torch's (the same forward and "
                 "backward); the check runs lif_torch's dtype-keeping subclass"]
        if _sgs.preset(sname).note:
            notes.append(f"{sname}: {_sgs.preset(sname).note}")
        limits = ()
        if not keeps:
            limits = (Limit("float32 spike", F32_TOL, "Rockpool's spike functions return "
                                                      "float32"),)
        shape = {n: tuple(p.shape) for n, p in module.named_parameters()}

        def param_grads(g, I, tr):
            ga = np.asarray(g.alpha) + theta * np.asarray(g.gamma)
            out = {"tau_mem": ga * alpha * dt / tau_m ** 2,
                   "threshold": np.asarray(g.theta) + alpha * np.asarray(g.gamma),
                   "bias": np.asarray(g.u_bias)}
            return {k: (np.reshape(np.sum(v), shape[k]) if int(np.prod(shape[k])) == 1
                        else np.reshape(v, shape[k])) for k, v in out.items() if k in shape}
        return LayerMap(config, params, gain=1.0, bias=0.0, u0=None, post_reset=True,
                        param_grads=param_grads, notes=tuple(notes), limits=limits,
                        hidden_limits=limits)

    def _jax_map(self, module) -> LayerMap:
        """The LayerMap of a ``LIFJax``: the same cell as ``LIFTorch``; its
        surrogate is ``StepPWL`` with the window fixed at 0.5."""
        S = int(module.n_synapses)
        if float(module.noise_std) != 0.0:
            raise ValueError("noise_std: a noisy membrane is random; only noise_std=0 is checked")
        N = module.size_out
        dt = float(module.dt)
        tau_m = np.broadcast_to(np.asarray(module.tau_mem, np.float64), (N,)).copy()
        tau_s = np.asarray(module.tau_syn, np.float64)
        tau_s = _synapse_grid(tau_s, N, S) if S > 1 else \
            np.broadcast_to(tau_s.reshape(-1), (N,)).copy()
        theta = np.broadcast_to(np.asarray(module.threshold, np.float64), (N,)).copy()
        bias = np.broadcast_to(np.asarray(module.bias, np.float64), (N,)).copy()
        live = bool(np.any(theta != theta[0]))   # each neuron's surrogate divides by its own (M10)
        alpha = np.exp(-dt / tau_m)
        max_spikes = _max_spikes(module.max_spikes_per_dt)
        rec = bool(module.has_rec) if hasattr(module, "has_rec") else False
        w_rec = np.asarray(module.w_rec, np.float64)
        rec = rec or bool(np.any(w_rec != 0))
        syn = _Synapses(np.exp(-dt / tau_s), N, S, w_rec if rec else None)
        config = LIFConfig(reset="subtract", detach_reset=False, strict=False,
                           surrogate=_sgs.get("rockpool.StepPWL", window=0.5,
                                              threshold=1.0 if live else float(theta[0])),
                           synaptic=syn.bank is None, decay_input=syn.bank is None,
                           max_spikes=max_spikes, theta_grad="ratio",
                           recurrent="all" if rec else None,
                           surrogate_threshold="live" if live else "constant")
        params = LIFParams(alpha=alpha, theta=theta, gamma=alpha * theta, alpha_s=syn.alpha_s,
                           u_bias=bias, R=syn.R)
        notes = list(_NOTES[:4]) + [
            "LIFJax's docstring says a neuron spikes when V > V_thr and emits one spike; the "
            "code fires at V >= theta and emits floor(V/theta) spikes up to max_spikes_per_dt",
            "LIFJax's surrogate is StepPWL with the window fixed at 0.5 (no learning_window "
            "or spike_generation_fn argument)",
            "LIFJax casts its input to float32 (_auto_batch) whatever JAX's 64-bit switch "
            "says: the check gives it float32-exact inputs (the rest runs in float64) and "
            "dL/dinput comes back through that cast, rounded to float32",
            "the check runs LIFJax with JAX's 64-bit switch on inside its own calls only"] + \
            ([syn.note] if syn.note else [])
        limits = (Limit("float32 input", F32_TOL, "LIFJax casts its input to float32, so the "
                                                  "input gradient is rounded to float32"),)

        def param_grads(g, I, tr):
            ga = np.asarray(g.alpha) + theta * np.asarray(g.gamma)
            gb = syn.dbeta(g, I, tr)
            out = {"tau_mem": ga * alpha * dt / tau_m ** 2,
                   "tau_syn": (gb * syn.beta * dt / tau_s ** 2) if S > 1 else
                   (gb * syn.alpha_s * dt / tau_s ** 2)[:, None],
                   "threshold": np.asarray(g.theta) + alpha * np.asarray(g.gamma),
                   "bias": np.asarray(g.u_bias)}
            if rec:
                out["w_rec"] = syn.dw_rec(g)
            shapes = {k: np.shape(v) for k, v in module.parameters().items()}
            return {k: np.reshape(v, shapes[k]) if int(np.prod(shapes[k])) == np.size(v)
                    else np.reshape(np.sum(v), shapes[k]) for k, v in out.items() if k in shapes}
        return LayerMap(config, params, gain=1.0, bias=0.0, u0=None, post_reset=True,
                        param_grads=param_grads, notes=tuple(notes), limits=limits,
                        hidden_limits=limits, input_sum=S, pre=syn.bank)

    def _jax_run(self, module, I, A=None, Bm=None):
        """LIFJax on NumPy ``I`` ``(T, B, N)`` in float64 (JAX's 64-bit switch on
        for this call): spikes and record['vmem'], and with loss weights the
        gradients of ``sum A spk + sum Bm vmem`` by ``jax.grad``."""
        jax = _jax()
        import jax.numpy as jnp
        with jax.enable_x64(True):
            params = module.parameters()
            x = jnp.asarray(np.transpose(np.asarray(I, np.float64), (1, 0, 2)))

            def run(p, x):
                out, _, rec = module.set_attributes(p).reset_state()(x, record=True)
                return out, rec["vmem"]
            if A is None:
                out, vmem = run(params, x)
                return (np.transpose(np.asarray(out), (1, 0, 2)),
                        np.transpose(np.asarray(vmem), (1, 0, 2)))
            At = jnp.asarray(np.transpose(A, (1, 0, 2)))
            Bt = jnp.asarray(np.transpose(Bm, (1, 0, 2)))

            def loss(p, x):
                out, vmem = run(p, x)
                return jnp.sum(At * out) + jnp.sum(Bt * vmem), (out, vmem)
            (_, (out, vmem)), (gp, gx) = jax.value_and_grad(loss, argnums=(0, 1),
                                                            has_aux=True)(params, x)
        peer = {"spikes": np.transpose(np.asarray(out), (1, 0, 2)),
                "mem": np.transpose(np.asarray(vmem), (1, 0, 2)),
                "grad:input": np.transpose(np.asarray(gx), (1, 0, 2))}
        for k, v in gp.items():
            peer[f"grad:{k}"] = np.asarray(v, np.float64)
        return peer

    def peer_forward(self, module, I):
        if type(module).__name__ == "LIFJax":
            return self._jax_run(module, I)
        return super().peer_forward(module, I)

    def peer_gradients(self, built: Built) -> dict:
        if type(built.module).__name__ == "LIFJax":
            return self._jax_run(built.module, built.I, built.A, built.Bm)
        return super().peer_gradients(built)

    # -- a user's network -----------------------------------------------------------

    def model_chain(self, model):
        """The chain of a Rockpool ``Sequential`` (torch) of ``LinearTorch``
        layers each followed by a ``LIFTorch``: ``[ChainLink]``; ValueError
        naming what is not mapped.  A JAX ``Sequential`` is refused: every
        ``LIFJax`` (and ``LinearJax``) casts its input to float32, so a network's
        currents are rounded to float32 at every layer."""
        from rockpool.nn.combinators.sequential import SequentialMixin
        from rockpool.nn.modules import LinearTorch
        if not isinstance(model, SequentialMixin):
            raise TypeError(f"model: expected a Rockpool Sequential of LinearTorch and LIFTorch "
                            f"modules, got {type(model).__module__}.{type(model).__qualname__}")
        if type(model).__name__ != "TorchSequential":
            raise ValueError("model: a Rockpool JAX Sequential is not covered: LinearJax and "
                             "LIFJax cast their inputs to float32, so every layer's current is "
                             "rounded to float32 and no float64 check of the network is "
                             "possible (single LIFJax neurons are checked: lifgrad verify "
                             "rockpool)")
        pairs = self.chain_pairs(list(model._modules.items()),
                                 lambda x: isinstance(x, LinearTorch), "LinearTorch and LIFTorch")
        links = []
        for lname, linear, name, layer, m in pairs:
            W = _value(linear.weight).T.copy()
            has_b = "bias" in dict(linear.named_parameters())
            b = _value(linear.bias) if has_b else 0.0
            links.append(ChainLink(f"{lname}.weight", W, f"{lname}.bias" if has_b else None, b,
                                   name, m, transposed=True, label=name))
        return links

    def model_gradients(self, model, x, A, Bm) -> dict:
        """Rockpool's own autograd of ``sum A spk + sum Bm vmem`` (the last
        LIFTorch's) on a float64 copy of ``model`` (the same parameter values,
        dtype-keeping spike functions), ``x`` ``(T, B, n)``."""
        import copy
        torch = require_torch()
        work = copy.deepcopy(model)
        with _float64_default():
            work = work.double()
        orig = dict(model.named_parameters())
        with torch.no_grad():
            for n, p in work.named_parameters():
                p.data = orig[n].detach().to(torch.float64).clone()
        last = None
        for name, layer in work._modules.items():
            if self.is_neuron(layer):
                self.prepare(layer)
                last = name
        xt = torch.tensor(np.transpose(np.asarray(x, np.float64), (1, 0, 2)),
                          requires_grad=True)
        with _float64_default():
            out, _, rec = work.evolve(xt, record=True)
            spk = out.transpose(0, 1)
            mem = rec[last]["vmem"].transpose(0, 1)
            L = (torch.as_tensor(A) * spk).sum() + (torch.as_tensor(Bm) * mem).sum()
            L.backward()
        peer = {"spikes": spk.detach().numpy().astype(np.float64),
                "mem": mem.detach().numpy().astype(np.float64),
                "grad:input": np.transpose(xt.grad.numpy(), (1, 0, 2))}
        for n, p in work.named_parameters():
            peer[f"grad:{n}"] = (p.grad.numpy() if p.grad is not None
                                 else np.zeros(tuple(p.shape)))
        return peer

    # -- running --------------------------------------------------------------------

    def forward(self, module, x):
        """``(spikes, record['vmem'])`` ``(T, B, N)`` from a reset state: ``x``
        ``(T, B, n)`` is given to Rockpool as ``(B, T, n)``."""
        torch = require_torch()
        if not (isinstance(x, torch.Tensor) and x.ndim == 3):
            raise ValueError("I: expected a torch tensor of shape (T, B, N)")
        with _float64_default():          # reset_state() makes its states in the default dtype
            module.reset_state()
            out, _, rec = module.evolve(x.transpose(0, 1), record=True)
        return out.transpose(0, 1), rec["vmem"].transpose(0, 1)

    def call_input(self, module, args):
        x = args[0]
        return x.transpose(0, 1)

    def call_outputs(self, module, output):
        """``(spikes, vmem)`` ``(T, B, N)`` of one call of a LIFTorch inside a torch
        model (``prepare`` made it record its membrane)."""
        return output.transpose(0, 1), module._record_dict["vmem"].transpose(0, 1)

    def prepare(self, module):
        fn = module.spike_generation_fn
        try:
            name, keeps = _spike_kind(fn)
            if not keeps:
                module.spike_generation_fn = spike_functions()[name].apply
        except ValueError:
            pass
        module._record = True             # forward() then keeps record['vmem']
        with _float64_default():          # (on lifgrad's float64 copy)
            module.reset_state()

    def build(self, case) -> Built:
        if case.neuron == "LIFJax":
            if case.surrogate != "rockpool.StepPWL":
                raise ValueError("surrogate: LIFJax has StepPWL only")
            module = make_jax_module(case.variant, N=case.N, seed=case.seed)
        else:
            module = make_module(case.variant, case.surrogate, N=case.N, seed=case.seed,
                                 neuron=case.neuron)
        kw = VARIANTS[case.neuron][case.variant]
        # the drive for a firing rate of ~0.2-0.4 (with dt = 1e-3 the synapse sums ~3 steps)
        mean, std = (0.35, 0.6) if not kw.get("max_spikes") or kw["max_spikes"] == 1 \
            else (0.9, 1.0)
        if "max_spikes" not in kw:
            mean, std = 0.6, 0.9
        _, I, A, Bm = problem(case.seed, case.T, case.B, case.N, mean=mean, std=std)
        S = kw.get("synapses", 1)
        if S > 1:       # N S input channels, S summed into each neuron
            I = np.random.default_rng(case.seed + 5).normal(
                mean / S, std / np.sqrt(S), (case.T, case.B, case.N * S))
        if case.neuron == "LIFJax":
            I = I.astype(np.float32).astype(np.float64)      # LIFJax casts it to float32
        return Built(case, module, I, A, Bm, (case.neuron, case.variant, case.surrogate))

    # -- LIFTorch and LIFJax, one neuron in two backends (lifgrad verify backends) ----

    backend_pair = ("LIFTorch", "LIFJax")
    backend_variants = tuple(v for v, kw in VARIANTS["LIFJax"].items() if "synapses" not in kw)

    def backend_unavailable(self) -> str:
        try:
            _jax()
        except ImportError as e:
            return f"LIFJax needs JAX ({e})"
        return ""

    def backend_builds(self, variant, seed=0, T=20, B=3, N=6) -> tuple:
        """A ``LIFJax`` of ``variant`` and its ``LIFTorch`` twin (float64, the
        dtype-keeping StepPWL with LIFJax's window 0.5), every parameter copied
        from the JAX module; one float32-exact input (LIFJax casts to float32)."""
        torch = require_torch()
        jm = make_jax_module(variant, N=N, seed=seed)
        kw = VARIANTS["LIFJax"][variant]
        ctor = dict(shape=(N, N), dt=float(jm.dt), has_rec=bool(kw.get("rec", False)),
                    spike_generation_fn=spike_functions()["StepPWL"], learning_window=0.5)
        if "max_spikes" in kw:
            ctor["max_spikes_per_dt"] = torch.tensor(float(kw["max_spikes"]))
        with _float64_default():
            tm = _rp().LIFTorch(**ctor).double()
        with torch.no_grad():
            for name in ("tau_mem", "tau_syn", "threshold", "bias") + (("w_rec",) if
                                                                         kw.get("rec") else ()):
                src = np.array(getattr(jm, name), np.float64)        # a writable copy
                dst = getattr(tm, name)
                src = (src.reshape(tuple(dst.shape)) if src.size == dst.numel()
                       else np.broadcast_to(src, tuple(dst.shape)).copy())
                dst.data = torch.as_tensor(src, dtype=torch.float64)
        mean, std = (0.6, 0.9) if "max_spikes" not in kw else (0.9, 1.0)
        _, I, A, Bm = problem(seed, T, B, N, mean=mean, std=std)
        I = I.astype(np.float32).astype(np.float64)
        case_t = self.case("LIFTorch", "defaults", seed=seed, T=T, B=B, N=N)
        case_j = self.case("LIFJax", variant, seed=seed, T=T, B=B, N=N)
        return (Built(case_t, tm, I, A, Bm, ("LIFTorch", variant, "rockpool.StepPWL")),
                Built(case_j, jm, I, A, Bm, ("LIFJax", variant, "rockpool.StepPWL")))


ADAPTER = Rockpool()
