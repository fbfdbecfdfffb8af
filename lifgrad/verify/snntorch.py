"""snnTorch 1.0.0 adapter of ``lifgrad verify``.

``ADAPTER`` (:class:`SnnTorch`, the protocol of :mod:`lifgrad.verify.protocol`)
maps a constructed (float64) snnTorch neuron module onto lifgrad's canonical
cell, runs both on the same input and compares spikes, membrane and every
gradient with :func:`lifgrad.verify.common.check_layer`.  The full mapping,
with the equations read from the installed snnTorch source, is in
``derivations/peers.md (snnTorch)``; numbers in brackets below refer to it,
tags (A*), (S*), (R*) to ``derivations/lif_adjoint.md``, ``synaptic.md``,
``recurrent.md``.

Mapping (beta^ = clamp(beta, 0, 1), theta = threshold, r_t = H>(mem_{t-1} - theta)
the detached reset snnTorch computes from its *stored* membrane):

* ``Leaky``, ``reset_delay=True`` [1]: snnTorch stores the pre-reset potential,
  ``u_t = beta^ u_{t-1} + I_t - theta r_t`` with ``r_t = v_{t-1}``: lifgrad
  (A2)/(A3)/(A4) with ``alpha = beta^``, gamma tied to theta (subtract),
  ``u_reset = 0`` (zero), ``detach_reset=True`` (A11), ``strict=True`` (A5).
* ``Leaky``, ``reset_delay=False`` [2]: the stored membrane is post-reset and the
  reset is not detached.  Subtract: ``m_t = u_t - theta v_t``,
  ``u_{t+1} = beta^ m_t + I`` is (A2) with a free ``gamma = beta^ theta`` and
  ``detach_reset=False``; the chain rule adds ``theta dL/dgamma`` to
  ``dL/dbeta`` and ``beta^ dL/dgamma`` to ``dL/dtheta``.  This holds only while
  snnTorch's leftover delayed term ``r_t`` is 0, i.e. while no post-reset
  potential exceeds theta (an input above ``(2 - beta^) theta``); the cases
  keep the input below that bound (:meth:`SnnTorch.build`) and the report
  names any step where it is violated (:func:`delayed_term_where`).  Zero: ``m_t = (1 - v_t) u_t``, then ``r_t = 0`` always
  (for theta > 0), which is (A3) with ``u_reset = 0`` and
  ``detach_reset=False``.  None: ``reset_delay`` has no effect.  The reported
  membrane is post-reset (``post_reset=True``); ``u - theta v`` also depends
  on theta directly, a term ``lifgrad.verify.common.membrane_param_terms``
  adds (``dL/dtheta`` gains ``-sum Bm v``).
* ``Synaptic`` [3]: (S1) with ``alpha_s = clamp(alpha, 0, 1)``; resets as for
  ``Leaky``.  **zero reset left out**: snnTorch zeroes the whole new potential,
  ``u_t = (1 - r_t)(beta^ u_{t-1} + syn_t)`` (the input of the step is lost),
  while lifgrad's zero reset (A3) keeps the input of the step.
* ``RLeaky`` [4]: (R1).  ``all_to_all=True`` with ``linear_features``: the
  recurrent ``nn.Linear`` weight is ``R`` (``recurrent='all'``) and its bias,
  added at every step (also t = 1, where the stored spike is 0), is folded
  into lifgrad's input bias; ``dL/dbias = sum_{t,b} dL/dJ_t`` (R3).
  ``all_to_all=False``: ``x * V`` is ``recurrent='one'`` with ``R = V``.  The
  recurrent spike is not detached (R2).  **zero reset left out** (same
  reason as Synaptic: ``u_t = (1 - r_t)(beta^ u_{t-1} + I_t + V(s_{t-1}))``).
  ``RSynaptic`` is not mapped; note that its ``reset_delay=False`` is a no-op
  in snnTorch 1.0.0 (the immediate reset is written to discarded locals).

Float32 spikes (hazard, reported in the notes).  Every snnTorch surrogate
returns ``(x > 0).float()``, a float32 tensor even in a float64 model, so
every gradient reaching a spike is rounded to float32 (and summed in float32)
before the surrogate multiplies it.  With the loss of :func:`common.problem`
(float32-exact ``A``) and a spike read only by the loss, this is exact: the
delayed-reset ``Leaky``/``Synaptic`` cases agree to ~1e-16.  It is not exact
where the spike also feeds something: the immediate reset (``reset_delay=False``,
subtract and zero: the gradient ``-theta dL/dm_t`` or ``-u_t dL/dm_t`` enters the
float32 spike) and every ``RLeaky`` (the recurrent gradient ``R^T dL/dJ_{t+1}``).
There snnTorch's gradients carry float32 rounding (measured ~1e-9 to 1e-7
relative, see ``derivations/peers.md (snnTorch)``), which lifgrad does not
reproduce (there is no principled float64 computation that rounds exactly
those intermediate values), so those variants (:data:`FLOAT32_LIMITED`) are
in the cases with the verdict *agrees within a precision limit* ("float32
spike"); ``tests/test_verify_snntorch.py`` shows numerically that their error
is at the float32 level and nothing worse.

Two more float32 roundings, avoided by the choice of case parameters and
shown by the tests: ``sigmoid`` and ``spike_rate_escape`` form
``grad_output * slope`` in float32 (exact for a power-of-two slope, so the
cases use slope 16; the default 25 gives ~1e-8), and a 0-dim ``threshold``
makes ``reset * threshold`` a float32 tensor, so ``dL/dthreshold`` through
the subtract reset is summed in float32 (the cases use per-neuron
thresholds; :meth:`SnnTorch.layer_map` notes it).  In a stack (``lifgrad.verify.model``)
the gradient entering a hidden layer's spike is ``W^T dL/dI``, not
float32-exact, so every layer below the last is float32-limited too.

``RLeaky(all_to_all=True)`` cannot run in float64 at all as shipped: the
float32 spike reaches a float64 ``nn.Linear`` and torch raises "mat1 and mat2
must have the same dtype".  :meth:`SnnTorch.forward` casts the spike to float64 at
the Linear's input (a forward pre-hook, parameter names unchanged), and
returns the spikes cast to float64 (a float64 ``Linear`` after a snnTorch
neuron raises the same error).
"""
from __future__ import annotations

