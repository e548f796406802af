"""Cross-correlation between exemplar and search features (paper §3.1, Eq. 1–2).

Three forms of one operation, the teaching sequence of chapter 3:

* :func:`xcorr_depthwise_naive` — explicit loops, the definition;
* :func:`xcorr_depthwise` — the same as one grouped convolution (released ``conv2d_dw_group``);
* :func:`xcorr_full` — SiamFC's correlation over all channels (one response channel),
  used by the two-branch SiamMask-2B similarity head.

All are cross-correlations in the deep-learning sense: no kernel flip, "valid" extent.

See book/03_depthwise_xcorr.py.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def _check_pair(x: Tensor, z: Tensor) -> None:
    if not isinstance(x, Tensor) or not isinstance(z, Tensor):
        raise ValueError("x and z must be torch tensors")
    if x.dim() != 4 or z.dim() != 4:
        raise ValueError(
            f"expected x of shape (B, C, Hx, Wx) and z of shape (B, C, Hz, Wz), "
            f"got {tuple(x.shape)} and {tuple(z.shape)}"
        )
    if x.shape[:2] != z.shape[:2]:
        raise ValueError(
            f"x and z must agree in batch and channels: x {tuple(x.shape)} vs z {tuple(z.shape)}"
        )
    if z.shape[2] > x.shape[2] or z.shape[3] > x.shape[3]:
        raise ValueError(
            f"exemplar z {tuple(z.shape[2:])} is larger than search x {tuple(x.shape[2:])}"
        )
    if not x.is_floating_point() or not z.is_floating_point():
        raise ValueError(f"x and z must be floating point, got {x.dtype} and {z.dtype}")


def xcorr_depthwise_naive(x: Tensor, z: Tensor) -> Tensor:
    """Depth-wise cross-correlation by its definition, with Python loops.

    ``out[b, c, i, j] = sum_{u, v} x[b, c, i + u, j + v] * z[b, c, u, v]``

    Args:
        x (Tensor[B, C, Hx, Wx]): search features.
        z (Tensor[B, C, Hz, Wz]): exemplar features (the "kernel").

    Returns:
        Tensor[B, C, Hx-Hz+1, Wx-Wz+1]: one response map per channel.

    Raises:
        ValueError: on shapes that are not 4-D, disagree in (B, C), or z larger than x.

    Slow (a loop over every output position); for teaching and testing only.
    See book/03_depthwise_xcorr.py.
    """
    _check_pair(x, z)
    hz, wz = z.shape[2:]
    ho, wo = x.shape[2] - hz + 1, x.shape[3] - wz + 1
    out = x.new_zeros(x.shape[0], x.shape[1], ho, wo)
    for i in range(ho):
        for j in range(wo):
            window = x[:, :, i : i + hz, j : j + wz]  # (B, C, Hz, Wz)
            out[:, :, i, j] = (window * z).sum(dim=(2, 3))
    return out


def xcorr_depthwise(x: Tensor, z: Tensor) -> Tensor:
    """Depth-wise cross-correlation as one grouped convolution (released ``conv2d_dw_group``).

    Batch and channels are folded into the channel axis so that every (b, c) pair is its
    own group: the search becomes ``(1, B*C, Hx, Wx)`` and the exemplar ``(B*C, 1, Hz, Wz)``.

    Args:
        x (Tensor[B, C, Hx, Wx]): search features.
        z (Tensor[B, C, Hz, Wz]): exemplar features.

    Returns:
        Tensor[B, C, Hx-Hz+1, Wx-Wz+1]: per-channel correlation; 25x25 for the released
        5x5 exemplar / 29x29 search head inputs.

    Raises:
        ValueError: on mismatched shapes (see :func:`xcorr_depthwise_naive`).

    See book/03_depthwise_xcorr.py.
    """
    _check_pair(x, z)
    b, c = x.shape[:2]
    xg = x.reshape(1, b * c, x.shape[2], x.shape[3])  # (1, B*C, Hx, Wx)
    zg = z.reshape(b * c, 1, z.shape[2], z.shape[3])  # (B*C, 1, Hz, Wz)
    out = F.conv2d(xg, zg, groups=b * c)  # (1, B*C, Ho, Wo)
    return out.reshape(b, c, out.shape[2], out.shape[3])


def xcorr_full(x: Tensor, z: Tensor) -> Tensor:
    """SiamFC cross-correlation: the sum over channels of the depth-wise correlation.

    Args:
        x (Tensor[B, C, Hx, Wx]): search features.
        z (Tensor[B, C, Hz, Wz]): exemplar features.

    Returns:
        Tensor[B, 1, Hx-Hz+1, Wx-Wz+1]: one similarity map per pair (paper Eq. 1, ``g``).

    Raises:
        ValueError: on mismatched shapes.

    See book/03_depthwise_xcorr.py.
    """
    _check_pair(x, z)
    b = x.shape[0]
    xg = x.reshape(1, b * x.shape[1], x.shape[2], x.shape[3])  # (1, B*C, Hx, Wx)
    out = F.conv2d(xg, z, groups=b)  # (1, B, Ho, Wo)
    return out.reshape(b, 1, out.shape[2], out.shape[3])


def xcorr_depthwise_flops(x_shape: tuple, z_shape: tuple) -> int:
    """Multiply-adds of a depth-wise correlation: ``B*C*Ho*Wo*Hz*Wz``."""
    b, c, hx, wx = x_shape
    _, _, hz, wz = z_shape
    return int(b * c * (hx - hz + 1) * (wx - wz + 1) * hz * wz)


__all__ = ["xcorr_depthwise_naive", "xcorr_depthwise", "xcorr_full", "xcorr_depthwise_flops"]
