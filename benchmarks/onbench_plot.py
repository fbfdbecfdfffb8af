"""The Open Neuromorphic library-benchmark shape on this CPU: step time and
peak-memory growth against n, every implementation, from `run.py`'s JSON.

    python benchmarks/onbench_plot.py [--json benchmarks/results.json] [--out benchmarks/onbench.png]

One `Linear(n, n)` + LIF layer, B = 16, T = 500, loss = sum of the output
spikes; a step is forward + backward + Adam.  The published figures of that
benchmark are GPU forward + backward times at n = 16384 (RTX 3090/4090, no
optimiser step; ``../shared/anchors.md``); they are drawn at n = 16384 as open
markers for scale only: other hardware, other step.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics

HERE = os.path.dirname(os.path.abspath(__file__))

# fwd+bwd seconds at n = 16384 on a GPU (open-neuromorphic.github.io, framework-benchmarking-16k.json)
GPU_ANCHORS = {"Spyx fp32": 0.076, "Norse + torch.compile": 0.109, "SpikingJelly CuPy": 0.118,
               "EXODUS": 0.179, "snnTorch": 3.08}


def series(results):
    out = {}
    for w, per in results.items():
        if not w.startswith("ON"):
            continue
        n = int(w[2:])
        for impl, r in per.items():
            if impl == "floor" and r.get("times"):
                out.setdefault("NumPy GEMM floor", {})[n] = (statistics.median(r["times"]), None)
            elif r.get("times"):
                out.setdefault(impl, {})[n] = (statistics.median(r["times"]), r.get("growth_mb"))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", default=os.path.join(HERE, "results.json"))
    ap.add_argument("--out", default=os.path.join(HERE, "onbench.png"))
    a = ap.parse_args(argv)
    with open(a.json) as f:
        data = json.load(f)
    s = series(data["results"])
    if not s:
        raise SystemExit(f"{a.json}: no ON* workloads (run `python benchmarks/run.py "
                         f"--workloads ON512 ON1024 ON2048 ON4096`)")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.3))
    for impl, pts in sorted(s.items()):
        ns = sorted(pts)
        style = dict(marker="o", lw=2.2) if impl.startswith("lifgrad") else dict(marker="s", lw=1.2)
        if impl == "NumPy GEMM floor":
            style = dict(ls="--", color="gray", lw=1)
        ax1.plot(ns, [pts[n][0] for n in ns], label=impl, **style)
        mem = [(n, pts[n][1]) for n in ns if pts[n][1] is not None]
        if mem:
            ax2.plot([m[0] for m in mem], [m[1] for m in mem], label=impl, **style)
    for i, (name, t) in enumerate(GPU_ANCHORS.items()):
        ax1.plot([16384], [t], marker="D", mfc="none", color=f"C{i + 5}", ls="none",
                 label=f"{name}: GPU fwd+bwd, n=16384 (published)")
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("n (Linear(n, n) + LIF), B=16, T=500")
        ax.grid(alpha=0.3, which="both")
    ax1.set_ylabel("training step, s (forward + backward + Adam; CPU)")
    ax2.set_ylabel("peak RSS growth during training, MB")
    ax1.legend(fontsize=6.5, loc="upper left")
    ax2.legend(fontsize=7, loc="upper left")
    fig.suptitle(f"Open Neuromorphic benchmark shape on this CPU ({os.cpu_count()} cores), "
                 f"{data.get('started', '')[:10]}", fontsize=10)
    fig.tight_layout()
    fig.savefig(a.out, dpi=120)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
