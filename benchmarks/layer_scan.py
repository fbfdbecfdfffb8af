"""Wall time of lif_forward + lif_backward for one layer, cpu vs reference backend.

    python benchmarks/layer_scan.py [--T 100 --B 64 --N 512 --dtype float32 --repeats 7]

The two backends are timed alternately in one process (the machine is shared
and noisy); medians and their ratio are printed.  Not a test.
"""
import argparse
import time

import numpy as np

import lifgrad
from lifgrad import LIFConfig, LIFParams, lif_backward, lif_forward


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--T", type=int, default=100)
    ap.add_argument("--B", type=int, default=64)
    ap.add_argument("--N", type=int, default=512)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--reset", default="subtract")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    I = rng.normal(0.3, 0.6, (a.T, a.B, a.N)).astype(a.dtype)
    dv = rng.normal(size=I.shape).astype(a.dtype)
    p = LIFParams(alpha=0.95, theta=1.0)
    times = {"cpu": [], "reference": []}
    cfgs = {k: LIFConfig(reset=a.reset, backend=k) for k in times}
    for k, cfg in cfgs.items():                 # warm-up (and JIT/cache load)
        v, tr = lif_forward(I, p, cfg)
        lif_backward(tr, p, cfg, dv=dv)
    for _ in range(a.repeats):
        for k, cfg in cfgs.items():
            t0 = time.perf_counter()
            v, tr = lif_forward(I, p, cfg)
            lif_backward(tr, p, cfg, dv=dv)
            times[k].append(time.perf_counter() - t0)
    med = {k: float(np.median(v)) for k, v in times.items()}
    print(f"T={a.T} B={a.B} N={a.N} {a.dtype} reset={a.reset}, median of {a.repeats} "
          f"(lifgrad's threads: {lifgrad.num_threads()})")
    for k in times:
        print(f"  {k:<10} forward+backward {1e3 * med[k]:8.1f} ms")
    print(f"  reference / cpu = {med['reference'] / med['cpu']:.1f}x")


if __name__ == "__main__":
    main()
