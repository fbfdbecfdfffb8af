"""lifgrad.verify.compare on models written the way the frameworks' tutorials
write them: snnTorch, SpikingJelly and Norse; Sequentials, modules with their
own loop over time, multi-step modules, Flatten and Dropout, learnable
neuron parameters, models lifgrad must refuse or call out of its domain.

    python examples/verify_user_models.py [--markdown]

Prints one row per model: its verdict (agrees; agrees* = within a documented
precision limit; n/a = outside the domain lifgrad's cell expresses; cannot
run = refused before anything ran, with the reason), the worst relative
difference, the firing rate of every layer, and the wall time.  Every model
has an expected verdict (``EXPECTED``); ``tests/test_verify_user_models.py``
checks them, so a change that turns one of them into a false alarm fails.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

T, B = 20, 4


def _x(n, scale=1.0, seed=0, shape=None):
    rng = np.random.default_rng(seed)
    return scale * rng.uniform(0, 1, shape or (T, B, n))


def _drive(net, lo=0.0, hi=0.6):
    """Linear weights with a positive mean, so that every layer fires (with
    PyTorch's default initialisation and a sparse first layer, the second
    layer of a small model often never fires, and its check tests little)."""
    for m in net.modules():
        if isinstance(m, torch.nn.Linear):
            torch.nn.init.uniform_(m.weight, lo, hi)
    return net


# ---------------------------------------------------------------------------
# snnTorch
# ---------------------------------------------------------------------------

def snn_sequential():
    import snntorch as snn
    return torch.nn.Sequential(torch.nn.Linear(12, 10), snn.Leaky(beta=0.9),
                               torch.nn.Linear(10, 4), snn.Leaky(beta=0.8)), _x(12, 2)


class SnnTutorial(torch.nn.Module):
    """snnTorch tutorial 5: Net with fc1/lif1/fc2/lif2 and a loop over num_steps."""

    def __init__(self, static=False, reset="subtract", spike_grad=None):
        import snntorch as snn
        super().__init__()
        kw = dict(reset_mechanism=reset)
        if spike_grad is not None:
            kw["spike_grad"] = spike_grad
        self.static = static
        self.fc1, self.lif1 = torch.nn.Linear(12, 10), snn.Leaky(beta=0.95, **kw)
        self.fc2, self.lif2 = torch.nn.Linear(10, 4), snn.Leaky(beta=0.95, **kw)

    def forward(self, x):
        mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
        spk2_rec, mem2_rec = [], []
        for step in range(T):
            cur1 = self.fc1(x if self.static else x[step])
            spk1, mem1 = self.lif1(cur1, mem1)
            cur2 = self.fc2(spk1)
            spk2, mem2 = self.lif2(cur2, mem2)
            spk2_rec.append(spk2)
            mem2_rec.append(mem2)
        return torch.stack(spk2_rec, dim=0), torch.stack(mem2_rec, dim=0)


def snn_tutorial():
    return SnnTutorial(), _x(12, 2)


def snn_tutorial_static():
    return SnnTutorial(static=True), _x(12, 2)[0]


def snn_tutorial_zero_reset():
    return SnnTutorial(reset="zero"), _x(12, 2)


def snn_tutorial_fast_sigmoid():
    from snntorch import surrogate
    return SnnTutorial(spike_grad=surrogate.fast_sigmoid(slope=25)), _x(12, 2)


def snn_init_hidden_flatten():
    import snntorch as snn
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 10),
                              snn.Leaky(beta=0.9, init_hidden=True), torch.nn.Dropout(0.2),
                              torch.nn.Linear(10, 4), snn.Leaky(beta=0.9, init_hidden=True,
                                                                output=True))
    return net, _x(12, 2, shape=(T, B, 1, 3, 4))


def snn_learnable():
    import snntorch as snn
    return torch.nn.Sequential(
        torch.nn.Linear(12, 10),
        snn.Leaky(beta=torch.full((10,), 0.9), learn_beta=True,
                  threshold=torch.full((10,), 1.0), learn_threshold=True)), _x(12, 2)


def snn_scalar_learn_threshold():
    import snntorch as snn
    return torch.nn.Sequential(torch.nn.Linear(12, 10),
                               snn.Leaky(beta=0.9, threshold=0.9, learn_threshold=True)), _x(12, 2)


def snn_sigmoid_default_slope():
    import snntorch as snn
    from snntorch import surrogate
    return torch.nn.Sequential(torch.nn.Linear(12, 10),
                               snn.Leaky(beta=0.9, spike_grad=surrogate.sigmoid())), _x(12, 2)


def snn_synaptic():
    import snntorch as snn
    return torch.nn.Sequential(torch.nn.Linear(12, 10), snn.Synaptic(alpha=0.8, beta=0.9),
                               torch.nn.Linear(10, 4), snn.Synaptic(alpha=0.8, beta=0.9)), \
        _x(12, 2)


def snn_rleaky():
    import snntorch as snn
    return torch.nn.Sequential(torch.nn.Linear(12, 10),
                               snn.RLeaky(beta=0.9, linear_features=10)), _x(12, 2)


def snn_immediate_reset_strong_input():
    import snntorch as snn
    return torch.nn.Sequential(torch.nn.Linear(12, 10),
                               snn.Leaky(beta=0.9, reset_delay=False)), _x(12, 12)


def snn_alpha():
    import snntorch as snn
    return torch.nn.Sequential(torch.nn.Linear(12, 10), snn.Alpha(alpha=0.9, beta=0.8)), _x(12)


# ---------------------------------------------------------------------------
# SpikingJelly
# ---------------------------------------------------------------------------

def sj_readme():
    from spikingjelly.activation_based import neuron, surrogate
    return _drive(torch.nn.Sequential(
        torch.nn.Linear(12, 10),
        neuron.LIFNode(tau=2.0, surrogate_function=surrogate.ATan(), step_mode="m"),
        torch.nn.Linear(10, 4), neuron.LIFNode(tau=2.0, detach_reset=True, step_mode="m"))), \
        _x(12, 1)


def sj_if_soft():
    from spikingjelly.activation_based import neuron
    return torch.nn.Sequential(torch.nn.Linear(12, 10), neuron.IFNode(v_reset=None, step_mode="m")), \
        _x(12, 2)


def sj_plif():
    from spikingjelly.activation_based import neuron
    return _drive(torch.nn.Sequential(
        torch.nn.Linear(12, 10), neuron.ParametricLIFNode(step_mode="m"),
        torch.nn.Linear(10, 4), neuron.ParametricLIFNode(step_mode="m"))), _x(12, 1)


def sj_single_step():
    from spikingjelly.activation_based import neuron
    return _drive(torch.nn.Sequential(torch.nn.Linear(12, 10), neuron.LIFNode(tau=2.0),
                                      torch.nn.Linear(10, 4), neuron.LIFNode(tau=2.0))), _x(12, 1)


class SjMultiStep(torch.nn.Module):
    """SpikingJelly's multi-step style: each layer takes the whole (T, B, n)."""

    def __init__(self):
        from spikingjelly.activation_based import layer, neuron, surrogate
        super().__init__()
        self.fc1 = layer.Linear(12, 10, step_mode="m")
        self.sn1 = neuron.LIFNode(tau=2.0, surrogate_function=surrogate.Sigmoid(), step_mode="m")
        self.fc2 = layer.Linear(10, 4, step_mode="m")
        self.sn2 = neuron.LIFNode(tau=2.0, step_mode="m")

    def forward(self, x):
        return self.sn2(self.fc2(self.sn1(self.fc1(x))))


