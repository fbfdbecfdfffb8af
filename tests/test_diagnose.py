"""lifgrad diagnose (issue 19, item 2): the configuration of a peer model found by
probes, verified, and compared with the module's arguments afterwards.

The zoo test draws peer neurons across the six frameworks from a seed the
search never sees and holds every one to: identified (every factor, and
lifgrad's reading of its arguments contradicted nowhere beyond float32
rounding), verified (lifgrad's cell reproduces spikes, membrane and dL/dI on a
fresh problem), and flagged exactly where its behaviour departs from its
arguments (``lifgrad.diagnose_zoo.expected_departures``, written from the peer
catalog, not from ``lifgrad.diagnose_documented``)."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch and the peers are installed by `make test`")
for _pkg in ("snntorch", "spikingjelly", "norse", "sinabs", "spyx", "rockpool"):
    pytest.importorskip(_pkg, reason="needs the peer frameworks (make peers)")

from lifgrad import diagnose as dg  # noqa: E402
from lifgrad import diagnose_zoo as zoo  # noqa: E402
from lifgrad.diagnose_surrogate import fit, shortest_between  # noqa: E402
from lifgrad import surrogates as sgs  # noqa: E402

pytestmark = pytest.mark.torch

ZOO_SEED = 20261203          # the search code never sees it (it never imports diagnose_zoo)
ZOO_SIZE = 42                # seven per framework


def _deps(layer, kinds=None):
    return {d.factor for d in layer.departures if kinds is None or d.kind in kinds}


# ------------------------------------------------------------------ the zoo

@pytest.mark.slow
def test_zoo_of_random_peer_neurons_identified_verified_and_departures_flagged():
    models = zoo.zoo(ZOO_SIZE, ZOO_SEED)
    assert {m.framework for m in models} == set(zoo.FRAMEWORKS)
    ds = [dg.diagnose(m.module, m.framework, n=m.n) for m in models]
    rows, summary = zoo.score(models, ds)
    bad = [(r["model"], {k: r[k] for k in ("identified", "verified", "departures", "expected",
                                            "mapping", "error")})
           for r in rows if not (r["identified"] and r["verified"] and r["flagged_as_expected"])]
    assert not bad, bad
    assert summary["models"] == ZOO_SIZE
    assert summary["identified"] == summary["verified"] == ZOO_SIZE
    # the zoo has models that depart from their arguments, and each is flagged
    assert summary["with_departures"] >= 8
    assert summary["flagged"] == summary["with_departures"]
    # every verification exercised spikes and the surrogate
    for d in ds:
        cov = d.layers[0].report.coverage[0]
        assert 0.0 < cov.rate < 1.0, d.layers[0].format()


def test_zoo_is_a_function_of_its_seed():
    a = [m.name for m in zoo.zoo(12, 5)]
    b = [m.name for m in zoo.zoo(12, 5)]
    c = [m.name for m in zoo.zoo(12, 6)]
    assert a == b and a != c


def test_search_code_does_not_import_the_zoo():
    import inspect

    from lifgrad import (diagnose_departures, diagnose_documented, diagnose_gradients,
                         diagnose_params, diagnose_probes, diagnose_surrogate)
    for mod in (dg, diagnose_probes, diagnose_gradients, diagnose_surrogate, diagnose_params,
                diagnose_departures, diagnose_documented):
        code = [line for line in inspect.getsource(mod).splitlines()
                if line.lstrip().startswith(("import ", "from "))]
        assert not any("diagnose_zoo" in line for line in code), mod.__name__


# ------------------------------------------------------------------ departures

def _norse(method, alpha, **kw):
    return zoo.build_neuron("norse", "LIFCell", 4, method, {"alpha": alpha}, method=method,
                            alpha=alpha, v_th=0.8, **kw)


def test_norse_super_alpha_is_flagged_as_without_effect():
    d50 = dg.diagnose(_norse("super", 50.0), "norse", n=4).layers[0]
    d100 = dg.diagnose(_norse("super", 100.0), "norse", n=4).layers[0]
    for d in (d50, d100):
        assert d.identified and d.verified, d.format()
        sg = d.cell.surrogate.surrogate
        assert (sg.name, sg.params, sg.scale) == ("fast_sigmoid", (1.0,), 1.0)
        match = next(p for p in d.cell.surrogate.presets if p.name == "norse.super")
        assert match.no_effect == ("alpha",)
    # alpha=50 computes what alpha=100 computes
    assert d50.config_text() == d100.config_text()
    dep = {x.factor: x for x in d50.departures}
    assert dep["surrogate.alpha"].kind == "no effect"
    assert dep["surrogate.alpha"].says == "alpha=50"
    assert dep["surrogate"].kind == "documented" and "k=50" in dep["surrogate"].says
    assert "superspike" in dep["surrogate"].source
    assert "[no effect] surrogate.alpha" in d50.format()


def test_norse_tanh_amplitude_departs_from_its_docstring_unless_alpha_is_2():
    d5 = dg.diagnose(_norse("tanh", 5.0), "norse", n=4).layers[0]
    d2 = dg.diagnose(_norse("tanh", 2.0), "norse", n=4).layers[0]
    assert _deps(d5) == {"surrogate"} and _deps(d2) == set()
    assert d5.cell.surrogate.surrogate == sgs.get("tanh", k=5.0)


def test_spyx_delay_and_rockpool_counts_are_flagged():
    spyx = zoo.build_neuron("spyx", "LIF", 4, "superspike", {"k": 25.0}, beta=0.8,
                            threshold=1.0)
    d = dg.diagnose(spyx, "spyx", n=4).layers[0]
    assert d.identified and d.verified and d.cell.delay_output
    assert _deps(d, {"documented"}) == {"delay_output"}
    rp = zoo.build_neuron("rockpool", "LIFTorch", 4, "StepPWL", {}, tau_mem=4e-3,
                          tau_syn=3e-3, threshold=1.0)
    d = dg.diagnose(rp, "rockpool", n=4).layers[0]
    assert d.identified and d.verified
    assert d.cell.max_spikes is None and d.cell.strict is False and d.cell.strict_determined
    assert _deps(d, {"documented"}) == {"max_spikes", "strict"}
    # its threshold's gradient shows the ratio derivative -(u/theta) phi (M4), and every
    # parameter gradient is a chain rule of lifgrad's, checked on a fresh problem
    assert d.cell.theta_grad == "ratio"
    fits = {p.name: p for p in d.parameters}
    assert set(fits) == {"tau_mem", "tau_syn", "bias", "threshold"}
    assert all(p.reproduced and p.fresh_error < 1e-12 for p in fits.values())
    assert set(fits["tau_mem"].loads) == {"alpha", "gamma"}          # gamma = alpha theta
    assert set(fits["bias"].loads) == {"b_u"} and abs(fits["bias"].loads["b_u"] - 1) < 1e-9


def test_snntorch_scalar_threshold_is_subtracted_in_float32():
    m = zoo.build_neuron("snntorch", "Leaky", 4, "atan", {}, beta=0.9, threshold=0.8)
    d = dg.diagnose(m, "snntorch", n=4).layers[0]
    assert d.identified and d.verified
    g = d.cell.gamma
    assert np.allclose(g, float(np.float32(0.8)), rtol=1e-14, atol=0)
    assert np.all(d.cell.theta == 0.8)
    assert {(x.factor, x.kind) for x in d.departures} == {("gamma", "float32")}


# ------------------------------------------------------------------ the black box

def test_search_never_reads_the_arguments(monkeypatch):
    """The documented argument lies (snnTorch's reset mechanism string says
    'subtract', its buffer still resets to zero): diagnose finds the
    behaviour, and the arguments are read only after the search."""
    import snntorch as snn

    from lifgrad import diagnose_probes
    from lifgrad.verify import adapter
    m = snn.Leaky(beta=0.8, threshold=1.0, reset_mechanism="zero").double()
    m._reset_mechanism = "subtract"           # what the arguments say, not what it runs
    ad = adapter("snntorch")
    assert ad.layer_map(m).config.reset == "subtract"
    phase = {"searching": False}
    real_identify = diagnose_probes.identify

    def spy_identify(box):
        phase["searching"] = True
        try:
            return real_identify(box)
        finally:
            phase["searching"] = False

    def guard(name):
        real = getattr(type(ad), name)

        def wrapped(self, module):
            assert not phase["searching"], f"{name} read during the search"
            return real(self, module)
        return wrapped
    monkeypatch.setattr(dg, "identify", spy_identify)
    for name in ("layer_map", "surrogate_of"):
        monkeypatch.setattr(type(ad), name, guard(name))
    d = dg.diagnose(m, n=4).layers[0]
    assert d.identified and d.verified, d.format()
    assert d.cell.reset == "zero" and np.all(d.cell.u_reset == 0)
    dep = {x.factor: x for x in d.departures}
    assert dep["reset"].kind == "mapping"
    assert (dep["reset"].says, dep["reset"].computed) == ("subtract", "zero")


def test_black_box_is_all_the_search_gets():
    """identify() on a plain callable pair: a NumPy neuron written here."""
    from lifgrad.diagnose_probes import BlackBox, identify

    def run(I, A=None, Bm=None):
        T, B, N = I.shape
        u = np.zeros((B, N))
        spk, mem = np.zeros(I.shape), np.zeros(I.shape)
        for t in range(T):
            u = 0.75 * u + 0.5 * I[t] - (0.7 * spk[t - 1] if t else 0.0)
            spk[t] = u >= 1.5
            mem[t] = u
        return spk, mem

    def grad(I, A, Bm):                          # sigmoid(k=3) surrogate, reset detached
        spk, mem = run(I)
        T = I.shape[0]
        k = 3.0
        s = 1 / (1 + np.exp(-k * (mem - 1.5)))
        phi = k * s * (1 - s)
        ubar = np.zeros_like(I[0])
        dI = np.zeros_like(I)
        for t in reversed(range(T)):
            ubar = Bm[t] + phi[t] * A[t] + 0.75 * ubar
            dI[t] = 0.5 * ubar
        return {"spikes": spk, "mem": mem, "grad:input": dI}

    cell = identify(BlackBox(run, grad, 3))
    assert np.allclose(cell.alpha, 0.75) and np.allclose(cell.c, 0.5)
    assert cell.reset == "subtract" and np.allclose(cell.gamma, 0.7)
    assert np.all(cell.theta == 1.5) and cell.strict is False
    assert cell.detach is True and not cell.unidentified
    assert cell.surrogate.surrogate == sgs.get("sigmoid", k=3.0)


# ------------------------------------------------------------------ nothing reproduces it

def test_a_surrogate_in_no_family_is_a_disagreement_naming_layer_step_neuron():
    import snntorch as snn
    from snntorch import surrogate

    def quartic(input_, grad_input, spikes):
        return grad_input / (1.0 + (2.0 * input_) ** 4)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), snn.Leaky(
        beta=0.9, spike_grad=surrogate.custom_surrogate(quartic), init_hidden=True))
    d = dg.diagnose(net)
    layer = d.layers[0]
    assert layer.layer == "1"
    assert not d.identified and not d.verified
    assert [k for k, _ in layer.cell.unidentified][:1] == ["surrogate"]
    assert layer.report.failing[0].quantity == "grad:input"
    where = layer.where()
    assert "grad:input disagrees in layer '1'" in where
    assert "t=" in where and "n=" in where
    assert "lifgrad's adapter does not map it" in layer.arguments


def test_a_reset_lifgrad_cannot_express_is_named():
    import snntorch as snn
    m = snn.Synaptic(alpha=0.7, beta=0.85, reset_mechanism="zero").double()
    layer = dg.diagnose(m, n=4).layers[0]
    assert not layer.identified and not layer.verified
    assert "reset" in dict(layer.cell.unidentified)
    assert "more than the membrane is reset" in dict(layer.cell.unidentified)["reset"]
    assert "spikes differ" in layer.where() and "t=" in layer.where()


# ------------------------------------------------------------------ models, strictness

def test_torch_and_spyx_models_are_diagnosed_per_layer():
    import snntorch as snn
    net = torch.nn.Sequential(torch.nn.Linear(5, 4), snn.Leaky(beta=0.9, init_hidden=True),
                              torch.nn.Linear(4, 3),
                              snn.Leaky(beta=0.8, threshold=0.5, reset_mechanism="zero",
                                        init_hidden=True, output=True))
    d = dg.diagnose(net)
    assert [x.layer for x in d.layers] == ["1", "3"] and [x.n for x in d.layers] == [4, 3]
    assert d.identified and d.verified
    assert [x.cell.reset for x in d.layers] == ["subtract", "zero"]
    from lifgrad.verify.spyx import _jax
    jax, jnp, nnx, ssn, axn = _jax()
    model = ssn.Sequential(nnx.Linear(5, 4, rngs=nnx.Rngs(0)),
                           ssn.LIF((4,), beta=0.8, rngs=nnx.Rngs(1)),
                           nnx.Linear(4, 3, rngs=nnx.Rngs(2)), ssn.LI((3,), beta=0.9,
                                                                     rngs=nnx.Rngs(3)))
    d = dg.diagnose(model)
    assert [x.layer for x in d.layers] == ["layers.1", "layers.3"]
    assert d.identified and d.verified
    assert d.layers[0].cell.delay_output and d.layers[1].cell.spike_scale == 0.0


@pytest.mark.parametrize("fw,neuron,opts,strict", [
    ("snntorch", "Leaky", dict(beta=0.9, threshold=1.0), True),
    ("spikingjelly", "IFNode", dict(v_threshold=1.0), False),
    ("norse", "LIFBoxCell", dict(v_th=0.63, tau_mem_inv=50.0), True),
    ("sinabs", "IAF", dict(spike_threshold=1.5), False),
])
def test_the_spike_comparison_is_identified_at_u_equal_theta(fw, neuron, opts, strict):
    m = zoo.build_neuron(fw, neuron, 4, None, {}, **opts)
    c = dg.diagnose(m, fw, n=4).layers[0].cell
    assert c.strict is strict and c.strict_determined


# ------------------------------------------------------------------ pieces

def test_shortest_decimal_between_two_floats():
    assert shortest_between(1.1999999999999997, 1.2) == 1.2
    assert shortest_between(0.79999, 0.80001) == 0.8
    assert shortest_between(-0.30000000000000004, -0.29) == -0.3
    assert shortest_between(-1e-16, 1e-16) == 0.0
    assert shortest_between(0.7999999999999999, 0.7999999999999999) == 0.7999999999999999


@pytest.mark.parametrize("preset,params,family", [
    ("snntorch.triangular", dict(threshold=0.8), "sign_step"),
    ("spikingjelly.Rect", dict(alpha=1.7), "rect_open"),
    ("snntorch.SFS", dict(slope=25.0, B=0.37), "sparse_fast_sigmoid"),
    ("sinabs.MultiGaussian", dict(sigma=0.5, h=0.15, s=4.0), "multi_gaussian"),
])
def test_surrogate_fit_recovers_family_edge_and_preset(preset, params, family):
    g = np.logspace(-4, np.log10(6), 63)
    x = np.concatenate([-g[::-1], [0.0], g])
    v = (x >= 0).astype(float)
    s = sgs.get(preset, **params)

    def measure(xs):
        vv = (xs >= 0).astype(float)
        return s.phi(xs, vv), vv
    f = fit(x, v, s.phi(x, v), measure=measure, prefer=preset.split(".")[0])
    assert f.exact and f.surrogate.name == family
    xr = np.random.default_rng(0).uniform(-3, 3, 5000)
    vr = (xr >= 0).astype(float)
    assert np.max(np.abs(f.surrogate.phi(xr, vr) - s.phi(xr, vr))) <= 1e-10 * np.max(
        np.abs(s.phi(xr, vr)))
    m = f.presets[0]
    assert m.name == preset and all(abs(m.params[k] - v_) <= 1e-9 * abs(v_)
                                    for k, v_ in params.items())


def test_diagnosis_to_dict_is_json():
    m = zoo.build_neuron("spikingjelly", "LIFNode", 3, "ATan", {"alpha": 2.0}, tau=2.0,
                         v_reset=None, detach_reset=True)
    d = dg.diagnose(m, "spikingjelly", n=3)
    out = json.loads(json.dumps(d.to_dict()))
    layer = out["layers"][0]
    assert out["identified"] and out["verified"]
    assert layer["config"]["reset"] == "subtract" and layer["config"]["detach_reset"] is True
    assert layer["config"]["surrogate"]["family"] == "atan"
    assert layer["verification"]["status"] == "agrees"


def test_cli_diagnose_a_described_neuron_and_a_small_zoo(capsys):
    from lifgrad.cli import main
    code = main(["diagnose", "--framework", "snntorch", "--neuron", "Leaky", "--option",
                 "beta=0.9", "--option", "reset_mechanism='zero'", "--surrogate", "fast_sigmoid",
                 "--surrogate-option", "slope=10", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["exit_code"] == 0
    cfg = out["targets"][0]["layers"][0]["config"]
    assert cfg["reset"] == "zero" and cfg["surrogate"]["family"] == "fast_sigmoid"
    code = main(["diagnose", "--zoo", "3", "--seed", "5", "--frameworks",
                 "snntorch,spikingjelly,sinabs"])
    text = capsys.readouterr().out
    assert code == 0 and "3 models (seed 5): 3 identified, 3 verified" in text
    assert main(["diagnose", "--framework", "snntorch", "--neuron", "NoSuchNeuron"]) == 2


@pytest.mark.torch
def test_cli_report_draws_the_identified_surrogate_against_the_documented_one(tmp_path):
    pytest.importorskip("norse")
    from lifgrad import cli
    out = tmp_path / "rep"
    code = cli.main(["diagnose", "--framework", "norse", "--neuron", "LIFCell",
                     "--option", "method='super'", "--option", "alpha=50",
                     "--report", str(out)])
    assert code == 0
    text = (out / "report.md").read_text()
    assert "# lifgrad diagnose" in text and "norse LIFCell" in text
    # the figure's three curves: identified (alpha has no effect), the arguments'
    # preset, and the formula Norse documents (which the code does not compute)
    assert "surrogate_0.png" in text and (out / "figures" / "surrogate_0.png").exists()
    from lifgrad.diagnose import diagnose
    from lifgrad.diagnose_report import surrogate_curves
    from lifgrad.diagnose_zoo import build_neuron
    from lifgrad.verify.protocol import adapter
    m = build_neuron("norse", "LIFCell", 4, None, {}, method="super", alpha=50)
    d = diagnose(m, "norse", n=4)
    labels = [lab for lab, _ in surrogate_curves(d.layers[0], adapter("norse"), m)]
    assert labels[0].startswith("identified: ") and "the arguments: norse.super" in labels[1]
    assert labels[2].startswith("the documentation: ")
    x = np.linspace(-1, 1, 11)
    phis = [f(x) for _, f in surrogate_curves(d.layers[0], adapter("norse"), m)]
    assert np.allclose(phis[0], phis[1]) and not np.allclose(phis[0], phis[2])
