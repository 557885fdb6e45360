import json
import warnings

import numpy as np
import pytest

import pcweak
from pcweak.data.scannet import read_axis_alignment, read_limited_annotation, read_scannet, write_scannet
from pcweak.errors import ReaderError
from pcweak.geometry import rot_z

from .conftest import shared_path


def _alignment():
    A = np.eye(4)
    A[:3, :3] = rot_z(0.4)
    A[:3, 3] = [-2.0, 1.5, -0.1]
    return A


def test_scannet_end_to_end_on_written_fixture(tmp_path, room):
    A = _alignment()
    d = write_scannet(room, tmp_path, axis_alignment=A)
    s = pcweak.load_scene(f"scannet:{d}")
    assert s.num_points == room.num_points and s.name == room.name
    np.testing.assert_allclose(s.coord, room.coord, atol=2e-5)  # alignment applied back
    np.testing.assert_allclose(s.axis_alignment, A, atol=1e-8)
    np.testing.assert_array_equal(s.semantic, room.semantic)
    # instances and segments are the same partitions (ids may be renumbered)
    for a, b in ((s.instance, room.instance), (s.segment, room.segment)):
        pairs = np.unique(np.stack([a, b]), axis=1)
        assert pairs.shape[1] == len(np.unique(a)) == len(np.unique(b))
    np.testing.assert_allclose(s.color, np.round(room.color * 255) / 255, atol=1e-6)
    # normals from the written faces agree with the surface normals
    ok = np.linalg.norm(s.normal, axis=1) > 0
    cos = np.abs((s.normal[ok] * room.normal[ok]).sum(1))
    assert ok.mean() > 0.95 and np.median(cos) > 0.95
    # axis-aligned GT boxes: one per object instance, containing its points
    assert len(s.boxes) == len(np.unique(room.instance[~np.isin(room.semantic, [0, 1])]))
    assert np.allclose(s.boxes[:, 6], 0)
    # frames: poses back in the aligned frame, depth in metres (mm precision)
    assert len(s.frames) == len(room.frames)
    for f0, f1 in zip(room.frames, s.frames):
        np.testing.assert_allclose(f1.pose, f0.pose, atol=1e-6)
        np.testing.assert_allclose(f1.depth, f0.depth, atol=1e-3)
        assert f1.image.shape == f0.image.shape


def test_scannet_invalid_poses_are_skipped_with_warning(tmp_path, room):
    d = write_scannet(room, tmp_path)
    np.savetxt(d / "pose" / f"{room.frames[1].name}.txt", np.full((4, 4), -np.inf))
    with pytest.warns(UserWarning, match=r"skipped 1 frames with invalid \(non-finite\) poses"):
        s = read_scannet(d)
    assert len(s.frames) == len(room.frames) - 1


