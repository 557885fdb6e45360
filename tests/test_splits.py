"""Training runs' scene and frame lists: split files as given or under the root, and one error
naming the setting when a listed scene is not there, before any scene is read."""
from __future__ import annotations

import pytest

from pcweak.train.datamodule import PointDataModule
from pcweak.train.lidar_datamodule import LidarDataModule, kitti_id
from pcweak.train.splits import check_split, split_names


def test_split_names_reads_a_file_as_given_or_under_the_root(tmp_path, monkeypatch):
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "train.txt").write_text("a\n\n  b \n")
    assert split_names("meta/train.txt", tmp_path, "train_scenes") == ["a", "b"]
    monkeypatch.chdir(tmp_path / "meta")
    names = split_names("train.txt", "/nonexistent", "train_scenes")
    assert names == ["a", "b"] and names.source.name == "train.txt"
    assert split_names(["x", 3], None, "k") == ["x", "3"] and split_names(None, tmp_path, "k") is None
    with pytest.raises(FileNotFoundError, match=r"data.val_scenes: split file 'nope.txt' not found"):
        split_names("nope.txt", tmp_path, "val_scenes")


def test_check_split_names_what_is_missing():
    check_split(["a"], {"a"}.__contains__, "k", "R", "hint")
    check_split([], bool, "val", "R", "hint", required=False)
    with pytest.raises(ValueError, match=r"data.k: no frames to train on; hint"):
        check_split([], bool, "k", "R", "hint", noun="frames")
    with pytest.raises(ValueError, match=r"data.k: 4 of the 5 scenes are not in R \(b, c, d, \.\.\.\); hint"):
        check_split(list("abcde"), {"a"}.__contains__, "k", "R", "hint")
    with pytest.raises(ValueError, match=r"data.k: scenes listed more than once: a, b \(2 in all\)"):
        check_split(list("abaab"), bool, "k", "R", "hint")  # trained on (or scored) once per listing


def test_scannet_scenes_missing_from_the_root_are_named_before_any_is_read(tmp_path):
    (tmp_path / "scans" / "scene0000_00").mkdir(parents=True)
    (tmp_path / "meta_data").mkdir()
    (tmp_path / "meta_data" / "train.txt").write_text("scene0000_00\nscene0001_00\nscene0002_00\n")
    dm = PointDataModule(dataset="scannet", root=str(tmp_path), train_scenes="meta_data/train.txt", supervision="full")
    with pytest.raises(ValueError, match=r"data.train_scenes: 2 of the 3 scenes listed in .*train.txt are not in .*scans/ "
                                         r"\(scene0001_00, scene0002_00\)"):
        dm.setup("fit")
    dm = PointDataModule(dataset="scannet", root=str(tmp_path), train_scenes=["scene0000_00"], supervision="full")
    tr, va = dm.scene_lists()
    assert tr == [("scene0000_00", f"scannet:{tmp_path / 'scans' / 'scene0000_00'}")] and va == []
    with pytest.raises(ValueError, match=r"data.train_scenes: no scenes to train on"):
        PointDataModule(dataset="scannet", root=str(tmp_path), supervision="full").scene_lists()
    # a root without scans/: the scans folder itself, another layout, or nothing pcweak reads
    with pytest.raises(ValueError, match=r"data.root .*scans: holds no scans/ folder; it is the scans/ folder itself: "
                                         r"give the folder above it"):
        PointDataModule(dataset="scannet", root=str(tmp_path / "scans"), train_scenes=["scene0000_00"],
                        supervision="full").scene_lists()
    with pytest.raises(ValueError, match=r"data.root .*meta_data: holds no scans/ folder; ScanNet's layout is ROOT/scans/"):
        PointDataModule(dataset="scannet", root=str(tmp_path / "meta_data"), train_scenes=["a"], supervision="full").scene_lists()
    with pytest.raises(ValueError, match=r"data.root .*nowhere: no such folder"):
        PointDataModule(dataset="scannet", root=str(tmp_path / "nowhere"), train_scenes=["a"], supervision="full").scene_lists()


