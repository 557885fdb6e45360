"""Hostile and mistaken inputs: each is refused with one message naming the file or setting
(exit 2, no traceback) or read as documented; none silently changes data. The table at the end
is the bulk; the named tests prove one fix each (stale output, code execution from files,
silent misreads, memory, unclear errors)."""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import pcweak
from pcweak import weak
from pcweak.cli import main
from pcweak.data.synthetic_indoor import synthetic_room

ROOT = Path(__file__).resolve().parents[1]
DEMO = str(ROOT / "configs" / "demo.yaml")


@pytest.fixture(scope="module")
def small():
    """A small synthetic room (cached for the module: treat as read-only)."""
    return synthetic_room(5, density=150.0, n_frames=2, frame_size=(60, 80))


@pytest.fixture
def files(tmp_path, small):
    """A scene file, its points and box weak labels, in ``tmp_path``."""
    scene = tmp_path / "room.npz"
    small.save(scene)
    weak.points(small, count=30, seed=0).save(tmp_path / "points.npz")
    weak.boxes(small, seed=0).save(tmp_path / "boxes.npz")
    return tmp_path


def refused(argv: list[str], capsys, *needles: str) -> str:
    """Run the CLI; it must exit 2 with one message holding every needle and no traceback."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, f"exit {code}: {err[-1500:]}"
    assert "Traceback" not in err and "usage:" not in err  # one message, not a usage dump
    for n in needles:
        assert n in err, f"{n!r} not in {err[-1500:]!r}"
    return err


# ---------------------------------------------------------------------------- a folder with one bad scene


@pytest.mark.parametrize("workers", [1, 2])
def test_a_bad_scene_in_a_folder_is_named_and_the_others_are_labelled(tmp_path, small, capsys, workers):
    """One damaged scene among three (a truncated npz) and one weak file for another scene: both
    are named in one message at the end, exit 2, the good scene is written; once the files are
    fixed the same command labels only those two."""
    scenes, weaks, out = tmp_path / "scenes", tmp_path / "weak", tmp_path / "out"
    for i in (1, 2, 3):
        small.save(scenes / f"room{i}.npz")
        weak.points(small, count=10, seed=i).save(weaks / f"room{i}.npz")
    good = (scenes / "room2.npz").read_bytes()
    (scenes / "room2.npz").write_bytes(good[:1000])
    other = synthetic_room(6, density=150.0, n_frames=0)
    weak.points(other, count=10, seed=0).save(weaks / "room3.npz")
    args = ["label", str(scenes), "--weak", str(weaks), "-o", str(out), "--method", "nearest", "--workers", str(workers)]
    err = refused(args, capsys, "2 of the 3 scenes could not be labelled (room2: ", "room2.npz: not a readable .npz file",
                  "room3: ", "the other 1 is labelled", "run the same command again")
    assert "room1:" not in err and sorted(p.name for p in out.iterdir()) == ["room1.npz"]
    (scenes / "room2.npz").write_bytes(good)
    weak.points(small, count=10, seed=3).save(weaks / "room3.npz")
    assert main(args) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["labelled"] == 2 and rep["skipped_existing"] == 1 and "failed" not in rep


# ---------------------------------------------------------------------------- stale output


def test_stale_output_is_relabelled_not_served(files, small, capsys):
    """An existing output is skipped only when made from the same inputs; another weak file,
    method, parameter or scene relabels it."""
    out = files / "p.npz"
    base = ["label", f"npz:{files / 'room.npz'}", "-o", str(out)]
    assert main(base + ["--weak", str(files / "points.npz")]) == 0
    first = out.read_bytes()
    assert f"pcweak label: npz:{files / 'room.npz'} with propagate ..." in capsys.readouterr().err  # one scene: what runs
    assert main(base + ["--weak", str(files / "points.npz")]) == 0
    got = capsys.readouterr()
    assert json.loads(got.out)["skipped_existing"] == 1 and out.read_bytes() == first and "with propagate" not in got.err
    weak.points(small, count=30, seed=1).save(files / "other.npz")
    for extra in (["--weak", str(files / "other.npz")], ["--weak", str(files / "points.npz"), "--method", "nearest"],
                  ["--weak", str(files / "points.npz"), "--param", "solver.alpha=0.8"]):
        before = out.read_bytes()
        assert main(base + extra) == 0
        rep = json.loads(capsys.readouterr().out)
        assert rep["skipped_existing"] == 0 and rep["redone_other_inputs"] == 1 and out.read_bytes() != before
    fp = json.loads(pcweak.PseudoLabels.load(out).fingerprint)
    assert fp["params"]["solver"]["alpha"] == 0.8 and fp["method"] == "propagate" and len(fp["weak_sha256"]) == 64
    # the same scene file rewritten (another scene at the same path) is another input too
    other = synthetic_room(6, density=150.0, n_frames=0)
    weak.points(other, count=30, seed=0).save(files / "points6.npz")
    other.save(files / "room.npz")
    assert main(base + ["--weak", str(files / "points6.npz"), "--param", "solver.alpha=0.8"]) == 0
    assert pcweak.PseudoLabels.load(out).num_points == other.num_points


def _layouts(root: Path, room, lidar) -> dict[str, tuple[str, Path]]:
    """``room`` (and the LiDAR frame ``lidar``) written in every on-disk layout pcweak reads:
    kind -> (address, the file holding its points)."""
    from pcweak.data.kitti import write_kitti
    from pcweak.data.ply import write_ply
    from pcweak.data.s3dis import write_s3dis
    from pcweak.data.scannet import write_scannet
    rgb = np.hstack([room.coord, np.round(room.color * 255)]).astype(np.float32)
    out = {"npz": (f"npz:{root / 'room.npz'}", root / "room.npz"), "ply": (f"ply:{root / 'room.ply'}", root / "room.ply")}
    room.save(root / "room.npz")
    write_ply(room, root / "room.ply")
    laspy = pytest.importorskip("laspy")
    las = laspy.LasData(laspy.LasHeader(point_format=6, version="1.4"))
    las.x, las.y, las.z = room.coord.astype(np.float64).T
    las.write(str(root / "room.laz"))
    out["las"] = (f"las:{root / 'room.laz'}", root / "room.laz")
    pye57 = pytest.importorskip("pye57")
    e57 = pye57.E57(str(root / "room.e57"), mode="w")
    xyz = room.coord.astype(np.float64)
    e57.write_scan_raw({"cartesianX": xyz[:, 0], "cartesianY": xyz[:, 1], "cartesianZ": xyz[:, 2]})
    e57.close()
    out["e57"] = (f"e57:{root / 'room.e57'}", root / "room.e57")
    from pcweak.data.pcd import write_pcd
    out["pcd"] = (f"pcd:{write_pcd(room, root / 'room.pcd')}", root / "room.pcd")
    np.savetxt(root / "room.txt", np.hstack([room.coord, np.zeros((room.num_points, 1)), np.round(room.color * 255)]), fmt="%g")
    np.savetxt(root / "room.labels", room.semantic % 8 + 1, fmt="%d")  # Semantic3D's labels beside its scan
    out["txt"] = (f"txt:{root / 'room.txt'}", root / "room.labels")
    scan = write_scannet(room, root / "scannet")
    out["scannet"] = (f"scannet:{scan}", scan / f"{scan.name}_vh_clean_2.ply")
    (root / "export").mkdir()
    np.save(root / "export" / "scene0002_00_vert_all.npy", rgb)
    out["scannet-export"] = (f"scannet-export:{root / 'export' / 'scene0002_00'}", root / "export" / "scene0002_00_vert_all.npy")
    for d in ("points", "semantic_mask"):
        (root / "mmdet3d" / d).mkdir(parents=True)
    rgb.tofile(root / "mmdet3d" / "points" / "scene0003_00.bin")
    np.zeros(room.num_points, np.int64).tofile(root / "mmdet3d" / "semantic_mask" / "scene0003_00.bin")
    out["mmdet3d-scannet"] = (f"mmdet3d-scannet:{root / 'mmdet3d' / 'scene0003_00'}",
                              root / "mmdet3d" / "semantic_mask" / "scene0003_00.bin")
    pc = root / "pointcept" / "scene0004_00"
    pc.mkdir(parents=True)
    np.save(pc / "coord.npy", room.coord.astype(np.float32))
    np.save(pc / "color.npy", np.round(room.color * 255).astype(np.uint8))
    out["pointcept-scannet"] = (f"pointcept-scannet:{pc}", pc / "coord.npy")
    s3 = write_s3dis(room, root / "s3dis")
    out["s3dis"] = (f"s3dis:{s3}", next((s3 / "Annotations").glob("*.txt")))
    velo = write_kitti(lidar, root / "kitti" / "training")
    out["kitti"] = (f"kitti:{root / 'kitti' / 'training' / '000000'}", root / "kitti" / "training" / "calib" / "000000.txt")
    seq = root / "semantickitti" / "sequences" / "00"
    (seq / "velodyne").mkdir(parents=True)
    (seq / "labels").mkdir()
    np.fromfile(velo, np.float32).tofile(seq / "velodyne" / "000000.bin")
    np.full(lidar.num_points, 40, np.uint32).tofile(seq / "labels" / "000000.label")
    out["semantickitti"] = (f"semantickitti:{seq / '000000'}", seq / "labels" / "000000.label")
    return out


def test_a_resumed_job_sees_a_changed_file_in_every_layout(tmp_path, small, capsys):
    """Each layout's scene identity covers the files its reader opens, whatever the address
    names (a folder, a file, or a scene id beside ``points/`` or ``velodyne/`` folders), so a
    rewritten labels, points or calibration file makes the resumed job label again instead of
    serving the old output."""
    from pcweak.data.address import DATASETS, load_scene, source_files
    from pcweak.data.synthetic_lidar import synthetic_lidar
    from pcweak.label_jobs import scene_identity
    layouts = _layouts(tmp_path, small, synthetic_lidar(0, azimuth_steps=300, beams=16))
    assert set(layouts) == set(DATASETS) - {"synthetic", "synthetic-lidar", "mmdet3d-s3dis", "pointcept-s3dis"}
    for kind, (address, changed) in layouts.items():
        load_scene(address)  # the layout is a readable one
        assert changed in source_files(address), (kind, source_files(address))
        before = scene_identity(address)
        with open(changed, "ab") as f:
            f.write(b"\0")
        assert scene_identity(address) != before, kind
    assert source_files("synthetic:3") == []
    # end to end: a points file rewritten in place under an mmdetection3d-style scene id
    address, points = layouts["scannet-export"]
    pts = np.hstack([small.coord, np.round(small.color * 255)]).astype(np.float32)
    np.save(points, pts)
    weak.points(small, count=20, seed=0).save(tmp_path / "w.npz")
    base = ["label", address, "--weak", str(tmp_path / "w.npz"), "--method", "nearest", "-o", str(tmp_path / "p.npz")]
    assert main(base) == 0 and main(base) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["skipped_existing"] == 1
    np.save(points, pts[: len(pts) // 2])
    assert main(base) == 2  # the weak labels now point past the halved cloud: refused, not served
    assert "Traceback" not in capsys.readouterr().err
    np.save(points, pts + np.float32(0.5))
    assert main(base) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["redone_other_inputs"] == 1


def test_an_axis_alignment_file_is_part_of_the_job(tmp_path, small, capsys):
    """``--axis-align FILE``: another matrix in the same file relabels the scene. The output is
    written into the scan's own folder, which must not make the scene look changed."""
    from pcweak.data.scannet import write_scannet
    scan = write_scannet(small, tmp_path / "scannet")
    (scan / f"{scan.name}.txt").unlink()  # no alignment of its own: the file given decides
    weak.points(small, count=20, seed=0).save(tmp_path / "w.npz")
    axis = tmp_path / "axis.txt"
    np.savetxt(axis, np.eye(4))
    base = ["label", f"scannet:{scan}", "--weak", str(tmp_path / "w.npz"), "--method", "nearest",
            "--axis-align", str(axis), "-o", str(scan / "pseudo.npz")]
    assert main(base) == 0 and main(base) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["skipped_existing"] == 1
    shift = np.eye(4)
    shift[:3, 3] = (1.0, 2.0, 0.0)
    np.savetxt(axis, shift)
    assert main(base) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["redone_other_inputs"] == 1


