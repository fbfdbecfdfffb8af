"""Find the chain of layers a user's model runs, and run it once on a copy.

A model, as users write them, is either an ``nn.Sequential`` (``Linear``,
neuron, ``Linear``, neuron, ..., with ``Flatten``, ``Dropout`` or
``Identity`` in between) or an ``nn.Module`` with its own loop over time (the
snnTorch tutorials' ``for step in range(num_steps): cur1 = self.fc1(x) ...``),
or a SpikingJelly multi-step model that takes the whole ``(T, B, n)`` at
once.  :func:`run` records, with forward hooks, every call of a ``Linear``
and of a supported neuron while the model runs once, and returns each
layer's inputs and outputs stacked over time: the chain lifgrad then maps
layer by layer (:mod:`lifgrad.verify.model`).  What a framework's neuron
needs (recognising it, reading its outputs, preparing it, its parameter
tuples) comes from its adapter (:class:`lifgrad.verify.torchpeer.TorchAdapter`):
nothing here knows a framework by name.

Everything here happens on :func:`working_copy`, a float64 CPU copy in eval
mode: the user's model is never touched.
"""
from __future__ import annotations

import copy
from typing import NamedTuple

from .common import require_torch
from .protocol import REGISTRY
from .protocol import adapter_of as _adapter_of
from .torchpeer import cast_to_weight


def is_neuron(module):
    """A neuron module of a supported framework (not one of their Linear
    wrappers, containers, encoders)."""
    torch = require_torch()
    if isinstance(module, (torch.nn.Linear, torch.nn.Sequential, torch.nn.Flatten,
                           torch.nn.Dropout, torch.nn.Identity)):
        return False
    ad = _adapter_of(module)
    return ad is not None and ad.is_neuron(module)


class Copy(NamedTuple):
    model: object          # the float64 CPU copy in eval mode
    notes: tuple           # what was changed on the copy, for the report
    extra_leaves: dict     # "path.name" -> float64 leaf held outside named_parameters()


def working_copy(model):
    """A deep copy of ``model`` in float64 on the CPU, in eval mode, with no
    gradients and fresh neuron state; learnable tensors a module holds
    outside its parameters (Norse's parameter tuples, the adapter's
    ``extra_leaves``) become float64 leaves of the copy.  ``model`` is left
    exactly as it was."""
    torch = require_torch()
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    notes = []
    # modules whose own deep copy is broken are copied by their adapter
    # (copy_module), and Python's deepcopy takes those copies from its memo
    memo = {}
    for path, m0 in model.named_modules():
        ad = _adapter_of(m0)
        made = ad.copy_module(m0) if ad is not None and hasattr(ad, "copy_module") else None
        if made is not None:
            memo[id(m0)] = made
            notes.append(f"{path or type(m0).__name__}: copied by lifgrad.verify.{ad.name} "
                         f"(the framework's own deep copy of it fails)")
    try:
        work = copy.deepcopy(model, memo)
    except Exception as e:          # a module that cannot be copied (open handles, ...)
        raise TypeError(f"model: cannot be copied for the check ({type(e).__name__}: {e}); "
                        f"lifgrad works on a copy so that your model stays as it is") from e
    # a framework's own deep copy may lose a setting (sinabs' ALIF drops
    # norm_input): the adapter's repair_copy(original, copy) puts it back
    for (path, m0), (_, m1) in zip(model.named_modules(), work.named_modules()):
        ad = _adapter_of(m0)
        if ad is not None and type(m0) is type(m1) and hasattr(ad, "repair_copy"):
            note = ad.repair_copy(m0, m1)
            if note:
                notes.append(f"{path or type(m0).__name__}: {note}")
    # a deep copy drops the hooks registered on parameter tensors (Norse's
    # recurrent cells zero the autapses' gradient with one); give them back
    for (_, p0), (_, p1) in zip(model.named_parameters(), work.named_parameters()):
        for hook in (getattr(p0, "_backward_hooks", None) or {}).values():
            p1.register_hook(hook)
    dev = {p.device.type for p in model.parameters()} | {b.device.type for b in model.buffers()}
    if dev - {"cpu"}:
        notes.append(f"the model is on {', '.join(sorted(dev - {'cpu'}))}: the check runs on a "
                     f"float64 CPU copy (your model is not moved)")
    dropout = [n for n, m in model.named_modules()
               if isinstance(m, torch.nn.modules.dropout._DropoutNd) and m.training and m.p > 0]
    if dropout:
        notes.append(f"Dropout ({', '.join(dropout)}) is checked in eval mode (the identity): "
                     f"a random mask cannot be reproduced")
    work = work.cpu().double().eval()
    for p in work.parameters():
        p.grad = None
    leaves = {}
    for path, m in work.named_modules():
        ad = _adapter_of(m)
        if ad is not None:
            for name, leaf in ad.extra_leaves(m).items():
                leaves[f"{path}.{name}" if path else name] = leaf
    return Copy(work, tuple(notes), leaves)


class Layer(NamedTuple):
    """One element of the chain: ``kind`` 'linear' or 'neuron', the module,
    its path in the model, and its inputs / outputs stacked over time ``(T,
    B, n)`` (tensors in the copy's autograd graph; ``inputs_raw`` the
    recorded input tensors as the module received them)."""

    kind: str
    module: object
    path: str
    inputs: object
    spikes: object = None
    mem: object = None
    inputs_raw: tuple = ()


