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
              gradient through the reset); the static input's first product
              is hoisted out of the loop.

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
    input: str            # 'static' or 'poisson'
    p: float = 0.0        # Poisson rate per step
    recurrent: bool = False   # first layer all-to-all recurrent
    max_repeats: int | None = None   # cap on timed steps (long workloads)
    warmup: int = 2

    def describe(self):
        net = "-".join(map(str, self.sizes))
        inp = "static image" if self.input == "static" else f"Poisson p={self.p}"
        rec = ", layer 1 recurrent (all-to-all)" if self.recurrent else ""
        return f"{net}{rec}, T={self.T}, B={self.B}, {inp}"


WORKLOADS = {
    "W1": Workload("W1", "tutorial", (784, 1000, 10), 25, 128, "static"),
    "W2": Workload("W2", "poisson", (784, 1000, 10), 25, 128, "poisson", 0.2),
    "W3": Workload("W3", "deep", (784, 512, 512, 512, 512, 512, 10), 50, 64, "poisson", 0.2),
    "W4": Workload("W4", "recurrent", (700, 256, 20), 100, 32, "poisson", 0.05, recurrent=True),
    "W5": Workload("W5", "long", (784, 1000, 10), 2000, 16, "poisson", 0.2,
                   max_repeats=3, warmup=1),
}

IMPLS = ("lifgrad", "snntorch", "spikingjelly", "torch")
IMPL_MODULES = {"lifgrad": "lifgrad", "snntorch": "snntorch", "spikingjelly": "spikingjelly",
                "torch": "torch"}


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
    steps, Adam."""
    import torch
    import torch.nn.functional as F

    def step(x, y):
        xt, yt = _torch_xy(x, y)
        mem, _ = forward(xt)
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
        return [float(torch.stack(s).mean()) for s in spk_rec]

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
        net(prep(x))
        v_seq = out_node.v_seq                            # (T, B, C), post-reset membrane
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
        I0 = fcs[0](xt) if static else None                # hoisted: same input every step
        mem_rec, spk_rec = [], [[] for _ in n]
        for t in range(wl.T):
            for i, fc in enumerate(fcs):
                if i == 0:
                    cur = I0 if static else fc(xt[t])
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


BUILDERS = {"lifgrad": build_lifgrad, "snntorch": build_snntorch,
            "spikingjelly": build_spikingjelly, "torch": build_torch}


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
