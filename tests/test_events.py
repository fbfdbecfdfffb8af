"""Event-driven products with sparse operands (kernels.cpu_ops.event_matmul /
event_wgrad) against their twins in reference.py, the dense NumPy product; the
rule that picks them (functional.use_events); and networks whose products
they make."""
import numpy as np
import pytest

from lifgrad import LIFConfig, functional, reference
from lifgrad.kernels import cpu_ops
from lifgrad.network import Dense, Readout, Sequential

SHAPES = [(1, 1, 1), (5, 3, 2), (33, 67, 64), (70, 9, 65), (300, 130, 7)]   # (M, K, N)


def _spikes(rng, M, K, p):
    return (rng.random((M, K)) < p).astype(np.uint8)


def _operand(rng, M, K, p, kind, dtype):
    """uint8 spikes, or a float input with small integer values (0 where not
    drawn, so the density is p)."""
    a = _spikes(rng, M, K, p)
    if kind == "spikes":
        return a
    return (a * rng.integers(-3, 4, (M, K))).astype(dtype)


@pytest.mark.parametrize("M,K,N", SHAPES)
@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 1.0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["spikes", "float"])
def test_event_matmul_exact_on_integers(M, K, N, p, dtype, kind):
    """Small integer values: every partial sum is exact, so any wrong, missing
    or repeated term shows as a different number."""
    rng = np.random.default_rng(M * 1000 + K)
    a = _operand(rng, M, K, p, kind, dtype)
    BT = rng.integers(-8, 9, (K, N)).astype(dtype)
    out = np.full((M, N), np.nan, dtype)                  # every element must be written
    cpu_ops.event_matmul(a, BT, out)
    ref = np.full((M, N), np.nan, dtype)
    reference.event_matmul(a, BT, ref)
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("M,K,N", SHAPES)
@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 1.0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["spikes", "float"])
def test_event_wgrad_exact_on_integers_and_accumulates(M, K, N, p, dtype, kind):
    rng = np.random.default_rng(M * 1000 + K + 1)
    a = _operand(rng, M, K, p, kind, dtype)
    u = rng.integers(-8, 9, (M, N)).astype(dtype)
    start = rng.integers(-4, 5, (N, K)).astype(dtype)
    out, ref = start.copy(), start.copy()
    cpu_ops.event_wgrad(u, a, out)
    reference.event_wgrad(u, a, ref)
    np.testing.assert_array_equal(out, ref)
    assert not np.array_equal(ref, start) or not a.any() or not u.any()


@pytest.mark.parametrize("dtype,rtol", [(np.float32, 2e-5), (np.float64, 1e-12)])
def test_event_products_match_blas_on_random_floats(dtype, rtol):
    rng = np.random.default_rng(7)
    M, K, N = 700, 300, 130        # more rows than one block of event_wgrad (EVENT_BLOCK)
    assert M > cpu_ops.EVENT_BLOCK
    a = _spikes(rng, M, K, 0.2)
    BT = rng.standard_normal((K, N)).astype(dtype)
    u = rng.standard_normal((M, N)).astype(dtype)
    out = np.empty((M, N), dtype)
    cpu_ops.event_matmul(a, BT, out)
    ref = a.astype(np.float64) @ BT.astype(np.float64)
    np.testing.assert_allclose(out, ref, rtol=rtol, atol=rtol * np.abs(ref).max())
    dW = np.zeros((N, K), dtype)
    cpu_ops.event_wgrad(u, a, dW)
    ref = u.astype(np.float64).T @ a.astype(np.float64)
    np.testing.assert_allclose(dW, ref, rtol=rtol, atol=rtol * np.abs(ref).max())


