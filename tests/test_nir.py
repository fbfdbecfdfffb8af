"""NIR export/import (lifgrad/nir.py, derivations/nir.md (N1)-(N9))."""
import subprocess
import sys
import warnings

import numpy as np
import pytest

nir = pytest.importorskip("nir")

from lifgrad import nir as lnir                      # noqa: E402
from lifgrad.config import LIFConfig                 # noqa: E402
from lifgrad.network import Dense, Sequential        # noqa: E402

DT = 1e-4


def _net(kind, rng):
    """A two-layer strict zero-reset network; layer 0 is of the given kind."""
    n = 8
    extra = {"synaptic": {"synaptic": True}, "all": {"recurrent": "all"},
             "one": {"recurrent": "one"}}.get(kind, {})
    c0 = LIFConfig(reset="zero", strict=True, **extra)
    alpha = np.ones(n) if kind == "if" else rng.uniform(0.5, 0.95, n)
    l0 = Dense(5, n, c0, alpha=alpha, theta=rng.uniform(0.3, 0.8, n),
               u_reset=rng.uniform(-0.2, 0.1, n), alpha_s=rng.uniform(0.3, 0.9, n),
               rec_bias=kind in ("all", "one"))
    l1 = Dense(n, 3, LIFConfig(reset="zero", strict=True), alpha=0.8, theta=0.15, bias=False)
    net = Sequential([l0, l1], seed=3, dtype="float64")
    if kind == "one":
        net.params["layer0.R"] = rng.normal(0, 0.5, n)
    if kind in ("all", "one"):
        net.params["layer0.b_rec"] = rng.normal(0, 0.1, n)
    return net


def _compare(net, net2, rng, recurrent_one=False):
    x = rng.uniform(0, 1.2, (150, 4, net.n_in))
    v1, t1 = net.forward(x)
    v2, t2 = net2.forward(x)
    for a, b in zip(t1.layers, t2.layers):            # every layer's spikes agree
        assert a.trace.v.mean() > 0.005               # and the test has spikes
        assert np.array_equal(a.trace.v, b.trace.v)
    assert np.array_equal(v1, v2)
    for k, p in net.params.items():
        q = net2.params[k]
        if recurrent_one and k == "layer0.R":
            q = np.diag(q)
        np.testing.assert_allclose(q, p, rtol=0, atol=1e-12)
    for l1, l2 in zip(net.layers, net2.layers):
        for f in ("alpha", "theta", "u_reset") + (("alpha_s",) if l1.config.synaptic else ()):
            np.testing.assert_allclose(np.broadcast_to(getattr(l2.neuron, f), (l1.n_out,)),
                                       np.broadcast_to(getattr(l1.neuron, f), (l1.n_out,)),
                                       rtol=0, atol=1e-12)
    return v1


@pytest.mark.parametrize("kind", ["plain", "synaptic", "all", "one", "if"])
def test_round_trip(kind, rng):
    net = _net(kind, rng)
    g = lnir.export(net, dt=DT)
    cell = {"plain": nir.LIF, "synaptic": nir.CubaLIF, "all": nir.LIF, "one": nir.LIF,
            "if": nir.IF}[kind]
    assert isinstance(g.nodes["layer0.lif"], cell)
    assert isinstance(g.nodes["layer1.affine"], nir.Linear)
    if kind in ("all", "one"):
        assert ("layer0.lif", "layer0.rec") in g.edges and ("layer0.rec", "layer0.lif") in g.edges
    net2 = lnir.load(g, dt=DT)
    assert net2.layers[0].config.recurrent == ("all" if kind in ("all", "one") else None)
    _compare(net, net2, rng, recurrent_one=kind == "one")
    if kind == "one":                                 # a diagonal R can come back one-to-one
        net3 = lnir.load(g, dt=DT, diagonal_recurrence="one")
        assert net3.layers[0].config.recurrent == "one"
        _compare(net, net3, rng)


