"""Tests of siammask_edu.geometry: box conventions, context sizes, the released crop."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from siammask_edu.geometry import (
    as_bgr_uint8,
    context_size,
    crop_subwindow,
    cxcywh_to_xywh,
    exemplar_crop_size,
    search_region,
    vot_polygon_to_cxcywh,
    xywh_to_cxcywh,
)


def coded_frame(h=60, w=80):
    """Channel 0 = column index, channel 1 = row index, channel 2 = 200."""
    f = np.zeros((h, w, 3), np.uint8)
    f[..., 0] = np.arange(w)[None, :]
    f[..., 1] = np.arange(h)[:, None]
    f[..., 2] = 200
    return f


def test_box_conversions_roundtrip_with_continuous_centre():
    assert xywh_to_cxcywh((10, 20, 30, 40)) == (25.0, 40.0, 30.0, 40.0)
    assert cxcywh_to_xywh((25, 40, 30, 40)) == (10.0, 20.0, 30.0, 40.0)
    assert xywh_to_cxcywh((0, 0, 5, 5))[:2] == (2.5, 2.5)  # not pysot's (w - 1) / 2


def test_context_size_formula():
    w, h = 383.0, 312.0
    p = 0.5 * (w + h)
    assert context_size((w, h)) == pytest.approx(math.sqrt((w + p) * (h + p)), rel=1e-15)
    assert exemplar_crop_size((w, h)) == round(math.sqrt((w + p) * (h + p)))


def test_search_region_scale_and_side():
    size = (100.0, 50.0)
    s_z = context_size(size)
    scale_x, S = search_region(size)
    assert scale_x == pytest.approx(127 / s_z, rel=1e-15)
    assert S == round(s_z * 255 / 127)
    assert isinstance(S, int)


def test_crop_spans_released_pixels_without_resize():
    # side 5 at cx = 100 covers 97..101 (c = (5 + 1) / 2 = 3): centred ~1 px up-left.
    f = coded_frame(200, 200)
    patch = crop_subwindow(f, (100.0, 50.0), 5, 5, (0, 0, 0), out="numpy")
    assert patch.shape == (5, 5, 3) and patch.dtype == np.uint8
    assert patch[0, :, 0].tolist() == [97, 98, 99, 100, 101]
    assert patch[:, 0, 1].tolist() == [47, 48, 49, 50, 51]


def test_crop_rounding_half_to_even_vs_half_up():
    f = coded_frame(50, 50)
    # cx - c = 5.5 - 3 = 2.5: Python round -> 2 (even), pysot floor(x + .5) -> 3
    a = crop_subwindow(f, (5.5, 20.0), 5, 5, (0, 0, 0), out="numpy")
    b = crop_subwindow(f, (5.5, 20.0), 5, 5, (0, 0, 0), rounding="half_up", out="numpy")
    assert a[0, 0, 0] == 2 and b[0, 0, 0] == 3
    # 3.5 - 3 = 0.5 -> 0 (half to even) and 1 (half up); 6.5 - 3 = 3.5 -> 4 for both
    assert crop_subwindow(f, (3.5, 20.0), 5, 5, (0, 0, 0), out="numpy")[0, 0, 0] == 0
    assert crop_subwindow(f, (6.5, 20.0), 5, 5, (0, 0, 0), out="numpy")[0, 0, 0] == 4


def test_crop_padding_uses_truncated_mean_colour():
    f = coded_frame(40, 40)
    patch = crop_subwindow(f, (1.0, 1.0), 9, 9, (127.9, 3.99, 250.5), out="numpy")
    # xmin = ymin = round(1 - 5) = -4: rows/cols 0..3 are padding
    assert patch[0, 0].tolist() == [127, 3, 250]
    assert patch[:4, :, :].reshape(-1, 3).tolist() == [[127, 3, 250]] * 36
    assert patch[4, 4].tolist() == [0, 0, 200]  # frame pixel (0, 0)
    # bottom-right padding as well: xmin = round(39 - 5) = 34, xmax = 42 > 39
    patch = crop_subwindow(f, (39.0, 39.0), 9, 9, (1, 2, 3), out="numpy")
    assert patch[-1, -1].tolist() == [1, 2, 3] and patch[4, 4].tolist() == [38, 38, 200]


def test_crop_wholly_outside_frame_is_padding():
    f = coded_frame(30, 30)
    patch = crop_subwindow(f, (500.0, -300.0), 7, 7, (9, 8, 7), out="numpy")
    assert (patch == np.array([9, 8, 7], np.uint8)).all()


def test_crop_resize_is_opencv_linear_on_uint8():
    rng = np.random.default_rng(0)
    f = rng.integers(0, 256, (100, 120, 3), dtype=np.uint8)
    out = crop_subwindow(f, (60.0, 50.0), 31, 41, (0, 0, 0))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    assert tuple(out.shape) == (1, 3, 31, 31)
    xmin = round(60.0 - 21)
    ymin = round(50.0 - 21)
    ref = cv2.resize(f[ymin:ymin + 41, xmin:xmin + 41], (31, 31), interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(out[0].numpy().transpose(1, 2, 0), ref.astype(np.float32))


def test_crop_rejects_bad_input():
    with pytest.raises(ValueError, match="uint8"):
        crop_subwindow(np.zeros((10, 10, 3), np.float32), (5, 5), 5, 5, (0, 0, 0))
    with pytest.raises(ValueError, match="rounding"):
        crop_subwindow(np.zeros((10, 10, 3), np.uint8), (5, 5), 5, 5, (0, 0, 0), rounding="x")
    with pytest.raises(ValueError, match=">= 1"):
        crop_subwindow(np.zeros((10, 10, 3), np.uint8), (5, 5), 5, 0, (0, 0, 0))


def test_vot_polygon_rule_matches_released_init_of_bag():
    # first line of vot/bag/groundtruth.txt and the released get_axis_aligned_bbox result
    # (fixtures README: target_pos / target_sz of the bag run)
    gt0 = [334.02, 128.36, 438.19, 188.78, 396.39, 260.83, 292.23, 200.41]
    cx, cy, w, h = vot_polygon_to_cxcywh(gt0)
    assert (cx, cy) == pytest.approx((365.2075, 194.595), abs=1e-12)
    assert (w, h) == pytest.approx((106.13089774126823, 96.41442877353934), abs=1e-12)


def test_vot_polygon_rule_axis_aligned_and_errors():
    cx, cy, w, h = vot_polygon_to_cxcywh([10, 20, 40, 20, 40, 60, 10, 60])
    assert (cx, cy, w, h) == pytest.approx((25, 40, 31, 41))  # VOT "+1"
    assert vot_polygon_to_cxcywh([10, 20, 30, 40]) == (25.0, 40.0, 30.0, 40.0)
    with pytest.raises(ValueError):
        vot_polygon_to_cxcywh([1, 2, 3])
    with pytest.raises(ValueError):
        vot_polygon_to_cxcywh([0, 0, 0, 0, 0, 0, 0, float("nan")])
    with pytest.raises(ValueError, match="degenerate"):
        vot_polygon_to_cxcywh([5, 5, 5, 5, 5, 5, 5, 5])


def _released_crop(im, pos, model_sz, original_sz, avg_chans):
    """The released get_subwindow_tracking, written out: pad the whole frame, then cut."""
    sz = original_sz
    c = (sz + 1) / 2
    xmin, ymin = round(pos[0] - c), round(pos[1] - c)
    xmax, ymax = xmin + sz - 1, ymin + sz - 1
    H, W = im.shape[:2]
    left, top = max(0, -xmin), max(0, -ymin)
    right, bottom = max(0, xmax - W + 1), max(0, ymax - H + 1)
    xmin, xmax, ymin, ymax = xmin + left, xmax + left, ymin + top, ymax + top
    if any([top, bottom, left, right]):
        te = np.zeros((H + top + bottom, W + left + right, 3), np.uint8)
        te[top:top + H, left:left + W, :] = im
        if top:
            te[0:top, left:left + W, :] = avg_chans
        if bottom:
            te[H + top:, left:left + W, :] = avg_chans
        if left:
            te[:, 0:left, :] = avg_chans
        if right:
            te[:, W + left:, :] = avg_chans
        patch = te[ymin:ymax + 1, xmin:xmax + 1, :]
    else:
        patch = im[ymin:ymax + 1, xmin:xmax + 1, :]
    if model_sz != sz:
        patch = cv2.resize(patch, (model_sz, model_sz))
    return patch


def test_crop_equals_the_released_padding_bit_for_bit():
    """Our crop pads only the in-frame part of the patch; the released code pads the whole
    frame."""
    rng = np.random.default_rng(0)
    im = rng.integers(0, 256, (61, 83, 3), dtype=np.uint8)
    avg = im.mean(axis=(0, 1))
    for _ in range(300):
        pos = rng.uniform(-40, 120, 2)
        sz = int(rng.integers(1, 140))
        for model_sz in (sz, 127, 255):
            got = crop_subwindow(im, pos, model_sz, sz, avg, out="numpy")
            assert np.array_equal(got, _released_crop(im, pos, model_sz, sz, avg))


def test_as_bgr_uint8_is_the_channel_reversal_for_every_layout():
    """OpenCV's swap (contiguous RGB / RGBA) and the numpy path (views, grayscale) give
    the bytes of ``frame[..., 2::-1]``, contiguous, never sharing memory with the input."""
    rng = np.random.default_rng(1)
    views = (lambda a: a, lambda a: a[:, ::2], lambda a: a[::-1])  # contiguous, two views
    for shape in [(48, 85, 3), (48, 85, 4), (37, 53, 3), (20, 30), (20, 30, 1)]:
        f = rng.integers(0, 256, shape, dtype=np.uint8)
        g = f[:, :, 0] if f.ndim == 3 and f.shape[2] == 1 else f
        g = np.repeat(g[:, :, None], 3, axis=2) if g.ndim == 2 else g  # as RGB(A)
        for view in views:
            out = as_bgr_uint8(view(f), "rgb")
            assert out.flags.c_contiguous and out.dtype == np.uint8
            assert np.array_equal(out, view(g)[:, :, 2::-1])
            assert not np.shares_memory(out, f)
        assert np.array_equal(as_bgr_uint8(f, "bgr"), g[:, :, :3])