import functools
import math

import numpy as np

from .. import surrogates as _sg
from ..config import LIFConfig, LIFParams
from ..functional import lif_forward
from .common import F32_TOL, LayerMap, Limit, mapped_input, problem, require_torch
from .protocol import Built
from .torchpeer import TorchAdapter, cast_to_weight, to_numpy

__all__ = ["ADAPTER", "SnnTorch", "NEURONS", "DEFAULT_SURROGATE", "CASE_PARAMS",
           "FLOAT32_LIMITED", "make_module", "delayed_term_steps", "delayed_term_where"]

torch = require_torch()
import snntorch as snn  # noqa: E402
from snntorch import surrogate as _snn_sg  # noqa: E402

DEFAULT_SURROGATE = "snntorch.atan"

# neuron -> variants; a variant names the reset, "immediate" means reset_delay=False,
# RLeaky variants name the recurrence.
NEURONS = {
    "Leaky": ("subtract", "zero", "none",
              "subtract immediate", "zero immediate", "none immediate"),
    "Synaptic": ("subtract", "none"),
    "RLeaky": ("all-to-all subtract", "all-to-all none",
               "one-to-one subtract", "one-to-one none"),
}

# Variants whose gradient passes through snnTorch's float32 spike with a value
# that is not float32-exact (see the module docstring): agree within that limit.
FLOAT32_LIMITED = {
    ("Leaky", "subtract immediate"), ("Leaky", "zero immediate"),
    ("RLeaky", "all-to-all subtract"), ("RLeaky", "all-to-all none"),
    ("RLeaky", "one-to-one subtract"), ("RLeaky", "one-to-one none"),
}

_F32_NOTE = ("snnTorch's spike is float32 ((x > 0).float()) in a float64 model: the gradient "
             "entering it {what} is rounded to float32, so agreement is limited to ~1e-7")
_F32_SPIKE = Limit("float32 spike", F32_TOL,
                   "snnTorch's spike is float32 ((x > 0).float()) in a float64 model: a "
                   "gradient entering it that is not float32-exact is rounded")
