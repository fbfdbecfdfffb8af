"""Reports on disk (lifgrad.verify.report), error over time, and the arbiter
of two backends (lifgrad.verify.backends)."""
import os

import numpy as np
import pytest

from lifgrad.gradcheck import normwise_rel
from lifgrad.verify import report as rep
from lifgrad.verify.common import (AGREES, DISAGREES, CaseReport, Row, compare,
                                   error_over_time)


# ---------------------------------------------------------------- error over time

def test_error_over_time_resolves_the_normwise_error_in_time():
    rng = np.random.default_rng(0)
    b = rng.normal(size=(7, 3, 4))
    a = b.copy()
    a[4, 1, 2] += 1e-6
    a[6, 0, 0] -= 3e-9
    err = error_over_time(a, b)
    assert err.shape == (7,)
    assert np.all(err[[0, 1, 2, 3, 5]] == 0)
    assert err[4] > err[6] > 0
    # its largest value is the relative error judge() reports
    assert err.max() == pytest.approx(normwise_rel(a, b)[1], rel=1e-12)


def test_error_over_time_flags_nan_steps_and_refuses_other_shapes():
    b = np.ones((5, 2))
    a = b.copy()
    a[3, 1] = np.nan
    err = error_over_time(a, b)
    assert np.isnan(err[3]) and np.all(err[[0, 1, 2, 4]] == 0)
    with pytest.raises(ValueError, match="one shape"):
        error_over_time(np.ones((5, 2)), np.ones((4, 2)))


def test_compare_keeps_the_profiles_of_time_quantities():
    rng = np.random.default_rng(1)
    g = rng.normal(size=(6, 2, 3))
    peer = {"spikes": np.zeros((6, 2, 3)), "mem": g, "grad:input": g, "grad:w": g[0]}
    ours = dict(peer, **{"grad:input": g + np.where(np.arange(6)[:, None, None] == 2, 1e-3, 0)})
    r = compare("fw", "n", "v", "s", peer, ours)
    prof = dict(r.profiles)
    assert set(prof) == {"mem", "grad:input"}          # grad:w has no time axis
    assert np.argmax(prof["grad:input"]) == 2 and prof["mem"].max() == 0


# ---------------------------------------------------------------- report.write

def _fake(status_bad=False, framework="fw"):
    err = np.array([0.0, 1e-16, 2e-15, 1e-3 if status_bad else 0.0])
    rows = [Row("grad:input", 1e-3 if status_bad else 2e-15, 1e-3 if status_bad else 2e-15,
                DISAGREES if status_bad else AGREES, "at t=3, b=0, n=1: framework 1, lifgrad 2"
                if status_bad else "")]
    return CaseReport(framework, "Leaky", "bad" if status_bad else "good", "fw.atan", 0, rows,
                      ("a documented departure",), (), "", "", (("grad:input", err),))


def test_report_writes_markdown_and_figures(tmp_path):
    out = tmp_path / "r"
    path = rep.write([_fake(), _fake(True), _fake(framework="other")], out, title="T",
                     command="lifgrad verify x", seconds=1.5,
                     sections=(rep.Section("Extra", "extra text"),))
    text = open(path).read()
    assert path == os.path.join(out, "report.md")
    assert "3 cases: 2 pass" in text and "1 disagree" in text
    assert "`grad:input` disagrees, relative 1.00e-03" in text and "t=3, b=0, n=1" in text
    assert "[fw] a documented departure" in text and "## Extra" in text
    for fig in ("worst.png", "time_fw.png", "time_other.png"):
        f = out / "figures" / fig
        assert f.exists() and f.read_bytes()[:4] == b"\x89PNG", fig
        assert f"figures/{fig}" in text
    assert not [p for p in out.rglob("*.tmp")]          # written whole, renamed


def test_report_refuses_a_file_as_folder(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ValueError, match="out_dir: .* not a folder"):
        rep.write([_fake()], f)


def test_surrogate_figure(tmp_path):
    p = rep.surrogate_figure([("identified", lambda x: 1 / (1 + np.abs(x)) ** 2),
                              ("samples", (np.linspace(-1, 1, 5), np.ones(5)))],
                             tmp_path / "s.png")
    assert open(p, "rb").read(4) == b"\x89PNG"


# ---------------------------------------------------------------- with the peers

