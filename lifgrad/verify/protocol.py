"""The adapter protocol: what every framework's adapter provides to ``lifgrad verify``.

An adapter knows one framework (snnTorch, SpikingJelly, Norse, ...) and
nothing else; everything it shares with the others (the loss, the lifgrad
side, the verdicts) is in :mod:`lifgrad.verify.common`.  Its module,
``lifgrad.verify.<name>``, exposes one instance as ``ADAPTER``, of a class
derived from :class:`Adapter` (torch frameworks derive from
:class:`lifgrad.verify.torchpeer.TorchAdapter`, which adds what
:mod:`lifgrad.verify.chain` needs to record a user's torch model), and is
listed in :data:`REGISTRY`.  Nothing else in ``lifgrad.verify`` knows a
framework by name.

The protocol's boundary is NumPy float64: a :class:`Case` is a frozen
description, a :class:`Built` case carries NumPy arrays (input, loss weights)
beside the framework's own objects (module, leaves), which only the adapter
touches; :meth:`Adapter.peer_gradients` and :meth:`Adapter.peer_forward`
return NumPy.  So a JAX framework (Flax NNX modules, gradients from
``jax.grad``) implements the same methods as a torch one.

Surrogates are named by the presets of :mod:`lifgrad.surrogates`:
``"<name>.<the framework's own name>"`` (``"snntorch.atan"``,
``"spikingjelly.ATan"``, ``"norse.super"``), with the framework's parameter
names; :meth:`Adapter.surrogate_of` recovers ``(preset, params)`` from a
module, and the cases run every preset of the framework
(:meth:`Adapter.presets`).

What an adapter defines (``A`` an adapter, ``c`` a :class:`Case`)::

    A.name                      registry, command-line and report name
    A.neurons                   {neuron: (variant, ...)}: what the cases run
    A.default_surrogate         the preset of the neuron x variant cases
    A.preset_case               (neuron, variant) on which every preset runs
    A.quick                     ((neuron, variant, surrogate), ...) of --quick
    A.option_defaults           {option: default}: the case options it reads
    A.build(c) -> Built         the peer model and the problem of a case
    A.peer_gradients(b) -> dict the framework's own autograd on a Built case
    A.is_neuron(module)         a neuron module of this framework (mapped or not)
    A.layer_map(module)         -> LayerMap, or ValueError/TypeError with the reason
    A.surrogate_of(module)      -> (preset name, {parameter: value})
    A.peer_forward(module, I)   one neuron over time on NumPy I -> (spikes, membrane)

and inherits ``case``, ``cases``, ``presets``, ``option``, ``check`` and
``run``.  A framework whose models ``compare(model, x)`` cannot record with
torch hooks (a JAX one) also overrides two methods that default to "not
mine" (None)::

    A.model_chain(model)        -> [ChainLink]: the model's Linear -> neuron chain,
                                   NumPy weights and each neuron's LayerMap
    A.model_gradients(model, x, A, Bm) -> dict  the framework's autograd of the model
                                   on NumPy x (T, B, ...): spikes, mem, grad:input,
                                   grad:<parameter path>

and builds its chain with the inherited ``chain_pairs(layers, is_linear,
holds)``, the one pairing of Linear layers with the neurons after them.

A framework with two backends of one neuron (``lifgrad verify backends``,
:mod:`lifgrad.verify.backends`) names them and the variants both run, and
builds the twins::

    A.backend_pair              (backend A, backend B), () for none
    A.backend_variants          the variants both backends run
    A.backend_unavailable()     why the pair cannot run here ("" when it can)
    A.backend_builds(variant, seed, T, B, N) -> (Built, Built)  one neuron, its
                                   parameters, input and loss weights in both

``tests/test_verify_protocol.py`` holds every registered adapter to this.
"""
from __future__ import annotations

import abc
import dataclasses
import importlib
from typing import Any, Mapping, NamedTuple

import numpy as np

from .. import surrogates as _sg
from .common import CaseReport, LayerMap, check_layer, quiet_framework

# adapter name -> (the package whose neuron modules it maps, the module holding ADAPTER)
REGISTRY = {
    "snntorch": ("snntorch", "lifgrad.verify.snntorch"),
    "spikingjelly": ("spikingjelly", "lifgrad.verify.spikingjelly"),
    "norse": ("norse", "lifgrad.verify.norse"),
    "sinabs": ("sinabs", "lifgrad.verify.sinabs"),
    "spyx": ("spyx", "lifgrad.verify.spyx"),
    "rockpool": ("rockpool", "lifgrad.verify.rockpool"),
}

