"""The training loop: metrics, atomic checkpoints, resume, divergence stop.

Everything a run does follows from a :class:`TrainConfig` (JSON-serialisable)
and its seed: the network is built from it, and every epoch draws its
shuffling and encoder noise from a generator seeded with ``(seed, epoch)``, so
a run resumed from the checkpoint of epoch k ends with exactly the parameters
of an uninterrupted run.

Output folder: ``config.json``, ``metrics.jsonl`` and ``metrics.csv`` (one row
per epoch), ``checkpoint.npz`` + ``checkpoint.json`` (the last good epoch,
written to a temporary file and renamed, never containing NaN or Inf).
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np

from . import data as _data
from . import encode as _encode
from . import losses as _losses
from . import optim as _optim
from . import surrogates as _sg
from .config import LIFConfig
from .network import Dense, Readout, Sequential

__all__ = ["TrainConfig", "build_network", "fit", "evaluate", "load_checkpoint",
           "TrainingDiverged", "History", "load_dataset", "check_dataset"]


# model name -> the hidden layers' LIFConfig fields
_MODELS = {"lif": {}, "synaptic": dict(synaptic=True), "adaptive": dict(adaptive=True),
           "recurrent": dict(recurrent="all"),
           "recurrent_adaptive": dict(recurrent="all", adaptive=True)}


class History(list):
    """The per-epoch metric dicts of a run (a list), with the trained network
    as ``.network``."""

    network = None


class TrainingDiverged(RuntimeError):
    """The loss or a gradient became NaN or Inf; the last good checkpoint is kept."""


@dataclass
class TrainConfig:
    dataset: str = "digits"
    data_dir: str | None = None
    hidden: tuple = (128,)
    model: str = "lif"                 # lif | synaptic | adaptive | recurrent | recurrent_adaptive
    readout: bool = False              # non-spiking leaky-integrator output layer
    alpha: float = 0.95
    theta: float = 1.0
    reset: str = "subtract"
    detach_reset: bool = False
    surrogate: str = "atan"
    surrogate_params: dict = field(default_factory=dict)
    learn: tuple = ()
    T: int = 25
    encoder: str = "static"            # static | poisson | latency; events: temporal data (n, T, N)
    loss: str = "ce_membrane"
    loss_params: dict = field(default_factory=dict)
    optimizer: str = "adam"
    lr: float = 5e-4
    betas: tuple = (0.9, 0.999)
    weight_decay: float = 0.0
    momentum: float = 0.0
    schedule: str = "constant"         # constant | step | cosine
    step_size: int = 10
    gamma: float = 0.1
    clip: float | None = None
    l1: float = 0.0
    batch_size: int = 128
    epochs: int = 10
    seed: int = 0
    dtype: str = "float32"
    max_train: int | None = None       # use only the first N training samples
    calibrate: int | None = None       # surrogate calibration (T6): None off, 0 once, N every N steps
    backend: str = "cpu"               # cpu | reference | cuda (device-resident, lifgrad.device)
    checkpoint_every: int | None = None  # BPTT checkpointing: keep each layer's state every K
                                        # steps, recompute segments in the backward (CK1-CK3)
    memory_budget_mb: float | None = None  # or choose K for this much trace memory (MiB):
                                        # checkpoint.every_for_budget(net, T, batch_size, ...)
    out: str = "runs/run"
    data_options: dict = field(default_factory=dict)   # data.load(dataset, ..., **options)
    neuron_params: dict = field(default_factory=dict)  # hidden layers' Dense(...) neuron
                                        # parameters: alpha_s, rho, beta_a (the model's own)

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), indent=1)

    @classmethod
    def from_dict(cls, d):
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"config: unknown key(s) {sorted(unknown)}")
        d = dict(d)
        for k in ("hidden", "learn", "betas"):
            if k in d and d[k] is not None:
                d[k] = tuple(d[k])
        return cls(**d)

    def validate(self):
        if self.model not in _MODELS:
            raise ValueError(f"model: expected one of {', '.join(_MODELS)}, got {self.model!r}")
        _check_neuron_params(self.model, self.neuron_params)
        for k in ("T", "batch_size", "epochs"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{k}: expected an integer >= 1, got {v!r}")
        if not self.hidden or any((not isinstance(h, int)) or h < 1 for h in self.hidden):
            raise ValueError(f"hidden: expected positive integer sizes, got {self.hidden!r}")
        _encode.get(self.encoder)
        if not isinstance(self.data_options, dict):
            raise ValueError(f"data_options: expected a dict of data.load options, got "
                             f"{self.data_options!r}")
        _losses.get(self.loss)
        if self.readout and self.loss not in ("ce_membrane", "ce_max_membrane", "mse_membrane"):
            raise ValueError(f"loss: {self.loss!r} reads spikes; a readout layer has only a "
                             f"membrane (use ce_membrane, ce_max_membrane or mse_membrane)")
        if self.backend not in ("cpu", "reference", "cuda"):
            raise ValueError(f"backend: expected cpu, reference or cuda, got {self.backend!r}")
        if self.backend == "cuda":
            if self.calibrate is not None:
                raise ValueError("calibrate: not available with backend='cuda' (it runs on the host)")
            if self.l1:
                raise ValueError("l1: the spike regulariser is not available with backend='cuda'")
        mb = self.memory_budget_mb
        if mb is not None:
            if isinstance(mb, bool) or not isinstance(mb, (int, float)) or not (
                    math.isfinite(mb) and mb > 0):
                raise ValueError(f"memory_budget_mb: expected a positive number or None, "
                                 f"got {mb!r}")
            if self.checkpoint_every is not None:
                raise ValueError("memory_budget_mb: give either checkpoint_every or a memory "
                                 "budget (which chooses checkpoint_every), not both")
        ck = self.checkpoint_every
        if ck is not None and (isinstance(ck, bool) or not isinstance(ck, int) or ck < 1):
            raise ValueError(f"checkpoint_every: expected an integer >= 1 or None, got {ck!r}")
        if ck is not None or mb is not None:     # (a budget may choose checkpointing)
            name = "checkpoint_every" if mb is None else "memory_budget_mb"
            if self.backend == "cuda":
                raise ValueError(f"{name}: not available with backend='cuda' (the device keeps "
                                 f"the full trace)")
            if self.l1:
                raise ValueError(f"{name}: the spike regulariser l1 needs every hidden layer's "
                                 f"spikes, which a checkpointed trace does not keep")
        if self.schedule not in ("constant", "step", "cosine"):
            raise ValueError(f"schedule: expected constant, step or cosine, got {self.schedule!r}")
        return self


def _check_neuron_params(model, params):
    """``neuron_params`` may set the hidden cells' own parameters: ``alpha_s``
    (synaptic), ``rho`` and ``beta_a`` (adaptive), finite numbers."""
    if not isinstance(params, dict):
        raise ValueError(f"neuron_params: expected a dict, got {params!r}")
    cell = _MODELS[model]
    own = (("alpha_s",) if cell.get("synaptic") else ()) + (
        ("rho", "beta_a") if cell.get("adaptive") else ())
    bad = sorted(set(params) - set(own))
    if bad:
        raise ValueError(f"neuron_params: {bad} not used by model {model!r}; valid: "
                         f"{list(own) or 'none'}")
    for k, v in params.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"neuron_params[{k!r}]: expected a finite number, got {v!r}")


def build_network(cfg: TrainConfig, n_in, n_out):
    """The Sequential a configuration describes."""
    sur = _sg.get(cfg.surrogate, **dict(cfg.surrogate_params))
    # the host network of a cuda run computes on the cpu (evaluation, checks);
    # its training steps run in lifgrad.device
    backend = "cpu" if cfg.backend == "cuda" else cfg.backend
    base = dict(reset=cfg.reset, detach_reset=cfg.detach_reset, surrogate=sur, backend=backend)
    model = _MODELS[cfg.model]
    sizes = [n_in, *cfg.hidden, n_out]
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == len(sizes) - 2
        if last and cfg.readout:
            layers.append(Readout(a, b, alpha=cfg.alpha, backend=backend,
                                  learn=("alpha",) if "alpha" in cfg.learn else ()))
            continue
        conf = LIFConfig(**base, **({} if last else model))
        learn = tuple(k for k in cfg.learn if last is False or k in ("alpha", "theta"))
        layers.append(Dense(a, b, conf, alpha=cfg.alpha, theta=cfg.theta, learn=learn,
                            autapses=False if conf.recurrent else True,
                            **({} if last else dict(cfg.neuron_params))))
    return Sequential(layers, seed=cfg.seed, dtype=cfg.dtype)


def _make_optimizer(cfg):
    if cfg.optimizer == "sgd":
        return _optim.SGD(lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return _optim.AdamW(lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    return _optim.get(cfg.optimizer, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)


def _schedule(cfg):
    if cfg.schedule == "step":
        return _optim.StepLR(cfg.lr, cfg.step_size, cfg.gamma)
    if cfg.schedule == "cosine":
        return _optim.CosineLR(cfg.lr, cfg.epochs)
    return _optim.ConstantLR(cfg.lr)


def load_dataset(cfg, data_dir=None):
    """The data set ``cfg`` names, with ``cfg.data_options``; a temporal one
    (``data.TEMPORAL``) is generated or binned with ``T=cfg.T`` steps."""
    opts = dict(cfg.data_options)
    if cfg.dataset in _data.TEMPORAL:
        opts.setdefault("T", cfg.T)
    return _data.load(cfg.dataset, data_dir or cfg.data_dir, seed=cfg.seed, **opts)


def check_dataset(cfg, ds):
    """The rule for temporal data (``x`` of shape (n, T, N)): encoder
    ``"events"`` (the spike trains are the input, time first) and ``cfg.T``
    equal to the data's T.  Static data take any other encoder."""
    if ds.temporal:
        if cfg.encoder != "events":
            raise ValueError(f"encoder: the {ds.name} data set is spike trains (n, T, N) = "
                             f"{tuple(ds.x_train.shape)}; use encoder='events', not "
                             f"{cfg.encoder!r}")
        if ds.n_steps != cfg.T:
            raise ValueError(f"T: the {ds.name} data have {ds.n_steps} steps; set T="
                             f"{ds.n_steps} (T must equal the data's number of steps)")
    elif cfg.encoder == "events":
        raise ValueError(f"encoder: 'events' takes spike trains (n, T, N); the {ds.name} data "
                         f"set is static {tuple(ds.x_train.shape)}: use static, poisson or "
                         f"latency")