@pytest.mark.torch
def test_model_report_has_an_error_profile_per_layer(tmp_path):
    torch = pytest.importorskip("torch")
    snn = pytest.importorskip("snntorch")
    from lifgrad import verify
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 8), snn.Leaky(beta=0.9, init_hidden=True),
                              torch.nn.Linear(8, 4),
                              snn.Leaky(beta=0.8, init_hidden=True, output=True))
    x = np.random.default_rng(0).uniform(0, 1, (12, 3, 5))
    r = verify.compare(net, x)
    prof = dict(r.profiles)
    assert {"1: dL/d(input)", "3: dL/d(input)", "grad:input", "mem"} <= set(prof)
    assert all(p.shape == (12,) for p in prof.values())
    # the last layer's input gradient is float64 on both sides; the first one's
    # passes snnTorch's float32 spike of layer 1 (its documented limit)
    assert prof["3: dL/d(input)"].max() < 1e-12
    assert prof["grad:input"].max() == pytest.approx(
        next(q.max_rel for q in r.rows if q.quantity == "grad:input"), rel=1e-9)
    path = rep.write([r], tmp_path)
    assert (tmp_path / "figures" / "layers_0.png").exists()
    assert "relative error per layer over time" in open(path).read()


@pytest.mark.torch
def test_cli_verify_report(tmp_path):
    pytest.importorskip("sinabs")
    from lifgrad import cli
    code = cli.main(["verify", "sinabs", "--quick", "--report", str(tmp_path / "rep")])
    assert code == 0
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "lifgrad verify sinabs" in text and "| sinabs |" in text
    assert (tmp_path / "rep" / "figures" / "time_sinabs.png").exists()


@pytest.fixture(scope="module")
def rockpool_pairs():
    pytest.importorskip("rockpool")
    pytest.importorskip("jax")
    pytest.importorskip("torch")
    from lifgrad.verify import backends
    return backends.run(["rockpool"])


@pytest.mark.torch
def test_backends_rockpool_torch_and_jax_agree_with_lifgrad(rockpool_pairs):
    from lifgrad.verify.protocol import adapter
    assert [p.variant for p in rockpool_pairs] == list(adapter("rockpool").backend_variants)
    for p in rockpool_pairs:
        assert p.passed, (p.variant, p.verdicts)
        assert p.backends == ("LIFTorch", "LIFJax")
        assert p.a.worst < 1e-13                 # LIFTorch in float64
        # LIFJax rounds its input to float32: its dL/dinput within that limit, and
        # the two backends differ by exactly that much
        lim = {q.quantity: q for q in p.b.rows}["grad:input"]
        assert lim.status == "agrees within a precision limit" and lim.max_rel < 1e-6
        assert p.ab.worst == pytest.approx(lim.max_rel, rel=0.5)
        assert {"grad:tau_mem", "grad:tau_syn", "grad:threshold", "grad:bias"} <= set(p.verdicts)


@pytest.mark.torch
def test_backends_name_the_backend_that_departs(monkeypatch):
    pytest.importorskip("rockpool")
    pytest.importorskip("jax")
    from lifgrad.verify import backends
    from lifgrad.verify.protocol import adapter
    ad = adapter("rockpool")
    orig = type(ad).peer_gradients

    def planted(self, built):                     # LIFJax's tau_syn gradient 1% off
        out = orig(self, built)
        if type(built.module).__name__ == "LIFJax":
            out["grad:tau_syn"] = out["grad:tau_syn"] * 1.01
        return out
    monkeypatch.setattr(type(ad), "peer_gradients", planted)
    p = backends.arbitrate("rockpool", "defaults")
    assert not p.passed
    assert p.verdicts["grad:tau_syn"] == "LIFJax departs"
    assert p.verdicts["grad:tau_mem"] == "both agree with lifgrad"
    assert "LIFJax departs" in backends.format_pairs([p])


@pytest.mark.torch
def test_backends_gpu_pairs_say_why_they_cannot_run():
    torch = pytest.importorskip("torch")
    pytest.importorskip("spikingjelly")
    pytest.importorskip("sinabs")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    from lifgrad.verify import backends
    pairs = {p.framework: p for p in backends.run(["spikingjelly", "sinabs"])}
    for fw in ("spikingjelly", "sinabs"):
        assert pairs[fw].status == "cannot run" and "NVIDIA GPU" in pairs[fw].unavailable
    assert "cannot run here" in backends.format_pairs(list(pairs.values()))
