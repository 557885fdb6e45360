"""``pcweak bench ops``: the compiled ops against scipy's cKDTree, torch_scatter, native torch
and the pure-torch reference, on the same ScanNet-like inputs in the same run; and numpy's
reduction of the cloud along axis 0 against ``geometry.column_bounds``.

Inputs: a synthetic room surface-sampled to ~1M points (ScanNet-like density), 250k queries
(support points with 1 cm jitter), radius 0.1 m, k = 32; scatter of 1M x 32 float32 into 50k
groups. Ratios are other/pcweak times (> 1 means pcweak is faster). ``device="cuda"`` runs
pcweak's ops, the torch reference, native torch and torch_scatter on the GPU (timed with
synchronisation); cKDTree stays on the CPU.
"""
from __future__ import annotations

import importlib.util
import time
from typing import Any

import numpy as np
import torch

from . import best_of, machine
from ..geometry import column_bounds
from ..params import Count, Seed, ranges_checked


@ranges_checked("bench ops")
def run(n_support: Count = 1_000_000, n_query: Count = 250_000, radius: float = 0.1, k: Count = 32,
        scatter_rows: Count = 1_000_000, scatter_channels: Count = 32, scatter_groups: Count = 50_000,
        repeat: Count = 3, seed: Seed = 0, device: str = "cpu") -> dict[str, Any]:
    from scipy.spatial import cKDTree

    from .. import ops
    from ..data.synthetic_indoor import synthetic_room
    from ..ops import extension, reference

    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--param device=cuda: torch sees no CUDA device on this machine")

    def timed(fn, times):  # best_of, waiting for the device to finish each run
        def run_once():
            out = fn()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            return out
        return best_of(run_once, times)
    res: dict[str, Any] = {"bench": "ops", "machine": machine(), "backend": extension.backend(), "device": str(dev)}
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    room = synthetic_room(seed, density=14000.0 * n_support / 1_150_000, n_frames=0)
    pts = room.coord[rng.permutation(room.num_points)[:n_support]]
    qry = (pts[rng.choice(len(pts), n_query, replace=False)] + rng.normal(0, 0.01, (n_query, 3))).astype(np.float32)
    S, Q = torch.from_numpy(np.ascontiguousarray(pts)).to(dev), torch.from_numpy(qry).to(dev)
    res["inputs"] = {"support": len(S), "query": len(Q), "radius": radius, "k": k, "make_s": round(time.perf_counter() - t0, 2)}

    # -- ball query / knn: pcweak (grid built inside the call) vs cKDTree (build + query)
    t_bq, bq = timed(lambda: ops.ball_query(S, Q, radius, k), repeat)
    t_knn, kn = timed(lambda: ops.knn(S, Q, k), repeat)

    def kd_ball():
        tree = cKDTree(pts)
        return tree.query(qry, k=k, distance_upper_bound=radius, workers=-1)

    def kd_knn():
        tree = cKDTree(pts)
        return tree.query(qry, k=k, workers=-1)
    t_kd_bq, (kd_d, kd_i) = best_of(kd_ball, repeat)
    t_kd_knn, _ = best_of(kd_knn, repeat)
    t_build, _ = best_of(lambda: cKDTree(pts), repeat)
    # same neighbour sets as cKDTree (its padding index is len(pts))
    kd_i = np.where(kd_i >= len(pts), -1, kd_i)
    agree = float((np.sort(kd_i, 1) == np.sort(bq.idx.cpu().numpy(), 1)).all(1).mean())
    # the torch reference is brute force: time it on a slice of the queries and scale
    nref = 256  # brute force over 1M points: 32 queries at a time stay under 0.5 GB
    off_s, off_q = torch.tensor([len(S)], device=dev), torch.tensor([nref], device=dev)
    t_ref, _ = timed(lambda: reference.neighbours(S, Q[:nref], off_s, off_q, k, radius, chunk=32), 1)
    t_ref_full = t_ref * len(Q) / nref
    res["ball_query"] = {"pcweak_s": round(t_bq, 4), "ckdtree_s": round(t_kd_bq, 4), "ckdtree_build_s": round(t_build, 4),
                         "reference_s_extrapolated": round(t_ref_full, 2), "reference_measured_queries": nref,
                         "pcweak_queries_per_s": round(len(Q) / t_bq), "same_sets_as_ckdtree": agree,
                         "mean_neighbours": round(float((bq.idx >= 0).sum(1).float().mean()), 2)}
    res["knn"] = {"pcweak_s": round(t_knn, 4), "ckdtree_s": round(t_kd_knn, 4), "pcweak_queries_per_s": round(len(Q) / t_knn)}
    res["ball_query_vs_ckdtree"] = round(t_kd_bq / t_bq, 2)
    res["knn_vs_ckdtree"] = round(t_kd_knn / t_knn, 2)
    res["ball_query_vs_reference"] = round(t_ref_full / t_bq, 1)
    del kn

    # -- scatter max + argmax, forward + backward
    g = torch.Generator().manual_seed(seed)
    src = torch.randn(scatter_rows, scatter_channels, generator=g).to(dev)
    index = torch.randint(0, scatter_groups, (scatter_rows,), generator=g).to(dev)
    grad = torch.randn(scatter_groups, scatter_channels, generator=g).to(dev)

    def ours():
        x = src.detach().requires_grad_(True)
        out, arg = ops.scatter(x, index, scatter_groups, "max")
        out.backward(grad)
        return arg

    def native():  # amax has no argmax; backward through scatter_reduce's own rule
        x = src.detach().requires_grad_(True)
        out = torch.zeros(scatter_groups, scatter_channels, device=dev).scatter_reduce(0, index[:, None].expand_as(x), x, "amax", include_self=False)
        out.backward(grad)
        return out
    t_ours, arg = timed(ours, repeat)
    t_native, _ = timed(native, repeat)
    res["scatter_max"] = {"pcweak_fwd_bwd_s": round(t_ours, 4), "torch_scatter_reduce_amax_fwd_bwd_s": round(t_native, 4),
                          "shape": [scatter_rows, scatter_channels, scatter_groups]}
    res["scatter_max_vs_native_amax"] = round(t_native / t_ours, 2)
    if importlib.util.find_spec("torch_scatter") is not None:
        import torch_scatter

        def ts():
            x = src.detach().requires_grad_(True)
            out, a = torch_scatter.scatter_max(x, index, dim=0, dim_size=scatter_groups)
            out.backward(grad)
            return a
        t_ts, a_ts = timed(ts, repeat)
        res["scatter_max"]["torch_scatter_fwd_bwd_s"] = round(t_ts, 4)
        res["scatter_max_vs_torch_scatter"] = round(t_ts / t_ours, 2)
    else:
        res["scatter_max_vs_torch_scatter"] = None
        res["scatter_max"]["torch_scatter"] = "not installed (optional; pip install torch-scatter to compare)"

    # -- voxelize 2 cm vs torch.unique
    t_vox, vox = timed(lambda: ops.voxelize(S, 0.02), repeat)
    t_uni, _ = timed(lambda: reference.voxelize(S, 0.02, torch.tensor([len(S)], device=dev)), repeat)
    res["voxelize"] = {"pcweak_s": round(t_vox, 4), "torch_unique_s": round(t_uni, 4), "voxels": int(len(vox.counts))}
    res["voxelize_vs_torch_unique"] = round(t_uni / t_vox, 2)

    # -- a cloud's bounds (numpy, on the CPU): column by column vs ndarray.min(0) / max(0)
    t_cols, (lo, hi) = best_of(lambda: column_bounds(pts), repeat)
    t_axis, (lo_np, hi_np) = best_of(lambda: (pts.min(0), pts.max(0)), repeat)
    res["column_bounds"] = {"pcweak_s": round(t_cols, 5), "numpy_axis0_s": round(t_axis, 5), "points": len(pts),
                            "same": bool(np.array_equal(lo, lo_np) and np.array_equal(hi, hi_np))}
    res["column_bounds_vs_numpy_axis0"] = round(t_axis / t_cols, 2)

    # -- farthest point sampling 100k -> 1024
    sub = S[:100_000]
    t_fps, _ = timed(lambda: ops.fps(sub, 1024), 1)
    res["fps"] = {"pcweak_s": round(t_fps, 4), "points": len(sub), "samples": 1024}
    return res
