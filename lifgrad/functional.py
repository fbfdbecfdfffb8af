"""The functional core: ``lif_forward`` and ``lif_backward`` for one layer.

These validate at the boundary, allocate outputs, and dispatch to a backend
(``reference`` NumPy or ``cpu`` Numba).  They are pure: no argument is
mutated, and the backward reads only the :class:`Trace` the forward returned
(plus the parameters and configuration, which are part of the contract).

One cell covers every model (plain, synaptic, adaptive, recurrent), chosen by
the configuration; see ``lifgrad.reference``.  Feedforward and one-to-one
recurrent cells run as one fused scan per direction.  An all-to-all
recurrence needs ``R v_{t-1}`` between steps: its kernels keep the time loop
inside and do the product per step (event driven over the spikes forward, a
BLAS product ``R^T dL/dI_{t+1}`` backward (R2)); ``dL/dR`` is one product over
all steps (R3).

Equations: ``derivations/`` (A*), (S*), (R*), (L*).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import parallel, reference, workspace
from .backends import kernels_for
from .config import LIFConfig, LIFParams
from .validation import check_adjoint, check_finite, check_sequence

__all__ = ["lif_forward", "lif_backward", "Trace", "LIFGrads"]


class Trace(NamedTuple):
    """What the backward needs: the pre-reset membrane ``u`` and spikes ``v``
    (``(T, B, N)``), the synaptic current ``s`` and adaptation ``a`` (``None``
    for models without them), the initial state ``(3, B, N)`` (u_0, s_0, a_0),
    whether the input was static, and the shapes given for u0, s0, a0."""

    u: np.ndarray
    v: np.ndarray
    s: np.ndarray | None
    a: np.ndarray | None
    state0: np.ndarray
    static: bool
    shapes0: tuple


class LIFGrads(NamedTuple):
    """Gradients of one layer, each shaped like its argument.

    ``I`` is ``(T, B, N)``, or ``(B, N)`` for a static input (A21).  One rule
    for every field: ``None`` when the value is not a parameter of this
    configuration, an array of zeros when it is a parameter with no effect
    under it.  So ``gamma`` is ``None`` when tied to theta (its effect is
    inside ``theta``, (A15)) and zeros when free under the zero or no reset
    (with ``reset_by_threshold`` it is the gradient of the factor k of
    ``gamma_t = k theta_t``, (M7));
    ``u_reset`` (always a parameter, default 0) is zeros under the subtract or
    no reset; ``u_bias`` (always a parameter, default 0) is
    ``sum_t ubar_t`` (M6); ``alpha_s``/``s0`` are ``None`` unless the cell is synaptic,
    ``rho``/``beta_a``/``a0`` unless adaptive, ``R`` unless recurrent.
    ``u0`` (and s0, a0) are shaped like the value given to the forward,
    ``(B, N)`` when none was given.  ``u_min`` is the gradient of the clip's
    level ``config.u_min`` (M11), a scalar of the layer's dtype, ``alpha`` times the sum of
    ``ubar_t`` over the clipped steps; ``None`` without the clip.
    """

    I: np.ndarray
    alpha: np.ndarray
    theta: np.ndarray
    gamma: np.ndarray | None
    u_reset: np.ndarray
    u0: np.ndarray
    alpha_s: np.ndarray | None = None
    rho: np.ndarray | None = None
    beta_a: np.ndarray | None = None
    R: np.ndarray | None = None
    s0: np.ndarray | None = None
    a0: np.ndarray | None = None
    u_bias: np.ndarray | None = None     # always set by reduce_grads (last: positional
                                         # construction of the fields above unchanged)
    u_min: float | None = None           # with config.u_min (M11)


_backend = kernels_for      # the kernels of config.backend (lifgrad.backends)


def _row_of_neurons(config, B, N):
    """Whether a cpu scan runs the (B, N) plane as one row of B*N neurons: the
    kernels give each (batch row, block of BLOCK neurons) its own task, so a
    narrow layer pays a task's set-up for a few neurons (W1's 10-neuron output
    layer, B=128, T=25: 2.0 ms of scans per step, 0.3 ms as one row).  Up to
    half a block: the row needs its parameters tiled B times, and from about
    half a block a task is wide enough (backward + forward scan, one process:
    N=256, T=100, B=32 1.94 ms as a row, 2.25 in blocks; N=512 equal; W1's
    N=1000 7.67 as a row, 6.97 in blocks, plus a 4 MB tile per call)."""
    if config.backend != "cpu" or B == 1:
        return False
    from .kernels.cpu import BLOCK
    return N < BLOCK // 2


def _as_rows(arrays, B, N):
    """(L, B, N) arrays -> (L, 1, B*N) views, (1, 1, 1) dummies passed through;
    None if one of them is not contiguous enough for a view (no copies: the
    kernels write into some of them)."""
    try:
        return [np.reshape(a, (a.shape[0], 1, B * N), copy=False)
                if a.ndim == 3 and a.shape[1:] == (B, N) else a for a in arrays]
    except ValueError:
        return None


def forward_scan(config, I, static, t0, t1, state0, P, rnd, u, v, s, a, kernels=None):
    """The backend's ``cell_forward_scan`` over steps [t0, t1) of the trace
    buffers (T, B, N) (one thread for a small problem, a narrow layer as one
    row of neurons).  ``kernels``: the kernel module (default: the config's
    backend; the device network passes the CUDA kernels, which take the
    buffers as they are)."""
    B, N = u.shape[1:]
    rows = kernels is None and _row_of_neurons(config, B, N) and \
        _as_rows((I, state0, rnd, u, v, s, a), B, N)
    kernels = _backend(config) if kernels is None else kernels
    if rows:
        I, state0, rnd, u, v, s, a = rows
        P = np.tile(P, (1, B))
    kernels.cell_forward_scan(I, static, t0, t1, state0, P, config.mode(),
                              config.kernel_sg(), rnd, u, v, s, a)


def cell_forward(config, I, static, t0, t1, state0, P, RT, rnd, u, v, s, a, kernels=None):
    """Forward steps [t0, t1) of one layer into its trace buffers: the fused
    scan, or with an all-to-all recurrence (``RT = R^T`` given) the recurrent
    kernel, which makes the product ``v_{t-1} R^T`` per step (R1).  The state
    before t0 is the buffers' row t0 - 1 (``state0`` at t0 = 0).  Every
    forward (full, checkpointed segment, device) runs a layer through here."""
    if RT is None:
        forward_scan(config, I, static, t0, t1, state0, P, rnd, u, v, s, a, kernels)
        return
    kernels = _backend(config) if kernels is None else kernels
    kernels.cell_forward_recurrent(I, static, t0, t1, state0, P, RT, config.mode(),
                                   config.kernel_sg(), rnd, u, v, s, a)   # (R1)


def backward_scan(config, u, v, s, a, state0, dv, du, rec, have, static, t0, t1, P,
                  dI, acc, adj, dstate0, kernels=None):
    """The backend's ``cell_backward_scan`` (see :func:`forward_scan`)."""
    B, N = u.shape[1:]
    rows = kernels is None and _row_of_neurons(config, B, N) and _as_rows(
        (u, v, s, a, state0, dv, du, rec, dI, acc, adj, dstate0), B, N)
    kernels = _backend(config) if kernels is None else kernels
    if rows:
        u, v, s, a, state0, dv, du, rec, dI, acc, adj, dstate0 = rows
        P = np.tile(P, (1, B))
    kernels.cell_backward_scan(u, v, s, a, state0, dv, du, rec, have, static,
                               t0, t1, P, config.mode(),
                               config.kernel_sg(), dI, acc, adj, dstate0)


