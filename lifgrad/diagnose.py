"""``lifgrad diagnose``: which lifgrad configuration reproduces a peer model.

Given a neuron (or a model of Linear layers and neurons) of any framework
``lifgrad verify`` supports, :func:`diagnose` finds the lifgrad cell that
reproduces its forward and gradients by targeted probes, one factor at a
time (:mod:`lifgrad.diagnose_probes`, :mod:`lifgrad.diagnose_surrogate`;
the algebra is ``derivations/diagnose.md``), treating the neuron as a black
box: the search runs only the framework's forward on an input current and its
own autograd of ``sum A spk + sum Bm mem``.  Then:

* every parameter gradient the framework returns is fitted as a chain rule of
  lifgrad's gradients (:mod:`lifgrad.diagnose_params`), which also shows the
  threshold's spike derivative (``theta_grad``);
* it **verifies** the identified cell: lifgrad's forward and adjoint against
  the framework on a fresh random problem (spikes, membrane, ``dL/dI``),
  with :func:`lifgrad.verify.common.check_layer`, and each parameter's fitted
  chain rule on another; a disagreement names the quantity, the layer, the
  time step and the neuron;
* only *afterwards* it reads the module's arguments (through the adapter's
  ``layer_map`` and ``surrogate_of``) and lists every place where the
  behaviour departs from them (:class:`Departure`): where lifgrad's reading of
  the arguments differs from what was measured, a constant the framework
  rounds to float32, an argument with no effect (Norse's ``super`` ignores
  ``alpha``), and where the framework's documentation says otherwise
  (:mod:`lifgrad.diagnose_documented`).

::

    from lifgrad.diagnose import diagnose
    d = diagnose(snntorch.Leaky(beta=0.9))        # or a torch / Spyx / Rockpool model
    print(d.format());  d.identified, d.verified, d.departures;  d.to_dict()

The search code (this module, :mod:`~lifgrad.diagnose_probes`,
:mod:`~lifgrad.diagnose_gradients`, :mod:`~lifgrad.diagnose_surrogate`,
:mod:`~lifgrad.diagnose_params`, :mod:`~lifgrad.diagnose_departures`,
:mod:`~lifgrad.diagnose_documented`) never imports :mod:`lifgrad.diagnose_zoo`,
which builds random peer models to test it.
"""
from __future__ import annotations

import time
from typing import Any, NamedTuple

import numpy as np

from .diagnose_departures import _num  # one number format for the report and the departures
from .diagnose_departures import (Departure, compare_with_documentation, compare_with_map,
                                  read_arguments)
from .diagnose_gradients import surrogate_grid
from .diagnose_probes import BlackBox, Cell, IdentificationError, drive, identify

__all__ = ["diagnose", "Diagnosis", "LayerDiagnosis", "Departure", "IdentificationError",
           "find_neurons"]



