"""Where a neuron's behaviour departs from its arguments (``lifgrad diagnose``, D12).

Read after the search: the adapter's reading of the module's arguments
(``layer_map``, ``surrogate_of``) against the identified
:class:`~lifgrad.diagnose_probes.Cell`, factor by factor, and the
documentation's reading (:mod:`lifgrad.diagnose_documented`) and the presets'
arguments without effect.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .diagnose_probes import TP, Cell
from .diagnose_surrogate import phi_of

__all__ = ["Departure", "compare_with_map", "compare_with_documentation", "read_arguments"]

VALUE_TOL = 1e-9            # relative: a number that agrees with the arguments' reading
SURROGATE_TOL = 1e-9        # relative (to the peak): a derivative that agrees
F32_REL = 2.0 ** -23        # relative: a value within float32 rounding of the argument


class Departure(NamedTuple):
    """One place where the behaviour departs from the module's arguments.

    ``factor`` (``reset``, ``gamma``, ``surrogate``, ``surrogate.alpha``,
    ``delay_output``, ...), what the arguments ``say`` (as lifgrad's adapter
    reads them, or as the documentation describes them), what was
    ``computed`` (identified), and ``kind``:

    * ``mapping``: lifgrad's reading of the arguments (the adapter's
      ``layer_map``) does not reproduce the behaviour;
    * ``float32``: the behaviour uses the argument rounded to float32;
    * ``no effect``: the argument does not change the behaviour;
    * ``documented``: the documentation of the argument describes another
      behaviour (``source`` says where).
    """

    factor: str
    says: str
    computed: str
    kind: str
    source: str = ""


def _num(a, digits=6):
    a = np.atleast_1d(np.asarray(a, np.float64)).ravel()
    if a.size and np.all(a == a[0]):
        return f"{a[0]:.{digits}g}"
    return "[" + ", ".join(f"{x:.{digits}g}" for x in a) + "]"


def _fmt_val(a):
    return _num(a, 10)


def _same(a, b, tol=VALUE_TOL):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    scale = np.maximum(np.maximum(np.abs(a), np.abs(b)), 1e-12)
    return bool(np.all(np.abs(a - b) <= tol * scale))


def _value_departure(factor, computed, says, out):
    """Append a departure if ``computed`` differs from ``says`` (float32 kind when
    it is ``says`` rounded to float32)."""
    if _same(computed, says):
        return
    f32 = np.asarray(says, np.float64).astype(np.float32).astype(np.float64)
    if _same(computed, f32, 1e-14):
        kind, note = "float32", " (its float32 rounding)"
    elif _same(computed, says, F32_REL):
        kind, note = "float32", " (within float32 rounding: a constant rounded to float32)"
    else:
        kind, note = "mapping", ""
    out.append(Departure(factor, _fmt_val(says), _fmt_val(computed) + note, kind))


def _effective(m, n):
    """The adapter's LayerMap ``m`` in the identified cell's terms (per neuron)."""
    cfg, p = m.config, m.params
    P = p.packed(n, np.float64, cfg)
    alpha, theta, gamma, u_reset, alpha_s = P[0], P[1], P[2], P[3], P[4]
    c = np.broadcast_to(np.asarray(m.gain, np.float64), (n,)).copy()
    if cfg.norm_input:
        c = c * (1 - alpha)
    if cfg.synaptic and cfg.decay_input:
        c = c * alpha_s
    return dict(alpha=alpha, theta=theta, gamma=gamma, u_reset=u_reset,
                alpha_s=alpha_s if cfg.synaptic else None, c=c)


def _rest_of_map(m, n, T=TP):
    from .functional import lif_forward
    from .verify.common import mapped_input
    cfg = m.config.replace(dtype="float64", backend="cpu")
    zeros = np.zeros((T, 1, n))
    v, tr = lif_forward(mapped_input(m, zeros), m.params, cfg, u0=m.u0, s0=m.s0)
    return np.asarray(tr.u, np.float64)[:, 0]


def _rest_of_cell(cell, T=TP):
    from .diagnose_probes import _simulate
    return _simulate(dict(alpha=cell.alpha, alpha_s=cell.alpha_s, c=cell.c, u0=cell.u0,
                          s0=cell.s0, u_bias=cell.u_bias), np.zeros((T, 1, cell.n)), T)[:, 0]


def _fires(u, theta, strict):
    return u > theta if strict else u >= theta


def compare_with_map(cell: Cell, m, x, v) -> list:
    """The :class:`Departure` s of the identified ``cell`` from ``m``, lifgrad's
    adapter's reading of the module's arguments (a
    :class:`~lifgrad.verify.common.LayerMap`); ``x``, ``v`` the membranes
    (``u - theta``) and spikes on which the surrogates are compared."""
    out = []
    n = cell.n
    e = _effective(m, n)
    cfg = m.config
    if (m.spike_scale == 0) != (cell.spike_scale == 0):
        out.append(Departure("spikes", "no spikes (a readout)" if m.spike_scale == 0 else
                             "spikes", "spikes" if cell.spike_scale else "no spikes",
                             "mapping"))
        return out
    if m.input_weights is not None:
        out.append(Departure("input", "own input weights", "no input weights", "mapping"))
    two = e["alpha_s"] is not None and np.any(e["alpha_s"] != 0)
    if (cell.alpha_s is not None) != two:
        out.append(Departure("states", "two states" if two else "one state",
                             "two states" if cell.alpha_s is not None else "one state",
                             "mapping"))
    elif cell.alpha_s is not None and cell.states_interchangeable:
        # without a reset only the pair is seen, through its sum and product (D3)
        _value_departure("alpha + alpha_s", cell.alpha + cell.alpha_s,
                         e["alpha"] + e["alpha_s"], out)
        _value_departure("alpha alpha_s", cell.alpha * cell.alpha_s,
                         e["alpha"] * e["alpha_s"], out)
    else:
        _value_departure("alpha", cell.alpha, e["alpha"], out)
        if cell.alpha_s is not None:
            _value_departure("alpha_s", cell.alpha_s, e["alpha_s"], out)
    _value_departure("input gain", cell.c, e["c"], out)
    try:
        rest_m = _rest_of_map(m, n)
        rest_c = _rest_of_cell(cell)
        scale = np.maximum(np.max(np.abs(rest_c), axis=0), np.abs(cell.theta))
        if np.any(np.abs(rest_m - rest_c) > 1e-9 * scale):
            out.append(Departure("rest", f"rest trajectory {_num(rest_m[-1])} at step {TP - 1}",
                                 f"{_num(rest_c[-1])}", "mapping"))
    except (ValueError, TypeError) as err:        # pragma: no cover - a map lifgrad refuses
        out.append(Departure("rest", "-", str(err), "mapping"))
    if cell.spike_scale == 0:                          # a readout: nothing more to compare
        return out
    u_lo, u_hi = cell.theta_bracket
    ok = (~_fires(u_lo, e["theta"], cfg.strict)) & _fires(u_hi, e["theta"], cfg.strict)
    if not np.all(ok):
        th = e["theta"]
        f32 = th.astype(np.float32).astype(np.float64)
        ok32 = (~_fires(u_lo, f32, cfg.strict)) & _fires(u_hi, f32, cfg.strict)
        out.append(Departure("theta", f"{_fmt_val(th)} ({'>' if cfg.strict else '>='})",
                             f"{_fmt_val(cell.theta)} ({'>' if cell.strict else '>='})",
                             "float32" if np.all(ok32) else "mapping"))
    elif cell.strict_determined and cfg.strict != cell.strict and np.all(
            e["theta"] == cell.theta):
        out.append(Departure("strict", str(cfg.strict), str(cell.strict), "mapping"))
    if cell.theta_grad is not None and cfg.theta_grad != cell.theta_grad:
        out.append(Departure("theta_grad", cfg.theta_grad, cell.theta_grad, "mapping"))
    if bool(cfg.delay_output) != cell.delay_output:
        out.append(Departure("delay_output", str(bool(cfg.delay_output)),
                             str(cell.delay_output), "mapping"))
    if not _same(m.spike_scale, cell.spike_scale):
        out.append(Departure("spike size", f"{m.spike_scale:g}", f"{cell.spike_scale:g}",
                             "mapping"))
    ms = cfg.max_spikes if cfg.max_spikes is None or cfg.max_spikes < 65536 else None
    if ms != cell.max_spikes:
        out.append(Departure("max_spikes", str(ms), str(cell.max_spikes), "mapping"))
    if cfg.reset != cell.reset:
        out.append(Departure("reset", cfg.reset, cell.reset, "mapping"))
    else:
        if cell.reset == "subtract":
            _value_departure("gamma", cell.gamma, e["gamma"], out)
        if cell.reset == "zero":
            _value_departure("u_reset", cell.u_reset, e["u_reset"], out)
        if cell.reset != "none":
            if bool(m.post_reset) != cell.post_reset:
                out.append(Departure("membrane", "post-reset" if m.post_reset else "pre-reset",
                                     "post-reset" if cell.post_reset else "pre-reset",
                                     "mapping"))
            elif cell.post_reset and cell.reset == "subtract":
                rv = e["theta"] if m.reset_value is None else np.broadcast_to(
                    np.asarray(m.reset_value, np.float64), (n,))
                _value_departure("reported reset", cell.reset_value, rv, out)
            if cell.detach is not None and bool(cfg.detach_reset) != cell.detach:
                out.append(Departure("detach_reset", str(bool(cfg.detach_reset)),
                                     str(cell.detach), "mapping"))
    if cell.surrogate is not None:
        with np.errstate(all="ignore"):
            ours = phi_of(cell.surrogate.surrogate, x, v)
            theirs = phi_of(cfg.surrogate, x, v)
        peak = max(float(np.max(np.abs(ours))), float(np.max(np.abs(theirs))), 1e-300)
        if np.max(np.abs(ours - theirs)) > SURROGATE_TOL * peak:
            a, b = cell.surrogate.surrogate, cfg.surrogate
            near = a.name == b.name and _same(list(a.params) + [a.scale],
                                              list(b.params) + [b.scale], 2 * F32_REL)
            out.append(Departure("surrogate", _sg_text(b), _sg_text(a) + (
                " (parameters within float32 rounding)" if near else ""),
                "float32" if near else "mapping"))
    return out


def _sg_text(sg):
    args = [f"{n}={v:.10g}" for n, v in sg.named_params()]
    if sg.scale != 1.0:
        args.append(f"scale={sg.scale:.10g}")
    return f"{sg.name}({', '.join(args)})"


def compare_with_documentation(cell: Cell, framework, neuron, preset, params, x, v) -> list:
    """The departures of ``cell`` from what the framework's documentation says
    its arguments mean, and the arguments without effect."""
    from . import surrogates as _sg
    from .diagnose_documented import documented_cell, documented_surrogate
    from .diagnose_surrogate import no_effect
    out = []
    if preset and preset in _sg.PRESETS and cell.surrogate is not None:
        pre = _sg.PRESETS[preset]
        from .diagnose_surrogate import NEURON_PARAMS
        own = [k for k, _ in pre.defaults if k not in NEURON_PARAMS.get(preset, {})]
        try:
            args = dict(dict(pre.defaults), **params)
            for k in no_effect(pre, args, x, v, own):
                out.append(Departure(f"surrogate.{k}", f"{k}={args[k]:g}",
                                     "no effect: the same derivative for any value",
                                     "no effect"))
        except (ValueError, TypeError):
            pass
        # the arguments' preset reproduces the derivative only to float32 precision
        # (a constant of it computed in float32: Norse's circ squares a float32 alpha)
        with np.errstate(all="ignore"):
            try:
                mine = phi_of(pre.surrogate(**params), x, v)
            except (ValueError, TypeError, ZeroDivisionError):
                mine = None
            ours = phi_of(cell.surrogate.surrogate, x, v)
        if mine is not None and cell.surrogate.exact:
            peak = max(float(np.max(np.abs(ours))), 1e-300)
            err = float(np.max(np.abs(mine - ours))) / peak
            if SURROGATE_TOL < err <= 1e-6:
                out.append(Departure("surrogate", f"{preset}(" + ", ".join(
                    f"{k}={val:g}" for k, val in params.items()) + ")",
                    f"{cell.surrogate.surrogate}: the preset to {err:.1e} only (a constant "
                    f"rounded to float32)", "float32"))
        doc = documented_surrogate(preset, params)
        if doc is not None:
            nominal, source = doc
            with np.errstate(all="ignore"):
                ours = phi_of(cell.surrogate.surrogate, x, v)
                theirs = phi_of(nominal, x, v)
            peak = max(float(np.max(np.abs(ours))), float(np.max(np.abs(theirs))), 1e-300)
            if np.max(np.abs(ours - theirs)) > 1e-6 * peak:
                out.append(Departure("surrogate", f"{nominal} (documented)",
                                     str(cell.surrogate.surrogate), "documented", source))
    for factor, (value, source) in documented_cell(framework, neuron).items():
        got = {"delay_output": cell.delay_output, "max_spikes": cell.max_spikes,
               "strict": cell.strict if cell.strict_determined else value}[factor]
        if got != value:
            out.append(Departure(factor, str(value), str(got), "documented", source))
    return out


def read_arguments(adapter, module, n):
    """What the arguments say: ``(LayerMap or None, preset, params, text)``; read
    after the search."""
    m = preset = None
    params = {}
    text = ""
    try:
        m = adapter.layer_map(module)
    except (ValueError, TypeError) as e:
        text = f"(lifgrad's adapter does not map it: {e})"
    try:
        preset, params = adapter.surrogate_of(module)
    except (ValueError, TypeError, AttributeError):
        preset, params = None, {}
    if m is not None:
        e = _effective(m, n)
        text = (f"alpha={_num(e['alpha'])}"
                + (f", alpha_s={_num(e['alpha_s'])}" if e["alpha_s"] is not None else "")
                + f", theta={_num(e['theta'])}{' strict' if m.config.strict else ''}"
                + f", reset={m.config.reset}"
                + (" detached" if m.config.detach_reset else "")
                + (f", max_spikes={m.config.max_spikes}" if m.config.max_spikes != 1 else "")
                + (", delay_output" if m.config.delay_output else "")
                + f", surrogate={m.config.surrogate}")
        if preset:
            text += f" ({preset}(" + ", ".join(f"{k}={v:g}" for k, v in params.items()) + "))"
    return m, preset, params, text
