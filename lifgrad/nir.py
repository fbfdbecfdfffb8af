"""Export to and import from NIR, the Neuromorphic Intermediate Representation.

``export(net, dt)`` writes a :class:`lifgrad.network.Sequential` as a
``nir.NIRGraph``; ``load(graph_or_path, dt)`` reads one back (or one written
by snnTorch, SpikingJelly, Norse, ...).  NIR's neurons are continuous-time;
both directions use the forward-Euler step of width ``dt``,

    v <- v + (dt/tau) (v_leak - v + r I),   z = [v > v_threshold],   v <- v_reset if z

which is lifgrad's zero-reset cell (A3) with ``alpha = 1 - dt/tau`` and the
input gain ``c = r dt/tau`` folded into the weights.  Equations, the cases NIR
cannot express and the peers' deviations: ``derivations/nir.md`` (N1)-(N9).

``nir`` is imported lazily: ``import lifgrad`` never needs it.
"""
from __future__ import annotations

import math
import os

import numpy as np

from .config import LIFConfig
from .network import Dense, Sequential

__all__ = ["export", "load"]

_NEURON_TYPES = ("LIF", "CubaLIF", "IF")
_WEIGHT_TYPES = ("Affine", "Linear")


def _nir():
    try:
        import nir
    except ImportError as exc:                                   # pragma: no cover
        raise ImportError("lifgrad.nir needs the 'nir' package (and h5py for files): run "
                          "`make peers` or `pip install nir`") from exc
    return nir


def _check_dt(dt):
    if isinstance(dt, bool) or not isinstance(dt, (int, float, np.floating)) \
            or not math.isfinite(dt) or dt <= 0:
        raise ValueError(f"dt: expected a finite number > 0, got {dt!r}")
    return float(dt)


# ---------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------

def export(network, dt=1e-4, path=None, allow_nonstrict=False):
    """The NIR graph of a lifgrad ``Sequential`` (and, with ``path``, an HDF5 file).

    Nodes: ``input``, per layer ``layerK.affine`` (``Affine(W, b)``, or
    ``Linear(W)`` without bias), ``layerK.lif`` (``LIF``, ``IF`` for
    ``alpha == 1``, ``CubaLIF`` for a synaptic cell), ``layerK.rec`` for a
    recurrent layer (``Linear(R)``, ``Affine(R, b_rec)``, ``Linear(diag(r))``
    for one-to-one; edges ``lif -> rec -> lif``), then ``output``.  Neuron
    parameters are the layer's *effective* values (parametrisations applied),
    written per neuron with input gain 1 (N1)-(N3).

    Raises ValueError, naming the layer, for what NIR cannot express:
    subtractive reset, reset 'none', adaptive threshold, ``alpha_s == 1``
    (or ``alpha == 1`` in a synaptic cell), the smooth forward, and non-strict
    firing (lifgrad's default ``u >= theta``; NIR fires at ``v > threshold``).
    ``allow_nonstrict=True`` exports a non-strict layer anyway: spikes then
    differ only on steps where ``u == theta`` exactly.
    """
    nir = _nir()
    if not isinstance(network, Sequential):
        raise TypeError(f"network: expected a lifgrad Sequential, got {type(network).__name__}")
    dt = _check_dt(dt)
    f64 = np.float64
    nodes = {"input": nir.Input(input_type={"input": np.array([network.n_in])})}
    edges = []
    prev = "input"
    for k, layer in enumerate(network.layers):
        name = f"layer{k}"
        cfg = layer.config
        _refuse(name, cfg, allow_nonstrict)
        p = network.layer_params(network.params, k)
        neuron, _ = layer.effective(p)
        n = layer.n_out
        if np.any(np.asarray(neuron.u_bias) != 0):
            raise ValueError(f"{name}: a membrane bias (u_bias != 0, derivations/variants.md "
                             f"(M6)) cannot be exported: this export writes v_leak = 0")
        alpha, theta, _gamma, u_reset = neuron.resolved(n, f64)
        W = np.array(p["W"], f64)
        if layer.bias:
            nodes[f"{name}.affine"] = nir.Affine(weight=W, bias=np.array(p["b"], f64))
        else:
            nodes[f"{name}.affine"] = nir.Linear(weight=W)
        zeros = np.zeros(n, f64)
        if cfg.synaptic:
            alpha_s = np.asarray(neuron.packed(n, f64, cfg)[4], f64)
            if np.any(alpha_s >= 1):
                raise ValueError(f"{name}: alpha_s == 1 (a synaptic current that never decays) "
                                 f"has no NIR CubaLIF form (tau_syn would be infinite)")
            if np.any(alpha >= 1):
                raise ValueError(f"{name}: alpha == 1 in a synaptic cell has no NIR CubaLIF "
                                 f"form (tau_mem would be infinite)")
            cell = nir.CubaLIF(tau_syn=dt / (1 - alpha_s), tau_mem=dt / (1 - alpha),      # (N3)
                               r=1 / (1 - alpha), v_leak=zeros, v_threshold=theta.copy(),
                               v_reset=u_reset.copy(), w_in=1 / (1 - alpha_s))
        elif np.all(alpha == 1):
            cell = nir.IF(r=np.full(n, 1 / dt), v_threshold=theta.copy(),                # (N2)
                          v_reset=u_reset.copy())
        elif np.any(alpha == 1):
            raise ValueError(f"{name}: some neurons have alpha == 1 and others alpha < 1; one "
                             f"NIR node is either IF or LIF, not both")
        else:
            cell = nir.LIF(tau=dt / (1 - alpha), r=1 / (1 - alpha), v_leak=zeros,         # (N1)
                           v_threshold=theta.copy(), v_reset=u_reset.copy())
        nodes[f"{name}.lif"] = cell
        edges += [(prev, f"{name}.affine"), (f"{name}.affine", f"{name}.lif")]
        if cfg.recurrent is not None:
            R = np.asarray(neuron.R, f64)
            if cfg.recurrent == "one":
                R = np.diag(np.broadcast_to(R, (n,)))
            if layer.rec_bias:
                rec = nir.Affine(weight=R.copy(), bias=np.array(p["b_rec"], f64))
            else:
                rec = nir.Linear(weight=R.copy())
            nodes[f"{name}.rec"] = rec
            edges += [(f"{name}.lif", f"{name}.rec"), (f"{name}.rec", f"{name}.lif")]
        prev = f"{name}.lif"
    nodes["output"] = nir.Output(output_type={"output": np.array([network.layers[-1].n_out])})
    edges.append((prev, "output"))
    graph = nir.NIRGraph(nodes=nodes, edges=edges,
                         metadata={"source": "lifgrad", "dt": dt})
    if path is not None:
        nir.write(path, graph)
    return graph


