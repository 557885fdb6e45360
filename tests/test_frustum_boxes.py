import json

import numpy as np
import pytest

import pcweak
from pcweak import weak
from pcweak.cli import main
from pcweak.geometry import box_iou
from pcweak.metrics.boxes import box_quality
from pcweak.pseudo.frustum_boxes import fit_box, frustum_boxes

from .conftest import shared_path


def test_fit_box_completes_a_partial_car_away_from_the_sensor():
    # the rear face of a car 30 m ahead: a 1.6 m segment across the viewing ray
    y = np.linspace(-0.8, 0.8, 12)
    pts = np.stack([np.full(12, 30.0), y, np.full(12, -1.0)], 1)
    b = fit_box(pts, "Car", ground_z=-1.73)
    assert b[3] == pytest.approx(3.9) and b[4] == pytest.approx(1.6, abs=0.05)
    assert abs(np.cos(b[6])) > 0.99  # heading along the ray (x)
    assert b[0] > 30.0 + 1.5  # grown away from the sensor
    assert b[2] - b[5] / 2 == pytest.approx(-1.73)


def test_synthetic_frames(lidar):
    w = weak.boxes2d(lidar, use_annotated=False)
    p = frustum_boxes(lidar, w.box2d, w.box2d_semantic, w.box2d_frame)
    q = box_quality(p.box, lidar.boxes)
    assert q["pseudo"] >= 0.8 * len(w.box2d)
    assert np.median(q["iou_bev"]) > 0.4
    # points inside the pseudo boxes carry their class
    assert ((p.semantic >= 0) & (p.semantic < 3)).sum() > 100