def _encode_batch(cfg, x, rng):
    if cfg.encoder == "events":                 # temporal data: (B, T, N) -> (T, B, N)
        return _encode.events(x, cfg.T, dtype=cfg.dtype)
    enc = _encode.get(cfg.encoder)
    return enc(x, cfg.T, rng) if cfg.encoder != "static" else enc(x)


def _outputs(net, tr):
    """(spikes or None, membrane) of the top layer."""
    top = tr.layers[-1].trace
    return (None if net.layers[-1].readout else top.v), top.u


def _predict_correct(v, u, y):
    if v is None:
        return int(np.sum(u.sum(axis=0).argmax(axis=1) == y))
    return int(np.sum(v.sum(axis=0).argmax(axis=1) == y))


def evaluate(net, cfg, x, y, batch_size=512, seed=0, device=None):
    """Accuracy (by spike count, or summed membrane for a readout) on (x, y);
    ``device``, a :class:`lifgrad.device.DeviceNetwork`, runs the forward there."""
    rng = np.random.default_rng([cfg.seed, 10_000 + seed])
    correct = 0
    for xb, yb in _data.batches(x, y, batch_size):
        inp = _encode_batch(cfg, xb, rng)
        T = cfg.T if inp.ndim == 2 else None
        if device is not None:
            v, u = device.output(device.forward(inp, T=T))
        else:
            _, tr = net.forward(inp, T=T)
            v, u = _outputs(net, tr)
        correct += _predict_correct(v, u, yb)
    return correct / len(y)


