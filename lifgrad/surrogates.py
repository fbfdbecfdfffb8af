"""Surrogate derivatives as data.

Each family is one row of ``FAMILIES``: a name, an integer code (what the
compiled kernels dispatch on), its derivative ``g(x)`` and primitive ``G(x)``
written once as *scalar* formulas, and its parameters with defaults.  The same
formula is bound to NumPy (arrays, for the reference backend and for users),
and to ``math`` (scalars, compiled with Numba ``njit`` for the CPU kernels).

Every formula has the signature ``f(x, v, p0, p1, p2)``: ``x = u - theta``,
``v`` the spike that was emitted (only the spike operator reads it) and up to
three parameters (unused ones are ignored).  The primitive satisfies
``G' = g`` and ``G(-inf) = 0``; ``G(+inf)`` is the family's total mass (1 for
the normalised families).  Conventions and formulas: SPEC section 5 and
``derivations/lif_adjoint.md`` (A6), (A7).

``Surrogate`` (what a layer configuration holds) is a family plus parameter
values, an amplitude ``scale`` (the ``s`` of SPEC section 3) and an optional
clip: ``phi = scale * clip(g, 0, clip)`` when ``clip`` is given, else
``scale * g``.
"""
from __future__ import annotations

import math
import types
from dataclasses import dataclass, field

import numpy as np
import scipy.special

__all__ = ["Surrogate", "Family", "FAMILIES", "get", "names", "Preset", "PRESETS", "preset"]


# --------------------------------------------------------------------------
# The formulas.  Names used inside (exp, fabs, atan, erf, sqrt, PI, lo, hi,
# step) are bound per target by ``bind`` below; ``step(z)`` is 1.0 where
# z >= 0 and 0.0 elsewhere, ``lo``/``hi`` are elementwise min/max.
# --------------------------------------------------------------------------

def _sigmoid_g(x, v, k, p1, p2):
    e = exp(-k * fabs(x))
    return k * e / ((1.0 + e) * (1.0 + e))


def _sigmoid_G(x, v, k, p1, p2):
    e = exp(-k * fabs(x))
    r = 1.0 / (1.0 + e)
    return step(x) * r + (1.0 - step(x)) * e * r


def _fast_sigmoid_g(x, v, k, p1, p2):
    d = 1.0 + k * fabs(x)
    return 1.0 / (d * d)


def _fast_sigmoid_G(x, v, k, p1, p2):
    # integral of 1/(1+k|x|)^2 from -inf: 1/k + x/(1+k|x|); total mass 2/k
    return 1.0 / k + x / (1.0 + k * fabs(x))


def _fast_sigmoid_norm_g(x, v, k, p1, p2):
    d = 1.0 + k * fabs(x)
    return 0.5 * k / (d * d)


def _fast_sigmoid_norm_G(x, v, k, p1, p2):
    return 0.5 + 0.5 * k * x / (1.0 + k * fabs(x))


def _atan_g(x, v, a, p1, p2):
    z = (0.5 * PI * a) * x
    return (0.5 * a) / (1.0 + z * z)


def _atan_G(x, v, a, p1, p2):
    return atan((0.5 * PI * a) * x) / PI + 0.5


def _atan_pi_g(x, v, a, p1, p2):
    z = a * x
    return (a / PI) / (1.0 + z * z)


def _atan_pi_G(x, v, a, p1, p2):
    return atan(a * x) / PI + 0.5


def _rect_g(x, v, w, p1, p2):
    return step(w - fabs(x)) * (0.5 / w)


def _rect_G(x, v, w, p1, p2):
    return lo(hi((x + w) * (0.5 / w), 0.0), 1.0)


def _triangle_g(x, v, w, p1, p2):
    return hi(1.0 - fabs(x) / w, 0.0) / w


def _triangle_G(x, v, w, p1, p2):
    y = lo(hi(x / w, -1.0), 1.0)
    neg = 0.5 * (1.0 + y) * (1.0 + y)
    pos = 1.0 - 0.5 * (1.0 - y) * (1.0 - y)
    return step(y) * pos + (1.0 - step(y)) * neg


def _laplace_g(x, v, l, p1, p2):
    return exp(-fabs(x) / l) / (2.0 * l)


def _laplace_G(x, v, l, p1, p2):
    e = 0.5 * exp(-fabs(x) / l)
    return step(x) * (1.0 - e) + (1.0 - step(x)) * e


def _gaussian_g(x, v, sigma, p1, p2):
    z = x / sigma
    return exp(-0.5 * z * z) / (sigma * sqrt(2.0 * PI))


def _gaussian_G(x, v, sigma, p1, p2):
    return 0.5 * (1.0 + erf(x / (sigma * sqrt(2.0))))


def _straight_through_g(x, v, p0, p1, p2):
    return 1.0 + 0.0 * x


def _spike_operator_g(x, v, p0, p1, p2):
    return v + 0.0 * x


def _zero_g(x, v, p0, p1, p2):
    return 0.0 * x


# -- families that exist to reproduce a peer's surrogate exactly (PRESETS) --

def _sign_step_g(x, v, theta, p1, p2):
    # snnTorch's "triangular": +theta below threshold, -theta at and above it
    return theta * (1.0 - 2.0 * step(x))


def _spike_rate_escape_g(x, v, beta, k, p2):
    return k * exp(-beta * fabs(x - 1.0))


def _sparse_fast_sigmoid_g(x, v, k, B, p2):
    d = 1.0 + k * fabs(x)
    return (1.0 - step(B - x)) / (d * d)          # zero unless x > B


def _nonzero_sign_log_abs_g(x, v, a, p1, p2):
    return 1.0 / (1.0 / a + fabs(x))


def _piecewise_leaky_relu_g(x, v, w, c, p2):
    inside = 1.0 - step(fabs(x) - w)               # |x| < w
    return inside * (0.5 / w) + (1.0 - inside) * c


