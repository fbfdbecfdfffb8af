"""A float32 robustness sweep of every surrogate preset, lifgrad's and the peers'.

For every preset of :data:`lifgrad.surrogates.PRESETS`, its sharpness or width
parameter over a wide range (log-spaced ``1e-2 .. 1e3`` and the default; the
others at their defaults) and ``x = u - theta`` over ``[-x_max, x_max]``
(0, a log grid from 1e-8, a uniform grid and a fine grid around the
threshold), :func:`float32_sweep` evaluates in float32

* the framework's own backward, called its way
  (:mod:`lifgrad.verify.surrogate_calls`: torch autograd through its spike
  function on float32 tensors; JAX float32 with 64-bit types off for Spyx);
  sinabs and Rockpool take the membrane ``v = x + theta`` rounded to float32,
  and the offending ``x`` is read back as ``v - theta``;
* lifgrad's phi for the same preset: :func:`lifgrad.reference.surrogate_phi`
  on float32 ``x`` ("phi ref"), and the compiled CPU kernel ("phi kernel"): a
  float32 :func:`lifgrad.lif_backward` of one step with ``theta = 0`` and
  ``I = x`` (so ``u - theta`` is the grid exactly) and ``dL/dv = 1``, whose
  ``dL/dI`` is phi; and ``Surrogate.phi`` on a float32 array ("phi numpy":
  the NumPy formula evaluated in float32, what users call);
* where the preset has a primitive, lifgrad's ``G``:
  :func:`lifgrad.reference.surrogate_primitive` ("G ref"), the smooth
  forward's spikes ``v = G(x)`` from the CPU kernel ("G kernel") and
  ``Surrogate.G`` in float32 ("G numpy").

Each output is counted: NaN; Inf; overflow (a finite input giving Inf or a
magnitude above the float32 maximum: every grid input is finite, so this is
Inf where the output is float32); denormal (nonzero ``|g|`` below the
float32 smallest normal, 1.18e-38).  The first offence is the most severe
kind found (NaN, Inf, overflow, denormal) at the smallest ``|x|``.

Parameter values a preset refuses (e.g. SpikingJelly's QPseudoSpike needs
alpha > 1) are skipped on both sides, with the reason.  Frameworks that are
not installed are skipped with a note; lifgrad's side of their presets still
runs.  Torch and JAX are imported only when a peer is called.
"""
from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import numpy as np

from .. import surrogates as _sg

__all__ = ["Counts", "SweepRow", "x_grid", "parameter_values", "float32_sweep",
           "format_table", "SWEPT", "LIFGRAD_SOURCES"]

F32_MAX = float(np.finfo(np.float32).max)
F32_TINY = float(np.finfo(np.float32).tiny)      # smallest normal float32

from .surrogate_calls import SWEPT  # noqa: E402  (the per-framework table)

LIFGRAD_SOURCES = ("phi ref", "phi kernel", "phi numpy", "G ref", "G kernel", "G numpy")
_KINDS = ("NaN", "Inf", "overflow", "denormal")


class Counts(NamedTuple):
    """What one evaluation over the grid gave."""

    n: int                  # points evaluated
    nan: int
    inf: int
    overflow: int
    denormal: int
    first_x: float | None   # the first offence (see the module doc), None if none
    first_kind: str | None

    @property
    def clean(self) -> bool:
        return not (self.nan or self.inf or self.overflow or self.denormal)

    @property
    def finite(self) -> bool:
        return not (self.nan or self.inf or self.overflow)

    def cell(self) -> str:
        return f"{self.nan}/{self.inf}/{self.overflow}/{self.denormal}"


def count(out, x) -> Counts:
    """Counts of NaN, Inf, overflow and denormal values of ``out`` at inputs ``x``."""
    a = np.asarray(out).reshape(-1)
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    mag = np.abs(a.astype(np.float64))
    masks = (np.isnan(a), np.isinf(a),
             np.isfinite(x) & (np.isinf(a) | (mag > F32_MAX)),
             (mag > 0) & (mag < F32_TINY))
    first_x = first_kind = None
    for kind, m in zip(_KINDS, masks):
        if m.any():
            xs = x[m]
            first_x, first_kind = float(xs[np.argmin(np.abs(xs))]), kind
            break
    return Counts(int(a.size), *(int(m.sum()) for m in masks), first_x, first_kind)


