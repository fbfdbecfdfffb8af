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


def test_no_import_cycle_between_lifgrad_modules():
    """Every ``from .x import`` / ``import lifgrad.x`` (at any depth of a
    module, lazy ones included) forms an acyclic graph."""
    import ast
    import pathlib
    root = pathlib.Path(__file__).resolve().parents[1] / "lifgrad"
    mods = {}
    for f in root.rglob("*.py"):
        parts = f.with_suffix("").relative_to(root.parent).parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = f
    graph = {}
    for m, f in mods.items():
        pkg = m.split(".") if f.name == "__init__.py" else m.split(".")[:-1]
        deps = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = ".".join(pkg[:len(pkg) - node.level + 1] + ([node.module] if node.module
                                                                  else []))
                for a in node.names:
                    deps.add(f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("lifgrad")}
        graph[m] = {d for d in deps if d in mods and d != m and d != "lifgrad"}
    state = {}

    def visit(m, path):
        state[m] = "open"
        for d in graph[m]:
            assert state.get(d) != "open", " -> ".join(path + [m, d])
            if d not in state:
                visit(d, path + [m])
        state[m] = "done"
    for m in graph:
        if m not in state:
            visit(m, [])
