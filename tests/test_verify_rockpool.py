"""Rockpool 3.1.0's LIFTorch against lifgrad (lifgrad.verify.rockpool)."""
import math

import numpy as np
import pytest

pytest.importorskip("rockpool", reason="needs rockpool (make peers)")
torch = pytest.importorskip("torch", reason="needs PyTorch")

from rockpool.nn.modules.torch import LIFTorch  # noqa: E402
from rockpool.nn.modules.torch.lif_torch import StepPWL  # noqa: E402

from lifgrad import surrogates as sgs  # noqa: E402
from lifgrad.verify import rockpool as rp  # noqa: E402
from lifgrad.verify.common import TOL  # noqa: E402

pytestmark = pytest.mark.torch

AD = rp.ADAPTER


def _ids(case):
    return " / ".join((case.neuron, case.variant, case.surrogate))


@pytest.mark.parametrize("case", AD.cases(), ids=_ids)
def test_case_matches(case):
    rep = AD.run(case)
    assert rep.passed and rep.spike_mismatches == 0, rep.rows
    names = {r.quantity for r in rep.rows}
    assert {"grad:input", "grad:threshold", "grad:bias"} <= names
    assert sum(f"grad:{k}" in names for k in ("tau_mem", "alpha", "dash_mem")) == 1
    if "rec" in rp.VARIANTS[case.neuron][case.variant]:
        assert "grad:w_rec" in names
    if case.neuron == "aLIFTorch":
        assert {"grad:w_ahp", "grad:tau_ahp"} <= names
    assert all(0.05 < c.rate for c in rep.coverage), rep.coverage
    for r in rep.rows:
        if case.neuron == "LIFJax" and r.quantity == "grad:input":
            # LIFJax casts its input to float32: the input gradient is rounded there
            assert r.status == "agrees within a precision limit" and r.max_rel < 1e-6
        else:
            assert r.status == "agrees" and r.max_rel <= TOL, r


def test_cases_exercise_several_spikes_and_the_clip():
    b = AD.build(AD.case("LIFTorch", "max_spikes 3"))
    spk, _ = AD.peer_forward(b.module, b.I)
    assert spk.max() == 3 and np.mean(spk >= 2) > 0.05
    b = AD.build(AD.case("LIFTorch", "defaults"))
    spk, _ = AD.peer_forward(b.module, b.I)
    assert spk.max() >= 2                                   # unbounded by default


def test_layer_map_fields():
    m = rp.make_module("has_rec, max_spikes 2, bias")
    lm = AD.layer_map(m)
    alpha = math.exp(-rp.DT / rp.TAU_MEM)
    cfg = lm.config
    assert cfg.synaptic and cfg.decay_input and cfg.theta_grad == "ratio" and not cfg.strict
    assert cfg.max_spikes == 2 and cfg.recurrent == "all" and lm.post_reset
    np.testing.assert_allclose(lm.params.alpha, alpha, rtol=1e-15)
    np.testing.assert_allclose(lm.params.gamma, alpha * lm.params.theta, rtol=1e-15)
    np.testing.assert_array_equal(lm.params.R, m.w_rec.detach().numpy().T)
    np.testing.assert_array_equal(lm.params.u_bias, m.bias.detach().numpy())
    assert m.tau_mem.dtype == torch.float64 and float(m.tau_mem.detach()) == rp.TAU_MEM
    assert AD.layer_map(rp.make_module()).config.max_spikes is None      # 2^16: no maximum


def _remapped(case, **changes):
    b = AD.build(case)
    m = AD.layer_map(b.module)
    if "params" in changes:
        changes["params"] = changes["params"](m)
    if "config" in changes:
        changes["config"] = changes["config"](m)
    return AD.check(b, m._replace(**changes))


