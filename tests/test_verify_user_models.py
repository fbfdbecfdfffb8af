"""lifgrad.verify on models as users write them (issue 16): honest verdicts,
the model left as it was, tutorial-style modules, coverage, the CLI."""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch and the peers are installed by `make test`")
pytestmark = pytest.mark.torch

from lifgrad.verify import (AGREES, DISAGREES, LIMITED, NOT_APPLICABLE, CaseReport,  # noqa: E402
                            Row, compare, format_reports)
from lifgrad.verify.common import judge  # noqa: E402


def _x(T=25, B=8, n=20, seed=0, scale=1.0):
    return scale * np.random.default_rng(seed).uniform(0, 1, (T, B, n))


def _snn_seq(**kw):
    import snntorch as snn
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(20, 16), snn.Leaky(beta=0.9, **kw),
                               torch.nn.Linear(16, 4), snn.Leaky(beta=0.8, **kw))


class TutorialNet(torch.nn.Module):
    """The snnTorch tutorials' style: the model loops over time itself."""

    def __init__(self, static=False):
        import snntorch as snn
        super().__init__()
        torch.manual_seed(0)
        self.static = static
        self.fc1, self.lif1 = torch.nn.Linear(20, 16), snn.Leaky(beta=0.9)
        self.fc2, self.lif2 = torch.nn.Linear(16, 4), snn.Leaky(beta=0.8)

    def forward(self, x, num_steps=25):
        mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
        spk_rec, mem_rec = [], []
        for step in range(num_steps):
            cur1 = self.fc1(x if self.static else x[step])
            spk1, mem1 = self.lif1(cur1, mem1)
            spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
            spk_rec.append(spk2)
            mem_rec.append(mem2)
        return torch.stack(spk_rec), torch.stack(mem_rec)


# --- false FAILs ------------------------------------------------------------

def test_repeated_calls_give_the_same_report():
    """compare() used to accumulate into the model's .grad: 8.8e-9, 0.50, 0.67."""
    model = _snn_seq()
    reps = [compare(model, _x()) for _ in range(3)]
    assert reps[0].rows == reps[1].rows == reps[2].rows
    assert all(r.passed for r in reps)


def test_saturated_neurons_are_not_a_disagreement():
    """SpikingJelly's Sigmoid derivative (1 - s) s a loses every digit where s
    rounds to 1; the absolute floor sees that such differences are rounding."""
    from spikingjelly.activation_based import neuron
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(20, 16), neuron.LIFNode(tau=2.0, step_mode="m"))
    with torch.no_grad():
        model[0].weight.mul_(40.0)
        model[0].bias.fill_(40.0)
    rep = compare(model, _x(T=10, B=4))
    assert rep.status == AGREES, format_reports([rep])
    # the floor did the work: gradients differ in relative terms beyond TOL, by ~1e-14
    from lifgrad.verify import TOL
    assert any(r.max_rel > 10 * TOL and r.max_abs < 1e-12 for r in rep.rows), rep.rows
    assert any("fired at every step" in w for w in rep.warnings)


def test_out_of_domain_snntorch_model_does_not_apply():
    """reset_delay=False, subtract: a post-reset membrane above threshold makes
    snnTorch subtract twice, which lifgrad's cell cannot express."""
    import snntorch as snn
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(20, 16),
                                snn.Leaky(beta=0.9, reset_delay=False, reset_mechanism="subtract"))
    rep = compare(model, _x(scale=6.0))
    assert rep.status == NOT_APPLICABLE and "subtracts the threshold a second time" in \
        rep.out_of_domain
    assert not rep.passed
    ok = compare(model, _x(scale=0.3))            # small inputs: inside the domain
    assert ok.status in (AGREES, LIMITED), format_reports([ok])


def test_float32_spike_rounding_is_a_named_limit_not_a_failure():
    rep = compare(_snn_seq(), _x())
    assert rep.status == LIMITED and rep.spike_mismatches == 0
    limited = {r.quantity for r in rep.rows if r.status == LIMITED}
    assert "grad:0.weight" in limited and all(r.limit == "float32 spike" for r in rep.rows
                                              if r.status == LIMITED)
    assert {r.status for r in rep.rows if r.quantity == "grad:2.weight"} == {AGREES}
    assert not any("0-dim threshold" in n for n in rep.notes)   # irrelevant here


def test_a_wrong_gradient_still_disagrees_and_says_where():
    a = np.zeros((3, 2, 4))
    b = a.copy()
    b[1, 0, 2] = 0.5
    r = judge("grad:input", a, b, atol=1e-12, layout=("t", "b", "n"))
    assert r.status == DISAGREES and "t=1, b=0, n=2" in r.where and "0.5" in r.where


