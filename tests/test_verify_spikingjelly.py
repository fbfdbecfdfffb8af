"""SpikingJelly 2.0.0 against lifgrad (lifgrad.verify.spikingjelly)."""
import numpy as np
import pytest

pytest.importorskip("spikingjelly", reason="needs SpikingJelly (make peers)")
torch = pytest.importorskip("torch", reason="needs PyTorch")

from lifgrad import surrogates as sgs  # noqa: E402
from lifgrad.verify import spikingjelly as sj  # noqa: E402
from lifgrad.verify.common import TOL  # noqa: E402
from spikingjelly.activation_based import neuron, surrogate  # noqa: E402

pytestmark = pytest.mark.torch

AD = sj.ADAPTER


def _ids(case):
    return " / ".join((case.neuron, case.variant, case.surrogate))


@pytest.mark.parametrize("case", AD.cases(), ids=_ids)
def test_case_matches(case):
    rep = AD.run(case)
    assert rep.spike_mismatches == 0, rep
    assert rep.worst <= TOL, rep.rows
    assert rep.passed
    names = {r.quantity for r in rep.rows}
    assert {"mem", "grad:input"} <= names
    if case.neuron == "ParametricLIFNode":
        assert "grad:w" in names


@pytest.mark.parametrize("neuron_name,variant",
                         [(n, v) for n, vs in sj.NEURONS.items() for v in vs],
                         ids=lambda x: x)
def test_post_reset_membrane_matches(neuron_name, variant):
    """The loss on SpikingJelly's own post-reset v_seq, every variant."""
    rep = AD.run(AD.case(neuron_name, variant, mem="v"))
    assert rep.passed, (rep.spike_mismatches, rep.rows)


def test_coverage():
    assert set(sj.NEURONS) == {"IFNode", "LIFNode", "ParametricLIFNode"}
    lif = {(k["decay_input"], k["v_reset"] is None, k.get("detach_reset", False))
           for k in sj.VARIANTS["LIFNode"].values()}
    assert len(lif) == 8
    assert any(k["v_reset"] not in (None, 0.0) for k in sj.VARIANTS["LIFNode"].values())
    presets = {p for p in sgs.PRESETS if p.startswith("spikingjelly.")}
    assert presets == {c.surrogate for c in AD.cases()}
    assert set(sj.SURROGATE_PARAMS) == presets
    assert 0 < len(AD.cases(quick=True)) < len(AD.cases())


def test_float64_reference_path():
    """float64 in and out, and the surrogate module is called once per step:
    the Python reference loop, not the fused op (which never calls it)."""
    for name in sj.NEURONS:
        mod = sj.make_module(name, sj.NEURONS[name][0])
        calls = []
        mod.surrogate_function.register_forward_hook(lambda *a: calls.append(1))
        I = AD.build(AD.case(name, sj.NEURONS[name][0], T=7, B=2, N=3)).I
        spk, v_seq = AD.forward(mod, torch.tensor(I))
        assert spk.dtype == torch.float64 and v_seq.dtype == torch.float64
        assert v_seq.shape == (7, 2, 3)
        assert len(calls) == 7


def test_layer_map_fields():
    m = AD.layer_map(neuron.LIFNode(tau=4.0, decay_input=True, v_reset=-0.1))
    assert m.config.reset == "zero" and not m.config.strict and m.post_reset
    assert m.params.alpha == 0.75 and m.gain == 0.25 and m.bias == -0.025 and m.u0 == -0.1
    m = AD.layer_map(neuron.LIFNode(tau=4.0, decay_input=False, v_reset=None, detach_reset=True))
    assert m.config.reset == "subtract" and m.config.detach_reset
    assert m.gain == 1.0 and m.bias == 0.0 and m.u0 == 0.0
    assert m.params.gamma == pytest.approx(0.75)
    m = AD.layer_map(neuron.ParametricLIFNode(init_tau=4.0, surrogate_function=surrogate.ATan(3.0)))
    assert m.params.alpha == pytest.approx(0.75) and m.gain == pytest.approx(0.25)
    assert m.config.surrogate == sgs.get("spikingjelly.ATan", alpha=3.0)
    m = AD.layer_map(neuron.LIFNode(surrogate_function=surrogate.SquarewaveFourierSeries(5, 6.0)))
    assert m.config.surrogate == sgs.get("spikingjelly.SquarewaveFourierSeries", n=5, T_period=6.0)


