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