def _float_dtype(arg, a, config):
    if config.dtype is not None:
        return np.dtype(config.dtype)
    if a.dtype in (np.float32, np.float64):
        return a.dtype
    if a.dtype.kind in "biu":
        return np.dtype(np.float64)
    raise TypeError(f"{arg}: expected a float32 or float64 array (or integers/bools), "
                    f"got dtype {a.dtype}")




def _as_config(config):
    if config is None:
        return LIFConfig()
    if not isinstance(config, LIFConfig):
        raise TypeError(f"config: expected a lifgrad.LIFConfig, got {type(config).__name__}")
    return config


def _as_params(params):
    if isinstance(params, LIFParams):
        return params
    if isinstance(params, dict):
        unknown = set(params) - set(LIFParams._fields)
        if unknown:
            raise ValueError(f"params: unknown key(s) {sorted(unknown)}; valid: "
                             f"{list(LIFParams._fields)}")
        return LIFParams(**params)
    raise TypeError(f"params: expected a lifgrad.LIFParams or a dict, got {type(params).__name__}")


def _resolve_state(arg, value, B, N, dtype):
    if value is None:
        return np.zeros((B, N), dtype), None
    a = np.asarray(value)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{arg}: expected real numbers, got dtype {a.dtype}")
    if a.shape not in ((), (N,), (B, N)):
        raise ValueError(f"{arg}: expected a scalar or shape ({N},) or ({B}, {N}), got {a.shape}")
    check_finite(arg, a)
    return np.broadcast_to(a, (B, N)).astype(dtype), a.shape


