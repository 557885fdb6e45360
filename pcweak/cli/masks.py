"""``pcweak masks``: SAM masks of a scene's frames and vision-language scores of masks, into the
mask folder ``pcweak label --masks`` reads (one per scene for a folder; resumable)."""
from __future__ import annotations

import argparse
import inspect
import json
from pathlib import Path
from typing import Any

from ..npzio import check_writable
from .common import check_not_the_scene_folder, reader_kwargs, scenes_refused


def _model_stamp(model: str | None) -> Any:
    """What identifies a model for resuming: a local folder's file names, sizes and times; a
    Hub name as given."""
    if model is None or not Path(model).is_dir():
        return model
    return {f.name: [f.stat().st_size, f.stat().st_mtime_ns] for f in sorted(Path(model).iterdir()) if f.is_file()}


def cmd_masks(args: argparse.Namespace) -> int:
    """``pcweak masks SCENE -o MASKDIR``, or of a folder of scenes ``-o MASKDIR`` with one
    ``MASKDIR/<scene>/`` each (``pcweak label FOLDER --masks MASKDIR`` reads them)."""
    from ..data.address import check_scene_present
    from ..data.collection import names_one_scene
    from ..pseudo.mask_models import check_device, check_model_source, check_points_per_side, iter_sam_masks
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
            check_model_source(model, what, what.lstrip("-"))
    if one:
        print(json.dumps(_masks_of_scene(args, args.scene, out, args.masks)))
        return 0
    return _masks_folder(args, scenes, given, out)


def mask_folders_per_scene(masks: str, names: list[str]) -> dict[str, str]:
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
    from ..data.address import check_reader_options
    from ..data.collection import enumerate_scenes
    scenes = enumerate_scenes(args.scene)
    check_not_the_scene_folder(out, args.scene, "give another folder, which gets one <scene>/ mask folder each")
    reader = reader_kwargs(args)
    for _, address in scenes:
        check_reader_options(address, reader)
    given = {} if args.masks is None else mask_folders_per_scene(args.masks, [n for n, _ in scenes])
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
    from ..label_jobs import SCENE_ERRORS
    from ..pseudo.mask_models import ModelUnavailable, models_held
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
        raise scenes_refused(failed, len(scenes), "given masks", "makes")
    return 0


def _masks_of_scene(args: argparse.Namespace, address: str, out: Path, masks: str | None) -> dict[str, Any]:
    """One scene's mask folder ``out`` (``<frame>.png``, ``scores.npy``, the manifest): SAM's
    masks of the frames not yet made, or the masks of the folder ``masks``, scored with
    ``args.vlm``; refused where ``out`` holds masks of other inputs or settings (unless
    ``args.overwrite``). Returns the summary line's fields."""
    from ..data.address import load_scene
    from ..npzio import atomic_write_bytes
    from ..pseudo.mask_models import iter_sam_masks, vlm_mask_scores
    from ..pseudo.mask_sources import MANIFEST, load_mask_folder, write_mask_file, write_mask_folder
    scene = load_scene(address, **reader_kwargs(args))
    if not scene.frames:
        raise ValueError(f"{address}: the scene has no RGB-D frames to make masks on")
    frames = list(range(0, len(scene.frames), args.frame_step))
    # the scene's files (its images among them) identify it; masks written inside its folder do not
    from ..label_jobs import scene_identity
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
        maps, _ = load_mask_folder(out, scene, with_scores=False)
    else:
        maps, _ = load_mask_folder(masks, scene, with_scores=False)
        wanted = set(frames)
        maps = [(i, m) for i, m in maps if i in wanted]
    scores = vlm_mask_scores(scene, maps, args.vlm, device=args.device) if args.vlm else None
    write_mask_folder(out, scene, maps if masks else [], scores)
    return {"output": str(out), "frames": len(maps), "masks": int(sum(int(m.max()) for _, m in maps)),
            "scores": None if scores is None else list(scores.shape)}


def _mask_model_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings of a mask folder that are the same for every scene: the models (as named
    and as ``_model_stamp`` identifies them), SAM's prompt grid and the code that makes masks
    (``code_stamp.MASK_MODULES``: ``code`` and ``pcweak``, its version)."""
    from ..code_stamp import MASK_MODULES, made_by
    return {"sam": args.sam, "sam_files": _model_stamp(args.sam), "points_per_side": args.points_per_side,
            "vlm": args.vlm, "vlm_files": _model_stamp(args.vlm), **made_by(MASK_MODULES)}


def _mask_settings_changed(out: Path, settings: dict[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    """The manifest of the mask folder ``out`` (None where there is none) and which of
    ``settings`` it holds otherwise, where masks were made under it (else none: a run that
    stopped before its first mask, say on a mistyped model, holds nothing to keep or serve).
    A key an older manifest lacks reads as the same; an unreadable one differs in every key."""
    from ..pseudo.mask_sources import MANIFEST
    manifest = out / MANIFEST
    try:
        old = json.loads(manifest.read_text()) if manifest.is_file() else None
    except ValueError:
        old = None
    if manifest.is_file() and not isinstance(old, dict):  # unreadable, or not an object
        old = {k: None for k in settings}
    made = out.is_dir() and (any(out.glob("*.png")) or (out / "scores.npy").is_file())
    if not made:
        return old, []
    return old, sorted(k for k in settings if old is None or old.get(k, settings[k]) != settings[k])
