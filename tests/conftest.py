import os
import shutil

# The CUDA tests run on Numba's CUDA simulator unless a GPU is present; the
# variable is read when numba is first imported, so it is set before anything.
if "NUMBA_ENABLE_CUDASIM" not in os.environ and shutil.which("nvidia-smi") is None:
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
