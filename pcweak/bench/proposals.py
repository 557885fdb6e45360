"""``pcweak bench proposals``: what class-agnostic 3D proposals add to the walk, and the trust in
them chosen leave-one-scene-out.

Scenes: the real ScanNet scans of ../shared/data as bare points (their mesh segments and
normals dropped, as a scan without mesh gets them) and ``n_synthetic`` bare synthetic rooms
(seeds 100, 101, ...). Per scene and draw: ``count`` random labelled points; propagation alone,
then with proposals simulated from the scene's instances (``weak.proposals``, drawn with the
draw's seed) at each noise level of ``NOISE`` and each (link, cut) of ``grid``
(``GroupingConfig``). Each figure is the mean over the draws, per scene, with the mean and the
range over the scenes. With more than one grid point, ``leave_one_scene_out`` picks for every
scene a grid point on the other scenes alone (the best mean gain over the noise levels among
the points that lose nothing at any level) and reports that choice's gains on the scene left
out: what the default would give on a scan it was not chosen on. ``per_scene_ceiling``: the
ceiling of the walk alone on its cells (``oracles.seeded_class_oracle``), measured on the first
draw.
"""
from __future__ import annotations

import sys
import warnings
from dataclasses import replace
from typing import Any

import numpy as np

from . import machine, shared_root
from ..params import Count, Count0, ranges_checked

# (merge, split, drop) chances: perfect proposals, the simulator's defaults (a middling 3D
# segmenter: one object in five merged or split, one in ten missed) and a poor segmenter
NOISE = {"clean": (0.0, 0.0, 0.0), "noisy": (0.2, 0.2, 0.1), "poor": (0.4, 0.4, 0.2)}


def _walk(s: Any, w: Any, groups: np.ndarray | None, link_cut: tuple[float, float] | None) -> Any:
    from ..pseudo.registry import propagate_scene
    cfg = None if link_cut is None else {"grouping.link": link_cut[0], "grouping.cut": link_cut[1]}
    return propagate_scene(s, w, cfg, groups=groups)


def _spread(per_scene: dict[str, float]) -> dict[str, Any]:
    v = np.array(list(per_scene.values()))
    return {"per_scene": {k: round(x, 4) for k, x in per_scene.items()}, "mean": round(float(v.mean()), 4),
            "min": round(float(v.min()), 4), "max": round(float(v.max()), 4)}


def _key(level: str, link_cut: tuple[float, float]) -> str:
    return f"{level} link={link_cut[0]:g} cut={link_cut[1]:g}"


def leave_one_scene_out(gain: dict[tuple[float, float], dict[str, dict[str, float]]]) -> dict[str, Any]:
    """For each scene, the grid point chosen on the other scenes, and its gain on the scene left
    out. ``gain``: grid point -> noise level -> scene -> gain over the walk alone (mean over the
    draws). The choice: among the points whose mean gain over the other scenes is >= 0 at every
    level (proposals of unknown quality must not make the labels worse; issue 21 asks the same of
    2D masks), the one of highest mean gain over the levels (all points where none qualifies);
    ties to the smaller cut, then the smaller link. ``chosen`` counts how often each point was
    picked; ``gain_mean`` / ``gain_min`` over the scenes left out, per level."""
    points = list(gain)
    levels = list(gain[points[0]])
    scenes = sorted(gain[points[0]][levels[0]])
    out: dict[str, Any] = {"per_scene": {}, "chosen": {}}
    for held in scenes:
        rest = [s for s in scenes if s != held]
        on_rest = {g: [float(np.mean([gain[g][lv][s] for s in rest])) for lv in levels] for g in points}
        safe = [g for g in points if min(on_rest[g]) >= 0] or points
        best = max(safe, key=lambda g: (np.mean(on_rest[g]), -g[1], -g[0]))
        out["per_scene"][held] = {"link": best[0], "cut": best[1], **{lv: round(gain[best][lv][held], 4) for lv in levels}}
        name = f"link={best[0]:g} cut={best[1]:g}"
        out["chosen"][name] = out["chosen"].get(name, 0) + 1
    for lv in levels:
        g = [r[lv] for r in out["per_scene"].values()]
        out[f"gain_mean_{lv}"], out[f"gain_min_{lv}"] = round(float(np.mean(g)), 4), round(float(np.min(g)), 4)
    return out


