"""Box, mesh and point geometry shared by readers, simulators and labellers (numpy, float64 inside).

Boxes are ``[cx, cy, cz, dx, dy, dz, yaw]``: centre, full sizes along the box's own x/y/z,
rotation ``yaw`` (rad) about +z.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

# KITTI detection's crop of a LiDAR sweep, metres in the LiDAR frame (x forward, y left, z up):
# x_min, y_min, z_min, x_max, y_max, z_max.
KITTI_PC_RANGE: tuple[float, ...] = (0.0, -40.0, -3.0, 70.4, 40.0, 1.0)


# float32 steps are at most 2**-10 m (about 1 mm) for magnitudes below 2**13 m; a georeferenced
# scan (UTM eastings of 10^5-10^6 m, northings of 10^6-10^7 m) stored there would move its points
# by 3 cm-1 m, so such coordinates are shifted toward the origin before they become float32
FLOAT32_MILLIMETRE_RANGE_M = 8192.0
# the shift is a multiple of this (metres), a round number a person can add back by hand
COORD_SHIFT_STEP_M = 100.0


def column_bounds(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minima and maxima of each column of a non-empty (N, D) array, two (D,) arrays of its
    dtype: the values of ``points.min(0)`` and ``points.max(0)`` (NaN propagates; an empty array
    raises ValueError as they do). numpy reduces a C-ordered (N, 3) array along axis 0 through
    an inner loop of length 3, about 25x slower than reducing each column on its own (both
    bounds of a million float32 points: 44 ms against 1.8 ms; ``pcweak bench ops``)."""
    a = np.asarray(points)
    if a.ndim != 2:
        raise ValueError(f"column_bounds: expected an (N, D) array, got shape {a.shape}")
    lo = np.array([a[:, j].min() for j in range(a.shape[1])], a.dtype)
    hi = np.array([a[:, j].max() for j in range(a.shape[1])], a.dtype)
    return lo, hi


def far_coordinate_shift(coord: np.ndarray) -> np.ndarray | None:
    """(3,) float64 metres to subtract from ``coord`` (N,3), any float or int dtype, so that
    float32 keeps its points to a millimetre; None when every coordinate lies within
    ``FLOAT32_MILLIMETRE_RANGE_M`` of the origin already (or ``coord`` is empty). Each axis that
    reaches that range is shifted by its midpoint rounded to ``COORD_SHIFT_STEP_M``; the others
    by 0 (an airborne scan's heights of a few hundred metres stay as they are)."""
    c = np.asarray(coord)
    if c.size == 0 or c.ndim != 2 or c.shape[1] != 3:
        return None
    lo, hi = (b.astype(np.float64) for b in column_bounds(c))
    far = np.maximum(np.abs(lo), np.abs(hi)) >= FLOAT32_MILLIMETRE_RANGE_M
    if not far.any():
        return None
    return np.where(far, np.round((lo + hi) / 2 / COORD_SHIFT_STEP_M) * COORD_SHIFT_STEP_M, 0.0)


def float32_near_origin(coord: np.ndarray) -> np.ndarray:
    """``coord`` (N,3) as float32, moved by ``far_coordinate_shift`` first when it comes with more
    precision than float32 and reaches beyond its millimetres: for the array-level functions whose
    results depend on differences of positions only (graphs, partitions, nearest seeds; the shift
    is a multiple of 100 m, so voxel grids of sizes dividing it fall on the same cells)."""
    c = np.asarray(coord)
    if c.dtype.kind in "fiu" and c.dtype != np.float32:
        shift = far_coordinate_shift(c)
        if shift is not None:
            return (c.astype(np.float64) - shift).astype(np.float32)
    return c.astype(np.float32)


def float32_step(magnitude: float) -> float:
    """The distance (metres) between neighbouring float32 values at ``magnitude`` metres."""
    return float(np.spacing(np.float32(abs(magnitude))))


