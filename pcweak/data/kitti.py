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

from ..errors import ReaderError
from ..scene import Frame, KittiCalib, Scene
from ..classes import KITTI_CLASSES

_LABEL_FIELDS = 15


def read_calib(path: str | os.PathLike) -> KittiCalib:
    path = Path(path)
    if not path.is_file():
        raise ReaderError(f"{path}: calibration file missing (needed to place label_2 boxes in the LiDAR frame)")
    vals = {}
    for line in path.read_text().splitlines():
        if ":" not in line:
            continue
        k, v = line.split(":", 1)
        try:
            vals[k.strip()] = np.array(v.split(), np.float64)
        except ValueError as e:
            raise ReaderError(f"{path}: key {k.strip()} has non-numeric values ({e})") from e
    try:
        tr = vals.get("Tr_velo_to_cam", vals.get("Tr_velo_cam"))
        r0 = vals.get("R0_rect", vals.get("R_rect"))
        return KittiCalib(P2=vals["P2"].reshape(3, 4), R0_rect=r0.reshape(3, 3), Tr_velo_to_cam=tr.reshape(3, 4))
    except (KeyError, AttributeError, ValueError) as e:
        raise ReaderError(f"{path}: missing or malformed P2 / R0_rect / Tr_velo_to_cam ({e})") from e


def read_labels(path: str | os.PathLike) -> list[dict]:
    path = Path(path)
    objs = []
    for ln, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < _LABEL_FIELDS:
            raise ReaderError(f"{path}:{ln}: expected {_LABEL_FIELDS} fields, got {len(parts)}")
        try:
            v = [float(x) for x in parts[1:_LABEL_FIELDS]]
        except ValueError as e:
            raise ReaderError(f"{path}:{ln}: non-numeric field ({e})") from e
        objs.append({"type": parts[0], "truncated": v[0], "occluded": int(v[1]), "alpha": v[2],
                     "bbox": v[3:7], "hwl": v[7:10], "loc": v[10:13], "ry": v[13],
                     "score": float(parts[15]) if len(parts) > 15 else None})
    return objs


def camera_boxes_to_lidar(objs: list[dict], calib: KittiCalib) -> np.ndarray:
    """(M,7) float64 LiDAR boxes from label_2 objects."""
    out = []
    for o in objs:
        h, w, l = o["hwl"]
        c = np.array(o["loc"], np.float64) - [0.0, h / 2, 0.0]  # camera y points down
        cl = calib.rect_to_lidar(c[None])[0]
        # heading (object x axis) through the exact rect -> LiDAR rotation, not just -ry - pi/2
        head = calib.rect_to_lidar(np.array([[np.cos(o["ry"]), 0.0, -np.sin(o["ry"])]]) + c)[0] - cl
        yaw = np.arctan2(head[1], head[0])
        out.append([cl[0], cl[1], cl[2], l, w, h, yaw])
    return np.array(out, np.float64).reshape(-1, 7)


def lidar_boxes_to_camera(boxes: np.ndarray, calib: KittiCalib) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of ``camera_boxes_to_lidar``: (M,3) location (bottom centre), (M,3) h w l, (M,) rotation_y.
    Exact inverse, including the small rotations in Tr_velo_to_cam and R0_rect."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 7)
    c = calib.lidar_to_rect(boxes[:, :3])
    loc = c + np.stack([np.zeros(len(c)), boxes[:, 5] / 2, np.zeros(len(c))], 1)
    head = calib.lidar_to_rect(boxes[:, :3] + np.stack([np.cos(boxes[:, 6]), np.sin(boxes[:, 6]), np.zeros(len(c))], 1)) - c
    ry = np.arctan2(-head[:, 2], head[:, 0])
    return loc, boxes[:, [5, 4, 3]], ry


def points_in_camera_boxes(rect: np.ndarray, objs: list[dict]) -> np.ndarray:
    """(N,M) bool, KITTI's own test in the rectified camera frame: in the box frame (rotation_y
    about camera y) |x| <= l/2, |z| <= w/2 and -h <= y - y0 <= 0."""
    out = np.zeros((len(rect), len(objs)), bool)
    for m, o in enumerate(objs):
        h, w, l = o["hwl"]
        p = rect - np.asarray(o["loc"], np.float64)
        cs, sn = np.cos(o["ry"]), np.sin(o["ry"])
        x = p[:, 0] * cs - p[:, 2] * sn
        z = p[:, 0] * sn + p[:, 2] * cs
        out[:, m] = (np.abs(x) <= l / 2) & (np.abs(z) <= w / 2) & (p[:, 1] <= 0) & (p[:, 1] >= -h)
    return out