@pytest.mark.parametrize("case,change", [
    (("LIFTorch", "defaults"), dict(params=lambda m: m.params._replace(gamma=m.params.theta))),
    (("LIFTorch", "defaults"), dict(config=lambda m: m.config.replace(decay_input=False))),
    (("LIFTorch", "defaults"), dict(config=lambda m: m.config.replace(theta_grad="shift"))),
    (("LIFTorch", "max_spikes 3"), dict(config=lambda m: m.config.replace(max_spikes=None))),
    (("LIFTorch", "has_rec"), dict(params=lambda m: m.params._replace(R=m.params.R.T))),
    (("LIFTorch", "bias"), dict(params=lambda m: m.params._replace(u_bias=np.zeros(6)))),
    (("LIFTorch", "defaults"), dict(post_reset=False)),
    (("LIFTorch", "learning_window 0.3"), dict(config=lambda m: m.config.replace(
        surrogate=sgs.get("rockpool.StepPWL", window=0.5, threshold=1.0)))),
], ids=lambda x: str(x) if isinstance(x, tuple) else "")
def test_wrong_mapping_detected(case, change):
    assert not _remapped(AD.case(*case), **change).passed


def test_wrong_chain_rule_detected():
    """Without gamma's share alpha dL/dgamma the threshold's gradient disagrees."""
    b = AD.build(AD.case("LIFTorch", "bias"))
    m = AD.layer_map(b.module)
    right = m.param_grads

    def wrong(g, I, tr):
        out = right(g, I, tr)
        out["threshold"] = np.asarray(np.sum(g.theta))
        return out
    rep = AD.check(b, m._replace(param_grads=wrong))
    assert [r.quantity for r in rep.failing] == ["grad:threshold"]


def test_alif_maps_onto_the_adaptation_current():
    """aLIFTorch (M9): iahp = gamma w_ahp a_t, rho = gamma = exp(-dt/tau_ahp),
    beta_a = -gamma w_ahp, a current into the membrane with the threshold and
    its reset constant.  The adaptive threshold instead of the current, a
    flipped beta_a, no decay of a, or chain rules without gamma's share each
    disagree."""
    b = AD.build(AD.case("aLIFTorch", "max_spikes 3, tau_ahp, w_ahp per neuron"))
    m = AD.layer_map(b.module)
    c, p = m.config, m.params
    assert c.adaptive and c.adaptation == "current" and c.theta_grad == "ratio"
    assert not c.reset_by_threshold and c.max_spikes == 3
    g = np.exp(-rp.DT / b.module.tau_ahp.detach().numpy())
    np.testing.assert_allclose(p.rho, g, rtol=1e-15)
    np.testing.assert_allclose(p.beta_a, -g * b.module.w_ahp.detach().numpy(), rtol=1e-15)
    rep = AD.check(b, m)
    assert rep.passed and {"grad:w_ahp", "grad:tau_ahp"} <= {r.quantity for r in rep.rows}
    for w in (m._replace(config=c.replace(adaptation="threshold", theta_grad="shift")),
              m._replace(params=p._replace(beta_a=-p.beta_a)),
              m._replace(params=p._replace(rho=np.ones_like(p.rho)))):
        assert not AD.check(b, w).passed
    right = m.param_grads
    tau = b.module.tau_ahp.detach().numpy()
    for name, wrong in (("w_ahp", lambda g_: -np.asarray(g_.beta_a)),        # no gamma
                        ("tau_ahp", lambda g_: np.asarray(g_.rho) * g * rp.DT / tau ** 2)):
        rep = AD.check(b, m._replace(param_grads=lambda g_, I, tr, n=name, f=wrong: dict(
            right(g_, I, tr), **{n: f(g_)})))
        assert [r.quantity for r in rep.failing] == [f"grad:{name}"]


def test_wrong_bitshift_chain_rule_detected():
    """dL/ddash_mem = dL/dalpha ln2 (1 - alpha): without ln2 it disagrees."""
    b = AD.build(AD.case("LIFTorch", "leak_mode bitshifts"))
    m = AD.layer_map(b.module)
    right = m.param_grads

    def wrong(g, I, tr):
        out = right(g, I, tr)
        out["dash_mem"] = out["dash_mem"] / np.log(2.0)
        return out
    assert AD.check(b, m).passed
    rep = AD.check(b, m._replace(param_grads=wrong))
    assert [r.quantity for r in rep.failing] == ["grad:dash_mem"]


