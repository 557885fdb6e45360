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
from pcweak.metrics import semantic_report
from pcweak.pseudo.mask_sources import load_mask_folder, masks_from_weak, write_mask_folder
from pcweak.pseudo.mask_views import MaskViews, edge_agreement
from pcweak.pseudo.propagate import propagate
from pcweak.scene import Frame, PseudoLabels

from .conftest import shared_path


def _maps(room, **kw):
    return masks_from_weak(weak.masks2d(room, seed=0, **kw))


def test_occluded_points_never_take_a_frames_mask(room):
    """A single frame: every labelled point is visible in it; hidden points stay unlabelled."""
    f = room.frames[0]
    fm = _maps(room)[:1]
    p = lift_masks(room, fm, mask_scores=np.eye(len(room.classes))[np.zeros(int(fm[0][1].max()), int)])
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
    p = lift_masks(room, maps)
    ok = p.instance >= 0
    # segment purity w.r.t. GT instances, and every well-seen GT instance is mostly one segment
    purity = sum(np.bincount(room.instance[ok][p.instance[ok] == k]).max() for k in np.unique(p.instance[ok])) / ok.sum()
    assert purity > 0.93
    for k in np.unique(room.instance[ok]):
        m = ok & (room.instance == k)
        if m.sum() > 2000 and p.extras["views"][m].mean() >= 2:
            assert np.bincount(p.instance[m]).max() / m.sum() > 0.8
    assert json.loads(p.stats)["segments"] < 2 * len(np.unique(room.instance))


def test_masks_agree_within_objects_and_apart_across_them(room):
    """Per graph edge, the share of frames seeing both ends under one mask: 1 inside a GT
    instance, 0 across two, with perfect masks; noisy ones move it only a little."""
    node = np.unique(room.instance, return_inverse=True)[1]  # one node per GT instance...
    S = int(node.max()) + 1
    node = np.where(np.arange(room.num_points) % 2 == 0, node, node + S)  # ...split in two halves
    views = MaskViews.from_masks(room, _maps(room))
    nm = views.node_masks(node, 2 * S)
    half = np.arange(S)
    same, n_same = edge_agreement(nm, half, half + S)
    seen = n_same > 0
    assert seen.sum() >= S // 2 and (same[seen] > 0.99).all()
    a, b = np.triu_indices(S, 1)
    cross, n_cross = edge_agreement(nm, a, b)
    assert (n_cross > 0).sum() > 10 and (cross[n_cross > 0] < 0.01).all()


def test_masks_inside_the_walk(room):
    """No mask trust is propagation alone. With a click on every object, perfect masks carry
    each click over its whole object (+0.07 mIoU on this room) and masks that merge, split and
    drop (one frame's mistakes) still help."""
    w = weak.clicks(room, seed=0)
    C = len(room.classes)
    alone = propagate(room.coord, w.point_index, w.point_semantic, color=room.color, normal=room.normal,
                      segment=room.segment, num_classes=C, classes=room.classes)
    off = lift_masks(room, _maps(room), point_index=w.point_index, point_label=w.point_semantic, mask_link=0, mask_cut=0)
    np.testing.assert_array_equal(off.semantic, alone.semantic)

    def miou(p):
        return semantic_report(room.semantic, p.semantic, room.classes)["miou"]
    perfect = lift_masks(room, _maps(room), point_index=w.point_index, point_label=w.point_semantic)
    noisy = lift_masks(room, _maps(room, erosion=1, merge_prob=0.1, split_prob=0.1, drop_prob=0.05),
                       point_index=w.point_index, point_label=w.point_semantic)
    assert miou(perfect) > miou(alone) + 0.04 and miou(noisy) > miou(alone) + 0.02
    np.testing.assert_array_equal(perfect.semantic[w.point_index], w.point_semantic)


