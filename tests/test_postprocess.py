"""Tests of siammask_edu.postprocess: score layout, decoding, penalty, update, mask paste-back,
clamping, and the non-finite guard. (Bit-exact replay of the released runs:
test_tracker_equivalence.py.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from siammask_edu.anchors import anchor_index, anchors_for
from siammask_edu.config import TrackerConfig
from siammask_edu.geometry import search_region
from siammask_edu.postprocess import (
    box_polygon,
    change_penalty,
    clamp_state,
    decode_boxes,
    fg_probability,
    paste_mask,
    postprocess_step,
    select_anchor,
)

CFG = TrackerConfig.davis()
ANCHORS, WINDOW = anchors_for(CFG)


def logits_with_peak(a, r, c, value=8.0):
    score = torch.zeros(1, 10, 25, 25)
    score[0, 5 + a, r, c] = value  # fg channel of anchor a
    return score


def test_fg_probability_layout_bg_first():
    p = fg_probability(logits_with_peak(3, 7, 11))
    assert p.shape == (3125,) and p.dtype == np.float32
    n = anchor_index(3, 7, 11)
    assert int(np.argmax(p)) == n
    assert p[n] == pytest.approx(1 / (1 + np.exp(-8.0)), rel=1e-6)
    assert np.allclose(np.delete(p, n), 0.5)
    s = torch.zeros(1, 10, 25, 25)
    s[0, 2, 0, 0] = 8.0  # background channel of anchor 2
    assert fg_probability(s)[anchor_index(2, 0, 0)] < 0.01


def test_decode_boxes():
    d = torch.zeros(1, 20, 25, 25)
    assert np.array_equal(decode_boxes(d, ANCHORS), ANCHORS.T)
    d[0, 0 + 1, 3, 4] = 0.5   # dx of anchor 1
    d[0, 15 + 1, 3, 4] = np.log(2.0)  # dh of anchor 1
    b = decode_boxes(d, ANCHORS)
    n = anchor_index(1, 3, 4)
    assert b.dtype == np.float32
    assert b[:, n] == pytest.approx([ANCHORS[n, 0] + 0.5 * 88, ANCHORS[n, 1], 88, 2 * 40])


def test_change_penalty():
    boxes = np.zeros((4, 3), np.float32)
    boxes[2:] = np.array([[50, 100, 50], [25, 50, 50]], np.float32)
    pen = change_penalty(boxes, (50.0, 25.0), 0.04)
    assert pen.dtype == np.float64
    assert pen[0] == pytest.approx(1.0)
    assert pen[1] < 1 and pen[2] < 1
    # twice as large and half as large are penalised alike (change = max(t, 1/t))
    p_half = change_penalty(boxes, (100.0, 50.0), 0.04)[0]
    assert p_half == pytest.approx(pen[1], rel=1e-6)


def test_select_anchor_update_rule():
    cfg = CFG.replace(window_influence=0.0, lr=0.5)
    score = logits_with_peak(2, 12, 12)
    delta = torch.zeros(1, 20, 25, 25)
    delta[0, 2, 12, 12] = 0.25  # dx of anchor 2 (64 px wide): +16 crop px
    size = np.array([64.0, 64.0])
    scale_x, _ = search_region(size)
    dec = select_anchor(score, delta, ANCHORS, WINDOW, (100.0, 80.0), size, scale_x, cfg)
    assert (dec.anchor, dec.row, dec.col) == (2, 12, 12)
    assert dec.center[0] == pytest.approx(100 + 16 / scale_x)  # position is not damped
    assert dec.center[1] == pytest.approx(80.0)
    lr = dec.penalty * dec.score * 0.5
    assert dec.size[0] == pytest.approx(64 * (1 - lr) + 64 / scale_x * lr)
    assert dec.margin > 0 and dec.center.dtype == np.float64


def test_window_pulls_to_the_centre():
    score = torch.zeros(1, 10, 25, 25)
    delta = torch.zeros(1, 20, 25, 25)
    dec = select_anchor(score, delta, ANCHORS, WINDOW, (100.0, 80.0), (64.0, 64.0),
                        127 / 128.0, CFG)
    assert (dec.row, dec.col) == (12, 12)


def test_paste_mask_closed_form():
    H, W = 120, 160
    m = 63
    ramp = np.tile(np.arange(m, dtype=np.float32) / m, (m, 1))  # value = u / m
    crop_box = [10.0, 20.0, 255.0, 255.0]  # s = S / 255 = 1
    row, col = 12, 12
    out = paste_mask(ramp, crop_box, row, col, (H, W), CFG)
    assert out.shape == (H, W) and out.dtype == np.float32
    sub_x = 10.0 + (col - 4) * 8
    sub_y = 20.0 + (row - 4) * 8
    sub_w = 127.0
    # image x = (W - 1)/W * (sub_x + u * sub_w / m)  =>  u = (x * W / (W - 1) - sub_x) * m / sub_w
    for x in (80, 100, 120):
        u = (x * W / (W - 1) - sub_x) * m / sub_w
        assert out[90, x] == pytest.approx(u / m, abs=2e-3)
    assert out[0, 0] == -1.0 and out[H - 1, 0] == -1.0  # outside the window: border -1
    y_top = (H - 1) / H * sub_y
    # a mask pixel spans ~2 image pixels (127 / 63): rows within 2 px of the edge are blends
    assert out[int(y_top) - 3, 100] == -1.0 and out[int(y_top) + 3, 100] >= 0
    assert -1.0 < out[int(y_top), 100] < 0.05


def test_clamp_and_box_polygon():
    c, s = clamp_state((-5.0, 500.0), (3.0, 1e9), (480, 640))
    assert c.tolist() == [0.0, 480.0] and s.tolist() == [10.0, 480.0]
    assert box_polygon((10.0, 20.0), (4.0, 6.0)).tolist() == [[8, 17], [12, 17], [12, 23],
                                                             [8, 23]]


def step(score, delta, mask=None, size=(60.0, 40.0), center=(150.0, 100.0), cfg=CFG):
    def mask_fn(r, c):
        return mask if mask is not None else torch.full((1, 1, 127, 127), 3.0)
    return postprocess_step(score, delta, mask_fn, center, size, (240, 320), cfg, ANCHORS,
                            WINDOW)


def test_step_outputs_and_fallback_polygon():
    score, delta = logits_with_peak(2, 12, 12), torch.zeros(1, 20, 25, 25)
    out = step(score, delta)
    assert out.mask.dtype == bool and out.mask.shape == (240, 320)
    assert out.polygon_source == "mask" and out.polygon.dtype == np.float32
    empty = step(score, delta, mask=torch.full((127, 127), -5.0))
    assert empty.polygon_source == "box" and not empty.mask.any()
    d = empty.decision
    assert np.allclose(empty.polygon, box_polygon(d.center, d.size))  # unclamped box
    assert step(score, delta, mask=torch.full((127, 127), 3.0), cfg=CFG.replace(
        box_strategy="minmax")).polygon_source == "mask"


@pytest.mark.parametrize("kind", ["nan_score", "nan_delta", "inf_dw", "all_nan"])
def test_non_finite_network_output_keeps_the_previous_state(kind):
    score, delta = logits_with_peak(2, 12, 12), torch.zeros(1, 20, 25, 25)
    if kind == "nan_score":
        score[:] = float("nan")
    elif kind == "nan_delta":
        delta[0, 2, 12, 12] = float("nan")
    elif kind == "inf_dw":
        delta[0, 10:15] = float("inf")
    else:
        score[:] = float("nan")
        delta[:] = float("nan")
    out = step(score, delta, mask=torch.full((127, 127), float("nan")))
    assert out.kept_previous
    assert out.center.tolist() == [150.0, 100.0] and out.size.tolist() == [60.0, 40.0]
    assert np.all(np.isfinite(out.polygon)) and out.decision.score == 0.0


def test_huge_finite_box_is_clamped():
    score, delta = logits_with_peak(2, 12, 12), torch.zeros(1, 20, 25, 25)
    delta[0, 0:10] = 1e30  # dx, dy: the centre moves ~1e32 px, finite
    out = step(score, delta, mask=torch.full((127, 127), -9.0))
    assert not out.kept_previous and out.polygon_source == "box"
    assert out.center.tolist() == [320.0, 240.0]
    assert np.all(np.isfinite(out.polygon))
    delta[0, 10:20] = 80.0  # exp(80) ~ 5e34 px: the penalty vanishes, so does lr'
    out = step(score, delta, mask=torch.full((127, 127), -9.0))
    assert np.all(np.isfinite(out.size)) and np.all(out.size <= [320.0, 240.0])
