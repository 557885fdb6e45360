"""3D boxes and 2D image boxes from a scene's ground truth (seeded, optional noise)."""
from __future__ import annotations

import warnings

import numpy as np

from ..classes import stuff_classes
from ..geometry import aabb_box, box_corners, oriented_box
from ..params import Count, NonNegative, Seed, ranges_checked
from ..scene import Scene, WeakLabels
from .points import _need


@ranges_checked("boxes")
def boxes(scene: Scene, axis_aligned: bool = True, seed: Seed = 0, exclude: tuple[str, ...] | None = None,
          noise: NonNegative = 0.0, min_points: Count = 5, source: str = "auto") -> WeakLabels:
    """One tight box per GT instance (class = the instance's majority class).

    Instances of the ``exclude`` classes get no box (default: ``classes.stuff_classes``, the
    surfaces and background of the scene's class list). ``axis_aligned=False`` fits the z-upright
    box of minimum footprint. ``noise`` (m) perturbs centres and sizes with N(0, noise): boxes
    drawn by people are not tight. ``source``: ``"instances"`` (tight around the GT instance
    points, as ScanNet's GT boxes are), ``"scene"`` (the annotated ``scene.boxes``, as for
    KITTI, whose boxes are amodal), ``"auto"`` (scene boxes for scenes with a KITTI calibration
    or without instances, else instances).
    """
    rng = np.random.default_rng(seed)
    if exclude is None:
        exclude = stuff_classes(scene.classes)
    if source not in ("auto", "instances", "scene"):
        raise ValueError(f"boxes(): source must be auto, instances or scene, got {source!r}")
    if source == "auto":
        source = "scene" if (scene.instance is None or (scene.calib is not None and scene.boxes is not None)) else "instances"
    if source == "scene":
        _need(scene, "boxes")
        keep = scene.box_labels >= 0
        b = scene.boxes[keep].astype(np.float64)
        lab = scene.box_labels[keep]
        if axis_aligned:
            c = box_corners(b)
            b = np.array([aabb_box(x) for x in c]).reshape(-1, 7)
    else:
        _need(scene, "semantic")
        out_b, out_l = [], []
        for k in np.unique(scene.instance[scene.instance >= 0]):
            m = scene.instance == k
            sem = scene.semantic[m]
            sem = sem[sem >= 0]
            if m.sum() < min_points or not len(sem):
                continue
            c = int(np.bincount(sem).argmax())
            if scene.classes[c] in exclude:
                continue
            pts = scene.coord[m]
            out_b.append(aabb_box(pts) if axis_aligned else oriented_box(pts))
            out_l.append(c)
        b = np.array(out_b, np.float64).reshape(-1, 7)
        lab = np.array(out_l, np.int64)
    if noise > 0 and len(b):
        _warn_if_noise_swamps(scene.name, "boxes", "noise", noise, "m", b[:, 3:6].min(1))
        b[:, :3] += rng.normal(0, noise, (len(b), 3))
        b[:, 3:6] = np.maximum(b[:, 3:6] + rng.normal(0, noise, (len(b), 3)), 0.01)
    return WeakLabels(scene=scene.name, num_points=scene.num_points, classes=scene.classes, box=b.astype(np.float32),
                      box_semantic=lab, meta={"kind": "boxes", "axis_aligned": bool(axis_aligned), "noise": float(noise), "seed": int(seed)})


@ranges_checked("boxes2d")
def boxes2d(scene: Scene, seed: Seed = 0, noise_px: NonNegative = 0.0, use_annotated: bool = True,
            min_size_px: NonNegative = 4.0) -> WeakLabels:
    """Image boxes ``[x1,y1,x2,y2]`` of the scene's objects in its frames.

    KITTI scenes with annotated 2D boxes (``extras['box_bbox2d']``) use them on frame 0 when
    ``use_annotated``; otherwise each 3D box (``scene.boxes``) is projected into every frame and
    clipped to the image; boxes behind the camera or smaller than ``min_size_px`` are dropped.
    ``noise_px`` jitters the corners (then clipped to the image again).
    """
    _need(scene, "boxes")
    if not scene.frames:
        raise ValueError(f"scene {scene.name!r}: has no frames to draw image boxes in")
    rng = np.random.default_rng(seed)
    out, lab, frm, size = [], [], [], []
    keep = scene.box_labels >= 0
    if use_annotated and "box_bbox2d" in scene.extras:
        bb = scene.extras["box_bbox2d"][keep]
        out, lab, frm = list(bb), list(scene.box_labels[keep]), [0] * int(keep.sum())
        size = [scene.frame_image_size(0) or (np.inf, np.inf)] * len(out)
    else:
        from ..camera import project
        corners = box_corners(scene.boxes[keep])
        labels = scene.box_labels[keep]
        for fi, f in enumerate(scene.frames):
            img = f.image
            if img is not None:
                h, w = img.shape[:2]
            elif f.depth is not None:
                h, w = f.depth.shape
            else:
                continue
            K = f.color_intrinsics if (f.color_intrinsics is not None and img is not None) else f.intrinsics
            for c, l in zip(corners, labels):
                uv, z = project(c, K, f.pose)
                if (z <= 0.05).any():
                    continue
                x1, y1 = np.clip(uv.min(0), 0, [w - 1, h - 1])
                x2, y2 = np.clip(uv.max(0), 0, [w - 1, h - 1])
                if x2 - x1 < min_size_px or y2 - y1 < min_size_px:
                    continue
                out.append([x1, y1, x2, y2])
                lab.append(l)
                frm.append(fi)
                size.append((h, w))
    b = np.array(out, np.float64).reshape(-1, 4)
    if noise_px > 0 and len(b):
        _warn_if_noise_swamps(scene.name, "boxes2d", "noise_px", noise_px, "px", (b[:, 2:] - b[:, :2]).min(1))
        b += rng.normal(0, noise_px, b.shape)
        hw = np.array(size, np.float64)
        b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, hw[:, 1:2] - 1)
        b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, hw[:, 0:1] - 1)
        b[:, 2:] = np.maximum(b[:, 2:], b[:, :2] + 1)
    return WeakLabels(scene=scene.name, num_points=scene.num_points, classes=scene.classes, box2d=b.astype(np.float32),
                      box2d_semantic=np.array(lab, np.int64), box2d_frame=np.array(frm, np.int64),
                      meta={"kind": "boxes2d", "noise_px": float(noise_px), "seed": int(seed)})


def _warn_if_noise_swamps(scene: str, kind: str, name: str, noise: float, unit: str, sides: np.ndarray) -> None:
    """Warn where the jitter's standard deviation exceeds half the median box's shortest side
    (``sides``: (B,) shortest side of each box, in ``unit``): a centre moved by more than half
    that side puts most boxes beside their objects, which is seldom meant (a value in the wrong
    unit, say)."""
    half = 0.5 * float(np.median(sides))
    if noise > half:
        warnings.warn(f"scene {scene!r}: {kind} {name} {noise:g} {unit} is more than half the median box's "
                      f"shortest side ({half:.3g} {unit}): most boxes will lie beside their objects")
