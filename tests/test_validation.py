"""Bad input raises a clear exception naming the argument and what was expected."""
import numpy as np
import pytest

from lifgrad import LIFConfig, LIFParams, alpha_from_tau, lif_backward, lif_forward, tau_from_alpha
from lifgrad.network import Dense, Sequential

I = np.full((4, 2, 3), 0.5)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(reset="soft"), ValueError, r"reset: expected one of 'subtract', 'zero', 'none', got 'soft'"),
    (dict(forward="fuzzy"), ValueError, r"forward: expected one of 'hard', 'smooth'"),
    (dict(backend="gpu"), ValueError, r"backend: expected one of 'cpu', 'reference'"),
    (dict(detach_reset="yes"), TypeError, r"detach_reset: expected True or False"),
    (dict(strict=1), TypeError, r"strict: expected True or False"),
    (dict(surrogate="bogus"), ValueError, r"surrogate: unknown name 'bogus'; valid names are"),
    (dict(dtype="float16"), ValueError, r"dtype: expected None, 'float32' or 'float64'"),
    (dict(forward="smooth", surrogate="straight_through"), ValueError, r"needs a surrogate with a primitive"),
])
def test_bad_config_raises_with_argument_name(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        LIFConfig(**kwargs)


@pytest.mark.parametrize("params, match", [
    (LIFParams(alpha=1.3), r"alpha: expected values in \[0.0, 1.0\], got 1.3"),
    (LIFParams(alpha=-0.1), r"alpha: expected values in \[0.0, 1.0\]"),
    (LIFParams(alpha=np.ones(4) * 0.5), r"alpha: expected a scalar or shape \(3,\), got shape \(4,\)"),
    (LIFParams(theta=np.nan), r"theta: contains NaN or Inf"),
    (LIFParams(gamma=np.inf), r"gamma: contains NaN or Inf"),
    (LIFParams(u_reset=np.zeros((2, 3))), r"u_reset: expected a scalar or shape \(3,\)"),
    ({"alpha": 0.5, "beta": 0.9}, r"params: unknown key\(s\) \['beta'\]"),
])
def test_bad_params_raise_with_argument_name(params, match):
    with pytest.raises(ValueError, match=match):
        lif_forward(I, params)


@pytest.mark.parametrize("bad, match", [
    (np.ones((2, 3, 4, 5)), r"I: expected shape \(T, B, N\)"),
    (np.ones(5), r"I: expected shape \(T, B, N\)"),
    (np.ones((0, 2, 3)), r"I: every dimension must be non-empty"),
])
def test_bad_shape_raises_with_argument_name(bad, match):
    with pytest.raises(ValueError, match=match):
        lif_forward(bad)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_input_is_reported(value):
    bad = I.copy()
    bad[2, 1, 0] = value
    with pytest.raises(ValueError, match=r"I: contains NaN or Inf \(first at index \(2, 1, 0\)\)"):
        lif_forward(bad)


def test_static_input_needs_T():
    with pytest.raises(ValueError, match=r"T: a static input I of shape \(2, 3\) needs an integer T >= 1"):
        lif_forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"T: given 5 but I has 4 time steps"):
        lif_forward(I, T=5)


def test_bad_dtypes():
    with pytest.raises(TypeError, match="I: expected a float32 or float64 array"):
        lif_forward(I.astype(np.float16))
    with pytest.raises(TypeError, match="I: expected a float32 or float64 array"):
        lif_forward(I.astype(np.complex128))
    with pytest.raises(TypeError, match="config: expected a lifgrad.LIFConfig"):
        lif_forward(I, LIFParams(), {"reset": "zero"})
    with pytest.raises(TypeError, match="params: expected a lifgrad.LIFParams or a dict"):
        lif_forward(I, [0.9, 1.0])


def test_bad_u0():
    with pytest.raises(ValueError, match=r"u0: expected a scalar or shape \(3,\) or \(2, 3\), got \(2,\)"):
        lif_forward(I, u0=np.zeros(2))
    with pytest.raises(ValueError, match="u0: contains NaN or Inf"):
        lif_forward(I, u0=np.nan)


def test_bad_backward_arguments():
    v, tr = lif_forward(I)
    with pytest.raises(ValueError, match=r"dv: expected shape \(4, 2, 3\) \(T, B, N\) like the trace, got \(4, 2\)"):
        lif_backward(tr, dv=np.ones((4, 2)))
    bad = np.ones_like(I)
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="du: contains NaN or Inf"):
        lif_backward(tr, du=bad)
    with pytest.raises(TypeError, match="trace: expected the Trace returned by lif_forward"):
        lif_backward((tr.u, tr.v), dv=np.ones_like(I))