def sj_multistep_module():
    return _drive(SjMultiStep()), _x(12, 1)


class SjLoop(torch.nn.Module):
    """A single-step SpikingJelly model with its own loop and reset_net."""

    def __init__(self):
        from spikingjelly.activation_based import neuron
        super().__init__()
        self.fc1, self.sn1 = torch.nn.Linear(12, 10), neuron.IFNode()
        self.fc2, self.sn2 = torch.nn.Linear(10, 4), neuron.IFNode()

    def forward(self, x):
        from spikingjelly.activation_based import functional
        functional.reset_net(self)
        out = [self.sn2(self.fc2(self.sn1(self.fc1(x[t])))) for t in range(x.shape[0])]
        return torch.stack(out).mean(0)


def sj_loop_module():
    return SjLoop(), _x(12, 2)


def sj_saturated_sigmoid():
    """Every neuron far above threshold: SpikingJelly's (1 - s) s a loses every
    digit of the ~1e-14 gradients, which the absolute floor calls rounding."""
    from spikingjelly.activation_based import neuron
    net = torch.nn.Sequential(torch.nn.Linear(12, 10), neuron.LIFNode(tau=2.0, step_mode="m"))
    with torch.no_grad():
        net[0].weight.mul_(40.0)
        net[0].bias.fill_(40.0)
    return net, _x(12)


