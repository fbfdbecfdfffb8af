"""sinabs 3.1.3 against lifgrad (lifgrad.verify.sinabs)."""
import copy
import math

import numpy as np
import pytest

pytest.importorskip("sinabs", reason="needs sinabs (make peers)")
torch = pytest.importorskip("torch", reason="needs PyTorch")

import sinabs.layers as sl  # noqa: E402
from sinabs.activation import (Gaussian, MaxSpike, MembraneReset, MembraneSubtract,  # noqa: E402
                               MultiSpike, PeriodicExponential, SingleSpike)

from lifgrad import surrogates as sgs  # noqa: E402
from lifgrad.config import LIFParams  # noqa: E402
from lifgrad.verify import sinabs as sn  # noqa: E402
from lifgrad.verify.common import TOL  # noqa: E402
from lifgrad.verify.model import compare  # noqa: E402

pytestmark = pytest.mark.torch

AD = sn.ADAPTER


def _ids(case):
    return " / ".join((case.neuron, case.variant, case.surrogate))


@pytest.mark.parametrize("case", AD.cases(), ids=_ids)
def test_case_matches(case):
    rep = AD.run(case)
    assert rep.spike_mismatches == 0, rep
    assert rep.worst <= TOL, rep.rows
    assert rep.status == "agrees", rep.rows
    names = {r.quantity for r in rep.rows}
    assert {"mem", "grad:input"} <= names
    if case.neuron.endswith("Recurrent"):
        assert "grad:rec_connect.weight" in names
    if not case.neuron.startswith("IAF"):
        trained = "grad:alpha_mem" if "train_alphas" in case.variant else "grad:tau_mem"
        assert trained in names
    if case.neuron == "ExpLeak":                     # no spikes, no threshold
        assert "grad:spike_threshold" not in names and np.isnan(rep.coverage[0].rate)
        return
    if case.neuron.startswith("ALIF"):               # b0 a plain tensor unless trainable
        assert "grad:tau_adapt" in names or "grad:alpha_adapt" in names
        assert ("grad:b0" in names) == ("trainable b0" in case.variant)
        assert 0.05 < rep.coverage[0].rate < 0.9, rep.coverage
        return
    assert "grad:spike_threshold" in names
    assert 0.05 < rep.coverage[0].rate < 0.9, rep.coverage


@pytest.mark.parametrize("surrogate", sorted(sn.SURROGATE_PARAMS))
def test_every_surrogate_at_another_threshold(surrogate):
    """theta = 0.8: the threshold-scaled presets (and Heaviside's float32 1/theta)."""
    rep = AD.run(AD.case("LIF", "MultiSpike theta=0.8", surrogate))
    assert rep.status == "agrees" and rep.worst <= TOL, rep.rows


def test_coverage():
    assert set(sn.NEURONS) == {"LIF", "LIFSqueeze", "IAF", "ExpLeak", "ALIF", "ALIFRecurrent",
                               "LIFRecurrent", "IAFRecurrent"}
    presets = {p for p in sgs.PRESETS if p.startswith("sinabs.")}
    assert presets == {c.surrogate for c in AD.cases()} == set(sn.SURROGATE_PARAMS)
    kinds = {spk if isinstance(spk, str) or spk is None else spk[0]
             for vs in sn.VARIANTS.values() for spk, _ in vs.values()}
    assert kinds == {"multi", "single", "max", None}           # None: ExpLeak, no spikes
    assert {kw.get("norm_input", True) for spk, kw in sn.VARIANTS["LIF"].values()} == {True, False}
    assert 0 < len(AD.cases(quick=True)) < len(AD.cases())


def test_cases_exercise_multi_spikes_and_the_clip():
    """MultiSpike emits several spikes per step in the cases, MaxSpike(M) clips them."""
    counts = {}
    for v in ("MultiSpike", "MaxSpike(2)"):
        b = AD.build(AD.case("LIF", v))
        counts[v] = AD.peer_gradients(b)["spikes"]
    assert counts["MultiSpike"].max() >= 3
    assert counts["MaxSpike(2)"].max() == 2
    assert np.array_equal(counts["MaxSpike(2)"], np.minimum(counts["MultiSpike"], 2))


