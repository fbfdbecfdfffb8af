"""lifgrad.sweep: configurations and their validation; local processes and Dask
against train.fit in this process, bit for bit; a failed run; resume after a
kill; atomic records; the CLI."""
import csv
import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from lifgrad import cli, sweep, train

BASE = dict(dataset="digits", max_train=200, epochs=1, T=4, hidden=(16,), batch_size=50)
GRID = {"lr": [1e-3, 5e-3], "surrogate": ["atan", "fast_sigmoid"], "optimizer": ["adam", "sgd"]}


def _deterministic(rec):
    """A record without what may differ between equal runs: timings, pid, host, out."""
    config = {k: v for k, v in rec["config"].items() if k != "out"}
    history = [{k: v for k, v in row.items() if k not in sweep.VARYING_KEYS}
               for row in rec["history"] or []]
    return dict(run_id=rec["run_id"], status=rec["status"], config=config,
                metrics=rec["metrics"], history=history)


def _fit_here(config, tmp_path):
    """train.fit in this process on a record's config, as a record."""
    cfg = dataclasses.replace(train.TrainConfig.from_dict(config), out=str(tmp_path / "here"))
    hist = train.fit(cfg, progress=False)
    rows = [json.loads(json.dumps(dict(r))) for r in hist]
    return dict(run_id=sweep.run_id(cfg), status="ok",
                config={k: v for k, v in json.loads(json.dumps(dataclasses.asdict(cfg))).items()
                        if k != "out"},
                metrics={**{k: rows[-1][k] for k in sweep.METRICS}, "epochs": rows[-1]["epoch"]},
                history=[{k: v for k, v in r.items() if k not in sweep.VARYING_KEYS}
                         for r in rows])


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """The 8-configuration grid on 2 spawned local processes."""
    out = tmp_path_factory.mktemp("sweep") / "local"
    return sweep.run(BASE, grid=GRID, out=out, workers=2)


# ------------------------------------------------------------ configurations

def test_grid_is_cartesian_product_first_field_slowest_ints_made_floats():
    cfgs = sweep.expand(BASE, grid={"lr": [1, 2], "T": [3, 4, 5]})
    assert [(c.lr, c.T) for c in cfgs] == [(1.0, 3), (1.0, 4), (1.0, 5), (2.0, 3), (2.0, 4),
                                           (2.0, 5)]
    assert all(type(c.lr) is float and c.hidden == (16,) for c in cfgs)
    assert sweep.run_id(sweep.expand(BASE, grid={"lr": [1]})[0]) == \
        sweep.run_id(sweep.expand(BASE, grid={"lr": [1.0]})[0])


def test_equal_configurations_run_once_and_run_id_ignores_out():
    cfgs = sweep.expand(BASE, grid={"lr": [1e-3, 1e-3, 5e-4]})
    assert [c.lr for c in cfgs] == [1e-3, 5e-4]
    c = cfgs[0]
    assert sweep.run_id(c) == sweep.run_id(dataclasses.replace(c, out="elsewhere"))
    assert sweep.run_id(c) != sweep.run_id(dataclasses.replace(c, seed=1))


def test_random_search_is_seeded_a_prefix_for_fewer_draws_and_in_range():
    space = {"lr": {"loguniform": [1e-4, 1e-2]}, "alpha": {"uniform": [0.8, 0.99]},
             "T": {"int": [3, 5]}, "surrogate": {"choice": ["atan", "fast_sigmoid", "sigmoid"]}}
    a = sweep.expand(BASE, random=space, n_random=12, seed=3)
    b = sweep.expand(BASE, random=dict(reversed(list(space.items()))), n_random=12, seed=3)
    assert a == b                                    # the spec's key order does not matter
    assert sweep.expand(BASE, random=space, n_random=5, seed=3) == a[:5]
    assert sweep.expand(BASE, random=space, n_random=12, seed=4) != a
    assert all(1e-4 <= c.lr <= 1e-2 and 0.8 <= c.alpha <= 0.99 and c.T in (3, 4, 5)
               for c in a)
    assert {c.T for c in a} == {3, 4, 5} and len({c.surrogate for c in a}) == 3


def test_grid_and_random_pair_every_grid_point_with_the_same_draws():
    cfgs = sweep.expand(BASE, grid={"optimizer": ["adam", "sgd"]},
                        random={"lr": {"loguniform": [1e-4, 1e-2]}}, n_random=3, seed=0)
    assert [c.optimizer for c in cfgs] == ["adam"] * 3 + ["sgd"] * 3
    assert [c.lr for c in cfgs[:3]] == [c.lr for c in cfgs[3:]]


