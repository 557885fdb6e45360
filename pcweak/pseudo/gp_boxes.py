"""Box-supervised instance pseudo-labels with Gaussian-process classifiers (after GaPro).

1. Superpoints (the scene's own, else fine Felzenszwalb-Huttenlocher) are assigned to the boxes
   that contain (nearly) all of their points (``inside_fraction``; boxes may be oriented). Wall
   and floor surface inside a box (``structure.structure_in_boxes``, decided per superpoint)
   belongs to no box and does not count towards the share.
2. In exactly one box -> that box, confidence 1. In none -> no instance; its semantic label is
   the room surface geometry says it is (``structure.surface_classes``: floor, wall, ceiling or
   KITTI's background, -1 where none fits), as are the wall and floor slabs inside boxes —
   boxes are drawn around objects only, and a semantic model trained on them must still learn
   the surfaces. ``stuff=False`` leaves them -1; ``background_label`` gives them all one class.
   Nested boxes: the shared region goes to the inner box.
3. Every other overlapping pair gets a variational GP classifier (gpytorch ``ApproximateGP``,
   RBF kernel with learned lengthscales, Bernoulli likelihood) trained on the superpoints that
   belong to only one of the two boxes (those nearest to the shared region) — features: mean
   position (pair-normalised), colour and |normal| (estimated when the scene has none) — and
   predicting the shared superpoints:
   p = Phi(mu / sqrt(1 + var)), confidence max(p, 1 - p); mu and var are kept per point
   (``gp_mean``, ``gp_var``; NaN where no GP decided). Each GP's prior mean leans towards the
   smaller box (``volume_prior``), so the baseline's rule decides only where the data are silent,
   and a decision less sure than ``min_confidence`` goes to the smaller box as well: on bare
   real scans the GP's unsure overrides of the prior are wrong more often than right.
   All pairs of a scene are fitted together in gpytorch batch mode; ``gp_box_labels_many``
   labels several scenes in parallel processes.
4. Whatever remains (superpoints in three or more non-nested boxes, and the GP's unsure
   decisions) goes to the smallest box, which is also the baseline method ``smallest_box_labels``.
"""
from __future__ import annotations

import json
import time
from typing import Any, Sequence

import numpy as np
import torch
from scipy.spatial import cKDTree
from scipy.special import ndtr

from ..errors import SceneError
from ..params import Seed
from ..geometry import box_corners, points_in_boxes
from ..scene import PseudoLabels, Scene, to_numpy
from ..segment.structure import surface_classes
from ..segment.superpoints import REFERENCE_SPACING, min_size_at, point_spacing, scene_superpoints, segment_mean, segment_sum


# The boxes give each object's extent; superpoints only need to be pure, so they are finer than
# propagation's (docs/results.md has the measurement); min_size in points at REFERENCE_SPACING.
FINE_SUPERPOINTS = {"c": 0.005, "min_size": 10}


def fine_superpoint_params(coord: np.ndarray) -> dict[str, Any]:
    """``FINE_SUPERPOINTS`` for the (N,3) cloud ``coord``: on a cloud sparser than
    ``REFERENCE_SPACING`` its ``min_size`` shrinks to keep the same smallest area
    (``min_size_at``)."""
    return {**FINE_SUPERPOINTS, "min_size": min_size_at(FINE_SUPERPOINTS["min_size"], point_spacing(coord), REFERENCE_SPACING)}


