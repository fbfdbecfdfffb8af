"""Event-driven products with sparse operands against BLAS, by density.

    python benchmarks/events.py [--rows 2048] [--inputs 512] [--outputs 512 10]
                                [--operand spikes|float] [--repeats 20]

For one time chunk of a layer (``rows`` = steps x batch, CHUNK_ROWS by
default), a sparse operand ``a (rows, inputs)`` with a given fraction of
nonzeros -- uint8 spikes, or a float32 0/1 input (``--operand float``, e.g.
W2's Poisson input: ``--inputs 784 --outputs 1000``):

* forward  ``a @ W^T``:   ``cpu_ops.event_matmul`` against NumPy's product
  (``chunked.chunked_matmul``'s dense path: spikes by their float copy in
  512-row pieces);
* gradient ``u^T a``:    ``cpu_ops.event_wgrad`` against the same.

The two are timed alternately in one process; medians in ms and the ratio
event / BLAS.  Where they cross depends on the machine: ``make`` measures
it once per installation (``lifgrad/kernels/calibrate.py``, stored with the
compiled kernels) and ``functional.use_events`` uses that density.  A measurement, not a test.
"""
from __future__ import annotations

import argparse
import time


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=2048)
    ap.add_argument("--inputs", type=int, default=512)
    ap.add_argument("--outputs", type=int, nargs="+", default=[512, 10])
    ap.add_argument("--densities", type=float, nargs="+",
                    default=[0.02, 0.05, 0.1, 0.2, 0.25, 0.3, 0.4])
    ap.add_argument("--operand", choices=["spikes", "float"], default="spikes")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    if min(a.rows, a.inputs, a.repeats, a.threads, *a.outputs) < 1:
        ap.error("--rows, --inputs, --outputs, --repeats and --threads must be >= 1")
    if not all(0.0 <= d <= 1.0 for d in a.densities):
        ap.error("--densities must lie in [0, 1]")
    import numpy as np

    import lifgrad
    lifgrad.set_num_threads(a.threads)
    from lifgrad.products import SPIKE_ROWS
    from lifgrad.kernels.cpu_ops import event_matmul, event_wgrad

    rng = np.random.default_rng(0)
    print(f"{a.rows} rows x {a.inputs} inputs ({a.operand}), {a.threads} threads, medians of "
          f"{a.repeats} (ms, alternating)\n")
    print("| outputs | density | fwd BLAS | fwd events | ratio | grad BLAS | grad events | ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n_out in a.outputs:
        WT = rng.standard_normal((a.inputs, n_out), dtype=np.float32)
        u = rng.standard_normal((a.rows, n_out), dtype=np.float32)
        out = np.empty((a.rows, n_out), np.float32)
        for d in a.densities:
            s = (rng.random((a.rows, a.inputs)) < d).astype(
                np.uint8 if a.operand == "spikes" else np.float32)
            pieces = ([slice(0, a.rows)] if s.dtype.kind == 'f' else
                      [slice(r, min(a.rows, r + SPIKE_ROWS)) for r in range(0, a.rows, SPIKE_ROWS)])

            def fwd_blas():
                for r in pieces:
                    np.matmul(s[r], WT, out=out[r])

            def grad_blas():
                w = u[pieces[0]].T @ s[pieces[0]]
                for r in pieces[1:]:
                    w += u[r].T @ s[r]

            def grad_events():
                event_wgrad(u, s, np.zeros((n_out, a.inputs), np.float32))

            fns = {"fb": fwd_blas, "fe": lambda: event_matmul(s, WT, out),
                   "gb": grad_blas, "ge": grad_events}
            times = {k: [] for k in fns}
            for f in fns.values():      # compile and warm
                f()
            for _ in range(a.repeats):
                for k, f in fns.items():
                    t = time.perf_counter()
                    f()
                    times[k].append(time.perf_counter() - t)
            m = {k: 1e3 * float(np.median(v)) for k, v in times.items()}
            print(f"| {n_out} | {d:g} | {m['fb']:.2f} | {m['fe']:.2f} | {m['fe'] / m['fb']:.2f} "
                  f"| {m['gb']:.2f} | {m['ge']:.2f} | {m['ge'] / m['gb']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
