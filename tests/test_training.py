"""Training stack: losses, batches, LightningCLI fit/resume/validate, self-training, configs."""
import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from pcweak import weak
from pcweak.cli import main
from pcweak.data.address import load_scene
from pcweak.train.datamodule import PointDataModule, SceneDataset
from pcweak.train.transforms import region_mask, voxel_labels
from pcweak.scene import PseudoLabels
from pcweak.tasks.losses import js_divergence, rampup

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
    # a vote: two points of class 1 outweigh one of class 4 listed first; weights add up
    inv = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2])
    lab, w = voxel_labels(inv, np.array([4, 1, 1, 7, 2, 2, 6, 3]), 3, np.array([1.0, 0.5, 0.7, 1.0, 0.3, 0.3, 0.5, 0.5]))
    assert lab.tolist() == [1, 7, 3] and w.tolist() == pytest.approx([0.6, 1.0, 0.5])


def test_loss_objects_compose_without_hidden_batch_keys():
    import torch.nn.functional as F
    from pcweak.tasks.losses import (LossInputs, OffsetLoss, PseudoCE, RegionMask, SeedCE, TwoViewConsistency, compose,
                                     weak_losses)
    torch.manual_seed(0)
    logits = torch.randn(6, 3, requires_grad=True)
    batch = {"seed_label": torch.tensor([0, -1, 2, -1, -1, -1]), "pseudo_label": torch.tensor([1, 1, -1, 0, -1, -1]),
             "pseudo_weight": torch.tensor([1.0, 0.5, 0.0, 0.25, 0.0, 0.0])}
    out = LossInputs(logits, batch)
    assert SeedCE()(out).item() == pytest.approx(F.cross_entropy(logits[[0, 2]], torch.tensor([0, 2])).item())
    ce = F.cross_entropy(logits[[0, 1, 3]], torch.tensor([1, 1, 0]), reduction="none")
    assert PseudoCE()(out).item() == pytest.approx(((ce * torch.tensor([1.0, 0.5, 0.25])).sum() / 1.75).item())
    assert SeedCE()(LossInputs(logits, {**batch, "seed_label": torch.full((6,), -1)})) is None
    assert TwoViewConsistency()(out) is None  # no second view: nothing to compare
    # compose: weights, the ramp on consistency-type losses only, a log per applied loss
    other = torch.randn(6, 3)
    two = LossInputs(logits, batch, second_view=lambda: (logits, other))
    losses = [SeedCE(2.0), TwoViewConsistency(3.0)]
    total, logs = compose(losses, two, ramp=0.5)
    assert set(logs) == {"train/loss_seed", "train/loss_consistency"}
    assert total.item() == pytest.approx(2.0 * logs["train/loss_seed"].item() + 1.5 * logs["train/loss_consistency"].item())
    # RegionMask: the masked (second) view learns from the first, which gets no gradient from it
    view2 = torch.randn(6, 3, requires_grad=True)
    RegionMask()(LossInputs(logits, batch, second_view=lambda: (logits, view2))).backward()
    assert logits.grad is None and view2.grad is not None
    assert [type(x).__name__ for x in weak_losses(1.0, 0.0, 1.0, 0.0)] == ["SeedCE", "TwoViewConsistency"]
    # offsets: a voxel at its instance's centre has no direction term
    grid = torch.tensor([[0, 0, 0], [2, 0, 0]])
    b = {"grid_coord": grid, "batch": torch.zeros(2, dtype=torch.long), "instance_label": torch.tensor([0, 0])}
    from pcweak.tasks.instance import offset_targets_of_batch
    exact = OffsetLoss(offset_targets_of_batch)(LossInputs(logits[:2], b, offset=torch.tensor([[1.0, 0, 0], [-1.0, 0, 0]])))
    assert exact.item() == pytest.approx(-1.0)  # L1 0, cosine -1


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
    # the walk without its forest (a third of the time): what is tested is when labels are made
    fast = {"refine.method": "none"}
    dm = _dm(tmp_path, supervision="points+pseudo", pseudo_method="propagate", points=100, pseudo_params=fast)
    files = sorted(Path(dm.pseudo_dir).glob("*.npz"))
    assert len(files) == 2 and PseudoLabels.load(files[0]).method == "propagate"
    mtimes = [f.stat().st_mtime_ns for f in files]
    dm.prepare_data()  # resumable: nothing is redone
    assert [f.stat().st_mtime_ns for f in files] == mtimes
    b = next(iter(dm.train_dataloader()))
    assert (b["pseudo_label"] >= 0).float().mean() > 0.5 and (b["pseudo_weight"] <= 1).all()
    # other labeller settings into the same cache folder: the old labels are not served
    dm2 = _dm(tmp_path, supervision="points+pseudo", pseudo_method="propagate", points=100,
              pseudo_params={**fast, "solver.alpha": 0.5})
    assert dm2.pseudo_dir == dm.pseudo_dir and [f.stat().st_mtime_ns for f in files] != mtimes
    assert all(json.loads(PseudoLabels.load(f).params)["solver"]["alpha"] == 0.5 for f in files)
    # weak labels from a folder instead of the simulation: made again from them
    weak_dir = tmp_path / "weak"
    weak_dir.mkdir()
    for f in files:
        weak.points(load_scene(f"npz:{tmp_path / 'cache' / 'synthetic' / f.name}"), count=40, seed=3).save(weak_dir / f.name)
    mtimes = [f.stat().st_mtime_ns for f in files]
    dm3 = _dm(tmp_path, supervision="points+pseudo", pseudo_method="propagate", points=100,
              pseudo_params={**fast, "solver.alpha": 0.5}, weak_dir=str(weak_dir))
    assert [f.stat().st_mtime_ns for f in files] != mtimes
    assert all(json.loads(PseudoLabels.load(f).stats)["seeds"] == 40 for f in files)
    # a file another labeller made (a model-walk round's output, say) is the user's: kept
    from pcweak.pseudo.registry import label
    scene = load_scene(f"npz:{tmp_path / 'cache' / 'synthetic' / files[0].name}")
    label(scene, weak.points(scene, count=40, seed=3), "nearest").save(files[0])
    mtimes = [f.stat().st_mtime_ns for f in files]
    dm3.prepare_data()
    assert [f.stat().st_mtime_ns for f in files] == mtimes and PseudoLabels.load(files[0]).method == "nearest"
    # validate / test / predict read no pseudo-labels: none are made for them
    from types import SimpleNamespace
    dm4 = PointDataModule(**{**dict(dm3.hparams), "pseudo_params": {**fast, "solver.alpha": 0.25}})
    for fn in ("validate", "test", "predict"):
        dm4.trainer = SimpleNamespace(state=SimpleNamespace(fn=fn))
        dm4.prepare_data()
        assert [f.stat().st_mtime_ns for f in files] == mtimes
    dm4.trainer = SimpleNamespace(state=SimpleNamespace(fn="fit"))
    dm4.prepare_data()
    assert all(json.loads(PseudoLabels.load(f).params)["solver"]["alpha"] == 0.25 for f in files[1:])
    # weak labels that lack what the labeller reads: refused before the first scene is labelled
    mtimes = [f.stat().st_mtime_ns for f in files]
    with pytest.raises(ValueError, match=rf"data.weak_dir: {weak_dir / files[0].name} has no box, which "
                                         r"data.pseudo_method 'gp-boxes' needs"):
        _dm(tmp_path, supervision="pseudo", pseudo_method="gp-boxes", weak_dir=str(weak_dir))
    with pytest.raises(ValueError, match=r"data.pseudo_method 'gp-boxes' needs box in the weak labels, which "
                                         r"data.weak_kind 'clicks' does not simulate"):
        PointDataModule(**{**dict(dm3.hparams), "weak_dir": None, "weak_kind": "clicks", "pseudo_method": "gp-boxes",
                           "pseudo_params": None})
    assert [f.stat().st_mtime_ns for f in files] == mtimes


