"""Compiled kernels.  ``cpu``: Numba njit twins of ``lifgrad.reference``;
``cuda``: numba-cuda twins (same names and arguments) with the device matrix
helpers; ``cuda_ops``: the small device kernels of device-resident training."""
