"""Each framework's own surrogate derivative, called the framework's way.

One place for the code that calls a peer's surrogate function as the
framework itself calls it (``tests/test_presets_peers.py``,
``tests/test_presets_new_peers.py`` and the float32 sweep of
:mod:`lifgrad.verify.robustness` all use it)::

    out = peer_backward("snntorch.sigmoid", x, {"slope": 25.0}, "float32")
    out.grad      # d spike / d input, NumPy, in the dtype the framework returned
    out.spikes    # the framework's forward (None where the call has none)

How each framework is called:

* snnTorch, SpikingJelly, Norse: torch autograd through the framework's spike
  function (``snntorch.surrogate.<fn>(**params)``, the SpikingJelly surrogate
  module, ``norse.torch.functional.threshold.threshold(x, fn, alpha)``) on a
  tensor of ``x = u - theta``, gradient of ``out.sum()``;
* sinabs: the surrogate-gradient object ``<Name>(**params)(v, theta)``, which
  is what sinabs' spike function multiplies the incoming gradient by (its
  ``threshold`` preset parameter is the call's ``theta``);
* Rockpool: ``StepPWL``/``PeriodicExponential.apply(v, theta, window,
  max_spikes_per_dt)`` through autograd; in float64 with the float32 cast of
  its output undone (the adapters run it so; the stock function returns
  float32), in float32 the stock function;
* Spyx: ``jax.vmap(jax.grad(spyx.axn.<fn>(**params)))`` with 64-bit types on
  for float64 and off for float32 (a context: the global setting is left as
  it is); ``sigmoid_bernoulli`` / ``refractory_sigmoid_bernoulli`` from
  ``spyx.experimental.stochastic`` with ``threshold=0`` (their input is then
  ``x``) and a fixed key: the gradient is their backward's factor p, the
  spikes Bernoulli draws.

sinabs and Rockpool take the membrane ``v`` and the threshold, the others
``x = u - theta``: :func:`takes_membrane` says which, :func:`peer_input`
builds the framework's input from ``x``.  spikeDE is not wrapped (it is not
installed here: its presets are checked against formulas copied from its
code).  Frameworks are imported on first use.
"""
from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from .. import surrogates as _sg

__all__ = ["PeerOutput", "FRAMEWORK_MODULES", "peer_backward", "takes_membrane", "peer_input",
           "available", "callable_presets"]

# the module whose import says the framework is installed
FRAMEWORK_MODULES = {"snntorch": "snntorch", "spikingjelly": "spikingjelly",
                     "norse": "norse", "sinabs": "sinabs", "rockpool": "rockpool",
                     "spyx": "spyx"}
_MEMBRANE = ("sinabs", "rockpool")


# the parameters swept per preset (one at a time, the others at their
# defaults); a preset not listed sweeps its first parameter
SWEPT = {
    "snntorch.spike_rate_escape": ("beta", "slope"),
    "snntorch.SFS": ("slope",),
    "spikingjelly.PiecewiseLeakyReLU": ("w",),
    "spikingjelly.SquarewaveFourierSeries": ("T_period",),
    "spikingjelly.LeakyKReLU": ("k",),
    "sinabs.SingleExponential": ("grad_width", "threshold"),
    "sinabs.PeriodicExponential": ("grad_width", "threshold"),
    "sinabs.Heaviside": ("window", "threshold"),
    "sinabs.Gaussian": ("sigma",),
    "sinabs.MultiGaussian": ("sigma",),
    "rockpool.StepPWL": ("window", "threshold"),
    "rockpool.PeriodicExponential": ("window", "threshold"),
    "spyx.boxcar": ("width",),
}


class PeerOutput(NamedTuple):
    grad: np.ndarray              # d out / d input, in the dtype the framework returned
    spikes: np.ndarray | None     # the framework's forward at the input (None: no forward)


def takes_membrane(name: str) -> bool:
    """Whether preset ``name``'s framework function takes the membrane ``v``
    (and the threshold) rather than ``x = u - theta``."""
    return name.split(".")[0] in _MEMBRANE


def _threshold(name, params, theta):
    if theta is not None:
        return float(theta)
    d = dict(_sg.preset(name).defaults)
    d.update(params or {})
    return float(d.get("threshold", 1.0))


def peer_input(name, x, params=None, theta=None, dtype="float64"):
    """The framework's input for ``x = u - theta`` as a ``dtype`` array: ``x``
    itself, or the membrane ``x + theta`` (rounded once to ``dtype``) for
    sinabs and Rockpool; and the threshold used."""
    x = np.asarray(x, dtype=np.float64)
    if takes_membrane(name):
        th = _threshold(name, params, theta)
        return (x + th).astype(dtype), th
    return x.astype(dtype), theta


def available(framework: str):
    """None if ``framework`` can be imported, else the reason it cannot."""
    import importlib
    mod = FRAMEWORK_MODULES.get(framework)
    if mod is None:
        import importlib.util
        if importlib.util.find_spec(framework) is None:
            return f"{framework} not installed"
        return (f"{framework}: installed, but no call path is wired in "
                f"lifgrad.verify.surrogate_calls")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            importlib.import_module(mod)
    except Exception as e:          # ImportError, or a framework broken at import
        return f"{framework} not installed ({type(e).__name__}: {e})"
    return None


