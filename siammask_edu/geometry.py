"""Frame and box conventions, context sizes and the released crop (``get_subwindow_tracking``).

**Frames.** User frames are ``np.ndarray (H, W, 3) uint8`` RGB (or BGR when asked);
:func:`as_bgr_uint8` is the one place that turns them into the network's BGR ``uint8``.

**The box convention of this library** (one place; every other module refers here):

* ``box = (x, y, w, h)`` in **pixels of the frame**, origin at the **top-left** corner of the
  image, x to the right, y down, **0-based**: pixel ``(i, j)`` (row i, column j) covers
  ``[j, j+1) x [i, i+1)``.
* the centre is continuous: ``cx = x + w / 2``, ``cy = y + h / 2`` (the released DAVIS
  driver and demo; pysot's ``x + (w - 1) / 2`` is *not* used);
* the tracker's state is ``center = (cx, cy)`` and ``size = (w, h)``, float64.

Context sizes (SiamFC's rule, paper §3.1 and its ref. [4]; released ``siamese_init`` /
``siamese_track``): with ``p = context_amount * (w + h)``, the exemplar side is ``s_z = sqrt((w + p) * (h + p))``
(rounded with Python ``round`` at init), and the search side is ``s_x = s_z * 255 / 127``
(computed as ``s_z + 2 * pad`` and rounded per frame).

See book/07_online_tracker.py.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import cv2
import numpy as np
import torch


def xywh_to_cxcywh(box: Sequence[float]) -> tuple[float, float, float, float]:
    """``(x, y, w, h)`` -> ``(cx, cy, w, h)`` with ``cx = x + w/2`` (continuous centre).

    See book/07_online_tracker.py.
    """
    x, y, w, h = (float(v) for v in box)
    return x + w / 2, y + h / 2, w, h


def cxcywh_to_xywh(box: Sequence[float]) -> tuple[float, float, float, float]:
    """``(cx, cy, w, h)`` -> ``(x, y, w, h)`` with ``x = cx - w/2``.

    See book/07_online_tracker.py.
    """
    cx, cy, w, h = (float(v) for v in box)
    return cx - w / 2, cy - h / 2, w, h


def context_size(size: Sequence[float], context_amount: float = 0.5) -> float:
    """Side of the square context region around a target of size ``(w, h)``, unrounded.

    ``sqrt((w + p) * (h + p))`` with ``p = context_amount * (w + h)`` (SiamFC; released
    ``wc_z``/``hc_z``). Operations follow the released order so the value is bit-identical.

    Args:
        size: ``(w, h)`` in frame pixels.
        context_amount: fraction of ``w + h`` added (0.5).

    Returns:
        ``s_z`` (float64, frame pixels).

    See book/07_online_tracker.py.
    """
    w, h = float(size[0]), float(size[1])
    total = w + h
    wc = w + context_amount * total
    hc = h + context_amount * total
    return float(np.sqrt(hc * wc))


def exemplar_crop_size(size: Sequence[float], context_amount: float = 0.5) -> int:
    """``s_z`` of the exemplar crop at init: :func:`context_size` rounded with Python
    ``round`` (half to even), as released ``siamese_init``.

    See book/07_online_tracker.py.
    """
    return round(context_size(size, context_amount))


def search_region(size: Sequence[float], exemplar_size: int = 127, instance_size: int = 255,
                  context_amount: float = 0.5) -> tuple[float, int]:
    """Scale and side of the search crop for a target of size ``(w, h)`` (released
    ``siamese_track`` step 1).

    Returns:
        ``(scale_x, S)``: ``scale_x = 127 / s_z`` (frame -> crop scale used for the box
        deltas) and ``S = round(s_z + 2 * (255 - 127) / 2 / scale_x)`` (int, frame pixels;
        Python ``round``). The mask is mapped back with ``S / 255`` instead (§4.5 step 8).

    See book/07_online_tracker.py.
    """
    s_z = context_size(size, context_amount)
    scale_x = exemplar_size / s_z
    pad = ((instance_size - exemplar_size) / 2) / scale_x
    s_x = s_z + 2 * pad
    return scale_x, round(float(s_x))


def _round_half_even(v: float) -> int:
    return round(float(v))


def _round_half_up(v: float) -> int:
    return math.floor(v + 0.5)


def crop_subwindow(frame_bgr: np.ndarray, center: Sequence[float], model_size: int,
                   original_size: int, avg_chans: Sequence[float], *, rounding: str = "python",
                   out: str = "torch") -> torch.Tensor | np.ndarray:
    """Cut a square patch around ``center`` and resize it: released ``get_subwindow_tracking``.

    The patch spans the ``original_size`` pixels ``xmin .. xmin + original_size - 1`` with
    ``xmin = round(cx - c)``, ``c = (original_size + 1) / 2`` (likewise in y), so it is
    centred about one pixel up-left of ``center`` (released behaviour, kept on purpose).
    Parts outside the frame are filled with ``avg_chans`` assigned into a ``uint8`` canvas
    (so the mean colour is **truncated**). The patch is resized with ``cv2.resize``
    (``INTER_LINEAR`` on ``uint8``) only when ``model_size != original_size``.

    Args:
        frame_bgr (np.ndarray[H, W, 3] uint8): the frame, **BGR** (the network's order).
        center: ``(cx, cy)`` in frame pixels (continuous centre convention).
        model_size: output side (127 exemplar, 255 search).
        original_size: side of the patch in the frame, int pixels (already rounded).
        avg_chans: per-channel padding colour (BGR, float), the frame mean at init.
        rounding: ``"python"`` (released: ``round``, half to even) or ``"half_up"``
            (pysot: ``floor(v + 0.5)``); they differ by 1 px when ``cx - c`` is ``k + 0.5``.
        out: ``"torch"`` for ``Tensor[1, 3, S, S]`` float32 or ``"numpy"`` for
            ``np.ndarray[S, S, 3]`` uint8.

    Returns:
        The crop, BGR, values 0..255, no normalisation.

    Raises:
        ValueError: for a frame that is not ``(H, W, 3) uint8`` or a size < 1.

    See book/07_online_tracker.py.
    """
    if not (isinstance(frame_bgr, np.ndarray) and frame_bgr.ndim == 3 and frame_bgr.shape[2] == 3
            and frame_bgr.dtype == np.uint8):
        raise ValueError("crop_subwindow expects a (H, W, 3) uint8 BGR frame, got "
                         f"{getattr(frame_bgr, 'shape', None)} {getattr(frame_bgr, 'dtype', None)}")
    if int(original_size) < 1 or int(model_size) < 1:
        raise ValueError(f"crop sizes must be >= 1, got {original_size} and {model_size}")
    rnd = {"python": _round_half_even, "half_up": _round_half_up}.get(rounding)
    if rnd is None:
        raise ValueError(f"rounding must be 'python' or 'half_up', got {rounding!r}")
    sz = int(original_size)
    H, W = frame_bgr.shape[:2]
    c = (sz + 1) / 2
    xmin = rnd(center[0] - c)
    ymin = rnd(center[1] - c)
    xmax, ymax = xmin + sz - 1, ymin + sz - 1
    left, top = max(0, -xmin), max(0, -ymin)
    right, bottom = max(0, xmax - W + 1), max(0, ymax - H + 1)
    if left or top or right or bottom:
        # The released code pads the whole frame and then cuts the patch; padding only the
        # in-frame part of the patch gives the same pixels without copying the frame. The
        # released canvas is uint8, so the float mean colour is truncated (C cast, as
        # numpy's assignment and astype both do).
        fill = np.asarray(avg_chans, dtype=np.float64).astype(np.uint8)
        x0, y0 = max(xmin, 0), max(ymin, 0)
        x1, y1 = min(xmax + 1, W), min(ymax + 1, H)
        if x1 > x0 and y1 > y0:
            patch = cv2.copyMakeBorder(frame_bgr[y0:y1, x0:x1], y0 - ymin, ymax + 1 - y1,
                                       x0 - xmin, xmax + 1 - x1, cv2.BORDER_CONSTANT,
                                       value=[int(v) for v in fill])
        else:  # the patch lies wholly outside the frame
            patch = np.empty((sz, sz, 3), np.uint8)
            patch[...] = fill
    else:
        patch = frame_bgr[ymin:ymax + 1, xmin:xmax + 1]  # a view: cv2 reads its row stride
    if int(model_size) != sz:
        patch = cv2.resize(patch, (int(model_size), int(model_size)))
    if out == "numpy":
        return np.ascontiguousarray(patch)
    if out != "torch":
        raise ValueError(f"out must be 'torch' or 'numpy', got {out!r}")
    chw = np.ascontiguousarray(patch.transpose(2, 0, 1))  # (3, S, S) uint8
    return torch.from_numpy(chw).float().unsqueeze(0)  # (1, 3, S, S) float32


def as_bgr_uint8(frame, color_order: str = "rgb") -> np.ndarray:
    """The one place where a user frame becomes the network's BGR ``uint8`` frame.

    Args:
        frame: ``(H, W, 3)`` uint8 in ``color_order``; ``(H, W)`` / ``(H, W, 1)`` grayscale
            (repeated to 3 channels); ``(H, W, 4)`` with alpha (dropped).
        color_order: ``"rgb"`` or ``"bgr"``.

    Returns:
        np.ndarray[H, W, 3] uint8, BGR, C-contiguous.

    Raises:
        ValueError: for another dtype (float frames included), an empty frame or another
            number of dimensions or channels.

    See book/07_online_tracker.py.
    """
    if color_order not in ("rgb", "bgr"):
        raise ValueError(f"color_order must be 'rgb' or 'bgr', got {color_order!r}")
    f = np.asarray(frame)
    if f.dtype != np.uint8:
        raise ValueError(f"frame must be uint8 (0..255), got dtype {f.dtype}; convert it first, "
                         "e.g. (frame * 255).round().astype(np.uint8) for values in [0, 1]")
    if f.ndim == 3 and f.shape[2] == 1:
        f = f[:, :, 0]
    if f.ndim == 2:
        f = np.repeat(f[:, :, None], 3, axis=2)
    if f.ndim != 3 or f.shape[2] not in (3, 4):
        raise ValueError(f"frame must be (H, W, 3), (H, W, 4), (H, W, 1) or (H, W); "
                         f"got shape {f.shape}")
    if f.shape[0] == 0 or f.shape[1] == 0:
        raise ValueError(f"frame is empty: shape {f.shape}")
    if color_order == "rgb" and f.flags.c_contiguous:
        # OpenCV's channel swap: the same bytes as f[:, :, 2::-1], a few times faster
        return cv2.cvtColor(f, cv2.COLOR_RGB2BGR if f.shape[2] == 3 else cv2.COLOR_RGBA2BGR)
    f = f[:, :, :3]
    if color_order == "rgb":
        f = f[:, :, ::-1]
    return np.ascontiguousarray(f)


def check_box(box, frame_hw, min_size: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """Validate a user box ``(x, y, w, h)`` against a frame and return the tracker state.

    Sizes must be finite and > 0; a box partly outside the frame is clipped to it (with a
    warning, since corner coordinates passed as x,y,w,h look like this); a box
    wholly outside (no overlap of positive area) is rejected; a box whose clipped width or
    height is below ``min_size`` warns (the tracker enlarges it after the first frame).

    Args:
        box: ``(x, y, w, h)`` frame pixels.
        frame_hw: ``(H, W)``.
        min_size: the tracker's minimum size, px.

    Returns:
        ``(center, size)``: ``np.ndarray[2]`` float64 each, ``center = (x + w/2, y + h/2)``
        of the clipped box.

    Raises:
        ValueError: non-numeric, wrong length, non-finite, ``w <= 0`` or ``h <= 0``, or a
            box wholly outside the frame.

    See book/07_online_tracker.py.
    """
    try:
        vals = [float(v) for v in np.asarray(box, dtype=np.float64).reshape(-1)]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"box must be 4 numbers (x, y, w, h), got {box!r}") from exc
    if len(vals) != 4:
        raise ValueError(f"box must be 4 numbers (x, y, w, h), got {len(vals)} values")
    x, y, w, h = vals
    if not all(math.isfinite(v) for v in vals):
        raise ValueError(f"box has non-finite values: {vals}")
    if w <= 0 or h <= 0:
        raise ValueError(f"box width and height must be > 0, got w={w}, h={h}")
    H, W = frame_hw
    x1, y1, x2, y2 = max(x, 0.0), max(y, 0.0), min(x + w, float(W)), min(y + h, float(H))
    if x2 <= x1 or y2 <= y1:
        raise ValueError(f"box {tuple(vals)} lies wholly outside the {W}x{H} frame")
    if (x1, y1, x2, y2) != (x, y, x + w, y + h):
        warnings.warn(f"box (x={x:g}, y={y:g}, w={w:g}, h={h:g}) extends beyond the {W}x{H} "
                      f"frame; clipped to (x={x1:g}, y={y1:g}, w={x2 - x1:g}, h={y2 - y1:g}) "
                      "(is it x,y,w,h rather than corners x1,y1,x2,y2?)", stacklevel=4)
    w, h = x2 - x1, y2 - y1
    if min(w, h) < min_size:
        warnings.warn(f"box {w:.1f}x{h:.1f} px (after clipping to the frame) is smaller than "
                      f"the tracker's minimum size {min_size:g} px; it will be enlarged to that "
                      "size after the first frame", stacklevel=4)
    return np.array([x1 + w / 2, y1 + h / 2]), np.array([w, h])


def vot_polygon_to_cxcywh(polygon: Sequence[float]) -> tuple[float, float, float, float]:
    """Axis-aligned box of a VOT rotated box (released ``get_axis_aligned_bbox``).

    Centre = mean of the 4 corners; ``s = sqrt(A1 / A2)`` with ``A1 = |p1 - p2| * |p2 - p3|``
    and ``A2`` the area of the min/max box; ``w = s * (x2 - x1) + 1``,
    ``h = s * (y2 - y1) + 1`` (the box keeps the polygon's area, plus the VOT "+1").
    A 4-value input ``(x, y, w, h)`` returns ``(x + w/2, y + h/2, w, h)``.

    Args:
        polygon: 8 numbers ``x1, y1, ..., x4, y4`` (frame pixels) or 4 numbers ``x, y, w, h``.

    Returns:
        ``(cx, cy, w, h)`` (floats, frame pixels).

    Raises:
        ValueError: for another number of values, non-finite values or a degenerate polygon.

    See book/07_online_tracker.py.
    """
    region = np.asarray(polygon, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(region)):
        raise ValueError(f"polygon has non-finite values: {region.tolist()}")
    if region.size == 4:
        return xywh_to_cxcywh(region)
    if region.size != 8:
        raise ValueError(f"expected 8 values (a VOT polygon) or 4 (x, y, w, h), got {region.size}")
    cx = float(np.mean(region[0::2]))
    cy = float(np.mean(region[1::2]))
    x1, x2 = min(region[0::2]), max(region[0::2])
    y1, y2 = min(region[1::2]), max(region[1::2])
    a1 = np.linalg.norm(region[0:2] - region[2:4]) * np.linalg.norm(region[2:4] - region[4:6])
    a2 = (x2 - x1) * (y2 - y1)
    if not a2 > 0:
        raise ValueError(f"degenerate polygon (zero-area bounding box): {region.tolist()}")
    s = np.sqrt(a1 / a2)
    return cx, cy, float(s * (x2 - x1) + 1), float(s * (y2 - y1) + 1)


__all__ = [
    "context_size",
    "crop_subwindow",
    "cxcywh_to_xywh",
    "exemplar_crop_size",
    "search_region",
    "vot_polygon_to_cxcywh",
    "xywh_to_cxcywh",
]