def _atomic_write(path, write):
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.splitext(path)[1])
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _with_scales(net, scales):
    return net.replace_configs(lambda i, layer, c: c.replace(
        surrogate=c.surrogate.with_scale(scales[i])))


def save_checkpoint(out, net, opt, epoch, cfg, history, step=0):
    """Write ``checkpoint.npz`` and ``checkpoint.json`` atomically; refuse NaN/Inf."""
    for k, v in net.params.items():
        if not np.all(np.isfinite(v)):
            raise TrainingDiverged(f"checkpoint: parameter {k} contains NaN or Inf; not written")
    arrays = {f"param/{k}": v for k, v in net.params.items()}
    arrays.update({f"opt/{k}": v for k, v in opt.state_dict().items()})
    arrays["epoch"] = np.array(epoch)
    _atomic_write(os.path.join(out, "checkpoint.npz"),
                  lambda p: np.savez(open(p, "wb"), **arrays))
    meta = {"epoch": epoch, "config": dataclasses.asdict(cfg), "history": list(history),
            "step": step,
            "surrogate_scales": [layer.config.surrogate.scale for layer in net.layers]}
    _atomic_write(os.path.join(out, "checkpoint.json"),
                  lambda p: open(p, "w").write(json.dumps(meta, indent=1)))


