"""Spyx 1.0.0 adapter (JAX, Flax NNX): map its neurons onto lifgrad's cell and check them.

``ADAPTER`` (:class:`Spyx`) implements :mod:`lifgrad.verify.protocol` with
NumPy at the boundary: the neurons are ``flax.nnx.Module`` s, run over time
by a ``jax.lax.scan`` of their own step (``module(x_t, state) -> (out,
state)``, what ``spyx.nn.run`` scans), and the framework's gradients are
``jax.grad`` of the loss with respect to the module's ``nnx.Param`` s and the
input.

**float64.**  JAX computes in float32 unless ``jax_enable_x64`` is on.  The
adapter turns it on (``jax.config.update("jax_enable_x64", True)``) when one
of its functions first runs (building a case, mapping, running or comparing a
module): a **process-wide** JAX switch that stays on afterwards (later JAX
code in the process creates float64 arrays by default).  Importing lifgrad
(or this module) changes nothing.  A user's model created in float32 is
checked on a float64 copy of its parameters (the model is not changed).

What Spyx computes (``spyx/nn.py``), per step, from the state ``V`` (zero at
rest), ``beta = clip(beta, 0, 1)``, ``act`` the activation (forward
``heaviside(x) = x > 0``)::

    IF, LIF        s = act(V - theta);  V = beta V + x - s theta         (IF: beta = 1)
    RIF, RLIF      s = act(V - theta);  V = beta V + x + s @ W - s theta (W = recurrent_w; RIF:
                                                                           beta = 1)
    CuBaLIF        s = act(V - theta);  V = V - s theta;  I = alpha I + x;  V = beta V + I
    RCuBaLIF       the same with I = alpha I + x + s @ W
    PSU_LIF        V = beta V + x;  s = act(V - theta)                        (no reset)
    AssociativeLIF PSU_LIF (an alias)
    LI             V = beta V + x;  out = V                                   (no spikes)
    ALIF           s = act(V - theta - T);  V = beta V + x - s (theta + T);
                   T = gamma T + (1 - gamma) s

The spike of the first six is read from the state **before** the step's
update: with lifgrad's ``u_t = V_t`` it is ``H(u_{t-1} - theta)``, the
cell's spike of the previous step, so the output is one step late: lifgrad's
``LIFConfig(delay_output=True)`` (M5), ``y_t = v_{t-1}``, ``y_0 = 0``, with
the cell itself lifgrad's standard one: ``alpha = beta``, the subtract reset
not detached, ``gamma = theta`` (tied), ``strict=True`` (the ``spyx.*``
presets carry it).  Recurrence: ``s @ W`` is ``sum_i s_i W[i, j]``, lifgrad's
``R v_{t-1}`` with ``R = W^T`` (``recurrent='all'``, (R1)).  CuBaLIF removes
``s theta`` *before* the decay: ``V_t = beta V_{t-1} + I_t - beta theta
s_t``, lifgrad's synaptic cell (S1) with ``alpha_s = alpha``, ``alpha =
beta`` and a free ``gamma = beta theta``; RCuBaLIF adds ``s @ W`` to the
synaptic current, as lifgrad's (R1) does (``J_t = I_t + R v_{t-1}``).
PSU_LIF / AssociativeLIF spike on the updated state: ``reset='none'``, no
delay.  LI is lifgrad's readout (``reset='none'``, surrogate ``zero``,
``theta = 0``): it emits no spikes, the check reads its output as the
membrane and reports zero spikes (``spike_scale = 0``).  The membrane of the
loss is ``V`` after the step (lifgrad's ``u_t``, pre-reset in lifgrad's
sense: ``post_reset=False``).

A user's model (``compare(model, x)``): :meth:`Spyx.model_chain` maps a
``spyx.nn.Sequential`` of ``flax.nnx.Linear`` layers and neurons
(``spyx.nn.Flatten`` anywhere, ``LI`` only last) and
:meth:`Spyx.model_gradients` runs it by its own ``__call__`` scanned over
time.  The gradients are jitted once per graph (the module's static
structure: class, threshold, activation) and shapes, and reused.

Chain rules to Spyx's parameters (``d clip`` the derivative of ``jnp.clip``:
1 inside ``(0, 1)``, 0 outside, and **1/2 at 0 and 1**, JAX's convention for
``clip``'s bound)::

    dL/dbeta        = g.alpha d clip(beta)                          (LIF, RLIF, PSU_LIF, LI)
    dL/dbeta        = (g.alpha + theta g.gamma) d clip(beta)        (CuBaLIF, RCuBaLIF:
                                                                     gamma = beta theta)
    dL/dalpha       = g.alpha_s d clip(alpha)                       (CuBaLIF, RCuBaLIF)
    dL/drecurrent_w = g.R^T
    dL/dgamma       = (g.rho - g.beta_a) d clip(gamma)              (ALIF: rho = gamma,
                                                                     beta_a = 1 - gamma)

ALIF is lifgrad's adaptive cell read one step late: with ``T_t = (1 - gamma)
a_t`` its adaptation ``T = gamma T + (1 - gamma) s`` is (L1) with ``rho =
gamma`` and ``beta_a = 1 - gamma`` (an exact reparametrisation: the chain rule
above), the threshold ``theta + T`` is (L2), and the reset removes that very
threshold, ``s (theta + T)``, with its gradient into ``T``: lifgrad's
``reset_by_threshold`` (M7) with the tied factor 1.  The membrane of the loss
is the ``V`` half of its state ``[V, T]``.

``threshold`` is a Python number in Spyx, or a per-neuron array where
``spyx.nir`` builds the neuron (both mapped); it is not learned: no gradient.
The surrogate is read from the activation's closure (the factories of
``spyx.axn``: ``custom(bwd, heaviside)`` with ``bwd`` one of ``superspike``,
``arctan``, ``tanh``, ``boxcar``, ``triangular``); ``spyx.axn.custom`` and
any other function are refused (``spyx.custom`` is a documented deviation:
its default backward is the identity).

``spyx.experimental.ParallelResetLIF``: its ``__call__`` is ``LIF``'s step
(mapped as ``LIF``); its ``parallel(x, K)`` solves the hard-reset recurrence
by a fixed-point iteration over spikes (``s^(k) = act(U - R(s^(k-1)) -
theta)``, ``U`` and ``R`` leaky associative scans), and ``jax.grad``
differentiates the K unrolled iterations.  With ``K = T`` the spikes and the
gradients equal the sequential recurrence's (the case ``parallel(K=T)``): the
Jacobian of the iteration is strictly lower triangular in time, so ``T``
unrolled iterations sum its Neumann series exactly, with every surrogate
factor at the converged membrane.  With fewer iterations the spikes converge
first and the gradient later: on the standard problem (T = 20) ``K = 10``
reproduces every spike while the gradients still differ by 3.3e-4, and the
default ``K = 3`` misses 18 of 360 spikes (gradients off by 58 %).

``spyx.experimental.stochastic``'s ``StochasticAssociativeLIF``, ``SPSN``
and ``StochasticAssociativeCuBaLIF`` (called on the whole sequence with a
JAX key, ``module(key, x)``): reset-free, Bernoulli spikes drawn with ``p =
max_prob sigmoid(k (V - theta))`` (the refractory form ``max(cos(2 pi theta
(V - theta)) sigmoid(k (V - theta)), 0)``) and a backward that multiplies by
``p`` itself rather than ``dp/dV``: lifgrad's stochastic forward with
``spike_probability='surrogate'`` (M13), the presets
``spyx.sigmoid_bernoulli`` / ``spyx.refractory_sigmoid_bernoulli``, and the
uniform draws behind ``jax.random.bernoulli`` with the check's key
(``BERNOULLI_KEY``) given to both sides (``LayerMap.draws``).  Checked as
single layers: a ``spyx.nn.Sequential`` cannot call them.

Not mapped (``layer_map`` refuses them, naming what lifgrad lacks): the
phasor and resonate-and-fire neurons (complex states), SSMs.
See ``derivations/peers.md`` (Spyx 1.0.0).
"""
from __future__ import annotations