_SIZES = (("seed", 0), ("T", 20), ("B", 3), ("N", 6))


def _fmt(v):
    if isinstance(v, tuple) and all(isinstance(p, tuple) and len(p) == 2 for p in v):
        return "(" + ", ".join(f"{k}={_fmt(x)}" for k, x in v) + ")"
    return f"{v:g}" if isinstance(v, float) else str(v)


def _frozen(v):
    """A hashable form of an option value (a dict becomes sorted pairs, a list a tuple)."""
    if isinstance(v, Mapping):
        return tuple(sorted((k, _frozen(x)) for k, x in v.items()))
    if isinstance(v, list):
        return tuple(_frozen(x) for x in v)
    return v


@dataclasses.dataclass(frozen=True)
class Case:
    """A frozen description of one check: which neuron of which framework,
    its variant and surrogate preset, the random seed and sizes (T steps, B
    samples, N neurons), and the adapter's extra ``options`` (sorted
    ``(name, value)`` pairs of the values that differ from the adapter's
    :attr:`Adapter.option_defaults`).  Make one with :meth:`Adapter.case`."""

    framework: str
    neuron: str
    variant: str
    surrogate: str
    seed: int = 0
    T: int = 20
    B: int = 3
    N: int = 6
    options: tuple = ()

    @property
    def id(self) -> str:
        """``framework/neuron/variant/surrogate``, then ``[k=v, ...]`` for the
        seed, sizes and options that differ from the defaults: stable, and
        unique within a framework's cases."""
        extra = [f"{k}={getattr(self, k)}" for k, d in _SIZES if getattr(self, k) != d]
        extra += [f"{k}={_fmt(v)}" for k, v in self.options]
        base = "/".join((self.framework, self.neuron, self.variant, self.surrogate))
        return base + (f" [{', '.join(extra)}]" if extra else "")


class Built(NamedTuple):
    """A case built by :meth:`Adapter.build`: the framework's neuron module,
    the problem (input ``I`` ``(T, B, n_in)``, loss weights ``A``, ``Bm``
    ``(T, B, N)``, NumPy float64; the loss is ``sum A spk + sum Bm mem``),
    the report's ``label`` ``(neuron, variant, surrogate)``, the peer's
    learnable arrays whose gradients are compared (``leaves``, framework
    objects by name; ``None``: the module's own parameters) and ``notes``
    added to the mapping's (how the problem was shaped).  ``module`` and
    ``leaves`` are the adapter's business."""

    case: Case
    module: Any
    I: np.ndarray
    A: np.ndarray
    Bm: np.ndarray
    label: tuple
    leaves: Any = None
    notes: tuple = ()


class ChainLink(NamedTuple):
    """One Linear -> neuron pair of a model that its adapter runs itself
    (:meth:`Adapter.model_chain`): the Linear's weight ``W`` ``(n_out, n_in)``
    as lifgrad multiplies (``I = h W^T + b``) and bias ``b`` (0.0 for none),
    under the framework's parameter names ``weight`` and ``bias`` (None: no
    bias); ``neuron`` the neuron's path, the prefix of its parameters' names
    (``<neuron>.<name>`` for the names of ``map.param_grads``); ``map`` its
    :class:`~lifgrad.verify.common.LayerMap`; ``transposed``: the framework
    stores the weight as ``W^T`` ``(n_in, n_out)`` (flax's ``kernel``);
    ``label`` names the layer in the report's coverage."""

    weight: str
    W: np.ndarray
    bias: str | None
    b: Any
    neuron: str
    map: LayerMap
    transposed: bool = False
    label: str = ""


