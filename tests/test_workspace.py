"""lifgrad.workspace: step-sized buffers reused between steps, never while
anything else still holds them."""
import numpy as np

from lifgrad import LIFConfig, losses, optim
from lifgrad.network import Dense, Readout, Sequential
from lifgrad.workspace import Workspace


def _owner(a):
    """The address of the pooled buffer an array is a view of (its data start)."""
    return a.__array_interface__["data"][0]


def test_a_buffer_is_handed_out_again_only_when_nothing_holds_it():
    # (the arrays are only compared through addresses taken in plain statements:
    # pytest's rewritten asserts would hold references to them)
    ws = Workspace()
    a = ws.empty((256, 300), np.float32)
    b = ws.empty((256, 300), np.float32)
    a_buf, b_buf = _owner(a), _owner(b)
    del a
    c = ws.empty((256, 300), np.float32)
    c_buf = _owner(c)                                   # a was free again
    view = c[3:]
    del c
    d = ws.empty((256, 300), np.float32)
    d_buf = _owner(d)                                   # a view holds its buffer: a new one
    del view, d, b
    pooled = {_owner(x) for x in ws._bufs}
    e = ws.empty((300, 128), np.float64)                 # another shape and dtype fits
    e_buf, e_shape, e_dtype, e_ok = (_owner(e), e.shape, e.dtype,
                                     e.flags.c_contiguous and e.ctypes.data % 16 == 0)
    big = ws.empty((256, 300 * 5), np.float32)           # larger than any: a new buffer
    big_buf = _owner(big)
    tiny = ws.empty((15, 600), np.float64)              # under 1/FIT of every free one: new
    tiny_buf = _owner(tiny)
    small = ws.empty((3, 4), np.float32)
    small_pooled = small.base is not None               # small arrays are not pooled
    del e, big, tiny, small
    n = len(ws._bufs)
    for _ in range(5):
        x = ws.empty((256, 300), np.float32)
        del x
    n_after = len(ws._bufs)
    assert a_buf != b_buf
    assert c_buf == a_buf
    assert d_buf not in (a_buf, b_buf)
    assert e_buf in pooled and e_shape == (300, 128) and e_dtype == np.float64 and e_ok
    assert big_buf not in pooled and tiny_buf not in pooled
    assert not small_pooled
    assert n_after == n


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
            sizes.append(len(net.workspace._bufs))
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
