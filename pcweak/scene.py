"""The data model: ``Scene``, ``Frame``, ``KittiCalib``, ``WeakLabels``, ``PseudoLabels``.

Construction validates shapes, dtypes, ranges and finiteness and raises ``SceneError`` naming
the field. Every class saves to and loads from one ``.npz`` (see README, "File formats"),
round-tripping every field; files are written atomically and deterministically.

Conventions: coordinates in metres, float32; labels int64 with -1 = unlabelled/ignored;
``classes[i]`` names label ``i``.
"""
from __future__ import annotations

import copy
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from .classes import join_class_lists, joined_class_list
from .errors import SceneError
from .geometry import FLOAT32_MILLIMETRE_RANGE_M, boxes_off_extent, column_bounds, far_coordinate_shift, float32_step
from .npzio import load_npz, npz_members, save_npz

ArrayLike = Any

# ----------------------------------------------------------------------------- validation


def to_numpy(value: ArrayLike) -> np.ndarray:
    """``value`` as a numpy array; torch tensors are detached and moved to the CPU."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch.Tensor without importing torch
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def check_color_range(where: str, color: np.ndarray) -> None:
    """Raise SceneError unless the (N,3) colours lie in [0,1]; ``where`` starts the message
    (0-255 colours would underflow every colour affinity)."""
    if color.size and (color.min() < 0 or color.max() > 1):
        raise SceneError(f"{where} values must lie in [0,1] (got {color.min():.3g}..{color.max():.3g}; "
                         "divide 0-255 colours by 255)")


def clashing_seeds(index: np.ndarray, label: np.ndarray) -> np.ndarray:
    """The distinct points of ``index`` (K,) given more than once with different ``label`` (K,)
    values, sorted: a point labelled twice two ways would be decided by the order of the arrays."""
    order = np.lexsort((label, index))
    i, lab = index[order], label[order]
    same_point = i[1:] == i[:-1]
    return np.unique(i[1:][same_point & (lab[1:] != lab[:-1])])


def check_float(owner: str, name: str, value: ArrayLike, shape: Sequence[int | None],
                dtype: Any = np.float32, finite: bool = True) -> np.ndarray:
    """Return ``value`` as a float array of ``shape`` (None = any length) or raise SceneError.

    Integer and float inputs are accepted; bool, complex, strings and objects are refused.
    """
    arr = to_numpy(value)
    if arr.dtype.kind not in "fiu":
        raise SceneError(f"{owner}.{name}: dtype {arr.dtype} cannot be cast safely to {np.dtype(dtype)}")
    _check_shape(owner, name, arr, shape)
    out = arr.astype(dtype, copy=False)
    if finite and out.size and not np.isfinite(out).all():
        bad = int((~np.isfinite(out)).reshape(len(out), -1).any(axis=1).sum()) if out.ndim else 1
        raise SceneError(f"{owner}.{name}: {bad} entries are NaN or infinite")
    return out


def check_int(owner: str, name: str, value: ArrayLike, shape: Sequence[int | None],
              low: int | None = None, high: int | None = None, dtype: Any = np.int64) -> np.ndarray:
    """Return ``value`` as an int64 array of ``shape`` with values in ``[low, high)`` or raise.

    Float arrays are refused even when integral (labels stored as floats usually hide a bug);
    unsigned and narrower signed integers are widened.
    """
    arr = to_numpy(value)
    if arr.dtype.kind == "b":
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise SceneError(f"{owner}.{name}: dtype {arr.dtype} cannot be cast safely to int64 (labels and indices must be integers)")
    if arr.dtype == np.uint64 and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise SceneError(f"{owner}.{name}: uint64 values overflow int64")
    _check_shape(owner, name, arr, shape)
    out = arr.astype(dtype, copy=False)
    if out.size:
        lo, hi = int(out.min()), int(out.max())
        if low is not None and lo < low:
            raise SceneError(f"{owner}.{name}: value {lo} is below the allowed minimum {low}")
        if high is not None and hi >= high:
            raise SceneError(f"{owner}.{name}: value {hi} is out of range (must be < {high})")
    return out


def class_names(owner: str, classes: Sequence[str]) -> tuple[str, ...]:
    """``classes`` as a tuple of names, label ``i`` named ``classes[i]``; SceneError naming
    ``owner`` for a bare string (it would read as one class per letter) or a name given twice
    (two labels that no reader, metric or picture could tell apart)."""
    if isinstance(classes, (str, bytes)):
        raise SceneError(f"{owner}.classes: a single string {classes!r}; give a list of class names")
    if isinstance(classes, np.ndarray) and classes.ndim != 1:  # e.g. a file's classes member of shape () or (4, 5)
        raise SceneError(f"{owner}.classes: an array of shape {classes.shape}; give a list of class names (one dimension)")
    names = tuple(str(c) for c in classes)
    twice = sorted({c for c in names if names.count(c) > 1})
    if twice:
        raise SceneError(f"{owner}.classes: {', '.join(map(repr, twice))} named twice; each label needs a name of its own")
    return names


def _few(names: Sequence[str], shown: int = 4) -> str:
    """The first ``shown`` of ``names`` for a message, then how many more."""
    more = f", ... {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _from_file(source: str | None, owner: str) -> str:
    """``owner`` as errors name labels: after the file they were read from, if any."""
    return f"{source}: {owner}" if source else owner


def _check_same_classes(owner: str, classes: tuple[str, ...], scene: "Scene", joined: bool = False) -> None:
    """SceneError when labels over ``classes`` meet ``scene`` with another class list (label i
    would be read as the scene's class i); an empty list on either side is taken as the other's.
    ``joined``: a list that ``classes.joined_class_list`` joins with the scene's passes too (a
    model trained on a folder's joined list labels a file that names classes up to its own
    highest label, with placeholders)."""
    if joined and joined_class_list(classes, scene.classes) is not None:
        return
    if classes and scene.classes and classes != scene.classes:
        raise SceneError(f"{owner}.classes: labels over {len(classes)} classes ({_few(classes)}) but scene "
                         f"{scene.name!r} has {len(scene.classes)} ({_few(scene.classes)})")


def _classes_with(classes: tuple[str, ...], scene: "Scene") -> tuple[str, ...]:
    """``classes`` and ``scene.classes`` joined (either alone where the other is empty); the
    scene's own where they do not join."""
    if not classes:
        return tuple(scene.classes)
    return joined_class_list(classes, scene.classes) or tuple(scene.classes)


