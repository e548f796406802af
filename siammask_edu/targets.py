"""Training targets: anchor labels and box deltas, SiamFC labels, per-RoW mask patches.

Everything here is in **search-crop pixels** (0..S-1, S = 255 for the base stage, 143 for
the refine stage), boxes as corners ``(x1, y1, x2, y2)`` with no ``+1``. The RoW grid is the
tracker's: RoW (r, c) of an ``n x n`` map is centred on crop pixel ``(S // 2) + 8 (c - n // 2)``
(255: ``8c + 31``; 143: ``8c + 63``), and its mask covers ``[8r - 32, 8r + 95)`` of a 255
crop (``[8r, 8r + 127)`` of a 143 crop).

Released rules (``released-implementation.md`` §5.4, ``AnchorTargetLayer``):

* positives: IoU >= 0.6 (paper: "at least 0.6"; the released code uses ``>``), at most 16;
  negatives: IoU < 0.3, at most ``64 - #pos``; everything else ignored (-1);
* regression targets ``((tcx - acx)/aw, (tcy - acy)/ah, log(tw/aw), log(th/ah))`` for every
  anchor, weight ``1/#pos`` on positives;
* negative pairs: only anchors of the central 7x7 RoWs are candidates, 16 negatives, no
  positives;
* mask weight of a RoW = 1 iff one of its anchors is positive (and the pair is positive and
  has a mask).

See book/08_losses_targets.py.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .anchors import generate_anchors

RATIOS = (0.33, 0.5, 1.0, 2.0, 3.0)


def crop_anchors(score_size: int = 25, crop_size: int = 255, stride: int = 8,
                 ratios=RATIOS, scales=(8.0,)) -> np.ndarray:
    """The tracker's anchor table moved to crop coordinates (released ``generate_all_anchors``
    with ``im_c = crop_size // 2``).

    Returns:
        np.ndarray[k, n, n, 4] float32: ``(cx, cy, w, h)`` in crop pixels; for 255 and
        n = 25 the centres are ``31 + 8c``.

    See book/08_losses_targets.py.
    """
    table = generate_anchors(score_size, stride, ratios, scales)  # (k*n*n, 4), centre-relative
    table = table.reshape(-1, score_size, score_size, 4).copy()
    table[..., :2] += crop_size // 2
    return table


def box_iou_anchors(anchors: np.ndarray, box: np.ndarray) -> np.ndarray:
    """IoU of every anchor with one corner box (released: corners, no ``+1``).

    Args:
        anchors (np.ndarray[..., 4]): ``(cx, cy, w, h)``.
        box (np.ndarray[4]): ``(x1, y1, x2, y2)``.

    Returns:
        np.ndarray[...] float32 in [0, 1]; 0 for a zero-area box.

    See book/08_losses_targets.py.
    """
    ax1 = anchors[..., 0] - anchors[..., 2] / 2
    ay1 = anchors[..., 1] - anchors[..., 3] / 2
    ax2 = anchors[..., 0] + anchors[..., 2] / 2
    ay2 = anchors[..., 1] + anchors[..., 3] / 2
    iw = np.clip(np.minimum(ax2, box[2]) - np.maximum(ax1, box[0]), 0, None)
    ih = np.clip(np.minimum(ay2, box[3]) - np.maximum(ay1, box[1]), 0, None)
    inter = iw * ih
    area_b = max(float(box[2] - box[0]), 0.0) * max(float(box[3] - box[1]), 0.0)
    union = anchors[..., 2] * anchors[..., 3] + area_b - inter
    return (inter / np.maximum(union, 1e-12)).astype(np.float32)


def anchor_targets(box: np.ndarray, anchors: np.ndarray, rng: np.random.Generator,
                   negative: bool = False, pos_thr: float = 0.6, neg_thr: float = 0.3,
                   num_pos: int = 16, num_total: int = 64, num_neg_pair: int = 16
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, box deltas and regression weights of one search crop.

    Args:
        box (np.ndarray[4]): target ``(x1, y1, x2, y2)`` in crop pixels (ignored for
            negative pairs).
        anchors (np.ndarray[k, n, n, 4]): :func:`crop_anchors`.
        rng: the sampler's generator (subsampling of positives/negatives).
        negative: a negative pair (template and search show different objects).
        pos_thr, neg_thr: IoU thresholds (0.6 / 0.3).
        num_pos, num_total: at most 16 positives and 64 labelled anchors.
        num_neg_pair: negatives sampled from the central 7x7 RoWs of a negative pair (16).

    Returns:
        ``(labels, deltas, weights)``: ``np.ndarray[k, n, n]`` int64 in {1, 0, -1};
        ``np.ndarray[4, k, n, n]`` float32 (dx, dy, dw, dh), finite also for a zero-size
        box; ``np.ndarray[k, n, n]`` float32, ``1/#pos`` on positives else 0.

    See book/08_losses_targets.py.
    """
    k, n = anchors.shape[0], anchors.shape[1]
    labels = np.full((k, n, n), -1, dtype=np.int64)
    deltas = np.zeros((4, k, n, n), dtype=np.float32)
    weights = np.zeros((k, n, n), dtype=np.float32)
    if negative:
        c, r = n // 2, 3
        cand = np.zeros((k, n, n), dtype=bool)
        cand[:, max(0, c - r):c + r + 1, max(0, c - r):c + r + 1] = True
        idx = np.flatnonzero(cand)
        pick = rng.choice(idx, size=min(num_neg_pair, idx.size), replace=False)
        labels.reshape(-1)[pick] = 0
        return labels, deltas, weights
    box = np.asarray(box, dtype=np.float64)
    tw = max(box[2] - box[0], 1e-3)  # a zero-size box keeps finite log targets
    th = max(box[3] - box[1], 1e-3)
    tcx, tcy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    acx, acy, aw, ah = (anchors[..., i] for i in range(4))
    deltas[0] = (tcx - acx) / aw
    deltas[1] = (tcy - acy) / ah
    deltas[2] = np.log(tw / aw)
    deltas[3] = np.log(th / ah)
    iou = box_iou_anchors(anchors, box)
    pos = np.flatnonzero(iou >= pos_thr)
    neg = np.flatnonzero(iou < neg_thr)
    if pos.size > num_pos:
        pos = rng.choice(pos, size=num_pos, replace=False)
    n_neg = num_total - pos.size
    if neg.size > n_neg:
        neg = rng.choice(neg, size=n_neg, replace=False)
    labels.reshape(-1)[neg] = 0
    labels.reshape(-1)[pos] = 1
    if pos.size:
        weights.reshape(-1)[pos] = 1.0 / pos.size
    return labels, deltas, weights


