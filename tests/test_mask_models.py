"""SAM and CLIP through transformers, on small randomly initialised models of the real
architectures saved as a user's checkpoint folder would be: the plumbing from a model folder to
masks per frame, scores per mask, and labels on the cloud."""
import dataclasses
import json
import sys

import numpy as np
import pytest

from pcweak import weak
from pcweak.cli import main
from pcweak.pseudo.lift_masks import lift_masks
from pcweak.pseudo.mask_sources import load_mask_folder, masks_from_weak



def _byte_chars() -> list[str]:
    """GPT-2 / CLIP byte-level BPE alphabet: one printable character per byte."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


@pytest.fixture(scope="module")
def tiny_sam(tmp_path_factory):
    import torch
    from transformers import SamConfig, SamModel
    from transformers.models.sam.image_processing_pil_sam import SamImageProcessorPil
    d = tmp_path_factory.mktemp("sam")
    cfg = SamConfig(vision_config=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=64, patch_size=8,
                                       output_channels=16, window_size=4, global_attn_indexes=[1], num_pos_feats=8, mlp_dim=32),
                    prompt_encoder_config=dict(hidden_size=16, image_size=64, patch_size=8, mask_input_channels=4),
                    mask_decoder_config=dict(hidden_size=16, mlp_dim=32, num_hidden_layers=2, num_attention_heads=2,
                                             iou_head_hidden_dim=16))
    torch.manual_seed(0)
    SamModel(cfg).save_pretrained(d)
    SamImageProcessorPil(size={"longest_edge": 64}, pad_size={"height": 64, "width": 64}, mask_size={"longest_edge": 16},
                         mask_pad_size={"height": 16, "width": 16}).save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    import torch
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil
    d = tmp_path_factory.mktemp("clip")
    chars = _byte_chars()
    vocab = {c: i for i, c in enumerate(chars)} | {c + "</w>": 256 + i for i, c in enumerate(chars)}
    vocab |= {"<|startoftext|>": 512, "<|endoftext|>": 513}
    (d / "vocab.json").write_text(json.dumps(vocab))
    (d / "merges.txt").write_text("#version: 0.2\n")
    CLIPTokenizer(str(d / "vocab.json"), str(d / "merges.txt")).save_pretrained(d)
    cfg = CLIPConfig(text_config=dict(vocab_size=514, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                      num_attention_heads=2, max_position_embeddings=77, bos_token_id=512, eos_token_id=513,
                                      pad_token_id=513),
                     vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                                        image_size=32, patch_size=8), projection_dim=8)
    torch.manual_seed(0)
    CLIPModel(cfg).save_pretrained(d)
    CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(d)
    return d


def test_sam_masks_from_a_model_folder_lift_to_the_cloud(room, tiny_sam):
    from pcweak.pseudo.mask_models import sam_masks
    maps = sam_masks(room, tiny_sam, frames=[0, 2], points_per_side=4, pred_iou_thresh=-1e9, stability_score_thresh=-1,
                     box_nms_thresh=0.9, min_area=1, progress=False)
    assert [fi for fi, _ in maps] == [0, 2]
    for fi, lm in maps:
        assert lm.shape == room.frames[fi].image.shape[:2] and lm.dtype == np.int64
        ids = np.unique(lm[lm > 0])
        assert len(ids) >= 1 and np.array_equal(ids, np.arange(1, len(ids) + 1))  # 1..m, none hidden
    p = lift_masks(room, maps, min_points=5)
    assert (p.extras["views"] > 0).sum() > 1000 and (p.instance >= 0).sum() > 1000
    # the thresholds act: nothing passes an impossible predicted IoU
    none = sam_masks(room, tiny_sam, frames=[0], points_per_side=2, pred_iou_thresh=1e9, progress=False)
    assert none[0][1].max() == 0


def test_vlm_scores_from_a_model_folder_seed_the_walk(room, tiny_clip):
    from pcweak.pseudo.mask_models import vlm_mask_scores
    maps = masks_from_weak(weak.masks2d(room, seed=0))[:2]
    scores = vlm_mask_scores(room, maps, tiny_clip, progress=False)
    M, C = sum(int(m.max()) for _, m in maps), len(room.classes)
    assert scores.shape == (M, C) and np.isfinite(scores).all()
    present = [o + j - 1 for o, (_, m) in zip(np.cumsum([0] + [int(m.max()) for _, m in maps]), maps)
               for j in np.unique(m[m > 0])]
    assert (np.abs(scores[present]).sum(1) > 0).all()
    np.testing.assert_allclose(vlm_mask_scores(room, maps, tiny_clip, progress=False), scores, rtol=1e-5)
    # the scores alone (no labelled point) label what the masks cover, within the scene's tags
    tags = np.zeros(C, bool)
    tags[[0, 1, 5]] = True
    p = lift_masks(room, maps, mask_scores=scores, scene_tags=tags)
    lab = p.semantic[p.semantic >= 0]
    assert len(lab) > 1000 and set(np.unique(lab)) <= {0, 1, 5}


def test_masks_command_writes_a_folder_label_reads(room, tiny_sam, tiny_clip, tmp_path, capsys):
    room.save(tmp_path / "r.npz")
    assert main(["masks", f"npz:{tmp_path / 'r.npz'}", "--sam", str(tiny_sam), "--vlm", str(tiny_clip), "--points-per-side", "3",
                 "--frame-step", "2", "-o", str(tmp_path / "m")]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    maps, scores = load_mask_folder(tmp_path / "m", room)
    assert out["frames"] == len(maps) == 2 and scores.shape == (out["masks"], len(room.classes))
    weak.points(room, count=20, seed=0).save(tmp_path / "w.npz")
    assert main(["label", f"npz:{tmp_path / 'r.npz'}", "--weak", str(tmp_path / "w.npz"), "--method", "lift-masks",
                 "--masks", str(tmp_path / "m"), "-o", str(tmp_path / "p.npz")]) == 0


def test_masks_command_resumes_and_refuses_other_settings(room, tiny_sam, tmp_path, capsys, monkeypatch):
    from pcweak.pseudo import mask_models
    room.save(tmp_path / "r.npz")
    args = ["masks", f"npz:{tmp_path / 'r.npz'}", "--sam", str(tiny_sam), "--points-per-side", "2", "-o", str(tmp_path / "m")]
    assert main(args) == 0
    pngs = sorted((tmp_path / "m").glob("*.png"))
    assert len(pngs) == len(room.frames) and (tmp_path / "m" / "masks.json").is_file()
    first = pngs[0].read_bytes()
    pngs[0].unlink()  # as if killed before the last frame
    seen = []
    real = mask_models.iter_sam_masks
    monkeypatch.setattr(mask_models, "iter_sam_masks", lambda scene, model, frames, **kw: (seen.append(list(frames)), real(scene, model, frames, **kw))[1])
    assert main(args) == 0
    assert len(seen[0]) == 1 and pngs[0].read_bytes() == first  # only the missing frame, made again the same
    assert main(args[:-4] + ["--points-per-side", "3", "-o", str(tmp_path / "m")]) == 2
    assert "holds masks made from other inputs or settings (points_per_side differ); pass --overwrite" in capsys.readouterr().err
    assert main(args[:-4] + ["--points-per-side", "3", "--overwrite", "-o", str(tmp_path / "m")]) == 0
    assert len(seen) == 2 and len(seen[1]) == len(room.frames)
    # another scene written at the same address is another input too
    dataclasses.replace(room, color=1.0 - room.color).save(tmp_path / "r.npz")
    assert main(args[:-4] + ["--points-per-side", "3", "-o", str(tmp_path / "m")]) == 2
    assert "(scene_files differ)" in capsys.readouterr().err
    # and masks made by other code (a fix to the adapters within one pcweak version)
    from pcweak import code_stamp
    monkeypatch.setattr(code_stamp, "code_stamp", lambda modules: "edited")
    assert main(args[:-4] + ["--points-per-side", "3", "-o", str(tmp_path / "m")]) == 2
    assert "(code, scene_files differ)" in capsys.readouterr().err


def test_a_masks_run_that_made_nothing_does_not_hold_its_folder(room, tiny_sam, tmp_path, capsys, monkeypatch):
    """A run stopped before its first mask (weights that fail to load, say) leaves a manifest
    but no masks; the corrected run, with other settings, goes on without --overwrite. Once
    masks exist, other settings are refused as before."""
    from pcweak.pseudo import mask_models
    room.save(tmp_path / "r.npz")
    base = ["masks", f"npz:{tmp_path / 'r.npz'}", "-o", str(tmp_path / "m")]

    def fails(*a, **k):
        raise FileNotFoundError("--sam: cannot load 'x' as a model folder")
        yield
    with monkeypatch.context() as m:
        m.setattr(mask_models, "iter_sam_masks", fails)
        assert main(base + ["--sam", str(tiny_sam), "--points-per-side", "3"]) == 2
    assert (tmp_path / "m" / "masks.json").is_file() and not list((tmp_path / "m").glob("*.png"))
    capsys.readouterr()
    base += ["--points-per-side", "2"]
    assert main(base + ["--sam", str(tiny_sam)]) == 0
    assert len(list((tmp_path / "m").glob("*.png"))) == len(room.frames)
    assert main(base + ["--sam", str(tiny_sam), "--frame-step", "2"]) == 2
    assert "(frames differ)" in capsys.readouterr().err


def test_masks_made_for_another_scene_or_frame_are_refused_by_label(room, tiny_sam, tmp_path, capsys):
    """A masks folder names the scene it was made on: labelling another scene whose frames share
    its frame names and sizes with it is refused, as is a mask map of another width / height
    ratio than its frame; a manifest of an older pcweak that names no scene still reads."""
    from PIL import Image
    room.save(tmp_path / "r.npz")
    other = dataclasses.replace(room, coord=room.coord[:-10], color=room.color[:-10], semantic=room.semantic[:-10],
                                instance=room.instance[:-10], segment=None, normal=None)
    other.save(tmp_path / "o.npz")
    m = tmp_path / "m"
    assert main(["masks", f"npz:{tmp_path / 'r.npz'}", "--sam", str(tiny_sam), "--points-per-side", "2", "-o", str(m)]) == 0
    weak.points(other, count=20, seed=0).save(tmp_path / "wo.npz")
    label = ["label", "--method", "lift-masks", "--masks", str(m)]
    assert main(label[:1] + [f"npz:{tmp_path / 'o.npz'}", "--weak", str(tmp_path / "wo.npz"), "-o", str(tmp_path / "p.npz")]
                + label[1:]) == 2
    assert f"made for scene {room.name!r} ({room.num_points} points), not" in capsys.readouterr().err
    manifest = json.loads((m / "masks.json").read_text())
    (m / "masks.json").write_text(json.dumps({k: v for k, v in manifest.items() if k not in ("scene_name", "num_points")}))
    weak.points(room, count=20, seed=0).save(tmp_path / "w.npz")
    mine = label[:1] + [f"npz:{tmp_path / 'r.npz'}", "--weak", str(tmp_path / "w.npz"), "-o", str(tmp_path / "q.npz")] + label[1:]
    assert main(mine) == 0  # an older manifest
    Image.fromarray(np.ones((10, 10), np.uint16)).save(m / f"{room.frames[0].name}.png")
    assert main(mine + ["--overwrite"]) == 2
    assert f"frame {room.frames[0].name}: a 10x10 mask map does not fit its" in capsys.readouterr().err


def test_masks_device_and_prompt_grid_are_checked_before_the_model_or_scene(room, tmp_path):
    """A device this machine lacks or a prompt grid past 256 per side is refused on entry,
    through the Python API (the CLI's cases are in the hostile-inputs table)."""
    import torch
    from pcweak.pseudo.mask_models import check_device, check_points_per_side, iter_sam_masks
    check_device("cpu")
    with pytest.raises(ValueError, match="device banana: not a torch device"):
        check_device("banana")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device cuda: this torch has no CUDA device"):
            next(iter_sam_masks(room, tmp_path / "no-model", device="cuda"))
    for bad in (0, 257, 2.5, True):
        with pytest.raises(ValueError, match=r"points_per_side must be an integer in \[1, 256\]"):
            check_points_per_side(bad)
    with pytest.raises(ValueError, match="points_per_side"):
        next(iter_sam_masks(room, tmp_path / "no-model", points_per_side=1000))


def test_box_nms_keeps_the_best_of_overlapping_boxes():
    import torch
    from pcweak.pseudo.mask_models import box_nms
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30], [0, 0, 10, 9]], dtype=torch.float32)
    keep = box_nms(boxes, torch.tensor([0.5, 0.9, 0.3, 0.8]), 0.7)
    assert keep.tolist() == [1, 2]  # 0 and 3 overlap box 1 by > 0.7; 2 is apart


