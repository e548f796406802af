"""Table 1 of the paper: how much does the box *representation* matter? (paper §4.1)

Three **oracles** see the per-frame ground truth (a rotated box, as in VOT) and give the best
box that a representation can produce; their IoU with the ground truth is an upper bound
for trackers that output that kind of box:

* :func:`oracle_fixed_aspect` — axis-aligned, the ground truth's area and centre, the aspect
  ratio of the first frame (SiamFC's representation);
* :func:`oracle_minmax` — the axis-aligned min/max rectangle of the rotated ground truth
  (SiamRPN's representation: any aspect ratio, no rotation);
* :func:`oracle_mbr` — the rotated minimum-area bounding rectangle of the ground truth
  (``cv2.minAreaRect``; SiamMask's MBR representation).

:func:`box_metrics` summarises per-frame IoUs as Table 1 does: mean IoU and "mAP@t".

**Reading of "mAP@t".** Paper §4.1 names the measures "mean intersection over union (IOU)
and Average Precision (AP)@{0.5, 0.7} IOU", and Table 1's columns "mAP@0.5 IOU" and
"mAP@0.7 IOU". A box per frame with no confidence ranking leaves no precision-recall curve
to average, so we read AP@t as the fraction of frames whose IoU is at least ``t`` (a
frame is a true positive if IoU >= t); the "m" is the mean over frames pooled across
sequences. This reading is ours: the paper gives no formula.

**Which IoU.** :func:`polygon_iou` is the *analytic* IoU of the two polygons (shapely,
float64): the oracle boxes and the ground truth are exact geometric objects, and the
analytic value is independent of the pixel grid, so an MBR of an exact rectangle gives
exactly 1 (up to float32 rounding in OpenCV). VOT's own overlap
(:func:`siammask_edu.metrics.vot.region_overlap`) rasterises both polygons on the integer
grid after rounding the corners; it is available with ``iou="vot"`` for comparison and
differs by a few 0.1 % on objects of ~100 px.

The paper's VOT-2016 values (60 sequences) are in :data:`PAPER_TABLE1`. Note that on the
VOT ground truth, which consists of (near-)exact rotated rectangles, the MBR oracle is
~100 % by construction; the paper's 84.07 % must come from a protocol the paper does not
spell out (its §4.1 evaluates "randomly cropped search patches").

All coordinates are frame pixels, x right, y down. A polygon is 8 numbers
``x1, y1, ..., x4, y4`` (a VOT ``groundtruth.txt`` line) or an array ``(4, 2)``.

See book/06_mask_to_box.py.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import cv2
import numpy as np

from .boxes import rotated_iou

#: Paper Table 1 (VOT-2016): ``{row: (mIoU %, mAP@0.5 IoU %, mAP@0.7 IoU %)}``.
PAPER_TABLE1: dict[str, tuple[float, float, float]] = {
    "Fixed a.r. Oracle": (73.43, 90.15, 62.52),
    "Min-max Oracle": (77.70, 88.84, 65.16),
    "MBR Oracle": (84.07, 97.77, 80.68),
    "SiamFC": (50.48, 56.42, 9.28),
    "SiamRPN": (60.02, 76.20, 32.47),
    "SiamMask-Min-max": (65.05, 82.99, 43.09),
    "SiamMask-MBR": (67.15, 85.42, 50.86),
    "SiamMask-Opt": (71.68, 90.77, 60.47),
}

#: The oracle rows: name -> function of ``(gt_polygon, first_polygon)``.
ORACLES = ("Fixed a.r. Oracle", "Min-max Oracle", "MBR Oracle")

_MIN_AREA = 1e-9  # px^2: below this a polygon is degenerate


def _polygon(polygon, name: str = "polygon") -> np.ndarray:
    """Validate a 4-corner polygon; returns ``(4, 2)`` float64."""
    try:
        p = np.asarray(polygon, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be 8 numbers or a (4, 2) array, got {polygon!r}") from exc
    if p.size != 8:
        raise ValueError(f"{name} must be 8 numbers or a (4, 2) array, got shape {p.shape}")
    p = p.reshape(4, 2)
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{name} has non-finite values: {p.ravel().tolist()}")
    if polygon_area(p) <= _MIN_AREA:
        raise ValueError(f"{name} is degenerate (zero area): {p.ravel().tolist()}")
    return p


def polygon_area(polygon) -> float:
    """Area of a simple polygon by the shoelace formula, px^2 (unsigned).

    Args:
        polygon (np.ndarray[N, 2] | 2N numbers): corners in order (either direction).

    See book/06_mask_to_box.py.
    """
    p = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    x, y = p[:, 0], p[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def _axis_aligned(cx: float, cy: float, w: float, h: float) -> np.ndarray:
    x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
    return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], dtype=np.float64)


def oracle_fixed_aspect(gt_polygon, first_polygon) -> np.ndarray:
    """The fixed aspect-ratio oracle (Table 1, row 1): SiamFC's best possible box.

    Axis-aligned, centred on the mean of the ground truth's corners, with the ground
    truth's area ``A`` (shoelace) and the aspect ratio ``r = w0 / h0`` of the **first
    frame**, where ``(w0, h0)`` is the min/max extent of ``first_polygon`` (the aspect of
    the axis-aligned box a tracker is initialised with, released ``get_axis_aligned_bbox``):
    ``w = sqrt(A r)``, ``h = sqrt(A / r)``. On a frame equal to the first one and an
    axis-aligned ground truth it returns the ground truth (IoU 1).

    Args:
        gt_polygon: this frame's ground truth, 8 numbers or ``(4, 2)``, frame pixels.
        first_polygon: the first frame's ground truth, same format.

    Returns:
        np.ndarray[4, 2] float64: corners TL, TR, BR, BL.

    Raises:
        ValueError: for a malformed, non-finite or zero-area polygon.

    See book/06_mask_to_box.py.
    """
    p, p0 = _polygon(gt_polygon, "gt_polygon"), _polygon(first_polygon, "first_polygon")
    w0, h0 = np.ptp(p0[:, 0]), np.ptp(p0[:, 1])
    if not (w0 > 0 and h0 > 0):  # a zero-area extent cannot hold a non-zero area polygon
        raise ValueError(f"first_polygon has a degenerate extent: {p0.ravel().tolist()}")
    r = w0 / h0
    area = polygon_area(p)
    cx, cy = p.mean(0)
    return _axis_aligned(cx, cy, math.sqrt(area * r), math.sqrt(area / r))


def oracle_minmax(gt_polygon) -> np.ndarray:
    """The Min-max oracle (Table 1, row 2): the axis-aligned rectangle enclosing the
    rotated ground truth (min/max of its corners).

    Returns:
        np.ndarray[4, 2] float64: corners TL, TR, BR, BL.

    Raises:
        ValueError: for a malformed, non-finite or zero-area polygon.

    See book/06_mask_to_box.py.
    """
    p = _polygon(gt_polygon, "gt_polygon")
    (x1, y1), (x2, y2) = p.min(0), p.max(0)
    return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], dtype=np.float64)


def oracle_mbr(gt_polygon) -> np.ndarray:
    """The MBR oracle (Table 1, row 3): the rotated minimum-area rectangle of the ground
    truth, ``cv2.boxPoints(cv2.minAreaRect(...))`` as the tracker fits its masks.

    For a ground truth that is an exact rectangle this is the ground truth itself (OpenCV
    works in float32, so corners agree to ~1e-4 px).

    Returns:
        np.ndarray[4, 2] float64: corners in OpenCV's ``boxPoints`` order.

    Raises:
        ValueError: for a malformed, non-finite or zero-area polygon.

    See book/06_mask_to_box.py.
    """
    p = _polygon(gt_polygon, "gt_polygon")
    return cv2.boxPoints(cv2.minAreaRect(p.astype(np.float32))).astype(np.float64)


def polygon_iou(a, b, iou: str = "analytic", bounds: tuple[float, float] | None = None
                ) -> float:
    """IoU of two polygons (8 numbers or ``(4, 2)`` each).

    Args:
        a, b: the polygons, frame pixels.
        iou: ``"analytic"`` (shapely, exact areas; the default of this module) or ``"vot"``
            (VOT's rasterised overlap, :func:`siammask_edu.metrics.vot.region_overlap`).
        bounds: ``(W, H)`` to clip both polygons to the image (``"vot"`` only; VOT accuracy
            uses the image size).

    Returns:
        float in [0, 1].

    Raises:
        ValueError: for an unknown ``iou`` or a malformed polygon.

    See book/06_mask_to_box.py.
    """
    pa, pb = _polygon(a, "a"), _polygon(b, "b")
    if iou == "analytic":
        if bounds is not None:
            raise ValueError("bounds apply to iou='vot' only")
        return rotated_iou(pa, pb)
    if iou == "vot":
        from .metrics.vot import region_overlap

        return float(region_overlap(pa.ravel(), pb.ravel(), bounds))
    raise ValueError(f"iou must be 'analytic' or 'vot', got {iou!r}")


def oracle_ious(gt_polygons: Sequence, oracle: str, iou: str = "analytic",
                bounds: tuple[float, float] | None = None) -> np.ndarray:
    """Per-frame IoU of one oracle with the ground truth of one sequence.

    Args:
        gt_polygons: the sequence's ground truth, one polygon per frame (``(N, 8)`` or
            ``(N, 4, 2)``); frame 0 fixes the aspect ratio of the fixed-aspect oracle.
        oracle: one of :data:`ORACLES` (or ``"fixed_aspect"``, ``"minmax"``, ``"mbr"``).
        iou, bounds: see :func:`polygon_iou`.

    Returns:
        np.ndarray[N] float64.

    Raises:
        ValueError: for an unknown oracle, an empty sequence or a malformed polygon.

    See book/06_mask_to_box.py.
    """
    names = {"fixed_aspect": ORACLES[0], "minmax": ORACLES[1], "mbr": ORACLES[2]}
    oracle = names.get(oracle, oracle)
    if oracle not in ORACLES:
        raise ValueError(f"unknown oracle {oracle!r}; expected one of {ORACLES}")
    gts = [np.asarray(g, np.float64).reshape(-1) for g in gt_polygons]
    if not gts:
        raise ValueError("gt_polygons is empty")
    first = gts[0]
    out = []
    for g in gts:
        if oracle == ORACLES[0]:
            box = oracle_fixed_aspect(g, first)
        elif oracle == ORACLES[1]:
            box = oracle_minmax(g)
        else:
            box = oracle_mbr(g)
        out.append(polygon_iou(box, g, iou, bounds))
    return np.asarray(out, dtype=np.float64)


def box_metrics(ious: Iterable[float], thresholds: Sequence[float] = (0.5, 0.7)
                ) -> dict[str, float]:
    """Table 1's measures of a set of per-frame IoUs: mean IoU and "mAP@t".

    ``mAP@t`` is the fraction of frames with ``IoU >= t`` (see the module docstring for
    this reading of the paper's "Average Precision @ t IOU").

    Args:
        ious: per-frame IoUs in [0, 1] (pool several sequences by concatenating them).
        thresholds: IoU thresholds in (0, 1].

    Returns:
        ``{"mIoU": m, "mAP@0.5": a, "mAP@0.7": b}``: fractions in [0, 1] (multiply by 100
        for the paper's percentages); keys are ``f"mAP@{t:g}"``.

    Raises:
        ValueError: for no IoUs, a non-finite IoU or one outside [0, 1], or a threshold
            outside (0, 1].

    See book/06_mask_to_box.py.
    """
    v = np.asarray(list(ious) if not isinstance(ious, np.ndarray) else ious,
                   dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("box_metrics needs at least one IoU")
    if not np.all(np.isfinite(v)):
        raise ValueError("IoUs must be finite (drop frames without ground truth first)")
    if v.min() < 0 or v.max() > 1 + 1e-9:
        raise ValueError(f"IoUs must lie in [0, 1], got range [{v.min()}, {v.max()}]")
    out = {"mIoU": float(v.mean())}
    for t in thresholds:
        t = float(t)
        if not 0 < t <= 1:
            raise ValueError(f"thresholds must lie in (0, 1], got {t}")
        out[f"mAP@{t:g}"] = float(np.mean(v >= t))
    return out


def oracle_table(sequences: Sequence[Sequence], iou: str = "analytic",
                 thresholds: Sequence[float] = (0.5, 0.7)) -> dict[str, dict[str, float]]:
    """The three oracle rows of Table 1 on a set of sequences (frames pooled).

    Args:
        sequences: one ground-truth list per sequence (see :func:`oracle_ious`).
        iou: ``"analytic"`` or ``"vot"`` (unbounded).
        thresholds: see :func:`box_metrics`.

    Returns:
        ``{oracle name: box_metrics(...)}`` for the names of :data:`ORACLES`.

    See book/06_mask_to_box.py.
    """
    if not sequences:
        raise ValueError("no sequences")
    return {name: box_metrics(np.concatenate([oracle_ious(s, name, iou) for s in sequences]),
                              thresholds)
            for name in ORACLES}


__all__ = [
    "ORACLES",
    "PAPER_TABLE1",
    "box_metrics",
    "oracle_fixed_aspect",
    "oracle_ious",
    "oracle_mbr",
    "oracle_minmax",
    "oracle_table",
    "polygon_area",
    "polygon_iou",
]
