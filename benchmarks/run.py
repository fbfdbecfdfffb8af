"""Training-step benchmark: lifgrad, as a user runs it, against snnTorch,
SpikingJelly, Norse and plain PyTorch.

    python benchmarks/run.py                                   # W1-W5 and ON512-ON4096
    python benchmarks/run.py --workloads W1 W2 --repeats 12    # a subset
    python benchmarks/run.py --impls lifgrad torch --out /tmp/r.md

Every measurement runs in a fresh process (``benchmarks/user_step.py``) that
starts with the imports of its implementation in the order it names, in the
environment this script was started in: nothing is set for it (no thread
variable, no allocator setting).  lifgrad is measured in three import orders:

* ``lifgrad``: numpy, torch, then lifgrad (the README's order: a user of
  ``lifgrad.verify`` has torch loaded);
* ``lifgrad[torch-first]``: torch, numpy, lifgrad;
* ``lifgrad[lifgrad-first]``: lifgrad, numpy, torch.

The implementations alternate (lifgrad, lifgrad[torch-first], ..., torch,
then again when ``--rounds`` > 1); each process times ``--repeats``/rounds
steps after its warm-up and reports its step times and peak-RSS growth over
the RSS after the model is built (the warm-up's first step loads the compiled
kernels or initialises the framework: that counts).  Before the first round,
one process per workload runs a tiny copy of it with lifgrad, so the kernels
are in Numba's cache (their one-time compile is measured by startup.py, not
here).  The NumPy GEMM floor of each workload is timed in every round right
after lifgrad.  Workloads and implementations: workloads.py.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from machine import cpu_name  # noqa: E402
from workloads import IMPL_MODULES, IMPLS, WORKLOADS  # noqa: E402  (numpy only)

LIFGRAD_ORDERS = ("lifgrad", "lifgrad[torch-first]", "lifgrad[lifgrad-first]")
BASELINE = "lifgrad@baseline"      # --baseline DIR: another checkout of lifgrad, e.g. main


def _module_of(impl):
    return IMPL_MODULES["lifgrad" if impl.startswith("lifgrad") else impl]


# -- parent ------------------------------------------------------------------------------

def run_child(impl, wl_name, repeats, warmup, timeout, backend="cpu", threads=None,
              tiny=False, baseline=None):
    root = ROOT
    if impl == BASELINE:            # the other checkout's own child, workloads and build
        impl, root = "lifgrad", baseline
    cmd = [sys.executable, os.path.join(root, "benchmarks", "user_step.py"), "--impl", impl,
           "--workload", wl_name, "--repeats", str(repeats), "--warmup", str(warmup),
           "--backend", backend]
    if threads:
        cmd += ["--threads", str(threads)]
    if tiny:
        cmd.append("--tiny")
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=root)
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




def _med_ms(r):
    return statistics.median(r["times"]) * 1e3 if r and r.get("times") else None


def _spread(xs):
    """max / min of a list of per-round medians (1.00 = no spread)."""
    return max(xs) / min(xs) if xs and min(xs) > 0 else float("nan")


def _before_after(results, wl_names, baseline):
    """The table of ``--baseline``: this checkout's lifgrad against the other
    checkout's, both in the README's import order, alternating in every round."""
    L = [f"## Before / after: `lifgrad` (this checkout) against `{BASELINE}` "
         f"({baseline or 'another checkout'})", "",
         "Medians over all timed steps; *round ratios*: after/before of each round's "
         "medians, in the order run (the two processes ran back to back); *spread*: max/min "
         "of one side's round medians, the run-to-run noise to judge the ratio by.", "",
         "| workload | after ms | before ms | after/before | round ratios | spread after | "
         "spread before | mem MB after / before |",
         "|---|---:|---:|---:|---|---:|---:|---:|"]
    for w in wl_names:
        per = results.get(w, {})
        a, b = per.get("lifgrad"), per.get(BASELINE)
        if not (a and b and a.get("times") and b.get("times")):
            L.append(f"| {w} | failed | | | | | | |")
            continue
        ma, mb = _med_ms(a), _med_ms(b)
        ra, rb = a.get("per_round", []), b.get("per_round", [])
        ratios = ", ".join(f"{x / y:.2f}" for x, y in zip(ra, rb))
        L.append(f"| {w} | {ma:.1f} | {mb:.1f} | {ma / mb:.2f} | {ratios} | "
                 f"{_spread(ra):.2f} | {_spread(rb):.2f} | "
                 f"{a.get('growth_mb', float('nan')):.0f} / {b.get('growth_mb', float('nan')):.0f} |")
    L.append("")
    return L


def write_markdown(path, results, args, wl_names, impls, missing, started, elapsed):
    L = []
    L.append("# Training-step benchmark")
    L.append("")
    versions = {}
    for per in results.values():
        for r in per.values():
            versions.update(r.get("versions", {}))
    env = {}
    for per in results.values():
        for r in per.values():
            env.update(r.get("env_threads", {}))
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
    L.append("**The user's path.** Each measurement is a fresh process "
             "(`benchmarks/user_step.py`) that first imports its libraries in the order its "
             "name gives, in the environment of this run, with nothing set by the harness: "
             + ("thread variables in that environment: " + ", ".join(f"{k}={v}" for k, v in
                                                                      sorted(env.items()))
                if env else "no thread variable was set (OMP_*, OPENBLAS_*, MKL_*, "
                "NUMBA_NUM_THREADS all unset)")
             + ("; `--threads " + str(args.threads) + "` called torch.set_num_threads and "
                "lifgrad.set_num_threads" if args.threads else
                "; every library used its default number of threads")
             + ". `lifgrad` = numpy, torch, then lifgrad (the README's order); "
             "`lifgrad[torch-first]` = torch, numpy, lifgrad; `lifgrad[lifgrad-first]` = "
             "lifgrad, numpy, torch; the peers import numpy, torch, then the framework. "
             "float32. One step = forward over T + loss + backward + Adam (lr 5e-4); the "
             "loss is the membrane cross-entropy summed over steps (W1-W5) or the sum of "
             f"the output spikes (ON*). {args.rounds} round(s) alternating "
             f"{', '.join(impls)}; step ms = median over all timed steps (column *steps*) "
             "after warm-up. Timings on a shared machine are noisy (about ±20%).")
    L.append("")
    if missing:
        L.append("Not installed (skipped): " + ", ".join(missing) + ".")
        L.append("")
    L.append("*vs fastest peer*: this row's step time / the fastest peer's (< 1 = faster). "
             "*vs floor*: / the NumPy GEMM floor (the dense matrix products the step needs, "
             "measured in every round right after lifgrad). *mem MB*: peak RSS growth over "
             "the RSS after the model is built (VmHWM after the steps − VmRSS before the "
             "first step, VmHWM reset via /proc/self/clear_refs): the first step's loading "
             "of compiled kernels (lifgrad: Numba's import and runtime) or the framework's "
             "lazy initialisation is included. *peak MB*: the process's peak RSS. *other "
             "load*: CPU cores busy with other processes during the timed steps (the "
             "largest over the row's processes); above ~0.3 the row is disturbed.")
    L.append("")
    ours = [i for i in impls if i.startswith("lifgrad") and i not in missing]
    peers = [i for i in impls if not i.startswith("lifgrad") and i not in missing]
    head = ["workload", "implementation", "step ms", "steps", "vs fastest peer", "vs floor",
            "mem MB", "peak MB", "other load"]
    L.append("| " + " | ".join(head) + " |")
    L.append("|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|")
    notes = []
    summary = []
    for w in wl_names:
        per = results.get(w, {})
        med = {k: _med_ms(r) for k, r in per.items() if _med_ms(r) is not None}
        floor = med.get("floor")
        peer_med = {p: med[p] for p in peers if p in med}
        fastest = min(peer_med, key=peer_med.get) if peer_med else None
        mems = {p: per[p]["growth_mb"] for p in peers if p in med and "growth_mb" in per[p]}
        smallest = min(mems, key=mems.get) if mems else None
        for impl in ours + peers:
            r = per.get(impl)
            if r is None or not r.get("times"):
                err = (r or {}).get("error", "not run")
                L.append(f"| {w} | {impl} | failed | | | | | | |")
                notes.append(f"{w} {impl}: {err}")
                continue
            m = med[impl]
            vs = _fmt_ratio(m / peer_med[fastest]) if fastest else "—"
            fl = _fmt_ratio(m / floor) if floor else "—"
            mem = r.get("growth_mb")
            memtxt = f"{mem:.0f}" if mem is not None else "—"
            if r.get("gpu_growth_mb") is not None:
                memtxt += f" (GPU {r['gpu_growth_mb']:.0f})"
            L.append(f"| {w} | {impl} | {m:.1f} | {len(r['times'])} | {vs} | {fl} | {memtxt} | "
                     f"{r.get('peak_mb', 0):.0f} | {r.get('other_cores', 0):.2f} |")
            if impl in ours and fastest:
                summary.append((w, impl, peer_med[fastest] / m, fastest,
                                (mem / mems[smallest]) if smallest and mem is not None else None,
                                smallest))
        if floor:
            L.append(f"| {w} | *NumPy GEMM floor* | {floor:.1f} | "
                     f"{len(per['floor']['times'])} | | 1.00 | | | |")
    L.append("")
    if summary:
        L.append("## Targets (issue 15): at least 1.5x faster than the fastest peer, "
                 "memory growth at most half the smallest peer's")
        L.append("")
        L.append("| workload | lifgrad import order | speed-up over the fastest peer | "
                 "memory / the smallest peer's | met |")
        L.append("|---|---|---:|---:|---|")
        for w, impl, sp, fp, mr, sp_mem in summary:
            ok_t = sp >= 1.5
            ok_m = mr is not None and mr <= 0.5
            L.append(f"| {w} | {impl} | {sp:.2f}x ({fp}) | "
                     + (f"{mr:.2f} ({sp_mem})" if mr is not None else "—")
                     + f" | {'yes' if ok_t and ok_m else ('time' if ok_t else '') + ('' if ok_t else 'no: time') + ('' if ok_m else ', memory' if ok_t else ', memory')} |")
        L.append("")
    if any(BASELINE in results.get(w, {}) for w in wl_names):
        L += _before_after(results, wl_names, getattr(args, "baseline", None))
    L.append("## Workloads")
    L.append("")
    for w in wl_names:
        wl = WORKLOADS[w]
        line = f"- **{w} {wl.title}**: {wl.describe()}."
        per = results.get(w, {})
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
        fin = [k for k, r in per.items() if r.get("finite") is False]
        if fin:
            line += f" Non-finite loss in: {', '.join(fin)}."
        L.append(line)
    L.append("")
    L.append("Firing rates and losses differ because the implementations' dynamics and "
             "initialisations differ in details (workloads.py: reset mapping, snnTorch's "
             "strict threshold, Norse's synaptic current); only speed and memory are compared.")
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
    missing = [i for i in impls if importlib.util.find_spec(_module_of(i)) is None]
    if missing:
        print(f"not installed, skipped: {', '.join(missing)}", flush=True)
    run_impls = [i for i in impls if i not in missing]
    results = {w: {} for w in wl_names}
    if a.baseline:                  # alternates with the first lifgrad order
        first = next((k for k, i in enumerate(run_impls) if i.startswith("lifgrad")), -1)
        run_impls.insert(first + 1, BASELINE)
        impls = impls[:first + 1] + [BASELINE] + impls[first + 1:]
    if any(i.startswith("lifgrad") for i in run_impls):
        for w in wl_names:          # the kernels into Numba's cache (not measured)
            for impl in ("lifgrad", BASELINE) if a.baseline else ("lifgrad",):
                res = run_child(impl, w, 1, 1, a.timeout, a.backend, a.threads, tiny=True,
                                baseline=a.baseline)
                print(f"{w} {impl} primed the kernel cache"
                      + (f": FAILED {res['error']}" if "error" in res else ""), flush=True)
    for w in wl_names:
        wl = WORKLOADS[w]
        total = a.repeats if (a.no_cap or not wl.max_repeats) else min(a.repeats, wl.max_repeats)
        reps = max(1, math.ceil(total / a.rounds))          # timed steps per process
        warm = a.warmup if a.warmup is not None else wl.warmup
        # the floor is measured in every round too, right after lifgrad, so the
        # two ratios' numerator and denominator see the same machine load
        order = list(run_impls)
        if not a.no_floor and a.backend == "cpu":
            last = max((k for k, i in enumerate(order) if i.startswith("lifgrad")), default=-1)
            order.insert(last + 1, "floor")
        for rnd in range(a.rounds):
            for impl in order:
                if impl == "floor":
                    res = run_child("floor", w, max(reps, 3), 1, a.timeout)
                else:
                    res = run_child(impl, w, reps, warm, a.timeout, a.backend, a.threads,
                                    baseline=a.baseline)
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
                    print(f"{w} {'floor':<24} round {rnd}: median "
                          f"{statistics.median(res['times']) * 1e3:9.1f} ms", flush=True)
                    continue
                times = acc["times"] + res["times"]
                growth = max(acc.get("growth_mb", -1e9), res["growth_mb"])
                peak = max(acc.get("peak_mb", 0.0), res["peak_mb"])
                other = max(acc.get("other_cores", 0.0), res["other_cores"])
                rounds = acc.get("per_round", []) + [statistics.median(res["times"])]
                acc.update(res)
                acc.update(times=times, growth_mb=growth, peak_mb=peak, other_cores=other,
                           per_round=rounds)
                print(f"{w} {impl:<24} round {rnd}: median "
                      f"{statistics.median(res['times']) * 1e3:9.1f} ms ({len(res['times'])} "
                      f"steps, warm-up {res['warmup_s']:.1f} s, mem +{res['growth_mb']:.0f} MB, "
                      f"peak {res['peak_mb']:.0f} MB, other load {res['other_cores']:.2f} cores, "
                      f"process {res['wall_s']:.1f} s)", flush=True)
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
    all_impls = list(LIFGRAD_ORDERS) + [i for i in IMPLS if i != "lifgrad"]
    ap.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    ap.add_argument("--impls", nargs="+", default=all_impls, choices=all_impls)
    ap.add_argument("--repeats", type=int, default=24,
                    help="timed steps per implementation and workload, split over --rounds "
                         "processes (W5 capped at 3, ON* at 6, unless --no-cap)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="fresh processes per implementation and workload, alternating")
    ap.add_argument("--warmup", type=int, default=None,
                    help="untimed steps per process (default: 2, W5 and ON*: 1)")
    ap.add_argument("--threads", type=int, default=None,
                    help="call torch.set_num_threads(N) and lifgrad.set_num_threads(N) in "
                         "every process (default: each library's own default)")
    ap.add_argument("--backend", choices=["cpu", "cuda"], default="cpu",
                    help="cuda: lifgrad's device-resident step (lifgrad.device) against "
                         "SpikingJelly on the GPU (its own fused CUDA kernels); "
                         "adds device-memory growth, no NumPy floor")
    ap.add_argument("--no-cap", action="store_true", help="ignore the repeats caps")
    ap.add_argument("--no-floor", action="store_true", help="skip the NumPy GEMM floor")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per process")
    ap.add_argument("--out", default=None,
                    help="markdown table (default: benchmarks/results.md, results_cuda.md "
                         "with --backend cuda)")
    ap.add_argument("--json", default=None, help="raw results (default: --out with .json)")
    ap.add_argument("--render", default=None, metavar="JSON",
                    help="only rewrite --out from a results JSON of an earlier run")
    ap.add_argument("--baseline", default=None, metavar="DIR",
                    help="also run lifgrad from another checkout (its own user_step.py, "
                         "workloads and built kernels, e.g. a git worktree of main), as "
                         f"'{BASELINE}' right after 'lifgrad' in every round: before/after "
                         "ratios in one run")
    a = ap.parse_args(argv)
    if a.baseline:
        a.baseline = os.path.abspath(a.baseline)
        if not os.path.isfile(os.path.join(a.baseline, "benchmarks", "user_step.py")):
            ap.error(f"--baseline: no benchmarks/user_step.py under {a.baseline}")
    if a.out is None:
        a.out = os.path.join(HERE, "results_cuda.md" if a.backend == "cuda" else "results.md")
    if a.backend == "cuda":
        a.impls = [i for i in a.impls if i.startswith("lifgrad") or i == "spikingjelly"]
    if a.render:
        with open(a.render) as f:
            d = json.load(f)
        old = ap.parse_args(d["argv"])
        old.argv = d["argv"]
        results = d["results"]
        wl_names = [w for w in old.workloads if w in results]
        missing = [i for i in old.impls if not any(i in per for per in results.values())]
        write_markdown(a.out, results, old, wl_names, old.impls, missing,
                       datetime.datetime.fromisoformat(d["started"]), d["elapsed_s"])
        print(f"wrote {a.out}")
        return
    parent(a, argv)


if __name__ == "__main__":
    main()
