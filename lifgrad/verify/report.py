"""Reports on disk: ``lifgrad verify ... --report DIR`` (and ``diagnose``).

:func:`write` turns a list of :class:`~lifgrad.verify.common.CaseReport` into
a folder a person can read and keep::

    DIR/report.md                 summary per framework, every case, details
    DIR/figures/worst.png         worst relative error of every case, by framework
    DIR/figures/time_<fw>.png     relative error over time of each case (suite)
    DIR/figures/layers_<i>.png    relative error per layer over time (a model)

"Relative error over time" is the normwise error of a ``(T, ...)`` quantity
resolved in time, ``max_{b,n} |a_t - b_t|`` over the largest magnitude of
either array (:func:`lifgrad.verify.common.error_over_time`), so its largest
value is the relative error the table reports.  For a model (``compare``) it
is drawn for ``dL/d(input)`` of every layer whose input the framework's
autograd exposes, and for ``dL/dx``; for the curated cases of a framework
for ``dL/dI`` of the neuron.  A step where both sides agree exactly has
error 0, drawn at :data:`FLOOR` on the log axis (said in the caption).

Callers add their own sections (:class:`Section`, e.g. the diagnosis' figure
of the identified surrogate against the documented one,
:func:`surrogate_figure`).  Every file is written whole and then renamed, so
an interrupted run leaves the previous report, never half of one.
"""
from __future__ import annotations

import datetime
import os
from typing import NamedTuple

import numpy as np

from .. import plot as _plot
from .common import AGREES, DISAGREES, LIMITED, NOT_APPLICABLE, SHORT, TOL, detail_items

__all__ = ["Section", "write", "surrogate_figure", "FLOOR"]

FLOOR = 1e-18            # where an exact agreement (error 0) is drawn on a log axis


class Section(NamedTuple):
    """A caller's part of a report: a heading, markdown text, and figures
    (paths inside the report folder, with their captions)."""

    title: str
    text: str
    figures: tuple = ()          # ((path, caption), ...)


def _write_text(path, text):
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _slug(s):
    return "".join(c if c.isalnum() else "_" for c in s).strip("_") or "x"


def _md_cell(s):
    return str(s).replace("|", "\\|").replace("\n", " ")


def _table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def _curve(ax, err, **kw):
    y = np.where(np.asarray(err) > 0, err, FLOOR)
    ax.semilogy(np.arange(len(y)), y, **kw)


def _axes_common(ax, what):
    ax.axhline(TOL, color="#d62728", lw=0.8, ls="--", label=f"tolerance {TOL:g}")
    ax.set_xlabel("time step t")
    ax.set_ylabel(f"relative error of {what}")
    ax.set_ylim(FLOOR / 3, 1.5)
    ax.grid(alpha=0.3, which="major")


def worst_figure(reports, path):
    """Worst relative error of every case, one column of points per framework."""
    fws = list(dict.fromkeys(r.framework for r in reports))
    fig = _plot._figure(max(5.0, 1.1 * len(fws) + 2), 3.6)
    ax = fig.add_subplot(111)
    colors = {AGREES: "#2ca02c", LIMITED: "#ff7f0e", DISAGREES: "#d62728",
              NOT_APPLICABLE: "#7f7f7f"}
    rng = np.random.default_rng(0)
    seen = set()
    for i, fw in enumerate(fws):
        for r in (r for r in reports if r.framework == fw):
            w = r.worst
            y = FLOOR if w == 0 else (1.0 if not np.isfinite(w) else w)
            lab = SHORT.get(r.status, r.status)
            ax.semilogy(i + rng.uniform(-0.25, 0.25), y, "o", ms=4, alpha=0.8,
                        color=colors.get(r.status, "k"),
                        label=None if lab in seen else lab)
            seen.add(lab)
    ax.axhline(TOL, color="#d62728", lw=0.8, ls="--")
    ax.set_xticks(range(len(fws)))
    ax.set_xticklabels(fws, rotation=20)
    ax.set_ylabel("worst relative error")
    ax.set_ylim(FLOOR / 3, 1.5)
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(f"{len(reports)} cases (0 drawn at {FLOOR:g}; dashed: {TOL:g})", fontsize=9)
    fig.tight_layout()
    return _plot._save(fig, path)


