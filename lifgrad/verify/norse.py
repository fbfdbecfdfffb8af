"""Norse 1.1.0 against lifgrad (``derivations/peers.md (Norse)``).

``ADAPTER`` (:class:`Norse`) implements :mod:`lifgrad.verify.protocol`.

Norse writes its cells as forward-Euler steps with inverse time constants
(``dt`` default 1e-3).  With ``c = dt*tau_mem_inv`` and
``alpha_s = 1 - dt*tau_syn_inv`` each cell is lifgrad's canonical cell:

``LIFCell`` / ``LIF`` (``lif_feed_forward_step``)::

    j_t = j_{t-1} + x_t                      (Norse's i after the jump; i_0 = 0)
    v_d = (1 - c) v_{t-1} + c j_t + c v_leak
    i_t = alpha_s j_t                        (so j_t = alpha_s j_{t-1} + x_t)
    z_t = H(v_d - v_th)        strict (fires at v_d > v_th)
    v_t = (1 - z_t) v_d + z_t v_reset        reset NOT detached

is the synaptic cell with ``alpha = 1 - c``, zero ("hard") reset with
``u_reset = v_reset``, ``detach_reset=False``, ``u = v_d``, and lifgrad's
synaptic state ``s_t = c j_t + b`` with ``b = c v_leak``.  Since
``s_t = alpha_s s_{t-1} + J_t``, the leak bias rides on the synapse exactly:
``J_t = c x_t + b (1 - alpha_s)`` (``LayerMap.gain = c``,
``bias = b (1 - alpha_s)``) and ``s_0 = b``.  ``u_0 = v_leak``, detached in
Norse (``LIFCell`` clones it detached; ``LIF`` and ``LIFRecurrentCell`` fill a
*float32* tensor with it, so the initial membrane is ``float32(v_leak)`` and
``v_leak`` must be a scalar there).  The returned ``v`` is post-reset.

``LIFRecurrentCell`` / ``LIFRecurrent`` (``lif_step``): ``j_t = alpha_s j_{t-1}
+ x_t W_in^T + z_{t-1} W_rec^T`` and the reset is detached: the same cell with
``recurrent='all'``, ``R = c W_rec`` (row i scaled by c_i; zero diagonal
unless ``autapses=True``) and ``detach_reset=True``.  lifgrad runs on the
current ``x W_in^T`` (``LayerMap.input_weights``); ``dL/dx = (c dL/dJ) W_in``
and ``dL/dW_in = sum_{t,b} (c dL/dJ_t)^T x_t`` are formed by
``lifgrad.verify.common.check_layer``.  The returned membrane
is reset with the detached spike too (``common.reported_membrane`` handles
that through ``detach_reset``).

Readout: Norse's returned ``v = (1 - z) v_d + z v_reset`` reads ``v_reset``
directly (and ``v_d - v_th z`` reads ``v_th``); ``common.lifgrad_side`` adds
these terms to ``LIFGrads.u_reset`` / ``.theta`` (``membrane_param_terms``).

``LIFBoxCell`` (``lif_box_feed_forward_step``): plain cell, ``alpha = 1 - c``,
``I = c x + c v_leak``; ``reset_value`` is the zero reset (not detached),
``reset_subtract`` returns ``v_d - v_th z``, an immediate subtraction: the
next step sees ``(1 - c)(v_d - v_th z)``, i.e. lifgrad's subtract reset with an
untied ``gamma = (1 - c) v_th``; the returned membrane is ``u - theta v``
(``common.reported_membrane``'s post-reset subtract).

``IAFCell``: plain cell with ``alpha = 1``, gain 1, zero reset to ``v_reset``
(not detached), ``u_0 = v_reset`` (Norse uses the parameter tensor itself, so
``v_reset`` gets gradient through the initial state too).

Parameters: Norse keeps them in ``LIFParameters``-like NamedTuples (tensors,
not ``nn.Parameter``).  The cases make ``tau_mem_inv``, ``tau_syn_inv``,
``v_leak``, ``v_th``, ``v_reset`` leaf tensors (per-neuron vectors or
scalars) and map lifgrad's gradients by the chain rule in
:meth:`Norse.layer_map`.  The surrogate is ``p.method``/``p.alpha`` mapped to the
presets ``norse.<method>`` of :mod:`lifgrad.surrogates`.
"""
from __future__ import annotations

