"""Weak labels made in another tool: clicked points, boxes, image boxes and scene tags from text
tables, turned into a scene's ``WeakLabels`` (``pcweak import``).

A table is CSV, semicolon-, tab- or whitespace-separated text whose first line (after blank
lines and ``#`` comments) names its columns, in any order and case; a field may be quoted
(``"dining table, round"``, as spreadsheets save text); where the columns are not
comma-separated a number may have a decimal comma (``1,20``, as spreadsheets of European locales
write them):

- clicked points: ``x y z`` (metres, or the scene file's own units) or ``index`` (a point's
  position in the scene's file, from 0), a ``class`` (or ``label``), and optionally an
  ``instance`` (>= 0: the clicks of one object share it);
- boxes: ``cx cy cz dx dy dz`` (centre and full sizes), optionally ``yaw`` (radians about z,
  0 = sizes along x / y), and a ``class``;
- image boxes: ``x1 y1 x2 y2`` (pixels of the frame's colour image), a ``class``, and a ``frame``
  (its name, ``color/120.jpg``'s ``120``, or its index; optional for a scene of one frame);
- scene tags: one column, ``tag``: the classes present in the scene.

Boxes may also come as the JSON files of point-cloud annotation tools (labelCloud,
SUSTechPOINTS, Supervisely; ``box_json``), read into a boxes table (and Supervisely's painted
points into a points table: ``read_tables``), and labelled points as a SemanticKITTI ``.label``
file of which only some points are set (ScribbleKITTI's scribbles; ``read_label_file``).

A class is a name of the scene's class list (exactly, else the one name equal to it up to case)
or its index in that list. Clicked coordinates are snapped to the nearest point of the scene;
one farther than ``max_distance`` metres is refused, since it belongs to another scene or
another coordinate frame.

Coordinates: ``coords="file"`` takes them as the scene's file holds them, what an annotation
tool that opened the file shows: pcweak turns them the way its reader turned the points (a LAS
tile's feet to metres, ``meta['las_units_m']``; ScanNet's axis alignment, ``Scene.axis_alignment``;
the shift toward the origin of a georeferenced scan, ``meta['coord_shift']``). ``coords="scene"``
takes them as pcweak holds the scene's points (``pcweak viz --export`` of a scene that was
neither aligned nor shifted)."""
from __future__ import annotations

import csv
import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..classes import SEMANTICKITTI19, join_class_lists, placeholder_class, semantickitti_classes
from ..data.semantickitti import read_label_words
from ..errors import ReaderError, SceneError
from ..scene import Scene, WeakLabels, check_types, clashing_seeds

MAX_DISTANCE_M = 0.1  # a click this far from every point of the scene is refused
COORDINATES = ("file", "scene")  # the frames clicked coordinates and boxes may be given in
POINT_COLUMNS = ("x", "y", "z")
INDEX_COLUMN = "index"
BOX_COLUMNS = ("cx", "cy", "cz", "dx", "dy", "dz")
CLASS_COLUMNS = ("class", "label")
INSTANCE_COLUMN = "instance"
YAW_COLUMN = "yaw"
TAG_COLUMN = "tag"
IMAGE_BOX_COLUMNS = ("x1", "y1", "x2", "y2")
FRAME_COLUMN = "frame"
DELIMITERS = (",", ";", "\t")  # the first the header line holds; none of them: whitespace
LABEL_FILE_SUFFIX = ".label"  # SemanticKITTI's per-point labels (ScribbleKITTI's scribbles): read_label_file


