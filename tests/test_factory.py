"""lifgrad.factory: the MODULE:FACTORY loader shared by `lifgrad verify` and
`lifgrad diagnose`."""
import sys

import pytest

from lifgrad.factory import call_factory


def test_loads_a_file_and_leaves_sys_path(tmp_path):
    (tmp_path / "helper_mod.py").write_text("VALUE = 41\n")
    f = tmp_path / "user_model.py"
    f.write_text("import helper_mod\n\ndef make():\n    return helper_mod.VALUE + 1\n")
    before = list(sys.path)
    assert call_factory(f"{f}:make") == 42
    assert sys.path == before


def test_loads_an_importable_module():
    assert call_factory("collections:OrderedDict") == {}


@pytest.mark.parametrize("target,err,word", [
    ("no_colon", ValueError, "MODULE:FACTORY"),
    ("/nonexistent/dir/m.py:make", FileNotFoundError, "no file"),
])
def test_bad_targets(target, err, word):
    with pytest.raises(err, match=word):
        call_factory(target)


def test_missing_function(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("X = 1\n")
    with pytest.raises(ValueError, match="no function 'make'"):
        call_factory(f"{f}:make")
    with pytest.raises(ValueError, match="no function 'X'"):
        call_factory(f"{f}:X")
