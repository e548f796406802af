"""L_mask (Eq. 3), L_score, L_box, L_sim, L_2B / L_3B and the RoW mask IoU."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from siammask_edu import losses
from siammask_edu.losses import LossWeights


def test_mask_loss_released_equals_soft_margin_and_paper_is_eq3():
    torch.manual_seed(0)
    logits = torch.randn(3, 1, 127, 127)
    labels = torch.randn(3, 1, 127, 127).sign()
    labels[:, :, :10] = 0  # zero-label padding
    rel = losses.mask_loss(logits, labels)
    assert torch.allclose(rel, F.soft_margin_loss(logits, labels))
    # Eq. 3: sum over RoWs of (1 / wh) sum_ij log(1 + exp(-c m))
    eq3 = sum((torch.log1p(torch.exp(-labels[n] * logits[n]))).sum() / 127**2 for n in range(3))
    assert torch.allclose(losses.mask_loss(logits, labels, "paper"), eq3, rtol=1e-5)
    assert torch.allclose(losses.mask_loss(logits, labels, "paper"), 3 * rel, rtol=1e-5)


def test_padding_pixels_add_log2_and_no_gradient():
    logits = torch.zeros(1, 1, 4, 4, requires_grad=True)
    labels = torch.zeros(1, 1, 4, 4)
    loss = losses.mask_loss(logits * 5.0, labels)
    assert math.isclose(float(loss.detach()), math.log(2), rel_tol=1e-6)
    loss.backward()
    assert torch.count_nonzero(logits.grad) == 0


def test_mask_loss_empty_and_extreme_values_are_finite():
    logits = torch.zeros(0, 1, 127, 127, requires_grad=True)
    loss = losses.mask_loss(logits, torch.zeros(0, 1, 127, 127))
    assert float(loss.detach()) == 0.0
    loss.backward()
    big = torch.full((1, 1, 8, 8), 1e4)
    assert torch.isfinite(losses.mask_loss(big, -torch.ones(1, 1, 8, 8)))
    with pytest.raises(ValueError, match="differ"):
        losses.mask_loss(big, torch.ones(1, 1, 4, 4))


def test_upsample_is_bilinear_align_corners():
    x = torch.arange(63 * 63, dtype=torch.float32).reshape(1, 63 * 63)
    up = losses.upsample_mask_logits(x)
    assert up.shape == (1, 1, 127, 127)
    assert up[0, 0, 0, 0] == 0 and up[0, 0, -1, -1] == 63 * 63 - 1  # corners kept
    assert torch.isclose(up[0, 0, 0, 2], torch.tensor(2 * 62 / 126))  # source x = 2 * 62/126


def test_mask_iou_uses_and_or():
    logits = torch.full((3, 1, 4, 4), -1.0)
    labels = -torch.ones(3, 1, 4, 4)
    logits[0, 0, :2] = 1  # pred 8 px
    labels[0, 0, 1:3] = 1  # gt 8 px, overlap 4 -> 4 / 12
    logits[1, 0] = 1
    labels[1, 0] = 1  # identical -> 1
    # RoW 2: both empty -> 1
    iou = losses.mask_iou(logits, labels)
    assert torch.allclose(iou, torch.tensor([4 / 12, 1.0, 1.0]))
    labels[2, 0, 0, 0] = 0  # padding is not foreground
    assert losses.mask_iou(logits, labels)[2] == 1.0
    assert losses.mask_iou(logits[:0], labels[:0]).numel() == 0


def test_score_loss_balanced():
    score = torch.zeros(1, 10, 2, 2)
    score[0, 5, 0, 0] = 3.0  # fg logit of anchor 0 at (0, 0)
    labels = -torch.ones(1, 5, 2, 2, dtype=torch.long)
    labels[0, 0, 0, 0] = 1
    labels[0, 1, 1, 1] = 0
    labels[0, 2, 1, 0] = 0
    pos = -F.log_softmax(torch.tensor([0.0, 3.0]), 0)[1]
    neg = -F.log_softmax(torch.tensor([0.0, 0.0]), 0)[0]
    assert torch.isclose(losses.score_loss(score, labels), 0.5 * pos + 0.5 * neg)
    labels[0, 0, 0, 0] = -1  # no positives: only the negative half
    assert torch.isclose(losses.score_loss(score, labels), 0.5 * neg)
    empty = losses.score_loss(score.requires_grad_(), -torch.ones_like(labels))
    assert float(empty.detach()) == 0.0
    empty.backward()


def test_box_loss_l1_and_smooth_l1():
    delta = torch.zeros(2, 20, 3, 3)
    target = torch.zeros(2, 4, 5, 3, 3)
    weight = torch.zeros(2, 5, 3, 3)
    target[0, :, 1, 2, 2] = torch.tensor([0.5, -0.5, 0.1, 2.0])
    weight[0, 1, 2, 2] = 1.0
    assert torch.isclose(losses.box_loss(delta, target, weight), torch.tensor(3.1 / 2))
    sl1 = F.smooth_l1_loss(torch.zeros(4), target[0, :, 1, 2, 2], reduction="sum", beta=1 / 9)
    assert torch.isclose(losses.box_loss(delta, target, weight, "smooth_l1"), sl1 / 2)
    # non-finite targets where the weight is 0 do not leak
    target[1] = float("inf")
    assert torch.isfinite(losses.box_loss(delta, target, weight))
    assert float(losses.box_loss(delta, target, torch.zeros_like(weight))) == 0.0
    with pytest.raises(ValueError):
        losses.box_loss(delta, target, weight, "l2")


def test_similarity_loss_balanced():
    score = torch.tensor([[[[2.0, -1.0], [0.0, 0.0]]]])
    labels = torch.tensor([[[[1.0, -1.0], [-1.0, -1.0]]]])
    pos = math.log1p(math.exp(-2.0))
    neg = (math.log1p(math.exp(-1.0)) + 2 * math.log(2)) / 3
    assert math.isclose(float(losses.similarity_loss(score, labels)), 0.5 * pos + 0.5 * neg,
                        rel_tol=1e-6)
    plain = (pos + 3 * neg) / 4
    assert math.isclose(float(losses.similarity_loss(score, labels, balanced=False)), plain,
                        rel_tol=1e-6)


def test_total_losses_and_presets():
    assert LossWeights.paper().mask == 32 and LossWeights.paper().box == 1
    assert (LossWeights.released().mask, LossWeights.released().score,
            LossWeights.released().box) == (36, 1, 1.2)
    torch.manual_seed(0)
    b = 2
    score, delta = torch.randn(b, 10, 25, 25), torch.randn(b, 20, 25, 25)
    labels = -torch.ones(b, 5, 25, 25, dtype=torch.long)
    labels[:, 2, 12, 12] = 1
    labels[:, 0, 0, :5] = 0
    t = {"label_cls": labels, "label_loc": torch.randn(b, 4, 5, 25, 25),
         "label_loc_weight": (labels == 1).float(),
         "mask_labels": torch.randn(2, 1, 127, 127).sign()}
    mlog = torch.randn(2, 1, 127, 127)
    for w in (LossWeights.released(), LossWeights.paper()):
        out = losses.loss_3b(score, delta, mlog, t, w)
        want = w.mask * out["mask"] + w.score * out["score"] + w.box * out["box"]
        assert torch.isclose(out["total"], want)
    paper = losses.loss_3b(score, delta, mlog, t, LossWeights.paper())
    rel = losses.loss_3b(score, delta, mlog, t, LossWeights.released())
    assert torch.isclose(paper["mask"], rel["mask"] * 2 / b)  # Eq. 3 per pair, batch mean
    sim = losses.loss_2b(torch.randn(b, 1, 25, 25), mlog,
                         {"label_sim": torch.randn(b, 1, 25, 25).sign(),
                          "mask_labels": t["mask_labels"]})
    assert torch.isclose(sim["total"], 32 * sim["mask"] + sim["sim"])


def test_all_zero_inputs_are_finite():
    z = torch.zeros(1, 10, 25, 25, requires_grad=True)
    out = losses.loss_3b(z, torch.zeros(1, 20, 25, 25), torch.zeros(0, 1, 127, 127),
                         {"label_cls": -torch.ones(1, 5, 25, 25, dtype=torch.long),
                          "label_loc": torch.zeros(1, 4, 5, 25, 25),
                          "label_loc_weight": torch.zeros(1, 5, 25, 25),
                          "mask_labels": torch.zeros(0, 1, 127, 127)})
    assert all(torch.isfinite(v) for v in out.values())
    out["total"].backward()