def _squarewave_fourier_g(x, v, n, period, p2):
    total = 0.0 * x
    w = 2.0 * PI / period
    for i in range(1, int(n)):
        total = total + cos((2 * i - 1) * w * x)
    return (4.0 / period) * total


def _s2nn_g(x, v, a, b, p2):
    e = exp(-a * fabs(x))
    sig = a * e / ((1.0 + e) * (1.0 + e))
    return (1.0 - step(x)) * sig + step(x) * b / (fabs(x) + 1.0)


def _q_pseudo_spike_g(x, v, a, p1, p2):
    return (1.0 + 2.0 * fabs(x) / (a - 1.0)) ** (-a)


def _q_pseudo_spike_G(x, v, a, p1, p2):
    z = (1.0 + 2.0 * fabs(x) / (a - 1.0)) ** (1.0 - a)
    return step(x) * (1.0 - 0.5 * z) + (1.0 - step(x)) * 0.5 * z


def _leaky_k_relu_g(x, v, leak, k, p2):
    return step(x) * k + (1.0 - step(x)) * leak


def _fake_numerical_gradient_g(x, v, a, p1, p2):
    return 1.0 / hi(fabs(x), 1.0 / a)              # min(1/|x|, a), a at x = 0


def _log_tailed_relu_g(x, v, a, p1, p2):
    pos = 1.0 - step(-x)                           # x > 0
    return pos / hi(x, 1.0) + (1.0 - pos) * a


def _rect_open_g(x, v, w, p1, p2):
    return (1.0 - step(fabs(x) - w)) * (0.5 / w)   # |x| < w (open window)


def _rect_open_G(x, v, w, p1, p2):
    return lo(hi((x + w) * (0.5 / w), 0.0), 1.0)


def _tanh_g(x, v, k, p1, p2):
    t = tanh(k * x)
    return 1.0 - t * t


def _tanh_G(x, v, k, p1, p2):
    return (tanh(k * x) + 1.0) / k


def _circ_g(x, v, a, p1, p2):
    r = a * a + x * x
    return a * a * a / (r * sqrt(r))


def _circ_G(x, v, a, p1, p2):
    return a * x / sqrt(a * a + x * x) + a


# -- sinabs 3.1.3, Rockpool 3.1.0 (issue 18; derivations/peers.md) --

def _one_sided_g(x, v, w, c, p2):
    # c for every x >= -w: a step, not a window (Rockpool StepPWL, sinabs Heaviside)
    return c * step(x + w)


def _periodic_exponential_g(x, v, w, theta, M):
    # Rockpool: a bump at every multiple n theta of u = x + theta, n <= M
    u = x + theta
    n = lo(floor(u / theta + 0.5), M)
    below = 1.0 - step(x)
    return below * exp(-fabs(x) / w) + (1.0 - below) * exp(-fabs(u - theta * n) / w)


def _periodic_exponential_steep_g(x, v, w, theta, p2):
    # sinabs: the same bumps, twice as steep above the threshold, no maximum
    u = x + theta
    n = floor(u / theta + 0.5)
    below = 1.0 - step(x)
    return below * exp(-fabs(x) / w) + (1.0 - below) * exp(-2.0 * fabs(u - theta * n) / w)


def _gaussian_shifted_g(x, v, sigma, mu, p2):
    z = (x - mu) / sigma
    return exp(-0.5 * z * z) / (sigma * sqrt(2.0 * PI))


def _gaussian_shifted_G(x, v, sigma, mu, p2):
    return 0.5 * (1.0 + erf((x - mu) / (sigma * sqrt(2.0))))


def _multi_gaussian_g(x, v, sigma, r, k):
    # N(x; 0, sigma) with two side lobes of width k sigma at +-sigma, r times its
    # height: [e(x/sigma) - r (e((x - sigma)/(k sigma)) + e((x + sigma)/(k sigma)))]
    # / (sigma sqrt(2 pi)), e(z) = exp(-z^2/2)
    z0 = x / sigma
    q = k * sigma
    z1 = (x - sigma) / q
    z2 = (x + sigma) / q
    return (exp(-0.5 * z0 * z0) - r * (exp(-0.5 * z1 * z1) + exp(-0.5 * z2 * z2))) / (
        sigma * sqrt(2.0 * PI))


def _multi_gaussian_G(x, v, sigma, r, k):
    q = k * sigma * sqrt(2.0)
    return 0.5 * ((1.0 + erf(x / (sigma * sqrt(2.0))))
                  - r * k * ((1.0 + erf((x - sigma) / q)) + (1.0 + erf((x + sigma) / q))))


def _refractory_logistic_g(x, v, k, theta, p2):
    # max(cos(2 pi theta x) / (1 + exp(-kx)), 0): Spyx's refractory Bernoulli probability
    e = exp(-k * fabs(x))
    r = 1.0 / (1.0 + e)
    return hi(cos((2.0 * PI * theta) * x) * (step(x) * r + (1.0 - step(x)) * e * r), 0.0)


# --------------------------------------------------------------------------
# Binding the formulas to NumPy and to math (for njit).
# --------------------------------------------------------------------------

def _np_step(z):
    return (np.asarray(z) >= 0).astype(np.float64)


_NUMPY_NS = dict(exp=np.exp, fabs=np.abs, atan=np.arctan, erf=scipy.special.erf,
                 sqrt=np.sqrt, PI=np.pi, lo=np.minimum, hi=np.maximum, step=_np_step,
                 cos=np.cos, tanh=np.tanh, floor=np.floor)


def _math_step(z):  # pragma: no cover - replaced by an njit twin in kernels
    return 1.0 if z >= 0 else 0.0


MATH_NS = dict(exp=math.exp, fabs=math.fabs, atan=math.atan, erf=math.erf,
                sqrt=math.sqrt, PI=math.pi, lo=min, hi=max, step=_math_step,
                cos=math.cos, tanh=math.tanh, floor=math.floor)