def test_export_uses_effective_parameters(rng):
    layer = Dense(4, 6, LIFConfig(reset="zero", strict=True), alpha=0.7, theta=2.0,
                  learn=("alpha", "theta"), alpha_param="sigmoid", theta_range=(0.1, 0.5))
    net = Sequential([layer], dtype="float64")
    net.params["layer0.alpha_logit"] = rng.normal(0, 1, 6)
    g = lnir.export(net, dt=DT)
    eff, _ = layer.effective({"alpha_logit": net.params["layer0.alpha_logit"],
                              "theta": net.params["layer0.theta"]})
    np.testing.assert_allclose(1 - DT / g.nodes["layer0.lif"].tau, eff.alpha, atol=1e-12)
    np.testing.assert_array_equal(g.nodes["layer0.lif"].v_threshold, 0.5)   # clipped
    net2 = lnir.load(g, dt=DT)
    x = rng.uniform(0, 1, (50, 2, 4))
    assert np.array_equal(net.forward(x)[0], net2.forward(x)[0])


def test_file_round_trip(tmp_path, rng):
    pytest.importorskip("h5py")
    net = _net("all", rng)
    path = tmp_path / "net.nir"
    lnir.export(net, dt=DT, path=path)
    net2 = lnir.load(path, dt=DT)
    net3 = lnir.load(str(path), dt=DT, dtype="float32")
    _compare(net, net2, rng)
    assert net3.params["layer0.W"].dtype == np.float32


@pytest.mark.parametrize("cfg, reason", [
    (dict(reset="subtract", strict=True), "NIR has no subtractive reset"),
    (dict(reset="none", strict=True), "resets to v_reset"),
    (dict(reset="zero", strict=True, adaptive=True), "adaptive threshold"),
    (dict(reset="zero"), "non-strict"),
    (dict(reset="zero", strict=True, forward="smooth"), "binary spikes"),
    (dict(reset="zero", strict=True, norm_input=True), "norm_input=True cannot"),
    (dict(reset="zero", strict=True, synaptic=True, decay_input=True), "decay_input=True cannot"),
    (dict(reset="zero", strict=True, delay_output=True), "delay_output=True cannot"),
])
def test_export_refuses(cfg, reason):
    net = Sequential([Dense(3, 2, LIFConfig(reset="zero", strict=True)),
                      Dense(2, 2, LIFConfig(**cfg))])
    with pytest.raises(ValueError, match=reason) as e:
        lnir.export(net)
    assert str(e.value).startswith("layer1:")


def test_export_refuses_alpha_s_one():
    net = Sequential([Dense(3, 2, LIFConfig(reset="zero", strict=True, synaptic=True),
                            alpha_s=1.0)])
    with pytest.raises(ValueError, match="alpha_s == 1"):
        lnir.export(net)


def test_nonstrict_export_differs_only_at_equality():
    """u == theta exactly: lifgrad's default fires, NIR (and the loaded net) does not."""
    net = Sequential([Dense(1, 1, LIFConfig(reset="zero"), alpha=0.0, theta=1.0, bias=False)],
                     dtype="float64")
    net.params["layer0.W"][:] = 0.5
    g = lnir.export(net, dt=DT, allow_nonstrict=True)
    net2 = lnir.load(g, dt=DT)
    assert net2.params["layer0.W"][0, 0] == 0.5       # gain r dt/tau = 1 exactly here
    x = np.array([[[2.0]], [[1.0]], [[3.0]]])         # u = 1.0 == theta, 0.5, 1.5
    assert net.forward(x)[0].ravel().tolist() == [1, 0, 1]
    assert net2.forward(x)[0].ravel().tolist() == [0, 0, 1]


def _affine(n_out, n_in, seed=0):
    r = np.random.default_rng(seed)
    return nir.Affine(weight=r.normal(0, 1, (n_out, n_in)), bias=r.normal(0, 0.1, n_out))


def test_load_rejects_unsupported_nodes():
    n = 3
    g = nir.NIRGraph.from_list(_affine(n, 2), nir.LI(tau=np.full(n, 1e-3), r=np.ones(n),
                                                     v_leak=np.zeros(n)))
    with pytest.raises(ValueError, match=r"unsupported node type.*\(LI\)"):
        lnir.load(g)
    conv = nir.Conv1d(input_shape=8, weight=np.ones((1, 1, 3)), stride=1, padding=0,
                      dilation=1, groups=1, bias=np.zeros(1))
    g = nir.NIRGraph(nodes={"input": nir.Input(np.array([1, 8])), "c": conv,
                            "output": nir.Output(np.array([1, 6]))},
                     edges=[("input", "c"), ("c", "output")], type_check=False)
    with pytest.raises(ValueError, match="Conv1d"):
        lnir.load(g)


