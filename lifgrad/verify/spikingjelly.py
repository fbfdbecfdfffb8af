"""SpikingJelly 2.0.0 adapter: map its neurons onto lifgrad's cell and check them.

``ADAPTER`` (:class:`SpikingJelly`) implements :mod:`lifgrad.verify.protocol`.

SpikingJelly's nodes (``spikingjelly.activation_based.neuron``) charge a
potential ``H``, fire at ``H >= theta`` (non-strict, lifgrad ``strict=False``),
and reset *immediately*; the state they carry and return (``v``, ``v_seq``) is
the post-reset potential ``V``.  With ``V_r`` the hard-reset value
(``R0 = 0`` for the soft reset ``v_reset=None``)::

    IFNode                     H_t = V_{t-1} + X_t
    LIFNode, decay_input       H_t = V_{t-1} + (X_t - (V_{t-1} - R0)) / tau
    LIFNode, no decay_input    H_t = V_{t-1} - (V_{t-1} - R0) / tau + X_t
    ParametricLIFNode          the same with 1/tau replaced by k = sigmoid(w)
    S_t = (H_t - theta >= 0)   surrogate of the module on H_t - theta
    hard:  V_t = S_t V_r + (1 - S_t) H_t      soft:  V_t = H_t - S_t theta
    (S_t detached in the reset when detach_reset=True; V_0 = V_r, or 0 if soft)

lifgrad's pre-reset membrane is ``u_t = H_t``.  Writing ``c`` for the inverse
time constant (``1/tau``, ``k``, or 0 for IF) this is lifgrad's cell with

    alpha = 1 - c,  I_lg = gain X + bias,  gain = c (decay_input) or 1,
    bias = c R0,  u0 = V_r (hard) or 0 (soft),
    hard: reset 'zero', u_reset = V_r;   soft: reset 'subtract', gamma = alpha theta

(the soft reset is applied before the decay of the next step, so the amount
lifgrad subtracts from ``u_{t+1}`` is the decayed ``(1 - c) theta``; for IF it
is ``theta``).  ``ParametricLIFNode``'s one learnable ``w`` enters through
alpha, the gain, the bias and gamma; its gradient is (chain rule, ``g`` the
:class:`~lifgrad.functional.LIFGrads`, ``g.I`` with respect to ``I_lg``)::

    dL/dk = -g.alpha + sum_t g.I_t (X_t + R0)  [decay_input; else sum_t g.I_t R0]
            - theta g.gamma                   [soft reset only]
    dL/dw = k (1 - k) dL/dk

The check runs SpikingJelly in float64 (``.double()``), multi-step mode with
``store_v_seq=True``; in float64 SpikingJelly takes its pure-Torch reference
loop (``spikingjelly/_ops/<neuron>/reference.py``) that calls the surrogate
module, so its gradient is plain autograd (the fused ops only take
fp32/fp16/bf16).

The membrane in the loss.  A case puts the loss on SpikingJelly's returned
post-reset ``v_seq`` (``post_reset=True``): ``H - theta s`` (soft) or
``s V_r + (1 - s) H`` (hard), with the spike detached there too under
``detach_reset`` (``lifgrad.verify.common.reported_membrane``).  The case
option ``mem='h'`` puts it on the pre-reset ``H_t`` instead, recomputed from
SpikingJelly's own ``v_seq[t-1]`` with its charge expression (bitwise equal
to its ``H``).
See ``derivations/peers.md (SpikingJelly)``.
"""
from __future__ import annotations

import math

import numpy as np

from .. import surrogates as _sgs
from ..config import LIFConfig, LIFParams
from .common import LayerMap, problem, require_torch
from .protocol import Built
from .torchpeer import TorchAdapter, cuda_backend_unavailable

__all__ = ["ADAPTER", "SpikingJelly", "NEURONS", "VARIANTS", "SURROGATE_PARAMS",
           "DEFAULT_SURROGATE", "make_module"]

DEFAULT_SURROGATE = "spikingjelly.Sigmoid"

_VR = -0.1  # the nonzero reset value of the 'v_reset=-0.1' variants

