"""Random peer neurons to test ``lifgrad diagnose`` (``lifgrad diagnose --zoo N --seed S``).

:func:`zoo` draws ``count`` neurons across the six frameworks with random
options (time constants, thresholds, reset mechanism, detach, delayed or
immediate reset, spike counts, surrogate and its parameters) from ``seed``,
and builds them in float64 the way their users would (:func:`build_neuron`,
also what ``lifgrad diagnose --framework F --neuron X --option k=v`` uses).
The search (:mod:`lifgrad.diagnose` and the modules it imports) never imports
this module and never sees the seed.

Ground truth, for scoring (:func:`score`): the adapter's ``layer_map`` of the
built module (lifgrad's documented reading of the arguments, which ``lifgrad
verify`` reproduces to 1e-10), and :func:`expected_departures`, the places
where the behaviour departs from the arguments, written here by hand from
``shared/peers_catalog.md`` and ``derivations/peers.md`` (not from
:mod:`lifgrad.diagnose_documented`): Norse's ``super`` ignores ``alpha`` and
its ``tanh``/``circ``/``heavi_erfc`` lack the factor their docstrings' formulas
have; sinabs' ``Heaviside`` window is not relative to the threshold; Spyx's
spiking neurons emit one step late; Rockpool's LIF fires at ``>=`` and several
times per step where its docstring says one spike at ``V > V_thr``; a 0-dim
snnTorch threshold is subtracted in float32.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

__all__ = ["ZooModel", "zoo", "build_neuron", "random_spec", "expected_departures", "score",
           "FRAMEWORKS"]

FRAMEWORKS = ("snntorch", "spikingjelly", "norse", "sinabs", "spyx", "rockpool")


class ZooModel(NamedTuple):
    """One random peer neuron: its description, the framework's module (``n``
    neurons, float64) and the departures its arguments predict."""

    name: str
    framework: str
    neuron: str
    options: dict
    surrogate: str
    sg_params: dict
    module: Any
    n: int
    expect: frozenset


def _pick(rng, xs):
    return xs[int(rng.integers(len(xs)))]


def _vec(rng, lo, hi, n, digits=2):
    return [round(float(v), digits) for v in rng.uniform(lo, hi, n)]


# ------------------------------------------------------------------ random specifications

def _spec_snntorch(rng, n):
    neuron = "Leaky" if rng.random() < 0.7 else "Synaptic"
    opts = {}
    opts["beta"] = round(float(rng.uniform(0.5, 0.95)), 2) if rng.random() < 0.6 else \
        _vec(rng, 0.5, 0.95, n)
    opts["threshold"] = _pick(rng, [0.5, 0.8, 1.0, 1.25, 1.5]) if rng.random() < 0.6 else \
        _vec(rng, 0.6, 1.4, n)
    opts["learn_beta"] = bool(rng.random() < 0.4)         # parameter gradients to check
    opts["learn_threshold"] = bool(rng.random() < 0.4)
    if neuron == "Leaky":
        opts["reset_mechanism"] = _pick(rng, ["subtract", "zero", "none"])
        opts["reset_delay"] = bool(rng.random() < 0.7)
    else:
        opts["alpha"] = round(float(rng.uniform(0.3, 0.9)), 2)
        opts["reset_mechanism"] = _pick(rng, ["subtract", "none"])
    sg = _pick(rng, ["atan", "atan", "sigmoid", "fast_sigmoid", "triangular", "spike_rate_escape",
                     "straight_through_estimator", "heaviside", "SFS"])
    sp = {"atan": lambda: {"alpha": _pick(rng, [1.0, 2.0, 3.0, 4.5])},
          "sigmoid": lambda: {"slope": _pick(rng, [4.0, 8.0, 16.0, 25.0])},
          "fast_sigmoid": lambda: {"slope": _pick(rng, [5.0, 10.0, 25.0])},
          "triangular": lambda: {"threshold": _pick(rng, [0.5, 1.0, 1.5])},
          "spike_rate_escape": lambda: {"beta": _pick(rng, [0.5, 1.0, 2.0]),
                                        "slope": _pick(rng, [8.0, 16.0, 25.0])},
          "straight_through_estimator": dict, "heaviside": dict,
          "SFS": lambda: {"slope": _pick(rng, [10.0, 25.0]), "B": _pick(rng, [0.1, 0.25, 0.5])},
          }[sg]()
    return neuron, opts, sg, sp


_SJ_SURROGATES = {
    "Sigmoid": lambda r: {"alpha": _pick(r, [2.0, 4.0, 8.0])},
    "ATan": lambda r: {"alpha": _pick(r, [1.0, 2.0, 3.0])},
    "PiecewiseQuadratic": lambda r: {"alpha": _pick(r, [0.5, 1.0, 1.7])},
    "PiecewiseExp": lambda r: {"alpha": _pick(r, [1.0, 1.5, 3.0])},
    "SoftSign": lambda r: {"alpha": _pick(r, [1.0, 2.0, 4.0])},
    "SuperSpike": lambda r: {"alpha": _pick(r, [0.5, 1.0, 1.5])},
    "Erf": lambda r: {"alpha": _pick(r, [1.0, 2.0, 3.0])},
    "PiecewiseLeakyReLU": lambda r: {"w": _pick(r, [0.5, 0.6, 1.0]), "c": _pick(r, [0.01, 0.05])},
    "QPseudoSpike": lambda r: {"alpha": _pick(r, [1.5, 2.0, 3.0])},
    "S2NN": lambda r: {"alpha": _pick(r, [2.0, 4.0]), "beta": _pick(r, [0.7, 1.0])},
    "Rect": lambda r: {"alpha": _pick(r, [0.8, 1.0, 1.7])},
    "FakeNumericalGradient": lambda r: {"alpha": _pick(r, [0.3, 0.5])},
    "LogTailedReLU": lambda r: {"alpha": _pick(r, [0.0, 0.05])},
    "LeakyKReLU": lambda r: {"leak": _pick(r, [0.0, 0.1]), "k": _pick(r, [0.8, 1.0])},
    "NonzeroSignLogAbs": lambda r: {"alpha": _pick(r, [1.0, 2.0])},
    "SquarewaveFourierSeries": lambda r: {"n": _pick(r, [3, 4]), "T_period": 8.0},
}


def _spec_spikingjelly(rng, n):
    neuron = _pick(rng, ["IFNode", "LIFNode", "LIFNode", "ParametricLIFNode"])
    opts = {"v_threshold": _pick(rng, [0.5, 0.8, 1.0, 1.2]),
            "v_reset": _pick(rng, [None, None, 0.0, -0.1, 0.2]),
            "detach_reset": bool(rng.random() < 0.4)}
    if neuron == "LIFNode":
        opts["tau"] = _pick(rng, [1.5, 2.0, 2.5, 3.0, 4.0])
        opts["decay_input"] = bool(rng.random() < 0.6)
    elif neuron == "ParametricLIFNode":
        opts["init_tau"] = _pick(rng, [1.5, 2.0, 3.0])
        opts["decay_input"] = bool(rng.random() < 0.6)
    sg = _pick(rng, list(_SJ_SURROGATES))
    return neuron, opts, sg, _SJ_SURROGATES[sg](rng)


_NORSE_ALPHA = {"super": [50.0, 100.0], "tanh": [1.0, 2.0, 5.0], "triangle": [0.3, 0.5, 1.0],
                "circ": [0.5, 1.0, 2.0], "heavi_erfc": [1.0, 2.0, 4.0]}


def _spec_norse(rng, n):
    neuron = _pick(rng, ["LIFCell", "LIFCell", "LIFBoxCell", "IAFCell", "LIF"])
    method = _pick(rng, list(_NORSE_ALPHA))
    opts = {"v_th": _pick(rng, [0.5, 0.8, 1.0, 1.2]) if rng.random() < 0.7 else
            _vec(rng, 0.6, 1.3, n),
            "v_reset": _pick(rng, [0.0, 0.0, -0.2, 0.1]), "method": method,
            "alpha": _pick(rng, _NORSE_ALPHA[method])}
    if neuron != "IAFCell":
        opts["tau_mem_inv"] = _pick(rng, [50.0, 100.0, 150.0, 200.0])
        opts["v_leak"] = _pick(rng, [0.0, 0.0, 0.1, -0.2])
    if neuron in ("LIFCell", "LIF"):
        opts["tau_syn_inv"] = _pick(rng, [100.0, 200.0, 300.0])
    if neuron == "LIFBoxCell":
        opts["reset_method"] = _pick(rng, ["reset_value", "reset_subtract"])
    return neuron, opts, method, {"alpha": opts["alpha"]}


_SINABS_SURROGATES = {
    "SingleExponential": lambda r: {"grad_width": _pick(r, [0.3, 0.5]),
                                    "grad_scale": _pick(r, [1.0, 1.5])},
    "PeriodicExponential": lambda r: {"grad_width": _pick(r, [0.3, 0.5]),
                                      "grad_scale": _pick(r, [1.0, 1.5])},
    "Heaviside": lambda r: {"window": _pick(r, [0.5, 1.0])},
    "Gaussian": lambda r: {"mu": _pick(r, [0.0, 0.1]), "sigma": _pick(r, [0.3, 0.5]),
                           "grad_scale": _pick(r, [1.0, 1.2])},
    "MultiGaussian": lambda r: {"sigma": _pick(r, [0.4, 0.5]), "h": 0.15,
                                "s": _pick(r, [4.0, 6.0])},
}


def _spec_sinabs(rng, n):
    neuron = "LIF" if rng.random() < 0.75 else "IAF"
    spike = _pick(rng, ["MultiSpike", "SingleSpike", "MaxSpike(1)", "MaxSpike(2)", "MaxSpike(3)"])
    opts = {"spike_threshold": _pick(rng, [0.5, 0.8, 1.0, 1.5]), "spike_fn": spike}
    single = spike in ("SingleSpike", "MaxSpike(1)")
    opts["reset_fn"] = _pick(rng, ["MembraneSubtract()", "MembraneSubtract(0.6)"] +
                             (["MembraneReset()"] if single else []))
    if neuron == "LIF":
        opts["tau_mem"] = _pick(rng, [2.0, 3.5, 5.0, 10.0])
        opts["norm_input"] = bool(rng.random() < 0.6)
    if rng.random() < 0.25:
        opts["tau_syn"] = _pick(rng, [1.5, 2.5])
    sg = _pick(rng, list(_SINABS_SURROGATES))
    return neuron, opts, sg, _SINABS_SURROGATES[sg](rng)


def _spec_spyx(rng, n):
    neuron = _pick(rng, ["IF", "LIF", "LIF", "CuBaLIF", "PSU_LIF"])
    opts = {"threshold": _pick(rng, [0.5, 0.8, 1.0]) if rng.random() < 0.7 else
            _vec(rng, 0.6, 1.3, n)}
    if neuron != "IF":
        opts["beta"] = round(float(rng.uniform(0.5, 0.95)), 2) if rng.random() < 0.5 else \
            _vec(rng, 0.5, 0.95, n)
    if neuron == "CuBaLIF":
        opts["alpha"] = round(float(rng.uniform(0.3, 0.9)), 2)
    sg = _pick(rng, ["superspike", "superspike", "arctan", "tanh", "boxcar", "triangular"])
    sp = {"superspike": lambda: {"k": _pick(rng, [10.0, 25.0])},
          "arctan": lambda: {"k": _pick(rng, [1.0, 2.0])},
          "tanh": lambda: {"k": _pick(rng, [1.0, 2.0, 4.0])},
          "boxcar": lambda: {"width": _pick(rng, [1.0, 1.2, 2.0]),
                             "height": _pick(rng, [0.5, 0.8])},
          "triangular": lambda: {"k": _pick(rng, [1.5, 2.0])}}[sg]()
    return neuron, opts, sg, sp


def _spec_rockpool(rng, n):
    opts = {"tau_mem": _pick(rng, [3e-3, 4.3e-3, 6e-3, 8e-3]),
            "tau_syn": _pick(rng, [2e-3, 2.7e-3, 4e-3]),
            "threshold": _pick(rng, [0.8, 1.0, 1.2]),
            "max_spikes_per_dt": _pick(rng, [65536, 65536, 1, 2, 3])}
    if rng.random() < 0.4:                 # small: the rest stays below threshold
        opts["bias"] = _vec(rng, -0.05, 0.05, n, 3)
    sg = _pick(rng, ["StepPWL", "StepPWL", "PeriodicExponential"])
    sp = {"learning_window": _pick(rng, [0.3, 0.5])} if sg == "StepPWL" else {}
    return "LIFTorch", opts, sg, sp


_SPECS = {"snntorch": _spec_snntorch, "spikingjelly": _spec_spikingjelly, "norse": _spec_norse,
          "sinabs": _spec_sinabs, "spyx": _spec_spyx, "rockpool": _spec_rockpool}


def random_spec(rng, framework, n=4):
    """``(neuron, options, surrogate, surrogate parameters)`` drawn from ``rng``."""
    return _SPECS[framework](rng, n)


# ------------------------------------------------------------------ building

def _t(x):
    import torch
    return torch.as_tensor(np.asarray(x, np.float64), dtype=torch.float64)


def build_neuron(framework, neuron, n=4, surrogate=None, sg_params=None, **options):
    """The framework's ``neuron`` with ``options`` (the constructor's keywords,
    numbers or per-neuron lists) and the surrogate ``surrogate`` (the
    framework's own name: snnTorch's factory, SpikingJelly's or sinabs' class,
    Norse's method, Spyx's ``spyx.axn`` factory, Rockpool's spike function)
    with ``sg_params``, in float64, ``n`` neurons."""
    sg_params = dict(sg_params or {})
    build = {"snntorch": _build_snntorch, "spikingjelly": _build_spikingjelly,
             "norse": _build_norse, "sinabs": _build_sinabs, "spyx": _build_spyx,
             "rockpool": _build_rockpool}
    if framework not in build:
        raise ValueError(f"framework: expected one of {', '.join(build)}, got {framework!r}")
    return build[framework](neuron, n, surrogate, sg_params, dict(options))


def _build_snntorch(neuron, n, sg, sp, o):
    import snntorch as snn
    from snntorch import surrogate
    kw = {}
    if sg is not None:
        kw["spike_grad"] = getattr(surrogate, sg)(**sp)
    for k in ("beta", "threshold", "alpha"):
        if k in o:
            kw[k] = _t(o.pop(k))
    cls = getattr(snn, neuron)
    return cls(**kw, **o).double()


def _build_spikingjelly(neuron, n, sg, sp, o):
    from spikingjelly.activation_based import neuron as sjn, surrogate
    if sg is not None:
        o["surrogate_function"] = getattr(surrogate, sg)(**sp)
    return getattr(sjn, neuron)(step_mode="m", store_v_seq=True, **o).double()


def _build_norse(neuron, n, sg, sp, o):
    import norse.torch as nt
    from norse.torch.functional import reset as rs
    method = o.pop("method", sg or "super")
    alpha = o.pop("alpha", sp.get("alpha", 100.0))
    kw = {k: _t(v) for k, v in o.items() if k != "reset_method"}
    kw["method"], kw["alpha"] = method, _t(alpha)
    if neuron in ("LIFCell", "LIF"):
        return getattr(nt, neuron)(nt.LIFParameters(**kw))
    if neuron == "LIFBoxCell":
        kw["reset_method"] = getattr(rs, o.get("reset_method", "reset_value"))
        return nt.LIFBoxCell(nt.LIFBoxParameters(**kw))
    if neuron == "IAFCell":
        return nt.IAFCell(nt.IAFParameters(**kw))
    raise ValueError(f"norse neuron: expected LIFCell, LIF, LIFBoxCell or IAFCell, got {neuron!r}")


def _build_sinabs(neuron, n, sg, sp, o):
    import torch
    import sinabs.activation as act
    import sinabs.layers as layers
    from .verify.sinabs import spike_functions
    fns = spike_functions()
    spike = o.pop("spike_fn", "MultiSpike")
    if spike == "MultiSpike":
        o["spike_fn"] = fns["multi"]
    elif spike == "SingleSpike":
        o["spike_fn"] = fns["single"]
    else:
        o["spike_fn"] = fns["max"](max_num_spikes_per_bin=int(spike[len("MaxSpike("):-1]))
    reset = o.pop("reset_fn", "MembraneSubtract()")
    if reset.startswith("MembraneReset"):
        o["reset_fn"] = act.MembraneReset()
    else:
        inner = reset[len("MembraneSubtract("):-1]
        o["reset_fn"] = act.MembraneSubtract(subtract_value=float(inner) if inner else None)
    if sg is not None:
        o["surrogate_grad_fn"] = getattr(act, sg)(**sp)
    o["spike_threshold"] = _t(o.get("spike_threshold", 1.0))
    tau = o.pop("tau_mem", None)
    tau_syn = o.pop("tau_syn", None)
    if tau_syn is not None:
        o["tau_syn"] = _t(tau_syn)
    if neuron == "IAF":
        m = layers.IAF(record_states=True, **o).double()
    else:
        m = getattr(layers, neuron)(tau_mem=_t(tau), record_states=True, **o).double()
    with torch.no_grad():                  # sinabs makes them float32: write them in float64
        if tau is not None:
            m.tau_mem.data = _t(tau)
        if tau_syn is not None:
            m.tau_syn.data = _t(tau_syn)
    return m


def _build_spyx(neuron, n, sg, sp, o):
    from .verify.spyx import _jax
    jax, jnp, nnx, snn, axn = _jax()
    act = getattr(axn, sg)(**sp) if sg is not None else None
    kw = {}
    th = o.get("threshold", 1.0)
    kw["threshold"] = jnp.asarray(np.asarray(th, np.float64)) if isinstance(th, list) else th
    beta = o.get("beta")
    alpha = o.get("alpha")
    if neuron != "IF" and beta is not None:
        kw["beta"] = 0.8 if isinstance(beta, list) else beta
    if neuron == "CuBaLIF" and alpha is not None:
        kw["alpha"] = alpha
    m = getattr(snn, neuron)((n,), activation=act, rngs=nnx.Rngs(0), **kw)
    if isinstance(beta, list):
        m.beta = nnx.Param(jnp.asarray(np.asarray(beta, np.float64)))
    return m


def _build_rockpool(neuron, n, sg, sp, o):
    import torch
    from rockpool.nn.modules.torch import lif_torch as lt
    from .verify.rockpool import _float64_default, spike_functions
    if neuron != "LIFTorch":
        raise ValueError(f"rockpool neuron: the zoo builds LIFTorch, got {neuron!r}")
    fn = spike_functions()[sg or "StepPWL"]
    ctor = dict(shape=(n, n), dt=1e-3, spike_generation_fn=fn)
    if "learning_window" in sp:
        ctor["learning_window"] = float(sp["learning_window"])
    if "max_spikes_per_dt" in o:
        ctor["max_spikes_per_dt"] = torch.tensor(float(o["max_spikes_per_dt"]))
    with _float64_default():
        m = lt.LIFTorch(**ctor).double()
    with torch.no_grad():
        m.tau_mem.data = _t(o.get("tau_mem", 2e-2))
        m.tau_syn.data = _t(o.get("tau_syn", 2e-2))
        m.threshold.data = _t(o.get("threshold", 1.0))
        if "bias" in o:
            m.bias.data = _t(o["bias"])
    return m


# ------------------------------------------------------------------ expectations

def _f32_exact(x):
    return all(float(np.float32(v)) == float(v) for v in np.atleast_1d(np.asarray(x, float)))


def expected_departures(framework, neuron, options, surrogate, sg_params):
    """The factors in which the behaviour departs from the arguments (see the
    module docstring); the names :class:`lifgrad.diagnose.Departure` uses."""
    out = set()
    if framework == "norse":
        a = float(sg_params.get("alpha", options.get("alpha", 100.0)))
        if surrogate == "super":
            out.add("surrogate.alpha")               # alpha is stored, never used
            if a != 1.0:
                out.add("surrogate")                 # the docstring's SuperSpike has alpha
        elif (surrogate == "tanh" and a != 2.0) or (surrogate == "circ" and a != 0.5) or \
                (surrogate == "heavi_erfc" and a != 2.0):
            out.add("surrogate")
    elif framework == "sinabs":
        if surrogate == "Heaviside" and float(options.get("spike_threshold", 1.0)) != 1.0:
            out.add("surrogate")                     # the window is not relative
    elif framework == "spyx":
        if neuron in ("IF", "LIF", "CuBaLIF", "RIF", "RLIF", "RCuBaLIF"):
            out.add("delay_output")
    elif framework == "rockpool":
        out.add("strict")
        if int(options.get("max_spikes_per_dt", 65536)) != 1:
            out.add("max_spikes")
    elif framework == "snntorch":
        th = options.get("threshold", 1.0)
        if options.get("reset_mechanism", "subtract") == "subtract" and \
                np.ndim(th) == 0 and not _f32_exact(th):
            out.add("gamma")                         # (float32 spike) * 0-dim threshold
            if not options.get("reset_delay", True):
                out.add("reported reset")
    return frozenset(out)


# ------------------------------------------------------------------ the zoo

def _describe(framework, neuron, options, surrogate, sg_params):
    def fmt(v):
        if isinstance(v, list):
            return "[" + ", ".join(f"{x:g}" for x in v) + "]"
        return f"{v:g}" if isinstance(v, float) else str(v)
    opts = ", ".join(f"{k}={fmt(v)}" for k, v in options.items())
    sg = f"{surrogate}(" + ", ".join(f"{k}={fmt(v)}" for k, v in sg_params.items()) + ")"
    return f"{framework} {neuron}({opts}) {sg}"


def zoo(count, seed, frameworks=FRAMEWORKS, n=4):
    """``count`` random peer neurons (:class:`ZooModel`), the frameworks in turn,
    every choice drawn from ``numpy.random.default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        fw = frameworks[k % len(frameworks)]
        neuron, options, sg, sp = random_spec(rng, fw, n)
        module = build_neuron(fw, neuron, n, sg, sp, **options)
        out.append(ZooModel(_describe(fw, neuron, options, sg, sp), fw, neuron, options, sg, sp,
                            module, n, expected_departures(fw, neuron, options, sg, sp)))
    return out


def score(models, diagnoses):
    """Per model: identified (every factor, and nothing lifgrad's reading of the
    arguments contradicts beyond float32 rounding), verified, the departures
    found against those expected.  Returns ``(rows, summary)``."""
    rows = []
    for zm, d in zip(models, diagnoses):
        layer = d.layers[0]
        kinds = {}
        for dep in layer.departures:
            kinds.setdefault(dep.factor, set()).add(dep.kind)
        mapping = sorted(f for f, ks in kinds.items() if "mapping" in ks)
        found = frozenset(kinds)
        rows.append(dict(model=zm.name, identified=layer.identified and not mapping,
                         verified=layer.verified, config=layer.config_text(),
                         departures=sorted(found), expected=sorted(zm.expect),
                         flagged_as_expected=found == zm.expect, mapping=mapping,
                         error=layer.error, seconds=layer.seconds))
    summary = dict(models=len(rows), identified=sum(r["identified"] for r in rows),
                   verified=sum(r["verified"] for r in rows),
                   with_departures=sum(bool(r["expected"]) for r in rows),
                   flagged=sum(bool(r["expected"]) and r["flagged_as_expected"] for r in rows),
                   as_expected=sum(r["flagged_as_expected"] for r in rows))
    return rows, summary