def test_read_scenes_are_kept_within_the_memory_bound(tmp_path, monkeypatch):
    """A dataset keeps read scenes up to its byte bound, the least recently used dropped first
    (a full split is not held once per worker); what it serves does not depend on the bound."""
    import pcweak.data.address as address
    from pcweak.train.scene_cache import scene_bytes
    dm = _dm(tmp_path, synthetic_train=3)
    scenes = dm.scene_lists()[0]
    reads = []
    real = address.load_scene
    monkeypatch.setattr(address, "load_scene", lambda addr, **kw: reads.append(addr) or real(addr, **kw))
    size = scene_bytes(real(scenes[0][1]))
    small = SceneDataset(scenes, "points", voxel_size=0.1, train=False, cache_bytes=int(2.5 * size))
    roomy = SceneDataset(scenes, "points", voxel_size=0.1, train=False)
    for i in (0, 1, 2, 0, 2):
        a, b = small[i], roomy[i]
        for k in ("grid_coord", "feat", "seed_label", "point_label"):
            np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]))
        assert small._cache.bytes <= 2.5 * size * 1.2 and len(small._cache) <= 2
    # the small one read room 0 again (dropped for room 2), kept room 2; the roomy one read each once
    assert reads.count(scenes[0][1]) == 3 and reads.count(scenes[2][1]) == 2 and len(reads) == 7
    with pytest.raises(ValueError, match="data.scene_cache_gb: expected GiB >= 0"):
        _dm(tmp_path, scene_cache_gb=-1)


def test_real_scenes_are_parsed_once_and_again_when_their_files_change(tmp_path, room, monkeypatch):
    """``read_through``: a scene is parsed from its source files once, then loaded from its copy
    (frames keep their cameras, not their images); a rewritten source, or the same source with
    other reader code, is parsed again; an npz scene is read as it is."""
    from dataclasses import replace

    import pcweak.data.address as address
    from pcweak.data.scannet import write_scannet
    from pcweak.train.scene_cache import read_through
    scan = write_scannet(room, tmp_path / "data")
    addr, copies = f"scannet:{scan}", tmp_path / "copies"
    reads = []
    real = address.load_scene
    monkeypatch.setattr(address, "load_scene", lambda a, **kw: reads.append(a) or real(a, **kw))
    first = read_through(copies, "r", addr)
    again = read_through(copies, "r", addr)
    direct = real(addr)
    assert len(reads) == 1 and (copies / "r.npz").is_file()
    for f in ("coord", "color", "normal", "semantic", "instance", "segment"):
        np.testing.assert_array_equal(getattr(again, f), getattr(direct, f))
        np.testing.assert_array_equal(getattr(first, f), getattr(direct, f))
    assert len(again.frames) == len(direct.frames) == 4 and all(f.image is None for f in again.frames)
    for a, b in zip(again.frames, direct.frames):
        np.testing.assert_array_equal(a.pose, b.pose)
    write_scannet(replace(room, coord=room.coord + 1.0), tmp_path / "data")  # the scan rewritten in place
    moved = read_through(copies, "r", addr)
    assert len(reads) == 2 and np.allclose(moved.coord, direct.coord + 1.0, atol=1e-4)
    room.save(tmp_path / "room.npz")
    read_through(copies, "n", f"npz:{tmp_path / 'room.npz'}")
    assert not (copies / "n.npz").exists()
    import pcweak.train.scene_cache as scene_cache
    before = len(reads)
    monkeypatch.setattr(scene_cache, "reader_stamp", lambda: "another reader")  # pcweak upgraded
    read_through(copies, "r", addr)
    assert len(reads) == before + 1
    read_through(copies, "r", addr)
    assert len(reads) == before + 1
    (tmp_path / "file").write_text("")  # a cache folder that cannot be made: parsed, with a warning
    with pytest.warns(UserWarning, match="cannot keep a parsed copy"):
        blocked = read_through(tmp_path / "file" / "copies", "r", addr)
    np.testing.assert_array_equal(blocked.coord, moved.coord)


def test_cached_synthetic_scenes_of_another_generator_are_made_again(tmp_path):
    from pcweak.code_stamp import reader_stamp
    from pcweak.scene import Scene
    dm = _dm(tmp_path)
    files = sorted((tmp_path / "cache" / "synthetic").glob("*.npz"))
    assert len(files) == 3 and all(Scene.load(f).meta["generator"] == reader_stamp() for f in files)
    fresh = [f.read_bytes() for f in files]
    mtimes = [f.stat().st_mtime_ns for f in files]
    dm.prepare_data()  # made by this generator: kept
    assert [f.stat().st_mtime_ns for f in files] == mtimes
    old = Scene.load(files[0])  # a room of an older generator (other points, its stamp)
    old.coord = old.coord + 1.0
    old.meta = {**old.meta, "generator": "0" * 16}
    old.save(files[0])
    unstamped = Scene.load(files[1])  # written before scenes were stamped
    unstamped.meta = {k: v for k, v in unstamped.meta.items() if k != "generator"}
    unstamped.save(files[1])
    files[2].write_bytes(fresh[2][:1000])  # cut short
    dm.prepare_data()
    assert [f.read_bytes() for f in files] == fresh


def _fit_args(tmp_path, epochs):
    return ["--config", DEMO, "--trainer.max_epochs", str(epochs), "--data.init_args.synthetic_train", "2",
            "--data.init_args.synthetic_val", "1", "--data.init_args.cache_dir", str(tmp_path / "cache"),
            "--data.init_args.voxel_size", "0.1", "--trainer.enable_progress_bar", "false"]