def test_layer_map_fields():
    m = sn.make_module("LIF", "MultiSpike")
    lm = AD.layer_map(m)
    alpha = math.exp(-1 / sn.TAU)
    assert lm.config.norm_input and lm.config.max_spikes is None and not lm.config.strict
    assert lm.config.reset == "subtract" and not lm.config.detach_reset and lm.post_reset
    assert lm.params.alpha == pytest.approx(alpha, rel=1e-15)
    assert lm.params.gamma == pytest.approx(alpha * lm.params.theta, rel=1e-15)
    assert m.tau_mem.dtype == torch.float64 and float(m.tau_mem.detach()) == sn.TAU   # rewritten
    iaf = AD.layer_map(sn.make_module("IAF", "SingleSpike"))
    assert iaf.params.alpha == 1.0 and not iaf.config.norm_input and iaf.config.max_spikes == 1
    assert AD.layer_map(sn.make_module("IAF", "MaxSpike(1)")).config.max_spikes == 1
    assert AD.layer_map(sn.make_module("LIF", "MaxSpike(2)")).config.max_spikes == 2
    assert AD.surrogate_of(m) == ("sinabs.SingleExponential",
                                  {"grad_width": 0.5, "grad_scale": 1.0, "threshold": 1.0})


def _remapped(case, **changes):
    b = AD.build(case)
    m = AD.layer_map(b.module)
    if "params" in changes:
        changes["params"] = changes["params"](m)
    if "config" in changes:
        changes["config"] = changes["config"](m)
    return AD.check(b, m._replace(**changes))


@pytest.mark.parametrize("case,change", [
    (("LIF", "MultiSpike"), dict(params=lambda m: m.params._replace(gamma=m.params.theta))),
    (("LIF", "SingleSpike no norm_input"),
     dict(params=lambda m: m.params._replace(gamma=m.params.theta))),
    (("LIF", "MultiSpike"), dict(config=lambda m: m.config.replace(norm_input=False))),
    (("LIF", "MultiSpike"), dict(config=lambda m: m.config.replace(max_spikes=1))),
    (("LIF", "MaxSpike(2)"), dict(config=lambda m: m.config.replace(max_spikes=None))),
    (("LIF", "MultiSpike"), dict(post_reset=False)),
    (("LIF", "MultiSpike"), dict(config=lambda m: m.config.replace(
        surrogate=sgs.get("sinabs.SingleExponential", grad_width=0.5, threshold=1.2)))),
    (("LIF", "MultiSpike tau_syn"), dict(config=lambda m: m.config.replace(decay_input=False))),
    (("IAF", "MultiSpike tau_syn"),
     dict(params=lambda m: m.params._replace(alpha_s=m.params.alpha_s * 0.99))),
    (("LIF", "MultiSpike subtract_value=0.6"), dict(reset_value=None)),
    (("ExpLeak", "default"), dict(config=lambda m: m.config.replace(norm_input=True))),
    (("ExpLeak", "norm_input"),
     dict(params=lambda m: m.params._replace(alpha=m.params.alpha * 0.99))),
    (("LIF", "SingleSpike MembraneReset"),
     dict(config=lambda m: m.config.replace(detach_reset=False))),
    (("LIF", "SingleSpike MembraneReset"), dict(config=lambda m: m.config.replace(
        reset="subtract", detach_reset=False))),
    (("LIF", "MultiSpike subtract_value=0.6"),
     dict(params=lambda m: m.params._replace(gamma=m.params.alpha * m.params.theta))),
], ids=lambda x: str(x) if isinstance(x, tuple) else "")
def test_wrong_mapping_detected(case, change):
    assert not _remapped(AD.case(*case), **change).passed


def test_wrong_tau_chain_rule_detected():
    """Without gamma's share theta dL/dgamma the gradient of tau_mem disagrees."""
    b = AD.build(AD.case("LIF", "MultiSpike"))
    m = AD.layer_map(b.module)
    alpha = m.params.alpha

    def wrong(g, I, tr):
        return {"tau_mem": np.asarray(np.sum(g.alpha) * alpha / sn.TAU ** 2),
                "spike_threshold": np.zeros(())}
    rep = AD.check(b, m._replace(param_grads=wrong))
    assert [r.quantity for r in rep.failing] == ["grad:tau_mem"]


def test_stock_spike_function_is_float32_limited():
    """sinabs' own MultiSpike returns float32 spikes: the gradient is rounded to
    float32 (a documented limit); the cases use the dtype-keeping subclass."""
    b = AD.build(AD.case("LIF", "MultiSpike"))
    b.module.spike_fn = MultiSpike
    rep = AD.check(b)
    assert rep.spike_mismatches == 0
    assert rep.status == "agrees within a precision limit", rep.rows
    assert 1e-10 < rep.worst < 1e-5


def _trainable_min_v_mem(mod):
    mod.min_v_mem.requires_grad_(True)
    return mod