@dataclass
class Table:
    """One annotation table: its ``kind`` (``"points"``, ``"boxes"``, ``"boxes2d"`` or
    ``"tags"``, as ``read_table`` told it from the header), its lower-case ``columns``, the
    ``rows`` of text fields and the line number (from 1) of each row in ``path``, for errors.
    ``decimal_comma``: the columns are not comma-separated, so ``1,20`` is 1.2 (a spreadsheet of
    a European locale writes numbers so, with ``;`` between the columns)."""

    path: Path
    kind: str
    columns: list[str]
    rows: list[list[str]]
    lines: list[int]
    decimal_comma: bool = False
    unit: str = "line"  # what ``lines`` count: lines of a text table, objects (figures) of a JSON file from 1, points (their index)
    points_in_file: int | None = None  # a per-point label file's length: the scene's number of points

    def at(self, r: int) -> str:
        """Where row ``r`` lies in the file, for errors: ``line 12`` (``object 3`` in JSON)."""
        return f"{self.unit} {self.lines[r]}"

    def column(self, name: str) -> list[str]:
        i = self.columns.index(name)
        return [r[i] for r in self.rows]

    def numbers(self, names: tuple[str, ...] | list[str], integer: bool = False) -> np.ndarray:
        """(R, len(names)) float64 (int64 with ``integer``) of those columns; ReaderError naming
        the line and column of a value that is no (whole, finite) number."""
        out = np.zeros((len(self.rows), len(names)), np.float64)
        for j, name in enumerate(names):
            for r, text in enumerate(self.column(name)):
                try:
                    v = float(text.replace(",", ".", 1) if self.decimal_comma and "." not in text else text)
                except ValueError:
                    v = float("nan")
                if not np.isfinite(v) or (integer and v != round(v)):
                    raise ReaderError(f"{self.path}, {self.at(r)}: column {name!r} holds {text!r}, not "
                                      f"{'a whole number' if integer else 'a finite number'}")
                out[r, j] = v
        return out.astype(np.int64) if integer else out


def read_tables(path: str | os.PathLike) -> list[Table]:
    """The annotation tables of the file at ``path``: one (``read_table``), or for an annotation
    tool's JSON file its boxes and its painted points (``box_json.read_json_tables``)."""
    p = Path(path)
    if p.suffix.lower() == ".json":
        from .box_json import read_json_tables
        return read_json_tables(p)
    return [read_table(p)]


def read_table(path: str | os.PathLike) -> Table:
    """The columns and rows of an annotation table (module docstring); ReaderError naming the
    file for one that cannot be read, has no header naming points or boxes and a class, names a
    column twice, or has a row with another number of fields than the header. An annotation
    tool's JSON file is its one table; one that holds two (boxes and painted points) is refused:
    ``read_tables`` reads both."""
    p = Path(path)
    if p.suffix.lower() == LABEL_FILE_SUFFIX:  # SemanticKITTI's per-point labels, a few of them set (scribbles)
        return read_label_file(p)
    if p.suffix.lower() == ".json":  # an annotation tool's boxes, or painted points
        tables = read_tables(p)
        if len(tables) > 1:
            raise ReaderError(f"{p}: holds {' and '.join(t.kind for t in tables)}; read it with read_tables")
        return tables[0]
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ReaderError(f"{p}: not found") from None
    except UnicodeDecodeError:
        raise ReaderError(f"{p}: not UTF-8 text (a binary file?); a table is text with a header line naming its columns") from None
    except OSError as e:
        raise ReaderError(f"{p}: cannot be read ({e.strerror or e})") from None
    numbered = [(i + 1, ln.strip()) for i, ln in enumerate(text.splitlines())]
    numbered = [(i, ln) for i, ln in numbered if ln and not ln.startswith("#")]
    if not numbered:
        raise ReaderError(f"{p}: empty; a table starts with a header line naming its columns (x,y,z,class)")
    header = numbered[0][1]
    delimiter = next((d for d in DELIMITERS if d in header), None)

    def fields(line: str) -> list[str]:  # a quoted field ("dining table, round") is one, its quotes dropped
        return [f.strip() for f in (next(csv.reader([line], delimiter=delimiter)) if delimiter else line.split())]
    columns = [c.lower() for c in fields(header)]
    twice = sorted({c for c in columns if columns.count(c) > 1})
    if twice:
        raise ReaderError(f"{p}: the header names {twice} more than once")
    has_xyz, has_index = all(c in columns for c in POINT_COLUMNS), INDEX_COLUMN in columns
    if has_xyz and has_index:
        raise ReaderError(f"{p}: the header names both index and x,y,z; a clicked point is one or the other: keep one")
    kinds = [k for k, has in (("points", has_xyz or has_index), ("boxes", all(c in columns for c in BOX_COLUMNS)),
                              ("boxes2d", all(c in columns for c in IMAGE_BOX_COLUMNS)), ("tags", columns == [TAG_COLUMN]))
             if has]
    if len(kinds) != 1 or not (kinds == ["tags"] or any(c in columns for c in CLASS_COLUMNS)):
        raise ReaderError(f"{p}: the header {fields(header)} names no table pcweak reads: clicked points need columns "
                          f"x,y,z (or index) and class; boxes cx,cy,cz,dx,dy,dz (yaw optional) and class; image boxes "
                          f"x1,y1,x2,y2, class and frame; scene tags one column, tag")
    rows, lines = [], []
    for i, ln in numbered[1:]:
        f = fields(ln)
        if len(f) != len(columns):
            raise ReaderError(f"{p}, line {i}: {len(f)} fields where the header names {len(columns)} ({','.join(columns)})")
        rows.append(f)
        lines.append(i)
    if not rows:
        raise ReaderError(f"{p}: a header and no rows")
    return Table(p, kinds[0], columns, rows, lines, decimal_comma=delimiter != ",")


