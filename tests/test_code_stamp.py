"""Outputs name the code that made them (``pcweak.code_stamp``): a resumed job redoes a file
another reader, simulator or labeller made, though pcweak's version is the same."""
import json
import subprocess
import sys

import numpy as np

import pcweak
from pcweak import code_stamp as stamps
from pcweak.cli import main

# imported by the work but deciding nothing a file holds: the package's lazy API, the
# exception types, Open3D's import door and this module
NOT_DECIDING = {"pcweak", "pcweak.errors", "pcweak.open3d_lib", "pcweak.code_stamp"}

# reads an indoor room and a LiDAR frame, simulates every kind of weak label the labellers
# take, labels with every labeller; prints the pcweak modules loaded after each step
_WORK = """
import json, sys
def loaded():
    return sorted(m for m in sys.modules if m.startswith("pcweak."))
from pcweak.data.address import load_scene
room, lidar = load_scene("synthetic:0"), load_scene("synthetic-lidar:0")
read = loaded()
from pcweak import weak
w = {"points": weak.points(room, count=50), "boxes": weak.boxes(room), "masks2d": weak.masks2d(room),
     "clicks": weak.clicks(lidar), "clusters": weak.clusters(lidar), "boxes2d": weak.boxes2d(lidar)}
simulated = loaded()
import pcweak, warnings
warnings.simplefilter("ignore")
for method, scene, kind in [("propagate", room, "points"), ("nearest", room, "points"), ("gp-boxes", room, "boxes"),
                            ("smallest-box", room, "boxes"), ("lift-masks", room, "masks2d"),
                            ("click-boxes", lidar, "clicks"), ("cluster-boxes", lidar, "clusters"),
                            ("boxes2d-frustum", lidar, "boxes2d")]:
    pcweak.label(scene, w[kind], method)
print(json.dumps({"read": read, "simulated": simulated, "labelled": loaded()}))
"""


def _covers(group: tuple[str, ...], module: str) -> bool:
    """Whether ``code_stamp(group)`` hashes ``module``'s file: named itself, or a module of a
    package the group names (one folder deep, as ``code_stamp`` reads it)."""
    return module in group or module.rsplit(".", 1)[0] in group


def test_each_group_covers_the_modules_its_work_imports():
    """A module that the reading, simulating or labelling imports but its group misses would let
    a resumed job keep a file made before that module changed."""
    out = subprocess.run([sys.executable, "-c", _WORK], capture_output=True, text=True, timeout=600, check=True).stdout
    loaded = json.loads(out.strip().splitlines()[-1])
    for step, group in (("read", stamps.READER_MODULES), ("simulated", stamps.WEAK_MODULES),
                        ("labelled", stamps.LABELLER_MODULES)):
        missed = [m for m in loaded[step] if m not in NOT_DECIDING and not _covers(group, m)]
        assert not missed, f"{step}: imported but not stamped: {missed}"
    assert len(loaded["labelled"]) > len(loaded["read"]) + 10  # the labellers were really run


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