def bind(f, namespace):
    """A copy of formula ``f`` whose free names resolve in ``namespace``."""
    if f is None:
        return None
    g = dict(namespace)
    g["__name__"] = f.__module__     # Numba's cache re-imports the module by this name
    return types.FunctionType(f.__code__, g, f.__name__, f.__defaults__, f.__closure__)


@dataclass(frozen=True)
class Param:
    name: str
    default: float
    positive: bool = True  # must be > ``gt`` (0 by default); else any finite value
    gt: float = 0.0


@dataclass(frozen=True)
class Family:
    """One row of the surrogate table."""

    name: str
    code: int
    g: object            # scalar formula f(x, v, p0, p1, p2)
    G: object | None     # primitive, None where there is none
    params: tuple = ()
    doc: str = ""
    aliases: tuple = ()
    g_np: object = field(default=None, repr=False, compare=False)
    G_np: object = field(default=None, repr=False, compare=False)


def _row(name, code, g, G, params=(), doc="", aliases=()):
    return Family(name, code, g, G, tuple(params), doc, tuple(aliases),
                  bind(g, _NUMPY_NS), bind(G, _NUMPY_NS))


# The table.  Codes index the kernels' dispatch (lifgrad/kernels/cpu.py); a
# test checks every code is dispatched to the same formula.
FAMILIES: tuple = (
    _row("sigmoid", 0, _sigmoid_g, _sigmoid_G, [Param("k", 4.0)],
         "k sig(kx)(1 - sig(kx)); primitive sig(kx)"),
    _row("fast_sigmoid", 1, _fast_sigmoid_g, _fast_sigmoid_G, [Param("k", 10.0)],
         "1/(1 + k|x|)^2 (SuperSpike, peak 1, mass 2/k)", aliases=("superspike",)),
    _row("fast_sigmoid_norm", 2, _fast_sigmoid_norm_g, _fast_sigmoid_norm_G,
         [Param("k", 10.0)], "k/(2(1 + k|x|)^2) (mass 1)"),
    _row("atan", 3, _atan_g, _atan_G, [Param("a", 2.0)],
         "(a/2)/(1 + (pi a x/2)^2) (snnTorch/SpikingJelly parametrisation)",
         aliases=("arctan",)),
    _row("atan_pi", 4, _atan_pi_g, _atan_pi_G, [Param("a", 2.0)],
         "(a/pi)/(1 + a^2 x^2)"),
    _row("rect", 5, _rect_g, _rect_G, [Param("w", 0.5)],
         "1/(2w) on |x| <= w (rectangular / piecewise linear primitive)",
         aliases=("rectangular", "boxcar")),
    _row("triangle", 6, _triangle_g, _triangle_G, [Param("w", 1.0)],
         "(1/w)(1 - |x|/w)_+ (piecewise quadratic primitive)"),
    _row("laplace", 7, _laplace_g, _laplace_G, [Param("l", 0.5)],
         "exp(-|x|/l)/(2l) (exponential; Laplace CDF primitive)",
         aliases=("exponential",)),
    _row("gaussian", 8, _gaussian_g, _gaussian_G, [Param("sigma", 0.5)],
         "exp(-x^2/(2 sigma^2))/(sigma sqrt(2 pi)); normal CDF primitive"),
    _row("straight_through", 9, _straight_through_g, None, (),
         "g = 1 everywhere (no primitive)", aliases=("ste",)),
    _row("spike_operator", 10, _spike_operator_g, None, (),
         "g = v_t, the emitted spike (no primitive)", aliases=("heaviside",)),
    _row("zero", 11, _zero_g, None, (),
         "g = 0: the adjoint of the real spiking network between spike flips"),
    _row("sign_step", 12, _sign_step_g, None, [Param("theta", 1.0)],
         "+theta for x < 0, -theta for x >= 0 (snnTorch 'triangular' as coded)"),
    _row("spike_rate_escape", 13, _spike_rate_escape_g, None,
         [Param("beta", 1.0), Param("k", 25.0)], "k exp(-beta |x - 1|) (snnTorch)"),
    _row("sparse_fast_sigmoid", 14, _sparse_fast_sigmoid_g, None,
         [Param("k", 25.0), Param("B", 1.0, positive=False)],
         "1{x > B}/(1 + k|x|)^2 (snnTorch SFS)"),
    _row("nonzero_sign_log_abs", 15, _nonzero_sign_log_abs_g, None, [Param("a", 1.0)],
         "1/(1/a + |x|) (SpikingJelly)"),
    _row("piecewise_leaky_relu", 16, _piecewise_leaky_relu_g, None,
         [Param("w", 1.0), Param("c", 0.01, positive=False)],
         "1/(2w) on |x| < w, c elsewhere (SpikingJelly)"),
    _row("squarewave_fourier", 17, _squarewave_fourier_g, None,
         [Param("n", 2.0, gt=1.0), Param("period", 8.0)],
         "(4/T) sum_{i=1}^{n-1} cos((2i-1) 2 pi x/T) (SpikingJelly)"),
    _row("s2nn", 18, _s2nn_g, None, [Param("a", 4.0), Param("b", 1.0, positive=False)],
         "x < 0: a sig(ax)(1 - sig(ax)); x >= 0: b/(x + 1) (SpikingJelly)"),
    _row("q_pseudo_spike", 19, _q_pseudo_spike_g, _q_pseudo_spike_G, [Param("a", 2.0, gt=1.0)],
         "(1 + 2|x|/(a - 1))^(-a) (SpikingJelly)"),
    _row("leaky_k_relu", 20, _leaky_k_relu_g, None,
         [Param("leak", 0.0, positive=False), Param("k", 1.0, positive=False)],
         "k for x >= 0, leak below (SpikingJelly)"),
    _row("fake_numerical_gradient", 21, _fake_numerical_gradient_g, None, [Param("a", 0.3)],
         "min(1/|x|, a) (SpikingJelly)"),
    _row("log_tailed_relu", 22, _log_tailed_relu_g, None, [Param("a", 0.0, positive=False)],
         "a for x <= 0, 1 on (0, 1], 1/x above (SpikingJelly)"),
    _row("rect_open", 23, _rect_open_g, _rect_open_G, [Param("w", 0.5)],
         "1/(2w) on the open window |x| < w (SpikingJelly Rect)"),
    _row("tanh", 24, _tanh_g, _tanh_G, [Param("k", 1.0)],
         "1 - tanh(kx)^2 (Norse, no factor k; mass 2/k)"),
    _row("circ", 25, _circ_g, _circ_G, [Param("a", 1.0)],
         "a^3/(a^2 + x^2)^(3/2) (Norse; mass 2a)"),
    _row("one_sided", 26, _one_sided_g, None,
         [Param("w", 0.5, positive=False), Param("c", 1.0)],
         "c for x >= -w, 0 below: one-sided (Rockpool StepPWL, sinabs Heaviside)"),
    _row("periodic_exponential", 27, _periodic_exponential_g, None,
         [Param("w", 0.5), Param("theta", 1.0), Param("M", 65536.0)],
         "exp(-|x|/w) below theta, exp(-|u - n theta|/w) above, n = min(round(u/theta), M) "
         "(Rockpool)"),
    _row("periodic_exponential_steep", 28, _periodic_exponential_steep_g, None,
         [Param("w", 0.5), Param("theta", 1.0)],
         "exp(-|x|/w) below theta, exp(-2|u - n theta|/w) above, n = round(u/theta) (sinabs)"),
    _row("gaussian_shifted", 29, _gaussian_shifted_g, _gaussian_shifted_G,
         [Param("sigma", 0.5), Param("mu", 0.0, positive=False)],
         "normal density of mean mu (sinabs Gaussian)"),
    _row("multi_gaussian", 30, _multi_gaussian_g, _multi_gaussian_G,
         [Param("sigma", 0.5), Param("r", 0.15 / (1.15 * 6), positive=False), Param("k", 6.0)],
         "N(0, sigma) minus side lobes N(+-sigma, k sigma) of relative height r (sinabs "
         "MultiGaussian: r = h/((1+h) k); negative where the lobes win)"),
    # the logistic function itself: the sigmoid family's primitive as a surrogate
    _row("logistic", 31, _sigmoid_G, None, [Param("k", 10.0)],
         "sig(kx) = 1/(1 + exp(-kx)) itself, not its derivative (Spyx's Bernoulli "
         "probability and its backward)"),
    _row("refractory_logistic", 32, _refractory_logistic_g, None,
         [Param("k", 50.0), Param("theta", 1.0)],
         "max(cos(2 pi theta x) sig(kx), 0) (Spyx's refractory Bernoulli probability)"),
)

