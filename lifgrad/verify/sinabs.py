"""sinabs 3.1.3 adapter: map its LIF neurons onto lifgrad's cell and check them.

``ADAPTER`` (:class:`Sinabs`) implements :mod:`lifgrad.verify.protocol`.

sinabs' ``LIF`` (``sinabs/layers/functional/lif.py``, ``lif_forward_single``)
runs, per step, on its post-reset state ``V`` (zero at rest)::

    v_t = alpha V_{t-1} + c x_t           c = 1 - alpha (norm_input, LIF's default) or 1
    n_t = spike_fn(v_t, theta)            MultiSpike: trunc(v/theta) for v > 0 (no maximum)
                                          MaxSpike(M): the same, at most M;  SingleSpike: v >= theta
    V_t = v_t - theta n_t                 MembraneSubtract (not detached)

with ``alpha = exp(-1/tau_mem)`` (``train_alphas``: ``alpha_mem`` itself);
``IAF`` is ``alpha = 1`` without ``norm_input``, ``LIFSqueeze`` the LIF on a
``(B*T, ...)`` input (batch-major).  lifgrad's pre-reset ``u_t = v_t``: the
subtract reset removes ``theta n`` before the next decay, so lifgrad's free
reset strength is the decayed ``gamma = alpha theta``; the input map is the
identity with ``LIFConfig(norm_input=...)`` (M1), the spike count
``max_spikes`` None / M / 1 (M2), ``strict=False`` (sinabs fires at ``>=``).
The spike functions' backward is ``grad * surrogate(v, theta)`` (one bump at
theta whatever the count; no gradient to the threshold), lifgrad's
``phi(u - theta)`` with the ``sinabs.*`` presets.  sinabs returns only the
spikes; the membrane of the loss is ``recordings['v_mem']``
(``record_states=True``), the post-reset ``V_t = u_t - theta n_t``.

Chain rule to sinabs' parameter: alpha enters lifgrad's cell as ``alpha`` (the
decay and, with norm_input, ``1 - alpha``: lifgrad's ``g.alpha`` has both) and
through ``gamma = alpha theta``::

    dL/dalpha_mem = g.alpha + theta g.gamma
    dL/dtau_mem   = dL/dalpha_mem * alpha / tau_mem^2       (alpha = exp(-1/tau_mem))

float64: sinabs' spike functions end in ``.float()`` (float32 spikes, so every
gradient reaching a spike is rounded to float32), and ``tau_mem`` /
``alpha_mem`` are created float32.  The cases (and ``compare`` on its copy)
use dtype-keeping subclasses of ``MultiSpike``, ``SingleSpike``, ``MaxSpike``
(the same forward and backward, the output in the input's dtype) and write the
time constants again in float64 after ``.double()``; a module run with a stock
spike function is checked within a float32 precision limit.

``tau_syn`` is lifgrad's synaptic cell with ``decay_input`` (M3),
``i_t = alpha_syn (i_{t-1} + x_t)``, ``dL/dtau_syn = dL/dalpha_syn alpha_syn /
tau_syn^2`` (or ``alpha_syn`` itself with ``train_alphas``);
``MembraneSubtract(subtract_value=c)`` is a free ``gamma = alpha c``.

``MembraneReset()`` (``reset_value=0``) is the zero reset with the mask
``(n == 0)`` detached; with several spikes per step (``MultiSpike``,
``MaxSpike``) the mask reads whether the neuron fired, lifgrad's zero reset
of a count (M12, ``h_t = min(n_t, 1)``).  ``ExpLeak`` (no spikes; its output is the
membrane ``v = alpha v + x``, ``(1 - alpha) x`` with ``norm_input``) is the
cell without reset read as a readout (``spike_scale=0``).

``ALIF`` (``sinabs/layers/functional/alif.py``, ``alif_forward_single``)::

    i_t   = alpha_syn (i_{t-1} + x_t)  (tau_syn; else x_t),  times (1 - alpha) with
            norm_input, and stored so: the next step decays (1 - alpha) alpha_syn i
    v_t   = alpha V_{t-1} + i_t
    B_t   = b0 + adapt_scale b_{t-1}                    the threshold of the step
    n_t   = spike_fn(v_t, B_t)                          no gradient to B_t
    V_t   = v_t - B_t n_t                               MembraneSubtract: B_t with its gradient
    b_t   = rho b_{t-1} + (1 - rho) n_t                 rho = exp(-1/tau_adapt)

is lifgrad's adaptive cell with ``a_t = b_{t-1} / (1 - rho)`` (L1): ``rho =
alpha_adapt``, ``beta_a = adapt_scale (1 - rho)`` (an exact
reparametrisation), ``theta = b0``; the reset removes the adaptive threshold
(``reset_by_threshold``, M7) decayed by the next step, factor ``gamma =
alpha``; the spike function's threshold gets no gradient (``theta_grad=
'none'``, M8); with ``tau_syn`` and ``norm_input`` the stored ``(1 - alpha)``
makes the synapse ``alpha_s = (1 - alpha) alpha_syn`` with ``decay_input``
(M3) and no further scaling (without ``tau_syn`` it is ``norm_input``, M1).
Chain rules::

    dL/dalpha_mem   = g.alpha + g.gamma [- alpha_syn g.alpha_s  (tau_syn, norm_input)]
    dL/dalpha_syn   = (1 - alpha) g.alpha_s  (norm_input)   or  g.alpha_s
    dL/dalpha_adapt = g.rho - adapt_scale g.beta_a
    dL/dadapt_scale = (1 - rho) g.beta_a        dL/db0 = g.theta   (when trainable)

(times ``alpha / tau^2`` for the ``tau_*`` parameters).  sinabs' recordings
of ALIF are aliased (each step's record dict is written again by the next
step: ``recordings['v_mem'][:, t]`` holds the *next* step's pre-reset
membrane); the adapter reads each step's pre-reset membrane ``v_t`` where
``reset_fn`` receives it, and the loss reads that (``post_reset=False``).
The run starts from a zero state in the input's dtype: sinabs makes its
states in float32 whatever the layer's dtype, so a float64 ALIF's first-step
threshold ``b0 + adapt_scale b`` is float32 and that step's share of
``dL/db0`` is rounded to float32 (5e-9 relative on the standard problem).
``ALIFRecurrent`` with a bias-free ``nn.Linear`` as
``rec_connect`` adds ``W n_{t-1}`` to the input: lifgrad's all-to-all ``R =
W`` (R1).  The threshold-scaled surrogates (``SingleExponential``, ALIF's
default, ``PeriodicExponential``, ``Heaviside``), which sinabs calls with
``B_t`` (a per-step, per-neuron threshold), are mapped with
``surrogate_threshold='live'`` (M10), as on a LIF / IAF with a per-neuron
``spike_threshold``; ``Gaussian`` and ``MultiGaussian`` take no threshold.

A trainable ``spike_threshold`` of LIF / IAF (``requires_grad=True``): the
spike functions pass it no gradient, so the map has ``theta_grad='none'``
(M8) on every LIF / IAF; it is learnt through the reset (``gamma = alpha
theta``) and the recorded post-reset membrane::

    dL/dspike_threshold = g.theta + alpha g.gamma     (g.theta: the membrane's -sum Bm n)

(``g.theta`` alone with ``MembraneSubtract(subtract_value=...)``, zero with
``MembraneReset``).  ``LIFRecurrent`` / ``IAFRecurrent`` with a bias-free
``nn.Linear`` as ``rec_connect`` add ``W n_{t-1}`` to the input before the
synapse and the ``(1 - alpha)`` scaling: lifgrad's all-to-all ``R = W`` (R1),
``dL/dW = g.R``; their recordings are aliased as ALIF's (``lif_recurrent``
appends each step's state dict, which the next step writes again), so they
are run the same way and the loss reads the pre-reset membrane.
sinabs' ``StatefulLayer.__deepcopy__`` fails on them (it ``getattr`` s
``'rec_connect.weight'``; ALIFRecurrent's ``_param_dict`` lacks
``rec_connect``), so ``compare`` copies them itself (:meth:`Sinabs.copy_module`:
rebuilt with a deep copy of ``rec_connect``, every parameter cloned).  A ``rec_connect`` with a bias (``nn.Linear``'s default):
``lif_recurrent`` starts from ``rec_out = 0`` and adds ``rec_connect(n_{t-1})``
from the second step on, so the bias is an input current ``b [t >= 1]``
(``LayerMap.bias`` a function of the input's shape), ``dL/db = sum_{t >= 1}
dL/dI_t`` (a test compares the module's direct call with lifgrad's spikes).

``min_v_mem`` (LIF, IAF, their Recurrent and Squeeze forms, ALIF, ExpLeak):
sinabs clips the state after the reset (ALIF: after the reset and the
threshold update; ExpLeak: the carried state and the recorded v_mem, its
output is the unclipped membrane), ``relu(v - m) + m``; the next step decays
it, so lifgrad's pre-reset cell takes ``u_t = max(alpha u_{t-1} - reset,
alpha m) + c s_t`` (``LIFConfig.u_min``, M11) and the recorded post-reset
membrane is clipped too (``common.reported_membrane``).  sinabs registers
it with ``requires_grad=False`` (LIF, IAF, ExpLeak; ALIF keeps what it is
given); a trainable one (a user's ``requires_grad_(True)``, an
``nn.Parameter`` given to ALIF) gets lifgrad's ``dL/du_min`` (M11: ``alpha``
times the sum of ``ubar_t`` over the clipped steps, plus the clipped entries
of a recorded post-reset membrane).  Neither sinabs nor lifgrad clips the
initial state (sinabs starts
from an unclipped 0), so ``min_v_mem > 0`` maps as well.

``MembraneReset(reset_value=r)``, r != 0: sinabs sets ``v (n == 0) + r``,
adding r to every neuron, spiking or not (its docstring: the value a neuron
that spiked is reset to); the next step decays it, ``u_t = alpha (1 - h)
u_{t-1} + alpha r + input``: lifgrad's zero reset to 0 with the membrane bias
``u_bias = alpha r`` (M6) and ``u_0 = -r`` (sinabs' first step starts from an
unshifted 0: ``alpha u_0 + alpha r = 0``), the recorded post-reset membrane
shifted by r (``LayerMap.mem_offset``); ``dL/dtau_mem`` gets ``r g.u_bias``
through ``alpha``.  With ``min_v_mem`` m sinabs clips after adding r,
``max((1 - h) v + r, m)``, decayed into the next step: ``max(alpha (1 - h)
v, alpha (m - r)) + alpha r``, lifgrad's clip at ``u_min = m - r`` before its
bias ``alpha r`` (the recorded membrane clipped in lifgrad's coordinates,
then shifted by r).

Not mapped yet (``layer_map`` refuses them, naming what lifgrad lacks):
a ``rec_connect`` other
than an ``nn.Linear``.
See ``derivations/peers.md`` (sinabs 3.1.3).
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np

from .. import surrogates as _sgs
from ..config import LIFConfig, LIFParams
from .common import F32_TOL, LayerMap, Limit, problem, require_torch
from .protocol import Built
from .torchpeer import TorchAdapter, cuda_backend_unavailable
from .torchpeer import value as _value

DEFAULT_SURROGATE = "sinabs.SingleExponential"

# variant name -> (spike function, keywords).  The spike function: 'multi',
# 'single' or ('max', M).  Keywords: norm_input, tau (a number or a per-neuron
# list), theta, train_alphas.
_LIF_VARIANTS = {
    "MultiSpike": ("multi", dict()),
    "SingleSpike": ("single", dict()),
    "MaxSpike(2)": (("max", 2), dict()),
    "MultiSpike no norm_input": ("multi", dict(norm_input=False)),
    "SingleSpike no norm_input": ("single", dict(norm_input=False)),
    "MaxSpike(1) no norm_input": (("max", 1), dict(norm_input=False)),
    "MultiSpike theta=0.8": ("multi", dict(theta=0.8)),
    "MultiSpike tau per neuron": ("multi", dict(tau="per-neuron")),
    "MultiSpike train_alphas": ("multi", dict(train_alphas=True)),
    "MultiSpike tau_syn": ("multi", dict(tau_syn=True)),
    "SingleSpike tau_syn no norm_input": ("single", dict(tau_syn=True, norm_input=False)),
    "MultiSpike tau_syn train_alphas": ("multi", dict(tau_syn=True, train_alphas=True)),
    "MultiSpike subtract_value=0.6": ("multi", dict(subtract_value=0.6)),
    "SingleSpike MembraneReset": ("single", dict(membrane_reset=True)),
    "MaxSpike(1) MembraneReset no norm_input": (("max", 1), dict(membrane_reset=True,
                                                                norm_input=False)),
    "MultiSpike trainable threshold": ("multi", dict(train_threshold=True)),
    "SingleSpike trainable threshold, tau per neuron": ("single", dict(train_threshold=True,
                                                                       tau="per-neuron")),
    # a per-neuron threshold: the threshold-scaled surrogates take each neuron's (M10)
    "MultiSpike threshold per neuron": ("multi", dict(theta="per-neuron")),
    # min_v_mem (M11), the input driving the membrane below it often
    "MultiSpike min_v_mem": ("multi", dict(min_v_mem=-0.375, input=(0.3, 2.5))),
    "SingleSpike no norm_input min_v_mem": ("single", dict(norm_input=False, min_v_mem=-0.5,
                                                           input=(0.05, 0.8))),
    "SingleSpike MembraneReset min_v_mem": ("single", dict(membrane_reset=True,
                                                           min_v_mem=-0.25, input=(0.3, 2.5))),
    # MembraneReset of a count: the mask (n == 0), a zero reset where it fired (M12)
    "MultiSpike MembraneReset": ("multi", dict(membrane_reset=True, input=(2.0, 5.0))),
    # MembraneReset(reset_value=r): r added to every neuron after each step
    "SingleSpike MembraneReset(reset_value=0.3), tau per neuron": ("single", dict(
        membrane_reset=0.3, tau="per-neuron")),
    "MaxSpike(3) MembraneReset tau_syn min_v_mem": (("max", 3), dict(
        membrane_reset=True, tau_syn=True, min_v_mem=-0.25, input=(2.0, 6.0))),
    "MultiSpike tau_syn trainable threshold min_v_mem": (
        "multi", dict(tau_syn=True, train_threshold=True, min_v_mem=-0.5, input=(0.3, 3.0))),
    "SingleSpike min_v_mem=0.2": ("single", dict(min_v_mem=0.2, input=(0.5, 2.5))),
    "MultiSpike subtract_value=0.6 min_v_mem=0": ("multi", dict(subtract_value=0.6,
                                                                 min_v_mem=0.0,
                                                                 input=(0.3, 2.5))),
    # min_v_mem above reset_value: a neuron that spiked is clipped up to m
    "SingleSpike MembraneReset(reset_value=0.3) min_v_mem=0.5": (
        "single", dict(membrane_reset=0.3, min_v_mem=0.5, input=(0.5, 2.5))),
    "MultiSpike MembraneReset(reset_value=-0.2) min_v_mem=-0.5, tau_syn": (
        "multi", dict(membrane_reset=-0.2, min_v_mem=-0.5, tau_syn=True, input=(0.3, 3.0))),
    # a trainable min_v_mem (requires_grad switched on): dL/dm = lifgrad's dL/du_min
    "MultiSpike trainable min_v_mem": ("multi", dict(min_v_mem=-0.375, train_min_v_mem=True,
                                                     input=(0.3, 2.5))),
    "SingleSpike MembraneReset(reset_value=0.3) trainable min_v_mem=0.5": (
        "single", dict(membrane_reset=0.3, min_v_mem=0.5, train_min_v_mem=True,
                       input=(0.5, 2.5))),
}
# ALIF: keywords as for LIF, plus train_threshold (b0 and adapt_scale as
# nn.Parameters) and rec (ALIFRecurrent's bias-free Linear)
_ALIF_VARIANTS = {
    "SingleSpike": ("single", dict()),
    "SingleSpike no norm_input": ("single", dict(norm_input=False)),
    "SingleSpike tau_syn": ("single", dict(tau_syn=True)),
    "SingleSpike tau_syn no norm_input": ("single", dict(tau_syn=True, norm_input=False)),
    "MultiSpike tau per neuron": ("multi", dict(tau="per-neuron")),
    "MaxSpike(2) tau_syn train_alphas": (("max", 2), dict(tau_syn=True, train_alphas=True)),
    "SingleSpike subtract_value=0.6": ("single", dict(subtract_value=0.6)),
    "SingleSpike MembraneReset": ("single", dict(membrane_reset=True)),
    "MultiSpike MembraneReset": ("multi", dict(membrane_reset=True, input=(2.0, 5.0))),
    "SingleSpike MembraneReset(reset_value=0.2)": ("single", dict(membrane_reset=0.2)),
    "SingleSpike trainable b0, adapt_scale": ("single", dict(train_threshold=True)),
    "SingleSpike min_v_mem": ("single", dict(min_v_mem=-0.5, input=(0.3, 3.0))),
    "MultiSpike tau_syn min_v_mem": ("multi", dict(tau_syn=True, min_v_mem=-0.375,
                                                   input=(0.5, 4.0))),
    "SingleSpike MembraneReset min_v_mem": ("single", dict(membrane_reset=True,
                                                           min_v_mem=-0.25, input=(0.3, 3.0))),
    "SingleSpike MembraneReset(reset_value=0.2) min_v_mem=-0.3": (
        "single", dict(membrane_reset=0.2, min_v_mem=-0.3, input=(0.3, 3.0))),
    # an nn.Parameter given as min_v_mem (ALIF keeps what it is given)
    "SingleSpike trainable min_v_mem": ("single", dict(min_v_mem=-0.5, train_min_v_mem=True,
                                                       input=(0.3, 3.0))),
}
VARIANTS = {
    "LIF": _LIF_VARIANTS,
    "ALIF": _ALIF_VARIANTS,
    "ALIFRecurrent": {"SingleSpike": ("single", dict(rec=True)),
                      "MultiSpike tau_syn": ("multi", dict(rec=True, tau_syn=True)),
                      "SingleSpike, rec_connect bias": ("single", dict(rec=True,
                                                                      rec_bias=True))},
    # an nn.Linear as rec_connect (R1); its bias enters from the second step on
    "LIFRecurrent": {"MultiSpike": ("multi", dict(rec=True)),
                     "MultiSpike, rec_connect bias": ("multi", dict(rec=True, rec_bias=True)),
                     "SingleSpike MembraneReset(reset_value=0.25)": (
                         "single", dict(rec=True, membrane_reset=0.25)),
                     "SingleSpike tau_syn, rec_connect bias": (
                         "single", dict(rec=True, rec_bias=True, tau_syn=True)),
                     "MultiSpike min_v_mem": ("multi", dict(rec=True, min_v_mem=-0.375,
                                                            input=(0.3, 2.5))),
                     "SingleSpike MembraneReset(reset_value=0.25) min_v_mem=0.4": (
                         "single", dict(rec=True, membrane_reset=0.25, min_v_mem=0.4,
                                        input=(0.3, 2.5))),
                     "MultiSpike trainable min_v_mem": (
                         "multi", dict(rec=True, min_v_mem=-0.375, train_min_v_mem=True,
                                       input=(0.3, 2.5))),
                     "SingleSpike tau_syn no norm_input, trainable threshold": (
                         "single", dict(rec=True, tau_syn=True, norm_input=False,
                                        train_threshold=True))},
    "IAFRecurrent": {"MaxSpike(2)": (("max", 2), dict(rec=True)),
                     "MaxSpike(2), rec_connect bias": (("max", 2), dict(rec=True,
                                                                      rec_bias=True))},
    "ExpLeak": {"default": (None, dict(norm_input=False)),
                "min_v_mem": (None, dict(norm_input=False, min_v_mem=-0.5, input=(0.0, 0.6))),
                "trainable min_v_mem": (None, dict(norm_input=False, min_v_mem=-0.5,
                                                   train_min_v_mem=True, input=(0.0, 0.6))),
                "norm_input": (None, dict(norm_input=True)),
                "train_alphas, tau per neuron": (None, dict(train_alphas=True, norm_input=False,
                                                            tau="per-neuron"))},
    "LIFSqueeze": {"MultiSpike": ("multi", dict()), "SingleSpike": ("single", dict()),
                   "MaxSpike(1) no norm_input": (("max", 1), dict(norm_input=False))},
    "IAF": {"MultiSpike": ("multi", dict()), "SingleSpike": ("single", dict()),
            "MaxSpike(1)": (("max", 1), dict()), "MultiSpike theta=0.8": ("multi", dict(theta=0.8)),
            "MultiSpike tau_syn": ("multi", dict(tau_syn=True)),
            "MaxSpike(2) trainable threshold": (("max", 2), dict(train_threshold=True)),
            "SingleSpike min_v_mem": ("single", dict(min_v_mem=-0.5, input=(0.0, 0.8))),
            "MaxSpike(2) MembraneReset": (("max", 2), dict(membrane_reset=True,
                                                           input=(0.8, 1.5))),
            "SingleSpike MembraneReset(reset_value=-0.2)": ("single", dict(
                membrane_reset=-0.2))},
}
NEURONS = {n: tuple(vs) for n, vs in VARIANTS.items()}

TAU = 2.7               # not float32-exact: the float64 rewrite after .double() matters
TAU_SYN = 1.9
TAU_ADAPT = 5.3         # ALIF's adaptation
ADAPT_SCALE = 1.8       # ALIF's default adapt_scale
ALIF_SURROGATE = "sinabs.Gaussian"       # the cases' surrogate on ALIF (see _alif_map)
_ALIF_KINDS = ("ALIF", "ALIFRecurrent")
# the layers whose recordings are aliased (each step's record dict is written
# again by the next step): their pre-reset membrane is read in reset_fn (_alif_run)
_ALIASED = _ALIF_KINDS + ("LIFRecurrent", "IAFRecurrent")

# Parameters the surrogate cases construct (sinabs' own names; non-default
# where the default would make the check weak).
SURROGATE_PARAMS = {
    "sinabs.SingleExponential": dict(),
    "sinabs.PeriodicExponential": dict(grad_width=0.4, grad_scale=1.5),
    "sinabs.Heaviside": dict(window=0.6),
    "sinabs.Gaussian": dict(mu=0.1, sigma=0.4, grad_scale=1.2),
    "sinabs.MultiGaussian": dict(sigma=0.5, h=0.15, s=4.0, grad_scale=1.0),
}
# the presets that take the neuron's threshold (sinabs calls g(v, theta))
_WITH_THRESHOLD = ("sinabs.SingleExponential", "sinabs.PeriodicExponential", "sinabs.Heaviside")
# the threshold-scaled surrogates at a threshold that changes (ALIF's b0 + adapt_scale b)
# or differs per neuron: lifgrad's surrogate_threshold='live' (M10)
LIVE_CASES = (("ALIF", "SingleSpike", "sinabs.SingleExponential"),
              ("ALIF", "SingleSpike tau_syn", "sinabs.PeriodicExponential"),
              ("ALIF", "SingleSpike trainable b0, adapt_scale", "sinabs.Heaviside"),
              ("ALIF", "MultiSpike tau per neuron", "sinabs.SingleExponential"),
              ("ALIFRecurrent", "MultiSpike tau_syn", "sinabs.Heaviside"),
              ("LIF", "MultiSpike threshold per neuron", "sinabs.PeriodicExponential"))

# input (mean, std): with norm_input the membrane settles at the input, without
# it at input / (1 - alpha); IAF integrates
_INPUT = {True: (1.2, 2.5), False: (0.35, 0.6), "IAF": (0.3, 0.8),
          # ALIF: (norm_input, tau_syn); its threshold rises by adapt_scale (1 - rho) a spike
          ("ALIF", True, False): (1.6, 2.5), ("ALIF", False, False): (0.5, 0.7),
          ("ALIF", True, True): (2.2, 3.0), ("ALIF", False, True): (0.35, 0.6)}

_COMMON_NOTES = (
    "sinabs fires at v >= theta (lifgrad strict=False); MultiSpike counts trunc(v/theta) "
    "spikes (unbounded), MaxSpike at most M, both by a floating-point division",
    "the reset subtracts theta per spike from the post-reset state before the next decay, so "
    "lifgrad's free reset strength is gamma = alpha theta; the reset is not detached",
    "the spike functions return no gradient for the threshold; the surrogate is one bump at "
    "theta whatever the count (MaxSpike's clip is ignored in the backward)",
    "the membrane in the loss is recordings['v_mem'] (record_states=True), the post-reset "
    "state; sinabs' layers take (batch, time, ...) and keep their state across calls (the "
    "check zeroes it before every run)",
)

_ALIF_NOTES = (
    "ALIF's adaptation b = rho b + (1 - rho) n is lifgrad's a_t = b_{t-1} / (1 - rho) with "
    "beta_a = adapt_scale (1 - rho) (L1), (L2); its threshold b0 + adapt_scale b is read "
    "before the step's update",
    "ALIF's MembraneSubtract removes that adaptive threshold, with its gradient into b "
    "(lifgrad's reset_by_threshold, M7, factor alpha: the removal decays with the next step); "
    "the spike function passes the threshold no gradient (theta_grad='none', M8)",
    "ALIF's recordings are aliased: the record dict of each step is written again by the next "
    "step, so recordings['v_mem'][:, t] holds the next step's pre-reset membrane (the last one "
    "the post-reset state); the check reads each step's pre-reset membrane where reset_fn "
    "receives it, from a zero state in the input's dtype (sinabs' own is float32, which "
    "rounds the first step's share of dL/db0 in a float64 model to float32)",
    "ALIF's docstring gives V(t+1) = alpha V(t) + (1 - alpha) sum w.s(t) and V -> V - b0, b -> 0 "
    "on a spike; the code subtracts the adaptive threshold b0 + adapt_scale b and leaves b to "
    "rise by (1 - rho)",
)
_ALIF_SYN_NOTE = ("ALIF with tau_syn and norm_input stores (1 - alpha) i_syn back into its "
                  "state (LIF scales only what it adds to v_mem): the synapse decays by "
                  "(1 - alpha) alpha_syn per step, lifgrad's decay_input with alpha_s = "
                  "(1 - alpha) alpha_syn and no further scaling")

_UNSUPPORTED = {}    # sinabs layers recognised as neurons but refused by name
_ALIASED_NOTE = ("LIFRecurrent's (IAFRecurrent's) recordings are aliased as ALIF's: each step's "
                 "record dict is written again by the next step (recordings['v_mem'][:, t] is "
                 "the next step's pre-reset membrane); the check reads each step's pre-reset "
                 "membrane where reset_fn receives it (post_reset=False)")


def _sn():
    require_torch()
    import sinabs.activation as act
    import sinabs.layers as layers
    return layers, act


@functools.lru_cache(maxsize=None)
def spike_functions():
    """Dtype-keeping subclasses of sinabs' spike functions: ``{'multi':
    MultiSpike64, 'single': SingleSpike64, 'max': MaxSpike64}`` (the same
    forward and backward; the spikes in the input's dtype, not float32)."""
    _, act = _sn()
    from sinabs.activation.spike_generation import MaxSpikeInner

    class MultiSpike64(act.MultiSpike):
        """sinabs' MultiSpike, spikes in the input's dtype."""

        @staticmethod
        def forward(ctx, v_mem, spike_threshold, surrogate_grad_fn):
            return act.MultiSpike.forward(ctx, v_mem, spike_threshold,
                                          surrogate_grad_fn).to(v_mem.dtype)

    class SingleSpike64(act.SingleSpike):
        """sinabs' SingleSpike, spikes in the input's dtype."""

        @staticmethod
        def forward(ctx, v_mem, spike_threshold, surrogate_grad_fn):
            return act.SingleSpike.forward(ctx, v_mem, spike_threshold,
                                           surrogate_grad_fn).to(v_mem.dtype)

    class MaxSpikeInner64(MaxSpikeInner):
        """sinabs' MaxSpikeInner, spikes in the input's dtype."""

        @staticmethod
        def forward(ctx, v_mem, max_num_spikes_per_bin, spike_threshold, surrogate_grad_fn):
            return MaxSpikeInner.forward(ctx, v_mem, max_num_spikes_per_bin, spike_threshold,
                                         surrogate_grad_fn).to(v_mem.dtype)

    @dataclasses.dataclass
    class MaxSpike64(act.MaxSpike):
        """sinabs' MaxSpike, spikes in the input's dtype."""

        def apply(self, v_mem, spike_threshold, surrogate_grad_fn):
            return MaxSpikeInner64.apply(v_mem, self.max_num_spikes_per_bin, spike_threshold,
                                         surrogate_grad_fn)

    return {"multi": MultiSpike64, "single": SingleSpike64, "max": MaxSpike64}


def _spike_kind(spike_fn):
    """``(max_spikes, dtype_keeping)`` of a sinabs spike function; ValueError otherwise."""
    _, act = _sn()
    ours = spike_functions()
    if isinstance(spike_fn, type):
        if issubclass(spike_fn, act.MultiSpike):
            return None, issubclass(spike_fn, ours["multi"])
        if issubclass(spike_fn, act.SingleSpike):
            return 1, issubclass(spike_fn, ours["single"])
    elif isinstance(spike_fn, act.MaxSpike):
        M = spike_fn.max_num_spikes_per_bin
        if M is not None and (isinstance(M, bool) or not isinstance(M, (int, np.integer))
                              or M < 1):
            raise ValueError(f"spike_fn: MaxSpike(max_num_spikes_per_bin={M!r}): expected an "
                             f"integer >= 1 or None")
        return (None if M is None else int(M)), isinstance(spike_fn, ours["max"])
    raise ValueError(f"spike_fn: expected sinabs' MultiSpike, SingleSpike or a MaxSpike "
                     f"instance, got {spike_fn!r}")


def _dtype_keeping(spike_fn):
    """The dtype-keeping equivalent of a stock spike function (itself if it is one)."""
    M, keeps = _spike_kind(spike_fn)
    if keeps:
        return spike_fn
    ours = spike_functions()
    if isinstance(spike_fn, type):
        return ours["multi"] if M is None else ours["single"]
    return ours["max"](max_num_spikes_per_bin=M)


def _kind(module):
    layers, _ = _sn()
    for name in ("ExpLeakSqueeze", "ExpLeak", "LIFSqueeze", "IAFSqueeze", "LIF", "IAF",
                 "ALIF", "ALIFRecurrent", "LIFRecurrent", "IAFRecurrent"):
        # (subclasses first)
        cls = getattr(layers, name, None)
        if cls is not None and type(module) is cls:
            return name
    name = type(module).__name__
    if name in _UNSUPPORTED and type(module).__module__.startswith("sinabs"):
        raise ValueError(f"module: sinabs {name} is not covered yet: {_UNSUPPORTED[name]}")
    raise ValueError(f"module: expected a sinabs LIF, LIFSqueeze, LIFRecurrent, IAF, IAFSqueeze, "
                     f"IAFRecurrent, ExpLeak, ALIF or ALIFRecurrent, got "
                     f"{type(module).__module__}.{type(module).__qualname__}")


def _make_surrogate(name, params=None):
    _, act = _sn()
    if name not in SURROGATE_PARAMS:
        raise ValueError(f"surrogate: expected a sinabs preset ({', '.join(SURROGATE_PARAMS)}), "
                         f"got {name!r}")
    params = SURROGATE_PARAMS[name] if params is None else params
    return getattr(act, name.split(".", 1)[1])(**params)


def make_module(neuron, variant, surrogate=DEFAULT_SURROGATE, N=6, B=3, T=20):
    """A float64 sinabs ``neuron`` of ``variant`` (see :data:`VARIANTS`) with the
    preset surrogate, dtype-keeping spike functions and float64 time constants
    (``LIFSqueeze`` reads ``B`` as its batch size)."""
    if neuron not in VARIANTS:
        raise ValueError(f"neuron: expected one of {', '.join(VARIANTS)}, got {neuron!r}")
    if variant not in VARIANTS[neuron]:
        raise ValueError(f"variant: expected one of {', '.join(VARIANTS[neuron])} for "
                         f"{neuron}, got {variant!r}")
    m = _make_module(neuron, VARIANTS[neuron][variant], surrogate, N, B)
    if VARIANTS[neuron][variant][1].get("train_min_v_mem"):      # a user's requires_grad_
        m.min_v_mem.requires_grad_(True)
    return m


def _make_module(neuron, spec, surrogate, N, B):
    torch = require_torch()
    layers, _ = _sn()
    spike, kw = spec
    if neuron == "ExpLeak":
        tau = (np.linspace(1.6, 4.3, N) if kw.get("tau") == "per-neuron" else TAU)
        m = layers.ExpLeak(tau_mem=torch.tensor(tau, dtype=torch.float64),
                           norm_input=kw["norm_input"], record_states=True,
                           min_v_mem=kw.get("min_v_mem"),
                           train_alphas=kw.get("train_alphas", False)).double()
        with torch.no_grad():
            tau_t = torch.tensor(tau, dtype=torch.float64)
            if m.train_alphas:
                m.alpha_mem.data = torch.exp(-1.0 / tau_t)
            else:
                m.tau_mem.data = tau_t
        return m
    fns = spike_functions()
    spike_fn = fns[spike] if isinstance(spike, str) else fns["max"](max_num_spikes_per_bin=spike[1])
    theta = kw.get("theta", 1.0)
    if theta == "per-neuron":
        theta = np.linspace(0.7, 1.4, N)
    common = dict(spike_threshold=torch.tensor(theta, dtype=torch.float64), spike_fn=spike_fn,
                  surrogate_grad_fn=_make_surrogate(surrogate), record_states=True)
    if "subtract_value" in kw:
        common["reset_fn"] = _sn()[1].MembraneSubtract(subtract_value=kw["subtract_value"])
    if kw.get("membrane_reset"):
        r = kw["membrane_reset"]
        common["reset_fn"] = _sn()[1].MembraneReset(
            reset_value=0.0 if r is True else float(r))
    if kw.get("min_v_mem") is not None:                                   # (M11)
        common["min_v_mem"] = kw["min_v_mem"]
    syn = kw.get("tau_syn", False)
    if syn:
        common["tau_syn"] = torch.tensor(TAU_SYN, dtype=torch.float64)
    rec = _rec_linear(N, kw.get("rec_bias", False)) if kw.get("rec") else None
    if neuron == "IAFRecurrent":
        m = layers.IAFRecurrent(rec_connect=rec, **common).double()
        _float64_tau_syn(m, syn, False)
        m.spike_threshold.requires_grad_(bool(kw.get("train_threshold")))
        return m
    if neuron == "IAF":
        m = layers.IAF(**common).double()
        _float64_tau_syn(m, syn, False)
        m.spike_threshold.requires_grad_(bool(kw.get("train_threshold")))
        return m
    if neuron in _ALIF_KINDS:
        return _make_alif(neuron, kw, common, syn, N)
    tau = (np.linspace(1.6, 4.3, N) if kw.get("tau") == "per-neuron" else TAU)
    lif_kw = dict(tau_mem=torch.tensor(tau, dtype=torch.float64),
                  norm_input=kw.get("norm_input", True),
                  train_alphas=kw.get("train_alphas", False), **common)
    if neuron == "LIFSqueeze":
        m = layers.LIFSqueeze(batch_size=B, **lif_kw).double()
    elif neuron == "LIFRecurrent":
        m = layers.LIFRecurrent(rec_connect=rec, **lif_kw).double()
    else:
        m = layers.LIF(**lif_kw).double()
    with torch.no_grad():                 # created float32 by sinabs: write them in float64
        tau_t = torch.tensor(tau, dtype=torch.float64)
        if m.train_alphas:
            m.alpha_mem.data = torch.exp(-1.0 / tau_t)
        else:
            m.tau_mem.data = tau_t
    _float64_tau_syn(m, syn, m.train_alphas)
    m.spike_threshold.requires_grad_(bool(kw.get("train_threshold")))
    return m


def _make_alif(neuron, kw, common, syn, N):
    """A float64 sinabs ALIF (ALIFRecurrent with a bias-free float64 Linear)."""
    torch = require_torch()
    layers, _ = _sn()
    per = kw.get("tau") == "per-neuron"
    tau = np.linspace(1.6, 4.3, N) if per else TAU
    tau_a = np.linspace(3.0, 8.0, N) if per else TAU_ADAPT
    common = dict(common)
    if kw.get("train_min_v_mem"):            # ALIF keeps a tensor it is given as it is
        common["min_v_mem"] = torch.nn.Parameter(torch.tensor(common["min_v_mem"],
                                                              dtype=torch.float64))
    scale = ADAPT_SCALE
    if kw.get("train_threshold"):           # registered as the parameters b0, adapt_scale
        common["spike_threshold"] = torch.nn.Parameter(common["spike_threshold"])
        scale = torch.nn.Parameter(torch.tensor(ADAPT_SCALE, dtype=torch.float64))
    akw = dict(tau_mem=torch.tensor(tau, dtype=torch.float64),
               tau_adapt=torch.tensor(tau_a, dtype=torch.float64), adapt_scale=scale,
               norm_input=kw.get("norm_input", True), train_alphas=kw.get("train_alphas", False),
               **common)
    if neuron == "ALIFRecurrent":
        m = layers.ALIFRecurrent(rec_connect=_rec_linear(N, kw.get("rec_bias", False)),
                                 **akw).double()
    else:
        m = layers.ALIF(**akw).double()
    with torch.no_grad():                 # created float32 by sinabs: write them in float64
        for name, val in (("mem", tau), ("adapt", tau_a)):
            t = torch.tensor(val, dtype=torch.float64)
            if m.train_alphas:
                getattr(m, f"alpha_{name}").data = torch.exp(-1.0 / t)
            else:
                getattr(m, f"tau_{name}").data = t
    _float64_tau_syn(m, syn, m.train_alphas)
    return m


def _rec_linear(N, bias=False):
    """The cases' recurrence: a float64 ``nn.Linear(N, N)``, bias-free unless
    ``bias``."""
    torch = require_torch()
    lin = torch.nn.Linear(N, N, bias=bias, dtype=torch.float64)
    rng = np.random.default_rng(7)
    with torch.no_grad():
        lin.weight.data = torch.as_tensor(rng.normal(0.0, 0.5 / np.sqrt(N), (N, N)),
                                          dtype=torch.float64)
        if bias:
            lin.bias.data = torch.as_tensor(rng.uniform(-0.3, 0.3, N), dtype=torch.float64)
    return lin


def _alif_run(module, xb):
    """sinabs' ALIF (ALIFRecurrent, LIFRecurrent, IAFRecurrent) on ``xb``
    ``(B, T, ...)`` from a zero state in ``xb``'s dtype: its spikes ``(B, T,
    ...)``; the pre-reset membrane of each step (which sinabs' aliased
    recordings hold one record early) is read where ``reset_fn`` receives it
    and kept in ``module._lifgrad_mem``.

    The zero state is made here in ``xb``'s dtype because sinabs makes it in
    float32 whatever the layer's dtype (``init_state_with_shape``): in a
    float64 ALIF the first step's threshold ``b0 + adapt_scale b`` is then a
    float32 tensor (a 0-d float64 parameter times a float32 ``b`` stays
    float32), and the first step's share of ``dL/db0`` is rounded to float32
    (5e-9 relative on the standard problem)."""
    B, _, *trailing = xb.shape
    module.init_state_with_shape((B, *trailing))
    for name, buf in list(module.named_buffers(recurse=False)):
        module.register_buffer(name, buf.to(xb.dtype))
    reset, mems = module.reset_fn, []

    def recording_reset(spikes, state, threshold):
        mems.append(state["v_mem"])
        return reset(spikes, state, threshold)
    module.reset_fn = recording_reset
    try:
        spk = type(module).forward(module, xb)
    finally:
        module.reset_fn = reset
    module._lifgrad_mem = require_torch().stack(mems, 1)
    return spk


_CLIP_NOTE = ("min_v_mem: sinabs clips the state after the reset, relu(v - m) + m, and "
              "decays it next step: lifgrad's u_t = max(alpha u_{t-1} - reset, alpha m) + "
              "c s_t (u_min, M11), zero gradient where clipped; sinabs registers it with "
              "requires_grad=False, and when a user makes it trainable dL/dm is lifgrad's "
              "dL/du_min = alpha sum of ubar_t over the clipped steps (plus the clipped "
              "entries of the recorded membrane)")


def _min_v_mem(module):
    """sinabs' ``min_v_mem`` as lifgrad's ``u_min`` (M11): None, or a number
    (neither clips the initial state, so ``min_v_mem > 0`` maps too)."""
    m = getattr(module, "min_v_mem", None)
    if m is None:
        return None
    val = _value(m) if hasattr(m, "detach") else m
    if np.ndim(val) != 0:
        raise ValueError(f"min_v_mem: expected a number, got shape {np.shape(val)}")
    return float(val)


def _min_v_mem_grad(module, g, shape):
    """``{"min_v_mem": dL/dm}`` when ``min_v_mem`` is a trainable tensor (sinabs
    registers it with ``requires_grad=False``; a user may switch that on),
    else ``{}``: lifgrad's ``g.u_min`` (M11: alpha times the sum of ubar over
    the clipped steps, plus the clipped entries of a recorded post-reset
    membrane), unchanged under ``MembraneReset(r)``'s shift ``u_min = m - r``."""
    m = getattr(module, "min_v_mem", None)
    if not getattr(m, "requires_grad", False):
        return {}
    return {"min_v_mem": np.reshape(np.float64(g.u_min), shape.get("min_v_mem", ()))}


def _reset_clip_threshold(module, th):
    """``(zero_reset, sub, u_min, theta, r)`` of a sinabs spiking layer whose
    threshold is ``th`` (``spike_threshold``, ALIF's ``b0``): its reset
    (``MembraneReset(r)``, or ``MembraneSubtract``
    whose ``subtract_value`` ``sub`` is None or a number), ``min_v_mem`` m as
    lifgrad's ``u_min`` (``m - r`` under ``MembraneReset(r)``: lifgrad's
    state is sinabs' shifted by -r), the threshold's value and
    ``MembraneReset``'s ``reset_value`` r (0 otherwise); ValueError naming
    what is not mapped."""
    _, act = _sn()
    zero_reset = isinstance(module.reset_fn, act.MembraneReset)
    r = 0.0
    if zero_reset:
        r = module.reset_fn.reset_value
        if isinstance(r, bool) or not isinstance(r, (int, float)):
            raise ValueError(f"reset_fn: MembraneReset(reset_value={r!r}): expected a number "
                             f"(a tensor value is not mapped)")
        r = float(r)
    elif not isinstance(module.reset_fn, act.MembraneSubtract):
        raise ValueError(f"reset_fn: {type(module.reset_fn).__name__} is not covered: "
                         f"only MembraneSubtract and MembraneReset(reset_value=0) are mapped")
    sub = None if zero_reset else module.reset_fn.subtract_value
    if sub is not None and (isinstance(sub, bool) or not isinstance(sub, (int, float))):
        raise ValueError(f"reset_fn: MembraneSubtract(subtract_value={sub!r}): expected a "
                         f"number (a tensor value is not mapped)")
    u_min = _min_v_mem(module)
    if u_min is not None and r:
        # sinabs clips max((n == 0) v + r, m); lifgrad's state is sinabs' shifted
        # by -r (u_bias = alpha r after its clip): max(alpha (1 - h) u, alpha (m - r)) + alpha r
        u_min -= r
    if th is None:
        raise ValueError("spike_threshold: None is not supported")
    theta = _value(th)
    if np.any(np.asarray(theta) <= 0):
        raise ValueError(f"spike_threshold: expected > 0, got {theta}")
    return zero_reset, sub, u_min, theta, r


_RESET_VALUE_NOTE = (
    "MembraneReset(reset_value=r): sinabs sets v (n == 0) + r, adding r to every neuron, "
    "spiking or not (its docstring: the value a neuron that spiked is reset to); the next "
    "step decays it: lifgrad's zero reset to 0 with the membrane bias u_bias = alpha r (M6) "
    "and u_0 = -r (sinabs' first step starts from an unshifted 0), the recorded post-reset "
    "membrane shifted by r")


def _reset_value_bias(alpha, r):
    """``{"u_bias": alpha r}`` for ``MembraneReset(reset_value=r)``, r != 0 (the
    r added to every neuron after a step, decayed into the next; M6)."""
    if not r:
        return {}
    return {"u_bias": np.asarray(alpha, np.float64) * r if np.ndim(alpha) else alpha * r}


def _rec_weight(module):
    """``(R, b)`` of a recurrent sinabs layer: lifgrad's ``R`` (R1) and the bias
    of its ``rec_connect`` (None if it has none), which must be a
    ``torch.nn.Linear`` (ValueError otherwise)."""
    torch = require_torch()
    lin = module.rec_connect
    if not isinstance(lin, torch.nn.Linear):
        raise ValueError(f"rec_connect: {type(lin).__name__} is not covered: a "
                         f"torch.nn.Linear (lifgrad's R v_{{t-1}}, R1, and a bias from the "
                         f"second step on) is mapped")
    b = None if lin.bias is None else _value(lin.bias).astype(np.float64)
    return _value(lin.weight).copy(), b


def _from_second_step(b):
    """``LayerMap.bias`` of a biased ``rec_connect``: ``lif_recurrent`` adds
    ``rec_connect(n_{t-1})`` from the second step on (``rec_out`` starts at
    0), so its bias is an input current ``b [t >= 1]``."""
    def bias(shape):
        out = np.zeros((shape[0], 1, shape[-1]))
        out[1:, 0] = b
        return out
    return bias


_REC_BIAS_NOTE = ("rec_connect's bias: lif_recurrent starts from rec_out = 0 and adds "
                  "rec_connect(n_{t-1}) from the second step on, so the bias is an input "
                  "current b [t >= 1] (dL/db = sum over t >= 1 of dL/dI_t)")


def _float64_tau_syn(m, syn, train_alphas):
    """Write the synaptic time constant (or alpha_syn) again in float64."""
    if not syn:
        return
    torch = require_torch()
    with torch.no_grad():
        t = torch.tensor(TAU_SYN, dtype=torch.float64)
        if train_alphas:
            m.alpha_syn.data = torch.exp(-1.0 / t)
        else:
            m.tau_syn.data = t


def _fresh_state(module):
    """Forget the state (sinabs keeps it across calls and, for a new batch size,
    draws it at random from the old one): the next forward starts at zero."""
    torch = require_torch()
    for name, b in list(module.named_buffers(recurse=False)):
        module.register_buffer(name, torch.zeros(0, dtype=b.dtype, device=b.device))


class Sinabs(TorchAdapter):
    """sinabs' ``LIF``, ``LIFSqueeze``, ``LIFRecurrent``, ``IAF`` (``IAFSqueeze``,
    ``IAFRecurrent``), ``ALIF``, ``ALIFRecurrent``, ``ExpLeak`` with
    ``MembraneSubtract`` / ``MembraneReset`` and ``MultiSpike`` / ``SingleSpike``
    / ``MaxSpike``."""

    name = "sinabs"
    neurons = NEURONS
    default_surrogate = DEFAULT_SURROGATE
    preset_case = ("LIF", "MultiSpike")
    quick = (("LIF", "MultiSpike", DEFAULT_SURROGATE),
             ("LIF", "SingleSpike no norm_input", DEFAULT_SURROGATE),
             ("IAF", "MaxSpike(1)", DEFAULT_SURROGATE),
             ("ALIF", "SingleSpike tau_syn", ALIF_SURROGATE),
             ("LIF", "MultiSpike", "sinabs.PeriodicExponential"))
    option_defaults = {}

    def copy_module(self, module):
        """A copy of a ``LIFRecurrent`` / ``IAFRecurrent`` / ``ALIFRecurrent``,
        whose own ``__deepcopy__`` fails (it rebuilds the layer sharing
        ``rec_connect`` and then ``getattr`` s ``'rec_connect.weight'``): rebuilt
        from ``_param_dict`` with a deep copy of ``rec_connect``, every
        parameter and buffer cloned (``requires_grad`` kept); None for the
        other layers (their deep copy works)."""
        if type(module).__name__ not in ("LIFRecurrent", "IAFRecurrent", "ALIFRecurrent"):
            return None
        import copy as _copy
        pd = dict(module._param_dict)
        pd["rec_connect"] = _copy.deepcopy(module.rec_connect)
        new = type(module)(**pd)
        for name, p in module.named_parameters():
            q = new.get_parameter(name)
            q.data = p.data.clone()
            q.requires_grad_(p.requires_grad)
        for name, b in module.named_buffers():
            new.get_buffer(name).data = b.data.clone()
        return new

    def repair_copy(self, original, copy):
        """sinabs' deep copy rebuilds a layer from ``_param_dict``, which for ALIF
        lacks ``norm_input`` (the copy gets the default True): set it back on
        the copy; and a trainable ``min_v_mem`` comes back with
        ``requires_grad=False``: set it back (so that its gradient is checked).  Returns
        a note ("" when nothing was repaired)."""
        notes = []
        if type(original).__name__ in _ALIF_KINDS and copy.norm_input != original.norm_input:
            copy.norm_input = original.norm_input
            notes.append(f"sinabs' deep copy of {type(original).__name__} loses norm_input "
                         f"(ALIF._param_dict omits it; the copy had True): set back to "
                         f"{original.norm_input} on lifgrad's copy")
        m0, m1 = getattr(original, "min_v_mem", None), getattr(copy, "min_v_mem", None)
        if getattr(m0, "requires_grad", False) and not getattr(m1, "requires_grad", True):
            m1.requires_grad_(True)
            notes.append(f"sinabs' deep copy of {type(original).__name__} drops min_v_mem's "
                         f"requires_grad: set back on lifgrad's copy")
        return "; ".join(notes)

    def cases(self, quick=False) -> list:
        """The protocol's cases, ALIF's run with ``ALIF_SURROGATE``, once with
        MultiGaussian, and the threshold-scaled surrogates at the live
        threshold (``LIVE_CASES``, M10)."""
        out = [self.case(c.neuron, c.variant, ALIF_SURROGATE)
               if c.neuron in _ALIF_KINDS and c.surrogate == DEFAULT_SURROGATE else c
               for c in super().cases(quick)]
        if not quick:
            out.append(self.case("ALIF", "SingleSpike", "sinabs.MultiGaussian"))
            out += [self.case(*c) for c in LIVE_CASES]
        return out

    def is_neuron(self, module):
        layers, _ = _sn()
        base = getattr(layers, "StatefulLayer", None)
        return (base is not None and isinstance(module, base)) or (
            type(module).__module__.startswith("sinabs.layers")
            and type(module).__name__ in _UNSUPPORTED)

    def surrogate_of(self, module):
        """``(preset name, {sinabs parameter: value})`` of a neuron's
        ``surrogate_grad_fn`` (or of a surrogate object); the presets that
        sinabs calls with the threshold get ``threshold`` from the neuron."""
        _, act = _sn()
        sf = getattr(module, "surrogate_grad_fn", module)
        cls = type(sf)
        name = f"sinabs.{cls.__name__}"
        if cls.__module__ != act.surrogate_gradient_fn.__name__ or name not in _sgs.PRESETS:
            ours = ", ".join(n.split(".", 1)[1] for n in SURROGATE_PARAMS)
            raise ValueError(f"surrogate_grad_fn: {cls.__module__}.{cls.__qualname__} has no "
                             f"lifgrad preset; supported: {ours}")
        params = {}
        for pname, _ in _sgs.preset(name).defaults:
            if pname == "threshold":
                continue
            val = getattr(sf, pname)
            if hasattr(val, "detach"):
                if val.numel() != 1:
                    raise ValueError(f"surrogate_grad_fn: {cls.__name__}.{pname} must be a "
                                     f"scalar, got shape {tuple(val.shape)}")
                val = float(val.detach())
            if isinstance(val, bool) or not isinstance(val, (int, float)):
                raise ValueError(f"surrogate_grad_fn: {cls.__name__}.{pname} must be a number, "
                                 f"got {val!r}")
            params[pname] = float(val)
        if name in _WITH_THRESHOLD and sf is not module:
            if self.live_threshold(module, name):
                params["threshold"] = 1.0     # replaced by each neuron's theta_t (M10)
            else:
                params["threshold"] = _value(module.spike_threshold)
        return name, params

    @staticmethod
    def live_threshold(module, name):
        """sinabs calls the threshold-scaled surrogates with the neuron's
        threshold as it is: on ALIF the adaptive ``b0 + adapt_scale b`` of the
        step, on LIF / IAF a per-neuron ``spike_threshold``; lifgrad evaluates
        them at each neuron's theta_t (``surrogate_threshold='live'``, M10)."""
        if name not in _WITH_THRESHOLD:
            return False
        if type(module).__name__ in _ALIF_KINDS:
            return True
        return bool(np.ndim(_value(module.spike_threshold)))

    def layer_map(self, module) -> LayerMap:
        """lifgrad's :class:`LayerMap` of a constructed sinabs LIF / LIFSqueeze / IAF."""
        kind = _kind(module)
        if kind.startswith("ExpLeak"):
            return self._leak_map(module, kind)
        if kind in _ALIF_KINDS:
            return self._alif_map(module, kind)
        th = module.spike_threshold
        zero_reset, sub, u_min, theta, r_add = _reset_clip_threshold(module, th)
        max_spikes, keeps = _spike_kind(module.spike_fn)
        sname, sparams = self.surrogate_of(module)
        sg = _sgs.get(sname, **sparams)
        live = "live" if self.live_threshold(module, sname) else "constant"
        torch = require_torch()
        R, rec_b = _rec_weight(module) if kind.endswith("Recurrent") else (None, None)
        if kind in ("IAF", "IAFSqueeze", "IAFRecurrent"):
            alpha, norm, tau_name, tau = 1.0, False, None, None
        else:
            norm = bool(module.norm_input)
            with torch.no_grad():
                alpha = _value(module.alpha_mem_calculated.double())
            if module.train_alphas:
                tau_name, tau = "alpha_mem", None
            else:
                tau_name, tau = "tau_mem", _value(module.tau_mem)
        syn = getattr(module, "alpha_syn", None) is not None \
            or getattr(module, "tau_syn", None) is not None
        alpha_s, syn_name, tau_s = None, None, None
        if syn:             # i = alpha_syn (i + x): the synapse decays its input (M3)
            with torch.no_grad():
                alpha_s = _value(module.alpha_syn_calculated.double())
            if getattr(module, "train_alphas", False):
                syn_name = "alpha_syn"
            else:
                syn_name, tau_s = "tau_syn", _value(module.tau_syn)
            if np.any(np.asarray(alpha_s) <= 0):
                raise ValueError(f"tau_syn: expected > 0 (alpha_syn > 0), got alpha_syn "
                                 f"{alpha_s}")
        # each spike removes `sub` (default theta) after the step; the next decay
        # makes lifgrad's reset strength gamma = alpha sub
        by_theta = not zero_reset and sub is None
        sub = theta if sub is None else float(sub)
        # MembraneReset(0): v (n == 0), the mask without gradient: the zero reset,
        # detached, to 0
        config = LIFConfig(reset="zero" if zero_reset else "subtract", detach_reset=zero_reset,
                           strict=False, surrogate=sg, norm_input=norm, max_spikes=max_spikes,
                           synaptic=syn, decay_input=syn, theta_grad="none",
                           recurrent="all" if R is not None else None,
                           surrogate_threshold=live, u_min=u_min)
        params = LIFParams(alpha=alpha, theta=theta,
                           gamma=np.asarray(alpha) * np.asarray(sub)
                           if np.ndim(alpha) or np.ndim(sub) else alpha * sub, R=R,
                           **({"alpha_s": alpha_s} if syn else {}),
                           **_reset_value_bias(alpha, r_add))
        notes = list(_COMMON_NOTES) + ([_CLIP_NOTE] if u_min is not None else [])
        if r_add:
            notes.append(_RESET_VALUE_NOTE)
        if th.requires_grad:
            notes.append("a trainable spike_threshold: the spike function passes it no gradient "
                         "(lifgrad's theta_grad='none', M8); it is learnt through the reset "
                         "(gamma = alpha theta) and the recorded post-reset membrane only")
        if syn:
            notes.append("tau_syn: sinabs' synaptic current is i_t = alpha_syn (i_{t-1} + x_t), "
                         "the input decaying in its own step (lifgrad's decay_input, M3), "
                         "alpha_syn = exp(-1/tau_syn)")
        if zero_reset:
            notes.append("MembraneReset: v (n == 0) + reset_value, the mask (spikes == 0) "
                         "without gradient (lifgrad's zero reset, detached); reset_value is "
                         "added to every neuron, spiking or not, unlike its docstring")
        elif module.reset_fn.subtract_value is not None:
            notes.append(f"MembraneSubtract(subtract_value={sub}) removes {sub} per spike "
                         f"whatever the threshold: gamma = alpha * {sub}")
        if _sgs.preset(sname).note:
            notes.append(f"{sname}: {_sgs.preset(sname).note}")
        limits = ()
        if not keeps:
            notes.append("sinabs' stock spike functions return float32 (.float()), so every "
                         "gradient reaching a spike is rounded to float32; lifgrad.verify's "
                         "copy runs them with a dtype-keeping subclass (same forward and "
                         "backward)")
            limits = (Limit("float32 spike", F32_TOL, "sinabs' spike functions return float32"),)
        if kind in ("LIFSqueeze", "IAFSqueeze"):
            notes.append(f"{kind} reads (B*T, ...) batch-major (row b*T + t)")
        if R is not None:
            notes += [f"{kind} adds rec_connect(n_{{t-1}}) to the input before the synapse "
                      f"(and norm_input's (1 - alpha)): lifgrad's R = rec_connect.weight "
                      f"(recurrent='all')", _ALIASED_NOTE]
        if rec_b is not None:
            notes.append(_REC_BIAS_NOTE)

        shape = {}
        for n, p in module.named_parameters():
            shape[n] = tuple(p.shape)

        def fit(g, name):
            target = shape[name]
            return np.reshape(np.sum(g) if int(np.prod(target)) == 1 else g, target)

        def param_grads(g, I, tr, alpha=alpha, sub=sub, tau=tau, tau_name=tau_name):
            out = {n: np.zeros(s) for n, s in shape.items()}     # not trainable: no gradient
            if R is not None:
                out["rec_connect.weight"] = np.asarray(g.R, np.float64)
            if rec_b is not None:
                out["rec_connect.bias"] = np.asarray(g.I, np.float64)[1:].sum(axis=(0, 1))
            out.update(_min_v_mem_grad(module, g, shape))
            if th.requires_grad:
                # the spike passes theta nothing (M8): g.theta holds a post-reset
                # membrane's -sum Bm n; the reset's gamma = alpha theta adds alpha g.gamma
                # (each term reduced on its own: a scalar theta's g.theta is summed)
                gt = fit(np.asarray(g.theta, np.float64), "spike_threshold")
                if by_theta:
                    gt = gt + fit(np.asarray(alpha) * np.asarray(g.gamma), "spike_threshold")
                out["spike_threshold"] = gt
            if syn_name is not None:
                gs = np.asarray(g.alpha_s, np.float64)
                if syn_name == "tau_syn":
                    gs = gs * np.asarray(alpha_s) / np.asarray(tau_s) ** 2
                out[syn_name] = fit(gs, syn_name)
            if tau_name is None:
                return out
            # dL/dalpha_mem: the decay (and 1 - alpha of norm_input) plus gamma = alpha sub,
            # each term reduced on its own (a scalar alpha's g.alpha is summed already,
            # a per-neuron threshold makes g.gamma per neuron)
            ca = np.asarray(alpha) / np.asarray(tau) ** 2 if tau_name == "tau_mem" else 1.0
            out[tau_name] = (fit(np.asarray(g.alpha, np.float64) * ca, tau_name)
                             + fit(np.asarray(sub) * np.asarray(g.gamma) * ca, tau_name))
            if r_add:                        # u_bias = alpha r
                out[tau_name] = out[tau_name] + fit(r_add * np.asarray(g.u_bias) * ca,
                                                    tau_name)
            return out
        # the recurrent layers' membrane is read before the reset (aliased recordings)
        return LayerMap(config, params, gain=1.0,
                        bias=0.0 if rec_b is None else _from_second_step(rec_b),
                        u0=-r_add if r_add else None, mem_offset=r_add, post_reset=R is None,
                        reset_value=None if zero_reset or module.reset_fn.subtract_value is None
                        else sub,
                        param_grads=param_grads, notes=tuple(notes), limits=limits,
                        hidden_limits=limits)

    def _alif_map(self, module, kind) -> LayerMap:
        """ALIF / ALIFRecurrent: lifgrad's adaptive cell with the reset by the
        adaptive threshold (M7) and no threshold gradient through the spike
        (M8); see the module docstring."""
        torch = require_torch()
        zero_reset, sub, u_min, theta, r_add = _reset_clip_threshold(module, module.b0)
        max_spikes, keeps = _spike_kind(module.spike_fn)
        sname, sparams = self.surrogate_of(module)
        sg = _sgs.get(sname, **sparams)
        live = "live" if self.live_threshold(module, sname) else "constant"
        norm = bool(module.norm_input)
        with torch.no_grad():
            alpha = _value(module.alpha_mem_calculated.double())
            rho = _value(module.alpha_adapt_calculated.double())
            alpha_syn = (None if module.alpha_syn_calculated is None
                         else _value(module.alpha_syn_calculated.double()))
        scale = _value(module.adapt_scale) if hasattr(module.adapt_scale, "detach") \
            else float(module.adapt_scale)
        params_of = dict(module.named_parameters())
        pre = "alpha" if module.train_alphas else "tau"
        taus = {k: (None if module.train_alphas else _value(getattr(module, f"tau_{k}")))
                for k in ("mem", "adapt", "syn") if getattr(module, f"{pre}_{k}", None)
                is not None}
        syn = alpha_syn is not None
        # the stored (1 - alpha) i_syn makes the synapse decay (1 - alpha) alpha_syn
        alpha_s = None if not syn else ((1 - np.asarray(alpha)) * alpha_syn if norm else alpha_syn)
        R, rec_b = _rec_weight(module) if kind == "ALIFRecurrent" else (None, None)
        by_theta = not zero_reset and sub is None
        config = LIFConfig(reset="zero" if zero_reset else "subtract", detach_reset=zero_reset,
                           strict=False, surrogate=sg, norm_input=norm and not syn,
                           max_spikes=max_spikes, synaptic=syn, decay_input=syn, adaptive=True,
                           reset_by_threshold=by_theta, theta_grad="none",
                           recurrent="all" if R is not None else None,
                           surrogate_threshold=live, u_min=u_min)
        a = np.asarray(alpha)
        gamma = a if by_theta else (None if zero_reset else a * float(sub))
        params = LIFParams(alpha=alpha, theta=theta, gamma=gamma, rho=rho,
                           beta_a=scale * (1 - np.asarray(rho)), R=R,
                           **({"alpha_s": alpha_s} if syn else {}),
                           **_reset_value_bias(alpha, r_add))
        notes = list(_COMMON_NOTES[:1]) + list(_ALIF_NOTES) + \
            ([_CLIP_NOTE] if u_min is not None else [])
        if syn and norm:
            notes.append(_ALIF_SYN_NOTE)
        if zero_reset:
            notes.append("MembraneReset: v (n == 0) + reset_value, the mask (spikes == 0) "
                         "without gradient (lifgrad's zero reset, detached)")
        if r_add:
            notes.append(_RESET_VALUE_NOTE)
        elif sub is not None:
            notes.append(f"MembraneSubtract(subtract_value={sub}) removes {sub} per spike, not "
                         f"the adaptive threshold: gamma = alpha * {sub}")
        if R is not None:
            notes.append("ALIFRecurrent adds rec_connect(n_{t-1}) to the input before the "
                         "synapse: lifgrad's R = rec_connect.weight (recurrent='all')")
        if rec_b is not None:
            notes.append(_REC_BIAS_NOTE)
        if _sgs.preset(sname).note:
            notes.append(f"{sname}: {_sgs.preset(sname).note}")
        limits = ()
        if not keeps:
            notes.append("sinabs' stock spike functions return float32 (.float()); "
                         "lifgrad.verify's copy runs a dtype-keeping subclass")
            limits = (Limit("float32 spike", F32_TOL, "sinabs' spike functions return float32"),)
        shape = {n: tuple(p.shape) for n, p in params_of.items()}

        def fit(g, name):
            g = np.asarray(g, np.float64)
            return np.reshape(np.sum(g) if int(np.prod(shape[name])) == 1 else g, shape[name])

        def chain(g, k):             # dL/d(alpha_k) -> the parameter sinabs trains
            if module.train_alphas:
                return fit(g, f"alpha_{k}")
            dec = {"mem": alpha, "adapt": rho, "syn": alpha_syn}[k]
            return fit(np.asarray(g) * np.asarray(dec) / np.asarray(taus[k]) ** 2, f"tau_{k}")

        def param_grads(g, I, tr):
            out = {n: np.zeros(sh) for n, sh in shape.items()}
            # each term reduced on its own (a scalar's gradient is already summed)
            mem = chain(g.alpha, "mem")
            if r_add:                                    # u_bias = alpha r
                mem = mem + chain(r_add * np.asarray(g.u_bias), "mem")
            if by_theta:                                 # gamma = alpha (M7)
                mem = mem + chain(g.gamma, "mem")
            elif not zero_reset:                         # gamma = alpha sub
                mem = mem + chain(float(sub) * np.asarray(g.gamma), "mem")
            if syn:
                gs = np.asarray(g.alpha_s, np.float64)
                if norm:                                 # alpha_s = (1 - alpha) alpha_syn
                    mem = mem - chain(alpha_syn * gs, "mem")
                    gs = (1 - np.asarray(alpha)) * gs
                key = "alpha_syn" if module.train_alphas else "tau_syn"
                out[key] = chain(gs, "syn")
            out["alpha_mem" if module.train_alphas else "tau_mem"] = mem
            # rho = alpha_adapt, beta_a = adapt_scale (1 - rho)
            out["alpha_adapt" if module.train_alphas else "tau_adapt"] = \
                chain(g.rho, "adapt") - chain(scale * np.asarray(g.beta_a), "adapt")
            if "adapt_scale" in shape:
                out["adapt_scale"] = fit((1 - np.asarray(rho)) * np.asarray(g.beta_a),
                                         "adapt_scale")
            if "b0" in shape:
                out["b0"] = fit(g.theta, "b0")
            if R is not None:
                out["rec_connect.weight"] = np.asarray(g.R, np.float64)
            if rec_b is not None:
                out["rec_connect.bias"] = np.asarray(g.I, np.float64)[1:].sum(axis=(0, 1))
            out.update(_min_v_mem_grad(module, g, shape))
            return out
        return LayerMap(config, params, gain=1.0,
                        bias=0.0 if rec_b is None else _from_second_step(rec_b),
                        u0=-r_add if r_add else None, post_reset=False,
                        param_grads=param_grads, notes=tuple(notes), limits=limits,
                        hidden_limits=limits)

    def _leak_map(self, module, kind) -> LayerMap:
        """ExpLeak: no spikes, its output is the membrane ``v = alpha v + x`` (``(1 -
        alpha) x`` with ``norm_input``): lifgrad's cell without a reset and with
        no output spikes (a readout, as Spyx's LI)."""
        u_min = _min_v_mem(module)
        torch = require_torch()
        with torch.no_grad():
            alpha = _value(module.alpha_mem_calculated.double())
        tau_name, tau = (("alpha_mem", None) if module.train_alphas
                         else ("tau_mem", _value(module.tau_mem)))
        config = LIFConfig(reset="none", surrogate="zero", strict=True,
                           norm_input=bool(module.norm_input), u_min=u_min)
        params = LIFParams(alpha=alpha, theta=0.0)
        shape = {n: tuple(p.shape) for n, p in module.named_parameters()}
        notes = ("ExpLeak emits no spikes: its output is the membrane (lifgrad's cell "
                 "without reset, read as a readout)",
                 "ExpLeak's docstring gives V(t+1) = alpha V(t) + (1 - alpha) z(t); its "
                 "default norm_input=False computes V(t+1) = alpha V(t) + z(t)")

        def param_grads(g, I, tr):
            ga = np.asarray(g.alpha, np.float64)
            if tau_name == "tau_mem":
                ga = ga * np.asarray(alpha) / np.asarray(tau) ** 2
            target = shape[tau_name]
            out = {n: np.zeros(sh) for n, sh in shape.items()}
            out[tau_name] = np.reshape(np.sum(ga) if int(np.prod(target)) == 1 else ga, target)
            out.update(_min_v_mem_grad(module, g, shape))
            return out
        if u_min is not None:
            notes = notes + (_CLIP_NOTE, "ExpLeak clips the carried state and the recorded "
                             "v_mem; its output is the unclipped membrane")
        # with min_v_mem the recorded v_mem is the clipped state (M11)
        return LayerMap(config, params, spike_scale=0.0, param_grads=param_grads, notes=notes,
                        post_reset=u_min is not None)

    # -- running --------------------------------------------------------------------

    def forward(self, module, x):
        """``(spikes, recordings['v_mem'])`` ``(T, B, N)`` from a zero state: ``x``
        ``(T, B, n)`` is given to sinabs as ``(B, T, n)`` (``(B*T, n)`` for a
        Squeeze layer)."""
        torch = require_torch()
        if not (isinstance(x, torch.Tensor) and x.ndim == 3):
            raise ValueError("I: expected a torch tensor of shape (T, B, N)")
        _fresh_state(module)
        rec = module.record_states
        module.record_states = True
        T, B = x.shape[:2]
        xb = x.transpose(0, 1)
        try:
            if hasattr(module, "squeeze_forward"):
                bs, nt = module.batch_size, module.num_timesteps
                module.batch_size, module.num_timesteps = B, T
                try:
                    spk = module(xb.reshape(B * T, *xb.shape[2:])).reshape(B, T, -1)
                finally:
                    module.batch_size, module.num_timesteps = bs, nt
            elif type(module).__name__ in _ALIASED:
                # through module(...) so that hooks see the call; its recordings
                # are aliased: the pre-reset membrane is read in reset_fn (_alif_run)
                own = module.__dict__.get("forward")
                module.forward = functools.partial(_alif_run, module)
                try:
                    spk = module(xb)
                finally:
                    if own is None:
                        del module.forward
                    else:
                        module.forward = own
            else:
                spk = module(xb)
            mem = getattr(module, "_lifgrad_mem", None) \
                if type(module).__name__ in _ALIASED else module.recordings["v_mem"]
        finally:
            module.record_states = rec
        spk = spk.transpose(0, 1)
        if type(module).__name__.startswith("ExpLeak"):
            spk = torch.zeros_like(spk)          # no spikes: its output is the membrane
        return spk, mem.reshape(B, T, -1).transpose(0, 1)

    def call_input(self, module, args):
        """The input of one call of ``module`` as ``(T, B, n)`` (read by a forward
        hook while a user's model runs)."""
        x = args[0]
        if hasattr(module, "squeeze_forward"):
            x = x.reshape(module.batch_size, module.num_timesteps, *x.shape[1:])
        return x.transpose(0, 1).reshape(x.shape[1], x.shape[0], -1)

    def call_outputs(self, module, output):
        mem = module._lifgrad_mem if type(module).__name__ in _ALIASED \
            else module.recordings["v_mem"]
        B, T = mem.shape[:2]
        spk = output.reshape(B, T, -1).transpose(0, 1)
        if type(module).__name__.startswith("ExpLeak"):
            spk = spk * 0                        # no spikes: its output is the membrane
        return spk, mem.reshape(B, T, -1).transpose(0, 1)

    def prepare(self, module):
        """Record the membrane, start from zero, and keep the spikes' dtype (a
        dtype-keeping subclass of the spike function, on lifgrad's copy)."""
        module.record_states = True
        if hasattr(module, "spike_fn"):
            try:
                module.spike_fn = _dtype_keeping(module.spike_fn)
            except ValueError:
                pass                         # layer_map has refused it already
        if type(module).__name__ in _ALIASED:
            # read every step's pre-reset membrane in reset_fn (the recordings
            # are aliased, see _alif_run)
            module.forward = functools.partial(_alif_run, module)
        _fresh_state(module)

    def build(self, case) -> Built:
        module = make_module(case.neuron, case.variant, case.surrogate, N=case.N, B=case.B,
                             T=case.T)
        _, kw = VARIANTS[case.neuron][case.variant]
        key = "IAF" if case.neuron.startswith("IAF") else kw.get("norm_input", True)
        if case.neuron in _ALIF_KINDS:
            key = ("ALIF", kw.get("norm_input", True), kw.get("tau_syn", False))
        mean, std = kw.get("input", _INPUT[key])
        theta = kw.get("theta", 1.0)
        theta = 1.0 if theta == "per-neuron" else theta     # the mean of 0.7 .. 1.4, roughly
        _, I, A, Bm = problem(case.seed, case.T, case.B, case.N, mean=mean * theta,
                              std=std * theta)
        return Built(case, module, I, A, Bm, (case.neuron, case.variant, case.surrogate))


    # -- two backends (lifgrad verify backends): the CUDA one needs a GPU ----------

    backend_pair = ("sinabs", "sinabs-exodus")

    def backend_unavailable(self) -> str:
        return cuda_backend_unavailable(self.backend_pair[1], "sinabs_exodus")


ADAPTER = Sinabs()
