"""Optimisers and schedules (lifgrad.optim) against torch.optim, state round
trips and argument validation."""
import math

import numpy as np
import pytest

from lifgrad import optim

SHAPES = {"layer0.W": (3, 4), "layer0.b": (5,)}


def _params(rng):
    return {k: rng.normal(size=s) for k, s in SHAPES.items()}


def _grads(rng, n):
    return [{k: rng.normal(size=s) for k, s in SHAPES.items()} for _ in range(n)]


def _run(opt, params, grads, lr_at=None):
    for i, g in enumerate(grads):
        if lr_at and i in lr_at:
            opt.lr = lr_at[i]
        opt.step(params, g)
    return params


OPT_CASES = [
    ("SGD", dict(lr=0.1), "SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, weight_decay=0.05), "SGD", dict(lr=0.1, weight_decay=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9), "SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True), "SGD",
     dict(lr=0.05, momentum=0.8, nesterov=True)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1), "SGD",
     dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1)),
    ("Adam", dict(lr=0.01), "Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1), "Adam",
     dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01), "AdamW", dict(lr=0.01)),        # both default to wd 0.01
    ("AdamW", dict(lr=0.03, betas=(0.85, 0.95), weight_decay=0.2), "AdamW",
     dict(lr=0.03, betas=(0.85, 0.95), weight_decay=0.2)),
]


@pytest.mark.torch
@pytest.mark.parametrize("mine,kw,theirs,tkw", OPT_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(OPT_CASES)])
def test_matches_torch_optim(mine, kw, theirs, tkw):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    p0 = _params(rng)
    grads = _grads(rng, 20)
    lr_at = {12: kw["lr"] / 2}                  # a schedule changing lr mid-run
    params = _run(getattr(optim, mine)(**kw), {k: v.copy() for k, v in p0.items()}, grads,
                  lr_at)
    tp = {k: torch.tensor(v.copy(), dtype=torch.float64, requires_grad=True)
          for k, v in p0.items()}
    topt = getattr(torch.optim, theirs)(list(tp.values()), **tkw)
    for i, g in enumerate(grads):
        if i in lr_at:
            for group in topt.param_groups:
                group["lr"] = lr_at[i]
        for k, t in tp.items():
            t.grad = torch.tensor(g[k], dtype=torch.float64)
        topt.step()
    for k in p0:
        assert not np.allclose(params[k], p0[k])
        np.testing.assert_allclose(params[k], tp[k].detach().numpy(), rtol=1e-12, atol=1e-14)


def test_sgd_by_hand():
    # two steps of momentum SGD with weight decay, written out
    p = {"w": np.array([1.0, -2.0])}
    g1, g2 = np.array([0.5, 0.25]), np.array([-1.0, 2.0])
    opt = optim.SGD(lr=0.1, momentum=0.5, weight_decay=0.1)
    opt.step(p, {"w": g1})
    b = g1 + 0.1 * np.array([1.0, -2.0])
    w = np.array([1.0, -2.0]) - 0.1 * b
    np.testing.assert_allclose(p["w"], w, rtol=1e-15)
    opt.step(p, {"w": g2})
    b = 0.5 * b + g2 + 0.1 * w
    np.testing.assert_allclose(p["w"], w - 0.1 * b, rtol=1e-15)


@pytest.mark.torch
@pytest.mark.parametrize("scale,max_norm", [(3.0, 1.0), (0.1, 5.0)])
def test_clip_grad_norm_matches_torch(scale, max_norm):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    grads = {k: scale * rng.normal(size=s) for k, s in SHAPES.items()}
    orig = {k: v.copy() for k, v in grads.items()}
    ts = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in SHAPES.values()]
    for t, g in zip(ts, grads.values()):
        t.grad = torch.tensor(g.copy())
    tn = torch.nn.utils.clip_grad_norm_(ts, max_norm)
    n = optim.clip_grad_norm(grads, max_norm)
    assert n == pytest.approx(float(tn), rel=1e-12)
    assert n == pytest.approx(math.sqrt(sum(np.sum(g ** 2) for g in orig.values())), rel=1e-12)
    for t, k in zip(ts, grads):
        np.testing.assert_allclose(grads[k], t.grad.numpy(), rtol=1e-12, atol=1e-15)
    after = math.sqrt(sum(np.sum(g ** 2) for g in grads.values()))
    if n > max_norm:
        assert after == pytest.approx(max_norm, rel=1e-5) and after <= max_norm
    else:
        for k in grads:
            np.testing.assert_array_equal(grads[k], orig[k])


