import json
import re
import numpy as np
import pytest

from pcweak.cli.evaluate import _scene_to_score as _SCENE_TO_SCORE
from pcweak.metrics import expected_calibration_error, from_labels, instance_ap, match_instances, semantic_report

CLS = ("a", "b", "c")


def test_semantic_known_answer():
    gt = np.array([0, 0, 0, 0, 1, 1, 2, 2, -1, -1])
    pred = np.array([0, 0, 1, -1, 1, 1, 2, 0, 2, -1])
    r = semantic_report(gt, pred, CLS)
    # a: TP 2, FN 2 (one wrong, one unlabelled), FP 1 (gt c predicted a) -> 2/5
    # b: TP 2, FP 1 -> 2/3 ; c: TP 1, FN 1 -> 1/2 ; gt -1 points are ignored
    assert r["per_class_iou"] == {"a": 0.4, "b": round(2 / 3, 4), "c": 0.5}
    assert r["miou"] == pytest.approx((0.4 + 2 / 3 + 0.5) / 3)
    assert r["coverage"] == pytest.approx(7 / 8)
    assert r["accuracy_labelled"] == pytest.approx(5 / 7)
    assert r["accuracy_all"] == pytest.approx(5 / 8)


def test_ece_known_answer():
    assert expected_calibration_error(np.array([1.0, 1.0]), np.array([True, True])) == 0.0
    # all at 0.9 confidence, half right -> |0.5 - 0.9| = 0.4
    assert expected_calibration_error(np.full(4, 0.9), np.array([1, 0, 1, 0], bool)) == pytest.approx(0.4)


def _scene(gt_inst, pred_inst, gt_sem=None, pred_sem=None, score=None):
    gt_inst, pred_inst = np.array(gt_inst), np.array(pred_inst)
    gt_sem = np.zeros_like(gt_inst) if gt_sem is None else np.array(gt_sem)
    pred_sem = np.zeros_like(pred_inst) if pred_sem is None else np.array(pred_sem)
    return from_labels(gt_sem, gt_inst, pred_sem, pred_inst, score)


def test_instance_ap_perfect_and_missed():
    inst = [0] * 10 + [1] * 10 + [2] * 10
    r = instance_ap([_scene(inst, inst)], ("obj",), min_region_size=1)
    assert r["ap"] == pytest.approx(1.0) and r["ap50"] == pytest.approx(1.0) and r["mean_best_iou"] == pytest.approx(1.0)
    # one of three objects missed: recall 2/3 at precision 1
    pred = [0] * 10 + [1] * 10 + [-1] * 10
    r = instance_ap([_scene(inst, pred)], ("obj",), min_region_size=1)
    assert r["ap50"] == pytest.approx(2 / 3)


def test_instance_ap_wrong_class_and_ignored_classes():
    # wrong class never matches; ignored classes do not count
    r = instance_ap([_scene([0] * 10, [0] * 10, gt_sem=[0] * 10, pred_sem=[1] * 10)], ("x", "y"), min_region_size=1)
    assert r["per_class"]["x"]["ap50"] == 0.0
    r = instance_ap([_scene([0] * 10, [0] * 10)], ("wall",), ignore=("wall",), min_region_size=1)
    assert np.isnan(r["ap"])


def test_instance_ap_from_scenes_matched_as_they_come_equals_it_from_their_points():
    """A set scored one scene at a time keeps each scene's overlaps (``match_instances``), not
    its points: the AP is the same, and overlaps matched under other rules are refused."""
    r = np.random.default_rng(0)
    scenes = []
    for _ in range(4):
        gt = np.repeat(np.arange(6), 40)
        pred = np.where(r.random(len(gt)) < 0.8, gt, r.integers(0, 6, len(gt)))
        sem = np.repeat(r.integers(0, 3, 6), 40)
        scenes.append(_scene(gt, pred, gt_sem=sem, pred_sem=sem, score=r.random(len(gt))))
    whole = instance_ap(scenes, CLS, ignore=("a",), min_region_size=20)
    matched = [match_instances(s, CLS, ignore=("a",), min_region_size=20) for s in scenes]
    assert 0 < whole["ap"] < 1
    assert instance_ap(matched, CLS, ignore=("a",), min_region_size=20) == whole
    with pytest.raises(ValueError, match="min_region_size 20"):
        instance_ap(matched, CLS, ignore=("a",), min_region_size=10)
    with pytest.raises(ValueError, match="matched over classes"):
        instance_ap(matched, CLS, min_region_size=20)


# ScanNet's evaluate_semantic_instance.py rules, each on a scene built by hand (expected values
# worked out from the rules in pcweak/metrics/instance.py's docstring). Classes: wall (stuff,
# so void), chair, table; predictions and GT instances of >= 100 points unless stated.
ROOM = ("wall", "chair", "table")
WALL, CHAIR, TABLE = 0, 1, 2


