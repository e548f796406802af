"""Pure drawing functions: ``(frame, ...) -> np.ndarray[H, W, 3] uint8`` RGB.

No function here mutates its inputs, keeps state, or touches matplotlib's pyplot: each
returns a new image, so widgets, the CLI and the book can share them and tests can check
pixels. Colours are ``(r, g, b)`` tuples in 0..255.

See book/07_online_tracker.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import matplotlib
import numpy as np

from ..io import davis_palette

Color = tuple[int, int, int]
MASK_COLOR: Color = (255, 40, 40)
POLYGON_COLOR: Color = (40, 255, 40)
BOX_COLOR: Color = (255, 220, 0)
_SHIFT = 4  # OpenCV fixed-point bits: sub-pixel polygon corners (1/16 px)


def _check_frame(frame: np.ndarray) -> np.ndarray:
    f = np.asarray(frame)
    if f.dtype != np.uint8 or f.ndim != 3 or f.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB frame, got {f.shape} {f.dtype}")
    return f


def overlay_mask(frame: np.ndarray, mask: np.ndarray, color: Color = MASK_COLOR,
                 alpha: float = 0.5) -> np.ndarray:
    """Tint the pixels of ``mask``: ``(1 - alpha) * frame + alpha * color``, rounded.

    Args:
        frame: np.ndarray[H, W, 3] uint8 RGB.
        mask: np.ndarray[H, W] bool (non-zero = inside), frame pixels.
        color: RGB tint.
        alpha: opacity of the tint in [0, 1].

    Returns:
        np.ndarray[H, W, 3] uint8: a new image; pixels outside ``mask`` are unchanged.

    Raises:
        ValueError: if ``mask`` is not (H, W) or ``alpha`` is outside [0, 1].

    See book/07_online_tracker.py.
    """
    f = _check_frame(frame)
    m = np.asarray(mask).astype(bool)
    if m.shape != f.shape[:2]:
        raise ValueError(f"mask shape {m.shape} differs from frame shape {f.shape[:2]}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    out = f.copy()
    blend = (1.0 - alpha) * f[m].astype(np.float32) + alpha * np.asarray(color, np.float32)
    out[m] = np.clip(np.rint(blend), 0, 255).astype(np.uint8)
    return out


def draw_polygon(frame: np.ndarray, polygon: np.ndarray, color: Color = POLYGON_COLOR,
                 thickness: int = 2) -> np.ndarray:
    """Draw a closed polygon (e.g. the rotated box) with anti-aliased, sub-pixel lines.

    Args:
        frame: np.ndarray[H, W, 3] uint8 RGB.
        polygon: np.ndarray[N, 2] float, (x, y) corners in frame pixels (also accepts
            N*2 flat numbers, e.g. a VOT line); parts outside the frame are clipped.
        color: RGB line colour.
        thickness: line width, pixels.

    Returns:
        np.ndarray[H, W, 3] uint8: a new image.

    See book/07_online_tracker.py.
    """
    out = _check_frame(frame).copy()
    pts = np.asarray(polygon, np.float64).reshape(-1, 2)
    if len(pts) < 2 or not np.isfinite(pts).all():
        return out
    fixed = np.rint(pts * (1 << _SHIFT)).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(out, [fixed], True, tuple(int(c) for c in color), int(thickness),
                  cv2.LINE_AA, _SHIFT)
    return out


def draw_box(frame: np.ndarray, box_xywh: Sequence[float], color: Color = BOX_COLOR,
             thickness: int = 1) -> np.ndarray:
    """Draw an axis-aligned box on the pixels it covers.

    Args:
        frame: np.ndarray[H, W, 3] uint8 RGB.
        box_xywh: ``(x, y, w, h)``: top-left corner and size in frame pixels (continuous:
            the box spans ``[x, x + w) x [y, y + h)``, so its outline is drawn on pixel
            columns ``round(x)`` and ``round(x + w) - 1``).
        color: RGB line colour.
        thickness: line width, pixels (grows inwards).

    Returns:
        np.ndarray[H, W, 3] uint8: a new image (unchanged copy for a non-finite box).

    See book/07_online_tracker.py.
    """
    out = _check_frame(frame).copy()
    x, y, w, h = (float(v) for v in box_xywh)
    if not np.isfinite([x, y, w, h]).all():
        return out
    # Clip far outside the frame first: OpenCV rejects coordinates beyond int32, and an
    # untrained network can decode such boxes. A margin keeps off-frame edges off-frame.
    hh, ww = out.shape[:2]
    lo, hi = -2.0 * max(hh, ww), 3.0 * max(hh, ww)
    x, y = min(max(x, lo), hi), min(max(y, lo), hi)
    w, h = min(w, hi - x), min(h, hi - y)
    x1, y1 = int(round(x)), int(round(y))
    x2, y2 = max(int(round(x + w)) - 1, x1), max(int(round(y + h)) - 1, y1)
    t = max(int(thickness), 1)
    for k in range(t):  # nested 1-px rectangles keep the outline inside the box
        cv2.rectangle(out, (x1 + k, y1 + k), (x2 - k, y2 - k), tuple(int(c) for c in color), 1)
    return out


def draw_text(frame: np.ndarray, text: str, org: tuple[int, int] = (4, 4),
              color: Color = (255, 255, 255), scale: float = 0.5) -> np.ndarray:
    """Write ``text`` on a dark backing rectangle whose top-left corner is ``org`` (x, y).

    Returns:
        np.ndarray[H, W, 3] uint8: a new image.

    See book/07_online_tracker.py.
    """
    out = _check_frame(frame).copy()
    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), base = cv2.getTextSize(text, font, scale, 1)
    x, y = int(org[0]), int(org[1])
    cv2.rectangle(out, (x, y), (x + tw + 4, y + th + base + 4), (0, 0, 0), -1)
    cv2.putText(out, text, (x + 2, y + th + 2), font, scale, tuple(int(c) for c in color), 1,
                cv2.LINE_AA)
    return out


def draw_result(frame: np.ndarray, result, mask_color: Color = MASK_COLOR,
                polygon_color: Color = POLYGON_COLOR, box_color: Color = BOX_COLOR,
                alpha: float = 0.45, show_score: bool = True) -> np.ndarray:
    """Draw one tracking result: mask tint, rotated box, axis-aligned box and score.

    Args:
        frame: np.ndarray[H, W, 3] uint8 RGB, the frame that was tracked.
        result: a ``TrackResult`` (or any object with ``mask`` (H, W) bool or ``None``,
            ``polygon`` (4, 2), ``box`` (x, y, w, h) and ``score``), frame coordinates.
        mask_color, polygon_color, box_color: RGB colours.
        alpha: mask opacity.
        show_score: write ``"score 0.93"`` in the top-left corner, followed by
            ``"LOST"`` (in red) when the result says ``lost`` (the score is below the
            tracker's calibrated ``lost_score``: a guess rather than a track).

    Returns:
        np.ndarray[H, W, 3] uint8: a new image.

    See book/07_online_tracker.py.
    """
    out = _check_frame(frame)
    mask = getattr(result, "mask", None)
    if mask is not None:
        out = overlay_mask(out, mask, mask_color, alpha)
    box = getattr(result, "box", None)
    if box is not None:
        out = draw_box(out, box, box_color, 1)
    polygon = getattr(result, "polygon", None)
    if polygon is not None:
        out = draw_polygon(out, polygon, polygon_color, 2)
    score = getattr(result, "score", None)
    if show_score and score is not None:
        lost = bool(getattr(result, "lost", False))
        out = draw_text(out, f"score {float(score):.2f}" + (" LOST" if lost else ""),
                        color=(255, 80, 80) if lost else (255, 255, 255))
    return out if out is not frame else out.copy()


def draw_unreadable(size_hw: tuple[int, int], text: str = "unreadable frame") -> np.ndarray:
    """The stand-in for a frame that could not be read: dark grey, ``text`` in red.

    Keeps an overlay video frame-for-frame aligned with its source when a frame is
    skipped (``siammask-edu track --on-bad-frame skip``).

    Args:
        size_hw: ``(H, W)`` of the video, pixels.
        text: what to write in the top-left corner (e.g. ``"frame 10 unreadable"``).

    Returns:
        np.ndarray[H, W, 3] uint8 RGB.

    See book/07_online_tracker.py.
    """
    h, w = (int(v) for v in size_hw)
    if h < 1 or w < 1:
        raise ValueError(f"size must be (H, W) >= 1, got {size_hw}")
    return draw_text(np.full((h, w, 3), 32, np.uint8), text, color=(255, 80, 80))


def encode_png(img: np.ndarray) -> bytes:
    """PNG bytes of an np.ndarray[H, W, 3] uint8 RGB (or [H, W] uint8) image.

    For ``ipywidgets.Image(value=...)`` and notebooks; the bytes start with ``b"\\x89PNG"``.

    See book/07_online_tracker.py.
    """
    a = np.asarray(img)
    if a.dtype != np.uint8 or not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)):
        raise ValueError(f"expected (H, W, 3) or (H, W) uint8, got {a.shape} {a.dtype}")
    ok, buf = cv2.imencode(".png", cv2.cvtColor(a, cv2.COLOR_RGB2BGR) if a.ndim == 3 else a)
    if not ok:
        raise ValueError("OpenCV could not encode the image as PNG")
    return buf.tobytes()


def mask_to_rgb(mask: np.ndarray, color: Color = (255, 255, 255)) -> np.ndarray:
    """Colour a mask: a bool mask becomes ``color`` on black; an integer label map gets
    the DAVIS palette (0 black, 1 dark red, 2 green, ...; see ``io.davis_palette``).

    Args:
        mask: np.ndarray[H, W] bool, or integer labels in 0..255.
        color: RGB colour of a bool mask.

    Returns:
        np.ndarray[H, W, 3] uint8 RGB.

    Raises:
        ValueError: for a float array (use :func:`score_map_to_rgb`) or labels > 255.

    See book/07_online_tracker.py.
    """
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"mask must be (H, W), got shape {m.shape}")
    if m.dtype == bool:
        out = np.zeros((*m.shape, 3), np.uint8)
        out[m] = color
        return out
    if not np.issubdtype(m.dtype, np.integer):
        raise ValueError(f"mask must be bool or integer labels, got {m.dtype}")
    if m.size and (m.min() < 0 or m.max() > 255):
        raise ValueError("labels must lie in 0..255")
    return davis_palette()[m]


def score_map_to_rgb(score: np.ndarray, cmap: str = "viridis", vmin: float | None = None,
                     vmax: float | None = None, size: tuple[int, int] | None = None) -> np.ndarray:
    """Colour a 2-D map (a 25x25 response, a 63x63 mask probability) with a colormap.

    Args:
        score: np.ndarray[h, w] float.
        cmap: a matplotlib colormap name (``matplotlib.colormaps``).
        vmin, vmax: the values mapped to the ends of the colormap; default: the map's
            min and max (a constant map becomes the low end).
        size: ``(H, W)`` to enlarge to, with nearest-neighbour (one cell = one block).

    Returns:
        np.ndarray[h, w, 3] (or [H, W, 3]) uint8 RGB.

    See book/07_online_tracker.py.
    """
    s = np.asarray(score, np.float64)
    if s.ndim != 2:
        raise ValueError(f"score map must be 2-D, got shape {s.shape}")
    lo = np.nanmin(s) if vmin is None else float(vmin)
    hi = np.nanmax(s) if vmax is None else float(vmax)
    t = np.zeros_like(s) if hi <= lo else np.clip((s - lo) / (hi - lo), 0.0, 1.0)
    rgb = (matplotlib.colormaps[cmap](np.nan_to_num(t))[..., :3] * 255.0).round().astype(np.uint8)
    if size is not None:
        rgb = cv2.resize(rgb, (int(size[1]), int(size[0])), interpolation=cv2.INTER_NEAREST)
    return rgb


def make_grid(images: Sequence[np.ndarray], ncols: int = 4, pad: int = 2,
              pad_value: int = 255) -> np.ndarray:
    """Tile images row by row into one picture (each in the top-left of its cell).

    Args:
        images: np.ndarray[H_i, W_i, 3] uint8 RGB (or [H_i, W_i] uint8, shown as grey);
            cells are as large as the largest image.
        ncols: images per row.
        pad: pixels between and around cells.
        pad_value: grey level of the padding.

    Returns:
        np.ndarray[rows * (H + pad) + pad, ncols' * (W + pad) + pad, 3] uint8, where
        ``ncols' = min(ncols, len(images))``.

    See book/07_online_tracker.py.
    """
    imgs = [np.asarray(i) for i in images]
    if not imgs:
        raise ValueError("make_grid needs at least one image")
    imgs = [np.repeat(i[..., None], 3, axis=2) if i.ndim == 2 else i for i in imgs]
    for i in imgs:
        _check_frame(i)
    h, w = max(i.shape[0] for i in imgs), max(i.shape[1] for i in imgs)
    cols = max(1, min(int(ncols), len(imgs)))
    rows = -(-len(imgs) // cols)
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), pad_value, np.uint8)
    for k, img in enumerate(imgs):
        y, x = pad + (k // cols) * (h + pad), pad + (k % cols) * (w + pad)
        grid[y:y + img.shape[0], x:x + img.shape[1]] = img
    return grid