def sj_no_decay_input_soft():
    from spikingjelly.activation_based import neuron
    return torch.nn.Sequential(
        torch.nn.Linear(12, 10),
        neuron.LIFNode(tau=3.0, decay_input=False, v_reset=None, step_mode="m")), _x(12, 2)


def sj_flatten():
    from spikingjelly.activation_based import neuron
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 10),
                               neuron.LIFNode(tau=2.0, step_mode="s")), \
        _x(12, 4, shape=(T, B, 3, 4))


def sj_poisson_pass():
    from spikingjelly.activation_based import neuron, surrogate
    return torch.nn.Sequential(torch.nn.Linear(12, 10),
                               neuron.LIFNode(surrogate_function=surrogate.PoissonPass(),
                                              step_mode="m")), _x(12, 4)


# ---------------------------------------------------------------------------
# Norse
# ---------------------------------------------------------------------------

def nr_lifcell():
    from norse.torch import LIFCell, LIFParameters
    p = LIFParameters(v_th=torch.nn.Parameter(torch.tensor(0.3)))
    return torch.nn.Sequential(torch.nn.Linear(12, 10), LIFCell(p), torch.nn.Linear(10, 4),
                               LIFCell()), _x(12, 30)


def nr_lifbox():
    from norse.torch import LIFBoxCell, LIFBoxParameters
    p = LIFBoxParameters(tau_mem_inv=torch.tensor(100.0))
    return _drive(torch.nn.Sequential(torch.nn.Linear(12, 10), LIFBoxCell(p),
                                      torch.nn.Linear(10, 4), LIFBoxCell(p))), _x(12, 4)


def nr_lif_multistep():
    from norse.torch import LIF
    return torch.nn.Sequential(torch.nn.Linear(12, 10), LIF()), _x(12, 30)


class NorseLoop(torch.nn.Module):
    """Norse's tutorial style: cells stepped by hand, states carried."""

    def __init__(self):
        from norse.torch import LIFCell, LIFParameters
        super().__init__()
        self.fc1 = torch.nn.Linear(12, 10)
        self.lif1 = LIFCell(LIFParameters(tau_mem_inv=torch.nn.Parameter(torch.tensor(100.0))))
        self.fc2, self.lif2 = torch.nn.Linear(10, 4), LIFCell()

    def forward(self, x):
        s1 = s2 = None
        out = []
        for t in range(x.shape[0]):
            z1, s1 = self.lif1(self.fc1(x[t]), s1)
            z2, s2 = self.lif2(self.fc2(z1), s2)
            out.append(z2)
        return torch.stack(out)


def nr_loop_module():
    return NorseLoop(), _x(12, 30)


def nr_recurrent_cell():
    from norse.torch import LIFRecurrentCell
    return torch.nn.Sequential(LIFRecurrentCell(12, 10)), _x(12, 30)


def nr_iaf():
    from norse.torch import IAFCell
    return torch.nn.Sequential(torch.nn.Linear(12, 10), IAFCell()), _x(12, 2)


def nr_tanh():
    from norse.torch import LIFCell, LIFParameters
    return torch.nn.Sequential(torch.nn.Linear(12, 10),
                               LIFCell(LIFParameters(method="tanh", alpha=torch.tensor(2.0)))), \
        _x(12, 30)


def nr_adjoint():
    from norse.torch import LIFCell, LIFParameters
    return torch.nn.Sequential(torch.nn.Linear(12, 10),
                               LIFCell(LIFParameters(method="adjoint"))), _x(12, 30)


