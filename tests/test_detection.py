"""KITTI detection from weak labels: each weak mode trains on synthetic LiDAR frames on CPU and
``pcweak test`` prints KITTI AP JSON."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pcweak.cli import main
from pcweak.tasks.detection import focal_loss, rotated_nms

ROOT = Path(__file__).resolve().parents[1]


def test_nms_and_focal_loss():
    import torch
    boxes = np.array([[0, 0, 0, 4, 2, 1.5, 0], [0.2, 0, 0, 4, 2, 1.5, 0.05], [10, 0, 0, 4, 2, 1.5, 0]])
    assert rotated_nms(boxes, np.array([0.9, 0.8, 0.7]), 0.1).tolist() == [0, 2]
    t = torch.zeros(1, 1, 5, 5)
    t[0, 0, 2, 2] = 1
    good = torch.full((1, 1, 5, 5), -6.0)
    good[0, 0, 2, 2] = 6.0
    assert focal_loss(good, t) < focal_loss(torch.zeros(1, 1, 5, 5), t)


def test_projection_loss_and_target_quality(lidar_cache):
    import torch
    from pcweak.train.lidar_datamodule import LidarDataModule, collate_lidar
    from pcweak.tasks.detection import Detection
    dm = LidarDataModule(synthetic_train=1, synthetic_val=1, weak_mode="boxes2d", cache_dir=str(lidar_cache))
    dm.prepare_data()
    dm.setup()
    rep = dm.quality_report()
    q = next(iter(rep.values()))
    assert q["pseudo"] > 0 and 0 <= q["recall_0.5"] <= 1 and len(q["centre_error_m"]) == q["gt"]
    ds = dm._ds(dm._train, True)
    batch = collate_lidar([ds[0]])
    m = Detection()
    # regression outputs that decode exactly to the target boxes give GIoU loss ~ 0 when the
    # 2D targets are the projections of those boxes
    heat_shape = (1, 3, 100, 88)
    hm, idx, rt, src = m._targets(batch, heat_shape)
    b, y, x = (torch.tensor(v) for v in zip(*idx))
    boxes = m.boxes_from_reg(rt, y, x)
    from pcweak.geometry import box_corners
    P = np.asarray(batch["proj"][0])
    proj = []
    for c in box_corners(boxes.detach().numpy()):
        uvw = np.c_[c, np.ones(8)] @ P.T
        uv = uvw[:, :2] / uvw[:, 2:]
        proj.append(np.r_[uv.min(0), uv.max(0)])
    batch["reg_box2d"] = [np.array(proj)]
    assert m.projection_loss(rt, b, y, x, batch, [(0, k) for k in range(len(src))]).item() < 1e-3
    rt2 = rt.clone().requires_grad_(True)
    shifted = rt2 + torch.tensor([0.5, 0.5, 0, 0, 0, 0, 0, 0])
    loss = m.projection_loss(shifted, b, y, x, batch, [(0, k) for k in range(len(src))])
    loss.backward()
    assert loss.item() > 0.01 and rt2.grad.abs().sum() > 0


def test_click_and_cluster_modes_train_on_pseudo_boxes(lidar_cache):
    """The boxed share of the frames keep their GT boxes and teach the sizes; every object of the
    others gets a pseudo box (not only a centre), its regression weighted by its confidence."""
    from pcweak.train.lidar_datamodule import LidarDataModule, LidarDataset, target_quality
    from pcweak.weak import boxed_frames
    names = [f"f{i}" for i in range(8)]
    assert boxed_frames(names, 0.25, seed=3) == boxed_frames(names[::-1], 0.25, seed=3) and len(boxed_frames(names, 0.25)) == 2
    assert len(boxed_frames(names, 0.01)) == 1 and boxed_frames(names, 0.0) == set()
    for mode in ("clicks", "clusters"):
        dm = LidarDataModule(synthetic_train=2, synthetic_val=1, weak_mode=mode, box_fraction=0.5, cache_dir=str(lidar_cache))
        dm.prepare_data()
        dm.setup()
        # every frame's pseudo boxes are made once, before loader workers start (each epoch
        # starts new ones, which would make them again)
        assert set(dm.train_dataset()._cache) == {n for n, _ in dm._train}
        ds = dm._ds(dm._train, True)
        assert len(ds.boxed) == 1 and ds.geometry()["counts"]["Car"] >= 1
        for i, (name, _) in enumerate(ds.scenes):
            ds[i]
            scene, t, _, _ = ds.entry(i)
            q = target_quality(scene, t)
            w = np.asarray(t["reg_weight"])
            if name in ds.boxed:
                assert (w == 1).all() and q["recall_0.7"] == 1
            else:
                assert len(w) == len(t["reg_boxes"]) >= 0.6 * q["gt"] and 0 < w.max() <= 1 and w.min() >= 0
                assert q["mean_iou_bev"] > 0.4 and np.allclose(t["centres"], t["reg_boxes"][:, :3])
        # one frame's points in memory at a time: the same items, the targets made once and kept
        # (self-training replaces them in place) while the points are read again
        small = LidarDataset(ds.scenes, weak_mode=mode, box_fraction=0.5, augment=False, cache_bytes=1)
        small._geometry = ds.geometry()
        made = [small.targets(i)[0] for i in range(len(ds.scenes))]
        assert len(small._scenes) == 1 and all(small.entry(i)[1] is made[i] for i in range(len(ds.scenes)))
        for i in range(len(ds.scenes)):
            a, b = small.item(i, augment=False), ds.item(i, augment=False)
            for k in ("feat", "coord", "reg_boxes", "reg_weight"):
                np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]))


def test_click_boxes_of_training_are_made_from_the_clicks_simulate_writes(tmp_path, lidar_cache, capsys):
    """A frame's clicks in detection training are the very clicks ``pcweak simulate FOLDER
    --weak clicks --seed S`` writes for it (each frame drawn with ``weak.scene_seed``), so that a
    person inspects what the detector learns from."""
    import pcweak
    from pcweak.train.lidar_datamodule import LidarDataModule
    dm = LidarDataModule(synthetic_train=2, synthetic_val=1, weak_mode="clicks", box_fraction=0.5, seed=1,
                         cache_dir=str(lidar_cache))
    dm.prepare_data()
    dm.setup()
    ds = dm._ds(dm._train, True)
    out = tmp_path / "weak"
    assert main(["simulate", str(lidar_cache / "synthetic_lidar"), "--weak", "clicks", "--seed", "1", "-o", str(out)]) == 0
    capsys.readouterr()
    weak_frames = [i for i, (name, _) in enumerate(ds.scenes) if name not in ds.boxed]
    assert weak_frames
    for i in weak_frames:
        scene, _, _, anchors = ds.entry(i)
        clicked = scene.coord[pcweak.WeakLabels.load(out / f"{ds.scenes[i][0]}.npz").point_index].astype(np.float64)
        assert len(anchors.clicks) and {tuple(c) for c in anchors.clicks} <= {tuple(c) for c in clicked}
    # the boxed share is the one training boxes, drawn over the same frames
    train = tmp_path / "train"
    train.mkdir()
    for name, _ in ds.scenes:
        shutil.copy(lidar_cache / "synthetic_lidar" / f"{name}.npz", train / f"{name}.npz")
    assert main(["simulate", str(train), "--weak", "clicks", "--seed", "1", "--boxed-fraction", "0.5", "-o", str(out),
                 "--overwrite"]) == 0
    assert json.loads(capsys.readouterr().out)["boxed"] == len(ds.boxed) == 1
    stored = {n for n, _ in ds.scenes if pcweak.WeakLabels.load(out / f"{n}.npz").box is not None}
    assert stored == ds.boxed


@pytest.mark.parametrize("mode", ["full", "clicks", "boxes2d", "clusters"])
def test_each_weak_mode_trains_and_tests(mode, tmp_path, lidar_cache, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = ["--config", str(ROOT / "configs" / "kitti" / f"{mode}.yaml"), "--data.init_args.dataset", "synthetic",
            "--data.init_args.synthetic_train", "2", "--data.init_args.synthetic_val", "1", "--data.init_args.num_workers", "0",
            "--data.init_args.batch_size", "1", "--data.init_args.voxel_size", "[0.1, 0.1, 0.2]",
            "--data.init_args.cache_dir", str(lidar_cache),
            "--trainer.accelerator", "cpu", "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false"]
    assert main(["fit", *args]) == 0
    ckpt = next(tmp_path.glob("outputs/kitti/**/last.ckpt"))
    capsys.readouterr()
    assert main(["test", *args, "--ckpt_path", str(ckpt)]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith('{"kitti_ap"'))
    ap = json.loads(line)["kitti_ap"]
    for m in ("bev", "3d"):
        for d in ("easy", "moderate", "hard"):
            v = ap[m]["Car"][d]["R40"]  # the validation frame has cars: AP is a number, however low
            assert v is not None and np.isfinite(v) and 0 <= v <= 100, (m, d, v)
    if mode == "full":  # predict writes the same KITTI result files as test
        assert main(["predict", *args, "--ckpt_path", str(ckpt)]) == 0
        tested = next(tmp_path.glob("outputs/kitti/**/kitti_results/data"))
        predicted = next(tmp_path.glob("outputs/kitti/**/predictions"))
        assert sorted(f.name for f in predicted.iterdir()) == sorted(f.name for f in tested.iterdir())
        assert all((predicted / f.name).read_text() == f.read_text() for f in tested.iterdir())
        # KITTI's unlabelled test split: every frame of root/testing gets a result file
        import shutil
        from pcweak.data.kitti import write_kitti
        from pcweak.data.synthetic_lidar import synthetic_lidar
        for i, seed in enumerate((4000, 5)):
            write_kitti(synthetic_lidar(seed), tmp_path / "kitti" / "testing", f"{i:06d}")
        shutil.rmtree(tmp_path / "kitti" / "testing" / "label_2")
        testing = [*args, "--data.init_args.dataset", "kitti", "--data.init_args.root", str(tmp_path / "kitti"),
                   "--data.init_args.predict_split", "testing", "--ckpt_path", str(ckpt)]
        assert main(["predict", *testing]) == 0
        out = max(tmp_path.glob("outputs/kitti/**/predictions"), key=lambda d: d.stat().st_mtime)
        assert sorted(f.name for f in out.iterdir()) == ["000000.txt", "000001.txt"]
        assert (out / "000000.txt").read_text() == (predicted / "synthetic_lidar_4000.txt").read_text()  # same frame
        capsys.readouterr()
        assert main(["predict", *testing, "--data.init_args.predict_ids", "[7]"]) == 2
        assert "data.predict_ids: 1 of the 1 frames are not in" in capsys.readouterr().err
        capsys.readouterr()  # a detector does not label points
        assert main(["label", "synthetic:0", "--method", "model", "--ckpt", str(ckpt), "-o", str(tmp_path / "x.npz")]) == 2
        assert "a pcweak.tasks.Detection checkpoint; --method model and model-walk take a segmentation" in capsys.readouterr().err


def test_backbone_stride_follows_its_stages():
    import torch
    from pcweak.tasks.detection import Detection
    for channels, stride in (([8, 8, 8, 8], 8), ([8, 8, 8], 4)):
        m = Detection(voxel_size=[0.4, 0.4, 0.8], channels=channels, bev_channels=8)
        coord = torch.tensor([[10, 50, 2], [100, 10, 4]])
        heat, reg = m.model(torch.ones(2, 4), coord, torch.zeros(2, dtype=torch.long), 1)
        assert m.stride == stride and heat.shape[-2:] == (-(-200 // stride), -(-176 // stride)) and reg.shape[1] == 8
    with pytest.raises(ValueError, match="channels"):
        Detection(channels=[8])
    with pytest.raises(ValueError, match=r"model.pc_range / model.voxel_size: .*\(z too short\)"):
        Detection(voxel_size=[0.4, 0.4, 0.8], pc_range=[0, -40, -3, 70.4, 40, -2.7])
    with pytest.raises(ValueError, match=r"6 finite numbers"):
        Detection(voxel_size=[0.4, 0.4, 0.8], pc_range=[0, -40, -3, 70.4, 40, float("nan")])
    Detection(voxel_size=[0.4, 0.4, 0.8], channels=[8, 8], bev_channels=8, pc_range=[0, -40, -3, 0.4, 40, -2.2])


def test_augmentation_moves_points_and_boxes_together_and_varies():
    import torch
    from pcweak.train.lidar_datamodule import LidarDataset
    from pcweak.data.synthetic_lidar import synthetic_lidar
    from pcweak.geometry import points_in_boxes
    s = synthetic_lidar(5)
    keep = s.box_labels >= 0
    pts = np.c_[s.coord, s.intensity].astype(np.float64)
    before = points_in_boxes(pts[:, :3], s.boxes[keep])
    torch.manual_seed(0)
    draws = []
    for _ in range(4):
        p = pts.copy()
        t = {"reg_boxes": s.boxes[keep].astype(np.float64), "centres": s.boxes[keep, :3].astype(np.float64)}
        LidarDataset._augment(p, t)
        assert (points_in_boxes(p[:, :3], t["reg_boxes"]) == before).all()  # same points in each box
        assert np.allclose(t["centres"], t["reg_boxes"][:, :3]) and np.allclose(p[:, 3], pts[:, 3])
        draws.append(t["reg_boxes"][0].copy())
    assert len({tuple(np.round(d, 6)) for d in draws}) == 4  # a new draw every call (not per item index)
    # the camera follows the points: an augmented box projects to the image box it had before
    from pcweak.pseudo.agreement import projected_boxes
    f = s.frames[0]
    P = f.intrinsics @ np.linalg.inv(f.pose)[:3]
    for _ in range(3):
        t = {"reg_boxes": s.boxes[keep].astype(np.float64), "centres": s.boxes[keep, :3].astype(np.float64), "proj": P.copy()}
        LidarDataset._augment(pts.copy(), t)
        assert np.allclose(projected_boxes(t["reg_boxes"], t["proj"]), projected_boxes(s.boxes[keep], P), atol=1e-6)


@pytest.mark.slow
def test_detector_learns_a_frame(tmp_path):
    """Targets, decoding, NMS and KITTI AP agree: trained on one synthetic frame (no
    augmentation) the detector finds its objects again with accurate boxes."""
    import lightning as L
    from pcweak.train.lidar_datamodule import LidarDataModule
    from pcweak.metrics.kitti import kitti_ap
    from pcweak.tasks.detection import Detection
    L.seed_everything(0)
    # the bench's detector (0.8 m BEV cells): 0 AP after 40 steps, 100 after 100
    dm = LidarDataModule(synthetic_train=1, synthetic_val=1, voxel_size=[0.2, 0.2, 0.4], batch_size=1, augment=False,
                         cache_dir=str(tmp_path))
    train = dm.scene_lists()[0]
    dm.scene_lists = lambda: (train, train)  # evaluate on the training frame
    model = Detection(voxel_size=[0.2, 0.2, 0.4], channels=[16, 32, 32], bev_channels=64)
    tr = L.Trainer(max_steps=120, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                   num_sanity_val_steps=0, check_val_every_n_epoch=10 ** 6)
    tr.fit(model, dm)
    frames = []
    model._report = lambda stage, print_json=False: frames.extend(model._frames)
    tr.test(model, dm, verbose=False)
    _, gt, det = frames[0]
    n = kitti_ap([gt], [det])["n_gt"]["Car"]["moderate"]
    assert n >= 2
    # copies of the frame up to 80 cars: enough for the devkit's recall sampling to reach 100
    copies = -(-80 // n)
    ap = kitti_ap([gt] * copies, [det] * copies)
    assert ap["bev"]["Car"]["moderate"]["R40"] > 80, ap["bev"]
