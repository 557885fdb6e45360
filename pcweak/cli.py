"""The ``pcweak`` command. Every sub-command wires Python functions that can be called directly.

    pcweak info SCENE                      JSON summary of a scene
    pcweak simulate SCENE --weak KIND ...  weak labels drawn from ground truth -> weak.npz (folders: resumable)
    pcweak import SCENE TABLE... -o W      weak labels from another tool's tables -> weak.npz (folders: resumable)
    pcweak label SCENE --weak W -o OUT     pseudo-labels from weak labels (folders: resumable)
    pcweak evaluate SCENE --pseudo P       score pseudo-labels against ground truth
    pcweak evaluate kitti:R --detections D KITTI AP of result files, as the devkit
    pcweak export LABELS --format F -o DIR ScanNet / SemanticKITTI / Semantic3D submission files
    pcweak bench NAME --json               a benchmark, printing one JSON object
    pcweak fit|validate|test|predict --config configs/X.yaml   training (LightningCLI)
    pcweak demo                            the main job on the built-in synthetic scene
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import functools
import inspect
import json
import logging
import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

from .errors import PcweakError
from .npzio import check_not_an_input, check_writable, names_npz_file


def _reader_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    if getattr(args, "axis_align", None):
        kw["axis_alignment"] = args.axis_align
    return kw


def _scene_inputs(address: str) -> list[tuple[str, Path]]:
    """The files the reader of the scene at ``address`` names, as ``npzio.check_not_an_input``
    takes them."""
    from .data.address import source_files
    return [(f"a file of scene {address}", f) for f in source_files(address, folders=False)]


def cmd_info(args: argparse.Namespace) -> int:
    from .data.address import load_scene
    from .data.collection import enumerate_scenes, names_one_scene
    if names_one_scene(args.scene):
        out = load_scene(args.scene, **_reader_kwargs(args)).summary()
    else:  # a folder: the scenes pcweak label would go through, as it names and reads them
        scenes = enumerate_scenes(args.scene)
        out = {"folder": args.scene, "scenes": len(scenes), "list": [{"name": n, "address": a} for n, a in scenes]}
    print(json.dumps(out, indent=None if args.compact else 2))
    return 0


# pcweak simulate's kind-specific options: the kinds that read each, and the simulator argument it
# sets there (the simulators hold the defaults; an option left out is not passed)
SIMULATE_OPTIONS: dict[str, dict[str, str]] = {
    "count": {"points": "count"}, "ratio": {"points": "ratio"}, "stratified": {"points": "stratified"},
    "per_instance": {"clicks": "per_instance"}, "oriented": {"boxes": "axis_aligned"},
    "with_boxes": {"clicks": "", "clusters": ""}, "boxed_fraction": {"clicks": "", "clusters": ""}, "noise": {"boxes": "noise", "boxes2d": "noise_px"},
    "erosion": {"masks2d": "erosion"}, "merge_prob": {"masks2d": "merge_prob"}, "split_prob": {"masks2d": "split_prob"},
    "drop_prob": {"masks2d": "drop_prob"},
}


def cmd_simulate(args: argparse.Namespace) -> int:
    from .data.address import load_scene
    from .data.collection import names_one_scene
    from .params import check_ranges
    from .weak import KINDS
    kw: dict[str, Any] = {}
    for option, kinds in SIMULATE_OPTIONS.items():
        value = getattr(args, option)
        if value is None or value is False:  # not given
            continue
        if args.weak not in kinds:  # it would be dropped without a word
            raise ValueError(f"--{option.replace('_', '-')} goes with --weak {' or '.join(kinds)}, not {args.weak}")
        if kinds[args.weak]:
            kw[kinds[args.weak]] = (not value) if option == "oriented" else value
    if args.weak == "points" and ("count" in kw) == ("ratio" in kw):
        raise ValueError("--weak points needs exactly one of --count N or --ratio R")
    check_ranges(KINDS[args.weak], args.weak, {**kw, "seed": args.seed})  # before the scene is read
    if args.boxed_fraction is not None:
        if args.with_boxes:
            raise ValueError("--boxed-fraction boxes a share of a folder's frames, --with-boxes every frame: give one")
        if not 0 < args.boxed_fraction <= 1:
            raise ValueError(f"--boxed-fraction must be a share in (0, 1], got {args.boxed_fraction}")
    _check_workers(args.workers)
    check_writable(args.output, "-o")
    if not names_one_scene(args.scene):
        return _simulate_folder(args, kw)
    if args.boxed_fraction is not None:
        raise ValueError("--boxed-fraction goes with a folder of frames (a share of them boxed); for one frame give "
                         "--with-boxes")
    _check_folder_options(args, "draws again the scenes whose file exists")
    output = _one_scene_output(args.output, args.scene, _scene_inputs(args.scene))
    scene = load_scene(args.scene, **_reader_kwargs(args))
    weak = _simulated(scene, args.weak, args.seed, kw, args.with_boxes)
    weak.save(output)
    print(json.dumps({"output": str(output), "scene": scene.name, "kinds": weak.kinds(),
                      **{k: int(len(v)) for k, v in (("points", weak.point_index), ("boxes", weak.box),
                                                     ("boxes2d", weak.box2d), ("mask_frames", weak.mask2d)) if v is not None}}))
    return 0


def _check_workers(workers: int) -> None:
    """ValueError unless ``--workers`` is at least 1."""
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")


def _check_folder_options(args: argparse.Namespace, overwrite_does: str) -> None:
    """ValueError naming ``--overwrite`` or ``--workers`` given to simulate / import of one scene:
    both act on a folder of scenes only, and would be dropped without a word."""
    if args.overwrite:
        raise ValueError(f"--overwrite goes with a folder of scenes (it {overwrite_does}); one scene's file is always "
                         "written anew")
    _check_one_process(args.workers, "made")


def _check_one_process(workers: int, verb: str) -> None:
    """ValueError naming ``--workers`` given to a command on one scene, which it ``verb``s (made,
    read) in this process: the option acts on a folder of scenes only."""
    if workers != 1:
        raise ValueError(f"--workers goes with a folder of scenes (scenes {verb} at once); one scene is {verb} in this process")


def _simulated(scene: Any, kind: str, seed: int, kw: dict[str, Any], with_boxes: bool) -> Any:
    """``pcweak simulate``'s weak labels of one scene: ``kind`` drawn with ``seed`` and the
    simulator arguments ``kw``, and with ``with_boxes`` the scene's oriented boxes beside them."""
    from .weak import simulate
    weak = simulate(scene, kind, seed=seed, **kw)
    if with_boxes:
        b = simulate(scene, "boxes", seed=seed, axis_aligned=False)
        weak = dataclasses.replace(weak, box=b.box, box_semantic=b.box_semantic, meta={**weak.meta, "boxed": True})
    return weak


def _one_scene_output(out: str, address: str, inputs: list[tuple[str, Path]]) -> Path:
    """The file ``-o`` (as typed) names for simulate / import of the one scene at ``address``:
    ``out`` where it names an ``.npz`` file (``npzio.names_npz_file``), else the scene's
    ``out/<scene>.npz``, as ``pcweak label`` and a folder of scenes write it; neither one of
    ``inputs`` (``check_not_an_input``) nor another existing file."""
    check_not_an_input(Path(out), inputs, "-o")
    if names_npz_file(out):
        return Path(out)
    _check_not_another_file(out)
    from .data.address import scene_name
    path = Path(out) / f"{scene_name(address)}.npz"
    check_not_an_input(path, inputs, "-o")
    return path


def _check_not_another_file(out: str) -> None:
    """ValueError when ``-o`` names an existing file that is not ``.npz``: neither the label file
    to write nor a folder to write ``<scene>.npz`` in (it would be written over, or fail)."""
    if Path(out).is_file() and not names_npz_file(out):
        why = "given as a folder (trailing separator)" if out.endswith(("/", os.sep)) else "but not a .npz file"
        raise ValueError(f"-o {out}: is a file {why}; give the .npz file to write, or a folder (written <scene>.npz inside)")


