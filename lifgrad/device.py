"""Device-resident training on an NVIDIA GPU (numba-cuda).

:class:`DeviceNetwork` mirrors a :class:`~lifgrad.network.Sequential`: the
weights, the optimiser state and every trace live on the device for as long as
it is used (a whole training run); the input moves to the device once per
batch.  Forward and backward are :meth:`Sequential.forward` and
:meth:`Sequential.backward` step by step, with the cell kernels of
``lifgrad/kernels/cuda.py`` (the twins of the CPU kernels) and device matrix
products (CuPy/cuBLAS when installed, else a tiled kernel):

* forward, per layer: ``I = h W^T + b`` for all ``T*B`` rows (A1), the scan
  (or the recurrent kernel with ``R^T``), the spikes or the membrane as the
  next layer's input (A20a);
* backward, per layer from the top: the adjoint scan, ``dW = sum_t ubar_t^T
  x_t``, ``db = sum_t ubar_t`` (A20b), ``dR`` (R3), ``dx = ubar W`` (A20c).

What stays on the host is O(N) per layer and step: the per-neuron parameter
vectors the kernels read (``P``, a few numbers each) and the batch-summed
partials of the neuron-parameter gradients (``N_ACC x N``), which go through the
same :func:`~lifgrad.functional.reduce_grads` and parametrisation chain rule
as on the CPU.  The loss reads the top layer's ``(T, B, n_out)`` output on the
host (small: ``n_out`` is the number of classes) and sends back its gradient.

On a machine without a GPU, Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``
set before numba is imported) runs the same code slowly; the tests use it.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .adjoint import backward_segments
from .backends import available, require
from .functional import backward_scan, cell_forward
from .kernels.constants import N_ACC
from .network import Sequential
from .validation import check_adjoint, check_sequence, check_sequence_shape

__all__ = ["DeviceNetwork", "DeviceOptimizer", "available", "require"]


def _cuda():
    from numba import cuda
    return cuda


class _Layer(NamedTuple):
    x: object          # device input of the layer: (T, B, n_in), or (B, n_in) if static
    static: bool
    u: object
    v: object
    s: object          # device (T, B, N) or a (1, 1, 1) dummy
    a: object
    state0: object     # device zeros (3, B, N)
    P: np.ndarray      # host (N_P, N)
    RT: object         # device R^T for recurrent='all', else None


class DeviceTrace(NamedTuple):
    layers: list       # one _Layer per layer
    T: int
    B: int

    @property
    def top(self):
        return self.layers[-1]


def _as2d(a):
    shape = tuple(a.shape)
    return a.reshape(int(np.prod(shape[:-1])), shape[-1])


class DeviceNetwork:
    """The parameters of ``net`` on the device, with forward/backward there.

    ``params`` maps the names of ``net.params`` to device arrays; :meth:`to_host`
    copies them back into ``net.params``.  Layers that need features the
    device path does not have (a stochastic forward draws its uniforms on the
    host and sends them; everything else runs on the device) are refused with
    the reason."""

    def __init__(self, net: Sequential):
        for i, layer in enumerate(getattr(net, "layers", ())):
            if layer.config.delay_output:
                raise ValueError(f"net: layer {i} has delay_output=True (M5), which the device "
                                 "network does not implement; train it on the host "
                                 "(Sequential.forward/backward)")
        require()
        from .kernels import cuda as K
        from .kernels import cuda_ops as ops
        self.K, self.ops, self.cuda = K, ops, _cuda()
        if not isinstance(net, Sequential):
            raise TypeError(f"net: expected a Sequential, got {type(net).__name__}")
        self.net = net
        self.dtype = net.dtype
        self.params = {k: self.cuda.to_device(np.ascontiguousarray(v)) for k, v in net.params.items()}
        self._dummy = self.cuda.to_device(np.zeros((1, 1, 1), self.dtype))
        self._small = {}

    # -- parameters ---------------------------------------------------------
    def to_host(self):
        """Copy the device parameters into ``net.params`` (in place) and return the net."""
        for k, d in self.params.items():
            self.net.params[k] = d.copy_to_host()
        return self.net

    def _host_small(self, i, layer):
        """Host copies of the layer's per-neuron parameters (``effective`` reads
        them); the all-to-all R stays on the device (a zero stand-in here)."""
        p = {}
        for k in self.net.layer_params(self.params, i):
            name = f"layer{i}.{k}"
            if k in ("W", "b", "b_rec"):
                continue
            if k == "R" and layer.config.recurrent == "all":
                p[k] = np.zeros((layer.n_out, layer.n_out), self.dtype)
                continue
            p[k] = self.params[name].copy_to_host()
        return p

    def _neuron(self, i, layer):
        neuron, factors = layer.effective(self._host_small(i, layer))
        P = neuron.packed(layer.n_out, self.dtype, layer.config)
        return neuron, factors, P

    # -- forward ------------------------------------------------------------
    def forward(self, x, T=None, rng=None):
        """Run on ``x`` (host or device; ``(T, B, n_in)`` or static ``(B, n_in)``
        with ``T=``).  Returns a :class:`DeviceTrace`; the top layer's output
        is ``trace.top.u`` (readout) or ``trace.top.v``, on the device."""
        K, ops, cuda = self.K, self.ops, self.cuda
        net = self.net
        if K._is_device(x):       # (the simulator's shapes index from the front only)
            T = check_sequence_shape("x", tuple(x.shape), T, net.n_in)[1]
        else:
            x, _, T = check_sequence("x", x, T, net.n_in)
            x = cuda.to_device(np.ascontiguousarray(x, dtype=self.dtype))
        xs = tuple(x.shape)
        static = len(xs) == 2
        B = xs[-2]
        layers, h = [], x
        for i, layer in enumerate(net.layers):
            cfg = layer.config
            neuron, _, P = self._neuron(i, layer)
            N = layer.n_out
            rows = B if static else T * B
            I = cuda.device_array((1 if static else T, B, N), self.dtype)
            K.gemm(_as2d(h), self.params[f"layer{i}.W"], I.reshape(rows, N), trans_b=True)
            if layer.bias:
                K.add_bias(I.reshape(rows, N), self.params[f"layer{i}.b"])
            if layer.rec_bias:
                K.add_bias(I.reshape(rows, N), self.params[f"layer{i}.b_rec"])
            u = cuda.device_array((T, B, N), self.dtype)
            v = cuda.device_array((T, B, N), self.dtype)
            s = cuda.device_array((T, B, N), self.dtype) if cfg.stores_s else self._dummy
            a = cuda.device_array((T, B, N), self.dtype) if cfg.adaptive else self._dummy
            state0 = ops.zeros((3, B, N), self.dtype)
            if cfg.forward == "stochastic":
                if rng is None:
                    raise TypeError("rng: forward='stochastic' needs a numpy.random.Generator")
                rnd = cuda.to_device(rng.random((T, B, N)))
            else:
                rnd = np.zeros((1, 1, 1))
            RT = ops.transpose(self.params[f"layer{i}.R"]) if cfg.recurrent == "all" else None
            cell_forward(cfg, I, static, 0, T, state0, P, RT, rnd, u, v, s, a, kernels=K)
            layers.append(_Layer(h, static, u, v, s, a, state0, P, RT))
            h = u if layer.readout else v
            static = False
        return DeviceTrace(layers, T, B)

    def output(self, trace):
        """(spikes or None, membrane) of the top layer, on the host."""
        top = trace.top
        u = top.u.copy_to_host()
        return (None if self.net.layers[-1].readout else top.v.copy_to_host()), u

    # -- backward -----------------------------------------------------------
    def backward(self, trace, dv=None, du=None):
        """Device gradients of every parameter given the top layer's ``dv``/``du``
        (host or device, ``(T, B, n_out)``, either may be None).  Same result as
        :meth:`Sequential.backward` (to rounding)."""
        K, cuda = self.K, self.cuda
        net = self.net
        T, B = trace.T, trace.B
        shape = (T, B, net.layers[-1].n_out)

        def _adj(arg, a):
            if a is None or not K._is_device(a):
                a = check_adjoint(arg, a, shape, self.dtype)     # the host's checks
                return None if a is None else cuda.to_device(a)
            if tuple(a.shape) != shape:
                raise ValueError(f"{arg}: expected shape {shape}, got {tuple(a.shape)}")
            return a

        dv, du = _adj("dv", dv), _adj("du", du)

        def views(seg, t0, t1):        # the whole trace as one segment
            return [(lt.u, lt.v, lt.s, lt.a, lt.state0, 0, lt.x, lt.static)
                    for lt in trace.layers]

        x = trace.layers[0].x
        grads = backward_segments(net, [(0, T)], views, x, trace.layers[0].static, B, dv, du,
                                  DeviceArrays(self), False)
        return {k: grads[k] for k in self.params if k in grads}


class DeviceArrays:
    """The device twin of :class:`lifgrad.adjoint.HostArrays`: the reverse
    pass's buffers on the GPU, its products by ``kernels.cuda.gemm`` and
    ``sum_rows``, the CUDA cell kernels; the per-neuron parameters and the
    batch-summed partials on the host (O(N))."""

    def __init__(self, dnet):
        self.d, self.K, self.ops, self.cuda = dnet, dnet.K, dnet.ops, dnet.cuda
        self.dtype = dnet.dtype

    def neuron(self, i):
        return self.d._neuron(i, self.d.net.layers[i])

    def weight(self, i, name):
        return self.d.params[f"layer{i}.{name}"]

    def zeros(self, shape):
        return self.ops.zeros(shape, self.dtype)

    def buffer(self, shape):
        return self.cuda.device_array(shape, self.dtype)

    def steps(self, arr, t0, t1, lead):
        if arr is None or (lead == 0 and t0 == 0 and t1 == arr.shape[0]):
            return arr
        raise AssertionError("the device pass runs the trace as one segment")

    def row_copy(self, row):
        out = self.cuda.device_array(tuple(row.shape), self.dtype)
        out.copy_to_device(row)
        return out

    copy = row_copy

    def kernels(self, config):
        return self.K

    def scan(self, config, *args):
        backward_scan(config, *args, kernels=self.K)

    def matmul(self, a, W, out):
        self.K.gemm(_as2d(a), W, _as2d(out))                               # (A20c)

    def weight_grads(self, ub, h, dW, db, config):                        # (A20b), (A21)
        ub2, h2 = _as2d(ub), _as2d(h)
        first = dW is None
        if first:
            dW = self.cuda.device_array((ub2.shape[1], h2.shape[1]), self.dtype)
            db = self.cuda.device_array(ub2.shape[1], self.dtype)
        self.K.gemm(ub2, h2, dW, trans_a=True, accumulate=not first)
        self.K.sum_rows(ub2, db, accumulate=not first)
        return dW, db

    def recurrent_grad(self, dI, v, lead, t0, dR, config):                # (R3)
        N = dI.shape[2]
        if dR is None:
            dR = self.zeros((N, N))
        lo, hi = lead + (1 if t0 == 0 else 0), dI.shape[0]
        if hi > lo:
            self.K.gemm(_as2d(dI[lo:hi]), _as2d(v[lo - 1:hi - 1]), dR, trans_a=True,
                        accumulate=True)
        return dR

    def step_sum(self, rows, out):
        L, B, N = rows.shape
        self.K.sum_rows(rows.reshape(L, B * N), out.reshape(B * N), accumulate=True)

    def zero_diagonal(self, a):
        self.ops.zero_diagonal(a)

    def batch_sums(self, acc):
        n = acc.shape[2]
        out = self.cuda.device_array((N_ACC, n), self.dtype)
        for j in range(N_ACC):
            self.K.sum_rows(acc[j], out[j])
        return out.copy_to_host()[:, None, :]

    def result(self, name, g):
        return self.cuda.to_device(np.asarray(g, self.dtype).reshape(self.d.params[name].shape))


class DeviceOptimizer:
    """Runs a host optimiser's update rule (``optim.SGD``, ``Adam``, ``AdamW``)
    on device arrays.  The host object keeps the hyperparameters, the step
    count and, after :meth:`to_host`, the state (for checkpoints)."""

    def __init__(self, opt):
        from . import optim
        from .kernels import cuda_ops
        if not isinstance(opt, (optim.SGD, optim.Adam)):
            raise TypeError(f"optimizer: the cuda backend runs SGD, Adam and AdamW, got "
                            f"{type(opt).__name__}")
        self.opt, self.ops, self.cuda = opt, cuda_ops, _cuda()
        self.state = {k: [self.cuda.to_device(np.ascontiguousarray(a)) for a in arrs]
                      for k, arrs in opt.state.items()}

    def step(self, params, grads):
        from . import optim
        opt, ops = self.opt, self.ops
        missing = set(params) - set(grads)
        if missing:
            raise ValueError(f"grads: missing {sorted(missing)}")
        for k in params:
            if tuple(grads[k].shape) != tuple(params[k].shape):
                raise ValueError(f"grads[{k!r}]: expected shape {tuple(params[k].shape)}, "
                                 f"got {tuple(grads[k].shape)}")
        opt.t += 1
        for k, p in params.items():
            g = grads[k]
            if isinstance(opt, optim.Adam):
                if k not in self.state:
                    self.state[k] = [ops.zeros(p.shape, p.dtype), ops.zeros(p.shape, p.dtype)]
                m, v = self.state[k]
                ops.adam(p, g, m, v, opt.lr, opt.b1, opt.b2, opt.eps, opt.weight_decay,
                         opt.decoupled, opt.t)
            else:
                first, buf = False, g                  # no buffer without momentum
                if opt.momentum:
                    first = k not in self.state
                    if first:
                        self.state[k] = [ops.zeros(p.shape, p.dtype)]
                    buf = self.state[k][0]
                ops.sgd(p, g, buf, opt.lr, opt.momentum, opt.nesterov, opt.weight_decay, first)

    def to_host(self):
        """Copy the device state into the host optimiser (for ``state_dict``)."""
        self.opt.state = {k: [a.copy_to_host() for a in arrs] for k, arrs in self.state.items()}
        return self.opt
