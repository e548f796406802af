"""Anchor labels, regression targets, negative pairs, SiamFC labels and per-RoW mask patches."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from siammask_edu import targets
from siammask_edu.anchors import anchor_index


def rng():
    return np.random.default_rng(0)


def test_crop_anchors_geometry():
    a = targets.crop_anchors()
    assert a.shape == (5, 25, 25, 4)
    assert tuple(a[2, 12, 12]) == (127.0, 127.0, 64.0, 64.0)  # centre RoW = crop centre
    assert a[0, 0, 0, 0] == 31 and a[0, 0, 24, 0] == 31 + 8 * 24
    assert a[0, 3, 0, 1] == 31 + 8 * 3  # row index moves y
    a3 = targets.crop_anchors(3, 143)
    assert tuple(a3[2, 1, 1, :2]) == (71.0, 71.0)


def test_iou():
    a = np.array([[10.0, 10.0, 20.0, 20.0]])  # cx, cy, w, h -> [0, 20]
    assert targets.box_iou_anchors(a, np.array([0, 0, 20, 20]))[0] == 1.0
    assert abs(targets.box_iou_anchors(a, np.array([10, 0, 30, 20]))[0] - 1 / 3) < 1e-6
    assert targets.box_iou_anchors(a, np.array([5, 5, 5, 5]))[0] == 0.0


def test_positive_pair_labels_and_deltas():
    anchors = targets.crop_anchors()
    box = np.array([127 - 32, 127 - 32, 127 + 32, 127 + 32], np.float32)  # 64x64 at centre
    labels, deltas, weights = targets.anchor_targets(box, anchors, rng())
    assert labels.shape == (5, 25, 25) and deltas.shape == (4, 5, 25, 25)
    pos = labels == 1
    assert 1 <= pos.sum() <= 16 and (labels >= 0).sum() <= 64
    assert labels[2, 12, 12] == 1  # the perfect anchor
    iou = targets.box_iou_anchors(anchors, box)
    assert (iou[pos] >= 0.6).all() and (iou[labels == 0] < 0.3).all()
    np.testing.assert_allclose(weights[pos], 1.0 / pos.sum())
    assert weights[~pos].sum() == 0
    np.testing.assert_allclose(deltas[:, 2, 12, 12], 0, atol=1e-6)
    # dx of an anchor one RoW to the left: (127 - 119) / 64
    np.testing.assert_allclose(deltas[0, 2, 12, 11], 8 / 64, rtol=1e-6)
    np.testing.assert_allclose(deltas[2, 0, 12, 12], np.log(64 / 104), rtol=1e-6)


def test_many_positives_are_subsampled_to_16():
    anchors = targets.crop_anchors()
    # a box that many anchors overlap well: 64x64 boxes at every cell, union over a region
    box = np.array([100, 100, 164, 164], np.float32)
    big = np.concatenate([anchors, anchors + np.array([0.5, 0, 0, 0], np.float32)])
    labels, _, weights = targets.anchor_targets(box, big, rng(), pos_thr=0.3, neg_thr=0.1)
    assert (labels == 1).sum() == 16 and (labels >= 0).sum() == 64
    np.testing.assert_allclose(weights.sum(), 1.0, rtol=1e-6)


def test_negative_pair_rule():
    anchors = targets.crop_anchors()
    labels, deltas, weights = targets.anchor_targets(None, anchors, rng(), negative=True)
    assert (labels == 1).sum() == 0 and (labels == 0).sum() == 16
    a, r, c = np.nonzero(labels == 0)
    assert r.min() >= 9 and r.max() <= 15 and c.min() >= 9 and c.max() <= 15
    assert weights.sum() == 0 and deltas.sum() == 0


def test_zero_size_box_is_finite():
    anchors = targets.crop_anchors()
    labels, deltas, weights = targets.anchor_targets(np.array([127, 127, 127, 127.0]), anchors,
                                                     rng())
    assert np.isfinite(deltas).all() and (labels == 1).sum() == 0 and weights.sum() == 0


def test_row_weights():
    labels = -np.ones((5, 25, 25), np.int64)
    labels[3, 4, 7] = 1
    labels[1, 0, 0] = 0
    w = targets.row_weights(labels)
    assert w.shape == (25, 25) and w.sum() == 1 and w[4, 7] == 1
    assert torch.equal(targets.row_weights(torch.from_numpy(labels[None])),
                       torch.from_numpy(w[None]))


def test_siamfc_labels():
    lab = targets.siamfc_labels((127.0, 127.0))
    assert lab.shape == (1, 25, 25) and lab[0, 12, 12] == 1
    assert lab[0, 12, 14] == 1 and lab[0, 12, 15] == -1  # 16 px = 2 RoWs
    assert (lab == 1).sum() == 13  # disc of radius 2 cells
    assert (targets.siamfc_labels(None) == -1).all()


def test_mask_patches_equal_unfold_255():
    torch.manual_seed(0)
    label = torch.where(torch.rand(2, 1, 255, 255) > 0.5, 1.0, -1.0)
    full = targets.mask_patches_unfold(label)
    assert full.shape == (2, 625, 127 * 127)
    rows = torch.tensor([[0, 0, 0], [1, 12, 12], [0, 24, 3], [1, 5, 24]])
    got = targets.mask_patches(label, rows)
    for i, (b, r, c) in enumerate(rows.tolist()):
        assert torch.equal(got[i, 0].flatten(), full[b, r * 25 + c])
    # padding geometry: RoW (0, 0) covers [-32, 95): 32 zero rows/columns, then label
    assert (got[0, 0, :32] == 0).all() and (got[0, 0, :, :32] == 0).all()
    assert torch.equal(got[0, 0, 32:, 32:], label[0, 0, :95, :95])
    assert torch.equal(got[1, 0], label[1, 0, 64:191, 64:191])  # centre RoW: [64, 191)


def test_mask_patches_143_refine_geometry():
    label = torch.randn(1, 1, 143, 143).sign()
    full = targets.mask_patches_unfold(label)
    assert full.shape == (1, 9, 127 * 127)
    rows = targets.positive_rows(torch.ones(1, 3, 3))
    got = targets.mask_patches(label, rows)
    assert got.shape == (9, 1, 127, 127)
    assert torch.equal(got.reshape(9, -1), full[0])
    assert torch.equal(got[8, 0], label[0, 0, 16:143, 16:143])
    assert targets.mask_patches(label, rows[:0]).shape == (0, 1, 127, 127)


def test_anchor_index_matches_label_layout():
    # labels (k, n, n) flatten in the tracker's flat order a*625 + r*25 + c
    labels = np.zeros((5, 25, 25))
    labels[3, 7, 9] = 1
    assert int(np.flatnonzero(labels.reshape(-1))[0]) == anchor_index(3, 7, 9)
    assert F.unfold(torch.zeros(1, 1, 255, 255), 127, padding=32, stride=8).shape[-1] == 625