def _folder_output(out: str, folder: str) -> Path:
    """``-o`` (as typed) of a command run on the folder of scenes ``folder``: a folder (one
    ``<scene>.npz`` each), not ``folder`` itself (``_check_not_the_scene_folder``)."""
    path = Path(out)
    if path.exists() and not path.is_dir() or names_npz_file(out):
        raise ValueError(f"-o {out}: a folder of scenes is written one <scene>.npz each; give a folder")
    _check_not_the_scene_folder(path, folder)
    return path


def _check_not_the_scene_folder(out: Path, folder: str,
                                why: str = "the <scene>.npz files written there would be read as scenes of it next "
                                           "time: give another folder") -> None:
    """ValueError when ``out`` is the folder of scenes ``folder`` itself, saying ``why`` not: by
    default, the ``<scene>.npz`` files written there would be taken for scenes of the folder the
    next time it is read."""
    from .data.collection import scene_folder_path
    if out.is_dir() and out.resolve() == scene_folder_path(folder).resolve():
        raise ValueError(f"-o {out}: is the folder of scenes itself; {why}")


def _write_weak_folder(verb: str, done: str, scenes: list[tuple[str, str]], out: Path, make: Any, fingerprint: Any,
                       args: argparse.Namespace, extra: dict[str, Any]) -> int:
    """Run ``weak_jobs.write_weak_files`` (``args.overwrite``, ``args.workers``) with a progress
    bar named ``verb``, print its JSON line (the count written under ``done``, ``extra`` added),
    and end in one error naming the scenes refused."""
    from tqdm import tqdm
    from .weak_jobs import write_weak_files
    def bar(items: Any, total: int, stage: str) -> Any:
        if stage == "check":
            return _checking(items, total, verb)
        return tqdm(items, total=total, desc=verb, unit="scene", disable=not sys.stderr.isatty() and total < 2)
    counts, failed = write_weak_files(scenes, out, make, fingerprint, overwrite=args.overwrite, progress=bar,
                                      workers=args.workers)
    print(json.dumps({done: counts["written"],
                      "skipped_existing": counts["skipped_existing"], "redone_other_inputs": counts["redone_other_inputs"],
                      **extra, **({"failed": len(failed)} if failed else {}), "output": str(out)}))
    if failed:
        raise _scenes_refused(failed, len(scenes), done, f"{verb}s")
    return 0


def _checking(items: Any, total: int, verb: str) -> Any:
    """``items`` (a folder's scenes) with a progress bar while a resumed job checks which of
    their outputs are current, shown once it has taken two seconds (thousands of scans) and
    cleared after, before the bar of the work itself."""
    from tqdm import tqdm
    return tqdm(items, total=total, desc=f"{verb}: checking outputs", unit="scene", delay=2, leave=False)


def _scenes_refused(failed: list[str], total: int, done: str, verb: str) -> PcweakError:
    """The one error that ends a folder job after the scenes ``failed`` (``"<name>: <why>"``,
    in the folder's order) were refused and the other ones of ``total`` were ``done``: the
    first five named, and that the same command run again ``verb`` only what is missing."""
    rest = total - len(failed)
    others = f"the other {rest} {'are' if rest != 1 else 'is'} {done}" if rest else f"none is {done}"
    return PcweakError(f"{len(failed)} of the {total} scenes could not be {done} ({'; '.join(failed[:5])}"
                       f"{'; ...' if len(failed) > 5 else ''}); {others}. Fix or remove {'them' if len(failed) > 1 else 'it'} "
                       f"and run the same command again: it {verb} only what is missing")


def _simulate_folder(args: argparse.Namespace, kw: dict[str, Any]) -> int:
    """``pcweak simulate FOLDER --weak KIND ... -o OUT``: ``OUT/<scene>.npz`` per scene, each
    drawn with ``weak.scene_seed(name, --seed)``; resumable (``weak_jobs``)."""
    from .data.address import check_reader_options
    from .data.collection import enumerate_scenes
    from .weak import boxed_frames
    from .weak_jobs import weak_fingerprint
    out = _folder_output(args.output, args.scene)
    reader = _reader_kwargs(args)
    scenes = enumerate_scenes(args.scene)
    for name, address in scenes:  # every scene and output checked before the first is read
        check_reader_options(address, reader)
        check_not_an_input(out / f"{name}.npz", _scene_inputs(address), "-o")
    # each frame's own: a share boxed (--boxed-fraction) is redrawn where its frame's part changes
    boxed = frozenset(n for n, _ in scenes) if args.with_boxes else frozenset(
        boxed_frames([n for n, _ in scenes], args.boxed_fraction or 0.0, args.seed))
    settings = {"kind": args.weak, "simulator": {k: v for k, v in sorted(kw.items())}, "seed": args.seed}

    make = functools.partial(_simulate_scene, reader=reader, kind=args.weak, seed=args.seed, kw=kw, boxed=boxed)
    return _write_weak_folder("simulate", "simulated", scenes, out, make,
                              lambda n, a: weak_fingerprint(a, {**settings, "with_boxes": n in boxed}, [], reader, out), args,
                              {"boxed": len(boxed)} if args.boxed_fraction is not None else {})


def _simulate_scene(name: str, address: str, *, reader: dict[str, Any], kind: str, seed: int, kw: dict[str, Any],
                    boxed: frozenset[str]) -> Any:
    """One scene of ``pcweak simulate FOLDER``: read, and drawn with ``weak.scene_seed(name,
    seed)``, its boxes stored where ``name`` is one of ``boxed`` (a module-level function, so
    that worker processes can run it)."""
    from .data.address import load_scene
    from .weak import scene_seed
    return _simulated(load_scene(address, **reader), kind, scene_seed(name, seed), kw, name in boxed)


def _class_list(value: str | None) -> tuple[str, ...] | None:
    """``--classes``: names separated by commas, or a text file of one name per line."""
    if value is None:
        return None
    path = Path(value)
    names = path.read_text(encoding="utf-8-sig").splitlines() if path.is_file() else value.split(",")
    names = [n.strip() for n in names if n.strip()]
    if not names:
        raise ValueError(f"--classes {value!r}: no class names (names separated by commas, or a file of one per line)")
    return tuple(names)


def cmd_import(args: argparse.Namespace) -> int:
    from .data.collection import names_one_scene
    if not args.max_distance > 0:  # before the tables and the scene are read
        raise ValueError(f"--max-distance must be > 0 metres, got {args.max_distance}")
    _check_workers(args.workers)
    check_writable(args.output, "-o")
    if not names_one_scene(args.scene):
        return _import_folder(args)
    from .data.address import load_scene
    from .weak.from_tables import read_tables, weak_from_tables
    _check_folder_options(args, "imports again the scenes whose file exists")
    classes = _class_list(args.classes)
    for t in args.tables:
        if t.is_dir():
            raise ValueError(f"{t}: a folder of tables goes with a folder of scenes; for one scene give its table files")
    output = _one_scene_output(args.output, args.scene, _scene_inputs(args.scene) + [("a table", t) for t in args.tables])
    tables = [t for f in args.tables for t in read_tables(f)]  # every table read before the scene
    scene = load_scene(args.scene, **_reader_kwargs(args))
    weak = weak_from_tables(scene, tables, classes=classes, max_distance=args.max_distance, coords=args.coords)
    weak.save(output)
    print(json.dumps({"output": str(output), "scene": scene.name, "kinds": weak.kinds(),
                      **{k: int(len(v)) for k, v in (("points", weak.point_index), ("boxes", weak.box), ("boxes2d", weak.box2d))
                         if v is not None},
                      **({"tags": [c for c, on in zip(weak.classes, weak.scene_tags) if on]} if weak.scene_tags is not None else {}),
                      **({"instances": len(set(weak.point_instance.tolist()) - {-1})} if weak.point_instance is not None else {})}))
    return 0


