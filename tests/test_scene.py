import gc
import warnings
import json

import numpy as np
import pytest

from pcweak import PseudoLabels, Scene, SceneError, WeakLabels
from pcweak.errors import ReaderError
from pcweak.npzio import load_npz, save_npz

CLS = ("a", "b", "c")


def small(**kw):
    n = kw.pop("n", 5)
    base = dict(name="s", coord=np.arange(n * 3, dtype=np.float32).reshape(n, 3), classes=CLS)
    base.update(kw)
    return Scene(**base)


@pytest.mark.parametrize("kw, msg", [
    (dict(coord=np.zeros((4, 2))), r"coord: shape \(4, 2\) does not match the expected \(\*,3\)"),
    (dict(coord=np.array([[0, 0, np.nan]] * 5)), r"coord: 5 entries are NaN or infinite"),
    (dict(coord=np.array([[0, 0, np.inf]])), r"coord: 1 entries are NaN or infinite"),
    (dict(coord=np.zeros((0, 3))), r"coord: the point cloud is empty"),
    (dict(coord=np.array([["a", "b", "c"]])), r"coord: dtype <U1 cannot be cast safely"),
    (dict(semantic=np.zeros(4, np.int64)), r"semantic: shape \(4,\) does not match the expected \(5\)"),
    (dict(semantic=np.zeros(5, np.float32)), r"semantic: dtype float32 cannot be cast safely to int64"),
    (dict(semantic=np.array([0, 1, 2, 3, 0])), r"semantic: value 3 is out of range \(must be < 3\)"),
    (dict(semantic=np.array([0, 1, 2, -2, 0])), r"semantic: value -2 is below the allowed minimum -1"),
    (dict(instance=np.zeros(6, np.int64)), r"instance: shape \(6,\) does not match"),
    (dict(color=np.full((5, 3), 200.0)), r"color: values must lie in \[0,1\]"),
    (dict(boxes=np.zeros((2, 6))), r"boxes: shape \(2, 6\) does not match the expected \(\*,7\)"),
    (dict(boxes=np.zeros((2, 7)), box_labels=np.array([0, 5])), r"box_labels: value 5 is out of range"),
    (dict(boxes=np.zeros((2, 7)), box_labels=np.array([0])), r"box_labels: shape \(1,\) does not match the expected \(2\)"),
    (dict(classes=(), semantic=np.zeros(5, np.int64)), r"classes: semantic labels are given but the class list is empty"),
    (dict(classes=("a", "b", "a")), r"classes: 'a' named twice; each label needs a name of its own"),
    (dict(classes="abc"), r"classes: a single string 'abc'; give a list of class names"),
])
def test_scene_validation_names_the_field(kw, msg):
    with pytest.raises(SceneError, match=msg):
        small(**kw)


def test_scene_accepts_safe_casts_and_torch():
    import torch
    s = small(semantic=np.array([0, 1, 2, -1, 0], np.int16), coord=torch.arange(15, dtype=torch.float64).reshape(5, 3))
    assert s.semantic.dtype == np.int64 and s.coord.dtype == np.float32


def test_weak_validation():
    with pytest.raises(SceneError, match=r"point_index: value 10 is out of range \(must be < 10\)"):
        WeakLabels(scene="s", num_points=10, classes=CLS, point_index=[1, 10], point_semantic=[0, 1])
    with pytest.raises(SceneError, match=r"point_semantic: shape \(3,\) does not match the expected \(2\)"):
        WeakLabels(scene="s", num_points=10, classes=CLS, point_index=[1, 2], point_semantic=[0, 1, 1])
    with pytest.raises(SceneError, match=r"point_semantic: value 3 is out of range"):
        WeakLabels(scene="s", num_points=10, classes=CLS, point_index=[1, 2], point_semantic=[0, 3])
    with pytest.raises(SceneError, match=r"point_index: 1 points are labelled twice with different classes \(point 2 among"):
        WeakLabels(scene="s", num_points=10, classes=CLS, point_index=[1, 2, 2, 1], point_semantic=[0, 1, 2, 0])
    assert len(WeakLabels(scene="s", num_points=10, classes=CLS, point_index=[2, 2], point_semantic=[1, 1]).point_index) == 2
    with pytest.raises(SceneError, match=r"scene_tags: dtype int64; expected bool"):
        WeakLabels(classes=CLS, scene_tags=np.array([1, 0, 1]))
    with pytest.raises(SceneError, match=r"mask2d_frame: required with mask2d"):
        WeakLabels(mask2d=np.zeros((1, 4, 4), np.int32))
    w = WeakLabels(scene="s", num_points=20, point_index=[1, 2])
    with pytest.raises(SceneError, match=r"num_points: 20 but scene 's' has 5 points"):
        w.check_against(small())


