"""The `lifgrad check` command: table, JSON, exit status."""
import json

from lifgrad import check, cli


def test_check_quick_json_passes(capsys):
    code = cli.main(["check", "--quick", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["failed"] == 0 and out["passed"] == len(out["rows"]) > 50
    checks = {r["check"] for r in out["rows"]}
    assert {"fd-smooth", "fd-zero-surrogate", "closed-form", "kernel-float64", "kernel-float32",
            "fd-network"} <= checks


def test_check_prints_table_and_fails_with_nonzero_exit(monkeypatch, capsys):
    rows = [check.CheckResult("fd-smooth", "case a", "I", 1e-9, 1e-6),
            check.CheckResult("closed-form", "case b", "dL/dw", 1e-3, 1e-12)]
    monkeypatch.setattr(check, "run_suite", lambda quick=False, progress=None: rows)
    code = cli.main(["check"])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL" in out and "PASS" in out and "2 rows, 1 passed, 1 failed" in out


def test_nan_error_counts_as_failure():
    assert not check.CheckResult("x", "y", "z", float("nan"), 1.0).passed


def test_demo_trains_to_97_percent_verifies_and_writes_report(tmp_path, capsys):
    out = tmp_path / "demo"
    assert cli.main(["demo", "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "checks passed" in text and "test accuracy" in text
    report = (out / "report.md").read_text()
    acc = float(report.split("**")[1])
    assert acc >= 0.97
    for name in ("training_curves.png", "raster_hidden.png", "membrane.png", "surrogates.png",
                 "gradient_norms.png"):
        assert (out / name).stat().st_size > 5000