def _import_folder(args: argparse.Namespace) -> int:
    """``pcweak import FOLDER TABLE_FOLDER... -o OUT``: each scene's tables by its name, one
    ``OUT/<scene>.npz`` each; resumable (``weak_jobs``)."""
    from .data.address import check_reader_options
    from .data.collection import enumerate_scenes
    from .weak.from_tables import table_companions
    from .weak_jobs import tables_by_scene, weak_fingerprint
    out = _folder_output(args.output, args.scene)
    classes = _class_list(args.classes)
    reader = _reader_kwargs(args)
    scenes = enumerate_scenes(args.scene)
    for _, address in scenes:
        check_reader_options(address, reader)
    found = tables_by_scene([n for n, _ in scenes], args.tables)
    todo = [(n, a) for n, a in scenes if found[n]]
    if not todo:
        raise ValueError(f"no table in {', '.join(map(str, args.tables))} names a scene of {args.scene} "
                         f"({len(scenes)} scenes, e.g. {scenes[0][0]}): a table is named <scene>.csv or lies in <scene>/")
    bare = [n for n, _ in scenes if not found[n]]
    if bare:
        warnings.warn(f"{len(bare)} of the {len(scenes)} scenes have no table ({', '.join(bare[:5])}{', ...' if len(bare) > 5 else ''}) "
                      f"and get no weak-label file (pcweak label of the folder leaves them out)", stacklevel=2)
    for name, address in todo:  # every output checked before the first scene is read
        check_not_an_input(out / f"{name}.npz", _scene_inputs(address) + [("a table", t) for t in found[name]], "-o")
    settings = {"classes": list(classes or ()), "coords": args.coords, "max_distance": args.max_distance}

    make = functools.partial(_import_scene, found=found, reader=reader, classes=classes, max_distance=args.max_distance,
                             coords=args.coords)
    return _write_weak_folder("import", "imported", todo, out, make,
                              lambda n, a: weak_fingerprint(a, settings, found[n] + sorted({c for t in found[n]
                                                                                            for c in table_companions(t)}),
                                                            reader, out),
                              args, {"without_tables": len(bare)})


def _import_scene(name: str, address: str, *, found: dict[str, list[Path]], reader: dict[str, Any],
                  classes: tuple[str, ...] | None, max_distance: float, coords: str) -> Any:
    """One scene of ``pcweak import FOLDER TABLES``: its tables (``found[name]``) read before the
    scene, then turned into weak labels (a module-level function, so that worker processes can
    run it)."""
    from .data.address import load_scene
    from .weak.from_tables import read_tables, weak_from_tables
    tables = [t for f in found[name] for t in read_tables(f)]
    return weak_from_tables(load_scene(address, **reader), tables, classes=classes, max_distance=max_distance, coords=coords)


def _params(items: list[str]) -> dict[str, Any]:
    out = {}
    for kv in items:
        if "=" not in kv:
            raise ValueError(f"--param expects NAME=VALUE, got {kv!r}")
        k, v = kv.split("=", 1)
        out[k] = type_of(v)
    return out


LABEL_MEMORY_SHARE = 0.85  # of the memory available when pcweak label --workers N starts, what its scenes may hold


def cmd_label(args: argparse.Namespace) -> int:
    from tqdm import tqdm
    from .data.address import check_reader_options
    from .data.collection import enumerate_scenes, names_one_scene
    from .parallel import WorkerDied, available_memory_gb, process_map
    from .label_jobs import (LabelJob, is_current, job_fingerprint, label_job_outcome, remove_stale_temporaries,
                             run_label_job)
    from .pseudo.registry import check_params, check_voxel_for, get_labeller
    params = _params(args.param)
    # every argument is checked before any scene is read
    if args.method == "model-walk":
        from .pseudo.propagate import propagate_config
        propagate_config(params)
    elif args.method != "model":
        check_params(args.method, params)
    if args.method in ("model", "model-walk") and not args.ckpt:
        raise ValueError(f"--method {args.method} needs --ckpt CHECKPOINT")
    if args.method != "model" and args.weak is None:
        raise ValueError(f"--method {args.method} needs --weak")
    # an argument the method does not read would be dropped without a word
    for given, option, readers in ((args.ckpt, "--ckpt", ("model", "model-walk")), (args.masks, "--masks", ("lift-masks",))):
        if given is not None and args.method not in readers:
            raise ValueError(f"{option} goes with --method {' or '.join(readers)}; --method {args.method} does not read it")
    if args.method == "model" and args.weak is not None:
        raise ValueError("--weak: --method model labels from the checkpoint alone; model-walk propagates from --weak")
    if args.voxel is not None and args.method in ("model", "model-walk"):
        raise ValueError(f"--voxel: --method {args.method} reads its scenes at the checkpoint's own voxel size")
    voxel = None if args.method in ("model", "model-walk") else check_voxel_for(get_labeller(args.method), args.voxel, "--voxel")
    if args.method in ("model", "model-walk"):  # the model reads its scenes as training does: one process, no reader options
        for given, option in ((args.workers != 1, "--workers"), (args.axis_align is not None, "--axis-align")):
            if given:
                raise ValueError(f"{option}: --method {args.method} reads its scenes as training does, in one process and "
                                 f"without reader options; give it scenes that need none (or label with another method)")
    _check_workers(args.workers)
    check_writable(args.output, "-o")
    _check_not_another_file(args.output)
    scenes = enumerate_scenes(args.scene)
    if len(scenes) > 1 and names_npz_file(args.output):
        raise ValueError(f"-o {args.output}: {args.scene} holds {len(scenes)} scenes, written one <scene>.npz each; "
                         f"give a folder")
    if not names_one_scene(args.scene):
        _check_not_the_scene_folder(Path(args.output), args.scene)
    if args.method == "model":
        from .train.self_training import predict_pseudo_labels
        print(json.dumps(predict_pseudo_labels(args.ckpt, scenes, args.output, overwrite=args.overwrite, **params)))
        return 0
    scenes, without_weak = _scenes_with_weak(args.scene, scenes, Path(args.weak))
    if args.method == "model-walk":
        from .train.self_training import model_walk_labels
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
        masks = _mask_folders_per_scene(args.masks, [n for n, _ in scenes])
    weak_path = Path(args.weak)
    reader = _reader_kwargs(args)
    jobs: list[LabelJob] = []
    skipped = redone = 0
    wfiles = {}
    for name, address in scenes:
        check_reader_options(address, reader)
        wfiles[name] = weak_path if weak_path.is_file() else weak_path / f"{name}.npz"
    if get_labeller(args.method).learns_geometry and "geometry" not in params:
        from .label_jobs import learn_geometry
        geometry, n, source = learn_geometry([(a, str(wfiles[nm])) for nm, a in scenes], reader,
                                             image_boxes=args.method == "boxes2d-frustum")
        params["geometry"] = geometry
        where = "fully boxed frames" if source == "boxes" else "frames (no 3D box: footprints from how boxes project)"
        print(f"pcweak label: object sizes from {sum(geometry['counts'].values())} {source} in {n} {where} "
              f"(KITTI's means where none): {json.dumps(geometry['sizes'])}", file=sys.stderr)
    for name, address in _checking(scenes, len(scenes), "label"):
        out = Path(args.output) if single else Path(args.output) / f"{name}.npz"
        wfile = wfiles[name]
        kw = dict(params)
        if args.masks:
            kw["masks"] = masks[name]
        check_not_an_input(out, _scene_inputs(address) + [("the weak-label file", wfile)], "-o")
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
        with _stage_lines("label") if single else contextlib.nullcontext():
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
        raise _scenes_refused(failed, len(scenes), "labelled", "labels")
    return 0


def _check_one_scene(arg: str, what: str) -> None:
    """ValueError when ``arg`` is a folder of scenes where a command takes one scene (``what``
    it does with one), naming the folder's first scene."""
    from .data.collection import enumerate_scenes, names_one_scene
    if not names_one_scene(arg):
        scenes = enumerate_scenes(arg)
        raise ValueError(f"{arg}: a folder of {len(scenes)} scene(s); {what}: give one of them, e.g. {scenes[0][1]}")


def _file_of_the_scene(path: str, address: str, flag: str) -> Path:
    """The label file ``--pseudo`` / ``--weak`` gives for the one scene at ``address``: the file
    ``path``, or in the folder ``path`` (a folder job's output) the scene's ``<scene>.npz``."""
    p = Path(path)
    if not p.is_dir():
        return p
    from .data.address import scene_name
    name = scene_name(address)
    if not (p / f"{name}.npz").is_file():
        raise FileNotFoundError(f"{flag} {p}: a folder without {name}.npz, the file of scene {address}")
    return p / f"{name}.npz"


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


