"""Which surrogate a neuron's backward computes, from samples of it (``lifgrad diagnose``).

:func:`fit` takes samples ``phi(x_k)`` of a framework's spike derivative
(measured by :mod:`lifgrad.diagnose_probes` as ``dv_t/du_t`` at ``x = u_t -
theta``) and finds the row of :data:`lifgrad.surrogates.FAMILIES`, its
parameters and its amplitude that reproduce them, by least squares in the
family's parameters (``derivations/diagnose.md`` (D7)-(D9)):

* every family is written ``phi(x) = sum_j beta_j b_j(x; q)``: the amplitude
  and the parameters that enter linearly (a height outside the window, a
  side lobe's weight) are the coefficients ``beta``, solved in closed form for
  each value of the remaining parameters ``q`` (variable projection);
* ``q`` is searched on a log grid (one or two parameters; the neuron's own
  threshold and spike maximum are fixed, not fitted), and the best grid
  points are refined by Levenberg-Marquardt on the projected residual;
* a family whose derivative jumps at a parameter (a window's edge) is fitted
  on the grid, and the edge is then located by bisection with new samples
  (``measure``), since a least-squares residual does not move with an edge
  between two samples;
* fitted values are snapped to the shortest decimal that keeps the residual.

Then every peer preset (:data:`lifgrad.surrogates.PRESETS`) of the identified
family is fitted in *its* parameters, so the report can say
``snntorch.atan(alpha=3)``, and which of a preset's parameters have no effect
on the samples (Norse's ``super`` ignores ``alpha``).  Nothing here reads a
module.
"""
from __future__ import annotations

import math
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import NamedTuple

import numpy as np

from . import surrogates as _sg

__all__ = ["SurrogateFit", "PresetMatch", "fit", "EXACT", "phi_of"]

EXACT = 1e-9            # relative residual below which a family reproduces the samples
_TIE = 10.0             # families within this factor of the best residual are ties

# parameters that enter the derivative linearly: fitted in closed form
_LINEAR = {"piecewise_leaky_relu": ("c",), "s2nn": ("b",), "log_tailed_relu": ("a",),
           "leaky_k_relu": ("leak", "k"), "multi_gaussian": ("r",), "spike_rate_escape": ("k",),
           "sign_step": ("theta",), "one_sided": ("c",)}
# families whose derivative is 0 when every linear parameter is 0: no separate amplitude
_ALL_LINEAR = ("leaky_k_relu", "spike_rate_escape", "sign_step", "one_sided")
# the edge of a window: (parameter, side) with side +1 (at +p), -1 (at -p), 0 (at +-p)
_JUMPS = {"rect": ("w", 0), "rect_open": ("w", 0), "piecewise_leaky_relu": ("w", 0),
          "one_sided": ("w", -1), "sparse_fast_sigmoid": ("B", 1)}
_INTEGER = {"squarewave_fourier": ("n", range(2, 17))}
# never the answer of a fit: not a derivative anyone ships on its own
_SKIP = ("zero",)
# preset parameters that are the neuron's own (the framework calls the surrogate
# with them): set from the identified cell, not fitted.  'theta' is the
# threshold, 'M' the spike maximum.
NEURON_PARAMS = {"sinabs.SingleExponential": {"threshold": "theta"},
                 "sinabs.PeriodicExponential": {"threshold": "theta"},
                 "sinabs.Heaviside": {"threshold": "theta"},
                 "rockpool.StepPWL": {"threshold": "theta"},
                 "rockpool.PeriodicExponential": {"threshold": "theta",
                                                  "max_spikes_per_dt": "M"}}


class PresetMatch(NamedTuple):
    """A peer preset that reproduces the samples: its name, its parameters
    (the framework's names), the relative residual, the parameters that have
    no effect on the samples (any value gives the same derivative), and
    ``float32``: it matches only to float32 precision (the framework rounds
    one of its constants to float32; the family's own fit is exact)."""

    name: str
    params: dict
    residual: float
    no_effect: tuple = ()
    float32: bool = False