def test_a_model_that_is_not_there_is_refused_before_the_scene_is_read(room, tmp_path, capsys, monkeypatch):
    """`pcweak masks` and `bench lift` check their models' configurations first: a mistyped
    model stops them before a scene (or the bench's other rows) is read."""
    from pcweak.data import address
    from pcweak.bench import lift

    def no_reading(*a, **k):
        raise AssertionError("the scene was read")
    (tmp_path / "sam").mkdir()  # a folder without a model
    scene = tmp_path / "scene.npz"
    scene.write_bytes(b"")  # there, though never read
    monkeypatch.setattr(address, "load_scene", no_reading)
    assert main(["masks", f"npz:{scene}", "--sam", str(tmp_path / "sam"), "-o", str(tmp_path / "m")]) == 2
    assert "--sam: cannot load" in capsys.readouterr().err
    assert main(["masks", f"npz:{scene}", "--sam", str(tmp_path / "none"), "-o", str(tmp_path / "m")]) == 2
    assert f"--sam: model folder {tmp_path / 'none'} not found" in capsys.readouterr().err
    # a scene that is not there is named first: a model check may reach for the network
    gone = tmp_path / "gone" / "scene0000_00"
    for bad, named in ((f"npz:{tmp_path / 'gone.npz'}", tmp_path / "gone.npz"), (f"scannet:{gone}", gone),
                       (f"kitti:{tmp_path / 'training' / '000001'}", tmp_path / "training" / "velodyne" / "000001.bin")):
        assert main(["masks", bad, "--sam", str(tmp_path / "none"), "-o", str(tmp_path / "m")]) == 2
        err = capsys.readouterr().err
        assert f"{named}: not found (scene address {bad!r} is read from it)" in err and "--sam" not in err
    monkeypatch.setattr(lift, "_scenes", no_reading)
    with pytest.raises(FileNotFoundError, match="--param sam: cannot load"):
        lift.run(sam=str(tmp_path / "sam"), shared=str(_fake_shared(tmp_path)))
    with pytest.raises(ValueError, match="--param vlm: scores SAM's masks"):
        lift.run(vlm=str(tmp_path / "sam"))
    with pytest.raises(FileNotFoundError, match="which shared= leaves out"):
        lift.run(sam=str(tmp_path / "sam"), shared="")


