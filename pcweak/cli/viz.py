"""``pcweak viz``: a scene and its labels in Open3D's window, a PNG, or a point-cloud file."""
from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from ..npzio import check_not_an_input
from .common import check_one_scene, file_of_the_scene, reader_kwargs, scene_inputs


# what viz --export writes: PLY (CloudCompare, MeshLab), LAS / LAZ (GIS tools), PCD (PCL, ROS, Open3D)
EXPORT_FORMATS = (".ply", ".las", ".laz", ".pcd")


def cmd_viz(args: argparse.Namespace) -> int:
    from ..data.address import load_scene
    from ..scene import PseudoLabels, WeakLabels
    check_one_scene(args.scene, "viz shows one")
    # options only a picture reads, which would be dropped without a word
    if args.views is not None and not args.png:
        raise ValueError("--views goes with --png (the rows of its grid); the window shows one view you turn")
    if args.export and not args.png:  # no window either: --export writes every label field and no seeds
        for given, option in ((args.color_by, "--color-by"), (args.weak, "--weak")):
            if given is not None:
                raise ValueError(f"{option} goes with --png or the window; --export writes every label field, no seeds")
    if not args.png and not args.export:  # the window: a display to open it on, before the scene is read
        from ..viz.window import check_display
        check_display()
    render_kw = {} if args.views is None else {"views": args.views}  # render_png holds the default
    if args.png:
        from ..viz.render import check_png_output
        check_png_output(args.png, args.views)
    if args.export:
        from ..npzio import check_output_file
        suffix = Path(args.export).suffix.lower()
        if suffix not in EXPORT_FORMATS:
            raise ValueError(f"--export {args.export}: the file name must end in {', '.join(EXPORT_FORMATS)} (the format "
                             f"it is written in)")
        check_output_file(args.export, suffix, "--export")
        check_not_an_input(args.export, scene_inputs(args.scene), "--export")
        if suffix in (".las", ".laz"):
            from ..data.las import require_laspy
            require_laspy(args.export)
    pseudo_file = file_of_the_scene(args.pseudo, args.scene, "--pseudo") if args.pseudo else None
    weak_file = file_of_the_scene(args.weak, args.scene, "--weak") if args.weak else None
    scene = load_scene(args.scene, **reader_kwargs(args))
    if args.views is not None:
        from ..viz.layers import drawn_from_above
        if drawn_from_above(scene):
            warnings.warn(f"--views {args.views}: {scene.name} is a LiDAR frame, drawn in one row of top views; "
                          "--views is not used")
    pseudo = PseudoLabels.load(pseudo_file) if pseudo_file else None
    weak = WeakLabels.load(weak_file) if weak_file else None
    done = False
    if args.export:
        from ..data.ply import write_ply
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
            from ..data.pcd import write_pcd
            print(f"[viz] PCD with fields {written} -> {write_pcd(scene, args.export, fields)}")
        else:
            from ..data.las import write_las
            by = "pseudo_label" if pseudo is not None else "label"
            out = write_las(scene, args.export, fields, classify_by=by)
            print(f"[viz] {suffix[1:].upper()} with extra dimensions {written}, "
                  f"classification from {by} -> {out}")
        done = True
    if args.png:
        from ..viz.render import render_png
        print(f"[viz] rendered -> {render_png(scene, args.png, pseudo, weak, args.color_by, **render_kw)}")
        done = True
    if not done:
        from ..viz import show
        show(scene, pseudo, weak, args.color_by)
    return 0
