"""lifgrad.verify.compare on users' own networks (Linear + neuron pairs)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch and the peers are installed by `make test`")
pytestmark = pytest.mark.torch

from lifgrad.verify import compare  # noqa: E402


def _x():
    return np.random.default_rng(0).uniform(0, 1, (25, 8, 20))


def test_spikingjelly_two_layer_model_agrees():
    from spikingjelly.activation_based import neuron, surrogate
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(20, 16), neuron.LIFNode(tau=2.0, surrogate_function=surrogate.ATan(), step_mode="m"),
        torch.nn.Linear(16, 4), neuron.LIFNode(tau=2.0, detach_reset=True, step_mode="m"))
    rep = compare(model, _x())
    assert rep.passed, rep.rows
    assert {"grad:input", "grad:0.weight", "grad:0.bias", "grad:2.weight", "grad:2.bias"} <= {r.quantity for r in rep.rows}


def test_norse_two_layer_model_agrees():
    from norse.torch import LIFBoxCell, LIFBoxParameters
    torch.manual_seed(1)
    p = LIFBoxParameters(tau_mem_inv=torch.tensor(100.0, dtype=torch.float64))
    model = torch.nn.Sequential(torch.nn.Linear(20, 16), LIFBoxCell(p), torch.nn.Linear(16, 4), LIFBoxCell(p))
    x = 30 * _x()
    rep = compare(model, x)
    assert rep.spike_mismatches == 0 and rep.passed, rep.rows


def test_snntorch_model_shows_its_float32_spike_rounding():
    """snnTorch's spikes are float32: gradients through a hidden layer's spikes
    are rounded to float32, so agreement is at the 1e-8 level there and exact
    in the last layer (documented in derivations/peers.md)."""
    import snntorch as snn
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(20, 16), snn.Leaky(beta=0.9), torch.nn.Linear(16, 4),
                                snn.Leaky(beta=0.8))
    rep = compare(model, _x())
    rows = {r.quantity: r.max_rel for r in rep.rows}
    assert rep.spike_mismatches == 0
    assert rows["grad:2.weight"] < 1e-13                  # above the last spikes: exact
    assert 1e-10 < rows["grad:0.weight"] < 1e-6           # through float32 hidden spikes


def test_compare_rejects_unsupported_models():
    with pytest.raises(ValueError, match=r"model\[0\]: ReLU is not a layer lifgrad maps"):
        compare(torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(3, 3)), np.zeros((2, 1, 3)))
    with pytest.raises(ValueError, match=r"model\[1\]: ReLU is not a layer"):
        compare(torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.ReLU()), np.zeros((2, 1, 3)))
    with pytest.raises(ValueError, match="no neuron"):
        compare(torch.nn.Sequential(torch.nn.Linear(3, 3)), np.zeros((2, 1, 3)))
    with pytest.raises(ValueError, match=r"x: a Sequential .* needs \(T, B, n_in\)"):
        compare(torch.nn.Sequential(torch.nn.Linear(3, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="layout"):
        compare(torch.nn.Sequential(torch.nn.Linear(3, 3)), np.zeros((2, 1, 3)), layout="NTB")
