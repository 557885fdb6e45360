"""LightningDataModule: scenes -> augmented, voxelised, collated sparse batches.

Supervision modes (``supervision``):
  ``full``           every GT label (the upper bound)
  ``points``         a few labelled points per scene (files in ``weak_dir`` named ``<scene>.npz``,
                     else simulated with ``weak.points(count=points)``, seeded per scene)
  ``pseudo``         dense pseudo-labels (files in ``pseudo_dir``; made by ``pseudo_method``
                     during ``prepare_data`` when missing or made from other scene files, weak
                     labels, settings or pcweak code, as ``pcweak label`` resumes; a file
                     another labeller made is kept), weighted by confidence
  ``points+pseudo``  both
Validation and test always score against the scenes' GT labels on the original points.

A batch (``collate``) holds per voxel ``grid_coord`` (V,3) int32, ``batch`` (V,), ``feat`` (V,F),
``seed_label`` / ``pseudo_label`` / ``instance_label`` (V,) int64, ``pseudo_weight`` (V,); per point
``inverse`` (N,) (voxel of each point), ``point_label`` / ``point_instance`` (N,) GT, ``offset`` (B,) cumulative point counts,
``names``; and the same voxel fields prefixed ``v2_`` for the second view when two views are on.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any, Iterable, Sequence

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..data.address import dataset_named
from ..errors import AddressError
from ..npzio import can_hold_folder, check_writable
from ..scene import PseudoLabels, Scene, WeakLabels
from ..weak import scene_seed
from .eval_sampler import evaluation_sampler
from .scene_cache import SceneCache, read_through
from .splits import SplitList, check_split, other_layout, shown, split_names, warn_overlap
from .transforms import Augment, feature_width, features, region_mask, voxel_labels, voxelize_sample

SUPERVISION = ("full", "points", "pseudo", "points+pseudo")
DATASETS = ("synthetic", "scannet", "s3dis", "folder")
WEAK_KINDS = ("points", "clicks", "boxes")


def check_point_data_args(h: Any) -> None:
    """ValueError naming the ``data.`` setting that is out of range, before any scene is read."""
    def need(ok: bool, key: str, want: str) -> None:
        if not ok:
            raise ValueError(f"data.{key}: expected {want}, got {getattr(h, key)!r}")
    need(h.dataset in DATASETS, "dataset", f"one of {DATASETS}")
    need(h.supervision in SUPERVISION, "supervision", f"one of {SUPERVISION}")
    need(h.weak_kind in WEAK_KINDS, "weak_kind", f"one of {WEAK_KINDS}")
    need(isinstance(h.points, int) and h.points >= 1, "points", "an integer >= 1")
    need(h.points_ratio is None or 0 < h.points_ratio <= 1, "points_ratio", "a fraction in (0, 1]")
    need(h.voxel_size > 0, "voxel_size", "metres > 0")
    need(h.batch_size >= 1, "batch_size", "an integer >= 1")
    need(h.num_workers >= 0, "num_workers", "an integer >= 0")
    need(h.synthetic_train >= 1 and h.synthetic_val >= 0, "synthetic_train", "at least one training room")
    need(h.region_mask_grid >= 0, "region_mask_grid", "an integer >= 0")
    need(h.scene_cache_gb >= 0, "scene_cache_gb", "GiB >= 0")
    need(can_hold_folder(h.cache_dir), "cache_dir", "a folder (or where one can be made), not a file")
    check_writable(h.cache_dir, "data.cache_dir")
    need(h.seed >= 0, "seed", "an integer >= 0")
    need(h.dataset != "s3dis" or isinstance(h.s3dis_val_area, str) and re.fullmatch(r"Area_\d+", h.s3dis_val_area),
         "s3dis_val_area", "an S3DIS area's folder name, Area_N (its rooms are validated on, the others trained on)")
    need("pseudo" not in h.supervision or h.pseudo_method or h.pseudo_dir, "pseudo_method",
         "a labeller (or data.pseudo_dir) for pseudo supervision")
    if h.pseudo_method:  # the labeller and its settings, checked now rather than in prepare_data
        from ..pseudo.registry import check_params
        try:
            check_params(h.pseudo_method, dict(h.pseudo_params or {}))
        except ValueError as e:
            raise ValueError(f"data.pseudo_method / data.pseudo_params: {e}") from None
        if not h.weak_dir and "pseudo" in h.supervision:  # with weak_dir: per file, in prepare_data
            check_simulated_weak_feeds(h.pseudo_method, h.pseudo_params, h.weak_kind)


def check_simulated_weak_feeds(method: str, params: dict | None, kind: str) -> None:
    """ValueError when the weak labels ``data.weak_kind`` simulates lack what ``data.pseudo_method``
    consumes (gp-boxes from simulated points, propagate from simulated boxes), which would stop
    at the first scene's labelling. The kind's fields are those of a simulation on a probe scene
    of two 8-point objects, so they are the simulator's own."""
    from ..pseudo.registry import get_labeller
    from ..scene import Scene
    rng = np.random.default_rng(0)
    probe = Scene(name="probe", coord=np.concatenate([rng.random((8, 3)), rng.random((8, 3)) + 3]).astype(np.float32),
                  semantic=np.repeat([0, 1], 8).astype(np.int64), instance=np.repeat([0, 1], 8).astype(np.int64),
                  classes=("a", "b"))
    labeller = get_labeller(method)
    missing = labeller.missing_weak(weak_for(probe, "probe", None, kind, 4, None, 0), labeller.make_config(params or {}))
    if missing is not None:
        raise ValueError(f"data.pseudo_method {method!r} needs {missing} in the weak labels, which data.weak_kind "
                         f"{kind!r} does not simulate; {method} needs {', '.join(labeller.consumes)}")