def voxel_grid_problem(pc_range: Sequence[float], voxel_size: Sequence[float]) -> str | None:
    """What is wrong with a LiDAR crop ``pc_range`` [x_min, y_min, z_min, x_max, y_max, z_max]
    (metres) cut into voxels of ``voxel_size`` [dx, dy, dz] (metres), or None when each axis
    holds at least one voxel (its extent over its voxel, rounded, as the detector's grid counts);
    an inverted or empty range gave the detector a grid of negative or zero size, which failed
    deep inside the network's construction."""
    try:
        lo_hi, vs = np.asarray(pc_range, np.float64), np.asarray(voxel_size, np.float64)
    except (TypeError, ValueError):
        return f"numbers, got pc_range {pc_range!r} and voxel_size {voxel_size!r}"
    if lo_hi.shape != (6,) or vs.shape != (3,) or not (np.isfinite(lo_hi).all() and np.isfinite(vs).all()):
        return f"pc_range of 6 finite numbers and voxel_size of 3, got {list(pc_range)} and {list(voxel_size)}"
    if (vs <= 0).any():
        return f"voxel_size values > 0, got {vs.tolist()}"
    short = [axis for axis, lo, hi, v in zip("xyz", lo_hi[:3], lo_hi[3:], vs) if round((hi - lo) / v) < 1]  # as the grid counts
    if short:
        return (f"pc_range [x_min, y_min, z_min, x_max, y_max, z_max] with each max above its min by at least one "
                f"voxel ({vs.tolist()} m), got {lo_hi.tolist()} ({', '.join(short)} too short)")
    return None


def rot_z(yaw: float) -> np.ndarray:
    """(3,3) rotation about +z."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def to_box_frame(points: np.ndarray, box: np.ndarray) -> np.ndarray:
    """(N,3) points expressed in the frame of one box (centre at 0, axes along its sizes)."""
    p = np.asarray(points, np.float64) - np.asarray(box[:3], np.float64)
    c, s = np.cos(box[6]), np.sin(box[6])
    x = p[:, 0] * c + p[:, 1] * s
    y = -p[:, 0] * s + p[:, 1] * c
    return np.stack([x, y, p[:, 2]], axis=1)


def points_in_boxes(points: np.ndarray, boxes: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """(N,M) bool: point n lies inside box m (inflated by ``margin`` metres on every side)."""
    points = np.asarray(points, np.float64)
    boxes = np.asarray(boxes, np.float64).reshape(-1, 7)
    out = np.zeros((len(points), len(boxes)), dtype=bool)
    for m, b in enumerate(boxes):
        # cheap bounding-sphere cull before the exact test
        r = 0.5 * np.linalg.norm(b[3:6]) + margin
        near = np.abs(points - b[:3]).max(axis=1) <= r
        if not near.any():
            continue
        loc = to_box_frame(points[near], b)
        half = b[3:6] / 2 + margin
        out[near, m] = (np.abs(loc) <= half).all(axis=1)
    return out


def boxes_off_extent(boxes: np.ndarray, lo: np.ndarray, hi: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """(M,) bool: box m (``[cx, cy, cz, dx, dy, dz, yaw]``) lies wholly outside the axis-aligned
    extent ``lo``..``hi`` (3,) grown by ``margin`` metres, judged by its bounding sphere (a box
    that may touch the extent is not off it)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 7)
    r = 0.5 * np.linalg.norm(b[:, 3:6], axis=1)[:, None] + margin
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    return ((b[:, :3] + r < lo) | (b[:, :3] - r > hi)).any(1)


