"""``lifgrad diagnose ... --report DIR``: a diagnosis as markdown with figures.

For every diagnosed neuron layer: the text of :meth:`LayerDiagnosis.format`
(configuration, evidence per factor, verification, departures) and a figure
of the identified surrogate derivative against the one the layer's arguments
select (lifgrad's preset of the module's surrogate) and, where the
framework's documentation gives a formula of its own, against that one; the
verification's relative error over time, as ``lifgrad verify --report``
draws it (:mod:`lifgrad.verify.report`, which writes the folder).
"""
from __future__ import annotations

import os

import numpy as np

from . import surrogates as _sg

__all__ = ["write", "surrogate_curves"]


def _span(phi, theta=1.0):
    """An x range around the threshold where ``phi`` is visible: where it is
    above 1 % of its peak on a wide grid, padded; (-3, 3) when flat."""
    x = np.linspace(-20.0, 20.0, 8001) * theta
    y = np.abs(phi(x))
    peak = float(np.max(y)) if y.size else 0.0
    if not peak > 0:
        return (-3.0 * theta, 3.0 * theta)
    on = x[y >= 0.01 * peak]
    half = max(abs(float(on.min())), abs(float(on.max())), 1e-3) * 1.6
    return (-half, half)


def surrogate_curves(layer, adapter=None, module=None):
    """``[(label, phi callable)]`` for one :class:`LayerDiagnosis`: the
    identified surrogate, then (read from the module after the search) the
    preset its arguments select and the documented formula, where there are."""
    from .diagnose_departures import read_arguments
    from .diagnose_documented import documented_surrogate
    f = layer.cell.surrogate if layer.cell is not None else None
    if f is None:
        return []
    curves = [(f"identified: {f.surrogate} (residual {f.residual:.1e})", f.surrogate.phi)]
    if adapter is None or module is None:
        return curves
    _, preset, params, _ = read_arguments(adapter, module, layer.n)
    if preset:
        try:
            sg = _sg.get(preset, **params)
            args = ", ".join(f"{k}={v:g}" for k, v in params.items())
            curves.append((f"the arguments: {preset}({args})", sg.phi))
        except (ValueError, TypeError):
            pass
        doc = documented_surrogate(preset, params)
        if doc is not None:
            curves.append((f"the documentation: {doc[0]}", doc[0].phi))
    return curves


def write(results, out_dir, command=None, seconds=None):
    """Write ``out_dir/report.md`` for ``results``: ``[(name, obj, framework,
    Diagnosis)]`` (``obj`` the neuron or model diagnosed).  Returns its path."""
    from .diagnose import find_neurons
    from .verify import report as _rep
    os.makedirs(os.path.join(os.fspath(out_dir), "figures"), exist_ok=True)
    sections, reports = [], []
    k = 0
    for name, obj, framework, d in results:
        try:
            found = {path: (ad, m) for path, ad, m, _ in find_neurons(obj, framework)}
        except (TypeError, ValueError):
            found = {}
        for layer in d.layers:
            ad, module = found.get(layer.layer, (None, None))
            if ad is None and len(found) == 1:
                ad, module = next(iter(found.values()))
            label = f"{name}" + (f" / {layer.layer}" if layer.layer else "")
            figs = ()
            curves = surrogate_curves(layer, ad, module)
            if curves:
                theta = float(np.mean(layer.cell.theta)) if layer.cell is not None else 1.0
                rel = os.path.join("figures", f"surrogate_{k}.png")
                _rep.surrogate_figure(curves, os.path.join(os.fspath(out_dir), rel),
                                      title=f"{label}: surrogate derivative phi(u - theta)",
                                      x=_span(curves[0][1], max(theta, 1e-3)))
                figs = ((rel, f"{label}: the identified surrogate derivative against the one "
                              f"the arguments select and, where it has its own formula, the "
                              f"documentation's."),)
                k += 1
            sections.append(_rep.Section(label, "```\n" + layer.format() + "\n```", figs))
            if layer.report is not None:
                reports.append(layer.report._replace(neuron=f"{layer.neuron}",
                                                     variant=label))
    return _rep.write(reports, out_dir, title="lifgrad diagnose", command=command,
                      seconds=seconds, sections=tuple(sections))
