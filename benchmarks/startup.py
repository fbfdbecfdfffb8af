"""What a new user waits for: the first training step, `lifgrad demo` and
`lifgrad check --quick`, cold (nothing compiled or cached) and warm.

    python benchmarks/startup.py                 # this checkout's venv
    python benchmarks/startup.py --fresh-clone   # git clone into a temporary folder,
                                                 # `make venv` there (timed), then the same
    python benchmarks/startup.py --fresh-clone --modes aot --user-commands
                                                 # also `make peers` (timed) and the README's
                                                 # commands: verify all, a recipe, compare()

``--user-commands`` adds, with the ahead-of-time kernels, `lifgrad verify all
--json`, `lifgrad train --config recipes/yinyang.json` and the README's
``compare()`` example saved as a script (numpy and torch imported first, as
written there), each cold and warm.

Each figure is the wall time of a fresh process, run twice: *cold* with an
empty Numba cache (``NUMBA_CACHE_DIR`` pointed at a new, empty folder: the only
variable this script sets, and it changes nothing but where Numba caches) and
*warm* right after, with the same folder.  Both kernel paths are measured:
``aot`` (the kernels compiled ahead of time by ``make``: what the README's
commands give) and ``jit`` (``LIFGRAD_KERNELS=jit``: Numba compiles on first
use, what a checkout without the build gets).  The first training step is that
of the demo network (64-128-10 on digits, T=16, batch 32), timed from before
``import lifgrad``.  Writes ``benchmarks/startup.md`` (``--out``).
"""
from __future__ import annotations

import argparse
import datetime
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

FIRST_STEP = r"""
import time; t0 = time.perf_counter()
import numpy as np
import lifgrad
from lifgrad import data, losses, optim, train
from lifgrad.cli import DEMO_CONFIG
t_import = time.perf_counter() - t0
cfg = train.TrainConfig.from_dict(dict(DEMO_CONFIG, epochs=1))
ds = data.load("digits", seed=cfg.seed)
net = train.build_network(cfg, ds.x_train.shape[1], 10)
opt = optim.Adam(lr=cfg.lr)
x, y = ds.x_train[:cfg.batch_size], ds.y_train[:cfg.batch_size]
out, tr = net.forward(x, T=cfg.T)
lo = losses.get(cfg.loss)(None, tr.layers[-1].trace.u, y)
opt.step(net.params, net.backward(tr, du=lo.du))
import sys
print(f"RESULT {t_import:.3f} {time.perf_counter() - t0:.3f} {'numba' in sys.modules}")
"""

def _run(cmd, env, cwd):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    wall = time.perf_counter() - t0
    if p.returncode not in (0,):
        raise RuntimeError(f"{' '.join(cmd[:3])}... exit {p.returncode}: {p.stderr[-2000:]}")
    return wall, p.stdout, p.stderr


def _readme_compare_example(root):
    """The README's compare() example (the block that imports spikingjelly), as a file."""
    import re
    with open(os.path.join(root, "README.md")) as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), re.S)
    code = next(b for b in blocks if "from lifgrad.verify import compare" in b)
    path = os.path.join(tempfile.mkdtemp(prefix="lifgrad-readme-"), "compare_example.py")
    with open(path, "w") as f:
        f.write(code)
    return path


def measure_user_commands(python, lifgrad_bin, root):
    """The README's verify / recipe / compare() commands, cold then warm (aot)."""
    rows = []
    cache = tempfile.mkdtemp(prefix="lifgrad-numba-cache-")
    env = dict(os.environ, NUMBA_CACHE_DIR=cache, LIFGRAD_KERNELS="aot")
    out = tempfile.mkdtemp(prefix="lifgrad-recipe-")
    script = _readme_compare_example(root)
    try:
        for state in ("cold", "warm"):
            wall, so, se = _run([lifgrad_bin, "verify", "all", "--json"], env, root)
            import json
            d = json.loads(so)
            rows.append(("aot", state, "lifgrad verify all --json", wall,
                         f"{len(d['cases'])} cases, {d['passed']} pass"))
            wall, so, se = _run([lifgrad_bin, "train", "--config", "recipes/yinyang.json",
                                 "--out", os.path.join(out, state)], env, root)
            acc = [ln for ln in (so + se).splitlines() if "test" in ln and "acc" in ln]
            rows.append(("aot", state, "lifgrad train --config recipes/yinyang.json", wall,
                         acc[-1].strip()[:80] if acc else ""))
            wall, so, se = _run([python, script], env, root)
            rows.append(("aot", state, "README compare() example (a script)", wall,
                         so.strip().splitlines()[0][:80] if so.strip() else ""))
        print("user commands: done", flush=True)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(os.path.dirname(script), ignore_errors=True)
    return rows