def test_cli_fit_resume_validate_and_self_training(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["fit", *_fit_args(tmp_path, 1)]) == 0
    last = sorted(tmp_path.glob("outputs/**/last.ckpt"))
    assert last, "no checkpoint written"
    # one run, one folder: CSV metrics, TensorBoard events and checkpoints together; its path printed
    runs = sorted(p.name for p in (tmp_path / "outputs" / "demo" / "points200").iterdir())
    assert runs == ["version_0"], runs
    run = tmp_path / "outputs" / "demo" / "points200" / "version_0"
    assert (run / "metrics.csv").is_file() and list(run.glob("events.out.tfevents.*")) and (run / "checkpoints" / "last.ckpt").is_file()
    assert "pcweak fit: checkpoints in outputs/demo/points200/version_0/checkpoints (last: " in capsys.readouterr().err
    ck = torch.load(last[0], map_location="cpu", weights_only=False)
    assert ck["epoch"] == 0 and "datamodule_hyper_parameters" in ck
    capsys.readouterr()
    assert main(["fit", *_fit_args(tmp_path, 2), "--ckpt_path", str(last[0])]) == 0  # resumes at epoch 1
    assert "model settings are used" not in capsys.readouterr().err  # the same config: nothing to say
    newest = max(tmp_path.glob("outputs/**/last.ckpt"), key=lambda p: p.stat().st_mtime)
    assert torch.load(newest, map_location="cpu", weights_only=False)["epoch"] == 1
    # resuming a fit on other data (it went on training without a word): refused before a batch runs
    assert main(["fit", *_fit_args(tmp_path, 3), "--ckpt_path", str(newest), "--data.init_args.points", "20"]) == 2
    assert (f"--ckpt_path {newest}: the checkpoint was trained on other data: data.init_args.points 200 (given 20)"
            in capsys.readouterr().err)
    # a run from a checkpoint gets the checkpoint's model: a setting given otherwise is named, not used
    assert main(["validate", *_fit_args(tmp_path, 1), "--ckpt_path", str(newest), "--model.init_args.lr", "0.5"]) == 0
    out, err = capsys.readouterr()
    assert "val/miou" in out
    assert (f"pcweak: warning: --ckpt_path {newest}: the checkpoint's model settings are used, not the config's: "
            f"model.init_args.lr 0.02 (given 0.5)") in err
    # data the checkpoint's model cannot read, or a model of another class: refused before a batch runs
    assert main(["validate", *_fit_args(tmp_path, 1), "--ckpt_path", str(newest), "--data.init_args.feature_names",
                 "[color]"]) == 2
    err = capsys.readouterr().err
    assert ("the checkpoint's model was built for in_channels 6 (data.feature_names ['color', 'normal'] in its "
            "training), but the data (pcweak.train.datamodule.PointDataModule, data.feature_names ['color']) gives 3") in err
    assert "Traceback" not in err and "channel size mismatch" not in err
    assert main(["validate", *_fit_args(tmp_path, 1), "--ckpt_path", str(newest), "--model",
                 "pcweak.tasks.InstanceSegmentation"]) == 2
    assert ("a pcweak.tasks.SemanticSegmentation checkpoint, but the config's model is "
            "pcweak.tasks.InstanceSegmentation") in capsys.readouterr().err
    # predict: one label file per scene in the run's folder (one folder per run, as for fit)
    before = set((tmp_path / "outputs" / "demo" / "points200").iterdir())
    assert main(["predict", *_fit_args(tmp_path, 1), "--ckpt_path", str(newest)]) == 0
    (pred_run,) = set((tmp_path / "outputs" / "demo" / "points200").iterdir()) - before
    assert f"pcweak predict: 3 predictions in {pred_run.relative_to(tmp_path)}/predictions" in capsys.readouterr().err
    assert sorted(f.name for f in (pred_run / "predictions").iterdir()) == [
        "synthetic_1000.npz", "synthetic_1001.npz", "synthetic_2000.npz"]
    predicted = PseudoLabels.load(pred_run / "predictions" / "synthetic_2000.npz")
    assert predicted.method == "model" and json.loads(predicted.params)["ckpt"] == str(newest)
    assert main(["predict", *_fit_args(tmp_path, 1), "--ckpt_path", str(newest), "--data.init_args.predict_scenes",
                 "[synthetic_2000]"]) == 0  # the scenes named
    assert "pcweak predict: 1 predictions in" in capsys.readouterr().err
    assert main(["predict", *_fit_args(tmp_path, 1), "--ckpt_path", str(newest), "--data.init_args.predict_scenes",
                 "[synthetic_7]"]) == 2
    assert "data.predict_scenes: 1 of the 1 scenes are not in the scenes of data.dataset synthetic" in capsys.readouterr().err
    scene = tmp_path / "cache" / "synthetic" / "synthetic_2000.npz"
    assert main(["label", f"npz:{scene}", "--method", "model", "--ckpt", str(newest), "-o", str(tmp_path / "st")]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["labelled"] == 1
    p = PseudoLabels.load(tmp_path / "st" / "synthetic_2000.npz")
    assert p.method == "model" and (p.semantic >= 0).all() and 0 < p.confidence.min() <= p.confidence.max() <= 1
    assert (p.semantic == predicted.semantic).all() and np.allclose(p.confidence, predicted.confidence)  # one model, two ways
    # a scene without the normals the model reads: labelled, with one warning naming it and what it costs
    from dataclasses import replace
    bare = tmp_path / "bare.npz"
    replace(load_scene(f"npz:{scene}"), normal=None).save(bare)
    capsys.readouterr()
    assert main(["label", f"npz:{bare}", "--method", "model", "--ckpt", str(newest), "-o", str(tmp_path / "bare_out")]) == 0
    err = capsys.readouterr().err
    assert err.count("pcweak: warning: scene 'synthetic_2000' has no normal, which the model reads (feature_names ['color', "
                     "'normal']): it is fed zeros there") == 1 and (tmp_path / "bare_out" / "bare.npz").is_file()
    # resume: the same checkpoint and settings skip the scene; another checkpoint labels it again
    label = ["label", f"npz:{scene}", "--method", "model", "-o", str(tmp_path / "st")]
    assert main(label + ["--ckpt", str(newest)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["skipped_existing"] == 1
    assert main(label + ["--ckpt", str(last[0])]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["labelled"] == 1
    assert json.loads(PseudoLabels.load(tmp_path / "st" / "synthetic_2000.npz").params)["ckpt"] == str(last[0])
    csv = list(tmp_path.glob("outputs/demo/points200/version_*/metrics.csv"))
    assert csv and "val/miou" in csv[0].read_text()
    # model-walk: the walk from the weak points, with the model's class probabilities as its learned features
    weak = tmp_path / "weak.npz"
    assert main(["simulate", f"npz:{scene}", "--weak", "points", "--count", "100", "-o", str(weak)]) == 0
    walk = ["label", f"npz:{scene}", "--method", "model-walk", "--ckpt", str(newest), "--weak", str(weak)]
    assert main(walk + ["-o", str(tmp_path / "mw.npz")]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["labelled"] == 1
    got = PseudoLabels.load(tmp_path / "mw.npz")
    from pcweak.pseudo.registry import propagate_scene
    from pcweak.scene import WeakLabels
    from pcweak.train.self_training import _load_model, _predictions
    room, w = load_scene(f"npz:{scene}"), WeakLabels.load(weak)
    model, settings = _load_model(newest, None, None)
    (_, pred), = _predictions(model, [("synthetic_2000", f"npz:{scene}")], settings, "cpu", 1, "auto")
    want = propagate_scene(room, w, None, features=pred["prob"])
    assert pred["prob"].shape == (room.num_points, 20) and np.allclose(pred["prob"].sum(1), 1, atol=1e-4)
    assert got.method == "model-walk" and (got.semantic == want.semantic).all() and np.allclose(got.confidence, want.confidence)
    assert (got.semantic[w.point_index] == w.point_semantic).all()  # every seed keeps its label
    assert main(walk + ["-o", str(tmp_path / "mw.npz")]) == 0  # resumes
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["skipped_existing"] == 1
    assert main(walk + ["-o", str(tmp_path / "mw.npz"), "--param", "graph.w_feat=0"]) == 2  # the model would be ignored
    assert "graph.w_feat must be > 0" in capsys.readouterr().err
    other = tmp_path / "other.npz"
    assert main(["simulate", "synthetic:5", "--weak", "points", "--count", "50", "-o", str(other)]) == 0
    capsys.readouterr()
    assert main(walk[:-1] + [str(other), "-o", str(tmp_path / "mw2.npz")]) == 2  # weak labels of another scene
    err = capsys.readouterr().err
    assert str(other) in err and "Traceback" not in err and not (tmp_path / "mw2.npz").exists()
    # a scene over another dataset's classes: the model's probabilities compare other things
    from pcweak.classes import S3DIS13
    office = dataclasses.replace(room, name="office", classes=S3DIS13, semantic=room.semantic % 13, frames=[], boxes=None,
                                 box_labels=None)
    office.save(tmp_path / "office.npz")
    assert main(["simulate", f"npz:{tmp_path / 'office.npz'}", "--weak", "points", "--count", "50", "-o", str(other)]) == 0
    capsys.readouterr()
    assert main(["label", f"npz:{tmp_path / 'office.npz'}", "--method", "model-walk", "--ckpt", str(newest), "--weak",
                 str(other), "-o", str(tmp_path / "mw3.npz")]) == 2
    assert "the model predicts 20 classes (wall, floor, cabinet, ...) that disagree with scene 'office''s 13 (ceiling, floor, wall, ...)" in capsys.readouterr().err


def test_a_checkpoint_save_that_fails_leaves_no_cut_file(tmp_path, monkeypatch, capsys):
    """Checkpoints are written beside their path and renamed into place (``AtomicCheckpointIO``):
    Lightning's own save moved a temporary file from the system's temporary folder, a copy
    across file systems, so a full disk left a cut checkpoint a resume could not read."""
    import errno
    import os

    from pcweak import npzio
    from pcweak.train.atomic_checkpoints import AtomicCheckpointIO
    saver = AtomicCheckpointIO()
    f = tmp_path / "run" / "last.ckpt"
    saver.save_checkpoint({"step": 1, "w": torch.ones(3)}, f)
    assert torch.load(f, weights_only=True)["step"] == 1
    fsync = os.fsync

    def full_for_checkpoints(fd):  # the disk fills while a checkpoint is written
        if ".ckpt." in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return fsync(fd)
    monkeypatch.setattr(npzio.os, "fsync", full_for_checkpoints)
    with pytest.raises(OSError, match=r"cannot write .*last.ckpt \(No space left on device\)"):
        saver.save_checkpoint({"step": 2, "w": torch.ones(3)}, f)
    assert torch.load(f, weights_only=True)["step"] == 1 and [p.name for p in f.parent.iterdir()] == ["last.ckpt"]
    # pcweak fit saves through it: one line, and no checkpoint, whole or cut
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["fit", *_fit_args(tmp_path, 1)]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "best-epoch=0.ckpt" in err and "Traceback" not in err
    assert not [p for p in tmp_path.glob("outputs/**/*") if ".ckpt" in p.name]
    # a quiet fit (the demo's, bench train-weak's) builds its trainer the same way
    import io
    from pcweak.train.runs import fit_run
    monkeypatch.setattr(npzio.os, "fsync", fsync)
    cli, result = fit_run(DEMO, _fit_args(tmp_path, 1)[4:], tmp_path / "quiet", "q", 1, stream=io.StringIO())
    assert isinstance(cli.trainer.strategy.checkpoint_io, AtomicCheckpointIO) and Path(result["last_checkpoint"]).is_file()


def test_lightnings_cloud_tracker_advert_is_dropped_and_its_other_lines_kept(tmp_path):
    """A Trainer with a local logger logs a tip advertising Lightning's cloud experiment tracker
    (``litlogger``); every command (training, ``bench detect``) drops that line
    (``_drop_lightning_adverts``) and keeps Lightning's others (the devices used)."""
    import logging

    import lightning.pytorch as pl
    from lightning.pytorch.loggers import CSVLogger

    from pcweak.cli import _drop_lightning_adverts, _NoLightningAdverts, main

    class Keep(logging.Handler):
        def __init__(self):
            super().__init__(logging.INFO)
            self.lines = []

        def emit(self, record):
            self.lines.append(record.getMessage())

    names = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")
    for name in names:  # as before any pcweak command ran in this process
        for f in [f for f in logging.getLogger(name).filters if isinstance(f, _NoLightningAdverts)]:
            logging.getLogger(name).removeFilter(f)
    keep, tops = Keep(), [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric")]
    levels = [t.level for t in tops]
    for t in tops:  # (another test's quiet fit may have raised them)
        t.addHandler(keep)
        t.setLevel(logging.INFO)
    try:
        pl.Trainer(logger=CSVLogger(tmp_path), accelerator="cpu", enable_progress_bar=False)
        before = list(keep.lines)
        keep.lines.clear()
        _drop_lightning_adverts()
        _drop_lightning_adverts()  # once, however often called
        pl.Trainer(logger=CSVLogger(tmp_path), accelerator="cpu", enable_progress_bar=False)
    finally:
        for t, level in zip(tops, levels):
            t.removeHandler(keep)
            t.setLevel(level)
    assert any("litlogger" in line for line in before)
    assert not any("litlogger" in line for line in keep.lines) and any("GPU available" in line for line in keep.lines)
    assert sum(isinstance(f, _NoLightningAdverts) for name in names for f in logging.getLogger(name).filters) == 2
    for name in names:
        for f in [f for f in logging.getLogger(name).filters if isinstance(f, _NoLightningAdverts)]:
            logging.getLogger(name).removeFilter(f)
    assert main(["info", str(tmp_path / "nothing")]) == 2  # a command that is no training one
    assert sum(isinstance(f, _NoLightningAdverts) for name in names for f in logging.getLogger(name).filters) == 2


def test_ema_update_warms_up_and_leaves_counters():
    from pcweak.train.weight_ema import WeightEMA, ema_update_

    def updated(avg, cur, n):
        avg = [a.clone() for a in avg]
        ema_update_(avg, cur, torch.tensor(n), decay=0.99)
        return avg
    avg, cur = [torch.zeros(3), torch.zeros(2)], [torch.ones(3), torch.ones(2)]
    assert all(torch.allclose(a, torch.full_like(a, 0.9)) for a in updated(avg, cur, 0))  # d = 1/10
    assert all(torch.allclose(a, torch.full_like(a, 0.01)) for a in updated(avg, cur, 10_000))
    counter = [torch.tensor(7)]
    assert torch.equal(updated([torch.tensor(3)], counter, 5)[0], counter[0])  # batch-norm step counts are not averaged
    # trainer.precision 64-true casts the model after the average was copied: "expected dtype float" before
    wide = updated(avg, [torch.ones(3, dtype=torch.float64), torch.ones(2, dtype=torch.float64)], 0)
    assert all(a.dtype == torch.float32 and torch.allclose(a, torch.full_like(a, 0.9)) for a in wide)
    with pytest.raises(ValueError, match="decay"):
        WeightEMA(decay=1.0)


def test_weight_ema_is_what_is_validated_checkpointed_and_kept(tmp_path, monkeypatch):
    """With the demo config's ``WeightEMA``: the logged validation is the averaged model's (a
    plain validation of the checkpoint's weights, without the callback, scores the same), the
    checkpoint's ``state_dict`` is the average and the model ends training holding it."""
    import lightning as L
    from pcweak.tasks.semantic import SemanticSegmentation
    from pcweak.train.lightning_cli import run_lightning_cli
    from pcweak.train.weight_ema import WeightEMA
    monkeypatch.chdir(tmp_path)
    cli = run_lightning_cli([*_fit_args(tmp_path, 2), "--trainer.logger", "false"], run=False)
    ema = [c for c in cli.trainer.callbacks if isinstance(c, WeightEMA)]
    assert ema, "configs/demo.yaml averages the weights"
    cli.trainer.fit(cli.model, cli.datamodule)
    logged = float(cli.trainer.callback_metrics["val/miou"])
    ck = torch.load(cli.trainer.checkpoint_callback.dirpath + "/last.ckpt", map_location="cpu", weights_only=False)
    kept = cli.model.state_dict()
    assert all(torch.equal(ck["state_dict"][k], v) for k, v in kept.items())
    assert any(not torch.equal(ck["current_model_state"][k], v) for k, v in kept.items() if v.is_floating_point())
    fresh = SemanticSegmentation(**{k: v for k, v in cli.model.hparams.items() if not k.startswith("_")})
    fresh.load_state_dict(ck["state_dict"])
    plain = L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False)
    (scores,) = plain.validate(fresh, cli.datamodule, verbose=False)
    assert abs(scores["val/miou"] - logged) < 1e-6, (scores["val/miou"], logged)


@pytest.mark.parametrize("config", sorted(str(p.relative_to(ROOT)) for p in (ROOT / "configs").rglob("*.yaml")))
def test_every_config_parses(config, capsys):
    with pytest.raises(SystemExit) as e:
        main(["fit", "--config", str(ROOT / config), "--print_config"])
    assert e.value.code in (0, None)
    out = capsys.readouterr().out
    assert "class_path: pcweak" in out
    linked = out.splitlines()[0]
    if "kitti" in config:
        assert linked.endswith("voxel_size, pc_range")
    else:  # the printed model section holds the data's facts
        assert linked.endswith("class_names, num_classes, in_channels" + (", stuff_classes" if "boxes" in config else ""))
        assert ("num_classes: 13" if "s3dis" in config else "num_classes: 20") in out


def test_instance_task_trains_and_reports_ap(tmp_path, monkeypatch, capsys):
    from pcweak.tasks.instance import cluster_shifted, offset_targets
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
    tgt, ok = offset_targets(grid, torch.zeros(3, dtype=torch.long), torch.tensor([0, 0, -1]))
    assert ok.tolist() == [True, True, False] and tgt[0].tolist() == [1.0, 0.0, 0.0] and tgt[1].tolist() == [-1.0, 0.0, 0.0]
    # one epoch through LightningCLI with full instance labels
    monkeypatch.chdir(tmp_path)
    assert main(["fit", *_fit_args(tmp_path, 1), "--model", "pcweak.tasks.InstanceSegmentation",
                 "--model.init_args.backbone", '{"layers": "spunet14", "base_channels": 16, "channels": [16, 32, 64, 96, 96, 64, 48, 48]}',
                 "--model.init_args.ap_min_points", "10", "--data.init_args.supervision", "full"]) == 0
    metrics = next(tmp_path.glob("outputs/demo/points200/version_*/metrics.csv")).read_text()
    assert "val/ap50" in metrics and "train/loss_offset" in metrics
    # predict: per point a proposal id, per proposal its class (its points' class) and score
    ckpt = next(tmp_path.glob("outputs/demo/points200/version_0/checkpoints/last.ckpt"))
    assert main(["predict", *_fit_args(tmp_path, 1), "--model", "pcweak.tasks.InstanceSegmentation",
                 "--model.init_args.backbone", '{"layers": "spunet14", "base_channels": 16, "channels": [16, 32, 64, 96, 96, 64, 48, 48]}',
                 "--ckpt_path", str(ckpt)]) == 0
    p = PseudoLabels.load(next(tmp_path.glob("outputs/demo/points200/version_1/predictions/synthetic_2000.npz")))
    k = len(p.extras["instance_class"])
    assert p.instance.max() == k - 1 and len(p.extras["instance_score"]) == k
    assert set(np.unique(p.instance[p.instance >= 0])) == set(range(k))
    assert ((p.extras["instance_score"] > 0) & (p.extras["instance_score"] <= 1)).all()
    assert not np.isin(p.extras["instance_class"], [0, 1]).any()  # wall and floor are not instances
    # label --method model reads the instance checkpoint and writes the same proposals
    scene = tmp_path / "cache" / "synthetic" / "synthetic_2000.npz"
    assert main(["label", f"npz:{scene}", "--method", "model", "--ckpt", str(ckpt), "-o", str(tmp_path / "inst.npz")]) == 0
    q = PseudoLabels.load(tmp_path / "inst.npz")
    assert (q.instance == p.instance).all() and (q.semantic == p.semantic).all()
    assert (q.extras["instance_class"] == p.extras["instance_class"]).all()


# what each dataset's model must be built with (the old configs' hand-written values)
EXPECTED_FACTS = {"scannet": (20, 6, [0, 1]), "s3dis": (13, 3, [0, 1, 2]), "demo": (20, 6, [0, 1])}


@pytest.mark.parametrize("config", sorted(str(p.relative_to(ROOT)) for p in (ROOT / "configs").rglob("*.yaml")))
def test_configs_state_each_fact_once_and_the_model_takes_it_from_the_data(config, tmp_path, monkeypatch):
    """No config restates the class list, the number of classes or of input channels, or (KITTI)
    the voxel size under ``model``; the CLI links them from the datamodule."""
    import yaml

    from pcweak.classes import S3DIS13, SCANNET20
    from pcweak.train.lightning_cli import run_lightning_cli
    model = yaml.safe_load((ROOT / config).read_text())["model"].get("init_args", {})
    assert not {"num_classes", "in_channels", "class_names", "voxel_size", "pc_range", "stuff_classes"} & set(model)
    monkeypatch.chdir(tmp_path)
    cli = run_lightning_cli(["--config", str(ROOT / config), "--trainer.logger", "false", "--trainer.callbacks", "[]"], run=False)
    h = cli.model.hparams
    if "kitti" in config:
        assert list(h.voxel_size) == list(cli.datamodule.hparams.voxel_size) and list(h.pc_range) == list(cli.datamodule.pc_range)
        return
    n, c, stuff = EXPECTED_FACTS[Path(config).parent.name if "/" in config.replace("configs/", "") else "demo"]
    assert h.num_classes == n and h.in_channels == c and list(h.class_names) == list(S3DIS13 if n == 13 else SCANNET20)
    if "stuff_classes" in h:
        assert list(h.stuff_classes) == stuff


def test_a_model_fact_that_contradicts_the_data_is_refused(capsys):
    assert main(["fit", "--config", DEMO, "--model.init_args.num_classes", "13", "--print_config"]) == 2
    err = capsys.readouterr().err
    assert "pcweak fit: error: model.init_args.num_classes=13 contradicts the data" in err and "Traceback" not in err


def test_a_fit_resumes_only_on_the_data_it_was_trained_on():
    """``check_resumed_data``: settings that change what is trained on are refused, a location
    of the same data is named in a warning, serving settings pass; data of another module too."""
    from jsonargparse import Namespace

    from pcweak.train.config_checks import check_resumed_data
    ckpt = {"datamodule_hyper_parameters": {"_class_path": "pcweak.train.datamodule.PointDataModule", "dataset": "scannet",
                                            "root": "/old/scans", "points": 200, "seed": 0, "batch_size": 2,
                                            "feature_names": ["color", "normal"]}}

    def config(cls="pcweak.train.datamodule.PointDataModule", **data):
        args = {"dataset": "scannet", "root": "/old/scans", "points": 200, "seed": 0, "batch_size": 2,
                "feature_names": ("color", "normal"), "num_workers": 4, **data}
        return Namespace(data=Namespace(class_path=cls, init_args=Namespace(**args)))

    assert check_resumed_data(config(batch_size=8), ckpt, "a.ckpt") == []  # a tuple read as the checkpoint's list
    with pytest.warns(UserWarning, match=r"data.init_args.root '/new/scans' \(trained from '/old/scans'\)"):
        assert check_resumed_data(config(root="/new/scans"), ckpt, "a.ckpt") == ["root"]
    with pytest.raises(ValueError, match=r"other data: data.init_args.points 200 \(given 50\); "
                                         r"data.init_args.seed 0 \(given 1\)"):
        check_resumed_data(config(points=50, seed=1, root="/new/scans"), ckpt, "a.ckpt")
    with pytest.raises(ValueError, match="trained on pcweak.train.datamodule.PointDataModule, but the config's data is"):
        check_resumed_data(config("pcweak.train.lidar_datamodule.LidarDataModule"), ckpt, "a.ckpt")
    assert check_resumed_data(config(points=50), {"hyper_parameters": {}}, "old.ckpt") == []  # nothing recorded


def test_a_checkpoint_built_for_other_data_is_refused():
    """``--ckpt_path``: LightningCLI builds the checkpoint's model, so data of another class list
    or LiDAR grid is refused naming the data setting, and other settings are named in a warning."""
    from jsonargparse import Namespace

    from pcweak.classes import S3DIS13, SCANNET20
    from pcweak.train.config_checks import check_against_checkpoint

    def config(data_class, data, model):
        return Namespace(model=Namespace(class_path="pcweak.tasks.SemanticSegmentation", init_args=Namespace(**model)),
                         data=Namespace(class_path=data_class, init_args=Namespace(**data)))

    seg = {"hyper_parameters": {"_class_path": "pcweak.tasks.SemanticSegmentation", "class_names": list(SCANNET20),
                                "num_classes": 20, "lr": 0.02, "backbone": {"layers": "spunet14", "channels": [16, 32]}},
           "datamodule_hyper_parameters": {"dataset": "scannet"}}
    same = config("pcweak.train.datamodule.PointDataModule", {"dataset": "scannet"},
                  {"class_names": list(SCANNET20), "num_classes": 20, "lr": 0.02,
                   "backbone": Namespace(layers="spunet14", channels=(16, 32))})
    assert check_against_checkpoint(same, seg, "a.ckpt") == []  # a Namespace and a tuple read as the checkpoint's dict and list
    with pytest.raises(ValueError, match=r"--ckpt_path a.ckpt: the checkpoint's model was built for class_names "
                                         r"\['wall', .*\(data.dataset 'scannet' in its training\), but the data "
                                         r"\(pcweak.train.datamodule.PointDataModule, data.dataset 's3dis'\) gives \['ceiling'"):
        check_against_checkpoint(config("pcweak.train.datamodule.PointDataModule", {"dataset": "s3dis"},
                                        {"class_names": list(S3DIS13), "num_classes": 13, "lr": 0.02}), seg, "a.ckpt")
    with pytest.warns(UserWarning, match=r"model.init_args.backbone \{'layers': 'spunet14', 'channels': \[16, 32\]\} "
                                         r"\(given \{'layers': 'spunet14', 'channels': \[8, 32\]\}\)"):
        assert check_against_checkpoint(config("pcweak.train.datamodule.PointDataModule", {"dataset": "scannet"},
                                               {"class_names": list(SCANNET20), "backbone": {"layers": "spunet14",
                                                                                            "channels": [8, 32]}}),
                                        seg, "a.ckpt") == ["backbone"]
    # a folder model (placeholders up to its files' highest label) on new files whose lists stop lower
    from pcweak.classes import placeholder_class
    names = [placeholder_class(i) for i in range(20)]
    folder = {"hyper_parameters": {"_class_path": "pcweak.tasks.SemanticSegmentation", "class_names": names,
                                   "num_classes": 20, "stuff_classes": []}, "datamodule_hyper_parameters": {"dataset": "folder"}}

    def folder_data(classes):
        return config("pcweak.train.datamodule.PointDataModule", {"dataset": "folder"},
                      {"class_names": classes, "num_classes": len(classes), "stuff_classes": []})
    assert check_against_checkpoint(folder_data(names[:10]), folder, "f.ckpt") == []
    for more in (names + [placeholder_class(20)], ["ground"] + names[1:10]):  # a class the model lacks, or names
        with pytest.raises(ValueError, match="the checkpoint's model was built for class_names"):
            check_against_checkpoint(folder_data(more), folder, "f.ckpt")
    lidar = {"hyper_parameters": {"_class_path": "pcweak.tasks.Detection", "voxel_size": [0.05, 0.05, 0.1]},
             "datamodule_hyper_parameters": {"voxel_size": [0.05, 0.05, 0.1]}}
    det = Namespace(model=Namespace(class_path="pcweak.tasks.detection.Detection",
                                    init_args=Namespace(voxel_size=[0.1, 0.1, 0.2])),
                    data=Namespace(class_path="pcweak.train.lidar_datamodule.LidarDataModule",
                                   init_args=Namespace(voxel_size=[0.1, 0.1, 0.2])))
    with pytest.raises(ValueError, match=r"built for voxel_size \[0.05, 0.05, 0.1\] \(data.voxel_size \[0.05, 0.05, 0.1\] "
                                         r"in its training\), but the data .* gives \[0.1, 0.1, 0.2\]"):
        check_against_checkpoint(det, lidar, "d.ckpt")


@pytest.mark.parametrize("config", sorted(str(p.relative_to(ROOT)) for p in (ROOT / "configs").rglob("*.yaml")))
def test_every_shipped_config_trains_every_loss_it_sets(config, capsys):
    """Each shipped config's losses have the data they read, and its data is read by a loss:
    no refusal, no warning (``config_checks.check_training_against_data``)."""
    with pytest.raises(SystemExit) as done:  # --print_config prints and exits
        main(["fit", "--config", str(ROOT / config), "--print_config"])
    assert done.value.code == 0
    err = capsys.readouterr().err
    assert "warning" not in err and "error" not in err, err


def test_data_made_for_no_loss_is_named():
    from jsonargparse import Namespace

    from pcweak.train.config_checks import check_training_against_data

    def config(model, data):
        return Namespace(model=Namespace(class_path="pcweak.tasks.SemanticSegmentation", init_args=Namespace(**model)),
                         data=Namespace(class_path="pcweak.train.datamodule.PointDataModule", init_args=Namespace(**data)))
    assert check_training_against_data(config({"loss_seed": 1.0}, {"supervision": "points"})) == []
    with pytest.raises(ValueError, match=r"model.init_args.loss_seed 1.0: data.supervision 'pseudo' gives no labelled "
                                         r"points, so this loss would never apply"):
        check_training_against_data(config({"loss_seed": 1.0, "loss_pseudo": 1.0},
                                         {"supervision": "pseudo", "pseudo_method": "propagate"}))
    with pytest.warns(UserWarning) as seen:
        said = check_training_against_data(config({"loss_seed": 1.0}, {"supervision": "points", "two_views": True,
                                                                    "pseudo_method": "propagate"}))
    assert len(said) == len(seen) == 2
    assert said[0].startswith("data.two_views true: a second view of every scene is made and no loss reads it")
    assert said[1] == "data.pseudo_method 'propagate': data.supervision 'points' reads no pseudo-labels, so it is not used"
    with pytest.warns(UserWarning) as seen:  # a fully supervised baseline run from a weak config
        said = check_training_against_data(config({"loss_seed": 1.0}, {"supervision": "full", "weak_dir": "w",
                                                                      "points_ratio": 0.001, "weak_kind": "clicks"}))
    assert said == ["data.weak_dir 'w', data.points_ratio 0.001, data.weak_kind 'clicks': data.supervision 'full' reads "
                    "no weak labels (every point's own label trains), so not used"]
    with pytest.warns(UserWarning, match=r"data.points_ratio 0.001: simulated clicks are one per object"):
        check_training_against_data(config({"loss_seed": 1.0}, {"supervision": "points", "points_ratio": 0.001,
                                                                "weak_kind": "clicks"}))
    assert check_training_against_data(config({"loss_seed": 0.0, "loss_pseudo": 1.0}, {  # the labeller reads them
        "supervision": "pseudo", "pseudo_method": "gp-boxes", "weak_kind": "boxes"})) == []
    with pytest.warns(UserWarning, match=r"data.supervision 'points\+pseudo': pseudo-labels are read .* no loss reads them"):
        check_training_against_data(config({"loss_seed": 1.0, "loss_pseudo": 0.0},
                                         {"supervision": "points+pseudo", "pseudo_method": "propagate"}))


def test_a_boxed_share_for_a_lidar_mode_without_one_is_named():
    """``box_fraction`` is read by the clicks and clusters modes only (a fully boxed share of
    the frames teaches the class sizes); set for full or boxes2d it would be dropped."""
    from jsonargparse import Namespace

    from pcweak.train.config_checks import check_training_against_data

    def config(**data):
        return Namespace(model=Namespace(class_path="pcweak.tasks.Detection", init_args=Namespace(lr=0.003)),
                         data=Namespace(class_path="pcweak.train.lidar_datamodule.LidarDataModule",
                                        init_args=Namespace(**data)))
    for mode, word in (("full", "every"), ("boxes2d", "no")):
        with pytest.warns(UserWarning) as seen:
            said = check_training_against_data(config(weak_mode=mode, box_fraction=0.3))
        assert said == [f"data.box_fraction 0.3: data.weak_mode '{mode}' boxes {word} training frame (a boxed share "
                        f"is for clicks or clusters), so it is not used"] and len(seen) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_training_against_data(config(weak_mode="full", box_fraction=0.1)) == []  # the default
        assert check_training_against_data(config(weak_mode="clicks", box_fraction=0.3)) == []


def _miou(gt: torch.Tensor, pred: torch.Tensor, classes: int) -> float:
    from pcweak.metrics import confusion, iou_from_confusion
    return float(np.nanmean(iou_from_confusion(confusion(gt.numpy(), pred.numpy(), classes))))


@pytest.mark.slow
@pytest.mark.parametrize("connected", [True, False])
def test_one_room_overfit(tmp_path, connected):
    """The demo model fits one room's full labels through the real loss path (SeedCE via
    ``compose``): train mIoU >= 0.95 on its voxels, and on the points within 3 % of what 10 cm
    voxels allow. With the loss cut off from the network it learns nothing and the check fails."""
    import yaml
    from pcweak.data.synthetic_indoor import synthetic_room
    from pcweak.tasks.losses import compose
    from pcweak.tasks.semantic import SemanticSegmentation
    from pcweak.train.datamodule import collate
    torch.manual_seed(0)
    synthetic_room(1000, n_frames=0).save(tmp_path / "room.npz")
    batch = collate([SceneDataset([("room", f"npz:{tmp_path / 'room.npz'}")], "full", voxel_size=0.1, train=True)[0]])
    backbone = yaml.safe_load(Path(DEMO).read_text())["model"]["init_args"]["backbone"]
    model = SemanticSegmentation(backbone=backbone, loss_seed=1.0)
    opt = torch.optim.AdamW(model.parameters(), lr=0.02)
    ceiling = _miou(batch["point_label"], batch["seed_label"][batch["inverse"]], 20)  # each point its voxel's label

    def scores() -> tuple[float, float]:
        model.eval()
        with torch.no_grad():
            pred = model(batch).argmax(1)
        model.train()
        return _miou(batch["seed_label"], pred, 20), _miou(batch["point_label"], pred[batch["inverse"]], 20)

    for step in range(1, (100 if connected else 10) + 1):
        total, _ = compose(model.losses, model.loss_inputs(batch), 1.0)
        if not connected:
            total = total.detach().requires_grad_()  # the bug this test guards against
        opt.zero_grad()
        total.backward()
        opt.step()
        if connected and step >= 60 and step % 10 == 0:  # fitted (about 80 steps): stop early
            voxel_miou, point_miou = scores()
            if voxel_miou >= 0.95 and point_miou >= 0.97 * ceiling:
                break
    else:  # not fitted early, or not connected: score the last step
        voxel_miou, point_miou = scores()
    if connected:
        assert voxel_miou >= 0.95 and point_miou >= 0.97 * ceiling, (voxel_miou, point_miou, ceiling)
        assert ceiling > 0.85  # the voxel vote (majority), not one representative point (0.79)
    else:
        assert voxel_miou < 0.5, voxel_miou


@pytest.mark.slow
def test_point_head_fits_one_room_beyond_its_voxel_ceiling(tmp_path):
    """At 20 cm many voxels hold two classes, so one class per voxel caps point mIoU; the point
    head, trained on the points through the real loss path, goes past that cap on the room it
    fits. The targets it trains on are the points' own (not the voxels' votes)."""
    import yaml
    from pcweak.data.synthetic_indoor import synthetic_room
    from pcweak.tasks.losses import compose
    from pcweak.tasks.semantic import SemanticSegmentation
    from pcweak.train.datamodule import collate
    torch.manual_seed(0)
    synthetic_room(1000, n_frames=0).save(tmp_path / "room.npz")
    batch = collate([SceneDataset([("room", f"npz:{tmp_path / 'room.npz'}")], "full", voxel_size=0.2, train=True)[0]])
    off = batch["point_feat"][:, -3:]
    assert batch["point_feat"].shape == (len(batch["point_label"]), 9) and off.min() >= -0.5 and off.max() <= 0.5
    backbone = yaml.safe_load(Path(DEMO).read_text())["model"]["init_args"]["backbone"]
    model = SemanticSegmentation(backbone=backbone, loss_seed=1.0, point_head=True)
    inputs = model.loss_inputs(batch)
    assert torch.equal(inputs.batch["seed_label"], batch["point_label"])  # full labels, per point
    opt = torch.optim.AdamW(model.parameters(), lr=0.02)
    for _ in range(60):  # ~0.88 against a 0.80 ceiling here; 100 steps reach ~0.99
        total, _ = compose(model.losses, model.loss_inputs(batch), 1.0)
        opt.zero_grad()
        total.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        pred = model.point_logits(batch).argmax(1)
    ceiling = _miou(batch["point_label"], batch["seed_label"][batch["inverse"]], 20)  # each point its voxel's vote
    point_miou = _miou(batch["point_label"], pred, 20)
    assert point_miou > ceiling + 0.03, (point_miou, ceiling)


def test_task_settings_out_of_range_are_refused_where_they_enter():
    """The tasks' constructors (the Python API, and checkpoints read back) check their settings as
    the training CLI does before anything is built: one ValueError naming the setting."""
    from pcweak.tasks import Detection, InstanceSegmentation, SemanticSegmentation
    with pytest.raises(ValueError, match=r"model.lr: expected a number > 0, got -0.1"):
        SemanticSegmentation(lr=-0.1)
    with pytest.raises(ValueError, match=r"model.loss_pseudo: expected a number >= 0, got nan"):
        SemanticSegmentation(loss_pseudo=float("nan"))
    with pytest.raises(ValueError, match=r"model.loss_seed/loss_pseudo/loss_consistency/loss_regionmask: every loss weight is 0"):
        SemanticSegmentation(loss_seed=0.0)
    with pytest.raises(ValueError, match=r"model.stuff_classes: expected class ids in \[0, 20\), got \[0, 20\]"):
        InstanceSegmentation(stuff_classes=[0, 20])
    InstanceSegmentation(loss_seed=0.0, loss_offset=1.0)  # the offset loss alone trains
    with pytest.raises(ValueError, match=r"model.score_threshold: expected a number in \[0, 1\], got 2"):
        Detection(score_threshold=2)
    with pytest.raises(ValueError, match=r"model.self_training_rounds: expected an integer >= 0, got -1"):
        Detection(self_training_rounds=-1)


def test_point_head_model_has_no_voxel_classifier_and_loads_older_checkpoints(tmp_path):
    """With the point head the network's voxel classifier would be trained by nothing (and stop
    a distributed step), so it is not built; a checkpoint saved while it was still there (its
    ``model.head.*`` weights beside the point head's) loads, by Lightning as by the model
    labeller, with every other weight."""
    import lightning as L
    from pcweak.tasks.semantic import SemanticSegmentation
    backbone = {"layers": "spunet14", "base_channels": 8, "channels": [8, 8, 8, 8, 8, 8, 8, 8]}
    model = SemanticSegmentation(num_classes=5, in_channels=6, backbone=backbone, point_head=True)
    assert model.model.head is None and not any(k.startswith("model.head.") for k in model.state_dict())
    state = {k: v.clone() + 1 for k, v in model.state_dict().items()}
    older = {**state, "model.head.weight": torch.zeros(5, 8), "model.head.bias": torch.zeros(5)}
    ckpt = tmp_path / "older.ckpt"
    torch.save({"state_dict": older, "hyper_parameters": dict(model.hparams),
                "pytorch-lightning_version": L.__version__}, ckpt)
    loaded = SemanticSegmentation.load_from_checkpoint(ckpt, map_location="cpu")
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert SemanticSegmentation(num_classes=5, in_channels=6, backbone=backbone).model.head is not None
