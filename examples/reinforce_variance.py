"""How does the variance of the score-function (REINFORCE) estimator grow with T,
and how does it compare with the surrogate gradient?

Panel 1: a tiny 16-8-4 LIF network (sigmoid escape noise k = 4, both layers
stochastic, v ~ Bernoulli(G(u - theta)), (T7)) on a batch of 4 fixed inputs; a
per-step cross-entropy of the output spikes, either averaged over steps
("mean", ce_rate) or summed over steps ("sum").  For T in {4, ..., 64} we draw
n REINFORCE samples (T9) with and without the leave-one-out baseline and
measure the estimator variance, summed over the elements of layer0.W; a line
fitted in log-log gives the exponent.  The deterministic surrogate gradient
has zero sampling variance: for fixed parameters and input it is one number.

Panel 2: a one-layer network small enough to enumerate every spike train
(4 inputs -> 2 neurons, T = 6, 2^12 trains; 4 network seeds, 3 inputs each):
the exact gradient of the expected spike-count cross-entropy (central
differences of expected_loss_exact) beside the surrogate gradient of the
deterministic hard network with the same sigmoid k, the smooth-network
gradient, and a 1500-sample REINFORCE mean, as k varies.

Answer found (printed below): the exponent depends on the loss's normalisation
and on the baseline, so Theta(T^2) is not universal.  Fitted over T = 4..64
(and over T >= 16, past the membrane's start-up transient, which inflates the
short-T slopes): summed loss with baseline T^2.14 (T^1.95), without baseline
T^3.54 (T^3.27); step-averaged loss with baseline T^0.14 (T^-0.05), without
T^1.54 (T^1.27).  Rule behind all four: the score sum S = sum_t dlog p/dW is a
sum of T zero-mean (martingale) terms, Var S ~ T, multiplied by L - b.  Without
a baseline L - b ~ E[L] (~T summed, ~1 averaged) -> T^3 and T^1; with it L - b is
the loss's own fluctuation (~sqrt(T) summed, ~1/sqrt(T) averaged) -> T^2 and
T^0.  So Theta(T^2) is the summed-loss-with-baseline case; there the gradient
itself also grows like T, and the relative variance Var/||E g||^2 stays flat
(93 -> 58).  The deterministic surrogate gradient has zero sampling variance
(two evaluations agree to 0.0).  Against the exact gradient: REINFORCE is
unbiased (cosine 0.99-0.999 for k <= 16) but at k = 32 1500 samples are too
few (cosine 0.53, worst seed -0.87: the score k(v - p) grows with k).  The
surrogate gradient has mean cosine 0.970, 0.997, 0.998, 0.991 at k = 1, 2, 4, 8, 0.80
at k = 0.5 (so much escape noise that the deterministic net is a poor proxy),
and it breaks at k >= 16 (mean 0.51 and 0.08, worst seed -0.9): near-
deterministic spikes make E[L] depend on the few near-threshold crossings
that a single hard trajectory does not see.
"""
from __future__ import annotations

import argparse
import os
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from lifgrad import surrogates, theory  # noqa: E402
from lifgrad.config import LIFConfig  # noqa: E402
from lifgrad.losses import Loss, ce_count, ce_rate  # noqa: E402
from lifgrad.network import Dense, Sequential  # noqa: E402


def ce_sum(v, u, y):
    """Per-step cross-entropy of the spikes summed over steps: T * ce_rate."""
    lo = ce_rate(v, u, y)
    T = v.shape[0]
    return Loss(lo.L * T, lo.dv * T, None)


LOSSES = {"mean (ce_rate)": ce_rate, "sum (T x ce_rate)": ce_sum}


def tiny_net(k, seed=0):
    cfg = LIFConfig(surrogate=surrogates.get("sigmoid", k=k))
    net = Sequential([Dense(16, 8, cfg, alpha=0.8), Dense(8, 4, cfg, alpha=0.8)], seed=seed,
                     dtype="float64")
    net.params["layer0.W"] *= 2.0
    net.params["layer1.W"] *= 2.0
    return net


def fit_exponent(T, var):
    slope, icpt = np.polyfit(np.log(T), np.log(var), 1)
    return slope, icpt