_F32_HIDDEN = Limit("float32 spike", F32_TOL,
                    "snnTorch's spikes are float32: the gradient entering a hidden layer's "
                    "spikes (W^T dL/dI) is rounded to float32")

# neurons that are refused, and why (before anything runs)
UNMAPPED = {
    "Alpha": "Alpha's membrane is the difference of two synaptic currents (excitatory minus "
             "inhibitory, each with its own decay) fed to a leak-free integrator, a second-order "
             "filter that lifgrad's first-order cell with one synaptic current does not express",
    "Lapicque": "Lapicque is mapped by no adapter yet: its R, C and time_step enter as "
                "beta = 1 - time_step / (R C) and an input gain time_step / C, which "
                "layer_map does not carry through to R and C's gradients",
    "RSynaptic": "RSynaptic is not mapped: in snnTorch 1.0.0 its reset_delay=False is a "
                 "no-op (the immediate reset is written to discarded locals) and it fails "
                 "in float64 (a float32 spike into a float64 recurrent Linear)",
    "SLSTM": "SLSTM (spiking LSTM) is not a LIF cell", "SConv2dLSTM": "not a LIF cell",
    "LeakyParallel": "LeakyParallel uses an nn.RNN inside, not a LIF cell",
}


def _pow2(x):
    m, _ = math.frexp(float(x))
    return abs(m) == 0.5


# snnTorch factory (closure ``<factory>.<locals>.inner``) -> (preset, {closure var: preset param})
_FACTORIES = {
    "atan": ("snntorch.atan", {"alpha": "alpha"}),
    "sigmoid": ("snntorch.sigmoid", {"slope": "slope"}),
    "fast_sigmoid": ("snntorch.fast_sigmoid", {"slope": "slope"}),
    "triangular": ("snntorch.triangular", {"threshold": "threshold"}),
    "spike_rate_escape": ("snntorch.spike_rate_escape", {"beta": "beta", "slope": "slope"}),
    "straight_through_estimator": ("snntorch.straight_through_estimator", {}),
    "heaviside": ("snntorch.heaviside", {}),
    "SFS": ("snntorch.SFS", {"slope": "slope", "B": "B"}),
}
# one-argument autograd Functions that may be passed directly as ``Class.apply``
_APPLY = {"StraightThroughEstimator": "snntorch.straight_through_estimator",
          "Heaviside": "snntorch.heaviside"}

# preset -> snnTorch factory with the preset's parameter names
_BUILD = {p: getattr(_snn_sg, f) for f, (p, _) in _FACTORIES.items()}

# Surrogate parameters of the cases.  sigmoid and spike_rate_escape multiply the
# float32 gradient of the spike by ``slope`` in float32 (``grad_output * slope``
# is a float32 tensor times a Python float): with the default slope 25 that
# product is rounded (measured ~1e-8 relative); a power of two keeps it exact.
CASE_PARAMS = {"snntorch.sigmoid": {"slope": 16.0},
               "snntorch.spike_rate_escape": {"slope": 16.0},
               "snntorch.fast_sigmoid": {"slope": 10.0},
               "snntorch.atan": {"alpha": 2.0},
               "snntorch.SFS": {"slope": 25.0, "B": 0.25}}


def _module_name(module):
    return type(module).__name__


def _parse(neuron, variant):
    if neuron not in NEURONS:
        raise ValueError(f"neuron: expected one of {', '.join(NEURONS)}, got {neuron!r}")
    if variant not in NEURONS[neuron]:
        raise ValueError(f"variant of {neuron}: expected one of {', '.join(NEURONS[neuron])}, "
                         f"got {variant!r}")
    words = variant.split()
    all_to_all = None
    if neuron == "RLeaky":
        all_to_all = words.pop(0) == "all-to-all"
    reset = words[0]
    delay = not (len(words) > 1 and words[1] == "immediate")
    return reset, delay, all_to_all


