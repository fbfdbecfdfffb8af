"""Check a function's gradient against finite differences: ``lifgrad.gradcheck``.

The conventions of ``torch.autograd.gradcheck`` and ``jax.test_util.check_grads``
for any function of NumPy arrays that comes with a vector-Jacobian product --
lifgrad's own functions or a user's::

    result = gradcheck(f, args, vjp)          # passes, or raises GradcheckError

* ``f(*args)`` returns an array or a tuple of arrays (the outputs);
* ``vjp(*args)`` returns ``(outputs, pullback)`` as ``jax.vjp`` does, and
  ``pullback(cotangents)`` (one array per output) returns one gradient per
  argument (``None`` for an argument without one);
* the scalar checked is ``L(x) = sum_k <w_k, f_k(x)>`` with random cotangents
  ``w_k`` (seeded), accumulated in float64;
* fast mode (default): ``n_directions`` random unit directions per argument,
  the directional derivative ``<dL/dx, d>`` against a central difference
  along ``d``; full mode (``fast_mode=False``): every element of every
  argument (a numeric Jacobian-vector row per element), for small inputs;
* passes where ``|analytic - numeric| <= atol + rtol |numeric|`` (the test of
  ``numpy.allclose``/``torch.allclose``); tolerances and step by dtype
  (:data:`DEFAULTS`), each overridable;
* on failure a :class:`GradcheckError` (an ``AssertionError``) naming the
  argument, the index or direction, the analytic and numeric values and both
  errors; ``raise_exception=False`` returns the :class:`GradcheckResult`
  instead.

Spiking functions.  The hard forward is piecewise constant in the spikes: its
finite differences are zero between spike flips and undefined across one.
Three ways to check it, all with this one function:

* the **smooth** forward (``LIFConfig(forward='smooth')``: spikes ``G(u - theta)``,
  a differentiable function whose exact gradient the surrogate's adjoint is);
* the **frozen-spike** forward: the spikes are held at their values at ``x``
  (an argument of ``f``), which makes ``f`` differentiable; the adjoint with
  the zero surrogate (``dv/du = 0``) is its exact gradient;
* the real hard forward with ``spikes=`` (a function of the outputs that
  returns the spikes): a step whose evaluations change any spike is not used
  and is reported in ``GradcheckResult.flips``; a direction whose every step
  flips is replaced by another (``tries``), and when none is left the check
  fails saying so.

:func:`lifgrad.check.layer_functions` builds ``f`` and ``vjp`` of a lifgrad LIF
layer in each mode (what ``lifgrad check`` runs, and an example for a user's
own cell).
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple, Sequence

import numpy as np

__all__ = ["gradcheck", "GradcheckError", "GradcheckResult", "Row", "DEFAULTS",
           "central_difference", "directional_derivative", "rounding_floor", "rel_error",
           "normwise_rel", "LADDER"]

# step, absolute and relative tolerance by the dtype of the checked arguments:
# float64 as torch.autograd.gradcheck (eps 1e-6, atol 1e-5, rtol 1e-3); float32
# with a larger step (the rounding of L is eps32 |L| / h) and jax's float32
# gradient tolerance order
DEFAULTS = {
    "float64": dict(eps=1e-6, atol=1e-5, rtol=1e-3),
    "float32": dict(eps=1e-2, atol=1e-2, rtol=1e-2),
}
# the ladder of steps of ``eps="ladder"``: the step whose estimate agrees best
# with the next smaller one is used (the analytic value plays no part)
LADDER = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6)


class GradcheckError(AssertionError):
    """A gradient that does not match its finite differences (or a check that
    could not be made: every step flipped a spike)."""


class Row(NamedTuple):
    """One compared quantity: argument ``name``, ``where`` (an index
    ``(i, j, ...)`` or ``"direction k"``), the analytic and numeric values,
    the absolute and relative errors, the step used, and whether it passed."""

    name: str
    where: str
    analytic: float
    numeric: float
    abs_err: float
    rel_err: float
    eps: float
    passed: bool


class GradcheckResult(NamedTuple):
    """What :func:`gradcheck` compared: ``rows`` (one per direction or
    element), ``flips`` (``(argument, where, step)`` of evaluations dropped
    because a spike changed), the tolerances used, and ``passed``."""

    rows: tuple
    flips: tuple
    atol: float
    rtol: float
    mode: str
    unchecked: tuple = ()

    @property
    def passed(self) -> bool:
        return bool(self.rows) and all(r.passed for r in self.rows) and not self.unchecked

    def __bool__(self):
        return self.passed

    @property
    def worst(self) -> Row | None:
        """The row furthest outside (or least inside) its tolerance."""
        if not self.rows:
            return None
        return max(self.rows, key=lambda r: r.abs_err / (self.atol + self.rtol * abs(r.numeric))
                   if math.isfinite(r.abs_err) else math.inf)

    def failures(self) -> list:
        return [r for r in self.rows if not r.passed]

    def report(self) -> str:
        """A table of the failing rows (or the worst one when all pass)."""
        rows = self.failures() or ([self.worst] if self.rows else [])
        out = [f"gradcheck ({self.mode}, atol={self.atol:g}, rtol={self.rtol:g}): "
               f"{len(self.rows) - len(self.failures())}/{len(self.rows)} pass"
               + (f", {len(self.flips)} steps dropped (a spike flipped)" if self.flips else "")]
        for r in rows:
            out.append(_describe(r, self.atol, self.rtol))
        for name, why in self.unchecked:
            out.append(f"  {name}: not checked: {why}")
        return "\n".join(out)

    def __str__(self):
        return self.report()


def _describe(r, atol, rtol):
    state = "ok  " if r.passed else "FAIL"
    return (f"  {state} {r.name} at {r.where}: analytic {r.analytic:.10g}, numeric "
            f"{r.numeric:.10g}, abs error {r.abs_err:.3g}, rel error {r.rel_err:.3g} "
            f"(allowed {atol + rtol * abs(r.numeric):.3g}, step {r.eps:g})")


# ---------------------------------------------------------------------------
# Finite differences and error measures (shared with lifgrad check and verify)
# ---------------------------------------------------------------------------

def central_difference(loss, x, d, h):
    """Fourth-order central difference of ``loss`` at ``x`` along ``d``:
    ``(8 (L(x+hd) - L(x-hd)) - (L(x+2hd) - L(x-2hd))) / 12h`` (differences
    first, so a constant loss gives exactly 0)."""
    d1 = loss(x + h * d) - loss(x - h * d)
    d2 = loss(x + 2 * h * d) - loss(x - 2 * h * d)
    return (8 * d1 - d2) / (12 * h)


def directional_derivative(loss, x, d, h="ladder", usable=None):
    """``d/ds L(x + s d)`` at 0 by :func:`central_difference`.  ``h`` a step, or
    ``"ladder"``: every step of :data:`LADDER`, and the estimate that agrees
    best with the next smaller step's.  ``usable()``, when given, is asked
    after each stencil whether its evaluations are admissible (no spike
    flipped); inadmissible steps are dropped.  Returns ``(value, step)``, or
    ``(None, None)`` when no step is usable."""
    steps = LADDER if isinstance(h, str) else (h,)
    est = []
    for s in steps:
        e = central_difference(loss, x, d, s)
        if usable is None or usable():
            est.append((e, s))
    if not est:
        return None, None
    if len(est) == 1:
        return est[0]
    diffs = [abs(a[0] - b[0]) for a, b in zip(est[:-1], est[1:])]
    return est[int(np.argmin(diffs))]


def rounding_floor(L, h):
    """The rounding level of the stencil, ``1000 eps64 (1 + |L|) / h``: a
    directional derivative below it cannot be told from zero."""
    h = LADDER[-1] if isinstance(h, str) or not h else h
    return 1e3 * np.finfo(np.float64).eps * (1.0 + abs(L)) / h


def rel_error(a, b, atol=0.0):
    """``|a - b| / max(|a|, |b|, atol)`` of two numbers (0 when both are 0)."""
    a, b = float(a), float(b)
    den = max(abs(a), abs(b), atol)
    return 0.0 if den == 0.0 else abs(a - b) / den


def normwise_rel(a, b):
    """``(max|a - b|, max|a - b| / max(|a|, |b|))`` of two arrays, normwise so
    that entries near zero do not inflate it (0 when both are exactly zero;
    NaN when either holds a NaN; inf for different shapes or an inf)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf"), float("inf")
    if np.isnan(a).any() or np.isnan(b).any():
        return float("nan"), float("nan")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        if np.array_equal(a, b):
            return 0.0, 0.0
        return float("inf"), float("inf")
    diff = float(np.max(np.abs(a - b))) if a.size else 0.0
    den = max(float(np.max(np.abs(a))), float(np.max(np.abs(b)))) if a.size else 0.0
    if diff == 0.0:
        return 0.0, 0.0
    return diff, diff / den


