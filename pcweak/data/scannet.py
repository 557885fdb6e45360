"""ScanNet reader (v1 and v2 releases, the dataset's own files) and a writer of the same layout.

A scene folder ``<root>/scans/<scene>/`` holds::

    <scene>_vh_clean_2.ply                       mesh: x y z red green blue (+alpha), faces
    <scene>_vh_clean_2.labels.ply                optional; not needed (labels come from the aggregation)
    <scene>_vh_clean_2.0.010000.segs.json        {"segIndices": [...]} over-segmentation per vertex
    <scene>.aggregation.json | <scene>_vh_clean.aggregation.json   {"segGroups": [{"objectId","segments","label"}]}
    <scene>.txt                                  "axisAlignment = 16 numbers" (v2; absent in v1)
    color/ depth/ pose/ intrinsic/               RGB-D frames as exported by SensReader (optional)

Semantic labels are derived from each object's raw category through
``scannetv2-labels.combined.tsv`` (raw_category -> nyu40id -> ScanNet-20), which works for both
releases; the v1 table ``scannet-labels.combined.tsv`` is used as a fallback for v1 category
names. The tables are looked up in the scene folder, ``<root>``, ``<root>/meta_data`` and
``$PCWEAK_SCANNET_META``. Frames in mmdetection3d's ``<root>/posed_images/<scene>/`` layout are
read too.

A segment that two objects of the aggregation list takes the later object's instance and class,
so each point's (class, instance) pair is one object's. ScanNet's own ground-truth export
(``BenchmarkScripts/3d_helpers/export_train_mesh_for_evaluation.py``, Python 2) also gives it the
later object's instance (a dict of small integer ids iterates in ascending order) but the class
in its label dict's iteration order, Python 2's string-hash order, which no rule of the file
reproduces; the two differ only on such shared segments (none among the 418 segments of the 55
objects of the shared sample's scene0000_00).
"""
from __future__ import annotations

import csv
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ReaderError
from ..safe_load import numpy_load, torch_load
from ..geometry import aabb_box, apply_transform, rotation_problem, vertex_normals
from ..scene import Frame, Scene, WeakLabels
from .images import depth_loader, image_loader, image_size
from .point_fields import npy_array, npy_labels
from ..classes import SCANNET20, SCANNET_STUFF, nyu40_to_scannet20
from ..textio import read_text

TSV_V2 = "scannetv2-labels.combined.tsv"
TSV_V1 = "scannet-labels.combined.tsv"


def _read_ply(path: Path):
    from plyfile import PlyData
    if not path.is_file():
        raise ReaderError(f"{path}: file not found")
    try:
        ply = PlyData.read(str(path))
        v = ply["vertex"].data
    except Exception as e:  # plyfile raises several types on corrupt input
        raise ReaderError(f"{path}: not a readable PLY file ({type(e).__name__}: {e})") from e
    faces = None
    if "face" in ply and len(ply["face"].data):
        fd = ply["face"].data
        name = "vertex_indices" if "vertex_indices" in fd.dtype.names else fd.dtype.names[0]
        try:
            faces = np.vstack(fd[name]).astype(np.int64)
        except ValueError as e:
            raise ReaderError(f"{path}: faces are not triangles ({e})") from e
    return v, faces


def _find_meta(scene_dir: Path, name: str) -> Path | None:
    root = scene_dir.parent.parent
    cands = [scene_dir / name, root / name, root / "meta_data" / name, scene_dir.parent / name]
    if os.environ.get("PCWEAK_SCANNET_META"):
        cands.insert(0, Path(os.environ["PCWEAK_SCANNET_META"]) / name)
    return next((p for p in cands if p.is_file()), None)


def load_label_map(scene_dir: Path) -> dict[str, int]:
    """Raw category (lower-case) -> NYU40 id, from the v2 table with the v1 table as fallback."""
    out: dict[str, int] = {}
    found = False
    for name, key in ((TSV_V1, "category"), (TSV_V2, "raw_category")):  # v2 overrides v1
        p = _find_meta(scene_dir, name)
        if p is None:
            continue
        found = True
        with open(p, newline="") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                try:
                    out[row[key].strip().lower()] = int(row["nyu40id"])
                except (KeyError, ValueError, TypeError):
                    continue
    if not found:
        raise ReaderError(f"{scene_dir}: cannot find {TSV_V2} (looked in the scene folder, its root, "
                          f"<root>/meta_data and $PCWEAK_SCANNET_META)")
    return out