def test_s3dis_and_folder_roots_without_the_scenes_asked_for(tmp_path):
    from pcweak.data.synthetic_indoor import synthetic_room
    synthetic_room(0, density=60.0, n_frames=0).save(tmp_path / "room_a.npz")
    with pytest.raises(ValueError, match=r"data.root .*: no scenes to train on; it holds 1 scene of another layout"):
        PointDataModule(dataset="s3dis", root=str(tmp_path), supervision="full").scene_lists()
    dm = PointDataModule(dataset="folder", root=str(tmp_path), supervision="full", val_scenes=["room_b"])
    with pytest.raises(ValueError, match=r"data.val_scenes: 1 of the 1 scenes are not in .* \(room_b\); it holds 1 scenes \(room_a; pcweak info .* lists them\)"):
        dm.scene_lists()
    rooms = tmp_path / "s3dis" / "Area_5" / "office_1" / "Annotations"
    rooms.mkdir(parents=True)
    with pytest.raises(ValueError, match=r"every room is in data.s3dis_val_area \(Area_5\)"):
        PointDataModule(dataset="s3dis", root=str(tmp_path / "s3dis"), supervision="full").scene_lists()
    with pytest.raises(ValueError, match=r"no scenes to train on; it is one area's folder: give the folder that holds the Area_N folders, "
                                         + str(tmp_path / "s3dis")):
        PointDataModule(dataset="s3dis", root=str(tmp_path / "s3dis" / "Area_5"), supervision="full").scene_lists()
    # a validation area the root lacks, or misspelt: its rooms were trained on and none validated on
    (tmp_path / "s3dis" / "Area_1" / "office_1" / "Annotations").mkdir(parents=True)
    (tmp_path / "s3dis" / "Area_10" / "office_1" / "Annotations").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"data.s3dis_val_area Area_6: data.root .*s3dis holds no such area "
                                         r"\(Area_1, Area_5, Area_10\)"):
        PointDataModule(dataset="s3dis", root=str(tmp_path / "s3dis"), supervision="full", s3dis_val_area="Area_6").scene_lists()
    with pytest.raises(ValueError, match=r"data.s3dis_val_area: expected an S3DIS area's folder name, Area_N .*got '5'"):
        PointDataModule(dataset="s3dis", root=str(tmp_path / "s3dis"), supervision="full", s3dis_val_area="5")
    tr, va = PointDataModule(dataset="s3dis", root=str(tmp_path / "s3dis"), supervision="full",
                             s3dis_val_area="Area_1").scene_lists()
    assert [n for n, _ in va] == ["Area_1_office_1"] and [n for n, _ in tr] == ["Area_10_office_1", "Area_5_office_1"]


def test_kitti_frames_from_imagesets_by_default_ids_padded_and_checked(tmp_path):
    velo = tmp_path / "training" / "velodyne"
    velo.mkdir(parents=True)
    for i in ("000000", "000003", "000007"):
        (velo / f"{i}.bin").write_bytes(b"")
    (tmp_path / "ImageSets").mkdir()
    (tmp_path / "ImageSets" / "train.txt").write_text("000000\n000003\n")
    (tmp_path / "ImageSets" / "val.txt").write_text("000007\n")
    tr, va = LidarDataModule(dataset="kitti", root=str(tmp_path)).scene_lists()
    assert [n for n, _ in tr] == ["000000", "000003"] and va == [("000007", f"kitti:{tmp_path / 'training' / '000007'}")]
    tr, va = LidarDataModule(dataset="kitti", root=str(tmp_path), train_ids=[0, "3"], val_ids=[]).scene_lists()
    assert [n for n, _ in tr] == ["000000", "000003"] and va == [] and kitti_id("7") == "000007"
    with pytest.raises(ValueError, match=r"data.val_ids: frames listed more than once: 000007 \(1 in all\)"):
        LidarDataModule(dataset="kitti", root=str(tmp_path), val_ids=["000007", 7]).scene_lists()  # one frame
    with pytest.raises(ValueError, match=r"data.val_ids: 1 of the 2 frames are not in .*velodyne/ \(000001\)"):
        LidarDataModule(dataset="kitti", root=str(tmp_path), val_ids=["000007", 1]).scene_lists()
    (tmp_path / "ImageSets" / "train.txt").unlink()
    with pytest.raises(ValueError, match=r"data.train_ids: no frames to train on; give frame ids"):
        LidarDataModule(dataset="kitti", root=str(tmp_path)).scene_lists()
    # a root without training/velodyne/: the split folder itself, a SemanticKITTI sequence, other scenes
    with pytest.raises(ValueError, match=r"data.root .*training: holds no training/velodyne/ folder; it is a split "
                                         r"folder itself: give the folder above it"):
        LidarDataModule(dataset="kitti", root=str(tmp_path / "training"), train_ids=[0]).scene_lists()
    seq = tmp_path / "sequences" / "00"
    for part in ("velodyne", "labels"):
        (seq / part).mkdir(parents=True)
    with pytest.raises(ValueError, match=r"00: holds no training/velodyne/ folder; it is a SemanticKITTI sequence"):
        LidarDataModule(dataset="kitti", root=str(seq), train_ids=[0]).scene_lists()
    from pcweak.data.synthetic_indoor import synthetic_room
    (tmp_path / "rooms").mkdir()
    synthetic_room(0, density=60.0, n_frames=0).save(tmp_path / "rooms" / "room_a.npz")
    with pytest.raises(ValueError, match=r"rooms: holds no training/velodyne/ folder; it holds 1 scene of another layout "
                                         r"\(pcweak info .*rooms lists them\); KITTI's 3D object layout is ROOT/training/velodyne/"):
        LidarDataModule(dataset="kitti", root=str(tmp_path / "rooms"), train_ids=[0]).scene_lists()