_BY_NAME = {}
for _f in FAMILIES:
    _BY_NAME[_f.name] = _f
    for _a in _f.aliases:
        _BY_NAME[_a] = _f
assert [f.code for f in FAMILIES] == list(range(len(FAMILIES)))


def names():
    """Canonical names of all surrogate families."""
    return [f.name for f in FAMILIES]


def family(name: str) -> Family:
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise ValueError(f"surrogate: unknown name {name!r}; valid names are "
                         f"{', '.join(sorted(_BY_NAME))}") from None


def flush_subnormal(a):
    """``a`` with every subnormal value (nonzero, below the dtype's smallest
    normal number) set to 0, in place where ``a`` is a writable array.  The
    surrogate and its primitive are rounded once to the layer's dtype and then
    flushed, on every backend: a value that small contributes nothing a
    gradient can show, and subnormal arithmetic runs several times slower on
    x86 (a float32 backward with every phi subnormal took 22 ms instead of
    9 ms, benchmarks/float32_sweep.md).  Normal values are untouched."""
    a = np.asarray(a)
    if a.dtype.kind != "f":
        return a
    tiny = np.finfo(a.dtype).tiny
    small = np.abs(a) < tiny
    if np.any(small):
        if a.ndim == 0 or not a.flags.writeable:
            a = a.copy()
        if a.ndim == 0:
            return a.dtype.type(0) if small else a
        a[small] = 0
    return a

