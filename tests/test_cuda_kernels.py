"""Every CUDA kernel (``lifgrad/kernels/cuda.py``) against its NumPy reference twin.

Runs on a real GPU, or on any machine under Numba's CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1``, set before numba is imported); skipped otherwise.
The simulator runs every CUDA thread as a Python thread, so the problems are
tiny (T <= 6, B <= 3, N <= 9).  Backward kernels are fed the reference's
forward trace, so each kernel is compared on its own.
"""
import numpy as np
import pytest
from numba import config as numba_config
from numba import cuda

if not (numba_config.ENABLE_CUDASIM or cuda.is_available()):
    pytest.skip("needs a CUDA GPU, or the CUDA simulator (NUMBA_ENABLE_CUDASIM=1 set before "
                "numba is imported)", allow_module_level=True)

from lifgrad import LIFConfig, reference  # noqa: E402
from lifgrad.check import kernel_params  # noqa: E402
from lifgrad import surrogates as sgs  # noqa: E402
from lifgrad.kernels import cuda as K  # noqa: E402
from lifgrad.kernels.constants import ACC_UBIAS, N_ACC  # noqa: E402

PARTIAL_ROWS = [0, 1, 2, ACC_UBIAS]     # acc rows summed only with have[3] (partials)
MODEL_ROWS = [j for j in range(N_ACC) if j not in PARTIAL_ROWS]


@cuda.jit
def _surrogate_kernel(x, v, sg, phi, G):
    """phi and G of the device dispatch at points x (one surrogate row per point)."""
    i = cuda.grid(1)
    if i < x.shape[0]:
        q = (sg[i, 0], sg[i, 1], sg[i, 2], sg[i, 3], sg[i, 4], sg[i, 5], sg[i, 6])
        phi[i] = K._phi(x[i], v[i], q)
        G[i] = K._prim(x[i], q)


def _surrogate_values(x, v, sg):
    """(phi, G) in float64 at points x with spikes v; sg (M, 7) one row per point
    (the test-only helper that lived in kernels/cuda.py)."""
    x = np.ascontiguousarray(x, np.float64)
    phi, G = np.empty_like(x), np.empty_like(x)
    d = [cuda.to_device(phi), cuda.to_device(G)]
    tpb = 128
    _surrogate_kernel[(x.size + tpb - 1) // tpb, tpb](
        cuda.to_device(x), cuda.to_device(np.asarray(v, np.float64)),
        cuda.to_device(np.asarray(sg, np.float64)), *d)
    return d[0].copy_to_host(), d[1].copy_to_host()

TOL = {"float64": 1e-12, "float32": 1e-5}
DTYPES = ("float64", "float32")
T, B, N = 6, 3, 9


def _rel(got, want):
    """Max normwise relative difference (NaN in ``got`` fails)."""
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    diff = np.max(np.abs(got - want))
    den = np.max(np.abs(want))
    return 0.0 if diff == 0.0 else diff / max(den, 1e-300)


def _errors(got, want):
    return {k: _rel(got[k], want[k]) for k in want}


def _worst(errs):
    return max(e if not np.isnan(e) else np.inf for e in errs.values())


def _assert_close(got, want, dtype):
    errs = _errors(got, want)
    assert _worst(errs) <= TOL[dtype], errs


def _config(surrogate="sigmoid", **kw):
    return LIFConfig(surrogate=surrogate if isinstance(surrogate, sgs.Surrogate)
                     else sgs.get(surrogate), **kw)


