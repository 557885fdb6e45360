import numpy as np
import pytest

from pcweak import SceneError, weak
from pcweak.camera import visible_points
from pcweak.geometry import points_in_boxes
from pcweak.params import declared_ranges


@pytest.mark.parametrize("kind, kw", [("points", {"count": 150}), ("points", {"ratio": 0.001, "stratified": True}),
                                      ("clicks", {}), ("boxes", {"axis_aligned": False, "noise": 0.02}),
                                      ("masks2d", {"erosion": 1, "merge_prob": 0.3, "split_prob": 0.3, "drop_prob": 0.1}),
                                      ("boxes2d", {"noise_px": 1.0}), ("tags", {})])
def test_same_seed_gives_byte_identical_files(tmp_path, room, kind, kw):
    a = weak.simulate(room, kind, seed=7, **kw).save(tmp_path / "a.npz")
    b = weak.simulate(room, kind, seed=7, **kw).save(tmp_path / "b.npz")
    assert a.read_bytes() == b.read_bytes()
    if kind not in ("tags", "boxes") and kw:
        c = weak.simulate(room, kind, seed=8, **kw).save(tmp_path / "c.npz")
        assert c.read_bytes() != a.read_bytes()


@pytest.mark.parametrize("kind, name, small, large, unit", [("boxes", "noise", 0.05, 5.0, "m"),
                                                        ("boxes2d", "noise_px", 2.0, 500.0, "px")])
def test_jitter_larger_than_the_boxes_is_warned_of(room, kind, name, small, large, unit):
    """Jitter in the wrong unit (5 m on a room's furniture) draws boxes beside their objects: a
    warning names the setting and the boxes' scale; a few centimetres or pixels draw silently."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        weak.simulate(room, kind, **{name: small})
    with pytest.warns(UserWarning, match=f"{kind} {name} {large:g} {unit} is more than half the median box's shortest side"):
        weak.simulate(room, kind, **{name: large})


def _just_outside(bound):
    """A value just outside ``bound`` (a ``params.Range``), of the setting's own type."""
    if bound.integer:
        return int(bound.low) - 1
    return float(bound.low) if bound.low_open else float(bound.low) - 0.5


@pytest.mark.parametrize("kind, name", [(k, n) for k, fn in weak.KINDS.items() for n in declared_ranges(fn)])
def test_every_simulator_setting_out_of_range_is_refused_before_drawing(room, kind, name):
    """NaN, a value just below the range and (where bounded) one above it are each refused with
    the simulator's and the setting's names; the room's labels are never drawn from them."""
    bound = declared_ranges(weak.KINDS[kind])[name]
    bad = [float("nan"), _just_outside(bound)] + ([bound.high + 1] if bound.high != float("inf") else [])
    if bound.integer:
        bad.append(float(bound.low))  # a float where an integer is meant
    for value in bad:
        with pytest.raises(ValueError, match=f"{kind}: {name} must be"):
            weak.simulate(room, kind, **{name: value})


def test_a_range_inside_optional_is_found_as_python_3_10_resolves_none_defaults():
    """Python 3.10's ``get_type_hints`` gives ``Annotated[int | None, R] = None`` back as
    ``Optional[Annotated[...]]``: the range is found inside it too, on every Python, so a
    simulator's checks do not fall away there (they did: ``points(count=nan)`` reached numpy)."""
    from typing import Annotated, Optional

    from pcweak.params import Range, check_ranges

    def draw(count: Optional[Annotated[int, Range(1, 9, integer=True)]] = None) -> None:
        pass
    assert declared_ranges(draw) == {"count": Range(1, 9, integer=True)}
    with pytest.raises(ValueError, match="draw: count must be"):
        check_ranges(draw, "draw", {"count": 0})


def test_masks_of_frames_the_scene_lacks_are_refused(room):
    with pytest.raises(ValueError, match=r"frames must be indices in \[0, 4\)"):
        weak.masks2d(room, frames=[0, 9])


def test_points_uniform_and_stratified(room):
    w = weak.points(room, count=200, seed=0)
    assert len(np.unique(w.point_index)) == 200
    np.testing.assert_array_equal(w.point_semantic, room.semantic[w.point_index])
    present = np.unique(room.semantic)
    s = weak.points(room, count=len(present), seed=0, stratified=True)
    assert sorted(s.point_semantic) == sorted(present)  # one seed per class
    r = weak.points(room, ratio=0.01, seed=0)
    assert len(r.point_index) == round(0.01 * room.num_points)
    with pytest.raises(ValueError, match="exactly one of count= or ratio="):
        weak.points(room, count=3, ratio=0.1)


def test_clicks_one_per_instance_in_the_interior(room):
    from scipy.spatial import cKDTree
    w = weak.clicks(room, seed=0)
    inst = np.unique(room.instance)
    assert sorted(w.point_instance) == sorted(inst)
    for i, k in zip(w.point_index, w.point_instance):
        m = room.instance == k
        d_other, _ = cKDTree(room.coord[~m]).query(room.coord[m])
        d_click, _ = cKDTree(room.coord[~m]).query(room.coord[i])
        assert d_click >= np.quantile(d_other, 0.5) - 1e-9


