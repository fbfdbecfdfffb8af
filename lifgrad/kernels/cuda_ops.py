"""Small elementwise device kernels for device-resident training.

``lifgrad/kernels/cuda.py`` holds the cell kernels and the matrix helpers;
this module holds what a training step needs around them on the device:
filling, transposing, sums and sums of squares (for rates, gradient norms and
the NaN/Inf check), and the optimiser updates (the formulas of
``lifgrad/optim.py``, operation by operation).  All work on device arrays in
place; one thread per element.
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda

THREADS = 256
_JIT = dict(cache=True)


def _grid(n):
    return max(1, (n + THREADS - 1) // THREADS), THREADS


@cuda.jit(**_JIT)
def _fill_kernel(x, value):
    i = cuda.grid(1)
    if i < x.size:
        x[i] = value


def fill(x, value=0.0):
    """Set every element of the device array ``x`` to ``value``."""
    flat = x.reshape(x.size)
    if x.size:
        _fill_kernel[_grid(x.size)](flat, np.dtype(x.dtype).type(value))
    return x


def zeros(shape, dtype):
    """A device array of zeros, made on the device (no host transfer)."""
    return fill(cuda.device_array(shape, np.dtype(dtype)), 0.0)


@cuda.jit(**_JIT)
def _transpose_kernel(A, out):
    j, i = cuda.grid(2)
    if i < A.shape[0] and j < A.shape[1]:
        out[j, i] = A[i, j]


def transpose(A):
    """A contiguous device copy of the 2-D device array's transpose."""
    R, C = A.shape
    out = cuda.device_array((C, R), A.dtype)
    if R and C:
        _transpose_kernel[((C + 31) // 32, (R + 7) // 8), (32, 8)](A, out)
    return out


@cuda.jit(**_JIT)
def _zero_diagonal_kernel(A):
    i = cuda.grid(1)
    if i < A.shape[0]:
        A[i, i] = 0


def zero_diagonal(A):
    """``A[i, i] = 0`` for the square device matrix A (a frozen diagonal)."""
    if A.shape[0]:
        _zero_diagonal_kernel[_grid(A.shape[0])](A)
    return A


@cuda.jit(**_JIT)
def _square_kernel(x, out):
    i = cuda.grid(1)
    if i < x.size:
        out[i] = float(x[i]) * float(x[i])


@cuda.jit(**_JIT)
def _widen_kernel(x, out):
    i = cuda.grid(1)
    if i < x.size:
        out[i] = float(x[i])


_sum = cuda.reduce(lambda a, b: a + b)


def _reduce64(x, kernel):
    if x.size == 0:
        return 0.0
    w = cuda.device_array(x.size, np.float64)
    kernel[_grid(x.size)](x.reshape(x.size), w)
    return float(_sum(w))


def total(x):
    """The sum of all elements, accumulated in float64, as a Python float."""
    return _reduce64(x, _widen_kernel)


def sum_squares(x):
    """The sum of squares of all elements in float64 (NaN/Inf propagate)."""
    return _reduce64(x, _square_kernel)


@cuda.jit(**_JIT)
def _scale_kernel(x, f):
    i = cuda.grid(1)
    if i < x.size:
        x[i] = x[i] * f


def scale(x, f):
    """``x *= f`` in place (gradient clipping)."""
    if x.size:
        _scale_kernel[_grid(x.size)](x.reshape(x.size), np.dtype(x.dtype).type(f))
    return x


@cuda.jit(**_JIT)
def _adam_kernel(p, g, m, v, lr, b1, b2, eps, wd, decoupled, bc1, sbc2):
    i = cuda.grid(1)
    if i < p.size:
        gi = g[i]
        if wd != 0:
            if decoupled:
                p[i] = p[i] * (1 - lr * wd)
            else:
                gi = gi + wd * p[i]
        mi = m[i] * b1 + (1 - b1) * gi
        vi = v[i] * b2 + (1 - b2) * gi * gi
        m[i] = mi
        v[i] = vi
        p[i] = p[i] - (lr / bc1) * mi / (math.sqrt(vi) / sbc2 + eps)


def adam(p, g, m, v, lr, b1, b2, eps, weight_decay, decoupled, t):
    """One Adam/AdamW update of the device arrays (``optim.Adam._update``)."""
    if p.size:
        bc1 = 1 - b1 ** t
        sbc2 = math.sqrt(1 - b2 ** t)
        f = (p.reshape(p.size), g.reshape(g.size), m.reshape(m.size), v.reshape(v.size))
        _adam_kernel[_grid(p.size)](*f, float(lr), float(b1), float(b2), float(eps),
                                    float(weight_decay), bool(decoupled), float(bc1), float(sbc2))


@cuda.jit(**_JIT)
def _sgd_kernel(p, g, buf, lr, mu, wd, nesterov, first):
    i = cuda.grid(1)
    if i < p.size:
        gi = g[i]
        if wd != 0:
            gi = gi + wd * p[i]
        if mu != 0:
            b = gi if first else buf[i] * mu + gi
            buf[i] = b
            gi = gi + mu * b if nesterov else b
        p[i] = p[i] - lr * gi


def sgd(p, g, buf, lr, momentum, nesterov, weight_decay, first):
    """One SGD update (``optim.SGD._update``); ``buf`` is the momentum buffer."""
    if p.size:
        f = (p.reshape(p.size), g.reshape(g.size), buf.reshape(buf.size))
        _sgd_kernel[_grid(p.size)](*f, float(lr), float(momentum), float(weight_decay),
                                   bool(nesterov), bool(first))
