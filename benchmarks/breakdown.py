"""Where one lifgrad training step spends its time, next to the NumPy GEMM floor.

    python benchmarks/breakdown.py W3 [--steps 15] [--threads 2]

In one process, alternating step by step (so both see the same machine
load), this times a lifgrad step of a ``run.py`` workload split into phases
and the floor's matrix products grouped the same way:

* ``forward products``   input currents ``x W^T`` (with the bias add)
* ``backward products``  the errors sent down ``ubar W``
* ``weight gradients``   ``dW = ubar^T x`` and ``db`` (and dR)
* ``forward scans`` / ``backward scans``  the Numba LIF kernels
* ``optimiser``          the Adam update
* ``rest``               everything else: the loss, traces, checks

Phases are wall time of the functions named in the code below, nested calls
subtracted; medians over the timed steps.  The point is the comparison in
one run: how much of the step is the products the floor also makes, and how
much is work the floor does not count (the scans, the bias add, the uint8
spikes' float copies, the optimiser).  Like ``run.py`` it is a measurement,
not a test.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workload", choices=["W1", "W2", "W3", "W4", "W5"])
    ap.add_argument("--steps", type=int, default=15, help="timed steps (default 15)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None,
                    help="lifgrad.set_num_threads(N) (default: lifgrad's default)")
    a = ap.parse_args(argv)
    if a.steps < 1 or a.warmup < 0 or (a.threads is not None and a.threads < 1):
        ap.error("--steps and --threads must be >= 1, --warmup >= 0")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import numpy as np

    import lifgrad
    from lifgrad import functional, network, optim
    lifgrad.set_num_threads(a.threads)
    from workloads import WORKLOADS, Data, build_lifgrad, floor_products

    spent = defaultdict(float)
    stack = []          # inner time of the enclosing timed call
    where = []          # the phase the enclosing call belongs to

    def timed(owner, name, phase):
        fn = getattr(owner, name)

        def wrapper(*args, **kw):
            ph = phase(where) if callable(phase) else phase
            t = time.perf_counter()
            stack.append(0.0)
            where.append(ph)
            try:
                return fn(*args, **kw)
            finally:
                where.pop()
                dt = time.perf_counter() - t
                spent[ph] += dt - stack.pop()
                if stack:
                    stack[-1] += dt
        setattr(owner, name, wrapper)

    def product_phase(where):          # a product inside the input current is forward
        return "forward products" if where and where[-1] == "forward products" \
            else "backward products"

    timed(network, "_input_current", "forward products")
    timed(network, "_chunked_matmul", product_phase)
    timed(network, "_weight_grads", "weight gradients")
    timed(functional, "recurrent_grad", "weight gradients")
    for mod in (functional, network):
        timed(mod, "forward_scan", "forward scans")
        timed(mod, "backward_scan", "backward scans")
    timed(optim.Adam, "step", "optimiser")

    wl = WORKLOADS[a.workload]
    data = Data(wl)
    step, _ = build_lifgrad(wl)
    prods = floor_products(wl)

    def floor_group(label):
        if " fwd" in label:
            return "forward products"
        if " dX" in label or " R bwd" in label:
            return "backward products"
        return "weight gradients"

    for _ in range(a.warmup):
        step(data.x, data.y)
    steps, floors = [], []
    for _ in range(a.steps):
        data.refresh()
        spent.clear()
        t = time.perf_counter()
        step(data.x, data.y)
        total = time.perf_counter() - t
        steps.append(dict(spent, total=total))
        f = defaultdict(float)
        for label, fn in prods:
            t = time.perf_counter()
            fn()
            f[floor_group(label)] += time.perf_counter() - t
        f["total"] = sum(f.values())
        floors.append(f)

    def med(rows, k):
        return 1e3 * float(np.median([r.get(k, 0.0) for r in rows]))

    phases = ["forward products", "backward products", "weight gradients", "forward scans",
              "backward scans", "optimiser"]
    print(f"{a.workload}: {a.steps} steps, {lifgrad.num_threads()} threads, medians in ms "
          f"(lifgrad and floor alternating in one process)\n")
    print("| phase | lifgrad | floor | lifgrad - floor |")
    print("|---|---:|---:|---:|")
    for ph in phases:
        lg, fl = med(steps, ph), med(floors, ph)
        fl_s = f"{fl:.1f}" if ph in ("forward products", "backward products",
                                     "weight gradients") else ""
        diff = f"{lg - fl:+.1f}" if fl_s else f"{lg:+.1f}"
        print(f"| {ph} | {lg:.1f} | {fl_s} | {diff} |")
    rest = float(np.median([r["total"] - sum(v for k, v in r.items() if k != "total")
                            for r in steps])) * 1e3
    print(f"| rest | {rest:.1f} |  | {rest:+.1f} |")
    tot, ftot = med(steps, "total"), med(floors, "total")
    print(f"| **step** | **{tot:.1f}** | **{ftot:.1f}** | ratio {tot / ftot:.2f} |")


if __name__ == "__main__":
    main()
