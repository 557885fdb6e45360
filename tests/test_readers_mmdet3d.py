"""mmdetection3d's processed ScanNet / S3DIS layout (``points/ semantic_mask/ instance_mask/``,
infos as v1 or v2 pickles or JSON, ``posed_images/``): fixtures written here from a synthetic
room, and the real files of ../shared/data that come in this layout."""
from __future__ import annotations

import json
import pickle
import warnings

import numpy as np
import pytest

import pcweak
from pcweak.classes import MMDET3D_TO_SCANNET20_NAMES, S3DIS13, SCANNET18_MMDET3D, SCANNET20, SCANNET20_NYU40_IDS
from pcweak.data.mmdet3d import read_mmdet3d
from pcweak.data.scannet import boxes_of_instances
from pcweak.errors import ReaderError

from .conftest import shared_path

A = np.array([[np.cos(0.4), -np.sin(0.4), 0, 1.5], [np.sin(0.4), np.cos(0.4), 0, -2.0], [0, 0, 1, 0.05], [0, 0, 0, 1]])
MMDET3D_NAME = {v: k for k, v in MMDET3D_TO_SCANNET20_NAMES.items()}


def _write_scannet(root, room, name="scene0001_00"):
    """``room`` written as mmdetection3d leaves it: raw-frame points (A's inverse applied), NYU40
    semantic ids, 1-based instance ids; returns its boxes and their ScanNet-20 labels."""
    for d in ("points", "semantic_mask", "instance_mask"):
        (root / d).mkdir(parents=True, exist_ok=True)
    raw = (np.c_[room.coord, np.ones(room.num_points)] @ np.linalg.inv(A).T)[:, :3]
    np.hstack([raw, np.round(room.color * 255)]).astype(np.float32).tofile(root / "points" / f"{name}.bin")
    nyu = np.array(SCANNET20_NYU40_IDS, np.int64)
    np.where(room.semantic >= 0, nyu[np.maximum(room.semantic, 0)], 0).astype(np.int64).tofile(root / "semantic_mask" / f"{name}.bin")
    np.where(room.instance >= 0, room.instance + 1, 0).astype(np.int64).tofile(root / "instance_mask" / f"{name}.bin")
    return boxes_of_instances(room.coord.astype(np.float64), room.instance, room.semantic)


def _names(labels):
    return [MMDET3D_NAME.get(SCANNET20[c], SCANNET20[c]) for c in labels]