MODELS = {
    "snnTorch Sequential Leaky x2": snn_sequential,
    "snnTorch tutorial Net (x[step])": snn_tutorial,
    "snnTorch tutorial Net, static x": snn_tutorial_static,
    "snnTorch tutorial Net, zero reset": snn_tutorial_zero_reset,
    "snnTorch tutorial Net, fast_sigmoid(25)": snn_tutorial_fast_sigmoid,
    "snnTorch init_hidden + Flatten + Dropout": snn_init_hidden_flatten,
    "snnTorch learnable beta/threshold (vectors)": snn_learnable,
    "snnTorch scalar learn_threshold 0.9": snn_scalar_learn_threshold,
    "snnTorch sigmoid() default slope": snn_sigmoid_default_slope,
    "snnTorch Synaptic x2": snn_synaptic,
    "snnTorch RLeaky all-to-all": snn_rleaky,
    "snnTorch reset_delay=False, strong input": snn_immediate_reset_strong_input,
    "snnTorch Alpha": snn_alpha,
    "SpikingJelly README model (LIF, ATan)": sj_readme,
    "SpikingJelly IFNode soft reset": sj_if_soft,
    "SpikingJelly ParametricLIFNode x2": sj_plif,
    "SpikingJelly single-step Sequential": sj_single_step,
    "SpikingJelly multi-step module (layer.Linear)": sj_multistep_module,
    "SpikingJelly loop module + reset_net": sj_loop_module,
    "SpikingJelly saturated default Sigmoid": sj_saturated_sigmoid,
    "SpikingJelly LIF no decay_input, soft": sj_no_decay_input_soft,
    "SpikingJelly Flatten + single-step LIF": sj_flatten,
    "SpikingJelly PoissonPass surrogate": sj_poisson_pass,
    "Norse LIFCell x2, v_th Parameter": nr_lifcell,
    "Norse LIFBoxCell x2": nr_lifbox,
    "Norse LIF (multi-step)": nr_lif_multistep,
    "Norse loop module, tau_mem_inv Parameter": nr_loop_module,
    "Norse LIFRecurrentCell": nr_recurrent_cell,
    "Norse IAFCell": nr_iaf,
    "Norse LIFCell method='tanh'": nr_tanh,
    "Norse LIFCell method='adjoint'": nr_adjoint,
}

# the verdict each model must get
EXPECTED = {name: "agrees*" if name.startswith("snnTorch") else "agrees" for name in MODELS}
EXPECTED.update({
    # one snnTorch layer whose spikes only the loss reads, per-neuron parameters: exact
    "snnTorch learnable beta/threshold (vectors)": "agrees",
    "snnTorch reset_delay=False, strong input": "n/a",
    "snnTorch Alpha": "cannot run",
    "SpikingJelly PoissonPass surrogate": "cannot run",
    "Norse LIFCell method='adjoint'": "cannot run",
})


def check(name, seed=0):
    """(verdict, worst, rates, seconds, detail) of one model."""
    from lifgrad.verify import compare
    from lifgrad.verify.common import SHORT
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    model, x = MODELS[name]()
    try:
        rep = compare(model, x)
    except (ValueError, TypeError) as e:
        return "cannot run", float("nan"), "-", time.perf_counter() - t0, str(e)
    rates = ", ".join(f"{c.rate:.2f}" for c in rep.coverage)
    detail = rep.out_of_domain or "; ".join(f"{r.quantity}: {r.where}" for r in rep.failing) \
        or "; ".join(rep.warnings)
    return SHORT[rep.status], rep.worst, rates, time.perf_counter() - t0, detail


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args(argv)
    rows, t0 = [], time.perf_counter()
    for name in MODELS:
        rows.append((name,) + check(name))
    if a.markdown:
        print("| model | verdict | worst rel | firing rates | s |\n|---|---|---:|---|---:|")
        for name, v, w, r, s, _ in rows:
            print(f"| {name} | {v} | {w:.1e} | {r} | {s:.2f} |")
    else:
        wn = max(len(r[0]) for r in rows)
        for name, v, w, r, s, d in rows:
            print(f"{name:<{wn}}  {v:<10}  {w:>8.1e}  {r:<11}  {s:5.2f} s  {d[:90]}")
    bad = [r[0] for r in rows if r[1] != EXPECTED[r[0]]]
    print(f"{len(rows)} models in {time.perf_counter() - t0:.1f} s; "
          f"{len(rows) - len(bad)} with the expected verdict"
          + (f"; unexpected: {', '.join(bad)}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
