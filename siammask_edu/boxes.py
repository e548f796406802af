"""From a binary mask to a box: Min-max, MBR and Opt (paper §3.2 "Box generation", Fig. 3,
Table 1), plus rotated-box helpers.

All functions work on any binary mask ``(H, W)`` (bool or integer, non-zero = object).
Coordinates are OpenCV's **pixel indices**: x to the right, y down, 0-based, and a mask pixel
``(row i, col j)`` is the point ``(j, i)``. (In the library's continuous box convention,
``geometry.py``, that point is the pixel's top-left corner.) The released tracker uses these
contour coordinates as they are, and so do we.

A rotated box is returned as a polygon ``np.ndarray[4, 2] float32`` of ``(x, y)`` corners.
:func:`fit_box` keeps the order of the fitting routine (``cv2.boxPoints`` for ``"mbr"``, as
released); :func:`order_corners` puts any rectangle in the documented order (clockwise on
screen, starting at the top-left corner).

See book/06_mask_to_box.py.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import shapely
from shapely.geometry import Polygon

STRATEGIES = ("minmax", "mbr", "opt")


def largest_contour(mask: np.ndarray, min_area: float = 100.0,
                    offset: tuple[int, int] = (0, 0)) -> np.ndarray | None:
    """The largest external contour of a mask, as released ``siamese_track`` picks it.

    External contours only (``RETR_EXTERNAL``), no approximation (``CHAIN_APPROX_NONE``),
    largest ``cv2.contourArea`` (first one on a tie); ``None`` when there is no contour or the
    largest area is not ``> min_area`` (released: 100 px^2).

    Args:
        mask (np.ndarray[H, W]): bool or integer; non-zero = object.
        min_area: strict lower bound on the contour area, px^2.
        offset: ``(dx, dy)`` added to every point (OpenCV's ``findContours`` offset): pass
            the top-left corner of ``mask`` when it is a window cut out of a larger frame,
            so that the points are frame pixel indices. Tracing a window that has at least
            a 1-pixel background rim on every side, with its offset, gives exactly the
            contours of the whole frame (what the tracker's windowed post-processing
            relies on).

    Returns:
        np.ndarray[N, 2] int32 ``(x, y)`` pixel indices, or ``None``.

    Raises:
        ValueError: for an array that is not 2-D.

    See book/06_mask_to_box.py.
    """
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"mask must be a 2-D (H, W) array, got shape {m.shape}")
    m = np.ascontiguousarray(m != 0, dtype=np.uint8)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE,
                                   offset=(int(offset[0]), int(offset[1])))
    if len(contours) == 0:
        return None
    areas = [cv2.contourArea(c) for c in contours]
    best = int(np.argmax(areas))
    if not areas[best] > min_area:
        return None
    return contours[best].reshape(-1, 2)


def _minmax(points: np.ndarray) -> np.ndarray:
    x, y, w, h = cv2.boundingRect(points)
    # boundingRect counts pixels (w = max - min + 1); the box spans the pixel indices
    # min..max like the contour points, i.e. the polygon of the points' extent.
    x2, y2 = x + w - 1, y + h - 1
    return np.array([[x, y], [x2, y], [x2, y2], [x, y2]], dtype=np.float32)


def _mbr(points: np.ndarray) -> np.ndarray:
    return cv2.boxPoints(cv2.minAreaRect(points)).astype(np.float32)


def cxcywha_to_polygon(box) -> np.ndarray:
    """``(cx, cy, w, h, angle)`` -> 4 corners (detectron2 ``RotatedBoxes`` convention).

    ``angle`` in degrees, **counter-clockwise as seen on screen** (image y points down): the
    unrotated corners top-left, top-right, bottom-right, bottom-left are rotated about the
    centre by ``angle``, i.e. ``x' = cx + cos(t) dx + sin(t) dy``,
    ``y' = cy - sin(t) dx + cos(t) dy``.

    Returns:
        np.ndarray[4, 2] float32.

    See book/06_mask_to_box.py.
    """
    cx, cy, w, h, a = (float(v) for v in box)
    t = math.radians(a)
    c, s = math.cos(t), math.sin(t)
    d = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    x = cx + c * d[:, 0] + s * d[:, 1]
    y = cy - s * d[:, 0] + c * d[:, 1]
    return np.stack([x, y], 1).astype(np.float32)


def polygon_to_cxcywha(polygon: np.ndarray) -> tuple[float, float, float, float, float]:
    """A rectangle's 4 corners -> ``(cx, cy, w, h, angle)``, detectron2 convention.

    ``angle`` is in degrees, counter-clockwise on screen, normalised to ``(-90, 90]``; ``w`` is
    the length of the side whose direction makes that angle with the x axis, ``h`` the other
    side. ``cxcywha_to_polygon(polygon_to_cxcywha(p))`` is ``p`` as a point set. The corners
    may come in any cyclic order (either direction).

    Args:
        polygon (np.ndarray[4, 2]): ``(x, y)`` corners of a rectangle, frame pixels.

    Raises:
        ValueError: for a shape other than 4x2.

    See book/06_mask_to_box.py.
    """
    p = np.asarray(polygon, dtype=np.float64)
    if p.shape != (4, 2):
        raise ValueError(f"polygon must have shape (4, 2), got {p.shape}")
    cx, cy = p.mean(0)
    e1, e2 = p[1] - p[0], p[2] - p[1]
    ang = math.degrees(math.atan2(-e1[1], e1[0]))  # CCW on screen: y is flipped
    if ang <= -90:
        ang += 180
    elif ang > 90:
        ang -= 180
    return float(cx), float(cy), float(np.hypot(*e1)), float(np.hypot(*e2)), float(ang)


def order_corners(polygon: np.ndarray) -> np.ndarray:
    """Corners in the library's order: **clockwise on screen** (image y down), starting at
    the top-left corner (smallest ``x + y``; on a tie, the smaller ``y``).

    Clockwise on screen means increasing ``atan2(y - cy, x - cx)`` in image coordinates:
    top-left, top-right, bottom-right, bottom-left for an axis-aligned box.

    Returns:
        np.ndarray[4, 2] float32 (a reordering of the input points).

    See book/06_mask_to_box.py.
    """
    p = np.asarray(polygon, dtype=np.float64).reshape(4, 2)
    c = p.mean(0)
    p = p[np.argsort(np.arctan2(p[:, 1] - c[1], p[:, 0] - c[0]), kind="stable")]
    key = np.round(p.sum(1), 9)
    first = min(range(4), key=lambda i: (key[i], p[i, 1]))
    return np.roll(p, -first, axis=0).astype(np.float32)


def rotated_iou(poly_a: np.ndarray, poly_b: np.ndarray) -> float:
    """Intersection over union of two polygons (any simple polygons, e.g. rotated boxes),
    computed exactly with shapely. 0 when the union is empty.

    See book/06_mask_to_box.py.
    """
    a = shapely.make_valid(Polygon(np.asarray(poly_a, np.float64).reshape(-1, 2)))
    b = shapely.make_valid(Polygon(np.asarray(poly_b, np.float64).reshape(-1, 2)))
    union = a.union(b).area
    return float(a.intersection(b).area / union) if union > 0 else 0.0


def vot2016_cost(rect: np.ndarray, region, alpha: float = 0.5) -> float:
    """Cost of a rectangle against a mask region, the objective of the ``"opt"`` strategy.

    ``C = alpha * |M \\ B| / |M| + (1 - alpha) * |B \\ M| / |B|``: the fraction of the object
    left outside the box plus the fraction of the box that is background. This is our
    reading of the VOT-2016 automatic box generation (Kristan et al., ECCV-W 2016, §3); the
    challenge's own trade-off constant is not reproduced. With ``alpha = 0.5`` the minimiser
    is close to the IoU-maximising rectangle.

    Args:
        rect (np.ndarray[4, 2]): rectangle corners.
        region: the mask as a shapely geometry (from :func:`fit_box`'s contour).

    See book/06_mask_to_box.py.
    """
    b = Polygon(np.asarray(rect, np.float64))
    if not b.is_valid or b.area <= 0 or region.area <= 0:
        return 1.0
    inter = region.intersection(b).area
    return alpha * (region.area - inter) / region.area + (1 - alpha) * (b.area - inter) / b.area


def _opt(points: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    from scipy.optimize import minimize

    region = shapely.make_valid(Polygon(points.astype(np.float64)))
    if region.area <= 0:
        return _mbr(points)
    start = np.array(polygon_to_cxcywha(_mbr(points)))
    w, h = max(start[2], 1.0), max(start[3], 1.0)
    step = np.array([0.1 * w, 0.1 * h, 0.1 * w, 0.1 * h, 5.0])  # simplex edge per parameter

    def cost(u):
        v = start + u * step
        if v[2] <= 0 or v[3] <= 0:
            return 1.0 + abs(min(v[2], v[3]))
        return vot2016_cost(cxcywha_to_polygon(v), region, alpha)

    simplex = np.vstack([np.zeros(5), np.eye(5)])
    res = minimize(cost, np.zeros(5), method="Nelder-Mead",
                   options={"initial_simplex": simplex, "xatol": 1e-3, "fatol": 1e-6,
                            "maxiter": 800})
    best = start + res.x * step if res.fun <= cost(np.zeros(5)) else start
    return cxcywha_to_polygon(best)


def box_from_contour(points: np.ndarray, strategy: str = "mbr",
                     alpha: float = 0.5) -> np.ndarray:
    """Fit a box to one contour: the single place the box strategies are dispatched
    (:func:`fit_box` and the tracker's post-processing both end here).

    Strategies:

    * ``"minmax"``: axis-aligned extent of the points (corners TL, TR, BR, BL);
    * ``"mbr"``: minimum-area rotated rectangle, ``cv2.boxPoints(cv2.minAreaRect(...))``,
      exactly the released tracker (OpenCV's corner order);
    * ``"opt"``: a rotated rectangle fitted by Nelder-Mead (SciPy) to minimise
      :func:`vot2016_cost` between the rectangle and the contour's polygon, started from the
      MBR (slow: tens of ms; the paper notes the same, §4.1).

    Args:
        points (np.ndarray[N, 2] int32): ``(x, y)`` pixel indices of a closed contour, e.g.
            from :func:`largest_contour`.
        strategy: ``"minmax"``, ``"mbr"`` or ``"opt"``.
        alpha: trade-off of the ``"opt"`` objective.

    Returns:
        np.ndarray[4, 2] float32 ``(x, y)`` corners, same coordinates as ``points``.

    Raises:
        ValueError: for an unknown strategy.

    See book/06_mask_to_box.py.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown box strategy {strategy!r}; expected one of {STRATEGIES}")
    if strategy == "minmax":
        return _minmax(points)
    if strategy == "mbr":
        return _mbr(points)
    return _opt(points, alpha)


def fit_box(mask: np.ndarray, strategy: str = "mbr", min_area: float = 100.0,
            alpha: float = 0.5) -> np.ndarray | None:
    """Fit a box to the largest object blob of a binary mask (paper Fig. 3, Table 1):
    :func:`largest_contour` then :func:`box_from_contour` (the strategies are described
    there: ``"minmax"``, ``"mbr"`` -- the released tracker's -- and ``"opt"``).

    Args:
        mask (np.ndarray[H, W]): binary mask (bool or int; non-zero = object).
        strategy: ``"minmax"``, ``"mbr"`` or ``"opt"``.
        min_area: the largest contour must have area ``> min_area`` px^2 (released: 100).
        alpha: trade-off of the ``"opt"`` objective.

    Returns:
        np.ndarray[4, 2] float32 ``(x, y)`` corners in pixel-index coordinates, or ``None``
        when no contour is larger than ``min_area``.

    Raises:
        ValueError: for an unknown strategy or a mask that is not 2-D.

    See book/06_mask_to_box.py.
    """
    if strategy not in STRATEGIES:  # checked first: also when the mask is empty
        raise ValueError(f"unknown box strategy {strategy!r}; expected one of {STRATEGIES}")
    points = largest_contour(mask, min_area)
    if points is None:
        return None
    return box_from_contour(points, strategy, alpha)


__all__ = [
    "STRATEGIES",
    "box_from_contour",
    "cxcywha_to_polygon",
    "fit_box",
    "largest_contour",
    "order_corners",
    "polygon_to_cxcywha",
    "rotated_iou",
    "vot2016_cost",
]