def _check_shape(owner: str, name: str, arr: np.ndarray, shape: Sequence[int | None]) -> None:
    ok = arr.ndim == len(shape) and all(s is None or s == d for s, d in zip(shape, arr.shape))
    if not ok:
        want = "(" + ",".join("*" if s is None else str(s) for s in shape) + ")"
        raise SceneError(f"{owner}.{name}: shape {tuple(arr.shape)} does not match the expected {want}")


def _check_box_sizes(owner: str, name: str, boxes: np.ndarray | None) -> None:
    """SceneError naming ``owner``, the field ``name`` and the first box whose sizes dx, dy, dz
    ((M,7) ``boxes``, checked float) are negative; None or no boxes pass."""
    if boxes is None or not len(boxes):
        return
    bad = (boxes[:, 3:6] < 0).any(1)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        sizes = np.round(boxes[first, 3:6].astype(np.float64), 3).tolist()
        raise SceneError(f"{owner}.{name}: box {first} has sizes {sizes}; sizes dx,dy,dz must be non-negative")


def _opt(fn: Callable[..., np.ndarray], owner: str, name: str, value: ArrayLike | None, *a: Any, **kw: Any):
    return None if value is None else fn(owner, name, value, *a, **kw)


def _str_array(values: Sequence[str]) -> np.ndarray:
    return np.array(list(values), dtype=np.str_) if len(values) else np.zeros(0, dtype="<U1")


# ----------------------------------------------------------------------------- camera / calib


class Frame:
    """One posed RGB-D (or RGB) view of a scene.

    Attributes:
        name: frame stem (``"120"`` for ``color/120.jpg``).
        pose: (4,4) float64 camera-to-world (camera: x right, y down, z forward).
        intrinsics: (3,3) float64 pinhole matrix of the *depth* image (of the colour image
            when the frame has no depth).
        color_intrinsics: (3,3) float64 of the colour image when its resolution differs, else None.
        image: (H,W,3) uint8 RGB or None; depth: (h,w) float32 metres, 0 = no measurement, or None.
    Images may be given as arrays or as zero-argument loaders (read lazily, not cached), so a
    scene with thousands of frames stays small in memory.
    """

    def __init__(self, name: str, pose: ArrayLike, intrinsics: ArrayLike,
                 image: np.ndarray | Callable[[], np.ndarray] | None = None,
                 depth: np.ndarray | Callable[[], np.ndarray] | None = None,
                 color_intrinsics: ArrayLike | None = None) -> None:
        owner = f"Frame[{name}]"
        self.name = str(name)
        self.pose = check_float(owner, "pose", pose, (4, 4), np.float64)
        self.intrinsics = check_float(owner, "intrinsics", intrinsics, (3, 3), np.float64)
        self.color_intrinsics = _opt(check_float, owner, "color_intrinsics", color_intrinsics, (3, 3), np.float64)
        self._image = image
        self._depth = depth

    def projection(self) -> np.ndarray:
        """(3,4) float64 matrix from scene coordinates to pixels of ``intrinsics``
        (homogeneous: divide by the third row, the depth)."""
        return self.intrinsics @ np.linalg.inv(self.pose)[:3]

    @property
    def image(self) -> np.ndarray | None:
        img = self._image() if callable(self._image) else self._image
        if img is not None:
            img = np.asarray(img)
            if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
                raise SceneError(f"Frame[{self.name}].image: expected (H,W,3) uint8, got {img.shape} {img.dtype}")
        return img

    @property
    def depth(self) -> np.ndarray | None:
        d = self._depth() if callable(self._depth) else self._depth
        if d is not None:
            d = np.asarray(d, dtype=np.float32)
            if d.ndim != 2:
                raise SceneError(f"Frame[{self.name}].depth: expected (H,W), got {d.shape}")
        return d

    @property
    def has_depth(self) -> bool:
        return self._depth is not None

    def camera(self) -> "Frame":
        """This frame's camera (name, pose, intrinsics) without its images: what is kept of a
        frame where only projections are needed (cached training scenes)."""
        return Frame(self.name, self.pose, self.intrinsics, color_intrinsics=self.color_intrinsics)

    def world_to_camera(self) -> np.ndarray:
        """(4,4) float64 inverse of ``pose``."""
        return np.linalg.inv(self.pose)

    def __repr__(self) -> str:
        return f"Frame({self.name!r})"


SUMMARY_STRING_CHARS = 120  # longer strings in a summary's meta (a CRS record's base64, say) show their length


