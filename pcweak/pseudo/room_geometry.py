"""Indoor geometry the propagation reads (z up, metres): the floor's level and plane, the
floor levels a seed stands on, node normals oriented as seen from inside the room, the
convexity of an edge between two faces, and edges joining the floor's pieces."""
from __future__ import annotations

import numpy as np

from ..geometry import joined_to


def floor_level(coord: np.ndarray) -> float:
    """The floor's height: the 1st percentile of z of the (N,3) points (z up; robust to a few
    points below the floor)."""
    return float(np.percentile(coord[:, 2], 1))

# Floor-labelled points within this many metres of ``floor_level`` (then of the plane fitted to
# them) fit the floor plane of ``above_floor``; a plane tilted more than the angle is not a floor
# (a scene that is not z-up), and then nothing is taken off the floor.
FLOOR_SUPPORT = 0.3
FLOOR_MAX_TILT_DEG = 10.0
# A raised floor level (``raised_floor``) is followed from its seed through floor-labelled
# neighbours at most this many metres apart (its FLOOR_NEIGHBOURS nearest).
FLOOR_LINK = 0.1
FLOOR_NEIGHBOURS = 8


def warn_if_not_z_up(normal: np.ndarray, floor_seeds: np.ndarray) -> None:
    """A warning when most of the (K,) points labelled floor have (N,3) unit normals far from
    the z axis (median |n_z| below 0.5): the scene is likely not z-up (a y-up PLY, say), and
    every height-based step reads z. Silent with fewer than 3 floor points."""
    floor_seeds = np.asarray(floor_seeds, np.int64)
    if len(floor_seeds) < 3:
        return
    nz = float(np.median(np.abs(normal[floor_seeds, 2])))
    if nz < 0.5:
        import warnings
        warnings.warn(f"propagate: the {len(floor_seeds)} points labelled floor face sideways (median |normal z| "
                      f"{nz:.2f}); pcweak takes scenes z-up: turn the scene so that z points up", stacklevel=3)


def above_floor(coord: np.ndarray, labelled_floor: np.ndarray, band: float,
                floor_seeds: np.ndarray | None = None) -> np.ndarray:
    """(N,) bool: the points of ``labelled_floor`` (N,) bool that lie more than ``band`` metres
    above the floor, a plane ``geometry.fit_height_plane`` fits to the labelled floor points near
    the floor level (twice: near ``floor_level``, then near the first plane), so that a scan
    whose floor is tilted a little or not quite at the lowest points is measured from its own
    floor; less the raised floor levels that ``floor_seeds`` (K,) int, points a person labelled
    floor, stand on (``raised_floor``). All False when fewer than 3 points support the plane or
    it is tilted more than ``FLOOR_MAX_TILT_DEG`` from horizontal. ``coord`` (N,3) metres, z up."""
    from ..geometry import fit_height_plane
    coord = np.asarray(coord, np.float64)
    out = np.zeros(len(coord), bool)
    if not labelled_floor.any():
        return out
    height = coord[:, 2] - floor_level(coord)
    for _ in range(2):
        near = labelled_floor & (np.abs(height) < FLOOR_SUPPORT)
        plane = fit_height_plane(coord[near])
        if plane is None:
            return out
        height = coord[:, 2] - (coord[:, :2] @ plane[:2] + plane[2])
    if np.degrees(np.arctan(np.hypot(plane[0], plane[1]))) > FLOOR_MAX_TILT_DEG:
        return out
    high = labelled_floor & (height > band)
    if floor_seeds is not None and len(floor_seeds):
        high &= ~raised_floor(coord, height, high, np.asarray(floor_seeds, np.int64), band)
    return high


