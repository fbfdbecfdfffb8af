"""Model-level check: a user's own snnTorch / SpikingJelly / Norse network.

:func:`compare` takes the model as the user wrote it -- an ``nn.Sequential``
of ``Linear`` layers and neurons (``Flatten``, ``Dropout``, ``Identity`` in
between), or an ``nn.Module`` with its own loop over time -- and works on a
float64 CPU copy (:func:`lifgrad.verify.chain.working_copy`; the model itself
is never changed).  Before anything runs, every neuron is mapped onto
lifgrad's cell through its framework's adapter (``layer_map``), so an
unsupported neuron or surrogate is refused with the reason.  The copy then
runs once on the input while hooks record each Linear's and neuron's inputs
and outputs (:func:`lifgrad.verify.chain.run`); the chain they form is
checked (each layer reads what the previous one gave) and rebuilt in
lifgrad.  The same loss, ``sum(A * spk) + sum(Bm * mem)`` on the last layer
(random float32-exact weights), is backpropagated through both, and the
output spikes and the gradient of every parameter and of the input are
compared (:class:`~lifgrad.verify.common.CaseReport`, with the firing rate of
every layer).

A framework that is not on torch (Spyx, on JAX) runs its own models: its
adapter's ``model_chain`` gives the chain (NumPy weights, each neuron's
``LayerMap``) and ``model_gradients`` the framework's autograd; lifgrad's
side (:func:`_lifgrad_chain`) is the same for both.
"""
from __future__ import annotations

import numpy as np

from ..functional import lif_backward, lif_forward
from . import chain as _chain
from .common import (abs_floor, compare as _compare, coverage, error_over_time, input_grad,
                     mapped_input, membrane_param_terms, problem, quiet_framework,
                     reported_membrane, require_torch)
from .protocol import REGISTRY, ChainLink, adapter_of
from .torchpeer import to_numpy as values

LAYOUTS = ("TBN", "BTN")


def _input(x, layout, sequential):
    """The input as a float64 array, ``(T, B, ...)`` for a Sequential."""
    if hasattr(x, "detach"):                       # a torch tensor
        x = x.detach().cpu().numpy()
    try:
        x = np.asarray(x, np.float64)
    except (TypeError, ValueError) as e:
        raise TypeError(f"x: expected an array or tensor of numbers, got {type(x).__name__}") from e
    if not np.all(np.isfinite(x)):
        raise ValueError("x: contains NaN or Inf")
    if layout not in LAYOUTS:
        raise ValueError(f"layout: expected one of {', '.join(LAYOUTS)}, got {layout!r}")
    if sequential:
        if x.ndim < 3:
            raise ValueError(f"x: a Sequential is stepped through time by lifgrad and needs "
                             f"(T, B, n_in) (layout='TBN') or (B, T, n_in) (layout='BTN'), got "
                             f"shape {x.shape}")
        if layout == "BTN":
            x = np.swapaxes(x, 0, 1)
    return np.ascontiguousarray(x)


def _pre_scan(work):
    """Map every neuron before anything runs: {path: (adapter, LayerMap)}."""
    maps = {}
    for path, m in _chain.neurons_and_linears(work):
        if _chain.is_neuron(m):
            ad = _chain.adapter_of(m)
            try:
                maps[path] = (ad, ad.layer_map(m))
            except (ValueError, TypeError) as e:
                raise ValueError(f"model.{path}: {e}") from e
    if not maps:
        raise ValueError(f"model: no neuron of a supported framework ({', '.join(REGISTRY)}) "
                         f"found")
    return maps


def _pairs(chain, maps):
    """The chain as [(linear Layer or None, neuron Layer, adapter, LayerMap)], checked:
    Linear, neuron, Linear, neuron, ... (a neuron with its own input weights,
    ``LayerMap.input_weights``, e.g. a Norse recurrent cell, stands for both)."""
    pairs, i = [], 0
    while i < len(chain):
        lay = chain[i]
        if lay.kind == "neuron" and maps[lay.path][1].input_weights is not None:
            pairs.append((None, lay) + maps[lay.path])
            i += 1
            continue
        if lay.kind != "linear":
            raise ValueError(f"model: {lay.path or 'the neuron'} is not preceded by a Linear "
                             f"layer; lifgrad maps chains Linear -> neuron -> Linear -> ...")
        if i + 1 >= len(chain) or chain[i + 1].kind != "neuron" or \
                maps[chain[i + 1].path][1].input_weights is not None:
            raise ValueError(f"model: the Linear layer {lay.path} is not followed by a neuron; "
                             f"lifgrad maps chains Linear -> neuron -> Linear -> ... ending in "
                             f"a neuron layer")
        pairs.append((lay, chain[i + 1]) + maps[chain[i + 1].path])
        i += 2
    return pairs