def test_vlm_scores_restricted_to_tags(room):
    maps = _maps(room)
    M = sum(int(m.max()) for _, m in maps)
    C = len(room.classes)
    scores = np.zeros((M, C))
    scores[:, 5] = 5.0  # the VLM says "sofa" everywhere...
    scores[:, 0] = 1.0
    tags = np.zeros(C, bool)
    tags[0] = True  # ...but the scene is tagged with walls only
    p = lift_masks(room, maps, mask_scores=scores, scene_tags=tags)
    lab = p.semantic[p.semantic >= 0]
    assert len(lab) and (lab == 0).all()
    with pytest.raises(pcweak.SceneError, match=r"mask_scores: shape \(3, \d+\), but the masks hold"):
        lift_masks(room, maps, mask_scores=np.zeros((3, C)))
    nan = scores.copy()
    nan[1, 2] = np.nan  # the softmax would spread it over every class of the mask
    with pytest.raises(pcweak.SceneError, match=r"mask_scores: 1 rows hold NaN or \+inf"):
        lift_masks(room, maps, mask_scores=nan)
    shifted = [(f, np.where(m > 0, m, -1)) for f, m in maps]  # -1 would name the previous frame's last mask
    with pytest.raises(pcweak.SceneError, match=r"mask id -1; ids are 0 \(no mask\) or 1..m"):
        lift_masks(room, shifted)


def test_invalid_pose_frames_are_skipped(room):
    maps = _maps(room)[:2]
    bad = room.frames[1]
    pose = bad.pose.copy()
    pose[:3, :3] *= 2.0  # not a rotation
    scene = pcweak.Scene.from_arrays(room.to_arrays())
    scene.frames[1] = Frame(bad.name, pose, bad.intrinsics, depth=bad.depth)
    with pytest.warns(UserWarning, match=r"skipped 1 frames with invalid poses"):
        p = lift_masks(scene, maps)
    assert json.loads(p.stats)["skipped_frames"] == 1


def test_frames_that_see_nothing_are_named_with_the_likely_mistake(room):
    """World-to-camera poses or depth in millimetres leave every frame seeing none of the
    points: lifting then refused naming the mistake (it was an IndexError from deep inside the
    walk, or with one such frame nothing at all); one such frame among good ones is a warning."""
    maps = _maps(room)[:3]
    w = pcweak.simulate(room, "points", count=10, seed=0)

    def with_frames(pose=lambda p: p, depth=lambda d: d, only=None):
        scene = pcweak.Scene.from_arrays(room.to_arrays())
        scene.frames = [Frame(f.name, pose(f.pose) if only in (None, i) else f.pose, f.intrinsics,
                              depth=depth(f.depth) if only in (None, i) else f.depth) for i, f in enumerate(room.frames)]
        return scene
    with pytest.raises(pcweak.SceneError, match=r"no frame sees any of the scene's points \(frames .*no point lands on a "
                                                r"depth reading in front of the camera inside its image \(is the pose camera-to-world"):
        lift_masks(with_frames(pose=np.linalg.inv), maps, point_index=w.point_index, point_label=w.point_semantic)
    with pytest.raises(pcweak.SceneError, match=r"the depth map reads \d+(-\d+)? times the points' distance \(is the depth in metres"):
        lift_masks(with_frames(depth=lambda d: d * 1000), maps, point_index=w.point_index, point_label=w.point_semantic)
    with pytest.warns(UserWarning, match=r"lift_masks: 1 of 3 frames see none of the scene's points \(frame "):
        p = lift_masks(with_frames(depth=lambda d: d * 1000, only=1), maps, point_index=w.point_index,
                       point_label=w.point_semantic)
    assert (p.extras["views"] > 0).mean() > 0.2
    shifted = lambda pose: pose + np.pad(np.full((3, 1), 0.3 / np.sqrt(3)), ((0, 1), (3, 0)))  # noqa: E731 (0.3 m)
    with pytest.warns(UserWarning, match=r"of the points that project onto the frames' depth readings only \d+ % agree"):
        lift_masks(with_frames(pose=shifted), maps, point_index=w.point_index, point_label=w.point_semantic)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # well posed: no word
        lift_masks(with_frames(), maps, point_index=w.point_index, point_label=w.point_semantic)


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


