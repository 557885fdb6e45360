"""The compiled ops against the torch reference and an independent numpy brute force."""
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pcweak import ops
from pcweak.ops import extension, reference

SETTINGS = dict(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def mod():
    m = extension.compiled()
    if m is None:
        pytest.fail(f"the C++ ops did not build here: {extension._state.get('error')}")
    return m


def brute_numpy(support, query, so, qo, k, radius):
    """Independent brute force: neighbours sorted by (dist2, index)."""
    s = support.numpy()
    q = query.numpy()
    idx = np.full((len(q), k), -1, np.int64)
    d2 = np.full((len(q), k), np.inf, s.dtype)
    bs = [0] + so.tolist()
    bq = [0] + qo.tolist()
    for b in range(len(so)):
        cand = np.arange(bs[b], bs[b + 1])
        for qi in range(bq[b], bq[b + 1]):
            d = s[cand] - q[qi]
            dd = (d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1]) + d[:, 2] * d[:, 2]
            keep = cand if radius is None else cand[dd <= s.dtype.type(radius * radius)]
            dk = dd if radius is None else dd[dd <= s.dtype.type(radius * radius)]
            order = np.lexsort((keep, dk))[:k]
            idx[qi, :len(order)] = keep[order]
            d2[qi, :len(order)] = dk[order]
    return idx, d2


@st.composite
def clouds(draw):
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    n_scenes = draw(st.integers(1, 3))
    s_counts = draw(st.lists(st.integers(0, 60), min_size=n_scenes, max_size=n_scenes))
    q_counts = draw(st.lists(st.integers(0, 25), min_size=n_scenes, max_size=n_scenes))
    grid = draw(st.booleans())  # integer lattice: many exact ties and duplicated points
    far = draw(st.sampled_from([0.0, 1e5]))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)

    def pts(n):
        if grid:
            p = torch.randint(0, 4, (n, 3), generator=g).to(dtype) * 0.5
        else:
            p = torch.rand((n, 3), generator=g, dtype=torch.float64).to(dtype)
        return p + far
    support, query = pts(sum(s_counts)), pts(sum(q_counts))
    if sum(s_counts) and sum(q_counts) and draw(st.booleans()):
        m = min(3, len(query), len(support))
        query[:m] = support[:m]  # queries on support points
    so = torch.tensor(np.cumsum(s_counts), dtype=torch.int64)
    qo = torch.tensor(np.cumsum(q_counts), dtype=torch.int64)
    return support, query, so, qo


@given(c=clouds(), k=st.integers(0, 12), radius=st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.3]))
@settings(**SETTINGS)
def test_ball_query_exact(mod, c, k, radius):
    support, query, so, qo = c
    got = ops.ball_query(support, query, radius, k, so, qo)
    ref = reference.neighbours(support, query, so, qo, k, radius)
    bi, bd = brute_numpy(support, query, so, qo, k, radius)
    np.testing.assert_array_equal(got.idx.numpy(), bi)
    np.testing.assert_array_equal(got.dist2.numpy(), bd)
    np.testing.assert_array_equal(ref[0].numpy(), bi)
    np.testing.assert_array_equal(ref[1].numpy(), bd)
    # never crosses scenes
    scene_of = np.searchsorted(so.numpy(), np.arange(len(support)), side="right")
    qscene = np.searchsorted(qo.numpy(), np.arange(len(query)), side="right")
    valid = got.idx.numpy() >= 0
    assert (scene_of[got.idx.numpy()[valid]] == np.broadcast_to(qscene[:, None], valid.shape)[valid]).all()


@given(c=clouds(), k=st.integers(0, 70))
@settings(**SETTINGS)
def test_knn_exact(mod, c, k):
    support, query, so, qo = c
    got = ops.knn(support, query, k, so, qo)
    bi, bd = brute_numpy(support, query, so, qo, k, None)
    np.testing.assert_array_equal(got.idx.numpy(), bi)
    np.testing.assert_array_equal(got.dist2.numpy(), bd)