def _check_boxes(scene: Scene, boxes: Any, box_labels: Any) -> tuple[np.ndarray, np.ndarray]:
    b = to_numpy(boxes).astype(np.float64)
    if b.size == 0:
        b = b.reshape(0, 7)
    if b.ndim != 2 or b.shape[1] != 7:
        raise SceneError(f"gp_box_labels: boxes must be an (M,7) array [cx,cy,cz,dx,dy,dz,yaw], got shape {b.shape}")
    lab = to_numpy(box_labels).astype(np.int64).reshape(-1)
    if len(b) != len(lab):
        raise SceneError(f"gp_box_labels: {len(b)} boxes but {len(lab)} box labels")
    bad = ~np.isfinite(b).all(1) | (b[:, 3:6] <= 0).any(1)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise SceneError(f"gp_box_labels: box {first} {b[first].round(3).tolist()}: boxes must be finite with positive "
                         f"sizes ({int(bad.sum())} of {len(b)} are not)")
    if scene.classes and len(lab) and (lab.max() >= len(scene.classes) or lab.min() < -1):
        raise SceneError(f"gp_box_labels: box labels must lie in [-1, {len(scene.classes)})")
    return b, lab


def structure_points(scene: Scene, boxes: np.ndarray, margin: float = 0.02, **params: Any) -> np.ndarray:
    """(N,) bool: wall and floor points inside the boxes (``structure.structure_in_boxes``;
    normals estimated when the scene has none)."""
    from ..segment.structure import structure_in_boxes
    from ..segment.superpoints import estimate_normals
    normal = scene.normal if scene.normal is not None else estimate_normals(scene.coord)
    return structure_in_boxes(scene.coord, normal, boxes, margin=margin, **params)


