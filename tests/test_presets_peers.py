"""Every peer preset reproduces that framework's own backward (and spike comparison).

The peers' surrogate functions are called through autograd in float64 on a
grid that includes the threshold and the edges of each window."""
import math

import numpy as np
import pytest

from lifgrad import surrogates as sgs
from lifgrad.verify.surrogate_calls import peer_backward   # each framework called its way

torch = pytest.importorskip("torch", reason="PyTorch and the peers are installed by `make test`")
pytestmark = pytest.mark.torch


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
# sinabs, Rockpool and Spyx presets: tests/test_presets_new_peers.py (their own call conventions)
PEER_PRESETS = [n for n in sgs.PRESETS if n.split(".")[0] in ("snntorch", "spikingjelly", "norse")]
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
    peer = peer_backward(name, x, params, "float64")    # autograd through its spike function
    assert peer.grad.dtype == np.float64
    peer_grad, spikes = peer.grad, peer.spikes
    ours = s.phi(x, spikes)                        # the spike operator reads the spike
    np.testing.assert_allclose(ours, peer_grad, rtol=1e-12, atol=1e-14)
    # the framework's comparison at the threshold, x = 0
    at0 = spikes[np.where(x == 0.0)[0][0]]
    assert at0 == (0.0 if pre.strict else 1.0)


SPIKEDE = {   # spikeDE is not installed: its code's formulas, written from its source
    "spikede.sigmoid": lambda x, scale=5.0: scale / (1 + np.exp(-scale * x)) * (1 - 1 / (1 + np.exp(-scale * x))),
    "spikede.arctan": lambda x, scale=2.0: scale / 2 / (1 + (math.pi / 2 * scale * x) ** 2),
    "spikede.piecewise_linear": lambda x, gamma=1.0: ((x >= -gamma) & (x <= gamma)) / (2 * gamma),
    # spikeDE: sigma * torch.sqrt(torch.tensor(2*pi)), a float32 product (issue 18)
    "spikede.gaussian": lambda x, sigma=1.0: np.exp(-x ** 2 / (2 * sigma ** 2)) / float(
        np.float32(sigma) * np.sqrt(np.float32(2 * np.pi))),
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


def test_a_presets_own_parameter_names_win():
    """spikeDE calls its sharpness ``scale``: get("spikede.arctan", scale=3.0)
    is sharpness 3 at amplitude 1 (it once returned atan(a=2) with amplitude 3);
    the amplitude of such a preset comes from with_scale."""
    s = sgs.get("spikede.arctan", scale=3.0)
    assert s == sgs.get("atan", a=3.0) and s.scale == 1.0
    assert s.with_scale(2.0) == sgs.get("atan", a=3.0, scale=2.0)
    assert s.with_scale(2.0).preset == "spikede.arctan"
    # a preset without a parameter of that name: scale is the amplitude, as for families
    assert sgs.get("snntorch.atan", scale=2.0) == sgs.get("atan", a=2.0, scale=2.0)


def test_a_preset_carries_its_spike_comparison_into_the_configuration():
    from lifgrad import LIFConfig
    assert LIFConfig(surrogate="snntorch.atan").strict is True          # snnTorch fires at >
    assert LIFConfig(surrogate=sgs.get("norse.super")).strict is True
    assert LIFConfig(surrogate="spikingjelly.ATan").strict is False     # SpikingJelly at >=
    assert LIFConfig().strict is False and LIFConfig(surrogate="atan").strict is False
    assert LIFConfig(surrogate="snntorch.atan", strict=False).strict is False   # given: kept
    assert LIFConfig().replace(surrogate="snntorch.atan").strict is True
    assert LIFConfig(strict=False).replace(surrogate="snntorch.atan").strict is False


def test_spikede_gaussian_takes_its_float32_normaliser():
    """spikeDE divides by sigma * torch.sqrt(torch.tensor(2*pi)), a float32
    value: the preset reproduces it to rounding, the float64 density is 6e-8
    away."""
    torch = pytest.importorskip("torch")
    sigma = 0.3
    x = torch.linspace(-1, 1, 201, dtype=torch.float64)
    want = (torch.exp(-x ** 2 / (2 * sigma ** 2)) /
            (sigma * torch.sqrt(torch.tensor(2 * math.pi)))).numpy()
    got = sgs.get("spikede.gaussian", sigma=sigma).phi(x.numpy())
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=0)
    plain = sgs.get("gaussian", sigma=sigma).phi(x.numpy())
    assert 1e-8 < np.max(np.abs(plain - want)) < 1e-7