@dataclass(frozen=True)
class Surrogate:
    """A surrogate family with parameter values, amplitude and clip.

    Immutable and hashable, so it can sit in a layer configuration.  Build
    one with :func:`get`.
    """

    name: str
    params: tuple = ()
    scale: float = 1.0
    clip: float | None = None
    preset: str | None = field(default=None, compare=False)   # the peer preset it came from
    # the peer parameters it was built from, ((name, value), ...) (live thresholds, M10)
    peer: tuple | None = field(default=None, compare=False)

    @property
    def family(self) -> Family:
        return family(self.name)

    @property
    def has_primitive(self) -> bool:
        return self.family.G is not None

    def _p3(self):
        p = list(self.params) + [0.0] * (3 - len(self.params))
        return p[:3]

    def g(self, x, v=None):
        """Raw derivative ``g(x)`` (no amplitude, no clip), NumPy, keeps dtype."""
        x = np.asarray(x)
        vv = np.zeros_like(x) if v is None else np.asarray(v)
        out = self.family.g_np(x, vv, *self._p3())
        return np.asarray(out, dtype=x.dtype if x.dtype.kind == "f" else np.float64)

    def phi(self, x, v=None):
        """``scale * clip(g(x))``: the factor the adjoint uses, (A7); values
        below the dtype's smallest normal number are 0 (:func:`flush_subnormal`)."""
        g = self.g(x, v)
        if self.clip is not None:
            g = np.clip(g, 0.0, self.clip).astype(g.dtype, copy=False)
        return flush_subnormal((g * self.scale).astype(g.dtype, copy=False))

    def G(self, x):
        """Primitive ``G(x)`` with ``G' = g`` and ``G(-inf) = 0``."""
        if not self.has_primitive:
            raise ValueError(f"surrogate {self.name!r} has no primitive; forward='smooth' "
                             f"needs one of {', '.join(n for n in names() if family(n).G)}")
        x = np.asarray(x)
        out = self.family.G_np(x, np.zeros_like(x), *self._p3())
        return flush_subnormal(np.asarray(out, dtype=x.dtype if x.dtype.kind == "f"
                                          else np.float64))

    def mass(self, d):
        """Window mass ``G(d) - G(-d)``: the integral of ``g`` over ``[-d, d]``
        (amplitude and clip not applied).  For the sigmoid family it is
        ``tanh(k d / 2)``.  Needs a primitive."""
        d = np.asarray(d, dtype=np.float64)
        if np.any(d < 0) or not np.all(np.isfinite(d)):
            raise ValueError(f"d: expected finite half-widths >= 0, got {d}")
        return self.G(d) - self.G(-d)

    def kernel_args(self):
        """(code, p0, p1, p2, scale, clip_lo, clip_hi) as plain numbers for kernels."""
        p0, p1, p2 = self._p3()
        lo_, hi_ = (0.0, float(self.clip)) if self.clip is not None else (-math.inf, math.inf)
        return (self.family.code, float(p0), float(p1), float(p2), float(self.scale), lo_, hi_)

    def with_scale(self, scale: float) -> "Surrogate":
        """The same surrogate with amplitude ``scale`` (the preset it came from kept)."""
        out = get(self.name, scale=scale, clip=self.clip, **dict(self.named_params()))
        return Surrogate(out.name, out.params, out.scale, out.clip, self.preset, self.peer)

    def named_params(self):
        return tuple((p.name, v) for p, v in zip(self.family.params, self.params))

    def __str__(self):
        extra = [f"{n}={v:g}" for n, v in self.named_params()]
        if self.scale != 1.0:
            extra.append(f"scale={self.scale:g}")
        if self.clip is not None:
            extra.append(f"clip={self.clip:g}")
        return f"{self.name}({', '.join(extra)})"


def get(name: str | Surrogate = "atan", *, scale: float | None = None, clip: float | None = None,
        **params) -> Surrogate:
    """Return the surrogate ``name`` with the given parameters.

    >>> get("sigmoid", k=10).params
    (10.0,)

    A name with a dot is a peer preset with the peer's parameter names:
    ``get("snntorch.sigmoid", slope=10)`` is ``get("sigmoid", k=10)``.  A
    preset's own parameter names win: spikeDE's sharpness is called ``scale``,
    so ``get("spikede.arctan", scale=3.0)`` is its sharpness 3 (give such a
    preset another amplitude with :meth:`Surrogate.with_scale`).  The result
    remembers its preset (``.preset``), whose spike comparison a
    :class:`lifgrad.LIFConfig` takes when ``strict`` is not given.

    Unknown names and parameters, and out-of-range values, raise ``ValueError``
    naming what was expected.
    """
    if isinstance(name, Surrogate):
        if params or scale is not None or clip is not None:
            raise ValueError("surrogate: pass either a Surrogate or a name with parameters")
        return name
    if isinstance(name, str) and "." in name:
        pre = preset(name)
        if scale is not None and "scale" in dict(pre.defaults):
            params, scale = dict(params, scale=scale), None      # the peer's own 'scale'
        return pre.surrogate(1.0 if scale is None else scale, clip, **params)
    scale = 1.0 if scale is None else scale
    fam = family(name)
    valid = {p.name for p in fam.params}
    unknown = set(params) - valid
    if unknown:
        raise ValueError(f"surrogate {fam.name!r}: unknown parameter(s) {sorted(unknown)}; "
                         f"valid: {sorted(valid) or 'none'}")
    values = []
    for p in fam.params:
        val = params.get(p.name, p.default)
        if isinstance(val, bool) or not isinstance(val, (int, float, np.integer, np.floating)):
            raise TypeError(f"surrogate {fam.name!r}: parameter {p.name} must be a real "
                            f"number, got {type(val).__name__}")
        val = float(val)
        if not math.isfinite(val) or (p.positive and val <= p.gt):
            raise ValueError(f"surrogate {fam.name!r}: parameter {p.name} must be a finite "
                             f"number{f' > {p.gt:g}' if p.positive else ''}, got {val}")
        values.append(val)
    for label, val, ok in (("scale", scale, True), ("clip", clip, clip is not None)):
        if not ok:
            continue
        if isinstance(val, bool) or not isinstance(val, (int, float, np.integer, np.floating)) \
                or not math.isfinite(float(val)) or float(val) < 0:
            raise ValueError(f"surrogate {fam.name!r}: {label} must be a finite number >= 0, "
                             f"got {val!r}")
    return Surrogate(fam.name, tuple(values), float(scale),
                     None if clip is None else float(clip))


# --------------------------------------------------------------------------
# Peer presets: each framework's surrogates under that framework's names,
# parameter names and defaults, mapped onto a family (SPEC section 5;
# shared/peers_catalog.md).  ``strict`` is the framework's spike comparison
# (True: fires at u > theta).  ``note`` records where the framework's code
# differs from its documentation.
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Preset:
    name: str
    defaults: tuple          # ((peer parameter, default), ...)
    build: object            # peer parameters -> (family, {param: value}, scale)
    strict: bool
    note: str = ""

    @property
    def framework(self):
        return self.name.split(".")[0]

    def surrogate(self, amplitude=1.0, clip=None, **peer_params):
        """The Surrogate for these peer parameters, times ``amplitude``."""
        valid = dict(self.defaults)
        unknown = set(peer_params) - set(valid)
        if unknown:
            raise ValueError(f"surrogate {self.name!r}: unknown parameter(s) {sorted(unknown)}; "
                             f"valid: {sorted(valid) or 'none'}")
        valid.update(peer_params)
        fam, params, pscale = self.build(**valid)
        out = get(fam, scale=amplitude * pscale, clip=clip, **params)
        return Surrogate(out.name, out.params, out.scale, out.clip, self.name,
                         tuple(sorted(valid.items())))


