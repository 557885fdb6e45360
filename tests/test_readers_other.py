import re

import numpy as np
import pytest

import pcweak
from pcweak.classes import S3DIS13
from pcweak.data.ply import read_ply, write_ply
from pcweak.data.s3dis import read_s3dis
from pcweak.errors import AddressError, ReaderError
from pcweak.scene import Scene


def _write_room(root):
    ann = root / "Area_5" / "office_19" / "Annotations"
    ann.mkdir(parents=True)
    rng = np.random.default_rng(0)
    files = {"ceiling_1": 40, "chair_2": 10, "chair_10": 12, "wall_3": 30, "wall_3 (1)": 30, "stairs_1": 5}
    blocks = {}
    for name, n in files.items():
        a = np.hstack([rng.uniform(0, 5, (n, 3)), rng.integers(0, 256, (n, 3))])
        blocks[name] = a
        lines = [f"{x:.3f} {y:.3f} {z:.3f} {int(r)} {int(g)} {int(b)}" for x, y, z, r, g, b in a]
        if name == "ceiling_1":  # the real release's stray character inside a number
            lines[7] = lines[7].replace(" ", " \x10", 1)
        (ann / f"{name}.txt").write_text("\n".join(lines) + "\n")
    return root / "Area_5" / "office_19", blocks


def test_s3dis_reader_survives_known_defects(tmp_path):
    room, blocks = _write_room(tmp_path)
    with pytest.warns(UserWarning) as rec:
        s = pcweak.load_scene(f"s3dis:{room}")
    msgs = " ".join(str(w.message) for w in rec)
    assert "ceiling_1.txt: 1 malformed line(s) repaired" in msgs
    assert "skipping duplicated annotation files ['wall_3 (1).txt']" in msgs
    assert s.name == "Area_5_office_19" and s.classes == S3DIS13
    from pcweak.data.collection import enumerate_scenes  # the room alone is named as its area's folder names it
    assert enumerate_scenes(f"s3dis:{room}") == enumerate_scenes(str(room.parent)) == [(s.name, f"s3dis:{room}")]
    # the release's root of Area_N folders, as the training configs' data.root names it
    (tmp_path / "Area_1" / "hallway_1" / "Annotations").mkdir(parents=True)
    assert enumerate_scenes(str(tmp_path)) == [("Area_1_hallway_1", f"s3dis:{tmp_path / 'Area_1' / 'hallway_1'}"), (s.name, f"s3dis:{room}")]
    order = ["ceiling_1", "chair_2", "chair_10", "stairs_1", "wall_3"]  # natural order
    assert list(s.extras["instance_file"]) == order
    np.testing.assert_allclose(s.coord, np.vstack([blocks[n][:, :3] for n in order]), atol=1e-3)
    np.testing.assert_allclose(s.color * 255, np.vstack([blocks[n][:, 3:] for n in order]), atol=1e-3)
    sem = np.concatenate([np.full(len(blocks[n]), S3DIS13.index({"stairs": "clutter"}.get(n.split("_")[0], n.split("_")[0]))) for n in order])
    np.testing.assert_array_equal(s.semantic, sem)
    assert len(np.unique(s.instance)) == 5
    # classes outside the 13: their points unlabelled, named in one warning for the room (one a file before)
    for name in ("cabinet_1", "cabinet_2", "shelf_1"):
        np.savetxt(room / "Annotations" / f"{name}.txt", blocks["chair_2"], fmt="%.3f")
    with pytest.warns(UserWarning) as rec:
        s = pcweak.load_scene(f"s3dis:{room}")
    odd = [str(w.message) for w in rec if "none of the 13 S3DIS classes" in str(w.message)]
    assert odd == [f"{room / 'Annotations'}: classes that are none of the 13 S3DIS classes, their points left unlabelled: "
                   f"'cabinet' (2 files), 'shelf' (1 file)"]
    assert (s.semantic == -1).sum() == 3 * len(blocks["chair_2"])


def test_s3dis_missing_annotations_and_damaged_points(tmp_path):
    with pytest.raises(ReaderError, match=r"no Annotations/ folder"):
        read_s3dis(tmp_path)
    # a NaN or a colour of 300 was refused for the room's Annotations/ as a whole, naming no file
    room = tmp_path / "Area_1" / "office_1"
    (room / "Annotations").mkdir(parents=True)
    (room / "Annotations" / "chair_1.txt").write_text("0 0 0 10 20 30\n1 1 1 10 20 30\n")
    for line, needle in (("nan 2 2 10 20 30", r"table_1.txt: 1 points with NaN/inf values .* point 1: \[nan"),
                         ("2 2 2 300 20 30", r"table_1.txt: 1 points with NaN/inf values or colours outside 0-255 .* point 1")):
        (room / "Annotations" / "table_1.txt").write_text(f"1 1 1 10 20 30\n{line}\n")
        with pytest.raises(ReaderError, match=needle):
            read_s3dis(room)