def test_scannet_layout_with_v1_v2_and_json_infos(tmp_path, room):
    boxes, labels = _write_scannet(tmp_path, room)
    assert len(boxes) >= 3 and set(_names(labels)) <= set(SCANNET18_MMDET3D)
    cls18 = np.array([SCANNET18_MMDET3D.index(n) for n in _names(labels)])
    v1 = [{"point_cloud": {"num_features": 6, "lidar_idx": "scene0002_00"}, "annos": {"gt_num": 0}},
          {"point_cloud": {"num_features": 6, "lidar_idx": "scene0001_00"}, "pts_path": "points/scene0001_00.bin",
           "annos": {"gt_num": len(boxes), "gt_boxes_upright_depth": boxes[:, :6].astype(np.float64),
                     "class": cls18, "name": np.array(_names(labels)), "axis_align_matrix": A}}]
    v2 = {"metainfo": {"categories": {n: i for i, n in enumerate(SCANNET18_MMDET3D)}, "dataset": "scannet"},
          "data_list": [{"lidar_points": {"num_pts_feats": 6, "lidar_path": "scene0001_00.bin"}, "axis_align_matrix": A.tolist(),
                         "instances": [{"bbox_3d": b[:6].tolist(), "bbox_label_3d": int(c)} for b, c in zip(boxes, cls18)]}]}
    entry = {"axis_align_matrix": A.tolist(), "instances": [{"bbox_3d": b[:6].tolist(), "bbox_label_3d": int(c), "class": n}
                                                            for b, c, n in zip(boxes, cls18, _names(labels))]}
    for kind, write in (("v1", lambda: pickle.dump(v1, open(tmp_path / "scannet_infos_train.pkl", "wb"), protocol=4)),
                        ("v2", lambda: pickle.dump(v2, open(tmp_path / "scannet_infos_train.pkl", "wb"), protocol=5)),
                        ("json", lambda: (tmp_path / "infos").mkdir() or
                         (tmp_path / "infos" / "scene0001_00.json").write_text(json.dumps(entry)))):
        (tmp_path / "scannet_infos_train.pkl").unlink(missing_ok=True)
        write()
        s = pcweak.load_scene(f"mmdet3d-scannet:{tmp_path}/scene0001_00")
        assert s.name == "scene0001_00" and s.classes == SCANNET20, kind
        np.testing.assert_allclose(s.coord, room.coord, atol=2e-4, err_msg=kind)
        np.testing.assert_allclose(s.axis_alignment, A)
        np.testing.assert_allclose(s.color, np.round(room.color * 255) / 255, atol=1e-6)
        np.testing.assert_array_equal(s.semantic, room.semantic)
        np.testing.assert_array_equal(s.instance, room.instance)
        np.testing.assert_allclose(s.boxes, boxes, atol=1e-5, err_msg=kind)
        np.testing.assert_array_equal(s.box_labels, labels)
        assert s.meta["infos"].endswith(".json" if kind == "json" else ".pkl")
    # infos that list the scene without objects give it none, whatever the masks hold
    (tmp_path / "infos" / "scene0001_00.json").unlink()
    v1[1]["annos"] = {"gt_num": 0, "axis_align_matrix": A}
    pickle.dump(v1, open(tmp_path / "scannet_infos_train.pkl", "wb"), protocol=4)
    assert pcweak.load_scene(f"mmdet3d-scannet:{tmp_path}/scene0001_00").boxes.shape == (0, 7)
    # the address may name the points file; an explicit matrix overrides the infos'
    s = pcweak.load_scene(f"mmdet3d-scannet:{tmp_path}/points/scene0001_00.bin", axis_alignment=np.eye(4))
    assert np.abs(s.coord - room.coord).max() > 0.5


def test_scannet_layout_without_infos_or_masks(tmp_path, room):
    boxes, labels = _write_scannet(tmp_path, room)
    with pytest.warns(UserWarning, match="no axis alignment"):
        s = read_mmdet3d(tmp_path / "scene0001_00", "scannet")
    assert s.axis_alignment is None and np.abs(s.coord - room.coord).max() > 0.5  # raw frame
    b, l = boxes_of_instances(s.coord.astype(np.float64), s.instance, s.semantic)  # boxes around the masks' objects
    np.testing.assert_allclose(s.boxes, b)
    np.testing.assert_array_equal(s.box_labels, labels)
    s = read_mmdet3d(tmp_path / "scene0001_00", "scannet", axis_alignment=A)
    np.testing.assert_allclose(s.boxes, boxes, atol=1e-4)
    for d in ("semantic_mask", "instance_mask"):
        (tmp_path / d / "scene0001_00.bin").unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bare = read_mmdet3d(tmp_path / "scene0001_00", "scannet")
    assert bare.semantic is None and bare.instance is None and bare.boxes is None and bare.num_points == room.num_points


def _write_s3dis(root, n=60, order=S3DIS13):
    rng = np.random.default_rng(1)
    for d in ("points", "semantic_mask", "instance_mask"):
        (root / d).mkdir(parents=True, exist_ok=True)
    pts = np.hstack([rng.uniform(0, 4, (n, 3)), rng.integers(0, 256, (n, 3))]).astype(np.float32)
    sem = rng.integers(0, len(order), n).astype(np.int64)
    ins = rng.integers(0, 6, n).astype(np.int64)
    pts.tofile(root / "points" / "Area_2_hallway_1.bin")
    sem.tofile(root / "semantic_mask" / "Area_2_hallway_1.bin")
    ins.tofile(root / "instance_mask" / "Area_2_hallway_1.bin")
    (root / "class_names.txt").write_text("\n".join(order) + "\n")
    return pts, sem, ins