def test_bitshift_module_maps_onto_the_rounded_decays():
    """LIFBitshiftTorch: alpha = 1 - 2^-round(log2(tau/dt)), no gradient to the
    time constants; the smooth exp(-dt/tau), or a tau chain rule, disagrees."""
    b = AD.build(AD.case("LIFBitshiftTorch", "taus per neuron, has_rec, bias"))
    m = AD.layer_map(b.module)
    tau = b.module.tau_mem.detach().numpy()
    dash = np.maximum(np.round(np.log2(tau / rp.DT)), 0)
    assert np.array_equal(m.params.alpha, 1 - 2.0 ** -dash) and m.config.max_spikes == 31
    assert len(set(dash)) > 1 and AD.check(b, m).passed
    smooth = np.exp(-rp.DT / tau)
    assert not np.allclose(smooth, m.params.alpha, rtol=1e-3)
    assert not AD.check(b, m._replace(params=m.params._replace(
        alpha=smooth, gamma=smooth * m.params.theta))).passed
    right = m.param_grads

    def wrong(g, I, tr):             # LIFTorch's leak_mode='taus' chain rule
        out = right(g, I, tr)
        out["tau_mem"] = np.asarray(g.alpha) * m.params.alpha * rp.DT / tau ** 2
        return out
    rep = AD.check(b, m._replace(param_grads=wrong))
    assert [r.quantity for r in rep.failing] == ["grad:tau_mem"]
    from rockpool.nn.modules.torch.lif_bitshift_torch import LIFBitshiftTorch
    with pytest.raises(ValueError, match="leak_mode"):
        AD.layer_map(LIFBitshiftTorch((3, 3), leak_mode="bitshifts"))


def test_stock_spike_function_cannot_run_in_float64():
    """Rockpool's stock StepPWL returns float32 spikes, which its float64
    recurrence product refuses (a departure the check works around with a
    dtype-keeping subclass)."""
    b = AD.build(AD.case("LIFTorch", "max_spikes 1"))
    b.module.spike_generation_fn = StepPWL.apply
    with pytest.raises(RuntimeError, match="dtype"):
        AD.check(b)


@pytest.mark.parametrize("kw,word", [
    (dict(shape=(6, 3), tau_syn=np.array([[2e-3, 3e-3]] * 3), has_rec=True), "n_synapses"),
    (dict(shape=(3, 3), noise_std=0.1), "noise_std"),
])
def test_unsupported_modules_raise(kw, word):
    m = LIFTorch(**kw)
    assert AD.is_neuron(m)
    with pytest.raises(ValueError, match=word):
        AD.layer_map(m)


def test_lifjax_wrong_mapping_detected_and_x64_left_off():
    jax = pytest.importorskip("jax")
    case = AD.case("LIFJax", "has_rec, max_spikes 2, bias")
    before = jax.config.jax_enable_x64
    b = AD.build(case)
    m = AD.layer_map(b.module)
    assert AD.check(b, m).passed
    assert not AD.check(b, m._replace(params=m.params._replace(gamma=m.params.theta))).passed
    assert not AD.check(b, m._replace(config=m.config.replace(theta_grad="shift"))).passed
    assert jax.config.jax_enable_x64 == before    # switched on inside the adapter's calls only
    spk, mem = AD.peer_forward(b.module, b.I)
    assert spk.shape == mem.shape == b.I.shape and spk.dtype == np.float64


def test_not_a_rockpool_neuron():
    assert not AD.is_neuron(torch.nn.Linear(2, 2))


def _net():
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LinearTorch
    torch.manual_seed(0)
    net = Sequential(LinearTorch((3, 8)),
                     LIFTorch(8, tau_mem=4e-3, tau_syn=3e-3, has_rec=True, dt=1e-3,
                              max_spikes_per_dt=3),
                     LinearTorch((8, 4), has_bias=True),
                     LIFTorch(4, tau_mem=5e-3, tau_syn=2e-3, dt=1e-3, bias=0.1))
    with torch.no_grad():
        net[0].weight.mul_(3)
        net[2].weight.mul_(2)
    return net