def test_mapped_where_refused_before():
    """MembraneReset with MultiSpike (M12), min_v_mem above 0 (M11) and a
    trainable min_v_mem map now."""
    for mod in (sl.LIF(tau_mem=2.0, reset_fn=MembraneReset()), sl.LIF(tau_mem=2.0, min_v_mem=0.5),
                _trainable_min_v_mem(sl.LIF(tau_mem=2.0, min_v_mem=0.5)),
                sl.ALIF(tau_mem=2.0, tau_adapt=3.0, surrogate_grad_fn=Gaussian(),
                        min_v_mem=0.5),
                sl.ExpLeak(tau_mem=2.0, min_v_mem=0.25)):
        m = AD.layer_map(mod)
        assert m.config.u_min is not None or m.config.multi_spike


@pytest.mark.parametrize("make,word", [
    (lambda: sl.IAFRecurrent(rec_connect=torch.nn.Sequential(torch.nn.Linear(3, 3, bias=False))),
     "rec_connect"),
])
def test_unsupported_modules_raise(make, word):
    mod = make()
    assert AD.is_neuron(mod)
    with pytest.raises(ValueError, match=word) as e:
        AD.layer_map(mod)
    assert "not covered" in str(e.value) or "no counterpart" in str(e.value)


def test_wrong_tau_syn_chain_rule_detected():
    """dL/dtau_syn = dL/dalpha_syn alpha_syn / tau_syn^2: without the factor it disagrees."""
    b = AD.build(AD.case("LIF", "MultiSpike tau_syn"))
    m = AD.layer_map(b.module)
    right = m.param_grads

    def wrong(g, I, tr):
        out = right(g, I, tr)
        out["tau_syn"] = np.asarray(np.sum(g.alpha_s))
        return out
    assert AD.check(b, m).passed
    rep = AD.check(b, m._replace(param_grads=wrong))
    assert [r.quantity for r in rep.failing] == ["grad:tau_syn"]


def test_alif_maps_onto_the_reset_by_the_adaptive_threshold():
    """ALIF: rho = alpha_adapt, beta_a = adapt_scale (1 - rho), theta = b0, the
    reset by the adaptive threshold with factor alpha (M7), no threshold
    gradient through the spike (M8), alpha_s = (1 - alpha) alpha_syn with
    tau_syn and norm_input.  The spike's threshold derivative -phi, a reset by
    the constant b0, adapt_scale as beta_a, LIF's (1 - alpha) scaling, and
    chain rules missing a share each disagree."""
    b = AD.build(AD.case("ALIF", "SingleSpike trainable b0, adapt_scale", sn.ALIF_SURROGATE))
    m = AD.layer_map(b.module)
    c, p = m.config, m.params
    alpha, rho = math.exp(-1 / sn.TAU), math.exp(-1 / sn.TAU_ADAPT)
    assert c.adaptive and c.reset_by_threshold and c.theta_grad == "none" and not m.post_reset
    assert p.gamma == pytest.approx(alpha, rel=1e-15) and p.rho == pytest.approx(rho, rel=1e-15)
    assert p.beta_a == pytest.approx(sn.ADAPT_SCALE * (1 - rho), rel=1e-14)
    rep = AD.check(b, m)
    assert rep.passed and {"grad:b0", "grad:adapt_scale"} <= {r.quantity for r in rep.rows}
    wrong = [m._replace(config=c.replace(theta_grad="shift")),
             m._replace(config=c.replace(reset_by_threshold=False),
                        params=p._replace(gamma=p.alpha * p.theta)),
             m._replace(params=p._replace(beta_a=sn.ADAPT_SCALE))]
    bs = AD.build(AD.case("ALIF", "SingleSpike tau_syn", sn.ALIF_SURROGATE))
    ms = AD.layer_map(bs.module)
    assert ms.config.synaptic and ms.config.decay_input and not ms.config.norm_input
    assert AD.check(bs, ms).passed
    assert not AD.check(bs, ms._replace(                 # LIF's (1 - alpha): not stored
        config=ms.config.replace(norm_input=True),
        params=ms.params._replace(alpha_s=ms.params.alpha_s / (1 - ms.params.alpha)))).passed
    for w in wrong:
        assert not AD.check(b, w).passed
    right = m.param_grads
    for name, wrong_grad in (("adapt_scale", lambda g: np.asarray(g.beta_a)),     # no 1 - rho
                             ("tau_adapt", lambda g: np.asarray(g.rho) * rho / sn.TAU_ADAPT ** 2)):
        rep = AD.check(b, m._replace(param_grads=lambda g, I, tr, n=name, f=wrong_grad: dict(
            right(g, I, tr), **{n: f(g)})))
        assert [r.quantity for r in rep.failing] == [f"grad:{name}"]


