"""Figures of training runs, spike trains and surrogates (matplotlib).

Each function writes one PNG and returns its path.  Imported only when
plotting (``import lifgrad`` does not import matplotlib).  The figures are
drawn on matplotlib's Agg canvas directly (``matplotlib.figure.Figure``), not
through ``pyplot``: no display is needed, no backend is selected or changed
for the caller, and no figure is left open in pyplot's registry.

``history`` arguments are what :func:`lifgrad.train.fit` returns (a list of
per-epoch dicts with ``epoch``, ``loss``, ``train_acc``, ``test_acc``,
``grad_norm_layer{i}``, ...), or the path of a run folder, ``metrics.jsonl``
or ``metrics.csv``.
"""
from __future__ import annotations

import csv
import json
import math
import os

import numpy as np

__all__ = ["training_curves", "raster", "membrane_traces", "surrogate_shapes",
           "gradient_norms", "load_history", "DPI"]

DPI = 110
_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")


# --------------------------------------------------------------------- helpers

def _figure(width, height):
    from matplotlib.figure import Figure
    return Figure(figsize=(width, height), dpi=DPI)


def _save(fig, path):
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"            # written whole, then renamed
    try:
        fig.savefig(tmp, dpi=DPI, format="png", facecolor="white")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    fig.clear()
    return path


def load_history(source):
    """A list of per-epoch dicts from a list, a run folder, ``metrics.jsonl`` or ``.csv``."""
    if isinstance(source, (str, os.PathLike)):
        p = os.fspath(source)
        if os.path.isdir(p):
            for name in ("metrics.jsonl", "metrics.csv"):
                if os.path.exists(os.path.join(p, name)):
                    p = os.path.join(p, name)
                    break
            else:
                raise FileNotFoundError(f"history: no metrics.jsonl or metrics.csv in {p}")
        if p.endswith(".csv"):
            with open(p, newline="") as f:
                rows = [{k: _num(v) for k, v in r.items()} for r in csv.DictReader(f)]
        else:
            with open(p) as f:
                rows = [json.loads(line) for line in f if line.strip()]
        return rows
    rows = list(source)
    if not all(isinstance(r, dict) for r in rows):
        raise TypeError("history: expected a list of per-epoch dicts (what fit() returns), "
                        "a run folder, or the path of metrics.jsonl / metrics.csv")
    return rows


def _num(s):
    if s is None or s == "":
        return None
    try:
        return float(s)
    except ValueError:
        return s


def _column(rows, key):
    """(epochs, values) of the rows that have a finite ``key``."""
    xs, ys = [], []
    for i, r in enumerate(rows):
        v = r.get(key)
        if v is None:
            continue
        v = float(v)
        if math.isfinite(v):
            xs.append(float(r.get("epoch", i + 1)))
            ys.append(v)
    return np.asarray(xs), np.asarray(ys)


def _history(history):
    rows = load_history(history)
    if not rows:
        raise ValueError("history: expected at least one epoch, got none")
    return rows


def _epoch_axis(ax, rows):
    ax.set_xlabel("epoch")
    n = len(rows)
    if n <= 20:
        ax.set_xticks([float(r.get("epoch", i + 1)) for i, r in enumerate(rows)])
    ax.grid(True, alpha=0.3)


def _as_array(name, a, ndim):
    a = np.asarray(a)
    if a.ndim not in ndim:
        raise ValueError(f"{name}: expected an array of {' or '.join(map(str, ndim))} "
                         f"dimensions, got shape {a.shape}")
    return a


# --------------------------------------------------------------------- figures

