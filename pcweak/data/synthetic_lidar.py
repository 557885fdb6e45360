"""Procedural outdoor LiDAR frames (SYNTHETIC data, not a real scan).

A street scene in the KITTI LiDAR frame (x forward, y left, z up, sensor 1.73 m above the
ground): ground plane, building facades and poles (background), cars (body + cabin),
pedestrians (legs + torso + head) and cyclists (bike + rider). A 64-beam spinning scanner is
ray-cast against it (HDL-64E-like elevation -24.8..+2 deg, range noise, dropouts, intensity per
material and incidence). The scene carries KITTI-style calibration and a lazily rendered
image_2, so it can be written in KITTI's on-disk format and read back.
"""
from __future__ import annotations

import numpy as np

from ..kitti_objects import IMAGE_SIZE  # (height, width) of KITTI's image_2
from ..geometry import points_in_boxes, rot_z
from ..scene import Frame, KittiCalib, Scene
from ..classes import KITTI_CLASSES
from .address import scene_name
from .raycast import cast_boxes, cast_plane_z, pixel_rays

SENSOR_HEIGHT = 1.73

DEFAULT_CALIB = KittiCalib(
    P2=np.array([[721.5377, 0.0, 609.5593, 44.85728], [0.0, 721.5377, 172.854, 0.2163791], [0.0, 0.0, 1.0, 0.002745884]]),
    R0_rect=np.array([[0.9999239, 0.00983776, -0.007445048], [-0.009869795, 0.9999421, -0.004278459], [0.007402527, 0.004351614, 0.9999631]]),
    Tr_velo_to_cam=np.array([[7.533745e-03, -9.999714e-01, -6.166020e-04, -4.069766e-03],
                             [1.480249e-02, 7.280733e-04, -9.998902e-01, -7.631618e-02],
                             [9.998621e-01, 7.523790e-03, 1.480755e-02, -2.717806e-01]]),
)


def _object_parts(cls: str, r: np.random.Generator) -> tuple[list[np.ndarray], np.ndarray]:
    """Parts (object frame: x forward, z from the ground) and the (l, w, h) of the object."""
    if cls == "Car":
        l, w, h = r.uniform(3.6, 4.6), r.uniform(1.55, 1.85), r.uniform(1.4, 1.6)
        body_h = 0.6 * h
        parts = [np.array([0, 0, 0.15 + (body_h - 0.15) / 2, l, w, body_h - 0.15, 0]),
                 np.array([-0.1 * l, 0, body_h + (h - body_h) / 2, 0.55 * l, 0.9 * w, h - body_h, 0])]
        for sx in (-1, 1):
            for sy in (-1, 1):
                parts.append(np.array([sx * 0.32 * l, sy * (w / 2 - 0.12), 0.33, 0.62, 0.22, 0.36, 0]))
    elif cls == "Pedestrian":
        l, w, h = r.uniform(0.5, 0.9), r.uniform(0.5, 0.7), r.uniform(1.55, 1.9)
        parts = [np.array([0, 0, 0.45 * h / 2, 0.3, 0.4, 0.45 * h, 0]),
                 np.array([0, 0, 0.45 * h + 0.4 * h / 2, 0.3, 0.5, 0.4 * h, 0]),
                 np.array([0, 0, 0.85 * h + 0.15 * h / 2, 0.2, 0.2, 0.15 * h, 0])]
        l, w = 0.35, 0.55
    else:  # Cyclist
        l, w, h = r.uniform(1.6, 1.9), 0.6, r.uniform(1.65, 1.85)
        parts = [np.array([0, 0, 0.45, l, 0.08, 0.9, 0]),
                 np.array([-0.1, 0, 0.9 + (h - 0.9) / 2, 0.45, 0.45, h - 0.9, 0])]
    return parts, np.array([l, w, h])


