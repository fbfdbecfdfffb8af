"""Benchmark workloads and one training step of each implementation.

A *step* is: forward over T steps + loss + backward + optimiser update (Adam,
lr 5e-4), float32.  The loss is the cross-entropy of the output layer's
membrane at every step, summed over steps (snnTorch tutorial 5).  Inputs are
made with NumPy (the same generator for every implementation; torch gets a
zero-copy ``torch.from_numpy`` view) and regenerated *outside* the timed
region, in place, so the input buffer does not count as memory growth.

Builders return ``step(x, y) -> float`` (the loss) and, where cheap,
``rates(x, y) -> [float]`` (hidden-layer firing rates, for the report).

Implementations
---------------
lifgrad       ``lifgrad.network.Sequential`` of ``Dense`` LIF layers,
              ``ce_membrane`` on the top layer's membrane ``u``, ``net.backward``,
              ``lifgrad.optim.Adam``.
snntorch      the tutorial step loop: ``nn.Linear`` + ``snn.Leaky`` with an
              explicit ``mem`` (``init_leaky``), loop over T, the static input
              goes through ``fc1`` at every step (as in the tutorial), loss
              summed over steps; W4 uses ``snn.RLeaky(all_to_all=True)``.
spikingjelly  multi-step mode: ``layer.Linear`` / ``neuron.LIFNode`` with
              ``step_mode='m'``, ``functional.reset_net`` before each step;
              ``LIFNode(tau=20, decay_input=False, v_reset=None,
              surrogate_function=ATan())`` so that ``1 - 1/tau = 0.95`` and the
              reset subtracts the threshold.  The static input is repeated
              over T (tutorial).  W4 wraps a single-step LIFNode in
              ``layer.LinearRecurrentContainer`` (its recurrent product is
              ``Linear(256 + 256 -> 256)``, i.e. ``[x_t, y_{t-1}]``, one
              extra 256x256 block per step compared with the others).
torch         a plain PyTorch step loop with a hand-written LIF step and an
              ATan surrogate ``autograd.Function`` (same dynamics as lifgrad:
              ``u_t = 0.95 u_{t-1} + I_t - v_{t-1}``, ``v_t = H(u_t - 1)``,
              gradient through the reset); the input's product is made for
              all steps at once, outside the loop (one GEMM).
norse         ``nn.Linear`` on the whole sequence + ``norse.torch.LIF``
              (``LIFRecurrent`` for W4), see :func:`build_norse`.

Dynamics mapping (only speed is measured, so the small differences are noted,
not removed): lifgrad, snnTorch (``reset_delay=True``) and torch use the
*delayed* subtractive reset on the pre-reset membrane, ``u_t = b u_{t-1} + I_t
- theta v_{t-1}``.  SpikingJelly resets *immediately*, ``H_t = b V_{t-1} + X_t,
V_t = H_t - theta S_t``, i.e. ``H_t = b H_{t-1} + X_t - b theta S_{t-1}``: the
reset is scaled by beta (0.95) and its loss reads the post-reset ``v_seq``.
snnTorch fires at ``u > theta``, lifgrad/torch/SpikingJelly at ``u >= theta``.
snnTorch detaches nothing here; snnTorch's RLeaky recurrent Linear has a bias.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ALPHA = 0.95          # membrane decay (beta in snnTorch)
THETA = 1.0
LR = 5e-4


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    sizes: tuple          # (n_in, hidden..., n_out)
    T: int
    B: int
    input: str            # 'static', 'poisson' or 'uniform' (dense U(0, 1) every step)
    p: float = 0.0        # Poisson rate per step
    recurrent: bool = False   # first layer all-to-all recurrent
    max_repeats: int | None = None   # cap on timed steps (long workloads)
    warmup: int = 2
    loss: str = "ce"      # 'ce': membrane cross-entropy summed over steps; 'spikes':
                          # the sum of the output spikes (the Open Neuromorphic benchmark)

    def describe(self):
        net = "-".join(map(str, self.sizes))
        inp = {"static": "static image", "uniform": "dense uniform input"}.get(
            self.input, f"Poisson p={self.p}")
        rec = ", layer 1 recurrent (all-to-all)" if self.recurrent else ""
        loss = ", loss = sum of output spikes" if self.loss == "spikes" else ""
        return f"{net}{rec}, T={self.T}, B={self.B}, {inp}{loss}"


WORKLOADS = {
    "W1": Workload("W1", "tutorial", (784, 1000, 10), 25, 128, "static"),
    "W2": Workload("W2", "poisson", (784, 1000, 10), 25, 128, "poisson", 0.2),
    "W3": Workload("W3", "deep", (784, 512, 512, 512, 512, 512, 10), 50, 64, "poisson", 0.2),
    "W4": Workload("W4", "recurrent", (700, 256, 20), 100, 32, "poisson", 0.05, recurrent=True),
    "W5": Workload("W5", "long", (784, 1000, 10), 2000, 16, "poisson", 0.2,
                   max_repeats=3, warmup=1),
}
# The Open Neuromorphic library benchmark's shape (open-neuromorphic.github.io,
# "SNN library benchmarks"): one Linear(n, n) + LIF layer, B = 16, T = 500,
# loss = sum of the output spikes; published on GPUs only (anchors.md).
for _n in (512, 1024, 2048, 4096):
    WORKLOADS[f"ON{_n}"] = Workload(f"ON{_n}", "Open Neuromorphic", (_n, _n), 500, 16, "uniform",
                                    max_repeats=6, warmup=1, loss="spikes")

IMPLS = ("lifgrad", "snntorch", "spikingjelly", "norse", "torch")
IMPL_MODULES = {"lifgrad": "lifgrad", "snntorch": "snntorch", "spikingjelly": "spikingjelly",
                "norse": "norse", "torch": "torch"}


# -- data -------------------------------------------------------------------

class Data:
    """Input buffer and labels of a workload; ``refresh()`` draws a fresh
    Poisson input in place (a no-op for the static input)."""

    def __init__(self, wl: Workload, seed=0):
        self.wl = wl
        self.rng = np.random.default_rng(seed)
        n_in, C = wl.sizes[0], wl.sizes[-1]
        self.y = self.rng.integers(0, C, wl.B).astype(np.int64)
        if wl.input == "static":
            self.x = self.rng.random((wl.B, n_in), dtype=np.float32)   # one "image"
        else:
            self.x = np.empty((wl.T, wl.B, n_in), np.float32)
            self.refresh()

    def refresh(self):
        if self.wl.input == "static":
            return
        for t in range(self.wl.T):          # per step: no (T, B, n) float64 temporary
            if self.wl.input == "uniform":
                self.rng.random(self.x.shape[1:], dtype=np.float32, out=self.x[t])
            else:
                self.x[t] = self.rng.random(self.x.shape[1:], dtype=np.float32) < self.wl.p


# -- lifgrad ------------------------------------------------------------------

def build_lifgrad(wl: Workload, backend="cpu"):
    from lifgrad import LIFConfig
    from lifgrad.losses import ce_membrane
    from lifgrad.network import Dense, Sequential
    from lifgrad.optim import Adam

    layers = []
    for i, (a, b) in enumerate(zip(wl.sizes[:-1], wl.sizes[1:])):
        cfg = LIFConfig(reset="subtract", surrogate="atan",
                        recurrent="all" if (wl.recurrent and i == 0) else None)
        layers.append(Dense(a, b, cfg, alpha=ALPHA, theta=THETA))
    net = Sequential(layers, dtype="float32")
    opt = Adam(lr=LR)
    T = wl.T if wl.input == "static" else None
    if backend == "cuda":
        return _lifgrad_cuda_step(net, opt, T, ce_membrane)

    if wl.loss == "spikes":
        def step(x, y):                        # L = sum of the output spikes: dL/dv = 1
            out, tr = net.forward(x, T=T)
            opt.step(net.params, net.backward(tr, dv=1.0))
            return float(out.sum(dtype=np.float64))
    else:
        def step(x, y):
            out, tr = net.forward(x, T=T)
            lo = ce_membrane(None, tr.layers[-1].trace.u, y)
            g = net.backward(tr, du=lo.du)
            opt.step(net.params, g)
            return lo.L

    def rates(x, y):
        out, tr = net.forward(x, T=T)
        return [float(lt.trace.v.mean()) for lt in tr.layers]

    return step, rates


def _lifgrad_cuda_step(net, opt, T, ce_membrane):
    """The lifgrad step on the GPU (lifgrad.device): parameters, Adam state and
    traces on the device, the input sent once per step, the (T, B, 10) output
    membrane read back for the loss."""
    from numba import cuda

    from lifgrad.device import DeviceNetwork, DeviceOptimizer
    from lifgrad.kernels import cuda_ops

    dev, dopt = DeviceNetwork(net), DeviceOptimizer(opt)

    def step(x, y):
        tr = dev.forward(x, T=T)
        _, u = dev.output(tr)
        lo = ce_membrane(None, u, y)
        dopt.step(dev.params, dev.backward(tr, du=lo.du))
        cuda.synchronize()
        return lo.L

    def rates(x, y):
        tr = dev.forward(x, T=T)
        return [cuda_ops.total(lt.v) / lt.v.size for lt in tr.layers]

    return step, rates


# -- shared torch pieces ------------------------------------------------------

def _torch_xy(x, y):
    import torch
    return torch.from_numpy(x), torch.from_numpy(y)


def _membrane_ce_step(forward, opt, wl):
    """(step, rates) of a torch loop whose ``forward(x)`` returns (membranes
    (T, B, C), per-layer lists of spikes): membrane cross-entropy summed over
    steps (or, for ``wl.loss == 'spikes'``, the sum of the top layer's
    spikes), Adam."""
    import torch
    import torch.nn.functional as F

    def step(x, y):
        xt, yt = _torch_xy(x, y)
        mem, spk = forward(xt)
        if wl.loss == "spikes":
            loss = torch.stack(spk[-1]).sum() if isinstance(spk[-1], list) else spk[-1].sum()
        else:
            loss = torch.zeros((), dtype=torch.float32)
            for t in range(wl.T):
                loss = loss + F.cross_entropy(mem[t], yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss.detach())

    def rates(x, y):
        with torch.no_grad():
            _, spk_rec = forward(_torch_xy(x, y)[0])
        return [float((torch.stack(s) if isinstance(s, list) else s).mean()) for s in spk_rec]

    return step, rates


def _atan_spike():
    import math

    import torch

    class ATanSpike(torch.autograd.Function):
        """H(x) forward, ATan surrogate (alpha=2) backward: (a/2) / (1 + (pi/2 a x)^2)."""

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return (x >= 0).to(x.dtype)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            a = 2.0
            return g * ((a / 2) / (1 + (math.pi / 2 * a * x).square()))

    return ATanSpike.apply


# -- snnTorch -------------------------------------------------------------------

def build_snntorch(wl: Workload):
    import snntorch as snn
    import torch
    import torch.nn as nn
    from snntorch import surrogate

    torch.manual_seed(0)
    static = wl.input == "static"
    sizes = wl.sizes

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fcs = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
            lifs = []
            for i, n in enumerate(sizes[1:]):
                if wl.recurrent and i == 0:
                    lifs.append(snn.RLeaky(beta=ALPHA, threshold=THETA, linear_features=n,
                                           all_to_all=True, spike_grad=surrogate.atan(),
                                           reset_mechanism="subtract"))
                else:
                    lifs.append(snn.Leaky(beta=ALPHA, threshold=THETA,
                                          spike_grad=surrogate.atan(),
                                          reset_mechanism="subtract"))
            self.lifs = nn.ModuleList(lifs)

        def forward(self, x):
            state = []
            for lif in self.lifs:
                if isinstance(lif, snn.RLeaky):
                    state.append(lif.init_rleaky())          # (spk, mem)
                else:
                    state.append(lif.init_leaky())           # mem
            mem_rec, spk_rec = [], [[] for _ in self.lifs]
            for t in range(wl.T):
                h = x if static else x[t]
                for i, (fc, lif) in enumerate(zip(self.fcs, self.lifs)):
                    cur = fc(h)
                    if isinstance(lif, snn.RLeaky):
                        spk, mem = lif(cur, *state[i])
                        state[i] = (spk, mem)
                    else:
                        spk, mem = lif(cur, state[i])
                        state[i] = mem
                    h = spk
                    spk_rec[i].append(spk)
                mem_rec.append(mem)
            return torch.stack(mem_rec), spk_rec

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=LR)

    return _membrane_ce_step(net, opt, wl)


# -- SpikingJelly -----------------------------------------------------------------

def build_spikingjelly(wl: Workload, backend="cpu"):
    """SpikingJelly's multi-step LIF; ``backend='cuda'`` puts the model and the
    data on the GPU, where SpikingJelly 2.0's ``lif_multi_step`` picks its own
    fused CUDA kernels (native or Triton, ``spikingjelly/_ops/lif``)."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from spikingjelly.activation_based import functional, layer, neuron, surrogate

    torch.manual_seed(0)
    gpu = backend == "cuda"
    tau = 1.0 / (1.0 - ALPHA)          # 1 - 1/tau = 0.95  ->  tau = 20
    sizes = wl.sizes
    mods = []
    n_layers = len(sizes) - 1
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == n_layers - 1
        mods.append(layer.Linear(a, b, step_mode="m"))
        if wl.recurrent and i == 0:
            node = neuron.LIFNode(tau=tau, decay_input=False, v_threshold=THETA, v_reset=None,
                                  surrogate_function=surrogate.ATan(), step_mode="s")
            mods.append(layer.LinearRecurrentContainer(node, b, b, bias=False, step_mode="m"))
        else:
            mods.append(neuron.LIFNode(tau=tau, decay_input=False, v_threshold=THETA,
                                       v_reset=None, surrogate_function=surrogate.ATan(),
                                       step_mode="m", store_v_seq=last))
    net = nn.Sequential(*mods)
    if gpu:
        net = net.cuda()
    functional.set_step_mode(net, "m")
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    out_node = mods[-1]

    def prep(x):
        xt = torch.from_numpy(x)
        if gpu:
            xt = xt.cuda()
        if wl.input == "static":
            xt = xt.unsqueeze(0).repeat(wl.T, 1, 1)      # tutorial: repeat the image over T
        return xt

    def step(x, y):
        yt = torch.from_numpy(y)
        if gpu:
            yt = yt.cuda()
        functional.reset_net(net)
        spikes = net(prep(x))
        if wl.loss == "spikes":
            loss = spikes.sum()
        else:
            v_seq = out_node.v_seq                        # (T, B, C), post-reset membrane
            loss = F.cross_entropy(v_seq.flatten(0, 1), yt.repeat(wl.T)) * wl.T   # = sum_t CE_t
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss.detach())                       # (synchronises the GPU)

    def rates(x, y):
        out = []
        hooks = [m.register_forward_hook(lambda m, i, o: out.append(float(o.mean())))
                 for m in mods[1::2]]
        functional.reset_net(net)
        with torch.no_grad():
            net(prep(x))
        for h in hooks:
            h.remove()
        functional.reset_net(net)
        return out

    return step, rates