class SurrogateFit(NamedTuple):
    """The family that reproduces the samples best: a :class:`lifgrad.surrogates.Surrogate`,
    the relative residual ``||phi - fit|| / ||phi||``, whether that is below
    :data:`EXACT`, the runner-up families with their residuals, the presets
    that match, and where a window edge was located by bisection."""

    surrogate: _sg.Surrogate
    residual: float
    exact: bool
    alternatives: tuple = ()          # ((family, residual), ...)
    presets: tuple = ()               # (PresetMatch, ...)
    edges: tuple = ()                 # ((x inside, x outside), ...) of a located edge
    samples: int = 0


def phi_of(sg, x, v):
    """``sg.phi(x, v)`` in float64 (the surrogate's derivative times its amplitude)."""
    return np.asarray(sg.phi(np.asarray(x, np.float64), np.asarray(v, np.float64)), np.float64)


def _rel(res, y):
    n = float(np.linalg.norm(y))
    return float(np.linalg.norm(res)) / n if n > 0 else float(np.linalg.norm(res))


# ------------------------------------------------------------------ one family

class _Family:
    """A family written as a sum of basis functions with linear coefficients."""

    def __init__(self, fam, fixed):
        self.fam = fam
        self.names = [p.name for p in fam.params]
        self.linear = [n for n in _LINEAR.get(fam.name, ()) if n in self.names]
        self.fixed = {k: v for k, v in fixed.get(fam.name, {}).items() if k in self.names}
        self.integer = _INTEGER.get(fam.name)
        self.jump = _JUMPS.get(fam.name)
        self.nonlin = [n for n in self.names if n not in self.linear and n not in self.fixed
                       and (self.integer is None or n != self.integer[0])]
        self.positive = {p.name: (p.positive, p.gt) for p in fam.params}
        self.all_linear = fam.name in _ALL_LINEAR

    def _g(self, x, v, values):
        p = [values.get(n, 0.0) for n in self.names] + [0.0] * (3 - len(self.names))
        return np.asarray(self.fam.g_np(x, v, *p), np.float64)

    def basis(self, x, v, q):
        """Basis functions ``(P, K, m)`` for parameter values ``q`` (name -> (P,) array)."""
        P = len(next(iter(q.values()))) if q else 1
        vals = {n: np.asarray(val, np.float64).reshape(-1, 1) for n, val in q.items()}
        vals.update({n: float(f) for n, f in self.fixed.items()})
        xx, vv = x[None, :], v[None, :]
        zero = dict(vals, **{n: np.zeros((P, 1)) for n in self.linear})
        g0 = np.broadcast_to(self._g(xx, vv, zero), (P, x.size))
        cols = [] if self.all_linear else [g0]
        for n in self.linear:
            one = dict(zero, **{n: np.ones((P, 1))})
            cols.append(np.broadcast_to(self._g(xx, vv, one), (P, x.size)) - g0)
        return np.stack(cols, axis=-1)

    def solve(self, Bs, y):
        """Least-squares coefficients and relative residuals for each basis ``(P, K, m)``."""
        G = np.einsum("pkm,pkn->pmn", Bs, Bs)
        r = np.einsum("pkm,k->pm", Bs, y)
        m = Bs.shape[-1]
        G = G + np.eye(m)[None] * (1e-300 + 1e-14 * np.trace(G, axis1=1, axis2=2)[:, None, None])
        try:
            beta = np.linalg.solve(G, r[..., None])[..., 0]
        except np.linalg.LinAlgError:
            beta = np.stack([np.linalg.lstsq(b, y, rcond=None)[0] for b in Bs])
        res = y[None, :] - np.einsum("pkm,pm->pk", Bs, beta)
        ny = max(float(np.linalg.norm(y)), 1e-300)
        return beta, np.linalg.norm(res, axis=1) / ny

    def surrogate(self, q, beta):
        """The :class:`Surrogate` for parameter values ``q`` and coefficients ``beta``."""
        params = {n: float(v) for n, v in q.items()}
        params.update({n: float(v) for n, v in self.fixed.items()})
        if self.all_linear:
            scale = 1.0
            params.update({n: float(b) for n, b in zip(self.linear, beta)})
        else:
            scale = float(beta[0])
            params.update({n: float(b) / scale if scale else 0.0
                           for n, b in zip(self.linear, beta[1:])})
        if scale < 0:            # a negative amplitude: the family with flipped linear parts
            raise ValueError("negative amplitude")
        return _sg.get(self.fam.name, scale=scale, **params)

    def grid(self, anchors):
        """Candidate values of the nonlinear parameters: ``{name: (P,)}``."""
        axes = []
        for n in self.nonlin:
            pos, gt = self.positive[n]
            if self.jump and n == self.jump[0]:
                vals = np.unique(np.concatenate([np.abs(anchors), anchors]))
                vals = vals[np.isfinite(vals)]
                if pos:
                    vals = vals[vals > gt]
                vals = np.unique(np.concatenate([vals, [0.0] if not pos else []]))
            elif pos:
                lo = max(gt, 0.0)
                vals = lo + (np.logspace(-4, 4, 321) if len(self.nonlin) == 1 else
                             np.logspace(-3, 2.5, 81))
            else:
                vals = np.concatenate([-np.logspace(-3, 1.5, 40), [0.0],
                                       np.logspace(-3, 1.5, 40)])
            axes.append(vals)
        if not axes:
            return {}
        mesh = np.meshgrid(*axes, indexing="ij")
        return {n: m.ravel() for n, m in zip(self.nonlin, mesh)}