import functools
import math

import numpy as np

from .. import surrogates as _sgs
from ..config import LIFConfig, LIFParams
from .common import LayerMap, problem
from .protocol import Adapter, Built, Case, ChainLink

DEFAULT_SURROGATE = "spyx.superspike"

# neuron -> variant -> keywords: beta / alpha 'scalar' (a number given to the
# constructor), 'per-neuron' (an (N,) array written after construction),
# 'bounds' (per neuron, some at the clip's bounds 0 and 1) or 'snn'
# (AssociativeLIF.beta_from_snntorch(0.9)); theta a number or 'per-neuron' (an
# array); parallel: run PSU_LIF.parallel() instead of the step
VARIANTS = {
    "IF": {"theta=1": dict(), "theta=0.8": dict(theta=0.8)},
    "LIF": {"beta scalar": dict(beta="scalar"), "beta per neuron": dict(beta="per-neuron"),
            "beta at the clip bounds": dict(beta="bounds"),
            "beta per neuron, theta=0.8": dict(beta="per-neuron", theta=0.8),
            "threshold per neuron": dict(beta="per-neuron", theta="per-neuron")},
    "RIF": {"all-to-all": dict()},
    "RLIF": {"beta scalar": dict(beta="scalar"), "beta per neuron": dict(beta="per-neuron")},
    "CuBaLIF": {"alpha, beta scalar": dict(beta="scalar", alpha="scalar"),
                "alpha, beta scalar, threshold per neuron": dict(beta="scalar", alpha="scalar",
                                                                 theta="per-neuron"),
                "alpha, beta per neuron": dict(beta="per-neuron", alpha="per-neuron")},
    "RCuBaLIF": {"alpha, beta per neuron": dict(beta="per-neuron", alpha="per-neuron")},
    "PSU_LIF": {"beta scalar": dict(beta="scalar"), "beta per neuron": dict(beta="per-neuron"),
                "beta per neuron, parallel()": dict(beta="per-neuron", parallel=True)},
    "AssociativeLIF": {"beta per neuron": dict(beta="per-neuron"),
                       "beta_from_snntorch(0.9)": dict(beta="snn")},
    "LI": {"beta scalar": dict(beta="scalar"), "beta per neuron": dict(beta="per-neuron")},
    # gamma: the adaptation's decay (Spyx's own random per-neuron init when None)
    # spyx.experimental.parallel_reset: __call__ is LIF's step; parallel(x, K) the
    # fixed-point-threshold solve, exact for K >= T (run here with K = T)
    "ParallelResetLIF": {"beta scalar": dict(beta="scalar"),
                         "beta per neuron": dict(beta="per-neuron"),
                         "beta per neuron, parallel(K=T)": dict(beta="per-neuron",
                                                                parallel=True)},
    # spyx.experimental.stochastic: the whole sequence at once, reset-free, spikes
    # Bernoulli(p) with a JAX key, backward g p (M13); k the sharpness of p
    "StochasticAssociativeLIF": {"k=100": dict(k=100.0),
                                 "k=10, threshold=0.8": dict(k=10.0, theta=0.8),
                                 "spike=False (the membrane out)": dict(k=100.0, spike=False)},
    "SPSN": {"k=10": dict(k=10.0), "k=40, threshold=0.8": dict(k=40.0, theta=0.8)},
    "StochasticAssociativeCuBaLIF": {"k=100": dict(k=100.0), "k=20": dict(k=20.0)},
    "ALIF": {"beta, gamma scalar": dict(beta="scalar", gamma="scalar"),
             "beta, gamma per neuron": dict(beta="per-neuron", gamma="per-neuron"),
             "gamma at the clip bounds": dict(beta="per-neuron", gamma="bounds"),
             "gamma initialised by Spyx, threshold 0.8": dict(beta="scalar", theta=0.8)},
}
NEURONS = {n: tuple(vs) for n, vs in VARIANTS.items()}

# the neurons whose spike is read before the update (output one step late)
_DELAYED = ("IF", "LIF", "RIF", "RLIF", "CuBaLIF", "RCuBaLIF", "ParallelResetLIF")
_SYNAPTIC = ("CuBaLIF", "RCuBaLIF")
_RECURRENT = ("RIF", "RLIF", "RCuBaLIF")
_NO_RESET = ("PSU_LIF", "AssociativeLIF")
# spyx.experimental.stochastic's Bernoulli neurons (M13), and their surrogate presets
_BERNOULLI = ("StochasticAssociativeLIF", "SPSN", "StochasticAssociativeCuBaLIF")
_BERNOULLI_PRESET = {"StochasticAssociativeLIF": "spyx.sigmoid_bernoulli",
                     "SPSN": "spyx.sigmoid_bernoulli",
                     "StochasticAssociativeCuBaLIF": "spyx.refractory_sigmoid_bernoulli"}