def make_module(neuron, variant, surrogate, beta, thr, alpha=None, V=None, N=None,
                sg_params=None):
    """Construct the float64 snnTorch module of a case (learnable beta, threshold,
    alpha for Synaptic, recurrent weights for RLeaky; for RLeaky all-to-all
    ``V`` is the weight and ``alpha`` the bias of the recurrent Linear)."""
    reset, delay, all_to_all = _parse(neuron, variant)
    preset = _sg.preset(surrogate)
    if preset.framework != "snntorch":
        raise ValueError(f"surrogate: expected an snntorch.* preset, got {surrogate!r}")
    spike_grad = _BUILD[surrogate](**(sg_params or {}))
    common = dict(threshold=torch.tensor(thr), spike_grad=spike_grad, learn_beta=True,
                  learn_threshold=True, reset_mechanism=reset, reset_delay=delay)
    if neuron == "Leaky":
        m = snn.Leaky(beta=torch.tensor(beta), **common)
    elif neuron == "Synaptic":
        m = snn.Synaptic(alpha=torch.tensor(alpha), beta=torch.tensor(beta), learn_alpha=True,
                         **common)
    else:
        if all_to_all:
            m = snn.RLeaky(beta=torch.tensor(beta), all_to_all=True, linear_features=N, **common)
        else:
            m = snn.RLeaky(beta=torch.tensor(beta), V=torch.tensor(V), all_to_all=False, **common)
    m = m.double()
    if neuron == "RLeaky" and all_to_all:
        with torch.no_grad():
            m.recurrent.weight.copy_(torch.tensor(V))
            m.recurrent.bias.copy_(torch.tensor(alpha))
    return m