def test_knn_larger_clouds_and_sparse_outliers(mod):
    g = torch.Generator().manual_seed(1)
    s = torch.cat([torch.rand(3000, 3, generator=g), torch.rand(20, 3, generator=g) * 500])  # far outliers
    q = torch.cat([torch.rand(300, 3, generator=g), torch.rand(30, 3, generator=g) * 800 - 400])
    for k in (1, 8, 40):
        got = ops.knn(s, q, k)
        ref = reference.neighbours(s, q, torch.tensor([len(s)]), torch.tensor([len(q)]), k, None)
        assert torch.equal(got.idx, ref[0]) and torch.equal(got.dist2, ref[1])
    # a flat (2D) cloud, as on walls and floors
    s2 = torch.rand(4000, 3, generator=g) * torch.tensor([5.0, 5.0, 0.0])
    got = ops.knn(s2, s2[:200], 16)
    ref = reference.neighbours(s2, s2[:200], torch.tensor([4000]), torch.tensor([200]), 16, None)
    assert torch.equal(got.idx, ref[0])


def test_empty_inputs(mod):
    e = torch.zeros((0, 3))
    p = torch.rand(10, 3)
    assert ops.ball_query(p, e, 0.1, 4).idx.shape == (0, 4)
    r = ops.knn(e, p, 3)
    assert (r.idx == -1).all() and torch.isinf(r.dist2).all()
    assert ops.voxelize(e, 0.1).grid_coord.shape == (0, 3)
    assert ops.fps(e, 5).numel() == 0
    out, arg = ops.scatter(torch.zeros((0, 2)), torch.zeros(0, dtype=torch.int64), 3, "max")
    assert out.shape == (3, 2) and (arg == -1).all()


@given(c=clouds(), voxel=st.sampled_from([0.1, 0.3, 0.5, 1.0]))
@settings(**SETTINGS)
def test_voxelize_matches_torch_unique(mod, c, voxel):
    support, _, so, _ = c
    got = ops.voxelize(support, voxel, so)
    ref = reference.voxelize(support, voxel, so)
    for a, b in zip(got, ref):
        assert torch.equal(a, b)
    if len(support):
        # every point lies in its voxel
        lo = torch.cat([support[s:e].min(0).values.expand(e - s, 3) for s, e in zip([0] + so[:-1].tolist(), so.tolist()) if e > s])
        cell = torch.floor((support.double() - lo.double()) / voxel).int()
        assert torch.equal(got.grid_coord[got.inverse], cell)
        assert int(got.counts.sum()) == len(support)


def test_voxelize_keys_too_wide_to_share_a_word_with_the_point_index(mod):
    """A cloud whose voxel key (54 bits here: 2,620 m at 1 cm along each axis) and point index
    (11 bits) do not fit one 64-bit word together is sorted as (key, index) pairs; the grid,
    inverse and counts are the reference's, float32 and float64 alike."""
    g = torch.Generator().manual_seed(3)
    wide = torch.rand(2000, 3, generator=g, dtype=torch.float64) * 2620.0
    wide[:500] = wide[:1].clone() + torch.rand(500, 3, generator=g, dtype=torch.float64) * 0.03  # shared voxels
    for c in (wide, wide.float()):
        got, ref = ops.voxelize(c, 0.01), reference.voxelize(c, 0.01, torch.tensor([len(c)]))
        assert all(torch.equal(a, b) for a, b in zip(got, ref))
        assert len(got.counts) < 2000 - 400


@pytest.mark.parametrize("backend", ["compiled", "reference"])
def test_voxelize_refuses_a_scene_too_wide_before_any_kernel(mod, monkeypatch, backend):
    """A scene 262144 voxels wide is refused in Python (the kernels never raise), whichever
    backend runs; scenes far apart but each narrow enough are voxelized as usual."""
    if backend == "reference":
        monkeypatch.setenv("PCWEAK_OPS", "reference")
    wide = torch.tensor([[0.0, 0.0, 0.0], [0.5, 2700.0, 0.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match=r"voxelize: scene 0 spans more than 262144 voxels along an axis \(0.01 each\)"):
        ops.voxelize(wide, 0.01)
    with pytest.raises(ValueError, match="scene 1 spans more than 262144"):
        ops.voxelize(torch.cat([wide[:1], wide]), 0.01, torch.tensor([1, 3]))
    ok = wide.clone()
    ok[1, 1] = 2621.43
    assert len(ops.voxelize(ok, 0.01).counts) == 2
    apart = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [5000.0, 5000.0, 5000.0], [5001.0, 5000.5, 5000.0]])
    got = ops.voxelize(apart, 0.01, torch.tensor([2, 4]))
    assert got.grid_coord.tolist() == [[0, 0, 0], [100, 100, 100], [0, 0, 0], [100, 50, 0]]


