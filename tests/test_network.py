"""Sequential networks: flat named parameters, static fast path, shapes."""
import numpy as np
import pytest

from lifgrad import LIFConfig, LIFParams, lif_backward, lif_forward
from lifgrad import surrogates as sgs
from lifgrad.network import Dense, Sequential


def test_flat_named_parameters():
    net = Sequential([Dense(4, 3, learn=("alpha",)), Dense(3, 2, bias=False, learn=("theta",))])
    assert list(net.params) == ["layer0.W", "layer0.b", "layer0.alpha", "layer1.W", "layer1.theta"]
    v, tr = net.forward(np.ones((5, 2, 4)))
    g = net.backward(tr, dv=np.ones((5, 2, 2)))
    assert list(g) == list(net.params)
    for k in g:
        assert g[k].shape == net.params[k].shape and g[k].dtype == np.float32


def test_single_layer_network_matches_functional(rng):
    cfg = LIFConfig(surrogate=sgs.get("sigmoid"))
    net = Sequential([Dense(4, 3, cfg, alpha=0.8)], dtype="float64")
    x = rng.uniform(0, 1, (6, 2, 4))
    dv = rng.normal(size=(6, 2, 3))
    v, tr = net.forward(x)
    g = net.backward(tr, dv=dv)
    W, b = net.params["layer0.W"], net.params["layer0.b"]
    v2, tr2 = lif_forward(x @ W.T + b, LIFParams(0.8), cfg)
    g2 = lif_backward(tr2, LIFParams(0.8), cfg, dv=dv)
    np.testing.assert_array_equal(v, v2)
    np.testing.assert_allclose(g["layer0.W"], np.einsum("tbn,tbi->ni", g2.I, x), rtol=1e-12)
    np.testing.assert_allclose(g["layer0.b"], g2.I.sum(axis=(0, 1)), rtol=1e-12)


def test_static_input_path_equals_repeated_input(rng):
    cfg = LIFConfig(surrogate=sgs.get("sigmoid"))
    net = Sequential([Dense(5, 4, cfg), Dense(4, 3, cfg)], dtype="float64", seed=3)
    for k in net.params:
        net.params[k] = net.params[k] * 3
    x = rng.uniform(0, 1, (2, 5))
    T = 7
    dv = rng.normal(size=(T, 2, 3))
    v1, t1 = net.forward(x, T=T)
    g1 = net.backward(t1, dv=dv, need_input_grad=True)
    v2, t2 = net.forward(np.broadcast_to(x, (T, 2, 5)))
    g2 = net.backward(t2, dv=dv, need_input_grad=True)
    np.testing.assert_array_equal(v1, v2)
    assert v1.sum() > 0
    for k in net.params:
        np.testing.assert_allclose(g1[k], g2[k], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g1["x"], g2["x"].sum(axis=0), rtol=1e-12, atol=1e-14)


def test_network_backward_does_not_mutate(rng):
    net = Sequential([Dense(3, 3), Dense(3, 2)], dtype="float64")
    before = {k: v.copy() for k, v in net.params.items()}
    x = rng.uniform(0, 1, (4, 2, 3))
    xc = x.copy()
    _, tr = net.forward(x)
    net.backward(tr, dv=np.ones((4, 2, 2)))
    for k in before:
        np.testing.assert_array_equal(before[k], net.params[k])
    np.testing.assert_array_equal(x, xc)