def _model_stamp(model: str | None) -> Any:
    """What identifies a model for resuming: a local folder's file names, sizes and times; a
    Hub name as given."""
    if model is None or not Path(model).is_dir():
        return model
    return {f.name: [f.stat().st_size, f.stat().st_mtime_ns] for f in sorted(Path(model).iterdir()) if f.is_file()}


def cmd_masks(args: argparse.Namespace) -> int:
    """``pcweak masks SCENE -o MASKDIR``, or of a folder of scenes ``-o MASKDIR`` with one
    ``MASKDIR/<scene>/`` each (``pcweak label FOLDER --masks MASKDIR`` reads them)."""
    from .data.address import check_scene_present
    from .data.collection import names_one_scene
    from .pseudo.mask_models import check_device, check_model_source, check_points_per_side, iter_sam_masks
    if (args.sam is None) == (args.masks is None):
        raise ValueError("give --sam MODEL (make masks) or --masks DIR (score existing masks with --vlm), not both")
    if args.masks is not None and args.vlm is None:
        raise ValueError("--masks DIR needs --vlm MODEL (there is nothing else to do with existing masks)")
    if args.frame_step < 1:
        raise ValueError(f"--frame-step must be >= 1, got {args.frame_step}")
    if args.points_per_side is None:  # iter_sam_masks holds the default; the manifest records the value used
        args.points_per_side = inspect.signature(iter_sam_masks).parameters["points_per_side"].default
    elif args.sam is None:
        raise ValueError("--points-per-side goes with --sam (SAM's prompt grid); --masks scores masks already made")
    check_points_per_side(args.points_per_side, "--points-per-side")
    check_device(args.device, "--device")
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"-o {out}: exists and is not a folder")
    check_writable(out, "-o")
    one = names_one_scene(args.scene)
    if one:
        check_scene_present(args.scene)
    else:
        scenes, given = _masks_folder_inputs(args, out)
    for what, model in (("--sam", args.sam), ("--vlm", args.vlm)):  # before the scene and its images are read
        if model is not None:
            check_model_source(model, what)
    if one:
        print(json.dumps(_masks_of_scene(args, args.scene, out, args.masks)))
        return 0
    return _masks_folder(args, scenes, given, out)


def _mask_folders_per_scene(masks: str, names: list[str]) -> dict[str, str]:
    """``masks/<name>/`` of each of ``names`` (the layout ``pcweak masks FOLDER`` writes), for a
    folder of scenes; FileNotFoundError naming the scenes that have none, before any work."""
    missing = [n for n in names if not (Path(masks) / n).is_dir()]
    if missing:
        raise FileNotFoundError(f"--masks {masks}: a folder of scenes takes one <scene>/ mask folder each (pcweak masks "
                                f"FOLDER writes them); {len(missing)} of the {len(names)} scenes have none "
                                f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''})")
    return {n: str(Path(masks) / n) for n in names}


def _masks_folder_inputs(args: argparse.Namespace, out: Path) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """The scenes of ``pcweak masks FOLDER`` and, with ``--masks IN``, each scene's
    ``IN/<scene>/``: all checked before the first scene is read (``out`` not the folder itself,
    the reader options, every scene's mask folder present)."""
    from .data.address import check_reader_options
    from .data.collection import enumerate_scenes
    scenes = enumerate_scenes(args.scene)
    _check_not_the_scene_folder(out, args.scene, "give another folder, which gets one <scene>/ mask folder each")
    reader = _reader_kwargs(args)
    for _, address in scenes:
        check_reader_options(address, reader)
    given = {} if args.masks is None else _mask_folders_per_scene(args.masks, [n for n, _ in scenes])
    if not args.overwrite:  # settings that are the same for every scene: checked before any scene is read
        model = _mask_model_settings(args)
        clash = {n: _mask_settings_changed(out / n, model)[1] for n, _ in scenes}
        clash = {n: c for n, c in clash.items() if c}
        if clash:
            keys = sorted({k for c in clash.values() for k in c})
            raise ValueError(f"-o {out}: the mask folders of {len(clash)} of the {len(scenes)} scenes hold masks made with "
                             f"other settings ({', '.join(keys)} differ; {', '.join(list(clash)[:3])}"
                             f"{', ...' if len(clash) > 3 else ''}); pass --overwrite or another folder")
    return scenes, given


def _masks_folder(args: argparse.Namespace, scenes: list[tuple[str, str]], given: dict[str, str], out: Path) -> int:
    """``pcweak masks FOLDER``: each scene's masks (and scores) into ``out/<scene>/``, the
    models loaded once; a scene refused (``label_jobs.SCENE_ERRORS``: no frames, a folder of
    other settings without --overwrite) is named at the end and the others made, while a model
    that cannot be loaded stops it at once. Each scene's folder resumes as one scene's does."""
    from tqdm import tqdm
    from .label_jobs import SCENE_ERRORS
    from .pseudo.mask_models import ModelUnavailable, models_held
    made: list[dict[str, Any]] = []
    failed: list[str] = []
    with models_held(), tqdm(scenes, desc="masks", unit="scene", disable=len(scenes) < 2) as bar:
        for name, address in bar:
            try:
                made.append(_masks_of_scene(args, address, out / name, given.get(name)))
            except ModelUnavailable:  # no scene would fare better: stop at the first
                raise
            except SCENE_ERRORS as e:
                failed.append(f"{name}: {str(e) or type(e).__name__}")
    print(json.dumps({"output": str(out), "scenes": len(made), "frames": sum(m["frames"] for m in made),
                      "masks": sum(m["masks"] for m in made), "scores": args.vlm is not None,
                      **({"failed": len(failed)} if failed else {})}))
    if failed:
        raise _scenes_refused(failed, len(scenes), "given masks", "makes")
    return 0


def _masks_of_scene(args: argparse.Namespace, address: str, out: Path, masks: str | None) -> dict[str, Any]:
    """One scene's mask folder ``out`` (``<frame>.png``, ``scores.npy``, the manifest): SAM's
    masks of the frames not yet made, or the masks of the folder ``masks``, scored with
    ``args.vlm``; refused where ``out`` holds masks of other inputs or settings (unless
    ``args.overwrite``). Returns the summary line's fields."""
    from .data.address import load_scene
    from .npzio import atomic_write_bytes
    from .pseudo.mask_models import iter_sam_masks, vlm_mask_scores
    from .pseudo.mask_sources import MANIFEST, load_mask_folder, write_mask_file, write_mask_folder
    scene = load_scene(address, **_reader_kwargs(args))
    if not scene.frames:
        raise ValueError(f"{address}: the scene has no RGB-D frames to make masks on")
    frames = list(range(0, len(scene.frames), args.frame_step))
    # the scene's files (its images among them) identify it; masks written inside its folder do not
    from .label_jobs import scene_identity
    scene_files = {k: v for k, v in scene_identity(address, exclude=out).items() if k != "address"}
    settings = {"scene": address, "scene_files": scene_files, "scene_name": scene.name, "num_points": scene.num_points,
                "frames": [scene.frames[i].name for i in frames], "masks": masks, **_mask_model_settings(args)}
    old, changed = _mask_settings_changed(out, settings)
    if changed:
        if not args.overwrite:
            what = "masks made from other inputs or settings" if old is not None else "masks pcweak masks did not make"
            raise ValueError(f"-o {out}: holds {what} ({', '.join(changed)} differ); pass --overwrite or another folder")
        for f in list(out.glob("*.png")) + [out / "scores.npy"]:
            f.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / MANIFEST, json.dumps(settings, sort_keys=True).encode())
    if args.sam is not None:
        todo = [i for i in frames if not (out / f"{scene.frames[i].name}.png").is_file()]  # done frames are kept
        for fi, lm in iter_sam_masks(scene, args.sam, frames=todo, device=args.device, points_per_side=args.points_per_side):
            write_mask_file(out, scene, fi, lm)
        maps, _ = load_mask_folder(out, scene)
    else:
        maps, _ = load_mask_folder(masks, scene)
        wanted = set(frames)
        maps = [(i, m) for i, m in maps if i in wanted]
    scores = vlm_mask_scores(scene, maps, args.vlm, device=args.device) if args.vlm else None
    write_mask_folder(out, scene, maps if masks else [], scores)
    return {"output": str(out), "frames": len(maps), "masks": int(sum(int(m.max()) for _, m in maps)),
            "scores": None if scores is None else list(scores.shape)}