@ranges_checked("bench proposals")
def run(draws: Count = 4, count: Count = 200, n_synthetic: Count0 = 3,
        grid: tuple[tuple[float, float], ...] | None = None,
        levels: tuple[str, ...] = tuple(NOISE), shared: str | None = None) -> dict[str, Any]:
    """The figures of the module docstring; ``grid`` None is the default (link, cut) alone."""
    from .. import weak
    from ..metrics import semantic_report
    from ..pseudo.group_evidence import GroupingConfig
    from ..weak.proposals import proposals
    from .oracles import seeded_class_oracle
    from .propagate import _bare, _scenes
    unknown = [lv for lv in levels if lv not in NOISE]
    if unknown:
        raise ValueError(f"levels: {unknown} are not among {list(NOISE)}")
    default = (GroupingConfig().link, GroupingConfig().cut)
    if grid is not None and (not len(grid) or any(not isinstance(g, (list, tuple)) or len(g) != 2 or
                                                 any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in g)
                                                 for g in grid)):
        raise ValueError(f"grid: expected a list of [link, cut] pairs of numbers, got {grid!r}")
    points = [default] if grid is None else [(float(a), float(b)) for a, b in grid]
    for link, cut in points:
        try:  # in range, before any scene is read
            GroupingConfig(link=link, cut=cut)
        except ValueError as e:
            raise ValueError(f"grid: {e}") from None
    root = shared_root(shared)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = _scenes(root, n_synthetic)
    scenes = [_bare(s) for s in data["scannet"] + data["synthetic"]]
    alone: dict[str, list[float]] = {}
    ceiling: dict[str, float] = {}
    rows: dict[str, dict[str, list[float]]] = {}
    for i, s in enumerate(scenes):
        for d in range(draws):
            print(f"[bench] proposals: {s.name} ({i + 1}/{len(scenes)}), draw {d + 1}/{draws}: "
                  f"{1 + len(levels) * len(points)} walks ...", file=sys.stderr, flush=True)
            w = replace(weak.points(s, count=count, seed=d), point_instance=None)
            p = _walk(s, w, None, None)
            alone.setdefault(s.name, []).append(semantic_report(s.semantic, p.semantic, s.classes)["miou"])
            if d == 0:
                oracle = seeded_class_oracle(s, p.extras["superpoint"], w.point_semantic)
                ceiling[s.name] = semantic_report(s.semantic, oracle, s.classes)["miou"]
            for level in levels:
                g = proposals(s, seed=d, merge_prob=NOISE[level][0], split_prob=NOISE[level][1], drop_prob=NOISE[level][2])
                for lc in points:
                    q = _walk(s, w, g, lc)
                    rows.setdefault(_key(level, lc), {}).setdefault(s.name, []).append(
                        semantic_report(s.semantic, q.semantic, s.classes)["miou"])
    mean_alone = {k: float(np.mean(v)) for k, v in alone.items()}
    res: dict[str, Any] = {"bench": "proposals", "machine": machine(), "data": str(root) if root else None,
                           "draws": draws, "count": count, "noise": {lv: NOISE[lv] for lv in levels},
                           "default": {"link": default[0], "cut": default[1]}, "alone": _spread(mean_alone),
                           "per_scene_ceiling": {k: round(v, 4) for k, v in ceiling.items()}, "with_proposals": {}}
    for key, per in rows.items():
        m = {k: float(np.mean(v)) for k, v in per.items()}
        res["with_proposals"][key] = {**_spread(m), "gain": _spread({k: m[k] - mean_alone[k] for k in m})}
    if len(points) > 1 and len(scenes) > 1:
        gain = {lc: {lv: {s.name: float(np.mean(rows[_key(lv, lc)][s.name])) - mean_alone[s.name] for s in scenes}
                     for lv in levels} for lc in points}
        res["leave_one_scene_out"] = leave_one_scene_out(gain)
    return res