@dataclasses.dataclass
class SweepRow:
    """One preset at one parameter value."""

    framework: str
    preset: str
    param: str | None            # the swept parameter (None: the preset has none)
    value: float | None
    default: bool                # value is the preset's default
    skipped: str | None = None   # why this value was not evaluated
    lifgrad: dict = dataclasses.field(default_factory=dict)   # source -> Counts
    peer: Counts | None = None
    peer_note: str | None = None

    def as_dict(self):
        d = dataclasses.asdict(self)
        d["lifgrad"] = {k: c._asdict() for k, c in self.lifgrad.items()}
        d["peer"] = None if self.peer is None else self.peer._asdict()
        return d


def x_grid(x_max=1e4, n_log=3600, n_uniform=20001, n_fine=4001, fine=10.0):
    """Sorted float32 values of ``x = u - theta`` in ``[-x_max, x_max]`` (as
    float64): 0; +-log-spaced from 1e-8; uniform over the whole range; and
    uniform on ``[-fine, fine]`` (spacing 0.005 by default)."""
    x_max = float(x_max)
    if not (math.isfinite(x_max) and x_max > 0):
        raise ValueError(f"x_max: expected a finite number > 0, got {x_max}")
    lg = np.logspace(-8, math.log10(x_max), n_log) if x_max > 1e-8 else np.array([x_max])
    fine = min(fine, x_max)
    parts = [[0.0], lg, -lg, np.linspace(-x_max, x_max, n_uniform),
             np.linspace(-fine, fine, n_fine)]
    x = np.unique(np.concatenate(parts).astype(np.float32))
    return x[np.abs(x) <= np.float32(x_max)].astype(np.float64)


def parameter_values(lo=1e-2, hi=1e3, n=11):
    """The log-spaced values each swept parameter takes (the default is added)."""
    return tuple(float(v) for v in np.logspace(math.log10(lo), math.log10(hi), n))


def _swept(pre):
    names = [k for k, _ in pre.defaults]
    return SWEPT.get(pre.name, tuple(names[:1]))


def _lifgrad_side(sg, strict, x32, kernel=True):
    """Counts for lifgrad's phi (reference, kernel) and G (reference, smooth kernel)."""
    from .. import reference
    from ..config import LIFConfig, LIFParams
    from ..functional import lif_backward, lif_forward
    x = x32.astype(np.float64)
    spikes = ((x32 > 0) if strict else (x32 >= 0)).astype(np.float32)
    args = sg.kernel_args()
    out = {"phi ref": count(reference.surrogate_phi(x32, spikes, args), x)}
    with np.errstate(all="ignore"):      # counted, not warned about
        out["phi numpy"] = count(sg.phi(x32, spikes), x)
    if sg.has_primitive:
        out["G ref"] = count(reference.surrogate_primitive(x32, args), x)
        with np.errstate(all="ignore"):
            out["G numpy"] = count(sg.G(x32), x)
    if kernel:
        I = x32.reshape(1, 1, -1)
        params = LIFParams(theta=0.0)            # u_1 = I: u - theta is the grid exactly
        cfg = LIFConfig(surrogate=sg, strict=strict, dtype="float32", backend="cpu")
        _, tr = lif_forward(I, params, cfg)
        g = lif_backward(tr, params, cfg, dv=np.ones_like(I))
        out["phi kernel"] = count(g.I.reshape(-1), x)
        if sg.has_primitive:
            v, _ = lif_forward(I, params, cfg.replace(forward="smooth"))
            out["G kernel"] = count(v.reshape(-1), x)
    return out


def _peer_side(name, params, x):
    from .surrogate_calls import peer_backward, peer_input
    inp, th = peer_input(name, x, params, dtype="float32")
    res = peer_backward(name, inp, params, "float32", theta=th)
    xe = inp.astype(np.float64) - (th if th is not None else 0.0)
    return count(res.grad, xe)