def test_predict_scenes_of_scannet_come_from_scans_or_scans_test(tmp_path):
    (tmp_path / "scans" / "scene0000_00").mkdir(parents=True)
    (tmp_path / "scans_test" / "scene0707_00").mkdir(parents=True)
    (tmp_path / "test.txt").write_text("scene0707_00\n")
    dm = PointDataModule(dataset="scannet", root=str(tmp_path), train_scenes=["scene0000_00"], supervision="full",
                         predict_scenes="test.txt")
    assert dm.predict_list() == [("scene0707_00", f"scannet:{tmp_path / 'scans_test' / 'scene0707_00'}")]
    dm = PointDataModule(dataset="scannet", root=str(tmp_path), train_scenes=["scene0000_00"], supervision="full")
    assert dm.predict_list() == [("scene0000_00", f"scannet:{tmp_path / 'scans' / 'scene0000_00'}")]  # train + val
    dm = PointDataModule(dataset="scannet", root=str(tmp_path), train_scenes=["scene0000_00"], supervision="full",
                         predict_scenes=["scene0708_00"])
    with pytest.raises(ValueError, match=r"data.predict_scenes: 1 of the 1 scenes are not in .*scans/ or scans_test/"):
        dm.predict_list()


def test_validation_needs_no_training_scans(tmp_path):
    from types import SimpleNamespace
    (tmp_path / "scans" / "scene0011_00").mkdir(parents=True)
    dm = PointDataModule(dataset="scannet", root=str(tmp_path), train_scenes=["scene0000_00"], val_scenes=["scene0011_00"],
                         supervision="full")
    with pytest.raises(ValueError, match=r"data.train_scenes: 1 of the 1 scenes are not in"):
        dm.setup("fit")
    for stage in ("validate", "test"):
        dm.trainer = SimpleNamespace(state=SimpleNamespace(fn=stage))
        dm.prepare_data()
        dm.setup(stage)
        assert dm._val == [("scene0011_00", f"scannet:{tmp_path / 'scans' / 'scene0011_00'}")]
    dm.trainer = SimpleNamespace(state=SimpleNamespace(fn="fit"))
    with pytest.raises(ValueError, match=r"data.train_scenes"):
        dm.prepare_data()


