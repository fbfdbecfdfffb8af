"""Rockpool 3.1.0's ``LIFTorch`` against lifgrad (issue 18).

What ``LIFTorch.forward`` computes per step (read from
``rockpool/nn/modules/torch/lif_torch.py``)::

    isyn = isyn + x_t (+ spikes_{t-1} @ w_rec)          input, recurrence
    vmem = alpha vmem;  isyn = beta isyn                decay
    vmem = vmem + isyn + noise + bias                    integrate
    n_t  = min(floor(vmem / theta) [vmem >= theta], max_spikes_per_dt)
    vmem = vmem - n_t theta                              subtract reset

``alpha = exp(-dt/tau_mem)``, ``beta = exp(-dt/tau_syn)`` (``leak_mode='taus'``,
or the decays themselves with ``leak_mode='decays'``).  On lifgrad's cell:
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

float64: Rockpool's parameters, states and recordings are created float32
(``cast_fn`` to ``torch.float``, ``torch.zeros`` of the default dtype), and
both spike functions end in ``.float()``.  The check builds the module under
``torch.set_default_dtype(float64)``, converts it with ``.double()``, writes
every parameter again in float64, and runs it with dtype-keeping subclasses
of ``StepPWL`` / ``PeriodicExponential`` (same forward and backward); a stock
spike function is checked within a float32 precision limit.

Refused with the reason: ``n_synapses > 1`` (several synaptic states per
neuron; lifgrad's cell has one), ``noise_std != 0`` (random), ``leak_mode=
'bitshifts'`` (not mapped), a spike function other than the two above.
``LIFJax`` is not covered yet (its inputs are cast to float32 whatever JAX's
64-bit switch says, so a float64 check needs more than this adapter has).
See ``derivations/peers.md`` (Rockpool 3.1.0).
"""
from __future__ import annotations

import contextlib
import functools

import numpy as np

from .. import surrogates as _sgs
from ..config import LIFConfig, LIFParams
from .common import F32_TOL, LayerMap, Limit, problem, require_torch
from .protocol import Built
from .torchpeer import TorchAdapter

DEFAULT_SURROGATE = "rockpool.StepPWL"
DT = 1e-3
TAU_MEM, TAU_SYN = 4.3e-3, 2.7e-3          # not float32-exact: the float64 rewrite matters