def _mask_model_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings of a mask folder that are the same for every scene: the models (as named
    and as ``_model_stamp`` identifies them) and SAM's prompt grid."""
    return {"sam": args.sam, "sam_files": _model_stamp(args.sam), "points_per_side": args.points_per_side,
            "vlm": args.vlm, "vlm_files": _model_stamp(args.vlm)}


def _mask_settings_changed(out: Path, settings: dict[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    """The manifest of the mask folder ``out`` (None where there is none) and which of
    ``settings`` it holds otherwise, where masks were made under it (else none: a run that
    stopped before its first mask, say on a mistyped model, holds nothing to keep or serve).
    A key an older manifest lacks reads as the same; an unreadable one differs in every key."""
    from .pseudo.mask_sources import MANIFEST
    manifest = out / MANIFEST
    try:
        old = json.loads(manifest.read_text()) if manifest.is_file() else None
    except ValueError:
        old = {k: None for k in settings}
    made = out.is_dir() and (any(out.glob("*.png")) or (out / "scores.npy").is_file())
    if not made:
        return old, []
    return old, sorted(k for k in settings if old is None or old.get(k, settings[k]) != settings[k])


def cmd_evaluate(args: argparse.Namespace) -> int:
    if sum(x is not None for x in (args.pseudo, args.detections, args.submission)) != 1:
        raise ValueError("give one of --pseudo FILE (score pseudo-labels of one scene), --detections DIR (score KITTI "
                         "result files of a kitti:<root>/training split) or --submission DIR (score ScanNet benchmark "
                         "files over a folder of scans)")
    _check_workers(args.workers)
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
    from .data.collection import names_one_scene
    if not names_one_scene(args.scene):
        return _evaluate_label_folder(args)
    _check_one_process(args.workers, "read")
    if args.plots and Path(args.plots).exists() and not Path(args.plots).is_dir():
        raise ValueError(f"--plots {args.plots}: is a file; give the folder to write the plots in")
    if args.plots:
        check_writable(args.plots, "--plots")
    from .data.address import load_scene
    from .metrics.evaluate import evaluate
    from .scene import PseudoLabels
    pseudo_file = _file_of_the_scene(args.pseudo, args.scene, "--pseudo")
    scene = load_scene(args.scene, **_reader_kwargs(args))
    pseudo = PseudoLabels.load(pseudo_file)
    rep = evaluate(scene, pseudo)
    if args.plots:
        from .viz.plots import write_plots
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
    from .data.collection import enumerate_scenes
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
    from .parallel import WorkerDied, process_map
    kw = _reader_kwargs(args)
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
    from .data.address import load_scene
    address, kw = item
    return dataclasses.replace(load_scene(address, **kw), color=None, normal=None, intensity=None, segment=None, frames=[],
                               extras={})


def _evaluate_label_folder(args: argparse.Namespace) -> int:
    """``pcweak evaluate FOLDER --pseudo LABELS``: the label files ``pcweak label`` wrote for a
    folder of scenes, scored together (``metrics.evaluate.evaluate_set``)."""
    from .metrics.evaluate import evaluate_set
    from .scene import PseudoLabels
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
    from .metrics.kitti import read_ids
    from .metrics.scannet_files import check_submission_files, instance_files_report, semantic_files_report
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
    from .data.address import parse_address
    from .metrics.kitti import evaluate_result_files, read_ids, result_folder, result_ids
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


def cmd_export(args: argparse.Namespace) -> int:
    from tqdm import tqdm
    from .metrics.scannet_files import check_scene_name, export_scannet
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
        from .metrics.semantickitti_files import export_semantickitti
        print(json.dumps(export_semantickitti(files, args.output, progress, names)))
    elif args.format == "semantic3d":
        from .metrics.semantic3d_files import export_semantic3d
        print(json.dumps(export_semantic3d(files, args.output, progress, names)))
    else:
        print(json.dumps(export_scannet(files, args.output, args.format.split("-", 1)[1], progress, names)))
    return 0


# what viz --export writes: PLY (CloudCompare, MeshLab), LAS / LAZ (GIS tools), PCD (PCL, ROS, Open3D)
EXPORT_FORMATS = (".ply", ".las", ".laz", ".pcd")


def cmd_viz(args: argparse.Namespace) -> int:
    from .data.address import load_scene
    from .scene import PseudoLabels, WeakLabels
    _check_one_scene(args.scene, "viz shows one")
    # options only a picture reads, which would be dropped without a word
    if args.views is not None and not args.png:
        raise ValueError("--views goes with --png (the rows of its grid); the window shows one view you turn")
    if args.export and not args.png:  # no window either: --export writes every label field and no seeds
        for given, option in ((args.color_by, "--color-by"), (args.weak, "--weak")):
            if given is not None:
                raise ValueError(f"{option} goes with --png or the window; --export writes every label field, no seeds")
    render_kw = {} if args.views is None else {"views": args.views}  # render_png holds the default
    if args.png:
        from .viz.render import check_png_output
        check_png_output(args.png, args.views)
    if args.export:
        from .npzio import check_output_file
        suffix = Path(args.export).suffix.lower()
        if suffix not in EXPORT_FORMATS:
            raise ValueError(f"--export {args.export}: the file name must end in {', '.join(EXPORT_FORMATS)} (the format "
                             f"it is written in)")
        check_output_file(args.export, suffix, "--export")
        check_not_an_input(args.export, _scene_inputs(args.scene), "--export")
        if suffix in (".las", ".laz"):
            from .data.las import require_laspy
            require_laspy(args.export)
    pseudo_file = _file_of_the_scene(args.pseudo, args.scene, "--pseudo") if args.pseudo else None
    weak_file = _file_of_the_scene(args.weak, args.scene, "--weak") if args.weak else None
    scene = load_scene(args.scene, **_reader_kwargs(args))
    if args.views is not None:
        from .viz.layers import drawn_from_above
        if drawn_from_above(scene):
            warnings.warn(f"--views {args.views}: {scene.name} is a LiDAR frame, drawn in one row of top views; "
                          "--views is not used")
    pseudo = PseudoLabels.load(pseudo_file) if pseudo_file else None
    weak = WeakLabels.load(weak_file) if weak_file else None
    done = False
    if args.export:
        from .data.ply import write_ply
        fields = {}
        if pseudo is not None:
            pseudo.check_against(scene)
            fields = {"pseudo_label": pseudo.semantic, "pseudo_instance": pseudo.instance, "confidence": pseudo.confidence}
            if "superpoint" in pseudo.extras:
                fields["superpoint"] = pseudo.extras["superpoint"]
            scene = scene.with_classes(pseudo.classes_with(scene))  # the file names the classes both are read under
        written = [n for n, v in (("label", scene.semantic), ("instance", scene.instance), ("segment", scene.segment))
                   if v is not None] + list(fields)
        if suffix == ".ply":
            print(f"[viz] PLY with scalar fields {written} -> {write_ply(scene, args.export, fields)}")
        elif suffix == ".pcd":
            from .data.pcd import write_pcd
            print(f"[viz] PCD with fields {written} -> {write_pcd(scene, args.export, fields)}")
        else:
            from .data.las import write_las
            by = "pseudo_label" if pseudo is not None else "label"
            out = write_las(scene, args.export, fields, classify_by=by)
            print(f"[viz] {suffix[1:].upper()} with extra dimensions {written}, "
                  f"classification from {by} -> {out}")
        done = True
    if args.png:
        from .viz.render import render_png
        print(f"[viz] rendered -> {render_png(scene, args.png, pseudo, weak, args.color_by, **render_kw)}")
        done = True
    if not done:
        from .viz import show
        show(scene, pseudo, weak, args.color_by)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo
    from .npzio import can_hold_folder
    for flag, value in (("--seed", args.seed), ("--epochs", args.epochs)):  # run_demo's ranges, under the flags' names
        if value < 0:
            raise ValueError(f"{flag} must be an integer >= 0, got {value}")
    if not can_hold_folder(args.out):  # "[Errno 17] File exists" from inside otherwise
        raise NotADirectoryError(f"--out {args.out}: is a file, or lies under one; give a folder for the demo's files")
    check_writable(args.out, "--out")
    run_demo(out_dir=Path(args.out), seed=args.seed, train_epochs=args.epochs)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import importlib
    from .bench import BENCHES
    from .params import check_kwargs
    mod = importlib.import_module(BENCHES[args.name])
    params = _params(args.param)
    check_kwargs(mod.run, params, f"bench {args.name}")
    result = mod.run(**params)
    print(json.dumps(result, indent=None if args.json else 2))
    return 0


def type_of(v: str) -> Any:
    """Parse a ``--param`` value: int, float, bool, JSON, else the string."""
    for conv in (int, float):
        try:
            return conv(v)
        except ValueError:
            pass
    if v.lower() in ("true", "false"):
        return v.lower() == "true"
    try:
        return json.loads(v)
    except json.JSONDecodeError:
        return v


def _add_axis_align(p: argparse.ArgumentParser) -> None:
    """The reader option of ScanNet-like scenes whose files hold no alignment of their own."""
    p.add_argument("--axis-align", help="axis alignment file (ScanNet v1, mmdetection3d points without infos, Pointcept ScanNet)")


def _add_weak_output(p: argparse.ArgumentParser, again: str, same: str) -> None:
    """``-o`` and ``--overwrite`` of a command writing weak-label files (simulate, import): one
    file, or a folder of ``<scene>.npz`` for a folder of scenes; ``again`` / ``same`` say what
    ``--overwrite`` redoes and what a rerun keeps."""
    p.add_argument("-o", "--output", required=True, help="weak-label .npz to write, or for a folder of scenes a "
                   "folder of <scene>.npz (what pcweak label --weak reads)")
    p.add_argument("--overwrite", action="store_true", help=f"a folder of scenes: {again} the scenes whose file exists "
                   f"(default: skip those {same})")
    p.add_argument("--workers", type=int, default=1, help="a folder of scenes: scenes read and written at once in worker "
                   "processes (default 1)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pcweak", description="Weakly supervised 3D point-cloud toolkit.")
    sub = p.add_subparsers(dest="command", required=True)
    addr_help = "scene address: scannet:DIR, scannet-export:DIR/SCENE, mmdet3d-scannet:ROOT/SCENE, mmdet3d-s3dis:ROOT/ROOM, pointcept-scannet:DIR, pointcept-s3dis:DIR, s3dis:DIR, kitti:DIR/training/ID, semantickitti:DIR/sequences/SEQ/ID, ply:FILE, las:FILE (.las/.laz), e57:FILE, pcd:FILE, txt:FILE (.txt/.xyz/.pts), npz:FILE, synthetic:SEED, synthetic-lidar:SEED; without DATASET:, a .ply/.las/.laz/.e57/.pcd/.txt/.xyz/.pts/.npz file or a ScanNet scan, S3DIS room or Pointcept scene folder"

    i = sub.add_parser("info", help="print a JSON summary of a scene, or list the scenes of a folder")
    i.add_argument("scene", help=addr_help + "; or a folder of scenes (as pcweak label takes): their names and addresses")
    i.add_argument("--axis-align", help="ScanNet v1, mmdetection3d points without infos or Pointcept ScanNet: file with the 4x4 axis alignment (scene .txt, infos .json or a 4x4 matrix)")
    i.add_argument("--compact", action="store_true", help="one-line JSON")
    i.set_defaults(func=cmd_info)

    s = sub.add_parser("simulate", help="draw weak labels from a scene's ground truth (one scene or a folder, resumable)")
    s.add_argument("scene", help=addr_help + "; or a folder of scenes (each drawn with its own seed, made from --seed and "
                   "its name, as training draws)")
    s.add_argument("--weak", required=True, choices=["points", "clicks", "clusters", "boxes", "masks2d", "boxes2d", "tags"])
    s.add_argument("--count", type=int, help="points: number of labelled points")
    s.add_argument("--ratio", type=float, help="points: fraction of labelled points (0.001 = 0.1%%)")
    s.add_argument("--stratified", action="store_true", help="points: spread the budget evenly over classes (default uniform)")
    s.add_argument("--per-instance", type=int, help="clicks: clicks per instance")
    s.add_argument("--oriented", action="store_true", help="boxes: minimum-footprint oriented boxes instead of axis-aligned")
    s.add_argument("--with-boxes", action="store_true", help="clicks, clusters: also store the frame's oriented boxes (KITTI: its annotated boxes); this frame is one of the fully boxed ones that teach click-boxes and cluster-boxes the object sizes")
    s.add_argument("--boxed-fraction", type=float, help="clicks, clusters, a folder of frames: this share of them (at least one, drawn from --seed as training's box_fraction draws) also store their boxes, as --with-boxes")
    s.add_argument("--noise", type=float, help="boxes: metres of N(0,noise) jitter; boxes2d: pixels")
    s.add_argument("--erosion", type=int, help="masks2d: boundary erosion in pixels")
    s.add_argument("--merge-prob", type=float, help="masks2d: chance that a mask is merged with a neighbouring one (SAM-like under-segmentation)")
    s.add_argument("--split-prob", type=float, help="masks2d: chance that a mask is cut in two (over-segmentation)")
    s.add_argument("--drop-prob", type=float, help="masks2d: chance that a mask is missing")
    s.add_argument("--seed", type=int, default=0)
    _add_axis_align(s)
    _add_weak_output(s, "draw again", "drawn from the same scene and settings")
    s.set_defaults(func=cmd_simulate)

    from .weak.from_tables import COORDINATES, MAX_DISTANCE_M
    im = sub.add_parser("import", help="read weak labels made in another tool: clicked points, boxes, image boxes and scene tags as "
                        "text tables, and boxes as labelCloud, SUSTechPOINTS and Supervisely / CVAT save them (JSON)")
    im.add_argument("scene", help=addr_help + "; or a folder of scenes")
    im.add_argument("tables", nargs="+", type=Path, help="CSV / TSV / whitespace tables with a header: x,y,z (or index),class[,instance] "
                    "for clicked points; cx,cy,cz,dx,dy,dz[,yaw],class for boxes; x1,y1,x2,y2,class,frame for image boxes; tag (one "
                    "column) for scene tags; a class by name or index; boxes also as labelCloud's, SUSTechPOINTS' or Supervisely's .json. For a "
                    "folder of scenes: folders holding <scene>.csv (.tsv, .txt, .json) or <scene>/ of tables")
    im.add_argument("--classes", help="the class list, where the scene has none or labels points without naming their "
                                      "classes (a PLY's class_3): names separated by commas, or a file of one per line")
    im.add_argument("--coords", choices=COORDINATES, default=COORDINATES[0],
                    help="coordinates as the scene's file holds them (default: a LAS tile's own units and offsets, ScanNet's "
                         "unaligned mesh), or as pcweak holds the scene's points")
    im.add_argument("--max-distance", type=float, default=MAX_DISTANCE_M, help="metres: a clicked point farther from every point "
                    f"of the scene is refused (default {MAX_DISTANCE_M:g})")
    _add_axis_align(im)
    _add_weak_output(im, "import again", "made from the same scene, tables and options")
    im.set_defaults(func=cmd_import)

    lb = sub.add_parser("label", help="turn weak labels into dense pseudo-labels (one scene or a folder, resumable)")
    lb.add_argument("scene", help=addr_help + "; or a folder of scenes")
    lb.add_argument("--weak", help="weak-label .npz, or a folder of <scene>.npz for a folder of scenes")
    lb.add_argument("--method", default="propagate", help="propagate (default), nearest, gp-boxes, smallest-box, lift-masks, boxes2d-frustum, click-boxes, cluster-boxes, "
                    "or self-training: model (the model's labels) or model-walk (propagation from --weak whose graph also compares the model's class probabilities)")
    lb.add_argument("--ckpt", help="--method model / model-walk: a checkpoint of pcweak fit")
    lb.add_argument("--masks", help="--method lift-masks: folder of per-frame 2D masks (<frame>.png/.npy, optional scores.npy); "
                                    "a folder of scenes uses <masks>/<scene>/; default: the masks in --weak")
    lb.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="labeller setting, e.g. graph.sigma_color=0.1 or solver.name=harmonic (an unknown name lists them all)")
    lb.add_argument("-o", "--output", required=True, help="pseudo-label .npz, or a folder for a folder of scenes")
    lb.add_argument("--overwrite", action="store_true", help="redo scenes whose output exists (default: skip them)")
    lb.add_argument("--workers", type=int, default=1, help="scenes labelled at once in worker processes (the CPU threads are shared)")
    lb.add_argument("--voxel", type=float, metavar="METRES", help="label one point per voxel of this edge and give every point "
                    "the labels of a kept point beside it, the closest in position, colour and normal (labelled points keep "
                    "their own): for scans too large to label point by point, e.g. 0.05 for a terrestrial laser scan (not "
                    "the LiDAR box methods)")
    _add_axis_align(lb)
    lb.set_defaults(func=cmd_label)

    mk = sub.add_parser("masks", help="2D masks of a scene's frames from SAM, class scores from a CLIP/SigLIP model (one "
                        "scene or a folder, resumable; the models extra)")
    mk.add_argument("scene", help=addr_help + " (with RGB-D frames); or a folder of scenes: one -o/<scene>/ each")
    mk.add_argument("--sam", help="SAM model folder or Hugging Face name (e.g. facebook/sam-vit-base): make masks")
    mk.add_argument("--masks", help="existing mask folder to score with --vlm instead (a folder of scenes: one <scene>/ each)")
    mk.add_argument("--vlm", help="CLIP/SigLIP model folder or name (e.g. openai/clip-vit-base-patch32): scores.npy of each mask vs the scene's classes")
    mk.add_argument("--points-per-side", type=int, help="SAM prompt grid (points per image side, at most 256; default 32)")
    mk.add_argument("--frame-step", type=int, default=1, help="use every n-th frame")
    mk.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    _add_axis_align(mk)
    mk.add_argument("--overwrite", action="store_true", help="redo a folder made with other settings (default: refuse; same settings resume)")
    mk.add_argument("-o", "--output", required=True, type=Path, help="mask folder to write (<frame>.png, scores.npy, masks.json): "
                    "pcweak label --masks; an interrupted run resumes where it stopped")
    mk.set_defaults(func=cmd_masks)

    ev = sub.add_parser("evaluate", help="score pseudo-labels against a scene's ground truth, or KITTI result files as the devkit does")
    ev.add_argument("scene", help=addr_help + "; with --detections: kitti:<root>/training")
    ev.add_argument("--pseudo", help="pseudo-label .npz; with a folder of scenes, the folder of <scene>.npz that pcweak "
                    "label wrote: mIoU from the confusion summed over the scenes, instance AP over all, each scene's mIoU")
    ev.add_argument("--detections", help="folder of KITTI result files <frame id>.txt (or its data/ subfolder): "
                    "2D / BEV / 3D AP, easy / moderate / hard, R11 and R40, as KITTI's devkit")
    ev.add_argument("--submission", help="folder of ScanNet benchmark files <scene>.txt (pcweak export's, or any "
                    "method's): mIoU or instance AP over the scenes of the folder of scans given, as ScanNet's "
                    "evaluate_semantic_label.py / evaluate_semantic_instance.py")
    ev.add_argument("--format", choices=("scannet-semantic", "scannet-instance"),
                    help="with --submission: scannet-semantic (default; one NYU40 id per mesh vertex) or scannet-instance "
                         "(a line '<mask file> <NYU40 id> <confidence>' per instance; masks may overlap)")
    ev.add_argument("--ids", help="with --detections or --submission: file of frame / scene ids to score, one per line "
                    "(default: every file)")
    ev.add_argument("--json", action="store_true", help="compact one-line JSON")
    _add_axis_align(ev)
    ev.add_argument("--plots", help="folder for a per-class IoU bar chart and a confusion matrix (PNG)")
    ev.add_argument("--workers", type=int, default=1, help="a folder of scenes (--pseudo or --submission): scenes read at "
                    "once in worker processes (default 1)")
    ev.set_defaults(func=cmd_evaluate)

    ex = sub.add_parser("export", help="write label files as ScanNet, SemanticKITTI or Semantic3D benchmark submission files")
    ex.add_argument("labels", help="a label file (.npz, as pcweak label / predict write) or a folder of them, named <scene>.npz")
    ex.add_argument("--format", required=True, choices=("scannet-semantic", "scannet-instance", "semantickitti", "semantic3d"),
                    help="scannet-semantic: <scene>.txt with a NYU40 id per point; scannet-instance: <scene>.txt listing "
                         "predicted_masks/<scene>_<k>.txt, NYU40 id and confidence per instance; semantickitti: "
                         "sequences/<seq>/predictions/<id>.label, a raw label id (and instance) per point, for scene <seq>_<id>; "
                         "semantic3d: <scene>.labels, a class 1-8 per line")
    ex.add_argument("-o", "--output", required=True, type=Path, help="folder to write (the submission's root)")
    ex.add_argument("--scene", help="the scene a single label file labels (default: the file's name without .npz)")
    ex.set_defaults(func=cmd_export)

    vz = sub.add_parser("viz", help="look at a scene and its labels: Open3D window, headless PNG, PLY export")
    vz.add_argument("scene", help=addr_help)
    vz.add_argument("--pseudo", help="pseudo-label .npz, or a folder holding the scene's <scene>.npz")
    vz.add_argument("--weak", help="weak-label .npz, or a folder holding the scene's <scene>.npz (seed points drawn as "
                                   "spheres, boxes as lines)")
    vz.add_argument("--color-by", choices=["semantic", "instance", "confidence", "error", "rgb", "superpoint"],
                    help="one layer (default: GT | pseudo | error side by side when both exist); superpoint: the cells "
                         "a propagation's labels are uniform over (its superpoints), else the scene's own segments")
    vz.add_argument("--png", help="render headless into this PNG instead of opening a window")
    vz.add_argument("--views", type=int, help="views in the PNG grid (default 4)")
    vz.add_argument("--export", help="write a PLY (CloudCompare, MeshLab), LAS / LAZ (GIS tools; the las extra) or PCD file "
                    "(PCL, ROS, Open3D) with "
                    "label / instance / confidence (and a propagation's superpoint) fields; a LAS file's classification "
                    "holds the pseudo-labels (else the ground truth)")
    _add_axis_align(vz)
    vz.set_defaults(func=cmd_viz)

    from .bench import BENCHES
    b = sub.add_parser("bench", help="run a benchmark and print one JSON object")
    b.add_argument("name", choices=sorted(BENCHES))
    b.add_argument("--json", action="store_true", help="compact one-line JSON")
    b.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="override a benchmark size, e.g. n_support=100000")
    b.set_defaults(func=cmd_bench)

    for name, what in (("fit", "train a model: pcweak fit --config configs/X.yaml (LightningCLI; --help there lists every option)"),
                       ("validate", "score a checkpoint on the validation scenes (LightningCLI)"),
                       ("test", "score a checkpoint on the test scenes; detection writes KITTI result files (LightningCLI)"),
                       ("predict", "run a checkpoint on scenes (LightningCLI)")):
        sub.add_parser(name, help=what, add_help=False)  # main() hands these to LightningCLI before parsing
    d = sub.add_parser("demo", help="run the main job on the built-in synthetic scene (no data needed)")
    d.add_argument("--out", default="demo_output", help="folder for the demo's files")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--epochs", type=int, default=30, help="training epochs of each demo run (0 skips training)")
    d.set_defaults(func=cmd_demo)
    return p