def weak_file(weak_dir: str | Path | None, name: str) -> Path | None:
    """``weak_dir/<name>.npz`` when it exists, else None (the weak labels are simulated)."""
    wf = Path(weak_dir) / f"{name}.npz" if weak_dir else None
    return wf if wf is not None and wf.is_file() else None


def _scenes_without_file(key: str, folder: str, scenes: Sequence[tuple[str, str]]) -> tuple[Path, list[str]]:
    """The folder ``data.<key>`` names and the names of ``scenes`` without a ``<scene>.npz``
    in it; ValueError naming the setting when the folder does not exist."""
    path = Path(folder)
    if not path.is_dir():
        raise ValueError(f"data.{key} {path}: no such folder")
    return path, [name for name, _ in scenes if not (path / f"{name}.npz").is_file()]


def weak_for(scene: Scene, name: str, weak_dir: str | Path | None, kind: str, points: int, ratio: float | None,
             seed: int) -> WeakLabels:
    """The scene's weak labels: ``weak_dir/<name>.npz`` when it exists, else simulated
    (``kind`` points/clicks/boxes), seeded per scene so every worker and run agree."""
    wf = weak_file(weak_dir, name)
    if wf is not None:
        w = WeakLabels.load(wf)
        w.check_against(scene)
        return w
    from .. import weak
    s = scene_seed(name, seed)
    if kind == "points":
        return weak.points(scene, seed=s, **({"ratio": ratio} if ratio else {"count": points}))
    if kind == "clicks":
        return weak.clicks(scene, seed=s)
    if kind == "boxes":
        return weak.boxes(scene, seed=s)
    raise ValueError(f"weak_kind: expected points, clicks or boxes, got {kind!r}")


def _needs_labels(path: Path, stamp: str, method: str) -> bool:
    """Whether ``prepare_data`` must (re)make the pseudo-label file ``path``: it is missing or
    unreadable, or ``method`` made it from other scene files, weak labels, settings or pcweak
    code (its fingerprint is not ``stamp``). A file another labeller made (a ``pcweak label
    --method model-walk`` folder given as ``pseudo_dir``, say) is the user's and kept."""
    from ..errors import PcweakError
    try:
        made = PseudoLabels.load(path)
    except (OSError, PcweakError):
        return True
    return made.method == method and made.fingerprint != stamp


def shared_class_list(scenes: Sequence[tuple[str, str]], disk_cache: str | Path, root: str) -> tuple[str, ...]:
    """The class list that the (name, address) ``scenes`` of the folder ``root`` share: their
    lists (``Scene.classes``; a scene without labels has none) joined by
    ``classes.joined_class_list``. A PLY or LAS file names classes up to its highest label, and
    with placeholders where it names none, so a model built from one scene's list could lack
    outputs for the others' labels. ValueError naming the scene whose list disagrees with the
    others' (ScanNet-20's beside S3DIS's, say): the folder's labels would mean different classes.
    Every scene is read (through ``disk_cache``, where the training reads them from after), with
    a progress bar."""
    from tqdm import tqdm
    from ..classes import join_class_lists
    shared: tuple[str, ...] = ()
    for name, address in tqdm(scenes, desc="class lists", unit="scene", disable=len(scenes) < 2):
        classes = tuple(read_through(disk_cache, name, address).classes)
        shared = join_class_lists(shared, classes, lambda i: ValueError(
            f"data.root {root}: scene {name!r} names other classes than the scenes before it (label {i} is "
            f"{classes[i]!r} there, {shared[i]!r} before): a folder dataset trains one class list, so keep scenes of "
            f"one dataset (or one class list) in a folder, or list them in train_scenes / val_scenes"))
    return shared