# The variants of each node.  A variant's name says its constructor keywords
# (:func:`_variant_kwargs`): 'decay_input' / 'no decay_input', 'hard' (v_reset=0)
# / 'soft' (v_reset=None), 'v_reset=-0.1', 'detach' (detach_reset=True).
NEURONS = {
    "IFNode": ("hard", "hard detach", "soft", "soft detach", "hard v_reset=-0.1"),
    "LIFNode": ("decay_input hard", "decay_input hard detach", "decay_input soft",
                "decay_input soft detach", "no decay_input hard", "no decay_input hard detach",
                "no decay_input soft", "no decay_input soft detach",
                "decay_input hard v_reset=-0.1", "no decay_input hard v_reset=-0.1 detach"),
    "ParametricLIFNode": ("decay_input hard", "decay_input soft",
                          "decay_input hard v_reset=-0.1", "decay_input soft detach",
                          "no decay_input soft"),
}

# the time constant's keyword and its value with / without decay_input
_TAU = {"LIFNode": ("tau", 2.0, 3.0), "ParametricLIFNode": ("init_tau", 2.5, 3.0)}


def _variant_kwargs(neuron, variant):
    """The constructor keywords (besides the surrogate, step_mode, store_v_seq)
    a variant's name says."""
    words = variant.split()
    kw = {}
    if neuron in _TAU:
        decay = words[0] != "no"
        key, with_decay, without = _TAU[neuron]
        kw[key] = with_decay if decay else without
        kw["decay_input"] = decay
    kw["v_reset"] = None if "soft" in words else (_VR if "v_reset=-0.1" in words else 0.0)
    if "detach" in words:
        kw["detach_reset"] = True
    return kw


# variant name -> constructor keywords
VARIANTS = {n: {v: _variant_kwargs(n, v) for v in vs} for n, vs in NEURONS.items()}

# Parameters the surrogate cases construct on the SpikingJelly side (the
# preset's own names).  Non-default where the default would make the check
# weak (a zero leak, a single Fourier term).
SURROGATE_PARAMS = {
    "spikingjelly.Sigmoid": dict(alpha=4.0),
    "spikingjelly.ATan": dict(alpha=2.0),
    "spikingjelly.PiecewiseQuadratic": dict(alpha=1.0),
    "spikingjelly.PiecewiseExp": dict(alpha=1.5),
    "spikingjelly.SoftSign": dict(alpha=2.0),
    "spikingjelly.SuperSpike": dict(alpha=1.5),
    "spikingjelly.NonzeroSignLogAbs": dict(alpha=1.0),
    "spikingjelly.Erf": dict(alpha=2.0),
    "spikingjelly.PiecewiseLeakyReLU": dict(w=0.5, c=0.05),
    "spikingjelly.SquarewaveFourierSeries": dict(n=4, T_period=8.0),
    "spikingjelly.S2NN": dict(alpha=4.0, beta=0.7),
    "spikingjelly.QPseudoSpike": dict(alpha=2.5),
    "spikingjelly.LeakyKReLU": dict(leak=0.1, k=0.8),
    "spikingjelly.FakeNumericalGradient": dict(alpha=0.3),
    "spikingjelly.LogTailedReLU": dict(alpha=0.05),
    "spikingjelly.Rect": dict(alpha=1.0),
    "spikingjelly.DeterministicPass": dict(),
}

# Input statistics per neuron that give a healthy spike rate (LIF inputs are
# scaled by 1/tau with decay_input).
_INPUT = {"IFNode": (0.35, 0.6), "LIFNode": (0.7, 1.0), "ParametricLIFNode": (0.7, 1.0)}
_INPUT_NO_DECAY = (0.3, 0.6)