def training_curves(history, path, title="Training curves"):
    """Loss (left) and train/test accuracy (right) per epoch; returns ``path``."""
    rows = _history(history)
    fig = _figure(10, 4.6)
    ax_l, ax_a = fig.subplots(1, 2)
    e, loss = _column(rows, "loss")
    ax_l.plot(e, loss, "o-", color=_COLORS[0], label="training loss")
    ax_l.set_ylabel("loss (mean per sample)")
    ax_l.set_title("Loss")
    _epoch_axis(ax_l, rows)
    ax_l.legend(loc="upper right")
    for key, label, c in (("train_acc", "train (during the epoch)", _COLORS[0]),
                          ("test_acc", "test (after the epoch)", _COLORS[1])):
        e, acc = _column(rows, key)
        if len(acc):
            ax_a.plot(e, 100 * acc, "o-", color=c,
                      label=f"{label}: last {100 * acc[-1]:.2f} %, best {100 * acc.max():.2f} %")
    ax_a.set_ylabel("accuracy (%)")
    ax_a.set_title("Accuracy")
    _epoch_axis(ax_a, rows)
    ax_a.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=9, frameon=False)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def raster(spikes, path, sample=0, title="Spike raster", max_neurons=None):
    """Spike raster of one sample: ``spikes`` is ``(T, B, N)`` (or ``(T, N)``).

    Top panel: fraction of neurons spiking at each step; main panel: neuron
    index against time step, black where a spike was emitted.  ``max_neurons`` shows only
    the first neurons.  Returns ``path``.
    """
    s = _as_array("spikes", spikes, (2, 3))
    if s.ndim == 3:
        if not -s.shape[1] <= sample < s.shape[1]:
            raise ValueError(f"sample: expected an index below {s.shape[1]}, got {sample}")
        s = s[:, sample, :]
    if max_neurons is not None:
        s = s[:, :max_neurons]
    T, N = s.shape
    active = s != 0
    fig = _figure(8, 6.5)
    gs = fig.add_gridspec(2, 1, height_ratios=(1, 4), hspace=0.08)
    ax_r = fig.add_subplot(gs[0])
    ax = fig.add_subplot(gs[1], sharex=ax_r)
    ax_r.bar(np.arange(T), active.mean(axis=1), width=0.8, color=_COLORS[0])
    ax_r.set_ylabel("fraction\nspiking")
    ax_r.tick_params(labelbottom=False)
    ax_r.grid(True, alpha=0.3)
    ax_r.set_title(f"{title}\n(sample {sample}: {N} neurons, {T} steps, "
                   f"{int(active.sum())} spikes, rate {active.mean():.3f})")
    # One cell per (step, neuron), black where a spike was emitted: with few
    # steps and many neurons this stays readable where one marker per spike
    # would merge into solid columns.
    ax.imshow(active.T.astype(float), cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto",
              origin="lower", interpolation="nearest",
              extent=(-0.5, T - 0.5, -0.5, N - 0.5))
    ax.set_xlim(-0.5, T - 0.5)
    ax.set_ylim(-0.5, N - 0.5)
    ax.set_xlabel("time step")
    ax.set_ylabel("neuron")
    return _save(fig, path)


