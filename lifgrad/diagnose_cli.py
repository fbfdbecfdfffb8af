"""The ``lifgrad diagnose`` command (parser and runner; ``lifgrad.cli`` adds it).

::

    lifgrad diagnose --framework snntorch --neuron Leaky --option beta=0.9 \\
                     [--option threshold=0.8 ...] [--surrogate atan --surrogate-option alpha=3] \\
                     [--size N] [--seed S] [--json] [--report DIR]
    lifgrad diagnose FILE.py:FACTORY [--json]        # FACTORY() returns a neuron or a model
    lifgrad diagnose --zoo N [--seed S] [--frameworks snntorch,norse] [--json]

Exit codes: 0 every layer identified and verified; 1 some not; 2 cannot run
(a framework missing, a neuron or option the framework refuses).
"""
from __future__ import annotations

import ast
import json
import sys
import time


def _value(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _pairs(items, what):
    out = {}
    for item in items or ():
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{what}: expected NAME=VALUE, got {item!r}")
        out[key] = _value(val)
    return out


def add_parser(sub):
    """Add ``diagnose`` to the subcommands ``sub`` of ``lifgrad``."""
    p = sub.add_parser("diagnose", help="find the lifgrad configuration that reproduces a peer "
                                        "neuron or model, by probes (exit 0 identified and "
                                        "verified, 1 not, 2 cannot run)")
    p.add_argument("target", nargs="?", metavar="MODULE:FACTORY",
                   help="a .py file (or importable module) and the function that returns the "
                        "neuron or model")
    p.add_argument("--framework", help="the framework of --neuron (snntorch, spikingjelly, "
                                       "norse, sinabs, spyx, rockpool)")
    p.add_argument("--neuron", help="the framework's neuron class, e.g. Leaky, LIFNode, LIFCell")
    p.add_argument("--option", action="append", metavar="NAME=VALUE",
                   help="a constructor keyword (a number, list, bool, None or string)")
    p.add_argument("--surrogate", help="the framework's surrogate: snnTorch's factory, "
                                       "SpikingJelly's or sinabs' class, Norse's method, "
                                       "spyx.axn's factory, Rockpool's spike function")
    p.add_argument("--surrogate-option", action="append", metavar="NAME=VALUE")
    p.add_argument("--size", type=int, default=4, help="neurons of a built neuron (default 4)")
    p.add_argument("--zoo", type=int, metavar="N", help="diagnose N random peer neurons")
    p.add_argument("--frameworks", help="--zoo: comma-separated frameworks (default all six)")
    p.add_argument("--seed", type=int, default=0, help="--zoo: the zoo's seed; else the "
                                                       "verification problem's")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--report", metavar="DIR", help="also write DIR/report.md with figures "
                   "(the identified surrogate against the documented one; the verification's "
                   "relative error over time)")
    p.set_defaults(func=run)
    return p


def _targets(args):
    from . import diagnose_zoo
    if args.target:
        from .factory import call_factory
        obj = call_factory(args.target)
        return [(args.target, obj, None, None)]
    if not (args.framework and args.neuron):
        raise ValueError("diagnose: give MODULE:FACTORY, --framework and --neuron, or --zoo N")
    opts = _pairs(args.option, "--option")
    sp = _pairs(args.surrogate_option, "--surrogate-option")
    module = diagnose_zoo.build_neuron(args.framework, args.neuron, args.size, args.surrogate,
                                       sp, **opts)
    return [(f"{args.framework} {args.neuron}", module, args.framework, args.size)]


def _table(rows, head):
    widths = [max(len(h), *(len(str(r[i])) for r in rows)) if rows else len(h)
              for i, h in enumerate(head)]

    def line(cells):
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
    return "\n".join([line(head)] + [line(r) for r in rows])


def _run_zoo(args):
    from . import diagnose_zoo
    from .diagnose import diagnose
    from .verify.common import quiet_framework
    t0 = time.perf_counter()
    fws = tuple(args.frameworks.split(",")) if args.frameworks else diagnose_zoo.FRAMEWORKS
    with quiet_framework():
        models = diagnose_zoo.zoo(args.zoo, args.seed, fws)
        ds = []
        for zm in models:
            if not args.json:
                print(f"... {zm.name}", file=sys.stderr, flush=True)
            ds.append(diagnose(zm.module, zm.framework, n=zm.n))
    if args.report:
        _report(args, [(zm.name, zm.module, zm.framework, d) for zm, d in zip(models, ds)], t0)
    rows, summary = diagnose_zoo.score(models, ds)
    code = 0 if summary["identified"] == summary["models"] == summary["verified"] else 1
    summary.update(seed=args.seed, seconds=time.perf_counter() - t0, exit_code=code)
    if args.json:
        json.dump({"models": rows, "summary": summary}, sys.stdout, indent=1, default=str)
        print()
        return code
    body = [(i, r["model"], r["config"], ("yes" if r["identified"] else "NO"),
             ("yes" if r["verified"] else "NO"), ", ".join(r["departures"]) or "-",
             "yes" if r["flagged_as_expected"] else "NO (expected " +
             (", ".join(r["expected"]) or "none") + ")") for i, r in enumerate(rows)]
    print(_table(body, ("#", "model", "identified config", "identified", "verified",
                        "departures", "as expected")))
    print(f"\n{summary['models']} models (seed {args.seed}): {summary['identified']} identified, "
          f"{summary['verified']} verified; {summary['with_departures']} depart from their "
          f"arguments, {summary['flagged']} of them flagged; {summary['as_expected']} flagged "
          f"exactly as expected; {summary['seconds']:.1f} s")
    for r, d in zip(rows, ds):
        if not (r["identified"] and r["verified"]):
            print("\n" + d.format())
    return code


def _report(args, results, t0):
    from .diagnose_report import write
    path = write(results, args.report, command="lifgrad " + " ".join(sys.argv[1:])
                 if sys.argv[1:] else None, seconds=time.perf_counter() - t0)
    print(f"report: {path}", file=sys.stderr)


def run(args):
    from .diagnose import diagnose
    from .verify.common import quiet_framework
    try:
        if args.zoo is not None:
            return _run_zoo(args)
        t0 = time.perf_counter()
        with quiet_framework():
            targets = _targets(args)
            results = [(name, diagnose(obj, fw, n=n, seed=args.seed))
                       for name, obj, fw, n in targets]
            if args.report:
                _report(args, [(name, obj, fw, d) for (name, obj, fw, _), (_, d)
                               in zip(targets, results)], t0)
    except ImportError as e:
        print(f"lifgrad diagnose: cannot run: {e}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, AttributeError, FileNotFoundError) as e:
        print(f"lifgrad diagnose: cannot run: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    ok = all(d.identified and d.verified for _, d in results)
    code = 0 if ok else 1
    if args.json:
        json.dump({"targets": [dict(name=name, **d.to_dict()) for name, d in results],
                   "exit_code": code, "seconds": time.perf_counter() - t0}, sys.stdout,
                  indent=1, default=str)
        print()
    else:
        for name, d in results:
            print(d.format())
        print(f"\n{time.perf_counter() - t0:.1f} s")
    return code