def box_membership(scene: Scene, boxes: np.ndarray, node: np.ndarray, inside_fraction: float = 0.9,
                   margin: float = 0.02, structural: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Superpoint-in-box test.

    Args: node (N,) superpoint id per point; structural (N,) bool wall/floor points, which
    belong to no box.
    Returns: member (S,M) bool — superpoint s lies in box m when at least ``inside_fraction`` of
    its non-structural points do; one with none lies in no box — and eligible (N,M) bool, the
    points each box may take (inside it and not structural)."""
    n_nodes = int(node.max()) + 1
    inside = points_in_boxes(scene.coord, boxes, margin=margin)
    struct = np.zeros(len(node), bool) if structural is None else np.asarray(structural, bool)
    eligible = inside & ~struct[:, None]
    plain = np.bincount(node, weights=~struct, minlength=n_nodes)
    frac = segment_sum(node, n_nodes, eligible)
    frac /= np.maximum(plain, 1)[:, None]
    return (frac >= inside_fraction - 1e-9) & (plain > 0)[:, None], eligible


def nested(boxes: np.ndarray, margin: float = 0.02) -> np.ndarray:
    """(M,M) bool: box i lies inside box j (all corners, with ``margin``), i != j."""
    M = len(boxes)
    out = np.zeros((M, M), bool)
    if M == 0:
        return out
    corners = box_corners(boxes)
    for i in range(M):
        out[i] = points_in_boxes(corners[i], boxes, margin=margin).all(0)
    np.fill_diagonal(out, False)
    return out


def _volumes(boxes: np.ndarray) -> np.ndarray:
    return boxes[:, 3] * boxes[:, 4] * boxes[:, 5]


def _node_features(scene: Scene, node: np.ndarray) -> np.ndarray:
    """(S,D) float64: mean xyz, mean rgb (if any), mean |normal| (if any; ``gp_box_labels``
    estimates them) per superpoint."""
    cols = [scene.coord.astype(np.float64)]
    if scene.color is not None:
        cols.append(scene.color.astype(np.float64))
    if scene.normal is not None:
        cols.append(np.abs(scene.normal.astype(np.float64)))
    return segment_mean(node, int(node.max()) + 1, np.concatenate(cols, 1))


# Gauss-Hermite nodes for the ELBO's expected log-likelihood: log Phi is smooth, and 10 nodes
# agree with gpytorch's 20 to < 1e-3 nats per point (tested) at half the cost.
QUADRATURE_NODES = 10


class _PairGP:
    """Builds a (batched) variational GP classifier and its likelihood; gpytorch is imported
    lazily."""

    @staticmethod
    def make(inducing: torch.Tensor):
        import gpytorch

        class Model(gpytorch.models.ApproximateGP):
            def __init__(self, z: torch.Tensor) -> None:
                batch = z.shape[:-2]
                dist = gpytorch.variational.CholeskyVariationalDistribution(z.shape[-2], batch_shape=batch)
                strat = gpytorch.variational.VariationalStrategy(self, z, dist, learn_inducing_locations=True)
                super().__init__(strat)
                self.mean_module = gpytorch.means.ConstantMean(batch_shape=batch)
                self.covar_module = gpytorch.kernels.ScaleKernel(
                    gpytorch.kernels.RBFKernel(batch_shape=batch, ard_num_dims=z.shape[-1]), batch_shape=batch)

            def forward(self, x):
                return gpytorch.distributions.MultivariateNormal(self.mean_module(x), self.covar_module(x))
        return Model(inducing)

    @staticmethod
    def likelihood(nodes: int = QUADRATURE_NODES):
        """gpytorch's Bernoulli (probit) likelihood, whose ELBO term E_q[log Phi((2y-1) f)] uses
        ``torch.special.log_ndtr`` (one fused op; gpytorch's masked log_normal_cdf was a quarter
        of a batched fit's time) on ``nodes`` Gauss-Hermite nodes."""
        import gpytorch

        class Probit(gpytorch.likelihoods.BernoulliLikelihood):
            def __init__(self) -> None:
                super().__init__()
                self.quadrature = gpytorch.utils.quadrature.GaussHermiteQuadrature1D(num_locs=nodes)

            def expected_log_prob(self, observations: torch.Tensor, function_dist, *args: Any, **kwargs: Any) -> torch.Tensor:
                sign = observations.mul(2).sub(1)  # {0,1} -> {-1,1}
                return self.quadrature(lambda f: torch.special.log_ndtr(f.mul(sign)), function_dist)
        return Probit()


def fit_predict_pairs(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, iterations: int = 120,
                      n_inducing: int = 24, lr: float = 0.05, seed: int = 0,
                      prior_mean: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit P GP classifiers at once (gpytorch batch mode) and predict.

    Args: train_x (P,n,D), train_y (P,n) in {0,1}, test_x (P,T,D); float32; prior_mean (P,)
    fixed prior mean of each latent function (None: a learned constant).
    Returns: latent mean and variance at the test inputs, (P,T) each."""
    import gpytorch
    torch.manual_seed(seed)
    P, n, D = train_x.shape
    m = min(n_inducing, n)
    z = train_x[:, torch.linspace(0, n - 1, m).long(), :].clone()
    model = _PairGP.make(z)
    if prior_mean is not None:
        model.mean_module.constant = prior_mean.reshape(P).to(train_x.dtype)
        model.mean_module.raw_constant.requires_grad_(False)
    lik = _PairGP.likelihood()
    model.train()
    lik.train()
    opt = torch.optim.Adam([q for q in list(model.parameters()) + list(lik.parameters()) if q.requires_grad], lr=lr)
    mll = gpytorch.mlls.VariationalELBO(lik, model, num_data=n)
    for _ in range(iterations):
        opt.zero_grad()
        loss = -mll(model(train_x), train_y).sum()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad(), gpytorch.settings.fast_pred_var():
        f = model(test_x)
        return f.mean, f.variance


def _pair_data(X: np.ndarray, own: dict[int, np.ndarray], shared: dict[tuple[int, int], np.ndarray],
               pairs: list[tuple[int, int]], boxes: np.ndarray, n_per_class: int, rng: np.random.Generator):
    """Balanced, fixed-size training sets per pair (each box's superpoints nearest to the shared
    region) and padded tests."""
    D = X.shape[1]
    T = max(len(shared[p]) for p in pairs)
    tx = np.zeros((len(pairs), 2 * n_per_class, D))
    ty = np.zeros((len(pairs), 2 * n_per_class))
    qx = np.zeros((len(pairs), T, D))
    for i, (a, b) in enumerate(pairs):
        centre = (boxes[a, :3] + boxes[b, :3]) / 2
        scale = max(float(np.linalg.norm(np.maximum(boxes[a, 3:6], boxes[b, 3:6]))), 1e-3)

        def norm(F: np.ndarray) -> np.ndarray:
            F = F.copy()
            F[:, :3] = (F[:, :3] - centre) / scale
            return F
        tree = cKDTree(X[shared[(a, b)], :3])

        def nearest_own(o: np.ndarray) -> np.ndarray:
            """The n_per_class superpoints of ``o`` nearest to the shared region (the decision
            is local), resampled with replacement when there are fewer."""
            if len(o) <= n_per_class:
                return rng.choice(o, n_per_class, replace=True)
            d, _ = tree.query(X[o, :3])
            return o[np.argsort(d, kind="stable")[:n_per_class]]
        sa, sb = nearest_own(own[a]), nearest_own(own[b])
        tx[i] = norm(X[np.concatenate([sa, sb])])
        ty[i, :n_per_class] = 1.0
        q = shared[(a, b)]
        qx[i, :len(q)] = norm(X[q])
    f = lambda a: torch.from_numpy(a).float()  # noqa: E731
    return f(tx), f(ty), f(qx)


def gp_box_labels(scene: Scene, boxes: Any, box_labels: Any, *, inside_fraction: float = 0.9, margin: float = 0.02,
                  background_label: int | None = None, batched: bool = True, iterations: int = 200, n_per_class: int = 48,
                  n_inducing: int = 24, seed: Seed = 0, use_gp: bool = True,
                  superpoint_params: dict[str, Any] | None = None, lr: float = 0.1,
                  structure: bool | Any = True, volume_prior: float = 1.0, min_confidence: float = 0.8,
                  stuff: bool = True) -> PseudoLabels:
    """Instance and semantic pseudo-labels from 3D boxes (see the module docstring).

    Args:
        scene: the cloud (its ``segment`` is used as superpoints when present).
        boxes: (M,7) ``[cx,cy,cz,dx,dy,dz,yaw]``; box_labels: (M,) class ids.
        inside_fraction: share of a superpoint's points that must lie in a box.
        margin: metres by which boxes are inflated for the inside test.
        background_label: one class for every point no box takes (default: ``stuff``'s rule).
        stuff: points outside every box (inflated by ``margin``) and structural points inside
            them take their surface class (``structure.surface_classes``), confidence 1; False
            leaves them -1. Points inside a box that no box takes stay -1 either way.
        batched: fit all pairs in one batched GP (False: one pair at a time, for comparison).
        use_gp: False gives the smallest-box baseline.
        n_per_class: training superpoints per box of a pair, those nearest to the shared region;
            n_inducing: inducing points per GP.
        volume_prior: beta of each pair GP's prior mean beta * log(V_other / V_box), fixed: where
            the superpoint features say little, the smaller box is favoured as in the baseline,
            and evidence overrides it; 0 = a learned constant.
        min_confidence: a pair's superpoint whose GP decision is less sure than this,
            max(p, 1 - p), goes to the smaller box of the pair as in the baseline, confidence 0.5
            (0.5: the GP always decides; docs/results.md has the measurement).
        superpoint_params: ``felzenszwalb`` parameters when the scene has no segmentation
            (default ``fine_superpoint_params``: ``FINE_SUPERPOINTS`` at the cloud's spacing).
        structure: True finds the wall and floor surface inside boxes (``structure_points``) and
            keeps it out of them; False keeps every point in a box; or an (N,) bool mask.
    Returns:
        PseudoLabels (instance = box index) with ``extras`` ``gp_mean``/``gp_var`` per point.
    """
    b, lab = _check_boxes(scene, boxes, box_labels)
    if scene.normal is None:  # estimated once, for the superpoints, the structure test and the GP features
        from dataclasses import replace
        from ..segment.superpoints import estimate_normals
        scene = replace(scene, normal=estimate_normals(scene.coord))
    if superpoint_params is None:
        superpoint_params = FINE_SUPERPOINTS if scene.segment is not None else fine_superpoint_params(scene.coord)
    node = scene_superpoints(scene, **superpoint_params)
    _, node = np.unique(node, return_inverse=True)
    node = node.ravel()
    n_nodes = int(node.max()) + 1
    M = len(b)
    inst = np.full(n_nodes, -1, np.int64)
    conf = np.zeros(n_nodes)
    gmean = np.full(n_nodes, np.nan)
    gvar = np.full(n_nodes, np.nan)
    stats = {"boxes": M, "superpoints": n_nodes, "pairs": 0, "gp_superpoints": 0, "gp_unsure_superpoints": 0,
             "smallest_box_superpoints": 0}
    timing: dict[str, float] = {}
    if M:
        if structure is True:
            # decided per superpoint (majority), so a pure object superpoint never loses points
            share = np.bincount(node, weights=structure_points(scene, b, margin), minlength=n_nodes)
            struct = (share / np.maximum(np.bincount(node, minlength=n_nodes), 1) > 0.5)[node]
        elif structure is False or structure is None:
            struct = np.zeros(scene.num_points, bool)
        else:
            struct = np.asarray(structure, bool).reshape(-1)
            if len(struct) != scene.num_points:
                raise SceneError(f"gp_box_labels: structure mask has {len(struct)} entries for {scene.num_points} points")
        member, eligible = box_membership(scene, b, node, inside_fraction, margin, struct)
        stats["structure_points"] = int(struct.sum())
        vol = _volumes(b)
        nest = nested(b, margin)
        k = member.sum(1)
        one = k == 1
        inst[one] = member[one].argmax(1)
        conf[one] = 1.0
        # nested boxes: drop every box that contains another box of the same superpoint's set
        amb = np.flatnonzero(k > 1)
        sets: dict[int, list[int]] = {}
        for s in amb:
            cand = list(np.flatnonzero(member[s]))
            # strictly nested only: two (near-)identical boxes contain each other and both stay
            cand = [i for i in cand if not any(nest[j, i] and not nest[i, j] for j in cand if j != i)]
            if len(cand) == 1:
                inst[s], conf[s] = cand[0], 1.0
            else:
                sets[s] = cand
        pairs_nodes: dict[tuple[int, int], list[int]] = {}
        rest = []
        for s, cand in sets.items():
            if len(cand) == 2 and use_gp:
                pairs_nodes.setdefault((min(cand), max(cand)), []).append(s)
            else:
                rest.append(s)
        own = {i: np.flatnonzero(member[:, i] & one) for i in range(M)}
        pairs = [p for p in sorted(pairs_nodes) if len(own[p[0]]) and len(own[p[1]])]
        rest += [s for p in pairs_nodes if p not in pairs for s in pairs_nodes[p]]
        if pairs:
            X = _node_features(scene, node)
            shared = {p: np.array(pairs_nodes[p]) for p in pairs}
            rng = np.random.default_rng(seed)
            tx, ty, qx = _pair_data(X, own, shared, pairs, b, n_per_class, rng)
            pm = None
            if volume_prior:  # the latent is positive for the first box of a pair
                pm = torch.tensor([volume_prior * np.log(vol[c] / vol[a]) for a, c in pairs], dtype=torch.float32)
            t_fit = time.perf_counter()
            if batched:
                mu, var = fit_predict_pairs(tx, ty, qx, iterations, n_inducing, lr=lr, seed=seed, prior_mean=pm)
            else:
                outs = [fit_predict_pairs(tx[i:i + 1], ty[i:i + 1], qx[i:i + 1], iterations, n_inducing, lr=lr, seed=seed,
                                          prior_mean=None if pm is None else pm[i:i + 1])
                        for i in range(len(pairs))]
                mu, var = torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])
            timing["gp_fit_seconds"] = round(time.perf_counter() - t_fit, 3)
            mu, var = mu.double().numpy(), var.double().numpy()
            for i, (a, c) in enumerate(pairs):
                q = shared[(a, c)]
                m_, v_ = mu[i, :len(q)], var[i, :len(q)]
                p = ndtr(m_ / np.sqrt(1 + v_))  # Phi(mu / sqrt(1 + var))
                sure = np.maximum(p, 1 - p) >= min_confidence
                inst[q[sure]] = np.where(p[sure] >= 0.5, a, c)
                conf[q[sure]] = np.maximum(p, 1 - p)[sure]
                rest += q[~sure].tolist()  # the smallest-box rule below decides the unsure ones
                stats["gp_unsure_superpoints"] += int((~sure).sum())
                gmean[q], gvar[q] = m_, v_
            stats["pairs"] = len(pairs)
            stats["gp_superpoints"] = int(sum(len(v) for v in shared.values()))
        for s in rest:
            cand = sets[s]
            inst[s] = cand[int(np.argmin(vol[cand]))]
            conf[s] = 1.0 / len(cand)
        stats["smallest_box_superpoints"] = len(rest)
    inst_pt = inst[node]
    if M:  # a box takes only its eligible points: structural ones and those outside it go to no box
        ok = eligible[np.arange(len(node)), np.maximum(inst_pt, 0)]
        inst_pt = np.where(ok, inst_pt, -1)
    if background_label is not None:
        bg = np.full(len(node), background_label, np.int64)
    elif stuff:
        free = ~eligible.any(1) if M else np.ones(len(node), bool)  # outside every box, or structural
        bg = np.where(free, surface_classes(scene.coord, scene.normal, scene.classes), -1)
    else:
        bg = np.full(len(node), -1, np.int64)
    sem_pt = np.where(inst_pt >= 0, lab[np.maximum(inst_pt, 0)] if M else -1, bg)
    stats["surface_points"] = int(((inst_pt < 0) & (bg >= 0)).sum())
    conf_pt = np.where(inst_pt >= 0, conf[node], (bg >= 0).astype(np.float64))
    gmean, gvar = np.where(inst_pt >= 0, gmean[node], np.nan), np.where(inst_pt >= 0, gvar[node], np.nan)
    params = dict(inside_fraction=inside_fraction, margin=margin, background_label=background_label, batched=batched,
                  iterations=iterations, n_per_class=n_per_class, n_inducing=n_inducing, seed=seed, use_gp=use_gp,
                  superpoint_params=superpoint_params, lr=lr, volume_prior=volume_prior,
                  min_confidence=min_confidence, stuff=stuff,
                  structure=structure if isinstance(structure, bool) else "mask")
    return PseudoLabels(semantic=sem_pt, instance=inst_pt, confidence=conf_pt.astype(np.float32),
                        method="gp-boxes" if use_gp else "smallest-box", params=json.dumps(params, sort_keys=True),
                        stats=json.dumps(stats, sort_keys=True),
                        classes=scene.classes, box=b.astype(np.float32), box_semantic=lab,
                        box_confidence=np.ones(M, np.float32),
                        extras={"gp_mean": gmean.astype(np.float32), "gp_var": gvar.astype(np.float32)}, timing=timing)


def smallest_box_labels(scene: Scene, boxes: Any, box_labels: Any, **params: Any) -> PseudoLabels:
    """Baseline: a superpoint in several boxes goes to the smallest one (nested rule included)."""
    params.pop("use_gp", None)
    return gp_box_labels(scene, boxes, box_labels, use_gp=False, **params)


def _one(args: tuple[Scene, np.ndarray, np.ndarray, dict]) -> PseudoLabels:
    scene, b, l, kw = args
    return gp_box_labels(scene, b, l, **kw)


def gp_box_labels_many(items: Sequence[tuple[Scene, Any, Any]], workers: int = 2, **params: Any) -> list[PseudoLabels]:
    """Label several ``(scene, boxes, box_labels)`` in parallel processes (``parallel.process_map``:
    the CPU threads are shared among the workers); results in the order of ``items``."""
    from ..parallel import process_map
    jobs = [(s, np.asarray(b), np.asarray(l), params) for s, b, l in items]
    out: list[Any] = [None] * len(jobs)
    for i, p in process_map(_one, jobs, workers):
        out[i] = p
    return out
