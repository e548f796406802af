"""Depth-wise correlation heads: score (2k), box (4k), mask (63*63) and 2B similarity (1).

Each head is the released ``DepthCorr`` (pysot ``DepthwiseXCorr``): its own 3x3 convolution
of the exemplar (``conv_kernel``) and of the search (``conv_search``), a depth-wise
cross-correlation, then a 1x1 "conv5" (+BN+ReLU) and a 1x1 "conv6" (paper Tables 7–8).

Channel layouts of the outputs (released, §2.2):

* score ``(B, 2k, H, W)``: channel ``a`` is the background logit of anchor ``a``,
  channel ``k + a`` the foreground logit (``[bg x 5, fg x 5]``);
* delta ``(B, 4k, H, W)``: channel ``k*j + a`` with ``j`` in (dx, dy, dw, dh);
* mask ``(B, 63*63, H, W)``: the 3969 channels of one RoW are its 63x63 mask, row-major.

See book/04_rows_anchors_heads.py.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..ops import xcorr_depthwise


def _conv_bn_relu(cin: int, cout: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class DepthwiseXCorrHead(nn.Module):
    """One branch of SiamMask: exemplar conv, search conv, depth-wise xcorr, 1x1 head.

    Args:
        in_channels: channels of the adjusted features (256).
        hidden: channels of the correlation (256).
        out_channels: 2k = 10 (score), 4k = 20 (box), 3969 (mask) or 1 (2B similarity).

    Shapes for the released geometry: exemplar feature ``(B, 256, 7, 7)`` -> kernel
    ``(B, 256, 5, 5)``; search ``(B, 256, 31, 31)`` -> ``(B, 256, 29, 29)``; correlation
    ``(B, 256, 25, 25)`` (one 256-d vector per RoW); output ``(B, out, 25, 25)``.

    See book/03_depthwise_xcorr.py.
    """

    def __init__(self, in_channels: int = 256, hidden: int = 256, out_channels: int = 10):
        super().__init__()
        self.conv_kernel = _conv_bn_relu(in_channels, hidden, 3)
        self.conv_search = _conv_bn_relu(in_channels, hidden, 3)
        self.head = nn.Sequential(
            nn.Conv2d(hidden, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, out_channels, 1),
        )
        self.out_channels = out_channels

    def kernel(self, zf: Tensor) -> Tensor:
        """Exemplar branch: ``(B, C, 7, 7) -> (B, hidden, 5, 5)``; computed once per target."""
        return self.conv_kernel(zf)

    def correlate(self, kernel: Tensor, xf: Tensor) -> Tensor:
        """Search branch + depth-wise xcorr: ``(B, hidden, 25, 25)``, one RoW per position."""
        return xcorr_depthwise(self.conv_search(xf), kernel)

    def forward(self, zf: Tensor, xf: Tensor) -> Tensor:
        """``head(xcorr(conv_search(xf), conv_kernel(zf)))``: ``(B, out, 25, 25)``."""
        return self.head(self.correlate(self.kernel(zf), xf))
