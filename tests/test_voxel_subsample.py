"""Labelling a scene at one point per voxel and carrying the labels back (``--voxel``)."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from pcweak.scene import PseudoLabels, Scene, WeakLabels


def _cloud() -> Scene:
    """Eight points in three voxels of 1 m: four in [0,1)^3, three in [1,2) x [0,1)^2, one alone."""
    coord = np.array([[0.1, 0.1, 0.1], [0.9, 0.1, 0.1], [0.1, 0.9, 0.1], [0.5, 0.5, 0.9],
                      [1.1, 0.2, 0.2], [1.5, 0.2, 0.2], [1.9, 0.2, 0.2], [5.5, 5.5, 5.5]], np.float32)
    color = np.linspace(0, 1, 24, dtype=np.float32).reshape(8, 3)
    normal = np.array([[0, 0, 1], [0, 0, 1], [0, 0, 1], [0, 0, 1], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32)
    return Scene("cloud", coord, classes=("a", "b", "c"), color=color, normal=normal,
                 intensity=np.arange(8, dtype=np.float32), semantic=np.array([0, 0, 0, 1, 1, 1, 2, 2]),
                 segment=np.array([7, 7, 3, 3, 9, 9, 4, 5]))


def test_a_voxel_is_its_point_nearest_the_mean_or_its_first_labelled_point():
    from pcweak.pseudo.voxel_subsample import subsample, voxel_groups
    s = _cloud()
    assert voxel_groups(s.coord, 1.0)[0].tolist() == [0, 0, 0, 0, 1, 1, 1, 2]
    one = WeakLabels(scene="cloud", num_points=8, classes=s.classes, point_index=np.array([7]), point_semantic=np.array([2]))
    sub = subsample(s, one, 1.0)
    assert sub.scene.num_points == 3 and sub.kept.tolist() == [0, 5, 7]
    # voxel 0's mean is (0.4, 0.4, 0.3): point 0 lies nearest; voxel 1's is point 5 itself
    np.testing.assert_array_equal(sub.scene.coord, s.coord[[0, 5, 7]])
    for field in ("color", "normal", "intensity", "segment"):
        np.testing.assert_array_equal(getattr(sub.scene, field), getattr(s, field)[[0, 5, 7]])
    assert sub.scene.semantic is None and sub.scene.classes == s.classes
    assert sub.weak.num_points == 3 and sub.weak.point_index.tolist() == [2] and sub.weak.point_semantic.tolist() == [2]
    # a labelled point represents its voxel; of two in one voxel the first (point 5, class b, not point 4)
    weak = WeakLabels(scene="cloud", num_points=8, classes=s.classes, point_index=np.array([5, 1, 4]),
                      point_semantic=np.array([1, 0, 2]))
    with pytest.warns(UserWarning, match=r"voxel 1 m: 1 of its 3 labelled points share a voxel with a labelled point "
                                         r"of another class and do not seed"):
        sub = subsample(s, weak, 1.0)
    assert sub.kept.tolist() == [1, 5, 7]
    np.testing.assert_array_equal(sub.scene.coord, s.coord[[1, 5, 7]])
    assert sorted(zip(sub.weak.point_index.tolist(), sub.weak.point_semantic.tolist())) == [(0, 0), (1, 1)]


def test_labelled_points_a_voxel_loses_are_counted_and_warned_of():
    """Two labelled points in one voxel: the second does not seed the subsampled scene. It is
    counted (and warned of) where its class, or its instance where instances are given, differs
    from the first's; labelled points in voxels of their own, or agreeing, are not."""
    import warnings
    from pcweak.pseudo.voxel_subsample import lost_seeds, subsample, voxel_groups
    s = _cloud()
    cells = voxel_groups(s.coord, 1.0)[0]

    def weak(index, semantic, instance=None):
        return WeakLabels(scene="cloud", num_points=8, classes=s.classes, point_index=np.array(index),
                          point_semantic=np.array(semantic), point_instance=None if instance is None else np.array(instance))
    assert lost_seeds(weak([0, 1, 2, 3], [0, 0, 0, 0]), cells[[0, 1, 2, 3]]) == 0
    assert lost_seeds(weak([0, 1, 2, 3], [0, 1, 0, 2]), cells[[0, 1, 2, 3]]) == 2
    assert lost_seeds(weak([3, 0, 4, 6], [1, 0, 2, 2]), cells[[3, 0, 4, 6]]) == 1  # voxel 0 of class 1 first
    assert lost_seeds(weak([0, 1, 4], [0, 0, 1], [5, 6, 7]), cells[[0, 1, 4]]) == 1  # one class, two objects
    assert lost_seeds(weak([0, 4, 7], [0, 1, 2]), cells[[0, 4, 7]]) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        subsample(s, weak([0, 1, 7], [0, 0, 2], [5, 5, 6]), 1.0)  # one object clicked twice: nothing lost
    with pytest.warns(UserWarning, match=r"scene 'cloud', voxel 10 m: 2 of its 3 labelled points"):
        subsample(s, weak([0, 4, 7], [0, 1, 2]), 10.0)