import numpy as np

from .. import surrogates as sgs
from ..config import LIFConfig, LIFParams
from .common import LayerMap, problem, require_torch
from .protocol import Built
from .torchpeer import TorchAdapter, to_numpy

__all__ = ["ADAPTER", "Norse", "NEURONS", "METHODS", "SURROGATES", "CASE_ALPHA"]

NEURONS = {
    "LIFCell": ("default", "v_leak,v_reset"),
    "LIF": ("default", "v_leak,v_reset"),
    "LIFBoxCell": ("reset_value", "reset_subtract"),
    "LIFRecurrentCell": ("autapses=False", "autapses=True"),
    "LIFRecurrent": ("autapses=False",),
    "IAFCell": ("default", "v_reset"),
}

METHODS = ("super", "tanh", "triangle", "circ", "heavi_erfc")
SURROGATES = tuple(f"norse.{m}" for m in METHODS)

# surrogate parameter used by the cases (Norse's default alpha=100 makes the
# tanh/circ/erfc windows ~0.01 wide; 'super' ignores alpha)
CASE_ALPHA = {"super": 100.0, "tanh": 2.0, "triangle": 0.5, "circ": 0.5, "heavi_erfc": 2.0}

# input mean and spread of the cases, per neuron
_INPUT = {"LIFCell": (0.6, 1.0), "LIF": (0.6, 1.0), "LIFBoxCell": (3.0, 5.0),
          "LIFRecurrentCell": (0.6, 1.5), "LIFRecurrent": (0.6, 1.5), "IAFCell": (0.35, 0.6)}

NOTES_SURROGATE = {
    "super": "method='super': alpha is stored but ignored, the backward is 1/(|x| + 1)^2",
    "tanh": "method='tanh': backward 1 - tanh(alpha x)^2 lacks the factor alpha of "
            "d/dx tanh(alpha x)",
    "triangle": "method='triangle': alpha scales the height, the support is fixed to |x| < 1",
    "circ": "method='circ': alpha**2 is evaluated in the dtype of alpha (float32 when "
            "LIFCell wraps a Python float); mapped exactly as circ(sqrt(alpha**2)) scaled",
    "heavi_erfc": "method='heavi_erfc': backward 2 exp(-(alpha x)^2)/sqrt(pi) lacks the factor "
                  "alpha, and sqrt(pi) is taken in float32",
}
NOTE_FF_RESET = ("feed-forward cells do not detach the reset (gradient flows through "
                 "(v_reset - v_d) z'), unlike lif_step (recurrent), whose reset is detached")
NOTE_F32_V0 = ("initial membrane is torch.full(..., v_leak.detach(), dtype=float32): "
               "float32(v_leak), no gradient, and v_leak must be a scalar; the first "
               "step's (v_leak - v) is then a float32 op, so dL/dv_leak is float32-rounded "
               "(not compared; see tests)")
NOTE_ORDER = ("the docs write the ODE plus jump 'i = i + i_in'; the code jumps first and the "
              "Euler step of v already uses the jumped current (input acts in the same step)")


def _surrogate(p):
    method = getattr(p, "method", None)
    if method == "heaviside":
        raise ValueError("norse method='heaviside' has no gradient (its backward is zero); "
                         f"use one of {', '.join(METHODS)}")
    if method == "adjoint":
        raise ValueError("norse method='adjoint' cannot run: Norse 1.1.0's adjoint step calls "
                         "threshold(..., 'adjoint') and raises ValueError itself")
    if method not in METHODS:
        raise ValueError(f"norse method {method!r}: no lifgrad preset; supported methods are "
                         f"{', '.join(METHODS)}")
    alpha = float(to_numpy(p.alpha))
    if method == "circ":
        # Norse's backward is alpha * A2 / (A2 + x^2)^1.5 with A2 = alpha**2 taken in
        # alpha's dtype (float32 for a Python float wrapped by LIFCell): that is
        # lifgrad's circ with a = sqrt(A2) and scale alpha / a, exactly
        torch = require_torch()
        a2 = float(to_numpy(torch.as_tensor(p.alpha) ** 2))
        if a2 != alpha * alpha:
            a = float(np.sqrt(a2))
            return (sgs.get("norse.circ", alpha=a, scale=alpha / a), NOTES_SURROGATE[method])
    return sgs.get(f"norse.{method}", alpha=alpha), NOTES_SURROGATE[method]