def _refuse(name, cfg, allow_nonstrict):
    if cfg.reset == "subtract":
        raise ValueError(f"{name}: reset='subtract' cannot be exported: NIR has no subtractive "
                         f"reset (its neurons jump to v_reset on a spike); use reset='zero'")
    if cfg.reset == "none":
        raise ValueError(f"{name}: reset='none' cannot be exported: every NIR spiking neuron "
                         f"resets to v_reset on a spike")
    if cfg.adaptive:
        raise ValueError(f"{name}: the adaptive threshold cannot be exported: NIR has no "
                         f"neuron with an adaptive threshold")
    if cfg.forward != "hard":
        raise ValueError(f"{name}: forward={cfg.forward!r} cannot be exported: NIR neurons "
                         f"emit binary spikes")
    variants = [f for f, on in (("norm_input=True", cfg.norm_input),
                                 (f"max_spikes={cfg.max_spikes!r}", cfg.multi_spike),
                                 ("decay_input=True", cfg.decay_input),
                                 ("delay_output=True", cfg.delay_output)) if on]
    if variants:
        raise ValueError(f"{name}: {', '.join(variants)} cannot be exported: NIR's LIF, "
                         f"CubaLIF and IF have no such variant (derivations/variants.md)")
    if not cfg.strict and not allow_nonstrict:
        raise ValueError(f"{name}: non-strict firing (u >= theta, strict=False) cannot be "
                         f"exported exactly: NIR fires at v > v_threshold.  Use "
                         f"LIFConfig(strict=True), or pass allow_nonstrict=True to accept "
                         f"different spikes on steps where u == theta exactly")


# ---------------------------------------------------------------------------
# load
# ---------------------------------------------------------------------------