def test_weak_dir_is_checked_against_the_training_scenes(tmp_path):
    """A weak_dir that is missing or holds none of the training scenes' files was read as "simulate
    them all" without a word; scenes without a file there are named in a warning."""
    def dm(weak_dir, supervision="points"):
        return PointDataModule(dataset="synthetic", synthetic_train=3, synthetic_val=1, supervision=supervision,
                               weak_dir=str(weak_dir), cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ValueError, match=r"data.weak_dir .*nowhere: no such folder"):
        dm(tmp_path / "nowhere").setup("fit")
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "scene0000_00.npz").write_bytes(b"")  # another split's
    with pytest.raises(ValueError, match=r"data.weak_dir .*w: holds no weak-label file of the 3 training scenes "
                                         r"\(<scene>.npz: synthetic_1000, synthetic_1001, synthetic_1002\)"):
        dm(tmp_path / "w").setup("fit")
    (tmp_path / "w" / "synthetic_1001.npz").write_bytes(b"")
    with pytest.warns(UserWarning, match=r"2 of the 3 training scenes have no file there \(synthetic_1000, synthetic_1002\); "
                                         r"their weak labels are simulated from their ground truth \(data.weak_kind points, "
                                         r"data.points 200\)"):
        dm(tmp_path / "w").setup("fit")
    dm(tmp_path / "nowhere", "full").setup("fit")  # full supervision reads no weak labels
    dm(tmp_path / "nowhere").setup("validate")  # nor does validation


def test_a_pseudo_dir_of_ones_own_covers_the_training_scenes(tmp_path):
    """Pseudo supervision from a folder of the user's pseudo-labels: a scene without its file
    failed at the first batch that read it (after the fit had started); now before it starts."""
    def dm(pseudo_dir, **kw):
        return PointDataModule(dataset="synthetic", synthetic_train=3, synthetic_val=1, supervision="pseudo",
                               pseudo_dir=str(pseudo_dir), cache_dir=str(tmp_path / "cache"), **kw)
    with pytest.raises(ValueError, match=r"data.pseudo_dir .*nowhere: no such folder"):
        dm(tmp_path / "nowhere").setup("fit")
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "synthetic_1001.npz").write_bytes(b"")
    with pytest.raises(ValueError, match=r"data.pseudo_dir .*p: 2 of the 3 training scenes have no pseudo-label file "
                                         r"there \(synthetic_1000, synthetic_1002\)"):
        dm(tmp_path / "p").setup("fit")
    dm(tmp_path / "p", pseudo_method="nearest").setup("fit")  # prepare_data makes them
    dm(tmp_path / "p", weak_dir=str(tmp_path / "nowhere")).setup("validate")  # validation reads neither
    for name in ("synthetic_1000", "synthetic_1002"):
        (tmp_path / "p" / f"{name}.npz").write_bytes(b"")
    dm(tmp_path / "p", weak_dir=str(tmp_path / "nowhere")).setup("fit")  # without pseudo_method no weak labels are read


def test_validation_scenes_are_kept_out_of_training(tmp_path):
    """A folder's training scenes were every scene, the validation ones included, when only
    val_scenes was given; scenes (frames) listed for both are named in a warning."""
    from pcweak.data.synthetic_indoor import synthetic_room
    for name in ("room_a", "room_b", "room_c"):
        synthetic_room(0, density=40.0, n_frames=0).save(tmp_path / f"{name}.npz")
    tr, va = PointDataModule(dataset="folder", root=str(tmp_path), supervision="full", val_scenes=["room_b"]).scene_lists()
    assert [n for n, _ in tr] == ["room_a", "room_c"] and [n for n, _ in va] == ["room_b"]
    with pytest.warns(UserWarning, match=r"data.val_scenes: 1 of the 2 validation scenes are also training scenes \(room_b\)"):
        PointDataModule(dataset="folder", root=str(tmp_path), supervision="full", train_scenes=["room_a", "room_b"],
                        val_scenes=["room_b", "room_c"]).scene_lists()
    (tmp_path / "scans" / "scene0000_00").mkdir(parents=True)
    (tmp_path / "split.txt").write_text("scene0000_00\n")
    with pytest.warns(UserWarning, match=r"1 of the 1 validation scenes are also training scenes \(scene0000_00\)"):
        PointDataModule(dataset="scannet", root=str(tmp_path), supervision="full", train_scenes="split.txt",
                        val_scenes="split.txt").scene_lists()
    velo = tmp_path / "kitti" / "training" / "velodyne"
    velo.mkdir(parents=True)
    (velo / "000000.bin").write_bytes(b"")
    with pytest.warns(UserWarning, match=r"data.val_ids: 1 of the 1 validation frames are also training frames \(000000\)"):
        LidarDataModule(dataset="kitti", root=str(tmp_path / "kitti"), train_ids=[0], val_ids=[0]).scene_lists()