def read_axis_alignment(path: str | os.PathLike) -> np.ndarray:
    """A 4x4 axis-alignment matrix from a ScanNet ``<scene>.txt``, a JSON with
    ``axis_align_matrix`` (mmdetection3d infos), or a plain 4x4 text matrix."""
    path = Path(path)
    if not path.is_file():
        raise ReaderError(f"{path}: axis-alignment file not found")
    text = read_text(path, "an axis-alignment file")
    try:
        if path.suffix == ".json":
            m = np.array(json.loads(text)["axis_align_matrix"], np.float64)
        elif "axisAlignment" in text:
            line = next(l for l in text.splitlines() if l.strip().startswith("axisAlignment"))
            m = np.array([float(x) for x in line.split("=", 1)[1].split()], np.float64)
        else:
            m = np.array(text.split(), np.float64)
    except (KeyError, TypeError, ValueError, StopIteration) as e:  # TypeError: a JSON list, not an object
        raise ReaderError(f"{path}: no 4x4 axis-alignment matrix in it ({type(e).__name__}: {e})") from e
    return axis_matrix(m, str(path))


def axis_matrix(value: Any, where: str) -> np.ndarray:
    """(4,4) float64 axis-alignment matrix of ``value`` (an array or nested list); ReaderError
    starting with ``where`` when it is not 4x4, not finite, or not a rigid motion (a rotation
    and a translation, last row 0 0 0 1, as ScanNet's and mmdetection3d's are: a scale or a zero
    matrix would change every size in metres, or put every point at one place)."""
    try:
        m = np.asarray(value, np.float64).reshape(4, 4)
    except (TypeError, ValueError) as e:
        raise ReaderError(f"{where}: no 4x4 axis-alignment matrix in it ({e})") from e
    if not np.isfinite(m).all():
        raise ReaderError(f"{where}: axis-alignment matrix has non-finite values")
    return rigid_matrix(m, where, "axis-alignment matrix")


def rigid_matrix(m: np.ndarray, where: str, what: str) -> np.ndarray:
    """The finite (4,4) ``m``; ReaderError starting with ``where`` unless it is a rotation and a
    translation (last row 0 0 0 1, the rotation part one: ``geometry.rotation_problem``)."""
    why = rotation_problem(m[:3, :3])
    if not np.allclose(m[3], [0, 0, 0, 1], atol=1e-6) or why:
        raise ReaderError(f"{where}: the {what} is not a rotation and a translation (last row "
                          f"{np.round(m[3], 4).tolist()}; {why or 'it should be 0 0 0 1'})")
    return m


def axis_alignment_of(value: np.ndarray | str | os.PathLike) -> np.ndarray:
    """The readers' ``axis_alignment=`` argument as a (4,4) matrix: a file
    (``read_axis_alignment``) or a matrix."""
    if isinstance(value, (str, os.PathLike)):
        return read_axis_alignment(value)
    return axis_matrix(value, "axis_alignment")


def _scene_txt_alignment(scene_dir: Path, name: str) -> np.ndarray | None:
    p = scene_dir / f"{name}.txt"
    if p.is_file() and "axisAlignment" in read_text(p, "a ScanNet scene .txt"):
        return read_axis_alignment(p)
    return None


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ReaderError(f"{path}: not readable JSON ({e})") from e


def _json_field(path: Path, key: str, kind: type) -> Any:
    """``json[key]`` of a JSON file whose top level must be an object holding ``key`` of type
    ``kind``; ReaderError naming the file and the key otherwise."""
    doc = _load_json(path)
    if not isinstance(doc, dict):
        raise ReaderError(f"{path}: the top level is a {type(doc).__name__}, expected an object with {key!r}")
    if key not in doc:
        raise ReaderError(f"{path}: no {key!r} key (has {sorted(doc)[:10]})")
    if not isinstance(doc[key], kind):
        raise ReaderError(f"{path}: {key!r} is a {type(doc[key]).__name__}, expected a {kind.__name__}")
    return doc[key]