def read_label_file(path: str | os.PathLike) -> Table:
    """The labelled points of a SemanticKITTI-format ``.label`` file (uint32 a point, its
    semantic id in the lower 16 bits: ScribbleKITTI's scribbles, a partly labelled scan) as a
    points table: ``index`` and ``class`` (a ``SEMANTICKITTI19`` name) for every point whose id
    the benchmark evaluates; 0 (unlabelled) and the ids it leaves out are no labels. The file's
    length must be the scene's number of points (``weak_from_tables``). ReaderError naming the
    file for one that is missing, not whole uint32s, holding ids SemanticKITTI does not define
    (``data.semantickitti.read_label_words``), or labelling no point."""
    p = Path(path)
    classes = semantickitti_classes(read_label_words(p))
    index = np.flatnonzero(classes >= 0)
    if not len(index):
        raise ReaderError(f"{p}: no point carries one of SemanticKITTI's 19 evaluated classes (every label is "
                          f"unlabelled, an outlier or a class it leaves out)")
    rows = [[str(int(i)), SEMANTICKITTI19[c]] for i, c in zip(index, classes[index])]
    return Table(p, "points", [INDEX_COLUMN, CLASS_COLUMNS[0]], rows, index.tolist(), unit="point",
                 points_in_file=len(classes))


def table_companions(path: str | os.PathLike) -> list[Path]:
    """The files besides the table at ``path`` that its reading depends on, those that exist:
    labelCloud's ``_classes.json`` for a JSON file of its boxes (it names the angles' unit).
    Part of what a resumed import compares (``weak_jobs.weak_fingerprint``)."""
    p = Path(path)
    if p.suffix.lower() != ".json":
        return []
    from .box_json import LABELCLOUD_CLASSES_FILE
    f = p.parent / LABELCLOUD_CLASSES_FILE
    return [f] if f.is_file() else []