BERNOULLI_KEY = 20261203    # jax.random.PRNGKey of the check's Bernoulli draws (both sides)
_MAPPED = _DELAYED + _NO_RESET + ("LI", "ALIF") + _BERNOULLI

BETA = 0.8              # a scalar beta
ALPHA = 0.6             # a scalar CuBaLIF alpha
GAMMA = 0.7             # a scalar ALIF gamma (the adaptation's decay)

# Parameters the surrogate cases construct (Spyx's names; non-default where the
# default would not show that the parameter is read).  superspike with no
# parameters is Spyx's default activation (the module's own singleton).
SURROGATE_PARAMS = {
    "spyx.superspike": dict(),
    "spyx.arctan": dict(k=1.5),
    "spyx.tanh": dict(k=2.0),
    "spyx.boxcar": dict(width=1.2, height=0.8),
    "spyx.triangular": dict(k=1.5),
}
# the Bernoulli presets are the neurons' own (their k is the constructor's)
BERNOULLI_PARAMS = {"spyx.sigmoid_bernoulli": ("k", "threshold", "max_prob"),
                    "spyx.refractory_sigmoid_bernoulli": ("k", "threshold")}

# input (mean, std) per neuron, times theta
_INPUT = {"IF": (0.3, 0.8), "LIF": (0.35, 0.6), "RIF": (0.3, 0.8), "RLIF": (0.35, 0.6),
          "CuBaLIF": (0.1, 0.5), "RCuBaLIF": (0.1, 0.5), "PSU_LIF": (0.12, 0.6),
          "AssociativeLIF": (0.12, 0.6), "LI": (0.3, 1.0), "ALIF": (0.5, 0.8),
          "ParallelResetLIF": (0.35, 0.6), "StochasticAssociativeLIF": (0.35, 0.6),
          "SPSN": (0.7, 1.2), "StochasticAssociativeCuBaLIF": (0.12, 0.5)}

_COMMON_NOTES = {
    "delayed": (
        "Spyx reads the spike from the state before the step's update: its output at step t "
        "is lifgrad's cell spike of step t - 1 (delay_output=True, the first output 0); "
        "Spyx's docstrings do not say that the output is one step late",
        "the subtract reset uses that spike and is not detached; Spyx fires at V > theta "
        "(strict) and passes the threshold (a Python number) no gradient",
    ),
    "none": (
        "PSU_LIF / AssociativeLIF spike on the updated membrane and never reset "
        "(reset='none', no delay)",
    ),
    "readout": (
        "LI emits no spikes: its output is the membrane (lifgrad's readout, reset='none'); "
        "the check reports zero spikes and reads the output as the membrane",
    ),
}
_CLIP_NOTE = ("beta (and CuBaLIF's alpha) enter as jnp.clip(p, 0, 1): JAX gives clip's "
              "derivative 1/2 at the bounds 0 and 1, so a decay of exactly 1 (or 0) gets half "
              "its gradient (0 outside [0, 1]); the mapping reproduces it")

_BERNOULLI_NOTES = (
    "spyx.experimental.stochastic runs the whole sequence at once (an associative scan, "
    "SPSN an FFT convolution with beta^t (1 - beta)) and never resets: lifgrad's reset='none' "
    "(SPSN with norm_input, StochasticAssociativeCuBaLIF synaptic); beta (alpha) enter as "
    "clip(p, 0, 1)",
    "the spike is Bernoulli(p) drawn with a JAX key, p the preset's value at V - theta, and "
    "its backward multiplies by p itself (g p), not by dp/dV: lifgrad's stochastic forward "
    "with spike_probability='surrogate' (M13); the check draws both sides' uniforms from "
    "jax.random.PRNGKey(BERNOULLI_KEY) (jax.random.bernoulli(key, p) is uniform(key) < p)",
)
_UNSUPPORTED = {
    "ResonateFire": "a resonate-and-fire neuron: a complex membrane z = lambda z + x that "
                    "rotates, spiking on Re(z); lifgrad's cell is a real leaky integrator",
    "SpikingPhasor": "a phasor network neuron (complex phases): no leaky integrate-and-fire "
                     "counterpart",
}
_ALIF_NOTES = (
    "ALIF's adaptation T = gamma T + (1 - gamma) s is lifgrad's a_t with rho = gamma and "
    "beta_a = 1 - gamma (T = (1 - gamma) a); its threshold theta + T, read one step late like "
    "the other neurons' spike",
    "ALIF's reset subtracts that adaptive threshold, s (theta + T), with a gradient into T "
    "(lifgrad's reset_by_threshold, M7); gamma enters as jnp.clip(gamma, 0, 1) like beta",
)


# --------------------------------------------------------------------------- JAX

def _jax():
    """``(jax, jnp, nnx, spyx.nn, spyx.axn)``, with ``jax_enable_x64`` turned on
    (a process-wide JAX switch: see the module docstring)."""
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import spyx.axn as axn
    import spyx.nn as snn
    from flax import nnx
    return jax, jnp, nnx, snn, axn


def _parallel_reset_cls():
    """``spyx.experimental.parallel_reset.ParallelResetLIF`` (None if absent)."""
    try:
        from spyx.experimental.parallel_reset import ParallelResetLIF
    except ImportError:
        return None
    return ParallelResetLIF


def _neuron_cls(name):
    """The Spyx class of a mapped neuron ``name``."""
    if name == "ParallelResetLIF":
        return _parallel_reset_cls()
    if name in _BERNOULLI:
        try:
            from spyx.experimental import stochastic
        except ImportError:
            return None
        return getattr(stochastic, name, None)
    return getattr(_jax()[3], name, None)