def _commands(parser: argparse.ArgumentParser) -> list[str]:
    """The subcommand names, in the order of ``pcweak --help``."""
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            return list(a.choices)
    return []


@contextlib.contextmanager
def _stage_lines(command: str) -> Any:
    """While inside, pcweak's stage messages (its loggers' INFO records: "partition 3 (...) made
    and walked") reach stderr as ``pcweak COMMAND: [  12.3 s] message``, so one long scene shows
    where it is."""
    start = time.perf_counter()

    class Elapsed(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return f"pcweak {command}: [{time.perf_counter() - start:6.1f} s] {record.getMessage()}"

    logger = logging.getLogger("pcweak")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(Elapsed())
    handler.setLevel(logging.INFO)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


# commands whose interrupted run the same command continues (finished outputs are kept)
RESUMABLE = {"label": "labels only the scenes without a current output",
             "masks": "makes only the frames without masks",
             "fit": "makes only the pseudo-labels not yet made (a trainer interrupted stops by itself)"}


def _interrupted(command: str, debug: bool, in_trainer: bool = False) -> int:
    """Ctrl-C (or SIGTERM, ``_stop_on_sigterm``): one line instead of a KeyboardInterrupt
    traceback, exit status 128 + the signal (130, 143), as shells report it, also where the
    trainer stopped gracefully (``in_trainer``; Lightning itself would exit 1). Outputs are
    renamed into place whole, so none is left half-written."""
    if debug:
        raise KeyboardInterrupt
    import signal
    again = None if in_trainer else RESUMABLE.get(command)
    signum = _stopped_by or signal.SIGINT
    if _first_process():  # a distributed run's other processes stop alike: one line for all
        said = "interrupted" if signum == signal.SIGINT else "stopped by SIGTERM"
        print(f"\npcweak {command}: {said}; every output written is whole"
              + (f"; the same command {again}" if again else ""), file=sys.stderr)
    return 128 + signum


def _first_process() -> bool:
    """Whether this process is the first of a distributed run (or runs alone): Lightning starts
    the others with ``LOCAL_RANK`` (and ``NODE_RANK`` on other machines), torchrun sets ``RANK``."""
    env = os.environ
    if env.get("RANK") is not None:
        return env["RANK"] == "0"
    return env.get("LOCAL_RANK", "0") == "0" and env.get("NODE_RANK", "0") == "0"


def _end_process_group() -> None:
    """Close this process's part of a distributed run that ended whole (a no-op alone). Left to
    the interpreter's exit, gloo's threads were destroyed still joinable now and then: "terminate
    called without an active exception" and exit status -6 (SIGABRT) after a two-process predict
    had written every prediction. Not after an error or an interrupt: the other processes may
    still be inside a collective, on which destroying an NCCL group can wait."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _caused_by_interrupt(e: BaseException) -> bool:
    """Whether ``e`` stands for a Ctrl-C: a compiled extension imported while it came (pybind11's
    ImportError "initialization failed") raises its own error with the KeyboardInterrupt as
    its cause."""
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return False


def _plain_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings reach CLI users as one plain line, without source paths, on a line of its own
    when a progress bar is drawn (``tqdm.write`` moves the bar below it)."""
    from tqdm import tqdm
    tqdm.write(f"pcweak: warning: {message}", file=file or sys.stderr)


def _quiet_third_party_deprecations() -> None:
    """Third-party deprecation notices (gpytorch's dependencies scripting functions at import,
    spconv's build tools asking for the locale, Lightning calling torch's old pytree API) are
    their authors' business, not the user's; pcweak's own still show."""
    for category in (DeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category)
        warnings.filterwarnings("default", category=category, module=r"pcweak(\.|$)")


class _NoLightningAdverts(logging.Filter):
    """Drops Lightning's tip advertising its cloud experiment tracker (``litlogger``), logged at
    every fit, test and predict whose loggers are not that service's: pcweak's runs log locally
    (CSV, TensorBoard). Lightning's other lines (devices, model summary) pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in str(record.msg)


def _drop_lightning_adverts() -> None:
    """``_NoLightningAdverts`` on the loggers Lightning's ``rank_zero_info`` logs through
    (``lightning.pytorch``'s or ``lightning.fabric``'s ``utilities.rank_zero``, whichever was
    imported last), once."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoLightningAdverts) for f in logger.filters):
            logger.addFilter(_NoLightningAdverts())


def _stop_on_sigterm() -> None:
    """SIGTERM (``kill``, ``timeout``, a batch scheduler ending or pre-empting a job) stops a
    command as Ctrl-C does: its workers ended, one line, exit status 143, and a fit saves
    ``interrupted.ckpt`` (otherwise Python dies at once, saying nothing and saving nothing)."""
    import signal

    def stop(signum: int, frame: Any) -> None:
        global _stopped_by
        _stopped_by = signum
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)