def _room(parts, scores):
    """parts: (gt_class, gt_instance, pred_class, pred_instance, count) runs of points."""
    cols = [np.concatenate([np.full(n, row[i]) for *row, n in parts]) for i in range(4)]
    gt_sem, gt_inst, pred_sem, pred_inst = (c.astype(np.int64) for c in cols)
    conf = np.array([scores.get(int(k), 1.0) if k >= 0 else 0.0 for k in pred_inst])
    return from_labels(gt_sem, gt_inst, pred_sem, pred_inst, conf)


def _ap_of(parts, scores, cls="chair"):
    r = instance_ap([_room(parts, scores)], ROOM, ignore=("wall",))
    return r["per_class"][cls]


def test_void_ignore():
    # chair GT 200 pts found by pred 0 (0.9); pred 1 (0.95, chair) lies on 150 wall points: its
    # points are all void, so it is ignored at every threshold -> AP 1 (counting it: 0.25)
    parts = [(CHAIR, 0, CHAIR, 0, 200), (WALL, 5, CHAIR, 1, 150)]
    assert _ap_of(parts, {0: 0.9, 1: 0.95}) == {"ap": 1.0, "ap50": 1.0, "ap25": 1.0}
    # pred 1 on 60 wall + 90 table points: void share 0.4 -> ignored at 0.25 (0.4 > 0.25),
    # a false positive above the true positive at 0.5..0.9 (0.4 <= t) -> AP 0.25 there
    parts = [(CHAIR, 0, CHAIR, 0, 200), (WALL, 5, CHAIR, 1, 60), (TABLE, 7, CHAIR, 1, 90)]
    assert _ap_of(parts, {0: 0.9, 1: 0.95}) == {"ap": 0.25, "ap50": 0.25, "ap25": 1.0}


def test_small_ground_truth_is_not_counted():
    # chair GT 0 (200 pts) found by pred 0; chair GT 1 has 50 pts (< 100): not a miss; pred 1 =
    # those 50 + 60 wall points (IoU 0.45) is neither a hit nor a false positive -> AP 1
    parts = [(CHAIR, 0, CHAIR, 0, 200), (CHAIR, 1, CHAIR, 1, 50), (WALL, 5, CHAIR, 1, 60)]
    assert _ap_of(parts, {0: 0.9, 1: 0.95}) == {"ap": 1.0, "ap50": 1.0, "ap25": 1.0}
    # a prediction under 100 points is dropped: the 200-point chair it covers is a miss
    parts = [(CHAIR, 0, CHAIR, 0, 99), (CHAIR, 0, -1, -1, 101)]
    assert _ap_of(parts, {}) == {"ap": 0.0, "ap50": 0.0, "ap25": 0.0}


def test_iou_threshold_is_strict():
    # pred 0 covers 100 of a 200-point chair: IoU exactly 0.5 is not above 0.5 -> a miss and a
    # false positive at 0.5 (AP 0), a hit at 0.25 (AP 1)
    parts = [(CHAIR, 0, CHAIR, 0, 100), (CHAIR, 0, -1, -1, 100)]
    assert _ap_of(parts, {0: 0.9}) == {"ap": 0.0, "ap50": 0.0, "ap25": 1.0}


def test_ground_truth_driven_greedy_matching():
    # chair A (250 pts) and chair B (100 pts); pred 0 (0.9) = 100 pts of A + all of B; pred 1
    # (0.8) = the other 150 pts of A. At 0.25, A (first) takes pred 0 (IoU 0.29), pred 1 is A's
    # second match -> a false positive at 0.8, and B (IoU 0.5 with the taken pred 0) is missed:
    # AP25 0.5. At 0.5, A takes pred 1 (0.6), B misses (0.5 is not above 0.5), pred 0 is a false
    # positive at 0.9 above the hit at 0.8: AP 0.125 at 0.5 and 0.55; from 0.6 on (0.6 is not
    # above 0.6) nothing matches: AP over 0.50:0.95 = 0.25 / 9.
    parts = [(CHAIR, 0, CHAIR, 0, 100), (CHAIR, 1, CHAIR, 0, 100), (CHAIR, 0, CHAIR, 1, 150)]
    got = _ap_of(parts, {0: 0.9, 1: 0.8})
    assert got["ap25"] == 0.5 and got["ap50"] == 0.125 and got["ap"] == round(0.25 / 9, 4)


def test_class_without_prediction_scores_zero_and_without_gt_is_left_out():
    parts = [(CHAIR, 0, CHAIR, 0, 200), (TABLE, 1, -1, -1, 150)]
    r = instance_ap([_room(parts, {0: 0.9})], ROOM, ignore=("wall",))
    assert r["per_class"]["table"]["ap50"] == 0.0 and r["ap50"] == 0.5
    # a table predicted where no table exists: no table GT -> the class is left out
    parts = [(CHAIR, 0, CHAIR, 0, 200), (WALL, 1, TABLE, 1, 150)]
    r = instance_ap([_room(parts, {0: 0.9})], ROOM, ignore=("wall",))
    assert "table" not in r["per_class"] and r["ap50"] == 1.0