def _reduce(val, like):
    """Sum a per-neuron (or (T, B, N)) gradient to the shape of Norse's parameter."""
    shape = np.shape(to_numpy(like))
    val = np.asarray(val, np.float64)
    if shape == ():
        return np.asarray(val.sum())
    if val.ndim > 1:
        val = val.reshape(-1, val.shape[-1]).sum(axis=0)
    return np.broadcast_to(val, shape).copy()


def _reduce_terms(like, *terms):
    """Sum each term to the parameter's shape on its own: a term lifgrad already
    summed over the neurons (the gradient of a scalar alpha) must not be added
    to a per-neuron term first (that counted it once per neuron, for a scalar
    ``tau_mem_inv``: found when Norse's parameter tuples were first compared in
    a user's model)."""
    return sum(_reduce(t, like) for t in terms)


def _sum_tb(a):
    """(T, B, N) -> (N,)."""
    return a.reshape(-1, a.shape[-1]).sum(axis=0)


def _kind(obj):
    import norse.torch as nt
    from norse.torch.functional.iaf import IAFParameters
    from norse.torch.functional.lif import LIFParameters
    from norse.torch.functional.lif_box import LIFBoxParameters
    table = ((nt.LIFRecurrentCell, "rec"), (nt.LIFRecurrent, "rec"), (nt.LIFCell, "lif"),
             (nt.LIF, "lif"), (nt.LIFBoxCell, "box"), (nt.IAFCell, "iaf"), (nt.IAF, "iaf"))
    for cls, k in table:
        if isinstance(obj, cls):
            return k, obj.p, getattr(obj, "dt", 1e-3), obj
    for cls, k in ((LIFParameters, "lif"), (LIFBoxParameters, "box"), (IAFParameters, "iaf")):
        if isinstance(obj, cls):
            return k, obj, None, None
    raise TypeError(f"norse: no mapping for {type(obj).__name__}; supported: LIFCell, LIF, "
                    "LIFRecurrentCell, LIFRecurrent, LIFBoxCell, IAFCell, IAF or their "
                    "parameter tuples")


def _leaf(torch, a):
    return torch.tensor(np.asarray(a, np.float64), dtype=torch.float64, requires_grad=True)


