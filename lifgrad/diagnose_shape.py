"""The shape of ``lifgrad diagnose``'s probes, shared by the forward probes
(:mod:`lifgrad.diagnose_probes`) and the gradient probes
(:mod:`lifgrad.diagnose_gradients`): how many steps and rows an experiment
has, and the input that silences a neuron after step 1."""
from __future__ import annotations

import numpy as np

TP, BP = 8, 128          # the probes' shape: steps, rows (experiments)
LIN_TOL = 1e-9           # relative: linearity, time invariance, exponential fits
M_NONE = 65536           # a spike maximum this large is "no maximum" (Rockpool's 2^16)


def _rows(n, fill=0.0):
    return np.full((TP, BP, n), fill, np.float64)


def _kick(theta, r, h):
    """An input at step 1 that keeps every later membrane far below threshold."""
    return -4.0 * (2 * np.abs(theta) + np.max(np.abs(r), axis=0) + 1e-3) / h[0]
