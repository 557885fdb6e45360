"""``pcweak label``: pseudo-labels from weak labels, for one scene or a folder of scenes
(resumable, in worker processes that share the memory available)."""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import warnings
from pathlib import Path

from ..npzio import check_not_an_input, check_writable, names_npz_file
from .common import (
    check_not_another_file, check_not_the_scene_folder, check_one_process, check_workers, checking_outputs, param_values,
    reader_kwargs, scene_inputs, scenes_refused, stage_lines,
)
from .masks import mask_folders_per_scene


LABEL_MEMORY_SHARE = 0.85  # of the memory available when pcweak label --workers N starts, what its scenes may hold


def cmd_label(args: argparse.Namespace) -> int:
    from tqdm import tqdm
    from ..data.address import check_reader_options
    from ..data.collection import enumerate_scenes, names_one_scene
    from ..parallel import WorkerDied, available_memory_gb, process_map
    from ..label_jobs import (LabelJob, is_current, job_fingerprint, label_job_outcome, remove_stale_temporaries,
                             run_label_job)
    from ..pseudo.registry import check_params, check_voxel_for, get_labeller
    params = param_values(args.param)
    # every argument is checked before any scene is read
    if args.method == "model-walk":
        from ..pseudo.propagate import propagate_config
        propagate_config(params)
    elif args.method != "model":
        check_params(args.method, params)
    if args.method in ("model", "model-walk") and not args.ckpt:
        raise ValueError(f"--method {args.method} needs --ckpt CHECKPOINT")
    if args.method != "model" and args.weak is None:
        raise ValueError(f"--method {args.method} needs --weak")
    # an argument the method does not read would be dropped without a word
    for given, option, readers in ((args.ckpt, "--ckpt", ("model", "model-walk")), (args.masks, "--masks", ("lift-masks",)),
                                   (args.groups, "--groups", ("propagate",))):
        if given is not None and args.method not in readers:
            raise ValueError(f"{option} goes with --method {' or '.join(readers)}; --method {args.method} does not read it")
    if args.method == "model" and args.weak is not None:
        raise ValueError("--weak: --method model labels from the checkpoint alone; model-walk propagates from --weak")
    if args.voxel is not None and args.method in ("model", "model-walk"):
        raise ValueError(f"--voxel: --method {args.method} reads its scenes at the checkpoint's own voxel size")
    voxel = None if args.method in ("model", "model-walk") else check_voxel_for(get_labeller(args.method), args.voxel, "--voxel")
    groups = _groups_argument(args, params, voxel)
    if args.method in ("model", "model-walk"):  # the model reads its scenes as training does: one process, no reader options
        for given, option in ((args.workers != 1, "--workers"), (args.axis_align is not None, "--axis-align")):
            if given:
                raise ValueError(f"{option}: --method {args.method} reads its scenes as training does, in one process and "
                                 f"without reader options; give it scenes that need none (or label with another method)")
    check_workers(args.workers)
    check_writable(args.output, "-o")
    check_not_another_file(args.output)
    scenes = enumerate_scenes(args.scene)
    if len(scenes) > 1 and names_npz_file(args.output):
        raise ValueError(f"-o {args.output}: {args.scene} holds {len(scenes)} scenes, written one <scene>.npz each; "
                         f"give a folder")
    if not names_one_scene(args.scene):
        check_not_the_scene_folder(Path(args.output), args.scene)
    else:
        check_one_process(args.workers, "labelled")
    if args.method == "model":
        from ..train.self_training import predict_pseudo_labels
        print(json.dumps(predict_pseudo_labels(args.ckpt, scenes, args.output, overwrite=args.overwrite, **params)))
        return 0
    scenes, without_weak = _scenes_with_weak(args.scene, scenes, Path(args.weak))
    if args.method == "model-walk":
        from ..train.self_training import model_walk_labels
        print(json.dumps({**model_walk_labels(args.ckpt, scenes, args.weak, args.output, params, overwrite=args.overwrite),
                          **({"without_weak": without_weak} if without_weak else {})}))
        return 0
    single = len(scenes) == 1 and names_npz_file(args.output)
    # each scene's mask folder: one scene's is --masks itself or its <scene>/; a folder's, one <scene>/ each
    if not args.masks:
        masks: dict[str, str] = {}
    elif len(scenes) == 1:
        per_scene = Path(args.masks) / scenes[0][0]
        masks = {scenes[0][0]: str(per_scene) if per_scene.is_dir() else args.masks}
    else:
        masks = mask_folders_per_scene(args.masks, [n for n, _ in scenes])
    group_files = {} if groups is None else _group_files_per_scene(groups, [n for n, _ in scenes])
    weak_path = Path(args.weak)
    reader = reader_kwargs(args)
    jobs: list[LabelJob] = []
    skipped = redone = 0
    wfiles = {}
    for name, address in scenes:
        check_reader_options(address, reader)
        wfiles[name] = weak_path if weak_path.is_file() else weak_path / f"{name}.npz"
    if get_labeller(args.method).learns_geometry and "geometry" not in params:
        from ..label_jobs import learn_geometry
        geometry, n, source = learn_geometry([(a, str(wfiles[nm])) for nm, a in scenes], reader,
                                             image_boxes=args.method == "boxes2d-frustum")
        params["geometry"] = geometry
        where = "fully boxed frames" if source == "boxes" else "frames (no 3D box: footprints from how boxes project)"
        print(f"pcweak label: object sizes from {sum(geometry['counts'].values())} {source} in {n} {where} "
              f"(KITTI's means where none): {json.dumps(geometry['sizes'])}", file=sys.stderr)
    for name, address in checking_outputs(scenes, len(scenes), "label"):
        out = Path(args.output) if single else Path(args.output) / f"{name}.npz"
        wfile = wfiles[name]
        kw = dict(params)
        if args.masks:
            kw["masks"] = masks[name]
        if groups is not None:
            kw["groups"] = group_files[name]
        check_not_an_input(out, scene_inputs(address) + [("the weak-label file", wfile)] +
                           ([("the proposal file", Path(kw["groups"]))] if groups is not None else []), "-o")
        fp = job_fingerprint(address, str(wfile), args.method, kw, reader, output=args.output, voxel=voxel)
        remove_stale_temporaries(out)
        if out.exists() and not args.overwrite:
            if is_current(out, fp):
                skipped += 1
                continue
            redone += 1  # made from other inputs (or damaged): label again
        jobs.append(LabelJob(name, address, str(wfile), str(out), args.method, kw, reader, fp, voxel))
    if single and jobs:  # no bar for one scene: say what runs (a large scan takes a while)
        print(f"pcweak label: {jobs[0].address} with {args.method} ...", file=sys.stderr, flush=True)
    failed: list[str] = []
    bar = tqdm(total=len(jobs), desc=f"label[{args.method}]", unit="scene",
               disable=single or not sys.stderr.isatty() and len(scenes) < 2)
    try:
        with stage_lines("label") if single else contextlib.nullcontext():
            free = available_memory_gb()  # shared out among the workers by each scene's need
            budget = None if free is None else LABEL_MEMORY_SHARE * free * 2**30
            # one scene: its error is the command's; a folder: a refused scene is named at the
            # end and the others are labelled
            for _, result in process_map(run_label_job if single else label_job_outcome, jobs, args.workers, memory=budget):
                name, problem = (result, None) if single else result
                if problem is not None:
                    failed.append(f"{name}: {problem}")
                bar.update(1)
                bar.set_postfix(scene=name)
    except WorkerDied as e:
        bar.close()
        kept = len(jobs) - len(e.unfinished)
        then = (f"the {kept} scene{'s' if kept > 1 else ''} labelled {'are' if kept > 1 else 'is'} kept, and the same "
                "command with fewer --workers labels the rest") if kept else "the same command with fewer --workers labels them"
        lab = get_labeller(args.method)
        per_million = f"{lab.per_point_bytes() / 1e3:.1f} GB per million points of a scene" + (
            f" ({lab.per_point_bytes(True) / 1e3:.1f} along a LiDAR's scan lines)" if lab.scan_line_bytes_per_point else "")
        raise e.for_scenes([j.name for j in jobs], f"; {args.method} holds about {per_million}", then) from None
    bar.close()
    print(json.dumps({"labelled": len(jobs) - len(failed), "skipped_existing": skipped, "redone_other_inputs": redone,
                      **({"without_weak": without_weak} if without_weak else {}), **({"failed": len(failed)} if failed else {}),
                      "output": str(args.output), "method": args.method}))
    if failed:
        raise scenes_refused(failed, len(scenes), "labelled", "labels")
    return 0


