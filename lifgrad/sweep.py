"""Hyper-parameter sweeps: grids and seeded random searches over :class:`TrainConfig` fields.

    from lifgrad import sweep
    res = sweep.run({"dataset": "digits", "epochs": 5},
                    grid={"lr": [1e-3, 5e-4], "surrogate": ["atan", "fast_sigmoid"]},
                    out="sweeps/lr-surrogate")
    res.table_md, res.figure, res.best()

or ``lifgrad sweep --config base.json --grid lr=1e-3,5e-4 --grid surrogate=atan,fast_sigmoid
--out sweeps/lr-surrogate``.

Configurations
--------------
``grid={field: [values]}`` is the cartesian product, the first field varying
slowest, values in the order given.  ``random={field: spec}`` draws
``n_random`` configurations; a spec is one of

    {"uniform": [lo, hi]}        a float in [lo, hi)
    {"loguniform": [lo, hi]}     exp(uniform(log lo, log hi)), 0 < lo <= hi
    {"int": [lo, hi]}            an integer in lo..hi, both included
    {"choice": [v1, v2, ...]}    one of the values, each as likely

Draw i takes its values from ``numpy.random.default_rng([seed, i])``, fields
in sorted name order: the same seed gives the same configurations on every
machine, and ``n_random=16`` begins with the 8 of ``n_random=8``.  With both,
every grid point is combined with each of the same ``n_random`` draws (paired
comparisons).  Configurations that come out equal run once.

Every field name and value is checked before anything runs or is written:
the name exists (``out`` is the sweep's, not a field to sweep), the value has
the field's type (an int for a float field becomes a float), and each
configuration passes :meth:`TrainConfig.validate` and builds its surrogate,
optimiser, schedule and loss parameters.  Errors are :class:`SweepError`
(a ``ValueError``) naming the field.  What only training can tell (a data
folder missing where the run executes, a learning rate that diverges) is a
failed run.

Output folder
-------------
``out/runs/<run id>.json``   one record per run, written by the sweep process
                             to a temporary file and renamed (a kill never
                             leaves a partial record)
``out/runs/<run id>/``       the run's own training folder (:func:`train.fit`'s
                             metrics and checkpoint), written where it runs
``out/results.csv``, ``results.md``   one table: the swept fields, status,
                             test/train accuracy, loss, wall time, run id, error;
                             ok runs by test accuracy (best first), then failed
``out/results.png``          test accuracy against each swept field, failed runs
                             as red crosses at the bottom
``out/sweep.json``           what was asked and the run ids

The run id is the first 12 hex digits of the SHA-256 of the configuration as
JSON with sorted keys, ``out`` left out (:func:`run_id`).  A record holds
``run_id``, ``status`` ("ok" or "failed"), ``config``, ``metrics`` (the last
epoch's ``loss``, ``train_acc``, ``test_acc`` and ``epochs``), ``history``
(fit's per-epoch rows), ``error`` (``type``, ``message``, ``traceback`` of a
failed run), ``wall_seconds`` (the run in its worker, data loading included),
``threads``, ``pid`` and ``host``.

Resume: running a sweep again with the same ``out`` skips every run whose
record exists and whose config equals the one asked; failed runs are skipped
too unless ``retry_failed=True`` (``--retry-failed``).  A run whose worker
process died (killed, out of memory) has status "lost" in the result and no
record, so the next call runs it again.

Execution
---------
* ``workers=None`` or N >= 1: local processes, the standard library's
  ``ProcessPoolExecutor`` with the **spawn** start method (fresh interpreters:
  never a fork of a process that already runs threads, lifgrad's pool
  included; the same on Linux, macOS and Windows).  The price: each call
  starts its workers, which import lifgrad and load data and kernels before
  their first run, about 1.5-2 s on a 2-core machine (benchmarks/sweep.md).
  Default: one worker per CPU, at most one per run.  Scripts that call
  :func:`run` need ``if __name__ == "__main__":``, as with any spawn pool.
* ``workers=0``: one after another in this process, with its thread setting
  (the fastest for many runs of a few tenths of a second each).
* ``scheduler="tcp://host:port"`` (a ``dask.distributed.Client`` is made and
  closed) or a ``Client``: Dask distributed (``pip install lifgrad[sweep]``),
  one ``client.submit(..., pure=False)`` per run, collected with
  ``as_completed``.  Workers need lifgrad installed; records are written here.
  A cluster kept running between sweeps has warm workers (no start-up cost).

Threads and determinism
-----------------------
Each run in a local worker uses ``threads`` of lifgrad's threads
(:func:`lifgrad.set_num_threads`, set in the worker; default: CPUs // workers,
at least 1), on Dask ``threads`` per task (default 1: a Dask worker thread is
a core; Dask's nanny already sets ``OMP_NUM_THREADS`` and friends to 1 in its
worker processes).  No environment variable is set anywhere by this module.
A run's results do not depend on the thread count (lifgrad.parallel) nor on
the process: every record's metrics and history equal those of
``train.fit`` on the same configuration in this process, bit for bit, except
:data:`VARYING_KEYS`: the timings (``wall_seconds``, the history's
``seconds`` and ``eval_seconds``), ``threads``, ``pid`` and ``host``
(tests/test_sweep.py; the seeds are the config's, see :mod:`lifgrad.train`).
Measured times: ``benchmarks/sweep.md``.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib.util
import inspect
import itertools
import json
import math
import os
import socket
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass

import numpy as np

from . import parallel as _parallel
from .train import TrainConfig, fit

__all__ = ["run", "expand", "run_id", "check_config", "parse_grid", "SweepResult",
           "SweepError", "DISTRIBUTIONS", "METRICS", "VARYING_KEYS"]

DISTRIBUTIONS = ("uniform", "loguniform", "int", "choice")
METRICS = ("test_acc", "train_acc", "loss")
# what may differ between two runs of one configuration (in a record or a history row)
VARYING_KEYS = ("wall_seconds", "seconds", "eval_seconds", "threads", "pid", "host")
_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
_NOT_SWEPT = ("out",)


class SweepError(ValueError):
    """An invalid sweep: unknown field, wrong value or spec (raised before anything runs)."""


# ----------------------------------------------------------------- configurations

def _plain(v):
    """Plain Python values as JSON gives them back: NumPy scalars made Python
    numbers, tuples made lists (a record in memory equals its file)."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return v