def _fit_family(F, x, v, y, anchors):
    """Best (residual, q, beta) of one family (grid, then Levenberg-Marquardt)."""
    return _refine(F, _coarse(F, x, v, y, anchors), x, v, y)


def _coarse(F, x, v, y, anchors):
    """The best grid points of one family: ``[(residual, q, beta, n), ...]`` (D8)."""
    best = []
    ints = list(F.integer[1]) if F.integer else [None]
    for nval in ints:
        if nval is not None:
            F.fixed[F.integer[0]] = float(nval)
        grid = F.grid(anchors)
        P = len(next(iter(grid.values()))) if grid else 1
        chunks = []
        for lo in range(0, P, 2048):
            q = {n: g[lo:lo + 2048] for n, g in grid.items()}
            with np.errstate(all="ignore"):
                Bs = F.basis(x, v, q)
                Bs = np.where(np.isfinite(Bs), Bs, 0.0)
                beta, res = F.solve(Bs, y)
            chunks.append((res, beta, q))
        res = np.concatenate([c[0] for c in chunks])
        beta = np.concatenate([c[1] for c in chunks])
        qs = {n: np.concatenate([c[2][n] for c in chunks]) for n in grid}
        order = np.argsort(np.where(np.isfinite(res), res, np.inf))[:4]
        for i in order:
            best.append((float(res[i]), {n: float(qs[n][i]) for n in qs}, beta[i], nval))
    best.sort(key=lambda b: b[0])
    return best