def _bernoulli_activation(kind, module):
    """``(preset, {preset parameter: value}, threshold)`` of a Bernoulli
    neuron's spike (read from the closure of ``sigmoid_bernoulli`` /
    ``refractory_sigmoid_bernoulli``), or None for ``spike=False`` (the
    membrane is the output)."""
    fn = module.spike
    inner = _closure(getattr(fn, "__wrapped__", None)).get("fun")
    if inner is None:
        if kind == "StochasticAssociativeLIF" and getattr(fn, "__name__", "") == "<lambda>":
            return None                 # spike=False: lambda x, k: x
        raise ValueError(f"spike: {fn!r} is not Spyx's sigmoid_bernoulli / "
                         f"refractory_sigmoid_bernoulli; lifgrad has no preset for it")
    cl = _closure(inner)
    preset = _BERNOULLI_PRESET[kind]
    names = BERNOULLI_PARAMS[preset]
    missing = [n for n in names if n not in cl]
    if missing or inner.__qualname__.split(".<locals>")[0] != preset.split(".")[1]:
        raise ValueError(f"spike: {inner.__qualname__} is not {preset} (closure lacks "
                         f"{missing})")
    own = dict(_sgs.preset(preset).defaults)
    return (preset, {n: float(np.asarray(cl[n])) for n in names if n in own},
            float(np.asarray(cl["threshold"])))


def _kind(module):
    """The Spyx neuron class name of ``module`` (its mapped kind)."""
    _jax()
    for name in ("AssociativeLIF", "PSU_LIF") + _DELAYED + ("LI", "ALIF") + _BERNOULLI:
        cls = _neuron_cls(name)
        if cls is not None and type(module) is cls:
            return name
    name = type(module).__name__
    if name in _UNSUPPORTED:
        raise ValueError(f"module: Spyx {name} is not covered: {_UNSUPPORTED[name]}")
    if type(module).__module__.startswith("spyx") and hasattr(module, "initial_state"):
        raise ValueError(f"module: Spyx {name} is not covered: lifgrad.verify maps Spyx's "
                         f"{', '.join(_MAPPED)} (spyx.nn); {name} is not one of them")
    raise ValueError(f"module: expected a Spyx neuron ({', '.join(_MAPPED)}), got "
                     f"{type(module).__module__}.{type(module).__qualname__}")


def _closure(fn):
    """``{free variable: value}`` of a Python function's closure."""
    code = getattr(fn, "__code__", None)
    if code is None or not fn.__closure__:
        return {}
    return {n: c.cell_contents for n, c in zip(code.co_freevars, fn.__closure__)}


_FACTORIES = {"superspike": "grad_superspike", "arctan": "grad_arctan", "tanh": "grad_tanh",
              "boxcar": "grad_boxcar", "triangular": "grad_triangle"}


def _activation(act):
    """``(preset, {Spyx parameter: value})`` of an activation made by one of
    ``spyx.axn``'s factories (read from its closure); ValueError otherwise."""
    _, _, _, _, axn = _jax()
    supported = ", ".join(f"spyx.axn.{f}" for f in _FACTORIES)
    inner = getattr(act, "__wrapped__", None)                  # jax.jit -> custom_vjp
    fwd = getattr(inner, "fwd", None)
    f = next((v for v in _closure(fwd).values() if callable(v)), None)  # custom.<locals>.f
    cl = _closure(f) if f is not None else {}
    bwd, fw = cl.get("bwd"), cl.get("fwd")
    if fw is not axn.heaviside or bwd is None:
        raise ValueError(f"activation: {act!r} is not one of Spyx's surrogate activations "
                         f"({supported}) with its Heaviside forward; lifgrad has no preset for "
                         f"it (spyx.custom: {_sgs.DEVIATIONS['spyx.custom']})")
    qual = getattr(bwd, "__qualname__", "")
    factory = qual.split(".<locals>.")[0]
    if _FACTORIES.get(factory) != qual.rsplit(".", 1)[-1] or \
            getattr(bwd, "__module__", "") != axn.__name__:
        raise ValueError(f"activation: spyx.axn.custom with the backward {qual or bwd!r} has "
                         f"no lifgrad preset ({_sgs.DEVIATIONS['spyx.custom']}); supported: "
                         f"{supported}")
    v = _closure(bwd)
    if factory == "arctan":
        params = {"k": float(v["k_pi"]) / math.pi}
    elif factory == "boxcar":
        params = {"width": 2.0 * float(v["k"]), "height": float(v["h"])}
    else:
        params = {"k": float(v["k"])}
    return f"spyx.{factory}", params


def _make_activation(name, params=None):
    """The activation of preset ``name`` (None: Spyx's default, superspike k=25)."""
    _, _, _, _, axn = _jax()
    if name not in SURROGATE_PARAMS:
        raise ValueError(f"surrogate: expected a Spyx preset ({', '.join(SURROGATE_PARAMS)}), "
                         f"got {name!r}")
    params = SURROGATE_PARAMS[name] if params is None else params
    if name == DEFAULT_SURROGATE and not params:
        return None
    return getattr(axn, name.split(".", 1)[1])(**params)


def _param_value(p):
    """An ``nnx.Param`` (or array) as a float64 NumPy value (a 0-dim one as a float)."""
    a = np.asarray(p.get_value() if hasattr(p, "get_value") else p, np.float64)
    return float(a) if a.ndim == 0 else a


def _clipped(p):
    """``(clip(p, 0, 1), d clip / dp)`` as JAX computes them (1/2 at the bounds)."""
    p = np.asarray(p, np.float64)
    d = np.where((p > 0) & (p < 1), 1.0, np.where((p == 0) | (p == 1), 0.5, 0.0))
    c = np.clip(p, 0.0, 1.0)
    return (float(c) if c.ndim == 0 else c), d


def _threshold(module):
    """Spyx's ``threshold`` (a number, or an array from ``spyx.nir``; not a
    learned parameter) as a float or an ``(N,)`` float64 array."""
    th = module.threshold
    th = th.get_value() if hasattr(th, "get_value") else th
    try:
        if isinstance(th, bool):
            raise TypeError
        a = np.asarray(th, np.float64)
    except (TypeError, ValueError) as e:
        raise TypeError(f"threshold: expected a number or a per-neuron array, got {th!r}") from e
    if not np.all(np.isfinite(a)):
        raise ValueError(f"threshold: contains NaN or Inf ({a})")
    if a.ndim == 0 or a.size == 1:
        return float(a.reshape(()))
    shape = tuple(module.hidden_shape)
    if a.shape != shape or len(shape) != 1:
        raise ValueError(f"threshold: expected a number or shape {shape} (one layer of "
                         f"neurons), got shape {a.shape}")
    return a