def test_a_folders_class_list_is_the_one_its_scenes_share(tmp_path):
    """A folder dataset took its class list from the first training scene: PLY files without
    class names, whose lists run to their highest label, gave the model too few outputs when
    that scene lacked the last classes, and a folder mixing S3DIS and ScanNet-20 scenes trained
    one's labels as the other's classes (or failed inside the metric). The lists are now
    joined: the longest, a name taking a placeholder's place; one that names a class otherwise
    is refused."""
    import numpy as np
    from plyfile import PlyData, PlyElement
    from pcweak.classes import S3DIS13, join_class_lists, joined_class_list, placeholder_class
    from pcweak.data.ply import write_ply
    from pcweak.scene import Scene
    rng = np.random.default_rng(0)
    for name, top in (("a", 3), ("b", 5), ("c", 2)):
        v = np.zeros(40, [("x", "f4"), ("y", "f4"), ("z", "f4"), ("label", "i4")])
        v["x"], v["y"], v["z"] = rng.uniform(0, 3, (3, 40))
        v["label"] = np.arange(40) % (top + 1)
        PlyData([PlyElement.describe(v, "vertex")]).write(str(tmp_path / f"{name}.ply"))
    dm = PointDataModule(dataset="folder", root=str(tmp_path), supervision="full", val_scenes=["c"],
                         cache_dir=str(tmp_path / "cache"))
    assert dm.class_names == [f"class_{i}" for i in range(6)] and dm.num_classes == 6
    # weak labels imported with names (pcweak import --classes) name the training files' classes
    from pcweak.scene import WeakLabels
    weak = tmp_path.with_name(tmp_path.name + "_weak")
    weak.mkdir()
    WeakLabels(scene="a", num_points=40, classes=("ground", "tree", "car", "pole"), point_index=np.array([0, 1]),
               point_semantic=np.array([0, 1])).save(weak / "a.npz")
    by_weak = PointDataModule(dataset="folder", root=str(tmp_path), supervision="points", weak_dir=str(weak),
                              val_scenes=["c"], cache_dir=str(tmp_path / "cache"))
    assert by_weak.class_names == ["ground", "tree", "car", "pole", "class_4", "class_5"]
    # a file that names its classes (pcweak's PLY comment) fills the placeholders
    named = ("ground", "low vegetation", "car")
    write_ply(Scene(name="d", coord=rng.uniform(0, 3, (30, 3)).astype(np.float32), classes=named,
                    semantic=np.arange(30) % 3), tmp_path / "d.ply")
    _ = PointDataModule(dataset="folder", root=str(tmp_path), supervision="full", val_scenes=["c"],
                        cache_dir=str(tmp_path / "cache"))
    assert _.class_names == [*named, "class_3", "class_4", "class_5"]
    assert joined_class_list(named, S3DIS13) is None and joined_class_list((), named) == named
    assert joined_class_list((placeholder_class(0), "car"), ("ground",)) == ("ground", "car")
    assert join_class_lists((placeholder_class(0), "car"), ("ground",), KeyError) == ("ground", "car")
    with pytest.raises(KeyError, match="^1$"):  # the first label named otherwise: "low vegetation" against "tree"
        join_class_lists(named, ("ground", "tree"), KeyError)
    Scene(name="office", coord=rng.uniform(0, 3, (30, 3)).astype(np.float32), classes=S3DIS13,
          semantic=np.arange(30) % 13).save(tmp_path / "office.npz")
    with pytest.raises(ValueError, match=r"scene 'office' names other classes than the scenes before it \(label 0 is "
                                         r"'ceiling' there, 'ground' before\)"):
        _ = PointDataModule(dataset="folder", root=str(tmp_path), supervision="full", val_scenes=["c"],
                            cache_dir=str(tmp_path / "cache")).class_names