class LayerDiagnosis(NamedTuple):
    """The diagnosis of one neuron layer (see :class:`Diagnosis`)."""

    layer: str
    framework: str
    neuron: str
    n: int
    cell: Cell | None
    error: str
    report: Any                       # lifgrad.verify.common.CaseReport, or None
    departures: tuple
    arguments: str                    # what the arguments say, in short ("" if unmapped)
    calls: int
    seconds: float
    problem: tuple = ()               # (seed, T, B) of the verification
    parameters: tuple = ()            # (ParameterFit, ...): the framework's parameter gradients

    @property
    def identified(self) -> bool:
        """Every factor identified (the surrogate reproduced exactly)."""
        return self.cell is not None and not self.error and not self.cell.unidentified

    @property
    def verified(self) -> bool:
        """The identified cell reproduces the framework on a fresh problem: spikes,
        membrane, ``dL/dI``, and every parameter gradient the framework returns
        by a chain rule of lifgrad's."""
        return (self.report is not None and self.report.passed
                and all(p.reproduced for p in self.parameters))

    def config_text(self) -> str:
        return describe(self.cell) if self.cell is not None else "-"

    def format(self) -> str:
        head = (f"{self.layer or self.neuron} ({self.framework} {self.neuron}, {self.n} "
                f"neurons): {'identified' if self.identified else 'NOT identified'}, "
                f"{'verified' if self.verified else 'NOT verified'} "
                f"({self.calls} framework runs, {self.seconds:.1f} s)")
        lines = [head]
        if self.error:
            lines.append(f"  not identified: {self.error}")
        if self.cell is not None:
            lines.append(f"  lifgrad: {describe(self.cell)}")
            f = self.cell.surrogate
            if f is not None and f.presets:
                ps = ", ".join(_preset_text(p) for p in f.presets[:3])
                lines.append(f"  surrogate as presets: {ps}")
            for factor, why in self.cell.unidentified:
                lines.append(f"  not identified: {factor}: {why}")
            lines.append("  evidence:")
            for k, v in self.cell.evidence.items():
                lines.append(f"    {k}: {v}")
        if self.report is not None:
            r = self.report
            seed, T, B = self.problem or (0, 0, 0)
            rate = ", ".join(f"{c.rate:.2f}" for c in r.coverage) or "-"
            lines.append(f"  verification on a fresh random problem (seed {seed}, T={T}, B={B}, "
                         f"firing rate {rate}): {r.status}, worst relative {r.worst:.1e}, "
                         f"spikes differing {r.spike_mismatches}")
            for q in r.rows:
                lines.append(f"    {q.quantity}: {q.status} ({q.max_rel:.1e})"
                             + (f" {q.where}" if q.status != "agrees" and q.where else ""))
            if r.spike_mismatches:
                lines.append(f"    spikes: {r.spike_where}")
        if self.parameters:
            lines.append("  parameter gradients, as chain rules of lifgrad's (checked on a fresh "
                         "problem):")
            for p in self.parameters:
                loads = ", ".join(f"{q} x {c:.6g}" for q, c in p.loads.items()) or "zero"
                state = "reproduced" if p.reproduced else "NOT reproduced"
                lines.append(f"    {p.name}: {loads} ({state}, fresh {p.fresh_error:.1e})")
        where = self.where()
        if where:
            lines.append(f"  not reproduced: {where}")
        if self.arguments:
            lines.append(f"  the arguments say: {self.arguments}")
        if self.departures:
            lines.append("  departures from the arguments:")
            for d in self.departures:
                lines.append(f"    [{d.kind}] {d.factor}: the arguments say {d.says}; computed "
                             f"{d.computed}" + (f" ({d.source})" if d.source else ""))
        elif self.cell is not None and self.arguments and not self.arguments.startswith("("):
            lines.append("  no departure from the arguments")
        return "\n".join(lines)

    def where(self) -> str:
        """Where the identified cell fails to reproduce the framework: the first
        quantity that disagrees, in this layer, at which step, sample and neuron
        ("" when the verification passed)."""
        r = self.report
        if r is None or r.passed:
            return ""
        layer = f"layer {self.layer!r}" if self.layer else f"the {self.neuron} layer"
        parts = [f"{q.quantity} disagrees in {layer}, relative {q.max_rel:.1e}, largest "
                 f"{q.where}" for q in r.failing]
        if r.spike_mismatches:
            parts.append(f"{r.spike_mismatches} spikes differ in {layer}, {r.spike_where}")
        return "; ".join(parts)

    def to_dict(self) -> dict:
        c = self.cell
        out = dict(layer=self.layer, framework=self.framework, neuron=self.neuron, n=self.n,
                   identified=self.identified, verified=self.verified, error=self.error,
                   not_reproduced=self.where(),
                   calls=self.calls, seconds=self.seconds, arguments=self.arguments,
                   departures=[d._asdict() for d in self.departures])
        if c is not None:
            f = c.surrogate
            out["config"] = dict(
                summary=describe(c), alpha=_list(c.alpha),
                alpha_s=None if c.alpha_s is None else _list(c.alpha_s), c=_list(c.c),
                u0=_list(c.u0), s0=None if c.s0 is None else _list(c.s0),
                u_bias=_list(c.u_bias), theta=_list(c.theta), strict=c.strict,
                strict_determined=c.strict_determined, delay_output=c.delay_output,
                spike_scale=c.spike_scale, max_spikes=c.max_spikes, reset=c.reset,
                gamma=None if c.gamma is None else _list(c.gamma),
                u_reset=None if c.u_reset is None else _list(c.u_reset),
                post_reset=c.post_reset,
                reset_value=None if c.reset_value is None else _list(c.reset_value),
                detach_reset=c.detach, input_float32=c.input_float32,
                gradient_float32=c.gradient_float32, theta_grad=c.theta_grad,
                states_interchangeable=c.states_interchangeable,
                surrogate=None if f is None else dict(
                    family=f.surrogate.name, params=dict(f.surrogate.named_params()),
                    scale=f.surrogate.scale, residual=f.residual, exact=f.exact,
                    presets=[dict(name=p.name, params=p.params, no_effect=list(p.no_effect),
                                  float32=p.float32) for p in f.presets],
                    alternatives=[dict(family=a, residual=r) for a, r in f.alternatives]))
            out["evidence"] = dict(c.evidence)
            out["unidentified"] = [dict(factor=k, reason=v) for k, v in c.unidentified]
        out["parameters"] = [dict(name=p.name, loads=p.loads, residual=p.residual,
                                  fresh_error=p.fresh_error, reproduced=p.reproduced)
                             for p in self.parameters]
        if self.report is not None:
            r = self.report
            out["verification"] = dict(
                status=r.status, worst_rel=float(r.worst), spike_mismatches=r.spike_mismatches,
                spike_where=r.spike_where,
                rows=[dict(quantity=q.quantity, max_rel=float(q.max_rel), status=q.status,
                           where=q.where, limit=q.limit) for q in r.rows],
                notes=list(r.notes))
        return out


