import numpy as np
import pytest

import pcweak
from pcweak.data.kitti import read_kitti, write_kitti
from pcweak.errors import ReaderError

from .conftest import shared_path

README_COUNTS = {"000000": [376], "000001": [70, 9, 18], "000003": [680], "000004": [77, 26]}


@pytest.mark.realdata
@pytest.mark.parametrize("fid", sorted(README_COUNTS))
def test_real_kitti_frames(fid):
    root = shared_path("kitti", "training")
    s = pcweak.load_scene(f"kitti:{root}/{fid}")
    raw = np.fromfile(root / "velodyne" / f"{fid}.bin", np.float32).reshape(-1, 4)
    np.testing.assert_array_equal(s.coord, raw[:, :3])
    np.testing.assert_array_equal(s.intensity, raw[:, 3])
    labels = [l.split() for l in (root / "label_2" / f"{fid}.txt").read_text().splitlines() if l.strip()]
    care = [l for l in labels if l[0] != "DontCare"]
    assert list(s.extras["box_type"]) == [l[0] for l in care]
    assert len(s.extras["dontcare_bbox2d"]) == len(labels) - len(care)
    # box -> point labels: KITTI's own in-box test gives the README's counts
    from pcweak.data.kitti import points_in_camera_boxes
    from pcweak.kitti_objects import read_objects
    objs = read_objects(root / "label_2" / f"{fid}.txt")
    objs = objs.select(objs.type != "DontCare")
    inside = points_in_camera_boxes(s.calib.lidar_to_rect(s.coord), objs)
    assert inside.sum(0).tolist() == README_COUNTS[fid]
    for k, t in enumerate(s.extras["box_type"]):
        if t in ("Car", "Pedestrian", "Cyclist"):
            assert (s.instance == k).sum() == README_COUNTS[fid][k]
            assert (s.semantic[s.instance == k] == s.box_labels[k]).all()
    # LiDAR boxes: the size is l,w,h and the box centre projects inside the annotated 2D box
    for k in range(len(objs)):
        h, w, l = objs.hwl[k]
        np.testing.assert_allclose(s.boxes[k, 3:6], [l, w, h], atol=1e-5)
        uv, z = s.calib.lidar_to_image(s.boxes[k:k + 1, :3])
        x1, y1, x2, y2 = objs.bbox[k]
        assert z[0] > 0 and x1 - 2 <= uv[0, 0] <= x2 + 2 and y1 - 2 <= uv[0, 1] <= y2 + 2
    # projection of the in-FOV labelled points lands inside image_2
    img = s.frames[0].image
    lab = s.semantic >= 0
    uv, z = s.calib.lidar_to_image(s.coord[lab])
    assert (z > 0).all() and (uv[:, 0] >= 0).all() and (uv[:, 0] < img.shape[1]).all()
    assert (uv[:, 1] >= 0).all() and (uv[:, 1] < img.shape[0]).all()
    # the frame's pinhole pose reproduces P2's projection
    from pcweak.camera import project
    uv2, _ = project(s.coord[lab][:100], s.frames[0].intrinsics, s.frames[0].pose)
    np.testing.assert_allclose(uv2, uv[:100], atol=1e-3)


def test_kitti_end_to_end_on_written_fixture(tmp_path, lidar):
    write_kitti(lidar, tmp_path / "training", "000007")
    s = read_kitti(tmp_path / "training" / "000007")
    np.testing.assert_allclose(s.coord, lidar.coord)
    np.testing.assert_allclose(s.intensity, lidar.intensity)
    assert list(s.extras["box_type"]) == list(lidar.extras["box_type"])
    np.testing.assert_allclose(s.boxes[:, :3], lidar.boxes[:, :3], atol=0.011)  # label_2 has cm precision
    np.testing.assert_allclose(s.boxes[:, 3:6], lidar.boxes[:, 3:6], atol=0.006)
    dyaw = np.angle(np.exp(1j * (s.boxes[:, 6] - lidar.boxes[:, 6])))
    assert np.abs(dyaw).max() < 0.006
    # per-point labels agree with the generator's wherever KITTI annotates (in the camera FOV);
    # ground points under a box bottom flip with the camera/LiDAR frame change, so leave them out
    lab = (s.semantic >= 0) & (s.coord[:, 2] > -1.73 + 0.1)
    assert lab.sum() > 1000
    agree = (s.semantic[lab] == lidar.semantic[lab]).mean()
    assert agree > 0.99
    assert s.frames[0].image.shape == (375, 1242, 3)