def test_a_model_of_another_kind_or_damaged_weights_is_refused_by_its_option(room, tiny_sam, tiny_clip, tmp_path, capsys):
    """A CLIP folder given as --sam loaded into SAM's layers and failed mid-run ("'SizeDict' object
    has no attribute 'keys'"), a SAM folder as --vlm likewise; a truncated model.safetensors ended
    in safetensors' own traceback. Each is refused naming its option (the kinds before the scene
    is read)."""
    import shutil
    from pcweak.pseudo.mask_models import ModelUnavailable, sam_masks
    room.save(tmp_path / "r.npz")
    for models, needle in ((["--sam", str(tiny_clip)], f"--sam: {tiny_clip} is a 'clip' model, not Segment Anything"),
                           (["--sam", str(tiny_sam), "--vlm", str(tiny_sam)], f"--vlm: {tiny_sam} is a 'sam' model, not an "
                                                                                f"image-text model")):
        assert main(["masks", f"npz:{tmp_path / 'r.npz'}", *models, "-o", str(tmp_path / "m")]) == 2
        err = capsys.readouterr().err
        assert needle in err and "Traceback" not in err
    with pytest.raises(ModelUnavailable, match="is a 'clip' model, not Segment Anything"):
        sam_masks(room, tiny_clip, frames=[0])  # the Python API checks the same
    cut = tmp_path / "cut"
    shutil.copytree(tiny_sam, cut)
    w = cut / "model.safetensors"
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    assert main(["masks", f"npz:{tmp_path / 'r.npz'}", "--sam", str(cut), "--points-per-side", "2", "-o", str(tmp_path / "m2")]) == 2
    err = capsys.readouterr().err
    assert f"--sam: cannot load '{cut}'" in err and "Error while deserializing header" in err and "Traceback" not in err