@parallel.scoped
def lif_forward(I, params=LIFParams(), config=None, u0=None, T=None, s0=None, a0=None,
                rng=None):
    """Simulate one layer of LIF cells; return ``(v, trace)``.

    I:      input current ``(T, B, N)``, or ``(B, N)`` together with ``T=`` for a
            static input (the same current at every step, (A21)).
    params: :class:`LIFParams` (or a dict of its fields).
    config: :class:`LIFConfig` (default: plain LIF, subtract reset, hard
            forward, atan surrogate).
    u0, s0, a0: initial membrane, synaptic current and adaptation; each a
            scalar, ``(N,)`` or ``(B, N)``; default 0.
    rng:    a ``numpy.random.Generator``, required by ``forward='stochastic'``
            (its uniform draws decide the spikes, (T7)), or the uniform draws
            themselves, an array ``(T, B, N)`` in [0, 1) (to reproduce another
            framework's Bernoulli spikes, (M13)).

    ``v`` is ``(T, B, N)``: ``uint8`` spikes (0 or 1) for the hard and stochastic
    forwards, the input's float dtype for the smooth one; ``trace`` feeds
    :func:`lif_backward`.  Equations (A2)-(A6), (S1), (R1), (L1), (L2).  With
    ``config.delay_output`` ``v`` is the delayed output ``v_{t-1}`` (0 at
    t = 0) and ``trace.v`` the cell's own spikes (M5).
    """
    config = _as_config(config)
    params = _as_params(params)
    I = np.asarray(I)
    dtype = _float_dtype("I", I, config)
    I, static, T = check_sequence("I", I, T)
    B, N = I.shape[-2:]
    P = params.packed(N, dtype, config)
    R = params.recurrent_matrix(N, dtype, config)
    state0 = np.empty((3, B, N), dtype)
    shapes0 = []
    for j, (arg, val) in enumerate((("u0", u0), ("s0", s0), ("a0", a0))):
        state0[j], shape = _resolve_state(arg, val, B, N, dtype)
        shapes0.append(shape)
    I3 = np.ascontiguousarray(I[None] if static else I, dtype=dtype)
    return forward_impl(I3, static, T, P, R, config, state0, tuple(shapes0), rng=rng)


SPIKE_DTYPE = np.dtype(np.uint8)


def spike_dtype(config, dtype):
    """How a trace stores the spikes v: one byte (uint8, 0 or 1, or a count up
    to ``max_spikes`` <= 255) for the hard and stochastic forwards, a quarter
    of float32; the layer's float dtype for the smooth forward, whose
    v = G(u - theta) is a real number (A6), and for counts without a maximum
    (or above 255) (M2)."""
    if config.forward == "smooth":
        return np.dtype(dtype)
    if config.multi_spike and (config.max_spikes is None or config.max_spikes > 255):
        return np.dtype(dtype)
    return SPIKE_DTYPE


