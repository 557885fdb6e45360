"""KITTI AP by the devkit's rules, each on frames built by hand.

Most cases repeat one frame 80 times: with fewer than about 80 objects the devkit's recall sampling
(one threshold per true positive) keeps AP below 100 even for perfect detections, which is itself
tested. Expected values are worked out from the rules in ``pcweak/metrics/kitti.py``."""
import json
import shutil

import numpy as np
import pytest

from pcweak.geometry import box_iou
from pcweak.kitti_objects import KittiObjects, format_objects, read_objects, write_objects
from pcweak.metrics.kitti import evaluate_result_files, kitti_ap, recall_thresholds

from .conftest import shared_path


def test_rotated_iou_known_values():
    a = np.array([0, 0, 0, 2, 2, 2, 0.0])
    assert box_iou(a, a)[0, 0] == pytest.approx(1.0)
    assert box_iou(a, a + [10, 0, 0, 0, 0, 0, 0])[0, 0] == 0.0
    b = a + [1, 0, 0, 0, 0, 0, 0]  # half overlap: 2 / (4 + 4 - 2)
    assert box_iou(a, b)[0, 0] == pytest.approx(1 / 3)
    c = np.array([0, 0, 0, 2, 2, 2, np.pi / 4])  # square vs the same square turned 45 deg
    inter = 4 * (np.sqrt(2) - 1) * 2  # regular octagon of the two squares
    assert box_iou(a, c)[0, 0] == pytest.approx(inter / (8 - inter), rel=1e-6)
    assert box_iou(a, np.array([0, 0, 0, 2, 2, 2, np.pi / 2]))[0, 0] == pytest.approx(1.0)
    d = a + [0, 0, 1, 0, 0, 0, 0]  # same footprint, half the height overlapping
    assert box_iou(a, d, "bev")[0, 0] == pytest.approx(1.0) and box_iou(a, d, "3d")[0, 0] == pytest.approx(1 / 3)


def obj(t="Car", x=0.0, z=20.0, bbox=(100, 150, 200, 200), score=None, occ=0, trunc=0.0, alpha=0.0):
    """One object: a 1.5 x 1.6 x 3.9 m box at (x, 1.7, z), 2D box ``bbox`` (50 px tall by default)."""
    return (t, x, z, bbox, score, occ, trunc, alpha)


def objects(rows, detections=False) -> KittiObjects:
    if not rows:
        return KittiObjects.empty(detections)
    t, x, z, bbox, score, occ, trunc, alpha = zip(*rows)
    n = len(rows)
    return KittiObjects(type=np.array(t), truncated=np.array(trunc, float), occluded=np.array(occ, np.int64),
                        alpha=np.array(alpha, float), bbox=np.array(bbox, float), hwl=np.tile([1.5, 1.6, 3.9], (n, 1)),
                        loc=np.c_[x, np.full(n, 1.7), z], ry=np.zeros(n), score=np.array(score, float) if detections else None)


def frames(gt_rows, det_rows, copies=80):
    """``copies`` frames of the same objects; detection scores get a per-frame offset so that
    every frame's scores differ (score + k * 1e-4)."""
    gt = [objects(gt_rows) for _ in range(copies)]
    det = []
    for k in range(copies):
        rows = [(t, x, z, b, s - k * 1e-4, o, tr, a) for t, x, z, b, s, o, tr, a in det_rows]
        det.append(objects(rows, detections=True))
    return gt, det


def ap(res, metric="3d", cls="Car", diff="moderate"):
    return res[metric][cls][diff]["R40"], res[metric][cls][diff]["R11"]


def test_recall_sampling_of_the_devkit():
    # perfect detection of 80 cars: a threshold at i = 0, 1, 3, .., 79 (41 of them), precision 1
    gt, det = frames([obj()], [obj(score=0.9)])
    assert ap(kitti_ap(gt, det)) == (pytest.approx(100.0), pytest.approx(100.0))
    # of 40 cars: every true positive is a threshold (40), slot 40 stays 0 -> R40 39/40, R11 10/11
    gt, det = frames([obj()], [obj(score=0.9)], copies=40)
    assert ap(kitti_ap(gt, det)) == (pytest.approx(97.5), pytest.approx(100 * 10 / 11))
    # the thresholds themselves: 160 objects, 80 found -> i = 0, 3, 7, .., 79 (21 thresholds)
    scores = list(np.linspace(1, 0.2, 80))
    kept = recall_thresholds(scores, 160)
    assert kept == [scores[i] for i in [0] + list(range(3, 80, 4))]