def test_s3dis_layout_reads_its_class_order_and_refuses_misfits(tmp_path):
    order = tuple(reversed(S3DIS13))
    pts, sem, ins = _write_s3dis(tmp_path, order=order)
    s = pcweak.load_scene(f"mmdet3d-s3dis:{tmp_path}/Area_2_hallway_1")
    assert s.classes == S3DIS13 and s.name == "Area_2_hallway_1"
    assert [S3DIS13[c] for c in s.semantic] == [order[c] for c in sem]
    np.testing.assert_array_equal(s.instance, np.where(ins > 0, ins - 1, -1))
    np.testing.assert_allclose(s.coord, pts[:, :3])
    sem[:-1].tofile(tmp_path / "semantic_mask" / "Area_2_hallway_1.bin")
    with pytest.raises(ReaderError, match="semantic_mask/Area_2_hallway_1.bin: 59 labels for 60 points"):
        read_mmdet3d(tmp_path / "Area_2_hallway_1", "s3dis")
    np.full(60, 13, np.int64).tofile(tmp_path / "semantic_mask" / "Area_2_hallway_1.bin")
    with pytest.raises(ReaderError, match="60 labels outside 0..12"):
        read_mmdet3d(tmp_path / "Area_2_hallway_1", "s3dis")
    (tmp_path / "points" / "Area_2_hallway_1.bin").write_bytes(pts.tobytes()[:-4])  # a cut-off last row
    with pytest.raises(ReaderError, match="not a whole number of x y z r g b float32 rows"):
        read_mmdet3d(tmp_path / "Area_2_hallway_1", "s3dis")
    pts.tofile(tmp_path / "points" / "Area_2_hallway_1.bin")
    (tmp_path / "class_names.txt").write_text("ceiling\nsky\n")
    with pytest.raises(ReaderError, match=r"class_names.txt: classes \['sky'\]"):
        read_mmdet3d(tmp_path / "Area_2_hallway_1", "s3dis")
    with pytest.raises(ReaderError, match="points file not found"):
        read_mmdet3d(tmp_path / "Area_9_none", "s3dis")


@pytest.mark.realdata
def test_real_scannet_points_infos_and_frames():
    """scene0113_00 as mmdetection3d ships it: 4 boxes (3 chairs, a table) from its infos, each
    holding 4.6k-5.6k aligned points, and 30 posed RGB-D frames whose depth lands on the points."""
    s = pcweak.load_scene(f"mmdet3d-scannet:{shared_path('scannet', 'points', 'scene0113_00.bin')}")
    assert s.num_points == 91598 and len(s.frames) == 30 and s.semantic is None
    assert sorted(SCANNET20[c] for c in s.box_labels) == ["chair", "chair", "chair", "table"]
    from pcweak.geometry import points_in_boxes
    counts = points_in_boxes(s.coord, s.boxes).sum(0)
    assert all(4500 <= c <= 5700 for c in counts), counts
    from scipy.spatial import cKDTree
    from pcweak.camera import backproject
    f = s.frames[0]
    xyz, _, _ = backproject(f.depth, f.intrinsics, f.pose, stride=8)
    d, _ = cKDTree(s.coord).query(xyz)
    assert len(xyz) > 1000 and np.median(d) < 0.03, np.median(d)
    # the box labeller on a real scan it was not tuned on: each box's mask stays in its box
    # and takes most of what the box holds (floor under a chair's legs is left out)
    out = pcweak.label(s, pcweak.weak.boxes(s, seed=0), "gp-boxes")
    inside = points_in_boxes(s.coord, s.boxes, margin=0.02)
    for k in range(len(s.boxes)):
        m = out.instance == k
        assert (m & inside[:, k]).sum() >= 0.98 * m.sum() and m.sum() >= 0.8 * counts[k], (k, m.sum(), counts[k])