def row_weights(labels: np.ndarray | Tensor):
    """Mask weight per RoW: 1 where one of the k anchors is positive (released
    ``label_mask_weight``: max over anchors).

    Args:
        labels: ``[k, n, n]`` or ``[B, k, n, n]`` in {1, 0, -1}.

    Returns:
        same type, ``[n, n]`` / ``[B, n, n]``, float32 in {0, 1}.

    See book/08_losses_targets.py.
    """
    if isinstance(labels, Tensor):
        return (labels == 1).any(dim=-3).float()
    return (labels == 1).any(axis=-3).astype(np.float32)


def siamfc_labels(center: tuple[float, float] | None, score_size: int = 25,
                  crop_size: int = 255, stride: int = 8, radius: float = 16.0) -> np.ndarray:
    """SiamFC labels for the 2B similarity map (Bertinetto et al. 2016, §2.2).

    +1 for RoWs whose centre lies within ``radius`` crop pixels of the target centre, -1
    elsewhere (all -1 for a negative pair, ``center=None``). SiamFC: R = 16 px at stride 8.

    Returns:
        np.ndarray[1, n, n] float32 in {+1, -1}.

    See book/08_losses_targets.py.
    """
    off = crop_size // 2 + stride * (np.arange(score_size) - score_size // 2)
    if center is None:
        return -np.ones((1, score_size, score_size), np.float32)
    dy = (off[:, None] - center[1]) ** 2
    dx = (off[None, :] - center[0]) ** 2
    return np.where(dx + dy <= radius**2, 1.0, -1.0).astype(np.float32)[None]


def mask_geometry(crop_size: int) -> tuple[int, int, int]:
    """``(kernel, stride, padding)`` of the per-RoW mask patches: ``(127, 8, 32)`` for a 255
    search (25x25 patches ``[8r-32, 8r+95)``), ``(127, 8, 0)`` for a 143 search (3x3).

    See book/08_losses_targets.py.
    """
    return (127, 8, 32) if crop_size == 255 else (127, 8, 0)


def mask_patches_unfold(label: Tensor, crop_size: int | None = None) -> Tensor:
    """Every RoW's mask patch with ``F.unfold`` (the released code, memory-hungry).

    Args:
        label (Tensor[B, 1, S, S]): float, +1 object, -1 background.

    Returns:
        Tensor[B, n*n, 127*127]: patch of RoW ``r*n + c``; pixels in the zero padding are 0.

    See book/08_losses_targets.py.
    """
    k, s, p = mask_geometry(crop_size or label.shape[-1])
    return F.unfold(label, (k, k), padding=p, stride=s).transpose(1, 2)


def mask_patches(label: Tensor, rows: Tensor, crop_size: int | None = None) -> Tensor:
    """The mask patches of selected RoWs only (same values as :func:`mask_patches_unfold`).

    Args:
        label (Tensor[B, 1, S, S]): float in {+1, -1}.
        rows (Tensor[N, 3] int64): ``(b, r, c)`` of the RoWs (e.g. the positive ones).

    Returns:
        Tensor[N, 1, 127, 127]: labels in {+1, -1}, 0 in the padding.

    See book/08_losses_targets.py.
    """
    k, s, p = mask_geometry(crop_size or label.shape[-1])
    padded = F.pad(label, [p, p, p, p])
    out = [padded[b, :, s * r:s * r + k, s * c:s * c + k] for b, r, c in rows.tolist()]
    if not out:
        return label.new_zeros((0, 1, k, k))
    return torch.stack(out)


def positive_rows(mask_weight: Tensor) -> Tensor:
    """``(b, r, c)`` of the RoWs with mask weight 1: ``Tensor[N, 3]`` int64 (row-major).

    See book/08_losses_targets.py.
    """
    return torch.nonzero(mask_weight == 1)


__all__ = ["crop_anchors", "box_iou_anchors", "anchor_targets", "row_weights", "siamfc_labels",
           "mask_geometry", "mask_patches_unfold", "mask_patches", "positive_rows"]