def _groups_argument(args: argparse.Namespace, params: dict, voxel: float | None) -> str | None:
    """The proposals' file or folder (``--groups``, or ``--param groups=``, taken out of
    ``params``: each scene gets its own file); ValueError where both are given, where it would
    meet ``--voxel``, or FileNotFoundError where it does not exist."""
    given = params.pop("groups", None)
    if given is not None and args.groups is not None:
        raise ValueError(f"--groups {args.groups} and --param groups={given}: give the proposals once")
    groups = args.groups if args.groups is not None else given
    if groups is None:
        return None
    if voxel is not None:
        raise ValueError(f"--groups: the proposals give one id per point of the scene; --voxel {voxel:g} would label one "
                         f"point per voxel; label without --voxel")
    if not Path(groups).exists():
        raise FileNotFoundError(f"--groups {groups}: no such file or folder")
    return str(groups)


def _group_files_per_scene(groups: str, names: list[str]) -> dict[str, str]:
    """Each scene's proposal file (``group_sources.groups_file``): ``groups`` itself for one
    scene given a file, ``<groups>/<scene>.npy|.txt|.npz`` otherwise; ValueError for one file
    given to several scenes and FileNotFoundError naming the scenes that have none, before any
    scene is read."""
    from ..pseudo.group_sources import GROUP_SUFFIXES, groups_file
    if Path(groups).is_file() and len(names) > 1:
        raise ValueError(f"--groups {groups}: one proposal file for {len(names)} scenes; give a folder of <scene>.npy "
                         f"(or .txt / .npz) files")
    found = {n: groups_file(groups, n) for n in names}
    missing = [n for n, f in found.items() if f is None]
    if missing:
        raise FileNotFoundError(f"--groups {groups}: {len(missing)} of the {len(names)} scenes have no proposal file "
                                f"(<scene>{'|'.join(GROUP_SUFFIXES)}: {', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''})")
    return {n: str(f) for n, f in found.items()}


