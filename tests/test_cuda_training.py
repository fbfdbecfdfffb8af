"""Device-resident training (lifgrad.device) against the CPU path.

Runs on Numba's CUDA simulator (tests/conftest.py sets NUMBA_ENABLE_CUDASIM=1
when there is no GPU) and unchanged on a real GPU.  Sizes are toy sizes: the
simulator runs every CUDA thread as a Python thread.
"""
import numpy as np
import pytest

from lifgrad import LIFConfig, lif_backward, lif_forward, optim
from lifgrad.data import Dataset, load
from lifgrad.device import DeviceNetwork, DeviceOptimizer, available
from lifgrad.network import Dense, Readout, Sequential
from lifgrad.train import TrainConfig, fit

pytestmark = pytest.mark.skipif(not available(), reason="no CUDA device and no CUDA simulator")

MODELS = {
    "lif": dict(cfg=LIFConfig()),
    "synaptic": dict(cfg=LIFConfig(synaptic=True)),
    "adaptive": dict(cfg=LIFConfig(adaptive=True)),
    "one": dict(cfg=LIFConfig(recurrent="one")),
    "all": dict(cfg=LIFConfig(recurrent="all"), autapses=False),
    "zero-reset-readout": dict(cfg=LIFConfig(reset="zero"), readout=True),
}


def _net(model, dtype="float64"):
    spec = MODELS[model]
    extra = {"autapses": spec["autapses"]} if "autapses" in spec else {}
    layers = [Dense(5, 6, spec["cfg"], alpha=0.9, theta=0.5, learn=("alpha", "theta"), **extra)]
    layers.append(Readout(6, 3, learn=("alpha",)) if spec.get("readout")
                  else Dense(6, 3, LIFConfig(), theta=0.5))
    return Sequential(layers, dtype=dtype, seed=1)


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.mark.parametrize("static", [False, True], ids=["poisson", "static"])
@pytest.mark.parametrize("model", list(MODELS))
def test_device_network_gradients_match_sequential(model, static, rng):
    net = _net(model)
    x = rng.random((2, 5)) * 2 if static else (rng.random((4, 2, 5)) < 0.5) * 2.0
    T = 4 if static else None
    _, tr = net.forward(x, T=T)
    du = rng.standard_normal(tr.layers[-1].trace.u.shape)
    g = net.backward(tr, du=du)
    dev = DeviceNetwork(net)
    dtr = dev.forward(x, T=T)
    v, u = dev.output(dtr)
    assert _rel(u, tr.layers[-1].trace.u) <= 1e-12
    dg = dev.backward(dtr, du=du)
    assert sorted(dg) == sorted(g)
    for k in g:
        assert _rel(dg[k].copy_to_host(), g[k]) <= 1e-12, k


def test_device_gradients_can_fail(rng):
    """The comparison above notices a wrong parameter on the device."""
    net = _net("lif")
    x = (rng.random((4, 2, 5)) < 0.5) * 2.0
    _, tr = net.forward(x)
    du = rng.standard_normal(tr.layers[-1].trace.u.shape)
    g = net.backward(tr, du=du)
    dev = DeviceNetwork(net)
    dev.params["layer1.W"] = dev.cuda.to_device(net.params["layer1.W"] * 1.01)
    dg = dev.backward(dev.forward(x), du=du)
    assert _rel(dg["layer0.W"].copy_to_host(), g["layer0.W"]) > 1e-6


@pytest.mark.parametrize("make", [
    lambda: optim.Adam(lr=1e-2),
    lambda: optim.AdamW(lr=1e-2, weight_decay=0.1),
    lambda: optim.Adam(lr=1e-2, weight_decay=0.05),
    lambda: optim.SGD(lr=0.1),
    lambda: optim.SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
], ids=["adam", "adamw", "adam-l2", "sgd", "sgd-nesterov"])
def test_device_optimizer_matches_host_optimizer(make, rng):
    from numba import cuda
    p = {"a": rng.standard_normal((3, 4)), "b": rng.standard_normal(5)}
    host, dev = make(), DeviceOptimizer(make())
    dp = {k: cuda.to_device(v.copy()) for k, v in p.items()}
    for _ in range(3):
        g = {k: rng.standard_normal(v.shape) for k, v in p.items()}
        host.step(p, g)
        dev.step(dp, {k: cuda.to_device(v) for k, v in g.items()})
    for k in p:
        np.testing.assert_allclose(dp[k].copy_to_host(), p[k], rtol=1e-13, atol=1e-15)
    hs, ds = host.state_dict(), dev.to_host().state_dict()
    assert sorted(hs) == sorted(ds)
    for k in hs:
        np.testing.assert_allclose(ds[k], hs[k], rtol=1e-13, atol=1e-15)


def _tiny_digits():
    ds = load("digits")
    return Dataset("digits", ds.x_train[:24], ds.y_train[:24], ds.x_test[:16], ds.y_test[:16],
                   ds.n_classes)


@pytest.mark.parametrize("extra", [dict(), dict(model="recurrent", readout=True, clip=0.5)],
                         ids=["lif", "recurrent-readout-clip"])