@pytest.mark.parametrize("kw, words", [
    (dict(grid={"lrr": [1e-3]}), ["'lrr'", "did you mean 'lr'"]),
    (dict(grid={"out": ["x"]}), ["'out'", "set by the sweep"]),
    (dict(grid={"T": [4, 0]}), ["T=0", "T: expected an integer >= 1"]),
    (dict(grid={"lr": ["fast"]}), ["lr: expected float"]),
    (dict(grid={"lr": 1e-3}), ["grid field 'lr'", "list"]),
    (dict(grid={"surrogate": ["atan", "nope"]}), ["surrogate='nope'", "unknown name"]),
    (dict(grid={"optimizer": ["adagrad"]}), ["optimizer: unknown name 'adagrad'"]),
    (dict(grid={"loss_params": [{"margin": 1}]}), ["loss_params"]),
    (dict(grid={"dataset": ["cifar"]}), ["dataset: unknown name 'cifar'"]),
    (dict(random={"lr": {"loguniform": [0, 1]}}, n_random=2), ["'lr'", "lo > 0"]),
    (dict(random={"lr": {"normal": [0, 1]}}, n_random=2), ["'lr'", "loguniform"]),
    (dict(random={"T": {"int": [2, 1]}}, n_random=2), ["'T'", "lo <= hi"]),
    (dict(random={"lr": {"uniform": [0, 1]}}), ["n_random"]),
    (dict(grid={"lr": [1e-3]}, random={"lr": {"uniform": [0, 1]}}, n_random=2),
     ["'lr'", "also in the grid"]),
    (dict(base={"hiden": (16,)}), ["'hiden'", "did you mean 'hidden'"]),
])
def test_invalid_sweep_raises_naming_the_field_before_writing_anything(tmp_path, kw, words):
    kw = dict(kw)
    base = {**BASE, **kw.pop("base", {})}
    with pytest.raises(sweep.SweepError) as e:
        sweep.run(base, out=tmp_path / "never", **kw)
    for w in words:
        assert w in str(e.value)
    assert not (tmp_path / "never").exists()


def test_parse_grid_reads_values_as_for_the_command_line():
    g = sweep.parse_grid(["lr=1e-3,5e-4", "surrogate=atan,fast_sigmoid", "hidden=16,32",
                          "clip=null,1", "readout=true,false"])
    assert g == {"lr": [1e-3, 5e-4], "surrogate": ["atan", "fast_sigmoid"],
                 "hidden": [[16], [32]], "clip": [None, 1], "readout": [True, False]}
    assert sweep.parse_grid(["hidden=[[16],[32,16]]"]) == {"hidden": [[16], [32, 16]]}
    for bad, word in [("lr", "FIELD=V1"), ("lrate=1", "'lrate'")]:
        with pytest.raises(sweep.SweepError, match=word):
            sweep.parse_grid([bad])


# ----------------------------------------------------- execution, determinism

def test_local_processes_match_sequential_fit_bitwise(local, tmp_path):
    assert local.ran == 8 and local.skipped == 0 and not local.failed
    assert {r["pid"] for r in local.records}.isdisjoint({os.getpid()})
    assert {r["threads"] for r in local.records} == {1}          # 2 CPUs / 2 workers
    for rec in local.records:
        assert _deterministic(rec) == _fit_here(rec["config"], tmp_path)
        with open(os.path.join(local.out, "runs", rec["run_id"] + ".json")) as f:
            on_disk = json.load(f)
        assert _deterministic(on_disk) == _deterministic(rec)


@pytest.mark.slow
def test_dask_localcluster_matches_local_processes_bitwise(local, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        res = sweep.run(BASE, grid=GRID, out=tmp_path / "dask",
                        scheduler=cluster.scheduler_address)
    assert res.ran == 8 and not res.failed
    assert len({r["pid"] for r in res.records} - {os.getpid()}) >= 1
    mine = {r["run_id"]: _deterministic(r) for r in local.records}
    assert {r["run_id"]: _deterministic(r) for r in res.records} == mine
    strip = [{k: v for k, v in r.items() if k != "wall_seconds"} for r in res.rows()]
    assert strip == [{k: v for k, v in r.items() if k != "wall_seconds"} for r in local.rows()]


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning",
                            "ignore:invalid value:RuntimeWarning")
