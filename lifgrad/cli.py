"""The ``lifgrad`` command.

    lifgrad check [--quick] [--json] [--failures-only]
        Gradient checks (finite differences, closed form, kernels vs reference)
        over reset modes x detach x strict x surrogates; exits 1 if any fails.
    lifgrad verify {FRAMEWORK,all} [--quick] [--json]   (lifgrad.verify.FRAMEWORKS)
        Compare each framework's autograd gradients with lifgrad's, neuron by
        neuron, variant by variant, surrogate by surrogate.
    lifgrad verify robustness [--quick] [--json]
        Float32 sweep of every surrogate preset, the frameworks' own backward
        and lifgrad's phi and G: NaN, Inf, overflow, denormals (exit 1 if
        lifgrad's give a NaN or an Inf).
    lifgrad verify FILE.py:FACTORY (--input X.npy | --shape T B N) [--layout BTN]
        The same for your own model (FACTORY() returns it).  Exit codes:
        0 agree, 1 disagree, 2 cannot run (framework missing, model unsupported
        or outside lifgrad's domain).
    lifgrad diagnose (--framework F --neuron X [--option k=v ...] | MODULE:FACTORY
                      | --zoo N --seed S) [--json]
        Find the lifgrad configuration that reproduces a peer neuron or model
        by probes, verify it, and list where it departs from its arguments
        (lifgrad.diagnose).  Exit 0 identified and verified, 1 not, 2 cannot run.
    lifgrad train --dataset {digits,fashion-mnist,mnist,yinyang,randman,shd,ssc,nmnist}
                  [--data-dir DIR] [--config FILE] ...
        Train a network; metrics, checkpoints and figures go to --out.  The
        temporal data sets (randman, shd, ssc, nmnist) default to --encoder
        events and are binned into --T steps.
    lifgrad evaluate CHECKPOINT_DIR
        Test accuracy of a saved checkpoint.
    lifgrad sweep [--config FILE] [--grid FIELD=V1,V2 ...] [--random SPEC.json --n N
                  --seed S] --out DIR [--workers N | --scheduler tcp://HOST:PORT]
                  [--threads N] [--retry-failed] [--quiet]
        A grid or random search over TrainConfig fields (lifgrad.sweep); one
        record per run, resumable, a table and a figure in --out.  Exit 1 if a
        run failed.
    lifgrad theory compare [--samples N] [--json]
        Every gradient estimator (surrogate families, straight-through, spike
        operator, smooth forward, REINFORCE) against the exact gradient of the
        expected loss on a tiny network.
    lifgrad demo [--out DIR]
        The main job of ``make demo``: train on digits, verify gradients, write
        figures and a report.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time


def _cmd_check(args):
    from . import check
    t0 = time.perf_counter()
    progress = None if args.json else (lambda m: print(f"... {m}", file=sys.stderr, flush=True))
    rows = check.run_suite(quick=args.quick, progress=progress)
    elapsed = time.perf_counter() - t0
    n_fail = sum(not r.passed for r in rows)
    if args.json:
        json.dump({"rows": [dict(r._asdict(), error=float(r.error), passed=r.passed) for r in rows],
                   "passed": len(rows) - n_fail, "failed": n_fail, "seconds": elapsed},
                  sys.stdout, indent=1)
        print()
    else:
        print(check.format_table(rows, only_failures=args.failures_only))
        worst = {}
        for r in rows:
            worst[r.check] = max(worst.get(r.check, 0.0), float(r.error))
        print("worst error per check: " + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()))
        print(f"{elapsed:.1f} s")
    return 1 if n_fail else 0


def _report_json(r):
    return dict(framework=r.framework, neuron=r.neuron, variant=r.variant, surrogate=r.surrogate,
                status=r.status, spike_mismatches=r.spike_mismatches, spike_where=r.spike_where,
                worst_rel=float(r.worst), passed=r.passed, out_of_domain=r.out_of_domain,
                rows=[dict(quantity=q.quantity, max_abs=float(q.max_abs),
                           max_rel=float(q.max_rel), status=q.status, where=q.where,
                           limit=q.limit) for q in r.rows],
                coverage=[c._asdict() for c in r.coverage], warnings=list(r.warnings),
                notes=list(r.notes))


def _print_notes(reports):
    notes = {}
    for r in reports:
        for n in r.notes:
            notes.setdefault(n, r.framework)
    if notes:
        print("\nWhere the frameworks differ from their documentation or need care:")
        for n, fw in notes.items():
            print(f"  [{fw}] {n}")


def _exit_code(reports):
    """0: every gradient agrees (exactly or within a documented precision
    limit); 1: some disagree; 2: some case could not be checked."""
    from .verify.common import DISAGREES
    if any(r.status == DISAGREES for r in reports):
        return 1
    return 0 if all(r.passed for r in reports) else 2


def _load_model(target, args):
    """``FILE.py:FACTORY`` or ``package.module:FACTORY`` -> (model, x)."""
    import numpy as np

    from .factory import call_factory
    model = call_factory(target)
    if args.input:
        x = np.load(args.input)
    elif args.shape:
        x = np.random.default_rng(args.seed).uniform(0.0, 1.0, tuple(args.shape)) * args.scale
    else:
        raise ValueError("verify MODULE:FACTORY needs --input FILE.npy or --shape T B N "
                         "(the input the model's forward takes)")
    return model, x


def _cmd_robustness(args):
    from .verify import robustness
    t0 = time.perf_counter()
    progress = None if args.json else (lambda m: print(f"... {m}", file=sys.stderr, flush=True))
    rows = robustness.float32_sweep(quick=args.quick, progress=progress)
    code = 0 if robustness.lifgrad_finite(rows) else 1
    if args.json:
        json.dump({"rows": [r.as_dict() for r in rows], "exit_code": code,
                   "seconds": time.perf_counter() - t0}, sys.stdout, indent=1)
        print()
    else:
        print(robustness.format_table(rows))
        print(f"{time.perf_counter() - t0:.1f} s")
    return code


def _cmd_backends(args):
    from .verify import backends
    t0 = time.perf_counter()
    progress = None if args.json else (lambda m: print(f"... {m}", file=sys.stderr, flush=True))
    try:
        pairs = backends.run(seed=args.seed, progress=progress)
    except Exception as e:                 # a framework failing inside: not a verdict
        print(f"lifgrad verify backends: cannot run: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    ran = [p for p in pairs if not p.unavailable]
    code = 0 if ran and all(p.passed for p in ran) else (1 if ran else 2)
    if args.report:
        from .verify import report as _rep
        text = "```\n" + backends.format_pairs(pairs) + "\n```"
        path = _rep.write([r for p in ran for r in (p.a, p.b)], args.report,
                          title="lifgrad verify backends",
                          command="lifgrad " + " ".join(sys.argv[1:]) if sys.argv[1:] else None,
                          seconds=time.perf_counter() - t0,
                          sections=(_rep.Section("Two backends, lifgrad the third party",
                                                 text),))
        print(f"report: {path}", file=sys.stderr)
    if args.json:
        json.dump({"pairs": [dict(framework=p.framework, backends=list(p.backends),
                                  variant=p.variant, unavailable=p.unavailable,
                                  verdicts=p.verdicts, status=p.status,
                                  a=_report_json(p.a) if p.a else None,
                                  b=_report_json(p.b) if p.b else None,
                                  a_vs_b=_report_json(p.ab) if p.ab else None)
                             for p in pairs],
                   "exit_code": code, "seconds": time.perf_counter() - t0}, sys.stdout, indent=1)
        print()
    else:
        print(backends.format_pairs(pairs))
        print(f"{time.perf_counter() - t0:.1f} s")
    return code


def _cmd_verify(args):
    from . import verify
    target = args.framework
    if target == "robustness":
        return _cmd_robustness(args)
    if target == "backends":
        return _cmd_backends(args)
    t0 = time.perf_counter()
    if ":" in target:
        try:
            from .verify.common import quiet_framework
            with quiet_framework():
                model, x = _load_model(target, args)
                reports = [verify.compare(model, x, seed=args.seed, layout=args.layout)]
        except ImportError as e:
            print(f"lifgrad verify: cannot run: {e}", file=sys.stderr)
            return 2
        except (ValueError, TypeError, FileNotFoundError) as e:
            print(f"lifgrad verify: cannot check this model: {e}", file=sys.stderr)
            return 2
    else:
        if target not in verify.FRAMEWORKS + ("all",):
            print(f"lifgrad verify: expected {', '.join(verify.FRAMEWORKS)}, all or "
                  f"MODULE:FACTORY, got {target!r}", file=sys.stderr)
            return 2
        frameworks = verify.FRAMEWORKS if target == "all" else (target,)
        try:
            for fw in frameworks:
                verify.adapter(fw)
        except ImportError as e:
            print(f"lifgrad verify: cannot run: {e}", file=sys.stderr)
            return 2
        progress = None if args.json else (lambda m: print(f"... {m}", file=sys.stderr,
                                                           flush=True))
        try:
            reports = verify.run_suite(frameworks, quick=args.quick, progress=progress)
        except Exception as e:                 # a framework failing inside: not a verdict
            import traceback
            traceback.print_exc()
            print(f"lifgrad verify: cannot run: {type(e).__name__}: {e}", file=sys.stderr)
            return 2
    code = _exit_code(reports)
    if args.report:
        from .verify import report as _rep
        path = _rep.write(reports, args.report, title=f"lifgrad verify {target}",
                          command="lifgrad " + " ".join(sys.argv[1:]) if sys.argv[1:]
                          else None, seconds=time.perf_counter() - t0)
        print(f"report: {path}", file=sys.stderr)
    if args.json:
        json.dump({"cases": [_report_json(r) for r in reports],
                   "passed": sum(r.passed for r in reports),
                   "failed": sum(not r.passed for r in reports), "exit_code": code,
                   "seconds": time.perf_counter() - t0}, sys.stdout, indent=1)
        print()
    else:
        print(verify.format_reports(reports))
        _print_notes(reports)
        print(f"{time.perf_counter() - t0:.1f} s")
    return code


_TRAIN_OPTIONS = {
    # flag: (TrainConfig field, type, help)
    "--data-dir": ("data_dir", str, "folder of the data files: MNIST-format IDX files, "
                   "shd_train.h5 + shd_test.h5 (ssc_*), or N-MNIST's Train/ and Test/"),
    "--hidden": ("hidden", int, "hidden layer sizes, e.g. --hidden 256 128"),
    "--model": ("model", str, "lif | synaptic | adaptive | recurrent | recurrent_adaptive "
                "(hidden layers)"),
    "--reset": ("reset", str, "subtract | zero | none"),
    "--surrogate": ("surrogate", str, "surrogate name or preset (e.g. atan, snntorch.sigmoid)"),
    "--alpha": ("alpha", float, "membrane decay per step"),
    "--theta": ("theta", float, "threshold"),
    "--T": ("T", int, "time steps"),
    "--encoder": ("encoder", str, "static | poisson | latency | events (spike-train data "
                  "sets: randman, shd, ssc, nmnist; their default)"),
    "--loss": ("loss", str, "ce_membrane | ce_rate | ce_count | ce_max_membrane | mse_count | mse_membrane"),
    "--optimizer": ("optimizer", str, "adam | adamw | sgd"),
    "--lr": ("lr", float, "learning rate"),
    "--schedule": ("schedule", str, "constant | step | cosine"),
    "--clip": ("clip", float, "gradient-norm clipping"),
    "--l1": ("l1", float, "spike-count regulariser on hidden layers"),
    "--batch-size": ("batch_size", int, "batch size"),
    "--epochs": ("epochs", int, "epochs"),
    "--seed": ("seed", int, "seed of initialisation, shuffling and encoders"),
    "--max-train": ("max_train", int, "use only the first N training samples"),
    "--dtype": ("dtype", str, "float32 | float64"),
    "--backend": ("backend", str, "cpu | reference | cuda (device-resident training on an "
                  "NVIDIA GPU, needs numba-cuda: pip install lifgrad[cuda])"),
    "--out": ("out", str, "output folder"),
    "--checkpoint-every": ("checkpoint_every", int, "BPTT checkpointing: keep every layer's "
                           "state each K steps and recompute segments in the backward "
                           "(memory O(T/K + K), same gradients; K ~ sqrt(T))"),
    "--memory-budget": ("memory_budget_mb", float, "or choose K for this many MiB of trace "
                        "memory (the full trace when it fits; lifgrad.checkpoint."
                        "every_for_budget)"),
    "--calibrate-surrogates": ("calibrate", int, "set surrogate amplitudes by the calibration "
                               "rule (T6) at the start (no value) or every N steps"),
}


def _train_config(args):
    from .train import TrainConfig
    base = {}
    if args.config:
        with open(args.config) as f:
            base = json.load(f)
    base["dataset"] = args.dataset or base.get("dataset", "digits")
    from .data import TEMPORAL
    if base["dataset"] in TEMPORAL and args.encoder is None and "encoder" not in base:
        base["encoder"] = "events"          # spike trains are the input as they are
    for flag, (field, _, _) in _TRAIN_OPTIONS.items():
        val = getattr(args, field)
        if val is not None:
            base[field] = tuple(val) if field == "hidden" else val
    if args.readout:
        base["readout"] = True
    return TrainConfig.from_dict(base)


def _cmd_train(args):
    from . import train
    try:
        cfg = _train_config(args).validate()
        t0 = time.perf_counter()
        hist = train.fit(cfg, resume=args.resume, progress=False if args.quiet else None)
    except train.TrainingDiverged as e:
        print(f"lifgrad train: {e}", file=sys.stderr)
        return 3
    except (ValueError, FileNotFoundError, RuntimeError) as e:   # RuntimeError: no CUDA device
        print(f"lifgrad train: {e}", file=sys.stderr)
        return 2
    last = hist[-1]
    print(f"test accuracy {last['test_acc']:.4f} after {last['epoch']} epochs "
          f"({time.perf_counter() - t0:.1f} s); output in {cfg.out}")
    return 0


def _cmd_sweep(args):
    from . import sweep
    try:
        base = {}
        if args.config:
            with open(args.config) as f:
                base = json.load(f)
        base.pop("out", None)               # each run writes to --out/runs/<run id>/
        from .data import TEMPORAL          # as for train: spike-train data default to events
        if base.get("dataset", "digits") in TEMPORAL and "encoder" not in base:
            base["encoder"] = "events"
        random = None
        if args.random:
            with open(args.random) as f:
                random = json.load(f)
        res = sweep.run(base, grid=sweep.parse_grid(args.grid or []), random=random,
                        n_random=args.n, seed=args.seed, out=args.out,
                        scheduler=args.scheduler, workers=args.workers, threads=args.threads,
                        retry_failed=args.retry_failed, progress=not args.quiet)
    except (ValueError, FileNotFoundError, OSError) as e:
        print(f"lifgrad sweep: {e}", file=sys.stderr)
        return 2
    n_bad = len(res.failed)
    print(f"{len(res.records)} runs ({res.ran} ran, {res.skipped} done before), "
          f"{len(res.records) - n_bad} ok, {n_bad} failed, {res.wall_seconds:.1f} s")
    print(f"table: {res.table_md} (and {os.path.basename(res.table_csv)}); "
          f"figure: {res.figure}")
    return 1 if n_bad else 0


def _cmd_evaluate(args):
    from . import train
    try:
        cfg, net, _, meta = train.load_checkpoint(args.checkpoint)
        ds = train.load_dataset(cfg, args.data_dir)
    except (ValueError, FileNotFoundError) as e:
        print(f"lifgrad evaluate: {e}", file=sys.stderr)
        return 2
    acc = train.evaluate(net, cfg, ds.x_test, ds.y_test)
    print(f"{cfg.dataset}: test accuracy {acc:.4f} (checkpoint of epoch {meta['epoch'] + 1})")
    return 0


DEMO_CONFIG = dict(dataset="digits", hidden=(128,), readout=True, alpha=0.8, theta=1.0,
                   surrogate="fast_sigmoid", T=16, encoder="static", loss="ce_membrane",
                   optimizer="adam", lr=1e-2, schedule="cosine", batch_size=32, epochs=30, seed=0)


def _cmd_theory(args):
    from . import theory
    t0 = time.perf_counter()
    rows, exact = theory.compare_estimators(seed=args.seed, T=args.T, k=args.k,
                                            n_samples=args.samples)
    if args.json:
        json.dump({"rows": [dict(estimator=n, cosine=c, norm_rel_err=r, variance=v)
                            for n, c, r, v in rows], "seconds": time.perf_counter() - t0},
                  sys.stdout, indent=1)
        print()
    else:
        print(f"Gradient of layer0.W of a {4}-3 LIF layer, T={args.T}, against the exact gradient "
              f"of the expected loss under escape noise p = sigmoid({args.k:g} (u - theta)),\n"
              f"by enumeration of all 2^(T*3) spike trains (loss 0.5 sum (count - target)^2):\n")
        print(theory.format_compare(rows))
        print(f"\n{time.perf_counter() - t0:.1f} s")
    return 0


def _cmd_demo(args):
    """Train on digits, verify gradients, write figures and a markdown report."""
    from . import check, data, plot, train
    out = args.out
    os.makedirs(out, exist_ok=True)
    t0 = time.perf_counter()
    cfg = train.TrainConfig.from_dict(dict(DEMO_CONFIG, out=os.path.join(out, "run")))
    print(f"lifgrad demo: training a {64}-{cfg.hidden[0]}-10 spiking network on scikit-learn's "
          f"digits ({cfg.epochs} epochs, T={cfg.T})", flush=True)
    hist = train.fit(cfg, progress=False if args.quiet else None)
    t_train = time.perf_counter() - t0
    acc = hist[-1]["test_acc"]
    print(f"  test accuracy {acc:.4f} (held-out 20 %, seed {cfg.seed}), {t_train:.1f} s", flush=True)
    print("lifgrad demo: verifying gradients (quick suite)", flush=True)
    t1 = time.perf_counter()
    rows = check.run_suite(quick=True)
    n_fail = sum(not r.passed for r in rows)
    worst = {}
    for r in rows:
        worst[r.check] = max(worst.get(r.check, 0.0), float(r.error))
    for k, v in worst.items():
        print(f"  {k:<18} worst error {v:.2e}")
    print(f"  {len(rows) - n_fail}/{len(rows)} checks passed ({time.perf_counter() - t1:.1f} s)")
    # figures
    net = hist.network
    ds = data.load("digits", seed=cfg.seed)
    _, tr = net.forward(ds.x_test[:8], T=cfg.T)
    hidden = tr.layers[0].trace
    figs = [plot.training_curves(hist, os.path.join(out, "training_curves.png")),
            plot.raster(hidden.v, os.path.join(out, "raster_hidden.png"),
                        title="hidden layer spikes, test sample 0"),
            plot.membrane_traces(hidden.u, hidden.v, cfg.theta, os.path.join(out, "membrane.png")),
            plot.surrogate_shapes(["atan", "sigmoid", "fast_sigmoid", "triangle", "gaussian"],
                                  os.path.join(out, "surrogates.png")),
            plot.gradient_norms(hist, os.path.join(out, "gradient_norms.png"))]
    total = time.perf_counter() - t0
    lines = ["# lifgrad demo report", "",
             f"Network 64-{cfg.hidden[0]}-10 (LIF hidden layer, leaky-integrator readout), "
             f"T = {cfg.T}, alpha = {cfg.alpha}, surrogate {cfg.surrogate}, Adam lr {cfg.lr} "
             f"with cosine decay, batch {cfg.batch_size}, {cfg.epochs} epochs, seed {cfg.seed}.", "",
             f"* test accuracy (scikit-learn digits, held-out 20 %): **{acc:.4f}**",
             f"* training time: {t_train:.1f} s; whole demo: {total:.1f} s",
             f"* hidden firing rate (last epoch): {hist[-1]['rate_layer0']:.3f} spikes/step",
             f"* gradient checks: {len(rows) - n_fail}/{len(rows)} passed", ""]
    lines += [f"  * {k}: worst relative error {v:.1e}" for k, v in worst.items()]
    lines += ["", "| epoch | loss | train acc | test acc | seconds |", "|---|---|---|---|---|"]
    lines += [f"| {r['epoch']} | {r['loss']:.4f} | {r['train_acc']:.4f} | {r['test_acc']:.4f} | "
              f"{r['seconds']:.2f} |" for r in hist]
    lines += [""] + [f"![{os.path.basename(f)}]({os.path.basename(f)})" for f in figs]
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"lifgrad demo: figures and report.md in {out} ({total:.1f} s in all)")
    return 1 if (n_fail or acc < 0.97) else 0


def _frameworks():
    from .verify import FRAMEWORKS      # the registered adapters (imports no framework)
    return FRAMEWORKS


def build_parser():
    p = argparse.ArgumentParser(prog="lifgrad", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="verify gradients and kernels; exit 1 on any failure")
    c.add_argument("--quick", action="store_true", help="fewer surrogates and sizes")
    c.add_argument("--json", action="store_true", help="machine-readable output")
    c.add_argument("--failures-only", action="store_true", help="print failing rows only")
    c.set_defaults(func=_cmd_check)
    v = sub.add_parser("verify", help="compare autograd frameworks' gradients with lifgrad's "
                       "(exit 0 agree, 1 disagree, 2 cannot run)")
    v.add_argument("framework", metavar="{" + ",".join(_frameworks()) +
                   ",all,robustness,backends,MODULE:FACTORY}",
                   help="a framework's curated cases, all of them, the float32 robustness "
                        "sweep of the surrogate presets, two backends of one framework "
                        "with lifgrad as the third party, or your own model: a .py "
                        "file (or importable module) and the function that returns it")
    v.add_argument("--quick", action="store_true", help="a few cases per framework")
    v.add_argument("--json", action="store_true", help="machine-readable output")
    v.add_argument("--input", help="MODULE:FACTORY: the model's input, a .npy file")
    v.add_argument("--shape", type=int, nargs="+", help="MODULE:FACTORY: a random input of "
                   "this shape (uniform in [0, scale))")
    v.add_argument("--scale", type=float, default=1.0, help="of the random input (default 1)")
    v.add_argument("--layout", choices=["TBN", "BTN"], default="TBN",
                   help="how an nn.Sequential reads the input (default TBN: time first)")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--report", metavar="DIR", help="also write DIR/report.md with figures "
                   "(relative error per case, and per layer over time)")
    v.set_defaults(func=_cmd_verify)
    from .diagnose_cli import add_parser as _add_diagnose   # lifgrad diagnose (its own module)
    _add_diagnose(sub)
    t = sub.add_parser("train", help="train a network")
    t.add_argument("--dataset", choices=["digits", "fashion-mnist", "mnist", "yinyang", "randman",
                                         "shd", "ssc", "nmnist"], default=None)
    t.add_argument("--config", help="JSON file of TrainConfig fields (flags override it)")
    for flag, (field, typ, hlp) in _TRAIN_OPTIONS.items():
        extra = {"nargs": "+"} if field == "hidden" else (
            {"nargs": "?", "const": 0} if field == "calibrate" else {})
        t.add_argument(flag, dest=field, type=typ, default=None, help=hlp, **extra)
    t.add_argument("--readout", action="store_true", help="leaky-integrator output layer")
    t.add_argument("--resume", action="store_true", help="continue from --out's checkpoint")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=_cmd_train)
    sw = sub.add_parser("sweep", help="grid or random search over TrainConfig fields "
                        "(exit 1 if a run failed, 2 if the sweep is invalid)")
    sw.add_argument("--config", help="JSON file of TrainConfig fields, the base of every run "
                    "(as for train; its out is ignored)")
    sw.add_argument("--grid", action="append", metavar="FIELD=V1,V2,...",
                    help="values of a field (JSON or strings; repeat for a product)")
    sw.add_argument("--random", metavar="SPEC.json", help='random search space: {"lr": '
                    '{"loguniform": [1e-4, 1e-2]}, "surrogate": {"choice": ["atan"]}, ...}')
    sw.add_argument("--n", type=int, default=None, help="random configurations to draw")
    sw.add_argument("--seed", type=int, default=0, help="of the random search (default 0)")
    sw.add_argument("--out", required=True, help="sweep folder (a re-run resumes it)")
    sw.add_argument("--workers", type=int, default=None,
                    help="local processes (default one per CPU; 0: in this process)")
    sw.add_argument("--scheduler", default=None, help="Dask scheduler address tcp://HOST:PORT")
    sw.add_argument("--threads", type=int, default=None, help="lifgrad threads per run")
    sw.add_argument("--retry-failed", action="store_true", help="run failed runs again")
    sw.add_argument("--quiet", action="store_true", help="no line per run")
    sw.set_defaults(func=_cmd_sweep)
    e = sub.add_parser("evaluate", help="test accuracy of a checkpoint")
    e.add_argument("checkpoint", help="output folder of a training run")
    e.add_argument("--data-dir", default=None)
    e.set_defaults(func=_cmd_evaluate)
    th = sub.add_parser("theory", help="theory tools")
    thsub = th.add_subparsers(dest="what", required=True)
    tc = thsub.add_parser("compare", help="gradient estimators against the expected-loss gradient")
    tc.add_argument("--samples", type=int, default=2000, help="REINFORCE samples")
    tc.add_argument("--T", type=int, default=4, choices=range(1, 6), metavar="T (1..5)")
    tc.add_argument("--k", type=float, default=2.0, help="escape-noise sharpness")
    tc.add_argument("--seed", type=int, default=0)
    tc.add_argument("--json", action="store_true")
    tc.set_defaults(func=_cmd_theory)
    d = sub.add_parser("demo", help="the main job: train on digits, verify gradients, report")
    d.add_argument("--out", default="demo-output", help="folder for figures and report.md")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    d.set_defaults(func=_cmd_demo)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