def test_prediction_of_a_stuff_class_is_skipped():
    # a "wall" instance covering the chair is not an evaluated prediction: the chair is missed
    parts = [(CHAIR, 0, WALL, 0, 200)]
    assert _ap_of(parts, {0: 0.9}) == {"ap": 0.0, "ap50": 0.0, "ap25": 0.0}


def test_semantic_class_predicted_but_absent_scores_zero():
    # c is predicted on a labelled point but absent from the ground truth: IoU 0, in the mean
    r = semantic_report(np.array([0, 0, 1, 1]), np.array([0, 0, 1, 2]), CLS)
    assert r["per_class_iou"] == {"a": 1.0, "b": 0.5, "c": 0.0}
    assert r["miou"] == pytest.approx(0.5)
    # predicted only on unlabelled points (gt -1): not counted, c left out
    r = semantic_report(np.array([0, 0, 1, -1]), np.array([0, 0, 1, 2]), CLS)
    assert "c" not in r["per_class_iou"] and r["miou"] == 1.0


def _read_scannet_semantic(path):
    """The benchmark's semantic format, read as its evaluator reads it: one integer a line."""
    return np.array([int(line) for line in path.read_text().split()], np.int64)


def _read_scannet_instances(folder, scene, n):
    """The benchmark's instance format: '<mask path> <label id> <confidence>' per line, each mask
    file one 0/1 a line, paths relative to the submission's root."""
    from pcweak.metrics.instance import SceneInstances  # noqa: F401  (only its fields are built here)
    inst, cls, score = np.full(n, -1, np.int64), {}, {}
    for j, line in enumerate((folder / f"{scene}.txt").read_text().splitlines()):
        rel, label, conf = line.split()
        mask = np.array([int(v) for v in (folder / rel).read_text().split()]) == 1
        assert len(mask) == n and not (inst[mask] >= 0).any()
        inst[mask], cls[j], score[j] = j, int(label), float(conf)
    return inst, cls, score


