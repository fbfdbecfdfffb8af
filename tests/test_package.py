"""The package namespace: submodules reachable from ``import lifgrad as lg``."""
import subprocess
import sys

import pytest


def test_submodules_are_attributes_imported_on_first_use():
    code = ("import sys, lifgrad as lg\n"
            "before = {m for m in ('lifgrad.losses', 'lifgrad.optim', 'lifgrad.network', "
            "'lifgrad.data', 'lifgrad.encode') if m in sys.modules}\n"
            "assert lg.losses.ce_membrane and lg.optim.Adam and lg.network.Sequential\n"
            "assert lg.encode and lg.data and lg.train and lg.verify\n"
            "print(sorted(before))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"          # import lifgrad itself stays light


def test_unknown_attribute_raises():
    import lifgrad
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        lifgrad.nope
    assert "losses" in dir(lifgrad)