@pytest.mark.realdata
def test_real_frame_000001_car(tmp_path, capsys):
    root = shared_path("kitti", "training")
    s = pcweak.load_scene(f"kitti:{root}/000001")
    weak.boxes2d(s).save(tmp_path / "b2.npz")
    assert main(["label", f"kitti:{root}/000001", "--weak", str(tmp_path / "b2.npz"), "--method", "boxes2d-frustum",
                 "-o", str(tmp_path / "p.npz")]) == 0
    capsys.readouterr()
    p = pcweak.PseudoLabels.load(tmp_path / "p.npz")
    car = s.boxes[list(s.extras["box_type"]).index("Car")]
    assert box_iou(p.box, car[None], "bev").max() >= 0.7  # 9 points at 60 m: the image box places it
    assert main(["evaluate", f"kitti:{root}/000001", "--pseudo", str(tmp_path / "p.npz"), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["boxes"]["gt"] == 2 and rep["boxes"]["pseudo"] == 2


def test_frustum_boxes_take_the_sizes_the_boxed_frames_teach(lidar, tmp_path, capsys):
    """Synthetic pedestrians are narrower than KITTI's means (0.8 x 0.6 m): with the sizes a
    boxed frame teaches they are fitted far better; a fully boxed frame keeps its own boxes."""
    from pcweak.bench.pseudo_boxes import _score
    from pcweak.data.synthetic_lidar import synthetic_lidar
    from pcweak.pseudo.object_boxes import learn_box_geometry
    boxed = [synthetic_lidar(i) for i in range(3)]
    geo = learn_box_geometry((s, weak.boxes(s, axis_aligned=False)) for s in boxed)
    assert geo.size("Pedestrian")[0] < 0.6
    w = weak.boxes2d(lidar)
    prior = _score(lidar, *(lambda p: (p.box.astype(np.float64), p.box_semantic))(pcweak.label(lidar, w, "boxes2d-frustum")))
    learned = _score(lidar, *(lambda p: (p.box.astype(np.float64), p.box_semantic))(
        pcweak.label(lidar, w, "boxes2d-frustum", geometry=geo.to_dict())))
    bev = {k: np.mean([t[0] for t in v["Pedestrian"]]) for k, v in (("prior", prior), ("learned", learned))}
    assert bev["learned"] > bev["prior"] + 0.1, bev
    full = weak.boxes2d(boxed[0])
    full.box, full.box_semantic = boxed[0].boxes.astype(np.float32), boxed[0].box_labels
    got = pcweak.label(boxed[0], full, "boxes2d-frustum")
    assert np.array_equal(got.box, full.box) and (got.box_confidence == 1).all()


def test_the_object_is_the_cluster_that_stays_inside_its_image_box(lidar):
    """In this frame the largest cluster in the second car's frustum is another car in front of
    it, which continues outside the image box; the car itself does not. Taking the largest
    cluster (max_spill=1) boxes the wrong car."""
    w = weak.boxes2d(lidar)
    gt = lidar.boxes[lidar.box_labels >= 0].astype(np.float64)

    def bev_of(p, k):
        j = list(p.extras["box2d_index"]).index(k)
        return box_iou(p.box[j:j + 1].astype(np.float64), gt[k:k + 1], "bev")[0, 0]
    assert lidar.classes[lidar.box_labels[lidar.box_labels >= 0][1]] == "Car"
    assert bev_of(pcweak.label(lidar, w, "boxes2d-frustum"), 1) >= 0.7
    # that car alone (the front car's own image box would otherwise keep its cluster)
    keep = np.arange(len(w.box2d)) == 1
    one = pcweak.WeakLabels(box2d=w.box2d[keep], box2d_semantic=w.box2d_semantic[keep], box2d_frame=w.box2d_frame[keep])
    only = lambda p: box_iou(p.box.astype(np.float64), gt[1:2], "bev").max()  # noqa: E731
    assert only(pcweak.label(lidar, one, "boxes2d-frustum")) >= 0.7
    assert only(pcweak.label(lidar, one, "boxes2d-frustum", max_spill=1.0)) < 0.1


def _pedestrians_only(w):
    keep = w.box2d_semantic == 1  # synthetic-lidar classes: Car, Pedestrian, Cyclist
    w.box2d, w.box2d_semantic, w.box2d_frame = w.box2d[keep], w.box2d_semantic[keep], w.box2d_frame[keep]
    return w


def test_image_boxes_alone_teach_the_pedestrian_footprint(lidar, tmp_path, capsys):
    """No 3D box anywhere: KITTI's mean pedestrian (0.8 x 0.6 m) projects wider than the image
    boxes of the synthetic ones (0.35 x 0.55 m), so the footprint learned from how fitted boxes
    project shrinks towards theirs, and the frustum boxes of a frame it did not learn on follow.
    ``pcweak label`` on a folder without boxed frames learns it the same way."""
    from pcweak.bench.pseudo_boxes import _score
    from pcweak.data.synthetic_lidar import synthetic_lidar
    from pcweak.pseudo.frustum_boxes import learn_sizes_from_image_boxes
    frames = [synthetic_lidar(3000 + i) for i in range(6)]
    geo = learn_sizes_from_image_boxes((s, _pedestrians_only(weak.boxes2d(s))) for s in frames)
    L, W, H = geo.size("Pedestrian")
    assert geo.counts["Pedestrian"] >= 5 and L * W < 0.6 * 0.8 * 0.6 and H == pytest.approx(1.73), geo
    assert geo.size("Car") == pytest.approx((3.9, 1.6, 1.56))  # no car image box: the prior stays
    w = weak.boxes2d(lidar)
    bev = {}
    for name, g in (("prior", None), ("learned", geo.to_dict())):
        p = pcweak.label(lidar, w, "boxes2d-frustum", geometry=g)
        bev[name] = np.mean([t[0] for t in _score(lidar, p.box.astype(np.float64), p.box_semantic)["Pedestrian"]])
    assert bev["learned"] > bev["prior"] + 0.15, bev
    # the CLI on a folder of frames whose weak files hold image boxes only
    (tmp_path / "scans").mkdir()
    (tmp_path / "w").mkdir()
    for s in frames:
        s.save(tmp_path / "scans" / f"{s.name}.npz")
        _pedestrians_only(weak.boxes2d(s)).save(tmp_path / "w" / f"{s.name}.npz")
    assert main(["label", str(tmp_path / "scans"), "--weak", str(tmp_path / "w"), "--method", "boxes2d-frustum",
                 "-o", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "image boxes in 6 frames" in err, err
    saved = json.loads(pcweak.PseudoLabels.load(tmp_path / "out" / f"{frames[0].name}.npz").params)["geometry"]["sizes"]["Pedestrian"]
    assert saved == pytest.approx([round(v, 4) for v in geo.size("Pedestrian")])


def test_a_car_the_image_border_cuts_is_still_the_object_of_its_image_box():
    """A car 6 m ahead fills the image down to its lower border; its points continue below the
    image, which is no sign of an occluder. Counting them as spill chose a car 30 m away in the
    same frustum (BEV IoU 0 with this one)."""
    from pcweak.data.synthetic_lidar import synthetic_lidar
    s = synthetic_lidar(3004)
    w = weak.boxes2d(s)
    assert w.box2d[2][3] >= s.frame_image_size(0)[0] - 1.5  # touches the lower border
    p = pcweak.label(s, w, "boxes2d-frustum")
    j = list(p.extras["box2d_index"]).index(2)
    gt = s.boxes[s.box_labels >= 0].astype(np.float64)
    assert box_iou(p.box[j:j + 1].astype(np.float64), gt[2:3], "bev")[0, 0] >= 0.85


def test_two_image_boxes_do_not_take_the_same_cluster():
    """In this frame car 1 stands in front of car 3 (36 points) and its image box lies inside car
    3's; both frustums' largest cluster is car 1. The box that car 1 fills keeps it, car 3's box
    takes its next cluster."""
    from pcweak.data.synthetic_lidar import synthetic_lidar
    s = synthetic_lidar(3008)
    w = weak.boxes2d(s)
    p = pcweak.label(s, w, "boxes2d-frustum")
    gt = s.boxes[s.box_labels >= 0].astype(np.float64)
    src = list(p.extras["box2d_index"])
    bev = box_iou(p.box.astype(np.float64), gt, "bev")
    assert bev[src.index(1), 1] >= 0.9
    assert bev[src.index(3), 1] < 0.1 and bev[src.index(3), 3] > 0.3


def _sparse_cars(s, most: int = 50):
    """GT boxes (LiDAR frame) of the cars with 3 to ``most`` points above the ground, and those points."""
    from pcweak.geometry import points_in_boxes
    gt = s.boxes[s.box_labels >= 0].astype(np.float64)
    cars = gt[s.box_labels[s.box_labels >= 0] == s.classes.index("Car")]
    inside = points_in_boxes(s.coord, cars)
    out = []
    for k, b in enumerate(cars):
        pts = s.coord[inside[:, k]].astype(np.float64)
        pts = pts[pts[:, 2] > b[2] - b[5] / 2 + 0.2]
        if 3 <= len(pts) <= most:
            out.append((b, pts))
    return out


def test_match_image_box_moves_and_turns_a_sparse_car_onto_its_image_box():
    """A car seen by a few points: a box of its size moved 0.6 m aside and turned 25 degrees is
    brought back by matching its projection to the car's image box."""
    from pcweak.data.synthetic_lidar import synthetic_lidar
    from pcweak.geometry import box_corners, projected_hull
    from pcweak.pseudo.frustum_boxes import match_image_box
    s = synthetic_lidar(3001)
    P, hw = s.frames[0].projection(), s.frame_image_size(0)
    cars = _sparse_cars(s)
    assert cars
    for gt, pts in cars:
        box2d = projected_hull(box_corners(gt), P, hw)[0]
        start = gt.copy()
        start[1] += 0.6
        start[6] += np.radians(25)
        m = match_image_box(start, pts, box2d, P, hw)
        assert box_iou(start[None], gt[None], "bev")[0, 0] < 0.5
        assert box_iou(m[None], gt[None], "bev")[0, 0] >= 0.8, (len(pts), m, gt)


def test_frustum_boxes_of_sparse_cars_follow_their_image_boxes():
    """Cars seen by fewer than 50 points: the fit alone leaves heading and position open; matching
    the boxes that project poorly onto their image boxes fits them far better."""
    from pcweak.bench.pseudo_boxes import _score
    from pcweak.data.synthetic_lidar import synthetic_lidar
    bev: dict[float, list[float]] = {0.0: [], 0.85: []}
    for i in (3008, 3009, 3011):
        s = synthetic_lidar(i)
        w = weak.boxes2d(s)
        sparse = [gt for gt, _ in _sparse_cars(s)]
        for below in bev:
            p = pcweak.label(s, w, "boxes2d-frustum", image_fit_below=below)
            cars = p.box[p.box_semantic == s.classes.index("Car")].astype(np.float64)
            bev[below] += [box_iou(cars, gt[None], "bev")[:, 0].max() if len(cars) else 0.0 for gt in sparse]
    assert len(bev[0.0]) >= 5
    assert np.mean(bev[0.85]) > np.mean(bev[0.0]) + 0.15, {k: np.round(v, 2) for k, v in bev.items()}
