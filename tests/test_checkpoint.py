"""Checkpointed backward for long sequences: the same bits as the full trace."""
import numpy as np
import pytest

from lifgrad import LIFConfig
from lifgrad.checkpoint import every_for_budget, trace_bytes
from lifgrad.network import TIME_CHUNK, CheckpointTrace, Dense, Readout, Sequential, time_chunk

MODELS = [dict(), dict(synaptic=True), dict(adaptive=True), dict(recurrent="one"),
          dict(synaptic=True, adaptive=True)]


def _net(model, dtype, readout=False, reset="subtract"):
    cfg = LIFConfig(surrogate="sigmoid", reset=reset, **model)
    layers = [Dense(12, 24, cfg, alpha=0.9, learn=("alpha", "theta")),
              Dense(24, 16, LIFConfig(surrogate="atan", reset=reset), alpha=0.95, learn=("theta",))]
    layers.append(Readout(16, 5, alpha=0.8, learn=("alpha",)) if readout else
                  Dense(16, 5, LIFConfig(surrogate="fast_sigmoid"), alpha=0.9))
    net = Sequential(layers, dtype=dtype, seed=3)
    net.params["layer0.W"] = net.params["layer0.W"] * 3
    return net


@pytest.mark.parametrize("model", MODELS, ids=lambda m: "-".join(m) or "lif")
@pytest.mark.parametrize("static,readout", [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_checkpointed_gradients_equal_full_trace_bitwise(model, static, readout, dtype):
    rng = np.random.default_rng(0)
    T, B = 200, 4
    net = _net(model, dtype, readout)
    x = rng.uniform(0, 1, (B, 12)) if static else (rng.uniform(size=(T, B, 12)) < 0.3) * 1.0
    dv = None if readout else rng.normal(size=(T, B, 5))
    du = rng.normal(size=(T, B, 5))
    out, tr = net.forward(x, T=T)
    g = net.backward(tr, dv=dv, du=du, need_input_grad=True)
    for K in (1, 70, 128, 500):                     # rounded up to multiples of TIME_CHUNK
        out2, tr2 = net.forward(x, T=T, checkpoint_every=K)
        assert isinstance(tr2, CheckpointTrace)
        np.testing.assert_array_equal(out, out2)
        g2 = net.backward(tr2, dv=dv, du=du, need_input_grad=True)
        assert list(g2) == list(g)
        for k in g:
            np.testing.assert_array_equal(g[k], g2[k], err_msg=f"{k} K={K}")


@pytest.mark.parametrize("model", MODELS, ids=lambda m: "-".join(m) or "lif")
def test_trace_bytes_counts_what_a_forward_keeps(model):
    """``trace_bytes``: the full trace's arrays exactly; the checkpointed
    trace's states and top-layer trace exactly, plus one segment's buffers."""
    T, B = 150, 3
    net = _net(model, "float32")
    x = (np.random.default_rng(1).uniform(size=(T, B, 12)) < 0.3) * 1.0

    def kept(tr):
        return sum(a.nbytes for a in (tr.u, tr.v, tr.s, tr.a) if a is not None)

    _, full = net.forward(x)
    assert trace_bytes(net, T, B) == sum(kept(lt.trace) for lt in full.layers)
    _, ck = net.forward(x, checkpoint_every=10)         # time_chunk(3) = 64 steps: K = 64
    assert ck.K == 64 and len(ck.states) == len(net.layers) - 1
    recompute = trace_bytes(net, T, B, 10) - sum(s.nbytes for s in ck.states) \
        - kept(ck.layers[-1].trace)
    L = min(ck.K, T)
    per_step = sum(lt.trace.u[0].nbytes + lt.trace.v[0].nbytes for lt in full.layers[:-1])
    assert recompute >= (L + 1) * per_step               # at least the segment's u and v


def test_every_for_budget_picks_the_longest_segment_that_fits():
    T, B = 2048, 2
    net = _net(dict(synaptic=True), "float32")
    C = time_chunk(B)
    full = trace_bytes(net, T, B)
    assert every_for_budget(net, T, B, full) is None           # the full trace fits
    budget = full / 3
    K = every_for_budget(net, T, B, budget)
    assert K % C == 0 and trace_bytes(net, T, B, K) <= budget
    assert all(trace_bytes(net, T, B, k) > budget for k in range(K + C, T + C, C))
    smallest = min(trace_bytes(net, T, B, k) for k in range(C, T + C, C))
    with pytest.raises(ValueError, match="budget_bytes: .* below the smallest checkpointed"):
        every_for_budget(net, T, B, smallest - 1)
    with pytest.raises(ValueError, match="budget_bytes: expected a positive number"):
        every_for_budget(net, T, B, -5)


def test_checkpoint_trace_keeps_only_segment_states():
    T, B = 2048, 2
    net = _net({}, "float32")
    x = (np.random.default_rng(1).uniform(size=(T, B, 12)) < 0.3) * 1.0
    _, full = net.forward(x)
    _, ck = net.forward(x, checkpoint_every=256)
    full_bytes = sum(lt.trace.u.nbytes + lt.trace.v.nbytes for lt in full.layers)
    ck_bytes = sum(s.nbytes for s in ck.states) + ck.layers[-1].trace.u.nbytes * 2
    assert ck.K == 256 and len(ck.states[0]) == T // 256
    assert ck_bytes < full_bytes / 4


def test_checkpointing_checks_its_arguments():
    sto = Sequential([Dense(3, 4, LIFConfig(forward="stochastic", surrogate="sigmoid"))])
    with pytest.raises(TypeError, match="rng: forward='stochastic' needs a numpy.random.Generator"):
        sto.forward(np.ones((10, 1, 3)), checkpoint_every=5)
    for bad in (0, -3, 2.5, True, "8"):
        with pytest.raises(ValueError, match="checkpoint_every: expected an integer >= 1"):
            Sequential([Dense(3, 4)]).forward(np.ones((10, 1, 3)), checkpoint_every=bad)
    assert TIME_CHUNK == 64
    assert (time_chunk(4), time_chunk(16), time_chunk(128), time_chunk(5000)) == (64, 64, 16, 1)


def test_checkpointed_stochastic_forward_replays_the_same_draws():
    """A stochastic layer below the top: the checkpointed forward consumes the
    generator exactly as the full forward does (same spikes, same state after),
    and its recompute replays each segment's draws (same gradients)."""
    cfg = LIFConfig(forward="stochastic", surrogate="sigmoid")
    net = Sequential([Dense(6, 9, cfg, alpha=0.9), Dense(9, 4, cfg, alpha=0.9)], seed=2,
                     dtype="float64")
    net.params["layer0.W"] = net.params["layer0.W"] * 4
    net.params["layer1.W"] = net.params["layer1.W"] * 4
    x = np.random.default_rng(3).uniform(0, 1, (150, 5, 6))
    r1, r2 = np.random.default_rng(11), np.random.default_rng(11)
    out, tr = net.forward(x, rng=r1)
    out2, tr2 = net.forward(x, rng=r2, checkpoint_every=64)
    np.testing.assert_array_equal(out, out2)
    assert r1.random() == r2.random()            # the generator left in the same place
    assert 0.05 < out.mean() < 0.95
    g, g2 = net.backward(tr, dv=1.0), net.backward(tr2, dv=1.0)
    for k in g:
        np.testing.assert_array_equal(g[k], g2[k], err_msg=k)
    # the replay matters: other draws give other gradients
    _, tr3 = net.forward(x, rng=np.random.default_rng(12), checkpoint_every=64)
    g3 = net.backward(tr3, dv=1.0)
    assert not np.array_equal(g3["layer0.W"], g["layer0.W"])


def test_checkpointed_equals_full_trace_at_blas_sizes():
    """Large enough that BLAS uses different kernels for different row counts:
    the products are chunked the same way in both paths (CK3)."""
    rng = np.random.default_rng(7)
    T, B = 330, 16
    net = Sequential([Dense(300, 200, LIFConfig(surrogate="atan"), alpha=0.95),
                      Dense(200, 10, LIFConfig(surrogate="atan"), alpha=0.95)], dtype="float32")
    x = (rng.uniform(size=(T, B, 300)) < 0.2).astype(np.float32)
    du = rng.normal(size=(T, B, 10)).astype(np.float32)
    _, tr = net.forward(x)
    g = net.backward(tr, du=du, need_input_grad=True)
    _, tr2 = net.forward(x, checkpoint_every=64)
    g2 = net.backward(tr2, du=du, need_input_grad=True)
    for k in g:
        np.testing.assert_array_equal(g[k], g2[k], err_msg=k)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: "-".join(m) or "lif")
@pytest.mark.parametrize("static,readout", [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_chunked_full_trace_backward_equals_layer_by_layer_bitwise(model, static, readout, dtype):
    """The full-trace backward runs chunk by chunk through all layers (time_chunk(512)
    = 4 steps: 3 chunks here); asking for ``record`` (every layer's dL/dI)
    changes no bit of the gradients, layer_dv and the input gradient included."""
    rng = np.random.default_rng(1)
    T, B = 10, 512
    assert time_chunk(B) < T
    net = _net(model, dtype, readout)
    x = rng.uniform(0, 1, (B, 12)) if static else (rng.uniform(size=(T, B, 12)) < 0.3) * 1.0
    dv = None if readout else rng.normal(size=(T, B, 5))
    du = rng.normal(size=(T, B, 5))
    _, tr = net.forward(x, T=T)
    extra = {0: rng.normal(size=(T, B, 24))}
    g = net.backward(tr, dv=dv, du=du, need_input_grad=True, layer_dv=extra)
    rec = {}
    g2 = net.backward(tr, dv=dv, du=du, need_input_grad=True, layer_dv=extra, record=rec)
    assert list(g2) == list(g) and len(rec) == 3
    for k in g:
        np.testing.assert_array_equal(g[k], g2[k], err_msg=k)
    # and the comparison can fail: another layer_dv changes the gradients
    g3 = net.backward(tr, dv=dv, du=du, need_input_grad=True, layer_dv={0: 2 * extra[0]})
    assert not np.array_equal(g3["layer0.W"], g["layer0.W"])


def test_layer_dv_of_the_wrong_shape_is_refused_by_the_chunked_backward():
    net = _net({}, "float64")
    _, tr = net.forward(np.ones((6, 2, 12)))
    with pytest.raises(ValueError, match=r"layer_dv\[1\]: expected shape \(6, 2, 16\)"):
        net.backward(tr, du=np.ones((6, 2, 5)), layer_dv={1: np.ones((6, 2, 3))})


@pytest.mark.parametrize("record", [None, {}])
def test_layer_terms_naming_no_layer_are_refused_by_both_backward_paths(record):
    """The backward checks layer_dv/layer_du with or without ``record``: a
    wrong shape, or a key that is not a layer index, is an error rather than
    silently ignored."""
    net = _net({}, "float64")
    _, tr = net.forward(np.ones((6, 2, 12)))
    du = np.ones((6, 2, 5))
    with pytest.raises(ValueError, match=r"layer_du\[0\]: expected shape \(6, 2, 24\)"):
        net.backward(tr, du=du, layer_du={0: np.ones((6, 2, 3))}, record=record)
    for bad in (3, -1, "0", True):
        with pytest.raises(ValueError, match=r"layer_dv: keys must be layer indices"):
            net.backward(tr, du=du, layer_dv={bad: np.ones((6, 2, 24))}, record=record)
    # a valid term is used by both paths, and changes the gradient
    g0 = net.backward(tr, du=du, record=record)
    g1 = net.backward(tr, du=du, layer_dv={np.int64(0): np.ones((6, 2, 24))}, record=record)
    assert not np.array_equal(g0["layer0.W"], g1["layer0.W"])


@pytest.mark.parametrize("top", [dict(synaptic=True), dict(adaptive=True),
                                 dict(synaptic=True, adaptive=True, reset="zero")],
                         ids=lambda m: "-".join(m))
def test_checkpointed_backward_reuses_the_kept_top_trace_bitwise(top):
    """The top layer's trace is kept by the checkpointed forward and read back
    (not recomputed) by its backward, lead row from the checkpoint: the same
    bits as the full trace for a top layer with synaptic and adaptive state."""
    rng = np.random.default_rng(5)
    T, B = 130, 3
    net = Sequential([Dense(6, 12, LIFConfig(surrogate="sigmoid"), alpha=0.9),
                      Dense(12, 4, LIFConfig(surrogate="atan", **top), alpha=0.85,
                            learn=("alpha", "theta") + (("alpha_s",) if "synaptic" in top else ())
                            + (("rho", "beta_a") if "adaptive" in top else ()))],
                     dtype="float64", seed=1)
    net.params["layer0.W"] = net.params["layer0.W"] * 3
    net.params["layer1.W"] = net.params["layer1.W"] * 3
    x = (rng.uniform(size=(T, B, 6)) < 0.4) * 1.0
    dv, du = rng.normal(size=(T, B, 4)), rng.normal(size=(T, B, 4))
    out, tr = net.forward(x)
    assert 0 < float(tr.layers[-1].trace.v.mean()) < 1
    g = net.backward(tr, dv=dv, du=du, need_input_grad=True)
    out2, tr2 = net.forward(x, checkpoint_every=64)
    g2 = net.backward(tr2, dv=dv, du=du, need_input_grad=True)
    for k in g:
        np.testing.assert_array_equal(g[k], g2[k], err_msg=k)