def _problem(cfg, dtype, static=False, gamma_free=False, seed=0):
    """Packed kernel arguments as ``functional`` prepares them.  Half the batch
    is on a binary grid with alpha = 0.5 on half the neurons, so u == theta
    happens exactly (strict and non-strict firing differ)."""
    rng = np.random.default_rng(seed)
    grid = B // 2 + 1                     # batch rows on the binary grid
    I = rng.normal(0.35, 0.6, (T, B, N))
    I[:, :grid] = rng.integers(0, 5, (T, grid, N)) * 0.25
    params = kernel_params(rng, N, cfg, gamma_free)
    if cfg.recurrent == "all":              # off the grid too
        params = params._replace(R=params.R + rng.normal(0, 0.05, (N, N)))
    state0 = np.zeros((3, B, N), dtype)
    state0[0] = rng.normal(0, 0.3, (B, N))
    if cfg.synaptic:
        state0[1] = rng.normal(0, 0.3, (B, N))
    if cfg.adaptive:
        state0[2] = rng.uniform(0, 0.5, (B, N))
    state0[:, :grid] = rng.integers(0, 3, (3, grid, N)) * 0.25
    return dict(
        cfg=cfg, dtype=np.dtype(dtype), static=static,
        I=np.ascontiguousarray((I[:1] if static else I).astype(dtype)),
        P=params.packed(N, dtype, cfg), R=params.recurrent_matrix(N, dtype, cfg),
        state0=state0, mode=cfg.mode(), sg=cfg.surrogate.kernel_args(),
        rnd=rng.random((T, B, N)) if cfg.forward == "stochastic" else np.zeros((1, 1, 1)),
        dv=rng.normal(size=(T, B, N)).astype(dtype), du=rng.normal(size=(T, B, N)).astype(dtype),
        rec=rng.normal(size=(T, B, N)).astype(dtype))


def _dummy(p):
    return np.zeros((1, 1, 1), p["dtype"])


def _forward(be, p, segments=((0, T),)):
    cfg, dt = p["cfg"], p["dtype"]
    out = dict(u=np.full((T, B, N), np.nan, dt), v=np.full((T, B, N), np.nan, dt))
    s = np.full((T, B, N), np.nan, dt) if cfg.synaptic else _dummy(p)
    a = np.full((T, B, N), np.nan, dt) if cfg.adaptive else _dummy(p)
    for t0, t1 in segments:
        if p["R"] is not None:
            be.cell_forward_recurrent(p["I"], p["static"], t0, t1, p["state0"], p["P"],
                                      np.ascontiguousarray(p["R"].T), p["mode"], p["sg"],
                                      p["rnd"], out["u"], out["v"], s, a)
        else:
            be.cell_forward_scan(p["I"], p["static"], t0, t1, p["state0"], p["P"], p["mode"],
                                 p["sg"], p["rnd"], out["u"], out["v"], s, a)
    if cfg.synaptic:
        out["s"] = s
    if cfg.adaptive:
        out["a"] = a
    return out


def _backward(be, p, tr, segments=((0, T),), have=(True, True), with_rec=False, P=None,
              partials=True, acc0=0.0):
    """The backward kernel on the trace ``tr``; returns its outputs."""
    dt, P = p["dtype"], p["P"] if P is None else P
    s, a = tr.get("s", _dummy(p)), tr.get("a", _dummy(p))
    dv = p["dv"] if have[0] else _dummy(p)
    du = p["du"] if have[1] else _dummy(p)
    acc = np.full((N_ACC, B, N), acc0, dt)
    dstate0 = np.full((3, B, N), np.nan, dt)
    adj = np.zeros((3, B, N), dt)
    if p["R"] is not None:
        dI = np.full((T, B, N), np.nan, dt)
        for t0, t1 in reversed(segments):
            nxt = dI[t1] if t1 < T else np.zeros((1, 1), dt)
            be.cell_backward_recurrent(tr["u"], tr["v"], s, a, p["state0"], dv, du,
                                       (have[0], have[1], t1 < T, partials), t0, t1, P, p["R"],
                                       p["mode"], p["sg"], dI, nxt, acc, adj, dstate0)
        return dict(dI=dI, acc=acc, adj=adj, dstate0=dstate0)
    dI = np.zeros((1, B, N), dt) if p["static"] else np.full((T, B, N), np.nan, dt)
    rec = p["rec"] if with_rec else _dummy(p)
    for t0, t1 in reversed(segments):
        be.cell_backward_scan(tr["u"], tr["v"], s, a, p["state0"], dv, du, rec,
                              (have[0], have[1], with_rec, partials), p["static"], t0, t1, P,
                              p["mode"],
                              p["sg"], dI, acc, adj, dstate0)
    return dict(dI=dI, acc=acc, adj=adj, dstate0=dstate0)