@pytest.mark.parametrize("sf", [surrogate.PoissonPass(), surrogate.Sigmoid(spiking=False),
                                torch.nn.Sigmoid()],
                         ids=["PoissonPass", "spiking=False", "custom"])
def test_unsupported_surrogate_raises(sf):
    with pytest.raises(ValueError, match="surrogate_function"):
        AD.layer_map(neuron.LIFNode(surrogate_function=sf))


def test_unsupported_neuron_raises():
    with pytest.raises(ValueError, match="IFNode, LIFNode or ParametricLIFNode"):
        AD.layer_map(neuron.SimpleLIFNode(tau=2.0, decay_input=True))


@pytest.mark.parametrize("neuron_name,variant,remap", [
    # gamma = theta: the soft reset as if it acted after the decay
    ("LIFNode", "decay_input soft", lambda m: m._replace(params=m.params._replace(gamma=None))),
    # detach flag flipped
    ("LIFNode", "decay_input hard", lambda m: m._replace(config=m.config.replace(detach_reset=True))),
    ("IFNode", "soft detach", lambda m: m._replace(config=m.config.replace(detach_reset=False))),
    # input gain 1 instead of 1/tau
    ("LIFNode", "decay_input hard v_reset=-0.1", lambda m: m._replace(gain=1.0)),
    # PLIF w gradient with the wrong sign
    ("ParametricLIFNode", "decay_input soft",
     lambda m: m._replace(param_grads=lambda g, I, tr: {k: -v for k, v in
                                                        m.param_grads(g, I, tr).items()})),
], ids=["gamma=theta", "detach flipped on", "detach flipped off", "gain=1", "w sign"])
def test_wrong_mapping_detected(neuron_name, variant, remap):
    built = AD.build(AD.case(neuron_name, variant, mem="h"))
    assert AD.check(built).passed
    rep = AD.check(built, remap(AD.layer_map(built.module)))
    assert not rep.passed
    assert rep.spike_mismatches > 0 or rep.worst > 1e-3


def test_post_reset_membrane_one_step():
    """SpikingJelly's returned post-reset V subtracts theta (not the decayed
    gamma = (1 - 1/tau) theta), and detach_reset removes the spike's surrogate
    path from V itself (lifgrad.verify.common.reported_membrane maps both)."""
    tau, theta, x = 2.0, 1.0, 2.6          # H = x / tau = 1.3 from V_0 = 0
    sig = 1 / (1 + np.exp(-4.0 * (1.3 - theta)))
    sg = 4.0 * sig * (1 - sig)
    for v_reset, detach, want_v, want_dv in [
            (None, False, 1.3 - theta, (1 - theta * sg) / tau),
            (None, True, 1.3 - theta, 1 / tau),
            (0.0, False, 0.0, (0 - 1.3) * sg / tau),
            (0.0, True, 0.0, 0.0)]:
        mod = neuron.LIFNode(tau=tau, v_reset=v_reset, detach_reset=detach, step_mode="m",
                             store_v_seq=True).double()
        xt = torch.full((1, 1, 1), x, dtype=torch.float64, requires_grad=True)
        _, v_seq = AD.forward(mod, xt)
        v_seq.sum().backward()
        assert v_seq.item() == pytest.approx(want_v, abs=1e-15)
        assert xt.grad.item() == pytest.approx(want_dv, abs=1e-15)
        if v_reset is None:            # lifgrad's gamma is the decayed reset, not V's theta
            assert AD.layer_map(mod).params.gamma == pytest.approx((1 - 1 / tau) * theta)
