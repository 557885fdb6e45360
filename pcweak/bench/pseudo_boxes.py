"""``pcweak bench pseudo-boxes``: how good the pseudo boxes of each weak mode are, before any
detector sees them.

Synthetic KITTI-like frames: the first ``boxed`` are the fully boxed frames that teach the object
sizes (``learn_box_geometry``), the next ``frames`` are labelled and scored. The real shared KITTI
frames (``shared``, default ../shared/data) are scored leave-one-frame-out: the other frames are
the boxed ones. Rows: ``click-boxes`` (one click per object), ``cluster-boxes`` (each object's
points given: the ceiling of click-boxes, whose only other loss is finding the points),
``boxes2d-frustum`` (image boxes), ``boxes2d-frustum-2d-only`` (the same with no 3D box anywhere:
the class footprints learned from the image boxes of every frame, boxed ones included, by
``learn_sizes_from_image_boxes``), and the baseline ``click_mean_box`` (a box of the class's
learned size centred on the click, heading 0). Per class: mean BEV / 3D IoU of each GT box with
its best pseudo box of its class, recall at BEV IoU 0.7 (Car) or 0.5 (Pedestrian, Cyclist), and
for cars with >= 50 LiDAR points the share at BEV IoU >= 0.7.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from . import machine, shared_root
from ..params import Count, Seed, ranges_checked

METHODS = ("click-boxes", "cluster-boxes", "boxes2d-frustum", "boxes2d-frustum-2d-only", "click_mean_box")
THRESHOLD = {"Car": 0.7, "Pedestrian": 0.5, "Cyclist": 0.5}


def _real_frames(root: Path | None) -> list[str]:
    split = root / "kitti" / "training" if root else None
    if split is None or not (split / "velodyne").is_dir():
        return []
    return [f"kitti:{split / f.stem}" for f in sorted((split / "velodyne").glob("*.bin"))]


def _mean_box(scene, weak, geometry) -> tuple[np.ndarray, np.ndarray]:
    boxes, sem = [], []
    for i, c in zip(weak.point_index, weak.point_semantic):
        L, W, H = geometry.size(scene.classes[c])
        x, y, z = scene.coord[i]
        boxes.append([x, y, z, L, W, H, 0.0])
        sem.append(c)
    return np.array(boxes, np.float64).reshape(-1, 7), np.array(sem, np.int64)


def _score(scene, boxes: np.ndarray, sem: np.ndarray) -> dict[str, list[tuple[float, float, int]]]:
    """Per class: (best BEV IoU, best 3D IoU, LiDAR points) of each GT box."""
    from ..geometry import points_in_boxes
    from ..metrics.boxes import best_match_ious
    keep = scene.box_labels >= 0
    gt, gl = scene.boxes[keep].astype(np.float64), scene.box_labels[keep]
    npts = points_in_boxes(scene.coord, gt).sum(0) if len(gt) else np.zeros(0, np.int64)
    iou3, bev = best_match_ious(boxes, gt, gl, sem)
    out: dict[str, list[tuple[float, float, int]]] = {}
    for k in range(len(gt)):
        out.setdefault(scene.classes[gl[k]], []).append((float(bev[k]), float(iou3[k]), int(npts[k])))
    return out


def _label_all(scene, geometry, geometry_2d) -> dict[str, Any]:
    """Every method's scores on ``scene``: sizes from the boxed frames (``geometry``) or, for the
    2D-only row, from image boxes (``geometry_2d``)."""
    from .. import weak
    from ..pseudo.registry import label
    clicks, image_boxes = weak.clicks(scene, seed=0), weak.boxes2d(scene)
    out: dict[str, Any] = {}
    for row, method, w, geo in (("click-boxes", "click-boxes", clicks, geometry), ("cluster-boxes", "cluster-boxes", weak.clusters(scene), geometry),
                                ("boxes2d-frustum", "boxes2d-frustum", image_boxes, geometry),
                                ("boxes2d-frustum-2d-only", "boxes2d-frustum", image_boxes, geometry_2d)):
        t = time.perf_counter()
        p = label(scene, w, method, geometry=geo.to_dict())
        out[row] = (_score(scene, p.box.astype(np.float64), p.box_semantic), time.perf_counter() - t)
    out["click_mean_box"] = (_score(scene, *_mean_box(scene, clicks, geometry)), 0.0)
    return out


def _summarise(scores: list[dict[str, list[tuple[float, float, int]]]], seconds: list[float]) -> dict[str, Any]:
    per: dict[str, list[tuple[float, float, int]]] = {}
    for s in scores:
        for c, v in s.items():
            per.setdefault(c, []).extend(v)
    out: dict[str, Any] = {"seconds_per_frame": round(float(np.mean(seconds)), 3)}
    for c, v in sorted(per.items()):
        a = np.array(v, np.float64)
        row = {"gt": len(a), "mean_iou_bev": round(float(a[:, 0].mean()), 4), "mean_iou3d": round(float(a[:, 1].mean()), 4),
               f"recall_bev_{THRESHOLD.get(c, 0.5)}": round(float((a[:, 0] >= THRESHOLD.get(c, 0.5)).mean()), 4)}
        if c == "Car":
            dense = a[a[:, 2] >= 50]
            row["cars_50_points"] = len(dense)
            row["cars_50_points_bev_0.7"] = round(float((dense[:, 0] >= 0.7).mean()), 4) if len(dense) else None
        out[c] = row
    return out


def real_kitti_quality(root: Path | None) -> dict[str, Any]:
    """Pseudo-box quality on the real shared KITTI frames, leave-one-frame-out (the other frames
    are the boxed ones; the 2D-only row learns from the image boxes of all of them):
    ``real_kitti`` per method and class, ``real_kitti_per_frame`` each GT
    box's [BEV IoU, 3D IoU, LiDAR points]; empty where the frames are absent. ``root``: the
    real samples' folder (``bench.shared_root``), None for none."""
    from ..data.address import load_scene
    from ..pseudo.object_boxes import learn_box_geometry
    from .. import weak
    real = _real_frames(root)
    if not real:
        return {}
    scenes = {a: load_scene(a) for a in real}
    from ..pseudo.frustum_boxes import learn_sizes_from_image_boxes
    geo_2d = learn_sizes_from_image_boxes((s, weak.boxes2d(s)) for s in scenes.values())
    per_frame: dict[str, Any] = {}
    got: dict[str, tuple[list, list]] = {m: ([], []) for m in METHODS}
    for a in real:
        others = [(scenes[b], weak.boxes(scenes[b], axis_aligned=False)) for b in real if b != a]
        res = _label_all(scenes[a], learn_box_geometry(others), geo_2d)
        per_frame[scenes[a].name] = {m: {c: [[round(x, 3) for x in t[:2]] + [t[2]] for t in v] for c, v in sc.items()}
                                     for m, (sc, _) in res.items()}
        for m, (sc, secs) in res.items():
            got[m][0].append(sc)
            got[m][1].append(secs)
    return {"real_kitti": {m: _summarise(*got[m]) for m in METHODS}, "real_kitti_per_frame": per_frame}