@pytest.mark.parametrize("n_out", [4, 20])
def test_products_with_uint8_spikes_run_in_pieces_and_match_float_products(monkeypatch, n_out):
    """Products whose operand is uint8 spikes are cast a piece at a time (the
    float copy stays small: slabs of SPIKE_ROWS rows; with an output cut into
    columns, 4 outputs here, each thread casts only its columns); the values
    are those of the float product."""
    from lifgrad import chunked
    from lifgrad import parallel, products
    rng = np.random.default_rng(0)
    v = (rng.random((6, 5, 9)) < 0.4).astype(np.uint8)
    W = rng.normal(size=(9, n_out))
    dI = rng.normal(size=(6, 5, n_out))
    monkeypatch.setattr(products, "SPIKE_ROWS", 7)
    monkeypatch.setattr(parallel, "PIECE_ROWS", 4)
    assert [r.stop for r in parallel.row_pieces(30)] == [4, 8, 12, 16, 20, 24, 28, 30]
    casts = []
    orig_astype, orig_copyto = np.ndarray.astype, np.copyto

    class Spy(np.ndarray):
        def astype(self, *a, **k):
            casts.append(self.shape)
            return orig_astype(np.asarray(self), *a, **k)

    def copyto(dst, src, **k):
        if np.asarray(src).dtype == np.uint8:
            casts.append(np.shape(src))
        return orig_copyto(dst, src, **k)
    monkeypatch.setattr(products.np, "copyto", copyto)
    vf = v.astype(np.float64)
    np.testing.assert_allclose(chunked.chunked_matmul(v, W),
                               vf @ W, rtol=1e-13, atol=1e-13)
    dW, db = chunked.weight_grads(dI, v.view(Spy))
    monkeypatch.setattr(products.np, "copyto", orig_copyto)
    if n_out == 4:      # output (4, 9) in pieces of 4 columns: (7 or 2 rows) x (4, 4, 1) columns
        assert sorted(casts) == sorted([(r, c) for r in (7, 7, 7, 7, 2) for c in (4, 4, 1)])
    else:               # output (20, 9) in pieces of rows: each slab cast once, in full
        assert casts == [(7, 9), (7, 9), (7, 9), (7, 9), (2, 9)]
    np.testing.assert_allclose(dW, dI.reshape(-1, n_out).T @ vf.reshape(-1, 9), rtol=1e-12,
                               atol=1e-12)
    np.testing.assert_allclose(db, dI.reshape(-1, n_out).sum(axis=0), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("recurrent", [None, "all"])
def test_partial_sums_only_for_layers_that_learn_neuron_parameters(monkeypatch, recurrent):
    """A layer that learns none of alpha, theta, gamma, u_reset skips their
    partial sums in the backward scan; every gradient keeps its bits (the
    layer-by-layer path via ``record``, the chunked one, the checkpointed one)."""
    from lifgrad.network import Dense as D
    rng = np.random.default_rng(3)
    T, B = 40, 3
    layers = [D(6, 9, LIFConfig(surrogate="sigmoid", recurrent=recurrent), alpha=0.9),
              D(9, 7, LIFConfig(surrogate="atan", reset="zero"), alpha=0.9, learn=("theta",)),
              D(7, 4, LIFConfig(surrogate="fast_sigmoid"), alpha=0.8)]
    net = Sequential(layers, seed=2, dtype="float64")
    net.params["layer0.W"] = net.params["layer0.W"] * 3
    assert [l.partials for l in net.layers] == [False, True, False]
    x = (rng.uniform(size=(T, B, 6)) < 0.4) * 1.0
    du = rng.normal(size=(T, B, 4))

    def grads():
        out, tr = net.forward(x)
        rec = {}
        g = [net.backward(tr, du=du, need_input_grad=True),
             net.backward(tr, du=du, need_input_grad=True, record=rec)]
        if recurrent is None:
            _, tr2 = net.forward(x, checkpoint_every=8)
            g.append(net.backward(tr2, du=du, need_input_grad=True))
        return g

    skipped = grads()
    monkeypatch.setattr(D, "partials", property(lambda self: True))
    summed = grads()
    for a, b in zip(skipped, summed):
        assert list(a) == list(b)
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.parametrize("checkpoint", [None, 3])
def test_a_scalar_dv_is_that_value_everywhere(checkpoint):
    """dv=1.0 (L = sum of the output spikes) gives the gradients of the full
    array of ones, through the chunked, the checkpointed and the
    layer-by-layer (record=) backward."""
    from lifgrad.network import Dense as D
    rng = np.random.default_rng(4)
    net = Sequential([D(12, 30, LIFConfig(surrogate="atan")), D(30, 6, LIFConfig())],
                     dtype="float32")
    x = (rng.random((9, 130, 12)) < 0.3).astype(np.float32)
    out, tr = net.forward(x, checkpoint_every=checkpoint)
    g_full = net.backward(tr, dv=np.ones(out.shape, np.float32))
    g_scalar = net.backward(tr, dv=1.0)
    for k in g_full:
        np.testing.assert_array_equal(g_full[k], g_scalar[k], err_msg=k)
    if checkpoint is None:
        g_rec = net.backward(tr, dv=1.0, record={})
        for k in g_full:
            np.testing.assert_array_equal(g_full[k], g_rec[k], err_msg=k)
    with pytest.raises(ValueError, match=r"dv: expected shape \(9, 130, 6\) .* or a scalar"):
        net.backward(tr, dv=np.ones((9, 6)))
    with pytest.raises(ValueError, match="dv: contains NaN"):
        net.backward(tr, dv=float("nan"))


def test_float64_input_is_cast_to_the_networks_dtype_as_documented():
    """Sequential.forward casts x to net.dtype (documented): a float64 input to a
    float32 network gives exactly what its float32 copy gives; a float64 network
    keeps it."""
    import numpy as np
    from lifgrad import LIFConfig
    from lifgrad.network import Dense, Sequential
    x = np.random.default_rng(3).uniform(0, 1, (6, 4, 9)) + 1e-9    # not float32-exact
    for dtype in ("float32", "float64"):
        net = Sequential([Dense(9, 5, LIFConfig())], seed=0, dtype=dtype)
        out, tr = net.forward(x)
        out_c, tr_c = net.forward(x.astype(dtype))
        assert tr.layers[0].trace.u.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(tr.layers[0].trace.u, tr_c.layers[0].trace.u)
