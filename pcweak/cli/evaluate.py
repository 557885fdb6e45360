"""``pcweak evaluate``: pseudo-labels of a scene or a folder against its ground truth, ScanNet
benchmark files, and KITTI result files as the devkit scores them."""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import warnings
from pathlib import Path
from typing import Any

from ..npzio import check_writable
from .common import check_one_process, check_workers, file_of_the_scene, reader_kwargs


def cmd_evaluate(args: argparse.Namespace) -> int:
    if sum(x is not None for x in (args.pseudo, args.detections, args.submission)) != 1:
        raise ValueError("give one of --pseudo FILE (score pseudo-labels of one scene), --detections DIR (score KITTI "
                         "result files of a kitti:<root>/training split) or --submission DIR (score ScanNet benchmark "
                         "files over a folder of scans)")
    check_workers(args.workers)
    if args.detections is not None:
        if args.format is not None:
            raise ValueError("--format goes with --submission; KITTI result files have one format")
        if args.workers != 1:
            raise ValueError("--workers goes with a folder of scenes (--pseudo or --submission); KITTI result files are "
                             "scored in one process")
        return _evaluate_kitti_results(args)
    if args.submission is not None:
        return _evaluate_scannet_files(args)
    if args.ids:
        raise ValueError("--ids goes with --detections or --submission (the frames or scenes to score)")
    if args.format is not None:
        raise ValueError("--format goes with --submission (the kind of ScanNet benchmark files)")
    from ..data.collection import names_one_scene
    if not names_one_scene(args.scene):
        return _evaluate_label_folder(args)
    check_one_process(args.workers, "read")
    if args.plots and Path(args.plots).exists() and not Path(args.plots).is_dir():
        raise ValueError(f"--plots {args.plots}: is a file; give the folder to write the plots in")
    if args.plots:
        check_writable(args.plots, "--plots")
    from ..data.address import load_scene
    from ..metrics.evaluate import evaluate
    from ..scene import PseudoLabels
    pseudo_file = file_of_the_scene(args.pseudo, args.scene, "--pseudo")
    scene = load_scene(args.scene, **reader_kwargs(args))
    pseudo = PseudoLabels.load(pseudo_file)
    rep = evaluate(scene, pseudo)
    if args.plots:
        from ..viz.plots import write_plots
        rep["plots"] = [str(p) for p in write_plots(scene, pseudo, args.plots, rep)]
    print(json.dumps(rep, indent=None if args.json else 2, default=float))
    return 0


