"""lifgrad.workspace: step-sized buffers reused between steps, never while
anything else still holds them."""
import numpy as np

from lifgrad import LIFConfig, losses, optim
from lifgrad.network import Dense, Readout, Sequential
from lifgrad.workspace import Workspace


def test_a_buffer_is_handed_out_again_only_when_nothing_holds_it():
    ws = Workspace()
    a = ws.empty((64, 300), np.float32)
    b = ws.empty((64, 300), np.float32)
    assert a is not b                                   # a is held
    a_id = id(a)
    del a
    c = ws.empty((64, 300), np.float32)
    assert id(c) == a_id                                # a was free again
    view = c[3:]
    del c
    d = ws.empty((64, 300), np.float32)
    assert d.base is None and d is not view.base        # a view holds its base
    assert ws.empty((64, 300), np.float64).dtype == np.float64
    small = ws.empty((3, 4), np.float32)
    assert not any(small is x for pool in ws._bufs.values() for x in pool)   # not pooled


def _net():
    cfg = LIFConfig(surrogate="atan")
    return Sequential([Dense(120, 300, cfg, alpha=0.9), Dense(300, 80, cfg, alpha=0.9),
                       Readout(80, 4)], dtype="float32")


def test_a_trace_the_caller_keeps_is_never_overwritten():
    rng = np.random.default_rng(0)
    net = _net()
    x1 = (rng.random((20, 32, 120)) < 0.2).astype(np.float32)
    x2 = (rng.random((20, 32, 120)) < 0.2).astype(np.float32)
    out1, tr1 = net.forward(x1)
    keep = [(lt.trace.u.copy(), lt.trace.v.copy()) for lt in tr1.layers]
    g1 = net.backward(tr1, du=np.ones_like(out1))
    g1c = {k: v.copy() for k, v in g1.items()}
    for _ in range(3):                                   # more steps with other inputs
        out2, tr2 = net.forward(x2)
        net.backward(tr2, du=np.ones_like(out2))
    for lt, (u, v) in zip(tr1.layers, keep):
        np.testing.assert_array_equal(lt.trace.u, u)
        np.testing.assert_array_equal(lt.trace.v, v)
    for k in g1:
        np.testing.assert_array_equal(g1[k], g1c[k])


def test_steps_reuse_the_buffers_and_give_the_same_numbers_as_fresh_ones():
    """A training loop whose step drops its trace: from the second step on no
    new buffer enters the pool, and the parameters equal those of the same
    steps run without a workspace (fresh arrays every time)."""
    rng = np.random.default_rng(1)
    xs = [(rng.random((20, 32, 120)) < 0.2).astype(np.float32) for _ in range(4)]
    ys = rng.integers(0, 4, 32)

    def train(net):
        opt = optim.Adam(1e-2)
        sizes = []

        def step(x):
            out, tr = net.forward(x)
            lo = losses.ce_membrane(None, tr.layers[-1].trace.u, ys)
            opt.step(net.params, net.backward(tr, du=lo.du))
        for x in xs:
            step(x)
            sizes.append(sum(len(p) for p in net.workspace._bufs.values()))
        return net.params, sizes

    p_ws, sizes = train(_net())
    assert sizes[1] == sizes[-1] > 0
    plain = _net()
    plain.__dict__["_workspace"] = _NoPool()
    p_plain, _ = train(plain)
    for k in p_ws:
        np.testing.assert_array_equal(p_ws[k], p_plain[k])


class _NoPool(Workspace):
    def empty(self, shape, dtype):
        return np.full(shape, np.nan, dtype) if np.dtype(dtype).kind == "f" else \
            np.empty(shape, dtype)