def _refine(F, best, x, v, y):
    """Levenberg-Marquardt on the projected residual from the best grid points."""
    from scipy.optimize import least_squares
    out = []
    for res0, q0, beta0, nval in best[:4]:
        if out and min(o[0] for o in out) < 1e-13:
            break
        if nval is not None:
            F.fixed[F.integer[0]] = float(nval)
        refine = [n for n in F.nonlin if not (F.jump and n == F.jump[0])]
        q = dict(q0)
        if refine:
            def unpack(z):
                qq = dict(q)
                for n, zi in zip(refine, z):
                    pos, gt = F.positive[n]
                    qq[n] = gt + math.exp(min(max(zi, -700.0), 700.0)) if pos else zi
                return qq

            def resid(z):
                with np.errstate(all="ignore"):
                    Bs = F.basis(x, v, {n: np.array([val]) for n, val in unpack(z).items()})
                    b, _ = F.solve(np.where(np.isfinite(Bs), Bs, 0.0), y)
                    r = y - Bs[0] @ b[0]
                return np.where(np.isfinite(r), r, 1e6)

            z0 = [math.log(max(q0[n] - F.positive[n][1], 1e-300)) if F.positive[n][0] else q0[n]
                  for n in refine]
            try:
                sol = least_squares(resid, z0, method="lm" if len(y) >= len(z0) else "trf",
                                    xtol=1e-15, ftol=1e-15, gtol=1e-15, max_nfev=400 * len(z0))
                q = unpack(sol.x)
            except (ValueError, FloatingPointError):
                pass
        with np.errstate(all="ignore"):
            Bs = F.basis(x, v, {n: np.array([val]) for n, val in q.items()})
            beta, res = F.solve(np.where(np.isfinite(Bs), Bs, 0.0), y)
        out.append((float(res[0]), q, beta[0], nval))
    out.sort(key=lambda b: b[0])
    return out[0] if out else (math.inf, {}, None, None)


# ------------------------------------------------------------------ snapping, presets

def _shortest(value, ok):
    """The shortest decimal (fewest significant digits) ``s`` with ``ok(s)``, else ``value``."""
    if value == 0 or not math.isfinite(value):
        return value
    for d in range(1, 16):
        s = float(f"{value:.{d}g}")
        if ok(s):
            return s
    return value


def shortest_between(a, b):
    """The float in ``[a, b]`` with the fewest significant decimal digits
    (``a`` when none is shorter)."""
    a, b = float(a), float(b)
    if a > b:
        a, b = b, a
    if a == b or not (math.isfinite(a) and math.isfinite(b)):
        return a
    if a <= 0.0 <= b:
        return 0.0
    sign = 1.0
    if b < 0:
        a, b, sign = -b, -a, -1.0
    A, B = Decimal(a), Decimal(b)
    for d in range(1, 18):
        q = Decimal(1).scaleb(B.adjusted() - d + 1)
        for c in (A.quantize(q, rounding=ROUND_CEILING), B.quantize(q, rounding=ROUND_FLOOR)):
            f = float(c)                 # the float a short decimal reads as
            if a <= f <= b:
                return sign * f
    return sign * a


def _snap(sg, x, v, y, res, keep=()):
    """``sg`` with each parameter (but those in ``keep``: a located edge) and the
    amplitude at its shortest decimal that keeps the residual within
    ``max(1.5 res, 1e-13)``."""
    limit = max(1.5 * res, 1e-13)

    def residual(s):
        with np.errstate(all="ignore"):
            return _rel(phi_of(s, x, v) - y, y)
    names = [p.name for p in sg.family.params]
    params = dict(zip(names, sg.params))
    scale = sg.scale
    for n in names:
        if n in keep:
            continue

        def ok(val, n=n):
            try:
                return residual(_sg.get(sg.name, scale=scale, **dict(params, **{n: val}))) <= limit
            except (ValueError, TypeError):
                return False
        params[n] = _shortest(params[n], ok)

    def ok_scale(val):
        return residual(_sg.get(sg.name, scale=val, **params)) <= limit
    scale = _shortest(scale, ok_scale)
    return _sg.get(sg.name, scale=scale, **params)


def _neuron_values(name, cell):
    """The preset's parameters that are the neuron's own, from ``cell``
    (``{'theta': ..., 'M': ...}``)."""
    return {k: float(cell[v]) for k, v in NEURON_PARAMS.get(name, {}).items() if v in cell}


def _family_of_preset(pre, fixed):
    try:
        return pre.build(**dict(dict(pre.defaults), **fixed))[0]
    except (ValueError, TypeError, ZeroDivisionError):
        return None


