"""Wall and floor surface: inside object boxes, and the room's surface classes outside them.

A tight box of furniture that stands against a wall or on the floor contains a slab of wall
or floor; a box labeller that gives every point in a box to its object gives that slab to the
object. GaPro removes it with a ScanNet "planes" file that none of its scripts make. Here it is
found from the cloud and the boxes alone, one box face at a time (box frame, z up):

* the points of a face's slab are those inside the box (inflated by ``margin``) within
  ``band`` metres of the face plane whose normal is within ``max_angle_deg`` of the face's;
* the face is structural when that surface *continues outside every box*: the strips of the
  face plane just beyond the box (``reach`` metres above and to both sides of a vertical face,
  around all four sides of the bottom face) are cut into ``cell`` m squares, and at least
  ``min_continue`` of those cells hold a point of the same orientation that lies in no box.
  A wall continues above and beside the desk in front of it and the floor continues around a
  chair; the front of a cabinet in a row of cabinets continues only into its neighbours' boxes,
  and a side face of a free-standing object continues into air;
* an object flat on a wall — a door, window, picture, whiteboard or curtain — keeps its points:
  vertical faces of a box thinner than ``thin`` metres along their normal are not tested, and a
  box whose slab points would be most of its points (more than ``flat_share``) keeps them.

``surface_classes`` names the room's own surfaces from geometry alone: a box labeller knows
the objects but not the wall, floor or ceiling, which a semantic model must still learn.

Deterministic: only counting, no sampling.
"""
from __future__ import annotations

import numpy as np

from ..classes import stuff_classes
from ..geometry import points_in_boxes, to_box_frame

# (axis, sign) of the faces tested: four vertical sides and the bottom (ceilings rarely matter)
_FACES = ((0, 1.0), (0, -1.0), (1, 1.0), (1, -1.0), (2, -1.0))


def _ring_cells(uv: np.ndarray, half_u: float, half_v: float, reach: float, cell: float, top_only: bool) -> tuple[np.ndarray, int]:
    """Cell ids of face-plane points ``uv`` (K,2) in the strips around the face rectangle, and
    the number of cells those strips have. ``top_only``: above and beside (vertical faces)."""
    nu = int(np.ceil((2 * half_u + 2 * reach) / cell))
    nv = int(np.ceil((2 * half_v + 2 * reach) / cell))
    iu = np.floor((uv[:, 0] + half_u + reach) / cell).astype(np.int64)
    iv = np.floor((uv[:, 1] + half_v + reach) / cell).astype(np.int64)
    # cell centres: which cells are in the ring
    cu = (np.arange(nu) + 0.5) * cell - half_u - reach
    cv = (np.arange(nv) + 0.5) * cell - half_v - reach
    inside_u, inside_v = np.abs(cu) <= half_u, np.abs(cv) <= half_v
    ring = ~(inside_u[:, None] & inside_v[None, :])
    if top_only:  # nothing below a vertical face: the floor ends it
        ring &= (cv >= -half_v)[None, :]
    ok = (iu >= 0) & (iu < nu) & (iv >= 0) & (iv < nv)
    iu, iv = iu[ok], iv[ok]
    hit = ring[iu, iv]
    return np.unique(iu[hit] * nv + iv[hit]), int(ring.sum())