def time_figure(reports, path, title):
    """Relative error over time of each case's profiles (dL/dI by default)."""
    fig = _plot._figure(6.4, 3.8)
    ax = fig.add_subplot(111)
    drawn = 0
    for r in reports:
        prof = dict(r.profiles)
        key = "grad:input" if "grad:input" in prof else next(iter(prof), None)
        if key is None:
            continue
        bad = r.status == DISAGREES
        _curve(ax, prof[key], lw=1.4 if bad else 0.7, alpha=1.0 if bad else 0.5,
               color="#d62728" if bad else ("#ff7f0e" if r.status == LIMITED else "#1f77b4"),
               label=f"{r.neuron} {r.variant} {r.surrogate}" if bad else None)
        drawn += 1
    _axes_common(ax, "dL/dI")
    ax.set_title(f"{title}: {drawn} cases (red: disagrees, orange: within a limit)", fontsize=9)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6, loc="upper left")
    fig.tight_layout()
    return _plot._save(fig, path)


def layers_figure(report, path):
    """A model's relative error over time, one line per layer (and dL/dx, mem)."""
    fig = _plot._figure(6.4, 3.8)
    ax = fig.add_subplot(111)
    for i, (label, err) in enumerate(report.profiles):
        _curve(ax, err, lw=1.2, color=_plot._COLORS[i % len(_plot._COLORS)], label=label)
    _axes_common(ax, "each quantity")
    ax.set_title(f"{report.framework} {report.neuron} ({report.variant}): "
                 f"{SHORT.get(report.status, report.status)}", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return _plot._save(fig, path)


def surrogate_figure(curves, path, title="Surrogate derivative", x=(-3.0, 3.0)):
    """Draw surrogate derivatives ``phi(x)`` on one axis: ``curves`` is
    ``[(label, callable or (x, y) arrays), ...]`` (e.g. the identified
    surrogate, the one the model's arguments document, and the sampled
    points of the framework)."""
    fig = _plot._figure(6.0, 3.6)
    ax = fig.add_subplot(111)
    grid = np.linspace(x[0], x[1], 601)
    for i, (label, c) in enumerate(curves):
        color = _plot._COLORS[i % len(_plot._COLORS)]
        if callable(c):
            ax.plot(grid, c(grid), lw=1.4, color=color, label=label,
                    ls="-" if i == 0 else "--")
        else:
            xs, ys = c
            ax.plot(xs, ys, "o", ms=3, color=color, label=label)
    ax.set_xlabel("u - theta")
    ax.set_ylabel("phi")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _plot._save(fig, path)


def _summary_rows(reports):
    rows = []
    for fw in dict.fromkeys(r.framework for r in reports):
        rs = [r for r in reports if r.framework == fw]
        count = {st: sum(r.status == st for r in rs) for st in
                 (AGREES, LIMITED, DISAGREES, NOT_APPLICABLE)}
        worst = max((r.worst for r in rs), default=0.0)
        rows.append((fw, len(rs), count[AGREES], count[LIMITED], count[DISAGREES],
                     count[NOT_APPLICABLE], sum(r.spike_mismatches for r in rs),
                     f"{worst:.1e}"))
    return rows


def _details(reports):
    return [f"- **{name}**: {text}" if serious else f"- {name}: {text}"
            for name, serious, text in detail_items(reports, code=lambda q: f"`{q}`")]


def write(reports, out_dir, title="lifgrad verify", command=None, seconds=None,
          sections=()):
    """Write ``out_dir/report.md`` and its figures for ``reports`` (a list of
    CaseReports); ``sections`` (:class:`Section`) are appended.  Returns the
    path of ``report.md``."""
    if not isinstance(out_dir, (str, os.PathLike)) or not os.fspath(out_dir):
        raise ValueError(f"out_dir: expected a folder path, got {out_dir!r}")
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError(f"out_dir: {out_dir} exists and is not a folder")
    figs = os.path.join(out_dir, "figures")
    os.makedirs(figs, exist_ok=True)
    md = [f"# {title}", ""]
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    md.append(f"Written {stamp}" + (f" by `{command}`" if command else "") +
              (f" in {seconds:.1f} s" if seconds is not None else "") + ".")
    md.append("")
    reports = list(reports)
    if reports:
        passed = sum(r.passed for r in reports)
        md.append(f"**{len(reports)} cases: {passed} pass "
                  f"({sum(r.status == AGREES for r in reports)} agree, "
                  f"{sum(r.status == LIMITED for r in reports)} within a documented precision "
                  f"limit), {sum(r.status == DISAGREES for r in reports)} disagree, "
                  f"{sum(r.status == NOT_APPLICABLE for r in reports)} do not apply.**")
        md.append("")
        md.append(_table(("framework", "cases", "agree", "within a limit", "disagree",
                          "do not apply", "spike mismatches", "worst relative"),
                         _summary_rows(reports)))
        md.append("")
        rel = os.path.join("figures", "worst.png")
        worst_figure(reports, os.path.join(out_dir, rel))
        md += [f"![worst relative error per case]({rel})", "",
               f"Worst relative error of every case (an exact agreement is drawn at "
               f"{FLOOR:g}; the dashed line is the tolerance {TOL:g}).", ""]
        md += ["## Relative error over time", ""]
        models = [r for r in reports if r.neuron == "model"]
        cases = [r for r in reports if r.neuron != "model" and r.profiles]
        for i, r in enumerate(models):
            rel = os.path.join("figures", f"layers_{i}.png")
            layers_figure(r, os.path.join(out_dir, rel))
            md += [f"![relative error per layer over time]({rel})", "",
                   f"{r.framework} model ({r.variant}): relative error per layer over time "
                   f"(`<layer>: dL/d(input)` is the gradient entering that layer's neurons, "
                   f"`grad:input` dL/dx, `mem` the last layer's membrane).", ""]
        for fw in dict.fromkeys(r.framework for r in cases):
            rel = os.path.join("figures", f"time_{_slug(fw)}.png")
            time_figure([r for r in cases if r.framework == fw], os.path.join(out_dir, rel),
                        fw)
            md += [f"![{fw}: relative error over time]({rel})", "",
                   f"{fw}: relative error of dL/dI over time, one line per case.", ""]
        md += ["## Cases", ""]
        md.append(_table(("framework", "neuron", "variant", "surrogate", "spikes",
                          "worst relative", "rate", "status"),
                         [(r.framework, r.neuron, r.variant, r.surrogate,
                           r.spike_mismatches, f"{r.worst:.1e}",
                           ", ".join(f"{c.rate:.2f}" for c in r.coverage) or "-",
                           SHORT.get(r.status, r.status)) for r in reports]))
        md.append("")
        det = _details(reports)
        if det:
            md += ["## Details", ""] + det + [""]
        notes = {}
        for r in reports:
            for n in r.notes:
                notes.setdefault(n, r.framework)
        if notes:
            md += ["## Where the frameworks depart from their documentation or need care", ""]
            md += [f"- [{fw}] {n}" for n, fw in notes.items()] + [""]
        md += ["## Verdicts", "",
               f"*agrees*: every gradient within {TOL:g} relative (float64) or below the "
               f"rounding of its terms; *agrees\\**: within a documented precision limit of "
               f"the framework; *n/a*: the model left the domain lifgrad's cell expresses; "
               f"*spikes*: spikes that differ (must be 0); *rate*: firing rate per layer.", ""]
    for s in sections:
        md += [f"## {s.title}", "", s.text, ""]
        for p, cap in s.figures:
            rel = os.path.relpath(p, out_dir) if os.path.isabs(p) else p
            md += [f"![{cap}]({rel})", "", cap, ""]
    return _write_text(os.path.join(out_dir, "report.md"), "\n".join(md))