def load_checkpoint(path):
    """(TrainConfig, network with the checkpoint's parameters, raw arrays, meta)."""
    folder = path if os.path.isdir(path) else os.path.dirname(path)
    npz = os.path.join(folder, "checkpoint.npz")
    js = os.path.join(folder, "checkpoint.json")
    if not (os.path.exists(npz) and os.path.exists(js)):
        raise FileNotFoundError(f"checkpoint: expected checkpoint.npz and checkpoint.json in {folder}")
    meta = json.load(open(js))
    cfg = TrainConfig.from_dict(meta["config"])
    arrs = dict(np.load(npz))
    params = {k[len("param/"):]: v for k, v in arrs.items() if k.startswith("param/")}
    n_in = params["layer0.W"].shape[1]
    n_out = params[f"layer{len(cfg.hidden)}.W"].shape[0]
    net = build_network(cfg, n_in, n_out)
    for k in net.params:
        net.params[k] = params[k].astype(net.dtype)
    return cfg, net, arrs, meta


def _layer_grad_norms(net, grads):
    out = []
    for i in range(len(net.layers)):
        pre = f"layer{i}."
        out.append(math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64)))
                                 for k, g in grads.items() if k.startswith(pre))))
    return out


def fit(cfg: TrainConfig, dataset=None, resume=False, progress=None, stop_after=None,
        grad_hook=None, on_epoch=None):
    """Train as ``cfg`` says; return a :class:`History` (the per-epoch metric
    dicts; ``.network`` is the trained network).

    resume:     continue from ``cfg.out``'s checkpoint (same config and seed).
    progress:   show a tqdm bar and a line per epoch (default: when stderr is a terminal).
    stop_after: stop after this many epochs of this call (simulates an interruption).
    grad_hook:  ``f(grads)`` called on every step's gradients (tests use it).
    on_epoch:   ``f(row, network)`` called after every epoch.

    The ``loss`` column is the loss as defined (``ce_membrane`` sums over the
    steps), averaged over the batches.  Resumed and uninterrupted runs agree
    bitwise when run with the same BLAS and Numba thread counts (float32 sums
    depend on them).
    """
    cfg.validate()
    ds = dataset if dataset is not None else load_dataset(cfg)
    check_dataset(cfg, ds)
    xtr, ytr = ds.x_train, ds.y_train
    if cfg.max_train:
        xtr, ytr = xtr[:cfg.max_train], ytr[:cfg.max_train]
    os.makedirs(cfg.out, exist_ok=True)
    net = build_network(cfg, ds.n_features, ds.n_classes)
    every = cfg.checkpoint_every
    if cfg.memory_budget_mb is not None:
        from .checkpoint import every_for_budget
        every = every_for_budget(net, cfg.T, cfg.batch_size, cfg.memory_budget_mb * 2**20)
    opt = _make_optimizer(cfg)
    sched = _schedule(cfg)
    loss_fn = _losses.get(cfg.loss)
    history, start = History(), 0
    if resume:
        _, saved_net, arrs, meta = load_checkpoint(cfg.out)
        if TrainConfig.from_dict(meta["config"]) != cfg:
            raise ValueError(f"resume: the configuration differs from the checkpoint's in {cfg.out}")
        net.params = saved_net.params
        opt.load_state_dict({k[len("opt/"):]: v for k, v in arrs.items() if k.startswith("opt/")})
        history = History(meta["history"])
        start = int(arrs["epoch"]) + 1
        step_resume = int(meta.get("step", 0))
    else:
        with open(os.path.join(cfg.out, "config.json"), "w") as f:
            f.write(cfg.to_json())
        for name in ("metrics.jsonl", "metrics.csv"):
            if os.path.exists(os.path.join(cfg.out, name)):
                os.remove(os.path.join(cfg.out, name))
    show = sys.stderr.isatty() if progress is None else progress
    if resume and meta.get("surrogate_scales"):
        net = _with_scales(net, meta["surrogate_scales"])
    done = 0
    step = step_resume if resume else 0
    dev = None
    if cfg.backend == "cuda":
        from .device import DeviceNetwork, DeviceOptimizer
        dev, dopt = DeviceNetwork(net), DeviceOptimizer(opt)
    for epoch in range(start, cfg.epochs):
        if stop_after is not None and done >= stop_after:
            break
        t0 = time.perf_counter()
        opt.lr = sched(epoch)
        rng = np.random.default_rng([cfg.seed, epoch])
        n_batches = math.ceil(len(xtr) / cfg.batch_size)
        it = _data.batches(xtr, ytr, cfg.batch_size, rng)
        bar = None
        if show:
            from tqdm import tqdm
            bar = tqdm(it, total=n_batches, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False)
            it = bar
        tot_loss, correct, seen = 0.0, 0, 0
        rates = np.zeros(len(net.layers))
        gnorms = np.zeros(len(net.layers))
        for xb, yb in it:
            inp = _encode_batch(cfg, xb, rng)
            if cfg.calibrate is not None and (
                    (cfg.calibrate == 0 and epoch == 0 and step == 0 and not resume)
                    or (cfg.calibrate > 0 and step % cfg.calibrate == 0)):
                from .theory import calibrate as _calibrate
                net = _calibrate(net, inp, T=cfg.T if inp.ndim == 2 else None)
            step += 1
            if dev is not None:
                L, v, u, rate = _device_step(dev, dopt, cfg, loss_fn, inp, yb, epoch, grad_hook,
                                             gnorms)
            else:
                L, v, u, rate = _host_step(net, opt, cfg, loss_fn, inp, yb, epoch, grad_hook,
                                           gnorms, every)
            rates += rate
            tot_loss += L * len(yb)
            correct += _predict_correct(v, u, yb)
            seen += len(yb)
            if bar is not None:
                bar.set_postfix(loss=f"{tot_loss / seen:.4f}", acc=f"{correct / seen:.3f}")
        if bar is not None:
            bar.close()
        train_time = time.perf_counter() - t0
        if dev is not None:
            dev.to_host()                # parameters and optimiser state for the checkpoint
            dopt.to_host()
        test_acc = evaluate(net, cfg, ds.x_test, ds.y_test, device=dev)
        row = {"epoch": epoch + 1, "loss": tot_loss / seen, "train_acc": correct / seen,
               "test_acc": test_acc, "lr": opt.lr, "seconds": train_time,
               "eval_seconds": time.perf_counter() - t0 - train_time}
        for i in range(len(net.layers)):
            r = rates[i] / n_batches
            row[f"rate_layer{i}"] = None if math.isnan(r) else r     # not kept: checkpointing
            row[f"grad_norm_layer{i}"] = gnorms[i] / n_batches
        history.append(row)
        with open(os.path.join(cfg.out, "metrics.jsonl"), "a") as f:
            f.write(json.dumps(row) + "\n")
        _write_csv(os.path.join(cfg.out, "metrics.csv"), history)
        save_checkpoint(cfg.out, net, opt, epoch, cfg, history, step)
        done += 1
        if on_epoch is not None:
            on_epoch(row, net)
        if show:
            print(f"epoch {epoch + 1}: loss {row['loss']:.4f} train {row['train_acc']:.4f} "
                  f"test {test_acc:.4f} ({train_time:.1f} s)", file=sys.stderr)
    history.network = net
    return history


