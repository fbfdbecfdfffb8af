"""What a network's forward returns for its backward: the full trace (every
layer's input and :class:`~lifgrad.functional.Trace`) or the checkpointed one
(the states at the start of each segment and the top layer's trace)."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .functional import Trace

__all__ = ["LayerTrace", "NetTrace", "CheckpointTrace"]


class LayerTrace(NamedTuple):
    x: np.ndarray          # the layer's input: (T, B, n_in), or (B, n_in) if static
    trace: Trace


class NetTrace(NamedTuple):
    layers: list


class CheckpointTrace(NamedTuple):
    """Trace of a checkpointed forward: the input, every layer's state at the
    start of each segment, and the top layer's full trace (for the loss).
    ``layers[-1].trace`` is the top layer's :class:`Trace` like a NetTrace's."""

    x: np.ndarray
    static: bool
    T: int
    K: int
    states: list            # per layer below the top: (n_segments, 4, B, N),
                            # u, v, s, a before each segment
    layers: list            # [None, ..., LayerTrace(None, top Trace)]
    params: dict
    draws: list | None = None   # per layer: None, or (stochastic forward below the top)
                                # its random generator at the start of each segment
