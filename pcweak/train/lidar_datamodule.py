"""LiDAR frames for detection: synthetic KITTI-like frames or a KITTI split, with weak targets.

Weak modes (``weak_mode``): ``full`` (every GT box); ``clicks`` (one click on each object, WS3D)
and ``clusters`` (each object's points as a labelled cluster, MixSup): ``box_fraction`` of the
training frames are fully boxed, they teach the class sizes (``learn_box_geometry``) and the
other frames get a pseudo box for every object from ``click-boxes`` / ``cluster-boxes``;
``boxes2d`` (no 3D box at all: the image boxes teach the class footprints,
``learn_sizes_from_image_boxes``, and give a pseudo box each, ``boxes2d-frustum``, plus VG-W3D's
projected-box loss). The detector then trains on the pseudo boxes as on GT boxes, the regression of each
weighted by its confidence. Each item carries ``centres`` (M,3) + ``centre_class`` for the
heatmap, and ``reg_boxes`` (R,7) + ``reg_class`` + ``reg_weight`` for the regression targets.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..geometry import KITTI_PC_RANGE, voxel_grid_problem
from ..kitti_objects import KittiObjects
from ..errors import AddressError
from ..npzio import can_hold_folder, check_writable
from ..scene import KittiCalib, Scene
from ..weak import boxed_frames
from .eval_sampler import evaluation_sampler
from .scene_cache import SceneCache
from .splits import SplitList, check_split, other_layout, split_names, warn_overlap



WEAK_MODES = ("full", "clicks", "boxes2d", "clusters")
# the weak modes whose training frames are a fully boxed share (``box_fraction``) plus weak ones
BOXED_SHARE_MODES = ("clicks", "clusters")


def kitti_id(name: str) -> str:
    """A KITTI frame id as its files are named: digits padded to six (YAML reads an unquoted
    ``000003`` as the number 3)."""
    return name.zfill(6) if name.isdigit() else name


def frame_ids(value: list[str | int] | str | None, root: Path, key: str) -> SplitList | None:
    """``splits.split_names`` for KITTI frame ids, each as ``kitti_id`` names its files."""
    ids = split_names(value, root, key)
    if ids is not None:
        ids[:] = [kitti_id(i) for i in ids]
    return ids


class EvalFrame:
    """What detections of a frame are scored against: its KITTI ground truth (every type and
    DontCare region, camera frame), and the calibration and image ``(height, width)`` that put
    LiDAR-frame detections into the same form. A plain class (not a dataclass), so that
    Lightning's batch transfer passes it through untouched."""

    __slots__ = ("ground_truth", "calib", "image_size")

    def __init__(self, ground_truth: KittiObjects, calib: KittiCalib, image_size: tuple[int, int]) -> None:
        self.ground_truth, self.calib, self.image_size = ground_truth, calib, image_size