def _diverged(epoch, cfg, what):
    return TrainingDiverged(f"epoch {epoch + 1}: {what}; training stopped, the last good "
                            f"checkpoint in {cfg.out} is kept")


def _host_step(net, opt, cfg, loss_fn, inp, yb, epoch, grad_hook, gnorms, every):
    """One training step on the host (checkpointed every ``every`` steps, or
    not when None); returns (loss, top spikes, top membrane, per-layer rates)
    and adds the layer gradient norms to ``gnorms``."""
    _, tr = net.forward(inp, T=cfg.T if inp.ndim == 2 else None, checkpoint_every=every)
    v, u = _outputs(net, tr)
    lo = loss_fn(v, u, yb, **dict(cfg.loss_params))
    L = lo.L
    layer_dv = {}
    if cfg.l1:
        for i, lt in enumerate(tr.layers[:-1]):
            reg = _losses.l1_rate(lt.trace.v, cfg.l1)
            L += reg.L
            layer_dv[i] = reg.dv
    if not math.isfinite(L):
        raise _diverged(epoch, cfg, f"the loss is {L}")
    grads = net.backward(tr, dv=lo.dv, du=lo.du, layer_dv=layer_dv)
    if grad_hook is not None:
        grad_hook(grads)
    bad = [k for k, g in grads.items() if not np.all(np.isfinite(g))]
    if bad:
        raise _diverged(epoch, cfg, f"gradient of {bad[0]} contains NaN or Inf")
    gnorms += np.array(_layer_grad_norms(net, grads))
    if cfg.clip:
        _optim.clip_grad_norm(grads, cfg.clip)
    opt.step(net.params, grads)
    # a checkpointed trace keeps the top layer's spikes only: the hidden rates are NaN
    return L, v, u, np.array([float(lt.trace.v.mean()) if lt is not None else np.nan
                              for lt in tr.layers])