def _same(a, b):
    """Equal up to the rounding of a product made in other pieces (a Linear
    called per step and again on the stacked steps)."""
    if a.shape != b.shape:
        return False
    scale = max(float(np.max(np.abs(a))) if a.size else 0.0, 1e-300)
    return bool(np.all(np.abs(a - b) <= 1e-12 * scale))


def _check_flow(pairs):
    """Each layer must read exactly what the one before it gave."""
    prev = None
    for lin, neu, ad, m in pairs:
        if lin is not None:
            I = values(lin.module(lin.inputs.detach()))
            if not _same(I, values(neu.inputs)):
                raise ValueError(
                    f"model: the input of {neu.path} is not the output of {lin.path} (an "
                    f"operation between them: scaling, a sum, a skip connection?); lifgrad maps "
                    f"a plain chain Linear -> neuron -> Linear -> ...")
        first = lin if lin is not None else neu
        if prev is not None:
            x_in = values(first.inputs)
            s = values(prev.spikes)
            if x_in.shape[:2] == s.shape[:2]:
                x_in = x_in.reshape(x_in.shape[0], x_in.shape[1], -1)
            if not _same(x_in, s):
                raise ValueError(
                    f"model: the input of {first.path} is not the spikes of {prev.path} (another "
                    f"operation between them?); lifgrad maps a plain chain of layers")
        prev = neu
    T = {p[1].spikes.shape[0] for p in pairs}
    if len(T) != 1:
        raise ValueError(f"model: its layers ran for different numbers of steps {sorted(T)}")


def _lifgrad_chain(links, h, A, Bm, peer):
    """lifgrad's side of a model, by the adjoint, layer by layer (A20): the
    chain ``links`` (:class:`~lifgrad.verify.protocol.ChainLink`, NumPy) run
    on ``h`` ``(T, B, n_in)``, the loss ``sum A spk + sum Bm mem`` on the last
    layer.  Returns ``(ours, dL/dh, coverage, out-of-domain, limits, notes)``;
    ``ours`` holds the spikes, the membrane and the gradients named as in
    ``peer`` (``grad:input`` is the caller's)."""
    saved, cov, ood = [], [], []
    for link in links:
        m, W = link.map, np.asarray(link.W, np.float64)
        I = h @ W.T + link.b
        cfg = m.config.replace(dtype="float64", backend="cpu")
        v, tr = lif_forward(mapped_input(m, I), m.params, cfg, u0=m.u0, s0=m.s0)
        saved.append((link, m, cfg, h, I, W, tr))
        cov.append(coverage(link.label, cfg, m.params, tr, m.spike_scale != 0))
        if m.domain is not None:
            why = m.domain(tr, tr.v)
            if why:
                ood.append(f"{link.neuron}: {why}")
        h = v * m.spike_scale
    ours = {"spikes": h}
    dv = du = dX = None
    limits, notes = [], []
    for k, (link, m, cfg, hin, I, W, tr) in enumerate(reversed(saved)):
        if k == 0:
            mem_lg, du, dv = reported_membrane(m, cfg, tr.u, tr.v, A, Bm)
            ours["mem"] = mem_lg
        g = lif_backward(tr, m.params, cfg, dv=dv, du=du)
        if k == 0:
            g = membrane_param_terms(m, cfg, g, tr.v, Bm, tr.u)
        dI = input_grad(m, g.I)
        d2 = dI.reshape(-1, dI.shape[-1])
        gW = d2.T @ hin.reshape(-1, hin.shape[-1])
        ours[f"grad:{link.weight}"] = gW.T if link.transposed else gW
        if link.bias is not None:
            ours[f"grad:{link.bias}"] = d2.sum(axis=0)
        if m.param_grads is not None:
            for name, val in m.param_grads(g, I, tr).items():
                for key in (f"grad:{link.neuron}.{name}", f"grad:{link.neuron}.p.{name}"):
                    if key in peer:
                        ours[key] = np.asarray(val, np.float64)
                        break
        dh = dI @ W
        # dL/d(the neuron's input) as the framework sees it, for the report's
        # error over time per layer (not a compared row)
        own = m.input_weights is not None and link.weight == f"{link.neuron}.{m.input_weights[0]}"
        ours[f"layer:{link.label}"] = dh if own else dI
        if k == len(saved) - 1:
            dX = dh
        else:
            prev = saved[len(saved) - 2 - k][1]
            dv, du = dh * prev.spike_scale, None
            limits.extend(prev.hidden_limits)
        limits.extend(m.limits)
        notes.extend(m.notes)
    return ours, dX, cov, ood, limits, notes