@ranges_checked("bench pseudo-boxes")
def run(frames: Count = 12, boxed: Count = 4, shared: str | None = None, seed: Seed = 0) -> dict[str, Any]:
    from ..data.address import load_scene
    from ..pseudo.object_boxes import learn_box_geometry
    from .. import weak
    root = shared_root(shared)
    t0 = time.perf_counter()
    boxed_frames = [load_scene(f"synthetic-lidar:{seed + i}") for i in range(boxed)]
    geo = learn_box_geometry((s, weak.boxes(s, axis_aligned=False)) for s in boxed_frames)
    from ..pseudo.frustum_boxes import learn_sizes_from_image_boxes
    labelled = [load_scene(f"synthetic-lidar:{seed + boxed + i}") for i in range(frames)]
    t2 = time.perf_counter()
    geo_2d = learn_sizes_from_image_boxes((s, weak.boxes2d(s)) for s in boxed_frames + labelled)
    learn_2d_s = time.perf_counter() - t2
    got: dict[str, tuple[list, list]] = {m: ([], []) for m in METHODS}
    for s in labelled:
        for m, (sc, secs) in _label_all(s, geo, geo_2d).items():
            got[m][0].append(sc)
            got[m][1].append(secs)
    result: dict[str, Any] = {"bench": "pseudo-boxes", "machine": machine(), "synthetic_frames": frames, "boxed_frames": boxed,
                              "learned_sizes": geo.to_dict(), "sizes_from_image_boxes": geo_2d.to_dict(),
                              "sizes_from_image_boxes_seconds": round(learn_2d_s, 1), "synthetic": {m: _summarise(*got[m]) for m in METHODS}}
    result.update(real_kitti_quality(root))
    result["seconds"] = round(time.perf_counter() - t0, 1)
    return result
