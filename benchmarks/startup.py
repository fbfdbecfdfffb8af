"""Process start to the first finished W2 training step (import, build, one
step), run twice in fresh processes: the first may compile the Numba kernels,
the second loads them from the on-disk cache.

    python benchmarks/startup.py [--clear-cache]
"""
import os
import subprocess
import sys
import time

CHILD = r"""
import time; t0 = time.perf_counter()
import numpy as np
import lifgrad
from lifgrad import LIFConfig, losses, optim
from lifgrad.network import Dense, Sequential
t_import = time.perf_counter() - t0
rng = np.random.default_rng(0)
net = Sequential([Dense(784, 1000, LIFConfig(surrogate="atan"), alpha=0.95),
                  Dense(1000, 10, LIFConfig(surrogate="atan"), alpha=0.95)], dtype="float32")
x = (rng.random((25, 128, 784)) < 0.2).astype(np.float32)
y = rng.integers(0, 10, 128)
opt = optim.Adam(lr=5e-4)
out, tr = net.forward(x)
lo = losses.ce_membrane(None, tr.layers[-1].trace.u, y)
opt.step(net.params, net.backward(tr, du=lo.du))
print(f"{t_import:.2f} {time.perf_counter() - t0:.2f}")
"""


def main():
    if "--clear-cache" in sys.argv:
        import glob
        import lifgrad
        root = os.path.dirname(lifgrad.__file__)
        for f in glob.glob(os.path.join(root, "**", "__pycache__", "*.nb[ic]"), recursive=True):
            os.remove(f)
        print("numba cache cleared")
    env = dict(os.environ, NUMBA_NUM_THREADS="2", OPENBLAS_NUM_THREADS="1")
    for run in ("first", "second"):
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                             env=env, check=True).stdout.split()
        wall = time.perf_counter() - t0
        print(f"{run} process: import {out[0]} s, first W2 step done at {out[1]} s "
              f"(process wall {wall:.2f} s)")


if __name__ == "__main__":
    main()
