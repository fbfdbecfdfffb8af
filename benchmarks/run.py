"""Training-step benchmark: lifgrad vs snnTorch, SpikingJelly and plain PyTorch.

    python benchmarks/run.py                                  # everything (~10 min, 2 cores)
    python benchmarks/run.py --workloads W1 W2 --repeats 12   # a subset
    python benchmarks/run.py --impls lifgrad torch --out /tmp/r.md

Every measurement runs in a fresh process (this script with ``--child``), the
implementations alternate (lifgrad, snntorch, spikingjelly, torch, lifgrad, ...
when ``--rounds`` > 1), each process times ``--repeats`` steps after warm-up
and reports the step times and its peak-RSS growth.  The NumPy GEMM floor of
each workload is timed in its own process too, in every round right after
lifgrad.  See benchmarks/README.md for
the columns and the method; workloads and implementations: workloads.py.
"""
from __future__ import annotations

import os
import sys


def _threads_from_argv(default=2):
    argv = sys.argv
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return int(argv[i + 1])
        if a.startswith("--threads="):
            return int(a.split("=", 1)[1])
    return default


THREAD_VARS = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "MKL_NUM_THREADS")
if "--child" in sys.argv:            # before numpy/numba/torch are imported
    _n = str(_threads_from_argv())
    for _v in THREAD_VARS:
        os.environ[_v] = _n