def membrane_traces(u, v, theta, path, sample=0, neurons=(0, 1, 2),
                    title="Membrane potential"):
    """Membrane ``u`` of a few neurons over time, with the threshold and spikes.

    ``u``, ``v``: ``(T, B, N)`` (or ``(T, N)``) membrane (lifgrad traces hold the
    pre-reset value) and spikes; ``theta``: scalar or ``(N,)``.  One panel per
    neuron; spikes are marked on the membrane where they were emitted.
    Returns ``path``.
    """
    u = _as_array("u", u, (2, 3))
    v = _as_array("v", v, (2, 3))
    if u.shape != v.shape:
        raise ValueError(f"v: expected the shape of u {u.shape}, got {v.shape}")
    if u.ndim == 3:
        if not -u.shape[1] <= sample < u.shape[1]:
            raise ValueError(f"sample: expected an index below {u.shape[1]}, got {sample}")
        u, v = u[:, sample, :], v[:, sample, :]
    T, N = u.shape
    neurons = [int(k) for k in np.atleast_1d(neurons)]
    if not neurons or any(not -N <= k < N for k in neurons):
        raise ValueError(f"neurons: expected indices below {N}, got {neurons}")
    th = np.broadcast_to(np.asarray(theta, dtype=float), (N,))
    fig = _figure(8, 1.4 + 1.9 * len(neurons))
    axes = np.atleast_1d(fig.subplots(len(neurons), 1, sharex=True, squeeze=False)[:, 0])
    t = np.arange(T)
    for ax, k in zip(axes, neurons):
        ax.plot(t, u[:, k], "-", color=_COLORS[0], lw=1.5, label="membrane u (before reset)")
        ax.axhline(th[k], color=_COLORS[1], ls="--", lw=1.2, label="threshold θ")
        st = np.nonzero(v[:, k])[0]
        ax.plot(st, u[st, k], "v", color=_COLORS[1], ms=7, label="spike")
        lo, hi = min(float(u[:, k].min()), th[k]), max(float(u[:, k].max()), th[k])
        pad = 0.12 * (hi - lo) if hi > lo else 0.5
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_ylabel("u")
        ax.text(1.01, 0.5, f"neuron {k}\nθ = {th[k]:g}\n{len(st)} spike{'s' * (len(st) != 1)}",
                transform=ax.transAxes, va="center", ha="left", fontsize=9)
        ax.grid(True, alpha=0.3)
    axes[-1].set_xlabel("time step")
    axes[-1].set_xlim(-0.5, T - 0.5)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.suptitle(f"{title} (sample {sample})")
    fig.legend(handles, labels, loc="upper center", ncol=3, fontsize=9,
               bbox_to_anchor=(0.5, 0.955), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return _save(fig, path)


def surrogate_shapes(names, path, x=(-3.0, 3.0), title="Surrogate derivatives"):
    """Derivative ``g`` (left) and primitive ``G`` (right, where it exists) of
    several surrogates against ``x = u - theta``.

    ``names``: surrogate names (their default parameters) or
    :class:`lifgrad.surrogates.Surrogate` objects.  Returns ``path``.
    """
    from . import surrogates as _sg
    if isinstance(names, (str, _sg.Surrogate)):
        names = [names]
    surs = [n if isinstance(n, _sg.Surrogate) else _sg.get(n) for n in names]
    if not surs:
        raise ValueError("names: expected at least one surrogate")
    xs = np.linspace(float(x[0]), float(x[1]), 1201)
    fig = _figure(11, 4.3)
    ax_g, ax_G = fig.subplots(1, 2)
    without = []
    for i, s in enumerate(surs):
        c = _COLORS[i % len(_COLORS)]
        label = str(s)
        ax_g.plot(xs, s.g(xs), color=c, lw=1.6, label=label)
        if s.has_primitive:
            ax_G.plot(xs, s.G(xs), color=c, lw=1.6, label=label)
        else:
            without.append(s.name)
    (step,) = ax_G.plot(xs, (xs >= 0).astype(float), color="black", lw=1, ls=":",
                        label="Heaviside step (the forward)")
    ax_g.set_title("derivative g(x)")
    ax_g.set_xlabel("x = u − θ")
    ax_g.set_ylabel("g(x)")
    ax_G.set_title("primitive G(x)" + (f"  (none for {', '.join(without)})" if without else ""))
    ax_G.set_xlabel("x = u − θ")
    ax_G.set_ylabel("G(x)")
    for ax in (ax_g, ax_G):
        ax.grid(True, alpha=0.3)
        ax.axvline(0, color="gray", lw=0.8)
    ax_G.legend([step], [step.get_label()], fontsize=8, loc="upper left")
    handles, labels = ax_g.get_legend_handles_labels()
    ncol = min(len(labels), 4)
    rows = math.ceil(len(labels) / ncol)
    fig.suptitle(title)
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.07 * rows, 1, 1))
    return _save(fig, path)


def gradient_norms(history, path, title="Gradient norm per layer"):
    """Mean per-step gradient norm of each layer over epochs (log scale).

    Reads the ``grad_norm_layer{i}`` columns.  Returns ``path``.
    """
    rows = _history(history)
    keys = sorted({k for r in rows for k in r if k.startswith("grad_norm_layer")},
                  key=lambda k: int(k[len("grad_norm_layer"):]))
    if not keys:
        raise ValueError("history: no grad_norm_layer{i} columns")
    fig = _figure(7, 4.3)
    ax = fig.subplots()
    plotted = 0
    for i, k in enumerate(keys):
        e, g = _column(rows, k)
        keep = g > 0          # a log axis cannot show 0
        if keep.any():
            ax.plot(e[keep], g[keep], "o-", color=_COLORS[i % len(_COLORS)],
                    label=f"layer {k[len('grad_norm_layer'):]}")
            plotted += 1
    if plotted:
        ax.set_yscale("log")
        ax.legend(loc="best")
    else:
        ax.text(0.5, 0.5, "all gradient norms are zero", transform=ax.transAxes,
                ha="center", va="center")
    ax.set_ylabel("gradient norm of the layer's parameters\n(mean over the epoch's steps)")
    ax.set_title(title)
    _epoch_axis(ax, rows)
    ax.grid(True, which="minor", alpha=0.15)
    fig.tight_layout()
    return _save(fig, path)
