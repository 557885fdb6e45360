"""``pcweak simulate`` and ``pcweak import``: weak-label files drawn from a scene's ground truth
or read from another tool's tables, for one scene or a folder of scenes (resumable)."""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
import warnings
from pathlib import Path
from typing import Any

from ..npzio import check_not_an_input, check_writable
from .common import (
    check_folder_options, check_workers, checking_outputs, folder_output, one_scene_output, reader_kwargs,
    scene_inputs, scenes_refused,
)


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
    from ..data.address import load_scene
    from ..data.collection import names_one_scene
    from ..params import check_ranges
    from ..weak import KINDS
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
    check_workers(args.workers)
    check_writable(args.output, "-o")
    if not names_one_scene(args.scene):
        return _simulate_folder(args, kw)
    if args.boxed_fraction is not None:
        raise ValueError("--boxed-fraction goes with a folder of frames (a share of them boxed); for one frame give "
                         "--with-boxes")
    check_folder_options(args, "draws again the scenes whose file exists")
    output = one_scene_output(args.output, args.scene, scene_inputs(args.scene))
    scene = load_scene(args.scene, **reader_kwargs(args))
    weak = _simulated(scene, args.weak, args.seed, kw, args.with_boxes)
    weak.save(output)
    print(json.dumps({"output": str(output), "scene": scene.name, "kinds": weak.kinds(),
                      **{k: int(len(v)) for k, v in (("points", weak.point_index), ("boxes", weak.box),
                                                     ("boxes2d", weak.box2d), ("mask_frames", weak.mask2d)) if v is not None}}))
    return 0


def _simulated(scene: Any, kind: str, seed: int, kw: dict[str, Any], with_boxes: bool) -> Any:
    """``pcweak simulate``'s weak labels of one scene: ``kind`` drawn with ``seed`` and the
    simulator arguments ``kw``, and with ``with_boxes`` the scene's oriented boxes beside them."""
    from ..weak import simulate
    weak = simulate(scene, kind, seed=seed, **kw)
    if with_boxes:
        b = simulate(scene, "boxes", seed=seed, axis_aligned=False)
        weak = dataclasses.replace(weak, box=b.box, box_semantic=b.box_semantic, meta={**weak.meta, "boxed": True})
    return weak


def _write_weak_folder(verb: str, done: str, scenes: list[tuple[str, str]], out: Path, make: Any, fingerprint: Any,
                       args: argparse.Namespace, extra: dict[str, Any]) -> int:
    """Run ``weak_jobs.write_weak_files`` (``args.overwrite``, ``args.workers``) with a progress
    bar named ``verb``, print its JSON line (the count written under ``done``, ``extra`` added),
    and end in one error naming the scenes refused."""
    from tqdm import tqdm
    from ..weak_jobs import write_weak_files
    def bar(items: Any, total: int, stage: str) -> Any:
        if stage == "check":
            return checking_outputs(items, total, verb)
        return tqdm(items, total=total, desc=verb, unit="scene", disable=not sys.stderr.isatty() and total < 2)
    counts, failed = write_weak_files(scenes, out, make, fingerprint, overwrite=args.overwrite, progress=bar,
                                      workers=args.workers)
    print(json.dumps({done: counts["written"],
                      "skipped_existing": counts["skipped_existing"], "redone_other_inputs": counts["redone_other_inputs"],
                      **extra, **({"failed": len(failed)} if failed else {}), "output": str(out)}))
    if failed:
        raise scenes_refused(failed, len(scenes), done, f"{verb}s")
    return 0


def _simulate_folder(args: argparse.Namespace, kw: dict[str, Any]) -> int:
    """``pcweak simulate FOLDER --weak KIND ... -o OUT``: ``OUT/<scene>.npz`` per scene, each
    drawn with ``weak.scene_seed(name, --seed)``; resumable (``weak_jobs``)."""
    from ..data.address import check_reader_options
    from ..data.collection import enumerate_scenes
    from ..weak import boxed_frames
    from ..weak_jobs import weak_fingerprint
    out = folder_output(args.output, args.scene)
    reader = reader_kwargs(args)
    scenes = enumerate_scenes(args.scene)
    for name, address in scenes:  # every scene and output checked before the first is read
        check_reader_options(address, reader)
        check_not_an_input(out / f"{name}.npz", scene_inputs(address), "-o")
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
    from ..data.address import load_scene
    from ..weak import scene_seed
    return _simulated(load_scene(address, **reader), kind, scene_seed(name, seed), kw, name in boxed)


def _class_list(value: str | None) -> tuple[str, ...] | None:
    """``--classes``: names separated by commas, or a text file of one name per line."""
    if value is None:
        return None
    path = Path(value)
    names = [n.strip() for n in (path.read_text(encoding="utf-8-sig").splitlines() if path.is_file() else value.split(","))]
    while names and not names[-1]:  # a file's closing blank lines, a list's closing comma
        names.pop()
    if not names:
        raise ValueError(f"--classes {value!r}: no class names (names separated by commas, or a file of one per line)")
    if "" in names:  # left out, every later label would take the name of the next
        raise ValueError(f"--classes {value!r}: label {names.index('')} has no name; name every label up to the last "
                         f"(class_{names.index('')} for one you leave unnamed)")
    return tuple(names)


def cmd_import(args: argparse.Namespace) -> int:
    from ..data.collection import names_one_scene
    if not args.max_distance > 0:  # before the tables and the scene are read
        raise ValueError(f"--max-distance must be > 0 metres, got {args.max_distance}")
    check_workers(args.workers)
    check_writable(args.output, "-o")
    if not names_one_scene(args.scene):
        return _import_folder(args)
    from ..data.address import load_scene
    from ..weak.from_tables import read_tables, weak_from_tables
    check_folder_options(args, "imports again the scenes whose file exists")
    classes = _class_list(args.classes)
    for t in args.tables:
        if t.is_dir():
            raise ValueError(f"{t}: a folder of tables goes with a folder of scenes; for one scene give its table files")
    output = one_scene_output(args.output, args.scene, scene_inputs(args.scene) + [("a table", t) for t in args.tables])
    tables = [t for f in args.tables for t in read_tables(f)]  # every table read before the scene
    scene = load_scene(args.scene, **reader_kwargs(args))
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
    from ..data.address import check_reader_options
    from ..data.collection import enumerate_scenes
    from ..weak.from_tables import table_companions
    from ..weak_jobs import tables_by_scene, weak_fingerprint
    out = folder_output(args.output, args.scene)
    classes = _class_list(args.classes)
    reader = reader_kwargs(args)
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
        check_not_an_input(out / f"{name}.npz", scene_inputs(address) + [("a table", t) for t in found[name]], "-o")
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
    from ..data.address import load_scene
    from ..weak.from_tables import read_tables, weak_from_tables
    tables = [t for f in found[name] for t in read_tables(f)]
    return weak_from_tables(load_scene(address, **reader), tables, classes=classes, max_distance=max_distance, coords=coords)