def _check_name(name, where):
    if name in _NOT_SWEPT:
        raise SweepError(f"{where} field {name!r}: set by the sweep (each run writes to "
                         f"out/runs/<run id>/); give the sweep's out instead")
    if name not in _FIELDS:
        close = difflib.get_close_matches(str(name), list(_FIELDS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SweepError(f"{where} field {name!r}: not a TrainConfig field{hint}")


def _coerce(name, value):
    """``value`` as field ``name``'s type (int -> float for float fields, list -> tuple)."""
    value = _plain(value)
    kinds = {s.strip() for s in str(_FIELDS[name].type).split("|")}
    if value is None and "None" in kinds:
        return None
    ok = None
    if "bool" in kinds:
        ok = value if isinstance(value, bool) else None
    elif "float" in kinds:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            ok = float(value)
    elif "int" in kinds:
        ok = value if isinstance(value, int) and not isinstance(value, bool) else None
    elif "str" in kinds:
        ok = value if isinstance(value, str) else None
    elif "tuple" in kinds:
        ok = tuple(value) if isinstance(value, (list, tuple)) else None
    elif "dict" in kinds:
        ok = dict(value) if isinstance(value, dict) else None
    else:                                                    # pragma: no cover - new field type
        ok = value
    if ok is None:
        raise SweepError(f"{name}: expected {_FIELDS[name].type}, got {value!r}")
    return ok


def check_config(cfg: TrainConfig) -> TrainConfig:
    """:meth:`TrainConfig.validate`, and what it leaves to training: the data
    set's name, the surrogate, optimiser and schedule with their parameters,
    the loss parameters.  Raises ``ValueError`` naming the field."""
    from . import data, losses, optim, surrogates
    cfg.validate()
    names = getattr(data, "NAMES", ("digits", "fashion-mnist", "mnist"))
    if cfg.dataset not in names:
        raise ValueError(f"dataset: unknown name {cfg.dataset!r}; valid: {', '.join(names)}")
    if getattr(cfg, "data_options", None) and hasattr(data, "options"):
        unknown = sorted(set(cfg.data_options) - set(data.options(cfg.dataset)))
        if unknown:
            raise ValueError(f"data_options: unknown option(s) {unknown} of data set "
                             f"{cfg.dataset!r}")
    surrogates.get(cfg.surrogate, **dict(cfg.surrogate_params))
    kw = dict(lr=cfg.lr, weight_decay=cfg.weight_decay)
    kw.update(momentum=cfg.momentum) if cfg.optimizer == "sgd" else kw.update(betas=cfg.betas)
    optim.get(cfg.optimizer, **kw)
    if cfg.schedule == "step":
        optim.StepLR(cfg.lr, cfg.step_size, cfg.gamma)
    try:
        inspect.signature(losses.get(cfg.loss)).bind(None, None, None, **cfg.loss_params)
    except TypeError:
        raise ValueError(f"loss_params: {sorted(cfg.loss_params)} are not all parameters of "
                         f"loss {cfg.loss!r}") from None
    return cfg


def run_id(cfg: TrainConfig | dict) -> str:
    """12 hex digits of the SHA-256 of the configuration (``out`` left out)."""
    d = dataclasses.asdict(cfg) if isinstance(cfg, TrainConfig) else dict(cfg)
    d.pop("out", None)
    blob = json.dumps(_plain(d), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _spec(name, spec):
    """(kind, args) of a random field's spec, checked."""
    if not (isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)) in DISTRIBUTIONS):
        raise SweepError(f"random field {name!r}: expected one of {{'uniform': [lo, hi]}}, "
                         f"{{'loguniform': [lo, hi]}}, {{'int': [lo, hi]}}, "
                         f"{{'choice': [values]}}; got {spec!r}")
    kind, args = next(iter(spec.items()))
    if kind == "choice":
        if not isinstance(args, (list, tuple)) or not args:
            raise SweepError(f"random field {name!r}: choice needs a non-empty list, got {args!r}")
        return kind, [_coerce(name, a) for a in args]
    num = (int,) if kind == "int" else (int, float)
    if not (isinstance(args, (list, tuple)) and len(args) == 2
            and all(isinstance(a, num) and not isinstance(a, bool) and math.isfinite(a)
                    for a in args) and args[0] <= args[1]):
        raise SweepError(f"random field {name!r}: {kind} needs [lo, hi], "
                         f"{'integers' if kind == 'int' else 'finite numbers'} with lo <= hi, "
                         f"got {args!r}")
    if kind == "loguniform" and args[0] <= 0:
        raise SweepError(f"random field {name!r}: loguniform needs lo > 0, got {args!r}")
    return kind, list(args)


def _draw(specs, seed, i):
    rng = np.random.default_rng([seed, i])
    out = {}
    for name in sorted(specs):
        kind, args = specs[name]
        if kind == "uniform":
            out[name] = float(rng.uniform(args[0], args[1]))
        elif kind == "loguniform":
            out[name] = float(math.exp(rng.uniform(math.log(args[0]), math.log(args[1]))))
        elif kind == "int":
            out[name] = int(rng.integers(args[0], args[1], endpoint=True))
        else:
            out[name] = args[int(rng.integers(len(args)))]
    return out


def _describe(point):
    return ", ".join(f"{k}={v!r}" for k, v in point.items())


def expand(base=None, grid=None, random=None, n_random=None, seed=0) -> list:
    """The validated :class:`TrainConfig` s of a sweep, in order, without duplicates
    (see the module docstring for ``grid``, ``random`` and their seeding)."""
    if isinstance(base, TrainConfig):
        base = dataclasses.asdict(base)
    base = dict(base or {})
    for name in base:
        if name not in _FIELDS:
            _check_name(name, "base")
    grid, random = dict(grid or {}), dict(random or {})
    for name in grid:
        _check_name(name, "grid")
        vals = grid[name]
        if isinstance(vals, (str, bytes, dict)) or not isinstance(vals, (list, tuple)) or not vals:
            raise SweepError(f"grid field {name!r}: expected a non-empty list of values, "
                             f"got {vals!r}")
        grid[name] = [_coerce(name, v) for v in vals]
    for name in random:
        _check_name(name, "random")
        if name in grid:
            raise SweepError(f"random field {name!r}: also in the grid; give it in one of them")
    specs = {name: _spec(name, s) for name, s in random.items()}
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SweepError(f"seed: expected an integer >= 0, got {seed!r}")
    if random:
        if isinstance(n_random, bool) or not isinstance(n_random, int) or n_random < 1:
            raise SweepError(f"n_random: expected an integer >= 1 with a random search, "
                             f"got {n_random!r}")
        draws = [_draw(specs, int(seed), i) for i in range(n_random)]
    elif n_random is not None:
        raise SweepError("n_random: given without a random search space (random=)")
    else:
        draws = [{}]
    names = list(grid)
    points = [dict(zip(names, combo)) for combo in itertools.product(*grid.values())]
    base = {k: _coerce(k, v) for k, v in base.items()}
    configs, seen = [], set()
    for g in points:
        for r in draws:
            point = {**g, **r}
            try:
                cfg = check_config(TrainConfig(**{**base, **point}))
            except ValueError as e:
                where = f"configuration {{{_describe(point)}}}" if point else "base configuration"
                raise SweepError(f"{where}: {e}") from None
            rid = run_id(cfg)
            if rid not in seen:
                seen.add(rid)
                configs.append(cfg)
    return configs


def parse_grid(items) -> dict:
    """``["lr=1e-3,5e-4", "surrogate=atan,fast_sigmoid"]`` -> a grid dict.
    Each comma-separated value is read as JSON when it parses (numbers, true,
    false, null), else as a string; a value list may be given whole as JSON
    (``hidden=[[16],[32,16]]``); a tuple field takes a number as a 1-tuple
    (``hidden=16,32``)."""
    grid = {}
    for item in items:
        name, eq, text = item.partition("=")
        name = name.strip()
        if not eq or not name or not text.strip():
            raise SweepError(f"--grid {item!r}: expected FIELD=V1,V2,...")
        if name in grid:
            raise SweepError(f"--grid {name}: given twice")
        _check_name(name, "grid")
        if text.strip().startswith("["):
            try:
                vals = json.loads(text)
            except json.JSONDecodeError as e:
                raise SweepError(f"--grid {name}: not a JSON list ({e})") from None
        else:
            vals = [_json_or_str(t.strip()) for t in text.split(",")]
        if "tuple" in str(_FIELDS[name].type):
            vals = [v if isinstance(v, (list, tuple)) else [v] for v in vals]
        grid[name] = vals
    return grid


def _json_or_str(text):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


# ----------------------------------------------------------------------- one run

def _run_one(config, threads=None):
    """Train one configuration (a dict); return its record.  Runs in a worker
    process; an exception in training becomes a failed record."""
    t0 = time.perf_counter()
    if threads is not None:
        _parallel.set_num_threads(threads)
    rec = {"run_id": run_id(config), "status": "ok", "config": _plain(config), "metrics": None,
           "history": None, "error": None}
    try:
        hist = fit(TrainConfig.from_dict(config), progress=False)
        rows = [_plain(dict(r)) for r in hist]
        rec["metrics"] = {**{k: rows[-1][k] for k in METRICS}, "epochs": rows[-1]["epoch"]}
        rec["history"] = rows
    except Exception as e:  # noqa: BLE001 - a failed run is a result
        rec.update(status="failed", error={"type": type(e).__name__, "message": str(e),
                                           "traceback": traceback.format_exc()})
    rec.update(wall_seconds=time.perf_counter() - t0, threads=_parallel.num_threads(),
               pid=os.getpid(), host=socket.gethostname())
    return rec


def _lost(rid, cfg, e):
    return {"run_id": rid, "status": "lost", "config": _plain(dataclasses.asdict(cfg)),
            "metrics": None, "history": None, "wall_seconds": None,
            "error": {"type": type(e).__name__, "message": str(e) or "worker lost",
                      "traceback": "".join(traceback.format_exception(e))}}


def _in_process(todo):
    for rid, cfg in todo:
        yield _run_one(dataclasses.asdict(cfg))


def _local(todo, workers, threads):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = {pool.submit(_run_one, dataclasses.asdict(cfg), threads): (rid, cfg)
                   for rid, cfg in todo}
        for f in as_completed(futures):
            try:
                yield f.result()
            except Exception as e:  # noqa: BLE001 - the worker died (BrokenProcessPool)
                yield _lost(*futures[f], e)
    except BaseException:           # interrupted: drop what has not started, do not wait
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _dask(todo, scheduler, threads):
    from dask.distributed import Client, as_completed
    own = isinstance(scheduler, str)
    client = Client(scheduler) if own else scheduler
    try:
        futures = {}
        for rid, cfg in todo:
            f = client.submit(_run_one, dataclasses.asdict(cfg), threads, pure=False)
            futures[f.key] = (rid, cfg, f)
        for f in as_completed([v[2] for v in futures.values()]):
            try:
                yield f.result()
            except Exception as e:  # noqa: BLE001 - KilledWorker, cancelled
                yield _lost(*futures[f.key][:2], e)
    finally:
        if own:
            client.close()


# -------------------------------------------------------------------------- files

def _atomic_write(path, write, binary=False):
    """``write(file)`` into a temporary file beside ``path``, then rename it:
    readers and kills see the old file or the new one, never a part."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
    try:
        with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", newline="")) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _write_json(path, obj):
    _atomic_write(path, lambda f: f.write(json.dumps(obj, indent=1) + "\n"))


def _load_record(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _same_config(old, cfg):
    try:
        return dataclasses.replace(TrainConfig.from_dict(old), out=cfg.out) == cfg
    except (TypeError, ValueError):
        return False


# ------------------------------------------------------------------------ results

@dataclass
class SweepResult:
    """What :func:`run` did: the records (in the sweep's order), the files."""
    out: str
    fields: list            # the swept fields (grid's, then random's)
    records: list           # one dict per configuration (see the module docstring)
    table_csv: str
    table_md: str
    figure: str
    ran: int                # runs executed by this call
    skipped: int            # runs whose records existed (resume)
    wall_seconds: float

    @property
    def failed(self):
        return [r for r in self.records if r["status"] != "ok"]

    def rows(self):
        """The table's rows (dicts), sorted as written."""
        return _rows(self.records, self.fields)

    def best(self, metric="test_acc"):
        """The record of the ok run with the highest ``metric`` (lowest for loss)."""
        ok = [r for r in self.records if r["status"] == "ok"]
        if not ok:
            return None
        sign = 1 if metric == "loss" else -1
        return min(ok, key=lambda r: (sign * r["metrics"][metric], r["run_id"]))


_STATUS_ORDER = {"ok": 0, "failed": 1, "lost": 2}


def _rows(records, fields):
    rows = []
    for r in records:
        m = r.get("metrics") or {}
        err = r.get("error") or {}
        row = {f: r["config"][f] for f in fields}
        row.update(status=r["status"], **{k: m.get(k) for k in METRICS},
                   wall_seconds=r.get("wall_seconds"), run_id=r["run_id"],
                   error=f"{err['type']}: {err['message']}"[:120] if err else "")
        rows.append(row)
    rows.sort(key=lambda w: (_STATUS_ORDER.get(w["status"], 3),
                             -(w["test_acc"] if w["test_acc"] is not None else 0),
                             w["loss"] if w["loss"] is not None else 0, w["run_id"]))
    return rows


def _cell(v, digits=None):
    if v is None:
        return ""
    if isinstance(v, float) and digits == "g":
        return f"{v:.6g}"
    if isinstance(v, float) and digits is not None:
        return f"{v:.{digits}f}"
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def _write_tables(out, rows, fields):
    import csv
    cols = [*fields, "status", *METRICS, "wall_seconds", "run_id", "error"]
    csv_path, md_path = os.path.join(out, "results.csv"), os.path.join(out, "results.md")

    def write_csv(f):
        w = csv.writer(f)
        w.writerow(cols)
        w.writerows([[_cell(r[c]) for c in cols] for r in rows])

    _atomic_write(csv_path, write_csv)
    digits = {"test_acc": 4, "train_acc": 4, "loss": 4, "wall_seconds": 2}
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_cell(r[c], digits.get(c, "g")).replace("|", "\\|") for c in cols)
              + " |" for r in rows]
    _atomic_write(md_path, lambda f: f.write("\n".join(lines) + "\n"))
    return csv_path, md_path


