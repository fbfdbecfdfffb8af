"""lifgrad._malloc: the allocator settings that keep step-sized buffers mapped."""
import os
import subprocess
import sys

import pytest

CODE = "import lifgrad, lifgrad._malloc as m; print(m.applied)"


def _run(env_extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("LIFGRAD_MALLOC_TUNE", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")}
    env.update(env_extra)
    out = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True,
                         check=True)
    return out.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_import_tunes_glibc_malloc_unless_opted_out():
    assert _run({}) == "True"
    assert _run({"LIFGRAD_MALLOC_TUNE": "0"}) == "False"
    assert _run({"MALLOC_TRIM_THRESHOLD_": "131072"}) == "False"   # the user's setting wins
