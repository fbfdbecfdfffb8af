"""Every peer preset reproduces that framework's own backward (and spike comparison).

The peers' surrogate functions are called through autograd in float64 on a
grid that includes the threshold and the edges of each window."""
import math
import warnings

import numpy as np
import pytest

from lifgrad import surrogates as sgs

torch = pytest.importorskip("torch", reason="PyTorch and the peers are installed by `make test`")
pytestmark = pytest.mark.torch


def _peer(name, params):
    """The peer's own surrogate function for preset ``name``."""
    fw, fn = name.split(".")
    if fw == "snntorch":
        from snntorch import surrogate as ss
        return getattr(ss, fn)(**params)
    if fw == "spikingjelly":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from spikingjelly.activation_based import surrogate as sjs
        return getattr(sjs, fn)(**params)
    if fw == "norse":
        from norse.torch.functional.threshold import threshold
        alpha = params.get("alpha", dict(sgs.preset(name).defaults)["alpha"])
        return lambda x: threshold(x, fn, alpha)
    raise KeyError(fw)


# parameter sets per preset: the defaults and one non-default choice
NONDEFAULT = {
    "snntorch.atan": {"alpha": 3.0}, "snntorch.sigmoid": {"slope": 5.0},
    "snntorch.fast_sigmoid": {"slope": 4.0}, "snntorch.triangular": {"threshold": 0.7},
    "snntorch.spike_rate_escape": {"beta": 2.0, "slope": 3.0}, "snntorch.SFS": {"slope": 2.0, "B": 0.5},
    "spikingjelly.Sigmoid": {"alpha": 2.5}, "spikingjelly.ATan": {"alpha": 1.5},
    "spikingjelly.PiecewiseQuadratic": {"alpha": 2.0}, "spikingjelly.PiecewiseExp": {"alpha": 3.0},
    "spikingjelly.SoftSign": {"alpha": 1.5}, "spikingjelly.SuperSpike": {"alpha": 3.0},
    "spikingjelly.NonzeroSignLogAbs": {"alpha": 2.0}, "spikingjelly.Erf": {"alpha": 1.2},
    "spikingjelly.PiecewiseLeakyReLU": {"w": 0.5, "c": 0.1},
    "spikingjelly.SquarewaveFourierSeries": {"n": 4, "T_period": 5.0},
    "spikingjelly.S2NN": {"alpha": 2.0, "beta": 0.5}, "spikingjelly.QPseudoSpike": {"alpha": 3.0},
    "spikingjelly.LeakyKReLU": {"leak": 0.1, "k": 2.0},
    "spikingjelly.FakeNumericalGradient": {"alpha": 0.5}, "spikingjelly.LogTailedReLU": {"alpha": 0.2},
    "spikingjelly.Rect": {"alpha": 2.0},
    "norse.tanh": {"alpha": 2.0}, "norse.triangle": {"alpha": 0.7}, "norse.circ": {"alpha": 1.5},
    "norse.heavi_erfc": {"alpha": 2.0}, "norse.super": {"alpha": 1.0},
}
PEER_PRESETS = [n for n in sgs.PRESETS if not n.startswith("spikede.")]
CASES = [(n, {}) for n in PEER_PRESETS] + [(n, p) for n, p in NONDEFAULT.items()]


def _grid(params):
    x = np.concatenate([np.linspace(-3, 3, 241), [0.0, 1.0, -1.0, 0.5, -0.5, 0.25, -0.25, 2.0]])
    for v in params.values():                      # window edges at +-1/alpha etc.
        if v:
            x = np.concatenate([x, [1 / v, -1 / v, 0.5 / v, -0.5 / v, v, -v]])
    return x


@pytest.mark.parametrize("name,params", CASES, ids=[f"{n}-{'default' if not p else 'custom'}" for n, p in CASES])
def test_preset_matches_peer_backward(name, params):
    pre = sgs.preset(name)
    s = pre.surrogate(**params)
    x = _grid(params)
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    out = _peer(name, params)(xt)
    out.sum().backward()
    peer_grad = xt.grad.numpy()
    spikes = out.detach().numpy()
    ours = s.phi(x, spikes)                        # the spike operator reads the spike
    np.testing.assert_allclose(ours, peer_grad, rtol=1e-12, atol=1e-14)
    # the framework's comparison at the threshold, x = 0
    at0 = spikes[np.where(x == 0.0)[0][0]]
    assert at0 == (0.0 if pre.strict else 1.0)


SPIKEDE = {   # spikeDE is not installed: its code's formulas, written from its source
    "spikede.sigmoid": lambda x, scale=5.0: scale / (1 + np.exp(-scale * x)) * (1 - 1 / (1 + np.exp(-scale * x))),
    "spikede.arctan": lambda x, scale=2.0: scale / 2 / (1 + (math.pi / 2 * scale * x) ** 2),
    "spikede.piecewise_linear": lambda x, gamma=1.0: ((x >= -gamma) & (x <= gamma)) / (2 * gamma),
    "spikede.gaussian": lambda x, sigma=1.0: np.exp(-x ** 2 / (2 * sigma ** 2)) / (sigma * math.sqrt(2 * math.pi)),
}


@pytest.mark.parametrize("name", list(SPIKEDE))
def test_spikede_preset_matches_its_coded_formula(name):
    x = _grid({})
    np.testing.assert_allclose(sgs.get(name).phi(x), SPIKEDE[name](x), rtol=1e-12, atol=1e-15)
    assert sgs.preset(name).strict is False


def test_every_shipped_surrogate_is_a_preset_or_a_documented_deviation():
    import snntorch.surrogate as ss
    shipped = {"snntorch." + n for n in ("atan", "sigmoid", "fast_sigmoid", "triangular",
                                          "spike_rate_escape", "straight_through_estimator",
                                          "heaviside", "SFS", "SSO", "LSO", "custom_surrogate")}
    assert all(hasattr(ss, n.split(".")[1]) for n in shipped)
    for n in shipped:
        assert n in sgs.PRESETS or n in sgs.DEVIATIONS, n
    with pytest.raises(ValueError, match="fresh uniform noise"):
        sgs.get("snntorch.SSO")
    with pytest.raises(ValueError, match="unknown preset 'snntorch.nope'"):
        sgs.get("snntorch.nope")
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['k'\]; valid: \['slope'\]"):
        sgs.get("snntorch.sigmoid", k=3)
