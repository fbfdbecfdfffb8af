"""Eight training runs three ways: a sequential loop of ``train.fit``, ``lifgrad.sweep``
on local processes, and ``lifgrad.sweep`` on a Dask ``LocalCluster``.

    python benchmarks/sweep_bench.py [--repeats 3] [--workloads tiny small medium]

Each measurement is a fresh process (a user script): *cold* is its first
sweep, timed from before ``import lifgrad`` (and, for Dask, including the
cluster's start); *warm* is a second, identical sweep into a new folder in the
same process (the same cluster for Dask; ``sweep.run`` starts a new process
pool on every call).  The grid is lr {1e-3, 5e-3} x surrogate {atan,
fast_sigmoid} x optimizer {adam, sgd}.  Sequential runs use lifgrad's default
threads (all CPUs); the local sweep 2 workers x 1 thread; the cluster
2 worker processes x 1 thread.  The script also checks that the three give
the same metrics, bit for bit.  Writes ``benchmarks/sweep.md`` (``--out``).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
GRID = {"lr": [1e-3, 5e-3], "surrogate": ["atan", "fast_sigmoid"], "optimizer": ["adam", "sgd"]}
WORKLOADS = {
    "tiny": dict(dataset="digits", max_train=200, epochs=1, T=4, hidden=[16], batch_size=50),
    "small": dict(dataset="digits", epochs=5, T=16, hidden=[64], batch_size=32),
    "medium": dict(dataset="digits", epochs=10, T=25, hidden=[128], batch_size=32),
}
MODES = ("sequential", "local", "dask")


def _child(mode, workload, folder):
    t0 = time.perf_counter()
    import dataclasses

    from lifgrad import sweep, train
    base = WORKLOADS[workload]
    out = {"mode": mode, "workload": workload}

    def once(tag, client=None):
        t = time.perf_counter()
        if mode == "sequential":
            metrics = {}
            for cfg in sweep.expand(base, grid=GRID):
                cfg = dataclasses.replace(cfg, out=os.path.join(folder, tag, sweep.run_id(cfg)))
                hist = train.fit(cfg, progress=False)
                metrics[sweep.run_id(cfg)] = {k: float(hist[-1][k]) for k in sweep.METRICS}
        else:
            kw = dict(scheduler=client) if mode == "dask" else dict(workers=2)
            res = sweep.run(base, grid=GRID, out=os.path.join(folder, tag), **kw)
            metrics = {r["run_id"]: {k: r["metrics"][k] for k in sweep.METRICS}
                       for r in res.records}
        return time.perf_counter() - t, metrics

    if mode == "dask":
        from dask.distributed import Client, LocalCluster
        t = time.perf_counter()
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
        out["cluster_start"] = time.perf_counter() - t
    else:
        client = None
    _, out["metrics"] = once("cold", client)
    out["cold"] = time.perf_counter() - t0
    out["warm"], warm_metrics = once("warm", client)
    assert warm_metrics == out["metrics"]
    if client is not None:
        client.close()
        cluster.close()
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    ap.add_argument("--out", default=os.path.join(HERE, "sweep.md"))
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return _child(*args.child)
    results = {}
    for w in args.workloads:
        for rep in range(args.repeats):
            for m in MODES:                        # interleaved: load changes hit every mode
                with tempfile.TemporaryDirectory() as d:
                    load = os.getloadavg()[0]           # other jobs on the machine
                    t = time.perf_counter()
                    p = subprocess.run([sys.executable, __file__, "--child", m, w, d],
                                       capture_output=True, text=True, check=True)
                    r = json.loads(p.stdout.strip().splitlines()[-1])
                    r["process"] = time.perf_counter() - t
                    r["load"] = load
                results.setdefault((w, m), []).append(r)
                print(f"{w} {m} rep {rep}: cold {r['cold']:.2f} s, warm {r['warm']:.2f} s",
                      file=sys.stderr)
    cmd = "python benchmarks/sweep_bench.py " + " ".join(sys.argv[1:])
    lines = ["# Sweeps: 8 runs sequentially, on local processes, on a Dask LocalCluster", "",
             f"`{cmd.strip()}` on {datetime.datetime.now():%Y-%m-%d %H:%M}, "
             f"{len(os.sched_getaffinity(0))} cores (shared with other jobs: medians of "
             f"{args.repeats} fresh processes, min in brackets; *load before*: the 1-minute "
             f"load average when each process started, other jobs included).", "",
             __doc__.split("\n\n", 2)[2].split("Writes")[0].replace("\n", " ").strip(), "",
             "| workload | per run | mode | cold s | warm s | whole process s | load before "
             "| same metrics |", "|---|---|---|---:|---:|---:|---:|---|"]
    for w in args.workloads:
        ref = results[(w, "sequential")][0]["metrics"]
        desc = ", ".join(f"{k} {v}" for k, v in WORKLOADS[w].items() if k != "dataset")
        for m in MODES:
            rs = results[(w, m)]
            same = all(r["metrics"] == ref for r in rs)

            def cell(key):
                vals = [r[key] for r in rs]
                return f"{statistics.median(vals):.2f} ({min(vals):.2f})"

            extra = (f"; cluster start {statistics.median(r['cluster_start'] for r in rs):.2f}"
                     if m == "dask" else "")
            lines.append(f"| {w} | {desc} | {m} | {cell('cold')} | {cell('warm')} | "
                         f"{cell('process')}{extra} | {cell('load')} | "
                         f"{'yes' if same else 'NO'} |")
    notes = ""                              # a hand-written "## Notes" section is kept
    if os.path.exists(args.out):
        with open(args.out) as f:
            text = f.read()
        if "\n## Notes" in text:
            notes = "\n" + text[text.index("\n## Notes") + 1:]
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n" + notes)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
