"""One measurement of `run.py`, in a fresh process, as a user's script runs it.

    python benchmarks/user_step.py --impl lifgrad --workload W2 --repeats 8

The first thing this script does is import the libraries in the order the
implementation names (nothing before: no environment variable is set, no
thread setting is made, by this script or by `run.py`):

    lifgrad                 numpy, torch, then lifgrad  (the README's order, and a
                            `lifgrad.verify` user's)
    lifgrad[torch-first]    torch, numpy, then lifgrad
    lifgrad[lifgrad-first]  lifgrad, numpy, then torch
    snntorch, spikingjelly, norse, torch
                            numpy, torch, then the framework
    floor                   numpy: the dense matrix products the step needs

Then it builds the model (public API only: workloads.py), takes the RSS as the
memory baseline, runs the warm-up steps (the first loads the compiled
kernels or initialises the framework: that memory counts) and the timed steps,
and prints one line ``RESULT {json}``: step times, peak-RSS growth over the
baseline (VmHWM after the steps, reset to the baseline through
/proc/self/clear_refs), the process's peak RSS, and the load other processes
put on the machine during the timed steps.
"""
import argparse
import importlib
import os
import sys
import time

ORDERS = {
    "lifgrad": ("numpy", "torch", "lifgrad"),
    "lifgrad[torch-first]": ("torch", "numpy", "lifgrad"),
    "lifgrad[lifgrad-first]": ("lifgrad", "numpy", "torch"),
    "floor": ("numpy",),
}
PEER_MODULES = {"snntorch": "snntorch", "spikingjelly": "spikingjelly", "norse": "norse",
                "torch": "torch"}

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("--impl", required=True)
ap.add_argument("--workload", required=True)
ap.add_argument("--repeats", type=int, default=8)
ap.add_argument("--warmup", type=int, default=2)
ap.add_argument("--threads", type=int, default=None,
                help="call torch.set_num_threads / lifgrad.set_num_threads (default: "
                     "each library's own default, as a user gets it)")
ap.add_argument("--backend", default="cpu")
ap.add_argument("--profile", default=None)
ap.add_argument("--tiny", action="store_true",
                help="a copy of the workload with layers of at most 64 neurons and T <= 3 "
                     "(run.py primes the kernel cache with it)")
a = ap.parse_args()

t_import = time.perf_counter()
for _m in ORDERS.get(a.impl, ("numpy", "torch", PEER_MODULES.get(a.impl, "torch"))):
    importlib.import_module(_m)
t_import = time.perf_counter() - t_import

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.dirname(HERE))

import json  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402

import numpy as np  # noqa: E402

from workloads import BUILDERS, Data, WORKLOADS, floor_products  # noqa: E402


def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _busy_s():
    """(CPU seconds the whole machine spent busy, CPU seconds of this process)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    busy = sum(fields[:8]) - fields[3] - fields[4]
    t = os.times()
    return busy / os.sysconf("SC_CLK_TCK"), t.user + t.system


def _reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _version(name):
    try:
        from importlib.metadata import version
        return version(name)
    except Exception:  # noqa: BLE001
        return "?"


def _floor(wl):
    prods = floor_products(wl)
    for _, fn in prods:
        fn()
    times, parts = [], {label: [] for label, _ in prods}
    for _ in range(max(a.repeats, 3)):
        tot = 0.0
        for label, fn in prods:
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            parts[label].append(dt)
            tot += dt
        times.append(tot)
    return {"times": times, "parts": {k: statistics.median(v) for k, v in parts.items()}}


def main():
    wl = WORKLOADS[a.workload]
    if a.tiny:
        import dataclasses
        wl = dataclasses.replace(wl, sizes=tuple(min(n, 64) for n in wl.sizes), T=min(wl.T, 3),
                                 B=min(wl.B, 2))
    info = {"workload": wl.name, "impl": a.impl, "pid": os.getpid(), "import_s": t_import,
            "modules_order": list(ORDERS.get(a.impl, ())), "versions": {"numpy": np.__version__}}
    if a.impl == "floor":
        info.update(_floor(wl))
        print("RESULT " + json.dumps(info), flush=True)
        return
    import torch
    info["versions"]["torch"] = torch.__version__
    base_impl = "lifgrad" if a.impl.startswith("lifgrad") else a.impl
    if base_impl == "lifgrad":
        import lifgrad
        info["versions"]["lifgrad"] = lifgrad.__version__
        if a.threads:
            lifgrad.set_num_threads(a.threads)
        info["lifgrad_threads"] = lifgrad.num_threads()
    else:
        if base_impl != "torch":
            info["versions"][base_impl] = _version(base_impl)
    if a.threads:
        torch.set_num_threads(a.threads)
    info["torch_threads"] = torch.get_num_threads()
    builder = BUILDERS[base_impl]
    if a.backend == "cuda":
        import functools
        builder = functools.partial(builder, backend="cuda")
    data = Data(wl)
    step, rates = builder(wl)
    import gc
    gc.collect()
    base_kb = _status_kb("VmRSS")
    reset_ok = _reset_peak()
    losses = []
    t0 = time.perf_counter()
    first = None
    for i in range(a.warmup):
        data.refresh()
        ts = time.perf_counter()
        losses.append(step(data.x, data.y))
        if i == 0:
            first = time.perf_counter() - ts
    warm_s = time.perf_counter() - t0
    prof = None
    if a.profile:
        import cProfile
        prof = cProfile.Profile()
    times, other, timed = [], 0.0, 0.0
    for _ in range(a.repeats):
        data.refresh()
        m0, o0 = _busy_s()
        if prof:
            prof.enable()
        ts = time.perf_counter()
        losses.append(step(data.x, data.y))
        dt = time.perf_counter() - ts
        if prof:
            prof.disable()
        m1, o1 = _busy_s()
        times.append(dt)
        timed += dt
        other += max(0.0, (m1 - m0) - (o1 - o0))
    hwm_kb = _status_kb("VmHWM")
    if prof:
        import pstats
        prof.dump_stats(a.profile)
        pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(25)
    info.update(times=times, warmup_s=warm_s, first_step_s=first, base_mb=base_kb / 1024,
                peak_mb=hwm_kb / 1024, growth_mb=(hwm_kb - base_kb) / 1024,
                mem_method="clear_refs+VmHWM" if reset_ok else "VmHWM (no reset)",
                other_cores=other / timed if timed > 0 else 0.0,
                loss_first=float(losses[0]), loss_last=float(losses[-1]),
                finite=bool(all(math.isfinite(v) for v in losses)),
                env_threads={k: os.environ[k] for k in (
                    "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "NUMBA_NUM_THREADS", "OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT")
                    if k in os.environ})
    try:
        data.refresh()
        info["rates"] = rates(data.x, data.y)
    except Exception as e:  # noqa: BLE001 - informative only
        info["rates_error"] = repr(e)
    print("RESULT " + json.dumps(info), flush=True)


if __name__ == "__main__":
    main()