def test_nan_always_disagrees_and_prints_as_nan():
    rows = [Row("a", 1e-17, 1e-16), Row("b", float("nan"), float("nan"), DISAGREES),
            Row("c", 1e-17, 2e-16)]
    rep = CaseReport("x", "y", "z", "-", 0, rows)
    assert np.isnan(rep.worst) and not rep.passed and rep.status == DISAGREES
    assert "nan" in format_reports([rep]).splitlines()[1]
    r = judge("g", np.array([1.0, np.nan]), np.array([1.0, 2.0]), atol=1.0)
    assert r.status == DISAGREES and r.where.startswith("NaN")


# --- nothing tested -----------------------------------------------------------

def test_silent_model_warns_that_it_tested_little():
    """The README's old SpikingJelly example fired no spike in either layer."""
    from spikingjelly.activation_based import neuron, surrogate
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(20, 16), neuron.LIFNode(tau=2.0, surrogate_function=surrogate.ATan(),
                                                step_mode="m"),
        torch.nn.Linear(16, 4), neuron.LIFNode(tau=2.0, detach_reset=True, step_mode="m"))
    rep = compare(model, _x())
    assert rep.coverage and all(c.rate == 0.0 for c in rep.coverage)
    assert any("no neuron fired" in w and "scale the input up" in w for w in rep.warnings)
    assert "warning" in format_reports([rep])


def test_norse_parameter_tuple_values_are_compared():
    from norse.torch import LIFBoxCell, LIFBoxParameters
    torch.manual_seed(1)
    p = LIFBoxParameters(tau_mem_inv=torch.tensor(100.0, dtype=torch.float64),
                         v_th=torch.nn.Parameter(torch.tensor(0.5, dtype=torch.float64)))
    model = torch.nn.Sequential(torch.nn.Linear(20, 8), LIFBoxCell(p))
    rep = compare(model, 30 * _x())
    rows = {r.quantity: r for r in rep.rows}
    assert "grad:1.p.v_th" in rows and rows["grad:1.p.v_th"].status == AGREES
    assert rep.passed, format_reports([rep])
    assert p.v_th.grad is None                    # the user's parameter untouched


# --- the model is left as it was ---------------------------------------------------

def test_the_model_is_left_exactly_as_it_was():
    import snntorch as snn
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(20, 6),
                                snn.RLeaky(beta=0.9, linear_features=6, all_to_all=True))
    model.train()
    x32 = torch.tensor(_x(n=20), dtype=torch.float32)
    model[0].weight.grad = torch.ones_like(model[0].weight)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    hooks = [(m._forward_pre_hooks.copy(), m._forward_hooks.copy()) for m in model.modules()]
    rep = compare(model, x32)
    assert rep.spike_mismatches == 0 and rep.passed, format_reports([rep])
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert torch.equal(model[0].weight.grad, torch.ones_like(model[0].weight))
    assert model[1].recurrent.weight.grad is None
    assert [(m._forward_pre_hooks, m._forward_hooks) for m in model.modules()] == hooks
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.training
    model[1].reset_mem()
    model[1](model[0](x32[0]))                    # the user's next float32 forward still runs


# --- models as users write them ----------------------------------------------------

def test_tutorial_style_module_is_checked():
    net = TutorialNet()
    rep = compare(net, _x())
    assert rep.passed and rep.spike_mismatches == 0, format_reports([rep])
    assert {"grad:fc1.weight", "grad:fc2.bias", "grad:input"} <= {r.quantity for r in rep.rows}
    # the same model run through a Sequential gives the same numbers
    seq = torch.nn.Sequential(net.fc1, net.lif1, net.fc2, net.lif2)
    rs = compare(seq, _x())
    assert rs.passed and len(rs.rows) == len(rep.rows)
    assert rs.spike_mismatches == 0 and [c.rate for c in rs.coverage] == \
        [c.rate for c in rep.coverage]


def test_tutorial_style_with_a_static_input():
    """The same x at every step: dL/dx sums the steps (autograd maps lifgrad's
    dL/dI back to x through whatever the model did to it)."""
    net = TutorialNet(static=True)
    rep = compare(net, _x()[0])
    assert rep.passed, format_reports([rep])
    assert [r for r in rep.rows if r.quantity == "grad:input"][0].status in (AGREES, LIMITED)


def test_flatten_and_dropout_are_checked():
    import snntorch as snn
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(20, 16),
                                snn.Leaky(beta=0.9, init_hidden=True), torch.nn.Dropout(0.3),
                                torch.nn.Linear(16, 4), snn.Leaky(beta=0.8, init_hidden=True))
    rep = compare(model, _x().reshape(25, 8, 4, 5))
    assert rep.passed and rep.spike_mismatches == 0, format_reports([rep])
    assert any("Dropout" in n for n in rep.notes)
    assert model[3].training                      # the user's Dropout still in training mode


