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
 M_THETA_RATIO) = range(11)
N_MODE = 11
# M_NORM: the membrane takes (1 - alpha) s_t instead of s_t (sinabs' norm_input)   (M1)
# M_SPIKES: at most this many spikes per step, floor(u_t / theta_t); 1 is the
# Heaviside spike (A5), 0 means no maximum (sinabs MultiSpike)                     (M2)
# M_DECAY_IN: the synaptic state decays its input in the step it arrives,
# s_t = alpha_s (s_{t-1} + J_t) (sinabs tau_syn, Rockpool)                          (M3)
# M_THETA_RATIO: the spike's threshold derivative is -(u_t/theta) phi_t instead of
# -phi_t (the count as a function of u/theta: Rockpool's StepPWL)                   (M4)
FWD_HARD, FWD_SMOOTH, FWD_STOCHASTIC = range(3)      # config.FORWARDS order
R_SUBTRACT, R_ZERO, R_NONE = range(3)                # LIFConfig.reset_code

# rows of the packed parameters P (N_P, N) and of the partial sums acc (N_ACC, B, N)
# (lifgrad.reference names them P_* and ACC_*); the last row of each is the
# membrane bias b_u, added to u_t directly (Rockpool's bias)                        (M6)
N_P, N_ACC = 9, 8
P_UBIAS, ACC_UBIAS = 8, 7
