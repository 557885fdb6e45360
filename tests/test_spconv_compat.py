"""spconv after pcweak.models.spconv_compat: forward and gradients of SubMConv3d, SparseConv3d and
SparseInverseConv3d against dense torch.nn.functional.conv3d, on CPU (the compat patches) and, on a
GPU machine, on CUDA (spconv's own CUDA kernels, which the patches leave alone)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import pcweak.models  # noqa: F401  (applies the compat patches)

spconv = pytest.importorskip("spconv.pytorch", reason="spconv is not installed")

D = 7
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device (CI has none; scripts/gpu_check.sh runs it)"))]
# CUDA: spconv's implicit GEMM may use TF32 tensor cores, ~1e-3 relative; a wrong rulebook is O(1)
TOL = {"cpu": dict(rtol=1e-5, atol=1e-5), "cuda": dict(rtol=5e-3, atol=5e-3)}
GRAD_TOL = {"cpu": dict(rtol=1e-4, atol=1e-4), "cuda": dict(rtol=5e-3, atol=5e-3)}


def _input(seed=0, channels=3, batch=2):
    g = torch.Generator().manual_seed(seed)
    idx = (torch.rand(batch, D, D, D, generator=g) < 0.35).nonzero().int()  # column-major on purpose
    feats = torch.randn(len(idx), channels, generator=g, dtype=torch.float32)
    return idx, feats


def _dense_weight(w):  # spconv KRSC (out, kz, ky, kx, in) -> conv3d (out, in, kz, ky, kx)
    return w.permute(0, 4, 1, 2, 3).contiguous()


@pytest.mark.parametrize("device", DEVICES)
def test_subm_forward_backward_and_eval_with_bias(device):
    """The dense reference runs in float64 on the CPU whatever the device under test."""
    idx, feats = _input()
    f1 = feats.clone().to(device).requires_grad_(True)
    f2 = feats.double().requires_grad_(True)
    conv = spconv.SubMConv3d(3, 5, 3, padding=1, bias=True, indice_key="s")
    with torch.no_grad():
        conv.bias.normal_()
    conv = conv.to(device)
    x = spconv.SparseConvTensor(f1, idx.to(device), [D, D, D], 2)
    out = conv(x)
    g = torch.randn(out.features.shape, dtype=torch.float64)
    (out.features * g.to(device, torch.float32)).sum().backward()  # backward on CPU: the stream shim
    b, z, y, xx = idx.long().T
    dense_in = torch.zeros(2, D, D, D, 3, dtype=torch.float64).index_put((b, z, y, xx), f2).permute(0, 4, 1, 2, 3)
    w = _dense_weight(conv.weight.detach().cpu().double()).requires_grad_(True)
    bias = conv.bias.detach().cpu().double()
    ref = F.conv3d(dense_in, w, bias, padding=1).permute(0, 2, 3, 4, 1)[b, z, y, xx]
    torch.testing.assert_close(out.features.cpu().double(), ref.detach(), **TOL[device])
    (ref * g).sum().backward()
    torch.testing.assert_close(f1.grad.cpu().double(), f2.grad, **TOL[device])
    torch.testing.assert_close(_dense_weight(conv.weight.grad.cpu().double()), w.grad, **GRAD_TOL[device])
    conv.eval()  # bias in eval on CPU: refused by plain spconv; fused into the kernel on CUDA
    with torch.no_grad():
        ev = conv(spconv.SparseConvTensor(feats.to(device), idx.to(device), [D, D, D], 2))
    torch.testing.assert_close(ev.features.cpu().double(), ref.detach(), **TOL[device])


def test_without_the_patch_cpu_spconv_fails(monkeypatch):
    """Documents what the compat module fixes: plain spconv refuses CPU eval with bias."""
    from spconv.pytorch import conv as spconv_conv
    patched = spconv_conv.SparseConvolution._conv_forward
    monkeypatch.setattr(spconv_conv.SparseConvolution, "_conv_forward", patched.__wrapped__)
    from spconv.core import ConvAlgo
    idx, feats = _input(2)
    c = spconv.SubMConv3d(3, 4, 3, padding=1, bias=True, algo=ConvAlgo.Native).eval()  # a CUDA build's default is another
    # the CPU build refuses in Python, a CUDA build in C++
    with pytest.raises((AssertionError, RuntimeError), match="cpu don't support act and bias|bias and act don't support cpu"):
        c(spconv.SparseConvTensor(feats, idx, [D, D, D], 2))


def test_implicit_gemm_layers_run_on_cpu_tensors_as_native(monkeypatch):
    """A CUDA build of spconv makes new layers implicit-GEMM, which has no CPU kernels; on CPU
    tensors the compat module runs them with the native algorithm: the same features as a native
    layer with the same weights, in training and in eval (bias), and the layer keeps its own
    algorithm for CUDA tensors. (A CPU build refuses implicit GEMM when a layer is made, so the
    test sets it after, as a CUDA build's constructor would.)"""
    from spconv.core import ConvAlgo
    from spconv.pytorch import conv as spconv_conv
    idx, feats = _input(4)
    native = spconv.SubMConv3d(3, 4, 3, padding=1, bias=True, algo=ConvAlgo.Native, indice_key="a")
    down_n = spconv.SparseConv3d(4, 2, 3, stride=2, padding=1, bias=True, algo=ConvAlgo.Native)
    with torch.no_grad():
        native.bias.normal_()
        down_n.bias.normal_()
    gemm = spconv.SubMConv3d(3, 4, 3, padding=1, bias=True, algo=ConvAlgo.Native, indice_key="a")
    down_g = spconv.SparseConv3d(4, 2, 3, stride=2, padding=1, bias=True, algo=ConvAlgo.Native)
    gemm.load_state_dict(native.state_dict())
    down_g.load_state_dict(down_n.state_dict())
    gemm.algo = down_g.algo = ConvAlgo.MaskImplicitGemm
    for train in (True, False):
        for m in (native, down_n, gemm, down_g):
            m.train(train)
        with torch.no_grad():
            ref = down_n(native(spconv.SparseConvTensor(feats, idx, [D, D, D], 2)))
            out = down_g(gemm(spconv.SparseConvTensor(feats, idx, [D, D, D], 2)))
        assert torch.equal(out.indices, ref.indices)
        torch.testing.assert_close(out.features, ref.features, rtol=0, atol=0)
    assert gemm.algo == down_g.algo == ConvAlgo.MaskImplicitGemm
    patched = spconv_conv.SparseConvolution._conv_forward
    monkeypatch.setattr(spconv_conv.SparseConvolution, "_conv_forward", patched.__wrapped__)
    with pytest.raises(AssertionError, match="implicit gemm only support cuda"):
        gemm.train()(spconv.SparseConvTensor(feats, idx, [D, D, D], 2))


@pytest.mark.parametrize("device", DEVICES)
def test_strided_and_inverse_conv_against_dense(device):
    idx, feats = _input(1)
    f1 = feats.clone().to(device).requires_grad_(True)
    down = spconv.SparseConv3d(3, 4, 3, stride=2, padding=1, bias=False, indice_key="d").to(device)
    up = spconv.SparseInverseConv3d(4, 3, 3, indice_key="d", bias=False).to(device)
    x = spconv.SparseConvTensor(f1, idx.to(device), [D, D, D], 2)
    y = down(x)
    z = up(y)
    b, zz, yy, xx = idx.long().T
    f2 = feats.double().requires_grad_(True)
    dense_in = torch.zeros(2, D, D, D, 3, dtype=torch.float64).index_put((b, zz, yy, xx), f2).permute(0, 4, 1, 2, 3)
    wd = _dense_weight(down.weight.detach().cpu().double()).requires_grad_(True)
    yd = F.conv3d(dense_in, wd, stride=2, padding=1)
    # the strided conv's active outputs are exactly where the dense result can be non-zero
    torch.testing.assert_close(y.dense().cpu().double(), yd.detach(), **TOL[device])
    # inverse conv = transposed conv restricted to the original active sites
    wu = up.weight.detach().cpu().double().permute(4, 0, 1, 2, 3).contiguous().requires_grad_(True)  # (in, out, k, k, k)
    zd = F.conv_transpose3d(yd, wu, stride=2, padding=1, output_padding=(D + 1) % 2)
    zd = zd.permute(0, 2, 3, 4, 1)[b, zz, yy, xx]
    torch.testing.assert_close(z.features.cpu().double(), zd.detach(), **GRAD_TOL[device])
    g = torch.randn(zd.shape, dtype=torch.float64)
    (z.features * g.to(device, torch.float32)).sum().backward()
    (zd * g).sum().backward()
    torch.testing.assert_close(f1.grad.cpu().double(), f2.grad, **GRAD_TOL[device])
    torch.testing.assert_close(_dense_weight(down.weight.grad.cpu().double()), wd.grad, **GRAD_TOL[device])
    torch.testing.assert_close(up.weight.grad.cpu().double().permute(4, 0, 1, 2, 3), wu.grad, **GRAD_TOL[device])


def test_cpu_convolution_is_deterministic_with_threads(two_torch_threads):
    """spconv's own CPU gather/scatter race on 2 threads; the compat module's do not."""
    idx, feats = _input(3)
    feats.requires_grad_(True)
    sub = spconv.SubMConv3d(3, 5, 3, padding=1, bias=False)
    down = spconv.SparseConv3d(3, 4, 3, stride=2, padding=1, bias=False)

    def run():
        feats.grad = None
        x = spconv.SparseConvTensor(feats, idx, [D, D, D], 2)
        a, b = sub(x).features, down(x).features
        (a.sum() + b.sum()).backward()
        return a.detach(), b.detach(), feats.grad.clone()
    ref = run()
    for _ in range(150):
        for r, o in zip(ref, run()):
            assert torch.equal(r, o)


def test_compiled_row_kernels_equal_numpy_and_repeat_on_large_inputs(two_torch_threads):
    """Inputs large enough that the compiled kernels split rows among threads: features and
    gradients equal numpy's bit for bit, run after run (the race the patch exists for)."""
    from pcweak.models.spconv_compat import use_row_kernels
    from pcweak.ops import backend
    if backend() != "compiled":
        pytest.skip("pcweak's compiled ops are not built (PCWEAK_OPS=reference)")
    g = torch.Generator().manual_seed(5)
    idx = (torch.rand(2, 40, 40, 40, generator=g) < 0.3).nonzero().int()
    feats = torch.randn(len(idx), 32, generator=g).requires_grad_(True)
    torch.manual_seed(0)
    sub = spconv.SubMConv3d(32, 32, 3, padding=1, bias=False)
    down = spconv.SparseConv3d(32, 16, 2, stride=2, bias=False)

    def run():
        feats.grad, sub.weight.grad, down.weight.grad = None, None, None
        x = spconv.SparseConvTensor(feats, idx, [40, 40, 40], 2)
        a = sub(x)
        b = down(a)
        (a.features.square().sum() + b.features.sum()).backward()
        return a.features.detach(), b.features.detach(), feats.grad.clone(), sub.weight.grad.clone()
    with use_row_kernels("numpy"):
        ref = run()
    with use_row_kernels("pcweak"):
        for _ in range(5):
            for r, o in zip(ref, run()):
                assert torch.equal(r, o)


def test_row_kernels_refuse_indices_out_of_range():
    """Through tensorview views of torch tensors that stay alive, as spconv passes them
    (``tv.from_numpy`` keeps no reference to its array: a temporary one is freed under the view)."""
    from spconv.pytorch.cppcore import torch_tensor_to_tv as tv_view
    from pcweak.models.spconv_compat import _SafeCpuOps
    if _SafeCpuOps._kernels() is None:
        pytest.skip("pcweak's compiled ops are not built (PCWEAK_OPS=reference)")
    src, out = torch.ones(4, 3), torch.zeros(4, 3)
    good, past_end, negative = torch.tensor([3, 0], dtype=torch.int32), torch.tensor([0, 4], dtype=torch.int32), torch.tensor([-1])
    _SafeCpuOps.gather_cpu(tv_view(out), tv_view(src), tv_view(good))
    assert out[:2].sum() == 6 and out[2:].sum() == 0
    with pytest.raises(RuntimeError, match=r"1 indices out of range \[0, 4\)"):
        _SafeCpuOps.gather_cpu(tv_view(out), tv_view(src), tv_view(past_end))
    with pytest.raises(RuntimeError, match="out of range"):
        _SafeCpuOps.scatter_add_cpu(tv_view(out), tv_view(src), tv_view(negative))
    assert out[:2].sum() == 6 and out[2:].sum() == 0  # nothing moved by the refused calls
    mod = _SafeCpuOps._kernels()  # arguments that cannot describe the buffers: refused before any address is read
    assert mod.gather_rows(0, 1, 0, 4, 0, 2, False, 3, 0) == -1  # 2 indices, 1 output row
    assert mod.scatter_add_rows(0, 4, 0, 4, 0, 2, False, 3, 7) == -1  # no dtype 7
    assert mod.gather_rows(0, 4, 0, 4, 0, -1, False, 3, 0) == -1


def test_to_dense_equals_spconv_dense_without_its_warning():
    import warnings
    from pcweak.models.second import to_dense
    g = torch.Generator().manual_seed(0)
    sites = torch.randperm(2 * 4 * 5 * 6, generator=g)[:40]
    b, z, y, x = np.unravel_index(sites.numpy(), (2, 4, 5, 6))
    idx = torch.from_numpy(np.stack([b, z, y, x], 1)).int()
    feat = torch.randn(40, 3, generator=g, requires_grad=True)
    t = spconv.SparseConvTensor(feat, idx, [4, 5, 6], 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = to_dense(t)
    assert d.shape == (2, 3, 4, 5, 6)
    assert torch.equal(d, t.dense())
    d.sum().backward()
    assert torch.equal(feat.grad, torch.ones_like(feat))