def _shortened(value: Any) -> Any:
    """``value`` (JSON: dicts, lists, strings, numbers) with strings over
    ``SUMMARY_STRING_CHARS`` cut to their start and length."""
    if isinstance(value, str) and len(value) > SUMMARY_STRING_CHARS:
        return f"{value[:40]}... ({len(value):,} characters)"
    if isinstance(value, dict):
        return {k: _shortened(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shortened(v) for v in value]
    return value


def summary_repr(obj: Any) -> str:
    """``Name(field=(N,3) float32, ..., name='x')``: shapes and dtypes instead of array contents,
    lengths of lists and mappings, fields that are None left out (a dataclass's ``repr``)."""
    from dataclasses import fields
    parts = []
    for f in fields(obj):
        v = getattr(obj, f.name)
        if v is None:
            continue
        if isinstance(v, np.ndarray):
            parts.append(f"{f.name}={tuple(v.shape)} {v.dtype}")
        elif isinstance(v, (list, tuple)) and len(v) > 4:
            parts.append(f"{f.name}=[{len(v)} items]")
        elif isinstance(v, Mapping):
            parts.append(f"{f.name}={{{len(v)} keys}}" if len(v) > 4 else f"{f.name}={{{', '.join(map(str, v))}}}")
        elif isinstance(v, str) and len(v) > 60:
            parts.append(f"{f.name}={v[:57]!r}...")
        else:
            parts.append(f"{f.name}={v!r}")
    return f"{type(obj).__name__}({', '.join(parts)})"


@dataclass
class KittiCalib:
    """KITTI calibration: ``P2`` (3,4), ``R0_rect`` (3,3), ``Tr_velo_to_cam`` (3,4), float64."""

    P2: np.ndarray
    R0_rect: np.ndarray
    Tr_velo_to_cam: np.ndarray

    def __post_init__(self) -> None:
        self.P2 = check_float("calib", "P2", self.P2, (3, 4), np.float64)
        self.R0_rect = check_float("calib", "R0_rect", self.R0_rect, (3, 3), np.float64)
        self.Tr_velo_to_cam = check_float("calib", "Tr_velo_to_cam", self.Tr_velo_to_cam, (3, 4), np.float64)

    def velo_to_rect_matrix(self) -> np.ndarray:
        """(4,4) float64: homogeneous LiDAR -> rectified camera 0."""
        R0 = np.eye(4)
        R0[:3, :3] = self.R0_rect
        Tr = np.eye(4)
        Tr[:3] = self.Tr_velo_to_cam
        return R0 @ Tr

    def lidar_to_rect(self, pts: np.ndarray) -> np.ndarray:
        """(N,3) LiDAR -> (N,3) rectified camera coordinates (float64)."""
        M = self.velo_to_rect_matrix()
        return np.asarray(pts, np.float64) @ M[:3, :3].T + M[:3, 3]

    def rect_to_lidar(self, pts: np.ndarray) -> np.ndarray:
        """(N,3) rectified camera -> (N,3) LiDAR coordinates (float64)."""
        M = np.linalg.inv(self.velo_to_rect_matrix())
        return np.asarray(pts, np.float64) @ M[:3, :3].T + M[:3, 3]

    def lidar_to_image(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project (N,3) LiDAR points into image_2: returns uv (N,2) float64 and depth (N,)."""
        rect = self.lidar_to_rect(pts)
        uvw = rect @ self.P2[:, :3].T + self.P2[:, 3]
        depth = uvw[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = uvw[:, :2] / depth[:, None]
        return uv, depth

    def camera_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """image_2 as a pinhole camera in the LiDAR frame: (K (3,3), camera-to-LiDAR pose (4,4)).

        P2 = K [I | t] up to the stereo baseline, so t = K^-1 P2[:, 3].
        """
        K = self.P2[:, :3].copy()
        t = np.linalg.solve(K, self.P2[:, 3])
        cam_from_rect = np.eye(4)
        cam_from_rect[:3, 3] = t
        cam_from_velo = cam_from_rect @ self.velo_to_rect_matrix()
        return K, np.linalg.inv(cam_from_velo)


# ----------------------------------------------------------------------------- Scene


@dataclass(eq=False)
class Scene:
    """One point cloud with whatever annotation its dataset has.

    Shapes/dtypes: ``coord`` (N,3) float32 m; ``color`` (N,3) float32 in [0,1]; ``normal`` (N,3)
    float32; ``intensity`` (N,) float32; ``semantic``/``instance``/``segment`` (N,) int64 (-1 =
    none); ``boxes`` (M,7) float32 ``[cx,cy,cz,dx,dy,dz,yaw]``; ``box_labels`` (M,) int64;
    ``axis_alignment`` (4,4) float64 (already applied to ``coord``); ``extras`` dataset-specific
    arrays (e.g. KITTI ``box_truncated``); ``meta`` JSON-serialisable info.

    ``coord`` given in float64 that reaches 8192 m from the origin (a georeferenced scan) is
    shifted toward it, with ``boxes`` and the frames' poses, and ``meta['coord_shift']`` (3,)
    holds the metres subtracted: float32 keeps millimetres only within that range.
    """

    __repr__ = summary_repr

    name: str
    coord: np.ndarray
    classes: tuple[str, ...] = ()
    color: np.ndarray | None = None
    normal: np.ndarray | None = None
    intensity: np.ndarray | None = None
    semantic: np.ndarray | None = None
    instance: np.ndarray | None = None
    segment: np.ndarray | None = None
    boxes: np.ndarray | None = None
    box_labels: np.ndarray | None = None
    frames: list[Frame] = field(default_factory=list)
    calib: KittiCalib | None = None
    axis_alignment: np.ndarray | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        o = f"Scene[{self.name}]"
        self.classes = class_names(o, self.classes)
        self._shift_far_coordinates(o)
        self.coord = check_float(o, "coord", self.coord, (None, 3))
        n = len(self.coord)
        if n == 0:
            raise SceneError(f"{o}.coord: the point cloud is empty")
        c = len(self.classes)
        self.color = _opt(check_float, o, "color", self.color, (n, 3))
        if self.color is not None:
            check_color_range(f"{o}.color:", self.color)
        self.normal = _opt(check_float, o, "normal", self.normal, (n, 3))
        self.intensity = _opt(check_float, o, "intensity", self.intensity, (n,))
        if self.semantic is not None and c == 0:
            raise SceneError(f"{o}.classes: semantic labels are given but the class list is empty")
        self.semantic = _opt(check_int, o, "semantic", self.semantic, (n,), -1, c)
        self.instance = _opt(check_int, o, "instance", self.instance, (n,), -1)
        self.segment = _opt(check_int, o, "segment", self.segment, (n,), -1)
        self.boxes = _opt(check_float, o, "boxes", self.boxes, (None, 7))
        _check_box_sizes(o, "boxes", self.boxes)
        m = None if self.boxes is None else len(self.boxes)
        if self.box_labels is not None and m is None:
            raise SceneError(f"{o}.box_labels: given without boxes")
        self.box_labels = _opt(check_int, o, "box_labels", self.box_labels, (m,), -1, max(c, 1) if c else None)
        if self.boxes is not None and self.box_labels is None:
            self.box_labels = np.full(m, -1, np.int64)
        self.axis_alignment = _opt(check_float, o, "axis_alignment", self.axis_alignment, (4, 4), np.float64)
        for f in self.frames:
            if not isinstance(f, Frame):
                raise SceneError(f"{o}.frames: expected Frame objects, got {type(f).__name__}")
        self.extras = {str(k): to_numpy(v) for k, v in self.extras.items()}
        json.dumps(self.meta)  # must be serialisable

    def _shift_far_coordinates(self, o: str) -> None:
        """Georeferenced coordinates (``geometry.far_coordinate_shift``) given with more precision
        than float32 are moved toward the origin before they are stored in float32, with the
        boxes and the frames' poses; the shift (metres, added up over repeated shifts) goes to
        ``meta['coord_shift']``. Coordinates as far already in float32 lost their millimetres in
        the file: a warning says how far apart their values lie. Finite float64 coordinates that
        float32 cannot hold at all (1e300: a corrupt value, or another unit) are a SceneError
        naming the first such point (stored, they would be inf, named "NaN or infinite")."""
        raw = to_numpy(self.coord)
        if raw.dtype.kind not in "fiu" or raw.ndim != 2 or raw.shape[-1:] != (3,) or not len(raw) \
                or (raw.dtype.kind == "f" and not np.isfinite(raw).all()):
            return  # check_float names what is wrong
        if raw.dtype == np.float64:
            big = np.abs(raw).max(1) > np.finfo(np.float32).max
            if big.any():
                first = int(np.flatnonzero(big)[0])
                raise SceneError(f"{o}.coord: {int(big.sum())} points lie beyond what float32 holds (+-3.4e38; point "
                                 f"{first} at {raw[first].tolist()}): a corrupt value, or another unit")
        shift = far_coordinate_shift(raw)
        if shift is None:
            return
        reach = float(np.abs(raw).max())
        if raw.dtype == np.float32:
            warnings.warn(f"{o}.coord: float32 coordinates up to {reach:.0f} m from the origin, whose values lie "
                          f"{float32_step(reach):.3g} m apart: the points moved by up to half that when they were "
                          f"stored; keep such coordinates in float64 (pcweak then shifts them toward the origin)")
            return
        self.coord = raw.astype(np.float64) - shift
        if self.boxes is not None:
            b = to_numpy(self.boxes)
            if b.dtype.kind in "fiu" and b.ndim == 2 and b.shape[1] == 7:
                b = b.astype(np.float64)
                b[:, :3] -= shift
                self.boxes = b
        moved = []
        for f in self.frames:
            if isinstance(f, Frame):
                f = copy.copy(f)
                f.pose = f.pose.copy()
                f.pose[:3, 3] -= shift
            moved.append(f)
        self.frames = moved
        total = shift + np.asarray(self.meta.get("coord_shift", (0.0, 0.0, 0.0)), np.float64)
        self.meta = {**self.meta, "coord_shift": [float(v) for v in total]}
        ext = float(np.abs(self.coord).max())
        note = "" if ext < FLOAT32_MILLIMETRE_RANGE_M else \
            f"; the scene spans {2 * ext:.0f} m, so its float32 values still lie {float32_step(ext):.3g} m apart at its edges"
        warnings.warn(f"{o}.coord: coordinates up to {reach:.0f} m from the origin (georeferenced?) are shifted by "
                      f"{[float(-v) + 0.0 for v in shift]} m to keep millimetres in float32 (scene.meta['coord_shift'] holds "
                      f"what was subtracted); boxes that labellers write are in the shifted frame{note}")

    @property
    def num_points(self) -> int:
        return len(self.coord)

    def with_classes(self, classes: Sequence[str]) -> "Scene":
        """This scene (its arrays shared, not copied) under ``classes``: its own list joined with
        names for the classes it labels without naming (a PLY's ``class_3``; labels made with
        names, ``WeakLabels.classes_with``). SceneError where ``classes`` names one of the
        scene's classes otherwise (``classes.joined_class_list``)."""
        joined = join_class_lists(tuple(classes), self.classes, lambda i: SceneError(
            f"Scene[{self.name}].classes: label {i} is {self.classes[i]!r}, not {classes[i]!r}"))
        if joined == self.classes:
            return self
        out = copy.copy(self)
        out.classes = class_names(f"Scene[{self.name}]", joined)
        return out

    def file_units_and_shift(self) -> tuple[np.ndarray, np.ndarray]:
        """How the scene's file placed its points: (3,) float64 metres per file unit of x, y, z
        (``meta['las_units_m']``, a LAS tile in feet; else 1) and (3,) float64 metres subtracted
        toward the origin on reading (``meta['coord_shift']``; else 0). A file point p lies at
        ``p * units - shift`` in ``coord``'s frame (after the reader's axis alignment, where it
        has one); ``write_las`` writes ``(coord + shift) / units``."""
        units = np.asarray(self.meta.get("las_units_m", (1.0, 1.0, 1.0)), np.float64)
        return units, np.asarray(self.meta.get("coord_shift", (0.0, 0.0, 0.0)), np.float64)

    def frame_image_size(self, i: int) -> tuple[int, int] | None:
        """(height, width) of frame ``i``'s colour image: the reader's ``meta['image_size']``
        (KITTI's image_2) where it gives one, else the image's own shape; None without an image."""
        hw = (self.meta or {}).get("image_size")
        if hw is None:
            img = self.frames[i].image
            hw = None if img is None else img.shape[:2]
        return None if hw is None else (int(hw[0]), int(hw[1]))

    # -- npz I/O
    def to_arrays(self) -> dict[str, np.ndarray]:
        """All fields as a flat dict of arrays (the scene ``.npz`` layout)."""
        out: dict[str, np.ndarray] = {"name": np.array(self.name), "coord": self.coord,
                                      "classes": _str_array(self.classes),
                                      "meta": np.array(json.dumps(self.meta, sort_keys=True))}
        for k in ("color", "normal", "intensity", "semantic", "instance", "segment", "boxes",
                  "box_labels", "axis_alignment"):
            v = getattr(self, k)
            if v is not None:
                out[k] = v
        if self.frames:
            out["frame_name"] = _str_array([f.name for f in self.frames])
            out["frame_pose"] = np.stack([f.pose for f in self.frames])
            out["frame_intrinsics"] = np.stack([f.intrinsics for f in self.frames])
            for i, f in enumerate(self.frames):
                if f.color_intrinsics is not None:
                    out[f"frame{i}_color_intrinsics"] = f.color_intrinsics
                img, dep = f.image, f.depth
                if img is not None:
                    out[f"frame{i}_image"] = img
                if dep is not None:
                    out[f"frame{i}_depth"] = dep
        if self.calib is not None:
            out["calib_P2"] = self.calib.P2
            out["calib_R0_rect"] = self.calib.R0_rect
            out["calib_Tr_velo_to_cam"] = self.calib.Tr_velo_to_cam
        for k, v in self.extras.items():
            out[f"extra_{k}"] = v
        return out

    def save(self, path: str | os.PathLike) -> Path:
        """Write the scene to one ``.npz`` atomically."""
        return save_npz(path, self.to_arrays())

    @classmethod
    def from_arrays(cls, d: Mapping[str, np.ndarray], source: str = "<arrays>") -> "Scene":
        """The scene of ``Scene.to_arrays``' members; SceneError naming ``source`` (the file) when
        they do not make one."""
        if "coord" not in d:
            raise SceneError(_not_a(source, d, "scene") or f"{source}: no 'coord' array (not a pcweak scene file)")
        try:
            return cls._from_arrays(d, source)
        except SceneError as e:
            raise SceneError(e.args[0] if str(e).startswith(source) else f"{source}: {e}") from e

    @classmethod
    def _from_arrays(cls, d: Mapping[str, np.ndarray], source: str) -> "Scene":
        frames = []
        if "frame_name" in d:
            for i, nm in enumerate(d["frame_name"]):
                frames.append(Frame(str(nm), d["frame_pose"][i], d["frame_intrinsics"][i],
                                    image=d.get(f"frame{i}_image"), depth=d.get(f"frame{i}_depth"),
                                    color_intrinsics=d.get(f"frame{i}_color_intrinsics")))
        calib = None
        if "calib_P2" in d:
            calib = KittiCalib(d["calib_P2"], d["calib_R0_rect"], d["calib_Tr_velo_to_cam"])
        kw = {k: d[k] for k in ("color", "normal", "intensity", "semantic", "instance", "segment",
                                 "boxes", "box_labels", "axis_alignment") if k in d}
        return cls(name=str(d["name"]) if "name" in d else Path(source).stem, coord=d["coord"],
                   classes=d.get("classes", ()), frames=frames, calib=calib,
                   extras={k[6:]: v for k, v in d.items() if k.startswith("extra_")},
                   meta=_meta(d, source), **kw)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Scene":
        return cls.from_arrays(load_npz(path), str(path))

    def summary(self) -> dict[str, Any]:
        """A JSON-serialisable overview (what ``pcweak info`` prints)."""
        lo, hi = column_bounds(self.coord)
        s: dict[str, Any] = {"name": self.name, "points": self.num_points,
                             "fields": [k for k in ("color", "normal", "intensity", "semantic", "instance", "segment")
                                        if getattr(self, k) is not None],
                             "bounds_min": [round(float(v), 3) for v in lo],
                             "bounds_max": [round(float(v), 3) for v in hi],
                             "classes": list(self.classes)}
        if self.semantic is not None:
            ids, cnt = np.unique(self.semantic[self.semantic >= 0], return_counts=True)
            s["classes_present"] = {self.classes[i]: int(n) for i, n in zip(ids, cnt)}
            s["labelled_fraction"] = round(float((self.semantic >= 0).mean()), 4)
        if self.instance is not None:
            s["instances"] = int(len(np.unique(self.instance[self.instance >= 0])))
        if self.segment is not None:
            s["segments"] = int(len(np.unique(self.segment[self.segment >= 0])))
        if self.boxes is not None:
            names = self.extras.get("box_type")
            objs = []
            for i, b in enumerate(self.boxes):
                lab = int(self.box_labels[i])
                cls_name = str(names[i]) if names is not None else (self.classes[lab] if lab >= 0 else "unknown")
                objs.append({"class": cls_name, "label": lab, "box": [round(float(v), 3) for v in b]})
            s["boxes"] = objs
        s["frames"] = len(self.frames)
        if self.calib is not None:
            s["calib"] = True
        if self.meta:
            s["meta"] = _shortened(self.meta)
        return s


# ----------------------------------------------------------------------------- weak labels

# a weak 3D box farther than this (metres) from every side of its scene's extent labels nothing
BOX_REACH_MARGIN_M = 1.0

_WEAK_KEYS = ("point_index", "point_semantic", "point_instance", "box", "box_semantic", "scene_tags",
              "box2d", "box2d_semantic", "box2d_frame", "mask2d", "mask2d_frame")


def file_kind(members: Iterable[str]) -> str | None:
    """Which of pcweak's three ``.npz`` files the member names make: ``"scene"`` (points:
    ``coord``), ``"weak"`` (weak labels), ``"pseudo"`` (per-point ``semantic`` without points), or
    None. For the message when one kind is given where another belongs: a scene file read as
    pseudo-labels would score its own ground truth as perfect."""
    m = set(members)
    if "coord" in m:
        return "scene"
    if "semantic" in m:
        return "pseudo"
    if m & set(_WEAK_KEYS):
        return "weak"
    return None


FILE_KINDS = {"scene": "a scene file (points and their labels; read it as npz:FILE)",
              "weak": "a weak-label file (what pcweak simulate and import write; --weak takes it)",
              "pseudo": "a pseudo-label file (what pcweak label writes; --pseudo takes it)"}


def _not_a(path: str | os.PathLike, members: Iterable[str], expected: str) -> str | None:
    """The message for ``path`` when its members make another kind of pcweak file than
    ``expected`` (``file_kind``), else None."""
    kind = file_kind(members)
    if kind is None or kind == expected:
        return None
    return f"{path}: this is {FILE_KINDS[kind]}, not {FILE_KINDS[expected].split(' (')[0]}"


@dataclass(eq=False)
class WeakLabels:
    """Cheap annotation of one scene; any subset of the fields may be present.

    ``point_index`` (K,) int64 into the scene's points, with ``point_semantic`` / ``point_instance``
    (K,) int64; ``box`` (M,7) float32 with ``box_semantic`` (M,); ``scene_tags`` (C,) bool;
    ``box2d`` (B,4) float32 ``[x1,y1,x2,y2]`` pixels with ``box2d_semantic``/``box2d_frame`` (B,)
    int64 (frame = index into ``Scene.frames``); ``mask2d`` (F,H,W) int32 label maps (0 = none)
    with ``mask2d_frame`` (F,) int64. ``num_points`` and ``classes`` describe the scene the labels
    belong to and let the indices be checked.
    """

    __repr__ = summary_repr

    scene: str = ""
    num_points: int | None = None
    classes: tuple[str, ...] = ()
    point_index: np.ndarray | None = None
    point_semantic: np.ndarray | None = None
    point_instance: np.ndarray | None = None
    box: np.ndarray | None = None
    box_semantic: np.ndarray | None = None
    scene_tags: np.ndarray | None = None
    box2d: np.ndarray | None = None
    box2d_semantic: np.ndarray | None = None
    box2d_frame: np.ndarray | None = None
    mask2d: np.ndarray | None = None
    mask2d_frame: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    source: str | None = None  # the file the labels were read from, named in errors

    def __post_init__(self) -> None:
        o = f"WeakLabels[{self.scene}]"
        self.classes = class_names(o, self.classes)
        c = len(self.classes) or None
        n = self.num_points = None if self.num_points is None else _point_count(o, self.num_points)
        self.point_index = _opt(check_int, o, "point_index", self.point_index, (None,), 0, n)
        k = None if self.point_index is None else len(self.point_index)
        for name in ("point_semantic", "point_instance"):
            v = getattr(self, name)
            if v is not None and k is None:
                raise SceneError(f"{o}.{name}: given without point_index")
            hi = c if name == "point_semantic" else None
            setattr(self, name, _opt(check_int, o, name, v, (k,), -1, hi))
        if self.point_semantic is not None:
            clash = clashing_seeds(self.point_index, self.point_semantic)
            if len(clash):
                raise SceneError(f"{o}.point_index: {len(clash)} points are labelled twice with different classes "
                                 f"(point {int(clash[0])} among them)")
        self.box = _opt(check_float, o, "box", self.box, (None, 7))
        m = None if self.box is None else len(self.box)
        _check_box_sizes(o, "box", self.box)
        if self.box_semantic is not None and m is None:
            raise SceneError(f"{o}.box_semantic: given without box")
        self.box_semantic = _opt(check_int, o, "box_semantic", self.box_semantic, (m,), -1, c)
        if self.scene_tags is not None:
            t = to_numpy(self.scene_tags)
            if t.dtype != np.bool_:
                raise SceneError(f"{o}.scene_tags: dtype {t.dtype}; expected bool (one flag per class)")
            _check_shape(o, "scene_tags", t, (c,))
            self.scene_tags = t
        self.box2d = _opt(check_float, o, "box2d", self.box2d, (None, 4))
        b = None if self.box2d is None else len(self.box2d)
        self.box2d_semantic = _opt(check_int, o, "box2d_semantic", self.box2d_semantic, (b,), -1, c)
        self.box2d_frame = _opt(check_int, o, "box2d_frame", self.box2d_frame, (b,), 0)
        if b:
            flat = np.flatnonzero(~((self.box2d[:, 2] > self.box2d[:, 0]) & (self.box2d[:, 3] > self.box2d[:, 1])))
            if len(flat):
                raise SceneError(f"{o}.box2d: box {int(flat[0])} {self.box2d[flat[0]].tolist()} is not [x1, y1, x2, y2] "
                                 f"with x2 > x1 and y2 > y1")
        if self.mask2d is not None:
            self.mask2d = check_int(o, "mask2d", self.mask2d, (None, None, None), 0, dtype=np.int32)
            if self.mask2d_frame is None:
                raise SceneError(f"{o}.mask2d_frame: required with mask2d (frame index of each mask map)")
            self.mask2d_frame = check_int(o, "mask2d_frame", self.mask2d_frame, (len(self.mask2d),), 0)

    def check_against(self, scene: Scene) -> None:
        """Raise SceneError when these labels cannot belong to ``scene`` (naming their file): another
        point count, indices or frames out of range, boxes away from its points, a class list that
        disagrees with the scene's; one that joins it (names where the scene has placeholders,
        ``classes.joined_class_list``) is labelled under ``classes_with(scene)``."""
        o = _from_file(self.source, f"WeakLabels[{self.scene}]")
        if self.num_points is not None and self.num_points != scene.num_points:
            raise SceneError(f"{o}.num_points: {self.num_points} but scene {scene.name!r} has {scene.num_points} points")
        if self.point_index is not None and len(self.point_index) and self.point_index.max() >= scene.num_points:
            raise SceneError(f"{o}.point_index: index {int(self.point_index.max())} out of range for {scene.num_points} points")
        _check_same_classes(o, self.classes, scene, joined=True)
        self._check_boxes_reach(o, scene)
        for name in ("box2d_frame", "mask2d_frame"):
            v = getattr(self, name)
            if v is not None and len(v) and v.max() >= len(scene.frames):
                raise SceneError(f"{o}.{name}: frame {int(v.max())} out of range ({len(scene.frames)} frames)")
        if self.box2d is not None and len(self.box2d) and self.box2d_frame is not None:
            for f in np.unique(self.box2d_frame):
                hw = scene.frame_image_size(int(f))
                if hw is None:
                    continue
                H, W = hw
                idx = np.flatnonzero(self.box2d_frame == f)
                b = self.box2d[idx]
                out = np.flatnonzero((b[:, 0] < -1) | (b[:, 1] < -1) | (b[:, 2] > W + 1) | (b[:, 3] > H + 1))
                if len(out):  # a box of another frame or image size; 1 px of slack for rounding
                    raise SceneError(f"{o}.box2d: box {int(idx[out[0]])} {b[out[0]].round(1).tolist()} lies outside frame "
                                     f"{scene.frames[f].name}'s {W}x{H} image")

    def classes_with(self, scene: Scene) -> tuple[str, ...]:
        """The class list these labels and ``scene`` are read under together: the two lists
        joined (``check_against`` has refused lists that do not join). Weak labels imported with
        names for a PLY's placeholder classes name the scene's classes this way."""
        return _classes_with(self.classes, scene)

    def _check_boxes_reach(self, o: str, scene: Scene) -> None:
        """3D boxes that lie away from every point of ``scene`` (beyond ``BOX_REACH_MARGIN_M`` of
        its extent) label nothing: all of them is a SceneError (boxes of another scene or frame),
        some a warning with their count."""
        if self.box is None or not len(self.box):
            return
        lo, hi = column_bounds(scene.coord)
        off = boxes_off_extent(self.box, lo, hi, BOX_REACH_MARGIN_M)
        if not off.any():
            return
        first = int(np.flatnonzero(off)[0])
        where = f"box {first} is centred at {np.round(self.box[first, :3].astype(np.float64), 2).tolist()} m"
        if not off.all():
            warnings.warn(f"{o}.box: {int(off.sum())} of {len(off)} boxes lie away from the points of scene {scene.name!r} "
                          f"({where}); they label nothing")
            return
        shift = scene.meta.get("coord_shift")
        hint = ""
        if shift is not None:
            moved = self.box.astype(np.float64).copy()
            moved[:, :3] -= np.asarray(shift, np.float64)
            if not boxes_off_extent(moved, lo, hi, BOX_REACH_MARGIN_M).all():
                hint = (f"; they lie where the file's coordinates are, but the scene was shifted by "
                        f"{[float(-v) + 0.0 for v in shift]} m when read (meta['coord_shift']): subtract "
                        f"{list(shift)} from the boxes' centres")
        raise SceneError(f"{o}.box: none of the {len(off)} boxes reaches the points of scene {scene.name!r}, which span "
                         f"{np.round(lo.astype(np.float64), 2).tolist()} to {np.round(hi.astype(np.float64), 2).tolist()} m "
                         f"({where}): boxes of another scene or coordinate frame{hint or '?'}")

    def kinds(self) -> list[str]:
        """Which kinds of weak label are present."""
        return [k for k, f in (("points", "point_index"), ("boxes", "box"), ("tags", "scene_tags"),
                               ("boxes2d", "box2d"), ("masks2d", "mask2d")) if getattr(self, f) is not None]

    def holds_nothing(self) -> bool:
        """Whether no kind holds a label: no labelled point, box, image box, mask pixel or tag (a
        scene an annotator skipped, or clicks simulated on a scene without instances)."""
        return not any(v is not None and (np.asarray(v).any() if k in ("scene_tags", "mask2d") else len(v) > 0)
                       for k, v in (("point_index", self.point_index), ("box", self.box), ("box2d", self.box2d),
                                    ("mask2d", self.mask2d), ("scene_tags", self.scene_tags)))

    def to_arrays(self) -> dict[str, np.ndarray]:
        out = {k: getattr(self, k) for k in _WEAK_KEYS if getattr(self, k) is not None}
        out["scene"] = np.array(self.scene)
        out["classes"] = _str_array(self.classes)
        out["meta"] = np.array(json.dumps(self.meta, sort_keys=True))
        if self.num_points is not None:
            out["num_points"] = np.array(self.num_points, np.int64)
        return out

    def save(self, path: str | os.PathLike) -> Path:
        return save_npz(path, self.to_arrays())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "WeakLabels":
        # names are checked before anything is decompressed, and per-point arrays may not
        # declare more entries than the scene has points
        allowed = set(_WEAK_KEYS) | {"scene", "classes", "meta", "num_points"}
        members = npz_members(path)
        unknown = sorted(set(members) - allowed)
        if unknown:
            raise SceneError(_not_a(path, members, "weak") or f"{path}: unknown WeakLabels keys {unknown}")
        limits = {}
        if "num_points" in members:
            n = _num_points_of(path)
            limits = {k: 256 + 8 * n for k in ("point_index", "point_semantic", "point_instance")}
        d = load_npz(path, allowed, limits)
        meta = _meta(d, str(path))
        try:
            return cls(scene=str(d.get("scene", "")),
                       num_points=d["num_points"].tolist() if "num_points" in d else None,
                       classes=d.get("classes", ()),
                       meta=meta, source=str(path), **{k: d[k] for k in _WEAK_KEYS if k in d})
        except SceneError as e:
            raise SceneError(f"{path}: {e}") from e


def _meta(d: dict[str, np.ndarray], source: str) -> dict[str, Any]:
    """The ``meta`` member of a scene or weak-label file: a JSON object (SceneError otherwise)."""
    if "meta" not in d:
        return {}
    try:
        meta = json.loads(str(d["meta"]))
    except json.JSONDecodeError as e:
        raise SceneError(f"{source}: 'meta' is not JSON ({e})") from e
    if not isinstance(meta, dict):
        raise SceneError(f"{source}: 'meta' is a JSON {type(meta).__name__}, expected an object")
    return meta


def _num_points_of(path: str | os.PathLike) -> int:
    """The ``num_points`` member of a weak-label npz, read alone (a few bytes)."""
    import zipfile
    try:
        with zipfile.ZipFile(path) as zf, zf.open("num_points.npy") as f:
            value = np.lib.format.read_array(f, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise SceneError(f"{path}: num_points is not a readable integer ({e})") from e
    return _point_count(str(path), value.tolist())


def _point_count(owner: str, value: Any) -> int:
    """``value`` as a point count, or SceneError naming ``owner``: a float (58383.5), a word, a
    list or a negative number is no scene's count."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise SceneError(f"{owner}: num_points is {value!r}; expected the scene's point count (an integer >= 0)")
    return int(value)


# ----------------------------------------------------------------------------- pseudo labels


def _checked_pseudo_extras(owner: str, extras: dict[str, np.ndarray], n: int, c: int | None) -> dict[str, np.ndarray]:
    """``extras`` with the members that commands read checked (SceneError naming ``owner``):
    ``superpoint`` (N,) int64 cell ids (viz draws and exports them); ``instance_class`` (K,) int64
    labels and ``instance_score`` (K,) float32, one per instance id, given together (instance AP
    and the ScanNet instance files take them). Other members are kept as they are."""
    out = dict(extras)
    if "superpoint" in out:
        out["superpoint"] = check_int(owner, "extras['superpoint']", out["superpoint"], (n,), -1)
    given = [k for k in ("instance_class", "instance_score") if k in out]
    if len(given) == 1:
        other = ({"instance_class", "instance_score"} - set(given)).pop()
        raise SceneError(f"{owner}.extras: {given[0]!r} without {other!r}; an instance's class and score come together")
    if given:
        cls = check_int(owner, "extras['instance_class']", out["instance_class"], (None,), -1, c)
        out["instance_class"] = cls
        out["instance_score"] = check_float(owner, "extras['instance_score']", out["instance_score"], (len(cls),))
    return out


@dataclass(eq=False)
class PseudoLabels:
    """Dense labels produced by a labeller, aligned with the scene's points.

    ``semantic``/``instance`` (N,) int64 (-1 = none); ``confidence`` (N,) float32 in [0,1];
    ``method`` name, ``params`` (JSON string: the labeller's full config, enough to make the
    same file again with ``pcweak.label(scene, weak, method, **json.loads(params))``) and
    ``stats`` (JSON string: what the run found, e.g. node counts), ``fingerprint`` (JSON string:
    the inputs of the ``pcweak label`` job that wrote the file); ``timing`` seconds per step
    of the run that made it (kept in memory only, so that a file depends on its inputs alone);
    detection: ``box`` (M,7) float32,
    ``box_semantic`` (M,) int64, ``box_confidence`` (M,) float32; ``extras`` per-point or
    per-box arrays a labeller adds (e.g. ``gp_mean``).
    """

    __repr__ = summary_repr

    semantic: np.ndarray
    instance: np.ndarray | None = None
    confidence: np.ndarray | None = None
    method: str = ""
    params: str = "{}"
    stats: str = "{}"
    fingerprint: str = "{}"
    classes: tuple[str, ...] = ()
    box: np.ndarray | None = None
    box_semantic: np.ndarray | None = None
    box_confidence: np.ndarray | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)
    source: str | None = None  # the file the labels were read from, named in errors

    def __post_init__(self) -> None:
        o = "PseudoLabels"
        self.classes = class_names(o, self.classes)
        c = len(self.classes) or None
        self.semantic = check_int(o, "semantic", self.semantic, (None,), -1, c)
        n = len(self.semantic)
        self.instance = check_int(o, "instance", np.full(n, -1) if self.instance is None else self.instance, (n,), -1)
        conf = np.where(self.semantic >= 0, 1.0, 0.0) if self.confidence is None else self.confidence
        self.confidence = check_float(o, "confidence", conf, (n,))
        if n and (self.confidence.min() < 0 or self.confidence.max() > 1):
            raise SceneError(f"{o}.confidence: values must lie in [0,1]")
        for name in ("params", "stats", "fingerprint"):
            value = getattr(self, name)
            if not isinstance(value, str):
                value = json.dumps(value, sort_keys=True, default=str)
                setattr(self, name, value)
            try:
                json.loads(value)
            except json.JSONDecodeError as e:
                raise SceneError(f"{o}.{name}: not valid JSON ({e})") from e
        self.box = _opt(check_float, o, "box", self.box, (None, 7))
        m = None if self.box is None else len(self.box)
        self.box_semantic = _opt(check_int, o, "box_semantic", self.box_semantic, (m,), -1, c)
        self.box_confidence = _opt(check_float, o, "box_confidence", self.box_confidence, (m,))
        self.extras = _checked_pseudo_extras(o, {str(k): to_numpy(v) for k, v in self.extras.items()}, n, c)

    @property
    def num_points(self) -> int:
        return len(self.semantic)

    def check_against(self, scene: Scene) -> None:
        """Raise SceneError when these labels cannot belong to ``scene`` (naming their file): another
        point count, or labels over a class list that disagrees with the scene's (label i would be
        scored, drawn and trained as the scene's class i); one that joins it
        (``classes.joined_class_list``) is read under ``classes_with(scene)``."""
        o = _from_file(self.source, "PseudoLabels")
        if self.num_points != scene.num_points:
            raise SceneError(f"{o}.semantic: length {self.num_points} but scene {scene.name!r} has {scene.num_points} points")
        _check_same_classes(o, self.classes, scene, joined=True)

    def classes_with(self, scene: Scene) -> tuple[str, ...]:
        """The class list these labels and ``scene``'s ground truth are read under together: the
        two lists joined (``check_against`` has refused lists that do not join)."""
        return _classes_with(self.classes, scene)

    def to_arrays(self) -> dict[str, np.ndarray]:
        out = {"semantic": self.semantic, "instance": self.instance, "confidence": self.confidence,
               "method": np.array(self.method), "params": np.array(self.params), "stats": np.array(self.stats),
               "fingerprint": np.array(self.fingerprint),
               "classes": _str_array(self.classes)}
        for k in ("box", "box_semantic", "box_confidence"):
            if getattr(self, k) is not None:
                out[k] = getattr(self, k)
        for k, v in self.extras.items():
            if k in out:
                raise SceneError(f"PseudoLabels.extras: key {k!r} clashes with a standard field")
            out[k] = v
        return out

    def save(self, path: str | os.PathLike) -> Path:
        return save_npz(path, self.to_arrays())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "PseudoLabels":
        other = _not_a(path, npz_members(path), "pseudo")  # before anything is decompressed
        if other:
            raise SceneError(other)
        d = load_npz(path)
        if "semantic" not in d:
            raise SceneError(f"{path}: no 'semantic' array (not a PseudoLabels file)")
        std = {"semantic", "instance", "confidence", "method", "params", "stats", "fingerprint", "classes", "box",
               "box_semantic", "box_confidence"}
        try:
            return cls(semantic=d["semantic"], instance=d.get("instance"), confidence=d.get("confidence"),
                       method=str(d.get("method", "")), params=str(d.get("params", "{}")), stats=str(d.get("stats", "{}")),
                       fingerprint=str(d.get("fingerprint", "{}")),
                       classes=d.get("classes", ()),
                       box=d.get("box"), box_semantic=d.get("box_semantic"), box_confidence=d.get("box_confidence"),
                       extras={k: v for k, v in d.items() if k not in std}, source=str(path))
        except SceneError as e:
            raise SceneError(f"{path}: {e}") from e


_HOW_TO_MAKE = {Scene: "pcweak.load_scene(address)", WeakLabels: "WeakLabels.load(path) or pcweak.simulate",
                PseudoLabels: "PseudoLabels.load(path) or pcweak.label"}


def check_types(call: str, *args: tuple[Any, type]) -> None:
    """TypeError naming ``call`` unless every ``(value, class)`` pair matches, saying what to pass
    and how to make it: an address, a file name or an array where a Scene, WeakLabels or
    PseudoLabels belongs would otherwise fail deep inside with an AttributeError naming neither."""
    if all(isinstance(v, cls) for v, cls in args):
        return
    want = " and ".join(cls.__name__ for _, cls in args)
    how = ", ".join(_HOW_TO_MAKE[cls] for _, cls in args)
    got = " and ".join(type(v).__name__ for v, _ in args)
    raise TypeError(f"{call}: expected a {want} ({how}), got {got}")