def test_pseudo_validation():
    with pytest.raises(SceneError, match=r"confidence: values must lie in \[0,1\]"):
        PseudoLabels(semantic=np.zeros(3, np.int64), confidence=np.array([0.5, 2.0, 0.1]))
    with pytest.raises(SceneError, match=r"instance: shape \(2,\) does not match the expected \(3\)"):
        PseudoLabels(semantic=np.zeros(3, np.int64), instance=np.zeros(2, np.int64))
    p = PseudoLabels(semantic=np.zeros(3, np.int64))
    with pytest.raises(SceneError, match=r"length 3 but scene 's' has 5 points"):
        p.check_against(small())
    with pytest.raises(SceneError, match=r"PseudoLabels.classes: 'b' named twice"):
        PseudoLabels(semantic=np.zeros(3, np.int64), classes=("a", "b", "b"))


def test_labels_over_another_class_list_are_refused_naming_their_file(tmp_path):
    """Label i of labels made over another class list would be scored, drawn and trained as the
    scene's class i; labels without a class list (a bare array's) are taken as the scene's."""
    scene = small()
    other = ("a", "b", "d")
    p = PseudoLabels(semantic=np.zeros(5, np.int64), classes=other).save(tmp_path / "p.npz")
    with pytest.raises(SceneError, match=r"p.npz: PseudoLabels.classes: labels over 3 classes \(a, b, d\) but scene 's' "
                                         r"has 3 \(a, b, c\)"):
        PseudoLabels.load(p).check_against(scene)
    w = WeakLabels(scene="s", num_points=5, classes=other, point_index=[1], point_semantic=[2]).save(tmp_path / "w.npz")
    with pytest.raises(SceneError, match=r"w.npz: WeakLabels\[s\].classes: labels over 3 classes"):
        WeakLabels.load(w).check_against(scene)
    PseudoLabels(semantic=np.zeros(5, np.int64)).check_against(scene)
    PseudoLabels(semantic=np.zeros(5, np.int64), classes=CLS).check_against(scene)


def test_weak_boxes_away_from_the_scene_are_named(tmp_path):
    """Boxes none of which comes near the scene's points (another scene's, another frame's) are
    refused naming the file; a few such boxes among others are a warning; boxes given at a
    georeferenced file's coordinates while the scene was shifted get the shift to subtract."""
    scene = small(n=20)  # points from (0, 1, 2) to (57, 58, 59) m
    near = [10.0, 11.0, 12.0, 2.0, 2.0, 2.0, 0.0]
    far = [1010.0, 11.0, 12.0, 2.0, 2.0, 2.0, 0.0]
    WeakLabels(scene="s", box=[near], box_semantic=[0]).check_against(scene)
    w = WeakLabels(scene="s", box=[far, far], box_semantic=[0, 1]).save(tmp_path / "w.npz")
    with pytest.raises(SceneError, match=r"w.npz: WeakLabels\[s\].box: none of the 2 boxes reaches the points of scene 's', "
                                         r"which span \[0.0, 1.0, 2.0\] to \[57.0, 58.0, 59.0\] m \(box 0 is centred at "
                                         r"\[1010.0, 11.0, 12.0\] m\): boxes of another scene or coordinate frame\?"):
        WeakLabels.load(w).check_against(scene)
    with pytest.warns(UserWarning, match=r"box: 1 of 2 boxes lie away from the points of scene 's' \(box 1 is centred"):
        WeakLabels(scene="s", box=[near, far], box_semantic=[0, 1]).check_against(scene)
    with pytest.warns(UserWarning, match="shifted by"):
        utm = small(n=20, coord=np.arange(60, dtype=np.float64).reshape(20, 3) + [500000.0, 0, 0])
    with pytest.raises(SceneError, match=r"they lie where the file's coordinates are, but the scene was shifted by "
                                         r"\[-500000.0, 0.0, 0.0\] m when read \(meta\['coord_shift'\]\): subtract "
                                         r"\[500000.0, 0.0, 0.0\] from the boxes' centres"):
        WeakLabels(scene="s", box=[[500010.0, 11.0, 12.0, 2.0, 2.0, 2.0, 0.0]], box_semantic=[0]).check_against(utm)