def load(graph_or_path, dt=1e-4, dtype="float64", *, learn=(), surrogate="atan",
         diagonal_recurrence="all"):
    """A lifgrad ``Sequential`` from a NIR graph (or an HDF5 file written by ``nir.write``).

    The graph must be a chain ``Input -> (Affine|Linear -> LIF|CubaLIF|IF
    [<-> Affine|Linear]) * L -> Output``; nested graphs are flattened first
    and a ``Flatten`` of a 1-D input is skipped.  Each neuron node is read
    with NIR's forward-Euler step ``dt`` (N4)-(N7): ``alpha = 1 - dt/tau``, the
    input gain ``c`` folded into W, b and R, ``theta = v_threshold``,
    ``u_reset = v_reset``; every layer is ``LIFConfig(reset='zero',
    strict=True)``.  A recurrent weight becomes an all-to-all ``R``, or a
    one-to-one ``r`` if ``diagonal_recurrence='one'`` and it is diagonal.

    learn:     neuron parameters to train (passed to each ``Dense``; names a
               layer does not use are dropped).
    surrogate: the surrogate of every layer's config.
    """
    nir = _nir()
    dt = _check_dt(dt)
    if diagonal_recurrence not in ("all", "one"):
        raise ValueError(f"diagonal_recurrence: expected 'all' or 'one', got "
                         f"{diagonal_recurrence!r}")
    if isinstance(graph_or_path, (str, os.PathLike)):
        graph = nir.read(graph_or_path)
    elif isinstance(graph_or_path, nir.NIRGraph):
        graph = graph_or_path
    else:
        raise TypeError(f"graph_or_path: expected a nir.NIRGraph or a file path, got "
                        f"{type(graph_or_path).__name__}")
    nodes, edges = _flatten(nir, graph)
    specs, n_in = _walk(nir, nodes, edges)
    learn = (learn,) if isinstance(learn, str) else tuple(learn)
    layers, values = [], []
    for spec in specs:
        layer, vals = _convert(spec, dt, learn, surrogate, diagonal_recurrence)
        layers.append(layer)
        values.append(vals)
    if layers[0].n_in != n_in:
        raise ValueError(f"graph: the Input has {n_in} features but the first weight "
                         f"({specs[0]['affine_name']!r}) expects {layers[0].n_in}")
    net = Sequential(layers, seed=0, dtype=dtype)
    for k, vals in enumerate(values):
        for key, v in vals.items():
            net.params[f"layer{k}.{key}"] = np.asarray(v, net.dtype).reshape(
                net.params[f"layer{k}.{key}"].shape)
    return net


def _flatten(nir, graph, prefix=""):
    """(nodes, edges) with nested NIRGraphs inlined as ``outer.inner`` and their
    inner Input/Output nodes contracted away."""
    nodes, edges = {}, []
    ports = {}                       # subgraph name -> (entry node, exit node)
    for key, node in graph.nodes.items():
        full = f"{prefix}{key}"
        if isinstance(node, nir.NIRGraph):
            sub_nodes, sub_edges = _flatten(nir, node, prefix=f"{full}.")
            ins = [k for k, v in node.nodes.items() if isinstance(v, nir.Input)]
            outs = [k for k, v in node.nodes.items() if isinstance(v, nir.Output)]
            if len(ins) != 1 or len(outs) != 1:
                raise ValueError(f"graph: nested graph {full!r} has {len(ins)} inputs and "
                                 f"{len(outs)} outputs; only one of each is supported")
            ports[full] = (f"{full}.{ins[0]}", f"{full}.{outs[0]}")
            # inner Input/Output become pass-through nodes, contracted below
            for k in (ins[0], outs[0]):
                sub_nodes[f"{full}.{k}"] = _PassThrough()
            nodes.update(sub_nodes)
            edges += sub_edges
        else:
            nodes[full] = node
    for a, b in graph.edges:
        a, b = f"{prefix}{a}", f"{prefix}{b}"
        a = ports[a][1] if a in ports else a
        b = ports[b][0] if b in ports else b
        edges.append((a, b))
    # contract pass-through nodes (inner ports, no-op Flatten)
    for key in [k for k, v in nodes.items() if isinstance(v, _PassThrough) or
                _is_noop_flatten(nir, v)]:
        preds = [a for a, b in edges if b == key]
        succs = [b for a, b in edges if a == key]
        edges = [(a, b) for a, b in edges if key not in (a, b)]
        edges += [(a, b) for a in preds for b in succs]
        del nodes[key]
    for a, b in edges:
        for end in (a, b):
            if end not in nodes:
                raise ValueError(f"graph: edge ({a!r}, {b!r}) names a node {end!r} that does "
                                 f"not exist")
    return nodes, list(dict.fromkeys(edges))


class _PassThrough:
    pass


def _is_noop_flatten(nir, node):
    if not isinstance(node, nir.Flatten):
        return False
    shape = np.asarray(node.input_type.get("input") if node.input_type else None)
    if shape is None or shape.ndim == 0 or shape.size == 0 or shape.dtype == object:
        return False
    # a flatten with at most one axis longer than 1 does not reorder anything
    return int(np.sum(shape > 1)) <= 1