def box_corners(boxes: np.ndarray) -> np.ndarray:
    """(M,8,3) corners; bottom face first (counter-clockwise seen from above), then top."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 7)
    unit = np.array([[1, 1, -1], [-1, 1, -1], [-1, -1, -1], [1, -1, -1],
                     [1, 1, 1], [-1, 1, 1], [-1, -1, 1], [1, -1, 1]], np.float64) / 2
    c, s = np.cos(boxes[:, 6]), np.sin(boxes[:, 6])
    zero, one = np.zeros(len(boxes)), np.ones(len(boxes))
    rot_t = np.stack([np.stack([c, s, zero], -1), np.stack([-s, c, zero], -1), np.stack([zero, zero, one], -1)], 1)  # rot_z(yaw).T
    return np.matmul(unit[None] * boxes[:, None, 3:6], rot_t) + boxes[:, None, :3]


def aabb_box(points: np.ndarray) -> np.ndarray:
    """(7,) float64 axis-aligned box tightly around (N,3) points (yaw 0)."""
    lo, hi = column_bounds(points)
    return np.concatenate([(lo + hi) / 2, hi - lo, [0.0]])


def oriented_box(points: np.ndarray) -> np.ndarray:
    """(7,) float64 z-upright box of minimum footprint area around (N,3) points.

    Rotating calipers over the 2D convex hull of the xy projection; yaw in (-pi/2, pi/2].
    """
    pts = np.asarray(points, np.float64)
    if len(pts) < 3:
        return aabb_box(pts)
    from scipy.spatial import ConvexHull, QhullError
    xy = pts[:, :2]
    try:
        hull = xy[ConvexHull(xy).vertices]
    except (QhullError, ValueError):
        return aabb_box(pts)
    edges = np.diff(np.vstack([hull, hull[:1]]), axis=0)
    angles = np.unique(np.mod(np.arctan2(edges[:, 1], edges[:, 0]), np.pi / 2))
    best = None
    for a in angles:
        c, s = np.cos(a), np.sin(a)
        rx = hull[:, 0] * c + hull[:, 1] * s
        ry = -hull[:, 0] * s + hull[:, 1] * c
        area = (rx.max() - rx.min()) * (ry.max() - ry.min())
        if best is None or area < best[0] - 1e-12:
            best = (area, a, rx.min(), rx.max(), ry.min(), ry.max())
    _, a, x0, x1, y0, y1 = best
    cx_l, cy_l = (x0 + x1) / 2, (y0 + y1) / 2
    c, s = np.cos(a), np.sin(a)
    cx, cy = cx_l * c - cy_l * s, cx_l * s + cy_l * c
    z0, z1 = pts[:, 2].min(), pts[:, 2].max()
    dx, dy, yaw = x1 - x0, y1 - y0, a
    if yaw > np.pi / 4:  # keep yaw in (-pi/4, pi/4] by swapping the axes
        dx, dy, yaw = dy, dx, yaw - np.pi / 2
    return np.array([cx, cy, (z0 + z1) / 2, dx, dy, z1 - z0, yaw])


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(N,3) float32 unit normals: area-weighted mean of adjacent face normals.

    ``faces`` (F,3) int. Vertices in no face get (0,0,0)."""
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])  # length = 2 * area
    vn = np.zeros_like(v)
    for k in range(3):
        for d in range(3):
            vn[:, d] += np.bincount(f[:, k], weights=fn[:, d], minlength=len(v))
    norm = np.linalg.norm(vn, axis=1, keepdims=True)
    return np.where(norm > 0, vn / np.maximum(norm, 1e-30), 0.0).astype(np.float32)


def fit_height_plane(points: np.ndarray, iterations: int = 5, min_residual: float = 0.03) -> np.ndarray | None:
    """(3,) float64 ``(a, b, c)`` of the plane z = a x + b y + c through the (M,3) ``points``
    (metres), by least squares trimmed ``iterations`` times: each round keeps the points whose
    residual is below max(``min_residual``, 2.5 x the median absolute residual), so a few
    points off the plane (a chair leg's foot, a scanner's stray return) do not tilt it. None
    for fewer than 3 points."""
    p = np.asarray(points, np.float64).reshape(-1, 3)
    sol = None
    for _ in range(iterations):
        if len(p) < 3:
            break
        A = np.c_[p[:, :2], np.ones(len(p))]
        sol = np.linalg.lstsq(A, p[:, 2], rcond=None)[0]
        r = np.abs(p[:, 2] - A @ sol)
        p = p[r < max(min_residual, 2.5 * float(np.median(r)))]
    return sol


RIGID_TOL = 1e-3  # how far a file's rotation may stray from orthonormal (files round to 6 or 7 digits)


def rotation_problem(r: np.ndarray) -> str | None:
    """Why the (3,3) ``r`` is no rotation (det and how far ``r @ r.T`` strays from the identity),
    or None where it is one within ``RIGID_TOL``: a scale, mirror or zero matrix read as a
    rotation would change every distance in metres or put every point at one place."""
    det, off = float(np.linalg.det(r)), float(np.abs(r @ r.T - np.eye(3)).max())
    if off <= RIGID_TOL and det > 0:
        return None
    return f"det {det:.3g}, rotation times its transpose off the identity by {off:.3g} (at most {RIGID_TOL})"