_SQRT2 = math.sqrt(2.0)
_SQRT_PI_F32 = float(np.sqrt(np.float32(np.pi)))   # Norse: torch.as_tensor(np.pi).sqrt()
# sqrt(2 pi) as torch makes it from a float32 pi (spikeDE: torch.sqrt(torch.tensor(2*pi));
# sinabs: torch.sqrt(2 * torch.tensor(pi)): the same float32 value)
_SQRT_2PI_F32 = np.sqrt(np.float32(2 * np.pi))


def _f32_normaliser(q):
    """The factor from a normal density of width q normalised in float64 to one
    divided by ``q * torch.sqrt(...)`` as torch computes it: the float32 product
    of float32(q) and the float32 sqrt(2 pi)."""
    return q * math.sqrt(2 * math.pi) / float(np.float32(q) * _SQRT_2PI_F32)


def _sinabs_multi_gaussian(mu, sigma, h, s, grad_scale):
    if mu != 0:
        raise ValueError("surrogate 'sinabs.MultiGaussian': mu != 0 has no preset (its side "
                         "lobes stay at +-sigma while the centre moves: four parameters)")
    # (1+h) N(x; 0, sigma) - h N(x; +-sigma, s sigma), each density over its own float32
    # normaliser: the centre's height sets the amplitude, the lobes' is relative to it
    a = (1 + h) / float(np.float32(sigma) * _SQRT_2PI_F32)
    b = h / float(np.float32(s * sigma) * _SQRT_2PI_F32)
    return ("multi_gaussian", {"sigma": sigma, "r": b / a, "k": s},
            grad_scale * a * sigma * math.sqrt(2 * math.pi))


def _spikede_gaussian(sigma):
    return "gaussian", {"sigma": sigma}, _f32_normaliser(sigma)


def _p(name, defaults, build, strict, note=""):
    return Preset(name, tuple(defaults.items()), build, strict, note)


