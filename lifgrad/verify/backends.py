"""A third party for two backends of one framework: ``lifgrad verify backends``.

Two backends of one framework (Rockpool's ``LIFTorch`` and ``LIFJax``,
SpikingJelly's torch and CuPy paths, sinabs and sinabs-exodus) are meant to
compute the same neuron.  Comparing them with each other says *whether* they
differ, not which one is wrong; lifgrad's adjoint, exact in float64, is the
third party.  For each variant both backends run, the same neuron with the
same parameters, input and loss weights (the adapter's ``backend_builds``)
is run in both, and three comparisons are made:

    A against lifgrad          (the adapter's mapping of A, check_layer)
    B against lifgrad          (its mapping of B)
    A against B                (the two frameworks' numbers directly)

The verdict of a quantity names who departs: ``both agree with lifgrad``;
``A departs`` / ``B departs`` (the other agrees with lifgrad); ``both depart``.
A disagreement between A and B that lifgrad attributes to one side is the
answer a user of the two backends needs (SpikingJelly #106: backends
whose gradients agree to 6e-9 and train differently; sinabs #16: compare sinabs
and EXODUS).  Precision limits a backend documents (LIFJax's float32 input)
count as agreeing, and say so.

Pairs that need a GPU report why they cannot run here
(``Adapter.backend_unavailable``) instead of a verdict.
"""
from __future__ import annotations

from typing import NamedTuple

from .common import AGREES, DISAGREES, LIMITED, check_layer, compare, quiet_framework
from .protocol import REGISTRY, adapter

__all__ = ["PairReport", "arbitrate", "run", "format_pairs"]


class PairReport(NamedTuple):
    """One variant run in two backends: the three CaseReports and the verdict
    per quantity (``{quantity: verdict}``); ``unavailable`` instead when the
    pair cannot run here."""

    framework: str
    backends: tuple
    variant: str
    a: object = None              # CaseReport: backend A against lifgrad
    b: object = None              # backend B against lifgrad
    ab: object = None             # backend A against backend B (B in lifgrad's seat)
    verdicts: dict = {}
    unavailable: str = ""

    @property
    def status(self) -> str:
        if self.unavailable:
            return "cannot run"
        bad = [v for v in self.verdicts.values() if v != "both agree with lifgrad"]
        return "agree" if not bad else "; ".join(sorted(set(bad)))

    @property
    def passed(self) -> bool:
        return not self.unavailable and all(v == "both agree with lifgrad"
                                            for v in self.verdicts.values())


def _ok(report, quantity):
    if quantity == "spikes":
        return report.spike_mismatches == 0
    row = next((r for r in report.rows if r.quantity == quantity), None)
    return row is not None and row.status in (AGREES, LIMITED)


def _verdicts(ra, rb, names):
    out = {}
    for q in names:
        a, b = _ok(ra, q), _ok(rb, q)
        out[q] = ("both agree with lifgrad" if a and b else
                  f"{names[q][0]} departs" if b else
                  f"{names[q][1]} departs" if a else "both depart")
    return out


def arbitrate(framework, variant, seed=0, T=20, B=3, N=6) -> PairReport:
    """Run ``variant`` of ``framework``'s two backends and lifgrad; the
    :class:`PairReport`."""
    ad = adapter(framework)
    pair = tuple(ad.backend_pair)
    why = ad.backend_unavailable()
    if why:
        return PairReport(framework, pair, variant, unavailable=why)
    if variant not in ad.backend_variants:
        raise ValueError(f"variant: expected one of {', '.join(ad.backend_variants)}, "
                         f"got {variant!r}")
    with quiet_framework():
        ba, bb = ad.backend_builds(variant, seed=seed, T=T, B=B, N=N)
        pa, pb = ad.peer_gradients(ba), ad.peer_gradients(bb)
        # each backend against lifgrad, from the same runs as the direct comparison
        ra = check_layer((ad.name,) + tuple(ba.label), pa, ad.layer_map(ba.module),
                         ba.I, ba.A, ba.Bm)
        rb = check_layer((ad.name,) + tuple(bb.label), pb, ad.layer_map(bb.module),
                         bb.I, bb.A, bb.Bm)
    both = [k for k in pa if k in pb]          # the quantities both backends report
    ab = compare(framework, f"{pair[0]} vs {pair[1]}", variant, "-", pa,
                 {k: pb[k] for k in both})
    names = {q: pair for q in both}
    return PairReport(framework, pair, variant, ra, rb, ab, _verdicts(ra, rb, names))


def run(frameworks=None, seed=0, progress=None) -> list:
    """Every variant of every framework that declares two backends (or those
    in ``frameworks``); the :class:`PairReport` s."""
    out = []
    for fw in frameworks or tuple(REGISTRY):
        try:
            ad = adapter(fw)
        except ImportError as e:
            out.append(PairReport(fw, (), "-", unavailable=str(e)))
            continue
        if not ad.backend_pair:
            continue
        why = ad.backend_unavailable()
        if why:
            out.append(PairReport(fw, tuple(ad.backend_pair), "-", unavailable=why))
            continue
        for v in ad.backend_variants:
            if progress:
                progress(f"{fw} {' / '.join(ad.backend_pair)} {v}")
            out.append(arbitrate(fw, v, seed=seed))
    return out


def format_pairs(reports) -> str:
    """A table: framework, backends, variant, worst relative error of each
    backend against lifgrad and of the two against each other, verdict; then
    the details of every quantity that departs and the unavailable pairs."""
    head = ("framework", "backends", "variant", "A vs lifgrad", "B vs lifgrad", "A vs B",
            "verdict")
    body, extra = [], []
    for r in reports:
        pair = " / ".join(r.backends) or "-"
        if r.unavailable:
            body.append((r.framework, pair, r.variant, "-", "-", "-", "cannot run"))
            extra.append(f"  {r.framework} {pair}: cannot run here: {r.unavailable}")
            continue
        body.append((r.framework, pair, r.variant, f"{r.a.worst:.1e}", f"{r.b.worst:.1e}",
                     f"{r.ab.worst:.1e}", r.status))
        for q, v in r.verdicts.items():
            if v != "both agree with lifgrad":
                extra.append(f"  {r.framework} {r.variant}: {q}: {v}")
        for rep in (r.a, r.b):
            for row in rep.rows:
                if row.status == LIMITED:
                    extra.append(f"  {r.framework} {rep.neuron} {r.variant}: {row.quantity} "
                                 f"within the limit '{row.limit}' ({row.max_rel:.1e})")
                elif row.status == DISAGREES:
                    extra.append(f"  {r.framework} {rep.neuron} {r.variant}: {row.quantity} "
                                 f"disagrees with lifgrad, {row.max_rel:.2e} {row.where}")
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h)
              for i, h in enumerate(head)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
             for row in [head] + body]
    ran = [r for r in reports if not r.unavailable]
    lines.append(f"{len(ran)} variants run in two backends: "
                 f"{sum(r.passed for r in ran)} both agree with lifgrad; "
                 f"{len(reports) - len(ran)} pairs cannot run here")
    if extra:
        lines += [""] + extra
    return "\n".join(lines)
