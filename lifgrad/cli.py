"""The ``lifgrad`` command.

    lifgrad check [--quick] [--json] [--failures-only]
        Gradient checks (finite differences, closed form, kernels vs reference)
        over reset modes x detach x strict x surrogates; exits 1 if any fails.
    lifgrad verify {snntorch,spikingjelly,norse,all} [--quick] [--json]
        Compare each framework's autograd gradients with lifgrad's, neuron by
        neuron, variant by variant, surrogate by surrogate; exits 1 if any fails.
    lifgrad demo
        The main job of ``make demo``.
"""
from __future__ import annotations

import argparse
import json
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


def _cmd_verify(args):
    from . import verify
    frameworks = verify.FRAMEWORKS if args.framework == "all" else (args.framework,)
    try:
        for fw in frameworks:
            verify.adapter(fw)
    except ImportError as e:
        print(f"lifgrad verify: {e}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    progress = None if args.json else (lambda m: print(f"... {m}", file=sys.stderr, flush=True))
    reports = verify.run_suite(frameworks, quick=args.quick, progress=progress)
    n_fail = sum(not r.passed for r in reports)
    if args.json:
        json.dump({"cases": [dict(framework=r.framework, neuron=r.neuron, variant=r.variant,
                                  surrogate=r.surrogate, spike_mismatches=r.spike_mismatches,
                                  worst_rel=float(r.worst), passed=r.passed,
                                  rows=[dict(quantity=q.quantity, max_abs=float(q.max_abs),
                                             max_rel=float(q.max_rel)) for q in r.rows],
                                  notes=list(r.notes)) for r in reports],
                   "passed": len(reports) - n_fail, "failed": n_fail,
                   "seconds": time.perf_counter() - t0}, sys.stdout, indent=1)
        print()
    else:
        print(verify.format_reports(reports))
        notes = {}
        for r in reports:
            for n in r.notes:
                notes.setdefault(n, r.framework)
        if notes:
            print("\nWhere the frameworks differ from their documentation or need care:")
            for n, fw in notes.items():
                print(f"  [{fw}] {n}")
        print(f"{time.perf_counter() - t0:.1f} s")
    return 1 if n_fail else 0


def _cmd_demo(args):
    """Verify gradients (quick suite) and report.  Training joins in a later release."""
    from . import check
    print("lifgrad demo: quick gradient verification")
    rows = check.run_suite(quick=True)
    n_fail = sum(not r.passed for r in rows)
    worst = {}
    for r in rows:
        worst[r.check] = max(worst.get(r.check, 0.0), float(r.error))
    for k, v in worst.items():
        print(f"  {k:<18} worst error {v:.2e}")
    print(f"{len(rows) - n_fail}/{len(rows)} checks passed")
    return 1 if n_fail else 0


def build_parser():
    p = argparse.ArgumentParser(prog="lifgrad", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="verify gradients and kernels; exit 1 on any failure")
    c.add_argument("--quick", action="store_true", help="fewer surrogates and sizes")
    c.add_argument("--json", action="store_true", help="machine-readable output")
    c.add_argument("--failures-only", action="store_true", help="print failing rows only")
    c.set_defaults(func=_cmd_check)
    v = sub.add_parser("verify", help="compare autograd frameworks' gradients with lifgrad's")
    v.add_argument("framework", choices=["snntorch", "spikingjelly", "norse", "all"])
    v.add_argument("--quick", action="store_true", help="a few cases per framework")
    v.add_argument("--json", action="store_true", help="machine-readable output")
    v.set_defaults(func=_cmd_verify)
    d = sub.add_parser("demo", help="the main job: verify gradients")
    d.set_defaults(func=_cmd_demo)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
