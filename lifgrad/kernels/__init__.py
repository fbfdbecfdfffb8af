"""Compiled kernels.  ``cpu``: Numba njit twins of ``lifgrad.reference``."""