# variant -> keywords of make_module
VARIANTS = {
    "LIFTorch": {
        "defaults": dict(),
        "max_spikes 1": dict(max_spikes=1),
        "max_spikes 3": dict(max_spikes=3),
        "taus per neuron": dict(per_neuron=True),
        "bias": dict(bias=True),
        "threshold 0.8, bias": dict(theta=0.8, bias=True),
        "has_rec": dict(rec=True),
        "has_rec, max_spikes 2, bias": dict(rec=True, max_spikes=2, bias=True),
        "leak_mode decays": dict(decays=True),
        "leak_mode decays, has_rec": dict(decays=True, rec=True, per_neuron=True),
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
    "(the check builds and runs it in float64)",
)


def _rp():
    require_torch()
    from rockpool.nn.modules.torch import lif_torch as lt
    return lt


@functools.lru_cache(maxsize=None)
def spike_functions():
    """Dtype-keeping subclasses of Rockpool's spike functions, by name."""
    lt = _rp()
    out = {}
    for name in ("StepPWL", "PeriodicExponential"):
        base = getattr(lt, name)

        def fwd(ctx, x, *args, base=base):
            return base.forward(ctx, x, *args).to(x.dtype)
        out[name] = type(f"{name}64", (base,), {"forward": staticmethod(fwd),
                                                "__doc__": f"Rockpool's {name}, spikes in "
                                                           f"the input's dtype."})
    return out


def _spike_kind(fn):
    """``(name, dtype_keeping)`` of a module's ``spike_generation_fn`` (a bound
    ``apply``); ValueError for anything else."""
    lt = _rp()
    cls = getattr(fn, "__self__", fn)
    ours = spike_functions()
    for name in ("StepPWL", "PeriodicExponential"):
        if isinstance(cls, type) and issubclass(cls, getattr(lt, name)):
            return name, issubclass(cls, ours[name])
    raise ValueError(f"spike_generation_fn: {getattr(cls, '__name__', cls)!r} is not covered: "
                     f"only Rockpool's StepPWL and PeriodicExponential have lifgrad presets")


@contextlib.contextmanager
def _float64_default():
    torch = require_torch()
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def _value(t):
    a = np.asarray(t.detach().cpu().numpy() if hasattr(t, "detach") else t, np.float64)
    return float(a) if a.ndim == 0 else a


def make_module(variant="defaults", surrogate=DEFAULT_SURROGATE, N=6, seed=0):
    """A float64 ``LIFTorch`` of ``variant`` (:data:`VARIANTS`) with the preset's
    dtype-keeping spike function."""
    torch = require_torch()
    lt = _rp()
    if variant not in VARIANTS["LIFTorch"]:
        raise ValueError(f"variant: expected one of {', '.join(VARIANTS['LIFTorch'])}, "
                         f"got {variant!r}")
    if surrogate not in ("rockpool.StepPWL", "rockpool.PeriodicExponential"):
        raise ValueError(f"surrogate: expected rockpool.StepPWL or rockpool.PeriodicExponential, "
                         f"got {surrogate!r}")
    kw = VARIANTS["LIFTorch"][variant]
    rng = np.random.default_rng(seed + 17)
    per = kw.get("per_neuron", False)
    tau_m = np.linspace(3e-3, 6e-3, N) if per else TAU_MEM
    # per neuron: (N, n_synapses) = (N, 1), as Rockpool's tau_syn shape
    tau_s = np.linspace(1.5e-3, 4e-3, N)[:, None] if per else TAU_SYN
    theta = kw.get("theta", 1.0)
    bias = rng.uniform(-0.1, 0.3, N) if kw.get("bias") else None
    ctor = dict(shape=(N, N), dt=DT, has_rec=kw.get("rec", False),
                spike_generation_fn=spike_functions()[surrogate.split(".")[1]])
    if "max_spikes" in kw:
        ctor["max_spikes_per_dt"] = torch.tensor(float(kw["max_spikes"]))
    if kw.get("decays"):
        ctor["leak_mode"] = "decays"
    with _float64_default():
        m = lt.LIFTorch(**ctor).double()
    with torch.no_grad():
        if kw.get("decays"):
            m.alpha.data = torch.as_tensor(np.exp(-DT / np.asarray(tau_m)), dtype=torch.float64)
            m.beta.data = torch.as_tensor(np.exp(-DT / np.asarray(tau_s)), dtype=torch.float64)
        else:
            m.tau_mem.data = torch.as_tensor(tau_m, dtype=torch.float64)
            m.tau_syn.data = torch.as_tensor(tau_s, dtype=torch.float64)
        m.threshold.data = torch.as_tensor(theta, dtype=torch.float64)
        if bias is not None:
            m.bias.data = torch.as_tensor(bias, dtype=torch.float64)
        if kw.get("rec"):
            m.w_rec.data = torch.as_tensor(rng.normal(0, 0.4 / np.sqrt(N), (N, N)),
                                           dtype=torch.float64)
    return m


class Rockpool(TorchAdapter):
    """Rockpool's ``LIFTorch`` (``StepPWL`` / ``PeriodicExponential``)."""

    name = "rockpool"
    neurons = NEURONS
    default_surrogate = DEFAULT_SURROGATE
    preset_case = ("LIFTorch", "max_spikes 3")
    quick = (("LIFTorch", "defaults", DEFAULT_SURROGATE),
             ("LIFTorch", "has_rec, max_spikes 2, bias", DEFAULT_SURROGATE),
             ("LIFTorch", "max_spikes 3", "rockpool.PeriodicExponential"))
    option_defaults = {}

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
            if np.any(th != th[0]):
                raise ValueError("threshold: a per-neuron threshold is not covered: Rockpool's "
                                 "surrogate divides by each neuron's threshold, lifgrad's preset "
                                 "takes one")
            params["threshold"] = float(th[0])
        return f"rockpool.{name}", params

    def layer_map(self, module) -> LayerMap:
        """lifgrad's :class:`LayerMap` of a constructed Rockpool ``LIFTorch``."""
        kind = type(module).__name__
        if kind != "LIFTorch":
            raise ValueError(f"module: Rockpool {kind} is not covered yet: only LIFTorch is "
                             f"mapped (LIFJax casts its input to float32 whatever JAX's 64-bit "
                             f"switch says)")
        if module.n_synapses != 1:
            raise ValueError(f"n_synapses: {module.n_synapses} synaptic states per neuron are not "
                             f"covered: lifgrad's synaptic cell has one")
        if float(_value(module.noise_std)) != 0.0:
            raise ValueError("noise_std: a noisy membrane is random; only noise_std=0 is checked")
        if module.leak_mode not in ("taus", "decays"):
            raise ValueError(f"leak_mode: {module.leak_mode!r} is not covered (taus and decays "
                             f"are)")
        name, keeps = _spike_kind(module.spike_generation_fn)
        torch = require_torch()
        N = module.size_out
        with torch.no_grad():
            alpha = np.broadcast_to(_value(module.alpha.double()), (N,)).copy()
            beta = np.broadcast_to(_value(module.beta.double()).reshape(-1)
                                   if np.ndim(_value(module.beta)) else _value(module.beta),
                                   (N,)).copy()
        theta = np.broadcast_to(_value(module.threshold), (N,)).copy()
        bias = np.broadcast_to(_value(module.bias), (N,)).copy()
        sname, sparams = self.surrogate_of(module)
        M = float(_value(module.max_spikes_per_dt))
        max_spikes = None if M >= 2 ** 16 else int(M)
        if max_spikes is not None and M != max_spikes:
            raise ValueError(f"max_spikes_per_dt: expected a whole number, got {M}")
        rec = bool(module._has_rec)
        config = LIFConfig(reset="subtract", detach_reset=False, strict=False,
                           surrogate=_sgs.get(sname, **sparams), synaptic=True, decay_input=True,
                           max_spikes=max_spikes if max_spikes is None or max_spikes <= 255
                           else None, theta_grad="ratio", recurrent="all" if rec else None)
        if max_spikes is not None and max_spikes > 255:
            raise ValueError(f"max_spikes_per_dt: {max_spikes} between 256 and 2^16 is not "
                             f"mapped (lifgrad's count type holds 255 or no maximum)")
        R = _value(module.w_rec).T.copy() if rec else None
        params = LIFParams(alpha=alpha, theta=theta, gamma=alpha * theta, alpha_s=beta,
                           u_bias=bias, R=R)
        notes = list(_NOTES)
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
        tau_s = np.reshape(_value(module.tau_syn), -1) if mode == "taus" else None

        def fit(g, name):
            target = shape[name]
            g = np.asarray(g, np.float64)
            if int(np.prod(target)) == 1:
                return np.reshape(np.sum(g), target)
            return np.reshape(g, target)

        def param_grads(g, I, tr):
            out = {}
            ga = np.asarray(g.alpha) + theta * np.asarray(g.gamma)
            gb = np.asarray(g.alpha_s)
            if mode == "taus":
                out["tau_mem"] = fit(ga * alpha * dt / np.asarray(tau_m) ** 2, "tau_mem")
                out["tau_syn"] = fit(gb * beta * dt / np.asarray(tau_s) ** 2, "tau_syn")
            else:
                out["alpha"] = fit(ga, "alpha")
                out["beta"] = fit(gb, "beta")
            out["threshold"] = fit(np.asarray(g.theta) + alpha * np.asarray(g.gamma), "threshold")
            out["bias"] = fit(g.u_bias, "bias")
            if rec:
                out["w_rec"] = fit(np.asarray(g.R).T, "w_rec")
            return {k: v for k, v in out.items() if k in shape}
        return LayerMap(config, params, gain=1.0, bias=0.0, u0=None, post_reset=True,
                        param_grads=param_grads, notes=tuple(notes), limits=limits,
                        hidden_limits=limits)

    # -- running --------------------------------------------------------------------

    def forward(self, module, x):
        """``(spikes, record['vmem'])`` ``(T, B, N)`` from a reset state: ``x``
        ``(T, B, n)`` is given to Rockpool as ``(B, T, n)``."""
        torch = require_torch()
        if not (isinstance(x, torch.Tensor) and x.ndim == 3):
            raise ValueError("I: expected a torch tensor of shape (T, B, N)")
        module.reset_state()
        with _float64_default():
            out, _, rec = module.evolve(x.transpose(0, 1), record=True)
        return out.transpose(0, 1), rec["vmem"].transpose(0, 1)

    def call_input(self, module, args):
        x = args[0]
        return x.transpose(0, 1)

    def call_outputs(self, module, output):
        raise TypeError("compare(): a Rockpool network is run through evolve(); record it with "
                        "lifgrad.verify.rockpool (not covered by compare yet)")

    def prepare(self, module):
        fn = module.spike_generation_fn
        try:
            name, keeps = _spike_kind(fn)
            if not keeps:
                module.spike_generation_fn = spike_functions()[name].apply
        except ValueError:
            pass
        module.reset_state()

    def build(self, case) -> Built:
        module = make_module(case.variant, case.surrogate, N=case.N, seed=case.seed)
        kw = VARIANTS["LIFTorch"][case.variant]
        # the drive for a firing rate of ~0.2-0.4 (with dt = 1e-3 the synapse sums ~3 steps)
        mean, std = (0.35, 0.6) if not kw.get("max_spikes") or kw["max_spikes"] == 1 \
            else (0.9, 1.0)
        if "max_spikes" not in kw:
            mean, std = 0.6, 0.9
        _, I, A, Bm = problem(case.seed, case.T, case.B, case.N, mean=mean, std=std)
        return Built(case, module, I, A, Bm, (case.neuron, case.variant, case.surrogate))


ADAPTER = Rockpool()