def _random_draws(config, rng, shape):
    """The uniform numbers of the stochastic forward: drawn from ``rng``, a
    ``numpy.random.Generator``, or ``rng`` itself when it is an array of them
    (``shape``, values in [0, 1): another framework's draws, reproduced)."""
    if config.forward != "stochastic":
        return np.zeros((1, 1, 1))
    if isinstance(rng, np.ndarray):
        if rng.shape != tuple(shape):
            raise ValueError(f"rng: an array of uniform draws must have shape {tuple(shape)} "
                             f"(T, B, N), got {rng.shape}")
        if rng.dtype.kind != "f" or not np.all((rng >= 0) & (rng < 1)):
            raise ValueError("rng: an array of uniform draws must be floats in [0, 1)")
        return np.ascontiguousarray(rng, dtype=np.float64)
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng: forward='stochastic' needs a numpy.random.Generator "
                        f"(e.g. numpy.random.default_rng(seed)) or an array of uniform "
                        f"draws of shape (T, B, N), got {type(rng).__name__}")
    return rng.random(shape)


def forward_impl(I3, static, T, P, R, config, state0, shapes0=(None, None, None), rng=None):
    """Unvalidated forward on packed arrays (used by networks); returns (v, Trace)."""
    B, N = I3.shape[1:]
    dtype = I3.dtype
    rnd = _random_draws(config, rng, (T, B, N))
    u = workspace.empty((T, B, N), dtype)
    v = workspace.empty((T, B, N), spike_dtype(config, dtype))
    dummy = np.zeros((1, 1, 1), dtype)
    s = workspace.empty((T, B, N), dtype) if config.stores_s else dummy
    a = workspace.empty((T, B, N), dtype) if config.adaptive else dummy
    RT = None if R is None else np.ascontiguousarray(R.T)
    cell_forward(config, I3, static, 0, T, state0, P, RT, rnd, u, v, s, a)
    trace = Trace(u, v, s if config.stores_s else None, a if config.adaptive else None,
                  state0, static, shapes0)
    return layer_output(v, config), trace


def layer_output(v, config):
    """What a layer passes on (M5): its spikes ``v``, or with ``delay_output``
    the spike of the step before, ``y_t = v_{t-1}`` and ``y_0 = 0`` (a new
    array; the trace keeps the cell's own ``v``)."""
    if not config.delay_output:
        return v
    y = workspace.empty(v.shape, v.dtype)
    y[:1] = 0
    y[1:] = v[:-1]
    return y


def delayed_adjoint(dy, out, lead, L, later_row):
    """``dL/dv`` of a delayed layer (M5) over one segment of ``L`` steps from
    ``dL/dy``: ``dv_t = dy_{t+1}``.  ``dy`` and ``out`` hold the segment's
    steps at rows ``lead .. lead + L - 1``; the segment's last step takes
    ``later_row``, the first row of the later segment's ``dy`` (``None``:
    the last step of the sequence, whose spike no output shows, 0).  Writes
    ``out`` (rows before ``lead`` are zeroed) and returns it."""
    out[:lead] = 0
    out[lead:lead + L - 1] = dy[lead + 1:lead + L]
    if later_row is None:
        out[lead + L - 1] = 0
    else:
        out[lead + L - 1] = later_row
    return out


