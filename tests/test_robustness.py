"""The float32 robustness sweep (issue 19, item 3): lifgrad's phi and G never
give NaN or Inf for any preset over |x| <= 1e4 and a wide range of each
preset's parameter; a known peer failure (snnTorch's sigmoid surrogate,
snnTorch issue #427) is detected where it really is; the table formatter."""
import json
import subprocess
import sys

import numpy as np
import pytest

from lifgrad import surrogates as sgs
from lifgrad.verify import robustness as R


def test_lifgrad_never_gives_nan_or_inf_for_any_preset():
    rows = R.float32_sweep(peers=False)                  # every preset, the full grid
    assert {r.preset for r in rows} == set(sgs.PRESETS)
    assert R.lifgrad_finite(rows)
    run = [r for r in rows if not r.skipped]
    assert len(run) > 400
    for r in run:
        pre = sgs.preset(r.preset)
        has_G = pre.surrogate(**({r.param: r.value} if r.param else {})).has_primitive
        want = {"phi ref", "phi kernel", "phi numpy"} | (
            {"G ref", "G kernel", "G numpy"} if has_G else set())
        assert set(r.lifgrad) == want, r.preset
        for c in r.lifgrad.values():
            assert c.n > 30000 and c.nan == c.inf == c.overflow == 0, (r.preset, r.value, c)
        # the compiled kernel and the reference round the same float64 value
        assert r.lifgrad["phi kernel"] == r.lifgrad["phi ref"], (r.preset, r.value)
        if has_G:
            assert r.lifgrad["G kernel"] == r.lifgrad["G ref"], (r.preset, r.value)
    # the swept values: log-spaced 1e-2 .. 1e3 plus the default; refused ones skipped
    sig = [r.value for r in rows if r.preset == "snntorch.sigmoid"]
    assert min(sig) == 1e-2 and max(sig) == 1e3 and 25.0 in sig
    skipped = {(r.preset, r.value) for r in rows if r.skipped}
    assert ("spikingjelly.QPseudoSpike", 1e-2) in skipped                # alpha must be > 1


def test_lifgrad_flushes_subnormals_to_zero():
    """lifgrad rounds a float64 value once to float32 and flushes a value
    below float32's smallest normal number to 0 (sigmoid k = 25: 25 exp(-25
    |x|) is subnormal for 3.62 < |x| < 4.27) on every path: reference, the
    compiled kernel, Surrogate.phi; the counter itself sees subnormals."""
    rows = R.float32_sweep(presets=["snntorch.sigmoid"], values=[25.0], peers=False)
    for c in rows[0].lifgrad.values():
        assert c.finite and c.denormal == 0, c
    x = np.array([-1.0, -3.8, -6.0], np.float32)
    phi = sgs.get("snntorch.sigmoid").phi(x)
    assert phi[0] > np.finfo(np.float32).tiny and phi[1] == 0.0 and phi[2] == 0.0
    assert 0 < 25 * np.exp(-25 * 3.8) < np.finfo(np.float32).tiny       # it would be one
    k = R.count(np.array([np.nan, np.inf, -np.inf, 1e-40, -1e-40, 0.0, 1.0], np.float32),
                np.array([3.0, -2.0, 1.0, 0.5, -0.25, 0.0, 9.0]))
    assert (k.nan, k.inf, k.overflow, k.denormal) == (1, 2, 2, 2)
    assert (k.first_kind, k.first_x) == ("NaN", 3.0)
    k = R.count(np.array([0.0, 1e-40, 2e-40], np.float32), np.array([0.0, -7.0, 5.0]))
    assert (k.first_kind, k.first_x) == ("denormal", 5.0)          # the smallest |x|


def test_x_grid():
    x = R.x_grid(1e4)
    assert x[0] == -1e4 and x[-1] == 1e4 and 0.0 in x and np.all(np.diff(x) > 0)
    assert np.all(x.astype(np.float32).astype(np.float64) == x)      # float32 values
    assert np.min(np.abs(x[x != 0])) < 1e-7
    assert np.max(np.diff(x[np.abs(x) <= 10])) <= 0.0051             # fine near theta
    with pytest.raises(ValueError, match="x_max"):
        R.x_grid(float("inf"))