def _layer_input_grads(torch, L, pairs):
    """``{"layer:<label>": dL/d(the neuron's input) (T, B, n)}`` from the
    framework's autograd, for every neuron whose recorded input is part of
    the graph (a layer whose input the adapter had to copy is left out)."""
    out = {}
    for _, neu, _, _ in pairs:
        raw = [r for r in neu.inputs_raw if getattr(r, "requires_grad", False)]
        if not raw or len(raw) != len(neu.inputs_raw):
            continue
        grads = torch.autograd.grad(L, raw, retain_graph=True, allow_unused=True)
        if any(g is None for g in grads):
            continue
        g = [values(x) for x in grads]
        arr = g[0] if len(g) == 1 else np.stack(g)
        if arr.ndim == 3:
            out[f"layer:{neu.path or type(neu.module).__name__}"] = arr
    return out


def _report(fw, links, peer, ours, notes, limits, A, Bm, cov, ood):
    """The :class:`~lifgrad.verify.common.CaseReport` of a model; its
    profiles give, for every layer whose ``dL/d(input)`` the framework
    exposed (``peer["layer:<label>"]``), the error over time."""
    profiles = []
    for key in [k for k in peer if k.startswith("layer:")]:
        val = peer.pop(key)
        if key in ours and np.shape(ours[key]) == np.shape(val):
            profiles.append((f"{key[6:]}: dL/d(input)", error_over_time(ours[key], val)))
    for key in list(ours):
        if key in peer and np.shape(ours[key]) != np.shape(peer[key]) and \
                np.size(ours[key]) == np.size(peer[key]):
            ours[key] = np.reshape(ours[key], np.shape(peer[key]))
    surr = ", ".join(dict.fromkeys(lk.map.config.surrogate.name for lk in links))
    n = len(links)
    return _compare(fw, "model", f"{n} layer{'s' if n > 1 else ''}", surr,
                    peer, ours, tuple(dict.fromkeys(notes)), tuple(dict.fromkeys(limits)),
                    abs_floor(A, Bm), cov, "; ".join(ood), profiles)


