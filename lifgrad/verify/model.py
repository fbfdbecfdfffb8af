"""Model-level check: a user's own snnTorch / SpikingJelly / Norse network.

:func:`compare` takes a ``torch.nn.Sequential`` of ``Linear`` layers each
followed by a supported neuron module, extracts the weights, builds the
lifgrad twin layer by layer (each neuron through its framework adapter's
``layer_map``), runs the same input through both in float64, backpropagates
the same loss (``sum(A * spk) + sum(Bm * mem)`` on the last layer, random
float32-exact weights), and compares the output spikes and the gradient of
every parameter and of the input.
"""
from __future__ import annotations

import importlib

import numpy as np

from ..functional import lif_backward, lif_forward
from .common import (compare as _compare, membrane_param_terms, problem,
                     reported_membrane, require_torch)

_ADAPTERS = {"snntorch": "lifgrad.verify.snntorch", "spikingjelly": "lifgrad.verify.spikingjelly",
             "norse": "lifgrad.verify.norse"}


def adapter_for(module):
    """The adapter module for a peer neuron module (by the package it comes from)."""
    root = type(module).__module__.split(".")[0]
    if root not in _ADAPTERS:
        raise TypeError(f"model: {type(module).__name__} (from {root!r}) is not a neuron of a "
                        f"supported framework ({', '.join(_ADAPTERS)})")
    return importlib.import_module(_ADAPTERS[root])


def _pairs(model):
    torch = require_torch()
    mods = list(model)
    if not mods or len(mods) % 2:
        raise ValueError("model: expected an nn.Sequential of (Linear, neuron) pairs, got "
                         f"{len(mods)} modules")
    pairs = []
    for i in range(0, len(mods), 2):
        lin, neu = mods[i], mods[i + 1]
        if not isinstance(lin, torch.nn.Linear):
            raise ValueError(f"model[{i}]: expected torch.nn.Linear, got {type(lin).__name__}")
        if hasattr(neu, "input_weights"):
            raise ValueError(f"model[{i + 1}]: {type(neu).__name__} carries its own input weights; "
                             f"compare() supports Linear + feed-forward neuron pairs (check "
                             f"recurrent cells with lifgrad.verify.norse.run_case)")
        pairs.append((i, lin, neu, adapter_for(neu)))
    return pairs


def compare(model, x, seed=0, framework_name=None):
    """Compare every gradient of ``model`` (``nn.Sequential`` of Linear + neuron
    pairs, any of the supported frameworks) with lifgrad's, on input ``x``
    ``(T, B, n_in)``.  Returns a :class:`CaseReport` whose rows are named like
    the model's parameters (``0.weight``, ``1.beta``, ...) plus ``input``."""
    torch = require_torch()
    pairs = _pairs(model)
    model = model.double()
    x = np.asarray(x, np.float64)
    if x.ndim != 3:
        raise ValueError(f"x: expected shape (T, B, n_in), got {x.shape}")
    # --- the framework, by autograd
    xt = torch.tensor(x, requires_grad=True)
    h = xt
    for i, lin, neu, ad in pairs:
        spk, mem = ad.peer_forward(neu, lin(h))
        h = spk
    T, B, N = spk.shape
    _, _, A, Bm = problem(seed, T, B, N)
    L = (torch.as_tensor(A) * spk).sum() + (torch.as_tensor(Bm) * mem).sum()
    L.backward()
    peer = {"spikes": spk.detach().numpy().astype(np.float64), "mem": mem.detach().numpy(),
            "grad:input": xt.grad.numpy()}
    for name, p in model.named_parameters():
        peer[f"grad:{name}"] = p.grad.numpy() if p.grad is not None else np.zeros(tuple(p.shape))
    # --- lifgrad, by the adjoint, layer by layer (A20)
    h = x
    saved = []
    for i, lin, neu, ad in pairs:
        W = lin.weight.detach().numpy()
        b = lin.bias.detach().numpy() if lin.bias is not None else 0.0
        I = h @ W.T + b
        m = ad.layer_map(neu)
        cfg = m.config.replace(dtype="float64", backend="cpu")
        v, tr = lif_forward(m.gain * I + m.bias, m.params, cfg, u0=m.u0, s0=m.s0)
        saved.append((i, lin, m, cfg, h, I, tr))
        h = v * m.spike_scale
    ours = {"spikes": h}
    dv = du = None
    notes = []
    for k, (i, lin, m, cfg, hin, I, tr) in enumerate(reversed(saved)):
        if k == 0:
            mem, du, dv = reported_membrane(m, cfg, tr.u, tr.v, A, Bm)
            ours["mem"] = mem
        g = lif_backward(tr, m.params, cfg, dv=dv, du=du)
        if k == 0:
            g = membrane_param_terms(m, cfg, g, tr.v, Bm)
        dI = m.gain * g.I
        d2 = dI.reshape(-1, dI.shape[-1])
        ours[f"grad:{i}.weight"] = d2.T @ hin.reshape(-1, hin.shape[-1])
        if lin.bias is not None:
            ours[f"grad:{i}.bias"] = d2.sum(axis=0)
        if m.param_grads is not None:
            for name, val in m.param_grads(g, I, tr).items():
                ours[f"grad:{i + 1}.{name}"] = np.asarray(val, np.float64)
        dh = dI @ lin.weight.detach().numpy()
        if i == 0:
            ours["grad:input"] = dh
        else:
            prev = saved[[s[0] for s in saved].index(i) - 1][2]
            dv, du = dh * prev.spike_scale, None
        notes.extend(m.notes)
    for key in list(ours):
        if key in peer and np.shape(ours[key]) != np.shape(peer[key]):
            ours[key] = np.reshape(ours[key], np.shape(peer[key]))
    fw = framework_name or type(pairs[0][2]).__module__.split(".")[0]
    return _compare(fw, "model", f"{len(pairs)} layers", "-", peer, ours,
                    tuple(dict.fromkeys(notes)))
