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

__all__ = ["Surrogate", "Family", "FAMILIES", "get", "names"]


# --------------------------------------------------------------------------
# The formulas.  Names used inside (exp, fabs, atan, erf, sqrt, PI, lo, hi,
# step) are bound per target by ``_bind`` below; ``step(z)`` is 1.0 where
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


# --------------------------------------------------------------------------
# Binding the formulas to NumPy and to math (for njit).
# --------------------------------------------------------------------------

def _np_step(z):
    return (np.asarray(z) >= 0).astype(np.float64)


_NUMPY_NS = dict(exp=np.exp, fabs=np.abs, atan=np.arctan, erf=scipy.special.erf,
                 sqrt=np.sqrt, PI=np.pi, lo=np.minimum, hi=np.maximum, step=_np_step)


def _math_step(z):  # pragma: no cover - replaced by an njit twin in kernels
    return 1.0 if z >= 0 else 0.0


_MATH_NS = dict(exp=math.exp, fabs=math.fabs, atan=math.atan, erf=math.erf,
                sqrt=math.sqrt, PI=math.pi, lo=min, hi=max, step=_math_step)


def _bind(f, namespace):
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
    positive: bool = True  # must be > 0


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
                  _bind(g, _NUMPY_NS), _bind(G, _NUMPY_NS))


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
        """``scale * clip(g(x))``: the factor the adjoint uses, (A7)."""
        g = self.g(x, v)
        if self.clip is not None:
            g = np.clip(g, 0.0, self.clip).astype(g.dtype, copy=False)
        return (g * self.scale).astype(g.dtype, copy=False)

    def G(self, x):
        """Primitive ``G(x)`` with ``G' = g`` and ``G(-inf) = 0``."""
        if not self.has_primitive:
            raise ValueError(f"surrogate {self.name!r} has no primitive; forward='smooth' "
                             f"needs one of {', '.join(n for n in names() if family(n).G)}")
        x = np.asarray(x)
        out = self.family.G_np(x, np.zeros_like(x), *self._p3())
        return np.asarray(out, dtype=x.dtype if x.dtype.kind == "f" else np.float64)

    def kernel_args(self):
        """(code, p0, p1, p2, scale, clip_lo, clip_hi) as plain numbers for kernels."""
        p0, p1, p2 = self._p3()
        lo_, hi_ = (0.0, float(self.clip)) if self.clip is not None else (-math.inf, math.inf)
        return (self.family.code, float(p0), float(p1), float(p2), float(self.scale), lo_, hi_)

    def with_scale(self, scale: float) -> "Surrogate":
        return get(self.name, scale=scale, clip=self.clip, **dict(self.named_params()))

    def named_params(self):
        return tuple((p.name, v) for p, v in zip(self.family.params, self.params))

    def __str__(self):
        extra = [f"{n}={v:g}" for n, v in self.named_params()]
        if self.scale != 1.0:
            extra.append(f"scale={self.scale:g}")
        if self.clip is not None:
            extra.append(f"clip={self.clip:g}")
        return f"{self.name}({', '.join(extra)})"


def get(name: str | Surrogate = "atan", *, scale: float = 1.0, clip: float | None = None,
        **params) -> Surrogate:
    """Return the surrogate ``name`` with the given parameters.

    >>> get("sigmoid", k=10).params
    (10.0,)

    Unknown names and parameters, and out-of-range values, raise ``ValueError``
    naming what was expected.
    """
    if isinstance(name, Surrogate):
        if params or scale != 1.0 or clip is not None:
            raise ValueError("surrogate: pass either a Surrogate or a name with parameters")
        return name
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
        if not math.isfinite(val) or (p.positive and val <= 0):
            raise ValueError(f"surrogate {fam.name!r}: parameter {p.name} must be a finite "
                             f"number > 0, got {val}")
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
