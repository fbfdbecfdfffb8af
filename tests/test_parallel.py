"""lifgrad.parallel: its own threads, BLAS held to one thread inside its calls,
nothing changed in the process by importing it, results independent of the
number of threads, and the kernel cache when the package is read-only."""
import os
import shutil
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import lifgrad
from lifgrad import LIFConfig, parallel
from lifgrad.network import Dense, Readout, Sequential
from lifgrad.optim import Adam

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(lifgrad.__file__)))


def _python(code, env=None, cwd=None):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=600)


IMPORT_CHANGES_NOTHING = """
import os, ctypes, json
env0 = dict(os.environ)
looked_up = []
_getattr = ctypes.CDLL.__getattr__
def spy(self, name):
    looked_up.append(name)
    return _getattr(self, name)
ctypes.CDLL.__getattr__ = spy
import numpy as np
import lifgrad
from lifgrad.network import Dense, Sequential
from lifgrad import losses, optim
env1 = dict(os.environ)
net = Sequential([Dense(20, 30, lifgrad.LIFConfig()), Dense(30, 4, lifgrad.LIFConfig())])
x = np.random.default_rng(0).random((6, 5, 20))
out, tr = net.forward(x)
lo = losses.ce_membrane(None, tr.layers[-1].trace.u, np.zeros(5, int))
optim.Adam(1e-3).step(net.params, net.backward(tr, du=lo.du))
print(json.dumps({"env_import": env1 == env0, "env_step": dict(os.environ) == env0,
                  "mallopt": [n for n in looked_up if "malloc" in n or "mallopt" in n]}))
"""