def _sum_to(x, shape):
    x = np.asarray(x, np.float64)
    if tuple(shape) == ():
        return np.asarray(np.sum(x))
    return np.reshape(x, shape)


def make_module(neuron, variant, surrogate=DEFAULT_SURROGATE, N=6, seed=0):
    """A Spyx ``neuron`` of ``variant`` (see :data:`VARIANTS`) in float64 with
    the preset surrogate; per-neuron decays and recurrent weights from
    ``seed``."""
    jax, jnp, nnx, snn, _ = _jax()
    if neuron not in VARIANTS:
        raise ValueError(f"neuron: expected one of {', '.join(VARIANTS)}, got {neuron!r}")
    if variant not in VARIANTS[neuron]:
        raise ValueError(f"variant: expected one of {', '.join(VARIANTS[neuron])} for "
                         f"{neuron}, got {variant!r}")
    kw = VARIANTS[neuron][variant]
    rng = np.random.default_rng(1000 + seed)
    if neuron in _BERNOULLI:            # their spike is built by the class (M13)
        args = dict(threshold=kw.get("theta", 1.0), k=kw["k"])
        if "spike" in kw:
            args["spike"] = kw["spike"]
        return _neuron_cls(neuron)((N,), rngs=nnx.Rngs(seed), **args)
    act = _make_activation(surrogate)
    theta = kw.get("theta", 1.0)
    if theta == "per-neuron":             # an array, as spyx.nir builds them
        theta = jnp.asarray(np.linspace(0.7, 1.3, N))
    shape = (N,)
    rngs = nnx.Rngs(seed)
    cls = _neuron_cls(neuron)
    args = {}
    if neuron != "LI":
        args.update(threshold=theta, activation=act)
    if neuron not in ("IF", "RIF"):
        args["beta"] = BETA
    if neuron in _SYNAPTIC:
        args["alpha"] = ALPHA
    if neuron == "AssociativeLIF" and kw.get("beta") == "snn":
        args["beta"] = float(snn.AssociativeLIF.beta_from_snntorch(0.9))
    if neuron == "ALIF" and kw.get("gamma") == "scalar":
        args["gamma"] = GAMMA
    m = cls(shape, rngs=rngs, **args)
    if kw.get("beta") in ("per-neuron", "bounds"):
        beta = rng.uniform(0.3, 0.95, N)
        if kw["beta"] == "bounds":
            beta[0], beta[1], beta[2] = 1.0, 0.0, 1.0
        m.beta = nnx.Param(jnp.asarray(beta))
    if kw.get("alpha") == "per-neuron":
        m.alpha = nnx.Param(jnp.asarray(rng.uniform(0.3, 0.9, N)))
    if kw.get("gamma") in ("per-neuron", "bounds"):
        gamma = rng.uniform(0.4, 0.95, N)
        if kw["gamma"] == "bounds":
            gamma[0], gamma[1] = 1.0, 0.0
        m.gamma = nnx.Param(jnp.asarray(gamma))
    if neuron in _RECURRENT:
        m.recurrent_w = nnx.Param(jnp.asarray(rng.normal(0.0, 0.25, (N, N))))
    return m


# --------------------------------------------------------------------------- running

def _membrane(kind, state):
    """The membrane ``V`` of a Spyx state (CuBaLIF's is ``[V, I]``, ALIF's ``[V, T]``)."""
    _, jnp, _, _, _ = _jax()
    if kind in _SYNAPTIC or kind == "ALIF":
        return jnp.split(state, 2, -1)[0]
    return state


def _scan_neuron(kind, module, x):
    """``(spikes, membrane)`` ``(T, B, N)`` of one neuron from rest over ``x`` (a
    ``jax.lax.scan`` of the module's own step, as ``spyx.nn.run``)."""
    jax, jnp, _, _, _ = _jax()
    state0 = module.initial_state(x.shape[1])

    def step(carry, x_t):
        out, new = module(x_t, carry)
        return new, (out, _membrane(kind, new))
    _, (out, mem) = jax.lax.scan(step, state0, x)
    if kind == "LI":
        return jnp.zeros_like(out), mem
    return out, mem


def _parallel(module, x):
    """PSU_LIF's ``parallel(x)``: the spikes only (no membrane)."""
    return module.parallel(x), None


def _parallel_reset(module, x):
    """ParallelResetLIF's ``parallel(x, K=T)``: the fixed-point-threshold solve
    with as many iterations as steps (exact: iteration k makes step k exact),
    the spikes only."""
    return module.parallel(x, K=int(x.shape[0])), None


def bernoulli_draws(shape):
    """The uniform numbers ``(T, B, N)`` behind ``jax.random.bernoulli`` with the
    check's key on Spyx's ``(B, T, N)`` layout (``bernoulli(key, p)`` is
    ``uniform(key, p.shape, p.dtype) < p``): lifgrad's stochastic forward
    takes them as its ``rng`` (M13)."""
    jax, jnp, _, _, _ = _jax()
    T, B, N = shape
    u = jax.random.uniform(jax.random.PRNGKey(BERNOULLI_KEY), (B, T, N), jnp.float64)
    return np.ascontiguousarray(np.asarray(u, np.float64).transpose(1, 0, 2))


def _bernoulli_run(kind, module, x):
    """``(spikes, membrane or None)`` ``(T, B, N)`` of a spyx.experimental.stochastic
    neuron called on the whole of ``x`` (``(B, T, N)`` for Spyx) with the
    check's key; ``spike=False``: no spikes, the membrane out."""
    jax, jnp, _, _, _ = _jax()
    out = module(jax.random.PRNGKey(BERNOULLI_KEY), jnp.swapaxes(x, 0, 1))
    if kind == "StochasticAssociativeCuBaLIF":
        return jnp.swapaxes(out, 0, 1), None
    spk, mem = jnp.swapaxes(out[0], 0, 1), jnp.swapaxes(out[1], 0, 1)
    if _bernoulli_activation(kind, module) is None:
        return jnp.zeros_like(mem), mem
    return spk, mem