class Diagnosis(NamedTuple):
    """The diagnosis of a neuron or of a model: one :class:`LayerDiagnosis` per
    neuron layer, in order."""

    layers: tuple

    @property
    def identified(self) -> bool:
        return bool(self.layers) and all(x.identified for x in self.layers)

    @property
    def verified(self) -> bool:
        return bool(self.layers) and all(x.verified for x in self.layers)

    @property
    def departures(self) -> list:
        """``[(layer, Departure)]`` over every layer."""
        return [(x.layer, d) for x in self.layers for d in x.departures]

    def format(self) -> str:
        return "\n\n".join(x.format() for x in self.layers)

    def to_dict(self) -> dict:
        return dict(identified=self.identified, verified=self.verified,
                    layers=[x.to_dict() for x in self.layers])


def _list(a):
    a = np.asarray(a, np.float64)
    return float(a) if a.ndim == 0 else [float(x) for x in a]


def _preset_text(p):
    args = ", ".join(f"{k}={'any' if k in p.no_effect else format(v, 'g')}"
                     for k, v in p.params.items())
    return f"{p.name}({args})" + (" [to float32: a constant rounded to float32]"
                                   if p.float32 else "")


def describe(c: Cell) -> str:
    """One line: the identified cell in lifgrad's terms."""
    parts = [f"alpha={_num(c.alpha)}"]
    if c.alpha_s is not None:
        parts.append(f"alpha_s={_num(c.alpha_s)}" + (" (interchangeable)"
                                                      if c.states_interchangeable else ""))
    parts.append(f"c={_num(c.c)}")
    parts.append(f"theta={_num(c.theta, 10)}{' strict' if c.strict else ''}")
    if c.reset == "subtract":
        parts.append(f"reset=subtract gamma={_num(c.gamma)}")
    elif c.reset == "zero":
        parts.append(f"reset=zero u_reset={_num(c.u_reset)}")
    else:
        parts.append("reset=none")
    if c.reset != "none":
        parts.append("detached" if c.detach else ("live" if c.detach is False else
                                                   "detach=?"))
    if c.max_spikes != 1:
        parts.append(f"max_spikes={c.max_spikes}")
    if c.delay_output:
        parts.append("delay_output")
    if c.theta_grad == "ratio":
        parts.append("theta_grad=ratio")
    if c.post_reset:
        parts.append("mem=post-reset")
    if c.spike_scale != 1.0:
        parts.append(f"spike={c.spike_scale:g}")
    if np.any(c.u0 != 0) or np.any(c.u_bias != 0):
        parts.append(f"u0={_num(c.u0)} u_bias={_num(c.u_bias)}")
    if c.surrogate is not None:
        parts.append(f"surrogate={c.surrogate.surrogate}")
    return ", ".join(parts)


# ------------------------------------------------------------------ finding neurons