def test_labels_go_back_to_every_point_and_seeds_keep_their_own():
    from pcweak.pseudo.voxel_subsample import label_sources, subsample
    s = _cloud()
    weak = WeakLabels(scene="cloud", num_points=8, classes=s.classes, point_index=np.array([5, 4]),
                      point_semantic=np.array([1, 2]), point_instance=np.array([3, 4]))
    with pytest.warns(UserWarning, match="another class or instance"):
        sub = subsample(s, weak, 1.0)
    pseudo = PseudoLabels(semantic=np.array([0, 1, 2]), instance=np.array([-1, 3, 8]), confidence=np.array([0.5, 1.0, 0.25]),
                          classes=s.classes, stats=json.dumps({"seeds": 1}), extras={"per_point": np.array([10, 11, 12])})
    out = sub.carry_back(pseudo)
    src = label_sources(s, sub.scene, 1.0)
    assert src.shape == (8,) and set(src.tolist()) <= {0, 1, 2} and src[7] == 2  # the lone point keeps its own
    want = pseudo.semantic[src]
    want[4] = 2  # a labelled point takes its own class again, not its source's
    assert out.semantic.tolist() == want.tolist()
    inst = pseudo.instance[src]
    inst[[5, 4]] = [3, 4]
    assert out.instance.tolist() == inst.tolist()
    assert out.confidence.tolist() == pseudo.confidence[src].tolist()
    assert out.extras["per_point"].tolist() == pseudo.extras["per_point"][src].tolist()
    assert json.loads(out.stats) == {"seeds": 1, "voxel": 1.0, "voxel_points": 3, "points": 8}
    assert sub.carry_back(pseudo, keep_seeds=False).semantic[4] == pseudo.semantic[src[4]]


def test_a_point_takes_the_labels_of_the_kept_point_like_it_not_only_the_nearest():
    """A point 0.4 voxels from kept point 0 and 0.6 from kept point 1, coloured as 1: it takes 1's
    labels (a kept point may lie across an edge from it); without colours, the nearer 0's, as it
    does with neighbours=1."""
    from pcweak.pseudo.voxel_subsample import label_sources
    kept = Scene("kept", np.array([[0, 0, 0], [1, 0, 0]], np.float32), color=np.array([[1, 0, 0], [0, 0, 1]], np.float32))
    scene = Scene("all", np.array([[0.4, 0, 0]], np.float32), color=np.array([[0, 0, 1]], np.float32))
    assert label_sources(scene, kept, 1.0).tolist() == [1]
    assert label_sources(scene, kept, 1.0, neighbours=1).tolist() == [0]
    assert label_sources(replace(scene, color=None), kept, 1.0).tolist() == [0]
    up, side = np.array([[0, 0, 1]], np.float32), np.array([[1, 0, 0]], np.float32)
    with_normals = replace(kept, color=None, normal=np.concatenate([side, up]))
    assert label_sources(replace(scene, color=None, normal=up), with_normals, 1.0).tolist() == [1]
    with pytest.raises(ValueError, match="neighbours: 0 is not an integer >= 1"):
        label_sources(scene, kept, 1.0, neighbours=0)


def test_label_with_a_voxel_matches_point_by_point_labelling_on_a_room(room):
    """Propagation at 3 cm voxels (the room's own spacing: 72 % of its points) scores within
    0.03 mIoU of the same seeds labelled point by point, and leaves every seed its own class."""
    from pcweak import weak as simulate
    from pcweak.metrics import semantic_report
    from pcweak.pseudo.registry import label
    bare = replace(room, segment=None)
    w = replace(simulate.points(bare, count=200, seed=0), point_instance=None)
    full = label(bare, w, "propagate")
    sub = label(bare, w, "propagate", voxel=0.03)
    stats = json.loads(sub.stats)
    assert stats["points"] == bare.num_points and stats["voxel_points"] < 0.8 * bare.num_points
    assert (sub.semantic[w.point_index] == w.point_semantic).all()
    miou = [semantic_report(bare.semantic, p.semantic, bare.classes)["miou"] for p in (full, sub)]
    assert miou[1] > miou[0] - 0.03, miou


@pytest.mark.parametrize("voxel", [0.0, -0.1, float("nan"), float("inf"), "five"])
def test_a_voxel_that_is_not_a_size_is_refused(room, voxel):
    from pcweak import weak as simulate
    from pcweak.pseudo.registry import label
    with pytest.raises(ValueError, match="voxel: .* (number of metres|must be a finite)"):
        label(room, simulate.points(room, count=20, seed=0), "propagate", voxel=voxel)