def _float64(tree):
    """Every floating array of a JAX pytree in float64."""
    jax, jnp, _, _, _ = _jax()
    return jax.tree.map(lambda a: jnp.asarray(a, jnp.float64)
                        if jnp.issubdtype(jnp.asarray(a).dtype, jnp.floating) else a, tree)


def _path(key):
    return ".".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in key)


_GRADS = {}             # (graphdef, run key) -> jitted gradient, reused across cases


def _grad_fn(graphdef, key, run):
    """``jax.jit(jax.grad(loss))`` for a model of ``graphdef`` run by ``run``
    (``key`` names ``run``), compiled once per graph and shapes."""
    jax, jnp, nnx, _, _ = _jax()
    try:
        f = _GRADS.get((graphdef, key))
    except TypeError:                   # an unhashable static attribute
        f, key = None, None
    if f is not None:
        return f

    def loss(p, rest, xx, A, Bm):
        spk, mem = run(nnx.merge(graphdef, p, rest), xx)
        L = jnp.sum(A * spk)
        return (L if mem is None else L + jnp.sum(Bm * mem)), (spk, mem)
    f = jax.jit(jax.grad(loss, argnums=(0, 2), has_aux=True))
    if key is not None:
        if len(_GRADS) >= 64:
            _GRADS.pop(next(iter(_GRADS)))
        _GRADS[(graphdef, key)] = f
    return f


def _autograd(model, key, run, x, A, Bm):
    """The framework's side: ``run(model, x) -> (spikes, membrane or None)``
    (``key`` names ``run`` for the cache of compiled gradients); ``jax.grad``
    of ``sum A spk + sum Bm mem`` over the model's ``nnx.Param`` s (in float64,
    on a copy) and ``x``.  NumPy ``{"spikes", "mem", "grad:input",
    "grad:<param path>"...}``."""
    _, jnp, nnx, _, _ = _jax()
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    params, rest = _float64(params), _float64(rest)
    xj = jnp.asarray(np.asarray(x, np.float64))
    f = _grad_fn(graphdef, key, run)
    (gp, gx), (spk, mem) = f(params, rest, xj, jnp.asarray(A), jnp.asarray(Bm))
    peer = {"spikes": np.asarray(spk, np.float64), "grad:input": np.asarray(gx, np.float64)}
    if mem is not None:                 # PSU_LIF.parallel has no membrane to read
        peer["mem"] = np.asarray(mem, np.float64)
    for k, v in nnx.to_flat_state(gp):
        peer[f"grad:{_path(k)}"] = np.asarray(v.get_value(), np.float64)
    return peer


# --------------------------------------------------------------------------- the adapter