# -- plain PyTorch ------------------------------------------------------------------

def build_torch(wl: Workload):
    import torch
    import torch.nn as nn

    torch.manual_seed(0)
    spike = _atan_spike()
    static = wl.input == "static"
    fcs = nn.ModuleList(nn.Linear(a, b) for a, b in zip(wl.sizes[:-1], wl.sizes[1:]))
    rec = nn.Linear(wl.sizes[1], wl.sizes[1], bias=False) if wl.recurrent else None
    params = list(fcs.parameters()) + (list(rec.parameters()) if rec is not None else [])
    opt = torch.optim.Adam(params, lr=LR)
    n = wl.sizes[1:]

    def forward(xt):
        B = xt.shape[-2]
        u = [xt.new_zeros(B, k) for k in n]
        v = [xt.new_zeros(B, k) for k in n]
        I0 = fcs[0](xt)        # hoisted: the input's product for all steps at once
        mem_rec, spk_rec = [], [[] for _ in n]
        for t in range(wl.T):
            for i, fc in enumerate(fcs):
                if i == 0:
                    cur = I0 if static else I0[t]
                    if rec is not None:
                        cur = cur + rec(v[0])
                else:
                    cur = fc(v[i - 1])
                u[i] = ALPHA * u[i] + cur - THETA * v[i]     # delayed subtractive reset
                v[i] = spike(u[i] - THETA)
                spk_rec[i].append(v[i])
            mem_rec.append(u[-1])
        return torch.stack(mem_rec), spk_rec

    return _membrane_ce_step(forward, opt, wl)


