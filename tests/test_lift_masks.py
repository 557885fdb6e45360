import json
import warnings

import numpy as np
import pytest

import pcweak
from pcweak import weak
from pcweak.camera import visible_points
from pcweak.cli import main
from pcweak.errors import ReaderError
from pcweak.pseudo.lift_masks import lift_masks
from pcweak.pseudo.mask_sources import load_mask_folder, masks_from_weak, sam_masks, write_mask_folder
from pcweak.scene import Frame, PseudoLabels

from .conftest import shared_path


def _maps(room, **kw):
    return masks_from_weak(weak.masks2d(room, seed=0, **kw))


def test_occluded_points_never_take_a_frames_mask(room):
    """A single frame: every labelled point is visible in it; hidden points stay unlabelled."""
    f = room.frames[0]
    fm = _maps(room)[:1]
    p = lift_masks(room, fm, fallback=None, mask_scores=np.eye(len(room.classes))[np.zeros(int(fm[0][1].max()), int)])
    vis, _, _ = visible_points(room.coord, f)
    assert (p.instance >= 0).sum() > 1000
    assert not ((p.instance >= 0) & ~vis).any()
    # points that project into the image but lie behind the visible surface exist, and none is labelled
    from pcweak.camera import project
    uv, z = project(room.coord, f.intrinsics, f.pose)
    h, w = f.depth.shape
    inside = (z > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < w - 1) & (uv[:, 1] >= 0) & (uv[:, 1] < h - 1)
    hidden = inside & ~vis
    assert hidden.sum() > 1000 and (p.instance[hidden] == -1).all()


def test_one_object_across_views_is_one_segment(room):
    maps = _maps(room)
    p = lift_masks(room, maps, fallback=None)
    ok = p.instance >= 0
    # segment purity w.r.t. GT instances, and every well-seen GT instance is mostly one segment
    purity = sum(np.bincount(room.instance[ok][p.instance[ok] == k]).max() for k in np.unique(p.instance[ok])) / ok.sum()
    assert purity > 0.93
    for k in np.unique(room.instance[ok]):
        m = ok & (room.instance == k)
        if m.sum() > 2000 and p.extras["views"][m].mean() >= 2:
            assert np.bincount(p.instance[m]).max() / m.sum() > 0.8
    assert json.loads(p.stats)["segments"] < 2 * len(np.unique(room.instance))


def test_conflicting_labels_vote_and_lower_confidence(room):
    maps = _maps(room)
    base = lift_masks(room, maps, fallback=None)
    seg = np.bincount(base.instance[base.instance >= 0]).argmax()  # the largest segment
    members = np.flatnonzero(base.instance == seg)
    idx = members[:5]
    lab = np.array([3, 3, 3, 4, 4])  # a 3:2 conflict inside one segment
    p = lift_masks(room, maps, point_index=idx, point_label=lab, fallback=None)
    rest = np.setdiff1d(members, idx)
    assert (p.semantic[rest] == 3).all()
    assert p.confidence[rest].max() <= 0.6 + 1e-6  # agreement 3/5
    np.testing.assert_array_equal(p.semantic[idx], lab)  # labelled points keep their label
    # a unanimous segment is more confident than the conflicting one
    q = lift_masks(room, maps, point_index=idx, point_label=np.full(5, 3), fallback=None)
    assert q.confidence[rest].mean() > p.confidence[rest].mean()


def test_vlm_scores_restricted_to_tags(room):
    maps = _maps(room)
    M = sum(int(m.max()) for _, m in maps)
    C = len(room.classes)
    scores = np.zeros((M, C))
    scores[:, 5] = 5.0  # the VLM says "sofa" everywhere...
    scores[:, 0] = 1.0
    tags = np.zeros(C, bool)
    tags[0] = True  # ...but the scene is tagged with walls only
    p = lift_masks(room, maps, mask_scores=scores, scene_tags=tags, fallback=None)
    lab = p.semantic[p.semantic >= 0]
    assert len(lab) and (lab == 0).all()
    with pytest.raises(pcweak.SceneError, match=r"mask_scores: 3 rows but the masks hold"):
        lift_masks(room, maps, mask_scores=np.zeros((3, C)))


def test_invalid_pose_frames_are_skipped(room):
    maps = _maps(room)[:2]
    bad = room.frames[1]
    pose = bad.pose.copy()
    pose[:3, :3] *= 2.0  # not a rotation
    scene = pcweak.Scene.from_arrays(room.to_arrays())
    scene.frames[1] = Frame(bad.name, pose, bad.intrinsics, depth=bad.depth)
    with pytest.warns(UserWarning, match=r"skipped 1 frames with invalid poses"):
        p = lift_masks(scene, maps, fallback=None)
    assert json.loads(p.stats)["skipped_frames"] == 1


def test_mask_folder_roundtrip_cli_and_sam_gap(tmp_path, room, capsys):
    maps = _maps(room)
    write_mask_folder(tmp_path / "masks", room, maps)
    back, scores = load_mask_folder(tmp_path / "masks", room)
    assert scores is None and len(back) == len(maps)
    for (i, a), (j, b) in zip(maps, back):
        assert i == j and np.array_equal(a, b)
    with pytest.raises(ReaderError, match=r"no mask file in .* matches a frame"):
        load_mask_folder(tmp_path, room)
    room.save(tmp_path / "r.npz")
    weak.points(room, count=20, seed=0).save(tmp_path / "w.npz")
    assert main(["label", f"npz:{tmp_path / 'r.npz'}", "--weak", str(tmp_path / "w.npz"), "--method", "lift-masks",
                 "--masks", str(tmp_path / "masks"), "-o", str(tmp_path / "p.npz")]) == 0
    p = PseudoLabels.load(tmp_path / "p.npz")
    assert p.method == "lift-masks" and (p.instance >= 0).mean() > 0.3
    try:
        import segment_anything  # noqa: F401
        has_sam = True
    except ImportError:
        has_sam = False
    if not has_sam:
        with pytest.raises(ImportError, match=r"SAM masks need the segment_anything package"):
            sam_masks(room, tmp_path / "none.pth")


@pytest.mark.realdata
def test_real_scannet_frames_lift_rendered_masks():
    """Real depth and poses (posed_images) against the real mesh: masks rendered from the v1
    instances lift back to segments that agree with those instances."""
    scan = shared_path("scannet", "scans", "scene0000_00")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = pcweak.load_scene(f"scannet:{scan}", frame_step=3)
    maps = masks_from_weak(weak.masks2d(s, seed=0))
    p = lift_masks(s, maps, fallback=None, min_points=10)
    ok = (p.instance >= 0) & (s.instance >= 0)
    assert ok.sum() > 10000
    purity = sum(np.bincount(s.instance[ok][p.instance[ok] == k]).max() for k in np.unique(p.instance[ok])) / ok.sum()
    assert purity > 0.85