_stopped_by: int | None = None  # the signal a _stop_on_sigterm handler turned into KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:  # the console command (not a caller's main([...])): its process to stop
        _stop_on_sigterm()
    argv = list(sys.argv[1:] if argv is None else argv)
    from .train.lightning_cli import TRAIN_COMMANDS, denied_import
    debug = os.environ.get("PCWEAK_DEBUG", "") not in ("", "0")
    # torch's one-off advice to library authors ("is_fx_tracing will return true ..."), logged
    # when spconv loads: not the user's business
    logging.getLogger("torch.fx._symbolic_trace").setLevel(logging.ERROR)
    _drop_lightning_adverts()  # training commands, bench detect, label's self-training
    if argv and argv[0] in TRAIN_COMMANDS:
        from lightning.fabric.utilities.exceptions import MisconfigurationException

        from .train.lightning_cli import run_lightning_cli
        warnings.simplefilter("default")
        warnings.showwarning = _plain_warning
        _quiet_third_party_deprecations()
        try:
            code = int(run_lightning_cli(argv))
            _end_process_group()  # after a whole run only: torch can block on an NCCL group with work pending
            return code
        except KeyboardInterrupt:  # outside the trainer's own handling (parsing, making pseudo-labels)
            return _interrupted(argv[0], debug)
        except SystemExit as e:
            # the trainer's own handling: a graceful stop, then sys.exit(1) (InterruptedCheckpoint
            # has said how a fit resumes)
            if e.code == 1 and isinstance(e.__context__, KeyboardInterrupt):
                return _interrupted(argv[0], debug, in_trainer=True)
            raise
        except argparse.ArgumentError as e:  # the config or an option: jsonargparse's message, without its usage dump
            if debug:
                raise
            why = denied_import(str(e)) or f"{e}\n(pcweak {argv[0]} --help lists every option)"
            print(f"pcweak {argv[0]}: error: {why}", file=sys.stderr)
            return 2
        # OSError: a file missing, read-only or on a full disk; MisconfigurationException: a
        # trainer setting this machine cannot meet (accelerator, devices)
        except (PcweakError, ValueError, OSError, RuntimeError, MisconfigurationException) as e:
            if _caused_by_interrupt(e):
                return _interrupted(argv[0], debug)
            if debug:
                raise
            print(f"pcweak {argv[0]}: error: {e} (PCWEAK_DEBUG=1 shows where)", file=sys.stderr)
            return 2
    parser = build_parser()
    if argv and not argv[0].startswith("-"):
        known = _commands(parser)
        if argv[0] not in known:
            close = difflib.get_close_matches(argv[0], known, n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            print(f"pcweak: error: unknown command '{argv[0]}'{hint} (commands: {', '.join(known)})", file=sys.stderr)
            return 2
    args = parser.parse_args(argv)
    warnings.simplefilter("default")
    warnings.showwarning = _plain_warning
    _quiet_third_party_deprecations()
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return _interrupted(args.command, debug)
    # OSError: a file missing, read-only or on a full disk, each message naming the file
    except (PcweakError, ValueError, OSError, RuntimeError, ImportError) as e:
        if _caused_by_interrupt(e):
            return _interrupted(args.command, debug)
        if debug:
            raise
        print(f"pcweak {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
