"""Procedural indoor rooms (SYNTHETIC data, not a real scan).

A room is a union of oriented boxes: floor, four walls, wall-mounted objects (doors, windows,
pictures, curtains) and furniture built from parts (tables with legs, chairs with backs, sofas
with arms, beds with headboards, shelves, ...), labelled with the ScanNet-20 classes. Points are
sampled on the visible box surfaces with a density that falls off with distance from a few
virtual scanner positions, with surface noise; colours are per-instance with shading and noise;
the over-segmentation cuts every surface into patches that never cross an instance. RGB-D
frames are ray-cast from posed cameras inside the room. Everything is a function of ``seed``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..geometry import points_in_boxes, rot_z
from ..scene import Frame, Scene
from ..classes import SCANNET20
from .address import scene_name
from .raycast import cast_boxes, look_at, pixel_rays

C = {n: i for i, n in enumerate(SCANNET20)}

_BASE_COLOUR = {
    "wall": (0.82, 0.80, 0.74), "floor": (0.55, 0.42, 0.30), "cabinet": (0.60, 0.45, 0.30),
    "bed": (0.85, 0.85, 0.90), "chair": (0.30, 0.30, 0.35), "sofa": (0.35, 0.45, 0.60),
    "table": (0.65, 0.50, 0.35), "door": (0.70, 0.60, 0.45), "window": (0.70, 0.85, 0.95),
    "bookshelf": (0.50, 0.35, 0.22), "picture": (0.80, 0.30, 0.30), "counter": (0.75, 0.75, 0.72),
    "desk": (0.55, 0.40, 0.28), "curtain": (0.70, 0.55, 0.70), "refrigerator": (0.90, 0.90, 0.92),
    "shower curtain": (0.85, 0.90, 0.95), "toilet": (0.95, 0.95, 0.95), "sink": (0.90, 0.92, 0.95),
    "bathtub": (0.93, 0.93, 0.96), "otherfurniture": (0.45, 0.55, 0.40),
}


@dataclass
class _Obj:
    cls: str
    parts: list[np.ndarray]  # boxes in the object frame (origin on the floor, centre of footprint)
    pos: np.ndarray  # (3,) world position of the object frame
    yaw: float

    def world_parts(self) -> list[np.ndarray]:
        R = rot_z(self.yaw)
        return [np.concatenate([R @ p[:3] + self.pos, p[3:6], [p[6] + self.yaw]]) for p in self.parts]

    def world_box(self) -> np.ndarray:
        P = np.array(self.parts)
        lo = (P[:, :3] - P[:, 3:6] / 2).min(0)
        hi = (P[:, :3] + P[:, 3:6] / 2).max(0)
        c = rot_z(self.yaw) @ ((lo + hi) / 2) + self.pos
        return np.concatenate([c, hi - lo, [self.yaw]])


def _b(cx, cy, cz, dx, dy, dz) -> np.ndarray:
    return np.array([cx, cy, cz, dx, dy, dz, 0.0])


# -- furniture builders: parts in the object frame, footprint centred at (0,0), floor at z=0;
#    the object's "front" faces -y (its back is at +y, against a wall when wall-mounted).

def _table(r, cls="table"):
    w, d, h = r.uniform(1.0, 1.8), r.uniform(0.7, 1.0), r.uniform(0.70, 0.78)
    parts = [_b(0, 0, h - 0.02, w, d, 0.04)]
    for sx in (-1, 1):
        for sy in (-1, 1):
            parts.append(_b(sx * (w / 2 - 0.06), sy * (d / 2 - 0.06), (h - 0.04) / 2, 0.05, 0.05, h - 0.04))
    return parts


def _desk(r):
    w, d, h = r.uniform(1.1, 1.6), r.uniform(0.6, 0.8), 0.75
    return [_b(0, 0, h - 0.015, w, d, 0.03), _b(-w / 2 + 0.015, 0, (h - 0.03) / 2, 0.03, d, h - 0.03),
            _b(w / 2 - 0.015, 0, (h - 0.03) / 2, 0.03, d, h - 0.03)]


def _chair(r):
    s, h = r.uniform(0.42, 0.5), r.uniform(0.43, 0.48)
    parts = [_b(0, 0, h - 0.025, s, s, 0.05)]
    for sx in (-1, 1):
        for sy in (-1, 1):
            parts.append(_b(sx * (s / 2 - 0.03), sy * (s / 2 - 0.03), (h - 0.05) / 2, 0.035, 0.035, h - 0.05))
    bh = r.uniform(0.35, 0.5)
    parts.append(_b(0, s / 2 - 0.02, h + bh / 2, s, 0.04, bh))
    return parts


def _sofa(r):
    w, d = r.uniform(1.6, 2.3), r.uniform(0.8, 0.95)
    return [_b(0, 0, 0.21, w - 0.3, d, 0.42), _b(0, d / 2 - 0.1, 0.42 + 0.2, w, 0.2, 0.4),
            _b(-w / 2 + 0.075, 0, 0.3, 0.15, d, 0.6), _b(w / 2 - 0.075, 0, 0.3, 0.15, d, 0.6)]


def _bed(r):
    w, l = r.uniform(1.3, 1.8), r.uniform(1.95, 2.1)
    return [_b(0, 0, 0.15, w, l, 0.3), _b(0, -0.02, 0.4, w - 0.06, l - 0.1, 0.2),
            _b(0, l / 2 + 0.04, 0.5, w + 0.04, 0.08, 1.0)]


def _shelf(r):
    w, d, h = r.uniform(0.8, 1.2), r.uniform(0.3, 0.4), r.uniform(1.6, 2.0)
    parts = [_b(-w / 2 + 0.01, 0, h / 2, 0.02, d, h), _b(w / 2 - 0.01, 0, h / 2, 0.02, d, h),
             _b(0, d / 2 - 0.01, h / 2, w - 0.04, 0.02, h)]
    for k in range(5):
        parts.append(_b(0, 0, 0.02 + k * (h - 0.04) / 4, w - 0.04, d, 0.02))
    return parts


def _block(r, wr, dr, hr):
    w, d, h = r.uniform(*wr), r.uniform(*dr), r.uniform(*hr)
    return [_b(0, 0, h / 2, w, d, h)]


def _toilet(r):
    return [_b(0, -0.05, 0.2, 0.38, 0.5, 0.4), _b(0, 0.25, 0.6, 0.45, 0.2, 0.4)]


_FURNITURE = {  # class: (builder, against a wall?, weight)
    "bed": (_bed, True, 1.0), "sofa": (_sofa, True, 1.0), "bookshelf": (_shelf, True, 1.0),
    "cabinet": (lambda r: _block(r, (0.6, 1.2), (0.4, 0.6), (0.7, 1.0)), True, 1.5),
    "refrigerator": (lambda r: _block(r, (0.65, 0.8), (0.65, 0.75), (1.7, 1.9)), True, 0.5),
    "counter": (lambda r: _block(r, (1.4, 2.4), (0.6, 0.65), (0.88, 0.92)), True, 0.6),
    "desk": (_desk, True, 1.0), "toilet": (_toilet, True, 0.4),
    "sink": (lambda r: _block(r, (0.5, 0.7), (0.45, 0.55), (0.8, 0.88)), True, 0.4),
    "bathtub": (lambda r: _block(r, (0.7, 0.8), (1.5, 1.7), (0.5, 0.6)), True, 0.3),
    "otherfurniture": (lambda r: _block(r, (0.3, 0.7), (0.3, 0.6), (0.3, 0.9)), False, 1.0),
    "table": (_table, False, 1.2),
}


def _footprint(obj: _Obj, pad: float) -> np.ndarray:
    box = obj.world_box()
    c, s = abs(np.cos(box[6])), abs(np.sin(box[6]))
    ex = (box[3] * c + box[4] * s) / 2 + pad
    ey = (box[3] * s + box[4] * c) / 2 + pad
    return np.array([box[0] - ex, box[1] - ey, box[0] + ex, box[1] + ey])


def _overlaps(a: np.ndarray, fps: list[np.ndarray]) -> bool:
    return any(a[0] < f[2] and f[0] < a[2] and a[1] < f[3] and f[1] < a[3] for f in fps)


def _layout(r: np.random.Generator, W: float, L: float, H: float) -> list[_Obj]:
    objs: list[_Obj] = []
    fps: list[np.ndarray] = []
    walls = [  # (yaw of an object whose back is against this wall, point on wall, along-axis)
        (np.pi, lambda t: np.array([t, 0.0]), W), (0.0, lambda t: np.array([t, L]), W),
        (np.pi / 2, lambda t: np.array([0.0, t]), L), (-np.pi / 2, lambda t: np.array([W, t]), L)]
    # wall-mounted thin objects first (they do not block the floor except doors)
    for cls, count in (("door", r.integers(1, 3)), ("window", r.integers(1, 3)), ("picture", r.integers(0, 3))):
        for _ in range(count):
            yaw, at, length = walls[r.integers(4)]
            if cls == "door":
                w, h, z0, th = 0.9, 2.05, 0.0, 0.04
            elif cls == "window":
                w, h, z0, th = r.uniform(0.9, 1.6), r.uniform(1.0, 1.4), r.uniform(0.8, 1.0), 0.04
            else:
                w, h, z0, th = r.uniform(0.4, 1.0), r.uniform(0.3, 0.8), r.uniform(1.2, 1.6), 0.025
            t = r.uniform(w / 2 + 0.15, length - w / 2 - 0.15)
            p = at(t)
            inward = rot_z(yaw) @ np.array([0.0, -1.0, 0.0])
            pos = np.array([p[0], p[1], 0.0]) + inward * (th / 2 - 0.005)
            o = _Obj(cls, [_b(0, 0, z0 + h / 2, w, th, h)], pos, yaw)
            fp = _footprint(o, 0.05)
            if _overlaps(fp, fps) and cls != "picture":
                continue
            objs.append(o)
            if cls == "door":
                fps.append(_footprint(o, 0.6))
            elif cls == "window" and r.random() < 0.5:  # a curtain beside the window
                cw = r.uniform(0.3, 0.6)
                side = np.sign(r.random() - 0.5)
                cpos = pos + rot_z(yaw) @ np.array([side * (w / 2 + cw / 2 + 0.02), 0.0, 0.0]) + inward * 0.06
                c = _Obj("curtain", [_b(0, 0, (H - 0.2) / 2 + 0.05, cw, 0.06, H - 0.3)], cpos, yaw)
                if not _overlaps(_footprint(c, 0.0), fps):
                    objs.append(c)
                    fps.append(_footprint(c, 0.02))
    names = list(_FURNITURE)
    weights = np.array([_FURNITURE[n][2] for n in names])
    n_furniture = int(r.integers(6, 12))
    for _ in range(n_furniture * 6):
        if sum(o.cls in _FURNITURE for o in objs) >= n_furniture:
            break
        cls = names[r.choice(len(names), p=weights / weights.sum())]
        builder, on_wall, _w = _FURNITURE[cls]
        parts = builder(r)
        if on_wall:
            yaw, at, length = walls[r.integers(4)]
            P = np.array(parts)
            depth_back = (P[:, 1] + P[:, 4] / 2).max()
            t = r.uniform(0.6, length - 0.6)
            p = at(t)
            inward = rot_z(yaw) @ np.array([0.0, -1.0, 0.0])
            pos = np.array([p[0], p[1], 0.0]) + inward * (depth_back + 0.01)
        else:
            yaw = r.uniform(-np.pi, np.pi)
            pos = np.array([r.uniform(0.8, W - 0.8), r.uniform(0.8, L - 0.8), 0.0])
        o = _Obj(cls, parts, pos, yaw)
        fp, tight = _footprint(o, 0.05), _footprint(o, 0.0)
        if tight[0] < -0.02 or tight[1] < -0.02 or tight[2] > W + 0.02 or tight[3] > L + 0.02 or _overlaps(fp, fps):
            continue
        objs.append(o)
        fps.append(fp)
        if cls in ("table", "desk"):  # chairs around tables and in front of desks
            box = o.world_box()
            seats = [(0, -1), (0, 1), (-1, 0), (1, 0)] if cls == "table" else [(0, -1)]
            for sx, sy in seats[: int(r.integers(1, len(seats) + 1))]:
                off = np.array([sx * (box[3] / 2 + 0.3), sy * (box[4] / 2 + 0.3), 0.0])
                cpos = pos + rot_z(yaw) @ off
                cyaw = yaw + np.arctan2(-sx, sy) + np.pi + r.normal(0, 0.15)
                ch = _Obj("chair", _chair(r), cpos, cyaw)
                cfp = _footprint(ch, 0.0)
                if cfp[0] > 0.05 and cfp[1] > 0.05 and cfp[2] < W - 0.05 and cfp[3] < L - 0.05 and not _overlaps(cfp, fps):
                    objs.append(ch)
                    fps.append(cfp)
    return objs


def _sample_faces(box: np.ndarray, density: float, r: np.random.Generator):
    """Uniform samples on the 6 faces of one box: points (P,3), normals (P,3), face id, (u,v)."""
    h = box[3:6] / 2
    R = rot_z(box[6])
    pts, nrm, fid, uv = [], [], [], []
    for axis in range(3):
        a1, a2 = [k for k in range(3) if k != axis]
        area = 4 * h[a1] * h[a2]
        for sign in (-1.0, 1.0):
            n = r.poisson(area * density)
            if n == 0:
                continue
            loc = np.empty((n, 3))
            loc[:, axis] = sign * h[axis]
            loc[:, a1] = r.uniform(-h[a1], h[a1], n)
            loc[:, a2] = r.uniform(-h[a2], h[a2], n)
            nl = np.zeros(3)
            nl[axis] = sign
            pts.append(loc @ R.T + box[:3])
            nrm.append(np.tile(R @ nl, (n, 1)))
            fid.append(np.full(n, axis * 2 + (sign > 0)))
            uv.append(loc[:, [a1, a2]] + h[[a1, a2]])
    if not pts:
        z = np.zeros((0, 3))
        return z, z, np.zeros(0, np.int64), np.zeros((0, 2))
    return np.concatenate(pts), np.concatenate(nrm), np.concatenate(fid), np.concatenate(uv)


def synthetic_room(seed: int = 0, density: float = 900.0, n_frames: int = 8,
                   frame_size: tuple[int, int] = (240, 320), noise: float = 0.004,
                   segment_size: float = 0.35) -> Scene:
    """A SYNTHETIC indoor room (ScanNet-20 classes) as a ``Scene``.

    Args:
        seed: all randomness; the same seed gives the same scene bit for bit.
        density: surface samples per m^2 next to a scanner (falls off with distance).
        n_frames: RGB-D frames ray-cast from random poses inside the room (0 for none).
        frame_size: (height, width) of the frames; intrinsics follow ScanNet's depth camera FOV.
        noise: std of the surface noise (m).
        segment_size: edge of the over-segmentation patches (m).
    """
    r = np.random.default_rng(seed)
    W, L, H = r.uniform(4.0, 7.5), r.uniform(4.0, 7.0), r.uniform(2.6, 3.0)
    t = 0.1
    stuff = [("floor", _b(W / 2, L / 2, -0.05, W, L, 0.1)),
             ("wall", _b(W / 2, -t / 2, H / 2, W + 2 * t, t, H)), ("wall", _b(W / 2, L + t / 2, H / 2, W + 2 * t, t, H)),
             ("wall", _b(-t / 2, L / 2, H / 2, t, L, H)), ("wall", _b(W + t / 2, L / 2, H / 2, t, L, H))]
    objs = _layout(r, W, L, H)

    part_boxes, part_inst, part_cls = [], [], []
    inst_cls, inst_box = [], []
    for cls, box in stuff:
        inst_cls.append(cls)
        inst_box.append(box)
        part_boxes.append(box)
        part_inst.append(len(inst_cls) - 1)
        part_cls.append(cls)
    for o in objs:
        inst_cls.append(o.cls)
        inst_box.append(o.world_box())
        for p in o.world_parts():
            part_boxes.append(p)
            part_inst.append(len(inst_cls) - 1)
            part_cls.append(o.cls)
    part_boxes = np.array(part_boxes)
    colours = np.array([np.clip(np.array(_BASE_COLOUR[c]) + r.normal(0, 0.06, 3), 0.05, 0.95) for c in inst_cls])

    scanners = np.array([[r.uniform(1, W - 1), r.uniform(1, L - 1), 1.4] for _ in range(3)])
    P, N, I, S, PART = [], [], [], [], []
    seg_offset = 0
    for k, box in enumerate(part_boxes):
        pts, nrm, fid, uv = _sample_faces(box, density, r)
        if not len(pts):
            continue
        keep = (pts[:, 0] > -1e-3) & (pts[:, 0] < W + 1e-3) & (pts[:, 1] > -1e-3) & (pts[:, 1] < L + 1e-3) & (pts[:, 2] > -1e-3) & (pts[:, 2] < H + 1e-3)
        others = np.delete(part_boxes, k, axis=0)
        inside_other = points_in_boxes(pts, others, margin=-0.002).any(axis=1) if len(others) else np.zeros(len(pts), bool)
        keep &= ~inside_other
        dist = np.linalg.norm(pts[:, None, :] - scanners[None], axis=2).min(1)
        keep &= r.random(len(pts)) < np.clip((1.8 / np.maximum(dist, 1e-3)) ** 2, 0.12, 1.0)
        pts, nrm, fid, uv = pts[keep], nrm[keep], fid[keep], uv[keep]
        cell = np.floor(uv / segment_size).astype(np.int64)
        key = fid * 1_000_000 + cell[:, 0] * 1000 + cell[:, 1]
        _, seg = np.unique(key, return_inverse=True)
        P.append(pts)
        N.append(nrm)
        I.append(np.full(len(pts), part_inst[k]))
        S.append(seg.ravel() + seg_offset)
        PART.append(np.full(len(pts), k))
        seg_offset += int(seg.max()) + 1 if len(seg) else 0
    coord = np.concatenate(P)
    normal = np.concatenate(N)
    instance = np.concatenate(I).astype(np.int64)
    _, segment = np.unique(np.concatenate(S), return_inverse=True)
    coord = coord + normal * r.normal(0, noise, (len(coord), 1)) + r.normal(0, noise / 2, coord.shape)
    semantic = np.array([C[c] for c in inst_cls])[instance]
    light = np.array([0.3, 0.2, 0.93])
    shade = 0.6 + 0.4 * np.abs(normal @ (light / np.linalg.norm(light)))
    color = np.clip(colours[instance] * shade[:, None] + r.normal(0, 0.025, coord.shape), 0, 1)

    obj_ids = [i for i, c in enumerate(inst_cls) if c not in ("wall", "floor")]
    present = np.isin(obj_ids, np.unique(instance))
    obj_ids = [i for i, p in zip(obj_ids, present) if p]
    scene = Scene(
        name=scene_name(f"synthetic:{seed}"), coord=coord.astype(np.float32), classes=SCANNET20,
        color=color.astype(np.float32), normal=normal.astype(np.float32), semantic=semantic,
        instance=instance, segment=segment.ravel(),
        boxes=np.array([inst_box[i] for i in obj_ids], np.float32).reshape(-1, 7),
        box_labels=np.array([C[inst_cls[i]] for i in obj_ids], np.int64),
        meta={"dataset": "synthetic", "synthetic": True, "seed": int(seed), "room_size": [round(W, 3), round(L, 3), round(H, 3)]},
    )
    scene.frames = _render_frames(r, part_boxes, colours[np.array(part_inst)], W, L, n_frames, frame_size)
    return scene


def _render_frames(r: np.random.Generator, part_boxes: np.ndarray, part_colour: np.ndarray,
                   W: float, L: float, n: int, size: tuple[int, int]) -> list[Frame]:
    h, w = size
    f = 0.9 * w  # ScanNet's depth camera: fx ~ 577 at 640 px
    K = np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1.0]])
    frames = []
    for i in range(n):
        for _ in range(50):
            pos = np.array([r.uniform(0.5, W - 0.5), r.uniform(0.5, L - 0.5), r.uniform(1.3, 1.7)])
            if not points_in_boxes(pos[None], part_boxes, margin=0.3).any():
                break
        target = np.array([r.uniform(0, W), r.uniform(0, L), r.uniform(0.3, 1.2)])
        if np.linalg.norm(target[:2] - pos[:2]) < 1.0:
            target[:2] = pos[:2] + 1.5 * (target[:2] - pos[:2] + 1e-3) / (np.linalg.norm(target[:2] - pos[:2]) + 1e-3)
        pose = look_at(pos, target)
        dirs, origin = pixel_rays(K, pose, h, w)
        t, hit, normal = cast_boxes(origin, dirs, part_boxes, max_t=12.0)
        depth = np.where(hit >= 0, t, 0.0).reshape(h, w)  # z-depth: the ray's camera-z is 1
        depth = (np.round(depth * 1000) / 1000).astype(np.float32)
        light = np.array([0.3, 0.2, 0.93]) / np.linalg.norm([0.3, 0.2, 0.93])
        shade = 0.6 + 0.4 * np.abs(normal @ light)
        rgb = np.where((hit >= 0)[:, None], part_colour[np.maximum(hit, 0)] * shade[:, None], 0.0)
        rgb = np.clip(rgb + r.normal(0, 0.02, rgb.shape), 0, 1)
        image = (rgb.reshape(h, w, 3) * 255 + 0.5).astype(np.uint8)
        frames.append(Frame(name=str(i * 10), pose=pose, intrinsics=K, image=image, depth=depth))
    return frames