@pytest.mark.realdata
def test_real_mmdet3d_demo_points_and_s3dis_fragment():
    """mmdetection3d's demo scene0000_00.bin is a subset of the scan's mesh vertices (raw frame,
    no infos beside it); its S3DIS test fragment has 100 points in 19 instances."""
    with pytest.warns(UserWarning, match="no axis alignment"):
        demo = pcweak.load_scene(f"mmdet3d-scannet:{shared_path('scannet_points', 'scene0000_00.bin')}")
    from pcweak.data.scannet import read_scannet
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = read_scannet(shared_path("scannet", "scans", "scene0000_00"), frames=False)  # raw frame
    from scipy.spatial import cKDTree
    d, i = cKDTree(full.coord).query(demo.coord)
    assert demo.num_points == 40684 and d.max() < 1e-4
    np.testing.assert_allclose(demo.color, full.color[i], atol=1e-6)
    f = pcweak.load_scene(f"mmdet3d-s3dis:{shared_path('s3dis_fragment', 'points', 'Area_1_office_2.bin')}")
    assert f.num_points == 100 and len(np.unique(f.instance)) == 19 and (f.instance >= 0).all()
    assert np.bincount(f.semantic, minlength=13).tolist() == [19, 14, 39, 2, 2, 2, 6, 4, 2, 2, 3, 0, 5]


# ---------------------------------------------------------------------------- Pointcept's folders


def _write_pointcept(d, room, raw=True):
    d.mkdir(parents=True)
    coord = (np.c_[room.coord, np.ones(room.num_points)] @ np.linalg.inv(A).T)[:, :3] if raw else room.coord
    np.save(d / "coord.npy", coord.astype(np.float32))
    np.save(d / "color.npy", np.round(room.color * 255).astype(np.uint8))
    np.save(d / "segment20.npy", room.semantic.astype(np.int16))
    np.save(d / "instance.npy", room.instance.astype(np.int64))


def test_pointcept_scannet_folder(tmp_path, room):
    d = tmp_path / "train" / "scene0001_00"
    _write_pointcept(d, room)
    raw = pcweak.load_scene(f"pointcept-scannet:{d}")
    assert raw.name == "scene0001_00" and raw.axis_alignment is None and np.abs(raw.coord - room.coord).max() > 0.5
    s = pcweak.load_scene(f"pointcept-scannet:{d}", axis_alignment=A)
    np.testing.assert_allclose(s.coord, room.coord, atol=2e-4)
    np.testing.assert_allclose(s.color, np.round(room.color * 255) / 255, atol=1e-6)
    np.testing.assert_array_equal(s.semantic, room.semantic)
    np.testing.assert_array_equal(s.instance, room.instance)
    b, l = boxes_of_instances(room.coord.astype(np.float64), room.instance, room.semantic)
    np.testing.assert_allclose(s.boxes, b, atol=1e-4)
    np.testing.assert_array_equal(s.box_labels, l)
    normal = np.tile([[0.0, 0.0, 2.0]], (room.num_points, 1)).astype(np.float32)
    np.save(d / "normal.npy", normal)  # normals turn with the points and come back unit length
    np.testing.assert_allclose(pcweak.load_scene(f"pointcept-scannet:{d}", axis_alignment=A).normal, normal / 2, atol=1e-6)


def test_pointcept_s3dis_folder_and_its_refusals(tmp_path):
    d = tmp_path / "Area_3" / "office_7"
    d.mkdir(parents=True)
    rng = np.random.default_rng(2)
    np.save(d / "coord.npy", rng.uniform(0, 4, (50, 3)))
    np.save(d / "color.npy", rng.uniform(0, 255, (50, 3)))
    sem = rng.integers(0, 13, 50)
    np.save(d / "segment.npy", sem)
    s = pcweak.load_scene(f"pointcept-s3dis:{d}")
    assert s.name == "Area_3_office_7" and s.classes == S3DIS13 and s.instance is None
    np.testing.assert_array_equal(s.semantic, sem)
    np.save(d / "segment.npy", np.full(50, 13))
    with pytest.raises(ReaderError, match=r"segment.npy: 50 values outside -1..12"):
        read_pointcept_(d)
    np.save(d / "segment.npy", sem[:-1])
    with pytest.raises(ReaderError, match=r"segment.npy: expected a numeric \(50,\) array"):
        read_pointcept_(d)
    np.save(d / "segment.npy", sem)
    np.save(d / "color.npy", np.full((50, 3), 300.0))
    with pytest.raises(ReaderError, match="color.npy: colours must lie in 0-255"):
        read_pointcept_(d)
    np.save(d / "color.npy", np.array([{"a": 1}] * 50, dtype=object), allow_pickle=True)
    with pytest.raises(ReaderError, match="color.npy holds pickled Python objects"):
        read_pointcept_(d)
    (d / "coord.npy").unlink()
    with pytest.raises(ReaderError, match="no coord.npy"):
        read_pointcept_(d)


