"""What the frameworks' documentation says their arguments mean, where the code
computes something else (``lifgrad diagnose`` flags the difference).

Data only, read from the installed packages' docstrings and source comments
(``shared/peers_catalog.md``, ``derivations/peers.md``).  ``lifgrad diagnose``
compares the *identified* behaviour of a neuron with these readings after
the search, never during it.  Only documented formulas are listed: a name
alone (snnTorch's ``triangular``, Rockpool's "piece-wise linear"
``StepPWL``) is not a formula, and snnTorch's ``atan`` docstring prints a
derivative that contradicts the primitive it also prints (the code is the
primitive's derivative), so it is not listed either.
"""
from __future__ import annotations

import math

from . import surrogates as _sg

__all__ = ["SURROGATES", "CELLS", "documented_surrogate", "documented_cell"]

_SQRT2 = math.sqrt(2.0)

# preset -> (the documented derivative as a Surrogate of the preset's parameters, source)
SURROGATES = {
    "norse.super": (
        lambda alpha: _sg.get("fast_sigmoid", k=alpha),
        "norse/torch/functional/superspike.py: SuperSpike of Zenke & Ganguli (2018), section "
        "3.3.2 with 'beta -> alpha': 1/(alpha |x| + 1)^2"),
    "norse.tanh": (
        lambda alpha: _sg.get("tanh", k=alpha, scale=alpha / 2),
        "HeaviTanh docstring: h(x, k) = 1/2 + 1/2 tanh(k x), whose derivative is "
        "(k/2) sech^2(k x)"),
    "norse.circ": (
        lambda alpha: _sg.get("circ", a=alpha, scale=1 / (2 * alpha)),
        "HeaviCirc docstring: h(x, alpha) = 1/2 + 1/2 x/sqrt(x^2 + alpha^2), whose derivative "
        "is alpha^2/(2 (x^2 + alpha^2)^(3/2))"),
    "norse.heavi_erfc": (
        lambda alpha: _sg.get("gaussian", sigma=1 / (alpha * _SQRT2)),
        "HeaviErfc docstring: h(x, k) = 1/2 + 1/2 erfc(k x), whose derivative is "
        "(k/sqrt(pi)) exp(-(k x)^2) in magnitude"),
    "sinabs.Heaviside": (
        lambda window, threshold: _sg.get("one_sided", w=window * threshold, c=1 / threshold),
        "sinabs.activation.Heaviside docstring: 'window: distance between step of Heaviside "
        "surrogate gradient and threshold, relative to threshold'"),
}

# (framework, neuron class) -> {factor: (documented value, source)}
_SPYX_DELAY = (False, "Spyx's neuron docstrings describe a spike of the state the step "
                      "computes; none says the output is the previous step's")
_ROCKPOOL = {"max_spikes": (1, "LIFTorch / LIFJax docstrings: a neuron emits one spike when "
                               "V > V_thr"),
             "strict": (True, "LIFTorch / LIFJax docstrings: a neuron spikes when V > V_thr")}
CELLS = {
    **{("spyx", k): {"delay_output": _SPYX_DELAY}
       for k in ("IF", "LIF", "RIF", "RLIF", "CuBaLIF", "RCuBaLIF")},
    ("rockpool", "LIFTorch"): _ROCKPOOL,
    ("rockpool", "LIFJax"): _ROCKPOOL,
}


def documented_surrogate(preset, params):
    """``(Surrogate, source)`` the documentation of ``preset`` describes for the
    framework's parameters ``params``, or None when it documents what the code
    computes."""
    entry = SURROGATES.get(preset)
    if entry is None:
        return None
    build, source = entry
    import inspect
    names = inspect.signature(build).parameters
    try:
        return build(**{k: float(params[k]) for k in names}), source
    except (KeyError, ValueError, ZeroDivisionError):
        return None


def documented_cell(framework, neuron):
    """``{factor: (value, source)}`` documented for a framework's neuron class."""
    return dict(CELLS.get((framework, neuron), {}))
