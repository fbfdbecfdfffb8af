"""The adapter protocol for frameworks whose neurons are ``torch.nn.Module`` s.

:class:`TorchAdapter` implements the protocol's NumPy boundary
(:meth:`~lifgrad.verify.protocol.Adapter.peer_forward`,
:meth:`~lifgrad.verify.protocol.Adapter.peer_gradients`) with torch autograd
on top of one method, :meth:`TorchAdapter.forward`, and declares what
:mod:`lifgrad.verify.chain` needs to record a user's torch model::

    A.forward(module, x)           one neuron over time, tensors in and out, differentiable
    A.call_outputs(module, output) (spikes, membrane) of one call of the module
    A.call_input(module, args)     the input of that call as (T, B, n) or (B, n)
    A.prepare(module)              make it record its membrane and start at rest
    A.extra_leaves(module)         learnable tensors held outside named_parameters()
    A.case_outputs(built, x)       (spikes, membrane the loss reads) of a built case;
                                   forward(built.module, x) unless the case says otherwise

Torch is imported when these run, not when this module is imported.
"""
from __future__ import annotations

import abc

import numpy as np

from .common import quiet_framework, require_torch
from .protocol import Adapter, Built


def to_numpy(x):
    """A tensor (any dtype or device) or array-like as a float64 NumPy array."""
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy().astype(np.float64)      # a copy
    return np.asarray(x, np.float64)


def value(t):
    """A parameter or tensor as a float64 NumPy scalar or array (a 0-dim one as a float)."""
    a = to_numpy(t)
    return float(a) if a.ndim == 0 else a


def cast_to_weight(mod, args):
    """Forward pre-hook of a Linear: cast its floating input to the weight's
    dtype (snnTorch's spikes are float32 even in a float64 model)."""
    torch = require_torch()
    return tuple(a.to(mod.weight.dtype) if torch.is_tensor(a) and a.is_floating_point() else a
                 for a in args)


def peer_values(run, I, A, Bm):
    """The framework's side of a check by torch autograd: ``run(x)`` on a
    float64 leaf ``x`` holding ``I`` returns ``(spikes, membrane, leaves)``
    (``(T, B, N)`` tensors and ``{name: leaf tensor}``); the loss
    ``sum A spk + sum Bm mem`` is backpropagated here.  NumPy
    ``{"spikes", "mem", "grad:input", "grad:<name>"...}``."""
    torch = require_torch()
    x = torch.tensor(I, dtype=torch.float64, requires_grad=True)
    with quiet_framework():
        spk, mem, leaves = run(x)
        L = (torch.as_tensor(A) * spk).sum() + (torch.as_tensor(Bm) * mem).sum()
        L.backward()
    peer = {"spikes": to_numpy(spk), "mem": to_numpy(mem), "grad:input": x.grad.numpy()}
    for name, p in leaves.items():
        peer[f"grad:{name}"] = p.grad.numpy() if p.grad is not None else np.zeros(tuple(p.shape))
    return peer


class TorchAdapter(Adapter):
    """An :class:`~lifgrad.verify.protocol.Adapter` of a torch framework."""

    @abc.abstractmethod
    def forward(self, module, x):
        """Run ``module`` from its rest state over the T steps of ``x`` (a
        float64 ``(T, B, n)`` tensor, maybe in an autograd graph): ``(spikes,
        membrane)`` ``(T, B, N)`` tensors, differentiable, the membrane as the
        framework reports it.  The one driver of the module: the cases, the
        NumPy :meth:`peer_forward` and a Sequential in ``compare`` use it."""

    @abc.abstractmethod
    def call_outputs(self, module, output):
        """``(spikes, membrane)`` of one call of ``module`` that returned
        ``output`` (read by a forward hook while a user's model runs)."""

    def call_input(self, module, args):
        """The input of one call of ``module`` (its positional ``args``) as the
        chain holds it: ``(T, B, n)`` for a whole sequence, ``(B, n)`` for a
        step.  The first argument, unless the framework's layers take another
        layout (sinabs: ``(B, T, ...)``)."""
        return args[0]

    def prepare(self, module):
        """Before a user's model is recorded (on its float64 copy): make the
        neuron ``module`` keep its membrane where :meth:`call_outputs` reads
        it and start from its rest state."""

    def extra_leaves(self, module) -> dict:
        """Learnable tensors ``module`` holds outside ``named_parameters()``
        (Norse's parameter tuples), replaced on the float64 copy by float64
        leaves and returned by their name below the module (``"p.v_th"``)."""
        return {}

    def case_outputs(self, built: Built, x):
        """``(spikes, membrane the loss reads)`` of a built case on ``x``."""
        return self.forward(built.module, x)

    def peer_forward(self, module, I):
        torch = require_torch()
        with quiet_framework():
            spk, mem = self.forward(module, torch.tensor(np.asarray(I, np.float64)))
        return to_numpy(spk), to_numpy(mem)

    def peer_gradients(self, built: Built) -> dict:
        leaves = dict(built.module.named_parameters()) if built.leaves is None else built.leaves

        def run(x):
            for t in leaves.values():
                t.grad = None
            spk, mem = self.case_outputs(built, x)
            return spk, mem, leaves
        return peer_values(run, built.I, built.A, built.Bm)


def cuda_backend_unavailable(backend, package):
    """Why a framework's CUDA-only ``backend`` (importable as ``package``)
    cannot be compared here: no CUDA device, the package missing, or, on a
    machine that has both, that its runner is not written (no GPU was lent to
    develop and test it against)."""
    import importlib.util
    torch = require_torch()
    why = []
    if not torch.cuda.is_available():
        why.append("no CUDA device here (torch.cuda.is_available() is False)")
    if importlib.util.find_spec(package) is None:
        why.append(f"{package} is not installed")
    base = f"{backend} runs only on an NVIDIA GPU"
    if why:
        return f"{base}: {'; '.join(why)}"
    return f"{base}: its runner is not written yet (no GPU was available to develop and test it)"
