import torch

from siammask_edu import ops
from siammask_edu.models import DepthwiseXCorrHead


def test_head_shapes_and_pieces():
    head = DepthwiseXCorrHead(16, 16, 10).eval()
    zf, xf = torch.randn(2, 16, 7, 7), torch.randn(2, 16, 31, 31)
    with torch.no_grad():
        k = head.kernel(zf)
        corr = head.correlate(k, xf)
        out = head(zf, xf)
    assert k.shape == (2, 16, 5, 5)
    assert corr.shape == (2, 16, 25, 25)
    assert out.shape == (2, 10, 25, 25)
    # forward is head(xcorr(conv_search(x), conv_kernel(z)))
    with torch.no_grad():
        ref = head.head(ops.xcorr_depthwise(head.conv_search(xf), head.conv_kernel(zf)))
    torch.testing.assert_close(out, ref)


def test_released_submodule_layout():
    # the state-dict layout the released checkpoints use: conv_kernel/conv_search .0 conv
    # .1 BN; head .0 conv .1 BN .3 conv with bias
    keys = set(DepthwiseXCorrHead(256, 256, 3969).state_dict())
    for k in ["conv_kernel.0.weight", "conv_kernel.1.running_var", "conv_search.0.weight",
              "head.0.weight", "head.1.weight", "head.3.weight", "head.3.bias"]:
        assert k in keys
    assert "conv_kernel.0.bias" not in keys and "head.0.bias" not in keys