def _tname(node):
    return type(node).__name__


def _walk(nir, nodes, edges):
    """The layers of a chain graph, as dicts of nodes; and the input size."""
    succ = {k: [] for k in nodes}
    pred = {k: [] for k in nodes}
    for a, b in edges:
        succ[a].append(b)
        pred[b].append(a)
    bad = [f"{k!r} ({_tname(v)})" for k, v in nodes.items()
           if not isinstance(v, (nir.Input, nir.Output)) and
           _tname(v) not in _NEURON_TYPES + _WEIGHT_TYPES]
    if bad:
        raise ValueError(f"graph: unsupported node type(s) {', '.join(bad)}; lifgrad.load reads "
                         f"chains of Affine/Linear -> LIF/CubaLIF/IF layers (optionally "
                         f"recurrent) only")
    inputs = [k for k, v in nodes.items() if isinstance(v, nir.Input)]
    outputs = [k for k, v in nodes.items() if isinstance(v, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(f"graph: expected one Input and one Output node, got {inputs} and "
                         f"{outputs}")
    shape = np.asarray(nodes[inputs[0]].input_type["input"]).ravel()
    n_in = int(np.prod(shape)) if shape.size else 1

    def only_succ(k):
        if len(succ[k]) != 1:
            raise ValueError(f"graph: node {k!r} ({_tname(nodes[k])}) has {len(succ[k])} "
                             f"successors {succ[k]}; lifgrad.load reads chains only")
        return succ[k][0]

    specs = []
    cur = only_succ(inputs[0])
    while not isinstance(nodes[cur], nir.Output):
        aff = cur
        if _tname(nodes[aff]) not in _WEIGHT_TYPES:
            raise ValueError(f"graph: expected an Affine or Linear node, got {aff!r} "
                             f"({_tname(nodes[aff])}); a layer is a weight node followed by a "
                             f"neuron node")
        if len(pred[aff]) != 1:
            raise ValueError(f"graph: node {aff!r} has {len(pred[aff])} inputs; chains only")
        cell = only_succ(aff)
        if _tname(nodes[cell]) not in _NEURON_TYPES:
            hint = ""
            if _tname(nodes[cell]) in _WEIGHT_TYPES:
                hint = ("; two weight nodes in a row (a graph whose recurrent weight also "
                        "takes the feedforward input is what snnTorch's import_from_nir "
                        "leaves behind: it rewrites its argument in place, so load a copy)")
            raise ValueError(f"graph: expected a neuron node (LIF, CubaLIF, IF) after "
                             f"{aff!r}, got {cell!r} ({_tname(nodes[cell])}){hint}")
        rec = [s for s in succ[cell] if s in pred[cell]]
        if len(rec) > 1:
            raise ValueError(f"graph: neuron {cell!r} has {len(rec)} recurrent loops; one at most")
        if rec:
            r = rec[0]
            if _tname(nodes[r]) not in _WEIGHT_TYPES or succ[r] != [cell] or pred[r] != [cell]:
                raise ValueError(f"graph: the recurrent loop {cell!r} -> {r!r} -> {cell!r} must "
                                 f"be an Affine/Linear node connected only to {cell!r}")
        others = [p for p in pred[cell] if p not in rec and p != aff]
        if others:
            raise ValueError(f"graph: neuron {cell!r} has extra inputs {others}; chains only")
        fwd = [s for s in succ[cell] if s not in rec]
        if len(fwd) != 1:
            raise ValueError(f"graph: neuron {cell!r} has {len(fwd)} forward successors {fwd}; "
                             f"chains only")
        specs.append({"affine_name": aff, "affine": nodes[aff], "cell_name": cell,
                      "cell": nodes[cell], "rec_name": rec[0] if rec else None,
                      "rec": nodes[rec[0]] if rec else None})
        cur = fwd[0]
        if len(specs) > len(nodes):                                   # pragma: no cover
            raise ValueError("graph: cycle through the feedforward path")
    if not specs:
        raise ValueError("graph: no layer between Input and Output")
    return specs, n_in


def _arr(x):
    """A float64 numpy array from a numpy array, a number or a CPU torch tensor."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _per_neuron(name, field, value, n):
    a = _arr(value)
    if a.size == 1:
        return np.full(n, float(a.ravel()[0]))
    if a.size == n:
        return a.reshape(n).copy()
    raise ValueError(f"{name}: {field} has shape {a.shape}; expected a scalar or {n} values "
                     f"(one per neuron)")


def _decay(name, field, tau, dt):
    if np.any(~np.isfinite(tau)) or np.any(tau <= 0):
        raise ValueError(f"node {name!r}: {field} must be finite and > 0, got {tau}")
    alpha = 1.0 - dt / tau                                                        # (N4)
    if np.any(alpha < 0):
        raise ValueError(
            f"node {name!r}: {field} = {tau.min():.6g} is shorter than the step dt = {dt:.6g}, so "
            f"alpha = 1 - dt/{field} = {alpha.min():.6g} < 0 (the Euler step overshoots).  "
            f"Load with dt <= {tau.min():.6g} if the graph was exported with a smaller step "
            f"(snnTorch and SpikingJelly write dt = 1e-4; Norse's to_nir writes "
            f"tau = dt/tau_mem_inv, see derivations/nir.md)")
    return alpha


def _convert(spec, dt, learn, surrogate, diagonal_recurrence):
    aname, cname = spec["affine_name"], spec["cell_name"]
    aff, cell, rec = spec["affine"], spec["cell"], spec["rec"]
    W = _arr(aff.weight)
    if W.ndim != 2:
        raise ValueError(f"{aname}: weight has shape {W.shape}; expected a 2-D matrix "
                         f"(n_out, n_in)")
    n, n_in = W.shape
    b = _arr(aff.bias).reshape(-1) if _tname(aff) == "Affine" else None
    if b is not None and b.shape != (n,):
        raise ValueError(f"{aname}: bias has shape {b.shape}; expected ({n},)")
    kind = _tname(cell)
    P = lambda field, default=None: _per_neuron(                                # noqa: E731
        cname, field, getattr(cell, field) if getattr(cell, field, None) is not None
        else default, n)
    theta = P("v_threshold")
    u_reset = P("v_reset", 0.0)
    synaptic = kind == "CubaLIF"
    alpha_s = 0.8
    if kind == "LIF":
        tau, r, v_leak = P("tau"), P("r"), P("v_leak", 0.0)
        alpha = _decay(cname, "tau", tau, dt)
        c = r * dt / tau                                                          # (N5)
        b0 = v_leak * dt / tau
    elif kind == "IF":
        r = P("r")
        alpha = np.ones(n)
        c = r * dt                                                                # (N6)
        b0 = np.zeros(n)
    else:                                                                         # CubaLIF
        tau_syn, tau_mem = P("tau_syn"), P("tau_mem")
        r, v_leak, w_in = P("r"), P("v_leak", 0.0), P("w_in", 1.0)
        if np.any(v_leak != 0):
            raise ValueError(f"{cname}: CubaLIF with v_leak != 0 is not supported: the leak "
                             f"acts on the membrane, and lifgrad's synaptic cell has no "
                             f"membrane-side constant input (a bias would pass through the "
                             f"synaptic filter)")
        alpha_s = _decay(cname, "tau_syn", tau_syn, dt)
        alpha = _decay(cname, "tau_mem", tau_mem, dt)
        c = (w_in * dt / tau_syn) * (r * dt / tau_mem)                            # (N7)
        b0 = np.zeros(n)
    has_bias = b is not None or bool(np.any(b0 != 0))
    vals = {"W": c[:, None] * W}
    if has_bias:
        vals["b"] = c * (b if b is not None else 0.0) + b0
    recurrent, rec_bias = None, False
    if rec is not None:
        R = _arr(rec.weight)
        if R.shape != (n, n):
            raise ValueError(f"{spec['rec_name']}: recurrent weight has shape {R.shape}; "
                             f"expected ({n}, {n})")
        diagonal = not np.any(R - np.diag(np.diag(R)))
        if diagonal_recurrence == "one" and diagonal:
            recurrent, vals["R"] = "one", c * np.diag(R)
        else:
            recurrent, vals["R"] = "all", c[:, None] * R
        if _tname(rec) == "Affine":
            rb = _arr(rec.bias).reshape(-1)
            if rb.shape != (n,):
                raise ValueError(f"{spec['rec_name']}: bias has shape {rb.shape}; expected "
                                 f"({n},)")
            rec_bias = True
            vals["b_rec"] = c * rb
    cfg = LIFConfig(reset="zero", strict=True, synaptic=synaptic, recurrent=recurrent,
                    surrogate=surrogate)
    used = set(learn) - ({"rho", "beta_a"} | (set() if synaptic else {"alpha_s"}))
    layer = Dense(n_in, n, cfg, alpha=alpha, theta=theta, u_reset=u_reset, alpha_s=alpha_s,
                  bias=has_bias, rec_bias=rec_bias, learn=tuple(k for k in learn if k in used))
    return layer, vals