def variance_vs_T(args):
    rng_x = np.random.default_rng(0)
    x = rng_x.uniform(0, 1, (4, 16))
    y = np.array([0, 1, 2, 3])
    net = tiny_net(4.0)
    Ts = np.array(args.Ts)
    res = {}
    print(f"Panel 1: REINFORCE variance of layer0.W (sum over elements), n = {args.n} samples")
    print(f"{'loss':>18} {'baseline':>8} " + " ".join(f"{'T=' + str(t):>10}" for t in Ts)
          + "   exponent")
    for lname, fn in LOSSES.items():
        for base in (False, True):
            var, gn2 = [], []
            for T in Ts:
                rng = np.random.default_rng(1000 + T)
                r = theory.reinforce(net, x, y, loss=fn, T=int(T), n_samples=args.n, rng=rng,
                                     baseline=base)
                var.append(r.variance["layer0.W"])
                gn2.append(float(np.sum(r.mean["layer0.W"] ** 2)))
            var = np.array(var)
            slope, icpt = fit_exponent(Ts, var)
            res[(lname, base)] = (var, slope, icpt, np.array(gn2))
            local = np.diff(np.log(var)) / np.diff(np.log(Ts))
            hi = Ts >= 16
            slope_hi = fit_exponent(Ts[hi], var[hi])[0]
            res[(lname, base)] += (slope_hi,)
            print(f"{lname:>18} {str(base):>8} " + " ".join(f"{v:10.3g}" for v in var)
                  + f"   T^{slope:.2f} (all T), T^{slope_hi:.2f} (T >= 16); local slopes "
                  + " ".join(f"{v:.2f}" for v in local))
    # the surrogate gradient: deterministic, so its sampling variance is 0
    g1 = net.backward(*_hard_grad(net, x, y, ce_sum, 16))
    g2 = net.backward(*_hard_grad(net, x, y, ce_sum, 16))
    print(f"surrogate gradient (hard forward, T=16), two evaluations differ by "
          f"{np.max(np.abs(g1['layer0.W'] - g2['layer0.W'])):.1e}: sampling variance 0")
    # relative variance for the summed loss with baseline: var / ||surrogate grad||^2
    print("relative variance  Var / ||E g||^2 per sample (baseline, sum loss):",
          " ".join(f"{v / max(g, 1e-300):.3g}" for v, g in
                   zip(res[("sum (T x ce_rate)", True)][0], res[("sum (T x ce_rate)", True)][3])))
    return Ts, res


def _hard_grad(net, x, y, fn, T):
    _, tr = net.forward(x, T=T)
    top = tr.layers[-1].trace
    lo = fn(top.v, top.u, y)
    return tr, lo.dv, lo.du


def exact_case(args, k, seed):
    """(E[L], cos surrogate, cos smooth, cos REINFORCE, rate) for one network seed."""
    T, N, n_in = args.T_exact, 2, 4
    rng = np.random.default_rng(100 + seed)
    xs = rng.uniform(0, 1, (3, n_in))
    ys = np.array([0, 1, 0])
    cfg = LIFConfig(surrogate=surrogates.get("sigmoid", k=k))
    net = Sequential([Dense(n_in, N, cfg, alpha=0.8)], seed=seed, dtype="float64")
    net.params["layer0.W"] = net.params["layer0.W"] + 0.3
    keys = ["layer0.W", "layer0.b"]

    def lossS(S, yi):
        c = S.sum(axis=0)                                          # (K, N) counts
        m = c.max(axis=1, keepdims=True)
        return m[:, 0] + np.log(np.exp(c - m).sum(axis=1)) - c[:, yi]   # ce_count per train

    def expected(params):
        old, net.params = net.params, params
        try:
            return np.mean([theory.expected_loss_exact(net, xi, lambda S, yi=yi: lossS(S, yi), T)
                            for xi, yi in zip(xs, ys)])
        finally:
            net.params = old

    exact, h = [], 1e-5
    for key in keys:                                               # central differences
        g = np.zeros_like(net.params[key])
        for idx in np.ndindex(g.shape):
            pp = {kk: vv.copy() for kk, vv in net.params.items()}
            pm = {kk: vv.copy() for kk, vv in net.params.items()}
            pp[key][idx] += h
            pm[key][idx] -= h
            g[idx] = (expected(pp) - expected(pm)) / (2 * h)
        exact.append(g.ravel())
    exact = np.concatenate(exact)
    mm = theory.mismatch_bias(net, xs, ys, loss=ce_count, T=T)
    surr = np.concatenate([mm.surrogate[kk].ravel() for kk in keys])
    smooth = np.concatenate([mm.smooth[kk].ravel() for kk in keys])
    rf = theory.reinforce(net, xs, ys, loss=ce_count, T=T, n_samples=args.n_exact,
                          rng=np.random.default_rng(7 + seed), baseline=True)
    rfv = np.concatenate([rf.mean[kk].ravel() for kk in keys])
    _, tr = net.forward(xs, T=T)
    return (expected(net.params), theory.cosine(surr, exact), theory.cosine(smooth, exact),
            theory.cosine(rfv, exact), float(tr.layers[0].trace.v.mean()))