def _compare_own(ad, links, model, x, seed, framework_name, layout):
    """compare() for a model its adapter runs itself (``model_chain``, a JAX
    framework's Sequential): the same lifgrad side, the framework's
    gradients from ``ad.model_gradients``."""
    x = _input(x, layout, True)
    n_in = links[0].W.shape[1]
    T, B = x.shape[:2]
    h = x.reshape(T, B, -1)
    if h.shape[-1] != n_in:
        raise ValueError(f"x: {h.shape[-1]} input features per step, the first Linear "
                         f"({links[0].weight}) takes {n_in}")
    # the last neuron's count: its Linear's outputs, input_sum of them per neuron
    _, _, A, Bm = problem(seed, T, B, links[-1].W.shape[0] // links[-1].map.input_sum)
    with quiet_framework():
        peer = ad.model_gradients(model, x, A, Bm)
    ours, dX, cov, ood, limits, notes = _lifgrad_chain(links, h, A, Bm, peer)
    ours["grad:input"] = dX.reshape(x.shape)
    notes = ["the check runs on a float64 copy of the model's parameters (the model is not "
             "changed)"] + notes
    return _report(framework_name or ad.name, links, peer, ours, notes, limits, A, Bm, cov,
                   ood)


def compare(model, x, seed=0, framework_name=None, layout="TBN"):
    """Compare every gradient of ``model`` with lifgrad's, on input ``x``.

    ``model``: an ``nn.Sequential`` of Linear layers each followed by a
    supported neuron (``Flatten``, ``Dropout``, ``Identity`` may sit between
    them), or any ``nn.Module`` whose forward runs such a chain (its own loop
    over time, as in the snnTorch tutorials, or SpikingJelly multi-step
    modules).  ``x``: a NumPy array or tensor (any dtype or device; a tensor
    with ``requires_grad`` is fine).  A Sequential is stepped through time by
    lifgrad and reads ``x`` as ``(T, B, ...)`` (``layout='TBN'``) or ``(B, T,
    ...)`` (``layout='BTN'``); any other module gets ``x`` as it is, in its own
    forward.

    Returns a :class:`~lifgrad.verify.common.CaseReport` whose rows are named
    like the model's parameters (``grad:fc1.weight``, ``grad:lif1.beta``, Norse
    parameter-tuple values as ``grad:lif1.p.v_th``) plus ``grad:input`` and
    ``mem``; its ``coverage`` gives every layer's firing rate.  The model is
    not changed (the check runs on a float64 CPU copy in eval mode).

    A framework whose adapter runs its models itself (``model_chain``: Spyx's
    ``spyx.nn.Sequential`` of ``flax.nnx.Linear`` layers and neurons, on JAX)
    is stepped by that framework, its gradients from its own autograd
    (``model_gradients``), ``x`` read as for a Sequential; torch is not
    needed."""
    own = adapter_of(model)
    links = own.model_chain(model) if own is not None else None
    if links is not None:
        return _compare_own(own, links, model, x, seed, framework_name, layout)
    torch = require_torch()
    sequential = isinstance(model, torch.nn.Sequential)
    if sequential:
        _chain.check_sequential(model)
    x = _input(x, layout, sequential)
    cp = _chain.working_copy(model)
    work = cp.model
    maps = _pre_scan(work)
    xt = torch.tensor(x, requires_grad=True)
    driver = _chain.sequential_driver(work) if sequential else work
    with quiet_framework():
        ch = _chain.run(work, driver, xt)
        if not ch:
            raise ValueError("model: ran without calling any Linear layer or supported neuron")
        pairs = _pairs(ch, maps)
        _check_flow(pairs)
        last = pairs[-1][1]
        spk, mem = last.spikes, last.mem
        T, B, N = spk.shape
        _, _, A, Bm = problem(seed, T, B, N)
        L = (torch.as_tensor(A) * spk).sum() + (torch.as_tensor(Bm) * mem).sum()
        L.backward(retain_graph=True)
    peer = {"spikes": values(spk), "mem": values(mem),
            "grad:input": xt.grad.numpy() if xt.grad is not None else np.zeros(x.shape)}
    for name, p in work.named_parameters():
        peer[f"grad:{name}"] = p.grad.numpy() if p.grad is not None else np.zeros(tuple(p.shape))
    for name, leaf in cp.extra_leaves.items():
        peer[f"grad:{name}"] = (leaf.grad.numpy() if leaf.grad is not None
                                else np.zeros(tuple(leaf.shape)))
    peer.update(_layer_input_grads(torch, L, pairs))

    # --- lifgrad, by the adjoint, layer by layer (A20)
    first = pairs[0][0] if pairs[0][0] is not None else pairs[0][1]
    h = values(first.inputs)
    T_, B_ = h.shape[:2]
    h = h.reshape(T_, B_, -1)
    links = []
    for lin, neu, ad, m in pairs:
        if lin is not None:
            bias = lin.module.bias
            links.append(ChainLink(f"{lin.path}.weight", values(lin.module.weight),
                                   f"{lin.path}.bias" if bias is not None else None,
                                   values(bias) if bias is not None else 0.0, neu.path, m,
                                   label=neu.path or type(neu.module).__name__))
        else:                                   # a neuron with its own input weights
            links.append(ChainLink(f"{neu.path}.{m.input_weights[0]}", m.input_weights[1], None,
                                   0.0, neu.path, m,
                                   label=neu.path or type(neu.module).__name__))
    ours, dX, cov, ood, limits, notes = _lifgrad_chain(links, h, A, Bm, peer)
    notes = list(cp.notes) + notes
    # dL/dx through whatever the model did to x before its first layer (a
    # Flatten, a repeat of a static input over the steps): autograd carries
    # lifgrad's dL/d(first layer's input) back to x
    raw = first.inputs_raw
    if len(raw) == 1:
        gouts = [torch.as_tensor(dX.reshape(tuple(raw[0].shape)))]
    else:
        gouts = [torch.as_tensor(dX[t].reshape(tuple(raw[t].shape))) for t in range(len(raw))]
    gx = torch.autograd.grad(list(raw), xt, grad_outputs=gouts, allow_unused=True)[0]
    ours["grad:input"] = gx.numpy() if gx is not None else np.zeros(x.shape)
    fw = framework_name or ", ".join(dict.fromkeys(p[2].name for p in pairs))
    return _report(fw, links, peer, ours, notes, limits, A, Bm, cov, ood)