class LidarDataset(Dataset):
    def __init__(self, scenes: list[tuple[str, str]], voxel_size=(0.1, 0.1, 0.2), pc_range=KITTI_PC_RANGE, weak_mode: str = "full",
                 box_fraction: float = 0.1, seed: int = 0, train: bool = True, augment: bool = True,
                 cache_bytes: int = 2 << 30) -> None:
        if weak_mode not in WEAK_MODES:
            raise ValueError(f"weak_mode: expected one of {WEAK_MODES}, got {weak_mode!r}")
        self.scenes, self.vs, self.rng_seed = scenes, np.asarray(voxel_size, np.float64), seed
        self.pc = np.asarray(pc_range, np.float64)
        self.mode, self.train, self.augment = weak_mode, train, augment
        self.boxed = boxed_frames([n for n, _ in scenes], box_fraction, seed) if weak_mode in BOXED_SHARE_MODES else set()
        self._geometry: dict[str, Any] | None = None
        self._cache: dict[str, Any] = {}  # name -> (targets, KITTI ground truth, weak anchors): small, kept
        self._scenes = SceneCache(cache_bytes)  # the frames' points: within the bound

    def grid(self) -> tuple[int, int, int]:
        return tuple(int(round(v)) for v in (self.pc[3:] - self.pc[:3]) / self.vs)

    def __len__(self) -> int:
        return len(self.scenes)

    def geometry(self) -> dict[str, Any]:
        """The class sizes the weak labels teach (learned once): the fully boxed training frames'
        boxes (clicks, clusters); for 2D image boxes, which come without any 3D box, the class
        footprints under which fitted boxes project onto them
        (``frustum_boxes.learn_sizes_from_image_boxes``)."""
        if self._geometry is None:
            from .. import weak
            if self.mode == "boxes2d":
                from ..pseudo.frustum_boxes import learn_sizes_from_image_boxes
                self._geometry = learn_sizes_from_image_boxes((s, weak.boxes2d(s)) for s in map(self.scene, range(len(self)))).to_dict()
            else:
                from ..pseudo.object_boxes import learn_box_geometry
                frames = [self.scene(i) for i, (n, _) in enumerate(self.scenes) if n in self.boxed]
                self._geometry = learn_box_geometry((s, weak.boxes(s, axis_aligned=False)) for s in frames).to_dict()
        return self._geometry

    def _targets(self, name: str, scene) -> tuple[dict[str, np.ndarray], Any]:
        """The frame's training targets, and the weak anchors of its pseudo boxes (None where the
        targets are GT boxes)."""
        if scene.boxes is None:  # an unlabelled frame (KITTI's testing split): nothing to train or score
            boxes, cls = np.zeros((0, 7)), np.zeros(0, np.int64)
        else:
            keep = scene.box_labels >= 0
            boxes, cls = scene.boxes[keep].astype(np.float64), scene.box_labels[keep]
        ones = np.ones(len(boxes))
        if not self.train or self.mode == "full" or name in self.boxed:
            # (evaluation: the KITTI ground truth travels apart, see __getitem__)
            return {"centres": boxes[:, :3], "centre_class": cls, "reg_boxes": boxes, "reg_class": cls, "reg_weight": ones}, None
        from .. import weak
        from ..pseudo.agreement import WeakAnchors
        from ..pseudo.registry import label
        if self.mode in ("clicks", "clusters"):
            seed = weak.scene_seed(name, self.rng_seed)  # the draw `pcweak simulate FOLDER --seed` writes
            w = weak.clicks(scene, seed=seed) if self.mode == "clicks" else weak.clusters(scene, seed=seed)
            p = label(scene, w, "click-boxes" if self.mode == "clicks" else "cluster-boxes", geometry=self.geometry())
            if self.mode == "clicks":
                anchors = WeakAnchors("clicks", clicks=scene.coord[p.extras["click_index"]].astype(np.float64))
            else:
                ok = (w.point_semantic >= 0) & (w.point_instance >= 0)
                ids = np.unique(w.point_instance[ok])
                anchors = WeakAnchors("clusters", clusters=[scene.coord[w.point_index[ok & (w.point_instance == ids[k])]].astype(np.float64)
                                                            for k in p.extras["cluster"]])
            pb = p.box.astype(np.float64)
            return ({"centres": pb[:, :3], "centre_class": p.box_semantic, "reg_boxes": pb, "reg_class": p.box_semantic,
                     "reg_weight": p.box_confidence.astype(np.float64)}, anchors)
        w = weak.boxes2d(scene)
        p = label(scene, w, "boxes2d-frustum", geometry=self.geometry())
        pb = p.box.astype(np.float64)
        P = scene.frames[0].projection()  # LiDAR -> image_2 pixels
        box2d = w.box2d[p.extras["box2d_index"]].astype(np.float64)
        return ({"centres": pb[:, :3], "centre_class": p.box_semantic, "reg_boxes": pb, "reg_class": p.box_semantic,
                 "reg_weight": p.box_confidence.astype(np.float64), "reg_box2d": box2d, "proj": P},
                WeakAnchors("boxes2d", box2d=box2d, proj=P))

    def weak_frames(self) -> list[int]:
        """Indices of the frames whose targets are pseudo boxes (the ones self-training refines)."""
        return [i for i in range(len(self)) if self.targets(i)[2] is not None]

    def frame_batch(self, i: int) -> dict[str, Any]:
        """Frame ``i`` alone as a batch, not augmented: what self-training detects on."""
        return collate_lidar([self.item(i, augment=False)])

    def refine(self, i: int, det_boxes: np.ndarray, det_class: np.ndarray, det_score: np.ndarray,
               **thresholds: float) -> tuple[int, int]:
        """Self-training: frame ``i``'s pseudo boxes that agree with a detection (LiDAR frame, (D,7))
        become that detection (``pseudo.agreement.replace_agreeing``); returns (boxes replaced,
        pseudo boxes of the frame). The weak anchors stay those of the weak labels, so a round
        never drifts from them."""
        from ..pseudo.agreement import replace_agreeing
        t, kitti, anchors = self.targets(i)
        if anchors is None or not len(t["reg_boxes"]):
            return 0, len(t["reg_boxes"])
        boxes, conf, replaced = replace_agreeing(t["reg_boxes"], t["reg_class"], t["reg_weight"], anchors, det_boxes, det_class,
                                                 det_score, **thresholds)
        t = {**t, "reg_boxes": boxes, "centres": boxes[:, :3].copy(), "reg_weight": conf}
        self._cache[self.scenes[i][0]] = (t, kitti, anchors)
        return int(replaced.sum()), len(boxes)

    @staticmethod
    def _augment(pts: np.ndarray, t: dict[str, np.ndarray]) -> None:
        """SECOND's global augmentation, in place: flip about the x axis (p = 0.5), rotation
        about z in [-pi/4, pi/4], scaling in [0.95, 1.05]; a LiDAR-to-image ``proj`` (boxes2d)
        moves with them, so every box keeps its image box. Drawn from torch's generator, which
        Lightning seeds and which differs per step and per worker (a numpy generator seeded per
        item would repeat the same draw every epoch)."""
        flip, ang, scale = torch.rand(3).tolist()
        ang, scale = (ang - 0.5) * np.pi / 2, 0.95 + 0.1 * scale
        boxes, cen = t["reg_boxes"], t["centres"]
        if flip < 0.5:
            for a in (pts, boxes, cen):
                a[:, 1] *= -1
            boxes[:, 6] *= -1
        c, s = np.cos(ang), np.sin(ang)
        R = np.array([[c, -s], [s, c]])
        for a in (pts, boxes, cen):
            a[:, :2] = a[:, :2] @ R.T
            a[:, :3] *= scale
        boxes[:, 3:6] *= scale
        boxes[:, 6] = (boxes[:, 6] + ang + np.pi) % (2 * np.pi) - np.pi
        if "proj" in t:  # the camera sees the moved points where it saw the originals: P' = P A^-1
            A = scale * np.block([[R, np.zeros((2, 1))], [np.zeros((1, 2)), np.ones((1, 1))]]) @ np.diag([1.0, -1.0 if flip < 0.5 else 1.0, 1.0])
            inv = np.eye(4)
            inv[:3, :3] = np.linalg.inv(A)
            t["proj"] = np.asarray(t["proj"], np.float64) @ inv

    def scene(self, i: int) -> Any:
        """Frame ``i``'s scene, kept in memory while the dataset's scenes fit its byte bound
        (``SceneCache``), else read again."""
        from ..data.address import load_scene
        name, addr = self.scenes[i]
        return self._scenes.get(name, lambda: load_scene(addr))

    def targets(self, i: int) -> tuple[dict[str, np.ndarray], EvalFrame | None, Any]:
        """Frame ``i``'s training targets, (evaluation) KITTI ground truth and (weak modes) the
        weak anchors of its pseudo boxes, made once from its scene and kept (self-training
        replaces the targets in place, ``refine``)."""
        name = self.scenes[i][0]
        if name not in self._cache:
            s = self.scene(i)
            kitti = None
            if not self.train:  # what KITTI's devkit scores against: every object of the frame, in camera form
                from ..data.kitti import ground_truth_objects, image_size_of
                kitti = EvalFrame(ground_truth_objects(s), s.calib, image_size_of(s))
            targets, anchors = self._targets(name, s)
            self._cache[name] = (targets, kitti, anchors)
        return self._cache[name]

    def entry(self, i: int) -> tuple[Any, dict[str, np.ndarray], EvalFrame | None, Any]:
        """Frame ``i``'s scene with its ``targets``."""
        t = self.targets(i)
        return (self.scene(i), *t)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.item(i, self.train and self.augment)

    def item(self, i: int, augment: bool) -> dict[str, Any]:
        """Frame ``i`` voxelised (``feat`` (V,4) mean x, y, z, intensity; ``coord`` (V,3) int voxel
        x, y, z) with its targets, augmented (``_augment``) when asked."""
        name = self.scenes[i][0]
        scene, t, kitti, _ = self.entry(i)
        pts = np.concatenate([scene.coord, (scene.intensity if scene.intensity is not None else np.zeros(scene.num_points))[:, None]], 1).astype(np.float64)
        t = {k: np.array(v, copy=True) for k, v in t.items()}
        if augment:
            self._augment(pts, t)
        lo, hi = self.pc[:3], self.pc[3:]
        m = ((pts[:, :3] >= lo) & (pts[:, :3] < hi)).all(1)
        pts = pts[m]
        from .. import ops
        # anisotropic voxels (x, y, z sizes differ): integer coordinates per axis, then group
        g = np.floor((pts[:, :3] - lo) / self.vs).astype(np.int64)
        _, ny, nz = self.grid()
        key = (g[:, 0] * ny + g[:, 1]) * nz + g[:, 2]
        uk, inv = np.unique(key, return_inverse=True)
        inv_t = torch.from_numpy(inv.ravel())
        feat = ops.scatter(torch.from_numpy(pts).float(), inv_t, len(uk), "mean")
        coord = torch.from_numpy(np.stack([uk // (ny * nz), (uk // nz) % ny, uk % nz], 1))
        item = {"name": name, "feat": feat, "coord": coord, **{k: torch.from_numpy(np.asarray(x)) for k, x in t.items()}}
        if kitti is not None:
            item["kitti"] = kitti
        return item


def target_quality(scene, targets: dict[str, np.ndarray]) -> dict[str, Any]:
    """How good a weak mode's targets are against the scene's GT boxes: centre error of the
    heatmap targets, and 3D / BEV IoU and recall at 3D IoU 0.5 / 0.7 of the regression boxes."""
    from ..metrics.boxes import box_quality
    keep = scene.box_labels >= 0
    gt = scene.boxes[keep].astype(np.float64)
    c = np.asarray(targets["centres"]).reshape(-1, 3)
    err = [float(np.linalg.norm(c[:, :2] - g[:2], axis=1).min()) if len(c) else float("inf") for g in gt]
    q = box_quality(np.asarray(targets["reg_boxes"]), gt)
    q.update({"centre_error_m": [round(e, 3) for e in err], "objects_with_box_targets": int(len(targets["reg_boxes"]))})
    return q


def collate_lidar(items: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"names": [it["name"] for it in items], "batch_size": len(items)}
    out["feat"] = torch.cat([it["feat"] for it in items])
    out["coord"] = torch.cat([it["coord"] for it in items])
    out["batch"] = torch.cat([torch.full((len(it["feat"]),), b, dtype=torch.long) for b, it in enumerate(items)])
    for k in ("centres", "centre_class", "reg_boxes", "reg_class", "reg_weight", "reg_box2d", "proj", "kitti"):
        if k in items[0]:
            out[k] = [it[k] for it in items]
    return out


class LidarDataModule(L.LightningDataModule):
    """``dataset``: ``synthetic`` (procedural frames made in ``cache_dir``) or ``kitti``
    (``root``/training with ``train_ids`` / ``val_ids``: frame ids, or a split file as given or
    under ``root``; by default ``root``/ImageSets/train.txt and val.txt where they exist; every
    listed frame's ``velodyne/<id>.bin`` checked before any is read). ``scene_cache_gb``: frames' points kept
    in memory by each dataset in each loader process (least recently used dropped first), GiB;
    their targets are small and always kept. ``predict_split`` / ``predict_ids``: the frames
    ``pcweak predict`` writes detections for (``predict_frames``: by default the validation
    frames; ``testing`` without ids: every frame of KITTI's unlabelled test split)."""

    def __init__(self, dataset: str = "synthetic", root: str | None = None, train_ids: list[str | int] | str | None = None,
                 val_ids: list[str | int] | str | None = None, synthetic_train: int = 8, synthetic_val: int = 2, weak_mode: str = "full",
                 box_fraction: float = 0.1, voxel_size: list[float] = [0.1, 0.1, 0.2],
                 batch_size: int = 2, num_workers: int = 0, seed: int = 0, cache_dir: str = "outputs/cache",
                 augment: bool = True, pc_range: list[float] = list(KITTI_PC_RANGE), scene_cache_gb: float = 2.0,
                 predict_split: str = "training", predict_ids: list[str | int] | str | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        problem = voxel_grid_problem(pc_range, voxel_size)
        if problem:
            raise ValueError(f"data.pc_range / data.voxel_size: expected {problem}")
        for ok, key, want in ((dataset in ("synthetic", "kitti"), "dataset", "synthetic or kitti"),
                              (weak_mode in WEAK_MODES, "weak_mode", f"one of {WEAK_MODES}"),
                              (0 <= box_fraction <= 1, "box_fraction", "a fraction in [0, 1]"),
                              (batch_size >= 1, "batch_size", "an integer >= 1"),
                              (dataset != "synthetic" or synthetic_train >= 1, "synthetic_train", "an integer >= 1"),
                              (synthetic_val >= 0, "synthetic_val", "an integer >= 0"),
                              (num_workers >= 0, "num_workers", "an integer >= 0"),
                              (scene_cache_gb >= 0, "scene_cache_gb", "GiB >= 0"),
                              (can_hold_folder(cache_dir), "cache_dir", "a folder (or where one can be made), not a file"),
                              (seed >= 0, "seed", "an integer >= 0"),
                              (predict_split in ("training", "testing"), "predict_split", "training or testing"),
                              (dataset != "kitti" or root, "root", "the KITTI folder (holding training/)")):
            if not ok:
                raise ValueError(f"data.{key}: expected {want}, got {self.hparams[key]!r}")
        check_writable(cache_dir, "data.cache_dir")
        self._train_ds: LidarDataset | None = None
        # facts the detector is built from (linked into model.init_args by the CLI)
        self.voxel_size, self.pc_range = [float(v) for v in voxel_size], [float(v) for v in pc_range]

    def scene_lists(self):
        h = self.hparams
        if h.dataset == "synthetic":
            d = Path(h.cache_dir) / "synthetic_lidar"
            mk = lambda i: (f"synthetic_lidar_{i}", f"npz:{d / f'synthetic_lidar_{i}.npz'}")  # noqa: E731
            return [mk(3000 + i) for i in range(h.synthetic_train)], [mk(4000 + i) for i in range(h.synthetic_val)]
        if h.dataset == "kitti":
            root = Path(h.root)
            if not root.is_dir():
                raise AddressError(f"data.root {root}: no such folder")
            split = root / "training"
            if not (split / "velodyne").is_dir():
                from ..data.collection import is_semantickitti_sequence
                if is_semantickitti_sequence(root):
                    hint = "it is a SemanticKITTI sequence (point labels, no boxes); detection trains on KITTI's 3D object split"
                elif (root / "velodyne").is_dir():
                    hint = f"it is a split folder itself: give the folder above it, {root.parent}"
                else:
                    layout = "KITTI's 3D object layout is ROOT/training/velodyne/, label_2/, calib/"
                    hint = other_layout(root, f" (pcweak info {root} lists them); {layout}") or layout
                raise AddressError(f"data.root {root}: holds no training/velodyne/ folder; {hint}")
            lists = []
            for key, default, required in (("train_ids", "ImageSets/train.txt", True), ("val_ids", "ImageSets/val.txt", False)):
                given = getattr(h, key)
                if given is None and (root / default).is_file():
                    given = default
                ids = frame_ids(given, root, key) or SplitList()
                check_split(ids, lambda i: (split / "velodyne" / f"{i}.bin").is_file(), key, f"{split / 'velodyne'}/",
                            f"give frame ids (e.g. ['000000']) or a split file (e.g. {default})", required, "frames")
                lists.append([(i, f"kitti:{split / i}") for i in ids])
            warn_overlap([i for i, _ in lists[0]], [i for i, _ in lists[1]], "frames", "val_ids")
            return lists[0], lists[1]
        raise ValueError(f"data.dataset: expected synthetic or kitti, got {h.dataset!r}")

    def prepare_data(self) -> None:
        if self.hparams.dataset == "synthetic":
            from ..data.synthetic_cache import ensure_cached
            from ..data.synthetic_lidar import synthetic_lidar

            def make(seed: int) -> Scene:
                s = synthetic_lidar(seed)
                # keep the camera (the frustum mode projects), not its image
                s.frames = [f.camera() for f in s.frames]
                return s
            for name, addr in sum(self.scene_lists(), []):
                seed = int(name.rsplit("_", 1)[1])
                ensure_cached(addr.split(":", 1)[1], lambda: make(seed))

    def predict_frames(self) -> list[tuple[str, str]]:
        """The frames ``pcweak predict`` runs on: ``predict_ids`` (ids or a split file) of
        ``root``/``predict_split``, every frame of that split when no ids are given for
        ``testing`` (KITTI's benchmark frames, unlabelled), else the validation frames."""
        h = self.hparams
        if h.dataset != "kitti" or (h.predict_split == "training" and h.predict_ids is None):
            return self.scene_lists()[1]
        root = Path(h.root)
        split = root / h.predict_split
        velodyne = split / "velodyne"
        ids = frame_ids(h.predict_ids, root, "predict_ids")
        if ids is None:
            ids = SplitList(sorted(p.stem for p in velodyne.glob("*.bin")))
        check_split(ids, lambda i: (velodyne / f"{i}.bin").is_file(), "predict_ids", f"{velodyne}/",
                    f"give frame ids or a split file of {split}'s frames", True, "frames", f"in {velodyne}/ to predict")
        return [(i, f"kitti:{split / i}") for i in ids]

    def setup(self, stage: str | None = None) -> None:
        if stage == "predict":
            self._predict = self.predict_frames()
            return
        self._train, self._val = self.scene_lists()

    def evaluation_scenes(self, stage: str) -> list[tuple[str, str]]:
        """(name, address) of the frames ``stage`` evaluates: those to predict, else validation's."""
        return self.predict_frames() if stage == "predict" else self.scene_lists()[1]

    def train_dataset(self) -> LidarDataset:
        """The training frames' dataset, made once: its scenes and (pseudo-)targets serve
        ``quality_report`` and training alike. In a weak mode the class sizes and every frame's
        pseudo boxes are made here, once, in this process: loader workers inherit them (they
        are started afresh each epoch, and what one makes dies with it)."""
        if self._train_ds is None:
            ds = self._train_ds = self._ds(self.scene_lists()[0], True)
            if self.hparams.weak_mode != "full":
                from tqdm import tqdm
                ds.geometry()
                for i in tqdm(range(len(ds)), desc=f"targets[{self.hparams.weak_mode}]", unit="frame",
                              disable=len(ds) < 2):
                    ds.targets(i)
        return self._train_ds

    def quality_report(self) -> dict[str, Any]:
        """``target_quality`` of the training targets of every training scene."""
        ds = self.train_dataset()
        out = {}
        for i, (name, _) in enumerate(ds.scenes):
            scene, t, _, _ = ds.entry(i)
            out[name] = target_quality(scene, t)
        return out

    def _ds(self, scenes, train):
        h = self.hparams
        return LidarDataset(scenes, h.voxel_size, h.pc_range, h.weak_mode if train else "full", h.box_fraction, h.seed, train,
                            h.augment, int(h.scene_cache_gb * 2**30))

    def train_dataloader(self):
        return DataLoader(self.train_dataset(), batch_size=self.hparams.batch_size, shuffle=True, collate_fn=collate_lidar,
                          num_workers=self.hparams.num_workers, generator=torch.Generator().manual_seed(self.hparams.seed))

    def _eval_loader(self, scenes, stage: str) -> DataLoader:
        ds = self._ds(scenes, False)
        return DataLoader(ds, batch_size=1, sampler=evaluation_sampler(ds, stage), collate_fn=collate_lidar,
                          num_workers=self.hparams.num_workers)

    def val_dataloader(self):
        return self._eval_loader(self._val, "validate")

    def test_dataloader(self):
        return self._eval_loader(self._val, "test")

    def predict_dataloader(self):
        return self._eval_loader(self._predict, "predict")