def test_scene_roundtrip_every_field(tmp_path, room, lidar):
    for scene in (room, lidar):
        p = scene.save(tmp_path / f"{scene.name}.npz")
        back = Scene.load(p)
        a, b = scene.to_arrays(), back.to_arrays()
        assert sorted(a) == sorted(b)
        for k in a:
            np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=k)
        assert back.meta == scene.meta and back.classes == scene.classes
        assert len(back.frames) == len(scene.frames)


def test_weak_and_pseudo_roundtrip(tmp_path):
    w = WeakLabels(scene="s", num_points=5, classes=CLS, point_index=[0, 3], point_semantic=[1, 2], point_instance=[4, -1],
                   box=np.ones((2, 7)), box_semantic=[0, 2], scene_tags=np.array([True, False, True]),
                   box2d=np.array([[1.0, 1.0, 2.0, 3.0]]), box2d_semantic=[1], box2d_frame=[0],
                   mask2d=np.ones((2, 3, 4), np.int32), mask2d_frame=[0, 1], meta={"kind": "mixed"})
    w2 = WeakLabels.load(w.save(tmp_path / "w.npz"))
    for k, v in w.to_arrays().items():
        np.testing.assert_array_equal(v, w2.to_arrays()[k])
    p = PseudoLabels(semantic=[0, 1, -1], instance=[2, 2, -1], confidence=[0.5, 1, 0], method="m", params={"a": 1},
                     classes=CLS, box=np.ones((1, 7)), box_semantic=[1], box_confidence=[0.3], extras={"gp_mean": np.zeros(3)})
    p2 = PseudoLabels.load(p.save(tmp_path / "p.npz"))
    assert p2.method == "m" and json.loads(p2.params) == {"a": 1} and "gp_mean" in p2.extras
    for k, v in p.to_arrays().items():
        np.testing.assert_array_equal(v, p2.to_arrays()[k])


def test_npz_is_byte_deterministic_and_atomic(tmp_path):
    arrays = {"b": np.arange(5), "a": np.array("text")}
    p1, p2 = save_npz(tmp_path / "x.npz", arrays), save_npz(tmp_path / "y.npz", dict(reversed(list(arrays.items()))))
    assert p1.read_bytes() == p2.read_bytes()
    assert load_npz(p1)["a"].shape == ()  # 0-d stays 0-d
    assert not [f for f in tmp_path.iterdir() if f.name.endswith(".tmp")]
    # a folder where the file belongs: named, and no temporary file left in the folder above
    (tmp_path / "sub").mkdir()
    with pytest.raises(IsADirectoryError, match=r"sub: is a folder; give the file to write"):
        save_npz(tmp_path / "sub", arrays)
    assert not [f for f in tmp_path.iterdir() if f.name.endswith(".tmp")]


def test_corrupt_npz_is_reported(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(ReaderError, match=r"bad.npz: not a readable .npz file"):
        Scene.load(bad)
    with warnings.catch_warnings(record=True) as seen:  # the file handle is closed, not leaked
        warnings.simplefilter("always")
        try:
            load_npz(bad)
        except ReaderError:
            pass
        gc.collect()
    assert not [w for w in seen if issubclass(w.category, ResourceWarning)]
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(ReaderError, match=r"one.npy: not a readable .npz file \(a single .npy array"):
        Scene.load(tmp_path / "one.npy")
    with pytest.raises(ReaderError, match=r"missing.npz: file not found"):
        WeakLabels.load(tmp_path / "missing.npz")
    save_npz(tmp_path / "other.npz", {"x": np.zeros(2)})
    with pytest.raises(SceneError, match=r"no 'coord' array"):
        Scene.load(tmp_path / "other.npz")
    with pytest.raises(SceneError, match=r"unknown WeakLabels keys \['x'\]"):
        WeakLabels.load(tmp_path / "other.npz")


def test_repr_summarises_instead_of_dumping_arrays():
    import pcweak
    s = pcweak.load_scene("synthetic:0", n_frames=0)
    w = pcweak.simulate(s, "points", seed=0, count=20)
    for obj, name in ((s, "Scene"), (w, "WeakLabels"), (pcweak.label(s, w, "nearest"), "PseudoLabels")):
        r = repr(obj)
        assert r.startswith(name + "(") and len(r) < 600 and "[[" not in r, r
    assert f"coord=({s.num_points}, 3) float32" in repr(s) and "point_index=(20,) int64" in repr(w)
