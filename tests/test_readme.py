"""The README's Python examples run as written, in order."""
import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks
    ns = {}                       # one namespace: the blocks continue one tour
    for code in blocks:
        if "import torch" in code:
            pytest.importorskip("torch", reason="the peers are installed by `make test`")
        exec(compile(code, str(README), "exec"), ns)