def _derived(sg):
    """Numbers a preset's parameter may be, read off a fitted surrogate: its
    parameters, amplitude, their inverses, doubles and halves, and the
    shortest decimals of these."""
    base = [float(p) for p in sg.params] + [float(sg.scale)]
    vals = set()
    for p in base:
        if p and math.isfinite(p):
            for c in (p, 1 / p, 2 * p, p / 2, 1 / (2 * p), 2 / p, p * math.sqrt(2),
                      1 / (p * math.sqrt(2)), p / math.pi, p * math.pi, math.pi * p / 2,
                      2 * p / math.pi):
                vals.add(c)
                vals.add(float(f"{c:.7g}"))
    return sorted(vals)


def _refusing(pre, defaults, fixed):
    """Parameters of ``pre`` that refuse any other value than their default
    (sinabs' MultiGaussian takes mu = 0 only): kept at the default."""
    out = {}
    for k, d in defaults.items():
        if k in fixed:
            continue
        try:
            pre.surrogate(**dict(defaults, **fixed, **{k: d + 0.01 + 0.01 * abs(d)}))
        except (ValueError, TypeError, ZeroDivisionError):
            out[k] = float(d)
    return out


F32_MATCH = 1e-6        # a preset within this of the samples matches "to float32"


def match_presets(family, x, v, y, cell, tol=EXACT, fitted=None):
    """Every preset of ``family`` that reproduces the samples, its parameters
    fitted (``cell``: the neuron's threshold and spike maximum, for the presets
    that take them; ``fitted``: the family's fitted surrogate, whose numbers
    seed the search)."""
    from scipy.optimize import least_squares
    out = []
    derived = _derived(fitted) if fitted is not None else []
    for name, pre in _sg.PRESETS.items():
        fixed = _neuron_values(name, cell)
        if _family_of_preset(pre, fixed) != family:
            continue
        defaults = dict(pre.defaults)
        fixed.update(_refusing(pre, defaults, fixed))
        free = [k for k in defaults if k not in fixed]
        ints = {k for k in free if isinstance(defaults[k], int) and not isinstance(defaults[k],
                                                                                  bool)}

        def surrogate(z):
            pp = dict(fixed)
            for k, zi in zip(free, z):
                pp[k] = float(round(zi)) if k in ints else float(zi)
            return pre.surrogate(**pp), pp

        def resid(z):
            try:
                with np.errstate(all="ignore"):
                    r = phi_of(surrogate(z)[0], x, v) - y
            except (ValueError, TypeError, ZeroDivisionError, OverflowError):
                return np.full_like(y, 1e6)
            return np.where(np.isfinite(r), r, 1e6)
        starts = [[float(defaults[k]) for k in free]]
        for f in (0.1, 0.3, 3.0, 10.0, 30.0):
            starts.append([float(defaults[k]) * f if defaults[k] else f for k in free])
        # values read off the identified family: a preset that rounds its parameter
        # (to float32) has a residual that is flat between roundings, where a local
        # search from the defaults cannot move
        if free and len(free) <= 2 and derived:
            import itertools
            for combo in itertools.islice(itertools.product(derived, repeat=len(free)), 6000):
                starts.append(list(combo))
            scored = sorted(starts, key=lambda z0: _rel(resid(z0), y))
            starts = scored[:4]
        # first in the family's own parameters (well conditioned where the samples
        # are not), then on the samples
        if fitted is not None and free:
            target = np.array(list(fitted.params) + [fitted.scale], np.float64)
            tscale = np.maximum(np.abs(target), 1e-12)

            def resid_params(z):
                try:
                    sgz = surrogate(z)[0]
                    got = np.array(list(sgz.params) + [sgz.scale], np.float64)
                except (ValueError, TypeError, ZeroDivisionError, OverflowError):
                    return np.full(target.shape, 1e6)
                if got.shape != target.shape:
                    return np.full(target.shape, 1e6)
                return (got - target) / tscale
            extra = []
            for z0 in starts[:4]:
                try:
                    extra.append(list(least_squares(resid_params, z0, method="trf", xtol=1e-15,
                                                    ftol=1e-15, gtol=1e-15, max_nfev=300).x))
                except (ValueError, FloatingPointError):
                    pass
            starts = extra + starts
        best = None
        for z0 in starts:
            if not free:
                z = np.array([])
            else:
                try:
                    z = least_squares(resid, z0, method="trf", xtol=1e-15, ftol=1e-15,
                                      gtol=1e-15, max_nfev=300).x
                except (ValueError, FloatingPointError):
                    continue
                if _rel(resid(z0), y) < _rel(resid(z), y):
                    z = np.asarray(z0, np.float64)
            r = _rel(resid(z), y)
            if best is None or r < best[0]:
                best = (r, z)
            if r < 1e-13:
                break
        if best is None or best[0] > max(tol, F32_MATCH):
            continue
        r, z = best
        sg_fit, pp = surrogate(z)
        # snap each parameter to its shortest decimal that keeps the residual
        for k in free:
            def ok(val, k=k):
                try:
                    with np.errstate(all="ignore"):
                        s = pre.surrogate(**dict(pp, **{k: val}))
                        return _rel(phi_of(s, x, v) - y, y) <= max(1.5 * r, 1e-13)
                except (ValueError, TypeError, ZeroDivisionError):
                    return False
            pp[k] = _shortest(pp[k], ok)
        with np.errstate(all="ignore"):
            r = _rel(phi_of(pre.surrogate(**pp), x, v) - y, y)
        out.append(PresetMatch(name, pp, r, no_effect(pre, pp, x, v, free), r > tol))
    out.sort(key=lambda m: (m.float32, m.residual))
    return tuple(out)