def read_pointcept_(d):
    from pcweak.data.pointcept import read_pointcept
    return read_pointcept(d, "s3dis")


# ---------------------------------------------------------------------------- folders of processed scenes


def test_folders_of_processed_scenes_are_enumerated(tmp_path, room, capsys):
    """A folder in each processed layout names its scenes as ``pcweak label`` and the ``folder``
    datamodule take them: mmdetection3d's root (ScanNet scenes and S3DIS rooms side by side),
    VoteNet exports, Pointcept's ScanNet splits and S3DIS areas, SemanticKITTI sequences; each
    address reads, and a folder labels end to end."""
    from pcweak import weak
    from pcweak.cli import main
    from pcweak.data.address import load_scene
    from pcweak.data.collection import enumerate_scenes
    from pcweak.data.kitti import write_kitti
    from pcweak.data.synthetic_lidar import synthetic_lidar
    mm = tmp_path / "mmdet3d"
    for name in ("scene0001_00", "scene0002_00"):
        _write_scannet(mm, room, name)
    _write_s3dis(mm)
    assert enumerate_scenes(str(mm)) == [("Area_2_hallway_1", f"mmdet3d-s3dis:{mm / 'Area_2_hallway_1'}"),
                                         ("scene0001_00", f"mmdet3d-scannet:{mm / 'scene0001_00'}"),
                                         ("scene0002_00", f"mmdet3d-scannet:{mm / 'scene0002_00'}")]
    # the points/ folder itself, its dataset told by each file's name as at the root
    assert enumerate_scenes(str(mm / "points")) == [("Area_2_hallway_1", f"mmdet3d-s3dis:{mm / 'points' / 'Area_2_hallway_1.bin'}"),
                                                    ("scene0001_00", f"mmdet3d-scannet:{mm / 'points' / 'scene0001_00.bin'}"),
                                                    ("scene0002_00", f"mmdet3d-scannet:{mm / 'points' / 'scene0002_00.bin'}")]
    with pytest.raises(ReaderError, match="read it as mmdet3d-s3dis"):  # ScanNet forced on an S3DIS room
        enumerate_scenes(f"mmdet3d-scannet:{mm}")
    for kind in ("points", "semantic_mask", "instance_mask"):
        (mm / kind / "Area_2_hallway_1.bin").unlink()
    # mmdetection3d's data/scannet holds the raw scans/ beside points/: the raw scans by default
    from pcweak.data.scannet import write_scannet
    scan = write_scannet(room, mm)
    assert enumerate_scenes(str(mm)) == [(scan.name, f"scannet:{scan}")]
    assert len(enumerate_scenes(f"mmdet3d-scannet:{mm}")) == 2
    # a folder of bare points files, as mmdetection3d's demo ships them
    assert enumerate_scenes(f"mmdet3d-scannet:{mm / 'points'}")[0] == ("scene0001_00", f"mmdet3d-scannet:{mm / 'points' / 'scene0001_00.bin'}")
    ex = tmp_path / "export"
    ex.mkdir()
    np.save(ex / "scene0005_00_vert_all.npy", np.hstack([room.coord, room.color * 255]).astype(np.float32))
    assert enumerate_scenes(str(ex)) == [("scene0005_00", f"scannet-export:{ex / 'scene0005_00'}")]
    pc = tmp_path / "pointcept"
    for split, name in (("train", "scene0001_00"), ("val", "scene0003_00")):
        _write_pointcept(pc / "scannet" / split / name, room)
    for area, name in (("Area_1", "office_1"), ("Area_5", "hallway_2")):
        _write_pointcept(pc / "s3dis" / area / name, room, raw=False)
        np.save(pc / "s3dis" / area / name / "segment.npy", np.zeros(room.num_points, np.int16))
    assert enumerate_scenes(str(pc / "scannet")) == [("scene0001_00", f"pointcept-scannet:{pc / 'scannet' / 'train' / 'scene0001_00'}"),
                                                     ("scene0003_00", f"pointcept-scannet:{pc / 'scannet' / 'val' / 'scene0003_00'}")]
    assert enumerate_scenes(str(pc / "s3dis")) == [("Area_1_office_1", f"pointcept-s3dis:{pc / 's3dis' / 'Area_1' / 'office_1'}"),
                                                   ("Area_5_hallway_2", f"pointcept-s3dis:{pc / 's3dis' / 'Area_5' / 'hallway_2'}")]
    assert enumerate_scenes(str(pc / "s3dis" / "Area_1" / "office_1")) == [
        ("Area_1_office_1", f"pointcept-s3dis:{pc / 's3dis' / 'Area_1' / 'office_1'}")]
    sk = tmp_path / "semantickitti" / "sequences"
    lidar = synthetic_lidar(0, azimuth_steps=200, beams=8)
    for seq in ("00", "01"):
        velo = write_kitti(lidar, tmp_path / "kitti" / "training")
        (sk / seq / "velodyne").mkdir(parents=True)
        np.fromfile(velo, np.float32).tofile(sk / seq / "velodyne" / "000007.bin")
    assert enumerate_scenes(f"semantickitti:{sk.parent}") == [("00_000007", f"semantickitti:{sk / '00' / '000007'}"),
                                                            ("01_000007", f"semantickitti:{sk / '01' / '000007'}")]
    assert enumerate_scenes(f"semantickitti:{sk / '01'}") == [("01_000007", f"semantickitti:{sk / '01' / '000007'}")]
    # every address reads, under the name the folder gave it, and is named so on its own too
    # (a scene labelled alone finds the weak file its folder's job wrote, and writes where it would)
    for folder in (str(mm), str(ex), str(pc / "scannet"), str(pc / "s3dis"), f"semantickitti:{sk.parent}",
                   f"mmdet3d-scannet:{mm / 'points'}", str(mm / "points"), str(tmp_path / "kitti" / "training")):
        for name, address in enumerate_scenes(folder):
            assert load_scene(address).name == name, address
            assert enumerate_scenes(address) == [(name, address)]
    for address in ("synthetic:3", "synthetic-lidar:0"):
        assert enumerate_scenes(address) == [(load_scene(address).name, address)]
    # a folder labels end to end, one output per scene, named as the weak files are
    wdir = tmp_path / "weak"
    wdir.mkdir()
    for name, address in enumerate_scenes(f"mmdet3d-scannet:{mm}"):
        weak.points(load_scene(address), count=20, seed=0).save(wdir / f"{name}.npz")
    assert main(["label", f"mmdet3d-scannet:{mm}", "--weak", str(wdir), "--method", "nearest", "-o", str(tmp_path / "out")]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["labelled"] == 2
    assert sorted(f.name for f in (tmp_path / "out").glob("*.npz")) == ["scene0001_00.npz", "scene0002_00.npz"]


def test_a_layout_forced_on_the_other_datasets_scenes_is_refused(tmp_path, room):
    """mmdetection3d and Pointcept keep ScanNet scans and S3DIS rooms in the same files; read
    under the other dataset's prefix, a scene's labels would be decoded under the wrong class
    list without a word (an S3DIS room's masks as NYU40 ids, a ScanNet scan with S3DIS's
    classes). Such an address, or such a folder, is refused naming the prefix to use; names of
    neither dataset read under either."""
    from pcweak.data.collection import enumerate_scenes
    from pcweak.errors import AddressError
    mm = tmp_path / "mmdet3d"
    _write_scannet(mm, room)
    rng = np.random.default_rng(0)
    for name in ("Area_1_office_2", "room_a"):
        np.hstack([rng.uniform(0, 4, (60, 3)), rng.uniform(0, 255, (60, 3))]).astype(np.float32).tofile(mm / "points" / f"{name}.bin")
        rng.integers(0, 13, 60).astype(np.int64).tofile(mm / "semantic_mask" / f"{name}.bin")
    assert pcweak.load_scene(f"mmdet3d-s3dis:{mm}/Area_1_office_2").classes == S3DIS13
    with pytest.raises(ReaderError, match=rf"'Area_1_office_2' is named as S3DIS names .* read it as mmdet3d-s3dis:{mm}/Area_1_office_2$"):
        pcweak.load_scene(f"mmdet3d-scannet:{mm}/Area_1_office_2")
    with pytest.raises(ReaderError, match=rf"'scene0001_00' is named as ScanNet names .* read it as mmdet3d-scannet:{mm}/scene0001_00$"):
        pcweak.load_scene(f"mmdet3d-s3dis:{mm}/scene0001_00")
    with pytest.raises(ReaderError, match=rf"read it as mmdet3d-scannet:{mm}/points/scene0001_00.bin$"):
        pcweak.load_scene(f"mmdet3d-s3dis:{mm}/points/scene0001_00.bin")
    for kind in ("mmdet3d-scannet", "mmdet3d-s3dis"):  # a name of neither dataset reads under both
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ScanNet's: no infos, so no axis alignment
            assert pcweak.load_scene(f"{kind}:{mm}/room_a").num_points == 60
        with pytest.raises(ReaderError, match="read it as mmdet3d-"):  # the folder, before any scene is read
            enumerate_scenes(f"{kind}:{mm}")
    assert sorted(a for _, a in enumerate_scenes(str(mm))) == [
        f"mmdet3d-s3dis:{mm}/Area_1_office_2", f"mmdet3d-scannet:{mm}/room_a", f"mmdet3d-scannet:{mm}/scene0001_00"]
    with pytest.raises(AddressError, match=rf"no scenes found as s3dis \(without 's3dis:' it holds 3 scene\(s\) of "
                                           rf"mmdet3d-s3dis, mmdet3d-scannet, e.g. mmdet3d-s3dis:{mm}/Area_1_office_2\)"):
        enumerate_scenes(f"s3dis:{mm}")

    scan = tmp_path / "pointcept" / "train" / "scene0001_00"
    _write_pointcept(scan, room)
    area = tmp_path / "pointcept" / "Area_2" / "office_1"
    area.mkdir(parents=True)
    np.save(area / "coord.npy", rng.uniform(0, 4, (50, 3)))
    np.save(area / "segment.npy", rng.integers(0, 13, 50))
    with pytest.raises(ReaderError, match=rf"'scene0001_00' is named as ScanNet .* read it as pointcept-scannet:{scan}$"):
        pcweak.load_scene(f"pointcept-s3dis:{scan}")
    with pytest.raises(ReaderError, match=rf"'Area_2' is named as S3DIS .* read it as pointcept-s3dis:{area}$"):
        pcweak.load_scene(f"pointcept-scannet:{area}")
    moved = tmp_path / "copied" / "office_1"  # out of its area: the labels' file tells
    moved.parent.mkdir()
    area.rename(moved)
    with pytest.raises(ReaderError, match=rf"{moved}: holds segment.npy \(S3DIS labels\) and no segment20.npy, so it is not a "
                                          rf"pointcept-scannet scene; read it as pointcept-s3dis:{moved}$"):
        pcweak.load_scene(str(moved))  # a bare Pointcept folder outside an Area_N is taken for ScanNet's
    (scan.parent.parent / "renamed").mkdir()
    scan.rename(scan.parent.parent / "renamed" / "kitchen")
    with pytest.raises(ReaderError, match="holds segment20.npy \\(ScanNet-20 labels\\) and no segment.npy"):
        pcweak.load_scene(f"pointcept-s3dis:{scan.parent.parent / 'renamed' / 'kitchen'}")
    assert pcweak.load_scene(f"pointcept-s3dis:{moved}").num_points == 50


def test_a_damaged_scannet_export_is_refused_naming_its_file(tmp_path, room):
    """votenet / mmdetection3d's ScanNet export (``<scene>_vert_all.npy`` and its labels) was read
    with ``np.load`` unchecked: a truncated copy or a text file ended in numpy's words naming no
    file, fractional or NaN labels were cut to whole ids, booleans read as ids 0 / 1, instance ids
    of -100 read as none. Each is refused naming the file now."""
    from pcweak.data.scannet import read_scannet_export
    vert = np.hstack([room.coord, room.color * 255]).astype(np.float32)
    sem = np.where(room.semantic >= 0, 5, 0).astype(np.uint32)  # NYU40 5: chair
    ins = (room.instance + 1).astype(np.uint32)
    for name, a in (("vert_all", vert), ("sem_label_all", sem), ("ins_label_all", ins)):
        np.save(tmp_path / f"scene0005_00_{name}.npy", a)
    s = read_scannet_export(tmp_path, "scene0005_00")
    assert s.num_points == room.num_points and (s.semantic[room.semantic >= 0] == SCANNET20.index("chair")).all()
    raw = (tmp_path / "scene0005_00_vert_all.npy").read_bytes()
    for name, bad, needle in (
            ("vert_all", raw[: len(raw) // 2], r"vert_all.npy is not a readable .npy file \((Failed to read all data|cannot reshape)"),
            ("vert_all", b"1 2 3 4 5 6\n", r"vert_all.npy is not a .npy file \(it does not begin with NumPy's header\)"),
            ("sem_label_all", sem + 0.5, r"sem_label_all.npy: expected integer labels, got float64"),
            ("sem_label_all", sem > 3, r"sem_label_all.npy: expected a numeric \(\d+,\) array, got bool"),
            ("ins_label_all", ins.astype(np.int64) - 100, r"ins_label_all.npy: \d+ values below -1 \(e.g. -\d+\)"),
            ("ins_label_all", ins[:-3], r"ins_label_all.npy: expected a numeric \(\d+,\) array, got uint32 \(\d+,\)"),
            ("sem_label_all", np.where(sem > 0, 1191, 0).astype(np.uint32),  # a ScanNet200 id: read as unlabelled before
             r"sem_label_all.npy: \d+ labels above 40 \(the first, 1191, at point \d+\): NYU40 ids run 0-40")):
        f = tmp_path / f"scene0005_00_{name}.npy"
        keep = f.read_bytes()
        if isinstance(bad, bytes):
            f.write_bytes(bad)
        else:
            np.save(f, bad)
        with pytest.raises(ReaderError, match=needle):
            pcweak.load_scene(f"scannet-export:{tmp_path / 'scene0005_00'}")
        f.write_bytes(keep)
    # mmdetection3d's semantic_mask holds NYU40 ids too
    mm = tmp_path / "mm"
    _write_scannet(mm, room)
    np.where(room.semantic >= 0, 1191, 0).astype(np.int64).tofile(mm / "semantic_mask" / "scene0001_00.bin")
    with pytest.raises(ReaderError, match=r"semantic_mask/scene0001_00.bin: \d+ labels above 40 \(the first, 1191"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # no infos: no axis alignment
            read_mmdet3d(mm / "scene0001_00", "scannet")
    # ids below -1, and instance ids below 0 (-1 for none: object 0 would be read as none), in either layout
    _write_scannet(mm, room)
    np.full(room.num_points, -100, np.int64).tofile(mm / "semantic_mask" / "scene0001_00.bin")
    with pytest.raises(ReaderError, match=r"semantic_mask/scene0001_00.bin: \d+ labels below -1 \(the first, -100, at point 0\)"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            read_mmdet3d(mm / "scene0001_00", "scannet")
    _write_scannet(mm, room)
    (room.instance.astype(np.int64) - 1).tofile(mm / "instance_mask" / "scene0001_00.bin")  # 0-based, -1 for none
    with pytest.raises(ReaderError, match=r"instance_mask/scene0001_00.bin: \d+ instance ids below 0 \(the first, -1, "
                                          r"at point \d+\): mmdetection3d writes 0 for no instance"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            read_mmdet3d(mm / "scene0001_00", "scannet")
    s3dis = tmp_path / "s3dis"
    _, _, ins = _write_s3dis(s3dis)
    (ins - 1).tofile(s3dis / "instance_mask" / "Area_2_hallway_1.bin")
    with pytest.raises(ReaderError, match=r"instance_mask/Area_2_hallway_1.bin: \d+ instance ids below 0"):
        read_mmdet3d(s3dis / "Area_2_hallway_1", "s3dis")
