import numpy as np
import pytest

from pcweak import SceneError
from pcweak.segment.descriptors import fpfh_features


def _corner(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Points on a floor (z=0) and a wall (x=0), 1 m each, with their normals."""
    r = np.random.default_rng(seed)
    a = r.uniform(0, 1, (n, 2))
    floor = np.c_[a[:, 0], a[:, 1], np.zeros(n)]
    wall = np.c_[np.zeros(n), a[:, 1], a[:, 0]]
    p = np.concatenate([floor, wall])
    nrm = np.concatenate([np.tile([0, 0, 1.0], (n, 1)), np.tile([1.0, 0, 0], (n, 1))])
    return p, nrm


@pytest.mark.parametrize("voxel", [None, 0.03])
def test_fpfh_tells_the_crease_from_the_planes(voxel):
    p, n = _corner()
    F = fpfh_features(p, n, radius=0.1, voxel=voxel)
    assert F.shape == (len(p), 33) and F.dtype == np.float32
    assert np.allclose(F.sum(1), 1.0, atol=1e-4)
    # away from the crease every point sees a flat neighbourhood: the same histogram on both
    # planes; within 3 cm of the crease the histogram is different
    far = (p[:, 0] > 0.3) | (p[:, 2] > 0.3)
    far &= (p[:, 1] > 0.15) & (p[:, 1] < 0.85) & (p[:, 0] < 0.85) & (p[:, 2] < 0.85)
    near = (p[:, 0] < 0.03) & (p[:, 2] < 0.03) & (p[:, 1] > 0.15) & (p[:, 1] < 0.85)
    flat = F[far].mean(0)
    d_far = np.linalg.norm(F[far] - flat, axis=1)
    d_near = np.linalg.norm(F[near] - flat, axis=1)
    assert np.median(d_near) > 3 * np.median(d_far)


def test_fpfh_estimates_normals_and_checks_shapes():
    p, n = _corner(800)
    assert fpfh_features(p).shape == (len(p), 33)
    with pytest.raises(SceneError, match="normal has shape"):
        fpfh_features(p, n[:10])
    with pytest.raises(SceneError, match="non-empty"):
        fpfh_features(np.zeros((0, 3)))


@pytest.mark.parametrize("width", [1, 3, 7, 8, 9, 33])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, bool])
def test_segment_sums_are_the_same_bits_on_either_path(width, dtype, monkeypatch):
    """Per-node sums (the walk's node features: FPFH's 33 columns, the normal tensor's 9) give
    the same bits by a bincount per column and by one sparse product, so the width that picks
    the faster path can never change a label."""
    import importlib
    sp_mod = importlib.import_module("pcweak.segment.superpoints")
    r = np.random.default_rng(width)
    n_nodes = 300
    node = r.integers(0, n_nodes - 5, 20_000)  # the last five nodes hold no point
    values = r.standard_normal((len(node), width)) * 10.0 ** r.integers(-6, 6, (1, width))
    values = values.astype(dtype) if dtype is not bool else values > 0
    expect = np.stack([np.bincount(node, weights=np.asarray(values[:, d], np.float64), minlength=n_nodes)
                       for d in range(width)], 1)
    for path_width in (1, 8, 10 ** 6):  # every width on the sparse path (widened 1 or 8 columns at a time), then on bincounts
        monkeypatch.setattr(sp_mod, "SPARSE_SUM_WIDTH", path_width)
        got = sp_mod.segment_sum(node, n_nodes, values)
        assert got.dtype == np.float64 and got.shape == (n_nodes, width)
        assert np.array_equal(got, expect)
        mean = sp_mod.segment_mean(node, n_nodes, values)
        assert not mean[-5:].any() and np.array_equal(mean[:-5], expect[:-5] / np.bincount(node, minlength=n_nodes)[:-5, None])
    assert sp_mod.segment_sum(node, n_nodes, np.zeros((len(node), 0))).shape == (n_nodes, 0)
