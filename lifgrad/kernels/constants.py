"""Sizes compiled into the CPU kernels (shared by their source and their callers;
part of the source hash of the ahead-of-time build, ``aot.py``)."""

# neurons per task of a scan.  Each time step of a task slices ~10 trace rows,
# and every slice updates the shared reference count of its array atomically
# (cores contend for it): W2's 1000-neuron backward scan took 5.2 ms with
# blocks of 512, 4.6 ms with 1024 and the step functions inlined, 6.4 ms with 256
BLOCK = 1024
EVENT_ROWS = 32     # rows per task of the event-driven product (ops_kernels.event_matmul_idx)
EVENT_BLOCK = 256   # rows per block of event_wgrad (a block of u stays in L2; offsets fit uint8)

# positions in LIFConfig.mode(), the flags every scan reads (lifgrad.reference
# names them the same way), and the codes of the forward flag
(M_RESET, M_STRICT, M_FORWARD, M_DETACH, M_SYN, M_ADAPT, M_ONE, M_NORM, M_SPIKES, M_DECAY_IN,
 M_THETA_GRAD, M_RESET_THETA, M_ADAPT_CURRENT, M_SG_LIVE, M_CLIP) = range(15)
N_MODE = 15
# M_NORM: the membrane takes (1 - alpha) s_t instead of s_t (sinabs' norm_input)   (M1)
# M_SPIKES: at most this many spikes per step, floor(u_t / theta_t); 1 is the
# Heaviside spike (A5), 0 means no maximum (sinabs MultiSpike)                     (M2)
# M_DECAY_IN: the synaptic state decays its input in the step it arrives,
# s_t = alpha_s (s_{t-1} + J_t) (sinabs tau_syn, Rockpool)                          (M3)
# M_THETA_GRAD: the spike's threshold derivative, code TG_*: -phi_t (TG_SHIFT),
# -(u_t/theta) phi_t (TG_RATIO, the count as a function of u/theta: Rockpool's
# StepPWL, (M4)), or 0 (TG_NONE, the spike function passes its threshold no
# gradient: sinabs, (M8))
# M_RESET_THETA: the subtractive reset removes gamma_t = k theta_t, k times the
# threshold the spike crossed (k = P_GAMMA's row, 1 when tied): Spyx's and
# sinabs' ALIF                                                                       (M7)
# M_ADAPT_CURRENT: the adaptation a_t is a current, u_t -= beta_a a_t, and the
# threshold stays theta (Rockpool's aLIFTorch after-hyperpolarisation)               (M9)
# M_SG_LIVE: 0, or the surrogate evaluated at the neuron's threshold theta_t
# (surrogate_threshold='live'): slot k of (p0, p1, p2, scale) is sg's value times
# theta_t (digit 1), divided by it (digit 2) or as it is (digit 0), the digits in
# base 3, slot 0 the lowest (sinabs' ALIF, Rockpool's per-neuron threshold)        (M10)
# M_CLIP: the decayed post-reset membrane is clipped from below at alpha u_min,
# u_t = max(alpha u_{t-1} - reset, alpha u_min) + c s_t + b_u, u_min in P's row
# P_UMIN (LIFConfig.u_min; sinabs' min_v_mem)                                       (M11)
FWD_HARD, FWD_SMOOTH, FWD_STOCHASTIC = range(3)      # config.FORWARDS order
# the stochastic forward whose spike probability is the surrogate phi itself, not
# its primitive G (LIFConfig(spike_probability='surrogate'), Spyx's Bernoulli)     (M13)
FWD_STOCHASTIC_PHI = 3
TG_SHIFT, TG_RATIO, TG_NONE = range(3)               # config.THETA_GRADS order
R_SUBTRACT, R_ZERO, R_NONE = range(3)                # LIFConfig.reset_code

# rows of the packed parameters P (N_P, N) and of the partial sums acc (N_ACC, B, N)
# (lifgrad.reference names them P_* and ACC_*); the last row of P and row 7 of acc
# are the membrane bias b_u, added to u_t directly (Rockpool's bias)                (M6);
# acc's last row is sum_t ubar_{t+1} v_t a_t, the reset's share of the adaptation
# when the reset removes the adaptive threshold (M7)
# P's row P_UMIN: the clip's u_min (M11), read only with M_CLIP; acc's row
# ACC_UMIN: sum of ubar_t over the clipped steps (k_t = 0), dL/du_min = alpha times it
N_P, N_ACC = 10, 10
P_UBIAS, ACC_UBIAS, ACC_RVA, P_UMIN, ACC_UMIN = 8, 7, 8, 9, 9