def class_ids(table: Table, classes: tuple[str, ...]) -> np.ndarray:
    """(R,) int64 class of each row: a name of ``classes`` (exactly, else the one equal up to
    case) or an index into them; ReaderError naming the line for any other value."""
    name = next(c for c in CLASS_COLUMNS + (TAG_COLUMN,) if c in table.columns)
    exact = {c: i for i, c in enumerate(classes)}
    folded: dict[str, list[int]] = {}
    for i, c in enumerate(classes):
        folded.setdefault(c.lower(), []).append(i)
    out = np.zeros(len(table.rows), np.int64)
    for r, value in enumerate(table.column(name)):
        if value in exact:
            out[r] = exact[value]
        elif len(folded.get(value.lower(), [])) == 1:
            out[r] = folded[value.lower()][0]
        elif value.lstrip("-").isdigit() and 0 <= int(value) < len(classes):
            out[r] = int(value)
        else:
            few = ", ".join(classes[:12]) + (", ..." if len(classes) > 12 else "")
            raise ReaderError(f"{table.path}, {table.at(r)}: class {value!r} is none of the scene's "
                              f"{len(classes)} classes ({few}) nor an index into them")
    return out


def to_scene_frame(scene: Scene, xyz: np.ndarray) -> np.ndarray:
    """(R,3) float64 points of the scene's file frame in the frame pcweak holds the scene in:
    the reader's units, axis alignment and shift, in that order (module docstring)."""
    units, shift = scene.file_units_and_shift()
    p = np.asarray(xyz, np.float64) * units
    if scene.axis_alignment is not None:
        a = np.asarray(scene.axis_alignment, np.float64)
        p = p @ a[:3, :3].T + a[:3, 3]
    return p - shift


def _snapped(scene: Scene, table: Table, max_distance: float, coords: str, nearest: Callable[[], Any]) -> np.ndarray:
    """(R,) int64 scene point of each row of a points table: its ``index``, or the point nearest
    its ``x y z`` (``nearest()``: the scene's k-d tree, built once for every table);
    ReaderError for an index out of range or a click beyond ``max_distance``."""
    n = scene.num_points
    if INDEX_COLUMN in table.columns:
        index = table.numbers([INDEX_COLUMN], integer=True)[:, 0]
        bad = np.flatnonzero((index < 0) | (index >= n))
        if len(bad):
            raise ReaderError(f"{table.path}, {table.at(bad[0])}: index {int(index[bad[0]])} is not a point of scene "
                              f"{scene.name!r} (0 to {n - 1})")
        return index
    xyz = table.numbers(POINT_COLUMNS)
    q = to_scene_frame(scene, xyz) if coords == "file" else xyz
    dist, index = nearest().query(q)
    far = np.flatnonzero(dist > max_distance)
    if len(far):
        worst = int(far[np.argmax(dist[far])])
        other = "scene" if coords == "file" else "file"
        raise ReaderError(f"{table.path}: {len(far)} of {len(q)} clicked points lie more than {max_distance:g} m from every "
                          f"point of scene {scene.name!r} ({table.at(worst)}: {dist[worst]:.3g} m); points of another "
                          f"scene, or in another frame (--coords {other}), or clicked off the points (--max-distance)")
    return index.astype(np.int64)


def _boxes(scene: Scene, table: Table, coords: str) -> np.ndarray:
    """(R,7) float32 ``[cx,cy,cz,dx,dy,dz,yaw]`` boxes of a boxes table in the scene's frame;
    ReaderError for a size that is not positive."""
    b = table.numbers(BOX_COLUMNS)
    yaw = table.numbers([YAW_COLUMN])[:, 0] if YAW_COLUMN in table.columns else np.zeros(len(b))
    bad = np.flatnonzero((b[:, 3:6] <= 0).any(1))
    if len(bad):
        raise ReaderError(f"{table.path}, {table.at(bad[0])}: box sizes {b[bad[0], 3:6].tolist()} must be > 0")
    if coords == "file":
        b[:, :3] = to_scene_frame(scene, b[:, :3])
        b[:, 3:6] *= scene.file_units_and_shift()[0]  # dx, dy in x / y's unit, dz in z's
        if scene.axis_alignment is not None:
            r = np.asarray(scene.axis_alignment, np.float64)[:3, :3]
            if abs(r[2, 2] - 1.0) > 1e-6:  # boxes turn about z only
                raise ReaderError(f"{table.path}: scene {scene.name!r} is aligned by a rotation that tilts z; boxes in its "
                                  f"file's frame cannot follow it (give them in the scene's frame: --coords scene)")
            yaw = yaw + np.arctan2(r[1, 0], r[0, 0])
    return np.concatenate([b, yaw[:, None]], 1).astype(np.float32)


