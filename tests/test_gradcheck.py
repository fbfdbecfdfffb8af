"""lifgrad.gradcheck (issue 19): passes correct vector-Jacobian products and
fails planted bugs -- a sign error, a missing term, an off-by-one in time --
in float32 and float64 with the documented tolerances, in the fast
(random-direction) and full (every element) modes; reports the argument,
index, both values and both errors; detects spike flips."""
import numpy as np
import pytest

from lifgrad import LIFConfig, LIFParams
from lifgrad.check import layer_functions
from lifgrad.gradcheck import DEFAULTS, GradcheckError, gradcheck


# -- a small smooth function of two arguments -----------------------------------

def _f(x, y):
    return np.sin(x) * y, x ** 2


def _vjp(bug=None):
    def vjp(x, y):
        def pullback(ct):
            a, b = ct
            gx = a * np.cos(x) * y + (0 if bug == "missing" else 2 * x * b)
            gy = a * np.sin(x)
            if bug == "sign":
                gy = -gy
            return gx, gy
        return _f(x, y), pullback
    return vjp


def _point(dtype):
    rng = np.random.default_rng(0)
    return [rng.normal(size=(3, 4)).astype(dtype), rng.normal(size=(3, 4)).astype(dtype)]


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "full"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_correct_vjp_passes(dtype, fast):
    res = gradcheck(_f, _point(dtype), _vjp(), fast_mode=fast)
    assert res.passed and bool(res)
    assert res.atol == DEFAULTS[dtype]["atol"] and res.rtol == DEFAULTS[dtype]["rtol"]
    assert len(res.rows) == (4 if fast else 24)
    assert res.mode == ("fast" if fast else "full")


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "full"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("bug,arg", [("sign", "args[1]"), ("missing", "args[0]")])
def test_planted_bugs_fail(bug, arg, dtype, fast):
    with pytest.raises(GradcheckError) as e:
        gradcheck(_f, _point(dtype), _vjp(bug), fast_mode=fast)
    msg = str(e.value)
    assert f"FAIL {arg} at" in msg and "analytic" in msg and "numeric" in msg
    assert "abs error" in msg and "rel error" in msg
    # the other argument is fine and is not reported as failing
    other = "args[0]" if arg == "args[1]" else "args[1]"
    assert f"FAIL {other}" not in msg
    res = gradcheck(_f, _point(dtype), _vjp(bug), fast_mode=fast, raise_exception=False)
    assert not res.passed and {r.name for r in res.failures()} == {arg}
    if not fast:
        assert res.failures()[0].where.startswith("(")       # an element's index


# -- a recursion in time: the off-by-one ----------------------------------------

def _leaky(x, a):
    """y_t = a y_{t-1} + x_t over axis 0."""
    y = np.zeros_like(x)
    prev = np.zeros_like(x[0])
    for t in range(len(x)):
        prev = a * prev + x[t]
        y[t] = prev
    return y


def _leaky_vjp(off_by_one=False):
    def vjp(x, a):
        y = _leaky(x, a)

        def pullback(ct):
            gx = np.zeros_like(x)
            carry = np.zeros_like(x[0])
            for t in range(len(x) - 1, -1, -1):
                carry = ct[t] + a * carry
                gx[t] = carry
            prev = np.concatenate([np.zeros_like(y[:1]), y[:-1]])
            if off_by_one:
                prev = y                          # y_t instead of y_{t-1}
            ga = np.sum(gx * prev, axis=0)
            return gx, ga
        return y, pullback
    return vjp


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_off_by_one_in_time_fails(dtype):
    rng = np.random.default_rng(1)
    args = [rng.normal(size=(15, 4)).astype(dtype), rng.uniform(0.5, 0.9, 4).astype(dtype)]
    assert gradcheck(_leaky, args, _leaky_vjp(), names=["x", "a"])
    with pytest.raises(GradcheckError, match="FAIL a at"):
        gradcheck(_leaky, args, _leaky_vjp(True), names=["x", "a"])


# -- lifgrad's layer in each mode -----------------------------------------------