class Adapter(abc.ABC):
    """One framework's adapter (see the module docstring for the whole list)."""

    name: str = ""
    neurons: Mapping[str, tuple] = {}
    default_surrogate: str = ""
    preset_case: tuple = ()
    quick: tuple = ()
    option_defaults: Mapping[str, Any] = {}

    # -- cases ---------------------------------------------------------------

    def presets(self) -> list:
        """The surrogate presets of this framework (``"<name>.*"``), in table order."""
        return [p for p in _sg.PRESETS if p.startswith(self.name + ".")]

    def case(self, neuron, variant, surrogate=None, *, seed=0, T=20, B=3, N=6,
             **options) -> Case:
        """A validated :class:`Case` (``surrogate`` defaults to
        :attr:`default_surrogate`; ``options`` among :attr:`option_defaults`)."""
        if neuron not in self.neurons:
            raise ValueError(f"{self.name}: neuron: expected one of {', '.join(self.neurons)}, "
                             f"got {neuron!r}")
        if variant not in self.neurons[neuron]:
            raise ValueError(f"{self.name} {neuron}: variant: expected one of "
                             f"{', '.join(self.neurons[neuron])}, got {variant!r}")
        surrogate = self.default_surrogate if surrogate is None else surrogate
        if surrogate not in self.presets():
            raise ValueError(f"{self.name}: surrogate: expected a preset of {self.name} "
                             f"({', '.join(self.presets())}), got {surrogate!r}")
        for k in options:
            if k not in self.option_defaults:
                raise ValueError(f"{self.name}: option {k!r}: expected one of "
                                 f"{', '.join(self.option_defaults) or '(none)'}")
        opts = tuple(sorted((k, _frozen(v)) for k, v in options.items()
                            if _frozen(v) != _frozen(self.option_defaults[k])))
        return Case(self.name, neuron, variant, surrogate, seed, T, B, N, opts)

    def option(self, case: Case, name):
        """The value of option ``name`` in ``case`` (the default where it is not set)."""
        return dict(case.options).get(name, self.option_defaults[name])

    def cases(self, quick=False) -> list:
        """The cases of ``lifgrad verify <name>``: every neuron x variant with
        the default surrogate, then every other preset on :attr:`preset_case`;
        ``quick``: the cases :attr:`quick` names, in that order."""
        if quick:
            return [self.case(*c) for c in self.quick]
        out = [self.case(n, v) for n, vs in self.neurons.items() for v in vs]
        n, v = self.preset_case
        out += [self.case(n, v, p) for p in self.presets() if p != self.default_surrogate]
        return out

    @abc.abstractmethod
    def build(self, case: Case) -> Built:
        """Construct the framework's neuron (float64) and the problem of ``case``."""

    # -- running a case --------------------------------------------------------

    @abc.abstractmethod
    def peer_gradients(self, built: Built) -> dict:
        """Run the framework on ``built.I`` in float64 with its own autograd and
        backpropagate ``sum A spk + sum Bm mem``: NumPy ``{"spikes", "mem",
        "grad:input", "grad:<leaf>"...}`` (``mem`` the membrane the loss reads)."""

    def check(self, built: Built, m: LayerMap | None = None) -> CaseReport:
        """Compare the framework and lifgrad on a built case; ``m`` replaces the
        mapping ``layer_map(built.module)`` (the tests alter it to show that a
        wrong mapping is detected)."""
        m = self.layer_map(built.module) if m is None else m
        if built.notes:
            m = m._replace(notes=m.notes + tuple(built.notes))
        return check_layer((self.name,) + tuple(built.label), self.peer_gradients(built), m,
                           built.I, built.A, built.Bm)

    def run(self, case: Case) -> CaseReport:
        """Build the case, run both sides in float64, compare: the :class:`CaseReport`."""
        return self.check(self.build(case))

    # -- a neuron module ---------------------------------------------------------

    @abc.abstractmethod
    def is_neuron(self, module) -> bool:
        """Whether ``module`` is a neuron of this framework, mapped or not
        (:meth:`layer_map` then refuses the unmapped ones with the reason)."""

    @abc.abstractmethod
    def layer_map(self, module) -> LayerMap:
        """The :class:`~lifgrad.verify.common.LayerMap` of a constructed neuron
        module: lifgrad's configuration and parameters, the input map, the
        chain rules to the framework's parameters; ``ValueError`` or
        ``TypeError`` naming what is not mapped."""

    @abc.abstractmethod
    def surrogate_of(self, module) -> tuple:
        """``(preset name, {parameter: value})`` of the module's surrogate, the
        parameters under the framework's names; ``ValueError`` when lifgrad
        has no exact preset for it."""

    @abc.abstractmethod
    def peer_forward(self, module, I) -> tuple:
        """Run one neuron module from its rest state over the T steps of ``I``
        (NumPy ``(T, B, n)``): ``(spikes, membrane)``, NumPy float64 ``(T, B, N)``,
        the membrane as the framework reports it."""

    # -- a user's model that the adapter runs itself (JAX frameworks) ---------------

    def model_chain(self, model) -> list | None:
        """The chain of ``model`` as ``[ChainLink]`` when this adapter runs the
        framework's models itself (``compare`` then calls
        :meth:`model_gradients` instead of recording torch hooks); ``None``
        (the default): not a model of this kind.  ``ValueError`` or
        ``TypeError`` naming what is not mapped, before anything runs."""
        return None

    def chain_pairs(self, layers, is_linear, holds) -> list:
        """The Linear -> neuron pairs of a model an adapter runs itself, for its
        :meth:`model_chain`: ``layers`` the model's ``(path, module)`` in order
        (pass-through layers left out), ``is_linear(module)`` the framework's
        Linear, ``holds`` what a chain may hold (for the error).  Returns
        ``[(linear path, linear, neuron path, neuron, LayerMap)]``; ValueError
        naming the layer that breaks the chain or is not mapped."""
        pairs, lin = [], None
        for path, layer in layers:
            if is_linear(layer):
                if lin is not None:
                    raise ValueError(f"model: {lin[0]} (Linear) is followed by another Linear "
                                     f"({path}); lifgrad maps chains Linear -> neuron -> ...")
                lin = (path, layer)
                continue
            if not self.is_neuron(layer):
                raise ValueError(f"model.{path}: {type(layer).__module__}."
                                 f"{type(layer).__qualname__} is not a layer lifgrad maps: a "
                                 f"chain holds {holds}")
            try:
                m = self.layer_map(layer)
            except (ValueError, TypeError) as e:
                raise ValueError(f"model.{path}: {e}") from e
            if lin is None:
                raise ValueError(f"model: the neuron {path} is not preceded by a Linear layer; "
                                 f"lifgrad maps chains Linear -> neuron -> Linear -> ...")
            pairs.append((lin[0], lin[1], path, layer, m))
            lin = None
        if lin is not None:
            raise ValueError(f"model: the Linear layer {lin[0]} is not followed by a neuron; "
                             f"lifgrad maps chains ending in a neuron layer")
        if not pairs:
            raise ValueError(f"model: no {self.name} neuron found")
        return pairs

    def model_gradients(self, model, x, A, Bm) -> dict:
        """The framework's autograd of ``sum A spk + sum Bm mem`` (the last
        neuron's spikes and membrane) for a model :meth:`model_chain` took, on
        NumPy ``x`` ``(T, B, ...)``: NumPy ``{"spikes", "mem", "grad:input",
        "grad:<parameter path>"...}``."""
        raise TypeError(f"{self.name}: compare() records this framework's models with torch "
                        f"hooks; model_gradients is for the adapters whose model_chain "
                        f"takes a model")

    # -- two backends of this framework (lifgrad verify backends) ---------------

    backend_pair: tuple = ()        # (backend A, backend B) that compute the same neuron
    backend_variants: tuple = ()    # the variants both backends run

    def backend_unavailable(self) -> str:
        """Why :meth:`backend_builds` cannot run on this machine ("" when it
        can); the arbiter reports it instead of a verdict."""
        return "" if self.backend_pair else f"{self.name}: no second backend"

    def backend_builds(self, variant, seed=0, T=20, B=3, N=6) -> tuple:
        """``(Built of backend A, Built of backend B)``: the same neuron with
        the same parameters in both backends, on the same input and loss
        weights (:mod:`lifgrad.verify.backends` compares the three)."""
        raise ValueError(self.backend_unavailable() or
                         f"{self.name}: backend_builds is not defined")


def adapter(name) -> Adapter:
    """The adapter of framework ``name`` (imports the framework; ImportError
    with the way to install it when it is missing)."""
    if name not in REGISTRY:
        raise ValueError(f"framework: expected one of {', '.join(REGISTRY)}, got {name!r}")
    package, module = REGISTRY[name]
    try:
        with quiet_framework():
            importlib.import_module(package)
    except ImportError as e:
        raise ImportError(f"{name} is not installed ({e}); `make peers` installs the "
                          f"pinned frameworks (see the README)") from e
    with quiet_framework():
        return importlib.import_module(module).ADAPTER


def adapter_of(module) -> Adapter | None:
    """The adapter of the framework ``module`` comes from (the one that takes it
    for a neuron, where several read the same package), or None."""
    root = type(module).__module__.split(".")[0]
    found = [adapter(n) for n, (pkg, _) in REGISTRY.items() if pkg == root]
    return next((a for a in found if a.is_neuron(module)), found[0] if found else None)
