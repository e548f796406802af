import pytest
import torch

from siammask_edu import ops


def test_naive_equals_grouped():
    x = torch.randn(2, 3, 9, 11)
    z = torch.randn(2, 3, 4, 5)
    a = ops.xcorr_depthwise_naive(x, z)
    b = ops.xcorr_depthwise(x, z)
    assert a.shape == (2, 3, 6, 7)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_known_value():
    # a single channel: response at (i, j) is the sum of the window times the kernel
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    z = torch.tensor([[[[1.0, 0.0], [0.0, -1.0]]]])
    out = ops.xcorr_depthwise(x, z)
    # x[i, j] - x[i+1, j+1] = -5 everywhere (no kernel flip: a convolution would give +5)
    assert torch.equal(out, torch.full((1, 1, 3, 3), -5.0))


def test_full_is_channel_sum_of_depthwise():
    x = torch.randn(3, 4, 10, 10)
    z = torch.randn(3, 4, 3, 3)
    full = ops.xcorr_full(x, z)
    assert full.shape == (3, 1, 8, 8)
    torch.testing.assert_close(full, ops.xcorr_depthwise(x, z).sum(1, keepdim=True),
                               atol=1e-4, rtol=1e-5)


def test_released_geometry():
    # 5x5 exemplar kernel on a 29x29 search -> 25x25 response
    out = ops.xcorr_depthwise(torch.randn(1, 256, 29, 29), torch.randn(1, 256, 5, 5))
    assert out.shape == (1, 256, 25, 25)
    assert ops.xcorr_depthwise_flops((1, 256, 29, 29), (1, 256, 5, 5)) == 256 * 625 * 25


@pytest.mark.parametrize("fn", [ops.xcorr_depthwise, ops.xcorr_depthwise_naive, ops.xcorr_full])
def test_bad_shapes(fn):
    with pytest.raises(ValueError, match="shape"):
        fn(torch.randn(1, 3, 9), torch.randn(1, 3, 3, 3))
    with pytest.raises(ValueError, match="agree"):
        fn(torch.randn(1, 3, 9, 9), torch.randn(1, 4, 3, 3))
    with pytest.raises(ValueError, match="larger"):
        fn(torch.randn(1, 3, 3, 3), torch.randn(1, 3, 5, 5))
    with pytest.raises(ValueError, match="floating"):
        fn(torch.ones(1, 3, 9, 9, dtype=torch.int64), torch.ones(1, 3, 3, 3, dtype=torch.int64))
