"""The training loop: resume equals an uninterrupted run, divergence stops
cleanly, checkpoints are atomic and finite, the CLI drives it."""
import json
import os

import numpy as np
import pytest

from lifgrad import cli
from lifgrad import losses as L
from lifgrad.train import TrainConfig, TrainingDiverged, fit, load_checkpoint


def _cfg(tmp_path, **kw):
    base = dict(dataset="digits", hidden=(24,), readout=True, T=6, epochs=4, batch_size=64,
                lr=5e-3, max_train=300, out=str(tmp_path / "run"), seed=3)
    base.update(kw)
    return TrainConfig(**base)


def test_resume_ends_with_the_parameters_of_an_uninterrupted_run(tmp_path):
    full = _cfg(tmp_path, out=str(tmp_path / "full"), encoder="poisson", loss="ce_membrane")
    h_full = fit(full, progress=False)
    p_full = {k: v.copy() for k, v in h_full.network.params.items()}
    part = _cfg(tmp_path, out=str(tmp_path / "part"), encoder="poisson", loss="ce_membrane")
    fit(part, progress=False, stop_after=2)
    assert json.load(open(tmp_path / "part" / "checkpoint.json"))["epoch"] == 1
    h_res = fit(part, progress=False, resume=True)
    p_res = h_res.network.params
    assert [r["epoch"] for r in h_res] == [1, 2, 3, 4]
    for k in p_full:
        np.testing.assert_array_equal(p_full[k], p_res[k])
    assert [r["test_acc"] for r in h_full] == [r["test_acc"] for r in h_res]


def test_resume_with_a_different_config_is_refused(tmp_path):
    cfg = _cfg(tmp_path, epochs=1)
    fit(cfg, progress=False)
    with pytest.raises(ValueError, match="configuration differs"):
        fit(_cfg(tmp_path, epochs=1, lr=1e-3), progress=False, resume=True)


def test_nan_gradient_stops_training_and_keeps_last_good_checkpoint(tmp_path):
    cfg = _cfg(tmp_path)
    calls = {"n": 0}
    steps_per_epoch = int(np.ceil(300 / 64))

    def hook(grads):
        calls["n"] += 1
        if calls["n"] == steps_per_epoch + 2:        # in the second epoch
            grads["layer0.W"][0, 0] = np.nan

    with pytest.raises(TrainingDiverged, match="gradient of layer0.W contains NaN"):
        fit(cfg, progress=False, grad_hook=hook)
    meta = json.load(open(tmp_path / "run" / "checkpoint.json"))
    assert meta["epoch"] == 0                         # the first epoch's checkpoint survives
    arrs = np.load(tmp_path / "run" / "checkpoint.npz")
    assert all(np.all(np.isfinite(arrs[k])) for k in arrs.files)
    assert not [f for f in os.listdir(tmp_path / "run") if f.startswith(".tmp-")]


def test_nan_loss_stops_training(tmp_path, monkeypatch):
    def bad(v, u, y):
        out = L.ce_membrane(v, u, y)
        return out._replace(L=float("nan"))
    monkeypatch.setitem(L.LOSSES, "ce_membrane", bad)
    with pytest.raises(TrainingDiverged, match="the loss is nan"):
        fit(_cfg(tmp_path, epochs=1), progress=False)
    assert not os.path.exists(tmp_path / "run" / "checkpoint.npz")


def test_metrics_files_and_checkpoint_round_trip(tmp_path):
    cfg = _cfg(tmp_path, epochs=2, readout=False, loss="ce_rate", hidden=(20, 16), l1=1e-4)
    hist = fit(cfg, progress=False)
    rows = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")]
    assert len(rows) == 2 and rows == hist
    for key in ("loss", "train_acc", "test_acc", "seconds", "rate_layer0", "rate_layer1",
                "grad_norm_layer0", "grad_norm_layer2"):
        assert key in rows[0]
    assert open(tmp_path / "run" / "metrics.csv").readline().startswith("epoch,loss,")
    cfg2, net, _, meta = load_checkpoint(str(tmp_path / "run"))
    assert cfg2 == cfg and meta["epoch"] == 1
    for k, v in hist.network.params.items():
        np.testing.assert_array_equal(net.params[k], v)


def test_bad_training_config_is_refused(tmp_path):
    with pytest.raises(ValueError, match="model: expected one of lif, synaptic"):
        fit(_cfg(tmp_path, model="lstm"), progress=False)
    with pytest.raises(ValueError, match="a readout layer has only a membrane"):
        fit(_cfg(tmp_path, loss="ce_count"), progress=False)
    with pytest.raises(ValueError, match="T: expected an integer >= 1"):
        fit(_cfg(tmp_path, T=0), progress=False)
    with pytest.raises(ValueError, match="config: unknown key"):
        TrainConfig.from_dict({"epochz": 3})


@pytest.mark.parametrize("model", ["synaptic", "adaptive", "recurrent"])
def test_other_neuron_models_train(tmp_path, model):
    hist = fit(_cfg(tmp_path, model=model, epochs=2), progress=False)
    assert hist[-1]["test_acc"] > 0.3 and np.isfinite(hist[-1]["loss"])