@parallel.scoped
def lif_backward(trace, params=LIFParams(), config=None, dv=None, du=None):
    """Adjoint of :func:`lif_forward`: gradients given ``dv = dL/dv``, ``du = dL/du``.

    ``dv`` and ``du`` are ``(T, B, N)`` (either may be ``None`` for zero);
    with ``config.delay_output``, ``dv`` is ``dL/dy`` of the delayed output
    that :func:`lif_forward` returned (M5).  Returns :class:`LIFGrads`; equations (A8)-(A19), (S2)-(S5), (R2)-(R3),
    (L3)-(L8).  ``params`` and ``config`` must be the ones the forward used.
    """
    config = _as_config(config)
    params = _as_params(params)
    if not isinstance(trace, Trace):
        raise TypeError(f"trace: expected the Trace returned by lif_forward, got "
                        f"{type(trace).__name__}")
    T, B, N = trace.u.shape
    dtype = trace.u.dtype
    if (trace.s is not None) != config.stores_s or (trace.a is not None) != config.adaptive:
        raise ValueError("trace: does not match config (synaptic/norm_input/adaptive differ from "
                         "the forward)")
    dv = check_adjoint("dv", dv, (T, B, N), dtype)
    du = check_adjoint("du", du, (T, B, N), dtype)
    P = params.packed(N, dtype, config)
    R = params.recurrent_matrix(N, dtype, config)
    if config.delay_output and dv is not None:     # dv is about the delayed output (M5)
        dv = delayed_adjoint(dv, np.empty_like(dv), 0, T, None)
    parts = backward_impl(trace, P, R, config, dv, du)
    return reduce_grads(parts, params, trace, config)


class Parts(NamedTuple):
    """What one backward scan returns before the batch sums: the error
    ``dL/dI``, the per-(batch row, neuron) partial sums of the neuron-parameter
    gradients, the initial-state gradients, ``dR``, and the packed parameters
    it ran with.  :func:`reduce_grads` turns it into :class:`LIFGrads`; the
    network and device backwards build it from their own scans."""

    dI: np.ndarray       # (T, B, N), or (B, N) for a static input
    acc: np.ndarray      # (N_ACC, B, N) partial sums, rows ACC_* of lifgrad.reference
    dstate0: np.ndarray  # (3, B, N); None where the initial state's gradients are not wanted
    dR: np.ndarray | None
    P: np.ndarray


def backward_impl(trace, P, R, config, dv, du):
    """Unvalidated backward of one layer over all its steps; returns the
    per-(b, n) partial sums (:class:`Parts`)."""
    T, B, N = trace.u.shape
    dtype = trace.u.dtype
    dummy = np.zeros((1, 1, 1), dtype)
    s = trace.s if trace.s is not None else dummy
    a = trace.a if trace.a is not None else dummy
    acc = np.zeros((reference.N_ACC, B, N), dtype)
    adj = np.zeros((3, B, N), dtype)
    dstate0 = np.zeros((3, B, N), dtype)
    dvv = dummy if dv is None else dv
    duu = dummy if du is None else du
    dR = None
    static = trace.static
    if R is None:
        # the kernel writes every dI[t] (static: accumulates into dI[0], so zero it)
        dI = np.zeros((1, B, N), dtype) if static else workspace.empty((T, B, N), dtype)
        backward_scan(config, trace.u, trace.v, s, a, trace.state0, dvv, duu, dummy,
                      (dv is not None, du is not None, False, True), static, 0, T, P, dI,
                      acc, adj, dstate0)
        if static:
            dI = dI[0]
    else:
        dI = np.empty((T, B, N), dtype)
        _backend(config).cell_backward_recurrent(
            trace.u, trace.v, s, a, trace.state0, dvv, duu,
            (dv is not None, du is not None, False, True), 0, T, P, R, config.mode(),
            config.kernel_sg(), dI, np.zeros((1, 1), dtype), acc, adj,
            dstate0)                                                      # (R2)
        dR = recurrent_grad(dI, trace.v, 0, 0, None, config)              # (R3)
        if static:
            dI = step_sum(dI, np.zeros((B, N), dtype))
    return Parts(dI, acc, dstate0, dR, P)


from .tuning import CHUNK_ROWS, TIME_CHUNK  # noqa: E402  (lifgrad/tuning.py has the reasons)


