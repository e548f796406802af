"""The refinement module: sharp 127x127 masks from one RoW (paper §3.2, Fig. 7 and Fig. 9).

A RoW's 256-d correlation vector is deconvolved to 15x15 and merged, U-Net style, with
backbone features cut from a window tied to the RoW: p2 (15x15), p1 (31x31), p0 (61x61).
Each U-module adds a "horizontal" path ``h_i`` (the mask so far) and a "vertical" path
``v_i`` (the backbone window), then up-samples (nearest, as the released ``F.upsample``)
and a ``post_i`` conv halves the channels.

Windows (released ``Refine.forward``):

* test time, 255 search, RoW (r, c): zero-pad p0/p1/p2 by 16/8/4 and take
  ``[4r, 4r+61)``, ``[2r, 2r+31)``, ``[r, r+15)`` — all three cover search pixels
  ``[8r-32, 8r+95)``, the RoW's 127x127 receptive region;
* training, 143 search: every 3x3 RoW at once, windows by ``unfold`` without padding.

See book/05_refinement.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _conv_relu_2(cin: int, cmid: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cmid, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(cmid, cout, 3, padding=1), nn.ReLU(inplace=True),
    )


class Refine(nn.Module):
    """Refinement module U_3 -> U_2 -> U_1 of SiamMask-sharp.

    Args:
        channels: channels of (p0, p1, p2): (64, 256, 512) for ResNet-50.
        corr_channels: channels of the mask branch's correlation feature (256).
        windows: window sides on (p0, p1, p2) for a 127 px region: (61, 31, 15).
        steps: window offset per RoW step on (p0, p1, p2): (4, 2, 1) (= 8 px / stride).
        pads: zero padding used at test time: (16, 8, 4) (= 32 px / stride).
        out_size: side of the output mask, 127.

    See book/05_refinement.py.
    """

    def __init__(
        self,
        channels: tuple[int, int, int] = (64, 256, 512),
        corr_channels: int = 256,
        windows: tuple[int, int, int] = (61, 31, 15),
        steps: tuple[int, int, int] = (4, 2, 1),
        pads: tuple[int, int, int] = (16, 8, 4),
        out_size: int = 127,
    ) -> None:
        super().__init__()
        c0, c1, c2 = channels
        self.v0 = _conv_relu_2(c0, 16, 4)
        self.v1 = _conv_relu_2(c1, 64, 16)
        self.v2 = _conv_relu_2(c2, 128, 32)
        self.h2 = _conv_relu_2(32, 32, 32)
        self.h1 = _conv_relu_2(16, 16, 16)
        self.h0 = _conv_relu_2(4, 4, 4)
        self.deconv = nn.ConvTranspose2d(corr_channels, 32, 15, 15)
        self.post0 = nn.Conv2d(32, 16, 3, padding=1)
        self.post1 = nn.Conv2d(16, 4, 3, padding=1)
        self.post2 = nn.Conv2d(4, 1, 3, padding=1)
        self.windows, self.steps, self.pads, self.out_size = windows, steps, pads, out_size
        for m in self.modules():  # released init: Kaiming-uniform a=1 on every Conv2d
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, a=1)

    def _deconv_row(self, row: Tensor) -> Tensor:
        """``self.deconv(row)`` for ``row (N, C, 1, 1)``, as the matrix product it is.

        A transposed convolution of a 1x1 map whose stride equals its kernel writes each
        output pixel once: ``out[n, o, i, j] = sum_c row[n, c] * W[c, o, i, j] + b[o]``,
        i.e. ``row (N, C) @ W (C, O*k*k)``. On a CPU oneDNN's transposed convolution takes
        ~1.4 ms for the lite module's one RoW, the product ~0.05 ms; the sums are the same,
        their order may differ (float32 rounding, ~1e-7 relative). Any other input (or
        layer) goes through ``self.deconv``.
        """
        d = self.deconv
        k = d.kernel_size
        if (row.shape[-2:] != (1, 1) or tuple(d.stride) != tuple(k) or any(d.padding)
                or any(d.output_padding) or d.groups != 1 or any(v != 1 for v in d.dilation)):
            return d(row)
        n, cin, cout = row.shape[0], d.in_channels, d.out_channels
        w = d.weight  # (C_in, C_out, kh, kw)
        vec = row.reshape(n, cin)
        if w.is_contiguous():
            out = (vec @ w.view(cin, -1)).view(n, cout, *k)
        elif w.is_contiguous(memory_format=torch.channels_last):  # NHWC model: stay NHWC
            out = (vec @ w.permute(0, 2, 3, 1).reshape(cin, -1)).view(n, *k, cout)
            out = out.permute(0, 3, 1, 2)
        else:
            return d(row)
        return out if d.bias is None else out + d.bias.view(1, cout, 1, 1)

    def _decode(self, row: Tensor, q0: Tensor, q1: Tensor, q2: Tensor) -> Tensor:
        """U-modules on gathered windows. ``row (N, C, 1, 1)`` -> logits ``(N, 1, 127, 127)``."""
        w0, w1, _ = self.windows
        out = self._deconv_row(row)  # (N, 32, 15, 15)
        out = self.post0(F.interpolate(self.h2(out) + self.v2(q2), size=(w1,) * 2,
                                       mode="nearest"))  # (N, 16, 31, 31)
        out = self.post1(F.interpolate(self.h1(out) + self.v1(q1), size=(w0,) * 2,
                                       mode="nearest"))  # (N, 4, 61, 61)
        out = self.post2(F.interpolate(self.h0(out) + self.v0(q0), size=(self.out_size,) * 2,
                                       mode="nearest"))  # (N, 1, 127, 127)
        return out

    def windows_at(self, features: list[Tensor], row: int, col: int) -> list[Tensor]:
        """Zero-padded backbone windows of RoW (row, col): ``[(B,c0,61,61), (B,c1,31,31),
        (B,c2,15,15)]`` (test-time branch)."""
        out = []
        for f, w, s, p in zip(features[:3], self.windows, self.steps, self.pads):
            fp = F.pad(f, [p, p, p, p])
            out.append(fp[:, :, s * row : s * row + w, s * col : s * col + w])
        return out

    def forward(self, features: list[Tensor], corr: Tensor, row: int, col: int) -> Tensor:
        """Test-time refinement at one RoW.

        Args:
            features: backbone outputs ``[p0, p1, p2, ...]`` of the search crop, e.g.
                ``(B, 64, 125, 125)``, ``(B, 256, 63, 63)``, ``(B, 512, 31, 31)``.
            corr (Tensor[B, 256, 25, 25]): the mask branch's correlation feature.
            row, col: the RoW, 0 <= row, col < 25 (edges included: the windows are padded).

        Returns:
            Tensor[B, 1, 127, 127]: mask logits (apply a sigmoid for probabilities).

        Raises:
            ValueError: if (row, col) lies outside the correlation map.
        """
        h, w = corr.shape[2:]
        if not (0 <= row < h and 0 <= col < w):
            raise ValueError(f"RoW (row={row}, col={col}) outside the {h}x{w} response map")
        q0, q1, q2 = self.windows_at(features, row, col)
        vec = corr[:, :, row : row + 1, col : col + 1]  # (B, 256, 1, 1)
        return self._decode(vec, q0, q1, q2)

    def forward_all(self, features: list[Tensor], corr: Tensor) -> Tensor:
        """Training branch: every RoW at once, windows by ``unfold`` without padding.

        Args:
            features: ``[p0, p1, p2, ...]`` of a 143 search: ``(B, 64, 69, 69)``,
                ``(B, 256, 35, 35)``, ``(B, 512, 17, 17)``.
            corr (Tensor[B, 256, 3, 3]): correlation feature of the mask branch.

        Returns:
            Tensor[B*H*W, 1, 127, 127]: logits for RoWs ordered (batch, row, col).

        Raises:
            ValueError: when the feature sizes do not give one window per RoW (e.g. a 255
            search, which gives 17x17 windows for 25x25 RoWs).
        """
        b, c, h, w = corr.shape
        gathered = []
        for f, win, s in zip(features[:3], self.windows, self.steps):
            n_h = (f.shape[2] - win) // s + 1
            n_w = (f.shape[3] - win) // s + 1
            if (n_h, n_w) != (h, w):
                raise ValueError(
                    f"feature of size {tuple(f.shape[2:])} gives {n_h}x{n_w} windows of {win} "
                    f"(stride {s}) but the correlation has {h}x{w} RoWs; the unpadded training "
                    "branch needs a 143x143 search"
                )
            cols = F.unfold(f, (win, win), stride=s)  # (B, Cf*win*win, H*W)
            gathered.append(cols.permute(0, 2, 1).reshape(b * h * w, f.shape[1], win, win))
        vec = corr.permute(0, 2, 3, 1).reshape(b * h * w, c, 1, 1)
        return self._decode(vec, *gathered)
