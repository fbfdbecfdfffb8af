"""Every registered adapter implements the one protocol (lifgrad.verify.protocol).

Parametrised over ``protocol.REGISTRY``, so a new framework's adapter is held
to the same shape as soon as it is registered: the methods with the
protocol's signatures, cases with unique stable ids covering its neurons and
presets, NumPy float64 at the boundary, and a quick case run through ``run``.
"""
import ast
import importlib
import inspect
import pathlib
import re

import numpy as np
import pytest

from lifgrad.verify import protocol
from lifgrad.verify.common import CaseReport, LayerMap
from lifgrad.verify.protocol import REGISTRY, Adapter, Built, Case

VERIFY = pathlib.Path(protocol.__file__).parent
EMPTY = inspect.Parameter.empty


def _adapter(name):
    pytest.importorskip(REGISTRY[name][0], reason=f"{name} is installed by `make peers`")
    return protocol.adapter(name)


def _public(cls):
    return sorted(n for n, v in vars(cls).items() if not n.startswith("_")
                  and (callable(v) or isinstance(v, property)))


def _signature_fits(proto, impl):
    """``impl`` accepts every call the protocol's signature allows: the same
    parameters in the same order, kinds and defaults, extra ones optional."""
    p, q = list(proto.parameters.values()), list(impl.parameters.values())
    assert [(x.name, x.kind) for x in q[:len(p)]] == [(x.name, x.kind) for x in p], (proto, impl)
    for a, b in zip(p, q):
        assert (a.default is EMPTY) == (b.default is EMPTY) and \
            (a.default is EMPTY or a.default == b.default), (proto, impl)
    assert all(x.default is not EMPTY or x.kind in (x.VAR_POSITIONAL, x.VAR_KEYWORD)
               for x in q[len(p):]), (proto, impl)


def _protocols(ad):
    """The protocol classes ``ad`` implements (Adapter, and TorchAdapter for torch peers)."""
    return [c for c in type(ad).__mro__ if c.__module__.startswith("lifgrad.verify.")
            and c.__module__ != type(ad).__module__ and c is not object]


def test_every_adapter_module_is_registered():
    defined = {p.stem for p in VERIFY.glob("*.py") if "\nADAPTER = " in p.read_text()}
    assert defined == {mod.rsplit(".", 1)[1] for _, mod in REGISTRY.values()}


def test_protocol_is_documented_in_its_module_docstrings():
    from lifgrad.verify import torchpeer
    for cls, mod in ((Adapter, protocol), (torchpeer.TorchAdapter, torchpeer)):
        attrs = [n for n in vars(cls).get("__annotations__", {}) if not n.startswith("_")]
        for name in _public(cls) + attrs:
            assert re.search(rf"\b{name}\b", mod.__doc__), (cls.__name__, name)
        for name in _public(cls):
            assert inspect.getdoc(getattr(cls, name)), (cls.__name__, name)