def time_chunk(B):
    """Steps per chunk for batch size B: about CHUNK_ROWS rows, at most
    TIME_CHUNK steps.  Every product over time (input currents, errors sent
    down, weight gradients), the segments of the backward and the checkpoint
    length are counted in chunks, so every path adds the same terms in the
    same order (CK3), and the backward holds one chunk of errors per layer
    at a time."""
    return max(1, min(TIME_CHUNK, CHUNK_ROWS // max(1, int(B))))


EVENT_DENSITY = None   # at most this fraction of nonzeros in the sparse operand (None:
                       # this installation's measurement, kernels/calibrate.py) ...
from .tuning import EVENT_MIN_COLS, EVENT_SAMPLE  # noqa: E402  (... at least EVENT_MIN_COLS
                                                   # columns; a float operand sampled)


def use_events(a2, ncols, config):
    """Whether a product of the 2-D operand ``a2`` (a layer's input or spikes)
    that gives ``ncols`` columns per row is made by the event-driven kernels
    (``kernels.cpu_ops.event_matmul`` / ``event_wgrad``) instead of BLAS: for
    the 'cpu' backend ('reference' keeps NumPy's dense product), when at most
    :func:`event_density` of ``a2`` is nonzero and the product has at least
    EVENT_MIN_COLS columns.  uint8 spikes are counted in full (one byte each);
    a float operand (the data) on every EVENT_SAMPLE-th row, a tenth of the
    product's memory traffic.  Where the event kernels beat BLAS depends on
    the machine (``benchmarks/events.py``): at 512 columns they took 0.15-0.6
    of BLAS's time at densities 0.02-0.2 on an AMD EPYC with AVX2, but lost
    from ~0.07 on an Intel Xeon with AVX-512; at 10 columns they lose on both.
    Decided by the operand alone, so every path that makes the product (full
    trace, checkpointed recompute) makes it the same way."""
    if config.backend != "cpu" or ncols < EVENT_MIN_COLS or a2.size == 0:
        return False
    if a2.dtype != SPIKE_DTYPE:
        if a2.dtype.kind != "f":
            return False
        a2 = a2[::EVENT_SAMPLE]
    operand = "spikes" if a2.dtype == SPIKE_DTYPE else "float"
    return np.count_nonzero(a2) <= event_density(operand) * a2.size


def event_density(operand="spikes"):
    """The density up to which sparse products with a uint8 spike (``"spikes"``)
    or float (``"float"``) operand use the event kernels: ``EVENT_DENSITY``
    when set, else this installation's measured crossover
    (``lifgrad.kernels.calibrate``, measured by ``make`` when it builds the
    kernels; 0.1 without a build)."""
    if EVENT_DENSITY is not None:
        return float(EVENT_DENSITY)
    from .kernels.calibrate import event_density as measured
    return measured(operand)


def recurrent_grad(dI, v, lead, t0, dR, config):
    """``dR += sum_t dI_t^T v_{t-1}`` (R3) over one segment's buffers, whose
    row ``lead`` is the segment's first step t0 (row 0 the step before it when
    ``lead`` is 1): one product per time chunk (counted from t0, a multiple of
    the chunk), last chunk first, and no term for t = 0 (v_{-1} = 0) whether
    or not a buffer has a zero row before it, so a full trace and a
    checkpointed one add the same terms in the same order (CK3).  A chunk is made by the event kernel when
    :func:`use_events` says the spikes are sparse, else by
    :func:`lifgrad.products.matmul_acc` (uint8 spikes cast in slabs).  Only
    this function sums dR.  ``dR`` None: a new (N, N) array."""
    from .products import matmul_acc
    rows, B, N = dI.shape
    L = rows - lead
    if dR is None:
        dR = np.zeros((N, N), dI.dtype)
    C = time_chunk(B)
    first = lead + (1 if t0 == 0 else 0)          # the row of step max(t0, 1)
    for c0 in range(((L - 1) // C) * C, -1, -C):
        lo, hi = max(lead + c0, first), lead + min(L, c0 + C)
        if hi <= lo:
            continue
        d2, v2 = dI[lo:hi].reshape(-1, N), v[lo - 1:hi - 1].reshape(-1, N)
        if use_events(v2, N, config):
            from .kernels.cpu_ops import event_wgrad
            event_wgrad(d2, v2, dR)
        else:
            matmul_acc(d2.T, v2, dR)
    return dR


def step_sum(rows, out):
    """``out += sum_t rows[t]`` over a segment's (L, B, N) rows, chunk by time
    chunk from the last (the static input of an all-to-all layer, (A21)): the
    same additions in the same order whatever the segments.  Returns ``out``."""
    L, B = rows.shape[:2]
    C = time_chunk(B)
    for c0 in range(((L - 1) // C) * C, -1, -C):
        out += rows[c0:c0 + C].sum(axis=0)
    return out


def _like(grad_n, value):
    """Reduce a per-neuron gradient to the shape of the parameter (A19)."""
    return grad_n.sum() if np.ndim(value) == 0 else grad_n


def _state_like(g, shape):
    if shape is None or shape == g.shape:
        return g
    return g.sum(axis=0) if len(shape) == 1 else g.sum()


def reduce_grads(parts, params, trace, config):
    """Sum the kernels' per-(b, n) partials into parameter gradients (A14)-(A19),
    (M6), (M7)."""
    R_ = reference
    acc = parts.acc.sum(axis=1)                       # (N_ACC, N)
    rv = acc[R_.ACC_RV]
    theta_n = acc[R_.ACC_THETA]
    beta_a_n = acc[R_.ACC_BETA_A]
    zeros = np.zeros_like(rv)
    if config.reset_by_threshold:
        # the reset removes k theta_t v_t, theta_t = theta + beta_a a_t (M7): its
        # partials in theta, beta_a and k from sum ubar_{t+1} v_t (a_t)
        k = parts.P[R_.P_GAMMA]
        theta_n = theta_n - k * rv
        dk = -(parts.P[R_.P_THETA] * rv)
        if config.adaptive_threshold:
            rva = acc[R_.ACC_RVA]
            beta_a_n = beta_a_n - k * rva
            dk = dk - parts.P[R_.P_BETA_A] * rva
        gamma_n = None if params.tied else dk
        u_reset_n = zeros
    elif config.reset == "subtract":
        if params.tied:
            theta_n = theta_n - rv                                        # (A15)
            gamma_n = None
        else:
            gamma_n = -rv                                                 # (A16)
        u_reset_n = zeros
    else:
        gamma_n = None if params.tied else zeros
        u_reset_n = parts.P[R_.P_ALPHA] * rv if config.reset == "zero" else zeros  # (A17)
    shapes = trace.shapes0
    R = None
    if config.recurrent == "one":
        R = _like(acc[R_.ACC_R], params.R)
    elif config.recurrent == "all":
        R = parts.dR
    return LIFGrads(
        I=parts.dI,
        alpha=_like(acc[R_.ACC_ALPHA], params.alpha),
        theta=_like(theta_n, params.theta),
        gamma=None if gamma_n is None else _like(gamma_n, params.gamma),
        u_reset=_like(u_reset_n, params.u_reset),
        u0=None if parts.dstate0 is None else _state_like(parts.dstate0[0], shapes[0]),
        alpha_s=_like(acc[R_.ACC_ALPHA_S], params.alpha_s) if config.synaptic else None,
        rho=_like(acc[R_.ACC_RHO], params.rho) if config.adaptive else None,
        beta_a=_like(beta_a_n, params.beta_a) if config.adaptive else None,
        R=R,
        s0=_state_like(parts.dstate0[1], shapes[1])
        if config.synaptic and parts.dstate0 is not None else None,
        a0=_state_like(parts.dstate0[2], shapes[2])
        if config.adaptive and parts.dstate0 is not None else None,
        u_bias=_like(acc[R_.ACC_UBIAS], params.u_bias),                   # (M6)
        # sum over the clipped steps of d(alpha u_min)/du_min ubar_t (M11)
        u_min=None if config.u_min is None else
        acc.dtype.type(np.sum(parts.P[R_.P_ALPHA] * acc[R_.ACC_UMIN])),
    )