def test_event_products_do_not_depend_on_the_thread_count():
    """Run on 1, 2 and 3 of lifgrad's threads, event_wgrad split into 1, 2 and 7 parts."""
    from lifgrad import parallel
    rng = np.random.default_rng(8)
    a = _spikes(rng, 600, 200, 0.15)
    BT = rng.standard_normal((200, 96)).astype(np.float32)
    u = rng.standard_normal((600, 96)).astype(np.float32)
    res = []
    try:
        for n in (1, 2, 7):
            parallel.set_num_threads(min(n, 3))
            out, dW = np.empty((600, 96), np.float32), np.zeros((96, 200), np.float32)
            cpu_ops.event_matmul(a, BT, out)
            cpu_ops.event_wgrad(u, a, dW, parts=n)
            res.append((out, dW))
    finally:
        parallel.set_num_threads(None)
    for out, dW in res[1:]:
        np.testing.assert_array_equal(out, res[0][0])
        np.testing.assert_array_equal(dW, res[0][1])


def test_use_events_rule(monkeypatch):
    monkeypatch.setattr(functional, "EVENT_DENSITY", 0.25)
    cpu, ref = LIFConfig(), LIFConfig(backend="reference")
    a = np.zeros((160, 50), np.uint8)
    a[:, :10] = 1                                        # density 0.2
    assert functional.use_events(a, 64, cpu)
    assert not functional.use_events(a, 64, ref)          # the reference keeps NumPy
    assert not functional.use_events(a, functional.EVENT_MIN_COLS - 1, cpu)
    assert functional.use_events(a.astype(np.float32), 64, cpu)     # a sparse float input
    assert not functional.use_events(a.astype(np.int64), 64, cpu)   # neither spikes nor float
    a[:, :20] = 1                                        # density 0.4
    assert not functional.use_events(a, 64, cpu)
    assert not functional.use_events(a.astype(np.float64), 64, cpu)
    assert not functional.use_events(np.zeros((0, 5), np.uint8), 64, cpu)
    # a float operand is counted on every EVENT_SAMPLE-th row (from row 0)
    f = np.ones((160, 50), np.float32)
    f[::functional.EVENT_SAMPLE] = 0
    assert functional.use_events(f, 64, cpu)


def test_event_density_is_this_installations_measurement(monkeypatch, tmp_path):
    """EVENT_DENSITY None: the crossover stored by the kernel build
    (kernels/calibrate.py), DEFAULT without one; a set value overrides it."""
    import json
    from lifgrad.kernels import build_info, calibrate
    monkeypatch.setattr(functional, "EVENT_DENSITY", None)
    monkeypatch.setattr(calibrate, "_cache", {})
    monkeypatch.setattr(build_info, "HERE", str(tmp_path))
    assert functional.event_density() == calibrate.DEFAULT          # no build here
    (tmp_path / f"{build_info.MODULE}.json").write_text(json.dumps({"event_density": 0.05}))
    calibrate._cache.clear()
    assert functional.event_density() == 0.05
    a = np.zeros((100, 50), np.uint8)
    a[:, :4] = 1                                                    # density 0.08
    assert not functional.use_events(a, 64, LIFConfig())
    monkeypatch.setattr(functional, "EVENT_DENSITY", 0.1)
    assert functional.use_events(a, 64, LIFConfig())


def test_calibration_measures_a_crossover():
    from lifgrad.kernels import calibrate
    d, table = calibrate.measure(rows=256, inputs=64, outputs=64, densities=(0.0, 0.5, 1.0),
                                 repeats=1)
    assert d in (0.0, 0.5, 1.0) and 1 <= len(table) <= 3
    assert all(e > 0 and b > 0 for _, e, b in table)
    # it stops at the first density where the event kernels lose
    assert all(e <= b for _, e, b in table[:-1])


def _wide_net(dtype, recurrent=None, readout=False):
    cfg = LIFConfig(surrogate="atan", reset="subtract", recurrent=recurrent)
    layers = [Dense(40, 96, cfg, alpha=0.9, theta=1.0, learn=("alpha",)),
              Dense(96, 80, LIFConfig(surrogate="atan"), alpha=0.9, theta=1.0)]
    layers.append(Readout(80, 6, alpha=0.8) if readout else
                  Dense(80, 6, LIFConfig(surrogate="fast_sigmoid"), alpha=0.9))
    net = Sequential(layers, dtype=dtype, seed=5)
    net.params["layer0.W"] = net.params["layer0.W"] * 4
    net.params["layer1.W"] = net.params["layer1.W"] * 3
    return net