def apply_transform(points: np.ndarray, T: np.ndarray) -> np.ndarray:
    """(N,3) points under a (4,4) homogeneous transform, float64."""
    return np.asarray(points, np.float64) @ T[:3, :3].T + T[:3, 3]


def bev_corners(box: np.ndarray) -> np.ndarray:
    """(4,2) counter-clockwise bird's-eye footprint of a LiDAR box ``[cx,cy,cz,dx,dy,dz,yaw]``."""
    h = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], np.float64) * box[3:5] / 2
    return h @ rot_z(box[6])[:2, :2].T + box[:2]


def _clip_left(poly: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sutherland-Hodgman step: the part of ``poly`` left of the directed edge a->b."""
    if len(poly) == 0:
        return poly
    out = []
    side = (b[0] - a[0]) * (poly[:, 1] - a[1]) - (b[1] - a[1]) * (poly[:, 0] - a[0])
    for i in range(len(poly)):
        j = (i + 1) % len(poly)
        if side[i] >= 0:
            out.append(poly[i])
        if (side[i] >= 0) != (side[j] >= 0):
            t = side[i] / (side[i] - side[j])
            out.append(poly[i] + t * (poly[j] - poly[i]))
    return np.array(out).reshape(-1, 2)


def polygon_area(poly: np.ndarray) -> float:
    """Area of a simple polygon (K,2)."""
    if len(poly) < 3:
        return 0.0
    x, y = poly[:, 0], poly[:, 1]
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def convex_intersection(pa: np.ndarray, pb: np.ndarray) -> float:
    """Area shared by two convex counter-clockwise polygons (exact clipping, no rasterising)."""
    poly = pa
    for i in range(len(pb)):
        poly = _clip_left(poly, pb[i], pb[(i + 1) % len(pb)])
    return polygon_area(poly)


def image_box_overlap(a: np.ndarray, b: np.ndarray, of_first: bool = False) -> np.ndarray:
    """(A,B) overlap of axis-aligned image boxes ``x0, y0, x1, y1`` (pixels): IoU, or with
    ``of_first`` the shared area as a share of the first box's (KITTI's DontCare criterion).
    Boxes that do not overlap, or only along an edge, give 0."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lo, hi = np.maximum(a[:, None, :2], b[None, :, :2]), np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(hi - lo, 0, None).prod(-1)
    area_a, area_b = ((q[:, 2] - q[:, 0]) * (q[:, 3] - q[:, 1]) for q in (a, b))
    denom = np.broadcast_to(area_a[:, None], inter.shape) if of_first else area_a[:, None] + area_b[None] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(inter > 0, inter / denom, 0.0)


def projected_hull(corners: np.ndarray, P: np.ndarray, image_size: tuple[int, int] | None = None,
                   min_depth: float = 0.1) -> np.ndarray:
    """(M,4) image boxes ``x0, y0, x1, y1`` (pixels) spanned by each set of 3D corners (M,K,3)
    projected with the 3x4 matrix ``P`` (corners in P's source frame: LiDAR for a LiDAR-to-image
    matrix, rectified camera for KITTI's ``P2``). Only corners deeper than ``min_depth`` metres
    count; with ``image_size`` ``(height, width)`` the box is clipped to the image. A set with
    no corner in front of the camera gives ``-1`` everywhere (an empty box: it overlaps nothing)."""
    c = np.asarray(corners, np.float64)
    c = c.reshape(-1, *c.shape[-2:]) if c.size else np.zeros((0, 8, 3))
    out = np.full((len(c), 4), -1.0)
    uvw = np.concatenate([c, np.ones(c.shape[:2] + (1,))], -1) @ np.asarray(P, np.float64).T
    front = uvw[..., 2] > min_depth
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = uvw[..., :2] / uvw[..., 2:3]
    lo = np.where(front[..., None], uv, np.inf).min(1)
    hi = np.where(front[..., None], uv, -np.inf).max(1)
    if image_size is not None:
        top = np.array([image_size[1] - 1, image_size[0] - 1], np.float64)
        lo, hi = np.clip(lo, 0, top), np.clip(hi, 0, top)
    seen = front.any(1)
    out[seen] = np.concatenate([lo, hi], 1)[seen]
    return out