def test_load_validates_alpha_and_suggests_dt():
    n = 2
    lif = nir.LIF(tau=np.full(n, 1e-5), r=np.ones(n), v_leak=np.zeros(n),
                  v_threshold=np.ones(n))
    g = nir.NIRGraph.from_list(_affine(n, 2), lif)
    with pytest.raises(ValueError, match=r"alpha = 1 - dt/tau = -99 < 0.*dt <= 1e-05"):
        lnir.load(g, dt=1e-3)
    net = lnir.load(g, dt=1e-5)                       # alpha = 0
    np.testing.assert_allclose(net.layers[0].neuron.alpha, 0.0, atol=1e-12)


def test_load_lif_with_leak_and_gain():
    """v_leak and r: b' = c b + v_leak dt/tau, W' = c W (N5), checked against a direct
    Euler simulation of the NIR equations."""
    n, dt = 3, 1e-3
    r = np.random.default_rng(5)
    tau, rr, vl = r.uniform(2e-3, 1e-2, n), r.uniform(0.5, 3, n), r.uniform(-0.3, 0.3, n)
    thr, vr = r.uniform(0.4, 0.8, n), r.uniform(-0.2, 0.0, n)
    lin = nir.Linear(weight=r.uniform(-0.5, 1.5, (n, 4)))
    g = nir.NIRGraph.from_list(lin, nir.LIF(tau=tau, r=rr, v_leak=vl, v_threshold=thr,
                                            v_reset=vr))
    net = lnir.load(g, dt=dt)
    x = r.uniform(0, 1, (200, 2, 4))
    v = np.zeros((2, n))
    ref = []
    for t in range(200):
        v = v + dt / tau * (vl - v + rr * (x[t] @ lin.weight.T))
        z = v > thr
        v = np.where(z, vr, v)
        ref.append(z)
    out = net.forward(x)[0]
    assert out.mean() > 0.05
    assert np.array_equal(out, np.array(ref, float))


def test_load_cubalif_rejects_leak():
    n = 2
    cuba = nir.CubaLIF(tau_syn=np.full(n, 1e-3), tau_mem=np.full(n, 1e-3), r=np.ones(n),
                       v_leak=np.full(n, 0.1), v_threshold=np.ones(n))
    with pytest.raises(ValueError, match="v_leak != 0"):
        lnir.load(nir.NIRGraph.from_list(_affine(n, 2), cuba), dt=1e-4)


def test_load_nested_graph(rng):
    """A recurrent layer as a nested graph {input, lif, w_rec, output} (the form
    snnTorch wrote before nirtorch flattened it) loads like the flat one."""
    net = _net("all", rng)
    flat = lnir.export(net, dt=DT)
    n = 8
    sub = nir.NIRGraph(nodes={"input": nir.Input(np.array([n])),
                              "lif": flat.nodes["layer0.lif"], "w_rec": flat.nodes["layer0.rec"],
                              "output": nir.Output(np.array([n]))},
                       edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"),
                              ("lif", "output")])
    nodes = {"input": flat.nodes["input"], "a0": flat.nodes["layer0.affine"], "r0": sub,
             "a1": flat.nodes["layer1.affine"], "l1": flat.nodes["layer1.lif"],
             "output": flat.nodes["output"]}
    g = nir.NIRGraph(nodes=nodes, edges=[("input", "a0"), ("a0", "r0"), ("r0", "a1"),
                                         ("a1", "l1"), ("l1", "output")], type_check=False)
    _compare(net, lnir.load(g, dt=DT), rng)


def test_import_lifgrad_does_not_import_nir():
    code = "import sys, lifgrad, lifgrad.network; print('nir' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"


# ---------------------------------------------------------------------------
# peers (N8), (N9)
# ---------------------------------------------------------------------------

def _torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    return torch


def _run(step, x):
    torch = _torch()
    with torch.no_grad():
        return torch.stack([step(x[t]) for t in range(x.shape[0])]).numpy()


def _margin(net, x):
    """Spikes and the smallest |u - theta| over all layers (no step at equality)."""
    v, tr = net.forward(x)
    return v, min(float(np.min(np.abs(lt.trace.u - np.asarray(layer.neuron.theta))))
                  for lt, layer in zip(tr.layers, net.layers))