def test_colour_coded_and_one_bit_mask_images_read_as_label_maps(tmp_path, room):
    """Annotation tools save masks colour-coded (each object a colour, black none; RGBA with
    transparency) or as one-bit images of one object; both were refused ("expected an (H,W)
    integer label map, got (240, 320, 3) uint8"). Each colour is now one mask: the same grouping
    as the label map, so lifting gives the same labels; scores.npy, whose rows follow mask ids,
    is refused beside them."""
    from PIL import Image
    maps = _maps(room)
    write_mask_folder(tmp_path / "ids", room, maps)
    rng = np.random.default_rng(0)
    for name, alpha in (("rgb", False), ("rgba", True)):
        (tmp_path / name).mkdir()
        for i, lm in maps:
            colours = rng.integers(1, 256, (int(lm.max()) + 1, 3)).astype(np.uint8)
            colours[0] = 0
            img = colours[lm]
            if alpha:  # transparent where no mask, whatever colour the pixels hold there
                img = np.concatenate([np.where(lm[..., None] > 0, img, 200), ((lm > 0) * 255)[..., None]], -1).astype(np.uint8)
            Image.fromarray(img).save(tmp_path / name / f"{room.frames[i].name}.png")
        back, scores = load_mask_folder(tmp_path / name, room)
        assert scores is None and len(back) == len(maps)
        for (i, a), (j, b) in zip(maps, back):  # the same masks, other ids
            assert i == j and np.array_equal(a > 0, b > 0)
            pairs = np.unique(np.stack([a[a > 0], b[a > 0]]), axis=1)
            assert len(np.unique(pairs[0])) == len(np.unique(pairs[1])) == pairs.shape[1]
    w = weak.points(room, count=20, seed=0)
    ids = lift_masks(room, load_mask_folder(tmp_path / "ids", room)[0], point_index=w.point_index, point_label=w.point_semantic)
    rgb = lift_masks(room, load_mask_folder(tmp_path / "rgb", room)[0], point_index=w.point_index, point_label=w.point_semantic)
    assert np.array_equal(ids.semantic, rgb.semantic)
    i, lm = maps[0]
    (tmp_path / "bit").mkdir()
    Image.fromarray(lm == lm.max()).save(tmp_path / "bit" / f"{room.frames[i].name}.png")  # mode "1"
    (one,), _ = load_mask_folder(tmp_path / "bit", room)
    assert one[0] == i and np.array_equal(one[1], (lm == lm.max()).astype(np.int64))
    (tmp_path / "voc").mkdir()  # a palette PNG as PASCAL VOC's SegmentationObject: 255 bands the outlines
    band = (lm > 0) & (np.roll(lm, 1, 0) != lm)
    voc = Image.fromarray(np.where(band, 255, lm).astype(np.uint8))
    voc.putpalette([v for k in range(256) for v in ((224, 224, 192) if k == 255 else (k, 2 * k % 256, 0))])
    assert voc.mode == "P" and band.any()
    voc.save(tmp_path / "voc" / f"{room.frames[i].name}.png")
    (got,), _ = load_mask_folder(tmp_path / "voc", room)
    assert np.array_equal(got[1], np.where(band, 0, lm))
    np.save(tmp_path / "rgb" / "scores.npy", np.zeros((3, len(room.classes)), np.float32))
    with pytest.raises(ReaderError, match=r"scores.npy: its rows follow each frame's mask ids 1..m, which colour-coded"):
        load_mask_folder(tmp_path / "rgb", room)
    Image.fromarray(np.zeros((*lm.shape, 2), np.uint8)).save(tmp_path / "bit" / f"{room.frames[i].name}.png")  # grey + alpha
    with pytest.raises(ReaderError, match=r"^\S+\.png: expected an \(H,W\) label map or a colour-coded RGB\(A\) image, got \(240, 320, 2\)"):
        load_mask_folder(tmp_path / "bit", room)


@pytest.mark.realdata
def test_real_scannet_frames_lift_rendered_masks():
    """Real depth and poses (posed_images) against the real mesh: masks rendered from the v1
    instances lift back to segments that agree with those instances."""
    scan = shared_path("scannet", "scans", "scene0000_00")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = pcweak.load_scene(f"scannet:{scan}", frame_step=3)
    maps = masks_from_weak(weak.masks2d(s, seed=0))
    p = lift_masks(s, maps, min_points=10)
    ok = (p.instance >= 0) & (s.instance >= 0)
    assert ok.sum() > 10000
    purity = sum(np.bincount(s.instance[ok][p.instance[ok] == k]).max() for k in np.unique(p.instance[ok])) / ok.sum()
    assert purity > 0.85