def _scenes_with_weak(folder: str, scenes: list[tuple[str, str]], weak: Path) -> tuple[list[tuple[str, str]], int]:
    """The scenes of ``pcweak label`` that have weak labels, and how many have none: a folder of
    scenes labels those with a ``<scene>.npz`` in the ``--weak`` folder (the others named in a
    warning: annotations often cover part of a dataset); FileNotFoundError where none has one,
    or ``weak`` does not exist."""
    if not weak.exists():
        raise FileNotFoundError(f"--weak {weak}: no such file or folder")
    if weak.is_file():
        if len(scenes) > 1:
            raise ValueError(f"--weak {weak}: one weak-label file for the {len(scenes)} scenes of {folder}; give the folder "
                             f"of <scene>.npz (pcweak simulate / import of the folder writes it)")
        return scenes, 0
    has = [(weak / f"{n}.npz").is_file() for n, _ in scenes]
    kept = [sc for sc, h in zip(scenes, has) if h]
    if not kept:
        raise FileNotFoundError(f"--weak {weak}: no weak-label file for any of the {len(scenes)} scenes of {folder} (expected "
                                f"<scene>.npz, e.g. {weak / (scenes[0][0] + '.npz')})")
    missing = [n for (n, _), h in zip(scenes, has) if not h]
    if missing:
        warnings.warn(f"--weak {weak}: {len(missing)} of the {len(scenes)} scenes of {folder} have no weak-label file and are "
                      f"not labelled, e.g. {missing[:3]}", stacklevel=2)
    return kept, len(missing)
