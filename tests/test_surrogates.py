"""The surrogate table: derivative vs primitive, kernel dispatch vs NumPy, API errors."""
import math

import numpy as np
import pytest
import scipy.integrate

from lifgrad import surrogates as sgs
from lifgrad.kernels.aot import pick


class cpu:
    """One-point probes of the compiled surrogate dispatch (``_phi_block``,
    ``_G_block``), the test-only helpers that lived in kernels/cpu.py."""

    @staticmethod
    def _sg(sg):
        return (int(sg[0]),) + tuple(float(x) for x in sg[1:7])

    @staticmethod
    def _phi(x, v, sg):
        """``scale * clip(g(x))`` of family ``sg[0]`` at one point (NaN for an unknown code)."""
        xs, vs, out = np.array([x], np.float64), np.array([v], np.float64), np.empty(1)
        sg = cpu._sg(sg)
        pick("_phi_block", "f8_f8", (xs, vs, out))(*sg, xs, vs, out, 1)
        return float(out[0])

    @staticmethod
    def _g(x, v, sg):
        """Raw derivative at one point (no amplitude, no clip)."""
        return cpu._phi(x, v, (sg[0], sg[1], sg[2], sg[3], 1.0, -np.inf, np.inf))

    @staticmethod
    def _G(x, sg):
        """Primitive at one point; NaN where there is none."""
        xs, out = np.array([x], np.float64), np.empty(1)
        pick("_G_block", "f8", (xs, out))(*cpu._sg(sg)[:4], xs, out, 1)
        return float(out[0])

WITH_PRIMITIVE = [f.name for f in sgs.FAMILIES if f.G is not None]
ALL = sgs.names()


def _grid():
    # avoid the kinks of rect (|x| = w) and triangle (0, +-w) by an irrational offset
    return np.linspace(-3, 3, 601) + math.pi * 1e-4