def test_scannet_submission_files_hold_what_evaluate_scores(tmp_path, room, capsys):
    from dataclasses import replace

    from pcweak import weak
    from pcweak.classes import NYU40_TO_SCANNET20, SCANNET20_NYU40_IDS
    from pcweak.cli import main
    from pcweak.metrics.evaluate import evaluate
    from pcweak.metrics.instance import SceneInstances
    from pcweak.pseudo.registry import label
    labels = label(room, weak.clicks(room, seed=0), "propagate")
    labels.semantic[:50] = -1  # unlabelled points: written as 0, counted wrong
    labels.save(tmp_path / "room.npz")
    rep = evaluate(room, labels)
    for fmt in ("scannet-semantic", "scannet-instance"):
        assert main(["export", str(tmp_path / "room.npz"), "--format", fmt, "-o", str(tmp_path / fmt), "--scene", "scene9"]) == 0
    sem = _read_scannet_semantic(tmp_path / "scannet-semantic" / "scene9.txt")
    assert len(sem) == room.num_points and ((sem == 0) == (labels.semantic < 0)).all()
    assert set(sem[sem > 0]) <= set(SCANNET20_NYU40_IDS)
    back = np.array([NYU40_TO_SCANNET20.get(int(v), -1) for v in sem])
    assert semantic_report(room.semantic, back, room.classes)["miou"] == pytest.approx(rep["miou"], abs=1e-12)
    inst, cls, score = _read_scannet_instances(tmp_path / "scannet-instance", "scene9", room.num_points)
    assert cls and not {1, 2} & set(cls.values())  # wall and floor are not submitted
    got = instance_ap([SceneInstances(room.semantic, room.instance, inst, {k: NYU40_TO_SCANNET20[v] for k, v in cls.items()},
                                      score)], room.classes, ignore=("wall", "floor"))
    for k in ("ap", "ap50", "ap25"):
        assert got[k] == pytest.approx(rep["instance"][k], abs=1e-4), k
    # a model's own classes and scores for its proposals are written as given
    given = replace(labels, extras={"instance_class": np.full(labels.instance.max() + 1, 4), "instance_score": np.linspace(
        0.1, 0.9, labels.instance.max() + 1).astype(np.float32)})
    from pcweak.metrics.instance import label_file_instances
    classes, scores = label_file_instances(given)  # what evaluate scores an instance model's file with
    assert set(classes.values()) == {4} and scores[0] == pytest.approx(0.1) and label_file_instances(labels)[0] != classes
    folder = tmp_path / "labels"
    folder.mkdir()
    given.save(folder / "scene7.npz")
    labels.save(folder / "scene8.npz")
    assert main(["export", str(folder), "--format", "scannet-instance", "-o", str(tmp_path / "dir")]) == 0
    rows = [line.split() for line in (tmp_path / "dir" / "scene7.txt").read_text().splitlines()]
    assert len(rows) == len(given.extras["instance_score"]) and {r[1] for r in rows} == {"5"}  # chair: NYU40 5
    assert [float(r[2]) for r in rows] == pytest.approx(given.extras["instance_score"].tolist(), abs=1e-6)
    assert (tmp_path / "dir" / "scene8.txt").read_text() == (tmp_path / "scannet-instance" / "scene9.txt").read_text().replace(
        "scene9", "scene8")
    # refused before anything is written: labels of another class list, --scene with a folder
    replace(labels, classes=tuple(f"c{i}" for i in range(20))).save(folder / "other.npz")
    capsys.readouterr()
    assert main(["export", str(folder), "--format", "scannet-semantic", "-o", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "other.npz: ScanNet benchmark files need labels over ScanNet-20's classes" in err and "Traceback" not in err
    assert not (tmp_path / "none").exists()
    assert main(["export", str(folder), "--format", "scannet-semantic", "-o", str(tmp_path / "none"), "--scene", "x"]) == 2
    assert "--scene names the scene of a single label file" in capsys.readouterr().err


def test_scannet_benchmark_files_are_scored_over_a_folder_of_scans(tmp_path, capsys):
    """``pcweak evaluate SCANS --submission DIR``: the files ``pcweak export`` writes (any method's
    in that format) score the mIoU of the confusion summed over the scenes, as ScanNet's
    evaluate_semantic_label.py sums it; bad files are refused naming themselves."""
    import json
    import pcweak
    from pcweak import weak
    from pcweak.cli import main
    from pcweak.data.synthetic_indoor import synthetic_room
    from pcweak.metrics.semantic import confusion, report_from_confusion
    scans, labels = tmp_path / "scans", tmp_path / "labels"
    scans.mkdir()
    labels.mkdir()
    total = 0
    for seed in (1, 2):
        room = synthetic_room(seed, density=150.0, n_frames=0)
        room.save(scans / f"{room.name}.npz")
        p = pcweak.label(room, weak.points(room, count=30, seed=0), "nearest")
        p.semantic[:7] = -1  # unlabelled points: NYU40 id 0, wrong for their class
        p.save(labels / f"{room.name}.npz")
        total = total + confusion(room.semantic, p.semantic, len(room.classes))
    assert main(["export", str(labels), "--format", "scannet-semantic", "-o", str(tmp_path / "sub")]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(scans), "--submission", str(tmp_path / "sub"), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    want = report_from_confusion(total, room.classes)
    assert got["scenes"] == 2 and got["miou"] == pytest.approx(want["miou"], abs=1e-12)
    assert got["per_class_iou"] == want["per_class_iou"] and got["coverage"] < 1
    assert main(["evaluate", str(scans), "--submission", str(tmp_path / "sub"), "--json", "--workers", "2"]) == 0
    assert json.loads(capsys.readouterr().out) == got  # the scans read in two worker processes
    ids = tmp_path / "ids.txt"
    ids.write_text("synthetic_2\n")
    assert main(["evaluate", str(scans), "--submission", str(tmp_path / "sub"), "--ids", str(ids), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["scenes"] == 1

    def refused(*needles, ids_file=None):
        argv = ["evaluate", str(scans), "--submission", str(tmp_path / "sub")] + (["--ids", str(ids_file)] if ids_file else [])
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and all(n in err for n in needles), err
    sub = tmp_path / "sub" / "synthetic_1.txt"
    good = sub.read_bytes()
    sub.write_bytes(good + b"5\n")
    refused("synthetic_1.txt:", "labels but scene 'synthetic_1' has", "one line per vertex")
    sub.write_bytes(good.replace(b"\n", b"\n2.5\n", 1))
    refused("synthetic_1.txt: line 2 is not a NYU40 class id")
    sub.write_bytes(good)
    # a bad file of the last scene is named before any scene is read (a damaged first scan would stop it there)
    last, scan = tmp_path / "sub" / "synthetic_2.txt", scans / "synthetic_1.npz"
    last_good, scan_good = last.read_bytes(), scan.read_bytes()
    last.write_bytes(last_good.replace(b"\n", b"\nx\n", 1))
    scan.write_bytes(b"not a scene")
    refused("synthetic_2.txt: line 2 is not a NYU40 class id")
    last.write_bytes(last_good)
    scan.write_bytes(scan_good)
    (tmp_path / "sub" / "scene0707_00.txt").write_text("1\n")
    refused("1 file(s) name scenes not in", "scene0707_00.txt")
    (tmp_path / "sub" / "scene0707_00.txt").unlink()
    sub.unlink()
    ids.write_text("synthetic_1\nsynthetic_2\n")
    refused("no file for 1 scene(s) of --ids", "synthetic_1.txt", ids_file=ids)


def _labelled_folder(tmp_path, density):
    """A folder of three generated rooms (``synthetic_4``-``6``, ``density`` points per square
    metre) and a folder of their ``nearest`` labels from one click per object."""
    import pcweak
    from pcweak import weak
    from pcweak.data.synthetic_indoor import synthetic_room
    scans, labels = tmp_path / "scans", tmp_path / "labels"
    scans.mkdir()
    labels.mkdir()
    for seed in (4, 5, 6):
        room = synthetic_room(seed, density=density, n_frames=0)
        room.save(scans / f"{room.name}.npz")
        pcweak.label(room, weak.clicks(room, seed=seed), "nearest").save(labels / f"{room.name}.npz")
    return scans, labels


def test_a_folder_scored_with_workers_gives_the_figures_of_one_process(tmp_path, capsys):
    """``pcweak evaluate FOLDER --pseudo LABELS --workers 2``: the scenes are read in two worker
    processes and scored in the folder's order, so the report (pooled figures, instance AP, each
    scene's row in order) is that of one process; ``--workers`` with one scene, with KITTI result
    files or below 1 is refused."""
    import json
    from pcweak.cli import main
    scans, labels = _labelled_folder(tmp_path, 150.0)
    reports = []
    for workers in ("1", "2"):
        assert main(["evaluate", str(scans), "--pseudo", str(labels), "--json", "--workers", workers]) == 0
        reports.append(json.loads(capsys.readouterr().out))
    assert reports[0] == reports[1] and reports[0]["scenes"] == 3 and reports[0]["instance"]["ap50"] is not None
    assert [r["scene"] for r in reports[1]["per_scene"]] == ["synthetic_4", "synthetic_5", "synthetic_6"]
    for argv, needle in (([str(scans / "synthetic_4.npz"), "--pseudo", str(labels), "--workers", "2"],
                          "--workers goes with a folder of scenes"),
                         (["kitti:/nowhere/training", "--detections", str(labels), "--workers", "2"],
                          "KITTI result files are scored in one"),
                         ([str(scans), "--pseudo", str(labels), "--workers", "0"], "--workers must be at least 1, got 0")):
        assert main(["evaluate", *argv]) == 2
        err = capsys.readouterr().err
        assert needle in err and "Traceback" not in err, err


def _read_unless_synthetic_5(item):
    """The scene scored as ``evaluate`` scores it, the worker killed on synthetic_5. The function
    the test replaces is the one captured when this module was imported: looked up at call time
    it would be this one, recursing (a worker that reached another scene first then ended the
    command with "maximum recursion depth exceeded")."""
    import os
    import signal
    if item[0].endswith("synthetic_5.npz"):
        os.kill(os.getpid(), signal.SIGKILL)
    return _SCENE_TO_SCORE(item)


def test_a_folder_whose_reading_worker_is_killed_names_the_scenes_left(tmp_path, capsys, monkeypatch):
    """A worker of ``evaluate --workers`` killed from outside (the kernel's out-of-memory killer,
    say) ends the command with one message naming the scenes left, not the pool's items."""
    from pcweak.cli import evaluate, main
    scans, labels = _labelled_folder(tmp_path, 60.0)
    monkeypatch.setattr(evaluate, "_scene_to_score", _read_unless_synthetic_5)
    assert main(["evaluate", str(scans), "--pseudo", str(labels), "--json", "--workers", "2"]) == 2
    out = capsys.readouterr()
    assert out.out == "" and "Traceback" not in out.err
    assert re.search(r"a worker process was killed before it finished [123] of the 3 scenes \([^)]*synthetic_5[^)]*\); "
                     r"most often the kernel kills it when memory runs out \(.* available now\): the set is scored as a "
                     r"whole, so nothing was reported; the same command with fewer --workers", out.err), out.err


def test_scannet_instance_files_are_scored_with_overlapping_masks(tmp_path, capsys):
    """Instance submissions score as ``evaluate`` scores the label files they were exported from;
    their masks may overlap (each is its own file), which a per-point instance id cannot hold: a
    mask over two chairs scored above the one right mask is a false positive ahead of it."""
    import json
    import pcweak
    from pcweak import weak
    from pcweak.cli import main
    from pcweak.classes import SCANNET20
    from pcweak.data.synthetic_indoor import synthetic_room
    scans, labels = tmp_path / "scans", tmp_path / "labels"
    scans.mkdir()
    labels.mkdir()
    room = synthetic_room(3, density=150.0, n_frames=0)
    room.save(scans / f"{room.name}.npz")
    p = pcweak.label(room, weak.clicks(room, seed=0), "nearest")
    p.save(labels / f"{room.name}.npz")
    want = pcweak.evaluate(room, p)["instance"]
    assert main(["export", str(labels), "--format", "scannet-instance", "-o", str(tmp_path / "sub")]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(scans), "--submission", str(tmp_path / "sub"), "--format", "scannet-instance", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["scenes"] == 1 and [round(got[k], 4) for k in ("ap", "ap50", "ap25")] == [want[k] for k in ("ap", "ap50", "ap25")]

    # two chairs of 150 points each; the right mask of the first (0.9) and one over both (0.95)
    n = 400
    sem = np.full(n, SCANNET20.index("floor"))
    sem[:300] = SCANNET20.index("chair")
    inst = np.where(np.arange(n) < 150, 0, np.where(np.arange(n) < 300, 1, -1))
    scene = pcweak.Scene(name="two_chairs", coord=np.random.default_rng(0).random((n, 3)), classes=SCANNET20,
                         semantic=sem, instance=inst)
    d = tmp_path / "two"
    (d / "scans").mkdir(parents=True)
    (d / "sub" / "predicted_masks").mkdir(parents=True)
    scene.save(d / "scans" / "two_chairs.npz")
    (d / "sub" / "predicted_masks" / "a.txt").write_text("".join("1\n" if i < 150 else "0\n" for i in range(n)))
    (d / "sub" / "predicted_masks" / "b.txt").write_text("".join("1\n" if i < 300 else "0\n" for i in range(n)))
    ap50 = {}  # 5: chair's NYU40 id
    for name, lines in (("right only", ["predicted_masks/a.txt 5 0.9"]),
                        ("with the overlapping mask", ["predicted_masks/a.txt 5 0.9", "predicted_masks/b.txt 5 0.95"])):
        (d / "sub" / "two_chairs.txt").write_text("".join(line + "\n" for line in lines))
        assert main(["evaluate", str(d / "scans"), "--submission", str(d / "sub"), "--format", "scannet-instance", "--json"]) == 0
        ap50[name] = json.loads(capsys.readouterr().out)["per_class"]["chair"]["ap50"]
    assert ap50["right only"] == 0.5 and ap50["with the overlapping mask"] < 0.5, ap50
    (d / "sub" / "two_chairs.txt").write_text("predicted_masks/c.txt 5 0.9\n")
    (d / "scans" / "two_chairs.npz").write_bytes(b"not a scene")  # the missing mask is named before the scene is read
    assert main(["evaluate", str(d / "scans"), "--submission", str(d / "sub"), "--format", "scannet-instance"]) == 2
    assert "two_chairs.txt: line 1: mask file" in capsys.readouterr().err


def test_a_folder_of_label_files_is_scored_as_a_set(tmp_path, capsys):
    """``pcweak evaluate FOLDER --pseudo LABELS``: what ``pcweak label FOLDER`` wrote, scored
    together: mIoU from the summed confusion, instance AP over every scene at once, and each
    scene's own mIoU beside them; scenes without a label file are named in a warning."""
    import json
    import pcweak
    from pcweak import weak
    from pcweak.cli import main
    from pcweak.classes import stuff_classes
    from pcweak.data.synthetic_indoor import synthetic_room
    from pcweak.metrics.instance import label_file_instances
    from pcweak.metrics.semantic import confusion, report_from_confusion
    scans, labels = tmp_path / "scans", tmp_path / "labels"
    scans.mkdir()
    labels.mkdir()
    total, found, per_scene = 0, [], {}
    for seed in (4, 5, 6):
        room = synthetic_room(seed, density=150.0, n_frames=0)
        name = "kitchen" if seed == 5 else room.name  # a scene file named otherwise than its scene: known by the file
        room.save(scans / f"{name}.npz")
        if seed == 6:
            continue  # a scene left unlabelled
        p = pcweak.label(room, weak.clicks(room, seed=0), "nearest")
        p.save(labels / f"{name}.npz")
        total = total + confusion(room.semantic, p.semantic, len(room.classes))
        found.append(from_labels(room.semantic, room.instance, p.semantic, p.instance))
        found[-1].pred_class, found[-1].pred_score = label_file_instances(p)
        per_scene[name] = pcweak.evaluate(room, p)["miou"]
    assert main(["evaluate", str(scans), "--pseudo", str(labels), "--json"]) == 0
    out, err = capsys.readouterr()
    assert "1 of the 3 scenes of" in err and "have no label file and are not scored, e.g. ['synthetic_6']" in err
    got = json.loads(out)
    assert got["scenes"] == 2 and got["miou"] == pytest.approx(report_from_confusion(total, room.classes)["miou"], abs=1e-12)
    assert {r["scene"]: r["miou"] for r in got["per_scene"]} == pytest.approx(per_scene)
    want = instance_ap(found, room.classes, ignore=stuff_classes(room.classes))
    assert [got["instance"][k] for k in ("ap", "ap50", "ap25")] == [round(want[k], 4) for k in ("ap", "ap50", "ap25")]
    (labels / "scene0707_00.npz").write_bytes((labels / "synthetic_4.npz").read_bytes())
    assert main(["evaluate", str(scans), "--pseudo", str(labels)]) == 2
    assert "1 label file(s) name scenes not in" in capsys.readouterr().err
    assert main(["evaluate", str(scans), "--pseudo", str(labels / "synthetic_4.npz")]) == 2
    assert "is a folder of scenes; give the folder of label files" in capsys.readouterr().err


def test_a_set_of_files_naming_classes_up_to_their_highest_label_is_scored_over_one_list():
    """PLY and LAS files that do not name their classes get placeholders up to their highest
    label, so a folder's lists differ in length; ``pcweak evaluate FOLDER`` refused such a folder
    ("classes ['class_0', 'class_1', ...] ... differ from ['class_0', 'class_1', ...]"). The
    lists are joined as the training joins them; the pooled figures equal those computed over
    the joined list, and lists that name a class otherwise are refused."""
    import dataclasses
    import pcweak
    from pcweak import weak
    from pcweak.classes import S3DIS13, placeholder_class
    from pcweak.data.synthetic_indoor import synthetic_room
    from pcweak.errors import SceneError
    from pcweak.metrics.evaluate import evaluate_set
    from pcweak.metrics.instance import label_file_instances
    from pcweak.metrics.semantic import confusion, report_from_confusion
    pairs, total, found = [], 0, []
    for seed, top in ((4, 9), (5, 19)):
        room = synthetic_room(seed, density=60.0, n_frames=0)
        keep = room.semantic <= top
        sem = np.where(keep, room.semantic, -1)
        scene = dataclasses.replace(room, classes=tuple(placeholder_class(i) for i in range(int(sem.max()) + 1)), semantic=sem,
                                    instance=np.where(keep, room.instance, -1), boxes=None, box_labels=None)
        p = pcweak.label(scene, weak.clicks(scene, seed=0), "nearest")
        pairs.append((scene, p))
        total = total + confusion(sem, p.semantic, 20)
        found.append(from_labels(sem, scene.instance, p.semantic, p.instance))
        found[-1].pred_class, found[-1].pred_score = label_file_instances(p)
    assert len(pairs[0][0].classes) == 10 and len(pairs[1][0].classes) == 20
    got = evaluate_set(pairs)
    classes = pairs[1][0].classes
    assert got["miou"] == pytest.approx(report_from_confusion(total, classes)["miou"], abs=1e-12)
    want = instance_ap(found, classes)
    assert [got["instance"][k] for k in ("ap", "ap50")] == [round(want[k], 4) for k in ("ap", "ap50")]
    named = dataclasses.replace(pairs[0][0], classes=("wall",) + pairs[0][0].classes[1:])
    with pytest.raises(SceneError, match=r"scene 'synthetic_4': names a class as wall, which instance AP leaves out"):
        evaluate_set([pairs[1], (named, dataclasses.replace(pairs[0][1], classes=named.classes))])
    other = dataclasses.replace(pairs[0][0], classes=S3DIS13[:10])
    with pytest.raises(SceneError, match=r"scene 'synthetic_4': names other classes than the scenes before it \(label 0 is "
                                         r"'ceiling' there, 'wall' before\)"):
        evaluate_set([(named, dataclasses.replace(pairs[0][1], classes=named.classes)),
                      (other, dataclasses.replace(pairs[0][1], classes=other.classes))])


def test_labels_over_a_joined_list_meet_a_file_that_names_fewer_classes(tmp_path):
    """A model trained on a folder of PLY files without class names has the folder's joined list
    (placeholders up to the highest label of any file); its labels of a file whose own labels
    stop lower were refused by evaluate and viz ("labels over 20 classes but scene 'a' has 10").
    They are now read under the two lists joined; a list that disagrees is still refused."""
    import dataclasses
    from pcweak.classes import S3DIS13, SCANNET20, placeholder_class
    from pcweak.errors import SceneError
    from pcweak.metrics.evaluate import evaluate
    from pcweak.metrics.semantic import confusion, report_from_confusion
    from pcweak.scene import PseudoLabels, Scene
    from pcweak.viz.layers import build_layers
    from pcweak.viz.plots import write_plots
    rng = np.random.default_rng(0)
    gt = np.arange(200) % 10
    scene = Scene(name="a", coord=rng.uniform(0, 3, (200, 3)).astype(np.float32), semantic=gt,
                  classes=tuple(placeholder_class(i) for i in range(10)))
    pred = np.where(rng.random(200) < 0.7, gt, rng.integers(0, 20, 200))
    labels = PseudoLabels(semantic=pred, classes=tuple(placeholder_class(i) for i in range(20)), method="model")
    rep = evaluate(scene, labels)
    assert rep["miou"] == pytest.approx(report_from_confusion(confusion(gt, pred, 20), labels.classes)["miou"], abs=1e-12)
    assert len(write_plots(scene, labels, tmp_path)) == 2
    legend = dict(build_layers(scene, labels).legend)
    assert set(legend) == {placeholder_class(i) for i in np.unique(pred)}  # classes 10-19 named and coloured too
    room = dataclasses.replace(scene, classes=SCANNET20[:10])
    with pytest.raises(SceneError, match=r"PseudoLabels.classes: labels over 13 classes \(ceiling, .*scene 'a' has 10"):
        evaluate(room, dataclasses.replace(labels, classes=S3DIS13, semantic=pred % 13))


def test_semantickitti_submission_files_read_back_as_the_labels(tmp_path, capsys):
    """`pcweak export --format semantickitti`: ``sequences/<seq>/predictions/<id>.label`` for
    scene ``<seq>_<id>``, raw ids by the benchmark's inverse learning map (other-vehicle as 20),
    0 where a point has no label, instances in the upper 16 bits; read back as a SemanticKITTI
    scan's labels they are the labels exported. Label files of other classes, or named for no
    scan, are refused before anything is written."""
    from pcweak.classes import SEMANTICKITTI19
    from pcweak.cli import main
    from pcweak.data.semantickitti import read_semantickitti
    from pcweak.scene import PseudoLabels
    rng = np.random.default_rng(0)
    n = 500
    semantic = rng.integers(-1, 19, n)
    instance = np.where(np.isin(semantic, [0, 5]), rng.integers(0, 4, n), -1)  # cars and persons, things
    labels = tmp_path / "labels"
    labels.mkdir()
    PseudoLabels(semantic=semantic, instance=instance, classes=SEMANTICKITTI19, method="propagate").save(labels / "11_000007.npz")
    PseudoLabels(semantic=semantic[::-1].copy(), classes=SEMANTICKITTI19, method="propagate").save(labels / "08_000000.npz")
    assert main(["export", str(labels), "--format", "semantickitti", "-o", str(tmp_path / "sub")]) == 0
    assert json.loads(capsys.readouterr().out) == {"scenes": 2, "sequences": 2, "output": str(tmp_path / "sub")}
    written = np.fromfile(tmp_path / "sub" / "sequences" / "11" / "predictions" / "000007.label", np.uint32)
    assert len(written) == n and set(np.unique(written[semantic == 4] & 0xFFFF)) <= {20}
    assert (written[semantic < 0] == 0).all()
    seq = tmp_path / "sequences" / "11"  # the export as a scan's ground truth: the same classes and instances
    (seq / "velodyne").mkdir(parents=True)
    rng.normal(size=(n, 4)).astype(np.float32).tofile(seq / "velodyne" / "000007.bin")
    (seq / "labels").mkdir()
    (seq / "labels" / "000007.label").write_bytes(written.tobytes())
    back = read_semantickitti(seq / "000007")
    assert np.array_equal(back.semantic, semantic) and back.name == "11_000007"
    same = instance >= 0
    assert len(set(zip(back.instance[same], instance[same]))) == len(set(zip(semantic[same], instance[same])))
    assert not (np.fromfile(tmp_path / "sub" / "sequences" / "08" / "predictions" / "000000.label", np.uint32) >> 16).any()
    PseudoLabels(semantic=np.zeros(3, np.int64), classes=("a", "b"), method="nearest").save(tmp_path / "other.npz")
    assert main(["export", str(tmp_path / "other.npz"), "--format", "semantickitti", "-o", str(tmp_path / "x"),
                 "--scene", "08_000001"]) == 2
    assert "need labels over its 19 classes" in capsys.readouterr().err and not (tmp_path / "x").exists()
    assert main(["export", str(labels / "08_000000.npz"), "--format", "semantickitti", "-o", str(tmp_path / "x"),
                 "--scene", "room"]) == 2
    assert "scene name 'room' is not a SemanticKITTI scan's" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_semantic3d_submission_files_number_classes_from_one(tmp_path, capsys):
    """`pcweak export --format semantic3d`: ``<scene>.labels``, the class index + 1 per line
    (Semantic3D's own numbering, as its labels files read back by ``txt:``), 0 where a point has
    no label; label files of other classes are refused."""
    from pcweak.classes import SEMANTIC3D8
    from pcweak.cli import main
    from pcweak.scene import PseudoLabels
    semantic = np.array([0, 7, -1, 3, 3])
    PseudoLabels(semantic=semantic, classes=SEMANTIC3D8, method="propagate").save(tmp_path / "station1_xyz_intensity_rgb.npz")
    assert main(["export", str(tmp_path / "station1_xyz_intensity_rgb.npz"), "--format", "semantic3d", "-o",
                 str(tmp_path / "sub")]) == 0
    capsys.readouterr()
    out = tmp_path / "sub" / "station1_xyz_intensity_rgb.labels"
    assert out.read_text().split() == ["1", "8", "0", "4", "4"]
    scan = tmp_path / "sub" / "station1_xyz_intensity_rgb.txt"  # beside a scan, they read back as its labels
    scan.write_text("".join(f"{i} 0 0 0 10 10 10\n" for i in range(5)))
    import pcweak
    assert pcweak.load_scene(str(scan)).semantic.tolist() == semantic.tolist()
    PseudoLabels(semantic=np.zeros(3, np.int64), classes=("a", "b"), method="nearest").save(tmp_path / "other.npz")
    assert main(["export", str(tmp_path / "other.npz"), "--format", "semantic3d", "-o", str(tmp_path / "x")]) == 2
    assert "need labels over its 8 classes" in capsys.readouterr().err and not (tmp_path / "x").exists()
