"""Outputs name the code that made them (``pcweak.code_stamp``): a resumed job redoes a file
another reader, simulator or labeller made, though pcweak's version is the same."""
import ast
import json
from pathlib import Path

import numpy as np

import pcweak
from pcweak import code_stamp as stamps
from pcweak.cli import main

# imported by the work but deciding nothing a file holds: the package's lazy API, the
# exception types, Open3D's import door and this module
NOT_DECIDING = {"pcweak", "pcweak.errors", "pcweak.open3d_lib", "pcweak.code_stamp"}

# wiring that a group's modules import for what is not the file's content: file identities
# (weak_jobs and masks take scene_identity and file_sha256 from label_jobs, which also runs
# labellers) and the command line's argument helpers; followed only where a group names them
WIRING = {"pcweak.label_jobs", "pcweak.cli.common"}
PCWEAK = Path(pcweak.__file__).parent


def _is_module(name: str) -> bool:
    path = PCWEAK.joinpath(*name.split(".")[1:])
    return path.is_dir() or path.with_suffix(".py").is_file()


def _pcweak_imports(module: str, path: Path) -> set[str]:
    """The pcweak modules ``module``'s source imports anywhere in it (functions' bodies too):
    relative and absolute ``from`` imports, with a submodule named among the imported names."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = ".".join(parts[:len(parts) - node.level + 1]) if node.level else ""
            target = ".".join(p for p in (base, node.module) if p)
            if target.split(".")[0] != "pcweak":
                continue
            found.add(target)
            found |= {f"{target}.{a.name}" for a in node.names if _is_module(f"{target}.{a.name}")}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "pcweak"}
    return found


def _covers(group: tuple[str, ...], module: str) -> bool:
    """Whether ``code_stamp(group)`` hashes ``module``'s file: named itself, or a module of a
    package the group names (one folder deep, as ``code_stamp`` reads it)."""
    return module in group or module.rsplit(".", 1)[0] in group


def test_each_group_holds_every_module_its_modules_import():
    """Every pcweak module reached by imports from a group's modules (followed through those it
    reaches in turn) is in the group: one it missed would let a resumed job keep a file made
    before that module changed. Imports inside functions count (the readers and labellers load
    theirs lazily); the package's lazy API is not followed."""
    groups = {name: getattr(stamps, name) for name in dir(stamps) if name.endswith("_MODULES")}
    assert set(groups) == {"READER_MODULES", "WEAK_MODULES", "LABELLER_MODULES", "MASK_MODULES", "MODEL_MODULES"}
    for name, group in groups.items():
        todo = {m: f for g in group for m, f in stamps.source_files(g)}  # what code_stamp(group) hashes
        seen, missed = set(todo), set()
        while todo:
            module, path = todo.popitem()
            for target in _pcweak_imports(module, path) - seen:
                seen.add(target)
                if _covers(group, target) or target in NOT_DECIDING | WIRING:
                    continue
                missed.add(target)
                todo.update((m, f) for m, f in stamps.source_files(target) if m == target)
        assert not missed, f"{name}: imported but not stamped: {sorted(missed)}"


def test_code_stamp_follows_every_module_of_a_package(tmp_path, monkeypatch):
    """A package's stamp covers each module file in it (a reader fixed in any of pcweak.data's
    modules renews the parsed copies), without importing them."""
    pkg = tmp_path / "stamped_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "reader.py").write_text("raise RuntimeError('imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    first = stamps.code_stamp(("stamped_pkg",))
    stamps.code_stamp.cache_clear()
    assert stamps.code_stamp(("stamped_pkg",)) == first
    (pkg / "reader.py").write_text("raise RuntimeError('imported, fixed')\n")
    stamps.code_stamp.cache_clear()
    assert stamps.code_stamp(("stamped_pkg",)) != first
    stamps.code_stamp.cache_clear()


def test_resumed_jobs_redo_what_other_code_made(tmp_path, room, capsys, monkeypatch):
    """``pcweak simulate`` and ``pcweak label`` keep their files on a rerun by the same code, and
    make them again once the code of what made them has changed (a fix within one version)."""
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    for name in ("a", "b"):
        pcweak.Scene.from_arrays({**room.to_arrays(), "name": np.array(name)}).save(scenes / f"{name}.npz")
    sim = ["simulate", str(scenes), "--weak", "points", "--count", "40", "-o", str(tmp_path / "weak")]
    lab = ["label", str(scenes), "--weak", str(tmp_path / "weak"), "-o", str(tmp_path / "pseudo"),
           "--param", "refine.method=none"]

    def report(argv: list[str]) -> dict:
        assert main(argv) == 0
        return json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    assert report(sim)["simulated"] == 2 and report(lab)["labelled"] == 2
    assert report(sim)["skipped_existing"] == 2 and report(lab)["skipped_existing"] == 2
    made = {name: pcweak.PseudoLabels.load(tmp_path / "pseudo" / f"{name}.npz") for name in ("a", "b")}
    assert all(json.loads(p.fingerprint)["code"] == stamps.code_stamp(stamps.LABELLER_MODULES) for p in made.values())
    real = stamps.code_stamp
    # a labeller edited: the weak files stay, the pseudo-labels are made again
    monkeypatch.setattr(stamps, "code_stamp", lambda modules: real(modules) if modules == stamps.WEAK_MODULES else "edited")
    assert report(sim)["skipped_existing"] == 2
    assert report(lab)["redone_other_inputs"] == 2
    # a simulator edited: both
    monkeypatch.setattr(stamps, "code_stamp", lambda modules: "edited again")
    assert report(sim)["redone_other_inputs"] == 2 and report(lab)["redone_other_inputs"] == 2
