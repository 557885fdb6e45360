"""``pcweak bench train``: training throughput of SpUNet-14 on this CPU (forward + backward +
optimiser step), points per second at ~100k points per step, and peak memory (RSS)."""
from __future__ import annotations

import resource
import time
from typing import Any

import numpy as np
import torch

from . import machine
from ..params import Count, Count0, Seed, ranges_checked


@ranges_checked("bench train")
def run(points: Count = 100_000, voxel_size: float = 0.02, layers: str = "spunet14", steps: Count = 5, warmup: Count0 = 1,
        seed: Seed = 0) -> dict[str, Any]:
    from ..data.synthetic_indoor import synthetic_room
    from ..train.transforms import features, voxelize_sample
    from ..models.sparse_unet import SpUNet
    room = synthetic_room(seed, density=900.0 * points / 70_000, n_frames=0)
    idx = np.random.default_rng(seed).permutation(room.num_points)[:points]
    s = {"coord": room.coord[idx], "color": room.color[idx], "normal": room.normal[idx]}
    vox = voxelize_sample(s["coord"], features(s, ("color", "normal")), voxel_size)
    lab = torch.from_numpy(room.semantic[idx])
    from ..ops import scatter
    vlab = scatter(lab.float(), vox["inverse"], len(vox["grid_coord"]), "max")[0].long()
    model = SpUNet(6, 20, layers=layers)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch = torch.zeros(len(vox["grid_coord"]), dtype=torch.long)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for i in range(warmup + steps):
        t = time.perf_counter()
        opt.zero_grad()
        out = model(vox["feat"], vox["grid_coord"], batch, 1)
        loss = torch.nn.functional.cross_entropy(out, vlab)
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t)
    step = float(np.median(times))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"bench": "train", "machine": machine(), "model": layers, "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
            "points": len(idx), "voxels": int(len(vox["grid_coord"])), "voxel_size": voxel_size, "steps": steps,
            "seconds_per_step": round(step, 3), "points_per_second": round(len(idx) / step),
            "voxels_per_second": round(len(vox["grid_coord"]) / step), "peak_rss_gb": round(peak / 2**20, 3),
            "rss_before_training_gb": round(rss0 / 2**20, 3)}
