"""SiamMask's losses: L_mask (Eq. 3), L_sim, L_score, L_box; totals L_2B (Eq. 4), L_3B (Eq. 5).

Paper vs released (``released-implementation.md`` §5.5):

==========  ======================================  =======================================
term        paper                                   released code
==========  ======================================  =======================================
L_mask      Eq. 3: sum over positive RoWs of the    soft-margin mean over the pixels of all
            per-RoW mean of log(1 + e^{-c m})       positive RoWs, *including* the 0-label
                                                    padding pixels (each adds log 2)
L_score     SiamRPN cross-entropy                   0.5 * mean NLL(pos) + 0.5 * mean NLL(neg)
L_box       smooth L1 (SiamRPN / Faster R-CNN)      plain L1 summed over (dx, dy, dw, dh),
                                                    weight 1/#pos, divided by the batch size
weights     lambda1 = 32, lambda2 = lambda3 = 1     mask 36, score 1, box 1.2
==========  ======================================  =======================================

Every function is finite on empty positive sets (the term is 0 and still part of the graph),
zero-size boxes (the targets are clamped, see :mod:`siammask_edu.targets`) and all-zero
images.

See book/08_losses_targets.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

LOG2 = math.log(2.0)


def _zero(t: Tensor) -> Tensor:
    return t.sum() * 0.0  # 0 that keeps the graph (DDP needs every parameter used)


def upsample_mask_logits(logits: Tensor, mask_size: int = 63, out_size: int = 127) -> Tensor:
    """The mask head's per-RoW logits as 127x127 maps (released ``nn.UpsamplingBilinear2d``:
    bilinear, ``align_corners=True``).

    Args:
        logits (Tensor[N, mask_size**2]): 3969 logits of N RoWs, row-major 63x63.

    Returns:
        Tensor[N, 1, 127, 127].

    See book/08_losses_targets.py.
    """
    x = logits.reshape(-1, 1, mask_size, mask_size)
    return F.interpolate(x, size=(out_size, out_size), mode="bilinear", align_corners=True)


def mask_loss(logits: Tensor, labels: Tensor, reduction: str = "released") -> Tensor:
    """L_mask: per-pixel binary logistic loss over positive RoWs (paper Eq. 3).

    Args:
        logits (Tensor[N, 1, 127, 127]): mask logits m_n of the N positive RoWs.
        labels (Tensor[N, 1, 127, 127]): c_n in {+1, -1}; 0 marks the padding outside the
            search crop (released ``unfold(padding=32)``): it contributes log 2 and no
            gradient, but counts in the mean.
        reduction: ``"released"``: mean over all N*w*h pixels (``F.soft_margin_loss``);
            ``"paper"``: Eq. 3 as written, sum over RoWs of ``(1/wh) * sum_ij``, i.e.
            ``N`` times the released value (divide by the batch size outside for a per-pair
            loss).

    Returns:
        Tensor[] float32: 0 when N = 0.

    See book/08_losses_targets.py.
    """
    if logits.shape != labels.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} differ")
    if reduction not in ("released", "paper"):
        raise ValueError(f"reduction must be 'released' or 'paper', got {reduction!r}")
    if logits.numel() == 0:
        return _zero(logits)
    per_pixel = F.softplus(-labels * logits)  # log(1 + exp(-c m)), stable
    if reduction == "released":
        return per_pixel.mean()
    return per_pixel.flatten(1).mean(dim=1).sum()


def mask_iou(logits: Tensor, labels: Tensor, threshold: float = 0.0) -> Tensor:
    """IoU of each predicted RoW mask with its label (released ``iou_measure``).

    ``pred = logits > threshold`` (logit 0 = probability 0.5), ``gt = labels > 0``;
    IoU = sum(pred & gt) / sum(pred | gt); 1 when both are empty.

    Args:
        logits (Tensor[N, 1, H, W]), labels (Tensor[N, 1, H, W]).

    Returns:
        Tensor[N] float32 in [0, 1] (empty for N = 0).

    See book/08_losses_targets.py.
    """
    pred = logits.detach() > threshold
    gt = labels.detach() > 0
    inter = torch.logical_and(pred, gt).flatten(1).sum(1).float()
    union = torch.logical_or(pred, gt).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def score_loss(score: Tensor, labels: Tensor) -> Tensor:
    """L_score: balanced cross-entropy, 0.5 * mean(pos) + 0.5 * mean(neg) (released).

    Args:
        score (Tensor[B, 2k, n, n]): logits, layout ``[bg x k, fg x k]``.
        labels (Tensor[B, k, n, n]) int: 1 positive, 0 negative, -1 ignored.

    Returns:
        Tensor[]: an empty set contributes 0.

    See book/08_losses_targets.py.
    """
    b, c, h, w = score.shape
    k = c // 2
    logp = F.log_softmax(score.reshape(b, 2, k, h, w).float(), dim=1)  # (B, 2, k, n, n)
    loss = _zero(score)
    for cls, weight in ((1, 0.5), (0, 0.5)):
        sel = labels == cls
        if sel.any():
            loss = loss - weight * logp[:, cls][sel].mean()
    return loss


def box_loss(delta: Tensor, target: Tensor, weight: Tensor, kind: str = "l1",
             beta: float = 1.0 / 9.0) -> Tensor:
    """L_box: per-anchor regression loss, weighted, summed, divided by the batch size.

    Args:
        delta (Tensor[B, 4k, n, n]): predictions, layout ``[dx x k, dy x k, dw x k, dh x k]``.
        target (Tensor[B, 4, k, n, n]): targets (:func:`siammask_edu.targets.anchor_targets`).
        weight (Tensor[B, k, n, n]): 1/#pos on positives, else 0.
        kind: ``"l1"`` (released ``weight_l1_loss``) or ``"smooth_l1"`` (paper, via SiamRPN /
            Faster R-CNN; ``beta = 1/9`` is Faster R-CNN's RPN sigma = 3).

    Returns:
        Tensor[]: the per-image mean over positives, averaged over the batch (0 without
        positives; anchors of weight 0 never contribute, even with a non-finite target).

    See book/08_losses_targets.py.
    """
    b, c, h, w = delta.shape
    pred = delta.reshape(b, 4, c // 4, h, w).float()
    if kind == "l1":
        diff = (pred - target).abs()
    elif kind == "smooth_l1":
        diff = F.smooth_l1_loss(pred, target, reduction="none", beta=beta)
    else:
        raise ValueError(f"kind must be 'l1' or 'smooth_l1', got {kind!r}")
    per_anchor = diff.sum(dim=1)  # (B, k, n, n)
    per_anchor = torch.where(weight > 0, per_anchor * weight, torch.zeros_like(per_anchor))
    return per_anchor.sum() / b


def similarity_loss(score: Tensor, labels: Tensor, balanced: bool = True) -> Tensor:
    """L_sim: SiamFC's logistic loss on the 2B similarity map (Bertinetto et al. 2016, §2.2).

    ``l(y, v) = log(1 + exp(-y v))`` per RoW; ``balanced`` weights positives and negatives
    0.5 each (SiamFC's class-balanced training), else a plain mean.

    Args:
        score (Tensor[B, 1, n, n]): similarity logits.
        labels (Tensor[B, 1, n, n]): +1 / -1 (0 ignored).

    Returns:
        Tensor[].

    See book/08_losses_targets.py.
    """
    per = F.softplus(-labels * score.float())
    if not balanced:
        sel = labels != 0
        return per[sel].mean() if sel.any() else _zero(score)
    loss = _zero(score)
    for sign in (1, -1):
        sel = labels == sign
        if sel.any():
            loss = loss + 0.5 * per[sel].mean()
    return loss


@dataclass(frozen=True)
class LossWeights:
    """Weights and variants of the total loss.

    Attributes:
        mask: lambda1 (paper 32, released 36).
        score: lambda2 of Eq. 5 / weight of L_sim in Eq. 4 (1).
        box: lambda3 (paper 1, released 1.2).
        box_kind: ``"smooth_l1"`` (paper) or ``"l1"`` (released).
        mask_reduction: ``"paper"`` (Eq. 3 per pair, averaged over the batch) or
            ``"released"`` (mean over pixels of all positive RoWs).

    See book/08_losses_targets.py.
    """

    mask: float = 36.0
    score: float = 1.0
    box: float = 1.2
    box_kind: str = "l1"
    mask_reduction: str = "released"

    @classmethod
    def paper(cls) -> "LossWeights":
        """Eq. 4/5 with lambda1 = 32, lambda2 = lambda3 = 1, smooth L1, Eq. 3 as written."""
        return cls(mask=32.0, score=1.0, box=1.0, box_kind="smooth_l1", mask_reduction="paper")

    @classmethod
    def released(cls) -> "LossWeights":
        """Released base config: 1 / 1.2 / 36, plain L1, soft-margin mean."""
        return cls()

    @classmethod
    def refine(cls) -> "LossWeights":
        """Released refine stage: only the (refined) mask term, weight 36."""
        return cls(mask=36.0, score=0.0, box=0.0)


def _mask_term(mask_logits: Tensor, mask_labels: Tensor, weights: LossWeights,
               batch: int) -> Tensor:
    loss = mask_loss(mask_logits, mask_labels, weights.mask_reduction)
    if weights.mask_reduction == "paper":
        loss = loss / max(batch, 1)
    return loss


def loss_3b(score: Tensor, delta: Tensor, mask_logits: Tensor, targets: dict,
            weights: LossWeights | None = None) -> dict[str, Tensor]:
    """L_3B = lambda1 L_mask + lambda2 L_score + lambda3 L_box (paper Eq. 5).

    Args:
        score (Tensor[B, 2k, n, n]), delta (Tensor[B, 4k, n, n]): RPN outputs.
        mask_logits (Tensor[N, 1, 127, 127]): masks of the N positive RoWs.
        targets: ``label_cls (B, k, n, n)``, ``label_loc (B, 4, k, n, n)``,
            ``label_loc_weight (B, k, n, n)``, ``mask_labels (N, 1, 127, 127)``.

    Returns:
        dict of scalars: ``total``, ``score``, ``box``, ``mask`` (unweighted terms).

    See book/08_losses_targets.py.
    """
    weights = weights if weights is not None else LossWeights.released()
    b = score.shape[0]
    ls = score_loss(score, targets["label_cls"])
    lb = box_loss(delta, targets["label_loc"], targets["label_loc_weight"], weights.box_kind)
    lm = _mask_term(mask_logits, targets["mask_labels"], weights, b)
    total = weights.mask * lm + weights.score * ls + weights.box * lb
    return {"total": total, "score": ls, "box": lb, "mask": lm}


def loss_2b(similarity: Tensor, mask_logits: Tensor, targets: dict,
            weights: LossWeights | None = None) -> dict[str, Tensor]:
    """L_2B = lambda1 L_mask + lambda2 L_sim (paper Eq. 4).

    Args:
        similarity (Tensor[B, 1, n, n]): 2B similarity logits.
        mask_logits (Tensor[N, 1, 127, 127]): masks of the positive RoWs.
        targets: ``label_sim (B, 1, n, n)`` and ``mask_labels (N, 1, 127, 127)``.

    Returns:
        dict of scalars: ``total``, ``sim``, ``mask``.

    See book/08_losses_targets.py.
    """
    weights = weights if weights is not None else LossWeights.paper()
    lsim = similarity_loss(similarity, targets["label_sim"])
    lm = _mask_term(mask_logits, targets["mask_labels"], weights, similarity.shape[0])
    return {"total": weights.mask * lm + weights.score * lsim, "sim": lsim, "mask": lm}


__all__ = ["upsample_mask_logits", "mask_loss", "mask_iou", "score_loss", "box_loss",
           "similarity_loss", "LossWeights", "loss_3b", "loss_2b", "LOG2"]