# -- Norse ---------------------------------------------------------------------------

def build_norse(wl: Workload):
    """Norse 1.1: ``nn.Linear`` over the whole sequence, then ``norse.torch.LIF``
    (its sequence module; current-based: a synaptic current decays by
    1 - dt tau_syn_inv = 0.8 and the membrane by 1 - dt tau_mem_inv = 0.95),
    superspike surrogate (alpha 100), reset to zero, not detached; W4's first
    layer is ``LIFRecurrent`` (its own input and recurrent weights, no bias).
    Only speed is measured: the dynamics differ from the others (synaptic
    current, reset to zero, input scaled by dt tau_mem_inv)."""
    import norse.torch as norse
    import torch
    import torch.nn as nn

    torch.manual_seed(0)
    # Norse's membrane sees the synaptic current times dt tau_mem_inv: at a
    # constant input x the current settles at 5 x and the membrane at 5 x,
    # where lifgrad's settles at 20 x; the threshold is scaled by 5/20 so
    # that the layers fire at comparable rates
    p = norse.LIFParameters(tau_mem_inv=torch.as_tensor((1 - ALPHA) / 1e-3),
                            v_th=torch.as_tensor(THETA * 0.25))
    static = wl.input == "static"
    sizes = wl.sizes
    fcs, lifs = nn.ModuleList(), nn.ModuleList()
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        if wl.recurrent and i == 0:
            fcs.append(nn.Identity())
            lifs.append(norse.LIFRecurrent(a, b, p=p))
        else:
            fcs.append(nn.Linear(a, b))
            lifs.append(norse.LIF(p=p, record_states=(i == len(sizes) - 2)))
    params = list(fcs.parameters()) + list(lifs.parameters())
    opt = torch.optim.Adam(params, lr=LR)

    def forward(xt):
        h = xt.unsqueeze(0).expand(wl.T, *xt.shape) if static else xt
        spk_rec, mem = [], None
        for i, (fc, lif) in enumerate(zip(fcs, lifs)):
            out, state = lif(fc(h))
            if i == len(lifs) - 1:
                mem = state.v                            # (T, B, C) recorded membranes
            spk_rec.append(out)
            h = out
        return mem, spk_rec

    return _membrane_ce_step(forward, opt, wl)