@pytest.mark.torch
def test_snntorch_export_loads(rng):
    torch = _torch()
    snn = pytest.importorskip("snntorch")
    from snntorch import utils
    from snntorch.export_nir import export_to_nir
    from snntorch.import_nir import import_from_nir
    n = 8
    # per-neuron vector beta/threshold and an unbatched sample: scalars or a batched
    # sample fail nirtorch's type inference; import needs a uniform threshold
    model = torch.nn.Sequential(
        torch.nn.Linear(5, n),
        snn.Leaky(beta=torch.linspace(0.6, 0.95, n), threshold=torch.full((n,), 0.5),
                  reset_mechanism="zero", init_hidden=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = export_to_nir(model, torch.randn(5))
        imported = import_from_nir(g)
    net = lnir.load(g, dt=1e-4)
    x = rng.uniform(0, 1.5, (100, 4, 5))
    v, margin = _margin(net, x)
    xt = torch.tensor(x, dtype=torch.float32)
    ref = _run(lambda xt_: imported(xt_)[0], xt)
    assert v.mean() > 0.05 and margin > 1e-5
    assert np.array_equal(v, ref)
    utils.reset(model)
    assert np.array_equal(v, _run(model, xt))         # zero reset: exact, delay or not
    # float32 export: r = 1/(1-beta) is written as e.g. 9.999997, so the gain is not
    # exactly 1 (lifgrad folds it into W; snnTorch's importer ignores |c-1| < 1e-5)
    c = np.float64(g.nodes["1"].r) * 1e-4 / np.float64(g.nodes["1"].tau)
    assert 0 < np.max(np.abs(c - 1)) < 1e-5

    # subtract reset is exported without a word as a zero-reset LIF: the graph is the
    # same, the original model's spikes are not
    model_sub = torch.nn.Sequential(
        model[0], snn.Leaky(beta=torch.linspace(0.6, 0.95, n), threshold=torch.full((n,), 0.5),
                            reset_mechanism="subtract", init_hidden=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g_sub = export_to_nir(model_sub, torch.randn(5))
    np.testing.assert_array_equal(g_sub.nodes["1"].v_reset, 0)
    assert not np.array_equal(_run(model_sub, xt), lnir.load(g_sub).forward(x)[0])


@pytest.mark.torch
def test_spikingjelly_export_loads(rng):
    torch = _torch()
    pytest.importorskip("spikingjelly")
    from spikingjelly.activation_based import functional, layer, neuron, nir_exchange
    model = torch.nn.Sequential(
        layer.Linear(5, 8), neuron.LIFNode(tau=2.0, v_reset=0.0, v_threshold=0.5),
        layer.Linear(8, 3), neuron.LIFNode(tau=3.0, v_reset=-0.1, v_threshold=0.3,
                                           decay_input=False))
    g = nir_exchange.export_to_nir(model, torch.randn(1, 5), dt=1e-4)
    net = lnir.load(g, dt=1e-4)
    x = rng.uniform(0, 1.5, (100, 4, 5))
    v, margin = _margin(net, x)
    functional.reset_net(model)
    ref = _run(model, torch.tensor(x, dtype=torch.float32))
    # SJ fires at u >= theta, NIR at u > theta: equal only away from equality
    assert v.mean() > 0.05 and margin > 1e-5
    assert np.array_equal(v, ref)

    # at equality they differ: W = 1, tau = 2 (gain 1/2), x = 1 -> u = 0.5 = theta
    one = torch.nn.Sequential(layer.Linear(1, 1, bias=False),
                              neuron.LIFNode(tau=2.0, v_reset=0.0, v_threshold=0.5))
    with torch.no_grad():
        one[0].weight.fill_(1.0)
    g1 = nir_exchange.export_to_nir(one, torch.ones(1, 1), dt=1e-4)
    functional.reset_net(one)
    x1 = np.ones((1, 1, 1))
    assert _run(one, torch.ones(1, 1, 1)).item() == 1.0
    assert lnir.load(g1).forward(x1)[0].item() == 0.0


@pytest.mark.torch
def test_norse_export_loads(rng):
    torch = _torch()
    norse = pytest.importorskip("norse.torch")

    def model(inv):
        return norse.SequentialState(
            torch.nn.Linear(5, 8),
            norse.LIFBoxCell(norse.LIFBoxParameters(tau_mem_inv=torch.tensor(inv),
                                                    v_th=torch.tensor(0.3))))

    # Norse writes tau = dt / tau_mem_inv (= dt * tau_mem) instead of 1 / tau_mem_inv:
    # the default tau_mem_inv = 100 1/s becomes tau = 1e-5 s, which lifgrad refuses at
    # dt = 1e-3 and which Norse reads back as tau_mem_inv = 1e5 (not a round trip)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = norse.to_nir(model(100.0), torch.randn(1, 5))
        back = norse.from_nir(g, dt=1e-3)
    np.testing.assert_allclose(float(g.nodes["1"].tau), 1e-3 / 100, rtol=1e-6)
    np.testing.assert_allclose(float(back.get_submodule("1").p.tau_mem_inv), 1e5, rtol=1e-6)
    with pytest.raises(ValueError, match="dt <= 1e-05"):
        lnir.load(g, dt=1e-3)

    # tau_mem_inv = 0.5 exports tau = 2e-3: compare with Norse's own import at dt = 1e-3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = norse.to_nir(model(0.5), torch.randn(1, 5))
        back = norse.from_nir(g, dt=1e-3)
    net = lnir.load(g, dt=1e-3)
    np.testing.assert_allclose(net.layers[0].neuron.alpha, 0.5, atol=1e-7)
    x = rng.uniform(0, 2.0, (100, 4, 5))
    v, margin = _margin(net, x)
    state = [None]

    def step(xt):
        z, state[0] = back(xt, state[0])
        return z

    ref = _run(step, torch.tensor(x, dtype=torch.float32))
    assert v.mean() > 0.02 and margin > 1e-5
    assert np.array_equal(v, ref)


@pytest.mark.torch
def test_snntorch_rleaky_export(rng):
    """RLeaky (all-to-all, zero reset) exports as LIF <-> Affine.  lifgrad.load equals a
    direct Euler simulation of the NIR equations; snnTorch's own RLeaky departs from them
    (its zero reset also drops the input of the step after a spike), and its importer
    rewrites the graph it is given in place (so it gets a copy here)."""
    import copy
    torch = _torch()
    snn = pytest.importorskip("snntorch")
    from snntorch import utils
    from snntorch.export_nir import export_to_nir
    from snntorch.import_nir import import_from_nir
    n = 8
    model = torch.nn.Sequential(
        torch.nn.Linear(5, n),
        snn.RLeaky(beta=torch.linspace(0.6, 0.95, n), threshold=torch.full((n,), 0.5),
                   all_to_all=True, linear_features=n, reset_mechanism="zero",
                   init_hidden=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = export_to_nir(model, torch.randn(5))
        g_copy = copy.deepcopy(g)
        import_from_nir(g_copy)
    assert isinstance(g_copy.nodes["1"], nir.NIRGraph)       # mutated in place
    with pytest.raises(ValueError, match="import_from_nir"):
        lnir.load(g_copy)
    net = lnir.load(g)
    assert net.layers[0].config.recurrent == "all" and net.layers[0].rec_bias
    x = rng.uniform(0, 1.5, (100, 4, 5))
    v, margin = _margin(net, x)
    assert v.mean() > 0.05 and margin > 1e-5

    A, L, R = g.nodes["0"], g.nodes["1.lif"], g.nodes["1.w_rec"]
    tau, r = np.float64(L.tau), np.float64(L.r)

    def simulate(drop_input_after_spike):
        mem, z, out = np.zeros((4, n)), np.zeros((4, n)), []
        for t in range(x.shape[0]):
            cur = x[t] @ np.float64(A.weight).T + A.bias + z @ np.float64(R.weight).T + R.bias
            mem = mem + 1e-4 / tau * (-mem + r * cur)                # (N1) Euler step
            if drop_input_after_spike:
                mem = (1 - z) * mem                                  # snnTorch RLeaky
            z = (mem > L.v_threshold).astype(float)
            if not drop_input_after_spike:
                mem = np.where(z > 0, L.v_reset, mem)                # NIR reset
            out.append(z)
        return np.array(out)

    assert np.array_equal(v, simulate(False))
    utils.reset(model)
    orig = _run(model, torch.tensor(x, dtype=torch.float32))
    assert np.array_equal(orig, simulate(True))
    assert not np.array_equal(orig, v)