def _fake_shared(tmp_path):
    """A folder laid out as the real samples' (../shared/data), the real scan's folder empty."""
    from pcweak.bench import lift
    (tmp_path / "shared" / lift.REAL_SCAN).mkdir(parents=True)
    return tmp_path / "shared"


def test_missing_transformers_names_the_extra(room, monkeypatch, tmp_path):
    from pcweak.pseudo import mask_models
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ImportError, match=r'the "models" extra of pcweak \(pip install -e "\.\[models\]"'):
        mask_models.sam_masks(room, tmp_path)
    room.save(tmp_path / "r.npz")
    assert main(["masks", f"npz:{tmp_path / 'r.npz'}", "--sam", str(tmp_path), "-o", str(tmp_path / "m")]) != 0


def test_bench_rows_from_models_and_a_frame_set_without_masks(room, tiny_sam, tiny_clip):
    """bench lift's model rows run on the tiny models; with SAM's default thresholds a random
    model keeps no mask, and lifting empty label maps is propagation alone."""
    from pcweak.bench.lift import _model_rows
    from pcweak.pseudo.propagate import propagate
    from pcweak.metrics import semantic_report
    r = _model_rows(room, str(tiny_sam), str(tiny_clip), 20, 1, 0, {}, {}, points_per_side=4)
    assert r["masks_per_frame"] == 0 and set(r) >= {"sam_masks", "sam_masks+scores", "sam_seconds_per_frame"}
    w = weak.points(room, count=20, seed=0)
    alone = propagate(room.coord, w.point_index, w.point_semantic, color=room.color, normal=room.normal,
                      segment=room.segment, num_classes=len(room.classes), classes=room.classes)
    assert r["sam_masks"] == round(semantic_report(room.semantic, alone.semantic, room.classes)["miou"], 4)


