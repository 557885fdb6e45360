"""KITTI object files: ``label_2`` ground truth and detection results, in the rectified camera frame.

One line per object, as KITTI's object devkit reads them: ``type truncated occluded alpha
x1 y1 x2 y2 h w l x y z rotation_y`` and, in result files, a 16th field ``score``. Image boxes are
pixels (x1, y1, x2, y2); dimensions ``h w l`` and the location (the bottom centre of the box)
are metres in the rectified camera frame (x right, y down, z forward); ``rotation_y`` turns
about the camera's y axis. DontCare regions are objects of type ``DontCare``.

Also here: the conversion between these boxes and pcweak's LiDAR-frame boxes
``[cx, cy, cz, l, w, h, yaw]`` (exact, through ``Tr_velo_to_cam`` and ``R0_rect``), and the image
box of a 3D box (its corners projected with ``P2``, clipped to the image), so readers, tasks and
metrics share one definition.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from .errors import ReaderError
from .geometry import projected_hull
from .npzio import atomic_write_bytes
from .scene import KittiCalib, summary_repr
from .textio import read_text

GT_FIELDS = 15
IMAGE_SIZE = (375, 1242)  # (height, width) of most of KITTI's image_2
RESULT_FIELDS = 16


@dataclass
class KittiObjects:
    """A frame's objects. ``type`` (K,) str; ``truncated`` (K,) float64 in [0,1];
    ``occluded`` (K,) int64 (0 visible .. 3 unknown); ``alpha`` (K,) observation angle (rad;
    -10 = not given); ``bbox`` (K,4) float64 pixels; ``hwl`` (K,3) float64 m; ``loc`` (K,3)
    float64 m; ``ry`` (K,) float64 rad; ``score`` (K,) float64 for detections, None for ground truth."""

    type: np.ndarray
    truncated: np.ndarray
    occluded: np.ndarray
    alpha: np.ndarray
    bbox: np.ndarray
    hwl: np.ndarray
    loc: np.ndarray
    ry: np.ndarray
    score: np.ndarray | None = None

    __repr__ = summary_repr

    def __len__(self) -> int:
        return len(self.type)

    @staticmethod
    def empty(detections: bool = False) -> "KittiObjects":
        z = np.zeros(0)
        return KittiObjects(np.zeros(0, np.str_), z, np.zeros(0, np.int64), z, np.zeros((0, 4)), np.zeros((0, 3)),
                            np.zeros((0, 3)), z, z.copy() if detections else None)

    def _arrays(self) -> list[np.ndarray | None]:
        return [getattr(self, f.name) for f in fields(self)]

    def select(self, keep: np.ndarray) -> "KittiObjects":
        """The objects at ``keep`` (bool mask or indices)."""
        return KittiObjects(*(None if v is None else np.asarray(v)[keep] for v in self._arrays()))

    def concat(self, other: "KittiObjects") -> "KittiObjects":
        """These objects followed by ``other``'s (both detections, or both ground truth)."""
        if (self.score is None) != (other.score is None):
            raise ValueError("KittiObjects.concat: one side has scores (detections), the other not (ground truth)")
        return KittiObjects(*(None if a is None else np.concatenate([a, b]) for a, b in zip(self._arrays(), other._arrays())))