def test_dontcare_regions_take_false_positives_in_2d_only():
    # each frame: a car found (0.9) and a car false positive (0.95, 3D box far away) whose image
    # box lies inside a DontCare region. 2D: the false positive is absorbed -> 100. BEV / 3D: all
    # 80 false positives sit above the true positives; precision at the thresholds (i+1)/(i+81)
    # rises to 80/160, so every slot is 0.5 after the running maximum -> 50.
    dc = obj("DontCare", x=-1000, z=-1000, bbox=(300, 150, 400, 220))
    gt, det = frames([obj(), dc], [obj(score=0.9), obj(x=15, z=40, bbox=(310, 160, 390, 210), score=0.95)])
    r = kitti_ap(gt, det)
    assert ap(r, "2d") == (pytest.approx(100.0), pytest.approx(100.0))
    assert ap(r, "bev") == (pytest.approx(50.0), pytest.approx(50.0))
    assert ap(r, "3d") == (pytest.approx(50.0), pytest.approx(50.0))


def test_short_detections():
    # two counted cars per frame: A found by a regular detection, B by one 20 px tall (below
    # 25 px): B is neither a hit nor a miss but stays among the 160 objects, so the 80 hits give
    # 21 thresholds at precision 1 -> R40 20/40, R11 6/11 (slots 0, 4, .., 20)
    gt, det = frames([obj(), obj(x=5, bbox=(300, 150, 400, 200))],
                     [obj(score=0.9), obj(x=5, bbox=(300, 150, 400, 170), score=0.8)])
    assert ap(kitti_ap(gt, det)) == (pytest.approx(50.0), pytest.approx(100 * 6 / 11))
    # a short detection that matches nothing is no false positive either -> 100
    gt, det = frames([obj()], [obj(score=0.9), obj(x=-15, z=40, bbox=(300, 150, 400, 160), score=0.99)])
    assert ap(kitti_ap(gt, det)) == (pytest.approx(100.0), pytest.approx(100.0))
    # the height is truncated to whole pixels: 39.9 px is short for easy (40), not for moderate
    gt, det = frames([obj()], [obj(score=0.9, bbox=(100, 150, 200, 189.9))])
    r = kitti_ap(gt, det)
    assert ap(r, diff="easy") == (0.0, 0.0) and ap(r, diff="moderate") == (pytest.approx(100.0), pytest.approx(100.0))


def test_neighbouring_classes_and_difficulty_filters():
    # a Car detection on a Van is neither a hit nor a false positive; nor on a car too occluded
    # for "easy"; Van detections play no part in the Car class; class names ignore case
    van = obj("Van", x=5)
    hidden = obj(x=-5, occ=1)
    gt, det = frames([obj(), van, hidden], [obj("car", score=0.9), obj(x=5, score=0.95), obj(x=-5, score=0.97),
                                            obj("Van", x=9, score=0.99)])
    r = kitti_ap(gt, det)
    assert ap(r, diff="easy") == (pytest.approx(100.0), pytest.approx(100.0))
    assert r["n_gt"]["Car"] == {"easy": 80, "moderate": 160, "hard": 160}
    # Person_sitting is Pedestrian's neighbour: a Pedestrian detection on it is not a false positive
    gt, det = frames([obj("Pedestrian"), obj("Person_sitting", x=5)], [obj("Pedestrian", score=0.9), obj("Pedestrian", x=5, score=0.95)])
    assert ap(kitti_ap(gt, det), cls="Pedestrian") == (pytest.approx(100.0), pytest.approx(100.0))
    # a 30 px car does not count for easy (40 px): NaN there, counted for moderate
    gt, det = frames([obj(bbox=(100, 150, 200, 180))], [obj(score=0.9, bbox=(100, 150, 200, 180))])
    r = kitti_ap(gt, det)
    assert np.isnan(ap(r, diff="easy")[0]) and ap(r, diff="moderate")[0] == pytest.approx(100.0)