def no_effect(pre, pp, x, v, names=None):
    """The parameters of preset ``pre`` whose value does not change its derivative
    on ``x`` (at ``pp``, for changes by factors 0.5 and 1.7)."""
    out = []
    with np.errstate(all="ignore"):
        base = phi_of(pre.surrogate(**pp), x, v)
        for k in (names if names is not None else [k for k, _ in pre.defaults]):
            same = True
            for f in (0.5, 1.7):
                val = pp[k] * f if pp[k] else f
                try:
                    other = phi_of(pre.surrogate(**dict(pp, **{k: val})), x, v)
                except (ValueError, TypeError, ZeroDivisionError):
                    same = False
                    break
                if not np.array_equal(other, base):
                    same = False
                    break
            if same:
                out.append(k)
    return tuple(out)


# ------------------------------------------------------------------ the fit

def fit(x, v, y, cell=None, measure=None, prefer=None, anchors=None):
    """Fit the samples ``y = phi(x)`` (``v`` the spikes at ``x``, for the spike
    operator) with every family; ``cell``: ``{'theta': ..., 'M': ...}``, the
    neuron's threshold and spike maximum, which the families and presets that
    take them get (not fitted); ``measure(xs) -> (phi, v)`` takes new samples
    (to locate a window's edge); ``prefer``: a framework name whose presets win
    ties.  Returns a :class:`SurrogateFit`."""
    x = np.asarray(x, np.float64)
    v = np.asarray(v, np.float64)
    y = np.asarray(y, np.float64)
    cell = dict(cell or {})
    fixed = {"periodic_exponential": {"theta": cell.get("theta", 1.0),
                                      "M": cell.get("M", 65536.0)},
             "periodic_exponential_steep": {"theta": cell.get("theta", 1.0)}}
    ny = float(np.max(np.abs(y))) if y.size else 0.0
    if ny == 0.0:
        return SurrogateFit(_sg.get("zero"), 0.0, True, samples=int(y.size))
    if anchors is None:
        anchors = x
    coarse = []
    for fam in _sg.FAMILIES:
        if fam.name in _SKIP:
            continue
        F = _Family(fam, fixed)
        try:
            c = _coarse(F, x, v, y, anchors)
        except (ValueError, TypeError, FloatingPointError, np.linalg.LinAlgError):
            continue
        if c and math.isfinite(c[0][0]):
            coarse.append((c[0][0], fam, F, c))
    # refine only the families the grid found close (the others cannot win)
    floor = min(r[0] for r in coarse)
    results = []
    for res0, fam, F, c in coarse:
        if res0 > max(0.05, 30 * floor):
            continue
        try:
            res, q, beta, nval = _refine(F, c, x, v, y)
            if beta is None or not np.all(np.isfinite(beta)):
                continue
            if nval is not None:
                F.fixed[F.integer[0]] = float(nval)
            sg = F.surrogate(q, beta)
        except (ValueError, TypeError, FloatingPointError, np.linalg.LinAlgError):
            continue
        results.append([res, fam, F, sg])
    results.sort(key=lambda r: r[0])
    best = results[0][0]
    tied = [r for r in results if r[0] <= max(_TIE * best, 1e-12)]
    # edges first: a window family's residual is only as good as its edge
    for r in results:
        r.append(())                                   # the located edge, if any
    if measure is not None:
        for r in tied:
            if r[2].jump is not None and r[0] < 0.3:
                r[3], r[0], r[4] = _locate_edge(r[2], r[3], x, v, y, measure)
        results.sort(key=lambda r: r[0])
        best = results[0][0]
        tied = [r for r in results if r[0] <= max(_TIE * best, 1e-12)]

    def samples(r):
        """The samples with the located edge's two sides added (and mirrored for a
        symmetric window), so that a preset or a shorter decimal must keep it."""
        if not r[4]:
            return x, v, y
        pts = np.array([p for pair in r[4] for p in pair], np.float64)
        if r[2].jump[1] == 0:
            pts = np.concatenate([pts, -pts])
        vv = (pts >= 0).astype(np.float64)
        with np.errstate(all="ignore"):
            yy = phi_of(r[3], pts, vv)
        return np.concatenate([x, pts]), np.concatenate([v, vv]), np.concatenate([y, yy])

    def key(r):
        xa, va, ya = samples(r)
        matches = match_presets(r[1].name, xa, va, ya, cell, tol=max(_TIE * r[0], EXACT),
                                fitted=r[3])
        exact = [m for m in matches if not m.float32]
        own = any(m.name.startswith(f"{prefer}.") for m in exact) if prefer else False
        own32 = any(m.name.startswith(f"{prefer}.") for m in matches) if prefer else False
        return (not own, not own32, not exact, len(r[1].params), r[1].code), matches
    keyed = sorted(((key(r), r) for r in tied), key=lambda kr: kr[0][0])
    (_, matches), r = keyed[0]
    res, fam, F, sg, edges = r
    xa, va, ya = samples(r)
    sg = _snap(sg, xa, va, ya, res, keep=((F.jump[0],) if F.jump else ()) + tuple(F.fixed))
    with np.errstate(all="ignore"):
        res = _rel(phi_of(sg, x, v) - y, y)
    alts = tuple((q[1].name, float(q[0])) for q in results if q[1] is not fam)[:4]
    if res > EXACT:
        matches = ()                  # a closest fit is no preset's
    if prefer:
        matches = tuple(sorted(matches, key=lambda m: (m.float32, not m.name.startswith(
            f"{prefer}."))))
    return SurrogateFit(sg, res, res <= EXACT, alts, matches, edges, int(y.size))