def test_alif_recordings_are_aliased():
    """Departure: each record dict of ALIF is written again by the next step,
    so recordings['v_mem'][:, t] is the next step's pre-reset membrane (the
    last one the post-reset state); what the check compares instead."""
    m = sn.make_module("ALIF", "SingleSpike", sn.ALIF_SURROGATE)
    b = AD.build(AD.case("ALIF", "SingleSpike", sn.ALIF_SURROGATE))
    x = torch.tensor(b.I)
    spk, u = AD.forward(m, x)                            # the pre-reset membrane, step by step
    sn._fresh_state(m)
    m(x.transpose(0, 1))
    rec = m.recordings["v_mem"].transpose(0, 1)
    assert torch.equal(rec[:-1], u[1:])
    assert not torch.allclose(rec[-1], u[-1])           # the post-reset state
    np.testing.assert_allclose((spk[-1] > 0).numpy(), (rec[-1] < u[-1]).numpy())


def test_compare_model_with_alif():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(3, 6), sl.ALIF(tau_mem=3.0, tau_adapt=6.0, surrogate_grad_fn=Gaussian()),
        torch.nn.Linear(6, 4), sl.ALIF(tau_mem=2.5, tau_adapt=5.0, tau_syn=2.0, norm_input=False,
                                       surrogate_grad_fn=Gaussian(sigma=0.3)))
    with torch.no_grad():
        net[0].weight.mul_(4)
        net[2].weight.mul_(3)
    rep = compare(net, np.random.default_rng(1).uniform(0, 2, (4, 20, 3)), layout="BTN")
    assert rep.status == "agrees" and rep.worst <= TOL and rep.spike_mismatches == 0, rep.rows
    assert {"grad:1.tau_adapt", "grad:3.tau_adapt", "grad:3.tau_syn", "grad:0.weight"} <= \
        {r.quantity for r in rep.rows}
    assert all(c.rate > 0.02 for c in rep.coverage), rep.coverage
    assert "forward" not in net[1].__dict__              # the user's module untouched
    # sinabs' deep copy of ALIF loses norm_input; lifgrad's copy gets it back
    assert copy.deepcopy(net[3]).norm_input is True and net[3].norm_input is False
    assert any("loses norm_input" in n for n in rep.notes), rep.notes


@pytest.mark.parametrize("case", [("LIF", "SingleSpike trainable threshold, tau per neuron"),
                                  ("IAF", "MaxSpike(2) trainable threshold")])
def test_trainable_threshold(case):
    """A trainable spike_threshold: no gradient through the spike (M8), the
    reset's alpha g.gamma and the membrane's share; the spike's -phi (or
    ratio), or a chain rule without the reset's share, disagrees."""
    b = AD.build(AD.case(*case))
    m = AD.layer_map(b.module)
    assert b.module.spike_threshold.requires_grad and m.config.theta_grad == "none"
    rep = AD.check(b, m)
    assert rep.passed and "grad:spike_threshold" in {r.quantity for r in rep.rows}
    assert abs(AD.peer_gradients(b)["grad:spike_threshold"]) > 1.0
    for tg in ("shift", "ratio"):
        rep = AD.check(b, m._replace(config=m.config.replace(theta_grad=tg)))
        assert [r.quantity for r in rep.failing] == ["grad:spike_threshold"], rep.rows
    right = m.param_grads
    rep = AD.check(b, m._replace(param_grads=lambda g, I, tr: dict(
        right(g, I, tr), spike_threshold=np.asarray(np.sum(g.theta)))))
    assert [r.quantity for r in rep.failing] == ["grad:spike_threshold"]