# ---------------------------------------------------------------------------
# The checker
# ---------------------------------------------------------------------------

def _outputs(out):
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def _float_arg(name, a):
    a = np.asarray(a)
    if a.dtype.kind != "f":
        return None
    if not np.all(np.isfinite(a)):
        raise ValueError(f"args[{name}]: contains NaN or Inf; gradcheck needs a finite point")
    return a


def gradcheck(f: Callable, args: Sequence, vjp: Callable, *, wrt=None, names=None,
              eps=None, atol=None, rtol=None, fast_mode=True, n_directions=2, seed=0,
              cotangents=None, spikes=None, tries=10, max_elements=4096,
              raise_exception=True) -> GradcheckResult:
    """Check ``vjp``'s gradient of ``f`` at ``args`` against finite differences.

    f:            ``f(*args)`` -> an array or a tuple of arrays.
    args:         the point: a sequence of arrays (and other values, passed through).
    vjp:          ``vjp(*args)`` -> ``(outputs, pullback)``; ``pullback(cotangents)``
                  -> one gradient per argument (``None`` where there is none).
    wrt:          indices of the arguments to check (default: every float array).
    names:        a name per argument for the report (default ``args[i]``).
    eps:          the step, or ``"ladder"`` (the best of several steps, as
                  ``lifgrad check`` uses); default by dtype (:data:`DEFAULTS`).
    atol, rtol:   pass where ``|analytic - numeric| <= atol + rtol |numeric|``;
                  default by dtype (float64 1e-5, 1e-3; float32 1e-2, 1e-2).
    fast_mode:    True: ``n_directions`` random unit directions per argument;
                  False: every element (at most ``max_elements`` per argument).
    seed:         the random cotangents and directions.
    cotangents:   the output weights ``w_k`` (default: standard normal, seeded).
    spikes:       ``spikes(outputs)`` -> the spikes; steps that change them are
                  dropped and reported (``tries`` directions per argument).
    raise_exception: raise :class:`GradcheckError` on failure (default), or
                  return the result.

    Returns a :class:`GradcheckResult` (truthy when it passed).
    """
    args = list(args)
    names = list(names) if names is not None else [f"args[{i}]" for i in range(len(args))]
    if len(names) != len(args):
        raise ValueError(f"names: expected {len(args)} names, got {len(names)}")
    floats = {i: _float_arg(names[i], a) for i, a in enumerate(args)}
    if wrt is None:
        wrt = [i for i, a in floats.items() if a is not None]
    else:
        wrt = list(wrt)
        for i in wrt:
            if not (isinstance(i, (int, np.integer)) and 0 <= i < len(args)):
                raise ValueError(f"wrt: expected argument indices in [0, {len(args)}), got {i!r}")
            if floats[i] is None:
                raise TypeError(f"wrt: {names[i]} is not a float array "
                                f"(dtype {np.asarray(args[i]).dtype})")
    if not wrt:
        raise ValueError("args: no float array to check")
    dtype = "float32" if all(floats[i].dtype == np.float32 for i in wrt) else "float64"
    dflt = DEFAULTS[dtype]
    eps = dflt["eps"] if eps is None else eps
    if not (isinstance(eps, str) and eps == "ladder") and not (
            isinstance(eps, (int, float)) and eps > 0 and math.isfinite(eps)):
        raise ValueError(f"eps: expected a step > 0 or 'ladder', got {eps!r}")
    atol = dflt["atol"] if atol is None else float(atol)
    rtol = dflt["rtol"] if rtol is None else float(rtol)
    if atol < 0 or rtol < 0:
        raise ValueError(f"atol, rtol: expected >= 0, got {atol}, {rtol}")
    if not isinstance(n_directions, (int, np.integer)) or n_directions < 1:
        raise ValueError(f"n_directions: expected an integer >= 1, got {n_directions!r}")
    rng = np.random.default_rng(seed)

    raw, pullback = vjp(*args)
    outs = _outputs(raw)
    if cotangents is None:
        cotangents = tuple(rng.normal(size=np.shape(o)) for o in outs)
    cotangents = _outputs(cotangents)
    if len(cotangents) != len(outs) or any(np.shape(w) != np.shape(o)
                                           for w, o in zip(cotangents, outs)):
        raise ValueError(f"cotangents: expected shapes {[np.shape(o) for o in outs]}, got "
                         f"{[np.shape(w) for w in cotangents]}")
    ct = tuple(np.asarray(w, np.asarray(o).dtype if np.asarray(o).dtype.kind == "f"
                          else np.float64) for w, o in zip(cotangents, outs))
    grads = pullback(ct if isinstance(raw, (tuple, list)) else ct[0])
    grads = list(grads) if isinstance(grads, (tuple, list)) else [grads]
    if len(grads) != len(args):
        raise ValueError(f"vjp: the pullback returned {len(grads)} gradients for "
                         f"{len(args)} arguments")
    w64 = tuple(np.asarray(w, np.float64) for w in cotangents)
    base_spikes = None if spikes is None else np.array(spikes(outs), copy=True)

    flips, rows, unchecked = [], [], []
    flipped = [False]

    def loss_at(i, x):
        a = list(args)
        a[i] = x.astype(floats[i].dtype, copy=False)
        o = _outputs(f(*a))
        if base_spikes is not None and not np.array_equal(spikes(o), base_spikes):
            flipped[0] = True
        return float(sum(np.sum(w * np.asarray(oo, np.float64)) for w, oo in zip(w64, o)))

    def usable():
        ok = not flipped[0]
        flipped[0] = False
        return ok

    L0 = float(sum(np.sum(w * np.asarray(o, np.float64)) for w, o in zip(w64, outs)))
    for i in wrt:
        g = grads[i]
        x = np.asarray(floats[i], np.float64)
        if g is None:
            unchecked.append((names[i], "the pullback returned no gradient (None)"))
            continue
        g = np.asarray(g, np.float64)
        if g.shape != x.shape:
            raise ValueError(f"vjp: the gradient of {names[i]} has shape {g.shape}, expected "
                             f"{x.shape}")
        if fast_mode:
            done = 0
            for k in range(n_directions * tries):
                if done == n_directions:
                    break
                d = rng.normal(size=x.shape)
                d /= max(np.linalg.norm(d), 1e-300)
                num, h = _numeric(loss_at, i, x, d, eps, spikes is not None, flips,
                                  names[i], f"direction {done}", usable)
                if num is None:
                    continue
                rows.append(_row(names[i], f"direction {done}", float(np.sum(g * d)), num,
                                 h, atol, rtol, L0))
                done += 1
            if done < n_directions:
                unchecked.append((names[i], f"every step of {n_directions * tries} directions "
                                            f"flipped a spike"))
        else:
            if x.size > max_elements:
                raise ValueError(f"args: {names[i]} has {x.size} elements, more than "
                                 f"max_elements={max_elements} for the full check; use "
                                 f"fast_mode=True or raise max_elements")
            for flat in range(x.size):
                d = np.zeros(x.shape)
                d.flat[flat] = 1.0
                where = str(tuple(int(j) for j in np.unravel_index(flat, x.shape)))
                num, h = _numeric(loss_at, i, x, d, eps, spikes is not None, flips, names[i],
                                  where, usable)
                if num is None:
                    unchecked.append((f"{names[i]}{where}", "every step flipped a spike"))
                    continue
                rows.append(_row(names[i], where, float(g.flat[flat]), num, h, atol, rtol, L0))
    res = GradcheckResult(tuple(rows), tuple(flips), atol, rtol,
                          "fast" if fast_mode else "full", tuple(unchecked))
    if raise_exception and not res.passed:
        raise GradcheckError(res.report())
    return res


def _numeric(loss_at, i, x, d, eps, watch, flips, name, where, usable):
    """The directional derivative along ``d``; with ``watch``, each step whose
    evaluations changed a spike is recorded in ``flips`` and dropped."""
    steps = iter(LADDER if isinstance(eps, str) else (eps,))

    def ok():
        h = next(steps)
        good = usable()
        if not good:
            flips.append((name, where, h))
        return good
    return directional_derivative(lambda z: loss_at(i, z), x, d, eps, ok if watch else None)


def _row(name, where, an, num, h, atol, rtol, L0):
    err = abs(an - num)
    # below the stencil's rounding the two cannot be told apart
    floor = rounding_floor(L0, h)
    passed = bool(math.isfinite(an) and math.isfinite(num)
                  and (err <= atol + rtol * abs(num) or err <= floor))
    return Row(name, where, an, num, err, rel_error(an, num), h, passed)