def test_compare_rockpool_network():
    """compare() on a user's float32 Rockpool Sequential (stock spike
    functions): run on a float64 copy, every parameter agrees in float64."""
    from lifgrad.verify.model import compare
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = np.random.default_rng(1).uniform(0, 2, (20, 4, 3))
    rep = compare(net, x)
    assert rep.status == "agrees" and rep.worst <= TOL and rep.spike_mismatches == 0, rep.rows
    names = {r.quantity for r in rep.rows}
    assert {"grad:0_LinearTorch.weight", "grad:1_LIFTorch.w_rec", "grad:1_LIFTorch.tau_mem",
            "grad:2_LinearTorch.bias", "grad:3_LIFTorch.bias", "grad:3_LIFTorch.threshold",
            "grad:input"} <= names
    assert all(c.rate > 0.05 for c in rep.coverage)
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)     # untouched
    assert net[1].vmem.dtype == torch.float32                         # still float32


def test_compare_rockpool_network_of_alif():
    """compare() on a float32 Rockpool Sequential of aLIFTorch layers (M9)."""
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LinearTorch
    from rockpool.nn.modules.torch.ahp_lif_torch import aLIFTorch
    from lifgrad.verify.model import compare
    torch.manual_seed(0)
    net = Sequential(LinearTorch((3, 5)),
                     aLIFTorch(5, tau_mem=4e-3, tau_syn=3e-3, dt=1e-3, has_rec=True),
                     LinearTorch((5, 4)),
                     aLIFTorch(4, tau_mem=5e-3, tau_syn=2e-3, tau_ahp=7e-3, dt=1e-3, bias=0.1))
    with torch.no_grad():
        net[0].weight.mul_(3)
        net[2].weight.mul_(2)
    rep = compare(net, np.random.default_rng(1).uniform(0, 2, (20, 4, 3)))
    assert rep.status == "agrees" and rep.worst <= TOL and rep.spike_mismatches == 0, rep.rows
    assert {"grad:1_aLIFTorch.w_ahp", "grad:1_aLIFTorch.tau_ahp", "grad:1_aLIFTorch.w_rec",
            "grad:3_aLIFTorch.w_ahp", "grad:3_aLIFTorch.tau_ahp"} <= {r.quantity for r in rep.rows}
    assert all(c.rate > 0.05 for c in rep.coverage)


def test_compare_rockpool_network_of_bitshift_neurons():
    from lifgrad.verify.model import compare
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LinearTorch
    from rockpool.nn.modules.torch.lif_bitshift_torch import LIFBitshiftTorch
    torch.manual_seed(0)
    net = Sequential(LinearTorch((3, 8)),
                     LIFBitshiftTorch(8, tau_mem=4e-3, tau_syn=3e-3, has_rec=True, dt=1e-3,
                                      max_spikes_per_dt=3),
                     LinearTorch((8, 4)), LIFBitshiftTorch(4, tau_mem=5e-3, tau_syn=2e-3, dt=1e-3))
    with torch.no_grad():
        net[0].weight.mul_(3)
        net[2].weight.mul_(2)
    rep = compare(net, np.random.default_rng(1).uniform(0, 2, (4, 20, 3)), layout="BTN")
    assert rep.status == "agrees" and rep.spike_mismatches == 0 and rep.worst <= TOL, rep.rows
    assert {"grad:1_LIFBitshiftTorch.w_rec", "grad:3_LIFBitshiftTorch.tau_mem"} <= \
        {r.quantity for r in rep.rows}
    assert all(c.rate > 0.05 for c in rep.coverage), rep.coverage


def test_compare_detects_a_wrong_mapping_in_a_network(monkeypatch):
    from lifgrad.verify.model import compare
    orig = rp.Rockpool.layer_map

    def wrong(self, module):
        m = orig(self, module)
        return m._replace(params=m.params._replace(gamma=m.params.theta))
    monkeypatch.setattr(rp.Rockpool, "layer_map", wrong)
    rep = compare(_net(), np.random.default_rng(1).uniform(0, 2, (20, 4, 3)))
    assert not rep.passed


def test_compare_refuses_a_jax_network():
    pytest.importorskip("jax")
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFJax, LinearJax
    from lifgrad.verify.model import compare
    net = Sequential(LinearJax((3, 4)), LIFJax(4))
    with pytest.raises(ValueError, match="float32"):
        compare(net, np.ones((5, 2, 3)))


