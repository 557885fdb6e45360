"""spconv on a CPU-only torch, after pcweak.models.spconv_compat: forward and gradients of
SubMConv3d, SparseConv3d and SparseInverseConv3d against dense torch.nn.functional.conv3d."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import pcweak.models  # noqa: F401  (applies the compat patches)

spconv = pytest.importorskip("spconv.pytorch", reason="spconv is not installed")

D = 7


def _input(seed=0, channels=3, batch=2):
    g = torch.Generator().manual_seed(seed)
    idx = (torch.rand(batch, D, D, D, generator=g) < 0.35).nonzero().int()  # column-major on purpose
    feats = torch.randn(len(idx), channels, generator=g, dtype=torch.float32)
    return idx, feats


def _dense_weight(w):  # spconv KRSC (out, kz, ky, kx, in) -> conv3d (out, in, kz, ky, kx)
    return w.permute(0, 4, 1, 2, 3).contiguous()


def test_subm_forward_backward_and_eval_with_bias():
    idx, feats = _input()
    f1 = feats.clone().requires_grad_(True)
    f2 = feats.clone().requires_grad_(True)
    conv = spconv.SubMConv3d(3, 5, 3, padding=1, bias=True, indice_key="s")
    with torch.no_grad():
        conv.bias.normal_()
    x = spconv.SparseConvTensor(f1, idx, [D, D, D], 2)
    out = conv(x)
    g = torch.randn_like(out.features)
    (out.features * g).sum().backward()  # backward on CPU: the stream shim
    b, z, y, xx = idx.long().T
    dense_in = torch.zeros(2, D, D, D, 3).index_put((b, z, y, xx), f2).permute(0, 4, 1, 2, 3)
    w = _dense_weight(conv.weight.detach()).requires_grad_(True)
    ref = F.conv3d(dense_in, w, conv.bias.detach(), padding=1).permute(0, 2, 3, 4, 1)[b, z, y, xx]
    torch.testing.assert_close(out.features, ref, rtol=1e-5, atol=1e-5)
    (ref * g).sum().backward()
    torch.testing.assert_close(f1.grad, f2.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(_dense_weight(conv.weight.grad), w.grad, rtol=1e-4, atol=1e-4)
    conv.eval()  # bias in eval on CPU: refused by plain spconv
    with torch.no_grad():
        ev = conv(spconv.SparseConvTensor(feats, idx, [D, D, D], 2))
    torch.testing.assert_close(ev.features, ref.detach(), rtol=1e-5, atol=1e-5)


def test_without_the_patch_cpu_spconv_fails(monkeypatch):
    """Documents what the compat module fixes: plain spconv refuses CPU eval with bias."""
    from spconv.pytorch import conv as spconv_conv
    patched = spconv_conv.SparseConvolution._conv_forward
    monkeypatch.setattr(spconv_conv.SparseConvolution, "_conv_forward", patched.__wrapped__)
    idx, feats = _input(2)
    c = spconv.SubMConv3d(3, 4, 3, padding=1, bias=True).eval()
    with pytest.raises(AssertionError, match="cpu don't support act and bias"):
        c(spconv.SparseConvTensor(feats, idx, [D, D, D], 2))


def test_strided_and_inverse_conv_against_dense():
    idx, feats = _input(1)
    f1 = feats.clone().requires_grad_(True)
    down = spconv.SparseConv3d(3, 4, 3, stride=2, padding=1, bias=False, indice_key="d")
    up = spconv.SparseInverseConv3d(4, 3, 3, indice_key="d", bias=False)
    x = spconv.SparseConvTensor(f1, idx, [D, D, D], 2)
    y = down(x)
    z = up(y)
    b, zz, yy, xx = idx.long().T
    f2 = feats.clone().requires_grad_(True)
    dense_in = torch.zeros(2, D, D, D, 3).index_put((b, zz, yy, xx), f2).permute(0, 4, 1, 2, 3)
    wd = _dense_weight(down.weight.detach()).requires_grad_(True)
    yd = F.conv3d(dense_in, wd, stride=2, padding=1)
    # the strided conv's active outputs are exactly where the dense result can be non-zero
    torch.testing.assert_close(y.dense(), yd, rtol=1e-5, atol=1e-5)
    # inverse conv = transposed conv restricted to the original active sites
    wu = up.weight.detach().permute(4, 0, 1, 2, 3).contiguous().requires_grad_(True)  # (in, out, k, k, k)
    zd = F.conv_transpose3d(yd, wu, stride=2, padding=1, output_padding=(D + 1) % 2)
    zd = zd.permute(0, 2, 3, 4, 1)[b, zz, yy, xx]
    torch.testing.assert_close(z.features, zd, rtol=1e-4, atol=1e-4)
    g = torch.randn_like(zd)
    (z.features * g).sum().backward()
    (zd * g).sum().backward()
    torch.testing.assert_close(f1.grad, f2.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(_dense_weight(down.weight.grad), wd.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(up.weight.grad.permute(4, 0, 1, 2, 3), wu.grad, rtol=1e-4, atol=1e-4)


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
    import numpy as np
    import cumm.tensorview as tv
    from pcweak.models.spconv_compat import _SafeCpuOps
    if _SafeCpuOps._kernels() is None:
        pytest.skip("pcweak's compiled ops are not built (PCWEAK_OPS=reference)")
    src, out = np.ones((4, 3), np.float32), np.zeros((4, 3), np.float32)
    _SafeCpuOps.gather_cpu(tv.from_numpy(out), tv.from_numpy(src), tv.from_numpy(np.array([3, 0], np.int32)))
    assert out[:2].sum() == 6 and out[2:].sum() == 0
    with pytest.raises(RuntimeError, match=r"1 indices out of range \[0, 4\)"):
        _SafeCpuOps.gather_cpu(tv.from_numpy(out), tv.from_numpy(src), tv.from_numpy(np.array([0, 4], np.int32)))
    with pytest.raises(RuntimeError, match="out of range"):
        _SafeCpuOps.scatter_add_cpu(tv.from_numpy(out), tv.from_numpy(src), tv.from_numpy(np.array([-1], np.int64)))


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
