"""Checks of the arguments every entry point takes, in one place: a layer's
or a network's input over time, the gradients ``dL/dv``/``dL/du`` given to a
backward, NaN and Inf.  :func:`lifgrad.lif_forward`, ``Sequential.forward``
(full and checkpointed) and both backwards use these, so every path refuses
the same inputs with the same messages."""
from __future__ import annotations

import numpy as np

__all__ = ["check_finite", "check_sequence", "check_sequence_shape", "check_adjoint"]


def check_finite(arg, a):
    """Raise ``ValueError`` naming ``arg`` and the first index if ``a`` holds NaN or Inf."""
    if not np.all(np.isfinite(a)):
        bad = np.argwhere(~np.isfinite(a))[0]
        raise ValueError(f"{arg}: contains NaN or Inf (first at index {tuple(int(i) for i in bad)})")


def check_sequence(arg, a, T=None, n_last=None):
    """An input over time: ``(T, B, n)``, or static ``(B, n)`` with an integer
    ``T >= 1`` (a given ``T`` must match a 3-D input); real numbers, no empty
    axis, last dimension ``n_last`` when given, finite.  Returns
    ``(array, static, T)``."""
    a = np.asarray(a)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{arg}: expected real numbers, got dtype {a.dtype}")
    static, T = check_sequence_shape(arg, a.shape, T, n_last)
    check_finite(arg, a)
    return a, static, T


def check_sequence_shape(arg, shape, T=None, n_last=None):
    """The shape checks of :func:`check_sequence` alone (for an array on a GPU,
    which is not copied back to look at its values); returns ``(static, T)``."""
    shape = tuple(shape)
    n = "N" if n_last is None else n_last
    if len(shape) == 3:
        if T is not None and T != shape[0]:
            raise ValueError(f"T: given {T} but {arg} has {shape[0]} time steps")
        static, T = False, shape[0]
    elif len(shape) == 2:
        if T is None or isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
            raise ValueError(f"T: a static input {arg} of shape {shape} needs an integer "
                             f"T >= 1, got {T!r}")
        static, T = True, int(T)
    else:
        raise ValueError(f"{arg}: expected shape (T, B, {n}) or a static (B, {n}) with T=, "
                         f"got {shape}")
    if 0 in shape:
        raise ValueError(f"{arg}: every dimension must be non-empty, got shape {shape}")
    if n_last is not None and shape[-1] != n_last:
        raise ValueError(f"{arg}: expected last dimension {n_last}, got shape {shape}")
    return static, int(T)


def check_adjoint(arg, a, shape, dtype, scalar=False):
    """A gradient given to a backward (``dv``, ``du``): ``None``, an array of
    ``shape``, or (``scalar=True``) one number for every element, returned as
    a read-only broadcast view; real and finite; cast to ``dtype``."""
    if a is None:
        return None
    a = np.asarray(a)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{arg}: expected real numbers, got dtype {a.dtype}")
    if a.dtype.kind in "biu" and a.ndim > 0 and not a.any():
        # the symptom of building dL/dv in the spikes' dtype: v is uint8, and
        # (w / B).astype(v.dtype) truncates every weight to 0 (examples/mismatch_bias.py
        # once did; its surrogate gradient vanished without a word)
        raise ValueError(f"{arg}: an integer ({a.dtype}) array of zeros; a gradient built in "
                         f"the spikes' uint8 dtype truncates fractions to 0: build it as "
                         f"float (e.g. np.asarray(..., float)), or pass None for no gradient")
    if scalar and a.ndim == 0:          # the same value everywhere: made a chunk at a time
        check_finite(arg, a)
        return np.broadcast_to(a.astype(dtype), shape)
    if a.shape != tuple(shape):
        what = "(T, B, n_out) or a scalar" if scalar else "(T, B, N) like the trace"
        raise ValueError(f"{arg}: expected shape {tuple(shape)} {what}, got {a.shape}")
    check_finite(arg, a)
    return np.ascontiguousarray(a, dtype=dtype)
