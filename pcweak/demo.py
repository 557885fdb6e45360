"""``pcweak demo``: the main job on the built-in SYNTHETIC scene (no dataset needed).

Today: generate a procedural room, simulate every kind of weak label, round-trip the files,
turn 200 labelled points into dense pseudo-labels (propagation vs nearest seed) and print a
summary. It grows as labellers, training and viewing land.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from .data.synthetic_indoor import synthetic_room
from .scene import Scene, WeakLabels
from .weak import simulate


def run_demo(out_dir: Path = Path("demo_output"), seed: int = 0) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    scene = synthetic_room(seed)
    scene_path = scene.save(out_dir / f"{scene.name}.npz")
    print(f"[demo] synthetic room (procedural, not a real scan): {scene.num_points} points, "
          f"{len(scene.frames)} RGB-D frames -> {scene_path}")
    report = {"scene": Scene.load(scene_path).summary()}
    report["scene"].pop("boxes", None)
    weak_runs = {"points200": ("points", {"count": 200}), "clicks": ("clicks", {}), "boxes": ("boxes", {}),
                 "masks2d": ("masks2d", {"erosion": 1}), "boxes2d": ("boxes2d", {}), "tags": ("tags", {})}
    report["weak"] = {}
    for name, (kind, kw) in weak_runs.items():
        w = simulate(scene, kind, seed=seed, **kw)
        path = w.save(out_dir / f"weak_{name}.npz")
        w2 = WeakLabels.load(path)
        w2.check_against(scene)
        report["weak"][name] = {"file": str(path), "kinds": w2.kinds(),
                                **{k: int(len(v)) for k, v in (("points", w2.point_index), ("boxes", w2.box),
                                                               ("boxes2d", w2.box2d), ("mask_frames", w2.mask2d)) if v is not None}}
        print(f"[demo] weak labels {name:9s} -> {path}")
    # dense pseudo-labels from the 200 labelled points, against the nearest-seed baseline
    from .evaluation import evaluate
    from .pseudo.labelling import label_scene
    w = WeakLabels.load(out_dir / "weak_points200.npz")
    report["pseudo_labels"] = {}
    for method in ("nearest", "propagate"):
        pseudo = label_scene(scene, w, method)
        path = pseudo.save(out_dir / f"pseudo_{method}.npz")
        ev = evaluate(scene, pseudo)
        report["pseudo_labels"][method] = {"file": str(path), "miou": round(ev["miou"], 4), "coverage": round(ev["coverage"], 4),
                                           "ece": round(ev["ece"], 4)}
        print(f"[demo] pseudo-labels ({method:9s}) from 200 points: mIoU {ev['miou']:.3f} -> {path}")
    try:
        from .viz.render import render_png
        png = render_png(scene, out_dir / "pseudo_labels.png", label_scene(scene, w, "propagate"), w, views=2)
        report["png"] = str(png)
        print(f"[demo] look at the pseudo-labels (GT | pseudo | error, 2 views): {png}")
    except RuntimeError as e:  # no renderer on this machine
        report["png"] = f"not rendered: {e}"
        print(f"[demo] PNG not rendered: {e}")
    report["seconds"] = round(time.time() - t0, 2)
    print(json.dumps(report, indent=2))
    return report
