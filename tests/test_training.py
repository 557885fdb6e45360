"""Training stack: losses, batches, LightningCLI fit/resume/validate, self-training, configs."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pcweak.cli import main
from pcweak.data.datamodule import PointDataModule, SceneDataset
from pcweak.data.transforms import region_mask, voxel_labels
from pcweak.scene import PseudoLabels
from pcweak.tasks.semantic import js_divergence, rampup

ROOT = Path(__file__).resolve().parents[1]
DEMO = str(ROOT / "configs" / "demo.yaml")


def test_losses_and_helpers():
    a = torch.randn(50, 6)
    assert js_divergence(a, a).item() < 1e-6
    assert 0 < js_divergence(a, torch.randn(50, 6)).item() <= np.log(2) + 1e-6
    assert rampup(0, 10) == pytest.approx(np.exp(-5)) and rampup(10, 10) == 1.0 and rampup(3, 0) == 1.0
    rng = np.random.default_rng(0)
    c = rng.random((20000, 3))
    m = region_mask(c, np.random.default_rng(1), grid=4)
    assert abs(m.mean() - 0.75) < 0.05
    np.testing.assert_array_equal(m, region_mask(c, np.random.default_rng(1), grid=4))
    inv = torch.tensor([0, 0, 1, 1, 2])
    lab, w = voxel_labels(inv, np.array([-1, 3, 2, 5, -1]), 3, np.array([1.0, 0.2, 0.3, 0.9, 1.0]))
    assert lab.tolist() == [3, 5, -1] and w.tolist() == pytest.approx([0.2, 0.9, 0.0])


def _dm(tmp_path, **kw):
    args = dict(dataset="synthetic", synthetic_train=2, synthetic_val=1, voxel_size=0.08, cache_dir=str(tmp_path / "cache"))
    args.update(kw)
    dm = PointDataModule(**args)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_batches_are_consistent_and_deterministic(tmp_path):
    dm = _dm(tmp_path, points=100, two_views=True, region_mask_grid=4)
    b1 = next(iter(dm.train_dataloader()))
    V = len(b1["grid_coord"])
    assert b1["feat"].shape == (V, 6) and b1["batch"].max() == 1
    assert b1["inverse"].max() < V and len(b1["inverse"]) == int(b1["offset"][-1])
    labelled = (b1["seed_label"] >= 0).sum().item()
    assert 0 < labelled <= 200
    assert "v2_feat" in b1 and b1["v2_inverse"].max() < len(b1["v2_grid_coord"])
    b2 = next(iter(_dm(tmp_path, points=100, two_views=True, region_mask_grid=4).train_dataloader()))
    for k in ("grid_coord", "feat", "seed_label", "v2_feat"):
        assert torch.equal(b1[k], b2[k]), k
    val = next(iter(dm.val_dataloader()))
    assert (val["seed_label"] < 0).all() and (val["point_label"] >= 0).all()  # validation never sees labels as input
    with pytest.raises(ValueError, match="supervision: expected one of"):
        SceneDataset([], supervision="magic")


def test_pseudo_supervision_makes_labels_once(tmp_path):
    dm = _dm(tmp_path, supervision="points+pseudo", pseudo_method="propagate", points=100)
    files = sorted(Path(dm.pseudo_dir).glob("*.npz"))
    assert len(files) == 2 and PseudoLabels.load(files[0]).method == "propagate"
    mtimes = [f.stat().st_mtime_ns for f in files]
    dm.prepare_data()  # resumable: nothing is redone
    assert [f.stat().st_mtime_ns for f in files] == mtimes
    b = next(iter(dm.train_dataloader()))
    assert (b["pseudo_label"] >= 0).float().mean() > 0.5 and (b["pseudo_weight"] <= 1).all()


def _fit_args(tmp_path, epochs):
    return ["--config", DEMO, "--trainer.max_epochs", str(epochs), "--data.init_args.synthetic_train", "2",
            "--data.init_args.synthetic_val", "1", "--data.init_args.cache_dir", str(tmp_path / "cache"),
            "--data.init_args.voxel_size", "0.1", "--trainer.enable_progress_bar", "false"]


def test_cli_fit_resume_validate_and_self_training(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["fit", *_fit_args(tmp_path, 1)]) == 0
    last = sorted(tmp_path.glob("outputs/**/last.ckpt"))
    assert last, "no checkpoint written"
    ck = torch.load(last[0], map_location="cpu", weights_only=False)
    assert ck["epoch"] == 0 and "datamodule_hyper_parameters" in ck
    assert main(["fit", *_fit_args(tmp_path, 2), "--ckpt_path", str(last[0])]) == 0  # resumes at epoch 1
    newest = max(tmp_path.glob("outputs/**/last.ckpt"), key=lambda p: p.stat().st_mtime)
    assert torch.load(newest, map_location="cpu", weights_only=False)["epoch"] == 1
    assert main(["validate", *_fit_args(tmp_path, 1), "--ckpt_path", str(newest)]) == 0
    assert "val/miou" in capsys.readouterr().out
    scene = tmp_path / "cache" / "synthetic" / "synthetic_2000.npz"
    assert main(["label", f"npz:{scene}", "--method", "model", "--ckpt", str(newest), "-o", str(tmp_path / "st")]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["labelled"] == 1
    p = PseudoLabels.load(tmp_path / "st" / "synthetic_2000.npz")
    assert p.method == "model" and (p.semantic >= 0).all() and 0 < p.confidence.min() <= p.confidence.max() <= 1
    csv = list(tmp_path.glob("outputs/demo/points200/version_*/metrics.csv"))
    assert csv and "val/miou" in csv[0].read_text()


@pytest.mark.parametrize("config", sorted(str(p.relative_to(ROOT)) for p in (ROOT / "configs").rglob("*.yaml")))
def test_every_config_parses(config, capsys):
    with pytest.raises(SystemExit) as e:
        main(["fit", "--config", str(ROOT / config), "--print_config"])
    assert e.value.code in (0, None)
    assert "class_path: pcweak" in capsys.readouterr().out


def test_instance_task_trains_and_reports_ap(tmp_path, monkeypatch, capsys):
    from pcweak.tasks.instance import InstanceSegmentation, cluster_shifted
    # clustering: two tight groups of shifted voxels of one thing class -> two proposals
    shifted = torch.cat([torch.zeros(20, 3), torch.full((20, 3), 10.0)]) + 0.1 * torch.rand(40, 3)
    sem = torch.full((40,), 2)
    prob = torch.full((40, 3), 0.1)
    prob[:, 2] = 0.8
    things = torch.tensor([False, False, True])
    inst, cls, score = cluster_shifted(shifted, sem, prob, torch.zeros(40, dtype=torch.long), things, 1.5, 5)
    assert len(cls) == 2 and cls == {0: 2, 1: 2} and score[0] == pytest.approx(0.8)
    assert len(set(inst[:20].tolist())) == 1 and inst[0] != inst[20]
    grid = torch.tensor([[0, 0, 0], [2, 0, 0], [10, 10, 10]])
    tgt, ok = InstanceSegmentation.offset_targets(grid, torch.zeros(3, dtype=torch.long), torch.tensor([0, 0, -1]))
    assert ok.tolist() == [True, True, False] and tgt[0].tolist() == [1.0, 0.0, 0.0] and tgt[1].tolist() == [-1.0, 0.0, 0.0]
    # one epoch through LightningCLI with full instance labels
    monkeypatch.chdir(tmp_path)
    assert main(["fit", *_fit_args(tmp_path, 1), "--model", "pcweak.tasks.InstanceSegmentation",
                 "--model.init_args.backbone", '{"layers": "spunet14", "base_channels": 16, "channels": [16, 32, 64, 96, 96, 64, 48, 48]}',
                 "--model.init_args.ap_min_points", "10", "--data.init_args.supervision", "full"]) == 0
    metrics = next(tmp_path.glob("outputs/demo/points200/version_*/metrics.csv")).read_text()
    assert "val/ap50" in metrics and "train/loss_offset" in metrics