def test_orientation_similarity():
    # perfect 2D boxes with alpha off by pi/2: similarity (1 + cos(pi/2)) / 2 = 0.5 -> AOS 50;
    # one alpha of -10 anywhere switches AOS off, as in the devkit
    gt, det = frames([obj()], [obj(score=0.9, alpha=np.pi / 2)])
    r = kitti_ap(gt, det)
    assert r["aos"]["Car"]["moderate"]["R40"] == pytest.approx(50.0) and ap(r, "2d")[0] == pytest.approx(100.0)
    det[0].alpha[:] = -10
    assert "aos" not in kitti_ap(gt, det)


def test_metric_left_out_when_detections_lack_its_boxes():
    # no image boxes (x1 = -1): the 2D metric is not evaluated for Car, as the devkit's eval_image
    gt, det = frames([obj()], [obj(score=0.9, bbox=(-1, -1, -1, 50))])
    r = kitti_ap(gt, det)
    assert "Car" not in r["2d"] and "Car" in r["3d"]


def test_object_files_round_trip_and_errors(tmp_path):
    o = objects([obj(score=0.123456789), obj("Pedestrian", x=1.5, score=0.5)], detections=True)
    p = write_objects(tmp_path / "000001.txt", o)
    back = read_objects(p, results=True)
    assert format_objects(back) == format_objects(o) and back.score[0] == 0.123456789
    (tmp_path / "bad.txt").write_text("Car 0 0 0 1 2 3\n")
    with pytest.raises(Exception, match=r"bad.txt:1: expected 16 fields"):
        read_objects(tmp_path / "bad.txt", results=True)
    gt = write_objects(tmp_path / "gt.txt", objects([obj()]))  # a label_2 file given as results: named as such
    with pytest.raises(Exception, match=r"gt.txt:1: expected 16 fields .* got 15: a label_2 ground-truth line"):
        read_objects(gt, results=True)
    (tmp_path / "long.txt").write_text(p.read_text().replace("\n", " 7\n", 1))  # the devkit would read 7 as a type
    with pytest.raises(Exception, match=r"long.txt:1: expected 16 fields .* got 17$"):
        read_objects(tmp_path / "long.txt", results=True)
    with pytest.raises(Exception, match=r"000001.txt:1: expected 15 fields .* got 16: a result line"):
        read_objects(p)  # results given as ground truth: their scores were dropped
    (tmp_path / "nan.txt").write_text("Car 0 0 0 1 2 3 4 1 1 1 0 0 nan 0 0.5\n")
    with pytest.raises(Exception, match=r"nan.txt:1: NaN"):
        read_objects(tmp_path / "nan.txt", results=True)


def _copies(tmp_path, copies=40):
    """The real label_2 files, ``copies`` times over (enough objects for the recall sampling)."""
    src = sorted(shared_path("kitti", "training", "label_2").glob("*.txt"))
    labels, results = tmp_path / "label_2", tmp_path / "results" / "data"
    labels.mkdir()
    results.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for c in range(copies):
        for k, f in enumerate(src):
            i = f"{c * len(src) + k:06d}"
            shutil.copy(f, labels / f"{i}.txt")
            g = read_objects(f)
            d = g.select(np.isin(g.type, ["Car", "Pedestrian", "Cyclist"]))
            d.score = rng.uniform(0.5, 1, len(d))
            write_objects(results / f"{i}.txt", d)
    return labels, results


@pytest.mark.realdata
def test_real_frames_gt_as_detections_give_100(tmp_path):
    labels, results = _copies(tmp_path)
    r = evaluate_result_files(labels, results.parent)  # the devkit's <results>/data layout
    assert r["frames"] == 160
    for m in ("2d", "bev", "3d"):
        for cls, per in r[m].items():
            for diff, v in per.items():
                if r["n_gt"][cls][diff] >= 80:
                    assert v["R40"] == pytest.approx(100) and v["R11"] == pytest.approx(100), (m, cls, diff)
    assert r["n_gt"]["Car"]["moderate"] >= 80


