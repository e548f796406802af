"""Anchors of the 25x25 response map and the cosine (Hanning) window.

Released ``utils/anchors.py`` (``Anchors.generate_anchors``) and ``tools/test.py``
(``generate_anchor``, ``siamese_init``):

* anchor shapes: for each ratio r (config order) ``ws = int(sqrt(stride**2 / r))``,
  ``hs = int(ws * r)`` (integer **truncation**), then ``w = ws * scale``, ``h = hs * scale``:
  (104, 32), (88, 40), (64, 64), (40, 80), (32, 96) for stride 8, scale 8;
* anchor table: ``(k * S * S, 4)`` float32 rows ``(cx, cy, w, h)`` in **search-crop pixels
  relative to the crop centre**, row ``n = a * S*S + r * S + c`` with
  ``cx = -(S // 2) * stride + stride * c`` and ``cy`` likewise with the row ``r``;
* window: ``outer(hanning(S), hanning(S))`` flattened row-major and tiled k times
  (anchor-major, same flat order), float64.

See book/07_online_tracker.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def anchor_shapes(ratios: Sequence[float] = (0.33, 0.5, 1, 2, 3), scales: Sequence[float] = (8,),
                  stride: int = 8) -> np.ndarray:
    """Anchor widths and heights, released truncation rule.

    Returns:
        np.ndarray[k, 2] float32: ``(w, h)`` per anchor, ratio-major then scale.

    See book/07_online_tracker.py.
    """
    size = stride * stride
    out = []
    for r in ratios:
        ws = int(math.sqrt(size * 1.0 / r))
        hs = int(ws * r)
        for s in scales:
            out.append((ws * s, hs * s))
    return np.asarray(out, dtype=np.float32)


def generate_anchors(score_size: int = 25, stride: int = 8,
                     ratios: Sequence[float] = (0.33, 0.5, 1, 2, 3),
                     scales: Sequence[float] = (8,)) -> np.ndarray:
    """The tracking anchor table (released ``generate_anchor``).

    Args:
        score_size: side S of the response map (25).
        stride: crop pixels between neighbouring RoWs (8).
        ratios, scales: anchor aspect ratios (h / w) and scales.

    Returns:
        np.ndarray[k*S*S, 4] float32: ``(cx, cy, w, h)`` in search-crop pixels relative to
        the crop centre; row ``n = a*S*S + r*S + c`` (anchor a, map row r, map column c).

    See book/07_online_tracker.py.
    """
    shapes = anchor_shapes(ratios, scales, stride)  # (k, 2)
    k = shapes.shape[0]
    ori = -(score_size // 2) * stride
    offsets = np.asarray([ori + stride * i for i in range(score_size)], dtype=np.float32)
    yy, xx = np.meshgrid(offsets, offsets, indexing="ij")  # (S, S): [r, c]
    table = np.empty((k, score_size, score_size, 4), np.float32)
    table[..., 0] = xx
    table[..., 1] = yy
    table[..., 2] = shapes[:, 0, None, None]
    table[..., 3] = shapes[:, 1, None, None]
    return table.reshape(-1, 4)


def anchor_index(anchor: int, row: int, col: int, score_size: int = 25) -> int:
    """Flat index ``a*S*S + r*S + c`` of anchor ``a`` at RoW ``(row, col)``.

    See book/07_online_tracker.py.
    """
    return (anchor * score_size + row) * score_size + col


def unravel_anchor_index(index: int, anchor_num: int = 5, score_size: int = 25
                         ) -> tuple[int, int, int]:
    """Inverse of :func:`anchor_index`: ``(anchor, row, col)`` (released ``np.unravel_index``
    in ``(5, 25, 25)`` order).

    See book/07_online_tracker.py.
    """
    a, r, c = np.unravel_index(int(index), (anchor_num, score_size, score_size))
    return int(a), int(r), int(c)


def cosine_window(score_size: int = 25, anchor_num: int = 5, windowing: str = "cosine"
                  ) -> np.ndarray:
    """The motion prior added to the score (released ``siamese_init``).

    Args:
        score_size: S.
        anchor_num: k (the S*S window is tiled k times, anchor-major).
        windowing: ``"cosine"`` (``np.hanning``: zero at both ends, 1 at the centre for odd S)
            or ``"uniform"`` (all ones).

    Returns:
        np.ndarray[k*S*S] float64, in the anchor table's flat order.

    Raises:
        ValueError: for another ``windowing``.

    See book/07_online_tracker.py.
    """
    if windowing == "cosine":
        window = np.outer(np.hanning(score_size), np.hanning(score_size))
    elif windowing == "uniform":
        window = np.ones((score_size, score_size))
    else:
        raise ValueError(f"windowing must be 'cosine' or 'uniform', got {windowing!r}")
    return np.tile(window.flatten(), anchor_num)


def anchors_for(config) -> tuple[np.ndarray, np.ndarray]:
    """Anchor table and window of a :class:`~siammask_edu.config.TrackerConfig`.

    Returns:
        ``(anchors (k*S*S, 4) float32, window (k*S*S,) float64)``.

    See book/07_online_tracker.py.
    """
    anchors = generate_anchors(config.score_size, config.total_stride, config.ratios,
                               config.scales)
    window = cosine_window(config.score_size, config.anchor_num)
    return anchors, window


__all__ = [
    "anchor_index",
    "anchor_shapes",
    "anchors_for",
    "cosine_window",
    "generate_anchors",
    "unravel_anchor_index",
]