def test_time_constant_helpers():
    a = alpha_from_tau(np.array([5.0, 20.0]), dt=1.0)
    np.testing.assert_allclose(tau_from_alpha(a), [5.0, 20.0])
    with pytest.raises(ValueError, match="tau: expected finite values > 0"):
        alpha_from_tau(0.0)
    with pytest.raises(ValueError, match=r"alpha: expected values in \(0, 1\)"):
        tau_from_alpha(1.0)
    with pytest.raises(ValueError, match="dt: expected a finite number > 0"):
        alpha_from_tau(5.0, dt=-1)


def test_bad_network_construction_and_input():
    with pytest.raises(ValueError, match="n_out: expected a positive integer"):
        Dense(3, 0)
    with pytest.raises(ValueError, match=r"learn: unknown parameter\(s\) \['beta'\]"):
        Dense(3, 2, learn=("beta",))
    with pytest.raises(ValueError, match="learn: 'gamma' is tied to theta"):
        Dense(3, 2, learn=("gamma",))
    with pytest.raises(ValueError, match="layer 1 expects 4 inputs but layer 0 has 2 neurons"):
        Sequential([Dense(3, 2), Dense(4, 1)])
    net = Sequential([Dense(3, 2)])
    with pytest.raises(ValueError, match=r"x: expected last dimension 3"):
        net.forward(np.ones((5, 2, 4)))
    x = np.ones((5, 2, 3))
    x[1, 1, 1] = np.inf
    with pytest.raises(ValueError, match="x: contains NaN or Inf"):
        net.forward(x)
    with pytest.raises(ValueError, match=r"params\['layer0.W'\]: expected shape \(2, 3\)"):
        net.forward(np.ones((5, 2, 3)), params={**net.params, "layer0.W": np.ones((3, 3))})


@pytest.mark.parametrize("ck", [None, 2])
def test_full_and_checkpointed_forward_refuse_the_same_inputs(ck):
    """One validation (lifgrad.validation.check_sequence) for every forward path:
    the checkpointed one once skipped T's type and match and empty axes."""
    net = Sequential([Dense(3, 2)])
    cases = [((np.ones((4, 2, 3)), 5), r"T: given 5 but x has 4 time steps"),
             ((np.ones((2, 3)), 2.5), r"T: a static input x of shape \(2, 3\) needs an integer"),
             ((np.ones((2, 3)), None), r"T: a static input x"),
             ((np.ones((4, 0, 3)), None), r"x: every dimension must be non-empty"),
             ((np.ones((4, 2)), None), r"T: a static input x"),
             ((np.ones((4, 2, 2, 3)), None), r"x: expected shape \(T, B, 3\)"),
             ((np.ones((4, 2, 4)), None), r"x: expected last dimension 3"),
             ((np.full((4, 2, 3), np.nan), None), r"x: contains NaN or Inf"),
             ((np.ones((4, 2, 3), complex), None), r"x: expected real numbers")]
    for (x, T), msg in cases:
        with pytest.raises((ValueError, TypeError), match=msg):
            net.forward(x, T=T, checkpoint_every=ck)


def test_an_integer_gradient_of_zeros_is_refused():
    """A dL/dv made in the spikes' uint8 dtype truncates fractions to 0 (the bug
    examples/mismatch_bias.py had); an integer array of zeros is refused with
    a hint, in both backwards.  Integer 0/1 seeds (np.ones_like(v), the README's
    tour) stay accepted."""
    from lifgrad import LIFConfig, LIFParams, lif_backward, lif_forward
    rng = np.random.default_rng(0)
    v, tr = lif_forward(rng.normal(0.5, 1.0, (6, 2, 3)), LIFParams(0.9, 1.0), LIFConfig())
    w = rng.normal(size=3) / 10
    bad = np.broadcast_to(w, v.shape).astype(v.dtype)          # all zeros
    with pytest.raises(ValueError, match=r"dv: an integer \(uint8\) array of zeros"):
        lif_backward(tr, LIFParams(0.9, 1.0), LIFConfig(), dv=bad)
    lif_backward(tr, LIFParams(0.9, 1.0), LIFConfig(), dv=np.ones_like(v))
    net = Sequential([Dense(3, 2)])
    out, ntr = net.forward(np.ones((4, 2, 3)))
    with pytest.raises(ValueError, match=r"du: an integer"):
        net.backward(ntr, du=np.zeros(out.shape, np.int64))
    net.backward(ntr, dv=np.ones_like(out))