def box_iou(a: np.ndarray, b: np.ndarray, mode: str = "bev") -> np.ndarray:
    """(A,B) IoU of LiDAR boxes (M,7) ``[cx,cy,cz,dx,dy,dz,yaw]``: ``bev`` footprint IoU or
    ``3d`` volume IoU (z extents overlap on the box centres +- dz/2)."""
    a = np.asarray(a, np.float64).reshape(-1, 7)
    b = np.asarray(b, np.float64).reshape(-1, 7)
    out = np.zeros((len(a), len(b)))
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            if np.linalg.norm(x[:2] - y[:2]) > 0.5 * (np.linalg.norm(x[3:5]) + np.linalg.norm(y[3:5])):
                continue
            inter = convex_intersection(bev_corners(x), bev_corners(y))
            if inter <= 0:
                continue
            if mode == "bev":
                union = x[3] * x[4] + y[3] * y[4] - inter
            else:
                zo = max(0.0, min(x[2] + x[5] / 2, y[2] + y[5] / 2) - max(x[2] - x[5] / 2, y[2] - y[5] / 2))
                inter = inter * zo
                union = x[3] * x[4] * x[5] + y[3] * y[4] * y[5] - inter
            out[i, j] = inter / union if union > 0 else 0.0
    return out


RADIUS_PAIRS_AT_ONCE = 1_000_000


def graph_components(m: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(m,) int64 connected component (ids 0..C-1) of each of ``m`` nodes joined by the edges
    ``a``-``b`` ((E,) int node indices)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    g = coo_matrix((np.ones(len(a)), (a, b)), shape=(m, m))
    return connected_components(g, directed=False)[1].astype(np.int64)


def radius_components(coord: np.ndarray, radius: float, max_pairs: int = RADIUS_PAIRS_AT_ONCE) -> np.ndarray:
    """(M,) int64 component of each point of ``coord`` (M,d): the connected components of the
    graph linking every two points at most ``radius`` apart. That graph grows with the density
    squared (a 1 m radius on a LiDAR object holds 10^3 pairs per point), so its pairs are
    enumerated for blocks of points holding at most ``max_pairs`` of them, each block's joins
    merged into the components so far: the memory stays bounded, the components are exact."""
    from scipy.spatial import cKDTree
    m = len(coord)
    label = np.arange(m, dtype=np.int64)
    if m < 2:
        return label
    tree = cKDTree(coord)
    counts = np.asarray(tree.query_ball_point(coord, radius, return_length=True), np.int64)
    if counts.sum() <= 2 * max_pairs:  # every pair at once (each is counted from both ends)
        pairs = tree.query_pairs(radius, output_type="ndarray")
        return graph_components(m, pairs[:, 0], pairs[:, 1])
    csum = np.cumsum(counts)
    a = 0
    while a < m:  # a block: the points a..b-1, their pairs within max_pairs (at least one point)
        b = min(max(int(np.searchsorted(csum, (csum[a - 1] if a else 0) + max_pairs, side="right")), a + 1), m)
        near = cKDTree(coord[a:b]).sparse_distance_matrix(tree, radius, output_type="ndarray")
        label = graph_components(m, label[near["i"].astype(np.int64) + a], label[near["j"].astype(np.int64)])[label]
        a = b
    return label


def joined_to(coord: np.ndarray, start: int, radius: float, neighbours: int | None = None) -> np.ndarray:
    """(M,) bool: the points of ``coord`` (M,3) joined to point ``start`` through chains of
    neighbours at most ``radius`` metres apart: every such pair (``radius_components``), or
    (``neighbours``) only each point's that many nearest."""
    from scipy.spatial import cKDTree
    m = len(coord)
    if neighbours is None:
        comp = radius_components(coord, radius)
    else:
        k = min(neighbours + 1, m)
        dist, nb = cKDTree(coord).query(coord, k=k, distance_upper_bound=radius)
        ok = np.isfinite(dist.reshape(m, k))
        comp = graph_components(m, np.repeat(np.arange(m), k)[ok.ravel()], nb.reshape(m, k)[ok])
    return comp == comp[start]