@pytest.mark.torch
def test_step_lr_matches_torch():
    torch = pytest.importorskip("torch")
    mine = optim.StepLR(0.1, step_size=3, gamma=0.5)
    topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(topt, step_size=3, gamma=0.5)
    for epoch in range(12):
        assert mine(epoch) == pytest.approx(topt.param_groups[0]["lr"], rel=1e-12)
        assert mine(epoch) == pytest.approx(0.1 * 0.5 ** (epoch // 3), rel=1e-15)
        topt.step()
        sched.step()


@pytest.mark.torch
def test_cosine_lr_matches_torch():
    torch = pytest.importorskip("torch")
    mine = optim.CosineLR(0.1, epochs=10, min_lr=0.001)
    topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=10, eta_min=0.001)
    for epoch in range(11):
        assert mine(epoch) == pytest.approx(topt.param_groups[0]["lr"], rel=1e-12)
        topt.step()
        sched.step()


def test_schedule_formulas():
    c = optim.CosineLR(0.2, epochs=4)
    assert c(0) == 0.2
    assert c(2) == pytest.approx(0.1, rel=1e-15)
    assert c(4) == pytest.approx(0.0, abs=1e-17)
    assert c(9) == c(4)                          # stays at min_lr after the last epoch
    assert optim.CosineLR(0.2, epochs=4, min_lr=0.05)(4) == pytest.approx(0.05, rel=1e-15)
    assert [optim.StepLR(1.0, 2, 0.1)(e) for e in range(5)] == pytest.approx(
        [1.0, 1.0, 0.1, 0.1, 0.01], rel=1e-15)
    assert optim.ConstantLR(0.3)(0) == optim.ConstantLR(0.3)(100) == 0.3


@pytest.mark.parametrize("make", [
    lambda: optim.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda: optim.Adam(lr=0.01, weight_decay=0.01),
    lambda: optim.AdamW(lr=0.01),
], ids=["sgd", "adam", "adamw"])
def test_state_dict_round_trip(make, tmp_path):
    rng = np.random.default_rng(0)
    grads = _grads(rng, 20)
    a = make()
    pa = _params(rng)
    _run(a, pa, grads[:10])
    sd = a.state_dict()
    p_mid = {k: v.copy() for k, v in pa.items()}
    _run(a, pa, grads[10:])                   # a carries on; sd must be a snapshot
    np.savez(tmp_path / "opt.npz", **sd)      # a checkpoint holds it as arrays
    for loaded in (sd, dict(np.load(tmp_path / "opt.npz"))):
        b = make()
        b.lr = 123.0                          # overwritten by the state
        b.load_state_dict(loaded)
        assert b.t == 10 and b.lr == a.lr
        pb = _run(b, {k: v.copy() for k, v in p_mid.items()}, grads[10:])
        for k in pa:
            np.testing.assert_array_equal(pb[k], pa[k])
    # a fresh optimiser (no state) continues differently
    c = make()
    pc = _run(c, {k: v.copy() for k, v in p_mid.items()}, grads[10:])
    assert not np.array_equal(pc["layer0.W"], pa["layer0.W"])


@pytest.mark.parametrize("call,match", [
    (lambda: optim.SGD(lr=-0.1), "^lr:"),
    (lambda: optim.SGD(lr=float("nan")), "^lr:"),
    (lambda: optim.SGD(lr=True), "^lr:"),
    (lambda: optim.Adam(lr="0.1"), "^lr:"),
    (lambda: optim.SGD(momentum=1.0), "^momentum:"),
    (lambda: optim.SGD(momentum=-0.1), "^momentum:"),
    (lambda: optim.SGD(nesterov=True), "^nesterov:"),
    (lambda: optim.SGD(weight_decay=-1e-3), "^weight_decay:"),
    (lambda: optim.Adam(betas=(1.0, 0.9)), "^betas:"),
    (lambda: optim.Adam(betas=(0.9, -0.1)), "^betas:"),
    (lambda: optim.Adam(eps=0.0), "^eps:"),
    (lambda: optim.AdamW(weight_decay=float("inf")), "^weight_decay:"),
    (lambda: optim.clip_grad_norm({"a": np.ones(2)}, 0.0), "^max_norm:"),
    (lambda: optim.clip_grad_norm({"a": np.ones(2)}, float("inf")), "^max_norm:"),
    (lambda: optim.StepLR(0.1, 0), "^step_size:"),
    (lambda: optim.StepLR(0.1, 1.5), "^step_size:"),
    (lambda: optim.StepLR(0.1, 2, gamma=0.0), "^gamma:"),
    (lambda: optim.CosineLR(0.1, 0), "^epochs:"),
    (lambda: optim.CosineLR(0.1, 5, min_lr=-1.0), "^min_lr:"),
    (lambda: optim.ConstantLR(-1), "^lr:"),
    (lambda: optim.get("rmsprop"), "^optimizer: unknown name 'rmsprop'"),
])
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_get_builds_the_named_optimizer():
    assert isinstance(optim.get("adam", lr=0.5), optim.Adam)
    assert isinstance(optim.get("adamw"), optim.AdamW)
    assert optim.get("sgd", lr=0.2, momentum=0.5).momentum == 0.5


@pytest.mark.parametrize("make", [optim.SGD, lambda: optim.SGD(momentum=0.9), optim.Adam])
def test_bad_grads_raise_and_change_nothing(make):
    rng = np.random.default_rng(1)
    p = _params(rng)
    before = {k: v.copy() for k, v in p.items()}
    opt = make()
    with pytest.raises(ValueError, match=r"^grads: missing \['layer0.b'\]"):
        opt.step(p, {"layer0.W": np.zeros((3, 4))})
    with pytest.raises(ValueError, match=r"^grads\['layer0.b'\]: expected shape \(5,\)"):
        opt.step(p, {"layer0.W": np.ones((3, 4)), "layer0.b": np.ones(4)})
    assert opt.t == 0 and opt.state == {}
    for k in p:
        np.testing.assert_array_equal(p[k], before[k])
    opt.step(p, {"layer0.W": np.ones((3, 4)), "layer0.b": np.ones(5), "x": np.ones(7)})
    assert opt.t == 1 and not np.array_equal(p["layer0.W"], before["layer0.W"])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("make", [lambda: optim.Adam(lr=1e-2), lambda: optim.Adam(lr=1e-2, weight_decay=0.1),
                                  lambda: optim.AdamW(lr=1e-2, weight_decay=0.05)],
                         ids=["adam", "adam-l2", "adamw"])
def test_fused_adam_kernel_is_the_numpy_update_to_the_bit(make, dtype, monkeypatch):
    rng = np.random.default_rng(5)
    p0 = rng.standard_normal((64, 300)).astype(dtype)        # 19200 elements: above FUSED_MIN
    grads = [rng.standard_normal(p0.shape).astype(dtype) for _ in range(4)]
    out = {}
    for fused in (True, False):
        monkeypatch.setattr(optim, "FUSED_MIN", 1 if fused else 10**12)
        opt, p = make(), {"w": p0.copy()}
        for g in grads:
            opt.step(p, {"w": g})
        out[fused] = (p["w"], *opt.state["w"])
    for a, b in zip(out[True], out[False]):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(out[True][0], p0)
