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


def _free_names(code):
    """Names a block reads but neither defines nor imports (builtins aside)."""
    import builtins
    import symtable
    top = symtable.symtable(code, "block", "exec")
    defined = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported()}
    used = set()

    def walk(t):
        for s in t.get_symbols():
            if s.is_referenced() and (t is top or s.is_global()):
                used.add(s.get_name())
        for c in t.get_children():
            walk(c)
    walk(top)
    return sorted(n for n in used - defined if not hasattr(builtins, n))


def test_readme_blocks_that_start_a_section_stand_alone():
    """A block that begins with an import is where a reader starts: it defines
    everything it uses (numpy included), so it runs when copied on its own."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    starts = [b for b in blocks if b.lstrip().startswith(("import ", "from "))]
    assert len(starts) >= 3
    for code in starts:
        assert _free_names(code) == [], code.splitlines()[0]