def test_the_lidar_box_labellers_refuse_a_voxel(lidar):
    from pcweak import weak as simulate
    from pcweak.pseudo.registry import label
    with pytest.raises(ValueError, match="click-boxes fits its boxes to the points themselves"):
        label(lidar, simulate.clicks(lidar, seed=0), "click-boxes", voxel=0.1)


def test_a_voxel_too_small_for_the_scene_is_refused_before_labelling():
    from pcweak.pseudo.voxel_subsample import subsample
    s = Scene("wide", np.array([[0, 0, 0], [3000, 0, 0]], np.float32), classes=("a",))
    weak = WeakLabels(scene="wide", num_points=2, classes=("a",), point_index=np.array([0]), point_semantic=np.array([0]))
    with pytest.raises(ValueError, match=r"voxel: 0.01 m is too small for scene extent 3000 m"):
        subsample(s, weak, 0.01)


def test_pcweak_label_voxel_resumes_and_redoes_for_another_voxel(tmp_path, room, capsys):
    from pcweak import weak as simulate
    from pcweak.cli import main
    bare = replace(room, segment=None)
    bare.save(tmp_path / "s.npz")
    simulate.points(bare, count=100, seed=0).save(tmp_path / "w.npz")
    base = ["label", f"npz:{tmp_path / 's.npz'}", "--weak", str(tmp_path / "w.npz"), "-o", str(tmp_path / "p.npz")]

    def run(*extra: str) -> dict:
        assert main(base + list(extra)) == 0
        return json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    assert run("--voxel", "0.05")["labelled"] == 1
    p = PseudoLabels.load(tmp_path / "p.npz")
    assert p.num_points == bare.num_points and json.loads(p.stats)["voxel"] == 0.05
    assert json.loads(p.fingerprint)["voxel"] == 0.05
    assert run("--voxel", "0.05")["skipped_existing"] == 1
    assert run("--voxel", "0.1")["redone_other_inputs"] == 1
    assert run()["redone_other_inputs"] == 1  # made from a subsampled scene: not the point-by-point output
    assert "voxel" not in json.loads(PseudoLabels.load(tmp_path / "p.npz").fingerprint)


@pytest.mark.parametrize("extra, message", [
    (["--voxel", "nan"], "--voxel: nan must be a finite number of metres > 0"),
    (["--voxel", "0.1", "--method", "cluster-boxes"], "--voxel: --method cluster-boxes fits its boxes"),
    (["--voxel", "0.1", "--method", "model", "--ckpt", "x.ckpt"], "--voxel: --method model reads its scenes"),
])
def test_pcweak_label_refuses_a_voxel_it_cannot_use(tmp_path, room, capsys, extra, message):
    from pcweak import weak as simulate
    from pcweak.cli import main
    room.save(tmp_path / "s.npz")
    simulate.points(room, count=10, seed=0).save(tmp_path / "w.npz")
    weak = [] if "model" in extra else ["--weak", str(tmp_path / "w.npz")]
    assert main(["label", f"npz:{tmp_path / 's.npz'}", *weak, "-o", str(tmp_path / "p.npz"), *extra]) != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "p.npz").exists()


def test_a_subsampled_job_is_budgeted_and_warned_of_by_its_voxels(tmp_path, monkeypatch, label_budgets, room):
    """``pcweak label --voxel`` holds the memory of the voxels it labels, and of subsampling and
    carrying back for the scene's points; a scene beyond the memory within reach is told to use ``--voxel``, and with one, a
    larger one."""
    from pcweak import parallel, weak
    from pcweak.label_jobs import LabelJob, run_label_job
    from pcweak.pseudo import registry
    from pcweak.pseudo.voxel_subsample import carry_bytes, voxel_groups
    from tests.conftest import Budgeted
    held = label_budgets
    room.save(tmp_path / "s.npz")
    weak.points(room, count=40, seed=0).save(tmp_path / "w.npz")

    def job(voxel):
        return LabelJob("big", f"npz:{tmp_path / 's.npz'}", str(tmp_path / "w.npz"), str(tmp_path / "p.npz"), "propagate",
                        voxel=voxel)

    monkeypatch.setattr(parallel, "available_memory_gb", lambda: 0.1)
    with pytest.warns(UserWarning, match=r"propagate on its 78,170 points needs .*: --voxel 0.05 labels one point per "
                                         r"5 cm voxel"), pytest.raises(Budgeted):
        run_label_job(job(None))
    with pytest.warns(UserWarning, match=r"on its [\d,]+ voxels of 0.02 m needs .*: a larger --voxel"), pytest.raises(Budgeted):
        run_label_job(job(0.02))
    prop = registry.get_labeller("propagate")
    voxels = voxel_groups(room.coord, 0.02)[1]
    assert voxels < room.num_points
    assert held == [prop.memory_bytes(room.num_points), prop.memory_bytes(voxels) + carry_bytes(room.num_points)]