def _device_step(dev, dopt, cfg, loss_fn, inp, yb, epoch, grad_hook, gnorms):
    """:func:`_host_step` on the device (lifgrad.device)."""
    from .kernels import cuda_ops as ops
    tr = dev.forward(inp, T=cfg.T if inp.ndim == 2 else None)
    v, u = dev.output(tr)
    lo = loss_fn(v, u, yb, **dict(cfg.loss_params))
    L = lo.L
    if not math.isfinite(L):
        raise _diverged(epoch, cfg, f"the loss is {L}")
    grads = dev.backward(tr, dv=lo.dv, du=lo.du)
    if grad_hook is not None:
        grad_hook({k: g.copy_to_host() for k, g in grads.items()})
    sq = {k: ops.sum_squares(g) for k, g in grads.items()}       # also the NaN/Inf check
    bad = [k for k, q in sq.items() if not math.isfinite(q)]
    if bad:
        raise _diverged(epoch, cfg, f"gradient of {bad[0]} contains NaN or Inf")
    n = len(dev.net.layers)
    gnorms += np.array([math.sqrt(sum(q for k, q in sq.items() if k.startswith(f"layer{i}.")))
                        for i in range(n)])
    if cfg.clip:                                      # as optim.clip_grad_norm
        total = math.sqrt(sum(sq.values()))
        if total > cfg.clip:
            f = cfg.clip / (total + 1e-6)
            for g in grads.values():
                ops.scale(g, f)
    dopt.step(dev.params, grads)
    rates = np.array([ops.total(lt.v) / lt.v.size for lt in tr.layers])
    return L, v, u, rates


def _write_csv(path, history):
    keys = list(history[0])
    _atomic_write(path, lambda p: _csv(p, keys, history))


def _csv(p, keys, rows):
    with open(p, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
