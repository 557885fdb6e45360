"""KITTI 3D object reader (``velodyne/ label_2/ calib/ image_2/``) and writer of the same layout.

Boxes are converted from the rectified camera frame (bottom-centre location, h w l,
rotation_y) to the LiDAR frame as ``[cx, cy, cz, l, w, h, yaw]`` with ``yaw = -rotation_y - pi/2``.
Every non-DontCare object is a box; Car/Pedestrian/Cyclist get labels 0/1/2, other types
(Van, Truck, ...) label -1 with their type kept in ``extras['box_type']``. DontCare regions are
kept apart in ``extras['dontcare_bbox2d']``. Per-point labels: points inside a Car/Pedestrian/
Cyclist box get its class and instance; points inside other boxes are ignored (-1); remaining
points inside the camera's field of view are ``background``; points outside it, where KITTI
annotates nothing, are -1.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..classes import KITTI_CLASSES
from ..errors import ReaderError
from ..geometry import rotation_problem
from ..kitti_objects import IMAGE_SIZE, KittiObjects, camera_to_lidar_boxes, objects_from_lidar, read_objects, write_objects
from ..scene import Frame, KittiCalib, Scene
from ..textio import read_text



def read_calib(path: str | os.PathLike) -> KittiCalib:
    path = Path(path)
    if not path.is_file():
        raise ReaderError(f"{path}: calibration file missing (needed to place label_2 boxes in the LiDAR frame)")
    vals, lines = {}, {}
    for ln, line in enumerate(read_text(path, "a KITTI calibration file").splitlines(), 1):
        if ":" not in line:
            continue
        k, v = line.split(":", 1)
        k = k.strip()
        if k in lines:
            raise ReaderError(f"{path}:{ln}: key {k} again (first on line {lines[k]}): which one holds?")
        try:
            vals[k], lines[k] = np.array(v.split(), np.float64), ln
        except ValueError as e:
            raise ReaderError(f"{path}: key {k} has non-numeric values ({e})") from e
    missing = [names[0] for names in (("P2",), ("R0_rect", "R_rect"), ("Tr_velo_to_cam", "Tr_velo_cam"))
               if not any(n in vals for n in names)]
    if missing:
        raise ReaderError(f"{path}: no {' / '.join(missing)} line (KITTI's calib files hold P0-P3, R0_rect, Tr_velo_to_cam)")
    try:
        tr = vals.get("Tr_velo_to_cam", vals.get("Tr_velo_cam"))
        r0 = vals.get("R0_rect", vals.get("R_rect"))
        calib = KittiCalib(P2=vals["P2"].reshape(3, 4), R0_rect=r0.reshape(3, 3), Tr_velo_to_cam=tr.reshape(3, 4))
    except ValueError as e:  # the keys are there (above): a count of values that is no matrix
        raise ReaderError(f"{path}: missing or malformed P2 / R0_rect / Tr_velo_to_cam ({e})") from e
    for key, r in (("R0_rect", calib.R0_rect), ("Tr_velo_to_cam", calib.Tr_velo_to_cam[:, :3])):
        why = rotation_problem(r)
        if why:
            raise ReaderError(f"{path}: {key}'s rotation is none ({why}): a damaged calibration")
    if not (calib.P2[0, 0] > 0 and calib.P2[1, 1] > 0):
        raise ReaderError(f"{path}: P2's focal lengths must be > 0 (fx {calib.P2[0, 0]:g}, fy {calib.P2[1, 1]:g}): a damaged "
                          f"calibration")
    return calib


def points_in_camera_boxes(rect: np.ndarray, objs: KittiObjects) -> np.ndarray:
    """(N,M) bool, KITTI's own test in the rectified camera frame: in the box frame (rotation_y
    about camera y) |x| <= l/2, |z| <= w/2 and -h <= y - y0 <= 0."""
    out = np.zeros((len(rect), len(objs)), bool)
    for m in range(len(objs)):
        h, w, l = objs.hwl[m]
        p = rect - objs.loc[m]
        cs, sn = np.cos(objs.ry[m]), np.sin(objs.ry[m])
        x = p[:, 0] * cs - p[:, 2] * sn
        z = p[:, 0] * sn + p[:, 2] * cs
        out[:, m] = (np.abs(x) <= l / 2) & (np.abs(z) <= w / 2) & (p[:, 1] <= 0) & (p[:, 1] >= -h)
    return out


def read_velodyne(path: Path, fourth: str = "reflectance") -> np.ndarray:
    """(N,4) float32 x, y, z, ``fourth`` of a KITTI-format LiDAR scan (``velodyne/<id>.bin``:
    float32 records), refusing a missing, empty, truncated or non-finite file by name."""
    if not path.is_file():
        raise ReaderError(f"{path}: LiDAR scan not found")
    size = path.stat().st_size
    if size == 0 or size % 16:
        raise ReaderError(f"{path}: size {size} bytes is not a whole number of 16-byte (x,y,z,{fourth}) float32 records")
    raw = np.fromfile(path, dtype=np.float32)
    pts = raw.reshape(-1, 4)
    bad = ~np.isfinite(pts).all(1)
    if bad.any():
        raise ReaderError(f"{path}: {int(bad.sum())} points have NaN/inf values")
    if _five_per_point(raw, pts):
        raise ReaderError(f"{path}: holds 5 float32 per point (x, y, z, intensity, ring index: nuScenes' layout), "
                          f"not KITTI's 4 (x, y, z, {fourth}); read as 4 its points would be scrambled. Keep the first "
                          f"four: np.fromfile(f, np.float32).reshape(-1, 5)[:, :4].tofile(f)")
    return pts


def _five_per_point(raw: np.ndarray, four: np.ndarray) -> bool:
    """Whether float32 records ``raw`` read as (x, y, z, value) ``four`` are a five-float layout
    (nuScenes' x, y, z, intensity, ring) instead: the fourth float of a KITTI record is an
    intensity (>= 0), while five-float records read as four put coordinates there (negative for
    about half the points), and read as five they end in a whole ring index."""
    if raw.size % 5 or (four[:, 3] < 0).mean() < 0.05:
        return False
    five = raw.reshape(-1, 5)
    ring, intensity = five[:, 4], five[:, 3]
    return bool((ring == np.round(ring)).all() and (ring >= 0).all() and ring.max() < 1024 and (intensity >= 0).all())


def source_paths(frame_path: str | os.PathLike) -> list[Path]:
    """The files ``read_kitti`` opens for ``<split>/<id>`` (those that exist or not)."""
    p = Path(frame_path)
    split, fid = p.parent, p.name
    return [split / "velodyne" / f"{fid}.bin", split / "calib" / f"{fid}.txt", split / "label_2" / f"{fid}.txt",
            split / "image_2" / f"{fid}.png"]


def read_kitti(frame_path: str | os.PathLike) -> Scene:
    """Read ``<root>/training/<id>`` (or ``testing``) into a ``Scene``; ``frame_path`` names the
    split folder and the frame id, e.g. ``data/kitti/training/000001``."""
    p = Path(frame_path)
    split, fid = p.parent, p.name
    from .collection import is_semantickitti_sequence
    if is_semantickitti_sequence(split):  # its point labels would be left unread, under KITTI's box classes
        raise ReaderError(f"{split}: a SemanticKITTI sequence (labels/ beside velodyne/, no label_2/), not a KITTI "
                          f"split; read the scan as semantickitti:{p}")
    pts = read_velodyne(split / "velodyne" / f"{fid}.bin")
    calib_path = split / "calib" / f"{fid}.txt"
    calib = read_calib(calib_path) if calib_path.is_file() else None
    label_path = split / "label_2" / f"{fid}.txt"
    boxes = box_labels = semantic = instance = None
    extras: dict[str, np.ndarray] = {}
    if label_path.is_file():
        if calib is None:
            raise ReaderError(f"{calib_path}: calibration file missing (needed to place label_2 boxes in the LiDAR frame)")
        objs = read_objects(label_path)
        dontcare = objs.type == "DontCare"
        care, dont = objs.select(~dontcare), objs.select(dontcare)
        boxes = camera_to_lidar_boxes(care.loc, care.hwl, care.ry, calib)
        box_labels = np.array([KITTI_CLASSES.index(t) if t in KITTI_CLASSES[:3] else -1 for t in care.type], np.int64)
        extras = {"box_type": care.type.astype(np.str_).reshape(-1),
                  "box_truncated": care.truncated.astype(np.float32),
                  "box_occluded": care.occluded.astype(np.int64),
                  "box_alpha": care.alpha.astype(np.float32),
                  "box_bbox2d": care.bbox.astype(np.float32).reshape(-1, 4),
                  "dontcare_bbox2d": dont.bbox.astype(np.float32).reshape(-1, 4)}
        inside = points_in_camera_boxes(calib.lidar_to_rect(pts[:, :3]), care)
        instance = np.where(inside.any(1), inside.argmax(1), -1).astype(np.int64)
        lab = np.where(instance >= 0, box_labels[np.maximum(instance, 0)] if len(box_labels) else -1, KITTI_CLASSES.index("background"))
        semantic = lab
    frames = []
    image_hw = IMAGE_SIZE
    img_path = split / "image_2" / f"{fid}.png"
    if calib is not None:
        K, pose = calib.camera_pose()
        if img_path.is_file():
            from .images import image_loader, image_size
            w, h = image_size(img_path)
            image_hw = (int(h), int(w))
            frames.append(Frame("image_2", pose, K, image=image_loader(img_path)))
            if semantic is not None:
                uv, z = calib.lidar_to_image(pts[:, :3])
                with np.errstate(invalid="ignore"):
                    fov = (z > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
                semantic = np.where(fov | (instance >= 0), semantic, -1)
    if semantic is not None and instance is not None:
        instance = np.where(semantic >= 0, instance, -1)
        instance = np.where(np.isin(semantic, [0, 1, 2]), instance, -1)
    return Scene(name=fid, coord=pts[:, :3], classes=KITTI_CLASSES, intensity=pts[:, 3], semantic=semantic,
                 instance=instance, boxes=None if boxes is None else boxes.astype(np.float32), box_labels=box_labels,
                 frames=frames, calib=calib, extras=extras,
                 meta={"dataset": "kitti", "source": str(p), "image_size": list(image_hw)})


def write_kitti(scene: Scene, split_dir: str | os.PathLike, frame_id: str = "000000") -> Path:
    """Write ``scene`` (LiDAR frame, boxes, calib, image_2 frame) in KITTI's layout under
    ``split_dir`` (e.g. ``root/training``). 2D boxes are the projected 3D boxes."""
    from PIL import Image
    if scene.calib is None:
        raise ValueError("write_kitti needs scene.calib")
    d = Path(split_dir)
    for sub in ("velodyne", "label_2", "calib", "image_2"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    inten = scene.intensity if scene.intensity is not None else np.zeros(scene.num_points, np.float32)
    np.hstack([scene.coord, inten[:, None]]).astype(np.float32).tofile(d / "velodyne" / f"{frame_id}.bin")
    c = scene.calib
    Tr_imu = np.hstack([np.eye(3), np.zeros((3, 1))])
    lines = [f"P{i}: " + " ".join(f"{x:.12e}" for x in c.P2.ravel()) for i in range(4)]
    lines += ["R0_rect: " + " ".join(f"{x:.12e}" for x in c.R0_rect.ravel()),
              "Tr_velo_to_cam: " + " ".join(f"{x:.12e}" for x in c.Tr_velo_to_cam.ravel()),
              "Tr_imu_to_velo: " + " ".join(f"{x:.12e}" for x in Tr_imu.ravel())]
    (d / "calib" / f"{frame_id}.txt").write_text("\n".join(lines) + "\n")
    img = scene.frames[0].image if scene.frames else None
    if img is not None:
        Image.fromarray(img).save(d / "image_2" / f"{frame_id}.png")
    objs = ground_truth_objects(scene, projected=True)
    write_objects(d / "label_2" / f"{frame_id}.txt", objs.select(objs.type != "DontCare"))
    return d / "velodyne" / f"{frame_id}.bin"


def image_size_of(scene: Scene) -> tuple[int, int]:
    """(height, width) of the scene's image_2, from its metadata; KITTI's usual 375 x 1242 when unknown."""
    hw = (scene.meta or {}).get("image_size")
    return (int(hw[0]), int(hw[1])) if hw is not None else IMAGE_SIZE


def ground_truth_objects(scene: Scene, projected: bool = False) -> KittiObjects:
    """The scene's KITTI ground truth as the devkit reads it (every type, DontCare regions):
    its ``label_2`` file as is when the scene was read from one, otherwise made from the scene's
    LiDAR boxes through its calibration, with the 2D boxes, occlusion and truncation of
    ``extras`` (``projected``: 2D boxes projected from the 3D boxes instead)."""
    src = (scene.meta or {}).get("source")
    if src and (scene.meta or {}).get("dataset") == "kitti" and not projected:
        label = Path(src).parent / "label_2" / f"{Path(src).name}.txt"
        if label.is_file():
            return read_objects(label)
    if scene.calib is None:
        raise ReaderError(f"scene {scene.name!r}: no KITTI calibration, so its boxes have no camera-frame form")
    ex = scene.extras or {}
    n = 0 if scene.boxes is None else len(scene.boxes)
    types = ex.get("box_type")
    if types is None:
        # a box outside the label space is still a real object: KITTI's "Misc" (a DontCare with a 3D
        # box would silently absorb BEV / 3D false positives near it)
        types = [scene.classes[int(c)] if c >= 0 else "Misc" for c in (scene.box_labels if n else [])]
    get = lambda k: None if (projected and k == "box_bbox2d") or k not in ex else np.asarray(ex[k])  # noqa: E731
    objs = objects_from_lidar(np.zeros((0, 7)) if n == 0 else scene.boxes, types, scene.calib, image_size_of(scene),
                              truncated=get("box_truncated"), occluded=get("box_occluded"), bbox=get("box_bbox2d"))
    dc = np.asarray(ex.get("dontcare_bbox2d", np.zeros((0, 4))), np.float64).reshape(-1, 4)
    if len(dc):
        k = len(dc)
        dcs = KittiObjects(type=np.array(["DontCare"] * k), truncated=-np.ones(k), occluded=-np.ones(k, np.int64),
                           alpha=np.full(k, -10.0), bbox=dc, hwl=-np.ones((k, 3)), loc=np.full((k, 3), -1000.0),
                           ry=np.full(k, -10.0))
        objs = objs.concat(dcs)
    return objs