def test_cli_train_and_evaluate(tmp_path, capsys):
    out = str(tmp_path / "cli")
    assert cli.main(["train", "--dataset", "digits", "--hidden", "16", "--T", "5", "--epochs", "1",
                     "--readout", "--max-train", "200", "--out", out, "--quiet"]) == 0
    assert "test accuracy" in capsys.readouterr().out
    assert cli.main(["evaluate", out]) == 0
    assert "digits: test accuracy" in capsys.readouterr().out
    assert cli.main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path / "none"),
                     "--out", out, "--quiet"]) == 2
    assert "data not found" in capsys.readouterr().err


def test_calibrated_training_resumes_to_the_same_parameters(tmp_path):
    kw = dict(hidden=(24, 24), calibrate=3, encoder="poisson")
    full = fit(_cfg(tmp_path, out=str(tmp_path / "f"), **kw), progress=False)
    part_cfg = _cfg(tmp_path, out=str(tmp_path / "p"), **kw)
    fit(part_cfg, progress=False, stop_after=2)
    res = fit(part_cfg, progress=False, resume=True)
    for k in full.network.params:
        np.testing.assert_array_equal(full.network.params[k], res.network.params[k])
    scales = [layer.config.surrogate.scale for layer in res.network.layers]
    assert scales[0] != 1.0 and scales == [layer.config.surrogate.scale
                                            for layer in full.network.layers]


@pytest.mark.parametrize("model", ["lif", "recurrent"])
def test_checkpointed_training_gives_the_same_parameters(tmp_path, model):
    """TrainConfig.checkpoint_every (lifgrad train --checkpoint-every K): the
    checkpointed backward gives the full trace's gradients to the bit, so a
    training run ends with the same parameters (all-to-all recurrent hidden
    layers too); hidden rates are not kept."""
    import numpy as np
    from lifgrad.train import TrainConfig, fit
    kw = dict(epochs=1, T=12, max_train=128, batch_size=64, seed=0, model=model)
    h1 = fit(TrainConfig(out=str(tmp_path / "a"), **kw).validate(), progress=False)
    h2 = fit(TrainConfig(out=str(tmp_path / "b"), checkpoint_every=4, **kw).validate(),
             progress=False)
    for k in h1.network.params:
        np.testing.assert_array_equal(h1.network.params[k], h2.network.params[k], err_msg=k)
    assert h2[-1]["loss"] == h1[-1]["loss"]
    assert h2[-1]["rate_layer0"] is None and h2[-1]["rate_layer1"] > 0


def test_checkpoint_every_is_validated():
    import pytest
    from lifgrad.train import TrainConfig
    for bad, msg in ((dict(checkpoint_every=0), "integer >= 1"),
                     (dict(checkpoint_every=4, l1=1e-3), "l1"),
                     (dict(checkpoint_every=4, backend="cuda"), "cuda"),
                     (dict(memory_budget_mb=0), "memory_budget_mb: expected a positive"),
                     (dict(memory_budget_mb=float("nan")), "memory_budget_mb: expected"),
                     (dict(memory_budget_mb=8, checkpoint_every=4), "not both"),
                     (dict(memory_budget_mb=8, l1=1e-3), "memory_budget_mb: the spike"),
                     (dict(memory_budget_mb=8, backend="cuda"), "memory_budget_mb: not av")):
        with pytest.raises(ValueError, match=msg):
            TrainConfig(**bad).validate()


def test_memory_budget_chooses_checkpointing(tmp_path):
    """TrainConfig.memory_budget_mb (lifgrad train --memory-budget MB): a budget
    the full trace fits in trains on the full trace; a smaller one checkpoints
    (hidden rates not kept) with checkpoint.every_for_budget's K, same
    parameters to the bit."""
    from lifgrad.checkpoint import every_for_budget, trace_bytes
    from lifgrad.train import build_network
    kw = dict(epochs=1, T=512, max_train=64, batch_size=32, seed=0, hidden=(24,))
    cfg = TrainConfig(out=str(tmp_path / "a"), **kw).validate()
    full_mb = trace_bytes(build_network(cfg, 64, 10), 512, 32) / 2**20
    h1 = fit(cfg, progress=False)
    h2 = fit(TrainConfig(out=str(tmp_path / "b"), memory_budget_mb=full_mb, **kw).validate(),
             progress=False)
    h3 = fit(TrainConfig(out=str(tmp_path / "c"), memory_budget_mb=full_mb / 2, **kw).validate(),
             progress=False)
    assert every_for_budget(h3.network, 512, 32, full_mb / 2 * 2**20) is not None
    assert h2[-1]["rate_layer0"] is not None and h3[-1]["rate_layer0"] is None
    for h in (h2, h3):
        for k in h1.network.params:
            np.testing.assert_array_equal(h.network.params[k], h1.network.params[k], err_msg=k)


def test_cli_passes_checkpoint_every():
    from lifgrad import cli
    args = cli.build_parser().parse_args(["train", "--checkpoint-every", "16"])
    assert cli._train_config(args).checkpoint_every == 16
    args = cli.build_parser().parse_args(["train", "--memory-budget", "40"])
    assert cli._train_config(args).memory_budget_mb == 40.0