def float32_sweep(frameworks=None, x_max=1e4, values=None, presets=None, peers=True,
                  kernel=True, grid=None, quick=False, progress=None):
    """Sweep every preset (of ``frameworks``, default all; or the names in
    ``presets``) over ``values`` of its swept parameter (default
    :func:`parameter_values`, plus the default) and ``x`` over
    :func:`x_grid` ``(x_max)`` (or ``grid``), in float32.  Returns a list of
    :class:`SweepRow`; see the module doc for what is counted.

    ``peers=False`` evaluates lifgrad only; ``kernel=False`` skips the
    compiled kernel path; ``quick``: parameter values 1e-2, 3.16, 1e3 (and the
    default) and a grid of about 4000 points.  ``progress(name)`` is called
    per preset."""
    from .surrogate_calls import available
    if values is None:
        values = parameter_values(n=3) if quick else parameter_values()
    values = tuple(float(v) for v in values)
    if grid is None and quick:
        grid = x_grid(x_max, n_log=600, n_uniform=2001, n_fine=801)
    names = list(_sg.PRESETS) if presets is None else list(presets)
    for n in names:
        _sg.preset(n)                                        # unknown names raise here
    if frameworks is not None:
        frameworks = (frameworks,) if isinstance(frameworks, str) else tuple(frameworks)
        names = [n for n in names if n.split(".")[0] in frameworks]
    x = x_grid(x_max) if grid is None else np.unique(np.asarray(grid, np.float32)).astype(
        np.float64)
    x32 = x.astype(np.float32)
    why_not = {}
    rows = []
    for name in names:
        pre = _sg.preset(name)
        fw = pre.framework
        if progress:
            progress(name)
        if peers and fw not in why_not:
            why_not[fw] = available(fw)
        defaults = dict(pre.defaults)
        sweeps = [(p, sorted(set(values) | {float(defaults[p])})) for p in _swept(pre)] \
            or [(None, [None])]
        for param, vals in sweeps:
            for val in vals:
                params = {} if param is None else {param: val}
                row = SweepRow(fw, name, param, val,
                               param is None or val == float(defaults[param]))
                rows.append(row)
                try:
                    sg = pre.surrogate(**params)
                except (ValueError, TypeError) as e:
                    row.skipped = str(e)
                    continue
                row.lifgrad = _lifgrad_side(sg, pre.strict, x32, kernel)
                if not peers:
                    row.peer_note = "peers not evaluated"
                elif why_not[fw]:
                    row.peer_note = why_not[fw]
                else:
                    try:
                        row.peer = _peer_side(name, params, x)
                    except Exception as e:               # the framework failing: a finding
                        row.peer_note = f"raised {type(e).__name__}: {e}"
    return rows


# --------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------

def _sum(counts):
    counts = [c for c in counts if c is not None]
    if not counts:
        return None
    first = _first(counts)
    return Counts(sum(c.n for c in counts), sum(c.nan for c in counts),
                  sum(c.inf for c in counts), sum(c.overflow for c in counts),
                  sum(c.denormal for c in counts), *first[:2])


def _first(counts, labels=None):
    """(x, kind, label) of the most severe offence at the smallest |x|."""
    best = None
    for i, c in enumerate(counts):
        if c is None or c.first_kind is None:
            continue
        key = (_KINDS.index(c.first_kind), abs(c.first_x))
        if best is None or key < best[0]:
            best = (key, c.first_x, c.first_kind, None if labels is None else labels[i])
    return (None, None, None) if best is None else best[1:]


def _g(v):
    return f"{v:.3g}"


def _offence(rows, get):
    """The first offence over ``rows``, preceded by the default value's where
    that is another."""
    counts = [get(r) for r in rows]
    labels = [(f"{r.param}={_g(r.value)}" + (", default" if r.default else ""))
              if r.param else "" for r in rows]
    x, kind, label = _first(counts, labels)
    if kind is None:
        return "-"
    out = f"{kind} at x={_g(x)}" + (f" ({label})" if label else "")
    dx, dkind, dlabel = _first([c for c, r in zip(counts, rows) if r.default],
                               [lb for lb, r in zip(labels, rows) if r.default])
    if dlabel and dlabel != label:
        out = f"{dkind} at x={_g(dx)} ({dlabel}); " + out
    return out