def read_kitti(frame_path: str | os.PathLike) -> Scene:
    """Read ``<root>/training/<id>`` (or ``testing``) into a ``Scene``; ``frame_path`` names the
    split folder and the frame id, e.g. ``data/kitti/training/000001``."""
    p = Path(frame_path)
    split, fid = p.parent, p.name
    velo = split / "velodyne" / f"{fid}.bin"
    if not velo.is_file():
        raise ReaderError(f"{velo}: LiDAR scan not found")
    raw = np.fromfile(velo, dtype=np.float32)
    if raw.size == 0 or raw.size % 4:
        raise ReaderError(f"{velo}: size {raw.size * 4} bytes is not a whole number of (x,y,z,reflectance) float32 records")
    pts = raw.reshape(-1, 4)
    bad = ~np.isfinite(pts).all(1)
    if bad.any():
        raise ReaderError(f"{velo}: {int(bad.sum())} points have NaN/inf values")
    calib_path = split / "calib" / f"{fid}.txt"
    calib = read_calib(calib_path) if calib_path.is_file() else None
    label_path = split / "label_2" / f"{fid}.txt"
    boxes = box_labels = semantic = instance = None
    extras: dict[str, np.ndarray] = {}
    if label_path.is_file():
        if calib is None:
            raise ReaderError(f"{calib_path}: calibration file missing (needed to place label_2 boxes in the LiDAR frame)")
        objs = read_labels(label_path)
        care = [o for o in objs if o["type"] != "DontCare"]
        dont = [o for o in objs if o["type"] == "DontCare"]
        boxes = camera_boxes_to_lidar(care, calib)
        box_labels = np.array([KITTI_CLASSES.index(o["type"]) if o["type"] in KITTI_CLASSES[:3] else -1 for o in care], np.int64)
        extras = {"box_type": np.array([o["type"] for o in care], dtype=np.str_).reshape(-1),
                  "box_truncated": np.array([o["truncated"] for o in care], np.float32),
                  "box_occluded": np.array([o["occluded"] for o in care], np.int64),
                  "box_alpha": np.array([o["alpha"] for o in care], np.float32),
                  "box_bbox2d": np.array([o["bbox"] for o in care], np.float32).reshape(-1, 4),
                  "dontcare_bbox2d": np.array([o["bbox"] for o in dont], np.float32).reshape(-1, 4)}
        inside = points_in_camera_boxes(calib.lidar_to_rect(pts[:, :3]), care)
        instance = np.where(inside.any(1), inside.argmax(1), -1).astype(np.int64)
        lab = np.where(instance >= 0, box_labels[np.maximum(instance, 0)] if len(box_labels) else -1, KITTI_CLASSES.index("background"))
        semantic = lab
    frames = []
    img_path = split / "image_2" / f"{fid}.png"
    if calib is not None:
        K, pose = calib.camera_pose()
        if img_path.is_file():
            from .images import image_loader, image_size
            w, h = image_size(img_path)
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
                 meta={"dataset": "kitti", "source": str(p)})


def write_kitti(scene: Scene, split_dir: str | os.PathLike, frame_id: str = "000000") -> Path:
    """Write ``scene`` (LiDAR frame, boxes, calib, image_2 frame) in KITTI's layout under
    ``split_dir`` (e.g. ``root/training``). 2D boxes are the projected 3D boxes."""
    from PIL import Image
    from ..geometry import box_corners
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
    h, w = (img.shape[:2] if img is not None else (375, 1242))
    if img is not None:
        Image.fromarray(img).save(d / "image_2" / f"{frame_id}.png")
    out = []
    if scene.boxes is not None and len(scene.boxes):
        types = scene.extras.get("box_type")
        loc, hwl, ry = lidar_boxes_to_camera(scene.boxes, c)
        corners = box_corners(scene.boxes).reshape(-1, 3)
        uv, z = c.lidar_to_image(corners)
        uv, z = uv.reshape(-1, 8, 2), z.reshape(-1, 8)
        for k in range(len(scene.boxes)):
            t = str(types[k]) if types is not None else scene.classes[int(scene.box_labels[k])]
            front = z[k] > 0.1
            if front.any():
                x1, y1 = np.clip(uv[k, front].min(0), 0, [w - 1, h - 1])
                x2, y2 = np.clip(uv[k, front].max(0), 0, [w - 1, h - 1])
            else:
                x1 = y1 = x2 = y2 = -1.0
            alpha = ry[k] - np.arctan2(loc[k, 0], loc[k, 2])
            out.append(f"{t} 0.00 0 {alpha:.2f} {x1:.2f} {y1:.2f} {x2:.2f} {y2:.2f} "
                       f"{hwl[k, 0]:.2f} {hwl[k, 1]:.2f} {hwl[k, 2]:.2f} {loc[k, 0]:.2f} {loc[k, 1]:.2f} {loc[k, 2]:.2f} {ry[k]:.2f}")
    (d / "label_2" / f"{frame_id}.txt").write_text("\n".join(out) + ("\n" if out else ""))
    return d / "velodyne" / f"{frame_id}.bin"
