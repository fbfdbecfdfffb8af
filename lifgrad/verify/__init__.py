"""Verify autograd SNN frameworks against lifgrad's hand-derived gradients.

``lifgrad.verify.snntorch``, ``.spikingjelly`` and ``.norse`` each map that
framework's neurons onto lifgrad's cell, run both on the same input in
float64, backpropagate the same loss, and report spike mismatches and the
error of every gradient (see :mod:`lifgrad.verify.common`).  Importing this
package does not import torch; the adapters do, when used.
"""
import importlib

from .common import (AGREES, DISAGREES, LIMITED, NOT_APPLICABLE, TOL, CaseReport, LayerCoverage,
                     LayerMap, Limit, Row, format_reports)
from .model import compare

__all__ = ["TOL", "CaseReport", "LayerMap", "LayerCoverage", "Limit", "Row", "format_reports",
           "FRAMEWORKS", "compare", "adapter", "run_suite", "AGREES", "LIMITED", "DISAGREES",
           "NOT_APPLICABLE"]

FRAMEWORKS = ("snntorch", "spikingjelly", "norse")


def adapter(framework):
    """The adapter module of ``framework`` (imports torch and the framework)."""
    if framework not in FRAMEWORKS:
        raise ValueError(f"framework: expected one of {', '.join(FRAMEWORKS)}, got {framework!r}")
    from .common import quiet_framework, require_torch
    require_torch()
    try:
        with quiet_framework():
            importlib.import_module(framework)
    except ImportError as e:
        raise ImportError(f"{framework} is not installed ({e}); `make peers` installs the "
                          f"pinned frameworks (see the README)") from e
    return importlib.import_module(f"lifgrad.verify.{framework}")


def run_suite(frameworks=FRAMEWORKS, quick=False, progress=None):
    """Run every case of each framework's adapter; return the CaseReports."""
    reports = []
    for fw in frameworks:
        ad = adapter(fw)
        for case in ad.cases(quick=quick):
            if progress:
                progress(f"{fw} {' '.join(map(str, case))}")
            reports.append(ad.run_case(*case))
    return reports