class SnnTorch(TorchAdapter):
    """snnTorch's ``Leaky``, ``Synaptic`` and ``RLeaky`` on lifgrad's cell.

    Case options: ``clamp_beta`` (beta[0] = 1.3, to exercise the clamp's zero
    gradient) and ``sg_params`` (the surrogate's parameters under snnTorch's
    names; default :data:`CASE_PARAMS`)."""

    name = "snntorch"
    neurons = NEURONS
    default_surrogate = DEFAULT_SURROGATE
    preset_case = ("Leaky", "subtract")
    quick = (("Leaky", "subtract", DEFAULT_SURROGATE), ("Leaky", "zero", DEFAULT_SURROGATE),
             ("Synaptic", "subtract", DEFAULT_SURROGATE),
             ("Leaky", "subtract", "snntorch.sigmoid"),
             ("Leaky", "subtract", "snntorch.fast_sigmoid"))
    option_defaults = {"clamp_beta": False, "sg_params": None}

    def is_neuron(self, module):
        return isinstance(module, snn.SpikingNeuron)

    def surrogate_of(self, module):
        """``(preset name, {peer parameter: value})`` of the module's ``spike_grad``.

        Recovers the factory and its arguments from the closure snnTorch's
        functional surrogates return (``atan(alpha=2.0)`` is ``atan.<locals>.inner``
        with the cell ``alpha``).  Raises ``ValueError`` naming the module for
        anything else (custom_surrogate, SSO, LSO, user functions)."""
        fn = module.spike_grad
        name = _module_name(module)
        if getattr(module, "surrogate_disable", False):
            return "zero", {}
        owner = getattr(fn, "__self__", None)
        if isinstance(owner, type) and owner.__module__ == "snntorch.surrogate" \
                and owner.__name__ in _APPLY and getattr(fn, "__name__", "") == "apply":
            return _APPLY[owner.__name__], {}
        qual = getattr(fn, "__qualname__", "")
        factory = qual.split(".<locals>.")[0] if qual.endswith(".<locals>.inner") else None
        if getattr(fn, "__module__", None) != "snntorch.surrogate" or factory not in _FACTORIES:
            raise ValueError(
                f"{name}: unsupported spike_grad {getattr(fn, '__qualname__', fn)!r}; lifgrad."
                f"verify.snntorch maps snntorch.surrogate.{{{', '.join(_FACTORIES)}}}(...) (and "
                f"surrogate_disable=True); stochastic (SSO), broken (LSO) and custom surrogates "
                f"have no lifgrad preset")
        preset, names = _FACTORIES[factory]
        cells = dict(zip(fn.__code__.co_freevars,
                         (c.cell_contents for c in (fn.__closure__ or ()))))
        params = {}
        for var, pname in names.items():
            val = cells[var]
            if torch.is_tensor(val):
                val = val.item()
            params[pname] = float(val)
        return preset, params

    def layer_map(self, module) -> LayerMap:
        """The :class:`LayerMap` of a constructed float64 snnTorch ``Leaky``,
        ``Synaptic`` or ``RLeaky`` (see the module docstring for the equations)."""
        kind = _module_name(module)
        if type(module) not in (snn.Leaky, snn.Synaptic, snn.RLeaky):
            raise ValueError(f"{kind}: lifgrad.verify.snntorch maps Leaky, Synaptic and RLeaky "
                             f"only{'; ' + UNMAPPED[kind] if kind in UNMAPPED else ''}")
        if module.inhibition or module.state_quant:
            raise ValueError(f"{kind}: inhibition and state_quant are not mapped")
        reset = module.reset_mechanism
        delay = bool(module.reset_delay)
        if reset == "zero" and kind in ("Synaptic", "RLeaky"):
            raise ValueError(
                f"{kind}: reset_mechanism='zero' zeroes the whole new potential including the "
                f"input of the step, u_t = (1 - r_t)(beta u_{{t-1}} + ...), which lifgrad's zero "
                f"reset (A3) cannot express")
        G = module.graded_spikes_factor
        if isinstance(G, torch.nn.Parameter) or np.ndim(to_numpy(G)) != 0:
            raise ValueError(f"{kind}: only a fixed scalar graded_spikes_factor is mapped")
        G = float(to_numpy(G))
        if G != 1.0 and (kind != "Leaky" or not delay):
            raise ValueError(f"{kind}: graded_spikes_factor != 1 is mapped only for Leaky with "
                             f"reset_delay=True")
        preset, pp = self.surrogate_of(module)
        sg = _sg.get("zero") if preset == "zero" else _sg.get(preset, **pp)

        beta = to_numpy(module.beta)
        beta_hat = np.clip(beta, 0.0, 1.0)
        # torch's clamp passes the gradient for 0 <= beta <= 1 (inclusive), 0 outside
        beta_mask = ((beta >= 0.0) & (beta <= 1.0)).astype(np.float64)
        theta = to_numpy(module.threshold)
        kw = {}
        notes = []
        bias = 0.0
        if kind == "Synaptic":
            a = to_numpy(module.alpha)
            kw["alpha_s"] = np.clip(a, 0.0, 1.0)
            alpha_mask = ((a >= 0.0) & (a <= 1.0)).astype(np.float64)
        limits = []
        if preset != "zero" and _sg.preset(preset).note:
            notes.append(f"{preset}: {_sg.preset(preset).note}")
        if preset in ("snntorch.sigmoid", "snntorch.spike_rate_escape") and not _pow2(pp["slope"]):
            notes.append(f"{preset}(slope={pp['slope']:g}): snnTorch forms grad_output * slope "
                         f"in float32 (the spike's gradient is float32), rounded unless the slope "
                         f"is a power of two")
            limits.append(Limit("float32 slope product", F32_TOL, notes[-1]))
        recurrent = None
        if kind == "RLeaky":
            if module.all_to_all:
                rec = module.recurrent
                if not isinstance(rec, torch.nn.Linear):
                    raise ValueError(f"{kind}: all_to_all with conv2d is not mapped "
                                     f"(linear_features only)")
                recurrent = "all"
                kw["R"] = to_numpy(rec.weight)
                if rec.bias is not None:
                    bias = to_numpy(rec.bias)
                notes.append(
                    "RLeaky(all_to_all=True) raises a dtype error in float64 (float32 spike into "
                    "a float64 nn.Linear); the adapter casts the spike to float64 at the Linear's "
                    "input")
                notes.append(_F32_NOTE.format(what="through the recurrent Linear"))
                limits.append(_F32_SPIKE)
            else:
                recurrent = "one"
                kw["R"] = to_numpy(module.V)
                notes.append(_F32_NOTE.format(what="through the one-to-one recurrence x * V"))
                limits.append(_F32_SPIKE)
        learn = {n for n, _ in module.named_parameters()}
        if np.ndim(theta) == 0 and reset == "subtract" and (
                "threshold" in learn or float(np.float32(theta)) != float(theta)):
            notes.append("0-dim threshold: snnTorch's reset product (float32 reset) * threshold "
                         "is a float32 tensor, so the subtracted threshold is float32(threshold) "
                         "and dL/dthreshold through the reset is summed in float32 (~1e-8); a "
                         "per-neuron threshold avoids it")
            limits.append(Limit("float32 threshold product", F32_TOL, notes[-1]))
        post_reset = False
        if delay or reset == "none":
            detach = True
            gamma = None
            if reset == "zero":
                kw["u_reset"] = 0.0
        else:
            detach = False
            post_reset = True
            if reset == "subtract":
                gamma = beta_hat * theta
                notes.append("reset_delay=False subtract: canonical (gamma = beta*theta) only "
                             "while snnTorch's delayed term H(mem_{t-1} - theta) on the "
                             "post-reset membrane is 0 (post-reset potential <= theta)")
            else:
                gamma = None
                kw["u_reset"] = 0.0
            notes.append(_F32_NOTE.format(what="through the immediate (non-detached) reset"))
            limits.append(_F32_SPIKE)
        params = LIFParams(alpha=beta_hat, theta=theta, gamma=gamma, **kw)
        config = LIFConfig(reset=reset, detach_reset=detach, strict=True, surrogate=sg,
                           synaptic=kind == "Synaptic", recurrent=recurrent)
        domain = (functools.partial(delayed_term_where, theta=theta)
                  if not delay and reset == "subtract" else None)
        theta_shape = np.shape(theta)

        def _reduce(g, shape):
            g = np.asarray(g, np.float64)
            return g.sum() if shape == () and g.ndim else g

        def param_grads(g, I, tr):
            out = {}
            dbeta = np.asarray(g.alpha, np.float64)
            dtheta = np.asarray(g.theta, np.float64)
            if g.gamma is not None:                         # gamma = beta^ * theta
                dgamma = np.asarray(g.gamma, np.float64)
                dbeta = dbeta + theta * dgamma
                dtheta = dtheta + beta_hat * dgamma
            if "beta" in learn:
                out["beta"] = _reduce(dbeta * beta_mask, np.shape(beta))
            if "threshold" in learn:
                out["threshold"] = _reduce(dtheta, theta_shape)
            if kind == "Synaptic" and "alpha" in learn:
                out["alpha"] = _reduce(np.asarray(g.alpha_s) * alpha_mask,
                                       np.shape(kw["alpha_s"]))
            if kind == "RLeaky":
                if recurrent == "all":
                    if "recurrent.weight" in learn:
                        out["recurrent.weight"] = g.R
                    if "recurrent.bias" in learn:
                        out["recurrent.bias"] = np.asarray(g.I).reshape(-1, g.I.shape[-1]).sum(0)
                elif "V" in learn:
                    out["V"] = _reduce(g.R, np.shape(kw["R"]))
            return out

        return LayerMap(config, params, bias=bias, post_reset=post_reset, spike_scale=G,
                        param_grads=param_grads, notes=tuple(dict.fromkeys(notes)),
                        limits=tuple(dict.fromkeys(limits)), domain=domain,
                        hidden_limits=(_F32_HIDDEN,))

    def forward(self, module, x):
        """``(spk, mem)`` stacked ``(T, B, N)`` from zero state (mem as snnTorch
        stores/returns it, spk cast from snnTorch's float32 to mem's dtype)."""
        if isinstance(module, snn.RLeaky) and isinstance(getattr(module, "recurrent", None),
                                                         torch.nn.Linear):
            if not getattr(module.recurrent, "_lifgrad_cast", False):
                module.recurrent.register_forward_pre_hook(cast_to_weight)
                module.recurrent._lifgrad_cast = True
        module.reset_mem()
        spks, mems = [], []
        for t in range(x.shape[0]):
            spk, mem = self.call_outputs(module, module(x[t]))
            spks.append(spk)
            mems.append(mem)
        mem = torch.stack(mems)
        # snnTorch's spike is float32; cast to the model's dtype so that a float64 Linear
        # can read it (a float64 snnTorch stack otherwise raises a dtype error).  The
        # cast's backward rounds the incoming gradient to float32, as snnTorch does anyway.
        return torch.stack(spks).to(mem.dtype), mem

    def call_outputs(self, module, output):
        return (output[0] if isinstance(output, tuple) else output), module.mem

    def prepare(self, module):
        if hasattr(module, "reset_mem"):
            module.reset_mem()

    def build(self, case) -> Built:
        """Random per-neuron learnable beta in (0.5, 0.95) and threshold in (0.8,
        1.2) (``clamp_beta``: beta[0] = 1.3), alpha in (0.3, 0.9) for Synaptic,
        recurrent weights for RLeaky.  For ``reset_delay=False`` subtract the
        input is capped below ``(2 - beta) theta`` so that snnTorch's delayed
        term stays 0."""
        neuron, variant, surrogate = case.neuron, case.variant, case.surrogate
        reset, delay, all_to_all = _parse(neuron, variant)
        sg_params = self.option(case, "sg_params")
        sg_params = CASE_PARAMS.get(surrogate, {}) if sg_params is None else dict(sg_params)
        label = surrogate
        defaults = dict(_sg.preset(surrogate).defaults)
        if any(float(v) != float(defaults.get(k, np.nan)) for k, v in sg_params.items()):
            label += "(" + ", ".join(f"{k}={v:g}" for k, v in sg_params.items()) + ")"
        N = case.N
        rng, I, A, Bm = problem(case.seed, case.T, case.B, N)
        beta = rng.uniform(0.5, 0.95, N)
        thr = rng.uniform(0.8, 1.2, N)
        if self.option(case, "clamp_beta"):
            beta[0] = 1.3
        alpha = V = None
        if neuron == "Synaptic":
            alpha = rng.uniform(0.3, 0.9, N)
            I = 0.5 * I
        elif neuron == "RLeaky":
            if all_to_all:
                V = rng.uniform(-0.4, 0.4, (N, N))
                alpha = rng.uniform(-0.1, 0.1, N)            # recurrent bias
            else:
                V = rng.uniform(-0.5, 0.5, N)
        notes = ()
        if reset == "subtract" and not delay:
            cap = (2.0 - np.clip(beta, 0, 1)) * thr * 0.999
            I = np.minimum(I, cap)
            notes = ("input capped at 0.999 (2 - beta) theta per neuron so that the "
                     "post-reset membrane stays <= theta (snnTorch's delayed term r = 0)",)
        module = make_module(neuron, variant, surrogate, beta, thr, alpha, V, N, sg_params)
        return Built(case, module, I, A, Bm, (neuron, variant, label), notes=notes)