def _write_figure(out, records, fields):
    """Test accuracy against each swept field; failed runs as red crosses at 0."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator, NullFormatter

    from .plot import DPI
    panels = list(fields) or ["run"]
    ncol = min(3, len(panels))
    nrow = math.ceil(len(panels) / ncol)
    fig = Figure(figsize=(4.2 * ncol, 3.2 * nrow), dpi=DPI)
    FigureCanvasAgg(fig)
    for k, name in enumerate(panels):
        ax = fig.add_subplot(nrow, ncol, k + 1)
        xs = [r["config"][name] if name != "run" else i for i, r in enumerate(records)]
        numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs)
        if not numeric:
            labels = list(dict.fromkeys(_cell(x) for x in xs))
            xs = [labels.index(_cell(x)) for x in xs]
            ax.set_xticks(range(len(labels)), labels, rotation=30 if len(labels) > 3 else 0)
            ax.set_xlim(-0.5, len(labels) - 0.5)
        elif min(xs) > 0 and max(xs) / min(xs) > 20:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        elif all(isinstance(x, int) for x in xs):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ok = [(x, r["metrics"]["test_acc"]) for x, r in zip(xs, records) if r["status"] == "ok"]
        bad = [x for x, r in zip(xs, records) if r["status"] != "ok"]
        if ok:
            ax.plot(*zip(*ok), "o", color="#1f77b4", alpha=0.75, label="ok")
        if bad:
            ax.plot(bad, [0.0] * len(bad), "x", color="#d62728", ms=9, mew=2,
                    label=f"failed ({len(bad)})")
            ax.legend(fontsize=8, loc="best")
        ax.set_xlabel(name)
        ax.set_ylabel("test accuracy")
        ax.set_ylim(-0.05, 1.05)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{len(records)} runs, {sum(r['status'] == 'ok' for r in records)} ok")
    fig.tight_layout()
    path = os.path.join(out, "results.png")

    _atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=DPI, facecolor="white"),
                  binary=True)
    return path


# ---------------------------------------------------------------------------- run

def _cpus():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:                     # not Linux
        return max(1, os.cpu_count() or 1)


def _say(progress):
    if progress is True:
        return lambda m: print(m, file=sys.stderr, flush=True)
    return progress if callable(progress) else (lambda m: None)


def _count(name, v, lo):
    if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < lo):
        raise SweepError(f"{name}: expected an integer >= {lo} or None, got {v!r}")


def run(base=None, grid=None, random=None, n_random=None, seed=0, out="sweeps/sweep", *,
        scheduler=None, workers=None, threads=None, retry_failed=False,
        progress=None) -> SweepResult:
    """Run every configuration of a sweep (module docstring) and write its
    records, table and figure under ``out``.

    base:         a :class:`TrainConfig` or a dict of its fields (the rest default).
    grid, random, n_random, seed: the configurations (:func:`expand`).
    scheduler:    None (local processes), a Dask scheduler address or a ``Client``.
    workers:      local processes (default one per CPU, at most one per run);
                  0 runs them in this process.  Not with a scheduler.
    threads:      lifgrad threads per run in a worker (default CPUs // workers
                  locally, 1 on Dask).
    retry_failed: run again the configurations whose record says failed.
    progress:     True prints a line per run to stderr; a callable gets the lines.
    """
    t0 = time.perf_counter()
    _count("workers", workers, 0)
    _count("threads", threads, 1)
    if scheduler is not None and workers is not None:
        raise SweepError("workers: the number of local processes; with a Dask scheduler "
                         "its workers run the sweep")
    if workers == 0 and threads is not None:
        raise SweepError("threads: workers=0 runs in this process with its own setting "
                         "(lifgrad.set_num_threads)")
    if scheduler is not None and not isinstance(scheduler, str) and not hasattr(scheduler,
                                                                                "submit"):
        raise SweepError(f"scheduler: expected an address 'tcp://host:port' or a "
                         f"dask.distributed.Client, got {scheduler!r}")
    if scheduler is not None and importlib.util.find_spec("distributed") is None:
        raise SweepError("scheduler: Dask is not installed (pip install 'lifgrad[sweep]', "
                         "or 'dask[distributed]')")
    configs = expand(base, grid, random, n_random, seed)
    fields = list(grid or {}) + sorted(random or {})
    say = _say(progress)
    out = os.path.abspath(os.fspath(out))
    runs = os.path.join(out, "runs")
    os.makedirs(runs, exist_ok=True)
    records, todo = {}, []
    for cfg in configs:
        rid = run_id(cfg)
        cfg = dataclasses.replace(cfg, out=os.path.join(runs, rid))
        old = _load_record(os.path.join(runs, rid + ".json"))
        if (isinstance(old, dict) and _same_config(old.get("config"), cfg)
                and (old.get("status") == "ok" or (old.get("status") == "failed"
                                                    and not retry_failed))):
            records[rid] = old
        else:
            todo.append((rid, cfg))
    _write_json(os.path.join(out, "sweep.json"),
                {"base": _plain(dict(base) if isinstance(base, dict) else
                                dataclasses.asdict(base) if base is not None else {}),
                 "grid": _plain(dict(grid or {})), "random": _plain(dict(random or {})),
                 "n_random": n_random, "seed": seed, "run_ids": [run_id(c) for c in configs]})
    skipped = len(records)
    if scheduler is not None:
        where = f"Dask ({scheduler if isinstance(scheduler, str) else 'client'})"
        threads = 1 if threads is None else threads
        results = _dask(todo, scheduler, threads)
    elif workers == 0:
        where = "this process"
        results = _in_process(todo)
    else:
        workers = workers or min(_cpus(), max(1, len(todo)))
        threads = threads or max(1, _cpus() // workers)
        where = f"{workers} local process(es), {threads} thread(s) each"
        results = _local(todo, workers, threads) if todo else iter(())
    say(f"sweep: {len(configs)} configurations, {skipped} done before, {len(todo)} to run "
        f"on {where}; out {out}")
    done = 0
    for rec in results:
        done += 1
        rid = rec["run_id"]
        records[rid] = rec
        if rec["status"] != "lost":
            _write_json(os.path.join(runs, rid + ".json"), rec)
        point = {f: rec["config"][f] for f in fields}
        what = (f"test_acc {rec['metrics']['test_acc']:.4f}" if rec["status"] == "ok"
                else f"{rec['error']['type']}: {rec['error']['message'][:80]}")
        wall = f" ({rec['wall_seconds']:.1f} s)" if rec.get("wall_seconds") is not None else ""
        say(f"[{done}/{len(todo)}] {rec['status']} {rid} {_describe(point)}: {what}{wall}")
    ordered = [records[run_id(c)] for c in configs]
    rows = _rows(ordered, fields)
    csv_path, md_path = _write_tables(out, rows, fields)
    fig = _write_figure(out, ordered, fields)
    return SweepResult(out=out, fields=fields, records=ordered, table_csv=csv_path,
                       table_md=md_path, figure=fig, ran=len(todo), skipped=skipped,
                       wall_seconds=time.perf_counter() - t0)
