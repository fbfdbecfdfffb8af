"""The presets of sinabs 3.1.3, Rockpool 3.1.0 and Spyx 1.0.0 (issue 18)
reproduce each framework's own surrogate function, called as the framework
calls it (x = v - theta), in float64 on a grid that crosses the threshold,
the windows and several multiples of the threshold."""

import numpy as np
import pytest

from lifgrad import LIFConfig
from lifgrad import surrogates as sgs
from lifgrad.verify.surrogate_calls import peer_backward   # each framework called its way

torch = pytest.importorskip("torch", reason="PyTorch and the peers are installed by `make test`")
pytestmark = pytest.mark.torch

THETAS = (1.0, 0.7)


def _grid(theta):
    v = np.concatenate([np.linspace(-3, 5, 801) * theta,
                        theta * np.array([0.5, 1.0, 1.5, 2.0, 2.5, 3.0]), [theta - 1.0, theta - 0.5]])
    return v


def _ours(name, v, theta, **params):
    return sgs.get(name, **params).phi(v - theta)


@pytest.mark.parametrize("theta", THETAS)
@pytest.mark.parametrize("name,params", [
    ("SingleExponential", {}), ("SingleExponential", dict(grad_width=0.3, grad_scale=2.0)),
    ("PeriodicExponential", {}), ("PeriodicExponential", dict(grad_width=0.2, grad_scale=0.5)),
    ("Heaviside", {}), ("Heaviside", dict(window=0.25)),
    ("Gaussian", {}), ("Gaussian", dict(mu=0.2, sigma=0.3, grad_scale=3.0)),
    ("MultiGaussian", {}), ("MultiGaussian", dict(sigma=0.4, h=0.3, s=4.0, grad_scale=2.0)),
])
def test_sinabs_presets(name, params, theta):
    pytest.importorskip("sinabs.activation.surrogate_gradient_fn")
    v = _grid(theta)
    # sinabs' spike function multiplies the gradient by <Name>(**params)(v, theta)
    want = peer_backward(f"sinabs.{name}", v, params, "float64", theta=theta).grad
    extra = {} if name in ("Gaussian", "MultiGaussian") else {"threshold": theta}
    got = _ours(f"sinabs.{name}", v, theta, **params, **extra)
    # sinabs' Heaviside is float32 (1/theta rounded): the preset takes the same value
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    assert not LIFConfig(surrogate=f"sinabs.{name}").strict       # sinabs fires at >=


def test_sinabs_multi_gaussian_with_a_mean_is_refused():
    with pytest.raises(ValueError, match="sinabs.MultiGaussian.*mu != 0"):
        sgs.get("sinabs.MultiGaussian", mu=0.1)