def _image_boxes(scene: Scene, table: Table) -> tuple[np.ndarray, np.ndarray]:
    """(R,4) float32 ``[x1,y1,x2,y2]`` pixel boxes of an image-boxes table and (R,) int64 the
    index of each one's frame in ``scene.frames``; ReaderError for a frame the scene lacks or a
    box whose corners are not ordered (its image bounds: ``WeakLabels.check_against``)."""
    b = table.numbers(IMAGE_BOX_COLUMNS)
    bad = np.flatnonzero((b[:, 2] <= b[:, 0]) | (b[:, 3] <= b[:, 1]))
    if len(bad):
        raise ReaderError(f"{table.path}, {table.at(bad[0])}: image box {b[bad[0]].tolist()} needs x1 < x2 and y1 < y2")
    names = {f.name: i for i, f in enumerate(scene.frames)}
    if FRAME_COLUMN not in table.columns:
        if len(scene.frames) != 1:
            raise ReaderError(f"{table.path}: image boxes without a frame column, but scene {scene.name!r} has "
                              f"{len(scene.frames)} frames: name each box's frame")
        return b.astype(np.float32), np.zeros(len(b), np.int64)
    frame = np.zeros(len(b), np.int64)
    for r, value in enumerate(table.column(FRAME_COLUMN)):
        if value in names:
            frame[r] = names[value]
        elif value.isdigit() and int(value) < len(scene.frames):
            frame[r] = int(value)
        else:
            few = ", ".join(list(names)[:8]) + (", ..." if len(names) > 8 else "")
            raise ReaderError(f"{table.path}, {table.at(r)}: frame {value!r} is none of scene {scene.name!r}'s "
                              f"{len(scene.frames)} frames ({few or 'none'}) nor an index into them")
    return b.astype(np.float32), frame