def test_compare_torch_sequential_with_liftorch():
    """A torch.nn.Sequential of torch Linear layers and LIFTorch neurons,
    recorded with hooks like the other torch frameworks' models."""
    from lifgrad.verify.model import compare
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(3, 6), LIFTorch(6, tau_mem=4e-3, tau_syn=3e-3, dt=1e-3, bias=0.05),
        torch.nn.Linear(6, 4), LIFTorch(4, tau_mem=5e-3, tau_syn=2e-3, dt=1e-3, has_rec=True))
    with torch.no_grad():
        net[0].weight.mul_(3)
        net[2].weight.mul_(3)
    rep = compare(net, np.random.default_rng(1).uniform(0, 2, (4, 20, 3)), layout="BTN")
    assert rep.status == "agrees" and rep.worst <= TOL and rep.spike_mismatches == 0, rep.rows
    assert {"grad:1.bias", "grad:3.w_rec", "grad:3.threshold", "grad:0.weight"} <= \
        {r.quantity for r in rep.rows}
    assert all(c.rate > 0.05 for c in rep.coverage)


def test_max_spikes_above_255_is_mapped():
    lm = AD.layer_map(rp.make_module("max_spikes 300"))
    assert lm.config.max_spikes == 300


def test_neuron_torch_maps_onto_the_one_state_cell():
    """LIFNeuronTorch: no synapse, vmem = alpha vmem + x + bias; its own StepPWL
    copy is recognised; the synaptic map (decay_input) would disagree."""
    from rockpool.nn.modules.torch.lif_neuron_torch import LIFNeuronTorch
    from rockpool.nn.modules.torch.lif_neuron_torch import StepPWL as OwnStep
    stock = LIFNeuronTorch(4)
    assert stock.spike_generation_fn.__self__ is OwnStep
    lm = AD.layer_map(stock)
    assert not lm.config.synaptic and lm.config.max_spikes is None
    assert lm.limits and lm.limits[0].name == "float32 spike"
    b = AD.build(AD.case("LIFNeuronTorch", "max_spikes 3, taus per neuron, bias"))
    m = AD.layer_map(b.module)
    assert AD.check(b, m).passed
    wrong = m._replace(config=m.config.replace(synaptic=True, decay_input=True),
                       params=m.params._replace(alpha_s=np.full(6, 0.5)))
    assert not AD.check(b, wrong).passed
    assert not AD.check(b, m._replace(params=m.params._replace(gamma=m.params.theta))).passed
    with pytest.raises(ValueError, match="noise_std"):
        AD.layer_map(LIFNeuronTorch(3, noise_std=0.1))


def test_compare_rockpool_network_of_membrane_only_neurons():
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LinearTorch
    from rockpool.nn.modules.torch.lif_neuron_torch import LIFNeuronTorch
    from lifgrad.verify.model import compare
    torch.manual_seed(0)
    net = Sequential(LinearTorch((3, 8)), LIFNeuronTorch(8, tau_mem=4e-3, dt=1e-3,
                                                         max_spikes_per_dt=3),
                     LinearTorch((8, 4), has_bias=True),
                     LIFNeuronTorch(4, tau_mem=5e-3, dt=1e-3, bias=0.1))
    with torch.no_grad():
        net[0].weight.mul_(3)
        net[2].weight.mul_(2)
    rep = compare(net, np.random.default_rng(1).uniform(0, 2, (20, 4, 3)))
    assert rep.status == "agrees" and rep.spike_mismatches == 0 and rep.worst <= TOL, rep.rows
    assert {"grad:1_LIFNeuronTorch.tau_mem", "grad:3_LIFNeuronTorch.threshold",
            "grad:3_LIFNeuronTorch.bias"} <= {r.quantity for r in rep.rows}
    assert all(c.rate > 0.05 for c in rep.coverage), rep.coverage