_COMMON_NOTES = (
    "SpikingJelly fires at H >= theta (lifgrad strict=False); lifgrad forms u = alpha*V + "
    "(gain*X + bias) while SpikingJelly evaluates V + (X - (V - V_r))/tau, equal up to "
    "rounding, so spikes agree unless H lies within an ulp of theta (not met by random "
    "inputs); the same holds at the window edges of Rect, PiecewiseQuadratic, "
    "PiecewiseLeakyReLU, LeakyKReLU, S2NN, LogTailedReLU",
    "the returned membrane (v, v_seq) is post-reset; the soft reset is immediate, so "
    "lifgrad's subtract reset needs gamma = (1 - 1/tau) theta, not theta",
    "detach_reset also detaches the spike inside the returned post-reset membrane",
    "store_v_seq's docs say 'the voltage at each time-step'; it is the post-reset V",
    "in float64 SpikingJelly runs its pure-Torch reference loop with the surrogate module "
    "(the fused ops take only fp32/fp16/bf16 with one of seven built-in surrogates)",
)


def _sj():
    require_torch()
    import spikingjelly.activation_based as ab
    from spikingjelly.activation_based import functional, neuron, surrogate
    return ab, neuron, surrogate, functional


def _kind(module):
    _, neuron, _, _ = _sj()
    for name in ("IFNode", "LIFNode", "ParametricLIFNode"):
        if type(module) is getattr(neuron, name):
            return name
    raise ValueError(f"module: expected a SpikingJelly IFNode, LIFNode or ParametricLIFNode, "
                     f"got {type(module).__module__}.{type(module).__qualname__}")


def _inv_tau(module, kind):
    """c = 1/tau (LIF), sigmoid(w) (PLIF) as a float64 number, 0 for IF."""
    if kind == "IFNode":
        return 0.0
    if kind == "LIFNode":
        return 1.0 / module.tau
    w = float(module.w.detach().double())
    return 1.0 / (1.0 + math.exp(-w))


def _make_surrogate(name, params=None):
    _, _, sj_surrogate, _ = _sj()
    if name not in _sgs.PRESETS or not name.startswith("spikingjelly."):
        raise ValueError(f"surrogate: expected a SpikingJelly preset "
                         f"({', '.join(sorted(SURROGATE_PARAMS))}), got {name!r}")
    if params is None:
        params = SURROGATE_PARAMS.get(name, {})
    return getattr(sj_surrogate, name.split(".", 1)[1])(**params)


def make_module(neuron, variant, surrogate=DEFAULT_SURROGATE):
    """A float64 multi-step SpikingJelly node of ``neuron``/``variant`` (see
    :data:`VARIANTS`) with the preset surrogate ``surrogate``."""
    _, sj_neuron, _, _ = _sj()
    if neuron not in VARIANTS:
        raise ValueError(f"neuron: expected one of {', '.join(VARIANTS)}, got {neuron!r}")
    if variant not in VARIANTS[neuron]:
        raise ValueError(f"variant: expected one of {', '.join(VARIANTS[neuron])} for "
                         f"{neuron}, got {variant!r}")
    kw = dict(VARIANTS[neuron][variant])
    return getattr(sj_neuron, neuron)(surrogate_function=_make_surrogate(surrogate),
                                      v_threshold=1.0, step_mode="m", store_v_seq=True,
                                      **kw).double()


def _charge(module, kind, x, v):
    """SpikingJelly's charge H_t from V_{t-1}, same expression and operation order as
    ``spikingjelly/_ops/<neuron>/reference.py`` (so bitwise equal to its H)."""
    R0 = 0.0 if module.v_reset is None else module.v_reset
    if kind == "IFNode":
        return v + x
    if kind == "LIFNode":
        if module.decay_input:
            return v + (x - (v - R0)) / module.tau
        return v - (v - R0) / module.tau + x
    q = module.w.sigmoid()
    return v + (x - (v - R0)) * q if module.decay_input else v - (v - R0) * q + x


def _pre_reset(module, I, v_seq):
    """H_t for every step, recomputed from SpikingJelly's own V_{t-1} (differentiable)."""
    torch = require_torch()
    kind = _kind(module)
    v0 = torch.full_like(I[0], 0.0 if module.v_reset is None else module.v_reset)
    prev = torch.cat([v0[None], v_seq[:-1]])
    return _charge(module, kind, I, prev)