def _size(adapter, module, n):
    """The number of neurons: ``n``, else the first size the module runs with."""
    if n is not None:
        return int(n)
    hints = []
    for attr in ("size_out", "hidden_shape", "layer_shape"):
        v = getattr(module, attr, None)
        if isinstance(v, (int, np.integer)):
            hints.append(int(v))
        elif isinstance(v, (tuple, list)) and len(v) == 1:
            hints.append(int(v[0]))
    try:
        for t in list(module.parameters()) + list(module.buffers()):
            if t.ndim >= 1 and t.shape[-1] > 1:
                hints.append(int(t.shape[-1]))
        p = getattr(module, "p", None)
        for f in getattr(p, "_fields", ()):
            val = getattr(p, f)
            if hasattr(val, "shape") and len(val.shape) >= 1 and val.shape[-1] > 1:
                hints.append(int(val.shape[-1]))
    except (AttributeError, TypeError):
        pass
    for cand in list(dict.fromkeys(hints)) + [4, 1]:
        try:
            spk, mem = adapter.peer_forward(module, np.zeros((1, 1, cand)))
            if np.shape(spk) == (1, 1, cand):
                return cand
        except Exception:               # a size the module refuses  # noqa: BLE001
            continue
    raise ValueError(f"{type(module).__name__}: cannot tell its number of neurons; pass n=")


def find_neurons(obj, framework=None):
    """``[(path, adapter, module, width)]``: the neuron layers of ``obj`` (a neuron
    of a supported framework, a torch model holding some, or a Spyx / Rockpool
    Sequential), on a float64 copy for torch modules (``obj`` is not changed);
    ``width`` the output size of the Linear before the neuron (None if none)."""
    from .verify.protocol import adapter as _adapter, adapter_of
    ad = _adapter(framework) if framework else adapter_of(obj)
    if ad is not None and ad.is_neuron(obj):
        return [("", ad, _copy(ad, obj), None)]
    if _is_torch(obj):
        from .verify import chain as _chain
        try:
            work = _chain.working_copy(obj).model
        except (AttributeError, TypeError):   # Rockpool: parameters() is a dict
            work = _float64_deepcopy(obj)
        out, inside, width = [], [], None
        for path, m in work.named_modules():
            if any(path.startswith(p + ".") for p in inside):
                continue
            feats = getattr(m, "out_features", None)       # a Linear: the next neurons' count
            if feats is None and type(m).__name__.startswith("Linear"):
                shape = getattr(m, "size_out", None)
                feats = shape if isinstance(shape, int) else None
            if isinstance(feats, int):
                width = feats
            if not _chain.is_neuron(m):
                continue
            a = _chain.adapter_of(m)
            a.prepare(m)
            out.append((path, a, m, width))
            inside.append(path)
        if not out:
            raise ValueError("model: no neuron of a supported framework found")
        return out
    layers = getattr(obj, "layers", None)
    if ad is not None and layers is not None:
        out, width = [], None
        for i, m in enumerate(layers):
            feats = getattr(m, "out_features", None)
            if isinstance(feats, int):
                width = feats
            if ad.is_neuron(m):
                out.append((f"layers.{i}", ad, m, width))
        if out:
            return out
    raise TypeError(f"diagnose: {type(obj).__module__}.{type(obj).__qualname__} is neither a "
                    f"neuron of a supported framework nor a model holding some")


def _copy(ad, module):
    """A copy of a neuron module to probe (its state and flags are changed by
    running it): lifgrad.verify's float64 working copy for a torch module
    (a Rockpool module, whose ``parameters()`` is a dict, a plain deep copy)."""
    if not _is_torch(module):
        return module                       # JAX modules are run functionally
    from .verify.chain import working_copy
    try:
        work = working_copy(module).model
    except (AttributeError, TypeError):     # Rockpool: parameters() is a dict
        work = _float64_deepcopy(module)
    ad.prepare(work)
    return work


def _float64_deepcopy(module):
    """A deep copy in float64, made with torch's default dtype float64 (modules
    that create their state in the default dtype)."""
    import copy

    import torch
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return copy.deepcopy(module).double()
    finally:
        torch.set_default_dtype(old)


def _is_torch(obj):
    try:
        import torch
    except ImportError:                  # pragma: no cover
        return False
    return isinstance(obj, torch.nn.Module)


# ------------------------------------------------------------------ verification