def test_failed_run_is_recorded_with_its_error_while_the_others_finish(tmp_path):
    # a learning rate validate() accepts but that overflows float32 weights: the loss is NaN
    grid = {"optimizer": ["sgd"], "lr": [1e-3, 1e38, 5e-3]}
    res = sweep.run(BASE, grid=grid, out=tmp_path / "s", workers=2)
    (bad,) = res.failed
    assert bad["status"] == "failed" and bad["config"]["lr"] == 1e38
    assert bad["error"]["type"] == "TrainingDiverged" and "nan" in bad["error"]["message"]
    assert "train.py" in bad["error"]["traceback"] and bad["metrics"] is None
    assert [r["status"] for r in res.records] == ["ok", "failed", "ok"]
    rows = list(csv.DictReader(open(res.table_csv)))
    assert [r["status"] for r in rows] == ["ok", "ok", "failed"]
    assert rows[-1]["lr"] == "1e+38" and rows[-1]["error"].startswith("TrainingDiverged: ")
    assert "| failed |" in open(res.table_md).read()
    assert os.path.getsize(res.figure) > 5000
    on_disk = json.load(open(tmp_path / "s" / "runs" / (bad["run_id"] + ".json")))
    assert on_disk["error"]["type"] == "TrainingDiverged"
    again = sweep.run(BASE, grid=grid, out=tmp_path / "s", workers=0)
    assert (again.ran, again.skipped) == (0, 3)
    retried = sweep.run(BASE, grid=grid, out=tmp_path / "s", workers=0, retry_failed=True)
    assert (retried.ran, retried.skipped) == (1, 2) and len(retried.failed) == 1


def test_atomic_write_leaves_the_old_file_and_no_temporary_when_the_writer_dies(tmp_path):
    path = tmp_path / "r.json"
    sweep._write_json(path, {"a": 1})

    def dies(f):
        f.write('{"a": 2, "b": [')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sweep._atomic_write(path, dies)
    assert json.load(open(path)) == {"a": 1} and os.listdir(tmp_path) == ["r.json"]


KILLED = dict(dataset="digits", epochs=6, T=16, hidden=(64,), batch_size=32, optimizer="sgd")
KILLED_GRID = {"lr": [1e-3, 3e-3, 1e-2], "momentum": [0.0, 0.9]}


@pytest.mark.slow
def test_resume_after_kill_skips_finished_runs_and_completes_the_table(tmp_path):
    out = tmp_path / "killed"
    script = textwrap.dedent(f"""
        from lifgrad import sweep
        if __name__ == "__main__":
            sweep.run({KILLED!r}, grid={KILLED_GRID!r}, out={str(out)!r}, workers=1)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    runs = out / "runs"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if runs.is_dir() and len([p for p in os.listdir(runs) if p.endswith(".json")]) >= 2:
                break
            time.sleep(0.01)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)       # the sweep and its worker
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the sweep finished before it could be killed"
    visible = [p for p in os.listdir(runs) if not p.startswith(".")]    # not temporaries
    assert all(p.endswith(".json") or (runs / p).is_dir() for p in visible)
    done = {p: os.stat(runs / p).st_mtime_ns for p in visible if p.endswith(".json")}
    assert 2 <= len(done) < 6, len(done)
    for p in done:                                    # complete records only
        assert json.load(open(runs / p))["status"] == "ok"
    res = sweep.run(KILLED, grid=KILLED_GRID, out=out, workers=0)
    assert (res.ran, res.skipped) == (6 - len(done), len(done))
    assert {p: os.stat(runs / p).st_mtime_ns for p in done} == done
    assert sorted(p for p in os.listdir(runs) if p.endswith(".json")) == \
        sorted(r["run_id"] + ".json" for r in res.records)
    whole = sweep.run(KILLED, grid=KILLED_GRID, out=tmp_path / "whole", workers=0)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "wall_seconds"} for r in rows]
    assert strip(res.rows()) == strip(whole.rows()) and len(res.rows()) == 6
    assert [_deterministic(r) for r in res.records] == [_deterministic(r) for r in whole.records]


# ---------------------------------------------------------------------- CLI

def test_cli_sweep_reads_config_as_train_does_and_resumes(local, tmp_path, capsys):
    cfg = tmp_path / "base.json"
    cfg.write_text(json.dumps({**BASE, "out": "ignored"}))
    out = tmp_path / "cli"
    argv = ["sweep", "--config", str(cfg), "--grid", "lr=1e-3,5e-3",
            "--grid", "surrogate=atan,fast_sigmoid", "--out", str(out), "--workers", "0"]
    assert cli.main(argv) == 0
    text = capsys.readouterr()
    assert f"table: {out / 'results.md'}" in text.out and "[4/4] ok" in text.err
    res = {r["run_id"]: _deterministic(r) for r in local.records}
    for p in os.listdir(out / "runs"):
        if p.endswith(".json"):                       # optimizer adam is the default
            assert _deterministic(json.load(open(out / "runs" / p))) == res[p[:-5]]
    # a record whose config no longer matches is run again, the others are not
    first = sorted(p for p in os.listdir(out / "runs") if p.endswith(".json"))[0]
    rec = json.load(open(out / "runs" / first))
    rec["config"]["epochs"] = 2
    (out / "runs" / first).write_text(json.dumps(rec))
    assert cli.main(argv + ["--quiet"]) == 0
    assert "4 runs (1 ran, 3 done before)" in capsys.readouterr().out
    assert cli.main(["sweep", "--grid", "lrate=1", "--out", str(tmp_path / "x")]) == 2
    assert "'lrate'" in capsys.readouterr().err
