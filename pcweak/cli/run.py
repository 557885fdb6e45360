"""``pcweak demo`` and ``pcweak bench``: the packaged jobs."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..npzio import check_writable
from .common import param_values


def cmd_demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo
    from ..npzio import can_hold_folder
    # run_demo's ranges, under the flags' names (no --rooms: the config's rooms)
    for flag, value, lowest in (("--seed", args.seed, 0), ("--epochs", args.epochs, 0), ("--rooms", args.rooms, 1)):
        if value is not None and value < lowest:
            raise ValueError(f"{flag} must be an integer >= {lowest}, got {value}")
    if args.rooms is not None and args.epochs == 0:
        raise ValueError("--rooms is the training runs' rooms, and --epochs 0 trains nothing: leave one of them out")
    if not can_hold_folder(args.out):  # "[Errno 17] File exists" from inside otherwise
        raise NotADirectoryError(f"--out {args.out}: is a file, or lies under one; give a folder for the demo's files")
    check_writable(args.out, "--out")
    run_demo(out_dir=Path(args.out), seed=args.seed, train_epochs=args.epochs, train_rooms=args.rooms)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import importlib
    from ..bench import BENCHES
    from ..params import check_kwargs
    mod = importlib.import_module(BENCHES[args.name])
    params = param_values(args.param)
    check_kwargs(mod.run, params, f"bench {args.name}")
    result = mod.run(**params)
    print(json.dumps(result, indent=None if args.json else 2))
    return 0
