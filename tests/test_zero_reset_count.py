"""A zero reset of a spike count (M12, ``LIFConfig(reset="zero", max_spikes=M or
None, detach_reset=True)``; derivations/variants.md): sinabs' ``MembraneReset``
with ``MultiSpike`` / ``MaxSpike``.

The reset acts where the neuron fired, ``h_t = min(v_t, 1)``; the output is the
count.  Tests: a worked example; the validation; ``lifgrad check``'s rows of
the variants (finite differences with the zero surrogate, the closed forms,
the kernels against the reference); the CPU kernels bit for bit and the CUDA
kernels (simulator) against the reference; sinabs' layers agree, and the map
with one spike per step does not.
"""
import numpy as np
import pytest

from lifgrad import check as ck
from lifgrad.config import LIFConfig, LIFParams
from lifgrad.functional import lif_backward, lif_forward

VARIANTS = ("zero-reset-count", "zero-reset-count-recurrent")


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_worked_example(backend):
    """alpha 0.5, theta 1, u_reset 0.25, I = (2.6, 0.5): u_1 = 2.6 fires v_1 = 2
    spikes; the reset reads h_1 = 1, so u_2 = 0.5 (0 * 2.6 + 1 * 0.25) + 0.5 =
    0.625 (reading the count, 0.5 (-2.6 + 0.5) + 0.5 = -0.55).  For L = u_2:
    dL/du_reset = alpha h_1 = 0.5, dL/dI_1 = alpha (1 - h_1) = 0 (the zero
    surrogate; the reset is detached), dL/dI_2 = 1, dL/dalpha = 0.25."""
    p = LIFParams(alpha=0.5, theta=1.0, u_reset=0.25)
    cfg = LIFConfig(reset="zero", detach_reset=True, max_spikes=None, surrogate="zero",
                    backend=backend)
    v, tr = lif_forward(np.array([2.6, 0.5]).reshape(2, 1, 1), p, cfg)
    assert v[:, 0, 0].tolist() == [2.0, 0.0]
    assert tr.u[1, 0, 0] == 0.625
    du = np.zeros((2, 1, 1))
    du[1] = 1.0
    g = lif_backward(tr, p, cfg, du=du)
    assert float(g.u_reset) == 0.5 and float(g.alpha) == 0.25
    assert g.I[:, 0, 0].tolist() == [0.0, 1.0]


def test_validation():
    with pytest.raises(ValueError, match="detach_reset=True"):
        LIFConfig(reset="zero", max_spikes=3)
    assert LIFConfig(reset="zero", max_spikes=None, detach_reset=True).multi_spike


def test_check_rows_pass():
    rows = ck.run_suite(quick=True, models=list(VARIANTS))
    zero = [r for r in rows if "reset=zero" in r.case]
    assert zero and all(r.passed for r in rows), [r for r in rows if not r.passed][:3]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cpu_kernels_match_reference_bit_for_bit(variant, dtype):
    c = ck.model_config(variant)
    errs = ck.kernel_vs_reference(c, dtype=dtype, u_bias=0.3)
    assert max(errs.values()) == 0, errs


@pytest.mark.parametrize("variant", VARIANTS)
def test_cuda_kernels_match_reference(variant):
    from lifgrad.backends import available
    if not available():
        pytest.skip("no CUDA device and no CUDA simulator")
    c = ck.model_config(variant)
    for dtype in ("float64", "float32"):
        errs = ck.kernel_vs_reference(c, dtype=dtype, T=6, B=2, N=7, backend="cuda")
        assert max(errs.values()) <= ck.TOL_KERNEL[dtype], (dtype, errs)


def test_counts_reach_the_reset():
    """The check problem of the variant holds counts above 1 where the reset acts."""
    rng = np.random.default_rng(1)
    cfg = ck.model_config("zero-reset-count")
    I, p, _, _ = ck._layer_problem(rng, 12, 2, 5, False, cfg)
    v, _ = lif_forward(I, LIFParams(alpha=p["alpha"], theta=p["theta"], u_reset=p["u_reset"]),
                       cfg, u0=p["u0"])
    assert np.mean(v > 1) > 0.05


def test_sinabs_membrane_reset_with_counts_agrees():
    pytest.importorskip("sinabs")
    from lifgrad.verify import sinabs as sn
    AD = sn.ADAPTER
    for neuron, variant in (("LIF", "MultiSpike MembraneReset"),
                            ("LIF", "MaxSpike(3) MembraneReset tau_syn min_v_mem"),
                            ("IAF", "MaxSpike(2) MembraneReset"),
                            ("ALIF", "MultiSpike MembraneReset")):
        sur = sn.ALIF_SURROGATE if neuron == "ALIF" else sn.DEFAULT_SURROGATE
        b = AD.build(AD.case(neuron, variant, sur))
        spk, _ = AD.peer_forward(b.module, b.I)
        assert np.mean(spk > 1) > 0.05, variant
        m = AD.layer_map(b.module)
        assert m.config.reset == "zero" and m.config.multi_spike
        rep = AD.check(b, m)
        assert rep.status == "agrees" and rep.worst < 1e-10, (variant, rep.rows)
        one = AD.check(b, m._replace(config=m.config.replace(max_spikes=1)))
        assert one.status == "disagrees", variant
