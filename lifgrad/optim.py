"""Optimisers and learning-rate schedules on a flat, named parameter dict.

``opt.step(params, grads)`` updates ``params`` (a dict of arrays, e.g.
``net.params``) in place from ``grads`` (same keys).  The update rules are
PyTorch's (``torch.optim.SGD``, ``Adam``, ``AdamW``), so a training run can be
compared with a framework tutorial.  State is a plain dict of arrays
(``state_dict()`` / ``load_state_dict()``) so checkpoints can hold it.
"""
from __future__ import annotations

import math

import numpy as np

from . import parallel

__all__ = ["SGD", "Adam", "AdamW", "clip_grad_norm", "StepLR", "CosineLR", "ConstantLR", "get"]


def _check_lr(lr):
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr < 0:
        raise ValueError(f"lr: expected a finite number >= 0, got {lr!r}")
    return float(lr)


def _check_nonneg(name, val):
    if isinstance(val, bool) or not isinstance(val, (int, float)) or not math.isfinite(val) or val < 0:
        raise ValueError(f"{name}: expected a finite number >= 0, got {val!r}")
    return float(val)


def clip_grad_norm(grads, max_norm):
    """Scale all gradients together so their global L2 norm is at most
    ``max_norm`` (in place); return the norm before clipping."""
    if not (math.isfinite(max_norm) and max_norm > 0):
        raise ValueError(f"max_norm: expected a finite number > 0, got {max_norm!r}")
    total = math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads.values()))
    if total > max_norm:
        f = max_norm / (total + 1e-6)
        for k in grads:
            grads[k] = grads[k] * f
    return total


from .tuning import FUSED_MIN  # noqa: E402  (at least this many elements: the fused kernel)


class _Optimizer:
    def __init__(self, lr):
        self.lr = _check_lr(lr)
        self.t = 0
        self.state = {}

    def state_dict(self):
        out = {"t": np.array(self.t), "lr": np.array(self.lr)}
        for k, arrs in self.state.items():
            for j, a in enumerate(arrs):
                out[f"{k}::{j}"] = a.copy()     # a snapshot: steps update the buffers in place
        return out

    def load_state_dict(self, d):
        self.t = int(d["t"])
        self.lr = float(d["lr"])
        state = {}
        for key, a in d.items():
            if "::" in key:
                k, j = key.rsplit("::", 1)
                state.setdefault(k, {})[int(j)] = np.array(a)
        self.state = {k: [v[j] for j in sorted(v)] for k, v in state.items()}

    @parallel.scoped
    def step(self, params, grads):
        missing = set(params) - set(grads)
        if missing:
            raise ValueError(f"grads: missing {sorted(missing)}")
        gs = {}
        for k in params:                 # validate everything before touching anything
            p, g = params[k], np.asarray(grads[k], params[k].dtype)
            if g.shape != p.shape:
                raise ValueError(f"grads[{k!r}]: expected shape {p.shape}, got {g.shape}")
            gs[k] = g
        self.t += 1
        for k in params:
            self._update(k, params[k], gs[k])


class SGD(_Optimizer):
    """``torch.optim.SGD``: momentum buffer ``b = mu b + g`` (``b = g`` at the
    first step), Nesterov ``g + mu b``; weight decay added to the gradient."""

    def __init__(self, lr=0.01, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(lr)
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum: expected a number in [0, 1), got {momentum!r}")
        if nesterov and momentum == 0:
            raise ValueError("nesterov: needs momentum > 0")
        self.momentum, self.nesterov = momentum, bool(nesterov)
        self.weight_decay = _check_nonneg("weight_decay", weight_decay)

    def _update(self, k, p, g):
        if self.weight_decay:
            g = g + self.weight_decay * p
        if self.momentum:
            if k not in self.state:
                self.state[k] = [g.copy()]
            else:
                b = self.state[k][0]
                b *= self.momentum
                b += g
            b = self.state[k][0]
            g = g + self.momentum * b if self.nesterov else b
        p -= self.lr * g


class Adam(_Optimizer):
    """``torch.optim.Adam`` (L2 weight decay added to the gradient)."""

    decoupled = False

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(lr)
        b1, b2 = betas
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"betas: expected two numbers in [0, 1), got {betas!r}")
        if not eps > 0:
            raise ValueError(f"eps: expected a number > 0, got {eps!r}")
        self.b1, self.b2, self.eps = b1, b2, eps
        self.weight_decay = _check_nonneg("weight_decay", weight_decay)

    def _update(self, k, p, g):
        if k not in self.state:
            self.state[k] = [np.zeros_like(p), np.zeros_like(p)]
        m, v = self.state[k]
        bc1 = 1 - self.b1 ** self.t
        bc2 = 1 - self.b2 ** self.t
        if p.size >= FUSED_MIN and p.flags.c_contiguous and g.flags.c_contiguous:
            from .kernels.cpu_ops import adam_update
            d = p.dtype.type
            mode = 0 if not self.weight_decay else (2 if self.decoupled else 1)
            adam_update(p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1),
                        d(self.b1), d(1 - self.b1), d(self.b2), d(1 - self.b2),
                        d(self.lr / bc1), d(math.sqrt(bc2)), d(self.eps),
                        d(self.weight_decay), d(1 - self.lr * self.weight_decay), mode)
            return
        # the same update in NumPy (small parameters, and the kernel's spec)
        if self.weight_decay:
            if self.decoupled:
                p *= 1 - self.lr * self.weight_decay
            else:
                g = g + self.weight_decay * p
        m *= self.b1
        m += (1 - self.b1) * g
        v *= self.b2
        v += (1 - self.b2) * g * g
        denom = np.sqrt(v) / math.sqrt(bc2) + self.eps
        p -= (self.lr / bc1) * m / denom


class AdamW(Adam):
    """``torch.optim.AdamW``: decoupled weight decay ``p *= 1 - lr wd`` (default 0.01)."""

    decoupled = True

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(lr, betas, eps, weight_decay)


class ConstantLR:
    def __init__(self, lr):
        self.base = _check_lr(lr)

    def __call__(self, epoch):
        return self.base


class StepLR:
    """``lr = base * gamma ** (epoch // step_size)``."""

    def __init__(self, lr, step_size, gamma=0.1):
        self.base = _check_lr(lr)
        if not (isinstance(step_size, int) and step_size >= 1):
            raise ValueError(f"step_size: expected an integer >= 1, got {step_size!r}")
        if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or \
                not math.isfinite(gamma) or gamma <= 0:
            raise ValueError(f"gamma: expected a finite number > 0, got {gamma!r}")
        self.step_size, self.gamma = step_size, gamma

    def __call__(self, epoch):
        return self.base * self.gamma ** (epoch // self.step_size)


class CosineLR:
    """Cosine annealing from ``lr`` to ``min_lr`` over ``epochs``."""

    def __init__(self, lr, epochs, min_lr=0.0):
        self.base = _check_lr(lr)
        if not (isinstance(epochs, int) and epochs >= 1):
            raise ValueError(f"epochs: expected an integer >= 1, got {epochs!r}")
        self.epochs, self.min_lr = epochs, _check_nonneg("min_lr", min_lr)

    def __call__(self, epoch):
        e = min(epoch, self.epochs)
        return self.min_lr + 0.5 * (self.base - self.min_lr) * (1 + math.cos(math.pi * e / self.epochs))


_OPTS = {"sgd": SGD, "adam": Adam, "adamw": AdamW}


def get(name, **kw):
    try:
        return _OPTS[name](**kw)
    except KeyError:
        raise ValueError(f"optimizer: unknown name {name!r}; valid: {', '.join(_OPTS)}") from None