def weak_from_tables(scene: Scene, tables: list[Table], classes: tuple[str, ...] | None = None,
                     max_distance: float = MAX_DISTANCE_M, coords: str = "file") -> WeakLabels:
    """``scene``'s weak labels from annotation ``tables`` (``read_table``; clicked points of all
    of them pooled, boxes likewise). ``classes``: the class list where the scene has none, or
    names for the classes it labels without naming (a PLY's ``class_3``: the lists are joined by
    ``classes.joined_class_list`` and the weak labels name the scene's classes wherever pcweak
    labels it with them); ValueError where it names a class otherwise, or neither names any; ``max_distance`` metres;
    ``coords`` ``"file"`` or ``"scene"`` (module docstring). ReaderError naming the file and line
    for what cannot be read; a point given two classes is refused, and so is what the scene
    would refuse when labelled (``WeakLabels.check_against``: image boxes outside their image,
    3D boxes none of which reaches the points)."""
    if coords not in COORDINATES:
        raise ValueError(f"coords must be one of {COORDINATES}, got {coords!r}")
    if not max_distance > 0:
        raise ValueError(f"max_distance must be > 0 metres, got {max_distance}")
    names = tuple(scene.classes or classes or ())
    if classes and scene.classes:
        names = join_class_lists(tuple(classes), scene.classes, lambda i: ValueError(
            f"classes (--classes): label {i} is {classes[i]!r} there but scene {scene.name!r} names it "
            f"{scene.classes[i]!r}; leave the list out, or give one that names only the classes the scene leaves "
            f"unnamed ({placeholder_class(i)!r} and the like)"))
    if not names:
        raise ValueError(f"scene {scene.name!r} names no classes: give the class list (--classes)")
    from scipy.spatial import cKDTree
    nearest = functools.cache(lambda: cKDTree(scene.coord.astype(np.float64)))
    index, label, instance, box, box_label, tags = [], [], [], [], [], []
    image_box, image_box_label, image_box_frame = [], [], []
    for t in tables:
        if t.points_in_file is not None and t.points_in_file != scene.num_points:
            raise ReaderError(f"{t.path}: labels for {t.points_in_file} points, but scene {scene.name!r} has "
                              f"{scene.num_points}: another scan's labels")
        ids = class_ids(t, names)
        if t.kind == "tags":
            tags.append(ids)
        elif t.kind == "boxes2d":
            b2, f2 = _image_boxes(scene, t)
            image_box.append(b2)
            image_box_label.append(ids)
            image_box_frame.append(f2)
        elif t.kind == "points":
            index.append(_snapped(scene, t, max_distance, coords, nearest))
            label.append(ids)
            instance.append(_instances(t) if INSTANCE_COLUMN in t.columns else np.full(len(ids), -1, np.int64))
        else:
            box.append(_boxes(scene, t, coords))
            box_label.append(ids)
    kw: dict = {}
    files = ", ".join(str(t.path) for t in tables)  # errors about the tables together name them all
    if index:
        idx, lab = np.concatenate(index), np.concatenate(label)
        clash = clashing_seeds(idx, lab)
        if len(clash):
            raise ReaderError(f"{files}: {len(clash)} points of scene {scene.name!r} are given "
                              f"two classes (point {int(clash[0])}: clicks that snapped to the same point?)")
        inst = np.concatenate(instance)
        _, first = np.unique(idx, return_index=True)  # a point clicked twice with one class: once
        first.sort()
        idx, lab, inst = idx[first], lab[first], inst[first]
        kw.update(point_index=idx, point_semantic=lab, point_instance=inst if (inst >= 0).any() else None)
    if box:
        kw.update(box=np.concatenate(box), box_semantic=np.concatenate(box_label))
    if tags:
        kw.update(scene_tags=np.isin(np.arange(len(names)), np.concatenate(tags)))
    if image_box:
        kw.update(box2d=np.concatenate(image_box), box2d_semantic=np.concatenate(image_box_label),
                  box2d_frame=np.concatenate(image_box_frame))
    out = WeakLabels(scene=scene.name, num_points=scene.num_points, classes=names,
                     meta={"imported_from": [str(t.path) for t in tables], "coords": coords}, **kw)
    try:  # what `pcweak label` would refuse (image boxes off their image, boxes off the points), now
        out.check_against(scene)
    except SceneError as e:
        raise ReaderError(f"{files}: {e}") from e
    return out


def _instances(t: Table) -> np.ndarray:
    """(R,) int64 the ``instance`` column of a points table: >= 0 an object's id, -1 none;
    ReaderError naming the line of another value."""
    inst = t.numbers([INSTANCE_COLUMN], integer=True)[:, 0]
    bad = np.flatnonzero(inst < -1)
    if len(bad):
        raise ReaderError(f"{t.path}, {t.at(int(bad[0]))}: instance {int(inst[bad[0]])}; an object's clicks share an "
                          f"instance >= 0 (-1: a click of no object)")
    return inst


def import_tables(scene: Scene, paths: str | os.PathLike | list[str | os.PathLike],
                  classes: tuple[str, ...] | list[str] | None = None, max_distance: float = MAX_DISTANCE_M,
                  coords: str = "file") -> WeakLabels:
    """``scene``'s weak labels from the annotation tables at ``paths`` (one path or a list;
    ``read_table`` each, then ``weak_from_tables`` with the other arguments): the Python form of
    ``pcweak import``."""
    check_types("import_tables(scene, paths)", (scene, Scene))
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    return weak_from_tables(scene, [t for p in paths for t in read_tables(p)], classes=tuple(classes) if classes else None,
                            max_distance=max_distance, coords=coords)