class Norse(TorchAdapter):
    """Norse's ``LIFCell``, ``LIF``, ``LIFBoxCell``, ``LIFRecurrentCell``,
    ``LIFRecurrent`` and ``IAFCell``.

    Case options: ``alpha`` (the surrogate's, default :data:`CASE_ALPHA`) and
    ``grad_v_leak`` (``LIF`` and the recurrent cells compare ``dL/dv_leak``,
    which Norse rounds to float32, see NOTE_F32_V0)."""

    name = "norse"
    neurons = NEURONS
    default_surrogate = "norse.super"
    preset_case = ("LIFCell", "v_leak,v_reset")
    quick = (("LIFCell", "v_leak,v_reset", "norse.super"),
             ("LIFBoxCell", "reset_subtract", "norse.super"),
             ("LIFRecurrentCell", "autapses=False", "norse.super"),
             ("IAFCell", "v_reset", "norse.super"),
             ("LIFCell", "v_leak,v_reset", "norse.circ"))
    option_defaults = {"alpha": None, "grad_v_leak": False}

    def is_neuron(self, module):
        from norse.torch.module.snn import SNN, SNNCell, SNNRecurrent, SNNRecurrentCell
        return isinstance(module, (SNN, SNNCell, SNNRecurrent, SNNRecurrentCell))

    def surrogate_of(self, module):
        """``("norse.<method>", {"alpha": value})`` of a cell or its parameters."""
        p = _kind(module)[1]
        _surrogate(p)                       # refuses a method without a preset
        return f"norse.{p.method}", {"alpha": float(to_numpy(p.alpha))}

    def layer_map(self, module) -> LayerMap:
        """The :class:`LayerMap` of a constructed Norse cell (or of its parameters;
        a bare ``LIFParameters`` is taken as a ``LIFCell`` with ``dt = 1e-3``).

        For ``LIFRecurrentCell`` the map is on the feed-forward current
        ``x W_in^T`` (``input_weights``; its ``param_grads`` gives everything
        else)."""
        import norse.torch as nt
        from norse.torch.functional.reset import reset_subtract, reset_value
        kind, p, mdt, module = _kind(module)
        dt = float(mdt if mdt is not None else 1e-3)
        sg, sg_note = _surrogate(p)
        notes = [sg_note]

        th = to_numpy(p.v_th)

        if kind == "iaf":
            vr = to_numpy(p.v_reset)
            cfg = LIFConfig(reset="zero", detach_reset=False, strict=True, surrogate=sg)
            params = LIFParams(alpha=1.0, theta=th, u_reset=vr)
            notes += [NOTE_FF_RESET, "IAFCell's initial membrane is the v_reset tensor itself: "
                      "it gets gradient, and initial_state sets requires_grad=True on it (on the "
                      "shared default IAFParameters().v_reset too, a global side effect)"]

            def grads(g, I, tr):
                return {"v_th": _reduce(g.theta, p.v_th),
                        "v_reset": _reduce(np.asarray(g.u_reset) + np.asarray(g.u0),
                                           p.v_reset)}

            return LayerMap(cfg, params, gain=1.0, bias=0.0, u0=vr, post_reset=True,
                            param_grads=grads, notes=tuple(notes))

        vl = to_numpy(p.v_leak)
        vr = to_numpy(p.v_reset)
        torch = require_torch()
        # Norse forms dt * tau_mem_inv (and -dt * tau_syn_inv) as tensors first: with
        # float32 parameters these coefficients are float32-rounded; take them as torch does
        c = to_numpy(dt * torch.as_tensor(p.tau_mem_inv))
        alpha = 1.0 - c

        if kind == "box":
            if p.reset_method is reset_value:
                cfg = LIFConfig(reset="zero", detach_reset=False, strict=True, surrogate=sg)
                params = LIFParams(alpha=alpha, theta=th, u_reset=vr)
                notes.append(NOTE_FF_RESET)
            elif p.reset_method is reset_subtract:
                cfg = LIFConfig(reset="subtract", detach_reset=False, strict=True, surrogate=sg)
                params = LIFParams(alpha=alpha, theta=th, gamma=alpha * th)
                notes += ["reset_subtract is immediate: v = v_d - v_th z, next step sees "
                          "(1 - c)(v_d - v_th z): gamma = (1 - c) v_th",
                          "reset_subtract ignores v_reset (its gradient is None)"]
            else:
                raise ValueError(f"norse LIFBoxCell: unknown reset_method {p.reset_method!r}")

            def grads(g, I, tr):
                gI = _sum_tb(g.I * (I + vl))
                dtm = [-np.asarray(g.alpha), gI]
                dth = [np.asarray(g.theta)]
                if cfg.reset == "subtract":
                    dtm.append(-th * np.asarray(g.gamma))
                    dth.append(alpha * np.asarray(g.gamma))
                out = {"tau_mem_inv": _reduce_terms(p.tau_mem_inv, *(dt * t for t in dtm)),
                       "v_leak": _reduce(c * _sum_tb(g.I), p.v_leak),
                       "v_th": _reduce_terms(p.v_th, *dth)}
                out["v_reset"] = (_reduce(g.u_reset, p.v_reset)
                                  if cfg.reset == "zero"
                                  else np.zeros(np.shape(vr)))
                return out

            return LayerMap(cfg, params, gain=c, bias=c * vl, u0=vl, post_reset=True,
                            param_grads=grads, notes=tuple(notes))

        # LIF family (synaptic)
        ts = to_numpy(p.tau_syn_inv)
        alpha_s = 1.0 + to_numpy(-dt * torch.as_tensor(p.tau_syn_inv))
        b = c * vl
        rec = kind == "rec"
        if rec or isinstance(module, nt.LIF):
            if np.ndim(vl) != 0:
                raise ValueError(f"norse {type(module).__name__}: v_leak must be a scalar "
                                 "(initial_state fills a tensor with it)")
            # Norse's first step computes (v_leak - v_0) in float32 (v_0 is a float32
            # tensor, v_leak a 0-dim tensor): v_d1 = f32(v_leak) + c j_1 exactly.
            # lifgrad's u_1 = alpha u_0 + c j_1 + c v_leak matches with this u_0:
            u0 = (float(np.float32(vl)) - c * vl) / alpha
            du0_dc = (float(np.float32(vl)) - vl) / alpha**2      # this u_0 moves with c
            notes.append(NOTE_F32_V0)
        else:
            u0 = vl
            du0_dc = 0.0
        input_weights = None
        if rec:
            W = to_numpy(module.recurrent_weights)
            autapses = bool(module.autapses)
            cfg = LIFConfig(reset="zero", detach_reset=True, strict=True, surrogate=sg,
                            synaptic=True, recurrent="all")
            R = np.broadcast_to(np.atleast_1d(c), (W.shape[0],))[:, None] * W
            params = LIFParams(alpha=alpha, theta=th, u_reset=vr, alpha_s=alpha_s, R=R)
            notes.append("lif_step detaches the reset (z.detach()); the recurrent spike is live")
            input_weights = ("input_weights", to_numpy(module.input_weights))
        else:
            cfg = LIFConfig(reset="zero", detach_reset=False, strict=True, surrogate=sg,
                            synaptic=True)
            params = LIFParams(alpha=alpha, theta=th, u_reset=vr, alpha_s=alpha_s)
            notes.append(NOTE_FF_RESET)
        notes.append(NOTE_ORDER)

        def grads(g, I, tr):
            drive = I + vl * dt * ts                    # dJ/dc per (t, b, n)
            if rec:
                vprev = np.concatenate([np.zeros_like(tr.v[:1]), tr.v[:-1]])
                drive = drive + vprev @ W.T             # recurrent current z_{t-1} W_rec^T
            gI = _sum_tb(g.I)
            out = {"tau_mem_inv": _reduce_terms(p.tau_mem_inv, dt * -np.asarray(g.alpha),
                                                dt * _sum_tb(g.I * drive),
                                                dt * np.asarray(g.s0) * vl,
                                                dt * np.asarray(g.u0) * du0_dc),
                   "tau_syn_inv": _reduce_terms(p.tau_syn_inv, dt * -np.asarray(g.alpha_s),
                                                dt * b * gI),
                   "v_leak": _reduce_terms(p.v_leak, c * dt * ts * gI, np.asarray(g.s0) * c),
                   "v_th": _reduce(g.theta, p.v_th),
                   "v_reset": _reduce(g.u_reset, p.v_reset)}
            if rec:
                cc = np.broadcast_to(np.atleast_1d(c), (W.shape[0],))
                dW = cc[:, None] * g.R
                if not autapses:
                    np.fill_diagonal(dW, 0.0)           # Norse's autapse hook
                out["recurrent_weights"] = dW
            return out

        return LayerMap(cfg, params, gain=c, bias=b * (1.0 - alpha_s), u0=u0, s0=b,
                        post_reset=True, param_grads=grads, notes=tuple(notes),
                        input_weights=input_weights)

    def forward(self, module, x):
        """``(spikes, membrane)``, each ``(T, B, N)``; the membrane is the state
        ``v`` Norse carries (post-reset)."""
        torch = require_torch()
        from norse.torch.module.snn import SNN, SNNRecurrent
        if isinstance(module, (SNN, SNNRecurrent)):
            rec = module.record_states
            module.record_states = True
            try:
                return self.call_outputs(module, module(x))
            finally:
                module.record_states = rec
        state = None
        spks, mems = [], []
        for t in range(x.shape[0]):
            z, state = module(x[t], state)
            spks.append(z)
            mems.append(state.v)
        return torch.stack(spks), torch.stack(mems)

    def call_outputs(self, module, output):
        torch = require_torch()
        spk, state = output
        if not isinstance(state.v, torch.Tensor):
            raise ValueError(f"{type(module).__name__}: Norse returned no membrane trace "
                             f"(record_states)")
        return spk, state.v

    def prepare(self, module):
        if hasattr(module, "record_states"):
            module.record_states = True

    def extra_leaves(self, module):
        """The learnable tensors of the module's parameter tuple ``p`` (as
        ``"p.<field>"``), made float64 leaves of ``module.p``; the others are
        moved to the CPU."""
        torch = require_torch()
        if not (hasattr(module, "p") and hasattr(module.p, "_fields")):
            return {}
        fields, leaves = {}, {}
        for f in module.p._fields:
            val = getattr(module.p, f)
            if isinstance(val, torch.Tensor) and val.requires_grad:
                fields[f] = val.detach().to("cpu", torch.float64).requires_grad_(True)
                leaves[f"p.{f}"] = fields[f]
            elif isinstance(val, torch.Tensor):
                fields[f] = val.detach().cpu()
        if fields:
            module.p = module.p._replace(**fields)
        return leaves

    def build(self, case) -> Built:
        """The Norse module (float64 leaf parameters) and the problem.

        ``LIF`` and ``LIFRecurrentCell`` get a ``v_leak`` without gradient unless
        the option ``grad_v_leak`` (Norse rounds that gradient to float32, see
        NOTE_F32_V0)."""
        torch = require_torch()
        import norse.torch as nt
        from norse.torch.functional.reset import reset_subtract, reset_value
        neuron, variant, N = case.neuron, case.variant, case.N
        method = case.surrogate.split(".", 1)[1]
        alpha = self.option(case, "alpha")
        a = CASE_ALPHA.get(method, 100.0) if alpha is None else alpha
        salpha = torch.tensor(float(a), dtype=torch.float64)
        recurrent = neuron.startswith("LIFRecurrent")
        n_in = 4 if recurrent else N
        mean, std = _INPUT[neuron]
        rng, I, A, Bm = problem(case.seed, case.T, case.B, n_in, mean=mean, std=std)
        if n_in != N:
            A = rng.normal(size=(case.T, case.B, N)).astype(np.float32).astype(np.float64)
            Bm = rng.normal(size=(case.T, case.B, N)).astype(np.float32).astype(np.float64)
        tm = rng.uniform(60.0, 150.0, N)
        ts = rng.uniform(100.0, 300.0, N)
        th = rng.uniform(0.8, 1.2, N)
        nz = variant != "default"
        if neuron in ("LIFCell", "LIF") or recurrent:
            scalar_leak = neuron != "LIFCell"
            if recurrent:
                nz = variant == "autapses=True"
            vl = (rng.uniform(-0.3, 0.3) if scalar_leak else rng.uniform(-0.3, 0.3, N)) if nz \
                else (0.0 if scalar_leak else np.zeros(N))
            vr = rng.uniform(-0.3, 0.3, N) if nz else np.zeros(N)
            leaves = dict(tau_syn_inv=_leaf(torch, ts), tau_mem_inv=_leaf(torch, tm),
                          v_leak=_leaf(torch, vl), v_th=_leaf(torch, th),
                          v_reset=_leaf(torch, vr))
            p = nt.LIFParameters(**leaves, method=method, alpha=salpha)
            if scalar_leak and not self.option(case, "grad_v_leak"):
                # LIF, LIFRecurrentCell: dL/dv_leak is float32-rounded by Norse (NOTE_F32_V0)
                p.v_leak.requires_grad_(False)
                del leaves["v_leak"]
            if neuron == "LIFCell":
                module = nt.LIFCell(p)
            elif neuron == "LIF":
                module = nt.LIF(p)
            else:
                W_in = _leaf(torch, rng.normal(0.3, 1.0, (N, n_in)))
                W_rec = _leaf(torch, rng.normal(0, 2.0, (N, N)))
                cls = nt.LIFRecurrentCell if neuron == "LIFRecurrentCell" else nt.LIFRecurrent
                module = cls(n_in, N, p, input_weights=W_in, recurrent_weights=W_rec,
                             autapses=variant == "autapses=True")
                leaves["input_weights"] = W_in
                leaves["recurrent_weights"] = W_rec
        elif neuron == "LIFBoxCell":
            vl = rng.uniform(-0.3, 0.3, N)
            vr = rng.uniform(-0.3, 0.3, N)
            leaves = dict(tau_mem_inv=_leaf(torch, tm), v_leak=_leaf(torch, vl),
                          v_th=_leaf(torch, th), v_reset=_leaf(torch, vr))
            rm = reset_value if variant == "reset_value" else reset_subtract
            module = nt.LIFBoxCell(nt.LIFBoxParameters(**leaves, method=method, alpha=salpha,
                                                       reset_method=rm))
        else:  # IAFCell
            vr = rng.uniform(-0.3, 0.3, N) if nz else np.zeros(N)
            leaves = dict(v_th=_leaf(torch, th), v_reset=_leaf(torch, vr))
            module = nt.IAFCell(nt.IAFParameters(**leaves, method=method, alpha=salpha))
        return Built(case, module, I, A, Bm, (neuron, variant, case.surrogate), leaves=leaves)


ADAPTER = Norse()
