"""Forward + backward wall time of one recurrent LIF layer (Dense + all-to-all R),
cpu vs reference backend, timed alternately in one process; medians.

    python benchmarks/recurrent_layer.py [--n-in 700 --n 256 --T 100 --B 32 --dtype float32]

Includes the input product, the per-step recurrent products and dW/dR.  Not a test.
"""
import argparse
import time

import numpy as np

from lifgrad import LIFConfig
from lifgrad.network import Dense, Sequential


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-in", type=int, default=700)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--T", type=int, default=100)
    ap.add_argument("--B", type=int, default=32)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--recurrent", default="all", choices=["all", "one", "none"])
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    x = (rng.uniform(size=(a.T, a.B, a.n_in)) < 0.05).astype(a.dtype)
    rec = None if a.recurrent == "none" else a.recurrent
    nets = {}
    for be in ("cpu", "reference"):
        cfg = LIFConfig(recurrent=rec, backend=be, reset="subtract")
        nets[be] = Sequential([Dense(a.n_in, a.n, cfg, alpha=0.95)], dtype=a.dtype, seed=1)
        nets[be].params["layer0.W"] *= 4
    dv = rng.normal(size=(a.T, a.B, a.n)).astype(a.dtype)
    times = {k: [] for k in nets}

    def step(net):
        v, tr = net.forward(x)
        net.backward(tr, dv=dv)
        return v

    rates = {k: float(step(n).mean()) for k, n in nets.items()}     # warm-up
    for _ in range(a.repeats):
        for k, net in nets.items():
            t0 = time.perf_counter()
            step(net)
            times[k].append(time.perf_counter() - t0)
    med = {k: float(np.median(v)) for k, v in times.items()}
    print(f"recurrent={a.recurrent} n_in={a.n_in} N={a.n} T={a.T} B={a.B} {a.dtype}, "
          f"median of {a.repeats}, firing rate {rates['cpu']:.3f}")
    for k in times:
        print(f"  {k:<10} forward+backward {1e3 * med[k]:8.1f} ms")
    print(f"  reference / cpu = {med['reference'] / med['cpu']:.2f}x")


if __name__ == "__main__":
    main()