def structure_in_boxes(coord: np.ndarray, normal: np.ndarray, boxes: np.ndarray, *, margin: float = 0.02,
                       band: float = 0.06, reach: float = 0.3, cell: float = 0.1, min_continue: float = 0.25,
                       max_angle_deg: float = 30.0, flat_share: float = 0.5, thin: float = 0.2) -> np.ndarray:
    """(N,) bool: points inside some box that belong to a wall or the floor behind/under it.

    Args:
        coord: (N,3) float, z up. normal: (N,3) float unit normals (sign ignored).
        boxes: (M,7) ``[cx,cy,cz,dx,dy,dz,yaw]``.
        Other arguments: see the module docstring (metres, degrees, shares).
    """
    coord = np.asarray(coord, np.float64)
    normal = np.asarray(normal, np.float64)
    boxes = np.asarray(boxes, np.float64).reshape(-1, 7)
    out = np.zeros(len(coord), bool)
    if not len(boxes):
        return out
    in_any = points_in_boxes(coord, boxes, margin=margin).any(1)
    cos = np.cos(np.radians(max_angle_deg))
    for b in boxes:
        r = 0.5 * np.linalg.norm(b[3:6]) + reach + band
        near = np.flatnonzero(np.abs(coord - b[:3]).max(1) <= r)
        if not len(near):
            continue
        loc = to_box_frame(coord[near], b)
        c, s = np.cos(b[6]), np.sin(b[6])
        n = normal[near]
        nloc = np.abs(np.stack([n[:, 0] * c + n[:, 1] * s, -n[:, 0] * s + n[:, 1] * c, n[:, 2]], 1))
        half = b[3:6] / 2
        inside = (np.abs(loc) <= half + margin).all(1)
        slab_all = np.zeros(len(near), bool)
        for axis, sign in _FACES:
            if axis != 2 and b[3 + axis] < thin:  # a thin box on a wall: the object is flat on it
                continue
            t = sign * loc[:, axis] - half[axis]  # 0 on the face, < 0 inside
            on = (np.abs(t) < band) & (nloc[:, axis] > cos)
            slab = on & inside
            if not slab.any():
                continue
            u_ax, v_ax = [a for a in (0, 1, 2) if a != axis]
            free = on & ~inside & ~in_any[near]
            cells, n_cells = _ring_cells(loc[free][:, [u_ax, v_ax]], half[u_ax], half[v_ax], reach, cell,
                                         top_only=axis != 2)
            if n_cells and len(cells) >= min_continue * n_cells:
                slab_all |= slab
        if slab_all.sum() <= flat_share * max(inside.sum(), 1):
            out[near[slab_all]] = True
    return out


def _level(z: np.ndarray, bin_width: float) -> float | None:
    """The height (m) of the most populated ``bin_width`` slice of ``z``; None when empty."""
    if not len(z):
        return None
    edges = np.arange(z.min(), z.max() + 2 * bin_width, bin_width)
    hist, edges = np.histogram(z, bins=edges)
    i = int(hist.argmax())
    return float(np.median(z[(z >= edges[i]) & (z <= edges[i + 1])]))


def surface_classes(coord: np.ndarray, normal: np.ndarray, classes: tuple[str, ...], *, max_angle_deg: float = 30.0,
                    band: float = 0.1, bin_width: float = 0.05) -> np.ndarray:
    """(N,) int64: each point's surface class by geometry, -1 where none fits.

    Meant for the points that no object box took (``classes.stuff_classes`` are the candidates):
    * floor — a horizontal point (normal within ``max_angle_deg`` of vertical) within ``band``
      metres of the floor level, the most populated ``bin_width`` slice of horizontal points'
      heights in the lower half of the cloud; ceiling likewise in the upper half;
    * wall — any point that is not horizontal;
    * background (a list whose only surface is ``background``, as KITTI's) — every point;
    * a horizontal point at neither level (a shelf or table no box covers) stays -1.

    Args: coord (N,3) float metres, z up; normal (N,3) float unit normals (sign ignored);
    classes: the scene's class names (label i means ``classes[i]``).
    """
    coord = np.asarray(coord, np.float64).reshape(-1, 3)
    normal = np.asarray(normal, np.float64).reshape(-1, 3)
    out = np.full(len(coord), -1, np.int64)
    stuff = stuff_classes(tuple(classes))
    if not len(coord) or not stuff:
        return out
    index = {c: i for i, c in enumerate(classes)}
    if stuff == ("background",):
        out[:] = index["background"]
        return out
    flat = np.abs(normal[:, 2]) > np.cos(np.radians(max_angle_deg))
    z = coord[:, 2]
    middle = 0.5 * (z.min() + z.max())
    if "wall" in stuff:
        out[~flat] = index["wall"]
    for name, half in (("floor", z < middle), ("ceiling", z >= middle)):
        if name in stuff:
            level = _level(z[flat & half], bin_width)
            if level is not None:
                out[flat & half & (np.abs(z - level) < band)] = index[name]
    return out