def _layer(mode, bug=None, cfg=None):
    rng = np.random.default_rng(2)
    I = rng.normal(0.45, 0.6, (14, 2, 4))
    p = LIFParams(alpha=rng.uniform(0.6, 0.9, 4), theta=rng.uniform(0.8, 1.2, 4),
                  alpha_s=rng.uniform(0.4, 0.8, 4), u_bias=rng.uniform(-0.1, 0.2, 4))
    cfg = cfg or LIFConfig(surrogate="sigmoid", synaptic=True)
    f, vjp, args, names = layer_functions(cfg, p, I, mode)
    if bug is not None:
        good = vjp

        def vjp(*a):
            out, pb = good(*a)

            def pullback(ct):
                g = list(pb(ct))
                if bug == "shift":
                    g[0] = np.concatenate([g[0][1:], g[0][:1]])      # dL/dI one step off
                elif bug == "sign":
                    g[names.index("alpha_s")] = -g[names.index("alpha_s")]
                return tuple(g)
            return out, pullback
    return f, vjp, args, names


@pytest.mark.parametrize("mode", ["smooth", "frozen", "hard"])
def test_lif_layer_passes_and_bugs_fail(mode):
    f, vjp, args, names = _layer(mode)
    spikes = (lambda o: o[0]) if mode == "hard" else None
    cfg = LIFConfig(surrogate="zero", synaptic=True) if mode == "hard" else None
    if cfg is not None:
        f, vjp, args, names = _layer(mode, cfg=cfg)
    assert gradcheck(f, args, vjp, names=names, spikes=spikes)
    for bug, arg in (("shift", "I"), ("sign", "alpha_s")):
        f, vjp, args, names = _layer(mode, bug, cfg=cfg)
        res = gradcheck(f, args, vjp, names=names, spikes=spikes, raise_exception=False)
        assert not res.passed and arg in {r.name for r in res.failures()}, (bug, res.report())


def test_the_hard_forward_is_not_the_surrogate_gradient():
    """Between flips the hard forward's finite differences are the zero
    surrogate's gradient: the sigmoid surrogate's adjoint fails against them."""
    f, vjp, args, names = _layer("hard")
    res = gradcheck(f, args, vjp, names=names, spikes=lambda o: o[0], raise_exception=False)
    assert not res.passed


def test_spike_flips_are_reported_and_skipped():
    """A step large enough to flip spikes is dropped and reported; with
    only such steps the check cannot conclude and says so."""
    f, vjp, args, names = _layer("hard", cfg=LIFConfig(surrogate="zero", synaptic=True))
    res = gradcheck(f, args, vjp, names=names, spikes=lambda o: o[0], eps="ladder",
                    raise_exception=False)
    assert res.passed and res.flips                  # the 1e-2 step flips; smaller ones not
    assert all(name in names for name, _, _ in res.flips)
    res = gradcheck(f, args, vjp, names=names, spikes=lambda o: o[0], eps=0.5, tries=2,
                    wrt=[0], raise_exception=False)
    assert not res.passed and res.unchecked
    assert "flipped a spike" in res.report()


# -- arguments ----------------------------------------------------------------

def test_bad_arguments():
    x = _point("float64")
    with pytest.raises(ValueError, match="NaN"):
        gradcheck(_f, [np.array([np.nan]), x[1][:1, :1].ravel()], _vjp())
    with pytest.raises(ValueError, match="eps"):
        gradcheck(_f, x, _vjp(), eps=-1.0)
    with pytest.raises(ValueError, match="n_directions"):
        gradcheck(_f, x, _vjp(), n_directions=0)
    with pytest.raises(ValueError, match="wrt"):
        gradcheck(_f, x, _vjp(), wrt=[5])
    with pytest.raises(ValueError, match="max_elements"):
        gradcheck(_f, x, _vjp(), fast_mode=False, max_elements=5)
    with pytest.raises(ValueError, match="cotangents"):
        gradcheck(_f, x, _vjp(), cotangents=(np.ones(3),))

    def short(x, y):
        return _f(x, y), lambda ct: (ct[0],)
    with pytest.raises(ValueError, match="pullback returned 1 gradients for 2"):
        gradcheck(_f, x, short)
    with pytest.raises(TypeError, match="not a float array"):
        gradcheck(lambda x, n: x * n, [x[0], 3], lambda x, n: (x * n, lambda c: (c * n, None)),
                  wrt=[1])


def test_missing_gradient_is_not_a_pass():
    def vjp(x, y):
        return _f(x, y), lambda ct: (_vjp()(x, y)[1](ct)[0], None)
    res = gradcheck(_f, _point("float64"), vjp, raise_exception=False)
    assert not res.passed and res.unchecked[0][0] == "args[1]"