def test_kitti_errors(tmp_path, lidar):
    split = tmp_path / "training"
    write_kitti(lidar, split, "000001")
    (split / "calib" / "000001.txt").unlink()
    with pytest.raises(ReaderError, match=r"calib/000001.txt: calibration file missing"):
        read_kitti(split / "000001")
    with pytest.raises(ReaderError, match=r"velodyne/000002.bin: LiDAR scan not found"):
        read_kitti(split / "000002")
    write_kitti(lidar, split, "000003")
    (split / "velodyne" / "000003.bin").write_bytes(b"\x00" * 10)
    with pytest.raises(ReaderError, match=r"000003.bin: size 10 bytes is not a whole number"):
        read_kitti(split / "000003")
    write_kitti(lidar, split, "000004")
    pts = np.fromfile(split / "velodyne" / "000004.bin", np.float32)
    pts[5] = np.nan
    pts.tofile(split / "velodyne" / "000004.bin")
    with pytest.raises(ReaderError, match=r"000004.bin: 1 points have NaN/inf values"):
        read_kitti(split / "000004")
    write_kitti(lidar, split, "000005")
    (split / "label_2" / "000005.txt").write_text("Car 0 0\n")
    with pytest.raises(ReaderError, match=r"label_2/000005.txt:1: expected 15 fields .*, got 3"):
        read_kitti(split / "000005")


def test_a_damaged_calibration_is_refused_naming_its_file(tmp_path):
    """A zero P2, R0_rect or Tr_velo_to_cam ended in numpy's "Singular matrix", naming nothing; a
    scaled rotation or a negative focal length was applied to every box; a key given twice kept
    its last line. The shared frames' files pass."""
    from pcweak.data.kitti import read_calib
    real = shared_path("kitti", "training", "calib")
    for f in sorted(real.glob("*.txt")):
        read_calib(f)
    text = (real / "000000.txt").read_text()
    lines = text.splitlines()

    def with_key(key, values):
        return "\n".join(f"{key}: " + " ".join(map(str, values)) if x.startswith(key + ":") else x for x in lines) + "\n"
    r0 = [float(v) for v in next(x for x in lines if x.startswith("R0_rect:")).split()[1:]]
    cases = ((with_key("P2", [0] * 12), r"P2's focal lengths must be > 0 \(fx 0, fy 0\)"),
             (with_key("R0_rect", [2 * v for v in r0]), r"R0_rect's rotation is none \(det 8"),
             (with_key("Tr_velo_to_cam", [0] * 12), r"Tr_velo_to_cam's rotation is none \(det 0"),
             (text + "P2: " + " ".join(["0"] * 12) + "\n", rf"c.txt:{len(lines) + 1}: key P2 again \(first on line 3\)"),
             ("\n".join(x for x in lines if not x.startswith("R0_rect")), r"no R0_rect line"))
    for bad, needle in cases:
        (tmp_path / "c.txt").write_text(bad)
        with pytest.raises(ReaderError, match=needle) as refused:
            read_calib(tmp_path / "c.txt")
        assert str(refused.value).startswith(str(tmp_path / "c.txt"))