class Spyx(Adapter):
    """Spyx's ``IF``, ``LIF``, ``RIF``, ``RLIF``, ``CuBaLIF``, ``RCuBaLIF``,
    ``PSU_LIF``, ``AssociativeLIF``, ``LI`` and ``ALIF`` (JAX, Flax NNX), and
    ``spyx.experimental.ParallelResetLIF``."""

    name = "spyx"
    neurons = NEURONS
    default_surrogate = DEFAULT_SURROGATE
    preset_case = ("LIF", "beta per neuron")
    quick = (("LIF", "beta per neuron", DEFAULT_SURROGATE),
             ("CuBaLIF", "alpha, beta per neuron", DEFAULT_SURROGATE),
             ("RLIF", "beta per neuron", DEFAULT_SURROGATE),
             ("PSU_LIF", "beta per neuron", DEFAULT_SURROGATE),
             ("LI", "beta per neuron", DEFAULT_SURROGATE),
             ("ALIF", "beta, gamma per neuron", DEFAULT_SURROGATE),
             ("LIF", "beta per neuron", "spyx.arctan"))
    option_defaults = {}

    def case(self, neuron, variant, surrogate=None, *, seed=0, T=20, B=3, N=6,
             **options) -> Case:
        """As the protocol's; a Bernoulli neuron's surrogate is its own preset
        (its class builds its spike), the Bernoulli presets no other neuron's."""
        if neuron in _BERNOULLI:
            own = _BERNOULLI_PRESET[neuron]
            if surrogate not in (None, own):
                raise ValueError(f"spyx: surrogate: {neuron} spikes with {own} (its class "
                                 f"builds it), got {surrogate!r}")
            surrogate = own
        elif surrogate in BERNOULLI_PARAMS:
            raise ValueError(f"spyx: surrogate: {surrogate} is the spike of "
                             f"spyx.experimental.stochastic's neurons, not an activation of "
                             f"{neuron}")
        return super().case(neuron, variant, surrogate, seed=seed, T=T, B=B, N=N, **options)

    def cases(self, quick=False) -> list:
        """The protocol's cases without the Bernoulli presets on
        :attr:`preset_case` (they come with their own neurons)."""
        if quick:
            return super().cases(quick)
        out = [self.case(n, v) for n, vs in self.neurons.items() for v in vs]
        n, v = self.preset_case
        return out + [self.case(n, v, p) for p in self.presets()
                      if p != self.default_surrogate and p not in BERNOULLI_PARAMS]

    # -- a neuron module ---------------------------------------------------------

    def is_neuron(self, module):
        mod = type(module).__module__
        if not mod.startswith("spyx."):
            return False
        _, _, _, snn, _ = _jax()
        if isinstance(module, (snn.Sequential, snn.ActivityRegularization)):
            return False
        if type(module).__name__ in _UNSUPPORTED or type(module).__name__ in _BERNOULLI:
            return True             # _UNSUPPORTED: refused by name, with the reason
        return callable(getattr(module, "initial_state", None))

    def surrogate_of(self, module):
        """``(preset name, {Spyx parameter: value})`` of a neuron's activation
        (or of an activation function itself), read from the closure that
        ``spyx.axn``'s factories build; ValueError for ``LI`` (no spikes) and
        for any other activation."""
        if hasattr(module, "initial_state") or type(module).__name__ in _BERNOULLI:
            kind = _kind(module)
            if kind == "LI":
                raise ValueError("LI emits no spikes: it has no surrogate")
            if kind in _BERNOULLI:
                got = _bernoulli_activation(kind, module)
                if got is None:
                    raise ValueError("StochasticAssociativeLIF(spike=False) emits no spikes: "
                                     "it has no surrogate")
                return got[:2]
            return _activation(module.spike)
        return _activation(module)

    def layer_map(self, module) -> LayerMap:
        """lifgrad's :class:`LayerMap` of a constructed Spyx neuron."""
        kind = _kind(module)
        notes, shape = [], {}
        _, _, nnx, _, _ = _jax()
        for key, v in nnx.to_flat_state(nnx.state(module, nnx.Param)):
            shape[_path(key)] = tuple(np.shape(v.get_value()))
        if kind == "LI":
            beta = _param_value(module.beta)
            alpha, dbeta = _clipped(beta)
            cfg = LIFConfig(reset="none", surrogate="zero", strict=True)
            params = LIFParams(alpha=alpha, theta=0.0)
            notes += list(_COMMON_NOTES["readout"]) + [_CLIP_NOTE]

            def param_grads(g, I, tr):
                return {"beta": _sum_to(np.asarray(g.alpha) * dbeta, shape["beta"])}
            return LayerMap(cfg, params, spike_scale=0.0, param_grads=param_grads,
                            notes=tuple(notes))
        if kind in _BERNOULLI:
            return self._bernoulli_map(module, kind, shape)
        theta = _threshold(module)
        sname, sparams = self.surrogate_of(module)
        sg = _sgs.get(sname, **sparams)
        if _sgs.preset(sname).note:
            notes.append(f"{sname}: {_sgs.preset(sname).note}")
        if kind in ("IF", "RIF"):
            beta, dbeta = 1.0, None
        else:
            beta, dbeta = _clipped(_param_value(module.beta))
            notes.append(_CLIP_NOTE)
        cfg = dict(reset="subtract", detach_reset=False, strict=True, surrogate=sg)
        pkw = dict(alpha=beta, theta=theta)
        dalpha = None
        dgamma = None
        if kind in _DELAYED or kind == "ALIF":
            cfg["delay_output"] = True
            notes += list(_COMMON_NOTES["delayed"])
        if kind == "ALIF":              # (L1), (L2), the reset by the threshold (M7)
            rho, dgamma = _clipped(_param_value(module.gamma))
            cfg.update(adaptive=True, reset_by_threshold=True)
            pkw.update(rho=rho, beta_a=1 - np.asarray(rho) if np.ndim(rho) else 1 - rho)
            notes += list(_ALIF_NOTES)
        elif kind not in _DELAYED:
            cfg["reset"] = "none"
            notes += list(_COMMON_NOTES["none"])
        if kind in _SYNAPTIC:
            alpha_s, dalpha = _clipped(_param_value(module.alpha))
            cfg["synaptic"] = True
            pkw.update(alpha_s=alpha_s, gamma=np.asarray(beta) * theta
                       if np.ndim(beta) else beta * theta)
            notes.append("CuBaLIF removes theta per spike before the decay: V = beta (V - "
                         "theta s) + I, so lifgrad's free reset strength is gamma = beta theta")
        if kind in _RECURRENT:
            W = np.asarray(_param_value(module.recurrent_w), np.float64)
            cfg["recurrent"] = "all"
            pkw["R"] = W.T
            notes.append("the feedback s @ recurrent_w is lifgrad's R v_{t-1} with R = "
                         "recurrent_w^T (recurrent='all')")
        config = LIFConfig(**cfg)
        params = LIFParams(**pkw)

        def param_grads(g, I, tr):
            out = {}
            if "beta" in shape:
                # each term reduced on its own: g.alpha is already summed when
                # beta is a scalar, g.gamma is not when theta is per neuron
                out["beta"] = _sum_to(np.asarray(g.alpha, np.float64) * dbeta, shape["beta"])
                if kind in _SYNAPTIC:
                    out["beta"] = out["beta"] + _sum_to(
                        np.asarray(theta) * np.asarray(g.gamma, np.float64) * dbeta,
                        shape["beta"])
            if "alpha" in shape:
                out["alpha"] = _sum_to(np.asarray(g.alpha_s, np.float64) * dalpha,
                                       shape["alpha"])
            if "recurrent_w" in shape:
                out["recurrent_w"] = np.asarray(g.R, np.float64).T
            if kind == "ALIF":          # rho = clip(gamma), beta_a = 1 - clip(gamma)
                out["gamma"] = _sum_to((np.asarray(g.rho, np.float64)
                                        - np.asarray(g.beta_a, np.float64)) * dgamma,
                                       shape["gamma"])
            return out
        return LayerMap(config, params, param_grads=param_grads, notes=tuple(notes))

    def _bernoulli_map(self, module, kind, shape) -> LayerMap:
        """spyx.experimental.stochastic's reset-free Bernoulli neurons: lifgrad's
        cell with reset='none', the stochastic forward whose probability is the
        surrogate itself (M13) and the check's uniform draws (``draws``)."""
        got = _bernoulli_activation(kind, module)
        beta, dbeta = _clipped(_param_value(module.beta))
        notes = list(_BERNOULLI_NOTES)
        cfg = dict(reset="none", strict=True, norm_input=kind == "SPSN")
        pkw = dict(alpha=beta)
        if got is None:                 # spike=False: the membrane is the output
            cfg["surrogate"] = "zero"
            pkw["theta"] = 0.0
            notes.append("StochasticAssociativeLIF(spike=False) returns (V, V): lifgrad's "
                         "readout (reset='none', no spikes)")
        else:
            sname, sparams, pkw["theta"] = got
            cfg.update(surrogate=_sgs.get(sname, **sparams), forward="stochastic",
                       spike_probability="surrogate")
            notes.append(f"{sname}: {_sgs.preset(sname).note}")
        dalpha = None
        if kind == "StochasticAssociativeCuBaLIF":
            alpha_s, dalpha = _clipped(_param_value(module.alpha))
            cfg["synaptic"] = True
            pkw["alpha_s"] = alpha_s
            notes.append("StochasticAssociativeCuBaLIF returns the spikes only: the loss "
                         "reads them alone")

        def param_grads(g, I, tr):
            out = {"beta": _sum_to(np.asarray(g.alpha, np.float64) * dbeta, shape["beta"])}
            if dalpha is not None:
                out["alpha"] = _sum_to(np.asarray(g.alpha_s, np.float64) * dalpha,
                                       shape["alpha"])
            return out
        return LayerMap(LIFConfig(**cfg), LIFParams(**pkw), param_grads=param_grads,
                        spike_scale=0.0 if got is None else 1.0, notes=tuple(notes),
                        draws=None if got is None else bernoulli_draws)

    # -- running ------------------------------------------------------------------

    def peer_forward(self, module, I):
        _, jnp, _, _, _ = _jax()
        kind = _kind(module)
        x = jnp.asarray(np.asarray(I, np.float64))
        if kind in _BERNOULLI:
            spk, mem = _bernoulli_run(kind, module, x)
            return np.asarray(spk, np.float64), \
                None if mem is None else np.asarray(mem, np.float64)
        spk, mem = _scan_neuron(kind, module, x)
        return np.asarray(spk, np.float64), np.asarray(mem, np.float64)

    def peer_gradients(self, built: Built) -> dict:
        kind = _kind(built.module)
        if kind in _BERNOULLI:
            return _autograd(built.module, ("bernoulli", kind),
                             functools.partial(_bernoulli_run, kind), built.I, built.A,
                             built.Bm)
        if VARIANTS[built.case.neuron][built.case.variant].get("parallel"):
            if kind == "ParallelResetLIF":
                return _autograd(built.module, ("parallel_reset",), _parallel_reset, built.I,
                                 built.A, built.Bm)
            return _autograd(built.module, ("parallel",), _parallel, built.I, built.A, built.Bm)
        return _autograd(built.module, ("neuron", kind), functools.partial(_scan_neuron, kind),
                         built.I, built.A, built.Bm)

    def build(self, case) -> Built:
        module = make_module(case.neuron, case.variant, case.surrogate, N=case.N, seed=case.seed)
        kw = VARIANTS[case.neuron][case.variant]
        theta = kw.get("theta", 1.0)
        theta = 1.0 if isinstance(theta, str) else theta
        mean, std = _INPUT[case.neuron]
        _, I, A, Bm = problem(case.seed, case.T, case.B, case.N, mean=mean * theta,
                              std=std * theta)
        sur = case.surrogate if case.neuron != "LI" else "(no spikes)"
        if case.neuron in _BERNOULLI:
            sur = _BERNOULLI_PRESET[case.neuron] if kw.get("spike", True) else "(no spikes)"
        notes = ()
        if case.neuron == "StochasticAssociativeCuBaLIF":
            Bm = np.zeros_like(Bm)
        if kw.get("parallel") and case.neuron == "ParallelResetLIF":
            Bm = np.zeros_like(Bm)
            notes = ("ParallelResetLIF.parallel(x, K) returns only the spikes: the loss reads "
                     "them alone; run with K = T iterations (exact), its gradient is the "
                     "unrolled fixed-point iteration's",)
        elif kw.get("parallel"):
            Bm = np.zeros_like(Bm)
            notes = ("PSU_LIF.parallel() (the associative scan over the leak) returns only the "
                     "spikes: the loss reads them alone",)
        return Built(case, module, I, A, Bm, (case.neuron, case.variant, sur), notes=notes)

    # -- a user's model (compare) ----------------------------------------------------

    def model_chain(self, model):
        """The chain of a ``spyx.nn.Sequential`` of ``flax.nnx.Linear`` layers
        each followed by a mapped neuron (``spyx.nn.Flatten`` anywhere; an
        ``LI`` only last): ``[ChainLink]``; ValueError naming what is not mapped."""
        _, _, nnx, snn, _ = _jax()
        if not isinstance(model, snn.Sequential):
            raise TypeError(f"model: expected a spyx.nn.Sequential of flax.nnx.Linear layers "
                            f"and Spyx neurons, got {type(model).__module__}."
                            f"{type(model).__qualname__}")
        layers = [(f"layers.{i}", x) for i, x in enumerate(model.layers)
                  if not isinstance(x, snn.Flatten)]
        for path, x in layers:
            if type(x).__name__ in _BERNOULLI:
                raise ValueError(f"model.{path}: spyx.experimental.stochastic's "
                                 f"{type(x).__name__} is called on the whole sequence with a "
                                 f"key, module(key, x), which spyx.nn.Sequential's step does "
                                 f"not do: lifgrad verify checks it as a single layer "
                                 f"(lifgrad.verify.spyx cases), not inside a Sequential")
        pairs = self.chain_pairs(layers, lambda x: isinstance(x, nnx.Linear),
                                 f"flax.nnx.Linear, Spyx neurons ({', '.join(_MAPPED)}) and "
                                 f"spyx.nn.Flatten")
        links = []
        for k, (lpath, linear, path, layer, m) in enumerate(pairs):
            if _kind(layer) == "LI" and k < len(pairs) - 1:
                raise ValueError(f"model.{path}: an LI (no spikes) feeds a later layer; "
                                 f"lifgrad maps LI as the last layer (a readout) only")
            W = np.asarray(_param_value(linear.kernel), np.float64).T
            has_b = getattr(linear, "bias", None) is not None
            b = np.asarray(_param_value(linear.bias), np.float64) if has_b else 0.0
            links.append(ChainLink(f"{lpath}.kernel", W, f"{lpath}.bias" if has_b else None, b,
                                   path, m, transposed=True,
                                   label=f"{path} ({type(layer).__name__})"))
        return links

    def model_gradients(self, model, x, A, Bm) -> dict:
        """Run the ``spyx.nn.Sequential`` on ``x`` ``(T, B, ...)`` from rest (its
        own step, scanned over time) and differentiate ``sum A spk + sum Bm
        mem`` (the last neuron's output and membrane) by ``jax.grad``: NumPy
        ``{"spikes", "mem", "grad:input", "grad:layers.<i>.<param>"...}``."""
        jax, jnp, _, _, _ = _jax()
        layers = list(model.layers)
        last = max(i for i, x_ in enumerate(layers) if self.is_neuron(x_))
        kind = _kind(layers[last])

        def run(mdl, xx):
            state0 = mdl.initial_state(xx.shape[1])

            def step(carry, x_t):
                out, new = mdl(x_t, carry)
                return new, (out, _membrane(kind, new[last]))
            _, (out, mem) = jax.lax.scan(step, state0, xx)
            return (jnp.zeros_like(out) if kind == "LI" else out), mem
        return _autograd(model, ("model", last, kind), run, x, A, Bm)


ADAPTER = Spyx()
