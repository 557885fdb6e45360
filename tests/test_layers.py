"""Imports go one way (docs/architecture.md): readers -> weak -> pseudo -> train -> tasks ->
metrics/viz. The walk reads every module's source (function-local imports included), so a
back-reach fails here before it can grow into a cycle."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "pcweak"

# package (or module) -> packages/modules it must never import, with the reason in the name
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "pcweak.data": ("pcweak.pseudo", "pcweak.train", "pcweak.tasks", "pcweak.bench", "pcweak.cli", "pcweak.viz"),
    "pcweak.segment": ("pcweak.pseudo", "pcweak.train", "pcweak.tasks", "pcweak.bench", "pcweak.cli", "pcweak.data"),
    "pcweak.weak": ("pcweak.pseudo", "pcweak.train", "pcweak.tasks", "pcweak.bench", "pcweak.cli"),
    "pcweak.pseudo": ("pcweak.data.address", "pcweak.train", "pcweak.tasks", "pcweak.bench", "pcweak.cli", "pcweak.viz"),
    "pcweak.tasks": ("pcweak.train", "pcweak.data", "pcweak.pseudo", "pcweak.bench", "pcweak.cli"),
    "pcweak.metrics": ("pcweak.pseudo", "pcweak.train", "pcweak.tasks", "pcweak.data", "pcweak.bench", "pcweak.cli"),
    "pcweak.models": ("pcweak.data", "pcweak.pseudo", "pcweak.train", "pcweak.tasks", "pcweak.bench", "pcweak.cli"),
    "pcweak.ops": ("pcweak.data", "pcweak.pseudo", "pcweak.train", "pcweak.tasks", "pcweak.bench", "pcweak.cli"),
    "pcweak.viz": ("pcweak.pseudo", "pcweak.train", "pcweak.tasks", "pcweak.bench", "pcweak.cli"),
    "pcweak.train": ("pcweak.bench", "pcweak.cli"),
    # the data model and shared helpers sit below every layer
    "pcweak.scene": ("pcweak.data", "pcweak.segment", "pcweak.weak", "pcweak.pseudo", "pcweak.train", "pcweak.tasks"),
    "pcweak.geometry": ("pcweak.data", "pcweak.segment", "pcweak.weak", "pcweak.pseudo", "pcweak.train", "pcweak.tasks"),
    "pcweak.kitti_objects": ("pcweak.data", "pcweak.segment", "pcweak.weak", "pcweak.pseudo", "pcweak.train", "pcweak.tasks",
                             "pcweak.metrics"),
    "pcweak.classes": ("pcweak.data", "pcweak.segment", "pcweak.weak", "pcweak.pseudo", "pcweak.train", "pcweak.tasks"),
}


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for every import statement in ``path``; ``from . import x``
    yields the submodule ``pkg.x`` as well as ``pkg``."""
    name = module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((node.lineno, mod))
            out += [(node.lineno, f"{mod}.{a.name}") for a in node.names]
    return out


def violations() -> list[str]:
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        name = module_name(path)
        rules = [f for owner, f in FORBIDDEN.items() if name == owner or name.startswith(owner + ".")]
        for line, mod in imports_of(path):
            for forbidden in (x for r in rules for x in r):
                if mod == forbidden or mod.startswith(forbidden + "."):
                    bad.append(f"{path.relative_to(ROOT.parent)}:{line} imports {mod} ({name} may not import {forbidden})")
    return sorted(set(bad))


def test_imports_go_one_way():
    assert violations() == []


def test_the_walk_sees_a_back_reach(tmp_path):
    """The checker itself: a reader that imports a labeller (even inside a function) is caught."""
    fake = tmp_path / "pcweak"
    (fake / "data").mkdir(parents=True)
    (fake / "data" / "reader.py").write_text("def f():\n    from ..pseudo.propagate import propagate\n")
    (fake / "tasks").mkdir()
    (fake / "tasks" / "t.py").write_text("from ..train import datamodule\n")
    global ROOT
    saved, ROOT = ROOT, fake
    try:
        found = violations()
    finally:
        ROOT = saved
    assert any("data/reader.py:2 imports pcweak.pseudo.propagate" in v for v in found)
    assert any("tasks/t.py:1 imports pcweak.train" in v for v in found)

