"""Folders of scenes: ``enumerate_scenes`` turns a folder (or address) into (name, address) pairs."""
from __future__ import annotations

from pathlib import Path

from ..errors import AddressError
from .address import DATASETS, parse_address


def _is_scannet_scene(d: Path) -> bool:
    return (d / f"{d.name}_vh_clean_2.ply").is_file()


def enumerate_scenes(arg: str) -> list[tuple[str, str]]:
    """One scene address -> [(name, address)]; a folder -> every scene in it, sorted by name.

    Folders understood: ScanNet ``scans/`` (sub-folders with ``<name>_vh_clean_2.ply``), a KITTI
    split (``velodyne/*.bin``), an S3DIS area (rooms with ``Annotations/``), and folders of
    ``.npz`` / ``.ply`` scene files. ``DATASET:FOLDER`` forces the dataset."""
    kind, path = None, arg
    if ":" in arg and arg.split(":", 1)[0] in DATASETS:
        kind, path = arg.split(":", 1)
    p = Path(path)
    if not p.is_dir() or (kind in ("scannet", None) and _is_scannet_scene(p)) or (kind == "s3dis" and (p / "Annotations").is_dir()):
        k, rest = parse_address(arg)
        name = Path(rest).stem if k in ("npz", "ply") else Path(rest).name
        return [(name, arg if ":" in arg else f"{k}:{rest}")]
    out: list[tuple[str, str]] = []
    if (p / "scans").is_dir():
        p = p / "scans"
    if (p / "velodyne").is_dir():
        out = [(f.stem, f"kitti:{p / f.stem}") for f in (p / "velodyne").glob("*.bin")]
    else:
        for c in p.iterdir():
            if c.is_dir() and _is_scannet_scene(c):
                out.append((c.name, f"scannet:{c}"))
            elif c.is_dir() and (c / "Annotations").is_dir():
                out.append((f"{p.name}_{c.name}", f"s3dis:{c}"))
            elif c.suffix in (".npz", ".ply") and c.is_file():
                out.append((c.stem, f"{c.suffix[1:]}:{c}"))
    if not out:
        raise AddressError(f"{p}: no scenes found (expected ScanNet scans, a KITTI split, S3DIS rooms or .npz/.ply files)")
    return sorted(out)