def _edge_predicate(fam, name, side, params, sg):
    """``predict(xs, vs, inside)``: the family's derivative at ``xs`` with the edge
    moved just past every ``xs`` (``inside=True``) or just short of them, the
    other parameters kept (a window's height may depend on its width: moved
    by a relative 1e-6 only)."""
    def predict(xs, vs, inside):
        lo, hi = float(np.min(xs)), float(np.max(xs))
        span = max(abs(lo), abs(hi), 1e-300) * 1e-6
        if side == 0:
            val = max(abs(lo), abs(hi)) + span if inside else max(min(abs(lo), abs(hi)) - span,
                                                                   1e-300)
        elif side == -1:                 # inside for x >= -w
            val = -(lo - span) if inside else -(hi + span)
        else:                            # inside for x > B
            val = lo - span if inside else hi + span
        s = _sg.get(fam, scale=sg.scale, **dict(params, **{name: val}))
        return phi_of(s, xs, vs)
    return predict


def _locate_edge(F, sg, x, v, y, measure, rounds=7):
    """Locate the window edge of family ``F`` (fitted as ``sg``) by bisection
    on new samples ((D9)); returns ``(surrogate, residual, ((inside, outside),))``."""
    name, side = F.jump
    params = dict(zip([p.name for p in sg.family.params], sg.params))
    w = params[name]
    edge = abs(w) if side == 0 else (-w if side == -1 else w)
    predict = _edge_predicate(sg.name, name, side, params, sg)

    def classify(xs, ys, vs):
        pin, pout = predict(xs, vs, True), predict(xs, vs, False)
        return np.abs(ys - pin) <= np.abs(ys - pout)

    order = np.argsort(x)
    xs = x[order]
    if side == 0:
        xs = xs[xs > 0]
    # the fitted edge classifies every sample (its residual is small)
    if side == 0:
        flags = xs <= edge if F.fam.name == "rect" else xs < edge
    elif side == -1:
        flags = xs >= edge
    else:
        flags = xs > edge
    change = np.flatnonzero(flags[1:] != flags[:-1])
    if not change.size:
        return sg, _rel(phi_of(sg, x, v) - y, y), ()
    i = int(change[np.argmin(np.abs(xs[change] - edge))])
    lo, hi = float(xs[i]), float(xs[i + 1])
    in_lo = bool(flags[i])
    for _ in range(rounds):
        if np.nextafter(lo, np.inf) >= hi:
            break
        cand = lo + (hi - lo) * np.arange(1, 64) / 64.0
        cand = np.unique(cand[(cand > lo) & (cand < hi)])
        if not cand.size:
            cand = np.array([np.nextafter(lo, np.inf)])
        my, mv = measure(cand)
        flags = classify(cand, my, mv)
        diff = np.flatnonzero(flags != in_lo)
        if not diff.size:
            lo = float(cand[-1])
        else:
            k = int(diff[0])
            if k > 0:
                lo = float(cand[k - 1])
            hi = float(cand[k])
    inside, outside = (lo, hi) if in_lo else (hi, lo)
    closed = F.fam.name == "rect"
    val = _edge_value(inside, outside, side, closed)
    F.fixed[name] = val
    F.nonlin = [n for n in F.nonlin if n != name]
    try:
        res, q, beta, _ = _fit_family(F, x, v, y, x)
        new = F.surrogate(q, beta)
    except (ValueError, TypeError):
        new = _sg.get(sg.name, scale=sg.scale, **dict(params, **{name: val}))
    with np.errstate(all="ignore"):
        res = _rel(phi_of(new, x, v) - y, y)
    return new, res, ((inside, outside),)


def _edge_value(inside, outside, side, closed):
    """The edge parameter, as the family writes it, that classifies the last
    sample ``inside`` and the first ``outside`` as measured (the shortest
    decimal among those that do)."""
    up, down = (lambda a: np.nextafter(a, np.inf)), (lambda a: np.nextafter(a, -np.inf))
    if side == 0:
        a, b = abs(inside), abs(outside)
        # closed (|x| <= w): a <= w < b;   open (|x| < w): a < w <= b
        return shortest_between(a, down(b)) if closed else shortest_between(up(a), b)
    if side == -1:          # inside for x >= -w:  outside < -w <= inside
        return -shortest_between(up(outside), inside)
    # inside for x > B:  outside <= B < inside
    return shortest_between(outside, down(inside))
