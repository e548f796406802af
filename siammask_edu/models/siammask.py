"""SiamMask: backbone + adjust layer + depth-wise heads (+ refinement), paper §3.2.

The network holds **no tracking state**: :meth:`SiamMask.template` returns an
:class:`Exemplar` that the caller keeps (the tracker, one per target), and
:meth:`SiamMask.track` takes it as an argument. Several trackers can therefore share one
model instance.

See book/01_siamese_tracking.py and book/04_rows_anchors_heads.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field


from torch import Tensor, nn

from ..config import ModelConfig, model_config
from .backbone import AdjustLayer, ResNetBackbone
from .efficientnet import EfficientNetLite0, LiteNeck, LiteRefine
from .heads import DepthwiseXCorrHead
from .refine import Refine


@dataclass
class Exemplar:
    """Everything computed once from the exemplar crop ``z`` (127x127).

    Attributes:
        zf (Tensor[B, 256, 7, 7]): adjusted exemplar feature (15x15 for the paper preset).
        kernels: per head, ``conv_kernel(zf)`` of shape ``(B, 256, 5, 5)``: the exemplar
            side of every depth-wise correlation, so that tracking never recomputes it.
        features: backbone outputs ``[p0, p1, p2, p3]`` of the exemplar.
    """

    zf: Tensor
    kernels: dict[str, Tensor]
    features: list[Tensor] = field(default_factory=list)


@dataclass
class SearchOutputs:
    """Outputs of one search crop ``x`` (255x255), with every intermediate tensor.

    Attributes:
        score (Tensor[B, 2k, 25, 25]): classification logits, layout ``[bg x k, fg x k]``
            (two-branch model: ``(B, 1, 25, 25)`` similarity logits).
        delta (Tensor[B, 4k, 25, 25] | None): box regression ``[dx x k, dy x k, dw x k,
            dh x k]`` (``None`` for the two-branch model).
        mask_logits (Tensor[B, 3969, 25, 25] | None): the mask head's 63x63 logits per RoW;
            ``None`` when it was not computed (the sharp model uses refinement instead).
        mask_corr (Tensor[B, 256, 25, 25]): the mask branch's correlation feature (one
            256-d RoW vector per position), input of the mask head and of refinement.
        xf (Tensor[B, 256, 31, 31]): adjusted search feature.
        features: backbone outputs ``[p0, p1, p2, p3]`` of the search crop.
    """

    score: Tensor
    delta: Tensor | None
    mask_logits: Tensor | None
    mask_corr: Tensor
    xf: Tensor
    features: list[Tensor]


def _check_crop(x: Tensor, name: str, size: int | None) -> None:
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4 or x.shape[1] != 3 or (size is not None and tuple(x.shape[2:]) != (size,) * 2):
        want = f"(B, 3, {size}, {size})" if size is not None else "(B, 3, H, W)"
        raise ValueError(f"{name} must have shape {want}, got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(
            f"{name} must be a float tensor (raw 0..255 BGR values for released weights), "
            f"got {x.dtype}"
        )


class SiamMask(nn.Module):
    """The SiamMask network (three-branch or two-branch, with or without refinement).

    Build it with :func:`build_model` (``"sharp"``, ``"base"``, ``"paper"``,
    ``"two_branch"``, ``"tiny"``) or from a :class:`ModelConfig`.

    Submodules: ``backbone`` (ResNet-50 surgery), ``neck`` (adjust layer), ``score_head``,
    ``box_head`` (absent in 2B), ``mask_head`` and ``refine`` (sharp only).

    See book/01_siamese_tracking.py.
    """

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        cfg = config or ModelConfig.sharp()
        self.config = cfg
        if cfg.backbone == "resnet50":
            self.backbone = ResNetBackbone(cfg.backbone_width, cfg.backbone_blocks, "released")
            self.neck = AdjustLayer(self.backbone.channels[3], cfg.feature_channels,
                                    cfg.exemplar_crop)
        elif cfg.backbone == "efficientnet_lite0":
            # SiamMask-Lite: stride-8 EfficientNet-Lite0 (BGR 0..255 in, converted inside),
            # aligned neck and refinement windows 64/32/16 (models/efficientnet.py).
            self.backbone = EfficientNetLite0(output_stride=8, num_blocks=11)
            self.neck = LiteNeck(self.backbone.channels[3], cfg.feature_channels)
        else:
            raise ValueError(f"unknown backbone {cfg.backbone!r}; expected 'resnet50' or "
                             "'efficientnet_lite0'")
        ch = self.backbone.channels
        c, h, k = cfg.feature_channels, cfg.hidden_channels, cfg.anchor_num
        if cfg.branches == "three":
            self.score_head = DepthwiseXCorrHead(c, h, 2 * k)
            self.box_head: DepthwiseXCorrHead | None = DepthwiseXCorrHead(c, h, 4 * k)
        elif cfg.branches == "two":
            self.score_head = DepthwiseXCorrHead(c, h, 1)
            self.box_head = None
        else:
            raise ValueError(f"branches must be 'three' or 'two', got {cfg.branches!r}")
        self.mask_head = DepthwiseXCorrHead(c, h, cfg.mask_size**2)
        if not cfg.refine:
            self.refine = None
        elif cfg.backbone == "efficientnet_lite0":
            self.refine = LiteRefine((ch[0], ch[1], ch[2]), h)
        else:
            self.refine = Refine((ch[0], ch[1], ch[2]), h)

    # -- the pieces -------------------------------------------------------------------
    def heads(self) -> dict[str, DepthwiseXCorrHead]:
        """The depth-wise heads by name: ``score``, ``box`` (three-branch), ``mask``."""
        out = {"score": self.score_head}
        if self.box_head is not None:
            out["box"] = self.box_head
        out["mask"] = self.mask_head
        return out

    def template(self, z: Tensor) -> Exemplar:
        """Exemplar branch, run once per target.

        Args:
            z (Tensor[B, 3, 127, 127]): exemplar crop, float32 (released weights: BGR 0..255).

        Returns:
            :class:`Exemplar` with ``zf (B, 256, 7, 7)`` and each head's kernel
            ``(B, 256, 5, 5)``.

        Raises:
            ValueError: for a tensor that is not ``(B, 3, H, W)`` float.
        """
        _check_crop(z, "exemplar z", None)
        feats = self.backbone(z)
        zf = self.neck(feats[3])
        kernels = {name: head.kernel(zf) for name, head in self.heads().items()}
        return Exemplar(zf=zf, kernels=kernels, features=feats)

    def track(self, x: Tensor, exemplar: Exemplar, mask_head: bool | None = None) -> SearchOutputs:
        """Search branch: backbone, adjust, the three correlations and their heads.

        Args:
            x (Tensor[B, 3, 255, 255]): search crop, float32 (BGR 0..255 for released weights).
            exemplar: from :meth:`template` (batch 1 is broadcast to B).
            mask_head: evaluate the dense 3969-channel mask head. Default: only when the
                model has no refinement (the sharp model would throw it away).

        Returns:
            :class:`SearchOutputs` (score ``(B, 10, 25, 25)``, delta ``(B, 20, 25, 25)``, ...).

        Raises:
            ValueError: for a malformed ``x``.
        """
        _check_crop(x, "search x", None)
        if mask_head is None:
            mask_head = self.refine is None
        feats = self.backbone(x)
        xf = self.neck(feats[3])
        b = x.shape[0]

        def kern(name: str) -> Tensor:
            kz = exemplar.kernels[name]
            return kz.expand(b, -1, -1, -1) if kz.shape[0] == 1 and b > 1 else kz

        score = self.score_head.head(self.score_head.correlate(kern("score"), xf))
        delta = None
        if self.box_head is not None:
            delta = self.box_head.head(self.box_head.correlate(kern("box"), xf))
        mask_corr = self.mask_head.correlate(kern("mask"), xf)
        mask_logits = self.mask_head.head(mask_corr) if mask_head else None
        return SearchOutputs(score, delta, mask_logits, mask_corr, xf, feats)

    def mask_at(self, out: SearchOutputs, row: int, col: int) -> Tensor:
        """The mask head's 63x63 logits of one RoW.

        Uses ``out.mask_logits`` when present, otherwise runs the 1x1 head on the single
        RoW vector (identical in eval mode, 625x cheaper than the dense head).

        Returns:
            Tensor[B, 1, 63, 63]: logits, row-major from the 3969 channels.

        Raises:
            ValueError: if the RoW is off the response map.
        """
        s = self.config.mask_size
        h, w = out.mask_corr.shape[2:]
        if not (0 <= row < h and 0 <= col < w):
            raise ValueError(f"RoW (row={row}, col={col}) outside the {h}x{w} response map")
        if out.mask_logits is not None:
            logits = out.mask_logits[:, :, row, col]
        else:
            logits = self.mask_head.head(out.mask_corr[:, :, row : row + 1, col : col + 1])
            logits = logits[:, :, 0, 0]
        return logits.reshape(-1, 1, s, s)

    def refine_at(self, out: SearchOutputs, row: int, col: int) -> Tensor:
        """Refined 127x127 logits at RoW (row, col) (sharp model; paper Fig. 9).

        Returns:
            Tensor[B, 1, 127, 127]: logits before the sigmoid.

        Raises:
            ValueError: if the model has no refinement module or the RoW is off the map.
        """
        if self.refine is None:
            raise ValueError(f"the {self.config.name!r} model has no refinement module")
        return self.refine(out.features, out.mask_corr, row, col)

    # -- training ---------------------------------------------------------------------
    def forward(self, z: Tensor, x: Tensor, refine_all: bool = False) -> dict[str, Tensor]:
        """Training forward on a batch of pairs.

        Args:
            z (Tensor[B, 3, 127, 127]): exemplar crops.
            x (Tensor[B, 3, S, S]): search crops (255 for the base stage, 143 for refine).
            refine_all: also run refinement on every RoW (143 searches only).

        Returns:
            dict with ``score``, ``delta`` (three-branch), ``mask_logits`` (B, 3969, H, W),
            ``mask_corr`` and, with ``refine_all``, ``refine_logits`` (B*H*W, 1, 127, 127).
        """
        _check_crop(z, "exemplar z", None)
        _check_crop(x, "search x", None)
        ex = self.template(z)
        out = self.track(x, ex, mask_head=True)
        result = {"score": out.score, "mask_logits": out.mask_logits, "mask_corr": out.mask_corr}
        if out.delta is not None:
            result["delta"] = out.delta
        if refine_all:
            if self.refine is None:
                raise ValueError(f"the {self.config.name!r} model has no refinement module")
            result["refine_logits"] = self.refine.forward_all(out.features, out.mask_corr)
        return result


def build_model(name: str | ModelConfig = "sharp") -> SiamMask:
    """Build a SiamMask network from a preset name or a :class:`ModelConfig`.

    Presets: ``sharp`` (released, refinement; 21,482,052 parameters), ``base`` (released,
    63x63 masks; 18,816,735), ``paper`` (uncropped exemplar, 17x17 response), ``two_branch``
    (SiamMask-2B) and ``tiny`` (the same geometry, narrow: for tests).

    The model is returned in eval mode with freshly initialised weights; load weights with
    :func:`siammask_edu.load_released_checkpoint` or :func:`siammask_edu.load_checkpoint`.

    See book/01_siamese_tracking.py.
    """
    cfg = name if isinstance(name, ModelConfig) else model_config(name)
    return SiamMask(cfg).eval()


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (not buffers)."""
    return sum(p.numel() for p in model.parameters())


__all__ = ["SiamMask", "Exemplar", "SearchOutputs", "build_model", "count_parameters"]