def _int_list(path: Path, values: Any, what: str) -> np.ndarray:
    """(K,) int64 from a JSON list of integers; ReaderError naming ``what`` for anything else
    (a float such as 3.5, a string, a nested list)."""
    if not isinstance(values, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        bad = next((v for v in values if not isinstance(v, int) or isinstance(v, bool)), values) \
            if isinstance(values, list) else values
        raise ReaderError(f"{path}: {what} must be a list of integers (found {bad!r})")
    return np.asarray(values, np.int64).reshape(-1)


def source_paths(scene_dir: str | os.PathLike) -> list[Path]:
    """The files and folders ``read_scannet`` opens for a scan folder: the folder itself (and by
    name its meshes), the label tables it finds (``_find_meta``) and
    ``<root>/posed_images/<scene>``."""
    d = Path(scene_dir)
    tables = [_find_meta(d, name) for name in (TSV_V1, TSV_V2)]
    meshes = [d / f"{d.name}_vh_clean_2.ply", d / f"{d.name}_vh_clean_2.labels.ply"]
    return [d, *meshes, *(t for t in tables if t is not None), d.parent.parent / "posed_images" / d.name]


def read_scannet(scene_dir: str | os.PathLike, axis_alignment: np.ndarray | str | None = None,
                 frames: bool = True, frame_step: int = 1) -> Scene:
    """Read a ScanNet scene folder into a ``Scene`` (points in the mesh's vertex order).

    Args:
        scene_dir: ``<root>/scans/<scene>``.
        axis_alignment: a (4,4) matrix or a file (see ``read_axis_alignment``) used when the
            scene's ``.txt`` has no ``axisAlignment`` (ScanNet v1); the matrix is applied to the
            points, boxes and frame poses and kept in ``Scene.axis_alignment``.
        frames: read posed RGB-D frames when present (lazily: images load on access).
        frame_step: keep every ``frame_step``-th frame.
    """
    d = Path(scene_dir)
    if not d.is_dir():
        raise ReaderError(f"{d}: ScanNet scene folder not found")
    name = d.name
    mesh = d / f"{name}_vh_clean_2.ply"
    v, faces = _read_ply(mesh)
    try:
        xyz = np.stack([v["x"], v["y"], v["z"]], 1).astype(np.float64)
        rgb = np.stack([v["red"], v["green"], v["blue"]], 1).astype(np.float32) / 255.0
    except ValueError as e:
        raise ReaderError(f"{mesh}: vertex element lacks x/y/z/red/green/blue ({e})") from e
    if not np.isfinite(xyz).all():
        raise ReaderError(f"{mesh}: {int((~np.isfinite(xyz)).any(1).sum())} vertices have NaN/inf coordinates")
    n = len(xyz)

    A = _scene_txt_alignment(d, name)
    if A is None and axis_alignment is not None:
        A = axis_alignment_of(axis_alignment)
    elif A is None:
        warnings.warn(f"{d / (name + '.txt')}: no axisAlignment (a ScanNet v1 scene?): the points stay in the raw scan frame, "
                      "not aligned with the room's walls; pass --axis-align FILE (Python: axis_alignment=) with the matrix "
                      "(e.g. mmdetection3d's infos/<scene>.json) to align them")
    normal = vertex_normals(xyz, faces) if faces is not None else None
    if A is not None:
        xyz = apply_transform(xyz, A)
        if normal is not None:
            normal = (normal @ A[:3, :3].T).astype(np.float32)

    segment = semantic = instance = boxes = box_labels = None
    seg_path = d / f"{name}_vh_clean_2.0.010000.segs.json"
    if seg_path.is_file():
        seg = _int_list(seg_path, _json_field(seg_path, "segIndices", list), "segIndices")
        if len(seg) != n:
            raise ReaderError(f"{seg_path}: segIndices has {len(seg)} entries but the mesh has {n} vertices")
        _, segment = np.unique(seg, return_inverse=True)
        segment = segment.ravel()
    agg_path = next((p for p in (d / f"{name}.aggregation.json", d / f"{name}_vh_clean.aggregation.json") if p.is_file()), None)
    extras: dict[str, np.ndarray] = {}
    if agg_path is not None:
        if segment is None:
            raise ReaderError(f"{seg_path}: needed with {agg_path.name} to map objects to vertices")
        label_map = load_label_map(d)
        groups = _json_field(agg_path, "segGroups", list)
        seg_to_obj = {}
        obj_sem, raw_names, missing = [], [], {}
        present = set(np.unique(seg).tolist())
        for k, g in enumerate(groups):
            if not isinstance(g, dict):
                raise ReaderError(f"{agg_path}: segGroups[{k}] is a {type(g).__name__}, expected an object")
            raw = str(g.get("label", "")).strip().lower()
            raw_names.append(raw)
            obj_sem.append(nyu40_to_scannet20(label_map.get(raw, 0)))
            segs = _int_list(agg_path, g.get("segments", []), f"segGroups[{k}].segments")
            gone = [int(s) for s in segs if int(s) not in present]
            if gone:
                missing[k] = gone
            for s in segs:
                seg_to_obj[int(s)] = k
        for k, gone in missing.items():
            warnings.warn(f"{agg_path}: object {k} ({raw_names[k]!r}) names segments {gone[:5]}"
                          f"{' ...' if len(gone) > 5 else ''} that {seg_path.name} does not have; "
                          f"{'the object has no points' if len(gone) == len(groups[k].get('segments', [])) else 'its other segments are kept'}")
        inst_of_seg = np.full(int(seg.max()) + 1, -1, np.int64)
        for s, k in seg_to_obj.items():
            if 0 <= s < len(inst_of_seg):
                inst_of_seg[s] = k
        instance = inst_of_seg[seg]
        obj_sem = np.array(obj_sem, np.int64).reshape(-1)
        semantic = np.where(instance >= 0, obj_sem[np.maximum(instance, 0)] if len(obj_sem) else -1, -1)
        unknown = sorted({r for r in raw_names if r not in label_map})
        if unknown:
            warnings.warn(f"{agg_path}: categories not in the label tables, left unlabelled: {unknown}")
        extras["instance_raw_category"] = np.array(raw_names, dtype=np.str_).reshape(-1)
        boxes, box_labels = boxes_of_instances(xyz, instance, semantic)
    meta = {"dataset": "scannet", "source": str(d), "axis_aligned": A is not None}
    if segment is None and faces is not None:
        # no segs.json: the same algorithm on the same mesh (ScanNet's segmentator)
        from ..segment.superpoints import mesh_segments
        segment = mesh_segments(xyz, faces)
        meta["segment_source"] = "mesh_segments"
    frame_list = _read_frames(d, A, frame_step) if frames else []
    return Scene(name=name, coord=xyz.astype(np.float32), classes=SCANNET20, color=rgb, normal=normal,
                 semantic=semantic, instance=instance, segment=segment, boxes=boxes, box_labels=box_labels,
                 frames=frame_list, axis_alignment=A, extras=extras, meta=meta)


def boxes_of_instances(xyz: np.ndarray, instance: np.ndarray, semantic: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ScanNet's detection boxes from per-point labels: (M,7) float32 axis-aligned boxes (yaw 0)
    around each instance of at least two points whose class (its points' majority ScanNet-20
    label) is an object, not wall or floor, in instance-id order, and their (M,) int64 labels."""
    stuff = {SCANNET20.index(c) for c in SCANNET_STUFF}
    bx, bl = [], []
    for k in np.unique(instance[instance >= 0]):
        m = instance == k
        sem = semantic[m]
        sem = sem[sem >= 0]
        if m.sum() < 2 or not len(sem):
            continue
        c = int(np.bincount(sem).argmax())
        if c in stuff:
            continue
        bx.append(aabb_box(xyz[m]))
        bl.append(c)
    return np.array(bx, np.float32).reshape(-1, 7), np.array(bl, np.int64)


def _stem_key(p: Path):
    return (int(p.stem), p.stem) if p.stem.isdigit() else (1 << 60, p.stem)


def _read_matrix(path: Path, shape: tuple[int, int]) -> np.ndarray:
    try:
        return np.loadtxt(path, dtype=np.float64).reshape(shape)
    except (OSError, ValueError) as e:
        raise ReaderError(f"{path}: expected a {shape[0]}x{shape[1]} matrix ({e})") from e


def _read_intrinsics(path: Path) -> np.ndarray:
    """(3,3) camera matrix of a ScanNet ``intrinsic*.txt`` (4x4); ReaderError naming the file
    unless its focal lengths are finite and > 0 and its principal point finite."""
    K = _read_matrix(path, (4, 4))[:3, :3]
    if not (np.isfinite(K).all() and K[0, 0] > 0 and K[1, 1] > 0):
        raise ReaderError(f"{path}: not a camera matrix (focal lengths fx {K[0, 0]:g}, fy {K[1, 1]:g} must be > 0, "
                          f"every value finite)")
    return K


def _read_frames(d: Path, A: np.ndarray | None, step: int, posed: Path | None = None) -> list[Frame]:
    """SensReader export (``color/ depth/ pose/ intrinsic/``) or ``<root>/posed_images/<scene>/``
    (``posed``: that folder, when it is not beside ``<root>/scans``)."""
    name = d.name
    items = []  # (stem, colour path, depth path, pose path)
    if posed is None and (d / "pose").is_dir():
        for pp in sorted((d / "pose").glob("*.txt"), key=_stem_key):
            c = next((d / "color" / f"{pp.stem}{e}" for e in (".jpg", ".png") if (d / "color" / f"{pp.stem}{e}").is_file()), None)
            dp = d / "depth" / f"{pp.stem}.png"
            items.append((pp.stem, c, dp if dp.is_file() else None, pp))
        Kc = _read_intrinsics(d / "intrinsic" / "intrinsic_color.txt") if (d / "intrinsic" / "intrinsic_color.txt").is_file() else None
        Kd = _read_intrinsics(d / "intrinsic" / "intrinsic_depth.txt") if (d / "intrinsic" / "intrinsic_depth.txt").is_file() else None
    else:
        pd = posed if posed is not None else d.parent.parent / "posed_images" / name
        if not pd.is_dir():
            return []
        for pp in sorted(pd.glob("*.txt"), key=_stem_key):
            if pp.name == "intrinsic.txt":
                continue
            c, dp = pd / f"{pp.stem}.jpg", pd / f"{pp.stem}.png"
            items.append((pp.stem, c if c.is_file() else None, dp if dp.is_file() else None, pp))
        Kc = _read_intrinsics(pd / "intrinsic.txt") if (pd / "intrinsic.txt").is_file() else None
        Kd = None  # not shipped: derived from the colour matrix below
    if not items:
        return []
    if Kc is None and Kd is None:
        raise ReaderError(f"{d}: frames found but no intrinsics (intrinsic/intrinsic_color.txt or intrinsic.txt)")
    frames, skipped = [], []
    for stem, cp, dp, pp in items[::max(1, step)]:
        pose = _read_matrix(pp, (4, 4))
        if not np.isfinite(pose).all():  # SensReader writes -inf where the tracking was lost
            skipped.append(stem)
            continue
        rigid_matrix(pose, str(pp), "camera pose")
        if A is not None:
            pose = A @ pose
        K = Kd
        if dp is not None and K is None:
            # depth and colour cameras are registered: scale the colour matrix to the depth size
            (wc, hc), (wd, hd) = image_size(cp), image_size(dp)
            K = Kc.copy()
            K[0] *= wd / wc
            K[1] *= hd / hc
        if dp is None:
            K = Kc
        frames.append(Frame(stem, pose, K, image=image_loader(cp) if cp is not None else None,
                            depth=depth_loader(dp) if dp is not None else None,
                            color_intrinsics=Kc if (dp is not None and Kc is not None) else None))
    if skipped:
        warnings.warn(f"{d}: skipped {len(skipped)} frames with invalid (non-finite) poses: {skipped[:10]}{' ...' if len(skipped) > 10 else ''}")
    return frames


def read_limited_annotation(path: str | os.PathLike, scene: Scene) -> WeakLabels:
    """ScanNet Data-Efficient limited annotation (``points20`` .. ``points200``: a dict scene name
    -> point indices, saved with ``torch.save``; .json and .npz dicts are accepted too) as
    ``WeakLabels`` whose point classes come from ``scene.semantic``. Nothing in the file is
    unpickled (``safe_load``)."""
    path = Path(path)
    if not path.is_file():
        raise ReaderError(f"{path}: limited-annotation file not found")
    try:
        if path.suffix == ".json":
            table = json.loads(path.read_text())
        elif path.suffix in (".npz",):
            with np.load(path) as z:
                table = {k: z[k] for k in z.files}
        elif path.suffix == ".npy":
            table = numpy_load(path, "limited annotation")
        else:
            table = torch_load(path, "limited annotation")
    except ReaderError:
        raise
    except Exception as e:
        raise ReaderError(f"{path}: cannot read limited-annotation dict ({type(e).__name__}: {e})") from e
    if not isinstance(table, dict):
        raise ReaderError(f"{path}: expected a dict scene -> point indices, got {type(table).__name__}")
    if scene.name not in table:
        raise ReaderError(f"{path}: no entry for scene {scene.name!r}")
    idx = np.asarray(table[scene.name]).astype(np.int64).reshape(-1)
    if len(idx) and (idx.min() < 0 or idx.max() >= scene.num_points):
        raise ReaderError(f"{path}: indices for {scene.name} outside [0, {scene.num_points})")
    if scene.semantic is None:
        raise ReaderError(f"scene {scene.name}: no semantic labels to read the annotated classes from")
    return WeakLabels(scene=scene.name, num_points=scene.num_points, classes=scene.classes,
                      point_index=idx, point_semantic=scene.semantic[idx],
                      point_instance=None if scene.instance is None else scene.instance[idx],
                      meta={"kind": "points", "source": str(path)})


# ----------------------------------------------------------------------------- writer

def write_scannet(scene: Scene, root: str | os.PathLike, axis_alignment: np.ndarray | None = None,
                  nyu40_names: dict[int, str] | None = None) -> Path:
    """Write ``scene`` in ScanNet v2's on-disk layout under ``<root>/scans/<name>/`` (plus a
    label table at ``<root>/scannetv2-labels.combined.tsv`` covering its classes).

    The points become mesh vertices (faces from a Delaunay triangulation of each segment's
    patch), stored in the *raw* frame ``inv(axis_alignment) @ coord`` with the matrix in
    ``<name>.txt``. Frames are written as SensReader exports (depth in mm)."""
    from plyfile import PlyData, PlyElement
    if scene.segment is None or scene.instance is None or scene.semantic is None:
        raise ValueError("write_scannet needs semantic, instance and segment labels")
    from ..classes import SCANNET20_NYU40_IDS
    root = Path(root)
    d = root / "scans" / scene.name
    d.mkdir(parents=True, exist_ok=True)
    A = np.eye(4) if axis_alignment is None else np.asarray(axis_alignment, np.float64)
    raw = apply_transform(scene.coord, np.linalg.inv(A)).astype(np.float32)
    rgb = np.round((scene.color if scene.color is not None else np.full((scene.num_points, 3), 0.5)) * 255).astype(np.uint8)
    faces = _triangulate_segments(scene)
    vert = np.zeros(scene.num_points, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1"), ("alpha", "u1")])
    vert["x"], vert["y"], vert["z"] = raw[:, 0], raw[:, 1], raw[:, 2]
    vert["red"], vert["green"], vert["blue"], vert["alpha"] = rgb[:, 0], rgb[:, 1], rgb[:, 2], 255
    face = np.zeros(len(faces), dtype=[("vertex_indices", "i4", (3,))])
    face["vertex_indices"] = faces
    PlyData([PlyElement.describe(vert, "vertex"), PlyElement.describe(face, "face")], text=False).write(str(d / f"{scene.name}_vh_clean_2.ply"))
    nyu = np.array(SCANNET20_NYU40_IDS)[np.maximum(scene.semantic, 0)] * (scene.semantic >= 0)
    lab = np.zeros(scene.num_points, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("label", "u2")])
    lab["x"], lab["y"], lab["z"], lab["label"] = raw[:, 0], raw[:, 1], raw[:, 2], nyu
    PlyData([PlyElement.describe(lab, "vertex"), PlyElement.describe(face, "face")], text=False).write(str(d / f"{scene.name}_vh_clean_2.labels.ply"))
    seg_ids = scene.segment * 7 + 3  # ScanNet's ids are sparse; keep them non-contiguous
    (d / f"{scene.name}_vh_clean_2.0.010000.segs.json").write_text(json.dumps(
        {"params": {"kThresh": "0.0001", "segMinVerts": "20"}, "sceneId": f"{scene.name}_vh_clean_2", "segIndices": seg_ids.tolist()}))
    groups = []
    for k in np.unique(scene.instance[scene.instance >= 0]):
        m = scene.instance == k
        sem = int(np.bincount(scene.semantic[m][scene.semantic[m] >= 0], minlength=1).argmax()) if (scene.semantic[m] >= 0).any() else -1
        if sem < 0:
            continue
        groups.append({"id": len(groups), "objectId": len(groups), "segments": sorted(set(seg_ids[m].tolist())),
                       "label": scene.classes[sem]})
    (d / f"{scene.name}.aggregation.json").write_text(json.dumps({"sceneId": f"scannet.{scene.name}", "appId": "pcweak.synthetic", "segGroups": groups}))
    txt = [f"axisAlignment = {' '.join(f'{x:.9g}' for x in A.ravel())}", "sceneType = synthetic"]
    (d / f"{scene.name}.txt").write_text("\n".join(txt) + "\n")
    with open(root / TSV_V2, "w", newline="") as f:
        w = csv.writer(f, delimiter="\t")
        w.writerow(["id", "raw_category", "category", "count", "nyu40id", "nyu40class"])
        for i, (c, nid) in enumerate(zip(SCANNET20, SCANNET20_NYU40_IDS)):
            w.writerow([i + 1, c, c, 1, nid, c])
    if scene.frames:
        _write_frames(scene, d, A)
    return d


def _write_frames(scene: Scene, d: Path, A: np.ndarray) -> None:
    from PIL import Image
    for sub in ("color", "depth", "pose", "intrinsic"):
        (d / sub).mkdir(exist_ok=True)
    Ainv = np.linalg.inv(A)
    K = scene.frames[0].intrinsics
    K4 = np.eye(4)
    K4[:3, :3] = K
    np.savetxt(d / "intrinsic" / "intrinsic_depth.txt", K4, fmt="%.6f")
    Kc = scene.frames[0].color_intrinsics if scene.frames[0].color_intrinsics is not None else K
    K4c = np.eye(4)
    K4c[:3, :3] = Kc
    np.savetxt(d / "intrinsic" / "intrinsic_color.txt", K4c, fmt="%.6f")
    for f in scene.frames:
        if f.image is not None:
            Image.fromarray(f.image).save(d / "color" / f"{f.name}.jpg", quality=95)
        if f.depth is not None:
            Image.fromarray(np.round(f.depth * 1000).astype(np.uint16)).save(d / "depth" / f"{f.name}.png")
        np.savetxt(d / "pose" / f"{f.name}.txt", Ainv @ f.pose, fmt="%.9f")


def _triangulate_segments(scene: Scene) -> np.ndarray:
    """(F,3) triangles: a 2D Delaunay of each segment's points in their best-fit plane."""
    from scipy.spatial import Delaunay, QhullError
    order = np.argsort(scene.segment, kind="stable")
    bounds = np.flatnonzero(np.diff(scene.segment[order])) + 1
    tris = []
    for idx in np.split(order, bounds):
        if len(idx) < 3:
            continue
        p = scene.coord[idx].astype(np.float64)
        c = p - p.mean(0)
        _, _, vt = np.linalg.svd(c, full_matrices=False)
        uv = c @ vt[:2].T
        try:
            t = Delaunay(uv).simplices
        except (QhullError, ValueError):
            continue
        # orient every triangle along the segment's mean normal when normals are known
        tri = idx[t]
        if scene.normal is not None:
            pts = scene.coord.astype(np.float64)
            fn = np.cross(pts[tri[:, 1]] - pts[tri[:, 0]], pts[tri[:, 2]] - pts[tri[:, 0]])
            flip = (fn @ scene.normal[idx].mean(0)) < 0
            tri[flip] = tri[flip][:, [0, 2, 1]]
        tris.append(tri)
    return np.concatenate(tris) if tris else np.zeros((0, 3), np.int64)




NYU40_MAX_ID = 40  # NYU40 class ids run 1-40, 0 unannotated


def checked_nyu40(path: Path, raw: np.ndarray) -> np.ndarray:
    """(N,) NYU40 ids ``raw`` of the file ``path`` (-1 or 0 for none); ReaderError naming it where
    an id lies beyond ``NYU40_MAX_ID`` (raw ScanNet or ScanNet200 category ids, whose values 1-40
    would be read as other classes and the rest as unlabelled) or below -1."""
    raw = np.asarray(raw)
    above = np.flatnonzero(raw > NYU40_MAX_ID)
    if len(above):
        raise ReaderError(f"{path}: {len(above)} labels above {NYU40_MAX_ID} (the first, {int(raw[above[0]])}, at point "
                          f"{int(above[0])}): NYU40 ids run 0-40; raw ScanNet or ScanNet200 category ids would be read "
                          f"as other classes")
    below = np.flatnonzero(raw < -1)
    if len(below):
        raise ReaderError(f"{path}: {len(below)} labels below -1 (the first, {int(raw[below[0]])}, at point "
                          f"{int(below[0])}): NYU40 ids run 0-40, with 0 or -1 for none")
    return raw


def scannet20_of_nyu40(raw: np.ndarray) -> np.ndarray:
    """(N,) int64 ScanNet-20 labels of (N,) NYU40 ids (-1 for 0, unannotated, and for ids
    outside the 20)."""
    lut = np.array([nyu40_to_scannet20(nyu) for nyu in range(256)], np.int64)
    raw = np.asarray(raw, np.int64)
    return np.where((raw >= 0) & (raw < 256), lut[np.clip(raw, 0, 255)], -1)


def export_paths(folder: str | os.PathLike, scene: str) -> list[Path]:
    """The files ``read_scannet_export`` opens for ``scene`` in ``folder``."""
    d = Path(folder)
    return [d / f"{scene}_{part}.npy" for part in ("vert_all", "sem_label_all", "ins_label_all")]


def read_scannet_export(folder: str | os.PathLike, scene: str) -> Scene:
    """A scene from mmdetection3d/votenet's ScanNet export (``<scene>_vert_all.npy`` (N,6)
    aligned xyz + rgb 0-255, ``_sem_label_all.npy`` NYU40 ids, ``_ins_label_all.npy`` 1-based
    instance ids, each integers of the vertices' length: ``point_fields.npy_labels``), mapped to
    the ScanNet-20 classes, with the detection boxes of its instances (``boxes_of_instances``:
    those of the export's ``_bbox.npy``); no over-segmentation or normals."""
    d = Path(folder)
    p = d / f"{scene}_vert_all.npy"
    if not p.is_file():
        raise ReaderError(f"{p}: file not found")
    v = npy_array(p, None, 6, wider=True)  # x y z r g b, and any columns after
    sem = ins = None
    if (d / f"{scene}_sem_label_all.npy").is_file():
        f = d / f"{scene}_sem_label_all.npy"
        sem = scannet20_of_nyu40(checked_nyu40(f, npy_labels(f, len(v), None)))
    if (d / f"{scene}_ins_label_all.npy").is_file():
        i = npy_labels(d / f"{scene}_ins_label_all.npy", len(v), None)
        ins = np.where(i > 0, i - 1, -1)
    boxes, box_labels = boxes_of_instances(v[:, :3], ins, sem) if sem is not None and ins is not None else (None, None)
    return Scene(name=scene, coord=v[:, :3], classes=SCANNET20, color=v[:, 3:6] / 255.0, semantic=sem, instance=ins,
                 boxes=boxes, box_labels=box_labels, meta={"dataset": "scannet-export", "source": str(d)})