def read_objects(path: str | os.PathLike, results: bool = False) -> KittiObjects:
    """Parse a ``label_2`` file (``results=False``: 15 fields per line) or a result file (16, the
    last the score). An empty file is a frame without objects. Errors name the file and line;
    a line of more fields is refused too (the devkit would read them as the next object's)."""
    path = Path(path)
    if not path.is_file():
        raise ReaderError(f"{path}: {'detection result' if results else 'label'} file not found")
    want = RESULT_FIELDS if results else GT_FIELDS
    rows, types = [], []
    for ln, line in enumerate(read_text(path, "a KITTI result file" if results else "a KITTI label_2 file").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != want:  # more: the devkit's fscanf would read the extra fields as the next object's
            hint = (": a label_2 ground-truth line; give the detector's result files, whose lines end in a score"
                    if results and len(parts) == GT_FIELDS  # ground truth scored as detections would match itself
                    else ": a result line (it ends in a score); ground truth has none"
                    if not results and len(parts) == RESULT_FIELDS else "")
            raise ReaderError(f"{path}:{ln}: expected {want} fields (type, truncated, occluded, alpha, 2D box x4, h w l, x y z, "
                              f"rotation_y{', score' if results else ''}), got {len(parts)}{hint}")
        try:
            v = [float(x) for x in parts[1:want]]
        except ValueError as e:
            raise ReaderError(f"{path}:{ln}: non-numeric field ({e})") from e
        if not np.isfinite(v).all():
            raise ReaderError(f"{path}:{ln}: NaN or infinite value")
        types.append(parts[0])
        rows.append(v if results else v + [np.nan])
    a = np.array(rows, np.float64).reshape(-1, RESULT_FIELDS - 1)
    return KittiObjects(type=np.array(types, dtype=np.str_).reshape(-1), truncated=a[:, 0], occluded=a[:, 1].astype(np.int64),
                        alpha=a[:, 2], bbox=a[:, 3:7], hwl=a[:, 7:10], loc=a[:, 10:13], ry=a[:, 13],
                        score=a[:, 14] if results else None)


def format_objects(objs: KittiObjects) -> str:
    """The file text of ``objs`` (``repr`` floats: reading it back gives the same numbers)."""
    out = []
    for k in range(len(objs)):
        f = [objs.truncated[k], int(objs.occluded[k]), objs.alpha[k], *objs.bbox[k], *objs.hwl[k], *objs.loc[k], objs.ry[k]]
        if objs.score is not None:
            f.append(objs.score[k])
        out.append(" ".join([str(objs.type[k])] + [str(int(x)) if i == 1 else repr(float(x)) for i, x in enumerate(f)]))
    return "".join(line + "\n" for line in out)


def write_objects(path: str | os.PathLike, objs: KittiObjects) -> Path:
    """Write ``objs`` to ``path`` atomically (temporary file + rename), with the umask's mode."""
    return atomic_write_bytes(path, format_objects(objs).encode())


def camera_to_lidar_boxes(loc: np.ndarray, hwl: np.ndarray, ry: np.ndarray, calib: KittiCalib) -> np.ndarray:
    """(M,7) float64 LiDAR boxes ``[cx,cy,cz,l,w,h,yaw]`` from camera-frame boxes (bottom-centre
    ``loc`` (M,3), ``hwl`` (M,3), ``ry`` (M,)); the heading goes through the exact rect -> LiDAR
    rotation, not just ``-ry - pi/2``."""
    loc, hwl, ry = (np.asarray(x, np.float64) for x in (loc, hwl, ry))
    c = loc - np.stack([np.zeros(len(loc)), hwl[:, 0] / 2, np.zeros(len(loc))], 1)  # camera y points down
    cl = calib.rect_to_lidar(c)
    head = calib.rect_to_lidar(np.stack([np.cos(ry), np.zeros(len(ry)), -np.sin(ry)], 1) + c) - cl
    yaw = np.arctan2(head[:, 1], head[:, 0])
    return np.concatenate([cl, hwl[:, [2, 1, 0]], yaw[:, None]], 1).reshape(-1, 7)


def lidar_to_camera_boxes(boxes: np.ndarray, calib: KittiCalib) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of ``camera_to_lidar_boxes``: (M,3) bottom-centre location, (M,3) h w l, (M,) rotation_y."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 7)
    c = calib.lidar_to_rect(boxes[:, :3])
    loc = c + np.stack([np.zeros(len(c)), boxes[:, 5] / 2, np.zeros(len(c))], 1)
    head = calib.lidar_to_rect(boxes[:, :3] + np.stack([np.cos(boxes[:, 6]), np.sin(boxes[:, 6]), np.zeros(len(c))], 1)) - c
    ry = np.arctan2(-head[:, 2], head[:, 0])
    return loc, boxes[:, [5, 4, 3]], ry


def image_boxes(loc: np.ndarray, hwl: np.ndarray, ry: np.ndarray, P2: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """(M,4) image boxes of camera-frame 3D boxes: the corners in front of the camera (depth >
    0.1 m) projected with ``P2`` (3,4), their extent clipped to the image ``(height, width)``;
    ``-1`` everywhere for a box with no corner in front."""
    x = np.array([1, 1, -1, -1, 1, 1, -1, -1]) / 2
    z = np.array([1, -1, -1, 1, 1, -1, -1, 1]) / 2
    y = np.array([0, 0, 0, 0, -1, -1, -1, -1], np.float64)
    loc, hwl, ry = (np.asarray(a, np.float64) for a in (loc, hwl, ry))
    c, s = np.cos(ry)[:, None], np.sin(ry)[:, None]
    px, pz = hwl[:, 2:3] * x, hwl[:, 1:2] * z
    corners = np.stack([c * px + s * pz + loc[:, :1], hwl[:, :1] * y + loc[:, 1:2], -s * px + c * pz + loc[:, 2:3]], -1)
    return projected_hull(corners, P2, image_size)


def objects_from_lidar(boxes: np.ndarray, types: list[str] | np.ndarray, calib: KittiCalib, image_size: tuple[int, int],
                       scores: np.ndarray | None = None, truncated: np.ndarray | None = None,
                       occluded: np.ndarray | None = None, bbox: np.ndarray | None = None) -> KittiObjects:
    """``KittiObjects`` of LiDAR-frame boxes (M,7): camera-frame box, ``alpha = ry - atan2(x, z)``,
    the projected image box unless ``bbox`` is given; with ``scores`` they are detections."""
    loc, hwl, ry = lidar_to_camera_boxes(boxes, calib)
    n = len(loc)
    return KittiObjects(type=np.array([str(t) for t in types], dtype=np.str_).reshape(-1),
                        truncated=np.zeros(n) if truncated is None else np.asarray(truncated, np.float64),
                        occluded=np.zeros(n, np.int64) if occluded is None else np.asarray(occluded, np.int64),
                        alpha=ry - np.arctan2(loc[:, 0], loc[:, 2]),
                        bbox=image_boxes(loc, hwl, ry, calib.P2, image_size) if bbox is None else np.asarray(bbox, np.float64).reshape(-1, 4),
                        hwl=hwl, loc=loc, ry=ry, score=None if scores is None else np.asarray(scores, np.float64))
