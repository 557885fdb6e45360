"""``pcweak info``: a scene's JSON summary, or the scenes of a folder."""
from __future__ import annotations

import argparse
import json

from .common import reader_kwargs


def cmd_info(args: argparse.Namespace) -> int:
    from ..data.address import load_scene
    from ..data.collection import enumerate_scenes, names_one_scene
    if names_one_scene(args.scene):
        out = load_scene(args.scene, **reader_kwargs(args)).summary()
    else:  # a folder: the scenes pcweak label would go through, as it names and reads them
        scenes = enumerate_scenes(args.scene)
        out = {"folder": args.scene, "scenes": len(scenes), "list": [{"name": n, "address": a} for n, a in scenes]}
    print(json.dumps(out, indent=None if args.compact else 2))
    return 0