@pytest.mark.parametrize("neuron", ["LIFRecurrent", "IAFRecurrent"])
def test_lif_recurrent_maps_onto_the_all_to_all_recurrence(neuron):
    """LIFRecurrent / IAFRecurrent with a bias-free Linear: R = weight (not its
    transpose), the pre-reset membrane from the aliased recordings; R^T, R = 0
    or the post-reset reading disagree."""
    variant = next(iter(sn.VARIANTS[neuron]))
    b = AD.build(AD.case(neuron, variant))
    m = AD.layer_map(b.module)
    assert m.config.recurrent == "all" and not m.post_reset
    assert np.array_equal(m.params.R, b.module.rec_connect.weight.detach().numpy())
    rep = AD.check(b, m)
    assert rep.passed and "grad:rec_connect.weight" in {r.quantity for r in rep.rows}
    for wrong in (m._replace(params=m.params._replace(R=m.params.R.T.copy())),
                  m._replace(post_reset=True),
                  m._replace(params=m.params._replace(R=np.zeros_like(m.params.R)))):
        assert not AD.check(b, wrong).passed
    # the recordings are aliased: record t holds the pre-reset membrane of step t + 1
    x = torch.tensor(b.I)
    spk, u = AD.forward(b.module, x)
    sn._fresh_state(b.module)
    b.module(x.transpose(0, 1))
    rec = b.module.recordings["v_mem"].transpose(0, 1)
    assert torch.equal(rec[:-1], u[1:]) and not torch.allclose(rec[-1], u[-1])


@pytest.mark.parametrize("make", [
    lambda: sl.LIFRecurrent(tau_mem=3.0, rec_connect=torch.nn.Linear(6, 6)),
    lambda: sl.IAFRecurrent(rec_connect=torch.nn.Linear(6, 6, bias=False), spike_fn=MaxSpike(2)),
    lambda: sl.ALIFRecurrent(tau_mem=3.0, tau_adapt=5.0, rec_connect=torch.nn.Linear(6, 6),
                             surrogate_grad_fn=Gaussian(), norm_input=False)],
    ids=["LIFRecurrent", "IAFRecurrent", "ALIFRecurrent"])