@pytest.mark.torch
def test_snntorch_sigmoid_nan_below_threshold_is_detected():
    """snnTorch issue #427: slope * exp(-slope x) / (exp(-slope x) + 1)^2
    overflows.  In snnTorch 1.0.0, float32, slope 25 the gradient is NaN for
    every x below -3.4201586 = -ln(FLT_MAX / 25) / 25 (the product
    25 exp(-25 x) overflows first, a little before exp itself at x = -3.55),
    and in float64 below -28.26; lifgrad's phi is finite (and 0) there."""
    pytest.importorskip("torch")
    pytest.importorskip("snntorch")
    from lifgrad.verify.surrogate_calls import peer_backward
    rows = R.float32_sweep(presets=["snntorch.sigmoid"], values=[25.0, 1e3])
    by = {r.value: r for r in rows}
    d = by[25.0]
    assert d.default and d.peer is not None and d.peer.nan > 0
    assert d.peer.first_kind == "NaN" and -3.43 < d.peer.first_x <= -3.42
    assert d.lifgrad["phi ref"].finite and d.lifgrad["phi kernel"].finite
    assert by[1e3].peer.first_kind == "NaN" and -0.09 < by[1e3].peer.first_x < -0.08
    # the edge, to the float32 ulp
    edge = np.array([-3.4201583862304688, -3.420158624649048])
    g = peer_backward("snntorch.sigmoid", edge, {}, "float32").grad
    assert np.isfinite(g[0]) and np.isnan(g[1])
    g64 = peer_backward("snntorch.sigmoid", np.array([-28.26, -28.27]), {}, "float64").grad
    assert np.isfinite(g64[0]) and np.isnan(g64[1])
    from lifgrad.reference import surrogate_phi
    s = sgs.get("snntorch.sigmoid")
    x = np.float32([-3.43, -5.0, -1e4])
    x43 = float(x[0])
    want = 25 * np.exp(25 * x43) / (1 + np.exp(25 * x43)) ** 2
    phi = surrogate_phi(x, np.zeros_like(x), s.kernel_args())    # float64, rounded once
    np.testing.assert_allclose(phi[0], want, rtol=1e-7)           # finite where snnTorch's is NaN
    assert phi[1] == phi[2] == 0.0                    # 25 exp(-125) is below every float32
    phi = s.phi(x)                                    # NumPy in float32
    np.testing.assert_allclose(phi[0], want, rtol=1e-5)
    assert phi[1] == phi[2] == 0.0
    # the table says so
    table = R.format_table(rows)
    line = next(ln for ln in table.splitlines() if "snntorch.sigmoid" in ln)
    assert "NaN at x=-3.42 (slope=25, default)" in line


def _row(preset, value, default, lif, peer=None, note=None, skipped=None, param="alpha"):
    return R.SweepRow(preset.split(".")[0], preset, param, value, default, skipped,
                      lif, peer, note)


def test_format_table():
    c0 = R.Counts(100, 0, 0, 0, 0, None, None)
    den = R.Counts(100, 0, 0, 0, 3, -4.0, "denormal")
    den2 = R.Counts(100, 0, 0, 0, 2, 4.5, "denormal")
    nan = R.Counts(100, 7, 0, 0, 1, -3.5, "NaN")
    nan2 = R.Counts(100, 9, 2, 2, 0, -0.1, "NaN")
    rows = [
        _row("fw.a", 1.0, True, {"phi ref": den, "phi kernel": den, "phi numpy": den2}, nan),
        _row("fw.a", 100.0, False, {"phi ref": c0, "phi kernel": c0, "phi numpy": c0}, nan2),
        _row("fw.a", 0.01, False, {}, skipped="parameter a must be > 1, got 0.01"),
        _row("gw.b", 2.0, True, {"phi ref": c0, "phi kernel": c0, "G ref": c0, "G kernel": den},
             None, "gw not installed"),
    ]
    t = R.format_table(rows)
    lines = t.splitlines()
    assert lines[0].startswith("| framework | preset | swept (values) | lifgrad phi |")
    assert lines[1] == "|" + "---|" * 8
    a = lines[2].split(" | ")
    assert a[0] == "| fw" and a[1] == "fw.a"
    assert a[2] == "alpha 1..100 (2); default alpha=1"
    assert a[3] == "0/0/0/3 (numpy 0/0/0/2)" and a[4] == "n/a"
    assert a[5] == "16/2/2/1"
    assert a[6] == "NaN at x=-3.5 (alpha=1, default); NaN at x=-0.1 (alpha=100)"
    assert a[7] == "denormal at x=-4 (alpha=1, default) |"
    b = lines[3].split(" | ")
    assert b[3] == "0/0/0/0" and b[4] == "0/0/0/0 (kernel 0/0/0/3)"
    assert b[5] == "not run" and b[6] == "-"
    assert "- peer not run (gw): gw not installed" in t
    assert "fw.a alpha=0.01 (parameter a must be > 1)" in t
    assert "Counts: NaN/Inf/overflow/denormal" in t
    per = R.format_table(rows, per_value=True).splitlines()
    assert sum(ln.startswith("| fw | fw.a |") for ln in per) == 3
    assert json.dumps([r.as_dict() for r in rows])                     # JSON-ready


def test_cli_and_light_import(capsys):
    from lifgrad import cli
    code = cli.main(["verify", "robustness", "--quick", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == out["exit_code"] == 0
    assert {r["preset"] for r in out["rows"]} == set(sgs.PRESETS)
    # importing the sweep and the call helper imports no framework
    code = ("import sys, lifgrad.verify.robustness, lifgrad.verify.surrogate_calls; "
            "print(sorted(m for m in ('torch', 'jax', 'snntorch', 'sinabs') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]"