BUILDERS = {"lifgrad": build_lifgrad, "snntorch": build_snntorch,
            "spikingjelly": build_spikingjelly, "norse": build_norse, "torch": build_torch}


# -- the GEMM floor ---------------------------------------------------------------------

def floor_products(wl: Workload, seed=0):
    """The matrix products one step needs, as NumPy float32 closures.

    Per layer (rows M = T*B; M = B for W1's static first layer, done once):
    forward ``X (M, n_in) @ W^T``; backward ``dW = U^T X`` and, for layers
    above the first (no input gradient is needed), ``dX = U @ W``.  An
    all-to-all recurrent layer adds T per-step products ``v_{t-1} R^T`` forward,
    T per-step ``ubar_{t+1} R`` backward (they are sequential), and
    ``dR = U^T V`` over all rows.  Returns a list of (label, fn)."""
    rng = np.random.default_rng(seed)
    f32 = np.float32
    out = []
    for i, (a, b) in enumerate(zip(wl.sizes[:-1], wl.sizes[1:])):
        M = wl.B if (i == 0 and wl.input == "static") else wl.T * wl.B
        X = (rng.random((M, a), dtype=f32) < 0.2).astype(f32)
        W = rng.standard_normal((b, a), dtype=f32)
        U = rng.standard_normal((M, b), dtype=f32)
        out.append((f"L{i} fwd ({M}x{a})@({a}x{b})", lambda X=X, W=W: X @ W.T))
        out.append((f"L{i} dW ({b}x{M})@({M}x{a})", lambda X=X, U=U: U.T @ X))
        if i > 0:
            out.append((f"L{i} dX ({M}x{b})@({b}x{a})", lambda U=U, W=W: U @ W))
        if wl.recurrent and i == 0:
            R = rng.standard_normal((b, b), dtype=f32)
            V = (rng.random((wl.T, wl.B, b), dtype=f32) < 0.1).astype(f32)
            U3 = U.reshape(wl.T, wl.B, b)

            def rec_fwd(V=V, R=R):
                for t in range(V.shape[0]):
                    V[t] @ R.T

            def rec_bwd(U3=U3, R=R):
                for t in range(U3.shape[0]):
                    U3[t] @ R

            out.append((f"L{i} R fwd {wl.T}x({wl.B}x{b})@({b}x{b})", rec_fwd))
            out.append((f"L{i} R bwd {wl.T}x({wl.B}x{b})@({b}x{b})", rec_bwd))
            out.append((f"L{i} dR ({b}x{M})@({M}x{b})",
                        lambda U=U, V=V: U.T @ V.reshape(-1, V.shape[-1])))
    return out