def test_compare_model_with_a_recurrent_layer(make):
    """Departure: sinabs' StatefulLayer.__deepcopy__ rebuilds the layer from
    _param_dict (sharing rec_connect) and then getattr()s every named parameter,
    'rec_connect.weight' included, which fails (ALIFRecurrent's _param_dict
    lacks rec_connect altogether).  compare() copies such a layer
    itself (the adapter's copy_module): the model agrees, rec_connect's bias
    included, and the user's model, its rec_connect object among it, is left
    as it was (float32)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 6), make(), torch.nn.Linear(6, 4), sl.IAF())
    with torch.no_grad():
        net[0].weight.mul_(3)
        torch.nn.init.uniform_(net[2].weight, -0.1, 0.5)      # the last layer fires too
    with pytest.raises((AttributeError, TypeError), match="rec_connect"):
        copy.deepcopy(net[1])
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rc = net[1].rec_connect
    rep = compare(net, np.random.default_rng(1).uniform(0, 2, (2, 20, 3)), layout="BTN")
    assert rep.status == "agrees" and rep.spike_mismatches == 0 and rep.worst <= TOL, rep.rows
    names = {r.quantity for r in rep.rows}
    assert "grad:1.rec_connect.weight" in names
    if rc.bias is not None:
        assert "grad:1.rec_connect.bias" in names
    assert all(c.rate > 0.02 for c in rep.coverage), rep.coverage
    assert net[1].rec_connect is rc and rc.weight.dtype == torch.float32
    assert all(torch.equal(before[k], net.state_dict()[k]) for k in before)


def test_unsupported_model_is_refused_before_running():
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), sl.LIFRecurrent(
        tau_mem=2.0, rec_connect=torch.nn.Sequential(torch.nn.Linear(4, 4)),
        spike_fn=SingleSpike))
    with pytest.raises(ValueError, match="rec_connect: Sequential is not covered"):
        compare(net, np.ones((2, 5, 3)), layout="BTN")


def _net(seed=0, spike_fn=MultiSpike, squeeze=False, B=4, T=20):
    torch.manual_seed(seed)
    if squeeze:
        n1 = sl.IAFSqueeze(batch_size=B, spike_fn=spike_fn)
        n2 = sl.LIFSqueeze(tau_mem=2.0, num_timesteps=T, spike_fn=SingleSpike,
                           surrogate_grad_fn=PeriodicExponential())
    else:
        n1 = sl.LIF(tau_mem=3.0, spike_fn=spike_fn)
        n2 = sl.LIF(tau_mem=torch.full((4,), 2.5), norm_input=False,
                    spike_fn=MaxSpike(max_num_spikes_per_bin=2))
    net = torch.nn.Sequential(torch.nn.Linear(5, 8), n1, torch.nn.Linear(8, 4), n2)
    with torch.no_grad():
        net[0].weight.mul_(3.0)
        net[2].weight.mul_(2.0)
    return net


@pytest.mark.parametrize("squeeze", [False, True], ids=["LIF", "Squeeze"])
def test_compare_sequential_model(squeeze):
    """compare() on a user's 2-layer Linear + LIF sinabs model (stock spike
    functions, float32), input (batch, time, n) as sinabs takes it."""
    net = _net(squeeze=squeeze)
    x = np.random.default_rng(1).uniform(0, 3, (4, 20, 5))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rep = compare(net, x, layout="BTN")
    assert rep.status == "agrees" and rep.worst <= TOL, rep.rows
    assert rep.spike_mismatches == 0
    names = {r.quantity for r in rep.rows}
    assert {"grad:0.weight", "grad:0.bias", "grad:2.weight", "grad:input"} <= names
    if not squeeze:
        assert {"grad:1.tau_mem", "grad:3.tau_mem"} <= names
    assert all(c.rate > 0.02 for c in rep.coverage), rep.coverage
    after = net.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)   # the user's model untouched
    assert net[1].spike_fn is MultiSpike


def test_not_a_sinabs_neuron_is_refused():
    assert not AD.is_neuron(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="expected a sinabs"):
        AD.layer_map(torch.nn.Linear(2, 2))


def test_wrong_gamma_in_a_model_is_detected(monkeypatch):
    """compare() goes through layer_map: gamma = theta instead of alpha theta disagrees."""
    orig = sn.Sinabs.layer_map

    def wrong(self, module):
        m = orig(self, module)
        return m._replace(params=LIFParams(alpha=m.params.alpha, theta=m.params.theta,
                                           gamma=m.params.theta))
    monkeypatch.setattr(sn.Sinabs, "layer_map", wrong)
    rep = compare(_net(), np.random.default_rng(1).uniform(0, 3, (4, 20, 5)), layout="BTN")
    assert not rep.passed


def test_compare_model_with_tau_syn_and_subtract_value():
    """A user's model with a synaptic LIF (tau_syn) and a reset removing a
    constant: both mapped (decay_input, gamma = alpha * subtract_value)."""
    torch.manual_seed(3)
    n1 = sl.LIF(tau_mem=3.0, tau_syn=2.0, spike_fn=MultiSpike)
    n2 = sl.LIF(tau_mem=2.5, reset_fn=MembraneSubtract(subtract_value=0.7), spike_fn=SingleSpike)
    net = torch.nn.Sequential(torch.nn.Linear(5, 8), n1, torch.nn.Linear(8, 4), n2)
    with torch.no_grad():
        net[0].weight.mul_(4.0)
        net[2].weight.mul_(3.0)
        net[2].bias.add_(0.4)
    x = np.random.default_rng(1).uniform(0, 3, (4, 20, 5))
    rep = compare(net, x, layout="BTN")
    assert rep.status == "agrees" and rep.worst <= TOL, rep.rows
    names = {r.quantity for r in rep.rows}
    assert {"grad:1.tau_syn", "grad:1.tau_mem", "grad:3.tau_mem"} <= names
    assert all(c.rate > 0.02 for c in rep.coverage), rep.coverage


@pytest.mark.parametrize("neuron,variant", [
    ("LIFRecurrent", "MultiSpike, rec_connect bias"),
    ("IAFRecurrent", "MaxSpike(2), rec_connect bias"),
    ("ALIFRecurrent", "SingleSpike, rec_connect bias")])
def test_rec_connect_bias_enters_from_the_second_step(neuron, variant):
    """A biased nn.Linear rec_connect (nn.Linear's default): lif_recurrent starts
    from rec_out = 0, so the bias is an input current from step 1 on.  The map
    agrees; the bias from step 0, or none, disagrees; and the module's own
    direct call gives lifgrad's spikes on the same input."""
    from lifgrad.functional import lif_forward
    from lifgrad.verify.common import mapped_input
    b = AD.build(AD.case(neuron, variant))
    m = AD.layer_map(b.module)
    assert callable(m.bias)
    rep = AD.check(b, m)
    assert rep.passed and rep.spike_mismatches == 0
    assert "grad:rec_connect.bias" in {r.quantity for r in rep.rows}
    bias = b.module.rec_connect.bias.detach().numpy()
    for wrong in (m._replace(bias=bias), m._replace(bias=0.0)):
        assert not AD.check(b, wrong).passed
    # the module called directly (no wrapper)
    sn._fresh_state(b.module)
    with torch.no_grad():
        direct = b.module(torch.tensor(b.I).transpose(0, 1)).transpose(0, 1).numpy()
    v, _ = lif_forward(mapped_input(m, b.I), m.params, m.config.replace(dtype="float64",
                                                                        backend="cpu"))
    assert np.array_equal(direct, v) and direct.sum() > 0
    assert type(b.module.rec_connect) is torch.nn.Linear


@pytest.mark.parametrize("neuron,variant", [
    ("LIF", "SingleSpike MembraneReset(reset_value=0.3), tau per neuron"),
    ("IAF", "SingleSpike MembraneReset(reset_value=-0.2)"),
    ("LIFRecurrent", "SingleSpike MembraneReset(reset_value=0.25)"),
    ("ALIF", "SingleSpike MembraneReset(reset_value=0.2)")])
def test_membrane_reset_value_added_to_every_neuron(neuron, variant):
    """MembraneReset(reset_value=r) sets v (n == 0) + r for every neuron (a
    departure from its docstring): lifgrad's zero reset with u_bias = alpha r,
    u_0 = -r.  Agrees; without r, or without r's share in dL/dtau_mem, it
    disagrees; the module's direct call equals lifgrad's spikes."""
    from lifgrad.functional import lif_forward
    from lifgrad.verify.common import mapped_input
    sur = sn.ALIF_SURROGATE if neuron == "ALIF" else sn.DEFAULT_SURROGATE
    b = AD.build(AD.case(neuron, variant, sur))
    m = AD.layer_map(b.module)
    assert m.config.reset == "zero" and m.u0 == -b.module.reset_fn.reset_value
    rep = AD.check(b, m)
    assert rep.status == "agrees" and rep.spike_mismatches == 0, rep.rows
    assert any("every neuron" in n for n in rep.notes)
    no_r = m._replace(params=m.params._replace(u_bias=0.0), u0=None, mem_offset=0.0)
    assert AD.check(b, no_r).status == "disagrees"
    if "tau_mem" in dict(b.module.named_parameters()):
        right = m.param_grads

        def wrong(g, I, tr):                 # r's share u_bias = alpha r left out
            return right(g._replace(u_bias=np.zeros_like(np.asarray(g.u_bias))), I, tr)
        assert [r.quantity for r in AD.check(b, m._replace(param_grads=wrong)).failing] == \
            ["grad:tau_mem"]
    sn._fresh_state(b.module)
    with torch.no_grad():
        direct = b.module(torch.tensor(b.I).transpose(0, 1)).transpose(0, 1).numpy()
    v, _ = lif_forward(mapped_input(m, b.I), m.params,
                       m.config.replace(dtype="float64", backend="cpu"), u0=m.u0)
    assert np.array_equal(direct, v) and direct.sum() > 0


@pytest.mark.parametrize("neuron,variant", [
    ("LIF", "SingleSpike MembraneReset(reset_value=0.3) min_v_mem=0.5"),
    ("LIF", "MultiSpike MembraneReset(reset_value=-0.2) min_v_mem=-0.5, tau_syn"),
    ("ALIF", "SingleSpike MembraneReset(reset_value=0.2) min_v_mem=-0.3"),
    ("LIFRecurrent", "SingleSpike MembraneReset(reset_value=0.25) min_v_mem=0.4")])
def test_membrane_reset_value_with_min_v_mem(neuron, variant):
    """MembraneReset(r) with min_v_mem m: sinabs clips max((n == 0) v + r, m)
    after adding r; in lifgrad's state (sinabs' shifted by -r) that is the
    clip at u_min = m - r before the bias alpha r.  Agrees, the clip acting;
    u_min = m disagrees, and so does a recorded membrane shifted by r before
    the clip instead of after."""
    from lifgrad.verify import common
    sur = sn.ALIF_SURROGATE if neuron == "ALIF" else sn.DEFAULT_SURROGATE
    b = AD.build(AD.case(neuron, variant, sur))
    m = AD.layer_map(b.module)
    r, mv = b.module.reset_fn.reset_value, float(b.module.min_v_mem)
    assert m.config.u_min == pytest.approx(mv - r)
    rep = AD.check(b, m)
    assert rep.status == "agrees" and rep.spike_mismatches == 0, rep.rows
    assert AD.check(b, m._replace(config=m.config.replace(u_min=mv))).status == "disagrees"
    clipped = 1.0 - np.asarray(common.clipped_membrane_mask(
        m._replace(post_reset=True), m.config, *_lifgrad_uv(b, m)))
    assert clipped.mean() > 0.05
    if m.post_reset:                        # the recorded membrane: clip, then shift
        cfg = m.config.replace(dtype="float64", backend="cpu")
        u, v = _lifgrad_uv(b, m)
        A = Bm = np.ones_like(u)
        w = common.reported_membrane(m, cfg, u, v, A, Bm)[0]
        free = common.reported_membrane(m._replace(mem_offset=0.0), cfg.replace(u_min=None),
                                        u, v, A, Bm)[0]
        assert np.abs(w - np.maximum(free + r, mv)).max() < 1e-14
        assert np.abs(w - np.maximum(free + r, mv - r)).max() > 0.1


def _lifgrad_uv(b, m):
    from lifgrad.functional import lif_forward
    from lifgrad.verify.common import mapped_input
    v, tr = lif_forward(mapped_input(m, b.I), m.params,
                        m.config.replace(dtype="float64", backend="cpu"), u0=m.u0)
    return tr.u, tr.v


def test_compare_checks_a_trainable_min_v_mem_that_the_copy_would_hide():
    """sinabs' deep copy drops min_v_mem's requires_grad; compare() restores it
    on its copy, so a trainable min_v_mem's gradient is compared (and agrees)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), _trainable_min_v_mem(
        sl.LIF(tau_mem=2.0, min_v_mem=-0.5)))
    assert not copy.deepcopy(net[1]).min_v_mem.requires_grad
    x = np.random.default_rng(0).normal(0.0, 3.0, (2, 12, 3))
    rep = compare(net, x, layout="BTN")
    rows = {r.quantity: r for r in rep.rows}
    assert "grad:1.min_v_mem" in rows and rep.passed, rep.rows
    assert net[1].min_v_mem.requires_grad and net[1].min_v_mem.grad is None


TRAINABLE_MIN = [(n, v) for n, vs in sn.VARIANTS.items() for v in vs
                 if "trainable min_v_mem" in v]


@pytest.mark.parametrize("neuron,variant", TRAINABLE_MIN)
def test_trainable_min_v_mem(neuron, variant):
    """A trainable min_v_mem (a user's requires_grad_(True); an nn.Parameter
    given to ALIF): dL/dm is lifgrad's dL/du_min (M11), with the clipped
    entries of a recorded post-reset membrane; it agrees, and 10 % off does
    not."""
    sur = sn.ALIF_SURROGATE if neuron == "ALIF" else sn.DEFAULT_SURROGATE
    b = AD.build(AD.case(neuron, variant, sur))
    assert b.module.min_v_mem.requires_grad
    m = AD.layer_map(b.module)
    rep = AD.check(b, m)
    assert rep.status == "agrees" and rep.spike_mismatches == 0, rep.rows
    assert "grad:min_v_mem" in {r.quantity for r in rep.rows}
    right = m.param_grads

    def off(g, I, tr):
        out = right(g, I, tr)
        assert abs(out["min_v_mem"]) > 1e-3
        return dict(out, min_v_mem=out["min_v_mem"] * 0.9)
    assert [r.quantity for r in AD.check(b, m._replace(param_grads=off)).failing] == \
        ["grad:min_v_mem"]


def test_sinabs_float32_initial_state_rounds_the_first_steps_share_of_dl_db0():
    """sinabs makes its states as float32 zeros whatever the layer's dtype, so
    in a float64 ALIF the first step's threshold b0 + adapt_scale b is float32
    and the first step's share of dL/db0 is rounded to float32.  The check
    starts from float64 zeros (and agrees); sinabs' own start differs in
    dL/db0 alone, by float32 rounding (1e-10 .. 1e-7 relative)."""
    b = AD.build(AD.case("ALIF", "SingleSpike trainable b0, adapt_scale", sn.ALIF_SURROGATE))
    assert AD.check(b, AD.layer_map(b.module)).status == "agrees"
    m, A = b.module, torch.tensor(b.A)
    xb = torch.tensor(b.I).transpose(0, 1)

    def grads(own_start):
        sn._fresh_state(m)
        for p in m.parameters():
            p.grad = None
        spk = type(m).forward(m, xb) if own_start else sn._alif_run(m, xb)
        assert spk.dtype == torch.float64 and spk.sum() > 0
        (A * spk.transpose(0, 1)).sum().backward()
        return {n: p.grad.clone() for n, p in m.named_parameters()}
    ours, theirs = grads(False), grads(True)
    assert set(ours) >= {"b0", "adapt_scale", "tau_mem"}
    for name in ours:
        rel = float((ours[name] - theirs[name]).abs().max() / ours[name].abs().max())
        if name == "b0":
            assert 1e-10 < rel < 1e-7, rel
        else:
            assert rel == 0.0, (name, rel)