def measure(python, lifgrad_bin, root, modes=("aot", "jit")):
    rows = []
    for mode in modes:
        cache = tempfile.mkdtemp(prefix="lifgrad-numba-cache-")
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, LIFGRAD_KERNELS=mode)
        out = tempfile.mkdtemp(prefix="lifgrad-demo-")
        try:
            for state in ("cold", "warm"):
                wall, so, se = _run([python, "-c", FIRST_STEP], env, root)
                res = so.split("RESULT ")[-1].split()
                rows.append((mode, state, "first training step (from before import)",
                             float(res[1]), f"import {float(res[0]):.2f} s; numba loaded: "
                                            f"{res[2]}; process {wall:.1f} s"))
                if state == "cold" and mode == "jit":
                    shutil.rmtree(cache)          # every command starts cold
                    os.makedirs(cache)
                wall, so, se = _run([lifgrad_bin, "demo", "--quiet", "--out", out], env, root)
                acc = [ln for ln in so.splitlines() if "test accuracy" in ln]
                rows.append((mode, state, "lifgrad demo", wall,
                             acc[0].strip() if acc else ""))
                if state == "cold" and mode == "jit":
                    shutil.rmtree(cache)
                    os.makedirs(cache)
                wall, so, se = _run([lifgrad_bin, "check", "--quick"], env, root)
                rows.append((mode, state, "lifgrad check --quick", wall, so.strip().splitlines()[-1]
                             if so.strip() else ""))
                if state == "cold" and mode == "jit":
                    # warm runs of the three commands share the cache the cold runs filled
                    pass
            print(f"{mode}: done", flush=True)
        finally:
            shutil.rmtree(cache, ignore_errors=True)
            shutil.rmtree(out, ignore_errors=True)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fresh-clone", action="store_true",
                    help="clone this repository into a temporary folder and `make venv` there")
    ap.add_argument("--modes", nargs="+", default=["aot", "jit"], choices=["aot", "jit"])
    ap.add_argument("--user-commands", action="store_true",
                    help="also the README's verify all, a recipe and compare() (needs the peers: "
                         "with --fresh-clone, `make peers` is run and timed)")
    ap.add_argument("--out", default=os.path.join(HERE, "startup.md"))
    a = ap.parse_args(argv)
    started = datetime.datetime.now()
    setup = []
    root = ROOT
    tmp = None
    if a.fresh_clone:
        tmp = tempfile.mkdtemp(prefix="lifgrad-clone-")
        root = os.path.join(tmp, "lifgrad")
        wall, _, _ = _run(["git", "clone", "-q", ROOT, root], dict(os.environ), tmp)
        setup.append(("git clone", wall))
        env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
        t0 = time.perf_counter()
        _run(["make", "-s", ".venv/.stamp-base"], env, root)
        setup.append(("make: venv and `pip install -e .[dev]`", time.perf_counter() - t0))
        t0 = time.perf_counter()
        _run(["make", "-s", "venv"], env, root)
        setup.append(("make: kernels compiled ahead of time", time.perf_counter() - t0))
        if a.user_commands:
            t0 = time.perf_counter()
            _run(["make", "-s", ".venv/.stamp-peers"], env, root)
            setup.append(("make: the peer frameworks (torch, snnTorch, ..., JAX)",
                          time.perf_counter() - t0))
    python = os.path.join(root, ".venv", "bin", "python")
    lifgrad_bin = os.path.join(root, ".venv", "bin", "lifgrad")
    try:
        rows = measure(python, lifgrad_bin, root, a.modes)
        if a.user_commands:
            rows += measure_user_commands(python, lifgrad_bin, root)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    L = ["# Start-up: what a new user waits for", "",
         f"`python benchmarks/startup.py {' '.join(argv if argv is not None else sys.argv[1:])}` "
         f"on {started:%Y-%m-%d %H:%M}, {os.cpu_count()} cores"
         + (", in a fresh clone" if a.fresh_clone else ", in this checkout") + ".", ""]
    if setup:
        L += ["| set-up step | seconds |", "|---|---:|"]
        L += [f"| {k} | {v:.1f} |" for k, v in setup]
        L.append("")
    L += ["Wall seconds of fresh processes; *cold*: empty Numba cache, *warm*: the second run. "
          "*aot*: the kernels compiled ahead of time by `make` (the README's path); *jit*: "
          "`LIFGRAD_KERNELS=jit`, Numba compiling on first use (each cold command starts from an "
          "empty cache).", "",
          "| kernels | cache | what | seconds | notes |", "|---|---|---|---:|---|"]
    L += [f"| {m} | {s} | {w} | {t:.1f} | {n} |" for m, s, w, t, n in rows]
    L.append("")
    with open(a.out, "w") as f:
        f.write("\n".join(L))
    print("\n".join(L))


if __name__ == "__main__":
    main()
