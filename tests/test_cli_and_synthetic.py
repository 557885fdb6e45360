import json
import subprocess
import sys

import numpy as np
import pytest

from pcweak.cli import main
from pcweak.data.synthetic_indoor import synthetic_room

from .conftest import shared_path


def run(args, capsys):
    rc = main(args)
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.realdata
def test_info_kitti_000001(capsys):
    root = shared_path("kitti", "training")
    rc, out, _ = run(["info", f"kitti:{root}/000001", "--compact"], capsys)
    info = json.loads(out)
    assert rc == 0 and info["points"] == 120268
    assert [b["class"] for b in info["boxes"]] == ["Truck", "Car", "Cyclist"]
    assert info["frames"] == 1 and info["calib"] is True


def test_running_out_of_memory_is_one_line(monkeypatch, capsys):
    """A MemoryError (numpy's "Unable to allocate ...", a scan too large for the machine) ends a
    command with one line, exit status 2, no traceback."""
    from pcweak.data import address

    def too_large(*a, **k):
        raise MemoryError("Unable to allocate 48.3 GiB for an array with shape (36000000, 480, 3) and data type uint8")
    monkeypatch.setattr(address, "load_scene", too_large)
    assert main(["info", "synthetic:1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pcweak info: error: out of memory (Unable to allocate 48.3 GiB") and "available now" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_info_lists_the_scenes_of_a_folder(tmp_path, room, capsys):
    from dataclasses import replace
    from pcweak.data.scannet import write_scannet
    for name in ("scene0002_00", "scene0001_00"):
        write_scannet(replace(room, name=name), tmp_path / "data")
    rc, out, _ = run(["info", str(tmp_path / "data"), "--compact"], capsys)
    listing = json.loads(out)
    assert rc == 0 and listing["scenes"] == 2
    assert [e["name"] for e in listing["list"]] == ["scene0001_00", "scene0002_00"]
    assert all(e["address"] == f"scannet:{tmp_path / 'data' / 'scans' / e['name']}" for e in listing["list"])
    rc, out, _ = run(["info", listing["list"][0]["address"], "--compact"], capsys)  # one of them: its summary
    assert rc == 0 and json.loads(out)["points"] == room.num_points
    (tmp_path / "empty").mkdir()
    rc, _, err = run(["info", str(tmp_path / "empty")], capsys)
    assert rc == 2 and "no scenes found" in err


def test_a_scene_path_that_is_no_file_is_answered_with_the_address_its_folder_lists(tmp_path, room, capsys):
    """A KITTI frame ``training/000007``, an mmdetection3d scene ``points/scene0113_00`` or a scene
    file typed without its suffix is no file or folder of that name: the error names the address
    its folder lists for it; a name the folder does not hold gets the plain error."""
    scenes, split = tmp_path / "scenes", tmp_path / "kitti" / "training"
    scenes.mkdir()
    room.save(scenes / "a.npz")
    (split / "velodyne").mkdir(parents=True)
    np.random.default_rng(0).random((50, 4), dtype=np.float32).tofile(split / "velodyne" / "000007.bin")
    for typed, address, folder in ((scenes / "a", f"npz:{scenes / 'a.npz'}", scenes),
                                   (split / "000007", f"kitti:{split / '000007'}", split)):
        rc, _, err = run(["info", str(typed)], capsys)
        assert rc == 2 and f"no such file or folder; did you mean {address} (a scene of the folder {folder}" in err, err
        rc, _, _ = run(["info", address, "--compact"], capsys)  # the address named works
        assert rc == 0
    rc, _, err = run(["info", str(scenes / "b")], capsys)
    assert rc == 2 and err.strip().endswith("b': no such file or folder")


def test_simulate_and_errors(tmp_path, capsys):
    out = tmp_path / "w.npz"
    rc, text, _ = run(["simulate", "synthetic:1", "--weak", "points", "--count", "50", "--seed", "3", "-o", str(out)], capsys)
    assert rc == 0 and json.loads(text)["points"] == 50 and out.is_file()
    rc, _, err = run(["info", "kitti:/nonexistent/training/000000"], capsys)
    assert rc == 2 and "velodyne/000000.bin: LiDAR scan not found" in err
    rc, _, err = run(["info", "weird:thing"], capsys)
    assert rc == 2 and "expected DATASET:PATH" in err
    # -o naming no .npz file is a folder, given the scene's <scene>.npz as pcweak label writes it
    rc, text, _ = run(["simulate", "synthetic:1", "--weak", "points", "--count", "5", "-o", str(tmp_path / "weak")], capsys)
    assert rc == 0 and json.loads(text)["output"] == str(tmp_path / "weak" / "synthetic_1.npz")
    assert [f.name for f in (tmp_path / "weak").iterdir()] == ["synthetic_1.npz"]
    # a trailing separator says folder even where the name ends in .npz
    rc, text, _ = run(["simulate", "synthetic:1", "--weak", "points", "--count", "5", "-o", f"{tmp_path / 'v.npz'}/"], capsys)
    assert rc == 0 and json.loads(text)["output"] == str(tmp_path / "v.npz" / "synthetic_1.npz")
    rc, _, err = run(["info", str(tmp_path / "nothere")], capsys)
    assert rc == 2 and err.strip().endswith("nothere': no such file or folder")
    scenes = tmp_path / "scenes"
    synthetic_room(1).save(scenes / "room.npz")
    rc, _, err = run(["viz", str(scenes), "--png", str(tmp_path / "v.png")], capsys)  # one scene, not a folder
    assert rc == 2 and err.strip().endswith(f"scenes: a folder of 1 scene(s); viz shows one: give one of them, e.g. npz:{scenes / 'room.npz'}")
    rc, _, err = run(["simulate", "synthetic:1", "--weak", "points", "-o", str(out)], capsys)
    assert rc == 2 and "--weak points needs exactly one of --count N or --ratio R" in err


def test_simulate_a_folder_draws_each_scene_as_training_does_and_resumes(tmp_path, room, capsys):
    """``pcweak simulate FOLDER -o OUT``: ``OUT/<scene>.npz`` per scene, each drawn with its own
    seed made from ``--seed`` and its name, the very labels indoor training simulates; a rerun
    keeps them, another setting draws again; a scene without ground truth is named at the end
    and the others written."""
    import pcweak
    from pcweak.train.datamodule import weak_for
    scenes, out = tmp_path / "scenes", tmp_path / "weak"
    scenes.mkdir()
    for name in ("a", "b"):
        room.save(scenes / f"{name}.npz")
    pcweak.Scene(name="c", coord=room.coord).save(scenes / "c.npz")  # a bare scan: nothing to draw from
    argv = ["simulate", str(scenes), "--weak", "points", "--count", "30", "--seed", "2", "-o", str(out)]
    rc, text, err = run(argv, capsys)
    assert rc == 2 and json.loads(text)["simulated"] == 2 and "1 of the 3 scenes could not be simulated (c: " in err
    a, b = (pcweak.WeakLabels.load(out / f"{n}.npz") for n in ("a", "b"))
    assert np.array_equal(a.point_index, weak_for(room, "a", None, "points", 30, None, 2).point_index)
    assert len(b.point_index) == 30 and not np.array_equal(np.sort(a.point_index), np.sort(b.point_index))
    (scenes / "c.npz").unlink()
    rc, text, _ = run(argv, capsys)
    assert rc == 0 and json.loads(text) == {"simulated": 0, "skipped_existing": 2, "redone_other_inputs": 0, "output": str(out)}
    rc, text, _ = run([*argv[:-3], "3", "-o", str(out)], capsys)  # --seed 3
    assert rc == 0 and json.loads(text)["redone_other_inputs"] == 2
    assert not np.array_equal(pcweak.WeakLabels.load(out / "a.npz").point_index, a.point_index)
    rc, _, err = run([*argv[:-2], "-o", str(tmp_path / "w.npz")], capsys)
    assert rc == 2 and "one <scene>.npz each; give a folder" in err
    rc, _, err = run(["simulate", f"npz:{scenes / 'a.npz'}", "--weak", "points", "--count", "5", "-o", str(tmp_path / "w.npz"),
                      "--overwrite"], capsys)
    assert rc == 2 and "--overwrite goes with a folder of scenes" in err


def test_a_resumed_folder_job_checks_its_outputs_under_a_progress_bar(tmp_path, room, capsys, monkeypatch):
    """Before the bar of the work, a resumed folder job reads every existing output's
    fingerprint (thousands of scans take minutes): simulate and label do it through
    ``checking_outputs``, a bar over every scene of the folder."""
    from pcweak.cli import common, label, weak_files
    checked = []
    real = common.checking_outputs
    for module in (weak_files, label):
        monkeypatch.setattr(module, "checking_outputs",
                            lambda items, total, verb: (checked.append((verb, total)), real(items, total, verb))[1])
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    for name in ("a", "b", "c"):
        room.save(scenes / f"{name}.npz")
    for _ in range(2):  # made, then resumed: checked both times
        assert main(["simulate", str(scenes), "--weak", "points", "--count", "20", "-o", str(tmp_path / "w")]) == 0
        assert main(["label", str(scenes), "--weak", str(tmp_path / "w"), "--method", "nearest", "-o", str(tmp_path / "p")]) == 0
    assert checked == [("simulate", 3), ("label", 3)] * 2
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["skipped_existing"] == 3


def test_simulate_and_import_a_folder_in_worker_processes_write_the_same_files(tmp_path, room, capsys):
    """``--workers 2``: the scenes of a folder are drawn (simulate) or imported in two worker
    processes, and every file is byte for byte the one a single process writes; a scene refused
    in a worker is named at the end as in one process. ``--workers`` below 1, or with one scene,
    is refused before anything is read."""
    import pcweak
    scenes, tables = tmp_path / "scenes", tmp_path / "tables"
    scenes.mkdir()
    tables.mkdir()
    for name in ("a", "b", "d"):
        room.save(scenes / f"{name}.npz")
        (tables / f"{name}.csv").write_text(f"index,class\n{ord(name)},wall\n7,floor\n")
    pcweak.Scene(name="c", coord=room.coord).save(scenes / "c.npz")  # a bare scan: nothing to draw from
    for workers in ("1", "2"):
        rc, text, err = run(["simulate", str(scenes), "--weak", "masks2d", "--merge-prob", "0.2", "--seed", "4",
                             "-o", str(tmp_path / f"sim{workers}"), "--workers", workers], capsys)
        assert rc == 2 and json.loads(text)["simulated"] == 3 and "1 of the 4 scenes could not be simulated (c: " in err
        rc, text, err = run(["import", str(scenes), str(tables), "-o", str(tmp_path / f"imp{workers}"), "--workers", workers],
                            capsys)
        assert rc == 0 and json.loads(text)["imported"] == 3, err
    for kind in ("sim", "imp"):
        for name in ("a", "b", "d"):
            assert (tmp_path / f"{kind}1" / f"{name}.npz").read_bytes() == (tmp_path / f"{kind}2" / f"{name}.npz").read_bytes()
    rc, _, err = run(["simulate", str(scenes / "a.npz"), "--weak", "points", "--count", "5", "-o", str(tmp_path / "w.npz"),
                      "--workers", "2"], capsys)
    assert rc == 2 and "--workers goes with a folder of scenes" in err and not (tmp_path / "w.npz").exists()
    rc, _, err = run(["import", str(scenes), str(tables), "-o", str(tmp_path / "imp0"), "--workers", "0"], capsys)
    assert rc == 2 and "--workers must be at least 1, got 0" in err and not (tmp_path / "imp0").exists()


def test_label_a_folder_labels_the_scenes_that_have_weak_labels(tmp_path, room, capsys):
    """Annotations often cover part of a dataset: ``pcweak label FOLDER --weak W`` labels the
    scenes with a ``W/<scene>.npz`` and names the others in a warning; a ``W`` that holds none of
    them, or one file for several scenes, is refused before any is read."""
    scenes, weak, out = tmp_path / "scenes", tmp_path / "weak", tmp_path / "pseudo"
    scenes.mkdir()
    for name in ("a", "b", "c"):
        room.save(scenes / f"{name}.npz")
    assert main(["simulate", str(scenes), "--weak", "points", "--count", "30", "-o", str(weak)]) == 0
    (weak / "b.npz").unlink()
    capsys.readouterr()
    for method in ("nearest", "model-walk"):
        argv = ["label", str(scenes), "--weak", str(weak), "--method", method, "-o", str(out)]
        if method == "model-walk":  # refused for want of a checkpoint: the weak folder is checked first
            argv += ["--ckpt", str(tmp_path / "none.ckpt")]
            rc, _, err = run(argv, capsys)
            assert rc == 2 and "1 of the 3 scenes" in err and "none.ckpt" in err
            continue
        rc, text, err = run(argv, capsys)
        assert rc == 0 and json.loads(text)["labelled"] == 2 and json.loads(text)["without_weak"] == 1
        assert "1 of the 3 scenes of" in err and "have no weak-label file and are not labelled, e.g. ['b']" in err
    assert sorted(f.name for f in out.iterdir()) == ["a.npz", "c.npz"]
    (tmp_path / "empty").mkdir()
    rc, _, err = run(["label", str(scenes), "--weak", str(tmp_path / "empty"), "-o", str(out)], capsys)
    assert rc == 2 and "no weak-label file for any of the 3 scenes" in err
    rc, _, err = run(["label", str(scenes), "--weak", str(weak / "a.npz"), "-o", str(out)], capsys)
    assert rc == 2 and "one weak-label file for the 3 scenes" in err
    # one scene of the folder reads its file from the folders the folder's jobs wrote
    rc, text, _ = run(["evaluate", str(scenes / "a.npz"), "--pseudo", str(out), "--json"], capsys)
    assert rc == 0 and json.loads(text)["miou"] == json.loads(run(["evaluate", str(scenes / "a.npz"), "--pseudo",
                                                                   str(out / "a.npz"), "--json"], capsys)[1])["miou"]
    assert run(["viz", str(scenes / "c.npz"), "--pseudo", str(out), "--weak", str(weak), "--png", str(tmp_path / "c.png")],
               capsys)[0] == 0
    rc, _, err = run(["evaluate", str(scenes / "b.npz"), "--pseudo", str(out)], capsys)
    assert rc == 2 and err.strip().endswith(f"--pseudo {out}: a folder without b.npz, the file of scene {scenes / 'b.npz'}")


def test_import_pcweak_loads_no_torch_until_an_api_name_needs_it():
    """``import pcweak`` (and every ``pcweak`` command, ``--help`` and ``info`` included) does
    not pay for torch and scipy (about 1 s) before a name that needs them is used."""
    code = ("import sys, pcweak; assert 'torch' not in sys.modules and 'scipy' not in sys.modules, 'eager'; "
            "assert set(pcweak.__all__) <= set(dir(pcweak)); "
            "import pcweak.cli.parser; pcweak.cli.parser.build_parser(); "
            "assert 'torch' not in sys.modules, 'cli'; "
            "from pcweak import label, Scene, PcweakError; from pcweak.pseudo.registry import label as l2; "
            "assert label is l2 and pcweak.label is l2 and pcweak.Scene is Scene; "
            "assert 'torch' in sys.modules; "
            "missing = [n for n in pcweak.__all__ if getattr(pcweak, n, None) is None]; assert not missing, missing")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    r = subprocess.run([sys.executable, "-c", "import pcweak; pcweak.no_such_name"], capture_output=True, text=True,
                       timeout=60)
    assert "AttributeError: module 'pcweak' has no attribute 'no_such_name'" in r.stderr


def test_a_reader_that_closes_the_output_early_ends_the_command_quietly(tmp_path):
    """``pcweak info S | head -1``: the reader closes the pipe, and the command ends as one
    killed by SIGPIPE would (141), without an error line; a pipe that breaks elsewhere stays an
    error (one line, status 2)."""
    import os
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        r = subprocess.run([sys.executable, "-m", "pcweak.cli", "info", "synthetic:0"], stdout=write_end,
                           stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert (r.returncode, r.stderr) == (141, "")
    r = subprocess.run([sys.executable, "-c", "import sys, unittest.mock as m, pcweak.cli as c; "
                        "m.patch('pcweak.cli.parser.cmd_info', side_effect=BrokenPipeError(32, 'Broken pipe')).start(); "
                        "sys.exit(c.main(['info', 'synthetic:0']))"], capture_output=True, text=True, timeout=120)
    assert (r.returncode, r.stderr.strip()) == (2, "pcweak info: error: [Errno 32] Broken pipe"), r.stderr[-2000:]


@pytest.mark.slow
def test_console_script_demo(tmp_path):
    """The whole demo, with one training epoch per run on two rooms (make demo trains 30 on 8)."""
    exe = [sys.executable, "-m", "pcweak.cli"]
    r = subprocess.run(exe + ["demo", "--out", str(tmp_path), "--epochs", "1", "--rooms", "2"], capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "synthetic room (procedural, not a real scan)" in r.stdout
    assert (tmp_path / "weak_points200.npz").is_file()
    for run in ("a_points200", "b_points200+propagation", "c_full_labels"):
        assert f"trained {run}" in r.stdout
    assert "pseudo-labels[propagate]: 100%" in r.stderr and " 2/2 [" in r.stderr  # b's rooms: --rooms 2
    png = tmp_path / "pseudo_labels.png"
    assert png.is_file() or "PNG not rendered" in r.stdout
    # progress per stage, a short closing table (not a JSON dump), the full report in a file
    for step in ("1/5", "2/5", "3/5", "4/5", "5/5"):
        assert f"[demo] {step} " in r.stdout
    tail = r.stdout[r.stdout.index("pcweak demo: synthetic room"):]
    assert len(tail.splitlines()) < 20 and "c_full_labels" in tail and "report.json" in tail and "{" not in tail
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report["training"]) == {"a_points200", "b_points200+propagation", "c_full_labels"}
    assert report["training_setup"] == {"epochs": 1, "rooms": 2, "validation_rooms": 2}
    assert "training: 1 epoch on 2 synthetic rooms, validated on 2" in tail
    assert "Warning" not in r.stdout + r.stderr and "GPU available" not in r.stdout + r.stderr


def test_the_demo_refuses_rooms_it_would_not_train_on(tmp_path):
    from pcweak.demo import run_demo
    for kw, needle in (({"train_rooms": 0}, "train_rooms must be an integer >= 1, got 0"),
                       ({"train_rooms": 2, "train_epochs": 0}, "train_epochs 0 trains nothing")):
        with pytest.raises(ValueError, match=needle):
            run_demo(out_dir=tmp_path / "demo", **kw)
    assert not (tmp_path / "demo").exists()


def test_synthetic_room_is_deterministic_and_consistent():
    a, b = synthetic_room(11, n_frames=2), synthetic_room(11, n_frames=2)
    np.testing.assert_array_equal(a.coord, b.coord)
    np.testing.assert_array_equal(a.frames[1].depth, b.frames[1].depth)
    assert not np.array_equal(a.coord[:100], synthetic_room(12, n_frames=0).coord[:100])
    assert 30_000 < a.num_points < 200_000
    # segments never cross instances
    pairs = np.unique(np.stack([a.segment, a.instance]), axis=1)
    assert pairs.shape[1] == len(np.unique(a.segment))
    # the rendered depth agrees with the sampled surface: most points in view are visible
    from pcweak.camera import visible_points
    vis, _, _ = visible_points(a.coord, a.frames[0])
    assert vis.sum() > 2000
    assert a.meta["synthetic"] is True