def test_no_framework_is_named_outside_its_adapter():
    """Shared code goes through the protocol: no framework name as a string
    (docstrings aside) and no framework import outside the adapters."""
    names = set(REGISTRY) | {pkg for pkg, _ in REGISTRY.values()}
    adapters = {mod.rsplit(".", 1)[1] for _, mod in REGISTRY.values()}
    # surrogate_calls: each framework's surrogate called its way, a table by
    # framework like the adapters (the float32 sweep and the preset tests read it)
    adapters.add("surrogate_calls")
    for path in VERIFY.glob("*.py"):
        if path.stem in adapters:
            continue
        tree = ast.parse(path.read_text())
        docs = {id(n.body[0].value) for n in ast.walk(tree)
                if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef))
                and n.body and isinstance(n.body[0], ast.Expr)}
        registry = next((n.value for n in ast.walk(tree) if isinstance(n, ast.Assign)
                         and getattr(n.targets[0], "id", "") == "REGISTRY"), None)
        skip = {id(n) for n in ast.walk(registry)} if registry is not None else set()
        for n in ast.walk(tree):
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs \
                    and id(n) not in skip:
                assert not any(n.value == f or n.value.startswith(f + ".") for f in names), \
                    (path.name, n.lineno, n.value)
            if isinstance(n, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in n.names] if isinstance(n, ast.Import) else [n.module or ""]
                assert not any(m.split(".")[0] in names for m in mods), (path.name, n.lineno)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_adapter_has_the_protocols_methods_and_signatures(name):
    ad = _adapter(name)
    assert isinstance(ad, Adapter) and ad.name == name
    assert importlib.import_module(REGISTRY[name][1]).ADAPTER is ad
    assert not inspect.isabstract(type(ad))
    for proto in _protocols(ad):
        for meth in _public(proto):
            impl = getattr(type(ad), meth)
            if isinstance(impl, property):
                continue
            _signature_fits(inspect.signature(getattr(proto, meth)), inspect.signature(impl))
    assert isinstance(ad.neurons, dict) and ad.neurons
    assert all(isinstance(v, tuple) and v and all(isinstance(x, str) for x in v)
               for v in ad.neurons.values())
    assert ad.default_surrogate in ad.presets()
    assert all(p.startswith(name + ".") for p in ad.presets())
    n, v = ad.preset_case
    assert v in ad.neurons[n]
    assert isinstance(ad.option_defaults, dict)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_cases_have_unique_stable_ids_and_cover_the_framework(name):
    ad = _adapter(name)
    cs = ad.cases()
    assert cs and all(isinstance(c, Case) and c.framework == name for c in cs)
    ids = [c.id for c in cs]
    assert len(set(ids)) == len(ids), sorted(i for i in ids if ids.count(i) > 1)
    assert {(c.neuron, c.variant) for c in cs} == {(n, v) for n, vs in ad.neurons.items()
                                                   for v in vs}
    assert {c.surrogate for c in cs} == set(ad.presets())
    quick = ad.cases(quick=True)
    assert 0 < len(quick) < len(cs) and set(quick) <= set(cs)
    # a case is a value: made again, it is equal, hashes alike and keeps its id
    for c in cs:
        again = ad.case(c.neuron, c.variant, c.surrogate, seed=c.seed, T=c.T, B=c.B, N=c.N,
                        **dict(c.options))
        assert again == c and hash(again) == hash(c) and again.id == c.id
    c = cs[0]
    assert ad.case(c.neuron, c.variant, **ad.option_defaults) == ad.case(c.neuron, c.variant)
    assert ad.case(c.neuron, c.variant, seed=3).id != c.id
    for bad in (dict(neuron="NoSuchNeuron"), dict(variant="no such variant"),
                dict(surrogate="atan"), dict(no_such_option=1)):
        kw = dict(dict(neuron=c.neuron, variant=c.variant), **bad)
        with pytest.raises(ValueError):
            ad.case(**kw)
    with pytest.raises(AttributeError):
        c.seed = 1                                          # frozen


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_a_quick_case_runs_through_the_protocol(name):
    ad = _adapter(name)
    case = ad.cases(quick=True)[0]
    built = ad.build(case)
    assert isinstance(built, Built) and built.case == case
    assert len(built.label) == 3 and all(isinstance(x, str) for x in built.label)
    for a in (built.I, built.A, built.Bm):
        assert isinstance(a, np.ndarray) and a.dtype == np.float64
    assert built.I.shape[:2] == (case.T, case.B)
    assert built.A.shape == built.Bm.shape == (case.T, case.B, case.N)

    assert ad.is_neuron(built.module) and not ad.is_neuron(object())
    assert protocol.adapter_of(built.module) is ad
    assert isinstance(ad.layer_map(built.module), LayerMap)
    preset, params = ad.surrogate_of(built.module)
    assert preset == case.surrogate and isinstance(params, dict)

    peer = ad.peer_gradients(built)
    assert {"spikes", "mem", "grad:input"} <= set(peer)
    assert all(isinstance(v, np.ndarray) for v in peer.values())
    assert peer["spikes"].shape == (case.T, case.B, case.N)
    assert peer["grad:input"].shape == built.I.shape

    spk, mem = ad.peer_forward(built.module, built.I)
    assert isinstance(spk, np.ndarray) and spk.dtype == np.float64
    assert isinstance(mem, np.ndarray) and mem.dtype == np.float64
    assert np.array_equal(spk, peer["spikes"]) and spk.shape == mem.shape

    rep = ad.run(case)
    assert isinstance(rep, CaseReport) and rep.framework == name
    assert (rep.neuron, rep.variant, rep.surrogate) == built.label
    assert rep.passed and rep.spike_mismatches == 0, rep
    assert {"mem", "grad:input"} <= {r.quantity for r in rep.rows}
    assert rep.coverage and rep.coverage[0].rate > 0
    assert ad.check(built).rows == rep.rows                   # run = check(build(case))