@pytest.mark.realdata
def test_cli_evaluates_result_files(tmp_path, capsys):
    from pcweak.cli import main
    labels, results = _copies(tmp_path)
    root = tmp_path / "kitti" / "training"
    root.mkdir(parents=True)
    shutil.move(str(labels), root / "label_2")
    ids = tmp_path / "val.txt"
    ids.write_text("".join(f"{i:06d}\n" for i in range(0, 160, 2)))
    assert main(["evaluate", f"kitti:{root}", "--detections", str(results), "--ids", str(ids), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["frames"] == 80 and out["3d"]["Car"]["moderate"]["R40"] > 0
    # a frame listed in --ids without a result file: one clear line, exit 2
    ids.write_text("999999\n")
    assert main(["evaluate", f"kitti:{root}", "--detections", str(results), "--ids", str(ids)]) == 2
    assert "999999.txt" in capsys.readouterr().err


def test_result_writers_mistakes_are_named(tmp_path):
    """Detections the devkit scores without a word but that cannot be what the writer meant: a
    type none of KITTI's, a 2D box turned inside out (x, y, width, height for x1, y1, x2, y2),
    dimensions of 0 or below. Each is one warning with its count and first file, and a note in
    the result; what is legitimate (no 2D box, x1 = -1; a box clipped to the image's edge to
    no width; a DontCare detection without dimensions) is not."""
    labels, results = tmp_path / "label_2", tmp_path / "results"
    labels.mkdir()
    results.mkdir()
    car = "0.00 0 -1.57 600.0 170.0 700.0 240.0 1.5 1.6 3.9 1.0 1.7 15.0 0.0"
    (labels / "000000.txt").write_text(f"Car {car}\n")
    (labels / "000001.txt").write_text(f"Car {car}\n")
    (results / "000000.txt").write_text(
        f"Car {car} 0.9\nVehicle {car} 0.8\nCar 0.00 0 -1.57 600.0 170.0 100.0 70.0 1.5 1.6 3.9 1.0 1.7 15.0 0.0 0.7\n"
        f"Car 0 0 -1.57 -1 -1 -1 -1 1.5 1.6 3.9 5.0 1.7 20.0 0.0 0.6\n"          # no 2D box
        f"Car 0 0 -1.57 1241.0 170.0 1241.0 240.0 1.5 1.6 3.9 30.0 1.7 15.0 0.0 0.5\n"  # clipped to the edge
        f"DontCare 0 0 -10 10 10 50 50 -1 -1 -1 -1000 -1000 -1000 -10 0.4\n")
    (results / "000001.txt").write_text(f"Vehicle {car} 0.8\n2 {car} 0.8\nCar {car.replace('1.6 3.9', '0 3.9')} 0.9\n")
    with pytest.warns(UserWarning) as seen:
        r = evaluate_result_files(labels, results)
    lines = [str(w.message) for w in seen]
    assert r["notes"][:len(lines)] == lines and len(lines) == 4, lines
    assert lines[0].startswith(f"2 detections with type 'Vehicle' (first in {results / '000000.txt'}): none of "
                               "KITTI's types (Car, Van, Truck, Pedestrian, Person_sitting, Cyclist, Tram, Misc, "
                               "DontCare); the devkit counts such detections nowhere")
    assert lines[1].startswith(f"1 detection with a 2D box whose x2 < x1 or y2 < y1 (x, y, width, height written for "
                               f"x1, y1, x2, y2?) (first in {results / '000000.txt'})")
    assert lines[2].startswith(f"1 detection with type '2' (first in {results / '000001.txt'})")
    assert lines[3] == (f"1 detection with dimensions h w l of 0 or below (first in {results / '000001.txt'}): the "
                        "bird's-eye and 3D overlaps of such a box mean nothing")
    (results / "000001.txt").write_text(f"Car {car} 0.9\n")
    (results / "000000.txt").write_text(f"Car {car} 0.9\nDontCare 0 0 -10 10 10 50 50 -1 -1 -1 -1000 -1000 -1000 -10 0.4\n")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        notes = evaluate_result_files(labels, results)["notes"]
    assert len(notes) == 1 and notes[0].startswith("fewer than 40 counted objects")  # the recall sampling's alone
