"""W5 (784-1000-10 LIF, T=2000, batch 16, Poisson 0.2): the full-trace backward
against the checkpointed one (Sequential.forward(..., checkpoint_every=K)),
each in a fresh process, alternating; step time (median), peak memory growth
over the RSS before the first step (VmHWM after the first and the timed
steps, reset through /proc/self/clear_refs), and whether the gradients are
bitwise equal.

    python benchmarks/long_sequence.py [--K 64] [--rounds 5] [--steps 3] [--baseline DIR]

``--baseline DIR`` also runs both from another checkout of lifgrad (e.g. a git
worktree of main) right after this one's in every round: before/after step
times, memory, and whether the gradients have the same bits in both.

Each round runs the two one after the other, so the ratio of a round's two
medians (printed per round) sees one machine load; on this shared 2-core
machine single rounds ranged from 1.28 to 1.81, hence 5 rounds by default.
"""
import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import os, sys, time, json, hashlib
import numpy as np
import lifgrad
from lifgrad import LIFConfig, losses
from lifgrad.network import Dense, Sequential

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024.0
K = int(sys.argv[1]); steps = int(sys.argv[2])
rng = np.random.default_rng(0)
net = Sequential([Dense(784, 1000, LIFConfig(surrogate="atan"), alpha=0.95),
                  Dense(1000, 10, LIFConfig(surrogate="atan"), alpha=0.95)], dtype="float32")
T, B = 2000, 16
x = (rng.random((T, B, 784)) < 0.2).astype(np.float32)
y = rng.integers(0, 10, B)
ck = None if K == 0 else K
def step():
    out, tr = net.forward(x, checkpoint_every=ck)
    lo = losses.ce_membrane(None, tr.layers[-1].trace.u, y)
    return net.backward(tr, du=lo.du)
# memory: peak over the first step and the timed ones, over the RSS before
# the first step (the network keeps its step-sized buffers from the first
# step on, so growth measured after a warm-up step would miss the trace)
base = status("VmRSS")
open("/proc/self/clear_refs", "w").write("5")
step()                                    # warm-up (kernels loaded, buffers made)
times = []
for _ in range(steps):
    t0 = time.perf_counter(); g = step(); times.append(time.perf_counter() - t0)
peak = status("VmHWM")
digest = hashlib.sha256(b"".join(np.ascontiguousarray(g[k]).tobytes() for k in sorted(g))).hexdigest()
print(json.dumps(dict(times=times, mem=peak - base, digest=digest)))
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--K", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--baseline", default=None, metavar="DIR",
                    help="another lifgrad checkout to run as well, alternating")
    a = ap.parse_args()
    env = dict(os.environ)          # nothing set: the user's environment
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    runs_of = [("full", 0, here), ("checkpointed", a.K, here)]
    if a.baseline:
        base = os.path.abspath(a.baseline)
        runs_of += [("full@baseline", 0, base), ("checkpointed@baseline", a.K, base)]
    res = {name: [] for name, _, _ in runs_of}
    for _ in range(a.rounds):
        for name, K, cwd in runs_of:     # python -c: the cwd's lifgrad comes first
            out = subprocess.run([sys.executable, "-c", CHILD, str(K), str(a.steps)], env=env,
                                 capture_output=True, text=True, check=True, cwd=cwd).stdout
            res[name].append(json.loads(out.strip().splitlines()[-1]))
    import statistics
    rows = {}
    for name, runs in res.items():
        times = [t for r in runs for t in r["times"]]
        rows[name] = (statistics.median(times) * 1e3, max(r["mem"] for r in runs),
                      {r["digest"] for r in runs})
    if a.baseline:
        print(f"before/after ({base} / this checkout), {a.rounds} rounds alternating:")
        print("| backward | after ms | before ms | after/before | round ratios | "
              "mem MB after / before | same gradient bits |\n|---|---:|---:|---:|---|---:|---|")
        for name in ("full", "checkpointed"):
            aft, bef = rows[name], rows[name + "@baseline"]
            per = [statistics.median(x["times"]) / statistics.median(y["times"])
                   for x, y in zip(res[name], res[name + "@baseline"])]
            print(f"| {name} | {aft[0]:.0f} | {bef[0]:.0f} | {aft[0] / bef[0]:.2f} | "
                  + ", ".join(f"{r:.2f}" for r in per)
                  + f" | {aft[1]:.0f} / {bef[1]:.0f} | {aft[2] == bef[2] and len(aft[2]) == 1} |")
    f, c = rows["full"], rows["checkpointed"]
    print(f"W5: T=2000, B=16, 784-1000-10, float32, 2 threads; K={a.K}; "
          f"{a.rounds} rounds x {a.steps} steps each")
    print("| backward | step ms | peak memory growth MB |\n|---|---:|---:|")
    print(f"| full trace | {f[0]:.0f} | {f[1]:.0f} |\n| checkpointed | {c[0]:.0f} | {c[1]:.0f} |")
    print(f"time ratio {c[0] / f[0]:.2f}, memory ratio {c[1] / f[1]:.3f}, gradients bitwise "
          f"equal: {f[2] == c[2] and len(f[2]) == 1}")
    paired = [statistics.median(rc["times"]) / statistics.median(rf["times"])
              for rf, rc in zip(res["full"], res["checkpointed"])]
    print("time ratio per round: " + ", ".join(f"{r:.2f}" for r in paired)
          + f" (median {statistics.median(paired):.2f})")


if __name__ == "__main__":
    main()