def raised_floor(coord: np.ndarray, height: np.ndarray, high: np.ndarray, floor_seeds: np.ndarray,
                 band: float) -> np.ndarray:
    """(N,) bool: the floor levels above the floor plane that a seed labelled floor stands on (a
    platform, a step, an auditorium's tier). For each of ``floor_seeds`` more than ``band``
    above the plane (``height`` (N,) metres above it), the points of ``high`` (N,) bool within
    ``band`` of the seed's height that are joined to it through neighbours at most
    ``FLOOR_LINK`` apart; a strip of floor label on a wall's foot is joined to its own seeds
    only, not to the furniture the rule is for."""
    keep = np.zeros(len(coord), bool)
    for s in floor_seeds[height[floor_seeds] > band]:
        if keep[s]:
            continue
        level = high & (np.abs(height - height[s]) < band)
        level[s] = True
        idx = np.flatnonzero(level)
        keep[idx[joined_to(coord[idx], int(np.searchsorted(idx, s)), FLOOR_LINK, FLOOR_NEIGHBOURS)]] = True
    return keep


# Horizontal faces lower than this above the floor face up (floor, seats, tables, cabinet
# tops); higher ones face down (ceiling).
UPWARD_FACES_BELOW = 2.0


def orient_normals(centroid: np.ndarray, normal: np.ndarray, coord: np.ndarray) -> np.ndarray:
    """Signs for unoriented node normals, as seen from inside the scene: a horizontal face
    (|n_z| > 0.8) lower than ``UPWARD_FACES_BELOW`` metres above ``floor_level`` faces up, every other face towards the scene's centre (median x, y, z). Right for
    walls, floors and the room-facing sides of furniture, which is what a scan sees (on the
    real KITTI frames, facing the sensor instead changed nothing).

    Args: centroid (S,3), normal (S,3) unit node normals of either sign; coord (N,3) points.
    Returns: (S,3) float64 oriented normals."""
    n = np.asarray(normal, np.float64).copy()
    centre = np.median(coord, 0)
    flip = (n * (centre - centroid)).sum(1) < 0
    n[flip] *= -1
    up = (np.abs(n[:, 2]) > 0.8) & (centroid[:, 2] - floor_level(coord) < UPWARD_FACES_BELOW)
    n[up] *= np.sign(n[up, 2])[:, None]
    return n


def edge_convexity(centroid: np.ndarray, oriented_normal: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(E,) float (n_a - n_b) . (c_a - c_b) / |c_a - c_b| for edges a-b (the local convexity
    criterion of LCCP, Stein et al. 2014): > 0 where the two faces bend away from each other (a
    box's front and side), < 0 where they meet in a valley (a cabinet against a wall, a chair on
    the floor), about 0 on a flat surface."""
    d = centroid[a] - centroid[b]
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
    return ((oriented_normal[a] - oriented_normal[b]) * d).sum(1)


def floor_edges(centroid: np.ndarray, normal: np.ndarray, coord: np.ndarray, k: int = 6,
                band: float = 0.08, facing_z: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Edges between the floor's nodes, however far apart the graph puts them: each floor node
    (horizontal, |n_z| > 0.9, centroid within ``band`` metres of ``floor_level``) joins its ``k`` nearest floor nodes. The floor is
    one surface, but furniture and unscanned strips cut it into pieces, and a piece between a
    bed and a desk is closer along the graph to them than to the floor's seeds; these edges let
    the floor's seeds reach all of it (figures: docs/results.md).

    A node whose points' normals all face down (``facing_z`` < -0.9, possible only with
    oriented normals) is the underside of something resting on the floor, not floor: a scan
    never sees one, but box-sampled synthetic rooms have them.

    Args: centroid (S,3) float node positions; normal (S,3) unit node normals (either sign);
    coord (N,3) the points; z is up; facing_z (S,) mean signed n_z of each node's points.
    Returns: two (E,) int64 arrays of node pairs (a < b), without repeats."""
    from scipy.spatial import cKDTree
    ok = (np.abs(normal[:, 2]) > 0.9) & (np.abs(centroid[:, 2] - floor_level(coord)) < band)
    if facing_z is not None:
        ok &= facing_z > -0.9
    sel = np.flatnonzero(ok)
    if len(sel) < 2 or k < 1:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    _, j = cKDTree(centroid[sel, :2]).query(centroid[sel, :2], min(k + 1, len(sel)))
    a = np.repeat(sel, j.shape[1] - 1)
    b = sel[j[:, 1:].ravel()]
    key = np.unique(np.minimum(a, b) * len(centroid) + np.maximum(a, b))
    key = key[key // len(centroid) != key % len(centroid)]
    return key // len(centroid), key % len(centroid)
