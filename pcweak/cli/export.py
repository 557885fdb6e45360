"""``pcweak export``: label files to a benchmark's submission files (ScanNet, SemanticKITTI,
Semantic3D)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..npzio import check_writable


def cmd_export(args: argparse.Namespace) -> int:
    from tqdm import tqdm
    from ..metrics.scannet_files import check_scene_name, export_scannet
    src = Path(args.labels)
    if src.is_dir():
        files = sorted(src.glob("*.npz"))
        if not files:
            raise ValueError(f"{src}: no label files (*.npz) in this folder")
        if args.scene is not None:
            raise ValueError("--scene names the scene of a single label file; a folder's files are named <scene>.npz")
    elif src.is_file():
        files = [src]
    else:
        raise FileNotFoundError(f"{src}: no such label file or folder")
    if args.scene is not None:
        check_scene_name(args.scene, "--scene")
    check_writable(args.output, "-o")
    progress = lambda x: tqdm(x, desc=f"export[{args.format}]", unit="scene", disable=len(files) < 2)  # noqa: E731
    names = {files[0]: args.scene} if args.scene is not None else None
    if args.format == "semantickitti":
        from ..metrics.semantickitti_files import export_semantickitti
        print(json.dumps(export_semantickitti(files, args.output, progress, names)))
    elif args.format == "semantic3d":
        from ..metrics.semantic3d_files import export_semantic3d
        print(json.dumps(export_semantic3d(files, args.output, progress, names)))
    else:
        print(json.dumps(export_scannet(files, args.output, args.format.split("-", 1)[1], progress, names)))
    return 0