def exact_vs_surrogate(args):
    print(f"Panel 2: cosine with the exact gradient of E[L] (enumeration, T={args.T_exact}, "
          f"N=2, 3 inputs); mean and min over {args.seeds} network seeds")
    print(f"{'k':>5} {'E[L]':>7} {'surrogate':>16} {'smooth':>16} {'REINFORCE':>16} {'rate':>6}")
    rows = []
    for k in args.ks:
        r = np.array([exact_case(args, k, s) for s in range(args.seeds)])
        mean, mn = r.mean(axis=0), r.min(axis=0)
        rows.append(np.concatenate([[k], mean, mn]))
        print(f"{k:5g} {mean[0]:7.4f} " + " ".join(f"{mean[j]:7.3f} ({mn[j]:6.3f})"
                                                   for j in (1, 2, 3)) + f" {mean[4]:6.3f}")
    return np.array(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="examples/out/reinforce_variance")
    ap.add_argument("--n", type=int, default=600, help="REINFORCE samples per point (panel 1)")
    ap.add_argument("--n-exact", type=int, default=1500, help="REINFORCE samples (panel 2)")
    ap.add_argument("--T-exact", type=int, default=6, help="T of panel 2 (2 T <= 16)")
    ap.add_argument("--seeds", type=int, default=4, help="network seeds of panel 2")
    ap.add_argument("--Ts", type=int, nargs="+", default=[4, 8, 16, 32, 64])
    ap.add_argument("--ks", type=float, nargs="+", default=[0.5, 1, 2, 4, 8, 16, 32])
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    t0 = time.perf_counter()
    Ts, res = variance_vs_T(args)
    t1 = time.perf_counter()
    rows = exact_vs_surrogate(args)
    t2 = time.perf_counter()

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ax = axes[0]
    for (lname, base), (var, slope, icpt, _, slope_hi) in res.items():
        l, = ax.plot(Ts, var, "o-" if base else "s--",
                     label=f"{lname}, {'baseline' if base else 'no baseline'}: "
                           f"T^{slope:.2f} (T>=16: T^{slope_hi:.2f})")
        ax.plot(Ts, np.exp(icpt) * Ts ** slope, ":", color=l.get_color(), lw=1)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("T")
    ax.set_ylabel("Var of REINFORCE estimate of dL/dW0 (summed)")
    ax.set_title("REINFORCE variance vs T (surrogate gradient: variance 0)", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    ax = axes[1]
    for j, (lab, st) in enumerate([("surrogate (hard forward, deterministic)", "o-"),
                                   ("smooth network (forward G)", "s--"),
                                   (f"REINFORCE mean, n={args.n_exact}", "^:")]):
        l, = ax.plot(rows[:, 0], rows[:, 2 + j], st, label=lab + " (mean; band: min)")
        ax.fill_between(rows[:, 0], rows[:, 7 + j], rows[:, 2 + j], color=l.get_color(),
                        alpha=0.12)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("sigmoid sharpness k (escape noise and surrogate)")
    ax.set_ylabel("cosine with exact grad of E[L]")
    ax.set_title(f"1 layer, 4->2, T={args.T_exact}: exact expected-loss gradient "
                 f"(enumeration)", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = os.path.join(args.out, "reinforce_variance.png")
    fig.savefig(path, dpi=120)
    print(f"figure: {path}")
    print(f"run time: {t2 - t0:.1f} s (panel 1 {t1 - t0:.1f} s, panel 2 {t2 - t1:.1f} s)")


if __name__ == "__main__":
    main()