def _prepare(work):
    """Hooks and settings on the copy: Linear inputs cast to float64 (snnTorch's
    spikes are float32; a float64 Linear would refuse them); every neuron keeps
    its membrane where its adapter reads it and starts from its rest state
    (the adapter's ``prepare``)."""
    torch = require_torch()
    for m in work.modules():
        if isinstance(m, torch.nn.Linear):
            m.register_forward_pre_hook(cast_to_weight)
        if is_neuron(m):
            _adapter_of(m).prepare(m)


def neurons_and_linears(work):
    """``[(path, module)]`` of the supported neurons and the Linear layers
    outside them, in registration order."""
    torch = require_torch()
    out, inside = [], set()
    for path, m in work.named_modules():
        if any(path.startswith(p + ".") for p in inside):
            continue
        if is_neuron(m):
            out.append((path, m))
            inside.add(path)
        elif isinstance(m, torch.nn.Linear):
            out.append((path, m))
    return out


def _stack(torch, tensors, what):
    if len(tensors) == 1:
        t = tensors[0]
        if t.ndim == 3:
            return t
        raise ValueError(f"{what}: called once with a {tuple(t.shape)} tensor; expected "
                         f"(T, B, n) for a model that takes the whole sequence, or one call "
                         f"per time step")
    if any(t.ndim != 2 for t in tensors):
        raise ValueError(f"{what}: called {len(tensors)} times with tensors of shapes "
                         f"{sorted({tuple(t.shape) for t in tensors})}; expected (B, n) per "
                         f"time step")
    return torch.stack(tensors)


def run(work, driver, x_leaf):
    """Run ``driver(x_leaf)`` (the model's forward on the copy) once, recording
    the calls of every Linear and supported neuron outside a neuron.  Returns
    the chain as a list of :class:`Layer` in the order of first call."""
    torch = require_torch()
    _prepare(work)
    calls = {}
    order = []
    handles = []
    for path, m in neurons_and_linears(work):
        def hook(mod, args, output, path=path):
            if path not in calls:
                calls[path] = []
                order.append((path, mod))
            if is_neuron(mod):
                ad = _adapter_of(mod)
                spk, mem = ad.call_outputs(mod, output)
                calls[path].append((ad.call_input(mod, args), spk, mem))
            else:
                calls[path].append((args[0], None, None))
        handles.append(m.register_forward_hook(hook))
    try:
        driver(x_leaf)
    finally:
        for h in handles:
            h.remove()
    chain = []
    for path, mod in order:
        rec = calls[path]
        name = path or type(mod).__name__
        kind = "neuron" if is_neuron(mod) else "linear"
        inputs = _stack(torch, [r[0] for r in rec], name)
        spk = mem = None
        if kind != "linear":
            spk = _stack(torch, [r[1] for r in rec], name)
            mem = _stack(torch, [r[2] for r in rec], name)
        chain.append(Layer(kind, mod, path, inputs, spk, mem, tuple(r[0] for r in rec)))
    return chain


def adapter_of(module):
    """The adapter (:class:`lifgrad.verify.torchpeer.TorchAdapter`) of a peer neuron."""
    ad = _adapter_of(module)
    if ad is None:
        raise TypeError(f"model: {type(module).__name__} (from "
                        f"{type(module).__module__.split('.')[0]!r}) is not a neuron of a "
                        f"supported framework ({', '.join(REGISTRY)})")
    return ad


def sequential_driver(work):
    """The driver of an ``nn.Sequential``: lifgrad steps time itself, layer by
    layer: a Linear (or Dropout, Identity) takes the whole ``(T, B, ...)``, a
    Flatten each step, a neuron the whole sequence through its adapter's
    ``forward`` (the same driver the curated cases use)."""
    torch = require_torch()

    def driver(x):
        h = x
        for m in flat_children(work):
            if is_neuron(m):
                h, _ = adapter_of(m).forward(m, h)
            elif isinstance(m, torch.nn.Flatten):
                T, B = h.shape[:2]
                h = m(h.reshape(T * B, *h.shape[2:])).reshape(T, B, -1)
            else:
                h = m(h)
        return h
    return driver


def flat_children(model):
    torch = require_torch()
    out = []
    for m in model.children():
        if isinstance(m, torch.nn.Sequential):
            out.extend(flat_children(m))
        else:
            out.append(m)
    return out


def check_sequential(model):
    """Refuse, before anything runs, a Sequential with a module the chain cannot
    hold (anything but Linear, Flatten, Dropout, Identity and supported neurons)."""
    torch = require_torch()
    ok = (torch.nn.Linear, torch.nn.Flatten, torch.nn.modules.dropout._DropoutNd,
          torch.nn.Identity)
    for i, m in enumerate(flat_children(model)):
        if isinstance(m, ok) or is_neuron(m):
            continue
        ad = _adapter_of(m)
        fw = ad.name if ad is not None else None
        raise ValueError(
            f"model[{i}]: {type(m).__name__}"
            f"{' (from ' + fw + ')' if fw else ''} is not a layer lifgrad maps: a chain holds "
            f"torch.nn.Linear, supported neurons of {' / '.join(REGISTRY)}, and "
            f"Flatten, Dropout, Identity between them")