# ---------------------------------------------------------------------------- code execution


class _Payload:
    """Unpickling this writes a marker file: proof that code from a data file ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "ran"))


def test_code_execution_from_a_checkpoint_is_refused(files, capsys):
    marker = files / "pwned"
    torch.save({"state_dict": {}, "hyper_parameters": _Payload(str(marker))}, files / "evil.ckpt")
    refused(["label", f"npz:{files / 'room.npz'}", "--method", "model", "--ckpt", str(files / "evil.ckpt"),
             "-o", str(files / "out.npz")], capsys, "--ckpt", "evil.ckpt", "could run code")
    assert not marker.exists()


def test_code_execution_from_a_training_checkpoint_is_refused(files, capsys):
    """`pcweak fit / validate / test / predict --ckpt_path`: Lightning reads the file; pcweak reads
    it first without unpickling code."""
    marker = files / "pwned"
    torch.save({"state_dict": {}, "hyper_parameters": _Payload(str(marker))}, files / "evil.ckpt")
    for command in ("predict", "fit"):
        refused([command, "--config", DEMO, "--ckpt_path", str(files / "evil.ckpt")], capsys,
                "--ckpt_path", "evil.ckpt", "could run code")
    (files / "resume.yaml").write_text(f"ckpt_path: {files / 'evil.ckpt'}\n")  # named by a config instead
    refused(["test", "--config", DEMO, "--config", str(files / "resume.yaml")], capsys, "evil.ckpt", "could run code")
    assert not marker.exists()


def test_code_execution_from_annotation_files_is_refused(tmp_path, small):
    from pcweak.data.scannet import read_limited_annotation
    from pcweak.errors import ReaderError
    marker = tmp_path / "pwned"
    torch.save({small.name: _Payload(str(marker))}, tmp_path / "points20.pth")
    with pytest.raises(ReaderError, match="points20.pth holds an object of type .*could run code"):
        read_limited_annotation(tmp_path / "points20.pth", small)
    np.save(tmp_path / "points20.npy", np.array({small.name: _Payload(str(marker))}, dtype=object), allow_pickle=True)
    with pytest.raises(ReaderError, match="points20.npy holds pickled Python objects"):
        read_limited_annotation(tmp_path / "points20.npy", small)
    assert not marker.exists()
    # the real files' plain content still loads
    torch.save({small.name: np.arange(5), "other": torch.arange(3)}, tmp_path / "plain.pth")
    assert read_limited_annotation(tmp_path / "plain.pth", small).point_index.tolist() == [0, 1, 2, 3, 4]


def test_code_execution_from_mmdet3d_infos_is_refused(tmp_path, small, capsys):
    import pickle
    marker = tmp_path / "pwned"
    (tmp_path / "points").mkdir()
    np.hstack([small.coord, small.color * 255]).astype(np.float32).tofile(tmp_path / "points" / "scene0001_00.bin")
    with open(tmp_path / "scannet_infos_train.pkl", "wb") as f:
        pickle.dump([{"point_cloud": {"lidar_idx": "scene0001_00"}, "annos": _Payload(str(marker))}], f)
    refused(["info", f"mmdet3d-scannet:{tmp_path}/scene0001_00"], capsys,
            "scannet_infos_train.pkl holds an object of type pathlib", "could run code")
    assert not marker.exists()


def test_infos_pickled_by_either_numpy_read_under_this_one(tmp_path):
    """mmdetection3d's infos are pickled by whichever numpy made them: numpy 1 names its array
    functions ``numpy.core...``, numpy 2 ``numpy._core...`` (and numpy 1 has no
    ``numpy._core.numeric``). Both spellings read, under either numpy."""
    import pickle
    from pcweak.safe_load import pickle_load
    infos = [{"annos": {"gt_boxes_upright_depth": np.arange(14, dtype=np.float32).reshape(2, 7),
                        "index": np.int64(3)}}]
    raw = pickle.dumps(infos, protocol=2)  # GLOBAL opcodes: "module\nname\n", no length to fix
    here = "numpy._core" if b"numpy._core.multiarray" in raw else "numpy.core"
    for spelling in ("numpy._core", "numpy.core"):
        f = tmp_path / f"{spelling}.pkl"
        f.write_bytes(raw.replace(f"c{here}.".encode(), f"c{spelling}.".encode()))
        assert f.read_bytes().count(f"c{spelling}.multiarray".encode()) >= 2
        got = pickle_load(f, "infos")
        assert np.array_equal(got[0]["annos"]["gt_boxes_upright_depth"], infos[0]["annos"]["gt_boxes_upright_depth"])
        assert got[0]["annos"]["index"] == 3
    got = pickle_load(_written(tmp_path / "p5.pkl", pickle.dumps(infos, protocol=5)), "infos")  # numpy's _frombuffer
    assert np.array_equal(got[0]["annos"]["gt_boxes_upright_depth"], infos[0]["annos"]["gt_boxes_upright_depth"])


def _written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_code_execution_from_a_training_config_is_refused(tmp_path, capsys):
    """A downloaded config naming any importable callable as the data, a callback or through
    a YAML tag is refused by the parser, never called; a class outside what configs may name
    (``lightning_cli.CONFIG_IMPORTS_ALLOWED``) is refused before its module is imported (``this``
    prints the Zen of Python when imported), and so is a LambdaCallback, which has Lightning call
    the functions the config names."""
    import sys
    marker = tmp_path / "pwned"
    not_named = "is not a class or function a pcweak config may name"
    configs = {
        "data.yaml": (f"data:\n  class_path: os.system\n  init_args: {{command: 'touch {marker}'}}\n"
                      "model:\n  class_path: pcweak.tasks.SemanticSegmentation\n", f"data: os.system {not_named}"),
        "callback.yaml": (f"trainer:\n  callbacks:\n    - class_path: subprocess.Popen\n"
                          f"      init_args: {{args: [touch, '{marker}']}}\n", f"trainer.callbacks: subprocess.Popen {not_named}"),
        "tag.yaml": (f"model: !!python/object/apply:os.system ['touch {marker}']\n", "could not determine a constructor"),
        "module.yaml": ("trainer:\n  callbacks:\n    - class_path: this.Anything\n", f"this.Anything {not_named}"),
        "lambda.yaml": ("trainer:\n  callbacks:\n    - class_path: lightning.pytorch.callbacks.LambdaCallback\n"
                        "      init_args: {on_fit_start: subprocess.getoutput}\n", f"LambdaCallback {not_named}"),
    }
    for name, (text, needle) in configs.items():
        (tmp_path / name).write_text(text)
        refused(["fit", "--config", str(tmp_path / name), "--trainer.max_epochs", "0"], capsys, "pcweak fit: error:", needle)
    assert not marker.exists() and "this" not in sys.modules


# ---------------------------------------------------------------------------- silent misreads


def test_silent_misread_of_s3dis_columns(tmp_path):
    from pcweak.data.s3dis import read_s3dis
    from pcweak.errors import ReaderError
    room = tmp_path / "Area_1" / "office_1" / "Annotations"
    room.mkdir(parents=True)
    (room / "chair_1.txt").write_text("1 2 3\n4 5 6\n7 8 9\n10 11 12\n")  # 12 numbers: divisible by six
    with pytest.raises(ReaderError, match="chair_1.txt: no valid 'x y z r g b' lines"):
        read_s3dis(room.parent)
    (room / "chair_1.txt").write_text("1 2 3 10 20 30\n4 5 6 10 20 30 99\n7 8 9 10 20\n1 1 1 1 1 1\n")  # ragged, 24 numbers
    with pytest.warns(UserWarning, match="2 dropped"):
        s = read_s3dis(room.parent)
    assert s.coord.tolist() == [[1, 2, 3], [1, 1, 1]]  # the good lines, nothing re-flowed


def test_silent_misread_of_scannet_aggregation(tmp_path, small):
    from pcweak.data.scannet import read_scannet, write_scannet
    d = write_scannet(small, tmp_path)
    agg = next(d.glob("*.aggregation.json"))
    doc = json.loads(agg.read_text())
    k = next(i for i, g in enumerate(doc["segGroups"]) if len(g["segments"]) >= 1)
    kept = list(doc["segGroups"][k]["segments"])
    doc["segGroups"][k]["segments"] = kept + [10 ** 6]  # a segment segs.json does not have
    agg.write_text(json.dumps(doc))
    with pytest.warns(UserWarning, match=rf"object {k} .*names segments \[1000000\] .*its other segments are kept"):
        s = read_scannet(d, frames=False)
    assert (s.instance == k).sum() > 0  # the object keeps its real segments


def test_silent_misread_of_ply_labels_and_faces(tmp_path):
    from plyfile import PlyData, PlyElement

    from pcweak.data.ply import read_ply
    from pcweak.errors import ReaderError

    def write(name, label_type, labels, faces=None):
        v = np.zeros(4, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("label", label_type)])
        v["x"] = [0, 1, 0, 1]
        v["y"] = [0, 0, 1, 1]
        v["label"] = labels
        els = [PlyElement.describe(v, "vertex")]
        if faces is not None:
            f = np.zeros(len(faces), dtype=[("vertex_indices", "i4", (3,))])
            f["vertex_indices"] = faces
            els.append(PlyElement.describe(f, "face"))
        PlyData(els).write(str(tmp_path / name))
        return tmp_path / name
    with pytest.raises(ReaderError, match=r"property 'label' holds a non-integer label \(1.5 at vertex 1\)"):
        read_ply(write("f.ply", "f4", [1, 1.5, 2, 0]))
    s = read_ply(write("u.ply", "u1", [1, 255, 2, 0]))
    assert s.semantic.tolist() == [1, -1, 2, 0] and len(s.classes) == 3  # 255 = unlabelled, not class 255
    with pytest.raises(ReaderError, match=r"face 1 refers to vertex \[1, 2, 9\], outside \[0, 4\)"):
        read_ply(write("m.ply", "i4", [0, 1, 1, 0], faces=[[0, 1, 2], [1, 2, 9]]))


# ---------------------------------------------------------------------------- memory


def test_memory_of_a_deflate_bomb_is_never_spent(tmp_path, small):
    """A small weak file with a huge deflated extra member is refused from the zip directory."""
    path = tmp_path / "bomb.npz"
    weak.points(small, count=10, seed=0).save(path)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("junk.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": (600_000_000,)})
            zeros = bytes(1 << 24)
            for _ in range(600_000_000 // len(zeros) + 1):
                f.write(zeros)
    assert path.stat().st_size < 2_000_000
    import resource
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(pcweak.SceneError, match=r"unknown WeakLabels keys \['junk'\]"):
        pcweak.WeakLabels.load(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB: nothing was inflated


def test_memory_declared_sizes_are_checked_against_the_scene(tmp_path, small):
    path = tmp_path / "big.npz"
    w = weak.points(small, count=10, seed=0)
    arrays = w.to_arrays()
    arrays["point_index"] = np.zeros(small.num_points * 4, np.int64)  # more entries than the scene has points
    from pcweak.npzio import save_npz
    save_npz(path, arrays)
    with pytest.raises(pcweak.ReaderError, match=r"key 'point_index' declares \d+ bytes, more than"):
        pcweak.WeakLabels.load(path)


# ---------------------------------------------------------------------------- the table


def _npz(path: Path, **arrays) -> Path:
    from pcweak.npzio import save_npz
    save_npz(path, arrays)
    return path


def _label(t: Path, weak_file: Path, *extra: str, scene: str = "room.npz") -> list[str]:
    """``pcweak label``'s arguments: the scene file ``t / scene`` with ``weak_file``, writing
    ``t / o.npz``, then ``extra``."""
    return ["label", f"npz:{t / scene}", "--weak", str(weak_file), "-o", str(t / "o.npz"), *extra]


def _scene_arrays(small) -> dict:
    return small.to_arrays()


CASES = []


def case(name: str):
    def add(fn):
        CASES.append(pytest.param(fn, id=name))
        return fn
    return add


@case("reader-synthetic-negative-seed")
def _(t, s):  # numpy's "expected non-negative integer", naming nothing
    return ["info", "synthetic:-1"], ["synthetic:-1", "the seed must be an integer >= 0"]


@case("reader-address-without-path")
def _(t, s):  # read the working folder
    return ["info", "scannet:"], ["scene address 'scannet:': a path is missing after 'scannet:'"]


@case("reader-missing-npz")
def _(t, s):
    return ["info", f"npz:{t / 'nope.npz'}"], ["nope.npz", "not found"]


@case("reader-npz-not-a-zip")
def _(t, s):
    (t / "x.npz").write_text("hello")
    return ["info", f"npz:{t / 'x.npz'}"], ["x.npz", "not a readable .npz"]


@case("reader-npz-without-coord")
def _(t, s):
    return ["info", f"npz:{_npz(t / 'x.npz', name=np.array('a'))}"], ["x.npz", "no 'coord'"]


@case("reader-npz-nan-coord")
def _(t, s):
    a = _scene_arrays(s)
    a["coord"] = a["coord"].copy()
    a["coord"][3, 1] = np.nan
    return ["info", f"npz:{_npz(t / 'x.npz', **a)}"], ["coord"]


@case("reader-npz-meta-not-json")
def _(t, s):
    a = _scene_arrays(s)
    a["meta"] = np.array("{not json")
    return ["info", f"npz:{_npz(t / 'x.npz', **a)}"], ["x.npz", "'meta' is not JSON"]


@case("reader-npz-meta-a-list")
def _(t, s):
    a = _scene_arrays(s)
    a["meta"] = np.array("[1, 2]")
    return ["info", f"npz:{_npz(t / 'x.npz', **a)}"], ["x.npz", "'meta' is a JSON list, expected an object"]


@case("reader-npz-label-outside-classes")
def _(t, s):
    a = _scene_arrays(s)
    a["semantic"] = a["semantic"].copy()
    a["semantic"][0] = 99
    return ["info", f"npz:{_npz(t / 'x.npz', **a)}"], ["semantic"]


@case("reader-npz-class-named-twice")
def _(t, s):
    a = _scene_arrays(s)
    a["classes"] = np.array(list(s.classes[:-1]) + [s.classes[0]])
    return ["info", f"npz:{_npz(t / 'x.npz', **a)}"], ["x.npz: Scene[", f"classes: {s.classes[0]!r} named twice"]


@case("reader-npz-classes-one-name")
def _(t, s):  # a 0-d classes member: numpy's "iteration over a 0-d array" with a traceback
    a = _scene_arrays(s)
    a["classes"] = np.array("wall")
    return ["info", f"npz:{_npz(t / 'x.npz', **a)}"], ["x.npz: Scene[", "classes: an array of shape ()"]


@case("reader-npz-wrong-length")
def _(t, s):
    a = _scene_arrays(s)
    a["instance"] = a["instance"][:-3]
    return ["info", f"npz:{_npz(t / 'x.npz', **a)}"], ["instance"]


@case("reader-unknown-dataset")
def _(t, s):
    return ["info", "foo:bar"], ["foo:bar", "expected DATASET:PATH"]


@case("reader-synthetic-seed-not-integer")
def _(t, s):
    return ["info", "synthetic:abc"], ["seed must be an integer"]


@case("reader-ply-not-ply")
def _(t, s):
    (t / "x.ply").write_text("nonsense")
    return ["info", f"ply:{t / 'x.ply'}"], ["x.ply", "not a readable PLY"]


def _ascii_ply(path: Path, labels: list[int]) -> Path:
    rows = "".join(f"{i} {i % 3} {i % 5} {lab}\n" for i, lab in enumerate(labels))
    path.write_text(f"ply\nformat ascii 1.0\nelement vertex {len(labels)}\nproperty float x\nproperty float y\n"
                    f"property float z\nproperty int label\nend_header\n{rows}")
    return path


@case("reader-ply-label-below-none")
def _(t, s):  # "Scene[x].classes: semantic labels are given but the class list is empty", naming no file
    return ["info", f"ply:{_ascii_ply(t / 'x.ply', [-7] * 5)}"], ["x.ply: property 'label' holds -7 at vertex 0, below -1"]


@case("reader-ply-label-an-id")
def _(t, s):  # two billion placeholder classes made: minutes, then memory
    return ["info", f"ply:{_ascii_ply(t / 'x.ply', [0, 1, 2_000_000_000, 1])}"], \
        ["x.ply: property 'label' holds 2000000000 at vertex 2, above 4095"]


@case("reader-text-coordinate-beyond-float32")
def _(t, s):  # "Scene[x].coord: 3 entries are NaN or infinite", naming no file, for one value of 1e300
    (t / "x.xyz").write_text("1e300 0 0\n1 2 3\n2 3 4\n")
    return ["info", str(t / "x.xyz")], \
        [f"{t / 'x.xyz'}: Scene[x].coord: 1 points lie beyond what float32 holds (+-3.4e38; point 0 at [1e+300, 0.0, 0.0])"]


@case("reader-las-not-las")
def _(t, s):  # a point cloud saved as text under a LAS name
    (t / "x.laz").write_text("0 0 0\n1 1 1\n")
    return ["label", str(t / "x.laz"), "--weak", str(t / "points.npz"), "-o", str(t / "o.npz")], ["x.laz", "not a readable LAS/LAZ file"]


@case("reader-las-truncated")
def _(t, s):  # a copy cut at a whole point record: laspy reads what is there, without a word
    laspy = pytest.importorskip("laspy")
    las = laspy.LasData(laspy.LasHeader(point_format=3, version="1.2"))
    las.x, las.y, las.z = np.arange(10.0), np.zeros(10), np.zeros(10)
    las.write(str(t / "full.las"))
    raw = (t / "full.las").read_bytes()
    (t / "cut.las").write_bytes(raw[:-2 * las.header.point_format.size])
    return ["info", str(t / "cut.las")], ["cut.las", "holds 8 of the 10 points its header counts"]


@case("reader-las-longitude-latitude")
def _(t, s):  # degrees as x / y: every neighbourhood in metres would span the whole tile
    laspy = pytest.importorskip("laspy")
    from laspy.vlrs.known import GeoKeyDirectoryVlr
    header = laspy.LasHeader(point_format=1, version="1.2")
    keys = GeoKeyDirectoryVlr()
    keys.parse_record_data(np.array([1, 1, 0, 1, 1024, 0, 1, 2], "<u2").tobytes())  # model type: geographic
    header.vlrs.append(keys)
    header.scales = np.full(3, 1e-7)
    las = laspy.LasData(header)
    las.x, las.y, las.z = -77 + np.arange(10) * 1e-5, 40 + np.arange(10) * 1e-5, np.arange(10.0)
    las.write(str(t / "lonlat.las"))
    return ["info", str(t / "lonlat.las")], ["lonlat.las", "longitude / latitude in degrees", "reproject"]


@case("reader-las-zero-scale")
def _(t, s):  # every point read at one place (x = X * 0 + offset)
    laspy = pytest.importorskip("laspy")
    las = laspy.LasData(laspy.LasHeader(point_format=3, version="1.2"))
    las.x, las.y, las.z = np.arange(10.0), np.arange(10.0), np.zeros(10)
    las.write(str(t / "full.las"))
    raw = (t / "full.las").read_bytes()  # the x, y, z scale factors: three doubles at byte 131
    (t / "flat.las").write_bytes(raw[:131] + np.zeros(3).tobytes() + raw[155:])
    return ["info", str(t / "flat.las")], ["flat.las", "the header's x scale factor is 0.0", "a corrupt header"]


@case("reader-e57-zero-rotation")
def _(t, s):  # every point put at the station's position
    pye57 = pytest.importorskip("pye57")
    e57 = pye57.E57(str(t / "pose.e57"), mode="w")
    e57.write_scan_raw({"cartesianX": np.arange(5.0), "cartesianY": np.ones(5), "cartesianZ": np.zeros(5)}, rotation=np.zeros(4))
    e57.close()
    return ["info", str(t / "pose.e57")], ["pose.e57", "its pose's rotation [0.0, 0.0, 0.0, 0.0] is no rotation"]


@case("reader-kitti-missing-scan")
def _(t, s):
    (t / "training" / "velodyne").mkdir(parents=True)
    return ["info", f"kitti:{t / 'training' / '000007'}"], ["000007.bin", "not found"]


@case("reader-kitti-bad-scan-size")
def _(t, s):
    (t / "training" / "velodyne").mkdir(parents=True)
    (t / "training" / "velodyne" / "000007.bin").write_bytes(b"\0" * 10)
    return ["info", f"kitti:{t / 'training' / '000007'}"], ["000007.bin", "not a whole number"]


@case("reader-kitti-scan-with-trailing-bytes")
def _(t, s):  # the two extra bytes were dropped and the points read
    (t / "training" / "velodyne").mkdir(parents=True)
    (t / "training" / "velodyne" / "000007.bin").write_bytes(np.ones(8, np.float32).tobytes() + b"\0\0")
    return ["info", f"kitti:{t / 'training' / '000007'}"], ["000007.bin", "size 34 bytes", "16-byte"]


def _semantickitti_scan(t: Path, labels: np.ndarray) -> str:
    seq = t / "sequences" / "00"
    for d in ("velodyne", "labels"):
        (seq / d).mkdir(parents=True)
    np.random.default_rng(0).random((len(labels), 4)).astype(np.float32).tofile(seq / "velodyne" / "000000.bin")
    labels.astype(np.uint32).tofile(seq / "labels" / "000000.label")
    return f"semantickitti:{seq / '000000'}"


@case("reader-semantickitti-ids-of-another-label-set")
def _(t, s):  # every point read as unlabelled: simulate wrote a weak file of 0 points
    scan = _semantickitti_scan(t, np.r_[np.full(30, 40), np.full(20, 77)])
    return ["simulate", scan, "--weak", "points", "--count", "5", "-o", str(t / "w.npz")], \
        ["000000.label", "20 of 50 labels hold semantic ids SemanticKITTI does not define (77; the first at point 30)"]


@case("simulate-ground-truth-all-unlabelled")
def _(t, s):  # a weak file of 0 points, rc 0
    scan = _semantickitti_scan(t, np.zeros(50))
    return ["simulate", scan, "--weak", "points", "--count", "5", "-o", str(t / "w.npz")], \
        ["scene '00_000000'", "leave all 50 points unlabelled"]


@case("reader-scannet-segs-top-level-list")
def _(t, s):
    from pcweak.data.scannet import write_scannet
    d = write_scannet(s, t)
    next(d.glob("*.segs.json")).write_text("[1, 2, 3]")
    return ["info", f"scannet:{d}"], ["segs.json", "the top level is a list"]


@case("reader-scannet-segs-not-integers")
def _(t, s):
    from pcweak.data.scannet import write_scannet
    d = write_scannet(s, t)
    f = next(d.glob("*.segs.json"))
    doc = json.loads(f.read_text())
    doc["segIndices"][0] = 2.5
    f.write_text(json.dumps(doc))
    return ["info", f"scannet:{d}"], ["segs.json", "segIndices must be a list of integers (found 2.5)"]


@case("reader-scannet-aggregation-wrong-shape")
def _(t, s):
    from pcweak.data.scannet import write_scannet
    d = write_scannet(s, t)
    next(d.glob("*.aggregation.json")).write_text(json.dumps({"segGroups": {"a": 1}}))
    return ["info", f"scannet:{d}"], ["aggregation.json", "'segGroups' is a dict, expected a list"]


@case("reader-scannet-aggregation-segment-not-integer")
def _(t, s):
    from pcweak.data.scannet import write_scannet
    d = write_scannet(s, t)
    f = next(d.glob("*.aggregation.json"))
    doc = json.loads(f.read_text())
    doc["segGroups"][0]["segments"] = ["7"]
    f.write_text(json.dumps(doc))
    return ["info", f"scannet:{d}"], ["aggregation.json", "segGroups[0].segments must be a list of integers"]


@case("reader-scannet-segs-not-json")
def _(t, s):
    from pcweak.data.scannet import write_scannet
    d = write_scannet(s, t)
    next(d.glob("*.segs.json")).write_text("{oops")
    return ["info", f"scannet:{d}"], ["segs.json", "not readable JSON"]


@case("weak-unknown-key")
def _(t, s):
    a = weak.points(s, count=5, seed=0).to_arrays()
    a["extra"] = np.zeros(3)
    return _label(t, _npz(t / "w.npz", **a)), \
        ["w.npz", "unknown WeakLabels keys ['extra']"]


@case("weak-missing")
def _(t, s):
    return _label(t, t / "typo.npz"), \
        [f"--weak {t / 'typo.npz'}: no such file or folder"]


@case("weak-not-an-npz")
def _(t, s):
    (t / "w.npz").write_bytes(b"PK\x03\x04 broken")
    return _label(t, t / "w.npz"), ["w.npz"]


@case("weak-meta-not-json")
def _(t, s):
    a = weak.points(s, count=5, seed=0).to_arrays()
    a["meta"] = np.array("{")
    return _label(t, _npz(t / "w.npz", **a)), \
        [f"error: {t / 'w.npz'}: 'meta' is not JSON"]  # the file named once


@case("weak-box-of-negative-size")
def _(t, s):  # refused by gp-boxes without naming the file or the box
    a = weak.boxes(s, seed=0).to_arrays()
    a["box"] = a["box"].copy()
    a["box"][1, 4] = -0.5
    return _label(t, _npz(t / "w.npz", **a), "--method", "gp-boxes"), \
        ["w.npz: WeakLabels[", ".box: box 1 has sizes [", "-0.5", "sizes dx,dy,dz must be non-negative"]


@case("weak-for-another-scene")
def _(t, s):
    other = synthetic_room(8, density=150.0, n_frames=0)
    weak.points(other, count=5, seed=0).save(t / "w.npz")
    return _label(t, t / "w.npz"), ["points"]


@case("weak-negative-point-count")
def _(t, s):  # the member's size limit went negative: a KeyError and a traceback
    a = weak.boxes(s, seed=0).to_arrays()
    a["num_points"] = np.array(-s.num_points)
    return _label(t, _npz(t / "w.npz", **a)), ["w.npz: num_points is -", "expected the scene's point count"]


@case("weak-fractional-point-count")
def _(t, s):  # 58383.5 was read as 58383
    a = weak.points(s, count=5, seed=0).to_arrays()
    a["num_points"] = np.array(s.num_points + 0.5)
    return _label(t, _npz(t / "w.npz", **a)), [f"w.npz: num_points is {s.num_points}.5"]


@case("weak-index-out-of-range")
def _(t, s):
    a = weak.points(s, count=5, seed=0).to_arrays()
    a["point_index"] = a["point_index"].copy()
    a["point_index"][0] = s.num_points + 5
    return _label(t, _npz(t / "w.npz", **a)), \
        ["point_index"]


@case("weak-class-outside-list")
def _(t, s):
    a = weak.points(s, count=5, seed=0).to_arrays()
    a["point_semantic"] = a["point_semantic"].copy()
    a["point_semantic"][0] = 77
    return _label(t, _npz(t / "w.npz", **a)), \
        ["point_semantic"]


@case("weak-missing-what-the-labeller-consumes")
def _(t, s):
    return ["label", f"npz:{t / 'room.npz'}", "--weak", str(t / "points.npz"), "--method", "gp-boxes",
            "-o", str(t / "o.npz")], ["--method gp-boxes: the weak labels have no box"]


@case("weak-file-missing")
def _(t, s):
    return _label(t, t / "none.npz"), \
        ["--weak", "none.npz"]


@case("label-param-graph-k-zero")
def _(t, s):
    return _label(t, t / "points.npz", "--param", "graph.k=0", scene="nowhere.npz"), ["graph.k must be >= 1"]


@case("label-param-alpha-out-of-range")
def _(t, s):
    return _label(t, t / "points.npz", "--param", "solver.alpha=1.5", scene="nowhere.npz"), \
        ["solver.alpha must lie in (0, 1)"]


@case("label-param-unknown-solver")
def _(t, s):
    return _label(t, t / "points.npz", "--param", "solver.name=magic", scene="nowhere.npz"), \
        ["solver.name must be one of"]


@case("label-param-negative-colour-weight")
def _(t, s):  # the partition would join points the more their colours differ
    return _label(t, t / "points.npz", "--param", "partition.color_weight=-1", scene="nowhere.npz"), \
        ["partition.color_weight must be >= 0 (0 for off), got -1"]


@case("label-param-confidence-above-one")
def _(t, s):  # every label left out without a word
    return _label(t, t / "points.npz", "--param", "solver.min_confidence=1.5", scene="nowhere.npz"), \
        ["solver.min_confidence must lie in [0, 1], got 1.5"]


@case("label-param-negative-class-balance")
def _(t, s):  # the classes with the most seeds favoured
    return _label(t, t / "points.npz", "--param", "solver.class_balance=-0.5", scene="nowhere.npz"), \
        ["solver.class_balance must be >= 0 (0 for off), got -0.5"]


@case("label-param-frustum-fit-iou-in-percent")
def _(t, s):  # 85 for 0.85: every box moved to its image box
    return ["label", f"npz:{t / 'nowhere.npz'}", "--weak", str(t / "points.npz"), "--method", "boxes2d-frustum",
            "-o", str(t / "o.npz"), "--param", "image_fit_below=85"], ["image_fit_below must be an IoU in [0, 1] (0: off), got 85"]


@case("label-param-gp-iterations-zero")
def _(t, s):
    return ["label", f"npz:{t / 'nowhere.npz'}", "--weak", str(t / "boxes.npz"), "--method", "gp-boxes",
            "-o", str(t / "o.npz"), "--param", "iterations=0"], ["iterations must be an integer >= 1, got 0"]


@case("label-param-gp-inside-fraction")
def _(t, s):
    return ["label", f"npz:{t / 'nowhere.npz'}", "--weak", str(t / "boxes.npz"), "--method", "gp-boxes",
            "-o", str(t / "o.npz"), "--param", "inside_fraction=1.5"], ["inside_fraction must be a fraction"]


@case("masks-prompt-grid-without-sam")
def _(t, s):  # the existing masks scored, the grid dropped without a word
    return ["masks", f"npz:{t / 'nowhere.npz'}", "--masks", str(t), "--vlm", "x", "--points-per-side", "8",
            "-o", str(t / "m")], ["--points-per-side goes with --sam"]


@case("masks-frame-step")
def _(t, s):
    return ["masks", f"npz:{t / 'nowhere.npz'}", "--sam", "facebook/sam-vit-base", "--frame-step", "0", "-o", str(t / "m")], \
        ["--frame-step must be >= 1"]


@case("masks-device-missing")
def _(t, s):  # failed inside the model's .to() after the scene was read
    return ["masks", f"npz:{t / 'nowhere.npz'}", "--sam", "facebook/sam-vit-base", "--device", "banana", "-o", str(t / "m")], \
        ["--device banana: not a torch device"]


@case("masks-prompt-grid-huge")
def _(t, s):  # 25 million prompts per frame: ran for days
    return ["masks", f"npz:{t / 'nowhere.npz'}", "--sam", "facebook/sam-vit-base", "--points-per-side", "5000", "-o", str(t / "m")], \
        ["--points-per-side must be an integer in [1, 256]", "got 5000"]


@case("masks-nothing-to-do")
def _(t, s):
    return ["masks", f"npz:{t / 'nowhere.npz'}", "--masks", str(t), "-o", str(t / "m")], ["--masks DIR needs --vlm MODEL"]


@case("label-mask-scores-nan")
def _(t, s):  # NaN scores were taken, and the softmax spread them over every class of their masks
    from pcweak.pseudo.mask_sources import masks_from_weak, write_mask_folder
    maps = masks_from_weak(weak.masks2d(s, seed=0))
    scores = np.zeros((sum(int(m.max()) for _, m in maps), len(s.classes)))
    scores[0, 3] = np.nan
    write_mask_folder(t / "masks", s, maps, scores)
    return _label(t, t / "points.npz", "--method", "lift-masks", "--masks", str(t / "masks")), \
        [f"{t / 'masks' / 'scores.npy'}: 1 rows hold NaN or +inf"]


@case("label-param-nearest-k-vote")
def _(t, s):
    return ["label", f"npz:{t / 'nowhere.npz'}", "--weak", str(t / "points.npz"), "--method", "nearest",
            "-o", str(t / "o.npz"), "--param", "k_vote=0"], ["k_vote must be an integer >= 1"]


@case("label-param-lift-mask-link")
def _(t, s):
    return ["label", f"npz:{t / 'nowhere.npz'}", "--weak", str(t / "points.npz"), "--method", "lift-masks",
            "-o", str(t / "o.npz"), "--param", "mask_link=2"], ["mask_link must be a fraction in [0, 1]"]


@case("label-param-frustum-shrink")
def _(t, s):
    return ["label", f"npz:{t / 'nowhere.npz'}", "--weak", str(t / "points.npz"), "--method", "boxes2d-frustum",
            "-o", str(t / "o.npz"), "--param", "shrink=0.7"], ["shrink must be a fraction in [0, 0.5)"]


@case("label-param-unknown-name")
def _(t, s):
    return _label(t, t / "points.npz", "--param", "alpha=0.5", scene="nowhere.npz"), \
        ["--param alpha: propagate has no parameter 'alpha'; it takes partition.method"]


@case("label-param-wrong-type")
def _(t, s):
    return _label(t, t / "points.npz", "--param", "graph.bridge=maybe", scene="nowhere.npz"), \
        ["--param graph.bridge='maybe': propagate expects true or false"]


@case("label-param-not-finite")
def _(t, s):
    return _label(t, t / "points.npz", "--param", "graph.sigma_color=inf"), \
        ["--param graph.sigma_color=inf: propagate expects a finite number"]


@case("label-param-negative-weight")
def _(t, s):
    return _label(t, t / "points.npz", "--param", "graph.w_color=-1"), ["graph.w_color must be >= 0"]


@case("label-param-nan-for-a-labeller-without-config")
def _(t, s):
    return _label(t, t / "boxes.npz", "--method", "smallest-box", "--param", "margin=nan"), ["--param margin=nan"]


@case("label-boxes-of-another-frame")
def _(t, s):  # boxes 1 km away: gp-boxes labelled nothing without a word
    w = pcweak.WeakLabels.load(t / "boxes.npz")
    box = w.box.copy()
    box[:, 0] += 1000.0
    _npz(t / "far.npz", box=box, box_semantic=w.box_semantic, scene=np.array(w.scene), classes=np.array(w.classes))
    return _label(t, t / "far.npz", "--method", "gp-boxes"), \
        ["far.npz", "none of the", "boxes reaches the points of scene", "another scene or coordinate frame"]


@case("label-param-without-equals")
def _(t, s):
    return _label(t, t / "points.npz", "--param", "graph.k"), ["--param expects NAME=VALUE, got 'graph.k'"]


@case("label-unknown-method")
def _(t, s):
    return _label(t, t / "points.npz", "--method", "magic"), ["--method 'magic': expected one of"]


@case("label-workers-zero")
def _(t, s):
    return _label(t, t / "points.npz", "--workers", "0"), ["--workers must be at least 1"]


@case("label-workers-for-one-scene")
def _(t, s):  # simulate, import and evaluate refuse it; label took it and labelled in one process
    return _label(t, t / "points.npz", "--workers", "4"), \
        ["--workers goes with a folder of scenes (scenes labelled at once); one scene is labelled in this process"]


@case("label-checkpoint-for-a-method-without-a-model")
def _(t, s):  # labelled by propagation, the checkpoint unread
    return _label(t, t / "points.npz", "--ckpt", str(t / "last.ckpt")), \
        ["--ckpt goes with --method model or model-walk; --method propagate does not read it"]


@case("label-masks-for-a-method-without-masks")
def _(t, s):  # "--param masks: propagate has no parameter 'masks'; it takes ..." and fifty names
    return _label(t, t / "points.npz", "--masks", str(t)), ["--masks goes with --method lift-masks"]


@case("label-groups-for-a-method-without-groups")
def _(t, s):  # "--param groups: nearest has no parameter 'groups'", or read by nothing
    np.save(t / "groups.npy", np.zeros(s.num_points, np.int64))
    return _label(t, t / "points.npz", "--method", "nearest", "--groups", str(t / "groups.npy")), \
        ["--groups goes with --method propagate; --method nearest does not read it"]


@case("label-groups-of-another-scene")
def _(t, s):  # one id short: the walk's arrays would disagree deep inside a stage
    np.save(t / "groups.npy", np.zeros(s.num_points - 1, np.int64))
    return _label(t, t / "points.npz", "--groups", str(t / "groups.npy")), \
        ["groups.npy (proposals of scene", f"expected one proposal id per point, ({s.num_points},), got shape ({s.num_points - 1},)"]


@case("label-groups-pickled")
def _(t, s):  # np.load(allow_pickle=True) would run what the file says
    np.save(t / "groups.npy", np.array([{"ids": [1, 2]}], dtype=object))
    return _label(t, t / "points.npz", "--groups", str(t / "groups.npy")), ["groups.npy", "pickled Python objects"]


@case("label-model-with-reader-options")
def _(t, s):  # labelled by the model from the unaligned scene, the alignment dropped without a word
    (t / "align.txt").write_text("axisAlignment = 1 0 0 0 0 1 0 0 0 0 1 0 0 0 0 1\n")
    return ["label", f"scannet-export:{t / 'scene0000_00'}", "--method", "model", "--ckpt", str(t / "none.ckpt"),
            "--axis-align", str(t / "align.txt"), "-o", str(t / "o.npz")], \
        ["--axis-align: --method model reads its scenes as training does"]


@case("label-weak-for-the-model-alone")
def _(t, s):  # labelled by the model, the weak labels unread
    return ["label", f"npz:{t / 'room.npz'}", "--method", "model", "--ckpt", str(t / "none.ckpt"), "--weak",
            str(t / "points.npz"), "-o", str(t / "o.npz")], ["--weak: --method model labels from the checkpoint alone"]


@case("label-one-file-for-a-folder-of-scenes")
def _(t, s):  # a folder named out.npz, holding a file per scene
    (t / "scenes").mkdir()
    for i in range(2):
        s.save(t / "scenes" / f"room{i}.npz")
    return ["label", str(t / "scenes"), "--weak", str(t), "-o", str(t / "out.npz")], \
        ["out.npz:", "holds 2 scenes, written one <scene>.npz each; give a folder"]


@case("label-model-checkpoint-missing")
def _(t, s):
    return ["label", f"npz:{t / 'room.npz'}", "--method", "model", "--ckpt", str(t / "none.ckpt"),
            "-o", str(t / "o.npz")], ["--ckpt", "none.ckpt", "not found"]


@case("label-model-checkpoint-not-torch")
def _(t, s):
    (t / "bad.ckpt").write_bytes(b"not a checkpoint")
    return ["label", f"npz:{t / 'room.npz'}", "--method", "model", "--ckpt", str(t / "bad.ckpt"),
            "-o", str(t / "o.npz")], ["--ckpt", "bad.ckpt"]


@case("simulate-box-noise-nan-before-reading")
def _(t, s):  # the scene does not exist: the setting is refused before it is read
    return ["simulate", f"npz:{t / 'nope.npz'}", "--weak", "boxes", "--noise", "nan", "-o", str(t / "w.npz")], \
        ["boxes: noise must be a number >= 0, got nan"]


@case("import-table-without-a-class-column")
def _(t, s):  # a picking tool's list of coordinates, no class: nothing to seed
    (t / "picked.txt").write_text("x y z\n0.1 0.2 0.3\n")
    return ["import", f"npz:{t / 'room.npz'}", str(t / "picked.txt"), "-o", str(t / "w.npz")], \
        ["picked.txt", "names no table pcweak reads", "x,y,z (or index) and class"]


@case("import-clicks-of-another-frame")
def _(t, s):  # clicks 100 m off: another scene or frame, snapped to whatever lies nearest
    (t / "far.csv").write_text("x,y,z,class\n100,100,100,wall\n")
    return ["import", f"npz:{t / 'room.npz'}", str(t / "far.csv"), "-o", str(t / "w.npz")], \
        ["far.csv", "1 of 1 clicked points lie more than 0.1 m", "--coords scene"]


@case("import-class-list-with-a-gap")
def _(t, s):  # "a,,b": the gap was dropped, and b took label 1
    (t / "named.csv").write_text("index,class\n3,b\n")
    pcweak.Scene(name="bare", coord=s.coord).save(t / "bare.npz")
    return ["import", f"npz:{t / 'bare.npz'}", str(t / "named.csv"), "--classes", "a,,b", "-o", str(t / "w.npz")], \
        ["--classes 'a,,b': label 1 has no name; name every label up to the last (class_1 for one you leave unnamed)"]


@case("import-bare-scene-without-classes")
def _(t, s):  # class names with no list to look them up in
    (t / "idx.csv").write_text("index,class\n3,wall\n")
    pcweak.Scene(name="bare", coord=s.coord).save(t / "bare.npz")
    return ["import", f"npz:{t / 'bare.npz'}", str(t / "idx.csv"), "-o", str(t / "w.npz")], \
        ["scene 'bare' names no classes: give the class list (--classes)"]


@case("import-folder-of-scenes-into-one-file")
def _(t, s):  # one file cannot hold a weak-label file per scene
    (t / "sc").mkdir()
    s.save(t / "sc" / "a.npz")
    (t / "tb").mkdir()
    return ["import", str(t / "sc"), str(t / "tb"), "-o", str(t / "w.npz")], ["-o", "w.npz", "one <scene>.npz each; give a folder"]


@case("import-folder-of-scenes-with-a-table-file")
def _(t, s):  # which scene would the one table be for?
    (t / "sc").mkdir()
    s.save(t / "sc" / "a.npz")
    (t / "c.csv").write_text("index,class\n1,wall\n")
    return ["import", str(t / "sc"), str(t / "c.csv"), "-o", str(t / "w")], ["c.csv", "takes folders of tables"]


@case("import-one-scene-with-a-folder-of-tables")
def _(t, s):
    (t / "tb").mkdir()
    return ["import", f"npz:{t / 'room.npz'}", str(t / "tb"), "-o", str(t / "w.npz")], \
        ["tb", "a folder of tables goes with a folder of scenes"]


@case("import-overwrite-of-one-scene")
def _(t, s):  # one scene's file is written anew anyway: the flag would be dropped without a word
    (t / "c.csv").write_text("index,class\n1,wall\n")
    return ["import", f"npz:{t / 'room.npz'}", str(t / "c.csv"), "-o", str(t / "w.npz"), "--overwrite"], \
        ["--overwrite goes with a folder of scenes"]


@case("label-output-over-its-own-scene")
def _(t, s):  # the pseudo-labels would replace the scan they were made from
    return ["label", f"npz:{t / 'room.npz'}", "--weak", str(t / "points.npz"), "-o", str(t / "room.npz")], \
        ["-o", "room.npz", "is a file of scene", "writing there would replace it"]


@case("viz-export-over-its-own-ply")
def _(t, s):
    from pcweak.data.ply import write_ply
    write_ply(s, t / "room.ply")
    return ["viz", f"ply:{t / 'room.ply'}", "--export", str(t / "room.ply")], ["--export", "room.ply", "is a file of scene"]


@case("viz-export-over-a-scannet-mesh")
def _(t, s):  # a file of the scan's folder the reader names; other files there may be outputs
    from pcweak.data.scannet import write_scannet
    scan = write_scannet(s, t / "scannet")
    return ["viz", f"scannet:{scan}", "--export", str(scan / f"{scan.name}_vh_clean_2.ply")], \
        ["--export", "_vh_clean_2.ply", "is a file of scene"]


@case("evaluate-pseudo-is-the-scene-file")
def _(t, s):  # read as pseudo-labels, a scene file's own ground truth scored mIoU 1.0
    return ["evaluate", f"npz:{t / 'room.npz'}", "--pseudo", str(t / "room.npz")], \
        ["room.npz", "this is a scene file", "not a pseudo-label file"]


@case("label-weak-is-a-pseudo-label-file")
def _(t, s):
    pcweak.label(s, weak.points(s, count=30, seed=0), "nearest").save(t / "p.npz")
    return _label(t, t / "p.npz"), ["p.npz", "this is a pseudo-label file", "not a weak-label file"]


@case("info-of-a-weak-label-file")
def _(t, s):
    return ["info", f"npz:{t / 'points.npz'}"], ["points.npz", "this is a weak-label file", "not a scene file"]


@case("label-folder-into-the-scene-folder")
def _(t, s):  # scans/<scene>.npz beside scans/<scene>/ would be read as scenes next time
    from pcweak.data.scannet import write_scannet
    scans = write_scannet(s, t / "scannet").parent
    return ["label", str(scans), "--weak", str(t), "-o", str(scans)], ["-o", "is the folder of scenes itself"]


@case("simulate-folder-into-the-scene-folder")
def _(t, s):
    (t / "sc").mkdir()
    s.save(t / "sc" / "a.npz")
    return ["simulate", str(t / "sc"), "--weak", "points", "--count", "5", "-o", str(t / "sc")], \
        ["-o", "is the folder of scenes itself"]


@case("simulate-over-a-file-that-is-not-npz")
def _(t, s):  # notes.txt would have been replaced by a zip
    (t / "notes.txt").write_text("mine")
    return ["simulate", f"npz:{t / 'room.npz'}", "--weak", "points", "--count", "5", "-o", str(t / "notes.txt")], \
        ["-o", "notes.txt: is a file but not a .npz file"]


@case("simulate-file-given-as-a-folder")
def _(t, s):  # points.npz/ names a folder; writing points.npz/room.npz failed after the scene was read
    return ["simulate", f"npz:{t / 'room.npz'}", "--weak", "points", "--count", "5", "-o", f"{t / 'points.npz'}/"], \
        ["-o", "points.npz/: is a file given as a folder (trailing separator)"]


@case("label-over-a-file-that-is-not-npz")
def _(t, s):  # failed after the work, "cannot write notes/room.npz (File exists)"
    (t / "notes").write_text("mine")
    return ["label", f"npz:{t / 'room.npz'}", "--weak", str(t / "points.npz"), "-o", str(t / "notes")], \
        ["-o", "notes: is a file but not a .npz file"]


@case("masks-of-a-folder-into-the-folder-itself")
def _(t, s):  # each scene's mask folder would have been written among the scenes
    return ["masks", str(t), "--sam", "facebook/sam-vit-base", "-o", str(t)], \
        [f"-o {t}: is the folder of scenes itself; give another folder"]


@case("simulate-merge-chance-above-one")
def _(t, s):
    return ["simulate", f"npz:{t / 'room.npz'}", "--weak", "masks2d", "--merge-prob", "3", "-o", str(t / "w.npz")], \
        ["masks2d: merge_prob must be a number in [0, 1], got 3.0"]


@case("simulate-no-clicks-per-instance")
def _(t, s):
    return ["simulate", f"npz:{t / 'room.npz'}", "--weak", "clicks", "--per-instance", "0", "-o", str(t / "w.npz")], \
        ["clicks: per_instance must be an integer >= 1, got 0"]


@case("simulate-negative-seed")
def _(t, s):  # numpy's "expected non-negative integer", naming nothing, after the scene was read
    return ["simulate", f"npz:{t / 'nowhere.npz'}", "--weak", "points", "--count", "5", "--seed", "-1", "-o", str(t / "w.npz")], \
        ["points: seed must be an integer >= 0, got -1"]


@case("simulate-count-for-clicks")
def _(t, s):  # one click per instance drawn, the count dropped without a word
    return ["simulate", f"npz:{t / 'room.npz'}", "--weak", "clicks", "--count", "50", "-o", str(t / "w.npz")], \
        ["--count goes with --weak points, not clicks"]


@case("simulate-mask-noise-for-boxes")
def _(t, s):  # exact boxes drawn, the erosion dropped without a word
    return ["simulate", f"npz:{t / 'room.npz'}", "--weak", "boxes", "--erosion", "2", "-o", str(t / "w.npz")], \
        ["--erosion goes with --weak masks2d, not boxes"]


@case("simulate-boxed-fraction-of-one-frame")
def _(t, s):  # a share of one frame: the boxes would have been stored or not without a word
    return ["simulate", f"npz:{t / 'room.npz'}", "--weak", "clicks", "--boxed-fraction", "0.1", "-o", str(t / "w.npz")], \
        ["--boxed-fraction goes with a folder of frames (a share of them boxed); for one frame give --with-boxes"]


@case("simulate-boxed-fraction-out-of-range")
def _(t, s):
    return ["simulate", str(t), "--weak", "clusters", "--boxed-fraction", "1.5", "-o", str(t / "weak")], \
        ["--boxed-fraction must be a share in (0, 1], got 1.5"]


@case("simulate-boxed-fraction-with-boxes")
def _(t, s):
    return ["simulate", str(t), "--weak", "clicks", "--boxed-fraction", "0.1", "--with-boxes", "-o", str(t / "weak")], \
        ["--boxed-fraction boxes a share of a folder's frames, --with-boxes every frame: give one"]


@case("simulate-points-without-a-budget")
def _(t, s):  # exit 1, unlike every other refusal
    return ["simulate", f"npz:{t / 'nowhere.npz'}", "--weak", "points", "-o", str(t / "w.npz")], \
        ["--weak points needs exactly one of --count N or --ratio R"]


@case("label-param-gp-negative-seed")
def _(t, s):
    return ["label", f"npz:{t / 'nowhere.npz'}", "--weak", str(t / "boxes.npz"), "--method", "gp-boxes",
            "-o", str(t / "o.npz"), "--param", "seed=-1"], ["gp-boxes: seed must be an integer >= 0, got -1"]


@case("label-param-forest-negative-seed")
def _(t, s):  # numpy's message after the walk had run
    return ["label", f"npz:{t / 'nowhere.npz'}", "--weak", str(t / "boxes.npz"), "-o", str(t / "o.npz"),
            "--param", "refine.seed=-1"], ["refine.seed must be an integer >= 0, got -1"]


@case("bench-negative-seed")
def _(t, s):
    return ["bench", "ops", "--param", "seed=-1"], ["--param seed=-1: bench ops expects a value >= 0"]


@case("demo-negative-epochs")
def _(t, s):
    return ["demo", "--epochs", "-1", "--out", str(t / "demo")], ["--epochs must be an integer >= 0, got -1"]


@case("demo-no-rooms")
def _(t, s):
    return ["demo", "--rooms", "0", "--out", str(t / "demo")], ["--rooms must be an integer >= 1, got 0"]


@case("demo-rooms-without-training")
def _(t, s):
    return ["demo", "--rooms", "2", "--epochs", "0", "--out", str(t / "demo")], \
        ["--rooms is the training runs' rooms, and --epochs 0 trains nothing"]


@case("demo-out-a-file")
def _(t, s):  # "[Errno 17] File exists"
    (t / "out").write_text("")
    return ["demo", "--out", str(t / "out")], ["--out", "is a file, or lies under one; give a folder"]


def _scan_with_alignment(t: Path, s, name: str, text: str) -> list[str]:
    """``pcweak info`` of ``s`` written as a ScanNet scan, with the alignment file ``name``."""
    from pcweak.data.scannet import write_scannet
    scan = write_scannet(s, t / "scannet")
    (scan / f"{scan.name}.txt").unlink()  # no alignment of its own: the file given is read
    (t / name).write_text(text)
    return ["info", f"scannet:{scan}", "--axis-align", str(t / name)]


@case("reader-axis-align-json-list")
def _(t, s):  # "TypeError: list indices must be integers or slices, not str" and a traceback
    return _scan_with_alignment(t, s, "a.json", "[1, 2]"), ["a.json: no 4x4 axis-alignment matrix in it (TypeError"]


@case("reader-axis-align-not-rigid")
def _(t, s):  # a scale (or a zero matrix) was applied: every size in metres changed, or every point at one place
    return _scan_with_alignment(t, s, "a.txt", "2 0 0 0\n0 2 0 0\n0 0 2 0\n0 0 0 1\n"), \
        ["a.txt: the axis-alignment matrix is not a rotation and a translation", "det 8"]


@case("simulate-axis-align-for-a-generated-room")
def _(t, s):
    return ["simulate", "synthetic:1", "--weak", "boxes", "--axis-align", str(t / "a.txt"), "-o", str(t / "w.npz")], \
        ["'synthetic:1': a synthetic scene takes no axis_alignment"]


@case("label-axis-align-for-an-npz-scene")
def _(t, s):
    return _label(t, t / "points.npz", "--axis-align", str(t / "a.txt")), \
        ["a npz scene takes no axis_alignment (its reader takes no options)"]


@case("viz-no-views")
def _(t, s):  # the scene does not exist: the setting is refused before it is read
    return ["viz", f"npz:{t / 'nope.npz'}", "--png", str(t / "v.png"), "--views", "0"], ["--views must be an integer in [1, 36]"]


@case("viz-views-past-a-full-turn")
def _(t, s):  # 100000 rows: numpy's MemoryError (48 GiB) and a traceback, after the scene was read
    return ["viz", f"npz:{t / 'nope.npz'}", "--png", str(t / "v.png"), "--views", "100000"], \
        ["--views must be an integer in [1, 36] (rows of views in the PNG, each 10 degrees or more apart), got 100000"]


@case("viz-views-without-a-png")
def _(t, s):  # the PLY written, the views dropped without a word
    return ["viz", f"npz:{t / 'room.npz'}", "--export", str(t / "v.ply"), "--views", "2"], ["--views goes with --png"]


@case("viz-colour-for-an-export")
def _(t, s):  # the PLY written with every field, the choice dropped without a word
    return ["viz", f"npz:{t / 'room.npz'}", "--export", str(t / "v.ply"), "--color-by", "rgb"], \
        ["--color-by goes with --png or the window; --export writes every label field"]


@case("viz-png-named-otherwise")
def _(t, s):
    return ["viz", f"npz:{t / 'room.npz'}", "--png", str(t / "v.jpg")], ["v.jpg: the file name must end in .png"]


@case("viz-export-into-a-folder")
def _(t, s):  # "[Errno 21] Is a directory: '.v.h13r5z7e.tmp' -> 'v'" after the scene was read
    (t / "v").mkdir()
    return ["viz", f"npz:{t / 'nowhere.npz'}", "--export", str(t / "v")], ["--export", "the file name must end in .ply"]


@case("viz-export-under-another-name")
def _(t, s):  # wrote PLY bytes under a .txt name
    return ["viz", f"npz:{t / 'nowhere.npz'}", "--export", str(t / "v.txt")], ["v.txt: the file name must end in .ply"]


@case("viz-export-folder-named-ply")
def _(t, s):
    (t / "v.ply").mkdir()
    return ["viz", f"npz:{t / 'nowhere.npz'}", "--export", str(t / "v.ply")], ["v.ply: is a folder; give the PLY file"]


@case("viz-png-is-a-folder")
def _(t, s):
    (t / "v.png").mkdir()
    return ["viz", f"npz:{t / 'room.npz'}", "--png", str(t / "v.png")], ["v.png: is a folder"]


@case("bench-shared-folder-missing")
def _(t, s):
    return ["bench", "superpoints", "--param", f"shared={t / 'nope'}"], ["shared=", "nope: no such folder"]


@case("bench-shared-folder-above-the-samples")
def _(t, s):
    (t / "data" / "scannet").mkdir(parents=True)  # shared=t where t/data is meant
    return ["bench", "propagate", "--param", f"shared={t}"], [f"shared={t}", "holds none of the real samples' folders"]


def _scannet_labels(t: Path) -> Path:
    """A ScanNet-20 label file of five points, ``t / 'p.npz'``."""
    from pcweak.classes import SCANNET20
    pcweak.PseudoLabels(semantic=np.zeros(5, np.int64), classes=SCANNET20).save(t / "p.npz")
    return t / "p.npz"


@case("export-scene-name-leaves-the-folder")
def _(t, s):  # wrote ../evil.txt beside the submission folder
    return ["export", str(_scannet_labels(t)), "--format", "scannet-semantic", "-o", str(t / "sub"), "--scene", "../evil"], \
        ["--scene", "'../evil' must be a plain file name"]


@case("export-scene-name-empty")
def _(t, s):  # was taken as no --scene
    return ["export", str(_scannet_labels(t)), "--format", "scannet-semantic", "-o", str(t / "sub"), "--scene", ""], \
        ["--scene", "'' must be a plain file name"]


@case("export-output-is-a-file")
def _(t, s):  # "[Errno 17] File exists" after the labels were read
    (t / "sub").write_text("")
    return ["export", str(_scannet_labels(t)), "--format", "scannet-instance", "-o", str(t / "sub")], \
        ["sub: is a file; the submission's root must be a folder"]


@case("export-semantic-labels-as-instances")
def _(t, s):  # an empty instance submission, exit 0
    return ["export", str(_scannet_labels(t)), "--format", "scannet-instance", "-o", str(t / "sub")], \
        ["p.npz: no point has an instance", "--format scannet-semantic"]


@case("export-labels-of-other-classes")
def _(t, s):
    pcweak.PseudoLabels(semantic=np.zeros(5, np.int64), classes=("Car", "Pedestrian")).save(t / "k.npz")
    return ["export", str(t / "k.npz"), "--format", "scannet-semantic", "-o", str(t / "sub")], \
        ["k.npz: ScanNet benchmark files need labels over ScanNet-20's classes"]


@case("evaluate-plots-into-a-file")
def _(t, s):
    (t / "plots").write_text("")
    return ["evaluate", f"npz:{t / 'nowhere.npz'}", "--pseudo", str(t / "p.npz"), "--plots", str(t / "plots")], \
        ["plots: is a file; give the folder"]


@case("evaluate-plots-for-kitti-results")
def _(t, s):  # the devkit's figures printed, no plot made, without a word
    (t / "det").mkdir()
    return ["evaluate", "kitti:/nowhere/training", "--detections", str(t / "det"), "--plots", str(t / "plots")], \
        ["--plots goes with --pseudo"]


@case("evaluate-kitti-result-file-binary")
def _(t, s):  # "'utf-8' codec can't decode byte 0x80 in position 0", naming no file
    (t / "training" / "label_2").mkdir(parents=True)
    (t / "training" / "label_2" / "000000.txt").write_text("")
    (t / "det").mkdir()
    (t / "det" / "000000.txt").write_bytes(bytes(range(128, 256)))
    return ["evaluate", f"kitti:{t / 'training'}", "--detections", str(t / "det")], \
        [f"{t / 'det' / '000000.txt'}: not UTF-8 text at byte 0 (a KITTI result file is a text file"]


@case("evaluate-ids-file-binary")
def _(t, s):
    (t / "training" / "label_2").mkdir(parents=True)
    (t / "det").mkdir()
    (t / "det" / "000000.txt").write_text("")
    (t / "ids.txt").write_bytes(b"000000\n\xff\xfe")
    return ["evaluate", f"kitti:{t / 'training'}", "--detections", str(t / "det"), "--ids", str(t / "ids.txt")], \
        [f"{t / 'ids.txt'}: not UTF-8 text at byte 7 (an --ids file is a text file"]


@case("evaluate-pseudo-for-another-scene")
def _(t, s):
    pcweak.PseudoLabels(semantic=np.zeros(5, np.int64)).save(t / "p.npz")
    return ["evaluate", f"npz:{t / 'room.npz'}", "--pseudo", str(t / "p.npz")], ["length 5 but scene"]


@case("evaluate-pseudo-over-other-classes")
def _(t, s):
    pcweak.PseudoLabels(semantic=np.zeros(s.num_points, np.int64), classes=("Car", "Pedestrian")).save(t / "p.npz")
    return ["evaluate", f"npz:{t / 'room.npz'}", "--pseudo", str(t / "p.npz")], \
        ["p.npz: PseudoLabels.classes: labels over 2 classes (Car, Pedestrian)"]


@case("viz-pseudo-superpoints-of-another-scene")
def _(t, s):  # the superpoint layer was dropped without a word, the PLY export failed in write_ply
    a = pcweak.PseudoLabels(semantic=np.zeros(s.num_points, np.int64), classes=s.classes).to_arrays()
    _npz(t / "p.npz", **a, superpoint=np.arange(3))
    return ["viz", f"npz:{t / 'room.npz'}", "--pseudo", str(t / "p.npz"), "--color-by", "superpoint", "--png", str(t / "o.png")], \
        ["p.npz: PseudoLabels.extras['superpoint']: shape (3,)"]


@case("evaluate-pseudo-instance-classes-outside-classes")
def _(t, s):  # a model's instance classes were taken without a check (int() of a word, a class 77)
    a = pcweak.PseudoLabels(semantic=np.zeros(s.num_points, np.int64), instance=np.zeros(s.num_points, np.int64),
                            classes=s.classes).to_arrays()
    _npz(t / "p.npz", **a, instance_class=np.array([77]), instance_score=np.array([0.5]))
    return ["evaluate", f"npz:{t / 'room.npz'}", "--pseudo", str(t / "p.npz")], \
        ["p.npz: PseudoLabels.extras['instance_class']: value 77 is out of range"]


@case("export-pseudo-instance-classes-without-scores")
def _(t, s):
    from pcweak.classes import SCANNET20
    a = pcweak.PseudoLabels(semantic=np.zeros(5, np.int64), instance=np.zeros(5, np.int64), classes=SCANNET20).to_arrays()
    _npz(t / "p.npz", **a, instance_class=np.array([2]))
    return ["export", str(t / "p.npz"), "--format", "scannet-instance", "-o", str(t / "sub")], \
        ["p.npz: PseudoLabels.extras: 'instance_class' without 'instance_score'"]


@case("evaluate-pseudo-not-pseudo-labels")
def _(t, s):
    return ["evaluate", f"npz:{t / 'room.npz'}", "--pseudo", str(t / "points.npz")], \
        ["points.npz", "this is a weak-label file", "not a pseudo-label file"]


@case("evaluate-format-without-submission")
def _(t, s):  # the format of files not being read, dropped without a word
    return ["evaluate", f"npz:{t / 'room.npz'}", "--pseudo", str(t / "p.npz"), "--format", "scannet-instance"], \
        ["--format goes with --submission"]


@case("evaluate-submission-of-scenes-over-other-classes")
def _(t, s):
    (t / "scans").mkdir()
    pcweak.Scene(name="other", coord=np.random.default_rng(0).random((5, 3)), classes=("a", "b"),
                 semantic=np.zeros(5, np.int64)).save(t / "scans" / "other.npz")
    (t / "sub").mkdir()
    (t / "sub" / "other.txt").write_text("1\n" * 5)
    return ["evaluate", str(t / "scans"), "--submission", str(t / "sub")], \
        ["scene 'other': ScanNet benchmark files are scored against ScanNet-20 ground truth"]


@case("evaluate-submission-instance-line-malformed")
def _(t, s):
    (t / "scans").mkdir()
    s.save(t / "scans" / "room.npz")
    (t / "sub").mkdir()
    (t / "sub" / "room.txt").write_text("predicted_masks/room_000.txt 5\n")
    return ["evaluate", str(t / "scans"), "--submission", str(t / "sub"), "--format", "scannet-instance"], \
        ["room.txt: line 1 is not '<mask file> <NYU40 id> <confidence>'"]


def _instance_submission(t: Path, s, lines: list[str]) -> list[str]:
    """A scans folder holding the room and a ScanNet instance submission of ``lines``, its mask
    files (each marking the room's first ten points) written where the lines name them inside."""
    (t / "scans").mkdir()
    s.save(t / "scans" / "room.npz")
    (t / "sub" / "masks").mkdir(parents=True)
    for n in ("a", "b"):
        (t / "sub" / "masks" / f"{n}.txt").write_text("".join("1\n" if i < 10 else "0\n" for i in range(s.num_points)))
    (t / "sub" / "room.txt").write_text("".join(f"{x}\n" for x in lines))
    return ["evaluate", str(t / "scans"), "--submission", str(t / "sub"), "--format", "scannet-instance"]


@case("evaluate-submission-instance-mask-named-twice")
def _(t, s):  # scored as two masks; the evaluator keeps the last entry of a mask file only
    return _instance_submission(t, s, ["masks/a.txt 5 0.9", "masks/b.txt 5 0.8", "masks/../masks/a.txt 3 0.7"]), \
        ["room.txt: line 3: mask file masks/../masks/a.txt is named again (first on line 1)"]


@case("evaluate-submission-instance-confidence-nan")
def _(t, s):  # ranked wherever the sort put it
    return _instance_submission(t, s, ["masks/a.txt 5 nan"]), ["room.txt: line 1: confidence 'nan' is not a finite number"]


@case("evaluate-submission-instance-mask-outside")
def _(t, s):  # read and scored; the evaluator refuses a mask outside the prediction folder
    return _instance_submission(t, s, ["../sub/masks/a.txt 5 0.9", "../room.npz 5 0.5"]), \
        ["room.txt: line 2: mask file ../room.npz lies outside the submission's folder"]


@case("evaluate-submission-instance-byte-order-mark")
def _(t, s):  # "mask file .../\ufeffmasks/a.txt not found", the mark invisible
    return _instance_submission(t, s, ["\ufeffmasks/a.txt 5 0.9"]), ["room.txt: begins with a UTF-8 byte-order mark"]


@case("evaluate-submission-instance-fields-by-tab")
def _(t, s):  # read as three fields; the evaluator splits on single spaces and refuses the file
    return _instance_submission(t, s, ["masks/a.txt\t5\t0.9"]), \
        ["room.txt: line 1: fields must be separated by one space each, as the evaluator splits them"]


@case("evaluate-submission-instance-empty-line")
def _(t, s):  # skipped; the evaluator reads it as a mask line and refuses the file
    return _instance_submission(t, s, ["masks/a.txt 5 0.9", "", "masks/b.txt 5 0.8"]), \
        ["room.txt: line 2 is empty; the evaluator reads every line as a mask"]


@case("viz-pseudo-for-another-scene")
def _(t, s):
    pcweak.PseudoLabels(semantic=np.zeros(5, np.int64)).save(t / "p.npz")
    return ["viz", f"npz:{t / 'room.npz'}", "--pseudo", str(t / "p.npz"), "--png", str(t / "o.png")], \
        ["length 5 but scene"]


@case("viz-weak-for-another-scene")
def _(t, s):
    other = synthetic_room(8, density=150.0, n_frames=0)
    weak.points(other, count=5, seed=0).save(t / "w.npz")
    return ["viz", f"npz:{t / 'room.npz'}", "--weak", str(t / "w.npz"), "--png", str(t / "o.png")], ["points"]


@case("viz-pseudo-missing")
def _(t, s):
    return ["viz", f"npz:{t / 'room.npz'}", "--pseudo", str(t / "none.npz"), "--png", str(t / "o.png")], \
        ["none.npz", "not found"]


@case("train-supervision-typo")
def _(t, s):
    return ["fit", "--config", DEMO, "--data.init_args.supervision", "pointz"], \
        ["data.supervision: expected one of", "pointz"]


@case("train-points-negative")
def _(t, s):
    return ["fit", "--config", DEMO, "--data.init_args.points", "-5"], ["data.points: expected an integer >= 1, got -5"]


@case("train-negative-seed")
def _(t, s):  # numpy's message from the first training batch
    return ["fit", "--config", DEMO, "--data.init_args.seed", "-1"], ["data.seed: expected an integer >= 0, got -1"]


@case("train-voxel-size-zero")
def _(t, s):
    return ["fit", "--config", DEMO, "--data.init_args.voxel_size", "0"], ["data.voxel_size: expected metres > 0"]


@case("train-learning-rate-negative")
def _(t, s):
    return ["fit", "--config", DEMO, "--model.init_args.lr", "-0.01"], ["model.lr: expected a number > 0, got -0.01"]


@case("train-loss-weight-negative")
def _(t, s):  # trained by gradient ascent without a word
    return ["fit", "--config", DEMO, "--model.init_args.loss_seed", "-1"], ["model.loss_seed: expected a number >= 0"]


@case("train-every-loss-off")
def _(t, s):
    return ["fit", "--config", DEMO, "--model.init_args.loss_seed", "0"], ["every loss weight is 0, so nothing would train"]


@case("train-consistency-without-two-views")
def _(t, s):  # the loss skipped at every step: a run that trains without it
    return ["fit", "--config", DEMO, "--model.init_args.loss_consistency", "1"], \
        ["model.init_args.loss_consistency 1.0: data.two_views False gives no second view to compare"]


@case("train-regionmask-without-mask")
def _(t, s):  # an unmasked second view: the loss would be the consistency's
    return ["fit", "--config", DEMO, "--model.init_args.loss_regionmask", "1", "--data.init_args.two_views", "true"], \
        ["model.init_args.loss_regionmask 1.0: data.region_mask_grid 0 gives an unmasked second view"]


@case("train-pseudo-loss-without-pseudo-labels")
def _(t, s):
    return ["fit", "--config", DEMO, "--model.init_args.loss_pseudo", "0.5"], \
        ["model.init_args.loss_pseudo 0.5: data.supervision 'points' gives no pseudo-labels"]


@case("train-simulated-boxes-for-points")
def _(t, s):  # "needs labelled points" from the first batch, once the trainer was up
    return ["fit", "--config", DEMO, "--data.init_args.weak_kind", "boxes"], \
        ["data.weak_kind 'boxes': simulated boxes hold no labelled points, which data.supervision 'points' trains on"]


@case("train-segmenter-on-lidar-frames")
def _(t, s):  # KeyError: 'inverse' from the first batch
    return ["fit", "--config", str(ROOT / "configs" / "kitti" / "full.yaml"), "--model", "pcweak.tasks.SemanticSegmentation"], \
        ["model pcweak.tasks.SemanticSegmentation trains on point clouds with point labels",
         "the config's data is pcweak.train.lidar_datamodule.LidarDataModule"]


@case("train-detector-on-rooms")
def _(t, s):  # Lightning's "Error while merging hparams ... voxel_size"
    return ["validate", "--config", DEMO, "--model", "pcweak.tasks.Detection"], \
        ["model pcweak.tasks.Detection trains on LiDAR frames with boxes"]


@case("train-self-training-over-full-boxes")
def _(t, s):  # rounds that refine nothing
    return ["fit", "--config", str(ROOT / "configs" / "kitti" / "full.yaml"), "--model.init_args.self_training_rounds", "2"], \
        ["model.init_args.self_training_rounds 2: data.weak_mode 'full' gives no pseudo boxes to refine"]


@case("train-box-labeller-from-simulated-points")
def _(t, s):  # "--method gp-boxes: the weak labels have no box" once the trainer was up, naming an option not given
    return ["fit", "--config", DEMO, "--data.init_args.supervision", "pseudo", "--data.init_args.pseudo_method",
            "gp-boxes", "--model.init_args.loss_seed", "0", "--model.init_args.loss_pseudo", "1"], \
        ["data.pseudo_method 'gp-boxes' needs box in the weak labels, which data.weak_kind 'points' does not simulate"]


@case("train-predict-without-a-checkpoint")
def _(t, s):  # wrote a prediction per scene from random weights, exit 0
    return ["predict", "--config", DEMO], ["--ckpt_path: pcweak predict needs the checkpoint of a trained model",
                                           "random weights"]


@case("train-validate-without-a-checkpoint")
def _(t, s):  # scored random weights
    return ["validate", "--config", DEMO], ["--ckpt_path: pcweak validate needs the checkpoint of a trained model"]


@case("train-no-input-feature")
def _(t, s):  # a division by zero inside the network
    return ["fit", "--config", DEMO, "--data.init_args.feature_names", "[]"], \
        ["model.in_channels: expected an integer >= 1, got 0", "data.feature_names"]


@case("train-cache-dir-a-file")
def _(t, s):
    (t / "cache").write_text("")
    return ["fit", "--config", DEMO, "--data.init_args.cache_dir", str(t / "cache" / "sub")], \
        ["data.cache_dir: expected a folder (or where one can be made), not a file"]


@case("train-detector-nms-iou-zero")
def _(t, s):
    return ["fit", "--config", str(ROOT / "configs" / "kitti" / "clicks.yaml"), "--data.init_args.dataset", "synthetic",
            "--model.init_args.nms_iou", "0"], ["model.nms_iou: expected a number in (0, 1], got 0.0"]


@case("train-lidar-range-inverted")
def _(t, s):  # a grid of negative size inside the detector's construction
    return ["fit", "--config", str(ROOT / "configs" / "kitti" / "clicks.yaml"), "--data.init_args.dataset", "synthetic",
            "--data.init_args.pc_range", "[70.4, 40, 1, 0, -40, -3]"], \
        ["data.pc_range / data.voxel_size: expected pc_range [x_min, y_min, z_min, x_max, y_max, z_max]", "x, y, z too short"]


@case("train-lidar-no-training-frames")
def _(t, s):  # "num_samples should be a positive integer value" once the trainer was up
    return ["fit", "--config", str(ROOT / "configs" / "kitti" / "clicks.yaml"), "--data.init_args.dataset", "synthetic",
            "--data.init_args.synthetic_train", "0"], ["data.synthetic_train: expected an integer >= 1, got 0"]


@case("train-unknown-pseudo-method")
def _(t, s):
    return ["fit", "--config", DEMO, "--data.init_args.supervision", "pseudo", "--data.init_args.pseudo_method", "magic"], \
        ["data.pseudo_method / data.pseudo_params", "'magic'"]


@case("train-bad-pseudo-param")
def _(t, s):
    return ["fit", "--config", DEMO, "--data.init_args.supervision", "pseudo", "--data.init_args.pseudo_method",
            "propagate", "--data.init_args.pseudo_params", '{"graph.k": -1}'], ["graph.k must be >= 1"]


@case("train-model-contradicts-data")
def _(t, s):
    return ["fit", "--config", DEMO, "--model.init_args.in_channels", "4"], \
        ["model.init_args.in_channels=4 contradicts the data"]


@case("train-kitti-weak-mode-typo")
def _(t, s):
    return ["fit", "--config", str(ROOT / "configs" / "kitti" / "clicks.yaml"), "--data.init_args.weak_mode", "click"], \
        ["data.weak_mode: expected one of"]


@case("train-unknown-feature")
def _(t, s):
    return ["fit", "--config", DEMO, "--data.init_args.feature_names", "[color, depth]"], \
        ["feature_names: unknown ['depth']"]


@case("train-config-missing")
def _(t, s):  # 40 lines of usage before jsonargparse's one line
    return ["fit", "--config", str(t / "nope.yaml")], ["pcweak fit: error:", "nope.yaml"]


@case("train-option-typo")
def _(t, s):
    return ["fit", "--config", DEMO, "--trainer.max_epochz", "3"], ["unrecognized arguments: --trainer.max_epochz 3"]


@case("train-gpu-not-present")
def _(t, s):  # Lightning's MisconfigurationException: a traceback before
    # no seeding: its log line would reach a stream an earlier test's capture closed
    return ["fit", "--config", DEMO, "--seed_everything", "false", "--trainer.accelerator", "gpu", "--trainer.devices", "[7]"], \
        ["pcweak fit: error:", "gpu"]


@case("train-bfloat16")
def _(t, s):  # spconv's "KeyError: torch.bfloat16" traceback at the first batch before
    return ["fit", "--config", DEMO, "--trainer.precision", "bf16-mixed"], \
        ["pcweak fit: error: trainer.precision 'bf16-mixed': spconv", "no bfloat16 kernels", "16-mixed on a GPU"]


@case("train-float16-on-cpu")
def _(t, s):  # Lightning turned it into bfloat16, then the same traceback
    return ["validate", "--config", DEMO, "--trainer.precision", "16-mixed", "--trainer.accelerator", "cpu"], \
        ["pcweak validate: error: trainer.precision '16-mixed' on the CPU", "use 32 on a CPU"]


@case("train-spawned-processes")
def _(t, s):  # "Can't pickle local object '_cli_class.<locals>.PcweakCLI'" traceback before
    return ["fit", "--config", DEMO, "--trainer.strategy", "ddp_spawn", "--trainer.devices", "2",
            "--trainer.accelerator", "cpu"], \
        ["pcweak fit: error: trainer.strategy 'ddp_spawn': pcweak runs several devices with 'ddp'"]


@case("train-fewer-scenes-than-processes")
def _(t, s):  # DDP hung at the first validation before; then the refusal came once per process
    return ["fit", "--config", DEMO, "--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator",
            "cpu", "--data.init_args.synthetic_val", "1", "--data.init_args.cache_dir", str(t / "cache")], \
        ["pcweak fit: error: validation scenes: 1 scene(s) for 2 processes", "run on fewer devices"]


@case("train-ckpt-missing")
def _(t, s):
    return ["predict", "--config", DEMO, "--ckpt_path", str(t / "none.ckpt")], ["--ckpt_path", "none.ckpt", "not found"]


@case("train-ckpt-not-a-checkpoint")
def _(t, s):  # Lightning's UnpicklingError traceback
    (t / "bad.ckpt").write_bytes(b"not a checkpoint")
    return ["validate", "--config", DEMO, f"--ckpt_path={t / 'bad.ckpt'}"], \
        ["--ckpt_path", "bad.ckpt", "not a torch file pcweak can read safely"]


@pytest.mark.parametrize("make", CASES)
def test_unclear_errors_become_one_clear_refusal(make, files, small, capsys, monkeypatch):
    monkeypatch.chdir(files)
    argv, needles = make(files, small)
    refused(argv, capsys, *needles)


def test_the_table_is_large_enough():
    assert len(CASES) >= 40


def test_outputs_keep_the_users_file_mode_and_an_upper_case_suffix(files, capsys):
    old = os.umask(0o022)
    try:
        out = files / "P.NPZ"
        assert main(["label", f"npz:{files / 'room.npz'}", "--weak", str(files / "points.npz"), "-o", str(out)]) == 0
    finally:
        os.umask(old)
    assert out.is_file() and (out.stat().st_mode & 0o777) == 0o644


def test_an_output_that_cannot_be_written_is_one_message_naming_it(files, capsys, monkeypatch):
    """A read-only output folder is refused before the work (as ``os.access`` reports it: a
    read-only mount, a folder without write permission; root passes permission bits, so the
    test stands one in); a write failing later (a full disk) names the output, not the
    temporary file, which is removed, and reaches the user as one line."""
    import errno

    import pcweak.npzio as npzio
    ro = files / "ro"
    ro.mkdir()
    real_access = os.access
    monkeypatch.setattr(npzio.os, "access", lambda p, mode: Path(p) != ro and real_access(p, mode))
    scene, points = f"npz:{files / 'room.npz'}", str(files / "points.npz")
    for argv, flag in ((["simulate", scene, "--weak", "points", "--count", "5", "-o", str(ro / "w.npz")], "-o"),
                       (["label", scene, "--weak", points, "-o", str(ro / "sub" / "p.npz")], "-o"),
                       (["viz", scene, "--png", str(ro / "v.png")], "--png"),
                       (["evaluate", scene, "--pseudo", points, "--plots", str(ro / "plots")], "--plots"),
                       (["demo", "--out", str(ro / "demo")], "--out"),
                       (["fit", "--config", DEMO, "--data.init_args.cache_dir", str(ro / "cache")], "data.cache_dir")):
        refused(argv, capsys, f"{flag} {ro}", f"cannot write into {ro} (read-only, or no write permission)")
    monkeypatch.setattr(npzio.os, "access", real_access)

    def full_disk(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(npzio.os, "fdopen", lambda fd, mode: _Writer(fd, full_disk))
    refused(["label", scene, "--weak", points, "-o", str(files / "full.npz")], capsys,
            f"[Errno {errno.ENOSPC}] cannot write {files / 'full.npz'} (No space left on device)")
    assert not list(files.glob(".full.npz.*")) and not (files / "full.npz").exists()


class _Writer:
    """A file object whose ``write`` calls ``fail`` (the full disk above)."""
    def __init__(self, fd: int, fail) -> None:
        self.fd, self.fail = fd, fail

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        os.close(self.fd)

    def write(self, data: bytes) -> None:
        self.fail(self.fd, data)


def test_ctrl_c_while_an_extension_loads_is_an_interrupt(files, capsys, monkeypatch):
    """Ctrl-C while a compiled extension is imported reaches pcweak as pybind11's ImportError
    "initialization failed" caused by the KeyboardInterrupt: reported as the interrupt it is."""
    import pcweak.data.address as address

    def interrupted_import(*a, **k):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as e:
            raise ImportError("initialization failed") from e
    monkeypatch.setattr(address, "load_scene", interrupted_import)
    assert main(["info", f"npz:{files / 'room.npz'}"]) == 130
    err = capsys.readouterr().err
    assert "pcweak info: interrupted; every output written is whole" in err and "initialization failed" not in err


def test_open3d_that_cannot_load_is_one_message_naming_the_set_up(files, capsys, monkeypatch):
    """A bare Debian without libEGL: ``import open3d`` fails naming only the .so file. Labelling
    (its normals), a PCD file and the pictures each say what to install instead."""
    import sys
    pcd = files / "cloud.pcd"
    pcd.write_text("VERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH 2\nHEIGHT 1\n"
                   "POINTS 2\nDATA ascii\n0 0 0\n1 1 1\n")
    monkeypatch.setitem(sys.modules, "open3d", None)  # what a missing libEGL.so.1 makes of the import
    needles = ("Open3D cannot be imported", "scripts/setup.sh", "libegl1")
    refused(["label", f"npz:{files / 'room.npz'}", "--weak", str(files / "points.npz"), "-o", str(files / "p.npz")],
            capsys, *needles)
    refused(["info", f"pcd:{pcd}"], capsys, *needles)
    refused(["viz", f"npz:{files / 'room.npz'}", "--png", str(files / "r.png")], capsys, *needles)
    assert not (files / "p.npz").exists() and not (files / "r.png").exists()


def test_spconv_that_cannot_load_is_one_message_naming_the_extra(tmp_path, capsys, monkeypatch):
    """pcweak installed without its ``cpu`` extra: training names what to install, in one line,
    before any stage runs (the demo) or as the config's classes are imported (fit)."""
    import subprocess
    import sys
    needles = ("spconv cannot be imported", "pip install spconv", "spconv-cu126")
    code = ("import sys; sys.modules['spconv'] = None; from pcweak.cli import main; "
            f"sys.exit(main(['fit', '--config', {DEMO!r}, '--trainer.max_epochs', '1']))")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert all(n in r.stderr for n in needles) and r.stderr.count("error:") == 1, r.stderr[-2000:]
    monkeypatch.setitem(sys.modules, "spconv", None)
    monkeypatch.setitem(sys.modules, "spconv.pytorch", None)
    refused(["demo", "--epochs", "1", "--out", str(tmp_path / "demo")], capsys, *needles)
    assert not (tmp_path / "demo").exists()


def test_warnings_reach_cli_users_as_one_plain_line(tmp_path, capsys):
    room = tmp_path / "Area_1" / "office_1" / "Annotations"
    room.mkdir(parents=True)
    (room / "chair_1.txt").write_text("1 2 3 10 20 30\n4 5 6 10 20\n1 1 1 1 1 1\n")
    assert main(["info", f"s3dis:{room.parent}", "--compact"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("pcweak: warning: ") and err.count("\n") == 1 and ".py:" not in err


def test_image_boxes_that_do_not_fit_their_frame_are_refused(lidar, tmp_path, capsys):
    """A 2D box outside its frame's image (another frame's, another camera's) or with its
    corners swapped is named with its index before any labelling."""
    from dataclasses import replace
    lidar.save(tmp_path / "f.npz")
    w = weak.boxes2d(lidar, use_annotated=False)
    assert len(w.box2d) >= 2
    H, W = lidar.frames[0].image.shape[:2]
    far = w.box2d.copy()
    far[1] = [W - 10, 5, W + 40, 30]
    replace(w, box2d=far).save(tmp_path / "far.npz")
    refused(["label", f"npz:{tmp_path / 'f.npz'}", "--weak", str(tmp_path / "far.npz"), "--method", "boxes2d-frustum",
             "-o", str(tmp_path / "o.npz")], capsys, "box2d: box 1", f"lies outside frame {lidar.frames[0].name}'s {W}x{H} image")
    swapped = w.box2d.copy()
    swapped[0] = swapped[0][[2, 1, 0, 3]]
    with pytest.raises(pcweak.SceneError, match=r"box2d: box 0 .* is not \[x1, y1, x2, y2\]"):
        replace(w, box2d=swapped)