def callable_presets():
    """The presets this module can call (every preset of a wrapped framework)."""
    return [n for n in _sg.PRESETS if n.split(".")[0] in FRAMEWORK_MODULES]


def _torch_dtype(torch, dtype):
    return {np.dtype(np.float32): torch.float32,
            np.dtype(np.float64): torch.float64}[np.dtype(dtype)]


def rockpool_float64(fn):
    """Rockpool's spike function ``fn`` with its float32 cast of the output
    undone: the same forward and backward, the spikes in the input's dtype
    (also the Rockpool adapter's spike functions)."""
    class F64(fn):
        @staticmethod
        def forward(ctx, x, *args):
            return fn.forward(ctx, x, *args).to(x.dtype)
    F64.__name__ = F64.__qualname__ = f"{fn.__name__}64"
    return F64


def _autograd(torch, f, inp, dtype):
    xt = torch.tensor(np.asarray(inp), dtype=_torch_dtype(torch, dtype), requires_grad=True)
    out = f(xt)
    out.sum().backward()
    return PeerOutput(xt.grad.detach().numpy(), out.detach().numpy())


def peer_backward(name: str, inp, params=None, dtype="float64", theta=None) -> PeerOutput:
    """Framework ``name.split('.')[0]``'s own derivative of its spike function
    for preset ``name`` at ``inp`` (``x = u - theta``, or the membrane ``v``
    where :func:`takes_membrane`), in ``dtype``, with the framework's
    parameter names ``params`` (its defaults where absent).  ``theta``: the
    threshold sinabs' and Rockpool's functions take (default the preset's
    ``threshold``, else 1)."""
    params = dict(params or {})
    fw, fn = name.split(".")
    dtype = np.dtype(dtype)
    inp = np.asarray(inp, dtype=dtype)
    if fw == "spyx":
        return _spyx(fn, inp, params, dtype)
    import torch
    if fw == "snntorch":
        from snntorch import surrogate as ss
        return _autograd(torch, getattr(ss, fn)(**params), inp, dtype)
    if fw == "spikingjelly":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from spikingjelly.activation_based import surrogate as sjs
        return _autograd(torch, getattr(sjs, fn)(**params), inp, dtype)
    if fw == "norse":
        from norse.torch.functional.threshold import threshold
        alpha = params.get("alpha", dict(_sg.preset(name).defaults)["alpha"])
        return _autograd(torch, lambda x: threshold(x, fn, alpha), inp, dtype)
    td = _torch_dtype(torch, dtype)
    th = _threshold(name, params, theta)
    if fw == "sinabs":
        from sinabs.activation import surrogate_gradient_fn as sg
        ctor = {k: v for k, v in params.items() if k != "threshold"}
        g = getattr(sg, fn)(**ctor)(torch.tensor(inp, dtype=td), torch.tensor(th, dtype=td))
        return PeerOutput(g.detach().numpy(), None)
    if fw == "rockpool":
        from rockpool.nn.modules.torch import lif_torch as lt
        d = dict(_sg.preset(name).defaults)
        d.update(params)
        f = getattr(lt, fn)
        if dtype == np.float64:
            f = rockpool_float64(f)
        args = [torch.tensor(v, dtype=td) for v in (th, d["window"])]
        args.append(torch.tensor(d.get("max_spikes_per_dt", 2.0 ** 16), dtype=td))
        return _autograd(torch, lambda x: f.apply(x, *args), inp, dtype)
    raise KeyError(f"no call path for {name!r}")


def _spyx(fn, inp, params, dtype):
    import jax
    import jax.numpy as jnp
    from spyx import axn
    with jax.enable_x64(dtype == np.float64):
        z = jnp.asarray(inp, dtype=jnp.float64 if dtype == np.float64 else jnp.float32)
        if fn in _BERNOULLI:            # activation(x, key) of spyx.experimental.stochastic
            from spyx.experimental import stochastic
            d = dict(_sg.preset(f"spyx.{fn}").defaults)
            d.update(params)
            if fn == "refractory_sigmoid_bernoulli":
                # the threshold is also the cosine's frequency: keep it, and shift
                # the input instead (U = (x + theta) - theta)
                act = getattr(stochastic, fn)(k=d["k"], threshold=d["threshold"])
                z = z + d["threshold"]
            else:
                act = getattr(stochastic, fn)(k=d["k"], threshold=0.0, max_prob=d["max_prob"])
            key = jax.random.PRNGKey(0)
            grad = np.asarray(jax.vmap(jax.grad(lambda s: act(s, key)))(z))
            spikes = np.asarray(act(z, key))
            return PeerOutput(grad, spikes)
        act = getattr(axn, fn)(**params)
        grad = np.asarray(jax.vmap(jax.grad(lambda s: act(s)))(z))
        spikes = np.asarray(jax.vmap(act)(z))
    return PeerOutput(grad, spikes)


_BERNOULLI = ("sigmoid_bernoulli", "refractory_sigmoid_bernoulli")
