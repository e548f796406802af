"""ResNet-50 with SiamMask's surgery (paper Table 6, released ``ResDown``) and the adjust layer.

Two layouts of one class:

* ``layout="released"`` — what SiamMask runs: output stride 8, no layer4, and the released
  details that the paper does not state (conv1 padding 0; the stride-2 3x3 of layer2 with
  padding 0; 3x3 downsample convolutions in layer2 and layer3; layer3 stride 1 and
  dilation 2 except its first block). Shapes: a 127 exemplar gives p0..p3 of 61/31/15/15,
  a 255 search 125/63/31/31.
* ``layout="torchvision"`` — torchvision's ``resnet50`` (conv1 padding 3, 1x1 stride-2
  downsamples, stride 32, layer4), for comparison in chapter 2. Its ``state_dict`` has
  torchvision's key names, so ImageNet weights in that layout load into it directly.

Differences from torchvision's resnet50, in the released layout (keys are shared, so
:func:`load_torchvision_weights` loads every tensor except the two 3x3 downsamples):

=====================  ==========================  ==========================
where                  torchvision                 released SiamMask
=====================  ==========================  ==========================
conv1                  7x7 s2 padding 3            7x7 s2 padding **0**
layer2.0.conv2         3x3 s2 padding 1            3x3 s2 padding **0**
layer2.0.downsample.0  1x1 s2                      **3x3** s2 padding 0
layer3.0.conv2         3x3 s2 padding 1            3x3 **s1** padding 1
layer3.0.downsample.0  1x1 s2                      **3x3** s1 padding 1
layer3.{1..5}.conv2    3x3 d1 padding 1            3x3 **dilation 2** padding 2
layer4, avgpool, fc    present                     **absent**
=====================  ==========================  ==========================

See book/02_backbone_surgery.py.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

LAYOUTS = ("released", "torchvision")


class Bottleneck(nn.Module):
    """ResNet bottleneck (1x1, 3x3, 1x1; expansion 4), stride on the 3x3 ("v1.5" placement).

    Released padding rule of the 3x3: ``2 - stride`` (1 for stride 1, **0 for stride 2**),
    or the dilation when it is > 1. The torchvision layout always pads by the dilation.
    """

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        dilation: int = 1,
        downsample: nn.Module | None = None,
        layout: str = "released",
    ) -> None:
        super().__init__()
        if layout == "released":
            padding = dilation if dilation > 1 else 2 - stride
        else:
            padding = dilation
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(
            planes, planes, 3, stride=stride, padding=padding, dilation=dilation, bias=False
        )
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNetBackbone(nn.Module):
    """ResNet-50 trunk returning ``(p0, p1, p2, p3)`` (and ``p4`` in the torchvision layout).

    Args:
        width: planes of layer1 (64 for ResNet-50); layer2/3/4 use 2x, 4x, 8x.
        blocks: bottleneck blocks per stage, ``(3, 4, 6)`` for ResNet-50 (+3 in layer4).
        layout: ``"released"`` (SiamMask, stride 8) or ``"torchvision"`` (stride 32).

    Forward input ``x (Tensor[B, 3, H, W])``, float32: for the released weights raw BGR
    values in 0..255 without normalisation. Outputs, for a 255x255 released search crop:

    * p0 (Tensor[B, 64, 125, 125]): conv1 + BN + ReLU, before the max-pool, stride 2;
    * p1 (Tensor[B, 256, 63, 63]): layer1 (conv2_x), stride 4;
    * p2 (Tensor[B, 512, 31, 31]): layer2 (conv3_x), stride 8;
    * p3 (Tensor[B, 1024, 31, 31]): layer3 (conv4_x, dilated), stride 8.

    and 61/31/15/15 for a 127x127 exemplar. ``channels`` lists the channel counts.

    See book/02_backbone_surgery.py.
    """

    def __init__(
        self,
        width: int = 64,
        blocks: tuple[int, ...] = (3, 4, 6),
        layout: str = "released",
    ) -> None:
        super().__init__()
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        if layout == "torchvision" and len(blocks) == 3:
            blocks = tuple(blocks) + (3,)
        self.layout = layout
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=0 if layout == "released" else 3,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(width, blocks[0], stride=1, dilation=1)
        self.layer2 = self._make_layer(width * 2, blocks[1], stride=2, dilation=1)
        if layout == "released":
            self.layer3 = self._make_layer(width * 4, blocks[2], stride=1, dilation=2)
        else:
            self.layer3 = self._make_layer(width * 4, blocks[2], stride=2, dilation=1)
            self.layer4 = self._make_layer(width * 8, blocks[3], stride=2, dilation=1)
        self.channels = [width, width * 4, width * 8, width * 16]
        self.strides = [2, 4, 8, 8] if layout == "released" else [2, 4, 8, 16]
        self._init_weights()

    def _make_layer(self, planes: int, blocks: int, stride: int, dilation: int) -> nn.Sequential:
        released = self.layout == "released"
        downsample = None
        first_dilation = dilation
        if stride != 1 or self.inplanes != planes * 4:
            if not released or (stride == 1 and dilation == 1):
                conv = nn.Conv2d(self.inplanes, planes * 4, 1, stride=stride, bias=False)
            else:
                # released: a 3x3 downsample; a dilated layer's first block uses half the
                # dilation (2 // 2 = 1), so layer3 block0 is un-dilated.
                first_dilation = dilation // 2 if dilation > 1 else 1
                pad = first_dilation if dilation > 1 else 0
                conv = nn.Conv2d(self.inplanes, planes * 4, 3, stride=stride, padding=pad,
                                 dilation=first_dilation, bias=False)
            downsample = nn.Sequential(conv, nn.BatchNorm2d(planes * 4))
        layers = [Bottleneck(self.inplanes, planes, stride, first_dilation, downsample,
                             self.layout)]
        self.inplanes = planes * 4
        for _ in range(1, blocks):
            layers.append(Bottleneck(self.inplanes, planes, 1, dilation, None, self.layout))
        return nn.Sequential(*layers)

    def _init_weights(self) -> None:
        # Released ResNet init: N(0, sqrt(2 / (k*k*out))), BN gamma 1, beta 0.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, (2.0 / n) ** 0.5)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> list[Tensor]:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected an image batch of shape (B, 3, H, W), got {tuple(x.shape)}")
        p0 = self.relu(self.bn1(self.conv1(x)))  # (B, 64, 125, 125) for 255
        p1 = self.layer1(self.maxpool(p0))  # (B, 256, 63, 63)
        p2 = self.layer2(p1)  # (B, 512, 31, 31)
        p3 = self.layer3(p2)  # (B, 1024, 31, 31)
        if self.layout == "torchvision":
            return [p0, p1, p2, p3, self.layer4(p3)]
        return [p0, p1, p2, p3]


class AdjustLayer(nn.Module):
    """The adjust layer: 1x1 conv (no bias) + BatchNorm, **no ReLU**, then the exemplar crop.

    Released ``ResDownS``: when the feature is narrower than 20 pixels (an exemplar, or a
    143 refine-stage search), ``crop`` pixels are cut from every side: 15 -> 7 (giving the
    released 25x25 response) and 17 -> 9. ``crop=0`` keeps the paper's 15x15 exemplar.

    Args:
        in_channels: 1024 for ResNet-50 layer3.
        out_channels: 256 in the paper.
        crop: pixels removed per side on narrow features (released 4).

    Input ``Tensor[B, in, H, W]``; output ``Tensor[B, out, H', W']`` with H' = H - 2*crop
    if W < 20 else H.

    See book/02_backbone_surgery.py.
    """

    def __init__(self, in_channels: int = 1024, out_channels: int = 256, crop: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.crop = crop

    def forward(self, x: Tensor) -> Tensor:
        x = self.bn(self.conv(x))
        if self.crop > 0 and x.shape[3] < 20:
            c = self.crop
            x = x[:, :, c:-c, c:-c]
        return x


# ---------------------------------------------------------------------------------------
# ImageNet weights in torchvision's layout
# ---------------------------------------------------------------------------------------


def load_torchvision_weights(
    backbone: ResNetBackbone, state_dict: Mapping[str, Tensor]
) -> dict[str, list[str]]:
    """Copy a torchvision-layout ResNet-50 ``state_dict`` into a backbone, as far as it fits.

    Every tensor whose name and shape match is copied. In the released layout that is all
    of conv1, bn1 and layer1..layer3 **except** ``layer2.0.downsample.0.weight`` and
    ``layer3.0.downsample.0.weight`` (torchvision 1x1, released 3x3): these keep their
    initialisation, exactly as the released ``resnet.model`` pretraining had to retrain them.

    Args:
        backbone: the module to fill.
        state_dict: torchvision names (``conv1.weight``, ``layer1.0.bn1.running_mean``, ...);
            a ``module.`` prefix is stripped.

    Returns:
        dict with ``loaded`` (names copied), ``shape_mismatch`` (``"name: ours vs theirs"``),
        ``missing`` (ours, absent from the file) and ``unused`` (theirs, e.g. ``layer4.*``,
        ``fc.*``).

    See book/02_backbone_surgery.py.
    """
    own = backbone.state_dict()
    theirs = {k.removeprefix("module."): v for k, v in state_dict.items()}
    report: dict[str, list[str]] = {"loaded": [], "shape_mismatch": [], "missing": [],
                                    "unused": []}
    new = {}
    for name, tensor in own.items():
        if name not in theirs:
            report["missing"].append(name)
        elif tuple(theirs[name].shape) != tuple(tensor.shape):
            report["shape_mismatch"].append(
                f"{name}: ours {tuple(tensor.shape)} vs theirs {tuple(theirs[name].shape)}"
            )
        else:
            new[name] = theirs[name].to(tensor.dtype)
            report["loaded"].append(name)
    report["unused"] = sorted(set(theirs) - set(own))
    with torch.no_grad():
        backbone.load_state_dict(new, strict=False)
    return report