@given(n=st.integers(0, 200), c=st.integers(1, 5), g=st.integers(1, 40), reduce=st.sampled_from(["sum", "mean", "max", "min"]),
       ties=st.booleans(), dtype=st.sampled_from([torch.float32, torch.float64]), seed=st.integers(0, 10**6))
@settings(**SETTINGS)
def test_scatter_matches_reference(mod, n, c, g, reduce, ties, dtype, seed):
    gen = torch.Generator().manual_seed(seed)
    src = (torch.randint(0, 3, (n, c), generator=gen) if ties else torch.randn(n, c, generator=gen)).to(dtype)
    index = torch.randint(0, g, (n,), generator=gen)
    got = ops.scatter(src, index, g + 2, reduce)
    out_r, arg_r, _ = reference.scatter(src, index, g + 2, reduce)
    if reduce in ("max", "min"):
        assert torch.equal(got[0], out_r) and torch.equal(got[1], arg_r)
        valid = got[1] >= 0
        if n:
            assert torch.equal(src[got[1].clamp(min=0), torch.arange(c)][valid], got[0][valid])
        assert torch.equal(valid[:, 0], torch.bincount(index, minlength=g + 2) > 0)
    else:
        torch.testing.assert_close(got, out_r)


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
@pytest.mark.parametrize("backend", ["compiled", "reference"])
def test_scatter_gradcheck(mod, monkeypatch, reduce, backend):
    monkeypatch.setenv("PCWEAK_OPS", backend)
    g = torch.Generator().manual_seed(0)
    src = torch.randn(40, 3, dtype=torch.float64, generator=g, requires_grad=True)  # distinct: no ties
    index = torch.randint(0, 7, (40,), generator=g)

    def f(x):
        r = ops.scatter(x, index, 9, reduce)
        return r if reduce in ("sum", "mean") else r[0]
    assert torch.autograd.gradcheck(f, (src,))


@given(c=clouds(), n=st.integers(0, 30))
@settings(**SETTINGS)
def test_fps_matches_reference(mod, c, n):
    support, _, so, _ = c
    got = ops.fps(support, n, so)
    sizes = torch.diff(so, prepend=torch.zeros(1, dtype=torch.int64))
    new = torch.cumsum(torch.clamp(sizes, max=n), 0)
    assert torch.equal(got, reference.fps(support, so, new))
    assert got.numel() == int(new[-1])


def test_fps_spreads_points(mod):
    g = torch.Generator().manual_seed(0)
    p = torch.rand(2000, 3, generator=g)
    idx = ops.fps(p, 64)
    assert len(set(idx.tolist())) == 64
    d = torch.cdist(p[idx], p[idx]) + torch.eye(64) * 10
    rnd = torch.randperm(2000, generator=g)[:64]
    d2 = torch.cdist(p[rnd], p[rnd]) + torch.eye(64) * 10
    assert d.min() > d2.min()