def _count_calls(monkeypatch):
    """Count the calls of the event kernels; ``calls["kinds"]`` collects the
    dtype kinds of their sparse operand ('u' spikes, 'f' a float input)."""
    calls = {"event_matmul": 0, "event_wgrad": 0, "kinds": set()}
    for name, pos in (("event_matmul", 0), ("event_wgrad", 1)):
        fn = getattr(cpu_ops, name)

        def counted(*args, _fn=fn, _name=name, _pos=pos):
            calls[_name] += 1
            calls["kinds"].add(args[_pos].dtype.kind)
            return _fn(*args)
        monkeypatch.setattr(cpu_ops, name, counted)
    return calls


@pytest.mark.parametrize("recurrent,readout,p_in", [(None, False, 0.3), ("all", False, 0.3),
                                                     (None, True, 0.3), (None, False, 0.15)])
@pytest.mark.parametrize("dtype,rtol", [("float32", 1e-4), ("float64", 1e-10)])
def test_network_gradients_with_event_products_match_dense(monkeypatch, recurrent, readout, p_in,
                                                           dtype, rtol):
    """Input density 0.3: the input's products go to BLAS, the spikes' to the
    event kernels; 0.15: the input's too (float32 values 0 and 1.5)."""
    rng = np.random.default_rng(0)
    T, B = 90, 8
    net = _wide_net(dtype, recurrent, readout)
    x = (rng.uniform(size=(T, B, 40)) < p_in) * (1.0 if p_in > 0.2 else 1.5)
    dv = None if readout else rng.normal(size=(T, B, 6))
    du = rng.normal(size=(T, B, 6))
    monkeypatch.setattr(functional, "EVENT_DENSITY", 0.25)     # whatever this machine measured
    calls = _count_calls(monkeypatch)
    out, tr = net.forward(x)
    rates = [float(lt.trace.v.mean()) for lt in tr.layers[:2]]
    assert all(0.01 < r <= functional.EVENT_DENSITY for r in rates), rates
    g = net.backward(tr, dv=dv, du=du, need_input_grad=True)
    assert calls["event_matmul"] > 0 and calls["event_wgrad"] > 0
    assert calls["kinds"] == ({"u", "f"} if p_in < functional.EVENT_DENSITY else {"u"})
    monkeypatch.setattr(functional, "EVENT_DENSITY", -1.0)        # every product by BLAS
    n_before = {k: v for k, v in calls.items() if k != "kinds"}
    out_d, tr_d = net.forward(x)
    g_d = net.backward(tr_d, dv=dv, du=du, need_input_grad=True)
    assert {k: v for k, v in calls.items() if k != "kinds"} == n_before
    # the same spikes (a spike flipped by rounding would change everything below)
    for lt, lt_d in zip(tr.layers, tr_d.layers):
        np.testing.assert_array_equal(lt.trace.v, lt_d.trace.v)
    for k in g:
        np.testing.assert_allclose(g[k], g_d[k], rtol=rtol, atol=rtol * np.abs(g_d[k]).max(),
                                   err_msg=k)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("p_in", [0.3, 0.15])
def test_checkpointed_backward_with_event_products_is_bitwise(monkeypatch, dtype, p_in):
    rng = np.random.default_rng(1)
    T, B = 150, 8
    net = _wide_net(dtype)
    x = (rng.uniform(size=(T, B, 40)) < p_in) * 1.0
    dv, du = rng.normal(size=(T, B, 6)), rng.normal(size=(T, B, 6))
    monkeypatch.setattr(functional, "EVENT_DENSITY", 0.25)     # whatever this machine measured
    calls = _count_calls(monkeypatch)
    out, tr = net.forward(x)
    g = net.backward(tr, dv=dv, du=du)
    assert calls["event_matmul"] > 0 and calls["event_wgrad"] > 0
    for K in (1, 100):
        out2, tr2 = net.forward(x, checkpoint_every=K)
        np.testing.assert_array_equal(out, out2)
        g2 = net.backward(tr2, dv=dv, du=du)
        for k in g:
            np.testing.assert_array_equal(g[k], g2[k], err_msg=f"{k} K={K}")
