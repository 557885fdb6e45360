"""``pcweak demo``: the main job on the built-in SYNTHETIC scene (no dataset needed).

Generate a procedural room, simulate every kind of weak label, round-trip the files, turn 200
labelled points into dense pseudo-labels (propagation vs nearest seed), render them to a PNG,
then train a small SparseUNet on CPU for a few minutes three ways with the same budget — (a)
200 points per scene, (b) 200 points + propagation pseudo-labels, (c) full labels. Each stage
prints a progress line; the run ends with a short table and writes everything it measured to
``<out>/report.json``.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from .data.synthetic_indoor import synthetic_room
from .params import Count, Count0, Seed, ranges_checked
from .project_files import project_folder
from .scene import Scene, WeakLabels
from .weak import simulate


DEMO_CONFIG = project_folder("configs") / "demo.yaml"
# same model, data and budget; only the supervision differs (train.runs.SUPERVISION_RUNS)
DEMO_RUNS = {"a_points200": "points", "b_points200+propagation": "points+propagate", "c_full_labels": "full"}


def train_demo(out_dir: Path, epochs: int, rooms: int | None = None) -> dict:
    """Train configs/demo.yaml three ways on CPU and return the best val mIoU of each; ``rooms``
    synthetic training rooms (None: the config's)."""
    from .train.runs import SUPERVISION_RUNS, fit_run
    results = {}
    data = ["--data.init_args.cache_dir", str(out_dir / "cache")]
    if rooms is not None:
        data += ["--data.init_args.synthetic_train", str(rooms)]
    for k, (name, setting) in enumerate(DEMO_RUNS.items(), 1):
        print(f"[demo] training {k}/{len(DEMO_RUNS)}: {name} ({epochs} epochs) ...", flush=True)
        _, r = fit_run(DEMO_CONFIG, [*data, *SUPERVISION_RUNS[setting]], out_dir / "train", name, epochs, prefix="demo")
        results[name] = {"val_miou": r["best_val_miou"], "seconds": r["seconds"], "checkpoint": r["checkpoint"]}
        print(f"[demo] trained {name:26s} best val mIoU {results[name]['val_miou']}  ({results[name]['seconds']} s)", flush=True)
    return results


def summary_table(report: dict) -> str:
    """The few lines a demo run ends with: pseudo-label quality, the training rows, the files."""
    rows = ["", "pcweak demo: synthetic room, 200 labelled points", "",
            f"{'pseudo-labels from 200 points':34s} {'mIoU':>6s}  {'coverage':>8s}"]
    for m, r in report.get("pseudo_labels", {}).items():
        rows.append(f"  {m:32s} {r['miou']:6.3f}  {r['coverage']:8.3f}")
    if report.get("training"):
        setup = report["training_setup"]  # run_demo writes it beside "training"
        e, r = setup["epochs"], setup["rooms"]
        rows += ["", f"training: {e} epoch{'s' * (e != 1)} on {r} synthetic room{'s' * (r != 1)}, "
                     f"validated on {setup['validation_rooms']}"]
        rows += ["", f"{'training (same model, data, budget)':34s} {'val mIoU':>8s}  {'time':>7s}"]
        for name, r in report["training"].items():
            v = "-" if r["val_miou"] is None else f"{r['val_miou']:.3f}"
            rows.append(f"  {name:32s} {v:>8s}  {r['seconds']:6.0f}s")
    rows += ["", f"picture: {report.get('png')}", f"report:  {report.get('report')}",
             f"total:   {report.get('seconds', 0):.0f} s", ""]
    return "\n".join(rows)


def demo_config() -> dict:
    """configs/demo.yaml as a dict (read as safe YAML: its model and data settings, the demo's
    rooms among them)."""
    import yaml
    return yaml.safe_load(DEMO_CONFIG.read_text())


@ranges_checked("demo")
def run_demo(out_dir: Path = Path("demo_output"), seed: Seed = 0,
             train_epochs: Count0 = 30, train_rooms: Count | None = None) -> dict:
    """The demo's five stages into ``out_dir``; ``train_epochs`` epochs per training run (0:
    no training), on ``train_rooms`` synthetic rooms (None: configs/demo.yaml's
    ``synthetic_train``). Returns the report written to ``out_dir/report.json``."""
    from .npzio import atomic_write_bytes
    if train_rooms is not None and not train_epochs:
        raise ValueError("demo: train_rooms is the training runs' rooms, and train_epochs 0 trains nothing")
    if train_epochs:  # before the first stage, not after four of them
        from .models.spconv_compat import require_spconv
        require_spconv()
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    steps = 4 + (1 if train_epochs else 0)
    print(f"[demo] 1/{steps} building a synthetic room ...", flush=True)
    scene = synthetic_room(seed)
    scene_path = scene.save(out_dir / f"{scene.name}.npz")
    print(f"[demo] synthetic room (procedural, not a real scan): {scene.num_points} points, "
          f"{len(scene.frames)} RGB-D frames -> {scene_path}")
    report = {"scene": Scene.load(scene_path).summary()}
    report["scene"].pop("boxes", None)
    weak_runs = {"points200": ("points", {"count": 200}), "clicks": ("clicks", {}), "boxes": ("boxes", {}),
                 "masks2d": ("masks2d", {"erosion": 1}), "boxes2d": ("boxes2d", {}), "tags": ("tags", {})}
    report["weak"] = {}
    print(f"[demo] 2/{steps} simulating every kind of weak label ...", flush=True)
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
    from .metrics.evaluate import evaluate
    from .pseudo.registry import label
    w = WeakLabels.load(out_dir / "weak_points200.npz")
    report["pseudo_labels"] = {}
    pseudo_by_method = {}
    print(f"[demo] 3/{steps} dense pseudo-labels from 200 points ...", flush=True)
    for method in ("nearest", "propagate"):
        pseudo = pseudo_by_method[method] = label(scene, w, method)
        path = pseudo.save(out_dir / f"pseudo_{method}.npz")
        ev = evaluate(scene, pseudo)
        report["pseudo_labels"][method] = {"file": str(path), "miou": round(ev["miou"], 4), "coverage": round(ev["coverage"], 4),
                                           "ece": round(ev["ece"], 4)}
        print(f"[demo] pseudo-labels ({method:9s}) from 200 points: mIoU {ev['miou']:.3f} -> {path}")
    print(f"[demo] 4/{steps} rendering the pseudo-labels ...", flush=True)
    try:
        from .viz.render import render_png
        png = render_png(scene, out_dir / "pseudo_labels.png", pseudo_by_method["propagate"], w, views=2)
        report["png"] = str(png)
        print(f"[demo] look at the pseudo-labels (GT | pseudo | error, 2 views): {png}")
    except RuntimeError as e:  # no renderer on this machine
        report["png"] = f"not rendered: {e}"
        print(f"[demo] PNG not rendered: {e}")
    if train_epochs:
        print(f"[demo] 5/{steps} training a small SparseUNet three ways on CPU ...", flush=True)
        data = demo_config()["data"]["init_args"]
        report["training_setup"] = {"epochs": train_epochs, "validation_rooms": data["synthetic_val"],
                                    "rooms": data["synthetic_train"] if train_rooms is None else train_rooms}
        report["training"] = train_demo(out_dir, train_epochs, train_rooms)
    report["seconds"] = round(time.time() - t0, 2)
    report["report"] = str(out_dir / "report.json")
    atomic_write_bytes(out_dir / "report.json", (json.dumps(report, indent=2) + "\n").encode())
    print(summary_table(report))
    return report