def test_class_names_holding_commas_survive_a_ply(tmp_path, room):
    """The header names the classes comma-separated; a name with a comma (``"table, low"``) or a
    line break would come back as other classes, so such a list is written as JSON, and files
    written the old way read as before."""
    from dataclasses import replace
    odd = ("wall", "table, low", "door\nframe", "[x]") + room.classes[4:]
    back = read_ply(write_ply(replace(room, classes=odd), tmp_path / "odd.ply"))
    assert back.classes == odd
    assert read_ply(write_ply(room, tmp_path / "plain.ply")).classes == room.classes
    assert b"pcweak_classes " + ",".join(room.classes).encode() in (tmp_path / "plain.ply").read_bytes()


def test_ply_roundtrip_and_errors(tmp_path, room):
    conf = np.linspace(0, 1, room.num_points).astype(np.float32)
    p = write_ply(room, tmp_path / "r.ply", fields={"confidence": conf})
    s = pcweak.load_scene(f"ply:{p}")
    np.testing.assert_array_equal(s.coord, room.coord)
    np.testing.assert_array_equal(s.semantic, room.semantic)
    np.testing.assert_array_equal(s.instance, room.instance)
    np.testing.assert_array_equal(s.segment, room.segment)
    assert s.classes == room.classes
    from plyfile import PlyData
    np.testing.assert_allclose(PlyData.read(str(p))["vertex"]["confidence"], conf)
    bad = room.coord.copy()
    bad[3] = np.nan
    with pytest.raises(Exception, match=r"coord: 1 entries are NaN"):
        Scene(name="x", coord=bad)
    # a PLY with a NaN vertex is refused naming the file
    txt = tmp_path / "nan.ply"
    txt.write_text("ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty float y\nproperty float z\nend_header\n0 0 0\nnan 1 1\n")
    with pytest.raises(ReaderError, match=r"nan.ply: 1 vertices have NaN/inf coordinates \(first at index 1\)"):
        read_ply(txt)
    empty = tmp_path / "empty.ply"
    empty.write_text("ply\nformat ascii 1.0\nelement vertex 0\nproperty float x\nproperty float y\nproperty float z\nend_header\n")
    with pytest.raises(ReaderError, match=r"empty.ply: no vertices \(empty point cloud\)"):
        read_ply(empty)
    corrupt = tmp_path / "corrupt.ply"
    corrupt.write_bytes(b"\x00\x01garbage")
    with pytest.raises(ReaderError, match=r"corrupt.ply: not a readable PLY file"):
        read_ply(corrupt)
    # a body longer than its header declares (two files joined, a count not updated) was cut silently
    header = "ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty float y\nproperty float z\nend_header\n"
    (tmp_path / "long.ply").write_text(header + "0 0 0\n1 1 1\n2 2 2\n\n")
    with pytest.raises(ReaderError, match=r"long.ply: its body holds more than its header declares \(3 lines of rows, its "
                                          r"header declares 2\)"):
        read_ply(tmp_path / "long.ply")
    raw = p.read_bytes()  # write_ply's binary file, twice over
    (tmp_path / "twice.ply").write_bytes(raw + raw)
    with pytest.raises(ReaderError, match=r"twice.ply: its body holds more than its header declares \(\d+ bytes"):
        read_ply(tmp_path / "twice.ply")
    (tmp_path / "newline.ply").write_bytes(raw + b"\n")  # a line end after the rows is no data
    assert read_ply(tmp_path / "newline.ply").num_points == room.num_points
    # a binary mesh: its faces measured as read (4 x 12 bytes of vertices, 2 + 7 x 4 of a triangle and a quad)
    from plyfile import PlyData, PlyElement
    vert = np.array([(0, 0, 0), (1, 0, 0), (0, 1, 0), (1, 1, 0)], dtype=[("x", "f4"), ("y", "f4"), ("z", "f4")])
    face = np.empty(2, dtype=[("vertex_indices", "O")])
    face["vertex_indices"] = [np.array([0, 1, 2], np.int32), np.array([0, 1, 3, 2], np.int32)]
    PlyData([PlyElement.describe(vert, "vertex"), PlyElement.describe(face, "face")]).write(str(tmp_path / "mesh.ply"))
    mesh = (tmp_path / "mesh.ply").read_bytes()
    assert read_ply(tmp_path / "mesh.ply").num_points == 4
    (tmp_path / "mesh2.ply").write_bytes(mesh + mesh[mesh.index(b"end_header\n") + 11:])
    with pytest.raises(ReaderError, match=r"mesh2.ply: its body holds more than its header declares \(156 bytes of rows, "
                                          r"its header declares 78\)"):
        read_ply(tmp_path / "mesh2.ply")


