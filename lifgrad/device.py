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
partials of the neuron-parameter gradients (``7 x N``), which go through the
same :func:`~lifgrad.functional.reduce_grads` and parametrisation chain rule
as on the CPU.  The loss reads the top layer's ``(T, B, n_out)`` output on the
host (small: ``n_out`` is the number of classes) and sends back its gradient.

On a machine without a GPU, Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``
set before numba is imported) runs the same code slowly; the tests use it.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .backends import available, require
from .functional import Parts, reduce_grads
from .validation import check_finite
from .network import Sequential

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
    P: np.ndarray      # host (8, N)
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
        if not K._is_device(x):
            x = np.asarray(x)
            if x.ndim not in (2, 3) or x.shape[-1] != net.n_in or 0 in x.shape:
                raise ValueError(f"x: expected shape (T, B, {net.n_in}) or static "
                                 f"(B, {net.n_in}), got {x.shape}")
            check_finite("x", x)
            x = cuda.to_device(np.ascontiguousarray(x, dtype=self.dtype))
        xs = tuple(x.shape)          # (the simulator's shapes index from the front only)
        static = len(xs) == 2
        if static:
            if T is None or int(T) < 1:
                raise ValueError(f"T: a static input x of shape {tuple(x.shape)} needs T >= 1")
            T = int(T)
        else:
            T = xs[0]
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
            s = cuda.device_array((T, B, N), self.dtype) if cfg.synaptic else self._dummy
            a = cuda.device_array((T, B, N), self.dtype) if cfg.adaptive else self._dummy
            state0 = ops.zeros((3, B, N), self.dtype)
            if cfg.forward == "stochastic":
                if rng is None:
                    raise TypeError("rng: forward='stochastic' needs a numpy.random.Generator")
                rnd = cuda.to_device(rng.random((T, B, N)))
            else:
                rnd = np.zeros((1, 1, 1))
            mode, sg = cfg.mode(), cfg.surrogate.kernel_args()
            RT = None
            if cfg.recurrent == "all":
                R = self.params[f"layer{i}.R"]
                RT = ops.transpose(R)
                K.cell_forward_recurrent(I, static, state0, P, RT, mode, sg, rnd, u, v, s, a)
            else:
                K.cell_forward_scan(I, static, 0, T, state0, P, mode, sg, rnd, u, v, s, a)
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
        K, ops, cuda = self.K, self.ops, self.cuda
        net = self.net
        T, B = trace.T, trace.B
        shape = (T, B, net.layers[-1].n_out)

        def _adj(arg, a):
            if a is None:
                return None
            if K._is_device(a):
                if tuple(a.shape) != shape:
                    raise ValueError(f"{arg}: expected shape {shape}, got {tuple(a.shape)}")
                return a
            a = np.asarray(a)
            if a.shape != shape:
                raise ValueError(f"{arg}: expected shape {shape} (T, B, n_out), got {a.shape}")
            check_finite(arg, a)
            return cuda.to_device(np.ascontiguousarray(a, dtype=self.dtype))

        dv, du = _adj("dv", dv), _adj("du", du)
        grads = {}
        for i in range(len(net.layers) - 1, -1, -1):
            layer, lt = net.layers[i], trace.layers[i]
            cfg = layer.config
            N = layer.n_out
            neuron, factors, P = self._neuron(i, layer)
            mode, sg = cfg.mode(), cfg.surrogate.kernel_args()
            acc = ops.zeros((7, B, N), self.dtype)
            dstate0 = ops.zeros((3, B, N), self.dtype)
            dvv = self._dummy if dv is None else dv
            duu = self._dummy if du is None else du
            if cfg.recurrent == "all":
                dI = ops.zeros((T, B, N), self.dtype)
                R = self.params[f"layer{i}.R"]
                K.cell_backward_recurrent(lt.u, lt.v, lt.s, lt.a, lt.state0, dvv, duu,
                                          (dv is not None, du is not None), P, R, mode, sg,
                                          dI, acc, dstate0)
                dR = cuda.device_array((N, N), self.dtype)
                if T > 1:
                    K.gemm(_as2d(dI[1:]), _as2d(lt.v[:T - 1]), dR, trans_a=True)     # (R3)
                else:
                    ops.fill(dR, 0.0)
                if not layer.autapses:
                    ops.zero_diagonal(dR)                                        # frozen diagonal
                grads[f"layer{i}.R"] = dR
                if lt.static:
                    summed = cuda.device_array(B * N, self.dtype)
                    K.sum_rows(dI.reshape(T, B * N), summed)
                    dI = summed.reshape(B, N)
            else:
                adj = ops.zeros((3, B, N), self.dtype)
                dI = ops.zeros((1, B, N), self.dtype) if lt.static else \
                    cuda.device_array((T, B, N), self.dtype)
                K.cell_backward_scan(lt.u, lt.v, lt.s, lt.a, lt.state0, dvv, duu, self._dummy,
                                     (dv is not None, du is not None, False, True), lt.static, 0, T,
                                     P, mode, sg, dI, acc, adj, dstate0)
                if lt.static:
                    dI = dI.reshape(B, N)
            # neuron-parameter gradients: batch sums on the device, the rest as on the CPU
            acc_n = cuda.device_array((7, N), self.dtype)
            for j in range(7):
                K.sum_rows(acc[j], acc_n[j])
            acc_h = acc_n.copy_to_host()[:, None, :]
            parts = Parts(None, acc_h, np.zeros((3, 1, N), self.dtype), None, P)
            tr_like = _TraceLike(lt.static)
            lg = reduce_grads(parts, neuron, tr_like, cfg)
            # weights (A20b), (A21)
            ub2 = _as2d(dI)
            dW = cuda.device_array((N, layer.n_in), self.dtype)
            K.gemm(ub2, _as2d(lt.x), dW, trans_a=True)
            grads[f"layer{i}.W"] = dW
            if layer.bias or layer.rec_bias:
                db = cuda.device_array(N, self.dtype)
                K.sum_rows(ub2, db)
                if layer.bias:
                    grads[f"layer{i}.b"] = db
                if layer.rec_bias:
                    grads[f"layer{i}.b_rec"] = db
            if cfg.recurrent == "one":
                grads[f"layer{i}.R"] = cuda.to_device(np.asarray(lg.R, self.dtype).reshape(
                    self.params[f"layer{i}.R"].shape))
            for k, g in layer.chain(lg, factors).items():
                grads[f"layer{i}.{k}"] = cuda.to_device(
                    np.asarray(g, self.dtype).reshape(self.params[f"layer{i}.{k}"].shape))
            if i > 0:                                                            # (A20c)
                dx = cuda.device_array((T, B, layer.n_in), self.dtype)
                K.gemm(ub2, self.params[f"layer{i}.W"], _as2d(dx))
                if net.layers[i - 1].readout:
                    dv, du = None, dx
                else:
                    dv, du = dx, None
        return {k: grads[k] for k in self.params if k in grads}


class _TraceLike(NamedTuple):
    static: bool
    shapes0: tuple = (None, None, None)


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