def test_masks_command_on_a_folder_of_scenes(room, tiny_sam, tiny_clip, tmp_path, capsys, monkeypatch):
    """``pcweak masks FOLDER -o MASKDIR``: one ``MASKDIR/<scene>/`` each, the model loaded once,
    a scene without frames named at the end and the others made; a rerun makes nothing again,
    one with other model settings is refused before any scene is read;
    ``pcweak label FOLDER --masks MASKDIR`` reads them; ``--masks IN`` scores each scene's
    ``IN/<scene>/`` and is refused before any work when one is missing."""
    import functools

    import pcweak
    from pcweak.pseudo import mask_models
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    for name in ("a", "b"):
        room.save(scenes / f"{name}.npz")
    pcweak.Scene(name="c", coord=room.coord).save(scenes / "c.npz")  # no frames: nothing to make masks on
    loads, seen = [], []
    real_load, real_sam = mask_models._load_now, mask_models.iter_sam_masks
    monkeypatch.setattr(mask_models, "_load_now", lambda cls, *a: (loads.append(cls.__name__), real_load(cls, *a))[1])


    @functools.wraps(real_sam)
    def sam(scene, model, frames, **kw):
        seen.append(list(frames))
        return real_sam(scene, model, frames, **kw)
    monkeypatch.setattr(mask_models, "iter_sam_masks", sam)
    argv = ["masks", str(scenes), "--sam", str(tiny_sam), "--points-per-side", "2", "-o", str(tmp_path / "m")]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert json.loads(out.strip().splitlines()[-1])["scenes"] == 2
    assert "1 of the 3 scenes could not be given masks (c: " in err and "no RGB-D frames" in err
    assert loads.count("SamModel") == 1 and len(seen) == 2
    a, b = (sorted((tmp_path / "m" / n).glob("*.png")) for n in ("a", "b"))
    assert len(a) == len(room.frames) and [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    (scenes / "c.npz").unlink()
    assert main(argv) == 0 and all(frames == [] for frames in seen[2:])  # every frame already made
    capsys.readouterr()
    calls = len(seen)
    assert main([*argv[:-4], "--points-per-side", "3", "-o", str(tmp_path / "m")]) == 2  # refused before any scene is read
    assert ("the mask folders of 2 of the 2 scenes hold masks made with other settings (points_per_side differ; a, b); "
            "pass --overwrite") in capsys.readouterr().err and len(seen) == calls
    for name in ("a", "b"):
        weak.points(room, count=20, seed=0).save(tmp_path / f"{name}.weak.npz")
    (tmp_path / "w").mkdir()
    for name in ("a", "b"):
        (tmp_path / f"{name}.weak.npz").rename(tmp_path / "w" / f"{name}.npz")
    assert main(["label", str(scenes), "--weak", str(tmp_path / "w"), "--method", "lift-masks", "--masks", str(tmp_path / "m"),
                 "-o", str(tmp_path / "p")]) == 0
    assert np.array_equal(pcweak.PseudoLabels.load(tmp_path / "p" / "a.npz").semantic,
                          pcweak.PseudoLabels.load(tmp_path / "p" / "b.npz").semantic)
    assert main(["masks", str(scenes), "--masks", str(tmp_path / "m"), "--vlm", str(tiny_clip), "-o", str(tmp_path / "s")]) == 0
    assert np.load(tmp_path / "s" / "a" / "scores.npy").shape[1] == len(room.classes)
    capsys.readouterr()
    room.save(scenes / "d.npz")
    assert main(["masks", str(scenes), "--masks", str(tmp_path / "m"), "--vlm", str(tiny_clip), "-o", str(tmp_path / "s")]) == 2
    assert ("a folder of scenes takes one <scene>/ mask folder each (pcweak masks FOLDER writes them); 1 of the 3 scenes "
            "have none (d)") in capsys.readouterr().err
    assert not (tmp_path / "s" / "d").exists()
    (tmp_path / "w" / "d.npz").write_bytes((tmp_path / "w" / "a.npz").read_bytes())
    assert main(["label", str(scenes), "--weak", str(tmp_path / "w"), "--method", "lift-masks", "--masks", str(tmp_path / "m"),
                 "-o", str(tmp_path / "p")]) == 2  # refused before any scene is labelled, not after the work
    assert "1 of the 3 scenes have none (d)" in capsys.readouterr().err and not (tmp_path / "p" / "d.npz").exists()


def test_a_folder_stops_at_a_model_that_cannot_be_loaded(room, tiny_sam, tmp_path, capsys):
    """Weights that cannot be loaded (the folder's configuration reads, so the command starts)
    fail every scene alike: a folder stops at the first, with the model's error, instead of
    reading every scan to name each one."""
    import shutil
    sam = tmp_path / "sam"
    shutil.copytree(tiny_sam, sam)
    (sam / "model.safetensors").unlink()
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    for name in ("a", "b"):
        room.save(scenes / f"{name}.npz")
    assert main(["masks", str(scenes), "--sam", str(sam), "--points-per-side", "2", "-o", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "--sam: cannot load" in err and "scenes could not be given masks" not in err
    assert not (tmp_path / "m" / "b").exists()


def test_a_manifest_that_is_not_an_object_is_read_as_unreadable(room, tmp_path):
    """A masks.json holding a JSON list (hand-edited, another tool's) ended label and masks in an
    AttributeError: label checks nothing against it, masks reads it as made under other settings."""
    import argparse
    from pcweak.cli.masks import _mask_settings_changed
    from pcweak.pseudo.mask_sources import MANIFEST, check_made_for, write_mask_folder
    maps = [(0, np.ones(room.frames[0].depth.shape, np.int64))]
    write_mask_folder(tmp_path, room, maps)
    (tmp_path / MANIFEST).write_text("[1, 2]")
    check_made_for(tmp_path, room)  # nothing to check
    old, changed = _mask_settings_changed(tmp_path, {"scene": "a", "sam": "b"})
    assert old == {"scene": None, "sam": None} and changed == ["sam", "scene"]
