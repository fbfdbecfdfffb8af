"""The recipes (``recipes/*.json``) trained by lifgrad and, beside it, the same
network in snnTorch: seconds per epoch and the test accuracy each reaches.

For each recipe, one process trains both, alternating epochs (lifgrad epoch
k, then snnTorch epoch k), so a load change on the machine hits both:

* the same data arrays, the same batches in the same order (lifgrad's
  ``default_rng([seed, epoch])`` permutation), the same initial weights
  (copied from lifgrad's network), float32, batch size, T, Adam with the
  same lr, betas and per-epoch cosine schedule;
* the same cells: ``snn.Leaky`` (lif) or ``snn.Synaptic`` (synaptic) with
  beta = alpha, the threshold, subtractive reset and ``surrogate.atan(2)``
  (lifgrad's default atan is snnTorch's: the same derivative); the readout a
  non-resetting ``snn.Leaky`` read through its membrane; snnTorch has no
  adaptive-threshold neuron, so the recurrent adaptive cell is written as
  its equations in PyTorch with snnTorch's atan (a user's way), all-to-all
  recurrence without autapses as lifgrad's ``recurrent_adaptive``;
* the same gradient-norm clipping where the recipe clips (``clip``);
* the same loss, lifgrad's ``ce_membrane``: cross-entropy of the readout
  membrane at every step, summed over the steps, mean over the batch;
  accuracy by the membrane summed over time.

Differences that remain: snnTorch's ``Leaky``/``Synaptic`` detach the reset
from the gradient and fire at u > theta (lifgrad's recipes: reset not
detached, u >= theta); the hand-written adaptive cell keeps both as lifgrad.
The snnTorch loop is the usual one (a step at a time), with the first
layer's input current for all steps in one product, as lifgrad does.

Timing: the training loop of an epoch (batching, densifying event batches,
forward, backward, optimiser), not the evaluation; the median over epochs,
the first (cold: compilation, first touches) reported apart.  Threads:
each library's default, or ``--threads N`` for both (on a machine that
other jobs load, PyTorch's default threads can spend most of a small
step waiting: see benchmarks/recipes.md).

    python benchmarks/recipes.py                          # all three, full recipes
    python benchmarks/recipes.py --recipes yinyang --epochs 5
    python benchmarks/recipes.py --shd-dir /path/to/shd   # real SHD files

Writes ``--json`` (default benchmarks/recipes.json); prints a Markdown table
(``--render FILE.json`` prints a saved file's).
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch                                    # noqa: E402
import torch.nn.functional as F                 # noqa: E402
import snntorch as snn                          # noqa: E402
from snntorch import surrogate                  # noqa: E402

from lifgrad import optim as lg_optim           # noqa: E402
from lifgrad.train import TrainConfig, build_network, fit, load_dataset  # noqa: E402

RECIPES = ("yinyang", "randman", "shd_alif")


class SnnTorchNet(torch.nn.Module):
    """The recipe's network in snnTorch, with lifgrad's initial parameters."""

    def __init__(self, cfg, net):
        super().__init__()
        self.cfg = cfg
        p = {k: torch.tensor(v) for k, v in net.params.items()}
        self.fcs = torch.nn.ModuleList()
        self.cells = []
        self.R = torch.nn.ParameterList()
        np_ = dict(cfg.neuron_params)
        spike = surrogate.atan(alpha=2.0)
        self.spike = spike
        for i, layer in enumerate(net.layers):
            fc = torch.nn.Linear(layer.n_in, layer.n_out)
            with torch.no_grad():
                fc.weight.copy_(p[f"layer{i}.W"])
                fc.bias.copy_(p[f"layer{i}.b"])
            self.fcs.append(fc)
            if layer.readout:
                self.cells.append(snn.Leaky(beta=cfg.alpha, reset_mechanism="none"))
            elif cfg.model == "lif":
                self.cells.append(snn.Leaky(beta=cfg.alpha, threshold=cfg.theta, spike_grad=spike,
                                            reset_mechanism="subtract"))
            elif cfg.model == "synaptic":
                self.cells.append(snn.Synaptic(alpha=np_.get("alpha_s", 0.8), beta=cfg.alpha,
                                               threshold=cfg.theta, spike_grad=spike,
                                               reset_mechanism="subtract"))
            elif cfg.model == "recurrent_adaptive":
                self.cells.append("alif")
                self.R.append(torch.nn.Parameter(p[f"layer{i}.R"].clone()))
                self.register_buffer(f"mask{i}", 1.0 - torch.eye(layer.n_out))
            else:
                raise ValueError(f"model {cfg.model!r}: not in this benchmark")
        self.rho, self.beta_a = np_.get("rho", 0.95), np_.get("beta_a", 0.2)

    def forward(self, x):
        """``x``: (T, B, N) spike counts, or static (B, N); returns the readout
        membrane (T, B, C)."""
        T = self.cfg.T
        cur0 = self.fcs[0](x)                       # all steps at once (or once, static)
        static = x.dim() == 2
        B = x.shape[-2]
        state = []
        for i, cell in enumerate(self.cells):
            n = self.fcs[i].out_features
            if cell == "alif":
                z = torch.zeros(B, n)
                state.append([z, z, z])             # u, a, v
            elif isinstance(cell, snn.Synaptic):
                state.append(list(cell.init_synaptic()))
            else:
                state.append([cell.init_leaky()])
        out = []
        for t in range(T):
            h = None
            for i, cell in enumerate(self.cells):
                cur = (cur0 if static else cur0[t]) if i == 0 else self.fcs[i](h)
                st = state[i]
                if cell == "alif":                  # lifgrad's recurrent adaptive cell
                    u, a, v = st
                    R = self.R[0] * getattr(self, f"mask{i}")
                    a = self.rho * a + v
                    u = self.cfg.alpha * u + cur + v @ R.t() - self.cfg.theta * v
                    v = self.spike(u - (self.cfg.theta + self.beta_a * a))
                    state[i] = [u, a, v]
                    h = v
                elif isinstance(cell, snn.Synaptic):
                    h, syn, mem = cell(cur, st[0], st[1])
                    state[i] = [syn, mem]
                else:
                    h, mem = cell(cur, st[0])
                    state[i] = [mem]
                    if i == len(self.cells) - 1:
                        out.append(mem)
        return torch.stack(out)


def _batch(cfg, x):
    xb = np.asarray(x, np.float32)
    if cfg.encoder == "events":
        return torch.from_numpy(np.ascontiguousarray(xb.transpose(1, 0, 2)))
    return torch.from_numpy(xb)


def _ce_membrane(mem, y):
    T, B, C = mem.shape
    return F.cross_entropy(mem.reshape(T * B, C), y.repeat(T), reduction="sum") / B


def torch_epoch(model, opt, cfg, ds, epoch, sched):
    for g in opt.param_groups:
        g["lr"] = sched(epoch)
    order = np.random.default_rng([cfg.seed, epoch]).permutation(len(ds.y_train))
    t0 = time.perf_counter()
    for i in range(0, len(order), cfg.batch_size):
        idx = order[i:i + cfg.batch_size]
        xb, yb = _batch(cfg, ds.x_train[idx]), torch.from_numpy(ds.y_train[idx]).long()
        opt.zero_grad(set_to_none=True)
        loss = _ce_membrane(model(xb), yb)
        loss.backward()
        if cfg.clip:                                 # as lifgrad.optim.clip_grad_norm
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
    return time.perf_counter() - t0


@torch.no_grad()
def torch_accuracy(model, cfg, x, y, batch=512):
    correct = 0
    for i in range(0, len(y), batch):
        mem = model(_batch(cfg, x[i:i + batch]))
        correct += int((mem.sum(0).argmax(1).numpy() == y[i:i + batch]).sum())
    return correct / len(y)


def run_recipe(name, epochs=None, shd_dir=None, detach_reset=False, log=print):
    d = json.load(open(ROOT / "recipes" / f"{name}.json"))
    if epochs:
        d["epochs"] = epochs
    if detach_reset:                 # lifgrad computes snnTorch's Leaky/Synaptic gradient
        d["detach_reset"] = True
    if name == "shd_alif":
        if shd_dir is None:
            from lifgrad.data import shd_synthetic
            shd_dir = os.path.join(tempfile.gettempdir(), "lifgrad_shd_synthetic")
            if not all(os.path.isfile(os.path.join(shd_dir, f)) for f in
                       ("shd_train.h5", "shd_test.h5")):
                shd_synthetic.make(shd_dir)
        d["data_dir"] = shd_dir
    d["out"] = tempfile.mkdtemp(prefix=f"recipe-{name}-")
    cfg = TrainConfig.from_dict(d).validate()
    ds = load_dataset(cfg)
    net0 = build_network(cfg, ds.n_features, ds.n_classes)
    model = SnnTorchNet(cfg, net0)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=tuple(cfg.betas))
    sched = lg_optim.CosineLR(cfg.lr, cfg.epochs) if cfg.schedule == "cosine" else (
        lg_optim.ConstantLR(cfg.lr))
    rows = []

    def after(row, net):
        ts = torch_epoch(model, opt, cfg, ds, row["epoch"] - 1, sched)
        acc = torch_accuracy(model, cfg, ds.x_test, ds.y_test)
        rows.append({"epoch": row["epoch"], "lifgrad_s": row["seconds"],
                     "lifgrad_test_acc": row["test_acc"], "snntorch_s": ts,
                     "snntorch_test_acc": acc})
        log(f"{name} epoch {row['epoch']}: lifgrad {row['seconds']:.2f} s "
            f"{row['test_acc']:.4f} | snnTorch {ts:.2f} s {acc:.4f}")

    fit(cfg, dataset=ds, progress=False, on_epoch=after)
    med = lambda k: float(np.median([r[k] for r in rows[1:] or rows]))   # noqa: E731
    return {"recipe": name, "config": json.loads(cfg.to_json()), "epochs": cfg.epochs,
            "n_train": len(ds.y_train), "n_test": len(ds.y_test),
            "lifgrad": {"s_per_epoch_median": med("lifgrad_s"), "first_epoch_s": rows[0]["lifgrad_s"],
                        "test_acc": rows[-1]["lifgrad_test_acc"]},
            "snntorch": {"s_per_epoch_median": med("snntorch_s"),
                         "first_epoch_s": rows[0]["snntorch_s"],
                         "test_acc": rows[-1]["snntorch_test_acc"]},
            "rows": rows}


def table(results):
    """Markdown: medians over the epochs after the first (the first in
    brackets); the ratio is the median of the per-epoch ratios (each pair of
    epochs ran back to back)."""
    lines = ["| recipe | epochs | lifgrad s/epoch (first) | snnTorch s/epoch (first) | "
             "snnTorch / lifgrad | lifgrad test acc | snnTorch test acc |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        lg, st = r["lifgrad"], r["snntorch"]
        pairs = r["rows"][1:] or r["rows"]
        ratio = float(np.median([p["snntorch_s"] / p["lifgrad_s"] for p in pairs]))
        lines.append(f"| {r['recipe']} | {r['epochs']} | {lg['s_per_epoch_median']:.2f} "
                     f"({lg['first_epoch_s']:.2f}) | {st['s_per_epoch_median']:.2f} "
                     f"({st['first_epoch_s']:.2f}) | {ratio:.1f}x | "
                     f"{100 * lg['test_acc']:.1f} % | {100 * st['test_acc']:.1f} % |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipes", nargs="+", choices=RECIPES, default=list(RECIPES))
    ap.add_argument("--epochs", type=int, default=None, help="override every recipe's epochs")
    ap.add_argument("--shd-dir", default=None, help="folder of shd_train.h5/shd_test.h5 "
                    "(default: the synthetic set, generated into a temporary folder)")
    ap.add_argument("--detach-reset", action="store_true", help="lifgrad with detach_reset="
                    "True, the gradient of snnTorch's Leaky/Synaptic (which detach the reset); "
                    "the adaptive cell is then detached in neither")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads(N) and "
                    "lifgrad.set_num_threads(N) (default: each library's own default)")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "recipes.json"))
    ap.add_argument("--render", metavar="JSON", help="print the table of a results file, run nothing")
    a = ap.parse_args(argv)
    if a.render:
        return render(a.render)
    if a.threads:
        import lifgrad
        torch.set_num_threads(a.threads)
        lifgrad.set_num_threads(a.threads)
    load0 = os.getloadavg()
    results = []
    for name in a.recipes:
        results.append(run_recipe(name, a.epochs, a.shd_dir, a.detach_reset))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from machine import cpu_name
    machine = {"cpu": cpu_name(), "cores": os.cpu_count(),
               "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
               "snntorch": snn.__version__, "python": platform.python_version(),
               "numpy": np.__version__, "threads_flag": a.threads,
               "loadavg_start": load0, "loadavg_end": os.getloadavg()}
    with open(a.json, "w") as f:
        json.dump({"machine": machine, "command": " ".join(["python", *sys.argv]),
                   "results": results}, f, indent=1)
    print(json.dumps(machine))
    print(table(results))


def render(path):
    """The table of a results file written by :func:`main`."""
    with open(path) as f:
        print(table(json.load(f)["results"]))


if __name__ == "__main__":
    main()