import argparse  # noqa: E402
import datetime  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if HERE not in sys.path:
    sys.path.insert(0, HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from workloads import IMPL_MODULES, IMPLS, WORKLOADS  # noqa: E402  (numpy only)


# -- memory ------------------------------------------------------------------------

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
    # user nice system idle iowait irq softirq steal ...
    busy = sum(fields[:8]) - fields[3] - fields[4]
    t = os.times()
    return busy / os.sysconf("SC_CLK_TCK"), t.user + t.system


def _reset_peak():
    """Reset VmHWM to the current RSS (Linux >= 4.0: write 5 to clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _dist_version(name):
    try:
        from importlib.metadata import version
        return version(name)
    except Exception:  # noqa: BLE001
        return "?"


# -- child: one measurement ----------------------------------------------------------

def child(a):
    import numpy as np

    from workloads import BUILDERS, Data, Workload, floor_products

    wl = WORKLOADS[a.workload]
    info = {"workload": wl.name, "impl": a.impl, "threads": a.threads, "pid": os.getpid()}
    if a.impl == "floor":
        prods = floor_products(wl)
        for _, fn in prods:               # warm-up
            fn()
        times, parts = [], {label: [] for label, _ in prods}
        for _ in range(a.repeats):
            tot = 0.0
            for label, fn in prods:
                t0 = time.perf_counter()
                fn()
                dt = time.perf_counter() - t0
                parts[label].append(dt)
                tot += dt
            times.append(tot)
        info.update(times=times, parts={k: statistics.median(v) for k, v in parts.items()},
                    versions={"numpy": np.__version__})
        print("RESULT " + json.dumps(info), flush=True)
        return

    versions = {"numpy": np.__version__}
    if a.impl == "lifgrad":
        import numba

        import lifgrad
        versions.update(lifgrad=getattr(lifgrad, "__version__", None) or _dist_version("lifgrad"),
                        numba=numba.__version__)
        info["numba_threads"] = numba.get_num_threads()
    else:
        import torch
        torch.set_num_threads(a.threads)
        versions["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        if a.impl != "torch":
            mod = importlib.import_module(IMPL_MODULES[a.impl])
            versions[a.impl] = getattr(mod, "__version__", None) or _dist_version(a.impl)
    info["versions"] = versions
    info["backend"] = a.backend
    builder = BUILDERS[a.impl]
    if a.backend == "cuda":
        import functools
        builder = functools.partial(builder, backend="cuda")

    # compile / first-call costs (Numba JIT or cache load, torch lazy init) on a
    # tiny copy of the workload, before the memory baseline; layers of up to 64
    # neurons, so that lifgrad's event-driven products (>= 64 columns) load here
    # too (loading them during the steps added 0.8 MB to W4's growth)
    tiny = Workload(wl.name, wl.title, tuple(min(s, 64) for s in wl.sizes), 3, 2, wl.input,
                    wl.p, wl.recurrent)
    tstep, _ = builder(tiny)
    td = Data(tiny)
    tstep(td.x, td.y)
    del tstep, td

    data = Data(wl)
    step, rates = builder(wl)
    import gc
    gc.collect()
    gpu_base = _gpu_used_mb() if a.backend == "cuda" else None
    base_kb = _status_kb("VmRSS")
    reset_ok = _reset_peak()
    hwm_before = _status_kb("VmHWM")
    losses = []
    load_before = os.getloadavg()[0]
    t_start = time.perf_counter()
    for _ in range(a.warmup):
        data.refresh()
        losses.append(step(data.x, data.y))
    warm_s = time.perf_counter() - t_start
    times = []
    prof = None
    if a.profile:
        import cProfile
        prof = cProfile.Profile()
    other_cpu = 0.0
    timed = 0.0
    for _ in range(a.repeats):
        data.refresh()
        m0, o0 = _busy_s()
        if prof:
            prof.enable()
        t0 = time.perf_counter()
        losses.append(step(data.x, data.y))
        dt = time.perf_counter() - t0
        times.append(dt)
        if prof:
            prof.disable()
        m1, o1 = _busy_s()
        other_cpu += max(0.0, (m1 - m0) - (o1 - o0))
        timed += dt
    hwm_kb = _status_kb("VmHWM")
    if gpu_base is not None:
        info["gpu_growth_mb"] = _gpu_used_mb() - gpu_base
    info["load"] = (load_before, os.getloadavg()[0])
    info["omp_wait_policy"] = os.environ.get("OMP_WAIT_POLICY", "")
    if a.impl == "lifgrad":
        try:
            info["numba_threading_layer"] = numba.threading_layer()
        except ValueError:
            info["numba_threading_layer"] = "none used"
    info["other_cores"] = other_cpu / timed if timed > 0 else 0.0
    if prof:
        import pstats
        prof.dump_stats(a.profile)
        st = pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime")
        st.print_stats(25)
        st.sort_stats("cumulative").print_stats(25)
    info.update(times=times, warmup_s=warm_s, base_mb=base_kb / 1024, peak_mb=hwm_kb / 1024,
                growth_mb=(hwm_kb - base_kb) / 1024,
                mem_method="clear_refs+VmHWM" if reset_ok else "VmHWM (no reset)",
                hwm_before_mb=hwm_before / 1024,
                loss_first=float(losses[0]), loss_last=float(losses[-1]),
                finite=bool(all(math.isfinite(v) for v in losses)))
    try:
        data.refresh()
        info["rates"] = rates(data.x, data.y)
    except Exception as e:  # noqa: BLE001 - informative only
        info["rates_error"] = repr(e)
    print("RESULT " + json.dumps(info), flush=True)


def _gpu_used_mb():
    """Device memory in use (total - free, all allocations and caches of this
    process), after a synchronise."""
    from numba import cuda
    cuda.synchronize()
    free, total = cuda.current_context().get_memory_info()
    return (total - free) / 2**20


# -- parent ------------------------------------------------------------------------------

def run_child(impl, wl_name, repeats, warmup, threads, timeout, omp_wait="PASSIVE",
              backend="cpu"):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--impl", impl,
           "--workload", wl_name, "--repeats", str(repeats), "--warmup", str(warmup),
           "--threads", str(threads), "--backend", backend]
    env = dict(os.environ)
    for v in THREAD_VARS:
        env[v] = str(threads)
    if omp_wait:
        env["OMP_WAIT_POLICY"] = omp_wait
    else:
        env.pop("OMP_WAIT_POLICY", None)
    # OpenBLAS workers spin ~2^28 cycles after each product by default and then
    # steal the cores from whatever parallel code runs next; 2^4 lets them sleep.
    env.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                           cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout} s"}
    wall = time.perf_counter() - t0
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            res = json.loads(line[7:])
            res["wall_s"] = wall
            return res
    tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
    return {"error": f"exit {p.returncode}: " + " | ".join(tail)}


def _fmt_ratio(x):
    return "—" if x is None else f"{x:.2f}"


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def write_markdown(path, results, args, wl_names, impls, missing, started, elapsed):
    L = []
    L.append("# Training-step benchmark")
    L.append("")
    versions = {}
    for per in results.values():
        for r in per.values():
            versions.update(r.get("versions", {}))
    L.append(f"Generated by `python benchmarks/run.py {' '.join(args.argv)}` on "
             f"{started:%Y-%m-%d %H:%M}, {cpu_name()}, {os.cpu_count()} cores, "
             f"Python {platform.python_version()}; "
             + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) + f". Run took "
             f"{elapsed / 60:.1f} min.")
    L.append("")
    if getattr(args, "backend", "cpu") == "cuda":
        L.append("**Backend: cuda.** lifgrad runs its device-resident step "
                 "(`lifgrad.device`), SpikingJelly its model on the GPU; *mem MB* adds the "
                 "device memory in use after the steps minus before them (GPU, including "
                 "allocator caches).")
        L.append("")
    L.append(f"**Threads: {args.threads} per implementation** (NUMBA_NUM_THREADS, "
             f"OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, MKL_NUM_THREADS = {args.threads}, "
             f"`torch.set_num_threads({args.threads})`), OMP_WAIT_POLICY="
             f"{args.omp_wait or '(unset)'}, OPENBLAS_THREAD_TIMEOUT="
             f"{os.environ.get('OPENBLAS_THREAD_TIMEOUT', '4')}. float32. One step = forward over T + "
             f"membrane cross-entropy summed over steps + backward + Adam (lr 5e-4). "
             f"Each measurement in a fresh process; {args.rounds} round(s) alternating "
             f"{', '.join(impls)}; step ms = median over all timed steps (column *steps*) "
             f"after warm-up. Timings on a shared machine are noisy (about ±20%).")
    L.append("")
    if missing:
        L.append("Not installed (skipped): " + ", ".join(missing) + ".")
        L.append("")
    L.append("Ratio columns: this row's step time / the peer's (> 1 = slower than the peer). "
             "*vs floor*: / the NumPy GEMM floor (the dense matrix products the step needs, "
             "same threads, measured in every round right after lifgrad). *mem MB*: peak RSS growth over the post-build baseline "
             "(VmHWM after the steps − VmRSS before them, with VmHWM reset via "
             "/proc/self/clear_refs). *other load*: CPU cores busy with other processes "
             "during the timed steps (from /proc/stat minus this process's CPU time; the "
             "largest over the row's processes); above ~0.3 the row is disturbed.")
    L.append("")
    peers = [i for i in impls if i not in missing]
    head = ["workload", "implementation", "step ms", "steps"] + [f"vs {p}" for p in peers] + \
        ["vs floor", "mem MB", "other load"]
    L.append("| " + " | ".join(head) + " |")
    L.append("|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|")
    notes = []
    for w in wl_names:
        per = results.get(w, {})
        med = {k: statistics.median(r["times"]) * 1e3 for k, r in per.items()
               if r.get("times")}
        floor = med.get("floor")
        for impl in peers:
            r = per.get(impl)
            if r is None or not r.get("times"):
                err = (r or {}).get("error", "not run")
                L.append(f"| {w} | {impl} | failed | | " + " | ".join("" for _ in peers)
                         + " | | | |")
                notes.append(f"{w} {impl}: {err}")
                continue
            m = med[impl]
            ratios = [_fmt_ratio(m / med[p]) if p in med else "—" for p in peers]
            fl = _fmt_ratio(m / floor) if floor else "—"
            mem = r.get("growth_mb")
            memtxt = f"{mem:.0f}" if mem is not None else "—"
            if r.get("gpu_growth_mb") is not None:
                memtxt += f" (GPU {r['gpu_growth_mb']:.0f})"
            L.append(f"| {w} | {impl} | {m:.1f} | {len(r['times'])} | " + " | ".join(ratios)
                     + f" | {fl} | {memtxt} | {r.get('other_cores', 0):.2f} |")
        if floor:
            L.append(f"| {w} | *NumPy GEMM floor* | {floor:.1f} | "
                     f"{len(per['floor']['times'])} | " + " | ".join("" for _ in peers)
                     + " | 1.00 | | |")
    L.append("")
    L.append("## Workloads")
    L.append("")
    for w in wl_names:
        wl = WORKLOADS[w]
        line = f"- **{w} {wl.title}**: {wl.describe()}."
        per = results.get(w, {})
        counts = {len(r["times"]) for k, r in per.items() if k != "floor" and r.get("times")}
        if wl.max_repeats and not args.no_cap and args.repeats > wl.max_repeats:
            per_proc = max(1, math.ceil(wl.max_repeats / args.rounds))
            line += (f" **Repeats reduced** to {wl.max_repeats} (of {args.repeats}), i.e. "
                     f"{per_proc} timed step(s) per process x {args.rounds} round(s), "
                     f"warm-up {wl.warmup} step(s) per process: the peers' steps take "
                     f"seconds.")
        rates = {k: r["rates"] for k, r in per.items() if r.get("rates")}
        if rates:
            line += " Firing rates per layer on a fresh input after training steps: " + \
                "; ".join(f"{k} " + "/".join(f"{x:.3f}" for x in v) for k, v in rates.items()) \
                + "."
        first = {k: r["loss_first"] for k, r in per.items() if "loss_first" in r}
        if first:
            line += " Loss of the first step: " + ", ".join(
                f"{k} {v:.4f}" for k, v in first.items()) + "."
        fin = [k for k, r in per.items() if r.get("finite") is False]
        if fin:
            line += f" Non-finite loss in: {', '.join(fin)}."
        L.append(line)
        del counts
    L.append("")
    L.append("Firing rates and losses differ after training steps because the "
             "implementations' gradients differ (reset mapping, snnTorch's strict threshold, "
             "lifgrad's own initialisation RNG); snnTorch and torch share torch's "
             "initialisation, so their first-step losses agree.")
    L.append("")
    L.append("Floor parts (ms, median over rounds): ")
    L.append("")
    for w in wl_names:
        fl = results.get(w, {}).get("floor")
        if fl and fl.get("parts"):
            L.append(f"- {w}: " + ", ".join(f"{k} {v * 1e3:.2f}" for k, v in fl["parts"].items()))
    if notes:
        L.append("")
        L.append("## Failures")
        L.append("")
        for n in notes:
            L.append(f"- {n}")
    L.append("")
    with open(path, "w") as f:
        f.write("\n".join(L))


def parent(a, argv):
    started = datetime.datetime.now()
    t_start = time.perf_counter()
    wl_names = a.workloads
    impls = a.impls
    missing = [i for i in impls if importlib.util.find_spec(IMPL_MODULES[i]) is None]
    if missing:
        print(f"not installed, skipped: {', '.join(missing)}", flush=True)
    run_impls = [i for i in impls if i not in missing]
    results = {w: {} for w in wl_names}
    for w in wl_names:
        wl = WORKLOADS[w]
        total = a.repeats if (a.no_cap or not wl.max_repeats) else min(a.repeats, wl.max_repeats)
        reps = max(1, math.ceil(total / a.rounds))          # timed steps per process
        warm = a.warmup if a.warmup is not None else wl.warmup
        # the floor is measured in every round too, right after lifgrad, so the
        # two ratios' numerator and denominator see the same machine load
        order = list(run_impls)
        if not a.no_floor and a.backend == "cpu":
            order.insert(order.index("lifgrad") + 1 if "lifgrad" in order else len(order), "floor")
        for rnd in range(a.rounds):
            for impl in order:
                if impl == "floor":
                    res = run_child("floor", w, max(reps, 3), 1, a.threads, a.timeout, a.omp_wait)
                else:
                    res = run_child(impl, w, reps, warm, a.threads, a.timeout, a.omp_wait,
                                    a.backend)
                acc = results[w].setdefault(impl, {"times": []})
                if "error" in res:
                    acc.setdefault("error", res["error"])
                    print(f"{w} {impl} round {rnd}: FAILED {res['error']}", flush=True)
                    continue
                if impl == "floor":
                    times = acc["times"] + res["times"]
                    rounds = acc.get("parts_rounds", []) + [res.get("parts", {})]
                    acc.update(res)
                    acc.update(times=times, parts_rounds=rounds,   # parts: median over rounds
                               parts={k: statistics.median(r[k] for r in rounds if k in r)
                                      for k in res.get("parts", {})})
                    print(f"{w} {'floor':<12} round {rnd}: median "
                          f"{statistics.median(res['times']) * 1e3:9.1f} ms", flush=True)
                    continue
                times = acc["times"] + res["times"]
                growth = max(acc.get("growth_mb", -1e9), res["growth_mb"])
                other = max(acc.get("other_cores", 0.0), res["other_cores"])
                rounds = acc.get("per_round", []) + [statistics.median(res["times"])]
                acc.update(res)
                acc.update(times=times, growth_mb=growth, other_cores=other, per_round=rounds)
                print(f"{w} {impl:<12} round {rnd}: median {statistics.median(res['times']) * 1e3:9.1f}"
                      f" ms ({len(res['times'])} steps, warm-up {res['warmup_s']:.1f} s, "
                      f"mem +{res['growth_mb']:.0f} MB, other load {res['other_cores']:.2f} "
                      f"cores, process {res['wall_s']:.1f} s)",
                      flush=True)
    elapsed = time.perf_counter() - t_start
    a.argv = argv
    write_markdown(a.out, results, a, wl_names, impls, missing, started, elapsed)
    js = a.json or os.path.splitext(a.out)[0] + ".json"
    with open(js, "w") as f:
        json.dump({"argv": argv, "threads": a.threads, "started": started.isoformat(),
                   "elapsed_s": elapsed, "results": results}, f, indent=1)
    print(f"wrote {a.out} and {js} ({elapsed / 60:.1f} min)")
    with open(a.out) as f:
        print(f.read())


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    ap.add_argument("--impls", nargs="+", default=list(IMPLS), choices=list(IMPLS))
    ap.add_argument("--repeats", type=int, default=24,
                    help="timed steps per implementation and workload, split over --rounds "
                         "processes (W5 capped at 3 unless --no-cap)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="fresh processes per implementation and workload, alternating "
                         "lifgrad, snntorch, spikingjelly, torch, lifgrad, ...")
    ap.add_argument("--warmup", type=int, default=None,
                    help="untimed steps per process (default: 2, W5: 1)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--backend", choices=["cpu", "cuda"], default="cpu",
                    help="cuda: lifgrad's device-resident step (lifgrad.device) against "
                         "SpikingJelly on the GPU (its own fused CUDA kernels); "
                         "adds device-memory growth, no NumPy floor")
    ap.add_argument("--omp-wait-policy", dest="omp_wait", default="PASSIVE",
                    help="OMP_WAIT_POLICY for every process ('' leaves it unset); PASSIVE "
                         "keeps OpenMP barriers from spinning when other processes share "
                         "the cores")
    ap.add_argument("--no-cap", action="store_true", help="ignore the W5 repeats cap")
    ap.add_argument("--no-floor", action="store_true", help="skip the NumPy GEMM floor")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per process")
    ap.add_argument("--out", default=None,
                    help="markdown table (default: benchmarks/results.md, results_cuda.md "
                         "with --backend cuda)")
    ap.add_argument("--json", default=None, help="raw results (default: --out with .json)")
    # child mode
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--impl", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--workload", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--profile", default=None,
                    help="(with --child) cProfile the timed steps into this file")
    ap.add_argument("--render", default=None, metavar="JSON",
                    help="only rewrite --out from a results JSON of an earlier run")
    a = ap.parse_args(argv)
    if a.out is None:
        a.out = os.path.join(HERE, "results_cuda.md" if a.backend == "cuda" else "results.md")
    if a.backend == "cuda" and not a.child:
        a.impls = [i for i in a.impls if i in ("lifgrad", "spikingjelly")]
    if a.render:
        with open(a.render) as f:
            d = json.load(f)
        old = ap.parse_args(d["argv"])
        old.argv = d["argv"]
        results = d["results"]
        wl_names = [w for w in old.workloads if w in results]
        missing = [i for i in old.impls
                   if not any(i in per for per in results.values())]
        write_markdown(a.out, results, old, wl_names, old.impls, missing,
                       datetime.datetime.fromisoformat(d["started"]), d["elapsed_s"])
        print(f"wrote {a.out}")
        return
    if a.child:
        if a.warmup is None:
            a.warmup = WORKLOADS[a.workload].warmup
        child(a)
    else:
        parent(a, argv)


if __name__ == "__main__":
    main()