PRESETS = {p.name: p for p in (
    # snnTorch 1.0.0: forward (x > 0)
    _p("snntorch.atan", {"alpha": 2.0}, lambda alpha: ("atan", {"a": alpha}, 1.0), True,
       "docstring prints (1/pi)/(1+(pi U alpha/2)^2); the code is (alpha/2)/(1+(pi alpha U/2)^2)"),
    _p("snntorch.sigmoid", {"slope": 25.0}, lambda slope: ("sigmoid", {"k": slope}, 1.0), True),
    _p("snntorch.fast_sigmoid", {"slope": 25.0},
       lambda slope: ("fast_sigmoid", {"k": slope}, 1.0), True),
    _p("snntorch.triangular", {"threshold": 1.0},
       lambda threshold: ("sign_step", {"theta": float(np.float32(threshold))}, 1.0), True,
       "named triangular, but the code returns +threshold below and -threshold at/above "
       "threshold: a sign step, negative where the neuron fires; the value is the float32 "
       "product of the (float32) spike's gradient and threshold"),
    _p("snntorch.spike_rate_escape", {"beta": 1.0, "slope": 25.0},
       lambda beta, slope: ("spike_rate_escape", {"beta": beta, "k": slope}, 1.0), True,
       "centred at x = 1 (u = theta + 1), not at the threshold"),
    _p("snntorch.straight_through_estimator", {},
       lambda: ("straight_through", {}, 1.0), True),
    _p("snntorch.heaviside", {}, lambda: ("spike_operator", {}, 1.0), True),
    _p("snntorch.SFS", {"slope": 25.0, "B": 1.0},
       lambda slope, B: ("sparse_fast_sigmoid", {"k": slope, "B": B}, 1.0), True,
       "zero unless u > theta + B"),
    # SpikingJelly 2.0.0: forward (x >= 0)
    _p("spikingjelly.Sigmoid", {"alpha": 4.0}, lambda alpha: ("sigmoid", {"k": alpha}, 1.0), False),
    _p("spikingjelly.ATan", {"alpha": 2.0}, lambda alpha: ("atan", {"a": alpha}, 1.0), False),
    _p("spikingjelly.PiecewiseQuadratic", {"alpha": 1.0},
       lambda alpha: ("triangle", {"w": 1.0 / alpha}, 1.0), False),
    _p("spikingjelly.PiecewiseExp", {"alpha": 1.0},
       lambda alpha: ("laplace", {"l": 1.0 / alpha}, 1.0), False),
    _p("spikingjelly.SoftSign", {"alpha": 2.0},
       lambda alpha: ("fast_sigmoid_norm", {"k": alpha}, 1.0), False),
    _p("spikingjelly.SuperSpike", {"alpha": 1.0},
       lambda alpha: ("fast_sigmoid", {"k": 1.0}, alpha), False,
       "alpha multiplies the derivative; it is not a sharpness"),
    _p("spikingjelly.NonzeroSignLogAbs", {"alpha": 1.0},
       lambda alpha: ("nonzero_sign_log_abs", {"a": alpha}, 1.0), False),
    _p("spikingjelly.Erf", {"alpha": 2.0},
       lambda alpha: ("gaussian", {"sigma": 1.0 / (alpha * _SQRT2)}, 1.0), False),
    _p("spikingjelly.PiecewiseLeakyReLU", {"w": 1.0, "c": 0.01},
       lambda w, c: ("piecewise_leaky_relu", {"w": w, "c": c}, 1.0), False),
    _p("spikingjelly.SquarewaveFourierSeries", {"n": 2, "T_period": 8.0},
       lambda n, T_period: ("squarewave_fourier", {"n": float(n), "period": T_period}, 1.0),
       False, "sums only n - 1 terms"),
    _p("spikingjelly.S2NN", {"alpha": 4.0, "beta": 1.0},
       lambda alpha, beta: ("s2nn", {"a": alpha, "b": beta}, 1.0), False),
    _p("spikingjelly.QPseudoSpike", {"alpha": 2.0},
       lambda alpha: ("q_pseudo_spike", {"a": alpha}, 1.0), False),
    _p("spikingjelly.LeakyKReLU", {"leak": 0.0, "k": 1.0},
       lambda leak, k: ("leaky_k_relu", {"leak": leak, "k": k}, 1.0), False),
    _p("spikingjelly.FakeNumericalGradient", {"alpha": 0.3},
       lambda alpha: ("fake_numerical_gradient", {"a": alpha}, 1.0), False),
    _p("spikingjelly.LogTailedReLU", {"alpha": 0.0},
       lambda alpha: ("log_tailed_relu", {"a": alpha}, 1.0), False),
    _p("spikingjelly.Rect", {"alpha": 1.0},
       lambda alpha: ("rect_open", {"w": 0.5 / alpha}, 1.0), False),
    _p("spikingjelly.DeterministicPass", {}, lambda: ("straight_through", {}, 1.0), False),
    # Norse 1.1.0: forward (x > 0)
    _p("norse.super", {"alpha": 100.0}, lambda alpha: ("fast_sigmoid", {"k": 1.0}, 1.0), True,
       "alpha is stored but never used: the backward is always 1/(|x| + 1)^2"),
    _p("norse.tanh", {"alpha": 100.0}, lambda alpha: ("tanh", {"k": alpha}, 1.0), True,
       "the backward 1 - tanh(alpha x)^2 lacks the factor alpha of d/dx tanh(alpha x)"),
    _p("norse.triangle", {"alpha": 0.3}, lambda alpha: ("triangle", {"w": 1.0}, alpha), True,
       "alpha scales the height; the support is fixed to |x| < 1 (via LIFParameters the "
       "default alpha is 100)"),
    _p("norse.circ", {"alpha": 100.0}, lambda alpha: ("circ", {"a": alpha}, 1.0), True),
    _p("norse.heavi_erfc", {"alpha": 100.0},
       lambda alpha: ("gaussian", {"sigma": 1.0 / (alpha * _SQRT2)},
                      2.0 / alpha * math.sqrt(math.pi) / _SQRT_PI_F32), True,
       "the backward 2 exp(-(alpha x)^2)/sqrt(pi) lacks the factor alpha (and takes sqrt(pi) "
       "in float32)"),
    # spikeDE (not installed here; formulas from its code)
    _p("spikede.sigmoid", {"scale": 5.0}, lambda scale: ("sigmoid", {"k": scale}, 1.0), False),
    _p("spikede.arctan", {"scale": 2.0}, lambda scale: ("atan", {"a": scale}, 1.0), False,
       "the docs give scale/(1 + (scale x)^2); the code is (scale/2)/(1 + (pi scale x/2)^2)"),
    _p("spikede.piecewise_linear", {"gamma": 1.0},
       lambda gamma: ("rect", {"w": gamma}, 1.0), False,
       "described as a triangular window; the formula is rectangular"),
    # sinabs 3.1.3 (fires at >=; x = v - theta; its surrogates also take the threshold)
    _p("sinabs.SingleExponential", {"grad_width": 0.5, "grad_scale": 1.0, "threshold": 1.0},
       lambda grad_width, grad_scale, threshold: (
           "laplace", {"l": grad_width * threshold}, 2.0 * grad_scale), False,
       "sinabs' default: width and height scale with the threshold (peak 2 grad_scale/theta)"),
    _p("sinabs.PeriodicExponential", {"grad_width": 0.5, "grad_scale": 1.0, "threshold": 1.0},
       lambda grad_width, grad_scale, threshold: (
           "periodic_exponential_steep", {"w": grad_width, "theta": threshold}, grad_scale),
       False, "above the threshold the bumps are twice as steep as below it; not divided by "
       "theta"),
    _p("sinabs.Heaviside", {"window": 1.0, "threshold": 1.0},
       lambda window, threshold: (
           "one_sided", {"w": window, "c": float(np.float32(1.0) / np.float32(threshold))}, 1.0),
       False, "one-sided: 1/theta for every v >= theta - window (the docstring calls window "
       "relative to the threshold; the code uses it as it is); computed in float32"),
    _p("sinabs.Gaussian", {"mu": 0.0, "sigma": 0.5, "grad_scale": 1.0},
       lambda mu, sigma, grad_scale: (
           "gaussian_shifted", {"sigma": sigma, "mu": mu}, grad_scale * _f32_normaliser(sigma)),
       False, "normalised by the float32 product sigma * sqrt(2 pi) (up to 6e-8 relative)"),
    _p("sinabs.MultiGaussian", {"mu": 0.0, "sigma": 0.5, "h": 0.15, "s": 6.0, "grad_scale": 1.0},
       _sinabs_multi_gaussian, False,
       "negative in its side lobes (at +-sigma, not around mu); float32 sqrt(2 pi)"),
    # Rockpool 3.1.0 (fires at >=; with the adapters' float64 spike functions)
    _p("rockpool.StepPWL", {"window": 0.5, "threshold": 1.0},
       lambda window, threshold: ("one_sided", {"w": window, "c": 1.0 / threshold}, 1.0), False,
       "one-sided, 1/theta for every v >= theta - window, whatever the spike count; its "
       "threshold derivative is -(v/theta) times this (lifgrad's is -phi); the stock "
       "function returns float32"),
    _p("rockpool.PeriodicExponential", {"window": 0.5, "threshold": 1.0,
                                        "max_spikes_per_dt": 65536.0},
       lambda window, threshold, max_spikes_per_dt: (
           "periodic_exponential", {"w": window, "theta": threshold, "M": max_spikes_per_dt},
           1.0 / threshold), False,
       "bumps at every multiple of theta up to max_spikes_per_dt, divided by theta"),
    # Spyx 1.0.0 (fires at >: heaviside(x) = where(x > 0, 1, 0))
    _p("spyx.superspike", {"k": 25.0}, lambda k: ("fast_sigmoid", {"k": k}, 1.0), True,
       "the default of every Spyx neuron"),
    _p("spyx.arctan", {"k": 2.0}, lambda k: ("atan", {"a": 2.0 * k}, 1.0 / (math.pi * k)), True,
       "peak 1/pi, not 1 (snnTorch's atan)"),
    _p("spyx.tanh", {"k": 1.0}, lambda k: ("tanh", {"k": k}, 1.0), True,
       "sech^2(kx): the docs' derivative of tanh(kx) lacks the factor k"),
    _p("spyx.boxcar", {"width": 2.0, "height": 0.5},
       lambda width, height: ("rect_open", {"w": width / 2}, height * width), True,
       "height on the open window |x| < width/2 (the docstring says <=)"),
    _p("spyx.triangular", {"k": 2.0}, lambda k: ("triangle", {"w": 1.0 / k}, 1.0 / k), True),
    # spyx.experimental's Bernoulli neurons: the spike is drawn with probability p and
    # the backward multiplies by p itself (LIFConfig(forward='stochastic',
    # spike_probability='surrogate'), (M13))
    _p("spyx.sigmoid_bernoulli", {"k": 10.0, "max_prob": 0.8},
       lambda k, max_prob: ("logistic", {"k": k}, max_prob), True,
       "spyx.experimental: p = max_prob sig(kx) is both the Bernoulli spike's probability "
       "and its backward g p (not dp/dx)"),
    _p("spyx.refractory_sigmoid_bernoulli", {"k": 50.0, "threshold": 1.0},
       lambda k, threshold: ("refractory_logistic", {"k": k, "theta": threshold}, 1.0), True,
       "spyx.experimental: p = max(cos(2 pi theta x) sig(kx), 0) is both the Bernoulli "
       "spike's probability and its backward g p"),
    _p("spikede.gaussian", {"sigma": 1.0}, _spikede_gaussian, False,
       "normalised by a float32 sigma sqrt(2 pi) (torch.tensor(2*pi) is float32): 6e-8 "
       "relative from the float64 density"),
)}

