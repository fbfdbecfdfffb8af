"""Where a configuration's kernels run: the backend lookup and whether a GPU
is there.  Below :mod:`lifgrad.functional` (which asks it for the module of
a ``LIFConfig.backend``) and :mod:`lifgrad.device` (device-resident
training, which re-exports :func:`available` and :func:`require`), so that
neither imports the other for it.
"""
from __future__ import annotations

__all__ = ["available", "require", "kernels_for"]


def available():
    """Whether a CUDA device, or the CUDA simulator, can run the kernels."""
    try:
        from numba import config, cuda
        return bool(config.ENABLE_CUDASIM) or bool(cuda.is_available())
    except Exception:      # noqa: BLE001 - no driver, no toolkit: simply not available
        return False


def require():
    """Raise a clear error when no CUDA device (or simulator) is there."""
    if not available():
        raise RuntimeError("backend='cuda': no CUDA device found. Install the driver and "
                           "`pip install lifgrad[cuda]` (numba-cuda), or set "
                           "NUMBA_ENABLE_CUDASIM=1 before importing numba to run the CUDA "
                           "simulator (slow, for tests)")


def kernels_for(config):
    """The module of cell kernels of ``config.backend``: ``lifgrad.reference``
    (NumPy), ``lifgrad.kernels.cpu`` or ``lifgrad.kernels.cuda``."""
    if config.backend == "reference":
        from . import reference
        return reference
    if config.backend == "cuda":
        require()
        from .kernels import cuda
        return cuda
    from .kernels import cpu
    return cpu