def _finite_or_null(obj: Any) -> Any:
    """``obj`` with NaN / inf floats as None, so the JSON is strict (jq, browsers read it)."""
    if isinstance(obj, dict):
        return {k: _finite_or_null(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_null(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _scene_files(args: argparse.Namespace, option: str, folder: Path, suffix: str, what: str,
                 names: list[str] | None = None) -> tuple[dict[str, str], dict[str, Path], list[str]]:
    """The scenes of ``args.scene`` (name -> address), the ``<scene><suffix>`` files of
    ``folder`` (name -> path) given with ``option``, and the names to score: ``names`` (from
    --ids), else every file's. A folder without such files, or ``what`` (e.g. "file(s)") naming
    scenes not in ``args.scene``, is a ValueError."""
    from ..data.collection import enumerate_scenes
    addresses = dict(enumerate_scenes(args.scene))
    files = {p.stem: p for p in folder.glob(f"*{suffix}")}
    if names is None:
        if not files:
            raise ValueError(f"{option} {folder}: no <scene>{suffix} {what.replace('(s)', 's')} in it")
        names = sorted(files)
        unknown = [n for n in names if n not in addresses]
        if unknown:
            raise ValueError(f"{option} {folder}: {len(unknown)} {what} name scenes not in {args.scene}, e.g. "
                             f"{[u + suffix for u in unknown[:3]]}")
    return addresses, files, names


def _scenes_read_with(args: argparse.Namespace, names: list[str], addresses: dict[str, str], read: Any) -> Any:
    """(scene, ``read(name)``) of each of ``names`` in turn, with a progress bar over two or more:
    each scene as ``_scene_to_score`` reads it, ``args.workers`` of them read at once in worker
    processes (``parallel.process_map``, a few scenes ahead at most), handed on in the order of
    ``names`` all the same."""
    from tqdm import tqdm
    from ..parallel import WorkerDied, process_map
    kw = reader_kwargs(args)
    read_scenes = process_map(_scene_to_score, [(addresses[n], kw) for n in names], args.workers, ordered=True)
    with tqdm(total=len(names), desc="evaluate", unit="scene", disable=len(names) < 2) as bar:
        try:
            for i, scene in read_scenes:
                yield scene, read(names[i])
                bar.update(1)
        except WorkerDied as e:
            raise e.for_scenes(names, "", "the set is scored as a whole, so nothing was reported; the same command with "
                               "fewer --workers holds fewer scenes at once") from None


def _scene_to_score(item: tuple[str, dict[str, Any]]) -> Any:
    """The scene at ``address`` (``item``: address, reader options) with what scoring reads: its
    points, class list, ground truth and boxes; its colours, normals, segments and frames left
    out (a worker's scene travels back to the parent pickled, and a ScanNet scan's frames would
    weigh more than its points)."""
    from ..data.address import load_scene
    address, kw = item
    return dataclasses.replace(load_scene(address, **kw), color=None, normal=None, intensity=None, segment=None, frames=[],
                               extras={})


def _evaluate_label_folder(args: argparse.Namespace) -> int:
    """``pcweak evaluate FOLDER --pseudo LABELS``: the label files ``pcweak label`` wrote for a
    folder of scenes, scored together (``metrics.evaluate.evaluate_set``)."""
    from ..metrics.evaluate import evaluate_set
    from ..scene import PseudoLabels
    if args.plots is not None:
        raise ValueError("--plots goes with one scene's --pseudo file; a folder is scored as a set")
    labels = Path(args.pseudo)
    if not labels.is_dir():
        raise ValueError(f"--pseudo {labels}: {args.scene} is a folder of scenes; give the folder of label files "
                         f"<scene>.npz that pcweak label wrote for it (or one scene's address with one file)")
    addresses, files, names = _scene_files(args, "--pseudo", labels, ".npz", "label file(s)")
    unlabelled = sorted(n for n in addresses if n not in files)
    if unlabelled:
        warnings.warn(f"--pseudo {labels}: {len(unlabelled)} of the {len(addresses)} scenes of {args.scene} have no label "
                      f"file and are not scored, e.g. {unlabelled[:3]}")
    pairs = _scenes_read_with(args, names, addresses, lambda n: PseudoLabels.load(files[n]))
    print(json.dumps(_finite_or_null(evaluate_set(pairs, names=names)), indent=None if args.json else 2, default=float))
    return 0


def _evaluate_scannet_files(args: argparse.Namespace) -> int:
    """``pcweak evaluate SCANS --submission DIR [--format F] [--ids FILE]``: mIoU of ScanNet
    benchmark semantic files (the confusion summed over the scenes as the benchmark's script sums
    it) or AP of instance files."""
    from ..metrics.kitti import read_ids
    from ..metrics.scannet_files import check_submission_files, instance_files_report, semantic_files_report
    if args.plots is not None:
        raise ValueError("--plots goes with --pseudo; --submission scores a set of scenes")
    folder = Path(args.submission)
    if not folder.is_dir():
        raise FileNotFoundError(f"--submission {folder}: no such folder (the benchmark files <scene>.txt)")
    ids = read_ids(args.ids, "scene0011_00") if args.ids else None
    addresses, files, names = _scene_files(args, "--submission", folder, ".txt", "file(s)", ids)
    if args.ids:
        unknown = [n for n in names if n not in addresses]
        if unknown:
            raise ValueError(f"--ids {args.ids}: {len(unknown)} scene(s) not in {args.scene}, e.g. {unknown[:3]}")
        missing = [n for n in names if n not in files]
        if missing:
            raise ValueError(f"--submission {folder}: no file for {len(missing)} scene(s) of --ids, e.g. "
                             f"{[m + '.txt' for m in missing[:3]]}")
    check_submission_files((files[n] for n in names), instances=args.format == "scannet-instance")  # before the scenes
    pairs = _scenes_read_with(args, names, addresses, files.__getitem__)
    report = (instance_files_report if args.format == "scannet-instance" else semantic_files_report)(pairs)
    print(json.dumps(_finite_or_null(report), indent=None if args.json else 2, default=float))
    return 0


def _evaluate_kitti_results(args: argparse.Namespace) -> int:
    """``pcweak evaluate kitti:<root>/training --detections DIR [--ids FILE]``: the devkit's AP."""
    from ..data.address import parse_address
    from ..metrics.kitti import evaluate_result_files, read_ids, result_folder, result_ids
    for given, option in ((args.plots, "--plots"), (args.axis_align, "--axis-align")):
        if given is not None:  # would be dropped without a word
            raise ValueError(f"{option} goes with --pseudo; KITTI result files are scored as the devkit scores them")
    kind, path = parse_address(args.scene)
    split = Path(path)
    if kind != "kitti" or not (split / "label_2").is_dir():
        raise ValueError(f"{args.scene}: --detections needs kitti:<root>/training, a KITTI split folder holding label_2/")
    det_dir = result_folder(args.detections)
    ids = read_ids(args.ids) if args.ids else result_ids(det_dir)
    if args.ids:
        missing = [i for i in ids if not (det_dir / f"{i}.txt").is_file()]
        if missing:
            raise ValueError(f"{det_dir / (missing[0] + '.txt')}: no result file for frame {missing[0]} listed in {args.ids} "
                             f"({len(missing)} of {len(ids)} missing; write an empty file for a frame without detections)")
    print(f"pcweak evaluate: scoring {len(ids)} frames (2d, bev, 3d)", file=sys.stderr)
    res = evaluate_result_files(split / "label_2", det_dir, ids,
                                progress=lambda m: print(f"pcweak evaluate: {m} ...", file=sys.stderr))
    print(json.dumps(_finite_or_null(res), indent=None if args.json else 2, default=float))
    return 0