def _check_both(p, **bw):
    fw_ref = _forward(reference, p)
    _assert_close(_forward(K, p), fw_ref, p["dtype"].name)
    _assert_close(_backward(K, p, fw_ref, **bw), _backward(reference, p, fw_ref, **bw),
                  p["dtype"].name)


def test_kernels_have_reference_twins_with_same_signature():
    import inspect
    for name in ("cell_forward_scan", "cell_backward_scan", "cell_forward_recurrent",
                 "cell_backward_recurrent"):
        ref = inspect.signature(getattr(reference, name))
        ker = inspect.signature(getattr(K, name))
        assert list(ref.parameters) == list(ker.parameters), name


# --------------------------------------------------------------------------
# Scans: resets, detach, strict, forward modes, synaptic, adaptive, one-to-one
# --------------------------------------------------------------------------

SCAN_CASES = {
    "subtract": (dict(reset="subtract", surrogate="sigmoid"), dict(gamma_free=True)),
    "subtract-tied-detach-strict": (dict(reset="subtract", detach_reset=True, strict=True,
                                         surrogate="atan"), {}),
    "zero": (dict(reset="zero", surrogate="triangle"), {}),
    "zero-detach-strict": (dict(reset="zero", detach_reset=True, strict=True,
                                surrogate="spike_operator"), {}),
    "none-clipped": (dict(reset="none", surrogate=sgs.get("fast_sigmoid", scale=1.5, clip=0.7)), {}),
    "smooth": (dict(reset="zero", forward="smooth", surrogate="gaussian"), {}),
    "stochastic": (dict(reset="subtract", forward="stochastic", surrogate="sigmoid"), {}),
    # the probability is the surrogate itself (M13): Spyx's Bernoulli neurons
    "stochastic-surrogate": (dict(reset="none", synaptic=True, forward="stochastic",
                                  spike_probability="surrogate",
                                  surrogate="spyx.refractory_sigmoid_bernoulli"), {}),
    "synaptic": (dict(reset="zero", synaptic=True, surrogate="laplace"), {}),
    "adaptive": (dict(reset="subtract", adaptive=True, surrogate="rect"), dict(gamma_free=True)),
    "one-to-one": (dict(reset="zero", recurrent="one", surrogate="sigmoid"), {}),
    "synaptic-adaptive-one-smooth": (dict(reset="subtract", synaptic=True, adaptive=True,
                                          recurrent="one", forward="smooth", surrogate="atan"), {}),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(SCAN_CASES))
def test_scan_kernels_match_reference(case, dtype):
    cfg_kw, prob_kw = SCAN_CASES[case]
    _check_both(_problem(_config(**cfg_kw), dtype, **prob_kw))


@pytest.mark.parametrize("dtype", DTYPES)
def test_backward_scan_with_rec_term_and_missing_adjoints(dtype):
    """``rec`` (the all-to-all term) read by the scan; dv or du absent."""
    p = _problem(_config(reset="zero", synaptic=True, surrogate="sigmoid"), dtype)
    fw = _forward(reference, p)
    for have in ((True, False), (False, True)):
        _assert_close(_backward(K, p, fw, have=have, with_rec=True),
                      _backward(reference, p, fw, have=have, with_rec=True), dtype)