def test_synapses_sharing_a_time_constant():
    """n_synapses > 1 with one tau_syn per neuron: the summed channels drive
    one synaptic state (input_sum); each synapse's tau_syn gets its own share
    of dL/dbeta, which the even split of g.alpha_s does not reproduce."""
    b = AD.build(AD.case("LIFTorch", "n_synapses 3, taus per neuron, has_rec, max_spikes 3"))
    m = AD.layer_map(b.module)
    assert m.input_sum == 3 and b.I.shape[-1] == 3 * 6
    rep = AD.check(b, m)
    assert rep.status == "agrees" and rep.spike_mismatches == 0
    tau = next(r for r in rep.rows if r.quantity == "grad:tau_syn")
    assert tau.status == "agrees"
    right = m.param_grads

    def even(g, I, tr):
        out = right(g, I, tr)
        out["tau_syn"] = np.repeat(np.sum(out["tau_syn"], axis=1, keepdims=True) / 3, 3, axis=1)
        return out
    assert [r.quantity for r in AD.check(b, m._replace(param_grads=even)).failing] == \
        ["grad:tau_syn"]


def test_compare_network_with_several_synapses_per_neuron():
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LinearTorch
    from lifgrad.verify.model import compare
    torch.manual_seed(0)
    net = Sequential(LinearTorch((3, 8 * 2)),
                     LIFTorch((8 * 2, 8), tau_mem=4e-3, tau_syn=3e-3, has_rec=True, dt=1e-3,
                              max_spikes_per_dt=3),
                     LinearTorch((8, 4 * 3)), LIFTorch((4 * 3, 4), tau_mem=5e-3, dt=1e-3))
    with torch.no_grad():
        net[0].weight.mul_(3)
        net[2].weight.mul_(2)
    rep = compare(net, np.random.default_rng(1).uniform(0, 2, (20, 4, 3)))
    assert rep.status == "agrees" and rep.spike_mismatches == 0 and rep.worst <= TOL, rep.rows
    assert {"grad:1_LIFTorch.tau_syn", "grad:1_LIFTorch.w_rec", "grad:3_LIFTorch.tau_syn",
            "grad:0_LinearTorch.weight"} <= {r.quantity for r in rep.rows}
    assert all(c.rate > 0.02 for c in rep.coverage), rep.coverage


def test_synapses_with_their_own_time_constants_are_a_filter_bank():
    """n_synapses > 1, a tau_syn per synapse, no recurrence: the synaptic states
    are a linear filter bank before lifgrad's one-state cell (LayerMap.pre).
    Agrees; one shared decay (the neuron's mean) disagrees; the bank's
    transpose is the adjoint of its forward (<vjp(g), x> = <g, forward(x)>)."""
    b = AD.build(AD.case("LIFTorch", "n_synapses 2, tau_syn per synapse"))
    m = AD.layer_map(b.module)
    assert m.pre is not None and not m.config.synaptic
    rep = AD.check(b, m)
    assert rep.status == "agrees" and rep.spike_mismatches == 0
    assert "grad:tau_syn" in {r.quantity for r in rep.rows}
    mean = rp._SynapseBank(np.repeat(m.pre.beta.mean(1, keepdims=True), 2, axis=1))
    assert AD.check(b, m._replace(pre=mean)).status == "disagrees"
    rng = np.random.default_rng(0)
    x, g = rng.normal(size=b.I.shape), rng.normal(size=b.I.shape[:2] + (6,))
    assert np.isclose(np.sum(m.pre.vjp(g) * x), np.sum(g * m.pre.forward(x)), rtol=1e-13)


def test_compare_network_with_a_tau_syn_per_synapse():
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LinearTorch
    from lifgrad.verify.model import compare
    torch.manual_seed(0)
    taus = torch.tensor(np.linspace(2e-3, 6e-3, 8 * 2).reshape(8, 2), dtype=torch.float32)
    net = Sequential(LinearTorch((3, 8 * 2)),
                     LIFTorch((8 * 2, 8), tau_mem=4e-3, tau_syn=taus, dt=1e-3,
                              max_spikes_per_dt=3),
                     LinearTorch((8, 4)), LIFTorch(4, tau_mem=5e-3, dt=1e-3))
    with torch.no_grad():
        net[0].weight.mul_(3)
        net[2].weight.mul_(2)
    rep = compare(net, np.random.default_rng(1).uniform(0, 2, (20, 4, 3)))
    assert rep.status == "agrees" and rep.spike_mismatches == 0 and rep.worst <= TOL, rep.rows
    assert "grad:1_LIFTorch.tau_syn" in {r.quantity for r in rep.rows}
    assert all(c.rate > 0.02 for c in rep.coverage), rep.coverage
