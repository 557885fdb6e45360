"""Weak labels made in another tool (``pcweak import``): clicked points and boxes from text
tables, snapped to the scene in the frame its file holds."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

import pcweak
from pcweak.cli import main
from pcweak.errors import ReaderError
from pcweak.weak.from_tables import read_table, weak_from_tables


def _clicks(path, scene, pick, xyz, sep=",", header=("x", "y", "z", "class", "instance")):
    rows = [sep.join(header)]
    for p, i in zip(xyz, pick):
        rows.append(sep.join([f"{v:.4f}" for v in p] + [scene.classes[scene.semantic[i]], str(scene.instance[i])]))
    path.write_text("# picked points\n" + "\n".join(rows) + "\n")
    return path


def test_clicks_and_boxes_from_tables_label_the_scene_through_the_cli(tmp_path, room, capsys):
    """Clicks written to a tenth of a millimetre come back as the points they were taken from,
    with their classes and instances; boxes as given; the file labels the scene with `pcweak
    label`."""
    r = np.random.default_rng(0)
    pick = r.choice(room.num_points, 40, replace=False)
    clicks = _clicks(tmp_path / "clicks.csv", room, pick, room.coord[pick].astype(np.float64))  # to 0.05 mm
    boxes = tmp_path / "boxes.tsv"
    boxes.write_text("CX\tCY\tCZ\tDX\tDY\tDZ\tYaw\tLabel\n" + "".join(
        "\t".join(f"{v:.5f}" for v in b) + f"\t{int(c)}\n" for b, c in zip(room.boxes, room.box_labels)))
    room.save(tmp_path / "room.npz")
    assert main(["import", f"npz:{tmp_path / 'room.npz'}", str(clicks), str(boxes), "-o", str(tmp_path / "w.npz")]) == 0
    said = json.loads(capsys.readouterr().out)
    assert said["points"] == 40 and said["boxes"] == len(room.boxes) and said["instances"] == len(set(room.instance[pick]) - {-1})
    w = pcweak.WeakLabels.load(tmp_path / "w.npz")
    assert sorted(w.point_index.tolist()) == sorted(pick.tolist())
    order = np.argsort(w.point_index)
    assert np.array_equal(w.point_semantic[order], room.semantic[np.sort(pick)])
    assert np.array_equal(w.point_instance[order], room.instance[np.sort(pick)])
    np.testing.assert_allclose(w.box, room.boxes, atol=1e-4)
    assert np.array_equal(w.box_semantic, room.box_labels) and w.classes == room.classes
    assert main(["label", f"npz:{tmp_path / 'room.npz'}", "--weak", str(tmp_path / "w.npz"), "-o", str(tmp_path / "p.npz")]) == 0
    # -o naming a folder: the scene's <scene>.npz inside, the same labels
    assert main(["import", f"npz:{tmp_path / 'room.npz'}", str(clicks), str(boxes), "-o", str(tmp_path / "weak")]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["output"] == str(tmp_path / "weak" / "room.npz")
    assert np.array_equal(pcweak.WeakLabels.load(tmp_path / "weak" / "room.npz").point_index, w.point_index)
    assert main(["evaluate", f"npz:{tmp_path / 'room.npz'}", "--pseudo", str(tmp_path / "p.npz"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["miou"] > 0.4


def test_clicks_in_a_georeferenced_files_coordinates_snap_to_its_shifted_points(tmp_path, room):
    """A LAS tile's annotator clicks in its own (UTM) coordinates; pcweak holds the scan shifted
    toward the origin: the clicks follow the shift, and in the scene's frame they lie far off."""
    utm = np.array([500000.0, 4600000.0, 120.0])
    with pytest.warns(UserWarning, match="shifted by"):
        far = pcweak.Scene(name="tile", coord=room.coord.astype(np.float64) + utm, classes=room.classes,
                           semantic=room.semantic, instance=room.instance)
    pick = np.arange(0, room.num_points, room.num_points // 25)
    path = _clicks(tmp_path / "c.txt", room, pick, room.coord[pick].astype(np.float64) + utm, sep=" ")
    w = weak_from_tables(far, [read_table(path)])
    assert sorted(w.point_index.tolist()) == sorted(pick.tolist())
    with pytest.raises(ReaderError, match=r"c.txt: 26 of 26 clicked points lie more than 0.1 m .*--coords file"):
        weak_from_tables(far, [read_table(path)], coords="scene")


def test_clicks_and_boxes_on_a_scannet_mesh_follow_its_axis_alignment(tmp_path, room):
    """ScanNet's reader turns the mesh by its axis alignment; an annotator clicks on the mesh as
    the file holds it: points and box centres turn with the scene, and a box's yaw by the turn."""
    t = np.radians(30.0)
    a = np.array([[np.cos(t), -np.sin(t), 0, 1.5], [np.sin(t), np.cos(t), 0, -2.0], [0, 0, 1, 0.1], [0, 0, 0, 1]])
    aligned = pcweak.Scene(name="aligned", coord=room.coord, classes=room.classes, semantic=room.semantic, instance=room.instance,
                           axis_alignment=a)
    inv = np.linalg.inv(a)
    pick = np.arange(7, room.num_points, room.num_points // 20)
    raw = room.coord[pick].astype(np.float64) @ inv[:3, :3].T + inv[:3, 3]
    box = tmp_path / "b.csv"
    centre = np.array([1.0, 2.0, 0.5]) @ inv[:3, :3].T + inv[:3, 3]
    box.write_text(f"cx,cy,cz,dx,dy,dz,yaw,class\n{centre[0]},{centre[1]},{centre[2]},1,2,0.5,0.1,chair\n")
    w = weak_from_tables(aligned, [read_table(_clicks(tmp_path / "c.csv", room, pick, raw)), read_table(box)])
    assert sorted(w.point_index.tolist()) == sorted(pick.tolist())
    np.testing.assert_allclose(w.box[0], [1.0, 2.0, 0.5, 1, 2, 0.5, 0.1 + t], atol=1e-5)


def test_image_boxes_from_a_2d_detector_name_their_frames(tmp_path, room, lidar):
    """Image boxes by frame name or index become ``box2d`` in those frames; a scene of one frame
    (a KITTI frame's camera) needs no frame column, one of several does."""
    path = tmp_path / "b2.csv"
    f1 = room.frames[1].name
    path.write_text(f"x1,y1,x2,y2,class,frame\n10,20,60,90,chair,{f1}\n5,5,40,30,wall,3\n")
    w = weak_from_tables(room, [read_table(path)])
    assert w.box2d.tolist() == [[10, 20, 60, 90], [5, 5, 40, 30]] and w.box2d_frame.tolist() == [1, 3]
    assert [room.classes[c] for c in w.box2d_semantic] == ["chair", "wall"]
    w.check_against(room)
    path.write_text("x1 y1 x2 y2 class\n100 150 180 220 0\n")  # class 0: Car on the LiDAR frame, wall in the room
    one = weak_from_tables(lidar, [read_table(path)])
    assert one.box2d_frame.tolist() == [0] and len(lidar.frames) == 1
    with pytest.raises(ReaderError, match="without a frame column, but scene .* has 4 frames"):
        weak_from_tables(room, [read_table(path)])
    path.write_text("x1,y1,x2,y2,class,frame\n10,20,60,90,chair,nope\n")
    with pytest.raises(ReaderError, match="line 2: frame 'nope' is none of scene"):
        weak_from_tables(room, [read_table(path)])
    path.write_text("x1,y1,x2,y2,class,frame\n10,20,9000,90,chair,0\n")  # a box of a larger image
    with pytest.raises(ReaderError, match=r"b2.csv: WeakLabels\[synthetic_3\].box2d: box 0 .* lies outside frame"):
        weak_from_tables(room, [read_table(path)])
    path.write_text("x1,y1,x2,y2,class,frame\n60,20,10,90,chair,0\n")
    with pytest.raises(ReaderError, match=r"line 2: image box \[60.0, 20.0, 10.0, 90.0\] needs x1 < x2"):
        weak_from_tables(room, [read_table(path)])


def test_a_bare_scene_takes_the_class_list_given(tmp_path, room):
    """A scan without labels names no classes: the list comes with the tables (names or
    indices), and a scene that names its classes refuses a list that names them otherwise."""
    bare = pcweak.Scene(name="bare", coord=room.coord)
    path = tmp_path / "c.csv"
    path.write_text("index;class\n5;Ground\n9;1\n9;tree\n")
    w = weak_from_tables(bare, [read_table(path)], classes=("ground", "tree"))
    assert w.point_index.tolist() == [5, 9] and w.point_semantic.tolist() == [0, 1] and w.point_instance is None
    api = pcweak.import_tables(bare, str(path), classes=["ground", "tree"])  # the Python form: a path, a list of names
    with pytest.raises(TypeError, match=r"import_tables\(scene, paths\): expected a Scene"):
        pcweak.import_tables("npz:room.npz", [path])
    assert api.point_index.tolist() == [5, 9] and api.point_semantic.tolist() == [0, 1] and api.classes == ("ground", "tree")
    with pytest.raises(ValueError, match="names no classes"):
        weak_from_tables(bare, [read_table(path)])
    with pytest.raises(ValueError, match=r"label 0 is 'ground' there but scene 'synthetic_3' names it 'wall'"):
        weak_from_tables(room, [read_table(path)], classes=("ground", "tree"))
    path.write_text("index;class\n5;ground\n5;tree\n")
    with pytest.raises(ReaderError, match="1 points of scene 'bare' are given two classes"):
        weak_from_tables(bare, [read_table(path)], classes=("ground", "tree"))
    tags = tmp_path / "tags.txt"  # the classes present, as lift-masks' class scores are restricted to them
    tags.write_text("Tag\ncar\n0\n")
    w = weak_from_tables(bare, [read_table(tags)], classes=("ground", "tree", "car"))
    assert w.scene_tags.tolist() == [True, False, True] and w.point_index is None


def test_names_for_the_classes_a_file_leaves_unnamed(tmp_path, room):
    """A PLY or LAS file that labels points without naming their classes reads as ``class_0``,
    ``class_1``, ...: ``pcweak import --classes`` refused names for them ("has its own list"), so
    a user could not name such a file's classes anywhere. The names now take the placeholders'
    places, and labelling, pictures and a folder's training read the scene under them; a name
    that differs from one the scene gives is refused."""
    import dataclasses
    from pcweak.classes import placeholder_class
    from pcweak.scene import Scene
    from pcweak.train.datamodule import named_by_weak_files
    from pcweak.viz.layers import build_layers
    gt = room.semantic % 3
    plain = Scene(name="plain", coord=room.coord, color=room.color, semantic=gt,
                  classes=tuple(placeholder_class(i) for i in range(3)))
    idx = np.flatnonzero(gt >= 0)[::97]
    names = ("stone", "tree", "chair", "table")
    path = tmp_path / "c.csv"
    path.write_text("index,class\n" + "".join(f"{i},{names[gt[i]]}\n" for i in idx))
    w = pcweak.import_tables(plain, [path], classes=names)
    assert w.classes == names and w.point_semantic.tolist() == gt[idx].tolist()
    out = pcweak.label(plain, w)
    assert out.classes == names and out.classes_with(plain) == names
    assert pcweak.evaluate(plain, out)["per_class_iou"].keys() <= set(names[:3])
    assert {n for n, _ in build_layers(plain, out, w).legend} <= set(names[:3])
    bare = Scene(name="bare", coord=room.coord)  # labels of a scene without labels name its classes too
    assert pcweak.label(bare, dataclasses.replace(w, scene="bare")).classes == names
    named = dataclasses.replace(plain, classes=("stone", "tree", "chair"))
    with pytest.raises(ValueError, match=r"label 2 is 'desk' there but scene 'plain' names it 'chair'"):
        pcweak.import_tables(named, [path.write_text("index,class\n0,desk\n") and path], classes=("stone", "tree", "desk"))
    with pytest.raises(pcweak.errors.SceneError, match=r"WeakLabels\[plain\].classes: labels over 4 classes"):
        pcweak.label(named, dataclasses.replace(w, classes=("stone", "tree", "desk", "table")))
    w.save(tmp_path / "w.npz")
    assert named_by_weak_files(plain.classes, [tmp_path / "w.npz"]) == names
    with pytest.raises(ValueError, match=r"w.npz names label 0 'stone', but the folder's scenes .* name it 'ground'"):
        named_by_weak_files(("ground",), [tmp_path / "w.npz"])


def test_a_spreadsheets_table_reads_as_written(tmp_path, room):
    """A spreadsheet's export: a byte-order mark and CRLF line ends (Excel's "CSV UTF-8"), and in
    European locales ``;`` between the columns with a decimal comma (``1,20``), which was refused
    ("column 'x' holds '1,20', not a finite number"). Each gives the clicks the plain CSV gives."""
    i, j = 123, 4567
    pts = room.coord[[i, j]].astype(np.float64)
    plain = tmp_path / "plain.csv"
    plain.write_text("x,y,z,class\n" + "".join(f"{x:.4f},{y:.4f},{z:.4f},wall\n" for x, y, z in pts))
    excel = tmp_path / "excel.csv"
    excel.write_bytes(b"\xef\xbb\xbf" + plain.read_text().replace("\n", "\r\n").encode())
    europe = tmp_path / "europe.csv"
    europe.write_text("x;y;z;class\n" + "".join(f"{x:.4f};{y:.4f};{z:.4f};wall\n".replace(".", ",") for x, y, z in pts))
    tabbed = tmp_path / "tabbed.txt"
    tabbed.write_text(europe.read_text().replace(";", "\t"))
    quoted = tmp_path / "quoted.csv"  # LibreOffice's "quote all text cells", pandas' QUOTE_ALL: the quotes were read as the class
    quoted.write_text('"x","y","z","class"\n' + "".join(f'"{x:.4f}","{y:.4f}","{z:.4f}","wall"\n' for x, y, z in pts))
    quoted_europe = tmp_path / "quoted_europe.csv"
    quoted_europe.write_text(quoted.read_text().replace(",", ";").replace(".", ","))
    want = weak_from_tables(room, [read_table(plain)]).point_index.tolist()
    assert sorted(want) == sorted([i, j])
    for path in (excel, europe, tabbed, quoted, quoted_europe):
        assert weak_from_tables(room, [read_table(path)]).point_index.tolist() == want, path.name


@pytest.mark.parametrize("text, needle", [
    ("x,y,z\n1,2,3\n", "names no table pcweak reads"),
    ("x,y,z,class\n1,2\n", "line 2: 2 fields where the header names 4"),
    ("x,y,z,class\n1,2,oops,wall\n", "line 2: column 'z' holds 'oops'"),
    ("index,class\n1.5,wall\n", "line 2: column 'index' holds '1.5', not a whole number"),
    ("index,class\n1,sky\n", "line 2: class 'sky' is none of the scene's"),
    ("index,class\n99999999,wall\n", "line 2: index 99999999 is not a point"),
    ("cx,cy,cz,dx,dy,dz,class\n0,0,0,1,0,1,wall\n", "line 2: box sizes [1.0, 0.0, 1.0] must be > 0"),
    ("x,x,y,z,class\n", "names ['x'] more than once"),
    ("# nothing\n", "empty"),
    ("index,x,y,z,class\n1,0,0,0,wall\n", "names both index and x,y,z"),
    ("tag,class\nwall,wall\n", "names no table pcweak reads"),
    ("x;y;z;class\n1,2,3;0;0;wall\n", "line 2: column 'x' holds '1,2,3', not a finite number"),
    ("index;class\n1,5;wall\n", "line 2: column 'index' holds '1,5', not a whole number"),
    ('index,class\n1,"wall, left"\n', "line 2: class 'wall, left' is none of the scene's"),
    ("index,class,instance\n1,wall,0\n2,wall,-5\n", "line 3: instance -5; an object's clicks share an instance >= 0"),
    ("cx,cy,cz,dx,dy,dz,class\n1e6,0,0,1,1,1,wall\n", "t.csv: WeakLabels[synthetic_3].box: none of the 1 boxes reaches"),
])
def test_a_table_that_cannot_be_read_is_refused_naming_file_and_line(tmp_path, room, text, needle):
    path = tmp_path / "t.csv"
    path.write_text(text)
    with pytest.raises(ReaderError, match="t.csv") as e:
        weak_from_tables(room, [read_table(path)])
    assert needle in str(e.value)


def test_a_folder_of_scenes_takes_each_scenes_tables_by_name_and_resumes(tmp_path, room, capsys):
    """Tables ``<scene>.csv`` or ``<scene>/*.csv`` of a folder of tables become ``<scene>.npz``
    each, the folder ``pcweak label --weak`` reads; a second run keeps what the same scene, tables
    and options made, imports again a scene whose table changed, and every file is what the
    one-scene import makes of the same tables. A scene without tables is warned of; a table
    naming no scene is refused before anything is read or written."""
    scenes, tables, out = tmp_path / "scenes", tmp_path / "tables", tmp_path / "weak"
    scenes.mkdir()
    tables.mkdir()
    for name in ("a", "b", "c"):
        room.save(scenes / f"{name}.npz")
    r = np.random.default_rng(1)
    _clicks(tables / "a.csv", room, pick := r.choice(room.num_points, 20, replace=False), room.coord[pick].astype(np.float64))
    (tables / "b").mkdir()
    _clicks(tables / "b" / "clicks.txt", room, pick_b := r.choice(room.num_points, 15, replace=False),
            room.coord[pick_b].astype(np.float64), sep=" ")
    (tables / "b" / "tags.csv").write_text("tag\nchair\n")
    (tables / "b" / "notes.md").write_text("not a table\n")  # other files are left alone

    def run(*extra):
        assert main(["import", str(scenes), str(tables), "-o", str(out), *extra]) == 0
        said = capsys.readouterr()
        assert "warning: 1 of the 3 scenes have no table (c) and get no weak-label file" in said.err
        return json.loads(said.out)

    assert run() == {"imported": 2, "skipped_existing": 0, "redone_other_inputs": 0, "without_tables": 1, "output": str(out)}
    assert sorted(f.name for f in out.iterdir()) == ["a.npz", "b.npz"]
    a, b = pcweak.WeakLabels.load(out / "a.npz"), pcweak.WeakLabels.load(out / "b.npz")
    assert sorted(a.point_index.tolist()) == sorted(pick.tolist()) and sorted(b.point_index.tolist()) == sorted(pick_b.tolist())
    assert [c for c, on in zip(b.classes, b.scene_tags) if on] == ["chair"] and a.scene_tags is None
    one = weak_from_tables(room, [read_table(tables / "a.csv")])
    assert np.array_equal(one.point_index, a.point_index) and np.array_equal(one.point_semantic, a.point_semantic)
    assert run()["skipped_existing"] == 2
    (tables / "a.csv").write_text((tables / "a.csv").read_text().replace("# picked points\n", ""))  # same clicks, other bytes
    assert run()["redone_other_inputs"] == 1
    assert run("--max-distance", "0.2")["redone_other_inputs"] == 2  # another option: both again
    assert run("--overwrite")["imported"] == 2
    before = (out / "a.npz").read_bytes()
    (tables / "d.csv").write_text("index,class\n1,wall\n")  # a scene 'd' the folder does not hold
    with pytest.raises(ValueError, match=r"1 table file matches no scene of the folder \(.*d.csv\)"):
        from pcweak.weak_jobs import tables_by_scene
        tables_by_scene(["a", "b", "c"], [tables])
    assert main(["import", str(scenes), str(tables), "-o", str(out), "--overwrite"]) == 2
    assert "d.csv" in capsys.readouterr().err and (out / "a.npz").read_bytes() == before
    (tables / "d.csv").unlink()
    assert main(["label", str(scenes / "a.npz"), "--weak", str(out / "a.npz"), "-o", str(tmp_path / "p.npz")]) == 0


def test_a_scene_whose_tables_cannot_be_imported_is_named_and_the_others_are_written(tmp_path, room, capsys):
    """One scene's click lies off its points: that scene is named at the end (exit 2), the others
    are written, and once its table is mended the same command imports only it."""
    scenes, tables, out = tmp_path / "scenes", tmp_path / "tables", tmp_path / "weak"
    scenes.mkdir()
    tables.mkdir()
    for name in ("a", "b"):
        room.save(scenes / f"{name}.npz")
        (tables / f"{name}.csv").write_text("index,class\n3,wall\n")
    (tables / "b.csv").write_text("x,y,z,class\n100,100,100,wall\n")
    assert main(["import", str(scenes), str(tables), "-o", str(out)]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out)["imported"] == 1 and "1 of the 2 scenes could not be imported (b: " in captured.err
    assert "b.csv" in captured.err and (out / "a.npz").is_file() and not (out / "b.npz").exists()
    (tables / "b.csv").write_text("index,class\n4,wall\n")
    assert main(["import", str(scenes), str(tables), "-o", str(out)]) == 0
    assert json.loads(capsys.readouterr().out) == {"imported": 1, "skipped_existing": 1, "redone_other_inputs": 0,
                                                   "without_tables": 0, "output": str(out)}


def test_an_output_that_is_one_of_the_inputs_is_refused_and_left_as_it_was(tmp_path, room, capsys):
    """``-o`` naming the scene's own file (or a link to it), the weak labels read, or an
    annotation table would replace what the command reads: refused before any work, the file
    unchanged."""
    scene, table = tmp_path / "room.npz", tmp_path / "c.csv"
    room.save(scene)
    table.write_text("index,class\n3,wall\n")
    assert main(["import", f"npz:{scene}", str(table), "-o", str(tmp_path / "w.npz")]) == 0
    (tmp_path / "link.npz").symlink_to(scene)
    kept = {f: f.read_bytes() for f in (scene, table, tmp_path / "w.npz")}
    for argv, what in [
        (["label", f"npz:{scene}", "--weak", str(tmp_path / "w.npz"), "-o", str(scene)], "a file of scene"),
        (["label", f"npz:{scene}", "--weak", str(tmp_path / "w.npz"), "-o", str(tmp_path / "link.npz")], "a file of scene"),
        (["label", str(tmp_path / "room.npz"), "--weak", str(tmp_path / "w.npz"), "-o", str(tmp_path / "w.npz")],
         "the weak-label file"),
        (["simulate", f"npz:{scene}", "--weak", "points", "--count", "5", "-o", str(scene)], "a file of scene"),
        (["import", f"npz:{scene}", str(table), "-o", str(table)], "a table"),
    ]:
        assert main(argv) == 2, argv
        assert what in capsys.readouterr().err
    assert all(f.read_bytes() == b for f, b in kept.items())


def _turned(yaw):
    return (np.asarray(yaw, np.float64) + np.pi) % (2 * np.pi) - np.pi


def _labelcloud_vertices(box):
    """labelCloud's eight corners of ``box`` [cx,cy,cz,dx,dy,dz,yaw], in its order."""
    c, (l, w, h), yaw = np.asarray(box[:3], np.float64), box[3:6], box[6]
    local = np.array([[-l, -w, -h], [-l, w, -h], [l, w, -h], [l, -w, -h], [-l, -w, h], [-l, w, h], [l, w, h], [l, -w, h]]) / 2
    rot = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
    return (local @ rot.T + c).tolist()


def test_boxes_as_annotation_tools_save_them(tmp_path, room, capsys):
    """Boxes drawn in labelCloud (centroid_abs in degrees, centroid_rel in radians, vertices) and
    SUSTechPOINTS (radians, a small roll and pitch) were refused as no table; each now reads as
    the same boxes as the CSV table of them, a folder of labelCloud's labels (its _classes.json
    beside them, which names the format and is no scene's table) imports by scene name, and a
    changed _classes.json imports again."""
    b, lab = room.boxes.astype(np.float64), room.box_labels
    names = [room.classes[c] for c in lab]
    labels = tmp_path / "labels"
    labels.mkdir()

    def centroid(angle):
        return {"objects": [{"name": n, "centroid": dict(zip("xyz", x[:3])), "rotations": {"x": 0, "y": 0, "z": angle(x[6])},
                             "dimensions": dict(zip(("length", "width", "height"), x[3:6]))} for x, n in zip(b.tolist(), names)]}
    (labels / "room.json").write_text(json.dumps(centroid(lambda y: np.degrees(y) % 360)))
    (labels / "_classes.json").write_text(json.dumps({"classes": [], "default": 0, "type": "object_detection",
                                                      "format": "centroid_abs"}))
    (tmp_path / "rel.json").write_text(json.dumps(centroid(float)))
    (tmp_path / "vertices.json").write_text(json.dumps({"objects": [{"name": n, "vertices": _labelcloud_vertices(x)}
                                                                    for x, n in zip(b.tolist(), names)]}))
    tilt = np.where(np.arange(len(b)) % 2, -0.05, 0.0)
    (tmp_path / "sustech.json").write_text(json.dumps([{"obj_type": n, "obj_id": str(i), "psr": {
        "position": dict(zip("xyz", x[:3])), "scale": dict(zip("xyz", x[3:6])), "rotation": {"x": t, "y": 0.0, "z": x[6]}}}
        for i, (x, n, t) in enumerate(zip(b.tolist(), names, tilt))]))
    for path in (labels / "room.json", tmp_path / "rel.json", tmp_path / "vertices.json", tmp_path / "sustech.json"):
        if path.name == "sustech.json":
            with pytest.warns(UserWarning, match=rf"sustech.json: {len(b) // 2} of {len(b)} boxes are tilted about x or y "
                                                 r"\(up to 2.9 degrees\); read upright"):
                table = read_table(path)
        else:
            table = read_table(path)
        w = weak_from_tables(room, [table])
        np.testing.assert_allclose(w.box[:, :6], b[:, :6], atol=1e-4)
        np.testing.assert_allclose(_turned(w.box[:, 6] - b[:, 6]), 0, atol=1e-5)
        assert np.array_equal(w.box_semantic, lab), path.name
    # a folder of labelCloud's labels: room.json is the scene room's boxes, _classes.json no table
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    room.save(scenes / "room.npz")
    args = ["import", str(scenes), str(labels), "-o", str(tmp_path / "weak")]
    assert main(args) == 0 and json.loads(capsys.readouterr().out)["imported"] == 1
    np.testing.assert_allclose(pcweak.WeakLabels.load(tmp_path / "weak" / "room.npz").box[:, :6], b[:, :6], atol=1e-4)
    assert main(args) == 0 and json.loads(capsys.readouterr().out)["skipped_existing"] == 1
    (labels / "_classes.json").write_text((labels / "_classes.json").read_text().replace("centroid_abs", "centroid_rel"))
    assert main(args) == 0 and json.loads(capsys.readouterr().out)["redone_other_inputs"] == 1  # the angles mean radians now
    turned = pcweak.WeakLabels.load(tmp_path / "weak" / "room.npz").box[:, 6]
    np.testing.assert_allclose(_turned(turned - np.degrees(b[:, 6]) % 360), 0, atol=1e-4)


@pytest.mark.parametrize("name, text, needle", [
    ("a.json", '{"objects": [{"name": "door", "centroid": {"x": 0, "y": 0, "z": 1}, "dimensions": {"length": 1, "width": 1, '
     '"height": 2}, "rotations": {"x": 0, "y": 0, "z": 1.2}}]}', r"rotations \(1.2 to 1.2\) read as degrees .* or radians"),
    ("b.json", '{"objects": [{"name": "door", "centroid": {"x": 0, "y": 0}, "dimensions": {"length": 1, "width": 1, '
     '"height": 2}, "rotations": {"x": 0, "y": 0, "z": 0}}]}', r"object 1: 'centroid' must be an object with x, y, z"),
    ("c.json", '[{"obj_type": "door", "psr": {"position": {"x": 0, "y": 0, "z": 1}, "scale": {"x": 1, "y": 1, "z": "2"}, '
     '"rotation": {"x": 0, "y": 0, "z": 0}}}]', r"object 1: scale.z is '2', not a finite number"),
    ("d.json", '[{"obj_type": "door", "psr": {"position": {"x": 0, "y": 0, "z": 1}, "scale": {"x": 1, "y": 1, "z": 2}, '
     '"rotation": {"x": 0.5, "y": 0, "z": 0}}}]', r"object 1: tilted by 28.6 degrees about x or y"),
    ("e.json", '{"boxes": []}', r"a JSON file pcweak reads as boxes is labelCloud's"),
    ("f.json", '{"objects": []}', r"no boxes"),
    ("g.json", '{"objects": [', r"not JSON"),
    ("h.json", '{"objects": [{"centroid": {}}]}', r"object 1: no class name \('name'\)"),
    ("i.json", '{"objects": [{"name": "door", "vertices": [[0, 0, 0]]}]}', r"object 1: 'vertices' must be 8 corners"),
    ("j.json", '[{"obj_type": "sky", "psr": {"position": {"x": 0, "y": 0, "z": 1}, "scale": {"x": 1, "y": 1, "z": 2}, '
     '"rotation": {"x": 0, "y": 0, "z": 0}}}]', r"object 1: class 'sky' is none of the scene's"),
    ("k.json", '[{"obj_type": "door", "psr": {"position": {"x": 0, "y": 0, "z": 1}, "scale": {"x": 1, "y": 0, "z": 2}, '
     '"rotation": {"x": 0, "y": 0, "z": 0}}}]', r"object 1: box sizes \[1.0, 0.0, 2.0\] must be > 0"),
    ("l.json", '{"objects": [{"key": ["a"], "classTitle": "door"}], "figures": []}',  # was "unhashable type: 'list'"
     r"object 1: 'key' must be a string, got \['a'\]"),
    ("m.json", '{"objects": [{"key": "a", "classTitle": "door"}], "figures": [{"objectKey": {}, "geometryType": "cuboid_3d"}]}',
     r"figure 1: its objectKey \{\} is none of the file's objects"),
])
def test_a_box_file_that_cannot_be_read_is_refused_naming_file_and_object(tmp_path, room, name, text, needle):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ReaderError, match=name) as e:
        weak_from_tables(room, [read_table(path)])
    assert re.search(needle, str(e.value)), str(e.value)


def test_supervisely_cuboids_as_cvat_exports_them(tmp_path, room, capsys):
    """Supervisely's point-cloud annotations (CVAT's and Datumaro's export too): cuboids read as
    the same boxes as the CSV table of them, painted points as labelled points of their object's
    class and instance (they were left out), figures of other kinds left out with a warning, and
    ``ann/<cloud>.pcd.json`` found by its cloud's name in a folder import."""
    from pcweak.weak.from_tables import read_tables
    b, lab = room.boxes.astype(np.float64), room.box_labels
    objects = [{"key": f"k{i}", "classTitle": room.classes[c], "tags": []} for i, c in enumerate(lab)]
    figures = [{"key": f"f{i}", "objectKey": f"k{i}", "geometryType": "cuboid_3d", "geometry": {
        "position": dict(zip("xyz", x[:3])), "rotation": {"x": 0, "y": 0, "z": x[6]}, "dimensions": dict(zip("xyz", x[3:6]))}}
        for i, x in enumerate(b.tolist())]
    figures.append({"key": "seg", "objectKey": "k0", "geometryType": "point_cloud", "geometry": {"indices": [1, 2, 3]}})
    figures.append({"key": "seg2", "objectKey": "k2", "geometryType": "point_cloud", "geometry": {"indices": [7]}})
    figures.append({"key": "line", "objectKey": "k1", "geometryType": "polyline_3d", "geometry": {}})
    ann = tmp_path / "ds0" / "ann"
    ann.mkdir(parents=True)
    (ann / "room.pcd.json").write_text(json.dumps({"description": "", "key": "a", "tags": [], "objects": objects,
                                                   "figures": figures}))
    with pytest.warns(UserWarning, match=r"room.pcd.json: 1 figures other than cuboids and painted points "
                                         r"\(polyline_3d\) are left out"):
        w = weak_from_tables(room, read_tables(ann / "room.pcd.json"))
    assert w.point_index.tolist() == [1, 2, 3, 7] and w.point_instance.tolist() == [0, 0, 0, 2]
    assert w.point_semantic.tolist() == [lab[0]] * 3 + [lab[2]]
    with pytest.raises(ReaderError, match=r"room.pcd.json: holds boxes and points; read it with read_tables"):
        read_table(ann / "room.pcd.json")
    np.testing.assert_allclose(w.box[:, :6], b[:, :6], atol=1e-4)
    np.testing.assert_allclose(_turned(w.box[:, 6] - b[:, 6]), 0, atol=1e-5)
    assert np.array_equal(w.box_semantic, lab)
    clouds = tmp_path / "ds0" / "pointcloud"
    clouds.mkdir()
    room.save(clouds / "room.npz")
    assert main(["import", str(clouds), str(ann), "-o", str(tmp_path / "weak")]) == 0
    assert json.loads(capsys.readouterr().out)["imported"] == 1
    imported = pcweak.WeakLabels.load(tmp_path / "weak" / "room.npz")
    assert np.array_equal(imported.box_semantic, lab) and imported.point_index.tolist() == [1, 2, 3, 7]
    good = json.loads((ann / "room.pcd.json").read_text())
    for change, message in (
            (lambda d: d["figures"][1]["geometry"]["dimensions"].update(y=None), "figure 2: dimensions.y is None, not a finite number"),
            (lambda d: d["figures"][-3]["geometry"].update(indices=[1, -2]), f"figure {len(figures) - 2}: 'indices' must be a list of point indices"),
            (lambda d: d["figures"][-2]["geometry"].update(indices=[10**9]), f"figure {len(figures) - 1}: index 1000000000 is not a point of scene")):
        bad = json.loads(json.dumps(good))
        change(bad)
        (ann / "room.pcd.json").write_text(json.dumps(bad))
        with pytest.raises(ReaderError, match=message):
            weak_from_tables(room, read_tables(ann / "room.pcd.json"))
    only_points = {**good, "figures": [f for f in good["figures"] if f["geometryType"] == "point_cloud"]}
    (ann / "room.pcd.json").write_text(json.dumps(only_points))
    assert read_table(ann / "room.pcd.json").kind == "points"


def test_scribbles_of_scribblekitti_import_as_labelled_points(tmp_path, lidar, capsys):
    """ScribbleKITTI's scribbles (a SemanticKITTI ``.label`` file with about 8 % of the points
    labelled, 0 elsewhere) were no table at all; they import as labelled points, one scan or a
    sequence's ``scribbles/`` folder (``<id>.label`` for scene ``<seq>_<id>``), and a file of
    another scan's length, a truncated file, one labelling nothing or one with ids SemanticKITTI
    does not define is refused."""
    from pcweak.classes import SEMANTICKITTI19
    seq = tmp_path / "sequences" / "08"
    for d in ("velodyne", "labels", "scribbles"):
        (seq / d).mkdir(parents=True)
    raw_of = np.array([10, 30, 31, 40])  # the frame's Car, Pedestrian, Cyclist, background as car, person, bicyclist, road
    full = np.where(lidar.semantic >= 0, raw_of[np.maximum(lidar.semantic, 0)], 0).astype(np.uint32)
    scribbled = np.random.default_rng(0).random(lidar.num_points) < 0.08
    for sid in ("000000", "000001"):
        np.hstack([lidar.coord, lidar.intensity[:, None]]).astype(np.float32).tofile(seq / "velodyne" / f"{sid}.bin")
        full.tofile(seq / "labels" / f"{sid}.label")
        np.where(scribbled, full, 0).astype(np.uint32).tofile(seq / "scribbles" / f"{sid}.label")
    scene = pcweak.load_scene(f"semantickitti:{seq / '000000'}")
    w = weak_from_tables(scene, [read_table(seq / "scribbles" / "000000.label")])
    expect = np.flatnonzero(scribbled & (scene.semantic >= 0))
    assert np.array_equal(np.sort(w.point_index), expect) and w.classes == SEMANTICKITTI19
    assert np.array_equal(w.point_semantic[np.argsort(w.point_index)], scene.semantic[expect])
    assert main(["import", str(seq), str(seq / "scribbles"), "-o", str(tmp_path / "weak")]) == 0
    assert json.loads(capsys.readouterr().out)["imported"] == 2
    assert sorted(f.name for f in (tmp_path / "weak").iterdir()) == ["08_000000.npz", "08_000001.npz"]
    assert np.array_equal(pcweak.WeakLabels.load(tmp_path / "weak" / "08_000001.npz").point_index, w.point_index)
    bad = tmp_path / "bad"
    bad.mkdir()
    np.zeros(5, np.uint32).tofile(bad / "short.label")
    (bad / "cut.label").write_bytes(b"\0" * 7)
    np.zeros(scene.num_points, np.uint32).tofile(bad / "none.label")
    np.r_[np.uint32(300), np.zeros(scene.num_points - 1, np.uint32)].tofile(bad / "poss.label")  # an id it does not define
    from pcweak.scene import Scene
    named = Scene(name=scene.name, coord=scene.coord, classes=SEMANTICKITTI19[:8])  # fewer classes: a scribble of another
    first = int(np.flatnonzero(scribbled & (scene.semantic >= 8))[0])
    with pytest.raises(ReaderError, match=rf"000000.label, point {first}: class '{SEMANTICKITTI19[scene.semantic[first]]}' is "
                                          r"none of the scene's 8 classes"):
        weak_from_tables(named, [read_table(seq / "scribbles" / "000000.label")])
    for name, needle in (("short.label", r"short.label: labels for 5 points, but scene '08_000000' has \d+: another scan's"),
                         ("cut.label", r"cut.label: 7 bytes, not a whole number of uint32 labels"),
                         ("none.label", r"none.label: no point carries one of SemanticKITTI's 19 evaluated classes"),
                         ("poss.label", r"poss.label: 1 of \d+ labels hold semantic ids SemanticKITTI does not define")):
        with pytest.raises(ReaderError, match=needle):
            if name == "short.label":
                np.full(5, 40, np.uint32).tofile(bad / name)
            weak_from_tables(scene, [read_table(bad / name)])
