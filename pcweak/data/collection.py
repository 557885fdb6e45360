"""Folders of scenes: ``enumerate_scenes`` turns a folder (or address) into (name, address) pairs."""
from __future__ import annotations

from pathlib import Path

from ..errors import AddressError, ReaderError
from .address import DATASETS, FILE_KINDS, LISTED_ONLY_WHEN_NAMED, check_indoor_dataset, dataset_named, folder_kind, parse_address, scene_name


def enumerate_scenes(arg: str) -> list[tuple[str, str]]:
    """One scene address -> [(name, address)]; a folder -> every scene in it, sorted by name.

    Folders understood: ScanNet ``scans/`` (sub-folders with ``<name>_vh_clean_2.ply``), a KITTI
    split (``velodyne/*.bin``), an S3DIS area (rooms with ``Annotations/``) or root of areas, mmdetection3d's
    processed root (``points/*.bin``; ``Area_*`` names are S3DIS rooms; a root that also holds
    the raw ``scans/`` lists those unless ``mmdet3d-scannet:`` is given), a folder of
    mmdetection3d / VoteNet exports (``*_vert_all.npy``), Pointcept's split or area folders
    (scene folders with ``coord.npy``, or a root holding such folders), a SemanticKITTI
    sequence, ``sequences/`` folder or root (told from a KITTI split by its ``labels/``;
    ``semantickitti:`` for one without), and folders of ``.npz`` /
    ``.ply`` / ``.las`` / ``.laz`` / ``.e57`` / ``.pcd`` / ``.xyz`` / ``.pts`` scene files (weak- and
    pseudo-label ``.npz`` files beside them are not scenes), and with ``txt:FOLDER`` its ``.txt``
    point clouds (Semantic3D's scans). ``DATASET:FOLDER`` forces the dataset."""
    kind, p = _dataset_and_path(arg)
    if names_one_scene(arg):
        k, rest = parse_address(arg)
        address = arg if ":" in arg else f"{k}:{rest}"
        return [(scene_name(address), address)]
    out = _scenes_in(p, kind)
    if not out:
        raise AddressError(f"{p}: no scenes found{f' as {kind}' if kind else ''} ({_where_the_scenes_are(p, kind)})")
    _check_one_scene_a_name(p, out)
    return sorted(out)


def _check_one_scene_a_name(p: Path, scenes: list[tuple[str, str]]) -> None:
    """AddressError when two scenes of the folder ``p`` share a name (``room.ply`` beside
    ``room.las``, say): their weak-label and output files are named by the scene, so the second
    would overwrite the first's."""
    by_name: dict[str, list[str]] = {}
    for name, address in scenes:
        by_name.setdefault(name, []).append(address)
    same = sorted((n, a) for n, a in by_name.items() if len(a) > 1)
    if same:
        name, addresses = same[0]
        more = f", and {len(same) - 1} other name(s) likewise" if len(same) > 1 else ""
        raise AddressError(f"{p}: {len(addresses)} scenes are named {name!r} ({', '.join(sorted(addresses))}){more}: weak-label "
                           f"and output files are named by the scene, so one would overwrite another's; rename or move all but one")


# the folders inside a dataset's tree that hold parts of its scenes, not scenes
PART_FOLDERS = ("velodyne", "label_2", "calib", "image_2", "labels", "Annotations", "posed_images", "infos",
                "semantic_mask", "instance_mask", "meta_data", "color", "depth", "pose", "intrinsic")


def _where_the_scenes_are(p: Path, kind: str | None = None) -> str:
    """What to give instead of the folder ``p`` that holds no scenes (of the dataset ``kind`` its
    address forces): the scenes it holds read without ``kind``, a KITTI root's split, the
    folder above one that holds parts of its scenes (``velodyne/``, ``posed_images/``, ...), else
    the layouts understood."""
    if kind is not None:
        try:
            found = sorted(_addresses_in(p, None))
        except (AddressError, ReaderError):
            found = []
        if found:
            kinds = sorted({a.split(":", 1)[0] for a in found})
            return f"without '{kind}:' it holds {len(found)} scene(s) of {', '.join(kinds)}, e.g. {found[0]}"
    splits = [s for s in ("training", "testing") if (p / s / "velodyne").is_dir()]
    if splits:
        return f"a KITTI root: give one split, {' or '.join(str(p / s) for s in splits)}"
    if p.name in PART_FOLDERS:
        try:
            above = enumerate_scenes(str(p.parent))
        except AddressError:
            above = []
        if above:
            return f"it is the {p.name}/ folder of {p.parent}, which holds {len(above)} scene(s): give that folder"
    texts = sorted(c.name for c in p.glob("*") if c.suffix.lower() in LISTED_ONLY_WHEN_NAMED and c.is_file()) if p.is_dir() else []
    if texts and kind is None:
        return f"its {len(texts)} .txt file(s) ({texts[0]}, ...) are read as point clouds with txt:{p}"
    return ("expected ScanNet scans, a KITTI split, S3DIS rooms, mmdetection3d's points/ folder, Pointcept scene folders, "
            "a SemanticKITTI sequence or .npz/.ply/.las/.laz/.e57/.pcd/.xyz/.pts files (.txt point clouds: txt:FOLDER)")


def _dataset_and_path(arg: str) -> tuple[str | None, Path]:
    """The dataset ``DATASET:PATH`` forces (None without one) and the path."""
    if ":" in arg and arg.split(":", 1)[0] in DATASETS:
        kind, path = parse_address(arg)
        return kind, Path(path)
    return None, Path(arg)