@pytest.mark.parametrize("theta", THETAS)
@pytest.mark.parametrize("window", (0.5, 0.2))
def test_rockpool_step_pwl(theta, window):
    pytest.importorskip("rockpool.nn.modules.torch.lif_torch")
    v = _grid(theta)
    # StepPWL.apply(v, theta, window, 2**16) through autograd, its float32 output cast undone
    peer = peer_backward("rockpool.StepPWL", v, dict(window=window, threshold=theta), "float64")
    assert peer.grad.dtype == np.float64
    got = _ours("rockpool.StepPWL", v, theta, window=window, threshold=theta)
    np.testing.assert_allclose(got, peer.grad, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("theta", THETAS)
@pytest.mark.parametrize("M", (2.0 ** 16, 2.0))
def test_rockpool_periodic_exponential(theta, M):
    pytest.importorskip("rockpool.nn.modules.torch.lif_torch")
    v = _grid(theta)
    # PeriodicExponential.apply(v, theta, 0.5, M) through autograd, float32 output cast undone
    peer = peer_backward("rockpool.PeriodicExponential", v,
                         dict(window=0.5, threshold=theta, max_spikes_per_dt=M), "float64")
    assert peer.grad.dtype == np.float64
    got = _ours("rockpool.PeriodicExponential", v, theta, threshold=theta, max_spikes_per_dt=M)
    np.testing.assert_allclose(got, peer.grad, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name,params", [
    ("superspike", {}), ("superspike", dict(k=10.0)), ("arctan", {}), ("arctan", dict(k=0.5)),
    ("tanh", {}), ("tanh", dict(k=3.0)), ("boxcar", {}), ("boxcar", dict(width=0.5, height=2.0)),
    ("triangular", {}), ("triangular", dict(k=0.7)),
])
def test_spyx_presets(name, params):
    jax = pytest.importorskip("jax")
    axn = pytest.importorskip("spyx.axn")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    x = np.concatenate([np.linspace(-3, 3, 601), [-1.0, -0.25, 0.0, 0.25, 1.0]])
    act = getattr(axn, name)(**params)
    # jax.vmap(jax.grad(act)) in float64
    peer = peer_backward(f"spyx.{name}", x, params, "float64")
    assert peer.grad.dtype == np.float64
    want = peer.grad
    got = sgs.get(f"spyx.{name}", **params).phi(x)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    # the forward: heaviside(x) = where(x > 0, 1, 0), strict
    assert float(act(jnp.float64(0.0))) == 0.0 and sgs.preset(f"spyx.{name}").strict
    assert LIFConfig(surrogate=f"spyx.{name}").strict


def test_new_families_match_the_compiled_dispatch():
    """Every new family through the CPU kernels' dispatch equals its NumPy formula."""
    from lifgrad.kernels import scan_kernels as S
    x = np.linspace(-3, 4, 141)
    for name, kw in (("one_sided", dict(w=0.3, c=1.5)),
                     ("periodic_exponential", dict(w=0.4, theta=0.7, M=3.0)),
                     ("periodic_exponential_steep", dict(w=0.4, theta=0.7)),
                     ("gaussian_shifted", dict(sigma=0.3, mu=0.2)),
                     ("multi_gaussian", dict(sigma=0.4, r=0.05, k=5.0))):
        s = sgs.get(name, **kw)
        args = s.kernel_args()
        out = np.empty_like(x)
        S._phi_block(args[0], args[1], args[2], args[3], args[4], args[5], args[6], x,
                     np.zeros_like(x), out, x.size)
        np.testing.assert_allclose(out, s.phi(x), rtol=1e-14, atol=0, err_msg=name)
        if s.has_primitive:
            G = np.empty_like(x)
            S._G_block(args[0], args[1], args[2], args[3], x, G, x.size)
            np.testing.assert_allclose(G, s.G(x), rtol=1e-14, atol=1e-300, err_msg=name)
            # G' = g
            h = 1e-6
            np.testing.assert_allclose((s.G(x + h) - s.G(x - h)) / (2 * h), s.g(x),
                                       rtol=1e-6, atol=1e-8, err_msg=name)


def test_every_shipped_surrogate_is_a_preset_or_a_documented_deviation():
    sg = pytest.importorskip("sinabs.activation.surrogate_gradient_fn")
    axn = pytest.importorskip("spyx.axn")
    lt = pytest.importorskip("rockpool.nn.modules.torch.lif_torch")
    import dataclasses
    import inspect
    shipped = [f"sinabs.{n}" for n, obj in vars(sg).items()
               if inspect.isclass(obj) and dataclasses.is_dataclass(obj)]
    shipped += [f"spyx.{n}" for n in ("custom", "superspike", "arctan", "tanh", "boxcar",
                                      "triangular") if hasattr(axn, n)]
    shipped += [f"rockpool.{n}" for n in ("StepPWL", "PeriodicExponential") if hasattr(lt, n)]
    assert len(shipped) == 5 + 6 + 2
    for n in shipped:
        assert n in sgs.PRESETS or n in sgs.DEVIATIONS, n
