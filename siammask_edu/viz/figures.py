"""Static matplotlib figures and text tables for the book (no pyplot state is kept).

Every function builds a :class:`matplotlib.figure.Figure` directly (not through
``pyplot``), so nothing accumulates between calls and the functions work under any
backend, ``Agg`` included. In a notebook, end a cell with the returned figure to show it.

* :func:`as_row_masks` — the mask head's output in one layout, ``(25, 25, 63, 63)``;
* :func:`row_window` — the 127-px region of the search crop that RoW (row, col) sees;
* :func:`row_mask_grid` — the per-RoW masks of paper Fig. 8 on a grid of RoWs;
* :func:`row_mask_panels` — score map, one RoW's mask and its place in the crop;
* :func:`image_strip` — images side by side with titles;
* :func:`feature_shapes_table` — tensor shapes as an aligned text table.

See book/04_rows_anchors_heads.py.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure


def _np(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().float().numpy()
    return np.asarray(a)


def as_row_masks(mask_logits) -> np.ndarray:
    """The mask head's logits as ``(H, W, S, S)``: one ``S x S`` mask per RoW.

    Args:
        mask_logits: ``(S*S, H, W)`` (the head's channels, e.g. 3969 x 25 x 25), with an
            optional leading batch of 1, or already ``(H, W, S, S)`` (e.g. 25 x 25 x 63 x 63).
            Channel ``k`` of a RoW is mask row ``k // S``, column ``k % S`` (row-major).

    Returns:
        np.ndarray[H, W, S, S] float32 logits.

    Raises:
        ValueError: for any other shape.
    """
    m = _np(mask_logits).astype(np.float32)
    if m.ndim == 4 and m.shape[0] == 1 and m.shape[1] > 1 \
            and math.isqrt(m.shape[1]) ** 2 == m.shape[1]:
        m = m[0]
    if m.ndim == 3:
        s = math.isqrt(m.shape[0])
        if s * s != m.shape[0]:
            raise ValueError(f"expected (S*S, H, W) mask logits, got {m.shape}")
        return np.ascontiguousarray(m.transpose(1, 2, 0).reshape(m.shape[1], m.shape[2], s, s))
    if m.ndim == 4 and m.shape[2] == m.shape[3]:
        return m
    raise ValueError(
        f"expected mask logits of shape (S*S, H, W), (1, S*S, H, W) or (H, W, S, S), got {m.shape}"
    )


def row_window(row: int, col: int, stride: int = 8, side: int = 127, offset: int = -32
               ) -> tuple[int, int, int, int]:
    """The square of the search crop that RoW (row, col) describes, in crop pixels.

    For the released geometry (255 search, 25x25 RoWs) it is
    ``[8*col - 32, 8*col + 95) x [8*row - 32, 8*row + 95)``: the centre RoW (12, 12) sees the
    central 127x127 square, edge RoWs stick out of the crop (it is zero-padded there).

    Returns:
        ``(x0, y0, x1, y1)``, half-open, may lie partly outside the crop.
    """
    x0, y0 = stride * col + offset, stride * row + offset
    return x0, y0, x0 + side, y0 + side


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def row_mask_grid(masks, rows: Sequence[int], cols: Sequence[int], score=None,
                  size: float = 1.6) -> Figure:
    """Paper Fig. 8: the mask that each RoW of a grid predicts (sigmoid of the logits).

    Args:
        masks: mask logits in any layout accepted by :func:`as_row_masks`.
        rows, cols: the RoWs to show; panel (i, j) is RoW ``(rows[i], cols[j])``.
        score (array[H, W] | None): a per-RoW score printed in each title.
        size: inches per panel.

    Returns:
        :class:`~matplotlib.figure.Figure` with ``len(rows) x len(cols)`` panels.
    """
    m = as_row_masks(masks)
    sc = None if score is None else _np(score).reshape(m.shape[:2])
    fig = Figure(figsize=(size * len(cols), size * len(rows) + 0.3), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(rows), len(cols), squeeze=False))
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            ax = axes[i, j]
            ax.imshow(_sigmoid(m[r, c]), cmap="gray", vmin=0, vmax=1)
            title = f"({r},{c})" + ("" if sc is None else f" {sc[r, c]:.2f}")
            ax.set_title(title, fontsize=7)
            ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle("per-RoW masks (row, col) score", fontsize=9)
    return fig


def row_mask_panels(masks, score, row: int, col: int, frame_crop=None,
                    threshold: float = 0.5) -> Figure:
    """One RoW: the score map with the RoW marked, its mask, and (optionally) the crop.

    Args:
        masks: mask logits in any layout accepted by :func:`as_row_masks`.
        score (array[H, W]): one score per RoW (e.g. the best foreground probability).
        row, col: the RoW.
        frame_crop (np.ndarray[255, 255, 3] uint8 RGB | None): the search crop; the mask
            (resized to 127x127) is drawn over :func:`row_window`.
        threshold: probability contour drawn on the mask.

    Returns:
        :class:`~matplotlib.figure.Figure` with 2 or 3 panels.
    """
    m = as_row_masks(masks)
    sc = _np(score).reshape(m.shape[:2])
    prob = _sigmoid(m[row, col])
    n = 3 if frame_crop is not None else 2
    fig = Figure(figsize=(3.2 * n, 3.4), layout="constrained")
    axes = fig.subplots(1, n)
    axes[0].imshow(sc, cmap="viridis")
    axes[0].add_patch(_rect(col - 0.5, row - 0.5, 1, 1, "red"))
    axes[0].set_title(f"score, RoW ({row},{col}) = {sc[row, col]:.3f}", fontsize=8)
    axes[1].imshow(prob, cmap="gray", vmin=0, vmax=1)
    if prob.min() < threshold < prob.max():
        axes[1].contour(prob, levels=[threshold], colors="red", linewidths=0.8)
    axes[1].set_title(f"{prob.shape[0]}x{prob.shape[1]} mask of RoW ({row},{col})", fontsize=8)
    if frame_crop is not None:
        crop = np.asarray(frame_crop)
        k = crop.shape[0] / 255.0
        x0, y0, x1, y1 = (v * k for v in row_window(row, col))
        axes[2].imshow(crop)
        axes[2].imshow(prob, cmap="Reds", alpha=0.45, extent=(x0, x1, y1, y0), vmin=0, vmax=1)
        axes[2].add_patch(_rect(x0, y0, x1 - x0, y1 - y0, "yellow"))
        axes[2].set_xlim(-0.5, crop.shape[1] - 0.5), axes[2].set_ylim(crop.shape[0] - 0.5, -0.5)
        axes[2].set_title("its window in the search crop", fontsize=8)
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    return fig


def _rect(x, y, w, h, color):
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), w, h, fill=False, edgecolor=color, linewidth=1.5)


def image_strip(images: Sequence, titles: Sequence[str] | None = None, cmap: str | None = None,
                size: float = 2.8, vmin=None, vmax=None) -> Figure:
    """Images side by side, each with its title.

    Args:
        images: ``(H, W)`` arrays (shown with ``cmap``) or ``(H, W, 3)`` RGB arrays (uint8
            or floats in [0, 1]); torch tensors are accepted.
        titles: one per image.
        cmap, vmin, vmax: for single-channel images.
        size: inches per panel.

    Returns:
        :class:`~matplotlib.figure.Figure`.
    """
    fig = Figure(figsize=(size * len(images), size + 0.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(images), squeeze=False)[0])
    for i, (ax, im) in enumerate(zip(axes, images)):
        a = _np(im)
        ax.imshow(a, cmap=cmap if a.ndim == 2 else None, vmin=vmin, vmax=vmax)
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
        ax.set_xticks([]), ax.set_yticks([])
    return fig


def feature_shapes_table(shapes: Mapping[str, Sequence], columns: Sequence[str]) -> str:
    """Tensor shapes as an aligned text table (one row per name, one column per input).

    Args:
        shapes: ``{name: [shape_or_tensor, ...]}``; a tensor or array is replaced by its
            shape, ``None`` prints as ``-``.
        columns: the column headers, one per entry of each list.

    Returns:
        The table as a string (print it).

    Example:
        >>> print(feature_shapes_table({"p3": [(1, 1024, 15, 15)]}, ["exemplar 127"]))
        name | exemplar 127
        -----+------------------
        p3   | (1, 1024, 15, 15)
    """
    def fmt(v) -> str:
        if v is None:
            return "-"
        if hasattr(v, "shape"):
            v = v.shape
        return str(tuple(int(s) for s in v))

    rows = [["name", *columns]] + [[k, *(fmt(v) for v in vals)] for k, vals in shapes.items()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


__all__ = ["as_row_masks", "feature_shapes_table", "image_strip", "row_mask_grid",
           "row_mask_panels", "row_window"]