def named_by_weak_files(classes: tuple[str, ...], files: Iterable[Path]) -> tuple[str, ...]:
    """``classes`` (a folder's ``shared_class_list``) joined with the class lists of the weak-label
    ``files`` the training reads: weak labels imported with names (``pcweak import --classes``)
    name the classes its PLY files label as ``class_3``. ValueError naming the file whose list
    names a class otherwise."""
    from ..classes import join_class_lists
    for f in files:
        own = WeakLabels.load(f).classes
        classes = join_class_lists(classes, own, lambda i: ValueError(
            f"data.weak_dir: {f} names label {i} {own[i]!r}, but the folder's scenes (or the weak files before it) "
            f"name it {classes[i]!r}"))
    return classes


class SceneDataset(Dataset):
    """Scenes (addresses) with their training targets; one item = one (augmented) scene. Read
    scenes are kept in memory up to ``cache_bytes`` (``SceneCache``) and, when ``disk_cache``
    names a folder, as parsed copies there (``read_through``)."""

    def __init__(self, scenes: Sequence[tuple[str, str]], supervision: str = "full", weak_dir: str | None = None,
                 pseudo_dir: str | None = None, points: int = 200, voxel_size: float = 0.05,
                 points_ratio: float | None = None, weak_kind: str = "points",
                 feature_names: Sequence[str] = ("color", "normal"), augment: Augment | None = None,
                 two_views: bool = False, region_mask_grid: int = 0, seed: int = 0, train: bool = True,
                 cache_bytes: int = 2 << 30, disk_cache: str | None = None) -> None:
        if supervision not in SUPERVISION:
            raise ValueError(f"supervision: expected one of {SUPERVISION}, got {supervision!r}")
        self.scenes = list(scenes)
        self.supervision = supervision
        self.weak_dir = Path(weak_dir) if weak_dir else None
        self.pseudo_dir = Path(pseudo_dir) if pseudo_dir else None
        self.points = points
        self.points_ratio = points_ratio
        self.weak_kind = weak_kind
        self.voxel_size = voxel_size
        self.feature_names = tuple(feature_names)
        self.augment = augment
        self.two_views = two_views
        self.region_mask_grid = region_mask_grid
        self.seed = seed
        self.train = train
        self._cache = SceneCache(cache_bytes)
        self.disk_cache = disk_cache
        self._weak: dict[str, WeakLabels] = {}
        self._draws = 0
        self._warned_missing: set[str] = set()

    def __len__(self) -> int:
        return len(self.scenes)

    def scene(self, i: int) -> Scene:
        name, addr = self.scenes[i]
        scene = self._cache.get(name, lambda: read_through(self.disk_cache, name, addr))
        self._warn_missing_features(scene)
        return scene

    def _warn_missing_features(self, scene: Scene) -> None:
        """One warning per input feature that a scene lacks (the model is fed zeros there): a
        model trained on generated rooms with their normals scores about a third lower on the
        same rooms without them (docs/results.md, "Scenes without an input feature"), which
        nothing else would show."""
        for f in self.feature_names:
            if getattr(scene, f) is None and f not in self._warned_missing:
                self._warned_missing.add(f)
                warnings.warn(f"scene {scene.name!r} has no {f}, which the model reads (feature_names "
                              f"{list(self.feature_names)}): it is fed zeros there, as in any other scene without "
                              f"it, and a model trained on scenes that have it labels such scenes worse; train "
                              f"without {f!r} in data.feature_names if the scenes to label lack it")

    def targets(self, i: int, scene: Scene) -> dict[str, np.ndarray]:
        name = self.scenes[i][0]
        n = scene.num_points
        seed = np.full(n, -1, np.int64)
        pseudo = np.full(n, -1, np.int64)
        pconf = np.zeros(n, np.float32)
        inst = np.full(n, -1, np.int64)
        if self.train and self.supervision == "full":
            seed = scene.semantic.copy()
            if scene.instance is not None:
                inst = scene.instance.copy()
        if self.train and "points" in self.supervision:
            if name not in self._weak:  # the same every epoch; clicks cost a neighbour search per object
                self._weak[name] = weak_for(scene, name, self.weak_dir, self.weak_kind, self.points, self.points_ratio, self.seed)
            w = self._weak[name]
            if w.point_index is None:
                raise ValueError(f"supervision {self.supervision!r} needs labelled points; the weak labels of {name!r} have none")
            seed[w.point_index] = w.point_semantic
            if w.point_instance is not None:
                inst[w.point_index] = w.point_instance
        if self.train and "pseudo" in self.supervision:
            pf = self.pseudo_dir / f"{name}.npz" if self.pseudo_dir else None
            if pf is None or not pf.is_file():
                raise FileNotFoundError(f"pseudo_dir: no pseudo-labels for scene {name!r} at {pf} (set pseudo_method to make them)")
            p = PseudoLabels.load(pf)
            p.check_against(scene)
            pseudo, pconf = p.semantic, p.confidence
            if (p.instance >= 0).any():
                inst = p.instance
        return {"seed": seed, "pseudo": pseudo, "pconf": pconf, "inst": inst}

    def _view(self, s: dict, rng: np.random.Generator, mask: bool) -> dict[str, torch.Tensor]:
        v = self.augment(s, rng) if (self.augment is not None and self.train) else s
        if mask and v.get("color") is not None:
            m = region_mask(v["coord"], rng, grid=self.region_mask_grid)
            v = dict(v)
            v["color"] = np.where(m[:, None], 0.0, v["color"]).astype(np.float32)
        out = voxelize_sample(v["coord"], features(v, self.feature_names), self.voxel_size)
        nv = len(out["grid_coord"])
        out["seed_label"], _ = voxel_labels(out["inverse"], s["seed"], nv)
        out["pseudo_label"], out["pseudo_weight"] = voxel_labels(out["inverse"], s["pseudo"], nv, s["pconf"])
        out["instance_label"], _ = voxel_labels(out["inverse"], s["inst"], nv)
        return out

    def __getitem__(self, i: int) -> dict[str, Any]:
        scene = self.scene(i)
        s = {"coord": scene.coord, "color": scene.color, "normal": scene.normal, "intensity": scene.intensity}
        s.update(self.targets(i, scene))
        rng = np.random.default_rng([self.seed, torch.initial_seed() % (2 ** 31), i, self._draws])
        self._draws += 1
        item = self._view(s, rng, mask=False)
        if self.two_views and self.train:
            for k, v in self._view(s, rng, mask=self.region_mask_grid > 0).items():
                item[f"v2_{k}"] = v
        # the training targets per point too, for a point head (the voxel fields are their votes)
        item["point_seed"] = torch.from_numpy(s["seed"])
        item["point_pseudo"] = torch.from_numpy(s["pseudo"])
        item["point_pseudo_weight"] = torch.from_numpy(np.asarray(s["pconf"], np.float32))
        item["point_instance_label"] = torch.from_numpy(s["inst"])
        item["point_label"] = torch.from_numpy(scene.semantic if scene.semantic is not None else np.full(scene.num_points, -1))
        item["point_instance"] = torch.from_numpy(scene.instance if scene.instance is not None else np.full(scene.num_points, -1))
        item["name"] = self.scenes[i][0]
        return item


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Concatenate scenes: voxel fields with a batch index, inverse maps shifted per scene."""
    out: dict[str, Any] = {"names": [it["name"] for it in items], "batch_size": len(items)}
    for prefix in ("", "v2_"):
        if f"{prefix}grid_coord" not in items[0]:
            continue
        nv = [len(it[f"{prefix}grid_coord"]) for it in items]
        shift = np.concatenate([[0], np.cumsum(nv)[:-1]])
        out[f"{prefix}grid_coord"] = torch.cat([it[f"{prefix}grid_coord"] for it in items])
        out[f"{prefix}batch"] = torch.cat([torch.full((n,), b, dtype=torch.long) for b, n in enumerate(nv)])
        for k in ("feat", "seed_label", "pseudo_label", "pseudo_weight", "instance_label", "point_feat"):
            out[f"{prefix}{k}"] = torch.cat([it[f"{prefix}{k}"] for it in items])
        out[f"{prefix}inverse"] = torch.cat([it[f"{prefix}inverse"] + int(s) for it, s in zip(items, shift)])
    for k in ("point_seed", "point_pseudo", "point_pseudo_weight", "point_instance_label"):
        if k in items[0]:
            out[k] = torch.cat([it[k] for it in items])
    out["point_label"] = torch.cat([it["point_label"] for it in items])
    out["point_instance"] = torch.cat([it["point_instance"] for it in items])
    out["offset"] = torch.cumsum(torch.tensor([len(it["point_label"]) for it in items]), 0)
    return out


class PointDataModule(L.LightningDataModule):
    """Scenes of one dataset with a weak-supervision mode (see the module docstring).

    Args:
        dataset: ``synthetic`` (procedural rooms, made in ``cache_dir``), ``scannet``
            (``root`` with ``scans/`` and split lists), ``s3dis`` (``root`` with ``Area_N/``),
            or ``folder`` (``root`` holding scene files, or ``DATASET:FOLDER`` to read them as one
            dataset, ``txt:FOLDER`` for Semantic3D's ``.txt`` scans; ``train_scenes``/``val_scenes``
            name them, the training ones by default every scene but the validation ones).
        train_scenes / val_scenes: scene names, or a split .txt file (one name a line; as
            given or under ``root``). Every listed scene must be under ``root`` (ScanNet:
            ``scans/<name>/``), checked before any is read; no validation scenes is allowed.
        predict_scenes: the scenes ``pcweak predict`` writes labels for (``predict_list``;
            default: the training and validation scenes).
        synthetic_train / synthetic_val: number of procedural scenes.
        points / points_ratio: simulated labelled points per scene (count, or a ratio such as
            0.001 for 0.1 %); weak_kind: ``points``, ``clicks`` (one per instance) or ``boxes``
            (for box labellers) when weak labels are simulated rather than read from ``weak_dir``.
        pseudo_method: labeller run in ``prepare_data`` for scenes without pseudo-labels.
        voxel_size: 0.02 for ScanNet, 0.05 for S3DIS (metres).
        feature_names: per-point input features ("color", "normal", "intensity").
        scene_cache_gb: read scenes kept in memory by each dataset in each loader process (the
            least recently used dropped first), GiB; a split that fits is read once. Real
            scenes are also kept parsed in ``cache_dir/scenes/<dataset>/`` (``read_through``),
            so one dropped from memory is loaded again, not parsed again.
    """

    def __init__(self, dataset: str = "synthetic", root: str | None = None, train_scenes: list[str] | str | None = None,
                 val_scenes: list[str] | str | None = None, synthetic_train: int = 6, synthetic_val: int = 2,
                 supervision: str = "points", points: int = 200, points_ratio: float | None = None,
                 weak_kind: str = "points", weak_dir: str | None = None, pseudo_dir: str | None = None,
                 pseudo_method: str | None = None, pseudo_params: dict | None = None, voxel_size: float = 0.05,
                 feature_names: list[str] = ["color", "normal"], batch_size: int = 2, num_workers: int = 0,
                 two_views: bool = False, region_mask_grid: int = 0, augment: bool = True, seed: int = 0,
                 cache_dir: str = "outputs/cache", s3dis_val_area: str = "Area_5", scene_cache_gb: float = 2.0,
                 predict_scenes: list[str] | str | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.cache_dir = Path(cache_dir)
        tag = f"{weak_kind}{points_ratio or points}"
        self.pseudo_dir = pseudo_dir or (str(self.cache_dir / f"pseudo_{dataset}_{pseudo_method}_{tag}_{seed}") if pseudo_method else None)
        self._train: list[tuple[str, str]] = []
        self._val: list[tuple[str, str]] = []
        self._folder_classes: tuple[str, ...] | None = None
        check_point_data_args(self.hparams)
        self.in_channels = feature_width(feature_names)

    # -- facts the model is built from (linked into model.init_args by the CLI)
    @property
    def class_names(self) -> list[str]:
        """The dataset's class list (label i = class_names[i]); a folder of scenes the one its
        training and validation scenes share (``shared_class_list``), joined with the names its
        training scenes' weak-label files give (``named_by_weak_files``)."""
        from ..classes import S3DIS13, SCANNET20
        h = self.hparams
        if h.dataset in ("synthetic", "scannet"):
            return list(SCANNET20)
        if h.dataset == "s3dis":
            return list(S3DIS13)
        if self._folder_classes is None:
            tr, va = self.scene_lists()
            if not tr:
                raise ValueError("data.dataset folder: no training scene to take the class list from")
            shared = shared_class_list(tr + va, self.cache_dir / "scenes" / h.dataset, h.root)
            files = [weak_file(h.weak_dir, name) for name, _ in tr] if self._reads_weak else []
            self._folder_classes = named_by_weak_files(shared, filter(None, files))
        return list(self._folder_classes)

    @property
    def _reads_weak(self) -> bool:
        """Whether training reads weak labels: supervision by points, or a ``pseudo_method`` that
        labels from them."""
        h = self.hparams
        return "points" in h.supervision or bool(h.pseudo_method and "pseudo" in h.supervision)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def stuff_class_ids(self) -> list[int]:
        """Ids of the classes that are not instances (``classes.stuff_classes``)."""
        from ..classes import stuff_classes
        names = self.class_names
        return [names.index(c) for c in stuff_classes(tuple(names))]

    # -- scene lists
    def scene_lists(self, check_train: bool = True) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """(name, address) of the training and validation scenes, checked against ``root``:
        ValueError naming the setting when there is no training scene or a listed one is not
        there (``splits.check_split``). ``check_train`` False (validate, test: they read no
        training scene) leaves the training list of a ScanNet or S3DIS root unchecked, so a
        machine holding only the validation scenes can score a checkpoint."""
        h = self.hparams
        if h.dataset == "synthetic":
            d = self.cache_dir / "synthetic"
            tr = [(f"synthetic_{1000 + i}", f"npz:{d / f'synthetic_{1000 + i}.npz'}") for i in range(h.synthetic_train)]
            va = [(f"synthetic_{2000 + i}", f"npz:{d / f'synthetic_{2000 + i}.npz'}") for i in range(h.synthetic_val)]
            return tr, va
        if not h.root:
            raise AddressError(f"data.root is required for dataset {h.dataset!r}")
        root = self._root_folder()
        if not root.is_dir():
            raise AddressError(f"data.root {root}: no such folder")
        names = {k: split_names(getattr(h, k), root, k) for k in ("train_scenes", "val_scenes")}
        if h.dataset == "scannet":
            scans = root / "scans"
            if not scans.is_dir():
                hint = (f"it is the scans/ folder itself: give the folder above it, {root.parent}"
                        if any(p.is_dir() and dataset_named(p.name) == "scannet" for p in root.iterdir())
                        else other_layout(root) or "ScanNet's layout is ROOT/scans/sceneXXXX_XX/")
                raise AddressError(f"data.root {root}: holds no scans/ folder; {hint}")
            for k, required in ([("train_scenes", True)] if check_train else []) + [("val_scenes", False)]:
                check_split(names[k] or [], lambda n: (scans / n).is_dir(), k, f"{scans}/",
                            "name the scenes you have, inline or in a .txt file (e.g. meta_data/scannetv2_train.txt)",
                            required)
            if check_train:
                warn_overlap(names["train_scenes"] or [], names["val_scenes"] or [])
            return ([(n, f"scannet:{scans / n}") for n in names["train_scenes"] or []],
                    [(n, f"scannet:{scans / n}") for n in names["val_scenes"] or []])
        if h.dataset == "s3dis":
            rooms = sorted(p for p in root.glob("Area_*/*") if (p / "Annotations").is_dir())
            pairs = [(f"{p.parent.name}_{p.name}", f"s3dis:{p}") for p in rooms]
            tr = [x for x in pairs if not x[0].startswith(h.s3dis_val_area + "_")]
            if not pairs:
                if any((p / "Annotations").is_dir() for p in root.iterdir()):  # the rooms of one area
                    hint = f"it is one area's folder: give the folder that holds the Area_N folders, {root.parent}"
                else:
                    hint = other_layout(root) or f"S3DIS rooms are read from {root}/Area_N/<room>/Annotations/"
            else:
                hint = f"every room is in data.s3dis_val_area ({h.s3dis_val_area}), kept for validation"
                areas = sorted({p.parent.name for p in rooms}, key=lambda a: int(a[5:]) if a[5:].isdigit() else 0)
                if h.s3dis_val_area not in areas:  # its rooms would be trained on, none validated on
                    raise ValueError(f"data.s3dis_val_area {h.s3dis_val_area}: data.root {root} holds no such area "
                                     f"({', '.join(areas)}); give the area to validate on")
            if check_train:
                check_split(tr, bool, f"root {root}", f"{root}", hint)
            return tr, [x for x in pairs if x[0].startswith(h.s3dis_val_area + "_")]
        if h.dataset == "folder":
            from ..data.collection import enumerate_scenes
            try:
                allp = dict(enumerate_scenes(str(h.root)))
            except AddressError as e:
                raise AddressError(f"data.root: {e}") from None
            if names["train_scenes"] is None:  # every scene but the validation ones
                validated = set(names["val_scenes"] or [])
                names["train_scenes"] = SplitList(n for n in sorted(allp) if n not in validated)
            elif check_train:
                warn_overlap(names["train_scenes"], names["val_scenes"] or [])
            held = shown(sorted(allp))
            for k, required in (("train_scenes", True), ("val_scenes", False)):
                check_split(names[k] or [], allp.__contains__, k, f"{root}",
                            f"it holds {len(allp)} scenes ({held}; pcweak info {root} lists them)", required)
            return [(n, allp[n]) for n in names["train_scenes"]], [(n, allp[n]) for n in names["val_scenes"] or []]
        raise ValueError(f"data.dataset: expected synthetic, scannet, s3dis or folder, got {h.dataset!r}")

    def prepare_data(self) -> None:
        """Make what is missing (synthetic scenes, pseudo-labels), and what other inputs made:
        synthetic scenes of another generator (``synthetic_cache``), pseudo-labels of other
        scenes, weak labels or settings (their job fingerprint). Pseudo-labels only for a fit
        (or when called outside a trainer): validate, test and predict read none, and labelling
        a training split can take hours."""
        h = self.hparams
        stage = "fit" if self.trainer is None else self.trainer.state.fn
        fitting = stage == "fit"
        tr, va = self.scene_lists(check_train=fitting or (stage == "predict" and h.predict_scenes is None))
        if h.dataset == "synthetic":
            from ..data.synthetic_cache import ensure_cached
            from ..data.synthetic_indoor import synthetic_room
            for name, addr in tr + va:
                seed = int(name.rsplit("_", 1)[1])
                ensure_cached(addr.split(":", 1)[1], lambda: synthetic_room(seed, n_frames=0))
        if h.pseudo_method and "pseudo" in h.supervision and fitting:
            from tqdm import tqdm
            from ..data.address import load_scene
            from ..pseudo.registry import label
            from ..label_jobs import job_fingerprint
            out = Path(self.pseudo_dir)
            stamp = {n: job_fingerprint(a, self._weak_source(n), h.pseudo_method, h.pseudo_params or {}, {}) for n, a in tr}
            todo = [(n, a) for n, a in tr if _needs_labels(out / f"{n}.npz", stamp[n], h.pseudo_method)]
            self._check_weak_feeds(todo)
            for name, addr in tqdm(todo, desc=f"pseudo-labels[{h.pseudo_method}]", unit="scene", disable=not todo):
                scene = load_scene(addr)
                w = weak_for(scene, name, h.weak_dir, h.weak_kind, h.points, h.points_ratio, h.seed)
                res = label(scene, w, h.pseudo_method, **(h.pseudo_params or {}))
                res.fingerprint = stamp[name]
                res.save(out / f"{name}.npz")

    def _check_weak_feeds(self, scenes: list[tuple[str, str]]) -> None:
        """Every weak-label file of ``scenes`` in ``weak_dir`` (and the simulated kind, for
        scenes without one) holds what ``pseudo_method`` consumes: ValueError naming the first
        file that does not, before the first scene is labelled (labelling a split takes hours)."""
        from ..pseudo.registry import get_labeller
        h = self.hparams
        labeller = get_labeller(h.pseudo_method)
        config = labeller.make_config(h.pseudo_params or {})
        files = [weak_file(h.weak_dir, name) for name, _ in scenes]
        if None in files:
            check_simulated_weak_feeds(h.pseudo_method, h.pseudo_params, h.weak_kind)
        for f in filter(None, files):
            missing = labeller.missing_weak(WeakLabels.load(f), config)
            if missing is not None:
                raise ValueError(f"data.weak_dir: {f} has no {missing}, which data.pseudo_method {h.pseudo_method!r} "
                                 f"needs; {h.pseudo_method} needs {', '.join(labeller.consumes)}")

    def _weak_source(self, name: str) -> str | dict[str, Any]:
        """Where ``weak_for`` takes the scene's weak labels from: its file in ``weak_dir``, or
        what the simulation draws them with."""
        h = self.hparams
        wf = weak_file(h.weak_dir, name)
        if wf is not None:
            return str(wf)
        return {"kind": h.weak_kind, "points": h.points, "ratio": h.points_ratio, "seed": scene_seed(name, h.seed)}

    def _root_folder(self) -> Path:
        """The folder ``root`` names (a ``folder`` root may be given as ``DATASET:FOLDER``)."""
        from ..data.collection import scene_folder_path
        h = self.hparams
        return scene_folder_path(str(h.root)) if h.dataset == "folder" else Path(h.root)

    def predict_list(self) -> list[tuple[str, str]]:
        """(name, address) of the scenes ``pcweak predict`` runs on: ``predict_scenes`` (names
        or a split file: ScanNet scans under ``scans/`` or, its unlabelled test scans,
        ``scans_test/``; any scene of a ``folder``; S3DIS and synthetic scenes of the training
        or validation lists), else the training and validation scenes."""
        h = self.hparams
        names = split_names(h.predict_scenes, self._root_folder() if h.root else None, "predict_scenes")
        if names is None:
            tr, va = self.scene_lists()
            return tr + va
        if h.dataset == "scannet":
            root = Path(h.root)
            where = lambda n: next((d / n for d in (root / "scans", root / "scans_test") if (d / n).is_dir()), None)  # noqa: E731
            check_split(names, lambda n: where(n) is not None, "predict_scenes", f"{root}/scans/ or scans_test/",
                        "name scans you have", True, "scenes", "to predict")
            return [(n, f"scannet:{where(n)}") for n in names]
        if h.dataset == "folder":  # any scene the folder holds
            from ..data.collection import enumerate_scenes
            known = dict(enumerate_scenes(str(h.root)))
        else:
            tr, va = self.scene_lists()
            known = dict(tr + va)
        check_split(names, known.__contains__, "predict_scenes", f"the scenes of data.dataset {h.dataset}",
                    "name some it holds", True, "scenes", "to predict")
        return [(n, known[n]) for n in names]

    def setup(self, stage: str | None = None) -> None:
        if stage == "predict":
            self._predict = self.predict_list()
            return
        self._train, self._val = self.scene_lists(check_train=stage not in ("validate", "test"))
        if stage in (None, "fit"):
            self._check_weak_dir(self._train)
            self._check_pseudo_dir(self._train)

    def _check_weak_dir(self, scenes: list[tuple[str, str]]) -> None:
        """``weak_dir`` against the training ``scenes``, before any is read: a folder that does
        not exist, or holds no ``<scene>.npz`` of any of them (another split's, files named
        otherwise), is a ValueError, since every scene's weak labels would be simulated from its
        ground truth without a word; scenes without a file there are named in a warning (theirs
        are simulated, as without ``weak_dir``). Only where weak labels are read: supervision by
        points, or a ``pseudo_method`` that labels from them."""
        h = self.hparams
        if not h.weak_dir or not self._reads_weak or not scenes:
            return
        folder, without = _scenes_without_file("weak_dir", h.weak_dir, scenes)
        count = f", data.points_ratio {h.points_ratio}" if h.points_ratio else f", data.points {h.points}"
        simulated = f"data.weak_kind {h.weak_kind}{count if h.weak_kind == 'points' else ''}"
        if len(without) == len(scenes):
            raise ValueError(f"data.weak_dir {folder}: holds no weak-label file of the {len(scenes)} training scenes "
                             f"(<scene>.npz: {shown(without)}); pcweak simulate / import write them so; without data.weak_dir "
                             f"they are simulated ({simulated})")
        if without and (self.trainer is None or self.trainer.is_global_zero):
            have = "has" if len(without) == 1 else "have"
            warnings.warn(f"data.weak_dir {folder}: {len(without)} of the {len(scenes)} training scenes {have} no file "
                          f"there ({shown(without)}); their weak labels are simulated from their ground truth ({simulated})")

    def _check_pseudo_dir(self, scenes: list[tuple[str, str]]) -> None:
        """A ``pseudo_dir`` of the user's own (pseudo supervision without ``pseudo_method``, which
        would make the files) holds every training scene's ``<scene>.npz``: ValueError naming
        those without one before the fit starts, not at the first batch that reads one."""
        h = self.hparams
        if "pseudo" not in h.supervision or h.pseudo_method or not h.pseudo_dir or not scenes:
            return
        folder, without = _scenes_without_file("pseudo_dir", h.pseudo_dir, scenes)
        if without:
            raise ValueError(f"data.pseudo_dir {folder}: {len(without)} of the {len(scenes)} training scenes have no "
                             f"pseudo-label file there ({shown(without)}); pcweak label writes <scene>.npz, or set "
                             f"data.pseudo_method to make them")

    def evaluation_scenes(self, stage: str) -> list[tuple[str, str]]:
        """(name, address) of the scenes ``stage`` evaluates: those to predict, else validation's."""
        return self.predict_list() if stage == "predict" else self.scene_lists(check_train=False)[1]

    def _dataset(self, scenes, train: bool) -> SceneDataset:
        h = self.hparams
        return SceneDataset(scenes, h.supervision, h.weak_dir, self.pseudo_dir, h.points, h.voxel_size, h.points_ratio,
                            h.weak_kind, h.feature_names, Augment() if (h.augment and train) else None,
                            h.two_views and train, h.region_mask_grid, h.seed, train, int(h.scene_cache_gb * 2**30),
                            None if h.dataset == "synthetic" else str(self.cache_dir / "scenes" / h.dataset))

    def _loader(self, scenes, stage: str) -> DataLoader:
        """Training batches shuffled (``stage`` fit), else one scene a batch in order, each
        process of a distributed run on its own share (``evaluation_sampler``)."""
        g = torch.Generator().manual_seed(self.hparams.seed)
        train = stage == "fit"
        ds = self._dataset(scenes, train)
        return DataLoader(ds, batch_size=self.hparams.batch_size if train else 1, shuffle=train,
                          sampler=None if train else evaluation_sampler(ds, stage),
                          num_workers=self.hparams.num_workers, collate_fn=collate, generator=g,
                          persistent_workers=self.hparams.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self._train, "fit")

    def val_dataloader(self) -> DataLoader:
        return self._loader(self._val, "validate")

    def test_dataloader(self) -> DataLoader:
        return self._loader(self._val, "test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self._predict, "predict")
