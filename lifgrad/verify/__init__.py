"""Verify autograd SNN frameworks against lifgrad's hand-derived gradients.

One adapter per framework (``lifgrad.verify.snntorch``, ``.spikingjelly``, ``.sinabs``,
``.norse``, ``.spyx`` on JAX), each exposing ``ADAPTER``, an instance of the one protocol of
:mod:`lifgrad.verify.protocol`.  An adapter maps the framework's neurons onto
lifgrad's cell, runs both on the same input in float64, backpropagates the
same loss, and reports spike mismatches and the error of every gradient (see
:mod:`lifgrad.verify.common`)::

    ad = adapter("snntorch")                  # an Adapter (imports the framework)
    for case in ad.cases(quick=True):         # frozen Case values with a stable case.id
        report = ad.run(case)                 # build, run both sides, compare: a CaseReport
    ad.layer_map(module)                      # a peer neuron -> lifgrad config and parameters
    ad.peer_forward(module, I)                # one neuron over time, NumPy in and out

The protocol, in short (the details are in :mod:`lifgrad.verify.protocol`):

* ``name``, ``neurons`` ({neuron: variants}), ``default_surrogate``,
  ``preset_case``, ``quick``, ``option_defaults``: what the cases run;
  surrogates are the presets ``"<name>.<the framework's name>"`` of
  :mod:`lifgrad.surrogates`;
* ``case(...)``, ``cases(quick)`` -> ``[Case]``; ``build(case)`` -> ``Built``
  (the peer module and the NumPy problem); ``peer_gradients(built)`` (the
  framework's autograd, NumPy out); ``check(built, m=None)`` and
  ``run(case)`` -> ``CaseReport``;
* ``is_neuron``, ``layer_map``, ``surrogate_of``, ``peer_forward``: one
  neuron module.

Frameworks on torch derive from :class:`lifgrad.verify.torchpeer.TorchAdapter`,
which adds what :func:`compare` needs to record a user's torch model
(``forward``, ``call_outputs``, ``prepare``, ``extra_leaves``); a JAX
framework runs its own models for :func:`compare` (``model_chain``,
``model_gradients``).  A new
framework is a module with ``ADAPTER`` and a line in
:data:`lifgrad.verify.protocol.REGISTRY`; ``tests/test_verify_protocol.py``
holds it to the protocol.  Importing this package does not import torch;
the adapters do, when used.
"""
from .common import (AGREES, DISAGREES, LIMITED, NOT_APPLICABLE, TOL, CaseReport, LayerCoverage,
                     LayerMap, Limit, Row, format_reports)
from .model import compare
from .protocol import REGISTRY, Adapter, Built, Case, adapter

__all__ = ["TOL", "CaseReport", "LayerMap", "LayerCoverage", "Limit", "Row", "format_reports",
           "FRAMEWORKS", "compare", "adapter", "run_suite", "Adapter", "Case", "Built",
           "AGREES", "LIMITED", "DISAGREES", "NOT_APPLICABLE"]

FRAMEWORKS = tuple(REGISTRY)


def run_suite(frameworks=FRAMEWORKS, quick=False, progress=None):
    """Run every case of each framework's adapter; return the CaseReports."""
    reports = []
    for fw in frameworks:
        ad = adapter(fw)
        for case in ad.cases(quick=quick):
            if progress:
                progress(case.id)
            reports.append(ad.run(case))
    return reports
