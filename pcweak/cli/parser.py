"""The ``pcweak`` argument parser: every command's options, each wired to its ``cmd_*`` function."""
from __future__ import annotations

import argparse
from pathlib import Path

from .evaluate import cmd_evaluate
from .export import cmd_export
from .info import cmd_info
from .label import cmd_label
from .masks import cmd_masks
from .run import cmd_bench, cmd_demo
from .viz import cmd_viz
from .weak_files import cmd_import, cmd_simulate


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

    from ..weak.from_tables import COORDINATES, MAX_DISTANCE_M
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
    lb.add_argument("--groups", help="--method propagate: class-agnostic 3D proposals that join and cut the walk's graph, one id "
                                     "per point (-1: none) in a .npy, .txt (one per line) or pseudo-label .npz (its instances); "
                                     "a folder of scenes uses <groups>/<scene>.npy|.txt|.npz")
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

    from ..bench import BENCHES
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
    d.add_argument("--rooms", type=int, default=None,
                   help="synthetic training rooms of each demo run (default: configs/demo.yaml's synthetic_train)")
    d.set_defaults(func=cmd_demo)
    return p


def command_names(parser: argparse.ArgumentParser) -> list[str]:
    """The subcommand names, in the order of ``pcweak --help``."""
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            return list(a.choices)
    return []