def test_stable_argsort_is_numpys_to_the_index(mod):
    """FH's edges are sorted by the compiled radix sort: the same order as numpy's stable
    argsort, ties, signed zeros, infinities and NaNs included."""
    rng = np.random.default_rng(0)
    cases = [rng.random(1000), np.round(rng.random(100000), 3), rng.standard_normal(50000), np.zeros(10),
             np.array([]), np.repeat(rng.random(300), 7),
             np.array([0.0, -0.0, 1.0, -0.0, 0.0, np.nan, -np.inf, np.inf, -np.nan, 2.0, np.nan, -1e-300, 1e-300])]
    for a in cases:
        np.testing.assert_array_equal(mod.argsort_stable(torch.from_numpy(a)).numpy(), np.argsort(a, kind="stable"))


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"support: expected shape \(N,3\)"):
        ops.knn(torch.zeros(5, 2), torch.zeros(1, 3), 1)
    with pytest.raises(ValueError, match=r"query: contains NaN"):
        ops.knn(torch.zeros(5, 3), torch.tensor([[0.0, float("nan"), 0.0]]), 1)
    with pytest.raises(ValueError, match=r"support_offset: must be non-decreasing cumulative counts ending at 5"):
        ops.ball_query(torch.zeros(5, 3), torch.zeros(1, 3), 0.1, 2, torch.tensor([2, 4]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"index: values must lie in \[0, 3\)"):
        ops.scatter(torch.zeros(4, 1), torch.tensor([0, 1, 2, 3]), 3, "sum")
    with pytest.raises(ValueError, match=r"voxel_size must be > 0"):
        ops.voxelize(torch.zeros(4, 3), 0.0)


def test_the_build_finds_ninja_without_it_on_path(monkeypatch, tmp_path):
    """torch's build runs ``ninja`` from PATH; a bare Debian has none but the ``ninja`` package's
    binary in the environment, whose ``bin/`` is not on PATH unless it is activated."""
    import torch.utils.cpp_extension as cpp
    monkeypatch.setenv("PCWEAK_CACHE", str(tmp_path / "cache"))  # no library there: build() compiles
    monkeypatch.setenv("PATH", str(tmp_path))
    found = {}

    def load(**kw):
        cpp.verify_ninja_availability()  # what torch's load does first
        found["ninja"] = shutil.which("ninja")
        raise RuntimeError("stop here")
    monkeypatch.setattr(cpp, "load", load)
    with pytest.raises(RuntimeError, match="stop here"):
        extension.build()
    assert found["ninja"] and Path(found["ninja"]).parent != tmp_path
    assert os.environ["PATH"] == str(tmp_path)  # restored


def test_failed_build_warns_once_and_falls_back(monkeypatch):
    monkeypatch.setattr(extension, "_state", {})
    monkeypatch.setenv("PCWEAK_OPS", "auto")

    def broken(verbose=False):
        raise RuntimeError("no compiler")
    monkeypatch.setattr(extension, "build", broken)
    with pytest.warns(UserWarning, match=r"compiling cuda_ops failed .*no compiler.*pure-torch reference"):
        assert extension.backend() == "reference"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert extension.backend() == "reference"  # warned once only
        r = ops.knn(torch.rand(20, 3), torch.rand(4, 3), 3)
    assert r.idx.shape == (4, 3)
    monkeypatch.setattr(extension, "_state", {})
    monkeypatch.setenv("PCWEAK_OPS", "compiled")
    with pytest.raises(RuntimeError, match=r"PCWEAK_OPS=compiled but building cuda_ops failed"):
        extension.compiled()
    monkeypatch.setenv("PCWEAK_OPS", "reference")
    assert extension.backend() == "reference"


def test_a_cuda_torch_without_a_gpu_loads_the_ops_without_torchs_cuda_home_line(tmp_path):
    """A CUDA build of torch where a CUDA toolkit lies but no GPU answers logs "No CUDA runtime is
    found, using CUDA_HOME=..." when ``torch.utils.cpp_extension`` is imported; pcweak's import of
    it keeps that line from every command. Here the CUDA build is faked on the CPU torch
    (``_is_compiled``, ``version.cuda``) and ``CUDA_HOME`` names a folder; the plain import, the
    control, logs the line."""
    fake = ("import torch; torch.cuda._is_compiled = lambda: True; torch.cuda.is_available = lambda: False; "
            "torch.version.cuda = '13.0'; ")
    env = {**os.environ, "CUDA_HOME": str(tmp_path)}
    runs = {how: subprocess.run([sys.executable, "-c", fake + code], capture_output=True, text=True, env=env, timeout=120)
            for how, code in (("plain", "import torch.utils.cpp_extension"),
                              ("pcweak", "from pcweak.ops import extension; extension._cpp_extension().load"))}
    assert runs["plain"].returncode == 0 and "No CUDA runtime is found" in runs["plain"].stderr
    assert runs["pcweak"].returncode == 0, runs["pcweak"].stderr[-2000:]
    assert "No CUDA runtime is found" not in runs["pcweak"].stderr


def test_second_checkout_reuses_the_built_library(tmp_path, monkeypatch, capfd):
    """The cache key holds what the library depends on, not where the sources lie: a second
    checkout of the same sources imports the first one's library and never compiles."""
    extension.build()  # this checkout's library (built once per environment)
    other = tmp_path / "elsewhere" / "cuda_ops"
    shutil.copytree(extension.SRC_DIR, other)
    monkeypatch.setattr(extension, "SRC_DIR", other)
    import torch.utils.cpp_extension as cpp

    def no_compile(**kw):
        raise AssertionError("the second checkout compiled the ops again")
    monkeypatch.setattr(cpp, "load", no_compile)
    capfd.readouterr()
    assert extension.build() is not None
    assert "compiling" not in capfd.readouterr().err
    # a changed source is a different library: that one does compile, and says so first
    (other / "pcweak_ops.cpp").write_text((other / "pcweak_ops.cpp").read_text() + "\n// changed\n")
    monkeypatch.setenv("PCWEAK_CACHE", str(tmp_path / "cache"))
    with pytest.raises(AssertionError, match="compiled the ops again"):
        extension.build()
    assert "pcweak: compiling the C++" in capfd.readouterr().err


CU_FILES = sorted((Path(__file__).resolve().parents[1] / "cuda_ops").glob("*.cu"))


@pytest.mark.parametrize("cu", CU_FILES, ids=[p.name for p in CU_FILES])
def test_cuda_sources_compile_with_nvcc(tmp_path, cu):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc not found: CUDA sources cannot be type-checked on this machine")
    from torch.utils.cpp_extension import include_paths
    inc = [f"-I{p}" for p in include_paths()] + [f"-I{cu.parent}"]
    r = subprocess.run([nvcc, "-c", str(cu), "-o", str(tmp_path / "x.o"), "-std=c++17", "--fmad=false", *inc],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "x.o").stat().st_size > 0
    assert len(CU_FILES) >= 1


def test_the_cpp_sources_cuda_branch_type_checks(tmp_path):
    """pcweak_ops.cpp as a CUDA build compiles it (-DPCWEAK_WITH_CUDA), type-checked against the
    CUDA runtime headers; a CPU torch lacks the one header its CUDA build generates, which is
    stubbed here."""
    import sysconfig
    from torch.utils.cpp_extension import CUDA_HOME, include_paths
    cxx = shutil.which("c++")
    cuda_inc = Path(CUDA_HOME or "/usr/local/cuda") / "include"
    if cxx is None or not (cuda_inc / "cuda_runtime_api.h").is_file():
        pytest.skip("no C++ compiler or CUDA runtime headers on this machine")
    stub = tmp_path / "c10" / "cuda" / "impl"
    stub.mkdir(parents=True)
    (stub / "cuda_cmake_macros.h").write_text("#define C10_CUDA_BUILD_SHARED_LIBS\n")
    src = Path(__file__).resolve().parents[1] / "cuda_ops" / "pcweak_ops.cpp"
    inc = [f"-I{p}" for p in include_paths()] + [f"-I{tmp_path}", f"-I{cuda_inc}", f"-I{src.parent}",
                                                  f"-I{sysconfig.get_paths()['include']}"]
    r = subprocess.run([cxx, "-fsyntax-only", "-std=c++17", "-fopenmp", "-DPCWEAK_WITH_CUDA", "-DTORCH_EXTENSION_NAME=x",
                        *inc, str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device (CI has none; run on a GPU machine)")
def test_cuda_matches_cpu():
    g = torch.Generator().manual_seed(0)
    s, q = torch.rand(5000, 3, generator=g), torch.rand(700, 3, generator=g)
    so, qo = torch.tensor([2000, 5000]), torch.tensor([300, 700])
    for fn in (lambda a, b, x, y: ops.ball_query(a, b, 0.1, 16, x, y), lambda a, b, x, y: ops.knn(a, b, 16, x, y)):
        cpu = fn(s, q, so, qo)
        gpu = fn(s.cuda(), q.cuda(), so.cuda(), qo.cuda())
        assert torch.equal(cpu.idx, gpu.idx.cpu()) and torch.equal(cpu.dist2, gpu.dist2.cpu())
    src, index = torch.randn(10000, 8, generator=g), torch.randint(0, 300, (10000,), generator=g)
    for red in ("max", "min"):
        a, b = ops.scatter(src, index, 300, red), ops.scatter(src.cuda(), index.cuda(), 300, red)
        assert torch.equal(a[0], b[0].cpu()) and torch.equal(a[1], b[1].cpu())
    torch.testing.assert_close(ops.scatter(src, index, 300, "mean"), ops.scatter(src.cuda(), index.cuda(), 300, "mean").cpu())
    assert torch.equal(ops.fps(s, 50, so), ops.fps(s.cuda(), 50, so.cuda()).cpu())