def test_layout_btn_is_read_time_second():
    model = _snn_seq()
    x = _x(T=25, B=8)
    a = compare(model, x)
    b = compare(model, np.swapaxes(x, 0, 1), layout="BTN")
    assert a.rows == b.rows


def test_input_tensor_with_requires_grad_is_accepted():
    x = torch.tensor(_x(), requires_grad=True)
    rep = compare(_snn_seq(), x)
    assert rep.passed and x.grad is None


def test_unsupported_neurons_are_refused_before_anything_runs():
    import snntorch as snn
    calls = []
    lin = torch.nn.Linear(4, 4)
    lin.register_forward_hook(lambda *a: calls.append(1))
    for neu, why in ((snn.Alpha(alpha=0.9, beta=0.8), "second-order"),
                     (snn.Lapicque(beta=0.9), "Lapicque"),
                     (snn.RSynaptic(alpha=0.9, beta=0.8, linear_features=4), "RSynaptic")):
        with pytest.raises(ValueError, match=why):
            compare(torch.nn.Sequential(lin, neu), np.zeros((3, 2, 4)))
    assert not calls


def test_skip_connections_are_refused_with_a_reason():
    import snntorch as snn

    class Skip(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.lif1 = torch.nn.Linear(4, 4), snn.Leaky(beta=0.9)
            self.fc2, self.lif2 = torch.nn.Linear(4, 4), snn.Leaky(beta=0.9)

        def forward(self, x):
            m1, m2 = self.lif1.init_leaky(), self.lif2.init_leaky()
            for t in range(x.shape[0]):
                s1, m1 = self.lif1(self.fc1(x[t]), m1)
                s2, m2 = self.lif2(self.fc2(s1) + x[t], m2)
            return s2
    with pytest.raises(ValueError, match="is not the output of fc2"):
        compare(Skip(), _x(n=4, T=5))


# --- CLI -----------------------------------------------------------------------

def test_cli_missing_framework_exits_2(monkeypatch, capsys):
    import sys

    from lifgrad import cli
    monkeypatch.setitem(sys.modules, "spikingjelly", None)
    assert cli.main(["verify", "spikingjelly"]) == 2
    assert "spikingjelly is not installed" in capsys.readouterr().err


def test_cli_checks_a_users_model_file(tmp_path, capsys):
    from lifgrad import cli
    f = tmp_path / "mynet.py"
    f.write_text(
        "import torch\nimport snntorch as snn\n"
        "def make():\n    torch.manual_seed(0)\n"
        "    return torch.nn.Sequential(torch.nn.Linear(6, 5), snn.Leaky(beta=0.9))\n"
        "def bad():\n    return torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU())\n")
    assert cli.main(["verify", f"{f}:make", "--shape", "20", "4", "6", "--scale", "2"]) == 0
    out = capsys.readouterr().out
    assert "agrees" in out and "rate" in out
    assert cli.main(["verify", f"{f}:bad", "--shape", "20", "4", "6"]) == 2
    assert "ReLU is not a layer" in capsys.readouterr().err
    assert cli.main(["verify", f"{f}:make"]) == 2                 # no input given
    np.save(tmp_path / "x.npy", _x(T=20, B=4, n=6, scale=2.0))
    assert cli.main(["verify", f"{f}:make", "--input", str(tmp_path / "x.npy"), "--json"]) == 0


def test_table_columns_stay_aligned_with_long_names():
    rows = [Row("grad:a", 0.0, 0.0)]
    reps = [CaseReport("snntorch", "Leaky", "v" * 50, "s", 0, rows),
            CaseReport("norse", "LIFCell", "short", "s" * 40, 0, rows)]
    lines = format_reports(reps, details=False).splitlines()[:3]
    assert len({ln.index("agrees") if "agrees" in ln else ln.index("status") for ln in lines}) == 1


# --- the example's table: 31 models in the tutorials' styles ----------------------

def test_every_example_model_gets_its_expected_verdict():
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).resolve().parents[1] / "examples" / "verify_user_models.py"
    spec = importlib.util.spec_from_file_location("verify_user_models", path)
    ex = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ex)
    assert len(ex.MODELS) >= 30
    got = {name: ex.check(name) for name in ex.MODELS}
    wrong = {n: (g[0], g[4]) for n, g in got.items() if g[0] != ex.EXPECTED[n]}
    assert not wrong, wrong
    # models that ran fired spikes in every layer (the check exercised them)
    silent = {n: g[2] for n, g in got.items() if g[0] not in ("cannot run",)
              and any(float(r) == 0.0 for r in g[2].split(", "))}
    assert not silent, silent