@pytest.mark.parametrize("name", WITH_PRIMITIVE)
def test_surrogate_derivative_is_derivative_of_primitive(name):
    s = sgs.get(name)
    x = _grid()
    h = 1e-6
    fd = (s.G(x + h) - s.G(x - h)) / (2 * h)
    np.testing.assert_allclose(s.g(x), fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", WITH_PRIMITIVE)
def test_primitive_vanishes_at_minus_infinity_and_mass_matches_quadrature(name):
    s = sgs.get(name)
    assert abs(float(s.G(np.array(-1e9)))) < 1e-8
    total, _ = scipy.integrate.quad(lambda z: float(s.g(np.array(z))), -np.inf, np.inf,
                                    points=None, limit=200)
    assert float(s.G(np.array(1e9))) == pytest.approx(total, rel=1e-6)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("spike", [0.0, 1.0])
def test_kernel_dispatch_matches_numpy_formula(name, spike):
    s = sgs.get(name, scale=1.5) if name != "zero" else sgs.get(name)
    sg = s.kernel_args()
    x = _grid()
    v = np.full_like(x, spike)
    ker = np.array([cpu._phi(xi, spike, sg) for xi in x])
    ref = s.phi(x, v)
    # math vs NumPy transcendental functions differ by an ulp; 1 - tanh^2 cancels
    np.testing.assert_allclose(ker, ref, rtol=1e-14, atol=1e-15 * max(1.0, np.max(np.abs(ref))))
    if s.has_primitive:
        kerG = np.array([cpu._G(xi, sg) for xi in x])
        np.testing.assert_allclose(kerG, s.G(x), rtol=1e-14, atol=1e-15)
    else:
        assert math.isnan(cpu._G(0.1, sg))


def test_every_family_code_is_dispatched():
    # an unknown code yields NaN; every table code yields a number
    for f in sgs.FAMILIES:
        assert not math.isnan(cpu._g(0.1, 1.0, sgs.get(f.name).kernel_args()))
    assert math.isnan(cpu._g(0.1, 1.0, (len(sgs.FAMILIES), 1.0, 1.0, 1.0, 1.0, 0.0, 1.0)))


def test_sigmoid_is_stable_far_from_threshold():
    s = sgs.get("sigmoid", k=50)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        g = s.g(np.array([-1e3, 1e3]))
        G = s.G(np.array([-1e3, 1e3]))
    assert np.all(g == 0) and G[0] == 0 and G[1] == 1


def test_known_values():
    assert float(sgs.get("atan", a=2).g(np.array(0.0))) == pytest.approx(1.0)
    assert float(sgs.get("atan_pi", a=2).g(np.array(0.0))) == pytest.approx(2 / math.pi)
    assert float(sgs.get("sigmoid", k=4).g(np.array(0.0))) == pytest.approx(1.0)
    assert float(sgs.get("fast_sigmoid", k=25).g(np.array(0.0))) == 1.0
    assert float(sgs.get("fast_sigmoid_norm", k=10).g(np.array(0.0))) == 5.0
    assert float(sgs.get("rect", w=0.5).g(np.array(0.5))) == 1.0   # closed window
    assert float(sgs.get("rect", w=0.5).g(np.array(0.51))) == 0.0
    assert float(sgs.get("triangle", w=2).g(np.array(1.0))) == pytest.approx(0.25)
    assert float(sgs.get("laplace", l=0.5).g(np.array(0.0))) == 1.0
    assert float(sgs.get("gaussian", sigma=1).g(np.array(0.0))) == pytest.approx(1 / math.sqrt(2 * math.pi))
    np.testing.assert_array_equal(sgs.get("spike_operator").g(np.zeros(3), np.array([0., 1., 1.])), [0, 1, 1])
    np.testing.assert_array_equal(sgs.get("straight_through").g(np.array([-5., 5.])), [1, 1])


def test_scale_and_clip():
    s = sgs.get("fast_sigmoid_norm", k=10, scale=0.5, clip=2.0)
    x = np.array([0.0, 1.0])
    np.testing.assert_allclose(s.phi(x), 0.5 * np.minimum(s.g(x), 2.0))


def test_aliases_and_names():
    assert sgs.get("superspike").name == "fast_sigmoid"
    assert sgs.get("exponential").name == "laplace"
    assert set(ALL) >= {"sigmoid", "fast_sigmoid", "fast_sigmoid_norm", "atan", "atan_pi", "rect",
                        "triangle", "laplace", "gaussian", "straight_through", "spike_operator"}


def test_surrogate_is_hashable_and_immutable():
    a, b = sgs.get("sigmoid", k=3), sgs.get("sigmoid", k=3.0)
    assert a == b and hash(a) == hash(b)
    with pytest.raises(Exception):
        a.scale = 2.0


@pytest.mark.parametrize("kwargs, match", [
    (dict(name="nope"), "unknown name 'nope'; valid names are .*sigmoid"),
    (dict(name="rect", w=-0.1), "parameter w must be a finite number > 0"),
    (dict(name="rect", w=0.0), "parameter w must be a finite number > 0"),
    (dict(name="gaussian", sigma=float("nan")), "sigma must be a finite number > 0"),
    (dict(name="sigmoid", slope=3), r"unknown parameter\(s\) \['slope'\]; valid: \['k'\]"),
    (dict(name="sigmoid", scale=-1), "scale must be a finite number >= 0"),
    (dict(name="sigmoid", clip=float("inf")), "clip must be a finite number >= 0"),
])
def test_bad_surrogate_raises_with_argument_name(kwargs, match):
    name = kwargs.pop("name")
    with pytest.raises(ValueError, match=match):
        sgs.get(name, **kwargs)


def test_non_numeric_parameter_is_type_error():
    with pytest.raises(TypeError, match="parameter k must be a real number"):
        sgs.get("sigmoid", k="4")


def test_primitive_missing_raises():
    with pytest.raises(ValueError, match="has no primitive"):
        sgs.get("straight_through").G(np.zeros(2))


@pytest.mark.parametrize("name", WITH_PRIMITIVE)
def test_window_mass_matches_quadrature(name):
    s = sgs.get(name)
    for d in (0.05, 0.3, 1.0, 2.5):
        q, _ = scipy.integrate.quad(lambda z: float(s.g(np.array(z))), -d, d, limit=200,
                                    points=[0.0] + [p for p in (-1.0, 1.0, -0.5, 0.5) if abs(p) < d])
        assert float(s.mass(d)) == pytest.approx(q, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("k", [0.5, 4.0, 25.0])
def test_sigmoid_window_mass_is_tanh(k):
    d = np.linspace(0, 3, 31)
    np.testing.assert_allclose(sgs.get("sigmoid", k=k).mass(d), np.tanh(k * d / 2), rtol=1e-12, atol=1e-15)


def test_mass_needs_a_primitive_and_a_valid_width():
    with pytest.raises(ValueError, match="has no primitive"):
        sgs.get("straight_through").mass(1.0)
    with pytest.raises(ValueError, match="d: expected finite half-widths >= 0"):
        sgs.get("sigmoid").mass(-1.0)