def test_a_scan_of_five_floats_per_point_is_refused_not_scrambled(tmp_path, lidar):
    """nuScenes' .bin scans hold x, y, z, intensity and a ring index per point; read as KITTI's
    four floats (any point count divisible by 4 passes the size check) every point's coordinates
    were others' values, without a word. Such a scan is refused naming the layout; KITTI's own
    scans (and four-float scans whose size would divide by five) read as before."""
    split = tmp_path / "training"
    write_kitti(lidar, split, "000006")
    four = np.fromfile(split / "velodyne" / "000006.bin", np.float32).reshape(-1, 4)[:lidar.num_points // 20 * 20]
    four.tofile(split / "velodyne" / "000006.bin")  # a count divisible by 4 and 5 both
    assert read_kitti(split / "000006").num_points == len(four)
    ring = (np.arange(len(four)) % 32).astype(np.float32)[:, None]
    np.concatenate([four, ring], 1).tofile(split / "velodyne" / "000006.bin")
    with pytest.raises(ReaderError, match=r"000006.bin: holds 5 float32 per point \(x, y, z, intensity, ring index"):
        read_kitti(split / "000006")


def test_ground_truth_of_a_box_outside_the_label_space_is_misc():
    """A scene without KITTI types (a converted or synthetic frame) whose box has no class: the
    devkit must see a real object ("Misc"), never a DontCare region with a 3D box."""
    from pcweak.data.kitti import ground_truth_objects
    from pcweak.data.synthetic_lidar import synthetic_lidar
    s = synthetic_lidar(5)
    s.extras = {k: v for k, v in (s.extras or {}).items() if k != "box_type"}
    s.box_labels = s.box_labels.copy()
    s.box_labels[0] = -1
    objs = ground_truth_objects(s)
    assert objs.type[0] == "Misc" and list(objs.type[1:len(s.boxes)]) == [s.classes[c] for c in s.box_labels[1:]]
    assert (objs.hwl[0] > 0).all()  # a real 3D box


@pytest.mark.realdata
def test_real_semantickitti_scan_matches_its_readme_counts():
    seq = shared_path("semantickitti", "sequences", "00")
    s = pcweak.load_scene(f"semantickitti:{seq}/000000")
    assert s.num_points == 124668 and s.classes[0] == "car" and len(s.classes) == 19
    counts = dict(zip(s.classes, np.bincount(s.semantic[s.semantic >= 0], minlength=19).tolist()))
    # raw ids 40 road + 60 lane-marking -> road; 255 moving-motorcyclist -> motorcyclist
    assert counts["car"] == 4234 and counts["road"] == 34228 + 1053 and counts["motorcyclist"] == 88
    # 0 unlabelled, 1 outlier, 52 other-structure, 99 other-object are not evaluated
    assert int((s.semantic < 0).sum()) == 2184 + 4 + 1471 + 1227
    ids = np.unique(s.instance[s.instance >= 0])
    assert ids.tolist() == list(range(len(ids))) and len(ids) >= 1 and (s.instance[s.semantic == 8] == -1).all()
    assert all(len(np.unique(s.semantic[s.instance == i])) == 1 for i in ids)  # one class per instance


def test_semantickitti_reader_on_a_written_scan(tmp_path):
    seq = tmp_path / "sequences" / "05"
    (seq / "velodyne").mkdir(parents=True)
    (seq / "labels").mkdir()
    pts = np.array([[1, 2, 0, 0.5], [3, 4, 0, 0.1], [5, 6, 1, 0.9], [7, 8, 1, 0.2]], np.float32)
    pts.tofile(seq / "velodyne" / "000007.bin")
    lab = np.array([10 | (3 << 16), 252 | (3 << 16), 40, 30 | (1 << 16)], np.uint32)
    lab.tofile(seq / "labels" / "000007.label")
    s = pcweak.load_scene(f"semantickitti:{seq}/000007")
    assert s.name == "05_000007" and s.semantic.tolist() == [0, 0, 8, 5]
    assert s.instance[0] == s.instance[1] >= 0 and s.instance[2] == -1
    assert s.instance[3] >= 0 and s.instance[3] != s.instance[0]
    np.testing.assert_array_equal(s.intensity, pts[:, 3])
    lab[:3].tofile(seq / "labels" / "000007.label")
    with pytest.raises(ReaderError, match="3 labels for 4 points"):
        pcweak.load_scene(f"semantickitti:{seq}/000007")
    with pytest.raises(ReaderError, match="LiDAR scan not found"):
        pcweak.load_scene(f"semantickitti:{seq}/000008")
    np.r_[lab, np.uint32(0)].tofile(seq / "labels" / "000007.label")
    (seq / "labels" / "000007.label").write_bytes((seq / "labels" / "000007.label").read_bytes()[:-2])
    with pytest.raises(ReaderError, match="000007.label: 18 bytes, not a whole number of uint32 labels"):
        pcweak.load_scene(f"semantickitti:{seq}/000007")
    np.r_[lab[:3], np.uint32(7 | (2 << 16))].tofile(seq / "labels" / "000007.label")  # SemanticPOSS' car, say
    with pytest.raises(ReaderError, match=r"000007.label: 1 of 4 labels hold semantic ids SemanticKITTI does not "
                                          r"define \(7; the first at point 3\)"):
        pcweak.load_scene(f"semantickitti:{seq}/000007")


def test_folders_of_lidar_frames_are_told_apart_without_a_dataset_prefix(tmp_path):
    """A SemanticKITTI sequence given as a bare folder is read with its point labels (not as a
    KITTI split under KITTI's box classes, which its velodyne/ alone would suggest); the folders
    above or below a KITTI split name the split to give."""
    from pcweak.data.collection import enumerate_scenes
    from pcweak.data.synthetic_lidar import synthetic_lidar
    from pcweak.errors import AddressError
    lidar = synthetic_lidar(0, azimuth_steps=200, beams=8)
    split = tmp_path / "kitti" / "training"
    velo = write_kitti(lidar, split)
    seqs = tmp_path / "semantickitti" / "sequences"
    for seq, labelled in (("00", True), ("11", False)):  # a test sequence has no labels/
        (seqs / seq / "velodyne").mkdir(parents=True)
        np.fromfile(velo, np.float32).tofile(seqs / seq / "velodyne" / "000007.bin")
        if labelled:
            (seqs / seq / "labels").mkdir()
            np.zeros(lidar.num_points, np.uint32).tofile(seqs / seq / "labels" / "000007.label")
    both = [("00_000007", f"semantickitti:{seqs / '00' / '000007'}"), ("11_000007", f"semantickitti:{seqs / '11' / '000007'}")]
    assert enumerate_scenes(str(seqs.parent)) == both == enumerate_scenes(str(seqs))
    assert enumerate_scenes(str(seqs / "00")) == both[:1]
    s = pcweak.load_scene(both[0][1])
    assert s.semantic is not None and s.classes[0] == "car"
    # a sequence without labels stays a folder of KITTI frames unless semantickitti: is given
    assert enumerate_scenes(str(seqs / "11")) == [("000007", f"kitti:{seqs / '11' / '000007'}")]
    assert enumerate_scenes(f"semantickitti:{seqs / '11'}") == both[1:]
    assert enumerate_scenes(str(split)) == [("000000", f"kitti:{split / '000000'}")]
    with pytest.raises(AddressError, match=f"a KITTI root: give one split, {split}\\)$"):
        enumerate_scenes(str(split.parent))
    for part in ("velodyne", "label_2"):
        with pytest.raises(AddressError, match=f"it is the {part}/ folder of {split}, which holds 1 scene\\(s\\): give that folder\\)$"):
            enumerate_scenes(str(split / part))
    with pytest.raises(AddressError, match=f"it is the labels/ folder of {seqs / '00'}, which holds 1 scene"):
        enumerate_scenes(str(seqs / "00" / "labels"))
    # the other dataset's prefix forced on a frame or scan: its labels would be left unread
    from pcweak.errors import ReaderError
    with pytest.raises(ReaderError, match=rf"{seqs / '00'}: a SemanticKITTI sequence .* read the scan as "
                                          rf"semantickitti:{seqs / '00' / '000007'}$"):
        pcweak.load_scene(f"kitti:{seqs / '00' / '000007'}")
    with pytest.raises(ReaderError, match=rf"{split}: a KITTI split \(label_2/ boxes, no point labels for 000000\), not a "
                                          rf"SemanticKITTI sequence; read the frame as kitti:{split / '000000'}$"):
        pcweak.load_scene(f"semantickitti:{split / '000000'}")
    assert pcweak.load_scene(f"kitti:{seqs / '11' / '000007'}").num_points == lidar.num_points  # no labels/: either reads
