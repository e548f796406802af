"""Tests of siammask_edu.box_protocol: the three oracles of paper Table 1 and its measures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from siammask_edu import box_protocol as bp
from siammask_edu.boxes import cxcywha_to_polygon


def rect(cx, cy, w, h, angle=0.0):
    return cxcywha_to_polygon((cx, cy, w, h, angle)).astype(np.float64)


def test_polygon_area_shoelace():
    assert bp.polygon_area(rect(50, 40, 30, 10, 0)) == pytest.approx(300)
    assert bp.polygon_area(rect(50, 40, 30, 10, 37)) == pytest.approx(300, rel=1e-6)
    assert bp.polygon_area(rect(0, 0, 4, 2)[::-1]) == pytest.approx(8)  # either direction


def test_mbr_oracle_of_a_rectangle_is_the_rectangle():
    for angle in (0, 12.5, 45, -70):
        gt = rect(120, 80, 60, 25, angle)
        assert bp.polygon_iou(bp.oracle_mbr(gt), gt) == pytest.approx(1, abs=1e-5)


def test_mbr_oracle_of_a_non_rectangle_encloses_it():
    quad = np.array([[0, 0], [40, 0], [30, 20], [5, 20]], np.float64)  # a trapezoid
    mbr = bp.oracle_mbr(quad)
    assert bp.polygon_area(mbr) >= bp.polygon_area(quad) - 1e-3
    assert bp.polygon_iou(mbr, quad) == pytest.approx(bp.polygon_area(quad) / 800, abs=1e-4)


def test_minmax_oracle_of_a_45_degree_square_has_iou_one_half():
    gt = rect(100, 100, 40, 40, 45)
    mm = bp.oracle_minmax(gt)
    side = 40 * math.sqrt(2)
    np.testing.assert_allclose(np.ptp(mm, 0), [side, side], atol=1e-4)
    assert bp.polygon_iou(mm, gt) == pytest.approx(0.5, abs=1e-6)
    # an axis-aligned ground truth is its own min-max box
    gt0 = rect(30, 20, 16, 8)
    assert bp.polygon_iou(bp.oracle_minmax(gt0), gt0) == pytest.approx(1)


def test_fixed_aspect_oracle():
    first = rect(50, 50, 40, 20)
    # unchanged box: the oracle is the ground truth
    assert bp.polygon_iou(bp.oracle_fixed_aspect(first, first), first) == pytest.approx(1)
    # same area, moved: follows centre and area
    moved = rect(80, 30, 40, 20)
    np.testing.assert_allclose(bp.oracle_fixed_aspect(moved, first), moved, atol=1e-9)
    # the object turns to 20x40: the oracle keeps aspect 2, area 800, centre -> 40x20
    turned = rect(60, 60, 20, 40)
    box = bp.oracle_fixed_aspect(turned, first)
    np.testing.assert_allclose(np.ptp(box, 0), [40, 20], atol=1e-9)
    np.testing.assert_allclose(box.mean(0), [60, 60], atol=1e-9)
    assert bp.polygon_iou(box, turned) == pytest.approx(400 / 1200)  # 20x20 overlap
    # a rotated first frame: aspect of its min/max extent, area of the polygon itself
    r45 = rect(0, 0, 40, 20, 45)
    box = bp.oracle_fixed_aspect(r45, r45)
    w, h = np.ptp(box, 0)
    assert w / h == pytest.approx(1.0) and w * h == pytest.approx(800)


def test_box_metrics_thresholds_are_inclusive():
    m = bp.box_metrics([0.5, 0.7, 0.69, 0.2])
    assert m == {"mIoU": pytest.approx(0.5225), "mAP@0.5": 0.75, "mAP@0.7": 0.25}
    m = bp.box_metrics(np.array([0.9, 0.3]), thresholds=(0.25, 0.95))
    assert list(m) == ["mIoU", "mAP@0.25", "mAP@0.95"]
    assert m["mAP@0.25"] == 1.0 and m["mAP@0.95"] == 0.0


@pytest.mark.parametrize("bad", [[], [0.5, float("nan")], [1.5], [-0.1]])
def test_box_metrics_rejects_bad_ious(bad):
    with pytest.raises(ValueError):
        bp.box_metrics(bad)


def test_box_metrics_rejects_bad_thresholds():
    with pytest.raises(ValueError):
        bp.box_metrics([0.5], thresholds=(0.0,))
    with pytest.raises(ValueError):
        bp.box_metrics([0.5], thresholds=(1.2,))


@pytest.mark.parametrize("bad", [
    [0, 0, 10, 0, 20, 0, 30, 0],            # collinear: zero area
    [5, 5, 5, 5, 5, 5, 5, 5],               # a point
    [0, 0, 10, 0, 10, float("nan"), 0, 10],  # not finite
    [0, 0, 10, 0, 10, 10],                  # 3 corners
])
def test_oracles_reject_degenerate_polygons(bad):
    ok = rect(10, 10, 8, 4).ravel()
    for fn in (bp.oracle_minmax, bp.oracle_mbr, lambda p: bp.oracle_fixed_aspect(p, ok),
               lambda p: bp.oracle_fixed_aspect(ok, p)):
        with pytest.raises(ValueError):
            fn(bad)


def test_oracle_ious_and_table_on_a_turning_box():
    angles = [0, 15, 30, 45]
    seq = [rect(100, 100, 60, 20, a).ravel() for a in angles]
    mm = bp.oracle_ious(seq, "minmax")
    assert mm[0] == pytest.approx(1) and np.all(np.diff(mm) < 0)  # worse as it turns
    np.testing.assert_allclose(bp.oracle_ious(seq, "mbr"), 1, atol=1e-5)
    fa = bp.oracle_ious(seq, "Fixed a.r. Oracle")
    assert fa[0] == pytest.approx(1) and fa[-1] < 0.6
    tab = bp.oracle_table([seq, seq[:2]])
    assert list(tab) == list(bp.ORACLES)
    assert tab["MBR Oracle"]["mIoU"] == pytest.approx(1, abs=1e-5)
    pooled = np.concatenate([mm, mm[:2]])
    assert tab["Min-max Oracle"]["mIoU"] == pytest.approx(pooled.mean())
    with pytest.raises(ValueError):
        bp.oracle_ious(seq, "opt")
    with pytest.raises(ValueError):
        bp.oracle_ious([], "mbr")


def test_vot_iou_agrees_with_analytic_on_large_boxes():
    a, b = rect(200, 150, 120, 80, 20), rect(210, 155, 110, 90, 10)
    exact = bp.polygon_iou(a, b)
    assert bp.polygon_iou(a, b, "vot") == pytest.approx(exact, abs=0.02)
    with pytest.raises(ValueError):
        bp.polygon_iou(a, b, "raster")
    with pytest.raises(ValueError):
        bp.polygon_iou(a, b, bounds=(640, 480))


def test_paper_values_are_the_published_ones():
    assert bp.PAPER_TABLE1["MBR Oracle"] == (84.07, 97.77, 80.68)
    assert bp.PAPER_TABLE1["Fixed a.r. Oracle"] == (73.43, 90.15, 62.52)
    assert bp.PAPER_TABLE1["Min-max Oracle"] == (77.70, 88.84, 65.16)
    assert set(bp.ORACLES) <= set(bp.PAPER_TABLE1)


# -- the predicted-mask protocol (table1) ---------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model():
    import torch

    from siammask_edu import build_model

    torch.manual_seed(3)
    return build_model("tiny").eval()


@pytest.fixture(scope="module")
def bag():
    from siammask_edu.paths import have_vot, vot_sequence
    from siammask_edu.testing import skip_missing_data

    if not have_vot("bag"):
        skip_missing_data("VOT sequence bag is not in the data root")
    return vot_sequence("bag")


def test_table1_frames_protocol_is_seeded_and_reproducible(tiny_model, bag):
    from siammask_edu import Tracker, boxes
    from siammask_edu.geometry import search_region, vot_polygon_to_cxcywh
    from siammask_edu.io import list_images, read_image
    from siammask_edu.metrics.vot import read_trajectory

    kw = {"frames_per_sequence": 2, "seed": 7, "strategies": ("minmax", "mbr")}
    a = bp.table1_frames(tiny_model, [bag], **kw)
    b = bp.table1_frames(tiny_model, [bag], **kw)
    assert [r["iou"] for r in a] == [r["iou"] for r in b]
    assert [r["du"] for r in a] != [r["du"] for r in bp.table1_frames(
        tiny_model, [bag], frames_per_sequence=2, seed=8, strategies=("mbr",))]
    assert len(a) == 2 and all(1 <= r["frame"] for r in a)
    for r in a:
        assert abs(r["du"]) <= 0.25 and abs(r["dx"]) <= 16 and abs(r["dy"]) <= 16
        assert set(r["iou"]) == {*bp.ORACLES, "SiamMask-Min-max", "SiamMask-MBR"}
    # redo the first frame by hand, as the docstring describes
    gts, frames = read_trajectory(bag / "groundtruth.txt"), list_images(bag / "color")
    r = a[0]
    t = Tracker(tiny_model, "vot")
    t.init_polygon(read_image(frames[0]), gts[0])
    cx, cy, w, h = vot_polygon_to_cxcywh(gts[r["frame"]])
    size = np.array([w, h]) * 2.0 ** r["du"]
    k = search_region(size)[1] / 255
    t.set_target((cx + r["dx"] * k, cy + r["dy"] * k), size)
    res = t.track(read_image(frames[r["frame"]]))
    box = boxes.fit_box(res.mask, "mbr")
    box = res.polygon if box is None else box
    assert r["iou"]["SiamMask-MBR"] == pytest.approx(bp.polygon_iou(box, gts[r["frame"]]))
    assert r["iou"]["MBR Oracle"] == pytest.approx(
        bp.polygon_iou(bp.oracle_mbr(gts[r["frame"]]), gts[r["frame"]]))


def test_table1_rows(tiny_model, bag):
    frames = bp.table1_frames(tiny_model, [bag], frames_per_sequence=2, seed=1,
                              strategies=("minmax",))
    rows = bp.table1(tiny_model, [bag], frames_per_sequence=2, seed=1, strategies=("minmax",))
    assert [r["row"] for r in rows] == [*bp.ORACLES, "SiamMask-Min-max"]
    mm = rows[-1]
    assert mm["mIoU"] == pytest.approx(np.mean([f["iou"]["SiamMask-Min-max"] for f in frames]))
    assert mm["n_frames"] == 2 and mm["paper"] == bp.PAPER_TABLE1["SiamMask-Min-max"]
    with pytest.raises(ValueError, match="strategies"):
        bp.table1(tiny_model, [bag], frames_per_sequence=1, strategies=("best",))
    with pytest.raises(ValueError, match="no sequences"):
        bp.table1(tiny_model, [])


def test_table1_frames_pairs_frames_with_ground_truth_by_number(tiny_model, bag, tmp_path):
    """Issue 13: a frame missing from a VOT folder shifted every later frame onto the next
    frame's ground truth; now the missing image is named (and a (name, frames, gt) tuple
    with more ground truth than frames is refused)."""
    import shutil

    seq = tmp_path / "bag"
    (seq / "color").mkdir(parents=True)
    for f in sorted((bag / "color").glob("*.jpg"))[:6]:
        shutil.copy(f, seq / "color" / f.name)
    lines = (bag / "groundtruth.txt").read_text().splitlines()[:6]
    (seq / "groundtruth.txt").write_text("\n".join(lines) + "\n")
    (seq / "color" / "00000003.jpg").unlink()
    with pytest.raises(ValueError, match=r"bag/color/00000003\.jpg"):
        bp.table1_frames(tiny_model, [seq], frames_per_sequence=1)
    frames = sorted((seq / "color").glob("*.jpg"))
    gts = [np.array([float(v) for v in ln.split(",")]) for ln in lines]
    with pytest.raises(ValueError, match="5 frames for 6 ground-truth regions"):
        bp.table1_frames(tiny_model, [("bag", frames, gts)], frames_per_sequence=1)


def test_one_analytic_polygon_iou():
    """box_protocol.polygon_iou and metrics.vot.polygon_iou both use boxes.rotated_iou."""
    from siammask_edu.boxes import rotated_iou
    from siammask_edu.metrics import vot

    a = cxcywha_to_polygon((50, 40, 30, 20, 25)).astype(np.float64)
    b = cxcywha_to_polygon((55, 42, 28, 24, -10)).astype(np.float64)
    want = rotated_iou(a, b)
    assert 0 < want < 1
    assert bp.polygon_iou(a, b) == want
    assert vot.polygon_iou(a.ravel(), b.ravel()) == pytest.approx(want, abs=1e-6)  # float32
    assert vot.polygon_iou([0, 0, 10, 10], [5, 0, 10, 10]) == pytest.approx(1 / 3)  # x,y,w,h
    assert np.isnan(vot.polygon_iou([2.0], a.ravel()))