def test_boxes_contain_their_instances(room):
    for aa in (True, False):
        w = weak.boxes(room, axis_aligned=aa)
        objects = np.unique(room.instance[~np.isin(room.semantic, [0, 1])])
        assert len(w.box) == len(objects)
        inside = points_in_boxes(room.coord, w.box, margin=1e-4)
        for j, k in enumerate(objects):
            assert inside[room.instance == k, j].all()
        if aa:
            assert np.allclose(w.box[:, 6], 0)


def test_boxes_kitti_use_annotated_boxes(lidar):
    w = weak.boxes(lidar, axis_aligned=False)
    np.testing.assert_allclose(w.box, lidar.boxes)


def test_masks2d_respect_occlusion(room):
    """A point hidden from a frame never lies under a mask of its own instance there by accident:
    every mask pixel's instance is the instance of the surface visible at that pixel."""
    w = weak.masks2d(room, seed=0)
    assert w.mask2d.shape[0] == len(room.frames)
    for fm, f in zip(w.mask2d, room.frames):
        # strict depth agreement (synthetic depth is exact to 1 mm; surface noise is 4 mm)
        vis, u, v = visible_points(room.coord, f, abs_tol=0.012, rel_tol=0.0)
        assert fm.max() >= 3  # several objects per view
        # each mask maps to exactly one GT instance among visible points
        lab = fm[v[vis], u[vis]]
        for j in np.unique(lab[lab > 0]):
            inst, cnt = np.unique(room.instance[vis][lab == j], return_counts=True)
            assert cnt.max() / cnt.sum() > 0.9
        # an occluded point projects into the image but sits behind the visible surface
        uv_in = (u >= 0) & ~vis
        assert uv_in.any()


def test_masks2d_noise_changes_masks(room):
    clean = weak.masks2d(room, seed=0)
    eroded = weak.masks2d(room, seed=0, erosion=2)
    assert (eroded.mask2d > 0).sum() < (clean.mask2d > 0).sum()
    dropped = weak.masks2d(room, seed=0, drop_prob=1.0)
    assert dropped.mask2d.max() == 0
    split = weak.masks2d(room, seed=0, split_prob=1.0)
    assert split.mask2d.max() > clean.mask2d.max()


def test_boxes2d_and_tags(room, lidar):
    w = weak.boxes2d(room)
    h, wd = room.frames[0].depth.shape
    assert len(w.box2d) > 0 and (w.box2d[:, 0] >= 0).all() and (w.box2d[:, 2] <= wd - 1).all()
    assert (w.box2d[:, 2] > w.box2d[:, 0]).all() and (w.box2d[:, 3] <= h - 1).all()
    assert w.box2d_frame.max() < len(room.frames)
    k = weak.boxes2d(lidar)
    assert len(k.box2d) > 0 and (k.box2d[:, 2] <= 1241).all()
    t = weak.scene_tags(room)
    np.testing.assert_array_equal(t.scene_tags, np.isin(np.arange(len(room.classes)), room.semantic))


def test_simulators_refuse_scenes_without_labels(room):
    from pcweak.scene import Scene
    bare = Scene(name="bare", coord=room.coord)
    with pytest.raises(SceneError, match=r"scene 'bare': has no semantic labels"):
        weak.points(bare, count=3)
    with pytest.raises(ValueError, match=r"--weak 'nope': expected one of"):
        weak.simulate(room, "nope")


def test_weak_labels_that_hold_nothing_are_said_not_silent(room, tmp_path, capsys):
    """A ground truth that labels nothing was drawn into an empty weak file (exit status 0), and
    a scene without instances into a file of 0 clicks, which ``label`` turned into all-unlabelled
    pseudo-labels without a word. Simulating from the first is refused, the second and labelling
    from an empty file are said."""
    from dataclasses import replace
    from pcweak.cli import main
    from pcweak.errors import SceneError
    with pytest.raises(SceneError, match=r"leave all \d+ points unlabelled \(-1\), so there is nothing to simulate"):
        weak.points(replace(room, semantic=np.full(room.num_points, -1)), count=10)
    bare = replace(room, name="bare", instance=np.full(room.num_points, -1))
    with pytest.warns(UserWarning, match=r"scene 'bare': the simulated clicks hold no label"):
        empty = weak.simulate(bare, "clicks")
    assert empty.holds_nothing() and not weak.points(room, count=5).holds_nothing()
    room.save(tmp_path / "r.npz")
    replace(empty, scene=room.name).save(tmp_path / "w.npz")
    assert main(["label", f"npz:{tmp_path / 'r.npz'}", "--weak", str(tmp_path / "w.npz"), "--method", "nearest",
                 "-o", str(tmp_path / "p.npz")]) == 0
    assert "its weak labels hold no label (points, all empty), so every point is left unlabelled" in capsys.readouterr().err