class SpikingJelly(TorchAdapter):
    """SpikingJelly's ``IFNode``, ``LIFNode`` and ``ParametricLIFNode``.

    Case option ``mem``: which membrane the loss reads, ``'v'`` (SpikingJelly's
    post-reset ``v_seq``, the report's variant ends in ``[mem=v]``) or ``'h'``
    (the pre-reset potential)."""

    name = "spikingjelly"
    neurons = NEURONS
    default_surrogate = DEFAULT_SURROGATE
    preset_case = ("LIFNode", "decay_input hard")
    quick = (("IFNode", "soft", DEFAULT_SURROGATE),
             ("LIFNode", "decay_input hard", DEFAULT_SURROGATE),
             ("LIFNode", "decay_input soft detach", DEFAULT_SURROGATE),
             ("LIFNode", "decay_input hard", "spikingjelly.ATan"),
             ("ParametricLIFNode", "decay_input soft", DEFAULT_SURROGATE))
    option_defaults = {"mem": "v"}

    def is_neuron(self, module):
        _, neuron, _, _ = _sj()
        bases = tuple(getattr(neuron, n) for n in ("BaseNode", "SimpleBaseNode")
                      if hasattr(neuron, n))
        return isinstance(module, bases) or type(module).__module__.startswith(
            "spikingjelly.activation_based.neuron")

    def surrogate_of(self, module):
        """``(preset name, {peer parameter: value})`` of a SpikingJelly surrogate module
        (or of a neuron's ``surrogate_function``); ``ValueError`` if lifgrad has no
        exact preset for it."""
        _, _, sj_surrogate, _ = _sj()
        sf = getattr(module, "surrogate_function", module)
        if sf is None:          # SpikingJelly's functional default
            return DEFAULT_SURROGATE, dict(_sgs.preset(DEFAULT_SURROGATE).defaults)
        cls = type(sf)
        name = f"spikingjelly.{cls.__name__}"
        if cls.__module__ != sj_surrogate.__name__ or name not in _sgs.PRESETS:
            why = _sgs.DEVIATIONS.get(name)
            ours = sorted(n.split('.', 1)[1] for n in _sgs.PRESETS
                          if n.startswith('spikingjelly.'))
            raise ValueError(
                f"surrogate_function: {cls.__module__}.{cls.__qualname__} has no lifgrad preset"
                f"{' (' + why + ')' if why else ''}; supported: {', '.join(ours)}")
        if not getattr(sf, "spiking", True):
            raise ValueError(f"surrogate_function: {cls.__name__}(spiking=False) emits its "
                             f"primitive instead of Heaviside spikes; lifgrad's forward='smooth' "
                             f"is a different family normalisation, not supported by this adapter")
        params = {}
        for pname, _ in _sgs.preset(name).defaults:
            val = getattr(sf, pname)
            if hasattr(val, "detach"):           # a tensor parameter (not learned here)
                if val.numel() != 1:
                    raise ValueError(f"surrogate_function: {cls.__name__}.{pname} must be a "
                                     f"scalar, got shape {tuple(val.shape)}")
                val = float(val.detach())
            if isinstance(val, bool) or not isinstance(val, (int, float)):
                raise ValueError(f"surrogate_function: {cls.__name__}.{pname} must be a number, "
                                 f"got {val!r}")
            params[pname] = val
        return name, params

    def layer_map(self, module) -> LayerMap:
        """lifgrad's :class:`LayerMap` of a constructed SpikingJelly IF/LIF/PLIF node."""
        kind = _kind(module)
        if getattr(module, "_neuron_precision", None) is not None:
            raise ValueError("module: explicit neuron precision (Triton mixed precision) is not "
                             "supported; run the module in float64")
        sname, sparams = self.surrogate_of(module)
        sg = _sgs.get(sname, **sparams)
        theta = float(module.v_threshold)
        soft = module.v_reset is None
        R0 = 0.0 if soft else float(module.v_reset)
        c = _inv_tau(module, kind)
        decay_input = kind == "IFNode" or bool(module.decay_input)
        alpha = 1.0 - c
        gain = c if (kind != "IFNode" and decay_input) else 1.0
        bias = c * R0
        detach = bool(module.detach_reset)
        if soft:
            config = LIFConfig(reset="subtract", detach_reset=detach, strict=False, surrogate=sg)
            params = LIFParams(alpha=alpha, theta=theta, gamma=alpha * theta)
        else:
            config = LIFConfig(reset="zero", detach_reset=detach, strict=False, surrogate=sg)
            params = LIFParams(alpha=alpha, theta=theta, u_reset=R0)
        notes = list(_COMMON_NOTES)
        if _sgs.preset(sname).note:
            notes.append(f"{sname}: {_sgs.preset(sname).note}")
        param_grads = None
        if kind == "ParametricLIFNode":
            k = c
            notes.append("ParametricLIFNode multiplies by k = sigmoid(w) instead of dividing by "
                         "tau (not bitwise equal to LIFNode with tau = 1/k); its w is one scalar "
                         "per layer; the docstring's 1/tau is k")

            def param_grads(g, I, tr, k=k, R0=R0, theta=theta, soft=soft, di=decay_input):
                dI = np.asarray(g.I)
                dk = -float(np.sum(g.alpha))
                dk += float(np.sum(dI * (np.asarray(I) + R0))) if di else float(np.sum(dI)) * R0
                if soft:
                    dk -= theta * float(np.sum(g.gamma))
                return {"w": np.asarray(dk * k * (1.0 - k))}
        return LayerMap(config, params, gain=gain, bias=bias, u0=R0, post_reset=True,
                        param_grads=param_grads, notes=tuple(notes))

    def forward(self, module, x):
        """``(spikes, v_seq)`` (the post-reset membrane of every step) from a fresh
        state, in multi-step mode."""
        torch = require_torch()
        _, _, _, functional = _sj()
        if not (isinstance(x, torch.Tensor) and x.dtype == torch.float64 and x.ndim == 3):
            raise ValueError("I: expected a float64 torch tensor of shape (T, B, N)")
        functional.reset_net(module)
        step_mode, store = module.step_mode, module.store_v_seq
        module.step_mode, module.store_v_seq = "m", True
        try:
            spk = module(x)
            v_seq = module.v_seq
        finally:
            module.step_mode, module.store_v_seq = step_mode, store
        if spk.dtype != torch.float64 or v_seq.dtype != torch.float64:
            raise RuntimeError(f"SpikingJelly returned {spk.dtype}/{v_seq.dtype}, expected "
                               f"float64 (is the module .double()?)")
        return spk, v_seq

    def call_outputs(self, module, output):
        return output, (module.v_seq if module.step_mode == "m" else module.v)

    def prepare(self, module):
        module.store_v_seq = True
        module.reset()

    def build(self, case) -> Built:
        mem = self.option(case, "mem")
        if mem not in ("v", "h"):
            raise ValueError(f"mem: expected 'v' or 'h', got {mem!r}")
        module = make_module(case.neuron, case.variant, case.surrogate)
        kw = VARIANTS[case.neuron][case.variant]
        mean, std = _INPUT[case.neuron] if kw.get("decay_input", True) else _INPUT_NO_DECAY
        _, I, A, Bm = problem(case.seed, case.T, case.B, case.N, mean=mean, std=std)
        return Built(case, module, I, A, Bm,
                     (case.neuron, f"{case.variant} [mem={mem}]", case.surrogate))

    def case_outputs(self, built, x):
        spk, v_seq = self.forward(built.module, x)
        if self.option(built.case, "mem") == "h":
            return spk, _pre_reset(built.module, x, v_seq)
        return spk, v_seq

    def check(self, built, m=None):
        """As :meth:`Adapter.check`; with ``mem='h'`` the loss reads the pre-reset
        membrane, so the mapping's ``post_reset`` is off."""
        m = self.layer_map(built.module) if m is None else m
        if self.option(built.case, "mem") == "h":
            m = m._replace(post_reset=False)
        return super().check(built, m)


    # -- two backends (lifgrad verify backends): the CUDA one needs a GPU ----------

    backend_pair = ("torch", "cupy")

    def backend_unavailable(self) -> str:
        return cuda_backend_unavailable(self.backend_pair[1], "cupy")


ADAPTER = SpikingJelly()
