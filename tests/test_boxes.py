"""Tests of siammask_edu.boxes: Min-max / MBR / Opt boxes from masks, rotated-box helpers."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from siammask_edu.boxes import (
    box_from_contour,
    cxcywha_to_polygon,
    fit_box,
    largest_contour,
    order_corners,
    polygon_to_cxcywha,
    rotated_iou,
    vot2016_cost,
)


def rect_mask(poly, shape=(200, 240)):
    m = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [np.round(np.asarray(poly)).astype(np.int32)], 1)
    return m.astype(bool)


def same_corners(a, b, tol):
    """Max corner distance after the best cyclic shift / reversal."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    best = np.inf
    for seq in (b, b[::-1]):
        for k in range(4):
            best = min(best, np.abs(a - np.roll(seq, k, 0)).max())
    return best <= tol


def test_axis_aligned_rectangle_all_strategies():
    m = np.zeros((100, 120), bool)
    m[20:61, 30:91] = True  # rows 20..60, cols 30..90
    expect = [[30, 20], [90, 20], [90, 60], [30, 60]]
    mm = fit_box(m, "minmax")
    assert mm.dtype == np.float32 and mm.shape == (4, 2)
    assert mm.tolist() == expect
    assert same_corners(fit_box(m, "mbr"), expect, 1e-4)
    assert same_corners(fit_box(m, "opt"), expect, 1.0)


def test_rotated_rectangle_mbr_and_opt_recover_the_box():
    truth = cxcywha_to_polygon((120, 100, 120, 50, 30))
    m = rect_mask(truth)
    mbr, opt, mm = fit_box(m, "mbr"), fit_box(m, "opt"), fit_box(m, "minmax")
    assert rotated_iou(mbr, truth) > 0.95
    assert rotated_iou(opt, truth) > 0.95
    assert rotated_iou(mm, truth) < 0.7  # axis-aligned box of a 30 degree rectangle
    a = polygon_to_cxcywha(mbr)[4]
    assert (a - 30) % 90 == pytest.approx(0, abs=1.5) or (a - 30) % 90 == pytest.approx(90, abs=1.5)


def test_opt_lowers_the_vot2016_cost_for_a_mask_with_a_spur():
    import shapely
    from shapely.geometry import Polygon

    m = rect_mask(cxcywha_to_polygon((120, 100, 100, 60, 0)))
    m[95:105, 170:235] = True  # a thin spur: MBR must include it, Opt may not
    points = largest_contour(m)
    region = shapely.make_valid(Polygon(points.astype(np.float64)))
    mbr, opt = fit_box(m, "mbr"), fit_box(m, "opt")
    assert vot2016_cost(opt, region) < vot2016_cost(mbr, region) - 0.02
    assert rotated_iou(opt, cxcywha_to_polygon((120, 100, 100, 60, 0))) > 0.85


def test_largest_contour_and_min_area():
    m = np.zeros((100, 100), np.uint8)
    m[10:20, 10:20] = 1  # contour area 81
    assert fit_box(m) is None  # not > 100
    assert fit_box(m, min_area=50) is not None
    m[40:80, 50:70] = 1  # a larger blob
    box = fit_box(m, "minmax")
    assert box.tolist() == [[50, 40], [69, 40], [69, 79], [50, 79]]
    assert fit_box(np.zeros((10, 10), bool)) is None
    assert largest_contour(m).shape[1] == 2


def test_fit_box_errors():
    with pytest.raises(ValueError, match="strategy"):
        fit_box(np.ones((10, 10), bool), "hull")
    with pytest.raises(ValueError, match="2-D"):
        fit_box(np.ones((10, 10, 3), bool))


def test_cxcywha_angle_is_ccw_on_screen():
    # unrotated corners: TL, TR, BR, BL
    p0 = cxcywha_to_polygon((0, 0, 4, 2, 0))
    assert p0.tolist() == [[-2, -1], [2, -1], [2, 1], [-2, 1]]
    # +90 degrees CCW on screen: the right edge's midpoint (2, 0) goes up to (0, -2)
    p = cxcywha_to_polygon((0, 0, 4, 2, 90))
    right_mid = (p[1] + p[2]) / 2
    assert right_mid == pytest.approx([0, -2], abs=1e-6)


@pytest.mark.parametrize("angle", [-89.0, -45.0, -10.0, 0.0, 15.0, 60.0, 90.0])
def test_polygon_to_cxcywha_roundtrip(angle):
    box = (50.0, 40.0, 30.0, 12.0, angle)
    got = polygon_to_cxcywha(cxcywha_to_polygon(box))
    assert got == pytest.approx(box, abs=1e-4)
    # reversed vertex order describes the same rectangle
    back = cxcywha_to_polygon(polygon_to_cxcywha(cxcywha_to_polygon(box)[::-1]))
    assert same_corners(back, cxcywha_to_polygon(box), 1e-4)
    with pytest.raises(ValueError):
        polygon_to_cxcywha(np.zeros((3, 2)))


def test_order_corners_clockwise_from_top_left():
    box = np.array([[10, 60], [90, 20], [10, 20], [90, 60]], np.float32)
    assert order_corners(box).tolist() == [[10, 20], [90, 20], [90, 60], [10, 60]]
    p = order_corners(cxcywha_to_polygon((0, 0, 40, 20, 25))[::-1])
    x, y = p[:, 0], p[:, 1]
    assert np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) > 0  # clockwise with y down
    assert np.argmin(p.sum(1)) == 0


def test_rotated_iou():
    a = cxcywha_to_polygon((0, 0, 2, 2, 0))
    assert rotated_iou(a, a) == pytest.approx(1.0)
    assert rotated_iou(a, a + 10) == 0.0
    assert rotated_iou(a, a + np.array([1, 0], np.float32)) == pytest.approx(1 / 3)
    assert rotated_iou(a, cxcywha_to_polygon((0, 0, 2, 2, 45))) == pytest.approx(
        (8 * (np.sqrt(2) - 1)) / (8 - 8 * (np.sqrt(2) - 1)), rel=1e-6)


@pytest.mark.parametrize("strategy", ["minmax", "mbr", "opt"])
def test_box_from_contour_is_fit_box_and_a_window_traced_with_its_offset_is_the_frame(strategy):
    """The public box-fitting entry point the tracker's windowed post-processing uses: a
    window with a background rim, traced with its offset, gives the frame's contour and box."""
    m = rect_mask(cxcywha_to_polygon((130, 90, 70, 30, 25)))
    m[150:160, 10:20] = True  # a second, smaller blob
    full = largest_contour(m)
    y0, x0 = 40, 70  # the window starts >= 1 px before the blob on every side
    win = largest_contour(m[y0:150, x0:200], offset=(x0, y0))
    assert np.array_equal(full, win)
    box = box_from_contour(full, strategy)
    assert box.dtype == np.float32 and box.shape == (4, 2)
    np.testing.assert_array_equal(box, fit_box(m, strategy))
    with pytest.raises(ValueError, match="unknown box strategy"):
        box_from_contour(full, "hull")
    with pytest.raises(ValueError, match="unknown box strategy"):
        fit_box(np.zeros((5, 5), bool), "hull")  # checked before an empty mask returns None
