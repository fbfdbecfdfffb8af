"""Every run-time tuning constant of lifgrad, with the measurement behind it.

The modules that use one import it from here (and keep it as a module
attribute, so a test or a user can still override ``functional.EVENT_DENSITY``
and the like where it is read).  Sizes compiled into kernels are not here:
the CPU kernels' ``BLOCK``, ``EVENT_ROWS``, ``EVENT_BLOCK`` are in
``kernels/constants.py`` (part of the ahead-of-time build's source hash), the
CUDA launch sizes in ``kernels/cuda.py`` and ``kernels/cuda_ops.py`` (Numba's
disk cache keys on the kernel's own file).
"""

# -- time chunks (functional.time_chunk) -------------------------------------------
# Every product over time, the backward's segments and the checkpoint length
# are counted in chunks of about CHUNK_ROWS rows (steps x batch), at most
# TIME_CHUNK steps: every path adds the same terms in the same order (CK3) and
# the backward holds one chunk of errors per layer at a time.
TIME_CHUNK = 64
CHUNK_ROWS = 2048

# -- event-driven products (functional.use_events) -------------------------------
# The density up to which a sparse operand's products use the event kernels is
# measured per installation (kernels/calibrate.py); EVENT_DENSITY_DEFAULT holds
# without a measurement.  At 10 output columns the event kernels lost on every
# machine measured, hence EVENT_MIN_COLS; a float operand's density is counted
# on every EVENT_SAMPLE-th row (a tenth of the product's memory traffic).
EVENT_DENSITY_DEFAULT = 0.1
EVENT_MIN_COLS = 64
EVENT_SAMPLE = 8

# -- matrix products in pieces (products.py, parallel.row_pieces) ---------------
# Pieces of PIECE_ROWS rows, fixed by the shape (bitwise the same on any number
# of threads); BLAS packs the other operand once per piece, about 4 % of a
# piece's time at 256 x 784 x 1000.  Bigger pieces were tried for the n=4096
# layer: with products made per time chunk of 2048 rows they left a thread
# idle (ON4096 2230 -> 2980 ms per step).  A uint8 operand is cast to float
# SPIKE_ROWS rows of the reduction at a time.
PIECE_ROWS = 256
SPIKE_ROWS = 512

# -- work on the calling thread only ------------------------------------------------
# Below these sizes handing a task to a worker costs more than it saves:
# a scan (steps x batch x neurons, kernels/cpu.py), an Adam update
# (kernels/cpu_ops.py); parameters smaller than FUSED_MIN take NumPy's update
# instead of the fused kernel (optim.py).
PARALLEL_MIN = 1 << 18
ADAM_MIN = 1 << 16
FUSED_MIN = 1 << 14

# -- workspace (workspace.py) ----------------------------------------------------------
# Arrays smaller than this are cheap to allocate and are not pooled.
MIN_BYTES = 1 << 16