def verify_cell(box, cell, seed=0, T=20, B=4, limits=(), notes=()):
    """lifgrad's cell against the framework on a fresh random problem:
    :class:`lifgrad.verify.common.CaseReport` (spikes, membrane, ``dL/dI``)."""
    from .verify.common import check_layer
    I, A, Bm = drive(box, cell, seed, T, B)
    out = box.gradient(I, A, Bm)
    peer = {"spikes": out["spikes"], "mem": out["mem"], "grad:input": out["grad:input"]}
    m = cell.layer_map(limits=limits, notes=notes)
    label = (box.framework, box.name, "identified", str(cell.surrogate.surrogate)
             if cell.surrogate else "-")
    return check_layer(label, peer, m, I, A, Bm)


# ------------------------------------------------------------------ the entry point

def diagnose_layer(adapter, module, n=None, *, layer="", seed=0, T=20, B=4,
                   compare_arguments=True) -> LayerDiagnosis:
    """Identify, verify and compare one neuron module (see :func:`diagnose`)."""
    t0 = time.perf_counter()
    n = _size(adapter, module, n)
    box = BlackBox.of(adapter, module, n)
    cell, error, report, deps, text = None, "", None, (), ""
    try:
        cell = identify(box)                          # the search: the black box only
    except IdentificationError as e:
        error = str(e)
    except Exception as e:                            # noqa: BLE001 - the framework failed
        error = f"the framework failed under the probes: {type(e).__name__}: {e}"
    fits = ()
    if cell is not None and not cell.unidentified:    # parameter gradients (D13): black box
        from .diagnose_params import fit_parameters
        fits, tg, text_p = fit_parameters(box, cell, seed=seed + 1)
        cell = cell._replace(theta_grad=tg, evidence=dict(cell.evidence, parameters=text_p))
        fits = tuple(fits)
    if cell is not None:
        x = surrogate_grid()
        v = (x >= 0).astype(np.float64)
        m = preset = None
        params = {}
        if compare_arguments:
            m, preset, params, text = read_arguments(adapter, module, cell.n)
        limits = tuple(m.limits) if m is not None else ()
        notes = ("precision limits (if any) are the adapter's documented ones for this "
                 "framework",) if limits else ()
        if cell.gradient_float32:                      # measured by the probes (D7)
            from .verify.common import F32_TOL, Limit
            limits += (Limit("float32 gradient", F32_TOL, "the probes found the gradient "
                                                          "entering a spike rounded to float32"),)
            notes += ("the framework rounds the gradient entering a spike to float32 "
                      "(measured): agreement is limited to float32 precision where that "
                      "gradient is not a float32 number",)
        try:
            report = verify_cell(box, cell, seed=seed, T=T, B=B, limits=limits, notes=notes)
        except (ValueError, TypeError) as e:
            error = f"verification: {e}"
        if compare_arguments:
            deps = []
            if m is not None:
                deps += compare_with_map(cell, m, x, v)
            deps += compare_with_documentation(cell, adapter.name, type(module).__name__,
                                               preset, params, x, v)
            deps = tuple(deps)
    return LayerDiagnosis(layer, adapter.name, type(module).__name__, n, cell, error, report,
                          deps, text, box.calls, time.perf_counter() - t0, (seed, T, B), fits)


def diagnose(obj, framework=None, *, n=None, seed=0, T=20, B=4,
             compare_arguments=True) -> Diagnosis:
    """Find the lifgrad configuration that reproduces ``obj``.

    ``obj``: a neuron module of a framework ``lifgrad verify`` supports
    (snnTorch, SpikingJelly, Norse, sinabs, Spyx, Rockpool), or a model that
    holds such neurons (a torch module, a Spyx or Rockpool Sequential): each
    neuron layer is diagnosed on its own.  ``framework`` names the adapter
    (default: the one the module's package belongs to); ``n`` the number of
    neurons (default: read from the module's shapes, or 4 for a neuron of any
    size); ``seed``, ``T``, ``B``: the verification problem.
    ``compare_arguments=False`` skips reading the arguments after the search.

    Returns a :class:`Diagnosis` (``.identified``, ``.verified``,
    ``.departures``, ``.format()``, ``.to_dict()``)."""
    targets = find_neurons(obj, framework)
    layers = [diagnose_layer(ad, module, n if len(targets) == 1 and n is not None else width,
                             layer=path, seed=seed, T=T, B=B,
                             compare_arguments=compare_arguments)
              for path, ad, module, width in targets]
    return Diagnosis(tuple(layers))