@pytest.mark.parametrize("backend", ["cpu", "cuda"])
@pytest.mark.parametrize("static", (False, True))
@pytest.mark.parametrize("dtype", DTYPES)
def test_backward_scan_without_partials(backend, static, dtype):
    """``have[3]`` False: acc rows alpha, theta, rv and u_bias are neither
    read nor written; every other output has the same bits as with them, and
    matches the reference."""
    from lifgrad.kernels import cpu
    be = cpu if backend == "cpu" else K
    p = _problem(_config(reset="zero", synaptic=True, adaptive=True, surrogate="sigmoid"),
                 dtype, static=static)
    fw = _forward(reference, p)
    segs = ((0, T // 2), (T // 2, T))
    full = _backward(be, p, fw, segments=segs, acc0=7.0)
    part = _backward(be, p, fw, segments=segs, partials=False, acc0=7.0)
    ref = _backward(reference, p, fw, segments=segs, partials=False, acc0=7.0)
    assert np.all(part["acc"][PARTIAL_ROWS] == 7.0)
    assert not np.all(full["acc"][PARTIAL_ROWS] == 7.0)
    for k in full:
        rows = MODEL_ROWS if k == "acc" else slice(None)
        np.testing.assert_array_equal(part[k][rows], full[k][rows], err_msg=k)
    _assert_close(part, ref, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_static_input_scan(dtype):
    """I has one time row; the backward accumulates the time sum into dI[0] (A21)."""
    _check_both(_problem(_config(reset="subtract", synaptic=True, surrogate="sigmoid"), dtype,
                         static=True))


@pytest.mark.parametrize("backend", ["cpu", "cuda"])
@pytest.mark.parametrize("recurrent", ("one", "all"))
@pytest.mark.parametrize("static", (False, True))
@pytest.mark.parametrize("dtype", DTYPES)
def test_time_segments_change_nothing(dtype, static, recurrent, backend):
    """t0/t1 segments continue from the trace (forward) and from acc/adj and,
    all-to-all, the later segment's first dL/dI row (backward): the result
    equals one call bit for bit, and the reference."""
    from lifgrad.kernels import cpu
    be = cpu if backend == "cpu" else K
    p = _problem(_config(reset="zero", synaptic=True, adaptive=True, recurrent=recurrent,
                         surrogate="sigmoid"), dtype, static=static)
    segs = ((0, 2), (2, 3), (3, T))
    fw_ref = _forward(reference, p)
    whole, split = _forward(be, p), _forward(be, p, segs)
    for k in whole:
        np.testing.assert_array_equal(split[k], whole[k])
    _assert_close(split, fw_ref, dtype)
    bw_whole = _backward(be, p, fw_ref)
    bw_split = _backward(be, p, fw_ref, segments=segs)
    for k in bw_whole:
        np.testing.assert_array_equal(bw_split[k], bw_whole[k])
    _assert_close(bw_split, _backward(reference, p, fw_ref), dtype)


# --------------------------------------------------------------------------
# All-to-all recurrence
# --------------------------------------------------------------------------

RECURRENT_CASES = {
    "subtract": (dict(reset="subtract", surrogate="sigmoid"), {}),
    "synaptic-zero-static": (dict(reset="zero", synaptic=True, surrogate="atan"), dict(static=True)),
    "adaptive-smooth": (dict(reset="subtract", adaptive=True, forward="smooth",
                             surrogate="gaussian"), dict(gamma_free=True)),
    "stochastic-detach": (dict(reset="zero", detach_reset=True, strict=True, forward="stochastic",
                               surrogate="sigmoid"), {}),
    "stochastic-surrogate": (dict(reset="subtract", forward="stochastic",
                                  spike_probability="surrogate",
                                  surrogate=sgs.get("spyx.sigmoid_bernoulli", k=4.0)), {}),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(RECURRENT_CASES))
def test_recurrent_kernels_match_reference(case, dtype):
    cfg_kw, prob_kw = RECURRENT_CASES[case]
    _check_both(_problem(_config(recurrent="all", **cfg_kw), dtype, **prob_kw))


def test_recurrent_kernels_with_more_neurons_than_threads(monkeypatch):
    """Threads stride over neurons when N exceeds the block."""
    monkeypatch.setattr(K, "RECURRENT_THREADS", 4)
    p = _problem(_config(recurrent="all", reset="zero", synaptic=True, surrogate="sigmoid"),
                 "float64")
    assert K._launch(N, K.RECURRENT_THREADS)[1] == 4 < N
    _check_both(p)


# --------------------------------------------------------------------------
# The comparison can fail
# --------------------------------------------------------------------------

def test_a_wrong_alpha_is_caught():
    p = _problem(_config(reset="subtract", surrogate="sigmoid"), "float64")
    fw_ref = _forward(reference, p)
    bw_ref = _backward(reference, p, fw_ref)
    wrong = dict(p, P=p["P"].copy())
    wrong["P"][reference.P_ALPHA] *= 0.9
    assert _worst(_errors(_forward(K, wrong), fw_ref)) > 1e-3
    assert _worst(_errors(_backward(K, p, fw_ref, P=wrong["P"]), bw_ref)) > 1e-3
    # and the same problem with the right alpha passes
    _assert_close(_backward(K, p, fw_ref), bw_ref, "float64")


# --------------------------------------------------------------------------
# Device arrays: worked on in place, no host transfer
# --------------------------------------------------------------------------

@pytest.mark.parametrize("recurrent", (None, "all"))
@pytest.mark.parametrize("dtype", DTYPES)
def test_device_arrays_in_place(dtype, recurrent, monkeypatch):
    p = _problem(_config(reset="zero", synaptic=True, adaptive=True, recurrent=recurrent,
                         surrogate="sigmoid"), dtype)
    fw_host = _forward(K, p)
    bw_host = _backward(K, p, fw_host)
    # the same calls with every array on the device
    dp = {k: cuda.to_device(val) if isinstance(val, np.ndarray) else val for k, val in p.items()}
    dfw = {k: cuda.to_device(np.full_like(val, np.nan)) for k, val in fw_host.items()}
    dbw = {k: cuda.to_device(np.zeros_like(val)) for k, val in bw_host.items()}
    dtr = {k: cuda.to_device(val) for k, val in fw_host.items()}
    RT = cuda.to_device(np.ascontiguousarray(p["R"].T)) if recurrent else None
    dummy = cuda.to_device(_dummy(p))

    def no_copy(*args, **kw):
        raise AssertionError("host-to-device copy with device arguments")
    monkeypatch.setattr(cuda, "to_device", no_copy)
    if recurrent:
        K.cell_forward_recurrent(dp["I"], False, 0, T, dp["state0"], dp["P"], RT, p["mode"],
                                 p["sg"], dp["rnd"], dfw["u"], dfw["v"], dfw["s"], dfw["a"])
        K.cell_backward_recurrent(dtr["u"], dtr["v"], dtr["s"], dtr["a"], dp["state0"], dp["dv"],
                                  dp["du"], (True, True, False, True), 0, T, dp["P"], dp["R"],
                                  p["mode"], p["sg"], dbw["dI"], dummy[0], dbw["acc"], dbw["adj"],
                                  dbw["dstate0"])
    else:
        K.cell_forward_scan(dp["I"], False, 0, T, dp["state0"], dp["P"], p["mode"], p["sg"],
                            dp["rnd"], dfw["u"], dfw["v"], dfw["s"], dfw["a"])
        K.cell_backward_scan(dtr["u"], dtr["v"], dtr["s"], dtr["a"], dp["state0"], dp["dv"],
                             dp["du"], dummy, (True, True, False, True), False, 0, T, dp["P"],
                             p["mode"], p["sg"], dbw["dI"], dbw["acc"], dbw["adj"], dbw["dstate0"])
    for host, dev in ((fw_host, dfw), (bw_host, dbw)):
        for k in host:
            np.testing.assert_array_equal(dev[k].copy_to_host(), host[k], err_msg=k)


# --------------------------------------------------------------------------
# Surrogate dispatch: every family code against the NumPy formulas
# --------------------------------------------------------------------------

def test_device_surrogate_dispatch_matches_numpy_formulas():
    x = np.concatenate([np.linspace(-2.5, 2.5, 9), [-1e-3, 0.0, 1e-3, 1.0]])
    rows, xs, vs, want_phi, want_G = [], [], [], [], []
    for f in sgs.FAMILIES:
        s = sgs.get(f.name, scale=1.5) if f.name != "zero" else sgs.get(f.name)
        for spike in (0.0, 1.0):
            v = np.full_like(x, spike)
            rows += [s.kernel_args()] * x.size
            xs.append(x)
            vs.append(v)
            want_phi.append(s.phi(x, v))
            want_G.append(s.G(x) if s.has_primitive else np.full_like(x, np.nan))
    unknown = (len(sgs.FAMILIES), 1.0, 1.0, 1.0, 1.0, 0.0, 1.0)
    rows.append(unknown)
    xs.append([0.1])
    vs.append([1.0])
    phi, G = _surrogate_values(np.concatenate(xs), np.concatenate(vs), np.array(rows))
    assert np.isnan(phi[-1]) and np.isnan(G[-1])
    want_phi, want_G = np.concatenate(want_phi), np.concatenate(want_G)
    # math vs NumPy transcendental functions differ by an ulp; 1 - tanh^2 cancels
    np.testing.assert_allclose(phi[:-1], want_phi, rtol=1e-14,
                               atol=1e-15 * max(1.0, np.max(np.abs(want_phi))))
    np.testing.assert_array_equal(np.isnan(G[:-1]), np.isnan(want_G))
    np.testing.assert_allclose(G[:-1], want_G, rtol=1e-14, atol=1e-15)
    assert np.all(np.isfinite(want_phi))


# --------------------------------------------------------------------------
# Device helpers
# --------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True),
                                             (True, True)])
def test_gemm_matches_numpy(trans_a, trans_b, dtype):
    rng = np.random.default_rng(3)
    M, Kd, Nc = 18, 19, 7              # not multiples of the tile; two tiles along M and K
    A = rng.normal(size=(Kd, M) if trans_a else (M, Kd)).astype(dtype)
    Bm = rng.normal(size=(Nc, Kd) if trans_b else (Kd, Nc)).astype(dtype)
    want = (A.T if trans_a else A) @ (Bm.T if trans_b else Bm)
    if (trans_a == trans_b) == (dtype == "float64"):
        C = np.full((M, Nc), np.nan, dtype)                    # host arrays, C overwritten
        K.gemm(A, Bm, C, trans_a, trans_b)
    else:                                                      # device arrays, C += ...
        C0 = rng.normal(size=(M, Nc)).astype(dtype)
        dC = cuda.to_device(C0)
        K.gemm(cuda.to_device(A), cuda.to_device(Bm), dC, trans_a, trans_b, accumulate=True)
        C = dC.copy_to_host()
        want = C0 + want
    assert _rel(C, want) <= TOL[dtype]


def test_gemm_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="gemm"):
        K.gemm(np.zeros((3, 4)), np.zeros((5, 2)), np.zeros((3, 2)))
    with pytest.raises(TypeError, match="dtype"):
        K.gemm(np.zeros((3, 4), np.float32), np.zeros((4, 2)), np.zeros((3, 2)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_add_bias_and_sum_rows_match_numpy(dtype):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(5, 37)).astype(dtype)
    b = rng.normal(size=37).astype(dtype)
    Xh = X.copy()
    K.add_bias(Xh, b)
    assert _rel(Xh, X + b) <= TOL[dtype]
    dX = cuda.to_device(X)
    K.add_bias(dX, cuda.to_device(b))
    np.testing.assert_array_equal(dX.copy_to_host(), Xh)
    for rows in (7, 600):               # 600 > CHUNK: chunk sums first
        Y = rng.normal(size=(rows, 5)).astype(dtype)
        out = np.full(5, np.nan, dtype)
        K.sum_rows(Y, out)
        assert _rel(out, Y.sum(axis=0)) <= TOL[dtype] * (10 if dtype == "float32" else 1)
        base = rng.normal(size=5).astype(dtype)
        dout = cuda.to_device(base)
        K.sum_rows(cuda.to_device(Y), dout, accumulate=True)
        assert _rel(dout.copy_to_host(), base + Y.sum(axis=0, dtype=np.float64)) <= \
            TOL[dtype] * (10 if dtype == "float32" else 1)