# Shipped by a framework but not reproducible as a deterministic preset.
DEVIATIONS = {
    "snntorch.SSO": "StochasticSpikeOperator draws fresh uniform noise in every backward pass",
    "snntorch.LSO": "LeakySpikeOperator is broken in snnTorch 1.0.0 (TypeError when called)",
    "snntorch.custom_surrogate": "user-defined",
    "spikingjelly.PoissonPass": "stochastic forward (Bernoulli)",
    "spikingjelly.MultiLevelSpikeCount": "multi-level (non-binary) spikes",
    "norse.heaviside": "no gradient (zero surrogate: use 'zero')",
    "norse.logistic": "stochastic forward (Bernoulli)",
    "spikede.noisy_threshold": "stochastic forward with logistic noise",
    "spyx.custom": "user-defined (its default backward is the identity: the gradient is g*x, "
                   "not the straight-through estimator the docstring names)",
}


def live_threshold(sur: Surrogate):
    """The kernel arguments of ``sur`` evaluated at the neuron's own threshold
    (``LIFConfig(surrogate_threshold='live')``, (M10)): ``(sg, code)`` where
    ``sg`` is :meth:`Surrogate.kernel_args` at threshold 1 and ``code`` says,
    in base 3 (slot 0 lowest), how each of ``p0, p1, p2, scale`` follows the
    threshold theta_t: 0 not at all, 1 times theta_t, 2 divided by theta_t.

    Only a peer preset with a ``threshold`` parameter has a threshold to
    replace; each slot must be proportional to theta, to 1/theta or constant
    (read off the preset at thresholds 1 and 2).  ``sg`` holds the preset's
    values at threshold 1 (its own threshold is replaced), its amplitude kept."""
    pre = PRESETS.get(sur.preset) if sur.preset else None
    if pre is None or sur.peer is None or "threshold" not in dict(pre.defaults):
        with_theta = ", ".join(n for n, p in sorted(PRESETS.items())
                               if "threshold" in dict(p.defaults))
        raise ValueError(f"surrogate_threshold='live': the surrogate {sur} has no threshold "
                         f"parameter to replace by the neuron's; it needs a peer preset with "
                         f"one ({with_theta})")
    peer = dict(sur.peer)

    def slots(th):
        fam, params, pscale = pre.build(**dict(peer, threshold=th))
        vals = [float(params.get(p.name, p.default)) for p in family(fam).params]
        return fam, (vals + [0.0] * 3)[:3] + [float(pscale)]

    (f1, v1), (f2, v2) = slots(1.0), slots(2.0)
    v0 = slots(float(peer["threshold"]))[1]
    code = 0
    args = list(sur.kernel_args())
    # the slots at threshold 1; the amplitude (sur.scale over the preset's own) kept
    args[1:4] = v1[:3]
    args[4] = v1[3] if sur.scale == v0[3] else v1[3] * (sur.scale / v0[3])
    for k, (a, b) in enumerate(zip(v1, v2)):
        if a == b:
            e = 0
        elif b == 2 * a:
            e = 1
        elif a == 2 * b:
            e = 2
        else:
            raise ValueError(f"surrogate_threshold='live': {sur.preset}'s slot {k} is not "
                             f"proportional to the threshold, its inverse or constant")
        code += e * 3 ** k
    if f1 != f2 or code == 0:
        raise ValueError(f"surrogate_threshold='live': {sur.preset} does not depend on its "
                         f"threshold in a form the kernels evaluate")
    return tuple(args), code


def preset(name: str) -> Preset:
    """The :class:`Preset` called ``name`` (e.g. ``"snntorch.atan"``)."""
    if name in PRESETS:
        return PRESETS[name]
    if name in DEVIATIONS:
        raise ValueError(f"surrogate {name!r} has no deterministic preset: {DEVIATIONS[name]}")
    raise ValueError(f"surrogate: unknown preset {name!r}; valid presets are "
                     f"{', '.join(sorted(PRESETS))}")
