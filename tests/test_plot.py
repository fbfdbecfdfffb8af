"""lifgrad.plot: every figure is written, is a PNG of sensible size, and is not blank."""
import json
import os

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402

from lifgrad import plot  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _agg(monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")


def _history(n=4, layers=2):
    rows = []
    for e in range(1, n + 1):
        r = {"epoch": e, "loss": 2.0 / e, "train_acc": 0.5 + 0.1 * e, "test_acc": 0.45 + 0.1 * e,
             "lr": 5e-4, "seconds": 1.0, "eval_seconds": 0.1}
        for i in range(layers):
            r[f"rate_layer{i}"] = 0.1
            r[f"grad_norm_layer{i}"] = (i + 1) * 0.5 / e
        rows.append(r)
    return rows


def _spikes(T=20, B=3, N=40, p=0.15, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((T, B, N)) < p).astype(np.float32)


def _check_png(path, min_px=200):
    assert isinstance(path, str)
    assert os.path.isfile(path)
    with open(path, "rb") as f:
        assert f.read(8) == PNG_MAGIC
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[2] in (3, 4)
    h, w = img.shape[:2]
    assert min_px <= h <= 3000 and min_px <= w <= 3000, img.shape
    rgb = img[..., :3].astype(np.float64)
    assert rgb.std() > 0
    background = rgb[0, 0]
    differs = np.any(np.abs(rgb - background) > 1e-3, axis=2).mean()
    assert differs > 0.01, f"only {differs:.4f} of the pixels differ from the background"
    return img


def test_training_curves(tmp_path):
    p = plot.training_curves(_history(), str(tmp_path / "curves.png"))
    assert p == str(tmp_path / "curves.png")
    _check_png(p)


def test_training_curves_from_metrics_files(tmp_path):
    hist = _history(3)
    with open(tmp_path / "metrics.jsonl", "w") as f:
        for r in hist:
            f.write(json.dumps(r) + "\n")
    _check_png(plot.training_curves(str(tmp_path), str(tmp_path / "a.png")))
    keys = list(hist[0])
    with open(tmp_path / "metrics.csv", "w") as f:
        f.write(",".join(keys) + "\n")
        for r in hist:
            f.write(",".join(str(r[k]) for k in keys) + "\n")
    assert plot.load_history(str(tmp_path / "metrics.csv"))[1]["loss"] == pytest.approx(1.0)
    _check_png(plot.gradient_norms(str(tmp_path / "metrics.csv"), str(tmp_path / "b.png")))


def test_training_curves_single_epoch_and_missing_test(tmp_path):
    h = _history(1)
    h[0]["test_acc"] = None
    _check_png(plot.training_curves(h, str(tmp_path / "one.png")))


def test_raster(tmp_path):
    p = plot.raster(_spikes(), str(tmp_path / "sub" / "raster.png"), sample=1, title="hidden")
    _check_png(p)
    # (T, N) is accepted too
    _check_png(plot.raster(_spikes()[:, 0], str(tmp_path / "raster2.png")))
    with pytest.raises(ValueError, match="sample"):
        plot.raster(_spikes(), str(tmp_path / "bad.png"), sample=5)


def test_membrane_traces(tmp_path):
    rng = np.random.default_rng(1)
    T, B, N = 25, 2, 5
    u = np.zeros((T, B, N))
    v = np.zeros_like(u)
    for b in range(B):          # subtract-reset LIF, so the trace crosses the threshold
        m = np.zeros(N)
        for t in range(T):
            m = 0.95 * m + rng.random(N) * 0.3
            u[t, b] = m
            v[t, b] = m > 1.0
            m = m - v[t, b]
    p = plot.membrane_traces(u, v, 1.0, str(tmp_path / "mem.png"), sample=1, neurons=(0, 3))
    _check_png(p)
    _check_png(plot.membrane_traces(u[:, 0], v[:, 0], np.linspace(0.8, 1.2, N),
                                    str(tmp_path / "mem2.png"), neurons=[4]))
    with pytest.raises(ValueError, match="neurons"):
        plot.membrane_traces(u, v, 1.0, str(tmp_path / "bad.png"), neurons=(9,))


def test_surrogate_shapes(tmp_path):
    from lifgrad import surrogates
    p = plot.surrogate_shapes(["atan", "fast_sigmoid", "triangle", "straight_through",
                               surrogates.get("sigmoid", k=10)], str(tmp_path / "sg.png"))
    _check_png(p)
    _check_png(plot.surrogate_shapes("rect", str(tmp_path / "one.png")))


def test_gradient_norms(tmp_path):
    h = _history(5, layers=3)
    h[2]["grad_norm_layer1"] = 0.0      # a zero cannot go on a log axis; it is skipped
    _check_png(plot.gradient_norms(h, str(tmp_path / "gn.png")))
    with pytest.raises(ValueError, match="grad_norm"):
        plot.gradient_norms([{"epoch": 1, "loss": 1.0}], str(tmp_path / "none.png"))


def test_importing_lifgrad_does_not_import_matplotlib():
    import subprocess
    import sys
    code = "import sys, lifgrad, lifgrad.train; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=os.path.join(os.path.dirname(__file__), ".."), check=True)
    assert out.stdout.strip() == "False"