def _values(rows):
    by = {}
    for r in rows:
        if r.param is not None and not r.skipped:
            by.setdefault(r.param, []).append(r.value)
    if not by:
        return "-"
    return "; ".join(f"{p} {_g(min(v))}..{_g(max(v))} ({len(v)})" for p, v in by.items())


def format_table(rows, per_value=False):
    """A markdown table: one line per preset (or per preset and parameter value
    with ``per_value``), counts summed over the parameter values as
    NaN/Inf/overflow/denormal, and the first offence of each side; then the
    skipped values and notes.

    lifgrad's phi cell is the reference's counts, followed by the kernel's and
    ``Surrogate.phi``'s (NumPy in float32) where they differ; the same for G.
    lifgrad's first offence is its phi's (any of the three)."""
    groups = {}
    for r in rows:
        key = (r.preset, r.param, r.value) if per_value else (r.preset,)
        groups.setdefault(key, []).append(r)
    head = ["framework", "preset", "swept (values)", "lifgrad phi", "lifgrad G",
            "peer float32", "peer first offence", "lifgrad first offence (phi)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes = {}
    skipped = {}
    for key, rs in groups.items():
        run = [r for r in rs if not r.skipped]
        for r in rs:
            if r.skipped:
                why = r.skipped.split(", got ")[0]
                skipped.setdefault((r.preset, r.param, why), []).append(_g(r.value))
            elif r.peer_note and r.peer is None:
                notes.setdefault(r.peer_note, set()).add(r.framework)

        def cell(what, run=run):
            ref, kern, nump = (_sum([r.lifgrad.get(f"{what} {s}") for r in run])
                               for s in ("ref", "kernel", "numpy"))
            if ref is None:
                return "n/a"
            out = ref.cell()
            for label, c in (("kernel", kern), ("numpy", nump)):
                if c is not None and c.cell() != out:
                    out += f" ({label} {c.cell()})"
            return out
        peer = _sum([r.peer for r in run])
        peer_cell = "not run" if peer is None else peer.cell()
        if peer is not None and any(r.peer is None for r in run):
            peer_cell += " (partial)"
        swept = (_values(rs) if not per_value else
                 (f"{rs[0].param}={_g(rs[0].value)}" if rs[0].param else "-"))
        if not per_value and any(r.default and r.param for r in rs):
            d = sorted({f"{r.param}={_g(r.value)}" for r in rs if r.default and r.param})
            swept += "; default " + ", ".join(d)
        phi_sources = [s for s in LIFGRAD_SOURCES if s.startswith("phi")]
        lines.append("| " + " | ".join([
            rs[0].framework, rs[0].preset, swept, cell("phi"), cell("G"), peer_cell,
            _offence(run, lambda r: r.peer) if peer is not None else "-",
            _offence(run, lambda r: _sum([r.lifgrad.get(s) for s in phi_sources]))]) + " |")
    lines.append("")
    lines.append(f"Counts: NaN/Inf/overflow/denormal over the x grid, summed over the "
                 f"parameter values (overflow: a finite input giving Inf or |g| > "
                 f"{F32_MAX:.4g}; denormal: 0 < |g| < {F32_TINY:.4g}). lifgrad: "
                 f"reference.surrogate_phi / surrogate_primitive, then the CPU kernel's and "
                 f"Surrogate.phi / .G's (float32 NumPy) counts where they differ; n/a: no "
                 f"primitive. First offence: the most severe kind at the smallest |x|, the "
                 f"default value's first where it is another.")
    for note, fws in notes.items():
        lines.append(f"- peer not run ({', '.join(sorted(fws))}): {note}")
    if skipped:
        lines.append("- skipped (refused by the preset, both sides): " + "; ".join(
            f"{pre} {p}={', '.join(v)} ({why})" for (pre, p, why), v in skipped.items()))
    return "\n".join(lines)


def lifgrad_finite(rows) -> bool:
    """True when none of lifgrad's evaluations gave a NaN, an Inf or an overflow."""
    return all(c.finite for r in rows for c in r.lifgrad.values())