ADAPTER = SnnTorch()


def delayed_term_where(tr, v, theta):
    """Why a ``reset_delay=False`` subtract run left the mapping's domain: the
    steps where the post-reset membrane ``u_t - theta v_t`` exceeds theta (so
    snnTorch's leftover delayed term subtracts theta once more at ``t + 1``,
    which lifgrad's cell cannot express), or "" when there is none."""
    post, bad = _above_after_reset(tr.u, v, theta)
    n = int(np.sum(bad))
    if not n:
        return ""
    t, b, i = np.unravel_index(int(np.flatnonzero(bad)[0]), bad.shape)
    th = float(np.broadcast_to(theta, post.shape[-1:])[i])
    return (f"reset_delay=False with the subtract reset: at {n} step(s) the post-reset membrane "
            f"stays above the threshold (first at t={t}, b={b}, n={i}: {post[t, b, i]:.6g} > "
            f"{th:.6g}), where snnTorch subtracts the threshold a second time at the next step; "
            f"lifgrad's cell subtracts once per spike, so these gradients cannot be compared "
            f"(lower the input, or use reset_delay=True)")


def delayed_term_steps(m, I, theta):
    """Steps where snnTorch's leftover delayed term of ``reset_delay=False``
    subtract is 1: the post-reset membrane ``u_t - theta v_t`` (lifgrad's trace
    under the mapping ``m``) exceeds theta, so snnTorch's next step differs from
    the canonical form."""
    v, tr = lif_forward(mapped_input(m, np.asarray(I)), m.params,
                        m.config.replace(dtype="float64"))
    return int(np.sum(_above_after_reset(tr.u, v, theta)[1]))


def _above_after_reset(u, v, theta):
    """The post-reset membrane ``u_t - theta v_t`` of steps 0..T-2 and where it
    exceeds theta (snnTorch then subtracts theta once more at the next step)."""
    post = np.asarray(u[:-1]) - theta * np.asarray(v[:-1])
    return post, post - theta > 0