def scene_folder_path(arg: str) -> Path:
    """The path a folder argument (``FOLDER`` or ``DATASET:FOLDER``) names."""
    return _dataset_and_path(arg)[1]


def names_one_scene(arg: str) -> bool:
    """Whether ``arg`` (an address, or a path) names one scene rather than a folder of scenes:
    anything but a folder, or a ScanNet scan, S3DIS room or Pointcept scene folder (``folder_kind``)
    given bare or as its dataset."""
    kind, p = _dataset_and_path(arg)
    if not p.is_dir():
        return True
    found = folder_kind(p)
    return found is not None and (kind in (None, found) or (kind.startswith("pointcept-") and found.startswith("pointcept-")))


def _holds_labels(f: Path) -> bool:
    """Whether the file ``f`` is a weak- or pseudo-label ``.npz`` (written beside the scenes it
    labels), not a scene, told from its member names alone; a damaged one counts as a scene, to
    be named when it is read."""
    if f.suffix.lower() != ".npz":
        return False
    from ..npzio import npz_members
    from ..scene import file_kind
    try:
        return file_kind(npz_members(f)) in ("weak", "pseudo")
    except ReaderError:
        return False


def is_semantickitti_sequence(d: Path) -> bool:
    """A SemanticKITTI sequence: ``velodyne/`` with the point labels' ``labels/`` beside it (a
    KITTI split holds ``label_2/`` boxes instead)."""
    return (d / "velodyne").is_dir() and (d / "labels").is_dir() and not (d / "label_2").is_dir()


def _lidar_sequences(p: Path) -> list[Path]:
    """The folders of LiDAR frames (``velodyne/`` inside) that ``p`` names as a SemanticKITTI
    sequence, its ``sequences/`` folder or the root holding that: ``p`` itself, or its (or its
    ``sequences/``'s) sub-folders, sorted."""
    seqs = p / "sequences" if (p / "sequences").is_dir() else p
    return [seqs] if (seqs / "velodyne").is_dir() else sorted(c for c in seqs.iterdir() if (c / "velodyne").is_dir())


def _mmdet3d_kind(name: str) -> str:
    """The dataset of mmdetection3d's points file ``<name>.bin`` given without one: S3DIS for
    its rooms' names, else ScanNet."""
    return "mmdet3d-s3dis" if dataset_named(name) == "s3dis" else "mmdet3d-scannet"


def _scenes_in(p: Path, kind: str | None) -> list[tuple[str, str]]:
    return [(scene_name(a), a) for a in _addresses_in(p, kind)]


def _addresses_in(p: Path, kind: str | None) -> list[str]:
    """The scene addresses of the folder ``p`` (``enumerate_scenes``), unsorted."""
    seqs = _lidar_sequences(p) if kind in ("semantickitti", None) else []
    # one labelled sequence tells SemanticKITTI from a KITTI split, whose frames would be read
    # without their point labels, under KITTI's box classes
    if kind == "semantickitti" or any(is_semantickitti_sequence(q) for q in seqs):
        return [f"semantickitti:{q / f.stem}" for q in seqs for f in (q / "velodyne").glob("*.bin")]
    if kind in ("mmdet3d-scannet", "mmdet3d-s3dis"):
        root = (p / "points").is_dir()  # mmdetection3d's root, else a folder of points files
        addresses = {f: f"{p / f.stem if root else f}" for f in (p / "points" if root else p).glob("*.bin")}
        for f, a in addresses.items():  # one forced on the other dataset's scenes would read them under its classes
            check_indoor_dataset(f.stem, kind.split("-")[1], "mmdet3d", f, a)
        return [f"{kind}:{a}" for a in addresses.values()]
    if kind is None and p.name == "points" and any(p.glob("*.bin")):  # mmdetection3d's points/ folder itself, as its root names it
        return [f"{_mmdet3d_kind(f.stem)}:{f}" for f in p.glob("*.bin")]
    if (p / "scans").is_dir() and kind in (None, "scannet"):  # mmdetection3d's root holds the raw scans too
        p = p / "scans"
    if (p / "points").is_dir() and kind is None:
        return [f"{_mmdet3d_kind(f.stem)}:{p / f.stem}" for f in (p / "points").glob("*.bin")]
    if (p / "velodyne").is_dir():
        return [f"kitti:{p / f.stem}" for f in (p / "velodyne").glob("*.bin")]
    out: list[str] = []
    for c in p.iterdir():
        found = folder_kind(c) if c.is_dir() else None
        if found in ("scannet", "s3dis"):
            out.append(f"{found}:{c}")
        elif found is not None:  # a Pointcept scene
            out.append(f"{kind if kind in ('pointcept-scannet', 'pointcept-s3dis') else found}:{c}")
        elif c.name.endswith("_vert_all.npy") and c.is_file():
            out.append(f"scannet-export:{p / c.name[: -len('_vert_all.npy')]}")
        elif c.suffix.lower() in FILE_KINDS and c.is_file() and not _holds_labels(c) \
                and (c.suffix.lower() not in LISTED_ONLY_WHEN_NAMED or kind == FILE_KINDS[c.suffix.lower()]):
            out.append(f"{FILE_KINDS[c.suffix.lower()]}:{c}")
    if not out:  # an S3DIS or Pointcept root: its area or split folders hold the scenes
        for c in sorted(c for c in p.iterdir() if c.is_dir() and any(folder_kind(g) in ("s3dis", "pointcept-scannet", "pointcept-s3dis")
                                                                      for g in c.iterdir() if g.is_dir())):
            out += _addresses_in(c, kind)
    return out