def synthetic_lidar(seed: int = 0, n_cars: tuple[int, int] = (4, 10), n_peds: tuple[int, int] = (1, 5),
                    n_cyclists: tuple[int, int] = (0, 3), azimuth_steps: int = 1800, beams: int = 64) -> Scene:
    """A SYNTHETIC KITTI-like LiDAR frame as a ``Scene`` (classes Car, Pedestrian, Cyclist, background).

    Boxes are ``[cx,cy,cz,l,w,h,yaw]`` in the LiDAR frame; ``semantic`` labels every point
    (background = 3) by box membership as KITTI does, ``instance`` is the box index.
    """
    r = np.random.default_rng(seed)
    ground = -SENSOR_HEIGHT
    objects = []  # (class, box, parts in world)
    footprints: list[np.ndarray] = []
    road_half = r.uniform(6.0, 9.0)
    for cls, (lo, hi) in (("Car", n_cars), ("Pedestrian", n_peds), ("Cyclist", n_cyclists)):
        for _ in range(int(r.integers(lo, hi + 1))):
            for _try in range(30):
                parts, (l, w, h) = _object_parts(cls, r)
                x = r.uniform(4.0, 45.0)
                if cls == "Car":
                    y = r.uniform(-road_half + 1.2, road_half - 1.2)
                    yaw = r.choice([0.0, np.pi]) + r.normal(0, 0.08) if r.random() < 0.8 else r.uniform(-np.pi, np.pi)
                else:
                    y = r.uniform(-road_half - 2.0, road_half + 2.0)
                    yaw = r.uniform(-np.pi, np.pi)
                # keep objects roughly in front of the camera so image boxes exist
                if abs(np.arctan2(y, x)) > np.radians(40):
                    continue
                fp = np.array([x, y, max(l, w) / 2 + 0.3])
                if any(np.hypot(x - f[0], y - f[1]) < fp[2] + f[2] for f in footprints):
                    continue
                footprints.append(fp)
                R = rot_z(yaw)
                wparts = [np.concatenate([R @ p[:3] + [x, y, ground], p[3:6], [yaw]]) for p in parts]
                # annotators' boxes enclose the object with a few cm to spare (bottom on the ground)
                box = np.array([x, y, ground + (h + 0.03) / 2, l + 0.06, w + 0.06, h + 0.03, yaw])
                objects.append((cls, box, wparts))
                break
    # background: facades on both sides of the street and a few poles
    bg = []
    for side in (-1, 1):
        off = road_half + r.uniform(3.0, 8.0)
        xs = -40.0
        while xs < 80.0:
            length = r.uniform(8, 25)
            depth = r.uniform(4, 10)
            bg.append(np.array([xs + length / 2, side * (off + depth / 2), ground + 5, length - r.uniform(0, 3), depth, 10, 0]))
            xs += length
    for _ in range(int(r.integers(4, 10))):
        bg.append(np.array([r.uniform(-30, 60), r.choice([-1, 1]) * (road_half + r.uniform(0.5, 2.5)), ground + 2.5, 0.25, 0.25, 5, 0]))

    part_boxes = [p for _, _, ps in objects for p in ps] + bg
    part_owner = [i for i, (_, _, ps) in enumerate(objects) for _ in ps] + [-1] * len(bg)
    part_boxes = np.array(part_boxes)
    part_owner = np.array(part_owner)

    elev = np.radians(np.linspace(2.0, -24.8, beams))
    az = np.linspace(-np.pi, np.pi, azimuth_steps, endpoint=False) + r.uniform(0, 2 * np.pi / azimuth_steps)
    E, A = np.meshgrid(elev, az, indexing="ij")
    dirs = np.stack([np.cos(E) * np.cos(A), np.cos(E) * np.sin(A), np.sin(E)], -1).reshape(-1, 3)
    origin = np.zeros(3)
    t_box, hit, normal = cast_boxes(origin, dirs, part_boxes, max_t=80.0)
    t_ground = cast_plane_z(origin, dirs, ground)
    use_ground = t_ground < t_box
    t = np.where(use_ground, t_ground, t_box)
    valid = np.isfinite(t) & (t <= 80.0) & (r.random(len(t)) > 0.05)
    t = t + r.normal(0, 0.015, len(t))
    pts = dirs * t[:, None]
    owner = np.where(use_ground, -1, part_owner[np.maximum(hit, 0)])
    normal[use_ground] = [0, 0, 1]
    incid = np.abs((normal * dirs).sum(1))
    base = np.where(use_ground, 0.25, np.where(owner >= 0, 0.45, 0.3))
    intensity = np.clip(base * (0.5 + 0.5 * incid) + r.normal(0, 0.05, len(t)), 0, 0.99)
    # KITTI-style occlusion from the LiDAR: share of the rays that would hit an object if it
    # stood alone whose first return is that object; only the rays in the cone around the
    # object's bounding sphere are cast (its parts lie inside its box)
    occluded = np.full(len(objects), 3, np.int64)
    for k, (_, box, ps) in enumerate(objects):
        dist, radius = np.linalg.norm(box[:3]), 0.5 * np.linalg.norm(box[3:6])
        cone = np.flatnonzero(dirs @ box[:3] >= dist * np.sqrt(max(1 - (radius / dist) ** 2, 0.0))) if dist > radius \
            else np.arange(len(dirs))
        alone_t, _, _ = cast_boxes(origin, dirs[cone], np.array(ps), max_t=80.0)
        alone = cone[np.isfinite(alone_t) & (alone_t < t_ground[cone])]
        if len(alone):
            seen = (owner[alone] == k).mean()
            occluded[k] = 0 if seen >= 0.8 else 1 if seen >= 0.4 else 2 if seen > 0 else 3
    pts, owner, intensity = pts[valid], owner[valid], intensity[valid]

    class_idx = {c: i for i, c in enumerate(KITTI_CLASSES)}
    boxes = np.array([b for _, b, _ in objects]).reshape(-1, 7)
    box_labels = np.array([class_idx[c] for c, _, _ in objects], np.int64)
    # labels follow KITTI's convention: a point belongs to the object whose box contains it
    # (ground points under a car included), everything else is background
    inside = points_in_boxes(pts, boxes) if len(boxes) else np.zeros((len(pts), 0), bool)
    owner = np.where(inside.any(1), inside.argmax(1), -1)
    semantic = np.where(owner >= 0, box_labels[np.maximum(owner, 0)] if len(box_labels) else 3, class_idx["background"])
    scene = Scene(name=scene_name(f"synthetic-lidar:{seed}"), coord=pts.astype(np.float32), classes=KITTI_CLASSES,
                  intensity=intensity.astype(np.float32), semantic=semantic, instance=owner.astype(np.int64),
                  boxes=boxes.astype(np.float32), box_labels=box_labels, calib=DEFAULT_CALIB,
                  extras={"box_type": np.array([c for c, _, _ in objects], dtype=np.str_).reshape(-1)},
                  meta={"dataset": "synthetic", "synthetic": True, "seed": int(seed), "lidar": True, "image_size": list(IMAGE_SIZE)})
    K, pose = DEFAULT_CALIB.camera_pose()
    # KITTI-style per-box annotation: projected 2D boxes (clipped to the image), truncation (share
    # of the unclipped 2D box outside the image; 1 behind the camera) and occlusion (above)
    from ..camera import project
    from ..geometry import box_corners
    bb, trunc = [], []
    for corners in box_corners(boxes):
        uv, z = project(corners, K, pose)
        if (z <= 0.1).any():
            bb.append([-1.0, -1.0, -1.0, -1.0])
            trunc.append(1.0)
            continue
        lo = np.clip(uv.min(0), 0, [IMAGE_SIZE[1] - 1, IMAGE_SIZE[0] - 1])
        hi = np.clip(uv.max(0), 0, [IMAGE_SIZE[1] - 1, IMAGE_SIZE[0] - 1])
        bb.append([lo[0], lo[1], hi[0], hi[1]])
        full = np.prod(np.maximum(uv.max(0) - uv.min(0), 1e-6))
        trunc.append(float(1 - np.prod(np.maximum(hi - lo, 0)) / full))
    scene.extras.update({"box_bbox2d": np.array(bb, np.float32).reshape(-1, 4), "box_occluded": occluded,
                         "box_truncated": np.array(trunc, np.float32).reshape(-1), "dontcare_bbox2d": np.zeros((0, 4), np.float32)})
    colours = np.array([[0.8, 0.1, 0.1], [0.1, 0.6, 0.9], [0.9, 0.7, 0.1]])
    obj_colour = np.array([colours[class_idx[c]] for c, _, _ in objects]).reshape(-1, 3)
    part_colour = np.array([obj_colour[o] if o >= 0 else [0.55, 0.55, 0.5] for o in part_owner])

    drawn: list[np.ndarray] = []

    def render() -> np.ndarray:  # drawn on first use (seconds), then kept: one image per frame
        if not drawn:
            drawn.append(_render_image(K, pose, part_boxes, part_colour, ground, seed))
        return drawn[0].copy()

    scene.frames = [Frame(name="image_2", pose=pose, intrinsics=K, image=render)]
    return scene


def _render_image(K: np.ndarray, pose: np.ndarray, part_boxes: np.ndarray, part_colour: np.ndarray,
                  ground: float, seed: int) -> np.ndarray:
    h, w = IMAGE_SIZE
    dirs, origin = pixel_rays(K, pose, h, w)
    t_box, hit, normal = cast_boxes(origin, dirs, part_boxes, max_t=150.0)
    t_ground = cast_plane_z(origin, dirs, ground)
    rgb = np.tile([0.6, 0.75, 0.95], (len(dirs), 1))  # sky
    g = t_ground < t_box
    rgb[g] = [0.35, 0.35, 0.37]
    b = ~g & (hit >= 0)
    shade = 0.55 + 0.45 * np.abs(normal[b] @ np.array([0.3, 0.4, 0.87]))
    rgb[b] = part_colour[hit[b]] * shade[:, None]
    rgb += np.random.default_rng(seed + 7).normal(0, 0.015, rgb.shape)
    return (np.clip(rgb, 0, 1).reshape(h, w, 3) * 255 + 0.5).astype(np.uint8)