def test_cuda_training_gives_the_cpu_parameters_after_three_steps(tmp_path, extra):
    ds = _tiny_digits()
    base = dict(hidden=(6,), T=3, batch_size=8, epochs=1, dtype="float64", lr=1e-2, seed=3,
                **extra)
    runs = {}
    for backend in ("cpu", "cuda"):
        cfg = TrainConfig(backend=backend, out=str(tmp_path / backend), **base)
        hist = fit(cfg, dataset=ds, progress=False)      # 24 samples / 8 = 3 steps
        runs[backend] = hist
    pc, pg = runs["cpu"].network.params, runs["cuda"].network.params
    assert sorted(pc) == sorted(pg)
    for k in pc:
        assert not np.array_equal(pc[k], _start(base, ds)[k]) or k.endswith("b_rec")
        np.testing.assert_allclose(pg[k], pc[k], rtol=1e-10, atol=1e-12, err_msg=k)
    rc, rg = runs["cpu"][-1], runs["cuda"][-1]
    for key in ("loss", "train_acc", "test_acc", "rate_layer0", "grad_norm_layer0"):
        assert rg[key] == pytest.approx(rc[key], rel=1e-10, abs=1e-12), key
    # the checkpoint of the cuda run holds its parameters and optimiser state
    arrs = np.load(tmp_path / "cuda" / "checkpoint.npz")
    np.testing.assert_array_equal(arrs["param/layer0.W"], pg["layer0.W"])
    assert any(k.startswith("opt/layer0.W::") for k in arrs.files)


def _start(base, ds):
    from lifgrad.train import build_network
    cfg = TrainConfig(**base)
    return build_network(cfg, ds.n_features, ds.n_classes).params


def test_cuda_backend_refuses_what_runs_on_the_host():
    with pytest.raises(ValueError, match="l1"):
        TrainConfig(backend="cuda", l1=1e-3).validate()
    with pytest.raises(ValueError, match="calibrate"):
        TrainConfig(backend="cuda", calibrate=0).validate()
    with pytest.raises(ValueError, match="backend"):
        TrainConfig(backend="gpu").validate()


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-12), ("float32", 1e-5)])
def test_functional_cuda_backend_matches_cpu(dtype, tol, rng):
    I = rng.standard_normal((5, 2, 4)).astype(dtype)
    out = {}
    for backend in ("cpu", "cuda"):
        cfg = LIFConfig(backend=backend, synaptic=True, surrogate="sigmoid")
        v, tr = lif_forward(I, config=cfg)
        g = lif_backward(tr, config=cfg, dv=np.ones_like(I))
        out[backend] = (tr.u, g.I, g.alpha, g.theta, g.alpha_s)
    for a, b in zip(out["cuda"], out["cpu"]):
        assert _rel(np.asarray(a), np.asarray(b)) <= tol


def test_cli_train_backend_flag_reaches_the_config():
    from lifgrad.cli import _train_config, build_parser
    args = build_parser().parse_args(["train", "--backend", "cuda", "--hidden", "4"])
    assert _train_config(args).validate().backend == "cuda"


def test_cli_train_refuses_an_unknown_backend(capsys):
    from lifgrad.cli import main
    assert main(["train", "--backend", "gpu", "--quiet"]) == 2
    assert "backend" in capsys.readouterr().err


@pytest.mark.parametrize("model", [dict(), dict(synaptic=True, adaptive=True),
                                   dict(recurrent="one"), dict(recurrent="all"),
                                   dict(forward="smooth")],
                         ids=["lif", "synaptic-adaptive", "one", "all", "smooth"])
@pytest.mark.parametrize("dtype,tol", [("float64", 1e-12), ("float32", 1e-5)])
def test_cuda_kernels_through_lif_forward_match_reference(model, dtype, tol):
    """The functional path allocates the trace itself: uint8 spikes for the hard
    forward (real ones for the smooth forward), which the CUDA kernels must read
    and write like the CPU ones."""
    from lifgrad.check import kernel_vs_reference
    cfg = LIFConfig(surrogate="sigmoid", **model)
    errs = kernel_vs_reference(cfg, dtype=dtype, T=6, B=3, N=9, backend="cuda")
    assert max(errs.values()) <= tol, errs


def test_cuda_ops_match_numpy(rng):
    from numba import cuda

    from lifgrad.kernels import cuda_ops as ops
    A = rng.normal(size=(5, 7))
    d = cuda.to_device(A)
    np.testing.assert_array_equal(ops.transpose(d).copy_to_host(), A.T)
    assert ops.total(d) == pytest.approx(A.sum(), rel=1e-14)
    assert ops.sum_squares(d) == pytest.approx(np.square(A).sum(), rel=1e-14)
    np.testing.assert_array_equal(ops.scale(d, 0.5).copy_to_host(), A * 0.5)
    sq = cuda.to_device(rng.normal(size=(4, 4)))
    np.testing.assert_array_equal(np.diag(ops.zero_diagonal(sq).copy_to_host()), np.zeros(4))
    np.testing.assert_array_equal(ops.zeros((2, 3), np.float32).copy_to_host(), np.zeros((2, 3)))
    np.testing.assert_array_equal(ops.fill(cuda.to_device(np.zeros(5)), 2.5).copy_to_host(),
                                  np.full(5, 2.5))
    assert np.isnan(ops.sum_squares(cuda.to_device(np.array([1.0, np.nan]))))