def test_import_changes_no_environment_variable_or_allocator_setting():
    """Importing lifgrad (and training a step) sets no environment variable and
    never calls glibc's mallopt; a fresh process, the user's import order."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OMP_", "OPENBLAS_", "MKL_", "MALLOC_"))}
    p = _python(IMPORT_CHANGES_NOTHING, env=env, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    import json
    res = json.loads(p.stdout.strip().splitlines()[-1])
    assert res == {"env_import": True, "env_step": True, "mallopt": []}


def test_the_check_above_can_fail():
    """The spy sees a mallopt call and an environment change when there is one."""
    code = IMPORT_CHANGES_NOTHING.replace(
        "import lifgrad\n",
        "import lifgrad\nos.environ['OMP_WAIT_POLICY'] = 'PASSIVE'\n"
        "ctypes.CDLL('libc.so.6').mallopt\n")
    p = _python(code, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    import json
    res = json.loads(p.stdout.strip().splitlines()[-1])
    assert res["env_import"] is False and res["mallopt"] == ["mallopt"]


def _blas_threads():
    import threadpoolctl
    return [(i["filepath"], i["num_threads"])
            for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]


def test_blas_is_one_thread_inside_lifgrad_calls_and_restored_after(monkeypatch):
    import threadpoolctl
    before = _blas_threads()
    assert before, "no BLAS library seen by threadpoolctl"
    seen = []
    orig = np.matmul

    def spy(*a, **k):
        seen.append({i["num_threads"] for i in threadpoolctl.threadpool_info()
                     if i["user_api"] == "blas"})
        return orig(*a, **k)
    from lifgrad import products
    monkeypatch.setattr(products.np, "matmul", spy)
    net = Sequential([Dense(300, 40, LIFConfig()), Dense(40, 3, LIFConfig())])
    x = np.random.default_rng(0).random((8, 70, 300))
    out, tr = net.forward(x)
    net.backward(tr, dv=np.ones_like(out, dtype=np.float32))
    assert seen and all(s == {1} for s in seen)
    assert _blas_threads() == before
    with parallel.blas_one_thread():
        with parallel.blas_one_thread():                     # nested: still one
            assert {n for _, n in _blas_threads()} == {1}
        assert {n for _, n in _blas_threads()} == {1}
    assert _blas_threads() == before


def _train(n_threads, steps=2):
    """A few Adam steps on a network whose products split into several pieces
    (T*B = 640 rows), with a static-input layer, the event kernels (sparse
    Poisson input and spikes) and a readout."""
    parallel.set_num_threads(n_threads)
    try:
        rng = np.random.default_rng(5)
        cfg = LIFConfig(surrogate="atan")
        net = Sequential([Dense(300, 600, cfg, alpha=0.9, learn=("alpha", "theta")),
                          Dense(600, 200, LIFConfig(surrogate="fast_sigmoid"), alpha=0.8),
                          Readout(200, 5, alpha=0.9)], dtype="float32")
        opt = Adam(1e-2)
        x = (rng.random((10, 64, 300)) < 0.15).astype(np.float32)
        for _ in range(steps):
            out, tr = net.forward(x)
            du = rng.normal(size=out.shape).astype(np.float32)
            opt.step(net.params, net.backward(tr, du=du, need_input_grad=False))
        static = Sequential([Dense(300, 600, cfg), Readout(600, 5)], dtype="float32")
        out, tr = static.forward(x[0], T=6)
        g = static.backward(tr, du=np.ones_like(out), need_input_grad=True)
        return dict(net.params, **{f"static.{k}": v for k, v in g.items()})
    finally:
        parallel.set_num_threads(None)


def test_results_do_not_depend_on_the_number_of_threads():
    one = _train(1)
    for n in (2, 3):
        other = _train(n)
        for k in one:
            np.testing.assert_array_equal(one[k], other[k], err_msg=f"{k}, {n} threads")


def test_set_num_threads_validates_and_defaults():
    with pytest.raises(ValueError, match="n: expected an integer >= 1"):
        lifgrad.set_num_threads(0)
    with pytest.raises(ValueError, match="n: expected"):
        lifgrad.set_num_threads(2.5)
    lifgrad.set_num_threads(3)
    assert lifgrad.num_threads() == 3
    lifgrad.set_num_threads(None)
    assert lifgrad.num_threads() >= 1


def test_run_covers_every_task_once_and_raises_after_all_parts_finish():
    parallel.set_num_threads(4)
    try:
        hits = np.zeros(103, int)

        def fn(arr, lo, hi):
            arr[lo:hi] += 1
        parallel.run(fn, 103, (hits,))
        assert hits.tolist() == [1] * 103
        done = []

        def bad(lo, hi):
            if lo == 0:
                raise RuntimeError("boom in the first part")
            import time
            time.sleep(0.05)
            done.append((lo, hi))
        with pytest.raises(RuntimeError, match="boom"):
            parallel.run(bad, 8, ())
        assert len(done) == 3        # the other parts finished before the error was raised
    finally:
        parallel.set_num_threads(None)


def test_row_pieces_are_fixed_by_the_shape():
    P = parallel.PIECE_ROWS
    assert parallel.row_pieces(1) == [slice(0, 1)]
    assert [s.stop for s in parallel.row_pieces(2 * P + 3)] == [P, 2 * P, 2 * P + 3]


CACHE_CHILD = """
import numpy as np
import lifgrad
from lifgrad.network import Dense, Sequential
assert lifgrad.__file__.startswith({pkg!r}), lifgrad.__file__
net = Sequential([Dense(5, 7, lifgrad.LIFConfig(surrogate="triangle"))])
out, tr = net.forward(np.random.default_rng(0).random((4, 3, 5)))
net.backward(tr, dv=np.ones(out.shape, np.float32))
print("ok")
"""


@pytest.mark.slow
def test_kernel_cache_works_when_the_package_directory_is_read_only(tmp_path):
    """A copy of the package that cannot be written to (read-only files; for
    root, who ignores permissions, every ``__pycache__`` taken by a file).
    With Numba's JIT (``LIFGRAD_KERNELS=jit``: what runs without the
    ahead-of-time build) the first process compiles, saying so on stderr, and
    caches in the user's cache directory; the second loads from there and
    says nothing.  With the ahead-of-time build in the copy nothing compiles."""
    pkg = tmp_path / "site"
    shutil.copytree(os.path.join(ROOT, "lifgrad"), pkg / "lifgrad",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for d, dirs, files in os.walk(pkg):
        open(os.path.join(d, "__pycache__"), "w").close()     # no cache next to the code
    for d, dirs, files in os.walk(pkg, topdown=False):
        for f in files:
            os.chmod(os.path.join(d, f), stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        os.chmod(d, stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
    cache = tmp_path / "usercache"
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "PYTHONPATH")}
    env.update(PYTHONPATH=str(pkg), XDG_CACHE_HOME=str(cache), PYTHONDONTWRITEBYTECODE="1",
               NUMBA_ENABLE_CUDASIM="0", LIFGRAD_KERNELS="jit")
    code = CACHE_CHILD.format(pkg=str(pkg))
    try:
        first = _python(code, env=env, cwd=str(tmp_path))
        assert first.returncode == 0, first.stderr
        assert "compiling kernels for first use, cached afterwards" in first.stderr
        cached = [f for _, _, fs in os.walk(cache) for f in fs if f.endswith(".nbi")]
        assert any("triangle" in f for f in cached), cached
        second = _python(code, env=env, cwd=str(tmp_path))
        assert second.returncode == 0, second.stderr
        assert second.stdout.strip() == "ok"
        assert "compiling" not in second.stderr, second.stderr
        written = [f for _, _, fs in os.walk(pkg) for f in fs if f.endswith((".nbi", ".nbc"))]
        assert written == []
        from lifgrad.kernels import aot
        if aot.compiled() is not None:        # the copy carries the ahead-of-time build
            env["LIFGRAD_KERNELS"] = "auto"
            env["XDG_CACHE_HOME"] = str(tmp_path / "empty")
            third = _python(code, env=env, cwd=str(tmp_path))
            assert third.returncode == 0, third.stderr
            assert "compiling" not in third.stderr, third.stderr
            assert not os.path.exists(tmp_path / "empty")
    finally:
        for d, dirs, files in os.walk(pkg):
            os.chmod(d, stat.S_IRWXU)