def test_damaged_frames_are_refused_naming_their_file(tmp_path, room):
    """A zero or scaled camera pose, a zero or NaN camera matrix, a depth image of colour or 8 bits
    and a file that is no image were read (garbage masks, "'x' must be finite", "Frame[0].depth:
    expected (H,W)" or PIL's words); each is refused naming its file, as it is read."""
    from PIL import Image
    from pcweak import weak
    d = write_scannet(room, tmp_path)
    f0 = room.frames[0].name
    assert len(read_scannet(d).frames) == len(room.frames)  # the written frames pass
    cases = (
        (d / "pose" / f"{f0}.txt", "0 0 0 0\n" * 4, r"the camera pose is not a rotation and a translation"),
        (d / "pose" / f"{f0}.txt", "2 0 0 0\n0 2 0 0\n0 0 2 0\n0 0 0 1\n", r"camera pose .* det 8"),
        (d / "intrinsic" / "intrinsic_depth.txt", "0 0 0 0\n" * 4, r"intrinsic_depth.txt: not a camera matrix"),
        (d / "intrinsic" / "intrinsic_color.txt", "nan 0 0 0\n" * 4, r"intrinsic_color.txt: not a camera matrix"),
        (d / "depth" / f"{f0}.png", "rgb", r"depth/%s.png: a depth image must be one channel .* mode 'RGB'" % f0),
        (d / "depth" / f"{f0}.png", "8bit", r"depth/%s.png: a depth image must be one channel .* mode 'L'" % f0),
        (d / "color" / f"{f0}.jpg", "not an image", r"color/%s.jpg: unreadable image" % f0),
    )
    for path, bad, needle in cases:
        keep = path.read_bytes()
        if bad in ("rgb", "8bit"):
            Image.new("RGB" if bad == "rgb" else "L", Image.open(path).size).save(path)
        else:
            path.write_text(bad)
        with pytest.raises(ReaderError, match=needle):
            s = read_scannet(d)
            weak.masks2d(s)  # the frames' depth maps
            assert s.frames[0].image is not None  # the colour image, as SAM reads it
        path.write_bytes(keep)
    depth = d / "depth" / f"{f0}.png"
    with Image.open(depth) as im:
        im.resize((im.size[0] // 2, im.size[1] // 2)).save(depth)  # numpy's "all input arrays must have the same shape"
    with pytest.raises(ValueError, match=r"frame \S+'s depth map is \d+x\d+, frame \S+'s \d+x\d+; 2D masks need one size"):
        weak.masks2d(read_scannet(d))


def test_scannet_errors(tmp_path, room):
    with pytest.raises(ReaderError, match=r"ScanNet scene folder not found"):
        read_scannet(tmp_path / "scans" / "nothing")
    d = write_scannet(room, tmp_path)
    (d / f"{room.name}_vh_clean_2.ply").write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 10\nproperty float x\nend_header\n\x00")
    with pytest.raises(ReaderError, match=r"_vh_clean_2.ply: not a readable PLY file"):
        read_scannet(d)
    d2 = write_scannet(room, tmp_path / "b")
    seg = json.loads((d2 / f"{room.name}_vh_clean_2.0.010000.segs.json").read_text())
    seg["segIndices"] = seg["segIndices"][:-3]
    (d2 / f"{room.name}_vh_clean_2.0.010000.segs.json").write_text(json.dumps(seg))
    with pytest.raises(ReaderError, match=rf"segIndices has {room.num_points - 3} entries but the mesh has {room.num_points} vertices"):
        read_scannet(d2)
    (tmp_path / "b" / "scannetv2-labels.combined.tsv").unlink()
    d3 = write_scannet(room, tmp_path / "c")
    (tmp_path / "c" / "scannetv2-labels.combined.tsv").unlink()
    with pytest.raises(ReaderError, match=r"cannot find scannetv2-labels.combined.tsv"):
        read_scannet(d3)


def test_a_segment_two_objects_list_is_the_later_objects(tmp_path, room):
    """A segment in two objects of the aggregation takes the later object's instance and its
    class with it: each point's (class, instance) pair is one object's."""
    d = write_scannet(room, tmp_path)
    agg = d / f"{room.name}.aggregation.json"
    data = json.loads(agg.read_text())
    groups = data["segGroups"]
    src = next(g for g in groups if g["label"] not in ("wall", "floor"))
    shared = src["segments"][0]
    later = next(g for g in groups[::-1] if g["label"] != src["label"] and g["label"] not in ("wall", "floor"))
    later["segments"].append(shared)
    agg.write_text(json.dumps(data))
    s = read_scannet(d, frames=False)
    seg = np.asarray(json.loads((d / f"{room.name}_vh_clean_2.0.010000.segs.json").read_text())["segIndices"])
    first, k = groups.index(src), groups.index(later)
    points = seg == shared
    assert points.any() and (s.instance[points] == k).all()
    own_class = np.unique(s.semantic[(s.instance == k) & ~points])
    assert len(own_class) == 1 and (s.semantic[points] == own_class[0]).all()
    assert own_class[0] not in s.semantic[s.instance == first]  # the two objects' classes differ


def test_limited_annotation_file(tmp_path, room):
    import torch
    idx = np.array([5, 100, 2000])
    torch.save({room.name: torch.tensor(idx), "other": torch.tensor([1])}, tmp_path / "points20")
    w = read_limited_annotation(tmp_path / "points20", room)
    np.testing.assert_array_equal(w.point_index, idx)
    np.testing.assert_array_equal(w.point_semantic, room.semantic[idx])
    torch.save({"other": torch.tensor([1])}, tmp_path / "points50")
    with pytest.raises(ReaderError, match=rf"points50: no entry for scene '{room.name}'"):
        read_limited_annotation(tmp_path / "points50", room)
    torch.save({room.name: torch.tensor([room.num_points])}, tmp_path / "points100")
    with pytest.raises(ReaderError, match=r"points100: indices .* outside"):
        read_limited_annotation(tmp_path / "points100", room)


@pytest.mark.realdata
def test_real_scannet_v1_scene_against_v2_export():
    scan = shared_path("scannet", "scans", "scene0000_00")
    info = shared_path("scannet", "infos", "scene0000_00.json")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = pcweak.load_scene(f"scannet:{scan}", axis_alignment=info)
    ref = np.load(shared_path("scannet", "scannet_train_instance_data", "scene0000_00_vert_all.npy"))
    assert s.num_points == 81369
    np.testing.assert_allclose(s.coord, ref[:, :3], atol=1e-5)
    np.testing.assert_array_equal(np.round(s.color * 255), ref[:, 3:])
    np.testing.assert_allclose(s.axis_alignment, read_axis_alignment(info))
    assert len(np.unique(s.segment)) == 668
    assert len(np.unique(s.instance[s.instance >= 0])) == 55
    # v1 annotation through the tsv vs the v2 per-vertex labels (README: 68.8% same NYU40 class
    # over all vertices; on vertices both label, the ScanNet-20 classes agree far more often)
    from pcweak.classes import nyu40_to_scannet20
    v2 = np.array([nyu40_to_scannet20(x) for x in np.load(shared_path("scannet", "scannet_train_instance_data", "scene0000_00_sem_label_all.npy"))])
    # the same export through its documented address
    e = pcweak.load_scene(f"scannet-export:{shared_path('scannet', 'scannet_train_instance_data')}/scene0000_00")
    assert e.num_points == 81369 and (e.semantic == v2).all() and e.instance.max() + 1 == len(np.unique(e.instance[e.instance >= 0]))
    both = (v2 >= 0) & (s.semantic >= 0)
    assert both.mean() > 0.6 and (v2[both] == s.semantic[both]).mean() > 0.85
    assert np.linalg.norm(s.normal, axis=1).min() > 0.99
    assert len(s.frames) == 30


@pytest.mark.realdata
@pytest.mark.parametrize("name", ["scene0000_00", "scene0000_01", "scene0000_02"])
def test_real_scannet_export_boxes_are_its_detection_boxes(name):
    """The export's instances boxed as mmdetection3d's ScanNet detection ground truth is: the
    ``<scene>_bbox.npy`` of the same export (centre, size, NYU40 id; its infos' ``bbox_3d``), box
    for box in instance order, with the class of its NYU40 id."""
    from pcweak.classes import nyu40_to_scannet20
    folder = shared_path("scannet", "scannet_train_instance_data")
    s = pcweak.load_scene(f"scannet-export:{folder}/{name}")
    ref = np.load(folder / f"{name}_bbox.npy")
    assert s.boxes.shape == (len(ref), 7)
    np.testing.assert_allclose(s.boxes[:, :6], ref[:, :6], atol=1e-5)
    assert not s.boxes[:, 6].any()  # axis-aligned
    assert s.box_labels.tolist() == [nyu40_to_scannet20(int(x)) for x in ref[:, 6]]


@pytest.mark.realdata
def test_real_scannet_frames_project_onto_the_mesh():
    """Real depth frames (posed_images): visible mesh vertices agree with the depth map."""
    scan = shared_path("scannet", "scans", "scene0000_00")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = read_scannet(scan)  # raw frame: poses are in the raw frame too
    from pcweak.camera import project, visible_points
    f = s.frames[0]
    assert f.depth.shape == (480, 640) and f.image.shape == (968, 1296, 3)
    assert abs(f.intrinsics[0, 0] - 1169.6 * 640 / 1296) < 1.0
    uv, z = project(s.coord, f.intrinsics, f.pose)
    infront = (z > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < 640) & (uv[:, 1] >= 0) & (uv[:, 1] < 480)
    vis, _, _ = visible_points(s.coord, f)
    assert vis.sum() > 1000 and vis.sum() > 0.3 * infront.sum()
    assert not (vis & ~infront).any()