def test_ply_colours_in_the_forms_tools_write(tmp_path):
    """8-bit channels, 16-bit ones (LAS-derived clouds), floats in [0,1] or 0-255, MeshLab's
    ``diffuse_*`` names and PCL's packed ``rgb`` all read as the same colours in [0,1]; before,
    float 0-255 channels stopped with an error naming no file and the other forms read as no
    colour, without a word."""
    from plyfile import PlyData, PlyElement
    rng = np.random.default_rng(0)
    n = 50
    xyz = rng.random((n, 3))
    u8 = rng.integers(0, 256, (n, 3))
    u8[0], u8[1] = 255, 0  # the largest value present, so the 0-255 range is evident; a black point
    want = (u8 / 255.0).astype(np.float32)

    def write(name, props):
        arr = np.zeros(n, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4")] + [(k, a.dtype.str) for k, a in props])
        arr["x"], arr["y"], arr["z"] = xyz.T
        for k, a in props:
            arr[k] = a
        PlyData([PlyElement.describe(arr, "vertex")]).write(str(tmp_path / name))
        return read_ply(tmp_path / name)

    channels = lambda names, values: list(zip(names, values.T))  # noqa: E731
    packed = ((u8[:, 0] << 16) | (u8[:, 1] << 8) | u8[:, 2]).astype(np.uint32)
    for name, props in (("u8.ply", channels(("red", "green", "blue"), u8.astype(np.uint8))),
                        ("u16.ply", channels(("red", "green", "blue"), (u8 * 257).astype(np.uint16))),
                        ("f1.ply", channels(("red", "green", "blue"), want)),
                        ("f255.ply", channels(("red", "green", "blue"), u8.astype(np.float32))),
                        ("diffuse.ply", channels(("diffuse_red", "diffuse_green", "diffuse_blue"), u8.astype(np.uint8))),
                        ("pcl.ply", [("rgb", packed.view(np.float32))]),
                        ("rgba.ply", [("rgba", packed | np.uint32(0xFF000000))])):
        got = write(name, props).color
        assert got is not None, name
        np.testing.assert_allclose(got, want, atol=1e-6, err_msg=name)
    with pytest.raises(ReaderError, match=r"neg.ply: colour properties \['red', 'green', 'blue'\] range -1..255; "
                                          r"expected \[0,1\], \[0,255\] or \[0,65535\]"):
        write("neg.ply", channels(("red", "green", "blue"), np.where(u8 == 0, -1, u8).astype(np.float32)))


@pytest.mark.parametrize("names", [("X", "Y", "Z", "scalar_Intensity", "scalar_Label", "scalar_Instance"),  # CloudCompare
                                   ("x", "y", "z", "intensity", "sem_class", "ins_class"),  # DALES
                                   ("x", "y", "z", "Reflectance", "Classification", "instance")])
def test_ply_label_and_intensity_properties_as_datasets_name_them(tmp_path, names):
    """Labels under CloudCompare's ``scalar_Label`` (floats), DALES' ``sem_class``/``ins_class``
    or a LAS ``Classification`` were read as an unlabelled cloud, without a word."""
    from plyfile import PlyData, PlyElement
    sem, ins = np.array([0, 2, 1, 2]), np.array([-1, 4, 5, 4])
    arr = np.zeros(4, dtype=[(names[0], "f4"), (names[1], "f4"), (names[2], "f4"), (names[3], "f4"), (names[4], "f4"),
                             (names[5], "i4")])
    arr[names[0]] = np.arange(4)
    arr[names[3]], arr[names[4]], arr[names[5]] = 0.25, sem, ins
    PlyData([PlyElement.describe(arr, "vertex")]).write(str(tmp_path / "c.ply"))
    s = read_ply(tmp_path / "c.ply")
    assert s.semantic.tolist() == sem.tolist() and s.instance.tolist() == ins.tolist() and s.classes == ("class_0", "class_1", "class_2")
    assert s.coord[:, 0].tolist() == [0, 1, 2, 3] and np.allclose(s.intensity, 0.25)


@pytest.mark.parametrize("names", [("nx", "ny", "nz"), ("normal_x", "normal_y", "normal_z"), ("NX", "NY", "NZ")])
def test_ply_normals_under_the_names_tools_write(tmp_path, names):
    """PCL writes a PointNormal cloud's normals as ``normal_x normal_y normal_z``: the PLY reader
    took only ``nx ny nz`` and read such a cloud without normals (the text reader took both)."""
    from plyfile import PlyData, PlyElement
    normal = np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]], np.float32)
    arr = np.zeros(3, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4")] + [(k, "f4") for k in names])
    arr["x"] = np.arange(3)
    for j, k in enumerate(names):
        arr[k] = normal[:, j]
    PlyData([PlyElement.describe(arr, "vertex")]).write(str(tmp_path / "n.ply"))
    np.testing.assert_array_equal(read_ply(tmp_path / "n.ply").normal, normal)


UTM = np.array([500000.0, 4600000.0, 0.0])  # an easting and a northing; heights stay


def test_georeferenced_coordinates_keep_their_millimetres(tmp_path, room):
    """A scan in UTM coordinates (float64 in its PLY) is shifted toward the origin before float32
    holds it, boxes and frame poses with it; pcweak writes it back at the file's coordinates.
    Stored as float32 straight away its northings would lie 0.5 m apart."""
    from plyfile import PlyData, PlyElement
    far = room.coord.astype(np.float64) + UTM
    arr = np.zeros(room.num_points, dtype=[("x", "f8"), ("y", "f8"), ("z", "f8"), ("label", "i4")])
    arr["x"], arr["y"], arr["z"], arr["label"] = far[:, 0], far[:, 1], far[:, 2], room.semantic
    PlyData([PlyElement.describe(arr, "vertex")]).write(str(tmp_path / "utm.ply"))
    with pytest.warns(UserWarning, match=r"coord: coordinates up to 4600005 m from the origin \(georeferenced\?\) are "
                                         r"shifted by \[-500000.0, -4600000.0, 0.0\] m"):
        s = pcweak.load_scene(f"ply:{tmp_path / 'utm.ply'}")
    assert s.meta["coord_shift"] == UTM.tolist()
    np.testing.assert_allclose(s.coord, room.coord, atol=1e-6)
    out = write_ply(s, tmp_path / "out.ply")
    v = PlyData.read(str(out))["vertex"]
    assert v["x"].dtype == np.float64
    np.testing.assert_allclose(np.stack([v["x"], v["y"], v["z"]], 1), far, atol=1e-6)
    with pytest.warns(UserWarning, match=r"shifted by"):
        again = read_ply(out)
    assert again.meta["coord_shift"] == UTM.tolist()
    np.testing.assert_allclose(again.coord, room.coord, atol=1e-6)
    # a scene saved shifted loads as it was, with no second shift
    s.save(tmp_path / "s.npz")
    back = pcweak.load_scene(f"npz:{tmp_path / 's.npz'}")
    assert back.meta["coord_shift"] == UTM.tolist() and np.array_equal(back.coord, s.coord)

    # boxes and camera poses move with the points: every frame projects each point where it did
    moved = [pcweak.Frame(f.name, f.pose + np.pad(UTM[:, None], ((0, 1), (3, 0))), f.intrinsics, image=f.image, depth=f.depth)
             for f in room.frames]
    boxes = room.boxes.astype(np.float64) + np.r_[UTM, np.zeros(4)]
    with pytest.warns(UserWarning, match=r"shifted by"):
        t = Scene(name="utm", coord=far, classes=room.classes, boxes=boxes, frames=moved)
    np.testing.assert_allclose(t.boxes, room.boxes, atol=1e-6)
    for f, g in zip(t.frames, room.frames):
        np.testing.assert_allclose(f.pose, g.pose, atol=1e-9)
    assert moved[0].pose[0, 3] > 1e5  # the caller's frames are left as they were

    # far coordinates that come as float32 already lost their millimetres: said, not shifted
    with pytest.warns(UserWarning, match=r"float32 coordinates up to \d+ m from the origin, whose values lie 0.5 m apart"):
        f32 = Scene(name="f32", coord=far.astype(np.float32))
    assert "coord_shift" not in f32.meta


def test_addresses(tmp_path, room):
    p = room.save(tmp_path / "r.npz")
    assert pcweak.load_scene(f"npz:{p}").num_points == room.num_points
    assert pcweak.load_scene(str(p)).num_points == room.num_points
    with pytest.raises(AddressError, match=r"expected DATASET:PATH"):
        pcweak.load_scene("foo:bar")
    with pytest.raises(AddressError, match=r"the seed must be an integer >= 0"):
        pcweak.load_scene("synthetic:abc")


def test_scene_folders_given_bare_are_read_by_what_they_hold(tmp_path, room, capsys):
    """A ScanNet scan, an S3DIS room or a Pointcept scene folder given without ``DATASET:`` is
    read as one scene by every command, under the name and address its folder's listing gives."""
    import json

    from pcweak.cli import main
    from pcweak.data.collection import enumerate_scenes, names_one_scene
    from pcweak.data.s3dis import write_s3dis
    from pcweak.data.scannet import write_scannet
    scan = write_scannet(room, tmp_path / "scannet")
    s3 = write_s3dis(room, tmp_path / "s3dis", "Area_2", "office_4")
    pc = tmp_path / "pointcept" / "Area_3" / "hallway_1"
    pc.mkdir(parents=True)
    np.save(pc / "coord.npy", room.coord.astype(np.float32))
    np.save(pc / "segment.npy", np.zeros(room.num_points, np.int16))
    for folder, kind in ((scan, "scannet"), (s3, "s3dis"), (pc, "pointcept-s3dis")):
        scene = pcweak.load_scene(str(folder))
        assert scene.name == pcweak.load_scene(f"{kind}:{folder}").name
        assert names_one_scene(str(folder)) and enumerate_scenes(str(folder)) == [(scene.name, f"{kind}:{folder}")]
        assert main(["info", str(folder), "--compact"]) == 0
        assert json.loads(capsys.readouterr().out)["points"] == room.num_points
    assert [a for _, a in enumerate_scenes(str(pc.parent))] == [f"pointcept-s3dis:{pc}"]
    with pytest.raises(AddressError, match=r"a bare path is read as a file of its suffix, or a ScanNet scan, S3DIS room or Pointcept scene folder"):
        pcweak.load_scene(str(tmp_path))


def test_label_files_beside_the_scenes_of_a_folder_are_not_scenes(tmp_path, room):
    """Weak- and pseudo-label files written beside a folder's scene files (`pcweak label
    room.npz -o room_pseudo.npz`) are not listed as scenes; a damaged .npz still is, so that
    reading it names what is wrong."""
    from pcweak import weak
    from pcweak.data.collection import enumerate_scenes
    scene = room.save(tmp_path / "room.npz")
    w = weak.points(room, count=20, seed=0)
    w.save(tmp_path / "room_weak.npz")
    pcweak.label(room, w, "nearest").save(tmp_path / "room_pseudo.npz")
    (tmp_path / "damaged.npz").write_bytes(b"not a zip")
    assert enumerate_scenes(str(tmp_path)) == [("damaged", f"npz:{tmp_path / 'damaged.npz'}"), ("room", f"npz:{scene}")]


def test_two_scenes_of_one_name_in_a_folder_are_refused(tmp_path, room, capsys):
    """`room1.ply` beside `room1.las` (or `room1.npz`): weak-label and output files are named by
    the scene, so a folder job would write the second's over the first's; refused before any."""
    from pcweak.cli import main
    from pcweak.data.ply import write_ply
    write_ply(room, tmp_path / "scenes" / "room1.ply")
    room.save(tmp_path / "scenes" / "room1.npz")
    write_ply(room, tmp_path / "scenes" / "room2.ply")
    assert main(["simulate", str(tmp_path / "scenes"), "--weak", "points", "--count", "20", "-o", str(tmp_path / "weak")]) == 2
    err = capsys.readouterr().err
    assert err.count("error") == 1 and "2 scenes are named 'room1' (npz:" in err and "rename or move all but one" in err
    assert not (tmp_path / "weak").exists()


def test_pcd_files_as_pcl_and_open3d_write_them(tmp_path, room):
    """PCD, the Point Cloud Library's format (ROS, LiDAR and depth-camera tools, annotation tools),
    was no address at all ("expected DATASET:PATH"). Read with Open3D's tensor reader: ascii,
    binary and compressed data, PCL's packed ``rgb``, ``label`` (placeholders for its classes),
    intensity; an organized cloud's NaN points are left out with a warning; files it cannot read
    are refused by name."""
    import open3d as o3d
    lab = np.where(room.semantic >= 0, room.semantic, 255).astype(np.uint32)[:, None]
    pc = o3d.t.geometry.PointCloud()
    pc.point.positions = o3d.core.Tensor(room.coord)
    pc.point.colors = o3d.core.Tensor(np.round(room.color * 255).astype(np.uint8))
    pc.point.intensity = o3d.core.Tensor(np.linspace(0, 1, room.num_points, dtype=np.float32)[:, None])
    pc.point.label = o3d.core.Tensor(lab)
    top = int(room.semantic.max())
    for ascii_, compressed in ((True, False), (False, False), (False, True)):
        path = tmp_path / f"room_{int(ascii_)}{int(compressed)}.pcd"
        assert o3d.t.io.write_point_cloud(str(path), pc, write_ascii=ascii_, compressed=compressed)
        s = pcweak.load_scene(str(path))
        assert s.meta["dataset"] == "pcd" and s.num_points == room.num_points
        assert np.allclose(s.coord, room.coord, atol=1e-4) and np.allclose(s.color, room.color, atol=1 / 255)
        assert np.array_equal(s.semantic, np.where(lab[:, 0] == 255, -1, lab[:, 0].astype(np.int64))) and s.normal is None
        assert s.classes == tuple(f"class_{i}" for i in range(top + 1)) and s.intensity[-1] == pytest.approx(1.0)
    header = ("VERSION 0.7\nFIELDS x y z rgb label\nSIZE 4 4 4 4 4\nTYPE F F F F U\nCOUNT 1 1 1 1 1\n"
              "WIDTH 2\nHEIGHT 2\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS 4\nDATA ascii\n")
    packed = float(np.array([(200 << 16) | (100 << 8) | 50], np.uint32).view(np.float32)[0])
    (tmp_path / "organized.pcd").write_text(header + "".join(f"{i} 0 1 {packed!r} {i}\n" if i != 2 else "nan nan nan 0 0\n"
                                                           for i in range(4)))
    with pytest.warns(UserWarning, match=r"organized.pcd: 1 of 4 points have NaN/inf coordinates .* count the 3 kept"):
        s = pcweak.load_scene(f"pcd:{tmp_path / 'organized.pcd'}")
    assert s.coord[:, 0].tolist() == [0, 1, 3] and s.semantic.tolist() == [0, 1, 3]
    assert np.allclose(s.color[0] * 255, [200, 100, 50])
    (tmp_path / "channels.pcd").write_text(header.replace("rgb label", "r g b normal_x normal_y normal_z")
                                           .replace("SIZE 4 4 4 4 4", "SIZE 4 4 4 1 1 1 4 4 4")
                                           .replace("TYPE F F F F U", "TYPE F F F U U U F F F")
                                           .replace("COUNT 1 1 1 1 1", "COUNT 1 1 1 1 1 1 1 1 1")
                                           .replace("HEIGHT 2", "HEIGHT 1").replace("POINTS 4", "POINTS 2")
                                           + "0 0 0 10 20 30 0 0 1\n1 1 1 40 50 60 0 1 0\n")
    s = pcweak.load_scene(str(tmp_path / "channels.pcd"))  # colour channels of their own, not packed
    assert np.allclose(s.color * 255, [[10, 20, 30], [40, 50, 60]]) and s.normal.tolist() == [[0, 0, 1], [0, 1, 0]]
    assert s.semantic is None and s.classes == ()
    (tmp_path / "text.pcd").write_text("1 2 3\n")
    with pytest.raises(ReaderError, match=r"text.pcd: not a readable PCD file \(no FIELDS line"):
        pcweak.load_scene(str(tmp_path / "text.pcd"))
    (tmp_path / "cut.pcd").write_bytes((tmp_path / "room_00.pcd").read_bytes()[:-40])
    with pytest.raises(ReaderError, match=r"cut.pcd: its header gives \d+ POINTS of \d+ bytes, its body holds"):
        pcweak.load_scene(str(tmp_path / "cut.pcd"))
    # what Open3D's reader takes without a word: a body shorter than POINTS (it read memory's leftovers as
    # points: a label 15741445), a word (read as 0), a COUNT the body does not follow, DATA it does not know
    header = "VERSION 0.7\nFIELDS x y z label\nSIZE 4 4 4 4\nTYPE F F F I\nCOUNT 1 1 1 {c}\nWIDTH {n}\nHEIGHT 1\nPOINTS {n}\nDATA {d}\n"
    for name, text, needle in (
            ("short.pcd", header.format(c=1, n=3, d="ascii") + "0 0 0 1\n1 1 1 2\n", "its header gives 3 POINTS, its body holds 2 lines"),
            ("word.pcd", header.format(c=1, n=2, d="ascii") + "0 0 0 1\n1 one 1 2\n", "point 1 holds 'one', not a number"),
            ("count.pcd", header.format(c=2, n=1, d="ascii") + "0 0 0 1\n", "point 0 has 4 values where the header's fields hold 5"),
            ("zipped.pcd", header.format(c=1, n=1, d="binary_zipped") + "xxxx", "DATA 'binary_zipped'; PCD data is one of")):
        (tmp_path / name).write_text(text)
        with pytest.raises(ReaderError, match=rf"{name}: {re.escape(needle)}"):
            pcweak.load_scene(str(tmp_path / name))
        (tmp_path / name).unlink()
    for bad in ("text.pcd", "cut.pcd", "organized.pcd", "channels.pcd"):
        (tmp_path / bad).unlink()
    from pcweak.data.collection import enumerate_scenes
    assert sorted(n for n, _ in enumerate_scenes(str(tmp_path))) == ["room_00", "room_01", "room_10"]


def test_pcd_written_by_pcweak_reads_back_with_its_class_names(tmp_path, room, capsys):
    """``write_pcd`` (``pcweak viz --export x.pcd``): colour, normals, labels, pseudo-label fields
    and the class names (a header comment Open3D and PCL skip) read back as written; the
    pseudo-labels' names name a file's placeholder classes in the export."""
    from pcweak.cli import main
    from pcweak.classes import placeholder_class
    from pcweak.data.pcd import read_pcd, write_pcd
    from pcweak.scene import PseudoLabels
    back = read_pcd(write_pcd(room, tmp_path / "room.pcd", {"confidence": np.full(room.num_points, 0.5)}))
    assert back.classes == room.classes and np.array_equal(back.semantic, room.semantic)
    assert np.array_equal(back.instance, room.instance) and np.allclose(back.normal, room.normal)
    assert room.segment is not None and np.array_equal(back.segment, room.segment)  # the scene's superpoints kept
    assert np.allclose(back.coord, room.coord) and np.allclose(back.color, room.color, atol=0.5 / 255)
    import open3d as o3d
    assert o3d.t.io.read_point_cloud(str(tmp_path / "room.pcd")).point["confidence"].numpy().ravel()[0] == 0.5
    plain = Scene(name="plain", coord=room.coord, semantic=room.semantic % 3,
                  classes=tuple(placeholder_class(i) for i in range(3)))
    write_pcd(plain, tmp_path / "plain.pcd")
    PseudoLabels(semantic=plain.semantic, classes=("stone", "tree", "car"), method="propagate").save(tmp_path / "p.npz")
    assert main(["viz", str(tmp_path / "plain.pcd"), "--pseudo", str(tmp_path / "p.npz"), "--export", str(tmp_path / "x.pcd")]) == 0
    assert "PCD with fields ['label', 'pseudo_label', 'pseudo_instance', 'confidence']" in capsys.readouterr().out
    x = read_pcd(tmp_path / "x.pcd")
    assert x.classes == ("stone", "tree", "car") and np.array_equal(x.semantic, plain.semantic)


def _rows(room, intensity=None):
    """The room's points as text columns x y z [intensity] r g b (whole-number colours)."""
    cols = [room.coord.astype(np.float64)] + ([intensity[:, None]] if intensity is not None else [])
    return np.hstack(cols + [np.round(room.color * 255)])


def test_text_point_clouds_as_tools_write_them(tmp_path, room):
    """Points as text were no address at all: Semantic3D's scans (x y z intensity r g b, labels
    in ``.labels`` beside them, 0 unlabelled), Leica PTS (a point count first), CloudCompare's
    ASCII export with a first line naming the columns (``//X,Y,Z,...``, commas or semicolons,
    a BOM and CRLF line ends), plain x y z lists and x y z plus normals or colours."""
    from pcweak.classes import SEMANTIC3D8
    from pcweak.data.collection import enumerate_scenes
    rng = np.random.default_rng(0)
    inten = rng.integers(-2048, 2048, room.num_points).astype(np.float64)
    s3d = tmp_path / "sem3d" / "station1_xyz_intensity_rgb.txt"
    s3d.parent.mkdir()
    np.savetxt(s3d, _rows(room, inten), fmt=["%.3f"] * 3 + ["%d"] * 4)
    raw = np.where(rng.random(room.num_points) < 0.2, 0, rng.integers(1, 9, room.num_points))
    np.savetxt(s3d.with_suffix(".labels"), raw, fmt="%d")
    s = pcweak.load_scene(str(s3d))
    assert s.meta["dataset"] == "txt" and s.name == "station1_xyz_intensity_rgb" and s.classes == SEMANTIC3D8
    assert np.array_equal(s.semantic, raw - 1) and np.array_equal(s.intensity, inten.astype(np.float32))
    assert np.allclose(s.coord, room.coord, atol=6e-4) and np.allclose(s.color, room.color, atol=0.5 / 255)
    # a folder of Semantic3D scans: .txt files are listed as scenes only under txt:
    (s3d.parent / "readme.txt").write_text("classes: see the benchmark's site\n")
    with pytest.raises(AddressError, match=r"no scenes found \(its 2 .txt file\(s\) .* with txt:"):
        enumerate_scenes(str(s3d.parent))
    (s3d.parent / "readme.txt").unlink()
    assert enumerate_scenes(f"txt:{s3d.parent}") == [(s.name, f"txt:{s3d}")]
    from pcweak.train.datamodule import PointDataModule
    tr, va = PointDataModule(dataset="folder", root=f"txt:{s3d.parent}", supervision="full").scene_lists()
    assert tr == [(s.name, f"txt:{s3d}")] and va == []
    # Leica PTS: its point count first, the same seven columns
    pts = tmp_path / "scan.pts"
    np.savetxt(pts, _rows(room, inten), fmt=["%.4f"] * 3 + ["%d"] * 4, header=str(room.num_points), comments="")
    s = pcweak.load_scene(str(pts))
    assert s.semantic is None and np.array_equal(s.intensity, inten.astype(np.float32))
    assert np.allclose(s.color, room.color, atol=0.5 / 255)
    # CloudCompare: a line naming the columns, label columns get placeholder classes
    for sep in (",", ";"):
        cc = tmp_path / f"cc{'c' if sep == ',' else 's'}.txt"
        body = np.hstack([_rows(room), room.semantic[:, None], room.instance[:, None]])
        np.savetxt(cc, body, fmt=["%.4f"] * 3 + ["%d"] * 5, delimiter=sep,
                   header=sep.join(["X", "Y", "Z", "R", "G", "B", "Scalar_Label", "instance"]), comments="//")
        cc.write_bytes(b"\xef\xbb\xbf" + cc.read_bytes().replace(b"\n", b"\r\n"))  # a Windows tool's BOM and CRLF
        s = pcweak.load_scene(str(cc))
        assert np.array_equal(s.semantic, room.semantic) and np.array_equal(s.instance, room.instance)
        assert s.classes == tuple(f"class_{i}" for i in range(int(room.semantic.max()) + 1))
        assert np.allclose(s.color, room.color, atol=0.5 / 255) and s.meta["columns"][-2:] == ["scalar_label", "instance"]
    # x y z alone, with normals, with colours as Open3D's xyzrgb (floats in [0,1])
    np.savetxt(tmp_path / "p.xyz", room.coord, fmt="%.4f")
    s = pcweak.load_scene(str(tmp_path / "p.xyz"))
    assert s.num_points == room.num_points and s.color is None and s.normal is None
    np.savetxt(tmp_path / "n.xyz", np.hstack([room.coord, room.normal]), fmt="%.6f")
    s = pcweak.load_scene(str(tmp_path / "n.xyz"))
    assert s.color is None and np.allclose(s.normal, room.normal, atol=1e-5)
    np.savetxt(tmp_path / "c.xyz", np.hstack([room.coord, room.color]), fmt="%.6f")
    assert np.allclose(pcweak.load_scene(f"txt:{tmp_path / 'c.xyz'}").color, room.color, atol=1e-5)
    assert sorted(n for n, _ in enumerate_scenes(str(tmp_path))) == ["c", "n", "p", "scan"]  # .xyz and .pts listed


def test_text_point_clouds_that_cannot_be_told_are_refused(tmp_path):
    """Seven or four columns outside PTS and Semantic3D are as often x y z r g b label as x y z
    intensity r g b: refused with the line that names them, never guessed. Rows of another width,
    values that are not numbers, labels files of another length or outside Semantic3D's classes,
    a naming line of another width, a PTS count that disagrees and two sources of labels: refused
    by file and line."""
    rng = np.random.default_rng(1)
    xyz = rng.uniform(0, 3, (20, 3))
    seven = np.hstack([xyz, rng.integers(0, 256, (20, 3)), rng.integers(0, 5, (20, 1))])

    def refused(name, text, match, labels=None):
        path = tmp_path / name
        path.write_text(text)
        if labels is not None:
            path.with_suffix(".labels").write_text(labels)
        with pytest.raises(ReaderError, match=match):
            pcweak.load_scene(f"txt:{path}")

    lines = "".join(" ".join(f"{v:g}" for v in row) + "\n" for row in seven)
    refused("seven.txt", lines, r"seven.txt: 7 columns and no first line naming them \(they could be x y z r g b label or "
            r"x y z intensity r g b\); add one, e.g. `sed -i '1i x y z red green blue label' seven.txt`")
    refused("four.xyz", "".join(" ".join(f"{v:g}" for v in row[[0, 1, 2, 6]]) + "\n" for row in seven),
            r"four.xyz: 4 columns .*could be x y z label or x y z intensity")
    refused("short.xyz", "1 2 3\n4 5 6\n7 8\n", r"short.xyz: line 3 has 2 columns, the first point's 3: '7 8'")
    refused("word.xyz", "# scanned 2026\n1 2 3\n4 5 six\n", r"word.xyz: line 3 holds 'six', not a number")
    refused("names.txt", "x y z red green blue\n" + lines, r"names.txt: its first line names 6 columns .*, its points have 7")
    refused("notes.txt", "classes: wall, floor\n", r"notes.txt: line 1 is neither numbers nor a line naming the columns")
    refused("empty.xyz", "\n\n", r"empty.xyz: no point in its first 64 lines")
    refused("count.pts", "21\n" + lines, r"count.pts: its first line gives 21 points, it holds 20")
    six = "".join(" ".join(f"{v:g}" for v in row[:6]) + "\n" for row in seven)
    refused("few.txt", six, r"few.labels: 19 labels for the 20 points of few.txt", labels="1\n" * 19)
    refused("nine.txt", six, r"nine.labels: label 9 on line 3 is outside Semantic3D's 0-8", labels="1\n2\n9\n" + "0\n" * 17)
    refused("both.txt", "x y z r g b label\n" + lines, r"both.txt: both a 'label' column and both.labels beside it",
            labels="1\n" * 20)
    ok = tmp_path / "ok.txt"  # the same columns, named
    ok.write_text("x y z r g b label\n" + lines)
    s = pcweak.load_scene(str(ok))
    assert np.array_equal(s.semantic, seven[:, 6].astype(np.int64)) and np.allclose(s.color * 255, seven[:, 3:6])
